"""Every config field, with its default. Other configs start from this one.

Command:
  python -m experiments.train --config experiments/configs/default.py \
      --workdir /tmp/vae_default --config.data_dir=../shared/data/binarized_mnist
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Data: `dataset` names a loader in vae/data; `data_dir` is a local folder
  # (e.g. ../shared/data/binarized_mnist); empty means tensorflow-datasets.
  c.dataset = "binarized_mnist"
  c.data_dir = ""
  c.tfds_data_dir = ""
  c.max_train_examples = 0  # 0: all

  c.model = ml_collections.ConfigDict()
  c.model.architecture = "mlp"        # "mlp" | "conv" (64x64xC)
  c.model.data_shape = (28, 28, 1)
  c.model.latent_dim = 50
  c.model.likelihood = "bernoulli"    # "bernoulli" | "gaussian"
  c.model.obs_logvar = 0.0            # Gaussian likelihood only
  c.model.posterior = "diagonal"      # "diagonal" | "isotropic"
  c.model.encoder_hidden = (200, 200)
  c.model.decoder_hidden = (200, 200)
  c.model.activation = "tanh"

  # Objective name (vae/objectives registry) and its hyperparameters; each
  # objective reads only its own (vae: beta; iwae: num_samples; dae:
  # corruption, noise_level).
  c.objective = "vae"
  c.hparams = ml_collections.ConfigDict()
  c.hparams.beta = 1.0
  c.hparams.num_samples = 1
  c.hparams.corruption = "masking"    # "masking" | "gaussian"
  c.hparams.noise_level = 0.25

  c.batch_size = 100
  c.num_steps = 100_000
  c.log_every = 500          # steps fused into one lax.scan between logs
  c.checkpoint_every = 5000  # a multiple of log_every
  c.eval_every = 5000        # validation ELBO into metrics.jsonl; 0: off

  c.optim = ml_collections.ConfigDict()
  c.optim.optimizer = "adam"
  c.optim.learning_rate = 1e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-4
  c.optim.weight_decay = 0.0
  c.optim.momentum = 0.0
  c.optim.schedule = "constant"       # "constant" | "cosine" | "exponential"
  c.optim.warmup_steps = 0
  c.optim.decay_steps = 100_000
  c.optim.decay_rate = 0.1
  c.optim.end_lr_factor = 0.0
  c.optim.grad_clip_norm = 0.0        # 0: no clipping

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "validation"
  c.eval.max_examples = 0
  c.eval.num_importance_samples = 5000
  c.eval.iwae_batch_size = 100
  c.eval.chunk_size = 500
  c.eval.elbo_batch_size = 1000
  return c
