"""``make bench``: speed figures, one ``key=value`` per line.

preprocess_img_s: generated Kaggle-sized JPEGs through the preprocessing, all
cores. kaggle_test_img_s: the same JPEGs through ``make kaggle-test``'s prediction
(decode, crop, 4-rotation TTA), one process. infer_img_s: GoogLeNet forward, test mode; features_img_s: up to
pool5/7x7_s1; mc_infer_img_s: MC dropout with 20 passes (the trunk once, the classifier 20 times). train_img_s: one Caffe SGD step (momentum, weight decay) of the
full net with aux heads (loss3 + 0.3 (loss1 + loss2)); finetune_img_s: the same
with conv1/conv2 frozen (scenario 4). *_compile_s: Theano compile time of each. With PyTorch installed
(``pip install torch==2.13.0``, CPU build), the same network built from the same
spec is timed as torch_infer_img_s / torch_train_img_s for comparison.
onnx_infer_img_s: the same forward (the net's ONNX export, ``models.onnx_export``) on
ONNX Runtime, all graph optimisations, as many threads as Theano's OpenMP, its ``prob``
checked against the Theano forward's first (the bounds of tests/models/test_fidelity.py),
both timed again in the same run beside each other (infer_img_s_beside), median of at
least 5 after a warm-up: the engine ``pipeline.learn.inference.forward_function`` picks on
the CPU. ``--inference-only``: these two figures alone.
blas=... kernel=...: each OpenBLAS the process loaded, its kernel and who chose it
(``models.blas``); generic_*: the Theano figures again with OpenBLAS's generic
kernels forced (``OPENBLAS_CORETYPE=Prescott``), the cost of a BLAS that does not
know the CPU. finetune_img_s_batchB / peak_rss_mib_batchB: the scenario-4 step at batch 1, 16
and 64, each in its own process, and that process's peak resident memory.
With DEVICE=cuda: the same figures prefixed gpu_ at batch 32 and 128, and
PyTorch's (torch_gpu_*, from any Python that has it with CUDA).
``--peers`` (``make bench PEERS=1``): in place of the eager PyTorch figures, the peers of
``tools.peers`` on the same batch, threads and weights, each checked against our outputs
before it is timed: PyTorch eager and ``torch.compile`` (torch_*, torch_compile_*) and
OpenVINO (openvino_infer_img_s); then vs_fastest_infer (ONNX Runtime, our CPU inference,
against the fastest inference peer), vs_fastest_train (our training step against the
fastest PyTorch) and every figure's GFLOP/s and share of the CPU's fp32 peak.
``--profile``: Theano's per-op profile of scenario 4's training step, ONNX Runtime's
profile of the inference forward and PyTorch's training step, by op class.
"""
import argparse
import json
import os
import time

from models import blas, googlenet  # noqa: I001  (first: the BLAS kernels, Theano's flags)
from models.device import describe, on_gpu, require

import numpy as np
import theano


def timed(fn, repeats):
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


#: what each timed function is, beside its figure
MC_PASSES = 20
NOTES = {"infer": "", "features": ", pool5/7x7_s1: scenario 1's extraction",
         "mc_infer": ", MC dropout: the trunk once, %d classifier passes, masks drawn "
                     "(UNCERTAINTY=mc:%d)" % (MC_PASSES, MC_PASSES),
         "train": ", Caffe SGD step, aux heads on",
         "finetune": ", Caffe SGD step, aux heads on, conv1/conv2 frozen (scenario 4)"}


