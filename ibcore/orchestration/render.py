"""Execute one notebook with papermill into a page of the book, atomically.

The executed notebook is written to a temporary file beside its page and renamed over it on
success, so a crash never leaves a half-written page; the cells holding the parameters are
hidden from the book. A failing cell is named in one :class:`PipelineError` message.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ibcore.orchestration.errors import PipelineError
from ibcore.orchestration.timings import _make_readable

KERNEL_NAME = "python3"


def _execute(
    input_path: Path, output_path: Path, parameters: dict[str, Any], cwd: Path, progress: bool
) -> None:
    import papermill

    papermill.execute_notebook(
        str(input_path),
        str(output_path),
        parameters=parameters,
        kernel_name=KERNEL_NAME,
        progress_bar=progress,
        cwd=str(cwd),
    )


#: Tags of the cells papermill reads or writes the parameters in; the book does not show them.
PARAMETER_TAGS = ("parameters", "injected-parameters")


def hide_parameter_cells(path: Path) -> int:
    """Tag the parameter cells of the executed notebook ``path`` ``remove-cell`` (papermill's
    injected cell carries only its own tag); returns how many cells were tagged."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in PARAMETER_TAGS) and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
            changed += 1
    if changed:
        nbformat.write(nb, path)
    return changed


def execute_notebook(
    input_path: Path,
    output_path: Path,
    parameters: dict[str, Any],
    cwd: Path,
    progress: bool = True,
) -> float:
    """Execute ``input_path`` into ``output_path`` atomically; returns the wall time in seconds.

    papermill writes a temporary file beside ``output_path``, renamed over it on success. On an
    error the previous ``output_path`` stays as it was, the failed notebook is kept as
    ``<stem>.failed.ipynb`` for inspection, and :class:`PipelineError` names the notebook and
    the failing cell.
    """
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=output_path.parent, prefix=f".{output_path.stem}.", suffix=".tmp.ipynb"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    failed = output_path.with_name(f"{output_path.stem}.failed.ipynb")
    start = time.perf_counter()
    try:
        _execute(input_path, tmp, parameters, cwd, progress)
    except PapermillExecutionError as err:
        try:
            if tmp.is_file() and tmp.stat().st_size:
                os.replace(tmp, failed)
        except OSError:  # cleanup must never mask the notebook's own error
            failed = tmp
        where = f"cell {err.cell_index} of the executed notebook" + (
            f" (In [{err.exec_count}])" if err.exec_count else ""
        )
        source = "\n".join("    " + line for line in str(err.source).strip().splitlines()[:8])
        raise PipelineError(
            f"notebook {input_path} failed in {where}: {err.ename}: {err.evalue}\n"
            f"  cell source:\n{source}\n"
            f"  the executed notebook with the traceback is {failed}"
        ) from err
    except DeadKernelError:
        raise PipelineError(
            f"the kernel executing notebook {input_path} died (killed, e.g. out of memory, or crashed); "
            "the runs it finished are stored: rerun to resume, with fewer --workers or a smaller profile "
            "if memory ran out"
        ) from None
    else:
        hide_parameter_cells(tmp)
        _make_readable(tmp)
        os.replace(tmp, output_path)
        failed.unlink(missing_ok=True)
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return time.perf_counter() - start
