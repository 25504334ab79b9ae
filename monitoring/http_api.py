"""The monitor's HTTP API (Starlette): maps requests to the monitor (monitoring/monitor.py), and a
client's bad input to a 4xx naming the problem (the content type, size and JSON of a body are checked
as the model servers check theirs, serving/request_checks.py).

    POST /v1/feedback   {"feedback": [{"request_id": ..., "trip": 0, "tips": 2.5, "fare": 12.5}, ...]}
    GET  /v1/monitor    the latest figures, as JSON (what `make monitor` shows)
    GET  /metrics       the same for Prometheus: live, evaluated and estimated quality per version
    GET  /ready         answers once the monitor is up

The stack routes /v1/feedback and /v1/monitor to it from its control listener (loopback) and
Prometheus scrapes it (`taxi-pipeline monitor start` attaches it). Feedback needs the feedback token,
the figures the admin token (serving/credentials.py: `Authorization: Bearer ...`, else 401); /metrics
and /ready answer on the monitor's own loopback port only, which nginx does not route to.
"""

import contextlib
import threading

import prometheus_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from monitoring.monitor import Monitor
from serving import credentials, request_checks


def create_app(settings: folders.Settings, window: float = monitoring_config.LIVE_QUALITY_WINDOW_SECONDS,
               refresh_seconds: float = monitoring_config.MONITOR_REFRESH_SECONDS,
               grace_seconds: float = monitoring_config.FEEDBACK_GRACE_SECONDS) -> Starlette:  # fmt: skip
    """The monitor's app; it refreshes every `refresh_seconds` while it runs. `app.state.monitor` is the
    monitor."""
    app = Starlette(
        routes=[
            Route(monitoring_config.FEEDBACK_PATH, _receive_feedback, methods=["POST"]),
            Route(monitoring_config.MONITOR_PATH, _figures),
            Route("/metrics", _scrape),
            Route("/ready", lambda request: JSONResponse({"ready": True})),
        ],
        lifespan=_refreshing,
    )
    credentials.ensure(settings.serving_stack_dir)
    app.state.tokens = {
        role: credentials.read(settings.serving_stack_dir, role) for role in credentials.ROLES
    }
    app.state.monitor = Monitor(settings, window, grace_seconds)
    app.state.refresh_seconds = refresh_seconds
    return app


@contextlib.asynccontextmanager
async def _refreshing(app: Starlette):
    stop = threading.Event()
    thread = threading.Thread(
        target=app.state.monitor.refresh_every,
        args=(app.state.refresh_seconds, stop),
        daemon=True,
        name="monitor-refresh",
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _unauthorized(request: Request, role: str) -> Response | None:
    """A 401 unless the request carries the token of `role`."""
    if credentials.authorized(request.headers.get("authorization"), request.app.state.tokens[role]):
        return None
    return JSONResponse(
        {"error": f"this path needs the {role} token: 'Authorization: Bearer <token>' (docs/serving.md)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _receive_feedback(request: Request) -> Response:
    if refused := _unauthorized(request, credentials.FEEDBACK):
        return refused
    monitor: Monitor = request.app.state.monitor
    try:
        request_checks.check_content_type(request.headers.get("content-type"))
        body = await request.body()
        request_checks.check_size(body, serving_config.SERVING_MAX_BODY_BYTES)
        body = request_checks.parse_json(body)
    except request_checks.RefusedRequest as error:
        monitor.count_malformed_body()
        return JSONResponse({"error": error.message}, status_code=error.status)
    rows = body.get("feedback") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        return JSONResponse(
            {"error": 'expected {"feedback": [{"request_id": ..., "tips": ...}, ...]}'}, status_code=400
        )
    if len(rows) > monitoring_config.FEEDBACK_MAX_ROWS:
        return JSONResponse(
            {
                "error": f"{len(rows)} rows of feedback, more than the {monitoring_config.FEEDBACK_MAX_ROWS} a request may carry"
            },
            status_code=400,
        )
    answer = monitor.receive(rows)
    if answer["accepted"]:
        return JSONResponse(answer)
    status = 400 if answer["refused"] else 409
    return JSONResponse(
        {"error": "; ".join(answer["refused"] + answer["duplicates"]), **answer}, status_code=status
    )


async def _figures(request: Request) -> Response:
    if refused := _unauthorized(request, credentials.ADMIN):
        return refused
    return JSONResponse(request.app.state.monitor.latest)


async def _scrape(request: Request) -> Response:
    return Response(
        prometheus_client.generate_latest(request.app.state.monitor.gauges.registry),
        media_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
