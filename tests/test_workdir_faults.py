"""Faults and misuse of a workdir: damaged checkpoints, a rerun with
another config, a diverged run, two processes on one workdir, metrics after a
resume, paths from another directory, and experiments.evaluate's checks.

Each test injects the real fault: it truncates real checkpoint files, starts
real processes, diverges a real run.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import pytest

from experiments import evaluate as evaluate_cli
from experiments import job as job_lib
from vae import checkpoint as ckpt_lib
from vae import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "experiments", "configs", "smoke.py")


def _rows(workdir):
  """metrics.jsonl without the timings (which differ between runs)."""
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  for r in rows:
    r.pop("steps_per_sec", None)
  return rows


def _assert_same_state(a, b):
  for x, y in zip(jax.tree.leaves((a.params, a.opt_state)), jax.tree.leaves((b.params, b.opt_state))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def finished(npz_dir, tmp_path_factory):
  """An uninterrupted 200-step run (checkpoints 100 and 200) and its data."""
  from experiments.configs import smoke
  c = smoke.get_config()
  c.data_dir, c.max_train_examples, c.eval.max_examples = npz_dir, 0, 0
  data = job_lib.load_split(c, "train")
  wd = str(tmp_path_factory.mktemp("finished") / "run")
  state = job_lib.train(c, wd, data, progress=False)
  # job.train writes no config.json; evaluate needs one.
  with open(os.path.join(wd, "config.json"), "w") as f:
    f.write(c.to_json_best_effort())
  return wd, data, state


def _copy(wd, tmp_path, name):
  dst = str(tmp_path / name)
  shutil.copytree(wd, dst)
  return dst


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _largest_data_file(step_dir):
  files = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(step_dir, "default", "d"))
           for f in fs]
  return max(files, key=os.path.getsize)


# ------------------------------------------ item 2: damaged latest checkpoint
@pytest.mark.parametrize("damage", ["data_file", "metadata"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_older_one(
    finished, smoke_config, tmp_path, damage):
  wd, data, full = finished
  run = _copy(wd, tmp_path, damage)
  step_dir = ckpt_lib.step_dir(run, 200)
  victim = (_largest_data_file(step_dir) if damage == "data_file"
            else os.path.join(step_dir, "default", "_METADATA"))
  _truncate(victim)
  # Before: a raw tensorstore OUT_OF_RANGE error, or a JSONDecodeError naming no file.
  with pytest.warns(ckpt_lib.CheckpointFallbackWarning) as caught:
    resumed = job_lib.train(smoke_config, run, data, progress=False)
  messages = [str(w.message) for w in caught]
  assert any("step 200" in m and victim in m for m in messages), messages
  assert any("resumed from checkpoint step 100" in m for m in messages), messages
  # Steps 100-200 are trained again, to exactly the uninterrupted result ...
  assert int(resumed.step) == 200
  _assert_same_state(full, resumed)
  # ... and the metrics file holds each step once, as the uninterrupted run's (item 6).
  assert _rows(run) == _rows(wd)
  # Nothing is deleted: the damaged checkpoint is set aside.
  assert os.path.exists(os.path.join(run, "damaged_checkpoints", "200", "default", "_METADATA"))
  assert ckpt_lib.all_steps(run) == [100, 200]


def test_when_no_checkpoint_can_be_read_the_error_lists_each(finished, smoke_config, tmp_path):
  wd, data, _ = finished
  run = _copy(wd, tmp_path, "both")
  for step in (100, 200):
    _truncate(os.path.join(ckpt_lib.step_dir(run, step), "default", "_METADATA"))
  with pytest.warns(ckpt_lib.CheckpointFallbackWarning), \
       pytest.raises(ckpt_lib.CheckpointError, match=r"(?s)step 200: .*_METADATA.*step 100: "):
    job_lib.train(smoke_config, run, data, progress=False)
  assert ckpt_lib.all_steps(run) == [100, 200]          # nothing moved


# ------------------------------------------- item 6: metrics after a resume
def test_metrics_rows_after_the_restored_step_are_dropped(finished, smoke_config, tmp_path):
  wd, data, full = finished
  run = _copy(wd, tmp_path, "killed")
  # A run killed after logging steps 150 and 200 but before checkpoint 200
  # was complete: orbax writes it to a temporary folder renamed at the end.
  shutil.rmtree(ckpt_lib.step_dir(run, 200))
  with open(os.path.join(run, "metrics.jsonl"), "a") as f:
    f.write('{"step": 250, "split": "tr')              # a line cut by the kill
  resumed = job_lib.train(smoke_config, run, data, progress=False)
  _assert_same_state(full, resumed)
  assert _rows(run) == _rows(wd)
  assert [r["step"] for r in _rows(run)] == [50, 100, 150, 200]


# ------------------------------------- item 3: a rerun with another config
@pytest.mark.slow
def test_a_rerun_with_another_config_is_refused_before_touching_anything(smoke_config, tmp_path):
  wd = str(tmp_path / "run")
  smoke_config.num_steps = 100
  job_lib.train_and_evaluate(smoke_config, wd)
  before = {f: open(os.path.join(wd, f), "rb").read()
            for f in ("config.json", "metrics.jsonl", "eval_validation.json")}
  changed = smoke_config.copy_and_resolve_references()
  changed.model.latent_dim = 20
  changed.optim.learning_rate = 1e-2
  # Before: an orbax shape error suggesting strict=False, and config.json said 20.
  with pytest.raises(job_lib.ConfigChangedError) as e:
    job_lib.train_and_evaluate(changed, wd)
  msg = str(e.value)
  assert "model.latent_dim: 8 -> 20" in msg and "optim.learning_rate: 0.001 -> 0.01" in msg
  assert "num_steps:" not in msg
  for f, content in before.items():
    assert open(os.path.join(wd, f), "rb").read() == content, f
  # The fields that cannot change what was trained may differ: a longer run
  # with other evaluation sizes resumes.
  longer = smoke_config.copy_and_resolve_references()
  longer.num_steps = 150
  longer.eval.num_importance_samples = 5
  longer.log_every = 25
  res = job_lib.train_and_evaluate(longer, wd)
  assert res["step"] == 150 and res["iwae"]["num_samples"] == 5


def test_what_a_rerun_may_differ_in(smoke_config, tmp_path):
  stored = json.loads(smoke_config.to_json_best_effort())
  # A field one side leaves out takes the default: not a change.
  sparse = smoke_config.copy_and_resolve_references()
  del sparse.optim["grad_clip_norm"]
  assert job_lib.config_changes(stored, sparse) == []
  # Tuples and lists, relative and absolute data folders are not changes.
  moved = job_lib.absolute_paths(smoke_config)
  assert job_lib.config_changes(stored, moved) == []
  assert job_lib.absolute_paths(_with(smoke_config, tfds_data_dir="gs://b/tfds")).tfds_data_dir \
      == "gs://b/tfds"
  # A workdir whose run never wrote a checkpoint (it diverged at once) takes any config.
  wd = tmp_path / "nothing_trained"
  wd.mkdir()
  (wd / "config.json").write_text(smoke_config.to_json_best_effort())
  job_lib.check_rerun(_with(smoke_config, seed=7), str(wd))


def _with(config, **fields):
  c = config.copy_and_resolve_references()
  for k, v in fields.items():
    c[k] = v
  return c


# -------------------------- items 4, 5 and 8: real processes from the CLI
def _cli(args, cwd, **kw):
  return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow   # ~10 s: a real CLI run
def test_a_diverged_run_exits_nonzero_with_strict_json(npz_dir, tmp_path):
  wd = str(tmp_path / "diverged")
  # Before: exit 0, with "nll": NaN in eval_validation.json; then exit 4 (the
  # final evaluation not finite). Its gradient norm is not finite while the
  # loss still is, which now stops training: exit 3, the last good checkpoint kept.
  p = _cli(["experiments.train", "--config", SMOKE, "--workdir", wd,
            f"--config.data_dir={npz_dir}", "--config.optim.learning_rate=1.0"], ROOT)
  out, err = p.communicate(timeout=600)
  assert p.returncode == job_lib.EXIT_CODES["NonFiniteLossError"] == 3, err[-3000:]
  assert "non-finite" in err.strip().splitlines()[-1] and "Traceback" not in err
  assert "optim.learning_rate" in err.strip().splitlines()[-1]
  rows = os.path.join(wd, "metrics.jsonl")
  for line in (open(rows) if os.path.exists(rows) else []):
    json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))


def test_a_final_evaluation_that_is_not_finite_is_written_as_strict_json(
    smoke_config, tmp_path, monkeypatch):
  from experiments import record
  real = record.ev.evaluate_params

  def diverged(*args, **kwargs):         # a model whose evaluation overflows
    out = real(*args, **kwargs)
    out["iwae"]["nll"] = float("nan")
    return out
  monkeypatch.setattr(record.ev, "evaluate_params", diverged)
  smoke_config.num_steps, smoke_config.eval_every = 50, 0
  wd = str(tmp_path / "run")
  with pytest.raises(job_lib.NonFiniteEvaluationError, match="not finite.*diverged"):
    job_lib.train_and_evaluate(smoke_config, wd, progress=False)
  text = open(os.path.join(wd, "eval_validation.json")).read()
  result = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
  assert result["iwae"]["nll"] is None and "iwae.nll" in result["non_finite"]


def test_the_lock_names_a_live_holder_and_takes_over_a_dead_ones(tmp_path):
  wd = str(tmp_path / "wd")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from vae import workdir as w\n"
       f"with w.lock({wd!r}):\n  print('held', flush=True); time.sleep(600)"],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(workdir_lib.WorkdirLockedError, match=rf"in use by process {holder.pid} "):
      with workdir_lib.lock(wd):
        pass
  finally:
    holder.kill()
    holder.wait()
  with pytest.warns(workdir_lib.StaleLockWarning, match=rf"left by process {holder.pid} "):
    with workdir_lib.lock(wd):
      with workdir_lib.lock(wd):          # re-entrant in one process
        pass
  assert os.path.getsize(os.path.join(wd, workdir_lib.LOCK_NAME)) == 0   # released


@pytest.mark.slow   # ~12 s: three real training processes
def test_a_second_run_on_a_busy_workdir_is_refused_and_a_stale_lock_taken_over(
    npz_dir, tmp_path):
  wd = str(tmp_path / "busy")
  args = ["experiments.train", "--config", SMOKE, "--workdir", wd, f"--config.data_dir={npz_dir}",
          "--config.num_steps=1000000", "--config.checkpoint_every=1000000"]
  first = _cli(args, ROOT)
  try:
    lock_file = os.path.join(wd, workdir_lib.LOCK_NAME)
    deadline = time.time() + 300
    while not (os.path.exists(lock_file) and os.path.getsize(lock_file)):
      assert first.poll() is None, first.communicate()[1][-3000:]
      assert time.time() < deadline
      time.sleep(0.2)
    # Before: the second crashed deep in orbax (Directory not empty).
    second = _cli(args, ROOT)
    out, err = second.communicate(timeout=300)
    assert second.returncode == job_lib.EXIT_CODES["WorkdirLockedError"] == 5, err[-3000:]
    assert f"process {first.pid}" in err and "in use" in err
    assert first.poll() is None                    # the first one is unharmed
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  # The killed run left its lock file behind: the next run takes it over.
  third = _cli(args[:-2] + ["--config.num_steps=50"], ROOT)
  out, err = third.communicate(timeout=600)
  assert third.returncode == 0, err[-3000:]
  assert "taking over the lock" in err and f"process {first.pid}" in err


def _script(name):
  return os.path.join(os.path.dirname(sys.executable), name)


@pytest.mark.slow   # ~15 s: train and evaluate processes from two other directories
def test_the_cli_works_from_any_directory(npz_dir, tmp_path):
  # The default config (the default job, quickstart.py) is found inside the
  # package, not relative to the current directory (before:
  # "experiments/configs/default.py" not found).
  check = subprocess.run(
      [sys.executable, "-c", "import os; from vae_experiments import train as t; "
       "assert os.path.isabs(t._DEFAULT_CONFIG) and os.path.exists(t._DEFAULT_CONFIG), "
       "t._DEFAULT_CONFIG; "
       "assert t._DEFAULT_CONFIG.endswith(os.path.join('configs', 'quickstart.py')), "
       "t._DEFAULT_CONFIG"], cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
  assert check.returncode == 0, check.stderr[-2000:]
  # A relative data_dir is stored absolute, so that evaluation works on the
  # workdir from another directory (before: data not found).
  elsewhere = tmp_path / "elsewhere"
  shutil.copytree(npz_dir, elsewhere / "data")
  wd = str(tmp_path / "wd")
  p = subprocess.run([_script("vae-train"), "--config", "smoke", "--workdir", wd,
                      "--config.data_dir=data", "--config.num_steps=50", "--config.eval_every=0",
                      "--config.eval.max_examples=50"], cwd=str(elsewhere), capture_output=True,
                     text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  stored = json.load(open(os.path.join(wd, "config.json")))
  assert stored["data_dir"] == str(elsewhere / "data")
  p = subprocess.run([_script("vae-evaluate"), "--workdir", wd, "--num_samples", "3",
                      "--max_examples", "20"], cwd=str(tmp_path), capture_output=True, text=True,
                     timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  assert json.load(open(os.path.join(wd, "eval_validation_k3.json")))["num_examples"] == 20


@pytest.mark.slow   # ~30 s: evaluates the default conv model
def test_the_default_job_runs_from_outside_the_repository(tmp_path):
  p = subprocess.Popen([_script("vae-train"), "--workdir", str(tmp_path / "wd"),
                        "--config.num_steps=0", "--config.eval.max_examples=16",
                        "--config.eval_every=0", "--config.eval.score_every=0"],
                       cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
  _, err = p.communicate(timeout=600)
  assert p.returncode == 0, err[-3000:]
  assert os.path.exists(tmp_path / "wd" / "eval_validation.json")


# ----------------------------- item 9: experiments.evaluate checks first
@pytest.fixture
def never_restore(monkeypatch):
  def fail(*a, **k):
    raise AssertionError("restored before the flags and config.json were checked")
  monkeypatch.setattr(job_lib, "restore_state", fail)
  monkeypatch.setattr(ckpt_lib, "restore", fail)


def _evaluation_config(wd, **overrides):
  kw = dict(split="validation", num_samples=3, max_examples=10, data_dir=None, metrics=["auto"])
  kw.update(overrides)
  return evaluate_cli.evaluation_config(wd, **kw)


def test_evaluate_checks_the_split_and_config_before_restoring(finished, tmp_path, never_restore):
  wd, _, _ = finished
  record = json.load(open(os.path.join(wd, "config.json")))
  run = str(tmp_path / "ev")
  os.makedirs(run)

  def write(rec):
    with open(os.path.join(run, "config.json"), "w") as f:
      json.dump(rec, f)

  write(record)
  with pytest.raises(ValueError, match=r"--split must be one of \['train', 'validation', "
                     r"'test'\] for 'binarized_mnist', got 'tset'"):
    _evaluation_config(run, split="tset")
  with pytest.raises(ValueError, match=r"disentanglement metrics need a data set with known"):
    _evaluation_config(run, metrics=["mig"])
  with pytest.raises(ValueError, match=r"--metrics must be among"):
    _evaluation_config(run, metrics=["migg"])
  # Before: AttributeError: 'eval'. Fields that say what was trained are
  # required; the others take today's defaults (older workdirs).
  write({k: v for k, v in record.items() if k != "model"})
  with pytest.raises(ValueError, match=r"config.json is not a complete run config: it lacks "
                     r"\['model.architecture', 'model.data_shape'"):
    _evaluation_config(run)
  write({k: v for k, v in record.items() if k != "eval"})
  config, names = _evaluation_config(run)
  assert config.eval.num_importance_samples == 3 and names == []
  # A schedule that training would now refuse does not stop its evaluation.
  write({**record, "eval_every": 70})
  _evaluation_config(run)
  with open(os.path.join(run, "config.json"), "w") as f:
    f.write('{"seed": 0, "dataset": ')
  with pytest.raises(ValueError, match="config.json is not valid JSON"):
    _evaluation_config(run)


def test_evaluate_cli_exits_2_on_a_bad_split(finished):
  wd, _, _ = finished
  p = _cli(["experiments.evaluate", "--workdir", wd, "--split", "tset"], ROOT)
  _, err = p.communicate(timeout=300)
  assert p.returncode == 2 and "--split must be one of" in err, err[-2000:]


def test_after_a_failed_save_only_the_closed_event_loop_reports_are_dropped(tmp_path, monkeypatch):
  # A full disk left tensorstore's pending writes ending on their own threads,
  # each reporting "Event loop is closed" through sys.unraisablehook, some
  # after save had raised: in about one run in five, pieces of those
  # tracebacks were printed around the one-line error.
  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
  state = {"w": np.arange(3.0)}
  ckpt_lib.save(str(tmp_path / "ok"), 1, state)
  assert sys.unraisablehook is not None and not getattr(
      sys.unraisablehook, "drops_closed_loop_reports", False)   # handed back after success
  blocked = tmp_path / "blocked"
  os.makedirs(blocked)
  open(blocked / "checkpoints", "w").close()                    # not a folder: the save fails
  with pytest.raises(Exception):
    ckpt_lib.save(str(blocked), 1, state)
  hook = sys.unraisablehook
  assert getattr(hook, "drops_closed_loop_reports", False)
  closed, other = RuntimeError("Event loop is closed"), RuntimeError("something else")
  for e in (closed, other):
    hook(types.SimpleNamespace(exc_type=type(e), exc_value=e, exc_traceback=None,
                               err_msg=None, object=None))
  assert seen == [other]
  ckpt_lib.save(str(tmp_path / "again"), 1, state)              # wrapped once, kept
  assert sys.unraisablehook is hook
