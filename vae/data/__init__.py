"""Data sources. ``load_dataset(config)`` returns host arrays for a config."""

from __future__ import annotations

import numpy as np

from vae.data import binarized_mnist


def load_dataset(name: str, split: str, data_dir: str | None = None,
                 tfds_data_dir: str | None = None) -> np.ndarray:
  """Loads a split of a named array data set as a host array [N, *shape].

  Args:
    name: "binarized_mnist".
    split: "train", "validation" or "test".
    data_dir: optional local folder (see the data set's module).
    tfds_data_dir: optional tfds data_dir.
  """
  if name == "binarized_mnist":
    return binarized_mnist.load(split, data_dir or None, tfds_data_dir or None)
  raise ValueError(f"dataset must be one of ('binarized_mnist',), got {name!r}")


DATA_SHAPES = {"binarized_mnist": binarized_mnist.DATA_SHAPE}
