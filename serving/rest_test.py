"""The model server's API on a real trained SavedModel (in process: Starlette's test client; the stack
with nginx and real processes is tests/e2e/test_serving_stack.py)."""

import base64
import csv
import json
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from starlette.testclient import TestClient
from tensorflow_metadata.proto.v0 import schema_pb2

from benchmarks import model_variants
from clients import raw_examples
from config import serving as serving_config
from models import features
from models.signatures import PREDICTION, RAW_FEATURES_SIGNATURE
from registry import versions
from serving import model, request_log, rest
from tests.support import serving_models

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    return serving_models.train(tmp_path_factory.mktemp("trained") / "model")


@pytest.fixture
def serving_dir(tmp_path, trained_model):
    versions.write_version(tmp_path / "serving", trained_model, "100")
    return tmp_path / "serving"


def _client(serving_dir, tmp_path, version=model.LATEST, labels=("stable",), **settings):
    app = rest.create_app(
        rest.ServerSettings(
            serving_dir=serving_dir,
            version=version,
            labels=labels,
            request_log_dir=tmp_path / "log",
            **settings,
        )
    )
    return TestClient(app)


def _trips(count: int = 5) -> tuple[list[str], list[list[str]]]:
    header, rows = serving_models.sample_rows(keep_every=97)
    return header, rows[:count]


def _instance(header, row, drop=()) -> dict:
    """A CSV row as the JSON a client sends, typed by the schema (None for an empty cell)."""
    types = raw_examples.column_types()
    convert = {schema_pb2.INT: lambda v: int(float(v)), schema_pb2.FLOAT: float, schema_pb2.BYTES: str}
    return {
        name: None if value == "" else convert[types[name]](value)
        for name, value in zip(header, row, strict=True)
        if name != features.TIPS and name not in drop
    }


def _direct(model_dir, header, rows) -> list[float]:
    """The SavedModel's own `serving_default` outputs for the same rows (as serialized tf.Examples)."""
    loaded = tf.saved_model.load(str(model_dir))
    serialized = [raw_examples.serialized_example(header, row, raw_examples.column_types()) for row in rows]
    return (
        loaded.signatures["serving_default"](examples=tf.constant(serialized))[PREDICTION]
        .numpy()
        .reshape(-1)
        .tolist()
    )


def test_rows_columns_and_examples_give_the_saved_models_own_outputs(serving_dir, tmp_path):
    header, rows = _trips()
    expected = _direct(serving_dir / "100", header, rows)
    instances = [_instance(header, row) for row in rows]
    with _client(serving_dir, tmp_path) as client:
        by_rows = client.post(PREDICT, json={"instances": instances}).json()
        columns = {name: [i[name] for i in instances] for name in instances[0]}
        by_columns = client.post(PREDICT, json={"inputs": columns}).json()
        examples = [
            {
                "b64": base64.b64encode(
                    raw_examples.serialized_example(header, row, raw_examples.column_types())
                ).decode()
            }
            for row in rows
        ]
        by_examples = client.post(
            PREDICT, json={"signature_name": "serving_default", "instances": examples}
        ).json()
    assert [p[0] for p in by_rows["predictions"]] == pytest.approx(expected, abs=1e-6)
    assert [p[0] for p in by_columns["outputs"]] == pytest.approx(expected, abs=1e-6)
    assert [p[0] for p in by_examples["predictions"]] == pytest.approx(expected, abs=1e-6)
    assert by_rows["model_version"] == "100"


