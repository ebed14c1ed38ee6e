"""Data sets by name: each data-set module declares a ``DataSet`` record
(``vae/data/base.py``) in its ``DATASETS``; the registry below collects them
from every module of this package, so adding a data set is one new module
(plus a config if it deserves one).

* ``open_dataset(DataSettings(...))``: training data, evaluation data and a
  fingerprint (``Opened``), from plain settings.
* ``load_dataset(name, split)``: a host array of a set of stored splits.
* ``load_ground_truth(name)``: a data set with known generative factors.

Training sources are in ``vae.data.sources`` (on the device) and
``vae.data.streaming`` (read on the host, for data larger than memory).
"""

from __future__ import annotations

import numpy as np

from vae import registry
from vae.data import base, binarized_mnist
from vae.data.base import DataSet, DataSettings, Labels, Opened


__all__ = ["REGISTRY", "GROUND_TRUTH", "DataSet", "DataSettings", "Labels", "Opened", "get",
           "check_settings", "open_dataset", "is_ground_truth", "splits", "load_dataset",
           "load_ground_truth", "load_demo_images"]

REGISTRY: dict[str, DataSet] = registry.collect(__name__, __path__, "DATASETS", "data set")
GROUND_TRUTH = tuple(name for name, record in REGISTRY.items() if record.has_factors)


def get(name: str) -> DataSet:
  """The record of data set ``name``.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  return registry.lookup(REGISTRY, name, "dataset")


def check_settings(settings: DataSettings) -> None:
  """Raises ValueError where ``settings`` cannot open their data set (an
  unknown name, a missing folder, a source it cannot use), before anything
  is read."""
  record = get(settings.name)
  if settings.source not in base.SOURCES:
    raise ValueError(f"data_source must be one of {base.SOURCES}, got {settings.source!r}")
  if record.check is not None:
    record.check(settings)
  record.check_label(settings)


def open_dataset(settings: DataSettings) -> Opened:
  """The training data, evaluation data and fingerprint of a data set
  (``Opened``), from plain settings (checked first: ``check_settings``)."""
  check_settings(settings)
  return get(settings.name).open(settings)


def is_ground_truth(name: str) -> bool:
  """The data set has known generative factors (disentanglement metrics)."""
  return name in REGISTRY and REGISTRY[name].has_factors


def splits(name: str) -> tuple[str, ...] | None:
  """The split names of a set of stored splits; None for ground-truth sets
  (their evaluation data is a held-out sample of renders, whatever the split)."""
  return get(name).splits


def load_dataset(name: str, split: str, data_dir: str | None = None,
                 tfds_data_dir: str | None = None) -> np.ndarray:
  """Loads a split of a named array data set as a host array [N, *shape].

  Args:
    name: a set of stored splits with a fixed shape ("binarized_mnist").
    split: one of its ``splits``.
    data_dir: optional local folder (see the data set's module).
    tfds_data_dir: optional tfds data_dir.
  """
  record = get(name)
  if record.load_split is None or record.data_shape is None:
    raise ValueError(f"load_dataset reads sets of stored splits with a fixed shape "
                     f"({[n for n, r in REGISTRY.items() if r.load_split and r.data_shape]}); "
                     f"{name!r} is not one (your own images: vae.data.images; ground-truth "
                     f"sets: load_ground_truth)")
  return record.load_split(split, DataSettings(name, data_dir, tfds_data_dir))


def load_ground_truth(name: str, tfds_data_dir: str | None = None, split: str | None = None):
  """A ground-truth-factor data set by name.

  Args:
    name: "dsprites" (procedural, rendered on the device, no download),
      "tfds:dsprites" / "tfds:shapes3d" / "tfds:smallnorb" (tensorflow-datasets),
      or any other registered set with factors (``GROUND_TRUTH``).
    tfds_data_dir: tfds data_dir for the tfds sets.
    split: tfds split; None: the set's default ("train"; "train+test" for
      smallnorb, as disentanglement_lib).
  """
  if not is_ground_truth(name):
    raise ValueError(f"ground-truth dataset must be one of {GROUND_TRUTH}, got {name!r}")
  return REGISTRY[name].ground_truth(tfds_data_dir=tfds_data_dir, split=split)


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
