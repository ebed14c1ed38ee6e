"""A conditional VAE (Sohn, Lee & Yan 2015) on procedural dSprites, the
shape as its label.

The disentanglement_lib conv networks with the one-hot shape (square,
ellipse, heart) beside the conv features in the encoder, q(z|x, shape), and
beside z in the decoder, p(x|z, shape) (``vae/conditioning.py``). With the
shape given, the code has to carry only scale, orientation and position, so
one z decoded with each shape draws the same sprite pose as a square, an
ellipse and a heart: ``prior_samples.png`` is that grid (a row per shape).
The disentanglement metrics are off: they encode renders without their
labels, which this encoder reads.

Command:
  python -m experiments.train --config cvae_dsprites --workdir workdirs/cvae_dsprites
Expected: the three rows of prior_samples.png the three shapes at one pose
per column. Not yet run at this length here (the job is tested on a few
steps; the MNIST folder run is the measured one, README "Models").
"""

from vae_experiments.configs import default


def get_config():
  c = default.get_config()
  c.dataset = "dsprites"
  c.label = "shape"
  c.model.num_classes = 3
  c.model.architecture = "conv"
  c.model.data_shape = (64, 64, 1)
  c.model.latent_dim = 10
  c.model.likelihood = "bernoulli"
  c.objective = "vae"
  c.batch_size = 64
  c.num_steps = 20_000
  c.log_every = 500
  c.checkpoint_every = 2_000
  c.eval_every = 5_000
  c.optim.learning_rate = 1e-4
  c.eval.max_examples = 1_000
  c.eval.num_importance_samples = 100
  c.eval.metrics = ()
  c.eval.score_every = 0
  return c
