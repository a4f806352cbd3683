"""The autograd: Value's ops against finite differences; Part 2's layers, each backward derived
by hand, against Part 1's ops and autograd."""
import math
import random
import sys
import unittest

import microgpt
from microgpt import Value


def numeric_grad(f, xs, h=1e-6):
    """Central finite differences of the scalar function f (of a list of floats) at xs."""
    grads = []
    for i in range(len(xs)):
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


def backprop(f, xs):
    """f's value and gradient at xs by backward() through Values."""
    vs = [Value(x) for x in xs]
    out = f(vs)
    out.backward()
    return out.data, [v.grad for v in vs]


class AtomicOpsTest(unittest.TestCase):
    CASES = {
        "add": (lambda a, b: a + b, [0.7, -1.3]),
        "sub": (lambda a, b: a - b, [0.7, -1.3]),
        "mul": (lambda a, b: a * b, [0.7, -1.3]),
        "div": (lambda a, b: a / b, [0.7, -1.3]),
        "pow": (lambda a: a ** 3, [0.7]),
        "pow_negative": (lambda a: a ** -0.5, [1.7]),
        "neg": (lambda a: -a, [0.7]),
        "exp": (lambda a: a.exp(), [0.7]),
        "log": (lambda a: a.log(), [0.7]),
        "tanh": (lambda a: a.tanh(), [0.7]),
        "radd": (lambda a: 2 + a, [0.7]),
        "rmul": (lambda a: 2 * a, [0.7]),
        "reused": (lambda a, b: a * a + a * b, [0.7, -1.3]),
    }

    def test_value_and_gradient_match_finite_differences(self):
        for name, (f, xs) in self.CASES.items():
            with self.subTest(op=name):
                def plain(fs):
                    return f(*[Value(x) for x in fs]).data
                value, grads = backprop(lambda vs: f(*vs), xs)
                self.assertAlmostEqual(value, plain(xs), places=12)
                for g, n in zip(grads, numeric_grad(plain, xs)):
                    self.assertAlmostEqual(g, n, delta=1e-6 * max(1.0, abs(n)))

    def test_forward_values(self):
        a, b = Value(3.0), Value(-2.0)
        self.assertEqual((a + b).data, 1.0)
        self.assertEqual((a * b).data, -6.0)
        self.assertEqual((a / b).data, -1.5)
        self.assertEqual((a ** 2).data, 9.0)

    def test_backward_walks_a_graph_of_any_depth_at_pythons_default_recursion_limit(self):
        x = Value(1.0)
        y = x
        for _ in range(100_000):  # a chain 100 times deeper than 1,000 nested calls allow
            y = y + x * 1.0
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(1000)  # Python's default
        try:
            y.backward()
        finally:
            sys.setrecursionlimit(limit)
        self.assertEqual(x.grad, 100_001.0)

    def test_backward_orders_the_graph_as_a_recursive_walk_does(self):
        # the same order makes the same sums in the same order: the same gradients, to the bit
        def recursive_order(root):
            order, seen = [], set()

            def visit(v):
                if v not in seen:
                    seen.add(v)
                    for child in v._children:
                        visit(child)
                    order.append(v)
            visit(root)
            return order
        config = microgpt.GPTConfig(vocab_size=6, block_size=4, n_head=2, n_embd=4)
        params = microgpt.init_params(config, random.Random(0))
        loss = microgpt.batch_loss([[5, 0, 1, 5], [5, 2, 5]], params, config)
        order = recursive_order(loss)
        loss.backward()
        got = [v.grad for v in order]
        for v in order:
            v.grad = 0.0
        loss.grad = 1.0
        for node in reversed(order):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad
        self.assertEqual(got, [v.grad for v in order])

    def test_backward_works_from_an_intermediate_node(self):
        a, b = Value(2.0), Value(5.0)
        c = a * b
        _ = c + 1
        c.backward()
        self.assertEqual((a.grad, b.grad), (5.0, 2.0))


