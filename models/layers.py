"""Lasagne layers with Caffe's semantics where Lasagne 0.1's differ.

All tensors are N x C x H x W, float32. Each class documents the Caffe
convention it reproduces (see ``../shared/FIDELITY.md``).
"""
import numpy as np
import theano.tensor as T
from theano.tensor.signal import pool

import lasagne
from lasagne.layers import Layer

from .caffe_ops import CaffeMaxPool, caffe_ave_divisors, caffe_pooled_size
from .device import on_gpu


class CaffeConv2DLayer(lasagne.layers.Conv2DLayer):
    """Caffe ``Convolution``: cross-correlation, symmetric zero padding.

    W is (out, in, kh, kw) exactly as in a .caffemodel. Theano's ``conv2d``
    flips filters by default (true convolution); Caffe does not, so
    ``filter_flip=False``. Padding is passed to the convolution itself
    (CorrMM pads internally) instead of copying a padded input.
    """

    def get_output_for(self, input, **kwargs):
        conved = T.nnet.conv2d(input, self.W, input_shape=self.input_shape,
                               filter_shape=self.get_W_shape(),
                               border_mode=self.pad, subsample=self.stride,
                               filter_flip=False)
        if self.b is not None:
            conved = conved + self.b.dimshuffle("x", 0, "x", "x")
        return self.nonlinearity(conved)


class CaffePool2DLayer(Layer):
    """Caffe ``Pooling`` (MAX or AVE) with Caffe's ceil-mode output size.

    Input N x C x H x W gives N x C x H' x W' with H' = ``caffe_pooled_size``.
    MAX (``models.caffe_ops.CaffeMaxPool``) ignores padded and overhanging
    cells and sends a window's gradient to its first maximal cell (on the
    GPU too: ``models.caffe_ops_gpu``);
    AVE sums over zero-filled padding and divides by Caffe's clipped window.
    """

    def __init__(self, incoming, kernel_size, stride=1, pad=0, pool="MAX", **kwargs):
        super(CaffePool2DLayer, self).__init__(incoming, **kwargs)
        if pool not in ("MAX", "AVE"):
            raise ValueError("pool must be MAX or AVE, not %r" % (pool,))
        self.kernel_size, self.stride, self.pad, self.pool = kernel_size, stride, pad, pool

    def get_output_shape_for(self, input_shape):
        k, s, p = self.kernel_size, self.stride, self.pad
        return tuple(input_shape[:2]) + tuple(
            caffe_pooled_size(n, k, s, p) for n in input_shape[2:])

    def get_output_for(self, input, **kwargs):
        k, s, p = self.kernel_size, self.stride, self.pad
        if self.pool == "MAX":
            # the project's own op (C, and GPU kernels): Caffe's windows, and its gradient
            # to the first maximum of a window (Theano's MaxPoolGrad gives it to every tie)
            return CaffeMaxPool(k, s, p)(input)
        in_h, in_w = self.input_shape[2:]
        out_h, out_w = self.output_shape[2:]
        # AVE: zero padding up to the bottom/right extent of the last window
        extra_h = max(0, (out_h - 1) * s + k - in_h - p)
        extra_w = max(0, (out_w - 1) * s + k - in_w - p)
        if p or extra_h or extra_w:
            padded = T.alloc(np.float32(0), input.shape[0], input.shape[1],
                             p + in_h + extra_h, p + in_w + extra_w)
            input = T.set_subtensor(padded[:, :, p:p + in_h, p:p + in_w], input)
        div = np.outer(caffe_ave_divisors(in_h, k, s, p), caffe_ave_divisors(in_w, k, s, p))
        if on_gpu():
            # Theano 1.0.5's GPU gradient of mode="sum" is wrong (GpuAveragePoolGrad reads
            # the output gradient of the first image and channel for every one); the
            # mean over the full window, times k*k / Caffe's divisor, is the same pooling
            mean = pool.pool_2d(input, ws=(k, k), stride=(s, s), ignore_border=True,
                                mode="average_inc_pad")
            return mean * T.constant((k * k / div).astype("float32")).dimshuffle("x", "x", 0, 1)
        summed = pool.pool_2d(input, ws=(k, k), stride=(s, s), ignore_border=True,
                              mode="sum")
        return summed / T.constant(div.astype("float32")).dimshuffle("x", "x", 0, 1)


class CaffeLRNLayer(lasagne.layers.LocalResponseNormalization2DLayer):
    """Caffe ``LRN`` across channels: y = x / (k + alpha/n * sum_window x^2)^beta.

    Takes Caffe's parameters; Lasagne's layer does not divide alpha by the
    window size n, so it is given alpha / n.
    """

    def __init__(self, incoming, local_size=5, alpha=1e-4, beta=0.75, k=1.0, **kwargs):
        super(CaffeLRNLayer, self).__init__(incoming, alpha=alpha / local_size, k=k,
                                            beta=beta, n=local_size, **kwargs)

    def get_output_for(self, input, **kwargs):
        """x / (k + alpha/n * window sum of x^2)^beta over N x C x H x W, the window
        of n channels centred on each (zeros beyond the edges). beta = 0.75 (BVLC's)
        is taken as x / (sqrt(b) sqrt(sqrt(b))): the same value to float rounding, and
        square roots (and their gradients) cost a fraction of a power's."""
        half, channels = self.n // 2, input.shape[1]
        squares = T.sqr(input)
        shape = (input.shape[0], channels + 2 * half, input.shape[2], input.shape[3])
        padded = T.set_subtensor(T.zeros(shape, input.dtype)[:, half:half + channels], squares)
        window = padded[:, 0:channels]
        for i in range(1, self.n):
            window = window + padded[:, i:i + channels]
        base = np.float32(self.k) + np.float32(self.alpha) * window
        if self.beta == 0.75:
            root = T.sqrt(base)
            return input / (root * T.sqrt(root))
        return input / base ** np.float32(self.beta)
