"""Every Prometheus rule file of the project (serving/prometheus/, monitoring/prometheus/), checked and
unit-tested by Prometheus's own promtool: each alert fires on its fault and stays quiet otherwise."""

import subprocess
from pathlib import Path

import pytest

from tests.support import system_tools

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted(ROOT.glob("*/prometheus/*_rules.yml"))
RULE_TESTS = sorted(ROOT.glob("*/prometheus/tests/*_test.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return system_tools.require("promtool")


def test_every_rule_file_has_its_tests():
    assert {p.stem.removesuffix("_rules") for p in RULE_FILES} == {
        p.stem.removesuffix("_rules_test") for p in RULE_TESTS
    }


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda path: path.parent.parent.name)
def test_the_rules_are_valid(promtool, rule_file):
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda path: path.parent.parent.parent.name)
def test_each_alert_fires_on_its_fault_and_stays_quiet_otherwise(promtool, rule_test):
    result = subprocess.run([promtool, "test", "rules", str(rule_test)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
