"""Shared machinery of the disentanglement metrics, all in JAX.

* sampling factors, rendering observations and encoding them in batches,
  under jit (``sample_codes``);
* histogram discretisation and discrete mutual information / entropy
  (contingency tables as one-hot matrix products);
* the classifiers the metrics prescribe, fitted by Newton's method on the
  device: multinomial logistic regression with an L2 penalty (scikit-learn's
  ``LogisticRegression`` objective, by L-BFGS) and the one-vs-rest
  squared-hinge linear SVM of liblinear (scikit-learn's ``LinearSVC``, by
  Newton's method), vmapped over many small problems at once.

A representation function maps a batch of observations [B, *obs_shape] to
codes [B, D]; it must be jit-able (e.g. the posterior mean of a trained
encoder, ``vae.metrics.representation_from_params``).

References:
  Locatello et al. (2019), disentanglement_lib: the protocols these follow.
"""

from __future__ import annotations

import dataclasses

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae.data.ground_truth import observation_key

RepresentationFn = Callable[[jax.Array], jax.Array]


def encode_batched(representation_fn: RepresentationFn, x: jax.Array,
                   batch_size: int) -> jax.Array:
  """Applies ``representation_fn`` to ``x`` [N, ...] in batches (lax.map);
  the last batch is padded with zeros, whose codes are dropped. Returns
  float32 [N, D]."""
  n = x.shape[0]
  batch_size = min(int(batch_size), n)
  m = _round_up(n, batch_size)
  if m > n:
    x = jnp.concatenate([x, jnp.zeros((m - n,) + x.shape[1:], x.dtype)])
  chunks = x.reshape((m // batch_size, batch_size) + x.shape[1:])
  real = jnp.minimum(n - batch_size * jnp.arange(m // batch_size), batch_size)  # not padding
  codes = jax.lax.map(lambda a: encoded(representation_fn(a[0]), a[1]), (chunks, real))
  return codes.reshape((m,) + codes.shape[2:])[:n].astype(jnp.float32)


def encode_groups(representation_fn: RepresentationFn, obs: jax.Array) -> jax.Array:
  """Codes [G, N, D] of observations [G, N, ...] (G groups of N, e.g. the
  batches behind G votes), encoded as one flat batch of G * N in chunks of
  ``ENCODE_BATCH``: the representation sees plain batches, never a vmapped
  axis (a vmapped GEMM conv runs as batched small products, 1.7x slower
  than one product over the batch on a CPU)."""
  g, n = obs.shape[:2]
  codes = encode_batched(representation_fn, obs.reshape((g * n,) + obs.shape[2:]),
                         ENCODE_BATCH)
  return codes.reshape((g, n) + codes.shape[1:])


# Progress within a metric: the jitted programs report each chunk of
# observations they have encoded to the listeners registered here (a host
# callback per chunk of hundreds of images: no measurable cost).
_listeners: list[Callable[[int], None]] = []


def _notify(num, _):
  for listener in list(_listeners):
    listener(int(num))


def encoded(codes, num):
  """Inside a traced metric: reports ``num`` (an int, or a traced int)
  observations encoded once
  ``codes`` (an array or a tuple of them) are computed, to the ``on_encoded``
  listeners; returns ``codes``."""
  jax.debug.callback(_notify, num, jnp.ravel(jax.tree_util.tree_leaves(codes)[0])[0])
  return codes


class on_encoded:
  """``with on_encoded(fn):`` calls ``fn(num)`` as the metrics running inside
  encode each chunk of ``num`` observations (for progress bars)."""

  def __init__(self, fn: Callable[[int], None]):
    self.fn = fn

  def __enter__(self):
    _listeners.append(self.fn)
    return self

  def __exit__(self, *exc):
    _listeners.remove(self.fn)
    return False


def _round_up(n: int, m: int) -> int:
  return -(-int(n) // int(m)) * int(m)


def as_representation(representation_fn):
  """A representation function as a ``jax.tree_util.Partial``, the form the
  jitted metric programs take it in: its bound arrays (e.g. a model's
  parameters, see ``vae.metrics.representation_from_params``) are traced
  arguments, so scoring another model of the same shape reuses the compiled
  program instead of compiling again."""
  if isinstance(representation_fn, jax.tree_util.Partial):
    return representation_fn
  return jax.tree_util.Partial(representation_fn)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _sample_codes(ground_truth, representation_fn, key, num_points, batch_size):
  factors = ground_truth.sample_factors(key, num_points)
  obs = jax.lax.map(lambda a: ground_truth.observations(*a),
                    (factors.reshape(num_points // batch_size, batch_size, -1),
                     jax.random.split(observation_key(key), num_points // batch_size)))
  obs = obs.reshape((num_points,) + obs.shape[2:])
  return encode_batched(representation_fn, obs, ENCODE_BATCH), factors


# Observations per call of the representation function when encoding a
# sample: a protocol's batch (16 in disentanglement_lib) only says how the
# sample is drawn; encoding 16 at a time leaves a CPU's GEMMs half idle.
ENCODE_BATCH = 512


def sample_codes(ground_truth, representation_fn: RepresentationFn, key: jax.Array,
                 num_points: int, batch_size: int = 64):
  """Codes and factors of ``num_points`` random observations.

  Sampling, rendering and encoding run in one jitted program, batch by batch.

  Returns:
    (codes float32 [num_points, D], factors int32 [num_points, F]).
  """
  n = _round_up(num_points, batch_size)
  codes, factors = _sample_codes(ground_truth, as_representation(representation_fn), key, n,
                                 int(batch_size))
  return codes[:num_points], factors[:num_points]


def sample_train_test_codes(ground_truth, representation_fn: RepresentationFn,
                            key: jax.Array, num_train: int, num_test: int,
                            batch_size: int = 16):
  """``sample_codes`` twice, with independent keys: (x_train, y_train,
  x_test, y_test) for the metrics that fit a predictor and test it."""
  k_tr, k_te = jax.random.split(key)
  xtr, ytr = sample_codes(ground_truth, representation_fn, k_tr, int(num_train), int(batch_size))
  xte, yte = sample_codes(ground_truth, representation_fn, k_te, int(num_test), int(batch_size))
  return xtr, ytr, xte, yte


# ---------------------------------------------------------------- information
def histogram_discretize(codes: jax.Array, num_bins: int = 20) -> jax.Array:
  """Each column of codes [N, D] into ``num_bins`` equal-width bins between
  its min and max: int32 [N, D] in [0, num_bins) (numpy.histogram's bins;
  the maximum falls in the last bin, as disentanglement_lib's
  ``_histogram_discretize``)."""
  lo, hi = jnp.min(codes, axis=0), jnp.max(codes, axis=0)
  width = jnp.where(hi > lo, (hi - lo) / num_bins, 1.0)
  b = jnp.floor((codes - lo) / width).astype(jnp.int32)
  return jnp.clip(b, 0, num_bins - 1)


def _contingency(a: jax.Array, b: jax.Array, na: int, nb: int) -> jax.Array:
  """Joint counts of two int vectors [N] as a [na, nb] table."""
  return jax.nn.one_hot(a, na, dtype=jnp.float32).T @ jax.nn.one_hot(b, nb, dtype=jnp.float32)


def _mi_from_counts(c: jax.Array) -> jax.Array:
  n = jnp.sum(c)
  p = c / n
  pa, pb = jnp.sum(p, 1, keepdims=True), jnp.sum(p, 0, keepdims=True)
  ratio = jnp.where(p > 0, p / jnp.maximum(pa * pb, 1e-30), 1.0)
  return jnp.sum(jnp.where(p > 0, p * jnp.log(ratio), 0.0))


def discrete_mutual_info(codes_discrete: jax.Array, factors: jax.Array, num_bins: int,
                         factor_sizes) -> jax.Array:
  """I(z_d; f_k) in nats for every latent d and factor k: [D, F].

  The plug-in estimate from the joint histogram (what
  ``sklearn.metrics.mutual_info_score`` computes)."""
  kmax = int(max(factor_sizes))
  def one(zd, fk):
    return _mi_from_counts(_contingency(zd, fk, num_bins, kmax))
  return jax.vmap(lambda zd: jax.vmap(lambda fk: one(zd, fk), in_axes=1)(factors),
                  in_axes=1)(codes_discrete)


def discrete_entropy(factors: jax.Array, factor_sizes) -> jax.Array:
  """H(f_k) in nats for each factor column: [F]."""
  kmax = int(max(factor_sizes))
  def one(fk):
    p = jnp.sum(jax.nn.one_hot(fk, kmax, dtype=jnp.float32), 0) / fk.shape[0]
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
  return jax.vmap(one, in_axes=1)(factors)


def standardize(train: jax.Array, test: jax.Array | None = None, eps: float = 1e-12):
  """Centres and scales columns by the training mean and std (sklearn's
  StandardScaler; constant columns are left at scale 1)."""
  mu, sd = jnp.mean(train, 0), jnp.std(train, 0)
  sd = jnp.where(sd > eps, sd, 1.0)
  out = (train - mu) / sd
  return out if test is None else (out, (test - mu) / sd)


# ------------------------------------------------------------------ classifiers
def _lbfgs(obj, theta0, iters: int):
  """optax L-BFGS (zoom line search) for a fixed number of iterations."""
  opt = optax.lbfgs()
  vg = optax.value_and_grad_from_state(obj)

  def body(carry, _):
    theta, st = carry
    value, grad = vg(theta, state=st)
    updates, st = opt.update(grad, st, theta, value=value, grad=grad, value_fn=obj)
    return (optax.apply_updates(theta, updates), st), None

  (theta, _), _ = jax.lax.scan(body, (theta0, opt.init(theta0)), None, length=iters)
  return theta


def fit_logistic_regression(x: jax.Array, y: jax.Array, num_classes: int, C: float = 1.0,
                            iters: int = 100):
  """Multinomial logistic regression with an L2 penalty on the weights:
  ``min_W,b  sum_i -log softmax(W x_i + b)_{y_i} + ||W||^2 / (2C)``
  (scikit-learn's ``LogisticRegression(C=C)`` objective, multinomial, the
  intercept not penalised), fitted by L-BFGS like scikit-learn's default
  solver. Returns (W [F, K], b [K])."""
  n, f = x.shape
  yo = jax.nn.one_hot(y, num_classes, dtype=jnp.float32)

  def unpack(t):
    return t[:f * num_classes].reshape(f, num_classes), t[f * num_classes:]

  def obj(t):
    w, b = unpack(t)
    nll = -jnp.sum(yo * jax.nn.log_softmax(x @ w + b))
    return nll + 0.5 / C * jnp.sum(w ** 2)

  theta = _lbfgs(obj, jnp.zeros(f * num_classes + num_classes), iters)
  return unpack(theta)


def predict_logistic(params, x):
  w, b = params
  return jax.nn.softmax(x @ w + b)


def _bisect(arr, lo, hi, thr):
  """For sorted runs arr[lo:hi] (per query), the first index in [lo, hi)
  whose value is >= thr (hi if none): lo + the count of values < thr.
  Vectorised over queries; a fixed number of halvings."""
  n = arr.shape[0]

  def step(_, c):
    lo, hi = c
    mid = (lo + hi) // 2
    go = (mid < hi) & (arr[jnp.minimum(mid, n - 1)] < thr)
    return jnp.where(go, mid + 1, lo), jnp.where(go, hi, mid)

  lo, _ = jax.lax.fori_loop(0, int(np.ceil(np.log2(n + 1))) + 1, step, (lo, hi))
  return lo


def _sqhinge_newton_1d(prefix, pos_tot, neg_tot, iters: int):
  """argmin_{w,b} 0.5 (w^2 + b^2) + sum_{i in P} c_i max(0, 1 - (w x_i + b))^2
  + sum_{i in N} c_i max(0, 1 + (w x_i + b))^2 on ONE feature.

  Newton's method with the generalised Hessian of the squared hinge (Keerthi
  & DeCoste 2005). In one dimension the active positives (w x + b < 1) are
  the points on one side of a threshold, and so are the active negatives, so
  every sum the objective, gradient and Hessian need is a prefix sum of
  (c, c x, c x^2): an iteration costs binary searches, not passes over the
  data. The objective is piecewise quadratic; a few iterations reach its
  exact minimum.

  Args:
    prefix: thr [M] -> (positives [M, 3], negatives [M, 3]): the sums of
      (c, c x, c x^2) over the examples with x < thr.
    pos_tot, neg_tot: [3] the same sums over all positives / negatives.
  """
  steps = jnp.array([1.0, 0.5, 0.25, 0.125])

  def sums_at(w, b):
    """Active-set sums and objective at M points (w [M], b [M]). A tie on
    the threshold has a zero margin, so either side gives the same value."""
    m = w.shape[0]
    safe = jnp.where(w == 0, 1.0, w)
    pre, nre = prefix(jnp.concatenate([(1.0 - b) / safe, (-1.0 - b) / safe]))
    pre_p, pre_n = pre[:m], nre[m:]
    wp, bb = w[:, None], b[:, None]
    sp = jnp.where(wp > 0, pre_p, jnp.where(wp < 0, pos_tot - pre_p,
                                            jnp.where(bb < 1.0, pos_tot, 0.0)))
    sn = jnp.where(wp > 0, neg_tot - pre_n, jnp.where(wp < 0, pre_n,
                                                      jnp.where(bb > -1.0, neg_tot, 0.0)))
    up, un = 1.0 - b, 1.0 + b
    val = (0.5 * (w * w + b * b) + sp[:, 0] * up * up - 2 * up * w * sp[:, 1]
           + w * w * sp[:, 2] + sn[:, 0] * un * un + 2 * un * w * sn[:, 1] + w * w * sn[:, 2])
    return sp, sn, val

  def body(carry, _):
    w, b, sp, sn, val = carry
    up, un = 1.0 - b, 1.0 + b
    gw = w - 2 * (up * sp[1] - w * sp[2]) + 2 * (un * sn[1] + w * sn[2])
    gb = b - 2 * (up * sp[0] - w * sp[1]) + 2 * (un * sn[0] + w * sn[1])
    hww = 1.0 + 2 * (sp[2] + sn[2])
    hwb = 2 * (sp[1] + sn[1])
    hbb = 1.0 + 2 * (sp[0] + sn[0])
    det = hww * hbb - hwb * hwb
    dw = (hbb * gw - hwb * gb) / det
    db = (hww * gb - hwb * gw) / det
    cw, cb = w - steps * dw, b - steps * db
    csp, csn, cval = sums_at(cw, cb)
    i = jnp.argmin(cval)
    better = cval[i] < val
    pick = lambda new, old: jnp.where(better, new, old)
    return (pick(cw[i], w), pick(cb[i], b), pick(csp[i], sp), pick(csn[i], sn),
            pick(cval[i], val)), None

  zero = jnp.zeros((1,), pos_tot.dtype)
  sp0, sn0, val0 = sums_at(zero, zero)
  init = (zero[0], zero[0], sp0[0], sn0[0], val0[0])
  (w, b, _, _, _), _ = jax.lax.scan(body, init, None, length=iters)
  return jnp.stack([w, b])


def fit_linear_svm_1d(x: jax.Array, y: jax.Array, num_classes: int, C: float = 0.01,
                      class_weight: jax.Array | None = None, iters: int = 12):
  """One-vs-rest squared-hinge linear SVMs on ONE feature, as liblinear
  (scikit-learn's ``LinearSVC(C=C)``, whose default loss is the squared hinge):
  for each class k, ``min_w,b 0.5 (w^2 + b^2) + sum_i C_i max(0, 1 - t_i (w
  x_i + b))^2`` with t_i = +1 for class k; the intercept is a feature of
  value 1 and is penalised, as in liblinear. With ``class_weight`` [K]
  (balanced weights), positives cost ``C * class_weight[k]`` and negatives
  ``C`` (liblinear's one-vs-rest weighting); two classes make ONE problem in
  which each example costs C times its own class's weight.

  The data are sorted twice (by x, and by class then x) and prefix-summed
  once each, so K problems cost O(N log N + K iters log N), not O(N K).

  Args:
    x: [N] feature; y: int [N] labels in [0, num_classes).

  Returns:
    (w [K], b [K]); predict ``argmax_k w_k x + b_k``.
  """
  n = x.shape[0]
  cw = jnp.ones((num_classes,)) if class_weight is None else class_weight
  feats = lambda v: jnp.stack([jnp.ones_like(v), v, v * v], axis=-1)
  prefix_sum = lambda f: jnp.concatenate([jnp.zeros((1, 3), f.dtype),
                                          jax.lax.associative_scan(jnp.add, f, axis=0)])
  xs = jnp.sort(x)
  cum_all = prefix_sum(feats(xs))                          # [N + 1, 3], by x
  by_class = jnp.lexsort((x, y))
  xc = x[by_class]
  cum_cls = prefix_sum(feats(xc))                          # by class, then x
  counts = jnp.sum(jax.nn.one_hot(y, num_classes, dtype=jnp.int32), axis=0)
  start = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(counts)[:-1]])
  end = start + counts

  def class_prefix(k, thr):
    lo = jnp.full(thr.shape, start[k])
    j = _bisect(xc, lo, jnp.full(thr.shape, end[k]), thr)
    return cum_cls[j] - cum_cls[start[k]]

  def class_total(k):
    return cum_cls[end[k]] - cum_cls[start[k]]

  if num_classes == 2:
    prefix = lambda thr: (C * cw[1] * class_prefix(1, thr), C * cw[0] * class_prefix(0, thr))
    th = _sqhinge_newton_1d(prefix, C * cw[1] * class_total(1), C * cw[0] * class_total(0),
                            iters)
    return jnp.stack([-th[0], th[0]]), jnp.stack([-th[1], th[1]])

  def fit(k):
    def prefix(thr):
      mine = class_prefix(k, thr)
      every = cum_all[_bisect(xs, jnp.zeros(thr.shape, jnp.int32),
                              jnp.full(thr.shape, n, jnp.int32), thr)]
      return C * cw[k] * mine, C * (every - mine)
    th = _sqhinge_newton_1d(prefix, C * cw[k] * class_total(k),
                            C * (cum_all[n] - class_total(k)), iters)
    # A class absent from the training labels is never predicted.
    return jnp.where(counts[k] > 0, th, jnp.array([0.0, -jnp.inf]))

  theta = jax.vmap(fit)(jnp.arange(num_classes))
  return theta[:, 0], theta[:, 1]


def balanced_class_weight(y: jax.Array, num_classes: int) -> jax.Array:
  """``n / (K_present * count_k)`` (scikit-learn's "balanced"), 0 for absent classes."""
  counts = jnp.sum(jax.nn.one_hot(y, num_classes), 0)
  present = jnp.sum(counts > 0)
  return jnp.where(counts > 0, y.shape[0] / (present * jnp.maximum(counts, 1)), 0.0)


def roc_auc(scores: jax.Array, labels: jax.Array) -> jax.Array:
  """Area under the ROC curve of binary ``labels`` [N] ranked by ``scores``
  [N] (the Mann-Whitney statistic with tied scores counted one half, as
  ``sklearn.metrics.roc_auc_score``)."""
  order = jnp.argsort(scores)
  s = scores[order]
  pos = labels[order].astype(jnp.float32)
  n = s.shape[0]
  # Mid-ranks for ties: the mean of the first and last position of each value.
  first = jnp.searchsorted(s, s, side="left")
  last = jnp.searchsorted(s, s, side="right") - 1
  ranks = 0.5 * (first + last).astype(jnp.float32) + 1.0
  n_pos = jnp.sum(pos)
  n_neg = n - n_pos
  u = jnp.sum(ranks * pos) - n_pos * (n_pos + 1) / 2
  return u / jnp.maximum(n_pos * n_neg, 1.0)


def to_float_dict(d) -> dict:
  """Device scalars to Python floats (and arrays to lists)."""
  out = {}
  for k, v in d.items():
    v = np.asarray(v)
    out[k] = float(v) if v.ndim == 0 else v.tolist()
  return out


@dataclasses.dataclass(frozen=True)
class Metric:
  """One disentanglement metric, as its module declares it (``METRIC``).

  Attributes:
    name: registry name ("mig").
    compute: ``(ground_truth, representation_fn, key, **protocol) -> dict``.
    score_key: the headline number of that dict.
    images_encoded: ``(protocol settings) -> int``: observations the metric
      renders and encodes (what scoring costs, before any classifier).
  """
  name: str
  compute: Callable[..., dict]
  score_key: str
  images_encoded: Callable[[dict], int]
