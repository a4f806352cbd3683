"""Looking inside the model: explain, the baselines, the loss chart."""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["emma", "olivia", "ava", "mia", "noah", "liam", "amelia", "leo", "eva", "ella"]


def tiny(n_layer=2, n_head=2):
    chars = sorted(set("".join(DOCS)))
    config = microgpt.GPTConfig(vocab_size=len(chars) + 1, block_size=8, n_layer=n_layer,
                                n_head=n_head, n_embd=8)
    return microgpt.as_floats(microgpt.init_params(config, random.Random(0))), config, chars


def run(*args, cwd=ROOT):
    cmd = [sys.executable, os.path.join(ROOT, "microgpt.py")] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


class ExplainTest(unittest.TestCase):
    def test_one_row_per_position_with_probabilities_that_sum_to_1(self):
        params, config, chars = tiny()
        rows = microgpt.explain("emma", params, config, chars)
        self.assertEqual(len(rows), 5)
        self.assertEqual([r["read"] for r in rows], microgpt.tokenize("emma", chars)[:-1])
        self.assertEqual([r["next"] for r in rows], microgpt.tokenize("emma", chars)[1:])
        for r in rows:
            self.assertEqual(len(r["probs"]), config.vocab_size)
            self.assertAlmostEqual(sum(r["probs"]), 1.0, places=12)
            self.assertAlmostEqual(r["surprise"], -math.log(r["probs"][r["next"]]), places=9)

    def test_attention_rows_sum_to_1_over_earlier_positions_only(self):
        params, config, chars = tiny()
        for pos, r in enumerate(microgpt.explain("olivia", params, config, chars)):
            self.assertEqual(len(r["attn"]), config.n_layer)
            for layer in r["attn"]:
                self.assertEqual(len(layer), config.n_head)
                for head in layer:
                    self.assertEqual(len(head), pos + 1)  # positions 0..pos: none later
                    self.assertAlmostEqual(sum(head), 1.0, places=12)
                    self.assertTrue(all(w > 0 for w in head))

    def test_mean_surprise_is_the_training_loss_of_the_document(self):
        params, config, chars = tiny()
        rows = microgpt.explain("amelia", params, config, chars)
        values = microgpt.as_values(params)
        losses = microgpt.doc_losses(microgpt.tokenize("amelia", chars), values, config)
        mean = sum(r["surprise"] for r in rows) / len(rows)
        self.assertAlmostEqual(mean, sum(x.data for x in losses) / len(losses), delta=1e-9)

    def test_bad_text_is_refused(self):
        params, config, chars = tiny()
        with self.assertRaisesRegex(ValueError, "outside the vocabulary: 'z'"):
            microgpt.explain("zoe", params, config, chars)
        with self.assertRaisesRegex(ValueError, "longer than block_size allows"):
            microgpt.explain("a" * config.block_size, params, config, chars)
        microgpt.explain("a" * (config.block_size - 1), params, config, chars)

    def test_the_printout_fits_80_columns_for_the_default_model(self):
        chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        config = microgpt.GPTConfig(vocab_size=27, block_size=16)
        params = microgpt.as_floats(microgpt.init_params(config, random.Random(0)))
        for text in ("emma", "christopherjame"):  # a short name, and the longest one
            rows = microgpt.explain(text, params, config, chars)
            out = self.printed(rows, chars)
            self.assertLessEqual(max(map(len, out.splitlines())), 80, out)
            self.assertIn("layer 0 head 3", out)
            self.assertIn(f"over {len(text) + 1} predictions", out)

    def printed(self, rows, chars):
        import contextlib
        import io
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            microgpt.print_explain(rows, chars)
        return buffer.getvalue()


    def test_with_loss_after_only_the_counted_positions_have_a_surprise(self):
        params, config, chars = tiny()
        after = chars.index("m")  # emma: the predictions of m, a and the closing BOS count
        rows = microgpt.explain("emma", params, config, chars, after)
        self.assertEqual([r["surprise"] is None for r in rows], [True, True, False, False, False])
        mean = sum(r["surprise"] for r in rows[2:]) / 3
        loss = microgpt.loss_and_grads([microgpt.tokenize("emma", chars)], params, config, after)[0]
        self.assertAlmostEqual(mean, loss, delta=1e-9)


class BaselineTest(unittest.TestCase):
    def test_bigram_counts_with_add_one_smoothing(self):
        # tokens 0 and 1, BOS 2: from BOS, 0 followed twice and 1 never; smoothed: 3/5 and 1/5
        train = [[2, 0, 2], [2, 0, 2]]
        self.assertAlmostEqual(microgpt.bigram_loss(train, [[2, 0]], 3, 8), -math.log(3 / 5))
        self.assertAlmostEqual(microgpt.bigram_loss(train, [[2, 1]], 3, 8), -math.log(1 / 5))
        self.assertAlmostEqual(microgpt.bigram_loss(train, [[1, 1]], 3, 8), math.log(3))
        self.assertTrue(math.isnan(microgpt.bigram_loss(train, [], 3, 8)))
        # with after=0, only the pairs from the first 0 on: (0, 2), not (2, 0)
        self.assertAlmostEqual(microgpt.bigram_loss(train, [[2, 0, 2]], 3, 8, after=0),
                               -math.log(3 / 5))

    def test_bigram_counts_beat_uniform_guessing_on_names(self):
        docs = microgpt.load_docs(os.path.join(ROOT, "names.txt"))
        train, val = microgpt.split_docs(docs, 42)
        chars = sorted(set("".join(docs)))
        loss = microgpt.bigram_loss([microgpt.tokenize(d, chars) for d in train],
                                    [microgpt.tokenize(d, chars) for d in val], 27, 16)
        self.assertLess(loss, math.log(27) - 0.5)


