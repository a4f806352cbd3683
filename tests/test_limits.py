"""No input can crash microgpt, hang it or exhaust the machine's memory: extreme flags and
damaged checkpoints end within seconds in one clear line; long waits show progress."""
import contextlib
import copy
import gc
import io
import json
import math
import os
import pty
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "microgpt.py")
NAMES = os.path.join(ROOT, "names.txt")
DOCS = ["emma", "olivia", "ava", "mia", "noah", "liam", "amelia", "leo", "eva", "ella"] * 6
TINY = ["--n-embd", "8", "--n-head", "2", "--batch-size", "4", "--num-samples", "2"]
GIGABYTES_2 = 2_000_000 * 1024  # the address space of `ulimit -v 2000000`


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (GIGABYTES_2, GIGABYTES_2))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def run(*args, **kwargs):
    """Run microgpt under a 2 GB memory limit: (exit status, stdout, stderr, seconds)."""
    start = time.time()
    r = subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=120, **{"preexec_fn": limit_memory, **kwargs})
    return r.returncode, r.stdout, r.stderr, time.time() - start


def peak_rss(*args):
    """Run microgpt to the end: its peak memory (resident set), in bytes."""
    proc = subprocess.Popen([sys.executable, SCRIPT] + [str(a) for a in args],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, args
    return usage.ru_maxrss * 1024  # ru_maxrss is in KB on Linux


class CostTest(unittest.TestCase):
    def test_the_parameter_count_is_that_of_the_model(self):
        for sizes in ((27, 16, 1, 4, 12), (10, 7, 3, 2, 8), (100, 40, 2, 6, 18)):
            config = microgpt.GPTConfig(*sizes)
            params = microgpt.init_params(config, random.Random(0))
            self.assertEqual(microgpt.n_params(config), len(microgpt.parameters(params)))

    def test_the_plain_edge_estimate_is_never_below_the_real_graph(self):
        # a document of block_size positions, the longest a step can hold, in many shapes
        worst = math.inf
        for e, h, layers, positions, vocab in SHAPES:
            config = microgpt.GPTConfig(vocab, positions, n_layer=layers, n_head=h, n_embd=e)
            params = microgpt.init_params(config, random.Random(0))
            tokens = [vocab - 1] + [0] * (positions - 1) + [vocab - 1]
            real = graph_edges(microgpt.batch_loss([tokens], params, config))
            with self.subTest(config=config):
                self.assertGreaterEqual(microgpt.plain_edges(config, 1), real)
            worst = min(worst, microgpt.plain_edges(config, 1) / real)
        self.assertLess(worst, 1.5)  # from above, but not by too much everywhere

    @unittest.skipUnless(sys.implementation.name == "cpython",
                         "PyPy stores a list of floats unboxed, in far less memory")
    def test_the_memory_estimate_is_never_below_a_steps_memory(self):
        import tracemalloc  # (CPython's alone)
        for e, h, layers, positions, vocab in SHAPES:
            config = microgpt.GPTConfig(vocab, positions, n_layer=layers, n_head=h, n_embd=e)
            params = microgpt.as_floats(microgpt.init_params(config, random.Random(0)))
            batch = [[vocab - 1] + [i % (vocab - 1) for i in range(positions - 1)] + [vocab - 1]
                     for _ in range(3)]
            tracemalloc.start()
            try:
                microgpt.loss_and_grads(batch, params, config)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            with self.subTest(config=config):
                self.assertGreaterEqual(microgpt.step_bytes(config, 3), peak)

    def test_the_work_estimate_is_never_below_the_forward_passes_work(self):
        # the multiply-adds and dot products of every matrix product, attention and the loss,
        # counted from the shapes of the calls that one validation pass makes
        counted = {"macs": 0, "dots": 0}
        real = {name: getattr(microgpt, name) for name in ("matmul_forward", "attention_forward",
                                                            "cross_entropy_forward")}

        def matmul_forward(x, w):
            counted["macs"] += len(x) * len(w) * len(w[0])
            counted["dots"] += len(x) * len(w)
            return real["matmul_forward"](x, w)

        def attention_forward(q, caches, lengths, n_head):
            heads, attn = real["attention_forward"](q, caches, lengths, n_head)
            for row in attn:
                for weights in row:  # scores and weighted sums: head_dim each, per position
                    counted["macs"] += 2 * len(weights) * len(q[0]) // n_head
                    counted["dots"] += len(weights) + len(q[0]) // n_head
            return heads, attn

        def cross_entropy_forward(logits, targets):
            counted["macs"] += len(logits) * len(logits[0])
            return real["cross_entropy_forward"](logits, targets)
        try:
            microgpt.matmul_forward, microgpt.attention_forward = matmul_forward, attention_forward
            microgpt.cross_entropy_forward = cross_entropy_forward
            for e, h, layers, positions, vocab in SHAPES:
                config = microgpt.GPTConfig(vocab, positions, n_layer=layers, n_head=h, n_embd=e)
                params = microgpt.as_floats(microgpt.init_params(config, random.Random(0)))
                docs = [[vocab - 1] + [0] * (positions - 1) + [vocab - 1]] * 3
                counted.update(macs=0, dots=0)
                microgpt.position_losses(docs, params, config)
                with self.subTest(config=config):
                    self.assertGreaterEqual(microgpt.eval_work(config, 3),
                                            counted["macs"] + 32 * counted["dots"])
        finally:
            for name, f in real.items():
                setattr(microgpt, name, f)

    def test_the_default_run_is_well_within_the_limits(self):
        config = microgpt.GPTConfig(27, 16)
        microgpt.check_config(config, 8)
        microgpt.check_config(config, 8, plain=True)
        self.assertLess(microgpt.step_bytes(config, 8), microgpt.MAX_STEP_BYTES / 100)
        self.assertLess(microgpt.eval_work(config, 1000), microgpt.MAX_EVAL_WORK / 10)
        with self.assertRaisesRegex(ValueError, r"would need up to [\d.]+ GB of memory; "):
            microgpt.check_config(microgpt.GPTConfig(27, 16, n_embd=200, n_layer=2), 2000)


SHAPES = ((12, 4, 1, 7, 27), (12, 4, 1, 16, 27), (8, 2, 2, 5, 27), (24, 3, 2, 6, 27),
          (16, 16, 1, 3, 27), (1, 1, 4, 2, 3), (2, 2, 3, 2, 3), (4, 1, 2, 33, 60),
          (32, 8, 1, 12, 5), (40, 1, 2, 2, 27), (8, 2, 1, 4, 600))  # n_embd, n_head, n_layer,
# block_size and vocab_size


def graph_edges(root):
    """The edges (local gradients) of the graph behind the Value `root`."""
    seen, stack = {root}, [root]
    while stack:
        for child in stack.pop()._children:
            if child._children and child not in seen:
                seen.add(child)
                stack.append(child)
    return sum(len(node._children) for node in seen)


class ExtremeInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.data = os.path.join(cls.tmp.name, "names.txt")
        with open(cls.data, "w", encoding="utf-8") as f:
            f.write("\n".join(DOCS) + "\n")
        cls.long = os.path.join(cls.tmp.name, "long.txt")
        with open(cls.long, "w", encoding="utf-8") as f:
            f.write("ab" * 100_000 + "\n" + "\n".join(DOCS) + "\n")
        cls.ckpt = os.path.join(cls.tmp.name, "model.json")
        code, _, err, _ = run("-i", cls.data, "--max-steps", 2, "-o", cls.ckpt, *TINY)
        assert code == 0, err
        with open(cls.ckpt, encoding="utf-8") as f:
            cls.good = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assertOneLineError(self, args, says, **kwargs):
        files = [p for p in (self.data, self.ckpt) + tuple(a for a in args if os.path.isfile(
            str(a)))]
        before = {p: read(p) for p in files}
        code, out, err, seconds = run(*args, **kwargs)
        self.assertEqual(code, 2, out + err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("microgpt: error: "), err)
        self.assertIn(says, err)
        self.assertNotIn("MemoryError", err)
        self.assertLess(seconds, 10)
        self.assertEqual(before, {p: read(p) for p in files})

    def test_extreme_flags(self):
        d = self.data
        rows = {
            "n_embd 400000": (["-i", d, "--n-embd", 400000, "--n-head", 1], "parameters"),
            "n_layer 100000": (["-i", d, "--n-layer", 100000], "--n-layer"),
            "n_head and n_embd 100000": (["-i", d, "--n-head", 100000, "--n-embd", 100000],
                                         "parameters"),
            "n_embd 2048": (["-i", d, "--n-embd", 2048, "--n-head", 8], "allows 1,000,000"),
            "a step too big": (["-i", NAMES, "--n-embd", 128, "-b", 20000], "GB of memory"),
            "validation too long": (["-i", NAMES, "--n-embd", 256, "--n-layer", 1],
                                    "held-out documents would take"),
            "a step too big for --plain": (["-i", NAMES, "--n-embd", 96, "--plain"],
                                           "or drop --plain"),
            "a document too long": (["-i", self.long], "--block-size"),
            "batch size 1e9": (["-i", d, "-b", 10 ** 9], "is more than the 54 training"),
            "num samples 1e9": (["-i", d, "--num-samples", 10 ** 9], "--num-samples"),
            "temperature inf": (["-i", d, "--temperature", "inf"], "--temperature"),
            "temperature nan": (["-i", d, "--temperature", "nan"], "--temperature"),
            "learning rate inf": (["-i", d, "-l", "inf"], "--learning-rate"),
            "learning rate nan": (["-i", d, "-l", "nan"], "--learning-rate"),
            "seed 2**64": (["-i", d, "--seed", 2 ** 64], "--seed"),
            "prompt of 100000": (["-i", d, "--prompt", "a" * 100_000], "--prompt is 100000"),
            "explain of 100000": (["-i", d, "--explain", "a" * 100_000], "--explain is 100000"),
            "max steps -1": (["-i", d, "--max-steps", -1], "--max-steps"),
            "block size -5": (["-i", d, "--block-size", -5], "--block-size"),
        }
        for name, (args, says) in rows.items():
            with self.subTest(name):
                self.assertOneLineError(TINY + args, says)

    def test_a_block_size_beyond_the_data_is_lowered_with_a_note(self):
        code, out, err, seconds = run("-i", self.data, "--block-size", 10 ** 9, "--max-steps",
                                      1, *TINY)
        self.assertEqual(code, 0, err)
        self.assertIn("block_size 1,000,000,000 is more than the longest document needs: "
                      "using 7", out)
        self.assertLess(seconds, 10)

    def damaged(self, change):
        ckpt = copy.deepcopy(self.good)
        change(ckpt)
        path = os.path.join(self.tmp.name, "damaged.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(ckpt, f)
        return path

    def test_damaged_checkpoints(self):
        def set_(*keys_and_value):
            def change(ckpt):
                *keys, last, value = keys_and_value
                for k in keys:
                    ckpt = ckpt[k]
                ckpt[last] = value
            return change

        def delete(*keys):
            def change(ckpt):
                for k in keys[:-1]:
                    ckpt = ckpt[k]
                del ckpt[keys[-1]]
            return change
        nan, inf = float("nan"), float("inf")
        rows = {
            "no config": (delete("config"), "config is missing"),
            "no n_embd": (delete("config", "n_embd"), "config.n_embd is missing"),
            "n_embd a string": (set_("config", "n_embd", "8"), "config.n_embd must be"),
            "n_embd a float": (set_("config", "n_embd", 8.0), "config.n_embd must be an integer"),
            "n_embd true": (set_("config", "n_embd", True), "config.n_embd must be"),
            "n_layer 0": (set_("config", "n_layer", 0), "config.n_layer must be"),
            "n_layer 100000": (set_("config", "n_layer", 100000), "parameters"),
            "block_size 1e9": (set_("config", "block_size", 10 ** 9), "parameters"),
            "n_head 3": (set_("config", "n_head", 3), "divisible"),
            "no chars": (delete("chars"), "chars is missing"),
            "chars empty": (set_("chars", ""), "chars must be"),
            "chars repeated": (set_("chars", "aelmvv"), "chars must be"),
            "chars a list": (set_("chars", ["a", "e"]), "chars must be"),
            "no params": (delete("params"), "params is missing"),
            "params a list": (set_("params", []), "params must hold"),
            "no wte": (delete("params", "wte"), "params must hold"),
            "an extra parameter": (set_("params", "extra", [1.0]), "params must hold"),
            "a short row": (lambda c: c["params"]["wte"][0].pop(), "params.wte does not have"),
            "a missing row": (lambda c: c["params"]["wte"].pop(), "params.wte does not have"),
            "a vector as a matrix": (set_("params", "ln_f.bias", [[0.0]] * 8),
                                     "params.ln_f.bias must be a number"),
            "a weight a string": (set_("params", "lm_head", 0, 0, "x"), "params.lm_head"),
            "a weight NaN": (set_("params", "wpe", 1, 1, nan), "params.wpe must be"),
            "a weight inf": (set_("params", "wte", 2, 3, inf), "params.wte must be"),
            "a weight 1e308": (set_("params", "h.0.mlp.fc", 0, 0, 1e308), "params.h.0.mlp.fc"),
            "a weight true": (set_("params", "ln_f.weight", 0, True), "params.ln_f.weight"),
            "no seed": (delete("seed"), "seed is missing"),
            "seed fractional": (set_("seed", 2.5), "seed must be an integer"),
            "seed huge": (set_("seed", 10 ** 30), "seed must be"),
            "step negative": (set_("step", -1), "step must be"),
            "step fractional": (set_("step", 3.5), "step must be an integer"),
            "step a string": (set_("step", "3"), "step must be"),
            "position negative": (set_("position", -5), "position must be"),
            "no adam_m": (delete("adam_m"), "adam_m is missing"),
            "adam_m short": (lambda c: c["adam_m"].pop(), "adam_m does not have the shape"),
            "adam_m NaN": (set_("adam_m", 3, nan), "adam_m must be"),
            "adam_v negative": (set_("adam_v", 0, -1.0), "adam_v must be"),
            "history a string": (set_("history", "x"), "history.train is missing"),
            "history NaN loss": (set_("history", "train", 0, nan), "a train loss of history"),
            "history val step 0": (set_("history", "val", [[0, 2.0]]), "a step of history.val"),
            "history val not a pair": (set_("history", "val", [[2]]), "[step, val loss] pairs"),
            "history longer than the run": (set_("history", "train", [2.0] * 5),
                                            "a train loss per step done"),
            "version a string": (set_("version", "1"), "checkpoint version '1'"),
            "version true": (set_("version", True), "checkpoint version True"),
        }
        self.assertGreaterEqual(len(rows), 30)
        for name, (change, says) in rows.items():
            with self.subTest(name):
                path = self.damaged(change)
                for mode in ("--sample-only", "--resume"):
                    self.assertOneLineError(["-i", self.data, "-o", path, mode, *TINY], says)

    def test_files_too_big_or_endless_are_refused_while_reading(self):
        over = os.path.join(self.tmp.name, "over.txt")
        with open(over, "wb") as f:  # a sparse file: a byte over the cap, instantly
            f.truncate(microgpt.MAX_INPUT_BYTES + 1)
        says = f"is over the {microgpt.MAX_INPUT_BYTES:,} bytes microgpt reads"
        self.assertOneLineError(["-i", over], says)
        self.assertOneLineError(["-i", "/dev/zero"], says)  # a device without a newline
        yes = "import sys\nwhile True: sys.stdout.write('anna\\n' * 10000)"  # `yes anna |`
        with subprocess.Popen([sys.executable, "-c", yes], stdout=subprocess.PIPE) as endless:
            self.assertOneLineError(["-i", "/dev/stdin"], says, stdin=endless.stdout)
            endless.kill()

    def test_checkpoints_too_big_or_nested_too_deep_end_in_one_line(self):
        over = os.path.join(self.tmp.name, "over.json")
        with open(over, "wb") as f:
            f.truncate(microgpt.MAX_CHECKPOINT_BYTES + 1)
        nested = os.path.join(self.tmp.name, "nested.json")
        with open(nested, "w", encoding="utf-8") as f:
            f.write('{"a": ' * 100_000 + "[" * 100_000)
        for path, says in ((over, "larger than any microgpt checkpoint can be"),
                           (nested, "not JSON")):
            for mode in ("--sample-only", "--resume"):
                self.assertOneLineError(["-i", self.data, "-o", path, mode, *TINY], says)

    def test_the_checkpoint_cap_holds_the_largest_model(self):
        # the longest float, the widest characters (12 bytes of JSON) and the most rows per
        # number (n_embd 1): a checkpoint takes at most the 32 bytes a number the cap allows
        worst = -2.2250738585072014e-308
        config = microgpt.GPTConfig(vocab_size=501, block_size=16, n_layer=2, n_head=1, n_embd=1)
        params = microgpt.as_floats(microgpt.init_params(config, random.Random(0)))
        params = {name: [[worst] * len(row) if isinstance(row, list) else worst for row in p]
                  for name, p in params.items()}
        n = microgpt.n_params(config)
        history = {"train": [-worst] * 1000, "val": [[10 ** 12, -worst]] * 1000}
        state = {"step": 10 ** 12, "adam_m": [worst] * n, "adam_v": [-worst] * n,
                 "seed": -2 ** 63, "position": 10 ** 18, "history": history}
        path = os.path.join(self.tmp.name, "worst.json")
        microgpt.save_checkpoint(path, params, config, [chr(0x10000 + i) for i in range(500)],
                                 state)
        numbers = 3 * n + 3 * 1000
        self.assertLessEqual(os.path.getsize(path), 32 * numbers)
        self.assertGreater(os.path.getsize(path), 24 * numbers)  # the worst case is near
        self.assertEqual(microgpt.load_checkpoint(path)[3]["history"], history)

    def test_a_long_run_keeps_the_last_losses(self):
        path = os.path.join(self.tmp.name, "long_run.json")
        kept, microgpt.MAX_HISTORY = microgpt.MAX_HISTORY, 5
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model = microgpt.main(["-i", self.data, "--max-steps", "12", "--eval-every", "2",
                                       "-o", path, *TINY])
            self.assertLessEqual(len(model.state["history"]["train"]), 10)  # memory: bounded
            with open(path, encoding="utf-8") as f:
                history = json.load(f)["history"]
            self.assertEqual(len(history["train"]), 5)
            self.assertEqual([step for step, _ in history["val"]], [4, 6, 8, 10, 12])
            with contextlib.redirect_stdout(io.StringIO()) as out:
                microgpt.main(["-i", self.data, "--max-steps", "13", "--resume", "-o", path,
                               *TINY])
        finally:
            microgpt.MAX_HISTORY = kept
        axis = out.getvalue().split("└")[1].splitlines()[1].split()
        self.assertEqual(axis, ["8", "13"])  # the chart covers the steps whose losses it has

    def test_memory_per_document(self):
        # documents stay strings until a batch draws them: about 80 bytes each on CPython and
        # 70 on PyPy, here (330 and 780 when each was a list of token ids)
        def peak(n):
            path = os.path.join(self.tmp.name, f"{n}.txt")
            rng = random.Random(0)
            with open(path, "w", encoding="utf-8") as f:
                f.writelines("".join(rng.choices("abcdefghij", k=8)) + "\n" for _ in range(n))
            return peak_rss("-i", path, "--max-steps", 1, "--num-samples", 0)
        per_doc = (peak(100_000) - peak(2_000)) / 98_000
        self.assertLess(per_doc, 150)

    def test_plain_training_frees_each_steps_graph(self):
        # with CPython's cycle collector off, a reference cycle in backward() once kept every
        # step's graph: here 45 more steps took 66 MB more
        def peak(steps):
            return peak_rss("-i", self.data, "--plain", "--max-steps", steps, "--n-embd", 4,
                            "--n-head", 1, "-b", 1, "--num-samples", 0, "--eval-every", 10 ** 6)
        self.assertLess(peak(50) - peak(5), 10_000_000)

    def test_an_older_checkpoint_without_history_still_loads(self):
        path = self.damaged(delete_history)
        code, out, err, _ = run("-i", self.data, "-o", path, "--resume", "--max-steps", 4, *TINY)
        self.assertEqual(code, 0, err)
        self.assertIn("step 4: val loss", out)


def delete_history(ckpt):
    del ckpt["history"]


class NothingLostTest(unittest.TestCase):
    """Nothing a user gives destroys a file they did not ask to write, loses a training that
    could have been saved, ends in a traceback, or sends raw control characters to the terminal.
    Every run is under the 2 GB memory limit."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.data = cls.write("names.txt", "\n".join(DOCS) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def write(cls, name, content):
        path = os.path.join(cls.dir, name)
        with open(path, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    def train(self, out, *flags):
        """Train a tiny model to `out` in this process; return what it printed to stderr."""
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()) as err:
            microgpt.main([str(a) for a in ["-i", self.data, "-o", out, *TINY, *flags]])
        return err.getvalue()

    def assertOneLine(self, args, says, **kwargs):
        """The run ends at once (before its 100,000 steps) in one line that says `says`."""
        code, out, err, seconds = run(*TINY, "--max-steps", 100_000, *args, **kwargs)
        self.assertEqual(code, 2, out + err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith("microgpt: error: "), err)
        self.assertIn(says, err)
        self.assertLess(seconds, 10)

    def test_a_save_never_touches_a_file_named_like_its_temporary_file(self):
        corpus = self.write("corpus", "")
        data = self.write("corpus.tmp", "\n".join(DOCS) + "\n")  # once the temporary file
        os.remove(corpus)
        code, _, err, _ = run("-i", data, "-o", corpus, "--max-steps", 3, *TINY)
        self.assertEqual(code, 0, err)
        self.assertEqual(read(data), ("\n".join(DOCS) + "\n").encode())
        self.assertEqual(json.loads(read(corpus))["step"], 3)

    def test_a_save_writes_a_new_file_never_one_that_is_there_nor_through_a_link(self):
        out = os.path.join(self.dir, "linked.json")
        victim = self.write("victim.txt", "keep me")
        link = os.path.join(self.dir, ".linked.json.abababab.tmp")
        urandom = os.urandom
        os.urandom = lambda n: b"\xab" * n  # the next temporary file is named as the link
        try:
            for save in range(2):
                os.symlink(victim, link)
                with self.subTest(save=save):  # the check before training; a save
                    if save:  # (a link is not what a killed save leaves: it stays)
                        params, config, chars, state = microgpt.load_checkpoint(self.ckpt())
                        with self.assertRaisesRegex(OSError, "File exists"):
                            microgpt.save_checkpoint(out, params, config, chars, state)
                    else:
                        with self.assertRaises(SystemExit):
                            self.train(out, "--max-steps", 2)
                    self.assertEqual(read(victim), b"keep me")
                    self.assertTrue(os.path.islink(link))
                    os.remove(link)
        finally:
            os.urandom = urandom

    def test_a_killed_saves_file_is_never_read_and_the_next_save_removes_it(self):
        out = os.path.join(self.dir, "stale.json")
        self.train(out, "--max-steps", 2)
        left = self.write(".stale.json.0badf00d.tmp", '{"format": "microgpt", "ver')
        self.train(out, "--max-steps", 4, "--resume")
        self.assertFalse(os.path.exists(left))
        self.assertEqual(json.loads(read(out))["step"], 4)
        self.assertEqual([f for f in os.listdir(self.dir) if f.startswith(".stale")], [])

    @contextlib.contextmanager
    def another_run_saving(self, out, name):
        """Inside it, at step 4 of training, a checkpoint appears at `out` as another run's save
        would (a tiny model's, saved to the file `name` first)."""
        other = os.path.join(self.dir, name)
        self.train(other, "--max-steps", 2)
        step_fn = microgpt.train_step_fast

        def another_run_saves_meanwhile(state, *args, **kwargs):
            if state["step"] == 3:
                with open(other, "rb") as f, open(out, "wb") as g:
                    g.write(f.read())
            return step_fn(state, *args, **kwargs)
        microgpt.train_step_fast = another_run_saves_meanwhile
        try:
            yield other
        finally:
            microgpt.train_step_fast = step_fn

    def test_a_run_whose_output_another_process_wrote_saves_beside_it(self):
        out = os.path.join(self.dir, "shared.json")
        with self.another_run_saving(out, "other.json") as other:
            err = self.train(out, "--max-steps", 6, "--eval-every", 2)
        beside = os.path.join(self.dir, "shared-2.json")
        self.assertEqual(err, f"microgpt: {out} was written by another process since this run "
                              f"last saved it, or cannot be replaced: this run saves to {beside} "
                              f"instead\n")
        self.assertEqual(read(out), read(other))  # the other run's, as it left it
        self.assertEqual(json.loads(read(beside))["step"], 6)

    def test_a_save_that_cannot_be_written_mid_run_goes_on_elsewhere_and_loses_nothing(self):
        folder, rescue = os.path.join(self.dir, "gone"), os.path.join(self.dir, "rescue")
        os.mkdir(folder)
        os.mkdir(rescue)
        out, step_fn, kept = os.path.join(folder, "m.json"), microgpt.train_step_fast, (
            tempfile.tempdir)

        def folder_removed_meanwhile(state, *args, **kwargs):
            if state["step"] == 3:
                shutil.rmtree(folder)  # as a user might, or a disk that fills
            return step_fn(state, *args, **kwargs)
        microgpt.train_step_fast, tempfile.tempdir = folder_removed_meanwhile, rescue
        try:
            err = self.train(out, "--max-steps", 6, "--eval-every", 2)
        finally:
            microgpt.train_step_fast, tempfile.tempdir = step_fn, kept
        [new] = os.listdir(rescue)  # a new folder of its own, where no one else writes
        saved = os.path.join(rescue, new, "m.json")
        self.assertEqual(err, f"microgpt: {out} cannot be written (No such file or directory): "
                              f"this run saves to {saved} instead\n")
        self.assertEqual(microgpt.load_checkpoint(saved)[3]["step"], 6)
        save = microgpt.save_checkpoint
        shutil.rmtree(rescue)
        os.mkdir(rescue)
        os.mkdir(folder)

        def disk_full(*args, **kwargs):
            raise OSError(28, "No space left on device")
        microgpt.save_checkpoint, tempfile.tempdir = disk_full, rescue
        try:  # nowhere left to write: one line, and no folder left behind
            with self.assertRaises(SystemExit), contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()) as err:
                microgpt.main([str(a) for a in ["-i", self.data, "-o", out, *TINY,
                                                "--max-steps", 6, "--eval-every", 2]])
        finally:
            microgpt.save_checkpoint, tempfile.tempdir = save, kept
        self.assertIn("nor in the temporary folder (No space left on device)", err.getvalue())
        self.assertEqual(os.listdir(rescue), [])

    def test_buffered_output_that_cannot_be_written_is_one_line_or_a_quiet_141(self):
        # without PYTHONUNBUFFERED (set here, unset for most users) the output is written at
        # the end: its failure must be caught there too
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        cmd = [sys.executable, SCRIPT, "-i", self.data, "-o", self.ckpt(), "--sample-only"]
        with open("/dev/full", "w") as full:
            r = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=env,
                               timeout=120)
        self.assertEqual((r.returncode, r.stderr.count("\n")), (2, 1), r.stderr)
        self.assertIn("microgpt: error: cannot print the output", r.stderr)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        proc.stdout.close()  # as `| head -0` would
        with proc.stderr:
            err = proc.stderr.read().decode()
        self.assertEqual((proc.wait(timeout=120), err), (141, ""))

    def test_a_folder_that_allows_no_renaming_is_found_before_training_and_never_filled(self):
        out, replace = os.path.join(self.dir, "append_only.json"), os.replace
        params, config, chars, state = microgpt.load_checkpoint(self.ckpt())

        def no_renaming(src, dst):
            raise PermissionError(1, "Operation not permitted")
        os.replace = no_renaming
        try:
            with self.assertRaises(SystemExit), contextlib.redirect_stderr(io.StringIO()) as err:
                microgpt.main(["-i", self.data, "-o", out, *[str(a) for a in TINY]])
            self.assertIn("cannot save to", err.getvalue())
            with self.assertRaises(PermissionError):  # one try, not one more copy per name
                microgpt.save_checkpoint(out, params, config, chars, state)
        finally:
            os.replace = replace
        self.assertEqual([f for f in os.listdir(self.dir) if "append_only" in f], [])

    def test_a_save_whose_temporary_file_another_save_removed_saves_beside(self):
        out = os.path.join(self.dir, "raced.json")
        replace = os.replace

        def removed_first(src, dst):  # as another run's save to out removes it, once
            if dst != out:  # (the check before training renames a file of its own)
                return replace(src, dst)
            os.replace = replace
            os.remove(src)
            return replace(src, dst)
        os.replace = removed_first
        try:
            err = self.train(out, "--max-steps", 3)
        finally:
            os.replace = replace
        self.assertFalse(os.path.exists(out))
        self.assertEqual(json.loads(read(os.path.join(self.dir, "raced-2.json")))["step"], 3)
        self.assertIn("this run saves to", err)

    def test_a_diverged_run_stops_saved_and_what_it_saved_loads(self):
        out = os.path.join(self.dir, "diverged.json")
        code, _, err, _ = run("-i", self.data, "-o", out, "-l", 1000, "--max-steps", 100, *TINY)
        self.assertEqual(code, 2, err)
        self.assertRegex(err, r"^microgpt: error: the loss stayed above 4\.61 \(twice uniform "
                              r"guessing\) from step \d+ to \d+; try a lower --learning-rate")
        self.assertGreater(max(json.loads(read(out))["history"]["train"]), 10 ** 6)
        code, out_, err, _ = run("-i", self.data, "-o", out, "--sample-only", *TINY)
        self.assertEqual(code, 0, err)

    def test_saving_refuses_what_loading_would_refuse(self):
        params, config, chars, _ = microgpt.load_checkpoint(self.ckpt())
        state = microgpt.load_checkpoint(self.ckpt())[3]
        params["wte"][0][0] = 2e6
        with self.assertRaisesRegex(ValueError, r"params\.wte must be a number from -1,000,000"):
            microgpt.save_checkpoint(os.path.join(self.dir, "big.json"), params, config, chars,
                                     state)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "big.json")))

    def ckpt(self):
        path = os.path.join(self.dir, "model.json")
        if not os.path.exists(path):
            self.train(path, "--max-steps", 2)
        return path

    def test_an_output_that_cannot_be_written_is_found_before_training(self):
        d = self.data
        self.assertOneLine(["-i", d, "-o", ""], "--out needs a file name")
        self.assertOneLine(["-i", d, "-o", "/proc/microgpt.json"], "cannot save to")
        self.assertOneLine(["-i", d, "-o", os.path.join(self.dir, "m" * 250)],
                           "File name too long")
        if os.geteuid() != 0:  # (root may write anywhere)
            read_only = os.path.join(self.dir, "read_only")
            os.mkdir(read_only, 0o555)
            self.assertOneLine(["-i", d, "-o", os.path.join(read_only, "m.json")],
                               "Permission denied")

    def test_a_closed_stdout_is_one_line(self):
        self.assertOneLine(["-i", self.data], "the standard output is closed",
                           preexec_fn=lambda: (limit_memory(), os.close(1)))

    def test_gradcheck_on_a_file_the_checkpoint_cannot_read_is_one_line(self):
        other = self.write("other.txt", "xyz\n" * 20)
        self.assertOneLine(["-i", other, "-o", self.ckpt(), "--sample-only", "--gradcheck"],
                           "--gradcheck needs documents")

    def test_main_off_the_main_thread_works_and_leaves_the_process_as_it_was(self):
        done = []

        def train():
            with contextlib.redirect_stdout(io.StringIO()):
                done.append(microgpt.main(["-i", self.data, "--max-steps", "2", *TINY]))
        for collecting in (True, False):
            (gc.enable if collecting else gc.disable)()
            try:
                thread = threading.Thread(target=train)
                thread.start()
                thread.join()
                self.assertEqual(gc.isenabled(), collecting)
            finally:
                gc.enable()
        self.assertEqual([m.state["step"] for m in done], [2, 2])

    def test_bad_utf8_is_reported_at_its_place_in_the_file(self):
        text = "\n".join(DOCS * 300) + "\n"  # well past the first 8 KB read
        path = self.write("late.txt", text.encode() + b"jos\xe9\n")
        line = text.count("\n") + 1
        self.assertOneLine(["-i", path], f"at byte {len(text.encode()) + 3:,}, line {line:,}")

    def test_a_temperature_too_small_for_a_float_is_refused_before_training(self):
        self.assertOneLine(["-i", self.data, "--temperature", 1e-320], "--temperature must be 0")

    def test_an_output_that_cannot_print_unicode_gets_escapes(self):
        for env in ({"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}):
            with self.subTest(**env):
                code, out, err, _ = run("-i", self.data, "--max-steps", 3, *TINY,
                                        env={**os.environ, **env})
                self.assertEqual(code, 0, err)
                self.assertIn("\\u2588", out)  # the chart's █

    def test_resume_names_only_the_flags_it_uses(self):
        more = self.write("more.txt", "\n".join(DOCS * 50) + "\n")
        code, out, err, _ = run("-i", more, "--resume", "-o", self.ckpt(), "-b", 300, "--plain",
                                "--n-embd", 8, "--max-steps", 100_000)
        self.assertEqual(code, 2, out)
        self.assertIn("lower --batch-size, or drop --plain", err)
        self.assertNotIn("--n-embd", err)

    def test_resuming_with_fewer_steps_than_done_is_one_line(self):
        self.assertOneLine(["-i", self.data, "--resume", "-o", self.ckpt(), "--max-steps", 1],
                           "has trained 2 steps, more than --max-steps 1")

    def test_a_string_for_a_number_is_quoted(self):
        ckpt = json.loads(read(self.ckpt()))
        ckpt["config"]["n_embd"] = "8"
        path = self.write("quoted.json", json.dumps(ckpt))
        self.assertOneLine(["-i", self.data, "--sample-only", "-o", path], "not '8'")

    def test_a_file_named_as_a_killed_save_would_be_stays_unless_it_is_one(self):
        data = self.write(".named.json.0123abcd.tmp", "\n".join(DOCS) + "\n")
        empty = self.write(".named.json.00000000.tmp", "")  # as a save killed at once leaves
        os.mkdir(os.path.join(self.dir, ".named.json.11111111.tmp"))
        code, _, err, _ = run("-i", data, "-o", os.path.join(self.dir, "named.json"),
                              "--max-steps", 2, *TINY)
        self.assertEqual(code, 0, err)
        self.assertEqual(read(data), ("\n".join(DOCS) + "\n").encode())
        self.assertFalse(os.path.exists(empty))
        self.assertTrue(os.path.isdir(os.path.join(self.dir, ".named.json.11111111.tmp")))

    def test_links_and_permissions_are_kept(self):
        dangling = os.path.join(self.dir, "dangling.json")
        os.symlink(os.path.join(self.dir, "nowhere.json"), dangling)
        self.assertOneLine(["-i", self.data, "-o", dangling], "already exists")
        real, link = (os.path.join(self.dir, name) for name in ("real.json", "latest.json"))
        self.train(real, "--max-steps", 2)
        os.chmod(real, 0o600)
        os.symlink(real, link)
        self.train(link, "--max-steps", 4, "--resume")
        self.assertTrue(os.path.islink(link))
        self.assertEqual(json.loads(read(real))["step"], 4)
        self.assertEqual(os.stat(real).st_mode & 0o777, 0o600)

    def test_an_output_that_cannot_hold_the_checkpoint_is_found_before_training(self):
        self.assertOneLine(["-i", self.data, "-o", os.path.join(self.dir, "newdir") + "/"],
                           "names a directory")
        self.assertOneLine(["-i", self.data, "-o", os.path.join(self.dir, "small.json")],
                           "File too large", preexec_fn=lambda: (
                               limit_memory(), resource.setrlimit(resource.RLIMIT_FSIZE,
                                                                  (10_000, 10_000))))

    def test_a_note_that_cannot_be_printed_loses_nothing(self):
        out = os.path.join(self.dir, "noted.json")

        class ClosedStderr(io.StringIO):
            def write(self, text):
                raise OSError(9, "Bad file descriptor")
        with self.another_run_saving(out, "other2.json"), \
                contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(ClosedStderr()):
            model = microgpt.main([str(a) for a in ["-i", self.data, "-o", out, *TINY,
                                                    "--max-steps", 6, "--eval-every", 2]])
        self.assertEqual(model.state["step"], 6)
        self.assertEqual(json.loads(read(os.path.join(self.dir, "noted-2.json")))["step"], 6)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "noted-3.json")))

    def test_a_checkpoint_too_far_into_the_data_is_found_before_training(self):
        ckpt = json.loads(read(self.ckpt()))
        ckpt["position"] = 10 ** 18 - 5
        path = self.write("far.json", json.dumps(ckpt))
        self.assertOneLine(["-i", self.data, "-o", path, "--resume"], "cannot train on")

    def test_gradchecks_four_documents_count_in_the_size_check(self):
        self.assertOneLine(["-i", NAMES, "--plain", "--n-embd", 48, "-b", 1, "--gradcheck"],
                           "graph edges")

    def test_a_history_longer_than_a_checkpoint_keeps_is_refused(self):
        kept, microgpt.MAX_HISTORY = microgpt.MAX_HISTORY, 1
        try:
            with self.assertRaisesRegex(ValueError, "at most 1 of each"):
                microgpt.load_checkpoint(self.ckpt())  # 2 steps, 2 train losses
        finally:
            microgpt.MAX_HISTORY = kept

    def test_a_checkpoint_with_huge_weights_is_explained_and_gradchecked_in_one_line(self):
        ckpt = json.loads(read(self.ckpt()))
        rng = random.Random(0)  # weights of +-1e6, as training at far too high a rate leaves
        ckpt["params"] = {k: [[rng.choice((-1e6, 1e6)) for _ in r] if isinstance(r, list)
                              else 1e6 for r in p] for k, p in ckpt["params"].items()}
        path = self.write("huge.json", json.dumps(ckpt))
        code, out, err, _ = run("-i", self.data, "-o", path, "--sample-only", "--explain", "ava",
                                "--num-samples", 1)
        self.assertEqual(code, 0, err)
        self.assertIn("(perplexity over a million)", out)
        self.assertOneLine(["-i", self.data, "-o", path, "--sample-only", "--gradcheck",
                            "--plain"], "did its training diverge?")

    def test_odd_names_and_files_are_one_line(self):
        ckpt = json.loads(read(self.ckpt()))
        path = self.write("long_version.json", json.dumps({**ckpt, "version": "9" * 100_000}))
        code, _, err, _ = run("-i", self.data, "-o", path, "--sample-only")
        self.assertEqual(code, 2)
        self.assertLess(len(err), 300)
        self.assertOneLine(["-i", ""], "--input-file needs a file name")
        self.assertOneLine(["-i", "no\nsuch\x1b.txt"], "no\\nsuch\\x1b.txt")  # visibly
        fifo = os.path.join(self.dir, "ck.fifo")
        os.mkfifo(fifo)
        self.assertOneLine(["-i", self.data, "-o", fifo, "--sample-only"], "is not a file")

    def test_control_characters_in_the_data_never_reach_the_terminal_raw(self):
        raw = "\x1b\x07\x08\x85\u2028"
        path = self.write("control.txt", "".join(f"a{c}b{c}\n" for c in raw) * 12)
        code, out, err, _ = run("-i", path, "--max-steps", 30, "--num-samples", 20,
                                "--explain", "a\x1bb\u2028", *TINY[:-2])
        self.assertEqual(code, 0, err)
        self.assertEqual([c for c in out if c in raw], [])
        self.assertIn("\\x1b", out)  # in the samples
        self.assertIn("␛", out)  # in --explain


