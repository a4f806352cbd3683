"""The data, tokenizer, model, loss, training and sampling of microgpt."""
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

import atomic
import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["emma", "olivia", "ava", "mia", "noah", "liam", "amelia", "leo", "eva", "ella"]


def tiny(seed=0, n_layer=1):
    """A tiny model on DOCS: (params, config, chars, token lists)."""
    chars = sorted(set("".join(DOCS)))
    config = microgpt.GPTConfig(vocab_size=len(chars) + 1, block_size=8, n_layer=n_layer,
                                n_head=2, n_embd=8)
    params = microgpt.init_params(config, random.Random(seed))
    bos = len(chars)
    tokens = [[bos] + microgpt.encode(d, chars) + [bos] for d in DOCS]
    return params, config, chars, tokens


class DataTest(unittest.TestCase):
    def test_tokenizer_round_trip(self):
        chars = sorted(set("".join(DOCS)))
        for doc in DOCS:
            ids = microgpt.encode(doc, chars)
            self.assertTrue(all(0 <= i < len(chars) for i in ids))
            self.assertEqual(microgpt.decode(ids, chars), doc)

    def test_ids_follow_sorted_characters(self):
        self.assertEqual(microgpt.encode("cab", ["a", "b", "c"]), [2, 0, 1])

    def test_split_holds_out_ten_percent_at_most_1000(self):
        train, val = microgpt.split_docs([str(i) for i in range(200)], seed=1)
        self.assertEqual((len(train), len(val)), (180, 20))
        self.assertEqual(sorted(train + val, key=int), [str(i) for i in range(200)])
        train, val = microgpt.split_docs([str(i) for i in range(20000)], seed=1)
        self.assertEqual(len(val), 1000)

    def test_load_docs_strips_and_drops_blank_lines(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "docs.txt")
            with open(path, "wb") as f:
                f.write(b"anna\r\n\r\n  bob \n\n\ncara")
            self.assertEqual(microgpt.load_docs(path), ["anna", "bob", "cara"])


class ModelTest(unittest.TestCase):
    def test_parameter_names_and_shapes(self):
        params, config, _, _ = tiny(n_layer=2)
        self.assertEqual(list(params)[:2], ["wte", "wpe"])
        self.assertIn("h.1.attn.wq", params)
        self.assertEqual(list(params)[-3:], ["ln_f.weight", "ln_f.bias", "lm_head"])
        self.assertEqual((len(params["h.0.mlp.fc"]), len(params["h.0.mlp.fc"][0])), (32, 8))
        self.assertEqual((len(params["lm_head"]), len(params["lm_head"][0])),
                         (config.vocab_size, 8))

    def test_a_document_of_length_l_gives_l_plus_1_positions(self):
        params, config, _, tokens = tiny()
        for t in tokens:
            self.assertEqual(len(microgpt.doc_losses(t, params, config)), len(t) - 1)

    def test_loss_at_initialization_is_close_to_ln_vocab_size(self):
        params, config, _, tokens = tiny()
        loss = microgpt.batch_loss(tokens, params, config).data
        self.assertAlmostEqual(loss, math.log(config.vocab_size), delta=0.15)

    def test_attention_is_causal(self):
        # the logits at position 1 must not depend on what comes after it
        params, config, _, _ = tiny()
        a, b = [[0, 1, 2, 3], [0, 1, 5, 6]]
        logits = []
        for seq in (a, b):
            cache = microgpt.empty_cache(config)
            logits.append([[z.data for z in microgpt.gpt(t, p, cache, params, config)]
                           for p, t in enumerate(seq)])
        self.assertEqual(logits[0][:2], logits[1][:2])
        self.assertNotEqual(logits[0][2], logits[1][2])

    def test_model_gradient_matches_finite_differences(self):
        params, config, _, tokens = tiny(n_layer=2)
        batch = tokens[:3]
        loss = microgpt.batch_loss(batch, params, config)
        loss.backward()
        flat = microgpt.parameters(params)
        rng = random.Random(0)
        h = 1e-5
        for p in rng.sample(flat, 40):
            analytic = p.grad
            p.data += h
            up = microgpt.batch_loss(batch, params, config).data
            p.data -= 2 * h
            down = microgpt.batch_loss(batch, params, config).data
            p.data += h
            numeric = (up - down) / (2 * h)
            self.assertAlmostEqual(analytic, numeric, delta=1e-6 + 1e-4 * abs(numeric))

    def test_fused_and_atomic_models_agree(self):
        results = []
        for use_atomic in (False, True):
            params, config, _, tokens = tiny(n_layer=2)
            if use_atomic:
                with atomic.use_atomic_ops():
                    loss = microgpt.batch_loss(tokens[:4], params, config)
            else:
                loss = microgpt.batch_loss(tokens[:4], params, config)
            loss.backward()
            results.append([loss.data] + [p.grad for p in microgpt.parameters(params)])
        for f, a in zip(*results):
            self.assertLessEqual(abs(f - a), 1e-12 * max(1.0, abs(a)))


