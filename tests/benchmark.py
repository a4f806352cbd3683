"""Benchmark microgpt (run by hand; the test suite does not run it):

    python tests/benchmark.py [--baseline REV ...] [--pythons python3 pypy3] [--repeat N]
                              [--recipe FLAGS] [--plain] [--skip-e2e]

1. The graph of one name ("olivia") for the default model: nodes and edges per position, with
   Part 1's plain ops and with Part 2's fused ops.
2. One training step of the default model, split into building the graph (forward), ordering
   it for backward, handing gradients along its edges, and Adam; and the time to validate on
   the 1,000 held-out names and to draw 20 samples. For this microgpt.py and, with --baseline,
   for the microgpt.py of each of those git revisions, side by side in this one process.
3. Each gain on its own, in this microgpt.py: the fused ops (against the plain ones), the tape
   (against backward()'s sort), validation on floats (against a graph), and, with --recipe, the
   default recipe (against the given flags, end to end).
4. The default `python microgpt.py`, end to end, for each interpreter given, this version and
   the baselines interleaved (old ones, new, old ones, new, ...), --repeat times each: median
   wall and CPU time, and final val loss. With --plain, also `microgpt.py --plain`.
Times within this process are CPU seconds (time.process_time), steadier than wall time on a
machine shared with others; the end-to-end runs report both. Prints the interpreter and
version, and every command line it runs.
"""
import argparse
import gc
import importlib.util
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import microgpt  # noqa: E402

STEPS = 30  # training steps timed per measurement


def load(path, name):
    """The microgpt.py at `path` as a module of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup(m, seed=42):
    """For module m: (params, config, train token lists, val token lists), the default model."""
    docs = m.load_docs(os.path.join(ROOT, "names.txt"))
    train_docs, val_docs = m.split_docs(docs, seed)
    chars = sorted(set("".join(docs)))
    config = m.GPTConfig(vocab_size=len(chars) + 1, block_size=max(map(len, docs)) + 1,
                         n_layer=1, n_head=4, n_embd=12)
    params = m.init_params(config, random.Random(seed))
    bos = len(chars)
    tokens = [[[bos] + m.encode(d, chars) + [bos] for d in split] for split in (train_docs,
                                                                                 val_docs)]
    return params, config, chars, tokens[0], tokens[1]


def topological(roots):
    """A plain order of the graph behind `roots` (children first), for the edge pass."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in node._children if c._children)
    return order


def hand_on(roots, order):
    """The edge pass alone: hand each node's gradient to its children, in a given order."""
    for root in roots:
        root.grad = 1.0
    for node in reversed(order):
        grad = node.grad
        for child, local_grad in zip(node._children, node._local_grads):
            child.grad += local_grad * grad


