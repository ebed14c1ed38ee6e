"""The 4x4, stride-2 convolutions of the disentanglement_lib networks, as GEMMs.

``conv4x4_s2(x, kernel)`` computes exactly ``flax.linen.Conv(F, (4, 4),
strides=(2, 2), padding="SAME")`` and ``conv_transpose4x4_s2(x, kernel)``
exactly ``flax.linen.ConvTranspose(F, (4, 4), strides=(2, 2),
padding="SAME")`` (no bias; same kernel layout [4, 4, C_in, C_out], so
parameters, initialisation and checkpoints are those of the flax layers), with
forward and backward passes written as a few large matrix products plus cheap
data movement. Inputs are [..., H, W, C] with any leading axes; the functions
are correct under ``jax.vmap`` and ``jax.grad`` in any order (tested; reverse
mode only: the backward passes are ``jax.custom_vjp`` rules). Gradients come
back in the dtypes of x and the kernel.

``conv4x4_s2_cm`` and ``conv_transpose4x4_s2_cm`` are the same functions on
the module's internal channel-major layout [C, H, W, N] (``to_channel_major``
/ ``from_channel_major``); the conv networks (``networks.ConvEncoder`` and
``ConvDecoder``) convert once at each end of their conv stack and call these.

Why: on XLA:CPU the convolutions' backward passes (a stride-2 conv's input
gradient is a transposed conv, its kernel gradient a dilated conv) run one to
two orders of magnitude below the machine's matmul speed, and so does the
transposed conv itself (README, "Why the CPU path looks as it does", has
the figures).

Why channel-major: every activation operand then has the long (H, W, N)
axis minor. Forward and input-gradient products are ``W @ X``; the kernel
gradients are ``dZ @ X^T``, which XLA:CPU runs on its fast GEMM path. With
channels minor ([N, H, W, C]) a kernel gradient contracts the major axis of
both operands: XLA:CPU runs that through Eigen at 60-70% of the GEMM speed,
or after a transposing copy of a large activation.

How (``s`` = space-to-depth of the padded input, 2x2 blocks into channels;
written here per pixel, with channels as the row of each matrix):

* Stride-2 conv: ``y[:, i, j] = sum_{p, q in {0, 1}} W_pq^T s[:, i + p, j + q]``
  with ``W_pq[(a, b, c), f] = K[2p + a, 2q + b, c, f]``. With few input
  channels (16 C <= 4 F: the first layer) as im2col, ``y = W^T P`` with the 4
  shifted copies of ``s`` stacked; otherwise as one GEMM
  ``Z = [W_00 .. W_11]^T s`` and the sum of 4 shifted slices of Z, which
  copies nothing the size of the patches.
* Transposed conv (flax's ``lax.conv_transpose``, kernel not flipped): output
  row ``2i + r`` receives ``K[2e + r]^T x[i + e + r - 1]`` for ``e in {0, 1}``
  (and the same in columns). One GEMM ``Y = K^T x`` (all 16 taps stacked),
  each of the 4 output phases the sum of 4 shifted slices of Y (zero where
  the shift leaves x), then the phases interleaved (depth-to-space). With few
  input channels (C <= 32: 16x16x32 -> 32x32x32), where that GEMM's K = C is
  short and its output 16F rows, the transposed conv is computed as what it
  is, the input gradient of a stride-2 conv with the flipped kernel: one GEMM
  with K = 4C on the 4 shifted copies of x, then depth-to-space.
* Backward passes by hand (``jax.custom_vjp``): the cotangents of the shifted
  slices are stacked once and met by one GEMM for the input gradient and one
  for the kernel gradient; no convolution, no scatter. A transposed conv with
  few output channels (the decoder's last layer, 1 channel) takes its
  gradients from the adjoint stride-2 conv (im2col, flipped kernel).

References:
  Dumoulin & Visin (2016), A guide to convolution arithmetic for deep
  learning (transposed convolution as the gradient of a convolution).
  Shi et al. (2016), Real-Time Single Image and Video Super-Resolution Using
  an Efficient Sub-Pixel Convolutional Neural Network (sub-pixel / phase form).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


# Layout: channel-major [C, H, W, N] inside (see "Why channel-major" above);
# the spatial data movement (padding, space-to-depth, shifted slices) then
# moves whole batch rows, N floats at a time.
def to_channel_major(x: jax.Array) -> jax.Array:
  """[..., H, W, C] -> [C, H, W, N], N the product of the leading axes."""
  if x.ndim < 3:
    raise ValueError(f"expected an image batch [..., H, W, C], got shape {x.shape}")
  hh, ww, c = x.shape[-3:]
  return jnp.transpose(x.reshape(-1, hh, ww, c), (3, 1, 2, 0))


def from_channel_major(y: jax.Array, lead: tuple[int, ...]) -> jax.Array:
  """[C, H, W, N] -> [*lead, H, W, C] (the inverse of ``to_channel_major``)."""
  c, hh, ww, _ = y.shape
  return jnp.transpose(y, (3, 1, 2, 0)).reshape(tuple(lead) + (hh, ww, c))


def _matmul(w: jax.Array, a: jax.Array) -> jax.Array:
  """[M, K] @ [K, ...] -> [M, ...] as one 2-D GEMM."""
  return (w @ a.reshape(a.shape[0], -1)).reshape((w.shape[0],) + a.shape[1:])


def _gram(a: jax.Array, b: jax.Array) -> jax.Array:
  """sum over all trailing axes of a[K, ...] b[M, ...]^T -> [K, M]."""
  return a.reshape(a.shape[0], -1) @ b.reshape(b.shape[0], -1).T


def _transposed(w: jax.Array) -> jax.Array:
  """A small weight matrix transposed and materialised. XLA:CPU would fold a
  plain transpose into the product and run that through Eigen, off its fast
  GEMM path; GPU and TPU GEMMs take transposed operands natively, so the copy
  is forced only when tracing for the CPU (decided at trace time: a program
  lowered for another platform than the default loses speed, not accuracy)."""
  wt = w.T
  return jax.lax.optimization_barrier(wt) if jax.default_backend() == "cpu" else wt


def _pad_hw(a: jax.Array, rows: tuple[int, int], cols: tuple[int, int]) -> jax.Array:
  """Zero-pads the spatial axes of [C, H, W, N]."""
  return jnp.pad(a, [(0, 0), rows, cols, (0, 0)])


def _depth_to_space(s: jax.Array) -> jax.Array:
  """[4C, h, w, N] -> [C, 2h, 2w, N]: channel (a, b, c) of block (i, j) goes
  to channel c of the pixel (2i + a, 2j + b) (the inverse of space-to-depth)."""
  c4, h, w, n = s.shape
  x = s.reshape(2, 2, c4 // 4, h, w, n)                 # [a, b, c, h, w, n]
  return x.transpose(2, 3, 0, 4, 1, 5).reshape(c4 // 4, 2 * h, 2 * w, n)


def _conv_weights(kernel):
  """K [4, 4, C, F] -> W [(a, b, c), (p, q, f)] = K[2p + a, 2q + b, c, f]."""
  c, f = kernel.shape[2:]
  k = kernel.reshape(2, 2, 2, 2, c, f)             # [p, a, q, b, c, f]
  return jnp.transpose(k, (1, 3, 4, 0, 2, 5)).reshape(4 * c, 4 * f)


def _im2col_weights(kernel):
  """K [4, 4, C, F] -> W [(p, q, a, b, c), f] = K[2p + a, 2q + b, c, f]."""
  c, f = kernel.shape[2:]
  k = kernel.reshape(2, 2, 2, 2, c, f)             # [p, a, q, b, c, f]
  return jnp.transpose(k, (0, 2, 1, 3, 4, 5)).reshape(16 * c, f)


def _adjoint_kernel(kernel):
  """K [4, 4, C, F] -> K' [4, 4, F, C] = flip(K) with inputs and outputs
  swapped: the stride-2 conv with K' is the adjoint (transpose) of the
  transposed conv with K, and the other way round."""
  return jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)


def _s2d_input(x):
  """Pads x as 'SAME' wants (1 before; after, 1 for even sizes and 2 for odd,
  to 2(h + 1)) and moves 2x2 blocks into channels, channel (a, b, c) of block
  (i, j) holding pixel (2i + a, 2j + b) of the padded x: (s, h, w)."""
  # Block (a, b) of the padded x is x[1 - a::2, 1 - b::2], shifted down
  # (right) by one when a = 0 (b = 0). Written as pads of strided slices,
  # XLA fuses the padding, the space-to-depth and the producer of x (the
  # previous layer's bias and ReLU) into one pass; as the space-to-depth of
  # pad(x) it made two.
  h, w = -(-x.shape[1] // 2), -(-x.shape[2] // 2)
  parts = []
  for a in (0, 1):
    for b in (0, 1):
      part = x[:, 1 - a::2, 1 - b::2, :]
      parts.append(_pad_hw(part, (1 - a, h + a - part.shape[1]), (1 - b, w + b - part.shape[2])))
  return jnp.concatenate(parts, axis=0), h, w


def _input_grad(ds, x_shape):
  """The gradient w.r.t. x from the gradient w.r.t. its s2d form."""
  hh, ww = x_shape[1:3]
  return _depth_to_space(ds)[:, 1:1 + hh, 1:1 + ww, :]


# The custom-VJP functions take the weights already arranged as the left
# operand of their forward GEMM (the arrangement is plain jnp, differentiated
# by JAX on the kernel), and return the weight gradient straight from a GEMM.
@jax.custom_vjp
def _conv_im2col(x, wt_im2col):
  return _conv_im2col_fwd(x, wt_im2col)[0]


def _conv_im2col_fwd(x, wt_im2col):
  """wt_im2col = W^T [F, 16C]; patches [(p, q, a, b, c), h, w, N]."""
  s, h, w = _s2d_input(x)
  patches = jnp.concatenate([s[:, p:p + h, q:q + w, :] for p in (0, 1) for q in (0, 1)], axis=0)
  return _matmul(wt_im2col, patches), (patches, wt_im2col, x.shape)


def _conv_im2col_bwd(res, dy):
  patches, wt_im2col, x_shape = res
  dpatches = _matmul(_transposed(wt_im2col), dy)
  dpatches = dpatches.reshape((4, dpatches.shape[0] // 4) + dpatches.shape[1:])
  ds = sum(_pad_hw(dpatches[2 * p + q], (p, 1 - p), (q, 1 - q)) for p in (0, 1) for q in (0, 1))
  return _input_grad(ds, x_shape).astype(patches.dtype), _gram(dy, patches).astype(wt_im2col.dtype)


_conv_im2col.defvjp(_conv_im2col_fwd, _conv_im2col_bwd)


def _shifted_sum(z, h, w):
  """y[f, i, j] = sum_{p, q} z[(p, q), f, i + p, j + q]: z [4, F, h+1, w+1, N]."""
  return (z[0, :, 0:h, 0:w] + z[1, :, 0:h, 1:w + 1]
          + z[2, :, 1:h + 1, 0:w] + z[3, :, 1:h + 1, 1:w + 1])


def _shifted_stack(dy):
  """The transpose of ``_shifted_sum``: [F, h, w, N] -> [4F, h+1, w+1, N]
  holding dy shifted by (p, q) in slot (p, q)."""
  return jnp.concatenate([_pad_hw(dy, (p, 1 - p), (q, 1 - q)) for p in (0, 1) for q in (0, 1)],
                         axis=0)


@jax.custom_vjp
def _conv_shift(x, wt):
  return _conv_shift_fwd(x, wt)[0]


def _conv_shift_fwd(x, wt):
  """wt = W^T [(p, q, f), (a, b, c)]: Z = W^T s, then the shifted sum."""
  s, h, w = _s2d_input(x)
  z = _matmul(wt, s)
  return _shifted_sum(z.reshape((4, wt.shape[0] // 4) + z.shape[1:]), h, w), (s, wt, x.shape)


def _conv_shift_input_grad(dz, w, x_shape):
  """The input gradient from the shifted stack of the output's cotangent
  (w = W [(a, b, c), (p, q, f)])."""
  return _input_grad(_matmul(w, dz), x_shape)


def _conv_shift_bwd(res, dy):
  s, wt, x_shape = res
  dz = _shifted_stack(dy)                           # [4F, h+1, w+1, N]
  return (_conv_shift_input_grad(dz, _transposed(wt), x_shape).astype(s.dtype),
          _gram(dz, s).astype(wt.dtype))


_conv_shift.defvjp(_conv_shift_fwd, _conv_shift_bwd)


def _check(name, x, kernel):
  """x channel-major [C, H, W, N] and a [4, 4, C, F] kernel, or a clear error."""
  if x.ndim != 4:
    raise ValueError(f"{name}: expected channel-major x [C, H, W, N], got shape {x.shape}")
  if kernel.ndim != 4 or kernel.shape[:2] != (4, 4):
    raise ValueError(f"{name}: expected a kernel [4, 4, C, F], got shape {kernel.shape}")
  if x.shape[0] != kernel.shape[2]:
    raise ValueError(f"{name}: x has {x.shape[0]} channels, the kernel {kernel.shape} expects "
                     f"{kernel.shape[2]}")


def _nhwc(op_cm, name, x, kernel):
  """``op_cm`` on x [..., H, W, C], converted to channel-major and back."""
  return from_channel_major(op_cm(to_channel_major(x), kernel, name), x.shape[:-3])


def conv4x4_s2_cm(x: jax.Array, kernel: jax.Array, _name: str = "conv4x4_s2_cm") -> jax.Array:
  """``conv4x4_s2`` on channel-major x [C, H, W, N] -> [F, ceil(H/2), ceil(W/2), N]."""
  _check(_name, x, kernel)
  c, f = kernel.shape[2:]
  if 16 * c <= 4 * f:        # few input channels (the first layer): im2col is smaller
    return _conv_im2col(x, _transposed(_im2col_weights(kernel)))
  return _conv_shift(x, _transposed(_conv_weights(kernel)))


def conv4x4_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-2 4x4 'SAME' convolution, no bias (flax ``nn.Conv`` semantics).

  Args:
    x: [..., H, W, C].
    kernel: [4, 4, C, F].

  Returns:
    [..., ceil(H / 2), ceil(W / 2), F].
  """
  return _nhwc(conv4x4_s2_cm, "conv4x4_s2", x, kernel)


