"""A loopback photo server shaped like Flickr, and URL lists for it (tests and tools/benchmarks/download.py).

The server binds 127.0.0.1 only, answers at most `max_requests` requests and stops by itself after
`max_seconds`; `stop()` (or the context manager) stops it earlier. Each path has one case:

  photo      the JPEG                               -> written
  throttled  429 with Retry-After once, then photo  -> written (a retry pass)
  redirect   302 to a photo path                    -> written
  slow       the photo after `slow_s` (< timeout)   -> written
  404, 410   that status                            -> not found / gone
  stall      nothing until after the time-out       -> timed out
  truncated  a JPEG cut in half (whole response)    -> truncated JPEG
  html       an HTML page as image/jpeg             -> not an image
  noise      2 MB of random bytes as image/jpeg     -> not an image
  loop       302 to itself                          -> redirect loop
  short      Content-Length larger than the body    -> truncated body
  optout     the photo with X-Robots-Tag: noai      -> opt-out
"""
import collections
import http.server
import io
import threading
import time

import numpy as np
from PIL import Image

# What geoest.data.download counts for each case (None: written).
EXPECTED = {"photo": None, "throttled": None, "redirect": None, "slow": None,
            "404": "not found (HTTP 404)", "410": "gone (HTTP 410)", "stall": "timed out",
            "truncated": "truncated JPEG", "html": "not an image", "noise": "not an image",
            "loop": "redirect loop", "short": "truncated body", "optout": "opt-out (X-Robots-Tag)"}


def photo(width: int, height: int, seed: int) -> bytes:
    """A smooth random JPEG of width x height px."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(3, 4, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR).save(out, format="JPEG", quality=85)
    return out.getvalue()


class PhotoServer:
    """Serves `cases` ({path: (case, jpeg bytes or None)}) on 127.0.0.1; `hits` counts requests per path."""

    def __init__(self, cases: dict, *, max_requests: int = 5000, max_seconds: float = 300.0,
                 stall_s: float = 3.0, slow_s: float = 0.5, delay_s: float = 0.0):
        self.cases, self.hits, self.requests = cases, collections.Counter(), 0
        self.max_requests, self.stall_s, self.slow_s, self.delay_s = max_requests, stall_s, slow_s, delay_s
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):   # noqa: N802 (http.server's name)
                with server._lock:
                    server.requests += 1
                    over = server.requests > server.max_requests
                    server.hits[self.path] += 1
                    hits = server.hits[self.path]
                if over:
                    self.close_connection = True
                    return
                if server.delay_s:
                    time.sleep(server.delay_s)
                case, data = server.cases.get(self.path, ("400", None))
                if case in ("404", "410", "400"):
                    self._send(int(case), b"no such photo", "text/plain")
                elif case == "throttled" and hits == 1:
                    self._send(429, b"slow down", "text/plain", {"Retry-After": "1"})
                elif case == "redirect":
                    self._send(302, b"", "text/plain", {"Location": data})
                elif case == "loop":
                    self._send(302, b"", "text/plain", {"Location": self.path})
                elif case == "stall":
                    time.sleep(server.stall_s)
                    self._send(200, data, "image/jpeg")
                elif case == "html":
                    self._send(200, b"<html><body>This photo is no longer available</body></html>", "image/jpeg")
                elif case == "noise":
                    self._send(200, np.random.default_rng(7).bytes(2 * 1024 * 1024), "image/jpeg")
                elif case == "truncated":
                    self._send(200, data[: len(data) // 2], "image/jpeg")
                elif case == "short":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    self.close_connection = True
                elif case == "optout":
                    self._send(200, data, "image/jpeg", {"X-Robots-Tag": "noai"})
                else:                                    # photo, throttled (again), slow
                    if case == "slow":
                        time.sleep(server.slow_s)
                    self._send(200, data, "image/jpeg")

            def _send(self, status, body, content_type, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._timer = threading.Timer(max_seconds, self.stop)
        self._timer.daemon = True

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self):
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


def flickr_rows(counts: dict, seed: int = 0, sizes=((640, 480), (480, 640), (240, 180), (500, 333))):
    """URL-list rows for the cases: {case: how many}.

    Returns:
      (rows, cases): rows [(IMG_ID, path as listed (no size suffix), case)], IMG_IDs shaped like
      the published meta files' (`{photo}_{secret}_{server}_{owner}.jpg`); cases {path served
      (with `_z`): (case, bytes)} for PhotoServer.
    """
    rng = np.random.default_rng(seed)
    rows, cases, k = [], {}, 0
    targets = []
    for case, n in counts.items():
        for _ in range(n):
            k += 1
            photo_id, secret, server = 10_000_000 + k, f"{rng.integers(16**9):010x}", 1000 + k % 7
            image_id = f"{photo_id}_{secret}_{server}_{k}@N00.jpg"
            listed = f"/{server}/{photo_id}_{secret}.jpg"
            served = f"/{server}/{photo_id}_{secret}_z.jpg"
            width, height = sizes[k % len(sizes)]
            data = photo(width, height, seed=k)
            if case == "redirect":
                target = f"/moved/{photo_id}_{secret}_z.jpg"
                cases[target] = ("photo", data)
                targets.append(target)
                data = target
            cases[served] = (case, data)
            rows.append((image_id, listed, case))
    return rows, cases
