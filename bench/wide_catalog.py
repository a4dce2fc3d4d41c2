"""54 extra documented tables a real fund warehouse grows into, for the prompt-growth benchmark.

Added to a copy of the sample warehouse they make 60 tables. They are written to be as hard
on schema pruning as a real catalogue: they share the core tables' vocabulary (fund_id,
company_id, amounts in USD, dates). Their documentation is terser than catalog.json's, so
`widen(..., dense_like=core_docs)` pads it to the core tables' density for the worst case.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

# TABLE name | description, then one line per column: name TYPE | documentation
SPEC = Path(__file__).with_name("wide_catalog.txt")  # TABLE lines, then column lines


def tables() -> list[dict[str, Any]]:
    """The spec as [{name, description, columns: [(name, type, doc)]}]."""
    out: list[dict[str, Any]] = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("TABLE "):
            name, desc = line[6:].split(" | ", 1)
            out.append({"name": name.strip(), "description": desc.strip(), "columns": []})
        else:
            head, doc = line.strip().split(" | ", 1)
            col, typ = head.split(" ", 1)
            out[-1]["columns"].append((col, typ, doc.strip()))
    return out


def _pad(text: str, size: int) -> str:
    """`text` repeated to about `size` characters: longer, but with no word it lacked."""
    out = text
    while len(out) < size:
        out += " " + text
    return out


def widen(sample: Path, target: Path, docs: dict[str, Any],
          dense_like: dict[str, Any] | None = None) -> dict[str, Any]:
    """Copy `sample` to `target` with the extra tables added; returns the widened docs.

    With `dense_like` (the core docs), each extra table's descriptions are padded to the core
    tables' average lengths by repeating their own words: pruning scores (sets of words) stay
    the same, while each table costs as many prompt characters as a core one.
    """
    import duckdb

    table_len = col_len = 0.0
    if dense_like:
        core = list(dense_like["tables"].values())
        table_len = sum(len(t["description"]) for t in core) / len(core)
        col_len = (sum(len(d) for t in core for d in t["columns"].values())
                   / sum(len(t["columns"]) for t in core))
    shutil.copyfile(sample, target)
    wide = copy.deepcopy(docs)
    con = duckdb.connect(str(target))
    try:
        for t in tables():
            cols = ", ".join(f"{c} {typ}" for c, typ, _ in t["columns"])
            con.execute(f"CREATE TABLE {t['name']} ({cols})")
            wide["tables"][t["name"]] = {
                "description": _pad(t["description"], int(table_len)),
                "columns": {c: _pad(d, int(col_len)) for c, _, d in t["columns"]}}
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return wide


def doc_chars(docs: dict[str, Any], names: list[str]) -> float:
    """Average documentation characters per table (description and column docs)."""
    sizes = [len(docs["tables"][n]["description"])
             + sum(len(d) for d in docs["tables"][n]["columns"].values()) for n in names]
    return sum(sizes) / len(sizes)
