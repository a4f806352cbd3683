"""microgpt: a complete GPT, trained and sampled, in one file of pure Python.

Read it top to bottom: dataset, tokenizer, autograd, model, loss, optimizer, training,
sampling, and the command line. `python microgpt.py` trains on names.txt and prints new names.
"""
import argparse
import functools
import gc
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

# ------------------------------------------------------------------------------------------------
# Dataset: one document per line. We hold some documents out (validation) so we can tell
# learning the language of the names from memorizing the training list.


def load_docs(path):
    """The documents in the UTF-8 text file `path`: one per line, stripped, blank lines dropped.
    Raises ValueError, saying what is wrong, if the file cannot be read or has no documents."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: ignore a byte-order mark
            docs = [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        raise ValueError(f"input file {path} does not exist: give a text file with one document "
                         f"per line with --input-file")
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory: give a text file with one document per line")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): "
                         f"save it as UTF-8")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}")
    if not docs:
        raise ValueError(f"{path} has no documents: it is empty or has only blank lines")
    return docs


def split_docs(docs, seed):
    """Shuffle with `seed`, then hold out 10% of the documents, at most 1,000 (makemore's rule).

    Returns (train, val), two lists of strings."""
    docs = list(docs)
    random.Random(seed).shuffle(docs)
    n_val = min(1000, len(docs) // 10)
    return docs[n_val:], docs[:n_val]


# ------------------------------------------------------------------------------------------------
# Tokenizer: each character is a token. One extra token, BOS, marks where a document begins
# and, predicted as the next token, where it ends.


def encode(doc, chars):
    """Map a string to token ids: chars[i] has id i (chars is the sorted vocabulary)."""
    stoi = {ch: i for i, ch in enumerate(chars)}
    return [stoi[ch] for ch in doc]


def decode(ids, chars):
    """Map token ids (without BOS) back to a string."""
    return "".join(chars[i] for i in ids)


# ------------------------------------------------------------------------------------------------
# Autograd: every number in the model is a Value that remembers which Values it was computed
# from (its children) and the local derivative of itself with respect to each of them.
# backward() applies the chain rule: walk the graph from the output back to the leaves, and
# hand each child (local gradient) * (gradient of the output with respect to this node).


class Value:
    """A scalar in a computation graph: `data` (float) and `grad` (d output / d this Value,
    filled in by backward())."""

    __slots__ = ("data", "grad", "_children", "_local_grads", "_visited")  # millions are made

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads
        self._visited = None  # which backward() call last reached this node

    def __add__(self, other):  # a + b;  d/da = 1, d/db = 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):  # a * b;  d/da = b, d/db = a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):  # a ** k for a plain number k;  d/da = k * a ** (k - 1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def exp(self):  # e ** a;  d/da = e ** a
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self):  # ln a;  d/da = 1 / a
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def tanh(self):  # tanh a;  d/da = 1 - tanh(a) ** 2
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,))

    def relu(self):  # max(0, a);  d/da = 1 if a > 0 else 0
        return Value(max(0.0, self.data), (self,), (float(self.data > 0),))

    # The rest are compositions of the ops above, so they need no gradients of their own.
    def __neg__(self):  # -a
        return self * -1.0

    def __sub__(self, other):  # a - b
        return self + (-other)

    def __truediv__(self, other):  # a / b
        return self * other ** -1.0

    __radd__ = __add__  # 2 + a is a + 2
    __rmul__ = __mul__  # 2 * a is a * 2

    def __rsub__(self, other):  # 2 - a
        return -self + other

    def __rtruediv__(self, other):  # 2 / a
        return self ** -1.0 * other

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def backward(self):
        """Add d self / d v to v.grad for every Value v that self was computed from. Any scalar
        can be the start; the caller resets grads to 0 between uses (Adam's step does).

        The graph is walked with an explicit stack, not recursion, so a deep graph cannot hit
        Python's recursion limit. Children come before parents in `order` (a topological order).
        """
        visit = object()  # this call's mark: a node carrying it has been reached already
        self._visited = visit
        order, stack = [], [(self, iter(self._children))]
        while stack:  # depth-first: a node joins `order` once all its children have
            node, children = stack[-1]
            for child in children:
                if child._children and child._visited is not visit:  # leaves need no order
                    child._visited = visit
                    stack.append((child, iter(child._children)))
                    break
            else:
                stack.pop()
                order.append(node)
        self.grad = 1.0
        for node in reversed(order):  # parents before children: each grad is complete when used
            grad = node.grad
            if grad:  # a zero gradient has nothing to hand on
                for child, local_grad in zip(node._children, node._local_grads):
                    child.grad += local_grad * grad


# ------------------------------------------------------------------------------------------------
# Fused ops. A 16-wide dot product built from * and + is 31 nodes; a softmax over 27 logits about
# a hundred. Each function below is one well-known piece of math that the atomic ops could
# build, computed instead in one step as one node per output, with its local gradients worked
# out on paper. Same math, same gradients (the tests check that against the atomic versions);
# far fewer nodes to create and walk, which is where a scalar autograd spends its time.


def vsum(xs):  # x_0 + x_1 + ...;  d/dx_i = 1
    return Value(sum(x.data for x in xs), tuple(xs), (1.0,) * len(xs))


def dot(ws, xs):  # w_0 x_0 + w_1 x_1 + ... (a neuron's weighted sum);  d/dw_i = x_i, d/dx_i = w_i
    wd, xd = [w.data for w in ws], [x.data for x in xs]
    y = 0.0
    for w, x in zip(wd, xd):
        y += w * x
    return Value(y, ws + xs, xd + wd)


def linear(x, w):
    """y = w @ x, no bias: x is a list of n_in Values, w is [n_out][n_in]; returns n_out Values.
    Each output is dot(row, x), written out so that x's numbers are read once for all rows."""
    xd = [xi.data for xi in x]
    out = []
    for row in w:
        wd = [wi.data for wi in row]
        y = 0.0
        for w_j, x_j in zip(wd, xd):
            y += w_j * x_j
        out.append(Value(y, row + x, xd + wd))
    return out


def softmax(logits):
    """p_i = exp(z_i) / sum_j exp(z_j) over a list of Values; dp_i/dz_j = p_i (delta_ij - p_j).
    Subtracting max(z) first changes nothing in the math and keeps exp from overflowing."""
    zs = [z.data for z in logits]
    m = max(zs)
    exps = [math.exp(z - m) for z in zs]
    total = sum(exps)
    probs = [e / total for e in exps]
    return [Value(p_i, logits, [p_i * ((i == j) - p_j) for j, p_j in enumerate(probs)])
            for i, p_i in enumerate(probs)]


def cross_entropy(logits, target):
    """-log softmax(logits)[target]: the surprise, in nats, at the correct next token `target`.
    loss = log(sum_j exp(z_j)) - z_target;  d loss/dz_j = softmax(z)_j - (1 if j == target)."""
    zs = [z.data for z in logits]
    m = max(zs)
    exps = [math.exp(z - m) for z in zs]
    total = sum(exps)
    return Value(math.log(total) + m - zs[target], logits,
                 [e / total - (j == target) for j, e in enumerate(exps)])


def layernorm(x, weight, bias, eps=1e-5):
    """LayerNorm (Ba et al. 2016): y_i = w_i (x_i - mean) rstd + b_i, rstd = 1/sqrt(var + eps),
    so the next layer sees inputs of a steady scale. x, weight, bias and y: lists of n Values.
    mean and rstd are nodes of their own, so each y_i needs only five local gradients:
    dy_i/dx_i = w_i rstd, dy_i/dmean = -w_i rstd, dy_i/drstd = w_i (x_i - mean),
    dy_i/dw_i = (x_i - mean) rstd, dy_i/db_i = 1."""
    n = len(x)
    xd = [xi.data for xi in x]
    mu = sum(xd) / n
    r = (sum((v - mu) ** 2 for v in xd) / n + eps) ** -0.5
    mean = Value(mu, x, [1.0 / n] * n)  # d mean/dx_j = 1/n
    rstd = Value(r, x, [-r ** 3 * (v - mu) / n for v in xd])  # d rstd/dx_j = -rstd^3 (x_j - mean)/n
    return [Value(w.data * (xi.data - mu) * r + b.data, (xi, mean, rstd, w, b),
                  (w.data * r, -w.data * r, w.data * (xi.data - mu), (xi.data - mu) * r, 1.0))
            for xi, w, b in zip(x, weight, bias)]


def gelu(x):
    """GELU in GPT-2's tanh form (Hendrycks & Gimpel 2016), elementwise over a list of Values:
    y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3);
    dy/dx = (1 + tanh u)/2 + x/2 (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    c = math.sqrt(2.0 / math.pi)
    out = []
    for xi in x:
        v = xi.data
        t = math.tanh(c * (v + 0.044715 * v * v * v))
        grad = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * c * (1 + 3 * 0.044715 * v * v)
        out.append(Value(0.5 * v * (1 + t), (xi,), (grad,)))
    return out


# ------------------------------------------------------------------------------------------------
# Model: GPT-2 (Radford et al. 2019) in miniature. A token's embedding plus its position's
# embedding goes through n_layer blocks; each block lets the token look at earlier tokens
# (attention, Vaswani et al. 2017) and then think on its own (MLP). Residual connections
# (x = x + f(x)) keep a clean path for the gradient; LayerNorm before each f keeps scales sane.


@dataclass
class GPTConfig:
    vocab_size: int  # characters + BOS
    block_size: int  # longest sequence the model sees: the positions in wpe
    n_layer: int
    n_head: int
    n_embd: int


def init_params(config, rng, std=0.08):
    """All parameters in one ordered dict, named as in GPT-2. Matrices are lists of rows of Values
    ([out][in]); vectors are lists of Values. Weights start as small Gaussian noise (different,
    so that neurons learn different things; small, so that the first logits are nearly equal and
    the loss starts near ln(vocab_size)); LayerNorm starts as the identity (weight 1, bias 0)."""
    def matrix(n_out, n_in):
        return [[Value(rng.gauss(0.0, std)) for _ in range(n_in)] for _ in range(n_out)]

    def vector(n, value):
        return [Value(value) for _ in range(n)]

    C = config.n_embd
    params = {"wte": matrix(config.vocab_size, C),  # [vocab_size][n_embd]: one row per token
              "wpe": matrix(config.block_size, C)}  # [block_size][n_embd]: one row per position
    for i in range(config.n_layer):
        params[f"h.{i}.ln_1.weight"], params[f"h.{i}.ln_1.bias"] = vector(C, 1.0), vector(C, 0.0)
        for name in ("wq", "wk", "wv", "wo"):  # query, key, value, output: [n_embd][n_embd]
            params[f"h.{i}.attn.{name}"] = matrix(C, C)
        params[f"h.{i}.ln_2.weight"], params[f"h.{i}.ln_2.bias"] = vector(C, 1.0), vector(C, 0.0)
        params[f"h.{i}.mlp.fc"] = matrix(4 * C, C)  # [4 n_embd][n_embd]
        params[f"h.{i}.mlp.proj"] = matrix(C, 4 * C)  # [n_embd][4 n_embd]
    params["ln_f.weight"], params["ln_f.bias"] = vector(C, 1.0), vector(C, 0.0)
    params["lm_head"] = matrix(config.vocab_size, C)  # [vocab_size][n_embd]: a logit per token
    return params


def parameters(params):
    """Every parameter Value in `params`, flattened in a fixed order."""
    flat = []
    for p in params.values():
        for row in p:
            flat.extend(row if isinstance(row, list) else [row])
    return flat


def gpt(token, pos, kv_cache, params, config):
    """Run one token at position `pos` through the model; return vocab_size logits (Values).

    kv_cache holds, per layer, the keys and values of the positions before this one; this
    token's key and value are appended to it. Attending only to what is in the cache is what
    makes the model causal: a position can never see a later one.
    """
    x = [t + p for t, p in zip(params["wte"][token], params["wpe"][pos])]  # [n_embd]
    head_dim = config.n_embd // config.n_head
    # q.k sums head_dim products, so its spread grows like sqrt(head_dim); dividing by that keeps
    # the scores near unit scale, so the softmax stays soft instead of picking a single position
    scale = 1.0 / math.sqrt(head_dim)
    for i in range(config.n_layer):
        h = layernorm(x, params[f"h.{i}.ln_1.weight"], params[f"h.{i}.ln_1.bias"])
        q = linear(h, params[f"h.{i}.attn.wq"])
        keys, values = kv_cache[i]
        keys.append(linear(h, params[f"h.{i}.attn.wk"]))
        values.append(linear(h, params[f"h.{i}.attn.wv"]))
        heads = []  # [n_embd]: each head's output, side by side
        for s in range(0, config.n_embd, head_dim):  # each head attends in its own slice
            scores = [dot(q[s:s + head_dim], k[s:s + head_dim]) * scale for k in keys]  # [pos + 1]
            weights = softmax(scores)
            heads += [dot(weights, [v[j] for v in values]) for j in range(s, s + head_dim)]
        x = [a + b for a, b in zip(x, linear(heads, params[f"h.{i}.attn.wo"]))]
        h = layernorm(x, params[f"h.{i}.ln_2.weight"], params[f"h.{i}.ln_2.bias"])
        h = linear(gelu(linear(h, params[f"h.{i}.mlp.fc"])), params[f"h.{i}.mlp.proj"])
        x = [a + b for a, b in zip(x, h)]
    x = layernorm(x, params["ln_f.weight"], params["ln_f.bias"])
    return linear(x, params["lm_head"])  # [vocab_size]


def empty_cache(config):
    """A fresh KV cache: per layer, a list of keys and a list of values."""
    return [([], []) for _ in range(config.n_layer)]


# ------------------------------------------------------------------------------------------------
# Loss: a document is [BOS] + its characters + [BOS]; at every position the model predicts the
# next token. The loss is the mean cross-entropy over every position of every document.


def doc_losses(tokens, params, config):
    """Cross-entropy (a Value) at each position of `tokens`: L+1 of them for L characters, or
    fewer if the document is longer than block_size."""
    kv_cache = empty_cache(config)
    n = min(config.block_size, len(tokens) - 1)
    return [cross_entropy(gpt(tokens[pos], pos, kv_cache, params, config), tokens[pos + 1])
            for pos in range(n)]


def batch_loss(docs, params, config):
    """Mean cross-entropy (a Value) over every position of every token list in `docs`."""
    losses = [loss for tokens in docs for loss in doc_losses(tokens, params, config)]
    return vsum(losses) * (1.0 / len(losses))


def backward_batch(docs, params, config):
    """Add the gradient of batch_loss(docs) to every parameter's .grad; return the loss (float).

    One document at a time (gradient accumulation): the mean over all positions is a sum of one
    share per document, the gradient of a sum is the sum of the gradients, and small graphs are
    faster to build and walk than one big one."""
    n_positions = sum(min(config.block_size, len(t) - 1) for t in docs)
    total = 0.0
    for tokens in docs:
        share = vsum(doc_losses(tokens, params, config)) * (1.0 / n_positions)
        share.backward()
        total += share.data
    return total


# ------------------------------------------------------------------------------------------------
# Optimizer: Adam (Kingma & Ba 2015). Each parameter moves against a running average of its
# gradient (m), divided by a running average of its squared gradient (v), so every parameter
# takes steps of about the learning rate whatever the scale of its gradient.


def lr_at(step, max_steps, learning_rate):
    """Learning rate at `step` (0-based) of a max_steps run: linear warmup over the first 2% of
    the steps, then linear decay to 0 at the end. Warmup keeps the first Adam steps small,
    while its running averages are still poor estimates; the decay lets the weights settle."""
    warmup = max(1, max_steps // 50)
    if step < warmup:
        return learning_rate * (step + 1) / warmup
    return learning_rate * (max_steps - step) / (max_steps - warmup)


def adam_step(flat, m, v, t, lr, beta1=0.9, beta2=0.99, eps=1e-8):
    """One Adam update of the Values in `flat` from their .grad; m, v are lists of floats of the
    same length, updated in place; t is the 1-based step count. Grads are reset to 0."""
    for i, p in enumerate(flat):
        m[i] = beta1 * m[i] + (1 - beta1) * p.grad
        v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
        # m and v start at 0, so early on they underestimate; dividing by (1 - beta^t) undoes it
        m_hat = m[i] / (1 - beta1 ** t)
        v_hat = v[i] / (1 - beta2 ** t)
        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)
        p.grad = 0.0


# ------------------------------------------------------------------------------------------------
# Training: batches of documents, each pass over the data in its own random order. Every so
# often, and at the end, we measure the loss on the held-out validation documents.


def evaluate(docs, params, config):
    """Mean per-token loss (float, nats) over all token lists in `docs` (NaN if there are none).
    No gradients are needed, so each document's graph is dropped as soon as its loss is read."""
    total, count = 0.0, 0
    for tokens in docs:
        losses = doc_losses(tokens, params, config)
        total += sum(loss.data for loss in losses)
        count += len(losses)
    return total / count if count else math.nan


@functools.lru_cache(maxsize=2)  # each pass's order is made once
def epoch_order(n_docs, seed, epoch):
    """The order of the training documents in pass `epoch` (a list of n_docs indices): a function
    of (seed, epoch) alone, so a resumed run sees the batches an uninterrupted one would."""
    order = list(range(n_docs))
    random.Random(f"{seed}/{epoch}").shuffle(order)
    return order


def batch_at(docs, seed, position, batch_size):
    """The batch_size documents that follow the first `position` of training (over all passes)."""
    return [docs[epoch_order(len(docs), seed, k // len(docs))[k % len(docs)]]
            for k in range(position, position + batch_size)]


def train(params, config, train_docs, val_docs, state, args, save=None):
    """Train `params` in place with Adam from state["step"] to args.max_steps.

    state: {"seed", "step", "position" (documents consumed), "adam_m", "adam_v"}, updated in
    place; save(state) is called at each evaluation. Ctrl-C finishes the current step and stops.
    Returns True if stopped by Ctrl-C. Raises FloatingPointError if the loss is NaN or infinite.
    """
    flat = parameters(params)
    m, v = state["adam_m"], state["adam_v"]
    interrupted = []
    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(1))
    try:
        first = state["step"]
        while state["step"] < args.max_steps and not interrupted:
            step, t0 = state["step"], time.time()
            batch = batch_at(train_docs, state["seed"], state["position"], args.batch_size)
            try:
                loss = backward_batch(batch, params, config)
            except ArithmeticError:  # a float overflowed
                loss = math.inf
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} at step {step + 1}; try a "
                                         f"lower --learning-rate (it was {args.learning_rate})")
            adam_step(flat, m, v, step + 1, lr_at(step, args.max_steps, args.learning_rate))
            state["step"], state["position"] = step + 1, state["position"] + args.batch_size
            line = (f"step {step + 1:5d}/{args.max_steps} | train loss {loss:.4f} | "
                    f"{(time.time() - t0) * 1000:5.1f} ms/step")
            evaluating = (step + 1) % args.eval_every == 0 and step + 1 < args.max_steps
            if evaluating:
                line += f" | val loss {evaluate(val_docs, params, config):.4f}"
                if save:
                    save(state)
            if evaluating or step == first or (step + 1) % 100 == 0 or step + 1 == args.max_steps:
                print(line, flush=True)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    return bool(interrupted)


def gradcheck(params, config, docs, rng, n=20, h=1e-5):
    """Largest relative error between backpropagated gradients and central finite differences,
    (L(p + h) - L(p - h)) / 2h, over n parameters (sampled among those with a gradient) of the
    loss on `docs`. Returns (largest error, parameters checked). Near 1e-7 or below means the
    autograd and the model agree."""
    batch_loss(docs, params, config).backward()
    worst = 0.0
    with_grad = [p for p in parameters(params) if p.grad]
    for p in rng.sample(with_grad, min(n, len(with_grad))):
        old = p.data
        p.data = old + h
        up = batch_loss(docs, params, config).data
        p.data = old - h
        down = batch_loss(docs, params, config).data
        p.data = old
        numeric = (up - down) / (2 * h)
        worst = max(worst, abs(p.grad - numeric) / max(abs(p.grad), abs(numeric), 1e-8))
    return worst, min(n, len(with_grad))


# ------------------------------------------------------------------------------------------------
# Sampling: start from BOS (and the prompt, if any) and repeatedly pick the next character from
# the model's predicted distribution, until the model predicts BOS (the end) or we run out of
# positions.


def sample(params, config, chars, rng, temperature=1.0, top_k=None, prompt=""):
    """One new document (a string) that starts with `prompt`.

    Logits are divided by `temperature` before the softmax: below 1 the model plays safe, above
    1 it takes chances, and 0 means always the most likely character (greedy). top_k keeps only
    the k most likely characters. Prompt characters must be in `chars`."""
    bos = len(chars)
    tokens, kv_cache = [bos] + encode(prompt, chars), empty_cache(config)
    for pos in range(config.block_size):
        logits = [z.data for z in gpt(tokens[pos], pos, kv_cache, params, config)]
        if pos + 1 < len(tokens):  # still reading the prompt
            continue
        if top_k:
            kth = sorted(logits, reverse=True)[min(top_k, len(logits)) - 1]
            logits = [z if z >= kth else -math.inf for z in logits]
        if temperature == 0:
            token = logits.index(max(logits))
        else:
            m = max(logits)
            weights = [math.exp((z - m) / temperature) for z in logits]
            token = rng.choices(range(len(logits)), weights=weights)[0]
        if token == bos:
            break
        tokens.append(token)
    return decode(tokens[1:], chars)


# ------------------------------------------------------------------------------------------------
# Checkpoints: the model and everything needed to resume training, as JSON. Python writes each
# float with enough digits to read back exactly, so a resumed run matches an uninterrupted one.


def save_checkpoint(path, params, config, chars, state):
    """Write the model and training state to `path`, via a temporary file renamed into place,
    so a crash never leaves a half-written checkpoint. Raises ValueError if it cannot."""
    ckpt = {"format": "microgpt", "version": 1,
            "config": {k: getattr(config, k)
                       for k in ("n_layer", "n_head", "n_embd", "block_size")},
            "chars": "".join(chars),
            "params": {name: [[v.data for v in row] if isinstance(row, list) else row.data
                              for row in p] for name, p in params.items()},
            **state}
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(ckpt, f)
            os.replace(tmp, path)
        except BaseException:
            os.remove(tmp)
            raise
    except OSError as e:
        raise ValueError(f"cannot write the checkpoint {path}: {e.strerror}")


def load_checkpoint(path):
    """Read a checkpoint written by save_checkpoint: returns (params, config, chars, state).
    Raises ValueError, with what is wrong, if it is missing, damaged or does not fit its config."""
    try:
        with open(path, encoding="utf-8") as f:
            ckpt = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist: train one first with --out {path}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable microgpt checkpoint "
                         f"(truncated or not JSON: {e})")
    if not isinstance(ckpt, dict) or ckpt.get("format") != "microgpt":
        raise ValueError(f"{path} is not a microgpt checkpoint")
    if ckpt.get("version") != 1:
        raise ValueError(f"{path} is checkpoint version {ckpt.get('version')}; "
                         f"this microgpt reads version 1")
    try:
        chars = list(ckpt["chars"])
        config = GPTConfig(vocab_size=len(chars) + 1, **ckpt["config"])
        check_config(config)
        params = init_params(config, random.Random(0))
        saved = ckpt["params"]
        if set(saved) != set(params):
            raise ValueError(f"its parameters {sorted(saved)} are not those of its config")

        def shape(p):  # a matrix's row lengths, or None per entry of a vector
            return [len(row) if isinstance(row, list) else None for row in p]
        for name, p in params.items():
            if shape(saved[name]) != shape(p):
                raise ValueError(f"{name} does not have the shape its config gives")
            for value, number in zip(parameters({name: p}), parameters({name: saved[name]})):
                value.data = float(number)
        n = len(parameters(params))
        state = {k: int(ckpt[k]) for k in ("seed", "step", "position")}
        state.update({k: [float(x) for x in ckpt[k]] for k in ("adam_m", "adam_v")})
        if len(state["adam_m"]) != n or len(state["adam_v"]) != n:
            raise ValueError("its Adam moments do not match its parameters")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is a damaged microgpt checkpoint: {e}")
    return params, config, chars, state


