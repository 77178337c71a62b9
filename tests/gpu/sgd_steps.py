"""Five Caffe SGD steps of scenario 4's setup, on whatever ``DEVICE`` says: run as
``DEVICE=cpu|cuda python -m tests.gpu.sgd_steps WEIGHTS OUT.npz [PERTURB]`` by
test_gpu.py, which compares the two devices. PERTURB (e.g. 3e-7) multiplies every
input by 1 + PERTURB * N(0, 1): the CPU's own sensitivity to float32 rounding,
against which the GPU's difference is judged. Dropout is off (its random streams are another
question than the solver's arithmetic); everything else is scenario 4: the
weights of WEIGHTS, new heads, conv1/conv2 frozen, lr/decay multipliers,
momentum, weight decay.

OUT.npz: every parameter before (``before/NAME``) and after (``after/NAME``), the
first step's update of each trained one (``first/NAME``: its momentum history
then, free of the rounding that ``after - before`` suffers), the five losses,
and the op classes of the compiled step (``ops``).
"""
import sys

import numpy as np

import models  # noqa: F401  (Theano's flags for DEVICE, before Lasagne imports it)
import lasagne
from models.solver import learning_rate
from pipeline.recipe.config import load_scenario, num_classes
from pipeline.learn.finetune import build_finetune_net, compile_training


def main(weights, out, perturb=0.0, steps=5, batch=8):
    config = load_scenario("4", ["solver.base_lr=0.00001"])  # stable on random weights
    _, _, net, heads = build_finetune_net(config, num_classes(config), weights)
    for layer in net.values():
        if isinstance(layer, lasagne.layers.DropoutLayer):
            layer.p = 0.0
    step, rate, histories, _ = compile_training(net, heads, config)
    params = lasagne.layers.get_all_params(list(net.values()))
    names = ["%s/%d" % (p.name, i) for i, p in enumerate(params)]
    rng, noise = np.random.RandomState(7), np.random.RandomState(99)
    saved = {"before/" + n: p.get_value() for n, p in zip(names, params)}
    losses = []
    for it in range(steps):
        x = rng.normal(0, 1, (batch, 3, 224, 224)).astype(np.float32)
        x = (x * (1 + perturb * noise.normal(size=x.shape))).astype(np.float32)
        y = rng.randint(0, 2, batch).astype(np.int32)
        rate.set_value(np.float32(learning_rate(config["solver"], it)))
        losses.append(step(x, y, np.ones(batch, np.float32))[0])
        if it == 0:  # the first update alone: the gradient of one batch, scaled
            saved.update({"first/" + n: histories[p].get_value() for n, p in zip(names, params)
                          if p in histories})
    saved.update({"after/" + n: p.get_value() for n, p in zip(names, params)})
    ops = sorted({type(node.op).__name__ for node in step.maker.fgraph.apply_nodes})
    np.savez(out, losses=np.array(losses), ops=np.array(ops), **saved)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