def test_what_the_model_does_not_read_is_optional_and_a_missing_input_is_missing(serving_dir, tmp_path):
    header, rows = _trips(3)
    without = [
        features.TIMESTAMP,
        "pickup_census_tract",
        "dropoff_census_tract",
        "company",
        "pickup_latitude",
    ]
    # The same trips as tf.Examples without those features: how training sees empty cells.
    stripped = [
        ["" if name in without else value for name, value in zip(header, row, strict=True)] for row in rows
    ]
    expected = _direct(serving_dir / "100", header, stripped)
    with _client(serving_dir, tmp_path) as client:
        answer = client.post(
            PREDICT, json={"instances": [_instance(header, row, drop=without) for row in rows]}
        )
    assert answer.status_code == 200, answer.text
    assert [p[0] for p in answer.json()["predictions"]] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "body, status, expected",
    [
        (b'{"instances": [', 400, "malformed JSON"),
        (
            json.dumps({"instances": [{"fare": 9.5}]}).encode(),
            400,
            "lacks the required feature(s) trip_start_month",
        ),
        (
            json.dumps({"instances": [{"fare": 9.5, "tip_percent": 3}]}).encode(),
            400,
            "unknown feature(s) tip_percent",
        ),
        (json.dumps({"instances": []}).encode(), 400, "the batch is empty"),
        (json.dumps({"instances": [{}], "inputs": {}}).encode(), 400, 'exactly one of "instances"'),
        (json.dumps({"signature_name": "other", "instances": [{}]}).encode(), 400, "unknown signature_name"),
    ],
)
def test_bad_requests_get_a_4xx_naming_what_is_wrong(serving_dir, tmp_path, body, status, expected):
    with _client(serving_dir, tmp_path) as client:
        answer = client.post(PREDICT, content=body)
    assert answer.status_code == status and expected in answer.json()["error"], answer.text


def test_wrong_types_oversized_batches_and_bodies_are_refused(serving_dir, tmp_path):
    header, rows = _trips(1)
    trip = _instance(header, rows[0])
    with _client(serving_dir, tmp_path, max_batch=3, max_body_bytes=20_000) as client:
        wrong = client.post(PREDICT, json={"instances": [dict(trip, fare="12.5")]})
        assert (
            wrong.status_code == 400
            and "fare must be a number (or null), got str '12.5'" in wrong.json()["error"]
        )
        hour = client.post(PREDICT, json={"instances": [dict(trip, trip_start_hour=3.5)]})
        assert hour.status_code == 400 and "trip_start_hour must be an integer" in hour.json()["error"]
        # Values the model's int64 and float32 inputs cannot hold are the request's fault, not a 500.
        huge_hour = client.post(PREDICT, json={"instances": [trip, dict(trip, trip_start_hour=2**70)]})
        assert huge_hour.status_code == 400 and (
            "trip 1: trip_start_hour is 1.1805916207174113e+21, outside int64's range"
            in huge_hour.json()["error"]
        )
        huge_fare = client.post(
            PREDICT, content=b'{"instances": [%s]}' % json.dumps(dict(trip, fare=1e300)).encode()
        )
        assert huge_fare.status_code == 400 and (
            "trip 0: fare is 1e+300, outside float32's finite range" in huge_fare.json()["error"]
        )
        not_a_number = client.post(
            PREDICT, content=json.dumps({"instances": [dict(trip, fare=float("nan"))]})
        )
        assert not_a_number.status_code == 400 and "malformed JSON" in not_a_number.json()["error"]
        many = client.post(PREDICT, json={"instances": [trip] * 4})
        assert many.status_code == 400 and "more than the 3 a request may carry" in many.json()["error"]
        large = client.post(PREDICT, content=json.dumps({"instances": [trip] * 3, "pad": "x" * 30_000}))
        assert large.status_code == 413 and "more than the 20000 allowed" in large.json()["error"]


