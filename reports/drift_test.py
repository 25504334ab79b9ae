"""`taxi-pipeline drift` on the real sample: the table behind the schema's thresholds, and its page."""

import json

import pytest

from cli import main as cli
from config import folders
from reports import drift
from tests.support import browser

pytestmark = pytest.mark.e2e  # statistics of 10 span sets: about a minute cold


@pytest.fixture(scope="module")
def drift_output(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("drift") / "outputs"
    assert cli.main(["drift", "--output-dir", str(output_dir)]) == 0
    return folders.Settings(output_dir=output_dir, data_root=None)


def test_every_threshold_sits_above_all_the_real_drift(drift_output):
    table = json.loads((drift_output.drift_dir / folders.DRIFT_TABLE_FILE).read_text())
    names = [c["name"] for c in table["comparisons"]]
    assert names[:2] == ["2013H1>2013H2", "2013H2>2014H1"] and names[-1] == "serving vs train"
    assert len(names) == 8  # 7 consecutive half-year pairs, then serving vs. training
    cells = [(row["feature"], name, cell) for row in table["features"] for name, cell in row["cells"].items()]
    # Every feature of the schema is measured, gated or not (census tract pickup: no values to compare).
    assert {row["feature"] for row in table["features"]} == {
        f.name for f in drift.read_schema(folders.SCHEMA_PATH).feature
    } - {"pickup_census_tract"}
    # The real history passes: the schema's thresholds (schema/README.md) sit above every real distance.
    assert [(f, n) for f, n, cell in cells if cell["above"]] == []
    by_feature = {row["feature"]: row for row in table["features"]}
    assert by_feature["fare"]["cells"]["2016H1>2016H2"]["value"] == pytest.approx(0.096, abs=0.002)
    assert by_feature["trip_start_month"]["drift_threshold"] is None  # disjoint months by construction
    assert "serving vs train" not in by_feature["tips"]["cells"]  # the label source is not served


def test_drift_page_plots_the_most_drifted_features(drift_output, tmp_path):
    page = drift_output.drift_report_path
    dom = browser.Elements(browser.dump_dom(page))
    plotted = [
        attributes["data-feature"] for _, attributes, _ in dom.find("div", **{"class": "feature-plot"})
    ]
    assert len(plotted) == 6 and plotted[0] == "trip_miles"
    assert dom.find("polyline") and dom.find("rect", **{"class": "bar"})
    assert len(dom.find("tr")) == 1 + 17 + 1  # heading, every measured feature, example counts
    browser.screenshot(page, tmp_path / "drift_report.png")
