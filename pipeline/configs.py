"""Every setting of the pipeline, defined once.

Paths come from command-line flags, else environment variables, else the defaults here
(`Settings.resolve`); everything else is a constant that the runners pass to `create_pipeline`.
"""

import dataclasses
import os
from pathlib import Path

PIPELINE_NAME = "chicago_taxi_big_tipper"
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

# Components load the model code by module path, so it is importable and testable (and baked into images).
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.model.run_fn"

# Spans: one per calendar half-year, numbered YYYYH (20151 = January-June 2015). Quarters of 2016
# hold only ~200 trips each in the sample, too few to evaluate on; half-years hold >= 400.
SPAN_FOLDER_PREFIX = "span-"
MONTHS_PER_SPAN = 6
# The model for span N trains on the TRAINING_WINDOW_SPANS half-years before the evaluation spans and
# is evaluated on the EVALUATION_SPANS newest ones (ending at N): held-out data newer than training.
TRAINING_WINDOW_SPANS = 6
EVALUATION_SPANS = 3
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
# Two more ExampleGen splits, used only by data validation: span N's own half-year and the one before
# it, so every run measures span-to-span drift without needing an earlier run (or a Resolver, which
# open-source Kubeflow Pipelines rejects) to find the previous span's statistics.
CURRENT_SPAN_SPLIT = "current_span"
PREVIOUS_SPAN_SPLIT = "previous_span"
# Serving request logs (CSV, the columns of the training data without `tips`) are read by their own
# ExampleGen into this split and compared with the training split's statistics.
SERVING_SPLIT = "serving"

# Data validation (schema/README.md has the measurements behind these).
# Histogram buckets per numeric feature in the statistics. Jensen-Shannon divergence is computed on
# these histograms; with TFDV's default of 10 the outliers that set the range squeeze most trips into one
# bucket, and fares x3 measured 0.25 against a natural 0.42 (undetectable); with 50 it is 0.41 against 0.11.
STATISTICS_HISTOGRAM_BUCKETS = 50
# Drift and skew distances are noisy on small samples: below this many examples in either side they are
# recorded but do not gate (the 2016 half-years hold 405 and 430 rows in the sample).
MIN_EXAMPLES_TO_GATE_ON_DISTANCE = 200
# The sample holds no exactly repeated row; a span with more than this fraction of repeats was
# most likely written twice (a retried export) and is refused before anything runs.
MAX_DUPLICATE_ROW_FRACTION = 0.01
# In the sample, every row's hour, day of week and month are its timestamp's in UTC, and every row starts
# inside its half-year span. A file with more than this fraction of rows that disagree is refused.
MAX_INCONSISTENT_ROW_FRACTION = 0.001

# Changes of units (components/unit_changes.py): each of these amounts is measured against the others, per
# trip, from span to span and between serving and training data. Between the sample's real half-years an
# amount moved by at most x1.17 that way; a factor of 1.5 to 3 (or 100) on one amount moved it by at
# least x1.28 in every transition (schema/README.md, "Changes of units").
UNIT_CHANGE_AMOUNTS = ("fare", "trip_miles", "trip_seconds")
MAX_UNIT_CHANGE = 1.25

# Trainer: 150 steps of 512 examples, about 6 passes over the sample's 12,000-row window, at a rate of
# 0.004: held-out AUC 0.942-0.944 across three seeds, against 0.941-0.943 for the 1,200 steps of 64 at
# 0.001 used before (docs/performance.md), in an eighth of the steps. The evaluation steps make about
# one pass over the 3,000-row evaluation window (only logged; the Evaluator judges the model). The steps
# do not grow with the data: on 100k generated rows 600 and 1,500 steps scored lower than 150 (docs/performance.md, "Scaling").
TRAIN_STEPS = 150
TRAIN_BATCH_SIZE = 512
LEARNING_RATE = 0.004
EVAL_STEPS = 6

# The Evaluator judges a seeded sample of at most this many evaluation examples: TFMA costs ~5 ms per
# example here (974 s for the 205,098 of a 1M-row window), and 25,000 still give the key slice (~40 %
# of trips) about 10,000 examples, an AUC standard error under 0.01. The sample's 3,064 pass whole.
MAX_EVALUATION_EXAMPLES = 25_000
EVALUATION_SAMPLE_SEED = 20_130_101

# Evaluator gates. Overall: value floors, and an AUC at most MAX_AUC_DROP below the production model's
# (the latest pushed one) on the same data.
MIN_AUC = 0.90
MIN_ACCURACY = 0.85
MAX_AUC_DROP = 0.01

