"""MNIST and CIFAR-10 from the project's npz format, held whole as tensors on the device.

The npz format (``shared/data/README.md``): keys x_train, y_train, x_test, y_test; uint8 images
(MNIST [N,28,28], CIFAR-10 [N,32,32,3] HWC RGB) and int64 labels. The data folder comes from
the ``data_dir`` argument, else the ``IBCORE_DATA`` environment variable, else the first of
``./data`` and ``../shared/data`` (beside the repository) that holds the file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ibcore.core.runtime import resolve_device

DATA_ENV = "IBCORE_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]

SPECS: dict[str, dict] = {
    "mnist": {
        "file": "mnist.npz",
        "image_shape": (28, 28),
        "n_train": 60000,
        "n_test": 10000,
        "num_classes": 10,
        "mean": (0.1307,),
        "std": (0.3081,),
    },
    "cifar10": {
        "file": "cifar10.npz",
        "image_shape": (32, 32, 3),
        "n_train": 50000,
        "n_test": 10000,
        "num_classes": 10,
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
}


class DataError(RuntimeError):
    """A data file is missing, truncated or not in the expected format."""


def check_dataset_name(name: str) -> dict:
    """The spec of data set ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if name not in SPECS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SPECS)}")
    return SPECS[name]


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for the npz files, in order."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    if os.environ.get(DATA_ENV):
        return [Path(os.environ[DATA_ENV]).expanduser()]
    return [Path.cwd() / "data", REPO_ROOT / "data", REPO_ROOT.parent / "shared" / "data"]


def find_file(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of the npz file of data set ``name``; a clear ``DataError`` when it is nowhere."""
    spec = check_dataset_name(name)
    dirs = candidate_dirs(data_dir)
    for d in dirs:
        if (d / spec["file"]).is_file():
            return d / spec["file"]
    searched = ", ".join(str(d) for d in dirs)
    raise DataError(
        f"{spec['file']} was not found in {searched}. Point the data_dir parameter or the "
        f"{DATA_ENV} environment variable at a folder that holds it, or, with internet access, "
        f"run `python -m ibcore.core.data download {name} --data-dir DIR` to fetch it with torchvision."
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: First bytes of an .npz file (a zip archive; an empty one starts with the end record).
NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def check_npz_header(path: Path, name: str) -> None:
    """Raise ``DataError`` when ``path`` is not a zip archive (e.g. an HTML error page saved by
    a failed download)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise DataError(f"{path} could not be read ({err.strerror}); check its permissions") from None
    if not head.startswith(NPZ_MAGIC):
        looks = "an HTML page" if head.lstrip()[:1] == b"<" else "something else"
        raise DataError(
            f"{path} is not an .npz file (it starts with {head[:16]!r}, {looks}); delete it and fetch "
            f"it again with `python -m ibcore.core.data download {name} --data-dir DIR`, or copy a good "
            "copy there"
        )


def check_labels(y: np.ndarray, path: Path, split: str, num_classes: int) -> np.ndarray:
    """``y`` as int64 after checking that every label is an integer in 0..num_classes-1 (float
    arrays of whole numbers are accepted; NaN or fractional values raise ``DataError``)."""
    key = f"y_{split}"
    if y.dtype == np.bool_ or not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{path}: {key} has dtype {y.dtype}; labels must be integers 0..{num_classes - 1}")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: {key} holds {int(bad.sum())} non-integer or NaN labels (first {y[i]!r} at "
                f"index {i}); labels must be integers 0..{num_classes - 1}"
            )
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{path}: {key} holds labels outside 0..{num_classes - 1}")
    return y.astype(np.int64)


def load_arrays(name: str, data_dir: str | os.PathLike | None = None) -> tuple[dict[str, np.ndarray], Path]:
    """The four arrays of data set ``name`` after checking keys, shapes, dtypes and labels
    (returned as int64)."""
    spec = check_dataset_name(name)
    path = find_file(name, data_dir)
    check_npz_header(path, name)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as err:
        raise DataError(f"{path} lacks the array {err}; expected x_train, y_train, x_test, y_test") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path} could not be read ({err}); it may be truncated: fetch it again") from err
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        want = (spec[f"n_{split}"], *spec["image_shape"])
        if x.shape != want or x.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} is {x.dtype} {x.shape}, expected uint8 {want}")
        if y.shape != (want[0],):
            raise DataError(f"{path}: y_{split} has shape {y.shape}, expected ({want[0]},)")
        arrays[f"y_{split}"] = check_labels(y, path, split, spec["num_classes"])
    return arrays, path


