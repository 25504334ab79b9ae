"""What a refresh computes, apart from HTTP: CBPE per version leaves the shadow out and checks itself on
the newer half of the labelled trips; shadow agreement compares the two routes on the same trips only;
a refresh over the files on disk asks for every served version's evaluation."""

import numpy as np
import pytest

from config import folders
from models import features
from monitoring import evaluated, feedback, quality, refresh
from tests.support import request_logs


def _request(request_id: str, prediction: float, version: str = "7", route: str = "stable", second: int = 0):
    return {"request_id": request_id, "trip": 0, "time": f"2026-11-30T08:{second // 60:02d}:{second % 60:02d}+00:00",
            "model_version": version, "route": route, "prediction": str(prediction)}  # fmt: skip


def test_shadow_agreement_compares_the_routes_on_the_same_trips_only():
    stable = [0.1, 0.6, 0.7, 0.4]
    shadow = [0.2, 0.4, 0.9, 0.45]
    requests = [_request(f"r{i}", p) for i, p in enumerate(stable)]
    requests += [_request(f"r{i}", p, version="9", route="shadow") for i, p in enumerate(shadow)]
    requests += [_request("alone", 0.9), _request("c", 0.1, version="8", route="canary")]
    [pair] = refresh.shadow_agreement(requests, threshold=0.5)
    a, b = np.array(stable), np.array(shadow)
    assert pair == {
        "stable": "7",
        "shadow": "9",
        "trips": 4,
        "decisions_agree": pytest.approx(((a >= 0.5) == (b >= 0.5)).mean()),
        "mean_abs_difference": pytest.approx(np.abs(a - b).mean()),
    }
    assert refresh.shadow_agreement([_request("r", 0.3)], threshold=0.5) == []


def test_estimates_leave_the_shadow_out_and_check_on_the_newer_half():
    rng = np.random.default_rng(4)
    scores = rng.random(60)
    labels = (rng.random(60) < scores).astype(int)
    requests = [_request(f"r{i}", round(s, 6), second=i) for i, s in enumerate(scores)]
    requests += [_request(f"r{i}", 0.99, version="7", route="shadow", second=i) for i in range(60)]
    # The first 40 trips are labelled (given in reverse: the check orders them by time), the rest wait.
    labelled = [dict(requests[i], **{features.LABEL: int(labels[i])}) for i in reversed(range(40))]
    labelled.append(dict(requests[60], **{features.LABEL: 1}))  # the shadow's copy: left out
    found = refresh.estimates("7", requests, labelled, threshold=0.5)
    rounded = np.array([round(s, 6) for s in scores])
    assert found["version"] == "7"
    assert found["unlabelled"]["trips"] == 20
    assert found["check"]["trips"] == 20
    assert found["check"]["realised"] == quality.measured(labels[20:40], rounded[20:40], 0.5)
    older = quality.Calibrator(list(labels[:20]), list(rounded[:20]))
    assert found["check"]["estimated"] == quality.estimated(rounded[20:40], 0.5, older)


def test_a_refresh_reads_the_log_and_the_feedback_on_disk(tmp_path):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    served = (_request("r0", 0.8), _request("r1", 0.2), _request("r2", 0.3, version="8", route="canary"))
    request_logs.write_request_log(
        settings.request_log_dir, [dict(request, fare="10.0", payment_type="Cash") for request in served]
    )
    settings.feedback_dir.mkdir(parents=True)
    valid, _ = feedback.parse([{"request_id": "r0", "tips": 5}, {"request_id": "r1", "tips": 0}])
    feedback.FeedbackStore(settings.feedback_dir).add(valid)
    figures = refresh.compute(settings, 100, 0, evaluated.EvaluatedFigures(settings.metadata_path))
    assert figures["logged_trips"] == 3 and figures["labelled_trips"] == 2
    assert figures["evaluated"] == {"7": None, "8": None}  # no pipeline run recorded pushing either
    assert [(e["version"], e["route"], e["overall"]["trips"]) for e in figures["live"]] == [
        ("7", "stable", 2)
    ]
    assert figures["live"][0]["overall"]["accuracy"] == 1.0
    assert [(e["version"], e["unlabelled"]["trips"]) for e in figures["estimated"]] == [("7", 0), ("8", 1)]
