"""Save, restore and resume training state with orbax.

Checkpoints are written synchronously and atomically by orbax (a step folder
appears only once complete), so an interrupted or failed run keeps its last
good checkpoint, and ``restore_latest`` resumes from it.

A checkpoint damaged after it was written (a truncated data or metadata file,
a disk error) does not stop a resume: ``restore_latest`` tries the newest
checkpoint, and when it cannot be read it warns (``CheckpointFallbackWarning``,
naming the step and the damaged file), tries the next older one, and moves the
unreadable ones to ``workdir/damaged_checkpoints/<step>`` once an older one
has been restored, so that nothing is deleted and training can write that step
again. Only when no checkpoint can be read is it an error
(``CheckpointError``, listing each one and why).

``pack(workdir, archive)`` and ``unpack(archive, workdir)`` move a run that
has not finished to another machine: one gzip tar file holding the newest
checkpoint that can be restored, ``config.json`` and the rows of
``metrics.jsonl`` up to that checkpoint (TensorBoard's event files stay
behind). Unpacked into an empty workdir, or one whose checkpoints are older,
the run resumes where it was packed and, on a machine with the same hardware
and software, ends as an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No checkpoint of a workdir could be restored; the message lists why."""


class CheckpointFallbackWarning(UserWarning):
  """A damaged checkpoint was skipped in favour of an older one."""


def _manager(workdir: str, max_to_keep: int = 2) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=max_to_keep, create=True,
          enable_async_checkpointing=False))


def save(workdir: str, step: int, state: Any, max_to_keep: int = 2) -> None:
  """Writes ``state`` (any pytree of arrays) as checkpoint ``step``.

  A failed write (a full disk) is raised here, once: what orbax and
  tensorstore print about it meanwhile (a traceback from orbax's writer
  thread, then one "Event loop is closed" traceback per pending write, about
  180 lines) is held back; after a save that succeeds, anything printed is
  passed on. The "Event loop is closed" reports come through
  ``sys.unraisablehook`` from tensorstore's threads, some while fd 2 is being
  handed back and some after ``save`` has raised; so the hook drops them
  during the save, and after a failed one for the rest of the process (see
  ``_drop_closed_loop_reports``)."""
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.CRITICAL)
  previous_hook = sys.unraisablehook
  _drop_closed_loop_reports()
  try:
    with _stderr_held() as held:
      try:
        with _manager(workdir, max_to_keep) as mngr:
          mngr.save(int(step), args=ocp.args.StandardSave(state), force=True)
          mngr.wait_until_finished()
      except BaseException:
        held.drop = True                 # the hook stays: pending writes end later
        raise
    sys.unraisablehook = previous_hook
  finally:
    absl_logger.setLevel(level)


def _closed_loop_report(unraisable) -> bool:
  e = unraisable.exc_value
  return isinstance(e, RuntimeError) and str(e) == "Event loop is closed"


def _drop_closed_loop_reports() -> None:
  """Wraps ``sys.unraisablehook`` (once) so that it drops the reports of
  writes that a failed save left pending: each ends on a tensorstore thread
  by calling back into the event loop orbax has closed, at any time, also
  after ``save`` raised. Without this, pieces of those tracebacks were
  printed around the one-line error of a full disk, depending on thread
  timing (about one run in five on a loaded 2-core machine). Every other
  unraisable exception still reaches the previous hook."""
  previous = sys.unraisablehook
  if getattr(previous, "drops_closed_loop_reports", False):
    return

  def hook(unraisable):
    if not _closed_loop_report(unraisable):
      previous(unraisable)

  hook.drops_closed_loop_reports = True
  sys.unraisablehook = hook


class _Held:
  drop = False


@contextlib.contextmanager
def _stderr_held():
  """File descriptor 2 sent to a temporary file for the block (what C++ and
  threads print too); written to stderr after it unless ``drop`` was set."""
  held = _Held()
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as tmp:
    os.dup2(tmp.fileno(), 2)
    try:
      yield held
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if not held.drop:
        tmp.seek(0)
        text = tmp.read()
        if text:
          os.write(2, text)


