"""The monitor's HTTP side (in process, Starlette's test client): feedback refused with a 4xx naming the
problem or counted, never a crash; live figures equal scikit-learn's on the same labelled trips."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from config import folders
from config import monitoring as monitoring_config
from serving import credentials
from tests.support import request_logs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from monitoring import http_api  # noqa: E402


def _settings(tmp_path) -> folders.Settings:
    return folders.Settings(output_dir=tmp_path / "outputs", data_root=None)


def _log(settings, trips):
    """A closed request-log file: trips of (request_id, fare, prediction, payment_type)."""
    request_logs.write_request_log(settings.request_log_dir, [
        {"request_id": request_id, "trip": 0, "time": f"2026-11-30T08:00:{index % 60:02d}+00:00", "model_version": "7",
         "route": "stable", "prediction": prediction, "fare": fare, "payment_type": payment}
        for index, (request_id, fare, prediction, payment) in enumerate(trips)
    ])  # fmt: skip


@pytest.fixture
def client(tmp_path):
    settings = _settings(tmp_path)
    rng = np.random.default_rng(3)
    predictions = rng.random(400)
    tips = [
        round(f * (0.3 if rng.random() < p else 0.05), 2)
        for f, p in zip([10.0] * 400, predictions, strict=True)
    ]
    _log(
        settings,
        [
            (f"r{i}", "10.0", round(p, 6), "Credit Card" if i % 2 else "Cash")
            for i, p in enumerate(predictions)
        ],
    )
    app = http_api.create_app(settings, window=1000, refresh_seconds=3600, grace_seconds=0)
    # The system that sends labels holds the feedback token; figures are read with the admin token.
    feedback = credentials.bearer(settings.serving_stack_dir, credentials.FEEDBACK)
    with TestClient(app, headers=feedback) as test_client:
        test_client.settings, test_client.predictions, test_client.tips = settings, predictions, tips
        test_client.admin = credentials.bearer(settings.serving_stack_dir, credentials.ADMIN)
        yield test_client


@pytest.mark.parametrize(
    "body, status, expected",
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"feedback": []}', 400, 'expected {"feedback": [{"request_id"'),
        (b'{"feedback": [{"request_id": "r1"}]}', 400, "row 0: tips is missing"),
        (
            b'{"feedback": [{"request_id": "r1", "tips": "a lot"}]}',
            400,
            "row 0: tips must be a number, got 'a lot'",
        ),
        (b"[1, 2]", 400, "row 0: expected an object"),
        # Found by the fuzz test: a request id with a NUL character failed the CSV it is stored in (500).
        (b'{"feedback": [{"request_id": "\\u0000:", "tips": 1}]}', 400, "row 0: request_id must be"),
        # The finding: a deeply nested body was a 500 here (the predict route gave a 400).
        (b'{"feedback": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "malformed JSON: depth limit"),
        (b'{"feedback": [{"request_id": "r1", "tips": 1%s}]}' % (b"0" * 400), 400, "number is infinity"),
        (b'{"feedback": [{"request_id": "\\ud800", "tips": 1}]}', 400, "malformed JSON"),
        (b'{"feedback": [%s]}' % b",".join([b"{}"] * 10_001), 400, "more than the 10000 a request may carry"),
        # Found by the fuzz test: a trip beyond SQLite's integers failed the store (500).
        (
            b'{"feedback": [{"request_id": "r1", "trip": 140104752661081177980928, "tips": 1}]}',
            400,
            "row 0: trip is the trip's place in its request, 0 to 999",
        ),  # fmt: skip
        (b'{"feedback": "%s"}' % (b"x" * 1_000_001), 413, "more than the 1000000 allowed"),
    ],
)
def test_malformed_feedback_gets_a_400_naming_the_problem(client, body, status, expected):
    answer = client.post(monitoring_config.FEEDBACK_PATH, content=body)
    assert answer.status_code == status and expected in answer.json()["error"]


def test_feedback_declared_as_other_than_json_is_a_415(client):
    body = b'{"feedback": [{"request_id": "r1", "tips": 3}]}'
    answer = client.post(monitoring_config.FEEDBACK_PATH, content=body, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 415 and "Content-Type 'text/csv' is not accepted" in answer.json()["error"]


def test_duplicates_are_refused_and_unknown_trips_counted(client):
    assert (
        client.post(
            monitoring_config.FEEDBACK_PATH, json={"feedback": [{"request_id": "r1", "tips": 3}]}
        ).json()["accepted"]
        == 1
    )
    again = client.post(monitoring_config.FEEDBACK_PATH, json={"feedback": [{"request_id": "r1", "tips": 0}]})
    assert again.status_code == 409 and "labelled already" in again.json()["error"]
    mixed = client.post(
        monitoring_config.FEEDBACK_PATH,
        json={"feedback": [{"request_id": "nobody", "tips": 1}, {"request_id": "r2"}]},
    )
    assert mixed.status_code == 200 and mixed.json()["accepted"] == 1 and len(mixed.json()["refused"]) == 1
    client.app.state.monitor.refresh()
    figures = client.get(monitoring_config.MONITOR_PATH, headers=client.admin).json()
    assert figures["feedback"] == {"unknown": 1, "duplicates": 0, "waiting": 0}
    metrics = client.get("/metrics").text
    assert (
        "taxi_feedback_duplicate_rows_total 1.0" in metrics and "taxi_feedback_unknown_trips 1.0" in metrics
    )


def test_live_figures_are_scikit_learns_on_the_same_trips(client):
    labels = [{"request_id": f"r{i}", "tips": t} for i, t in enumerate(client.tips)]
    assert client.post(monitoring_config.FEEDBACK_PATH, json={"feedback": labels}).json()["accepted"] == 400
    client.app.state.monitor.refresh()
    [live] = client.get(monitoring_config.MONITOR_PATH, headers=client.admin).json()["live"]
    truth = np.array([int(t * 100 > 10.0 * 20) for t in client.tips])
    assert live["overall"]["trips"] == 400
    assert live["overall"]["auc"] == pytest.approx(roc_auc_score(truth, client.predictions), abs=1e-5)
    assert live["overall"]["accuracy"] == pytest.approx(accuracy_score(truth, client.predictions >= 0.5))
    card = np.arange(400) % 2 == 1
    assert live["key_slice"]["trips"] == 200
    assert live["key_slice"]["auc"] == pytest.approx(
        roc_auc_score(truth[card], client.predictions[card]), abs=1e-5
    )
    assert 'taxi_live_auc{route="stable",slice="overall",version="7"}' in client.get("/metrics").text


def test_feedback_and_figures_need_their_own_token(client):
    body = {"feedback": [{"request_id": "r1", "tips": 3}]}
    feedback_token = dict(client.headers)["authorization"]
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, client.admin,
                    {"Authorization": feedback_token.replace("Bearer ", "bearer ")}):  # fmt: skip
        answer = client.post(monitoring_config.FEEDBACK_PATH, json=body, headers=headers)
        assert answer.status_code == 401 and "needs the feedback token" in answer.json()["error"]
        assert answer.headers["www-authenticate"] == "Bearer"
    for headers in ({"Authorization": ""}, {"Authorization": feedback_token}):
        answer = client.get(monitoring_config.MONITOR_PATH, headers=headers)
        assert answer.status_code == 401 and "needs the admin token" in answer.json()["error"]
    assert client.post(monitoring_config.FEEDBACK_PATH, json=body).json()["accepted"] == 1
    assert client.get(monitoring_config.MONITOR_PATH, headers=client.admin).status_code == 200
