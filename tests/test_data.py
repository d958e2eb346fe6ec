"""ibcore.core.data: shapes, normalisation, stratified subsets and clear errors for bad files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ibcore.core.data
from ibcore.core.data import (
    DATA_ENV,
    SPECS,
    DataError,
    find_file,
    load_arrays,
    load_dataset,
    stratified_subset,
    to_tensor_images,
)

SHARED = find_file("mnist").parent


@pytest.fixture(scope="module")
def mnist_raw() -> dict[str, np.ndarray]:
    return load_arrays("mnist")[0]


@pytest.fixture(scope="module")
def cifar_small(one_thread):
    """CIFAR-10 read once: a 2 % training subset (100 a class) and the raw arrays it came from."""
    seen = {}
    real = ibcore.core.data.load_arrays

    def spy(name, data_dir=None):
        seen["arrays"], path = real(name, data_dir)
        return seen["arrays"], path

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ibcore.core.data, "load_arrays", spy)
        data = load_dataset("cifar10", fraction=0.02, subset_seed=0)
    return data, seen["arrays"]


# -- MNIST ---------------------------------------------------------------------------------


def test_mnist_subset_shapes_and_dtypes(mnist_small):
    d = mnist_small
    assert d.name == "mnist" and d.num_classes == 10
    assert d.x_train.shape == (600, 1, 28, 28) and d.x_train.dtype == torch.float32
    assert d.y_train.shape == (600,) and d.y_train.dtype == torch.int64
    assert d.x_test.shape == (10000, 1, 28, 28) and d.x_test.dtype == torch.float32
    assert d.y_test.shape == (10000,) and d.y_test.dtype == torch.int64
    assert d.x_train.device.type == "cpu"
    assert d.source["n_train"] == 600 and d.source["n_test"] == 10000
    assert d.source["fraction"] == 0.01 and d.source["subset_seed"] == 0
    assert d.source["sha256"] == "094b831e432331f1f6d6829ab9bfff4551410a81e1f816c9cce482d3e9b3ba57"


def test_mnist_subset_is_stratified(mnist_small):
    counts = torch.bincount(mnist_small.y_train, minlength=10)
    assert counts.tolist() == [60] * 10


def test_mnist_normalisation(mnist_small, mnist_raw):
    # the constants are the statistics of the whole training set, so it normalises to mean 0, std 1
    raw = mnist_raw["x_train"]
    (mean,), (std,) = SPECS["mnist"]["mean"], SPECS["mnist"]["std"]
    assert abs((raw.mean() / 255 - mean) / std) < 1e-3
    assert abs(raw[::5].std() / 255 / std - 1) < 5e-3  # every fifth image: fast, to ~1e-3
    # the subset as loaded: close to mean 0, std 1
    assert abs(float(mnist_small.x_train.mean())) < 0.05
    assert abs(float(mnist_small.x_train.std()) - 1) < 0.05


def test_mnist_subset_images_match_their_labels(mnist_small, mnist_raw):
    """The subset's images are the raw images at the subset's indices, normalised, with their labels."""
    keep = stratified_subset(torch.from_numpy(mnist_raw["y_train"]), 0.01, seed=0)
    assert keep.numel() == 600 and torch.equal(keep, keep.sort().values)
    assert torch.equal(mnist_small.y_train, torch.from_numpy(mnist_raw["y_train"])[keep])
    want = (torch.from_numpy(mnist_raw["x_train"][keep.numpy()]).float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(mnist_small.x_train[:, 0], want)


def test_mnist_test_set_is_the_full_official_one(mnist_small, mnist_raw):
    assert torch.equal(mnist_small.y_test, torch.from_numpy(mnist_raw["y_test"]))
    torch.testing.assert_close(mnist_small.x_test, to_tensor_images(mnist_raw["x_test"], "mnist"))


def test_subset_repeatable_with_seed_and_different_with_another(mnist_small):
    again = load_dataset("mnist", fraction=0.01, subset_seed=0)
    assert torch.equal(again.x_train, mnist_small.x_train)
    assert torch.equal(again.y_train, mnist_small.y_train)
    other = load_dataset("mnist", fraction=0.01, subset_seed=1)
    assert other.x_train.shape == mnist_small.x_train.shape
    assert not torch.equal(other.x_train, mnist_small.x_train)
    assert torch.bincount(other.y_train, minlength=10).tolist() == [60] * 10
    assert other.x_test.shape[0] == 10000 and torch.equal(other.y_test, mnist_small.y_test)


def test_stratified_subset_on_labels():
    labels = torch.arange(1000) % 10
    a = stratified_subset(labels, 0.1, seed=3)
    assert torch.bincount(labels[a], minlength=10).tolist() == [10] * 10
    assert torch.equal(a, stratified_subset(labels, 0.1, seed=3))
    assert not torch.equal(a, stratified_subset(labels, 0.1, seed=4))
    assert len(set(a.tolist())) == a.numel()  # no index twice
    assert torch.equal(stratified_subset(labels, 1.0, seed=3), torch.arange(1000))


# -- CIFAR-10 ------------------------------------------------------------------------------


def test_cifar10_shapes_dtypes_and_normalisation(cifar_small):
    d, raw = cifar_small
    assert d.name == "cifar10"
    assert d.x_train.shape == (1000, 3, 32, 32) and d.x_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64
    assert torch.bincount(d.y_train, minlength=10).tolist() == [100] * 10
    assert d.x_test.shape == (10000, 3, 32, 32) and d.y_test.shape == (10000,)
    assert torch.equal(d.y_test, torch.from_numpy(raw["y_test"]))
    # channel constants are the whole training set's (this copy matches them to ~1e-4)
    per_channel = raw["x_train"].reshape(-1, 3)[::7].mean(0) / 255
    np.testing.assert_allclose(per_channel, SPECS["cifar10"]["mean"], atol=2e-3)
    assert d.x_train.mean((0, 2, 3)).abs().max() < 0.05
    assert (d.x_train.std((0, 2, 3)) - 1).abs().max() < 0.05
    # HWC RGB -> CHW with each channel normalised by its own constants
    k = 5
    keep = stratified_subset(torch.from_numpy(raw["y_train"]), 0.02, seed=0)
    img = torch.from_numpy(raw["x_train"][int(keep[k])]).float().permute(2, 0, 1) / 255
    mean = torch.tensor(SPECS["cifar10"]["mean"]).view(3, 1, 1)
    std = torch.tensor(SPECS["cifar10"]["std"]).view(3, 1, 1)
    torch.testing.assert_close(d.x_train[k], (img - mean) / std)


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["svhn", "MNIST", ""])
def test_unknown_dataset(name):
    with pytest.raises(ValueError, match="dataset"):
        load_dataset(name)


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5, math.nan, "0.1"])
def test_fraction_outside_unit_interval(fraction, monkeypatch):
    monkeypatch.setattr(ibcore.core.data, "load_arrays", _no_reading)
    with pytest.raises(ValueError, match="fraction"):
        load_dataset("mnist", fraction=fraction)


def test_missing_device_fails_before_reading(monkeypatch):
    monkeypatch.setattr(ibcore.core.data, "load_arrays", _no_reading)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="device"):
        load_dataset("mnist", device="cuda")


def _no_reading(*args, **kwargs):
    raise AssertionError("the data file was read before the arguments were checked")


def test_missing_file_names_folder_file_and_remedy(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "mnist.npz" in msg
    assert DATA_ENV in msg and "download" in msg


def test_missing_file_via_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match="cifar10.npz") as err:
        find_file("cifar10")
    assert str(tmp_path) in str(err.value)


def test_data_dir_and_environment_are_used(tmp_path, monkeypatch):
    assert find_file("mnist", SHARED) == SHARED / "mnist.npz"
    monkeypatch.setenv(DATA_ENV, str(SHARED))
    assert find_file("mnist") == SHARED / "mnist.npz"


def _fake_mnist(n_train: int = 60000, n_test: int = 10000, **override) -> dict[str, np.ndarray]:
    arrays = {
        "x_train": np.zeros((n_train, 28, 28), np.uint8),
        "y_train": np.arange(n_train, dtype=np.int64) % 10,
        "x_test": np.zeros((n_test, 28, 28), np.uint8),
        "y_test": np.arange(n_test, dtype=np.int64) % 10,
    }
    arrays.update(override)
    return {k: v for k, v in arrays.items() if v is not None}


@pytest.fixture(scope="module")
def good_fake_bytes(tmp_path_factory) -> bytes:
    """A well-formed (all black) MNIST file, compressed so it stays small."""
    path = tmp_path_factory.mktemp("fake") / "mnist.npz"
    np.savez_compressed(path, **_fake_mnist())
    return path.read_bytes()


def test_well_formed_fake_file_loads(tmp_path, good_fake_bytes):
    (tmp_path / "mnist.npz").write_bytes(good_fake_bytes)
    arrays, path = load_arrays("mnist", tmp_path)
    assert path == tmp_path / "mnist.npz" and arrays["x_train"].shape == (60000, 28, 28)


@pytest.mark.parametrize("cut", [0.5, 0.99, 0.0])
def test_truncated_file(tmp_path, good_fake_bytes, cut):
    path = tmp_path / "mnist.npz"
    path.write_bytes(good_fake_bytes[: int(cut * len(good_fake_bytes))])
    with pytest.raises(DataError, match="truncated") as err:
        load_arrays("mnist", tmp_path)
    assert str(path) in str(err.value)


def test_corrupted_member(tmp_path, good_fake_bytes):
    """Bytes flipped inside the compressed data, the archive's directory intact."""
    raw = bytearray(good_fake_bytes)
    mid = len(raw) // 3
    raw[mid : mid + 64] = bytes(64)
    (tmp_path / "mnist.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="could not be read"):
        load_arrays("mnist", tmp_path)


def test_not_an_npz_file(tmp_path):
    (tmp_path / "mnist.npz").write_text("<html>404 not found</html>")
    with pytest.raises(DataError, match="is not an .npz file"):
        load_arrays("mnist", tmp_path)


def test_wrong_key(tmp_path):
    arrays = _fake_mnist(10, 10)
    arrays["labels"] = arrays.pop("y_test")
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(DataError, match="y_test") as err:
        load_arrays("mnist", tmp_path)
    assert "lacks" in str(err.value) and str(tmp_path / "mnist.npz") in str(err.value)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"x_train": np.zeros((600, 28, 28), np.uint8)}, r"x_train is uint8 \(600, 28, 28\)"),
        ({"x_train": np.zeros((60000, 32, 32), np.uint8)}, r"expected uint8 \(60000, 28, 28\)"),
        ({"x_train": np.zeros((6, 28, 28), np.float32)}, "x_train is float32"),
        ({"x_test": np.zeros((10000, 28, 28, 1), np.uint8)}, "x_test"),
        ({"y_train": np.zeros((60000, 1), np.int64)}, r"y_train has shape \(60000, 1\)"),
        ({"y_test": np.full(10000, 10, np.int64)}, "y_test holds labels outside 0..9"),
    ],
)
def test_wrong_shape_or_dtype(tmp_path, override, match):
    np.savez(tmp_path / "mnist.npz", **_fake_mnist(**override))
    with pytest.raises(DataError, match=match):
        load_arrays("mnist", tmp_path)


