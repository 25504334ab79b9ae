"""The monitor page is written from the files on disk when the stack is stopped: the monitor's figures
and the drift window, with no time series or alerts (they need Prometheus)."""

import pytest

from config import folders
from monitoring import page
from tests.support import request_logs


def test_a_page_is_written_after_the_stack_stopped(tmp_path):
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    request_logs.write_request_log(settings.request_log_dir, [
        {"request_id": f"r{index}", "trip": 0, "time": f"2026-11-30T08:00:0{index}+00:00", "model_version": "7",
         "route": "stable", "prediction": 0.5, "fare": "10.0"}
        for index in range(5)
    ])  # fmt: skip
    data = page.collect(settings, minutes=10)
    assert data["prometheus"] is None and data["series"] == [] and data["alerts"] == []
    assert data["stack"]["running"] is False and data["end"] - data["start"] == pytest.approx(600)
    assert data["figures"]["logged_trips"] == 5 and data["drift"]["served_trips"] == 5
    path, lines = page.write(settings, minutes=10)
    assert path == settings.output_dir / page.PAGE_FILE
    assert 'id="verdict">no alert firing<' in path.read_text()
    assert lines == [f"Monitor of {settings.output_dir}: 5 trips logged, 0 labelled"]
