"""Benchmark microgpt (run by hand; the test suite does not run it):

    python tests/benchmark.py [--baseline REV ...] [--sizes 12 32] [--repeat N]
                              [--pythons python3 pypy3] [--e2e FLAGS ...] [--skip-e2e]

1. One training step (forward, backward and Adam, at batch 8 on names.txt) at each n_embd of
   --sizes: CPU milliseconds and tokens per second, for this microgpt.py and, with --baseline,
   for the microgpt.py of each of those git revisions, interleaved (old, new, old, new, ...)
   --repeat times in this one process, medians.
2. The floor: the same steps' multiply-adds alone (every matrix product's forward, dx and dw,
   and attention's scores and weighted sums with their backward), as bare
   sum(map(operator.mul, a, b)) calls over lists of the same lengths, nothing else. The step's
   time is printed as a multiple of it.
3. End to end, for each interpreter of --pythons: `microgpt.py` with each of --e2e's flag sets
   (default: the defaults), this version and the baselines interleaved, --repeat times: median
   wall and CPU time, and the final val loss.
Times within this process are CPU seconds (time.process_time), steadier than wall time on a
machine shared with others. Prints the interpreter and every command line it runs.
"""
import argparse
import gc
import importlib.util
import operator
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
STEPS = 20  # training steps per measurement


