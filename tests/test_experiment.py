"""The main job end to end: train, evaluate, write the workdir, resume."""

import glob
import importlib
import json
import os
import subprocess
import sys

import pytest

from vae import train as train_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_and_evaluate_writes_the_workdir_and_resumes(smoke_config, tmp_path):
  wd = str(tmp_path / "run")
  res = train_lib.train_and_evaluate(smoke_config, wd)
  for f in ("metrics.jsonl", "eval_validation.json", "reconstructions.png",
            "prior_samples.png", "config.json"):
    assert os.path.exists(os.path.join(wd, f)), f
  saved = json.load(open(os.path.join(wd, "eval_validation.json")))
  assert saved["step"] == 200 and saved["num_examples"] == 200
  assert saved["iwae"]["log_likelihood"] >= saved["elbo"]["elbo"] - 1.0
  assert res["iwae"]["num_samples"] == 20
  # Rerun with more steps: resumes from step 200 instead of starting over.
  smoke_config.num_steps = 250
  res2 = train_lib.train_and_evaluate(smoke_config, wd)
  assert res2["step"] == 250
  lines = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  train_steps = [l["step"] for l in lines if l["split"] == "train"]
  assert train_steps == [50, 100, 150, 200, 250]


@pytest.mark.parametrize("objective", ["ae", "dae", "iwae"])
def test_other_objectives_run_end_to_end(smoke_config, tmp_path, objective):
  smoke_config.objective = objective
  smoke_config.hparams.num_samples = 3
  smoke_config.num_steps = 100
  res = train_lib.train_and_evaluate(smoke_config, str(tmp_path / objective))
  if objective == "iwae":
    assert "iwae" in res
  else:
    assert res["reconstruction_log_likelihood"] < 0
    assert not os.path.exists(str(tmp_path / objective / "prior_samples.png"))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "experiments/configs/*.py"))))
def test_every_config_is_valid(path):
  name = os.path.basename(path)[:-3]
  if name == "__init__":
    return
  mod = importlib.import_module(f"experiments.configs.{name}")
  variants = {"iwae_binarized_mnist": ["k5", "k50"]}.get(name, [None])
  for v in variants:
    cfg = mod.get_config(v) if v else mod.get_config()
    train_lib.check_config(cfg)
    assert mod.__doc__ and "Command" in mod.__doc__


def test_cli_runs(npz_dir, tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "experiments.train", "--config", "experiments/configs/smoke.py",
       "--workdir", str(tmp_path / "cli"), f"--config.data_dir={npz_dir}",
       "--config.num_steps=100", "--config.max_train_examples=0"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert '"iwae"' in out.stdout and '"step": 100' in out.stdout


def test_evaluate_cli_restores_a_workdir(smoke_config, tmp_path, npz_dir):
  wd = str(tmp_path / "ev")
  train_lib.train_and_evaluate(smoke_config, wd)
  out = subprocess.run(
      [sys.executable, "-m", "experiments.evaluate", "--workdir", wd, "--num_samples", "7",
       "--max_examples", "50"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  res = json.load(open(os.path.join(wd, "eval_validation_k7.json")))
  assert res["step"] == 200 and res["num_examples"] == 50 and res["iwae"]["num_samples"] == 7


def test_benchmark_runs_and_prints_its_tables(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--steps", "20", "--chunk", "10",
       "--models", "32-32", "--eval_examples", "0", "--json", str(tmp_path / "b.json"),
       "--scaling", "1,2", "--scaling_batch", "64", "--batch_sweep", "16",
       "--sweep_models", "mlp", "--peak_tflops", "0.2"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "speed-up" in out.stdout and "procedural" in out.stdout
  res = json.load(open(tmp_path / "b.json"))
  assert res["training"]["784-32-32-50"]["scanned"]["examples_per_sec"] > 0
  assert res["generation"][0]["procedural"] > 0
  assert [r["devices"] for r in res["scaling"]] == [1, 2]
  assert res["sweep"][0]["flops_per_step"] > 1e6 and 0 < res["sweep"][0]["fraction_of_peak"]


@pytest.mark.slow
def test_benchmark_times_methods_and_metrics(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "experiments.benchmark", "--notraining", "--nogeneration",
       "--eval_examples", "0", "--methods", "dip_vae_i", "--method_steps", "1",
       "--metrics", "mig,sap", "--metric_scale", "0.05", "--json", str(tmp_path / "b.json")],
      cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Disentangling family" in out.stdout and "reference" in out.stdout
  res = json.load(open(tmp_path / "b.json"))
  assert res["methods"][0]["method"] == "dip_vae_i" and res["methods"][0]["steps_per_sec"] > 0
  for r in res["metrics"]:
    assert r["ours_seconds"] > 0 and r["reference_seconds"] > 0
    assert abs(r["ours_score"] - r["reference_score"]) < 0.1


@pytest.mark.slow
def test_evaluate_cli_scores_a_dsprites_run_on_every_metric(tmp_path):
  from experiments.configs import default
  c = default.get_config()
  c.model.architecture = "mlp"
  c.model.encoder_hidden = (32,)
  c.model.decoder_hidden = (32,)
  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 20, 10, 20, 0
  c.eval.max_examples = 256
  wd = str(tmp_path / "ds")
  train_lib.train_and_evaluate(c, wd)
  out = subprocess.run(
      [sys.executable, "-m", "experiments.evaluate", "--workdir", wd, "--num_samples", "3",
       "--metrics", "all", "--metric_scale", "0.02", "--dci_importance", "linear"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  res = json.load(open(os.path.join(wd, "eval_metrics.json")))
  for name in ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity"):
    assert name in res and res[name]["seconds"] > 0
  assert 0 <= res["mig"]["mig"] <= 1 and 0 <= res["beta_vae"]["eval_accuracy"] <= 1
  assert res["step"] == 20
