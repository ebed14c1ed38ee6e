"""Straightforward numpy + scikit-learn versions of the six metrics.

Written the way disentanglement_lib computes them (Locatello et al. 2019):
a Python loop that samples factors with a numpy RNG and calls the
representation function one batch at a time, numpy for the statistics, and
scikit-learn for the classifiers and the mutual information. They are the
yardstick of ``vae.metrics``: the agreement tests compare each JAX metric
with its reference on the same codes, and ``experiments/benchmark.py
--metrics`` times both in one run. Not meant for use; slow by design of the
protocol, not by handicap.
"""

from __future__ import annotations

import jax
import numpy as np


def _rep(representation_fn, obs):
  return np.asarray(representation_fn(obs), np.float64)


def _sample_factors(ground_truth, rng, n):
  return np.stack([rng.integers(0, s, n) for s in ground_truth.factor_sizes], 1)


def _observe(ground_truth, factors, rng):
  # A key only for sets where the factors do not fix the image (smallNORB's
  # instance), so the others draw the same numbers as before keys existed.
  if getattr(ground_truth, "max_examples_per_combination", 1) > 1:
    return np.asarray(ground_truth.observations(factors, jax.random.key(int(rng.integers(2**31)))))
  return np.asarray(ground_truth.observations(factors))


def generate_codes(ground_truth, representation_fn, num_points, rng, batch_size=16):
  """(codes [N, D], factors [N, F]) by a loop over batches."""
  codes, factors = [], []
  i = 0
  while i < num_points:
    n = min(batch_size, num_points - i)
    f = _sample_factors(ground_truth, rng, n)
    codes.append(_rep(representation_fn, _observe(ground_truth, f, rng)))
    factors.append(f)
    i += n
  return np.concatenate(codes), np.concatenate(factors)


# --------------------------------------------------------------------- BetaVAE
def beta_vae_features(ground_truth, representation_fn, num_points, rng, batch_size=64):
  feats, labels = [], []
  for _ in range(num_points):
    k = rng.integers(ground_truth.num_factors)
    f1 = _sample_factors(ground_truth, rng, batch_size)
    f2 = _sample_factors(ground_truth, rng, batch_size)
    f2[:, k] = f1[:, k]
    z1 = _rep(representation_fn, _observe(ground_truth, f1, rng))
    z2 = _rep(representation_fn, _observe(ground_truth, f2, rng))
    feats.append(np.mean(np.abs(z1 - z2), axis=0))
    labels.append(k)
  return np.array(feats), np.array(labels)


def beta_vae_from_features(xtr, ytr, xte, yte):
  from sklearn.linear_model import LogisticRegression
  clf = LogisticRegression().fit(xtr, ytr)
  return {"train_accuracy": float(np.mean(clf.predict(xtr) == ytr)),
          "eval_accuracy": float(np.mean(clf.predict(xte) == yte))}


def beta_vae(ground_truth, representation_fn, rng, num_train=10_000, num_eval=5_000,
             batch_size=64):
  xtr, ytr = beta_vae_features(ground_truth, representation_fn, num_train, rng, batch_size)
  xte, yte = beta_vae_features(ground_truth, representation_fn, num_eval, rng, batch_size)
  return beta_vae_from_features(xtr, ytr, xte, yte)


# ------------------------------------------------------------------- FactorVAE
def factor_vae_votes(ground_truth, representation_fn, num_points, rng, global_var, active,
                     batch_size=64):
  votes = np.zeros((global_var.shape[0], ground_truth.num_factors), np.int64)
  for _ in range(num_points):
    k = rng.integers(ground_truth.num_factors)
    f = _sample_factors(ground_truth, rng, batch_size)
    f[:, k] = f[0, k]
    z = _rep(representation_fn, _observe(ground_truth, f, rng))
    local = np.var(z, axis=0, ddof=1)
    d = np.flatnonzero(active)[np.argmin(local[active] / global_var[active])]
    votes[d, k] += 1
  return votes


def factor_vae(ground_truth, representation_fn, rng, num_train=10_000, num_eval=5_000,
               num_variance_estimate=10_000, batch_size=64, prune_threshold=0.05):
  codes, _ = generate_codes(ground_truth, representation_fn, num_variance_estimate, rng,
                            batch_size)
  global_var = np.var(codes, axis=0, ddof=1)
  active = np.sqrt(global_var) >= prune_threshold
  if not active.any():
    return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
  vtr = factor_vae_votes(ground_truth, representation_fn, num_train, rng, global_var, active,
                         batch_size)
  vte = factor_vae_votes(ground_truth, representation_fn, num_eval, rng, global_var, active,
                         batch_size)
  classifier = np.argmax(vtr, axis=1)
  other = np.arange(vtr.shape[0])
  return {"train_accuracy": float(np.sum(vtr[other, classifier]) / np.sum(vtr)),
          "eval_accuracy": float(np.sum(vte[other, classifier]) / np.sum(vte)),
          "num_active_dims": int(active.sum())}


