"""Figures: reconstructions, samples from the prior, latent traversals (PNG)
and animated traversals (GIF).

Images are the means of p(x|z) (sigmoid of the logits for Bernoulli). Uses
matplotlib's Agg backend, so it runs with no display.
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from vae import conditioning as cond_lib
from vae import model as model_lib


def image_grid(images: np.ndarray, num_cols: int | None = None,
               pad: int = 1) -> np.ndarray:
  """Tiles [N, H, W, C] images into one [rows*(H+pad), cols*(W+pad), C] array."""
  images = np.asarray(images, np.float32)
  if images.ndim == 3:
    images = images[..., None]
  n, h, w, c = images.shape
  cols = num_cols or int(math.ceil(math.sqrt(n)))
  rows = int(math.ceil(n / cols))
  grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
  for i in range(n):
    r, q = divmod(i, cols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
  return grid


def save_grid(path: str, images: np.ndarray, num_cols: int | None = None,
              title: str | None = None, row_labels=None, col_labels=None,
              row_title: str | None = None, col_title: str | None = None) -> str:
  """Writes an image grid as PNG; returns the path.

  ``row_labels`` / ``col_labels``: one string per row / column of the grid,
  written beside it (left / below), with ``row_title`` / ``col_title``."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  images = np.asarray(images)
  pad = 1
  grid = np.clip(image_grid(images, num_cols, pad), 0.0, 1.0)
  height, width = grid.shape[:2]
  h, w = images.shape[1:3]
  # Inches for the labels: 1.1, or more for long ones (about 0.065 a character).
  left = (0.1 if row_labels is None else
          max(1.1, 0.35 + 0.065 * max((len(str(r)) for r in row_labels), default=0)))
  bottom = 0.45 if col_labels is not None else 0.1
  top = 0.4 if title else 0.1
  fig_w, fig_h = width / 40 + left + 0.1, height / 40 + bottom + top
  fig = plt.figure(figsize=(fig_w, fig_h))
  ax = fig.add_axes([left / fig_w, bottom / fig_h, (width / 40) / fig_w, (height / 40) / fig_h])
  ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray",
            vmin=0, vmax=1, interpolation="nearest")
  ax.set_xticks([] if col_labels is None else
                [pad + q * (w + pad) + w / 2 - 0.5 for q in range(len(col_labels))])
  ax.set_yticks([] if row_labels is None else
                [pad + r * (h + pad) + h / 2 - 0.5 for r in range(len(row_labels))])
  if col_labels is not None:
    ax.set_xticklabels(col_labels, fontsize=8)
    if col_title:
      ax.set_xlabel(col_title, fontsize=8, labelpad=2)
  if row_labels is not None:
    ax.set_yticklabels(row_labels, fontsize=8)
    if row_title:
      ax.set_ylabel(row_title, fontsize=8)
  ax.tick_params(length=0, pad=2)
  for spine in ax.spines.values():
    spine.set_visible(False)
  if title:
    fig.suptitle(title, fontsize=8, y=1 - 0.05 / fig_h, va="top")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


@functools.partial(jax.jit, static_argnames="model")
def _posterior_means(params, x, y=None, *, model):
  # (y None, a model without conditioning: vmap maps no leaves of it.)
  return jax.vmap(lambda e, l: model_lib.posterior_code(params, e, model=model, y=l))(
      x.astype(jnp.float32), y)


@functools.partial(jax.jit, static_argnames="model")
def _decoded_means(params, z, y=None, *, model):
  out = jax.vmap(lambda zz, l: model_lib.decode(params, zz, model=model, y=l))(z, y)
  return model_lib.likelihood_mean(out, model)


def _labels(y):
  return None if y is None else jnp.asarray(y, jnp.int32)


def posterior_means(params, x, *, model, y=None) -> np.ndarray:
  """[N, D] means of q(z|x) for [N, *data_shape] ``x`` (one compiled encode);
  for a flow, a quantised or a categorical code, the code the decoder reads
  for them (``vae.model.posterior_code``). ``y`` [N]: a conditional model's
  labels."""
  return np.asarray(_posterior_means(params, jnp.asarray(x), _labels(y), model=model))


def decoded_means(params, z, *, model, y=None) -> np.ndarray:
  """[N, *data_shape] means of p(x|z) for [N, D] ``z`` (one compiled decode);
  ``y`` [N]: a conditional model's labels."""
  return np.asarray(_decoded_means(params, jnp.asarray(z, jnp.float32), _labels(y),
                                   model=model))


