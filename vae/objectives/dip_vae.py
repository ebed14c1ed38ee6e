"""DIP-VAE I and II: the ELBO plus a penalty that pushes a covariance of the
code towards the identity (Kumar, Sattigeri & Balakrishnan 2018).

* DIP-VAE-I penalises Cov_{p(x)}[mu(x)], the covariance of the posterior
  means (Kumar et al. 2018, Eq. 6).
* DIP-VAE-II penalises Cov_{q(z)}[z] = E_{p(x)}[Sigma(x)] + Cov_{p(x)}[mu(x)],
  the covariance of the aggregate posterior (Eq. 7 with Eq. 5).

Both add ``lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2``
(Eq. 6 / 7), with C estimated on the minibatch.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from vae.objectives import base
from vae.objectives.elbo import family_loss

DIP_TYPES = ("i", "ii")


def dip_covariance(mean, logvar, dip_type: str):
  """The minibatch covariance that DIP-VAE penalises.

  Args:
    mean, logvar: [M, D] posterior parameters of a batch.
    dip_type: "i" (covariance of the means) or "ii" (aggregate posterior).

  Returns:
    [D, D] covariance (the biased, 1/M estimate, as disentanglement_lib).
  """
  if dip_type not in DIP_TYPES:
    raise ValueError(f"dip_type must be one of {DIP_TYPES}, got {dip_type!r}")
  centred = mean - jnp.mean(mean, axis=0)
  cov = centred.T @ centred / mean.shape[0]
  if dip_type == "ii":
    cov = cov + jnp.diag(jnp.mean(jnp.exp(logvar), axis=0))
  return cov


def dip_penalty(cov, lambda_od, lambda_d):
  """``lambda_od * sum_{i!=j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2``."""
  diag = jnp.diagonal(cov)
  off = cov - jnp.diag(diag)
  return lambda_od * jnp.sum(off ** 2) + lambda_d * jnp.sum((diag - 1.0) ** 2)


@dataclasses.dataclass(frozen=True)
class DIPVAEIHparams:
  """Kumar et al. (2018), Sec. 4: lambda_d = 10 lambda_od for DIP-VAE-I."""
  lambda_od: float = 10.0
  lambda_d: float = 100.0

  def __post_init__(self):
    base.check_nonnegative("lambda_od", self.lambda_od)
    base.check_nonnegative("lambda_d", self.lambda_d)


@dataclasses.dataclass(frozen=True)
class DIPVAEIIHparams(DIPVAEIHparams):
  """Kumar et al. (2018), Sec. 4: lambda_d = lambda_od for DIP-VAE-II."""
  lambda_d: float = 10.0


def dip_vae_loss(params, batch, key, *, model,
                 lambda_od: float = DIPVAEIHparams.lambda_od,
                 lambda_d: float = DIPVAEIHparams.lambda_d, dip_type: str = "i"):
  """Negative ELBO plus the DIP penalty (Kumar et al. 2018, Eq. 6 and 7).

  With ``lambda_od = lambda_d = 0`` it is exactly ``vae_loss`` (beta = 1).

  Args:
    params, batch, key, model: as ``vae_loss``.
    lambda_od: weight on the squared off-diagonal entries.
    lambda_d: weight on the squared distance of the diagonal from 1.
    dip_type: "i" or "ii".

  Returns:
    (loss, aux): aux as ``vae_loss`` plus ``dip_penalty``, ``cov_offdiag``
    (mean absolute off-diagonal entry) and ``cov_diag`` (mean diagonal).
  """
  def regularizer(t, ll, kl):
    cov = dip_covariance(t["mean"], t["logvar"], dip_type)
    pen = dip_penalty(cov, lambda_od, lambda_d)
    d = cov.shape[0]
    off = jnp.sum(jnp.abs(cov - jnp.diag(jnp.diagonal(cov)))) / max(d * (d - 1), 1)
    return kl, pen, {"dip_penalty": pen, "cov_offdiag": off,
                     "cov_diag": jnp.mean(jnp.diagonal(cov))}
  return family_loss(params, batch, key, model=model, regularizer=regularizer)


def dip_vae_i_loss(params, batch, key, *, model,
                   lambda_od: float = DIPVAEIHparams.lambda_od,
                   lambda_d: float = DIPVAEIHparams.lambda_d):
  """DIP-VAE-I (Kumar et al. 2018, Eq. 6); see ``dip_vae_loss``."""
  return dip_vae_loss(params, batch, key, model=model, lambda_od=lambda_od,
                      lambda_d=lambda_d, dip_type="i")


def dip_vae_ii_loss(params, batch, key, *, model,
                    lambda_od: float = DIPVAEIIHparams.lambda_od,
                    lambda_d: float = DIPVAEIIHparams.lambda_d):
  """DIP-VAE-II (Kumar et al. 2018, Eq. 7); see ``dip_vae_loss``."""
  return dip_vae_loss(params, batch, key, model=model, lambda_od=lambda_od,
                      lambda_d=lambda_d, dip_type="ii")


OBJECTIVES = (
    base.Objective("dip_vae_i", dip_vae_i_loss, DIPVAEIHparams,
                   "Kumar et al. (2018), Eq. 6", gaussian_only=True),
    base.Objective("dip_vae_ii", dip_vae_ii_loss, DIPVAEIIHparams,
                   "Kumar et al. (2018), Eq. 7", gaussian_only=True),
)
