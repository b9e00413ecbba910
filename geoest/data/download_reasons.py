"""Why a photo of a URL list was not written: the reasons `geoest.data.download` counts (the keys of
`DownloadSummary.missing`, the reason column of missing.csv), and the reason of an img2dataset or
geoest error message."""
import re

# Reasons a row is not written (keys of DownloadSummary.missing, the reason column of missing.csv).
NOT_IN_META = "no meta row"
NO_URL = "no URL"
NOT_HTTP = "not an http(s) URL"
DUPLICATE = "IMG_ID repeated in the URL list"
HTTP_404 = "not found (HTTP 404)"
HTTP_410 = "gone (HTTP 410)"
THROTTLED = "throttled (HTTP 429/503)"
TIMED_OUT = "timed out"
CONNECTION = "connection failed"
REDIRECT_LOOP = "redirect loop"
TRUNCATED_BODY = "truncated body"
NOT_AN_IMAGE = "not an image"
TRUNCATED_JPEG = "truncated JPEG"
OPT_OUT = "opt-out (X-Robots-Tag)"
UNFINISHED = "shard unfinished (re-run to resume)"
RETRIED = (THROTTLED, TIMED_OUT, CONNECTION)     # tried again in a later pass


def reason_of(error_message: str) -> str:
    """The reason (one of the constants above; else "HTTP <code>" or "other: <the message>") for an img2dataset or geoest error message."""
    message = str(error_message)
    status = re.search(r"HTTP Error (\d{3})", message)
    if status:
        code = int(status.group(1))
        if "infinite loop" in message:
            return REDIRECT_LOOP
        return {404: HTTP_404, 410: HTTP_410, 429: THROTTLED, 503: THROTTLED}.get(code, f"HTTP {code}")
    lower = message.lower()
    for needle, reason in (("timed out", TIMED_OUT), ("incompleteread", TRUNCATED_BODY),
                           ("incomplete read", TRUNCATED_BODY), ("x-robots-tag", OPT_OUT),
                           ("image decoding error", NOT_AN_IMAGE), (TRUNCATED_JPEG.lower(), TRUNCATED_JPEG),
                           ("urlopen error", CONNECTION), ("remote end closed", CONNECTION),
                           ("connection reset", CONNECTION), ("connection refused", CONNECTION)):
        if needle in lower:
            return reason
    return "other: " + " ".join(message.split())[:80]
