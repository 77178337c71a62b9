"""The same GoogLeNet spec in PyTorch, for the speed comparison of ``make bench`` only.

Not used by the pipeline; PyTorch is not a dependency of the project. It imports
neither Theano nor the project, so that it also runs as a script in another
Python (on a GPU machine, the one that has PyTorch with CUDA), given the spec as
JSON (``tools.bench`` writes it from ``models.googlenet``):

    python benchmarks/torch_reference.py --spec spec.json --device cuda --batch 32 128

prints ``torch_gpu_infer_img_s=`` / ``torch_gpu_train_img_s=`` per batch, fp32 with
TF32 off, then the same with PyTorch's defaults (``*_defaults``: cuDNN may use TF32).

On the CPU, as a peer of ``make bench PEERS=1`` (``--weights``: the project's net's
weights, Caffe's layout, ``name#0``/``name#1`` as ``models.onnx_export`` names them;
``--check``: an input batch and the project's outputs for it), each mode (eager,
``torch.compile`` in its default mode) is timed in the contiguous and the
``channels_last`` memory format and the better is printed
(``torch_infer_img_s`` / ``torch_compile_infer_img_s`` ...), once its outputs agree
with the project's: ``prob`` within 1e-5 (the bound of tests/models/test_fidelity.py)
and the deterministic training loss (loss3 + 0.3 (loss1 + loss2), dropout off) within
1e-5 relative. A mode whose outputs differ prints ``=failed`` and is not timed.
"""
import argparse
import json
import statistics
import time
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F


class TorchNet(nn.Module):
    """Interprets a ``models.googlenet`` spec with PyTorch layers (ceil-mode pooling)."""

    def __init__(self, spec, in_channels=3):
        super().__init__()
        self.spec = spec
        self.mods = nn.ModuleDict()
        channels = {"data": in_channels}
        flat = {}
        for layer in spec:
            p = layer.params
            key = layer.name.replace("/", "__")
            bottom = layer.bottom[0]
            if layer.type == "Convolution":
                self.mods[key] = nn.Conv2d(channels[bottom], p["num_output"], p["kernel_size"],
                                           p["stride"], p["pad"])
                channels[layer.name] = p["num_output"]
            elif layer.type == "InnerProduct":
                self.mods[key] = nn.LazyLinear(p["num_output"])
                channels[layer.name] = p["num_output"]
            elif layer.type == "Concat":
                channels[layer.name] = sum(channels[b] for b in layer.bottom)
            else:
                channels[layer.name] = channels[bottom]
            flat[layer.name] = layer.type
        with torch.no_grad():  # materialise the lazy layers
            self.forward(torch.zeros(1, in_channels, 224, 224), [spec[-1].name])

    def load_caffe(self, weights):
        """Set every parameter layer from ``weights`` ({``name#0``: W, ``name#1``: b},
        Caffe's layout: conv W out x in x kh x kw, inner product W out x in)."""
        with torch.no_grad():
            for key, mod in self.mods.items():
                name = key.replace("__", "/")
                mod.weight.copy_(torch.from_numpy(weights[name + "#0"]))
                mod.bias.copy_(torch.from_numpy(weights[name + "#1"]))

    def forward(self, x, outputs):
        blobs = {"data": x}
        for layer in self.spec:
            p = layer.params
            inp = blobs[layer.bottom[0]]
            key = layer.name.replace("/", "__")
            if layer.type == "Convolution":
                y = self.mods[key](inp)
                y = F.relu(y) if p["relu"] else y
            elif layer.type == "InnerProduct":
                y = self.mods[key](inp.flatten(1))
                y = F.relu(y) if p["relu"] else y
            elif layer.type == "Pooling":
                pool = F.max_pool2d if p["pool"] == "MAX" else F.avg_pool2d
                y = pool(inp, p["kernel_size"], p["stride"], p["pad"], ceil_mode=True)
            elif layer.type == "LRN":
                y = F.local_response_norm(inp, p["local_size"], p["alpha"], p["beta"], 1.0)
            elif layer.type == "Concat":
                y = torch.cat([blobs[b] for b in layer.bottom], 1)
            elif layer.type == "Dropout":
                y = F.dropout(inp, p["dropout_ratio"], self.training)
            else:
                y = F.softmax(inp, 1)
            blobs[layer.name] = y
        return [blobs[name] for name in outputs]


