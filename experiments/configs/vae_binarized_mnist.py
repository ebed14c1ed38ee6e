"""VAE, 784-200-200-50 tanh MLP, Bernoulli decoder, on static binarized MNIST.

The one-stochastic-layer architecture of Burda, Grosse & Salakhutdinov (2016),
Sec. 5 / Appendix D: they report a test NLL of 88.71 nats (k = 5000 importance
samples) on the static binarization after 3,280 epochs of Adam (batch 20,
lr 1e-3 * 10^(-i/7) over 3^i epochs). This config compresses the schedule to
800 epochs of batch 100 (400k steps) with the learning rate decaying
exponentially from 1e-3 to 1e-4, so that it fits on a 2-core CPU in about an
hour, and evaluates on the validation split (the test split is not used for
development here).

Command:
  python -m experiments.train --config experiments/configs/vae_binarized_mnist.py \
      --workdir /tmp/vae_bmnist --config.data_dir=../shared/data/binarized_mnist
Expected: validation NLL (k = 5000) within 1.5 nats of 88.71; the measured
figure and wall time are in README.md.
"""

from vae_experiments.configs import default


def get_config():
  c = default.get_config()
  c.dataset = "binarized_mnist"
  c.objective = "vae"
  c.hparams.vae.beta = 1.0
  c.model.architecture = "mlp"
  c.model.data_shape = (28, 28, 1)
  c.model.likelihood = "bernoulli"
  c.model.posterior = "diagonal"
  c.model.latent_dim = 50
  c.model.encoder_hidden = (200, 200)
  c.model.decoder_hidden = (200, 200)
  c.model.activation = "tanh"
  c.batch_size = 100
  c.num_steps = 400_000
  c.log_every = 2500
  c.checkpoint_every = 25_000
  c.eval_every = 25_000
  c.optim.learning_rate = 1e-3
  c.optim.eps = 1e-4
  c.optim.schedule = "exponential"
  c.optim.decay_steps = 400_000
  c.optim.decay_rate = 0.1
  c.eval.split = "validation"
  c.eval.max_examples = 0
  c.eval.num_importance_samples = 5000
  c.eval.iwae_batch_size = 100
  c.eval.chunk_size = 500
  c.eval.elbo_batch_size = 1000
  return c
