"""The GPU versions of ``models.caffe_ops``: Caffe's MAX pooling and its gradient as
libgpuarray kernels (CUDA through NVRTC, or OpenCL), same semantics, same sums.

Theano's own GpuPool has Caffe's values, but its GpuMaxPoolGrad gives a window's
gradient to every tied maximum. In GoogLeNet such ties are not only ReLU zeros:
a max pool over a max pool's output (``inception_5a/pool`` over ``pool4``) sees
equal positive values wherever two overlapping windows had the same maximum,
and then the gradients differ by up to 100 %. So the GPU path needs Caffe's
rule too. ``CaffeMaxPool`` / ``CaffeMaxPoolGrad`` in a graph compiled for the
GPU are lifted to ``GpuCaffeMaxPool`` / ``GpuCaffeMaxPoolGrad`` by the two
optimizers registered here (imported by ``models.caffe_ops`` when
``DEVICE`` is not cpu).

The forward kernel runs a thread per output cell; the gradient a thread per
input cell, which adds the gradients of the windows whose first maximum it is,
in the windows' order (no atomics; the same order, so the same sums, as the C
op's scatter-add).
"""
import pygpu
from theano import Apply, Op
from theano.gpuarray.basic_ops import GpuKernelBase, Kernel, as_gpuarray_variable, gpu_contiguous
from theano.gpuarray.opt import op_lifter, register_opt, register_opt2
from theano.gpuarray.type import get_context
from theano.gradient import grad_not_implemented

from .caffe_ops import CaffeMaxPool, CaffeMaxPoolGrad

# The window (ph, pw) clipped to the image, and its first maximum (padding never wins).
WINDOW = """
        ga_ssize hs = (ga_ssize)(ph * %(s)d) - %(p)d, ws = (ga_ssize)(pw * %(s)d) - %(p)d;
        const ga_ssize he = hs + %(k)d < (ga_ssize)H ? hs + %(k)d : (ga_ssize)H;
        const ga_ssize we = ws + %(k)d < (ga_ssize)W ? ws + %(k)d : (ga_ssize)W;
        if (hs < 0) hs = 0;
        if (ws < 0) ws = 0;
        float best = -3.402823466e+38f;
        ga_ssize at = -1;
        for (ga_ssize h = hs; h < he; ++h)
            for (ga_ssize w = ws; w < we; ++w)
                if (xp[h * W + w] > best) { best = xp[h * W + w]; at = h * W + w; }
"""

FORWARD = """#include "cluda.h"
KERNEL void caffe_max_pool(const ga_size n, const ga_size H, const ga_size W,
                           const ga_size OH, const ga_size OW,
                           GLOBAL_MEM const float *x, const ga_size x_off,
                           GLOBAL_MEM float *z, const ga_size z_off) {
    x = (GLOBAL_MEM const float *)(((GLOBAL_MEM const char *)x) + x_off);
    z = (GLOBAL_MEM float *)(((GLOBAL_MEM char *)z) + z_off);
    for (ga_size i = GID_0 * LDIM_0 + LID_0; i < n; i += LDIM_0 * GDIM_0) {
        const ga_size pw = i %% OW, ph = (i / OW) %% OH, plane = i / (OW * OH);
        GLOBAL_MEM const float *xp = x + plane * H * W;
""" + WINDOW + """
        z[i] = best;
    }
}
"""

BACKWARD = """#include "cluda.h"
KERNEL void caffe_max_pool_grad(const ga_size n, const ga_size H, const ga_size W,
                                const ga_size OH, const ga_size OW,
                                GLOBAL_MEM const float *x, const ga_size x_off,
                                GLOBAL_MEM const float *gz, const ga_size gz_off,
                                GLOBAL_MEM float *gx, const ga_size gx_off) {
    x = (GLOBAL_MEM const float *)(((GLOBAL_MEM const char *)x) + x_off);
    gz = (GLOBAL_MEM const float *)(((GLOBAL_MEM const char *)gz) + gz_off);
    gx = (GLOBAL_MEM float *)(((GLOBAL_MEM char *)gx) + gx_off);
    for (ga_size i = GID_0 * LDIM_0 + LID_0; i < n; i += LDIM_0 * GDIM_0) {
        const ga_ssize cw = (ga_ssize)(i %% W), ch = (ga_ssize)((i / W) %% H);
        const ga_size plane = i / (W * H);
        GLOBAL_MEM const float *xp = x + plane * H * W;
        GLOBAL_MEM const float *gp = gz + plane * OH * OW;
        /* the windows that hold (ch, cw): ph * s - p <= ch < ph * s - p + k */
        const ga_ssize phs = ch + %(p)d < %(k)d ? 0 : (ch + %(p)d - %(k)d) / %(s)d + 1;
        const ga_ssize pws = cw + %(p)d < %(k)d ? 0 : (cw + %(p)d - %(k)d) / %(s)d + 1;
        const ga_ssize phe0 = (ch + %(p)d) / %(s)d + 1, pwe0 = (cw + %(p)d) / %(s)d + 1;
        const ga_ssize phe = phe0 < (ga_ssize)OH ? phe0 : (ga_ssize)OH;
        const ga_ssize pwe = pwe0 < (ga_ssize)OW ? pwe0 : (ga_ssize)OW;
        float g = 0.0f;
        for (ga_ssize ph = phs; ph < phe; ++ph)
            for (ga_ssize pw = pws; pw < pwe; ++pw) {
""" + WINDOW + """
                if (at == ch * (ga_ssize)W + cw) g += gp[ph * OW + pw];
            }
        gx[i] = g;
    }
}
"""

