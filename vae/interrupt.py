"""SIGTERM and SIGINT as a clean stop: what a scheduler, ``timeout`` or
Ctrl-C sends ends a run with its work saved, in one line, with exit code
128 + the signal's number.

``handle_signals()`` installs the handlers (main thread only; elsewhere it
does nothing) for the duration of a ``with`` block. Inside a ``deferred()``
block (the training loop) the first signal is only recorded: the loop
finishes the steps it is running, writes a checkpoint and raises
``Interrupted`` itself (``pending()`` says whether to). Anywhere else, or on
a second signal, ``Interrupted`` is raised at once. Either way the ``with``
blocks above it (the workdir lock, the writers) are left normally, so the
lock is released and the files flushed.

A signal is never lost. Python runs a handler between any two bytecodes,
also inside a garbage-collection callback or a ``__del__``, where an
exception is printed and dropped ("Exception ignored in ..."). So the signal
stays recorded until ``Interrupted`` has left the ``handle_signals`` block:
long loops call ``check()`` (each batch of an evaluation), which raises it
again, and a block that ends without it raises it at its end.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
  """The run was stopped by a signal; ``exit_code`` is 128 + its number."""

  def __init__(self, signum: int, message: str):
    super().__init__(message)
    self.signum = int(signum)

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


def signal_name(signum: int) -> str:
  try:
    return signal.Signals(signum).name
  except ValueError:
    return f"signal {signum}"


class _State:
  installed = 0      # depth of handle_signals blocks that installed handlers
  deferring = 0      # depth of deferred() blocks
  pending = None     # the signal recorded while deferring


_state = _State()


def _handle(signum, frame):
  del frame
  name = signal_name(signum)
  first = _state.pending is None
  if first:
    _state.pending = signum
  if _state.deferring and first:
    print(f"{name} received: finishing the current steps and writing a checkpoint "
          f"(send it again to stop at once)", file=sys.stderr, flush=True)
    return
  raise Interrupted(signum, f"stopped by {name}")


def check() -> None:
  """Raises ``Interrupted`` for a signal received outside ``deferred()``
  whose exception was dropped where the handler ran (see the module
  docstring); a no-op otherwise. Loops that run long call it once per
  iteration."""
  signum = _state.pending
  if signum is not None and not _state.deferring:
    raise Interrupted(signum, f"stopped by {signal_name(signum)}")


@contextlib.contextmanager
def handle_signals():
  """SIGINT and SIGTERM raise ``Interrupted`` (deferred inside ``deferred()``)
  while the block runs; the previous handlers come back after it. Nested
  blocks and threads other than the main one leave the handlers as they are."""
  if _state.installed or threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.getsignal(s) for s in SIGNALS}
  for s in SIGNALS:
    signal.signal(s, _handle)
  _state.installed, _state.pending = 1, None
  try:
    yield
    check()         # a signal whose exception was dropped ends the block as one
  finally:
    _state.installed, _state.pending = 0, None
    for s, h in previous.items():
      signal.signal(s, h)


@contextlib.contextmanager
def deferred():
  """Inside the block a first signal is recorded (``pending()``), not raised."""
  _state.deferring += 1
  try:
    yield
  finally:
    _state.deferring -= 1


def pending() -> int | None:
  """The signal received inside ``deferred()`` and not yet acted on."""
  return _state.pending
