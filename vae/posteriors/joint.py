"""JointVAE's code: continuous Gaussian latents and one relaxed categorical.

Of the encoder's ``latent_dim`` outputs, the first ``latent_dim -
num_categories`` are the Gaussian's (mean, logvar, as everywhere) and the
last ``num_categories`` means are the logits of q(c|x); their logvar outputs
are unused. The code given to the decoder is ``[z_cont, c]`` with ``c`` a
Gumbel-softmax (Concrete) sample at ``temperature`` (Jang et al. 2017;
Maddison et al. 2017), so the whole code is reparameterised.

The prior is N(0, I) for z_cont and uniform over the K categories, and the KL
has a closed form per part (Dupont 2018, Sec. 3): the Gaussian's per latent,
and ``KL(q(c|x) || U(K)) = sum_k a_k log(K a_k)`` for the discrete part,
returned spread over its K entries (entry k is ``a_k log(K a_k)``; they sum
to the KL). The relaxed sample has no density the importance weights could
use, so the IWAE is not computed for this family.

Training decodes the relaxed sample (Dupont 2018); the model it trains
decodes a category. ``log p(x | z, c~) - KL`` with a relaxed ``c~`` is the
training objective, not an ELBO of either model (nothing makes it bound
log p(x)); so the evaluated ELBO
(``evaluation_sample``) decodes the one-hot category of the same Gumbel draw,
``c = one_hot(argmax(logits + g))``, which is distributed as q(c|x)
(Gumbel-max), and ``E_q log p(x | z, c) - KL`` is the model's ELBO.

References:
  Dupont (2018), Learning Disentangled Joint Continuous and Discrete
  Representations, NeurIPS: Sec. 3 (the code and its KL), Eq. 5 (the
  capacities, ``vae/objectives/joint_vae.py``).
  Jang, Gu & Poole (2017), Categorical Reparameterization with
  Gumbel-Softmax, Eq. 1-2.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vae import checks
from vae import distributions as dist
from vae.posteriors import base


@dataclasses.dataclass(frozen=True)
class Joint(base.Posterior):
  """num_categories: K of the one categorical latent (3 for dSprites' shapes
  in Dupont 2018); temperature: the Gumbel-softmax temperature (0.67, his)."""
  num_categories: int = 3
  temperature: float = 0.67
  name = "joint"
  reference = "Dupont (2018), Sec. 3"
  has_closed_form_kl = True
  has_log_prob = False

  def __post_init__(self):
    object.__setattr__(self, "num_categories", checks.check_int_at_least(
        "joint: num_categories", self.num_categories, 2))
    if not float(self.temperature) > 0:
      raise ValueError(f"joint: temperature must be > 0, got {self.temperature}")

  def split(self, mean, logvar):
    """(mean_cont, logvar_cont, logits) of one example's encoder output."""
    k = self.num_categories
    if mean.shape[-1] <= k:
      raise ValueError(f"joint: latent_dim ({mean.shape[-1]}) must exceed num_categories "
                       f"({k}): the first latent_dim - {k} latents are continuous")
    logvar = jnp.broadcast_to(logvar, mean.shape)
    return mean[..., :-k], logvar[..., :-k], mean[..., -k:]

  def kl_per_dim(self, mean, logvar):
    m, lv, logits = self.split(mean, logvar)
    a = jax.nn.softmax(logits)
    discrete = a * (jax.nn.log_softmax(logits) + math.log(self.num_categories))
    return jnp.concatenate([dist.kl_to_standard_normal_per_dim(m, lv), discrete], axis=-1)

  def code_information(self, mean, logvar):
    """The information the categorical code carries about a batch, in nats:
    I(x; c) under q, with x uniform over the batch's B examples,

      H(mean_b q(c|x_b)) - mean_b H(q(c|x_b)),

    between 0 (every example gets the same q(c|x)) and log K (each a
    different confident category, used equally). The discrete KL alone
    cannot tell a code in use from a collapsed one: ``KL(q(c|x) || U(K)) =
    log K - H(q(c|x))`` is met by the same confident q(c|x) for every x,
    which carries nothing. Dupont (2018) trains the KL; this is for watching.

    Args:
      mean, logvar: [B, latent_dim] encoder outputs of a batch.
    """
    _, _, logits = self.split(mean, logvar)
    log_a = jax.nn.log_softmax(logits, axis=-1)
    a = jnp.exp(log_a)
    mean_a = jnp.mean(a, axis=0)
    marginal_entropy = -jnp.sum(mean_a * jnp.log(jnp.maximum(mean_a, 1e-30)))
    return marginal_entropy - jnp.mean(-jnp.sum(a * log_a, axis=-1))

  def _draw(self, key, mean, logvar, num_samples):
    """(z_cont, logits + Gumbel noise) of one draw."""
    m, lv, logits = self.split(mean, logvar)
    k_cont, k_disc = jax.random.split(key)
    z = dist.reparameterized_sample(k_cont, m, lv, num_samples)
    shape = logits.shape if num_samples is None else (num_samples,) + logits.shape
    return z, logits + jax.random.gumbel(k_disc, shape, logits.dtype)

  def sample(self, key, mean, logvar, params, num_samples=None):
    del params
    z, perturbed = self._draw(key, mean, logvar, num_samples)
    c = jax.nn.softmax(perturbed / self.temperature, axis=-1)
    return jnp.concatenate([z, c], axis=-1), None

  def evaluation_sample(self, key, mean, logvar, params, num_samples=None):
    """The draw of ``sample`` with the category one-hot: Gumbel-max, the
    relaxed sample's argmax (see the module docstring)."""
    del params
    z, perturbed = self._draw(key, mean, logvar, num_samples)
    c = jax.nn.one_hot(jnp.argmax(perturbed, axis=-1), self.num_categories, dtype=z.dtype)
    return jnp.concatenate([z, c], axis=-1), None

  def code(self, mean, logvar, params):
    del params
    m, _, logits = self.split(mean, logvar)
    return jnp.concatenate([m, jax.nn.one_hot(jnp.argmax(logits, -1), self.num_categories)],
                           axis=-1)

  def standard_prior_sample(self, key, num, latent_dim, params):
    del params
    k_cont, k_disc = jax.random.split(key)
    k = self.num_categories
    z = jax.random.normal(k_cont, (int(num), int(latent_dim) - k))
    c = jax.nn.one_hot(jax.random.randint(k_disc, (int(num),), 0, k), k)
    return jnp.concatenate([z, c], axis=-1)


POSTERIORS = (Joint,)
