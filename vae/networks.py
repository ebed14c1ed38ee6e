"""Encoder and decoder networks (flax.linen), applied to ONE example.

Modules hold no randomness (docs/design.md, contract 2): sampling happens in
``vae.model.reparameterize`` with an explicit key. Every module accepts an
unbatched example; under ``jax.vmap`` it sees one example at a time.

References:
  Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders,
  Sec. 5 (784-200-200-50 tanh MLP for one stochastic layer).
  Locatello et al. (2019), Challenging Common Assumptions in the Unsupervised
  Learning of Disentangled Representations, Table 1 / disentanglement_lib
  (the 64x64 convolutional encoder and decoder).
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from vae import conv

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "softplus": nn.softplus,
    "leaky_relu": nn.leaky_relu,
}


def get_activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
  return ACTIVATIONS[name]


def with_label(h, y):
  """``h`` [..., F] with a one-hot label ``y`` [..., K] (or [K], broadcast
  over h's leading axes) concatenated: a conditional VAE's networks read
  y beside x and z (Sohn et al. 2015; ``vae.conditioning``). ``y`` None:
  ``h`` itself."""
  if y is None:
    return h
  y = jnp.broadcast_to(y.astype(h.dtype), h.shape[:-1] + y.shape[-1:])
  return jnp.concatenate([h, y], axis=-1)


class GaussianHead(nn.Module):
  """Maps features to (mean [D], logvar [D] or [1] for an isotropic q)."""
  latent_dim: int
  posterior: str = "diagonal"  # or "isotropic": one shared variance
  dtype: str = "float32"       # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, h):
    mean = nn.Dense(self.latent_dim, dtype=self.dtype, name="mean")(h)
    num_var = self.latent_dim if self.posterior == "diagonal" else 1
    logvar = nn.Dense(num_var, dtype=self.dtype, name="logvar")(h)
    return mean, logvar


class MLPEncoder(nn.Module):
  """x [..., *data_shape] -> (mean [..., D], logvar [..., D] or [..., 1]);
  ``data_rank`` = len(data_shape) trailing axes are flattened."""
  latent_dim: int
  hidden: Sequence[int] = (200, 200)
  activation: str = "tanh"
  posterior: str = "diagonal"
  dtype: str = "float32"
  data_rank: int = 3

  @nn.compact
  def __call__(self, x, y=None):
    act = get_activation(self.activation)
    h = jnp.reshape(x, x.shape[:x.ndim - self.data_rank] + (-1,))
    h = with_label(h, y)
    for i, width in enumerate(self.hidden):
      h = act(nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(h))
    return GaussianHead(self.latent_dim, self.posterior, self.dtype, name="head")(h)


class MLPDecoder(nn.Module):
  """z [D] -> decoder output of shape ``data_shape`` (logits or means)."""
  data_shape: Sequence[int]
  hidden: Sequence[int] = (200, 200)
  activation: str = "tanh"
  dtype: str = "float32"

  @nn.compact
  def __call__(self, z, y=None):
    act = get_activation(self.activation)
    h = with_label(z, y)
    for i, width in enumerate(self.hidden):
      h = act(nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(h))
    out = nn.Dense(math.prod(self.data_shape), dtype=self.dtype, name="out")(h)
    return out.reshape(out.shape[:-1] + tuple(self.data_shape))


CONV_IMPLS = ("auto", "gemm", "xla")


def resolve_conv_impl(conv_impl: str) -> str:
  """"gemm" or "xla" for ``conv_impl``: "auto" takes the GEMM form of
  ``vae.conv`` on a CPU (XLA:CPU's conv backward is slow) and XLA's own
  convolution elsewhere (cuDNN on a GPU, the TPU's convolution units)."""
  if conv_impl not in CONV_IMPLS:
    raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {conv_impl!r}")
  if conv_impl == "auto":
    return "gemm" if jax.default_backend() == "cpu" else "xla"
  return conv_impl


class Conv4x4(nn.Module):
  """4x4, stride 2, 'SAME' conv (or transposed conv) with bias: the parameters,
  initialisation and output of ``nn.Conv`` (``nn.ConvTranspose``) with those
  settings, computed by ``vae.conv`` as GEMMs (``impl="gemm"``: fast forward
  and backward on CPU; see that module) or by XLA's own convolution
  (``impl="xla"``: the natural choice on GPU and TPU).

  With ``channel_major`` (GEMM only) the input and output are in
  ``vae.conv``'s internal layout [C, H, W, N] (``conv.to_channel_major``), so
  that a stack of these layers converts its activations once, not at every
  layer; the parameters are the same either way."""
  features: int
  transpose: bool = False
  dtype: str = "float32"
  channel_major: bool = False
  impl: str = "gemm"

  @nn.compact
  def __call__(self, x):
    if self.impl not in ("gemm", "xla"):
      raise ValueError(f"Conv4x4.impl must be 'gemm' or 'xla', got {self.impl!r}")
    if self.impl == "xla" and self.channel_major:
      raise ValueError("Conv4x4(impl='xla') takes NHWC inputs (no channel_major)")
    if self.channel_major and x.ndim != 4:
      raise ValueError(f"Conv4x4(channel_major=True) takes x [C, H, W, N] "
                       f"(conv.to_channel_major), got shape {x.shape}")
    c = x.shape[0] if self.channel_major else x.shape[-1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (4, 4, c, self.features), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
    x, kernel, bias = (a.astype(self.dtype) for a in (x, kernel, bias))
    if self.impl == "xla":
      return _xla_conv(x, kernel, self.transpose) + bias
    if self.channel_major:
      op = conv.conv_transpose4x4_s2_cm if self.transpose else conv.conv4x4_s2_cm
      bias = bias[:, None, None, None]
    else:
      op = conv.conv_transpose4x4_s2 if self.transpose else conv.conv4x4_s2
    return op(x, kernel) + bias


def _xla_conv(x, kernel, transpose: bool):
  """XLA's stride-2 'SAME' conv (``lax.conv_transpose``, kernel not flipped,
  as ``nn.ConvTranspose``) on x [..., H, W, C]."""
  lead = x.shape[:-3]
  x = x.reshape((-1,) + x.shape[-3:])
  dims = ("NHWC", "HWIO", "NHWC")
  if transpose:
    y = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=dims)
  else:
    y = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=dims)
  return y.reshape(lead + y.shape[1:])


class ConvEncoder(nn.Module):
  """disentanglement_lib conv encoder for 64x64xC inputs.

  conv 32, 32, 64, 64 (4x4, stride 2, ReLU), then FC 256 (ReLU), then the
  Gaussian head (Locatello et al. 2019, Table 1).
  """
  latent_dim: int
  posterior: str = "diagonal"
  dtype: str = "float32"
  # "gemm" (vae.conv, channel-major inside: the CPU's training path) or "xla"
  # (XLA's conv, NHWC: GPU/TPU). Same parameters. ``make_model`` resolves "auto".
  conv_impl: str = "gemm"

  @nn.compact
  def __call__(self, x, y=None):
    xla = self.conv_impl == "xla"
    if self.conv_impl not in ("gemm", "xla"):
      raise ValueError(f"ConvEncoder.conv_impl must be 'gemm' or 'xla', got {self.conv_impl!r}")
    h = x if xla else conv.to_channel_major(x)   # the GEMM stack runs channel-major
    for i, feats in enumerate((32, 32, 64, 64)):
      h = nn.relu(Conv4x4(feats, dtype=self.dtype, channel_major=not xla,
                          impl="xla" if xla else "gemm", name=f"conv_{i}")(h))
    if not xla:
      h = conv.from_channel_major(h, x.shape[:-3])
    h = with_label(h.reshape(h.shape[:-3] + (-1,)), y)
    h = nn.relu(nn.Dense(256, dtype=self.dtype, name="fc")(h))
    return GaussianHead(self.latent_dim, self.posterior, self.dtype, name="head")(h)


class ConvDecoder(nn.Module):
  """disentanglement_lib deconv decoder: FC 256, FC 1024 (=4x4x64), then
  transposed convs 64, 32, 32, C (4x4, stride 2) to 64x64xC."""
  data_shape: Sequence[int] = (64, 64, 1)
  dtype: str = "float32"
  conv_impl: str = "gemm"     # as ConvEncoder's

  @nn.compact
  def __call__(self, z, y=None):
    xla = self.conv_impl == "xla"
    if self.conv_impl not in ("gemm", "xla"):
      raise ValueError(f"ConvDecoder.conv_impl must be 'gemm' or 'xla', got {self.conv_impl!r}")
    h = nn.relu(nn.Dense(256, dtype=self.dtype, name="fc_0")(with_label(z, y)))
    h = nn.relu(nn.Dense(1024, dtype=self.dtype, name="fc_1")(h))
    lead = h.shape[:-1]
    h = h.reshape(lead + (4, 4, 64))
    h = h if xla else conv.to_channel_major(h)   # the GEMM stack runs channel-major
    layer = lambda f, name: Conv4x4(f, transpose=True, dtype=self.dtype, channel_major=not xla,
                                    impl=self.conv_impl, name=name)
    for i, feats in enumerate((64, 32, 32)):
      h = nn.relu(layer(feats, f"deconv_{i}")(h))
    h = layer(self.data_shape[-1], "deconv_3")(h)
    return h if xla else conv.from_channel_major(h, lead)


class Discriminator(nn.Module):
  """FactorVAE discriminator: z [D] -> one logit of "z is from q(z)" against
  "z is from the product of its marginals".

  Six hidden layers of 1000 leaky-ReLU units (Kim & Mnih 2018, Appendix,
  Table 6; disentanglement_lib uses slope 0.2). One logit replaces their two
  softmax logits: ``log D / (1 - D)`` is then the logit itself.
  """
  hidden: Sequence[int] = (1000,) * 6
  negative_slope: float = 0.2

  @nn.compact
  def __call__(self, z):
    h = z
    for i, width in enumerate(self.hidden):
      h = nn.leaky_relu(nn.Dense(width, name=f"dense_{i}")(h), self.negative_slope)
    return nn.Dense(1, name="logit")(h)[..., 0]
