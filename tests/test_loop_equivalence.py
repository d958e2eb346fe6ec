"""The optimised training steps compute what a straightforward implementation computes.

The references below are written out plainly: the IB step runs the layer forward twice (once
without autograd for the critics, once with it for the layer), scores the tied AA-MINE critic
through ``torch.cdist`` and ``torch.logsumexp``, and every optimizer is the plain for-loop Adam.
Started from the same state and fed the same batches, both must reach the same parameters
after k steps, to float tolerance. A step that broke the alternation (the layer seeing the
critics before their update) or scored the wrong pairs would not, which the last tests check.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from ibcore.core import training
from ibcore.core.config import TrainConfig
from ibcore.core.critics import critic_param_groups, floored_logsumexp, squared_distances
from ibcore.core.dv import dv_bound
from ibcore.core.models import convnet, mlp

STEPS = 6
#: Adam moves every coordinate by about lr = 1e-3 a step, so a wrong gradient sign shows up
#: as ~1e-3 per step; float reordering stays far below this tolerance.
ATOL = 2e-5


# -- the straightforward reference ---------------------------------------------------------


def ref_tied_scores(critic_x, h: torch.Tensor, z: torch.Tensor, perm: torch.Tensor):
    """TiedMixtureCritic scores as first written: cdist, logsumexp, advanced indexing."""
    h, z = h.flatten(1), z.flatten(1)
    critic_x.ensure_scale(h, z)
    a = critic_x.log_scale.exp() / critic_x.feature_dim
    logits = -a * torch.cdist(z, h).pow(2)
    log_mixture = torch.logsumexp(logits, dim=1) - math.log(h.shape[0])
    idx = torch.arange(h.shape[0])
    return logits[idx, idx] - log_mixture, logits[perm, idx] - log_mixture[perm]


def ref_ib_step(block, opt_layer, objective, h_prev, y, perm, noise, beta, critics_first=True):
    """One IB alternation, written plainly. ``critics_first=False`` is a broken variant: the
    layer's goal is formed from the critics *before* their update."""
    params = list(block.parameters())
    with torch.no_grad():
        l_fixed = block(h_prev)
    if not critics_first:
        l_early = block(h_prev)
        goal_early = dv_bound(*objective.critic_y.scores(l_early, y, perm))
        if beta > 0:
            goal_early = goal_early - beta * dv_bound(
                *ref_tied_scores(objective.critic_x, l_early, l_early + noise, perm)
            )
        grads_early = torch.autograd.grad(-goal_early, params)
    # (a) critics ascend, layer fixed
    sur_y = objective.ma_y.surrogate(*objective.critic_y.scores(l_fixed, y, perm))
    sur_x = objective.ma_x.surrogate(*ref_tied_scores(objective.critic_x, l_fixed, l_fixed + noise, perm))
    objective.opt.zero_grad(set_to_none=True)
    (-(sur_y + sur_x)).backward()
    objective.opt.step()
    # (b) the layer ascends, critics fixed at their new values
    if critics_first:
        l = block(h_prev)  # noqa: E741
        goal = dv_bound(*objective.critic_y.scores(l, y, perm))
        if beta > 0:
            goal = goal - beta * dv_bound(*ref_tied_scores(objective.critic_x, l, l + noise, perm))
        grads = torch.autograd.grad(-goal, params)
    else:
        grads = grads_early
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    opt_layer.step()


# -- helpers -------------------------------------------------------------------------------


def layer_setup(net: str, layer: int, beta: float, seed: int = 0):
    """(block, params, opt_layer, objective, h_prev_all, y_all, feature_shape, config) of one
    layer of a small net, on random inputs."""
    torch.manual_seed(seed)
    if net == "mlp":
        model = mlp((784, 64, 32, 10))
        x = torch.randn(256, 1, 28, 28)
    else:
        model = convnet(in_channels=3, channels=(4, 8), image_size=8)
        x = torch.randn(256, 3, 8, 8)
    y_all = torch.randint(10, (256,))
    model.requires_grad_(False)
    config = TrainConfig(dataset="mnist", method="ib", beta=beta, sigma=1.0, batch_size=32, lr=1e-3)
    h_prev_all = training.apply_in_chunks(model.prefix(layer - 1), x) if layer > 1 else x
    block = model.blocks[layer - 1]
    feature_shape, params, opt_layer, objective = training.ib_layer_setup(block, h_prev_all, 10, config)
    return block, params, opt_layer, objective, h_prev_all, y_all, feature_shape, config


def state_of(block, objective) -> dict[str, torch.Tensor]:
    out = {f"layer.{k}": v.detach().clone() for k, v in block.state_dict().items()}
    out |= {f"critic_y.{k}": v.detach().clone() for k, v in objective.critic_y.state_dict().items()}
    out |= {f"critic_x.{k}": v.detach().clone() for k, v in objective.critic_x.state_dict().items()}
    return out


def max_differences(a: dict, b: dict) -> dict[str, float]:
    assert a.keys() == b.keys()
    return {k: float((a[k].float() - b[k].float()).abs().max()) for k in a}


