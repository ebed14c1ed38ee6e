"""scikit-learn's bundled 8x8 digits (1,797 images): a tiny image set that is
always available (no download), for quick demos. Not ground-truth-factor data.

Alpaydin & Kaynak (1998), UCI Optical Recognition of Handwritten Digits.
"""

from __future__ import annotations

import numpy as np


def load(binarize: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """(images [1797, 8, 8, 1], labels [1797]).

  Args:
    binarize: threshold at half intensity to {0, 1} uint8 (for a Bernoulli
      decoder); else float32 in [0, 1].
  """
  try:
    from sklearn.datasets import load_digits
  except ImportError as e:  # pragma: no cover
    raise ImportError("the digits set needs scikit-learn: pip install scikit-learn") from e
  d = load_digits()
  x = (d.images / 16.0).astype(np.float32)[..., None]
  if binarize:
    x = (x >= 0.5).astype(np.uint8)
  return x, d.target.astype(np.int32)
