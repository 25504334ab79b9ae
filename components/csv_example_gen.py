"""CsvExampleGen: TFX's file-based ExampleGen, with an executor that reads CSV with Arrow and encodes in C++.

TFX's CsvExampleGen builds every tf.Example in Python, cell by cell, inside a Beam pipeline: at 1M rows
that was the largest cost of a run (117 s unloaded; docs/performance.md). This executor reads each split's
files with Arrow's CSV reader, gives each column the type TFX's CsvExampleGen would (its rule, tfx_bsl's
`_InferValueType`, over the whole split), and encodes the rows with tfx_bsl's C++ `RecordBatchToExamples`:
the same examples (a test compares them with TFX's own executor's), without Beam.

- **The same artifact.** TFX's driver is unchanged (span resolution, version, input fingerprint, cache
  key), and the output is what TFX's executor writes: `Split-<name>/data_tfrecord-*.gz`, the split names,
  payload and file format. So StatisticsGen, Transform, the gates and the compiled Kubeflow spec read it
  as before (kubeflow/entrypoint.py runs the driver for this executor too).
- **A seeded order.** Each split's rows are written in a seeded random order. TFX's order came from
  Beam's scheduling: at 1M rows the Trainer's first batches came mostly from the oldest months, and the
  weights varied between runs of the same data.
- **No row lost silently.** The input checks count the rows of each file ExampleGen reads and
  inputs/layout.py writes the counts beside them (`CHECKED_ROWS_FILE`); a file whose rows differ, or a
  split that writes another number of examples, fails the run naming both counts. (TFX's executor was
  once seen writing 131,453 of an evaluation split's 205,098 rows without a word.)
"""

import csv
import json
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from absl import logging
from pyarrow import csv as arrow_csv
from tfx import types
from tfx.components.example_gen import component, write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import csv_decoder, example_coder

from components import code_version
from config import pipeline as pipeline_config

SHUFFLE_SEED_KEY = "shuffle_seed"
# Arrow parses these exactly as Python's int() and float() do (tested); any other non-empty cell (a sign
# `+`, spaces, `1_000`, `nan`, 19 digits or more) is typed and converted by Python, once per distinct value.
_PLAIN_INT = r"^-?[0-9]{1,18}$"
_PLAIN_FLOAT = r"^-?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^-?[0-9]+[eE][+-]?[0-9]+$"
_ENCODE_ROWS = 65_536  # rows encoded at a time: bounds the serialized examples held in memory
# TensorFlow's gzip at level 1: a third of the CPU of zlib's default, for files a quarter larger.
_GZIP_LEVEL = 1
_FILE_PREFIX = "data_tfrecord"


class ExampleCountError(RuntimeError):
    """ExampleGen read or wrote another number of rows than the input checks counted."""


def column_type(cells: pa.ChunkedArray) -> csv_decoder.ColumnType:
    """The type TFX's CsvExampleGen gives a column of CSV cells (UTF-8 strings, "" where empty): the
    highest of its non-empty cells' types by tfx_bsl's `_InferValueType` (INT < FLOAT < STRING)."""
    present = pc.filter(cells, pc.not_equal(cells, ""))
    if len(present) == 0:
        return csv_decoder.ColumnType.UNKNOWN
    is_int = pc.match_substring_regex(present, _PLAIN_INT)
    is_float = pc.match_substring_regex(present, _PLAIN_FLOAT)
    found = {csv_decoder.ColumnType.INT} if pc.any(is_int).as_py() else set()
    if pc.any(is_float).as_py():
        found.add(csv_decoder.ColumnType.FLOAT)
    odd = pc.filter(present, pc.invert(pc.or_(is_int, is_float)))
    for value in pc.unique(odd).to_pylist():
        found.add(csv_decoder._InferValueType(value.encode()))  # noqa: SLF001  (the rule itself)
    return max(found)


