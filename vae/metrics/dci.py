"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams 2018).

For each factor k a predictor of k from the code gives an importance R[d, k]
of every latent d and an accuracy (informativeness). Then (Sec. 3, Eq. 1-2):

* disentanglement of latent d: ``1 - H_K(P_d.)`` with P_dk = R_dk / sum_k R_dk
  and H_K the entropy in base K (number of factors); the score weights latents
  by their share of importance, rho_d = sum_k R_dk / sum R;
* completeness of factor k: ``1 - H_D(P~_.k)`` with P~_dk = R_dk / sum_d R_dk,
  entropy in base D, weighted by each factor's share of importance;
* informativeness: the predictors' accuracy on train and held-out points.

Importances, as options:
* ``importance="gbt"``: gradient-boosted trees (scikit-learn's
  ``GradientBoostingClassifier``, feature_importances_), the protocol of
  disentanglement_lib; runs on the CPU;
* ``importance="gbt_jax"``: the same trees grown in JAX (``vae.metrics.gbt``:
  scikit-learn's algorithm and rules, float64, every tree of a boosting
  stage at once, a third of the reference's time); each tree is
  scikit-learn's, and an ensemble follows it until a split tie that
  scikit-learn's rounding decides the other way: on a study model R within
  0.004 of the reference's (as scikit-learn with another random_state) and
  D within 0.002;
* ``importance="hist_gbt"``: histogram gradient-boosted trees (scikit-learn's
  ``HistGradientBoostingClassifier``, all cores), the split gains summed per
  latent (``hist_gbt_importance``): on four trained dSprites models it ranked
  them as the reference does in a seventh to a fourteenth of the time, but
  read 0.01-0.04 higher in D, so it is for quick looks, not for numbers set
  beside published ones;
* ``importance="linear"``: a multinomial logistic-regression probe on
  standardised codes, fitted on the device (vae.metrics.utils); R[d, k] is
  the mean over k's classes of |W[d, class]|. Much faster; a linear probe.

Defaults: 10,000 training and 5,000 test points.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vae.metrics import utils

IMPORTANCES = ("gbt", "gbt_jax", "hist_gbt", "linear")


def _entropy_rows(p, base):
  p = p + 1e-11   # as disentanglement_lib (scipy.stats.entropy of R + 1e-11)
  p = p / jnp.sum(p, axis=1, keepdims=True)
  return -jnp.sum(p * jnp.log(p), axis=1) / jnp.log(base)


@jax.jit
def dci_from_importance(importance):
  """(disentanglement, completeness) of an importance matrix R [D, F].

  An all-zero R (collapsed codes) scores 0 and 0, as in disentanglement_lib,
  which then weights codes and factors uniformly (each row's and column's
  entropy is maximal), instead of dividing by a zero total."""
  d, f = importance.shape
  weights = jnp.where(jnp.sum(importance) > 0, importance, jnp.ones_like(importance))
  total = jnp.sum(weights)
  dis_per_code = 1.0 - _entropy_rows(importance, f) if f > 1 else jnp.ones((d,))
  code_w = jnp.sum(weights, axis=1) / total
  comp_per_factor = 1.0 - _entropy_rows(importance.T, d) if d > 1 else jnp.ones((f,))
  factor_w = jnp.sum(weights, axis=0) / total
  return jnp.sum(dis_per_code * code_w), jnp.sum(comp_per_factor * factor_w)


@functools.partial(jax.jit, static_argnames=("factor_sizes",))
def linear_importance(xtr, ytr, xte, yte, *, factor_sizes: tuple):
  """R [D, F] and train/test accuracies [F] of logistic-regression probes on
  standardised codes, one per factor (padded to the largest factor size)."""
  xtr, xte = utils.standardize(xtr, xte)
  kmax = max(factor_sizes)

  def one(y_tr, y_te, size):
    w, b = utils.fit_logistic_regression(xtr, y_tr, kmax)
    # Classes a factor does not have are absent from the labels; their
    # weights stay at the penalty's optimum, 0, and do not count.
    mask = jnp.arange(kmax) < size
    imp = jnp.sum(jnp.abs(w) * mask, axis=1) / size
    acc = lambda x, y: jnp.mean(jnp.argmax(jnp.where(mask, x @ w + b, -jnp.inf), 1) == y)
    return imp, acc(xtr, y_tr), acc(xte, y_te)

  imp, a_tr, a_te = jax.vmap(one, in_axes=(1, 1, 0))(
      ytr, yte, jnp.asarray(factor_sizes))
  return imp.T, a_tr, a_te


def _per_factor_trees(xtr, ytr, xte, yte, fit, threads: int | None = 1):
  """R [D, F] and train/test accuracies [F] of one tree classifier per factor:
  ``fit(x, y) -> (model, importance [D])``, fitted on ``threads`` threads
  (None: the CPUs this process may use), the costliest factor (most classes)
  first."""
  import concurrent.futures
  import os
  if threads is None:
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  xtr, ytr, xte, yte = (np.asarray(a) for a in (xtr, ytr, xte, yte))
  d, f = xtr.shape[1], ytr.shape[1]
  imp = np.zeros((d, f))
  tr, te = np.zeros(f), np.zeros(f)

  def one(k):          # each factor writes its own column and entries
    model, imp[:, k] = fit(xtr, ytr[:, k])
    tr[k] = np.mean(model.predict(xtr) == ytr[:, k])
    te[k] = np.mean(model.predict(xte) == yte[:, k])

  order = sorted(range(f), key=lambda k: -len(np.unique(ytr[:, k])))
  with concurrent.futures.ThreadPoolExecutor(max(1, min(int(threads or 1), f))) as pool:
    list(pool.map(one, order))              # list(): re-raises a fit's error
  return jnp.asarray(imp), tr, te


def gbt_importance(xtr, ytr, xte, yte, seed: int = 0, threads: int | None = None):
  """R [D, F] and accuracies from scikit-learn gradient-boosted trees, as
  disentanglement_lib's ``compute_importance_gbt``.

  The factors' classifiers are independent and scikit-learn builds trees
  without the GIL, so they are fitted on ``threads`` threads (default: the
  CPUs this process may use), the costliest (most classes) first; each
  classifier is the same as fitted alone."""
  from sklearn.ensemble import GradientBoostingClassifier

  def fit(x, y):
    model = GradientBoostingClassifier(random_state=seed).fit(x, y)
    return model, np.abs(model.feature_importances_)

  return _per_factor_trees(xtr, ytr, xte, yte, fit, threads)


def gbt_jax_importance(xtr, ytr, xte, yte, threads: int | None = None):
  """R [D, F] and accuracies from the reference's gradient-boosted trees
  grown in JAX (``vae.metrics.gbt.GradientBoostedTrees``), one factor per
  thread (default: the CPUs this process may use)."""
  from vae.metrics import gbt

  def fit(x, y):
    model = gbt.GradientBoostedTrees().fit(x, y)
    return model, np.abs(model.feature_importances_)

  return _per_factor_trees(xtr, ytr, xte, yte, fit, threads)


def hist_gbt_importance(xtr, ytr, xte, yte, seed: int = 0):
  """R [D, F] and accuracies from histogram gradient-boosted trees
  (scikit-learn's ``HistGradientBoostingClassifier``: the codes binned into
  255 levels, trees grown on histograms by all cores), set like the
  reference's trees: 100 rounds, learning rate 0.1, depth 3, no early
  stopping. The importance of latent d is the loss reduction ("gain") of
  every split on d, summed over all trees and normalised to sum to 1 per
  factor, as ``GradientBoostingClassifier.feature_importances_`` sums its
  impurity decreases. The two gains differ (second-order loss reduction here,
  the Friedman MSE of the residuals there), so R is close to the reference's,
  not equal: ``experiments/benchmark.py --dci_agreement`` measures how close.
  """
  from sklearn.ensemble import HistGradientBoostingClassifier

  def fit(x, y):
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_depth=3,
                                           max_leaf_nodes=None, early_stopping=False,
                                           random_state=seed).fit(x, y)
    gain = np.zeros(x.shape[1])
    # _predictors: one list of trees per round (one tree per class, or one
    # for two classes); scikit-learn keeps them under this name since 0.21.
    for round_trees in model._predictors:
      for tree in round_trees:
        split = tree.nodes[~tree.nodes["is_leaf"].astype(bool)]
        np.add.at(gain, split["feature_idx"].astype(int), np.maximum(split["gain"], 0.0))
    return model, gain / gain.sum() if gain.sum() > 0 else gain

  # One factor at a time: each fit already runs on every core (OpenMP).
  return _per_factor_trees(xtr, ytr, xte, yte, fit, threads=1)