# ------------------------------------------------------------------------------------------------
# Command line: flags named as in makemore. Every bad input ends in one line on stderr,
# "microgpt: error: ...", and exit status 2, with nothing overwritten.


def build_parser():
    parser = argparse.ArgumentParser(prog="microgpt", description="Train a tiny GPT on a file of "
                                     "documents (one per line) and sample new ones.")
    arg = parser.add_argument
    arg("--input-file", "-i", default=None,
        help="UTF-8 text, one document per line (default: names.txt beside microgpt.py)")
    arg("--max-steps", type=int, default=1200, help="total training steps (default: 1200)")
    arg("--seed", type=int, default=42, help="random seed for data, weights and samples")
    arg("--n-layer", type=int, default=1, help="transformer blocks (default: 1)")
    arg("--n-head", type=int, default=4, help="attention heads per block (default: 4)")
    arg("--n-embd", type=int, default=12,
        help="embedding width, a multiple of --n-head (default: 12)")
    arg("--block-size", type=int, default=None,
        help="longest sequence; longer documents are cut (default: longest document + 1)")
    arg("--batch-size", "-b", type=int, default=8, help="documents per step (default: 8)")
    arg("--learning-rate", "-l", type=float, default=0.015,
        help="peak Adam learning rate (default: 0.015)")
    arg("--eval-every", type=int, default=600,
        help="steps between validation losses (default: 600)")
    arg("--num-samples", type=int, default=20, help="samples to print at the end (default: 20)")
    arg("--temperature", type=float, default=1.0,
        help="sampling temperature; 0 is greedy (default: 1)")
    arg("--top-k", type=int, default=None, help="sample only from the k most likely characters")
    arg("--prompt", default="", help="every sample starts with this text")
    arg("--out", "-o", default=None, help="save the model here (JSON checkpoint)")
    arg("--resume", action="store_true", help="continue training the checkpoint in --out")
    arg("--sample-only", action="store_true", help="only sample from the checkpoint in --out")
    arg("--gradcheck", action="store_true",
        help="compare backprop gradients with finite differences, then exit")
    # one line on stderr, no usage block: the message says what to fix
    parser.error = lambda message: parser.exit(2, f"microgpt: error: {message}\n")
    return parser


