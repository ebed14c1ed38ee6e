"""JointVAE: the ELBO with a capacity on the continuous and on the discrete
part of the KL (Dupont 2018, Eq. 5):

  -E_q log p(x|z, c) + gamma |KL(q(z|x) || p(z)) - C_z| + gamma |KL(q(c|x) || p(c)) - C_c|,

each capacity rising linearly from 0 to its maximum over
``iteration_threshold`` steps, as AnnealedVAE's (Burgess et al. 2018); the
discrete capacity is capped at log K, the most a K-way code can carry. It
trains the ``joint`` posterior family (vae/posteriors/joint.py), whose KL it
reads per part from ``kl_per_dim``.

References:
  Dupont (2018), Learning Disentangled Joint Continuous and Discrete
  Representations, NeurIPS: Eq. 5; App. (dSprites: 6 continuous latents and
  one 3-way categorical, gamma = 150, C_z -> 40 and C_c -> 1.1 nats over
  300,000 iterations, batch 64, Adam 5e-4).
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from vae.objectives import base
from vae.objectives.elbo import capacity, family_loss


@dataclasses.dataclass(frozen=True)
class JointVAEHparams:
  """Dupont (2018) on dSprites: gamma = 150, C_z to 40 nats and C_c to 1.1
  nats over 300,000 steps (scale iteration_threshold to the run's budget)."""
  gamma: float = 150.0
  cont_capacity: float = 40.0
  disc_capacity: float = 1.1
  iteration_threshold: int = 300_000

  def __post_init__(self):
    base.check_nonnegative("gamma", self.gamma)
    base.check_nonnegative("cont_capacity", self.cont_capacity)
    base.check_nonnegative("disc_capacity", self.disc_capacity)
    base.set_field(self, "iteration_threshold", base.check_int_at_least(
        "iteration_threshold", self.iteration_threshold, 1,
        " (steps until the capacities reach their maxima)"))


def joint_vae_loss(params, batch, key, *, model, gamma: float = JointVAEHparams.gamma,
                   cont_capacity: float = JointVAEHparams.cont_capacity,
                   disc_capacity: float = JointVAEHparams.disc_capacity,
                   iteration_threshold: int = JointVAEHparams.iteration_threshold,
                   step=None):
  """Dupont (2018), Eq. 5 (see the module docstring).

  Args:
    params, batch, key, model: as ``vae_loss``; ``model.posterior`` must be
      the ``joint`` family.
    gamma: weight of both capacity penalties.
    cont_capacity, disc_capacity: the capacities' final values in nats (the
      discrete one at most log K).
    iteration_threshold: steps over which both rise from 0.
    step: the training step.

  Returns:
    (loss, aux): aux as ``vae_loss`` (its ``elbo`` decodes the relaxed
    category, as training does: not an ELBO of the model, whose bound
    ``vae.evaluate.dataset_elbo`` gives) plus ``kl_cont``, ``kl_disc``, the two
    capacities ``capacity_cont``, ``capacity_disc``, and ``code_information``
    (the batch's I(x; c), ``Joint.code_information``: near 0 while
    ``kl_disc`` meets its capacity is a collapsed code).
  """
  num_categories = model.posterior.num_categories

  def regularizer(t, ll, kl):
    per_dim = jnp.mean(t["kl_per_dim"], axis=0)
    kl_cont, kl_disc = jnp.sum(per_dim[:-num_categories]), jnp.sum(per_dim[-num_categories:])
    c_cont = capacity(step, cont_capacity, iteration_threshold)
    c_disc = capacity(step, min(disc_capacity, math.log(num_categories)), iteration_threshold)
    penalty = gamma * (jnp.abs(kl_cont - c_cont) + jnp.abs(kl_disc - c_disc))
    info = model.posterior.code_information(t["mean"], t["logvar"])
    return None, penalty, {"kl_cont": kl_cont, "kl_disc": kl_disc, "capacity_cont": c_cont,
                           "capacity_disc": c_disc, "code_information": info}
  return family_loss(params, batch, key, model=model, regularizer=regularizer)


OBJECTIVES = (base.Objective("joint_vae", joint_vae_loss, JointVAEHparams,
                             "Dupont (2018), Eq. 5", takes_step=True,
                             posterior_family="joint"),)
