"""The slice report page: complete, self-contained, and rendered by a real browser as a person sees it."""

import re

import pytest

from reports import evaluation_results, slice_report_html
from tests.support import browser
from tests.support import model_free_evaluation as model_free_evaluation_module


@pytest.fixture(scope="module")
def content(model_free_evaluation):
    data = evaluation_results.read_evaluation(
        str(model_free_evaluation), model_free_evaluation_module.KEY_SLICE, min_slice_examples=100
    )
    data["blessed"] = False
    data["baseline"] = {"source": "production", "version": "1700000000", "path": "/serving/1700000000"}
    return data


@pytest.fixture(scope="module")
def page(content, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "slice_report.html"
    path.write_text(slice_report_html.render(content))
    return path


def test_page_has_a_row_per_slice_and_names_why_the_model_was_not_blessed(content, page):
    markup = page.read_text()
    for row in content["slices"]:
        assert f'data-slice="{row["slice"]}"' in markup
    assert "NOT BLESSED" in markup
    for failure in content["failures"]:
        assert f"<b>{failure['metric']}</b> on <b>{failure['slice']}</b>" in markup


def test_page_needs_no_network(page):
    markup = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "@import" not in markup


def test_browser_renders_table_and_plots(content, page, tmp_path):
    dom = browser.Elements(browser.dump_dom(page))
    [table] = dom.find("table", id="slices")
    assert table[1].get("data-ready") == "true", "the table's script did not run"
    rows = [element for element in dom.find("tr") if "data-slice" in element[1]]
    assert [row[1]["data-slice"] for row in rows] == [row["slice"] for row in content["slices"]]
    assert len(dom.find("rect", **{"class": "bar"})) >= len(content["slices"]) - 1
    assert len(dom.find("polyline", **{"class": "series"})) >= 6  # calibration, PR, ROC x 2 slices
    assert dom.find("circle", **{"class": "point"})

    png = browser.screenshot(page, tmp_path / "slice_report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_a_link_can_sort_the_table_in_the_browser(content, page):
    dom = browser.Elements(browser.dump_dom(page, "#sort=-example_count"))
    rows = [element for element in dom.find("tr") if "data-slice" in element[1]]
    counts = {row["slice"]: row["examples"] for row in content["slices"]}
    shown = [counts[row[1]["data-slice"]] for row in rows]
    assert shown == sorted(shown, reverse=True)
    assert shown != [row["examples"] for row in content["slices"]]
