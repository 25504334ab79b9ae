"""Fixtures shared by the tests beside the code (models/, pipeline/, components/) and under tests/."""

import pytest

from tools import system_packages


@pytest.fixture(scope="session")
def model_free_evaluation(tmp_path_factory):
    """A real TFMA evaluation folder made with the pipeline's EvalConfig (see tests/support/model_free_evaluation.py)."""
    from tests.support import model_free_evaluation

    return model_free_evaluation.evaluate(tmp_path_factory.mktemp("model_free"))


def pytest_terminal_summary(terminalreporter):
    """With SKIP_SYSTEM_TESTS=1, names each test skipped for want of a program (pytest's own SKIPPED lines
    say only where the skip was raised)."""
    marker = f"{system_packages.SKIP_ENV}=1: "
    skipped = [
        (report.nodeid, report.longrepr[2].split(marker, 1)[1].split(";")[0])
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and marker in report.longrepr[2]
    ]
    if skipped:
        terminalreporter.section(f"skipped: {system_packages.SKIP_ENV}=1 and a program is missing")
        for nodeid, why in skipped:
            terminalreporter.line(f"{nodeid}: {why}")
