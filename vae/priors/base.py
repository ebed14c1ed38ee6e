"""What a prior is: one record (a frozen dataclass) per prior p(z).

A prior is a frozen dataclass whose fields are its hyperparameters, with:

* ``name``, ``reference``: its registry name and paper;
* ``standard_normal``: p(z) = N(0, I), so with the Gaussian posterior the KL
  has a closed form;
* ``init_params(key, data_shape, latent_dim, examples=None)``: its own
  parameters (``params["prior"]`` of the model), or None;
* ``init_examples``: how many training examples ``init_params`` is given
  (``examples`` [n, *data_shape], drawn by the trainer from the training
  data; 0, the default: none, and ``examples`` is None);
* ``log_prob_fn(params, encode_batch)``: the per-example ``log p(z)``
  (z [D] -> scalar), or for a ``stochastic`` prior (one with latents of its
  own, ``two_layer.py``) ``(z, key) -> `` a one-sample estimate of it whose
  expectation is a lower bound. ``encode_batch`` is the model's encoder with its
  parameters bound (``x [B, *data_shape] -> (mean, logvar)``), for priors made
  of the posterior (the VampPrior): whatever depends on ``params`` alone is
  computed once here, not once per example;
* ``log_prob_batch_fn(params, encode_batch)``: the same for a batch,
  ``(z [N, D], keys [N]) -> [N]`` (keys used by a stochastic prior only);
  by default ``log_prob_fn`` under vmap, overridden where a batch is faster
  as a whole (the VampPrior's mixture, its gradient written by hand);
* ``sample(key, num, params, encode_batch, latent_dim)``: ``num`` draws
  [num, D] (prior samples, figures).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar

import jax


@dataclasses.dataclass(frozen=True)
class Prior:
  """Base of the priors (see the module docstring)."""
  name: ClassVar[str] = ""
  reference: ClassVar[str] = ""
  standard_normal: ClassVar[bool] = False
  stochastic: ClassVar[bool] = False
  init_examples: ClassVar[int] = 0

  def init_params(self, key, data_shape, latent_dim: int, examples=None) -> Any:
    del key, data_shape, latent_dim, examples
    return None

  def log_prob_fn(self, params, encode_batch) -> Callable:
    raise NotImplementedError

  def log_prob_batch_fn(self, params, encode_batch) -> Callable:
    fn = jax.vmap(self.log_prob_fn(params, encode_batch))
    return fn if self.stochastic else (lambda z, keys=None: fn(z))

  def sample(self, key, num: int, params, encode_batch, latent_dim: int):
    raise NotImplementedError
