"""tools.peers: the arithmetic of the peers' summary against hand computations and
scikit-learn; the peers themselves (PyTorch, OpenVINO) where build/peers exists."""
import os
import subprocess

import numpy as np
import pytest
from sklearn.metrics import log_loss

from models.googlenet import LayerSpec, googlenet_spec
from tests.conftest import ROOT
from tools import peers


def test_multiply_adds_by_hand():
    """conv 3 -> 8, 3x3 on 8x8 (6x6 out): 8*36*3*9; inner product 288 -> 10."""
    spec = [LayerSpec("c", "Convolution", ("data",), dict(kernel_size=3, num_output=8)),
            LayerSpec("p", "Pooling", ("c",), dict(kernel_size=2)),
            LayerSpec("f", "InnerProduct", ("c",), dict(num_output=10))]
    shapes = {"data": (3, 8, 8), "c": (8, 6, 6), "p": (8, 3, 3), "f": (10,)}
    assert peers.multiply_adds(spec, shapes) == 8 * 36 * 3 * 9 + 288 * 10


def test_googlenets_multiply_adds_are_the_published_figure():
    """Szegedy et al. 2015: about 1.5 billion multiply-adds an image at inference."""
    from models.googlenet import build
    from models.onnx_export import needed
    spec = googlenet_spec()
    net = build(spec)
    shapes = dict({layer.name: tuple(net[layer.name].output_shape[1:]) for layer in spec},
                  data=(3, 224, 224))
    assert 1.5e9 <= peers.multiply_adds(needed(spec, ["prob"]), shapes) <= 1.6e9


def test_cpu_peak_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu MHz\t\t: 2000.000\nflags\t\t: fpu sse avx avx2 fma\n"
                    "processor\t: 1\ncpu MHz\t\t: 3000.000\nflags\t\t: fpu\n")
    gflops, how = peers.cpu_peak(str(info), cores=2)
    assert gflops == pytest.approx(2 * 2 * 8 * 2 * 2.0) and "8 fp32 lanes" in how
    info.write_text("cpu MHz\t\t: 1000.0\nflags\t\t: avx2 fma avx512f\n")
    assert peers.cpu_peak(str(info), cores=1)[0] == pytest.approx(2 * 16 * 2 * 1.0)


def test_cross_entropy_is_sklearns_log_loss():
    rng = np.random.RandomState(0)
    logits = rng.normal(0, 3, (20, 5)).astype(np.float32)
    y = rng.randint(0, 5, 20)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert peers.cross_entropy(logits, y) == pytest.approx(log_loss(y, p, labels=range(5)),
                                                           rel=1e-6)


def test_summary_compares_ours_with_the_fastest_peer_of_each_kind():
    figures = peers.parse_figures("torch_infer_img_s=20.0  # x\ntorch_train_img_s=8.0\n"
                                  "torch_compile_infer_img_s=40.0\ntorch_compile_train_img_s=10.0"
                                  "\nopenvino_infer_img_s=50.0\ntorch_infer_img_s=failed  # y\n")
    assert figures == {"torch_infer_img_s": 20.0, "torch_train_img_s": 8.0,
                       "torch_compile_infer_img_s": 40.0, "torch_compile_train_img_s": 10.0,
                       "openvino_infer_img_s": 50.0}
    lines = peers.summary({"infer": (45.0, "ORT"), "train": (12.0, "Theano")}, figures,
                          {"infer": 1e9, "train": 2e9}, (100.0, "a CPU"))
    assert lines[0].startswith("vs_fastest_infer=0.90x") and "openvino_infer_img_s" in lines[0]
    assert "met" in lines[0] and "not met" not in lines[0]
    assert lines[1].startswith("vs_fastest_train=1.20x") and "torch_compile_train" in lines[1]
    assert lines[1].endswith("not met")
    by_key = dict(line.split("  # ")[0].split("=") for line in lines[2:])
    assert float(by_key["gflop_s_openvino_infer"]) == pytest.approx(2 * 1e9 * 50 / 1e9)
    assert float(by_key["gflop_s_ours_train"]) == pytest.approx(6 * 2e9 * 12 / 1e9)


PEERS = peers.peers_python()


@pytest.mark.skipif(PEERS is None, reason="no build/peers (make bench PEERS=1 makes it)")
def test_the_peers_agree_with_our_outputs_and_refuse_other_weights(tmp_path):
    """PyTorch eager and OpenVINO on our weights give our outputs and are timed; with one
    layer's weights changed by 1 %, or our prob changed, they print ``failed``."""
    from models.googlenet import build, compile_forward
    spec = googlenet_spec(aux_heads=True)
    net = build(spec)
    forward = compile_forward(net, ["prob", "loss3/classifier", "loss1/classifier",
                                    "loss2/classifier"])
    x = np.random.RandomState(1).normal(0, 50, (2, 3, 224, 224)).astype(np.float32)
    paths = peers.write_inputs(str(tmp_path), spec, net, forward, x)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}

    def torch_peer(weights):
        return subprocess.run(
            [PEERS, str(ROOT / "benchmarks" / "torch_reference.py"), "--spec", paths["spec"],
             "--weights", weights, "--check", paths["check"], "--device", "cpu", "--modes",
             "eager", "--repeats", "1", "--batch", "2"], capture_output=True, text=True,
            env=env, check=True).stdout

    def openvino_peer(check):
        return subprocess.run(
            [PEERS, str(ROOT / "benchmarks" / "openvino_reference.py"), "--onnx", paths["onnx"],
             "--check", check, "--threads", "1", "--repeats", "1", "--batch", "2"],
            capture_output=True, text=True, env=env, check=True).stdout

    good = peers.parse_figures(torch_peer(paths["weights"]) + openvino_peer(paths["check"]))
    assert set(good) == {"torch_infer_img_s", "torch_train_img_s", "openvino_infer_img_s"}
    weights = dict(np.load(paths["weights"]))
    weights["inception_4a/1x1#0"] = weights["inception_4a/1x1#0"] * 1.01
    np.savez(str(tmp_path / "other.npz"), **weights)
    assert "torch_infer_img_s=failed" in torch_peer(str(tmp_path / "other.npz"))
    check = dict(np.load(paths["check"]))
    check["prob"] = check["prob"] * 1.05
    np.savez(str(tmp_path / "check2.npz"), **check)
    assert "openvino_infer_img_s=failed" in openvino_peer(str(tmp_path / "check2.npz"))
