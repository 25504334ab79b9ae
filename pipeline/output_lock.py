"""One run at a time per output folder.

Two runs on one folder would both write its SQLite ML Metadata store and both push, so a run holds an
exclusive lock on `<output folder>/.run.lock` from before it checks its inputs until it has written its
summary. The lock is an `flock`, which the kernel releases when its holder exits, however it exits: a
killed run leaves the file, but no lock. The file says who holds it (pid, command, start time), so a
refused run can name the one running; a file left unreleased names a run that died, and the next run
takes it over and says so.
"""

import contextlib
import datetime
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = ".run.lock"


class OutputFolderBusy(Exception):
    """Another live process holds the output folder; the message names it."""


def _describe(holder: dict) -> str:
    return (
        f"`{holder.get('command', '?')}` (pid {holder.get('pid', '?')}, started {holder.get('started', '?')})"
    )


@contextlib.contextmanager
def hold(output_dir: Path, command: str) -> Iterator[dict | None]:
    """Holds the folder's lock for the `with` block; yields the holder a killed run left behind, if any.

    Raises OutputFolderBusy at once when a live process holds it.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    handle = (output_dir / LOCK_FILE).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputFolderBusy(
                f"{output_dir} is in use by {_describe(_read(handle))}. One run at a time may use an output "
                "folder (they would both write its ML Metadata store and both push): wait for that run to end, "
                "or use another folder (--output-dir / OUT=)."
            ) from None
        previous = _read(handle)
        stale = previous if previous and not previous.get("released") else None
        _write(handle, {"pid": os.getpid(), "command": command, "started": _now(), "released": False})
        try:
            yield stale
        finally:
            with contextlib.suppress(OSError):  # a full disk: the lock is released by closing all the same
                _write(handle, {**_read(handle), "released": True, "ended": _now()})
    finally:
        handle.close()  # releases the lock


def say_if_taken_over(stale: dict | None) -> None:
    if stale:
        print(
            f"note: the previous run on this folder, {_describe(stale)}, ended without releasing it (it was "
            "killed); taking over. Completed components come from the cache.",
            file=sys.stderr,
        )


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def _read(handle) -> dict:
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}


def _write(handle, content: dict) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(content) + "\n")
    handle.flush()
