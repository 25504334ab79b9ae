"""The retraining policy cannot loop: an alert retrains only with labelled trips no earlier retrain used,
never within the cooldown, and each step that does not retrain is a logged decision with its reason."""

import datetime
import json

import pytest

from config import folders
from monitoring import feedback, loop, spans
from tests.support import request_logs

QUALITY_ALERT = {"labels": {"alertname": "TaxiLiveQualityBelowEvaluated"}, "annotations": {"summary": "bad"}}
POLICY = loop.Policy(min_new_labelled_trips=1000, min_new_on_alert=300, cooldown_seconds=3600)


@pytest.mark.parametrize(
    "new, firing, since, force, retrain, reason",
    [
        (0, [], None, False, False, None),  # nothing to act on: wait
        (999, [], None, False, False, None),
        (1000, [], None, False, True, None),
        (300, [QUALITY_ALERT], None, False, True, None),
        (0, [QUALITY_ALERT], 7200, False, False, "0 labelled trips are new (no earlier retrain used them), and an alert retrains from 300"),
        (299, [QUALITY_ALERT], None, False, False, "an alert retrains from 300"),
        (5000, [QUALITY_ALERT], 600, False, False, "the last retrain began 600 s ago, and the policy waits 3600 s"),
        (1, [], 600, True, True, None),  # a person's request: any new trip, no cooldown
        (0, [], None, True, False, "a retrain needs at least one"),
        (300, [{"labels": {"alertname": "TaxiModelSlow"}}], None, False, False, None),  # not the model's fault
    ],
)  # fmt: skip
def test_the_policy_retrains_on_new_data_only_and_not_within_the_cooldown(
    new, firing, since, force, retrain, reason
):
    decision = loop.decide(new, firing, since, POLICY, force)
    assert decision.retrain == retrain
    if reason:
        assert decision.triggers and any(reason in refusal for refusal in decision.refusals), decision
    elif not retrain:
        assert decision.triggers == []


def test_a_step_that_does_not_retrain_logs_why_and_runs_nothing(tmp_path):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=tmp_path / "data")
    trips = [{"request_id": f"r{i}", "trip": 0, "time": "2026-11-30T08:00:00+00:00", "model_version": "7",
              "route": "stable", "prediction": 0.5, "fare": "10.0", "trip_start_timestamp": "1467331200"}
             for i in range(4)]  # fmt: skip
    request_logs.write_request_log(settings.request_log_dir, trips)
    valid, _ = feedback.parse([{"request_id": f"r{i}", "tips": 1.0} for i in range(4)])
    feedback.FeedbackStore(settings.feedback_dir).add(valid)

    waited = loop.run_once(settings, loop.Policy(min_new_labelled_trips=5))
    assert (waited["decision"], waited["new_labelled_trips"]) == ("wait", 4)

    # Two trips went into an earlier retrain's export, which began a minute ago.
    spans.export([dict(t, tips=1.0) for t in trips[:2]], settings.data_root)
    began = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=60)
    with (settings.loop_dir / loop.DECISIONS_FILE).open("a") as log:
        log.write(
            json.dumps({"time": began.isoformat(timespec="seconds"), "decision": "retrain", "reason": "x"})
            + "\n"
        )
    refused = loop.run_once(settings, loop.Policy(min_new_labelled_trips=2, cooldown_seconds=3600))
    assert refused["decision"] == "refuse" and refused["new_labelled_trips"] == 2
    assert refused["exported_before"] == 2 and refused["triggers"] == [
        "2 new labelled trips (the policy retrains from 2)"
    ]
    assert "the policy waits 3600 s between retrains" in refused["reason"]
    assert [d["decision"] for d in loop.decisions(settings)] == ["wait", "retrain", "refuse"]
    assert not settings.run_summary_path.exists()  # the pipeline did not run
