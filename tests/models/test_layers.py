"""Each Caffe porting trap, against NumPy written here from Caffe's definitions."""
import numpy as np
import pytest
import theano
import theano.tensor as T

import lasagne
from lasagne.layers import DenseLayer, DropoutLayer, InputLayer, get_output

from models import googlenet
from models.caffe_import import to_lasagne
from models.layers import CaffeConv2DLayer, CaffeLRNLayer, CaffePool2DLayer, caffe_pooled_size

RNG = np.random.RandomState(0)


def run(layer, x, deterministic=True):
    inp = T.tensor4() if x.ndim == 4 else T.matrix()
    out = get_output(layer, inp, deterministic=deterministic)
    return theano.function([inp], out)(x)


def caffe_conv(x, W, b, stride, pad):
    """Caffe's convolution: cross-correlation over a zero-padded input."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    y = np.zeros((n, o, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.tensordot(patch, W, axes=([1, 2, 3], [1, 2, 3]))
    return y + b[None, :, None, None]


def test_convolution_is_cross_correlation_not_flipped():
    x = RNG.normal(size=(2, 3, 11, 9)).astype(np.float32)
    W = RNG.normal(size=(4, 3, 3, 5)).astype(np.float32)  # asymmetric kernels
    b = RNG.normal(size=4).astype(np.float32)
    layer = CaffeConv2DLayer(InputLayer((None, 3, 11, 9)), 4, (3, 5), stride=2, pad=2,
                             W=W, b=b, nonlinearity=None)
    ours = run(layer, x)
    np.testing.assert_allclose(ours, caffe_conv(x, W, b, 2, 2), rtol=1e-5, atol=1e-5)
    flipped = caffe_conv(x, W[:, :, ::-1, ::-1], b, 2, 2)
    assert np.abs(ours - flipped).max() > 0.1


def caffe_pool(x, k, s, p, mode):
    """Caffe's PoolingLayer forward, loop by loop (pooling_layer.cpp semantics)."""
    n, c, h, w = x.shape
    ph = int(np.ceil((h + 2 * p - k) / s)) + 1
    pw = int(np.ceil((w + 2 * p - k) / s)) + 1
    if p and (ph - 1) * s >= h + p:
        ph -= 1
    if p and (pw - 1) * s >= w + p:
        pw -= 1
    y = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            y[:, :, i, j] = window.max(axis=(2, 3)) if mode == "MAX" else window.sum(axis=(2, 3)) / size
    return y


@pytest.mark.parametrize("h,w,k,s,p", [(13, 12, 3, 2, 0), (7, 8, 3, 2, 1), (14, 14, 5, 3, 0),
                                       (6, 7, 3, 1, 1), (10, 9, 3, 3, 1)])
@pytest.mark.parametrize("mode", ["MAX", "AVE"])
def test_pooling_ceil_mode_and_windows(h, w, k, s, p, mode):
    x = RNG.normal(size=(2, 3, h, w)).astype(np.float32) - 3  # all-negative rows test MAX's padding
    layer = CaffePool2DLayer(InputLayer((None, 3, h, w)), k, s, p, mode)
    ours = run(layer, x)
    ref = caffe_pool(x, k, s, p, mode)
    assert layer.output_shape[2:] == ref.shape[2:] == ours.shape[2:]
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def caffe_ave_backward(x_shape, gz, k, s, p):
    """Caffe's AVE Backward_cpu: each output's gradient over its clipped window,
    divided by the window's size counted up to H + pad."""
    h, w = x_shape[2:]
    gx = np.zeros(x_shape, np.float64)
    for i, j in np.ndindex(*gz.shape[2:]):
        hs, ws = i * s - p, j * s - p
        he, we = min(hs + k, h + p), min(ws + k, w + p)
        size = (he - hs) * (we - ws)
        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
        gx[:, :, hs:he, ws:we] += gz[:, :, i:i + 1, j:j + 1] / size
    return gx


@pytest.mark.parametrize("h,w,k,s,p", [(7, 7, 7, 1, 0), (14, 14, 5, 3, 0), (7, 8, 3, 2, 1),
                                       (6, 7, 3, 1, 1)])
def test_average_pooling_gradient(h, w, k, s, p):
    """Caffe's AVE backward, per image and channel (on the GPU this catches Theano
    1.0.5's GpuAveragePoolGrad in sum mode, which gives all of them the first's)."""
    layer = CaffePool2DLayer(InputLayer((None, 3, h, w)), k, s, p, "AVE")
    x = RNG.normal(size=(2, 3, h, w)).astype(np.float32)
    gz = RNG.normal(size=(2, 3) + layer.output_shape[2:]).astype(np.float32)
    inp = T.tensor4()
    grad = T.grad(T.sum(get_output(layer, inp) * gz), inp)
    np.testing.assert_allclose(theano.function([inp], grad)(x),
                               caffe_ave_backward(x.shape, gz, k, s, p), rtol=1e-5, atol=1e-6)