def class_codes(z, num_classes: int):
  """The class-conditional samples' grid (as Kingma et al. 2014, Fig. 1,
  draws M2's analogies): each
  of the ``len(z)`` codes decoded with every class, a row per class, so a
  column holds one z (the style) and a row one label: (z [C*n, D], y [C*n])."""
  n = len(z)
  return np.tile(np.asarray(z), (num_classes, 1)), np.repeat(np.arange(num_classes), n)


def reconstructions(params, data, *, model) -> np.ndarray:
  """Originals and mean reconstructions (decoded posterior means): the N
  originals, then their N reconstructions: [2N, *data_shape]."""
  x = np.asarray(data, np.float32)
  return np.concatenate([x, decoded_means(params, posterior_means(params, x, model=model),
                                          model=model)])


@functools.partial(jax.jit, static_argnames=("num", "model"))
def _prior_draws(params, key, *, num, model):
  return model_lib.sample_prior(params, key, num, model=model)


def prior_draws(params, key, num: int, *, model) -> np.ndarray:
  """[num, latent_dim] draws of z from the model's prior (N(0, I), or a
  learned one)."""
  if model.prior.standard_normal and model.posterior.gaussian:   # nothing to compile
    return np.asarray(jax.random.normal(key, (num, model.latent_dim)))
  return np.asarray(_prior_draws(params, key, num=int(num), model=model))


def prior_samples(params, key, num: int, *, model) -> np.ndarray:
  """Means of p(x|z) for z drawn from the prior: [num, *data_shape]."""
  return decoded_means(params, prior_draws(params, key, num, model=model), model=model)


def save_reconstructions(path, params, data, *, model, num_cols: int = 8):
  """PNG: top half originals, bottom half reconstructions, each under its
  original (a last row that is not full is left blank in both halves)."""
  images = reconstruction_rows(reconstructions(params, np.asarray(data)[:num_cols * 4],
                                               model=model), num_cols)
  return save_grid(path, images, num_cols, title="top: data, bottom: reconstructions")


def reconstruction_rows(pair: np.ndarray, num_cols: int) -> np.ndarray:
  """``reconstructions``' [2N, ...] as grid cells: the originals, blanks to
  the end of their last row, the reconstructions, blanks again; so in a grid
  of ``num_cols`` columns each reconstruction is under its original."""
  n = len(pair) // 2
  blank = np.ones((-n % num_cols,) + pair.shape[1:], pair.dtype)
  return np.concatenate([pair[:n], blank, pair[n:], blank])


def save_prior_samples(path, params, key, *, model, num: int = 64):
  """PNG of decoder means for ``num`` draws from the prior."""
  return save_grid(path, prior_samples(params, key, num, model=model),
                   title="samples from the prior (decoder means)")


def latent_traversals(params, x, *, model, kl_per_dim=None, num_steps: int = 10,
                      span: float = 2.0):
  """Decoder means as each latent dimension is swept while the others stay at
  the posterior mean of ``x`` (Higgins et al. 2017, Fig. 1 style).

  Args:
    params: model parameters.
    x: [*data_shape] the example whose code is the starting point.
    model: the static ``Model``.
    kl_per_dim: optional [D] mean KL per dimension: rows are ordered by it,
      most informative first.
    num_steps: images per row.
    span: sweep z_d over linspace(-span, span, num_steps).

  Returns:
    (images [D * num_steps, *data_shape], row order [D]).
  """
  mean = posterior_means(params, np.asarray(x)[None], model=model)[0]
  z, order = traversal_codes(mean, kl_per_dim, num_steps, span)
  return decoded_means(params, z, model=model), order