class LossChartTest(unittest.TestCase):
    def test_the_chart_fits_12_rows_and_72_columns(self):
        rng = random.Random(0)
        for steps in (1, 2, 59, 60, 61, 1200, 30000):
            train = [3.3 - 1.2 * i / steps + rng.uniform(-0.2, 0.2) for i in range(steps)]
            val = [[s, 2.5] for s in range(600, steps + 1, 600)]
            for history in ({"train": train, "val": val}, {"train": [2.0] * steps, "val": []}):
                with self.subTest(steps=steps):
                    lines = microgpt.loss_chart(history, steps)
                    self.assertLessEqual(len(lines), 12)
                    self.assertLessEqual(max(map(len, lines)), 72)
                    self.assertTrue(lines[-1].strip().startswith("1"))
                    self.assertTrue(lines[-1].endswith(str(steps)))

    def test_huge_losses_of_a_diverged_run_still_chart(self):
        for huge in (1.4e7, 1e300, 1.7e308):
            lines = microgpt.loss_chart({"train": [2.0] * 100 + [huge] * 10, "val": []}, 110)
            self.assertIn("█", "".join(lines))
            self.assertNotIn("inf", "".join(lines))
            self.assertLessEqual(max(line.find("┤") for line in lines), 7)  # short labels

    def test_the_lowest_and_highest_losses_are_at_the_bottom_and_the_top(self):
        lines = microgpt.loss_chart({"train": [3.0] * 10 + [2.0] * 10, "val": [[20, 2.5]]}, 20)
        plot = lines[1:-2]
        self.assertEqual(plot[0][7], "█")  # the first steps reach the top row...
        self.assertEqual(plot[0].ljust(len(plot[-1]))[-1], " ")  # ... the last ones do not
        self.assertEqual([line for line in lines if line != line.rstrip()], [])
        self.assertTrue(all(line[-1] in "▁█◆" for line in plot[-1:]))
        self.assertIn("◆", "".join(plot))
        top, bottom = float(plot[0].split()[0]), float(plot[-1].split()[0])  # rows' centres
        self.assertLess(abs(top - 3.0), 1.0 / len(plot))
        self.assertLess(abs(bottom - 2.0), 1.0 / len(plot))

    def test_a_resumed_run_charts_the_whole_run(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "names.txt")
            with open(data, "w", encoding="utf-8") as f:
                f.write("\n".join(DOCS * 6) + "\n")
            ckpt = os.path.join(d, "m.json")
            flags = ["-i", data, "--n-embd", 8, "--n-head", 2, "-b", 4, "--num-samples", 0,
                     "-o", ckpt]
            first = run(*flags, "--max-steps", 30)
            self.assertEqual(first.returncode, 0, first.stderr)
            r = run(*flags, "--max-steps", 70, "--resume")
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(ckpt, encoding="utf-8") as f:
                history = json.load(f)["history"]
        self.assertEqual(len(history["train"]), 70)
        self.assertEqual([s for s, _ in history["val"]], [30, 70])
        chart = r.stdout.split("loss (nats)")[1].splitlines()
        self.assertEqual(chart[-1].split(), ["1", "70"])
        self.assertNotIn("step     1/70", r.stdout)  # it trained only steps 31 to 70


class ScriptTest(unittest.TestCase):
    def test_explain_after_training_from_a_checkpoint(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "names.txt")
            with open(data, "w", encoding="utf-8") as f:
                f.write("\n".join(DOCS * 6) + "\n")
            ckpt = os.path.join(d, "m.json")
            r = run("-i", data, "--n-embd", 8, "--n-head", 2, "-o", ckpt, "--max-steps", 20,
                    "--num-samples", 0)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("val loss of simpler models: uniform guessing "
                          f"{math.log(len(set(''.join(DOCS))) + 1):.4f}, bigram counts", r.stdout)
            self.assertIn("below uniform guessing", r.stdout)
            self.assertIn("loss (nats)", r.stdout)
            r = run("-i", data, "-o", ckpt, "--sample-only", "--explain", "emma",
                    "--num-samples", 0)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            at = lines.index([x for x in lines if x.startswith("pos read")][0])
            self.assertEqual([x.split()[0] for x in lines[at + 1:at + 6]], list("01234"))
            self.assertIn("layer 0 head 1", r.stdout)
            self.assertIn("a · · ", r.stdout.replace("░", "·").replace("▒", "·").replace(
                "▓", "·").replace("█", "·"))
            self.assertRegex(lines[-1], r"^mean surprise \d\.\d{4} nats per character over 5 "
                                        r"predictions \(perplexity \d+\.\d\d\)$")
            for bad, says in (("zoe", "outside the vocabulary"), ("a" * 7, "longer than")):
                r = run("-i", data, "-o", ckpt, "--sample-only", "--explain", bad)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith("microgpt: error: --explain"), r.stderr)
                self.assertIn(says, r.stderr)


if __name__ == "__main__":
    unittest.main()
