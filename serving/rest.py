"""The model server's HTTP app: TF Serving's REST routes over the data plane; predict as a plain ASGI app
(`_PredictDoor`), the other routes on Starlette behind it.

    GET  /v1/models/taxi[/versions/{v}|/labels/{label}]            version status, in TF Serving's shape
    GET  /v1/models/taxi[/versions/{v}|/labels/{label}]/metadata   the signatures
    POST /v1/models/taxi:predict                       {"instances": [...]} or {"inputs": {...}}
    POST /v1/models/taxi/versions/{v}:predict          the same, naming the version
    POST /v1/models/taxi/labels/{label}:predict        the same, naming the label (stable, canary)
    GET  /metrics   /ready   /healthz

A refused request gets its status and `{"error": ...}` naming the field; never a 5xx for a request's
fault, and a model that fails is a 500 that leaves the server up. Every request is counted and timed
(serving/metrics.py), and every answered trip goes to the request log (serving/request_log.py). A copy
mirrored by nginx (the `shadow` route) is answered 202 at once and predicted afterwards.
"""

import asyncio
import contextlib
import dataclasses
import signal
import threading
import time
import uuid
from pathlib import Path

import orjson
import prometheus_client
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from serving import request_checks, request_log
from serving.dataplane import DataPlane, Prediction, ServingError
from serving.metrics import ServerMetrics
from serving.model import VersionSlot
from serving.request_contract import RequestContract

ROUTE_HEADER, REQUEST_ID_HEADER, VERSION_HEADER = "x-route", "x-request-id", "x-model-version"
# As ASGI carries them: bytes, names in lower case.
ROUTE_KEY, REQUEST_ID_KEY, VERSION_KEY = (
    name.encode() for name in (ROUTE_HEADER, REQUEST_ID_HEADER, VERSION_HEADER)
)


@dataclasses.dataclass
class ServerSettings:
    serving_dir: Path
    version: str  # a version number, or serving.model.LATEST
    labels: tuple[str, ...]  # the labels this server answers for (stable, canary)
    request_log_dir: Path | None
    schema_path: Path = folders.SCHEMA_PATH
    model_name: str = serving_config.SERVING_MODEL_NAME
    poll_seconds: float = serving_config.SERVING_POLL_SECONDS
    max_batch: int = serving_config.SERVING_MAX_BATCH
    max_body_bytes: int = serving_config.SERVING_MAX_BODY_BYTES


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _answer(status: int, message: str) -> tuple[int, bytes, list]:
    """A refusal as the predict door sends it: (status, `{"error": ...}`, headers)."""
    return status, orjson.dumps({"error": message}), []


async def _http_error(request: Request, error: HTTPException) -> Response:
    """Starlette's own refusals (no such path, a method the path does not take) in TF Serving's shape."""
    return JSONResponse(
        {"error": f"{error.detail}: {request.method} {request.url.path}"}, error.status_code, error.headers
    )


