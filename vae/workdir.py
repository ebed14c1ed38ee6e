"""One run per workdir: an advisory lock held while a process trains or
evaluates in it, and the metrics file kept consistent with the checkpoint.

``lock(workdir)`` takes ``workdir/lock`` with ``fcntl.flock`` (released by the
kernel when the process exits, however it exits) and writes into it who holds
it: process id, host, command line and start time. A second process that
finds the lock held refuses at once with ``WorkdirLockedError`` naming the
holder, instead of crashing later inside orbax. A lock file that names a
process but is not held (its process was killed) is stale: it is taken over
with a ``StaleLockWarning`` naming the old holder. The lock is re-entrant
within one process (``train_and_evaluate`` holds it around ``train``, which
takes it too). In a multi-process (``jax.distributed``) run, process 0 holds
it for all of them.

``truncate_metrics(path, step)`` drops the rows of ``metrics.jsonl`` written
after ``step``: a run resumed from the checkpoint at ``step`` writes them
again, and the file then equals that of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import math
import os
import socket
import sys
import warnings

import jax

LOCK_NAME = "lock"
_held: dict[str, int] = {}     # abspath of lock file -> depth, this process


class WorkdirLockedError(RuntimeError):
  """Another live process holds the workdir's lock; the message names it."""


class StaleLockWarning(UserWarning):
  """The lock was left by a process that no longer runs; it was taken over."""


class UnsupportedLockWarning(UserWarning):
  """The workdir's file system has no flock; the run goes on unlocked."""


def _read(fd: int) -> dict:
  os.lseek(fd, 0, os.SEEK_SET)
  raw = os.read(fd, 1 << 16).decode("utf-8", "replace").strip()
  if not raw:
    return {}
  try:
    return json.loads(raw)
  except ValueError:
    return {"raw": raw[:200]}


def _describe(holder: dict) -> str:
  if not holder:
    return "another process (it wrote no details)"
  if "pid" not in holder:
    return f"another process ({holder.get('raw', '?')})"
  return (f"process {holder['pid']} on {holder.get('host', '?')}, started "
          f"{holder.get('started', '?')}: {holder.get('command', '?')}")


@contextlib.contextmanager
def lock(workdir: str):
  """Holds ``workdir``'s lock for the duration of the ``with`` block.

  Raises:
    WorkdirLockedError: another live process holds it (named in the message).
  """
  if jax.process_index() != 0:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.abspath(os.path.join(workdir, LOCK_NAME))
  if path in _held:
    _held[path] += 1
    try:
      yield
    finally:
      _held[path] -= 1
    return
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      if e.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
        # Some network and FUSE file systems have no flock: run unlocked.
        warnings.warn(f"{workdir}'s file system does not support locks ({e.strerror}); "
                      "running without the workdir lock: do not start a second run on "
                      "it", UnsupportedLockWarning, stacklevel=3)
        yield
        return
      if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
        raise
      raise WorkdirLockedError(
          f"{workdir} is in use by {_describe(_read(fd))}. Two runs in one workdir "
          "would overwrite each other's checkpoints; wait for that run to end, stop "
          "it, or choose another --workdir.") from None
    previous = _read(fd)
    if previous:
      warnings.warn(f"taking over the lock of {workdir}, left by {_describe(previous)}, "
                    "which no longer runs", StaleLockWarning, stacklevel=3)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": datetime.datetime.now().isoformat(timespec="seconds"),
          "command": " ".join(sys.argv)[:500]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
    os.fsync(fd)
    _held[path] = 1
    try:
      yield
    finally:
      del _held[path]
      # Emptied, not removed: removing would let a process that opened the
      # old file lock it while a third locks a new one.
      os.ftruncate(fd, 0)
  finally:
    os.close(fd)   # releases the flock


def read_jsonl(path: str) -> list[dict]:
  """The rows of a jsonl file (``metrics.jsonl``), leaving out a last line cut
  short by a kill."""
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except ValueError:
        continue
  return rows


def truncate_metrics(path: str, step: int) -> int:
  """Drops the rows of the jsonl file ``path`` whose ``step`` is after
  ``step`` (and any partly written last line); returns how many were
  dropped."""
  if jax.process_index() != 0 or not os.path.exists(path):
    return 0
  with open(path) as f:
    lines = f.readlines()
  keep = []
  for line in lines:
    try:
      row = json.loads(line)
    except ValueError:
      continue                       # a row cut short by a kill
    if int(row.get("step", 0)) <= int(step):
      keep.append(line if line.endswith("\n") else line + "\n")
  if len(keep) != len(lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(keep)
    os.replace(tmp, path)
  return len(lines) - len(keep)


def without_non_finite(obj, prefix: str = ""):
  """(copy of ``obj`` with every NaN/inf float replaced by None, the dotted
  paths of those values): what strict JSON readers accept, with the flag
  saying which values were not finite."""
  bad: list[str] = []

  def walk(x, path):
    if isinstance(x, dict):
      return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
      return [walk(v, f"{path}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, float) and not math.isfinite(x):
      bad.append(path)
      return None
    return x
  return walk(obj, prefix), bad


def _strict(record):
  """(``record`` with non-finite values null and, if any, their paths under
  ``"non_finite"``; those paths)."""
  clean, bad = without_non_finite(record)
  return ({**clean, "non_finite": bad} if bad else clean), bad


def write_json(path: str, record, **kwargs) -> list[str]:
  """Writes ``record`` as strict JSON (process 0 only): non-finite numbers
  become null and their paths are listed under ``"non_finite"``. Returns
  those paths (on every process)."""
  clean, bad = _strict(record)
  if jax.process_index() == 0:          # one writer on a shared file system
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(clean, f, allow_nan=False, **kwargs)
    os.replace(tmp, path)
  return bad


def append_jsonl(path: str, record) -> list[str]:
  """Appends ``record`` as one strict-JSON line (see ``write_json``)."""
  clean, bad = _strict(record)
  if jax.process_index() == 0:
    with open(path, "a") as f:
      f.write(json.dumps(clean, allow_nan=False) + "\n")
  return bad
