"""Evaluation of a trained model on a data set.

* ``dataset_elbo``: mean single-sample ELBO and its two terms.
* ``iwae_log_likelihood``: log p(x) estimated with k importance samples
  (Burda et al. 2016, Eq. 8 with large k, as in their Sec. 5: k = 5000),
  computed in chunks of samples with a running log-sum-exp, so memory is
  bounded by ``batch_size * chunk_size`` decoder outputs whatever k is.
* ``active_units``: A_u = Cov_x(E_{q(u|x)}[u]) > 0.01 (Burda et al. 2016, Sec. 5.2).
* ``kl_per_dimension``: mean closed-form KL(q(z_i|x) || N(0, 1)) per dimension.
* ``kl_decomposition``: index-code MI, total correlation and dimension-wise KL
  (Chen et al. 2018, Eq. 2) with both minibatch estimators, for any model.
* ``diagnostics``: all of the above that describe the code, in one dict.
* ``evaluate_params``: the final evaluation of a run (``EvalSpec`` says how),
  and ``periodic_eval_fn``, the evaluation logged during training; both
  assemble their figures in one function.

All functions take host arrays [N, *data_shape] and work through them with
``map_batches``: one jitted per-batch function per estimator, with the
parameters an argument, so that it compiles once per model and settings and
evaluating new parameters compiles nothing. Results are Python floats (or
lists).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import resource
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from vae import checks
from vae import interrupt
from vae import conditioning as cond_lib
from vae import model as model_lib
from vae import parallel
from vae.objectives import batch_decomposition, batch_elbo_terms
from vae.objectives.autoencoders import reconstruction_log_likelihood


def num_examples(data) -> int:
  """N of an evaluation data set: an array [N, ...], or a conditional
  model's ``Labeled(x [N, ...], y [N])``."""
  return int(np.shape(data.x if isinstance(data, cond_lib.Labeled) else data)[0])


def as_host(data):
  """An evaluation data set as host arrays: ``np.asarray`` of an array (or
  a list of examples), each part of a ``Labeled`` set (only that pair is
  taken apart: any other sequence is one array of examples)."""
  if isinstance(data, cond_lib.Labeled):
    x, y = np.asarray(data.x), np.asarray(data.y)
    if y.shape != (x.shape[0],):
      raise ValueError(f"Labeled evaluation data: labels must have shape [N] beside images "
                       f"[N, ...], got labels {y.shape} and images {x.shape}")
    return cond_lib.Labeled(x, y)
  return np.asarray(data)


