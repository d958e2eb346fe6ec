"""ibcore.core.training and the checks before work starts: frozen layers, a probe on frozen features,
determinism, resumption from a checkpoint, NaN estimates, bad parameters."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch

import ibcore.core.critics
import ibcore.core.ib_checkpoint
import ibcore.core.probes
import ibcore.core.train_ib
import ibcore.core.training
import ibcore.experiments.table1
from ibcore.core.config import TrainConfig
from ibcore.core.runtime import resolve_device
from ibcore.core.training import make_model, probe_accuracies, train

CPU = torch.device("cpu")


class Interrupted(Exception):
    """Stands for a kill of the process."""


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_timings(curves: dict) -> dict:
    """The curves without wall-clock seconds (the IB trainer keeps each layer's in its curve)."""
    curves = copy.deepcopy(curves)
    for record in curves.get("layers", []):
        record.pop("seconds", None)
    return curves


def interrupt_after_save(monkeypatch, n: int) -> dict:
    """Let the trainers' checkpointer write ``n`` checkpoints, then raise ``Interrupted``."""
    real = ibcore.core.training.Checkpointer.save
    count = {"saves": 0}

    def save(self, state):
        real(self, state)
        if self.path is not None:
            count["saves"] += 1
            if count["saves"] == n:
                raise Interrupted(f"killed after checkpoint {n}")

    monkeypatch.setattr(ibcore.core.training.Checkpointer, "save", save)
    return count


# -- layer-wise training -------------------------------------------------------------------


def test_layer_is_frozen_while_the_next_trains(mnist_small, tiny_config):
    """Train the first k layers for k = 1, 2, 3 with one seed: layer i is the same after k = i
    as after the whole run, although every layer did change from its initial value."""
    init = [weights(b) for b in make_model(tiny_config(), mnist_small).blocks]
    runs = {
        k: train(tiny_config(beta=1e-3, max_layers=k), mnist_small, CPU, progress=False)["model"]
        for k in (1, 2, 0)
    }
    full = runs[0]
    for i in range(3):
        assert not same_weights(weights(full.blocks[i]), init[i]), f"layer {i + 1} never trained"
    assert same_weights(weights(runs[1].blocks[0]), weights(full.blocks[0]))
    assert same_weights(weights(runs[2].blocks[0]), weights(full.blocks[0]))
    assert same_weights(weights(runs[2].blocks[1]), weights(full.blocks[1]))
    # layers after max_layers stay at their initial values
    assert same_weights(weights(runs[1].blocks[1]), init[1])
    assert same_weights(weights(runs[1].blocks[2]), init[2])
    assert same_weights(weights(runs[2].blocks[2]), init[2])


def test_layer_checkpoints_show_earlier_layers_frozen(mnist_small, tiny_config, monkeypatch, tmp_path):
    """Every checkpoint written while layer i trains holds layers 1..i-1 as they ended."""
    saved: list[dict] = []
    real = ibcore.core.training.Checkpointer.save

    def save(self, state):
        saved.append({"layer": state["layer"], "step": state["step"], "model": copy.deepcopy(state["model"])})
        real(self, state)

    monkeypatch.setattr(ibcore.core.training.Checkpointer, "save", save)
    out = train(tiny_config(), mnist_small, CPU, checkpoint=tmp_path / "run.ckpt.pt", progress=False)
    final = out["model"].state_dict()
    assert {s["layer"] for s in saved} >= {1, 2, 3}
    for s in saved:
        # layers strictly before the one in training (at step 0, "layer" is the next one)
        earlier = [k for k in final if int(k.split(".")[1]) < s["layer"] - 1]
        assert len(earlier) == 2 * (s["layer"] - 1)  # a weight and a bias a layer
        for key in earlier:
            assert torch.equal(s["model"][key], final[key]), (s["layer"], s["step"], key)


def test_probe_reads_frozen_features(mnist_small, tiny_config):
    net = make_model(tiny_config(), mnist_small).prefix(2)
    before = weights(net)
    assert all(p.requires_grad for p in net.parameters())
    train_acc, test_acc = probe_accuracies(net, mnist_small, 5, 1e-2, torch.Generator().manual_seed(0))
    assert 0 <= train_acc <= 1 and 0 <= test_acc <= 1
    assert same_weights(weights(net), before)
    assert all(p.grad is None for p in net.parameters())


def test_trainer_probes_see_only_frozen_features(mnist_small, tiny_config, monkeypatch):
    """In the IB trainer, every probe (checkpoint and final) leaves the net and its gradients as
    they were and trains on features without autograd history equal to the net's output; at the
    final probe no parameter of the net requires a gradient."""
    real_probe = ibcore.core.train_ib.probe_accuracies
    real_linear = ibcore.core.probes.train_linear_probe
    calls = []

    def linear(train_features, *args, **kwargs):
        calls[-1]["features"] = train_features
        return real_linear(train_features, *args, **kwargs)

    def probe(net, data, steps, lr, gen, train_features=None):
        params = list(net.parameters())
        before = weights(net)
        grads = [None if p.grad is None else p.grad.clone() for p in params]
        calls.append({"steps": steps, "requires_grad": [p.requires_grad for p in params]})
        out = real_probe(net, data, steps, lr, gen, train_features=train_features)
        assert same_weights(weights(net), before), "the probe changed the net"
        for p, g in zip(params, grads, strict=True):
            assert (p.grad is None and g is None) or torch.equal(p.grad, g), "the probe touched a gradient"
        with torch.no_grad():
            want = net(data.x_train).flatten(1)
        assert not calls[-1]["features"].requires_grad
        torch.testing.assert_close(calls[-1]["features"], want, rtol=0, atol=0)  # reused == recomputed
        return out

    # where the IB loop looks them up: its checkpoints, and the final probe
    monkeypatch.setattr(ibcore.core.ib_checkpoint, "probe_accuracies", probe)
    monkeypatch.setattr(ibcore.core.train_ib, "probe_accuracies", probe)
    monkeypatch.setattr(ibcore.core.probes, "train_linear_probe", linear)
    train(tiny_config(probe_steps=5, checkpoint_probe_steps=2), mnist_small, CPU, progress=False)
    assert [c["steps"] for c in calls] == [2, 2] * 3 + [5]
    assert not any(calls[-1]["requires_grad"])


# -- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_same_seed_same_record_other_seed_differs(mnist_small, tiny_config, method):
    runs = [
        train(tiny_config(method=method, beta=0.0 if method == "ce" else 1e-3, seed=s), mnist_small, CPU,
              progress=False)
        for s in (0, 0, 1)
    ]  # fmt: skip
    a, b, c = runs
    assert a["metrics"] == b["metrics"]
    assert without_timings(a["curves"]) == without_timings(b["curves"])
    assert same_weights(weights(a["model"]), weights(b["model"]))
    assert a["metrics"] != c["metrics"]
    assert not same_weights(weights(a["model"]), weights(c["model"]))


# -- resumption ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "interrupt_at"),
    [("ib", 1), ("ib", 3), ("ib", 5), ("ce", 1), ("ce-measured", 1)],
    ids=["ib-mid-layer-1", "ib-end-of-layer-1", "ib-mid-layer-2", "ce-mid-run", "ce-measured-mid-run"],
)
def test_interrupted_run_resumes_to_the_same_result(
    mnist_small, tiny_config, monkeypatch, tmp_path, method, interrupt_at
):
    """IB: each layer writes a checkpoint at steps 2 and 4 and one at its end; CE (12 steps,
    2 checkpoints) at steps 6 and 12, "ce-measured" also measuring the information plane there.

    The statistics networks and probes made after the restart must be initialised as they
    would have been without it."""
    config = {
        "ib": tiny_config(beta=1e-3),
        "ce": tiny_config(method="ce", beta=0.0, steps=12),
        "ce-measured": tiny_config(method="ce", beta=0.0, steps=12, measure_steps=2),
    }[method]
    whole = train(config, mnist_small, CPU, progress=False)
    ckpt = tmp_path / "run.ckpt.pt"
    with monkeypatch.context() as m:
        interrupt_after_save(m, interrupt_at)
        with pytest.raises(Interrupted):
            train(config, mnist_small, CPU, checkpoint=ckpt, progress=False)
    assert ckpt.is_file()
    resumed = train(config, mnist_small, CPU, checkpoint=ckpt, progress=False)
    assert resumed["metrics"] == whole["metrics"]
    assert without_timings(resumed["curves"]) == without_timings(whole["curves"])
    assert same_weights(weights(resumed["model"]), weights(whole["model"]))


