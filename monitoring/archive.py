"""Request logs past their retention: moved to `request_log/archive/<YYYY-MM>/`, kept, and never read by
the pipeline again (it reads only the folder's own `*.csv`).

Only closed files (`.csv`) move; a server's open file (`.csv.open`) stays. A move is a rename inside one
filesystem, so a file is in one place or the other, whole; a name taken in the archive gets a suffix
rather than replace what is there.
"""

import datetime
import time
from pathlib import Path

from config import monitoring as monitoring_config


def archive_old_logs(request_log_dir: Path, retention_days: float = monitoring_config.REQUEST_LOG_RETENTION_DAYS,
                     now: float | None = None) -> list[Path]:  # fmt: skip
    """Moves the closed request-log files last written more than `retention_days` ago; returns where to."""
    if not request_log_dir.is_dir():
        return []
    cutoff = (now or time.time()) - retention_days * 86400
    moved = []
    for path in sorted(request_log_dir.glob("*.csv")):
        written = path.stat().st_mtime
        if written >= cutoff:
            continue
        month = datetime.datetime.fromtimestamp(written, tz=datetime.timezone.utc).strftime("%Y-%m")
        folder = request_log_dir / monitoring_config.REQUEST_LOG_ARCHIVE / month
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        copy = 1
        while target.exists():
            target = folder / f"{path.stem}.{copy}{path.suffix}"
            copy += 1
        path.rename(target)
        moved.append(target)
    return moved
