"""An HTTP endpoint that boto3 talks to as if it were SageMaker Feature Store.

One port serves both protocols, told apart the way AWS does:

- **control plane** (``sagemaker`` client, JSON 1.1 protocol): ``POST /`` with
  ``X-Amz-Target: SageMaker.<Operation>``; handled by :class:`fsgen.backends.registry.Registry`
  (the same registry the local backend writes, so ``fsgen apply`` and boto3 see one state).
  Errors: HTTP 400 with ``{"__type": code, "message": ...}`` (ValidationException,
  ResourceNotFound, ResourceInUse, ResourceLimitExceeded).
- **runtime** (``sagemaker-featurestore-runtime`` client, REST-JSON protocol):
  ``PUT/GET/DELETE /FeatureGroup/{name}`` (PutRecord, GetRecord, DeleteRecord),
  ``POST /BatchGetRecord`` and ``POST /BatchWriteRecord``; handled by
  :class:`fsgen.server.runtime.RuntimeService` over :class:`fsgen.store.LocalStore`. Errors carry
  ``X-Amzn-ErrorType`` (ValidationError 400, ResourceNotFound 404).

Request signatures are not checked (any dummy credentials work); the endpoint binds to
127.0.0.1 only. A stdlib ThreadingHTTPServer with HTTP/1.1 keep-alive is enough: botocore keeps
its connections open, so a GetRecord costs one request parse, one SQLite point read and one
JSON dump.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fsgen.backends.registry import ApiError, Registry
from fsgen.config import ProjectConfig
from fsgen.server.runtime import RuntimeService
from fsgen.spec import ProjectSpec

JSON_11 = "application/x-amz-json-1.1"


class FeatureStoreServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], registry: Registry, runtime: RuntimeService
    ) -> None:
        super().__init__(address, Handler)
        self.registry = registry
        self.runtime = runtime

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FeatureStoreServer

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp a benchmark."""

    # -- plumbing --------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ApiError("SerializationException", "request body must be a JSON object")
        return data

    def _send(
        self,
        status: int,
        payload: dict[str, Any] | None,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        # headers and body in ONE write: two small writes meet Nagle's algorithm and the
        # client's delayed ACK, which costs ~40 ms a request on Linux loopback
        self._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]
        self.flush_headers()

    def _error(self, exc: ApiError, rest: bool) -> None:
        if rest:
            self._send(
                exc.status,
                {"message": exc.message},
                "application/json",
                {"X-Amzn-ErrorType": exc.code},
            )
        else:
            self._send(exc.status, {"__type": exc.code, "message": exc.message}, JSON_11)

    def _dispatch(self, method: str) -> None:
        target = self.headers.get("X-Amz-Target")
        rest = target is None
        try:
            if target is not None:
                service, _, operation = target.partition(".")
                if service != "SageMaker" or method != "POST":
                    raise ApiError("UnknownOperationException", f"unknown target {target}")
                response = self.server.registry.call(operation, self._body())
                self._send(200, response, JSON_11)
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            status, payload = self.server.runtime.handle(
                method, unquote(url.path), query, self._body() if method in ("POST", "PUT") else {}
            )
            self._send(status, payload, "application/json")
        except ApiError as exc:
            self._error(exc, rest)
        except json.JSONDecodeError as exc:
            self._error(ApiError("SerializationException", f"malformed JSON: {exc}"), rest)
        except Exception as exc:  # the client must get an answer, not a dropped connection
            self._error(ApiError("InternalFailure", f"{type(exc).__name__}: {exc}", 500), rest)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")


def make_server(
    config: ProjectConfig,
    spec: ProjectSpec,
    *,
    port: int = 4510,
    host: str = "127.0.0.1",
    creating_polls: int = 0,
) -> FeatureStoreServer:
    """A server for ``config``'s local store (not started; call ``serve_forever``)."""
    runtime = RuntimeService(config, spec)
    registry = Registry(
        config.store_path,
        region=config.aws.region,
        creating_polls=creating_polls,
        on_delete=runtime.drop_group,
    )
    runtime.registry = registry
    return FeatureStoreServer((host, port), registry, runtime)


def serve_in_thread(
    config: ProjectConfig, spec: ProjectSpec, *, port: int = 0, creating_polls: int = 0
) -> FeatureStoreServer:
    """Start a server on a free port in a daemon thread; stop it with ``shutdown()``."""
    server = make_server(config, spec, port=port, creating_polls=creating_polls)
    threading.Thread(target=server.serve_forever, name="fsgen-serve", daemon=True).start()
    return server
