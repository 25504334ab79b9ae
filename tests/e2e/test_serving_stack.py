"""The serving stack as it runs: nginx, one model-server process per live version and Prometheus, all
real processes on 127.0.0.1, with bounded loads. Needs nginx and prometheus (Debian's nginx-light and
prometheus; CI installs them).

Versions: 100 and 200 are real models of the pipeline's code (tests/support/serving_models.py, different seeds);
300 is broken (it passes the warm-up, then every prediction fails), 400 slow (~0.2 s) and 600 does not
load, as bad pushes would be.
"""

import base64
import csv
import math
import shutil
import time
from pathlib import Path

import pytest
import requests
import tensorflow as tf

from benchmarks import model_variants
from clients import load, raw_examples
from config import folders
from config import serving as serving_config
from inputs import taxi_sample
from models.signatures import PREDICTION
from registry import versions
from serving import credentials, nginx, processes, releases, request_contract, stack
from tests.support import serving_models, system_tools

pytestmark = pytest.mark.e2e

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"
TRIP = request_contract.EXAMPLE_TRIP


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    system_tools.require("nginx", "prometheus", "mtail")
    root = tmp_path_factory.mktemp("stack")
    models = root / "models"
    first, second = (
        serving_models.train(models / "first", seed=0),
        serving_models.train(models / "second", seed=1),
    )
    settings = folders.Settings(output_dir=root / "outputs", data_root=None)
    serving = settings.serving_model_dir
    not_a_model = root / "variants" / "not_a_model"  # pushed whole, but its graph was truncated before
    shutil.copytree(first, not_a_model)
    (not_a_model / "saved_model.pb").write_bytes(b"truncated by a bad export")
    for version, source in (
        ("100", first),
        ("200", second),
        ("300", model_variants.broken(first, root / "variants" / "broken")),
        ("400", model_variants.slow(first, root / "variants" / "slow", seconds=0.2)),
        ("600", not_a_model),
    ):
        versions.write_version(serving, source, version)  # as the Pusher writes: whole, with its record
    paths = stack.StackPaths.of(settings)
    stack.start(paths, "100", processes.free_port(), processes.free_port())
    yield paths
    stack.stop(paths)


def _url(paths) -> str:
    return f"http://127.0.0.1:{stack.read_state(paths)['port']}"


def _sample(count: int) -> tuple[list[str], list[list[str]]]:
    header, rows = serving_models.sample_rows(keep_every=53)
    return header, rows[:count]


def test_predictions_through_nginx_are_the_saved_models_own(paths):
    header, rows = _sample(20)
    model = tf.saved_model.load(str(paths.serving_dir / "100"))
    types = raw_examples.column_types()
    serialized = [raw_examples.serialized_example(header, row, types) for row in rows]
    expected = (
        model.signatures["serving_default"](examples=tf.constant(serialized))[PREDICTION].numpy().reshape(-1)
    )
    convert = {2: lambda v: int(float(v)), 3: float, 1: str}  # schema_pb2 INT, FLOAT, BYTES
    instances = [
        {
            n: None if v == "" else convert[types[n]](v)
            for n, v in zip(header, row, strict=True)
            if n != "tips"
        }
        for row in rows
    ]
    client = load.Client(_url(paths))
    _, by_rows, headers = client.post(PREDICT, {"instances": instances})
    _, by_columns, _ = client.post(PREDICT, {"inputs": {n: [i[n] for i in instances] for n in instances[0]}})
    _, by_examples, _ = client.post(
        PREDICT,
        {
            "signature_name": "serving_default",
            "instances": [{"b64": base64.b64encode(s).decode()} for s in serialized],
        },
    )
    assert headers["x-model-version"] == "100"
    for answer, key in ((by_rows, "predictions"), (by_columns, "outputs"), (by_examples, "predictions")):
        assert [p[0] for p in answer[key]] == pytest.approx(expected.tolist(), abs=1e-6)


def test_bad_requests_through_nginx_get_a_4xx_naming_the_problem(paths):
    client = load.Client(_url(paths))
    assert client.post(PREDICT, b"{not json")[0] == 400
    status, body, _ = client.post(PREDICT, {"instances": [dict(TRIP, fare="12")]})
    assert status == 400 and "fare must be a number" in body["error"]
    status, body, _ = client.post(PREDICT, {"instances": [dict(TRIP, surge=2)]})
    assert status == 400 and "unknown feature(s) surge" in body["error"]
    status, body, _ = client.post(PREDICT, {"instances": [TRIP] * (serving_config.SERVING_MAX_BATCH + 1)})
    assert status == 400 and "more than the" in body["error"]
    status, body, _ = load.Client(_url(paths)).post(
        PREDICT, b"{" + b" " * (serving_config.SERVING_MAX_BODY_BYTES + 10) + b"}"
    )
    assert status == 413 and "larger than" in body["error"]


