"""Training: state, optimizer, the jitted step and the scanned multi-step loop.

Data flow (DESIGN.md): config -> data on device -> ``lax.scan`` over many
``train_step``s -> workdir (checkpoints, metrics.jsonl, evaluation JSON, PNGs).

Randomness: one root key per run, split by name into init / train / data /
eval keys; step ``s`` uses ``fold_in(train_key, s)`` and the data order of
epoch ``e`` is ``permutation(fold_in(data_key, e))``. Both are functions of
the step alone, so a run resumed from a checkpoint draws exactly the numbers
an uninterrupted run draws, however the steps are chunked.
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from typing import Any, Callable, Iterable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae import checkpoint as ckpt_lib
from vae import checks
from vae import model as model_lib
from vae import objectives
from vae import parallel

Batch = jax.Array
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Immutable training state (DESIGN.md contract 5)."""
  step: jax.Array          # int32 scalar: number of updates applied
  params: Any
  opt_state: Any


def named_keys(seed: int) -> dict[str, jax.Array]:
  """Splits the run's root key into the named keys used everywhere."""
  root = jax.random.key(int(seed))
  names = ("init", "train", "data", "eval")
  return {n: jax.random.fold_in(root, i) for i, n in enumerate(names)}


# ----------------------------------------------------------------- optimizer
def make_schedule(cfg: Mapping[str, Any]) -> optax.Schedule:
  """Learning-rate schedule from ``config.optim``.

  schedule: "constant"; "cosine" (to ``end_lr_factor * lr`` over
  ``decay_steps``); "exponential" (``lr * decay_rate ** (step / decay_steps)``,
  continuous, floored at ``end_lr_factor * lr``); each with optional linear
  ``warmup_steps``.
  """
  lr = float(cfg["learning_rate"])
  name = cfg.get("schedule", "constant")
  warmup = int(cfg.get("warmup_steps", 0))
  end = lr * float(cfg.get("end_lr_factor", 0.0))
  decay_steps = max(int(cfg.get("decay_steps", 1)), 1)
  if name == "constant":
    main = optax.constant_schedule(lr)
  elif name == "cosine":
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
  elif name == "exponential":
    main = optax.exponential_decay(lr, decay_steps, float(cfg.get("decay_rate", 0.1)),
                                   end_value=end if end > 0 else None)
  else:
    raise ValueError("optim.schedule must be 'constant', 'cosine' or "
                     f"'exponential', got {name!r}")
  if warmup > 0:
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), main], [warmup])
  return main


def make_optimizer(cfg: Mapping[str, Any]) -> optax.GradientTransformation:
  """One optax transformation from ``config.optim`` (DESIGN.md contract 5).

  Fields: optimizer ("adam" | "adamw" | "sgd"), learning_rate, schedule,
  b1, b2, eps, weight_decay, grad_clip_norm (0 disables clipping).
  """
  sched = make_schedule(cfg)
  name = cfg.get("optimizer", "adam")
  if name == "adam":
    opt = optax.adam(sched, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     eps=cfg.get("eps", 1e-8))
  elif name == "adamw":
    opt = optax.adamw(sched, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                      eps=cfg.get("eps", 1e-8),
                      weight_decay=cfg.get("weight_decay", 1e-4))
  elif name == "sgd":
    opt = optax.sgd(sched, momentum=cfg.get("momentum", 0.0) or None)
  else:
    raise ValueError(f"optim.optimizer must be 'adam', 'adamw' or 'sgd', got {name!r}")
  clip = float(cfg.get("grad_clip_norm", 0.0))
  return optax.chain(optax.clip_by_global_norm(clip), opt) if clip > 0 else opt


def init_state(key: jax.Array, model: model_lib.Model,
               optimizer: optax.GradientTransformation,
               objective: str | None = None) -> TrainState:
  """Fresh state: model parameters from ``key`` plus, when ``objective`` trains
  more (FactorVAE's discriminator), those from ``fold_in(key, 1)``."""
  params = model_lib.init_params(key, model)
  if objective is not None:
    params.update(objectives.init_extra_params(objective, jax.random.fold_in(key, 1), model))
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params))