def batches(data, batch_size: int, mesh=None, drop_remainder: bool = False):
  """Yields (index, batch, valid) with the last batch padded to batch_size,
  so that every batch has one shape and is compiled once (or, with
  ``drop_remainder``, left out). With a mesh the batch size is rounded up to
  a multiple of its device count. ``data``: an array, or a pytree of arrays
  with one leading axis (``Labeled(x, y)``), batched alike."""
  if mesh is not None:
    batch_size = -(-int(batch_size) // mesh.size) * mesh.size
  n = num_examples(data)
  stop = n - n % batch_size if drop_remainder else n

  def padded(chunk):
    if chunk.shape[0] < batch_size:
      pad = np.zeros((batch_size - chunk.shape[0],) + chunk.shape[1:], chunk.dtype)
      chunk = np.concatenate([chunk, pad])
    return chunk

  for i, start in enumerate(range(0, stop, batch_size)):
    valid = min(batch_size, n - start)
    yield i, jax.tree.map(lambda a: padded(a[start:start + batch_size]), data), valid


def _bar(total: int, desc: str, progress: bool):
  """A progress bar over examples (examples done, rate, time left), or None."""
  if not progress:
    return None
  return tqdm(total=int(total), desc=desc, unit="ex", dynamic_ncols=True, mininterval=2.0)


REDUCTIONS = ("mean", "concat", "per_batch")


def map_batches(fn, params, data, *, batch_size: int, key=None, mesh=None,
                reduce: str = "concat", drop_remainder: bool = False, desc: str = "",
                progress: bool = False):
  """Applies a jitted per-batch function to ``data`` and reduces its outputs.

  Batches come from ``batches``: one shape, the last padded with zeros whose
  outputs are dropped (or left out with ``drop_remainder``), each split
  across ``mesh``'s devices; batch i gets the key ``fold_in(key, i)``.

  Args:
    fn: ``(params, batch[, key]) -> pytree of arrays``, jitted with the
      parameters an argument and its static settings bound (``functools.partial``
      of a module-level jitted function): new parameters reuse its program.
    params: model parameters (replicated on ``mesh`` if it has several devices).
    data: host array [N, *data_shape] (a conditional model's
      ``Labeled(x, y)`` of host arrays).
    batch_size: examples per call.
    key: PRNG key, or None for an ``fn`` that takes none.
    mesh: optional ``vae.parallel`` mesh.
    reduce: "mean": each output [B, ...] summed over examples in float64,
      batch after batch, and divided by N; "concat": the outputs of every
      example [N, ...]; "per_batch": each batch's output (a minibatch
      estimate), stacked [num_batches, ...].
    drop_remainder: leave out a partial last batch (for minibatch estimators,
      whose value depends on the batch size).
    desc, progress: a progress bar over examples labelled ``desc``.

  Returns:
    ``fn``'s output structure with each leaf reduced, as host arrays.
  """
  if reduce not in REDUCTIONS:
    raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
  data = as_host(data)
  n = num_examples(data)
  bar = _bar(n, desc, progress)
  total, parts, count = None, [], 0
  for i, batch, valid in batches(data, batch_size, mesh, drop_remainder):
    args = (params, parallel.shard_host_batch(batch, mesh))
    out = jax.tree.map(parallel.to_host, fn(*args) if key is None else
                       fn(*args, jax.random.fold_in(key, i)))
    if reduce == "mean":
      sums = jax.tree.map(lambda o: np.sum(o[:valid], axis=0, dtype=np.float64), out)
      total = sums if total is None else jax.tree.map(np.add, total, sums)
    else:
      parts.append(out if reduce == "per_batch" else jax.tree.map(lambda o: o[:valid], out))
    count += valid
    if bar is not None:
      bar.update(valid)
    interrupt.check()        # a SIGTERM the handler could not raise where it ran
  if bar is not None:
    bar.close()
  if count == 0:
    raise ValueError(f"no batch of {batch_size} in {n} examples")
  if reduce == "mean":
    return jax.tree.map(lambda s: s / count, total)
  join = np.concatenate if reduce == "concat" else np.stack
  return jax.tree.map(lambda *p: join(p), *parts)


@functools.partial(jax.jit, static_argnames="model")
def _elbo_batch(params, batch, key, *, model):
  t = batch_elbo_terms(params, cond_lib.as_float(batch), key, model=model, evaluation=True)
  return t["elbo"], t["log_likelihood"], t["kl"], t["kl_per_dim"]


def dataset_elbo(params, data, key, *, model, batch_size: int = 1000,
                 mesh=None, progress: bool = False) -> dict[str, float]:
  """Mean single-sample ELBO over ``data`` (Kingma & Welling 2014, Eq. 7),
  with z drawn by the family's ``evaluation_sample`` (a family trained
  through a relaxation, JointVAE, decodes its category: a bound on log p(x)).

  Args:
    params: model parameters.
    data: host array [N, *data_shape].
    key: PRNG key; batch i uses ``fold_in(key, i)``.
    model: the static ``Model``.
    batch_size: examples per jitted call.
    mesh: optional ``vae.parallel`` mesh: each batch is split across its
      devices (params must be replicated on it); the result is the same.
    progress: show a progress bar.

  Returns:
    dict: ``elbo``, ``log_likelihood`` (reconstruction term), ``kl`` (nats,
    means over examples) and ``kl_per_dim`` (list of D means).
  """
  elbo, ll, kl, kl_dim = map_batches(
      functools.partial(_elbo_batch, model=model), params, data, batch_size=batch_size,
      key=key, mesh=mesh, reduce="mean", desc="ELBO", progress=progress)
  return {"elbo": float(elbo), "log_likelihood": float(ll), "kl": float(kl),
          "kl_per_dim": [float(v) for v in kl_dim]}


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "chunk_size"))
def _iwae_batch(params, batch, key, *, model, num_samples: int, chunk_size: int):
  """log (1/k) sum_j w_j for each example of ``batch``; chunked over j."""
  num_chunks = -(-num_samples // chunk_size)

  # The prior's per-parameter work once per batch (None: the Gaussian's own program).
  log_prior = None if model.gaussian else model_lib.prior_log_prob_batch(params, model=model)

  def one(x, k, y=None):
    x = x.astype(jnp.float32)

    def chunk(carry, c):
      run_max, run_sum = carry
      lw = model_lib.log_importance_weights(params, x, jax.random.fold_in(k, c), chunk_size,
                                            model=model, log_prior=log_prior, y=y)[0]
      # Samples past num_samples (in the last chunk) get zero weight.
      j = c * chunk_size + jnp.arange(chunk_size)
      lw = jnp.where(j < num_samples, lw, -jnp.inf)
      new_max = jnp.maximum(run_max, jnp.max(lw))
      run_sum = run_sum * jnp.exp(run_max - new_max) + jnp.sum(jnp.exp(lw - new_max))
      return (new_max, run_sum), None

    (m, s), _ = jax.lax.scan(chunk, (jnp.float32(-jnp.inf), jnp.float32(0.0)),
                             jnp.arange(num_chunks))
    return m + jnp.log(s) - math.log(num_samples)

  batch, labels = cond_lib.split_batch(batch, model, "iwae_log_likelihood")
  keys = jax.random.split(key, batch.shape[0])
  return jax.vmap(one)(batch, keys, labels)     # (labels None: no leaves to map)


def iwae_log_likelihood(params, data, key, *, model, num_samples: int = 5000,
                        batch_size: int = 100, chunk_size: int = 500,
                        return_per_example: bool = False, mesh=None,
                        progress: bool = False) -> dict[str, Any]:
  """Importance-sampled estimate of log p(x) (Burda et al. 2016, Eq. 8).

  ``log p(x) ~= log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)``, z_j ~ q(z|x).
  The estimate is a lower bound in expectation that tightens as k grows;
  Burda et al. report k = 5000. Memory: ``batch_size * chunk_size`` decoder
  outputs at a time, independent of k.

  Args:
    params: model parameters.
    data: host array [N, *data_shape].
    key: PRNG key; batch i uses ``fold_in(key, i)``.
    model: the static ``Model``.
    num_samples: k >= 1.
    batch_size: examples per jitted call.
    chunk_size: importance samples per inner step.
    return_per_example: also return the [N] per-example estimates.
    mesh: optional ``vae.parallel`` mesh: each batch is split across its devices.
    progress: show a progress bar (examples done, time left; the first
      batch includes compilation).

  Returns:
    dict: ``log_likelihood`` (mean over examples, nats), ``nll`` (its
    negative), ``num_samples``, ``seconds`` and ``peak_rss_mib`` (the
    process's peak resident memory so far).
  """
  if int(num_samples) < 1:
    raise ValueError(f"num_samples (k) must be >= 1, got {num_samples}")
  chunk_size = max(1, min(int(chunk_size), int(num_samples)))
  t0 = time.perf_counter()
  per = map_batches(
      functools.partial(_iwae_batch, model=model, num_samples=int(num_samples),
                        chunk_size=chunk_size),
      params, data, batch_size=batch_size, key=key, mesh=mesh, reduce="concat",
      desc=f"IWAE k={int(num_samples)}", progress=progress)
  ll = float(np.mean(per, dtype=np.float64))
  out = {"log_likelihood": ll, "nll": -ll, "num_samples": int(num_samples),
         "seconds": time.perf_counter() - t0, "peak_rss_mib": peak_rss_mib()}
  if return_per_example:
    out["per_example"] = per
  return out


def peak_rss_mib() -> float:
  """Peak resident memory of this process so far, in MiB (Linux ru_maxrss)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@functools.lru_cache(maxsize=None)
def posterior_mean_fn(model):
  """``(params, x [B, *data_shape]) -> E_q[z|x]`` [B, D]: the posterior mean
  of ``model``, the one function behind ``posterior_means``, ``active_units``
  and the metrics' representation (``vae.metrics.representation_from_params``).
  Cached: one function object per model, so jitted programs that take it
  (as a ``jax.tree_util.Partial``) compile once per model."""
  def means(params, x):
    x, y = cond_lib.split_batch(x, model, "posterior means")
    return model_lib.encode_batch(params, x.astype(jnp.float32), model=model, y=y)[0]
  return means


@functools.lru_cache(maxsize=None)
def representation_fn(model):
  """``(params, x [B, *data_shape]) -> codes [B, D]``: what the
  disentanglement metrics score. For the Gaussian posterior its mean (the
  code disentanglement_lib scores; the same function object as
  ``posterior_mean_fn``); for another family the code its decoder reads
  (``Posterior.code``: a flow's image of the mean, the quantised vectors,
  JointVAE's continuous means with its category one-hot), not the base
  Gaussian's mean, which for JointVAE holds raw category logits."""
  if model.posterior.gaussian:
    return posterior_mean_fn(model)

  def codes(params, x):
    x, y = cond_lib.split_batch(x, model, "the metrics' representation")
    mean, logvar = model_lib.encode_batch(params, x.astype(jnp.float32), model=model, y=y)
    return jax.vmap(lambda m, lv: model.posterior.code(m, lv, params.get("posterior")))(
        mean, logvar)
  return codes


@functools.partial(jax.jit, static_argnames="model")
def _means_batch(params, batch, *, model):
  return posterior_mean_fn(model)(params, batch)


def posterior_means(params, data, *, model, batch_size: int = 1000, mesh=None) -> np.ndarray:
  """E_q[z|x] for every example: [N, D]."""
  return map_batches(functools.partial(_means_batch, model=model), params, data,
                     batch_size=batch_size, mesh=mesh, reduce="concat")


def active_units(params, data, *, model, threshold: float = 0.01,
                 batch_size: int = 1000, mesh=None) -> dict[str, Any]:
  """Counts active latent units (Burda et al. 2016, Sec. 5.2).

  A unit u is active if ``Cov_x(E_{u~q(u|x)}[u]) > threshold`` (0.01 in the
  paper): the posterior mean moves with the input.

  Returns:
    dict: ``active_units`` (count), ``activity`` (list of D variances).
  """
  mu = posterior_means(params, data, model=model, batch_size=batch_size, mesh=mesh)
  var = np.var(mu.astype(np.float64), axis=0)
  return {"active_units": int(np.sum(var > threshold)),
          "activity": [float(v) for v in var]}


def kl_per_dimension(params, data, key, *, model, batch_size: int = 1000) -> list[float]:
  """Mean over ``data`` of KL(q(z_i|x) || N(0, 1)) for each dimension i."""
  return dataset_elbo(params, data, key, model=model,
                      batch_size=batch_size)["kl_per_dim"]


@functools.partial(jax.jit, static_argnames=("model", "estimator"))
def _decomposition_batch(params, batch, key, *, dataset_size, model, estimator):
  return batch_decomposition(params, cond_lib.as_float(batch), key, model=model,
                             dataset_size=dataset_size, estimator=estimator)


def kl_decomposition(params, data, key, *, model, dataset_size: int,
                     batch_size: int = 256, mesh=None) -> dict[str, float]:
  """The beta-TCVAE decomposition of the mean KL for any VAE-family model.

  ``E_x KL(q(z|x) || p(z)) = MI + TC + dimKL`` (Chen et al. 2018, Eq. 2),
  each term estimated per minibatch of ``batch_size`` with both estimators
  of log q(z) (MWS and MSS, vae/objectives/tcvae.py) and averaged over the
  full batches of ``data`` (a partial last batch would change the estimator,
  so it is left out; data smaller than one batch is one batch).

  Args:
    params: model parameters.
    data: host array [N_eval, *data_shape].
    key: PRNG key for the posterior samples.
    model: the static ``Model``.
    dataset_size: N of the estimators, the size of the data set q(z) is the
      aggregate over (the training set).
    batch_size: minibatch size M.
    mesh: optional device mesh (vae.parallel).

  Returns:
    dict: ``{mutual_info,total_correlation,dim_kl,kl_mc}_{mws,mss}``.
  """
  data = as_host(data)
  m = min(int(batch_size), num_examples(data))
  if mesh is not None and mesh.size > 1:
    m = max(m // mesh.size, 1) * mesh.size
  out: dict[str, float] = {}
  for est in ("mws", "mss"):
    per_batch = map_batches(
        functools.partial(_decomposition_batch, dataset_size=float(dataset_size), model=model,
                          estimator=est),
        params, data, batch_size=m, key=key, mesh=mesh, reduce="per_batch",
        drop_remainder=True)
    out.update({f"{k}_{est}": float(np.mean(v.astype(np.float64)))
                for k, v in per_batch.items()})
  return out


def diagnostics(params, data, key, *, model, dataset_size: int,
                batch_size: int = 256, mesh=None) -> dict[str, Any]:
  """What the code looks like: KL per dimension (Higgins et al. 2017 /
  Burgess et al. 2018 read disentanglement off it), active units (Burda et
  al. 2016, Sec. 5.2) and the KL decomposition of Chen et al. (2018, Eq. 2).

  Returns:
    dict with ``kl_per_dim`` (list of D), ``active_units`` (count) and the
    ``kl_decomposition`` entries (only for the Gaussian posterior and the
    N(0, I) prior, which its estimators assume).
  """
  r = dataset_elbo(params, data, jax.random.fold_in(key, 0), model=model,
                   batch_size=batch_size, mesh=mesh)
  units = active_units(params, data, model=model, batch_size=batch_size, mesh=mesh)
  return _diagnostics_from(params, data, key, r, units["active_units"], model=model,
                           dataset_size=dataset_size, batch_size=batch_size, mesh=mesh)


def _diagnostics_from(params, data, key, elbo_result, num_active, *, model, dataset_size,
                      batch_size, mesh):
  """``diagnostics`` given the ELBO pass and the active units already in
  hand: only the KL decomposition is computed (with ``diagnostics``' key)."""
  out: dict[str, Any] = {"kl_per_dim": elbo_result["kl_per_dim"], "active_units": num_active}
  if not model.gaussian:   # its estimators assume a Gaussian q and N(0, I)
    return out
  out.update(kl_decomposition(params, data, jax.random.fold_in(key, 1), model=model,
                              dataset_size=dataset_size, batch_size=batch_size,
                              mesh=mesh))
  return out


@functools.partial(jax.jit, static_argnames="model")
def _reconstruction_batch(params, batch, *, model):
  return jax.vmap(lambda x: reconstruction_log_likelihood(
      params, x.astype(jnp.float32), model=model))(batch)


def dataset_reconstruction(params, data, *, model, batch_size: int = 1000, mesh=None) -> float:
  """Mean log p(x | decode(mean of q(z|x))) over ``data`` (the autoencoders'
  measure: no sampling)."""
  lls = map_batches(functools.partial(_reconstruction_batch, model=model), params, data,
                    batch_size=batch_size, mesh=mesh, reduce="concat")
  return float(np.mean(lls))


@dataclasses.dataclass(frozen=True)
class EvalSpec:
  """How a run is evaluated (a config's ``eval`` section, resolved).

  Attributes:
    split: the array data set's split ("validation", "test"); ground-truth
      sets use a held-out sample instead.
    max_examples: evaluate this many examples (0: the whole split, or 10,000
      renders of a ground-truth set).
    num_importance_samples: k of the IWAE log-likelihood.
    iwae_batch_size, chunk_size: memory ~ their product of decoder outputs.
    elbo_batch_size: batch of the ELBO and active-units passes.
    diagnostics_batch_size: batch of the KL-decomposition estimators.
    metrics: disentanglement metrics to score at the end (ground-truth data).
    metric_scale: multiplies the metrics' published sample sizes.
    dci_importance: "gbt" (reference protocol), "gbt_jax", "hist_gbt" or "linear"
      (vae.metrics.dci).
    score_every: score ``score_metrics`` in the periodic evaluation every
      this many steps (0: never); learning curves of disentanglement.
    score_metrics: the metrics scored periodically.
  """
  split: str = "validation"
  max_examples: int = 1000
  num_importance_samples: int = 10
  iwae_batch_size: int = 25
  chunk_size: int = 10
  elbo_batch_size: int = 250
  diagnostics_batch_size: int = 256
  metrics: tuple[str, ...] = ()
  metric_scale: float = 1.0
  dci_importance: str = "gbt"
  score_every: int = 0
  score_metrics: tuple[str, ...] = ()

  def __post_init__(self):
    checks.check_int_at_least("eval.num_importance_samples (k)", self.num_importance_samples, 1)
    if not float(self.metric_scale) > 0:
      raise ValueError(f"eval.metric_scale must be > 0, got {self.metric_scale}")
    from vae.metrics.dci import IMPORTANCES
    if self.dci_importance not in IMPORTANCES:
      raise ValueError(f"eval.dci_importance must be one of {IMPORTANCES}, got "
                       f"{self.dci_importance!r}")
    if isinstance(self.score_every, bool) or int(self.score_every) < 0:
      raise ValueError(f"eval.score_every must be an integer >= 0 (0: off), got "
                       f"{self.score_every}")
    if int(self.score_every) and not self.score_metrics:
      raise ValueError(f"eval.score_every={self.score_every} needs eval.score_metrics "
                       "(the metrics to score), got none")


def _evaluate(params, data, keys, *, model, probabilistic: bool, spec: EvalSpec,
              dataset_size: int | None, mesh=None, progress: bool = False) -> dict[str, Any]:
  """What the final and the periodic evaluations compute, assembled once.

  Probabilistic models: ``elbo`` (``dataset_elbo`` with ``keys["elbo"]``),
  ``iwae`` (only if ``keys`` has "iwae"), ``active_units`` (with
  ``spec.elbo_batch_size``, the batch of the ELBO pass) and, with
  ``dataset_size``, ``diagnostics`` (``keys["diagnostics"]``, batches of
  ``spec.diagnostics_batch_size``). Autoencoders:
  ``reconstruction_log_likelihood``. ``params`` are replicated on ``mesh``
  (default: every device); ``progress``: bars for the ELBO and IWAE passes.
  """
  mesh = mesh if mesh is not None else parallel.make_mesh()
  params = parallel.replicate(params, mesh)
  if not probabilistic:
    return {"reconstruction_log_likelihood": dataset_reconstruction(
        params, data, model=model, batch_size=spec.elbo_batch_size, mesh=mesh)}
  out: dict[str, Any] = {"elbo": dataset_elbo(
      params, data, keys["elbo"], model=model, batch_size=spec.elbo_batch_size, mesh=mesh,
      progress=progress)}
  if "iwae" in keys and model.posterior.has_log_prob:    # (a relaxed code has no log q)
    out["iwae"] = iwae_log_likelihood(
        params, data, keys["iwae"], model=model, num_samples=spec.num_importance_samples,
        batch_size=spec.iwae_batch_size, chunk_size=spec.chunk_size, mesh=mesh,
        progress=progress)
  out["active_units"] = active_units(params, data, model=model,
                                     batch_size=spec.elbo_batch_size, mesh=mesh)
  if dataset_size:
    out["diagnostics"] = _diagnostics_from(
        params, data, keys["diagnostics"], out["elbo"], out["active_units"]["active_units"],
        model=model, dataset_size=dataset_size, batch_size=spec.diagnostics_batch_size,
        mesh=mesh)
  return out


def check_eval_size(num_examples: int, *, probabilistic: bool, spec: EvalSpec) -> None:
  """Refuses, before training, evaluation data too small for the evaluation
  (``num_examples`` after ``spec.max_examples``): the KL decomposition's
  minibatch estimators (Chen et al. 2018, Sec. 3) draw pairs within a
  batch, so a probabilistic model needs at least 2 examples.

  Raises:
    ValueError: naming the count and what would fit.
  """
  n = int(num_examples)
  if n < 1:
    raise ValueError("the evaluation data are empty: evaluation needs at least 1 example")
  if probabilistic and n < 2:
    raise ValueError(
        f"the evaluation split ({spec.split}) holds {n} example; evaluating a probabilistic "
        "model needs at least 2 (the KL decomposition's minibatch estimators draw pairs "
        "within a batch): use more data or a larger validation_fraction (and "
        "eval.max_examples 0 or at least 2)")


def evaluate_params(params, eval_data, key, *, model, probabilistic: bool, spec: EvalSpec,
                    dataset_size: int | None = None, mesh=None,
                    progress: bool = False) -> dict[str, Any]:
  """A run's final evaluation of ``params`` on ``eval_data``.

  Probabilistic models: ELBO, IWAE log-likelihood with k samples, active units
  and, with ``dataset_size`` (the training set's N), ``diagnostics`` (KL per
  dimension, active units, the KL decomposition). Autoencoders: the
  reconstruction log-likelihood. ``progress``: bars for the ELBO and the
  IWAE passes (the k = 5000 one runs for minutes).
  """
  keys = {"elbo": jax.random.fold_in(key, 0), "iwae": jax.random.fold_in(key, 1),
          "diagnostics": jax.random.fold_in(key, 3)}
  results: dict[str, Any] = {"num_examples": num_examples(eval_data)}
  results.update(_evaluate(params, eval_data, keys, model=model, probabilistic=probabilistic,
                           spec=spec, dataset_size=dataset_size, mesh=mesh, progress=progress))
  return results


def _flat(result: dict[str, Any]) -> dict[str, Any]:
  """The periodic log's record of ``_evaluate``'s result: the ELBO's three
  terms, KL per dimension, active units and the KL decomposition."""
  out = {k: result["elbo"][k] for k in ("elbo", "log_likelihood", "kl")}
  out.update(result.get("diagnostics") or {
      "kl_per_dim": result["elbo"]["kl_per_dim"],
      "active_units": result["active_units"]["active_units"]})
  return out


def periodic_eval_fn(eval_data, eval_key, *, model, spec: EvalSpec, dataset_size: int,
                     mesh=None, probabilistic: bool = True, ground_truth=None, score_key=None):
  """``(params, step) -> dict``: what ``train`` logs every ``eval_every``
  steps: the held-out ELBO, KL per dimension, active units and the KL
  decomposition (probabilistic models), or the held-out reconstruction
  log-likelihood (autoencoders), as the final evaluation computes them
  (without the IWAE pass). At steps that are multiples of
  ``spec.score_every``, also ``disentanglement``: ``spec.score_metrics`` on
  ``ground_truth`` (a ``GroundTruthData``) with ``score_key``, the same key at
  every step, so the curve moves with the model, not with the sample."""
  if spec.score_every and (ground_truth is None or score_key is None):
    raise ValueError("eval.score_every needs a ground-truth data set and a scoring key")

  def eval_fn(params, step):
    key = jax.random.fold_in(eval_key, step)
    r = _evaluate(params, eval_data, {"elbo": key, "diagnostics": jax.random.fold_in(key, 1)},
                  model=model, probabilistic=probabilistic, spec=spec,
                  dataset_size=dataset_size, mesh=mesh)
    out = _flat(r) if probabilistic else r
    if spec.score_every and step % int(spec.score_every) == 0:
      from vae import metrics as metrics_lib     # metrics import this module's neighbours
      out["disentanglement"] = metrics_lib.score_disentanglement(
          params, ground_truth, score_key, model=model, names=list(spec.score_metrics),
          scale=spec.metric_scale, dci_importance=spec.dci_importance)
    return out
  return eval_fn