def latest_step(workdir: str) -> int | None:
  """The newest complete checkpoint's step, or None."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return None
  with _manager(workdir) as mngr:
    return mngr.latest_step()


def all_steps(workdir: str) -> list[int]:
  """The steps of every complete checkpoint, oldest first."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return []
  with _manager(workdir) as mngr:
    return sorted(int(s) for s in mngr.all_steps())


def step_dir(workdir: str, step: int) -> str:
  return os.path.join(os.path.abspath(workdir), "checkpoints", str(int(step)))


def damaged_file(directory: str, error: BaseException) -> str | None:
  """The file that ``error`` (raised while restoring from ``directory``) is
  about: the one tensorstore names, else the first JSON metadata file that
  does not parse; None when neither points at a file."""
  named = [n for e in exception_chain(error)
           for n in re.findall(r'local file "([^"]+)"', str(e))]
  if named:
    return named[-1]
  for root, _, files in sorted(os.walk(directory)):
    for name in sorted(files):
      path = os.path.join(root, name)
      if not (name.startswith("_") or name.endswith(".json")
              or os.path.basename(root) == "array_metadatas"):
        continue
      try:
        with open(path, "rb") as f:
          json.loads(f.read().decode("utf-8"))
      except (ValueError, UnicodeDecodeError):
        return path
  return None


def exception_chain(error: BaseException) -> list[BaseException]:
  """``error`` and the exceptions it was raised from, outermost first."""
  out = []
  while error is not None and error not in out:
    out.append(error)
    error = error.__cause__ or error.__context__
  return out


def _describe(error: BaseException) -> str:
  """One line on what went wrong: the innermost exception of the chain (orbax
  wraps tensorstore's "Error reading <array> ... at local file <path>" in a
  message that prints a bound method), without tensorstore's spec dump."""
  inner = exception_chain(error)[-1]
  text = re.split(r"\s*See full TensorStore details", str(inner).strip())[0]
  first = text.splitlines()[0] if text else ""
  return f"{type(inner).__name__}: {first[:300]}"


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


def _leaf_name(path) -> str:
  parts = []
  for k in path:
    for attr in ("key", "idx", "name"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return ".".join(parts)


def shape_mismatches(workdir: str, target: Any, step: int | None = None) -> list[str]:
  """How checkpoint ``step`` (default: latest) differs from ``target`` in
  its arrays' names, shapes and dtypes, read from the checkpoint's metadata
  (no array is read): one line per difference, empty when they agree.

  Raises:
    FileNotFoundError: no checkpoint.
  """
  step = latest_step(workdir) if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint under {workdir}/checkpoints")
  with ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")),
                             item_handlers=ocp.StandardCheckpointHandler()) as mngr:
    meta = mngr.item_metadata(int(step))
  stored = {m.name: (tuple(m.shape), str(m.dtype)) for m in jax.tree.leaves(meta)}
  wanted = {_leaf_name(p): (tuple(x.shape), str(x.dtype))
            for p, x in jax.tree_util.tree_leaves_with_path(target)}
  order = lambda names: sorted(names, key=lambda n: (not n.startswith("params."), n))
  out = [f"{n}: stored {stored[n][0]} {stored[n][1]}, this config {wanted[n][0]} "
         f"{wanted[n][1]}" for n in order(set(stored) & set(wanted)) if stored[n] != wanted[n]]
  out += [f"{n}: stored, not in this config" for n in order(set(stored) - set(wanted))]
  out += [f"{n}: in this config, not stored" for n in order(set(wanted) - set(stored))]
  return out


