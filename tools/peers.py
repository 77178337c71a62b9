"""``make bench PEERS=1``: what a user would run instead, timed in the same run as ours.

The peers run in their own Python (``build/peers``, ``requirements-peers.txt``; or
``$PEERS_PYTHON``) and import neither Theano nor the project:

- PyTorch eager and ``torch.compile`` (``benchmarks/torch_reference.py``): the same
  spec with the same weights, inference and the training step;
- OpenVINO (``benchmarks/openvino_reference.py``): inference of the project's ONNX
  export of the same net.

ONNX Runtime is the project's own CPU inference engine (``onnx_infer_img_s``). Each
peer gets the threads Theano's OpenMP uses and checks its outputs against the
project's on the same batch before it is timed. Then the summary: ours against the
fastest peer, and every figure as GFLOP/s and as a fraction of the CPU's fp32 peak.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_PYTHON = os.path.join(HERE, "build", "peers", "bin", "python")
#: the goals of the speed issue: inference against the fastest inference peer, a
#: training step against the fastest PyTorch
GOALS = {"infer": 0.8, "train": 1.25}


def peers_python():
    """$PEERS_PYTHON, else build/peers (``make bench PEERS=1`` makes it); None if absent."""
    python = os.environ.get("PEERS_PYTHON") or PEERS_PYTHON
    return python if os.path.exists(python) else None


def multiply_adds(spec, shapes):
    """Multiply-adds of one image's forward pass through ``spec``'s convolutions and
    inner products; ``shapes``: {blob: (C, H, W) or (C,)} of the built net."""
    total = 0
    for layer in spec:
        p = layer.params
        if layer.type == "Convolution":
            c_in = shapes[layer.bottom[0]][0]
            c_out, h, w = shapes[layer.name]
            total += c_out * h * w * c_in * p["kernel_size"] ** 2
        elif layer.type == "InnerProduct":
            total += int(np.prod(shapes[layer.bottom[0]])) * p["num_output"]
    return total


def cpu_peak(cpuinfo="/proc/cpuinfo", cores=None):
    """(fp32 GFLOP/s, how): cores x 2 FMA units x fp32 lanes (16 with AVX-512, 8 with
    AVX2, 4 otherwise) x 2 flops x the clock /proc/cpuinfo reports. An upper bound:
    Zen 4 executes AVX-512 on 256-bit units (half this), and turbo clocks differ."""
    from models.blas import cpu_fields
    fields = cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    cores = cores or os.cpu_count() or 1
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma = 2 if "fma" in flags else 1
    ghz = float(fields.get("cpu MHz", 0.0)) / 1000.0
    return (cores * fma * lanes * 2 * ghz,
            "%d cores x %d FMA x %d fp32 lanes x 2 x %.2f GHz" % (cores, fma, lanes, ghz))


def write_inputs(tmp, spec, net, forward, x, seed=0):
    """The peers' inputs in ``tmp``: spec.json, weights.npz (Caffe layout, ``name#0`` /
    ``name#1``), net.onnx (to ``prob``), check.npz (x, labels y, our ``prob`` and our
    deterministic loss3 + 0.3 (loss1 + loss2)); ``forward``: x -> [prob, loss3, loss1,
    loss2 logits] of ``net`` in test mode. Returns the paths by name."""
    import json
    from models.caffe_import import get_blobs
    from models.onnx_export import export_onnx
    paths = {k: os.path.join(tmp, f) for k, f in (("spec", "spec.json"), ("weights",
             "weights.npz"), ("onnx", "net.onnx"), ("check", "check.npz"))}
    with open(paths["spec"], "w") as f:
        json.dump([layer._asdict() for layer in spec], f)
    np.savez(paths["weights"], **{"%s#%d" % (name, i): array
                                  for name, pair in get_blobs(net).items()
                                  for i, array in enumerate(pair)})
    export_onnx(spec, net, x.shape[1:], paths["onnx"], ["prob"])
    y = np.random.RandomState(seed).randint(0, 1000, len(x)).astype(np.int64)
    prob, *heads = forward(x)
    ce = [cross_entropy(z, y) for z in heads]
    np.savez(paths["check"], x=x, y=y, prob=prob, loss=np.float64(ce[0] + 0.3 * (ce[1] + ce[2])))
    return paths


def cross_entropy(logits, y):
    """Mean softmax cross-entropy of ``logits`` (N x K) at labels ``y``, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(y)), y]))


