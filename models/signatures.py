"""The model's serving contract: its signatures' names, its output's name, and the value each dtype reads
as missing in the raw-features signature.

A module of its own, importing TensorFlow only, because the model server (serving/) and the pre-push
check (components/serving_check.py) need these names and nothing else of models/model.py, whose TFX and
TF Transform imports (the Trainer's, the Tuner's, all of TFX's standard components with TFMA, Beam and
BigQuery behind them) cost each server process about 2 s more to start.
"""

import tensorflow as tf

# The saved model's signatures. Serialized tf.Examples, as TFX's Evaluator and BulkInferrer call it:
EXAMPLES_SIGNATURE = "serving_default"
# One named tensor per raw feature, for JSON clients (TF Serving's REST rows and columns):
RAW_FEATURES_SIGNATURE = "raw_features"
# Transform's graph alone, so the Evaluator can read the label and the features made from the raw ones:
TRANSFORM_FEATURES_SIGNATURE = "transform_features"
PREDICTION = "big_tipper_probability"

# A value the raw-features signature reads as missing, by dtype (one value per row and feature).
MISSING = {tf.float32: float("nan"), tf.int64: -1, tf.string: ""}
