"""Optimizers and learning-rate schedules from plain settings (a config's
``optim`` section, or a dict): one optax transformation (docs/design.md, contract 5).
"""

from __future__ import annotations

from typing import Any, Mapping

import optax


def make_schedule(cfg: Mapping[str, Any]) -> optax.Schedule:
  """Learning-rate schedule from ``config.optim``.

  schedule: "constant"; "cosine" (to ``end_lr_factor * lr`` over
  ``decay_steps``); "exponential" (``lr * decay_rate ** (step / decay_steps)``,
  continuous, floored at ``end_lr_factor * lr``); each with optional linear
  ``warmup_steps``.
  """
  lr = float(cfg["learning_rate"])
  name = cfg.get("schedule", "constant")
  warmup = int(cfg.get("warmup_steps", 0))
  end = lr * float(cfg.get("end_lr_factor", 0.0))
  decay_steps = max(int(cfg.get("decay_steps", 1)), 1)
  if name == "constant":
    main = optax.constant_schedule(lr)
  elif name == "cosine":
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
  elif name == "exponential":
    main = optax.exponential_decay(lr, decay_steps, float(cfg.get("decay_rate", 0.1)),
                                   end_value=end if end > 0 else None)
  else:
    raise ValueError("optim.schedule must be 'constant', 'cosine' or "
                     f"'exponential', got {name!r}")
  if warmup > 0:
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), main], [warmup])
  return main


def make_optimizer(cfg: Mapping[str, Any]) -> optax.GradientTransformation:
  """One optax transformation from ``config.optim`` (docs/design.md, contract 5).

  Fields: optimizer ("adam" | "adamw" | "sgd"), learning_rate, schedule,
  b1, b2, eps, weight_decay, grad_clip_norm (0 disables clipping).
  """
  sched = make_schedule(cfg)
  name = cfg.get("optimizer", "adam")
  if name == "adam":
    opt = optax.adam(sched, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     eps=cfg.get("eps", 1e-8))
  elif name == "adamw":
    opt = optax.adamw(sched, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                      eps=cfg.get("eps", 1e-8),
                      weight_decay=cfg.get("weight_decay", 1e-4))
  elif name == "sgd":
    opt = optax.sgd(sched, momentum=cfg.get("momentum", 0.0) or None)
  else:
    raise ValueError(f"optim.optimizer must be 'adam', 'adamw' or 'sgd', got {name!r}")
  clip = float(cfg.get("grad_clip_norm", 0.0))
  return optax.chain(optax.clip_by_global_norm(clip), opt) if clip > 0 else opt
