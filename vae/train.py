"""Training: the state, the step, the loops that run many steps on the device,
and ``train``, which runs them for a number of steps with checkpoints and logs.

Everything here takes plain objects (a ``Model``, an objective, an optax
transformation, a data source from ``vae.data.sources``, a ``Schedule``);
configs are read only in ``experiments/`` (docs/design.md).

Randomness: one root key per run, split by name into init / train / data /
eval keys; step ``s`` uses ``fold_in(train_key, s)`` and the data order of
epoch ``e`` is ``permutation(fold_in(data_key, e))``. Both are functions of
the step alone, so a run resumed from a checkpoint draws exactly the numbers
an uninterrupted run draws, however the steps are chunked.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import time
import warnings
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from vae import checkpoint as ckpt_lib
from vae import interrupt
from vae import model as model_lib
from vae import objectives
from vae import parallel
from vae import workdir as workdir_lib
from vae import writers as writers_lib

Batch = jax.Array
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Immutable training state (docs/design.md, contract 5)."""
  step: jax.Array          # int32 scalar: number of updates applied
  params: Any
  opt_state: Any


def named_keys(seed: int) -> dict[str, jax.Array]:
  """Splits the run's root key into the named keys used everywhere."""
  root = jax.random.key(int(seed))
  names = ("init", "train", "data", "eval", "prior_examples")
  return {n: jax.random.fold_in(root, i) for i, n in enumerate(names)}


def init_state(key: jax.Array, model: model_lib.Model,
               optimizer: optax.GradientTransformation,
               objective: objectives.BoundObjective | None = None,
               examples=None) -> TrainState:
  """Fresh state: model parameters from ``key`` plus, when ``objective`` trains
  more (FactorVAE's discriminator), those from ``fold_in(key, 1)``.
  ``examples``: the training examples a prior starting from data is given
  (``model_lib.init_params``; ``train`` draws them with ``prior_examples``)."""
  def build(key, examples):
    params = model_lib.init_params(key, model, examples=examples)
    if objective is not None:
      params.update(objective.init_extra_params(jax.random.fold_in(key, 1), model))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      opt_state=optimizer.init(params))
  # One compiled function: op by op, a conv model's state took ~800 compiles.
  return jax.jit(build)(key, examples)


def restore_target(model: model_lib.Model, optimizer: optax.GradientTransformation,
                   objective: objectives.BoundObjective | None = None) -> TrainState:
  """A state of the right structure, shapes and dtypes for restoring a
  checkpoint into (its values are replaced): a prior that starts from data
  is given zeros in place of the examples."""
  n = int(model.prior.init_examples)
  examples = (jnp.zeros((n,) + tuple(model.data_shape), jnp.float32) if n else None)
  return init_state(jax.random.key(0), model, optimizer, objective, examples=examples)


def prior_examples(source, key: jax.Array, model: model_lib.Model):
  """The ``model.prior.init_examples`` training examples a prior starting
  from data is initialised at (the VampPrior's pseudo-inputs with
  ``init="data"``), drawn by ``source.examples`` with ``key``; None when the
  prior needs none."""
  n = int(model.prior.init_examples)
  return source.examples(key, n) if n else None


# ---------------------------------------------------------------- train step
def make_train_step(loss_fn: Callable[..., Any], model: model_lib.Model,
                    optimizer: optax.GradientTransformation):
  """Builds ``train_step(state, batch, key) -> (state, metrics)`` (not jitted).

  Args:
    loss_fn: an objective with its hyperparameters bound
      (``vae.objectives.get_objective``; it receives ``step=state.step``,
      which those that read it use), or any ``loss(params, batch, key, *,
      model) -> (loss, aux)`` of your own (given ``step`` if it has that
      keyword).
    model: the static ``Model``.
    optimizer: optax transformation.

  Returns:
    A pure function; jit it (``jit_train_step``) or scan it (``make_scan_loop``).

  ``metrics["loss"]`` is ``aux["loss"]`` where the objective reports one (the
  FactorVAE VAE loss, not the two players' sum).
  """
  # A bound objective takes ``step`` (and uses it if its record says so); a
  # plain function gets it only if it has that keyword (e.g. a partial of
  # ``annealed_vae_loss``, whose capacity schedule needs it).
  wants_step = (isinstance(loss_fn, objectives.BoundObjective)
                or "step" in inspect.signature(loss_fn).parameters)

  def train_step(state: TrainState, batch: Batch, key: jax.Array):
    step = {"step": state.step} if wants_step else {}
    grad_fn = jax.value_and_grad(
        lambda p: loss_fn(p, batch, key, model=model, **step), has_aux=True)
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
  convolutions: their training step ran ~8x slower inside a while loop, the
  gradient of a single conv ~28x; ``vae.conv`` has no convolution ops, and
  the scanned loop is now as fast as this one.)
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




