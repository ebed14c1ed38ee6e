"""How much a conditional VAE run reads its label: the bound with each
evaluation image's own label against the bound with every other label, and
the accuracy of the generative classifier argmax_y ELBO(x, y): Bayes' rule
with a uniform p(y), the ELBO standing in for log p(x|y).

  python -m experiments.cvae_labels --workdir workdirs/cvae

A model that ignores its label scores every class alike (accuracy 1/K, a gap
of 0); one that draws each class from its label puts the true class first.
Prints the result and writes it to ``<workdir>/label_use.json``.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
from absl import flags, logging

from . import cli
from . import rerun

_WORKDIR = flags.DEFINE_string("workdir", None, "A conditional VAE run's folder.")
flags.mark_flag_as_required("workdir")


def label_use(workdir: str, seed: int = 0) -> dict:
  """The ELBO of each evaluation image under each class, from ``workdir``'s
  latest checkpoint, summarised (see the module docstring)."""
  import functools

  from vae import conditioning as cond_lib
  from vae import evaluate as ev

  from . import job as job_lib
  config = job_lib.load_run_config(workdir)
  job = job_lib.resolve(config)
  rerun.check_classes_unchanged(job, workdir)
  cond = job.model.conditioning
  if cond is None:
    raise ValueError(f"{workdir} is not a conditional model (model.num_classes is 0)")
  state = job_lib.restore_state(workdir, job)
  x, y = np.asarray(job.eval_data), np.asarray(job.labels.eval)
  fn = functools.partial(ev._elbo_batch, model=job.model)
  key = jax.random.key(seed)
  # [N, K]: the same key for every class, so the classes differ by the label alone.
  elbo = np.stack([ev.map_batches(fn, state.params, cond_lib.Labeled(x, np.full_like(y, c)),
                                  batch_size=500, key=key)[0]
                   for c in range(cond.num_classes)], axis=1)
  own = elbo[np.arange(len(y)), y]
  others = (elbo.sum(axis=1) - own) / (cond.num_classes - 1)
  pred = elbo.argmax(axis=1)
  out = {"step": int(state.step), "num_examples": int(len(y)),
         "classes": list(job.labels.class_names),
         "elbo_own_label": float(own.mean()), "elbo_other_labels": float(others.mean()),
         "gap_nats": float((own - others).mean()),
         "accuracy": float(np.mean(pred == y)), "chance": 1.0 / cond.num_classes,
         "per_class_accuracy": [float(np.mean(pred[y == c] == c)) if np.any(y == c) else None
                                for c in range(cond.num_classes)]}
  with open(os.path.join(workdir, "label_use.json"), "w") as f:
    json.dump(out, f, indent=2)
  return out


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)    # orbax logs every restore at INFO
  print(json.dumps(label_use(_WORKDIR.value), indent=2))


if __name__ == "__main__":
  cli.run(main, doc=__doc__, module=__name__)
