"""The autograd: Value's ops against finite differences, Part 2's fused ops against Part 1's
plain ones."""
import math
import random
import sys
import unittest

import microgpt
from microgpt import FUSED, PLAIN, Value


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
        "rsub": (lambda a: 1 - a, [0.7]),
        "rmul": (lambda a: 2 * a, [0.7]),
        "rdiv": (lambda a: 1 / a, [0.7]),
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
        self.assertEqual((1 - a).data, -2.0)

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
        self.assertEqual(PLAIN.dot(x, [Value(3.0), Value(-1.0)]).data, 1.0)
        w = [[Value(1.0), Value(0.0)], [Value(0.5), Value(0.5)], [Value(2.0), Value(-1.0)]]
        self.assertEqual(self.data(PLAIN.linear(x, w)), [1.0, 1.5, 0.0])

    def test_softmax_and_cross_entropy(self):
        probs = self.data(PLAIN.softmax([Value(0.0), Value(math.log(2.0)), Value(0.0)]))
        for p, want in zip(probs, [0.25, 0.5, 0.25]):
            self.assertAlmostEqual(p, want, places=15)
        self.assertAlmostEqual(PLAIN.cross_entropy([Value(3.0)] * 27, 5).data, math.log(27))
        self.assertAlmostEqual(PLAIN.cross_entropy([Value(0.0), Value(math.log(3.0))], 1).data,
                               -math.log(0.75))

    def test_layernorm_gives_mean_0_and_variance_1_before_weight_and_bias(self):
        x = [Value(v) for v in (1.0, 5.0, -2.0, 4.0)]
        y = self.data(PLAIN.layernorm(x, [Value(1.0)] * 4, [Value(0.0)] * 4, eps=0.0))
        self.assertAlmostEqual(sum(y) / 4, 0.0, places=15)
        self.assertAlmostEqual(sum(v * v for v in y) / 4, 1.0, places=14)
        z = self.data(PLAIN.layernorm(x, [Value(2.0)] * 4, [Value(3.0)] * 4, eps=0.0))
        self.assertEqual(z, [2 * v + 3 for v in y])

    def test_gelu_is_a_smooth_relu(self):
        y = self.data(PLAIN.gelu([Value(v) for v in (-10.0, 0.0, 1.0, 10.0)]))
        self.assertAlmostEqual(y[0], 0.0, places=12)
        self.assertEqual(y[1], 0.0)
        self.assertAlmostEqual(y[2], 0.8412, places=4)  # GPT-2's tanh form at 1
        self.assertAlmostEqual(y[3], 10.0, places=12)


class FusedOpsTest(unittest.TestCase):
    """Each fused block gives the values and gradients of the plain block it replaces."""

    def assertClose(self, fused, plain, rel=1e-12):
        for a, b in zip(fused, plain):
            self.assertLessEqual(abs(a - b), rel * max(1.0, abs(a), abs(b)), (fused, plain))
        self.assertEqual(len(fused), len(plain))

    def compare(self, f_fused, f_plain, n_inputs, scale=1.0, seed=0):
        """Build both on the same random inputs, weight each output by a random number, sum and
        backprop; compare outputs and the gradients of every input."""
        rng = random.Random(seed)
        xs = [rng.gauss(0, scale) for _ in range(n_inputs)]
        coef = None
        results = []
        for f in (f_fused, f_plain):
            vs = [Value(x) for x in xs]
            outs = f(vs)
            outs = outs if isinstance(outs, list) else [outs]
            coef = coef or [rng.uniform(-1, 1) for _ in outs]
            loss = sum((o * c for o, c in zip(outs, coef)), Value(0.0))
            loss.backward()
            results.append(([o.data for o in outs], [v.grad for v in vs]))
        (out_f, grad_f), (out_a, grad_a) = results
        self.assertClose(out_f, out_a)
        self.assertClose(grad_f, grad_a)

    def test_dot(self):
        self.compare(lambda v: FUSED.dot(v[:8], v[8:]), lambda v: PLAIN.dot(v[:8], v[8:]), 16)

    def test_linear(self):
        def split(v):
            return [v[i * 5:(i + 1) * 5] for i in range(3)], v[15:]
        self.compare(lambda v: FUSED.linear(split(v)[1], split(v)[0]),
                     lambda v: PLAIN.linear(split(v)[1], split(v)[0]), 20)

    def test_softmax(self):
        for scale in (1.0, 30.0):
            with self.subTest(scale=scale):
                self.compare(FUSED.softmax, PLAIN.softmax, 7, scale)

    def test_softmax_of_large_logits_does_not_overflow(self):
        probs = FUSED.softmax([Value(1000.0), Value(0.0)])
        self.assertEqual([p.data for p in probs], [1.0, 0.0])
        probs[0].backward()
        self.assertTrue(all(math.isfinite(p.data) for p in probs))

    def test_cross_entropy(self):
        for target in (0, 4):
            for scale in (1.0, 30.0):
                with self.subTest(target=target, scale=scale):
                    self.compare(lambda v: FUSED.cross_entropy(v, target),
                                 lambda v: PLAIN.cross_entropy(v, target), 6, scale)

    def test_cross_entropy_of_large_logits_is_finite(self):
        logits = [Value(1000.0), Value(0.0)]
        loss = FUSED.cross_entropy(logits, 1)
        loss.backward()
        self.assertAlmostEqual(loss.data, 1000.0)
        self.assertEqual([z.grad for z in logits], [1.0, -1.0])

    def test_layernorm(self):
        def args(v):
            return v[:6], v[6:12], v[12:]
        self.compare(lambda v: FUSED.layernorm(*args(v)), lambda v: PLAIN.layernorm(*args(v)),
                     18, scale=2.0)

    def test_gelu(self):
        self.compare(FUSED.gelu, PLAIN.gelu, 9, scale=3.0)


if __name__ == "__main__":
    unittest.main()
