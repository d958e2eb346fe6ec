"""Fast tests of ibcore.orchestration.pipeline and of the book configuration (a few seconds of
kernel time)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from ibcore.core.profiles import ProfileError
from ibcore.orchestration import book, pipeline
from ibcore.orchestration.pipeline import PipelineError

REPO = Path(__file__).resolve().parent.parent
PROFILES = ("tiny", "default", "paper")


def make_notebook(path: Path, body: str) -> None:
    """A two-cell notebook: a ``parameters`` cell (x = 1, profile) and ``body``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1\nprofile = 'none'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def make_root(tmp_path: Path, profile: str, stems: dict[str, dict]) -> Path:
    """A throwaway repository root with ``profiles/<profile>.yml`` listing ``stems``."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / f"{profile}.yml").write_text(yaml.safe_dump(stems, sort_keys=False))
    return tmp_path


# -- profiles ------------------------------------------------------------------------------


def test_unknown_profile_names_the_available_ones(tmp_path):
    root = make_root(tmp_path, "alpha", {"a": {}})
    (root / "profiles" / "beta.yml").write_text("b: {}\n")
    with pytest.raises(PipelineError, match=r"unknown profile 'nope'; available profiles: alpha, beta"):
        pipeline.load_profile("nope", root / "profiles")


def test_unknown_profile_in_repo_lists_the_three_profiles():
    with pytest.raises(PipelineError) as info:
        pipeline.load_profile("does-not-exist")
    for name in PROFILES:
        assert name in str(info.value)


def test_cli_unknown_profile_exits_nonzero_with_message(tmp_path, capsys):
    root = make_root(tmp_path, "alpha", {"a": {}})
    assert pipeline.main(["--profile", "nope", "--no-book"], root=root) == 1
    assert "available profiles: alpha" in capsys.readouterr().err


def test_profile_parsing_keeps_the_file_order(tmp_path):
    stems = {"zeta": {"n": 1}, "alpha": None, "mid": {"device": "cpu"}}
    root = make_root(tmp_path, "p", stems)
    profile = pipeline.load_profile("p", root / "profiles")
    assert list(profile) == ["zeta", "alpha", "mid"]
    assert profile["alpha"] == {}
    assert pipeline.select_stems(profile, ["mid", "zeta"], "p") == ["zeta", "mid"]
    with pytest.raises(ProfileError, match="not in profile 'p'"):
        pipeline.select_stems(profile, ["other"], "p")


@pytest.mark.parametrize("bad", ["- a\n- b\n", "nbs/a.ipynb: {}\n", "a: [1, 2]\n", "a: {b: [\n"])
def test_malformed_profile_is_a_clear_error(tmp_path, bad):
    (tmp_path / "bad.yml").write_text(bad)
    with pytest.raises(PipelineError, match="bad.yml"):
        pipeline.load_profile("bad", tmp_path)


@pytest.mark.parametrize("name", PROFILES)
def test_repository_profiles(name):
    profile = pipeline.load_profile(name)
    assert list(profile)[:2] == ["fig1_estimators", "table1"]
    for stem, params in profile.items():
        assert params["profile"] == name, stem
        assert params["results_dir"] == f"results/{name}", stem


def test_parameters_defaults_profile_and_overrides():
    params = pipeline.notebook_parameters("tiny", {"steps": 5}, {"device": "cpu", "data_dir": None})
    assert params == {"profile": "tiny", "results_dir": "results/tiny", "steps": 5, "device": "cpu"}


# -- execution -----------------------------------------------------------------------------


def test_run_executes_atomically_and_records_timings(tmp_path, capsys):
    root = make_root(tmp_path, "t", {"first": {"x": 41}, "missing": {}, "second": {}})
    make_notebook(
        root / "nbs" / "first.ipynb",
        "import os\nprint('x+1 =', x + 1, profile)\nopen('cwd.txt', 'w').write(os.getcwd())",
    )
    make_notebook(root / "nbs" / "second.ipynb", "y = x * 2")
    assert pipeline.main(["--profile", "t", "--no-book", "--no-progress", "--device", "cpu"], root=root) == 0
    out = capsys.readouterr().out
    assert "missing.ipynb does not exist yet; skipping 'missing'" in out

    generated = root / "book" / "generated"
    executed = nbformat.read(generated / "first.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "x+1 = 42 t" in text
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'device = "cpu"' in injected[0].source
    assert (root / "cwd.txt").read_text() == str(root)  # cwd = repository root
    assert (generated / "second.ipynb").is_file()
    assert not list(generated.glob(".*tmp*")) and not (generated / "missing.ipynb").exists()
    # 'missing' was not executed, so this is no full build of the profile: run_info.md is not written
    assert not (generated / pipeline.RUN_INFO_NAME).exists()
    assert "did not execute every notebook of profile 't' (not executed: missing)" in out

    timings = json.loads((root / "results" / "t" / pipeline.TIMINGS_NAME).read_text())
    assert timings["profile"] == "t" and timings["overrides"] == {"device": "cpu"}
    assert timings["notebooks"]["first"]["status"] == "executed"
    assert timings["notebooks"]["first"]["seconds"] > 0
    assert timings["notebooks"]["missing"]["status"].startswith("skipped")
    assert timings["total_s"] >= timings["notebooks"]["first"]["seconds"]


def test_failing_notebook_names_the_cell_and_keeps_the_previous_page(tmp_path):
    root = make_root(tmp_path, "t", {"bad": {}})
    make_notebook(root / "nbs" / "bad.ipynb", "raise ValueError('boom from the test')")
    page = root / "book" / "generated" / "bad.ipynb"
    page.parent.mkdir(parents=True)
    page.write_text("previous page")
    with pytest.raises(PipelineError) as info:
        pipeline.run_notebooks("t", root=root, progress=False, log=lambda _: None)
    message = str(info.value)
    assert "bad.ipynb" in message and "cell 2" in message and "ValueError: boom from the test" in message
    assert page.read_text() == "previous page"
    assert (page.parent / "bad.failed.ipynb").is_file()
    assert not list(page.parent.glob(".*tmp*"))
    timings = json.loads((root / "results" / "t" / pipeline.TIMINGS_NAME).read_text())
    assert timings["status"] == "failed" and timings["notebooks"]["bad"]["status"] == "failed"


# -- book configuration --------------------------------------------------------------------


def test_toc_lists_the_pages_in_order_and_static_pages_exist():
    files = book.toc_files(REPO)
    assert files[:4] == [
        "book/intro",
        "book/method",
        "book/generated/fig1_estimators",
        "book/generated/table1",
    ]
    assert files[-1] == "book/bibliography"
    missing = [f for f in book.missing_toc_files(REPO) if not f.startswith("book/generated/")]
    assert missing == []


def test_build_book_refuses_missing_generated_pages(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: book/generated/x\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    with pytest.raises(PipelineError, match=r"book/generated/x \(run the notebook nbs/x.ipynb"):
        book.build_book(tmp_path, log=lambda _: None)


def test_config_is_offline_and_strict():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    for pattern in ("nbs", "results", "README.md", "_build"):
        assert pattern in config["exclude_patterns"]
    extensions = config["sphinx"]["config"]["extensions"]
    assert "sphinx.ext.intersphinx" not in extensions and "sphinx_thebe" not in extensions
    assert "sphinxcontrib.bibtex" in extensions
    assert config["launch_buttons"]["thebe"] is False
    # launch buttons are plain links; the math renderer is served with the book, not from a CDN
    mathjax_path = str(config["sphinx"]["config"]["mathjax_path"])
    assert not mathjax_path.startswith(("http:", "https:", "//"))
    static = [REPO / d for d in config["sphinx"]["config"]["html_static_path"]]
    assert any((d / mathjax_path).is_file() for d in static), mathjax_path


def test_references_hold_the_papers_fifteen_and_are_cited_correctly():
    bib = (REPO / "book" / "references.bib").read_text()
    keys = re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M)
    assert len(keys) == len(set(keys)) == 16  # the 15 references and the paper itself
    pages = "".join(p.read_text() for p in (REPO / "book").glob("*.md"))
    cited = set(re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", pages))
    cited = {k.strip() for group in cited for k in group.split(",")}
    assert cited <= set(keys), cited - set(keys)
    assert "{bibliography}" in (REPO / "book" / "bibliography.md").read_text()
