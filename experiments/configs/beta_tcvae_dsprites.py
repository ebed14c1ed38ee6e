"""beta-TCVAE (Chen et al. 2018) on dSprites, as in the disentanglement_lib
study (Locatello et al. 2019, Table 8): beta in {1, 2, 4, 6, 8, 10},
alpha = gamma = 1. The TC is estimated by minibatch stratified sampling with
N = 737,280 (every dSprites combination; filled in from the data).

Command (one point):
  python -m experiments.train --config experiments/configs/beta_tcvae_dsprites.py \
      --workdir workdirs/beta_tcvae/beta_6 --config.hparams.beta_tcvae.beta=6
Sweep: python -m experiments.sweep --config experiments/configs/beta_tcvae_dsprites.py \
      --root workdirs/beta_tcvae --seeds 0 [--run]
Expected: see dsprites_study.py; the logged total_correlation falls as beta rises.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.objective = "beta_tcvae"
  c.hparams.beta_tcvae.alpha = 1.0
  c.hparams.beta_tcvae.beta = 6.0
  c.hparams.beta_tcvae.gamma = 1.0
  c.hparams.beta_tcvae.estimator = "mss"
  c.hparams.beta_tcvae.dataset_size = 0
  return c


def get_sweep():
  return [{"hparams.beta_tcvae.beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0)]
