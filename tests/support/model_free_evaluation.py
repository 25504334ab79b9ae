"""A real TFMA evaluation in seconds: the pipeline's EvalConfig on predictions stored in tf.Examples.

TFMA evaluates "model-free" when the predictions are features of the examples, so the fast tests can
run the Evaluator's exact slices, metrics and gates (including the key-slice floor with its minimum
example count) without training a model. The data is synthetic and seeded, built so that:
  - card trips are plentiful and only weakly separable by the candidate (AUC about 0.7);
  - cash trips are never big tippers (AUC undefined there);
  - 'Prcard' trips are too few to judge, and the candidate gets them all wrong;
  - the baseline is a slightly better model, so the candidate's AUC change is negative.
"""

import dataclasses
from pathlib import Path
from unittest import mock

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.api import model_eval_lib
from tensorflow_model_analysis.utils import config_util

from config import pipeline as pipeline_config
from models import features
from pipeline import evaluation

HOUR_BANDS = features.HOUR_BANDS
KEY_SLICE = pipeline_config.KEY_SLICE  # payment_type = Credit Card
SLICE_FEATURES = ((), ("payment_type",), ("payment_type", features.HOUR_BAND))
FEW_PRCARD_TRIPS = 6


def _example(payment_type: str, hour_band: str, label: int, candidate: float, baseline: float) -> bytes:
    feature = {
        "payment_type": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payment_type.encode()])),
        features.HOUR_BAND: tf.train.Feature(bytes_list=tf.train.BytesList(value=[hour_band.encode()])),
        features.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "candidate_prediction": tf.train.Feature(float_list=tf.train.FloatList(value=[candidate])),
        "baseline_prediction": tf.train.Feature(float_list=tf.train.FloatList(value=[baseline])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_examples(path: Path, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    records = []
    for index in range(600):  # card trips: 2/3 big tippers, predictions weakly informative
        label = int(rng.random() < 0.67)
        candidate = float(np.clip(0.55 + 0.12 * (label - 0.5) + rng.normal(0, 0.15), 0, 1))
        baseline = float(np.clip(0.55 + 0.2 * (label - 0.5) + rng.normal(0, 0.15), 0, 1))
        records.append(_example("Credit Card", HOUR_BANDS[index % 4], label, candidate, baseline))
    for index in range(400):  # cash trips: tips are not recorded, so never big tippers
        records.append(_example("Cash", HOUR_BANDS[index % 4], 0, float(rng.uniform(0, 0.1)), 0.05))
    for index in range(FEW_PRCARD_TRIPS):  # a handful, all predicted the wrong way
        label = index % 2
        records.append(_example("Prcard", HOUR_BANDS[0], label, 1.0 - label, float(label)))
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return len(records)


def eval_config(**gates) -> tfma.EvalConfig:
    """The pipeline's EvalConfig (configs' gates unless overridden), reading predictions from features."""
    settings = pipeline_config.Evaluation(slice_features=SLICE_FEATURES, key_slice=KEY_SLICE)
    config = evaluation.build_eval_config(dataclasses.replace(settings, **gates))
    del config.model_specs[:]
    config.model_specs.add(
        name=tfma.CANDIDATE_KEY, label_key=features.LABEL, prediction_key="candidate_prediction"
    )
    config.model_specs.add(
        name=tfma.BASELINE_KEY,
        label_key=features.LABEL,
        prediction_key="baseline_prediction",
        is_baseline=True,
    )
    return config


def evaluate(output_dir: Path, **gates) -> Path:
    """Runs TFMA with the pipeline's configuration; returns the evaluation folder (as the Evaluator's)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    data = output_dir / "examples.tfrecord"
    write_examples(data)
    evaluation_dir = output_dir / "evaluation"
    # TFMA infers "there is a baseline" from the models it is given, and model-free evaluation gives
    # none; without this it would refuse the change thresholds. Everything else is TFMA's own path.
    with mock.patch.object(
        model_eval_lib,
        "_update_eval_config_with_defaults",
        lambda config, _: config_util.update_eval_config_with_defaults(config, has_baseline=True),
    ):
        tfma.run_model_analysis(
            eval_config=eval_config(**gates), data_location=str(data), output_path=str(evaluation_dir)
        )
    return evaluation_dir


def evaluate_candidate(output_dir: Path, against_itself: bool) -> tuple[Path, tfma.EvalConfig]:
    """TFMA on the candidate's predictions alone (as the Evaluator judges a first model) or against a copy
    of itself as the baseline (as it judges a candidate that is production), with the pipeline's
    configuration completed as TFX's Evaluator completes it; returns the folder and that configuration."""
    output_dir.mkdir(parents=True, exist_ok=True)
    data = output_dir / "examples.tfrecord"
    write_examples(data)
    config = eval_config()
    del config.model_specs[:]
    config.model_specs.add(label_key=features.LABEL, prediction_key="candidate_prediction")
    config = config_util.update_eval_config_with_defaults(
        config, has_baseline=against_itself, rubber_stamp=True
    )
    with mock.patch.object(model_eval_lib, "_update_eval_config_with_defaults", lambda config, _: config):
        tfma.run_model_analysis(
            eval_config=config, data_location=str(data), output_path=str(output_dir / "evaluation")
        )
    return output_dir / "evaluation", config
