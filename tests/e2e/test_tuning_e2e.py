"""Tuning end to end on ~2,100 real taxi rows: a 2-trial search, recorded in ML Metadata, whose best
hyperparameters the Trainer trains, and `taxi-pipeline trials` showing them."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2

from config import folders
from config import pipeline as pipeline_config
from models import model
from pipeline import local_runner
from reports import runs, tuning_trials
from tests.support.spans import SMALL_RUN, write_sampled_spans

pytestmark = pytest.mark.e2e

TRIALS = 2


def _node_output(store, run, node_id: str, key: str) -> metadata_store_pb2.Artifact:
    for execution in store.get_executions_by_context(run.id):
        if runs.node_id_of(store, execution.id, pipeline_config.PIPELINE_NAME) == node_id:
            assert execution.last_known_state == metadata_store_pb2.Execution.COMPLETE, node_id
            [artifact] = runs.output_artifacts(store, execution.id)[key]
            return artifact
    raise AssertionError(f"{node_id} did not run")


def _trainer_input(store, run, key: str) -> metadata_store_pb2.Artifact:
    for execution in store.get_executions_by_context(run.id):
        if runs.node_id_of(store, execution.id, pipeline_config.PIPELINE_NAME) == "Trainer":
            events = store.get_events_by_execution_ids([execution.id])
            [artifact_id] = [
                e.artifact_id
                for e in events
                if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == key
            ]
            return store.get_artifacts_by_id([artifact_id])[0]
    raise AssertionError("the Trainer did not run")


def test_the_trainer_trains_the_best_of_a_recorded_search(tmp_path):
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=data_root)
    training = dataclasses.replace(SMALL_RUN["training"], tune=True, tuning_trials=TRIALS)

    assert local_runner.run(settings, training=training, evaluation=SMALL_RUN["evaluation"]) == 0

    store, run = runs.find_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    results = _node_output(store, run, "Tuner", tuning_trials.TUNER_RESULTS_KEY)
    trials = json.loads(results.custom_properties[tuning_trials.TRIALS_PROPERTY].string_value)
    assert len(trials) == TRIALS and [trial["best"] for trial in trials] == [True, False]
    assert trials[0]["score"] >= trials[1]["score"] > 0.5
    best = trials[0]["hyperparameters"]
    # ML Metadata keeps the float property to about 6 digits.
    best_score = results.custom_properties[tuning_trials.BEST_SCORE_PROPERTY].double_value
    assert best_score == pytest.approx(trials[0]["score"], abs=1e-5)

    # The Trainer read the Tuner's best hyperparameters, and its model has the best point's widths.
    taken = _trainer_input(store, run, "hyperparameters")
    best_hyperparameters = _node_output(store, run, "Tuner", "best_hyperparameters")
    assert taken.id == best_hyperparameters.id
    assert json.loads((Path(taken.uri) / "best_hyperparameters.txt").read_text())["values"] == best
    # The seeded search's two points differ in width, so the widths tell which one the Trainer trained.
    widths = (model.EMBEDDING, model.FIRST_LAYER_UNITS, model.SECOND_LAYER_UNITS)
    assert [trials[0]["hyperparameters"][w] for w in widths] != [
        trials[1]["hyperparameters"][w] for w in widths
    ]
    model_uri = _node_output(store, run, "Trainer", "model").uri
    trained = tf.keras.models.load_model(str(Path(model_uri) / "Format-Serving"), compile=False)
    embeddings = [layer for layer in trained.layers if layer.name.endswith("_embedding")]
    assert embeddings and {layer.output_dim for layer in embeddings} == {best[model.EMBEDDING]}
    hidden = [layer.units for layer in trained.layers if isinstance(layer, tf.keras.layers.Dense)][:-1]
    assert hidden == [best[model.FIRST_LAYER_UNITS], best[model.SECOND_LAYER_UNITS]]

    listed = subprocess.run(
        [sys.executable, "-m", "cli.main", "trials", "--output-dir", str(settings.output_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Tuning in run {run.name}: {TRIALS} trials, by val_auc" in listed
    best_line = next(line for line in listed.splitlines() if line.startswith("*"))
    assert (
        best_line.split()[1] == trials[0]["trial_id"] and best_line.split()[-1] == f"{trials[0]['score']:.4f}"
    )
