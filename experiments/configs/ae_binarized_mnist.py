"""Plain autoencoder baseline (Hinton & Salakhutdinov 2006) on binarized MNIST.

Same 784-200-200-50 tanh network as vae_binarized_mnist; the code is the
encoder mean and the loss the Bernoulli cross-entropy. It has no prior, so it
cannot sample and has no ELBO: evaluation reports the reconstruction
log-likelihood only.

Command:
  python -m experiments.train --config experiments/configs/ae_binarized_mnist.py \
      --workdir /tmp/ae_bmnist --config.data_dir=../shared/data/binarized_mnist
Expected: reconstruction log-likelihood far above the VAE's reconstruction term
(no KL pressure), e.g. better than -40 nats after the 100-epoch schedule.
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.objective = "ae"
  c.num_steps = 50_000
  c.optim.decay_steps = 50_000
  return c
