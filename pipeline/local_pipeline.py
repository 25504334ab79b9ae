"""The pipeline wired to local folders, Beam's DirectRunner and SQLite ML Metadata.

Shared by the project CLI (`make run`) and `beam_runner.py` (the tfx CLI), so both run the same thing.
"""

import dataclasses

from tfx.orchestration import metadata
from tfx.orchestration.pipeline import Pipeline

from components import data_reference
from config import folders
from config import pipeline as pipeline_config
from inputs import layout
from pipeline.pipeline import Locations, create_pipeline
from registry import versions


def parallel_components(
    training_rows: int, evaluation_rows: int, max_evaluation_examples: int
) -> dict[str, tuple[str, ...]]:
    """Node id -> the Beam args that put it on worker processes, for the nodes this much data pays for
    (the Evaluator judges at most `max_evaluation_examples`)."""
    parallel = {
        node_id: pipeline_config.PARALLEL_BEAM_ARGS
        for node_id, from_rows in pipeline_config.PARALLEL_FROM_WINDOW_ROWS.items()
        if training_rows + evaluation_rows >= from_rows
    }
    if min(evaluation_rows, max_evaluation_examples) >= pipeline_config.PARALLEL_EVALUATION_MIN_EXAMPLES:
        parallel["Evaluator"] = pipeline_config.PARALLEL_BEAM_ARGS
    return parallel


def build(
    settings: folders.Settings,
    span: int | None = None,
    push_replay: bool = False,
    *,
    data: pipeline_config.Data | None = None,
    training: pipeline_config.Training | None = None,
    evaluation: pipeline_config.Evaluation | None = None,
    orchestration: pipeline_config.Orchestration | None = None,
) -> Pipeline:
    """The pipeline for these folders; `span` replays one span instead of the newest.

    A replayed older span is evaluated against the model in production, and its model is not pushed
    unless `push_replay`: a replay must not move production back to a model of older data.
    `data`, `training`, `evaluation`, `orchestration`: settings other than config's (tests train fewer
    steps and loosen the gates); what this run knows (its span, production's fingerprint, a held push)
    replaces their fields. Unless `orchestration` says otherwise, the size of the windows chooses which
    components run on worker processes, so call after `layout.prepare`.
    """
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    data = dataclasses.replace(
        data or pipeline_config.Data(),
        span=span,
        accepted_changes_key=data_reference.accepted_changes_key(settings.data_reference_dir),
    )
    newest = layout.newest_span(settings.example_gen_input)
    replay = span is not None and newest is not None and span < newest
    evaluation = dataclasses.replace(
        evaluation or pipeline_config.Evaluation(),
        production_cache_key=versions.production_fingerprint(settings.serving_model_dir),
        push_hold_reason=f"a replay of span {span} (the newest is {newest}) never moves production: "
        "`--push-replay` pushes its model"
        if replay and not push_replay
        else "",
    )
    if orchestration is None:
        orchestration = pipeline_config.Orchestration(
            component_beam_pipeline_args=parallel_components(
                training_rows=layout.split_rows(settings.example_gen_input, data.train_split, span),
                evaluation_rows=layout.split_rows(settings.example_gen_input, data.eval_split, span),
                max_evaluation_examples=evaluation.max_evaluation_examples,
            )
        )
    # Whatever the Beam args (benchmarks replace them), the workers here are this Python environment.
    orchestration = dataclasses.replace(
        orchestration,
        beam_pipeline_args=(*orchestration.beam_pipeline_args, *pipeline_config.LOCAL_BEAM_DEPENDENCY_ARGS),
    )
    return create_pipeline(
        locations=Locations(
            pipeline_root=str(settings.pipeline_root),
            example_gen_input=str(settings.example_gen_input),
            schema_path=str(layout.snapshot_schema(settings.schema_path, settings.schema_snapshots_dir)),
            serving_model_dir=str(settings.serving_model_dir),
            serving_logs=str(settings.checked_serving_logs_dir)
            if layout.has_serving_logs(settings)
            else None,
            data_reference_dir=str(settings.data_reference_dir),
            metadata_connection_config=metadata.sqlite_metadata_connection_config(
                str(settings.metadata_path)
            ),
        ),
        data=data,
        training=training or pipeline_config.Training(),
        evaluation=evaluation,
        orchestration=orchestration,
    )
