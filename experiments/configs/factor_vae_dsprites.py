"""FactorVAE (Kim & Mnih 2018) on dSprites, as in the disentanglement_lib study
(Locatello et al. 2019, Table 8): gamma in {10, 20, 30, 40, 50, 100}; the
discriminator (6 x 1000 leaky ReLU) trained by Adam lr 1e-4, b1 0.5, b2 0.9.

Command (one point):
  python -m experiments.train --config experiments/configs/factor_vae_dsprites.py \
      --workdir workdirs/factor_vae/gamma_30 --config.hparams.factor_vae.gamma=30
Sweep: python -m experiments.sweep --config experiments/configs/factor_vae_dsprites.py \
      --root workdirs/factor_vae --seeds 0 [--run]
Expected: see dsprites_study.py; ``total_correlation`` in metrics.jsonl is the
discriminator's estimate, ``discriminator_accuracy`` stays near 0.5-0.7.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.objective = "factor_vae"
  c.hparams.factor_vae.gamma = 30.0
  c.discriminator_optim.learning_rate = 1e-4
  c.discriminator_optim.b1 = 0.5
  c.discriminator_optim.b2 = 0.9
  return c


def get_sweep():
  return [{"hparams.factor_vae.gamma": g} for g in (10.0, 20.0, 30.0, 40.0, 50.0, 100.0)]
