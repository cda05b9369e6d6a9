"""metrics.py  GET /metrics read and checked the way Prometheus would.

    from harness import metrics as hm

    m = hm.scrape(node)              # checked (lint) and parsed
    m.value('rehome_calls_total')    # one sample, 0 when absent
    m.value('rehome_dialogs', shtag='service', state='confirmed')
    m.sum('rehome_dialogs_unprotected')      # every sample of the family

lint() is what every exposition must pass: `promtool check metrics`
(Prometheus' own linter: names, units, _total on counters), no
`rehome_rehome_` prefix, no empty label value, every sample in a family
with a TYPE, every family documented in docs/metrics.md with its type,
and every histogram whole (cumulative buckets up to +Inf, _sum, _count
equal to the +Inf bucket).
"""

import os
import re
import shutil
import subprocess

from .common import SRC

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
SUFFIXES = ('_bucket', '_sum', '_count')
DOC_ROW = re.compile(r'^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \| '
                     r'(counter|gauge|histogram) \|', re.M)


def documented():
    """{name: type} of docs/metrics.md's tables (name, type, ...)."""
    with open(os.path.join(SRC, 'docs', 'metrics.md')) as f:
        return dict(DOC_ROW.findall(f.read()))


class Metrics:
    """One exposition: types[family] and samples [(name, labels, value)]"""

    def __init__(self, text):
        self.text = text
        self.types = {}
        self.samples = []
        for line in text.splitlines():
            if line.startswith('# TYPE '):
                _, _, name, kind = line.split(' ', 3)
                self.types[name] = kind
            elif line and not line.startswith('#'):
                self.samples.append(parse_sample(line))

    def family(self, name):
        """The family a sample name belongs to (histogram suffixes off)."""
        if name in self.types:
            return name
        for suffix in SUFFIXES:
            base = name[:-len(suffix)]
            if name.endswith(suffix) and \
                    self.types.get(base) == 'histogram':
                return base
        return None

    def select(self, name, **labels):
        return [(lb, v) for n, lb, v in self.samples
                if n == name and
                all(lb.get(k) == want for k, want in labels.items())]

    def value(self, name, **labels):
        """The sample with exactly these labels, 0 when absent."""
        for lb, v in self.select(name, **labels):
            if lb == labels:
                return v
        return 0.0

    def sum(self, name, **labels):
        return sum(v for _, v in self.select(name, **labels))

    def histogram(self, name, **labels):
        """(buckets [(le, count)], sum, count) of one histogram"""
        buckets = sorted(((float(lb['le']), v) for lb, v in
                          self.select(name + '_bucket', **labels)),
                         key=lambda b: b[0])
        return (buckets, self.value(name + '_sum', **labels),
                self.value(name + '_count', **labels))


def parse_sample(line):
    m = SAMPLE.match(line)
    assert m, 'not a sample line: %r' % line
    labels = {}
    rest = m.group(3) or ''
    while rest:
        lm = LABEL.match(rest)
        assert lm, 'bad labels in %r' % line
        labels[lm.group(1)] = lm.group(2)
        rest = rest[lm.end():]
    return m.group(1), labels, float(m.group(4))


def histogram_problems(m, name):
    problems = []
    series = {}
    for n, lb, v in m.samples:
        if m.family(n) == name and n.endswith(SUFFIXES):
            key = tuple(sorted((k, x) for k, x in lb.items() if k != 'le'))
            series.setdefault(key, {}).setdefault(n[len(name):], []) \
                .append((lb.get('le'), v))
    for key, parts in series.items():
        buckets = parts.get('_bucket', [])
        counts = [v for _, v in buckets]
        if not buckets or buckets[-1][0] != '+Inf':
            problems.append('%s%s: no +Inf bucket' % (name, key))
        elif counts != sorted(counts):
            problems.append('%s%s: buckets not cumulative' % (name, key))
        elif parts.get('_count') != [(None, counts[-1])]:
            problems.append('%s%s: _count is not the +Inf bucket'
                            % (name, key))
        if len(parts.get('_sum', [])) != 1:
            problems.append('%s%s: no _sum' % (name, key))
    return problems


def lint(text):
    """Every problem of one exposition, [] when none."""
    problems = []
    promtool = shutil.which('promtool')
    if not promtool:
        problems.append('promtool not found (Debian package prometheus)')
    else:
        res = subprocess.run([promtool, 'check', 'metrics'], input=text,
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0 or res.stdout.strip():
            problems.append('promtool: %s%s' % (res.stdout, res.stderr))

    m = Metrics(text)
    for name, labels, _ in m.samples:
        if name.startswith('rehome_rehome_'):
            problems.append('doubled prefix: ' + name)
        if not name.startswith(('rehome_', 'process_')):
            problems.append('not ours: ' + name)
        if m.family(name) is None:
            problems.append('no TYPE for ' + name)
        if '' in labels.values():
            problems.append('empty label value: %s%s' % (name, labels))
    docs = documented()
    for name, kind in m.types.items():
        if docs.get(name) != kind:
            problems.append('not in docs/metrics.md as a %s: %s'
                            % (kind, name))
        if kind == 'histogram':
            problems += histogram_problems(m, name)
    return problems


def scrape(node):
    """GET /metrics of a node, linted (AssertionError) and parsed."""
    code, text = node.ctl.get('/metrics')
    assert code == 200, 'metrics %s: %s' % (code, text)
    problems = lint(text)
    assert not problems, '\n'.join(problems)
    return Metrics(text)
