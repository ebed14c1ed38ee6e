"""Input checks at the edge (DESIGN.md, contract 7).

They run on the host, on concrete arrays and plain config values, before
anything is traced, so that a user's first clue is a message naming what was
expected and what came, not an XLA error.
"""

from __future__ import annotations

import os
import zipfile
import zlib
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


def load_npz_array(path: str, key: str) -> np.ndarray:
  """Reads array ``key`` of the .npz file ``path``, with errors that name the
  file and say what is wrong with it.

  ``np.load`` alone answers a truncated file with ``BadZipFile`` and a file
  of other bytes with a message about pickles, neither naming the file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is empty, not an .npz (zip) archive, damaged
      (truncated or corrupt), lacks ``key`` (the message lists what it has),
      or holds ``key`` as a pickled object array.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file")
  with open(path, "rb") as f:
    head = f.read(4)
  if not head:
    raise ValueError(f"{path} is empty (0 bytes): expected an .npz archive holding "
                     f"array {key!r}")
  if head[:2] != b"PK":
    what = ("an .npy file, not an .npz archive" if head[:4] == b"\x93NUM"
            else f"not an .npz archive (a zip of .npy arrays): it starts with {head!r}")
    raise ValueError(f"{path} is {what}; expected an .npz holding array {key!r} "
                     "(np.savez)")
  try:
    with np.load(path, allow_pickle=False) as f:
      if key not in f.files:
        raise ValueError(f"{path} must hold an array named {key!r}, has {list(f.files)}")
      return f[key]
  except (zipfile.BadZipFile, EOFError, OSError, zlib.error, ValueError) as e:
    if str(e).startswith(path):
      raise
    if "Object arrays cannot be loaded" in str(e):
      raise ValueError(f"{path} holds {key!r} as an object array (pickled Python "
                       "objects), which is not loaded for safety; save it as a numeric "
                       "array") from None
    raise ValueError(f"{path} is a damaged .npz archive (truncated or corrupt), so array "
                     f"{key!r} cannot be read ({type(e).__name__}: {e})") from e
