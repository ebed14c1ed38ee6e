"""What an objective is: one record, declared beside its loss.

An ``Objective`` holds everything the rest of the library needs to know about
a method: its name and loss, its hyperparameters (a frozen dataclass whose
defaults are the paper's and whose ``__post_init__`` checks them), whether its
encoder is probabilistic, whether the loss reads the training step, the extra
parameters it trains (FactorVAE's discriminator) and how they are optimised.
The registry (``vae.objectives``) collects the records that each module lists
in its ``OBJECTIVES`` tuple, so a new method is one new module plus a config;
nothing elsewhere tests an objective's name.

``Objective.bind(**values)`` checks the values against the hyperparameter
dataclass (unknown names are an error) and returns a ``BoundObjective``: the
loss ``loss(params, batch, key, *, model)`` with those hyperparameters, plus
the record it came from.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import optax

from vae import model as model_lib
from vae import checks


@dataclasses.dataclass(frozen=True)
class NoHparams:
  """For objectives without hyperparameters."""


@dataclasses.dataclass(frozen=True)
class Objective:
  """One method of the library (see the module docstring).

  Attributes:
    name: registry name, e.g. "beta_vae".
    loss: ``loss(params, batch, key, *, model, **hparams) -> (loss, aux)``;
      with ``takes_step`` also a ``step`` keyword.
    hparams: frozen dataclass type: one field per hyperparameter, the paper's
      value as default, ``__post_init__`` raising ValueError on bad values.
    reference: the paper and equation the loss implements.
    probabilistic: the encoder is a posterior q(z|x) (ELBO / IWAE evaluation).
    takes_step: the loss reads the training step (AnnealedVAE's capacity).
    extra_params: ``(key, model) -> {name: params}`` trained beside the
      encoder and decoder, or None.
    extra_optimizers: the extra parameter groups that take their own
      optimizer (e.g. "discriminator"; the experiment layer reads each from
      its config section ``<name>_optim``).
    combine_optimizers: ``(vae_optimizer, {group: optimizer}) -> optimizer``
      joining them into one optax transformation, or None.
    gaussian_only: the loss's estimator assumes the Gaussian posterior and
      the N(0, I) prior (beta-TCVAE's log q(z), DIP-VAE's covariance): other
      posterior families and priors are refused (``check_model``).
    posterior_family: the one family the loss trains (JointVAE's), or "".
    conditional: the loss takes a conditional model's ``Labeled(x, y)``
      batches (``vae.conditioning``): the ELBO family and the IWAE; the
      others' estimators read images alone and refuse one (``check_model``).
  """
  name: str
  loss: Callable[..., Any]
  hparams: type = NoHparams
  reference: str = ""
  probabilistic: bool = True
  takes_step: bool = False
  extra_params: Callable[..., dict] | None = None
  extra_optimizers: tuple[str, ...] = ()
  combine_optimizers: Callable[..., optax.GradientTransformation] | None = None
  gaussian_only: bool = False
  posterior_family: str = ""
  conditional: bool = False

  def check_model(self, model) -> None:
    """Raises ValueError when the objective cannot train ``model`` (a family
    or prior its estimator does not cover), naming both."""
    if self.gaussian_only:
      model_lib.require_gaussian(model, f"objective {self.name!r} ({self.reference})")
    if model.conditioning is not None and not self.conditional:
      raise ValueError(f"objective {self.name!r} does not take a conditional model's labels; "
                       "a conditional VAE (model.num_classes > 0) trains with "
                       f"{_conditional_names()} (set objective to one, or num_classes=0)")
    needs = model.posterior.requires_objective
    if needs and needs != self.name:
      raise ValueError(f"the {model.posterior.name!r} posterior is trained by the objective "
                       f"{needs!r} only, got objective {self.name!r} (set objective={needs!r})")
    if self.posterior_family and model.posterior.name != self.posterior_family:
      raise ValueError(f"objective {self.name!r} ({self.reference}) trains the "
                       f"{self.posterior_family!r} posterior family, got the "
                       f"{model.posterior.name!r} posterior (set "
                       f"model.posterior_family={self.posterior_family!r})")

  def hparam_names(self) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(self.hparams))

  def defaults(self) -> dict[str, Any]:
    """The paper's hyperparameters: {name: default}."""
    return dataclasses.asdict(self.hparams())

  def make_hparams(self, values: Mapping[str, Any] | None = None):
    """The hyperparameter dataclass from ``values`` (missing ones: defaults).

    Raises:
      ValueError: an unknown name (listing the known ones) or a bad value.
    """
    values = dict(values or {})
    unknown = sorted(set(values) - set(self.hparam_names()))
    if unknown:
      raise ValueError(f"objective {self.name!r} has no hyperparameter(s) {unknown}; "
                       f"its hyperparameters are {list(self.hparam_names())}")
    return self.hparams(**values)

  def bind(self, **values) -> "BoundObjective":
    """``BoundObjective`` with checked hyperparameters (defaults filled in)."""
    return BoundObjective(self, self.make_hparams(values))


@dataclasses.dataclass(frozen=True)
class BoundObjective:
  """An objective with its hyperparameters: call it as
  ``loss(params, batch, key, *, model, step=None) -> (loss, aux)``."""
  record: Objective
  hparams: Any

  @property
  def name(self) -> str:
    return self.record.name

  @functools.cached_property
  def _loss(self):
    return functools.partial(self.record.loss, **dataclasses.asdict(self.hparams))

  def __call__(self, params, batch, key, *, model, step=None):
    self.record.check_model(model)          # at trace time: free under jit
    if self.record.takes_step:
      return self._loss(params, batch, key, model=model, step=step)
    return self._loss(params, batch, key, model=model)

  def replace(self, **values) -> "BoundObjective":
    """The same objective with some hyperparameters changed (checked)."""
    return self.record.bind(**{**dataclasses.asdict(self.hparams), **values})

  def init_extra_params(self, key, model) -> dict[str, Any]:
    """{} or the extra parameters the objective trains."""
    return self.record.extra_params(key, model) if self.record.extra_params else {}

  def make_optimizer(self, vae_optimizer: optax.GradientTransformation,
                     extra: Mapping[str, optax.GradientTransformation] | None = None
                     ) -> optax.GradientTransformation:
    """One optax transformation for all parameters: ``vae_optimizer``, joined
    with the objective's own optimizers (``extra``: {group: optimizer}, the
    groups of ``record.extra_optimizers``)."""
    if self.record.combine_optimizers is None:
      return vae_optimizer
    missing = [s for s in self.record.extra_optimizers if s not in (extra or {})]
    if missing:
      raise ValueError(f"objective {self.name!r} needs optimizer(s) for {missing}")
    return self.record.combine_optimizers(vae_optimizer, dict(extra or {}))


# ------------------------------------------------------- hyperparameter checks
def check_nonnegative(name: str, value) -> None:
  if not float(value) >= 0:
    raise ValueError(f"{name} must be >= 0, got {value}")


check_int_at_least = checks.check_int_at_least   # the objectives' modules call it from here


def set_field(hparams, name: str, value) -> None:
  """Replaces a field of a frozen hyperparameter dataclass in ``__post_init__``
  (to store a checked, converted value)."""
  object.__setattr__(hparams, name, value)


def check_choice(name: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def _conditional_names() -> list[str]:
  from vae import objectives   # the registry (imports this module)
  return sorted(n for n, r in objectives.REGISTRY.items() if r.conditional)
