"""The release API: the stack's releases and rollbacks over HTTP, for an operator who is not at the machine's
shell. It runs in the stack (started by `stack.start`), behind the control listener, and calls
serving/releases.py, the functions `taxi-pipeline serve` calls, under the same stack lock; a rollback is
recorded in the registry as the command's is.

    GET  /v1/releases            what is live, each process checked (as `taxi-pipeline serve status`)
    POST /v1/releases/canary     {"version": "200", "percent": 10}   a canary, or a new share for it
    POST /v1/releases/shadow     {"version": "200"}
    POST /v1/releases/switch     {"version": "200"}                  blue-green
    POST /v1/releases/promote    (no body, or {})
    POST /v1/releases/rollback   {"reason": "..."}                   (the body is optional)
    GET  /ready, /metrics        on its own loopback port only, which nginx does not route to

Every path needs the admin token (`Authorization: Bearer <outputs/serving/credentials/admin.token>`):
none or a wrong one is a 401, the feedback token a 403. A client's fault is a 4xx whose `error` names it:
a body that is not a JSON object (400, 413, 415 as request_checks.py says), a field missing, unknown, of
the wrong type or out of range (400, `field` names it), a version that is not pushed (404), what the stack
cannot do now (409: nothing to promote or roll back, a version rolled back, stable already, one that fails
to load). A 5xx is the API's own failure.

    python -m serving.release_api --serving-dir D --stack-root R --request-log L --port P
"""

import argparse
import math
from pathlib import Path

import prometheus_client
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import serving as serving_config
from serving import credentials, releases, request_checks, stack
from serving.stack_state import BadArgument, StackError, StackPaths, UnknownVersion

ACTIONS = serving_config.RELEASE_ACTIONS
VERSION_MAX_CHARACTERS = 20  # a version is a folder named by a number
paths_served = stack.release_api_paths


class _Refused(Exception):
    """A request refused: the HTTP status and the body's `error` (with the `field`, when one is at fault)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def create_app(paths: StackPaths) -> Starlette:
    """The release API for the stack at `paths`; it reads both tokens once, at its start."""
    app = Starlette(
        routes=[
            Route(serving_config.RELEASES_PATH, _status, methods=["GET"]),
            *(
                Route(f"{serving_config.RELEASES_PATH}/{action}", _release, methods=["POST"])
                for action in ACTIONS
            ),
            Route("/ready", lambda request: JSONResponse({"ready": True})),
            Route("/metrics", _scrape),
        ]
    )
    app.state.paths = paths
    app.state.tokens = {role: credentials.read(paths.root, role) for role in credentials.ROLES}
    app.state.registry = prometheus_client.CollectorRegistry()
    app.state.answered = prometheus_client.Counter(
        "taxi_release_requests",
        "Release API requests, by action and the status answered.",
        ["action", "status"],
        registry=app.state.registry,
    )
    return app


async def _status(request: Request) -> Response:
    return await _answer(
        request, "status", lambda: run_in_threadpool(releases.status, request.app.state.paths)
    )


async def _release(request: Request) -> Response:
    action = request.url.path.rsplit("/", 1)[1]

    async def act():
        fields = await _fields(request, action)
        return await run_in_threadpool(_act, request.app.state.paths, action, fields)

    return await _answer(request, action, act)


async def _answer(request: Request, action: str, work) -> Response:
    """Awaits `work()` once the admin token is checked; what it refuses is a 4xx."""
    try:
        _check_token(request)
        answer = JSONResponse(await work())
    except _Refused as refused:
        body = {"error": refused.message, **({"field": refused.field} if refused.field else {})}
        headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else None
        answer = JSONResponse(body, status_code=refused.status, headers=headers)
    except BadArgument as error:
        answer = JSONResponse({"error": f"{error.field}: {error}", "field": error.field}, status_code=400)
    except UnknownVersion as error:
        answer = JSONResponse({"error": f"version: {error}", "field": "version"}, status_code=404)
    except StackError as error:
        answer = JSONResponse({"error": str(error)}, status_code=409)
    request.app.state.answered.labels(action, str(answer.status_code)).inc()
    return answer


def _check_token(request: Request) -> None:
    sent, tokens = request.headers.get("authorization"), request.app.state.tokens
    if credentials.authorized(sent, tokens[credentials.ADMIN]):
        return
    if credentials.authorized(sent, tokens[credentials.FEEDBACK]):
        raise _Refused(403, "the feedback token may send labels only: releases need the admin token")
    raise _Refused(
        401,
        "releases need the admin token: 'Authorization: Bearer <token>' (docs/serving.md, the release API)",
    )


async def _fields(request: Request, action: str) -> dict:
    """The body's fields for `action`, each checked for presence and type; _Refused naming what is wrong."""
    try:
        request_checks.check_content_type(request.headers.get("content-type"))
        body = await request.body()
        request_checks.check_size(body, serving_config.SERVING_MAX_BODY_BYTES)
        body = request_checks.parse_json(body) if body.strip() else {}
    except request_checks.RefusedRequest as error:
        raise _Refused(error.status, error.message) from None
    if not isinstance(body, dict):
        raise _Refused(
            400, f"the body is a JSON object of the {action}'s fields, not a {type(body).__name__}"
        )
    expected = {
        "canary": {"version", "percent"},
        "shadow": {"version"},
        "switch": {"version"},
        "promote": set(),
        "rollback": {"reason"},
    }[action]
    unknown = sorted(set(body) - expected)
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise _Refused(
            400,
            f"{action} takes {', '.join(sorted(expected)) or 'no fields'}; not {shown}",
            str(unknown[0])[:40],
        )
    fields = {}
    if "version" in expected:
        fields["version"] = _version(body.get("version"))
    if "percent" in expected:
        fields["percent"] = _percent(body.get("percent"))
    if "reason" in expected:
        fields["reason"] = _reason(body.get("reason", ""))
    return fields


