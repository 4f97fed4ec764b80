"""The HTTP endpoint of a runai-lite program: `/metrics` (Prometheus text format), `/healthz`
(the loop is alive) and `/readyz` (it has done its first work), as the chart's probes and a
ServiceMonitor expect them. A small `http.server` on a thread of its own: the loops never wait
for a scrape, and a slow scraper never holds a loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST

from ..errors import UserError

Check = Callable[[], str | None]  # None when healthy, else what is wrong


class Heartbeat:
    """A loop's sign of life: `beat()` each turn; unhealthy once no beat came for `stale_after`
    seconds (a loop stuck in a call that never returns), ready after the first beat."""

    def __init__(self, stale_after: float, monotonic: Callable[[], float] = time.monotonic):
        self.stale_after = stale_after
        self.monotonic = monotonic
        self.started = monotonic()
        self.last: float | None = None

    def beat(self) -> None:
        self.last = self.monotonic()

    def alive(self) -> str | None:
        since = self.monotonic() - (self.last if self.last is not None else self.started)
        if since > self.stale_after:
            return f"the loop has not turned for {since:.0f}s (limit {self.stale_after:.0f}s)"
        return None

    def ready(self) -> str | None:
        return None if self.last is not None else "the first pass has not finished yet"


class Endpoint:
    def __init__(self, exposition: Callable[[], bytes], healthz: Check, readyz: Check,
                 host: str = "0.0.0.0", port: int = 8080):
        routes = {"/metrics": lambda: (200, CONTENT_TYPE_LATEST, exposition()),
                  "/healthz": lambda: _probe(healthz), "/readyz": lambda: _probe(readyz)}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, body = route() if route else (404, "text/plain", b"not found\n")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # scrapes every few seconds: no log line each
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="metrics endpoint", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def start(self) -> Endpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_address(text: str) -> tuple[str, int]:
    """`PORT` (on 127.0.0.1) or `HOST:PORT` (`[::1]:PORT` for IPv6), as `--metrics-address` takes it."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536 or (sep and not host):
        raise UserError(f"invalid metrics address {text!r}", "give PORT or HOST:PORT, e.g. 127.0.0.1:9400")
    return host, int(port)


def _probe(check: Check) -> tuple[int, str, bytes]:
    problem = check()
    if problem is None:
        return 200, "text/plain", b"ok\n"
    return 503, "text/plain", (problem + "\n").encode()
