"""Exit codes of the command-line entry points (README, "What a run
writes"), from one table: a failure listed here prints its message on one
line to stderr (no traceback: the message says what to do) and exits with
its code."""

from __future__ import annotations

import sys

from vae import checkpoint as ckpt_lib
from vae import interrupt
from vae import train as train_lib
from vae import workdir as workdir_lib

from .record import NonFiniteEvaluationError
from .rerun import ConfigChangedError

# (failure, exit code, what the experiment layer adds to the library's message)
_TABLE = (
    (train_lib.NonFiniteLossError, 3,            # training diverged; last good checkpoint kept
     " (config: optim.learning_rate, optim.grad_clip_norm)"),
    (NonFiniteEvaluationError, 4, ""),           # final evaluation not finite; nulls written
    (workdir_lib.WorkdirLockedError, 5, ""),     # another process is using the workdir
    (ConfigChangedError, 6, ""),                 # the workdir was trained with another config
    (ckpt_lib.CheckpointError, 7, ""),           # checkpoints exist but none can be read
    # SIGTERM / SIGINT: 128 + the signal's number (143, 130), as a shell reports
    # a process killed by it; the steps trained were checkpointed first.
    (interrupt.Interrupted, None, ""),
)

EXIT_CODES = {cls.__name__: code for cls, code, _ in _TABLE if code is not None}
EXIT_CODES.update(SIGINT=128 + 2, SIGTERM=128 + 15)


def exit_on_known_failure(fn, *args, **kwargs):
  """Runs ``fn`` with SIGTERM and SIGINT handled (``vae.interrupt``); a
  failure listed in ``EXIT_CODES`` prints its message to stderr on one line
  and exits with its code."""
  try:
    with interrupt.handle_signals():
      return fn(*args, **kwargs)
  except tuple(cls for cls, _, _ in _TABLE) as e:
    code, hint = next((code, hint) for cls, code, hint in _TABLE if isinstance(e, cls))
    _close_progress_bars()    # so that the message is the last line
    print(f"error: {e}{hint}", file=sys.stderr, flush=True)
    sys.exit(e.exit_code if code is None else code)


def _close_progress_bars() -> None:
  from tqdm import tqdm
  for bar in list(getattr(tqdm, "_instances", ())):
    bar.close()
