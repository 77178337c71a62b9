"""Fine-tuning (scenarios 2, 4, scratch): GoogLeNet with new classifiers,
per-layer lr/decay multipliers (frozen layers: lr_mult 0), Caffe's SGD solver,
class-balanced sampling or loss weights, rotations as augmentation,
validation every epoch, and atomic checkpoints (every epoch and at
SIGINT/SIGTERM) from which a rerun resumes bit-identically.
"""
import contextlib
import json
import signal
import sys
import time

import numpy as np
import theano
import theano.tensor as T
from tqdm import tqdm

import lasagne
from models import device, googlenet
from models.caffe_import import load_caffemodel
from models.fileio import atomic_savez, atomic_write_bytes
from models.solver import layer_multipliers, learning_rate, sgd_updates

from ..data.dataset import balanced_positions, class_weights, open_split, prefetched
from ..errors import InputError
from ..evidence.metrics import validation_row
from ..runs.rundir import point_latest, write_metrics
from .inference import predict

CLASSIFIERS = ("loss3/classifier", "loss1/classifier", "loss2/classifier")


def build_finetune_net(config, num_classes, weights):
    """(spec, input_shape, net, new heads): GoogLeNet (or ``network``) with new
    classifiers, the rest from ``weights`` when ``init`` is pretrained."""
    lasagne.random.set_rng(np.random.RandomState(config.get("seed", 0)))
    aux = config.get("aux_heads", False) and config.get("network", "googlenet") == "googlenet"
    spec = googlenet.NETWORKS[config.get("network", "googlenet")](num_classes, aux_heads=aux)
    crop = config.get("crop", 224)
    input_shape = (3, crop, crop)
    net = googlenet.build(spec, input_shape=input_shape)
    heads = [h for h in CLASSIFIERS if h in net]
    if config.get("init", "pretrained") == "pretrained":
        if not weights:
            raise InputError("scenario %s needs pre-trained weights (WEIGHTS=...)" % config["scenario"])
        load_caffemodel(net, weights, skip=heads)
    return spec, input_shape, net, heads


def compile_training(net, heads, config):
    """(train_fn(x, y, w) -> [loss, accuracy], rate shared var, histories, frozen params)."""
    solver = config["solver"]
    x = net["data"].input_var
    y, w = T.ivector("labels"), T.vector("loss_weights")
    logits = lasagne.layers.get_output([net[h] for h in heads], deterministic=False)
    losses = [T.sum(w * T.nnet.categorical_crossentropy(T.nnet.softmax(z), y)) / T.sum(w)
              for z in logits]
    loss = losses[0] + 0.3 * sum(losses[1:])  # Caffe's loss_weight 0.3 for the aux heads
    accuracy = T.mean(T.eq(T.argmax(logits[0], axis=1), y))
    mults = layer_multipliers(net, frozen=config.get("freeze", []), new_layers=heads,
                              new_mults=(tuple(config.get("new_lr_mult", (10, 20))),
                                         tuple(config.get("new_decay_mult", (1, 0)))))
    rate = theano.shared(np.float32(0), name="rate")
    updates, histories = sgd_updates(loss, mults, rate, solver.get("momentum", 0.9),
                                     solver.get("weight_decay", 0.0))
    fn = device.function([x, y, w], [loss, accuracy], "training function", updates=updates)
    frozen = [p for p, lr, _ in mults if lr == 0]
    return fn, rate, histories, frozen


def dropout_states(net):
    """The shared random states of the dropout layers (after the train graph is built)."""
    return [state for layer in net.values() if isinstance(layer, lasagne.layers.DropoutLayer)
            for state, *_ in getattr(layer._srng, "state_updates", [])]