class _Endpoints:
    """The routes' handlers, the shadow's queue and the request log of one server."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.metrics = ServerMetrics(pipeline_config.REPORTED_DECISION_THRESHOLD)
        self.slot = VersionSlot(settings.serving_dir, settings.version, settings.poll_seconds, self.metrics)
        contract = RequestContract(settings.schema_path, settings.max_batch)
        self.plane = DataPlane(
            settings.model_name, settings.labels, self.slot, contract, self.metrics, settings.max_body_bytes
        )
        self.default_route = settings.labels[0] if settings.labels else "stable"
        self.shadow_pending: set[asyncio.Task] = set()  # copies answered at once, predicted after
        self.log: request_log.RequestLog | None = None

    async def status(self, request: Request) -> Response:
        params = request.path_params
        try:
            return JSONResponse(self.plane.status(params.get("version"), params.get("label")))
        except ServingError as error:
            return _error(error.status, error.message)

    async def metadata(self, request: Request) -> Response:
        params = request.path_params
        try:
            return JSONResponse(self.plane.metadata(params.get("version"), params.get("label")))
        except ServingError as error:
            return _error(error.status, error.message)

    async def predict(self, headers: dict[bytes, bytes], version: str | None, label: str | None, body: bytes):
        """A predict request's answer: (status, body, headers). `headers`: the request's, names in lower
        case; `version`, `label`: the path's."""
        route = headers.get(ROUTE_KEY, b"").decode("latin-1")
        if route not in serving_config.ROUTES:  # a metric label is never a client's choice
            route = self.default_route
        if route != serving_config.SHADOW_ROUTE:
            return await self._respond(headers, route, version, label, body)
        # nginx's `mirror` holds the client's keep-alive connection until the shadow has answered, so a
        # shadow answers nginx at once and predicts afterwards (Envoy's and Istio's mirroring never wait
        # either): a slow shadow then costs stable's clients nothing. Its latency, prediction and log row
        # are recorded as for any request; past SHADOW_MAX_PENDING waiting copies, new ones are dropped
        # and counted (status 503 on the shadow route).
        pending = self.shadow_pending
        if len(pending) >= serving_config.SHADOW_MAX_PENDING:
            # Counted, not timed: a dropped copy has no latency to put in the shadow's histogram.
            model = self.slot.model
            self.metrics.requests.labels(model.version if model else "none", route, "503").inc()
            return _answer(503, f"the shadow is {len(pending)} requests behind: this copy is dropped")
        task = asyncio.get_running_loop().create_task(self._respond(headers, route, version, label, body))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return 202, b"", []

    async def _respond(self, headers: dict, route: str, version: str | None, label: str | None, body: bytes):
        """Answers a predict request, counts and times it, and logs its trips when it was answered."""
        started = time.perf_counter()
        request_id = headers.get(REQUEST_ID_KEY, b"").decode("latin-1") or uuid.uuid4().hex
        model = self.slot.model
        served = model.version if model else "none"
        prediction: Prediction | None = None
        try:
            content_type = headers.get(b"content-type")
            request_checks.check_content_type(content_type.decode("latin-1") if content_type else None)
            prediction = await self.plane.predict(model, body, route, version, label)
            answer = 200, prediction.body, []
        except request_checks.RefusedRequest as error:
            answer = _answer(error.status, error.message)
        except Exception as error:  # the model's fault, not the request's: 500, counted, the server stays up
            message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())[:300]
            print(f"version {served} failed a request: {type(error).__name__}: {message}", flush=True)
            answer = _answer(500, f"version {served} failed to predict: {type(error).__name__}: {message}")
        seconds = time.perf_counter() - started
        self.metrics.record(served, route, answer[0], seconds)
        answer[2].append((REQUEST_ID_KEY, request_id.encode("latin-1")))
        if model is not None:
            answer[2].append((VERSION_KEY, model.version.encode("latin-1")))
        if self.log is not None and prediction is not None:
            self.log.append(
                request_log.request_rows(
                    request_id, served, route, seconds, prediction.probabilities, prediction.columns
                )
            )
        return answer

    async def ready(self, request: Request) -> Response:
        ready, body = self.plane.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def scrape(self, request: Request) -> Response:
        return Response(
            prometheus_client.generate_latest(self.metrics.registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    def startup(self) -> None:
        self.slot.start()
        settings = self.settings
        if settings.request_log_dir is not None:
            writer = f"{self.default_route}-{settings.version}-{uuid.uuid4().hex[:6]}"
            log = self.log = request_log.RequestLog(
                settings.request_log_dir,
                writer,
                serving_config.REQUEST_LOG_FLUSH_SECONDS,
                serving_config.REQUEST_LOG_MAX_BYTES,
                serving_config.REQUEST_LOG_MAX_SECONDS,
            )
            if threading.current_thread() is threading.main_thread():  # not under a test client's thread
                signal.signal(signal.SIGUSR1, lambda *_: log.close_file_soon())

    def shutdown(self) -> None:
        self.slot.stop()
        self.plane.close()
        if self.log is not None:
            self.log.close()


class _PredictDoor:
    """The predict paths (POST `...:predict`) served as a plain ASGI app, in front of the Starlette app,
    to which everything else passes (the other routes, the lifespan).

    Starlette's routing (a regex per route), middleware, Request and Response cost more of the server's
    CPU per single-trip request than the contract and the metrics together; here a request is matched by
    its path's prefix and suffix and answered with two ASGI messages (`make bench-serve`'s
    direct_baseline against direct measures the difference)."""

    def __init__(self, endpoints: _Endpoints, app: Starlette, base: str):
        self.endpoints, self.app, self.base = endpoints, app, base

    def _path_params(self, path: str) -> tuple[str | None, str | None] | None:
        """(version, label) of a predict path, as Starlette's `{version}` and `{label}` read them (one
        or more characters but '/'); None for any other path."""
        if not path.startswith(self.base) or not path.endswith(":predict"):
            return None
        rest = path[len(self.base) : -len(":predict")]
        if not rest:
            return None, None
        for prefix, as_label in (("/versions/", False), ("/labels/", True)):
            name = rest[len(prefix) :]
            if rest.startswith(prefix) and name and "/" not in name:
                return (None, name) if as_label else (name, None)
        return None

    async def __call__(self, scope, receive, send) -> None:
        params = self._path_params(scope["path"]) if scope["type"] == "http" else None
        if params is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            status, body, headers = _answer(405, f"Method Not Allowed: {scope['method']} {scope['path']}")
            headers.append((b"allow", b"POST"))
        else:
            request_body = await _read_body(receive)
            if request_body is None:  # the client went away before it had sent its request
                return
            headers_in = dict(reversed(scope["headers"]))  # the first of a repeated header, as Starlette
            status, body, headers = await self.endpoints.predict(headers_in, *params, request_body)
        if body:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes | None:
    """The request's body; None if the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def create_app(settings: ServerSettings) -> _PredictDoor:
    endpoints = _Endpoints(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        endpoints.startup()
        try:
            yield
        finally:
            endpoints.shutdown()

    base = f"/v1/models/{settings.model_name}"
    app = Starlette(
        exception_handlers={HTTPException: _http_error},
        routes=[
            Route(base, endpoints.status),
            Route(f"{base}/versions/{{version}}", endpoints.status),
            Route(f"{base}/labels/{{label}}", endpoints.status),
            Route(f"{base}/metadata", endpoints.metadata),
            Route(f"{base}/versions/{{version}}/metadata", endpoints.metadata),
            Route(f"{base}/labels/{{label}}/metadata", endpoints.metadata),
            Route("/ready", endpoints.ready),
            Route("/healthz", endpoints.healthz),
            Route("/metrics", endpoints.scrape),
        ],
        lifespan=lifespan,
    )
    return _PredictDoor(endpoints, app, base)
