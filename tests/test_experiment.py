"""The main job end to end: train, evaluate, write the workdir, resume."""

import dataclasses
import glob
import importlib
import json
import os
import subprocess
import sys

import pytest

from experiments import job as job_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_train_and_evaluate_writes_the_workdir_and_resumes(smoke_config, tmp_path):
  wd = str(tmp_path / "run")
  res = job_lib.train_and_evaluate(smoke_config, wd)
  for f in ("metrics.jsonl", "eval_validation.json", "reconstructions.png",
            "prior_samples.png", "config.json"):
    assert os.path.exists(os.path.join(wd, f)), f
  saved = json.load(open(os.path.join(wd, "eval_validation.json")))
  assert saved["step"] == 200 and saved["num_examples"] == 200
  assert saved["iwae"]["log_likelihood"] >= saved["elbo"]["elbo"] - 1.0
  assert res["iwae"]["num_samples"] == 20
  # Rerun with more steps: resumes from step 200 instead of starting over.
  smoke_config.num_steps = 250
  res2 = job_lib.train_and_evaluate(smoke_config, wd)
  assert res2["step"] == 250
  lines = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  train_steps = [l["step"] for l in lines if l["split"] == "train"]
  assert train_steps == [50, 100, 150, 200, 250]


@pytest.mark.parametrize("objective", ["ae", "dae", pytest.param("iwae", marks=pytest.mark.slow)])
def test_other_objectives_run_end_to_end(smoke_config, tmp_path, objective):
  smoke_config.objective = objective
  smoke_config.hparams.iwae.num_samples = 3
  smoke_config.num_steps = 100
  res = job_lib.train_and_evaluate(smoke_config, str(tmp_path / objective))
  if objective == "iwae":
    assert "iwae" in res
  else:
    assert res["reconstruction_log_likelihood"] < 0
    assert not os.path.exists(str(tmp_path / objective / "prior_samples.png"))
  # eval_every is honoured for every objective, the autoencoders included.
  rows = [json.loads(l) for l in open(tmp_path / objective / "metrics.jsonl")]
  evals = [r for r in rows if r["split"] == "eval"]
  assert [r["step"] for r in evals] == [100]
  key = "elbo" if objective == "iwae" else "reconstruction_log_likelihood"
  assert evals[0][key] < 0


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "experiments/configs/*.py"))))
def test_every_config_is_valid(path):
  name = os.path.basename(path)[:-3]
  if name == "__init__":
    return
  mod = importlib.import_module(f"experiments.configs.{name}")
  variants = {"iwae_binarized_mnist": ["k5", "k50"], "planar_binarized_mnist": ["k10", "k2"],
              "two_layer_binarized_mnist": ["vae", "iwae50"]}.get(name, [None])
  for v in variants:
    cfg = mod.get_config(v) if v else mod.get_config()
    if cfg.dataset == "images":      # the user's folder: required, and said so
      with pytest.raises(ValueError, match="needs data_dir"):
        job_lib.check_config(cfg)
      cfg.data_dir = "/path/to/images"
    job_lib.check_config(cfg)
    assert mod.__doc__ and "Command" in mod.__doc__


