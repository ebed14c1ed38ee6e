"""A run under the faults a new user meets: signals, kills during the final
evaluation, re-evaluations, diverging gradients, streamed bad data, a
workdir without its config, a tiny validation split, misspelled flags.

Each test injects the real fault: real signals to real processes, real kills
at the named moment, real files with a bad row.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import job as job_lib
from vae import checkpoint as ckpt_lib
from vae import workdir as workdir_lib
from vae import writers as writers_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "configs", "smoke.py")


def _cli(args, cwd=ROOT, **kw):
  return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(predicate, proc, timeout=300):
  deadline = time.time() + timeout
  while not predicate():
    if proc.poll() is not None:
      pytest.fail(f"the process ended first (exit {proc.returncode}): "
                  f"{proc.communicate()[1][-3000:]}")
    assert time.time() < deadline, "timed out"
    time.sleep(0.1)


def _rows(wd):
  return workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))


def _train_args(wd, data, *more):
  return ["experiments.train", "--config", SMOKE, "--workdir", wd,
          f"--config.data_dir={data}", *more]


# ---------------------------------------------------------- item 3: signals
@pytest.mark.slow   # ~15 s: two real training processes
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_the_steps_trained_releases_the_lock_and_exits_128_plus_it(
    npz_dir, tmp_path, sig):
  wd = str(tmp_path / "run")
  # Before: SIGTERM killed it silently (no checkpoint, the lock left behind);
  # SIGINT printed a 53-line traceback; up to checkpoint_every steps lost.
  p = _cli(_train_args(wd, npz_dir, "--config.num_steps=1000000",
                       "--config.checkpoint_every=1000000", "--config.eval_every=0"))
  _wait_for(lambda: os.path.exists(os.path.join(wd, "metrics.jsonl")), p)
  p.send_signal(sig)
  out, err = p.communicate(timeout=300)
  assert p.returncode == 128 + int(sig), err[-3000:]
  assert "Traceback" not in err
  last = err.strip().splitlines()[-1]
  assert last.startswith(f"error: stopped by {sig.name} at step ") and "checkpoint written" in last
  step = int(last.split(" at step ")[1].split()[0])
  assert ckpt_lib.latest_step(wd) == step == _rows(wd)[-1]["step"]
  assert os.path.getsize(os.path.join(wd, workdir_lib.LOCK_NAME)) == 0     # released


@pytest.mark.slow   # ~20 s
def test_a_signal_during_the_final_evaluation_releases_the_lock_at_once(npz_dir, tmp_path):
  wd = str(tmp_path / "run")
  p = _cli(_train_args(wd, npz_dir, "--config.num_steps=50", "--config.eval_every=0",
                       "--config.eval.num_importance_samples=20000"))
  _wait_for(lambda: ckpt_lib.latest_step(wd) == 50, p)
  time.sleep(1.0)
  p.send_signal(signal.SIGTERM)
  out, err = p.communicate(timeout=300)
  assert p.returncode == 143, err[-3000:]
  assert err.strip().splitlines()[-1] == "error: stopped by SIGTERM"
  assert os.path.getsize(os.path.join(wd, workdir_lib.LOCK_NAME)) == 0


# ------------------------------------------- item 2: TensorBoard = metrics.jsonl
def _scalars(wd):
  acc_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
  acc = acc_mod.EventAccumulator(os.path.join(wd, "tensorboard"),
                                 size_guidance={"scalars": 0, "images": 0})
  acc.Reload()
  return acc


def _assert_tensorboard_is_metrics_jsonl(wd, final_step):
  acc = _scalars(wd)
  want: dict[str, list[tuple[int, float]]] = {}
  for row in _rows(wd):
    flat = writers_lib.flatten({k: v for k, v in row.items() if k not in ("step", "split")},
                               row["split"] + "/")
    for tag, value in flat.items():
      want.setdefault(tag, []).append((row["step"], value))
  tags = acc.Tags()["scalars"]
  assert sorted(t for t in tags if not t.startswith("final/")) == sorted(want)
  for tag, pairs in want.items():
    got = [(e.step, e.value) for e in acc.Scalars(tag)]
    assert [s for s, _ in got] == [s for s, _ in pairs], tag      # each step once
    np.testing.assert_allclose([v for _, v in got], [v for _, v in pairs], rtol=1e-6,
                               err_msg=tag)
  finals = [t for t in tags if t.startswith("final/")]
  assert finals
  for tag in finals:
    assert [e.step for e in acc.Scalars(tag)] == [final_step], tag
  for name in acc.Tags()["images"]:
    assert [e.step for e in acc.Images(name)] == [final_step], name


@pytest.mark.slow   # ~40 s: a run, a kill during its final evaluation, three re-evaluations
def test_tensorboard_equals_metrics_jsonl_after_kills_and_re_evaluations(npz_dir, tmp_path):
  wd = str(tmp_path / "run")
  args = _train_args(wd, npz_dir, "--config.eval.num_importance_samples=5000")
  p = _cli(args)
  _wait_for(lambda: ckpt_lib.latest_step(wd) == 200, p)
  p.send_signal(signal.SIGKILL)           # during the final evaluation
  p.wait()
  # Before: the last train and eval rows were lost from TensorBoard for good.
  assert [r["step"] for r in _rows(wd) if r["split"] == "train"] == [50, 100, 150, 200]
  fast = _train_args(wd, npz_dir)
  for _ in range(3):   # before: each re-evaluation wrote final/* and the images again
    p = _cli(fast)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
  _assert_tensorboard_is_metrics_jsonl(wd, 200)


# ------------------------------------------- item 7: finite loss, non-finite gradient
def test_a_non_finite_gradient_norm_is_divergence(smoke_config, tmp_path):
  import jax
  import jax.numpy as jnp
  from vae import objectives
  from vae import train as train_lib
  job = job_lib.resolve(smoke_config)
  elbo = objectives.get_objective("vae")

  def loss(params, batch, key, *, model, step):
    value, aux = elbo(params, batch, key, model=model, step=step)
    # From step 130 the gradients are finite but so large (1e25) that their
    # norm overflows float32, and the loss stays finite, as with lr 1000: before,
    # training went on and checkpointed the diverged parameters.
    w = jnp.sum(jax.tree.leaves(params)[0])
    return value + jax.lax.cond(step >= 130, lambda w: 1e25 * w, lambda w: 0.0 * w, w), aux

  source = job_lib.sources.make_source(job.train_data, job.batch_size, job.keys["data"],
                                       model=job.model)
  wd = str(tmp_path / "run")
  with pytest.raises(train_lib.NonFiniteLossError,
                     match=r"non-finite gradient norm \(inf\) at step 130.*checkpoint "
                           r"\(step 100\)"):
    train_lib.train(wd, model=job.model, objective=loss, optimizer=job.optimizer,
                    source=source, schedule=job.schedule, progress=False)
  assert ckpt_lib.all_steps(wd) == [100]
  assert all(np.isfinite(r["loss"]) for r in _rows(wd))


# ------------------------------- item 1: every streamed batch checked, by file row
def _images_config(smoke_config, data_dir, source, **fields):
  c = smoke_config
  c.dataset, c.data_dir, c.data_source = "images", str(data_dir), source
  c.model.data_shape = (28, 28, 1)
  c.validation_fraction = 0.1
  c.batch_size, c.log_every, c.checkpoint_every, c.eval_every = 10, 10, 10, 0
  for k, v in fields.items():
    c[k] = v
  return c


def _png_folder(folder, n=60, grey_last=True):
  from PIL import Image
  from tests.conftest import make_binary_images
  os.makedirs(folder)
  imgs = make_binary_images(n, 3) * 255
  for i, img in enumerate(imgs):
    Image.fromarray(img[..., 0]).save(os.path.join(folder, f"img{i:03d}.png"))
  grey = os.path.join(folder, "zz_grey.png")          # last in file order
  Image.fromarray(np.full((28, 28), 128, np.uint8)).save(grey)
  return grey


@pytest.mark.parametrize("source", ["stream", "memory"])
def test_a_grey_image_in_a_binary_folder_is_refused_naming_the_file(smoke_config, tmp_path,
                                                                    source):
  grey = _png_folder(str(tmp_path / "pngs"))
  c = _images_config(smoke_config, tmp_path / "pngs", source, num_steps=40)
  # Before: streamed, it trained as Bernoulli with exit 0 (only the first
  # batch was checked); in memory it was refused.
  with pytest.raises(ValueError, match=rf"must be binary.*value 128 at {grey}, element"):
    job_lib.train(c, str(tmp_path / "run"), progress=False)


@pytest.mark.parametrize("source", ["stream", "memory"])
def test_a_nan_in_a_streamed_npy_is_reported_at_the_files_own_row(smoke_config, tmp_path,
                                                                  source):
  from tests.conftest import make_binary_images
  x = make_binary_images(1500, 4).astype(np.float32)
  x[1234, 5, 6, 0] = np.nan
  path = str(tmp_path / "data.npy")
  np.save(path, x)
  c = _images_config(smoke_config, path, source, num_steps=400, batch_size=50,
                     log_every=50, checkpoint_every=50)
  # Before: streamed, the run died at step 19 blaming the optimiser ("non-finite
  # loss ... Lower optim.learning_rate"); in memory the NaN was reported at its
  # row within the training split, (1113, 5, 6, 0).
  with pytest.raises(ValueError, match=rf"NaN or inf .*first at row 1234 of {path}, "
                                       r"element \(5, 6, 0\)"):
    job_lib.train(c, str(tmp_path / "run"), progress=False)
