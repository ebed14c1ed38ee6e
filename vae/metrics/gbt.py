"""Gradient-boosted trees grown as scikit-learn's ``GradientBoostingClassifier``
grows them, in JAX: the classifier behind DCI's reference importance.

disentanglement_lib's DCI (Locatello et al. 2019) fits, per factor,
``GradientBoostingClassifier()`` with its defaults and reads
``feature_importances_``. Those defaults are Friedman's (2001) gradient
boosting, Algorithm 1 with the multinomial deviance (Sec. 4.6): 100 stages at
learning rate 0.1; per stage one regression tree per class on the negative
gradient (the one-hot label minus the softmax of the current scores; one
tree for two classes, on the logistic loss), depth 3, best exact splits by
the squared-error reduction (Friedman's MSE improvement, Eq. 35, ranks
splits the same), then each leaf's value replaced by one Newton step of the loss
(``(K - 1) / K * sum(residual) / sum(p (1 - p))``), and the scores start at
the log class priors. A latent's importance is the impurity decrease
(variance times samples) of every split on it, per tree divided by the
samples, averaged over the trees that split at all and normalised to sum
to 1.

This module grows those trees with scikit-learn's rules (splits only
between values more than 1e-7 apart, at the midpoint; a node splits when it
has two samples and variance above float64's epsilon; float32 features,
float64 statistics), every tree of a stage at once, on the CPU. Because the
first stage's residuals take two values, many candidate splits tie in exact
arithmetic, and scikit-learn's choice among them is made by its rounding and
then by a random order of the latents. So this also sums as scikit-learn
does (each node's left sums one sample at a time in sorted order, the root's
total in index order) and replays that order (its splitter's xorshift
generator, seeded per tree from ``RandomState(seed)``). The ensembles then
score the training points as scikit-learn's to 1e-14 on the study's codes;
where they part (a later tie that rounds the other way), the two are as
close as scikit-learn is to itself with its rows shuffled.
``tests/test_gbt.py`` checks single trees against scikit-learn's exactly,
and ensembles and DCI against it within tolerances.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

EPSILON = float(np.finfo(np.float64).eps)   # scikit-learn's impurity floor
FEATURE_THRESHOLD = 1e-7                      # ... and its smallest split gap
NEWTON_FLOOR = 1e-150                         # _safe_divide: a zero hessian gives 0


class Trees(NamedTuple):
  """The stages of a fitted ensemble, per stage and tree: for each level the
  split feature, threshold and whether the node splits; the leaf values."""
  features: tuple      # per level l: int [S, T, 2^l]
  thresholds: tuple    # per level l: float64 [S, T, 2^l]
  splits: tuple        # per level l: bool [S, T, 2^l]
  values: jax.Array    # float64 [S, T, 2^DEPTH]


DEPTH = 3   # scikit-learn's default max_depth; the visiting order below assumes it
CALLS = 2 ** DEPTH - 1   # nodes of a tree that may search for a split
RAND_R_MAX = 2147483647


def _sums(node, r, slots):
  """Per slot: count, sum and sum of squares of ``r`` over its samples; the
  sum one sample at a time in index order (as scikit-learn sums the root;
  for the study's codes this order also reproduces its deeper nodes'
  rounding where a matrix product does not)."""
  member = (node[None, :] == jnp.arange(slots)[:, None]).astype(r.dtype)

  def add(total, a):
    v, k = a
    return total.at[k].add(v), None

  s = jax.lax.scan(add, jnp.zeros(slots, r.dtype), (r, node))[0]
  return member.sum(1), s, member @ (r * r)


def _variance(cnt, s, sq):
  """scikit-learn's node impurity ``sq/n - (s/n)^2`` (0 for an empty node)."""
  safe = jnp.maximum(cnt, 1.0)
  return jnp.where(cnt > 0, sq / safe - (s / safe) ** 2, 0.0)


