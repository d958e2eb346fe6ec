"""The reader-facing formatting of ibcore.report.pages: numbers, tables, banner."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from ibcore.report import pages as report


def test_sig_gives_three_significant_figures_and_never_nan():
    assert report.sig(97.834) == "97.8"
    assert report.sig(0.012345) == "0.0123"
    assert report.sig(1234.5) == "1230"
    assert report.sig(99.96) == "100"
    assert report.sig(2.0) == "2.00"
    assert report.sig(-0.5) == "−0.500"
    assert report.sig(7) == "7"
    assert report.sig(3.2e-7) == "3.20×10^−7"
    assert report.sig(float("inf")) == "∞"
    assert report.sig(float("nan")) == report.MISSING
    assert report.sig(None, missing="not in the paper") == "not in the paper"


def test_mean_std_and_beta():
    assert report.mean_std(97.834, 0.1234, 3) == "97.8 ± 0.12"
    assert report.mean_std(97.834, math.nan, 1) == "97.8 (1 seed)"
    assert report.mean_std(math.nan, 1.0, 3, missing="not run") == "not run"
    assert [report.beta_tex(b) for b in (0, 1e-4, 1e-3, 2e-3, 1, 10, 100)] == [
        "0",
        "10^{-4}",
        "10^{-3}",
        "2 \\times 10^{-3}",
        "1",
        "10",
        "10^{2}",
    ]
    assert report.beta_html(1e-3) == "\\(10^{-3}\\)"
    assert report.beta_md(0.0) == "0"


def test_cells_in_the_papers_order():
    frame = pd.DataFrame(
        {
            "dataset": ["cifar10", "mnist", "mnist", "synthetic"],
            "fraction": [1.0, 1.0, 0.01, 1.0],
            "v": [1, 2, 3, 4],
        }
    )
    ordered = report.paper_order(frame)
    assert list(ordered.v) == [3, 2, 1, 4]
    assert list(ordered.index) == [0, 1, 2, 3]
    assert [report.cell_name(d, f) for d, f in zip(ordered.dataset, ordered.fraction, strict=True)] == [
        "MNIST 1 %",
        "MNIST 100 %",
        "CIFAR-10",
        "synthetic",
    ]


def test_html_table_has_no_index_no_nan_and_scrolls():
    frame = pd.DataFrame(
        {"beta": [1e-3, 0.0], "acc": [97.834, math.nan], "name": ["**IB** $x$", "a<b"]}, index=[7, 8]
    )
    html = report.html_table(
        frame,
        {"name": "method", "beta": "β", "acc": "accuracy (%)"},
        {"beta": report.html_formatter(report.beta_html)},
        missing={"acc": "not run"},
    )
    assert html.startswith('<div class="ib-table-scroll">')
    assert "NaN" not in html and "nan" not in html
    assert "not run" in html and "97.8" in html
    assert "\\(10^{-3}\\)" in html and "<strong>IB</strong> \\(x\\)" in html and "a&lt;b" in html
    assert ">7<" not in html and ">8<" not in html  # no index
    assert html.index("method") < html.index("β") < html.index("accuracy")
    assert '<td class="num">97.8</td>' in html


def test_inline_html_links_point_to_built_pages():
    assert report.inline_html("[Table 1](table1.ipynb#x)") == '<a href="table1.html#x">Table 1</a>'


def test_provenance_banner_says_where_the_numbers_come_from(tmp_path, monkeypatch):
    monkeypatch.delenv(report.BUILD_STARTED_ENV, raising=False)  # a pipeline run in this process sets it
    (tmp_path / "table1").mkdir()
    (tmp_path / "table1" / "a.json").write_text("{}")
    (tmp_path / "table1" / "a.model.json").write_text("{}")
    before = report.stored_run_ids(tmp_path, "table1")
    assert before == {"a"}
    records = [
        {"run_id": "a", "config": {"seed": 1}, "environment": {"device": "cpu"}},
        {"run_id": "b", "config": {"seed": 0}, "environment": {"device": "cuda"}},
    ]
    now = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    text = report.provenance(
        "paper", records, stored_before=before, results_dir="results/paper", expected=3, now=now
    )
    assert text.startswith(":::{admonition}") and text.endswith(":::")
    for part in (
        "`paper`",
        "2 training runs of the 3",
        "1 missing",
        "seeds 0, 1",
        "devices: cpu, cuda",
        "2026-01-02 03:04",
    ):
        assert part in text, part
    assert "1 trained in this build, 1 read back" in text
    assert report.stored_run_ids(tmp_path, "table1", started=0.0) == set()  # written after: trained now
    assert "none trained" in report.provenance("tiny", records[:1], stored_before=before)
    assert "all runs trained" in report.provenance("tiny", records[1:], stored_before=before)


def test_citation_file_cites_the_paper_and_this_companion():
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf8"))
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Direct Validation of the Information Bottleneck Principle for Deep Nets"
    assert [a["family-names"] for a in paper["authors"]] == ["Elad", "Haviv", "Blau", "Michaeli"]
    assert cff["repository-code"] == config["repository"]["url"]
    assert config["html"]["use_repository_button"] and config["launch_buttons"]["binderhub_url"]
