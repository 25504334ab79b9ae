"""The replay's workspace: its own data (the sample's spans up to 2016 H1 to train on, 2016 H2 set apart
to replay as traffic), its first model, and its stack with the monitor."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from config import folders
from config import pipeline as pipeline_config
from inputs import taxi_sample
from monitoring import control
from registry import versions
from serving import processes, stack

REPLAYED_SPAN = 20162


def workspace(output_dir: Path, keep_every: int = 1) -> tuple[folders.Settings, list[str], list[list[str]]]:
    """The scenario's settings (data: the sample's spans up to 2016 H1) and the 2016 H2 rows to replay
    (header, rows). `keep_every` > 1 keeps every n-th trip of each span, when the data is first written."""
    data_root = output_dir / "data"
    source = output_dir / "replayed"
    if not source.is_dir():
        staging = output_dir / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        taxi_sample.write_spans(taxi_sample.sample_csv_path(), staging)
        replayed = staging / f"{pipeline_config.SPAN_FOLDER_PREFIX}{REPLAYED_SPAN}"
        if keep_every > 1:
            for span_file in staging.glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*/*.csv"):
                _keep_every(span_file, keep_every)
        data_root.mkdir(parents=True, exist_ok=True)
        for span in sorted(staging.iterdir()):
            if span != replayed:
                span.rename(data_root / span.name)
        replayed.rename(source)
        shutil.rmtree(staging)
    with (source / "data.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    return folders.Settings(output_dir=output_dir, data_root=data_root), header, rows


def _keep_every(path: Path, keep_every: int) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[1:][::keep_every]), encoding="utf-8")


def first_model(settings: folders.Settings, pipeline_args: tuple[str, ...] = ()) -> str:
    """The production version, trained on the spans up to 2016 H1 (by a pipeline run when none is, with
    `pipeline_args` added to `taxi-pipeline run`'s)."""
    production = versions.production_version(settings.serving_model_dir)
    if production:
        return production
    print("replay: training the first model on the spans up to 2016 H1 (the pipeline, as `make run`) ...")
    command = [sys.executable, "-m", "cli.main", "run", "--output-dir", str(settings.output_dir),
               "--data-root", str(settings.data_root), *pipeline_args]  # fmt: skip
    if subprocess.run(command).returncode != 0 or not versions.production_version(settings.serving_model_dir):
        raise RuntimeError(f"the first pipeline run pushed no model; see {settings.run_summary_path}")
    return versions.production_version(settings.serving_model_dir)


def start_stack(settings: folders.Settings) -> dict:
    """The workspace's stack (started on free loopback ports unless it runs) with the monitor; its state."""
    paths = stack.StackPaths.of(settings)
    state = stack.read_state(paths)
    if state is None or not processes.alive(state["stable"].get("pid")):
        state = stack.start(paths, None, processes.free_port(), processes.free_port())
    control.start(settings, refresh_seconds=2.0)  # the replay lasts minutes: figures every 2 s
    return stack.read_state(paths)
