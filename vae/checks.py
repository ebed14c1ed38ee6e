"""Input checks at the edge (DESIGN.md, contract 7).

They run on the host, on concrete arrays and plain config values, before
anything is traced, so that a user's first clue is a message naming what was
expected and what came, not an XLA error.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def check_data(x, *, data_shape: Sequence[int] | None = None,
               likelihood: str | None = None, name: str = "data") -> None:
  """Validates a batch or data set of shape [N, *data_shape].

  Args:
    x: array-like with a leading example axis.
    data_shape: expected shape of one example (None: not checked).
    likelihood: "bernoulli" requires values in {0, 1}.
    name: what to call the array in messages.

  Raises:
    ValueError: wrong rank/shape, NaN or inf, or non-binary data under a
      Bernoulli likelihood.
    TypeError: a non-numeric dtype.
  """
  arr = np.asarray(x)
  if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
    raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
  if data_shape is not None:
    data_shape = tuple(int(s) for s in data_shape)
    if arr.ndim != len(data_shape) + 1 or tuple(arr.shape[1:]) != data_shape:
      raise ValueError(
          f"{name} must have shape [N, {', '.join(map(str, data_shape))}] "
          f"(N examples of shape {data_shape}), got shape {arr.shape}")
  if arr.shape and arr.shape[0] == 0:
    raise ValueError(f"{name} is empty (shape {arr.shape})")
  if np.issubdtype(arr.dtype, np.floating):
    finite = np.isfinite(arr)
    if not finite.all():
      bad = np.argwhere(~finite)[0]
      raise ValueError(f"{name} contains NaN or inf ({(~finite).sum()} values; "
                       f"first at index {tuple(int(i) for i in bad)})")
  if likelihood == "bernoulli":
    binary = (arr == 0) | (arr == 1)
    if not binary.all():
      bad = np.argwhere(~binary)[0]
      raise ValueError(
          f"{name} must be binary (0 or 1) under a Bernoulli likelihood, got "
          f"value {arr[tuple(bad)]!r} at index {tuple(int(i) for i in bad)} "
          f"(range [{arr.min()}, {arr.max()}]); binarize it or use "
          "likelihood='gaussian'")
