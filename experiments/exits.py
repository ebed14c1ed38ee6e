"""Exit codes of the command-line entry points (README, "What a run
writes"), from one table: a failure listed here prints its message on one
line to stderr (no traceback: the message says what to do) and exits with
its code."""

from __future__ import annotations

import sys

from vae import checkpoint as ckpt_lib
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
)

EXIT_CODES = {cls.__name__: code for cls, code, _ in _TABLE}


def exit_on_known_failure(fn, *args, **kwargs):
  """Runs ``fn``; a failure listed in ``EXIT_CODES`` prints its message to
  stderr and exits with its code."""
  try:
    return fn(*args, **kwargs)
  except tuple(cls for cls, _, _ in _TABLE) as e:
    code, hint = next((code, hint) for cls, code, hint in _TABLE if isinstance(e, cls))
    print(f"error: {e}{hint}", file=sys.stderr, flush=True)
    sys.exit(code)
