"""The data, tokenizer, model, loss, training and sampling of microgpt."""
import gc
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import unittest

import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["emma", "olivia", "ava", "mia", "noah", "liam", "amelia", "leo", "eva", "ella"]


def tiny(seed=0, n_layer=1):
    """A tiny model on DOCS: (params, config, chars, token lists)."""
    chars = sorted(set("".join(DOCS)))
    config = microgpt.GPTConfig(vocab_size=len(chars) + 1, block_size=8, n_layer=n_layer,
                                n_head=2, n_embd=8)
    params = microgpt.init_params(config, random.Random(seed))
    tokens = [microgpt.tokenize(d, chars) for d in DOCS]
    return params, config, chars, tokens


class DataTest(unittest.TestCase):
    def test_tokenizer_round_trip(self):
        chars = sorted(set("".join(DOCS)))
        for doc in DOCS:
            ids = microgpt.tokenize(doc, chars)[1:-1]
            self.assertTrue(all(0 <= i < len(chars) for i in ids))
            self.assertEqual("".join(chars[i] for i in ids), doc)

    def test_ids_follow_sorted_characters(self):
        self.assertEqual(microgpt.tokenize("cab", ["a", "b", "c"])[1:-1], [2, 0, 1])

    def test_a_document_is_read_between_two_bos(self):
        self.assertEqual(microgpt.tokenize("cab", ["a", "b", "c"]), [3, 2, 0, 1, 3])

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


