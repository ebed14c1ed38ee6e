"""Every method of the disentangling family trains on procedural dSprites:
finite losses, a lower loss after a short run, the diagnostics in
metrics.jsonl, traversal PNG and GIF in the workdir."""

import json
import os

import numpy as np
import pytest

from experiments.configs import (annealed_vae_dsprites, beta_tcvae_dsprites,
                                 beta_vae_dsprites, dip_vae_i_dsprites,
                                 dip_vae_ii_dsprites, factor_vae_dsprites)
from experiments import job as job_lib

CONFIGS = {
    "beta_vae": beta_vae_dsprites,
    "annealed_vae": annealed_vae_dsprites,
    "beta_tcvae": beta_tcvae_dsprites,
    "factor_vae": factor_vae_dsprites,
    "dip_vae_i": dip_vae_i_dsprites,
    "dip_vae_ii": dip_vae_ii_dsprites,
}


def _short(cfg):
  # The study's settings with a small MLP and a short schedule, so that the
  # six runs fit in the default test time on 2 CPU cores.
  cfg.model.architecture = "mlp"
  cfg.model.encoder_hidden = (128,)
  cfg.model.decoder_hidden = (128,)
  cfg.optim.learning_rate = 1e-3
  cfg.discriminator_optim.learning_rate = 1e-3
  cfg.num_steps, cfg.log_every, cfg.checkpoint_every, cfg.eval_every = 150, 50, 150, 150
  cfg.hparams.annealed_vae.iteration_threshold = 100
  cfg.eval.max_examples = 512
  cfg.eval.metrics = ("mig",)      # the end-of-run scoring path, at a small scale
  cfg.eval.metric_scale = 0.1
  return cfg


@pytest.mark.slow   # 5-20 s each; .ci/run runs them after the default suite
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_method_trains_on_dsprites_and_writes_traversals(name, tmp_path, capfd):
  cfg = _short(CONFIGS[name].get_config())
  assert cfg.objective == name
  wd = str(tmp_path / name)
  res = job_lib.train_and_evaluate(cfg, wd)
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  train_rows = [r for r in rows if r["split"] == "train"]
  losses = [r["loss"] for r in train_rows]
  assert np.all(np.isfinite(losses)), losses
  recon = [-r["log_likelihood"] for r in train_rows]
  assert recon[-1] < 0.6 * recon[0], recon
  if name != "annealed_vae":
    # AnnealedVAE's loss is mostly gamma |KL - C(s)| (gamma = 1000) tracking a
    # rising C, so only its reconstruction term is bound to fall this fast.
    assert losses[-1] < 0.6 * losses[0], losses
  ev = [r for r in rows if r["split"] == "eval"][-1]
  for k in ("kl_per_dim", "active_units", "total_correlation_mss", "mutual_info_mss",
            "dim_kl_mss", "total_correlation_mws"):
    assert k in ev, (k, sorted(ev))
  assert len(ev["kl_per_dim"]) == 10
  # The decomposition telescopes to the Monte Carlo KL with either estimator.
  for est in ("mss", "mws"):
    parts = ev[f"mutual_info_{est}"] + ev[f"total_correlation_{est}"] + ev[f"dim_kl_{est}"]
    np.testing.assert_allclose(parts, ev[f"kl_mc_{est}"], rtol=1e-3, atol=1e-2)
  assert np.isfinite(res["elbo"]["elbo"]) and "diagnostics" in res
  assert 0.0 <= res["disentanglement"]["mig"]["mig"] <= 1.0
  if name == "beta_vae":
    # Scoring shows its progress ...
    err = capfd.readouterr().err
    assert "scoring mig" in err and "1/1" in err, err[-2000:]
    # ... and the disentanglement scores reach TensorBoard too.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.join(wd, "tensorboard"))
    acc.Reload()
    mig = acc.Scalars("final/disentanglement/mig/mig")
    assert [e.step for e in mig] == [150]
    np.testing.assert_allclose(mig[0].value, res["disentanglement"]["mig"]["mig"], rtol=1e-6)
  assert open(os.path.join(wd, "traversals.png"), "rb").read(4) == b"\x89PNG"
  assert open(os.path.join(wd, "traversals.gif"), "rb").read(3) == b"GIF"
  if name == "annealed_vae":
    # Means over each 50-step chunk of C(s) = min(25 s / 100, 25).
    caps = [r["capacity"] for r in train_rows]
    np.testing.assert_allclose(caps, [25 * 24.5 / 100, 25 * 74.5 / 100, 25.0], rtol=1e-5)
  if name == "factor_vae":
    assert "discriminator_loss" in train_rows[-1]
