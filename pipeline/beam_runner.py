"""Entry point for the tfx CLI: `tfx pipeline create --engine beam --pipeline_path pipeline/beam_runner.py`.

Folders come from $TAXI_OUTPUT_DIR and $TAXI_DATA_ROOT (see pipeline/configs.py); `make tfx-run` sets them.
"""

import os
import sys

# Run as a script, this folder is sys.path[0], where pipeline.py would shadow the `pipeline` package.
_THIS_FOLDER = os.path.dirname(os.path.realpath(__file__))
if sys.path and os.path.realpath(sys.path[0] or ".") == _THIS_FOLDER:
    sys.path[0] = os.path.dirname(_THIS_FOLDER)

# The project's package first: importing it sets TF_USE_LEGACY_KERAS before TensorFlow loads.
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner  # noqa: E402

from pipeline import configs, inputs, local_pipeline  # noqa: E402  # isort: split

if __name__ == "__main__":
    settings = configs.Settings.resolve()
    inputs.prepare(settings)
    BeamDagRunner().run(local_pipeline.build(settings))
