"""A conditional VAE (Sohn, Lee & Yan 2015) on your own labelled images.

The images lie in class subfolders, ``<data_dir>/<class>/*.png``; the classes
are numbered in sorted order of the folder names (as torchvision's
ImageFolder), and both networks read the label as a one-hot vector: the
784-500-500 MLP encoder q(z|x, y) with it beside the pixels, the decoder
p(x|z, y) with it beside z (``vae/conditioning.py``). The prior is N(0, I)
whatever the label, so one z decoded with each label draws "the same style"
as each class: ``prior_samples.png`` is that grid, a row per class, one z per
column. Sized for MNIST-like 28x28 grey digits with 10 classes; set
``model.num_classes`` to the number of class folders and
``model.data_shape`` to the images' size (every image is converted to it).

The cross-entropy likelihood takes grey levels in [0, 1] as they are (not a
normalised likelihood: its ELBO is a training objective, not a bound on log
p(x|y)); for binary images set ``model.likelihood="bernoulli"``.

Command:
  python -m experiments.train --config cvae_images --workdir workdirs/cvae \
      --config.data_dir=/path/to/digits   # digits/0/*.png ... digits/9/*.png
Expected: on 5,000 real MNIST digits (500 per class, 4,468 for training),
10,000 steps of batch 100 took 294 s on a busy 2-core CPU; each row of
prior_samples.png is one digit class, each column keeps a slant and stroke
across the classes; `python -m experiments.cvae_labels --workdir <run>`
found the ELBO with each digit's own label 152.9 nats above the other
labels' and the argmax-over-labels classifier right on 94.9% (README,
"Models").
"""

from vae_experiments.configs import default


def get_config():
  c = default.get_config()
  c.dataset = "images"
  c.data_dir = ""                  # required: a folder of class subfolders
  c.label = "class"                # the subfolder names
  c.validation_fraction = 0.1
  c.data_source = "memory"         # labels travel with data held in memory
  c.model.num_classes = 10
  c.model.architecture = "mlp"
  c.model.data_shape = (28, 28, 1)
  c.model.latent_dim = 10
  c.model.encoder_hidden = (500, 500)
  c.model.decoder_hidden = (500, 500)
  c.model.activation = "relu"
  c.model.likelihood = "cross_entropy"
  c.objective = "vae"
  c.batch_size = 100
  c.num_steps = 10_000
  c.log_every = 500
  c.checkpoint_every = 2_500
  c.eval_every = 2_500
  c.optim.learning_rate = 1e-3
  c.eval.split = "validation"
  c.eval.max_examples = 0
  c.eval.num_importance_samples = 1000
  c.eval.metrics = ()
  return c
