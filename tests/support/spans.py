"""Small real taxi data, as the pipeline reads it: span folders of CSVs."""

import csv
import dataclasses
import io
from pathlib import Path

from config import pipeline as pipeline_config
from inputs import taxi_sample

# Small data: end-to-end runs on ~2,100 rows keep the gates real but fit ~440 evaluation rows. Their
# training window is ~1,700 rows: the sample's 150 steps of 512 overfit it (AUC 0.85), 20 of them left
# the model predicting "no big tip" for everything; 150 steps of 64 at 0.001 (~6 passes) learn it.
# SMALL_RUN: the stage settings such a run uses instead of config's (local_runner.run(settings, **SMALL_RUN)).
SMALL_TRAINING = pipeline_config.Training(
    train_steps=150, train_batch_size=64, learning_rate=0.001, eval_steps=5
)
# Their ~440 evaluation examples are fewer than a production evaluation needs (MIN_EVALUATION_EXAMPLES):
# these runs test the pipeline's machinery, not a model worth pushing. Batch scoring of the newest span is
# left out (tests/e2e/test_pipeline_e2e.py runs it), and the serving check asks fewer trips: each costs
# every run of the suite time.
SMALL_RUN_GATES = pipeline_config.Evaluation(
    min_auc=0.85,
    min_accuracy=0.8,
    key_slice_min_auc=0.55,
    key_slice_min_accuracy=0.6,
    min_evaluation_examples=300,
    bulk_inference_on_newest_span=False,
    serving_check_rows=50,
    serving_check_max_p99_seconds=1.0,
)
SMALL_RUN = {"training": SMALL_TRAINING, "evaluation": SMALL_RUN_GATES}


def small_run(**gates) -> dict:
    """SMALL_RUN with these fields of its Evaluation replaced (e.g. `min_auc=0.999`)."""
    return dict(SMALL_RUN, evaluation=dataclasses.replace(SMALL_RUN_GATES, **gates))


def write_sampled_spans(data_root: Path, keep_every: int) -> dict[int, int]:
    """Writes every `keep_every`-th row of the real Chicago Taxi sample as span folders under `data_root`."""
    source = taxi_sample.sample_csv_path()
    sampled = data_root.parent / f"{data_root.name}_sample.csv"
    with source.open(newline="") as reader_handle, sampled.open("w", newline="") as writer_handle:
        reader, writer = csv.reader(reader_handle), csv.writer(writer_handle, lineterminator="\n")
        writer.writerow(next(reader))
        writer.writerows(row for index, row in enumerate(reader) if index % keep_every == 0)
    return taxi_sample.write_spans(sampled, data_root)


HEADER = "fare,tips,company\n"
REQUIRED = ["fare", "tips", "company"]


def write_span(root: Path, span: int, header: str = HEADER, rows: str = "1.0,0.5,A\n") -> Path:
    """Writes `root/span-N/data.csv`."""
    path = root / f"span-{span}" / "data.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + rows)
    return path


def real_rows(count: int, start: int = 0) -> tuple[list[str], list[list[str]]]:
    """The header and `count` real rows of the Chicago Taxi sample."""
    with taxi_sample.sample_csv_path().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for index, row in enumerate(reader) if index >= start][:count]
    return header, rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], line_end="\n", mark="") -> Path:
    text = io.StringIO()
    csv.writer(text, lineterminator=line_end).writerows([header, *rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mark + text.getvalue(), encoding="utf-8", newline="")
    return path
