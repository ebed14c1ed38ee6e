"""The VampPrior: a mixture of the variational posterior at K learned
pseudo-inputs,

  p(z) = (1/K) sum_k q(z | u_k)                (Tomczak & Welling 2018, Eq. 9),

trained jointly with the encoder and decoder. The pseudo-inputs ``u_k`` are
parameters of data shape, passed through a hardtanh into [0, 1] (the authors'
parametrisation for binary images, Sec. 3 / App.), initialised near 0.05
(``init="random"``: their data loaders set the mean to 0.05 for every data
set, over ``experiment.py``'s -0.05, which the hardtanh would clip to blank
images with no gradient) or, with ``init="data"``, at K random
training images plus the same small noise (their code's
``use_training_data_init``; a mixture that starts at the data's posteriors
instead of K copies of one blank image's). There
is no closed-form KL: the ELBO uses the one-sample estimate
``log q(z|x) - log p(z)`` (their Eq. 11 estimated as in Eq. 2).

The components are the encoder's Gaussian at the pseudo-inputs. With a flow
posterior (``planar``, ``iaf``) that is the flow's base q_0(z|u_k), not the
flowed q(z|u_k) of Eq. 9 (a planar flow has no density at an arbitrary z):
a learned mixture prior and a valid bound, but not Tomczak & Welling's
VampPrior, which is the Gaussian posterior's.

References:
  Tomczak & Welling (2018), VAE with a VampPrior, AISTATS: Eq. 9 (the
  prior), Eq. 11 (the ELBO), Table 2 (static binarized MNIST: VAE 88.56 ->
  VampPrior 85.57 nats test NLL with an MLP of 300 units, K = 500, warm-up).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae import checks
from vae import distributions as dist
from vae.priors import base

INITS = ("random", "data")


@dataclasses.dataclass(frozen=True)
class VampPrior(base.Prior):
  """num_components: K pseudo-inputs (500 for MNIST in the paper);
  init: "random" (each pixel ``init_mean + init_std * N(0, 1)``) or "data"
  (K training examples, drawn by the trainer, ``+ init_std * N(0, 1)``);
  init_mean, init_std: as said.

  With ``init="data"`` on binary images, the noise pushes about half of each
  pseudo-input's pixels just outside [0, 1], where the hardtanh passes no
  gradient: those pixels stay as they started. The authors' code does the
  same (``use_training_data_init`` with their Hardtanh)."""
  num_components: int = 500
  init: str = "random"
  init_mean: float = 0.05
  init_std: float = 0.01
  name = "vampprior"
  reference = "Tomczak & Welling (2018), Eq. 9"

  def __post_init__(self):
    object.__setattr__(self, "num_components", checks.check_int_at_least(
        "vampprior: num_components", self.num_components, 1))
    if self.init not in INITS:
      raise ValueError(f"vampprior: init must be one of {INITS}, got {self.init!r}")
    if not float(self.init_std) >= 0:
      raise ValueError(f"vampprior: init_std must be >= 0, got {self.init_std}")

  @property
  def init_examples(self) -> int:
    return self.num_components if self.init == "data" else 0

  def init_params(self, key, data_shape, latent_dim, examples=None):
    del latent_dim
    shape = (self.num_components,) + tuple(data_shape)
    if self.init == "data":
      if examples is None or tuple(examples.shape) != shape:
        raise ValueError(
            f"vampprior: init='data' starts the pseudo-inputs at {self.num_components} "
            f"training examples of shape {tuple(data_shape)}: init_params needs "
            f"examples {shape}, got "
            f"{None if examples is None else tuple(examples.shape)}")
      start = jnp.asarray(examples, jnp.float32)
    else:
      start = self.init_mean
    return {"pseudo_inputs": (start + self.init_std * jax.random.normal(key, shape)
                              ).astype(jnp.float32)}

  @staticmethod
  def pseudo_inputs(params):
    """The K pseudo-inputs in [0, 1] (hardtanh of the parameters)."""
    return jnp.clip(params["pseudo_inputs"], 0.0, 1.0)

  def components(self, params, encode_batch):
    """(means [K, D], logvars [K, D] or [K, 1]) of q(z|u_k)."""
    return encode_batch(self.pseudo_inputs(params))

  def log_prob_fn(self, params, encode_batch):
    batch = self.log_prob_batch_fn(params, encode_batch)
    return lambda z: batch(z[None])[0]

  def log_prob_batch_fn(self, params, encode_batch):
    means, logvars = self.components(params, encode_batch)
    return lambda z, keys=None: dist.gaussian_mixture_log_prob(z, means, logvars)

  def sample(self, key, num, params, encode_batch, latent_dim):
    means, logvars = self.components(params, encode_batch)
    k_which, k_eps = jax.random.split(key)
    which = jax.random.randint(k_which, (int(num),), 0, self.num_components)
    eps = jax.random.normal(k_eps, (int(num), int(latent_dim)))
    return means[which] + jnp.exp(0.5 * logvars[which]) * eps


PRIORS = (VampPrior,)
