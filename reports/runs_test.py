"""Readers open ML Metadata read-only and wait while a run holds its write lock, longer than ML Metadata's own
busy handler (about 25 s here) would."""

import subprocess
import sys
import time

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from reports import runs

PIPELINE = "chicago_taxi_big_tipper"
# Holds SQLite's write lock, as a component's execution record does, for `seconds` (argv[2]).
_WRITER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
connection.execute("INSERT INTO Type (name, type_kind) VALUES ('a run writing', 1)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@pytest.fixture
def store_with_a_run(tmp_path):
    """A real ML Metadata store holding one run of the pipeline, as TFX records it (pipeline and run contexts)."""
    path = tmp_path / "metadata.sqlite"
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    pipeline_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline"))
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    [pipeline, run] = store.put_contexts(
        [
            metadata_store_pb2.Context(type_id=pipeline_type, name=PIPELINE),
            metadata_store_pb2.Context(type_id=run_type, name="run-1"),
        ]
    )
    store.put_parent_contexts([metadata_store_pb2.ParentContext(child_id=run, parent_id=pipeline)])
    return path


def test_readers_cannot_write(store_with_a_run):
    store = runs.open_store(store_with_a_run, wait_seconds=1)
    assert [c.name for c in store.get_contexts_by_type("pipeline_run")] == ["run-1"]
    with pytest.raises(Exception, match="readonly|read-only|read only"):
        store.put_context_type(metadata_store_pb2.ContextType(name="written by a reader"))


def test_a_reader_waits_while_a_run_holds_the_lock(store_with_a_run):
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store_with_a_run), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        started = time.monotonic()

        found = runs.find_run(store_with_a_run, PIPELINE)

        assert found is not None and found[1].name == "run-1"
        assert time.monotonic() - started > 25  # it waited past ML Metadata's own retries, for the writer
        assert writer.wait(timeout=30) == 0
    finally:
        writer.kill()
