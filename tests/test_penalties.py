"""The penalties of IB training (ibcore.core.penalties, ibcore.core.critics): each one's gradient path and
value, the tied critic's bias, the new config fields, the validation split, probing that does
not change training, and diverged runs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ibcore.core.penalties
import ibcore.core.training
from ibcore.core.analytic import linear_gaussian_mi
from ibcore.core.bounds import bhattacharyya_lower_bound
from ibcore.core.config import TrainConfig
from ibcore.core.critics import (
    TiedMixtureCritic,
    gaussian_logdet,
    pairwise_kl_upper_bound,
)
from ibcore.core.data import load_dataset, with_validation
from ibcore.core.dv import dv_bound
from ibcore.core.estimators import marginal_permutation
from ibcore.core.penalties import AAMinePenalty, make_penalty
from ibcore.core.results import config_id
from ibcore.core.training import make_model, median_nn_distance, train

CPU = torch.device("cpu")
PENALTIES = ("aamine", "aamine_stopgrad", "tied", "pairwise_kl", "logdet", "weight_decay")


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def small_layer(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(block 20 -> 12 with ReLU, L_{i-1} batch, noise, derangement) for gradient checks."""
    torch.manual_seed(seed)
    block = nn.Sequential(nn.Linear(20, 12), nn.ReLU())
    h_prev = torch.randn(32, 20)
    noise = 0.3 * torch.randn(32, 12)
    perm = marginal_permutation(32, torch.Generator().manual_seed(seed))
    return block, h_prev, noise, perm


def layer_grads(value: torch.Tensor, block: nn.Module) -> list[torch.Tensor]:
    return list(torch.autograd.grad(value, list(block.parameters())))


def close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float = 1e-6) -> bool:
    return all(torch.allclose(x, y, atol=tol, rtol=1e-5) for x, y in zip(a, b, strict=True))


# -- gradient paths ------------------------------------------------------------------------


def test_aamine_layer_gets_gradient_only_through_z():
    """The paper's AA-MINE: the layer's gradient equals the gradient computed with the copy's
    output replaced by a constant; the copy gets no gradient from the layer's update and is
    not the layer (trained only by the critic optimizer)."""
    block, h_prev, noise, perm = small_layer()
    penalty = AAMinePenalty(block, 12, (8,), lr=1e-2, tied=False)
    l_fixed = block(h_prev).detach()
    for _ in range(3):  # the critic (and its copy) train; the layer does not move
        penalty.train_critic(h_prev, l_fixed, noise, perm)
    copy_params = list(penalty.critic.copy.parameters())
    assert not any(p is q for p in copy_params for q in block.parameters())
    assert not close([p.detach() for p in copy_params], [p.detach() for p in block.parameters()], 1e-4)
    before = [p.detach().clone() for p in copy_params]

    l = block(h_prev)  # noqa: E741
    ours = layer_grads(penalty.value(h_prev, l, noise, perm), block)
    h_const = penalty.critic.copy(h_prev).detach().clone()
    l = block(h_prev)  # noqa: E741
    ref = layer_grads(dv_bound(*penalty.critic.scores_from_features(h_const, l + noise, perm)), block)
    assert close(ours, ref)
    assert max(float(g.abs().max()) for g in ours) > 1e-4  # the layer does get a gradient
    # a copy that shared the layer's graph (h = L_i with autograd) would give another gradient
    l = block(h_prev)  # noqa: E741
    tied_h = layer_grads(dv_bound(*penalty.critic.scores_from_features(l, l + noise, perm)), block)
    assert not close(ours, tied_h, 1e-4)
    # a full backward of the penalty leaves the copy without gradient, unchanged
    penalty.critic.zero_grad(set_to_none=True)
    penalty.value(h_prev, block(h_prev), noise, perm).backward()
    assert all(p.grad is None for p in copy_params)
    assert all(torch.equal(p, q) for p, q in zip(copy_params, before, strict=True))


