"""What a reader sees on a result page: provenance banner, formatted tables, MyST output.

The notebooks compute; these helpers only format. Every function returns text (MyST Markdown or
HTML) so that it can be tested without a notebook; :func:`show_md` and :func:`show_html` display
it. Markdown displayed from a code cell is parsed as MyST (``nb_render_markdown_format: myst`` in
``_config.yml``), so admonitions, ``{ref}`` roles and ``$math$`` work in it. HTML tables are used
for numbers: they can be glued into other pages (``{glue}`` with ``:doc:``), and their math is
written ``\\(...\\)``, which the book's math renderer typesets anywhere on the page.

Typical use in a notebook::

    before = report.stored_run_ids(out_dir, KIND)          # before training anything
    records = run_configs(...)
    report.show_md(report.provenance("paper", records, stored_before=before, results_dir=...))
    report.show_html(report.html_table(frame, columns={...}, formats={...}))
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ibcore.core import formatting
from ibcore.core.formatting import MISSING, _is_missing

# Number formatting lives in ibcore.core.formatting (the experiments use it too); the pages and
# the notebooks keep calling it as report.sig, report.beta_tex, ...
CELL_ORDER = formatting.CELL_ORDER
sig, mean_std, paper_order = formatting.sig, formatting.mean_std, formatting.paper_order
beta_tex, beta_html, beta_md = formatting.beta_tex, formatting.beta_html, formatting.beta_md
cell_name, cell_rank = formatting.cell_name, formatting.cell_rank


# -- inline markup -------------------------------------------------------------------------

_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline_html(text: Any) -> str:
    """Escape ``text`` for HTML, keeping its inline Markdown: ``$x$`` -> ``\\(x\\)``,
    `` `c` `` -> <code>, ``**b**`` -> <strong>, ``[t](u.ipynb)`` -> a link (u.html)."""
    text = html.escape(str(text), quote=False)
    text = _MATH.sub(lambda m: f"\\({m.group(1)}\\)", text)
    text = _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", text)
    text = _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", text)
    return _LINK.sub(lambda m: f'<a href="{_html_target(m.group(2))}">{m.group(1)}</a>', text)


def _html_target(url: str) -> str:
    """A link to a page's source (``x.ipynb``, ``x.md``, with an anchor) as its built page."""
    return re.sub(r"\.(ipynb|md)(?=$|#)", ".html", url)


# -- tables --------------------------------------------------------------------------------


