"""DIP-VAE-I (Kumar et al. 2018) on dSprites, as in the disentanglement_lib
study (Locatello et al. 2019, Table 8): lambda_od in {1, 2, 5, 10, 20, 50}
with lambda_d = 10 * lambda_od.

Command (one point):
  python -m experiments.train --config experiments/configs/dip_vae_i_dsprites.py \
      --workdir workdirs/dip_vae_i/od_10 --config.hparams.dip_vae_i.lambda_od=10 \
      --config.hparams.dip_vae_i.lambda_d=100
Sweep: python -m experiments.sweep --config experiments/configs/dip_vae_i_dsprites.py \
      --root workdirs/dip_vae_i --seeds 0 [--run]
Expected: see dsprites_study.py.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.objective = "dip_vae_i"
  c.hparams.dip_vae_i.lambda_od = 10.0
  c.hparams.dip_vae_i.lambda_d = 100.0
  return c


def get_sweep():
  return [{"hparams.dip_vae_i.lambda_od": v, "hparams.dip_vae_i.lambda_d": 10.0 * v}
          for v in (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)]
