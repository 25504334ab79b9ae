"""Runs that repeat, as production repeats them: real runs on ~1,800 real rows, asserting from ML Metadata
and the serving directory.

One output folder, in order: a first run pushes a model; a second on unchanged data pushes nothing (the
same model is production); an edit to a gate's source re-runs the gates and nothing upstream of them;
a new span trains a new model, which is pushed; a person rolls it back; two more runs leave production
on the version rolled back to. The runs use a copy of this repository's code, so that the gate can be
edited for real.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from config import folders
from config import pipeline as pipeline_config
from registry import versions
from reports import runs

pytestmark = pytest.mark.e2e

PACKAGES = (
    "models",
    "registry",
    "components",
    "pipeline",
    "reports",
    "serving",
    "monitoring",
    "cli",
    "schema",
    "tests",
)
# A model trained on one more half-year must be pushed even if it is a little worse than the first:
# the gates against production are not what this test is about.
NEW_MODEL_PUSHED = {"max_auc_drop": 1.0, "key_slice_max_auc_drop": 1.0}
CACHED, COMPLETE = metadata_store_pb2.Execution.CACHED, metadata_store_pb2.Execution.COMPLETE


class Workspace:
    def __init__(self, root: Path, data_root: Path):
        self.code = root / "code"
        for package in PACKAGES:
            shutil.copytree(
                folders.REPO_ROOT / package, self.code / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        self.settings = folders.Settings(output_dir=root / "outputs", data_root=data_root)

    def run(self, **gates) -> dict:
        """One `make run` with the copied code (the real runner, in its own process) and SMALL_RUN's settings,
        `gates` replacing fields of its Evaluation; returns the run's summary."""
        code = textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from config import folders
            from config import pipeline as pipeline_config
            from pipeline import local_runner
            from tests.support.spans import small_run
            settings = folders.Settings(output_dir=Path({str(self.settings.output_dir)!r}),
                                        data_root=Path({str(self.settings.data_root)!r}))
            sys.exit(local_runner.run(settings, **small_run(**{gates!r})))
            """
        )
        result = self.python("-c", code)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return json.loads(self.settings.run_summary_path.read_text())

    def python(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *arguments],
            cwd=self.code,
            env={**os.environ, "PYTHONPATH": str(self.code)},
            capture_output=True,
            text=True,
            timeout=900,
        )

    def cli(self, command: str, *arguments: str) -> subprocess.CompletedProcess:
        """`taxi-pipeline COMMAND [ACTION] --output-dir <the workspace's> ...`, with the copied code."""
        name, *action = command.split()
        folder = ["--output-dir", str(self.settings.output_dir)]
        return self.python("-m", "cli.main", name, *folder, *action, *arguments)

    def states(self) -> dict[str, int]:
        store = runs.open_store(self.settings.metadata_path)
        run = runs.run_context(store, pipeline_config.PIPELINE_NAME)
        return {
            runs.node_id_of(store, e.id, pipeline_config.PIPELINE_NAME): e.last_known_state
            for e in store.get_executions_by_context(run.id)
        }

    def versions(self) -> list[str]:
        return versions.complete_versions(self.settings.serving_model_dir)

    def production(self) -> str | None:
        return versions.production_version(self.settings.serving_model_dir)


@pytest.fixture
def workspace(tmp_path, small_taxi_spans_module) -> Workspace:
    data_root = tmp_path / "data"
    shutil.copytree(small_taxi_spans_module, data_root)
    shutil.move(data_root / "span-20162", tmp_path / "span-20162")  # arrives later
    return Workspace(tmp_path, data_root)


def test_repeated_runs_push_once_follow_edited_code_and_keep_a_rollback(workspace, tmp_path):
    first = workspace.run()
    assert first["pushed_model"] and len(workspace.versions()) == 1
    [v1] = workspace.versions()

    # Unchanged data: the Evaluator now compares the candidate with itself in production, blesses it, and
    # the Pusher declines to push the same model again.
    second = workspace.run()
    assert workspace.versions() == [v1]
    assert second["pushed_model"] is None
    assert second["not_pushed_because"] == f"same as production (version {v1})"

    # A folder copied in by hand beside production, newer, holding only the graph (as `cp` cut short or
    # TFX's stock Pusher can leave one): never production, named by `serve status`, moved aside by the next
    # run, which still judges against v1, and listed by `taxi-pipeline summary`.
    serving = workspace.settings.serving_model_dir
    hand_copy = serving / str(int(v1) + 1000)
    hand_copy.mkdir()
    shutil.copy(serving / v1 / versions.SAVED_MODEL_FILE, hand_copy)
    assert workspace.production() == v1
    status = workspace.cli("serve", "status")
    assert json.loads(status.stdout)["serving_directory"]["not_whole"][0]["path"] == str(hand_copy)
    assert f"warning: {hand_copy} is never served: version {hand_copy.name} is not whole" in status.stderr

    # An edit to the gates' module re-runs both gates and what their outputs feed, and nothing upstream.
    gates = workspace.code / "components" / "data_gates.py"
    gates.write_text(gates.read_text() + "\n\nEDITED = True  # a change of code, not of a comment\n")
    third_run = workspace.run()
    [moved] = third_run["serving_directory"]["quarantined"]
    assert "no completion record" in moved["reason"] and not hand_copy.exists()
    assert third_run["evaluation"]["baseline"]["version"] == v1
    assert moved["path"] in workspace.cli("summary").stdout
    states = workspace.states()
    assert states["TrainingDataGate"] == COMPLETE and states["PushGate"] == COMPLETE
    for upstream in (
        "CsvExampleGen",
        "StatisticsGen",
        "ExampleValidator",
        "Transform",
        "Trainer",
        "Evaluator",
    ):
        assert states[upstream] == CACHED, (upstream, states)
    assert workspace.versions() == [v1]

    # A new span: a new model, pushed as a second version.
    shutil.move(tmp_path / "span-20162", workspace.settings.data_root / "span-20162")
    third = workspace.run(**NEW_MODEL_PUSHED)
    assert third["pushed_model"] and len(workspace.versions()) == 2
    v2 = workspace.production()
    assert v2 != v1

    # A person rolls it back. The next run finds every input unchanged (the candidate was evaluated against
    # the version rolled back to before it was pushed), so the Pusher's result comes from the cache and
    # nothing is written. An edit to the Pusher's code then makes it run again on the same blessed model:
    # it refuses the rolled-back version by name. Production stays where the person put it.
    rolled_back = workspace.python(
        "-m", "cli.main", "rollback", "--output-dir", str(workspace.settings.output_dir), "--reason", "test"
    )
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert workspace.production() == v1
    after_rollback = workspace.run(**NEW_MODEL_PUSHED)
    assert (
        after_rollback["evaluation"]["baseline"]["version"] == v1 and after_rollback["evaluation"]["blessed"]
    )
    assert after_rollback["pushed_model"] is None and workspace.states()["Pusher"] == CACHED
    pusher = workspace.code / "components" / "pusher.py"
    pusher.write_text(pusher.read_text() + "\n\nEDITED = True\n")
    again = workspace.run(**NEW_MODEL_PUSHED)
    assert workspace.states()["Pusher"] == COMPLETE
    assert again["pushed_model"] is None
    assert again["not_pushed_because"].startswith(f"rolled back (as version {v2}"), again[
        "not_pushed_because"
    ]
    assert workspace.production() == v1 and workspace.versions() == [v1, v2]
    _adopt_hand_copies(workspace, v1, v2)


def _adopt_hand_copies(workspace: Workspace, good: str, rolled_back: str) -> None:
    """A whole model copied in by hand is adopted once it loads; a copy of a rolled-back one is refused."""
    serving = workspace.settings.serving_model_dir
    hand_copy, copy_of_rolled_back = (
        serving / str(int(rolled_back) + 1),
        workspace.settings.output_dir / "copy",
    )
    for version, copy in ((good, hand_copy), (rolled_back, copy_of_rolled_back)):
        shutil.copytree(serving / version, copy, ignore=shutil.ignore_patterns(versions.RECORD_FILE))
    assert workspace.production() == good  # the copy has no record
    refused = workspace.cli("adopt", str(copy_of_rolled_back))
    assert refused.returncode == 2 and f"rolled back as version {rolled_back}" in refused.stderr
    adopted = workspace.cli("adopt", str(hand_copy))
    assert adopted.returncode == 0, adopted.stderr
    assert workspace.production() == hand_copy.name
