"""Statically binarized MNIST (Larochelle & Murray 2011).

The fixed binarization on which the VAE literature reports test
log-likelihoods (e.g. Burda et al. 2016, Appendix D). Two sources, same
arrays: tensorflow-datasets' ``binarized_mnist`` (needs the ``tfds`` extra and,
the first time, network access), or a local folder of ``{train,valid,test}.npz``
files each holding ``image`` of shape [N, 28, 28] uint8 in {0, 1} (the layout of
``../shared/data/binarized_mnist``).

References:
  Larochelle & Murray (2011), The Neural Autoregressive Distribution Estimator.
  Salakhutdinov & Murray (2008), On the Quantitative Analysis of Deep Belief
  Networks (the binarization).
"""

from __future__ import annotations

import os

import numpy as np

from vae import checks
from vae.data import base

DATA_SHAPE = (28, 28, 1)
SPLITS = ("train", "validation", "test")
_FILES = {"train": "train.npz", "validation": "valid.npz", "test": "test.npz"}


def _from_dir(split: str, data_dir: str) -> np.ndarray:
  path = os.path.join(data_dir, _FILES[split])
  if not os.path.exists(path):
    have = sorted(os.listdir(data_dir)) if os.path.isdir(data_dir) else "no such folder"
    raise FileNotFoundError(
        f"binarized_mnist split {split!r} expected at {path}; {data_dir} has: {have}")
  return checks.load_npz_array(path, "image")


def _from_tfds(split: str, tfds_data_dir: str | None) -> np.ndarray:
  try:
    import tensorflow_datasets as tfds  # lazy: `import vae` never loads TF
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("loading binarized_mnist from tensorflow-datasets needs "
                      "`pip install -e '.[tfds]'`, or pass data_dir= a folder of "
                      ".npz files (see README)") from e
  ds = tfds.load("binarized_mnist", split=split, data_dir=tfds_data_dir)
  # Batches of 10k rather than batch_size=-1: the latter aborts TensorFlow
  # 2.21 under tfds.testing.mock_data (std::length_error), and costs the same.
  parts = [b["image"] for b in tfds.as_numpy(ds.batch(10_000))]
  if not parts:
    raise ValueError(f"tensorflow-datasets binarized_mnist[{split}] is empty")
  return np.concatenate(parts)


def load(split: str = "train", data_dir: str | None = None,
         tfds_data_dir: str | None = None) -> np.ndarray:
  """Loads one split as a host array [N, 28, 28, 1] uint8 in {0, 1}.

  Args:
    split: "train" (50,000), "validation" (10,000) or "test" (10,000).
    data_dir: folder of .npz files; None reads tensorflow-datasets.
    tfds_data_dir: optional tfds data_dir (where tfds keeps prepared data).

  Returns:
    uint8 array [N, 28, 28, 1].

  Raises:
    ValueError: unknown split, or the file's contents are not binary images.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  images = _from_dir(split, data_dir) if data_dir else _from_tfds(split, tfds_data_dir)
  images = np.asarray(images)
  if images.ndim == 3:
    images = images[..., None]
  checks.check_data(images, data_shape=DATA_SHAPE, likelihood="bernoulli",
                    name=f"binarized_mnist[{split}]")
  return images.astype(np.uint8)


def _load_split(split: str, settings: base.DataSettings, max_examples: int = 0) -> np.ndarray:
  images = load(split, settings.data_dir or None, settings.tfds_data_dir or None)
  return images[:max_examples] if max_examples else images


DATASETS = (base.DataSet(
    "binarized_mnist", lambda settings: base.open_arrays(settings, _load_split),
    "statically binarized MNIST (Larochelle & Murray 2011): .npz folder (data_dir) or tfds",
    data_shape=DATA_SHAPE, splits=SPLITS, can_stream=True, load_split=_load_split),)