def step_breakdown(m):
    """Seconds per training step of module m: forward, ordering, edges, Adam; and seconds for
    validation and for 20 samples."""
    params, config, chars, train, val = setup(m)
    flat = m.parameters(params)
    adam = [[0.0] * len(flat), [0.0] * len(flat)]
    new = hasattr(m, "train_step_fast")
    ops = (getattr(m, "FUSED", None),) if hasattr(m, "PLAIN") else ()  # older: no ops argument
    times = {"forward": 0.0, "ordering": 0.0, "edges": 0.0, "Adam": 0.0}

    def build(batch):  # the graph(s) one step builds: (roots, tape or None)
        if new:
            with m.recording() as tape:
                return [m.batch_loss(batch, params, config, m.FUSED)], tape
        if ops:  # the three-part layout, before the tape: one graph per batch, sorted
            return [m.batch_loss(batch, params, config, *ops)], None
        n = sum(min(config.block_size, len(t) - 1) for t in batch)  # the old per-document step
        return [m.vsum(m.doc_losses(t, params, config)) * (1.0 / n) for t in batch], None
    for step in range(STEPS):
        batch = train[step * 8:(step + 1) * 8]
        roots, _ = build(batch)  # the edge pass alone, on a graph of its own
        order = topological(roots)
        start = time.process_time()
        hand_on(roots, order)
        times["edges"] += time.process_time() - start
        for p in flat:
            p.grad = 0.0
        start = time.process_time()
        roots, tape = build(batch)
        times["forward"] += time.process_time() - start
        start = time.process_time()
        if new:
            m.backward_on_tape(roots[0], tape)
        else:
            for root in roots:
                root.backward()
        times["ordering"] += time.process_time() - start  # the edges are taken out below
        start = time.process_time()
        m.adam_step(flat, adam[0], adam[1], step + 1, 0.015)
        times["Adam"] += time.process_time() - start
        roots = tape = order = None  # free this step's graphs now, not inside the next timing
    times["ordering"] = max(0.0, times["ordering"] - times["edges"])
    times = {k: v / STEPS for k, v in times.items()}
    start = time.process_time()
    if new:
        m.evaluate(val, m.as_floats(params), config, m.FLOATS)
    else:
        m.evaluate(val, params, config, *ops)
    times["validation"] = time.process_time() - start
    start, rng = time.process_time(), random.Random(42)
    for _ in range(20):
        if new:
            m.sample(m.as_floats(params), config, chars, rng, ops=m.FLOATS)
        else:
            m.sample(params, config, chars, rng, *ops)
    times["20 samples"] = time.process_time() - start
    return times


def seconds_per_step(step, steps=STEPS):
    """Mean seconds of step(state, batch, params, config, lr) over `steps` steps of the default,
    at batch 8."""
    params, config, _, train, _ = setup(microgpt)
    state = microgpt.init_state(params)
    start = time.process_time()
    for i in range(steps):
        step(state, microgpt.get_batch(train, 8 * i, 8), params, config, 0.015)
    return (time.process_time() - start) / steps


def gains():
    """Each of Part 2's changes on its own, as (name, before, after, unit)."""
    plain = seconds_per_step(microgpt.train_step, steps=5)
    fused = seconds_per_step(lambda *args: microgpt.train_step(*args, ops=microgpt.FUSED))
    tape = seconds_per_step(microgpt.train_step_fast)
    params, config, _, _, val = setup(microgpt)
    start = time.process_time()
    microgpt.evaluate(val, params, config, microgpt.FUSED)
    graph = time.process_time() - start
    start = time.process_time()
    microgpt.evaluate(val, microgpt.as_floats(params), config, microgpt.FLOATS)
    floats = time.process_time() - start
    return [("fused ops (a training step: plain ops, then fused; both sorted)", plain, fused),
            ("the tape (a fused training step: sorted, then taped)", fused, tape),
            ("validation on floats (1,000 names: a graph, then floats)", graph, floats)]


