"""`taxi-pipeline trials` reads a tuning run's trials from ML Metadata, read-only, and says when none exists.

The store is a real ML Metadata store holding runs as TFX records them (pipeline, run and node contexts,
a Tuner execution and its `tuner_results` artifact with the properties components/tuner.py writes); the
Tuner itself runs in tests/e2e/test_tuning_e2e.py."""

import json

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from cli import main
from config import folders
from config import pipeline as pipeline_config
from reports import tuning_trials

TRIALS = [
    {"trial_id": "01", "score": 0.9431, "hyperparameters": {"learning_rate": 0.008, "train_steps": 300}},
    {"trial_id": "00", "score": 0.9402, "hyperparameters": {"learning_rate": 0.004, "train_steps": 150}},
]


class _Recorder:
    """Writes runs into a real store the way TFX's local orchestrator records them."""

    def __init__(self, path):
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self.types = {
            name: self.store.put_context_type(metadata_store_pb2.ContextType(name=name))
            for name in ("pipeline", "pipeline_run", "node")
        }
        [self.pipeline] = self.store.put_contexts(
            [metadata_store_pb2.Context(type_id=self.types["pipeline"], name=pipeline_config.PIPELINE_NAME)]
        )
        self.execution_type = self.store.put_execution_type(
            metadata_store_pb2.ExecutionType(name="tfx.Tuner")
        )
        self.artifact_type = self.store.put_artifact_type(
            metadata_store_pb2.ArtifactType(name="TunerResults")
        )

    def run(self, name: str, trials: list[dict] | None) -> None:
        """A run; with `trials`, its Tuner completed and recorded them."""
        [run] = self.store.put_contexts(
            [metadata_store_pb2.Context(type_id=self.types["pipeline_run"], name=name)]
        )
        self.store.put_parent_contexts(
            [metadata_store_pb2.ParentContext(child_id=run, parent_id=self.pipeline)]
        )
        if trials is None:
            return
        node_name = f"{pipeline_config.PIPELINE_NAME}.{tuning_trials.TUNER_NODE}"
        node = self.store.get_context_by_type_and_name("node", node_name)
        [node_id] = (
            [node.id]
            if node
            else self.store.put_contexts(
                [metadata_store_pb2.Context(type_id=self.types["node"], name=node_name)]
            )
        )
        artifact = metadata_store_pb2.Artifact(type_id=self.artifact_type, uri=f"/results/{name}")
        artifact.custom_properties[tuning_trials.OBJECTIVE_PROPERTY].string_value = "val_auc"
        artifact.custom_properties[tuning_trials.TRIALS_PROPERTY].string_value = json.dumps(
            [dict(trial, best=index == 0) for index, trial in enumerate(trials)]
        )
        execution = metadata_store_pb2.Execution(
            type_id=self.execution_type, last_known_state=metadata_store_pb2.Execution.COMPLETE
        )
        event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
        event.path.steps.add().key = tuning_trials.TUNER_RESULTS_KEY
        self.store.put_execution(
            execution,
            [(artifact, event)],
            self.store.get_contexts_by_id([run, node_id]),
        )


@pytest.fixture
def output_dir(tmp_path):
    return tmp_path / "outputs"


def _recorder(output_dir) -> _Recorder:
    settings = folders.Settings(output_dir=output_dir, data_root=None)
    settings.metadata_path.parent.mkdir(parents=True, exist_ok=True)
    return _Recorder(settings.metadata_path)


def test_prints_the_newest_tuning_runs_trials_best_first_and_marked(output_dir, capsys):
    recorder = _recorder(output_dir)
    recorder.run("run-1", [dict(TRIALS[1], score=0.91)])
    recorder.run("run-2", TRIALS)
    recorder.run("run-3", None)  # a later run that did not tune

    assert main.main(["trials", "--output-dir", str(output_dir)]) == 0

    out = capsys.readouterr().out
    assert "Tuning in run run-2: 2 trials, by val_auc" in out
    header, rule, best, other = out.splitlines()[1:5]
    assert header.split() == ["trial", "learning_rate", "train_steps", "val_auc"]
    assert set(rule) == {"-"}
    assert best.split() == ["*", "01", "0.008", "300", "0.9431"]
    assert other.split() == ["00", "0.004", "150", "0.9402"]


def test_a_run_asked_for_that_did_not_tune_is_named(output_dir, capsys):
    recorder = _recorder(output_dir)
    recorder.run("run-1", TRIALS)
    recorder.run("run-2", None)

    assert main.main(["trials", "--output-dir", str(output_dir), "--run-id", "run-2"]) == 2
    assert "run run-2 tuned nothing: `make tune`" in capsys.readouterr().err
    assert main.main(["trials", "--output-dir", str(output_dir), "--run-id", "run-1"]) == 0


def test_no_tuning_run_is_a_clear_error(output_dir, capsys):
    assert main.main(["trials", "--output-dir", str(output_dir)]) == 2
    assert "no run of chicago_taxi_big_tipper is recorded in" in capsys.readouterr().err

    _recorder(output_dir).run("run-1", None)
    assert main.main(["trials", "--output-dir", str(output_dir)]) == 2
    error = capsys.readouterr().err
    assert "no run of chicago_taxi_big_tipper in" in error and "tuned: `make tune`" in error
