r"""microgpt: a complete GPT, trained and sampled, in one file of pure Python.

A GPT (generative pre-trained transformer) is a language model. Given a text so far, here one
character at a time, it gives each possible next character a probability. Training nudges its
numbers so that the character that really came next gets a higher probability; sampling draws
one character after another to write new text.

Part 1 is the whole algorithm, written plainly. Stop there on a first read: it is a complete GPT
that trains. Part 2 trains the same model about 18 times as fast, with every gradient worked
out by hand. Part 3 is the tool around it: checkpoints, a look inside, the command line. The README
shows how to run Part 1 alone, and where each part begins.
"""
import math
import random

# ================================================================================================
# Part 1: the algorithm, plain. Each number the loss depends on is a Value, for autograd.
# ================================================================================================

# ------------------------------------------------------------------------------------------------
# Dataset. Each line of the file is a document (a name). Some are held out, the validation split:
# predicting names it never saw shows the model learned names, not the list.

def load_docs(path):
    """The documents of the UTF-8 file `path`: one per line, stripped, blank lines dropped."""
    with open(path, encoding="utf-8-sig") as f:  # -sig: skip a byte-order mark
        return [line.strip() for line in f if line.strip()]

def split_docs(docs, seed):
    """(train, val): shuffled with `seed`, 10% held out (at most 1,000)."""
    docs = list(docs)
    random.Random(seed).shuffle(docs)
    n_val = min(1000, len(docs) // 10)
    return docs[n_val:], docs[:n_val]

# ------------------------------------------------------------------------------------------------
# Tokenizer. Each character becomes its token id, its place in `chars` (the data's characters,
# sorted). One more token, BOS (beginning of sequence), has id len(chars). The characters and BOS
# make the vocabulary. A document is [BOS, characters..., BOS]; predicting BOS means "the end".

def tokenize(doc, chars):
    """The string `doc` as the model reads it: [BOS, the ids of its characters..., BOS]."""
    bos, ids = len(chars), {ch: i for i, ch in enumerate(chars)}
    return [bos] + [ids[ch] for ch in doc] + [bos]

# ------------------------------------------------------------------------------------------------
# Autograd. The loss is one number: how badly the model predicts the data. To lower it, we need
# its gradient with respect to each parameter (a number the model learns): how fast the loss
# grows as that parameter grows. Each number is a Value, a node in a graph. It keeps the Values it
# was made from (its children) and its local gradients, how much it moves as each child moves.
#
# The chain rule gives the rest: dL/da adds up dL/dc * dc/da over every Value c made from a. In
# c = a * b and L = c + a, `a` is used twice: through c it gives dL/dc * dc/da = 1 * b, and
# directly 1, so dL/da = b + 1. backward() does this from the loss back:
#     a, b = Value(2.0), Value(3.0)
#     L = a * b + a
#     L.backward()  # a.grad == 4.0 (b + 1), b.grad == 2.0 (a)

class Value:
    """A number, `data`, in a graph; L.backward() adds dL / d(this Value) to `grad`."""
    __slots__ = ("data", "grad", "_children", "_local_grads")  # smaller Values
    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads

    # The atomic ops: each gives its result and its derivative for each input.
    def __add__(self, other):  # a + b;  d/da = 1, d/db = 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))
    def __mul__(self, other):  # a * b;  d/da = b, d/db = a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))
    def __pow__(self, k):  # a ** k for a plain number k;  d/da = k a^(k - 1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))
    def exp(self):  # e^a;  d/da = e^a
        e = math.exp(self.data)
        return Value(e, (self,), (e,))
    def log(self):  # ln a;  d/da = 1 / a
        return Value(math.log(self.data), (self,), (1.0 / self.data,))
    def tanh(self):  # tanh a;  d/da = 1 - tanh(a)^2
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,))

    # The rest are made of the ops above, so they need no derivatives of their own.
    def __neg__(self):  # -a
        return self * -1.0
    def __sub__(self, other):  # a - b
        return self + (-other)
    def __truediv__(self, other):  # a / b
        return self * other ** -1.0
    __radd__ = __add__  # 2 + a (sum() starts with 0 + a)
    __rmul__ = __mul__  # 2 * a is a * 2
    def __rsub__(self, other):  # 2 - a
        return -self + other
    def __rtruediv__(self, other):  # 2 / a
        return self ** -1.0 * other

    def backward(self):
        """Add d self / d v to v.grad for every Value v self depends on (grads add up: zero them
        first). Put the nodes in topological order, each after its children, then go backwards."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # a stack: recursion stops at ~1,000 nested calls, and deep models go deeper
            v, children_done = stack.pop()
            if children_done:  # v's children are in order: v follows them
                order.append(v)
            elif v not in seen:
                seen.add(v)
                stack.append((v, True))  # back to v after its children
                for child in reversed(v._children):  # the first child on top
                    stack.append((child, False))
        self.grad = 1.0  # d self / d self
        for node in reversed(order):  # a node's grad is complete before it is passed on
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad  # the chain rule

# ------------------------------------------------------------------------------------------------
# The model's ops, made of atomic ops. A vector is a list of Values; a matrix, a list of rows.

def dot(a, b):
    """a_0 b_0 + a_1 b_1 + ...: one Value."""
    return sum(ai * bi for ai, bi in zip(a, b))

def linear(x, w):
    """y = w x, w [n_out][n_in]: each output (a neuron) is the inputs weighted by a row of w."""
    return [dot(row, x) for row in w]

def softmax(logits):
    """Scores (logits) to probabilities: p_i = exp(z_i) / sum_j exp(z_j). exp makes every score
    positive, and dividing by the total makes them sum to 1: [2, 0] gives [0.88, 0.12]."""
    m = max(z.data for z in logits)  # shifting every z changes no p_i, and keeps exp finite
    exps = [(z - m).exp() for z in logits]
    total = sum(exps)
    return [e / total for e in exps]

def cross_entropy(logits, target):
    """-ln p[target], p = softmax(logits), in nats (natural logs). A text's probability is the
    product of its p's; -ln makes it a sum: 0 if p is 1, ln 27 = 3.30 for a uniform guess of 27."""
    return -softmax(logits)[target].log()

def layernorm(x, weight, bias, eps=1e-5):
    """LayerNorm (Ba et al. 2016): x to mean 0 and variance 1, times a learned weight, plus a
    learned bias. A steady scale keeps learning from stalling or blowing up."""
    mean = sum(x) / len(x)
    var = sum((xi - mean) ** 2 for xi in x) / len(x)  # the mean squared distance from the mean
    rstd = (var + eps) ** -0.5  # 1 / standard deviation; eps keeps it finite if var is 0
    return [(xi - mean) * rstd * w + b for xi, w, b in zip(x, weight, bias)]

def gelu(x):
    """GELU (Hendrycks & Gimpel 2016), roughly a smooth max(0, x), in GPT-2's tanh form. Two
    linear layers with nothing between them act as one; a bend between them does more."""
    c = math.sqrt(2 / math.pi)
    return [0.5 * xi * (1 + (c * (xi + 0.044715 * xi ** 3)).tanh()) for xi in x]

# ------------------------------------------------------------------------------------------------
# Model: GPT-2 (Radford et al. 2019) in miniature. A token's embedding is n_embd numbers: a learned
# vector for it (a row of wte) plus one for its position (a row of wpe). Without wpe, one attention
# layer would see the tokens so far unordered ("abc" as "bac"). In each of n_layer transformer
# blocks (Vaswani et al. 2017), two branches add to x, x = x + f(x) (a residual): attention gathers
# from the tokens so far, and an MLP (multi-layer perceptron: two linear layers, a GELU between)
# works on the token alone. Through many layers, gradients multiply and can vanish or blow up;
# + passes them back whole. Each branch starts with a LayerNorm (ln_); lm_head gives the logits:
#     x = wte[token] + wpe[pos]
#     for each block: x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
#     logits = lm_head(ln_f(x))            (the README draws it, with its shapes)

class GPTConfig:
    """The model's sizes, named as in nanoGPT."""
    def __init__(self, vocab_size, block_size, n_layer=1, n_head=4, n_embd=12):
        self.vocab_size = vocab_size  # the characters and BOS (27 for names)
        self.block_size = block_size  # the most positions read: BOS and the longest document
        self.n_layer = n_layer  # transformer blocks
        self.n_head = n_head  # attention heads per block
        self.n_embd = n_embd  # numbers per token (the embedding width), a multiple of n_head

def init_params(config, rng, std=0.08):
    """Every parameter, mostly in GPT-2's names. Matrices start as Gaussian draws (standard
    deviation `std`): random, so neurons differ; small, so first probabilities are near equal."""
    def matrix(n_out, n_in):
        return [[Value(rng.gauss(0.0, std)) for _ in range(n_in)] for _ in range(n_out)]
    def vector(n, value):
        return [Value(value) for _ in range(n)]
    n_embd = config.n_embd
    params = {"wte": matrix(config.vocab_size, n_embd),  # a row per token
              "wpe": matrix(config.block_size, n_embd)}  # a row per position
    for i in range(config.n_layer):  # h.i: block i (GPT-2 calls blocks h)
        params[f"h.{i}.ln_1.weight"] = vector(n_embd, 1.0)
        params[f"h.{i}.ln_1.bias"] = vector(n_embd, 0.0)
        for name in ("wq", "wk", "wv", "wo"):  # attention's: [n_embd][n_embd]
            params[f"h.{i}.attn.{name}"] = matrix(n_embd, n_embd)
        params[f"h.{i}.ln_2.weight"] = vector(n_embd, 1.0)
        params[f"h.{i}.ln_2.bias"] = vector(n_embd, 0.0)
        params[f"h.{i}.mlp.fc"] = matrix(4 * n_embd, n_embd)  # widen ("fully connected")
        params[f"h.{i}.mlp.proj"] = matrix(n_embd, 4 * n_embd)  # narrow back ("projection")
    params["ln_f.weight"], params["ln_f.bias"] = vector(n_embd, 1.0), vector(n_embd, 0.0)  # final
    params["lm_head"] = matrix(config.vocab_size, n_embd)  # the language-model head
    return params

def parameters(params):
    """Every parameter Value in `params` (the rows of a matrix, or a vector), in a fixed order."""
    return [v for p in params.values() for row in p
            for v in (row if isinstance(row, list) else [row])]

def empty_cache(config):
    """A new document's KV cache: per layer, the keys and values of its positions so far."""
    return [([], []) for _ in range(config.n_layer)]

# Attention, in each of n_head heads: the query q of this position meets the key k of each position
# so far in a score q.k. A softmax makes the scores weights, and the head gives the positions'
# values v summed with those weights. Each head has its own slice of q, k and v, to learn to look
# for its own things. If q and k hold independent entries of mean 0 and variance 1, q.k has
# variance head_dim; 1/sqrt(head_dim) scales it back to 1, so the softmax does not saturate (all
# weight on one position, where gradients vanish). gpt() reads one token at a time, as sampling
# must, with the keys and values so far in a KV cache. Real GPTs train on all positions at once,
# giving later ones weight 0 (a causal mask): the same numbers.

