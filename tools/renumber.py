"""Bring the line numbers that the docstring and the README quote up to date with microgpt.py.

    python tools/renumber.py

It rewrites "Part N, lines A-B" in the docstring and the README, and for each `sed
'Ns/old/new/'` command of the README, the N of the command and of every "line N" / "lines N and
M" in the README to the line where `old` now stands. tests/test_reading.py checks the same numbers; run it after.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE, README = ROOT / "microgpt.py", ROOT / "README.md"


def main():
    text = SOURCE.read_text(encoding="utf-8")
    lines = text.splitlines()
    starts = {int(m.group(1)): i - 1 for i, line in enumerate(lines, 1)  # the rule line above
              for m in [re.match(r"# Part (\d): ", line)] if m}
    ends = {1: starts[2] - 1, 2: starts[3] - 1, 3: len(lines)}
    spans = {p: f"{starts[p]}-{ends[p]}" for p in (1, 2, 3)}
    text = re.sub(r"(Part (\d), lines )\d+-\d+", lambda m: m.group(1) + spans[int(m.group(2))], text)
    SOURCE.write_text(text, encoding="utf-8")

    readme = README.read_text(encoding="utf-8")
    readme = re.sub(r"(Part (\d), [^*]+\*\* \(lines )\d+-\d+",
                    lambda m: m.group(1) + spans[int(m.group(2))], readme)
    moved = {}  # each sed's line number, old -> new
    for line, old in re.findall(r"'(\d+)s/((?:[^/\\]|\\.)*)/", readme):
        old = re.sub(r"\\(.)", r"\1", old)
        at = [i for i, t in enumerate(lines, 1) if old in t]
        if len(at) != 1:
            sys.exit(f"README: {old!r} stands on lines {at} of microgpt.py, not on one")
        moved[line] = str(at[0])
    readme = re.sub(r"'(\d+)s/", lambda m: f"'{moved.get(m.group(1), m.group(1))}s/", readme)
    readme = re.sub(r"\b(lines? )(\d+)( and )?(\d+)?\b", lambda m: m.group(1)
                    + moved.get(m.group(2), m.group(2))
                    + (m.group(3) + moved.get(m.group(4), m.group(4)) if m.group(4) else ""),
                    readme)
    README.write_text(readme, encoding="utf-8")


if __name__ == "__main__":
    main()
