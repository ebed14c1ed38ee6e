"""FactorVAE: the ELBO plus gamma * total correlation, with the TC estimated
by a discriminator's density ratio (Kim & Mnih 2018).

* VAE side (Kim & Mnih 2018, Eq. 2 and Sec. 3):
  ``-ELBO + gamma * E_q(z)[log D(z) / (1 - D(z))]`` where D(z) is the
  discriminator's probability that z came from q(z) rather than from
  prod_d q(z_d). This loss is minimised over the encoder and decoder only.
* Discriminator side (Algorithm 1): a logistic classifier of samples of q(z)
  (the batch's codes) against samples of prod_d q(z_d), made by permuting
  each latent dimension independently across the batch (Algorithm 1,
  "permute_dims"). Minimised over the discriminator only.

The two are isolated with ``stop_gradient``: the VAE loss sees the
discriminator's parameters as constants, and the discriminator loss sees the
codes as constants. ``factor_vae_train_loss`` is their sum. Because of the
isolation, its gradient with respect to the encoder and decoder is exactly the
VAE loss's gradient and with respect to the discriminator exactly the
discriminator loss's, so one ``jax.grad`` of the sum (one forward pass) gives
both players' gradients, and ``make_optimizer`` applies two separate
optimizers to them (optax.multi_transform). Both players are updated from the
same batch and the same parameters, as in disentanglement_lib; Kim & Mnih
draw a second batch for the permuted codes.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from vae import networks
from vae.objectives import base
from vae.objectives.elbo import family_loss

DISCRIMINATOR = networks.Discriminator()


def init_discriminator(key: jax.Array, latent_dim: int):
  """Parameters of the 6 x 1000 leaky-ReLU discriminator for D latents."""
  return DISCRIMINATOR.init(key, jnp.zeros((int(latent_dim),), jnp.float32))["params"]


def discriminator_logits(disc_params, z):
  """Logits [M] of "z is from q(z)" for codes z [M, D]."""
  return jax.vmap(lambda zz: DISCRIMINATOR.apply({"params": disc_params}, zz))(z)


def permute_dims(key: jax.Array, z: jax.Array) -> jax.Array:
  """Samples of prod_d q(z_d): each column of z [M, D] permuted
  independently across the batch (Kim & Mnih 2018, Algorithm 1)."""
  keys = jax.random.split(key, z.shape[1])
  return jax.vmap(lambda k, col: jax.random.permutation(k, col),
                  in_axes=(0, 1), out_axes=1)(keys, z)


def discriminator_loss(disc_params, z, key):
  """Cross-entropy of the discriminator, averaged over both classes:
  ``-0.5 (E_q log D(z) + E_{prod q} log(1 - D(z_perm)))`` (Kim & Mnih 2018,
  Algorithm 1). ``z`` is treated as data (no gradient flows into it).

  Returns:
    (loss, accuracy) scalars.
  """
  z = jax.lax.stop_gradient(z)
  real = discriminator_logits(disc_params, z)
  fake = discriminator_logits(disc_params, permute_dims(key, z))
  loss = 0.5 * (jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake)))
  acc = 0.5 * (jnp.mean(real > 0) + jnp.mean(fake <= 0))
  return loss, acc


def _terms(params, batch, key, model, gamma):
  # The ELBO uses ``key`` itself, so gamma = 0 gives vae_loss exactly.
  def regularizer(t, ll, kl):
    frozen = jax.lax.stop_gradient(params["discriminator"])
    # log D/(1-D) is the logit: the density-ratio estimate of the TC.
    tc = jnp.mean(discriminator_logits(frozen, t["z"]))
    d_loss, d_acc = discriminator_loss(params["discriminator"], t["z"],
                                       jax.random.fold_in(key, 1))
    return kl, gamma * tc, {"total_correlation": tc, "discriminator_loss": d_loss,
                            "discriminator_accuracy": d_acc}
  vae, aux = family_loss(params, batch, key, model=model, regularizer=regularizer)
  return vae, aux["discriminator_loss"], aux


@dataclasses.dataclass(frozen=True)
class FactorVAEHparams:
  """gamma = 35: Kim & Mnih (2018), their dSprites setting (Sec. 5)."""
  gamma: float = 35.0

  def __post_init__(self):
    base.check_nonnegative("gamma", self.gamma)


def factor_vae_loss(params, batch, key, *, model, gamma: float = FactorVAEHparams.gamma):
  """The VAE player's loss: ``-ELBO + gamma * TC_D`` (Kim & Mnih 2018, Eq. 2).

  Args:
    params: {"encoder", "decoder", "discriminator"} parameters.
    batch: [M, *data_shape].
    key: PRNG key.
    model: the static ``Model``.
    gamma: weight on the total correlation.

  Returns:
    (loss, aux): aux as ``vae_loss`` plus ``total_correlation`` (the
    discriminator's estimate), ``discriminator_loss`` and
    ``discriminator_accuracy``. No gradient reaches the discriminator.
  """
  vae, _, aux = _terms(params, batch, key, model, gamma)
  return vae, aux


def factor_vae_train_loss(params, batch, key, *, model,
                          gamma: float = FactorVAEHparams.gamma):
  """VAE loss + discriminator loss, isolated from each other by
  ``stop_gradient`` (see the module docstring): what the shared train step
  differentiates. ``aux["loss"]`` is the VAE loss alone."""
  vae, d_loss, aux = _terms(params, batch, key, model, gamma)
  return vae + d_loss, aux


def param_labels(params: Mapping) -> dict:
  """"discriminator" for the discriminator's subtree, "vae" for the rest."""
  return {k: jax.tree.map(lambda _: "discriminator" if k == "discriminator" else "vae", v)
          for k, v in params.items()}


def make_optimizer(vae_optimizer: optax.GradientTransformation,
                   discriminator_optimizer: optax.GradientTransformation
                   ) -> optax.GradientTransformation:
  """One optax transformation holding the two players' optimizers: each
  updates only its own parameters (Kim & Mnih 2018 use Adam for both; the
  discriminator's with b1 = 0.5, b2 = 0.9)."""
  return optax.multi_transform(
      {"vae": vae_optimizer, "discriminator": discriminator_optimizer},
      param_labels)


def _combine_optimizers(vae_optimizer, extra):
  return make_optimizer(vae_optimizer, extra["discriminator"])


OBJECTIVES = (base.Objective(
    "factor_vae", factor_vae_train_loss, FactorVAEHparams,
    "Kim & Mnih (2018), Eq. 2 and Algorithm 1",
    extra_params=lambda key, model: {"discriminator": init_discriminator(key, model.latent_dim)},
    extra_optimizers=("discriminator",),
    combine_optimizers=_combine_optimizers),)
