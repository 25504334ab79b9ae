"""`make tfx-run`: registers the pipeline with the tfx CLI (update, else create) and runs it as `make run`
does, exiting with the run's own status.

    .venv/bin/python -m pipeline.tfx_cli [--output-dir DIR] [--data-root DIR] [--serving-logs DIR] [--verbose]

The tfx CLI passes no flags to the pipeline file (beam_runner.py): the folders go by the environment
(config/folders.py), and the CLI's registry, BEAM_HOME, is the output folder's `tfx_cli_home/`. The CLI turns
every failure into exit status 1; beam_runner.py leaves the run's own status there, which this returns.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config

# As the README's commands name it: the tfx CLI runs it from the repository.
PIPELINE_PATH = "pipeline/beam_runner.py"
TFX = str(Path(sys.executable).parent / "tfx")


def environment(
    settings: folders.Settings, data_root: str | None, serving_logs: str | None, verbose: bool, base: Mapping
) -> dict[str, str]:
    """`base` with BEAM_HOME and the folders set for beam_runner.py; the flags' folders win over `base`'s."""
    env = {**base, "BEAM_HOME": str(settings.tfx_cli_home), folders.OUTPUT_DIR_ENV: str(settings.output_dir)}
    if data_root:
        env[folders.DATA_ROOT_ENV] = str(Path(data_root).resolve())
    if serving_logs:
        env[folders.SERVING_LOGS_ENV] = str(Path(serving_logs).resolve())
    if verbose:
        env["VERBOSE"] = "1"
    return env


def run(env: Mapping[str, str], pipeline_name: str = pipeline_config.PIPELINE_NAME) -> int:
    """Registers (update, else create) and runs the pipeline with the tfx CLI in `env`. Returns the exit
    status the pipeline file left last (registering runs it too, and a run stopped by bad input stops
    there), else the CLI's own."""
    status_file = Path(env["BEAM_HOME"]) / folders.TFX_CLI_EXIT_STATUS_FILE
    status_file.unlink(missing_ok=True)
    register = ("--pipeline_path", PIPELINE_PATH)
    # The output of a failed `update` (a pipeline not registered yet) says nothing `create` will not.
    status = _tfx(env, "pipeline", "update", *register, quiet=True)
    if status != 0:
        status = _tfx(env, "pipeline", "create", *register)
    if status == 0:
        status = _tfx(env, "run", "create", "--pipeline_name", pipeline_name)
    return int(status_file.read_text()) if status_file.is_file() else status


def _tfx(env: Mapping[str, str], *arguments: str, quiet: bool = False) -> int:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.run(
        [TFX, *arguments, "--engine", "beam"], cwd=folders.REPO_ROOT, env=env, stdout=output, stderr=output
    ).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tfx_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", help=f"default: ${folders.OUTPUT_DIR_ENV}, else outputs")
    parser.add_argument(
        "--data-root", help=f"Folder of span-N/ sub-folders (default: ${folders.DATA_ROOT_ENV})."
    )
    parser.add_argument(
        "--serving-logs", help=f"Folder of serving request CSVs (default: ${folders.SERVING_LOGS_ENV})."
    )
    parser.add_argument("--verbose", action="store_true", help="Keep TensorFlow, absl and Beam logs.")
    args = parser.parse_args(argv)
    settings = folders.Settings.resolve(args.output_dir)
    return run(environment(settings, args.data_root, args.serving_logs, args.verbose, os.environ))


if __name__ == "__main__":
    sys.exit(main())
