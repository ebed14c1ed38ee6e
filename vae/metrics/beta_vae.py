"""The BetaVAE disentanglement score (Higgins et al. 2017, Sec. 3 and App. A.4).

For each point: choose a factor k uniformly; draw ``batch_size`` pairs of
observations that share the value of factor k (all other factors random);
the point's feature is the mean over the batch of |z(x1) - z(x2)|, its label
k. A linear classifier (logistic regression, scikit-learn defaults as in
disentanglement_lib) predicts k; the score is its accuracy on held-out points.
Defaults: batch 64, 10,000 training and 5,000 evaluation points.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vae.data.ground_truth import observation_key
from vae.metrics import utils


def beta_vae_features(ground_truth, representation_fn, key, num_points: int,
                      batch_size: int):
  """(features [num_points, D], labels int [num_points]) under jit."""
  return _features(ground_truth, utils.as_representation(representation_fn), key,
                   int(num_points), int(batch_size))


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _features(ground_truth, representation_fn, key, num_points: int, batch_size: int):
  nf = ground_truth.num_factors

  def pair(k):
    k_idx, k1, k2 = jax.random.split(k, 3)
    idx = jax.random.randint(k_idx, (), 0, nf)
    f1 = ground_truth.sample_factors(k1, batch_size)
    f2 = ground_truth.sample_factors(k2, batch_size)
    f2 = f2.at[:, idx].set(f1[:, idx])
    return ground_truth.observations(jnp.concatenate([f1, f2]), observation_key(k)), idx

  def points(k):
    obs, idx = jax.vmap(pair)(k)
    z = utils.encode_groups(representation_fn, obs)          # [group, 2 batch, D]
    feats = jnp.mean(jnp.abs(z[:, :batch_size] - z[:, batch_size:]), axis=1)
    return feats, idx

  # Points in groups of about 2,048 observations per loop iteration: few
  # iterations, bounded memory.
  group = max(1, min(num_points, 2048 // (2 * batch_size)))
  n = -(-num_points // group) * group
  keys = jax.random.split(key, n).reshape(n // group, group)
  feats, labels = jax.lax.map(points, keys)
  return (feats.reshape(n, -1)[:num_points], labels.reshape(n)[:num_points])


@functools.partial(jax.jit, static_argnums=(4,))
def _fit_and_score(xtr, ytr, xte, yte, num_classes):
  params = utils.fit_logistic_regression(xtr, ytr, num_classes)
  acc = lambda x, y: jnp.mean(jnp.argmax(utils.predict_logistic(params, x), 1) == y)
  return acc(xtr, ytr), acc(xte, yte)


def beta_vae_from_features(xtr, ytr, xte, yte, num_factors: int) -> dict[str, float]:
  """The classifier stage of the BetaVAE score on given features/labels."""
  tr, te = _fit_and_score(jnp.asarray(xtr, jnp.float32), jnp.asarray(ytr),
                          jnp.asarray(xte, jnp.float32), jnp.asarray(yte), int(num_factors))
  return utils.to_float_dict({"train_accuracy": tr, "eval_accuracy": te})


def compute_beta_vae(ground_truth, representation_fn, key, *, num_train: int = 10_000,
                     num_eval: int = 5_000, batch_size: int = 64) -> dict[str, float]:
  """BetaVAE score (Higgins et al. 2017, App. A.4).

  Args:
    ground_truth: a ``vae.data.ground_truth.GroundTruthData``.
    representation_fn: jit-able observations [B, ...] -> codes [B, D].
    key: PRNG key.
    num_train, num_eval: points for the classifier's training and evaluation.
    batch_size: pairs averaged into one point (64 in the paper).

  Returns:
    {"train_accuracy", "eval_accuracy"}; the score is ``eval_accuracy``.
  """
  k_tr, k_te = jax.random.split(key)
  xtr, ytr = beta_vae_features(ground_truth, representation_fn, k_tr, int(num_train),
                               int(batch_size))
  xte, yte = beta_vae_features(ground_truth, representation_fn, k_te, int(num_eval),
                               int(batch_size))
  return beta_vae_from_features(xtr, ytr, xte, yte, ground_truth.num_factors)


def _images_encoded(s) -> int:
  return (int(s["num_train"]) + int(s["num_eval"])) * 2 * int(s["batch_size"])   # pairs


METRIC = utils.Metric("beta_vae", compute_beta_vae, "eval_accuracy", _images_encoded)
