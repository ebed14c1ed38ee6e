"""Save, restore and resume training state with orbax.

Checkpoints are written synchronously and atomically by orbax (a step folder
appears only once complete), so an interrupted or failed run keeps its last
good checkpoint, and ``restore_latest`` resumes from it.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(workdir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, create=True,
          enable_async_checkpointing=False))


def save(workdir: str, step: int, state: Any, max_to_keep: int = 2) -> None:
  """Writes ``state`` (any pytree of arrays) as checkpoint ``step``."""
  with _manager(workdir, max_to_keep) as mngr:
    mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)
    mngr.wait_until_finished()


def latest_step(workdir: str) -> int | None:
  """The newest complete checkpoint's step, or None."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return None
  with _manager(workdir) as mngr:
    return mngr.latest_step()


def restore(workdir: str, target: Any, step: int | None = None) -> Any:
  """Restores checkpoint ``step`` (default: latest) into ``target``'s structure.

  Args:
    workdir: the run's folder.
    target: a pytree with the structure, shapes and dtypes of the saved state
      (concrete arrays or ``jax.ShapeDtypeStruct``s, e.g. ``jax.eval_shape``).
    step: which checkpoint; None for the latest.

  Returns:
    The restored pytree.

  Raises:
    FileNotFoundError: no checkpoint in ``workdir``.
  """
  step = latest_step(workdir) if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint under {workdir}/checkpoints")
  def spec(x):
    # Keep the target's sharding: a checkpoint written on N devices restores
    # onto however many devices the target lives on.
    if isinstance(x, jax.Array):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
    return jax.ShapeDtypeStruct(x.shape, x.dtype) if hasattr(x, "shape") else x
  abstract = jax.tree.map(spec, target)
  with _manager(workdir) as mngr:
    return mngr.restore(int(step), args=ocp.args.StandardRestore(abstract))


def restore_latest(workdir: str, target: Any) -> tuple[Any, int | None]:
  """(restored state, step) when a checkpoint exists, else (target, None)."""
  step = latest_step(workdir)
  if step is None:
    return target, None
  return restore(workdir, target, step), step