def html_table(
    frame,
    columns: Mapping[str, str] | None = None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    *,
    missing: str | Mapping[str, str] = MISSING,
    numeric: Iterable[str] | None = None,
    css_class: str = "ib-table",
) -> str:
    """An HTML table of ``frame`` for readers: no index, the columns renamed by ``columns``
    (source name -> heading; only those shown, in that order), each cell formatted by
    ``formats[column]`` (default: :func:`sig` for numbers, the text otherwise, with inline
    Markdown kept), a missing value replaced by ``missing`` (one text, or one per column) so no
    NaN is shown. The table sits in a box that scrolls sideways when it is wider than the page.
    Numeric columns (all-number ones, or those named in ``numeric``) are right-aligned."""
    columns = dict(columns) if columns else {c: str(c) for c in frame.columns}
    formats = dict(formats or {})
    numeric = set(numeric or ())

    def why(col: str) -> str:
        return missing.get(col, MISSING) if isinstance(missing, Mapping) else missing

    def cell(col: str, value: Any) -> str:
        if col in formats:
            if _is_missing(value) and not isinstance(value, (list, tuple, dict)):
                return html.escape(why(col))
            return inline_html(formats[col](value)) if not _is_html(formats[col]) else formats[col](value)
        if _is_missing(value):
            return html.escape(why(col))
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (int, float)) or hasattr(value, "dtype"):
            try:
                return html.escape(sig(value))
            except (TypeError, ValueError):
                pass
        return inline_html(value)

    for col in columns:
        if (
            col not in formats
            and len(frame)
            and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) or _is_missing(v) for v in frame[col]
            )
        ):
            numeric.add(col)
    head = "".join(
        f'<th class="{"num" if c in numeric else "text"}">{inline_html(label)}</th>'
        for c, label in columns.items()
    )
    body = []
    for _, row in frame.iterrows():
        tds = "".join(
            f'<td class="{"num" if c in numeric else "text"}">{cell(c, row[c])}</td>' for c in columns
        )
        body.append(f"<tr>{tds}</tr>")
    return (
        f'<div class="ib-table-scroll"><table class="table {css_class}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def html_formatter(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """Mark a cell formatter of :func:`html_table` as returning HTML (not escaped)."""
    fn.__ib_html__ = True  # type: ignore[attr-defined]
    return fn


def _is_html(fn: Callable[[Any], str]) -> bool:
    return bool(getattr(fn, "__ib_html__", False))


def caption(label: str, text: str, name: str | None = None) -> str:
    """A MyST table/figure caption line: an anchor ``(name)=`` for ``{ref}`` and the bold label,
    e.g. ``caption("Table 1", "Test accuracy ...", "tbl-table1")``."""
    anchor = f"({name})=\n" if name else ""
    return f"{anchor}**{label}.** {text}"


# -- provenance ----------------------------------------------------------------------------


#: Environment variable in which ``python3 -m ibcore.pipeline`` records when the build started
#: (seconds since the epoch), so that runs its training workers stored before the notebooks
#: executed still count as trained in this build.
BUILD_STARTED_ENV = "IBCORE_BUILD_STARTED"


def stored_run_ids(results_dir: str | os.PathLike, kind: str, started: float | None = None) -> set[str]:
    """Run ids stored under ``results_dir/kind`` before this build (call before training, so
    that :func:`provenance` can tell runs read back from runs trained in this build). A record
    written after ``started`` (default: the time in ``$IBCORE_BUILD_STARTED``, set by the
    pipeline) was trained in this build and is left out."""
    folder = Path(results_dir) / kind
    if not folder.is_dir():
        return set()
    if started is None and os.environ.get(BUILD_STARTED_ENV):
        started = float(os.environ[BUILD_STARTED_ENV])
    return {
        p.stem
        for p in folder.glob("*.json")
        if "." not in p.stem and (started is None or p.stat().st_mtime < started)
    }


def _seeds(records: Sequence[Mapping[str, Any]]) -> list[int]:
    return sorted({int(r["config"]["seed"]) for r in records if "seed" in r.get("config", {})})


def _devices(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({str(r.get("environment", {}).get("device")) for r in records if r.get("environment")})


def provenance(
    profile: str,
    records: Sequence[Mapping[str, Any]],
    *,
    stored_before: set[str] | None = None,
    results_dir: str | None = None,
    what: str = "training runs",
    expected: int | None = None,
    extra: str = "",
    now: dt.datetime | None = None,
) -> str:
    """A MyST admonition that opens a result page: profile, number of runs and their seeds, the
    device(s) named in the records' environment, the date this page was executed, and whether
    the runs were read back (their ids in ``stored_before``) or trained in this build.
    ``expected``: runs the profile asks for, to say how many are missing; ``extra``: one more
    sentence (e.g. what the page measures on top of the runs)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    seeds = _seeds(records)
    devices = _devices(records)
    where = f" under `{results_dir}/`" if results_dir else ""
    parts = [f"**Profile `{profile}`** (`profiles/{profile}.yml`)"]
    count = f"{len(records)} {what}"
    if expected is not None and expected != len(records):
        count += f" of the {expected} the profile asks for ({expected - len(records)} missing)"
    if seeds:
        count += f", seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    parts.append(count)
    parts.append(f"device{'s' if len(devices) > 1 else ''}: {', '.join(devices)}" if devices else "no device")
    parts.append(f"page executed {now:%Y-%m-%d %H:%M} UTC")
    if stored_before is not None and records:
        trained = sum(1 for r in records if r.get("run_id") not in stored_before)
        if trained == 0:
            origin = f"all runs read back from the records stored{where}; none trained in this build"
        elif trained == len(records):
            origin = f"all runs trained in this build and stored{where}"
        else:
            origin = (
                f"{trained} trained in this build, {len(records) - trained} read back from the records "
                f"stored{where}"
            )
        parts.append(origin)
    return banner(*parts, extra=extra)


def banner(*facts: str, extra: str = "", title: str = "Where these numbers come from") -> str:
    """The MyST admonition of :func:`provenance` from ready-made ``facts`` (joined by ' · '),
    for pages whose numbers do not come from training runs (e.g. a benchmark record)."""
    body = " · ".join(f for f in facts if f) + "."
    if extra:
        body += " " + extra
    return f":::{{admonition}} {title}\n:class: note ib-provenance\n{body}\n:::"


# -- display -------------------------------------------------------------------------------


def show_md(text: str) -> None:
    """Display MyST Markdown from a code cell (rendered as MyST by the book's configuration)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_html(text: str) -> None:
    """Display an HTML fragment (a table of :func:`html_table`)."""
    from IPython.display import HTML, display

    display(HTML(text))


def glue_html(name: str, text: str) -> None:
    """Glue an HTML fragment under ``name`` (for ``{glue}`` on this page or with ``:doc:``)."""
    from IPython.display import HTML
    from myst_nb import glue

    glue(name, HTML(text), display=False)
