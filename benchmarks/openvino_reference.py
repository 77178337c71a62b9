"""OpenVINO's inference of the project's ONNX export, a peer of ``make bench PEERS=1``.

Not used by the pipeline; it imports neither Theano nor the project, so that it runs
in the peers' own Python (``build/peers``, ``requirements-peers.txt``):

    python benchmarks/openvino_reference.py --onnx net.onnx --check check.npz --threads 2

compiles the model for the CPU in fp32 (``INFERENCE_PRECISION_HINT``: OpenVINO would
otherwise run bf16 on CPUs that have it) under each performance hint, checks ``prob``
against the project's for the same batch (within 1e-5, the bound of
tests/models/test_fidelity.py; a hint whose outputs differ prints ``=failed`` and is
not timed), and prints the better of the two as ``openvino_infer_img_s``:

- LATENCY: one synchronous request of the whole batch, median of ``--repeats`` after a
  warm-up;
- THROUGHPUT: OpenVINO's optimal number of requests, each the whole batch, run
  asynchronously at once; img/s is the images of all requests over their wall time,
  median of ``--repeats`` rounds after a warm-up round.
"""
import argparse
import statistics
import time

import numpy as np
import openvino as ov


def compiled(core, path, hint, threads):
    """The model compiled for the CPU in fp32 under ``hint``."""
    return core.compile_model(path, "CPU", {"PERFORMANCE_HINT": hint,
                                            "INFERENCE_NUM_THREADS": threads,
                                            "INFERENCE_PRECISION_HINT": "f32"})


def median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hint_figure(model, x, hint, repeats):
    """img/s of ``model`` on batch ``x`` under ``hint`` (see the module docstring)."""
    if hint == "LATENCY":
        request = model.create_infer_request()
        return len(x) / median_seconds(lambda: request.infer({0: x}), repeats)
    count = model.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    queue = ov.AsyncInferQueue(model, count)

    def round_():
        for _ in range(count):
            queue.start_async({0: x})
        queue.wait_all()
    return count * len(x) / median_seconds(round_, repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--onnx", required=True, help="the network (input data, output prob)")
    p.add_argument("--check", required=True, help="x and the project's prob for it (.npz)")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    check = np.load(args.check)
    x, ours = np.ascontiguousarray(check["x"][:args.batch]), check["prob"][:args.batch]
    core = ov.Core()
    best = None
    for hint in ("LATENCY", "THROUGHPUT"):
        model = compiled(core, args.onnx, hint, args.threads)
        diff = float(np.abs(model.create_infer_request().infer({0: x})[0] - ours).max())
        if not diff <= 1e-5:
            print("openvino_infer_img_s=failed  # %s: max |prob - ours| %.2g" % (hint, diff),
                  flush=True)
            continue
        figure = hint_figure(model, x, hint, args.repeats)
        if best is None or figure > best[0]:
            best = (figure, hint, diff)
    if best is not None:
        figure, hint, diff = best
        print("openvino_infer_img_s=%.2f  # batch %d, OpenVINO %s, fp32, %s hint (the better "
              "of LATENCY and THROUGHPUT), %d threads, median of %d; max |prob - ours| %.2g"
              % (figure, args.batch, ov.__version__, hint, args.threads, args.repeats, diff),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
