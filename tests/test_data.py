"""Binarized MNIST loaders: local .npz folder, the offline copy, and tfds."""

import os

import numpy as np
import pytest

from tests.conftest import SHARED_MNIST
from vae.data import binarized_mnist, load_dataset


def test_loads_a_folder_of_npz(npz_dir):
  train = binarized_mnist.load("train", npz_dir)
  valid = load_dataset("binarized_mnist", "validation", npz_dir)
  assert train.shape == (600, 28, 28, 1) and train.dtype == np.uint8
  assert valid.shape == (200, 28, 28, 1)
  assert set(np.unique(train)) <= {0, 1}


def test_missing_split_names_the_path(npz_dir):
  with pytest.raises(FileNotFoundError, match=r"split 'test' expected at .*test.npz"):
    binarized_mnist.load("test", npz_dir)
  with pytest.raises(ValueError, match="split must be one of"):
    binarized_mnist.load("dev", npz_dir)


def test_non_binary_file_is_rejected(tmp_path):
  np.savez(tmp_path / "train.npz", image=np.full((3, 28, 28), 7, np.uint8))
  with pytest.raises(ValueError, match=r"must be binary \(0 or 1\)"):
    binarized_mnist.load("train", str(tmp_path))
  np.savez(tmp_path / "valid.npz", pixels=np.zeros((3, 28, 28), np.uint8))
  with pytest.raises(ValueError, match=r"valid.npz must hold an array named 'image', has \['pixels'\]"):
    binarized_mnist.load("validation", str(tmp_path))


def test_a_damaged_npz_names_the_file_and_what_is_wrong(tmp_path):
  # np.load answers these with BadZipFile or a message about pickles, naming
  # no file.
  np.savez(tmp_path / "good.npz", image=np.zeros((3, 28, 28), np.uint8))
  good = (tmp_path / "good.npz").read_bytes()
  cases = {
      "truncated": (good[:len(good) // 2], "is a damaged .npz archive"),
      "cut_near_end": (good[:-30], "is a damaged .npz archive"),
      "garbage": (b"these are not the bytes you are looking for", "is not an .npz archive"),
      "empty": (b"", "is empty"),
  }
  for name, (content, what) in cases.items():
    d = tmp_path / name
    d.mkdir()
    (d / "train.npz").write_bytes(content)
    with pytest.raises(ValueError) as e:
      binarized_mnist.load("train", str(d))
    assert str(d / "train.npz") in str(e.value) and what in str(e.value), (name, str(e.value))
  d = tmp_path / "pickled"
  d.mkdir()
  np.savez(d / "train.npz", image=np.array([{"a": 1}], dtype=object))
  with pytest.raises(ValueError, match=r"train.npz holds 'image' as an object array"):
    binarized_mnist.load("train", str(d))


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="offline copy not present")
def test_offline_copy_has_the_published_sizes():
  valid = binarized_mnist.load("validation", SHARED_MNIST)
  assert valid.shape == (10_000, 28, 28, 1)
  assert 0.10 < valid.mean() < 0.16  # MNIST's fraction of ink


@pytest.mark.slow
def test_tfds_path_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=25, max_value=2):
    images = binarized_mnist.load("validation")
  assert images.shape == (25, 28, 28, 1) and images.dtype == np.uint8
  assert set(np.unique(images)) <= {0, 1}
  with tfds.testing.mock_data(num_examples=5):  # uint8 noise: not binary
    with pytest.raises(ValueError, match="must be binary"):
      binarized_mnist.load("train")


def test_import_vae_does_not_load_tensorflow():
  import subprocess
  import sys
  code = ("import sys, vae, vae.train, vae.data, vae.writers; "
          "print([m for m in ('tensorflow', 'tensorboardX', 'torch') if m in sys.modules])")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "[]"


def test_import_vae_changes_nothing_process_wide():
  """The malloc tuning is opt-in: importing every package of the library
  leaves the allocator alone; ``vae.allocator.tune()`` applies it."""
  import platform
  import subprocess
  import sys
  code = ("import vae, vae.train, vae.data, vae.metrics, vae.evaluate, vae.plots; "
          "from vae import allocator; print(allocator.applied()); "
          "print(allocator.tune())")
  env = {k: v for k, v in os.environ.items() if k != "VAE_TUNE_MALLOC"}
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env=env).stdout.split()
  assert out[0] == "False"
  glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
  assert out[1] == str(glibc)


def test_sklearn_digits_are_a_small_binary_image_set():
  pytest.importorskip("sklearn")
  from vae.data import digits
  x, y = digits.load()
  assert x.shape == (1797, 8, 8, 1) and x.dtype == np.uint8 and set(np.unique(x)) == {0, 1}
  assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
  xf, _ = digits.load(binarize=False)
  assert xf.dtype == np.float32 and xf.max() == 1.0 and xf.min() == 0.0


class _ReachedDownload(Exception):
  """Raised in place of the network call."""


def test_the_real_tfds_load_path_reaches_the_download(tmp_path, monkeypatch):
  # tensorflow-datasets 4.9.10 imports importlib_resources on
  # this path without declaring it; tfds.testing.mock_data never gets here.
  tfds = pytest.importorskip("tensorflow_datasets")

  def no_network(self, *args, **kwargs):
    raise _ReachedDownload(args)

  for name in ("download", "download_and_extract"):
    monkeypatch.setattr(tfds.download.DownloadManager, name, no_network)
  with pytest.raises(_ReachedDownload):
    binarized_mnist.load("train", None, str(tmp_path / "tfds"))


def test_the_registry_holds_every_data_set_as_a_record(npz_dir):
  import vae.data as data_lib
  assert {"binarized_mnist", "images", "dsprites", "gratings", "tfds:dsprites",
          "tfds:shapes3d", "tfds:smallnorb"} <= set(data_lib.REGISTRY)
  for name, record in data_lib.REGISTRY.items():
    assert record.name == name
    assert record.has_factors == (record.splits is None), name   # sampled, or stored splits
    assert record.has_factors or record.load_split is not None, name
  with pytest.raises(ValueError, match="dataset must be one of .*'binarized_mnist'"):
    data_lib.get("mnist")
  opened = data_lib.open_dataset(data_lib.DataSettings(
      "binarized_mnist", data_dir=npz_dir, source="memory", eval_examples=7))
  assert opened.fingerprint == {"source": "memory", "num_train": len(opened.train)}
  assert opened.eval.shape == (7, 28, 28, 1) and opened.ground_truth is None
  with pytest.raises(ValueError, match="data_source must be one of"):
    data_lib.open_dataset(data_lib.DataSettings("binarized_mnist", source="disk"))