def traversal_codes(mean, kl_per_dim=None, num_steps: int = 10,
                    span: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
  """The codes of ``latent_traversals``: [D * num_steps, D] (row d sweeps the
  d-th latent in KL order over linspace(-span, span)), and the order [D]."""
  mean = np.asarray(mean, np.float32)
  d = mean.shape[0]
  order = (np.argsort(-np.asarray(kl_per_dim)) if kl_per_dim is not None
           else np.arange(d))
  z = np.tile(mean, (d, num_steps, 1))                       # [D, S, D]
  z[np.arange(d)[:, None], np.arange(num_steps)[None, :], order[:, None]] = \
      np.linspace(-span, span, num_steps, dtype=np.float32)[None, :]
  return z.reshape(d * num_steps, d), order


def save_traversals(path, params, x, *, model, kl_per_dim=None, num_steps: int = 10,
                    span: float = 2.0):
  """PNG of ``latent_traversals``: one row per latent dimension, by KL; each
  row is labelled with the latent's index and its KL (when given), each
  column with the value z_d is set to."""
  images, order = latent_traversals(params, x, model=model, kl_per_dim=kl_per_dim,
                                    num_steps=num_steps, span=span)
  return traversals_png(path, images, order, kl_per_dim=kl_per_dim, num_steps=num_steps,
                        span=span)


def row_label(d, kl_per_dim=None, latent_notes=None) -> str:
  """A traversal row's label: "z3", its KL ("z3  KL 2.41") and its note
  ("z3  KL 2.41  posX (0.62)")."""
  d = int(d)
  return (f"z{d}" + ("" if kl_per_dim is None else f"  KL {float(kl_per_dim[d]):.2f}")
          + ("" if latent_notes is None else f"  {latent_notes[d]}"))


def traversals_png(path, images, order, *, kl_per_dim=None, num_steps: int = 10,
                   span: float = 2.0, latent_notes=None) -> str:
  """``save_traversals`` from ``latent_traversals``' images and order;
  ``latent_notes`` (one string per latent, e.g. the factor it informs)
  follow each row's label."""
  rows = [row_label(d, kl_per_dim, latent_notes) for d in order]
  cols = [f"{v:+.1f}" for v in np.linspace(-span, span, num_steps)]
  return save_grid(path, images, num_steps, title="latent traversals (others at the "
                   "posterior mean)", row_labels=rows, col_labels=cols,
                   row_title="latent (KL, nats)" if kl_per_dim is not None else "latent",
                   col_title="value of the traversed latent z_d")


def _labelled(frame, labels, rows: int, header: str, image_draw):
  """``frame`` (rows of equal height) with a white margin on the left holding
  one label per row and a header line on top."""
  from PIL import Image
  width = 8 + 7 * max(len(t) for t in labels + [header])
  top = 16
  bands = len(frame.getbands())
  white, black = (255,) * bands, (0,) * bands
  out = Image.new(frame.mode, (frame.width + width, frame.height + top),
                  white if bands > 1 else 255)
  out.paste(frame, (width, top))
  draw = image_draw.Draw(out)
  ink = black if bands > 1 else 0
  draw.text((4, 2), header, fill=ink)
  row_h = frame.height / rows
  for i, text in enumerate(labels):
    draw.text((4, top + int(row_h * (i + 0.5)) - 5), text, fill=ink)
  return out


def save_traversal_gif(path, params, x, *, model, kl_per_dim=None,
                       num_steps: int = 20, span: float = 2.0,
                       num_cols: int | None = None, scale: int = 2,
                       frame_ms: int = 80, row_labels=None) -> str:
  """Animated GIF of ``latent_traversals``: frame s shows every latent
  dimension (ordered by KL, as the PNG rows) set to the s-th value of the
  sweep, so each panel animates one dimension; the sweep runs forward then
  back and loops.

  Args:
    path: output .gif path.
    params, x, model, kl_per_dim, num_steps, span: as ``latent_traversals``.
    num_cols: panels per row (default: all D in one row).
    scale: integer pixel upscaling.
    frame_ms: duration of one frame.
    row_labels: optional {latent index: text}: then each latent is one row
      (in the KL order), its text on the left, and the frame shows the value
      the latents are set to.

  Returns:
    ``path``.
  """
  images, order = latent_traversals(params, x, model=model, kl_per_dim=kl_per_dim,
                                    num_steps=num_steps, span=span)
  return traversals_gif(path, images, order, num_steps=num_steps, span=span,
                        num_cols=num_cols, scale=scale, frame_ms=frame_ms,
                        row_labels=row_labels)


def traversals_gif(path, images, order, *, num_steps: int = 20, span: float = 2.0,
                   num_cols: int | None = None, scale: int = 2, frame_ms: int = 80,
                   row_labels=None) -> str:
  """``save_traversal_gif`` from ``latent_traversals``' images and order."""
  from PIL import Image, ImageDraw
  d = images.shape[0] // num_steps
  images = images.reshape((d, num_steps) + images.shape[1:])
  values = np.linspace(-span, span, num_steps)
  frames = []
  for s in list(range(num_steps)) + list(range(num_steps - 2, 0, -1)):
    grid = np.clip(image_grid(images[:, s], 1 if row_labels is not None else (num_cols or d)),
                   0.0, 1.0)
    grid = (grid * 255).round().astype(np.uint8)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    frame = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if row_labels is not None:
      frame = _labelled(frame, [row_labels[int(i)] for i in order], d,
                        f"z = {values[s]:+.1f}", ImageDraw)
    frames.append(frame)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms,
                 loop=0)
  return path


