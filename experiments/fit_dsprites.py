"""Measures the procedural dSprites geometry from real dSprites images.

The renderer in ``vae/data/dsprites.py`` turns a pixel on iff its centre lies
strictly inside the sprite. This script fits every geometry value of that
renderer to the real images of ``../shared/data/dsprites_reference/grid.npz``
(46,080 images of the public file: every shape and scale, every 4th
orientation, every 2nd position) and prints the fitted values and the
agreement with the real images:

1. The centre map ``c = lo + range * pos`` (the same for x and y) and the
   square's half side, from all 15,360 squares, rotations included.
2. The ellipse's semi-axes, from all 15,360 ellipses, with that centre map.
3. The heart: the classic parametric heart ``x = 16 sin^3 t``, ``y = 13 cos t
   - 5 cos 2t - 2 cos 3t - cos 4t``, scaled by ``(a, b)`` and shifted up by
   ``dy``, from all 15,360 hearts.

Each fit minimises a smoothed count of misclassified pixels: for the pixels
within 2 px (square) or 3 px (ellipse, heart) of the starting outline,
``softplus(-m / T) T`` summed, where ``m`` is the pixel's signed distance to
the outline (positive on the correct side, in pixels, first order), with
Nelder-Mead at T = 0.05 then 0.01 pixel. The centre and the square start
from the geometry used before the fit (centre 15.5 + 32 pos, side 20), the
ellipse from 26 x 14 px, and the heart curve from a round guess (width 20 px,
height 17 px, no shift), so what it prints is measured, not assumed.

  python -m experiments.fit_dsprites [--reference PATH]      # the fit, ~6 min
  python -m experiments.fit_dsprites --nofit --figure docs/dsprites_real_vs_procedural.png

``--figure`` draws real | procedural (the library's renderer) | overlay for
the three shapes at several scales and orientations.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from scipy.optimize import minimize

from vae.data.dsprites import ORIENTATIONS, SCALES

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                         "data", "dsprites_reference", "grid.npz")


def sprite_frame(classes, rows, cols, lo, rng):
  """Pixel centres (row, col) of images with the given classes, in the
  sprite's frame (u right, v up, pixels at scale 1), and the scale; all
  arrays broadcast together."""
  scale = SCALES[classes[..., 1]]
  theta = ORIENTATIONS[classes[..., 2]]
  dx = cols + 0.5 - (lo + rng * classes[..., 3] / 31.0)
  dy = (lo + rng * classes[..., 4] / 31.0) - (rows + 0.5)
  c, s = np.cos(theta), np.sin(theta)
  return (c * dx + s * dy) / scale, (c * dy - s * dx) / scale, scale


def near_outline(classes, images, margin, lo, rng, width=2.0):
  """The pixels within ``width`` px of an initial outline: (classes [P, 5],
  rows [P], cols [P], inside [P])."""
  rows, cols = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
  u, v, s = sprite_frame(classes[:, None, None, :], rows, cols, lo, rng)
  n, r, c = np.nonzero(np.abs(margin(u, v) * s) < width)
  return classes[n], r, c, images[n, r, c]


def square_margin(u, v, half):
  return half - np.maximum(np.abs(u), np.abs(v))


def ellipse_margin(u, v, a, b):
  q = (u / a) ** 2 + (v / b) ** 2
  grad = np.sqrt((2 * u / a ** 2) ** 2 + (2 * v / b ** 2) ** 2) + 1e-9
  return (1.0 - q) / grad


def heart_ordinate(c):
  return 13 * c - 5 * (2 * c * c - 1) - 2 * (4 * c ** 3 - 3 * c) - (8 * c ** 4 - 8 * c * c + 1)


def heart_margin(u, v, a, b, dy):
  """Smallest of the three constraints' margins (first order in pixels)."""
  half_w = 16.0 * a
  s = np.cbrt(np.minimum(np.abs(u) / half_w, 1.0))
  c = np.sqrt(1.0 - s * s)
  return np.minimum.reduce([half_w - np.abs(u), v - (b * heart_ordinate(-c) + dy),
                            (b * heart_ordinate(c) + dy) - v])


def fit(margin, p0, inside, scale, label):
  """Nelder-Mead on the smoothed misclassification count; returns params."""
  sign = np.where(inside, 1.0, -1.0)
  p = np.asarray(p0, np.float64)
  count = lambda p: int(np.sum((margin(p) > 0) != inside))
  print(f"{label}: start {np.round(p, 5)}, {count(p)} misclassified pixels")
  for temp in (0.05, 0.01):
    loss = lambda p: np.sum(np.logaddexp(0.0, -margin(p) * scale * sign / temp)) * temp
    p = minimize(loss, p, method="Nelder-Mead",
                 options={"xatol": 1e-6, "fatol": 1e-6, "maxiter": 600}).x
    print(f"{label}: T={temp}: {np.round(p, 5)}, {count(p)} misclassified pixels")
  return p