# -- NaN estimates -------------------------------------------------------------------------


def nan_critic_x(monkeypatch):
    real = ibcore.core.critics.TiedMixtureCritic.scores_from_features

    def scores(self, h, z, perm):
        joint, marginal = real(self, h, z, perm)
        return joint * math.nan, marginal * math.nan

    monkeypatch.setattr(ibcore.core.critics.TiedMixtureCritic, "scores_from_features", scores)


def test_nan_estimate_ends_the_run_as_diverged(mnist_small, tiny_config, monkeypatch):
    """A non-finite estimate does not pass silently: the run stops there, with status "diverged"
    and the layer, step and quantity that failed, and no probe accuracy."""
    nan_critic_x(monkeypatch)
    out = train(tiny_config(beta=0.0), mnist_small, CPU, progress=False)
    assert out["status"] == "diverged"
    failure = out["failure"]
    assert failure["layer"] == 1 and failure["step"] == 2  # the first checkpoint of layer 1
    assert failure["quantity"] == "I(X;L_1+eps)" and failure["value"] == "nan"
    assert "test_accuracy" not in out["metrics"]
    assert len(out["curves"]["layers"]) == 1 and out["curves"]["layers"][0]["I_x"] == []


def test_diverged_run_is_stored_and_skipped_by_tables(
    mnist_small, tiny_config, cached_loads, monkeypatch, tmp_path
):
    """A diverged run is stored as a record with status "diverged" beside the complete ones; it
    is not rerun, load_records and the tables (Table 1, the beta sweep) leave it out."""
    from ibcore.core.results import load_records
    from ibcore.experiments import sweep

    good, bad = tiny_config(), tiny_config(seed=1)
    (first,) = ibcore.experiments.table1.run_configs([good], tmp_path, device="cpu", progress=False)
    nan_critic_x(monkeypatch)
    records = ibcore.experiments.table1.run_configs([good, bad], tmp_path, device="cpu", progress=False)
    assert [r["status"] for r in records] == ["complete", "diverged"]
    assert records[1]["failure"]["layer"] == 1
    assert len(sorted((tmp_path / "table1").glob("*.json"))) == 2
    assert not list(tmp_path.glob("table1/*.ckpt.pt"))
    monkeypatch.undo()
    monkeypatch.setattr(ibcore.experiments.table1, "train", _no_training)
    again = ibcore.experiments.table1.run_configs([good, bad], tmp_path, device="cpu", progress=False)
    assert again[0] == first and again[1]["status"] == "diverged"
    assert [r["config"]["seed"] for r in load_records(tmp_path, "table1")] == [good.seed]
    assert ibcore.experiments.table1.summarise(again)["n"].tolist() == [1]
    assert sweep.select_records(again, [good, bad]) == [first]
    assert sweep.missing_configs(again, [good, bad]) == []
    assert len(sweep.sweep_frame(again)) == 1


