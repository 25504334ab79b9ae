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

import docker
from kfp import components, local


def remove_finished_task_containers(client: docker.DockerClient, pipeline_root: str) -> int:
    """Removes the stopped containers that mounted `pipeline_root`; returns how many.

    DockerRunner starts each task without auto-removal and never removes it (kfp 2.7,
    `docker_task_handler.run_docker_container`), so every run would leave one stopped container per
    task, and each pins its image: a machine that runs this repeatedly could never prune old images.
    The task's logs were already streamed to this process's output.
    """
    stopped = client.containers.list(
        all=True, filters={"volume": pipeline_root, "status": ["exited", "created", "dead"]}
    )
    for container in stopped:
        container.remove()
    return len(stopped)


def main(package: str, pipeline_root: str) -> int:
    local.init(runner=local.DockerRunner(), pipeline_root=pipeline_root)
    pipeline = components.load_component_from_file(package)
    started = time.monotonic()
    try:
        pipeline()  # raises when a task fails
    finally:
        removed = remove_finished_task_containers(docker.from_env(), pipeline_root)
        print(f"kfp.local: removed {removed} finished task containers")
    print(f"kfp.local: pipeline succeeded in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
