"""Writing what a person reads into the output folder: whole, or not at all."""

from pathlib import Path


def write_atomically(path: Path, content: bytes) -> None:
    """Replaces `path` with `content` in one rename, so a full disk or a kill leaves the old file, never half
    of the new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(content)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
