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


def test_a_cache_key_is_never_seen_half_written(tmp_path, monkeypatch):
    """While Theano pickles an entry's key, the key file is not there yet (a temporary
    file is written and renamed): another process's refresh never reads half of it."""
    import pickle
    from theano.gof import cmodule
    key_pkl = tmp_path / "key.pkl"
    seen = []
    original = pickle.dump

    def dump(obj, f, **kwargs):
        seen.append(key_pkl.exists())  # what a reader would find at this moment
        return original(obj, f, **kwargs)

    monkeypatch.setattr(pickle, "dump", dump)
    cmodule.KeyData({("a", 1)}, "hash", str(key_pkl), "entry").save_pkl()
    assert seen == [False] and key_pkl.exists()
    with open(key_pkl, "rb") as f:
        assert pickle.load(f).keys == {("a", 1)}
    assert [p.name for p in tmp_path.iterdir()] == ["key.pkl"]  # no temporary left


def test_a_young_entry_that_looks_broken_is_left_for_later(tmp_path):
    """Theano's refresh deleted another process's entry in the making (empty, key not
    yet readable, module not yet there): now only once it is an hour old."""
    from theano.gof import cmodule
    young, old = tmp_path / "tmpyoung", tmp_path / "tmpold"
    for d in (young, old):
        d.mkdir()
        (d / "key.pkl").write_bytes(b"\x80")  # half a pickle
    hour_ago = __import__("time").time() - compat.YOUNG_SECONDS - 5
    os.utime(old, (hour_ago, hour_ago))
    for d in (young, old):
        cmodule._rmtree(str(d), ignore_nocleanup=True, msg="broken cache directory [EOF]")
    assert young.exists() and not old.exists()
    cmodule._rmtree(str(young), ignore_nocleanup=True, msg="old cache directory")
    assert not young.exists()  # other reasons are Theano's own


COMPILE = """
import sys
import numpy as np
import models  # noqa: F401  (the project's Theano set-up)
import theano
import theano.tensor as T
x = T.matrix()
f = theano.function([x], T.tanh(x * float(sys.argv[1])).sum() + T.exp(x).max())
print(f(np.ones((2, 3), np.float32)))
"""


def test_two_processes_compiling_at_once_into_one_fresh_cache_both_finish(tmp_path):
    """Folds trained side by side share the compile cache: two processes compile the same
    new graphs into an empty cache at the same moment, twice over, and every one
    finishes with the right number."""
    for attempt in range(2):
        env = dict(os.environ, DRT_CACHE=str(tmp_path / ("cache%d" % attempt)))
        env.pop("THEANO_FLAGS", None)
        env.pop("DRT_THEANO_FLAGS", None)
        procs = [subprocess.Popen([sys.executable, "-c", COMPILE, "2"], env=env,
                                  cwd=os.path.dirname(os.path.dirname(compat.__file__)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err[-2000:]
            assert abs(float(out.split()[-1]) - (6 * np.tanh(2.0) + np.e)) < 1e-4, out
