"""Optimizers and learning-rate schedules from plain arguments: one optax
transformation (docs/design.md, contract 5). The experiment layer passes a
config's ``optim`` section as keywords: ``make_optimizer(**config.optim)``.
"""

from __future__ import annotations

import optax


def make_schedule(learning_rate: float, *, schedule: str = "constant", warmup_steps: int = 0,
                  decay_steps: int = 1, decay_rate: float = 0.1,
                  end_lr_factor: float = 0.0) -> optax.Schedule:
  """A learning-rate schedule.

  Args:
    learning_rate: the peak rate.
    schedule: "constant"; "cosine" (to ``end_lr_factor * learning_rate`` over
      ``decay_steps``); "exponential" (``lr * decay_rate ** (step /
      decay_steps)``, continuous, floored at ``end_lr_factor * lr``).
    warmup_steps: linear warmup from 0 first (0: none).
  """
  lr = float(learning_rate)
  end = lr * float(end_lr_factor)
  decay_steps = max(int(decay_steps), 1)
  if schedule == "constant":
    main = optax.constant_schedule(lr)
  elif schedule == "cosine":
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
  elif schedule == "exponential":
    main = optax.exponential_decay(lr, decay_steps, float(decay_rate),
                                   end_value=end if end > 0 else None)
  else:
    raise ValueError("schedule must be 'constant', 'cosine' or 'exponential', got "
                     f"{schedule!r}")
  warmup = int(warmup_steps)
  if warmup > 0:
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), main], [warmup])
  return main


def make_optimizer(learning_rate: float, *, optimizer: str = "adam", b1: float = 0.9,
                   b2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-4,
                   momentum: float = 0.0, grad_clip_norm: float = 0.0,
                   **schedule) -> optax.GradientTransformation:
  """One optax transformation (docs/design.md, contract 5).

  Args:
    learning_rate: the peak learning rate.
    optimizer: "adam" | "adamw" (``weight_decay``) | "sgd" (``momentum``).
    b1, b2, eps: Adam's moments and epsilon.
    grad_clip_norm: clip the global gradient norm to this first (0: off).
    **schedule: ``make_schedule``'s keywords (schedule, warmup_steps,
      decay_steps, decay_rate, end_lr_factor).
  """
  sched = make_schedule(learning_rate, **schedule)
  if optimizer == "adam":
    opt = optax.adam(sched, b1=b1, b2=b2, eps=eps)
  elif optimizer == "adamw":
    opt = optax.adamw(sched, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  elif optimizer == "sgd":
    opt = optax.sgd(sched, momentum=momentum or None)
  else:
    raise ValueError(f"optimizer must be 'adam', 'adamw' or 'sgd', got {optimizer!r}")
  clip = float(grad_clip_norm)
  return optax.chain(optax.clip_by_global_norm(clip), opt) if clip > 0 else opt