def run_peers(paths, batch, repeats, threads):
    """Run both peers; their lines are printed as they come and returned as
    {figure: img/s} (figures that failed or are absent left out)."""
    python = peers_python()
    if python is None:
        print("peers=n/a  # no build/peers (make bench PEERS=1 installs "
              "requirements-peers.txt there; PEERS_PYTHON=python names another)", flush=True)
        return {}
    commands = [
        [python, os.path.join(HERE, "benchmarks", "torch_reference.py"), "--spec",
         paths["spec"], "--weights", paths["weights"], "--check", paths["check"],
         "--device", "cpu", "--threads", str(threads), "--repeats", str(repeats),
         "--batch", str(batch)],
        [python, os.path.join(HERE, "benchmarks", "openvino_reference.py"), "--onnx",
         paths["onnx"], "--check", paths["check"], "--threads", str(threads), "--repeats",
         str(repeats), "--batch", str(batch)]]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    figures = {}
    for command in commands:
        out = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
        sys.stdout.write(out.stdout)
        sys.stdout.flush()
        figures.update(parse_figures(out.stdout))
        if out.returncode:
            print("peer_failed=%s  # exit %d" % (os.path.basename(command[1]), out.returncode),
                  flush=True)
    return figures


def parse_figures(text):
    """{key: float} of the ``key_img_s=<number>`` lines of ``text``."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(\w+_img_s)=([0-9.]+)", text, re.M)}


def summary(ours, peers, macs, peak):
    """The closing lines: ours against the fastest peer of each kind, and every figure's
    GFLOP/s and fraction of ``peak`` (GFLOP/s, how). ``ours``: {"infer": (figure,
    name), "train": (...)}; ``macs``: {"infer": multiply-adds of the forward to
    ``prob``, "train": of the forward with the aux heads}; a training step is taken as
    3x its forward's (the forward, the input and the weight gradients)."""
    lines = []
    kinds = {"infer": [k for k in peers if k.endswith("infer_img_s")],
             "train": [k for k in peers if k.endswith("train_img_s")]}
    for kind, keys in kinds.items():
        mine, name = ours[kind]
        if not keys or mine is None:
            lines.append("vs_fastest_%s=n/a  # no peer figure" % kind)
            continue
        best = max(keys, key=peers.get)
        ratio = mine / peers[best]
        lines.append("vs_fastest_%s=%.2fx  # ours (%s) %.2f img/s / %s %.2f; goal >= %.2fx: %s"
                     % (kind, ratio, name, mine, best, peers[best], GOALS[kind],
                        "met" if ratio >= GOALS[kind] else "not met"))
    gflop, how = peak
    figures = dict(peers, **{"ours_%s" % k: v[0] for k, v in ours.items() if v[0]})
    for key, figure in sorted(figures.items()):
        flops = (6 * macs["train"] if "train" in key else 2 * macs["infer"]) * figure / 1e9
        lines.append("gflop_s_%s=%.1f  # %.1f%% of the fp32 peak %.0f GFLOP/s (%s)"
                     % (key.replace("_img_s", ""), flops, 100 * flops / gflop if gflop else 0,
                        gflop, how))
    return lines


def bench_peers(spec, net, forward, x, repeats, threads, ours):
    """Write the inputs, run the peers, print the summary (``ours`` as ``summary``)."""
    from models.onnx_export import needed
    with tempfile.TemporaryDirectory(prefix="drt-peers-") as tmp:
        paths = write_inputs(tmp, spec, net, forward, x)
        peers = run_peers(paths, len(x), repeats, threads)
    shapes = dict({layer.name: tuple(net[layer.name].output_shape[1:]) for layer in spec},
                  data=tuple(x.shape[1:]))
    macs = {"infer": multiply_adds(needed(spec, ["prob"]), shapes),
            "train": multiply_adds(spec, shapes)}
    print("multiply_adds_per_image=%.3g  # forward to prob (%.3g with the aux heads), "
          "convolutions and inner products" % (macs["infer"], macs["train"]), flush=True)
    for line in summary(ours, peers, macs, cpu_peak()):
        print(line, flush=True)