# ---------------------------------------------------------------- train step
def make_train_step(loss_fn: Callable[..., Any], model: model_lib.Model,
                    optimizer: optax.GradientTransformation):
  """Builds ``train_step(state, batch, key) -> (state, metrics)`` (not jitted).

  Args:
    loss_fn: an objective ``loss(params, batch, key, *, model)`` with its
      hyperparameters bound (``vae.objectives.get_objective``).
    model: the static ``Model``.
    optimizer: optax transformation.

  Returns:
    A pure function; jit it (``jit_train_step``) or scan it (``make_scan_loop``).

  Objectives that read the training step (AnnealedVAE) get ``step=state.step``.
  ``metrics["loss"]`` is ``aux["loss"]`` where the objective reports one (the
  FactorVAE VAE loss, not the two players' sum).
  """
  extra = (lambda s: {"step": s}) if objectives.takes_step(loss_fn) else (lambda s: {})

  def train_step(state: TrainState, batch: Batch, key: jax.Array):
    grad_fn = jax.value_and_grad(
        lambda p: loss_fn(p, batch, key, model=model, **extra(state.step)),
        has_aux=True)
    (loss, aux), grads = grad_fn(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, **aux}
    metrics["grad_norm"] = optax.global_norm(grads)
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state), metrics
  return train_step


def jit_train_step(train_step):
  """jit with the state donated: its buffers are reused for the new state."""
  return jax.jit(train_step, donate_argnums=0)


