"""A tiny setting for tests and CI: a few hundred steps on a slice of data.

Command:
  python -m experiments.train --config experiments/configs/smoke.py \
      --workdir /tmp/vae_smoke --config.data_dir=../shared/data/binarized_mnist
Expected: finishes in well under a minute on 2 CPU cores; the validation ELBO
is far from converged (around -200 nats) and only shows the pipeline works.
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.max_train_examples = 2000
  c.model.latent_dim = 8
  c.model.encoder_hidden = (64,)
  c.model.decoder_hidden = (64,)
  c.batch_size = 50
  c.num_steps = 200
  c.optim.schedule = "constant"
  c.log_every = 50
  c.checkpoint_every = 100
  c.eval_every = 100
  c.eval.max_examples = 200
  c.eval.num_importance_samples = 20
  c.eval.chunk_size = 10
  c.eval.iwae_batch_size = 50
  c.eval.elbo_batch_size = 100
  return c