def spec_from_json(items):
    """The spec as ``tools.bench`` writes it: a list of {name, type, bottom, params}."""
    return [SimpleNamespace(name=d["name"], type=d["type"], bottom=tuple(d["bottom"]),
                            params=d["params"]) for d in items]


HEADS = ["loss3/classifier", "loss1/classifier", "loss2/classifier"]


def caffe_loss(heads, y):
    """loss3 + 0.3 (loss1 + loss2): the training loss of ``tools.bench``'s step."""
    z3, z1, z2 = heads
    ce = F.cross_entropy
    return ce(z3, y) + 0.3 * (ce(z1, y) + ce(z2, y))


def timer(repeats, sync=lambda: None):
    """fn -> the median seconds of ``repeats`` calls after one warm-up call."""
    def timed(fn):
        fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    return timed


def figures(spec, device, batch, repeats, sync=lambda: None, weights=None, check=None,
            compiled=False, channels_last=False):
    """(infer img/s, train img/s, max |prob - check's|, relative loss difference) of
    ``spec`` at ``batch``: medians of ``repeats`` timed calls after a warm-up; train is
    one SGD step (momentum 0.9, weight decay 5e-4) of loss3 + 0.3 (loss1 + loss2).
    ``check`` (x, y, prob, loss) gives the input and the outputs to agree with: the
    timed inference's ``prob`` and the eager net's loss (the differences come back,
    nothing is timed when they exceed the bounds); ``weights`` the parameters;
    ``compiled``: ``torch.compile`` (default mode) of the inference and of the training
    step's forward (its backward compiled with it by AOTAutograd)."""
    torch.manual_seed(0)
    if check is None:
        x = (torch.randn(batch, 3, 224, 224) * 50).to(device)
    else:
        x = torch.from_numpy(check["x"][:batch]).to(device)
    y = torch.randint(0, 1000, (batch,)).to(device)
    net = TorchNet(spec)
    if weights is not None:
        net.load_caffe(weights)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device, memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    infer_fn = lambda x: net(x, ["prob"])  # noqa: E731
    heads_fn = lambda x: net(x, HEADS)  # noqa: E731
    if compiled:  # one graph each: inference to prob, the training step's forward
        infer_fn, heads_fn = torch.compile(infer_fn), torch.compile(heads_fn)
    timed = timer(repeats, sync)
    prob_diff = loss_diff = 0.0
    net.eval()
    with torch.no_grad():
        if check is not None:  # the compiled inference and the eager loss against ours
            prob = infer_fn(x)[0].cpu().numpy()
            prob_diff = float(abs(prob - check["prob"][:batch]).max())
            y = torch.from_numpy(check["y"][:batch]).long().to(device)
            loss = float(caffe_loss(net(x, HEADS), y))
            loss_diff = abs(loss - float(check["loss"])) / abs(float(check["loss"]))
            if not (prob_diff <= 1e-5 and loss_diff <= 1e-5):
                return None, None, prob_diff, loss_diff
        infer = batch / timed(lambda: infer_fn(x))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad()
        loss = caffe_loss(heads_fn(x), y)
        loss.backward()
        opt.step()
    return infer, batch / timed(step), prob_diff, loss_diff


def peer_figures(spec, batch, repeats, weights, check, modes=("eager", "compile")):
    """``make bench PEERS=1``: eager and ``torch.compile``, each in the better of the
    two memory formats, printed as ``torch[_compile]_{infer,train}_img_s``."""
    for mode in modes:
        prefix = "torch_" if mode == "eager" else "torch_compile_"
        best = {}
        for last in (False, True):
            layout = "channels_last" if last else "contiguous"
            start = time.perf_counter()
            infer, train, dprob, dloss = figures(spec, "cpu", batch, repeats, weights=weights,
                                                 check=check, compiled=mode == "compile",
                                                 channels_last=last)
            seconds = time.perf_counter() - start
            if infer is None:
                print("%sinfer_img_s=failed  # %s, %s: max |prob - ours| %.2g, loss %.2g "
                      "relative" % (prefix, mode, layout, dprob, dloss), flush=True)
                continue
            for kind, figure in (("infer", infer), ("train", train)):
                if figure > best.get(kind, (0,))[0]:
                    best[kind] = (figure, layout, dprob, dloss, seconds)
        for kind in ("infer", "train"):
            if kind in best:
                figure, layout, dprob, dloss, seconds = best[kind]
                print("%s%s_img_s=%.2f  # batch %d, torch %s %s, %s (the better of contiguous "
                      "and channels_last), %d threads, median of %d; max |prob - ours| %.2g, "
                      "loss %.2g relative; %.0f s with compilation"
                      % (prefix, kind, figure, batch, torch.__version__, mode, layout,
                         torch.get_num_threads(), repeats, dprob, dloss, seconds), flush=True)


