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
uninterrupted run draws. ``make_source`` picks the one a data set needs and
checks the data against the model first.
"""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from vae import checks
from vae.data.ground_truth import GroundTruthData


class ArraySource:
  """An in-memory data set on the device, served in shuffled epochs.

  Epoch ``e`` visits ``permutation(fold_in(data_key, e), N)`` in batches of
  ``batch_size`` (the last partial batch is dropped). Batches are gathered and
  cast to float32 on the device, inside the scanned loop, and multiplied by
  ``scale`` (1/255: uint8 pixels held as they are, 4x less memory than
  floats).
  """
  host_fed = False     # its batches are drawn on the device, inside the loop

  def __init__(self, data, batch_size: int, data_key: jax.Array, scale: float = 1.0):
    self.scale = float(scale)
    self.data = jnp.asarray(data)
    self.num_examples = int(self.data.shape[0])
    self.batch_size = int(batch_size)
    if not 1 <= self.batch_size <= self.num_examples:
      raise ValueError(f"batch_size must be in [1, {self.num_examples}] (the "
                       f"number of examples), got {batch_size}")
    self.steps_per_epoch = self.num_examples // self.batch_size
    self.data_key = data_key

  def arrays(self):
    return (self.data, self.data_key)

  def _perm(self, arrays, epoch):
    data, data_key = arrays
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
    return (x * self.scale if self.scale != 1.0 else x), perm

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
      yield x * np.float32(self.scale) if self.scale != 1.0 else x
      step += 1


class GroundTruthSource:
  """Fresh samples of a ground-truth data set (e.g. procedural dSprites)
  drawn on the device each step: the batch of step ``s`` is
  ``dataset.sample(fold_in(data_key, s), batch_size)``, so no host I/O occurs
  inside the scanned loop and a resumed run sees the same images."""
  host_fed = False

  def __init__(self, dataset, batch_size: int, data_key: jax.Array):
    if int(batch_size) < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    self.dataset = dataset
    self.batch_size = int(batch_size)
    self.data_key = data_key

  def arrays(self):
    return (self.data_key,)

  def init(self, arrays, step):
    return jnp.zeros((), jnp.int32)

  def next(self, arrays, carry, step):
    images, _ = self.dataset.sample(jax.random.fold_in(arrays[0], step), self.batch_size)
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
                prefetch: int = 8):
  """The source for ``train_data``: a ``GroundTruthData`` set is sampled afresh
  each step; an array [N, *data_shape] or ``vae.data.images.Images`` is
  served in shuffled epochs from the device; a reader
  (``vae.data.streaming``) is streamed from the host (``prefetch`` batches
  read ahead).

  Raises:
    ValueError: the data do not fit ``model`` (shape, or values its
      likelihood cannot score), naming what was expected and what came.
  """
  if isinstance(train_data, GroundTruthData):
    checks.check_model_fits(model.data_shape, train_data.observation_shape,
                            "the data set (rendered)")
    return GroundTruthSource(train_data, batch_size, data_key)
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
  return ArraySource(train_data, batch_size, data_key, scale)


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


def ground_truth_eval_sample(ground_truth, num: int, eval_key) -> np.ndarray:
  """The fixed held-out sample of a ground-truth data set: ``num`` renders
  drawn with the run's eval key (training draws with the data key, so they
  are unseen except by chance)."""
  return np.asarray(jax.jit(lambda k: ground_truth.sample(k, int(num))[0])(
      jax.random.fold_in(eval_key, 99)))
