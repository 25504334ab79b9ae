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
request log pairs a stable and a shadow prediction. Changes are graceful reloads (`nginx -s reload`):
in-flight requests finish on the old workers.
"""

import dataclasses

from config import serving as serving_config

SINGLE, SHADOW, CANARY, BLUE_GREEN = "single", "shadow", "canary", "blue-green"
MODES = (SINGLE, SHADOW, CANARY, BLUE_GREEN)


@dataclasses.dataclass
class Backend:
    version: str
    port: int


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


def render(
    traffic: Traffic, port: int, run_dir: str, model_name: str = serving_config.SERVING_MODEL_NAME
) -> str:
    """The whole nginx.conf for this traffic, listening on 127.0.0.1:`port`."""
    base = f"/v1/models/{model_name}"
    backends = [traffic.stable] + ([traffic.candidate] if traffic.candidate else [])
    upstreams = "\n".join(
        f"    upstream v{b.version} {{ server 127.0.0.1:{b.port}; keepalive 32; }}" for b in backends
    )
    stable, candidate = (
        f"v{traffic.stable.version}",
        f"v{traffic.candidate.version}" if traffic.candidate else "",
    )
    if traffic.mode == CANARY:
        split = (
            f'    split_clients "${{traffic_key}}" $default_pool {{ {traffic.canary_percent:g}% {candidate}; * {stable}; }}\n'
            f"    map $default_pool $default_route {{ {candidate} canary; default stable; }}"
        )
    else:
        split = f'    map "" $default_pool {{ default {stable}; }}\n    map "" $default_route {{ default stable; }}'
    mirror = "            mirror /_shadow;\n" if traffic.mode == SHADOW else ""
    versions = "\n".join(f"        {b.version} v{b.version};" for b in backends)
    labels = f"        stable {stable};" + (
        f"\n        canary {candidate};" if traffic.mode in (CANARY, SHADOW) else ""
    )
    proxy = """            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id $request_id;"""
    attached = "".join(
        f"""        location = {path} {{
{proxy}
            proxy_pass http://127.0.0.1:{service.port};
        }}
"""
        for service in traffic.services
        for path in service.paths
    )
    return f"""# Written by serving/traffic.py from the serving state: {traffic.mode}. Do not edit: `taxi-pipeline serve` rewrites it.
worker_processes 1;
pid {run_dir}/nginx.pid;
error_log {run_dir}/nginx_error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run_dir}/client_body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
    client_max_body_size {serving_config.SERVING_MAX_BODY_BYTES};
    client_body_buffer_size {serving_config.SERVING_MAX_BODY_BYTES};
    default_type application/json;
{upstreams}
    # The key a canary split is sticky on: the client's X-Request-Key, else the request's own id.
    map $http_x_request_key $traffic_key {{ "" $request_id; default $http_x_request_key; }}
{split}
    map $version_asked $version_pool {{
{versions}
        default "";
    }}
    map $label_asked $label_pool {{
{labels}
        default "";
    }}
    server {{
        listen 127.0.0.1:{port};
        error_page 413 = @too_large;
        # `nginx -s reload` returns before the new workers run: the stack polls this until it answers
        # the new generation, so no request sent after a change is routed by the old configuration.
        location = /_traffic {{
            return 200 '{{"mode": "{traffic.mode}", "generation": {traffic.generation}}}';
        }}
        location @too_large {{
            return 413 '{{"error": "the request body is larger than the {serving_config.SERVING_MAX_BODY_BYTES} bytes allowed"}}';
        }}
        location = {base}:predict {{
{mirror}{proxy}
            proxy_set_header X-Route $default_route;
            proxy_pass http://$default_pool;
        }}
        location ~ ^{base}/versions/(?<version_asked>[0-9]+):predict$ {{
            if ($version_pool = "") {{
                return 404 '{{"error": "version $version_asked of model {model_name} is not served (serving {", ".join(b.version for b in backends)})"}}';
            }}
{proxy}
            proxy_set_header X-Route $default_route;
            proxy_pass http://$version_pool;
        }}
        location ~ ^{base}/labels/(?<label_asked>[a-zA-Z0-9_]+):predict$ {{
            if ($label_pool = "") {{
                return 404 '{{"error": "label $label_asked of model {model_name} is not assigned"}}';
            }}
{proxy}
            proxy_set_header X-Route $label_asked;
            proxy_pass http://$label_pool;
        }}
        location = /_shadow {{
            internal;
{proxy}
            proxy_set_header X-Route {serving_config.SHADOW_ROUTE};
            proxy_connect_timeout {serving_config.SHADOW_TIMEOUT_MS}ms;
            proxy_send_timeout {serving_config.SHADOW_TIMEOUT_MS}ms;
            proxy_read_timeout {serving_config.SHADOW_TIMEOUT_MS}ms;
            proxy_pass http://{candidate or stable}{base}:predict;
        }}
        location {base} {{
{proxy}
            proxy_pass http://{stable};
        }}
{attached}
        location / {{
            return 404 '{{"error": "no such path: the model is at {base} (TF Serving REST API)"}}';
        }}
    }}
}}
"""
