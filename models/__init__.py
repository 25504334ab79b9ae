"""The model: feature definitions, Transform preprocessing and the Keras trainer."""

import os

# tf.keras must be tf-keras 2.16 (Keras 3 breaks TFX Keras models); this has to be set before
# TensorFlow is first imported, so it lives in the package every entry point imports first.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
