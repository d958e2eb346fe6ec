"""Which runs may share a group (issue 14): every config field but seed, beta, sigma and
sigma mode must match, with the penalty as it acts (none at beta = 0: the tied path of Eq. 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict

from ibcore.core.config import TrainConfig
from ibcore.core.data import Dataset

#: Config fields that may differ within a group (everything else must match).
PER_RUN = ("seed", "beta", "sigma", "sigma_mode")
#: Penalties whose statistics network has its own parameters (a copy of block i).
CRITIC_PENALTIES = ("aamine", "aamine_stopgrad")


# -- grouping -------------------------------------------------------------------------------


def effective_penalty(config: TrainConfig) -> str:
    """The penalty a run trains with: none acts at beta = 0, whose run takes the tied path."""
    return config.penalty if config.method == "ib" and config.beta > 0 else "tied"


def group_key(config: TrainConfig) -> str:
    """What must match for runs to share a group: every field but :data:`PER_RUN`, with the
    penalty (and its critic steps) as it acts."""
    d = asdict(config)
    for name in PER_RUN:
        d.pop(name)
    d["penalty"] = effective_penalty(config)
    d["critic_steps"] = config.critic_steps if d["penalty"] in CRITIC_PENALTIES else 1
    return repr(sorted(d.items()))


def group_configs(configs: Iterable[TrainConfig], max_size: int = 0) -> list[list[TrainConfig]]:
    """``configs`` split into groups (order of first appearance kept), each at most ``max_size``
    runs (0: no limit)."""
    groups: dict[str, list[TrainConfig]] = {}
    for c in configs:
        groups.setdefault(group_key(c), []).append(c)
    out = []
    for members in groups.values():
        size = max_size or len(members)
        out += [members[k : k + size] for k in range(0, len(members), size)]
    return out


def check_group(configs: Sequence[TrainConfig], datas: Sequence[Dataset]) -> None:
    """Raise ValueError unless the runs may share a group and each run's data fit its config."""
    if not configs:
        raise ValueError("a group needs at least one run")
    if len({group_key(c) for c in configs}) != 1:
        raise ValueError(f"these runs differ in more than {PER_RUN}: group them with group_configs")
    if len(datas) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(datas)} data sets")
    for c, d in zip(configs, datas, strict=True):
        if d.name != c.dataset:
            raise ValueError(f"config is for {c.dataset!r} but data holds {d.name!r}")
        n_val = 0 if d.x_val is None else d.x_val.shape[0]
        if n_val != c.val_size:
            raise ValueError(f"config.val_size = {c.val_size} but data holds a validation split of {n_val}")
    if len({d.x_train.shape for d in datas}) != 1:
        raise ValueError("the runs' training sets differ in shape")