def _shift(a, axis, d):
  """b[i] = a[i + d] along ``axis`` (d in {-1, 0, 1}), zero where i + d is outside."""
  if d == 0:
    return a
  n = a.shape[axis]
  idx = [slice(None)] * a.ndim
  pad = [(0, 0)] * a.ndim
  idx[axis] = slice(0, n - 1) if d < 0 else slice(1, n)
  pad[axis] = (1, 0) if d < 0 else (0, 1)
  return jnp.pad(a[tuple(idx)], pad)


def _shift2(a, di, dj):
  """``_shift`` along both spatial axes of [C, H, W, N]."""
  return _shift(_shift(a, 1, di), 2, dj)


# Transposed conv. Output row 2i + r takes K[2e + r]^T x[:, i + e + r - 1],
# e in {0, 1} (and so in columns).
def _deconv_fwd(x, kernel_t):
  """kernel_t [(kr, kc, f), c] = K[kr, kc, c, f]."""
  f = kernel_t.shape[0] // 16
  # Y = K^T x (all 16 taps stacked, no padding: a padded x would make the
  # GEMM 2.25x larger at 4x4); phase (r, s) at (i, j) sums the 4 taps
  # y[(2e + r, 2g + s), i + e + r - 1, j + g + s - 1], zero outside x.
  y = _matmul(kernel_t, x).reshape((4, 4, f) + x.shape[1:])
  phases = [sum(_shift2(y[2 * e + r, 2 * g + s], e + r - 1, g + s - 1)
                for e in (0, 1) for g in (0, 1))
            for r in (0, 1) for s in (0, 1)]
  return _depth_to_space(jnp.concatenate(phases, axis=0)), (x, kernel_t)


