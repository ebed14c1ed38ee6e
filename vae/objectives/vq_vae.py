"""VQ-VAE: reconstruction through a quantised code, a codebook loss and a
commitment loss (van den Oord et al. 2017, Eq. 3):

  -log p(x | z_q(x)) + |sg[z_e(x)] - e|^2 + beta |z_e(x) - sg[e]|^2,

summed over the code's vectors and averaged over the batch; ``sg`` is
stop-gradient and ``z_q = z_e + sg(e - z_e)`` the straight-through code
(``vae/posteriors/vq.py``, which this objective trains and which needs it).

With the family's ``ema_decay > 0`` the codebook term is replaced by the
exponential moving averages of App. A.1, ``N_k <- gamma N_k + (1 - gamma)
n_k`` and ``m_k <- gamma m_k + (1 - gamma) sum_{z_e -> k} z_e``: they are the
gradient steps (learning rate 1, a plain SGD of their own, see
``make_optimizer``) of ``(1 - gamma)/2 (|N - n|^2 + |m - s|^2)`` with the
batch's counts n and sums s held fixed, so the one shared train step applies
them. A code whose count has fallen below ``dead_code_threshold`` is restarted
at a random encoder output of the batch, with count ``max(1, threshold)``
(so a restarted code is dead again only if it does not win about
``threshold`` assignments per step, as a live code must): the remedy for
codebook collapse that users ask for (e.g. Dhariwal et al. 2020, Jukebox,
Sec. 2.2). Two dead codes of a step may restart at the same output; the
nearest-code tie then goes to one of them, and the other restarts again once
its count falls below the threshold (at once when the threshold exceeds 1).
The batch's codebook usage is logged as ``perplexity`` (exp of the entropy
of the average one-hot assignment: K when all codes are used evenly, 1 when
one code takes everything) and ``codes_used``.

References:
  van den Oord, Vinyals & Kavukcuoglu (2017), Neural Discrete Representation
  Learning, NeurIPS: Eq. 3 (beta = 0.25, Sec. 4), App. A.1 (EMA).
  Dhariwal et al. (2020), Jukebox: A Generative Model for Music, Sec. 2.2
  (random restarts of unused codes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import jax
import jax.numpy as jnp
import optax

from vae import model as model_lib
from vae.objectives import base

EMA_LEAVES = ("ema_counts", "ema_sums")


@dataclasses.dataclass(frozen=True)
class VQVAEHparams:
  """commitment_cost: beta = 0.25 (van den Oord et al. 2017, Sec. 4);
  dead_code_threshold: restart a code whose EMA count (assignments per
  batch, averaged) falls below it (0: never; EMA codebooks only)."""
  commitment_cost: float = 0.25
  dead_code_threshold: float = 0.0

  def __post_init__(self):
    base.check_nonnegative("commitment_cost", self.commitment_cost)
    base.check_nonnegative("dead_code_threshold", self.dead_code_threshold)


def vq_vae_loss(params, batch, key, *, model,
                commitment_cost: float = VQVAEHparams.commitment_cost,
                dead_code_threshold: float = VQVAEHparams.dead_code_threshold):
  """The VQ-VAE loss (see the module docstring) plus, for an EMA codebook,
  the moving averages' update as a loss of its own parameters.

  Returns:
    (loss, aux): aux ``loss`` (Eq. 3, without the EMA term), ``elbo``
    (log p(x|z_q) - M log K), ``log_likelihood``, ``kl`` (M log K),
    ``commitment``, ``codebook`` (gradient codebooks), ``perplexity``,
    ``codes_used`` and ``codes_restarted`` (EMA).
  """
  model_lib.check_batch(batch, model, "vq_vae_loss")
  fam = model.posterior
  post = params["posterior"]
  z_e, _ = model_lib.encode_batch(params, batch, model=model)
  idx, z, e = fam.quantize(z_e, post)                       # [B, M], [B, M, d] x2
  z_q = (z + jax.lax.stop_gradient(e - z)).reshape(z_e.shape)
  out = model_lib.decode_batch(params, z_q, model=model)
  ll = jnp.mean(jax.vmap(lambda x, o: model_lib.log_likelihood(x, o, model=model))(batch, out))
  commitment = jnp.mean(jnp.sum((z - jax.lax.stop_gradient(e)) ** 2, axis=(-2, -1)))
  kl = jnp.float32(z.shape[-2] * math.log(fam.num_codes))
  loss = -ll + commitment_cost * commitment
  one_hot = jax.nn.one_hot(idx, fam.num_codes)               # [B, M, K]
  usage = jnp.mean(one_hot, axis=(0, 1))
  aux = {"elbo": ll - kl, "log_likelihood": ll, "kl": kl, "commitment": commitment,
         "perplexity": jnp.exp(-jnp.sum(usage * jnp.log(usage + 1e-10))),
         "codes_used": jnp.sum(usage > 0).astype(jnp.float32)}
  if not fam.ema:
    codebook = jnp.mean(jnp.sum((jax.lax.stop_gradient(z) - e) ** 2, axis=(-2, -1)))
    loss = loss + codebook
    aux.update(loss=loss, codebook=codebook)
    return loss, aux
  ema_loss, restarted = _ema_loss(post, z, one_hot, fam.ema_decay, dead_code_threshold, key)
  aux.update(loss=loss, codes_restarted=restarted)
  return loss + ema_loss, aux


def _ema_loss(post, z, one_hot, decay, threshold, key):
  """The loss whose gradient step (rate 1) is the EMA update of App. A.1,
  restarting dead codes at count ``max(1, threshold)`` (the code vector
  ``sums / counts`` is the chosen encoder output); and how many were
  restarted."""
  flat_z = jax.lax.stop_gradient(z.reshape(-1, z.shape[-1]))      # [B M, d]
  flat_hot = one_hot.reshape(-1, one_hot.shape[-1])               # [B M, K]
  n = jnp.sum(flat_hot, axis=0)
  s = flat_hot.T @ flat_z
  counts, sums = post["ema_counts"], post["ema_sums"]
  rate = jnp.full(counts.shape, 1.0 - decay)
  dead = (counts < threshold) if threshold > 0 else jnp.zeros(counts.shape, bool)
  pick = jax.random.randint(key, counts.shape, 0, flat_z.shape[0])
  start = max(1.0, float(threshold))
  n = jnp.where(dead, start, n)
  s = jnp.where(dead[:, None], start * flat_z[pick], s)
  rate = jnp.where(dead, 1.0, rate)
  ema = 0.5 * (jnp.sum(rate * (counts - n) ** 2)
               + jnp.sum(rate[:, None] * (sums - s) ** 2))
  return ema, jnp.sum(dead).astype(jnp.float32)


def param_labels(params: Mapping) -> dict:
  """"ema" for an EMA codebook's leaves, "vae" for the rest."""
  def label(path, _):
    names = [getattr(p, "key", None) for p in path]
    return "ema" if names[:1] == ["posterior"] and names[-1] in EMA_LEAVES else "vae"
  return jax.tree_util.tree_map_with_path(label, dict(params))


def make_optimizer(vae_optimizer: optax.GradientTransformation,
                   extra=None) -> optax.GradientTransformation:
  """``vae_optimizer`` for the networks (and a gradient codebook); plain SGD
  at rate 1 for an EMA codebook's leaves, whose gradient is the EMA step."""
  del extra
  return optax.multi_transform({"vae": vae_optimizer, "ema": optax.sgd(1.0)}, param_labels)


OBJECTIVES = (base.Objective("vq_vae", vq_vae_loss, VQVAEHparams,
                             "van den Oord et al. (2017), Eq. 3 and App. A.1",
                             posterior_family="vq", combine_optimizers=make_optimizer),)
