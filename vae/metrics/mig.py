"""Mutual Information Gap (Chen et al. 2018, Sec. 5, Eq. 7).

``MIG = 1/K sum_k (I(z_{j(k)}; v_k) - max_{j != j(k)} I(z_j; v_k)) / H(v_k)``
with j(k) the latent of highest mutual information with factor k. As in
disentanglement_lib, the mutual information is the plug-in estimate between
factors and latents discretised into ``num_bins`` equal-width histogram bins,
on ``num_train`` points (defaults: 20 bins, 10,000 points).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vae.metrics import utils


@functools.partial(jax.jit, static_argnames=("num_bins", "factor_sizes"))
def mig_from_codes(codes, factors, *, num_bins: int = 20, factor_sizes: tuple):
  """MIG of codes [N, D] against discrete factors [N, F].

  Returns:
    (mig scalar, per-factor gaps [F], mutual information [D, F], entropies [F]).
  """
  disc = utils.histogram_discretize(codes, num_bins)
  mi = utils.discrete_mutual_info(disc, factors, num_bins, factor_sizes)
  h = utils.discrete_entropy(factors, factor_sizes)
  top = jnp.sort(mi, axis=0)[::-1]
  second = top[1] if mi.shape[0] > 1 else jnp.zeros_like(top[0])
  gaps = jnp.where(h > 0, (top[0] - second) / jnp.where(h > 0, h, 1.0), 0.0)
  return jnp.mean(gaps), gaps, mi, h


def mig_scores(codes, factors, *, factor_sizes, num_bins: int = 20) -> dict:
  """{"mig", "mig_per_factor" [F], "mutual_info" [D][F] (nats), "factor_entropy" [F]}
  of given codes [N, D] and factors [N, F]."""
  mig, gaps, mi, h = mig_from_codes(jnp.asarray(codes, jnp.float32), jnp.asarray(factors),
                                   num_bins=int(num_bins),
                                   factor_sizes=tuple(int(k) for k in factor_sizes))
  return utils.to_float_dict({"mig": mig, "mig_per_factor": gaps, "mutual_info": mi,
                              "factor_entropy": h})


def compute_mig(ground_truth, representation_fn, key, *, num_train: int = 10_000,
                batch_size: int = 16, num_bins: int = 20) -> dict:
  """MIG (Chen et al. 2018, Eq. 7) of a representation.

  Args:
    ground_truth, representation_fn, key: as ``compute_beta_vae``.
    num_train: points sampled.
    batch_size: encoding batch size.
    num_bins: histogram bins per latent.

  Returns:
    {"mig", "mig_per_factor" (list of F), "mutual_info" ([D][F] nats: which
    latent informs which factor), "factor_entropy" (list of F)}.
  """
  codes, factors = utils.sample_codes(ground_truth, representation_fn, key,
                                      int(num_train), int(batch_size))
  return mig_scores(codes, factors, factor_sizes=ground_truth.factor_sizes, num_bins=num_bins)


def latent_factors(score: dict, factor_names) -> list[tuple[str, float]]:
  """For each latent, the factor it informs most and how much: the argmax
  over factors k of I(z_j; v_k) / H(v_k), the normalised mutual information
  whose gaps MIG averages (Chen et al. 2018, Eq. 7), read from a MIG result
  (``mutual_info`` [D][F], ``factor_entropy`` [F]). Returns [(factor name,
  normalised MI)] per latent: what a traversal row of that latent moves."""
  mi = np.asarray(score["mutual_info"], np.float64)
  h = np.asarray(score["factor_entropy"], np.float64)
  if mi.ndim != 2 or mi.shape[1] != len(h) or len(h) != len(factor_names):
    raise ValueError(f"latent_factors: expected mutual_info [D, F] and factor_entropy [F] "
                     f"with F = {len(factor_names)} factor names, got {mi.shape} and "
                     f"{h.shape}")
  nmi = mi / np.where(h > 0, h, 1.0)
  best = np.argmax(nmi, axis=1)
  return [(str(factor_names[k]), float(nmi[d, k])) for d, k in enumerate(best)]


METRIC = utils.Metric("mig", compute_mig, "mig",
                      lambda s: int(s["num_train"]))