def feature_values(cells: pa.ChunkedArray, kind: csv_decoder.ColumnType) -> pa.ListArray:
    """One list per row, as TFX's CsvExampleGen fills a feature: [value] for a cell, [] for an empty one
    (a feature of the column's kind without values), null for every row of an all-empty column (a feature
    without a kind)."""
    cells = cells.combine_chunks() if isinstance(cells, pa.ChunkedArray) else cells
    if kind == csv_decoder.ColumnType.UNKNOWN:
        return pa.nulls(len(cells), pa.list_(pa.int64()))
    present = pc.not_equal(cells, "")
    values = pc.filter(cells, present)
    if kind == csv_decoder.ColumnType.STRING:
        values = values.cast(pa.binary())
    else:
        values = _numbers(values, np.int64 if kind == csv_decoder.ColumnType.INT else np.float64)
        if kind == csv_decoder.ColumnType.FLOAT:
            values = values.cast(pa.float32(), safe=False)  # as a FloatList stores Python's float
    offsets = np.zeros(len(cells) + 1, dtype=np.int32)
    np.cumsum(present.to_numpy(zero_copy_only=False), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _numbers(cells: pa.Array, dtype) -> pa.Array:
    """Non-empty cells as numbers, converted as Python's int() or float() converts them."""
    plain = pc.match_substring_regex(
        cells, _PLAIN_INT if dtype is np.int64 else f"{_PLAIN_INT}|{_PLAIN_FLOAT}"
    )
    if pc.all(plain).as_py():
        return cells.cast(pa.from_numpy_dtype(dtype))
    convert = int if dtype is np.int64 else float
    result = np.empty(len(cells), dtype=dtype)
    plain_rows = plain.to_numpy(zero_copy_only=False)
    result[plain_rows] = pc.filter(cells, plain).cast(pa.from_numpy_dtype(dtype)).to_numpy()
    odd = pc.filter(cells, pc.invert(plain))
    distinct = pc.unique(odd)
    converted = np.array([convert(value.encode()) for value in distinct.to_pylist()], dtype=dtype)
    result[~plain_rows] = converted[pc.index_in(odd, value_set=distinct).to_numpy()]
    return pa.array(result)


def read_cells(path: str) -> pa.Table:
    """Every column of a CSV file as UTF-8 strings, empty cells as "" (never null), quotes removed; a line
    break inside a quoted field is kept in the value, as TFX's CsvExampleGen keeps it."""
    names = header(path)
    if "://" in path:  # an object store's file, read through TensorFlow's file systems
        with fileio.open(path, "rb") as handle:
            source = pa.BufferReader(handle.read())
    else:
        source = path
    return arrow_csv.read_csv(
        source,
        read_options=arrow_csv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=arrow_csv.ParseOptions(newlines_in_values=True),
        convert_options=arrow_csv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def header(path: str) -> list[str]:
    """A CSV file's column names, from its first line (a byte-order mark left out)."""
    with fileio.open(path, "rb") as handle:
        return next(csv.reader([handle.readline().decode("utf-8-sig")]))


def checked_rows(files: list[str]) -> dict[str, int]:
    """File -> the rows the input checks counted in it, from the `CHECKED_ROWS_FILE` of its folder."""
    counts_by_folder: dict[str, dict[str, int]] = {}
    expected = {}
    for path in files:
        folder = os.path.dirname(path)
        if folder not in counts_by_folder:
            counts_file = os.path.join(folder, pipeline_config.CHECKED_ROWS_FILE)
            if not fileio.exists(counts_file):
                raise ExampleCountError(
                    f"ExampleGen: {counts_file} is missing. ExampleGen reads only files the input checks have "
                    "counted: `taxi-pipeline run` (or `prepare-data`) checks them and writes their counts there."
                )
            with fileio.open(counts_file) as handle:
                counts_by_folder[folder] = json.load(handle)
        name = os.path.basename(path)
        if name not in counts_by_folder[folder]:
            raise ExampleCountError(
                f"ExampleGen: {path} was not counted by the input checks ({os.path.join(folder, pipeline_config.CHECKED_ROWS_FILE)} "
                "does not list it): run `taxi-pipeline run` again, which checks every file it lays out."
            )
        expected[path] = counts_by_folder[folder][name]
    return expected


def read_split(expected_rows: dict[str, int]) -> pa.Table:
    """The rows of a split's CSV files (in the order given), each column typed as TFX's CsvExampleGen types
    it over the whole split, as one list per row and feature (`feature_values`). Raises ExampleCountError
    for a file whose rows are not the number the input checks counted."""
    tables = []
    for path, expected in expected_rows.items():
        cells = read_cells(path)
        if cells.num_rows != expected:
            raise ExampleCountError(
                f"ExampleGen: read {cells.num_rows} rows from {path}, where the input checks counted {expected}."
            )
        if tables and cells.column_names != tables[0].column_names:
            raise ValueError(
                f"ExampleGen: the files of one split have different headers: {next(iter(expected_rows))} has "
                f"{tables[0].column_names}, {path} has {cells.column_names}."
            )
        tables.append(cells)
    cells = pa.concat_tables(tables)
    del tables
    columns = {}
    for name in cells.column_names:
        columns[name] = feature_values(cells.column(name), column_type(cells.column(name)))
        cells = cells.drop([name])  # each column's text is freed once it is converted
    return pa.table(columns)


def write_examples(table: pa.Table, split_dir: str, seed: int, rows_per_file: int) -> int:
    """Writes `table`'s rows as serialized tf.Examples, in a `seed`ed random order, to gzipped TFRecord files
    of about `rows_per_file` each (at least one file); returns how many were written."""
    import tensorflow as tf  # noqa: PLC0415  (its writer; loaded by every TFX process anyway)

    order = np.random.default_rng(seed).permutation(table.num_rows)
    file_count = max(1, math.ceil(table.num_rows / rows_per_file))
    options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=_GZIP_LEVEL)
    fileio.makedirs(split_dir)
    written = 0
    for index, rows in enumerate(np.array_split(order, file_count)):
        path = os.path.join(split_dir, f"{_FILE_PREFIX}-{index:05d}-of-{file_count:05d}.gz")
        with tf.io.TFRecordWriter(path, options) as writer:
            for start in range(0, len(rows), _ENCODE_ROWS):
                for batch in table.take(rows[start : start + _ENCODE_ROWS]).to_batches():
                    for example in example_coder.RecordBatchToExamples(batch):
                        writer.write(example)
                        written += 1
    return written


def split_sources(
    input_config: example_gen_pb2.Input, output_config: example_gen_pb2.Output
) -> dict[str, str]:
    """Output split name -> the file pattern its rows come from: one output split per input split (TFX's
    hash partitioning of one input into several splits is not supported)."""
    if output_config.split_config.splits:
        raise ValueError(
            "ExampleGen writes one output split per input split; an output split config "
            f"({[split.name for split in output_config.split_config.splits]}) is not supported."
        )
    return {split.name: split.pattern for split in input_config.splits}


class Executor(base_beam_executor.BaseBeamExecutor):
    """Writes the Examples artifact as TFX's CsvExampleGen executor does, in this process, without Beam
    (Beam's per-element path was 28 % of TFX's executor at 1M rows; its workers' start, seconds more)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        input_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input()
        )
        output_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output()
        )
        _check_formats(exec_properties)
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        sources = split_sources(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(list(sources))
        for split, pattern in sources.items():
            files = sorted(
                fileio.glob(os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], pattern))
            )
            if not files:
                raise RuntimeError(f"ExampleGen: split pattern {pattern} matches no file.")
            expected = checked_rows(files)
            written = write_examples(
                read_split(expected),
                artifact_utils.get_split_uri([examples], split),
                exec_properties[SHUFFLE_SEED_KEY],
                pipeline_config.EXAMPLES_PER_FILE,
            )
            if written != sum(expected.values()):
                raise ExampleCountError(
                    f"ExampleGen: wrote {written} examples to split {split}, where the input checks counted "
                    f"{sum(expected.values())} rows in its {len(files)} file(s)."
                )
            logging.info("ExampleGen: %d examples in split %s, from %d file(s)", written, split, len(files))
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP)
        )


def _check_formats(exec_properties: dict) -> None:
    payload = exec_properties.get(
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY, example_gen_pb2.FORMAT_TF_EXAMPLE
    )
    file_format = exec_properties.get(
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY, example_gen_pb2.FORMAT_TFRECORDS_GZIP
    )
    if payload != example_gen_pb2.FORMAT_TF_EXAMPLE or file_format != example_gen_pb2.FORMAT_TFRECORDS_GZIP:
        raise ValueError(
            "ExampleGen writes tf.Examples in gzipped TFRecord files only, got payload format "
            f"{example_gen_pb2.PayloadFormat.Name(payload)} and file format {example_gen_pb2.FileFormat.Name(file_format)}."
        )


class CsvExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
    PARAMETERS = {
        **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
        SHUFFLE_SEED_KEY: component_spec.ExecutionParameter(type=int),
        **code_version.PARAMETER,
    }


class CsvExampleGen(component.FileBasedExampleGen):
    """TFX's FileBasedExampleGen (its driver: `{SPAN}`, `range_config`, the cache key) with the executor
    above, the seed of each split's order and the fingerprint of the executor's code among its parameters.
    Each input split (`input_config`) is an output split."""

    SPEC_CLASS = CsvExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str,
        input_config: example_gen_pb2.Input,
        shuffle_seed: int,
        range_config: range_config_pb2.RangeConfig | None = None,
    ):
        spec = CsvExampleGenSpec(
            input_base=input_base,
            input_config=input_config,
            output_config=example_gen_pb2.Output(),
            custom_config=None,
            range_config=range_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            shuffle_seed=shuffle_seed,
            code_fingerprint=code_version.of_executor(Executor),
            examples=types.Channel(type=standard_artifacts.Examples),
        )
        # FileBasedExampleGen builds its own spec, without ours: its base class takes ours.
        super(component.FileBasedExampleGen, self).__init__(spec=spec)
