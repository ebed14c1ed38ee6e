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


class _SignalsInDel:
  """Sends SIGTERM to this process from ``__del__``, where the handler's
  exception is dropped ("Exception ignored in ..."), as in the jax
  garbage-collection callback where CI once lost it."""

  def __del__(self):
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):        # bytecodes for the handler to run between, here
      pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_whose_exception_was_dropped_is_raised_again_not_lost():
  from vae import interrupt
  before = signal.getsignal(signal.SIGTERM)
  # Before: the run went on to the end and exited 0.
  with pytest.raises(interrupt.Interrupted) as stopped:
    with interrupt.handle_signals():
      obj = _SignalsInDel()
      del obj                               # the handler ran inside __del__
      interrupt.check()                     # the evaluation's next batch
      pytest.fail("check() did not raise the recorded signal")
  assert stopped.value.exit_code == 143
  with pytest.raises(interrupt.Interrupted):
    with interrupt.handle_signals():        # nothing calls check(): the block's end does
      obj = _SignalsInDel()
      del obj
  interrupt.check()                         # outside the block: nothing is pending
  assert signal.getsignal(signal.SIGTERM) == before


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


# ------------------------------ item 4: checkpoints without config.json
@pytest.fixture(scope="module")
def finished_run(npz_dir, tmp_path_factory):
  """A finished smoke run (100 steps), trained by the job."""
  from experiments.configs import smoke
  c = smoke.get_config()
  c.data_dir, c.max_train_examples, c.eval.max_examples, c.num_steps = npz_dir, 0, 0, 100
  c.eval_every, c.eval.num_importance_samples = 0, 2
  wd = str(tmp_path_factory.mktemp("finished") / "run")
  job_lib.train_and_evaluate(c, wd, progress=False)
  return wd, c


def _copy_run(src, dst):
  import shutil
  shutil.copytree(src, dst)
  return str(dst)


@pytest.mark.slow   # ~20 s: a finished run, then two more jobs on it
def test_checkpoints_without_config_json_are_checked_against_the_config(finished_run,
                                                                       tmp_path):
  src, config = finished_run
  wd = _copy_run(src, tmp_path / "run")
  os.remove(os.path.join(wd, "config.json"))
  other = config.copy_and_resolve_references()
  other.model.latent_dim = 3
  # Before: the changed config wrote its config.json, then failed (exit 7,
  # shape mismatch), and the original config was refused from then on (exit 6).
  with pytest.raises(job_lib.ConfigChangedError,
                     match=r"(?s)no config.json.*params.decoder.dense_0.kernel: stored \(8, 64\) "
                           r"float32, this config \(3, 64\)"):
    job_lib.train_and_evaluate(other, wd, progress=False)
  assert not os.path.exists(os.path.join(wd, "config.json"))       # nothing written
  job_lib.train_and_evaluate(config, wd, progress=False)              # the original fits
  assert json.load(open(os.path.join(wd, "config.json")))["model"]["latent_dim"] == 8