def gpt(token, pos, kv_cache, params, config):
    """The logits for the token after `token`, at position `pos`; this position's key and value
    join kv_cache. Default shapes: [12] -> 4 heads x [3] -> [12] -> MLP [48] -> [12] -> [27]."""
    x = [t + p for t, p in zip(params["wte"][token], params["wpe"][pos])]  # [n_embd]
    head_dim = config.n_embd // config.n_head
    scale = 1.0 / math.sqrt(head_dim)
    for i in range(config.n_layer):
        x_norm = layernorm(x, params[f"h.{i}.ln_1.weight"], params[f"h.{i}.ln_1.bias"])
        q = linear(x_norm, params[f"h.{i}.attn.wq"])  # query: what this position looks for
        keys, values = kv_cache[i]  # the cache's own lists: what we append stays
        keys.append(linear(x_norm, params[f"h.{i}.attn.wk"]))  # key: what it offers
        values.append(linear(x_norm, params[f"h.{i}.attn.wv"]))  # value: what it passes on
        heads = []  # [n_embd]: the heads' outputs side by side
        for h in range(config.n_head):
            s = h * head_dim  # head h's slice of q, k and v starts at s
            q_h = q[s:s + head_dim]
            k_h = [k[s:s + head_dim] for k in keys]  # [pos + 1][head_dim]
            v_h = [v[s:s + head_dim] for v in values]  # [pos + 1][head_dim]
            scores = [dot(q_h, k) * scale for k in k_h]  # [pos + 1]
            attn = softmax(scores)  # how much to take from each position
            for j in range(head_dim):  # entry j: the positions' v[j], weighted by attn
                heads.append(dot(attn, [v[j] for v in v_h]))
        attn_out = linear(heads, params[f"h.{i}.attn.wo"])  # mixes the heads' findings
        x = [a + b for a, b in zip(x, attn_out)]  # residual add
        x_norm = layernorm(x, params[f"h.{i}.ln_2.weight"], params[f"h.{i}.ln_2.bias"])
        hidden = gelu(linear(x_norm, params[f"h.{i}.mlp.fc"]))  # [4 n_embd]
        mlp_out = linear(hidden, params[f"h.{i}.mlp.proj"])  # [n_embd]
        x = [a + b for a, b in zip(x, mlp_out)]  # residual add
    x = layernorm(x, params["ln_f.weight"], params["ln_f.bias"])
    return linear(x, params["lm_head"])  # [vocab_size]

# ------------------------------------------------------------------------------------------------
# Loss: the cross-entropy of each position's prediction; for a batch (a few documents), the mean.

def doc_losses(tokens, params, config):
    """The loss at each position pos of `tokens` (cut at block_size): predicting tokens[pos + 1]."""
    kv_cache = empty_cache(config)  # gpt() fills it, position by position
    losses = []
    for pos in range(min(config.block_size, len(tokens) - 1)):
        logits = gpt(tokens[pos], pos, kv_cache, params, config)
        losses.append(cross_entropy(logits, tokens[pos + 1]))
    return losses

def batch_loss(batch, params, config):
    """The mean loss (a Value, nats per token) over every position of `batch`, token lists."""
    losses = [loss for t in batch for loss in doc_losses(t, params, config)]
    return sum(losses) / len(losses)

def evaluate(docs, params, config):
    """The mean loss (a float) over the token lists `docs`, such as the validation split's."""
    losses = [loss.data for t in docs for loss in doc_losses(t, params, config)]
    return sum(losses) / len(losses)

# ------------------------------------------------------------------------------------------------
# Learning. A small step against the gradient lowers the loss. A batch's gradient is a cheap, noisy
# estimate of the whole data's, and many cheap steps beat a few exact ones: SGD (stochastic
# gradient descent) steps each parameter p by -lr * p.grad, lr the learning rate. Gradients differ
# in scale by orders of magnitude, so Adam (Kingma & Ba 2015) divides by their size. It steps by
# -lr * m / sqrt(v), m and v running averages of the gradient and its square.

def adam_step(flat, m, v, t, lr, beta1=0.9, beta2=0.99, eps=1e-8):
    """Update the Values `flat` from their grads, then zero the grads; m and v are the averages
    (of about the last 1 / (1 - beta) = 10 and 100 steps), t the step from 1."""
    # m and v start at 0, so at first they are too small: dividing by 1 - beta^t scales them up
    correction1, correction2 = 1 - beta1 ** t, 1 - beta2 ** t
    for i, p in enumerate(flat):
        m[i] = beta1 * m[i] + (1 - beta1) * p.grad
        v[i] = beta2 * v[i] + (1 - beta2) * p.grad ** 2
        m_hat = m[i] / correction1
        v_hat = v[i] / correction2
        p.data -= lr * m_hat / (math.sqrt(v_hat) + eps)
        p.grad = 0.0

def lr_at(step, max_steps, learning_rate):
    """Up over the first 2% of steps (Adam's first averages are noisy), then down toward 0."""
    warmup = max(1, max_steps // 50)
    if step < warmup:
        return learning_rate * (step + 1) / warmup
    return learning_rate * (max_steps - step) / (max_steps - warmup)

# ------------------------------------------------------------------------------------------------
# Training: a batch, its loss and gradients, an update; repeat, through the shuffled documents.

def get_batch(docs, position, batch_size):
    """batch_size documents from docs[position % len(docs)] on, wrapping around."""
    return [docs[k % len(docs)] for k in range(position, position + batch_size)]

def init_state(params):
    """What training changes besides the parameters: the steps done, and Adam's m and v."""
    n = len(parameters(params))
    return {"step": 0, "adam_m": [0.0] * n, "adam_v": [0.0] * n}

def train_step(state, batch, params, config, lr):
    """One step on `batch` (token lists): update params and state; return the loss (a float)."""
    loss = batch_loss(batch, params, config)  # forward: the loss, as a graph of Values
    loss.backward()  # backward: every parameter's grad = d loss / d parameter
    state["step"] += 1
    adam_step(parameters(params), state["adam_m"], state["adam_v"], state["step"], lr)
    return loss.data

# ------------------------------------------------------------------------------------------------
# Sampling: from BOS, draw each next character from the logits' softmax, until BOS (the end).

def sample(params, config, chars, rng, temperature=1.0):
    """A new document, drawn with `rng`; a temperature below 1 sharpens the probabilities."""
    bos = len(chars)
    tokens, kv_cache = [bos], empty_cache(config)
    for pos in range(config.block_size):
        logits = gpt(tokens[pos], pos, kv_cache, params, config)
        probs = softmax([z / temperature for z in logits])
        token = rng.choices(range(len(probs)), weights=[p.data for p in probs])[0]
        if token == bos:
            break
        tokens.append(token)
    return "".join(chars[i] for i in tokens[1:])  # the characters after BOS

def train_and_sample(path="names.txt", steps=300, batch_size=6, learning_rate=0.015,
                     num_samples=10, seed=42):
    """Train a default-sized model on `path`, printing the loss; print and return samples."""
    docs = load_docs(path)
    train_docs, val_docs = split_docs(docs, seed)
    chars = sorted(set("".join(docs)))
    train_tokens = [tokenize(doc, chars) for doc in train_docs]
    config = GPTConfig(vocab_size=len(chars) + 1, block_size=max(len(doc) for doc in docs) + 1)
    params = init_params(config, random.Random(seed))
    state = init_state(params)
    for step in range(steps):
        batch = get_batch(train_tokens, step * batch_size, batch_size)
        loss = train_step(state, batch, params, config, lr_at(step, steps, learning_rate))
        if (step + 1) % 25 == 0:
            print(f"step {step + 1}/{steps} | train loss {loss:.4f}")
    val_loss = evaluate([tokenize(doc, chars) for doc in val_docs[:200]], params, config)
    print(f"val loss {val_loss:.4f} (on {len(val_docs[:200])} held-out documents)")
    rng = random.Random(seed)
    samples = [sample(params, config, chars, rng) for _ in range(num_samples)]
    print("samples: " + ", ".join(samples))
    return samples

# ================================================================================================
# Part 2: backprop by hand
#
# Part 1 is correct, and slow. Every +, * and exp is a Value that backward() must find, sort and
# hand a gradient through, one Python object at a time. Part 2 computes the same model on plain
# floats, with no graph. Its forward pass runs gpt() for every position of a batch at once and
# keeps what the backward pass needs. The backward pass goes through the layers in reverse, each
# gradient worked out on paper, as llm.c (Karpathy 2024) trains GPT-2 in C. Each backward quotes
# the forward line it undoes. Tests check every gradient against Part 1's autograd.
#
# The N positions of a batch's documents are stacked as the N rows of each activation: x is
# [N][C] (C = n_embd). Only attention looks across rows, and only within a document. A dot
# product is sum(map(mul, a, b)), which stops at the end of the shorter list (CPython runs it in
# C). Other sums use math.fsum, exact, so they agree with Part 1's to rounding (and PyPy's JIT
# runs sum() fastest when the dot products are its only callers).
# ================================================================================================
from operator import add, mul

def columns(m):
    """The columns of the matrix m (a list of rows): m transposed."""
    return list(map(list, zip(*m)))

def add_rows(a, b):
    """a + b for two matrices of the same shape, row by row (a residual add)."""
    return [list(map(add, ra, rb)) for ra, rb in zip(a, b)]

def rows_of(p):
    """The rows of a parameter: a matrix's, or a vector as one row."""
    return p if isinstance(p[0], list) else [p]

# ------------------------------------------------------------------------------------------------
# The layers. A forward computes a layer of gpt() for all N rows. Its backward takes dout, the
# gradient of the loss with respect to the forward's output, and returns the gradients with
# respect to the forward's inputs and weights: the chain rule, once per layer, by hand.

def encoder_forward(inputs, starts, wte, wpe):
    """x [N][C]: wte[token] + wpe[pos] for each token of each document of `inputs` (lists of
    token ids), whose positions count on from its entry of `starts`."""
    return [list(map(add, wte[token], wpe[start + i]))
            for tokens, start in zip(inputs, starts) for i, token in enumerate(tokens)]

def encoder_backward(dx, inputs, starts, wte, wpe):
    """dwte and dwpe (shaped as wte and wpe) from dx [N][C]."""
    (dwte, dwpe), rows = ([[0.0] * len(row) for row in w] for w in (wte, wpe)), iter(dx)
    for tokens, start in zip(inputs, starts):
        for i, token in enumerate(tokens):
            d = next(rows)
            # forward: x = wte[token] + wpe[pos]; a sum hands its gradient to both terms
            dwte[token] = list(map(add, dwte[token], d))
            dwpe[start + i] = list(map(add, dwpe[start + i], d))
    return dwte, dwpe

def matmul_forward(x, w):
    """out [N][C_out], Part 1's linear() on each row of x [N][C_in] (w is [C_out][C_in])."""
    return [[sum(map(mul, row, x_n)) for row in w] for x_n in x]

def matmul_backward(dout, x, w):
    """dx [N][C_in] and dw [C_out][C_in] from dout [N][C_out]."""
    # forward: out[n][o] = sum_i w[o][i] x[n][i]
    # so d out[n][o] / d x[n][i] = w[o][i], and d out[n][o] / d w[o][i] = x[n][i]. w[o][i] is
    # used in every row, and its gradients add up: dx = dout w, dw = dout^T x (all N rows)
    w_cols, x_cols, dout_cols = columns(w), columns(x), columns(dout)
    dx = [[sum(map(mul, d_n, w_i)) for w_i in w_cols] for d_n in dout]
    dw = [[sum(map(mul, d_o, x_i)) for x_i in x_cols] for d_o in dout_cols]
    return dx, dw

def layernorm_forward(x, weight, bias, eps=1e-5):
    """out [N][C], Part 1's layernorm() on each row of x [N][C], and the rows' mean and rstd
    (1 / standard deviation), [N] each, which the backward needs."""
    out, means, rstds = [], [], []
    for row in x:
        mean = math.fsum(row) / len(row)
        centered = [v - mean for v in row]
        rstd = (sum(map(mul, centered, centered)) / len(row) + eps) ** -0.5
        out.append([w * c * rstd + b for c, w, b in zip(centered, weight, bias)])
        means.append(mean)
        rstds.append(rstd)
    return out, means, rstds

def layernorm_backward(dout, x, means, rstds, weight):
    """dx [N][C], dweight and dbias [C] from dout [N][C]."""
    dx, xhats = [], []
    for d_row, row, mean, rstd in zip(dout, x, means, rstds):
        xhat = [(v - mean) * rstd for v in row]
        dxhat = list(map(mul, d_row, weight))
        # forward: xhat_i = (x_i - mean) rstd, and mean and rstd depend on every x_j. With
        # d mean / d x_j = 1/C and d rstd / d x_j = -rstd^3 (x_j - mean) / C, the paths to x_i
        # add up to dx_i = rstd (dxhat_i - mean_j(dxhat_j) - xhat_i mean_j(dxhat_j xhat_j))
        mean_d = math.fsum(dxhat) / len(row)
        mean_dh = sum(map(mul, dxhat, xhat)) / len(row)
        dx.append([rstd * (d - mean_d - h * mean_dh) for d, h in zip(dxhat, xhat)])
        xhats.append(xhat)
    # forward: out = weight * xhat + bias, where xhat = (x - mean) * rstd; summed over the rows
    dweight = [sum(map(mul, d, h)) for d, h in zip(columns(dout), columns(xhats))]
    dbias = [math.fsum(d) for d in columns(dout)]
    return dx, dweight, dbias

GELU_C = math.sqrt(2 / math.pi)

def gelu_forward(x):
    """out [N][C], Part 1's gelu() on each row of x [N][C], and the tanh it took of each entry
    [N][C], which the backward needs."""
    tanhs = [[math.tanh(GELU_C * (v + 0.044715 * v * v * v)) for v in row] for row in x]
    out = [[0.5 * v * (1 + t) for v, t in zip(row, ts)] for row, ts in zip(x, tanhs)]
    return out, tanhs

def gelu_backward(dout, x, tanhs):
    """dx [N][C] from dout [N][C]."""
    # forward: out = v (1 + t) / 2, where t = tanh(c (v + 0.044715 v^3))
    # so d out / dv = (1 + t) / 2 + v (1 - t^2) c (1 + 3 * 0.044715 v^2) / 2
    return [[d * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * v * v))
             for d, v, t in zip(d_row, row, ts)] for d_row, row, ts in zip(dout, x, tanhs)]

