"""Procedural gratings: binary stripe patterns with a known spatial frequency.

A small ground-truth set with factors that dSprites, Shapes3D and smallNORB
lack: the spatial frequency and the phase of a periodic pattern. Each 64x64
image is a square-wave grating, pixel (i, j) on where

    frac(f * ((x - 1/2) cos(theta) + (y - 1/2) sin(theta)) + phase) < 1/2,

with x = (j + 1/2) / 64 and y = (i + 1/2) / 64 the pixel centre in [0, 1].
Factors (last fastest): orientation theta (8 values in [0, pi)), frequency f
(2 to 7 cycles across the image), phase (8 values in [0, 1) of a cycle).
384 combinations, every one a different image; rendered on the device, so
it needs no download and is never streamed.

Gratings are the stimulus of choice for probing spatial-frequency and
orientation selectivity (Campbell & Robson 1968, Application of Fourier
analysis to the visibility of gratings); here they test whether a model
separates a periodic factor (phase, circular like dSprites' orientation) from
the frequency that sets its period.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vae.data import base
from vae.data.ground_truth import GroundTruthData

ORIENTATIONS = np.arange(8) * np.pi / 8          # radians, [0, pi)
FREQUENCIES = np.arange(2, 8, dtype=np.float64)  # cycles across the image
PHASES = np.arange(8) / 8                        # of a cycle
SIZE = 64


def render(orientation, frequency, phase, size: int = SIZE) -> jax.Array:
  """float32 [size, size, 1] binary grating (the module docstring's formula)."""
  c = (jnp.arange(size, dtype=jnp.float32) + 0.5) / size - 0.5
  y, x = jnp.meshgrid(c, c, indexing="ij")
  u = x * jnp.cos(orientation) + y * jnp.sin(orientation)
  t = u * frequency + phase
  return (t - jnp.floor(t) < 0.5).astype(jnp.float32)[..., None]


class Gratings(GroundTruthData):
  """Procedural gratings (see the module docstring); all methods jit-able."""

  factor_names = ("orientation", "frequency", "phase")
  factor_sizes = (len(ORIENTATIONS), len(FREQUENCIES), len(PHASES))
  observation_shape = (SIZE, SIZE, 1)

  def factor_values(self, factors: jax.Array):
    """int factor indices [..., 3] -> (theta, cycles, phase)."""
    f = jnp.asarray(factors, jnp.int32)
    return (jnp.asarray(ORIENTATIONS, jnp.float32)[f[..., 0]],
            jnp.asarray(FREQUENCIES, jnp.float32)[f[..., 1]],
            jnp.asarray(PHASES, jnp.float32)[f[..., 2]])

  def observations(self, factors: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """int32 [n, 3] factor indices -> float32 [n, 64, 64, 1] binary images
    (the factors fix the image: ``key`` is not used)."""
    return jax.vmap(render)(*self.factor_values(factors))


DATASETS = (base.procedural(
    "gratings", Gratings, "procedural square-wave gratings: orientation, spatial frequency, "
    "phase (vae/data/gratings.py)", Gratings.observation_shape),)