def check_config(config):
    """Raise ValueError unless the model sizes are positive and n_embd splits into the heads."""
    for name in ("n_layer", "n_head", "n_embd", "block_size"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be a positive integer, not {getattr(config, name)!r}")
    if config.n_embd % config.n_head:
        raise ValueError(f"--n-embd ({config.n_embd}) must be divisible by "
                         f"--n-head ({config.n_head})")


def check_args(args):
    """Raise ValueError for flags that cannot work, before anything is read or written."""
    for flag in ("max_steps", "batch_size", "eval_every"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1, "
                             f"not {getattr(args, flag)}")
    if args.num_samples < 0:
        raise ValueError(f"--num-samples must be 0 or more, not {args.num_samples}")
    if not args.learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive, not {args.learning_rate}")
    if not args.temperature >= 0:
        raise ValueError(f"--temperature must be 0 (greedy) or more, not {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, not {args.top_k}")
    if (args.resume or args.sample_only) and not args.out:
        raise ValueError("--resume and --sample-only need the checkpoint: give it with --out FILE")
    if args.out and not (args.resume or args.sample_only) and os.path.exists(args.out):
        raise ValueError(f"{args.out} already exists: continue it with --resume, "
                         f"or choose another --out")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError(f"cannot save to {args.out}: its directory does not exist")


def prepare(args):
    """Read the data and build the model, or load it from the checkpoint in --out.
    Returns (docs, params, config, chars, state); raises ValueError for bad input."""
    check_args(args)
    docs = load_docs(args.input_file)
    if args.resume or args.sample_only:
        params, config, chars, state = load_checkpoint(args.out)
        unknown = sorted(set("".join(docs)) - set(chars))
        if unknown and args.resume:
            raise ValueError(f"{args.input_file} has characters the checkpoint does not know: "
                             f"{''.join(unknown)!r}; resume with the file it was trained on")
    else:
        chars = sorted(set("".join(docs)))
        block_size = max(len(d) for d in docs) + 1 if args.block_size is None else args.block_size
        config = GPTConfig(vocab_size=len(chars) + 1, block_size=block_size,
                           n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
        check_config(config)
        params = init_params(config, random.Random(args.seed))
        n = len(parameters(params))
        state = {"seed": args.seed, "step": 0, "position": 0,
                 "adam_m": [0.0] * n, "adam_v": [0.0] * n}
    unknown = sorted(set(args.prompt) - set(chars))
    if unknown:
        raise ValueError(f"--prompt has characters outside the vocabulary: {''.join(unknown)!r}")
    if len(args.prompt) > config.block_size:
        raise ValueError(f"--prompt is {len(args.prompt)} characters, longer than "
                         f"block_size ({config.block_size})")
    return docs, params, config, chars, state


def run(args):
    """The program: prepare, train (unless --sample-only), report, sample. Returns True if
    training was stopped by Ctrl-C."""
    docs, params, config, chars, state = prepare(args)
    train_docs, val_docs = split_docs(docs, state["seed"])
    print(f"data: {len(docs)} documents from {args.input_file} ({len(train_docs)} train, "
          f"{len(val_docs)} val), vocab {config.vocab_size} ({len(chars)} characters + BOS)")
    cut = sum(len(d) >= config.block_size for d in docs)
    if cut:
        print(f"block_size {config.block_size}: {cut} documents longer than "
              f"{config.block_size - 1} characters are cut")
    print(f"model: {len(parameters(params))} parameters, n_layer {config.n_layer}, "
          f"n_head {config.n_head}, n_embd {config.n_embd}, block_size {config.block_size}")
    bos = len(chars)  # documents with characters outside a loaded model's vocabulary are skipped
    train_tokens, val_tokens = ([[bos] + encode(d, chars) + [bos]
                                 for d in split if set(d) <= set(chars)]
                                for split in (train_docs, val_docs))
    if args.gradcheck:
        err, n = gradcheck(params, config, train_tokens[:4], random.Random(args.seed))
        print(f"gradcheck: largest relative error {err:.2e} over {n} parameters")
        return False
    interrupted = False
    if not args.sample_only:
        def save(state):
            if args.out:
                save_checkpoint(args.out, params, config, chars, state)
        interrupted = train(params, config, train_tokens, val_tokens, state, args, save)
        save(state)
        if interrupted:
            print(f"interrupted after step {state['step']}"
                  + (f", saved to {args.out}" if args.out else ""))
        print(f"step {state['step']}: val loss {evaluate(val_tokens, params, config):.4f}"
              + ("" if val_tokens else " (the file has too few documents to hold any out)"))
    rng = random.Random(args.seed)
    seen = {**{d: "train" for d in train_docs}, **{d: "val" for d in val_docs}}
    samples = [sample(params, config, chars, rng, args.temperature, args.top_k, args.prompt)
               for _ in range(args.num_samples)]
    print(f"{len(samples)} samples, {sum(s not in seen for s in samples)} new "
          f"(the others are in the train or val data):")
    width = max([len(s) for s in samples] + [1])
    for s in samples:
        print(f"{s:<{width}}  {seen.get(s, 'new')}")
    return interrupted


def main(argv=None):
    parser = build_parser()
    try:
        here = os.path.dirname(os.path.abspath(__file__))
    except NameError:  # pasted into a notebook: no file, and sys.argv holds the kernel's arguments
        here, argv = os.getcwd(), [] if argv is None else argv
    args = parser.parse_args(argv)
    args.input_file = args.input_file or os.path.join(here, "names.txt")
    # The graph has no reference cycles, so CPython's reference counting frees it as soon as it
    # is done with; its cycle collector would only rescan millions of live Values again and
    # again. (PyPy has no reference counting: its own collector is best left on.)
    if sys.implementation.name == "cpython":
        gc.disable()
    try:
        interrupted = run(args)
    except (ValueError, FloatingPointError) as e:  # bad input, or a loss that blew up
        parser.error(str(e))
    except KeyboardInterrupt:  # a second Ctrl-C, after training stopped
        interrupted = True
    finally:
        gc.enable()
    if interrupted:
        sys.exit(130)  # the shell's code for "stopped by Ctrl-C"


if __name__ == "__main__":
    main()
