"""`taxi-pipeline rollback`: a recorded decision, printed, and refused with a reason when impossible."""

from cli import main as cli
from config import folders
from registry import versions
from tests.support.outputs import pushed_version


def _serving(tmp_path):
    serving = folders.Settings(output_dir=tmp_path, data_root=None).serving_model_dir
    for version, weights in (("100", b"good"), ("200", b"bad")):
        pushed_version(serving, version, weights)
    return serving


def test_rollback_returns_to_the_previous_version_and_undo_reverses_it(tmp_path, capsys):
    serving = _serving(tmp_path)
    assert cli.main(["rollback", "--output-dir", str(tmp_path), "--reason", "canary errors"]) == 0
    out = capsys.readouterr().out
    assert "Rolled back version 200" in out and "production: 100" in out and "canary errors" in out
    assert versions.production_version(serving) == "100"

    assert cli.main(["rollback", "--output-dir", str(tmp_path), "--undo", "200"]) == 0
    assert versions.production_version(serving) == "200"


def test_an_impossible_rollback_is_refused_with_the_reason(tmp_path, capsys):
    _serving(tmp_path)
    assert cli.main(["rollback", "--output-dir", str(tmp_path), "--to", "999"]) == 2
    assert "Version 999 cannot become production" in capsys.readouterr().err
