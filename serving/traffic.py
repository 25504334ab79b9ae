"""The traffic layer: nginx in front of one model-server process per live version, from the state.

- single:     every request to stable.
- shadow:     every request to stable; nginx's `mirror` copies each one to the candidate, whose answer is
              thrown away. A mirror subrequest holds the client's keep-alive connection until it ends:
              the shadow server answers a copy at once and predicts afterwards, and the mirror
              location's tight timeouts bound a shadow too busy to answer (docs/serving.md measures it).
- canary:     `split_clients` sends `percent` % of requests to the candidate, keyed on the
              `X-Request-Key` header when a client sends one (sticky: one key, one side), else on the
              request id.
- blue-green: every request to the version switched to; the one switched from keeps running, so a
              rollback is an nginx reload.

Every request gets an id (`$request_id`), passed to the server that answers and to the shadow, so the
request log pairs a stable and a shadow prediction. The configuration is serving/nginx.conf.j2, filled in
from the state; serving/nginx.py applies it.
"""

import dataclasses
import functools
from pathlib import Path

import jinja2

from config import serving as serving_config

SINGLE, SHADOW, CANARY, BLUE_GREEN = "single", "shadow", "canary", "blue-green"
MODES = (SINGLE, SHADOW, CANARY, BLUE_GREEN)
# The labels a client may name (`/labels/L:predict`, TF Serving's version labels): nginx maps each to a
# version, or answers 404 when it names none now.
LABELS = ("stable", "canary")


@dataclasses.dataclass
class Backend:
    version: str
    ports: tuple[int, ...]  # its server processes' (nginx retries a request on another)


@dataclasses.dataclass(frozen=True)
class Service:
    """A process beside the model servers that the front door routes some exact paths to (the monitor's
    feedback endpoint); attached with `stack.attach`, so serving needs no knowledge of it."""

    name: str
    port: int
    paths: tuple[str, ...]


@dataclasses.dataclass
class Traffic:
    """What nginx routes where: the state's `traffic` part."""

    mode: str
    stable: Backend
    candidate: Backend | None = None  # shadow, canary: the new version; blue-green: the one switched from
    canary_percent: float = 0.0
    generation: int = 0  # counts the state's changes; `GET /_traffic` answers it once a reload took effect
    services: tuple[Service, ...] = ()

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown traffic mode {self.mode!r}: expected one of {', '.join(MODES)}")
        if self.mode != SINGLE and self.candidate is None:
            raise ValueError(f"mode {self.mode} needs a second version")


TEMPLATE = Path(__file__).with_name("nginx.conf.j2")


def render(traffic: Traffic, port: int, run_dir: str, control_port: int,
           model_name: str = serving_config.SERVING_MODEL_NAME) -> str:  # fmt: skip
    """The whole nginx.conf for this traffic, the public API on 127.0.0.1:`port`, the services' paths and
    the stack's probe on 127.0.0.1:`control_port`: serving/nginx.conf.j2 filled in."""
    stable = f"v{traffic.stable.version}"
    candidate = f"v{traffic.candidate.version}" if traffic.candidate else ""
    return _template().render(
        mode=traffic.mode,
        generation=traffic.generation,
        split=traffic.mode == CANARY,  # the share goes to the candidate
        mirror=traffic.mode == SHADOW,  # a copy of each request goes to the candidate
        canary_label=traffic.mode in (CANARY, SHADOW),  # `labels/canary:predict` reaches the candidate
        backends=[traffic.stable] + ([traffic.candidate] if traffic.candidate else []),
        stable=stable,
        candidate=candidate,
        canary_percent=f"{traffic.canary_percent:g}",
        services=traffic.services,
        port=port,
        control_port=control_port,
        run_dir=run_dir,
        model_name=model_name,
        base=f"/v1/models/{model_name}",
        max_body_bytes=serving_config.SERVING_MAX_BODY_BYTES,
        shadow_route=serving_config.SHADOW_ROUTE,
        shadow_timeout_ms=serving_config.SHADOW_TIMEOUT_MS,
        upstream_connect_timeout_ms=serving_config.UPSTREAM_CONNECT_TIMEOUT_MS,
        upstream_read_timeout_ms=serving_config.UPSTREAM_READ_TIMEOUT_MS,
        upstream_fail_seconds=serving_config.UPSTREAM_FAIL_SECONDS,
        control_read_timeout_seconds=serving_config.CONTROL_READ_TIMEOUT_SECONDS,
    )


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,  # a name the template misspells fails, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # nginx, not HTML
    )
    return environment.from_string(TEMPLATE.read_text())
