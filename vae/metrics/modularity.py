"""Modularity and explicitness (Ridgeway & Mozer 2018, Sec. 3).

* Modularity: with m[d, k] the mutual information between latent d
  (discretised into 20 equal-width bins) and factor k, and theta_d = max_k
  m[d, k], latent d's deviation from an ideal module is
  ``delta_d = sum_{k != argmax} m[d, k]^2 / (theta_d^2 (K - 1))`` and its
  modularity ``1 - delta_d`` (0 for a latent with no information); the score
  is the mean over latents.
* Explicitness: per factor, a logistic-regression classifier on the
  standardised code; the mean over the factor's classes of the one-vs-rest
  ROC AUC, averaged over factors (train and test).

Defaults (disentanglement_lib): 10,000 training and 5,000 test points.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vae.metrics import utils


@jax.jit
def modularity_from_mi(mi):
  """Mean modularity of the latents of a mutual-information matrix [D, F]."""
  sq = mi ** 2
  top = jnp.max(sq, axis=1)
  delta = (jnp.sum(sq, axis=1) - top) / jnp.where(top > 0, top * (mi.shape[1] - 1.0), 1.0)
  return jnp.mean(jnp.where(top > 0, 1.0 - delta, 0.0))


@functools.partial(jax.jit, static_argnames=("factor_sizes",))
def explicitness(xtr, ytr, xte, yte, *, factor_sizes: tuple):
  """(train, test) mean one-vs-rest AUC of logistic-regression probes."""
  xtr, xte = utils.standardize(xtr, xte)
  kmax = max(factor_sizes)

  def one(y_tr, y_te, size):
    params = utils.fit_logistic_regression(xtr, y_tr, kmax)
    mask = jnp.arange(kmax) < size
    def auc(x, y):
      logits = jnp.where(mask, x @ params[0] + params[1], -jnp.inf)
      p = jax.nn.softmax(logits)
      per_class = jax.vmap(lambda c: utils.roc_auc(p[:, c], y == c))(jnp.arange(kmax))
      # Classes absent from y have no AUC (as scikit-learn's binarizer drops them).
      present = (jnp.sum(jax.nn.one_hot(y, kmax), 0) > 0) & mask
      return jnp.sum(jnp.where(present, per_class, 0.0)) / jnp.sum(present)
    return auc(xtr, y_tr), auc(xte, y_te)

  tr, te = jax.vmap(one, in_axes=(1, 1, 0))(ytr, yte, jnp.asarray(factor_sizes))
  return jnp.mean(tr), jnp.mean(te)


def modularity_from_codes(xtr, ytr, xte, yte, *, factor_sizes, num_bins: int = 20) -> dict:
  """Modularity and explicitness of given codes [N, D] and factors [N, F]."""
  sizes = tuple(int(k) for k in factor_sizes)
  xtr, xte = jnp.asarray(xtr, jnp.float32), jnp.asarray(xte, jnp.float32)
  ytr, yte = jnp.asarray(ytr), jnp.asarray(yte)
  mi = utils.discrete_mutual_info(utils.histogram_discretize(xtr, num_bins), ytr,
                                  num_bins, sizes)
  e_tr, e_te = explicitness(xtr, ytr, xte, yte, factor_sizes=sizes)
  return utils.to_float_dict({"modularity": modularity_from_mi(mi),
                              "explicitness_train": e_tr, "explicitness_test": e_te})


def compute_modularity_explicitness(ground_truth, representation_fn, key, *,
                                    num_train: int = 10_000, num_test: int = 5_000,
                                    batch_size: int = 16, num_bins: int = 20) -> dict:
  """Modularity and explicitness (Ridgeway & Mozer 2018) of a representation.

  Returns:
    {"modularity", "explicitness_train", "explicitness_test"}.
  """
  xtr, ytr, xte, yte = utils.sample_train_test_codes(ground_truth, representation_fn, key,
                                                     num_train, num_test, batch_size)
  return modularity_from_codes(xtr, ytr, xte, yte, factor_sizes=ground_truth.factor_sizes,
                               num_bins=num_bins)


METRIC = utils.Metric("modularity", compute_modularity_explicitness, "modularity",
                      lambda s: int(s["num_train"]) + int(s["num_test"]))
