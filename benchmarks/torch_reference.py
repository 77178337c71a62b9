"""The same GoogLeNet spec in PyTorch, for the speed comparison of ``make bench`` only.

Not used by the pipeline; PyTorch is not a dependency of the project. It imports
neither Theano nor the project, so that it also runs as a script in another
Python (on a GPU machine, the one that has PyTorch with CUDA), given the spec as
JSON (``tools.bench`` writes it from ``models.googlenet``):

    python benchmarks/torch_reference.py --spec spec.json --device cuda --batch 32 128

prints ``torch_gpu_infer_img_s=`` / ``torch_gpu_train_img_s=`` per batch, fp32 with
TF32 off, then the same with PyTorch's defaults (``*_defaults``: cuDNN may use TF32).
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


def figures(spec, device, batch, repeats, sync=lambda: None):
    """(infer img/s, train img/s) of ``spec`` at ``batch``: medians of ``repeats`` timed
    calls after a warm-up; train is one SGD step (momentum) of loss3 + 0.3 (loss1 + loss2)."""
    torch.manual_seed(0)
    x = (torch.randn(batch, 3, 224, 224) * 50).to(device)
    y = torch.randint(0, 1000, (batch,)).to(device)
    net = TorchNet(spec).to(device)

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

    net.eval()
    with torch.no_grad():
        infer = batch / timed(lambda: net(x, ["prob"]))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    ce = torch.nn.functional.cross_entropy

    def step():
        opt.zero_grad()
        z3, z1, z2 = net(x, HEADS)
        loss = ce(z3, y) + 0.3 * (ce(z1, y) + ce(z2, y))
        loss.backward()
        opt.step()
    return infer, batch / timed(step)


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
        z3, z1, z2 = net(x, HEADS)
        loss = F.cross_entropy(z3, y) + 0.3 * (F.cross_entropy(z1, y) + F.cross_entropy(z2, y))
        loss.backward()
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
    args = p.parse_args(argv)
    with open(args.spec) as f:
        spec = spec_from_json(json.load(f))
    if args.profile:
        return profile(spec, args.batch[0])
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
            infer, train = figures(spec, args.device, batch, args.repeats, sync)
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
