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
  raise ValueError(f"array dataset must be 'binarized_mnist' (ground-truth sets: "
                   f"{GROUND_TRUTH}), got {name!r}")


DATA_SHAPES = {"binarized_mnist": binarized_mnist.DATA_SHAPE, "dsprites": (64, 64, 1)}

GROUND_TRUTH = ("dsprites", "tfds:dsprites", "tfds:shapes3d", "tfds:smallnorb")


def is_ground_truth(name: str) -> bool:
  return name in GROUND_TRUTH


def load_ground_truth(name: str, tfds_data_dir: str | None = None, split: str = "train"):
  """A ground-truth-factor data set by name.

  Args:
    name: "dsprites" (procedural, rendered on the device, no download) or
      "tfds:dsprites" / "tfds:shapes3d" / "tfds:smallnorb" (tensorflow-datasets).
    tfds_data_dir: tfds data_dir for the tfds sets.
    split: tfds split.
  """
  if name == "dsprites":
    from vae.data.dsprites import DSprites
    return DSprites()
  if name.startswith("tfds:") and name in GROUND_TRUTH:
    from vae.data.tfds_ground_truth import TfdsGroundTruth
    return TfdsGroundTruth(name[5:], split=split, data_dir=tfds_data_dir)
  raise ValueError(f"ground-truth dataset must be one of {GROUND_TRUTH}, got {name!r}")
