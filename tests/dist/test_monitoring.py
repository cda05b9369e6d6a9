"""test_monitoring.py  The shipped Grafana dashboard and Prometheus alerts.

- docs/prometheus/alerts.yml passes `promtool check rules`, and
  `promtool test rules` (tests/dist/alerts_test.yml: each alert fires on
  the series it is for, and not on a blip);
- docs/grafana/rehome.json is JSON with the dashboard's keys, panel ids
  are unique, and every query is valid PromQL (promtool parses them as
  recording rules, Grafana's variables replaced);
- every metric the dashboard or the rules query is documented in
  docs/metrics.md (a histogram's _bucket/_sum/_count by its family).

Exits 1 with the reasons on the first failing check group.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get('REHOME_SRC') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..'))
DOCS = os.path.join(SRC, 'docs')
ALERTS = os.path.join(DOCS, 'prometheus', 'alerts.yml')
ALERTS_TEST = os.path.join(SRC, 'tests', 'dist', 'alerts_test.yml')
DASHBOARD = os.path.join(DOCS, 'grafana', 'rehome.json')

# a table row of docs/metrics.md: | `name` | type | ...
DOC_ROW = re.compile(r'^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \| '
                     r'(counter|gauge|histogram) \|', re.M)
GRAFANA_VARS = {'$__rate_interval': '5m', '$__interval': '1m',
                '$instance': '.*'}
PROMQL_WORDS = {'and', 'or', 'unless', 'bool', 'offset', 'by', 'without',
                'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan'}
HISTOGRAM_SUFFIXES = ('_bucket', '_sum', '_count')


def promtool(*args):
    """(exit status, output) of promtool"""
    res = subprocess.run(['promtool'] + list(args), capture_output=True,
                         text=True, timeout=60)
    return res.returncode, res.stdout + res.stderr


def documented():
    with open(os.path.join(DOCS, 'metrics.md')) as f:
        return dict(DOC_ROW.findall(f.read()))


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)      # strings
    expr = re.sub(r'\{[^}]*\}', ' ', expr)               # matchers
    expr = re.sub(r'\[[^\]]*\]', ' ', expr)              # ranges
    expr = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)'
                  r'\s*\([^)]*\)', ' ', expr)            # label lists
    names = set()
    for m in re.finditer(r'(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?',
                         expr):
        if not m.group(2) and m.group(1).lower() not in PROMQL_WORDS:
            names.add(m.group(1))
    return names


def undocumented(names, where):
    docs = documented()
    problems = []
    for name in sorted(names):
        base = next((name[:-len(s)] for s in HISTOGRAM_SUFFIXES
                     if name.endswith(s) and
                     docs.get(name[:-len(s)]) == 'histogram'), name)
        if base not in docs:
            problems.append('%s queries %s, not in docs/metrics.md'
                            % (where, name))
    return problems


def alert_exprs():
    with open(ALERTS) as f:
        rules = yaml.safe_load(f)
    return [r['expr'] for g in rules['groups'] for r in g['rules']]


def rules_ok():
    problems = []
    for args in (('check', 'rules', ALERTS), ('test', 'rules', ALERTS_TEST)):
        code, out = promtool(*args)
        if code != 0:
            problems.append('promtool %s: %s' % (' '.join(args[:2]), out))
    for expr in alert_exprs():
        problems += undocumented(metric_names(expr), 'alerts.yml')
    return problems


def dashboard_targets(dash):
    for panel in dash.get('panels', []):
        for target in panel.get('targets', []):
            yield panel.get('title'), target.get('expr', '')


def promql_valid(exprs):
    """promtool parses each expr, as a recording rule"""
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        rules.append({'record': 'dashboard:query%d' % i, 'expr': expr})
    with tempfile.NamedTemporaryFile('w', suffix='.yml') as f:
        yaml.safe_dump({'groups': [{'name': 'dashboard', 'rules': rules}]},
                       f)
        f.flush()
        code, out = promtool('check', 'rules', f.name)
    return [] if code == 0 else ['dashboard queries: ' + out]


def dashboard_ok():
    try:
        with open(DASHBOARD) as f:
            dash = json.load(f)
    except ValueError as e:
        return ['%s: %s' % (DASHBOARD, e)]
    problems = ['dashboard has no "%s"' % k
                for k in ('title', 'uid', 'panels', 'templating')
                if k not in dash]
    ids = [p.get('id') for p in dash.get('panels', [])]
    if len(ids) != len(set(ids)):
        problems.append('panel ids not unique: %s' % ids)
    targets = list(dashboard_targets(dash))
    if len(targets) < 10:
        problems.append('only %d queries in the dashboard' % len(targets))
    for title, expr in targets:
        problems += undocumented(metric_names(expr), 'panel "%s"' % title)
    return problems + promql_valid([e for _, e in targets])


def main():
    if not shutil.which('promtool'):
        print('FAIL promtool not found (Debian package prometheus)')
        sys.exit(1)

    failed = False
    for name, fn in (('alert rules', rules_ok), ('dashboard', dashboard_ok)):
        problems = fn()
        print('%s %s' % ('FAIL' if problems else 'PASS', name))
        for p in problems:
            print('  ' + p)
        failed = failed or bool(problems)
    sys.exit(1 if failed else 0)


main()
