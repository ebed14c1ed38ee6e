"""The FactorVAE disentanglement score (Kim & Mnih 2018, Sec. 4).

The variance of each latent over ``num_variance_estimate`` random points
normalises the code; dimensions whose standard deviation is below
``prune_threshold`` (collapsed to the prior) are pruned. For each point: choose
a factor k, draw ``batch_size`` observations with factor k fixed at one
value; the vote is (argmin over active dimensions of the normalised variance
within the batch, k). A majority-vote classifier maps each dimension to the
factor it most often votes for; the score is its accuracy on held-out votes.
Defaults: 10,000 points for the variances, batch 64, 10,000 training and
5,000 evaluation votes.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from vae.data.ground_truth import observation_key
from vae.metrics import utils


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _votes(ground_truth, representation_fn, key, num_points, batch_size, global_var, active):
  nf = ground_truth.num_factors
  d = global_var.shape[0]

  def batch(k):
    k_idx, k_f = jax.random.split(k)
    idx = jax.random.randint(k_idx, (), 0, nf)
    f = ground_truth.sample_factors(k_f, batch_size)
    f = f.at[:, idx].set(f[0, idx])
    return ground_truth.observations(f, observation_key(k)), idx

  def votes(k):
    obs, idx = jax.vmap(batch)(k)
    z = utils.encode_groups(representation_fn, obs)          # [group, batch, D]
    local = jnp.var(z, axis=1, ddof=1) / global_var
    dims = jnp.argmin(jnp.where(active, local, jnp.inf), axis=1)
    return dims, idx

  group = max(1, min(num_points, 2048 // batch_size))
  n = -(-num_points // group) * group
  keys = jax.random.split(key, n).reshape(n // group, group)
  dims, factors = jax.lax.map(votes, keys)
  dims, factors = dims.reshape(n)[:num_points], factors.reshape(n)[:num_points]
  return jax.nn.one_hot(dims, d).T @ jax.nn.one_hot(factors, nf)    # [D, F]


def compute_factor_vae(ground_truth, representation_fn, key, *, num_train: int = 10_000,
                       num_eval: int = 5_000, num_variance_estimate: int = 10_000,
                       batch_size: int = 64, prune_threshold: float = 0.05
                       ) -> dict[str, float]:
  """FactorVAE score (Kim & Mnih 2018, Sec. 4).

  Args:
    ground_truth, representation_fn, key: as ``compute_beta_vae``.
    num_train, num_eval: votes for the classifier's training and evaluation.
    num_variance_estimate: points for the global variances.
    batch_size: observations per vote (64).
    prune_threshold: dimensions with a global std below this are ignored.

  Returns:
    {"train_accuracy", "eval_accuracy", "num_active_dims"}; the score is
    ``eval_accuracy`` (0 if no dimension is active).
  """
  representation_fn = utils.as_representation(representation_fn)
  k_var, k_tr, k_te = jax.random.split(key, 3)
  codes, _ = utils.sample_codes(ground_truth, representation_fn, k_var,
                                int(num_variance_estimate), int(batch_size))
  global_var = jnp.var(codes, axis=0, ddof=1)
  active = jnp.sqrt(global_var) >= prune_threshold
  if not bool(jnp.any(active)):
    return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
  safe_var = jnp.where(active, global_var, 1.0)
  vtr = _votes(ground_truth, representation_fn, k_tr, int(num_train), int(batch_size),
               safe_var, active)
  vte = _votes(ground_truth, representation_fn, k_te, int(num_eval), int(batch_size),
               safe_var, active)
  classifier = jnp.argmax(vtr, axis=1)                       # factor per dimension
  train_acc = jnp.sum(jnp.max(vtr, axis=1)) / jnp.sum(vtr)
  eval_acc = jnp.sum(jnp.take_along_axis(vte, classifier[:, None], 1)) / jnp.sum(vte)
  return utils.to_float_dict({"train_accuracy": train_acc, "eval_accuracy": eval_acc,
                              "num_active_dims": jnp.sum(active)})


def _images_encoded(s) -> int:
  return int(s["num_variance_estimate"]) + (int(s["num_train"]) + int(s["num_eval"])) * int(
      s["batch_size"])


METRIC = utils.Metric("factor_vae", compute_factor_vae, "eval_accuracy", _images_encoded)