class ProgressTest(unittest.TestCase):
    def run_with(self, terminal):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "names.txt")
            with open(data, "w", encoding="utf-8") as f:
                f.write("\n".join(DOCS) + "\n")
            cmd = [sys.executable, SCRIPT, "-i", data, "--max-steps", 6, "--eval-every", 3, *TINY]
            cmd = [str(c) for c in cmd]
            if not terminal:
                return subprocess.run(cmd, capture_output=True, timeout=120).stdout.decode()
            main, child = pty.openpty()
            proc = subprocess.Popen(cmd, stdout=child, stderr=subprocess.DEVNULL)
            os.close(child)
            out = b""
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            proc.wait(timeout=120)
            os.close(main)
            return out.decode()

    def test_status_lines_on_a_terminal_only(self):
        terminal, piped = self.run_with(True), self.run_with(False)
        self.assertIn("\rstep 2/6", terminal)
        self.assertIn("\rval 0/2", terminal)  # 6 documents, 4 at a time
        self.assertIn("\rsample 0/2", terminal)
        self.assertNotIn("\r", piped.replace("\r\n", "\n"))
        for text in (terminal.replace("\r\n", "\n"), piped):  # the same lines once rewritten
            self.assertIn("step     6/6 | train loss", text)
            self.assertIn("2 samples, ", text)
        self.assertTrue(math.isfinite(float(piped.split("step 6: val loss ")[1].split()[0])))
        # every step line ends with the time since training began and the time left
        lines = [line for line in piped.splitlines() if line.startswith("step ") and "|" in line]
        self.assertGreaterEqual(len(lines), 3)
        for line in lines:
            self.assertRegex(line, r" \| \d+:\d\d elapsed, \d+:\d\d left$")
        self.assertTrue(lines[-1].endswith(" 0:00 left"))

    def test_durations_read_as_a_clock(self):
        for seconds, shown in ((0, "0:00"), (5.4, "0:05"), (125, "2:05"), (3599.6, "1:00:00"),
                               (7325, "2:02:05"), (100 * 3600, "100:00:00")):
            self.assertEqual(microgpt.clock(seconds), shown)


if __name__ == "__main__":
    unittest.main()