def _deconv_bwd_adjoint(x, kernel_t, dout):
  """The backward pass as the adjoint stride-2 conv, for few output channels
  (the last layer, F = 1), where the 16 shifted copies of a 1-channel
  cotangent are slow to build: output row ``o = 2m + 2 - kr`` takes
  ``K[kr]^T x[:, m]``, so ``dx[:, m] = sum_t K[3 - t] dout[:, 2m - 1 + t]``, the
  'SAME' stride-2 conv of dout with ``K' = flip(K)`` (inputs and outputs
  swapped), and ``dK[kr] = dK'[3 - kr]``, the kernel gradient of that conv met
  with x. Both come from the im2col conv's forward pass and one GEMM."""
  f, c = kernel_t.shape[0] // 16, kernel_t.shape[1]
  kernel = kernel_t.reshape(4, 4, f, c).transpose(0, 1, 3, 2)             # [4, 4, C, F]
  w16 = _im2col_weights(_adjoint_kernel(kernel))                     # [16F, C]
  dx, (patches, _, _) = _conv_im2col_fwd(dout, _transposed(w16))              # [C, H, W, N]
  dw16 = _gram(patches, x)                                           # [(p, q, a, b, f), C]
  dkp = dw16.reshape(2, 2, 2, 2, f, c).transpose(0, 2, 1, 3, 4, 5).reshape(4, 4, f, c)
  dk = jnp.flip(dkp, (0, 1))                                         # [4, 4, F, C] = dK^T
  return dx, dk.reshape(16 * f, c)


