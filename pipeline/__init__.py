"""The TFX pipeline: its settings (configs.py), `create_pipeline`, the evaluation config, the input layout
and the local runners (`make run`, the tfx CLI's beam_runner.py).

`pipeline.configs` is the one place for settings: it imports nothing of this project, and every package
may import it. The rest of this package assembles and runs the pipeline, and only the layers above it
(kubeflow, cli, benchmarks, tests) may import it.

May import: models, registry, components, reports.
"""

import models  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