# The run's figures: how many originals, prior draws and traversal steps.
FIGURE_RECONSTRUCTIONS = 32
FIGURE_PRIOR_SAMPLES = 64
FIGURE_TRAVERSAL_STEPS = 10
FIGURE_GIF_STEPS = 20
# A conditional model's class-conditional grid: z draws per class, at most so many classes.
FIGURE_CLASS_SAMPLES = 10
FIGURE_MAX_CLASSES = 10


def save_run_figures(workdir: str, params, data, key, *, model, kl_per_dim=None,
                     probabilistic: bool = True, class_names=None,
                     latent_notes=None) -> list[str]:
  """A run's figures (``reconstructions.png``; for probabilistic models also
  ``traversals.png``, ``traversals.gif`` of ``data[0]`` and
  ``prior_samples.png`` from ``key``), the same images as the ``save_*``
  functions draw, rendered by one compiled encode and one compiled decode of
  every code at once. Returns the PNG paths.

  A conditional model's ``data`` is ``Labeled(x, y)``: each image is
  encoded and decoded with its label, the traversals keep ``data[0]``'s,
  and ``prior_samples.png`` is the class-conditional grid (``class_codes``:
  a row per class, the same z down each column), its rows named by
  ``class_names`` (default: the label's index).

  ``latent_notes``: one string per latent (for example the factor it
  informs most, ``vae.metrics.latent_factors``), written after each
  traversal row's label; the GIF then has a labelled row per latent."""
  cond = model.conditioning
  if cond is not None:
    if not isinstance(data, cond_lib.Labeled):
      raise ValueError("save_run_figures: a conditional model's data must be "
                       "vae.conditioning.Labeled(x, y), got images alone")
    data, y = data
    y = np.asarray(y)[:FIGURE_RECONSTRUCTIONS]
  x = np.asarray(data)[:FIGURE_RECONSTRUCTIONS]
  means = posterior_means(params, x, model=model, y=None if cond is None else y)
  codes, labels = [means], [None if cond is None else y]
  if probabilistic:
    png_z, order = traversal_codes(means[0], kl_per_dim, FIGURE_TRAVERSAL_STEPS)
    gif_z, _ = traversal_codes(means[0], kl_per_dim, FIGURE_GIF_STEPS)
    if cond is None:
      codes += [prior_draws(params, key, FIGURE_PRIOR_SAMPLES, model=model), png_z, gif_z]
    else:
      rows = min(cond.num_classes, FIGURE_MAX_CLASSES)
      prior_z, prior_y = class_codes(prior_draws(params, key, FIGURE_CLASS_SAMPLES,
                                                 model=model), rows)
      codes += [prior_z, png_z, gif_z]
      labels += [prior_y, np.full(len(png_z), y[0]), np.full(len(gif_z), y[0])]
  decoded = np.split(decoded_means(params, np.concatenate(codes), model=model,
                                   y=None if cond is None else np.concatenate(labels)),
                     np.cumsum([len(c) for c in codes])[:-1])
  join = lambda name: os.path.join(workdir, name)
  cols = 8
  paths = [save_grid(join("reconstructions.png"),
                     reconstruction_rows(np.concatenate([x.astype(np.float32), decoded[0]]),
                                         cols), cols,
                     title="top: data, bottom: reconstructions")]
  if probabilistic:
    prior, png, gif = decoded[1:]
    paths.append(traversals_png(join("traversals.png"), png, order, kl_per_dim=kl_per_dim,
                                num_steps=FIGURE_TRAVERSAL_STEPS, latent_notes=latent_notes))
    traversals_gif(join("traversals.gif"), gif, order, num_steps=FIGURE_GIF_STEPS,
                   row_labels=None if latent_notes is None else {
                       int(d): row_label(d, kl_per_dim, latent_notes) for d in order})
    paths.append(save_grid(join("prior_samples.png"), prior,
                           num_cols=None if cond is None else FIGURE_CLASS_SAMPLES,
                           row_labels=None if cond is None else [
                               str(class_names[c]) if class_names is not None else str(c)
                               for c in range(len(prior) // FIGURE_CLASS_SAMPLES)],
                           row_title=None if cond is None else "class",
                           title="samples from the prior (decoder means)" if cond is None else
                           "samples from the prior: a row per class, one z per column"))
  return paths