def floats(params):
    return microgpt.as_floats(params)


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
        self.assertEqual(len(microgpt.position_losses(tokens, floats(params), config)[0]),
                         sum(len(t) - 1 for t in tokens))

    def test_loss_at_initialization_is_close_to_ln_vocab_size(self):
        params, config, _, tokens = tiny()
        loss = microgpt.loss_and_grads(tokens, floats(params), config)[0]
        self.assertAlmostEqual(loss, math.log(config.vocab_size), delta=0.15)

    def test_attention_is_causal(self):
        # the logits at position 1 must not depend on what comes after it, in Part 1 and 2
        params, config, _, _ = tiny()
        a, b = [[0, 1, 2, 3], [0, 1, 5, 6]]
        for model in ("gpt", "gpt_forward"):
            logits = []
            for seq in (a, b):
                cache = microgpt.empty_cache(config)
                if model == "gpt":
                    logits.append([[z.data for z in microgpt.gpt(t, p, cache, params, config)]
                                   for p, t in enumerate(seq)])
                else:
                    logits.append(microgpt.gpt_forward([seq], floats(params), config, [cache])[0])
            self.assertEqual(logits[0][:2], logits[1][:2])
            self.assertNotEqual(logits[0][2], logits[1][2])

    def assertSameLossAndGradients(self, batch, config, after=None, seed=0):
        """Part 2's loss and every gradient equal Part 1's autograd, within 1e-12 of
        max(1, |a|, |b|)."""
        params = microgpt.init_params(config, random.Random(seed))
        losses = [loss for t in batch for loss in microgpt.doc_losses(t, params, config)
                  [0 if after is None else t.index(after):]]
        loss = sum(losses) / len(losses)
        loss.backward()
        part_1 = [loss.data] + [p.grad for p in microgpt.parameters(params)]
        loss, grads = microgpt.loss_and_grads(batch, floats(params), config, after)
        part_2 = [loss] + microgpt.parameters(grads)
        self.assertEqual(len(part_1), len(part_2))
        for a, b in zip(part_1, part_2):
            self.assertLessEqual(abs(a - b), 1e-12 * max(1.0, abs(a), abs(b)))
        return part_2

    def test_backprop_by_hand_gives_part_1s_loss_and_gradients(self):
        names = ["emma", "olivia", "ava", "mia", "noah", "isabella", "x"]
        chars = sorted(set("".join(names)))
        tokens = [microgpt.tokenize(d, chars) for d in names]
        v = len(chars) + 1
        shapes = {
            "the default size": (microgpt.GPTConfig(v, 16), tokens[:4]),
            "2 layers": (microgpt.GPTConfig(v, 16, n_layer=2, n_head=2, n_embd=8), tokens[:3]),
            "1 head": (microgpt.GPTConfig(v, 16, n_head=1, n_embd=6), tokens[:2]),
            "3 heads": (microgpt.GPTConfig(v, 16, n_head=3, n_embd=9), tokens[:2]),
            "a one-character document": (microgpt.GPTConfig(v, 16, n_embd=8), [tokens[6]]),
            "a document cut at block_size": (microgpt.GPTConfig(v, 5, n_embd=8), [tokens[5]]),
            "documents of different lengths": (microgpt.GPTConfig(v, 16, n_embd=8), tokens),
        }
        for name, (config, batch) in shapes.items():
            with self.subTest(name):
                grads = self.assertSameLossAndGradients(batch, config)
                n_embeddings = v * config.n_embd + config.block_size * config.n_embd
                self.assertTrue(all(grads[1 + n_embeddings:]))  # every weight of the blocks

    def test_a_loss_after_a_token_is_the_mean_over_the_positions_from_it_on(self):
        params, config, chars, tokens = tiny(n_layer=2)
        after = chars.index("m")
        batch = [t for t in tokens if after in t]  # emma, mia, liam, amelia
        everything = [[x.data for x in microgpt.doc_losses(t, params, config)] for t in batch]
        counted = [x for t, xs in zip(batch, everything) for x in xs[t.index(after):]]
        self.assertEqual(len(counted), 3 + 3 + 1 + 5)  # from the m on, BOS last
        loss = microgpt.loss_and_grads(batch, floats(params), config, after)[0]
        self.assertAlmostEqual(loss, sum(counted) / len(counted), delta=1e-12)
        self.assertNotAlmostEqual(loss, microgpt.batch_loss(batch, params, config).data)
        self.assertSameLossAndGradients(batch, config, after)

    def test_model_gradient_matches_finite_differences(self):
        params, config, _, tokens = tiny(n_layer=2)
        err, n = microgpt.gradcheck(floats(params), config, tokens[:3], random.Random(0), n=40)
        self.assertEqual(n, 40)
        self.assertLess(err, 1e-5)

    def test_gradcheck_finds_a_wrong_gradient(self):
        params, config, _, tokens = tiny()
        right = microgpt.loss_and_grads(tokens[:3], floats(params), config)[1]

        def wrong(docs, numbers, config, after):  # every lm_head gradient twice what it should be
            return {**right, "lm_head": [[2 * g for g in row] for row in right["lm_head"]]}
        err = microgpt.gradcheck(floats(params), config, tokens[:3], random.Random(0),
                                 wrong, n=1000)[0]
        self.assertGreater(err, 0.4)

    def test_gradcheck_checks_the_loss_counted_after_a_token(self):
        # --loss-after's loss, by both paths; and gradients of the whole loss fail against it
        params, config, chars, tokens = tiny()
        after = chars.index("m")
        batch = [t for t in tokens if after in t[1:config.block_size]][:3]
        for grad in (None, microgpt.plain_grads):
            err = microgpt.gradcheck(floats(params), config, batch, random.Random(0), grad, n=40,
                                     after=after)[0]
            self.assertLess(err, 1e-5)

        def whole(docs, numbers, config, after):  # every position's loss, as if after were None
            return microgpt.loss_and_grads(docs, numbers, config)[1]
        err = microgpt.gradcheck(floats(params), config, batch, random.Random(0), whole, n=1000,
                                 after=after)[0]
        self.assertGreater(err, 0.1)

    def test_the_fast_step_is_the_plain_step(self):
        # Part 1's train_step on Values and Part 2's on floats: the same weights and Adam state
        results = []
        for fast in (False, True):
            params, config, _, tokens = tiny()
            state = microgpt.init_state(params)
            numbers = floats(params)
            for step in range(3):
                batch = microgpt.get_batch(tokens, 4 * step, 4)
                lr = microgpt.lr_at(step, 10, 0.01)
                if fast:
                    microgpt.train_step_fast(state, batch, numbers, config, lr)
                else:
                    microgpt.train_step(state, batch, params, config, lr)
                    numbers = floats(params)
            results.append(microgpt.parameters(numbers) + state["adam_m"] + state["adam_v"])
        for a, b in zip(*results):
            self.assertLessEqual(abs(a - b), 1e-12 * max(1.0, abs(a), abs(b)))

    def test_the_tools_sampler_draws_part_1s_samples(self):
        params, config, chars, _ = tiny(n_layer=2)
        for temperature in (1.0, 0.5):
            runs = [[microgpt.sample(params, config, chars, random.Random(5), temperature)
                     for _ in range(8)],
                    [microgpt.generate(floats(params), config, chars, random.Random(5),
                                       temperature) for _ in range(8)]]
            self.assertEqual(runs[0], runs[1])

    def test_validation_is_part_1s_evaluate_on_floats(self):
        params, config, _, tokens = tiny(n_layer=2)
        losses = microgpt.position_losses(tokens, floats(params), config)[0]
        self.assertAlmostEqual(sum(losses) / len(losses),
                               microgpt.evaluate(tokens, params, config), delta=1e-12)


