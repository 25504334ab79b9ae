"""No client input makes a 5xx, on any endpoint, and none counts against a version: generated requests
through nginx to every path of serving/openapi.yaml (schemathesis, valid and invalid by the document;
the public API on the public port, feedback and the monitor on the control listener with their tokens),
then raw ones no document describes to both listeners (bytes that are not JSON, deep nesting, any content
type, unknown versions, labels and paths, client headers that would name a route, wrong or no tokens).
Real stack on loopback: a stable and a 10 % canary model server, the monitor, nginx, Prometheus.

The release API (with the admin token) is fuzzed last: a generated promote or rollback is valid and moves
traffic, so the servers are checked before it, and after it those of whatever is live then; any release
it accepts is harmless, as both versions are the same model.

The count and the time are bounded (`REQUESTS`, about three minutes on the 2-core machine); the examples
are drawn from a fixed seed so that a failure replays.
"""

import contextlib
import json
import string
import time
import urllib.request

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from monitoring import control
from registry import versions
from serving import credentials, openapi, processes, release_api, releases, stack
from tests.support import serving_models, system_tools

pytestmark = pytest.mark.e2e

REQUESTS = 10_000  # the floor: at least this many generated requests in all
PER_OPERATION = 50  # per path, method and mode (valid, invalid) of the document: 18 x 2 x 50 at most
RELEASE_RAW_REQUESTS = 500  # raw bodies, headers and tokens to the release API's paths
BASE = f"/v1/models/{serving_config.SERVING_MODEL_NAME}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running stack: 100 stable, 200 a 10 % canary, the monitor behind nginx; its state and settings."""
    system_tools.require("nginx", "prometheus")
    root = tmp_path_factory.mktemp("fuzz")
    model = serving_models.train(root / "model", seed=0)
    settings = folders.Settings(output_dir=root / "outputs", data_root=None)
    for version in ("100", "200"):
        versions.write_version(settings.serving_model_dir, model, version)
    paths = stack.StackPaths.of(settings)
    try:
        stack.start(paths, "100", processes.free_port(), processes.free_port())
        releases.canary(paths, "200", 10)
        control.start(settings)
        yield paths, stack.running_state(paths)
    finally:
        stack.stop(paths)


class _Tally:
    """Every answer's status, and the first few 5xx with what was sent."""

    def __init__(self):
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []

    def add(self, status: int, sent: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status >= 500 and len(self.failures) < 10:
            self.failures.append(f"{status} for {sent[:500]}")

    @property
    def count(self) -> int:
        return sum(self.statuses.values())


def _bounded(examples: int) -> hypothesis.settings:
    """At most `examples` generated cases, from a fixed seed (a failure replays), no shrinking: a 5xx is
    reported with the request that made it."""
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )


def _is_release(path: str) -> bool:
    return path.startswith(serving_config.RELEASES_PATH)


def _fuzz_document(
    urls: dict, tokens: dict, session: requests.Session, tally: _Tally, releases: bool
) -> None:
    """`urls`: the public and the control listener's; `tokens`: {role: header} for the control paths;
    `releases`: the release API's operations only, else all the others."""
    schema = schemathesis.openapi.from_dict(openapi.document())
    for result in schema.get_all_operations():
        operation = result.ok()
        if _is_release(operation.path) != releases:
            continue
        role = {monitoring_config.FEEDBACK_PATH: "feedback", monitoring_config.MONITOR_PATH: "admin"}.get(
            operation.path, "admin" if releases else None
        )
        url, headers = (urls["control"], tokens[role]) if role else (urls["public"], {})
        for mode in schemathesis.GenerationMode:
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):  # no invalid request exists for it
                _fuzz_operation(operation.as_strategy(generation_mode=mode), url, headers, session, tally)


def _fuzz_operation(cases, url: str, headers: dict, session: requests.Session, tally: _Tally) -> None:
    @_bounded(PER_OPERATION)
    @hypothesis.given(case=cases)
    def send(case):
        answer = case.call(base_url=url, session=session, headers=headers, timeout=30)
        tally.add(answer.status_code, f"{case.method} {case.formatted_path} {case.body!r}"[:500])

    send()


_PATHS = st.one_of(
    st.sampled_from(
        [
            f"{BASE}:predict",
            f"{BASE}/metadata",
            BASE,
            "/healthz",
            monitoring_config.FEEDBACK_PATH,
            monitoring_config.MONITOR_PATH,
        ]
    ),
    st.builds(
        lambda v, tail: f"{BASE}/versions/{v}{tail}",
        st.text(string.digits, min_size=1, max_size=25),
        st.sampled_from([":predict", "/metadata", ""]),
    ),  # fmt: skip
    st.builds(
        lambda label, tail: f"{BASE}/labels/{label}{tail}",
        st.text(string.ascii_letters + "_", min_size=1, max_size=40),
        st.sampled_from([":predict", "/metadata", ""]),
    ),  # fmt: skip
    st.text(string.ascii_letters + string.digits + "/:._-%", max_size=60).map(lambda tail: f"/{tail}"),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    _JSON.map(lambda value: json.dumps(value).encode()),
    _JSON.map(lambda value: json.dumps({"instances": value, "feedback": value}).encode()),
    st.integers(1, 3000).map(lambda depth: b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"),
    st.sampled_from([b'{"instances": [{"fare": 1e400}]}', b'{"instances": [{"company": "\\ud800"}]}']),
)
_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/xml", "multipart/form-data", "x/" + "y" * 200]
        ),
        "X-Route": st.sampled_from(["canary", "shadow", "previous", "made-up", "x" * 300]),
        "X-Request-Key": st.text(string.printable.strip(), max_size=50),
        "X-Request-Id": st.text(string.ascii_letters, max_size=50),
    },
)