def _version(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise _Refused(
            400, f'version: expected a version number such as "200", not {_shown(value)}', "version"
        )
    if len(value) > VERSION_MAX_CHARACTERS:
        raise _Refused(400, f"version: {len(value)} digits, more than any version has", "version")
    return value


def _percent(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Refused(
            400, f"percent: expected a number above 0 and at most 100, not {_shown(value)}", "percent"
        )
    return float(value)


def _reason(value) -> str:
    if not isinstance(value, str):
        raise _Refused(400, f"reason: expected a string, not {_shown(value)}", "reason")
    if len(value) > serving_config.RELEASE_REASON_MAX_CHARACTERS:
        raise _Refused(
            400,
            f"reason: {len(value)} characters, more than the {serving_config.RELEASE_REASON_MAX_CHARACTERS} kept",
            "reason",
        )
    return value


def _shown(value) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"


def _act(paths: StackPaths, action: str, fields: dict) -> dict:
    """Runs the release (in a worker thread: it waits for the stack's lock, servers to load, old ones to
    drain); the answer is what is live afterwards."""
    rolled_back = {}
    if action == "canary":
        state = releases.canary(paths, fields["version"], fields["percent"])
    elif action == "shadow":
        state = releases.shadow(paths, fields["version"])
    elif action == "switch":
        state = releases.switch(paths, fields["version"])
    elif action == "promote":
        state = releases.promote(paths)
    else:
        done = releases.rollback(paths, fields["reason"])
        state, rolled_back = done.state, {"rolled_back": done.version, "seconds": round(done.seconds, 3)}
    return {"now": releases.describe(state), **rolled_back, "state": state}


async def _scrape(request: Request) -> Response:
    return Response(
        prometheus_client.generate_latest(request.app.state.registry),
        media_type=prometheus_client.CONTENT_TYPE_LATEST,
    )


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m serving.release_api", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--serving-dir", required=True, help="The Pusher's serving directory.")
    parser.add_argument("--stack-root", required=True, help="The stack's folder (state, lock, credentials).")
    parser.add_argument("--request-log", required=True, help="The servers' request-log folder.")
    parser.add_argument("--port", type=int, required=True, help="Its port on 127.0.0.1.")
    args = parser.parse_args(argv)
    paths = StackPaths(Path(args.serving_dir), Path(args.stack_root), Path(args.request_log))
    uvicorn.run(create_app(paths), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