def softmax_floats(zs):
    """Part 1's softmax() on a list of floats."""
    m = max(zs)
    exps = [math.exp(z - m) for z in zs]
    total = math.fsum(exps)
    return [e / total for e in exps]

def attention_forward(q, caches, lengths, n_head):
    """heads [N][C] and attn: attn[n][h] is head h's weights at row n, one per position of its
    document up to its own. q is [N][C]; document d has lengths[d] of the rows, and caches[d] is
    gpt()'s kv_cache (keys, values) for this layer, with those rows' keys and values appended.
    Position t attends to positions 0..t: the loop's bound is the causal mask that real GPTs
    apply as a T x T matrix (-infinity above the diagonal) when they compute all positions."""
    heads, attn, rows = [], [], iter(q)
    for (keys, values), length in zip(caches, lengths):
        first = len(keys) - length  # the position of this call's first row of the document
        head_dim = len(keys[0]) // n_head
        scale = 1.0 / math.sqrt(head_dim)  # as in gpt(), so the softmax does not saturate
        k_h = [[k[s:s + head_dim] for k in keys] for s in range(0, n_head * head_dim, head_dim)]
        v_h = [columns(v[s:s + head_dim] for v in values)  # per head: [head_dim][positions]
               for s in range(0, n_head * head_dim, head_dim)]
        for t in range(first, first + length):
            q_n, out, weights = next(rows), [], []
            for h in range(n_head):
                q_h = q_n[h * head_dim:(h + 1) * head_dim]
                w = softmax_floats([sum(map(mul, q_h, k)) * scale for k in k_h[h][:t + 1]])
                out += [sum(map(mul, w, v_j)) for v_j in v_h[h]]  # v_j[:t + 1], weighted by w
                weights.append(w)
            heads.append(out)
            attn.append(weights)
    return heads, attn

def attention_backward(dheads, q, caches, attn, n_head):
    """dq, dk and dv [N][C] from dheads [N][C], for a forward whose caches held only the rows'
    own keys and values (the rows of a document are then its keys and values, in order)."""
    dq, dk, dv, n = [], [], [], 0
    for keys, values in caches:
        length, width = len(keys), len(keys[0])
        head_dim = width // n_head
        scale = 1.0 / math.sqrt(head_dim)  # the forward's
        dq_d, dk_d, dv_d = ([[0.0] * width for _ in range(length)] for _ in range(3))
        for h in range(n_head):
            s, e = h * head_dim, (h + 1) * head_dim
            q_h = [row[s:e] for row in q[n:n + length]]
            k_h, v_h = [row[s:e] for row in keys], [row[s:e] for row in values]
            dout = [row[s:e] for row in dheads[n:n + length]]
            a = [row[h] for row in attn[n:n + length]]  # a[t]: position t's weights, t + 1 of them
            # forward: out[t] = sum_{u <= t} a[t][u] v[u]
            da = [[sum(map(mul, d_t, v)) for v in v_h[:t + 1]] for t, d_t in enumerate(dout)]
            dout_cols = columns(dout)
            for u in range(length):  # d v[u] = sum_{t >= u} a[t][u] dout[t]
                a_u = [a[t][u] for t in range(u, length)]
                dv_d[u][s:e] = [sum(map(mul, a_u, col[u:])) for col in dout_cols]
            # forward: a[t] = softmax(scores[t]), so d a[t][u] / d scores[t][j] =
            # a[t][u] (1 if u == j else 0) - a[t][u] a[t][j], and the sum over u gives
            # dscores[t][j] = a[t][j] (da[t][j] - sum_u a[t][u] da[t][u])
            dscores = []
            for a_t, da_t in zip(a, da):
                mean = sum(map(mul, a_t, da_t))
                dscores.append([w * (g - mean) for w, g in zip(a_t, da_t)])
            # forward: scores[t][u] = scale * q[t] . k[u]
            k_cols, q_cols = columns(k_h), columns(q_h)
            for t in range(length):  # d q[t] = scale sum_u dscores[t][u] k[u]
                dq_d[t][s:e] = [scale * sum(map(mul, dscores[t], col)) for col in k_cols]
            for u in range(length):  # d k[u] = scale sum_{t >= u} dscores[t][u] q[t]
                ds_u = [dscores[t][u] for t in range(u, length)]
                dk_d[u][s:e] = [scale * sum(map(mul, ds_u, col[u:])) for col in q_cols]
        dq += dq_d
        dk += dk_d
        dv += dv_d
        n += length
    return dq, dk, dv

def cross_entropy_forward(logits, targets):
    """The loss at each row of logits [N][vocab_size], -ln softmax(logits)[target] computed as
    ln(sum_j exp(z_j)) - z_target (finite even where the probability is too small for a float),
    and the probabilities [N][vocab_size], which the backward needs."""
    losses, probs = [], []
    for z, target in zip(logits, targets):
        m = max(z)
        exps = [math.exp(v - m) for v in z]
        total = math.fsum(exps)
        losses.append(math.log(total) + m - z[target])
        probs.append([e / total for e in exps])
    return losses, probs

def cross_entropy_backward(probs, targets, counted):
    """dlogits [N][vocab_size] for the mean of the losses of the rows where `counted` is true."""
    n = counted.count(True)
    dlogits = []
    for p, target, c in zip(probs, targets, counted):
        # forward: loss = ln(sum_j exp(z_j)) - z_target, so d loss / d z_j = p_j - (j == target):
        # the probability given, less the one wanted; / n, as the loss is a mean of n of them
        dlogits.append([(g - (j == target)) / n if c else 0.0 for j, g in enumerate(p)])
    return dlogits

# ------------------------------------------------------------------------------------------------
# The model: gpt() on floats for all positions at once, then its backward, layer by layer in
# reverse. The names are gpt()'s, and new ones where gpt() reuses a name (x_mid, x_norm_2).

def gpt_forward(inputs, params, config, caches):
    """The logits [N][vocab_size] at every position of `inputs` (token lists, one per
    document), and acts, the activations gpt_backward needs. caches[d] is document d's
    kv_cache, as in gpt() (empty_cache(config) for a new document): its positions so far come
    first, and its keys and values are appended to."""
    lengths = [len(tokens) for tokens in inputs]
    starts = [len(cache[0][0]) for cache in caches]  # the positions each document has so far
    x = encoder_forward(inputs, starts, params["wte"], params["wpe"])  # [N][n_embd]
    acts = {"inputs": inputs, "starts": starts, "caches": caches, "layers": []}
    for i in range(config.n_layer):
        p = f"h.{i}."
        layer = {"x": x}
        x_norm, layer["mean_1"], layer["rstd_1"] = layernorm_forward(
            x, params[p + "ln_1.weight"], params[p + "ln_1.bias"])
        # q, k and v in one product, with wq, wk and wv stacked (as GPT-2's attn.c_attn is)
        qkv = matmul_forward(x_norm, params[p + "attn.wq"] + params[p + "attn.wk"]
                             + params[p + "attn.wv"])  # [N][3 n_embd]
        C = config.n_embd
        q = [row[:C] for row in qkv]
        n = 0
        for cache, length in zip(caches, lengths):  # each document's keys and values
            keys, values = cache[i]
            keys += [row[C:2 * C] for row in qkv[n:n + length]]
            values += [row[2 * C:] for row in qkv[n:n + length]]
            n += length
        heads, attn = attention_forward(q, [cache[i] for cache in caches], lengths, config.n_head)
        attn_out = matmul_forward(heads, params[p + "attn.wo"])
        x_mid = add_rows(x, attn_out)  # residual add
        x_norm_2, layer["mean_2"], layer["rstd_2"] = layernorm_forward(
            x_mid, params[p + "ln_2.weight"], params[p + "ln_2.bias"])
        fc = matmul_forward(x_norm_2, params[p + "mlp.fc"])  # [N][4 n_embd]
        hidden, tanhs = gelu_forward(fc)
        mlp_out = matmul_forward(hidden, params[p + "mlp.proj"])
        x = add_rows(x_mid, mlp_out)  # residual add
        layer.update(x_norm=x_norm, q=q, heads=heads, attn=attn, x_mid=x_mid,
                     x_norm_2=x_norm_2, fc=fc, tanhs=tanhs, hidden=hidden)
        acts["layers"].append(layer)
    x_f, acts["mean_f"], acts["rstd_f"] = layernorm_forward(
        x, params["ln_f.weight"], params["ln_f.bias"])
    acts.update(x=x, x_f=x_f)
    return matmul_forward(x_f, params["lm_head"]), acts

