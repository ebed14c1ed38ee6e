"""The same VAE training step in PyTorch (eager, Adam), the peer that
``vae-benchmark --vs_torch`` (``experiments/benchmark/``) times beside ours.

What a PyTorch user writes: the network of ``vae.networks`` (the
disentanglement_lib conv VAE on 64x64x1 with 10 latents, or an MLP VAE),
Bernoulli likelihood with logits, closed-form KL, the batch mean of the
negative ELBO, ``loss.backward()`` and ``Adam.step()``. Data: random binary
images held in memory, a shuffled batch gathered each step, as our benchmark
feeds its own step (throughput does not depend on the pixel values).

  python -m experiments.torch_peer --arch conv --batch 64 --steps 50
  python -m experiments.torch_peer --arch mlp --input 784 --hidden 500,500 --latent 50 --batch 100

Prints one JSON line: {"examples_per_sec": ..., "threads": ...}. Needs
``pip install torch`` (a benchmark-only dependency; ``vae`` never imports it).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


class ConvVAE(nn.Module):
  """disentanglement_lib: conv 32,32,64,64 (4x4, stride 2) -> FC 256 -> 2 x 10;
  FC 256 -> FC 1024 -> deconv 64,32,32,1 (4x4, stride 2)."""

  def __init__(self, latent=10):
    super().__init__()
    chans = [1, 32, 32, 64, 64]
    enc = []
    for a, b in zip(chans[:-1], chans[1:]):
      enc += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU()]
    self.enc = nn.Sequential(*enc, nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(),
                             nn.Linear(256, 2 * latent))
    self.fc = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU())
    dec = []
    for a, b in zip([64, 64, 32, 32], [64, 32, 32, 1]):
      dec += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
    self.dec = nn.Sequential(*dec[:-1])

  def forward(self, x):
    mean, logvar = self.enc(x).chunk(2, -1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    return self.dec(self.fc(z).view(-1, 64, 4, 4)), mean, logvar


class MLPVAE(nn.Module):
  def __init__(self, d, hidden, latent, act):
    super().__init__()
    layers, width = [], d
    for h in hidden:
      layers += [nn.Linear(width, h), act()]
      width = h
    self.enc = nn.Sequential(*layers, nn.Linear(width, 2 * latent))
    layers, width = [], latent
    for h in hidden:
      layers += [nn.Linear(width, h), act()]
      width = h
    self.dec = nn.Sequential(*layers, nn.Linear(width, d))

  def forward(self, x):
    mean, logvar = self.enc(x).chunk(2, -1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    return self.dec(z), mean, logvar


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--arch", choices=("conv", "mlp"), default="conv")
  p.add_argument("--input", type=int, default=784, help="MLP input size")
  p.add_argument("--hidden", default="500,500", help="MLP hidden widths")
  p.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
  p.add_argument("--latent", type=int, default=10)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", type=int, default=50)
  p.add_argument("--warmup", type=int, default=10)
  a = p.parse_args()
  torch.manual_seed(0)
  if a.arch == "conv":
    model, shape = ConvVAE(a.latent), (1, 64, 64)
  else:
    act = nn.Tanh if a.activation == "tanh" else nn.ReLU
    model = MLPVAE(a.input, [int(h) for h in a.hidden.split(",")], a.latent, act)
    shape = (a.input,)
  data = (torch.rand((max(50 * a.batch, 5000),) + shape) > 0.5).float()
  perm = torch.randperm(len(data))
  opt = torch.optim.Adam(model.parameters(), 1e-4)

  def step(i):
    j = (i * a.batch) % (len(data) - a.batch)
    x = data[perm[j:j + a.batch]]
    logits, mean, logvar = model(x)
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)
    kl = 0.5 * (logvar.exp() + mean ** 2 - 1 - logvar).sum(-1)
    loss = (rec + kl).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss

  for i in range(a.warmup):
    step(i)
  t0 = time.perf_counter()
  for i in range(a.steps):
    loss = step(i)
  loss.item()
  dt = time.perf_counter() - t0
  print(json.dumps({"examples_per_sec": a.steps * a.batch / dt, "threads": torch.get_num_threads(),
                    "torch": torch.__version__}))


if __name__ == "__main__":
  main()
