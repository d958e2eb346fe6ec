"""Exact (Bhattacharyya, pairwise-KL) bounds of I(X; L_i + eps) of runs whose weights are stored,
cached beside the records in ``model_bounds.json`` (:mod:`ibcore.experiments.infoplane`)."""

from __future__ import annotations

from typing import Any

import torch

from ibcore.experiments.infoplane_status import eval_n

#: Beside the records: exact bounds of I(X; L_i + eps) of runs whose weights are stored.
MODEL_BOUNDS_FILE = "model_bounds.json"
MODEL_BOUNDS_VERSION = 1


def model_bounds(record: dict[str, Any], results_dir, data_dir: str | None = None) -> dict[str, Any]:
    """Exact (Bhattacharyya, pairwise-KL) bounds of I(X; L_i + eps) at the end of a run whose
    weights are stored (``<record>.model.pt``), for each trained layer, with X uniform over the
    record's N evaluation samples (the first min(n_train, 2048) of its training subset), as the
    record's final DV values were. CPU, seconds."""
    from ibcore.core.bounds import mixture_mi_bounds
    from ibcore.core.config import TrainConfig
    from ibcore.core.data import load_dataset
    from ibcore.experiments import table1

    config = TrainConfig.from_dict(record["config"])
    source = record.get("data_source") or {}
    data = load_dataset(
        config.dataset, data_dir=data_dir, fraction=config.fraction, subset_seed=source.get("subset_seed", 0)
    )
    n = eval_n(record)
    model = table1.load_model(config, results_dir, kind=record["kind"])
    model.eval()
    with torch.no_grad():
        reps = model.representations(data.x_train[:n])
    trained = config.max_layers or len(model)
    layers = {}
    for i in range(1, trained + 1):
        lo, hi = mixture_mi_bounds(reps[i - 1], config.sigma**2)
        layers[str(i)] = {"lower": lo, "upper": hi}
    return {"n": n, "sigma": config.sigma, "layers": layers, "beta": float(config.beta), "seed": config.seed}


def load_model_bounds(results_dir) -> dict[str, dict[str, Any]]:
    """The stored bounds of :func:`ensure_model_bounds`, by run id ({} when none)."""
    import json
    from pathlib import Path

    path = Path(results_dir) / MODEL_BOUNDS_FILE
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return data.get("runs", {}) if data.get("version") == MODEL_BOUNDS_VERSION else {}


def ensure_model_bounds(results_dir, kind: str, data_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """:func:`model_bounds` of every record of ``kind`` under ``results_dir`` with stored weights,
    read from ``results_dir/model_bounds.json``; missing ones are computed and the file rewritten."""
    import json
    from pathlib import Path

    from ibcore.core.results import load_records, record_path

    results_dir = Path(results_dir)
    known = load_model_bounds(results_dir)
    runs = dict(known)
    for r in load_records(results_dir, kind):
        if r["run_id"] in runs:
            continue
        if not record_path(results_dir, kind, r["config"]).with_suffix(".model.pt").is_file():
            continue
        runs[r["run_id"]] = {"kind": kind, **model_bounds(r, results_dir, data_dir)}
    if len(runs) != len(known):
        payload = {
            "version": MODEL_BOUNDS_VERSION,
            "description": "Exact bounds of I(X; L_i + eps) at the end of runs whose weights are stored "
            "(ibcore.experiments.infoplane.model_bounds), by run id.",
            "runs": dict(sorted(runs.items())),
        }
        (results_dir / MODEL_BOUNDS_FILE).write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    return runs