def gpt_backward(dlogits, acts, params, config):
    """The gradient of the loss with respect to every parameter (a dict shaped as params), from
    dlogits [N][vocab_size]: gpt_forward's layers (run from empty caches), undone in reverse."""
    grads = {}
    dx_f, grads["lm_head"] = matmul_backward(dlogits, acts["x_f"], params["lm_head"])
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layernorm_backward(
        dx_f, acts["x"], acts["mean_f"], acts["rstd_f"], params["ln_f.weight"])
    for i in reversed(range(config.n_layer)):
        p, layer = f"h.{i}.", acts["layers"][i]
        # forward: x = x_mid + mlp_out, so both get dx
        dhidden, grads[p + "mlp.proj"] = matmul_backward(dx, layer["hidden"],
                                                         params[p + "mlp.proj"])
        dfc = gelu_backward(dhidden, layer["fc"], layer["tanhs"])
        dx_norm_2, grads[p + "mlp.fc"] = matmul_backward(dfc, layer["x_norm_2"],
                                                         params[p + "mlp.fc"])
        dx_mid, grads[p + "ln_2.weight"], grads[p + "ln_2.bias"] = layernorm_backward(
            dx_norm_2, layer["x_mid"], layer["mean_2"], layer["rstd_2"], params[p + "ln_2.weight"])
        dx = add_rows(dx, dx_mid)
        # forward: x_mid = x + attn_out, so both get dx
        dheads, grads[p + "attn.wo"] = matmul_backward(dx, layer["heads"], params[p + "attn.wo"])
        caches = [cache[i] for cache in acts["caches"]]
        dq, dk, dv = attention_backward(dheads, layer["q"], caches, layer["attn"], config.n_head)
        dqkv = [a + b + c for a, b, c in zip(dq, dk, dv)]  # [N][3 n_embd]
        dx_norm, dw = matmul_backward(dqkv, layer["x_norm"], params[p + "attn.wq"]
                                      + params[p + "attn.wk"] + params[p + "attn.wv"])
        for j, name in enumerate(("wq", "wk", "wv")):  # dw's rows: wq's, wk's, then wv's
            grads[p + "attn." + name] = dw[j * config.n_embd:(j + 1) * config.n_embd]
        dx_in, grads[p + "ln_1.weight"], grads[p + "ln_1.bias"] = layernorm_backward(
            dx_norm, layer["x"], layer["mean_1"], layer["rstd_1"], params[p + "ln_1.weight"])
        dx = add_rows(dx, dx_in)
    grads["wte"], grads["wpe"] = encoder_backward(dx, acts["inputs"], acts["starts"],
                                                  params["wte"], params["wpe"])
    return {name: grads[name] for name in params}  # in params' order

# ------------------------------------------------------------------------------------------------
# Training on floats: the loss, its gradients and Adam, as in Part 1's train_step.

def split_targets(batch, config, after=None):
    """For each document of `batch` (token lists), the tokens it reads and those it predicts, as
    doc_losses' positions; for every row, whether its loss counts: all, or with `after` (a token
    id), those from the position that reads its first one on (Part 3 checks each has one)."""
    inputs, targets, counted = [], [], []
    for tokens in batch:
        n = min(config.block_size, len(tokens) - 1)
        start = 0 if after is None else tokens.index(after)
        inputs.append(tokens[:n])
        targets += tokens[1:n + 1]
        counted += [pos >= start for pos in range(n)]
    return inputs, targets, counted

def position_losses(batch, params, config, after=None):
    """The loss (a float) at each position of `batch` (token lists) that counts: Part 1's
    doc_losses() on floats, for a batch of documents at once; and what the backward needs."""
    inputs, targets, counted = split_targets(batch, config, after)
    logits, acts = gpt_forward(inputs, params, config, [empty_cache(config) for _ in inputs])
    losses, probs = cross_entropy_forward(logits, targets)
    return [loss for loss, c in zip(losses, counted) if c], (probs, targets, counted, acts)

def loss_and_grads(batch, params, config, after=None):
    """The mean loss of `batch` (token lists) over the positions that count, and its gradient
    with respect to every parameter (a dict shaped as params)."""
    losses, (probs, targets, counted, acts) = position_losses(batch, params, config, after)
    dlogits = cross_entropy_backward(probs, targets, counted)
    return math.fsum(losses) / len(losses), gpt_backward(dlogits, acts, params, config)

def adam_floats(params, grads, m, v, t, lr, beta1=0.9, beta2=0.99, eps=1e-8):
    """Part 1's adam_step() on the floats of params, with their grads (shaped as params): m and
    v hold one entry per parameter, in parameters() order."""
    correction1, correction2 = 1 - beta1 ** t, 1 - beta2 ** t
    i = 0
    for name, p in params.items():
        for row, grad_row in zip(rows_of(p), rows_of(grads[name])):
            for j, g in enumerate(grad_row):
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g ** 2
                m_hat = m[i] / correction1
                v_hat = v[i] / correction2
                row[j] -= lr * m_hat / (math.sqrt(v_hat) + eps)
                i += 1

def train_step_fast(state, batch, params, config, lr, after=None):
    """Part 1's train_step on floats: the same step, about 18 times as fast on CPython. params
    are floats (as_floats); returns the loss before the update."""
    loss, grads = loss_and_grads(batch, params, config, after)
    state["step"] += 1
    adam_floats(params, grads, state["adam_m"], state["adam_v"], state["step"], lr)
    return loss

# ------------------------------------------------------------------------------------------------
# Gradcheck. A wrong gradient might not stop training (the model can still learn, only worse).
# A finite difference checks one with no calculus at all: nudge one parameter by +h and by -h,
# and (L(p + h) - L(p - h)) / 2h is the slope of the loss, close to the gradient.

GRADCHECK_LIMIT = 1e-4  # gradcheck's verdict: see its docstring

def gradcheck(params, config, docs, rng, grad=None, n=20, h=1e-5, watch=iter, after=None):
    """The largest relative error between the gradients of the loss on `docs` (token lists),
    counted from `after` on as in split_targets, and finite differences, over n parameters
    (drawn among those with a gradient), and how many were checked. grad(docs, params, config,
    after) gives the gradients (by default loss_and_grads gives them); watch(items) wraps the
    loop over the parameters (to show progress, say). The difference quotient's own error
    (about h^2/6 times the third derivative, plus rounding of the losses over h) keeps it below
    about 1e-6 at this h, while a wrong formula errs by 1e-2 or more. So an error below
    GRADCHECK_LIMIT (1e-4, between the two) means the gradients are right."""
    grads = (grad(docs, params, config, after) if grad
             else loss_and_grads(docs, params, config, after)[1])
    where = [(row, j, g) for name, p in params.items()
             for row, grad_row in zip(rows_of(p), rows_of(grads[name]))
             for j, g in enumerate(grad_row) if g]

    def loss():
        losses = position_losses(docs, params, config, after)[0]
        return math.fsum(losses) / len(losses)
    checked, worst = rng.sample(where, min(n, len(where))), 0.0
    for row, j, g in watch(checked):
        old = row[j]
        row[j] = old + h
        up = loss()
        row[j] = old - h
        down = loss()
        row[j] = old
        numeric = (up - down) / (2 * h)
        worst = max(worst, abs(g - numeric) / max(abs(g), abs(numeric), 1e-8))
    return worst, len(checked)

# ================================================================================================
# Part 3: the tool
#
# What makes the algorithm a program people can use on their own data: limits, checkpoints, a
# training loop that shows progress and survives Ctrl-C, a look inside the model, and a command line
# where every bad input gets a clear one-line message.
# ================================================================================================
import argparse
import array
import contextlib
import errno
import gc
import glob
import io
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from types import SimpleNamespace

# ------------------------------------------------------------------------------------------------
# Limits. Every number here is a Python object, so a model of 10 million parameters would need
# gigabytes and days. Sizes are checked before anything is made, and files are read up to a cap.
# The estimates are from above, and simple enough to check by hand; the tests check them against
# the memory and the work they bound.
MAX_PARAMS = 1_000_000  # about 130 MB, with the gradients and Adam's running averages
MAX_STEP_BYTES = 1_000_000_000  # a training step's activations and their gradients
MAX_PLAIN_EDGES = 10_000_000  # a --plain training step's graph: at most 1.4 GB
MAX_EVAL_WORK = 3_000_000_000  # the final validation's (see eval_work): a minute or two
SIZES = ("n_layer", "n_head", "n_embd", "block_size")  # the sizes flags and checkpoints give
MAX_INPUT_BYTES = 50_000_000  # 7 million names; each document costs about 90 bytes of memory
MAX_HISTORY = 100_000  # the train and val losses a checkpoint keeps: the last ones
MAX_CHECKPOINT_BYTES = 32 * (3 * MAX_PARAMS + 3 * MAX_HISTORY)  # ≤32 bytes a weight, m, v, loss
MAX_STEPS = 10 ** 9  # years of training: a checkpoint's counters stay far within their ranges
CHECKPOINT_START = b'{"format": "microgpt", "version": 1, '  # how every checkpoint's file begins

def n_params(config):
    """The number of parameters init_params(config) makes, without making them: wte and lm_head
    (v e each), wpe, per block two LayerNorms (4 e) and six matrices (four of e^2 in attn, two
    of 4 e^2 in mlp), and ln_f (2 e)."""
    e, v = config.n_embd, config.vocab_size
    return 2 * v * e + config.block_size * e + config.n_layer * (4 * e + 12 * e * e) + 2 * e

def step_bytes(config, batch_size):
    """From above, the memory of one training step of Part 2 on batch_size documents of
    T = block_size positions. Per position and layer, at most 26 n_embd activations and
    gradients and n_head T attention weights, in 24 + 2 n_head lists; per position, 20 n_embd +
    3 vocab_size more (the embeddings, ln_f, the logits and their gradients), in 8 lists. A
    float in a list takes 40 bytes, a list 100 more; the parameters' gradients, and 100 KB."""
    e, h, T = config.n_embd, config.n_head, config.block_size
    floats = config.n_layer * (26 * e + h * T) + 20 * e + 3 * config.vocab_size
    lists = config.n_layer * (24 + 2 * h) + 8
    return batch_size * T * (40 * floats + 100 * lists) + 40 * n_params(config) + 100_000

def plain_edges(config, batch_size):
    """From above, the edges (local gradients) of one --plain training step's graph: batch_size
    documents of T = block_size positions. At every position each weight meets an input: a
    product and a sum, at most 9 edges per parameter, with LayerNorm, GELU and the adds.
    Attention adds, per layer and position, at most T positions looked at, each costing at most
    18 n_embd + 3 n_head T (scores, weighted sums, softmax). (Tested against the real graph.)"""
    e, h, T = config.n_embd, config.n_head, config.block_size
    return batch_size * T * (9 * n_params(config) + config.n_layer * T * (18 * e + 3 * h * T))

def eval_work(config, n_docs):
    """From above, the work of Part 2's forward pass over n_docs documents of block_size
    positions (the final validation), in multiply-adds. Per position, each weight of a matrix
    is one (n_layer 12 n_embd^2 + vocab_size n_embd), attention at most 2 block_size n_embd per
    layer, and the loss vocab_size; and each of the dot products that compute them, n_layer
    (10 n_embd + n_head block_size) + vocab_size, costs about 32 more: a call's price."""
    e, T, v = config.n_embd, config.block_size, config.vocab_size
    macs = config.n_layer * (12 * e * e + 2 * T * e) + v * e + v
    dots = config.n_layer * (10 * e + config.n_head * T) + v
    return n_docs * T * (macs + 32 * dots)

def check_config(config, batch_size=1, plain=False,
                 lower="--n-embd, --n-layer, --block-size or --batch-size"):
    """Raise ValueError unless n_embd splits into the heads and the model and a training step on
    batch_size documents are within the limits, with what they would cost and what to do: the
    flags to `lower` (None if a checkpoint fixes them all), or to drop --plain."""
    if config.n_embd % config.n_head:
        raise ValueError(f"--n-embd ({config.n_embd}) must be divisible by "
                         f"--n-head ({config.n_head})")
    n, edges, memory = n_params(config), plain_edges(config, batch_size), step_bytes(config,
                                                                                     batch_size)
    fixes = ", or ".join([f"lower {lower}"] * bool(lower) + ["drop --plain"] * plain)
    fixes = f": {fixes}" if fixes else ""
    step = (f"a training step of this model ({n:,} parameters, batch {batch_size:,}, "
            f"block_size {config.block_size:,})")
    if n > MAX_PARAMS:
        raise ValueError(f"this model would have {n:,} parameters; microgpt allows "
                         f"{MAX_PARAMS:,}{fixes}")
    if plain and edges > MAX_PLAIN_EDGES:
        raise ValueError(f"with --plain, {step} would build up to {edges:,} graph edges: up to "
                         f"{edges * 140 / 1e9:,.1f} GB of memory; microgpt allows "
                         f"{MAX_PLAIN_EDGES:,}{fixes}")
    if memory > MAX_STEP_BYTES:
        raise ValueError(f"{step} would need up to {memory / 1e9:,.1f} GB of memory; microgpt "
                         f"allows {MAX_STEP_BYTES / 1e9:,.1f} GB{fixes}")

