"""How well a discrete code recovers a discrete factor (JointVAE's shape on
dSprites): accuracy under the best one-to-one matching of the code's
categories to the factor's values, and their normalised mutual information.

Dupont (2018), Sec. 4.1, reads off by eye that JointVAE's 3-way code takes
dSprites' shape; these two numbers measure it: accuracy 1 and NMI 1 when each
category is exactly one shape, 1/K and 0 for a code that ignores it.

References:
  Dupont (2018), Learning Disentangled Joint Continuous and Discrete
  Representations, NeurIPS, Sec. 4.1 and Fig. 4 (dSprites).
  Strehl & Ghosh (2002), Cluster Ensembles, Sec. 2.1 (NMI, the geometric mean
  of the entropies).
"""

from __future__ import annotations

import itertools

import numpy as np


def category_recovery(categories, factor) -> dict[str, float]:
  """For integer arrays ``categories`` [N] (the code's argmax) and ``factor``
  [N] (the true values): ``accuracy`` under the best one-to-one matching of
  categories to values (the rest count as wrong; exhaustive over matchings,
  so at most 8 categories), ``nmi`` (I / sqrt(H_code H_factor)) and the
  contingency table ``counts`` [categories, values].

  Raises:
    ValueError: mismatched or empty inputs, or more than 8 categories.
  """
  c, f = np.asarray(categories).ravel(), np.asarray(factor).ravel()
  if c.shape != f.shape or c.size == 0:
    raise ValueError(f"categories and factor must be two non-empty arrays of one length, got "
                     f"shapes {np.shape(categories)} and {np.shape(factor)}")
  kc, kf = int(c.max()) + 1, int(f.max()) + 1
  if kc > 8:
    raise ValueError(f"at most 8 categories are matched exhaustively, got {kc}")
  table = np.zeros((kc, kf), np.int64)
  np.add.at(table, (c, f), 1)
  best = 0
  for perm in itertools.permutations(range(max(kc, kf)), kc):
    best = max(best, sum(table[i, j] for i, j in enumerate(perm) if j < kf))
  p = table / c.size
  pc, pf = p.sum(1), p.sum(0)
  nz = p > 0
  mi = float(np.sum(p[nz] * np.log(p[nz] / np.outer(pc, pf)[nz])))
  h = lambda q: float(-np.sum(q[q > 0] * np.log(q[q > 0])))
  denom = np.sqrt(h(pc) * h(pf))
  return {"accuracy": best / c.size, "nmi": mi / denom if denom > 0 else 0.0,
          "counts": table.tolist()}
