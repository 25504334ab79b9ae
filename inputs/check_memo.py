"""What the row checks found in files that passed them, remembered by the files' identity so that an
unchanged file is not read row by row again on the next run.

A file's identity is its resolved path, size, modification time (ns), inode and the SHA-256 of its bytes;
a remembered count is used only when all of them, and the context of the check (the span, the settings
and the source of the checks), are equal. The memo lives in the run's output folder
(`folders.Settings.checks_memo_path`), is written whole or not at all (a temporary file renamed), and an
unreadable memo is read as an empty one: it only ever saves time.
"""

import dataclasses
import functools
import hashlib
import importlib
import json
from pathlib import Path

from inputs.columnar_checks import RowCounts

# The rules and settings the counts depend on: an edit to any of them makes every remembered count stale.
_SOURCES = (
    "inputs.checks",
    "inputs.columnar_checks",
    "inputs.layout",  # how normalised copies are written
    "config.pipeline",
    "config.serving",
    "models.features",
)
_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FileIdentity:
    """A file as read: where, its size (bytes), modification time (ns), inode and content digest."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    sha256: str


def identify(path: Path, data: bytes, stat_before) -> FileIdentity | None:
    """The identity of `path` read as `data`, `stat_before` its `os.stat` taken before reading; None if the
    file changed while it was read (nothing is remembered about it)."""
    stat_after = path.stat()
    same = (stat_before.st_size, stat_before.st_mtime_ns, stat_before.st_ino) == (
        stat_after.st_size,
        stat_after.st_mtime_ns,
        stat_after.st_ino,
    )
    if not same or stat_after.st_size != len(data):
        return None
    return FileIdentity(
        path=str(path.resolve()),
        size=stat_after.st_size,
        mtime_ns=stat_after.st_mtime_ns,
        inode=stat_after.st_ino,
        sha256=hashlib.sha256(data).hexdigest(),
    )


@functools.cache
def _code_fingerprint() -> str:
    digest = hashlib.sha256(str(_VERSION).encode())
    for module in _SOURCES:  # imported here, not above: inputs.checks imports this module
        digest.update(module.encode() + b"\0" + Path(importlib.import_module(module).__file__).read_bytes())
    return digest.hexdigest()


def context(**settings) -> str:
    """A key for what else a check's result depends on: the checks' code and `settings` (JSON values)."""
    return hashlib.sha256(json.dumps([_code_fingerprint(), settings], sort_keys=True).encode()).hexdigest()


class CheckMemo:
    """The counts of files that passed the row checks, by identity and context (see the module's docstring)."""

    def __init__(self, path: Path):
        self.path = path
        self._known = self._read(path)
        self._kept: dict[str, dict] = {}

    @staticmethod
    def _read(path: Path) -> dict[str, dict]:
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(content, dict) or content.get("version") != _VERSION:
            return {}
        files = content.get("files")
        return files if isinstance(files, dict) else {}

    def recall(self, identity: FileIdentity | None, check_context: str) -> RowCounts | None:
        """The remembered counts of a file with this identity checked in this context; None if there are none."""
        if identity is None:
            return None
        entry = self._known.get(identity.path)
        if not isinstance(entry, dict):
            return None
        if entry.get("identity") != dataclasses.asdict(identity) or entry.get("context") != check_context:
            return None
        try:
            counts = RowCounts(**entry["counts"])
        except (KeyError, TypeError):
            return None
        self._kept[identity.path] = entry
        return counts

    def remember(self, identity: FileIdentity | None, check_context: str, counts: RowCounts) -> None:
        """Keeps `counts` for the next run (`save` writes them); a recalled entry keeps its copy's record."""
        if identity is not None:
            entry = {
                "identity": dataclasses.asdict(identity),
                "context": check_context,
                "counts": dataclasses.asdict(counts),
            }
            recalled = self._kept.get(identity.path, {})
            unchanged = all(recalled.get(key) == entry[key] for key in ("identity", "context"))
            if unchanged and "copy" in recalled:
                entry["copy"] = recalled["copy"]
            self._kept[identity.path] = entry

    def copy_is_current(self, identity: FileIdentity | None, copy: Path, columns: list[str]) -> bool:
        """True if `copy` is the normalised copy written, with `columns`, from the file as it is now
        (recalled this run) and has not changed since: no need to write it again."""
        entry = self._kept.get(identity.path) if identity is not None else None
        record = entry.get("copy") if entry else None
        if not record or record.get("columns") != columns or not copy.is_file() or copy.is_symlink():
            return False
        found = identify(copy, copy.read_bytes(), copy.stat())
        return found is not None and dataclasses.asdict(found) == record.get("identity")

    def remember_copy(self, identity: FileIdentity | None, copy: Path, columns: list[str]) -> None:
        """Records `copy` as the normalised copy of the file `identity` names, written with `columns`."""
        entry = self._kept.get(identity.path) if identity is not None else None
        found = identify(copy, copy.read_bytes(), copy.stat()) if entry is not None else None
        if entry is not None and found is not None:
            entry["copy"] = {"columns": columns, "identity": dataclasses.asdict(found)}

    def save(self) -> None:
        """Writes the files recalled or remembered since this memo was read (others are no longer inputs)."""
        content = json.dumps({"version": _VERSION, "files": self._kept}, indent=1, sort_keys=True) + "\n"
        if self.path.is_file() and self.path.read_text() == content:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(content)
        temporary.replace(self.path)