def test_status_metadata_versions_and_labels_speak_tf_servings_rest(serving_dir, tmp_path):
    base = f"/v1/models/{serving_config.SERVING_MODEL_NAME}"
    with _client(serving_dir, tmp_path, labels=("stable",)) as client:
        assert client.get(base).json() == {
            "model_version_status": [
                {"version": "100", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }
        signatures = client.get(f"{base}/metadata").json()["metadata"]["signature_def"]["signature_def"]
        assert set(signatures[RAW_FEATURES_SIGNATURE]["inputs"]) == set(features.MODEL_INPUTS)
        assert client.post(f"{base}/versions/999:predict", json={}).status_code == 404
        assert "is not served here" in client.post(f"{base}/labels/canary:predict", json={}).json()["error"]
        header, rows = _trips(1)
        labelled = client.post(
            f"{base}/labels/stable:predict", json={"instances": [_instance(header, rows[0])]}
        )
        assert labelled.status_code == 200 and labelled.headers[rest.VERSION_HEADER] == "100"


def test_an_empty_directory_or_a_broken_version_leave_the_server_up_and_not_ready(tmp_path, trained_model):
    serving = tmp_path / "serving"
    serving.mkdir()
    with _client(serving, tmp_path, poll_seconds=0.2) as client:
        not_ready = client.get("/ready")
        assert (
            not_ready.status_code == 503 and "holds no complete version to serve" in not_ready.json()["error"]
        )
        assert client.post(PREDICT, json={"instances": [{}]}).status_code == 503
        # Pushed whole (with its completion record), but not a model.
        (tmp_path / "not_a_model").mkdir()
        (tmp_path / "not_a_model" / "saved_model.pb").write_bytes(b"not a model")
        versions.write_version(serving, tmp_path / "not_a_model", "200")
        _wait(lambda: "failed to load" in client.get("/ready").json()["error"])
        assert client.get("/healthz").status_code == 200
        # A good version pushed next is picked up without a restart.
        versions.write_version(serving, trained_model, "300")
        _wait(lambda: client.get("/ready").status_code == 200)
        assert client.get("/ready").json()["version"] == "300"


def test_every_answered_trip_is_logged_with_its_request_id_and_counted(serving_dir, tmp_path):
    header, rows = _trips(2)
    with _client(serving_dir, tmp_path) as client:
        answer = client.post(
            PREDICT,
            json={"instances": [_instance(header, r) for r in rows]},
            headers={"X-Request-Id": "abc123", "X-Route": "canary"},
        )
        metrics = client.get("/metrics").text
    assert answer.headers[rest.REQUEST_ID_HEADER] == "abc123"
    assert 'taxi_requests_total{route="canary",status="200",version="100"} 1.0' in metrics
    assert 'taxi_predicted_trips_total{route="canary",version="100"} 2.0' in metrics
    [logged] = (tmp_path / "log").glob("*.csv")  # the server's stop closed the file
    lines = logged.read_text().splitlines()
    assert lines[0].split(",") == request_log.COLUMNS and len(lines) == 3
    assert [line.split(",")[:2] for line in lines[1:]] == [["abc123", "0"], ["abc123", "1"]]
    assert all(",100,canary," in line for line in lines[1:])
    # Each row holds the trip's raw features as sent (an empty cell for a missing one) and its prediction.
    logged_rows = list(csv.DictReader(logged.open()))
    for sent, row, prediction in zip(rows, logged_rows, answer.json()["predictions"], strict=True):
        assert float(row["prediction"]) == pytest.approx(prediction[0], abs=1e-6)
        for name, value in zip(header, sent, strict=True):
            if name != features.TIPS:
                assert _same_cell(row[name], value), (name, row[name], value)


def _same_cell(logged: str, sent: str) -> bool:
    if sent == "":
        return logged == ""
    try:
        return float(logged) == pytest.approx(float(sent))
    except ValueError:
        return logged == sent


def _wait(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_model_that_fails_answers_500_counted_and_the_server_stays_up(tmp_path, trained_model):
    """A version that passes the warm-up, then fails on real fares: its failures are the server's (5xx,
    what the canary analysis counts), never a dropped connection, and nothing is logged for them."""
    serving = tmp_path / "serving"
    model_variants.broken(trained_model, serving / "300")
    header, rows = _trips(2)
    with _client(serving, tmp_path, version="300") as client:
        _wait(lambda: client.get("/ready").status_code == 200)
        failed = client.post(PREDICT, json={"instances": [_instance(header, r) for r in rows]})
        assert failed.status_code == 500
        assert "version 300 failed to predict" in failed.json()["error"]
        assert "a broken model version" in failed.json()["error"]
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics").text
    assert 'taxi_requests_total{route="stable",status="500",version="300"} 1.0' in metrics
    assert not list((tmp_path / "log").glob("*.csv"))


def test_a_tf_example_with_a_wrongly_typed_feature_is_the_requests_fault(serving_dir, tmp_path):
    feature = {"fare": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"twelve"]))}
    example = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    body = {"signature_name": "serving_default", "instances": [{"b64": base64.b64encode(example).decode()}]}
    with _client(serving_dir, tmp_path) as client:
        answer = client.post(PREDICT, json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "trip 0: fare is a bytes_list in the tf.Example, expected a float_list"


def _examples_body(*examples: dict) -> dict:
    """A serving_default request of tf.Examples, each given as {feature: Feature}."""
    serialized = [
        tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        for feature in examples
    ]
    return {
        "signature_name": "serving_default",
        "instances": [{"b64": base64.b64encode(one).decode()} for one in serialized],
    }


def _feature(*values) -> tf.train.Feature:
    if isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if isinstance(values[0], int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


EXAMPLES_REFUSED = [
    ({"payment_type": None}, "trip 0 lacks the required feature(s) payment_type"),
    (
        {"company": _feature(b"Taxi \xff\xfe Co")},
        "trip 0: company is not UTF-8 text (invalid start byte at byte 5)",
    ),
    ({"fare": _feature(9.5, 10.0)}, "trip 0: fare holds 2 values in the tf.Example, expected one"),
    ({"fare": _feature(float("nan"))}, "trip 0: fare is nan, outside float32's finite range"),
    ({"tips": _feature(2.5)}, "unknown feature(s) tips"),
    ({"trip_start_hour": tf.train.Feature()}, "trip 0 lacks the required feature(s) trip_start_hour"),
]


def _example_trip() -> dict:
    header, rows = _trips(1)
    return {
        name: _feature(value.encode() if isinstance(value, str) else value)
        for name, value in raw_examples.typed_values(header, rows[0], raw_examples.column_types()).items()
    }


def test_a_tf_example_the_models_parsing_would_fail_on_is_a_400_not_counted_against_the_version(
    serving_dir, tmp_path
):
    """The issue's first finding: an Example lacking a required feature reached the model and was a 500,
    which the canary analysis counts against the version."""
    with _client(serving_dir, tmp_path) as client:
        for change, expected in EXAMPLES_REFUSED:
            trip = _example_trip()
            for name, feature in change.items():
                if feature is None:
                    trip.pop(name)
                else:
                    trip[name] = feature
            answer = client.post(PREDICT, json=_examples_body(trip))
            assert answer.status_code == 400 and expected in answer.json()["error"], answer.text
        metrics = client.get("/metrics").text
    refused = len(EXAMPLES_REFUSED)
    assert f'taxi_requests_total{{route="stable",status="400",version="100"}} {refused}.0' in metrics
    assert 'status="5' not in metrics


def test_the_model_itself_fails_on_such_examples(serving_dir):
    """Why the server checks them: the SavedModel's own parsing refuses them with an error of its own."""
    trip = _example_trip()
    loaded = model.LoadedModel(serving_dir / "100")
    for broken in (
        {k: v for k, v in trip.items() if k != "payment_type"},
        dict(trip, fare=_feature(9.5, 10.0)),
    ):
        example = tf.train.Example(features=tf.train.Features(feature=broken)).SerializeToString()
        with pytest.raises(tf.errors.InvalidArgumentError):
            loaded.predict_examples([example])


def test_a_body_declared_as_other_than_json_is_a_415(serving_dir, tmp_path):
    header, rows = _trips(1)
    body = json.dumps({"instances": [_instance(header, rows[0])]}).encode()
    accepted = [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.taxi+json",
        "application/x-www-form-urlencoded",  # curl -d, as TF Serving reads it
    ]
    refused = ["text/plain", "multipart/form-data; boundary=x", "application/xml"]
    with _client(serving_dir, tmp_path) as client:
        undeclared = client.post(PREDICT, content=body)
        assert "content-type" not in undeclared.request.headers and undeclared.status_code == 200
        for content_type in accepted:
            answer = client.post(PREDICT, content=body, headers={"Content-Type": content_type})
            assert answer.status_code == 200, (content_type, answer.text)
        for content_type in refused:
            answer = client.post(PREDICT, content=body, headers={"Content-Type": content_type})
            assert answer.status_code == 415, (content_type, answer.text)
            assert f"Content-Type {content_type!r} is not accepted" in answer.json()["error"]


def test_no_client_header_makes_a_metric_label_and_unknown_paths_answer_json(serving_dir, tmp_path):
    header, rows = _trips(1)
    body = {"instances": [_instance(header, rows[0])]}
    with _client(serving_dir, tmp_path) as client:
        for route in ("canary", "made-up", "x" * 300):
            assert client.post(PREDICT, json=body, headers={"X-Route": route}).status_code == 200
        metrics = client.get("/metrics").text
        missing = client.get("/v1/models/other")
        wrong_method = client.get(PREDICT)
    assert 'taxi_requests_total{route="canary",status="200",version="100"} 1.0' in metrics
    assert 'taxi_requests_total{route="stable",status="200",version="100"} 2.0' in metrics  # the server's own
    assert "made-up" not in metrics and "xxx" not in metrics
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found: GET /v1/models/other"}
    assert wrong_method.status_code == 405 and "Method Not Allowed" in wrong_method.json()["error"]


def test_a_shadow_copy_is_answered_at_once_and_predicted_after(tmp_path, trained_model):
    """nginx waits for a mirrored copy before the client's connection may carry its next request: a
    shadow therefore answers 202 before its model runs, then predicts, counts and logs as usual."""
    serving = tmp_path / "serving"
    model_variants.slow(trained_model, serving / "400", seconds=0.5)
    header, rows = _trips(1)
    headers = {"X-Request-Id": "copy1", "X-Route": serving_config.SHADOW_ROUTE}
    with _client(serving, tmp_path, version="400", labels=()) as client:
        _wait(lambda: client.get("/ready").status_code == 200)
        started = time.perf_counter()
        copy = client.post(PREDICT, json={"instances": [_instance(header, rows[0])]}, headers=headers)
        answered_after = time.perf_counter() - started
        assert copy.status_code == 202
        assert answered_after < 0.4  # the model alone takes 0.5 s
        done = 'taxi_requests_total{route="shadow",status="200",version="400"} 1.0'
        _wait(lambda: done in client.get("/metrics").text, seconds=10)
        metrics = client.get("/metrics").text
    assert 'taxi_predicted_trips_total{route="shadow",version="400"} 1.0' in metrics
    [logged] = (tmp_path / "log").glob("*.csv")
    [row] = logged.read_text().splitlines()[1:]
    assert row.startswith("copy1,0,") and ",400,shadow," in row
    [latency] = [
        line for line in metrics.splitlines() if line.startswith("taxi_request_duration_seconds_sum")
    ]
    assert float(latency.split()[-1]) >= 0.5  # the shadow's own latency is its model's, not the 202's


def test_a_shadow_too_far_behind_drops_new_copies_and_counts_them(tmp_path, trained_model, monkeypatch):
    monkeypatch.setattr(serving_config, "SHADOW_MAX_PENDING", 1)
    serving = tmp_path / "serving"
    model_variants.slow(trained_model, serving / "400", seconds=0.5)
    header, rows = _trips(1)
    body = {"instances": [_instance(header, rows[0])]}
    headers = {"X-Route": serving_config.SHADOW_ROUTE}
    with _client(serving, tmp_path, version="400", labels=()) as client:
        _wait(lambda: client.get("/ready").status_code == 200)
        assert client.post(PREDICT, json=body, headers=headers).status_code == 202
        dropped = client.post(PREDICT, json=body, headers=headers)
        assert dropped.status_code == 503 and "this copy is dropped" in dropped.json()["error"]
        _wait(lambda: 'route="shadow",status="200"' in client.get("/metrics").text, seconds=10)
        metrics = client.get("/metrics").text
    assert 'taxi_requests_total{route="shadow",status="503",version="400"} 1.0' in metrics
    assert 'taxi_request_duration_seconds_count{route="shadow",version="400"} 1.0' in metrics


def test_a_server_process_starts_without_tfx_tf_transform_beam_or_tfma():
    """What a server process imports is what it costs to start or to replace (ServingCheck, a restart by
    the supervisor): the model's contract comes from models/signatures.py, not the Trainer's module."""
    heavy = (
        "tfx",
        "tensorflow_transform",
        "apache_beam",
        "tensorflow_model_analysis",
        "tensorflow_data_validation",
    )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, serving.server; print(sorted(set({heavy!r}) & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