def run_both(net: str, layer: int, beta: float, steps: int = STEPS, critics_first: bool = True):
    block, params, opt_layer, objective, h_prev_all, y_all, feature_shape, config = layer_setup(
        net, layer, beta
    )
    ref_block = copy.deepcopy(block)
    ref_objective = copy.deepcopy(objective)
    ref_objective.opt = torch.optim.Adam(
        critic_param_groups(ref_objective.critic_y, config.critic_lr)
        + critic_param_groups(ref_objective.critic_x, config.critic_lr),
        lr=config.critic_lr,
        foreach=False,
        fused=False,
    )
    ref_opt_layer = torch.optim.Adam(ref_block.parameters(), lr=config.lr, foreach=False, fused=False)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        h_prev, y, perm, noise = training.ib_batch(h_prev_all, y_all, feature_shape, config, gen)
        training.ib_step(block, params, opt_layer, objective, h_prev, y, perm, noise, config.beta)
        ref_ib_step(
            ref_block, ref_opt_layer, ref_objective, h_prev, y, perm, noise, config.beta, critics_first
        )
    return state_of(block, objective), state_of(ref_block, ref_objective)


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 1e-3, 1.0])
@pytest.mark.parametrize(("net", "layer"), [("mlp", 1), ("mlp", 3), ("conv", 1), ("conv", 2)])
def test_ib_step_matches_reference(net, layer, beta):
    ours, ref = run_both(net, layer, beta)
    diffs = max_differences(ours, ref)
    assert max(diffs.values()) < ATOL, diffs
    # and training did move the layer (the comparison is not between two idle states)
    setup = layer_setup(net, layer, beta)
    moved = max_differences(ours, state_of(setup[0], setup[3]))
    assert max(v for k, v in moved.items() if k.startswith("layer.")) > 1e-3


def test_ib_step_with_beta_matches_reference_over_many_steps():
    ours, ref = run_both("mlp", 2, 1e-2, steps=40)
    diffs = max_differences(ours, ref)
    assert max(diffs.values()) < 10 * ATOL, diffs


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_comparison_detects_a_step_that_breaks_the_alternation(beta):
    """The layer must see the critics after their update: a step that used the critics from
    before the update moves the layer elsewhere, by far more than the tolerance."""
    ours, wrong = run_both("mlp", 1, beta, critics_first=False)
    layer_diffs = {k: v for k, v in max_differences(ours, wrong).items() if k.startswith("layer.")}
    assert max(layer_diffs.values()) > 50 * ATOL, layer_diffs


def test_comparison_detects_wrong_marginal_pairs(monkeypatch):
    """Scoring the marginal pairs with the inverse permutation changes the trained layer."""
    from ibcore.core.critics import TiedMixtureCritic

    real = TiedMixtureCritic.scores_from_distances

    def wrong(self, d2, perm):
        return real(self, d2, torch.argsort(perm))

    monkeypatch.setattr(TiedMixtureCritic, "scores_from_distances", wrong)
    ours, ref = run_both("mlp", 1, 1.0)
    diffs = max_differences(ours, ref)
    assert max(diffs.values()) > 50 * ATOL, diffs


def ref_ce_training(model, config, x_all, y_all, gen, steps):
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=False, fused=False)
    for _ in range(steps):
        idx = torch.randint(x_all.shape[0], (config.batch_size,), generator=gen)
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_ce_step_matches_reference(net):
    torch.manual_seed(0)
    if net == "mlp":
        model, x = mlp((784, 64, 32, 10)), torch.randn(256, 1, 28, 28)
    else:
        model, x = convnet(in_channels=3, channels=(4, 8), image_size=8), torch.randn(256, 3, 8, 8)
    y = torch.randint(10, (256,))
    config = TrainConfig(dataset="mnist", method="ce", batch_size=32)
    ref = copy.deepcopy(model)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = training.ce_optimizer(model, config)
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        idx = torch.randint(x.shape[0], (config.batch_size,), generator=gen)
        training.ce_step(model, opt, x[idx], y[idx])
    ref_ce_training(ref, config, x, y, torch.Generator().manual_seed(1), STEPS)
    diffs = max_differences(model.state_dict(), ref.state_dict())
    assert max(diffs.values()) < ATOL, diffs
    assert max(max_differences(model.state_dict(), start).values()) > 1e-3


def test_floored_logsumexp_equals_logsumexp():
    gen = torch.Generator().manual_seed(0)
    x = 300 * torch.randn(64, 64, generator=gen, dtype=torch.float64)
    x[0] = 0.0
    x[1, 5] = 1e4
    assert torch.allclose(floored_logsumexp(x), torch.logsumexp(x, 1), rtol=1e-15, atol=0)
    xr = x.clone().requires_grad_(True)
    floored_logsumexp(xr).sum().backward()
    soft = torch.softmax(x, 1)
    assert torch.allclose(xr.grad, soft, rtol=1e-12, atol=1e-20)  # floored terms: < e^-50


def test_squared_distances_match_cdist():
    gen = torch.Generator().manual_seed(0)
    z, h = (
        torch.randn(50, 30, generator=gen, dtype=torch.float64),
        torch.randn(40, 30, generator=gen, dtype=torch.float64),
    )
    assert torch.allclose(squared_distances(z, h), torch.cdist(z, h).pow(2), rtol=1e-12, atol=1e-12)