def _deconv_bwd(res, dout):
  x, kernel_t = res
  f = kernel_t.shape[0] // 16
  hh, ww = x.shape[1:3]
  if 4 * f <= x.shape[0]:        # few output channels: the adjoint conv is cheaper
    dx, dk = _deconv_bwd_adjoint(x, kernel_t, dout)
    return dx.astype(x.dtype), dk.astype(kernel_t.dtype)
  grid = dout.reshape(f, hh, 2, ww, 2, dout.shape[-1])
  # The transpose of the forward's shifted taps:
  # dY[(2e + r, 2g + s), i, j] = d_rs[i + 1 - e - r, j + 1 - g - s], 16 shifted copies.
  taps = []
  for kr in range(4):
    e, r = divmod(kr, 2)
    for kc in range(4):
      g, s = divmod(kc, 2)
      taps.append(_shift2(grid[:, :, r, :, s, :], 1 - e - r, 1 - g - s))
  dy = jnp.concatenate(taps, axis=0)                # [16F, H, W, N]
  return _matmul(_transposed(kernel_t), dy).astype(x.dtype), _gram(dy, x).astype(kernel_t.dtype)


# Transposed conv as the adjoint of a stride-2 conv: ``conv_transpose(x, K)``
# is the input gradient of ``conv4x4_s2(., K')`` with ``K' = flip(K)`` (inputs
# and outputs swapped), met with the cotangent x. Forward: the shifted stack of
# x (4 copies) and one GEMM (4F output rows, K = 4C), then depth-to-space; its
# backward is that conv's forward (input gradient) and kernel gradient. Used
# where C is too small for the 16-tap GEMM above (K = C) to run well: there
# the taps' output, 16F rows, is 4x the size of the result.
@jax.custom_vjp
def _deconv_shift(x, w):
  return _deconv_shift_fwd(x, w)[0]