class TrainingTest(unittest.TestCase):
    def test_gradient_descent_lowers_the_loss(self):
        params, config, _, tokens = tiny()
        flat = microgpt.parameters(params)
        losses = []
        for _ in range(5):
            loss = microgpt.batch_loss(tokens, params, config)
            loss.backward()
            losses.append(loss.data)
            for p in flat:  # SGD, as Part 1's learning section writes it
                p.data -= 0.5 * p.grad
                p.grad = 0.0
        self.assertTrue(all(b < a for a, b in zip(losses, losses[1:])), losses)
        self.assertFalse(any(p.grad for p in flat))

    def test_a_few_dozen_adam_steps_lower_the_training_loss(self):
        params, config, _, tokens = tiny()
        numbers, state = floats(params), microgpt.init_state(params)
        before = microgpt.loss_and_grads(tokens, numbers, config)[0]
        for t in range(30):
            microgpt.train_step_fast(state, tokens, numbers, config, 0.02)
        after = microgpt.loss_and_grads(tokens, numbers, config)[0]
        self.assertLess(after, before - 0.5)

    def test_train_step_is_batch_then_loss_and_gradients_then_adam(self):
        params, config, _, tokens = tiny()
        flat = microgpt.parameters(params)
        state = microgpt.init_state(params)
        batch = microgpt.get_batch(tokens, 0, 4)
        want = microgpt.batch_loss(batch, params, config).data
        loss = microgpt.train_step(state, batch, params, config, 0.01)
        self.assertEqual(loss, want)
        self.assertEqual(state["step"], 1)
        self.assertTrue(any(state["adam_m"]))
        self.assertFalse(any(p.grad for p in flat))
        self.assertLess(microgpt.batch_loss(batch, params, config).data, want)

    def test_batches_read_the_documents_in_order_pass_after_pass(self):
        docs = list(range(10))
        self.assertEqual(microgpt.get_batch(docs, 0, 4), [0, 1, 2, 3])
        self.assertEqual(microgpt.get_batch(docs, 8, 4), [8, 9, 0, 1])  # the next pass begins
        self.assertEqual(microgpt.get_batch(docs, 25, 3), [5, 6, 7])  # the position alone says

    def test_the_same_seed_gives_the_same_samples(self):
        params, config, chars, _ = tiny()
        numbers = floats(params)
        runs = [[microgpt.generate(numbers, config, chars, random.Random(7)) for _ in range(5)]
                for _ in range(2)]
        self.assertEqual(runs[0], runs[1])
        other = [microgpt.generate(numbers, config, chars, random.Random(8)) for _ in range(5)]
        self.assertNotEqual(runs[0], other)

    def test_samples_use_only_the_vocabulary_and_fit_the_block(self):
        params, config, chars, _ = tiny()
        rng = random.Random(0)
        for top_k, temperature, prompt in ((None, 1.0, ""), (3, 0.5, "em"), (None, 0, "")):
            for _ in range(10):
                s = microgpt.generate(floats(params), config, chars, rng, temperature, top_k,
                                      prompt)
                self.assertTrue(set(s) <= set(chars))
                self.assertTrue(s.startswith(prompt))
                self.assertLessEqual(len(s), config.block_size)


