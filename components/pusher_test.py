"""Our Pusher on real TFX artifacts: a blessed model is pushed whole as a new version, unless it is the
model already in production or one a person rolled back."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import production_model, pusher
from registry import versions
from reports.run_summary import NOT_PUSHED_BECAUSE
from tests.support.outputs import saved_model


def _push(
    tmp_path: Path, serving: Path, weights: bytes, blessed: bool = True, baseline=None
) -> standard_artifacts.PushedModel:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / f"model-{weights.decode()}")
    if not Path(model.uri).exists():  # the same Trainer output, pushed again
        saved_model(Path(model.uri) / "Format-Serving", weights)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{weights.decode()}-{len(list(tmp_path.glob('pushed-*')))}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving))
    )
    pusher.Executor().Do(
        {
            "model": [model],
            "model_blessing": [blessing],
            **({"baseline_model": [baseline]} if baseline else {}),
        },
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination), "custom_config": json.dumps({})},
    )
    return pushed


def test_a_new_blessed_model_is_pushed_whole_as_a_new_version(tmp_path):
    serving = tmp_path / "serving"
    pushed = _push(tmp_path, serving, b"first")
    [version] = versions.complete_versions(serving)
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(serving / version)
    assert versions.partial_pushes(serving) == []
    second = _push(tmp_path, serving, b"second")
    assert second.get_int_custom_property("pushed") == 1
    assert len(versions.complete_versions(serving)) == 2 and versions.production_path(serving).name != version


def test_the_model_in_production_is_not_pushed_again(tmp_path):
    serving = tmp_path / "serving"
    _push(tmp_path, serving, b"same")
    [version] = versions.complete_versions(serving)
    again = _push(tmp_path, serving, b"same")
    assert again.get_int_custom_property("pushed") == 0
    assert again.get_string_custom_property(NOT_PUSHED_BECAUSE) == f"same as production (version {version})"
    assert versions.complete_versions(serving) == [version]


def test_a_rolled_back_model_is_never_pushed_again_until_the_rollback_is_undone(tmp_path):
    serving = tmp_path / "serving"
    _push(tmp_path, serving, b"good")
    _push(tmp_path, serving, b"bad")
    [rollback] = versions.record_rollback(serving, reason="canary errors")
    refused = _push(tmp_path, serving, b"bad")
    assert refused.get_int_custom_property("pushed") == 0
    reason = refused.get_string_custom_property(NOT_PUSHED_BECAUSE)
    assert reason.startswith(f"rolled back (as version {rollback.version}") and "canary errors" in reason
    assert len(versions.complete_versions(serving)) == 2
    versions.undo_rollback(serving, rollback.version)
    assert _push(tmp_path, serving, b"bad").get_int_custom_property("pushed") == 0  # production again: same


def _baseline(serving: Path) -> standard_artifacts.Model:
    """ProductionModel's output as it reads `serving` now."""
    baseline = standard_artifacts.Model()
    production = versions.production_version(serving)
    source = production_model.FROM_PRODUCTION if production else production_model.FROM_CANDIDATE
    baseline.set_string_custom_property("baseline_source", source)
    baseline.set_string_custom_property("production_version", production or "")
    baseline.set_string_custom_property("model_fingerprint", versions.production_fingerprint(serving) or "x")
    return baseline


def test_a_model_judged_against_a_production_that_moved_meanwhile_is_not_pushed(tmp_path):
    serving = tmp_path / "serving"
    judged_against_nothing = _baseline(serving)
    _push(tmp_path, serving, b"first")  # another run pushed meanwhile
    [first] = versions.complete_versions(serving)
    held = _push(tmp_path, serving, b"second", baseline=judged_against_nothing)
    assert held.get_int_custom_property("pushed") == 0
    assert held.get_string_custom_property(NOT_PUSHED_BECAUSE) == (
        "production changed while this run evaluated (judged against nothing in production, production is "
        f"now version {first}); the next run judges it against the new production"
    )
    judged_against_first = _baseline(serving)
    _push(tmp_path, serving, b"third")
    versions.record_rollback(serving, reason="canary errors")  # production is back on the first
    assert _push(tmp_path, serving, b"fourth", baseline=judged_against_first).get_int_custom_property(
        "pushed"
    )


def test_a_model_that_is_not_blessed_is_not_pushed(tmp_path):
    serving = tmp_path / "serving"
    assert _push(tmp_path, serving, b"unblessed", blessed=False).get_int_custom_property("pushed") == 0
    assert versions.complete_versions(serving) == []


def test_two_runs_pushing_the_same_model_at_once_push_it_once(tmp_path):
    """Two Pushers (two Kubeflow runs on one shared volume), released at the same moment: each decides and
    writes under the registry's lock, so the second finds the first's version and declines."""
    serving, go = tmp_path / "serving", tmp_path / "go"
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from components import pusher_test
        from registry import completion
        flush = completion.sync  # a slow disk: each push takes about a second, a wide window to interleave
        completion.sync = lambda path: (time.sleep(0.1), flush(path))
        while not Path({str(go)!r}).exists():
            time.sleep(0.001)
        pushed = pusher_test._push(Path(sys.argv[1]), Path({str(serving)!r}), b"same")
        print(pushed.get_int_custom_property("pushed"))
        """
    )
    runs = [tmp_path / f"run-{index}" for index in range(2)]
    processes = [
        subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
        for run in runs
    ]
    time.sleep(5)  # both imported TFX and are waiting
    go.touch()
    outcomes = sorted(process.communicate(timeout=120)[0].split()[-1] for process in processes)
    assert outcomes == ["0", "1"]
    [version] = versions.complete_versions(serving)
    assert versions.not_whole(serving) == []
