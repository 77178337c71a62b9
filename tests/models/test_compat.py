"""The compatibility layer that makes Theano 1.0.5 and Lasagne 0.1 work together."""
import os
import subprocess
import sys

import numpy as np
import theano
import theano.tensor as T

from models import compat


def test_theano_flags_are_the_projects():
    assert theano.config.floatX == "float32"
    assert str(theano.config.base_compiledir).startswith(str(compat.CACHE_DIR))
    if "openblas" in compat.project_theano_flags():
        assert theano.config.blas.ldflags == "-lopenblas"


def test_openmp_only_with_a_real_blas():
    assert "openmp=True" not in compat.project_theano_flags(have_openblas=False)
    assert "blas.ldflags=," in compat.project_theano_flags(have_openblas=False) + ","


def test_user_flags_win():
    code = "import models, theano; print(theano.config.floatX)"
    env = dict(os.environ, THEANO_FLAGS="floatX=float64")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "float64"


def test_lasagne_pools_through_the_downsample_alias():
    import lasagne
    from theano.tensor.signal import downsample  # noqa: F401  (the alias itself)
    x = np.arange(2 * 1 * 4 * 6, dtype=np.float32).reshape(2, 1, 4, 6)
    layer = lasagne.layers.MaxPool2DLayer(lasagne.layers.InputLayer((None, 1, 4, 6)), 2)
    inp = T.tensor4()
    out = theano.function([inp], lasagne.layers.get_output(layer, inp))(x)
    np.testing.assert_array_equal(out, x.reshape(2, 1, 2, 2, 3, 2).max(axis=(3, 5)))


def test_ops_with_empty_props_get_a_cache_version():
    from theano.gof.cc import CLinker
    x = T.matrix()
    W = theano.shared(np.ones((3, 4), np.float32))
    graph = T.dot(x, W) + T.alloc(np.float32(0), 4)  # Dot22 and Alloc: __props__ == ()
    fn = theano.function([x], graph)
    keys = [node.op.c_code_cache_version_apply(node) for node in fn.maker.fgraph.toposort()]
    assert all(keys)
    linker = CLinker().accept(fn.maker.fgraph)
    version, _ = linker.cmodule_key()
    assert version, "the compiled module would be recompiled in every process"
