"""The autograd: atomic ops against finite differences, fused ops against the atomic ops."""
import math
import random
import unittest

import atomic
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
        "relu_positive": (lambda a: a.relu(), [0.7]),
        "relu_negative": (lambda a: a.relu(), [-0.7]),
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
        self.assertEqual(b.relu().data, 0.0)

    def test_backward_on_a_deep_graph_does_not_recurse(self):
        x = Value(1.0)
        y = x
        for _ in range(20000):  # far deeper than Python's recursion limit
            y = y + x * 1.0
        y.backward()
        self.assertEqual(x.grad, 20001.0)

    def test_backward_works_from_an_intermediate_node(self):
        a, b = Value(2.0), Value(5.0)
        c = a * b
        _ = c + 1
        c.backward()
        self.assertEqual((a.grad, b.grad), (5.0, 2.0))


class FusedOpsTest(unittest.TestCase):
    """Each fused op gives the values and gradients of its atomic composition (tests/atomic.py)."""

    def assertClose(self, fused, atomic_, rel=1e-12):
        for a, b in zip(fused, atomic_):
            self.assertLessEqual(abs(a - b), rel * max(1.0, abs(a), abs(b)), (fused, atomic_))
        self.assertEqual(len(fused), len(atomic_))

    def compare(self, f_fused, f_atomic, n_inputs, scale=1.0, seed=0):
        """Build both on the same random inputs, weight each output by a random number, sum and
        backprop; compare outputs and the gradients of every input."""
        rng = random.Random(seed)
        xs = [rng.gauss(0, scale) for _ in range(n_inputs)]
        coef = None
        results = []
        for f in (f_fused, f_atomic):
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

    def test_vsum(self):
        self.compare(microgpt.vsum, atomic.vsum, 9)

    def test_dot(self):
        self.compare(lambda v: microgpt.dot(v[:8], v[8:]), lambda v: atomic.dot(v[:8], v[8:]), 16)

    def test_linear(self):
        def split(v):
            return [v[i * 5:(i + 1) * 5] for i in range(3)], v[15:]
        self.compare(lambda v: microgpt.linear(split(v)[1], split(v)[0]),
                     lambda v: atomic.linear(split(v)[1], split(v)[0]), 20)

    def test_softmax(self):
        for scale in (1.0, 30.0):
            with self.subTest(scale=scale):
                self.compare(microgpt.softmax, atomic.softmax, 7, scale)

    def test_softmax_of_large_logits_does_not_overflow(self):
        probs = microgpt.softmax([Value(1000.0), Value(0.0)])
        self.assertEqual([p.data for p in probs], [1.0, 0.0])
        probs[0].backward()
        self.assertTrue(all(math.isfinite(p.data) for p in probs))

    def test_cross_entropy(self):
        for target in (0, 4):
            for scale in (1.0, 30.0):
                with self.subTest(target=target, scale=scale):
                    self.compare(lambda v: microgpt.cross_entropy(v, target),
                                 lambda v: atomic.cross_entropy(v, target), 6, scale)

    def test_cross_entropy_of_large_logits_is_finite(self):
        logits = [Value(1000.0), Value(0.0)]
        loss = microgpt.cross_entropy(logits, 1)
        loss.backward()
        self.assertAlmostEqual(loss.data, 1000.0)
        self.assertEqual([z.grad for z in logits], [1.0, -1.0])

    def test_layernorm(self):
        def args(v):
            return v[:6], v[6:12], v[12:]
        self.compare(lambda v: microgpt.layernorm(*args(v)), lambda v: atomic.layernorm(*args(v)),
                     18, scale=2.0)

    def test_gelu(self):
        self.compare(microgpt.gelu, atomic.gelu, 9, scale=3.0)


if __name__ == "__main__":
    unittest.main()
