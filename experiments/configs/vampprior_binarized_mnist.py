"""VAE with the VampPrior (K = 500 pseudo-inputs), same network and schedule
as vae_binarized_mnist.

Tomczak & Welling (2018), Table 2, static binarized MNIST, one stochastic
layer: test NLL 88.56 nats with the standard normal prior and 85.57 with the
VampPrior (their MLP of 300 hidden units, 40 latents, K = 500; ours: 200-200
tanh, 50 latents). Both use their KL warm-up of 100 epochs (50,000 steps of
100 here): without it the VampPrior collapses at once (measured: KL 0 from
step 1,000, the decoder drawing the mean digit), since any encoder that
ignores its input matches a prior made of itself. The KL is the one-sample
estimate log q(z|x) - log p(z) (vae/priors/vampprior.py). The pseudo-inputs
start near 0.05 (the authors' default); ``--config.model.prior_hparams.
vampprior.init=data`` starts them at 500 training images instead (their
``use_training_data_init``; README.md, "Models", compares the two starts over
1,000 steps).

Command:
  python -m experiments.train --config experiments/configs/vampprior_binarized_mnist.py \
      --workdir /tmp/vampprior --config.data_dir=../shared/data/binarized_mnist
Expected: a higher IWAE log-likelihood than vae_binarized_mnist at the same
number of epochs (README.md, "Models", has the measured pair).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.model.prior = "vampprior"
  c.model.prior_hparams.vampprior.num_components = 500
  c.hparams.vae.warmup_steps = 50_000
  return c