def comparison_figure(path, images, classes, scales=(0, 2, 5), orientations=(0, 4, 12, 24, 36)):
  """PNG: for each shape and scale, a row of (real | procedural | overlay)
  triples, one per orientation, at a mid-canvas position (central 44 x 44 px). Overlay: white where
  both are on, red where only the real image is, blue where only ours is."""
  import jax
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from vae.data.dsprites import SHAPES, DSprites
  index = {tuple(c): i for i, c in enumerate(classes.tolist())}
  want = [(sh, sc, o, 16, 14) for sh in range(3) for sc in scales for o in orientations]
  real = images[[index[w] for w in want]]
  ours = np.asarray(jax.jit(DSprites().observations)(np.asarray(want, np.int32)))[..., 0] > 0.5
  tiles = []
  for a, b in zip(real[:, 10:54, 10:54], ours[:, 10:54, 10:54]):   # the central 44 x 44 px
    rgb_real = np.repeat(a[..., None], 3, -1).astype(np.float32)
    rgb_ours = np.repeat(b[..., None], 3, -1).astype(np.float32)
    overlay = np.stack([a, a & b, b & ~a | (a & b)], -1).astype(np.float32)
    sep = np.full((a.shape[0], 2, 3), 0.5, np.float32)
    tiles.append(np.concatenate([rgb_real, sep, rgb_ours, sep, overlay], 1))
  cols = len(orientations)
  rows = [np.concatenate([np.pad(t, ((2, 2), (4, 4), (0, 0)), constant_values=1.0)
                          for t in tiles[i:i + cols]], 1) for i in range(0, len(tiles), cols)]
  grid = np.concatenate(rows, 0)
  fig = plt.figure(figsize=(grid.shape[1] / 40, grid.shape[0] / 40 + 0.6))
  ax = fig.add_axes([0.07, 0, 0.93, 0.93])
  ax.imshow(grid, interpolation="nearest")
  ax.set_xticks([(i + 0.5) * grid.shape[1] / cols for i in range(cols)])
  ax.set_xticklabels([f"orientation {o}" for o in orientations], fontsize=7)
  ax.xaxis.tick_top()
  ax.set_yticks([(i + 0.5) * grid.shape[0] / len(rows) for i in range(len(rows))])
  ax.set_yticklabels([f"{SHAPES[sh]}\nscale {SCALES[sc]:.1f}" for sh in range(3) for sc in scales],
                     fontsize=7)
  fig.suptitle("dSprites: real | procedural | overlay (white both, red real only, blue ours only)",
               fontsize=9)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--reference", default=REFERENCE)
  parser.add_argument("--figure", default="", help="write the comparison figure here")
  parser.add_argument("--nofit", action="store_true", help="skip the fit")
  args = parser.parse_args()
  ref = np.load(args.reference)
  images, classes = ref["images"].astype(bool), ref["classes"].astype(np.int64)
  if args.figure:
    print("wrote", comparison_figure(args.figure, images, classes))
  if args.nofit:
    return

  cls, r, c, inside = near_outline(classes[classes[:, 0] == 0], images[classes[:, 0] == 0],
                                   lambda u, v: square_margin(u, v, 10.0), 15.5, 32.0)
  scale = SCALES[cls[:, 1]]

  def centre_and_square(p):
    u, v, _ = sprite_frame(cls, r, c, p[0], p[1])
    return square_margin(u, v, p[2])
  lo, rng, half = fit(centre_and_square, (15.5, 32.0, 10.0), inside, scale, "square")

  results = {"centre_lo": lo, "centre_range": rng, "square_half": half}
  for shape, name, p0, margin_fn in (
      (1, "ellipse", (13.0, 7.0), ellipse_margin),
      (2, "heart", (10.0 / 16.0, 17.0 / 28.9, 1.0), heart_margin)):
    m = classes[:, 0] == shape
    cls, r, c, inside = near_outline(classes[m], images[m], lambda u, v: margin_fn(u, v, *p0),
                                     lo, rng, width=3.0)
    u, v, scale = sprite_frame(cls, r, c, lo, rng)
    results[name] = fit(lambda p: margin_fn(u, v, *p), p0, inside, scale, name)
  print("\nfitted geometry (pixels of the 64x64 canvas, sizes at scale 1):")
  for k, val in results.items():
    print(f"  {k}: {np.round(val, 5)}")


if __name__ == "__main__":
  main()
