"""`make tfx-run`'s environment for the tfx CLI: the folders go by the environment, never by flags."""

from pathlib import Path

from config import folders
from pipeline import tfx_cli


def test_flags_become_the_environment_beam_runner_reads(tmp_path):
    settings = folders.Settings.resolve(str(tmp_path / "out"))
    base = {"PATH": "/bin", folders.DATA_ROOT_ENV: "/elsewhere"}

    env = tfx_cli.environment(settings, "data/spans", "data/logs", verbose=True, base=base)

    assert env["BEAM_HOME"] == str(tmp_path / "out" / "tfx_cli_home")
    assert env[folders.OUTPUT_DIR_ENV] == str(tmp_path / "out")
    assert env[folders.DATA_ROOT_ENV] == str(Path("data/spans").resolve())  # the flag wins
    assert env[folders.SERVING_LOGS_ENV] == str(Path("data/logs").resolve())
    assert env["VERBOSE"] == "1" and env["PATH"] == "/bin"


def test_without_flags_the_callers_environment_stays(tmp_path):
    settings = folders.Settings.resolve(str(tmp_path))
    base = {folders.DATA_ROOT_ENV: "/data", folders.SERVING_LOGS_ENV: "/logs"}

    env = tfx_cli.environment(settings, None, None, verbose=False, base=base)

    assert env[folders.DATA_ROOT_ENV] == "/data" and env[folders.SERVING_LOGS_ENV] == "/logs"
    assert "VERBOSE" not in env