def _deconv_shift_fwd(x, w):
  """w = W' [(a, b, f), (p, q, c)], the stride-2 conv weights of K'."""
  hh, ww, n = x.shape[1:]
  st = _shifted_stack(x)                            # [4C, H+1, W+1, N]
  y = _conv_shift_input_grad(st, w, (w.shape[0] // 4, 2 * hh, 2 * ww, n))
  return y, (st, w)


def _deconv_shift_bwd(res, dout):
  st, w = res
  dx, (s, _, _) = _conv_shift_fwd(dout, _transposed(w))
  return dx.astype(st.dtype), _gram(s, st).astype(w.dtype)


_deconv_shift.defvjp(_deconv_shift_fwd, _deconv_shift_bwd)


@jax.custom_vjp
def _deconv(x, kernel_t):
  return _deconv_fwd(x, kernel_t)[0]


_deconv.defvjp(_deconv_fwd, _deconv_bwd)


def conv_transpose4x4_s2_cm(x: jax.Array, kernel: jax.Array,
                            _name: str = "conv_transpose4x4_s2_cm") -> jax.Array:
  """``conv_transpose4x4_s2`` on channel-major x [C, H, W, N] -> [F, 2H, 2W, N]."""
  _check(_name, x, kernel)
  c, f = kernel.shape[2:]
  if c <= DECONV_SHIFT_MAX_C and 4 * f > c:
    return _deconv_shift(x, _conv_weights(_adjoint_kernel(kernel)))
  return _deconv(x, jnp.transpose(kernel, (0, 1, 3, 2)).reshape(16 * f, c))


def conv_transpose4x4_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-2 4x4 'SAME' transposed convolution, no bias (flax
  ``nn.ConvTranspose`` semantics: ``lax.conv_transpose``, kernel not flipped).

  Args:
    x: [..., H, W, C].
    kernel: [4, 4, C, F].

  Returns:
    [..., 2H, 2W, F].
  """
  return _nhwc(conv_transpose4x4_s2_cm, "conv_transpose4x4_s2", x, kernel)


# Up to this many input channels a transposed conv runs as the adjoint of a
# stride-2 conv (``_deconv_shift``): measured on the model's layers, that is
# faster for 16x16x32 -> 32x32x32, while 8x8x64 -> 16x16x32 is faster as 16
# taps (README, "Why the CPU path looks as it does").
DECONV_SHIFT_MAX_C = 32