# ------------------------------------------------------------------------- MIG
def histogram_discretize(codes, num_bins=20):
  out = np.zeros(codes.shape, np.int64)
  for d in range(codes.shape[1]):
    edges = np.histogram(codes[:, d], num_bins)[1][:-1]
    out[:, d] = np.digitize(codes[:, d], edges)
  return out


def discrete_mutual_info(disc, factors):
  from sklearn.metrics import mutual_info_score
  return np.array([[mutual_info_score(factors[:, k], disc[:, d])
                    for k in range(factors.shape[1])] for d in range(disc.shape[1])])


def discrete_entropy(factors):
  from sklearn.metrics import mutual_info_score
  return np.array([mutual_info_score(factors[:, k], factors[:, k])
                   for k in range(factors.shape[1])])


def mig_from_codes(codes, factors, num_bins=20):
  mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
  h = discrete_entropy(factors)
  top = np.sort(mi, axis=0)[::-1]
  return {"mig": float(np.mean((top[0] - top[1]) / h))}


def mig(ground_truth, representation_fn, rng, num_train=10_000, batch_size=16):
  codes, factors = generate_codes(ground_truth, representation_fn, num_train, rng, batch_size)
  return mig_from_codes(codes, factors)


# ------------------------------------------------------------------------- DCI
def _dci_scores(imp):
  from scipy.stats import entropy
  d, f = imp.shape
  dis = 1.0 - entropy(imp.T + 1e-11, base=f)
  comp = 1.0 - entropy(imp + 1e-11, base=d)
  return (float(np.sum(dis * imp.sum(1) / imp.sum())),
          float(np.sum(comp * imp.sum(0) / imp.sum())))


def dci_from_codes(xtr, ytr, xte, yte, importance="gbt"):
  from sklearn.ensemble import GradientBoostingClassifier
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  d, f = xtr.shape[1], ytr.shape[1]
  imp, tr, te = np.zeros((d, f)), np.zeros(f), np.zeros(f)
  if importance == "linear":
    sc = StandardScaler().fit(xtr)
    xtr, xte = sc.transform(xtr), sc.transform(xte)
  for k in range(f):
    if importance == "gbt":
      m = GradientBoostingClassifier(random_state=0).fit(xtr, ytr[:, k])
      imp[:, k] = np.abs(m.feature_importances_)
    else:
      m = LogisticRegression().fit(xtr, ytr[:, k])
      imp[:, k] = np.abs(m.coef_).mean(axis=0) if m.coef_.shape[0] > 1 else np.abs(m.coef_[0])
    tr[k] = np.mean(m.predict(xtr) == ytr[:, k])
    te[k] = np.mean(m.predict(xte) == yte[:, k])
  dis, comp = _dci_scores(imp)
  return {"disentanglement": dis, "completeness": comp,
          "informativeness_train": float(tr.mean()), "informativeness_test": float(te.mean())}


# ------------------------------------------------------------------------- SAP
def sap_from_codes(xtr, ytr, xte, yte, C=0.01):
  from sklearn.svm import LinearSVC
  d, f = xtr.shape[1], ytr.shape[1]
  s = np.zeros((d, f))
  for i in range(d):
    for k in range(f):
      clf = LinearSVC(C=C, class_weight="balanced").fit(xtr[:, i:i + 1], ytr[:, k])
      s[i, k] = np.mean(clf.predict(xte[:, i:i + 1]) == yte[:, k])
  top = np.sort(s, axis=0)
  return {"sap": float(np.mean(top[-1] - top[-2])), "score_matrix": s}


def sap(ground_truth, representation_fn, rng, num_train=10_000, num_test=5_000,
        batch_size=16):
  xtr, ytr = generate_codes(ground_truth, representation_fn, num_train, rng, batch_size)
  xte, yte = generate_codes(ground_truth, representation_fn, num_test, rng, batch_size)
  return sap_from_codes(xtr, ytr, xte, yte)


# ------------------------------------------------------------------ modularity
def modularity_from_codes(xtr, ytr, xte, yte, num_bins=20):
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import roc_auc_score
  from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler
  mi = discrete_mutual_info(histogram_discretize(xtr, num_bins), ytr)
  sq = mi ** 2
  top = sq.max(1)
  mod = 1.0 - (sq.sum(1) - top) / (top * (sq.shape[1] - 1.0))
  mod[top == 0] = 0.0
  sc = StandardScaler().fit(xtr)
  xtr, xte = sc.transform(xtr), sc.transform(xte)
  tr, te = [], []
  for k in range(ytr.shape[1]):
    clf = LogisticRegression().fit(xtr, ytr[:, k])
    mlb = MultiLabelBinarizer(classes=clf.classes_)
    tr.append(roc_auc_score(mlb.fit_transform(ytr[:, k:k + 1]), clf.predict_proba(xtr)))
    te.append(roc_auc_score(mlb.fit_transform(yte[:, k:k + 1]), clf.predict_proba(xte)))
  return {"modularity": float(np.mean(mod)), "explicitness_train": float(np.mean(tr)),
          "explicitness_test": float(np.mean(te))}