# ------------------------------------------------------------------------------------------------
# Checkpoints: the model and everything needed to resume training, as JSON. Python writes each float
# with enough digits to read back exactly, so a resumed run matches an uninterrupted one.

def file_id(path):
    """What tells one write of the file at `path` from another (its inode, time and size), or
    None if there is no file there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size

def temp_path(path, digits=None):
    """Where a save to `path` writes before it renames: a new name hidden beside it,
    .NAME.1a2b3c4d.tmp (8 random hex digits, or `digits`)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{digits or os.urandom(4).hex()}.tmp")

def save_checkpoint(path, params, config, chars, state, last=None):
    """Write the model and training state (with the last MAX_HISTORY of each loss history) to a
    new hidden file beside `path` (see temp_path), then rename it to `path` (to the file it
    links to, if it is a link), so that a crash never leaves a half-written checkpoint. Such a
    file, left by a killed save, is never read, and the next save to `path` removes it. `last`
    is file_id(path) as this process last left it or read it (None: no file). If another
    process has written `path` since, or it cannot be replaced, the checkpoint goes beside it to
    the first free NAME-2.EXT, NAME-3.EXT, ... instead. Returns the path written and its
    file_id. Raises OSError if it cannot write, and ValueError if load_checkpoint would refuse
    what it writes (training diverged)."""
    history = {k: losses[-MAX_HISTORY:] for k, losses in state["history"].items()}
    ckpt = {"format": "microgpt", "version": 1, "config": {k: getattr(config, k) for k in SIZES},
            "chars": "".join(chars), "params": params, **state, "history": history}
    try:
        from_checkpoint(ckpt)  # what saving writes, loading accepts
    except ValueError as e:
        raise ValueError(f"cannot save {path}, as training diverged ({e}): try a lower "
                         f"--learning-rate")
    target = os.path.realpath(path)
    for left in glob.glob(temp_path(glob.escape(target), "[0-9a-f]" * 8)):
        if killed_save(left):
            with contextlib.suppress(OSError):  # (another save may remove it first)
                os.remove(left)
    tmp = temp_path(target)
    f = open(tmp, "x", encoding="utf-8")  # "x": a new file, never an old one or a link
    try:
        with f:
            json.dump(ckpt, f)
            f.flush()
            os.fsync(f.fileno())  # on the disk before it replaces the last checkpoint
        with contextlib.suppress(OSError):
            shutil.copymode(target, tmp)  # the permissions the checkpoint had
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    try:
        if file_id(target) not in (None, last):
            raise FileExistsError  # another process wrote it
        os.replace(tmp, target)
    except (FileExistsError, FileNotFoundError):  # that, or another save took tmp for a killed
        with contextlib.suppress(OSError):  # save's: this one goes beside
            os.remove(tmp)
        return save_checkpoint(beside(path), params, config, chars, state)
    except OSError:  # no right to rename there
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return path, file_id(target)

def killed_save(path):
    """Whether the file at `path`, named as temp_path names them, is what a killed save left: a
    file (not a link), empty or beginning as every checkpoint does."""
    with contextlib.suppress(OSError):
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                return CHECKPOINT_START.startswith(f.read(len(CHECKPOINT_START)))
    return False

def checkpoint_bytes(config, steps):
    """From above, the size of a checkpoint of this model after `steps` steps: at most 32 bytes
    for each weight, Adam moment and loss kept, and a few thousand more."""
    return 32 * (3 * n_params(config) + 3 * min(steps, MAX_HISTORY)) + 4 * config.vocab_size + 4096

def beside(path):
    """The first of NAME-2.EXT, NAME-3.EXT, ... (for `path` NAME.EXT) that does not exist."""
    root, ext = os.path.splitext(path)
    return next(p for p in (f"{root}-{n}{ext}" for n in itertools.count(2))
                if not os.path.lexists(p))

def number(value, name, low, high=math.inf, integer=False):
    """`value` if it is a number (an int, if `integer`) from low to high; else a ValueError."""
    if (isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
            or not low <= value <= high or abs(value) == math.inf):  # (NaN is within no range)
        low, high = (f"{x:,}" if isinstance(x, int) else f"{x:g}" for x in (low, high))
        what = "an integer" if integer else "a number" if high != "inf" else "a finite number"
        within = (f" from {low} to {high}" if high != "inf" else
                  f" of at least {low}" if low != "-inf" else "")
        shown = repr(value) if isinstance(value, str) else str(value)  # "8" is not 8
        raise ValueError(f"{name} must be {what}{within}, not {shown[:40]}")
    return value

def shaped(value, template, name, low, high):
    """`value` if it has the shape of `template` (a number, or lists or dicts of them) and its
    numbers are from low to high (whole numbers where the template's are ints); else a
    ValueError. Numbers are returned as the template's type."""
    if isinstance(template, dict):
        if not isinstance(value, dict) or set(value) != set(template):
            raise ValueError(f"{name} must hold exactly these: {', '.join(template)}")
        return {k: shaped(value[k], t, f"{name}.{k}", low, high) for k, t in template.items()}
    if isinstance(template, list):
        if not isinstance(value, list) or len(value) != len(template):
            raise ValueError(f"{name} does not have the shape its config gives")
        return [shaped(v, t, name, low, high) for v, t in zip(value, template)]
    return type(template)(number(value, name, low, high, isinstance(template, int)))

