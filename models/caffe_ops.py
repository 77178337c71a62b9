"""Project-owned Theano C ops with Caffe's exact semantics, parallel over N x C.

``CaffeMaxPool``: Caffe's MAX ``Pooling`` (pooling_layer.cpp), N x C x H x W
float32 to N x C x H' x W' with H' = ``caffe_pooled_size`` (ceil mode, a
window starting in the padding dropped). Each window is clipped to the image,
so padding never wins; the scan is row-major from the window's top left and a
value replaces the running maximum only when strictly greater, so the maximum
is the *first* of tied cells.

``CaffeMaxPoolGrad``: its gradient, Caffe's backward pass: each output
cell's gradient goes to that first maximal cell only (Theano's own
``MaxPoolGrad`` gives it to every tied cell, which differs where ReLU zeros
tie).

Both parallelise over the N x C planes with OpenMP (one plane per thread, so
the gradient's scatter-add never races) and have their own cache versions. In a
graph compiled for the GPU they become ``models.caffe_ops_gpu``'s kernels (whose
optimizers ``models/__init__.py`` registers once Theano's GPU back end is up).
The pooled-size helpers of Caffe's pooling are here too, for these ops and for
``models.layers``.
"""
import math

import numpy as np
import theano.tensor as T
from theano import Apply
from theano.gof import OpenMPOp
from theano.gradient import grad_not_implemented


def caffe_pooled_size(size, kernel, stride, pad):
    """Caffe's pooled size: ceil, then drop a window that would start in the padding."""
    pooled = int(math.ceil(float(size + 2 * pad - kernel) / stride)) + 1
    if pad > 0 and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def caffe_ave_divisors(size, kernel, stride, pad):
    """Caffe's AVE divisor per output position along one axis: the window
    clipped to [-pad, size + pad) (padding counts, overhang does not)."""
    out = caffe_pooled_size(size, kernel, stride, pad)
    starts = np.arange(out) * stride - pad
    ends = np.minimum(starts + kernel, size + pad)
    return (ends - starts).astype("float32")


SHAPES = """
    const npy_intp N = PyArray_DIMS(%(x)s)[0], C = PyArray_DIMS(%(x)s)[1];
    const npy_intp H = PyArray_DIMS(%(x)s)[2], W = PyArray_DIMS(%(x)s)[3];
    const int k = %(k)d, s = %(s)d, p = %(p)d;
    npy_intp OH = (H + 2 * p - k + s - 1) / s + 1, OW = (W + 2 * p - k + s - 1) / s + 1;
    if (p > 0 && (OH - 1) * s >= H + p) OH--;
    if (p > 0 && (OW - 1) * s >= W + p) OW--;
"""

# The window of output cell (ph, pw), clipped to the image as Caffe clips it.
WINDOW = """
    npy_intp hs = ph * s - p, ws = pw * s - p;
    const npy_intp he = hs + k < H ? hs + k : H, we = ws + k < W ? ws + k : W;
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    float best = -FLT_MAX;
    npy_intp at = -1;
    for (npy_intp h = hs; h < he; ++h)
        for (npy_intp w = ws; w < we; ++w)
            if (xp[h * W + w] > best) { best = xp[h * W + w]; at = h * W + w; }
"""


def _contiguous(name, var, fail):
    return """
    PyArrayObject* %(name)s = PyArray_GETCONTIGUOUS(%(var)s);
    if (!%(name)s) { %(fail)s }
    """ % dict(name=name, var=var, fail=fail.replace("%", "%%"))


class _CaffePoolOp(OpenMPOp):
    __props__ = ("kernel", "stride", "pad")

    def __init__(self, kernel, stride=1, pad=0, openmp=None):
        super(_CaffePoolOp, self).__init__(openmp=openmp)
        self.kernel, self.stride, self.pad = int(kernel), int(stride), int(pad)

    def c_headers(self):
        return ["<float.h>"] + super(_CaffePoolOp, self).c_headers()

    def c_code_cache_version(self):
        return (1, self.openmp)

    def _params(self, node, inp, out, sub):
        names = dict(k=self.kernel, s=self.stride, p=self.pad, fail=sub["fail"],
                     omp="#pragma omp parallel for schedule(static)" if self.openmp else "")
        return names


