"""Caffe's SGD solver (sgd_solver.cpp semantics) in Theano.

Per parameter and iteration, with rate = learning_rate(solver, it):

    diff    = dLoss/dw + weight_decay * decay_mult * w
    history = momentum * history + rate * lr_mult * diff
    w       = w - history

A parameter with ``lr_mult == 0`` is frozen: it is left out of ``T.grad``, so
its gradient is not computed at all. The loss is the batch mean (the caller's).
``iter_size`` > 1 (gradient accumulation) is not supported.
"""
import math
import re

import numpy as np
import theano
import theano.tensor as T

DEFAULTS = {"lr_policy": "fixed", "gamma": 0.1, "power": 1.0, "stepsize": 1, "stepvalue": [],
            "max_iter": 1, "momentum": 0.9, "weight_decay": 0.0}


def learning_rate(solver, it):
    """Caffe's rate at iteration ``it`` for ``solver`` (a dict with base_lr, lr_policy...)."""
    s = dict(DEFAULTS, **solver)
    base, policy, gamma, power = float(s["base_lr"]), s["lr_policy"], float(s["gamma"]), float(s["power"])
    if policy == "fixed":
        return base
    if policy == "step":
        return base * gamma ** (it // int(s["stepsize"]))
    if policy == "exp":
        return base * gamma ** it
    if policy == "inv":
        return base * (1 + gamma * it) ** (-power)
    if policy == "multistep":
        return base * gamma ** sum(1 for v in s["stepvalue"] if it >= int(v))
    if policy == "poly":
        return base * (1 - float(it) / int(s["max_iter"])) ** power
    if policy == "sigmoid":
        return base / (1 + math.exp(-gamma * (it - int(s["stepsize"]))))
    raise ValueError("unknown lr_policy %r" % policy)


def read_solver_prototxt(path):
    """The settings of a Caffe ``solver.prototxt`` (text format) as a dict.

    Numbers become int/float, quoted strings and enums stay strings, the
    repeated ``stepvalue`` becomes a list. Raises ValueError naming the file
    and line for a line that is not ``key: value``.
    """
    settings = {"stepvalue": []}
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"(\w+)\s*:\s*(.+)", line)
            if not m:
                raise ValueError("%s:%d: not a 'key: value' line: %r" % (path, lineno, line))
            key, raw = m.group(1), m.group(2).strip()
            if raw.startswith('"') and raw.endswith('"'):
                value = raw[1:-1]
            elif re.fullmatch(r"[-+]?\d+", raw):
                value = int(raw)
            else:
                try:
                    value = float(raw)
                except ValueError:
                    value = raw
            if key == "stepvalue":
                settings["stepvalue"].append(value)
            else:
                settings[key] = value
    return settings


def sgd_updates(loss, params, rate, momentum, weight_decay):
    """Theano updates of one Caffe SGD step.

    params: list of (shared variable, lr_mult, decay_mult). rate: a scalar
    (shared) variable holding the current rate. Returns (updates, histories),
    histories being {parameter: its momentum history shared variable}.
    """
    trainable = [(p, lr, dm) for p, lr, dm in params if lr != 0]
    if not trainable:
        return [], {}
    grads = T.grad(loss, [p for p, _, _ in trainable])
    updates, histories = [], {}
    for (p, lr_mult, decay_mult), g in zip(trainable, grads):
        value = p.get_value(borrow=True)
        history = theano.shared(np.zeros(value.shape, value.dtype), name="history/" + str(p.name),
                                broadcastable=p.broadcastable)
        diff = g
        if weight_decay * decay_mult:
            diff = diff + np.float32(weight_decay * decay_mult) * p
        new_history = np.float32(momentum) * history + rate * np.float32(lr_mult) * diff
        updates += [(history, new_history), (p, p - new_history)]
        histories[p] = history
    return updates, histories


def layer_multipliers(net, frozen=(), new_layers=(), new_mults=((10, 20), (1, 0))):
    """(parameter, lr_mult, decay_mult) for every conv / dense parameter of ``net``.

    Caffe's defaults: weights 1/1, biases 2/0. Layers in ``new_layers`` (fresh
    classifiers) get ``new_mults`` = ((w lr, b lr), (w decay, b decay)), as in
    Caffe's fine-tuning example (10/20, 1/0). A layer whose name starts with
    one of the ``frozen`` prefixes gets lr_mult 0.
    """
    from .googlenet import param_layers
    out = []
    for layer in param_layers(net):
        if any(layer.name.startswith(prefix) for prefix in frozen):
            (w_lr, b_lr), (w_dm, b_dm) = (0, 0), (1, 0)
        elif layer.name in new_layers:
            (w_lr, b_lr), (w_dm, b_dm) = new_mults
        else:
            (w_lr, b_lr), (w_dm, b_dm) = (1, 2), (1, 0)
        out += [(layer.W, w_lr, w_dm), (layer.b, b_lr, b_dm)]
    return out
