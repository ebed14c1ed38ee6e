"""Data with known generative factors: one interface for procedural and stored sets.

A ground-truth data set has discrete factors ``f_0 .. f_{F-1}`` with
``factor_sizes[i]`` values each; every combination of factor indices names one
observation. Methods (all jit-able on the procedural sets):

* ``sample_factors(key, n) -> int32 [n, F]``: factor indices, uniform over
  combinations.
* ``observations(factors, key=None) -> float32 [n, *observation_shape]``; the
  key draws what varies but is not a factor (smallNORB's object instance,
  as disentanglement_lib does); sets where factors fix the image ignore it.
* ``sample(key, n) -> (images, factors)``.
* ``factors_to_index`` / ``index_to_factors``: mixed-radix index with the LAST
  factor varying fastest (the order of the public dSprites file).

References:
  Locatello et al. (2019), Challenging Common Assumptions in the Unsupervised
  Learning of Disentangled Representations (the ground-truth data interface of
  disentanglement_lib).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


class GroundTruthData:
  """Base class: subclasses set the attributes and implement ``observations``."""

  factor_names: tuple[str, ...] = ()
  factor_sizes: tuple[int, ...] = ()
  observation_shape: tuple[int, ...] = ()
  # {factor name: a name per value}, where the values have names (dSprites' shapes).
  value_names: dict = {}

  @property
  def num_factors(self) -> int:
    return len(self.factor_sizes)

  @property
  def num_combinations(self) -> int:
    return math.prod(self.factor_sizes)

  def _strides(self) -> np.ndarray:
    sizes = np.asarray(self.factor_sizes, np.int64)
    return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

  def factors_to_index(self, factors):
    """[..., F] factor indices -> [...] flat index (last factor fastest)."""
    strides = self._strides()
    if isinstance(factors, np.ndarray):
      return np.sum(factors.astype(np.int64) * strides, axis=-1)
    return jnp.sum(jnp.asarray(factors, jnp.int32) * jnp.asarray(strides, jnp.int32), axis=-1)

  def index_to_factors(self, index):
    """[...] flat index -> [..., F] factor indices."""
    strides, sizes = self._strides(), np.asarray(self.factor_sizes)
    if isinstance(index, np.ndarray) or np.isscalar(index):
      return (np.asarray(index, np.int64)[..., None] // strides) % sizes
    idx = jnp.asarray(index, jnp.int32)[..., None]
    return (idx // jnp.asarray(strides, jnp.int32)) % jnp.asarray(sizes, jnp.int32)

  def sample_factors(self, key: jax.Array, n: int) -> jax.Array:
    """Uniform factor indices: int32 [n, F]."""
    keys = jax.random.split(key, self.num_factors)
    return jnp.stack([jax.random.randint(k, (n,), 0, s)
                      for k, s in zip(keys, self.factor_sizes)], axis=-1).astype(jnp.int32)

  def observations(self, factors: jax.Array, key: jax.Array | None = None) -> jax.Array:
    raise NotImplementedError

  def sample(self, key: jax.Array, n: int):
    """(images float32 [n, *observation_shape], factors int32 [n, F])."""
    f = self.sample_factors(key, n)
    return self.observations(f, observation_key(key)), f

  def check_factors(self, factors) -> None:
    """Host-side check of a concrete factor array (shape and ranges)."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != self.num_factors:
      raise ValueError(f"factors must have shape [n, {self.num_factors}] "
                       f"({', '.join(self.factor_names)}), got {f.shape}")
    bad = (f < 0) | (f >= np.asarray(self.factor_sizes))
    if bad.any():
      i, j = np.argwhere(bad)[0]
      raise ValueError(f"factor {self.factor_names[j]} must be in [0, "
                       f"{self.factor_sizes[j]}), got {f[i, j]} (row {i})")


def observation_key(key: jax.Array) -> jax.Array:
  """The key for ``observations`` derived from the key that drew the factors
  (a fold-in, so the factor draws stay what they were without it)."""
  return jax.random.fold_in(key, 0x0B5)
