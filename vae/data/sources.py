"""Training data on the device: what the training loops draw each step from.

* ``ArraySource``: an in-memory data set served in shuffled epochs.
* ``GroundTruthSource``: fresh samples of a ground-truth data set (procedural
  dSprites renders on the device).
* ``vae.data.streaming.StreamingSource``: batches read on the host by a
  background thread and fed a chunk of steps at a time (data larger than
  memory: image folders, tfds sets by random access); same order as
  ``ArraySource``.

A source has ``arrays()`` (the device arrays it needs), ``init(arrays, step)``
(its carry at a step) and ``next(arrays, carry, step) -> (batch, carry)``,
all functions of the step alone, so a resumed run draws the batches an
uninterrupted run draws; and ``examples(key, n)``, n training examples as
float32 [n, *shape] (distinct rows of a stored set, fresh renders of a
procedural one: what a prior starting from data is initialised at). ``make_source`` picks the one a data set needs and
checks the data against the model first.
"""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from vae import checks
from vae import conditioning as cond_lib
from vae.data.ground_truth import GroundTruthData


class ArraySource:
  """An in-memory data set on the device, served in shuffled epochs.

  Epoch ``e`` visits ``permutation(fold_in(data_key, e), N)`` in batches of
  ``batch_size`` (the last partial batch is dropped). Batches are gathered and
  cast to float32 on the device, inside the scanned loop, and multiplied by
  ``scale`` (1/255: uint8 pixels held as they are, 4x less memory than
  floats). With ``labels`` [N] (a conditional model) each batch is
  ``Labeled(x, y)``, the labels gathered with the same rows.
  """
  host_fed = False     # its batches are drawn on the device, inside the loop

  def __init__(self, data, batch_size: int, data_key: jax.Array, scale: float = 1.0,
               labels=None):
    self.scale = float(scale)
    self.data = jnp.asarray(data)
    self.labels = None if labels is None else jnp.asarray(labels, jnp.int32)
    self.num_examples = int(self.data.shape[0])
    self.batch_size = int(batch_size)
    if not 1 <= self.batch_size <= self.num_examples:
      raise ValueError(f"batch_size must be in [1, {self.num_examples}] (the "
                       f"number of examples), got {batch_size}")
    self.steps_per_epoch = self.num_examples // self.batch_size
    self.data_key = data_key

  def arrays(self):
    if self.labels is None:
      return (self.data, self.data_key)
    return (self.data, self.data_key, self.labels)

  def _perm(self, arrays, epoch):
    data, data_key = arrays[:2]
    return jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                  data.shape[0])

  def init(self, arrays, step):
    return self._perm(arrays, step // self.steps_per_epoch)

  def next(self, arrays, perm, step):
    epoch, pos = jnp.divmod(step, self.steps_per_epoch)
    # The permutation is recomputed once per epoch, not per step (sorting
    # 50k keys would cost as much as a small model's step).
    perm = jax.lax.cond(pos == 0, lambda: self._perm(arrays, epoch), lambda: perm)
    idx = jax.lax.dynamic_slice(perm, (pos * self.batch_size,), (self.batch_size,))
    x = jnp.take(arrays[0], idx, axis=0).astype(jnp.float32)
    x = x * self.scale if self.scale != 1.0 else x
    if self.labels is not None:
      return cond_lib.Labeled(x, jnp.take(arrays[2], idx, axis=0)), perm
    return x, perm

  def examples(self, key: jax.Array, n: int) -> jax.Array:
    """``n`` distinct examples, rows ``permutation(key, N)[:n]``, as float32."""
    checks.check_example_count(n, self.num_examples)
    rows = jax.random.permutation(key, self.num_examples)[:int(n)]
    x = jnp.take(self.data, rows, axis=0).astype(jnp.float32)
    return x * self.scale if self.scale != 1.0 else x

  def host_batches(self, start_step: int) -> Iterable[np.ndarray]:
    """The same batches as ``next``, produced on the host (for comparison
    with a host-fed loop)."""
    data = np.asarray(self.data)
    step = start_step
    while True:
      epoch, pos = divmod(step, self.steps_per_epoch)
      if pos == 0 or step == start_step:
        perm = np.asarray(self._perm((self.data, self.data_key), epoch))
      idx = perm[pos * self.batch_size:(pos + 1) * self.batch_size]
      x = data[idx].astype(np.float32)
      x = x * np.float32(self.scale) if self.scale != 1.0 else x
      yield x if self.labels is None else cond_lib.Labeled(x, np.asarray(self.labels)[idx])
      step += 1


class GroundTruthSource:
  """Fresh samples of a ground-truth data set (e.g. procedural dSprites)
  drawn on the device each step: the batch of step ``s`` is
  ``dataset.sample(fold_in(data_key, s), batch_size)``, so no host I/O occurs
  inside the scanned loop and a resumed run sees the same images. With
  ``label_factor`` (a conditional model) each batch is ``Labeled(x, y)``,
  y that factor of each render."""
  host_fed = False

  def __init__(self, dataset, batch_size: int, data_key: jax.Array,
               label_factor: int | None = None):
    if int(batch_size) < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    self.dataset = dataset
    self.batch_size = int(batch_size)
    self.data_key = data_key
    self.label_factor = label_factor

  def arrays(self):
    return (self.data_key,)

  def init(self, arrays, step):
    return jnp.zeros((), jnp.int32)

  def examples(self, key: jax.Array, n: int) -> jax.Array:
    """``n`` fresh renders (``dataset.sample(key, n)``)."""
    return self.dataset.sample(key, int(n))[0]

  def next(self, arrays, carry, step):
    images, factors = self.dataset.sample(jax.random.fold_in(arrays[0], step), self.batch_size)
    if self.label_factor is not None:
      return cond_lib.Labeled(images, factors[:, self.label_factor]), carry
    return images, carry


def num_examples(train_data) -> int:
  """N, the number of distinct training examples: an array's rows, a stored
  ground-truth set's examples (smallNORB: 48,600, though its 4 factors have
  4,860 combinations, since the instance is not a factor), or a procedural
  set's factor combinations."""
  for attr in ("num_examples", "num_combinations"):
    n = getattr(train_data, attr, None)
    if n is not None:
      return int(n)
  return int(np.shape(train_data)[0])


def make_source(train_data, batch_size: int, data_key: jax.Array, *, model,
                prefetch: int = 8, labels=None):
  """The source for ``train_data``: a ``GroundTruthData`` set is sampled afresh
  each step; an array [N, *data_shape] or ``vae.data.images.Images`` is
  served in shuffled epochs from the device; a reader
  (``vae.data.streaming``) is streamed from the host (``prefetch`` batches
  read ahead).

  A conditional model (``model.conditioning``) needs ``labels``, the data
  set's ``vae.data.Labels`` (its ``train`` labels [N] of an array, or its
  ``factor`` of a ground-truth set); its batches are ``Labeled(x, y)``.

  Raises:
    ValueError: the data do not fit ``model`` (shape, values its likelihood
      cannot score, labels it needs or cannot read), naming what was
      expected and what came.
  """
  _check_labels(model, labels, train_data)
  if isinstance(train_data, GroundTruthData):
    checks.check_model_fits(model.data_shape, train_data.observation_shape,
                            "the data set (rendered)")
    return GroundTruthSource(train_data, batch_size, data_key,
                             None if labels is None else labels.factor)
  from vae.data import images, streaming
  if hasattr(train_data, "read"):
    checks.check_model_fits(model.data_shape, train_data.example_shape,
                            "the streamed data set")
    check = _batch_check(train_data, model)
    # A first batch is checked here, before anything compiles; every batch
    # is checked again as the source reads it while training.
    first = np.arange(min(int(batch_size), train_data.num_examples))
    check(train_data.read(first), first)
    # A reader may ask for uniform draws (a streamed ground-truth set).
    return streaming.StreamingSource(train_data, batch_size, data_key, prefetch,
                                     getattr(train_data, "sampling", "epochs"), check=check)
  scale, where = 1.0, None
  if isinstance(train_data, images.Images):
    train_data, scale, where = train_data.pixels, train_data.scale, train_data.where
  if np.ndim(train_data) >= 2:
    checks.check_model_fits(model.data_shape, np.shape(train_data)[1:], "the training data")
  checks.check_data(train_data, data_shape=model.data_shape,
                    likelihood=model.likelihood, name="training data", scale=scale, where=where)
  return ArraySource(train_data, batch_size, data_key, scale,
                     None if labels is None else labels.train)


def _check_labels(model, labels, train_data) -> None:
  """Labels exactly for a conditional model, as many classes as it reads,
  one per training example of an array, each in range."""
  cond = model.conditioning
  if cond is None:
    if labels is not None:
      raise checks.InputError("the data carry labels but the model has no conditioning: set "
                              "model.num_classes (a conditional VAE) or drop the label")
    return
  if labels is None:
    raise checks.InputError(f"the model is conditional ({cond.num_classes} classes) but the "
                            "data carry no labels: set label ('class' for your own images in "
                            "class subfolders, a factor name for a ground-truth set)")
  cond.check_classes(labels.class_names)
  if isinstance(train_data, GroundTruthData):
    if labels.factor is None:
      raise checks.InputError("a ground-truth set's labels are one of its factors")
    return
  if hasattr(train_data, "read") or labels.train is None:
    raise checks.InputError("a conditional model trains on data held in memory with their "
                            "labels (data_source='memory'); streamed data carry no labels")
  n = num_examples(train_data)
  if len(labels.train) != n:
    raise checks.InputError(f"{len(labels.train)} training labels for {n} training examples")
  cond_lib.check_labels(labels.train, cond.num_classes, "training labels",
                        getattr(train_data, "where", None))


def _batch_check(reader, model):
  """``check(batch, rows)`` of a streamed batch: ``check_data`` with the
  model's shape and likelihood, a bad value named by the reader's file and
  row (``reader.where``)."""
  where = getattr(reader, "where", lambda row: f"row {int(row)}")

  def check(batch, rows):
    checks.check_data(batch, data_shape=model.data_shape, likelihood=model.likelihood,
                      name="training data (streamed)", scale=reader.scale,
                      where=lambda i: where(rows[i]))
  return check


def ground_truth_eval_sample(ground_truth, num: int, eval_key, with_factors: bool = False):
  """The fixed held-out sample of a ground-truth data set: ``num`` renders
  drawn with the run's eval key (training draws with the data key, so they
  are unseen except by chance); with ``with_factors``, (renders, their
  factors [num, F])."""
  key = jax.random.fold_in(eval_key, 99)
  if with_factors:
    images, factors = jax.jit(lambda k: ground_truth.sample(k, int(num)))(key)
    return np.asarray(images), np.asarray(factors)
  return np.asarray(jax.jit(lambda k: ground_truth.sample(k, int(num))[0])(key))
