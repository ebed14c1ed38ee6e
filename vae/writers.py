"""Where a run's numbers and figures go: a small writer interface that the
training loop and the job call, with two writers built in.

* ``JsonlWriter``: ``metrics.jsonl``, one strict-JSON row per call (the
  train means every ``log_every`` steps, the periodic evaluation rows).
* ``TensorBoardWriter``: TensorBoard event files (``tensorboard --logdir
  <workdir>``): the same scalars under ``<split>/<name>`` tags (nested values
  flattened with ``/``: ``eval/kl_per_dim/3``, ``final/iwae/nll``,
  ``final/disentanglement/mig/score``), and the figures as images.

Any object with the four methods of ``MetricWriter`` plugs in the same way
(``vae.train.train(writers=...)``, ``experiments.job.train_and_evaluate(...,
writers=...)``), e.g. a few lines around ``wandb.log``.

Why tensorboardX: it writes the event-file format in pure Python (protobuf
only), so TensorBoard logging needs neither TensorFlow nor PyTorch, and it is
imported only when a ``TensorBoardWriter`` first writes: ``import vae`` stays
free of both. (``flax.metrics.tensorboard`` and ``clu`` write through
TensorFlow's summary ops; ``torch.utils.tensorboard`` needs torch.)

Resuming: ``resume(step)`` is called once before a run writes, with the step
it restarts from. The jsonl writer drops the rows after it. The TensorBoard
writer of a workdir (``default_writers``) is a copy of ``metrics.jsonl``: on
``resume`` it deletes its event files and writes the rows of
``metrics.jsonl`` up to ``step`` again, so whatever was killed when (during
training, the final evaluation or a re-evaluation), TensorBoard holds each
row of ``metrics.jsonl`` once, and the ``final/`` scalars and the figures of
the last evaluation once. It flushes after every call, so a row in one is in
the other. (A TensorBoard writer without a jsonl file to copy opens its file
with ``purge_step = step + 1``: TensorBoard then discards the events after
``step`` of earlier files.)
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from vae import workdir as workdir_lib


class MetricWriter(Protocol):
  """What the training loop and the job call."""

  def resume(self, step: int) -> None:
    """Before the first write: the run (re)starts at ``step``; forget later
    records."""

  def write_scalars(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
    """``scalars``: {name: number, list of numbers or nested dict}."""

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    """``images``: {name: [H, W] or [H, W, C] array, uint8 or floats in [0, 1]}."""

  def close(self) -> None:
    """Flushes and releases files."""


def flatten(scalars: Mapping[str, Any], prefix: str = "", max_list: int = 64) -> dict[str, float]:
  """{a: {b: 1.0, c: [2, 3]}} -> {"a/b": 1.0, "a/c/0": 2.0, "a/c/1": 3.0}.

  Numbers only (bools and strings are left out); lists longer than
  ``max_list`` are left out (they are in the JSON files)."""
  out: dict[str, float] = {}
  for k, v in scalars.items():
    name = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flatten(v, name + "/", max_list))
    elif isinstance(v, (list, tuple, np.ndarray)):
      values = np.ravel(np.asarray(v, dtype=object))
      if len(values) <= max_list and all(_is_number(x) for x in values):
        out.update({f"{name}/{i}": float(x) for i, x in enumerate(values)})
    elif _is_number(v):
      out[name] = float(v)
  return out


def _is_number(x) -> bool:
  return (isinstance(x, (int, float, np.integer, np.floating))
          and not isinstance(x, (bool, np.bool_)))


class JsonlWriter:
  """Rows of ``{"step", "split", **scalars}`` in a jsonl file (strict JSON:
  non-finite values null and listed under ``non_finite``).

  Args:
    path: the file.
    splits: the splits it records (None: all).
  """

  def __init__(self, path: str, splits: Sequence[str] | None = None):
    self.path, self.splits = path, None if splits is None else tuple(splits)

  def resume(self, step: int) -> None:
    workdir_lib.truncate_metrics(self.path, step)

  def write_scalars(self, step, split, scalars):
    if self.splits is not None and split not in self.splits:
      return
    workdir_lib.append_jsonl(self.path, {"step": int(step), "split": split, **scalars})

  def write_images(self, step, images):
    del step, images

  def close(self):
    pass


def _summary_writer_class():
  """tensorboardX's SummaryWriter, imported lazily (see the module
  docstring). tensorboardX imports torch at module level when it is installed
  (about 1 s and its thread pools) only to accept torch tensors; we pass numpy,
  so the import is blocked unless torch is already loaded."""
  blocked = "torch" not in sys.modules
  if blocked:
    sys.modules["torch"] = None            # makes `import torch` raise ImportError
  try:
    from tensorboardX import SummaryWriter
  finally:
    if blocked and sys.modules.get("torch", 0) is None:
      del sys.modules["torch"]
  return SummaryWriter


class TensorBoardWriter:
  """TensorBoard event files under ``logdir`` (see the module docstring).

  Args:
    logdir: the folder of the event files.
    replay_from: a ``metrics.jsonl`` this writer copies: on ``resume(step)``
      the event files are rewritten from its rows up to ``step``.
  """

  EVENT_PREFIX = "events.out.tfevents."

  def __init__(self, logdir: str, replay_from: str | None = None):
    self.logdir, self.replay_from = logdir, replay_from
    self._writer = None
    self._purge_step = None

  def _get(self):
    if self._writer is None:
      import jax
      if jax.process_index() != 0:
        return None
      self._writer = _summary_writer_class()(self.logdir, purge_step=self._purge_step,
                                   flush_secs=30)
      self._purge_step = None          # purge once, when the run (re)starts
    return self._writer

  def resume(self, step: int) -> None:
    if self._writer is not None:
      return
    if self.replay_from is None:
      # step + 1 also at 0: a run restarted from scratch drops its old events.
      self._purge_step = int(step) + 1
      return
    import jax
    if jax.process_index() != 0:
      return
    if os.path.isdir(self.logdir):
      for name in os.listdir(self.logdir):
        if name.startswith(self.EVENT_PREFIX):
          os.remove(os.path.join(self.logdir, name))
    rows = workdir_lib.read_jsonl(self.replay_from) if os.path.exists(self.replay_from) else []
    for row in rows:
      if int(row.get("step", 0)) <= int(step):
        self._add_scalars(int(row["step"]), row.get("split", "train"),
                          {k: v for k, v in row.items() if k not in ("step", "split")})
    if self._writer is not None:
      self._writer.flush()

  def _add_scalars(self, step, split, scalars):
    w = self._get()
    if w is None:
      return
    for tag, value in flatten(scalars, f"{split}/").items():
      if math.isfinite(value):
        w.add_scalar(tag, value, int(step))

  def write_scalars(self, step, split, scalars):
    self._add_scalars(step, split, scalars)
    if self._writer is not None:
      self._writer.flush()       # a row in metrics.jsonl is in TensorBoard too

  def write_images(self, step, images):
    w = self._get()
    if w is None:
      return
    for name, img in images.items():
      img = np.asarray(img)
      if img.ndim == 2:
        img = img[..., None]
      if img.shape[-1] == 4:
        img = img[..., :3]
      if img.dtype != np.uint8:
        img = (np.clip(img, 0.0, 1.0) * 255).round().astype(np.uint8)
      w.add_image(name, img, int(step), dataformats="HWC")
    w.flush()

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class Writers:
  """Several writers called as one."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def resume(self, step):
    for w in self.writers:
      w.resume(step)

  def write_scalars(self, step, split, scalars):
    for w in self.writers:
      w.write_scalars(step, split, scalars)

  def write_images(self, step, images):
    for w in self.writers:
      w.write_images(step, images)

  def close(self):
    for w in self.writers:
      w.close()


def as_writer(writers) -> MetricWriter:
  """One writer from a writer or a sequence of them."""
  if isinstance(writers, (list, tuple)):
    return Writers(writers)
  return writers


def default_writers(workdir: str, tensorboard: bool = True) -> list[MetricWriter]:
  """``metrics.jsonl`` (train and eval rows) and, with ``tensorboard``, event
  files in ``workdir/tensorboard`` that copy it (see the module docstring)."""
  jsonl = os.path.join(workdir, "metrics.jsonl")
  out: list[MetricWriter] = [JsonlWriter(jsonl, splits=("train", "eval"))]
  if tensorboard:    # after the jsonl writer: it copies the rows that one kept
    out.append(TensorBoardWriter(os.path.join(workdir, "tensorboard"), replay_from=jsonl))
  return out


def read_png(path: str) -> np.ndarray:
  """A PNG written by ``vae.plots`` as a uint8 [H, W, C] array."""
  from PIL import Image
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))
