"""Exit codes of the command-line entry points (README, "What a run
writes"), from one table: a failure listed here prints its message on one
line to stderr (no traceback: the message says what to do) and exits with
its code."""

from __future__ import annotations

import errno
import logging
import os
import re
import sys

from vae import checkpoint as ckpt_lib
from vae import checks
from vae import interrupt
from vae import train as train_lib
from vae import workdir as workdir_lib

from .record import NonFiniteEvaluationError
from .rerun import ConfigChangedError


class DiskFullError(OSError):
  """The disk (or a quota) is full: an ``OSError`` ENOSPC/EDQUOT, wherever
  in a chain of exceptions it was raised (orbax and tensorstore wrap it)."""


# (failure, exit code, what the experiment layer adds to the library's message)
_TABLE = (
    (checks.InputError, 2, ""),                  # config or data refused before training
    (train_lib.NonFiniteLossError, 3,            # training diverged; last good checkpoint kept
     " (config: optim.learning_rate, optim.grad_clip_norm)"),
    (NonFiniteEvaluationError, 4, ""),           # final evaluation not finite; nulls written
    (workdir_lib.WorkdirLockedError, 5, ""),     # another process is using the workdir
    (ConfigChangedError, 6, ""),                 # the workdir was trained with another config
    (ckpt_lib.CheckpointError, 7, ""),           # checkpoints exist but none can be read
    # SIGTERM / SIGINT: 128 + the signal's number (143, 130), as a shell reports
    # a process killed by it; the steps trained were checkpointed first.
    (interrupt.Interrupted, None, ""),
    (DiskFullError, 8, ""),                      # no space left; last good checkpoint kept
)

EXIT_CODES = {cls.__name__: code for cls, code, _ in _TABLE if code is not None}
EXIT_CODES.update(SIGINT=128 + 2, SIGTERM=128 + 15)


def exit_on_known_failure(fn, *args, **kwargs):
  """Runs ``fn`` with SIGTERM and SIGINT handled (``vae.interrupt``); a
  failure listed in ``EXIT_CODES`` prints its message to stderr on one line
  and exits with its code."""
  try:
    with interrupt.handle_signals():
      try:
        return fn(*args, **kwargs)
      except Exception as e:  # pylint: disable=broad-except  (re-raised unless disk full)
        full = disk_full(e)
        if full is None:
          raise
        logging.getLogger("asyncio").disabled = True   # orbax's failed writes, once each
        raise DiskFullError(f"no space left on the device{_writing(full)}; the last good "
                            "checkpoint is kept: free space (or choose another --workdir) "
                            "and rerun the same command to resume") from None
  except tuple(cls for cls, _, _ in _TABLE) as e:
    code, hint = next((code, hint) for cls, code, hint in _TABLE if isinstance(e, cls))
    _close_progress_bars()    # so that the message is the last line
    print(f"error: {e}{hint}", file=sys.stderr, flush=True)
    _exit_now(e.exit_code if code is None else code)


def _exit_now(code: int) -> None:
  """Ends the process with ``code`` once its output is flushed, without the
  interpreter's shutdown: a failure can leave work in flight on other
  threads (an XLA computation a signal interrupted, which segfaulted when the
  runtime was torn down under it; orbax's failed writes, whose asyncio
  futures log a traceback each when collected), and none of it may add to or
  change the one line just printed. Everything the run keeps (checkpoints,
  ``metrics.jsonl``, TensorBoard, the lock) was written or released by the
  blocks the failure left."""
  logging.getLogger("asyncio").disabled = True
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  logging.shutdown()
  os._exit(code)  # pylint: disable=protected-access


def _close_progress_bars() -> None:
  from tqdm import tqdm
  for bar in list(getattr(tqdm, "_instances", ())):
    bar.close()


def disk_full(error: BaseException) -> BaseException | None:
  """The exception in ``error``'s chain that says the disk is full (an
  ``OSError`` ENOSPC or EDQUOT, or tensorstore's "No space left on device"),
  or None."""
  return next((e for e in ckpt_lib.exception_chain(error)
               if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT))
               or "No space left on device" in str(e)), None)


def _writing(error: BaseException) -> str:
  """" while writing <file>" for a disk-full error, where it names one."""
  path = getattr(error, "filename", None)
  if not path:
    found = re.findall(r'(?:Failed writing|local file): "([^"]+)"', str(error))
    path = found[0] if found else None
  return f" while writing {path}" if path else ""