class PlainBlocksTest(unittest.TestCase):
    """Part 1's ops compute the math they are named for (Part 2's are checked against them)."""

    def data(self, vs):
        return [v.data for v in vs]

    def test_dot_and_linear(self):
        x = [Value(1.0), Value(2.0)]
        self.assertEqual(microgpt.dot(x, [Value(3.0), Value(-1.0)]).data, 1.0)
        w = [[Value(1.0), Value(0.0)], [Value(0.5), Value(0.5)], [Value(2.0), Value(-1.0)]]
        self.assertEqual(self.data(microgpt.linear(x, w)), [1.0, 1.5, 0.0])

    def test_softmax_and_cross_entropy(self):
        probs = self.data(microgpt.softmax([Value(0.0), Value(math.log(2.0)), Value(0.0)]))
        for p, want in zip(probs, [0.25, 0.5, 0.25]):
            self.assertAlmostEqual(p, want, places=15)
        self.assertAlmostEqual(microgpt.cross_entropy([Value(3.0)] * 27, 5).data, math.log(27))
        self.assertAlmostEqual(microgpt.cross_entropy([Value(0.0), Value(math.log(3.0))], 1).data,
                               -math.log(0.75))

    def test_layernorm_gives_mean_0_and_variance_1_before_weight_and_bias(self):
        x = [Value(v) for v in (1.0, 5.0, -2.0, 4.0)]
        y = self.data(microgpt.layernorm(x, [Value(1.0)] * 4, [Value(0.0)] * 4, eps=0.0))
        self.assertAlmostEqual(sum(y) / 4, 0.0, places=15)
        self.assertAlmostEqual(sum(v * v for v in y) / 4, 1.0, places=14)
        z = self.data(microgpt.layernorm(x, [Value(2.0)] * 4, [Value(3.0)] * 4, eps=0.0))
        self.assertEqual(z, [2 * v + 3 for v in y])

    def test_gelu_is_a_smooth_relu(self):
        y = self.data(microgpt.gelu([Value(v) for v in (-10.0, 0.0, 1.0, 10.0)]))
        self.assertAlmostEqual(y[0], 0.0, places=12)
        self.assertEqual(y[1], 0.0)
        self.assertAlmostEqual(y[2], 0.8412, places=4)  # GPT-2's tanh form at 1
        self.assertAlmostEqual(y[3], 10.0, places=12)


def matrix(rng, rows, cols, scale=1.0):
    return [[rng.gauss(0, scale) for _ in range(cols)] for _ in range(rows)]


def values(m):
    return [[Value(v) for v in row] for row in m]


def grads(m):
    return [[v.grad for v in row] for row in m]


