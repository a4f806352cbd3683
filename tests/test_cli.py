"""microgpt as a tool: checkpoints, resume, Ctrl-C, prompts, any dataset, notebooks, errors."""
import contextlib
import io
import json
import math
import os
import pty
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "microgpt.py")
NAMES = ["emma", "olivia", "ava", "mia", "noah", "liam", "amelia", "leo", "eva", "ella", "mason",
         "lucas", "maya", "mila", "marco", "luna", "nora", "owen", "isla", "aria"] * 3
TINY = ["--n-embd", "8", "--n-head", "2", "--batch-size", "4", "--num-samples", "5"]


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], capture_output=True,
                           text=True, cwd=cwd, timeout=300)


def start(args, cwd=ROOT, code=None, **kwargs):
    """Start microgpt and wait until it has printed its first training step."""
    cmd = [sys.executable] + (["-c", code] if code else [SCRIPT]) + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            **kwargs)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step "):
            break
    return proc, lines


def interrupt(proc, lines, sig=signal.SIGINT):
    proc.send_signal(sig)
    with proc.stdout, proc.stderr:
        out = proc.stdout.read()  # through the same reader as `lines`: nothing it buffered is lost
        err = proc.stderr.read()
    proc.wait(timeout=300)
    return proc.returncode, "".join(lines) + out, err


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        cls.data = cls.path("names.txt", "\n".join(NAMES) + "\n")
        cls.ckpt = os.path.join(cls.dir, "model.json")
        r = run("-i", cls.data, "--max-steps", 3, "-o", cls.ckpt, *TINY)
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def path(cls, name, content):
        path = os.path.join(cls.dir, name)
        with open(path, "wb" if isinstance(content, bytes) else "w", encoding=None if
                  isinstance(content, bytes) else "utf-8") as f:
            f.write(content)
        return path

    def samples(self, stdout):
        lines = stdout.splitlines()
        at = [i for i, line in enumerate(lines) if " samples, " in line][-1]
        # each line: the sample (which may hold spaces), then its mark
        samples = []
        for line in lines[at + 1:]:
            if line == "(empty)":  # the model drew the end first
                samples.append(("", "empty"))
                continue
            if not line.split() or line.split()[-1] not in ("new", "train", "val"):
                break
            samples.append((line[:-len(line.split()[-1])].strip(), line.split()[-1]))
        return samples

    def test_checkpoint_contents(self):
        with open(self.ckpt, encoding="utf-8") as f:
            ckpt = json.load(f)
        self.assertEqual((ckpt["format"], ckpt["version"], ckpt["step"]), ("microgpt", 1, 3))
        self.assertEqual(ckpt["config"], {"n_layer": 1, "n_head": 2, "n_embd": 8, "block_size": 7})
        self.assertEqual(ckpt["chars"], "".join(sorted(set("".join(NAMES)))))
        self.assertIs(ckpt["shuffle"], True)  # a new run reads each pass in a new order
        self.assertEqual(len(ckpt["params"]["wte"]), len(ckpt["chars"]) + 1)
        self.assertEqual(len(ckpt["params"]["h.0.ln_1.bias"]), 8)
        self.assertFalse([f for f in os.listdir(self.dir) if f.startswith(".model.json.")])

    def test_each_pass_after_the_first_reads_the_documents_in_a_new_order(self):
        docs = [f"doc{i}" for i in range(10)]
        def read(shuffle, seed=42, steps=12, batch_size=3, position=0):
            state, orders, out = {"seed": seed, "position": position, "shuffle": shuffle}, {}, []
            for _ in range(steps):
                out += microgpt.next_docs(docs, state, batch_size, orders)
                state["position"] += batch_size
            return out
        passes = [read(True)[k:k + 10] for k in range(0, 30, 10)]
        self.assertEqual(passes[0], docs)  # the first pass: split_docs' order, as get_batch
        self.assertEqual([sorted(p) for p in passes], [sorted(docs)] * 3)  # each reads all once
        self.assertNotEqual(passes[1], docs)
        self.assertNotEqual(passes[1], passes[2])
        self.assertEqual(read(True), read(True))  # seeded: the same run reads the same
        self.assertNotEqual(read(True), read(True, seed=1))
        self.assertEqual(read(True)[15:], read(True, steps=7, position=15))  # resumed mid-pass
        self.assertEqual(read(False), microgpt.get_batch(docs, 0, 36))  # an older checkpoint's

    def test_the_first_pass_needs_no_order_and_a_later_one_4_bytes_a_document(self):
        docs, orders = [f"doc{i}" for i in range(1000)], {}
        state = {"seed": 42, "position": 0, "shuffle": True}
        microgpt.next_docs(docs, state, 8, orders)
        self.assertEqual(orders, {})  # millions of short documents fit (a list of ints did not)
        state["position"] = 1000
        microgpt.next_docs(docs, state, 8, orders)
        self.assertEqual(orders[1].itemsize, 4)

    def test_a_checkpoint_saved_before_per_pass_orders_resumes_in_order(self):
        with open(self.ckpt, encoding="utf-8") as f:
            ckpt = json.load(f)
        del ckpt["shuffle"]
        self.assertIs(microgpt.from_checkpoint(ckpt)[3]["shuffle"], False)
        ckpt["shuffle"] = "yes"
        with self.assertRaisesRegex(ValueError, "shuffle must be true or false"):
            microgpt.from_checkpoint(ckpt)

    def test_sample_only_loads_and_samples(self):
        r = run("-i", self.data, "--sample-only", "-o", self.ckpt, "--num-samples", 7)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("step ", r.stdout)
        self.assertEqual(len(self.samples(r.stdout)), 7)

    def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(self):
        flags = ["-i", self.data, "--max-steps", 120, "--eval-every", 50, *TINY]
        whole = os.path.join(self.dir, "whole.json")
        self.assertEqual(run(*flags, "-o", whole).returncode, 0)
        with open(whole, encoding="utf-8") as f:
            uninterrupted = json.load(f)
        self.assertEqual(uninterrupted["step"], 120)
        # Ctrl-C, a job scheduler's kill, and a closed terminal's hangup
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
            with self.subTest(signal.Signals(sig).name):
                parts = os.path.join(self.dir, f"parts{sig}.json")
                status, out, err = interrupt(*start(flags + ["-o", parts]), sig)
                self.assertEqual(status, code, err)
                self.assertNotIn("Traceback", err)
                with open(parts, encoding="utf-8") as f:
                    stopped_at = json.load(f)["step"]
                self.assertLess(stopped_at, 120)
                self.assertIn(f"interrupted after step {stopped_at}, saved to {parts}", out)
                self.assertIn(f"step {stopped_at}: val loss", out)
                self.assertEqual(len(self.samples(out)), 5)
                r = run(*flags, "-o", parts, "--resume")
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(parts, encoding="utf-8") as f:
                    self.assertEqual(json.load(f), uninterrupted)

    def test_a_checkpoint_of_either_mode_resumes_in_the_other_to_the_same_end(self):
        # Adam's moments are kept in parameters() order by both, so --plain and the default
        # continue each other's checkpoints: the val loss and the samples come out the same
        flags = ["-i", self.data, "--eval-every", 100, *TINY]
        ends = []
        for first, then in (([], ["--plain"]), (["--plain"], []), ([], [])):
            out = os.path.join(self.dir, f"either{len(first)}{len(then)}.json")
            self.assertEqual(run(*flags, "--max-steps", 6, "-o", out, *first).returncode, 0)
            r = run(*flags, "--max-steps", 12, "-o", out, "--resume", *then)
            self.assertEqual(r.returncode, 0, r.stderr)
            ends.append((r.stdout.split("step 12: val loss ")[1].split()[0], self.samples(r.stdout)))
        self.assertEqual(ends[0], ends[2])
        self.assertEqual(ends[1], ends[2])

    def test_a_loss_after_a_character_is_kept_in_the_checkpoint_and_resumes_exactly(self):
        sums = self.path("sums.txt", "".join(f"{a}+{b}={a + b}\n" for a in range(15)
                                             for b in range(15)))
        flags = ["-i", sums, "--max-steps", 120, "--eval-every", 50, *TINY]
        whole = os.path.join(self.dir, "sums_whole.json")
        r = run(*flags, "-o", whole, "--loss-after", "=", "--explain", "7+8=15")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("loss: counted only after the first '=' of each document", r.stdout)
        params, config, chars, state = microgpt.load_checkpoint(whole)
        self.assertEqual(state["loss_after"], "=")
        _, val_docs = microgpt.split_docs(microgpt.load_docs(sums), state["seed"])
        losses = microgpt.position_losses([microgpt.tokenize(d, chars) for d in val_docs],
                                          params, config, chars.index("="))[0]
        val = math.fsum(losses) / len(losses)
        self.assertEqual(state["history"]["val"][-1], [120, val])  # the same positions count
        self.assertIn(f"step 120: val loss {val:.4f}", r.stdout)
        self.assertIn("over 3 predictions", r.stdout)  # explain: 1, 5 and the closing BOS
        # stopped, then resumed without the flag: the checkpoint's loss_after wins
        parts = os.path.join(self.dir, "sums_parts.json")
        status, _, err = interrupt(*start(flags + ["-o", parts, "--loss-after", "="]))
        self.assertEqual(status, 130, err)
        self.assertEqual(run(*flags, "-o", parts, "--resume").returncode, 0)
        self.assertEqual(json.loads(read(parts, "r")), json.loads(read(whole, "r")))
        # a checkpoint from before the flag has no loss_after, and counts every position
        ckpt = json.loads(read(self.ckpt, "r"))
        del ckpt["loss_after"]
        older = self.path("older.json", json.dumps(ckpt))
        self.assertIsNone(microgpt.load_checkpoint(older)[3]["loss_after"])
        r = run("-i", sums, "-o", whole, "--sample-only", "--explain", "7+8")
        self.assertIn("--explain needs a '='", r.stderr)

    def test_a_closed_terminal_stops_training_with_a_save_and_no_traceback(self):
        # SIGHUP, then every print fails (EIO): the steps done are saved all the same
        parts = os.path.join(self.dir, "hangup.json")
        main, child = pty.openpty()
        cmd = [sys.executable, SCRIPT, "-i", self.data, "--max-steps", "100000", "-o", parts]
        proc = subprocess.Popen(cmd + TINY, stdout=child, stderr=subprocess.PIPE)
        os.close(child)
        seen = b""
        while b"step     1/" not in seen:
            seen += os.read(main, 4096)
        proc.send_signal(signal.SIGHUP)
        os.close(main)  # the terminal is gone with it
        with proc.stderr:
            err = proc.stderr.read().decode()
        self.assertEqual(proc.wait(timeout=300), 129, err)
        self.assertEqual(err, "")
        with open(parts, encoding="utf-8") as f:
            self.assertGreaterEqual(json.load(f)["step"], 1)

    def test_a_closed_pipe_stops_training_with_a_save_and_says_so_by_its_status(self):
        out = os.path.join(self.dir, "piped.json")
        cmd = [sys.executable, SCRIPT, "-i", self.data, "--max-steps", "100000", "-o", out]
        proc = subprocess.Popen(cmd + TINY, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while not proc.stdout.readline().startswith(b"step"):  # as `| head` reads, then
            pass  # closes the pipe
        proc.stdout.close()
        with proc.stderr:
            err = proc.stderr.read().decode()
        self.assertEqual(proc.wait(timeout=300), 141, err)  # not 0: training did not finish
        self.assertEqual(err, "")
        with open(out, encoding="utf-8") as f:
            self.assertGreaterEqual(json.load(f)["step"], 1)

    def test_a_signal_outside_training_ends_quietly_and_keeps_the_checkpoint(self):
        before = read(self.ckpt)
        for sig, code in ((signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)):
            with self.subTest(signal.Signals(sig).name):
                proc = subprocess.Popen([sys.executable, SCRIPT, "-i", self.data, "--sample-only",
                                         "-o", self.ckpt, "--num-samples", "100000"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.assertTrue(proc.stdout.readline().startswith("data: "))
                proc.send_signal(sig)  # while it loads or samples
                out, err = proc.communicate(timeout=300)
                self.assertEqual((proc.returncode, err), (code, ""))
                self.assertEqual(read(self.ckpt), before)

    def test_signals_in_quick_succession_or_with_the_pipe_gone_end_quietly(self):
        # a second signal while the first one stops main, and (with the output buffered, as
        # without PYTHONUNBUFFERED) a signal after the reader went: no traceback, no
        # "Exception ignored"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        cmd = [sys.executable, SCRIPT, "-i", self.data, "--sample-only", "-o", self.ckpt,
               "--num-samples", "100000"]
        for attempt in range(3):
            with self.subTest(attempt=attempt):
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                self.assertTrue(proc.stdout.readline().startswith(b"data: "))
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=300)
                self.assertEqual((proc.returncode, err), (143, b""))
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env)
                time.sleep(1 + 0.2 * attempt)  # it loads, then samples into its buffer
                proc.stdout.close()
                proc.send_signal(signal.SIGINT)
                with proc.stderr:
                    err = proc.stderr.read()
                self.assertIn(proc.wait(timeout=300), (130, 141))
                self.assertEqual(err, b"")

    def test_a_stop_at_a_validation_step_resumes_to_the_same_checkpoint(self):
        # a SIGTERM during step 4 skips that step's validation; the val loss after training
        # takes its place, so the history too is that of an uninterrupted run
        flags = ["-i", self.data, "--max-steps", "6", "--eval-every", "2", *TINY]
        whole, parts = (os.path.join(self.dir, f"eval_{n}.json") for n in ("whole", "parts"))
        step_fn = microgpt.train_step_fast

        def killed_in_step_4(state, *args, **kwargs):
            if state["step"] == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return step_fn(state, *args, **kwargs)
        with contextlib.redirect_stdout(io.StringIO()):
            microgpt.main(flags + ["-o", whole])
            microgpt.train_step_fast = killed_in_step_4
            try:
                with self.assertRaises(SystemExit) as stopped:
                    microgpt.main(flags + ["-o", parts])
            finally:
                microgpt.train_step_fast = step_fn
            self.assertEqual(stopped.exception.code, 143)
            with open(parts, encoding="utf-8") as f:
                self.assertEqual(json.load(f)["history"]["val"][-1][0], 4)
            microgpt.main(flags + ["-o", parts, "--resume"])
        with open(whole, encoding="utf-8") as f, open(parts, encoding="utf-8") as g:
            self.assertEqual(json.load(f), json.load(g))

    def test_the_steps_done_are_saved_before_the_final_validation(self):
        out = os.path.join(self.dir, "before_val.json")
        validate = microgpt.validate

        def stopped(*args):  # as a signal in the final validation does
            raise KeyboardInterrupt
        microgpt.validate = stopped
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                microgpt.main(["-i", self.data, "--max-steps", "5", "-o", out, *TINY])
        finally:
            microgpt.validate = validate
        with open(out, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["step"], 5)

    @unittest.skipIf(sys.implementation.name == "pypy", "PyPy's signal.getsignal() reports an "
                     "inherited SIG_IGN as SIG_DFL, so microgpt cannot see that nohup ignored it")
    def test_an_ignored_hangup_stays_ignored_as_under_nohup(self):
        proc, lines = start(["-i", self.data, "--max-steps", "100000", *TINY],
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        self.assertIsNone(proc.poll())  # still training
        code, out, err = interrupt(proc, lines)
        self.assertEqual((code, err), (130, ""))

    def test_output_that_cannot_be_written_is_one_line(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full here")
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, SCRIPT, "-i", self.data, "--max-steps", "2"] + TINY,
                               stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "microgpt: error: cannot print the output: No space left on "
                                   "device\n")

    def test_prompt_top_k_and_greedy(self):
        r = run("-i", self.data, "--sample-only", "-o", self.ckpt, "--prompt", "ma")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(all(s.startswith("ma") for s, _ in self.samples(r.stdout)))
        greedy = run("-i", self.data, "--sample-only", "-o", self.ckpt, "--temperature", 0)
        top1 = run("-i", self.data, "--sample-only", "-o", self.ckpt, "--top-k", 1, "--seed", 5)
        self.assertEqual(len(set(map(tuple, self.samples(greedy.stdout)))), 1)
        self.assertEqual(self.samples(greedy.stdout), self.samples(top1.stdout))

    def test_samples_are_marked_new_or_seen(self):
        r = run("-i", self.data, "--sample-only", "-o", self.ckpt, "--num-samples", 30)
        samples = self.samples(r.stdout)
        self.assertEqual(len(samples), 30)
        for s, mark in samples:
            self.assertEqual(mark == "new", s not in NAMES + [""], (s, mark))
            self.assertEqual(mark == "empty", s == "", (s, mark))
            self.assertIn(mark, ("new", "train", "val", "empty"))
        n_new = int(r.stdout.split(" samples, ")[1].split()[0])
        self.assertEqual(n_new, [mark for _, mark in samples].count("new"))

    def test_any_dataset_and_block_size_cut(self):
        words = ["Zoë", "São Paulo", "東京", "naïve café", "Ålesund", "Kraków",
                 "Reykjavík"] * 4
        data = self.path("unicode.txt", "\n".join(words) + "\n")
        r = run("-i", data, "--max-steps", 3, *TINY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("block_size 11", r.stdout)
        r = run("-i", data, "--max-steps", 3, "--block-size", 6, *TINY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("20 documents longer than 5 characters are cut", r.stdout)

    def test_a_file_too_small_to_hold_documents_out_still_trains(self):
        r = run("-i", self.path("three.txt", "ann\nbob\ncy\n"), "--max-steps", 3, *TINY, "-b", 3)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("step 3: val loss nan (the file has too few documents", r.stdout)
        self.assertEqual(len(self.samples(r.stdout)), 5)

    def test_gradcheck(self):
        r = run("-i", self.data, "--gradcheck", *TINY)
        self.assertEqual(r.returncode, 0, r.stderr)
        err = float(r.stdout.split("largest relative error")[1].split()[0])
        self.assertLess(err, 1e-5)
        self.assertIn("parameters: passed (the limit is 1e-04)", r.stdout)

    def test_gradcheck_gives_a_verdict_and_fails_a_broken_gradient(self):
        # GELU's derivative broken, as the README's "Catch a bug with gradcheck" breaks it
        source = read(SCRIPT, "r").replace("(1 - t * t) * GELU_C", "(1 - t) * GELU_C")
        broken = self.path("broken.py", source)
        r = subprocess.run([sys.executable, broken, "-i", self.data, "--gradcheck", *TINY],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("parameters: FAILED (the limit is 1e-04)", r.stdout)
        self.assertEqual(r.stderr, "")
        flags = ["-i", self.data, "--gradcheck", *TINY]
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertIs(microgpt.main(flags), True)  # called from Python: the verdict
            cell = {}  # pasted into a notebook, the broken copy returns False, without exiting
            exec(compile(source, "<cell>", "exec"), cell)
            self.assertIs(cell["main"](flags), False)

    def test_a_run_that_ends_says_where_it_saved(self):
        path = os.path.join(self.dir, "ends.json")
        r = run("-i", self.data, "--max-steps", 3, "-o", path, *TINY)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"\nsaved to {path} (--resume trains on, --sample-only samples)\n", r.stdout)
        r = run("-i", self.data, "--max-steps", 3, *TINY)
        self.assertNotIn("saved to", r.stdout)

    def test_an_empty_sample_is_shown_and_counted_apart(self):
        ckpt = json.loads(read(self.ckpt, "r"))
        params = ckpt["params"]  # logits = lm_head . ln_f.bias: the end (BOS) wins at once
        params["ln_f.weight"] = [0.0] * len(params["ln_f.weight"])
        params["ln_f.bias"] = [1.0] * len(params["ln_f.bias"])
        params["lm_head"] = [[0.0] * len(row) for row in params["lm_head"]]
        params["lm_head"][-1] = [5.0] * len(params["lm_head"][-1])
        path = self.path("ends_at_once.json", json.dumps(ckpt))
        r = run("-i", self.data, "--sample-only", "-o", path, "--num-samples", 3)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("3 samples, 0 new, 3 empty (the others are in the train or val data):\n"
                      + "(empty)\n" * 3, r.stdout)

    def test_pasted_into_a_notebook_runs_with_the_defaults(self):
        # a kernel starts with its own arguments; the pasted file must ignore them
        with open(SCRIPT, encoding="utf-8") as f:
            source = f.read()
        # interrupting the kernel stops training cleanly; the cell ends without SystemExit, and
        # the next cell can use the trained model
        code = ("import sys; sys.argv = ['ipykernel_launcher.py', '-f', '/tmp/kernel-1.json']\n"
                "cell = {'__name__': '__main__'}\n"
                f"exec(compile({source!r}, '<cell>', 'exec'), cell)\n"
                "model = cell['model']\n"
                "print('next cell:', model.config.n_embd, model.state['step'],"
                " len(model.state['history']['train']))")
        code_, out, err = interrupt(*start([], cwd=self.dir, code=code))
        self.assertEqual(code_, 0, err)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("SystemExit", err)
        self.assertIn(f"from {os.path.join(self.dir, 'names.txt')}", out)
        self.assertIn("/1400 |", out)  # the default --max-steps
        self.assertIn("val loss", out)
        steps = int(out.split("interrupted after step ")[1].split()[0])
        self.assertIn(f"next cell: 12 {steps} {steps}", out)
        self.assertEqual(len(self.samples(out.split("next cell:")[0])), 20)

    def test_bad_input_gets_one_clear_line(self):
        ckpt = json.loads(read(self.ckpt, "r"))
        text = json.dumps(ckpt)
        wrong_shape = dict(ckpt, config=dict(ckpt["config"], n_embd=4))
        files = {
            "empty": self.path("empty.txt", ""),
            "blank": self.path("blank.txt", "\n  \n\r\n"),
            "latin1": self.path("latin1.txt", "jos\xe9\n".encode("latin-1")),
            "truncated": self.path("truncated.json", text[:len(text) // 2]),
            "notjson": self.path("notjson.json", "hello"),
            "format": self.path("format.json", json.dumps(dict(ckpt, format="other"))),
            "version": self.path("version.json", json.dumps(dict(ckpt, version=2))),
            "shape": self.path("shape.json", json.dumps(wrong_shape)),
            "loss_after": self.path("loss_after.json", json.dumps(dict(ckpt, loss_after="=+"))),
        }
        d, ck = self.data, self.ckpt
        rows = {
            "missing input": (["-i", os.path.join(self.dir, "nope.txt")], "No such file"),
            "directory": (["-i", self.dir], "Is a directory"),
            "unreadable": (["-i", "/proc/self/mem"], "cannot read"),
            "empty file": (["-i", files["empty"]], "no documents"),
            "blank lines only": (["-i", files["blank"]], "no documents"),
            "not utf-8": (["-i", files["latin1"]], "not UTF-8"),
            "n_embd % n_head": (["-i", d, "--n-embd", 10, "--n-head", 4], "divisible"),
            "n_layer 0": (["-i", d, "--n-layer", 0], "--n-layer must be an integer of at least 1"),
            "n_head 0": (["-i", d, "--n-head", 0], "--n-head"),
            "n_embd negative": (["-i", d, "--n-embd", -8], "--n-embd"),
            "block_size 0": (["-i", d, "--block-size", 0], "--block-size"),
            "batch size 0": (["-i", d, "-b", 0], "--batch-size"),
            "max steps 0": (["-i", d, "--max-steps", 0], "--max-steps"),
            "learning rate 0": (["-i", d, "-l", 0], "--learning-rate"),
            "negative temperature": (["-i", d, "--temperature", -1], "--temperature"),
            "top-k 0": (["-i", d, "--top-k", 0], "--top-k"),
            "not a number": (["-i", d, "--max-steps", "many"], "invalid int"),
            "prompt outside vocab": (["-i", d, "--prompt", "ma!"], "'!'"),
            "prompt too long": (["-i", d, "--prompt", "a" * 8], "longer than block_size"),
            "sample-only, no --out": (["-i", d, "--sample-only"], "--out"),
            "checkpoint missing": (["-i", d, "--sample-only", "-o",
                                    os.path.join(self.dir, "no.json")], "does not exist"),
            "checkpoint truncated": (["-i", d, "--sample-only", "-o", files["truncated"]],
                                     "not JSON"),
            "checkpoint not json": (["-i", d, "--resume", "-o", files["notjson"]], "not JSON"),
            "checkpoint format": (["-i", d, "--sample-only", "-o", files["format"]],
                                  "not a microgpt checkpoint"),
            "checkpoint version": (["-i", d, "--sample-only", "-o", files["version"]], "version 2"),
            "checkpoint shapes": (["-i", d, "--resume", "-o", files["shape"]], "shape"),
            "checkpoint loss_after": (["-i", d, "--resume", "-o", files["loss_after"]],
                                      "loss_after must be"),
            "loss-after two characters": (["-i", d, "--loss-after", "=="], "one character"),
            "loss-after not in every document": (["-i", d, "--loss-after", "o"],
                                                 "documents have no 'o'"),
            "out exists": (["-i", d, "-o", ck, "--max-steps", 2], "already exists"),
            "out directory missing": (["-i", d, "-o", os.path.join(self.dir, "no", "m.json")],
                                      "directory does not exist"),
            "loss not finite": (["-i", d, "-l", 1e200, "--max-steps", 5, "-o",
                                 os.path.join(self.dir, "nan.json")], "lower --learning-rate"),
        }
        before = {p: read(p) for p in list(files.values()) + [d, ck]}
        for name, (args, says) in rows.items():
            with self.subTest(name):
                r = run(*TINY, *args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith("microgpt: error: "), r.stderr)
                self.assertIn(says, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "nan.json")))
        self.assertEqual(before, {p: read(p) for p in before})


if __name__ == "__main__":
    unittest.main()
