"""The benchmark (ibcore.bench) in its quick size: it runs, and writes a well-formed record."""

from __future__ import annotations

import json
import math
import statistics
import time

import pytest

from ibcore import bench


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick benchmark (both nets, both estimators) against a fake results folder."""
    root = tmp_path_factory.mktemp("bench")
    results = root / "results"
    (results / "tiny").mkdir(parents=True)
    (results / "tiny" / "pipeline_timings.json").write_text(
        json.dumps(
            {
                "profile": "tiny",
                "started": "2026-01-01T00:00:00+00:00",
                "finished": "2026-01-01T00:01:00+00:00",
                "status": "complete",
                "host": {"python": "3.11", "platform": "Linux", "cpus": 2},
                "notebooks": {"table1": {"status": "executed", "seconds": 12.5, "finished": "x"}},
                "notebooks_s": 20.0,
                "book_s": 30.0,
                "total_s": 50.0,
            }
        )
    )
    (results / "default").mkdir()
    (results / "default" / "pipeline_timings.json").write_text("{not json")  # unreadable: skipped
    start = time.perf_counter()
    record = bench.run_benchmark("cpu", quick=True, threads=1, results_root=results, log=lambda _: None)
    seconds = time.perf_counter() - start
    path = bench.write_record(record, root / "out", "quick")
    return record, path, seconds


def test_quick_benchmark_is_quick(quick_run):
    _, _, seconds = quick_run
    assert seconds < 30, f"the quick benchmark took {seconds:.1f} s"


def test_record_is_well_formed_json(quick_run):
    record, path, _ = quick_run
    assert path.name == "quick.json" and path.is_file()
    assert not list(path.parent.glob("*.tmp"))  # written through a temporary file and a rename
    stored = json.loads(path.read_text())
    assert stored == json.loads(json.dumps(record))
    assert stored["kind"] == "bench" and stored["settings"]["quick"] is True
    machine = stored["machine"]
    for key in ("cpu", "cpus", "torch", "device", "threads", "platform"):
        assert machine[key], key
    assert machine["device"] == "cpu" and machine["threads"] == 1
    assert stored["date"].endswith("+00:00")
    assert stored["memory"]["peak_rss_mib"] > 0
    assert (path.parent / "quick.md").read_text().startswith("Benchmark of ")


def test_record_times_every_layer_of_both_nets(quick_run):
    record, _, _ = quick_run
    rows = record["training_steps"]
    for net, layers in (("mnist_mlp", 3), ("cifar10_convnet", 4)):
        ce = [r for r in rows if r["net"] == net and r["step"] == "ce"]
        assert len(ce) == 1 and ce[0]["ratio_to_ce"] == 1.0
        cases = [c for c in bench.CASES if c[1] == "tied" or net in bench.PENALTY_NETS]
        assert len(cases) == (3 if net == "mnist_mlp" else 2)  # the paper's AA-MINE penalty on MNIST
        assert len(ce[0]["rounds_s"]) == len(cases) * layers * record["settings"]["rounds"]  # one per IB
        for beta, penalty in cases:
            ib = [
                r
                for r in rows
                if r["net"] == net and r["step"] == "ib" and r["beta"] == beta and r["penalty"] == penalty
            ]
            assert [r["layer"] for r in ib] == list(range(1, layers + 1))
            for r in ib:
                assert r["batch_size"] == 128
                assert math.isfinite(r["median_s"]) and r["median_s"] > 0
                assert len(r["ratios"]) == len(r["rounds_s"]) == record["settings"]["rounds"]
                assert r["ratio_to_ce"] == pytest.approx(statistics.median(r["ratios"]))
                assert r["peak_rss_mib"] > 0


def test_record_has_estimator_rates_and_pipeline_times(quick_run):
    record, _, _ = quick_run
    est = {(r["estimator"], r["batch_size"]) for r in record["estimators"]}
    assert est == {(e, b) for e in ("mine", "aamine") for b in (128, 256)}
    assert all(r["steps_per_s"] > 0 and r["widths"] == [784, 256, 128, 64] for r in record["estimators"])
    assert set(record["pipeline"]) == {"tiny"}  # the unreadable default file is skipped
    tiny = record["pipeline"]["tiny"]
    assert tiny["total_s"] == 50.0 and tiny["notebooks"]["table1"]["seconds"] == 12.5


def test_tables_for_the_book_page(quick_run):
    record, path, _ = quick_run
    records = bench.read_records(path.parent)
    assert list(records) == ["quick"]
    wide = bench.training_frame(record)
    assert len(wide) == 7 and "IB / CE (beta=0.001)" in wide.columns
    assert "IB / CE (aamine, beta=0.001)" in wide.columns
    # operations per iteration (kernel launches on a GPU): an IB step issues several times CE's
    assert all(r["ops_per_iteration"] > 0 for r in record["training_steps"])
    mlp = wide[wide.net == "mnist_mlp"]
    assert (mlp["IB ops (beta=0.001)"] > 2 * mlp["CE ops"]).all()
    assert (mlp["IB ops (aamine, beta=0.001)"] > mlp["IB ops (beta=0.001)"]).all()
    aamine = wide[wide.net == "mnist_mlp"]["IB ms (aamine, beta=0.001)"]
    assert (
        aamine.notna().all()
        and wide[wide.net == "cifar10_convnet"]["IB ms (aamine, beta=0.001)"].isna().all()
    )
    assert len(bench.estimator_frame(record)) == 4
    assert "(whole job)" in set(bench.pipeline_frame(record["pipeline"]).notebook)
    same = bench.speedups(record, record)
    assert (same["speed-up"] == 1.0).all()


def test_records_before_the_penalty_rows_still_read(quick_run):
    """A stored record from before the penalty was timed (no "penalty" in its rows) reads as tied."""
    record, _, _ = quick_run
    old = {**record, "training_steps": []}
    for r in record["training_steps"]:
        if r.get("penalty", "tied") == "tied":
            old["training_steps"].append({k: v for k, v in r.items() if k != "penalty"})
    wide = bench.training_frame(old)
    assert "IB ms (beta=0.001)" in wide.columns and not any("aamine" in c for c in wide.columns)
    assert len(bench.speedups(old, record)) == len(bench.speedups(old, old))


def test_cli_rejects_an_absent_device(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert bench.main(["--device", "cuda", "--quick", "--out", "/nonexistent/never-written"]) == 1
    assert "no CUDA GPU is present" in capsys.readouterr().err


def test_unknown_net_is_refused():
    with pytest.raises(ValueError, match="unknown net"):
        bench.run_benchmark("cpu", quick=True, nets=["resnet"])


def test_grouped_benchmark_quick(tmp_path):
    """One at a time vs grouped on a quick beta-sweep cell: a well-formed record naming the
    device, runs per hour from the measured seconds, and the same accuracies both ways."""
    record = bench.bench_grouped("cpu", steps=6, quick=True, threads=1, log=lambda _: None)
    assert record["kind"] == bench.GROUPED_KIND and record["machine"]["device"] == "cpu"
    runs = record["settings"]["runs"]
    assert runs == len(bench.grouped_cell(6, quick=True)) >= 2
    for way in ("single", "grouped"):
        assert record[way]["runs_per_hour"] == pytest.approx(3600 * runs / record[way]["seconds"])
    assert record["speedup"] == pytest.approx(record["single"]["seconds"] / record["grouped"]["seconds"])
    assert record["max_accuracy_difference"] <= 2e-3
    assert len(record["rounding_accuracy_difference"]) == runs
    assert record["max_rounding_accuracy_difference"] == max(record["rounding_accuracy_difference"]) >= 0
    (tmp_path / "grouped_cpu.json").write_text(json.dumps(record))
    (tmp_path / "other.json").write_text(json.dumps({"kind": "bench"}))  # not a grouped record
    found = bench.read_grouped(tmp_path)
    assert list(found) == ["grouped_cpu"]
    frame = bench.grouped_frame(found)
    assert frame["speed-up"].iloc[0] == pytest.approx(record["speedup"])
    assert frame["max rounding diff"].iloc[0] == record["max_rounding_accuracy_difference"]
