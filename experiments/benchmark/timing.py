"""The one timing helper of every benchmark family.

``time_it(fn, repeats=..., warmup=...)`` calls ``fn`` untimed ``warmup``
times (the first call compiles), then ``repeats`` times, each call timed on
its own until its result is ready on the device (``jax.block_until_ready``),
and returns a ``Timing``: the seconds of every repeat with their range and
median, and the last result. A benchmark whose unit is a loop of device
calls (chunks of a scanned training loop, batches rendered) makes that loop
its ``fn``, so the calls inside it overlap as they do in training and only
the end of the loop is waited for.

``Carried`` is such a loop: a step or a chunk of steps whose state is
carried from one call to the next (the warm-up's state is where the timed
calls start).

``alternate`` repeats several measurements in turn (A, B, C, A, B, C, ...)
so that a slow spell of a shared machine touches all of them, and
``span``/``median`` summarise what it returns.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable, Mapping, Sequence, TypeVar

import jax

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Timing:
  """Seconds of each timed call (in order) and the last call's result."""
  seconds: tuple[float, ...]
  value: Any = None

  @property
  def best(self) -> float:
    return min(self.seconds)

  @property
  def worst(self) -> float:
    return max(self.seconds)

  @property
  def median(self) -> float:
    return statistics.median(self.seconds)

  def rate(self, work: float) -> float:
    """``work`` per second of the fastest call."""
    return work / self.best

  def rate_range(self, work: float) -> list[float]:
    """[slowest, fastest] rate of ``work`` per call."""
    return [work / self.worst, work / self.best]


def time_it(fn: Callable[[], Any], *, repeats: int = 1, warmup: int = 1) -> Timing:
  """``fn()`` ``warmup`` times untimed, then ``repeats`` times timed, each
  to its result being ready."""
  for _ in range(warmup):
    jax.block_until_ready(fn())
  seconds, value = [], None
  for _ in range(repeats):
    t0 = time.perf_counter()
    value = jax.block_until_ready(fn())
    seconds.append(time.perf_counter() - t0)
  return Timing(tuple(seconds), value)


class Carried:
  """A loop whose state is carried across calls: ``loop.run(n)`` is a
  callable (for ``time_it``) that applies ``advance(state, index)`` n times,
  ``index`` counting every application so far; ``state`` and ``metrics``
  are the latest."""

  def __init__(self, advance: Callable[[Any, int], tuple[Any, Any]], state: Any):
    self.advance, self.state, self.metrics, self.index = advance, state, None, 0

  def run(self, count: int) -> Callable[[], Any]:
    def go():
      for _ in range(count):
        self.state, self.metrics = self.advance(self.state, self.index)
        self.index += 1
      return self.state
    return go


def alternate(measurements: Mapping[str, Callable[[], T]], repeats: int
              ) -> dict[str, list[T]]:
  """{name: [result of each round]}: every measurement once per round, in
  order, for ``repeats`` rounds."""
  out: dict[str, list[T]] = {name: [] for name in measurements}
  for _ in range(repeats):
    for name, measure in measurements.items():
      out[name].append(measure())
  return out


def span(values: Sequence[float]) -> tuple[float, float]:
  """(min, max) of repeated figures."""
  return min(values), max(values)


def median(values: Sequence[float]) -> float:
  return float(statistics.median(values))
