"""The local stack's state: what is live, in `outputs/serving/state.json`, and the lock every change holds.

The state is a JSON object: nginx's `port`, the `mode` (serving/traffic.py's modes), the `stable` and
`candidate` servers (`version`, `port`, `pid`, `label`), the `canary_percent`, the `generation` of nginx's
configuration, the `prometheus` and `analysis` processes and the attached `services`. Every command holds
`state.lock` while it changes anything, so the analysis and a person cannot interleave; the file is
replaced whole, so a reader never sees half of it.
"""

import contextlib
import dataclasses
import fcntl
import json
from pathlib import Path

from config import folders

STATE_FILE, LOCK_FILE = "state.json", "state.lock"


class StackError(Exception):
    """What the stack cannot do, and why: the message is for the person at the command line (or, from the
    release API, the client: a 409 unless a subclass says more)."""


class UnknownVersion(StackError):
    """A version that is not a whole pushed version (the release API's 404)."""


class BadArgument(StackError):
    """An argument out of its range; `field` names it (the release API's 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class StackPaths:
    serving_dir: Path  # the Pusher's
    root: Path  # outputs/serving: state, nginx and Prometheus configuration, logs
    request_log: Path

    @classmethod
    def of(cls, settings: folders.Settings) -> "StackPaths":
        return cls(settings.serving_model_dir, settings.serving_stack_dir, settings.request_log_dir)

    @property
    def run(self) -> Path:
        return self.root / "run"


def read_state(paths: StackPaths) -> dict | None:
    path = paths.root / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_state(paths: StackPaths, state: dict) -> None:
    path = paths.root / STATE_FILE
    temporary = path.with_name(f".{STATE_FILE}.tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)


def remove_state(paths: StackPaths) -> None:
    (paths.root / STATE_FILE).unlink(missing_ok=True)


@contextlib.contextmanager
def locked(paths: StackPaths):
    """Holds the stack's lock (blocking until a change under way is done)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / LOCK_FILE).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
