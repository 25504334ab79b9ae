"""Runs the compiled pipeline with KFP's own local runner (`kfp.local`, DockerRunner), in containers of
the pipeline image. `make test-kfp` runs it from a separate small environment (kfp 2.7 needs protobuf
>= 4.21, which TFX 1.16 forbids), made from kubeflow/kfp-local-requirements.txt.

    python kubeflow/kfp_local_run.py <compiled pipeline.yaml> <pipeline root folder>

The pipeline must be compiled with its shared folder inside the pipeline root
(`python -m kubeflow.compiler --shared-dir <root>/shared`): DockerRunner mounts the pipeline root
into every container at the same path, and has no other volumes.
"""

import sys
import time

from kfp import components, local


def main(package: str, pipeline_root: str) -> int:
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root)
    pipeline = components.load_component_from_file(package)
    started = time.monotonic()
    pipeline()  # raises when a task fails
    print(f"kfp.local: pipeline succeeded in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
