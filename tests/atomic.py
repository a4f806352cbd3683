"""The fused ops of microgpt.py, composed from atomic Value ops only (+ - * / ** exp log tanh).

They are the reference the fused ops are tested against, and the "atomic" model of the
benchmark: `use_atomic_ops()` swaps them into microgpt so the same model code builds one node
per atomic op, as the first, plain version of microgpt did.
"""
import math
from unittest import mock

import microgpt


def vsum(xs):
    return sum(xs)


def dot(ws, xs):
    return sum(w * x for w, x in zip(ws, xs))


def linear(x, w):
    return [dot(row, x) for row in w]


def softmax(logits):
    m = max(z.data for z in logits)  # a constant shift: no gradient flows through it
    exps = [(z - m).exp() for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def cross_entropy(logits, target):
    return -softmax(logits)[target].log()


def layernorm(x, weight, bias, eps=1e-5):
    n = len(x)
    mean = sum(x) / n
    var = sum((xi - mean) ** 2 for xi in x) / n
    rstd = (var + eps) ** -0.5
    return [(xi - mean) * rstd * w + b for xi, w, b in zip(x, weight, bias)]


def gelu(x):
    c = math.sqrt(2.0 / math.pi)
    return [0.5 * xi * (1.0 + (c * (xi + 0.044715 * xi ** 3)).tanh()) for xi in x]


def use_atomic_ops():
    """A context manager inside which microgpt's model is built from atomic ops only."""
    return mock.patch.multiple(microgpt, vsum=vsum, dot=dot, linear=linear, softmax=softmax,
                               cross_entropy=cross_entropy, layernorm=layernorm, gelu=gelu)