def test_cifar_file_with_mnist_shapes(tmp_path):
    np.savez(tmp_path / "cifar10.npz", **_fake_mnist(50000, 10000))
    with pytest.raises(DataError, match=r"expected uint8 \(50000, 32, 32, 3\)"):
        load_arrays("cifar10", tmp_path)


def _write_idx(path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of the MNIST distribution files."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_download_converts_torchvision_mnist_files(tmp_path, mnist_raw):
    """The download path reads torchvision's MNIST files and writes the npz format exactly.

    No network here: the raw files torchvision would fetch are written from the stored copy,
    so torchvision finds them and skips the fetch; its parser and our conversion both run."""
    raw = tmp_path / "torchvision" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", mnist_raw[f"x_{split}"])
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", mnist_raw[f"y_{split}"].astype(np.uint8))
    target = ibcore.core.data.download("mnist", tmp_path)
    assert target == tmp_path / "mnist.npz"
    assert not list(tmp_path.glob("*.tmp"))
    arrays, _ = load_arrays("mnist", tmp_path)
    for key, value in mnist_raw.items():
        assert arrays[key].dtype == value.dtype
        np.testing.assert_array_equal(arrays[key], value)


def test_download_converts_cifar10_layout(tmp_path, monkeypatch):
    """CIFAR-10 as torchvision holds it (HWC uint8 array, list of labels) becomes the npz format."""
    import torchvision.datasets

    rng = np.random.default_rng(0)

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert download
            n = 50000 if train else 10000
            self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            self.targets = [int(t) for t in rng.integers(0, 10, size=n)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    target = ibcore.core.data.download("cifar10", tmp_path)
    arrays, path = load_arrays("cifar10", tmp_path)
    assert path == target
    assert arrays["x_train"].shape == (50000, 32, 32, 3) and arrays["y_test"].dtype == np.int64
