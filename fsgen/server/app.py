"""An HTTP endpoint that boto3 and the SageMaker Python SDK talk to as if it were SageMaker
Feature Store.

One port serves both protocols, told apart the way AWS does:

- **control plane** (``sagemaker`` client, JSON 1.1 protocol): ``POST /`` with
  ``X-Amz-Target: SageMaker.<Operation>`` for the feature-store operations of
  :data:`fsgen.server.model.CONTROL_OPERATIONS`; handled by
  :class:`fsgen.backends.registry.Registry` (the registry the local backend writes, so
  ``fsgen apply`` and boto3 see one state) and :mod:`fsgen.server.search`. Errors: HTTP 400 with
  ``{"__type": code, "message": ...}``.
- **runtime** (``sagemaker-featurestore-runtime`` client, REST-JSON protocol): every route of
  the installed service model, found by its ``requestUri`` template; handled by
  :class:`fsgen.server.runtime.RuntimeService`. Errors carry ``X-Amzn-ErrorType`` with the
  model's status (ValidationError 400, AccessForbidden 403, ResourceNotFound 404,
  ConflictException 409).

Every request is checked against botocore's service model before it runs
(:mod:`fsgen.server.model`), and every response is reduced to the model's output shape. The
endpoint binds to 127.0.0.1 and takes only what an AWS SDK sends: a SigV4-shaped
``Authorization`` header (its credential scope gives the region; the signature itself is not
verified), AWS's JSON content types, a loopback ``Host``, no browser ``Origin``; bodies,
connections and read time are bounded (:mod:`fsgen.server.limits`).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fsgen.backends.registry import ApiError, Registry
from fsgen.config import ProjectConfig
from fsgen.server import model
from fsgen.server.limits import LimitedHandler, LimitedServer, Refusal
from fsgen.server.runtime import RuntimeService
from fsgen.server.search import search
from fsgen.spec import ProjectSpec

JSON_11 = "application/x-amz-json-1.1"
CONTROL_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/\s,]+/[0-9]{8}/([a-z0-9-]+)/[a-z0-9-]+/aws4_request,"
    r"\s*SignedHeaders=[a-z0-9;-]+,\s*Signature=[0-9a-f]{64}"
)
DEFAULT_ACCOUNT = "000000000000"


def account_of(role_arn: str | None) -> str:
    """The account of ``role_arn`` (``arn:aws:iam::123456789012:role/x``), else 12 zeros."""
    match = re.fullmatch(r"arn:aws[a-z-]*:iam::([0-9]{12}):.+", role_arn or "")
    return match.group(1) if match else DEFAULT_ACCOUNT


class FeatureStoreServer(LimitedServer):
    def __init__(
        self, address: tuple[str, int], registry: Registry, runtime: RuntimeService
    ) -> None:
        super().__init__(address, Handler)
        self.registry = registry
        self.runtime = runtime


def _json(data: bytes) -> dict[str, Any]:
    if not data:
        return {}

    def refuse(text: str) -> None:
        raise ValueError(f"{text} is not JSON")

    try:
        parsed = json.loads(data, parse_constant=refuse)
    except (ValueError, RecursionError) as exc:
        raise ApiError("SerializationException", f"malformed JSON body: {exc}"[:300]) from None
    if not isinstance(parsed, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    return parsed


class Handler(LimitedHandler):
    server: FeatureStoreServer

    def _send(
        self, status: int, payload: dict[str, Any] | None, content_type: str, extra: Any = None
    ) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = {"Content-Type": content_type, "x-amzn-RequestId": str(uuid.uuid4())}
        headers.update(extra or {})
        self.send_all(status, body, headers)

    def _error(self, code: str, message: str, status: int, rest: bool) -> None:
        if rest:
            self._send(status, {"message": message}, "application/json", {"X-Amzn-ErrorType": code})
        else:
            self._send(status, {"__type": code, "message": message}, JSON_11)

    def _region(self) -> str:
        match = SIGV4.match(self.headers.get("Authorization") or "")
        if match is None:
            raise Refusal(
                403,
                "MissingAuthenticationToken",
                "Request must carry an AWS Signature Version 4 Authorization header",
            )
        return match.group(1)

    def _dispatch(self, method: str) -> None:
        target = self.headers.get("X-Amz-Target")
        rest = target is None
        try:
            self.check_origin()
            body = self.read_body()
            region = self._region()
            if rest:
                payload = self._runtime(method, body)
                self._send(200, payload, "application/json")
            else:
                self._send(200, self._control(method, target or "", body, region), JSON_11)
        except Refusal as exc:
            self._error(exc.code, exc.message, exc.status, rest)
        except ApiError as exc:
            self._error(exc.code, exc.message, exc.status, rest)
        except Exception as exc:  # the client must get an answer, not a dropped connection
            self._error("InternalFailure", f"{type(exc).__name__}: {exc}", 500, rest)

    def _control(self, method: str, target: str, body: bytes, region: str) -> dict[str, Any]:
        service, _, operation = target.partition(".")
        if service != "SageMaker" or method != "POST" or self.path.split("?")[0] != "/":
            raise ApiError("UnknownOperationException", f"unknown target {target}")
        if operation not in model.CONTROL_OPERATIONS:
            raise ApiError(
                "UnknownOperationException",
                f"Operation {operation} is not supported by fsgen serve",
            )
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type not in CONTROL_TYPES:
            raise ApiError(
                "SerializationException", f"Content-Type must be {JSON_11}, not {content_type!r}"
            )
        request = _json(body)
        op = model.operation(model.CONTROL, operation)
        model.validate(op, request, "ValidationException")
        if operation != "CreateFeatureGroup" and "FeatureGroupName" in request:
            try:
                request["FeatureGroupName"] = self.server.runtime.resolve(
                    request["FeatureGroupName"]
                )
            except ApiError:
                pass  # the registry answers ResourceNotFound with the name given
        if operation == "Search":
            response = search(self.server.registry, request)
        else:
            response = self.server.registry.call(operation, request, region=region)
        return model.conform(op.output_shape, response) or {}

    def _runtime(self, method: str, body: bytes) -> dict[str, Any]:
        url = urlsplit(self.path)
        name, labels = model.route(method, url.path)
        data: dict[str, Any] = {}
        if method in ("POST", "PUT"):
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != "application/json":
                raise ApiError(
                    "SerializationException",
                    f"Content-Type must be application/json, not {content_type!r}",
                )
            data = _json(body)
        query = parse_qs(url.query, keep_blank_values=True)
        request = model.rest_request(name, labels, query, data)
        op = model.operation(model.RUNTIME, name)
        model.validate(op, request, "ValidationError")
        return model.conform(op.output_shape, self.server.runtime.call(name, request)) or {}

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
    """A server for ``config``'s local store (not started; call ``serve_forever``). ARNs carry
    the account of ``[tool.fsgen.aws] role_arn`` and each request's region."""
    runtime = RuntimeService(config, spec)
    registry = Registry(
        config.store_path,
        region=config.aws.region,
        account=account_of(config.aws.role_arn),
        creating_polls=creating_polls,
        on_delete=runtime.drop_group,
        on_create=runtime.create_group,
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
