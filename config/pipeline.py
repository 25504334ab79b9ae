"""The pipeline's settings: spans and splits, data validation, training, the Evaluator's slices and gates,
and Beam. The runners pass them to `create_pipeline` (pipeline/pipeline.py), which reads no globals, as the
dataclasses at the end: one per stage, whose defaults are the values here."""

import dataclasses
from collections.abc import Mapping, Sequence

from config.folders import REPO_ROOT

PIPELINE_NAME = "chicago_taxi_big_tipper"

# Components load the model code by module path, so it is importable and testable (and baked into images).
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.model.run_fn"
TUNER_FN = "models.model.tuner_fn"

# Spans: one per calendar half-year, numbered YYYYH (20151 = January-June 2015). Quarters of 2016
# hold only ~200 trips each in the sample, too few to evaluate on; half-years hold >= 400.
SPAN_FOLDER_PREFIX = "span-"
# ExampleGen's window folders hold links named <SPAN_FOLDER_PREFIX><span>-<file name> (inputs/layout.py),
# by which the units check reads each span of a window apart.
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
# ExampleGen (components/csv_example_gen.py). Beside the CSV files of each folder it reads, the input
# checks' row count of every file (inputs/layout.py writes it); ExampleGen fails on any other count.
CHECKED_ROWS_FILE = "checked_rows.json"
# Each split's rows are written in the random order of this seed, so the Trainer's shuffle buffer draws
# from the whole window, and a rerun on the same data trains the same model.
EXAMPLES_SHUFFLE_SEED = 20_130_102
# About this many examples per gzipped file: a file is read by one Beam worker, so a split of several
# files spreads over the workers of Transform and the Evaluator.
EXAMPLES_PER_FILE = 200_000

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
# trip, for every span that arrived since the last validated run: against the reference (the spans validated
# before it, a training window's worth), against the span before it, and the serving logs against the
# training window. Three statistics, each a median over the amount's relations, each with a bound the real
# spans stay under on the whole sample and on every 2nd to 9th row of it (schema/README.md, "Changes of
# units", has the figures):
# - the median relation moved by more than MAX_UNIT_CHANGE either way, widened by UNIT_CHANGE_FACTOR_Z
#   standard errors of two medians (a whole column: the real half-years moved by at most x1.18; on a third
#   of their rows the 2013 miles reach x1.31, on a ninth x1.55: a median jumps between two modes);
# - the Kolmogorov-Smirnov distance above max(UNIT_CHANGE_KS_FLOOR, UNIT_CHANGE_KS_Z * sqrt(1/n + 1/m))
#   (a share of rows in other units). On the sample's 400-row spans noise alone reaches 0.15, and the
#   2013 miles moved by 0.13 on 2,400 rows, a real change a larger span must pass too: hence the floor.
#   Against the span before it alone, the floor is UNIT_CHANGE_PREVIOUS_SPAN_KS_FLOOR, 1.25x the largest
#   real distance measured where noise is gone: 2016 H1's fares against 2015 H2's, 0.152 on 12,000 rows
#   generated from the sample (at 0.15 that real change stopped a 1M-row run). Pooled references average
#   such half-year moves out (0.125 at most there), so they keep the tighter floor;
# - the share of rows outside the reference's central 99 % above max(UNIT_CHANGE_OUTSIDE_FLOOR, 1 % +
#   UNIT_CHANGE_OUTSIDE_Z standard errors) (a few rows in cents or minutes); the real spans reach 2.5 %.
#   Judged on references of UNIT_CHANGE_OUTSIDE_MIN_REFERENCE_ROWS or more: on 80 rows the 0.5 % tails
#   are not known, and real spans reached 9.6 % outside them.
UNIT_CHANGE_AMOUNTS = ("fare", "trip_miles", "trip_seconds", "tips")
MAX_UNIT_CHANGE = 1.25
UNIT_CHANGE_FACTOR_Z = 3.0
UNIT_CHANGE_KS_FLOOR = 0.15
UNIT_CHANGE_PREVIOUS_SPAN_KS_FLOOR = 0.19
UNIT_CHANGE_KS_Z = 4.0
UNIT_CHANGE_OUTSIDE_FLOOR = 0.03
UNIT_CHANGE_OUTSIDE_Z = 5.0
UNIT_CHANGE_OUTSIDE_MIN_REFERENCE_ROWS = 500
# Rows read per span at most, chosen by a keyed hash of their values: 50,000 give the KS bound its floor.
UNIT_CHANGE_SAMPLE_ROWS = 50_000
UNIT_CHANGE_SAMPLE_SEED = 20_130_101

