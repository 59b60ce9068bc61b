#!/usr/bin/env python3
"""Structural checks on dnlb's Rust sources: file length, function length and
module import cycles. Python 3.11, standard library only.

Usage:
    scripts/check-structure.py [--root DIR] [--list]
    scripts/check-structure.py --self-test

    --root DIR   workspace root (default: the parent of this script's folder)
    --list       also print, for information, every measured file's length
                 and every function longer than 80 lines (does not change the
                 exit code)
    --self-test  run the built-in checks of the lexer, the cfg(test) handling,
                 the use-tree parser and the cycle lifting; exit 0 if they pass

Exit code: 0 when every rule holds, 1 when any rule is broken (or a file
cannot be lexed, since then the other checks cannot be trusted), 2 on a usage
or setup error (no workspace Cargo.toml).

Which files
-----------
Crates are the folders listed in the root Cargo.toml's
``[workspace] members`` (globs allowed, ``exclude`` honoured; the root itself
too if it has a ``[package]``) that hold a Cargo.toml. Every ``*.rs`` under a
crate's ``src/`` is checked, except anything under a ``target/`` or ``fuzz/``
folder. A crate's ``tests/``, ``benches/`` and ``examples/`` folders are test
or bench code entirely and are never read (only ``src/`` is).

The "production part" of a file is the file without its ``#[cfg(test)]``
items. Every ``#[cfg(test)]`` attribute (exactly that attribute, found as
tokens, so at any indentation) is taken with the item it applies to: further
attributes are skipped, then the item runs to its brace-matched closing ``}``
(``fn``, ``mod``, ``impl``, ``struct``, ``enum``, ``trait``, ``union``,
macros, ``extern`` blocks) or to its ``;`` (``use``, ``const``, ``static``,
``type``, ``let``, ``mod x;``, tuple structs); anything else (a field, a
variant, a statement) runs to the next ``,`` or ``;`` or to the end of the
enclosing group. Only those lines are removed, so production code that comes
after a test module is still checked. ``#![cfg(test)]`` at the top of a file
makes the whole file test code, and so does ``#[cfg(test)] mod x;`` for the
file(s) of module ``x`` and its descendants.

Rule 1, file length
    The production part of a file has at most 800 lines (the file's lines
    minus the lines of its ``#[cfg(test)]`` items).

Rule 2, function length
    No ``fn`` in the production part is longer than 120 lines, counted from
    the line holding ``fn`` to the line holding the body's closing brace
    (attributes and doc comments above it are not counted; lines of
    ``#[cfg(test)]`` items inside the body are). A ``fn`` declaration ending
    in ``;`` has no body and is not measured. Functions are found by a small
    Rust lexer that skips ``//`` and nested ``/* */`` comments, string
    literals with escapes, raw strings ``r"…"``/``r#"…"#`` (any number of
    ``#``), byte and C strings (``b"…"``, ``br#"…"#``, ``c"…"``), char and
    byte literals (``'x'``, ``'\\n'``, ``'\\u{1F600}'``, ``'\\''``, ``b'x'``)
    without confusing them with lifetimes and labels (``'a``, ``'static``).
    Exemptions ("tests and tables") go in ``FN_LENGTH_EXEMPTIONS`` below, as
    ``"path/from/root.rs::fn_name": "reason"``; the key covers every fn of
    that name in that file. Stale exemptions are reported as a note.

Rule 3, no module import cycle within a crate
    Each crate target is a separate graph: the library (``src/lib.rs``, or
    ``src/main.rs`` when there is no lib) owns every file under ``src/``
    except ``src/bin/``; each ``src/bin/NAME.rs`` (or ``src/bin/NAME/main.rs``)
    is its own crate root whose submodules are the files under
    ``src/bin/NAME/``; a ``[[bin]] path`` outside ``src/bin`` is a crate root
    on its own, and so is ``src/main.rs`` when ``src/lib.rs`` also exists.
    References from a bin to the library go by crate name and are cross-crate,
    so they are ignored. Module paths come from file paths (``src/lib.rs`` =
    crate root, ``src/a.rs`` or ``src/a/mod.rs`` = ``a``, ``src/a/b.rs`` =
    ``a::b``); ``#[path]`` attributes are not followed.

    References, in the production part only: every ``use`` tree (nested
    groups, ``self`` in groups, globs, ``as`` renames), and every other path
    of two or more segments (in expressions, types, patterns, attributes:
    ``crate::a::f()``, ``super::status::Status``, ``$crate::x``) that starts
    with ``crate``, ``$crate``, ``self``, ``super`` (repeated ``super::`` and
    ``self::super::`` too), or with the name of a child module of the current
    module (a ``mod x;`` / ``mod x {}`` declared there, or a file module
    ``M::x``) - that is how a plain ``use a::b`` resolves in edition 2021.
    Paths after ``.`` (method turbofish) or ``::`` are not path starts.
    Other names in scope (things brought in by ``use``) are not followed:
    the ``use`` that brought them in is already an edge. Comments (doc
    links too) and strings are skipped by the lexer.

    Inline ``mod name { … }`` blocks are part of their file's module: paths
    inside them are resolved relative to the inline module (so ``super::``
    there means the file's module), and the edge is attributed to the file's
    module. A reference resolves to the longest known file module that is a
    prefix of the path. Edges between a module and itself, its ancestors or
    its descendants are ignored (parents declare and re-export children).
    Any other edge A -> B is lifted to the level where A and B diverge: with
    L their longest common ancestor, it becomes an edge between L's child on
    A's path and L's child on B's path. For every L, Tarjan's algorithm finds
    the strongly connected components of its children's graph; each
    component with more than one module is reported as a cycle, with every
    concrete reference (file:line and path text) behind each of its edges.

Known limitations
-----------------
* Macros are not expanded: paths built by macros, or hidden in
  ``macro_rules!`` bodies' fragments, are only seen as written.
* ``#[cfg(...)]`` other than exactly ``#[cfg(test)]`` (e.g.
  ``cfg(all(test, …))``, ``cfg_attr``) is treated as production code.
* Glob imports and re-exports are resolved only to the module they name
  (``use crate::a::*`` is an edge to ``a``); what a re-export actually points
  at is not traced (an edge to ``dataplane`` for ``crate::dataplane::X``
  that really lives in ``dataplane::io`` is an edge to ``dataplane``).
* Names in scope through ``use`` (``use super::routes; routes::f()``) and
  shadowing by local items are not resolved beyond the rules above.
* The item after ``#[cfg(test)]`` is found heuristically for non-items (a
  match arm without a trailing comma can swallow the next arm).
* A const-generic block ``{ N }`` in a ``fn`` signature before its body would
  be taken for the body.
* Modules come from the files present: a file no ``mod`` declares is still
  checked, as the module its path names.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import tomllib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_LINES = 800
MAX_FN_LINES = 120
LIST_FN_LINES = 80

# "path/from/root.rs::fn_name": "reason". Only for tests and tables.
FN_LENGTH_EXEMPTIONS: dict[str, str] = {}

SKIP_DIRS = {"target", "fuzz"}

# --------------------------------------------------------------------------
# Lexer
# --------------------------------------------------------------------------

IDENT, LIFETIME, LIT, PUNCT = "ident", "lifetime", "lit", "punct"


@dataclass(slots=True)
class Tok:
    kind: str
    text: str
    line: int


class LexError(Exception):
    def __init__(self, line: int, msg: str):
        super().__init__(f"line {line}: {msg}")
        self.line = line
        self.msg = msg


def _is_ident_start(c: str) -> bool:
    return c == "_" or c.isalpha()


def _is_ident_cont(c: str) -> bool:
    return c == "_" or c.isalnum()


_COMMENT_DELIM = re.compile(r"/\*|\*/")


def _skip_block_comment(src: str, i: int, line: int) -> int:
    """Index just after the (nested) block comment opening at ``i``."""
    depth, j = 1, i + 2
    while depth:
        m = _COMMENT_DELIM.search(src, j)
        if m is None:
            raise LexError(line, "unterminated block comment")
        depth += 1 if m.group() == "/*" else -1
        j = m.end()
    return j


def _skip_string(src: str, i: int, line: int) -> int:
    """Index just after the escaped string whose opening quote is at ``i``."""
    j, n = i + 1, len(src)
    while j < n:
        c = src[j]
        if c == "\\":
            j += 2
        elif c == '"':
            return j + 1
        else:
            j += 1
    raise LexError(line, "unterminated string literal")


def _skip_char(src: str, i: int, line: int) -> int | None:
    """Index just after the char literal at ``i`` (a ``'``), or None when
    this quote starts a lifetime or label instead."""
    n = len(src)
    if i + 1 < n and src[i + 1] == "\\":
        end = src.find("'", i + 3)  # the escaped char itself may be a quote
        if end < 0 or "\n" in src[i:end]:
            raise LexError(line, "unterminated char literal")
        return end + 1
    if i + 2 < n and src[i + 2] == "'" and src[i + 1] != "\n":
        return i + 3
    return None


def lex(src: str) -> list[Tok]:
    """Tokens of a Rust source: identifiers/keywords, lifetimes, literals
    (strings, chars, numbers) and punctuation (``::`` is one token, every
    other punctuation character is its own). Comments and whitespace are
    dropped."""
    toks: list[Tok] = []
    add = toks.append
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c.isspace():
            i += 1
            continue
        if c == "/" and src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "/" and src.startswith("/*", i):
            j = _skip_block_comment(src, i, line)
            line += src.count("\n", i, j)
            i = j
            continue
        if c == '"':
            j = _skip_string(src, i, line)
            add(Tok(LIT, src[i:j], line))
            line += src.count("\n", i, j)
            i = j
            continue
        if c == "'":
            j = _skip_char(src, i, line)
            if j is not None:
                add(Tok(LIT, src[i:j], line))
                i = j
                continue
            if i + 1 < n and _is_ident_start(src[i + 1]):
                j = i + 2
                while j < n and _is_ident_cont(src[j]):
                    j += 1
                add(Tok(LIFETIME, src[i:j], line))
                i = j
                continue
            raise LexError(line, "stray quote")
        if c == "$" and src.startswith("$crate", i) and not (
            i + 6 < n and _is_ident_cont(src[i + 6])
        ):
            add(Tok(IDENT, "$crate", line))
            i += 6
            continue
        if _is_ident_start(c):
            j = i + 1
            while j < n and _is_ident_cont(src[j]):
                j += 1
            word = src[i:j]
            q = src[j] if j < n else ""
            if word in ("r", "br", "cr") and q in ('"', "#"):
                k = j
                while k < n and src[k] == "#":
                    k += 1
                if k < n and src[k] == '"':
                    term = '"' + "#" * (k - j)
                    end = src.find(term, k + 1)
                    if end < 0:
                        raise LexError(line, "unterminated raw string")
                    end += len(term)
                    add(Tok(LIT, src[i:end], line))
                    line += src.count("\n", i, end)
                    i = end
                    continue
                if word == "r" and k == j + 1 and k < n and _is_ident_start(src[k]):
                    m = k + 1
                    while m < n and _is_ident_cont(src[m]):
                        m += 1
                    add(Tok(IDENT, src[i:m], line))  # raw identifier r#name
                    i = m
                    continue
            elif word in ("b", "c") and q == '"':
                end = _skip_string(src, j, line)
                add(Tok(LIT, src[i:end], line))
                line += src.count("\n", i, end)
                i = end
                continue
            elif word == "b" and q == "'":
                end = _skip_char(src, j, line)
                if end is None:
                    raise LexError(line, "bad byte literal")
                add(Tok(LIT, src[i:end], line))
                i = end
                continue
            add(Tok(IDENT, word, line))
            i = j
            continue
        if c.isdigit():
            j = i + 1
            while j < n and (
                _is_ident_cont(src[j])
                or (src[j] == "." and j + 1 < n and src[j + 1].isdigit())
            ):
                j += 1
            add(Tok(LIT, src[i:j], line))
            i = j
            continue
        if c == ":" and src.startswith("::", i):
            add(Tok(PUNCT, "::", line))
            i += 2
            continue
        add(Tok(PUNCT, c, line))
        i += 1
    return toks


_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


def match_delims(toks: list[Tok]) -> tuple[list[int], list[int], list[str]]:
    """For every token: the index of its matching delimiter (-1 if none) and
    its brace depth (number of enclosing unclosed ``{``); plus errors."""
    match = [-1] * len(toks)
    depth = [0] * len(toks)
    stack: list[int] = []
    braces = 0
    errors: list[str] = []
    for idx, t in enumerate(toks):
        depth[idx] = braces
        if t.kind != PUNCT:
            continue
        if t.text in _OPEN:
            stack.append(idx)
            if t.text == "{":
                braces += 1
        elif t.text in _CLOSE:
            if t.text == "}":
                braces = max(0, braces - 1)
                depth[idx] = braces
            if stack and _OPEN[toks[stack[-1]].text] == t.text:
                o = stack.pop()
                match[o], match[idx] = idx, o
            else:
                errors.append(f"line {t.line}: unmatched '{t.text}'")
                if stack:
                    stack.pop()
    for o in stack:
        errors.append(f"line {toks[o].line}: unclosed '{toks[o].text}'")
    return match, depth, errors


# --------------------------------------------------------------------------
# #[cfg(test)] items
# --------------------------------------------------------------------------

_ITEM_BLOCK = {"fn", "mod", "impl", "trait", "struct", "enum", "union", "macro_rules"}
_ITEM_SEMI = {"const", "static", "type", "use", "let"}


def _cfg_test_at(toks: list[Tok], i: int) -> tuple[bool, int] | None:
    """If an attribute ``#[cfg(test)]`` or ``#![cfg(test)]`` starts at ``i``:
    (is_inner, index after it)."""
    if toks[i].text != "#" or toks[i].kind != PUNCT:
        return None
    j, inner = i + 1, False
    if j < len(toks) and toks[j].text == "!":
        inner, j = True, j + 1
    want = ("[", "cfg", "(", "test", ")", "]")
    if j + len(want) > len(toks):
        return None
    if all(toks[j + k].text == w and toks[j + k].kind != LIT for k, w in enumerate(want)):
        return inner, j + len(want)
    return None


def _item_end(toks: list[Tok], match: list[int], k: int) -> tuple[int, str | None]:
    """Index of the last token of the item starting at ``k`` (after an
    attribute), and the item keyword if it is a ``mod``."""
    n = len(toks)
    while k + 1 < n and toks[k].text == "#" and toks[k + 1].text == "[" and match[k + 1] >= 0:
        k = match[k + 1] + 1
    while k < n:  # visibility and qualifiers
        t = toks[k]
        if t.kind == IDENT and t.text == "pub":
            k += 1
            if k < n and toks[k].text == "(" and match[k] >= 0:
                k = match[k] + 1
            continue
        if t.kind == IDENT and t.text in ("unsafe", "async", "default", "auto"):
            k += 1
            continue
        if t.kind == IDENT and t.text == "const" and k + 1 < n and toks[k + 1].text in (
            "fn", "unsafe", "async", "extern"):
            k += 1
            continue
        if t.kind == IDENT and t.text == "extern" and not (
                k + 1 < n and toks[k + 1].text == "crate"):
            k += 1
            if k < n and toks[k].kind == LIT:
                k += 1
            continue
        break
    if k >= n:
        return n - 1, None
    t = toks[k]
    if t.text == "{" and t.kind == PUNCT:
        return (match[k] if match[k] >= 0 else n - 1), None
    kw = t.text if t.kind == IDENT else None
    if kw in _ITEM_BLOCK or (t.kind == IDENT and k + 1 < n and toks[k + 1].text == "!"):
        mode = "block"
    elif kw in _ITEM_SEMI or kw == "extern":
        mode = "semi"
    else:
        mode = "other"
    while k < n:
        t = toks[k]
        if t.kind == PUNCT:
            if t.text in ("(", "[", "{"):
                if match[k] < 0:
                    return n - 1, None
                if t.text == "{" and mode == "block":
                    return match[k], kw
                k = match[k] + 1
                continue
            if t.text == ";":
                return k, kw
            if t.text == "," and mode == "other":
                return k, kw
            if t.text in _CLOSE:
                return k - 1, kw
        k += 1
    return n - 1, kw


@dataclass
class TestItems:
    ranges: list[tuple[int, int]]  # token index ranges, inclusive
    whole_file: bool
    test_mod_decls: list[str]  # `#[cfg(test)] mod x;` at file level


def find_test_items(toks: list[Tok], match: list[int], depth: list[int]) -> TestItems:
    ranges: list[tuple[int, int]] = []
    decls: list[str] = []
    whole = False
    i, n = 0, len(toks)
    while i < n:
        hit = _cfg_test_at(toks, i)
        if hit is None:
            i += 1
            continue
        inner, after = hit
        if inner:
            if depth[i] == 0:
                whole = True
            i = after
            continue
        end, kw = _item_end(toks, match, after)
        ranges.append((i, end))
        if kw == "mod" and depth[i] == 0 and end < n and toks[end].text == ";":
            decls.append(toks[end - 1].text)
        i = end + 1
    return TestItems(ranges, whole, decls)


# --------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------


@dataclass
class Fn:
    name: str
    line: int
    end_line: int
    length: int


def find_fns(toks: list[Tok], match: list[int], prod: list[bool],
             excluded_lines: set[int]) -> list[Fn]:
    fns: list[Fn] = []
    n = len(toks)
    for i, t in enumerate(toks):
        if not prod[i] or t.kind != IDENT or t.text != "fn":
            continue
        if i + 1 >= n or toks[i + 1].kind != IDENT:
            continue  # fn pointer type `fn(u8)`, macro fragment `fn $name`
        k = i + 2
        while k < n:
            x = toks[k]
            if x.kind == PUNCT:
                if x.text in ("(", "["):
                    k = match[k] + 1 if match[k] >= 0 else n
                    continue
                if x.text == "{":
                    if match[k] >= 0:
                        end_line = toks[match[k]].line
                        span = range(t.line, end_line + 1)
                        length = len(span) - sum(1 for ln in span if ln in excluded_lines)
                        fns.append(Fn(toks[i + 1].text, t.line, end_line, length))
                    break
                if x.text == ";" or x.text in _CLOSE:
                    break
            k += 1
    return fns


# --------------------------------------------------------------------------
# Module references
# --------------------------------------------------------------------------


@dataclass
class Ref:
    line: int
    segs: tuple[str, ...]
    text: str
    scope: tuple[str, ...]  # module path where the path is written
    is_use: bool


def parse_use_tree(toks: list[Tok], match: list[int], k: int,
                   prefix: tuple[str, ...], out: list[tuple[tuple[str, ...], int]]) -> int:
    """Parse a use tree at ``k``; append (full path, line) for every leaf
    (a glob ``*`` leaf is the path of the module it globs). Returns the index
    after the tree."""
    n = len(toks)
    segs = list(prefix)
    if k < n and toks[k].text == "::":  # `use ::ext::x` - always extern
        segs.append("::")
        k += 1
    while k < n:
        t = toks[k]
        if t.kind == PUNCT and t.text == "{":
            close = match[k] if match[k] >= 0 else n - 1
            j = k + 1
            while j < close:
                if toks[j].text == ",":
                    j += 1
                    continue
                nj = parse_use_tree(toks, match, j, tuple(segs), out)
                j = nj if nj > j else j + 1
            return close + 1
        if t.kind == PUNCT and t.text == "*":
            if segs:
                out.append((tuple(segs), t.line))
            return k + 1
        if t.kind != IDENT:
            return k
        nxt = toks[k + 1].text if k + 1 < n else ""
        if t.text == "self" and segs and nxt != "::":
            out.append((tuple(segs), t.line))  # `a::{self, b}`
        else:
            segs.append(t.text)
            if nxt == "::":
                k += 2
                continue
            out.append((tuple(segs), t.line))
        k += 1
        if k < n and toks[k].text == "as":
            k += 2
        return k
    return k


def find_refs(toks: list[Tok], match: list[int], prod: list[bool],
              file_mod: tuple[str, ...]) -> tuple[list[Ref], set[tuple[str, ...]]]:
    """Candidate module references and ``mod`` declarations (as full module
    paths, inline modules included) in the production part of a file."""
    refs: list[Ref] = []
    decls: set[tuple[str, ...]] = set()
    stack: list[tuple[int, str]] = []  # inline `mod name {`: (close index, name)
    n = len(toks)
    i = 0
    while i < n:
        while stack and i > stack[-1][0]:
            stack.pop()
        t = toks[i]
        if not prod[i] or t.kind != IDENT:
            i += 1
            continue
        scope = file_mod + tuple(name for _, name in stack)
        nxt = toks[i + 1] if i + 1 < n else None
        if t.text == "mod" and nxt is not None and nxt.kind == IDENT and i + 2 < n:
            after = toks[i + 2].text
            if after == ";":
                decls.add(scope + (nxt.text,))
                i += 3
                continue
            if after == "{" and match[i + 2] >= 0:
                decls.add(scope + (nxt.text,))
                stack.append((match[i + 2], nxt.text))
                i += 3
                continue
        if t.text == "use" and nxt is not None and nxt.text != "<":
            leaves: list[tuple[tuple[str, ...], int]] = []
            parse_use_tree(toks, match, i + 1, (), leaves)
            for segs, ln in leaves:
                refs.append(Ref(ln, segs, "use " + "::".join(segs), scope, True))
            k = i + 1
            while k < n and toks[k].text != ";":
                if toks[k].text in _OPEN and match[k] >= 0:
                    k = match[k]
                k += 1
            i = k + 1
            continue
        prev = toks[i - 1].text if i > 0 else ""
        if (nxt is not None and nxt.text == "::" and i + 2 < n and toks[i + 2].kind == IDENT
                and prev not in ("::", ".")):
            segs = [t.text]
            k = i + 1
            while k + 1 < n and toks[k].text == "::" and toks[k + 1].kind == IDENT:
                segs.append(toks[k + 1].text)
                k += 2
            refs.append(Ref(t.line, tuple(segs), "::".join(segs), scope, False))
            i = k
            continue
        i += 1
    return refs, decls


def resolve(ref: Ref, known: set[tuple[str, ...]],
            children: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The longest known module that is a prefix of what ``ref`` names, or
    None when it is not a reference into this crate."""
    segs = list(ref.segs)
    first = segs[0]
    if first in ("crate", "$crate"):
        path = segs[1:]
    elif first in ("self", "super"):
        base = list(ref.scope)
        rest = segs[1:] if first == "self" else segs
        while rest and rest[0] == "super":
            if not base:
                return None
            base.pop()
            rest = rest[1:]
        path = base + rest
    elif ref.scope + (first,) in children:
        path = list(ref.scope) + segs
    else:
        return None
    for ln in range(len(path), -1, -1):
        if tuple(path[:ln]) in known:
            return tuple(path[:ln])
    return None


def lift(src: tuple[str, ...], dst: tuple[str, ...]):
    """(L, child of L towards src, child of L towards dst), or None when the
    edge is between a module and itself, an ancestor or a descendant."""
    if src[: len(dst)] == dst or dst[: len(src)] == src:
        return None
    k = 0
    while src[k] == dst[k]:
        k += 1
    return src[:k], src[: k + 1], dst[: k + 1]


def tarjan(nodes, succ) -> list[list]:
    """Strongly connected components (iterative Tarjan)."""
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    sccs: list[list] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                sccs.append(comp)
    return sccs


def shortest_cycle(start, members: set, succ) -> list:
    """A shortest cycle through ``start`` inside ``members``: [start, …, start]."""
    prev = {start: None}
    q = deque([start])
    while q:
        v = q.popleft()
        for w in sorted(succ.get(v, ())):
            if w not in members:
                continue
            if w == start:
                path = []
                cur = v
                while cur is not None:
                    path.append(cur)
                    cur = prev[cur]
                return path[::-1] + [start]
            if w not in prev:
                prev[w] = v
                q.append(w)
    return [start]


@dataclass
class Evidence:
    rel: str
    line: int
    text: str
    src: tuple[str, ...]
    dst: tuple[str, ...]
    is_use: bool


@dataclass
class Cycle:
    unit: str
    level: tuple[str, ...]
    members: list[tuple[str, ...]]
    path: list[tuple[str, ...]]
    edges: dict[tuple, list[Evidence]]


def find_cycles(unit: str, edges: dict[tuple, list[Evidence]]) -> list[Cycle]:
    """``edges``: (L, a, b) -> evidence, a and b children of L."""
    by_level: dict[tuple, dict] = defaultdict(lambda: defaultdict(set))
    for (lvl, a, b) in edges:
        by_level[lvl][a].add(b)
    cycles = []
    for lvl in sorted(by_level):
        succ = by_level[lvl]
        nodes = sorted(set(succ) | {b for bs in succ.values() for b in bs})
        for comp in tarjan(nodes, succ):
            if len(comp) < 2:
                continue
            members = sorted(comp)
            mset = set(members)
            cyc = shortest_cycle(members[0], mset, succ)
            inner = {(a, b): edges[(lvl, a, b)] for a in members for b in sorted(succ.get(a, ()))
                     if b in mset}
            cycles.append(Cycle(unit, lvl, members, cyc, inner))
    return cycles


# --------------------------------------------------------------------------
# Workspace
# --------------------------------------------------------------------------


@dataclass
class FileInfo:
    path: Path
    rel: str
    module: tuple[str, ...]
    total_lines: int = 0
    prod_lines: int = 0
    test_only: bool = False
    fns: list[Fn] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    decls: set[tuple[str, ...]] = field(default_factory=set)
    test_mod_decls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Unit:
    crate: str
    name: str  # "lib" or "bin NAME"
    files: list[FileInfo] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.crate} ({self.name})"


def analyze_source(src: str, module: tuple[str, ...], info: FileInfo) -> None:
    info.total_lines = len(src.splitlines())
    try:
        toks = lex(src)
    except LexError as e:
        info.errors.append(str(e))
        info.prod_lines = info.total_lines
        return
    match, depth, errs = match_delims(toks)
    info.errors.extend(errs)
    items = find_test_items(toks, match, depth)
    info.test_mod_decls = items.test_mod_decls
    if items.whole_file:
        info.test_only = True
    prod = [True] * len(toks)
    excluded: set[int] = set()
    for a, b in items.ranges:
        for k in range(a, b + 1):
            prod[k] = False
        excluded.update(range(toks[a].line, toks[b].line + 1))
    info.prod_lines = info.total_lines - sum(1 for ln in excluded if ln <= info.total_lines)
    info.fns = find_fns(toks, match, prod, excluded)
    info.refs, info.decls = find_refs(toks, match, prod, module)


def module_of(parts: tuple[str, ...]) -> tuple[str, ...]:
    if parts in (("lib.rs",), ("main.rs",)):
        return ()
    if parts[-1] == "mod.rs":
        return parts[:-1]
    return parts[:-1] + (parts[-1][:-3],)


def find_crates(root: Path) -> list[tuple[str, Path, dict]]:
    data = tomllib.loads((root / "Cargo.toml").read_text())
    ws = data.get("workspace", {})
    exclude = {(root / e).resolve() for e in ws.get("exclude", [])}
    dirs: list[Path] = []
    if "package" in data:
        dirs.append(root)
    for m in ws.get("members", []):
        found = sorted(root.glob(m)) if any(ch in m for ch in "*?[") else [root / m]
        for d in found:
            if (d / "Cargo.toml").is_file() and d.resolve() not in exclude and d not in dirs:
                dirs.append(d)
    crates = []
    for d in dirs:
        manifest = data if d == root else tomllib.loads((d / "Cargo.toml").read_text())
        name = manifest.get("package", {}).get("name", d.name)
        crates.append((name, d, manifest))
    return crates


def build_units(root: Path, name: str, crate_dir: Path, manifest: dict) -> list[Unit]:
    src = crate_dir / "src"
    if not src.is_dir():
        return []
    bin_roots = set()
    for b in manifest.get("bin", []):
        if "path" in b:
            p = (crate_dir / b["path"]).resolve()
            if src.resolve() in p.parents and (src / "bin").resolve() not in p.parents:
                bin_roots.add(p)
    has_lib = (src / "lib.rs").is_file()
    units: dict[str, Unit] = {}

    def unit(uname: str) -> Unit:
        return units.setdefault(uname, Unit(name, uname))

    for p in sorted(src.rglob("*.rs")):
        rel_parts = p.relative_to(src).parts
        if any(part in SKIP_DIRS for part in rel_parts[:-1]):
            continue
        rel = p.relative_to(root).as_posix()
        if rel_parts[0] == "bin" and len(rel_parts) > 1:
            sub = rel_parts[1:]
            if len(sub) == 1:
                u, mod = f"bin {sub[0][:-3]}", ()
            else:
                u = f"bin {sub[0]}"
                mod = () if sub[1:] == ("main.rs",) else module_of(sub[1:])
        elif p.resolve() in bin_roots:
            u, mod = f"bin {p.stem}", ()
        elif rel_parts == ("main.rs",) and has_lib:
            u, mod = "bin main", ()
        else:
            u, mod = "lib", module_of(rel_parts)
        unit(u).files.append(FileInfo(p, rel, mod))
    return [units[k] for k in sorted(units, key=lambda k: (k != "lib", k))]


def mark_test_only(unit: Unit) -> None:
    test_roots = set()
    for f in unit.files:
        if f.test_only:
            test_roots.add(f.module)
        for d in f.test_mod_decls:
            test_roots.add(f.module + (d,))
    for f in unit.files:
        if any(f.module[: len(r)] == r for r in test_roots if r):
            f.test_only = True


def unit_edges(unit: Unit) -> dict[tuple, list[Evidence]]:
    live = [f for f in unit.files if not f.test_only]
    known = {f.module for f in unit.files}
    children = set(known)
    for f in live:
        children |= f.decls
    edges: dict[tuple, list[Evidence]] = defaultdict(list)
    for f in live:
        for r in f.refs:
            dst = resolve(r, known, children)
            if dst is None:
                continue
            lifted = lift(f.module, dst)
            if lifted is None:
                continue
            edges[lifted].append(Evidence(f.rel, r.line, r.text, f.module, dst, r.is_use))
    return edges


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def mod_name(m: tuple[str, ...]) -> str:
    return "::".join(m) if m else "crate"


def format_evidence(evs: list[Evidence], lifted: tuple) -> list[str]:
    groups: dict[tuple, list[Evidence]] = defaultdict(list)
    for e in evs:
        groups[(e.rel, e.line, e.src, e.dst)].append(e)
    lines = []
    for (rel, line, src, dst), es in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        texts: list[str] = []
        uses = [e.text[4:].split("::") for e in es if e.is_use]
        if len(uses) > 1 and all(u[:-1] == uses[0][:-1] for u in uses):
            head = "::".join(uses[0][:-1])
            texts.append(f"use {head}::{{{', '.join(u[-1] for u in uses)}}}")
        else:
            texts.extend(e.text for e in es if e.is_use)
        for e in es:
            if not e.is_use and e.text not in texts:
                texts.append(e.text)
        note = ""
        if (src, dst) != lifted:
            note = f"   [{mod_name(src)} -> {mod_name(dst)}]"
        lines.append(f"{rel}:{line}: {'; '.join(texts)}{note}")
    return lines


def run_checks(root: Path, list_info: bool, out=sys.stdout) -> int:
    if not (root / "Cargo.toml").is_file():
        print(f"error: no Cargo.toml in {root}", file=sys.stderr)
        return 2
    units: list[Unit] = []
    for name, d, manifest in find_crates(root):
        units.extend(build_units(root, name, d, manifest))
    for u in units:
        for f in u.files:
            analyze_source(f.path.read_text(encoding="utf-8"), f.module, f)
        mark_test_only(u)
    files = [f for u in units for f in u.files]
    live = [f for f in files if not f.test_only]
    w = lambda s="": print(s, file=out)  # noqa: E731

    crates = sorted({u.crate for u in units})
    w(f"check-structure: {len(crates)} crates, {len(units)} crate targets, "
      f"{len(live)} files ({len(files) - len(live)} test-only skipped) under {root}")

    if list_info:
        w()
        w("file lengths (production lines / total lines):")
        for f in sorted(files, key=lambda f: f.rel):
            tag = "  test-only" if f.test_only else ""
            w(f"  {f.prod_lines:5d} / {f.total_lines:5d}  {f.rel}{tag}")
        w()
        w(f"functions over {LIST_FN_LINES} lines (production code):")
        long_fns = [(fn.length, f.rel, fn) for f in live for fn in f.fns if fn.length > LIST_FN_LINES]
        for length, rel, fn in sorted(long_fns, key=lambda x: (-x[0], x[1], x[2].line)):
            reason = FN_LENGTH_EXEMPTIONS.get(f"{rel}::{fn.name}")
            tag = f"  (exempt: {reason})" if reason else ""
            w(f"  {length:5d}  {rel}:{fn.line}: fn {fn.name}{tag}")
        if not long_fns:
            w("  (none)")

    counts: dict[str, int] = {}

    # Parse problems first: they make the rest unreliable.
    errs = [(f.rel, e) for f in files for e in f.errors]
    if errs:
        w()
        w("lexing (every file must lex and balance its delimiters):")
        for rel, e in errs:
            w(f"  FAIL {rel}: {e}")
        counts["lexing"] = len(errs)

    w()
    rule = f"file length (production part <= {MAX_FILE_LINES} lines)"
    bad = sorted((f for f in live if f.prod_lines > MAX_FILE_LINES), key=lambda f: f.rel)
    if not bad:
        w(f"ok: {rule}")
    else:
        w(f"FAIL: {rule}")
        for f in bad:
            w(f"  {f.rel}: {f.prod_lines} production lines (limit {MAX_FILE_LINES}; "
              f"{f.total_lines} lines in all)")
    counts["file length"] = len(bad)

    w()
    rule = f"function length (fn <= {MAX_FN_LINES} lines)"
    bad_fns = []
    used_exemptions = set()
    for f in live:
        for fn in f.fns:
            if fn.length <= MAX_FN_LINES:
                continue
            key = f"{f.rel}::{fn.name}"
            if key in FN_LENGTH_EXEMPTIONS:
                used_exemptions.add(key)
                continue
            bad_fns.append((f.rel, fn))
    bad_fns.sort(key=lambda x: (x[0], x[1].line))
    if not bad_fns:
        w(f"ok: {rule}")
    else:
        w(f"FAIL: {rule}")
        for rel, fn in bad_fns:
            w(f"  {rel}:{fn.line}: fn {fn.name} is {fn.length} lines "
              f"(lines {fn.line}-{fn.end_line}; limit {MAX_FN_LINES})")
    for key in sorted(set(FN_LENGTH_EXEMPTIONS) - used_exemptions):
        w(f"  note: exemption {key!r} matches no function over the limit; remove it")
    counts["function length"] = len(bad_fns)

    w()
    rule = "no module import cycle within a crate"
    cycles: list[Cycle] = []
    for u in units:
        cycles.extend(find_cycles(u.label, unit_edges(u)))
    if not cycles:
        w(f"ok: {rule}")
    else:
        w(f"FAIL: {rule}")
        for c in cycles:
            if len(c.members) == 2:
                shape = f"{mod_name(c.members[0])} <-> {mod_name(c.members[1])}"
            else:
                shape = " -> ".join(mod_name(m) for m in c.path)
                if len(c.path) - 1 < len(c.members):
                    shape += f"  (strongly connected: {', '.join(mod_name(m) for m in c.members)})"
            w(f"  crate {c.unit}, among the children of {mod_name(c.level)}: {shape}")
            for (a, b), evs in c.edges.items():
                w(f"    {mod_name(a)} -> {mod_name(b)}:")
                for line in format_evidence(evs, (a, b)):
                    w(f"      {line}")
    counts["import cycles"] = len(cycles)

    w()
    total = sum(counts.values())
    detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
    if total:
        w(f"summary: FAIL, {total} violation{'s' if total != 1 else ''} ({detail}) "
          f"in {len(live)} files")
        return 1
    w(f"summary: ok, all rules hold ({len(live)} files, {len(crates)} crates)")
    return 0


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------

_LEX_SAMPLE = r'''
/* outer /* nested { */ still a comment } */
// a line comment with a brace {
fn strings() {
    let a = "a { brace and \" quote }";
    let b = r##"raw with "# inside"##;
    let c = r###"raw with "## and "# end"###;
    let d = b"bytes {";
    let e = br#"raw bytes }"#;
    let f = r"plain raw {";
}
fn chars<'a>(x: &'a str) -> &'static str {
    let o = '{';
    let q = '\'';
    let u = '\u{1F600}';
    let n = '\n';
    let y = b'}';
    'outer: loop { break 'outer; }
    x
}
trait T {
    fn no_body(&self) -> [u8; 4];
}
fn last() {}
'''


def _self_test() -> int:
    failures: list[str] = []

    def check(cond: bool, what: str) -> None:
        print(f"  {'ok  ' if cond else 'FAIL'} {what}")
        if not cond:
            failures.append(what)

    print("lexer:")
    toks = lex(_LEX_SAMPLE)
    match, depth, errs = match_delims(toks)
    check(not errs, f"delimiters balance ({errs or 'no errors'})")
    lits = [t.text for t in toks if t.kind == LIT]
    check('"a { brace and \\" quote }"' in lits, "string containing { and an escaped quote")
    check('r##"raw with "# inside"##' in lits, 'raw string r##"…"## containing "#')
    check('r###"raw with "## and "# end"###' in lits, 'raw string r###"…"### containing "##')
    check('b"bytes {"' in lits and 'br#"raw bytes }"#' in lits, "byte strings")
    check("'{'" in lits and "'\\''" in lits and "'\\u{1F600}'" in lits and "b'}'" in lits,
          "char literals '{', '\\'', '\\u{1F600}', b'}'")
    lts = [t.text for t in toks if t.kind == LIFETIME]
    check(lts == ["'a", "'a", "'static", "'outer", "'outer"], f"lifetimes and labels ({lts})")
    check(not any(t.text in ("outer", "nested") for t in toks), "nested block comment skipped")
    prod = [True] * len(toks)
    fns = {f.name: (f.line, f.end_line) for f in find_fns(toks, match, prod, set())}
    check(fns.get("strings") == (4, 11), f"fn strings spans lines 4-11 ({fns.get('strings')})")
    check(fns.get("chars") == (12, 20), f"fn chars spans lines 12-20 ({fns.get('chars')})")
    check("no_body" not in fns and fns.get("last") == (24, 24), "bodyless trait fn skipped")

    print("cfg(test) items:")
    src = ("fn a() {}\n#[cfg(test)]\n#[allow(x)]\nfn helper() {\n  {}\n}\nfn b() {}\n"
           "#[cfg(test)]\nmod tests {\n  use crate::x;\n}\nfn c() {}\n#[cfg(test)] mod t;\n")
    info = FileInfo(Path("x.rs"), "x.rs", ())
    analyze_source(src, (), info)
    names = [f.name for f in info.fns]
    check(names == ["a", "b", "c"], f"test fn and test mod excluded, later code kept ({names})")
    check(info.prod_lines == 13 - 5 - 4 - 1, f"production lines ({info.prod_lines})")
    check(info.test_mod_decls == ["t"], "`#[cfg(test)] mod t;` recorded")
    check(not [r for r in info.refs if r.segs[0] == "crate"], "refs in test module ignored")

    print("use trees and resolution:")
    src = ("mod child;\nuse crate::{a::{b, self}, c::*};\nuse super::super::d as e;\n"
           "use child::X;\nfn f() -> super::p::Q { crate::r::s(); x.child::<u8>(); metrics::m(); }\n"
           "mod inner { use super::sib::Z; }\n")
    info = FileInfo(Path("m.rs"), "m.rs", ("top", "m"))
    analyze_source(src, ("top", "m"), info)
    got = sorted(r.text for r in info.refs)
    want = sorted(["use crate::a::b", "use crate::a", "use crate::c", "use super::super::d",
                   "use child::X", "super::p::Q", "crate::r::s", "use super::sib::Z",
                   "metrics::m"])
    check(got == want, f"references found ({got})")
    known = {(), ("a",), ("a", "b"), ("c",), ("d",), ("r",), ("top",), ("top", "m"),
             ("top", "m", "child"), ("top", "p"), ("top", "m", "sib")}
    children = known | info.decls
    res = {r.text: resolve(r, known, children) for r in info.refs}
    check(res["use super::super::d"] == ("d",), "super::super:: resolves")
    check(res["metrics::m"] is None, "a path from a name that is no child module is not followed")
    check(res["use child::X"] == ("top", "m", "child"), "child-module path resolves")
    check(res["super::p::Q"] == ("top", "p"), "super:: in a type resolves")
    check(res["use crate::a::b"] == ("a", "b"), "longest known prefix")
    check(res["use super::sib::Z"] == ("top", "m", "sib"),
          "super:: inside an inline mod is relative to the inline mod")

    print("cycle lifting:")
    check(lift(("a",), ("a", "x")) is None and lift(("a", "x"), ("a",)) is None,
          "ancestor/descendant edges ignored")
    check(lift(("a", "x", "y"), ("a", "z")) == (("a",), ("a", "x"), ("a", "z")),
          "a::x::y -> a::z lifts to a::x -> a::z under a")
    check(lift(("p", "q"), ("r",)) == ((), ("p",), ("r",)), "p::q -> r lifts to p -> r at root")
    graph = {
        ("a", "x"): [("b", "y")],          # root: a -> b
        ("b", "z", "w"): [("a",)],         # root: b -> a    => cycle a <-> b
        ("c", "p"): [("c", "q", "r")],     # c: c::p -> c::q
        ("c", "q"): [("c", "s")],          # c: c::q -> c::s
        ("c", "s", "t"): [("c", "p")],     # c: c::s -> c::p => 3-cycle under c
        ("d",): [("d", "e")],              # ancestor edge: ignored
        ("e",): [("f",)],                  # acyclic
    }
    edges: dict[tuple, list[Evidence]] = defaultdict(list)
    for src_m, dsts in graph.items():
        for dst_m in dsts:
            lifted = lift(src_m, dst_m)
            if lifted:
                edges[lifted].append(Evidence("f.rs", 1, "x", src_m, dst_m, False))
    cyc = {(c.level, tuple(c.members)) for c in find_cycles("t", edges)}
    want_c = {((), (("a",), ("b",))), (("c",), (("c", "p"), ("c", "q"), ("c", "s")))}
    check(cyc == want_c, f"cycles found: a<->b at root, p->q->s->p under c ({sorted(cyc)})")
    three = [c for c in find_cycles("t", edges) if c.level == ("c",)]
    check(bool(three) and len(three[0].path) == 4, "3-cycle path reported")

    print("end to end on a synthetic workspace:")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "Cargo.toml").write_text('[workspace]\nmembers = ["k"]\n')
        (root / "k" / "src" / "bin").mkdir(parents=True)
        (root / "k" / "tests").mkdir()
        (root / "k" / "Cargo.toml").write_text('[package]\nname = "k"\n')
        body = "".join(f"    let v{i} = {i};\n" for i in range(125))
        (root / "k" / "src" / "lib.rs").write_text("mod x;\nmod y;\nmod z;\n")
        (root / "k" / "src" / "x.rs").write_text(
            "use crate::{y::{self, Foo}, z};\npub struct T;\n")
        (root / "k" / "src" / "y.rs").write_text(
            f"pub struct Foo;\npub fn long() {{\n{body}}}\n"
            f"#[cfg(test)]\nmod tests {{\n    use crate::x::T;\n    fn t() {{\n{body}    }}\n}}\n")
        (root / "k" / "src" / "z.rs").write_text("pub fn g() -> super::x::T { todo!() }\n")
        (root / "k" / "src" / "bin" / "tool.rs").write_text("use k::x;\nfn main() {}\n")
        (root / "k" / "tests" / "t.rs").write_text("fn huge() {\n" + body * 10 + "}\n")
        import io
        buf = io.StringIO()
        rc = run_checks(root, False, buf)
        text = buf.getvalue()
        check(rc == 1, f"exit code 1 on violations (got {rc})")
        check("k/src/y.rs:2: fn long is 127 lines" in text, "long production fn reported")
        check("fn t " not in text and "huge" not in text, "test fns and tests/ ignored")
        check("x <-> z" in text and "x <-> y" not in text,
              "cycle x <-> z found, test-only use in y not counted")
        check("k/src/z.rs:1: super::x::T" in text, "cycle evidence names file:line and path")
        if failures:
            print(text)
    print()
    if failures:
        print(f"self-test: FAIL, {len(failures)} check(s) failed")
        return 1
    print("self-test: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Check file length, function length and module import cycles "
                    "in the workspace's Rust sources.")
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="workspace root (default: the parent of this script's folder)")
    ap.add_argument("--list", action="store_true",
                    help=f"also print every file's length and every fn over {LIST_FN_LINES} lines")
    ap.add_argument("--self-test", action="store_true", help="run the built-in self-test")
    args = ap.parse_args(argv)
    if args.self_test:
        return _self_test()
    return run_checks(args.root.resolve(), args.list)


if __name__ == "__main__":
    sys.exit(main())
