"""models.cam: the referable class's map is exact, and it finds a lesion it was trained on."""
import lasagne
import numpy as np
import pytest
import theano

from models import googlenet
from models.cam import cam_layers, compile_cam, referable_rows
from models.googlenet import UnknownLayer


def random_net(network, num_classes, size):
    spec = googlenet.NETWORKS[network](num_classes)
    net = googlenet.build(spec, input_shape=(3, size, size))
    for layer in googlenet.param_layers(net):  # a bias that a wrong row would show
        layer.b.set_value(np.random.RandomState(1).normal(0, 0.5, layer.b.get_value().shape)
                          .astype(np.float32))
    return spec, net


def log_odds_of(logits, rows):
    """The log-odds of referable DR from the network's own logits: log P(referable) -
    log P(not), the softmax's normaliser cancelling (scipy's logsumexp, no underflow)."""
    from scipy.special import logsumexp
    return logsumexp(logits[:, rows[0]], axis=1) - logsumexp(logits[:, rows[1]], axis=1)


@pytest.mark.parametrize("network, num_classes, size, threshold", [
    ("googlenet", 2, 224, 2), ("mini", 5, 64, 2), ("mini", 5, 64, 1), ("mini", 5, 64, 3)])
def test_the_maps_mean_plus_its_constant_is_the_log_odds_the_network_computes(
        network, num_classes, size, threshold):
    spec, net = random_net(network, num_classes, size)
    x = np.random.RandomState(0).normal(0, 50, (3, 3, size, size)).astype(np.float32)
    rows = referable_rows(num_classes, threshold)
    maps, offsets, log_odds = compile_cam(net, spec, rows)(x)
    assert maps.shape == ((3, 7, 7) if network == "googlenet" else maps.shape) and maps.ndim == 3
    # the log-odds of the deploy net's logits, computed separately
    logits = googlenet.compile_forward(net, ["loss3/classifier"])(x)[0].astype(np.float64)
    expected = log_odds_of(logits, rows)
    np.testing.assert_allclose(log_odds, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps.mean(axis=(1, 2)) + offsets, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(maps.mean(axis=(1, 2))).max() > 1e-3  # not trivially zero
    if num_classes == 2:  # the binary identity: the constant is the bias difference
        b = net["loss3/classifier"].b.get_value()
        np.testing.assert_allclose(offsets, b[1] - b[0], rtol=1e-5)


def test_a_five_level_map_has_the_sign_of_the_log_odds():
    """The issue's hand case: logits (0, 0, 5, -5, -5), no bias. The log-odds of levels
    >= 2 is log(e^5 + 2 e^-5) - log 2 = +4.307; a mean of logits contrast would give
    (5 - 5 - 5) / 3 - 0 = -1.67, the opposite sign. The map's mean is the share-weighted
    contrast, 5 s_2 - 5 s_3 - 5 s_4 = +4.9991 (s: softmax of (5, -5, -5))."""
    spec, net = random_net("mini", 5, 64)
    x = np.random.RandomState(0).normal(0, 50, (1, 3, 64, 64)).astype(np.float32)
    classifier = net["loss3/classifier"]
    f = theano.function([net["data"].input_var], lasagne.layers.get_output(
        classifier.input_layer, deterministic=True).flatten(2))(x)[0].astype(np.float64)
    z = np.array([0, 0, 5, -5, -5], np.float64)
    classifier.W.set_value(np.outer(f, z / f.dot(f)).astype(np.float32))  # logits = z
    classifier.b.set_value(np.zeros(5, np.float32))
    maps, offsets, log_odds = compile_cam(net, spec, referable_rows(5))(x)
    s = np.exp([5, -5, -5]) / np.exp([5, -5, -5]).sum()
    assert maps.mean() == pytest.approx(5 * s[0] - 5 * s[1] - 5 * s[2], abs=1e-3)
    assert maps.mean() > 4.99
    assert log_odds[0] == pytest.approx(np.log(np.exp(5) + 2 * np.exp(-5)) - np.log(2), abs=1e-4)
    assert maps.mean() + offsets[0] == pytest.approx(4.3069, abs=1e-3)


def test_the_pooled_blob_is_found_through_dropout():
    assert cam_layers(googlenet.googlenet_spec(2)) == ("inception_5b/output", "pool5/7x7_s1")
    assert referable_rows(2) == ([1], [0]) and referable_rows(5, 3) == ([3, 4], [0, 1, 2])
    spec = googlenet.googlenet_spec(2)
    spec[-2] = spec[-2]._replace(bottom=("inception_5b/output",))  # no pool in between
    with pytest.raises(UnknownLayer, match="does not follow a global average pool"):
        cam_layers(spec)


def blob_store(path, n=240, size=72, seed=0):
    """A preprocessed file by hand: fundus-coloured noise filling the frame; level 3 images
    carry one dark red blob (radius 5) at a random place, level 0 images none. Returns
    the file and each image's blob centre (None for level 0)."""
    import h5py
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:size, :size]
    images, levels, centres = [], [], []
    for i in range(n):
        image = np.empty((size, size, 3), np.float32)
        image[:] = (170, 90, 50)
        image += rng.normal(0, 8, image.shape)
        if i % 2:
            cy, cx = rng.randint(12, size - 12, 2)
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < 25] = (60, 10, 10)
            centres.append((cy, cx))
        else:
            centres.append(None)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        levels.append(3 if i % 2 else 0)
    with h5py.File(path, "w") as f:
        f["images"] = np.stack(images)
        f["level"] = np.array(levels, np.int8)
        f["name"] = np.array(["%d_%s" % (i // 2, ("left", "right")[i % 2]) for i in range(n)],
                             dtype="S")
        f["ok"] = np.ones(n, bool)
        f["split"] = np.array([0] * int(n * 0.7) + [1] * (n - int(n * 0.7)), np.int8)
        f.attrs.update(size=size, lcn=False, counts="{}")
    return str(path), centres


def test_a_model_trained_on_lesions_looks_at_them(tmp_path):
    """A known answer: the map's maximum falls on the blob (within one map cell of its
    centre) on most positive validation images, over two seeds of data and training."""
    from models.model_io import load_model
    from pipeline.recipe.config import load_scenario
    from pipeline.data.dataset import Dataset
    from pipeline.train import train
    inside = total = 0
    for seed in (0, 1):
        data, centres = blob_store(tmp_path / ("blobs%d.h5" % seed), seed=seed)
        config = load_scenario("4", ["network=mini", "crop=64", "init=random", "epochs=12",
                                     "batch_size=16", "freeze=[]", "seed=%d" % seed,
                                     "solver.base_lr=0.0003", 'solver.lr_policy="fixed"'])
        run = train(config, data, runs_root=str(tmp_path / "runs"), progress=False)
        spec, input_shape, net = load_model(str(run / "model.npz"))
        val = Dataset(data, "val")
        positives = [k for k, i in enumerate(val.index) if centres[i] is not None]
        maps = compile_cam(net, spec, referable_rows(2))(val.batch(positives, 64))[0]
        cell = 64.0 / maps.shape[1]  # a map cell's extent in the crop
        for k, cam in zip(positives, maps):
            cy, cx = np.subtract(centres[val.index[k]], 4)  # the centre crop of 64 from 72
            y, x = np.unravel_index(np.argmax(cam), cam.shape)
            inside += abs((y + 0.5) * cell - cy) <= cell and abs((x + 0.5) * cell - cx) <= cell
            total += 1
    assert inside >= 0.7 * total, (inside, total)