def _no_training(*args, **kwargs):
    raise AssertionError("training started")


# -- parameters checked before work starts -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"dataset": "svhn"}, "dataset"),
        ({"method": "sgd"}, "method"),
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": 1.01}, "fraction"),
        ({"fraction": -1}, "fraction"),
        ({"beta": -0.1}, "beta"),
        ({"beta": math.nan}, "beta"),
        ({"beta": math.inf}, "beta"),
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": math.nan}, "sigma"),
        ({"steps": 0}, "steps"),
        ({"steps": -5}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"probe_steps": 0}, "probe_steps"),
        ({"batch_size": 1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"seed": -1}, "seed"),
        ({"max_layers": -1}, "max_layers"),
        ({"widths": (100, 10)}, "widths"),
    ],
)
def test_bad_config_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


def test_unknown_config_key():
    with pytest.raises(ValueError, match="betta"):
        TrainConfig.from_dict({"dataset": "mnist", "betta": 0.1})


def test_config_round_trip():
    c = TrainConfig(dataset="mnist", fraction=0.01, beta=1e-3, widths=[784, 32, 10])
    assert TrainConfig.from_dict(c.to_dict()) == c
    assert c.widths == (784, 32, 10)


@pytest.mark.parametrize("name", ["cuda", "cuda:7", "tpu", "gpu", "", None, 3])
def test_device_that_is_not_there(name):
    if torch.cuda.is_available() and name == "cuda":
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device"):
        resolve_device(name)


def test_cpu_device():
    assert resolve_device("cpu") == CPU
    assert resolve_device(CPU) == CPU
    assert resolve_device("auto").type in {"cpu", "cuda"}