@unittest.skipUnless(sys.implementation.name == "cpython", "PyPy has no reference counting")
class NothingLeftForTheCycleCollectorTest(unittest.TestCase):
    """main() runs with CPython's cycle collector off, and so does Part 1's command. Reference
    counting then frees what each call made only if it left no reference cycles behind."""

    def assertLeavesNoCycles(self, call):
        gc.collect()
        gc.disable()
        try:
            call()
            self.assertEqual(gc.collect(), 0)  # the objects it found in cycles
        finally:
            gc.enable()

    def test_every_path_that_runs_with_the_collector_off(self):
        params, config, chars, tokens = tiny()
        numbers, state = floats(params), microgpt.init_state(params)
        calls = {
            "Part 1's training step": lambda: microgpt.train_step(state, tokens[:3], params,
                                                                  config, 0.01),
            "Part 2's training step": lambda: microgpt.train_step_fast(state, tokens[:3], numbers,
                                                                       config, 0.01),
            "--plain's training step": lambda: microgpt.plain_step(state, tokens[:3], params,
                                                                   config, 0.01),
            "validation": lambda: microgpt.position_losses(tokens, numbers, config),
            "Part 1's evaluate": lambda: microgpt.evaluate(tokens[:2], params, config),
            "sampling": lambda: microgpt.generate(numbers, config, chars, random.Random(0)),
            "Part 1's sampling": lambda: microgpt.sample(params, config, chars, random.Random(0)),
            "explain": lambda: microgpt.explain("emma", numbers, config, chars),
            "gradcheck": lambda: microgpt.gradcheck(numbers, config, tokens[:2],
                                                    random.Random(0), n=2),
            "plain gradcheck": lambda: microgpt.gradcheck(numbers, config, tokens[:2],
                                                          random.Random(0), microgpt.plain_grads,
                                                          n=2),
        }
        for name, call in calls.items():
            with self.subTest(name):
                self.assertLeavesNoCycles(call)


class PartOneAloneTest(unittest.TestCase):
    def test_the_reading_guides_command_runs_part_1_alone(self):
        # the command the README gives, on a tiny file for a few steps
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            command = re.search(r'python -c "(.+)"', f.read()).group(1)
        self.assertIn("split('\\n# Part 2')[0]", command)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "names.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(DOCS * 3) + "\n")
            code = command.replace("train_and_sample()",
                                   f"train_and_sample({path!r}, steps=25, num_samples=4)")
            self.assertNotEqual(code, command)
            r = subprocess.run([sys.executable, "-c", code + "; print(sorted(globals()))"],
                               capture_output=True, text=True, cwd=ROOT, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("step 25/25 | train loss ", r.stdout)
        self.assertRegex(r.stdout, r"val loss \d\.\d{4}")
        samples = r.stdout.split("samples: ")[1].splitlines()[0].split(", ")
        self.assertEqual(len(samples), 4)
        self.assertTrue(all(set(s) <= set("".join(DOCS)) for s in samples))
        defined = r.stdout.splitlines()[-1]
        self.assertIn("'train_and_sample'", defined)
        self.assertNotIn("'gpt_forward'", defined)  # Part 2 never ran


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
        at = [i for i, line in enumerate(lines) if line.startswith("step 5: val loss")][-1]
        loss = float(lines[at].split("val loss")[1].split()[0])
        self.assertTrue(0 < loss < 4)
        at = [i for i, line in enumerate(lines) if " samples, " in line][-1]
        self.assertEqual(len(lines[at + 1:]), 4)

    def test_plain_and_default_runs_print_the_same_val_loss_and_samples(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "names.txt")
            with open(data, "w", encoding="utf-8") as f:
                f.write("\n".join(DOCS * 3) + "\n")
            runs = [self.run_script("-i", data, "--max-steps", "20", "--n-embd", "8",
                                    "--n-head", "2", "--num-samples", "3", *plain)
                    for plain in ([], ["--plain"])]
        for r in runs:
            self.assertEqual(r.returncode, 0, r.stderr)
        default, plain = ([line for line in r.stdout.splitlines() if line.startswith("step 20:")]
                          for r in runs)
        self.assertEqual(len(default), 1)
        self.assertEqual(default, plain)
        samples = [r.stdout.split(" samples, ")[1].splitlines()[1:] for r in runs]
        self.assertEqual(samples[0], samples[1])

    def test_help(self):
        r = self.run_script("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--max-steps", r.stdout)


if __name__ == "__main__":
    unittest.main()
