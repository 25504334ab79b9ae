"""Old request logs move to the archive whole; recent and open ones stay; nothing is overwritten."""

import os
import time

from config import monitoring as monitoring_config
from monitoring import archive


def test_old_closed_logs_move_whole_and_nothing_is_overwritten(tmp_path):
    now = time.time()
    old, recent, open_file = (
        tmp_path / "requests-old.csv",
        tmp_path / "requests-new.csv",
        tmp_path / "requests-live.csv.open",
    )
    for path in (old, recent, open_file):
        path.write_text(f"request_id\n{path.name}\n")
    for path in (old, open_file):
        os.utime(path, (now - 40 * 86400, now - 40 * 86400))
    month = time.strftime("%Y-%m", time.gmtime(now - 40 * 86400))
    taken = tmp_path / monitoring_config.REQUEST_LOG_ARCHIVE / month / "requests-old.csv"
    taken.parent.mkdir(parents=True)
    taken.write_text("archived earlier\n")

    moved = archive.archive_old_logs(tmp_path, retention_days=30, now=now)

    assert moved == [taken.with_name("requests-old.1.csv")]
    assert moved[0].read_text() == "request_id\nrequests-old.csv\n"
    assert taken.read_text() == "archived earlier\n"
    assert recent.exists() and open_file.exists() and not old.exists()