def test_shadow_answers_as_stable_alone_and_logs_both_predictions_per_request(paths):
    client = load.Client(_url(paths))
    alone = [client.post(PREDICT, {"instances": [dict(TRIP, fare=5.0 + i)]})[1] for i in range(30)]
    releases.shadow(paths, "200")
    client = load.Client(
        _url(paths)
    )  # a new connection: the old one may still be on a worker of the old config
    shadowed, ids = [], []
    late_copies_before = _late_shadow_copies(paths)
    for i in range(30):
        _, body, headers = client.post(PREDICT, {"instances": [dict(TRIP, fare=5.0 + i)]})
        shadowed.append(body)
        ids.append(headers["x-request-id"])
    # The shadow predicts after it has answered nginx, and a loaded machine (CI) can take seconds for
    # a new process's first predictions, so the test waits for the rows rather than for a fixed time.
    by_id = _wait_for_log_routes(paths, ids, {"stable", "shadow"}, seconds=30)
    late_copies = _late_shadow_copies(paths) - late_copies_before
    releases.rollback(paths, "end of the shadow test")
    versions.undo_rollback(paths.serving_dir, "200")
    assert shadowed == alone  # the shadow changes nothing a client sees
    assert all("stable" in by_id[request_id] for request_id in ids)
    # The candidate saw every request, and the log pairs the two answers, but for copies that outlived the
    # mirror's timeouts (a loaded machine): each of those is in nginx's error log, none is lost silently.
    paired = [by_id[request_id] for request_id in ids if "shadow" in by_id[request_id]]
    assert paired and len(ids) - len(paired) <= late_copies, (len(paired), late_copies)
    assert all(rows["shadow"]["model_version"] == "200" for rows in paired)


def test_a_canary_gets_its_share_and_sticky_keys_stay_on_one_side(paths):
    releases.canary(paths, "200", 10)
    client = load.Client(_url(paths))
    sides = [client.post(PREDICT, {"instances": [TRIP]})[2]["x-model-version"] for _ in range(2000)]
    share = sides.count("200") / len(sides)
    tolerance = 4 * math.sqrt(0.1 * 0.9 / len(sides))  # four standard deviations of a binomial share
    sticky = {}
    for key in range(50):
        sticky[key] = {
            client.post(PREDICT, {"instances": [TRIP]}, {"X-Request-Key": f"rider-{key}"})[2][
                "x-model-version"
            ]
            for _ in range(8)
        }
    releases.rollback(paths, "end of the canary test")
    versions.undo_rollback(paths.serving_dir, "200")
    assert abs(share - 0.10) < tolerance, share
    assert all(len(seen) == 1 for seen in sticky.values()), sticky
    assert {next(iter(seen)) for seen in sticky.values()} == {"100", "200"}  # keys land on both sides


def test_no_request_fails_through_a_switch_a_rollback_a_promotion_and_a_new_push(paths):
    with load.BackgroundLoad(_url(paths), PREDICT, {"instances": [TRIP]}, max_seconds=120) as traffic:
        time.sleep(1)
        releases.switch(paths, "200")  # blue-green: all at once
        time.sleep(1)
        back_on_stable = releases.rollback(paths, "blue-green test").seconds
        _wait_for_version(paths, "100", seconds=0.1)  # the next request, on a new connection
        versions.undo_rollback(paths.serving_dir, "200")
        releases.canary(paths, "200", 50)
        time.sleep(1)
        releases.promote(paths)  # 200 is stable now
        time.sleep(1)
        # A new push lands while traffic flows, whole or not at all, and is switched to.
        versions.write_version(paths.serving_dir, paths.serving_dir / "100", "500")
        releases.switch(paths, "500")
        time.sleep(1)
        releases.promote(paths)  # the switch confirmed: the version switched from stops
        time.sleep(1)
        releases.switch(paths, "100")
        releases.promote(paths)  # where the module started, for the tests after
        time.sleep(1)
    tally = traffic.tally
    assert tally.total > 200 and tally.failed == 0, (tally.statuses, tally.errors[:3])
    assert {"100", "200", "500"} <= set(tally.versions)
    assert back_on_stable < 1.0


