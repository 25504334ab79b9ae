"""Uploads the compiled pipeline to a Kubeflow Pipelines 2.x API server, runs it and follows the run.

`make kfp-run` calls it with the API reachable through `kubectl port-forward`. Prints each state change
of the run, then where its artifacts (and the slice report) are in the object store.
"""

import argparse
import sys
import time
from pathlib import Path

from config import folders
from config import kubeflow as kubeflow_config

FINAL_STATES = {"SUCCEEDED", "FAILED", "SKIPPED", "CANCELED", "CANCELLED", "ERROR"}


def _client(host: str):
    import kfp  # the API client only; the pipeline itself was compiled by TFX

    return kfp.Client(host=host)


def submit(host: str, package: Path, pipeline_root: str, experiment: str) -> tuple[object, str]:
    """Starts a run of `package` (the compiled YAML); returns the client and the run id. It takes no
    arguments: the run's first step keys ExampleGen on the data it finds (kubeflow/input_fingerprint.py),
    as it does for a run started from the KFP UI, a recurring run or the SDK."""
    if package.suffix != ".yaml":
        raise ValueError(f"{package}: the KFP API accepts a .yaml pipeline package (run `make kfp-compile`)")
    client = _client(host)
    run = client.create_run_from_pipeline_package(
        str(package),
        arguments={},
        run_name=f"{kubeflow_config.KFP_PIPELINE_NAME}-{time.strftime('%Y%m%d-%H%M%S')}",
        experiment_name=experiment,
        pipeline_root=pipeline_root,
        # None keeps each step's own caching setting from the spec (InputFingerprint and ProductionModel
        # are never cached).
        enable_caching=None,
    )
    return client, run.run_id


def follow(client, run_id: str, timeout_seconds: int, poll_seconds: int = 10) -> str:
    """Prints the run's state whenever it changes, until it ends or `timeout_seconds` pass."""
    deadline, last = time.monotonic() + timeout_seconds, None
    while time.monotonic() < deadline:
        state = str(client.get_run(run_id).state).upper()
        if state != last:
            print(f"  run {run_id}: {state}", flush=True)
            last = state
        if state in FINAL_STATES:
            return state
        time.sleep(poll_seconds)
    return "TIMED_OUT"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeflow.submit", description=__doc__)
    parser.add_argument("--host", default="http://localhost:8080", help="KFP API (default: a port-forward)")
    parser.add_argument(
        "--package", default=str(kubeflow_config.KFP_BUILD_DIR / kubeflow_config.KFP_PIPELINE_FILE)
    )
    parser.add_argument("--pipeline-root", default=kubeflow_config.KFP_DEFAULT_PIPELINE_ROOT)
    parser.add_argument("--experiment", default=kubeflow_config.KFP_PIPELINE_NAME)
    parser.add_argument("--timeout", type=int, default=3600, help="Seconds to follow the run.")
    args = parser.parse_args(argv)

    client, run_id = submit(args.host, Path(args.package), args.pipeline_root, args.experiment)
    print(f"Started run {run_id}: {args.host}/#/runs/details/{run_id}")
    state = follow(client, run_id, args.timeout)
    print(f"Run {run_id} ended: {state}")
    print(
        f"Artifacts: {args.pipeline_root}/{kubeflow_config.KFP_PIPELINE_NAME}/{run_id}/ (MinIO bucket in the cluster)"
    )
    print(f"Slice report: .../SliceReport/report/{folders.SLICE_REPORT_FILE} under that folder")
    print(
        f"Pushed models: {kubeflow_config.KFP_SHARED_DIR}/serving_model/ on the shared volume (KFP_SHARED on this machine)"
    )
    return 0 if state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
