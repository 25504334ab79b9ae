"""The pipeline wired to local folders, Beam's DirectRunner and SQLite ML Metadata.

Shared by the project CLI (`make run`) and `beam_runner.py` (the tfx CLI), so both run the same thing.
"""

from tfx.orchestration import metadata
from tfx.orchestration.pipeline import Pipeline

from config import folders
from config import pipeline as pipeline_config
from inputs import layout
from pipeline.pipeline import create_pipeline
from registry import versions


def model_and_gate_arguments() -> dict:
    """The create_pipeline arguments every orchestrator shares: model code, training and the gates."""
    return dict(
        pipeline_name=pipeline_config.PIPELINE_NAME,
        preprocessing_fn=pipeline_config.PREPROCESSING_FN,
        run_fn=pipeline_config.RUN_FN,
        train_split=pipeline_config.TRAIN_SPLIT,
        eval_split=pipeline_config.EVAL_SPLIT,
        current_span_split=pipeline_config.CURRENT_SPAN_SPLIT,
        previous_span_split=pipeline_config.PREVIOUS_SPAN_SPLIT,
        statistics_histogram_buckets=pipeline_config.STATISTICS_HISTOGRAM_BUCKETS,
        min_examples_to_gate_on_distance=pipeline_config.MIN_EXAMPLES_TO_GATE_ON_DISTANCE,
        unit_change_amounts=pipeline_config.UNIT_CHANGE_AMOUNTS,
        max_unit_change=pipeline_config.MAX_UNIT_CHANGE,
        train_steps=pipeline_config.TRAIN_STEPS,
        train_batch_size=pipeline_config.TRAIN_BATCH_SIZE,
        learning_rate=pipeline_config.LEARNING_RATE,
        eval_steps=pipeline_config.EVAL_STEPS,
        max_evaluation_examples=pipeline_config.MAX_EVALUATION_EXAMPLES,
        evaluation_sample_seed=pipeline_config.EVALUATION_SAMPLE_SEED,
        min_auc=pipeline_config.MIN_AUC,
        min_accuracy=pipeline_config.MIN_ACCURACY,
        max_auc_drop=pipeline_config.MAX_AUC_DROP,
        slice_features=pipeline_config.SLICE_FEATURES,
        key_slice=pipeline_config.KEY_SLICE,
        key_slice_min_auc=pipeline_config.KEY_SLICE_MIN_AUC,
        key_slice_min_accuracy=pipeline_config.KEY_SLICE_MIN_ACCURACY,
        key_slice_max_auc_drop=pipeline_config.KEY_SLICE_MAX_AUC_DROP,
        min_slice_examples=pipeline_config.MIN_SLICE_EXAMPLES,
        decision_thresholds=pipeline_config.DECISION_THRESHOLDS,
        beam_pipeline_args=pipeline_config.BEAM_PIPELINE_ARGS,
    )


def parallel_components(training_rows: int, evaluation_rows: int) -> dict[str, tuple[str, ...]]:
    """Node id -> the Beam args that put it on worker processes, for the nodes this much data pays for."""
    parallel = {
        node_id: pipeline_config.PARALLEL_BEAM_ARGS
        for node_id, from_rows in pipeline_config.PARALLEL_FROM_WINDOW_ROWS.items()
        if training_rows + evaluation_rows >= from_rows
    }
    if (
        min(evaluation_rows, pipeline_config.MAX_EVALUATION_EXAMPLES)
        >= pipeline_config.PARALLEL_EVALUATION_MIN_EXAMPLES
    ):
        parallel["Evaluator"] = pipeline_config.PARALLEL_BEAM_ARGS
    return parallel


def build(
    settings: folders.Settings, span: int | None = None, push_replay: bool = False, **overrides
) -> Pipeline:
    """The pipeline for these folders; `span` replays one span instead of the newest.

    A replayed older span is evaluated against the model in production, and its model is not pushed
    unless `push_replay`: a replay must not move production back to a model of older data.
    `overrides` replace create_pipeline arguments (tests use fewer train steps and looser gates). Call
    after `layout.prepare`: which components run on worker processes depends on the size of the windows.
    """
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    newest = layout.newest_span(settings.example_gen_input)
    replay = span is not None and newest is not None and span < newest
    arguments = dict(
        model_and_gate_arguments(),
        pipeline_root=str(settings.pipeline_root),
        example_gen_input=str(settings.example_gen_input),
        schema_path=str(layout.snapshot_schema(settings.schema_path, settings.schema_snapshots_dir)),
        serving_model_dir=str(settings.serving_model_dir),
        serving_logs=str(settings.checked_serving_logs_dir) if layout.has_serving_logs(settings) else None,
        production_cache_key=versions.production_fingerprint(settings.serving_model_dir),
        push_hold_reason=f"a replay of span {span} (the newest is {newest}) never moves production: "
        "`--push-replay` pushes its model"
        if replay and not push_replay
        else "",
        metadata_connection_config=metadata.sqlite_metadata_connection_config(str(settings.metadata_path)),
        component_beam_pipeline_args=parallel_components(
            training_rows=layout.split_rows(settings.example_gen_input, pipeline_config.TRAIN_SPLIT, span),
            evaluation_rows=layout.split_rows(settings.example_gen_input, pipeline_config.EVAL_SPLIT, span),
        ),
        span=span,
    )
    arguments.update(overrides)
    # Whatever the Beam args (benchmarks replace them), the workers here are this Python environment.
    arguments["beam_pipeline_args"] = (
        *arguments["beam_pipeline_args"],
        *pipeline_config.LOCAL_BEAM_DEPENDENCY_ARGS,
    )
    return create_pipeline(**arguments)