def visiting_orders(seeds: np.ndarray, num_features: int) -> np.ndarray:
  """rank [T, CALLS, D]: for tree t's j-th split search (depth first, left
  child first), the position of each latent in the order scikit-learn's
  best splitter tries them, which breaks exact ties (the first tried wins).
  Its splitter draws a Fisher-Yates permutation of one ``features`` array
  that persists from node to node, with the xorshift ``our_rand_r`` seeded
  by one ``randint(0, RAND_R_MAX)`` per tree from the ensemble's
  RandomState; this repeats those draws (no latent constant in a node)."""
  state = np.where(seeds == 0, 1, seeds).astype(np.uint64)
  mask = np.uint64(0xFFFFFFFF)
  t = len(seeds)
  features = np.tile(np.arange(num_features), (t, 1))
  rank = np.zeros((t, CALLS, num_features), np.int32)
  rows = np.arange(t)
  for j in range(CALLS):
    for visit, f_i in enumerate(range(num_features, 0, -1)):
      state ^= (state << np.uint64(13)) & mask
      state ^= state >> np.uint64(17)
      state ^= (state << np.uint64(5)) & mask
      f_j = ((state % np.uint64(RAND_R_MAX + 1)) % np.uint64(f_i)).astype(np.int64)
      chosen = features[rows, f_j]
      rank[rows, j, chosen] = visit
      last = features[rows, f_i - 1].copy()
      features[rows, f_i - 1] = chosen
      features[rows, f_j] = last
  return rank


def _candidates(r, node, perm, x, can, m: int):
  """The split criterion at every candidate split of the ``m`` nodes of a
  level: ``perm`` [D, N] lists per latent the samples node by node, each
  node's in increasing x[:, d] (as scikit-learn's splitter keeps them), so
  one prefix sum per latent gives every split of every node, and a sample's
  successor in its node is the next position."""
  n, d = x.shape
  pos = jnp.arange(n)
  cnt, s, sq = _sums(node, r, m)
  first = (jnp.cumsum(cnt) - cnt).astype(jnp.int32)             # each node's first position
  seg = jnp.searchsorted(jnp.cumsum(cnt), pos, side="right").clip(0, m - 1)
  xv = jnp.take_along_axis(x.T, perm, axis=1)                     # [D, N] values, node-major
  # The left sums one sample at a time from each node's first position, as
  # scikit-learn's criterion adds them: near-ties among splits (common, as
  # the first stage's residuals take two values) then round its way.
  starts = pos == first[seg]

  def add(total, a):
    v, start = a
    total = jnp.where(start, 0.0, total) + v
    return total, total

  cl = jax.lax.scan(add, jnp.zeros(d, r.dtype), (r[perm].T, starts), unroll=16)[1].T
  nl = (pos - first[seg] + 1).astype(r.dtype)
  sr, nr = s[seg] - cl, cnt[seg] - nl
  nxt = jnp.concatenate([xv[:, 1:], jnp.full((d, 1), jnp.inf, r.dtype)], axis=1)
  valid = can[seg] & (nr >= 1) & (nxt > xv + FEATURE_THRESHOLD)
  # scikit-learn's squared-error proxy (its boosting's criterion; Friedman's
  # MSE ranks splits the same in exact arithmetic, not in rounding).
  proxy = jnp.where(valid, cl * cl / nl + sr * sr / jnp.maximum(nr, 1.0), -jnp.inf)
  top = jax.ops.segment_max(jnp.max(proxy, axis=0), seg, num_segments=m)   # [M]
  tied = (proxy == top[seg]) & valid
  return dict(cnt=cnt, s=s, sq=sq, first=first, seg=seg, xv=xv, nxt=nxt, tied=tied)


