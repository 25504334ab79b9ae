"""One run of TFX's own Chicago taxi example (native Keras) from the installed wheel, as shipped.

    python -m benchmarks.official_example DATA_DIR OUTPUT_DIR

Only the paths are ours: `_create_pipeline` with the example's own Beam args (multi-processing, one
worker per core), module file and steps. Prints {"model": <pushed version folder or "">, "components":
{node id: seconds}} as JSON.
"""

import json
import sys
from pathlib import Path

from pipeline.quiet_logs import quiet_logs

quiet_logs(verbose=False)

from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as official  # noqa: E402
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner  # noqa: E402

import pipeline  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads, also for workers)
from reports import runs  # noqa: E402


def main() -> int:
    data_dir, output_dir = Path(sys.argv[1]), Path(sys.argv[2])
    serving_model_dir = output_dir / "serving_model"
    BeamDagRunner().run(
        official._create_pipeline(
            pipeline_name=official._pipeline_name,
            pipeline_root=str(output_dir / "pipeline_root"),
            data_root=str(data_dir),
            module_file=str(Path(official.__file__).with_name("taxi_utils_native_keras.py")),
            serving_model_dir=str(serving_model_dir),
            metadata_path=str(output_dir / "metadata.db"),
            beam_pipeline_args=official._beam_pipeline_args,
        )
    )
    versions = (
        sorted(serving_model_dir.iterdir(), key=lambda p: int(p.name)) if serving_model_dir.is_dir() else []
    )
    components = runs.component_seconds(output_dir / "metadata.db", official._pipeline_name)
    print(json.dumps({"model": str(versions[-1]) if versions else "", "components": components}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
