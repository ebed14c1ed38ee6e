"""vae.conv and networks.Conv4x4: the same function, parameters and gradients
as flax's Conv / ConvTranspose (4x4, stride 2, 'SAME')."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import conv, networks

# Every layer of the disentanglement_lib networks (batch 2), then odd sizes.
CONV_SHAPES = [((2, 64, 64), 1, 32), ((2, 32, 32), 32, 32), ((2, 16, 16), 32, 64),
               ((2, 8, 8), 64, 64), ((3, 9, 7), 3, 5), ((2, 5, 6), 2, 40), ((1, 7, 7), 1, 4),
               ((64, 64), 3, 8)]
# Transposed convs with C <= conv.DECONV_SHIFT_MAX_C (the layer 16x16x32 ->
# 32x32x32 and the small odd ones) run as the adjoint of a stride-2 conv.
DECONV_SHAPES = [((2, 4, 4), 64, 64), ((2, 8, 8), 64, 32), ((2, 16, 16), 32, 32),
                 ((2, 32, 32), 32, 1), ((3, 5, 3), 3, 7), ((1, 1, 1), 2, 2), ((7, 6), 4, 3),
                 # more than DECONV_SHIFT_MAX_C input channels: the 16-tap GEMM form
                 ((3, 5, 3), 40, 24), ((1, 1, 1), 33, 16), ((7, 6), 48, 20),
                 # few output channels (4F <= C): the backward pass is the adjoint conv
                 ((2, 32, 32), 32, 3), ((3, 5, 3), 8, 2), ((1, 1, 1), 4, 1), ((7, 6), 12, 3)]


def _relative(a, b):
  return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))


def _compare(ours, ref, x, kernel):
  y_ref = ref(x, kernel)
  cot = jax.random.normal(jax.random.key(2), y_ref.shape)

  @jax.jit
  def outputs_and_grads(x, kernel):
    value = lambda fn: (fn(x, kernel), jax.grad(lambda x, k: jnp.sum(fn(x, k) * cot),
                                                argnums=(0, 1))(x, kernel))
    return value(ours), value(ref)
  (y_ours, g_ours), (y_ref, g_ref) = outputs_and_grads(x, kernel)
  assert y_ours.shape == y_ref.shape
  assert _relative(y_ours, y_ref) < 1e-5
  assert _relative(g_ours[0], g_ref[0]) < 1e-5            # d/dx
  assert _relative(g_ours[1], g_ref[1]) < 1e-5            # d/dkernel


def test_both_transposed_conv_forms_are_tested():
  big = [c for _, c, f in DECONV_SHAPES if c > conv.DECONV_SHIFT_MAX_C and 4 * f > c]
  small = [c for _, c, f in DECONV_SHAPES if c <= conv.DECONV_SHIFT_MAX_C and 4 * f > c]
  assert len(big) >= 3 and len(small) >= 3


@pytest.fixture(autouse=True)
def _exact_matmuls():
  with jax.default_matmul_precision("highest"):
    yield


@pytest.mark.parametrize("shape,c,f", CONV_SHAPES)
def test_conv_equals_flax_conv_with_gradients(shape, c, f):
  x = jax.random.normal(jax.random.key(0), shape + (c,))
  kernel = 0.2 * jax.random.normal(jax.random.key(1), (4, 4, c, f))
  ref = lambda x, k: nn.Conv(f, (4, 4), strides=(2, 2), padding="SAME", use_bias=False).apply(
      {"params": {"kernel": k}}, x)
  _compare(conv.conv4x4_s2, ref, x, kernel)


@pytest.mark.parametrize("shape,c,f", DECONV_SHAPES)
def test_conv_transpose_equals_flax_conv_transpose_with_gradients(shape, c, f):
  x = jax.random.normal(jax.random.key(0), shape + (c,))
  kernel = 0.2 * jax.random.normal(jax.random.key(1), (4, 4, c, f))
  ref = lambda x, k: nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME",
                                      use_bias=False).apply({"params": {"kernel": k}}, x)
  _compare(conv.conv_transpose4x4_s2, ref, x, kernel)


@pytest.mark.parametrize("transpose", [False, True])
def test_module_has_flax_parameters_and_initialisation(transpose):
  x = jnp.ones((8, 8, 16))
  flax_layer = (nn.ConvTranspose if transpose else nn.Conv)(32, (4, 4), strides=(2, 2),
                                                            padding="SAME")
  ours = networks.Conv4x4(32, transpose=transpose)
  p_ref = flax_layer.init(jax.random.key(3), x)["params"]
  p_ours = ours.init(jax.random.key(3), x)["params"]
  assert jax.tree.map(jnp.shape, p_ours) == jax.tree.map(jnp.shape, p_ref)
  np.testing.assert_array_equal(p_ours["kernel"], p_ref["kernel"])
  np.testing.assert_array_equal(p_ours["bias"], p_ref["bias"])
  p = {"kernel": p_ref["kernel"], "bias": p_ref["bias"] + 0.1}
  np.testing.assert_allclose(ours.apply({"params": p}, x), flax_layer.apply({"params": p}, x),
                             rtol=1e-5, atol=1e-5)


def test_vmapped_weight_gradient_equals_the_batched_one():
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 32))
  kernel = 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 32, 64))
  for op in (conv.conv4x4_s2, conv.conv_transpose4x4_s2):
    k = kernel if op is conv.conv4x4_s2 else 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 32, 8))
    vm = jax.jit(jax.grad(lambda k: jnp.sum(jnp.sin(jax.vmap(lambda e: op(e, k))(x)))))(k)
    bt = jax.jit(jax.grad(lambda k: jnp.sum(jnp.sin(op(x, k)))))(k)
    assert _relative(vm, bt) < 1e-5
    # Per-example gradients (vmap of grad) are per example, not summed.
    per = jax.jit(jax.vmap(jax.grad(lambda k, e: jnp.sum(jnp.sin(op(e, k)))),
                           in_axes=(None, 0)))(k, x)
    assert per.shape == (4,) + k.shape
    assert _relative(per.sum(0), bt) < 1e-5


def test_channel_mismatch_is_an_error():
  with pytest.raises(ValueError, match="x has 3 channels"):
    conv.conv4x4_s2(jnp.zeros((8, 8, 3)), jnp.zeros((4, 4, 2, 5)))
  with pytest.raises(ValueError, match="x has 3 channels"):
    conv.conv_transpose4x4_s2(jnp.zeros((8, 8, 3)), jnp.zeros((4, 4, 2, 5)))