def test_cli_runs(npz_dir, tmp_path):
  out = subprocess.run(
      # A config by its bare name.
      [sys.executable, "-m", "experiments.train", "--config", "smoke",
       "--workdir", str(tmp_path / "cli"), f"--config.data_dir={npz_dir}",
       "--config.num_steps=100", "--config.max_train_examples=0"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert '"iwae"' in out.stdout and '"step": 100' in out.stdout


@pytest.mark.slow
def test_evaluate_cli_restores_a_workdir(smoke_config, tmp_path, npz_dir):
  wd = str(tmp_path / "ev")
  job_lib.train_and_evaluate(smoke_config, wd)
  out = subprocess.run(
      [sys.executable, "-m", "experiments.evaluate", "--workdir", wd, "--num_samples", "7",
       "--max_examples", "50"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  res = json.load(open(os.path.join(wd, "eval_validation_k7.json")))
  assert res["step"] == 200 and res["num_examples"] == 50 and res["iwae"]["num_samples"] == 7


@pytest.mark.slow   # ~35 s on 2 cores; runs in .ci/run after the fast suite
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
       "--metrics", "mig,sap", "--metric_scale", "0.05", "--priors", "--prior_steps", "1",
       "--repeats", "1", "--json", str(tmp_path / "b.json")],
      cwd=ROOT, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Disentangling family" in out.stdout and "reference" in out.stdout
  assert "Learned priors" in out.stdout
  res = json.load(open(tmp_path / "b.json"))
  rows = {r["step"]: r for r in res["priors"]}
  assert rows["vae"]["vs_vae"] == [1.0] and rows["vampprior"]["steps_per_sec"][0] > 0
  # The two forms of the VampPrior's density give the same loss.
  assert rows["vampprior"]["first_loss"] == rows["vampprior, autodiff gradient"]["first_loss"]
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
  job_lib.train_and_evaluate(c, wd)
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


# What the old flat config.hparams got wrong: each objective chosen by
# --config.objective alone must train with its paper's hyperparameters.
PAPER_DEFAULTS = {
    "vae": {"beta": 1.0, "warmup_steps": 0},
    "beta_vae": {"beta": 4.0, "warmup_steps": 0},
    "annealed_vae": {"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100_000},
    "beta_tcvae": {"alpha": 1.0, "beta": 6.0, "gamma": 1.0, "dataset_size": 0, "estimator": "mss"},
    "factor_vae": {"gamma": 35.0},
    "dip_vae_i": {"lambda_od": 10.0, "lambda_d": 100.0},
    "dip_vae_ii": {"lambda_od": 10.0, "lambda_d": 10.0},
    "iwae": {"num_samples": 5},
    "ae": {},
    "dae": {"corruption": "masking", "noise_level": 0.25},
    "wae_mmd": {"lambda_mmd": 10.0, "kernel": "imq"},
    "info_vae": {"alpha": 0.0, "lambda_mmd": 1000.0, "kernel": "rbf"},
    "joint_vae": {"gamma": 150.0, "cont_capacity": 40.0, "disc_capacity": 1.1,
                  "iteration_threshold": 300_000},
    "vq_vae": {"commitment_cost": 0.25, "dead_code_threshold": 0.0},
}


@pytest.mark.parametrize("name", sorted(PAPER_DEFAULTS))
def test_objective_chosen_alone_trains_with_the_papers_hyperparameters(name):
  from experiments.configs import default
  from vae import objectives
  assert set(PAPER_DEFAULTS) == set(objectives.REGISTRY)
  c = default.get_config()
  c.objective = name
  family = objectives.get(name).posterior_family
  if family:                         # JointVAE's and the VQ-VAE's codes
    c.model.posterior_family = family
    c.model.posterior_hparams.vq.code_dim = 2
  job = job_lib.resolve(c, with_data=False)
  assert dataclasses.asdict(job.objective.hparams) == PAPER_DEFAULTS[name]
  assert job.effective_config()["hparams"] == PAPER_DEFAULTS[name]


def test_unknown_hyperparameters_are_errors():
  from experiments.configs import default
  c = default.get_config()
  c.hparams.beta_vae.betta = 3.0
  with pytest.raises(ValueError, match=r"objective 'beta_vae' has no hyperparameter\(s\) \['betta'\]"):
    job_lib.check_config(c)
  c = default.get_config()
  c.hparams.factor_vae.gama = 3.0          # another objective's section is checked too
  with pytest.raises(ValueError, match="'factor_vae' has no hyperparameter"):
    job_lib.check_config(c)
  c = default.get_config()
  c.hparams.factor_vea = {"gamma": 3.0}
  with pytest.raises(ValueError, match=r"sections \['factor_vea'\] that name no objective"):
    job_lib.check_config(c)


@pytest.mark.slow
def test_config_json_records_the_effective_hyperparameters(smoke_config, tmp_path):
  smoke_config.objective = "beta_tcvae"
  smoke_config.hparams.beta_tcvae.beta = 3.0
  smoke_config.num_steps = smoke_config.log_every = smoke_config.checkpoint_every = 10
  smoke_config.eval_every = 0
  wd = str(tmp_path / "tc")
  job_lib.train_and_evaluate(smoke_config, wd)
  eff = json.load(open(os.path.join(wd, "config.json")))["effective"]
  assert eff["objective"] == "beta_tcvae"
  # Defaults filled in, the override kept, N taken from the training data.
  n = len(job_lib.load_split(smoke_config, "train"))
  assert eff["hparams"] == {"alpha": 1.0, "beta": 3.0, "gamma": 1.0, "dataset_size": n,
                            "estimator": "mss"}


def test_a_flat_hparams_config_from_an_older_workdir_is_upgraded():
  import ml_collections
  from experiments.configs import default
  old = default.get_config().to_dict()
  old["objective"] = "beta_tcvae"
  old["hparams"] = {"beta": 2.0, "alpha": 1.0, "gamma": 1.0, "dataset_size": 0,
                    "estimator": "mws", "lambda_od": 10.0, "num_samples": 1}
  c = job_lib.upgrade_config(ml_collections.ConfigDict(old))
  job_lib.check_config(c)
  assert dict(c.hparams.beta_tcvae) == {"alpha": 1.0, "beta": 2.0, "gamma": 1.0,
                                        "dataset_size": 0, "estimator": "mws"}
  assert c.hparams.factor_vae.gamma == 35.0          # other sections: their defaults
  new = default.get_config()
  assert job_lib.upgrade_config(new) is new


def test_the_default_job_is_quickstart_and_labels_its_traversals_by_factor(tmp_path,
                                                                           monkeypatch):
  # vae-train without --config runs quickstart: beta-TCVAE on dSprites that
  # ends with MIG, and whose traversal rows name the factor each latent
  # informs. Here shrunk (MLP, 20 steps) so that only the wiring is tested.
  from experiments.configs import quickstart
  from vae import plots
  # (That train's default is quickstart.py is checked in a fresh process, where
  # importing train cannot define its absl flags twice:
  # test_workdir_faults.test_the_cli_works_from_any_directory.)
  c = quickstart.get_config()
  assert (c.objective, c.dataset, tuple(c.eval.metrics)) == ("beta_tcvae", "dsprites", ("mig",))
  c.model.architecture = "mlp"
  c.model.encoder_hidden = c.model.decoder_hidden = (32,)
  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 20, 10, 20, 0
  c.eval.score_every, c.eval.max_examples = 0, 64
  rows = {}
  real = plots.save_grid

  def spy(path, images, num_cols=None, **kw):
    if path.endswith("traversals.png"):
      rows["labels"] = kw["row_labels"]
    return real(path, images, num_cols, **kw)
  monkeypatch.setattr(plots, "save_grid", spy)
  res = job_lib.train_and_evaluate(c, str(tmp_path / "q"))
  mig = json.load(open(tmp_path / "q" / "eval_validation.json"))["disentanglement"]["mig"]
  assert mig["protocol"]["num_train"] == 10_000
  assert res["disentanglement"]["mig"]["mig"] == mig["mig"]
  # Each row carries its own latent's KL and the factor MIG's matrix gives
  # that latent ("z3  KL 0.41  posX (0.02)"), rows in decreasing KL.
  from experiments import record
  kl = res["elbo"]["kl_per_dim"]
  notes = record.factor_notes(res["disentanglement"]["mig"],
                              ("shape", "scale", "orientation", "posX", "posY"))
  latents = [int(label.split()[0][1:]) for label in rows["labels"]]
  assert sorted(latents) == list(range(10))
  assert rows["labels"] == [plots.row_label(d, kl, notes) for d in latents]
  assert [kl[d] for d in latents] == sorted(kl, reverse=True)


def test_latent_notes_only_where_mig_scored_the_traversed_latents_of_named_factors():
  import types
  from experiments import record
  mig = {"mutual_info": [[0.0, 1.0], [0.5, 0.0], [0.0, 0.1]], "factor_entropy": [1.0, 2.0]}
  gt = types.SimpleNamespace(factor_names=("a", "b"))
  job = types.SimpleNamespace(ground_truth_data=gt)
  kl = [1.0, 2.0, 0.1]
  got = record.latent_notes(job, {"disentanglement": {"mig": mig}}, kl)
  assert got == ["b (0.50)", "a (0.50)", "b (0.05)"]
  assert record.latent_notes(job, {}, kl) is None                        # no MIG
  assert record.latent_notes(job, {"disentanglement": {"mig": mig}}, None) is None  # an AE
  assert record.latent_notes(job, {"disentanglement": {"mig": mig}}, kl[:2]) is None
  unnamed = types.SimpleNamespace(ground_truth_data=types.SimpleNamespace(factor_names=()))
  assert record.latent_notes(unnamed, {"disentanglement": {"mig": mig}}, kl) is None
  no_factors = types.SimpleNamespace(ground_truth_data=None)
  assert record.latent_notes(no_factors, {"disentanglement": {"mig": mig}}, kl) is None
