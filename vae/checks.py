"""Input checks at the edge (docs/design.md, contract 7).

They run on the host, on concrete arrays and plain config values, before
anything is traced, so that a user's first clue is a message naming what was
expected and what came, not an XLA error.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import Callable, Sequence

import numpy as np


class InputError(ValueError):
  """Data or settings that do not fit (a check of this module, or a config
  refused before training): the message says what was expected and what came."""


def check_data(x, *, data_shape: Sequence[int] | None = None,
               likelihood: str | None = None, name: str = "data",
               scale: float = 1.0, where: Callable[[int], str] | None = None) -> None:
  """Validates a batch or data set of shape [N, *data_shape].

  Args:
    x: array-like with a leading example axis.
    data_shape: expected shape of one example (None: not checked).
    likelihood: what the values must be: "bernoulli" in {0, 1},
      "cross_entropy" in [0, 1], "gaussian" any finite value (None: only
      finiteness is checked).
    name: what to call the array in messages.
    scale: the values the model sees are ``x * scale`` (1/255 for uint8
      pixels that a source scales on the device).
    where: names example ``i`` of ``x`` as its source knows it (a file, the
      row of a file: ``reader.where``); a bad value is then reported there,
      not at its index in ``x``.

  Raises:
    ValueError: wrong rank/shape, NaN or inf, or values the likelihood
      cannot score; the message says which likelihood fits the data seen.
    TypeError: a non-numeric dtype.
  """
  arr = np.asarray(x)
  if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
    raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
  if data_shape is not None:
    data_shape = tuple(int(s) for s in data_shape)
    if arr.ndim != len(data_shape) + 1 or tuple(arr.shape[1:]) != data_shape:
      raise InputError(
          f"{name} must have shape [N, {', '.join(map(str, data_shape))}] "
          f"(N examples of shape {data_shape}), got shape {arr.shape}")
  if arr.shape and arr.shape[0] == 0:
    raise InputError(f"{name} is empty (shape {arr.shape})")
  if np.issubdtype(arr.dtype, np.floating):
    finite = np.isfinite(arr)
    if not finite.all():
      bad = tuple(int(i) for i in np.argwhere(~finite)[0])
      raise InputError(f"{name} contains NaN or inf ({(~finite).sum()} values; "
                       f"first at {_at(bad, where)})")
  if likelihood not in ("bernoulli", "cross_entropy"):
    return
  lo, hi = float(arr.min()) * scale, float(arr.max()) * scale
  scaled = f" (after scaling by {scale:g})" if scale != 1.0 else ""
  in_unit = lo >= 0 and hi <= 1
  fits = ("these [0, 1] values fit likelihood='cross_entropy' (as disentanglement_lib trains "
          "grey and colour images) or 'gaussian'" if in_unit else
          "values outside [0, 1] fit likelihood='gaussian'; scaled to [0, 1] (0-255 pixels "
          "by 1/255) they fit 'cross_entropy'")
  if likelihood == "bernoulli":
    one = round(1.0 / scale) if np.issubdtype(arr.dtype, np.integer) else 1.0 / scale
    binary = (arr == 0) | (arr == one)      # no float copy of the data
    if not binary.all():
      bad = tuple(int(i) for i in np.argwhere(~binary)[0])
      raise InputError(
          f"{name} must be binary (0 or 1){scaled} under likelihood='bernoulli', got "
          f"value {arr[bad].item()!r} at {_at(bad, where)} (range [{lo:g}, {hi:g}]); {fits}; or "
          "binarize the data")
  elif not in_unit:
    bad = tuple(int(i) for i in np.argwhere((arr * scale < 0) | (arr * scale > 1))[0])
    raise InputError(
        f"{name} must lie in [0, 1]{scaled} under likelihood={likelihood!r}, got value "
        f"{arr[bad].item()!r} at {_at(bad, where)} (range [{lo:g}, {hi:g}]); {fits}")


def _at(index: tuple[int, ...], where: Callable[[int], str] | None) -> str:
  """Where a bad value is: its index, or its example as the source names it
  (``where``) and its index within that example."""
  if where is None or not index:
    return f"index {index}"
  return f"{where(index[0])}, element {index[1:]}"


def check_model_fits(model_shape: Sequence[int], example_shape: Sequence[int],
                     what: str = "the data") -> None:
  """The model's ``data_shape`` (a config value) against the shape of the
  examples the data hold: a mismatch is the config's to fix, and the message
  says so (not "the data must have shape ...").

  Raises:
    ValueError: naming both shapes and the setting that would fit.
  """
  model_shape = tuple(int(s) for s in model_shape)
  example_shape = tuple(int(s) for s in example_shape)
  if model_shape != example_shape:
    raise InputError(f"model.data_shape is {model_shape} but {what} holds examples of shape "
                     f"{example_shape}: set model.data_shape to {example_shape} (e.g. "
                     f"--config.model.data_shape=\"{example_shape}\")")


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


def check_int_at_least(name: str, value, low: int, what: str = "") -> int:
  """``value`` as an int (5.0 -> 5), or a ValueError naming ``name``
  (hyperparameters of objectives, posterior families and priors)."""
  if isinstance(value, bool) or int(value) != value or int(value) < low:
    raise ValueError(f"{name} must be an integer >= {low}{what}, got {value}")
  return int(value)


def check_example_count(n: int, num_examples: int) -> None:
  """Raises ValueError unless the training data have ``n`` distinct examples
  (what a prior initialised from data asks for)."""
  if int(n) > int(num_examples):
    raise ValueError(f"{n} distinct training examples were asked for (a prior "
                     f"initialised from data: the VampPrior's num_components with "
                     f"init='data'), but the training data have {num_examples}")
