"""Entry point for the tfx CLI: `tfx pipeline create --engine beam --pipeline_path pipeline/beam_runner.py`.

Folders come from $TAXI_OUTPUT_DIR, $TAXI_DATA_ROOT and $TAXI_SERVING_LOGS (see config/folders.py);
`make tfx-run` sets them. VERBOSE=1 keeps TensorFlow, absl and Beam logs.
"""

import os
import sys

# Run as a script, this folder is sys.path[0], where pipeline.py would shadow the `pipeline` package.
_THIS_FOLDER = os.path.dirname(os.path.realpath(__file__))
if sys.path and os.path.realpath(sys.path[0] or ".") == _THIS_FOLDER:
    sys.path[0] = os.path.dirname(_THIS_FOLDER)

# Importing the package sets TF_USE_LEGACY_KERAS; the log levels must be set before TensorFlow loads.
from pipeline.quiet_logs import quiet_logs  # noqa: E402

quiet_logs(verbose=bool(os.environ.get("VERBOSE")))

from config import folders  # noqa: E402
from pipeline import local_runner  # noqa: E402

if __name__ == "__main__":
    # The same run as `make run`: the output folder's lock, the input checks, the progress lines and the
    # summary. `tfx pipeline create` executes this too, with BeamDagRunner.run patched to record the
    # pipeline instead of running it.
    try:
        settings = folders.Settings.resolve()
    except folders.UnsupportedPath as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(local_runner.BAD_INPUT_EXIT_CODE)
    exit_code = local_runner.run(settings, push_replay=bool(os.environ.get(folders.PUSH_REPLAY_ENV)))
    # The tfx CLI turns every failure into exit status 1; `make tfx-run` reads the real one from here.
    settings.tfx_cli_home.mkdir(parents=True, exist_ok=True)
    (settings.tfx_cli_home / folders.TFX_CLI_EXIT_STATUS_FILE).write_text(f"{exit_code}\n")
    sys.exit(exit_code)
