"""Shared fixtures: small real taxi data laid out as spans."""

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import taxi_sample

# Small data: end-to-end runs on ~2,100 rows keep the gates real but fit ~440 evaluation rows. Their
# training window is ~1,700 rows: the sample's 150 steps of 512 overfit it (AUC 0.85), 20 of them left
# the model predicting "no big tip" for everything; 150 steps of 64 at 0.001 (~6 passes) learn it.
SMALL_RUN = {
    "train_steps": 150,
    "train_batch_size": 64,
    "learning_rate": 0.001,
    "eval_steps": 5,
    "min_auc": 0.85,
    "min_accuracy": 0.8,
    "key_slice_min_auc": 0.55,
    "key_slice_min_accuracy": 0.6,
}


def write_sampled_spans(data_root: Path, keep_every: int) -> dict[int, int]:
    """Writes every `keep_every`-th row of the real Chicago Taxi sample as span folders under `data_root`."""
    source = taxi_sample.sample_csv_path()
    sampled = data_root.parent / f"{data_root.name}_sample.csv"
    with source.open(newline="") as reader_handle, sampled.open("w", newline="") as writer_handle:
        reader, writer = csv.reader(reader_handle), csv.writer(writer_handle, lineterminator="\n")
        writer.writerow(next(reader))
        writer.writerows(row for index, row in enumerate(reader) if index % keep_every == 0)
    return taxi_sample.write_spans(sampled, data_root)


@pytest.fixture
def small_taxi_spans(tmp_path) -> Path:
    """About 2,100 real taxi rows (every 7th), as eight half-year span folders."""
    data_root = tmp_path / "data"
    write_sampled_spans(data_root, keep_every=7)
    return data_root


@pytest.fixture(scope="module")
def small_taxi_spans_module(tmp_path_factory) -> Path:
    """The same rows, shared by the tests of one module (which must not change them)."""
    data_root = tmp_path_factory.mktemp("small") / "data"
    write_sampled_spans(data_root, keep_every=7)
    return data_root


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def output_dir_with_pushed_model(tmp_path) -> Path:
    """An output folder holding a previously pushed model, which a failed run must not touch."""
    output_dir = tmp_path / "outputs"
    version = output_dir / "serving_model" / "1700000000"
    (version / "variables").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"previously pushed model")
    return output_dir


def run_cli(output_dir: Path, *flags: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as `make run` calls it."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", "--output-dir", str(output_dir), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_refused(result, output_dir: Path, digest_before: str, *expected_in_message: str) -> None:
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.startswith("error: ")
    assert "Traceback" not in message
    for expected in expected_in_message:
        assert expected in message
    assert tree_digest(output_dir / "serving_model") == digest_before
    assert not (output_dir / "pipeline_root").exists()