# Trainer: 150 steps of 512 examples, about 6 passes over the sample's 12,000-row window, at a rate of
# 0.004: held-out AUC 0.942-0.944 across three seeds, against 0.941-0.943 for the 1,200 steps of 64 at
# 0.001 used before (docs/performance.md, "The training budget"), in an eighth of the steps. The evaluation steps make about
# one pass over the 3,000-row evaluation window (only logged; the Evaluator judges the model). The steps
# do not grow with the data: on 100k generated rows 600 and 1,500 steps scored lower than 150 (docs/performance.md, "The training budget").
TRAIN_STEPS = 150
TRAIN_BATCH_SIZE = 512
LEARNING_RATE = 0.004
EVAL_STEPS = 6

# Tuning (TFX's Tuner with KerasTuner, models/model.py's `tuner_fn`): off unless `make tune` or
# `taxi-pipeline run --tune`, since it multiplies the Trainer's cost by the trials. A random search of
# TUNING_TRIALS points of the space below, each trained as the Trainer trains and scored by AUC on the
# evaluation split (the metric the Evaluator gates on); the Trainer then trains the best point. Each value
# list holds today's setting, so the search can find that nothing beats it. Seeded: a rerun on the same
# data searches the same points (docs/tuning.md has the cost and what it found).
TUNE = False
TUNING_TRIALS = 12
TUNING_SEED = 20_130_103
TUNING_OBJECTIVE = "val_auc"
TUNING_LEARNING_RATES = (0.002, 0.004, 0.008)
TUNING_TRAIN_STEPS = (100, 150, 300)
TUNING_EMBEDDING_DIMENSIONS = (4, 8, 16)
TUNING_FIRST_LAYER_UNITS = (64, 128, 256)
TUNING_SECOND_LAYER_UNITS = (32, 64, 128)

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
# And judged on at least this many examples, or not blessed at all ("too thin to bless"): on 1,000
# examples with the sample's 22.5 % big tippers, an AUC of 0.94 has a standard error of 0.011 (Hanley and
# McNeil), about MAX_AUC_DROP, so on fewer the comparison with production is noise. The sample's window holds 3,064.
MIN_EVALUATION_EXAMPLES = 1_000

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

# The serving check before a push (components/serving_check.py): the candidate is loaded by our model
# server in its own process and asked SERVING_CHECK_ROWS held-out trips, once as raw-feature rows and once
# as serialized tf.Examples, one request per trip for the latency.
SERVING_CHECK_ROWS = 200
# Its answers may differ from the model's own in-process ones by float rounding only.
SERVING_CHECK_MAX_PREDICTION_DIFFERENCE = 1e-5
# Twice the canary analysis's p99 bound (config/serving.py, CANARY_MAX_P99_SECONDS): a model slower than
# this on one quiet process is rolled back as a canary under load anyway; the margin keeps a busy build
# machine from failing a good model (p99 9 ms on the sample's model, 50 ms under a load average of 10).
SERVING_CHECK_MAX_P99_SECONDS = 0.1
# The model server's memory limit in the KServe manifests (kubeflow/serving_manifests.py, 2 GiB), less a
# quarter for traffic's buffers: a model whose server peaks above it at rest would be killed under load.
SERVING_CHECK_MAX_PEAK_MEMORY_MB = 1536
# A model that takes longer than this to load has failed: TF Serving's own InfraValidator default is 300 s
# for a serving binary and image to start; ours needs only the model (about 5 s for the sample's).
SERVING_CHECK_LOAD_TIMEOUT_SECONDS = 120

# TFX's BulkInferrer scores the newest span (the `current_span` split) with a blessed candidate, as a
# daily list of likely big tippers would: PredictionLogs in its `inference_result`. Off, the node is left
# out (it costs a Beam pass over the span; `taxi-pipeline score` scores any span with production instead).
BULK_INFERENCE_ON_NEWEST_SPAN = True

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
# settings"): Transform from the rows of the training and evaluation windows below (at 100k rows it loses
# 7 s, at 1M it saves 74 s; the straight line through both crosses at 190k), and the Evaluator from the examples it judges below (on the sample's 3,064 it loses 14 s, on
# 20,302 it saves 51 s). StatisticsGen would save 7 s at 1M and lose below ~600k: it stays in memory. The
# workers' state cache is off like the in-memory one's (pipeline/beam_settings.py), by the option they honour,
# and each worker applies the rest of those settings as it starts (a Beam plugin, pipeline/beam_worker_settings.py).
# ExampleGen runs no Beam pipeline (components/csv_example_gen.py).
PARALLEL_BEAM_ARGS = (
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=2",
    "--max_cache_memory_usage_mb=0",
    "--beam_plugins=pipeline.beam_worker_settings",
)
PARALLEL_FROM_WINDOW_ROWS = {"Transform": 250_000}
PARALLEL_EVALUATION_MIN_EXAMPLES = 10_000


# The settings as create_pipeline takes them, one dataclass per stage, with the values above as defaults.
# A run that needs others replaces fields (dataclasses.replace): tests train fewer steps and loosen gates.


