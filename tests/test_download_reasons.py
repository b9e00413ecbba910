"""The reason of an img2dataset or geoest error message, as download.json and missing.csv count it."""
from geoest.data import download_reasons as reasons


def test_reasons_are_named():
    assert reasons.reason_of("HTTP Error 429: Too Many Requests") == reasons.THROTTLED
    assert reasons.reason_of("HTTP Error 503: Service Unavailable") == reasons.THROTTLED
    assert reasons.reason_of("HTTP Error 404: Not Found") == reasons.HTTP_404
    assert reasons.reason_of("HTTP Error 418: I'm a teapot") == "HTTP 418"
    assert reasons.reason_of("HTTP Error 308: The HTTP server returned a redirect error that would lead to an "
                             "infinite loop.") == reasons.REDIRECT_LOOP
    assert reasons.reason_of("<urlopen error timed out>") == reasons.TIMED_OUT
    assert reasons.reason_of("IncompleteRead(100 bytes read, 50 more expected)") == reasons.TRUNCATED_BODY
    assert reasons.reason_of("truncated JPEG (no end marker, 1234 bytes)") == reasons.TRUNCATED_JPEG
    assert reasons.reason_of("something  else\nentirely") == "other: something else entirely"
    assert set(reasons.RETRIED) == {reasons.THROTTLED, reasons.TIMED_OUT, reasons.CONNECTION}
