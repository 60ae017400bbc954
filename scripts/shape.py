#!/usr/bin/env python3
"""Architecture checks for src/: functions longer than a limit (src/bin
included, comment lines counted), and import circles between modules (from
`use crate::...` and `crate::x::` paths).
Usage: scripts/shape.py [--max-lines 80] [--top N] [--arrows]   (exit 1 when a check fails)"""
import os, re, sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
MAX = int(sys.argv[sys.argv.index("--max-lines") + 1]) if "--max-lines" in sys.argv else 80

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts) or "crate"

def strip(text):
    """Comments, strings and char literals blanked (newlines kept), so that
    braces and paths inside them do not count."""
    out, i, n = [], 0, len(text)
    char_lit = re.compile(r"'(?:\\u\{[0-9a-fA-F]+\}|\\.|[^'\\])'")
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            # the comment's lines stay lines: a function is as long as it reads
            j = text.find("*/", i)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i-1].isalnum() or text[i-1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            j = text.find('"' + hashes, i + len(hashes) + 2)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and char_lit.match(text, i):
            out.append("' '")
            i = char_lit.match(text, i).end()
        else:
            out.append(c)
            i += 1
    return "".join(out)

def functions(text):
    """(name, first line, last line) of each function with a body: from the
    line of `fn` to the line of its closing brace, as the source reads
    (comment lines inside count). The signature ends at the first `{` or `;`
    outside brackets, so `[u8; 3]` in a parameter does not hide a function."""
    for m in re.finditer(r"\bfn\s+([A-Za-z_0-9]+)", text):
        i, depth = m.end(), 0
        while i < len(text):
            c = text[i]
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
            elif depth == 0 and c in "{;":
                break
            i += 1
        if i >= len(text) or text[i] == ";":
            continue  # a declaration without a body
        start = text.count("\n", 0, m.start()) + 1
        depth = 0
        while i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        yield m.group(1), start, text.count("\n", 0, i) + 1

files = []
for d, _, fs in os.walk(ROOT):
    for f in fs:
        if f.endswith(".rs"):
            files.append(os.path.join(d, f))
mods = {module_of(f) for f in files}

long_fns = []
all_fns = []
edges = defaultdict(set)
for f in sorted(files):
    raw = open(f).read()
    text = strip(raw)
    me = module_of(f)
    # test modules do not count for arrows, nor does a separate binary (src/bin)
    body = "" if "/bin/" in f else re.split(r"#\[cfg\(test\)\]", text)[0]
    for m in re.finditer(r"crate::((?:[a-z_0-9]+::)*[a-z_0-9]+)", body):
        segs = m.group(1).split("::")
        target = None
        for i in range(len(segs), 0, -1):
            cand = "::".join(segs[:i])
            if cand in mods:
                target = cand
                break
        if target and target != me and not me.startswith(target + "::") and not target.startswith(me + "::"):
            edges[me].add(target)
    for name, start, end in functions(text):
        n = end - start + 1
        all_fns.append((n, os.path.relpath(f, ROOT), name))
        if n > MAX:
            long_fns.append((n, os.path.relpath(f, ROOT), name))

# module-level circles: strongly connected components
index, low, stack, on, sccs, k = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = k[0]; k[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(mods):
    if v not in index: visit(v)

# folder-level circles (model, engine, ...): arrows between top-level parts
top = lambda m: m.split("::")[0]
tedges = defaultdict(set)
for a, bs in edges.items():
    for b in bs:
        if top(a) != top(b): tedges[top(a)].add(top(b))
tcirc = sorted({tuple(sorted((a, b))) for a, bs in tedges.items() for b in bs if a in tedges.get(b, ())})

for n, f, name in sorted(long_fns, reverse=True):
    print(f"long function: {f} {name} {n} lines")
for c in sccs:
    print("import circle: " + " <-> ".join(c))
for a, b in tcirc:
    print(f"folder circle: {a} <-> {b}")
if "--top" in sys.argv:
    for n, f, name in sorted(all_fns, reverse=True)[: int(sys.argv[sys.argv.index("--top") + 1])]:
        print(f"{n:4} lines  {f} {name}")
if "--arrows" in sys.argv:
    for a in sorted(tedges):
        print(f"{a} -> {', '.join(sorted(tedges[a]))}")
print(f"{len(long_fns)} functions over {MAX} lines, {len(sccs)} import circles, {len(tcirc)} folder circles")
sys.exit(1 if long_fns or sccs or tcirc else 0)
