"""Profiles and notebook parameters: the one source of the parameters of every run.

A profile is ``profiles/<name>.yml``: a mapping from notebook stems (``nbs/<stem>.py``, in
execution order) to the parameters of that notebook. A notebook's own defaults are the
``name = literal`` lines of its cell tagged ``parameters``, read here with :mod:`ast` (as
papermill sees them, without importing papermill). The orchestration layer uses these to list
the runs of a profile; the report layer uses them to check a notebook's parameters and to read
the parameters of another notebook of the same profile.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "profiles"

#: Parameters the pipeline passes to every notebook, declared or not.
PIPELINE_PARAMS = frozenset({"profile", "results_dir"})


class ProfileError(RuntimeError):
    """A profile or notebook-parameters problem, with a message meant for the user."""


# -- profiles ------------------------------------------------------------------------------


def available_profiles(profiles_dir: str | os.PathLike = PROFILES_DIR) -> list[str]:
    """Names of the profiles in ``profiles_dir`` (files ``<name>.yml``), sorted."""
    return sorted(p.stem for p in Path(profiles_dir).glob("*.yml") if p.is_file())


def load_profile(name: str, profiles_dir: str | os.PathLike = PROFILES_DIR) -> dict[str, dict[str, Any]]:
    """The notebooks of profile ``name``: an ordered ``{stem: papermill parameters}``.

    An unknown profile raises :class:`ProfileError` naming the available ones; a malformed
    file raises it naming the file and the offending entry.
    """
    profiles_dir = Path(profiles_dir)
    path = profiles_dir / f"{name}.yml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        known = ", ".join(available_profiles(profiles_dir)) or "(none)"
        raise ProfileError(
            f"unknown profile {name!r}; available profiles: {known} (files {profiles_dir}/<name>.yml)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf8"))
    except yaml.YAMLError as err:
        raise ProfileError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict) or not data:
        raise ProfileError(f"{path} must map notebook stems to parameter dicts, got {type(data).__name__}")
    profile: dict[str, dict[str, Any]] = {}
    for stem, params in data.items():
        if not isinstance(stem, str) or not stem or "/" in stem or stem.endswith(".ipynb"):
            raise ProfileError(f"{path}: {stem!r} is not a notebook stem (write fig1_estimators, not a path)")
        if params is None:
            params = {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise ProfileError(f"{path}: the parameters of {stem!r} must be a mapping name -> value")
        profile[stem] = dict(params)
    return profile


def notebook_parameters(
    profile_name: str, params: dict[str, Any], overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Parameters passed to one notebook: ``profile`` and ``results_dir`` (defaults), the
    profile's own entries, then the command-line ``overrides`` (device, data_dir)."""
    out: dict[str, Any] = {"profile": profile_name, "results_dir": f"results/{profile_name}"}
    out.update(params)
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return out


def select_stems(
    profile: dict[str, dict[str, Any]], only: Sequence[str] | None, profile_name: str
) -> list[str]:
    """Stems to run, in profile order; ``only`` restricts them and must name profile stems."""
    if not only:
        return list(profile)
    unknown = [s for s in only if s not in profile]
    if unknown:
        raise ProfileError(
            f"--only {' '.join(unknown)}: not in profile {profile_name!r}, whose notebooks are "
            f"{', '.join(profile)}"
        )
    return [s for s in profile if s in set(only)]


# -- notebook parameters cells -------------------------------------------------------------

_CELL = re.compile(r"^# %%(.*)$")


def parameters_cell(path: str | os.PathLike) -> str:
    """The source of the cell tagged ``parameters`` of a notebook: of a jupytext percent-format
    text source (``.py``) or of an ``.ipynb`` file; "" when it has none."""
    path = Path(path)
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
                src = cell.get("source", "")
                return "".join(src) if isinstance(src, list) else src
        return ""
    lines: list[str] | None = None
    for line in path.read_text(encoding="utf8").splitlines():
        marker = _CELL.match(line)
        if marker:
            if lines is not None:
                break
            tags = re.search(r"tags\s*=\s*(\[[^\]]*\])", marker.group(1))
            if tags and "parameters" in ast.literal_eval(tags.group(1)):
                lines = []
        elif lines is not None:
            lines.append(line)
    return "\n".join(lines or [])


def notebook_defaults(path: str | os.PathLike) -> dict[str, Any]:
    """The values of the parameters cell of a notebook (``name = literal`` lines, read with
    :mod:`ast`, as papermill sees them); raises ValueError for a value that is no literal."""
    out: dict[str, Any] = {}
    try:
        tree = ast.parse(parameters_cell(path))
    except SyntaxError as err:
        raise ValueError(
            f"{path}: the parameters cell is not valid Python ({err.msg}, line {err.lineno})"
        ) from None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            try:
                out[target.id] = ast.literal_eval(value)
            except ValueError:
                raise ValueError(
                    f"{path}: parameter {target.id} = {ast.unparse(value)} is not a literal"
                ) from None
    return out


def notebook_source(nbs_dir: Path, stem: str) -> Path:
    """``nbs_dir/<stem>.py`` (the text source) when it exists, else ``nbs_dir/<stem>.ipynb``."""
    text = Path(nbs_dir) / f"{stem}.py"
    return text if text.is_file() else Path(nbs_dir) / f"{stem}.ipynb"


def check_parameter_names(
    stem: str, source: str | os.PathLike, given: dict[str, Any], known: Iterable[str]
) -> None:
    """Raise ValueError when the profile passes notebook ``stem`` a parameter its parameters
    cell does not declare (papermill would only warn and run with the default)."""
    known = set(known)
    unknown = sorted(set(given) - known - PIPELINE_PARAMS)
    if unknown:
        raise ValueError(
            f"notebook {stem!r} ({source}) has no parameter(s) {', '.join(unknown)}; "
            f"its parameters are: {', '.join(sorted(known))}"
        )