class CaffeMaxPool(_CaffePoolOp):
    """Caffe MAX pooling of a 4-D float32 tensor (see the module docstring)."""

    def make_node(self, x):
        x = T.as_tensor_variable(x)
        if x.ndim != 4 or x.dtype != "float32":
            raise TypeError("CaffeMaxPool takes a 4-D float32 tensor, not %s" % x.type)
        return Apply(self, [x], [x.type()])

    def infer_shape(self, node, shapes):
        n, c, h, w = shapes[0]
        k, s, p = self.kernel, self.stride, self.pad

        def pooled(size):
            out = (size + 2 * p - k + s - 1) // s + 1
            return T.switch(T.ge((out - 1) * s, size + p), out - 1, out) if p > 0 else out
        return [(n, c, pooled(h), pooled(w))]

    def perform(self, node, inputs, outputs):
        x, = inputs
        k, s, p = self.kernel, self.stride, self.pad
        oh, ow = (caffe_pooled_size(n, k, s, p) for n in x.shape[2:])
        z = np.full(x.shape[:2] + (oh, ow), -np.finfo(np.float32).max, np.float32)
        for ph in range(oh):
            for pw in range(ow):
                hs, ws = ph * s - p, pw * s - p
                window = x[:, :, max(hs, 0):min(hs + k, x.shape[2]),
                           max(ws, 0):min(ws + k, x.shape[3])]
                z[:, :, ph, pw] = np.maximum(z[:, :, ph, pw], window.max(axis=(2, 3)))
        outputs[0][0] = z

    def grad(self, inputs, output_grads):
        x, = inputs
        gz, = output_grads
        return [CaffeMaxPoolGrad(self.kernel, self.stride, self.pad, openmp=self.openmp)(x, gz)]

    def c_code(self, node, name, inp, out, sub):
        x, = inp
        z, = out
        names = dict(self._params(node, inp, out, sub), x=x, z=z)
        return "{" + (SHAPES % names + _contiguous("xc", x, sub["fail"]) + """
    npy_intp dims[4] = {N, C, OH, OW};
    if (!%(z)s || PyArray_NDIM(%(z)s) != 4 || !PyArray_IS_C_CONTIGUOUS(%(z)s)
            || PyArray_DIMS(%(z)s)[0] != N || PyArray_DIMS(%(z)s)[1] != C
            || PyArray_DIMS(%(z)s)[2] != OH || PyArray_DIMS(%(z)s)[3] != OW) {
        Py_XDECREF(%(z)s);
        %(z)s = (PyArrayObject*)PyArray_EMPTY(4, dims, NPY_FLOAT32, 0);
        if (!%(z)s) { Py_DECREF(xc); %(fail)s }
    }
    const float* X = (const float*)PyArray_DATA(xc);
    float* Z = (float*)PyArray_DATA(%(z)s);
    %(omp)s
    for (npy_intp plane = 0; plane < N * C; ++plane) {
        const float* xp = X + plane * H * W;
        float* zp = Z + plane * OH * OW;
        for (npy_intp ph = 0; ph < OH; ++ph)
            for (npy_intp pw = 0; pw < OW; ++pw) {
""" + WINDOW + """
                zp[ph * OW + pw] = best;
            }
    }
    Py_DECREF(xc);
""") % names + "}"


class CaffeMaxPoolGrad(_CaffePoolOp):
    """d(CaffeMaxPool(x)) / dx applied to ``gz``: each output cell's gradient to the
    first maximal cell of its window, as Caffe's backward pass."""

    def make_node(self, x, gz):
        x, gz = T.as_tensor_variable(x), T.as_tensor_variable(gz)
        if x.ndim != 4 or gz.ndim != 4 or x.dtype != "float32" or gz.dtype != "float32":
            raise TypeError("CaffeMaxPoolGrad takes two 4-D float32 tensors")
        return Apply(self, [x, gz], [x.type()])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def perform(self, node, inputs, outputs):
        x, gz = inputs
        k, s, p = self.kernel, self.stride, self.pad
        gx = np.zeros_like(x)
        H, W = x.shape[2:]
        for n, c in np.ndindex(*x.shape[:2]):
            for ph, pw in np.ndindex(*gz.shape[2:]):
                hs, ws = ph * s - p, pw * s - p
                window = x[n, c, max(hs, 0):min(hs + k, H), max(ws, 0):min(ws + k, W)]
                h, w = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                gx[n, c, max(hs, 0) + h, max(ws, 0) + w] += gz[n, c, ph, pw]
        outputs[0][0] = gx

    def grad(self, inputs, output_grads):
        return [grad_not_implemented(self, i, v) for i, v in enumerate(inputs)]

    def c_code(self, node, name, inp, out, sub):
        x, gz = inp
        gx, = out
        names = dict(self._params(node, inp, out, sub), x=x, gz=gz, gx=gx)
        return "{" + (SHAPES % names + _contiguous("xc", x, sub["fail"])
                      + _contiguous("gc", gz, "Py_DECREF(xc); " + sub["fail"]) + """
    if (PyArray_DIMS(gc)[0] != N || PyArray_DIMS(gc)[1] != C || PyArray_DIMS(gc)[2] != OH
            || PyArray_DIMS(gc)[3] != OW) {
        PyErr_SetString(PyExc_ValueError, "CaffeMaxPoolGrad: gz does not fit x");
        Py_DECREF(xc); Py_DECREF(gc); %(fail)s
    }
    if (!%(gx)s || !PyArray_SAMESHAPE(%(gx)s, xc) || !PyArray_IS_C_CONTIGUOUS(%(gx)s)) {
        Py_XDECREF(%(gx)s);
        %(gx)s = (PyArrayObject*)PyArray_EMPTY(4, PyArray_DIMS(xc), NPY_FLOAT32, 0);
        if (!%(gx)s) { Py_DECREF(xc); Py_DECREF(gc); %(fail)s }
    }
    const float* X = (const float*)PyArray_DATA(xc);
    const float* G = (const float*)PyArray_DATA(gc);
    float* GX = (float*)PyArray_DATA(%(gx)s);
    %(omp)s
    for (npy_intp plane = 0; plane < N * C; ++plane) {
        const float* xp = X + plane * H * W;
        const float* gp = G + plane * OH * OW;
        float* gxp = GX + plane * H * W;
        for (npy_intp i = 0; i < H * W; ++i) gxp[i] = 0.0f;
        for (npy_intp ph = 0; ph < OH; ++ph)
            for (npy_intp pw = 0; pw < OW; ++pw) {
""" + WINDOW + """
                if (at >= 0) gxp[at] += gp[ph * OW + pw];
            }
    }
    Py_DECREF(xc);
    Py_DECREF(gc);
""") % names + "}"
