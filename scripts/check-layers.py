#!/usr/bin/env python3
"""Check that dependencies between core/ folders point one way.

Reads the engine's object files with nm: a symbol one object uses
(undefined) and another defines is an edge from the user's folder to the
definer's. The folders and their edges are printed as a graph; any circle
that spans two folders is an error (exit 1).

usage: check-layers.py BUILD_DIR [--dot]

Objects are those meson builds for librehome_core.a: members named
core_<folder>_<file>.c.o (folder names have no underscore).
"""
import collections
import os
import subprocess
import sys

LIB = 'librehome_core.a'


def nm(archive, *flags):
    """Yield (member, symbol) pairs of `nm -A flags archive`."""
    out = subprocess.run(['nm', '-A', *flags, archive], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        # "lib.a:member.o:  U sym" or "lib.a:member.o:00000 T sym"
        head, _, rest = line.rpartition(':')
        member = os.path.basename(head.split(':')[-1])
        fields = rest.split()
        if len(fields) >= 2:
            yield member, fields[-2], fields[-1]


def folder_of(member):
    name = member.removeprefix('core_')
    return name.split('_', 1)[0]


def graph(archive):
    """(folder -> {folder: [symbols]}) for every cross-folder use."""
    definer = {}
    for member, kind, sym in nm(archive, '--defined-only'):
        if kind in 'TDBRC':
            definer[sym] = folder_of(member)
    edges = collections.defaultdict(lambda: collections.defaultdict(set))
    for member, kind, sym in nm(archive, '--undefined-only'):
        src, dst = folder_of(member), definer.get(sym)
        if dst and dst != src:
            edges[src][dst].add(sym)
    return definer, edges


def circles(nodes, edges):
    """Strongly connected components of more than one folder (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    archive = os.path.join(sys.argv[1], LIB)
    definer, edges = graph(archive)
    nodes = set(definer.values())
    if '--dot' in sys.argv:
        print('digraph core {')
        for src in sorted(edges):
            for dst in sorted(edges[src]):
                print(f'  "{src}" -> "{dst}";')
        print('}')
        return 0
    for src in sorted(nodes):
        uses = ', '.join(sorted(edges.get(src, {}))) or '-'
        print(f'{src:8} -> {uses}')
    bad = circles(nodes, edges)
    for comp in bad:
        print('circle between folders: ' + ' <-> '.join(comp),
              file=sys.stderr)
        for src in comp:
            for dst in comp:
                syms = sorted(edges.get(src, {}).get(dst, ()))
                if syms:
                    print(f'  {src} -> {dst}: ' + ', '.join(syms[:8])
                          + (' ...' if len(syms) > 8 else ''),
                          file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
