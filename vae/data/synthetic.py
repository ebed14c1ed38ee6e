"""A ground-truth data set whose observation IS its factor vector.

For checking disentanglement metrics against known answers: a representation
function of these observations can be the factors themselves (a perfect
code), a permuted and rescaled copy, a rotation that entangles two factors,
a duplicate, or noise. The default sizes are those of dSprites (737,280
combinations), so samples rarely repeat a combination.
"""

from __future__ import annotations

import jax.numpy as jnp

from vae.data.ground_truth import GroundTruthData


class FactorVectors(GroundTruthData):
  """Observations: the factor indices scaled to [0, 1], float32 [F]."""

  def __init__(self, factor_sizes=(3, 6, 40, 32, 32)):
    if not factor_sizes or any(int(s) < 2 for s in factor_sizes):
      raise ValueError(f"factor_sizes must be integers >= 2, got {factor_sizes}")
    self.factor_sizes = tuple(int(s) for s in factor_sizes)
    self.factor_names = tuple(f"f{i}" for i in range(len(self.factor_sizes)))
    self.observation_shape = (len(self.factor_sizes),)

  def observations(self, factors, key=None):
    sizes = jnp.asarray(self.factor_sizes, jnp.float32)
    return jnp.asarray(factors, jnp.float32) / (sizes - 1.0)