def load_checkpoint(path):
    """Read a checkpoint written by save_checkpoint: (params, config, chars, state), as
    from_checkpoint gives them. Raises ValueError if the file is missing, over
    MAX_CHECKPOINT_BYTES (refused before it is parsed), not JSON, not microgpt's, or damaged."""
    if os.path.exists(path) and not os.path.isfile(path):  # a directory, a pipe that would wait
        raise ValueError(f"{path} is not a file, so not a microgpt checkpoint")
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_CHECKPOINT_BYTES + 1)  # a byte more than any checkpoint can hold
        ckpt = json.loads(text) if len(text) <= MAX_CHECKPOINT_BYTES else None
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path} does not exist: train one first with --out {path}")
    except MemoryError:
        raise ValueError(f"{path} is too big to read into this machine's memory")
    except (OSError, ValueError, RecursionError) as e:  # bad UTF-8: a ValueError
        raise ValueError(f"{path} is not a readable microgpt checkpoint "
                         f"(truncated or not JSON: {str(e)[:200]})")
    if len(text) > MAX_CHECKPOINT_BYTES:
        raise ValueError(f"{path} is larger than any microgpt checkpoint can be "
                         f"({MAX_CHECKPOINT_BYTES:,} bytes)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != "microgpt":
        raise ValueError(f"{path} is not a microgpt checkpoint")
    if ckpt.get("version") != 1 or isinstance(ckpt.get("version"), bool):
        raise ValueError(f"{path} is checkpoint version {repr(ckpt.get('version'))[:40]}; "
                         f"this microgpt reads version 1")
    try:
        return from_checkpoint(ckpt)
    except ValueError as e:
        raise ValueError(f"{path} is a damaged microgpt checkpoint: {e}")

def from_checkpoint(ckpt):
    """The model in `ckpt`, a checkpoint as a dict: (params, config, chars, state). Its fields
    must have the shape of a freshly built model of its config, sizes within the limits, weights
    within 1e6 of 0, Adam's moments finite (adam_v not negative), losses finite and not
    negative, and counters whole numbers. A ValueError names the first field that is missing or
    breaks one of these rules."""
    def get(key, within=ckpt, name=""):
        if not isinstance(within, dict) or key not in within:
            raise ValueError(f"{name}{key} is missing")
        return within[key]
    try:
        chars = get("chars")
        if not isinstance(chars, str) or not chars or len(set(chars)) < len(chars):
            raise ValueError("chars must be a string of different characters")
        sizes = {k: number(get(k, get("config"), "config."), f"config.{k}", 1, 10 ** 9, True)
                 for k in SIZES}
        config = GPTConfig(len(chars) + 1, **sizes)
        check_config(config, lower=None)
        template, n = as_floats(init_params(config, random.Random(0))), n_params(config)
        rules = {"params": (template, -10 ** 6, 10 ** 6),  # (template, low, high)
                 "adam_m": ([0.0] * n, -math.inf, math.inf), "adam_v": ([0.0] * n, 0, math.inf),
                 "seed": (0, -2 ** 63, 2 ** 63 - 1), "step": (0, 0, 10 ** 12),
                 "position": (0, 0, 10 ** 18)}
        state = {k: shaped(get(k), template, k, low, high)
                 for k, (template, low, high) in rules.items()}
        params = state.pop("params")
        after = state["loss_after"] = ckpt.get("loss_after")  # optional: absent counts all
        state["shuffle"] = ckpt.get("shuffle", False)  # optional: older files read in order
        if not isinstance(state["shuffle"], bool):
            raise ValueError("shuffle must be true or false")
        if after is not None and after not in list(chars):
            raise ValueError("loss_after must be null or one of the checkpoint's chars")
        history = ckpt.get("history", {"train": [], "val": []})  # optional: older files lack it
        train, val = get("train", history, "history."), get("val", history, "history.")
        if (not isinstance(train, list) or len(train) > min(state["step"], MAX_HISTORY)
                or not isinstance(val, list) or len(val) > MAX_HISTORY
                or not all(isinstance(pair, list) and len(pair) == 2 for pair in val)):
            raise ValueError(f"history must hold a train loss per step done and [step, val loss] "
                             f"pairs, at most {MAX_HISTORY:,} of each")
        state["history"] = {
            "train": shaped(train, [0.0] * len(train), "a train loss of history", 0, math.inf),
            "val": [[shaped(step, 0, "a step of history.val", 1, state["step"]),
                     shaped(loss, 0.0, "a val loss of history", 0, math.inf)]
                    for step, loss in val]}
    except TypeError as e:
        raise ValueError(str(e))
    return params, config, chars, state

# ------------------------------------------------------------------------------------------------
# Progress: anything that can take more than a few seconds keeps a status line up to date in place
# on a terminal or in a notebook (where a carriage return also rewrites the line), and prints
# nothing extra to a file or a pipe.

def status(text, show):
    """If `show`, write `text` over the current line and go back to its start; "" erases it."""
    if show:
        print("\r" + text.ljust(24) + "\r", end="", flush=True)

def progress(items, what, show):
    """Yield the items of the list `items` under the status line "what 340/1000, 0:12 left",
    kept up to date at most ten times a second and erased at the end."""
    start, last = time.time(), 0.0
    for i, item in enumerate(items):
        if time.time() - last > 0.1:
            left = (time.time() - start) / i * (len(items) - i) if i else 0
            status(f"{what} {i}/{len(items)}" + f", {clock(left)} left" * bool(i), show)
            last = time.time()
        yield item
    status("", show)

# ------------------------------------------------------------------------------------------------
# The training loop: Part 2's train_step_fast (with --plain, Part 1's step on Values), repeated,
# with progress lines, a validation loss every so often (saved to the checkpoint then), and a stop
# between two steps on Ctrl-C (SIGINT), a job scheduler's SIGTERM or a closed terminal's SIGHUP.
STOP_SIGNALS = [getattr(signal, s) for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]

def clock(seconds):
    """A duration as m:ss, or h:mm:ss from an hour on."""
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"

def as_floats(params, field="data"):
    """The numbers of Part 1's params (Values) in the same dict of lists: their data, or with
    field="grad" their gradients."""
    return {name: [[getattr(v, field) for v in row] if isinstance(row, list)
                   else getattr(row, field) for row in p] for name, p in params.items()}

def as_values(params):
    """Part 1's params (Values) holding the floats of `params`: as_floats, undone."""
    return {name: [[Value(x) for x in row] if isinstance(row, list) else Value(row) for row in p]
            for name, p in params.items()}

def plain_loss(batch, values, config, after=None):
    """Part 1's batch_loss on `values` (Part 1's params), with the loss counted only from the
    position that reads `after` (a token id) on, if given, as --loss-after asks."""
    losses = [loss for tokens in batch for loss in
              doc_losses(tokens, values, config)[0 if after is None else tokens.index(after):]]
    return sum(losses) / len(losses)

def plain_step(state, batch, values, config, lr, after=None):
    """Part 1's train_step on `values`, on plain_loss."""
    loss = plain_loss(batch, values, config, after)
    loss.backward()
    state["step"] += 1
    adam_step(parameters(values), state["adam_m"], state["adam_v"], state["step"], lr)
    return loss.data

def plain_grads(docs, params, config, after=None):
    """The gradients of plain_loss on `docs` by Part 1's autograd (for --gradcheck --plain)."""
    values = as_values(params)
    plain_loss(docs, values, config, after).backward()
    return as_floats(values, "grad")

def validate(params, config, val_tokens, args):
    """The val loss (nats per token; NaN with no val_tokens), batch_size documents at a time,
    with a status line meanwhile."""
    if not val_tokens:
        return math.nan
    batches = [val_tokens[i:i + args.batch_size] for i in range(0, len(val_tokens),
                                                                args.batch_size)]
    losses = [loss for batch in progress(batches, "val", args.progress)
              for loss in position_losses(batch, params, config, args.after)[0]]
    return math.fsum(losses) / len(losses)

def next_docs(train_docs, state, batch_size, orders):
    """The batch_size documents of train_docs that training reads next, from state["position"]
    on. The first pass reads them in split_docs' order, as Part 1's get_batch does. With
    state["shuffle"], each later pass reads them in a new order, seeded by the run's seed and the
    pass number, so a resumed run reads what an uninterrupted one would. `orders` keeps the
    current pass's order ({} to start)."""
    n, docs = len(train_docs), []
    for k in range(state["position"], state["position"] + batch_size):
        p = k // n if state["shuffle"] else 0  # the pass that position k falls in
        if p and p not in orders:  # (the first pass reads train_docs in place)
            orders.clear()
            orders[p] = array.array("i", range(n))  # 4 bytes a document: millions fit
            random.Random(f"{state['seed']} {p}").shuffle(orders[p])
        docs.append(train_docs[orders[p][k % n] if p else k % n])
    return docs

def train(params, config, chars, train_docs, val_tokens, state, args, save):
    """Train `params` and `state` in place up to args.max_steps on train_docs (strings, tokenized as
    batches draw them), adding each loss to state["history"] and calling save(state) at each
    validation and at the end. A signal (main() adds it to args.stop) or a failed print stops it
    after the step it came in. Raises FloatingPointError if the loss is NaN or infinite."""
    values = as_values(params) if args.plain else None  # --plain: Part 1's Values train
    args.training = True  # a signal now only ends the loop (see main)
    try:
        first, started, t0, tokens, orders = state["step"], time.time(), time.time(), 0, {}
        warmup, too_high, high = max(1, args.max_steps // 50), 2 * math.log(config.vocab_size), 0
        while state["step"] < args.max_steps and not args.stop:
            step = state["step"] + 1
            status(f"step {step}/{args.max_steps}", args.progress)  # until a line replaces it
            docs = next_docs(train_docs, state, args.batch_size, orders)
            batch = [tokenize(doc, chars) for doc in docs]
            for t in batch:  # the positions read (no sum(): see Part 2's note on PyPy)
                tokens += min(config.block_size, len(t) - 1)
            lr = lr_at(step - 1, args.max_steps, args.learning_rate)
            try:
                if args.plain:
                    loss = plain_step(state, batch, values, config, lr, args.after)
                    params.update(as_floats(values))  # what the rest of the tool reads
                else:
                    loss = train_step_fast(state, batch, params, config, lr, args.after)
            except (ArithmeticError, ValueError):  # a float overflowed, or ln 0
                loss = math.inf
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} at step {step}; try a "
                                         f"lower --learning-rate (it was {args.learning_rate})")
            state["position"] += len(batch)
            state["history"]["train"].append(loss)
            for losses in state["history"].values():  # memory stays bounded on the longest runs
                if len(losses) > 2 * MAX_HISTORY:  # (a checkpoint keeps the last MAX_HISTORY)
                    del losses[:-MAX_HISTORY]
            high = high + 1 if loss > too_high and step > warmup else 0  # (lr_at's warmup)
            if high == 10:  # twice uniform guessing's loss, 10 steps in a row: it diverged
                save(state)
                raise FloatingPointError(f"the loss stayed above {too_high:.2f} (twice uniform "
                                         f"guessing) from step {step - 9} to {step}; try a "
                                         f"lower --learning-rate (it was {args.learning_rate})")
            if args.stop:
                break  # saved below, before any printing or validation
            evaluating = step % args.eval_every == 0 and step < args.max_steps
            if evaluating or step == first + 1 or step % 100 == 0 or step == args.max_steps:
                rate = tokens / max(time.time() - t0, 1e-9)  # since the last line
                line = (f"step {step:5d}/{args.max_steps} | train loss {loss:.4f} | "
                        f"{rate:,.0f} tok/s")
                if evaluating:
                    val = validate(params, config, val_tokens, args)
                    if math.isfinite(val):  # NaN if the file is too small to hold any out
                        state["history"]["val"].append([step, val])
                    line += f" | val loss {val:.4f}"
                    save(state)
                elapsed = time.time() - started  # in this process; what is left, at its pace
                left = elapsed / (step - first) * (args.max_steps - step)
                print(f"{line} | {clock(elapsed)} elapsed, {clock(left)} left", flush=True)
                t0, tokens = time.time(), 0
        save(state)  # at once: the steps done are safe from a signal in the final validation
    except OSError:  # printing failed: a closed pipe, or a closed terminal (EIO, after SIGHUP)
        save(state)
        raise
    finally:
        args.training = False
        status("", args.progress)

# ------------------------------------------------------------------------------------------------
# Looking inside: what the model predicts at each position and where its heads look, what simpler
# models score on the same data, and how the loss fell.

def explain(text, params, config, chars, after=None):
    """What the model makes of BOS + text: one dict per position pos (len(text) + 1 of them),
    with "read" (the token id read there), "next" (the one that comes next), "probs" (vocab_size
    floats, the probability of each next token), "attn" ([n_layer][n_head][pos + 1] attention
    weights) and "surprise" (-ln probs[next], nats: the loss training would count there, or None
    where it counts none, before `after`). Raises ValueError if text has characters outside
    `chars` or is longer than block_size - 1."""
    check_text("--explain", text, chars, config.block_size - 1)
    tokens = tokenize(text, chars)
    logits, acts = gpt_forward([tokens[:-1]], params, config, [empty_cache(config)])
    start = 0 if after is None else tokens.index(after)
    losses, probs = cross_entropy_forward(logits, tokens[1:])
    return [{"read": tokens[pos], "next": tokens[pos + 1], "probs": probs[pos],
             "attn": [layer["attn"][pos] for layer in acts["layers"]],
             "surprise": losses[pos] if pos >= start else None} for pos in range(len(logits))]

def generate(params, config, chars, rng, temperature=1.0, top_k=None, prompt=""):
    """Part 1's sample() on floats, with what the tool adds: a new document (a string) starting
    with `prompt` (of characters in chars), drawn with the random.Random `rng`. Logits are
    divided by `temperature`; 0 takes the likeliest token (greedy). top_k keeps the k likeliest
    tokens. The model reads one position at a time, its keys and values kept in a kv cache."""
    bos = len(chars)
    tokens, kv_cache = tokenize(prompt, chars)[:-1], empty_cache(config)
    for pos in range(config.block_size):
        logits = gpt_forward([[tokens[pos]]], params, config, [kv_cache])[0][0]
        if pos + 1 < len(tokens):  # still reading the prompt
            continue
        if top_k:  # every logit below the k-th highest gets probability 0
            kth = sorted(logits, reverse=True)[min(top_k, len(logits)) - 1]
            logits = [z if z >= kth else -math.inf for z in logits]
        if temperature == 0:
            token = logits.index(max(logits))
        else:
            probs = softmax_floats([z / temperature for z in logits])
            token = rng.choices(range(len(probs)), weights=probs)[0]
        if token == bos:
            break
        tokens.append(token)
    return "".join(chars[i] for i in tokens[1:])

def glyph(token, chars):
    """A token as one visible character: BOS as ⏎ (read first, it starts the document; as the
    next token, it ends it), a space as ␣, a tab as →, another control character as its symbol
    (ESC as ␛), and any other character a terminal would not print as itself as �."""
    if token == len(chars):
        return "⏎"
    ch = chars[token]
    if ch.isprintable() and ch != " ":
        return ch
    return {" ": "␣", "\t": "→"}.get(ch, chr(0x2400 + ord(ch)) if ord(ch) < 32 else "�")

