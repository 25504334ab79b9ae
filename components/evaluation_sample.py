"""EvaluationSample: at most `max_examples` of one Examples split, chosen by a seeded hash, for the Evaluator.

TFMA spends about 5 ms of Python per evaluation example on this pipeline's 8 slicing specs, so an
Evaluator fed the whole evaluation window grows with the data: 27 s on the sample's 3,064 examples,
974 s on the 205,098 of a 1M-row window (docs/performance.md). Past a few tens of thousands of
examples more of them barely narrows a metric: the AUC of the key slice, about 40 % of the trips, has a
standard error under 0.01 from 10,000 examples on. So the Evaluator sees a uniform sample of the split.

The sample is the `max_examples` records with the smallest keyed BLAKE2 hash of their content: the same
examples and seed give the same sample however ExampleGen serialized them and however Beam bundles or
orders them, and a window with no more than `max_examples` examples passes whole (the sample's evaluation
is unchanged).
The output artifact records how many examples the split held and how many were kept, and keeps the
input's span and formats, so everything downstream reads it like ExampleGen's output.
"""

import hashlib
import json
import os

import apache_beam as beam
from tensorflow.core.example import example_pb2
from tfx import types
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, component_spec, standard_artifacts

from components import code_version
from reports.evaluation_results import EXAMPLES_IN_SPLIT, EXAMPLES_KEPT

TF_EXAMPLE_PAYLOAD = "FORMAT_TF_EXAMPLE"
# ExampleGen's custom properties that readers of Examples (TFXIO, the Evaluator, our summaries) use.
_KEPT_INT_PROPERTIES = ("span",)
_KEPT_STRING_PROPERTIES = ("file_format", "payload_format", "input_fingerprint")
_COUNTS_FILE = "split_count.json"
# A gzipped file is read by one Beam worker, so a one-file sample would keep a multi-worker Evaluator
# on one core; four files spread it over up to four.
_OUTPUT_FILES = 4


def sample_rank(record: bytes, seed: int) -> int:
    """A serialized tf.Example's place in the seeded sample order: the keyed 64-bit hash of its content.

    The content, not the bytes: protobuf writes a map's entries in an order that varies between processes,
    so ExampleGen run twice on the same CSVs writes the same examples as different bytes (measured: none
    of 205,098 equal). Deterministic serialization sorts them (~40 us per example).
    """
    content = example_pb2.Example.FromString(record).SerializeToString(deterministic=True)
    return int.from_bytes(
        hashlib.blake2b(content, digest_size=8, key=seed.to_bytes(8, "big")).digest(), "big"
    )


class EvaluationSampleExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        sample = artifact_utils.get_single_instance(output_dict["sample"])
        split = exec_properties["split"]
        max_examples = exec_properties["max_examples"]
        seed = exec_properties["seed"]
        if split not in artifact_utils.decode_split_names(examples.split_names):
            raise ValueError(
                f"EvaluationSample: the examples at {examples.uri} have no split {split!r} "
                f"(they have {artifact_utils.decode_split_names(examples.split_names)})"
            )
        payload_format = examples.get_string_custom_property("payload_format")
        if payload_format != TF_EXAMPLE_PAYLOAD:
            raise ValueError(
                f"EvaluationSample: the examples at {examples.uri} hold {payload_format or 'an unnamed payload'}, "
                f"expected {TF_EXAMPLE_PAYLOAD} (tf.Example records, as CsvExampleGen writes)"
            )
        sample.split_names = artifact_utils.encode_split_names([split])
        for name in _KEPT_INT_PROPERTIES:
            if examples.has_custom_property(name):
                sample.set_int_custom_property(name, examples.get_int_custom_property(name))
        for name in _KEPT_STRING_PROPERTIES:
            if examples.has_custom_property(name):
                sample.set_string_custom_property(name, examples.get_string_custom_property(name))
        output_split_dir = artifact_utils.get_split_uri([sample], split)
        count_path = os.path.join(sample.uri, _COUNTS_FILE)  # how the count leaves the Beam pipeline
        fileio.makedirs(sample.uri)

        with self._make_beam_pipeline() as pipeline:
            records = pipeline | "Read" >> beam.io.ReadFromTFRecord(
                os.path.join(artifact_utils.get_split_uri([examples], split), "*"),
                coder=beam.coders.BytesCoder(),
            )
            # The rank is computed once per record here: as a `key` of Top, Beam would recompute it for
            # every kept record again each time it merges two bundles' tops (~40 us each).
            _ = (
                records
                | "Rank" >> beam.Map(lambda record: (sample_rank(record, seed), record))
                | "SmallestRanks" >> beam.combiners.Top.Smallest(max_examples)
                | "Records" >> beam.FlatMap(lambda ranked: [record for _, record in ranked])
                | "Write"
                >> beam.io.WriteToTFRecord(
                    os.path.join(output_split_dir, "data_tfrecord"),
                    coder=beam.coders.BytesCoder(),
                    file_name_suffix=".gz",
                    num_shards=_OUTPUT_FILES,
                )
            )
            _ = (
                records
                | "CountAll" >> beam.combiners.Count.Globally()
                | "WriteCount" >> beam.Map(_write_count, count_path)
            )

        with fileio.open(count_path) as handle:
            in_split = json.load(handle)[EXAMPLES_IN_SPLIT]
        sample.set_int_custom_property(EXAMPLES_IN_SPLIT, in_split)
        sample.set_int_custom_property(EXAMPLES_KEPT, min(in_split, max_examples))


def _write_count(in_split: int, path: str) -> None:
    with fileio.open(path, "w") as handle:
        json.dump({EXAMPLES_IN_SPLIT: in_split}, handle)


class EvaluationSampleSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        "split": component_spec.ExecutionParameter(type=str),
        "max_examples": component_spec.ExecutionParameter(type=int),
        "seed": component_spec.ExecutionParameter(type=int),
        **code_version.PARAMETER,
    }
    INPUTS = {"examples": component_spec.ChannelParameter(type=standard_artifacts.Examples)}
    OUTPUTS = {"sample": component_spec.ChannelParameter(type=standard_artifacts.Examples)}


class EvaluationSample(base_beam_component.BaseBeamComponent):
    """Outputs `sample`: split `split` of `examples`, cut to at most `max_examples` by a `seed`ed hash."""

    SPEC_CLASS = EvaluationSampleSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(EvaluationSampleExecutor)

    def __init__(self, examples: types.BaseChannel, split: str, max_examples: int, seed: int):
        if max_examples < 1:
            raise ValueError(f"EvaluationSample: max_examples must be at least 1, got {max_examples}")
        super().__init__(
            spec=EvaluationSampleSpec(
                examples=examples,
                split=split,
                max_examples=max_examples,
                seed=seed,
                code_fingerprint=code_version.of_executor(EvaluationSampleExecutor),
                sample=types.Channel(type=standard_artifacts.Examples),
            )
        )
