"""Training loop: it learns, traces once, resumes exactly, fails cleanly."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae import checkpoint as ckpt_lib
from vae import model as model_lib
from vae import objectives
from vae import train as train_lib
from experiments import job as job_lib
from vae import optim
from vae.data import sources


def _setup(binary_images, batch=32, lr=3e-3):
  m = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=4,
                           encoder_hidden=(32,), decoder_hidden=(32,))
  opt = optim.make_optimizer(lr)
  step = train_lib.make_train_step(objectives.get_objective("vae"), m, opt)
  src = sources.ArraySource(binary_images, batch, jax.random.key(1))
  return m, opt, step, src


def _assert_params_close(s1, s2):
  """Two loops that draw the same numbers agree up to float reassociation."""
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_short_training_lowers_the_loss(binary_images):
  m, opt, step, src = _setup(binary_images)
  state = train_lib.init_state(jax.random.key(0), m, opt)
  state, metrics = train_lib.make_scan_loop(step, src)(state, src.arrays(), jax.random.key(2), 300)
  loss = np.asarray(metrics["loss"])
  assert int(state.step) == 300
  assert loss[-30:].mean() < 0.6 * loss[:30].mean(), (loss[:30].mean(), loss[-30:].mean())


def test_train_step_traces_once(binary_images):
  m, opt, _, src = _setup(binary_images)
  traces = []
  base = objectives.get_objective("vae")

  def counting_loss(*a, **k):
    traces.append(1)
    return base(*a, **k)

  step = train_lib.jit_train_step(train_lib.make_train_step(counting_loss, m, opt))
  state = train_lib.init_state(jax.random.key(0), m, opt)
  batches = src.host_batches(0)
  for s in range(5):
    state, metrics = step(state, next(batches), jax.random.fold_in(jax.random.key(2), s))
  jax.block_until_ready(state)
  assert len(traces) == 1
  assert int(state.step) == 5


@pytest.mark.slow
def test_scanned_loop_equals_host_fed_per_step_loop(binary_images):
  m, opt, step, src = _setup(binary_images)
  key = jax.random.key(2)
  s1 = train_lib.init_state(jax.random.key(0), m, opt)
  s1, _ = train_lib.make_scan_loop(step, src)(s1, src.arrays(), key, 40)
  s2 = train_lib.init_state(jax.random.key(0), m, opt)
  jstep = train_lib.jit_train_step(step)
  batches = src.host_batches(0)
  for s in range(40):  # 40 steps cross an epoch boundary (512 / 32 = 16)
    s2, _ = jstep(s2, next(batches), jax.random.fold_in(key, s))
  _assert_params_close(s1, s2)


def test_epochs_visit_every_example_once(binary_images):
  src = sources.ArraySource(np.arange(10 * 784, dtype=np.uint8).reshape(10, 28, 28, 1) % 2,
                              batch_size=5, data_key=jax.random.key(0))
  arrays = src.arrays()
  perm = src.init(arrays, 0)
  seen = []
  for s in range(4):
    _, perm = src.next(arrays, perm, jnp.int32(s))
    seen.append(np.asarray(jax.lax.dynamic_slice(perm, ((s % 2) * 5,), (5,))))
  assert sorted(np.concatenate(seen[:2])) == list(range(10))
  assert sorted(np.concatenate(seen[2:])) == list(range(10))
  assert not np.array_equal(np.concatenate(seen[:2]), np.concatenate(seen[2:]))


def test_resumed_run_is_bit_identical(smoke_config, npz_dir, tmp_path):
  data = job_lib.load_split(smoke_config, "train")
  full = job_lib.train(smoke_config, str(tmp_path / "full"), data, progress=False)
  half = smoke_config.copy_and_resolve_references()
  half.num_steps = 100
  job_lib.train(half, str(tmp_path / "resumed"), data, progress=False)
  assert ckpt_lib.latest_step(str(tmp_path / "resumed")) == 100
  resumed = job_lib.train(smoke_config, str(tmp_path / "resumed"), data, progress=False)
  assert int(resumed.step) == int(full.step) == 200
  for a, b in zip(jax.tree.leaves((full.params, full.opt_state)),
                  jax.tree.leaves((resumed.params, resumed.opt_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The metrics file too, timings aside (tests/test_workdir_faults.py resumes
  # after a kill that left rows past the checkpoint).
  def rows(wd):
    import json
    out = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
    return [{k: v for k, v in r.items() if k != "steps_per_sec"} for r in out]
  assert rows(str(tmp_path / "resumed")) == rows(str(tmp_path / "full"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(smoke_config, tmp_path, monkeypatch):
  data = job_lib.load_split(smoke_config, "train")
  real = train_lib.make_train_step

  def poisoned(loss_fn, model, optimizer):
    step = real(loss_fn, model, optimizer)

    def wrapped(state, batch, key):
      new, metrics = step(state, batch, key)
      metrics["loss"] = jnp.where(state.step >= 130, jnp.nan, metrics["loss"])
      return new, metrics
    return wrapped

  monkeypatch.setattr(train_lib, "make_train_step", poisoned)
  wd = str(tmp_path / "nan")
  with pytest.raises(train_lib.NonFiniteLossError, match=r"at step 130.*checkpoint \(step 100\)"):
    job_lib.train(smoke_config, wd, data, progress=False)
  assert ckpt_lib.latest_step(wd) == 100
  monkeypatch.setattr(train_lib, "make_train_step", real)
  resumed = job_lib.train(smoke_config, wd, data, progress=False)
  assert int(resumed.step) == 200


def test_metrics_jsonl_is_written(smoke_config, tmp_path):
  import json
  data = job_lib.load_split(smoke_config, "train")
  wd = str(tmp_path / "m")
  job_lib.train(smoke_config, wd, data, progress=False)
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == [50, 100, 150, 200]
  assert {"loss", "elbo", "kl", "log_likelihood", "grad_norm"} <= set(rows[0])


def test_schedules_and_clipping():
  sched = optim.make_schedule(1e-3, schedule="exponential", decay_steps=100, decay_rate=0.1)
  np.testing.assert_allclose(sched(0), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(sched(100), 1e-4, rtol=1e-5)
  cos = optim.make_schedule(1.0, schedule="cosine", decay_steps=10, warmup_steps=5)
  np.testing.assert_allclose([cos(0), cos(5), cos(15)], [0.0, 1.0, 0.0], atol=1e-6)
  opt = optim.make_optimizer(1.0, optimizer="sgd", grad_clip_norm=1.0)
  params = {"w": jnp.zeros(2)}
  updates, _ = opt.update({"w": jnp.array([30.0, 40.0])}, opt.init(params), params)
  np.testing.assert_allclose(optax.global_norm(updates), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match="schedule must be"):
    optim.make_schedule(1.0, schedule="linear")


def test_per_step_loop_equals_scanned_loop_and_auto_choice(binary_images):
  m, opt, step, src = _setup(binary_images)
  key = jax.random.key(2)
  s1 = train_lib.init_state(jax.random.key(0), m, opt)
  s1, m1 = train_lib.make_scan_loop(step, src)(s1, src.arrays(), key, 20)
  s2 = train_lib.init_state(jax.random.key(0), m, opt)
  s2, m2 = train_lib.make_step_loop(step, src)(s2, src.arrays(), key, 20)
  assert m2["loss"].shape == (20,)
  np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-4)
  _assert_params_close(s1, s2)
  from experiments.configs import default
  c = default.get_config()
  assert job_lib.schedule(c).loop == "scan"           # "auto": scan, conv on CPU too
  c.train_loop = "per_step"
  assert job_lib.schedule(c).loop == "per_step"
