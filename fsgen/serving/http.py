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

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_all(status, body, {"Content-Type": content_type})

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"error": code, "message": message}).encode())

    def do_GET(self) -> None:
        try:
            self.check_origin()
            self.read_body()
        except Refusal as exc:
            self._error(exc.status, exc.code, exc.message)
            return
        if self.path.split("?")[0] == "/ping":
            self._send(200, b'{"status": "healthy"}')
        else:
            self._error(404, "NotFound", f"no route GET {self.path}")

    def do_POST(self) -> None:
        try:
            self.check_origin()
            body = self.read_body()
        except Refusal as exc:
            self._error(exc.status, exc.code, exc.message)
            return
        if self.path.split("?")[0] != "/invocations":
            self._error(404, "NotFound", f"no route POST {self.path}")
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


def make_server(handler: Handler, port: int = 8080, host: str = "127.0.0.1") -> ModelServer:
    """A server for ``handler`` (not started; call ``serve_forever``). Port 0: a free port."""
    return ModelServer((host, port), handler)


def serve_in_thread(handler: Handler, port: int = 0) -> ModelServer:
    """Start a server on a free port in a daemon thread; stop it with ``shutdown()``."""
    server = make_server(handler, port)
    threading.Thread(target=server.serve_forever, name="fsgen-serve-model", daemon=True).start()
    return server


__all__ = ["ModelServer", "make_server", "serve_in_thread"]