def test_run_configs_on_missing_device_fails_before_loading(tiny_config, monkeypatch, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    monkeypatch.setattr(ibcore.experiments.table1, "load_dataset", _no_loading)
    monkeypatch.setattr(ibcore.experiments.table1, "train", _no_training)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="device"):
        ibcore.experiments.table1.run_configs([tiny_config()], tmp_path, device="cuda", progress=False)
    assert time.perf_counter() - t0 < 1.0
    assert not (tmp_path / "table1").exists()


def _no_loading(*args, **kwargs):
    raise AssertionError("data loaded before the device was checked")


def test_config_and_data_must_match(mnist_small, tiny_config):
    config = TrainConfig(dataset="cifar10", fraction=0.01, steps=1, probe_steps=1)
    with pytest.raises(ValueError, match="cifar10"):
        train(config, mnist_small, CPU, progress=False)


def test_too_many_layers(mnist_small, tiny_config):
    with pytest.raises(ValueError, match="max_layers"):
        train(tiny_config(max_layers=4), mnist_small, CPU, progress=False)


# -- held-out I(Y; L) (issue 10 item 3) ----------------------------------------------------


@pytest.fixture(scope="module")
def mnist_val100(mnist_small):
    from ibcore.core.data import with_validation

    return with_validation(mnist_small, 100)


def _strip_heldout(curves: dict) -> dict:
    """The curves without the held-out keys (what a run without them records)."""
    curves = without_timings(curves)
    keys = ("I_y_val", "H_y_val", "probe_val_ce", "I_y_probe_lower")
    for record in [*curves.get("layers", []), curves.get("ce", {})]:
        for key in keys:
            record.pop(key, None)
    return curves


def test_heldout_label_information_is_the_dv_value_unclipped():
    """A critic that reads the label off a one-hot layer gets log(K) minus the shuffle's chance
    matches on held-out pairs; an anti-informative critic gives a value below 0, kept as is."""
    from ibcore.core.critics import LabelCritic
    from ibcore.core.measurement import heldout_label_information

    y = torch.arange(10).repeat(50)
    l = torch.nn.functional.one_hot(y, 10).float()  # noqa: E741
    critic = LabelCritic(10, 10, (10,))
    with torch.no_grad():
        for layer in critic.net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(torch.eye(10)), layer.bias.zero_()
    c = 20.0
    gen = torch.Generator().manual_seed(0)
    good = heldout_label_information(critic, c * l, y, gen)  # f(l) = c one_hot(y)
    assert good == pytest.approx(math.log(10), abs=0.15)
    with torch.no_grad():
        critic.net[-1].weight.neg_()  # f(l) = -c one_hot(y): the joint pairs score lowest
    bad = heldout_label_information(critic, c * l, y, gen)
    assert bad is not None and bad < -1.0


def test_label_entropy_and_probe_bound():
    from ibcore.core.measurement import probe_lower_bound
    from ibcore.core.probes import label_entropy

    assert label_entropy(torch.arange(10).repeat(60), 10) == pytest.approx(math.log(10))
    assert label_entropy(torch.zeros(5, dtype=torch.long), 10) == 0.0
    assert probe_lower_bound(math.log(10), 3.0) == pytest.approx(math.log(10) - 3.0)  # below 0: kept
    assert probe_lower_bound(math.log(10), None) is None


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_heldout_values_leave_training_unchanged(mnist_val100, tiny_config, monkeypatch, method):
    """With a validation split every checkpoint records I(Y; L_i) on the held-out samples, the
    probe's validation cross-entropy and H(Y) - CE; without them (the measurement stubbed out,
    the probe's loss ignored) the run's weights and every other recorded value are the same."""
    kw = {"val_size": 100, "beta": 1e-2} if method == "ib" else {"val_size": 100, "method": "ce", "beta": 0.0,
                                                                 "steps": 12, "measure_steps": 3}  # fmt: skip
    config = tiny_config(**kw)
    full = train(config, mnist_val100, CPU, progress=False)
    records = full["curves"]["layers"] if method == "ib" else [full["curves"]["ce"]]
    for r in records:
        n = len(r["step"])
        assert r["H_y_val"] == pytest.approx(float(torch.distributions.Categorical(
            probs=mnist_val100.y_val.bincount(minlength=10) / 100).entropy()))  # fmt: skip
        flat = (lambda v: v) if method == "ib" else (lambda v: [x for row in v for x in row])
        assert len(r["I_y_val"]) == n and all(math.isfinite(v) for v in flat(r["I_y_val"]))
        for ce, lower in zip(flat(r["probe_val_ce"]), flat(r["I_y_probe_lower"]), strict=True):
            assert lower == pytest.approx(r["H_y_val"] - ce)
    import ibcore.core.ib_checkpoint
    import ibcore.core.measurement

    def no_heldout(*args, **kwargs):
        return None

    target = ibcore.core.ib_checkpoint if method == "ib" else ibcore.core.measurement
    monkeypatch.setattr(target, "heldout_label_information", no_heldout)
    bare = train(config, mnist_val100, CPU, progress=False)
    assert same_weights(weights(bare["model"]), weights(full["model"]))
    assert bare["metrics"] == full["metrics"]
    assert _strip_heldout(bare["curves"]) == _strip_heldout(full["curves"])


