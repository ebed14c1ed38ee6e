"""The four pure functions of a VAE: encode, reparameterize, decode, elbo.

Each works on ONE example; a batch is ``jax.vmap`` over examples with one key
each (``jax.random.split(key, batch)``), docs/design.md, contract 1. Every function
checks its input's shape against the model when it is traced (free under
jit): an example that is not exactly ``data_shape`` (a missing channel axis,
which would broadcast, or a whole batch passed without vmap, which would sum
over it) is a ValueError naming the expected and the received shape. ``Model`` is a
frozen, hashable description (networks, likelihood, shapes) that is passed as
a static keyword, so the functions jit with ``static_argnames="model"`` or by
closing over it.

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, Eq. 3 (ELBO),
  Eq. 7 (SGVB estimator with analytic KL), Eq. 10 (Gaussian reparameterisation).
  Rezende, Mohamed & Wierstra (2014), Sec. 3.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae import conditioning as cond_lib
from vae import distributions as dist
from vae import networks
from vae import posteriors as posteriors_lib
from vae import priors as priors_lib

Params = Any

# One grey level of an 8-bit image, (1/255)^2, as a log-variance: the floor of
# a learned Gaussian observation variance (the data are not known finer).
MIN_OBS_LOGVAR = 2.0 * math.log(1.0 / 255.0)


@dataclasses.dataclass(frozen=True)
class Model:
  """Static description of an encoder/decoder pair.

  Attributes:
    encoder: flax module, x -> (mean [D], logvar [D] or [1]).
    decoder: flax module, z -> decoder output of ``data_shape``.
    data_shape: shape of one example, e.g. (28, 28, 1).
    latent_dim: D.
    likelihood: "bernoulli" (binary data; decoder emits logits),
      "cross_entropy" ([0, 1] targets; logits; not a normalised likelihood,
      see ``vae.distributions.cross_entropy_log_prob``) or "gaussian" (means).
    obs_logvar: Gaussian observation log-variance: the fixed value, or the
      initial value of a learned one.
    obs_variance: Gaussian only: "fixed", or learned, "shared" (one value)
      or "per_pixel" (one per element of ``data_shape``). A learned
      log-variance is the parameter ``params["obs_logvar"]`` and the decoder
      output becomes [*data_shape, 2] (mean, log-variance).
    min_obs_logvar: floor of a learned log-variance (it is ``min +
      softplus(raw)``): without one, a pixel that is constant in the data
      (a black background) drives its variance to 0 and the likelihood to
      +inf.
    posterior: the family of q(z|x) built on the encoder's Gaussian
      (``vae.posteriors``: the Gaussian itself, or a flow on it).
    prior: p(z) (``vae.priors``: N(0, I), or the VampPrior).
    conditioning: a class label read by both networks (a conditional VAE,
      ``vae.conditioning``), or None. A conditional model's functions take
      the label as ``y`` and its batches are ``Labeled(x, y)``.
  """
  encoder: nn.Module
  decoder: nn.Module
  data_shape: tuple[int, ...]
  latent_dim: int
  likelihood: str = "bernoulli"
  obs_logvar: float = 0.0
  obs_variance: str = "fixed"
  min_obs_logvar: float = MIN_OBS_LOGVAR
  posterior: posteriors_lib.Posterior = posteriors_lib.Gaussian()
  prior: priors_lib.Prior = priors_lib.StandardNormal()
  conditioning: cond_lib.Conditioning | None = None

  @property
  def closed_form_kl(self) -> bool:
    """The KL of the posterior family to the prior has a closed form, per
    latent (the Gaussian, or JointVAE's code, with the standard prior)."""
    return self.prior.standard_normal and self.posterior.has_closed_form_kl

  @property
  def gaussian(self) -> bool:
    """q(z|x) is the encoder's Gaussian and p(z) = N(0, I): what the
    estimators of beta-TCVAE, DIP-VAE and the KL decomposition assume."""
    return self.posterior.gaussian and self.prior.standard_normal

  @property
  def learned_variance(self) -> bool:
    return self.likelihood == "gaussian" and self.obs_variance != "fixed"

  @property
  def decoder_out_shape(self) -> tuple[int, ...]:
    """Shape of ``decode``'s output for one latent: ``data_shape``, plus a
    last axis of 2 (mean, log-variance) for a learned Gaussian variance."""
    return tuple(self.data_shape) + ((2,) if self.learned_variance else ())


def _check_values(latent_dim, likelihood, obs_variance, obs_logvar, min_obs_logvar,
                  posterior, compute_dtype) -> None:
  """``make_model``'s checks of values outside their domains (ValueError)."""
  if int(latent_dim) < 1:
    raise ValueError(f"latent_dim must be a positive integer, got {latent_dim}")
  if likelihood not in dist.LIKELIHOODS:
    raise ValueError(
        f"likelihood must be one of {dist.LIKELIHOODS}, got {likelihood!r}")
  if obs_variance not in dist.OBS_VARIANCES:
    raise ValueError(f"obs_variance must be one of {dist.OBS_VARIANCES}, got {obs_variance!r}")
  if obs_variance != "fixed" and likelihood != "gaussian":
    raise ValueError(f"obs_variance={obs_variance!r} (a learned variance) needs "
                     f"likelihood='gaussian', got likelihood={likelihood!r}")
  if obs_variance != "fixed" and not float(obs_logvar) > float(min_obs_logvar):
    raise ValueError(f"obs_logvar (the learned variance's initial value, {obs_logvar}) must "
                     f"be above min_obs_logvar ({min_obs_logvar})")
  if posterior not in ("diagonal", "isotropic"):
    raise ValueError(
        f"posterior must be 'diagonal' or 'isotropic', got {posterior!r}")
  if compute_dtype not in ("float32", "bfloat16"):
    raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")


def make_model(*, architecture: str, data_shape: Sequence[int], latent_dim: int,
               likelihood: str = "bernoulli", posterior: str = "diagonal",
               encoder_hidden: Sequence[int] = (200, 200),
               decoder_hidden: Sequence[int] = (200, 200),
               activation: str = "tanh", obs_logvar: float = 0.0,
               obs_variance: str = "fixed", min_obs_logvar: float = MIN_OBS_LOGVAR,
               compute_dtype: str = "float32", conv_impl: str = "auto",
               posterior_family: str = "gaussian", posterior_hparams=None,
               prior: str = "standard_normal", prior_hparams=None,
               num_classes: int = 0) -> Model:
  """Builds a ``Model`` from plain values (as found in a config).

  Args:
    architecture: "mlp" or "conv" (the latter needs 64x64xC data).
    data_shape: shape of one example.
    latent_dim: number of latent dimensions D (>= 1).
    likelihood: "bernoulli" (binary data), "cross_entropy" ([0, 1] data, as
      disentanglement_lib trains every data set) or "gaussian".
    posterior: "diagonal" or "isotropic" (one shared variance per example).
    encoder_hidden, decoder_hidden, activation: MLP settings.
    obs_logvar: observation log-variance for the Gaussian likelihood (the
      initial value when it is learned).
    obs_variance: "fixed", "shared" or "per_pixel" (Gaussian only; see
      ``Model``).
    min_obs_logvar: floor of a learned log-variance.
    compute_dtype: "float32", or "bfloat16" for mixed precision on GPU/TPU
      (matmuls and convs in bf16; parameters, the likelihood and the KL stay
      float32).
    conv_impl: the conv architecture's convolutions: "gemm" (``vae.conv``'s
      GEMM forms, fast forward and backward on XLA:CPU), "xla" (XLA's own
      convolution: cuDNN on GPU, the TPU's) or "auto" (GEMM on a CPU, XLA
      elsewhere). The parameters are the same, so a checkpoint trained with
      one runs with the other.
    posterior_family, posterior_hparams: the family of q(z|x) on the
      encoder's Gaussian (``vae.posteriors``: "gaussian", "planar") and its
      hyperparameters (the rest at their defaults).
    prior, prior_hparams: p(z) (``vae.priors``: "standard_normal",
      "vampprior") and its hyperparameters.
    num_classes: > 0 builds a conditional VAE on labels in [0, num_classes)
      (``vae.conditioning``); 0 none.

  Returns:
    A ``Model``.

  Raises:
    ValueError: for any value outside its domain, naming it.
  """
  data_shape = tuple(int(s) for s in data_shape)
  _check_values(latent_dim, likelihood, obs_variance, obs_logvar, min_obs_logvar, posterior,
                compute_dtype)
  dt = compute_dtype
  if architecture == "mlp":
    networks.get_activation(activation)
    if any(int(w) < 1 for w in tuple(encoder_hidden) + tuple(decoder_hidden)):
      raise ValueError("hidden widths must be positive integers, got "
                       f"{tuple(encoder_hidden)} / {tuple(decoder_hidden)}")
    enc = networks.MLPEncoder(int(latent_dim), tuple(encoder_hidden),
                              activation, posterior, dt, len(data_shape))
    dec = networks.MLPDecoder(data_shape, tuple(decoder_hidden), activation, dt)
  elif architecture == "conv":
    if len(data_shape) != 3 or data_shape[:2] != (64, 64):
      raise ValueError("the conv architecture expects data_shape (64, 64, C), "
                       f"got {data_shape}")
    impl = networks.resolve_conv_impl(conv_impl)
    enc = networks.ConvEncoder(int(latent_dim), posterior, dt, impl)
    dec = networks.ConvDecoder(data_shape, dt, impl)
  else:
    raise ValueError(f"architecture must be 'mlp' or 'conv', got {architecture!r}")
  family = posteriors_lib.make(posterior_family, **dict(posterior_hparams or {}))
  prior_record = priors_lib.make(prior, **dict(prior_hparams or {}))
  if not family.has_log_prob and not (family.has_closed_form_kl and prior_record.standard_normal):
    raise ValueError(f"the {family.name!r} posterior gives no log q(z|x), so its KL has only "
                     f"the closed form to the standard prior: prior must be 'standard_normal', "
                     f"got {prior!r}")
  conditioning = None
  if num_classes:
    conditioning = cond_lib.Conditioning(num_classes)
    if not prior_record.standard_normal:
      raise ValueError(f"a conditional VAE (num_classes={num_classes}) has the prior N(0, I) "
                       f"whatever the label; prior {prior!r} is not conditioned on it: set "
                       "prior='standard_normal' or num_classes=0")
  return Model(enc, dec, data_shape, int(latent_dim), likelihood,
               float(obs_logvar), obs_variance, float(min_obs_logvar), family, prior_record,
               conditioning)


def _shape(x) -> tuple[int, ...]:
  return tuple(int(d) for d in jnp.shape(x))


def check_example(x, model: Model, fn: str) -> None:
  """Raises ValueError unless ``x`` is one example of ``model.data_shape``.

  Runs on shapes only, so it costs nothing under jit. The message names
  ``fn``, the expected and the received shape, and the likely fix.
  """
  got, want = _shape(x), tuple(model.data_shape)
  if got == want:
    return
  hint = ""
  if got[1:] == want:
    hint = (f"; this is a batch of {got[0]}: jax.vmap over its examples, or use "
            "the batch functions (encode_batch, batch_elbo_terms, an objective)")
  elif got == want[:-1] and want[-1] == 1:
    hint = "; add the channel axis (x[..., None])"
  raise ValueError(f"{fn}: x must be ONE example of shape {want} (the model's "
                   f"data_shape), got shape {got}{hint}")


def check_batch(batch, model: Model, fn: str) -> None:
  """Raises ValueError unless ``batch`` is [B, *model.data_shape], B >= 1."""
  got, want = _shape(batch), tuple(model.data_shape)
  if len(got) == len(want) + 1 and got[1:] == want and got[0] >= 1:
    return
  hint = ""
  if got == want:
    hint = "; this is one example: add a batch axis (x[None])"
  elif len(got) == len(want) and got[1:] == want[:-1] and want[-1] == 1:
    hint = "; add the channel axis (batch[..., None])"
  raise ValueError(f"{fn}: the batch must have shape [B, {', '.join(map(str, want))}] "
                   f"(B >= 1 examples of the model's data_shape {want}), got shape "
                   f"{got}{hint}")


def check_latent(z, model: Model, fn: str) -> None:
  """Raises ValueError unless ``z`` is [..., latent_dim]."""
  got = _shape(z)
  if got and got[-1] == model.latent_dim:
    return
  raise ValueError(f"{fn}: z must have shape [..., {model.latent_dim}] (latent_dim "
                   f"{model.latent_dim} last), got shape {got}")


@functools.partial(jax.jit, static_argnames="model")
def _init_networks(key: jax.Array, x: jax.Array, z: jax.Array, *, model: Model) -> Params:
  """The networks' parameters, set up by one compiled function (op by op,
  a conv model's initialisation compiled some 800 small programs). The
  example input and code are arguments, not constants: XLA would fold the
  forward pass on constant zeros at compile time (10 s for the conv model);
  as arguments the unused forward pass is simply dropped."""
  k_enc, k_dec = jax.random.split(key)
  if model.conditioning is None:
    return {"encoder": model.encoder.init(k_enc, x)["params"],
            "decoder": model.decoder.init(k_dec, z)["params"]}
  y = model.conditioning.one_hot(0)
  return {"encoder": model.encoder.init(k_enc, x, y)["params"],
          "decoder": model.decoder.init(k_dec, z, y)["params"]}


def init_params(key: jax.Array, model: Model, examples=None) -> Params:
  """Initialises {'encoder': ..., 'decoder': ...} parameters, plus
  ``obs_logvar`` (raw: the log-variance is ``min_obs_logvar +
  softplus(raw)``, starting at ``model.obs_logvar``) for a learned Gaussian
  variance: shape () when shared, ``data_shape`` per pixel; plus
  ``posterior`` and ``prior`` for a family or prior with parameters of its
  own (a flow's, the VampPrior's pseudo-inputs).

  ``examples``: the ``model.prior.init_examples`` training examples
  [n, *data_shape] that a prior starting from data is given (the VampPrior
  with ``init="data"``; ``vae.train`` draws them from its source); None for
  every other prior.

  Raises:
    ValueError: the prior needs examples and none (or the wrong shape) came.
  """
  params = dict(_init_networks(key, jnp.zeros(model.data_shape, jnp.float32),
                               jnp.zeros((model.latent_dim,), jnp.float32), model=model))
  posterior = model.posterior.init_params(jax.random.fold_in(key, 1), model.latent_dim)
  if posterior is not None:
    params["posterior"] = posterior
  prior = model.prior.init_params(jax.random.fold_in(key, 2), model.data_shape,
                                  model.latent_dim, examples=examples)
  if prior is not None:
    params["prior"] = prior
  if model.learned_variance:
    shape = () if model.obs_variance == "shared" else tuple(model.data_shape)
    # Inverse softplus of (initial - floor).
    raw = math.log(math.expm1(model.obs_logvar - model.min_obs_logvar))
    params["obs_logvar"] = jnp.full(shape, raw, jnp.float32)
  return params


def obs_logvar(params: Params, model: Model) -> jax.Array:
  """The Gaussian observation log-variance: the fixed ``model.obs_logvar``,
  or the learned one (scalar, or ``data_shape`` per pixel)."""
  if not model.learned_variance:
    return jnp.asarray(model.obs_logvar, jnp.float32)
  return model.min_obs_logvar + jax.nn.softplus(params["obs_logvar"])


def encode(params: Params, x: jax.Array, *, model: Model, y=None):
  """q(z|x) for one example (q(z|x, y) for a conditional model).

  Args:
    params: model parameters.
    x: [*data_shape] one example.
    model: the static ``Model``.
    y: a conditional model's integer label (scalar); None otherwise.

  Returns:
    (mean [D], logvar [D] or [1]) of the mean-field Gaussian posterior.

  Raises:
    ValueError: ``x`` is not of shape ``model.data_shape``.
  """
  check_example(x, model, "encode")
  return _encode(params, x, model, _label(y, model, "encode", ()))


def _label(y, model: Model, fn: str, lead: tuple):
  """The one-hot label the networks read (None for a model without
  conditioning), after checking that ``y`` is there exactly when the model
  is conditional and has the leading shape ``lead`` of its input."""
  cond = model.conditioning
  if cond is None:
    if y is not None:
      raise ValueError(f"{fn}: got a label y but the model has no conditioning (build it "
                       "with num_classes > 0 for a conditional VAE)")
    return None
  if y is None:
    raise ValueError(f"{fn}: this model is conditional ({cond.num_classes} classes): pass "
                     "its integer label y")
  if _shape(y) != tuple(lead):
    raise ValueError(f"{fn}: y must be integer labels of shape {tuple(lead)} (one per "
                     f"example), got shape {_shape(y)}")
  return cond.one_hot(y)


def _apply(module, params, inp, y):
  return module.apply({"params": params}, inp) if y is None else (
      module.apply({"params": params}, inp, y))


def _encode(params: Params, x: jax.Array, model: Model, y=None):
  mean, logvar = _apply(model.encoder, params["encoder"], x, y)
  # Densities are computed in float32 whatever the compute dtype.
  return mean.astype(jnp.float32), logvar.astype(jnp.float32)


def encode_batch(params: Params, x: jax.Array, *, model: Model, y=None):
  """``encode`` for a batch [B, *data_shape] in one application of the network.

  The same function as ``jax.vmap(encode)`` (flax layers carry leading axes
  through); training uses it because under ``jax.grad`` each weight gradient
  is then one matrix product over the whole batch, where the vmapped form
  leaves XLA a per-example product and a sum.

  Returns:
    (mean [B, D], logvar [B, D] or [B, 1]).

  Raises:
    ValueError: ``x`` is not of shape [B, *model.data_shape].
  """
  check_batch(x, model, "encode_batch")
  return _encode(params, x, model, _label(y, model, "encode_batch", _shape(x)[:1]))


def decode_batch(params: Params, z: jax.Array, *, model: Model, y=None) -> jax.Array:
  """``decode`` for a batch of latents [B, D]: [B, *model.decoder_out_shape]
  (see ``encode_batch``); ``y`` [B] a conditional model's labels."""
  if len(_shape(z)) != 2:
    raise ValueError(f"decode_batch: z must have shape [B, {model.latent_dim}], got "
                     f"shape {_shape(z)}")
  check_latent(z, model, "decode_batch")
  return _decode(params, z, model, _label(y, model, "decode_batch", _shape(z)[:1]))


def reparameterize(key: jax.Array, mean: jax.Array, logvar: jax.Array,
                   num_samples: int | None = None) -> jax.Array:
  """z = mean + sigma * eps (Kingma & Welling 2014, Eq. 10); see
  ``vae.distributions.reparameterized_sample``."""
  return dist.reparameterized_sample(key, mean, logvar, num_samples)


def decode(params: Params, z: jax.Array, *, model: Model, y=None) -> jax.Array:
  """p(x|z) parameters for one latent: logits (Bernoulli, cross-entropy) or
  means (Gaussian); with a learned Gaussian variance, means and
  log-variances stacked on a last axis ([*data_shape, 2]).

  Args:
    params: model parameters.
    z: [D] (or [..., D]: leading axes are carried through by flax Dense).
    model: the static ``Model``.
    y: a conditional model's integer label (scalar: one example, whatever
      z's leading axes); None otherwise.

  Returns:
    [*model.decoder_out_shape] decoder output ([..., *decoder_out_shape]
    for leading axes).

  Raises:
    ValueError: the last axis of ``z`` is not ``model.latent_dim``.
  """
  check_latent(z, model, "decode")
  return _decode(params, z, model, _label(y, model, "decode", ()))


def _decode(params: Params, z: jax.Array, model: Model, y=None) -> jax.Array:
  out = _apply(model.decoder, params["decoder"], z, y).astype(jnp.float32)
  if model.learned_variance:
    out = jnp.stack([out, jnp.broadcast_to(obs_logvar(params, model), out.shape)], axis=-1)
  return out


def likelihood_mean(decoder_out: jax.Array, model: Model) -> jax.Array:
  """E[x|z] from the decoder output (``decode``): sigmoid of logits, or the
  Gaussian mean; [..., *data_shape]."""
  return dist.mean_of_likelihood(model.likelihood, decoder_out, model.learned_variance)


def log_likelihood(x: jax.Array, decoder_out: jax.Array, *,
                   model: Model) -> jax.Array:
  """log p(x|z) of one example given the decoder output; scalar.

  Raises:
    ValueError: ``x`` is not of shape ``model.data_shape``, or
      ``decoder_out`` not of ``model.decoder_out_shape``.
  """
  check_example(x, model, "log_likelihood")
  if _shape(decoder_out) != model.decoder_out_shape:
    raise ValueError(f"log_likelihood: decoder_out must have shape {model.decoder_out_shape} "
                     f"(one example), got shape {_shape(decoder_out)}")
  return dist.log_likelihood(model.likelihood, x, decoder_out, model.obs_logvar,
                             model.learned_variance)


def elbo_terms(params: Params, x: jax.Array, key: jax.Array, *,
               model: Model, y=None, evaluation: bool = False) -> dict[str, jax.Array]:
  """One-sample SGVB terms for one example (Kingma & Welling 2014, Eq. 7);
  ``evaluation`` as in ``batch_elbo_terms``.

  Returns:
    dict with scalars ``log_likelihood`` (E_q log p(x|z), one sample), ``kl``
    (KL(q(z|x) || p(z)): in closed form for the Gaussian posterior and the
    N(0, I) prior, else the one-sample estimate ``log q(z|x) - log p(z)``),
    ``elbo`` (their difference), and ``kl_per_dim`` [D] (the encoder
    Gaussian's closed-form KL to N(0, 1) per latent: the KL's terms when
    ``model.closed_form_kl``, otherwise a diagnostic of which latents the
    encoder uses, which does not sum to ``kl``); also the encoder's ``mean``
    [D], ``logvar`` [D] (broadcast for an isotropic q) and the sample ``z``
    [D], which the batch-level objectives (beta-TCVAE, FactorVAE, DIP-VAE)
    need.

  Raises:
    ValueError: ``x`` is not one example of ``model.data_shape``.
  """
  check_example(x, model, "elbo")
  mean, logvar = encode(params, x, model=model, y=y)
  z, log_q = sample_posterior(params, key, mean, logvar, model=model, evaluation=evaluation)
  ll = log_likelihood(x, decode(params, z, model=model, y=y), model=model)
  kl_per_dim = _kl_per_dim(mean, logvar, model)
  if model.closed_form_kl:
    kl = jnp.sum(kl_per_dim)
  else:
    kl = log_q - prior_log_prob(params, model=model)(z, jax.random.fold_in(key, 1))
  return {"elbo": ll - kl, "log_likelihood": ll, "kl": kl,
          "kl_per_dim": kl_per_dim, "mean": mean,
          "logvar": jnp.broadcast_to(logvar, mean.shape), "z": z}


def batch_elbo_terms(params: Params, batch: jax.Array, key: jax.Array, *,
                     model: Model, evaluation: bool = False) -> dict[str, jax.Array]:
  """``elbo_terms`` for every example of a batch, one key each.

  The same numbers as ``jax.vmap(elbo_terms)`` (with the same
  ``evaluation``) with keys ``jax.random.split(key, B)``; the networks run once on the whole batch
  (``encode_batch``, ``decode_batch``), the per-example math under vmap.

  Args:
    params: model parameters.
    batch: [B, *data_shape]; a conditional model's ``Labeled(x, y)``.
    key: PRNG key, split into B keys.
    model: the static ``Model``.
    evaluation: draw z with the family's ``evaluation_sample`` (the code the
      model decodes, not a training relaxation of it: JointVAE's category),
      so that ``elbo`` is a bound on log p(x); the same draw for every other
      family.

  Returns:
    dict of per-example arrays: elbo [B], log_likelihood [B], kl [B],
    kl_per_dim [B, D], mean [B, D], logvar [B, D], z [B, D] (as
    ``elbo_terms``).

  Raises:
    ValueError: ``batch`` is not of shape [B, *model.data_shape] (every
      ELBO-family objective computes its terms here, so this is their check).
  """
  fn = "batch_elbo_terms (the ELBO-family objectives)"
  batch, y = cond_lib.split_batch(batch, model, fn)
  check_batch(batch, model, fn)
  keys = jax.random.split(key, batch.shape[0])
  mean, logvar = encode_batch(params, batch, model=model, y=y)
  # (The closed-form path drops log q: jit removes its computation.)
  z, log_q = jax.vmap(lambda k, m, lv: sample_posterior(params, k, m, lv, model=model,
                                                        evaluation=evaluation))(
      keys, mean, logvar)
  out = decode_batch(params, z, model=model, y=y)
  ll = jax.vmap(lambda x, o: log_likelihood(x, o, model=model))(batch, out)
  kl_per_dim = jax.vmap(lambda m, lv: _kl_per_dim(m, lv, model))(mean, logvar)
  if model.closed_form_kl:
    kl = jnp.sum(kl_per_dim, axis=-1)
  else:
    prior_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    kl = log_q - prior_log_prob_batch(params, model=model)(z, prior_keys)
  return {"elbo": ll - kl, "log_likelihood": ll, "kl": kl, "kl_per_dim": kl_per_dim,
          "mean": mean, "logvar": jnp.broadcast_to(logvar, mean.shape), "z": z}


def elbo(params: Params, x: jax.Array, key: jax.Array, *,
         model: Model, y=None) -> jax.Array:
  """Single-sample ELBO estimate for one example (nats; higher is better).

  ``log p(x|z) - KL(q(z|x) || N(0, I))`` with ``z ~ q(z|x)`` reparameterised
  and the KL in closed form (Kingma & Welling 2014, Eq. 7).

  Args:
    params: model parameters.
    x: [*data_shape] one example.
    key: PRNG key for the one posterior sample.
    model: the static ``Model``.

  Returns:
    Scalar ELBO.
  """
  return elbo_terms(params, x, key, model=model, y=y)["elbo"]


# ------------------------------------------------ the posterior and the prior
def sample_posterior(params: Params, key: jax.Array, mean: jax.Array, logvar: jax.Array, *,
                     model: Model, num_samples: int | None = None, evaluation: bool = False):
  """(z, log q(z|x)) from the model's posterior family for one example, given
  the encoder's Gaussian (``encode``): z [D] and a scalar, or [k, D] and [k]
  with ``num_samples=k``; with ``evaluation``, the family's
  ``evaluation_sample`` (``batch_elbo_terms``)."""
  fam = model.posterior
  draw = fam.evaluation_sample if evaluation else fam.sample
  return draw(key, mean, logvar, params.get("posterior"), num_samples)


def prior_log_prob(params: Params, *, model: Model):
  """The function (z [D], key) -> log p(z) of the model's prior (the key is
  used by a stochastic prior only, whose value is a one-sample estimate, see
  ``vae.priors.base``); what depends on the parameters alone (the
  VampPrior's encoded pseudo-inputs) is computed once, when this is called,
  not per example."""
  fn = model.prior.log_prob_fn(params.get("prior"),
                               lambda x: encode_batch(params, x, model=model))
  return fn if model.prior.stochastic else (lambda z, key=None: fn(z))


def prior_log_prob_batch(params: Params, *, model: Model):
  """``prior_log_prob`` for a batch: (z [N, D], keys [N]) -> log p(z) [N]
  (the VampPrior's as one mixture density with its gradient written by
  hand: ``vae.distributions.gaussian_mixture_log_prob``)."""
  return model.prior.log_prob_batch_fn(params.get("prior"),
                                       lambda x: encode_batch(params, x, model=model))


def sample_prior(params: Params, key: jax.Array, num: int, *, model: Model) -> jax.Array:
  """``num`` draws from the model's prior, [num, D] (for the standard prior,
  the posterior family's: N(0, I), with uniform codes for a discrete part)."""
  if model.prior.standard_normal:
    return model.posterior.standard_prior_sample(key, num, model.latent_dim,
                                                 params.get("posterior"))
  return model.prior.sample(key, num, params.get("prior"),
                            lambda x: encode_batch(params, x, model=model), model.latent_dim)


def log_importance_weights(params: Params, x: jax.Array, key: jax.Array, num_samples: int, *,
                           model: Model, log_prior=None, y=None):
  """log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x) for k = ``num_samples``
  draws z_j ~ q(z|x) of one example (Burda et al. 2016, Eq. 8), with any
  posterior family and prior.

  Args:
    params, x, key, model: as ``elbo``.
    num_samples: k.
    log_prior: ``prior_log_prob_batch(params, model=model)`` when the caller
      has it (computed once for a batch); None computes it here.
    y: a conditional model's label (the weights of log p(x|y)).

  Returns:
    (log w [k], log p(x|z_j) [k], log q(z_j|x) - log p(z_j) [k]).
  """
  if not model.posterior.has_log_prob:
    raise ValueError(f"importance weights need log q(z|x), which the "
                     f"{model.posterior.name!r} posterior does not give (a relaxed discrete "
                     "code has no density to weigh by)")
  mean, logvar = encode(params, x, model=model, y=y)
  if model.gaussian and log_prior is None:
    # The Gaussian's program as it was, op for op: the IWAE's gradients
    # accumulate in the same order, so training is bit for bit as before.
    z = reparameterize(key, mean, logvar, num_samples)
    out = decode(params, z, model=model, y=y)
    ll = jax.vmap(lambda o: log_likelihood(x, o, model=model))(out)
    log_p = jax.vmap(dist.standard_normal_log_prob)(z)
    log_q = jax.vmap(lambda zz: dist.gaussian_log_prob(zz, mean, logvar))(z)
    return ll + log_p - log_q, ll, log_q - log_p
  z, log_q = sample_posterior(params, key, mean, logvar, model=model, num_samples=num_samples)
  out = decode(params, z, model=model, y=y)
  ll = jax.vmap(lambda o: log_likelihood(x, o, model=model))(out)
  prior_keys = jax.random.split(jax.random.fold_in(key, 1), num_samples)
  log_p = (log_prior or prior_log_prob_batch(params, model=model))(z, prior_keys)
  return ll + log_p - log_q, ll, log_q - log_p


def _kl_per_dim(mean, logvar, model: Model):
  """The KL per latent in closed form where the family has one; otherwise
  the encoder Gaussian's KL to N(0, 1) per latent (a diagnostic)."""
  if model.posterior.has_closed_form_kl:
    return model.posterior.kl_per_dim(mean, logvar)
  return dist.kl_to_standard_normal_per_dim(mean, logvar)


def posterior_code(params: Params, x: jax.Array, *, model: Model, y=None) -> jax.Array:
  """The deterministic code the decoder reads for one example [D]: the
  encoder's mean, through the family's ``code`` (a flow's image of it, the
  quantised vectors, a one-hot category)."""
  mean, logvar = encode(params, x, model=model, y=y)
  return model.posterior.code(mean, logvar, params.get("posterior"))


def require_gaussian(model: Model, who: str) -> None:
  """Raises ValueError unless the model's posterior is the encoder's Gaussian
  and its prior N(0, I): ``who`` (an objective, an estimator) assumes both."""
  if not model.gaussian:
    raise ValueError(
        f"{who} assumes the Gaussian posterior and the standard normal prior (its "
        f"estimator uses their densities in closed form); this model has the "
        f"{model.posterior.name!r} posterior and the {model.prior.name!r} prior")