@dataclasses.dataclass(frozen=True)
class Schedule:
  """How long to train and how often to log, evaluate and checkpoint.

  Attributes:
    num_steps: total training steps (a resumed run stops there too).
    log_every: steps fused into one ``lax.scan`` between metrics rows.
    checkpoint_every: a positive multiple of ``log_every``.
    eval_every: steps between calls of the evaluation function (0: never);
      a multiple of ``log_every``, and the last step is evaluated too.
    loop: "scan" or "per_step" (``make_scan_loop`` / ``make_step_loop``).
  """
  num_steps: int
  log_every: int = 100
  checkpoint_every: int = 1000
  eval_every: int = 0
  loop: str = "scan"

  def __post_init__(self):
    if int(self.num_steps) < 0:
      raise ValueError(f"num_steps must be >= 0, got {self.num_steps}")
    if int(self.log_every) < 1:
      raise ValueError(f"log_every must be >= 1, got {self.log_every}")
    if int(self.checkpoint_every) < 1 or int(self.checkpoint_every) % int(self.log_every):
      raise ValueError("checkpoint_every must be a positive multiple of log_every "
                       f"({self.log_every}), got {self.checkpoint_every}")
    if int(self.eval_every) < 0:
      raise ValueError(f"eval_every must be >= 0 (0: off), got {self.eval_every}")
    if int(self.eval_every) % int(self.log_every):
      # Evaluation runs between scanned chunks of log_every steps: any other
      # period would silently skip evaluations.
      raise ValueError("eval_every must be a multiple of log_every "
                       f"({self.log_every}) or 0, got {self.eval_every}")
    if self.loop not in ("scan", "per_step"):
      raise ValueError(f"loop must be 'scan' or 'per_step', got {self.loop!r}")


# A streaming source is fed at most this many steps per call of the loop (a
# chunk of log_every steps of 64x64x3 images could be hundreds of MB).
STREAM_CHUNK_STEPS = 50


class _StreamFeeder:
  """Runs ``n`` steps of a host-fed source in chunks of at most
  ``STREAM_CHUNK_STEPS``, assembling the next chunk on the host (and moving
  it to the device) while the device trains on the current one."""

  def __init__(self, run, source, mesh, train_key, total: int, log_every: int):
    self.run_fn, self.source, self.mesh = run, source, mesh
    self.train_key, self.total, self.log_every = train_key, int(total), int(log_every)
    self.pending = None            # (step, n, arrays) assembled ahead

  def _arrays(self, step: int, n: int):
    if self.pending is not None and self.pending[:2] == (step, n):
      arrays, self.pending = self.pending[2], None
      return arrays
    self.pending = None
    return self.source.device_chunk(step, n, self.mesh)

  def run(self, state, step: int, n: int):
    end, parts = step + n, []
    while step < end:
      k = min(STREAM_CHUNK_STEPS, end - step)
      state, metrics = self.run_fn(state, self._arrays(step, k), self.train_key, k)
      step += k
      # The next chunk of this call, else the first of the loop's next call.
      nxt = min(STREAM_CHUNK_STEPS, (end if step < end else self.total) - step,
                _log_period(step, self.log_every, self.total))
      if nxt:
        self.pending = (step, nxt, self.source.device_chunk(step, nxt, self.mesh))
      parts.append(metrics)
    metrics = jax.device_get(parts)
    return state, jax.tree.map(lambda *xs: np.concatenate(xs), *metrics)


def _log_period(step: int, log_every: int, total: int) -> int:
  """Steps from ``step`` to the next row of metrics: chunks end on multiples
  of ``log_every`` (or at ``total``), so that every run, resumed or not,
  compiles the same one or two scan lengths."""
  return min(log_every - step % log_every, total - step)


def _plain(v):
  """An evaluation result as plain Python: floats, lists of floats, dicts of
  those; strings and booleans (a score's protocol settings) as they are."""
  if isinstance(v, dict):
    return {k: _plain(x) for k, x in v.items()}
  if isinstance(v, (str, bool)):
    return v
  if isinstance(v, (list, tuple)) and any(isinstance(x, (dict, list, tuple)) for x in v):
    return [_plain(x) for x in v]
  return float(v) if np.ndim(v) == 0 else [float(x) for x in np.ravel(v)]


