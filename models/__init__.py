"""Networks and the Caffe import. Importing this package sets up Theano first
(``models.compat``); on a started GPU back end it then registers the optimizers
that put the project's pooling kernels into GPU graphs (``models.caffe_ops_gpu``).
Imports inside the package run one way: compat -> device, blas; layers ->
caffe_ops; caffe_ops_gpu -> caffe_ops."""
from . import compat, device

compat.install()
if device.gpu_started():
    from . import caffe_ops_gpu  # noqa: F401
