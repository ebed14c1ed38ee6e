"""How well a JointVAE run's categorical code recovers a factor (shape on
dSprites): encodes fresh renders of the run's data set and scores the code's
argmax against the true factor (``vae.metrics.discrete``).

  python -m experiments.joint_code --workdir workdirs/joint_vae [--factor shape] [--num 10000]

Prints the accuracy under the best matching of categories to values (chance
1/K), the normalised mutual information and the contingency table, and the
code's information about the renders (I(x; c) under q, from 0 for a
collapsed code to log K; ``Joint.code_information``), and writes them to
``<workdir>/discrete_code.json``.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from absl import flags, logging

from . import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A JointVAE run's folder.")
_FACTOR = flags.DEFINE_string("factor", "shape", "The discrete factor to recover.")
_NUM = flags.DEFINE_integer("num", 10_000, "Renders to encode.")
flags.mark_flag_as_required("workdir")


def discrete_code_recovery(workdir: str, factor: str = "shape", num: int = 10_000,
                           seed: int = 0) -> dict:
  """The recovery of ``factor`` by the categorical code of ``workdir``'s
  latest checkpoint, on ``num`` renders (see the module docstring)."""
  from vae import plots
  from vae.metrics import discrete

  from . import job as job_lib
  config = job_lib.load_run_config(workdir)
  job = job_lib.resolve(config)
  family = job.model.posterior
  if family.name != "joint":
    raise ValueError(f"{workdir} has the {family.name!r} posterior; the categorical code "
                     "is JointVAE's ('joint')")
  gt = job.ground_truth_data
  if gt is None or factor not in gt.factor_names:
    raise ValueError(f"the run's data ({config.dataset!r}) has no factor {factor!r}"
                     + (f"; its factors are {list(gt.factor_names)}" if gt is not None else ""))
  state = job_lib.restore_state(workdir, job)
  images, factors = gt.sample(jax.random.key(seed), int(num))
  means = np.concatenate([plots.posterior_means(state.params, images[i:i + 1000],
                                                model=job.model)
                          for i in range(0, int(num), 1000)])
  categories = np.argmax(means[:, -family.num_categories:], axis=-1)
  out = discrete.category_recovery(categories, np.asarray(factors)[:, gt.factor_names.index(
      factor)])
  out.update(factor=factor, num=int(num), step=int(state.step),
             chance=1.0 / family.num_categories,
             # I(x; c) under q over the renders (0: collapsed; at most log K)
             code_information=float(family.code_information(means, np.zeros_like(means))),
             log_num_categories=float(np.log(family.num_categories)))
  with open(os.path.join(workdir, "discrete_code.json"), "w") as f:
    json.dump(out, f, indent=2)
  return out


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)    # orbax logs every restore at INFO
  print(json.dumps(discrete_code_recovery(_WORKDIR.value, _FACTOR.value, _NUM.value), indent=2))


if __name__ == "__main__":
  cli.run(main, doc=__doc__, module=__name__)
