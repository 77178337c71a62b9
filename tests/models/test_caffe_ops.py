"""Project-owned C ops against NumPy loops of Caffe's pooling_layer.cpp: values
and gradients on odd sizes, ties, padding and ceil overhang."""
import numpy as np
import pytest
import theano
import theano.tensor as T
from theano.tensor.signal import pool

from models.caffe_ops import CaffeMaxPool, CaffeMaxPoolGrad
from models.device import on_gpu

CASES = [  # (height, width, kernel, stride, pad)
    (7, 7, 3, 2, 0), (8, 8, 3, 2, 0), (14, 13, 3, 2, 0), (5, 6, 3, 2, 1), (6, 6, 3, 1, 1),
    (112, 112, 3, 2, 0), (9, 11, 2, 2, 1), (4, 4, 4, 1, 0), (3, 5, 3, 3, 2)]


def caffe_max_pool(x, k, s, p):
    """Caffe's Forward_cpu (MAX) and its mask, written out as loops."""
    n_, c_, H, W = x.shape
    OH = int(np.ceil((H + 2 * p - k) / float(s))) + 1
    OW = int(np.ceil((W + 2 * p - k) / float(s))) + 1
    if p and (OH - 1) * s >= H + p:
        OH -= 1
    if p and (OW - 1) * s >= W + p:
        OW -= 1
    top = np.full((n_, c_, OH, OW), -np.finfo(np.float32).max, np.float32)
    mask = np.full((n_, c_, OH, OW), -1, np.int64)
    for n in range(n_):
        for c in range(c_):
            for ph in range(OH):
                for pw in range(OW):
                    hstart, wstart = ph * s - p, pw * s - p
                    hend, wend = min(hstart + k, H), min(wstart + k, W)
                    hstart, wstart = max(hstart, 0), max(wstart, 0)
                    for h in range(hstart, hend):
                        for w in range(wstart, wend):
                            if x[n, c, h, w] > top[n, c, ph, pw]:
                                top[n, c, ph, pw] = x[n, c, h, w]
                                mask[n, c, ph, pw] = h * W + w
    return top, mask


def caffe_max_pool_backward(x, mask, top_diff):
    bottom = np.zeros_like(x)
    flat = bottom.reshape(x.shape[0], x.shape[1], -1)
    for n, c, ph, pw in np.ndindex(*top_diff.shape):
        flat[n, c, mask[n, c, ph, pw]] += top_diff[n, c, ph, pw]
    return bottom


def compiled(k, s, p, mode=None):
    x, gz = T.tensor4("x"), T.tensor4("gz")
    z = CaffeMaxPool(k, s, p)(x)
    gx = theano.grad(None, x, known_grads={z: gz})
    return theano.function([x, gz], [z, gx], mode=mode)


def tied(shape, rng):
    """ReLU-like input: a third of the cells exactly 0, small integers elsewhere (ties)."""
    x = rng.randint(-3, 4, shape).astype(np.float32)
    return np.maximum(x, 0)


@pytest.mark.parametrize("H, W, k, s, p", CASES)
def test_values_and_gradients_equal_caffe(H, W, k, s, p):
    rng = np.random.RandomState(H * 100 + W)
    fn = compiled(k, s, p)
    for x in (rng.normal(0, 1, (2, 3, H, W)).astype(np.float32), tied((2, 3, H, W), rng)):
        top, mask = caffe_max_pool(x, k, s, p)
        gz = rng.normal(0, 1, top.shape).astype(np.float32)
        z, gx = fn(x, gz)
        np.testing.assert_array_equal(z, top)
        np.testing.assert_array_equal(gx, caffe_max_pool_backward(x, mask, gz))


@pytest.mark.skipif(on_gpu(), reason="the Python fallback is the CPU op's")
@pytest.mark.parametrize("H, W, k, s, p", CASES[:5])
def test_python_fallback_equals_the_c_code(H, W, k, s, p):
    rng = np.random.RandomState(1)
    x = tied((2, 2, H, W), rng)
    c = compiled(k, s, p)
    py = compiled(k, s, p, mode=theano.Mode(linker="py", optimizer="fast_compile"))
    gz = rng.normal(0, 1, caffe_max_pool(x, k, s, p)[0].shape).astype(np.float32)
    for a, b in zip(c(x, gz), py(x, gz)):
        np.testing.assert_array_equal(a, b)


def test_verify_grad():
    rng = np.random.RandomState(0)
    x = rng.permutation(2 * 3 * 9 * 9).reshape(2, 3, 9, 9).astype(np.float32) / 50  # no ties
    theano.gradient.verify_grad(CaffeMaxPool(3, 2, 1), [x], rng=rng, eps=1e-3, abs_tol=1e-3,
                                rel_tol=1e-3)


def test_ties_go_to_the_first_maximum_unlike_theanos_own_op():
    """Caffe gives a window's gradient to its first maximal cell; Theano's
    MaxPoolGrad gives it to every tied cell. This test fails on Theano's op."""
    x = np.zeros((1, 1, 5, 5), np.float32)  # all tied: ReLU zeros
    gz = np.ones((1, 1, 2, 2), np.float32)
    _, mask = caffe_max_pool(x, 3, 2, 0)
    expected = caffe_max_pool_backward(x, mask, gz)
    # each window's top-left cell: (0, 0), (0, 2), (2, 0), (2, 2)
    assert sorted(zip(*np.nonzero(expected[0, 0]))) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    _, ours = compiled(3, 2, 0)(x, gz)
    np.testing.assert_array_equal(ours, expected)
    xv, gv = T.tensor4(), T.tensor4()
    z = pool.pool_2d(xv, ws=(3, 3), stride=(2, 2), ignore_border=True, mode="max")
    theirs = theano.function([xv, gv], theano.grad(None, xv, known_grads={z: gv}))(x, gz)
    assert theirs.sum() > expected.sum()  # every tied cell got the gradient


def test_rejects_other_inputs():
    with pytest.raises(TypeError, match="4-D float32"):
        CaffeMaxPool(3, 2)(T.matrix())
    with pytest.raises(TypeError):
        CaffeMaxPoolGrad(3, 2)(T.tensor4(), T.matrix())


@pytest.mark.skipif(not on_gpu(), reason="DEVICE=cpu: the C ops run (make test-gpu runs this "
                                          "file with the GPU kernels)")
def test_on_the_gpu_the_graph_runs_the_gpu_kernels():
    """With DEVICE=cuda (or opencl) every test above ran GpuCaffeMaxPool /
    GpuCaffeMaxPoolGrad; this checks that they, not the C ops, were in the graph."""
    names = {type(node.op).__name__ for node in compiled(3, 2, 0).maker.fgraph.apply_nodes}
    assert {"GpuCaffeMaxPool", "GpuCaffeMaxPoolGrad"} <= names, names
    assert not names & {"CaffeMaxPool", "CaffeMaxPoolGrad"}, names
