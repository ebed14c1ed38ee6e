"""Procedural dSprites, rendered from factors on the device with jax.numpy.

No download: every one of the 737,280 images of dSprites (Matthey et al. 2017)
is rendered on demand, inside jit, so training draws fresh factors each step
inside the scanned loop with no host I/O. Factors, values and index order follow
the public ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``:

| factor | size | values |
| --- | --- | --- |
| shape | 3 | square, ellipse, heart |
| scale | 6 | linspace(0.5, 1, 6) |
| orientation | 40 | linspace(0, 2 pi, 40) radians |
| posX | 32 | linspace(0, 1, 32) |
| posY | 32 | linspace(0, 1, 32) |

(the file's constant ``color`` factor is left out); posY varies fastest.

Geometry (64x64, binary, pixel (row r, col c) has its centre at (c + 0.5, r + 0.5)):
the sprite centre runs from pixel 15.5 (pos 0) to 47.5 (pos 1) along x (columns)
and y (rows, downwards); at scale 1 the square has side 20 px, the ellipse is
26 x 14 px with its major axis horizontal at orientation 0, and the heart is
20 x 17 px, lobes up and point down; sizes scale linearly with ``scale``, and
orientation rotates the sprite counter-clockwise on screen.

References:
  Matthey, Higgins, Hassabis & Lerchner (2017), dSprites: Disentanglement
  testing Sprites dataset. Higgins et al. (2017), beta-VAE, Sec. 4.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.ground_truth import GroundTruthData

SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)

# Heart: the implicit curve (X^2 + Y^2 - 1)^3 - X^2 Y^3 <= 0 spans
# X in [-1.1390, 1.1390], Y in [-1, 1.2360]; mapped to 20 x 17 px at scale 1
# with its bounding box centred on the sprite centre.
_HEART_HALF_W, _HEART_Y_LO, _HEART_Y_HI = 1.1390, -1.0, 1.2360
_CENTRE_LO, _CENTRE_RANGE = 15.5, 32.0


def render(shape, scale, orientation, pos_x, pos_y, size: int = 64) -> jax.Array:
  """Renders one sprite from continuous factor VALUES.

  Args:
    shape: int 0 (square), 1 (ellipse) or 2 (heart).
    scale: size multiplier (0.5 .. 1 in dSprites).
    orientation: angle in radians, counter-clockwise on screen.
    pos_x, pos_y: position in [0, 1] (y grows downwards).
    size: canvas side in pixels.

  Returns:
    float32 [size, size, 1] binary image.
  """
  coords = jnp.arange(size, dtype=jnp.float32) + 0.5
  cx = _CENTRE_LO + _CENTRE_RANGE * pos_x
  cy = _CENTRE_LO + _CENTRE_RANGE * pos_y
  dx = coords[None, :] - cx            # right
  dy = cy - coords[:, None]            # up (rows grow downwards)
  c, s = jnp.cos(orientation), jnp.sin(orientation)
  # Rotate the pixel offsets by -orientation into the sprite's frame.
  u = (c * dx + s * dy) / scale
  v = (-s * dx + c * dy) / scale
  # Strict inequalities: a pixel whose centre lies exactly on the outline is
  # outside, so a side of 20 px covers 20 pixels wherever the centre falls.
  square = (jnp.abs(u) < 10.0) & (jnp.abs(v) < 10.0)
  ellipse = (u / 13.0) ** 2 + (v / 7.0) ** 2 < 1.0
  hx = u * (_HEART_HALF_W / 10.0)
  hy = v * ((_HEART_Y_HI - _HEART_Y_LO) / 17.0) + 0.5 * (_HEART_Y_HI + _HEART_Y_LO)
  heart = (hx ** 2 + hy ** 2 - 1.0) ** 3 - hx ** 2 * hy ** 3 < 0.0
  img = jnp.select([shape == 0, shape == 1], [square, ellipse], heart)
  return img.astype(jnp.float32)[..., None]


class DSprites(GroundTruthData):
  """Procedural dSprites (see the module docstring); all methods jit-able."""

  factor_names = ("shape", "scale", "orientation", "posX", "posY")
  factor_sizes = (3, 6, 40, 32, 32)
  observation_shape = (64, 64, 1)

  def factor_values(self, factors: jax.Array):
    """int factor indices [..., 5] -> the five continuous values."""
    f = jnp.asarray(factors, jnp.int32)
    return (f[..., 0], jnp.asarray(SCALES, jnp.float32)[f[..., 1]],
            jnp.asarray(ORIENTATIONS, jnp.float32)[f[..., 2]],
            jnp.asarray(POSITIONS, jnp.float32)[f[..., 3]],
            jnp.asarray(POSITIONS, jnp.float32)[f[..., 4]])

  def observations(self, factors: jax.Array) -> jax.Array:
    """int32 [n, 5] factor indices -> float32 [n, 64, 64, 1] binary images."""
    return jax.vmap(lambda *v: render(*v))(*self.factor_values(factors))


def contact_sheet(path: str, num_scales: int = 3, num_orientations: int = 8) -> str:
  """PNG: one row per (shape, scale), one column per orientation, centred."""
  from vae import plots
  ds = DSprites()
  rows = []
  for shape in range(3):
    for sc in np.linspace(0, 5, num_scales).round().astype(int):
      for o in np.linspace(0, 39, num_orientations, endpoint=False).round().astype(int):
        rows.append([shape, sc, o, 16, 16])
  images = np.asarray(jax.jit(ds.observations)(jnp.asarray(rows, jnp.int32)))
  return plots.save_grid(path, images, num_cols=num_orientations,
                         title="procedural dSprites: rows shape x scale, columns orientation")