def _choose(cand, rank, j, m: int):
  """Each node's split: among the splits of greatest criterion, the one in
  the latent tried first (``rank`` [CALLS, D] at the node's search ``j``
  [M]), then the first position. Returns (latent, position, found) [M]."""
  d, n = cand["xv"].shape
  seg = cand["seg"]
  order = rank[j][seg].T                                          # [D, N] try order
  key = jnp.where(cand["tied"], order * n + jnp.arange(n), d * n)
  best = jax.ops.segment_min(jnp.min(key, axis=0), seg, num_segments=m)
  found = best < d * n
  pos = jnp.where(found, best % n, 0)
  feat = jnp.argmax(rank[j] == (best // n)[:, None], axis=1)
  return feat.astype(jnp.int32), pos, found


def _split(cand, feat, pos, has, node, x, r):
  """Each node's chosen split applied: its threshold, every sample's child
  slot, and the children's counts and variances (the left's from its own
  sums, the right's as the node's minus the left's, as scikit-learn's
  criterion computes them)."""
  lo, hi = cand["xv"][feat, pos], cand["nxt"][feat, pos]
  thr = lo / 2.0 + hi / 2.0
  thr = jnp.where(has, jnp.where(thr == hi, lo, thr), jnp.inf)
  right = has[node] & (x[jnp.arange(x.shape[0]), feat[node]] > thr[node])
  child = 2 * node + right.astype(jnp.int32)
  cnt, s, sq = _sums(child, r, 2 * len(has))
  nl, sl, ql = cnt[0::2], s[0::2], sq[0::2]
  nr, sr, qr = cand["cnt"] - nl, cand["s"] - sl, cand["sq"] - ql
  return thr, child, right, jnp.stack([nl, nr], 1).reshape(-1), jnp.stack(
      [_variance(nl, sl, ql), _variance(nr, sr, qr)], 1).reshape(-1)


def _search(level_cnt, level_imp, terminal):
  """Whether each node searches for a split (scikit-learn's stopping
  rules: at least two samples and variance above epsilon)."""
  return ~terminal & (level_cnt >= 2) & (level_imp > EPSILON)


def _grow_one(r, x, order, rank):
  """One regression tree (depth 3) on residuals ``r`` [N]: each sample's
  leaf slot, the splits per level and the importance [D] (impurity decrease
  per latent, over the samples)."""
  n, d = x.shape
  cnt, s, sq = _sums(jnp.zeros(n, jnp.int32), r, 1)
  node, perm = jnp.zeros(n, jnp.int32), order
  imp, terminal = _variance(cnt, s, sq), jnp.zeros(1, bool)
  calls = _search(cnt, imp, terminal)                            # [1]
  j = jnp.zeros(1, jnp.int32)
  struct, importance = [], jnp.zeros(d, r.dtype)
  for level in range(DEPTH):
    m = 2 ** level
    cand = _candidates(r, node, perm, x, calls, m)
    if level == 1:
      # The right child's search comes after the left subtree's: its place
      # in the visiting orders waits for the left child's split.
      feat, pos, found = _choose(cand, rank, j, m)
      has = calls & found
      _, _, _, ccnt, cimp = _split(cand, feat, pos, has, node, x, r)
      below = _search(ccnt, cimp, jnp.repeat(~has, 2)).astype(jnp.int32)
      j = j.at[1].set(j[0] + calls[0].astype(jnp.int32) + below[0] + below[1])
    feat, pos, found = _choose(cand, rank, j, m)
    has = calls & found
    thr, child, right, ccnt, cimp = _split(cand, feat, pos, has, node, x, r)
    gain = cand["cnt"] * imp - ccnt[0::2] * cimp[0::2] - ccnt[1::2] * cimp[1::2]
    importance = importance + jax.nn.one_hot(feat, d, dtype=r.dtype).T @ jnp.where(has, gain, 0.0)
    struct.append((feat, thr, has))
    terminal = jnp.repeat(~has, 2)
    if level + 1 < DEPTH:
      nxt_calls = _search(ccnt, cimp, terminal)
      # Depth-first numbering of the searches: a left child's comes right
      # after its parent's, a right child's after its left sibling's.
      left_j = j + calls.astype(jnp.int32)
      j = jnp.stack([left_j, left_j + nxt_calls[0::2].astype(jnp.int32)], 1).reshape(-1)
      perm = _partition(perm, right, cand["first"], cand["seg"], ccnt)
      calls, imp = nxt_calls, cimp
    node = child
  feats, thrs, splits = (tuple(a) for a in zip(*struct))
  return node, (feats, thrs, splits), importance / n


def _partition(perm, right, first, seg, ccnt):
  """Every node's run in ``perm`` [D, N] (node m's from position ``first``
  [M]; ``seg`` [N]: the node of each position, as ``_candidates`` found
  them) split stably into its children's, the left child's first."""
  d, n = perm.shape
  pos = jnp.arange(n)
  g = right[perm].astype(jnp.int32)                               # [D, N]
  cr = jnp.cumsum(g, axis=1)
  right_before = cr - g - jnp.where(first > 0, cr[:, jnp.maximum(first - 1, 0)], 0)[:, seg]
  left_before = pos - first[seg] - right_before
  nleft = ccnt[0::2].astype(jnp.int32)
  new_pos = first[seg] + jnp.where(g == 1, nleft[seg] + right_before, left_before)
  return jnp.zeros_like(perm).at[jnp.arange(d)[:, None], new_pos].set(perm)


def _leaf_values(node, r, p, slots: int, scale: float):
  """One Newton step per leaf (scikit-learn's ``_update_terminal_regions``)."""
  member = (node[None, :] == jnp.arange(slots)[:, None]).astype(r.dtype)
  cnt = jnp.maximum(member.sum(1), 1.0)
  num = (member @ r) / cnt * scale
  den = (member @ (p * (1.0 - p))) / cnt
  return jnp.where(jnp.abs(den) < NEWTON_FLOOR, 0.0, num / jnp.where(den == 0, 1.0, den))


def _probabilities(raw, binary: bool):
  return jax.nn.sigmoid(raw) if binary else jax.nn.softmax(raw, axis=1)


@functools.partial(jax.jit, static_argnames=("num_classes", "learning_rate"))
def _fit(x, y, ranks, *, num_classes: int, learning_rate: float):
  n, d = x.shape
  binary = num_classes == 2
  order = jnp.argsort(x, axis=0).T.astype(jnp.int32)               # [D, N]
  onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
  prior = jnp.clip(onehot.mean(0), EPSILON, 1 - EPSILON)
  if binary:
    target = onehot[:, 1:]
    raw0 = jnp.broadcast_to(jnp.log(prior[1] / (1 - prior[1])), (n, 1))
    scale = 1.0
  else:
    target = onehot
    logp = jnp.log(prior)
    raw0 = jnp.broadcast_to(logp - jnp.mean(logp), (n, num_classes))
    scale = (num_classes - 1) / num_classes

  def stage(raw, rank):
    p = _probabilities(raw, binary)
    r = (target - p).T                                              # [T, N]
    node, struct, imp = jax.vmap(lambda ri, ki: _grow_one(ri, x, order, ki))(r, rank)
    # scikit-learn's leaf step reads the probability back as target - residual.
    values = jax.vmap(lambda nd, ri, pi: _leaf_values(nd, ri, pi, 2 ** DEPTH, scale))(
        node, r, target.T - r)
    raw = raw + learning_rate * jnp.take_along_axis(values, node, axis=1).T
    return raw, (struct, values, imp, struct[2][0][:, 0])

  raw, (struct, values, imp, relevant) = jax.lax.scan(stage, raw0, ranks)
  trees = Trees(*struct, values)
  imp, relevant = imp.reshape(-1, d), relevant.reshape(-1)
  total = jnp.sum(jnp.where(relevant[:, None], imp, 0.0), 0) / jnp.maximum(relevant.sum(), 1)
  importance = jnp.where(total.sum() > 0, total / jnp.where(total.sum() > 0, total.sum(), 1.0),
                         0.0)
  return trees, raw0[0], importance


@functools.partial(jax.jit, static_argnames=("learning_rate",))
def _raw_predict(trees: Trees, raw0, x, learning_rate: float):
  rows = jnp.arange(x.shape[0])

  def tree(feats, thrs, splits, values):
    node = jnp.zeros(x.shape[0], jnp.int32)
    for f, t, s in zip(feats, thrs, splits):
      node = 2 * node + (s[node] & (x[rows, f[node]] > t[node])).astype(jnp.int32)
    return values[node]

  per_stage = jax.vmap(jax.vmap(tree))(trees.features, trees.thresholds, trees.splits,
                                       trees.values)                # [S, T, N]

  def add(raw, v):
    return raw + learning_rate * v.T, None

  return jax.lax.scan(add, jnp.broadcast_to(raw0, (x.shape[0],) + raw0.shape), per_stage)[0]


def _finite(x, what: str) -> np.ndarray:
  """``x`` as float32, refused (as scikit-learn refuses it) if not finite:
  a NaN would be counted right of every split and sent left by it."""
  x = np.asarray(x, np.float32)
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{what} needs finite codes, got {int(np.sum(~np.isfinite(x)))} NaN or "
                     f"infinite values in an array of shape {x.shape}")
  return x


class GradientBoostedTrees:
  """``GradientBoostingClassifier(random_state=seed)`` with scikit-learn's
  other defaults (100 stages, learning rate 0.1, depth 3), fitted on the CPU
  in float64.

  ``fit(x, y)`` takes codes [N, D] (used as float32, as scikit-learn's trees
  do) and labels [N]; then ``feature_importances_`` [D], ``classes_`` and
  ``predict(x)`` as scikit-learn's. Labels with one value raise, as there."""

  def __init__(self, stages: int = 100, learning_rate: float = 0.1, seed: int = 0):
    self.stages, self.learning_rate, self.seed = int(stages), float(learning_rate), int(seed)

  def fit(self, x, y):
    x = _finite(x, "fit")
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
      raise ValueError(f"fit takes x [N, D] and y [N], got {x.shape} and {y.shape}")
    spread = x.max(0) - x.min(0) if len(x) else np.zeros(x.shape[1:])
    if np.any(spread <= FEATURE_THRESHOLD):
      warnings.warn(f"latents {np.flatnonzero(spread <= FEATURE_THRESHOLD).tolist()} are "
                    "constant; scikit-learn then draws its order of latents differently, so "
                    "ties among splits may go another way than there (the trees stay valid)",
                    stacklevel=2)
    self.classes_, encoded = np.unique(y, return_inverse=True)
    if len(self.classes_) < 2:
      raise ValueError(f"y needs at least 2 classes to boost trees on, got {self.classes_}")
    trees_per_stage = 1 if len(self.classes_) == 2 else len(self.classes_)
    # One draw per tree, in the order scikit-learn fits them.
    seeds = np.random.RandomState(self.seed).randint(0, RAND_R_MAX,
                                                     size=self.stages * trees_per_stage)
    ranks = visiting_orders(seeds, x.shape[1]).reshape(
        self.stages, trees_per_stage, CALLS, x.shape[1])
    cpu = jax.devices("cpu")[0]
    with jax.enable_x64(True):
      put = lambda a: jax.device_put(a, cpu)
      self._trees, self._raw0, imp = _fit(
          put(x.astype(np.float64)), put(encoded.astype(np.int32)), put(ranks),
          num_classes=len(self.classes_), learning_rate=self.learning_rate)
      self.feature_importances_ = np.asarray(imp)
    return self

  def decision_function(self, x):
    """Raw scores [N, K] ([N, 1] for two classes) of observations ``x``."""
    x = _finite(x, "decision_function")
    with jax.enable_x64(True):
      xd = jax.device_put(x.astype(np.float64), jax.devices("cpu")[0])
      return np.asarray(_raw_predict(self._trees, self._raw0, xd, self.learning_rate))

  def predict(self, x):
    raw = self.decision_function(x)
    if len(self.classes_) == 2:
      return self.classes_[(raw[:, 0] >= 0).astype(int)]
    return self.classes_[np.argmax(raw, axis=1)]