def to_tensor_images(x: np.ndarray, name: str) -> torch.Tensor:
    """uint8 images -> float [N, C, H, W] normalised with the data set's channel mean and std."""
    spec = SPECS[name]
    t = torch.from_numpy(x).float().div_(255.0)
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    return ((t - mean) / std).contiguous()


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a class-balanced random subset of ``fraction`` of the samples.

    Each class gets round(fraction * N / C) samples (MNIST 1 %: 600 images, 60 a class),
    drawn with ``seed``; ``fraction`` = 1 keeps everything.
    """
    check_fraction(fraction)
    if fraction == 1.0:
        return torch.arange(labels.numel())
    gen = torch.Generator().manual_seed(seed)
    classes = torch.unique(labels).tolist()
    per_class = max(1, int(round(fraction * labels.numel() / len(classes))))
    picked = []
    for c in classes:
        idx = torch.nonzero(labels == c).squeeze(1)
        k = min(per_class, idx.numel())
        picked.append(idx[torch.randperm(idx.numel(), generator=gen)[:k]])
    return torch.sort(torch.cat(picked)).values


def check_fraction(fraction: float) -> None:
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")


@dataclass
class Dataset:
    """A data set resident on one device: normalised images and labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: dict
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def num_classes(self) -> int:
        return SPECS[self.name]["num_classes"]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    fraction: float = 1.0,
    subset_seed: int = 0,
) -> Dataset:
    """Data set ``name`` on ``device``: a stratified ``fraction`` of the training set (drawn
    with ``subset_seed``) and the whole official test set."""
    check_dataset_name(name)
    check_fraction(fraction)
    device = resolve_device(device)
    arrays, path = load_arrays(name, data_dir)
    y_train = torch.from_numpy(arrays["y_train"].astype(np.int64))
    keep = stratified_subset(y_train, fraction, subset_seed)
    x_train = to_tensor_images(arrays["x_train"][keep.numpy()], name)
    source = {
        "file": str(path),
        "sha256": file_digest(path),
        "fraction": fraction,
        "subset_seed": subset_seed,
        "n_train": int(keep.numel()),
        "n_test": int(arrays["y_test"].shape[0]),
    }
    return Dataset(
        name=name,
        x_train=x_train.to(device),
        y_train=y_train[keep].to(device),
        x_test=to_tensor_images(arrays["x_test"], name).to(device),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)).to(device),
        source=source,
    )


def balanced_draw(labels: torch.Tensor, pool: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of ``size`` samples of ``pool`` (indices into ``labels``), class-balanced:
    size // C a class, the remainder one more to the first classes, drawn with ``gen``."""
    classes = torch.unique(labels).tolist()
    base, extra = divmod(size, len(classes))
    picked = []
    for k, c in enumerate(classes):
        idx = pool[labels[pool] == c]
        want = base + (k < extra)
        if want > idx.numel():
            raise ValueError(f"class {c} has only {idx.numel()} images left for a validation split of {size}")
        picked.append(idx[torch.randperm(idx.numel(), generator=gen)[:want]])
    return torch.sort(torch.cat(picked)).values


#: The validation draw's generator is seeded with subset_seed + this (distinct from the subset's).
VAL_SEED_OFFSET = 7919


def with_validation(data: Dataset, val_size: int, data_dir: str | os.PathLike | None = None) -> Dataset:
    """``data`` with ``val_size`` training images held out as a class-balanced validation split.

    For a fractional subset the split comes from outside the subset (the run trains on the same
    images as without a split); for the full set it is taken out of the training set, which
    keeps the rest. Deterministic given the subset seed (``data.source["subset_seed"]``).
    """
    if not (isinstance(val_size, int) and val_size > 0):
        raise ValueError(f"val_size must be a positive integer, got {val_size!r}")
    if data.x_val is not None:
        raise ValueError("data already holds a validation split; load the data set afresh")
    fraction, seed = data.source["fraction"], data.source["subset_seed"]
    arrays, _ = load_arrays(data.name, data_dir if data_dir is not None else Path(data.source["file"]).parent)
    labels = torch.from_numpy(arrays["y_train"].astype(np.int64))
    keep = stratified_subset(labels, fraction, seed)
    if keep.numel() != data.x_train.shape[0]:
        raise ValueError("data does not hold the subset its source names; load it with load_dataset first")
    gen = torch.Generator().manual_seed(seed + VAL_SEED_OFFSET)
    device = data.x_train.device
    source = {**data.source, "val_size": val_size}
    if fraction < 1:
        outside = torch.ones(labels.numel(), dtype=torch.bool)
        outside[keep] = False
        val = balanced_draw(labels, torch.nonzero(outside).squeeze(1), val_size, gen)
        x_val = to_tensor_images(arrays["x_train"][val.numpy()], data.name).to(device)
        return replace(data, x_val=x_val, y_val=labels[val].to(device), source=source)
    val = balanced_draw(labels, keep, val_size, gen)
    rest = torch.ones(labels.numel(), dtype=torch.bool)
    rest[val] = False
    rest_dev = rest.to(device)
    source["n_train"] = int(rest.sum())
    return replace(
        data,
        x_train=data.x_train[rest_dev],
        y_train=data.y_train[rest_dev],
        x_val=data.x_train[val.to(device)],
        y_val=data.y_train[val.to(device)],
        source=source,
    )


_DIGESTS: dict[tuple[str, float, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of ``path``, cached per (path, mtime, size)."""
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256(path)
    return _DIGESTS[key]


def download(name: str, data_dir: str | os.PathLike) -> Path:
    """Fetch ``name`` with torchvision's downloader and store it once in the npz format."""
    from torchvision import datasets

    spec = check_dataset_name(name)
    out_dir = Path(data_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10}[name]
    raw = out_dir / "torchvision"
    splits = {s: cls(str(raw), train=(s == "train"), download=True) for s in ("train", "test")}
    arrays = {}
    for s, ds in splits.items():
        data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
        arrays[f"x_{s}"] = data.astype(np.uint8)
        arrays[f"y_{s}"] = np.asarray(ds.targets, dtype=np.int64)
    target = out_dir / spec["file"]
    with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".npz.tmp", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, target)
    return target


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Fetch a data set into the ibcore npz format")
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download", help="download with torchvision and convert")
    d.add_argument("name", choices=sorted(SPECS))
    d.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    print(download(args.name, args.data_dir))


if __name__ == "__main__":
    main()
