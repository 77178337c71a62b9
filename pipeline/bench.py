"""``make bench``: speed figures, one ``key=value`` per line.

infer_img_s: deploy GoogLeNet forward, test mode. train_img_s: one SGD step with
momentum of the full net with aux heads (loss3 + 0.3 (loss1 + loss2)).
*_compile_s: Theano compile time of each function. With PyTorch installed
(``pip install torch==2.13.0``, CPU build), the same network built from the same
spec is timed as torch_infer_img_s / torch_train_img_s for comparison.
"""
import argparse
import time

import numpy as np
import theano
import theano.tensor as T

import lasagne
from models import googlenet


def timed(fn, repeats):
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_theano(batch, repeats):
    rng = np.random.RandomState(0)
    x = rng.normal(0, 50, (batch, 3, 224, 224)).astype(np.float32)
    y = rng.randint(0, 1000, batch).astype(np.int32)
    net = googlenet.build(googlenet.googlenet_spec(aux_heads=True))
    start = time.perf_counter()
    infer = googlenet.compile_forward(net, ["prob"])
    print("infer_compile_s=%.1f" % (time.perf_counter() - start), flush=True)
    print("infer_img_s=%.2f" % (batch / timed(lambda: infer(x), repeats)), flush=True)

    labels = T.ivector("labels")
    heads = ["loss3/classifier", "loss1/classifier", "loss2/classifier"]
    logits = lasagne.layers.get_output([net[h] for h in heads])
    losses = [T.nnet.categorical_crossentropy(T.nnet.softmax(z), labels).mean() for z in logits]
    loss = losses[0] + 0.3 * (losses[1] + losses[2])
    params = lasagne.layers.get_all_params([net[h] for h in heads], trainable=True)
    updates = lasagne.updates.momentum(loss, params, learning_rate=1e-4, momentum=0.9)
    start = time.perf_counter()
    train = theano.function([net["data"].input_var, labels], loss, updates=updates)
    print("train_compile_s=%.1f" % (time.perf_counter() - start), flush=True)
    print("train_img_s=%.2f" % (batch / timed(lambda: train(x, y), repeats)), flush=True)


def bench_torch(batch, repeats):
    try:
        import torch
    except ImportError:
        print("torch_infer_img_s=n/a  # pip install torch==2.13.0 to compare")
        return
    from .torch_reference import TorchNet
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 224, 224) * 50
    y = torch.randint(0, 1000, (batch,))
    net = TorchNet(googlenet.googlenet_spec(aux_heads=True))
    net.eval()
    with torch.no_grad():
        t = timed(lambda: net(x, ["prob"]), repeats)
    print("torch_infer_img_s=%.2f  # torch %s, %d threads" % (batch / t, torch.__version__,
                                                             torch.get_num_threads()))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    heads = ["loss3/classifier", "loss1/classifier", "loss2/classifier"]

    def step():
        opt.zero_grad()
        z3, z1, z2 = net(x, heads)
        ce = torch.nn.functional.cross_entropy
        loss = ce(z3, y) + 0.3 * (ce(z1, y) + ce(z2, y))
        loss.backward()
        opt.step()
    print("torch_train_img_s=%.2f" % (batch / timed(step, repeats)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    print("batch=%d floatX=%s blas=%s openmp=%s" % (args.batch, theano.config.floatX,
                                                  theano.config.blas.ldflags or "none",
                                                  theano.config.openmp))
    bench_theano(args.batch, args.repeats)
    bench_torch(args.batch, args.repeats)


if __name__ == "__main__":
    main()
