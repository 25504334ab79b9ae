"""The model: feature definitions, Transform's preprocessing, the Keras trainer and the Evaluator's slice metric.

Components load this code by module path (`models.preprocessing.preprocessing_fn`, `models.model.run_fn`,
`models.slice_floor_metric`), so it is importable, unit-tested and baked into the Kubeflow image.

May import: config.
"""

import os

# tf.keras must be tf-keras 2.16 (Keras 3 breaks TFX Keras models). This has to be set before TensorFlow
# is first imported, so it lives in the bottom package, which every other package imports first.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