def load(path, name):
    """The microgpt.py at `path` as a module of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(m, config, seed=42):
    """Training batches of 8 token lists, in the order microgpt reads names.txt."""
    docs = m.load_docs(os.path.join(ROOT, "names.txt"))
    train, _ = m.split_docs(docs, seed)
    chars = sorted(set("".join(docs)))
    tokens = [m.tokenize(d, chars) for d in train[:8 * STEPS * 50]]
    return [tokens[i:i + 8] for i in range(0, len(tokens), 8)]


def stepper(m, config):
    """A function doing one training step of module m on a batch: its train_step_fast on a fresh
    default-seeded model (on floats where the module trains on floats)."""
    params = m.init_params(config, random.Random(42))
    if hasattr(m, "gpt_forward"):  # backprop by hand: the model is its floats
        params = m.as_floats(params)
    state = m.init_state(params)
    return lambda batch: m.train_step_fast(state, batch, params, config, 0.01)


def milliseconds_per_step(step, work, first):
    """CPU milliseconds per step of `step` over STEPS batches of `work` from `first` on, and the
    tokens (positions) they read per second."""
    gc.collect()
    start = time.process_time()
    for batch in work[first:first + STEPS]:
        step(batch)
    seconds = (time.process_time() - start) / STEPS
    tokens = sum(len(t) - 1 for batch in work[first:first + STEPS] for t in batch) / STEPS
    return seconds * 1000, tokens / seconds


def dot_lengths(m, config, work):
    """The length of every dot product one step of this microgpt makes on each batch of `work`
    (matrix products, attention and their backward), from the shapes of its calls."""
    lengths, real = [], {name: getattr(m, name) for name in (
        "matmul_forward", "matmul_backward", "attention_forward", "attention_backward")}

    def matmul_forward(x, w):
        lengths.extend([len(w[0])] * (len(x) * len(w)))
        return real["matmul_forward"](x, w)

    def matmul_backward(dout, x, w):
        lengths.extend([len(w)] * (len(dout) * len(w[0])))  # dx
        lengths.extend([len(x)] * (len(w) * len(w[0])))  # dw
        return real["matmul_backward"](dout, x, w)

    def attention_forward(q, caches, lengths_, n_head):
        heads, attn = real["attention_forward"](q, caches, lengths_, n_head)
        head_dim = len(q[0]) // n_head
        for row in attn:
            for weights in row:  # the scores, then the weighted sums
                lengths.extend([head_dim] * len(weights) + [len(weights)] * head_dim)
        return heads, attn

    def attention_backward(dheads, q, caches, attn, n_head):
        head_dim = len(q[0]) // n_head
        for keys, _ in caches:
            n = len(keys)
            for _ in range(n_head):
                for t in range(n):  # da, dscores' sum, dq; then dv and dk from position t on
                    lengths.extend([head_dim] * (t + 1) + [t + 1] * (1 + head_dim)
                                   + [n - t] * (2 * head_dim))
        return real["attention_backward"](dheads, q, caches, attn, n_head)
    for name, f in (("matmul_forward", matmul_forward), ("matmul_backward", matmul_backward),
                    ("attention_forward", attention_forward),
                    ("attention_backward", attention_backward)):
        setattr(m, name, f)
    try:
        step = stepper(m, config)
        per_batch = []
        for batch in work:
            lengths.clear()
            step(batch)
            per_batch.append(list(lengths))
        return per_batch
    finally:
        for name, f in real.items():
            setattr(m, name, f)


def floor_milliseconds(per_batch):
    """CPU milliseconds per step of the dot products alone: sum(map(mul, a, b)) over lists of
    the lengths given, for each batch."""
    rng = random.Random(0)
    pairs = {n: ([rng.random() for _ in range(n)], [rng.random() for _ in range(n)])
             for lengths in per_batch for n in set(lengths)}
    mul = operator.mul
    gc.collect()
    start = time.process_time()
    for lengths in per_batch:
        for n in lengths:
            a, b = pairs[n]
            sum(map(mul, a, b))
    return (time.process_time() - start) / len(per_batch) * 1000


def version_of(python):
    return subprocess.run([python, "-c", "import sys, platform; print("
                           "platform.python_implementation(), sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def end_to_end(python, script, flags):
    """(seconds of wall time, CPU seconds, final val loss) of one run of `script`."""
    cmd = [python, script, *flags]
    print("$ " + " ".join(cmd), flush=True)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, float(re.findall(r"val loss (\d+\.\d+)", out)[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", metavar="REV", nargs="+", default=[],
                        help="also measure the microgpt.py of these git revisions, beside this one")
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 32],
                        help="n_embd of the models whose steps are timed (default: 12 32)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each (default 3)")
    parser.add_argument("--pythons", nargs="+", default=[sys.executable],
                        help="interpreters for the end-to-end runs (default: this one)")
    parser.add_argument("--e2e", metavar="FLAGS", nargs="+", default=[""],
                        help="flag sets for the end-to-end runs, each one string "
                             "(default: the defaults)")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end runs")
    args = parser.parse_args()
    print(f"interpreter: {platform.python_implementation()} {sys.version.split()[0]} "
          f"({sys.executable})")
    print(f"$ {sys.executable} {' '.join(sys.argv)}")
    if sys.implementation.name == "cpython":
        gc.disable()  # as microgpt.main does

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
        modules = {name: load(path, f"microgpt_{i}") for i, (name, path) in
                   enumerate(scripts.items())}

        for n_embd in args.sizes:
            this = modules["this"]
            config = this.GPTConfig(vocab_size=27, block_size=16, n_embd=n_embd)
            work = batches(this, config)
            times = {name: [] for name in modules}
            for r in range(args.repeat):
                for name in reversed(list(modules)):  # the old ones first
                    m = modules[name]
                    times[name].append(milliseconds_per_step(stepper(m, config), work,
                                                             r * STEPS))
            floor = statistics.median(
                floor_milliseconds(dot_lengths(this, config, work[r * STEPS:(r + 1) * STEPS]))
                for r in range(args.repeat))
            print(f"\na training step at n_embd {n_embd}, batch 8 (CPU ms, median of "
                  f"{args.repeat} x {STEPS} steps; on CPython, its collector off):")
            mine = statistics.median(t[0] for t in times["this"])
            for name, results in times.items():
                ms = statistics.median(t[0] for t in results)
                tok = statistics.median(t[1] for t in results)
                print(f"  {name:>12}: {ms:8.2f} ms ({', '.join(f'{t[0]:.2f}' for t in results)})"
                      f", {tok:,.0f} tok/s" + (f"; this version is {ms / mine:.2f}x as fast"
                                              if name != "this" else ""))
            print(f"  the floor (its multiply-adds alone): {floor:.2f} ms; this version's step "
                  f"is {mine / floor:.2f}x the floor")
        if args.skip_e2e:
            return

        for python in args.pythons:
            version = version_of(python)
            for flags in args.e2e:
                runs = {name: [] for name in scripts}
                for _ in range(args.repeat):
                    for name, script in reversed(list(scripts.items())):  # the old one first
                        runs[name].append(end_to_end(python, script, flags.split()))
                this = [statistics.median(r[i] for r in runs["this"]) for i in (0, 1)]
                for name, results in runs.items():
                    wall, cpu = (statistics.median(r[i] for r in results) for i in (0, 1))
                    print(f"{version}, microgpt.py {flags or '(the defaults)'}, {name}: median of "
                          f"{len(results)}: {wall:.1f} s wall "
                          f"({', '.join(f'{r[0]:.1f}' for r in results)}), {cpu:.1f} s CPU, "
                          f"final val loss {results[-1][2]:.4f}"
                          + (f"; this version is {wall / this[0]:.2f}x as fast in wall time, "
                             f"{cpu / this[1]:.2f}x in CPU time" if name != "this" else ""))


if __name__ == "__main__":
    main()
