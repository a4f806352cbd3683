"""microgpt.py as a text: the numbers its prose quotes are those of its code, so they cannot go
stale."""
import ast
import math
import os
import random
import re
import unittest

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

    def test_the_guide_gives_each_part_its_lines(self):
        guide = {int(p): (int(a), int(b)) for p, a, b in
                 re.findall(r"Part (\d), lines (\d+)-(\d+)", microgpt.__doc__)}
        found = banners()
        ends = {1: found[2] - 1, 2: found[3] - 1, 3: len(LINES)}
        self.assertEqual(guide, {p: (found[p], ends[p]) for p in (1, 2, 3)})

    def test_the_readme_gives_each_part_its_lines(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        quoted = {int(p): (int(a), int(b)) for p, a, b in
                  re.findall(r"Part (\d), [^*]+\*\* \(lines (\d+)-(\d+)\)", readme)}
        found = banners()
        ends = {1: found[2] - 1, 2: found[3] - 1, 3: len(LINES)}
        self.assertEqual(quoted, {p: (found[p], ends[p]) for p in (1, 2, 3)})

    def test_part_1_holds_at_most_450_lines_230_of_them_code(self):
        docstrings = set()
        for node in ast.walk(ast.parse(SOURCE)):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
        found = banners()
        code = [i for i in range(found[1], found[2]) if LINES[i - 1].strip()
                and not LINES[i - 1].strip().startswith("#") and i not in docstrings]
        self.assertLessEqual(found[2] - found[1], 450)
        self.assertLessEqual(len(code), 230)

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
        self.assertEqual(imported, {"math", "random", "dataclasses"})
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

    def test_default_sizes(self):
        config, params = default_model()
        n = len(microgpt.parameters(params))
        self.assertIn(f"{n:,} parameters", microgpt.__doc__)
        self.assertIn(f"ln {config.vocab_size} = {math.log(config.vocab_size):.2f}",
                      microgpt.__doc__)
        self.assertIn(f"{config.n_layer} layer", microgpt.__doc__.replace("one layer", "1 layer"))
        self.assertIn(f"n_embd {config.n_embd}", microgpt.__doc__)
        self.assertIn(f"{config.n_head} attention heads", microgpt.__doc__)


class ThingsToTryTest(unittest.TestCase):
    def test_each_code_change_in_the_readme_matches_its_line(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        commands = re.findall(r"sed ((?:(?:-e )?'\d+s/[^']*' )+)microgpt\.py", readme)
        self.assertGreaterEqual(len(commands), 4)
        for command in commands:
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
            compile(variant, "variant.py", "exec")


if __name__ == "__main__":
    unittest.main()