# ------------------------------------------------------------- data on device
class ArraySource:
  """An in-memory data set on the device, served in shuffled epochs.

  Epoch ``e`` visits ``permutation(fold_in(data_key, e), N)`` in batches of
  ``batch_size`` (the last partial batch is dropped). Batches are gathered and
  cast to float32 on the device, inside the scanned loop.
  """

  def __init__(self, data, batch_size: int, data_key: jax.Array):
    self.data = jnp.asarray(data)
    self.num_examples = int(self.data.shape[0])
    self.batch_size = int(batch_size)
    if not 1 <= self.batch_size <= self.num_examples:
      raise ValueError(f"batch_size must be in [1, {self.num_examples}] (the "
                       f"number of examples), got {batch_size}")
    self.steps_per_epoch = self.num_examples // self.batch_size
    self.data_key = data_key

  def arrays(self):
    return (self.data, self.data_key)

  def _perm(self, arrays, epoch):
    data, data_key = arrays
    return jax.random.permutation(jax.random.fold_in(data_key, epoch),
                                  data.shape[0])

  def init(self, arrays, step):
    return self._perm(arrays, step // self.steps_per_epoch)

  def next(self, arrays, perm, step):
    epoch, pos = jnp.divmod(step, self.steps_per_epoch)
    # The permutation is recomputed once per epoch, not per step (sorting
    # 50k keys would cost as much as a small model's step).
    perm = jax.lax.cond(pos == 0, lambda: self._perm(arrays, epoch), lambda: perm)
    idx = jax.lax.dynamic_slice(perm, (pos * self.batch_size,), (self.batch_size,))
    return jnp.take(arrays[0], idx, axis=0).astype(jnp.float32), perm

  def host_batches(self, start_step: int) -> Iterable[np.ndarray]:
    """The same batches as ``next``, produced on the host (for comparison
    with a host-fed loop)."""
    data = np.asarray(self.data)
    step = start_step
    while True:
      epoch, pos = divmod(step, self.steps_per_epoch)
      if pos == 0 or step == start_step:
        perm = np.asarray(self._perm((self.data, self.data_key), epoch))
      idx = perm[pos * self.batch_size:(pos + 1) * self.batch_size]
      yield data[idx].astype(np.float32)
      step += 1


class GroundTruthSource:
  """Fresh samples of a ground-truth data set (e.g. procedural dSprites)
  drawn on the device each step: the batch of step ``s`` is
  ``dataset.sample(fold_in(data_key, s), batch_size)``, so no host I/O occurs
  inside the scanned loop and a resumed run sees the same images."""

  def __init__(self, dataset, batch_size: int, data_key: jax.Array):
    if int(batch_size) < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    self.dataset = dataset
    self.batch_size = int(batch_size)
    self.data_key = data_key

  def arrays(self):
    return (self.data_key,)

  def init(self, arrays, step):
    return jnp.zeros((), jnp.int32)

  def next(self, arrays, carry, step):
    images, _ = self.dataset.sample(jax.random.fold_in(arrays[0], step), self.batch_size)
    return images, carry


def make_scan_loop(train_step, source, mesh=None):
  """Returns ``run(state, arrays, train_key, num_steps) -> (state, metrics)``.

  Runs ``num_steps`` (static) training steps inside one ``lax.scan``: the
  batch is drawn on the device, the step key is ``fold_in(train_key, step)``,
  and no Python runs between steps. ``metrics`` holds one value per step.
  The input state is donated. With a ``mesh`` (vae.parallel), the batch is
  split across its ``data`` axis and the state is expected replicated; the
  code is the same for one device and many.
  """
  @functools.partial(jax.jit, donate_argnums=0, static_argnums=3)
  def run(state, arrays, train_key, num_steps: int):
    carry0 = source.init(arrays, state.step)

    def body(carry, _):
      st, sc = carry
      batch, sc = source.next(arrays, sc, st.step)
      batch = parallel.constrain_batch(batch, mesh)
      st, metrics = train_step(st, batch, jax.random.fold_in(train_key, st.step))
      return (st, sc), metrics

    (state, _), metrics = jax.lax.scan(body, (state, carry0), None,
                                       length=num_steps)
    return state, metrics
  return run


def make_step_loop(train_step, source, mesh=None):
  """Same contract as ``make_scan_loop`` but one jitted call per step.

  The batch is still drawn on the device (inside the jitted step), so no host
  I/O occurs; only the loop runs in Python. Draws the same numbers as the
  scanned loop. (It was the CPU loop for conv models while they used XLA's
  convolutions, whose backward passes run ~28x slower inside a while loop;
  ``vae.conv`` has no convolution ops, and the scanned loop is now as fast.)
  """
  @functools.partial(jax.jit, donate_argnums=0)
  def one(state, carry, arrays, train_key):
    batch, carry = source.next(arrays, carry, state.step)
    batch = parallel.constrain_batch(batch, mesh)
    state, metrics = train_step(state, batch,
                                jax.random.fold_in(train_key, state.step))
    return state, carry, metrics

  init = jax.jit(source.init)

  def run(state, arrays, train_key, num_steps: int):
    carry = init(arrays, state.step)
    metrics = []
    for _ in range(num_steps):
      state, carry, m = one(state, carry, arrays, train_key)
      metrics.append(m)
    return state, jax.tree.map(lambda *xs: jnp.stack(xs), *metrics)
  return run


TRAIN_LOOPS = ("auto", "scan", "per_step")


def choose_loop(config, model) -> str:
  """The training loop a config asks for: ``train_loop`` "scan" or
  "per_step"; "auto" is "scan" for every model and backend (the conv models
  included, since ``vae.conv``)."""
  del model
  loop = config.get("train_loop", "auto")
  return "scan" if loop == "auto" else loop


# ------------------------------------------------------------ config checking
def check_config(config) -> None:
  """Validates the config's values before any data is loaded or traced.

  Raises:
    ValueError: naming the field, the expected range and the value given.
  """
  def need(cond, msg):
    if not cond:
      raise ValueError(msg)

  need(int(config.model.latent_dim) >= 1,
       f"model.latent_dim must be a positive integer, got {config.model.latent_dim}")
  need(config.objective in objectives.OBJECTIVES,
       f"objective must be one of {sorted(objectives.OBJECTIVES)}, got {config.objective!r}")
  objectives.validate_hparams(config.objective, dict(config.hparams))
  need(int(config.batch_size) >= 1, f"batch_size must be >= 1, got {config.batch_size}")
  need(int(config.num_steps) >= 0, f"num_steps must be >= 0, got {config.num_steps}")
  need(int(config.log_every) >= 1, f"log_every must be >= 1, got {config.log_every}")
  need(int(config.checkpoint_every) >= 1 and
       int(config.checkpoint_every) % int(config.log_every) == 0,
       "checkpoint_every must be a positive multiple of log_every "
       f"({config.log_every}), got {config.checkpoint_every}")
  from vae import metrics as metrics_lib
  unknown = [m for m in config.eval.get("metrics", ()) if m not in metrics_lib.METRICS]
  need(not unknown, f"eval.metrics must be among {sorted(metrics_lib.METRICS)}, got {unknown}")
  need(float(config.eval.get("metric_scale", 1.0)) > 0,
       f"eval.metric_scale must be > 0, got {config.eval.get('metric_scale')}")
  need(config.get("train_loop", "auto") in TRAIN_LOOPS,
       f"train_loop must be one of {TRAIN_LOOPS}, got {config.get('train_loop')!r}")
  need(float(config.optim.learning_rate) > 0,
       f"optim.learning_rate must be > 0, got {config.optim.learning_rate}")
  need(float(config.optim.get("grad_clip_norm", 0.0)) >= 0,
       f"optim.grad_clip_norm must be >= 0 (0 disables), got {config.optim.grad_clip_norm}")
  if config.objective in objectives.EXTRA_PARAMS:
    need("discriminator_optim" in config,
         f"objective {config.objective!r} needs config.discriminator_optim "
         "(the discriminator's optimizer)")
    need(float(config.discriminator_optim.learning_rate) > 0,
         "discriminator_optim.learning_rate must be > 0, got "
         f"{config.discriminator_optim.learning_rate}")
    make_schedule(config.discriminator_optim)
  k = config.eval.num_importance_samples
  need(int(k) == k and int(k) >= 1,
       f"eval.num_importance_samples (k) must be an integer >= 1, got {k}")
  make_schedule(config.optim)


def build(config, dataset_size: int | None = None):
  """(model, loss_fn, optimizer) from a config (validated first).

  Args:
    config: the run's ``ConfigDict``.
    dataset_size: the number of training examples; used for
      ``hparams.dataset_size`` when the config leaves it 0 (beta-TCVAE).
  """
  check_config(config)
  m = config.model
  model = model_lib.make_model(
      architecture=m.architecture, data_shape=tuple(m.data_shape),
      latent_dim=m.latent_dim, likelihood=m.likelihood, posterior=m.posterior,
      encoder_hidden=tuple(m.encoder_hidden), decoder_hidden=tuple(m.decoder_hidden),
      activation=m.activation, obs_logvar=m.get("obs_logvar", 0.0),
      compute_dtype=m.get("compute_dtype", "float32"))
  hparams = dict(config.hparams)
  if not hparams.get("dataset_size") and dataset_size:
    hparams["dataset_size"] = int(dataset_size)
  loss_fn = objectives.get_objective(config.objective, **hparams)
  optimizer = make_optimizer(config.optim)
  if config.objective == "factor_vae":
    from vae.objectives import factor_vae
    optimizer = factor_vae.make_optimizer(optimizer, make_optimizer(config.discriminator_optim))
  return model, loss_fn, optimizer


# --------------------------------------------------------------------- loop
def dataset_size_of(train_data) -> int:
  """N: the number of examples (arrays) or of factor combinations
  (ground-truth data sets)."""
  n = getattr(train_data, "num_combinations", None)
  return int(n) if n is not None else int(np.shape(train_data)[0])


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/inf loss; the message names the step."""


def _append_jsonl(path: str, record: Mapping[str, Any]) -> None:
  with open(path, "a") as f:
    f.write(json.dumps(record) + "\n")


def train(config, workdir: str, train_data, *, eval_fn=None,
          progress: bool = True) -> TrainState:
  """Trains (or resumes training) for ``config.num_steps`` steps.

  Writes ``workdir/metrics.jsonl`` (train means every ``log_every`` steps,
  plus ``eval_fn`` results every ``eval_every`` steps) and orbax checkpoints
  every ``checkpoint_every`` steps and at the end. If ``workdir`` holds a
  checkpoint, training continues from it and ends bit-identical to an
  uninterrupted run.

  Args:
    config: a ``ConfigDict`` (see experiments/configs/default.py).
    workdir: output folder.
    train_data: host array [N, *data_shape], or a ground-truth data set
      (``vae.data.ground_truth.GroundTruthData``) sampled afresh each step.
    eval_fn: optional ``(params, step) -> dict`` of scalars to log.
    progress: show a tqdm bar.

  Returns:
    The final ``TrainState``.

  Raises:
    NonFiniteLossError: a step's loss was NaN or inf; the last good
      checkpoint is left in place.
  """
  from vae.data.ground_truth import GroundTruthData
  model, loss_fn, optimizer = build(config, dataset_size=dataset_size_of(train_data))
  keys = named_keys(config.seed)
  if isinstance(train_data, GroundTruthData):
    if tuple(train_data.observation_shape) != model.data_shape:
      raise ValueError(f"model.data_shape is {model.data_shape} but the data set "
                       f"renders {tuple(train_data.observation_shape)}")
    source = GroundTruthSource(train_data, config.batch_size, keys["data"])
  else:
    checks.check_data(train_data, data_shape=model.data_shape,
                      likelihood=model.likelihood, name="training data")
    source = ArraySource(train_data, config.batch_size, keys["data"])
  os.makedirs(workdir, exist_ok=True)
  mesh = parallel.make_mesh()
  parallel.check_batch_divides(config.batch_size, mesh)
  state = parallel.replicate(
      init_state(keys["init"], model, optimizer, config.objective), mesh)
  state, restored = ckpt_lib.restore_latest(workdir, state)
  start = int(state.step)
  if restored is not None:
    print(f"Resumed from checkpoint at step {start} in {workdir}", flush=True)
  train_step = make_train_step(loss_fn, model, optimizer)
  loop = choose_loop(config, model)
  run = (make_scan_loop if loop == "scan" else make_step_loop)(train_step, source, mesh)
  arrays = parallel.replicate(source.arrays(), mesh)
  train_key = parallel.replicate(keys["train"], mesh)
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  log_every, ckpt_every = int(config.log_every), int(config.checkpoint_every)
  eval_every = int(config.get("eval_every", 0))
  total = int(config.num_steps)
  last_ckpt = restored

  bar = None
  if progress and start < total:
    from tqdm import tqdm
    bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
               mininterval=5.0)
  t_last = time.perf_counter()
  step = start
  while step < total:
    # Chunks end on multiples of log_every so that every run (resumed or not)
    # compiles the same one or two scan lengths.
    n = min(log_every - step % log_every, total - step)
    state, metrics = run(state, arrays, train_key, n)
    metrics = jax.device_get(metrics)
    loss = np.asarray(metrics["loss"])
    if not np.all(np.isfinite(loss)):
      bad = step + int(np.argmin(np.isfinite(loss)))
      where = (f"the last good checkpoint (step {last_ckpt}) is kept in "
               f"{workdir}/checkpoints" if last_ckpt is not None
               else "no checkpoint had been written yet")
      raise NonFiniteLossError(
          f"non-finite loss ({loss[bad - step]}) at step {bad}; training "
          f"stopped; {where}. Lower optim.learning_rate or set "
          "optim.grad_clip_norm.")
    step += n
    now = time.perf_counter()
    record = {"step": step, "split": "train",
              "steps_per_sec": n / max(now - t_last, 1e-9)}
    record.update({k: float(np.mean(v)) for k, v in metrics.items() if np.ndim(v) == 1})
    t_last = now
    _append_jsonl(metrics_path, record)
    if eval_fn is not None and eval_every and (step % eval_every == 0 or step == total):
      ev = {k: (float(v) if np.ndim(v) == 0 else [float(x) for x in np.ravel(v)])
            for k, v in eval_fn(state.params, step).items()}
      _append_jsonl(metrics_path, {"step": step, "split": "eval", **ev})
      t_last = time.perf_counter()
    if bar is not None:
      bar.update(n)
      bar.set_postfix(loss=f"{record['loss']:.2f}")
    if step % ckpt_every == 0 or step == total:
      ckpt_lib.save(workdir, step, state)
      last_ckpt = step
  if bar is not None:
    bar.close()
  return state


# ------------------------------------------------------ train and evaluate
def load_data(config, split: str, max_examples: int = 0) -> np.ndarray:
  """Host array for a config's data set and split, optionally truncated."""
  from vae import data as data_lib
  arr = data_lib.load_dataset(config.dataset, split, config.get("data_dir") or None,
                              config.get("tfds_data_dir") or None)
  return arr[:max_examples] if max_examples else arr


def ground_truth_eval_sample(ground_truth, num: int, eval_key) -> np.ndarray:
  """The fixed held-out sample of a ground-truth data set: ``num`` renders
  drawn with the run's eval key (training draws with the data key, so they
  are unseen except by chance)."""
  return np.asarray(jax.jit(lambda k: ground_truth.sample(k, int(num))[0])(
      jax.random.fold_in(eval_key, 99)))


def evaluate_params(config, params, eval_data, key,
                    dataset_size: int | None = None) -> dict[str, Any]:
  """Final evaluation of ``params`` on ``eval_data`` (see vae/evaluate.py).

  With ``dataset_size`` (the training set's N), probabilistic models also get
  ``diagnostics``: KL per dimension, active units, the KL decomposition.
  """
  from vae import evaluate as ev
  model, _, _ = build(config)
  ec = config.eval
  # On the training mesh, one device or many (same results).
  mesh = parallel.make_mesh()
  params = parallel.replicate(params, mesh)
  results: dict[str, Any] = {"num_examples": int(eval_data.shape[0])}
  if config.objective in objectives.PROBABILISTIC:
    results.update({"elbo": ev.dataset_elbo(
        params, eval_data, jax.random.fold_in(key, 0), model=model,
        batch_size=ec.elbo_batch_size, mesh=mesh)})
    iw = ev.iwae_log_likelihood(
        params, eval_data, jax.random.fold_in(key, 1), model=model,
        num_samples=ec.num_importance_samples, batch_size=ec.iwae_batch_size,
        chunk_size=ec.chunk_size, mesh=mesh)
    results["iwae"] = iw
    results["active_units"] = ev.active_units(params, eval_data, model=model,
                                              batch_size=ec.elbo_batch_size, mesh=mesh)
    if dataset_size:
      # KL per dimension and active units are already in hand; only the
      # decomposition is new (same key as ev.diagnostics would use).
      results["diagnostics"] = {
          "kl_per_dim": results["elbo"]["kl_per_dim"],
          "active_units": results["active_units"]["active_units"],
          **ev.kl_decomposition(params, eval_data,
                                jax.random.fold_in(jax.random.fold_in(key, 3), 1),
                                model=model, dataset_size=dataset_size,
                                batch_size=ec.get("diagnostics_batch_size", 256), mesh=mesh)}
  else:
    from vae.objectives.autoencoders import reconstruction_log_likelihood
    fn = jax.jit(jax.vmap(lambda x: reconstruction_log_likelihood(
        params, x.astype(jnp.float32), model=model)))
    lls = np.concatenate([parallel.to_host(fn(parallel.shard_host_batch(b, mesh)))[:v]
                          for _, b, v in ev._batches(eval_data, ec.elbo_batch_size, mesh)])
    results["reconstruction_log_likelihood"] = float(np.mean(lls))
  return results


def scale_protocol(name: str, scale: float) -> dict[str, int]:
  """Keyword overrides that multiply a metric's published sample sizes by
  ``scale`` (1: the published protocol)."""
  import inspect
  from vae import metrics as metrics_lib
  if scale == 1.0:
    return {}
  sig = inspect.signature(metrics_lib.METRICS[name]).parameters
  return {k: max(int(round(p.default * scale)), 16) for k, p in sig.items()
          if k.startswith("num_")}


def score_disentanglement(params, ground_truth, key, *, model, names=None,
                          scale: float = 1.0, dci_importance: str = "gbt") -> dict[str, Any]:
  """Every disentanglement metric (vae/metrics) of the posterior means of
  ``params`` on a ground-truth data set, each timed.

  Args:
    params: model parameters.
    ground_truth: a ``GroundTruthData``.
    key: PRNG key.
    model: the static ``Model``.
    names: metric names (default: all six).
    scale: multiplies every published sample size (for quick looks).
    dci_importance: "gbt" (reference protocol) or "linear".

  Returns:
    {metric: {scores..., "seconds"}}.
  """
  from vae import metrics as metrics_lib
  rep = metrics_lib.representation_from_params(params, model)
  names = list(metrics_lib.METRICS) if not names else list(names)
  out = {}
  for i, name in enumerate(names):
    opts = scale_protocol(name, scale)
    if name == "dci":
      opts["importance"] = dci_importance
    t0 = time.perf_counter()
    out[name] = metrics_lib.compute_all(ground_truth, rep, jax.random.fold_in(key, i),
                                        [name], **{name: opts})[name]
    out[name]["seconds"] = time.perf_counter() - t0
  return out


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  """The main job: train (resuming if possible), evaluate, write figures.

  Writes to ``workdir``: ``checkpoints/``, ``metrics.jsonl``,
  ``eval_<split>.json``, ``reconstructions.png`` and (for probabilistic
  models) ``prior_samples.png``; also ``config.json``.

  Returns:
    The evaluation dict written to ``eval_<split>.json``.
  """
  from vae import evaluate as ev
  from vae import plots
  model, _, _ = build(config)
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  keys = named_keys(config.seed)
  from vae import data as data_lib
  if data_lib.is_ground_truth(config.dataset):
    train_data = data_lib.load_ground_truth(config.dataset, config.get("tfds_data_dir") or None)
    eval_data = ground_truth_eval_sample(
        train_data, config.eval.get("max_examples", 0) or 10_000, keys["eval"])
  else:
    train_data = load_data(config, "train", config.get("max_train_examples", 0))
    eval_data = load_data(config, config.eval.split, config.eval.get("max_examples", 0))
  num_train = dataset_size_of(train_data)
  checks.check_data(eval_data, data_shape=model.data_shape,
                    likelihood=model.likelihood, name="evaluation data")

  eval_fn = None
  diag_batch = int(config.eval.get("diagnostics_batch_size", 256))
  if config.objective in objectives.PROBABILISTIC:
    def eval_fn(params, step):
      # params come from train(), replicated on this same mesh.
      mesh = parallel.make_mesh()
      key = jax.random.fold_in(keys["eval"], step)
      r = ev.dataset_elbo(params, eval_data, key, model=model,
                          batch_size=config.eval.elbo_batch_size, mesh=mesh)
      # The ELBO pass already gives the KL per dimension; the diagnostics add
      # active units and the decomposition (same key as ev.diagnostics).
      out = {k: r[k] for k in ("elbo", "log_likelihood", "kl", "kl_per_dim")}
      out["active_units"] = ev.active_units(params, eval_data, model=model,
                                            batch_size=diag_batch, mesh=mesh)["active_units"]
      out.update(ev.kl_decomposition(params, eval_data,
                                     jax.random.fold_in(jax.random.fold_in(key, 1), 1),
                                     model=model, dataset_size=num_train,
                                     batch_size=diag_batch, mesh=mesh))
      return out

  t0 = time.perf_counter()
  state = train(config, workdir, train_data, eval_fn=eval_fn)
  train_seconds = time.perf_counter() - t0
  results = evaluate_params(config, state.params, eval_data, keys["eval"],
                            dataset_size=num_train)
  results.update({"split": config.eval.split, "step": int(state.step),
                  "train_seconds_this_run": train_seconds,
                  "epochs": int(state.step) * config.batch_size / num_train})
  metric_names = list(config.eval.get("metrics", ()))
  if metric_names and data_lib.is_ground_truth(config.dataset) and \
     config.objective in objectives.PROBABILISTIC:
    results["disentanglement"] = score_disentanglement(
        state.params, train_data, jax.random.fold_in(keys["eval"], 4), model=model,
        names=metric_names, scale=float(config.eval.get("metric_scale", 1.0)),
        dci_importance=config.eval.get("dci_importance", "gbt"))
  with open(os.path.join(workdir, f"eval_{config.eval.split}.json"), "w") as f:
    json.dump(results, f, indent=2)
  plots.save_reconstructions(os.path.join(workdir, "reconstructions.png"),
                             state.params, eval_data[:32], model=model)
  if config.objective in objectives.PROBABILISTIC:
    kl = results["elbo"]["kl_per_dim"]
    plots.save_traversals(os.path.join(workdir, "traversals.png"), state.params,
                          eval_data[0], model=model, kl_per_dim=kl)
    plots.save_traversal_gif(os.path.join(workdir, "traversals.gif"), state.params,
                             eval_data[0], model=model, kl_per_dim=kl)
    plots.save_prior_samples(os.path.join(workdir, "prior_samples.png"),
                             state.params, jax.random.fold_in(keys["eval"], 2),
                             model=model)
  return results
