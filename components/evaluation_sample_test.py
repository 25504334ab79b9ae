"""EvaluationSample on real TFRecord files of tf.Examples, run on Beam's DirectRunner."""

import random
from pathlib import Path

import pytest
import tensorflow as tf
from tfx import types
from tfx.types import artifact_utils, standard_artifacts

from components import evaluation_sample
from reports.evaluation_results import EXAMPLES_IN_SPLIT, EXAMPLES_KEPT

SPAN = 20162


def _serialized_examples(count: int) -> list[bytes]:
    return [
        tf.train.Example(
            features=tf.train.Features(
                feature={"trip_id": tf.train.Feature(int64_list=tf.train.Int64List(value=[number]))}
            )
        ).SerializeToString()
        for number in range(count)
    ]


def _examples_artifact(folder: Path, records: list[bytes], files: int) -> standard_artifacts.Examples:
    """ExampleGen's layout: `Split-eval/` of gzipped TFRecord files, plus a `train` split."""
    examples = standard_artifacts.Examples()
    examples.uri = str(folder)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.set_int_custom_property("span", SPAN)
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    for split, split_records in (("eval", records), ("train", [b"not an example"])):
        split_dir = folder / f"Split-{split}"
        split_dir.mkdir(parents=True)
        for shard in range(files):
            with tf.io.TFRecordWriter(str(split_dir / f"data-{shard}.gz"), options="GZIP") as writer:
                for record in split_records[shard::files]:
                    writer.write(record)
    return examples


def _sample(tmp_path: Path, examples, max_examples: int, seed: int = 7, name: str = "sample"):
    sample = standard_artifacts.Examples()
    sample.uri = str(tmp_path / name)
    evaluation_sample.EvaluationSampleExecutor().Do(
        {"examples": [examples]},
        {"sample": [sample]},
        {"split": "eval", "max_examples": max_examples, "seed": seed},
    )
    files = sorted((Path(sample.uri) / "Split-eval").glob("*.gz"))
    assert files and all(f.read_bytes()[:2] == b"\x1f\x8b" for f in files)  # gzipped, as ExampleGen writes
    kept = [bytes(r.numpy()) for r in tf.data.TFRecordDataset([str(f) for f in files], "GZIP")]
    return sample, kept


def test_a_split_within_the_limit_passes_whole_with_the_inputs_properties(tmp_path):
    records = _serialized_examples(300)
    sample, kept = _sample(tmp_path, _examples_artifact(tmp_path / "examples", records, files=2), 300)
    assert sorted(kept) == sorted(records)
    assert artifact_utils.decode_split_names(sample.split_names) == ["eval"]
    assert sample.get_int_custom_property("span") == SPAN
    assert sample.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    assert sample.get_int_custom_property(EXAMPLES_IN_SPLIT) == 300
    assert sample.get_int_custom_property(EXAMPLES_KEPT) == 300


def test_a_larger_split_is_cut_to_the_records_with_the_smallest_seeded_ranks(tmp_path):
    records = _serialized_examples(1000)
    sample, kept = _sample(tmp_path, _examples_artifact(tmp_path / "examples", records, files=3), 100)
    expected = sorted(records, key=lambda r: evaluation_sample.sample_rank(r, 7))[:100]
    assert sorted(kept) == sorted(expected)
    assert sample.get_int_custom_property(EXAMPLES_IN_SPLIT) == 1000
    assert sample.get_int_custom_property(EXAMPLES_KEPT) == 100


def test_the_sample_depends_on_the_seed_and_the_data_not_on_files_or_order(tmp_path):
    records = _serialized_examples(1000)
    shuffled = random.Random(1).sample(records, len(records))
    _, first = _sample(tmp_path, _examples_artifact(tmp_path / "a", records, files=1), 100, name="s1")
    _, again = _sample(tmp_path, _examples_artifact(tmp_path / "b", shuffled, files=4), 100, name="s2")
    _, other_seed = _sample(tmp_path, _examples_artifact(tmp_path / "c", records, files=1), 100, 8, "s3")
    assert sorted(first) == sorted(again)
    assert len(set(first) & set(other_seed)) < 50  # two uniform 10 % samples share about 10


def _example(**int_features) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                name: tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                for name, value in int_features.items()
            }
        )
    )


def test_the_rank_follows_an_examples_content_not_the_order_its_map_was_written_in():
    # Two encodings of one example, its feature map's entries in either order (protobuf merges the halves),
    # as ExampleGen in two processes may write it.
    hour, fare = _example(hour=3).SerializeToString(), _example(fare=9).SerializeToString()
    assert hour + fare != fare + hour
    assert tf.train.Example.FromString(hour + fare) == tf.train.Example.FromString(fare + hour)
    assert evaluation_sample.sample_rank(hour + fare, 7) == evaluation_sample.sample_rank(fare + hour, 7)
    assert evaluation_sample.sample_rank(hour + fare, 7) != evaluation_sample.sample_rank(hour + fare, 8)
    assert evaluation_sample.sample_rank(hour + fare, 7) != evaluation_sample.sample_rank(hour, 7)


def test_examples_that_are_not_tf_examples_are_refused(tmp_path):
    examples = _examples_artifact(tmp_path / "examples", _serialized_examples(3), files=1)
    examples.set_string_custom_property("payload_format", "FORMAT_PARQUET")
    with pytest.raises(ValueError, match="hold FORMAT_PARQUET, expected FORMAT_TF_EXAMPLE"):
        _sample(tmp_path, examples, 10)


def test_a_missing_split_names_the_artifact_and_the_split(tmp_path):
    examples = _examples_artifact(tmp_path / "examples", _serialized_examples(3), files=1)
    examples.split_names = artifact_utils.encode_split_names(["train"])
    with pytest.raises(ValueError, match=r"examples at .*/examples have no split 'eval'"):
        _sample(tmp_path, examples, 10)


def test_a_sample_of_nothing_is_refused_when_the_pipeline_is_built():
    with pytest.raises(ValueError, match="max_examples must be at least 1, got 0"):
        evaluation_sample.EvaluationSample(
            examples=types.Channel(type=standard_artifacts.Examples), split="eval", max_examples=0, seed=1
        )
