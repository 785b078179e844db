"""A tiny local HTTP server used ONLY to inject faults the real server cannot be made to give
on demand (503 with Retry-After, 429, a stalled answer). Whatever it does not fault it forwards
to the real `collector serve`, so the data still goes through the real server."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List, Optional, Tuple

import httpx

#: A fault: (status, headers, body) to answer instead of forwarding, or None to forward.
Fault = Optional[Tuple[int, List[Tuple[str, str]], bytes]]


class FaultProxy:
    def __init__(self, upstream: Optional[str], fault: Callable[[int, str, str], Fault]) -> None:
        """``fault(n, method, path)`` is asked for the n-th request (0-based)."""
        self.upstream = upstream
        self.fault = fault
        self.requests: List[Tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # no request logs
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    n = len(proxy.requests)
                    proxy.requests.append((self.command, self.path, body))
                f = proxy.fault(n, self.command, self.path)
                if f is None and proxy.upstream:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    r = httpx.request(self.command, proxy.upstream + self.path, headers=headers, content=body,
                                      timeout=30)
                    f = (r.status_code, [("content-type", r.headers.get("content-type", "application/json"))],
                         r.content)
                if f is None:
                    f = (500, [], b"")
                status, headers_out, payload = f
                self.send_response(status)
                for k, v in headers_out:
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, method: str, path_prefix: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and p.startswith(path_prefix))


UNAVAILABLE = b'{"error":{"code":"unavailable","message":"the store is throttled; try again"}}'