def test_googlenet_pool_sizes_are_ceil():
    # floor would give 55/27/13/6
    assert [caffe_pooled_size(n, 3, 2, 0) for n in (112, 56, 28, 14)] == [56, 28, 14, 7]
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    assert net["pool1/3x3_s2"].output_shape[2:] == (56, 56)
    assert net["pool4/3x3_s2"].output_shape[2:] == (7, 7)
    assert net["loss1/ave_pool"].output_shape[2:] == (4, 4)


def test_lrn_divides_alpha_by_window():
    x = (RNG.normal(size=(2, 7, 4, 3)) * 30).astype(np.float32)
    n, alpha, beta, k = 5, 1e-4, 0.75, 1.0
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (n // 2, n // 2), (0, 0), (0, 0)))
    window = sum(sq[:, i:i + x.shape[1]] for i in range(n))
    ref = x / (k + alpha / n * window) ** beta
    ours = run(CaffeLRNLayer(InputLayer((None, 7, 4, 3)), n, alpha, beta, k), x)
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    undivided = x / (k + alpha * window) ** beta
    assert np.abs(ours - undivided).max() > 1e-3


@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_lrn_gradient_is_caffes_backward(beta):
    """Caffe's LRN backward (lrn_layer.cpp, CrossChannelBackward), in float64:
    dx = g scale^-beta - 2 alpha beta / n * x * window sum of g y / scale, for BVLC's
    beta (computed with square roots) and another (a power)."""
    x = (RNG.normal(size=(2, 7, 4, 3)) * 30).astype(np.float32)
    g = RNG.normal(size=x.shape).astype(np.float32)
    n, alpha, k = 5, 1e-4, 1.0
    pad = ((0, 0), (n // 2, n // 2), (0, 0), (0, 0))
    x64 = x.astype(np.float64)
    scale = k + alpha / n * sum(np.pad(x64 ** 2, pad)[:, i:i + 7] for i in range(n))
    y = x64 * scale ** -beta
    ratio = np.pad(g * y / scale, pad)
    ref = g * scale ** -beta - 2 * alpha * beta / n * x64 * sum(ratio[:, i:i + 7]
                                                                 for i in range(n))
    layer = CaffeLRNLayer(InputLayer((None, 7, 4, 3)), n, alpha, beta, k)
    inp = T.tensor4()
    out = get_output(layer, inp)
    ours, grad = theano.function([inp], [out, T.grad(T.sum(out * g), inp)])(x)
    np.testing.assert_allclose(ours, y, rtol=1e-5)
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max())


def test_dropout_is_inverted():
    x = np.ones((200, 500), np.float32)
    layer = DropoutLayer(InputLayer((None, 500)), p=0.4, rescale=True)
    lasagne.random.set_rng(np.random.RandomState(1))
    train = run(layer, x, deterministic=False)
    assert set(np.unique(train)) == {0.0, np.float32(1 / 0.6)}
    assert abs(train.mean() - 1) < 0.01
    np.testing.assert_array_equal(run(layer, x, deterministic=True), x)


def test_inner_product_weights_are_out_by_in():
    W = RNG.normal(size=(5, 2 * 3 * 2)).astype(np.float32)  # Caffe: (out, in)
    b = RNG.normal(size=5).astype(np.float32)
    x = RNG.normal(size=(4, 2, 3, 2)).astype(np.float32)  # flattened in C order, as Caffe
    layer = DenseLayer(InputLayer((None, 2, 3, 2)), 5, nonlinearity=None, name="ip")
    Wl, bl = to_lasagne("test.caffemodel", layer, [W[None, None], b[None, None, None]])
    layer.W.set_value(Wl)
    layer.b.set_value(bl)
    np.testing.assert_allclose(run(layer, x), x.reshape(4, -1) @ W.T + b, rtol=1e-5, atol=1e-5)


def test_softmax_over_channels():
    net = googlenet.build(googlenet.googlenet_spec(num_classes=6))
    logits = RNG.normal(size=(3, 6)).astype(np.float32)
    z = T.matrix()
    prob = theano.function([z], get_output(net["prob"], {net["loss3/classifier"]: z}))(logits)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(prob, e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_input_is_bgr_0_255_minus_mean():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    blob = googlenet.to_caffe_input(rgb)
    assert blob.shape == (1, 3, 2, 3) and blob.dtype == np.float32
    np.testing.assert_array_equal(blob[0, :, 1, 2], [30 - 104, 20 - 117, 10 - 123])
    np.testing.assert_array_equal(blob[0, :, 0, 0], [-104, -117, -123])
