"""Our CsvExampleGen executor against TFX's own, on the values where CSV typing goes wrong."""

import collections
import csv
import json
from pathlib import Path

import pytest
import tensorflow as tf
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv_executor
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import csv_example_gen
from config import pipeline as pipeline_config

# Column -> cells, chosen where Arrow's parsing and Python's int()/float() (TFX's rule) could part.
EDGE_COLUMNS = {
    "plain_int": ["1", "-2", "007", "", "0", "-0"],
    "python_only_int": ["+3", " 7", "1_000", "12", "", "9223372036854775807"],
    "floats": ["1", "2.5", "1e5", ".5", "", "-3."],
    "python_only_float": ["nan", "+1.5", "inf", "3", "1E-400", " 2.5 "],
    "float32_rounding": ["0.1", "16777217", "3.4028235e38", "1e39", "-1e-46", "2.2250738585072014e-308"],
    "too_big_for_int64": ["123456789012345678901", "5", "", "1", "2", "3"],
    "nineteen_digits": ["1234567890123456789", "-9223372036854775808", "1", "", "2", "3"],
    "text": ["Credit Card", "a,b", 'Taxi "Quoted"', "two\nlines", "", "Ünïcode ✓"],
    "always_empty": ["", "", "", "", "", ""],
    "mixed": ["1", "x", "2.5", "", "3", "4"],
}


def _write_split(folder: Path, files: dict[str, range], columns: dict[str, list[str]]) -> None:
    """CSV files in `folder`, each holding the given rows of `columns`, and the checks' row counts."""
    folder.mkdir(parents=True)
    for name, rows in files.items():
        with (folder / name).open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows([[cells[row] for cells in columns.values()] for row in rows])
    counts = {name: len(rows) for name, rows in files.items()}
    (folder / pipeline_config.CHECKED_ROWS_FILE).write_text(json.dumps(counts))


def _run(executor_class, input_base: Path, output: Path, splits, output_config=None, seed: int = 7) -> str:
    examples = standard_artifacts.Examples()
    examples.uri = str(output)
    input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*.csv") for split in splits]
    )
    exec_properties = {
        "input_base": str(input_base),
        "input_config": proto_utils.proto_to_json(input_config),
        "output_config": proto_utils.proto_to_json(output_config or example_gen_pb2.Output()),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        csv_example_gen.SHUFFLE_SEED_KEY: seed,
    }
    context = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=[*pipeline_config.BEAM_PIPELINE_ARGS, *pipeline_config.LOCAL_BEAM_DEPENDENCY_ARGS],
        tmp_dir=str(output.parent / "tmp"),
    )
    executor_class(context).Do({}, {"examples": [examples]}, exec_properties)
    return examples


def _records(examples, split: str) -> list[bytes]:
    paths = sorted(Path(examples.uri, f"Split-{split}").glob("*.gz"))
    return [r for path in paths for r in tf.data.TFRecordDataset(str(path), "GZIP").as_numpy_iterator()]


def _contents(records: list[bytes]) -> collections.Counter:
    """The examples as a multiset, each by its content (a map's entries are written in any order)."""
    return collections.Counter(
        tf.train.Example.FromString(record).SerializeToString(deterministic=True) for record in records
    )


def test_writes_the_examples_tfx_csv_example_gen_writes_on_edge_values(tmp_path):
    _write_split(
        tmp_path / "input" / "a", {"first.csv": range(0, 4), "second.csv": range(4, 6)}, EDGE_COLUMNS
    )
    # Another split with other rows: each split is typed on its own rows, as TFX types it.
    _write_split(tmp_path / "input" / "b", {"only.csv": range(2, 5)}, EDGE_COLUMNS)
    ours = _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / "ours", ["a", "b"])
    theirs = _run(tfx_csv_executor.Executor, tmp_path / "input", tmp_path / "tfx", ["a", "b"])

    for split, rows in (("a", 6), ("b", 3)):
        ours_split, theirs_split = _contents(_records(ours, split)), _contents(_records(theirs, split))
        assert sum(ours_split.values()) == rows
        assert ours_split == theirs_split, split
    # The artifact reads as TFX's: split names and formats.
    assert ours.split_names == theirs.split_names == '["a", "b"]'
    for name in ("payload_format", "file_format"):
        assert ours.get_string_custom_property(name) == theirs.get_string_custom_property(name)


def test_each_split_is_written_in_a_seeded_random_order(tmp_path):
    rows = {"number": [str(n) for n in range(500)]}
    _write_split(tmp_path / "input" / "train", {"data.csv": range(500)}, rows)

    def numbers(seed, name):
        examples = _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / name, ["train"], seed=seed)
        return [
            tf.train.Example.FromString(r).features.feature["number"].int64_list.value[0]
            for r in _records(examples, "train")
        ]

    first, again, other = numbers(1, "first"), numbers(1, "again"), numbers(2, "other")
    assert sorted(first) == list(range(500))
    assert first == again  # the same data and seed: the same order
    assert first != other and first != sorted(first)


def test_refuses_hash_partitioning_into_output_splits(tmp_path):
    _write_split(tmp_path / "input" / "logs", {"a.csv": range(6)}, EDGE_COLUMNS)
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name="serving", hash_buckets=1)]
        )
    )
    with pytest.raises(ValueError, match=r"one output split per input split.*\['serving'\]"):
        _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / "out", ["logs"], output_config)


def test_a_large_split_is_written_as_several_files(tmp_path):
    table = csv_example_gen.read_split({str(_one_file(tmp_path, 10)): 10})
    written = csv_example_gen.write_examples(table, str(tmp_path / "out"), seed=1, rows_per_file=3)
    files = sorted((tmp_path / "out").glob("*.gz"))
    assert written == 10
    assert [f.name for f in files] == [f"data_tfrecord-0000{i}-of-00004.gz" for i in range(4)]
    assert sum(len(list(tf.data.TFRecordDataset(str(f), "GZIP"))) for f in files) == 10


def _one_file(tmp_path: Path, rows: int) -> Path:
    _write_split(tmp_path / "in", {"data.csv": range(rows)}, {"n": [str(n) for n in range(rows)]})
    return tmp_path / "in" / "data.csv"


def test_fails_when_a_file_holds_other_rows_than_the_checks_counted(tmp_path):
    _write_split(tmp_path / "input" / "train", {"data.csv": range(6)}, EDGE_COLUMNS)
    counts = tmp_path / "input" / "train" / pipeline_config.CHECKED_ROWS_FILE
    counts.write_text(json.dumps({"data.csv": 7}))
    with pytest.raises(
        csv_example_gen.ExampleCountError,
        match=r"read 6 rows from .*data\.csv, where the input checks counted 7",
    ):
        _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / "out", ["train"])


def test_fails_on_files_the_checks_did_not_count(tmp_path):
    _write_split(tmp_path / "input" / "train", {"data.csv": range(6)}, EDGE_COLUMNS)
    counts = tmp_path / "input" / "train" / pipeline_config.CHECKED_ROWS_FILE
    counts.write_text(json.dumps({"other.csv": 6}))
    with pytest.raises(
        csv_example_gen.ExampleCountError, match=r"data\.csv was not counted by the input checks"
    ):
        _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / "out", ["train"])
    counts.unlink()
    with pytest.raises(csv_example_gen.ExampleCountError, match=r"checked_rows\.json is missing"):
        _run(csv_example_gen.Executor, tmp_path / "input", tmp_path / "out", ["train"])