class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN/inf loss; the message names the step."""


class NonFiniteEvaluationWarning(UserWarning):
  """A periodic evaluation gave NaN or inf values (logged as null)."""


def train(workdir: str, *, model: model_lib.Model, objective, optimizer, source,
          schedule: Schedule, seed: int = 0, mesh=None, eval_fn=None,
          progress: bool = True, writers=None) -> TrainState:
  """Trains (or resumes training) for ``schedule.num_steps`` steps.

  Writes ``workdir/metrics.jsonl`` (unless ``writers`` says otherwise; train
  means every ``log_every`` steps,
  plus ``eval_fn`` results every ``eval_every`` steps) and orbax checkpoints
  every ``checkpoint_every`` steps and at the end. If ``workdir`` holds a
  checkpoint, training continues from the newest one that can be read (a
  damaged one is skipped with a warning, ``vae.checkpoint.restore_latest``),
  the metrics rows after its step are dropped, and the run ends bit-identical
  to an uninterrupted one, metrics file included (timings aside). The
  workdir is locked meanwhile (``vae.workdir.lock``).

  Args:
    workdir: output folder.
    model: the static ``Model``.
    objective: a bound objective (``vae.objectives.get_objective``) or any
      loss function of the objective form.
    optimizer: the optax transformation (for a ``BoundObjective`` with extra
      parameters, ``objective.make_optimizer(...)``).
    source: a data source (``vae.data.sources.make_source``).
    schedule: a ``Schedule``.
    seed: the run's seed (``named_keys``: init and train keys).
    mesh: the device mesh (default: every device).
    eval_fn: optional ``(params, step) -> dict`` of scalars to log.
    progress: show a tqdm bar (it appears before compilation, saying so).
    writers: where the rows go (``vae.writers``); default:
      ``[JsonlWriter(workdir/metrics.jsonl)]``. A list given here REPLACES
      that default (add a ``JsonlWriter`` to keep metrics.jsonl); each gets
      ``resume(start)`` first.

  Returns:
    The final ``TrainState``.

  Signals: SIGTERM and SIGINT (``vae.interrupt``) end the run cleanly: the
  steps under way finish, a checkpoint is written, the lock is released and
  ``Interrupted`` is raised (a second signal stops at once, keeping the last
  checkpoint). An error in a periodic evaluation also checkpoints the steps
  trained before it is raised.

  Raises:
    NonFiniteLossError: a step's loss, or its gradient norm, was NaN or inf;
      the last good checkpoint is left in place.
    vae.interrupt.Interrupted: SIGTERM or SIGINT; a checkpoint of the last
      finished steps is written first.
    vae.workdir.WorkdirLockedError: another process is using ``workdir``.
    vae.checkpoint.CheckpointError: checkpoints exist but none can be read.
  """
  with interrupt.handle_signals(), workdir_lib.lock(workdir):
    # Writers made here are closed here; the caller's stay open (the job
    # writes its final evaluation to them).
    own = writers is None
    out = writers_lib.as_writer(writers_lib.default_writers(workdir, tensorboard=False)
                                if own else writers)
    try:
      return _train_locked(workdir, model=model, objective=objective, optimizer=optimizer,
                    source=source, schedule=schedule, seed=seed, mesh=mesh, eval_fn=eval_fn,
                    progress=progress, out=out)
    finally:
      if own:
        out.close()
      if source.host_fed:
        source.close()     # the prefetch thread


def _train_locked(workdir, *, model, objective, optimizer, source, schedule, seed, mesh,
                  eval_fn, progress, out):
  keys = named_keys(seed)
  os.makedirs(workdir, exist_ok=True)
  mesh = mesh if mesh is not None else parallel.make_mesh()
  parallel.check_batch_divides(source.batch_size, mesh)
  bound = objective if isinstance(objective, objectives.BoundObjective) else None
  examples = prior_examples(source, keys["prior_examples"], model)
  state = parallel.replicate(init_state(keys["init"], model, optimizer, bound, examples), mesh)
  state, restored = ckpt_lib.restore_latest(workdir, state)
  start = int(state.step)
  out.resume(start)
  if restored is not None:
    print(f"Resumed from checkpoint at step {start} in {workdir}", flush=True)
  train_step = make_train_step(objective, model, optimizer)
  run = (make_scan_loop if schedule.loop == "scan" else make_step_loop)(train_step, source, mesh)
  # A host-fed (streaming) source gives the arrays of each chunk of steps;
  # the others hold theirs on the device for the whole run.
  arrays = None if source.host_fed else parallel.replicate(source.arrays(), mesh)
  train_key = parallel.replicate(keys["train"], mesh)
  total = int(schedule.num_steps)
  feeder = (_StreamFeeder(run, source, mesh, train_key, total, int(schedule.log_every))
            if source.host_fed else None)

  def run_chunk(state, step, n):
    if feeder is not None:
      return feeder.run(state, step, n)
    state, metrics = run(state, arrays, train_key, n)
    return state, jax.device_get(metrics)

  bar = _progress_bar(progress, start, total)
  try:
    return _loop(workdir, state, start, restored, run_chunk, schedule, eval_fn, out, bar)
  finally:
    if bar is not None:
      bar.close()


def _progress_bar(progress: bool, start: int, total: int):
  if not progress or start >= total:
    return None
  bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True,
             mininterval=5.0, desc="compiling")
  bar.refresh()
  return bar


def _check_finite(metrics, step: int, last_ckpt, workdir: str) -> None:
  """Divergence: a non-finite loss, or a non-finite gradient norm (a loss can
  stay finite, near 1e30, while the gradients' norm overflows)."""
  names = [n for n in ("loss", "grad_norm") if n in metrics]
  finite = [np.isfinite(np.asarray(metrics[n], np.float64)) for n in names]
  if all(f.all() for f in finite):
    return
  i = min(int(np.argmin(f)) for f in finite if not f.all())
  name = next(n for n, f in zip(names, finite) if not f[i])
  where = (f"the last good checkpoint (step {last_ckpt}) is kept in "
           f"{workdir}/checkpoints" if last_ckpt is not None
           else "no checkpoint had been written yet")
  what = "loss" if name == "loss" else "gradient norm"
  raise NonFiniteLossError(
      f"non-finite {what} ({np.asarray(metrics[name])[i]}) at step {step + i}; training "
      f"stopped; {where}. Lower the learning rate or clip the gradient norm.")


def _periodic_eval(eval_fn, params, step: int, out) -> None:
  row = _plain(eval_fn(params, step))
  out.write_scalars(step, "eval", row)
  bad = workdir_lib.without_non_finite(row)[1]
  if bad:
    warnings.warn(f"evaluation at step {step} is not finite in {bad}; logged as null "
                  "(the run goes on; a non-finite final evaluation fails it)",
                  NonFiniteEvaluationWarning, stacklevel=3)


def _loop(workdir, state, start, last_ckpt, run_chunk, schedule, eval_fn, out, bar):
  """Runs chunks of ``log_every`` steps from ``start``: logs each chunk's
  means, evaluates every ``eval_every`` steps and checkpoints every
  ``checkpoint_every`` steps and at the end."""
  log_every, ckpt_every = int(schedule.log_every), int(schedule.checkpoint_every)
  eval_every, total = int(schedule.eval_every), int(schedule.num_steps)
  with interrupt.deferred():
    return _chunks(workdir, state, start, last_ckpt, run_chunk, log_every, ckpt_every,
                   eval_every, total, eval_fn, out, bar)


def _chunks(workdir, state, start, last_ckpt, run_chunk, log_every, ckpt_every, eval_every,
            total, eval_fn, out, bar):
  t_last = time.perf_counter()
  step = start
  while step < total:
    n = _log_period(step, log_every, total)
    state, metrics = run_chunk(state, step, n)
    _check_finite(metrics, step, last_ckpt, workdir)
    step += n
    now = time.perf_counter()
    row = {"steps_per_sec": n / max(now - t_last, 1e-9)}
    row.update({k: float(np.mean(v)) for k, v in metrics.items() if np.ndim(v) == 1})
    t_last = now
    out.write_scalars(step, "train", row)
    if eval_fn is not None and eval_every and (step % eval_every == 0 or step == total):
      try:
        _periodic_eval(eval_fn, state.params, step, out)
      except BaseException:
        if last_ckpt != step:      # the trained steps are kept whatever failed
          ckpt_lib.save(workdir, step, state)
        raise
      t_last = time.perf_counter()
    if bar is not None:
      if bar.desc.startswith("compiling"):
        bar.set_description("training", refresh=False)
      bar.update(n)
      bar.set_postfix(loss=f"{row['loss']:.2f}")
    signum = interrupt.pending()
    if step % ckpt_every == 0 or step == total or signum is not None:
      if last_ckpt != step:
        ckpt_lib.save(workdir, step, state)
      last_ckpt = step
    if signum is not None:
      raise interrupt.Interrupted(
          signum, f"stopped by {interrupt.signal_name(signum)} at step {step} of {total}; "
          f"checkpoint written in {workdir}/checkpoints; run the same command again to "
          "resume")
  return state