def version_of(python):
    return subprocess.run([python, "-c", "import sys, platform; print("
                           "platform.python_implementation(), sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def end_to_end(python, script, extra=()):
    """(seconds of wall time, CPU seconds, final val loss) of one run of `script`."""
    cmd = [python, script, *extra]
    print("$ " + " ".join(cmd), flush=True)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, float(re.findall(r"val loss (\d+\.\d+)", out)[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythons", nargs="+", default=[sys.executable],
                        help="interpreters for the end-to-end runs (default: this one)")
    parser.add_argument("--baseline", metavar="REV", nargs="+", default=[],
                        help="also measure the microgpt.py of these git revisions, beside this one")
    parser.add_argument("--repeat", type=int, default=1, help="end-to-end runs of each (default 1)")
    parser.add_argument("--recipe", metavar="FLAGS",
                        help="also run this microgpt.py end to end with these flags (an older "
                             "recipe, say) beside its defaults")
    parser.add_argument("--plain", action="store_true",
                        help="also time `microgpt.py --plain` end to end (slow)")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end runs")
    args = parser.parse_args()
    print(f"interpreter: {platform.python_implementation()} {sys.version.split()[0]} "
          f"({sys.executable})")
    print(f"$ {sys.executable} {' '.join(sys.argv)}")
    if sys.implementation.name == "cpython":
        gc.disable()  # as microgpt.main does

    for label, ops in (("plain", microgpt.PLAIN), ("fused", microgpt.FUSED)):
        params, config, chars, _, _ = setup(microgpt)
        tokens = microgpt.tokenize("olivia", chars)
        nodes, edges = microgpt.graph_size(microgpt.batch_loss([tokens], params, config, ops))
        n = len(tokens) - 1
        print(f"graph of 'olivia' ({n} positions), {label} ops: {nodes} nodes, {edges} edges; "
              f"per position {nodes / n:,.0f} nodes, {edges / n:,.0f} edges")

    with tempfile.TemporaryDirectory() as tmp:
        # each version runs from a copy, beside its own names.txt, so that editing the working
        # tree during a long benchmark changes nothing
        with open(os.path.join(ROOT, "microgpt.py"), encoding="utf-8") as f:
            sources = {"this": f.read()}
        for rev in args.baseline:
            sources[rev] = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:microgpt.py"],
                                          capture_output=True, text=True, check=True).stdout
        scripts = {}
        for i, (name, source) in enumerate(sources.items()):
            os.mkdir(os.path.join(tmp, str(i)))
            scripts[name] = os.path.join(tmp, str(i), "microgpt.py")
            with open(scripts[name], "w", encoding="utf-8") as f:
                f.write(source)
            shutil.copy(os.path.join(ROOT, "names.txt"), os.path.join(tmp, str(i)))

        rows = {name: step_breakdown(load(path, f"microgpt_{i}"))
                for i, (name, path) in enumerate(scripts.items())}
        print(f"\nCPU seconds, default model, batch 8 ({STEPS} steps; CPython's collector off):")
        print(f"{'':22}" + "".join(f"{name:>12}" for name in rows))
        for part in rows["this"]:
            print(f"{part:22}" + "".join(f"{r[part]:12.4f}" for r in rows.values()))
        per_step = {name: sum(r[p] for p in ("forward", "ordering", "edges", "Adam"))
                    for name, r in rows.items()}
        print(f"{'a training step':22}" + "".join(f"{s:12.4f}" for s in per_step.values()))

        print("\neach gain on its own, in this microgpt.py:")
        for name, before, after in gains():
            print(f"  {name}: {before:.4f} s -> {after:.4f} s, {before / after:.2f}x")
        if args.skip_e2e:
            return

        for python in args.pythons:
            version = version_of(python)
            runs = {name: [] for name in scripts}
            extra_runs = {}
            if args.recipe:
                extra_runs[f"this {args.recipe}"] = args.recipe.split()
            if args.plain:
                extra_runs["this --plain"] = ["--plain"]
            runs.update({name: [] for name in extra_runs})
            for _ in range(args.repeat):
                for name, script in reversed(list(scripts.items())):  # the old one first
                    runs[name].append(end_to_end(python, script))
                for name, flags in extra_runs.items():
                    runs[name].append(end_to_end(python, scripts["this"], flags))
            for name, results in runs.items():
                wall, cpu = (statistics.median(r[i] for r in results) for i in (0, 1))
                print(f"default run, {version}, {name}: median of {len(results)}: {wall:.1f} s "
                      f"wall ({', '.join(f'{r[0]:.1f}' for r in results)}), {cpu:.1f} s CPU "
                      f"({', '.join(f'{r[1]:.1f}' for r in results)}), final val loss "
                      f"{results[-1][2]:.4f}")
            this = [statistics.median(r[i] for r in runs["this"]) for i in (0, 1)]
            for name in runs:
                if name != "this":
                    other = [statistics.median(r[i] for r in runs[name]) for i in (0, 1)]
                    print(f"default run, {version}: this version is {other[0] / this[0]:.2f}x as "
                          f"fast as {name} in wall time, {other[1] / this[1]:.2f}x in CPU time")


if __name__ == "__main__":
    main()