def bench_theano(batches, repeats, prefix="", peers=False):
    """{prefix}infer / features / train / finetune img/s at each of ``batches``, and
    each function's compile time (a fresh cache's first compile is the cold one); on the
    CPU, ONNX Runtime's inference beside them and, ``peers``, the peers of
    ``tools.peers`` on the same batch."""
    from pipeline.learn.finetune import CLASSIFIERS, compile_training
    spec = googlenet.googlenet_spec(aux_heads=True)
    net = googlenet.build(spec)
    solver = {"solver": {"base_lr": 1e-4, "momentum": 0.9, "weight_decay": 5e-4}}
    compilers = {
        "infer": lambda: googlenet.compile_forward(net, ["prob"]),
        "features": lambda: googlenet.compile_forward(net, ["pool5/7x7_s1"]),
        "mc_infer": lambda: mc_infer(net, spec, MC_PASSES),
        "train": lambda: compile_training(net, list(CLASSIFIERS), solver)[0],
        "finetune": lambda: compile_training(net, list(CLASSIFIERS),
                                             dict(solver, freeze=["conv1/", "conv2/"]))[0]}
    fns = {}
    for key, compile_fn in compilers.items():
        start = time.perf_counter()
        fns[key] = compile_fn()
        print("%s%s_compile_s=%.1f" % (prefix, key, time.perf_counter() - start), flush=True)
    rng = np.random.RandomState(0)
    for batch in batches:
        x = rng.normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
        y = rng.randint(0, 1000, batch).astype(np.int32)
        w = np.ones(batch, np.float32)
        figures = {}
        for key, fn in fns.items():
            args = (x,) if key in ("infer", "features", "mc_infer") else (x, y, w)
            figures[key] = batch / timed(lambda: fn(*args), repeats)
            print("%s%s_img_s=%.2f  # batch %d%s" % (prefix, key, figures[key], batch,
                                                    NOTES[key]), flush=True)
        if not prefix and not on_gpu():
            onnx_figure = bench_onnx(net, spec, fns["infer"], x, repeats)
            if peers:
                from models.onnx_export import default_threads
                from tools.peers import bench_peers
                heads = googlenet.compile_forward(net, ["prob", "loss3/classifier",
                                                        "loss1/classifier", "loss2/classifier"])
                bench_peers(spec, net, heads, x, max(repeats, 5), default_threads(),
                            {"infer": (onnx_figure, "ONNX Runtime, the CPU inference engine"),
                             "train": (figures["train"], "Theano, Caffe SGD, aux heads")})


def bench_onnx(net, spec, theano_fn, x, repeats):
    """ONNX Runtime's inference img/s beside the Theano forward's ``theano_fn``, on the
    same batch ``x`` and threads, once their ``prob`` agree; both timed here, one after
    the other (median of at least 5 after a warm-up). Returns ONNX Runtime's figure
    (None when it is absent or its outputs differ)."""
    try:
        from models.onnx_export import compile_forward_onnx, default_threads
        import onnxruntime
    except ImportError as e:
        print("onnx_infer_img_s=n/a  # %s (pip install -r requirements.txt)" % e, flush=True)
        return None
    start = time.perf_counter()
    onnx_fn = compile_forward_onnx(spec, net, x.shape[1:], ["prob"])
    print("onnx_infer_compile_s=%.1f  # export and session" % (time.perf_counter() - start),
          flush=True)
    ours, theirs = theano_fn(x)[0], onnx_fn(x)[0]
    diff = float(np.abs(ours - theirs).max())
    if not diff <= 1e-5:
        print("onnx_infer_img_s=failed  # prob differs from the Theano forward's by %.3g"
              % diff, flush=True)
        return None
    repeats, batch = max(repeats, 5), len(x)
    theano_s = timed(lambda: theano_fn(x), repeats)
    onnx_s = timed(lambda: onnx_fn(x), repeats)
    print("infer_img_s_beside=%.2f  # batch %d, the Theano forward, timed beside ONNX "
          "Runtime's, median of %d" % (batch / theano_s, batch, repeats), flush=True)
    print("onnx_infer_img_s=%.2f  # batch %d, ONNX Runtime %s, all graph optimisations, %d "
          "threads, median of %d; max |prob - Theano's| %.2g; %.2fx the Theano forward"
          % (batch / onnx_s, batch, onnxruntime.__version__, default_threads(), repeats, diff,
             theano_s / onnx_s), flush=True)
    return batch / onnx_s


def bench_inference(batch, repeats):
    """``--inference-only``: the Theano forward and ONNX Runtime's, beside each other."""
    spec = googlenet.googlenet_spec()
    net = googlenet.build(spec)
    start = time.perf_counter()
    theano_fn = googlenet.compile_forward(net, ["prob"])
    print("infer_compile_s=%.1f" % (time.perf_counter() - start), flush=True)
    x = np.random.RandomState(0).normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
    bench_onnx(net, spec, theano_fn, x, repeats)


