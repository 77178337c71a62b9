"""models.model_io: a saved model loads to the same network and outputs."""
import numpy as np

from models import googlenet
from models.model_io import load_model, save_model


def test_a_saved_model_loads_to_the_same_outputs(tmp_path):
    spec = googlenet.mini_spec(2)
    net = googlenet.build(spec, input_shape=(3, 64, 64))
    x = np.random.RandomState(0).normal(0, 50, (2, 3, 64, 64)).astype(np.float32)
    before = googlenet.compile_forward(net, ["prob"])(x)[0]
    save_model(str(tmp_path / "model.npz"), spec, net, (3, 64, 64))
    spec2, shape, net2 = load_model(str(tmp_path / "model.npz"))
    assert spec2 == spec and shape == (3, 64, 64)
    np.testing.assert_array_equal(googlenet.compile_forward(net2, ["prob"])(x)[0], before)