# ------------------------------------------ item 5: a tiny validation split
def test_a_validation_split_too_small_to_evaluate_is_refused_before_training(smoke_config,
                                                                            tmp_path):
  from PIL import Image
  from vae import checks
  folder = tmp_path / "three"
  os.makedirs(folder)
  for i in range(3):    # with validation_fraction 0.2, 0.png alone is in validation
    img = (np.random.default_rng(i).random((28, 28)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(img).save(folder / f"{i}.png")
  c = _images_config(smoke_config, folder, "memory", validation_fraction=0.2, batch_size=1)
  wd = str(tmp_path / "run")
  # Before: trained, then crashed in the KL diagnostics ("minibatch stratified
  # sampling needs a batch of at least 2, got 1") with no checkpoint written.
  with pytest.raises(checks.InputError, match=r"validation\) holds 1 example.*at least 2"):
    job_lib.train_and_evaluate(c, wd, progress=False)
  assert not os.path.exists(os.path.join(wd, "checkpoints"))


def test_an_error_in_a_periodic_evaluation_keeps_the_steps_trained(smoke_config, tmp_path):
  wd = str(tmp_path / "run")
  calls = []

  def failing_eval(params, step):
    calls.append(step)
    raise RuntimeError("evaluation failed")

  smoke_config.checkpoint_every = 200        # the first checkpoint would be at 200
  with pytest.raises(RuntimeError, match="evaluation failed"):
    job_lib.train(smoke_config, wd, eval_fn=failing_eval, progress=False)
  assert calls == [100] and ckpt_lib.all_steps(wd) == [100]


# ------------------------------------- item 6: exit codes and one-line messages
def _run_script(args, cwd=ROOT):
  p = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                     timeout=600)
  return p.returncode, p.stdout, p.stderr


@pytest.mark.slow   # ~60 s: a dozen real processes
def test_bad_command_lines_get_one_line_and_exit_2_and_help_exits_0(finished_run, npz_dir):
  wd, _ = finished_run
  usage = [
      # (command line, what the one error line says)
      (["experiments.evaluate", "--workdir", wd, "--split", "nosuch"], "--split must be one of"),
      # A split the data folder lacks (before: exit 1 with a 30-line traceback).
      (["experiments.evaluate", "--workdir", wd, "--split", "test"], "split 'test' expected at"),
      (["experiments.evaluate", "--workdir", wd, "--nosuch"], "Unknown command line flag"),
      (["experiments.evaluate"], "--workdir"),
      (["experiments.train", "--config.model.latnet_dim=3"],
       "--config.model.latnet_dim: the config has no field 'latnet_dim'; did you mean "
       "'latent_dim'?"),
      (["experiments.train", "--config.hparams.beta_vae.betta=3"], "did you mean 'beta'?"),
      (["experiments.train", "--config", "smok"], "did you mean 'smoke'?"),
      (["experiments.train", "--config", SMOKE, "--workdir", wd + "_shape",
        f"--config.data_dir={npz_dir}", "--config.model.data_shape=(28,28)"],
       "model.data_shape is (28, 28) but the 'binarized_mnist' evaluation data holds "
       "examples of shape (28, 28, 1)"),
  ]
  for args, says in usage:
    code, out, err = _run_script(args)
    assert code == 2, (args, err[-3000:])
    assert "Traceback" not in err, (args, err[-3000:])
    errors = [l for l in err.strip().splitlines() if l.startswith("error: ")]
    assert len(errors) == 1 and says in errors[0], (args, err)
  for script, own_flag in [("experiments.train", "--workdir"), ("experiments.evaluate",
                                                                 "--num_samples"),
                           ("experiments.sweep", "--root"), ("experiments.study", "--workroot"),
                           ("experiments.benchmark", "--scoring")]:
    code, out, err = _run_script([script, "--help"])
    assert code == 0 and own_flag in out, (script, code, out[-2000:], err[-2000:])


@pytest.mark.slow   # shares the finished run of the test above
def test_a_damaged_checkpoint_is_named_by_its_file_not_a_bound_method(finished_run, tmp_path):
  wd = _copy_run(finished_run[0], tmp_path / "run")
  step_dir = ckpt_lib.step_dir(wd, 100)
  files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(step_dir, "default", "d"))
           for f in fs]
  biggest = max(files, key=os.path.getsize)
  with open(biggest, "r+b") as f:
    f.truncate(os.path.getsize(biggest) // 2)
  job = job_lib.resolve(job_lib.load_run_config(wd), with_data=False)
  with pytest.raises(ckpt_lib.CheckpointError) as e:
    job_lib.restore_state(wd, job)
  # Before: "... See full TensorStore details: <bound method pybind11_detail...".
  assert "bound method" not in str(e.value) and "TensorStore({" not in str(e.value)
  assert f'at local file "{step_dir}/default/"' in str(e.value)


@pytest.mark.slow   # ~15 s: a real run on a full file system
def test_a_full_disk_is_said_in_one_line_with_the_last_checkpoint_kept(npz_dir, tmp_path):
  tiny = tmp_path / "tiny"
  os.makedirs(tiny)
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(tiny)],
                    capture_output=True).returncode:
    pytest.skip("mounting a small tmpfs needs root")
  try:
    wd = str(tiny / "run")
    code, out, err = _run_script(_train_args(wd, npz_dir))
    # Before: exit 1, the error the last line of a 253-line traceback.
    assert code == 8, err[-3000:]
    lines = [l for l in err.strip().splitlines()       # leaving out the progress
             if "step/s" not in l and not l.startswith("[") and l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: no space left on the device while "
                                                   f"writing {wd}/checkpoints/"), err[-3000:]
  finally:
    subprocess.run(["umount", str(tiny)])


