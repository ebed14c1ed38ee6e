"""Separated Attribute Predictability (Kumar, Sattigeri & Balakrishnan 2018,
Sec. 5).

For every latent d and factor k, a linear SVM (C = 0.01, balanced class
weights; scikit-learn's ``LinearSVC``, as disentanglement_lib) predicts k
from z_d alone; S[d, k] is its accuracy on held-out points. SAP is the mean
over factors of the gap between the two most predictive latents. Defaults:
10,000 training and 5,000 test points. All D x F SVMs are fitted at once on
the device (vae.metrics.utils.fit_linear_svm_1d).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vae.metrics import utils


@functools.partial(jax.jit, static_argnames=("factor_sizes", "C"))
def sap_score_matrix(xtr, ytr, xte, yte, *, factor_sizes: tuple, C: float = 0.01):
  """S [D, F]: test accuracy of the SVM of factor k on latent d."""
  def one(x_tr, x_te, y_tr, y_te, k_size):
    cw = utils.balanced_class_weight(y_tr, k_size)
    w, b = utils.fit_linear_svm_1d(x_tr, y_tr, k_size, C, cw)
    return jnp.mean(jnp.argmax(x_te[:, None] * w + b, axis=1) == y_te)

  cols = []
  for k, size in enumerate(factor_sizes):
    # Each factor's class count is static (two classes make one problem).
    cols.append(jax.vmap(lambda xa, xb, k=k, size=size: one(
        xa, xb, ytr[:, k], yte[:, k], size), in_axes=(1, 1))(xtr, xte))
  return jnp.stack(cols, axis=1)


def sap_from_codes(xtr, ytr, xte, yte, *, factor_sizes, C: float = 0.01) -> dict:
  """SAP of given codes [N, D] and factors [N, F] (train and test)."""
  s = sap_score_matrix(jnp.asarray(xtr, jnp.float32), jnp.asarray(ytr),
                       jnp.asarray(xte, jnp.float32), jnp.asarray(yte),
                       factor_sizes=tuple(int(k) for k in factor_sizes), C=float(C))
  top = jnp.sort(s, axis=0)[::-1]
  gap = jnp.mean(top[0] - top[1]) if s.shape[0] > 1 else jnp.mean(top[0])
  return utils.to_float_dict({"sap": gap, "score_matrix": s})


def compute_sap(ground_truth, representation_fn, key, *, num_train: int = 10_000,
                num_test: int = 5_000, batch_size: int = 16, C: float = 0.01) -> dict:
  """SAP (Kumar et al. 2018) of a representation.

  Returns:
    {"sap", "score_matrix" ([D][F] list of accuracies)}.
  """
  xtr, ytr, xte, yte = utils.sample_train_test_codes(ground_truth, representation_fn, key,
                                                     num_train, num_test, batch_size)
  return sap_from_codes(xtr, ytr, xte, yte, factor_sizes=ground_truth.factor_sizes, C=C)


METRIC = utils.Metric("sap", compute_sap, "sap",
                      lambda s: int(s["num_train"]) + int(s["num_test"]))
