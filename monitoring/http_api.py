"""The monitor's HTTP API (Starlette): maps requests to the monitor (monitoring/monitor.py), and a
client's bad input to a 4xx naming the problem.

    POST /v1/feedback   {"feedback": [{"request_id": ..., "trip": 0, "tips": 2.5, "fare": 12.5}, ...]}
    GET  /v1/monitor    the latest figures, as JSON (what `make monitor` shows)
    GET  /metrics       the same for Prometheus: live, evaluated and estimated quality per version
    GET  /ready         answers once the monitor is up

The stack routes /v1/feedback to it and Prometheus scrapes it (`taxi-pipeline monitor start` attaches it).
"""

import contextlib
import json
import threading

import prometheus_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import monitoring as monitoring_config
from monitoring.monitor import Monitor


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


async def _receive_feedback(request: Request) -> Response:
    monitor: Monitor = request.app.state.monitor
    try:
        body = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        monitor.count_malformed_body()
        return JSONResponse({"error": f"malformed JSON: {error}"}, status_code=400)
    rows = body.get("feedback") if isinstance(body, dict) else body
    if not isinstance(rows, list) or not rows:
        return JSONResponse(
            {"error": 'expected {"feedback": [{"request_id": ..., "tips": ...}, ...]}'}, status_code=400
        )
    answer = monitor.receive(rows)
    if answer["accepted"]:
        return JSONResponse(answer)
    status = 400 if answer["refused"] else 409
    return JSONResponse(
        {"error": "; ".join(answer["refused"] + answer["duplicates"]), **answer}, status_code=status
    )


async def _figures(request: Request) -> Response:
    return JSONResponse(request.app.state.monitor.latest)


async def _scrape(request: Request) -> Response:
    return Response(
        prometheus_client.generate_latest(request.app.state.monitor.gauges.registry),
        media_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