def restore_latest(workdir: str, target: Any) -> tuple[Any, int | None]:
  """(restored state, step) from the newest checkpoint that can be read, else
  (target, None) when there is none.

  A checkpoint that fails to restore, or whose ``step`` field differs from
  its folder's, is skipped with a ``CheckpointFallbackWarning`` naming the
  step and the damaged file; once an older one restores, the skipped ones are
  moved to ``workdir/damaged_checkpoints/``.

  Raises:
    CheckpointError: checkpoints exist but none can be restored (nothing is
      moved then).
  """
  failures = []
  for step in reversed(all_steps(workdir)):
    directory = step_dir(workdir, step)
    try:
      state = restore(workdir, target, step)
      stored = getattr(state, "step", None)
      if stored is not None and int(stored) != step:
        raise CheckpointError(f"its state holds step {int(stored)}, not {step}")
    except Exception as e:  # pylint: disable=broad-except  (any damage: orbax, tensorstore, json)
      where = damaged_file(directory, e) or directory
      failures.append((step, where, e))
      warnings.warn(f"checkpoint step {step} cannot be restored ({where}: {_describe(e)}); "
                    "trying the next older checkpoint", CheckpointFallbackWarning, stacklevel=2)
      continue
    if failures:
      moved = (_set_aside(workdir, [f[0] for f in failures]) if jax.process_index() == 0
               else os.path.join(workdir, "damaged_checkpoints"))
      warnings.warn(f"resumed from checkpoint step {step} instead of step {failures[0][0]}, "
                    f"which is damaged; the damaged checkpoint(s) were moved to {moved}",
                    CheckpointFallbackWarning, stacklevel=2)
    return state, step
  if failures:
    lines = "\n".join(f"  step {s}: {w}: {_describe(e)}" for s, w, e in failures)
    raise CheckpointError(
        f"no checkpoint in {os.path.join(workdir, 'checkpoints')} can be restored:\n{lines}\n"
        "If the run's config changed, rerun with the original one; to start afresh, "
        "move the checkpoints folder away.")
  return target, None


def _set_aside(workdir: str, steps: list[int]) -> str:
  """Moves the checkpoints of ``steps`` to workdir/damaged_checkpoints/."""
  dest_root = os.path.join(os.path.abspath(workdir), "damaged_checkpoints")
  os.makedirs(dest_root, exist_ok=True)
  for step in steps:
    dest, n = os.path.join(dest_root, str(step)), 1
    while os.path.exists(dest):
      dest, n = os.path.join(dest_root, f"{step}.{n}"), n + 1
    shutil.move(step_dir(workdir, step), dest)
  return dest_root


# What a packed run holds besides its checkpoint.
PACKED_FILES = ("config.json", "metrics.jsonl")


def _newest_readable_step(workdir: str) -> int | None:
  """The step of the workdir's newest checkpoint that restores (every array
  read back, as orbax stored it), warning of each newer one that does not;
  None when none does."""
  for step in reversed(all_steps(workdir)):
    try:
      with _manager(workdir) as mngr:
        mngr.restore(int(step), args=ocp.args.StandardRestore())
    except Exception as e:  # pylint: disable=broad-except  (any damage, as in restore_latest)
      warnings.warn(f"checkpoint step {step} cannot be restored "
                    f"({damaged_file(step_dir(workdir, step), e) or step_dir(workdir, step)}: "
                    f"{_describe(e)}); packing an older one", CheckpointFallbackWarning,
                    stacklevel=3)
      continue
    return step
  return None