# Slices the Evaluator computes metrics on and the slice report shows, in this order: each entry is
# the features of one TFMA slicing spec (() is the whole evaluation set; two features, their cross).
SLICE_FEATURES = (
    (),
    ("payment_type",),
    ("trip_start_hour",),
    ("trip_start_day",),
    ("company",),
    ("pickup_community_area",),
    ("trip_start_hour_band",),
    ("payment_type", "trip_start_hour_band"),
)
# The slice that matters most: tips are recorded for card payments (cash tips mostly are not), so
# this is where the model's decisions count. It has its own floors, applied only when it holds at least
# MIN_SLICE_EXAMPLES examples, so a thin evaluation window cannot flip the blessing by chance.
KEY_SLICE = (("payment_type", "Credit Card"),)
KEY_SLICE_MIN_AUC = 0.65
KEY_SLICE_MIN_ACCURACY = 0.69
# And no worse than production there by more than this much AUC. Retrained on one more half-year, the
# candidate's key-slice AUC moved by +0.002 to +0.011 against the previous model on the same window (the
# sample's last two spans, 3 seeds; docs/evaluation.md); the AUC's sampling error on the ~1,270 card trips
# of a window is ~0.013, so a drop of 0.02 is a regression, not noise.
KEY_SLICE_MAX_AUC_DROP = 0.02
# Below this many examples a slice's metrics are too noisy to act on: the report marks such slices.
MIN_SLICE_EXAMPLES = 100
# Decision thresholds for confusion matrices and the fairness rates (false positive/negative rate
# per slice); 0.5 is the one the accuracy gate uses.
DECISION_THRESHOLDS = (0.3, 0.5, 0.7)
REPORTED_DECISION_THRESHOLD = 0.5  # the one BinaryAccuracy, Precision and Recall use
# What the SliceReport component writes in its artifact folder.
SLICE_REPORT_FILE = "slice_report.html"
SLICE_METRICS_FILE = "slice_metrics.json"
# What `taxi-pipeline drift` writes beside the slice report.
DRIFT_REPORT_FILE = "drift_report.html"
DRIFT_TABLE_FILE = "drift_table.json"

# Beam DirectRunner on 2 cores: see docs/performance.md, "Beam settings", for the measurements behind the choice.
BEAM_PIPELINE_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")
# A local run's Beam workers are this Python environment. Without one of Beam's dependency options, TFX
# builds an sdist of itself to ship to the workers, for every Beam component it runs: 3 s each, and 49 MB
# left in TMPDIR each time, never deleted (a day of CI filled the disk). The DirectRunner stages nothing, so
# the option is read only by a remote runner; the lock is what that runner's workers would need. Kubeflow
# names its image instead (kubeflow/compiler.py).
LOCAL_BEAM_DEPENDENCY_ARGS = (f"--requirements_file={REPO_ROOT / 'requirements.lock'}",)
# Except, in a local run on large data, for the components whose work grows with it: they run on two
# worker processes (PARALLEL_BEAM_ARGS). Each worker imports TensorFlow (~15 s) and every stage's data
# crosses a process boundary, so they pay only past a size, measured per component (docs/performance.md, "Beam
# settings"): ExampleGen and Transform from the rows of the training and evaluation windows below (at 100k
# rows they lose 7-9 s each, at 1M they save 88 and 74 s; the straight lines through both cross at 160k
# and 190k), and the Evaluator from the examples it judges below (on the sample's 3,064 it loses 14 s, on
# 20,302 it saves 51 s). StatisticsGen would save 7 s at 1M and lose below ~600k: it stays in memory. The
# workers' state cache is off like the in-memory one's (pipeline/beam_settings.py), by the option they honour.
PARALLEL_BEAM_ARGS = (
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=2",
    "--max_cache_memory_usage_mb=0",
)
PARALLEL_FROM_WINDOW_ROWS = {"CsvExampleGen": 250_000, "Transform": 250_000}
PARALLEL_EVALUATION_MIN_EXAMPLES = 10_000