def test_ce_measurement_with_a_validation_split_leaves_training_unchanged(mnist_val100, tiny_config):
    """With a validation split the cross-entropy run's measurements draw from side generators:
    the measured run ends with the weights of the unmeasured one."""
    base = {"val_size": 100, "method": "ce", "beta": 0.0, "steps": 12}
    plain = train(tiny_config(**base), mnist_val100, CPU, progress=False)
    measured = train(tiny_config(**base, measure_steps=3), mnist_val100, CPU, progress=False)
    assert same_weights(weights(plain["model"]), weights(measured["model"]))
    assert measured["curves"]["ce"]["test_accuracy"] == plain["curves"]["ce"]["test_accuracy"]
    assert len(measured["curves"]["ce"]["I_y_val"]) == 2


def test_measurement_early_stopping_option(mnist_val100, tiny_config):
    """The early-stopping path of the measurement estimators: with patience 1 they stop before
    their budget (not before min_steps); TrainConfig.extra switches measure_layers to it (and it
    still gives held-out I(Y; L_i))."""
    from ibcore.core.measurement import (
        EARLY_MIN_STEPS,
        MEASURE_PATIENCE,
        measure_layers,
        measure_layers_early,
    )

    config = tiny_config(method="ce", beta=0.0, measure_steps=400, val_size=100)
    net = make_model(config, mnist_val100)
    early = measure_layers_early(net, mnist_val100, config, 0, 1, 1)
    stops = early["stop_x"] + early["stop_y"]
    assert all(EARLY_MIN_STEPS <= s <= 400 for s in stops) and min(stops) < 400
    wired = tiny_config(method="ce", beta=0.0, measure_steps=200, val_size=100, extra={MEASURE_PATIENCE: 1})
    values = measure_layers(net, mnist_val100, wired, CPU, torch.Generator().manual_seed(0),
                            torch.Generator().manual_seed(1))  # fmt: skip
    assert len(values["I_x"]) == len(values["I_y"]) == len(values["I_y_val"]) == 3
    assert all(math.isfinite(v) for v in values["I_x"] + values["I_y"])
    y_only = measure_layers_early(net, mnist_val100, wired, 0, 1, None)  # what the option runs
    assert y_only["stop_x"] == [200] * 3


def test_a_layer_whose_inputs_collapsed_ends_the_run_as_diverged(mnist_small, tiny_config, monkeypatch):
    """With sigma_mode layer_scaled, a layer whose outputs all coincide (median nearest-neighbour
    distance 0, as a strong penalty on the layers below can cause) has no noise scale: the run
    is stored as diverged with that failure, not lost to an exception."""
    import ibcore.core.ib_layer

    real = ibcore.core.ib_layer.median_nn_distance
    calls = []

    def collapse_at_layer_2(h):
        calls.append(1)
        return 0.0 if len(calls) == 2 else real(h)

    monkeypatch.setattr(ibcore.core.ib_layer, "median_nn_distance", collapse_at_layer_2)
    out = train(tiny_config(beta=1e-3, sigma_mode="layer_scaled"), mnist_small, CPU, progress=False)
    assert out["status"] == "diverged"
    assert out["failure"]["layer"] == 2 and out["failure"]["step"] == 0
    assert "nearest-neighbour" in out["failure"]["quantity"]
    assert [r["layer"] for r in out["curves"]["layers"]] == [1, 2]
    assert "test_accuracy" not in out["metrics"]
