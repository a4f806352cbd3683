"""Benchmark microgpt (run by hand; the test suite does not run it):

    python tests/benchmark.py [--pythons python3 pypy3] [--baseline REV] [--repeat N] [--plain]
                              [--skip-e2e]

1. The graph of one name ("olivia") for the default model: nodes and edges per position, with
   Part 1's plain ops and with Part 2's fused ones.
2. Training throughput, in tokens per second, with the fused and with the plain ops, on the
   same first batches of names.txt.
3. The default `python microgpt.py`, end to end, for each interpreter given: wall time and final
   val loss. With --baseline REV, the microgpt.py of that git revision runs too, beside this one
   (old, new, old, new, ...: each --repeat times), so both are timed on the same machine at the
   same time; the median time of each is reported. With --plain, also `microgpt.py --plain`.
Prints the interpreter and version, and every command line it runs.
"""
import argparse
import gc
import os
import platform
import random
import re
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


def default_model(seed=42):
    """The default model on names.txt: (params, config, chars, train token lists)."""
    docs = microgpt.load_docs(os.path.join(ROOT, "names.txt"))
    train_docs, _ = microgpt.split_docs(docs, seed)
    chars = sorted(set("".join(docs)))
    config = microgpt.GPTConfig(vocab_size=len(chars) + 1, block_size=max(map(len, docs)) + 1)
    params = microgpt.init_params(config, random.Random(seed))
    return params, config, chars, [microgpt.tokenize(d, chars) for d in train_docs]


def graph_per_position(ops, name="olivia"):
    """(nodes, edges, positions) of the loss graph of one document for the default model."""
    params, config, chars, _ = default_model()
    tokens = microgpt.tokenize(name, chars)
    nodes, edges = microgpt.graph_size(microgpt.batch_loss([tokens], params, config, ops))
    return nodes, edges, len(tokens) - 1


def throughput(ops, steps, batch_size=8, seed=42):
    """Tokens per second over the first `steps` training steps of the default model."""
    params, config, _, tokens = default_model(seed)
    state = microgpt.init_state(params, seed)
    n_tokens, start = 0, time.perf_counter()
    if sys.implementation.name == "cpython":
        gc.disable()  # as microgpt.main does
    for _ in range(steps):
        batch = microgpt.get_batch(tokens, seed, state["position"], batch_size)
        n_tokens += sum(len(t) - 1 for t in batch)
        microgpt.train_step(state, tokens, params, config, ops, batch_size, steps, 0.015)
    gc.enable()
    return n_tokens / (time.perf_counter() - start)


def version_of(python):
    return subprocess.run([python, "-c", "import sys, platform; print("
                           "platform.python_implementation(), sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def end_to_end(python, script, extra=()):
    """(seconds of wall time, final val loss) of one default run of `script`."""
    cmd = [python, script, *extra]
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    return seconds, float(re.findall(r"val loss (\d+\.\d+)", out)[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythons", nargs="+", default=[sys.executable],
                        help="interpreters for the end-to-end runs (default: this one)")
    parser.add_argument("--baseline", metavar="REV",
                        help="also time the microgpt.py of this git revision, beside this one")
    parser.add_argument("--repeat", type=int, default=1, help="end-to-end runs of each (default 1)")
    parser.add_argument("--plain", action="store_true",
                        help="also time `microgpt.py --plain` end to end (slow)")
    parser.add_argument("--skip-e2e", action="store_true", help="skip the end-to-end runs")
    args = parser.parse_args()
    print(f"interpreter: {platform.python_implementation()} {sys.version.split()[0]} "
          f"({sys.executable})")
    print(f"$ {sys.executable} {' '.join(sys.argv)}")

    for label, ops in (("plain", microgpt.PLAIN), ("fused", microgpt.FUSED)):
        nodes, edges, n = graph_per_position(ops)
        print(f"graph of 'olivia' ({n} positions), {label} ops: {nodes} nodes, {edges} edges; "
              f"per position {nodes / n:,.0f} nodes, {edges / n:,.0f} edges")
    fused = throughput(microgpt.FUSED, steps=40)
    plain = throughput(microgpt.PLAIN, steps=10)
    print(f"training throughput, default model, batch 8, seed 42: fused {fused:.0f} tokens/s "
          f"(40 steps), plain {plain:.0f} tokens/s (10 steps, the same first batches): "
          f"fused is {fused / plain:.1f}x faster")
    if args.skip_e2e:
        return

    with tempfile.TemporaryDirectory() as tmp:
        # each version runs from a copy, beside its own names.txt, so that editing the working
        # tree during a long benchmark changes nothing
        with open(os.path.join(ROOT, "microgpt.py"), encoding="utf-8") as f:
            sources = {"this": f.read()}
        if args.baseline:
            sources[args.baseline] = subprocess.run(
                ["git", "-C", ROOT, "show", f"{args.baseline}:microgpt.py"],
                capture_output=True, text=True, check=True).stdout
        scripts = {}
        for i, (name, source) in enumerate(sources.items()):
            os.mkdir(os.path.join(tmp, str(i)))
            scripts[name] = os.path.join(tmp, str(i), "microgpt.py")
            with open(scripts[name], "w", encoding="utf-8") as f:
                f.write(source)
            shutil.copy(os.path.join(ROOT, "names.txt"), os.path.join(tmp, str(i)))
        for python in args.pythons:
            version = version_of(python)
            runs = {name: [] for name in scripts}
            if args.plain:
                runs["this --plain"] = []
            for _ in range(args.repeat):
                for name, script in reversed(list(scripts.items())):  # the old one first
                    runs[name].append(end_to_end(python, script))
                if args.plain:
                    runs["this --plain"].append(end_to_end(python, scripts["this"], ["--plain"]))
            for name, results in runs.items():
                seconds = statistics.median(s for s, _ in results)
                print(f"default run, {version}, {name}: median {seconds:.1f} s wall of "
                      f"{len(results)} ({', '.join(f'{s:.1f}' for s, _ in results)}), "
                      f"final val loss {results[-1][1]:.4f}")
            if args.baseline:
                this, base = (statistics.median(s for s, _ in runs[k])
                              for k in ("this", args.baseline))
                print(f"default run, {version}: this version takes {this / base:.3f}x the time "
                      f"of {args.baseline}")


if __name__ == "__main__":
    main()
