"""The sweep helper and the study configs."""

import json
import os

import pytest

from experiments import sweep

ROOT = os.path.join(os.path.dirname(__file__), "..")
STUDY = {  # file -> (field, the study's values)
    "beta_vae_dsprites": ("beta", [1, 2, 4, 6, 8, 16]),
    "annealed_vae_dsprites": ("c_max", [5, 10, 25, 50, 75, 100]),
    "factor_vae_dsprites": ("gamma", [10, 20, 30, 40, 50, 100]),
    "dip_vae_i_dsprites": ("lambda_od", [1, 2, 5, 10, 20, 50]),
    "dip_vae_ii_dsprites": ("lambda_od", [1, 2, 5, 10, 20, 50]),
    "beta_tcvae_dsprites": ("beta", [1, 2, 4, 6, 8, 10]),
}


def test_parse_seeds():
  assert sweep.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
  assert sweep.parse_seeds("5") == [5]
  with pytest.raises(ValueError):
    sweep.parse_seeds("4-1")


@pytest.mark.parametrize("name", sorted(STUDY))
def test_study_sweeps_expand_to_the_published_grid(name, tmp_path):
  path = os.path.join(ROOT, "experiments", "configs", name + ".py")
  runs = sweep.plan(path, str(tmp_path), [0, 1])
  field, values = STUDY[name]
  assert len(runs) == 12 and len({r["workdir"] for r in runs}) == 12
  got = sorted({r["config"].hparams[r["config"].objective][field] for r in runs})
  assert got == values
  for r in runs:
    c = r["config"]
    assert (c.batch_size, c.model.latent_dim, c.num_steps) == (64, 10, 300_000)
    assert c.optim.learning_rate == 1e-4 and c.model.likelihood == "bernoulli"
    h = c.hparams[c.objective]
    if name == "dip_vae_i_dsprites":
      assert h.lambda_d == 10 * h.lambda_od
    if name == "dip_vae_ii_dsprites":
      assert h.lambda_d == h.lambda_od
    if name == "annealed_vae_dsprites":
      assert (h.gamma, h.iteration_threshold) == (1000, 100_000)
    if name == "factor_vae_dsprites":
      d = c.discriminator_optim
      assert (d.learning_rate, d.b1, d.b2) == (1e-4, 0.5, 0.9)
  assert {r["config"].seed for r in runs} == {0, 1}


def test_overrides_are_checked_and_commands_reproduce_the_config(tmp_path):
  path = os.path.join(ROOT, "experiments", "configs", "beta_vae_dsprites.py")
  runs = sweep.plan(path, str(tmp_path), [3], {"num_steps": 40})
  r = runs[2]
  assert r["name"] == "beta=4,seed=3" and r["config"].num_steps == 40
  assert "--config.hparams.beta_vae.beta=4.0" in r["command"] and "--config.seed=3" in r["command"]
  with pytest.raises(KeyError, match="no field"):
    sweep.plan(path, str(tmp_path), [0], {"hparams.beta_vae.betta": 2})
  with pytest.raises(ValueError, match="repeats"):
    sweep.expand([{"a": 1}, {"a": 1}], [0])


@pytest.mark.slow
def test_sweep_runs_and_skips_finished_runs(tmp_path, monkeypatch):
  # A two-point sweep of a tiny MLP on procedural dSprites, run through the CLI.
  cfg = tmp_path / "tiny_sweep.py"
  cfg.write_text(
      "from experiments.configs import beta_vae_dsprites\n"
      "def get_config():\n"
      "  c = beta_vae_dsprites.get_config()\n"
      "  c.model.architecture = 'mlp'\n"
      "  c.model.encoder_hidden = (32,)\n"
      "  c.model.decoder_hidden = (32,)\n"
      "  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 20, 10, 20, 20\n"
      "  c.eval.max_examples = 256\n"
      "  c.eval.metrics = ()\n"
      "  return c\n"
      "def get_sweep():\n"
      "  return [{'hparams.vae.beta': 1.0}, {'hparams.vae.beta': 8.0}]\n")
  root = tmp_path / "sweep"
  sweep.run_sweep(str(cfg), str(root), [0], run=True)
  manifest = json.load(open(root / "sweep.json"))
  assert [m["name"] for m in manifest] == ["beta=1,seed=0", "beta=8,seed=0"]
  for m in manifest:
    assert json.load(open(os.path.join(m["workdir"], "eval_validation.json")))["step"] == 20
  # A second call finds both finished and trains nothing.
  from experiments import job
  monkeypatch.setattr(job, "train_and_evaluate",
                      lambda *a, **k: pytest.fail("a finished run was trained again"))
  sweep.run_sweep(str(cfg), str(root), [0], run=True)
