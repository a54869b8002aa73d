"""``fsgen serve-model``: a feature set's endpoint handler over HTTP on 127.0.0.1, with the two
routes a SageMaker inference container answers: ``GET /ping`` (200 when the model is loaded)
and ``POST /invocations`` (the handler's input_fn -> predict_fn -> output_fn).

Errors are JSON ``{"error": code, "message": ...}``: 400 for a bad request (missing key, bad
request field, unreadable body), 424 when a feature is missing under ``missing="error"``
(SageMaker's status for a failed model dependency), 502 when the feature store fails, 500
for anything else. The server never drops a connection for a bad request. The HTTP layer is
``fsgen serve``'s (:mod:`fsgen.server.limits`): loopback ``Host`` only, no browser ``Origin``,
bodies up to 6 MB (SageMaker's invocation limit), bounded connections and read time.
"""

from __future__ import annotations

import json
import threading

from fsgen.runtime.endpoint import FeatureStoreError
from fsgen.runtime.inference import MissingFeatureError, RequestError
from fsgen.server.limits import LimitedHandler, LimitedServer, Refusal
from fsgen.serving.handler import Handler


class ModelServer(LimitedServer):
    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self.handler = handler


class _RequestHandler(LimitedHandler):
    server: ModelServer
    max_body = 6 * 1024 * 1024

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_all(status, body, {"Content-Type": content_type, **dict(headers)})

    def _error(
        self, status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        body = json.dumps({"error": code, "message": message}).encode()
        self._send(status, body, headers=headers)

    def _routed(self, method: str) -> bool:
        """True when ``method`` is served at this path; else answers 404 (no such path) or
        405 with ``Allow`` (the path exists, for another method) and returns False."""
        path = self.path.split("?")[0]
        allowed = ROUTES.get(path)
        if allowed is None:
            self._error(404, "NotFound", f"no route {method} {path}")
            return False
        if method not in allowed:
            methods = ", ".join(allowed)
            message = f"{method} {path}: the route answers {methods} only"
            self._error(405, "MethodNotAllowed", message, headers=(("Allow", methods),))
            return False
        return True

    def _accepted(self, method: str) -> bytes | None:
        """The request's body when it passes the server's limits and its route serves
        ``method``; else the refusal has been answered and None is returned."""
        try:
            self.check_origin()
            body = self.read_body()
        except Refusal as exc:
            self._error(exc.status, exc.code, exc.message)
            return None
        return body if self._routed(method) else None

    def do_GET(self) -> None:
        if self._accepted("GET") is not None:
            self._send(200, b'{"status": "healthy"}')

    def do_PUT(self) -> None:
        self._accepted("PUT")

    def do_DELETE(self) -> None:
        self._accepted("DELETE")

    def do_POST(self) -> None:
        body = self._accepted("POST")
        if body is None:
            return
        try:
            text = self.server.handler.invoke(
                body,
                self.headers.get("Content-Type") or "application/json",
                self.headers.get("Accept") or "application/json",
            )
        except RequestError as exc:
            self._error(400, "ValidationError", str(exc))
        except MissingFeatureError as exc:
            self._error(424, "MissingFeature", str(exc))
        except FeatureStoreError as exc:
            self._error(502, "FeatureStoreError", str(exc))
        except Exception as exc:  # the client gets an answer, never a dropped connection
            self._error(500, "InternalFailure", f"{type(exc).__name__}: {exc}")
        else:
            self._send(200, text.encode())


#: path -> the methods it answers; another method on a known path is 405, not 404.
ROUTES: dict[str, tuple[str, ...]] = {"/ping": ("GET",), "/invocations": ("POST",)}


def make_server(handler: Handler, port: int = 8080, host: str = "127.0.0.1") -> ModelServer:
    """A server for ``handler`` (not started; call ``serve_forever``). Port 0: a free port."""
    return ModelServer((host, port), handler)


def serve_in_thread(handler: Handler, port: int = 0) -> ModelServer:
    """Start a server on a free port in a daemon thread; stop it with ``shutdown()``."""
    server = make_server(handler, port)
    threading.Thread(target=server.serve_forever, name="fsgen-serve-model", daemon=True).start()
    return server


__all__ = ["ModelServer", "make_server", "serve_in_thread"]