def test_a_version_that_cannot_load_is_refused_with_its_reason_and_nothing_changes(paths):
    before = stack.read_state(paths)
    started = time.monotonic()
    with pytest.raises(stack.StackError, match="version 600 did not get ready: .*failed to load"):
        releases.canary(paths, "600", 10)
    assert time.monotonic() - started < 60  # not the whole start timeout
    after = stack.read_state(paths)
    assert (after["mode"], after["stable"], after.get("candidate")) == (
        before["mode"],
        before["stable"],
        before.get("candidate"),
    )


def test_a_release_and_a_rollback_over_http_change_what_nginx_serves(paths):
    """The release API on the control listener, with the admin token: a blue-green switch to 200 and its
    rollback, each served by nginx once answered, and the rollback recorded in the registry."""
    state = stack.read_state(paths)
    api = f"http://127.0.0.1:{state['control_port']}{serving_config.RELEASES_PATH}"
    admin = credentials.bearer(paths.root, credentials.ADMIN)
    switch = {"version": "200"}
    refused = requests.post(f"{api}/switch", json=switch, headers=credentials.bearer(paths.root, "feedback"))
    assert refused.status_code == 403, refused.text
    public = f"{_url(paths)}{serving_config.RELEASES_PATH}/switch"
    assert requests.post(public, json=switch, headers=admin, timeout=10).status_code == 404

    answer = requests.post(f"{api}/switch", json=switch, headers=admin, timeout=180)
    assert answer.status_code == 200, answer.text
    assert answer.json()["now"].startswith("all traffic to version 200"), answer.text
    _wait_for_version(paths, "200", seconds=1)
    assert requests.get(api, headers=admin, timeout=30).json()["stable"]["version"] == "200"

    answer = requests.post(f"{api}/rollback", json={"reason": "over HTTP"}, headers=admin, timeout=180)
    assert answer.status_code == 200 and answer.json()["rolled_back"] == "200", answer.text
    _wait_for_version(paths, "100", seconds=1)
    rejected = versions.rollback_of_model(paths.serving_dir, versions.fingerprint(paths.serving_dir / "200"))
    assert rejected is not None and rejected.reason == "over HTTP"
    answer = requests.post(f"{api}/switch", json=switch, headers=admin, timeout=30)
    assert answer.status_code == 409 and "rolled back" in answer.json()["error"], answer.text
    versions.undo_rollback(paths.serving_dir, "200")


def _wait_for_version(paths, version: str, seconds: float = 10) -> float:
    client = load.Client(_url(paths))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.post(PREDICT, {"instances": [TRIP]})[2].get("x-model-version") == version:
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"traffic never reached version {version}")


def _wait_for_log_routes(paths, request_ids, routes: set, seconds: float) -> dict:
    """The logged rows by request id, then route, once every id has a row on every route or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        time.sleep(serving_config.REQUEST_LOG_FLUSH_SECONDS)
        by_id = {}
        for row in _log_rows(paths):
            by_id.setdefault(row["request_id"], {})[row["route"]] = row
        if all(routes <= set(by_id.get(i, {})) for i in request_ids) or time.monotonic() > deadline:
            return by_id


def _late_shadow_copies(paths) -> int:
    """Mirror copies nginx gave up on (its error log names the `/_shadow` subrequest of each)."""
    error_log = paths.run / nginx.ERROR_LOG
    return error_log.read_text().count('subrequest: "/_shadow"') if error_log.exists() else 0


def _log_rows(paths) -> list[dict]:
    rows = []
    for path in sorted(Path(paths.request_log).glob("*.csv*")):
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_the_request_log_feeds_the_pipelines_serving_logs(paths, tmp_path):
    """The folder as the servers left it is `--serving-logs`: every trip stable or a canary answered,
    once, with the training columns minus tips; the shadow's copies and the log's own columns left out."""
    from inputs import layout
    from models import features

    stack.stop(paths)  # a clean stop closes every log file
    logged = _log_rows(paths)
    answered = [row for row in logged if row["route"] != serving_config.SHADOW_ROUTE]
    assert len(answered) < len(logged)  # the shadow test's copies are there
    data = tmp_path / "data"
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), data)
    settings = folders.Settings(
        output_dir=tmp_path / "outputs", data_root=data, serving_logs=paths.request_log
    )

    layout.prepare(settings)

    read = []
    for path in sorted(settings.checked_serving_logs_dir.glob("*.csv")):
        with path.open(newline="") as handle:
            read.extend(csv.DictReader(handle))
    assert list(read[0]) == features.SERVING_COLUMNS and features.TIPS not in read[0]
    key = lambda row: tuple(row[c] for c in features.SERVING_COLUMNS)  # noqa: E731
    assert sorted(map(key, read)) == sorted(map(key, answered))