def epoch_plan(config, train, epoch, iterations):
    """(positions, quarter turns, left-right flips) of every batch of ``epoch``: drawn
    from (seed, epoch) alone, so a run resumed mid-epoch replays exactly the same
    batches. Flips (``flip = true``: each image mirrored with probability 1/2) are
    drawn last, so a run without them draws what it drew before they existed."""
    rng = np.random.RandomState([config.get("seed", 0), epoch])
    n = iterations * config["batch_size"]
    if config.get("balance") == "sampling":
        positions = balanced_positions(train.targets, n, rng)
    else:
        positions = np.concatenate([rng.permutation(len(train))
                                    for _ in range(-(-n // len(train)))])[:n]
    turns = rng.choice([d // 90 for d in config.get("rotations", [0])], size=n)
    flips = rng.rand(n) < 0.5 if config.get("flip") else np.zeros(n, bool)
    shape = (iterations, -1)
    return positions.reshape(shape), turns.reshape(shape), flips.reshape(shape)


def finetune(config, data_path, built, run_dir, progress=True):
    """Train ``built`` (from ``build_finetune_net``) in ``run_dir``, resuming its
    checkpoint; returns ``run_dir``, or None when stopped by a signal."""
    train, val = open_split(data_path, "train", config), open_split(data_path, "val", config)
    spec, input_shape, net, heads = built
    crop = input_shape[1]
    train_fn, rate, histories, _ = compile_training(net, heads, config)
    infer = googlenet.compile_forward(net, ["prob"])
    params = lasagne.layers.get_all_params(list(net.values()))
    history_vars = list(histories.values())
    states = dropout_states(net)
    weights_of_class = (class_weights(train.targets, train.num_classes)
                        if config.get("balance") == "loss_weights"
                        else np.ones(train.num_classes, np.float32))
    iterations = config.get("steps_per_epoch") or -(-len(train) // config["batch_size"])
    solver = dict(config["solver"])
    solver.setdefault("max_iter", iterations * config["epochs"])
    checkpoint = run_dir / "checkpoint.npz"
    epoch, it_in_epoch, rows, sums = 0, 0, [], np.zeros(3)
    if checkpoint.exists():  # resume: every value the next step depends on
        with np.load(checkpoint) as ck:
            for i, p in enumerate(params):
                p.set_value(ck["param%d" % i])
            for i, h in enumerate(history_vars):
                h.set_value(ck["history%d" % i])
            for i, s in enumerate(states):
                s.set_value(ck["dropout%d" % i])
            epoch, it_in_epoch = int(ck["epoch"]), int(ck["it_in_epoch"])
            rows, sums = json.loads(str(ck["rows"])), ck["sums"]
        print("train: resuming %s at epoch %d, iteration %d" % (run_dir, epoch + 1, it_in_epoch))

    def state():
        s = {"param%d" % i: p.get_value() for i, p in enumerate(params)}
        s.update({"history%d" % i: h.get_value() for i, h in enumerate(history_vars)})
        s.update({"dropout%d" % i: d.get_value() for i, d in enumerate(states)})
        s.update(epoch=epoch, it_in_epoch=it_in_epoch, rows=json.dumps(rows), sums=sums)
        return s

    stop = []
    handlers = {sig: signal.signal(sig, lambda *_: stop.append(1))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while epoch < config["epochs"]:
            start = time.time()
            positions, turns, flips = epoch_plan(config, train, epoch, iterations)
            bar = tqdm(total=iterations, initial=it_in_epoch, disable=not progress,
                       desc="epoch %d/%d" % (epoch + 1, config["epochs"]), unit="batch")
            waited, steps_start = 0.0, time.perf_counter()
            with contextlib.closing(prefetched(
                    lambda i: train.batch(positions[i], crop, turns[i], flips[i]),
                    range(it_in_epoch, iterations))) as batches:
                for x, wait in batches:
                    if stop:
                        atomic_savez(checkpoint, **state())
                        print("train: stopped; checkpoint saved, run again to resume",
                              file=sys.stderr)
                        return None
                    waited += wait
                    it = epoch * iterations + it_in_epoch
                    rate.set_value(np.float32(learning_rate(solver, it)))
                    y = train.targets[positions[it_in_epoch]]
                    loss, acc = train_fn(x, y, weights_of_class[y])
                    sums += (loss * len(y), acc * len(y), len(y))
                    it_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss="%.3f" % (sums[0] / sums[2]),
                                    acc="%.2f" % (sums[1] / sums[2]))
            bar.close()
            row = {"epoch": epoch + 1, "iteration": (epoch + 1) * iterations,
                   "lr": learning_rate(solver, (epoch + 1) * iterations - 1),
                   "train_loss": sums[0] / sums[2], "train_accuracy": sums[1] / sums[2],
                   "data_wait": round(waited / max(time.perf_counter() - steps_start, 1e-9), 4)}
            row.update(validation_row(predict(infer, val, crop, progress=False), val, config))
            row["seconds"] = round(time.time() - start, 1)
            rows.append(row)
            print("epoch %d: %s" % (epoch + 1, ", ".join(
                "%s=%.4g" % (k, v) for k, v in row.items() if k not in ("epoch",))))
            epoch, it_in_epoch, sums = epoch + 1, 0, np.zeros(3)
            atomic_savez(checkpoint, **state())
            write_metrics(run_dir, rows)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    finish(run_dir, config, spec, net, input_shape, rows)
    return run_dir


def finish(run_dir, config, spec, net, input_shape, rows):
    """model.npz, the Caffe export, the learning curves, DONE, and the -latest link."""
    from models.model_io import export_caffe, save_model
    save_model(str(run_dir / "model.npz"), spec, net, input_shape)
    export_caffe(spec, net, input_shape, str(run_dir))
    write_metrics(run_dir, rows)
    try:
        from ..render.plots import plot_learning_curves
    except ImportError:  # the offline GPU bundle has no matplotlib
        print("train: learning_curves.png not drawn here (no matplotlib); metrics.csv has "
              "the curves")
    else:
        plot_learning_curves(rows, str(run_dir / "learning_curves.png"), config["scenario"])
    atomic_write_bytes(run_dir / "DONE", time.strftime("%Y-%m-%d %H:%M:%S\n").encode())
    point_latest(run_dir, config)