# ------------------------------------------- item 8: resume by workdir alone
@pytest.mark.slow   # ~30 s: two real processes
def test_a_workdir_is_resumed_and_re_evaluated_by_its_path_alone(npz_dir, tmp_path):
  wd = str(tmp_path / "run")
  code, out, err = _run_script(_train_args(wd, npz_dir, "--config.num_steps=100",
                                           "--config.eval_every=0"))
  assert code == 0, err[-3000:]
  # Before: the default config was used and refused (exit 6).
  code, out, err = _run_script(["experiments.train", "--workdir", wd, "--config.num_steps=150"])
  assert code == 0, err[-3000:]
  assert f"continuing {wd} with its config.json" in err
  assert ckpt_lib.latest_step(wd) == 150 and _rows(wd)[-1]["step"] == 150
  assert json.load(open(os.path.join(wd, "eval_validation.json")))["step"] == 150


# ------------------------------------------------------- item 10: smaller ones
def test_each_reconstruction_sits_under_its_original_for_any_count():
  from vae import plots
  for n in (20, 8, 3, 32):
    pair = np.concatenate([np.full((n, 2, 2, 1), i, np.float32) for i in (0.0, 0.5)])
    pair[:n, 0, 0, 0] = np.arange(n)            # original i is marked i,
    pair[n:, 0, 0, 0] = np.arange(n)            # and so is its reconstruction
    cells = plots.reconstruction_rows(pair, 8)
    rows = len(cells) // 8
    assert len(cells) % 8 == 0 and rows % 2 == 0
    for i in range(n):      # before: with 20, reconstruction 0 sat in row 2, column 4
      r, c = divmod(i, 8)
      below = cells[(r + rows // 2) * 8 + c]
      assert cells[r * 8 + c][0, 0, 0] == below[0, 0, 0] == i and below[1, 1, 0] == 0.5


# ------------------------------- item 9: opening a big .npy reads a sample, not the file
def test_opening_a_big_npy_reads_a_sample_of_rows_not_the_whole_file(monkeypatch, tmp_path):
  from vae.data import images

  class Counting:
    """A [N, 8, 8, 1] uint8 array that counts the rows read."""
    def __init__(self, n):
      self.shape, self.dtype, self.ndim, self.rows = (n, 8, 8, 1), np.dtype(np.uint8), 4, set()

    def __len__(self):
      return self.shape[0]

    def __getitem__(self, index):
      rows = np.arange(self.shape[0])[index]
      self.rows.update(np.atleast_1d(rows).tolist())
      out = np.zeros((np.size(rows), 8, 8, 1), np.uint8)
      out[np.atleast_1d(rows) == self.shape[0] - 1] = 255      # the last row is not binary
      return out if np.ndim(rows) else out[0]

  big = Counting(500_000)
  monkeypatch.setattr(images, "_array_file", lambda path: big)
  reader = images.ArrayFileReader(str(tmp_path / "big.npy"), (8, 8, 1), "all")
  # Before: every row was scanned (in blocks of 4096), 1.23 GB read at start.
  assert len(big.rows) <= 256
  assert reader.scale == 1.0 / 255.0        # decided from the sample: the last row has 255


@pytest.mark.slow
def test_the_compilation_cache_gives_later_processes_the_same_programs(tmp_path):
  cache = str(tmp_path / "cache")
  code = ("import sys, jax, jax.numpy as jnp, numpy as np\n"
          "from vae import compile_cache\n"
          "print(compile_cache.enable(sys.argv[1], min_compile_seconds=0))\n"
          "f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0))\n"
          "print(np.asarray(f(jnp.arange(64.0).reshape(8, 8) / 64)).tobytes().hex())\n")
  runs = [subprocess.run([sys.executable, "-c", code, cache], cwd=ROOT, capture_output=True,
                         text=True, timeout=300) for _ in range(2)]
  for r in runs:
    assert r.returncode == 0, r.stderr[-2000:]
  assert runs[0].stdout == runs[1].stdout and runs[0].stdout.startswith(cache)
  assert os.listdir(cache)                       # the program was written, then read back
  off = subprocess.run([sys.executable, "-c", code, ""], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, VAE_COMPILATION_CACHE="0"))
  assert off.returncode == 0 and off.stdout.startswith("None"), off.stderr[-2000:]