# Output size and checks, shared by both ops' C code (Caffe's ceil-mode size).
SHAPES = """
    if (!GpuArray_IS_C_CONTIGUOUS(&%(x)s->ga) || PyGpuArray_NDIM(%(x)s) != 4) {
        PyErr_SetString(PyExc_ValueError, "%(op)s: x must be a C-contiguous 4-D array");
        %(fail)s
    }
    const size_t N = PyGpuArray_DIMS(%(x)s)[0], C = PyGpuArray_DIMS(%(x)s)[1];
    const size_t H = PyGpuArray_DIMS(%(x)s)[2], W = PyGpuArray_DIMS(%(x)s)[3];
    size_t OH = (H + 2 * %(p)d - %(k)d + %(s)d - 1) / %(s)d + 1;
    size_t OW = (W + 2 * %(p)d - %(k)d + %(s)d - 1) / %(s)d + 1;
    if (%(p)d > 0 && (OH - 1) * %(s)d >= H + %(p)d) OH--;
    if (%(p)d > 0 && (OW - 1) * %(s)d >= W + %(p)d) OW--;
"""


class _GpuCaffePool(GpuKernelBase, Op):
    __props__ = ("kernel", "stride", "pad", "context_name")

    def __init__(self, kernel, stride, pad, context_name=None):
        self.kernel, self.stride, self.pad = int(kernel), int(stride), int(pad)
        self.context_name = context_name

    def get_params(self, node):
        return get_context(self.context_name)

    def c_headers(self):
        return super(_GpuCaffePool, self).c_headers() + ["<gpuarray_helper.h>"]

    def c_header_dirs(self):
        from theano.gpuarray.basic_ops import gpuarray_helper_inc_dir
        return super(_GpuCaffePool, self).c_header_dirs() + [gpuarray_helper_inc_dir()]

    def c_code_cache_version(self):
        return (1,)

    def _names(self, sub, **kw):
        return dict(kw, k=self.kernel, s=self.stride, p=self.pad, fail=sub["fail"],
                    ctx=sub["params"], op=type(self).__name__)

    def _kernel(self, code, name, node_name, arrays):
        params = [pygpu.gpuarray.SIZE] * 5
        for _ in range(arrays):
            params += [pygpu.gpuarray.GpuArray, pygpu.gpuarray.SIZE]
        return Kernel(code=code % dict(k=self.kernel, s=self.stride, p=self.pad), name=name,
                      params=params, flags=Kernel.get_flags("float32"),
                      objvar="k_%s_%s" % (name, node_name))


