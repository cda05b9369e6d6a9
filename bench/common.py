"""@file common.py  What the bench scripts share: progress lines, a process's
CPU, memory and descriptors from /proc, percentiles, a slope, a run inside
a harness context, and a plain-text table.

Imported by the scripts of this folder (`from common import ...`: Python
puts the script's own folder first on the module path); the integration
harness (tests/integration on PYTHONPATH) starts the processes, this
module only reads figures.
"""

import os
import shutil
import sys

CLK_TCK = os.sysconf('SC_CLK_TCK')


def log(msg):
    """A progress line on stderr, so that stdout holds only the figures."""
    print(msg, file=sys.stderr, flush=True)


def pid_of(proc):
    """A PID, or the PID of a harness Proc (or of a Popen)."""
    return proc if isinstance(proc, int) else proc.pid


def cpu_s(proc):
    """utime + stime of a process (a PID or a harness Proc), seconds."""
    with open('/proc/%d/stat' % pid_of(proc)) as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ms(proc):
    return cpu_s(proc) * 1000.0


def mem_kib(proc):
    """{'rss': KiB, 'pss': KiB, 'anon': KiB} of a process, from
    smaps_rollup (anon: its anonymous pages, the heap and stacks, not the
    libraries' code and data)."""
    keys = {'Rss': 'rss', 'Pss': 'pss', 'Anonymous': 'anon'}
    found = {}
    with open('/proc/%d/smaps_rollup' % pid_of(proc)) as f:
        for line in f:
            key, _, rest = line.partition(':')
            if key in keys:
                found[keys[key]] = int(rest.split()[0])
    return found


def fds(proc, kind=None):
    """Open descriptors of a process; kind 'socket': sockets only."""
    pid = pid_of(proc)
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        if kind is None:
            n += 1
            continue
        try:
            n += os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith(
                kind + ':')
        except OSError:
            pass         # closed meanwhile
    return n


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 *
                                              (len(values) - 1)))))
    return values[k]


def slope(points):
    """Least-squares slope of [(x, y)], 0 with fewer than 2 points."""
    if len(points) < 2:
        return 0.0
    n = float(len(points))
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if not sxx:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def in_ctx(h, name, fn, *args):
    """fn(ctx, *args) in a fresh harness context, whose processes are all
    stopped afterwards; its directory is removed unless REHOME_KEEP is
    set or something went wrong (a problem the harness found, or an
    exception), then it is named so the logs can be read."""
    ctx = h.Ctx(name)
    keep = True
    try:
        result = fn(ctx, *args)
        keep = False
        return result
    finally:
        problems = ctx.close()
        for problem in problems:
            log('problem: ' + problem)
        if keep or problems or os.environ.get('REHOME_KEEP'):
            log('logs kept in %s' % ctx.dir)
        else:
            shutil.rmtree(ctx.dir, ignore_errors=True)


def table(columns, rows):
    """A plain-text table: columns [(title, format)], rows of values;
    each column as wide as its widest cell, right-aligned."""
    cells = [[fmt % v for (_, fmt), v in zip(columns, row)] for row in rows]
    widths = [max([len(t)] + [len(r[i]) for r in cells])
              for i, (t, _) in enumerate(columns)]
    lines = ['  '.join(t.rjust(w) for (t, _), w in zip(columns, widths))]
    lines += ['  '.join(c.rjust(w) for c, w in zip(r, widths))
              for r in cells]
    return '\n'.join(lines)
