"""GoogLeNet topology against BVLC's published facts (names, counts, sizes)."""
import numpy as np

import lasagne

from models import googlenet
from models.caffemodel import spec_to_prototxt

# A few names exactly as BVLC's deploy.prototxt / train_val.prototxt spell them.
CAFFE_NAMES = ["conv1/7x7_s2", "pool1/norm1", "conv2/3x3_reduce", "inception_3a/output",
               "inception_4d/5x5_reduce", "inception_4e/pool_proj", "pool3/3x3_s2",
               "pool5/7x7_s1", "pool5/drop_7x7_s1", "loss3/classifier", "prob"]
AUX_NAMES = ["loss1/ave_pool", "loss1/conv", "loss1/fc", "loss1/drop_fc", "loss1/classifier",
             "loss2/ave_pool", "loss2/classifier"]


def n_params(net):
    return sum(p.get_value().size for p in lasagne.layers.get_all_params(list(net.values())))


def test_deploy_net_names_and_parameter_count():
    net = googlenet.build(googlenet.googlenet_spec())
    assert all(name in net for name in CAFFE_NAMES)
    assert not any(name in net for name in AUX_NAMES)
    assert n_params(net) == 6998552
    assert len(googlenet.param_layers(net)) == 58


def test_aux_heads_switch_on():
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    assert all(name in net for name in AUX_NAMES)
    assert n_params(net) == 13378280
    assert net["loss1/ave_pool"].input_layer is net["inception_4a/output"]
    assert net["loss2/ave_pool"].input_layer is net["inception_4d/output"]
    assert net["loss1/drop_fc"].p == 0.7 and net["pool5/drop_7x7_s1"].p == 0.4


def test_blob_shapes_of_the_deploy_net():
    net = googlenet.build(googlenet.googlenet_spec())
    expected = {"conv1/7x7_s2": (64, 112, 112), "pool2/3x3_s2": (192, 28, 28),
                "inception_3a/output": (256, 28, 28), "inception_3b/output": (480, 28, 28),
                "inception_4d/output": (528, 14, 14), "inception_4e/output": (832, 14, 14),
                "inception_5b/output": (1024, 7, 7), "pool5/7x7_s1": (1024, 1, 1)}
    for name, shape in expected.items():
        assert net[name].output_shape[1:] == shape, name
    assert net["prob"].output_shape == (None, 1000)


def test_prototxt_has_bvlc_layer_count():
    # deploy.prototxt: 143 layers with the input; ReLUs are separate, in-place layers.
    text = spec_to_prototxt(googlenet.googlenet_spec())
    assert text.count("layer {") + 1 == 143
    assert 'name: "conv1/relu_7x7" type: "ReLU" bottom: "conv1/7x7_s2" top: "conv1/7x7_s2"' in text


def test_fresh_layers_use_caffe_fillers():
    lasagne.random.set_rng(np.random.RandomState(3))
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    W = net["loss1/fc"].W.get_value()  # Lasagne (in, out) = (2048, 1024)
    bound = np.sqrt(3.0 / 2048)
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.95 * bound
    assert abs(W.std() - bound / np.sqrt(3)) < 0.01 * bound
    Wc = net["conv1/7x7_s2"].W.get_value()
    assert np.abs(Wc).max() <= np.sqrt(3.0 / (3 * 7 * 7))
    assert np.all(net["loss1/fc"].b.get_value() == np.float32(0.2))
    assert np.all(net["loss3/classifier"].b.get_value() == 0)
