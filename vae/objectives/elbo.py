"""VAE and beta-VAE objectives (negative ELBO, averaged over the batch).

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, Eq. 3 and Eq. 7.
  Higgins et al. (2017), beta-VAE: Learning Basic Visual Concepts with a
  Constrained Variational Framework, Eq. 4 (beta-weighted KL).
  Burgess et al. (2018), Understanding disentangling in beta-VAE, Eq. 8
  (controlled capacity increase: gamma * |KL - C|).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from vae import model as model_lib
from vae.objectives import base

batch_elbo_terms = model_lib.batch_elbo_terms


def family_loss(params, batch, key, *, model, regularizer):
  """The ELBO family in disentanglement_lib's form (its ``regularizer``):
  the per-example ELBO terms are computed once (``batch_elbo_terms``) and
  reduced once, then a method adds its part.

  ``regularizer(terms, ll, kl) -> (divergence, penalty, aux)`` gets the
  per-example terms and the batch means ``ll`` (E_q log p(x|z)) and ``kl``;
  the loss is ``-(ll - divergence) + penalty`` (a ``None`` divergence or
  penalty is left out): the negative ELBO with ``divergence = kl``.

  Returns:
    (loss, aux) with aux ``loss``, ``elbo`` (the true bound; for a family
    trained through a relaxation, JointVAE, the relaxed value: its bound is
    the evaluated one, ``vae.evaluate.dataset_elbo``), ``log_likelihood``,
    ``kl`` and the regularizer's own terms.
  """
  t = batch_elbo_terms(params, batch, key, model=model)
  ll, kl = jnp.mean(t["log_likelihood"], axis=0), jnp.mean(t["kl"], axis=0)
  divergence, penalty, extra = regularizer(t, ll, kl)
  loss = -ll if divergence is None else -(ll - divergence)
  if penalty is not None:
    loss = loss + penalty
  return loss, {"loss": loss, "elbo": ll - kl, "log_likelihood": ll, "kl": kl, **extra}


@dataclasses.dataclass(frozen=True)
class VAEHparams:
  """beta: the KL weight (1: the ELBO; Kingma & Welling 2014); warmup_steps:
  the weight rises linearly from 0 to beta over these first steps (the KL
  warm-up of Bowman et al. 2016 and Sonderby et al. 2016, which the VampPrior
  needs; 0: none)."""
  beta: float = 1.0
  warmup_steps: int = 0

  def __post_init__(self):
    base.check_nonnegative("beta", self.beta)
    base.set_field(self, "warmup_steps", base.check_int_at_least(
        "warmup_steps", self.warmup_steps, 0, " (0: no KL warm-up)"))


@dataclasses.dataclass(frozen=True)
class BetaVAEHparams(VAEHparams):
  """beta = 4: Higgins et al. (2017), their dSprites model (Sec. 4, Fig. 7)."""
  beta: float = 4.0


@dataclasses.dataclass(frozen=True)
class AnnealedVAEHparams:
  """Burgess et al. (2018) on dSprites (Sec. 5 / App.): gamma = 1000, C rising
  to 25 nats over 100,000 steps (the disentanglement_lib study's setting)."""
  gamma: float = 1000.0
  c_max: float = 25.0
  iteration_threshold: int = 100_000

  def __post_init__(self):
    base.check_nonnegative("gamma", self.gamma)
    base.check_nonnegative("c_max", self.c_max)
    base.set_field(self, "iteration_threshold", base.check_int_at_least(
        "iteration_threshold", self.iteration_threshold, 1,
        " (steps until the capacity reaches c_max)"))


def vae_loss(params, batch, key, *, model, beta: float = VAEHparams.beta,
             warmup_steps: int = VAEHparams.warmup_steps, step=None):
  """Negative (beta-)ELBO averaged over the batch axis.

  ``loss = mean_b[ -E_q log p(x_b|z) + beta * KL(q(z|x_b) || p(z)) ]``
  (Kingma & Welling 2014, Eq. 7 with beta = 1; Higgins et al. 2017, Eq. 4).

  Args:
    params: model parameters.
    batch: [B, *data_shape].
    key: PRNG key.
    model: the static ``Model``.
    beta: weight on the KL term (>= 0).
    warmup_steps: the weight is ``beta * min(1, step / warmup_steps)`` (KL
      warm-up; Bowman et al. 2016, Sec. 3.1; Sonderby et al. 2016, Sec. 2.3);
      0 (or ``step=None``): ``beta`` throughout.
    step: the training step (the train step passes it).

  Returns:
    (loss scalar, aux) where aux has the batch means of ``elbo`` (the true,
    beta = 1 bound; relaxed for JointVAE, as ``family_loss`` says),
    ``log_likelihood`` (reconstruction term) and ``kl``;
    with a warm-up also ``kl_weight``.
  """
  if not warmup_steps or step is None:
    return family_loss(params, batch, key, model=model,
                       regularizer=lambda t, ll, kl: (beta * kl, None, {}))
  weight = beta * jnp.minimum(jnp.asarray(step, jnp.float32) / warmup_steps, 1.0)
  return family_loss(params, batch, key, model=model,
                     regularizer=lambda t, ll, kl: (weight * kl, None, {"kl_weight": weight}))


def capacity(step, c_max, iteration_threshold):
  """The target KL ``C(step) = min(c_max, c_max * step / iteration_threshold)``
  of Burgess et al. (2018), Sec. 5: it rises linearly from 0 and reaches
  ``c_max`` nats at ``iteration_threshold`` steps. ``step=None`` means the end
  of the annealing (``c_max``)."""
  if step is None:
    return jnp.asarray(c_max, jnp.float32)
  frac = jnp.asarray(step, jnp.float32) / jnp.asarray(iteration_threshold, jnp.float32)
  return jnp.minimum(c_max * frac, c_max)


def annealed_vae_loss(params, batch, key, *, model, gamma: float = AnnealedVAEHparams.gamma,
                      c_max: float = AnnealedVAEHparams.c_max,
                      iteration_threshold: int = AnnealedVAEHparams.iteration_threshold,
                      step=None):
  """AnnealedVAE: ``-E_q log p(x|z) + gamma * |KL(q(z|x) || p(z)) - C(step)|``.

  Burgess et al. (2018), Eq. 8, with the absolute value and batch-mean KL of
  disentanglement_lib (Locatello et al. 2019). With ``gamma = 1`` and
  ``C = 0`` (``c_max = 0``) it is exactly the negative ELBO, since KL >= 0.

  Args:
    params, batch, key, model: as ``vae_loss``.
    gamma: weight on the capacity penalty (1000 in the study).
    c_max: final capacity in nats.
    iteration_threshold: steps over which C rises from 0 to ``c_max``.
    step: the training step (int scalar; the train step passes it).

  Returns:
    (loss, aux): aux as ``vae_loss`` plus ``capacity``.
  """
  def regularizer(t, ll, kl):
    c = capacity(step, c_max, iteration_threshold)
    return None, gamma * jnp.abs(kl - c), {"capacity": c}
  return family_loss(params, batch, key, model=model, regularizer=regularizer)


OBJECTIVES = (
    base.Objective("vae", vae_loss, VAEHparams,
                   "Kingma & Welling (2014), Eq. 7", takes_step=True,
                   conditional=True),
    base.Objective("beta_vae", vae_loss, BetaVAEHparams,
                   "Higgins et al. (2017), Eq. 4", takes_step=True,
                   conditional=True),
    base.Objective("annealed_vae", annealed_vae_loss, AnnealedVAEHparams,
                   "Burgess et al. (2018), Eq. 8", takes_step=True,
                   conditional=True),
)
