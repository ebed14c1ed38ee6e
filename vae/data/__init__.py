"""Data sets by name: ``load_dataset(name, split)`` returns a host array,
``load_ground_truth(name)`` a data set with known factors; your own images
(a folder or an ``.npz``) are read by ``vae.data.images``; training sources
are in ``vae.data.sources`` (on the device) and ``vae.data.streaming`` (read
on the host, for data larger than memory)."""

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
  raise ValueError(f"array dataset must be 'binarized_mnist' or 'images' (your own: "
                   f"vae.data.images; ground-truth sets: {GROUND_TRUTH}), got {name!r}")


DATA_SHAPES = {"binarized_mnist": binarized_mnist.DATA_SHAPE, "dsprites": (64, 64, 1)}

GROUND_TRUTH = ("dsprites", "tfds:dsprites", "tfds:shapes3d", "tfds:smallnorb")


def is_ground_truth(name: str) -> bool:
  return name in GROUND_TRUTH


def splits(name: str) -> tuple[str, ...] | None:
  """The split names of an array data set; None for ground-truth sets (their
  evaluation data is a held-out sample of renders, whatever the split)."""
  if name == "binarized_mnist":
    return binarized_mnist.SPLITS
  if name == "images":
    from vae.data import images
    return images.SPLITS
  return None


def load_ground_truth(name: str, tfds_data_dir: str | None = None, split: str | None = None):
  """A ground-truth-factor data set by name.

  Args:
    name: "dsprites" (procedural, rendered on the device, no download) or
      "tfds:dsprites" / "tfds:shapes3d" / "tfds:smallnorb" (tensorflow-datasets).
    tfds_data_dir: tfds data_dir for the tfds sets.
    split: tfds split; None: the set's default ("train"; "train+test" for
      smallnorb, as disentanglement_lib).
  """
  if name == "dsprites":
    from vae.data.dsprites import DSprites
    return DSprites()
  if name.startswith("tfds:") and name in GROUND_TRUTH:
    from vae.data.tfds_ground_truth import TfdsGroundTruth
    return TfdsGroundTruth(name[5:], split=split, data_dir=tfds_data_dir)
  raise ValueError(f"ground-truth dataset must be one of {GROUND_TRUTH}, got {name!r}")


def load_demo_images(data_dir: str | None = None):
  """Binary images for demos and notebooks, from what is at hand: static
  binarized MNIST from a local .npz folder (``data_dir``, else
  $VAE_DATA_DIR, else ../shared/data/binarized_mnist), else from
  tensorflow-datasets (downloads; Colab), else scikit-learn's 8x8 digits.

  Returns:
    dict: ``name``, ``train`` and ``validation`` uint8 [N, H, W, 1], and
    ``validation_labels`` (int [N], or None where the set has no labels).
  """
  import os
  here = os.path.dirname(os.path.abspath(__file__))
  candidates = [data_dir, os.environ.get("VAE_DATA_DIR"),
                os.path.join(here, "..", "..", "..", "shared", "data", "binarized_mnist")]
  for d in candidates:
    if d and os.path.exists(os.path.join(d, "train.npz")):
      return {"name": f"binarized MNIST ({os.path.normpath(d)})",
              "train": binarized_mnist.load("train", d),
              "validation": binarized_mnist.load("validation", d),
              "validation_labels": None}
  try:
    return {"name": "binarized MNIST (tensorflow-datasets)",
            "train": binarized_mnist.load("train", None),
            "validation": binarized_mnist.load("validation", None),
            "validation_labels": None}
  except Exception as e:  # no network, or tensorflow-datasets not installed
    from vae.data import digits
    images, labels = digits.load()
    print(f"binarized MNIST unavailable ({type(e).__name__}); using the 8x8 digits")
    return {"name": "8x8 digits (scikit-learn)", "train": images[:1500],
            "validation": images[1500:], "validation_labels": labels[1500:]}
