"""What a refresh computes, apart from HTTP, from the request log and the feedback on disk: live quality of
the live versions only, over a window bounded in time; CBPE per version leaves the shadow out and checks
itself on the newer half of the labelled trips; shadow agreement compares the two routes on the same trips
only."""

import datetime

import numpy as np
import pytest

from config import folders
from monitoring import evaluated, feedback, quality, refresh, store
from tests.support import request_logs

NOW = 1_800_000_000.0


def _request(request_id: str, prediction: float, version: str = "7", route: str = "stable", seconds_ago: float = 60,
             **more) -> dict:  # fmt: skip
    answered = datetime.datetime.fromtimestamp(NOW - seconds_ago, tz=datetime.timezone.utc).isoformat()
    return {"request_id": request_id, "trip": 0, "time": answered, "model_version": version, "route": route,
            "prediction": round(prediction, 6), "fare": "10.0", **more}  # fmt: skip


def _compute(tmp_path, requests: list[dict], tips: dict[str, float], live=None, window=None) -> dict:
    """A refresh over a log of `requests` and labels `tips` (request_id -> tips, on a 10.00 fare)."""
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    request_logs.write_request_log(settings.request_log_dir, requests)
    valid, _ = feedback.parse([{"request_id": r, "tips": t} for r, t in tips.items()], received=NOW)
    feedback.FeedbackStore(settings.feedback_dir).add(valid)
    trips = store.TripStore.of(settings.feedback_dir)
    return refresh.compute(
        settings,
        trips,
        window or refresh.Window(),
        0,
        evaluated.EvaluatedFigures(settings.metadata_path),
        live=live,
        now=NOW,
    )


def test_shadow_agreement_compares_the_routes_on_the_same_trips_only(tmp_path):
    stable = [0.1, 0.6, 0.7, 0.4]
    shadow = [0.2, 0.4, 0.9, 0.45]
    requests = [_request(f"r{i}", p) for i, p in enumerate(stable)]
    requests += [_request(f"r{i}", p, version="9", route="shadow") for i, p in enumerate(shadow)]
    requests += [_request("alone", 0.9), _request("c", 0.1, version="8", route="canary")]
    [pair] = _compute(tmp_path, requests, {})["shadow_agreement"]
    a, b = np.array(stable), np.array(shadow)
    assert pair == {
        "stable": "7",
        "shadow": "9",
        "trips": 4,
        "decisions_agree": pytest.approx(((a >= 0.5) == (b >= 0.5)).mean()),
        "mean_abs_difference": pytest.approx(np.abs(a - b).mean()),
    }


def test_estimates_leave_the_shadow_out_and_check_on_the_newer_half(tmp_path):
    rng = np.random.default_rng(4)
    scores = rng.random(60).round(6)
    labels = (rng.random(60) < scores).astype(int)
    requests = [_request(f"r{i}", s, seconds_ago=600 - i) for i, s in enumerate(scores)]
    requests += [_request(f"r{i}", 0.99, route="shadow", seconds_ago=600 - i) for i in range(60)]
    # The first 40 trips are labelled (a big tipper tips 3.00 of 10.00, the others nothing); the rest wait.
    tips = {f"r{i}": 3.0 * labels[i] for i in range(40)}
    [found] = _compute(tmp_path, requests, tips)["estimated"]
    assert found["version"] == "7"
    assert found["unlabelled"]["trips"] == 20
    assert found["check"]["trips"] == 20
    assert found["check"]["realised"] == quality.measured(labels[20:40], scores[20:40], 0.5)
    older = quality.Calibrator(labels[:20], scores[:20])
    assert found["check"]["estimated"] == quality.estimated(scores[20:40], 0.5, older)
    expected = quality.estimated(scores[40:], 0.5, quality.Calibrator(labels[:40], scores[:40]))
    assert found["unlabelled"] == pytest.approx(expected)


def test_live_quality_covers_the_live_versions_over_the_window_only(tmp_path):
    requests = [_request(f"new{i}", 0.9) for i in range(10)]  # version 7, a minute ago
    requests += [_request(f"old{i}", 0.1, seconds_ago=7200) for i in range(10)]  # two hours ago
    requests += [_request(f"left{i}", 0.9, version="8", route="canary") for i in range(10)]  # rolled back
    tips = {r["request_id"]: 3.0 for r in requests}  # every trip a big tipper
    figures = _compute(tmp_path, requests, tips, live={"7"}, window=refresh.Window(seconds=3600))
    assert figures["window"]["live_versions"] == ["7"] and figures["window"]["end"] == NOW
    assert [(e["version"], e["route"], e["overall"]["trips"]) for e in figures["live"]] == [
        ("7", "stable", 10)
    ]
    assert figures["live"][0]["overall"]["accuracy"] == 1.0  # the old trips, predicted 0.1, left out
    assert figures["evaluated"] == {"7": None} and [e["version"] for e in figures["estimated"]] == ["7"]
    assert (figures["logged_trips"], figures["labelled_trips"]) == (30, 30)  # the totals stay whole

    capped = _compute(tmp_path / "capped", requests, tips, live={"7"}, window=refresh.Window(7200 + 1, 15))
    assert capped["live"][0]["overall"]["trips"] == 15  # the newest 15: ten new, five old
    assert capped["live"][0]["overall"]["accuracy"] == pytest.approx(10 / 15)


def test_with_no_stack_every_version_counts_up_to_the_newest_trip(tmp_path):
    requests = [_request("a", 0.8, fare="10.0", payment_type="Credit Card"), _request("b", 0.2, fare="10.0")]
    requests.append(_request("c", 0.3, version="8", route="canary", seconds_ago=30))
    figures = _compute(tmp_path, requests, {"a": 5, "b": 0})
    assert figures["window"]["end"] == NOW - 30 and figures["window"]["live_versions"] is None
    assert figures["logged_trips"] == 3 and figures["labelled_trips"] == 2
    assert figures["evaluated"] == {"7": None, "8": None}  # no pipeline run recorded pushing either
    [live] = figures["live"]
    assert (live["version"], live["route"], live["overall"]["trips"], live["overall"]["accuracy"]) == (
        "7",
        "stable",
        2,
        1.0,
    )
    assert live["key_slice"]["trips"] == 1  # the credit-card trip
    assert [(e["version"], e["unlabelled"]["trips"]) for e in figures["estimated"]] == [("7", 0), ("8", 1)]
