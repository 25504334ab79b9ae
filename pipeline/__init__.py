"""The TFX pipeline: `create_pipeline`, the evaluation config and the local runners (`make run`, the tfx
CLI's beam_runner.py). It assembles and runs the pipeline; only the layers above it (kubeflow, cli,
benchmarks, tests) may import it. Its settings live on the ground floor, in `config`.

May import: config, models, registry, inputs, components, reports.
"""

import models  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
