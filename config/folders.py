"""The folders: the repository's, and the layout of the output folder one run reads and writes. Paths come
from command-line flags, else environment variables, else the defaults here (`Settings.resolve`)."""

import dataclasses
import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "schema" / "schema.pbtxt"

# Environment variables that set the folders when no flag does.
OUTPUT_DIR_ENV = "TAXI_OUTPUT_DIR"
DATA_ROOT_ENV = "TAXI_DATA_ROOT"
SERVING_LOGS_ENV = "TAXI_SERVING_LOGS"
SERVING_LOGS_HOURS_ENV = "TAXI_SERVING_LOGS_HOURS"
SCHEMA_PATH_ENV = "TAXI_SCHEMA_PATH"
PUSH_REPLAY_ENV = "TAXI_PUSH_REPLAY"  # for the tfx CLI, which passes no flags: as `run --push-replay`
# Where the tfx-CLI run (pipeline/beam_runner.py) leaves its exit status, under BEAM_HOME: the CLI itself
# reports every failure as 1.
TFX_CLI_EXIT_STATUS_FILE = "last_run_exit_status"
DEFAULT_OUTPUT_DIR = "outputs"

# What the SliceReport component writes in its artifact folder.
SLICE_REPORT_FILE = "slice_report.html"
SLICE_METRICS_FILE = "slice_metrics.json"
# What the ModelCard component writes in its artifact folder, and beside each pushed version
# (`<serving dir>/model_cards/<version>/`, registry/model_cards.py).
MODEL_CARD_FILE = "model_card.json"
MODEL_CARD_HTML_FILE = "model_card.html"
# What `taxi-pipeline drift` writes beside the slice report.
DRIFT_REPORT_FILE = "drift_report.html"
DRIFT_TABLE_FILE = "drift_table.json"
# Readers of ML Metadata (summaries, reports, the monitor) wait this long for a run that holds its write
# lock (reports/runs.py): a component's execution record is written in well under a second, but a loaded
# CI machine stretches that, and a reader that gives up would report an error for a run that is fine.
METADATA_READ_WAIT_SECONDS = 60.0
# The pipeline's skew check reads the request log since the production model was pushed, or over the
# last SERVING_LOG_WINDOW_HOURS when set (`--serving-logs-hours`).
SERVING_LOG_WINDOW_HOURS: float | None = None


# A path with a scheme (gs://, s3://, hdfs://, ...): an object store, which the folders do not support.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class UnsupportedPath(ValueError):
    """A folder given as an object-store URI: refused at once, before anything is read or written."""


def refuse_object_store(path: str | None, given_as: str) -> None:
    """Raises UnsupportedPath when `path` (a flag's or variable's value, `given_as`) is a URI such as gs://."""
    if path and _URI.match(str(path)):
        raise UnsupportedPath(
            f"{given_as} {path}: object-store paths (gs://, s3://, ...) are not supported. The input checks "
            "read every file and lay the data out for ExampleGen as links, one run holds the output folder "
            "with a lock file, and a push is an atomic rename: they need a filesystem, which an object store "
            "is not. Copy the data to a local folder, or mount the bucket (gcsfuse, s3fs, a Kubernetes "
            "volume) and pass the mounted path."
        )


