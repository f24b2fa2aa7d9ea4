#!/usr/bin/env python3
"""Import cycles among voicebench's top-level modules (src/<module>/ or src/<module>.rs).

Reads every `crate::a::…` path in src/**/*.rs (in `use` lines and inline paths alike, test modules included: a test
that reaches up is still a dependency), builds the graph of top-level modules (an edge a -> b when a file of `a`
names `crate::b`), and prints every elementary cycle with the files that make each edge. `use crate::{a, b}` groups
count for each name. lib.rs and main.rs are the crate root, not modules. Exit status: 0 when there is no cycle, 1
when there is one or more. Python 3 standard library only.

Usage: scripts/check-module-cycles.py [SRC_DIR]   (default: src next to this script's parent)
"""

import re
import sys
from pathlib import Path

ROOT_FILES = {"lib.rs", "main.rs"}
PATH = re.compile(r"\bcrate::(\{|[a-z_][a-z0-9_]*)")
COMMENT = re.compile(r"//[^\n]*")


def module_of(src: Path, file: Path) -> str | None:
    rel = file.relative_to(src)
    if len(rel.parts) == 1:
        return None if rel.name in ROOT_FILES else rel.stem
    return rel.parts[0]


def group(code: str, start: int) -> list[str]:
    """The first segment of each path in the `{…}` use group opening at `start` (nested groups are inner paths)."""
    items, depth, item = [], 0, ""
    for ch in code[start:]:
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            break
        if depth == 1 and ch == ",":
            items.append(item)
            item = ""
        elif depth > 1 or ch != "{":
            item += ch
    items.append(item)
    return [m.group(0) for m in (re.match(r"[a-z_][a-z0-9_]*", i.strip()) for i in items) if m]


def edges(src: Path) -> dict[str, dict[str, set[str]]]:
    files = [f for f in sorted(src.rglob("*.rs")) if module_of(src, f) is not None]
    modules = {module_of(src, f) for f in files}
    graph: dict[str, dict[str, set[str]]] = {m: {} for m in modules}
    for file in files:
        a = module_of(src, file)
        code = COMMENT.sub("", file.read_text(encoding="utf-8"))
        for m in PATH.finditer(code):
            names = group(code, m.start(1)) if m.group(1) == "{" else [m.group(1)]
            for b in names:
                if b != a and b in modules:
                    graph[a].setdefault(b, set()).add(str(file.relative_to(src.parent)))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every elementary cycle, each once, starting at its smallest module (Johnson's idea, small graph: plain DFS)."""
    nodes = sorted(set(graph) | {b for e in graph.values() for b in e})
    found = []
    for start in nodes:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, {})):
                if nxt == start:
                    found.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, path + [nxt]))
    return sorted(found, key=lambda c: (len(c), c))


def main() -> int:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src"
    graph = edges(src)
    found = cycles(graph)
    for c in found:
        ring = c + [c[0]]
        print("cycle: " + " -> ".join(ring))
        for a, b in zip(ring, ring[1:]):
            print(f"  {a} -> {b}: {', '.join(sorted(graph[a][b]))}")
    if found:
        print(f"{len(found)} import cycle(s) among the modules of {src}", file=sys.stderr)
        return 1
    print(f"no import cycles among the {len(graph)} modules of {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
