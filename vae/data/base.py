"""What a data set is: a ``DataSet`` record, declared by the data set's own
module (its ``DATASETS`` tuple) and collected by the registry in
``vae.data``, the way objectives are (docs/design.md, "How to add a data
set").

``open(settings)`` turns plain ``DataSettings`` into ``Opened``: the training
data (what ``vae.data.sources.make_source`` serves), the evaluation data
(float32 host array) and a fingerprint of the training data (recorded beside
a run and compared on a rerun). Nothing here reads a config: the experiment
layer fills ``DataSettings`` from one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

# How many renders a ground-truth set's held-out evaluation sample has when
# ``DataSettings.eval_examples`` is 0.
DEFAULT_GROUND_TRUTH_EVAL = 10_000
SOURCES = ("auto", "memory", "stream")


@dataclasses.dataclass(frozen=True)
class DataSettings:
  """Plain settings that open a data set.

  Attributes:
    name: the registry name ("binarized_mnist", "images", "dsprites", ...).
    data_dir: a local folder or file (what it means is the data set's).
    tfds_data_dir: tensorflow-datasets' data_dir.
    source: "memory" (on the device), "stream" (read on the host while
      training) or "auto" (stream data over a quarter of the device's memory).
    data_shape: the model's example shape; image sets convert to it.
    validation_fraction: share of your own images held out for validation.
    max_train_examples: read only the first this many training examples (0: all).
    eval_split: the split evaluated (array sets; ground-truth sets evaluate
      a held-out sample of renders whatever the split).
    eval_examples: evaluate only the first this many (0: the whole split, or
      ``DEFAULT_GROUND_TRUTH_EVAL`` renders).
    eval_key: the key that draws a ground-truth set's held-out sample.
    with_train, with_eval: open the training / evaluation data (False: None).
    label: the labels a conditional model reads, "" for none: "class" (your
      own images: the subfolder names) or a factor name of a ground-truth
      set ("shape" for dSprites).
  """
  name: str
  data_dir: str | None = None
  tfds_data_dir: str | None = None
  source: str = "auto"
  data_shape: tuple[int, ...] | None = None
  validation_fraction: float = 0.1
  max_train_examples: int = 0
  eval_split: str = "validation"
  eval_examples: int = 0
  eval_key: Any = None
  with_train: bool = True
  with_eval: bool = True
  label: str = ""


@dataclasses.dataclass(frozen=True)
class Opened:
  """A data set, opened.

  Attributes:
    train: what the training source serves: an array, ``vae.data.images.Images``,
      a ``GroundTruthData`` set, or a reader (``vae.data.streaming``) to stream.
    eval: float32 host array [N, *data_shape] of evaluation examples.
    ground_truth: the set with known factors that metrics sample (None without).
    fingerprint: what identifies the training data beyond the settings: the
      source ("memory" or "stream"), N, and what else the data set adds (an
      MD5 of a folder's file list).
    labels: with ``DataSettings.label``, the labels (``Labels``); else None.
  """
  train: Any
  eval: np.ndarray | None
  ground_truth: Any = None
  fingerprint: dict = dataclasses.field(default_factory=dict)
  labels: "Labels | None" = None

  @property
  def source(self) -> str:
    return self.fingerprint.get("source", "memory")


@dataclasses.dataclass(frozen=True)
class Labels:
  """The class labels of an opened data set, for a conditional model.

  Attributes:
    class_names: the classes in label order (folder names; a factor's values).
    train: int32 [N] labels of the training array, or None where the
      training data is a ground-truth set (its source draws them as factor
      ``factor`` of each render).
    eval: int32 [N_eval] labels of the evaluation data.
    factor: the factor index for a ground-truth set, else None.
  """
  class_names: tuple[str, ...]
  train: np.ndarray | None = None
  eval: np.ndarray | None = None
  factor: int | None = None

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


@dataclasses.dataclass(frozen=True)
class DataSet:
  """One data set, as its module declares it.

  Attributes:
    name: registry name.
    open: ``(DataSettings) -> Opened``.
    description: one line: what it is and its reference.
    data_shape: the shape of an example; None where the settings choose it
      (your own images are converted to the model's shape).
    splits: the splits of a stored set; None for a ground-truth set (its
      evaluation data is a held-out sample, whatever the split).
    stored_scale: a stored value times this is a pixel in [0, 1].
    can_stream: ``source="stream"`` is possible.
    ground_truth: ``(tfds_data_dir=None, split=None) -> GroundTruthData`` for a
      set with known generative factors; None otherwise.
    load_split: ``(split, settings) -> host array`` for a set of stored
      splits; None otherwise.
    check: ``(DataSettings) -> None`` raising ValueError on settings this set
      cannot open (called before anything is read or traced); None: no checks.
    class_labels: the set gives ``DataSettings.label="class"`` (your own
      images' folder names). Ground-truth sets give their factors instead.
  """
  name: str
  open: Callable[[DataSettings], Opened]
  description: str = ""
  data_shape: tuple[int, ...] | None = None
  splits: tuple[str, ...] | None = None
  stored_scale: float = 1.0
  can_stream: bool = False
  ground_truth: Callable[..., Any] | None = None
  load_split: Callable[..., np.ndarray] | None = None
  check: Callable[[DataSettings], None] | None = None
  class_labels: bool = False

  @property
  def has_factors(self) -> bool:
    return self.ground_truth is not None

  def check_label(self, settings: DataSettings) -> None:
    """Raises ValueError where ``settings.label`` names labels this set lacks."""
    label = settings.label
    if not label:
      return
    if settings.source == "stream":
      raise ValueError(f"label={label!r}: labels are held in memory with their images "
                       "(data_source 'auto' loads a labelled folder into memory too); "
                       "data_source='stream' does not carry them: use 'memory'")
    if label == "class" and self.class_labels:
      return
    if label != "class" and self.has_factors:
      return    # the factor's name is checked against the set when it is opened
    kinds = (["'class' (subfolder names)"] if self.class_labels else []) + (
        ["a factor name"] if self.has_factors else [])
    raise ValueError(f"data set {self.name!r} has no labels {label!r}: "
                     + (f"it gives {' or '.join(kinds)}" if kinds else
                        "it has none (static binarized MNIST carries no classes; a folder of "
                        "your own images in class subfolders, dataset='images', does)"))


def choose_source(settings: DataSettings, nbytes) -> str:
  """"memory" or "stream" for ``settings.source``: "auto" streams data
  (``nbytes`` as stored, or a function giving it, called only for "auto")
  larger than a quarter of the device's memory
  (``vae.data.streaming.choose_source``)."""
  from vae.data import streaming
  if settings.source == "auto" and callable(nbytes):
    nbytes = nbytes()
  return streaming.choose_source(settings.source, 0 if callable(nbytes) else (nbytes or 0))


def open_ground_truth(settings: DataSettings, gt, train, source: str) -> Opened:
  """``Opened`` for a ground-truth set ``gt`` served as ``train`` (the set
  itself, sampled on the device, or a reader to stream): its held-out
  sample for evaluation and its number of distinct examples; with
  ``settings.label`` a factor's name, that factor as the labels."""
  from vae.data import sources
  if settings.with_eval and settings.eval_key is None:
    raise ValueError(f"{settings.name}'s evaluation data is a held-out sample of renders: "
                     "DataSettings.eval_key must be a PRNG key (or with_eval=False)")
  factor = None
  if settings.label:
    if settings.label not in gt.factor_names:
      raise ValueError(f"label={settings.label!r} is not a factor of {settings.name!r}: "
                       f"choose one of {list(gt.factor_names)}")
    factor = gt.factor_names.index(settings.label)
  eval_data = eval_factors = None
  if settings.with_eval:
    num = settings.eval_examples or DEFAULT_GROUND_TRUTH_EVAL
    if factor is None:   # (the renders' program as it was without labels)
      eval_data = sources.ground_truth_eval_sample(gt, num, settings.eval_key)
    else:
      eval_data, eval_factors = sources.ground_truth_eval_sample(gt, num, settings.eval_key,
                                                                 with_factors=True)
  labels = None
  if factor is not None:
    names = getattr(gt, "value_names", {}).get(settings.label) or tuple(
        str(v) for v in range(gt.factor_sizes[factor]))
    labels = Labels(tuple(names), None,
                    None if eval_factors is None else eval_factors[:, factor].astype(np.int32),
                    factor)
  fingerprint = {"source": source, "num_train": sources.num_examples(gt)}
  if labels is not None:
    fingerprint["classes"] = list(labels.class_names)
  return Opened(train if settings.with_train else None, eval_data, gt, fingerprint, labels)


def open_arrays(settings: DataSettings, load_split) -> Opened:
  """``Opened`` for a set of stored splits (``load_split(split, settings,
  max_examples) -> host array``): its training split, held on the device or
  streamed from the host (``vae.data.streaming.ArrayReader``), and
  ``settings.eval_split`` for evaluation."""
  from vae.data import streaming
  train, fingerprint = None, {}
  if settings.with_train:
    train = load_split("train", settings, settings.max_train_examples)
    source = choose_source(settings, train.nbytes)
    fingerprint = {"source": source, "num_train": len(train)}
    if source == "stream":
      train = streaming.ArrayReader(train)
  eval_data = (load_split(settings.eval_split, settings, settings.eval_examples)
               if settings.with_eval else None)
  return Opened(train, eval_data, None, fingerprint)


def procedural(name: str, make: Callable[[], Any], description: str,
               data_shape: tuple[int, ...]) -> DataSet:
  """The record of a procedural ground-truth set (rendered on the device,
  nothing stored, so never streamed): ``make()`` builds it."""

  def check(settings: DataSettings) -> None:
    if settings.source == "stream":
      raise ValueError(f"data_source='stream' reads stored data; procedural {name} is "
                       "rendered on the device: use data_source='auto' or 'memory'")

  def open_(settings: DataSettings) -> Opened:   # checked first by vae.data.open_dataset
    gt = make()
    return open_ground_truth(settings, gt, gt, "memory")

  return DataSet(name, open_, description, data_shape=data_shape, check=check,
                 ground_truth=lambda tfds_data_dir=None, split=None: make())
