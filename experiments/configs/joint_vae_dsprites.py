"""JointVAE (Dupont 2018) on procedural dSprites: 6 continuous latents and
one 3-way categorical (relaxed by Gumbel-softmax at 0.67), the
disentanglement_lib conv networks, batch 64, Adam 5e-4, gamma = 150 with the
continuous capacity rising to 40 nats and the discrete one to 1.1 nats.

Dupont (2018), Sec. 4.1 and Fig. 4: on dSprites the categorical latent
comes to encode the shape (square, ellipse, heart), with the capacities
rising over 300,000 iterations. This CPU trains far fewer steps, so the
capacities rise over the run's own budget (``iteration_threshold =
num_steps``; change both together).

Command:
  python -m experiments.train --config experiments/configs/joint_vae_dsprites.py \
      --workdir workdirs/joint_vae
  python -m experiments.joint_code --workdir workdirs/joint_vae    # how well the code recovers shape
Expected: the categorical code's accuracy at telling the three shapes apart
(under the best matching of its categories to shapes; chance 1/3) and its
normalised mutual information with shape; README.md, "Models", has the
measured figure and the budget it was measured at.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.model.latent_dim = 9                 # 6 continuous + 3 categories
  c.model.posterior_family = "joint"
  c.model.posterior_hparams.joint.num_categories = 3
  c.model.posterior_hparams.joint.temperature = 0.67
  c.objective = "joint_vae"
  c.num_steps = 20_000
  c.hparams.joint_vae.iteration_threshold = 20_000
  c.optim.learning_rate = 5e-4
  c.checkpoint_every = 2_000
  c.eval_every = 5_000
  c.eval.max_examples = 2_000
  c.eval.metrics = ("mig",)
  return c
