"""Benchmark microgpt (run by hand; the test suite does not run it):

    python tests/benchmark.py [--pythons python3 pypy3] [--skip-e2e]

1. Training throughput, in tokens per second, of the default model built from fused ops and of
   the same model built from atomic ops only (tests/atomic.py), on the same data and seed.
2. The default `python microgpt.py`, end to end, for each interpreter given: wall time and
   final val loss, and the speed-up of each over the first.
Prints the interpreter and version, and every command line it runs.
"""
import argparse
import gc
import os
import platform
import random
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]
import atomic  # noqa: E402
import microgpt  # noqa: E402


def throughput(steps, batch_size, seed=42):
    """Tokens per second over `steps` training steps of the default model on names.txt."""
    args = microgpt.build_parser().parse_args([])
    docs = microgpt.load_docs(os.path.join(ROOT, "names.txt"))
    train_docs, _ = microgpt.split_docs(docs, seed)
    chars = sorted(set("".join(docs)))
    config = microgpt.GPTConfig(vocab_size=len(chars) + 1, block_size=max(map(len, docs)) + 1,
                                n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    params = microgpt.init_params(config, random.Random(seed))
    flat = microgpt.parameters(params)
    m, v = [0.0] * len(flat), [0.0] * len(flat)
    bos = len(chars)
    tokens = [[bos] + microgpt.encode(d, chars) + [bos] for d in train_docs]
    n_tokens, start = 0, time.perf_counter()
    if sys.implementation.name == "cpython":
        gc.disable()  # as microgpt.main does
    for step in range(steps):
        batch = tokens[step * batch_size:(step + 1) * batch_size]
        n_tokens += sum(len(t) - 1 for t in batch)
        microgpt.backward_batch(batch, params, config)
        microgpt.adam_step(flat, m, v, step + 1, args.learning_rate)
    gc.enable()
    return n_tokens / (time.perf_counter() - start)


def end_to_end(python):
    cmd = [python, os.path.join(ROOT, "microgpt.py")]
    print("$ " + " ".join(cmd), flush=True)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    val = float(re.findall(r"val loss (\d+\.\d+)", out)[-1])
    version = subprocess.run([python, "-c", "import sys, platform; print("
                              "platform.python_implementation(), sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    return version, seconds, val


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythons", nargs="+", default=[sys.executable],
                        help="interpreters for the end-to-end run (default: this one)")
    parser.add_argument("--skip-e2e", action="store_true", help="measure throughput only")
    args = parser.parse_args()
    print(f"interpreter: {platform.python_implementation()} {sys.version.split()[0]} "
          f"({sys.executable})")
    print(f"$ {sys.executable} {' '.join(sys.argv)}")
    batch = microgpt.build_parser().parse_args([]).batch_size
    fused = throughput(steps=40, batch_size=batch)
    with atomic.use_atomic_ops():
        slow = throughput(steps=10, batch_size=batch)
    print(f"training throughput, default model, batch {batch}, seed 42: fused ops "
          f"{fused:.0f} tokens/s (40 steps), atomic ops {slow:.0f} tokens/s (10 steps, the "
          f"same first batches): {fused / slow:.1f}x")
    if args.skip_e2e:
        return
    rows = [end_to_end(p) for p in args.pythons]
    for (version, seconds, val) in rows:
        print(f"default run, {version}: {seconds:.1f} s wall, final val loss {val:.4f}, "
              f"{rows[0][1] / seconds:.2f}x the speed of the first")


if __name__ == "__main__":
    main()
