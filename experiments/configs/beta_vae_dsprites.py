"""beta-VAE (Higgins et al. 2017) on dSprites, as in the disentanglement_lib
study (Locatello et al. 2019, Table 8): beta in {1, 2, 4, 6, 8, 16}.

Command (one point):
  python -m experiments.train --config experiments/configs/beta_vae_dsprites.py \
      --workdir workdirs/beta_vae/beta_4 --config.hparams.beta_vae.beta=4
Sweep: python -m experiments.sweep --config experiments/configs/beta_vae_dsprites.py \
      --root workdirs/beta_vae --seeds 0 [--run]
Expected: see dsprites_study.py (300k steps; scores in Locatello et al. 2019).
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.objective = "beta_vae"
  c.hparams.beta_vae.beta = 4.0
  return c


def get_sweep():
  return [{"hparams.beta_vae.beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)]