def test_aamine_stopgrad_layer_gets_gradient_only_through_z():
    block, h_prev, noise, perm = small_layer(1)
    penalty = AAMinePenalty(block, 12, (8,), lr=1e-2, tied=True)
    assert list(penalty.critic.copy.parameters()) == []  # the copy is the layer itself
    penalty.train_critic(h_prev, block(h_prev).detach(), noise, perm)
    l = block(h_prev)  # noqa: E741
    ours = layer_grads(penalty.value(h_prev, l, noise, perm), block)
    l = block(h_prev)  # noqa: E741
    ref = layer_grads(
        dv_bound(*penalty.critic.scores_from_features(l.detach().clone(), l + noise, perm)), block
    )
    assert close(ours, ref)
    l = block(h_prev)  # noqa: E741
    through_h = layer_grads(dv_bound(*penalty.critic.scores_from_features(l, l + noise, perm)), block)
    assert not close(ours, through_h, 1e-4)


def test_aamine_step_does_not_move_the_critic_with_the_layer():
    """One step of IB training with "aamine": the critic ends where its own update alone takes it
    (the layer's update adds nothing to it), and the layer moves."""
    import copy

    from ibcore.core.models import mlp

    config = TrainConfig(
        dataset="mnist", beta=1.0, sigma=0.3, batch_size=32, penalty="aamine", widths=(784, 16, 10)
    )
    torch.manual_seed(0)
    model = mlp((784, 16, 10))
    model.requires_grad_(False)
    h_prev_all, y_all = torch.randn(64, 1, 28, 28), torch.randint(10, (64,))
    block = model.blocks[0]
    shape, params, opt_layer, objective = ibcore.core.training.ib_layer_setup(block, h_prev_all, 10, config)
    penalty = make_penalty("aamine", block, 16, config.sigma, (8,), 1e-3)
    alone = copy.deepcopy(penalty)
    critic_start, start = weights(penalty.critic), weights(block)
    h_prev, y, perm, noise = ibcore.core.training.ib_batch(
        h_prev_all, y_all, shape, config, torch.Generator()
    )
    l_start = block(h_prev).detach()
    ibcore.core.training.ib_step_penalty(
        block, params, opt_layer, objective, penalty, h_prev, y, perm, noise, 1.0
    )
    alone.train_critic(h_prev, l_start, noise, perm)
    assert same_weights(weights(penalty.critic), weights(alone.critic))
    assert not same_weights(weights(penalty.critic), critic_start)
    assert not same_weights(weights(block), start)


def test_weight_decay_gradient_is_two_beta_w():
    block, h_prev, noise, perm = small_layer()
    penalty = make_penalty("weight_decay", block, 12, 1.0, (8,), 1e-3)
    beta = 0.37
    w, b = block[0].weight, block[0].bias
    gw, gb = torch.autograd.grad(
        beta * penalty.value(h_prev, block(h_prev), noise, perm), [w, b], allow_unused=True
    )
    torch.testing.assert_close(gw, 2 * beta * w.detach())
    assert gb is None  # biases are not decayed