# Serving (docs/serving.md). The model's name in TF Serving's REST paths (/v1/models/taxi:predict).
SERVING_MODEL_NAME = "taxi"
# How often a model server looks for a new version in the serving directory, in seconds.
SERVING_POLL_SECONDS = 1.0
# The most trips one request may carry, and the largest body (nginx refuses larger ones the same way).
SERVING_MAX_BATCH = 1000
SERVING_MAX_BODY_BYTES = 1_000_000
# The request log: buffered rows reach the disk every second (at most that much is lost to a crash); a
# file is closed (and readable by the pipeline) at 8 MB or after 5 minutes.
REQUEST_LOG_FLUSH_SECONDS = 1.0
REQUEST_LOG_MAX_BYTES = 8_000_000
REQUEST_LOG_MAX_SECONDS = 300.0
# The request log's route column; the pipeline reads a shadow's rows as what they are, the same trips
# again (answered by stable too), and leaves them out of the serving data.
REQUEST_LOG_ROUTE_COLUMN = "route"
REQUEST_LOG_TIME_COLUMN = "time"  # ISO 8601, UTC: when the trip was answered
SHADOW_ROUTE = "shadow"
# The local stack (serving/stack.py): nginx's port (the base URL), Prometheus's; servers take free ports.
SERVING_PORT = 8500
PROMETHEUS_PORT = 9290
SERVING_START_SECONDS = 120.0  # for a server to load its version and answer ready
SERVING_DRAIN_SECONDS = 2.0  # after nginx stops sending to a server, before it is stopped
# A shadow's answer is thrown away, but nginx waits for it before the connection's next request: the
# shadow server answers nginx at once and predicts afterwards, and past this nginx stops waiting anyway
# (a shadow too busy to answer at all). docs/serving.md, "Shadow's cost".
SHADOW_TIMEOUT_MS = 100
# Copies a shadow server may hold waiting for its model; past this it drops new ones (and counts them).
SHADOW_MAX_PENDING = 200
# Prometheus scrapes each server this often (local stack), and evaluates its rules as often.
PROMETHEUS_SCRAPE_SECONDS = 2
# The automatic canary analysis (serving/analysis.py), as Flagger's: every interval, the candidate's
# error rate and p99 latency over the interval against their bounds; `CANARY_FAILED_CHECKS` failed
# intervals roll it back, each healthy one adds `CANARY_STEP_PERCENT` up to `CANARY_MAX_PERCENT`, then it is
# promoted. Intervals without candidate traffic neither pass nor fail.
CANARY_INTERVAL_SECONDS = 10.0
CANARY_MAX_ERROR_RATE = 0.01
CANARY_MAX_P99_SECONDS = 0.05
CANARY_FAILED_CHECKS = 2
CANARY_STEP_PERCENT = 10.0
CANARY_MAX_PERCENT = 50.0

# Monitoring (docs/monitoring.md). Live quality is measured over the newest labelled trips per version and
# route; the monitor recomputes every few seconds. Feedback for a trip the request log does not show yet
# waits this long (the log is flushed every second) before it is counted as unknown.
LIVE_QUALITY_WINDOW = 1000
MONITOR_REFRESH_SECONDS = 5.0
FEEDBACK_GRACE_SECONDS = 30.0
FEEDBACK_PATH = "/v1/feedback"
MONITOR_PATH = "/v1/monitor"
# The pipeline's skew check reads the request log since the production model was pushed, or over the
# last SERVING_LOG_WINDOW_HOURS when set (`--serving-logs-hours`); request-log files older than the
# retention are moved to `request_log/archive/`, kept, and never read by the pipeline again.
SERVING_LOG_WINDOW_HOURS: float | None = None
REQUEST_LOG_RETENTION_DAYS = 30.0
REQUEST_LOG_ARCHIVE = "archive"
# The retraining policy (monitoring/loop.py): retrain when this many labelled trips are new since the
# last export, or when one of these alerts fires (monitoring/prometheus/monitoring_rules.yml).
RETRAIN_MIN_NEW_LABELLED_TRIPS = 1000
RETRAIN_ON_ALERTS = ("TaxiLiveQualityBelowEvaluated", "TaxiOutputShift", "TaxiInputOutOfDomain")
# A new model pushed by the loop starts as a canary with this share; the canary analysis takes it on.
LOOP_CANARY_PERCENT = 10.0


# Kubeflow Pipelines (kubeflow/README.md). The image holds the project; a volume shared by every step
# (a PersistentVolumeClaim, on kind a folder of the host) holds ExampleGen's input and the serving models,
# which must outlive a run; artifacts go to KFP's object store (the pipeline root, set per run).
KFP_PIPELINE_NAME = PIPELINE_NAME.replace("_", "-")  # KFP v2 names allow only [a-z0-9-]
KFP_IMAGE_NAME = "taxi-pipeline"
KFP_PROJECT_DIR = "/opt/taxi-pipeline"  # where the image keeps schema/ (the packages are installed)
KFP_SHARED_VOLUME_CLAIM = "taxi-pipeline-data"
KFP_SHARED_DIR = "/mnt/taxi"
KFP_DEFAULT_PIPELINE_ROOT = "minio://mlpipeline/v2/artifacts"
KFP_BUILD_DIR = REPO_ROOT / "kubeflow" / "build"
KFP_PIPELINE_FILE = f"{KFP_PIPELINE_NAME}.yaml"


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
        """Flags win over environment variables, which win over the defaults."""
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
    def checked_serving_logs_dir(self) -> Path:
        """The same for the serving logs: what ServingLogsExampleGen reads."""
        return self.output_dir / "data" / "checked" / "serving_logs"

    @property
    def schema_snapshots_dir(self) -> Path:
        """Content-addressed copies of the curated schema, one per version the pipeline has imported."""
        return self.output_dir / "curated_schema"

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
