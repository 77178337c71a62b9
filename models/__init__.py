"""Networks and the Caffe import. Importing this package sets up Theano first."""
from . import compat

compat.install()