#: op classes shared with ``tools.bench.profile``: (class, substrings of PyTorch op names)
OP_CLASSES = [("convolution forward", ("convolution", "conv2d")),
              ("convolution gradients", ("convolution_backward",)),
              ("pooling", ("pool",)), ("concatenation", ("cat",)),
              ("inner product", ("addmm", "aten::mm", "linear")),
              ("softmax, loss", ("softmax", "nll", "cross_entropy"))]


OTHER = "elementwise (ReLU, bias, LRN, SGD update), other"


def op_class(name):
    """The class of a PyTorch op; gradients before forwards (their names contain both).
    ``local_response_norm`` is built of ``avg_pool3d`` and elementwise ops: LRN, as
    Theano's (Lasagne's LRN is elementwise ops too)."""
    if "pool3d" in name:
        return OTHER
    for label, keys in sorted(OP_CLASSES, key=lambda c: "gradients" not in c[0]):
        if any(k in name for k in keys):
            return label
    return OTHER


def profile(spec, batch, steps=3):
    """The training step's self CPU time by op class (torch.profiler), as Markdown."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    torch.manual_seed(0)
    x, y = torch.randn(batch, 3, 224, 224) * 50, torch.randint(0, 1000, (batch,))
    net = TorchNet(spec)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)

    def step():
        opt.zero_grad()
        caffe_loss(net(x, HEADS), y).backward()
        opt.step()
    step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    by_class = {}
    for event in prof.key_averages():
        label = op_class(event.key)
        by_class[label] = by_class.get(label, 0.0) + event.self_cpu_time_total / 1e6
    total = sum(by_class.values())
    print("PyTorch %s, %d threads: one training step, batch %d, %d steps: %.3f s per step"
          % (torch.__version__, torch.get_num_threads(), batch, steps, total / steps))
    print("| op class | share | s per step |")
    print("|---|---|---|")
    for label, seconds in sorted(by_class.items(), key=lambda kv: -kv[1]):
        print("| %s | %.1f %% | %.3f |" % (label, 100 * seconds / total, seconds / steps))


def main(argv=None):
    p = argparse.ArgumentParser(description="PyTorch's figures for make bench")
    p.add_argument("--spec", required=True, help="the network as JSON (tools.bench writes it)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--profile", action="store_true",
                   help="the CPU training step's time by op class instead of the figures")
    p.add_argument("--weights", help="CPU peer: the project's weights (.npz, name#0/name#1)")
    p.add_argument("--check", help="CPU peer: x, y, prob and loss to agree with (.npz)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: PyTorch's)")
    p.add_argument("--modes", default="eager,compile", help="CPU peer: eager, compile or both")
    args = p.parse_args(argv)
    with open(args.spec) as f:
        spec = spec_from_json(json.load(f))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        return profile(spec, args.batch[0])
    if args.check:
        import numpy as np
        return peer_figures(spec, args.batch[0], args.repeats, dict(np.load(args.weights)),
                            dict(np.load(args.check)), args.modes.split(","))
    gpu = args.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        print("torch_gpu_infer_img_s=n/a  # torch %s sees no CUDA device" % torch.__version__)
        return 0
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    prefix = "torch_gpu_" if gpu else "torch_"
    defaults = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    where = torch.cuda.get_device_name() if gpu else "%d threads" % torch.get_num_threads()
    for mode in ("fp32", "defaults"):
        if mode == "fp32":
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        else:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = defaults
        suffix = "" if mode == "fp32" else "_defaults"
        for batch in args.batch:
            infer, train, _, _ = figures(spec, args.device, batch, args.repeats, sync)
            note = "  # batch %d, torch %s, %s" % (batch, torch.__version__, where)
            if gpu:
                note += (", fp32, TF32 off" if mode == "fp32" else
                         ", PyTorch's defaults (cuDNN TF32 %s)" % ("on" if defaults[0] else "off"))
            print("%sinfer_img_s%s=%.2f%s" % (prefix, suffix, infer, note), flush=True)
            print("%strain_img_s%s=%.2f%s" % (prefix, suffix, train, note), flush=True)
        if not gpu:
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