_RELEASE_PATHS = st.sampled_from(release_api.paths_served())


def _fuzz_raw(urls: dict, tokens: dict, session: requests.Session, tally: _Tally, count: int, paths) -> None:
    @_bounded(count)
    @hypothesis.given(
        listener=st.sampled_from(["public", "control"]),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
        path=paths,
        body=_BODIES,
        headers=_HEADERS,
        token=st.sampled_from([{}, {"Authorization": "Bearer guess"}, *tokens.values()]),
    )
    def send(listener, method, path, body, headers, token):
        headers = {**headers, **token}
        answer = session.request(method, urls[listener] + path, data=body, headers=headers, timeout=30)
        tally.add(answer.status_code, f"{listener} {method} {path} {headers} {body[:200]!r}")

    send()


def _ready(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_no_generated_request_makes_a_5xx_or_counts_against_a_version(served):
    paths, state = served
    urls = {
        name: f"http://127.0.0.1:{state[port]}"
        for name, port in (("public", "port"), ("control", "control_port"))
    }
    tokens = {role: credentials.bearer(paths.root, role) for role in credentials.ROLES}
    tally = _Tally()
    started = time.monotonic()
    with requests.Session() as session:
        _fuzz_document(urls, tokens, session, tally, releases=False)
        from_document = tally.count
        _fuzz_raw(urls, tokens, session, tally, max(2_000, REQUESTS - tally.count), _PATHS)
        _check_servers(state, answered=True)
        # Last, as the release API may move traffic (a valid promote, a rollback): whatever it accepts,
        # the stack serves afterwards.
        before = tally.count
        _fuzz_document(urls, tokens, session, tally, releases=True)
        _fuzz_raw(urls, tokens, session, tally, RELEASE_RAW_REQUESTS, _RELEASE_PATHS)
        releases_sent = tally.count - before
    seconds = time.monotonic() - started
    print(
        f"{tally.count} requests ({from_document} from the document, {releases_sent} to the release API) "
        f"in {seconds:.0f} s: {tally.statuses}"
    )

    assert tally.count >= REQUESTS
    assert not tally.failures, "\n".join(tally.failures)
    assert tally.statuses.get(200, 0) > 100  # valid requests were answered, not all refused
    _check_servers(stack.read_state(paths), answered=False)  # a server a release started may have had none


def _check_servers(state: dict, answered: bool) -> None:
    """Every server of `state` is ready, counted no 5xx and no route a client chose (and, if `answered`,
    counted requests); nginx is healthy."""
    servers = [(state[name]["version"], p["port"]) for name in ("stable", "candidate") if state.get(name)
               for p in state[name]["processes"]]  # fmt: skip
    for version, port in servers:
        assert _ready(port, "/ready"), (
            f"version {version}'s server on port {port} is not ready after the fuzzing"
        )
    assert _ready(state["port"], "/healthz")
    for version, port in servers:
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        counted = [line for line in metrics.decode().splitlines() if line.startswith("taxi_requests_total{")]
        assert counted or not answered, f"version {version}'s server on port {port} counted no request"
        assert not [line for line in counted if 'status="5' in line], counted
        routes = {line.split('route="', 1)[1].split('"', 1)[0] for line in counted}
        assert routes <= set(serving_config.ROUTES), routes  # no client chose a metric label


def test_the_control_plane_is_not_public_and_needs_its_tokens(served):
    """Feedback, the monitor's figures and the release API: not served on the public port at all; on the
    control listener, refused without the right token (the feedback token reads no figures and releases
    nothing, the admin token sends no labels), accepted with it."""
    paths, state = served
    public, control = (f"http://127.0.0.1:{state[key]}" for key in ("port", "control_port"))
    tokens = {role: credentials.bearer(paths.root, role) for role in credentials.ROLES}
    feedback = {"feedback": [{"request_id": "not-served", "tips": 1.0}]}
    for headers in ({}, *tokens.values()):
        assert (
            requests.post(
                public + monitoring_config.FEEDBACK_PATH, json=feedback, headers=headers
            ).status_code
            == 404
        )
        assert requests.get(public + monitoring_config.MONITOR_PATH, headers=headers).status_code == 404
        assert requests.get(public + "/_traffic", headers=headers).status_code == 404
    for headers in ({}, {"Authorization": "Bearer guess"}, tokens["admin"]):
        assert (
            requests.post(
                control + monitoring_config.FEEDBACK_PATH, json=feedback, headers=headers
            ).status_code
            == 401
        )
    for headers in ({}, tokens["feedback"]):
        assert requests.get(control + monitoring_config.MONITOR_PATH, headers=headers).status_code == 401
    assert (
        requests.post(
            control + monitoring_config.FEEDBACK_PATH, json=feedback, headers=tokens["feedback"]
        ).status_code
        == 200
    )
    assert requests.get(control + monitoring_config.MONITOR_PATH, headers=tokens["admin"]).status_code == 200
    for path in release_api.paths_served():
        assert requests.post(public + path, json={}, headers=tokens["admin"]).status_code == 404
        assert requests.get(control + path, headers=tokens["feedback"]).status_code in (403, 405)
    assert requests.get(control + serving_config.RELEASES_PATH).status_code == 401
    assert requests.get(control + serving_config.RELEASES_PATH, headers=tokens["feedback"]).status_code == 403
    assert requests.get(control + serving_config.RELEASES_PATH, headers=tokens["admin"]).status_code == 200