class LayerByLayerTest(unittest.TestCase):
    """Each of Part 2's layers gives the outputs of Part 1's ops, and its backward the gradients
    Part 1's autograd finds, within 1e-12 of max(1, |a|, |b|)."""

    def assertClose(self, a, b):
        if isinstance(a, list):
            self.assertEqual(len(a), len(b))
            for x, y in zip(a, b):
                self.assertClose(x, y)
        else:
            self.assertLessEqual(abs(a - b), 1e-12 * max(1.0, abs(a), abs(b)), (a, b))

    def backprop(self, outs, rng):
        """Weight each output Value by a random number, sum and backprop; the weights are the
        gradient of that loss with respect to the outputs (dout)."""
        dout = [[rng.uniform(-1, 1) for _ in row] for row in outs]
        loss = sum(o * d for row, drow in zip(outs, dout) for o, d in zip(row, drow))
        loss.backward()
        return dout

    def test_matmul(self):
        rng = random.Random(0)
        x, w = matrix(rng, 5, 4), matrix(rng, 3, 4)
        xv, wv = values(x), values(w)
        outs = [microgpt.linear(row, wv) for row in xv]
        self.assertClose(microgpt.matmul_forward(x, w), [[o.data for o in row] for row in outs])
        dx, dw = microgpt.matmul_backward(self.backprop(outs, rng), x, w)
        self.assertClose(dx, grads(xv))
        self.assertClose(dw, grads(wv))

    def test_layernorm(self):
        rng = random.Random(1)
        x, (weight, bias) = matrix(rng, 4, 6, scale=2.0), matrix(rng, 2, 6)
        xv, (wv, bv) = values(x), values([weight, bias])
        outs = [microgpt.layernorm(row, wv, bv) for row in xv]
        out, means, rstds = microgpt.layernorm_forward(x, weight, bias)
        self.assertClose(out, [[o.data for o in row] for row in outs])
        dx, dweight, dbias = microgpt.layernorm_backward(self.backprop(outs, rng), x, means,
                                                         rstds, weight)
        self.assertClose(dx, grads(xv))
        self.assertClose([dweight, dbias], grads([wv, bv]))

    def test_gelu(self):
        rng = random.Random(2)
        x = matrix(rng, 3, 5, scale=3.0)
        xv = values(x)
        outs = [microgpt.gelu(row) for row in xv]
        out, tanhs = microgpt.gelu_forward(x)
        self.assertClose(out, [[o.data for o in row] for row in outs])
        self.assertClose(microgpt.gelu_backward(self.backprop(outs, rng), x, tanhs), grads(xv))

    def test_attention(self):
        # two documents of 3 and 1 positions, 2 heads of 3: gpt()'s attention, on Values
        rng, n_head, lengths = random.Random(3), 2, [3, 1]
        q, k, v = (matrix(rng, 4, 6) for _ in range(3))
        qv, kv, vv = values(q), values(k), values(v)
        outs, n = [], 0
        for length in lengths:
            keys, vals = kv[n:n + length], vv[n:n + length]
            for t in range(length):
                out = []
                for s in (0, 3):
                    scores = [microgpt.dot(qv[n + t][s:s + 3], key[s:s + 3]) / math.sqrt(3)
                              for key in keys[:t + 1]]
                    attn = microgpt.softmax(scores)
                    out += [microgpt.dot(attn, [val[s + j] for val in vals]) for j in range(3)]
                outs.append(out)
            n += length
        caches = [(k[:3], v[:3]), (k[3:], v[3:])]
        heads, attn = microgpt.attention_forward(q, caches, lengths, n_head)
        self.assertClose(heads, [[o.data for o in row] for row in outs])
        self.assertEqual([len(w) for row in attn for w in row], [1, 1, 2, 2, 3, 3, 1, 1])
        dq, dk, dv = microgpt.attention_backward(self.backprop(outs, rng), q, caches, attn, n_head)
        self.assertClose([dq, dk, dv], [grads(qv), grads(kv), grads(vv)])

    def test_attention_is_causal(self):
        # the outputs at a position do not depend on any later position's key or value
        rng = random.Random(4)
        q, k, v = (matrix(rng, 4, 4) for _ in range(3))
        before = microgpt.attention_forward(q, [(k, v)], [4], 2)[0]
        k[3], v[3] = [9.0] * 4, [-9.0] * 4
        after = microgpt.attention_forward(q, [(k, v)], [4], 2)[0]
        self.assertEqual(before[:3], after[:3])
        self.assertNotEqual(before[3], after[3])

    def test_cross_entropy(self):
        rng = random.Random(5)
        for scale in (1.0, 30.0):
            with self.subTest(scale=scale):
                logits, targets, counted = matrix(rng, 3, 6, scale), [0, 4, 2], [True, False, True]
                lv = values(logits)
                loss = sum(microgpt.cross_entropy(row, t) for row, t, c in zip(lv, targets, counted)
                           if c) / 2
                loss.backward()
                losses, probs = microgpt.cross_entropy_forward(logits, targets)
                self.assertClose(losses, [microgpt.cross_entropy(row, t).data
                                          for row, t in zip(lv, targets)])
                self.assertClose(microgpt.cross_entropy_backward(probs, targets, counted),
                                 grads(lv))

    def test_cross_entropy_of_large_logits_is_finite(self):
        losses, probs = microgpt.cross_entropy_forward([[1000.0, 0.0]], [1])
        self.assertAlmostEqual(losses[0], 1000.0)
        self.assertEqual(microgpt.cross_entropy_backward(probs, [1], [True]), [[1.0, -1.0]])
        self.assertEqual(microgpt.softmax_floats([1000.0, 0.0]), [1.0, 0.0])

    def test_embeddings(self):
        rng = random.Random(6)
        wte, wpe = matrix(rng, 5, 3), matrix(rng, 4, 3)
        tv, pv = values(wte), values(wpe)
        inputs, starts = [[4, 1, 1], [2]], [0, 1]  # the second continues at position 1
        outs = [[a + b for a, b in zip(tv[token], pv[start + i])]
                for tokens, start in zip(inputs, starts) for i, token in enumerate(tokens)]
        self.assertClose(microgpt.encoder_forward(inputs, starts, wte, wpe),
                         [[o.data for o in row] for row in outs])
        dwte, dwpe = microgpt.encoder_backward(self.backprop(outs, rng), inputs, starts, wte,
                                               wpe)
        self.assertClose([dwte, dwpe], [grads(tv), grads(pv)])


if __name__ == "__main__":
    unittest.main()
