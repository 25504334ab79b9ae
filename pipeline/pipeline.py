"""The TFX pipeline, built by one function from explicit arguments (no globals, no environment)."""

from collections.abc import Sequence

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from models import features
from pipeline.configs import SPAN_FOLDER_PREFIX


def _example_gen_input_config(train_split: str, eval_split: str) -> tfx.proto.Input:
    """Both splits come from the same span folder, so ExampleGen resolves one {SPAN} for both."""
    return tfx.proto.Input(
        splits=[
            tfx.proto.Input.Split(
                name=train_split, pattern=f"{SPAN_FOLDER_PREFIX}{{SPAN}}/{train_split}/*.csv"
            ),
            tfx.proto.Input.Split(
                name=eval_split, pattern=f"{SPAN_FOLDER_PREFIX}{{SPAN}}/{eval_split}/*.csv"
            ),
        ]
    )


def _eval_config(min_auc: float, min_accuracy: float, max_auc_drop: float) -> tfma.EvalConfig:
    """Overall metrics with value floors, and an AUC change bound against the baseline model."""
    auc_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_auc}),
        # Ignored by TFMA while there is no baseline (the first blessed model).
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER, absolute={"value": -max_auc_drop}
        ),
    )
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy})
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key=features.LABEL,
                preprocessing_function_names=["transform_features"],
            )
        ],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="AUC", threshold=auc_threshold),
                    tfma.MetricConfig(class_name="BinaryAccuracy", threshold=accuracy_threshold),
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                ]
            )
        ],
    )


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    example_gen_input: str,
    schema_path: str,
    serving_model_dir: str,
    preprocessing_fn: str,
    run_fn: str,
    model_code_fingerprint: str,
    train_split: str,
    eval_split: str,
    train_steps: int,
    eval_steps: int,
    min_auc: float,
    min_accuracy: float,
    max_auc_drop: float,
    metadata_connection_config: metadata_store_pb2.ConnectionConfig | None = None,
    beam_pipeline_args: Sequence[str] = (),
    span: int | None = None,
    enable_cache: bool = True,
) -> tfx.dsl.Pipeline:
    """ExampleGen -> statistics and schemas -> validation -> Transform -> Trainer -> Evaluator -> Pusher.

    `span`: ingest this span instead of the newest one (to replay history). The Pusher only pushes a
    model the Evaluator blessed, into a new numbered folder under `serving_model_dir`.
    `model_code_fingerprint`: changes whenever the code behind `preprocessing_fn`/`run_fn` does; TFX's
    cache key holds only their module paths, so without it edited model code would be served from cache.
    """
    code_version = {"model_code_fingerprint": model_code_fingerprint}
    range_config = (
        tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span)
        )
        if span is not None
        else None
    )
    example_gen = tfx.components.CsvExampleGen(
        input_base=example_gen_input,
        input_config=_example_gen_input_config(train_split, eval_split),
        range_config=range_config,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # Inferred from this span's statistics: kept to compare with (and help update) the curated schema.
    inferred_schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"])
    # The data contract: the pipeline validates and transforms against the curated, checked-in schema.
    curated_schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=curated_schema_gen.outputs["schema"]
    )
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=curated_schema_gen.outputs["schema"],
        preprocessing_fn=preprocessing_fn,
        # Vocabularies and scaling come from the training window only, so evaluation stays held out.
        splits_config=tfx.proto.SplitsConfig(analyze=[train_split], transform=[train_split, eval_split]),
        # StatisticsGen already computes the input statistics; Transform's own copies only cost time.
        disable_statistics=True,
        custom_config=code_version,
    )
    transform.add_upstream_node(example_validator)
    trainer = tfx.components.Trainer(
        run_fn=run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=curated_schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[train_split], num_steps=train_steps),
        eval_args=tfx.proto.EvalArgs(splits=[eval_split], num_steps=eval_steps),
        custom_config=code_version,
    )
    latest_blessed_model = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        example_splits=[eval_split],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed_model.outputs["model"],
        eval_config=_eval_config(min_auc, min_accuracy, max_auc_drop),
    )
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)
        ),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[
            example_gen,
            statistics_gen,
            inferred_schema_gen,
            curated_schema_gen,
            example_validator,
            transform,
            trainer,
            latest_blessed_model,
            evaluator,
            pusher,
        ],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
