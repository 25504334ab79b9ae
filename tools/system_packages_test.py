"""The system packages' one list, found, checked and installed as `make setup` and `make test` use it,
on a PATH that holds none of them."""

import pytest

from tests.support import system_tools
from tools import system_packages


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH with nothing on it: no program of the list, no apt-get, no sudo."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(system_packages.SKIP_ENV, raising=False)
    return tmp_path


def test_make_test_is_refused_naming_what_is_missing_and_how_to_install_it(bare_path, capsys):
    assert system_packages.check() == 1
    error = capsys.readouterr().err
    for program in system_packages.PROGRAMS:
        assert f"{program.name} ({program.package})" in error
    assert "apt-get install -y chromium mtail nginx-light prometheus" in error
    assert f"{system_packages.SKIP_ENV}=1 make test" in error


def test_opting_out_lets_make_test_run_and_names_what_it_skipped(bare_path, monkeypatch, capsys):
    monkeypatch.setenv(system_packages.SKIP_ENV, "1")
    assert system_packages.check() == 0
    assert system_packages.skipped() == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("(each pytest run's SKIPPED lines")
    assert all(f"{p.name} ({p.package})" in out for p in system_packages.PROGRAMS)


def test_nothing_is_said_when_everything_is_installed(bare_path, monkeypatch, capsys):
    for program in system_packages.PROGRAMS:
        executable = bare_path / program.name
        executable.write_text("#!/bin/sh\n")
        executable.chmod(0o755)
    assert system_packages.missing() == []
    assert system_packages.check() == system_packages.install() == system_packages.skipped() == 0
    assert capsys.readouterr() == ("", "")


def test_where_it_cannot_install_set_up_prints_the_command_and_goes_on(bare_path, capsys):
    assert system_packages.install() == 0  # `make run` needs none of them
    error = capsys.readouterr().err
    assert "apt-get install -y chromium mtail nginx-light prometheus" in error
    assert system_packages.install_command(list(system_packages.PROGRAMS)) in error  # `sudo ` unless root


def test_a_test_that_needs_a_missing_program_fails_or_with_the_opt_out_skips(bare_path, monkeypatch):
    with pytest.raises(pytest.fail.Exception, match=r"nginx is not installed.*SKIP_SYSTEM_TESTS=1 skips"):
        system_tools.require("nginx", "prometheus")
    monkeypatch.setenv(system_packages.SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match="SKIP_SYSTEM_TESTS=1: nginx is not installed"):
        system_tools.require("nginx")


def test_a_program_the_list_does_not_hold_is_an_error_naming_the_list():
    with pytest.raises(KeyError, match="alertmanager is not in tools/system_packages.py's PROGRAMS"):
        system_packages.program("alertmanager")
