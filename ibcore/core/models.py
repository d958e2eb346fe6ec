"""The measured nets as explicit stacks of layers ("blocks"); the last block is linear.

Block i maps L_{i-1} to L_i (L_0 = X). ``prefix(i)`` is F_i, the sub-net of blocks 1..i that
AA-MINE copies (Sec. 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LayerStack(nn.Module):
    """A net given as an ordered list of blocks; block i outputs the representation L_i."""

    def __init__(self, blocks: Sequence[nn.Module]) -> None:
        super().__init__()
        if not blocks:
            raise ValueError("a LayerStack needs at least one block")
        self.blocks = nn.ModuleList(blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def prefix(self, i: int) -> nn.Sequential:
        """F_i: blocks 1..i (1-based), sharing parameters with this net."""
        if not 1 <= i <= len(self.blocks):
            raise ValueError(f"layer index must lie in 1..{len(self.blocks)}, got {i}")
        return nn.Sequential(*self.blocks[:i])

    @torch.no_grad()
    def representations(self, x: torch.Tensor, batch_size: int = 4096) -> list[torch.Tensor]:
        """[L_1(x), ..., L_n(x)] computed in chunks without autograd."""
        outs: list[list[torch.Tensor]] = [[] for _ in self.blocks]
        for start in range(0, x.shape[0], batch_size):
            h = x[start : start + batch_size]
            for k, block in enumerate(self.blocks):
                h = block(h)
                outs[k].append(h)
        return [torch.cat(o) for o in outs]


def mlp(widths: Sequence[int] = (784, 512, 256, 10)) -> LayerStack:
    """MLP with ReLU after every hidden layer and a linear last layer; input is flattened."""
    widths = list(widths)
    if len(widths) < 2 or any(int(w) <= 0 for w in widths):
        raise ValueError(f"widths must list at least two positive sizes, got {widths}")
    blocks: list[nn.Module] = []
    for k, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers: list[nn.Module] = [nn.Flatten()] if k == 0 else []
        layers.append(nn.Linear(w_in, w_out))
        if k < len(widths) - 2:
            layers.append(nn.ReLU())
        blocks.append(nn.Sequential(*layers))
    return LayerStack(blocks)


def convnet(
    in_channels: int = 3,
    channels: Sequence[int] = (32, 64, 128),
    image_size: int = 32,
    num_outputs: int = 10,
) -> LayerStack:
    """Conv-net: blocks of 3x3 conv + ReLU + 2x2 max-pool, then one linear block."""
    channels = list(channels)
    if not channels or any(int(c) <= 0 for c in channels):
        raise ValueError(f"channels must list positive sizes, got {channels}")
    if image_size % (2 ** len(channels)):
        raise ValueError(f"image_size={image_size} is not divisible by 2^{len(channels)} (one pool a block)")
    blocks: list[nn.Module] = []
    c_in = in_channels
    for c in channels:
        blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)))
        c_in = c
    side = image_size // 2 ** len(channels)
    blocks.append(nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, num_outputs)))
    return LayerStack(blocks)


def build_model(arch: str, **kwargs) -> LayerStack:
    """``arch`` is "mlp" or "convnet"; keyword arguments go to that constructor."""
    builders = {"mlp": mlp, "convnet": convnet}
    if arch not in builders:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(builders)}")
    return builders[arch](**kwargs)
