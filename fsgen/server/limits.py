"""The HTTP layer both local servers share (``fsgen serve`` and ``fsgen serve-model``): bounded,
loopback-only, and closed to browsers.

- **connections**: at most ``max_connections`` at once; one more is answered 503 and closed
  at once, so half-sent requests cannot pile up threads;
- **read time**: every socket read waits at most ``timeout`` seconds (an idle keep-alive
  connection is closed after that), and a body must arrive within ``timeout`` in total;
- **body size**: ``Content-Length`` is required for a body (``Transfer-Encoding`` is refused),
  must be a non-negative integer and at most ``max_body`` bytes (413 otherwise), and is read in
  pieces, never more than announced;
- **no cross-site requests**: a request carrying ``Origin`` or a cross-site ``Sec-Fetch-Site``
  (what a browser adds to a page's request) is refused with 403, and so is a ``Host`` that is not
  a loopback name (DNS rebinding points a foreign name at 127.0.0.1).

A refusal is :class:`Refusal` (HTTP status, error code, message); each server renders it in
its own error shape.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LimitedServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a bound on concurrent connections."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = 64
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(self.max_connections)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self._slots.release()


class LimitedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 20.0
    max_body = 16 * 1024 * 1024

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp a benchmark."""

    def check_origin(self) -> None:
        """Refuse browser-made and foreign-host requests (403). The connection is closed after
        the answer: the body of a refused request is never read."""
        asked = self.close_connection
        self.close_connection = True
        if self.headers.get("Origin") is not None:
            raise Refusal(403, "AccessForbidden", "cross-origin requests are refused")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("none", "same-origin"):
            raise Refusal(403, "AccessForbidden", "cross-site requests are refused")
        host = (self.headers.get("Host") or "").strip().lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        bound = str(self.server.server_address[0])  # type: ignore[index]
        if name not in LOOPBACK_NAMES and name != bound:
            raise Refusal(403, "AccessForbidden", f"Host {host!r} is not a loopback address")
        self.close_connection = asked

    def read_body(self) -> bytes:
        """The request body within the limits above (400/411/413 otherwise)."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Refusal(411, "LengthRequired", "Transfer-Encoding is not supported")
        text = self.headers.get("Content-Length")
        if text is None:
            return b""
        if not text.strip().isdigit():
            self.close_connection = True
            raise Refusal(400, "BadRequest", f"invalid Content-Length {text!r}")
        length = int(text)
        if length > self.max_body:
            self.close_connection = True
            raise Refusal(
                413, "RequestEntityTooLarge", f"body of {length} bytes; at most {self.max_body}"
            )
        deadline = time.monotonic() + self.timeout
        parts: list[bytes] = []
        left = length
        while left:
            if time.monotonic() > deadline:
                self.close_connection = True
                raise Refusal(408, "RequestTimeout", "request body not received in time")
            try:
                piece = self.rfile.read1(min(left, 65536))  # type: ignore[attr-defined]
            except TimeoutError:
                self.close_connection = True
                raise Refusal(408, "RequestTimeout", "request body not received in time") from None
            if not piece:
                self.close_connection = True
                raise Refusal(400, "BadRequest", "request body shorter than Content-Length")
            parts.append(piece)
            left -= len(piece)
        return b"".join(parts)

    def send_all(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Status, headers and body in ONE write: two small writes meet Nagle's algorithm and
        the client's delayed ACK, which costs ~40 ms a request on Linux loopback."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()


__all__ = ["LOOPBACK_NAMES", "LimitedHandler", "LimitedServer", "Refusal"]