def mc_infer(net, spec, passes):
    """x -> passes x N x C probabilities under MC dropout, as ``make evaluate
    UNCERTAINTY=mc:T`` computes them (one rotation; the trunk on the inference engine)."""
    from models.mc_dropout import compile_head, dropout_below, mc_probs
    from pipeline.learn.inference import mc_trunk
    trunk, head, ratio = mc_trunk(net, spec), compile_head(net, spec), dropout_below(spec)[1]
    return lambda x: mc_probs(trunk, head, [([str(i) for i in range(len(x))], [x])], passes,
                              ratio)


def bench_preprocess(count=48):
    """Kaggle-sized (3888 x 2592) generated JPEGs through ``preprocess``, all cores."""
    import shutil
    import tempfile
    from pipeline.preprocess import preprocess
    from pipeline.data.synthetic import fundus_image
    tmp = tempfile.mkdtemp(prefix="drt-bench-")
    try:
        os.makedirs(os.path.join(tmp, "images"))
        sources = []
        for level in range(4):  # a few distinct images, copied under Kaggle names
            path = os.path.join(tmp, "src%d.jpeg" % level)
            fundus_image(level, 3888, 2592, seed=level).save(path, quality=90)
            sources.append(path)
        with open(os.path.join(tmp, "labels.csv"), "w") as f:
            f.write("image,level\n")
            for i in range(count):
                name = "%d_%s" % (i // 2 + 1, ("left", "right")[i % 2])
                shutil.copy(sources[i % 4], os.path.join(tmp, "images", name + ".jpeg"))
                f.write("%s,%d\n" % (name, i % 4))
        start = time.perf_counter()
        preprocess(tmp, os.path.join(tmp, "out.h5"), progress=False)
        seconds = time.perf_counter() - start
        print("preprocess_img_s=%.1f  # 3888x2592 JPEG -> 256x256, %d workers"
              % (count / seconds, os.cpu_count()), flush=True)
    finally:
        shutil.rmtree(tmp)


def bench_kaggle_test(count=32):
    """Kaggle-sized generated JPEGs through ``make kaggle-test``'s prediction (decode,
    retina crop to 256, 4-rotation TTA, a 5-level GoogLeNet), one process: the rate that
    sets the time of Kaggle's 53,576 test images."""
    import shutil
    import tempfile
    from pathlib import Path
    from pipeline.kaggle_test import predict_chunks
    from pipeline.data.synthetic import fundus_image
    tmp = Path(tempfile.mkdtemp(prefix="drt-bench-"))
    try:
        images = {}
        for i in range(count):
            images["%d_left" % i] = str(tmp / ("%d_left.jpeg" % i))
            fundus_image(i % 5, 3888, 2592, seed=i % 4).save(images["%d_left" % i], quality=90)
        net = googlenet.build(googlenet.googlenet_spec(5))
        googlenet.compile_forward(net, ["prob"])  # compiled before the clock starts
        (tmp / "chunks").mkdir()
        start = time.perf_counter()
        predict_chunks(net, sorted(images), images, tmp / "chunks", 224,
                       {"size": 256, "lcn": False}, (0, 90, 180, 270), False, count)
        rate = count / (time.perf_counter() - start)
        print("kaggle_test_img_s=%.1f  # 3888x2592 JPEG -> 5 levels, 4-rotation TTA, one "
              "process: Kaggle's 53,576 test images in %.1f h" % (rate, 53576 / rate / 3600),
              flush=True)
    finally:
        shutil.rmtree(tmp)


def write_spec(path):
    """GoogLeNet with aux heads as JSON, for the PyTorch peer in any Python."""
    with open(path, "w") as f:
        json.dump([layer._asdict() for layer in googlenet.googlenet_spec(aux_heads=True)], f)


def torch_python(gpu):
    """A Python that has PyTorch (with CUDA for ``gpu``): $TORCH_PYTHON, this one,
    or python3 on PATH; None if none has."""
    import shutil
    import subprocess
    import sys
    check = "import torch; assert %s" % ("torch.cuda.is_available()" if gpu else "True")
    for python in filter(None, (os.environ.get("TORCH_PYTHON"), sys.executable,
                                shutil.which("python3"))):
        if subprocess.run([python, "-c", check], capture_output=True,
                          env=torch_env()).returncode == 0:
            return python
    return None


def torch_env():
    """The environment for PyTorch's process: without the library path made for
    libgpuarray (PyTorch brings its own CUDA libraries)."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    return env


def bench_torch(batches, repeats, gpu, profile=False):
    """PyTorch's figures (or, ``profile``, its training step by op class) for the same
    spec, in its own process (and Python)."""
    import subprocess
    import tempfile
    python = torch_python(gpu)
    if python is None:
        print("torch_%sinfer_img_s=n/a  # no PyTorch%s here (TORCH_PYTHON=python names one)"
              % ("gpu_" if gpu else "", " with CUDA" if gpu else ""), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "spec.json")
        write_spec(spec)
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "benchmarks", "torch_reference.py")
        subprocess.run([python, script, "--spec", spec, "--device", "cuda" if gpu else "cpu",
                        "--repeats", str(repeats), "--batch"] + [str(b) for b in batches]
                       + (["--profile"] if profile else []),
                       env=torch_env(), check=False)


def profile(batch, steps=3, top=14):
    """Theano's per-op profile of scenario 4's training step (conv1/conv2 frozen,
    aux heads), summed by op class: a table of share of the step, seconds per
    step and calls per step."""
    from pipeline.learn.finetune import CLASSIFIERS, compile_training
    rng = np.random.RandomState(0)
    x = rng.normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
    y = rng.randint(0, 2, batch).astype(np.int32)
    w = np.ones(batch, np.float32)
    net = googlenet.build(googlenet.googlenet_spec(2, aux_heads=True))
    config = {"solver": {"momentum": 0.9, "weight_decay": 5e-4}, "freeze": ["conv1/", "conv2/"]}
    theano.config.profile = True
    try:
        step, _, _, _ = compile_training(net, list(CLASSIFIERS), config)
    finally:
        theano.config.profile = False
    step(x, y, w)  # warm-up, then profile ``steps`` steps only
    step.profile.apply_time.clear()
    step.profile.apply_callcount.clear()
    for _ in range(steps):
        step(x, y, w)
    by_op = {}
    for key, seconds in step.profile.apply_time.items():
        node = key[1] if isinstance(key, tuple) else key
        name = type(node.op).__name__
        total, calls = by_op.get(name, (0.0, 0))
        by_op[name] = (total + seconds, calls + step.profile.apply_callcount[key])
    total = sum(t for t, _ in by_op.values())
    print("profile of one scenario-4 training step, batch %d, %d steps: %.3f s per step"
          % (batch, steps, total / steps))
    print("| op | share | s per step | calls per step |")
    print("|---|---|---|---|")
    for name, (seconds, calls) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:top]:
        print("| %s | %.1f %% | %.3f | %d |" % (name, 100 * seconds / total, seconds / steps,
                                              calls // steps))
    by_class = {}
    for name, (seconds, _) in by_op.items():
        label = OP_CLASSES.get(name, "elementwise (ReLU, bias, LRN, SGD update), other")
        by_class[label] = by_class.get(label, 0.0) + seconds
    print("\nthe same by op class (the classes of benchmarks/torch_reference.py):")
    print("| op class | share | s per step |")
    print("|---|---|---|")
    for label, seconds in sorted(by_class.items(), key=lambda kv: -kv[1]):
        print("| %s | %.1f %% | %.3f |" % (label, 100 * seconds / total, seconds / steps))


#: ONNX Runtime's op types in the same classes (its fused ``FusedConv`` is convolution,
#: bias and ReLU in one); the nodes of an LRN layer (``onnx_export.lrn``) are their own
ONNX_OP_CLASSES = dict(
    [(op, "convolution forward") for op in ("Conv", "FusedConv", "NchwcConv")]
    + [(op, "pooling") for op in ("MaxPool", "AveragePool", "GlobalAveragePool",
                                  "GlobalMaxPool", "NchwcMaxPool", "NchwcAveragePool")]
    + [("Concat", "concatenation"), ("Gemm", "inner product"), ("FusedGemm", "inner product"),
       ("Softmax", "softmax, loss"),
       ("ReorderInput", "layout reorders (NCHWc)"), ("ReorderOutput", "layout reorders (NCHWc)")])


def onnx_profile(batch, runs=3):
    """ONNX Runtime's own profiler on the inference forward (the CPU engine of
    evaluate, predict and features), ``runs`` runs after a warm-up run, summed by op
    class: share, seconds per batch."""
    import json
    import tempfile
    from models.onnx_export import onnx_model, onnx_session
    spec = googlenet.googlenet_spec()
    net = googlenet.build(spec)
    x = np.random.RandomState(0).normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="drt-ortprof-") as tmp:
        session = onnx_session(onnx_model(spec, net, x.shape[1:], ["prob"]),
                               profile_prefix=os.path.join(tmp, "ort"))
        for _ in range(runs + 1):
            session.run(["prob"], {"data": x})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    warm_up = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    lrn = {layer.name for layer in spec if layer.type == "LRN"}
    by_class = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time") \
                or event["ts"] <= warm_up["ts"] + warm_up["dur"]:
            continue
        node = event["name"][:-len("_kernel_time")].split("#")[0]  # the layer it is of
        label = "local response normalisation (LRN)" if node in lrn else ONNX_OP_CLASSES.get(
            event["args"].get("op_name"), "elementwise (ReLU, padding, scaling), other")
        by_class[label] = by_class.get(label, 0.0) + event["dur"] / 1e6
    total = sum(by_class.values())
    print("\nONNX Runtime's profile of the inference forward (its own profiler), batch %d, "
          "%d runs after a warm-up: %.3f s per batch" % (batch, runs, total / runs))
    print("| op class | share | s per batch |")
    print("|---|---|---|")
    for label, seconds in sorted(by_class.items(), key=lambda kv: -kv[1]):
        print("| %s | %.1f %% | %.3f |" % (label, 100 * seconds / total, seconds / runs))


#: Theano's op names in the classes PyTorch's profile is summed by
OP_CLASSES = dict(
    [("CorrMM", "convolution forward"), ("CorrMM_gradInputs", "convolution gradients"),
     ("CorrMM_gradWeights", "convolution gradients"), ("Join", "concatenation"),
     ("Dot22", "inner product"), ("Gemm", "inner product"), ("Dot22Scalar", "inner product"),
     ("CGemv", "inner product"), ("CGer", "inner product")]
    + [(op, "pooling") for op in ("CaffeMaxPool", "CaffeMaxPoolGrad", "Pool", "MaxPoolGrad",
                                  "AveragePoolGrad", "GpuCaffeMaxPool", "GpuCaffeMaxPoolGrad")]
    + [(op, "softmax, loss") for op in ("CrossentropySoftmaxArgmax1HotWithBias",
                                        "CrossentropySoftmax1HotWithBiasDx", "Softmax",
                                        "SoftmaxWithBias", "SoftmaxGrad")])


def train_step_only(batch, repeats):
    """One figure: img/s of the scenario-4 training step at ``batch`` (for scaling)."""
    from pipeline.learn.finetune import CLASSIFIERS, compile_training
    rng = np.random.RandomState(0)
    x = rng.normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
    y = rng.randint(0, 2, batch).astype(np.int32)
    net = googlenet.build(googlenet.googlenet_spec(2, aux_heads=True))
    step, _, _, _ = compile_training(net, list(CLASSIFIERS), {"solver": {"momentum": 0.9},
                                                             "freeze": ["conv1/", "conv2/"]})
    figure = batch / timed(lambda: step(x, y, np.ones(batch, np.float32)), repeats)
    print("%.2f %d" % (figure, peak_rss_kib()))


def peak_rss_kib():
    """This process's peak resident memory (VmHWM: of its own address space; the
    rusage of a child also counts what its parent had when it forked)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def bench_generic_kernel(batch, repeats):
    """The Theano figures again in a child whose OpenBLAS is forced to its generic
    ``Prescott`` kernels: what ``models.blas`` saves on this CPU."""
    import subprocess
    import sys
    env = dict(os.environ, OPENBLAS_CORETYPE="Prescott")
    subprocess.run([sys.executable, "-m", "tools.bench", "--theano-only", "generic_",
                    "--batch", str(batch), "--repeats", str(repeats)], env=env, check=False)


