"""The pipeline wired to local folders, Beam's DirectRunner and SQLite ML Metadata.

Shared by the project CLI (`make run`) and `beam_runner.py` (the tfx CLI), so both run the same thing.
"""

from tfx import v1 as tfx

from models import features
from pipeline import configs, inputs, taxi_sample
from pipeline.pipeline import create_pipeline


def prepare_inputs(settings: configs.Settings) -> list[int]:
    """Checks the schema and the data, writes ExampleGen's span folders; returns their span numbers.

    Raises inputs.InputError, before anything is run or written to the pipeline root, on bad input.
    """
    inputs.check_schema_file(configs.SCHEMA_PATH)
    if settings.data_root is None:
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), settings.prepared_sample_dir)
    spans = inputs.discover_spans(settings.spans_dir)
    inputs.check_csv_headers(spans, features.REQUIRED_COLUMNS)
    return inputs.write_example_gen_input(
        spans, settings.example_gen_input, configs.TRAINING_WINDOW_SPANS, configs.EVALUATION_SPANS
    )


def build(settings: configs.Settings, span: int | None = None) -> tfx.dsl.Pipeline:
    """The pipeline for these folders; `span` replays one span instead of the newest."""
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    return create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=str(settings.pipeline_root),
        example_gen_input=str(settings.example_gen_input),
        schema_path=str(inputs.snapshot_schema(configs.SCHEMA_PATH, settings.output_dir / "curated_schema")),
        serving_model_dir=str(settings.serving_model_dir),
        preprocessing_fn=configs.PREPROCESSING_FN,
        run_fn=configs.RUN_FN,
        train_split=configs.TRAIN_SPLIT,
        eval_split=configs.EVAL_SPLIT,
        train_steps=configs.TRAIN_STEPS,
        eval_steps=configs.EVAL_STEPS,
        min_auc=configs.MIN_AUC,
        min_accuracy=configs.MIN_ACCURACY,
        max_auc_drop=configs.MAX_AUC_DROP,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(settings.metadata_path)
        ),
        beam_pipeline_args=configs.BEAM_PIPELINE_ARGS,
        span=span,
    )