@dataclasses.dataclass(frozen=True)
class Settings:
    """The folders one run reads and writes. Everything a run writes is under `output_dir`."""

    output_dir: Path
    data_root: Path | None  # None: the Chicago Taxi sample, prepared under output_dir
    schema_path: Path = SCHEMA_PATH
    # Folder of serving request logs (CSV). None with the sample: its newest half-year without tips,
    # prepared under output_dir; None with a --data-root: no serving data, skew is not checked.
    serving_logs: Path | None = None
    # A request log's window for the skew check: the last this many hours; None: since the production
    # model was pushed.
    serving_logs_hours: float | None = SERVING_LOG_WINDOW_HOURS

    @classmethod
    def resolve(
        cls,
        output_dir: str | None = None,
        data_root: str | None = None,
        schema_path: str | None = None,
        serving_logs: str | None = None,
        serving_logs_hours: float | None = None,
    ) -> "Settings":
        """Flags win over environment variables, which win over the defaults. Raises UnsupportedPath for an
        object-store URI (gs://, s3://)."""
        given = {
            "--output-dir": (output_dir, OUTPUT_DIR_ENV),
            "--data-root": (data_root, DATA_ROOT_ENV),
            "--schema": (schema_path, SCHEMA_PATH_ENV),
            "--serving-logs": (serving_logs, SERVING_LOGS_ENV),
        }
        for flag, (value, variable) in given.items():
            refuse_object_store(value, flag)
            refuse_object_store(None if value else os.environ.get(variable), f"${variable}")
        output = output_dir or os.environ.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR
        data = data_root or os.environ.get(DATA_ROOT_ENV)
        schema = schema_path or os.environ.get(SCHEMA_PATH_ENV) or SCHEMA_PATH
        serving = serving_logs or os.environ.get(SERVING_LOGS_ENV)
        return cls(
            output_dir=Path(output).resolve(),
            data_root=Path(data).resolve() if data else None,
            schema_path=Path(schema).resolve(),
            serving_logs=Path(serving).resolve() if serving else None,
            serving_logs_hours=serving_logs_hours
            or float(os.environ.get(SERVING_LOGS_HOURS_ENV) or 0)
            or SERVING_LOG_WINDOW_HOURS,
        )

    @property
    def prepared_sample_dir(self) -> Path:
        """Where `prepare-data` writes the taxi sample as spans."""
        return self.output_dir / "data" / "taxi_spans"

    @property
    def prepared_serving_logs_dir(self) -> Path:
        """Where `prepare-data` writes the sample's serving request logs."""
        return self.output_dir / "data" / "serving_logs"

    @property
    def serving_logs_dir(self) -> Path | None:
        """The serving request logs validated against training data; None: there are none."""
        if self.serving_logs is not None:
            return self.serving_logs
        return self.prepared_serving_logs_dir if self.data_root is None else None

    @property
    def spans_dir(self) -> Path:
        """The raw data the pipeline reads: one `span-N/` folder of CSVs per half-year."""
        return self.data_root or self.prepared_sample_dir

    @property
    def example_gen_input(self) -> Path:
        """Per span N, `train/` and `eval/` links to the span files ExampleGen reads for N."""
        return self.output_dir / "example_gen_input"

    @property
    def checked_spans_dir(self) -> Path:
        """Per span, a link to each checked raw file, or its normalised copy where ExampleGen needs one."""
        return self.output_dir / "data" / "checked" / "spans"

    @property
    def checks_memo_path(self) -> Path:
        """What the row checks found in files that passed them, by file identity (inputs/check_memo.py)."""
        return self.output_dir / "data" / "checked" / "checks_memo.json"

    @property
    def checked_serving_logs_dir(self) -> Path:
        """The same for the serving logs: what ServingLogsExampleGen reads."""
        return self.output_dir / "data" / "checked" / "serving_logs"

    @property
    def schema_snapshots_dir(self) -> Path:
        """Content-addressed copies of the curated schema, one per version the pipeline has imported."""
        return self.output_dir / "curated_schema"

    @property
    def data_reference_dir(self) -> Path:
        """The spans validated so far and the changes of units people accepted (components/data_reference.py)."""
        return self.output_dir / "data_reference"

    @property
    def pipeline_root(self) -> Path:
        return self.output_dir / "pipeline_root"

    @property
    def metadata_path(self) -> Path:
        return self.output_dir / "metadata.sqlite"

    @property
    def serving_model_dir(self) -> Path:
        """Pusher's destination: one numbered version folder per pushed model."""
        return self.output_dir / "serving_model"

    @property
    def run_summary_path(self) -> Path:
        return self.output_dir / "run_summary.json"

    @property
    def slice_report_path(self) -> Path:
        """A copy of the latest run's slice report, at a path that does not change between runs."""
        return self.output_dir / "slice_report.html"

    @property
    def drift_dir(self) -> Path:
        """`taxi-pipeline drift`'s statistics cache, table and HTML page."""
        return self.output_dir / "drift"

    @property
    def drift_report_path(self) -> Path:
        return self.output_dir / DRIFT_REPORT_FILE

    @property
    def serving_stack_dir(self) -> Path:
        """The local serving stack's state, nginx and Prometheus configuration and logs."""
        return self.output_dir / "serving"

    @property
    def request_log_dir(self) -> Path:
        """Where the model servers log every answered trip: serving logs the pipeline can read."""
        return self.output_dir / "request_log"

    @property
    def feedback_dir(self) -> Path:
        """Labels that arrived later (tips per served trip), as received."""
        return self.output_dir / "feedback"

    @property
    def loop_dir(self) -> Path:
        """The monitoring loop's decision log and the monitor page."""
        return self.output_dir / "loop"

    @property
    def tfx_cli_home(self) -> Path:
        """BEAM_HOME for the tfx CLI, so its pipeline registry stays inside the output folder."""
        return self.output_dir / "tfx_cli_home"