@dataclasses.dataclass(frozen=True)
class Data:
    """ExampleGen's splits and span, and how data validation judges them: against the schema, span to
    span (drift) and serving requests to training data (skew)."""

    train_split: str = TRAIN_SPLIT
    eval_split: str = EVAL_SPLIT
    current_span_split: str = CURRENT_SPAN_SPLIT
    previous_span_split: str = PREVIOUS_SPAN_SPLIT
    statistics_histogram_buckets: int = STATISTICS_HISTOGRAM_BUCKETS
    min_examples_to_gate_on_distance: int = MIN_EXAMPLES_TO_GATE_ON_DISTANCE
    unit_change_amounts: Sequence[str] = UNIT_CHANGE_AMOUNTS
    max_unit_change: float = MAX_UNIT_CHANGE
    unit_change_factor_z: float = UNIT_CHANGE_FACTOR_Z
    unit_change_ks_floor: float = UNIT_CHANGE_KS_FLOOR
    unit_change_previous_span_ks_floor: float = UNIT_CHANGE_PREVIOUS_SPAN_KS_FLOOR
    unit_change_ks_z: float = UNIT_CHANGE_KS_Z
    unit_change_outside_floor: float = UNIT_CHANGE_OUTSIDE_FLOOR
    unit_change_outside_z: float = UNIT_CHANGE_OUTSIDE_Z
    unit_change_outside_min_reference_rows: int = UNIT_CHANGE_OUTSIDE_MIN_REFERENCE_ROWS
    unit_change_sample_rows: int = UNIT_CHANGE_SAMPLE_ROWS
    unit_change_sample_seed: int = UNIT_CHANGE_SAMPLE_SEED
    # Spans pooled into the reference a new span is compared with: a training window's worth.
    reference_spans: int = TRAINING_WINDOW_SPANS
    span: int | None = None  # ingest this span instead of the newest (a replay of history)
    # Known only when a run starts: the accepted changes of units (components/data_reference.py), part of
    # the validator's cache key so an acceptance reaches a run on unchanged data; "" when none.
    accepted_changes_key: str = ""


@dataclasses.dataclass(frozen=True)
class Training:
    """The model code Transform and the Trainer run (module paths), and the Trainer's steps and rate."""

    preprocessing_fn: str = PREPROCESSING_FN
    run_fn: str = RUN_FN
    train_steps: int = TRAIN_STEPS
    train_batch_size: int = TRAIN_BATCH_SIZE
    learning_rate: float = LEARNING_RATE
    eval_steps: int = EVAL_STEPS
    # Tuning: a Tuner before the Trainer, which then trains the best hyperparameters it found.
    tune: bool = TUNE
    tuner_fn: str = TUNER_FN
    tuning_trials: int = TUNING_TRIALS


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The Evaluator's sample, slices and gates, and what else decides the push."""

    max_evaluation_examples: int = MAX_EVALUATION_EXAMPLES
    evaluation_sample_seed: int = EVALUATION_SAMPLE_SEED
    slice_features: Sequence[Sequence[str]] = SLICE_FEATURES
    key_slice: Sequence[tuple[str, str]] = KEY_SLICE
    min_auc: float = MIN_AUC
    min_accuracy: float = MIN_ACCURACY
    max_auc_drop: float = MAX_AUC_DROP
    min_evaluation_examples: int = MIN_EVALUATION_EXAMPLES
    key_slice_min_auc: float = KEY_SLICE_MIN_AUC
    key_slice_min_accuracy: float = KEY_SLICE_MIN_ACCURACY
    key_slice_max_auc_drop: float = KEY_SLICE_MAX_AUC_DROP
    min_slice_examples: int = MIN_SLICE_EXAMPLES
    decision_thresholds: Sequence[float] = DECISION_THRESHOLDS
    # Known only when a run starts. ProductionModel's cache key: production's fingerprint (see
    # components/production_model.py); "" when it cannot be known (compiling for Kubeflow).
    production_cache_key: str = ""
    push_hold_reason: str = ""  # when set, nothing is pushed and the summary says why (a replayed old span)
    bulk_inference_on_newest_span: bool = BULK_INFERENCE_ON_NEWEST_SPAN
    serving_check_rows: int = SERVING_CHECK_ROWS
    serving_check_max_prediction_difference: float = SERVING_CHECK_MAX_PREDICTION_DIFFERENCE
    serving_check_max_p99_seconds: float = SERVING_CHECK_MAX_P99_SECONDS
    serving_check_max_peak_memory_mb: int = SERVING_CHECK_MAX_PEAK_MEMORY_MB
    serving_check_load_timeout_seconds: float = SERVING_CHECK_LOAD_TIMEOUT_SECONDS


@dataclasses.dataclass(frozen=True)
class Orchestration:
    """The pipeline's name, Beam's arguments and TFX's cache. `component_beam_pipeline_args`: node id ->
    Beam args added after `beam_pipeline_args` for that node alone (so they win)."""

    pipeline_name: str = PIPELINE_NAME
    beam_pipeline_args: Sequence[str] = BEAM_PIPELINE_ARGS
    component_beam_pipeline_args: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)
    enable_cache: bool = True
