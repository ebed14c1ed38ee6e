"""A class label as a conditioning input: the conditional VAE.

Here x is the image and y its class label, the model is of p(x|y):

    log p(x|y) >= E_q(z|x,y)[log p(x|z,y)] - KL(q(z|x,y) || N(0, I)),

the encoder q(z|x, y) and the decoder p(x|z, y) both reading y, the prior
N(0, I) whatever y. This is the conditional VAE of Sohn, Lee & Yan (2015),
"Learning Structured Output Representation using Deep Conditional
Generative Models" (NeurIPS), Eq. 4-5, in their letters with the roles
swapped (they model an output y given an input x, q(z|x, y) and p(y|x, z))
and their prior network p(z|x) replaced by N(0, I); it is also the
generative model M2 of Kingma, Rezende, Mohamed & Welling (2014),
"Semi-supervised learning with deep generative models", Eq. 6-7, with
every label observed.

``Conditioning(num_classes)`` is the part of ``vae.model.Model`` that says
so. The label enters both networks as a one-hot vector: concatenated to the
flattened input of the MLP encoder, to the conv encoder's features before
its dense layer, and to z at either decoder's input.

A conditional model's batch is ``Labeled(x, y)``: images [B, *data_shape]
and integer labels [B] in [0, num_classes). The ELBO-family objectives,
the IWAE and the evaluation path take it where they take an image batch;
``split_batch`` is the one place that tells the two apart and checks them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from vae import checks


@dataclasses.dataclass(frozen=True)
class Conditioning:
  """The model reads a class label y in [0, num_classes) beside x (encoder)
  and z (decoder): Sohn et al. (2015); Kingma et al. (2014), M2."""
  num_classes: int
  reference = "Sohn, Lee & Yan (2015), Eq. 4-5; Kingma et al. (2014), M2 (Eq. 6-7)"

  def __post_init__(self):
    checks.check_int_at_least("num_classes", self.num_classes, 2,
                              " (a conditional VAE needs at least two classes)")

  def check_classes(self, class_names) -> None:
    """Raises ``checks.InputError`` unless the data's labels have as many
    classes as the model reads, naming both and the data's classes."""
    if len(class_names) != self.num_classes:
      raise checks.InputError(f"model.num_classes is {self.num_classes} but the data's labels "
                              f"have {len(class_names)} classes ({', '.join(class_names)}): "
                              f"set model.num_classes={len(class_names)}")

  def one_hot(self, y) -> jnp.ndarray:
    """float32 one-hot of integer labels ``y`` [...] -> [..., num_classes]."""
    return jnp.eye(self.num_classes, dtype=jnp.float32)[jnp.asarray(y, jnp.int32)]


class Labeled(NamedTuple):
  """A batch (or data set) of a conditional model: ``x`` [N, *data_shape]
  and integer labels ``y`` [N]. A pytree, so it goes through jit, vmap,
  sharding and ``vae.evaluate.map_batches`` as the image array does."""
  x: Any
  y: Any


def split_batch(batch, model, fn: str):
  """(x, y) of a model's batch: ``Labeled(x, y)`` for a conditional model,
  an image array (y None) otherwise.

  Raises:
    ValueError: a conditional model given images without labels, a model
      without conditioning given labels, or labels of the wrong shape.
  """
  cond = model.conditioning
  if isinstance(batch, Labeled):
    if cond is None:
      raise ValueError(f"{fn}: the batch carries labels (Labeled) but the model has no "
                       "conditioning: build it with num_classes > 0 (a conditional VAE), "
                       "or pass the images alone")
    x, y = batch
    xs, ys = tuple(jnp.shape(x)), tuple(jnp.shape(y))
    if len(ys) != 1 or not xs or ys[0] != xs[0]:
      raise ValueError(f"{fn}: labels must have shape [B] beside images [B, ...], got "
                       f"labels {ys} and images {xs}")
    if not jnp.issubdtype(jnp.result_type(y), jnp.integer):
      raise ValueError(f"{fn}: labels must be integers (class indices), got dtype "
                       f"{jnp.result_type(y)}")
    return x, y
  if cond is not None:
    raise ValueError(f"{fn}: this model is conditional ({cond.num_classes} classes): its "
                     "batch must be vae.conditioning.Labeled(x, y) with integer labels y [B], "
                     "got images alone")
  return batch, None


def as_float(batch):
  """The batch with its images cast to float32 (labels stay integers)."""
  if isinstance(batch, Labeled):
    return Labeled(jnp.asarray(batch.x).astype(jnp.float32), jnp.asarray(batch.y, jnp.int32))
  return jnp.asarray(batch).astype(jnp.float32)


def check_labels(labels, num_classes: int, name: str, where=None) -> None:
  """Raises ``checks.InputError`` unless ``labels`` are integers in
  [0, num_classes), naming the first bad one (``where(i)`` says where row i
  came from)."""
  labels = np.asarray(labels)
  if labels.ndim != 1:
    raise checks.InputError(f"{name} must be one integer per example, shape [N], got shape "
                            f"{labels.shape}")
  if labels.size and not np.issubdtype(labels.dtype, np.integer):
    raise checks.InputError(f"{name} must be integers, got dtype {labels.dtype}")
  bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
  if bad.size:
    i = int(bad[0])
    at = where(i) if where is not None else f"row {i}"
    raise checks.InputError(f"{name} must lie in [0, {num_classes}) (model.num_classes), got "
                            f"{int(labels[i])} at {at}")
