"""Linear probes on frozen layers (Sec. 4) and what they bound: accuracy, and the cross-entropy
whose gap to H(Y) is a lower bound on I(Y; L) (H(Y) - CE <= I(Y; L), Eq. 2's label term)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ibcore.core.data import Dataset


@torch.no_grad()
def apply_in_chunks(module: nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """module(x) without autograd, in chunks of ``chunk`` samples."""
    return torch.cat([module(x[k : k + chunk]) for k in range(0, x.shape[0], chunk)])


@torch.no_grad()
def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of samples whose arg-max output equals the label."""
    return float((apply_in_chunks(module, x).argmax(1) == y).float().mean())


def train_linear_probe(
    train_features: torch.Tensor,
    y_train: torch.Tensor,
    num_classes: int,
    steps: int,
    lr: float,
    gen: torch.Generator,
    batch_size: int = 256,
) -> nn.Linear:
    """One linear layer on frozen features, trained with cross-entropy (Sec. 4)."""
    feats = train_features.detach().flatten(1)
    torch.manual_seed(int(torch.randint(2**62, (), generator=gen, device=gen.device)))  # init from gen
    probe = nn.Linear(feats.shape[1], num_classes).to(feats.device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    batch = min(batch_size, feats.shape[0])
    for _ in range(steps):
        idx = torch.randint(feats.shape[0], (batch,), generator=gen, device=feats.device)
        loss = F.cross_entropy(probe(feats[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return probe


def probe_accuracies(
    net: nn.Module,
    data: Dataset,
    steps: int,
    lr: float,
    gen: torch.Generator,
    train_features: torch.Tensor | None = None,
) -> tuple[float, float]:
    """(train, test) accuracy of :func:`probe_report` (``train_features``, when given, is
    ``net(data.x_train)`` computed already: layer-wise training holds it)."""
    report = probe_report(net, data, steps, lr, gen, train_features)
    return report["train"], report["test"]


def probe_report(
    net: nn.Module,
    data: Dataset,
    steps: int,
    lr: float,
    gen: torch.Generator,
    train_features: torch.Tensor | None = None,
) -> dict[str, float]:
    """Accuracy of a linear probe post-trained on the frozen ``net``'s output on the training
    set, on the test set and, when ``data`` holds one, on the validation split (key "val"), with
    the probe's mean cross-entropy there in nats (key "val_ce": H(Y) - val_ce estimates a lower
    bound on I(Y; L), see :func:`label_entropy`)."""
    if train_features is None:
        train_features = apply_in_chunks(net, data.x_train)
    train_f = train_features.flatten(1)
    probe = train_linear_probe(train_f, data.y_train, data.num_classes, steps, lr, gen)
    out = {
        "train": accuracy(probe, train_f, data.y_train),
        "test": accuracy(probe, apply_in_chunks(net, data.x_test).flatten(1), data.y_test),
    }
    if data.x_val is not None:
        val_f = apply_in_chunks(net, data.x_val).flatten(1)
        out["val"] = accuracy(probe, val_f, data.y_val)
        out["val_ce"] = float(F.cross_entropy(apply_in_chunks(probe, val_f), data.y_val))
    return out


def label_entropy(y: torch.Tensor, num_classes: int) -> float:
    """H(Y) in nats of the empirical label frequencies of ``y``.

    With the cross-entropy CE of any classifier q(y | l) on the same samples, H(Y) - CE is the
    sample estimate of H(Y) - E[-log q(Y | L)] <= H(Y) - H(Y | L) = I(Y; L) (the variational
    bound behind Eq. 2's label term); it is not clipped, so it may fall below 0."""
    counts = torch.bincount(y.flatten().long(), minlength=num_classes).double()
    p = counts[counts > 0] / counts.sum()
    return float(-(p * p.log()).sum())