def bench_scaling(batches=(1, 16, 64), repeats=3):
    """finetune img/s and peak resident memory per batch size, each in its own process
    (peak memory only grows within one)."""
    import subprocess
    import sys
    for batch in batches:
        out = subprocess.run([sys.executable, "-m", "tools.bench", "--train-step-only",
                              "--batch", str(batch), "--repeats", str(repeats)],
                             stdout=subprocess.PIPE, text=True)
        last = out.stdout.strip().splitlines()[-1].split() if out.stdout.strip() else []
        figure, peak = (last[0], "%.0f" % (int(last[1]) / 1024.0)) \
            if out.returncode == 0 and len(last) == 2 else ("failed", "?")
        print("finetune_img_s_batch%d=%s peak_rss_mib_batch%d=%s" % (batch, figure, batch, peak),
              flush=True)


def cpu_line(cpuinfo="/proc/cpuinfo"):
    """``cpu=<model name>, family F model M, N cores, <level>``: the CPU every figure of
    the run is of (timings compare only within one run on one CPU)."""
    fields = blas.cpu_fields(cpuinfo)
    return "cpu=%s, family %s model %s, %d cores, %s" % (
        fields.get("model name", "?"), fields.get("cpu family", "?"), fields.get("model", "?"),
        os.cpu_count() or 1, blas.cpu_level(fields.get("flags", "").split()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true",
                   help="only print the per-op profile of a scenario-4 training step")
    p.add_argument("--inference-only", action="store_true",
                   help="only the Theano and ONNX Runtime inference figures, beside each other")
    p.add_argument("--train-step-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--theano-only", metavar="PREFIX", help=argparse.SUPPRESS)
    p.add_argument("--no-generic", action="store_true",
                   help="skip the figures with OpenBLAS's generic kernels forced")
    p.add_argument("--gpu-batches", default="32,128", help="DEVICE=cuda: the batches timed")
    p.add_argument("--peers", action="store_true",
                   help="PyTorch eager and torch.compile, OpenVINO (tools.peers) in place of "
                        "the eager PyTorch figures, and ours against the fastest")
    args = p.parse_args(argv)
    if args.train_step_only:
        return train_step_only(args.batch, args.repeats)
    if args.theano_only:
        print(blas.summary_line(blas.describe()).replace("blas=", args.theano_only + "blas="))
        return bench_theano([args.batch], args.repeats, prefix=args.theano_only)
    require()
    if on_gpu():
        print("device=%s" % json.dumps(describe()), flush=True)
        if args.profile:
            return profile(args.batch)
        batches = [int(b) for b in args.gpu_batches.split(",")]
        bench_theano(batches, max(args.repeats, 10), prefix="gpu_")
        bench_torch(batches, max(args.repeats, 10), gpu=True)
        return
    print("batch=%d floatX=%s blas=%s openmp=%s" % (args.batch, theano.config.floatX,
                                                  theano.config.blas.ldflags or "none",
                                                  theano.config.openmp))
    print(cpu_line(), flush=True)
    print(blas.summary_line(blas.describe()), flush=True)
    if args.profile:
        profile(args.batch)
        onnx_profile(args.batch)
        return bench_torch([args.batch], args.repeats, gpu=False, profile=True)
    if args.inference_only:
        return bench_inference(args.batch, args.repeats)
    bench_preprocess()
    bench_kaggle_test()
    bench_theano([args.batch], args.repeats, peers=args.peers)
    if not args.peers:
        bench_torch([args.batch], args.repeats, gpu=False)
    if not args.no_generic:
        bench_generic_kernel(args.batch, args.repeats)
    bench_scaling(repeats=args.repeats)


if __name__ == "__main__":
    import sys
    from models.device import DeviceError
    try:
        sys.exit(main())
    except DeviceError as e:
        print("error: %s" % e, file=sys.stderr)
        sys.exit(2)