class TrainingTest(unittest.TestCase):
    def test_per_document_backward_equals_the_batch_backward(self):
        grads = []
        for per_document in (True, False):
            params, config, _, tokens = tiny()
            if per_document:
                loss = microgpt.backward_batch(tokens[:5], params, config)
            else:
                value = microgpt.batch_loss(tokens[:5], params, config)
                value.backward()
                loss = value.data
            grads.append([loss] + [p.grad for p in microgpt.parameters(params)])
        for a, b in zip(*grads):
            self.assertAlmostEqual(a, b, delta=1e-12)

    def test_a_few_dozen_steps_lower_the_training_loss(self):
        params, config, _, tokens = tiny()
        flat = microgpt.parameters(params)
        m, v = [0.0] * len(flat), [0.0] * len(flat)
        before = microgpt.batch_loss(tokens, params, config).data
        for t in range(1, 31):
            microgpt.batch_loss(tokens, params, config).backward()
            microgpt.adam_step(flat, m, v, t, 0.02)
        after = microgpt.batch_loss(tokens, params, config).data
        self.assertLess(after, before - 0.5)

    def test_the_same_seed_gives_the_same_samples(self):
        params, config, chars, _ = tiny()
        runs = [[microgpt.sample(params, config, chars, random.Random(7)) for _ in range(5)]
                for _ in range(2)]
        self.assertEqual(runs[0], runs[1])
        other = [microgpt.sample(params, config, chars, random.Random(8)) for _ in range(5)]
        self.assertNotEqual(runs[0], other)

    def test_samples_use_only_the_vocabulary_and_fit_the_block(self):
        params, config, chars, _ = tiny()
        rng = random.Random(0)
        for _ in range(20):
            s = microgpt.sample(params, config, chars, rng)
            self.assertTrue(set(s) <= set(chars))
            self.assertLessEqual(len(s), config.block_size)


class ScriptTest(unittest.TestCase):
    def run_script(self, *args, code=None):
        cmd = [sys.executable] + (["-c", code] if code else [os.path.join(ROOT, "microgpt.py")])
        return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT,
                              timeout=300)

    def test_import_has_no_side_effects(self):
        r = self.run_script(code="import microgpt")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_short_run_prints_val_loss_and_samples(self):
        r = self.run_script("--max-steps", "5", "--num-samples", "4")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        at = [i for i, line in enumerate(lines) if "val loss" in line][-1]
        loss = float(lines[at].split("val loss")[1].split()[0])
        self.assertTrue(0 < loss < 4)
        samples = [line for line in lines[at + 1:] if line.strip() and "samples" not in line]
        self.assertEqual(len(samples), 4)

    def test_help(self):
        r = self.run_script("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-steps", r.stdout)


if __name__ == "__main__":
    unittest.main()