def visible(text):
    """`text` with every character a terminal would not print as itself written as an escape
    (ESC as \\x1b), so that no data can send control sequences to the terminal."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)

def print_explain(rows, chars, width=80):
    """Print explain()'s rows: a line per position, each layer's attention (heads side by side,
    as many as fit in `width` columns), the mean surprise and the perplexity, e to that power
    (the model is as unsure as if it chose uniformly among that many characters, ⏎ included)."""
    print("pos read next p(next) surprise | the 5 most likely next characters")
    for pos, r in enumerate(rows):
        top = sorted(range(len(chars) + 1), key=lambda t: -r["probs"][t])[:5]
        print(f"{pos:3d}   {glyph(r['read'], chars)}    {glyph(r['next'], chars)}  "
              f"{r['probs'][r['next']]:6.1%}  " + ("     -" if r["surprise"] is None else
                                                    f"{r['surprise']:6.3f}") + "  | "
              + "  ".join(f"{glyph(t, chars)} {r['probs'][t]:5.1%}" for t in top))
    labels = " ".join(glyph(r["read"], chars) for r in rows)
    cell = max(15, 2 + len(labels))  # a grid's width: its title, or a label and a cell per position
    per_line = max(1, (width + 3) // (cell + 3))
    print("attention, each row a position, each column one it can see (a row sums to 100%):"
          "\n· under 20%  ░ 20-40%  ▒ 40-60%  ▓ 60-80%  █ 80% or more")
    for layer, heads in enumerate(rows[0]["attn"]):
        for first in range(0, len(heads), per_line):
            shown = range(first, min(first + per_line, len(heads)))
            grid = [[f"layer {layer} head {h}" for h in shown], ["  " + labels for _ in shown]]
            grid += [[glyph(r["read"], chars) + " " + " ".join("·░▒▓█"[min(4, int(w * 5))]
                                                            for w in r["attn"][layer][h])
                      for h in shown] for r in rows]
            print("\n".join("   ".join(g.ljust(cell) for g in line).rstrip() for line in grid))
    counted = [r["surprise"] for r in rows if r["surprise"] is not None]
    mean = sum(counted) / len(counted)
    perplexity = f"{math.exp(mean):.2f}" if mean < math.log(1e6) else "over a million"
    print(f"mean surprise {mean:.4f} nats per character over {len(counted)} predictions "
          f"(perplexity {perplexity})")

def bigram_loss(train_tokens, val_tokens, vocab_size, block_size, after=None):
    """The mean loss (nats per token) on val_tokens of a bigram model, as Karpathy's makemore
    lectures begin: the chance of each next token given the current one is how often it followed
    it in train_tokens, with 1 added to every count so that no pair has probability 0. With
    `after`, only the positions doc_losses counts are scored."""
    pairs = Counter(p for t in train_tokens for p in zip(t, t[1:block_size + 1]))
    totals = Counter()
    for (a, _), n in pairs.items():
        totals[a] += n
    losses = [math.log((totals[a] + vocab_size) / (pairs[a, b] + 1)) for t in val_tokens
              for pos, (a, b) in enumerate(zip(t, t[1:block_size + 1]))
              if after is None or pos >= t.index(after)]
    return math.fsum(losses) / len(losses) if losses else math.nan

def loss_chart(history, steps, rows=9, cols=60):
    """The loss curve in at most rows + 3 lines of at most cols + 7 characters: the train loss of
    the last len(history["train"]) of `steps` steps, averaged over equal chunks, as bars, and
    each validation loss of history["val"] ([step, loss] pairs) as ◆, against a y-axis in nats."""
    train, first = history["train"], steps - len(history["train"]) + 1
    chunk = max(1, math.ceil(len(train) / cols))  # steps per column
    means = [min(sum(train[i:i + chunk]) / len(train[i:i + chunk]), sys.float_info.max)
             for i in range(0, len(train), chunk)]  # (huge losses of a diverged run: no inf)
    val = [(s, v) for s, v in history["val"] if s >= first and math.isfinite(v)]
    lo = min(means + [v for _, v in val])
    span = max(means + [v for _, v in val]) - lo or 1.0

    def height(loss):  # in eighths of a row: 1 for the lowest loss, rows * 8 for the highest
        return 1 + round((loss - lo) / span * (rows * 8 - 1))
    grid = [[" ▁▂▃▄▅▆▇█"[min(8, max(0, height(m) - 8 * r))] for m in means] for r in range(rows)]
    for s, v in val:
        grid[(height(v) - 1) // 8][min(len(means) - 1, (s - first) // chunk)] = "◆"
    lines = [f"loss (nats): █ train, mean of each {chunk} steps; ◆ val" if chunk > 1
             else "loss (nats): █ train; ◆ val"]
    for r in reversed(range(rows)):  # top row first; a tick on the top, middle and bottom rows
        y = lo + span / (rows * 8 - 1) * (8 * r + 3.5)  # (no overflow, even near 1e308)
        tick = (f"{y:5.2f}" if y < 99.995 else f"{y:5.0e}") + " ┤"  # 5 columns, as a rule
        lines.append(((tick if r in (0, rows // 2, rows - 1) else "      │")
                      + "".join(grid[r])).rstrip())
    lines.append("      └" + "─" * len(means))
    lines.append(" " * 7 + str(first).ljust(len(means) - len(str(steps))) + str(steps))
    return lines

# ------------------------------------------------------------------------------------------------
# Command line: flags named as in makemore. Every bad input ends in one line on stderr,
# "microgpt: error: ...", and exit status 2, with nothing overwritten.

def build_parser():
    parser = argparse.ArgumentParser(prog="microgpt", description="Train a tiny GPT on a file "
                                     "of documents, one per line, and sample new ones.")
    arg = parser.add_argument
    arg("--input-file", "-i", help="UTF-8 text, one document per line (default: names.txt)")
    arg("--max-steps", type=int, default=1400, help="training steps (default: 1400)")
    arg("--seed", type=int, default=42, help="seed for data, weights and samples (default: 42; "
        "a checkpoint keeps its own for the data)")
    arg("--n-layer", type=int, default=1, help="transformer blocks (default: 1)")
    arg("--n-head", type=int, default=4, help="attention heads per block (default: 4)")
    arg("--n-embd", type=int, default=12, help="embedding width, a multiple of --n-head (12)")
    arg("--block-size", type=int, help="longest sequence (default: longest document + 1)")
    arg("--batch-size", "-b", type=int, default=6, help="documents per step (default: 6)")
    arg("--learning-rate", "-l", type=float, default=0.015, help="peak Adam learning rate (0.015)")
    arg("--loss-after", metavar="CHAR", help="count the loss only after the first CHAR of each "
        "document (for sums, '=': the answer)")
    arg("--eval-every", type=int, default=700, help="steps between val losses (default: 700)")
    arg("--num-samples", type=int, default=20, help="samples to print at the end (default: 20)")
    arg("--temperature", type=float, default=1.0, help="sampling temperature; 0 is greedy")
    arg("--top-k", type=int, help="sample only from the k most likely characters")
    arg("--prompt", default="", help="every sample starts with this text")
    arg("--out", "-o", help="save the model here (JSON checkpoint)")
    arg("--resume", action="store_true", help="continue training the checkpoint in --out")
    arg("--sample-only", action="store_true", help="only sample from the checkpoint in --out")
    arg("--gradcheck", action="store_true", help="check backprop by finite differences, and stop")
    arg("--explain", metavar="TEXT", help="show what the model predicts at each character of TEXT")
    arg("--plain", action="store_true", help="train with Part 1's code (the same numbers, about "
        "18 times slower)")
    # one line on stderr, no usage block: the message says what to fix
    parser.error = lambda message: parser.exit(2, f"microgpt: error: {visible(message)}\n")
    return parser

def check_text(flag, text, chars, longest):
    """Raise ValueError unless `text` (given with `flag`) uses only `chars` and is at most
    `longest` characters long."""
    unknown = sorted(set(text) - set(chars))
    if unknown:
        raise ValueError(f"{flag} has characters outside the vocabulary: {''.join(unknown)!r}")
    if len(text) > longest:
        raise ValueError(f"{flag} is {len(text)} characters, longer than block_size allows "
                         f"({longest})")

def check_args(args):
    """Raise ValueError for flags that cannot work, before anything is read or written."""
    for flag in ("max_steps", "batch_size", "eval_every", "n_layer", "n_head", "n_embd",
                 "block_size", "top_k"):
        if getattr(args, flag) is not None:
            number(getattr(args, flag), "--" + flag.replace("_", "-"), 1, integer=True)
    number(args.max_steps, "--max-steps", 1, MAX_STEPS, integer=True)
    for flag, path in (("--input-file", args.input_file), ("--out", args.out)):
        if path == "":
            raise ValueError(f"{flag} needs a file name")
    number(args.num_samples, "--num-samples", 0, 100_000, integer=True)
    if args.temperature != 0 and not 1e-100 <= args.temperature <= 10 ** 6:  # NaN included
        raise ValueError(f"--temperature must be 0 (greedy) or from 1e-100 to 1,000,000, not "
                         f"{args.temperature}")  # logits stay below 1e20: / 1e-100 is finite
    number(args.seed, "--seed", -2 ** 63, 2 ** 63 - 1, integer=True)
    if args.loss_after is not None and len(args.loss_after) != 1:
        raise ValueError(f"--loss-after takes one character, not {args.loss_after!r}")
    if not 0 < args.learning_rate < math.inf:
        raise ValueError(f"--learning-rate must be a positive number, not {args.learning_rate}")
    if (args.resume or args.sample_only) and not args.out:
        raise ValueError("--resume and --sample-only need the checkpoint: give it with --out FILE")
    if args.out and not (args.resume or args.sample_only) and os.path.lexists(args.out):
        raise ValueError(f"{args.out} already exists: continue it with --resume, "
                         f"or choose another --out")
    if args.out and (args.out.endswith(("/", os.sep)) or os.path.isdir(args.out)):
        raise ValueError(f"--out names a directory ({args.out}): give a file in it")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise ValueError(f"cannot save to {args.out}: its directory does not exist")

def check_writable(path, config, steps):
    """Raise ValueError unless a checkpoint of this model after `steps` steps can be saved to
    `path`: found now, not after training. It creates the save's hidden file, makes it as big
    as the checkpoint can be (so a limit on file sizes shows), renames it (as a save does),
    removes it, and checks the free space on the disk."""
    size, tmp, created = checkpoint_bytes(config, steps), temp_path(os.path.realpath(path)), False
    try:
        with open(tmp, "x") as f:
            created = True
            os.ftruncate(f.fileno(), size)  # (a sparse file: it takes no room on the disk)
        free = shutil.disk_usage(os.path.dirname(tmp)).free
        renamed = temp_path(os.path.realpath(path))
        os.replace(tmp, renamed)  # a save renames its file: a folder may not allow it
        tmp = renamed
    except OSError as e:
        raise ValueError(f"cannot save to {path}: {e.strerror}")
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    if free < size:
        raise ValueError(f"cannot save to {path}: its disk has {free:,} bytes free, and the "
                         f"checkpoint may need {size:,}")

def prepare(args):
    """Check the flags, read the data, and build the model or load it from the checkpoint in
    --out. Returns (docs, params, config, chars, state); raises ValueError for bad input."""
    check_args(args)
    try:  # as load_docs(), but reading a byte past the cap at most, from any file or stream
        with open(args.input_file, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
        if len(data) > MAX_INPUT_BYTES:
            raise ValueError(f"{args.input_file} is over the {MAX_INPUT_BYTES:,} bytes microgpt "
                             f"reads: sample it (shuf -n 1000000 FILE > sample.txt)")
        lines = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig")
        docs = [line.strip() for line in lines if line.strip()]
    except OSError as e:  # no such file, a directory, no permission
        raise ValueError(f"cannot read {args.input_file} ({e.strerror}): give a UTF-8 text file "
                         f"with one document per line with --input-file")
    except UnicodeDecodeError:  # its offset is within the chunk read: find the file's
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise ValueError(f"{args.input_file} is not UTF-8 text ({e.reason} at byte "
                             f"{e.start:,}, line {line:,}): save it as UTF-8")
    if not docs:
        raise ValueError(f"{args.input_file} has no documents: it is empty or has only blank lines")
    n_train = len(docs) - min(1000, len(docs) // 10)  # as split_docs will split them
    if args.batch_size > n_train and not args.sample_only:
        raise ValueError(f"--batch-size {args.batch_size:,} is more than the {n_train:,} "
                         f"training documents")
    batch = 4 if args.gradcheck else 1 if args.sample_only else args.batch_size  # (gradcheck's 4)
    if args.resume or args.sample_only:
        params, config, chars, state = load_checkpoint(args.out)
        args.out_id = file_id(args.out)  # if it differs when saving, another process wrote it
        unknown = sorted(set(itertools.chain.from_iterable(docs)) - set(chars))
        if unknown and args.resume:
            raise ValueError(f"{args.input_file} has characters the checkpoint does not know: "
                             f"{''.join(unknown)!r}; resume with the file it was trained on")
        if unknown:  # --sample-only: skip the documents the model cannot read
            docs = [d for d in docs if set(d) <= set(chars)]
        if not docs and args.gradcheck:
            raise ValueError(f"--gradcheck needs documents, and the checkpoint knows too few "
                             f"characters to read any in {args.input_file}")
        check_config(config, batch, args.plain,
                     lower=None if args.sample_only else "--batch-size")  # (the rest is fixed)
        if args.resume and state["position"] + args.max_steps * args.batch_size > 10 ** 18:
            raise ValueError(f"{args.out} has read so far into the data (position "
                             f"{state['position']:,}) that it cannot train on")
        if args.resume and not args.sample_only and state["step"] > args.max_steps:
            raise ValueError(f"{args.out} has trained {state['step']:,} steps, more than "
                             f"--max-steps {args.max_steps:,}: give more to train on")
    else:
        chars = sorted(set(itertools.chain.from_iterable(docs)))  # no copy of all of them
        longest = max(len(d) for d in docs) + 1  # BOS and the longest document: all it needs
        config = GPTConfig(len(chars) + 1, min(args.block_size or longest, longest),
                           args.n_layer, args.n_head, args.n_embd)
        check_config(config, batch, args.plain)  # before anything big is made
        params = as_floats(init_params(config, random.Random(args.seed)))
        args.out_id = None  # a file found there when saving was written by another process
        state = {**init_state(params), "seed": args.seed, "position": 0, "shuffle": True,
                 "loss_after": args.loss_after, "history": {"train": [], "val": []}}
    check_text("--prompt", args.prompt, chars, config.block_size)
    if args.explain is not None:
        check_text("--explain", args.explain, chars, config.block_size - 1)
    after = state["loss_after"]  # the checkpoint's, on --resume and --sample-only
    if after is not None and args.explain is not None and after not in args.explain:
        raise ValueError(f"--explain needs a {after!r}: the model's loss counts only after it")
    if after is not None and (args.gradcheck or not args.sample_only):
        lacking = len([d for d in docs if after not in d[:config.block_size - 1]])
        if lacking:
            raise ValueError(f"--loss-after {after!r}: {lacking:,} documents have no {after!r} "
                             f"before block_size cuts them, and would count no loss")
    n_val, work = min(1000, len(docs) // 10), eval_work(config, min(1000, len(docs) // 10))
    if work > MAX_EVAL_WORK and not (args.sample_only or args.gradcheck):
        raise ValueError(f"validating this model ({n_params(config):,} parameters, vocab_size "
                         f"{config.vocab_size:,}) on its {n_val:,} held-out documents would take "
                         f"up to {work:,} multiply-adds; microgpt allows {MAX_EVAL_WORK:,}"
                         + ("" if args.resume else ": lower --n-embd or --n-layer, or train "
                                                      "on text of fewer distinct characters"))
    if args.out and not (args.sample_only or args.gradcheck):
        check_writable(args.out, config, args.max_steps)
    return docs, params, config, chars, state

def run(args):
    """The program: prepare, then gradcheck and stop, or train (unless --sample-only), sample and
    explain. Returns the model (a namespace: params, config, chars, state), or with --gradcheck
    its verdict (True if it passed)."""
    docs, params, config, chars, state = prepare(args)
    model = SimpleNamespace(params=params, config=config, chars=chars, state=state)
    train_docs, val_docs = split_docs(docs, state["seed"])
    print(f"data: {len(docs)} documents from {visible(args.input_file)} ({len(train_docs)} train, "
          f"{len(val_docs)} val), vocab {config.vocab_size} ({len(chars)} characters + BOS)")
    if (args.block_size or 0) > config.block_size and not (args.sample_only or args.resume):
        print(f"block_size {args.block_size:,} is more than the longest document needs: "
              f"using {config.block_size}")
    cut = len([d for d in docs if len(d) >= config.block_size])
    if cut:
        print(f"block_size {config.block_size}: {cut} documents longer than "
              f"{config.block_size - 1} characters are cut")
    print(f"model: {n_params(config)} parameters, n_layer {config.n_layer}, "
          f"n_head {config.n_head}, n_embd {config.n_embd}, block_size {config.block_size}")
    val_tokens = [tokenize(d, chars) for d in val_docs]
    args.after = None if state["loss_after"] is None else chars.index(state["loss_after"])
    if args.after is not None:
        print(f"loss: counted only after the first {state['loss_after']!r} of each document")
    if args.gradcheck:
        try:
            err, n = gradcheck(params, config, [tokenize(d, chars) for d in train_docs[:4]],
                               random.Random(args.seed), plain_grads if args.plain else None,
                               watch=lambda items: progress(items, "gradcheck", args.progress),
                               after=args.after)
        except (ArithmeticError, ValueError):  # ln 0, or an overflow: the model's numbers
            raise ValueError("the model's probabilities underflow or overflow, so there is no "
                             "gradient to check (did its training diverge?)")
        passed = err < GRADCHECK_LIMIT
        print(f"gradcheck: largest relative error {err:.2e} over {n} parameters: "
              + ("passed" if passed else "FAILED") + f" (the limit is {GRADCHECK_LIMIT:.0e})")
        return passed
    if not args.sample_only:
        counted = (tokenize(d, chars) for d in train_docs[:100_000])  # a sample, on big files
        baselines = {"uniform guessing": math.log(config.vocab_size), "bigram counts":
                     bigram_loss(counted, val_tokens, config.vocab_size, config.block_size,
                                 args.after)}
        if val_tokens:
            print("val loss of simpler models: " + ", ".join(
                f"{name} {loss:.4f}" for name, loss in baselines.items()))

        def save(state):
            if not args.out:
                return
            why = ("was written by another process since this run last saved it, or cannot be "
                   "replaced")
            try:
                path, args.out_id = save_checkpoint(args.out, params, config, chars, state,
                                                    args.out_id)
            except OSError as e:  # its folder went, or its disk filled: the training goes on
                why = f"cannot be written ({e.strerror})"
                folder = None
                try:  # in a new folder of the temporary one, where no one else writes
                    folder = tempfile.mkdtemp(prefix="microgpt-")
                    path = os.path.join(folder, os.path.basename(args.out))
                    path, args.out_id = save_checkpoint(path, params, config, chars, state)
                except OSError as e2:
                    if folder:
                        shutil.rmtree(folder, ignore_errors=True)
                    raise ValueError(f"cannot save the checkpoint: {args.out} {why}, nor in the "
                                     f"temporary folder ({e2.strerror})")
            if path != args.out:
                args.out, old = path, args.out
                with contextlib.suppress(OSError):  # (a closed stderr loses the note only)
                    if sys.stderr:  # (None when the shell closed it: print would use stdout)
                        print(visible(f"microgpt: {old} {why}: this run saves to {path} "
                                      f"instead"), file=sys.stderr, flush=True)
        train(params, config, chars, train_docs, val_tokens, state, args, save)
        val = validate(params, config, val_tokens, args)
        step, history = state["step"], state["history"]
        due = step == args.max_steps or step % args.eval_every == 0  # (a stop skips an eval)
        if due and val_tokens and history["val"][-1:] != [[step, val]]:
            history["val"].append([step, val])
        save(state)
        if args.stop:
            print(f"interrupted after step {step}"
                  + (f", saved to {visible(args.out)}" if args.out else ""))
        elif args.out:
            print(f"saved to {visible(args.out)} (--resume trains on, --sample-only samples)")
        print(f"step {step}: val loss {val:.4f}" + (" (" + ", ".join(
            f"{abs(b - val):.4f} {'below' if val < b else 'above'} {name}"
            for name, b in baselines.items()) + ")" if val_tokens
            else " (the file has too few documents to hold any out)"))
        if history["train"]:
            print("\n".join(loss_chart(history, step)))
    rng = random.Random(args.seed)
    samples = [generate(params, config, chars, rng, args.temperature, args.top_k, args.prompt)
               for _ in progress(range(args.num_samples), "sample", args.progress)]
    seen = {s: "new" for s in samples}  # then marked by one pass over the data, not a dict of it
    for name, group in (("train", train_docs), ("val", val_docs)):
        seen.update((d, name) for d in group if d in seen)
    seen[""] = "empty"  # the model drew the end first
    if samples:
        counts = Counter(seen[s] for s in samples)
        print(f"{len(samples)} samples, {counts['new']} new"
              + (f", {counts['empty']} empty" if counts["empty"] else "")
              + " (the others are in the train or val data):")
    width = max([len(visible(s)) for s in samples] + [1])
    for s in samples:
        print("(empty)" if not s else f"{visible(s):<{width}}  {seen[s]}")
    if args.explain is not None:
        print_explain(explain(args.explain, params, config, chars, args.after), chars)
    return model

def main(argv=None):
    """Run the program on the command-line arguments `argv` (default: sys.argv[1:]). Returns the
    model (a namespace: params, config, chars, state), --gradcheck's verdict (True if it passed;
    exit status 1 if not, outside a notebook), or None after an error in a notebook."""
    parser = build_parser()
    try:
        here, notebook = os.path.dirname(os.path.abspath(__file__)), False
    except NameError:  # pasted into a notebook: no file, and sys.argv holds the kernel's arguments
        here, notebook = os.getcwd(), True
        argv = [] if argv is None else argv
    args = parser.parse_args(argv)
    if sys.stdout is None:  # closed by the shell (>&-)
        parser.error("the standard output is closed: to discard it, send it to /dev/null")
    if args.input_file is None:
        args.input_file = os.path.join(here, "names.txt")
    args.progress = notebook or sys.stdout.isatty()  # status lines on a terminal or notebook
    args.stop, args.training = [], False  # the signals received, and whether train() runs
    args.stopping = False  # whether a signal has already stopped what ran outside training

    def stop(signum, frame):  # train() stops after its step; elsewhere, stop at once
        args.stop.append(signum)
        if not args.training and not args.stopping:  # (a second signal: already stopping)
            args.stopping = True
            raise KeyboardInterrupt
    # What main() changes in the process, it puts back as it was when it ends, whatever happens
    collecting, handlers, model, piped = gc.isenabled(), {}, None, False
    errors = sys.stdout.errors if isinstance(sys.stdout, io.TextIOWrapper) else None
    try:
        # Reference counting frees each step's graph, which holds no cycles (tested). CPython's
        # cycle collector would only scan its many live Values again and again. PyPy's stays on.
        if sys.implementation.name == "cpython":
            gc.disable()
        if errors:  # a character the output's encoding lacks is printed as an escape, \u2588
            sys.stdout.reconfigure(errors="backslashreplace")
        if threading.current_thread() is threading.main_thread():  # (signals reach no other)
            handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS
                        if signal.getsignal(s) is not signal.SIG_IGN}  # nohup's stays ignored
        model = run(args)
        sys.stdout.flush()  # here, where a closed pipe or a full disk is caught, not at exit
    except (ValueError, FloatingPointError) as e:  # bad input, or a loss that blew up
        if not notebook:
            parser.error(str(e))
        print(f"microgpt: error: {visible(str(e))}", file=sys.stderr)  # a notebook goes on
    except KeyboardInterrupt:  # a signal outside training: what was saved stays saved
        try:
            sys.stdout.flush()
        except OSError:  # the pipe went too: exit quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:  # printing failed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so exiting is quiet
        if e.errno not in (errno.EPIPE, errno.EIO):  # not just a closed pipe (| head) or terminal
            parser.error(f"cannot print the output: {e.strerror}")
        piped = e.errno == errno.EPIPE
    finally:
        args.stopping = True  # from here on, a signal only sets the exit status
        if collecting:
            gc.enable()
        if errors:
            with contextlib.suppress(OSError):  # (a closed pipe's buffer cannot be flushed)
                sys.stdout.reconfigure(errors=errors)
        for s, handler in handlers.items():
            signal.signal(s, handler)
    if args.stop and not notebook:
        sys.exit(128 + args.stop[0])  # the shell's code for "stopped by signal n": 130 for Ctrl-C
    if piped and not notebook:
        sys.exit(141)  # as a program that a closed pipe's SIGPIPE ended: a script sees it stopped
    if model is False and not notebook:
        sys.exit(1)  # --gradcheck failed
    return model

if __name__ == "__main__":
    model = main()  # in a notebook, the next cell can use it: generate(model.params, ...)
