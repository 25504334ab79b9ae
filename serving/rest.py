"""The model server's HTTP app: TF Serving's REST routes on Starlette, over the data plane.

    GET  /v1/models/taxi                               version status, in TF Serving's shape
    GET  /v1/models/taxi/metadata                      the signatures
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

import prometheus_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from serving import request_log
from serving.dataplane import DataPlane, Prediction, ServingError
from serving.metrics import ServerMetrics
from serving.model import VersionSlot
from serving.request_contract import RequestContract

ROUTE_HEADER, REQUEST_ID_HEADER, VERSION_HEADER = "x-route", "x-request-id", "x-model-version"


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
        try:
            return JSONResponse(self.plane.status(request.path_params.get("version")))
        except ServingError as error:
            return _error(error.status, error.message)

    async def metadata(self, request: Request) -> Response:
        try:
            return JSONResponse(self.plane.metadata())
        except ServingError as error:
            return _error(error.status, error.message)

    async def predict(self, request: Request) -> Response:
        route = request.headers.get(ROUTE_HEADER, self.default_route)
        if route != serving_config.SHADOW_ROUTE:
            return await self._respond(request, route)
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
            return _error(503, f"the shadow is {len(pending)} requests behind: this copy is dropped")
        await request.body()  # read now, while the connection is this request's
        task = asyncio.get_running_loop().create_task(self._respond(request, route))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return Response(status_code=202)

    async def _respond(self, request: Request, route: str) -> Response:
        """Answers a predict request, counts and times it, and logs its trips when it was answered."""
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        model = self.slot.model
        version = model.version if model else "none"
        prediction: Prediction | None = None
        try:
            params = request.path_params
            body = await request.body()
            prediction = await self.plane.predict(
                model, body, route, params.get("version"), params.get("label")
            )
            response = Response(prediction.body, media_type="application/json")
        except ServingError as error:
            response = _error(error.status, error.message)
        except Exception as error:  # the model's fault, not the request's: 500, counted, the server stays up
            message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())[:300]
            print(f"version {version} failed a request: {type(error).__name__}: {message}", flush=True)
            response = _error(500, f"version {version} failed to predict: {type(error).__name__}: {message}")
        seconds = time.perf_counter() - started
        self.metrics.record(version, route, response.status_code, seconds)
        response.headers[REQUEST_ID_HEADER] = request_id
        if model is not None:
            response.headers[VERSION_HEADER] = model.version
        if self.log is not None and prediction is not None:
            self.log.append(
                request_log.request_rows(
                    request_id, version, route, seconds, prediction.probabilities, prediction.columns
                )
            )
        return response

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
            writer = f"{'-'.join(settings.labels) or 'server'}-{settings.version}-{uuid.uuid4().hex[:6]}"
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


def create_app(settings: ServerSettings) -> Starlette:
    endpoints = _Endpoints(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        endpoints.startup()
        try:
            yield
        finally:
            endpoints.shutdown()

    base = f"/v1/models/{settings.model_name}"
    return Starlette(
        routes=[
            Route(base, endpoints.status),
            Route(f"{base}/versions/{{version}}", endpoints.status),
            Route(f"{base}/metadata", endpoints.metadata),
            Route(f"{base}:predict", endpoints.predict, methods=["POST"]),
            Route(f"{base}/versions/{{version}}:predict", endpoints.predict, methods=["POST"]),
            Route(f"{base}/labels/{{label}}:predict", endpoints.predict, methods=["POST"]),
            Route("/ready", endpoints.ready),
            Route("/healthz", endpoints.healthz),
            Route("/metrics", endpoints.scrape),
        ],
        lifespan=lifespan,
    )