def dci_from_codes(xtr, ytr, xte, yte, *, factor_sizes, importance: str = "gbt") -> dict:
  """DCI of given codes [N, D] and factors [N, F] (train and test)."""
  if importance not in IMPORTANCES:
    raise ValueError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
  if importance == "gbt":
    imp, a_tr, a_te = gbt_importance(xtr, ytr, xte, yte)
  elif importance == "gbt_jax":
    imp, a_tr, a_te = gbt_jax_importance(xtr, ytr, xte, yte)
  elif importance == "hist_gbt":
    imp, a_tr, a_te = hist_gbt_importance(xtr, ytr, xte, yte)
  else:
    imp, a_tr, a_te = linear_importance(jnp.asarray(xtr, jnp.float32), jnp.asarray(ytr),
                                        jnp.asarray(xte, jnp.float32), jnp.asarray(yte),
                                        factor_sizes=tuple(int(s) for s in factor_sizes))
  dis, comp = dci_from_importance(jnp.asarray(imp, jnp.float32))
  return utils.to_float_dict({"disentanglement": dis, "completeness": comp,
                              "informativeness_train": jnp.mean(jnp.asarray(a_tr)),
                              "informativeness_test": jnp.mean(jnp.asarray(a_te)),
                              "importance": imp})


def compute_dci(ground_truth, representation_fn, key, *, num_train: int = 10_000,
                num_test: int = 5_000, batch_size: int = 16,
                importance: str = "gbt") -> dict:
  """DCI (Eastwood & Williams 2018) of a representation.

  Args:
    ground_truth, representation_fn, key: as ``compute_beta_vae``.
    num_train, num_test: points for fitting the predictors and testing them.
    batch_size: encoding batch size.
    importance: "gbt" (reference protocol, scikit-learn on the CPU),
      "gbt_jax" (the reference's trees grown in JAX, a fraction of the time),
      "hist_gbt" (histogram GBT: close to the reference at a fraction of its
      time) or "linear" (logistic-regression probe in JAX).

  Returns:
    {"disentanglement", "completeness", "informativeness_train",
    "informativeness_test", "importance" ([D][F] list)}.
  """
  if importance not in IMPORTANCES:
    raise ValueError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
  xtr, ytr, xte, yte = utils.sample_train_test_codes(ground_truth, representation_fn, key,
                                                     num_train, num_test, batch_size)
  return dci_from_codes(xtr, ytr, xte, yte, factor_sizes=ground_truth.factor_sizes,
                        importance=importance)


METRIC = utils.Metric("dci", compute_dci, "disentanglement",
                      lambda s: int(s["num_train"]) + int(s["num_test"]))
