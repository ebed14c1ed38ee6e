"""The shared settings of the disentanglement_lib unsupervised study on
dSprites (Locatello et al. 2019, Sec. 5 and Appendix G, Table 7 and 8).

Conv encoder/decoder of Table 1, 10 latents, Bernoulli decoder, batch 64,
Adam (lr 1e-4, b1 0.9, b2 0.999, eps 1e-8), 300,000 steps. The study trains
each method at six hyperparameter values (one file per method:
beta_vae_dsprites.py, annealed_vae_dsprites.py, factor_vae_dsprites.py,
dip_vae_i_dsprites.py, dip_vae_ii_dsprites.py, beta_tcvae_dsprites.py, each
with ``get_sweep()``) and 50 seeds; ``experiments/sweep.py`` expands them.
By itself this file is the plain VAE (beta = 1) on those settings.

Data: procedural dSprites rendered on the device (vae/data/dsprites.py);
``--config.dataset=tfds:dsprites`` uses the public images instead.

Command:
  python -m experiments.train --config experiments/configs/dsprites_study.py \
      --workdir workdirs/study_vae
Expected: 300k steps take hours on a GPU; on a 2-core CPU a step takes about
0.04 s (about 3.5 h for 300k steps; the measured steps/s per method are in
README.md). The
study's scores per method are in Locatello et al. (2019), Fig. 7 and 13.
"""

from vae_experiments.configs import default


def get_config():
  c = default.get_config()
  c.dataset = "dsprites"
  c.model.architecture = "conv"
  c.model.data_shape = (64, 64, 1)
  c.model.latent_dim = 10
  c.model.likelihood = "bernoulli"
  c.objective = "vae"
  c.hparams.vae.beta = 1.0
  c.batch_size = 64
  c.num_steps = 300_000
  c.log_every = 1_000
  c.checkpoint_every = 10_000
  c.eval_every = 50_000
  c.optim.optimizer = "adam"
  c.optim.learning_rate = 1e-4
  c.optim.b1, c.optim.b2, c.optim.eps = 0.9, 0.999, 1e-8
  c.optim.schedule = "constant"
  c.eval.max_examples = 10_000
  c.eval.metrics = ("beta_vae", "factor_vae", "mig", "dci", "sap", "modularity")
  return c


def get_sweep():
  """Hyperparameter points (dotted config paths -> values); one point: the VAE."""
  return [{"hparams.vae.beta": 1.0}]