class GpuCaffeMaxPool(_GpuCaffePool):
    """``CaffeMaxPool`` on the GPU: N x C x H x W float32 to N x C x H' x W'."""

    def make_node(self, x):
        x = as_gpuarray_variable(x, self.context_name)
        if x.ndim != 4 or x.dtype != "float32":
            raise TypeError("GpuCaffeMaxPool takes a 4-D float32 array, not %s" % x.type)
        return Apply(self, [x], [x.type()])

    def infer_shape(self, node, shapes):
        return CaffeMaxPool(self.kernel, self.stride, self.pad).infer_shape(node, shapes)

    def grad(self, inputs, output_grads):
        return [GpuCaffeMaxPoolGrad(self.kernel, self.stride, self.pad, self.context_name)(
            inputs[0], gpu_contiguous(output_grads[0]))]

    def gpu_kernels(self, node, name):
        return [self._kernel(FORWARD, "caffe_max_pool", name, 2)]

    def c_code(self, node, name, inp, out, sub):
        names = self._names(sub, x=inp[0], z=out[0],
                            kname=self.gpu_kernels(node, name)[0].objvar)
        return "{" + (SHAPES + """
    size_t dims[4] = {N, C, OH, OW};
    if (theano_prep_output(&%(z)s, 4, dims, %(x)s->ga.typecode, GA_C_ORDER, %(ctx)s) != 0) {
        %(fail)s
    }
    size_t n = N * C * OH * OW;
    if (n > 0) {
        int err = caffe_max_pool_scall(1, &n, 0, n, H, W, OH, OW, %(x)s->ga.data,
                                       %(x)s->ga.offset, %(z)s->ga.data, %(z)s->ga.offset);
        if (err != GA_NO_ERROR) {
            PyErr_Format(PyExc_RuntimeError, "GpuCaffeMaxPool: %%s",
                         GpuKernel_error(&%(kname)s, err));
            %(fail)s
        }
    }
""") % names + "}"


class GpuCaffeMaxPoolGrad(_GpuCaffePool):
    """``CaffeMaxPoolGrad`` on the GPU: gz (N x C x H' x W') to the first maximal
    cell of each window of x (N x C x H x W)."""

    def make_node(self, x, gz):
        x = as_gpuarray_variable(x, self.context_name)
        gz = as_gpuarray_variable(gz, self.context_name)
        if x.ndim != 4 or gz.ndim != 4 or x.dtype != "float32" or gz.dtype != "float32":
            raise TypeError("GpuCaffeMaxPoolGrad takes two 4-D float32 arrays")
        return Apply(self, [x, gz], [x.type()])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, output_grads):
        return [grad_not_implemented(self, i, v) for i, v in enumerate(inputs)]

    def gpu_kernels(self, node, name):
        return [self._kernel(BACKWARD, "caffe_max_pool_grad", name, 3)]

    def c_code(self, node, name, inp, out, sub):
        names = self._names(sub, x=inp[0], gz=inp[1], gx=out[0],
                            kname=self.gpu_kernels(node, name)[0].objvar)
        return "{" + (SHAPES + """
    if (!GpuArray_IS_C_CONTIGUOUS(&%(gz)s->ga) || PyGpuArray_NDIM(%(gz)s) != 4
            || PyGpuArray_DIMS(%(gz)s)[0] != N || PyGpuArray_DIMS(%(gz)s)[1] != C
            || PyGpuArray_DIMS(%(gz)s)[2] != OH || PyGpuArray_DIMS(%(gz)s)[3] != OW) {
        PyErr_SetString(PyExc_ValueError, "GpuCaffeMaxPoolGrad: gz does not fit x");
        %(fail)s
    }
    if (theano_prep_output(&%(gx)s, 4, PyGpuArray_DIMS(%(x)s), %(x)s->ga.typecode,
                           GA_C_ORDER, %(ctx)s) != 0) {
        %(fail)s
    }
    size_t n = N * C * H * W;
    if (n > 0) {
        int err = caffe_max_pool_grad_scall(1, &n, 0, n, H, W, OH, OW, %(x)s->ga.data,
                                            %(x)s->ga.offset, %(gz)s->ga.data, %(gz)s->ga.offset,
                                            %(gx)s->ga.data, %(gx)s->ga.offset);
        if (err != GA_NO_ERROR) {
            PyErr_Format(PyExc_RuntimeError, "GpuCaffeMaxPoolGrad: %%s",
                         GpuKernel_error(&%(kname)s, err));
            %(fail)s
        }
    }
""") % names + "}"


@register_opt("fast_compile")
@op_lifter([CaffeMaxPool])
@register_opt2([CaffeMaxPool], "fast_compile")
def local_gpu_caffe_max_pool(op, context_name, inputs, outputs):
    x = gpu_contiguous(as_gpuarray_variable(inputs[0], context_name))
    return [GpuCaffeMaxPool(op.kernel, op.stride, op.pad, context_name)(x)]


@register_opt("fast_compile")
@op_lifter([CaffeMaxPoolGrad])
@register_opt2([CaffeMaxPoolGrad], "fast_compile")
def local_gpu_caffe_max_pool_grad(op, context_name, inputs, outputs):
    x = gpu_contiguous(as_gpuarray_variable(inputs[0], context_name))
    gz = gpu_contiguous(as_gpuarray_variable(inputs[1], context_name))
    return [GpuCaffeMaxPoolGrad(op.kernel, op.stride, op.pad, context_name)(x, gz)]

