"""AnnealedVAE / controlled capacity (Burgess et al. 2018) on dSprites, as in
the disentanglement_lib study (Locatello et al. 2019, Table 8): c_max in
{5, 10, 25, 50, 75, 100} nats, gamma 1000, capacity reached at 100k steps.

Command (one point):
  python -m experiments.train --config experiments/configs/annealed_vae_dsprites.py \
      --workdir workdirs/annealed_vae/c_25 --config.hparams.annealed_vae.c_max=25
Sweep: python -m experiments.sweep --config experiments/configs/annealed_vae_dsprites.py \
      --root workdirs/annealed_vae --seeds 0 [--run]
Expected: the KL tracks C(step) (the ``capacity`` metric); see dsprites_study.py.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.objective = "annealed_vae"
  c.hparams.annealed_vae.gamma = 1000.0
  c.hparams.annealed_vae.c_max = 25.0
  c.hparams.annealed_vae.iteration_threshold = 100_000
  return c


def get_sweep():
  return [{"hparams.annealed_vae.c_max": v} for v in (5.0, 10.0, 25.0, 50.0, 75.0, 100.0)]