@pytest.mark.parametrize(("batch", "dim"), [(256, 6), (8, 20)], ids=["covariance", "gram-form"])
def test_logdet_is_eq5_at_the_batch_covariance(batch, dim):
    """For a linear layer h = W x + b, 1/2 log det(I + Cov_B(h)/sigma^2) is Eq. 5 with the input
    covariance Cov_B(x) (the d > B case uses the B x B Gram form); it is differentiable."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 10, generator=gen, dtype=torch.float64)
    w = torch.randn(dim, 10, generator=gen, dtype=torch.float64).requires_grad_(True)
    h = x @ w.T + 0.5
    sigma = 0.7
    ours = gaussian_logdet(h, sigma)
    truth = linear_gaussian_mi(w.detach(), torch.cov(x.T), sigma**2)
    assert float(ours.detach()) == pytest.approx(truth, rel=1e-10)
    (g,) = torch.autograd.grad(ours, w)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0


def test_logdet_of_non_finite_layer_is_nan_not_an_exception():
    h = torch.randn(16, 4)
    h[3, 1] = math.nan
    assert math.isnan(float(gaussian_logdet(h, 1.0)))


def empirical_mi(h: torch.Tensor, sigma: float, samples: int, gen: torch.Generator) -> tuple[float, float]:
    """Monte Carlo I(X; h_X + eps), X uniform over the rows of h: mean and standard error of
    log p(z|x) - log p(z) (the Gaussian normalisers cancel)."""
    n = h.shape[0]
    x = torch.randint(n, (samples,), generator=gen)
    eps = sigma * torch.randn(samples, h.shape[1], generator=gen, dtype=h.dtype)
    z = h[x] + eps
    log_cond = -eps.pow(2).sum(1) / (2 * sigma**2)
    log_marg = torch.logsumexp(-torch.cdist(z, h).pow(2) / (2 * sigma**2), 1) - math.log(n)
    terms = log_cond - log_marg
    return float(terms.mean()), float(terms.std() / math.sqrt(samples))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_pairwise_bounds_bracket_the_empirical_mi(sigma):
    gen = torch.Generator().manual_seed(0)
    h = 1.5 * torch.randn(12, 3, generator=gen, dtype=torch.float64)
    truth, se = empirical_mi(h, sigma, 200_000, gen)
    upper = float(pairwise_kl_upper_bound(h, sigma))
    lower = bhattacharyya_lower_bound(h, sigma**2)
    assert lower - 4 * se <= truth <= upper + 4 * se
    assert upper <= math.log(12) + 1e-12
    assert upper - truth > 4 * se or sigma == 0.5  # not trivially tight where points overlap


def test_pairwise_kl_is_differentiable_and_exact_zero_distance_on_the_diagonal():
    h = (100 * torch.randn(16, 5, dtype=torch.float64)).requires_grad_(True)  # far apart: log B
    value = pairwise_kl_upper_bound(h, 1.0)
    assert float(value.detach()) == pytest.approx(math.log(16), abs=1e-9)
    (g,) = torch.autograd.grad(pairwise_kl_upper_bound(h * 0.01, 1.0), h)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0


def test_tied_critic_is_biased_far_above_eq5_at_high_mi():
    """Documented bias of the "tied" penalty: on linear-Gaussian data with known MI (Eq. 5) and
    the critic at its Gaussian-noise scale, it reads the truth at low MI (1 nat) but, once the MI
    exceeds log B, far above it (60 true nats read > 600 with B = 512): it is no bound."""
    gen = torch.Generator().manual_seed(0)
    b, d, sigma = 512, 20, 1.0
    readings = {}
    for log_snr in (0.1, 6.0):
        w = math.sqrt(math.expm1(log_snr)) * torch.eye(d, dtype=torch.float64)
        truth = linear_gaussian_mi(w, torch.eye(d), sigma**2)
        h = torch.randn(b, d, generator=gen, dtype=torch.float64) @ w.T
        z = h + sigma * torch.randn(b, d, generator=gen, dtype=torch.float64)
        critic = TiedMixtureCritic(d).double()
        with torch.no_grad():
            value = float(dv_bound(*critic.scores_from_features(h, z, marginal_permutation(b, gen))))
        readings[log_snr] = (truth, value)
    low_truth, low_value = readings[0.1]
    assert low_truth == pytest.approx(1.0, abs=0.05) and abs(low_value - low_truth) < 0.3
    high_truth, high_value = readings[6.0]
    assert high_truth == pytest.approx(60.0, abs=0.01) and high_truth > math.log(b)
    assert high_value > 10 * high_truth


# -- training runs -------------------------------------------------------------------------


def curves_without_seconds(out: dict) -> list[dict]:
    return [{k: v for k, v in layer.items() if k != "seconds"} for layer in out["curves"]["layers"]]


def test_beta_zero_is_one_run_whatever_the_penalty(mnist_small, tiny_config):
    """At beta = 0 no penalty acts: every penalty gives the same weights, metrics and curves, and
    the same stored config (one shared record)."""
    runs = {
        p: train(tiny_config(beta=0.0, penalty=p, critic_steps=3 if p == "aamine" else 1), mnist_small, CPU,
                 progress=False)
        for p in PENALTIES
    }  # fmt: skip
    ref = runs["tied"]
    for p, out in runs.items():
        assert same_weights(weights(out["model"]), weights(ref["model"])), p
        assert out["metrics"] == ref["metrics"] and curves_without_seconds(out) == curves_without_seconds(
            ref
        ), p
    dicts = {repr(tiny_config(beta=0.0, penalty=p).to_dict()) for p in PENALTIES}
    assert len(dicts) == 1 and "penalty" not in tiny_config(beta=0.0, penalty="aamine").to_dict()


@pytest.mark.parametrize("penalty", PENALTIES)
def test_each_penalty_trains_and_logs(mnist_small, tiny_config, penalty):
    """beta > 0: the penalty changes the run (vs beta = 0), its value and the per-layer logs are
    recorded at every checkpoint."""
    config = tiny_config(beta=1e-2, penalty=penalty, sigma=0.5)
    out = train(config, mnist_small, CPU, progress=False)
    base = train(tiny_config(beta=0.0, sigma=0.5), mnist_small, CPU, progress=False)
    assert out.get("status", "complete") == "complete"
    assert not same_weights(weights(out["model"]), weights(base["model"]))
    for layer in out["curves"]["layers"]:
        n = len(layer["step"])
        assert n == 2
        for key in ("penalty_value", "sigma", "rms_radius", "active_fraction", "I_x_kl_upper"):
            assert len(layer[key]) == n, key
        assert all(math.isfinite(v) for v in layer["penalty_value"])
        assert layer["sigma"] == [0.5, 0.5]
        lower, upper = layer["I_x_bhattacharyya_lower"][-1], layer["I_x_kl_upper"][-1]
        assert 0 <= lower <= upper <= math.log(600) + 1e-5  # X uniform over the 600 images
    if penalty == "tied":
        assert out["curves"]["layers"][0]["penalty_value"] == out["curves"]["layers"][0]["I_x"]
    last = [layer["penalty_value"][-1] for layer in out["curves"]["layers"]]
    assert out["metrics"]["penalty_value"] == last
    assert "penalty_value" not in base["metrics"]


def test_layer_logs_match_direct_computation(mnist_small, tiny_config):
    """sigma (layer-scaled: sigma x median nearest-neighbour distance of the layer at its start),
    RMS radius and active fraction, against a direct computation on the same weights."""
    config = tiny_config(beta=1e-2, penalty="pairwise_kl", sigma=0.25, sigma_mode="layer_scaled")
    out = train(config, mnist_small, CPU, progress=False)
    init = make_model(config, mnist_small)
    trained = out["model"]
    h = mnist_small.x_train  # L_{i-1} of the trained net
    for i, layer in enumerate(out["curves"]["layers"]):
        with torch.no_grad():
            start = init.blocks[i](h)  # layer i at its start, on the trained layers 1..i-1
            end = trained.blocks[i](h)
        h = end
        want_sigma = 0.25 * median_nn_distance(start)
        assert layer["sigma"][0] == pytest.approx(want_sigma, rel=1e-6) and len(set(layer["sigma"])) == 1
        radius = float((end.flatten(1) - end.flatten(1).mean(0)).pow(2).sum(1).mean().sqrt())
        assert layer["rms_radius"][-1] == pytest.approx(radius, rel=1e-5)
        if i < 2:
            assert layer["active_fraction"][-1] == pytest.approx(float((end > 0).float().mean()), abs=1e-6)
        else:
            assert layer["active_fraction"][-1] is None  # the linear last layer has no ReLU


@pytest.fixture(scope="module")
def mnist_val(mnist_small):
    return with_validation(mnist_small, 100)


@pytest.mark.parametrize("penalty", ["tied", "aamine"])
def test_probing_does_not_change_training(mnist_val, tiny_config, penalty):
    """With a validation split, probes (and measurements) draw from their own generators: runs
    that differ only in checkpoint_probe_steps (or in the number of checkpoints) end with the
    same weights. Without the split probes share the training stream (stored records)."""
    kw = {"beta": 1e-2, "penalty": penalty, "val_size": 100, "critic_steps": 2 if penalty == "aamine" else 1}
    runs = [
        train(tiny_config(checkpoint_probe_steps=c, checkpoints=k, **kw), mnist_val, CPU, progress=False)
        for c, k in ((0, 2), (3, 2), (7, 4))
    ]
    for out in runs[1:]:
        assert same_weights(weights(out["model"]), weights(runs[0]["model"]))
        assert out["metrics"]["val_accuracy"] == runs[0]["metrics"]["val_accuracy"]
    assert len(runs[1]["curves"]["layers"][0]["probe_val_accuracy"]) == 2
    assert 0 <= runs[1]["metrics"]["val_accuracy"] <= 1 and "test_accuracy" in runs[1]["metrics"]
    old = [
        train(tiny_config(checkpoint_probe_steps=c, beta=1e-2), _data0(mnist_val), CPU, progress=False)
        for c in (0, 3)
    ]
    assert not same_weights(weights(old[0]["model"]), weights(old[1]["model"]))


def _data0(data):
    """The same data without its validation split (the training images are the same)."""
    from dataclasses import replace

    return replace(data, x_val=None, y_val=None)


def test_diverged_penalty_run_is_stored_with_its_status(
    mnist_small, tiny_config, cached_loads, monkeypatch, tmp_path
):
    """A penalty whose value turns non-finite ends the run with status "diverged", the layer,
    step and quantity; the record is stored as such and Table 1 leaves it out."""
    import ibcore.experiments.table1
    from ibcore.core.results import load_records

    real = ibcore.core.penalties.LogDetPenalty.value

    def nan_on_layer_2(self, h_prev, l, noise, perm):  # noqa: E741
        value = real(self, h_prev, l, noise, perm)  # NaN on layer 2's checkpoint sample only
        return value * math.nan if l.shape == (600, 12) else value

    monkeypatch.setattr(ibcore.core.penalties.LogDetPenalty, "value", nan_on_layer_2)
    config = tiny_config(beta=1e-2, penalty="logdet")
    (record,) = ibcore.experiments.table1.run_configs([config], tmp_path, device="cpu", progress=False)
    assert record["status"] == "diverged"
    assert record["failure"] == {"layer": 2, "step": 2, "quantity": "penalty logdet", "value": "nan"}
    assert [layer["layer"] for layer in record["curves"]["layers"]] == [1, 2]
    assert len(record["metrics"]["I_x"]) == 2 and record["metrics"]["I_x"][1] is None
    assert (tmp_path / "table1" / f"{config_id(config.to_dict())}.json").is_file()
    assert load_records(tmp_path, "table1") == []
    assert ibcore.experiments.table1.summarise([record]).empty


# -- config ----------------------------------------------------------------------------------


def test_new_fields_keep_stored_run_ids():
    """Each new field is left out of to_dict at its default, so records stored before it existed
    keep their run id, and from_dict of such a record gives the defaults."""
    old = TrainConfig(dataset="mnist", fraction=0.01, beta=1e-3, sigma=1.0)
    d = old.to_dict()
    assert not {"penalty", "sigma_mode", "critic_steps", "val_size"} & d.keys()
    back = TrainConfig.from_dict(d)
    assert (back.penalty, back.sigma_mode, back.critic_steps, back.val_size) == ("tied", "absolute", 1, 0)
    new = TrainConfig(dataset="mnist", fraction=0.01, beta=1e-3, sigma=1.0, penalty="aamine", critic_steps=3,
                      sigma_mode="layer_scaled", val_size=600)  # fmt: skip
    nd = new.to_dict()
    assert (nd["penalty"], nd["critic_steps"], nd["sigma_mode"], nd["val_size"]) == (
        "aamine",
        3,
        "layer_scaled",
        600,
    )
    assert TrainConfig.from_dict(nd) == new and config_id(nd) != config_id(d)
    ce = TrainConfig(
        dataset="mnist", method="ce", penalty="aamine", critic_steps=3, sigma_mode="layer_scaled"
    )
    assert ce.to_dict() == TrainConfig(dataset="mnist", method="ce").to_dict()  # none acts for CE


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"penalty": "mine"}, "unknown penalty 'mine'"),
        ({"sigma_mode": "relative"}, "unknown sigma_mode"),
        ({"critic_steps": 0}, "critic_steps must be a positive integer"),
        ({"critic_steps": 2, "penalty": "logdet"}, "critic_steps=2 acts only for penalty 'aamine'"),
        ({"val_size": -1}, "val_size must be an integer >= 0"),
        ({"val_size": 1.5}, "val_size must be an integer >= 0"),
        ({"beta": 1e-3, "sigma": 0.0, "penalty": "pairwise_kl"}, r"sigma \(noise std\) must be"),
    ],
)
def test_bad_new_fields_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"dataset": "mnist", **kwargs})


def test_trainer_checks_the_validation_split(mnist_small, mnist_val, tiny_config):
    with pytest.raises(ValueError, match=r"with_validation\(data, 100\)"):
        train(tiny_config(val_size=100), mnist_small, CPU, progress=False)
    with pytest.raises(ValueError, match="config.val_size = 0"):
        train(tiny_config(), mnist_val, CPU, progress=False)


# -- validation split --------------------------------------------------------------------------


def test_validation_split_of_a_subset_comes_from_outside_it(mnist_small):
    """MNIST 1 %: 600 validation images, 60 a class, none of them a training image, the same for
    the same subset seed; the training set is unchanged."""
    a, b = with_validation(mnist_small, 600), with_validation(mnist_small, 600)
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.x_train, mnist_small.x_train)
    assert a.x_val.shape[0] == 600 and a.y_val.bincount().tolist() == [60] * 10
    train_rows = {tuple(r.tolist()) for r in mnist_small.x_train.flatten(1)[:, ::7]}
    assert not any(tuple(r.tolist()) in train_rows for r in a.x_val.flatten(1)[:, ::7])
    other = with_validation(load_dataset("mnist", fraction=0.01, subset_seed=1), 600)
    assert not torch.equal(other.x_val, a.x_val)
    assert a.source["val_size"] == 600 and a.source["n_train"] == 600
    with pytest.raises(ValueError, match="already holds a validation split"):
        with_validation(a, 10)


def test_validation_split_of_the_full_set_is_taken_out_of_it():
    full = load_dataset("mnist")
    split = with_validation(full, 5000)
    assert split.x_train.shape[0] == 55000 and split.x_val.shape[0] == 5000
    assert split.y_val.bincount().tolist() == [500] * 10
    merged = torch.cat([split.y_train.bincount(), split.y_val.bincount()]).view(2, 10).sum(0)
    assert torch.equal(merged, full.y_train.bincount())
    assert split.source["n_train"] == 55000


class Interrupted(Exception):
    """Stands for a kill of the process."""


@pytest.mark.parametrize("interrupt_at", [1, 3, 5], ids=["mid-layer-1", "end-of-layer-1", "mid-layer-2"])
def test_aamine_run_resumes_to_the_same_result(mnist_val, tiny_config, monkeypatch, tmp_path, interrupt_at):
    """The penalty's critic, its extra-batch generator and the layer's sigma are restored."""
    config = tiny_config(beta=1e-2, penalty="aamine", critic_steps=2, sigma_mode="layer_scaled", val_size=100)
    whole = train(config, mnist_val, CPU, progress=False)
    real = ibcore.core.training.Checkpointer.save
    count = {"saves": 0}

    def save(self, state):
        real(self, state)
        count["saves"] += 1
        if count["saves"] == interrupt_at:
            raise Interrupted

    ckpt = tmp_path / "run.ckpt.pt"
    with monkeypatch.context() as m:
        m.setattr(ibcore.core.training.Checkpointer, "save", save)
        with pytest.raises(Interrupted):
            train(config, mnist_val, CPU, checkpoint=ckpt, progress=False)
    resumed = train(config, mnist_val, CPU, checkpoint=ckpt, progress=False)
    assert same_weights(weights(resumed["model"]), weights(whole["model"]))
    assert resumed["metrics"] == whole["metrics"]
    assert curves_without_seconds(resumed) == curves_without_seconds(whole)