def pack(workdir: str, archive: str) -> int:
  """Writes ``workdir``'s newest checkpoint that can be restored, its
  ``config.json`` and its ``metrics.jsonl`` rows up to that checkpoint into
  the gzip tar ``archive`` (replaced atomically); returns the checkpoint's
  step.

  Safe while the run trains on: a checkpoint folder is complete once it
  appears, and the metrics rows after it are left out, as a resume from it
  would drop them. A damaged newest checkpoint is passed over with a
  ``CheckpointFallbackWarning`` (as ``restore_latest`` does).

  Raises:
    FileNotFoundError: ``workdir`` has no checkpoint.
    CheckpointError: it has checkpoints, but none can be restored.
  """
  from vae import workdir as workdir_lib
  if latest_step(workdir) is None:
    raise FileNotFoundError(f"no checkpoint under {workdir}/checkpoints to pack")
  step = _newest_readable_step(workdir)
  if step is None:
    raise CheckpointError(f"no checkpoint in {os.path.join(workdir, 'checkpoints')} can be "
                          "restored: nothing to pack")
  folder = os.path.dirname(os.path.abspath(archive))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".packing-", suffix=".tar.gz", dir=folder)
  os.close(fd)
  try:
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(tmp, "w:gz") as tar:
      for name in PACKED_FILES:
        path = os.path.join(workdir, name)
        if not os.path.exists(path):
          continue
        copy = os.path.join(scratch, name)
        shutil.copyfile(path, copy)
        if name == "metrics.jsonl":
          workdir_lib.truncate_metrics(copy, step)
        tar.add(copy, arcname=name)
      tar.add(step_dir(workdir, step), arcname=os.path.join("checkpoints", str(step)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)      # mkstemp's file is private; an archive is not
    os.replace(tmp, archive)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return step


def _unreadable(archive: str, e: BaseException) -> CheckpointError:
  return CheckpointError(f"{archive} cannot be read ({type(e).__name__}: {e})")


def packed_step(archive: str) -> int:
  """The step of the checkpoint that ``archive`` (from ``pack``) holds.

  Raises:
    CheckpointError: ``archive`` cannot be read, or is not one of ``pack``'s.
  """
  try:
    with tarfile.open(archive, "r:gz") as tar:
      names = tar.getnames()
  except (tarfile.TarError, OSError, EOFError) as e:
    raise _unreadable(archive, e) from e
  steps = {int(parts[1]) for parts in (n.split("/") for n in names)
           if len(parts) >= 2 and parts[0] == "checkpoints" and parts[1].isdigit()}
  if len(steps) != 1:
    raise CheckpointError(f"{archive} holds checkpoints {sorted(steps)}, not one: "
                          "it was not written by vae.checkpoint.pack")
  return steps.pop()


def unpack(archive: str, workdir: str) -> int | None:
  """Unpacks ``archive`` (from ``pack``) into ``workdir`` so that the run
  resumes from its checkpoint; returns that step, or None (and changes
  nothing) when ``workdir`` already has a checkpoint as new or newer.

  The archive is extracted beside the workdir's files first; its
  ``config.json`` and ``metrics.jsonl`` then replace the workdir's, and its
  checkpoint folder is moved into ``checkpoints/`` last, so an unpacking cut
  short leaves no partial checkpoint behind. Only plain files and folders
  inside ``workdir`` are written. Take the workdir's lock around it if a
  process may be training there.

  Raises:
    CheckpointError: the archive cannot be read or was not written by ``pack``.
  """
  step = packed_step(archive)
  here = latest_step(workdir)
  if here is not None and here >= step:
    return None
  os.makedirs(workdir, exist_ok=True)
  with tempfile.TemporaryDirectory(prefix=".unpacking-", dir=workdir) as scratch:
    try:
      with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():   # also where tarfile has no filters (Python < 3.10.12)
          parts = m.name.split("/")
          if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
            raise CheckpointError(f"{archive} holds {m.name!r}, which is not a plain file or "
                                  "folder inside the run: it was not written by "
                                  "vae.checkpoint.pack")
        if hasattr(tarfile, "data_filter"):
          tar.extractall(scratch, filter="data")
        else:
          tar.extractall(scratch)
    except (tarfile.TarError, EOFError) as e:
      raise _unreadable(archive, e) from e
    for name in PACKED_FILES:
      if os.path.exists(os.path.join(scratch, name)):
        os.replace(os.path.join(scratch, name), os.path.join(workdir, name))
    os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
    os.replace(os.path.join(scratch, "checkpoints", str(step)), step_dir(workdir, step))
  return step
