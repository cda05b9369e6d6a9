"""test_dist.py  What a system install ships besides the binaries.

- every man page renders without a groff warning (man --warnings, 80
  columns), as Debian's lintian would check;
- rehome.conf(5) has an entry for every key the parser knows (core/base/
  conf.c), so a new key cannot ship undocumented;
- the bash completion of rehomectl offers every command and sub-command of
  rehomectl, and the fixed values of its options;
- every command `rehomectl help` lists (REHOMECTL: the built client) is
  completed and has an entry in rehomectl(8).

Usage: test_dist.py MANDIR (the build's man/, pages with paths filled in).
Exits 1 with the reasons on the first failing check group.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

SRC = os.environ.get('REHOME_SRC') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..'))
COMPLETION = os.path.join(SRC, 'dist', 'bash-completion', 'rehomectl')
BASH_COMPLETION = '/usr/share/bash-completion/bash_completion'

# rehomectl's commands (docs: rehomectl(8), the product's contract)
COMMANDS = {
    '': 'status dialogs shtag rehome move drain undrain jobs dialog media '
        'policy log-level reload version help',
    'shtag': 'activate release',
    'dialog': 'show end',
    'media': 'relays move',
    'policy': 'reload simulate',
    'policy simulate': 'node-down node-up tick invite',
    'log-level': 'debug info warn error',
    'rehome T --mode': 'challenge challenge-callee caller callee update',
    'rehome T --body': 'outbound inbound none',
}
OPTIONS = {
    'rehome T': '--mode --body --rate --force',
    'move T': '--to --count --percent',
    'media move': '--from --to --count --tag',
    'policy reload': '--cluster',
    'policy simulate invite': '--from --to --ruri',
    '': '--json --server --token',
}


def man_warnings(mandir):
    pages = sorted(glob.glob(os.path.join(mandir, '*.[1-8]')))
    if len(pages) < 4:
        return ['expected 4 man pages in %s, found %s' % (mandir, pages)]
    env = dict(os.environ, MANWIDTH='80')
    problems = []
    for page in pages:
        res = subprocess.run(['man', '--warnings', '-E', 'UTF-8', '-l', page],
                             capture_output=True, text=True, env=env,
                             timeout=60)
        if res.returncode != 0 or res.stderr.strip():
            problems.append('%s: %s' % (os.path.basename(page),
                                        res.stderr.strip()))
    return problems


def conf_keys_documented(mandir):
    with open(os.path.join(SRC, 'core', 'base', 'conf.c')) as f:
        keys = re.findall(r'\{\.name = "(\w+)"', f.read())
    with open(os.path.join(mandir, 'rehome.conf.5')) as f:
        page = f.read()
    if len(keys) < 10:
        return ['found only %r in conf.c' % keys]
    return ['rehome.conf(5) has no entry for key %s' % k for k in keys
            if not re.search(r'^\.TP\n\.B[IR]? %s\b' % k, page, re.M)]


def complete(line):
    """What the completion offers after `line` (a word being typed, or
    a new word when line ends with a space)."""
    script = '''
        source %s
        source %s
        COMP_LINE=$1
        read -ra COMP_WORDS <<< "$COMP_LINE"
        [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_POINT=${#COMP_LINE}
        _rehomectl rehomectl "${COMP_WORDS[COMP_CWORD]}" \
            "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%%s\\n' "${COMPREPLY[@]}"
    ''' % (BASH_COMPLETION, COMPLETION)
    res = subprocess.run(['bash', '-c', script, 'bash', line],
                         capture_output=True, text=True, timeout=30)
    return set(res.stdout.split())


def completion_complete():
    if not os.path.exists(BASH_COMPLETION):
        print('SKIP completion: no %s' % BASH_COMPLETION)
        return []
    problems = []
    for prefix, words in COMMANDS.items():
        line = 'rehomectl %s ' % prefix if prefix else 'rehomectl '
        got = complete(line)
        missing = set(words.split()) - got
        if missing:
            problems.append('after "%s": missing %s (got %s)' % (
                line, sorted(missing), sorted(got)))
    for prefix, words in OPTIONS.items():
        line = 'rehomectl %s -' % prefix if prefix else 'rehomectl -'
        missing = set(words.split()) - complete(line)
        if missing:
            problems.append('after "%s": missing %s' % (line,
                                                        sorted(missing)))
    if complete('rehomectl sta') != {'status'}:
        problems.append('"sta" does not complete to status alone')
    if complete('rehomectl -s 127.0.0.1:8060 sh') != {'shtag'}:
        problems.append('a global option before the command confuses it')
    return problems


def help_commands():
    """[word] or [word, sub] of each command `rehomectl help` lists."""
    res = subprocess.run([os.environ['REHOMECTL'], 'help'],
                         capture_output=True, text=True, timeout=30)
    text = res.stdout.split('commands:\n', 1)[-1].split('\n\n', 1)[0]
    cmds = []
    for line in text.splitlines():
        words = line.split()
        sub = words[1:2] if len(words) > 1 and re.fullmatch(
            r'[a-z][a-z-]*', words[1]) else []
        cmds.append(words[:1] + sub)
    return cmds


def man_entries(page):
    """The first line of each .TP entry, without fonts, macros, quotes."""
    heads = re.findall(r'^\.TP\n(.*)$', page, re.M)
    heads = [re.sub(r'\\f[BIPR]|^\.B[IR]? |"', '', h) for h in heads]
    return [h.replace('\\-', '-') for h in heads]


def help_covered(mandir):
    cmds = help_commands()
    if len(cmds) < 10:
        return ['rehomectl help lists only %r' % cmds]
    with open(os.path.join(mandir, 'rehomectl.8')) as f:
        entries = man_entries(f.read())
    problems = []
    for cmd in cmds:
        line = ' '.join(['rehomectl'] + cmd[:-1]) + ' '
        if cmd[-1] not in complete(line):
            problems.append('"%s" is not completed' % ' '.join(cmd))
        if not any(e.startswith(' '.join(cmd)) for e in entries):
            problems.append('"%s" has no entry in rehomectl(8)' %
                            ' '.join(cmd))
    return problems


def main():
    mandir = sys.argv[1]
    checks = [('conf keys', lambda: conf_keys_documented(mandir))]
    if shutil.which('man'):
        checks.append(('man pages', lambda: man_warnings(mandir)))
    else:
        print('SKIP man pages: no man(1)')
    checks.append(('completion', completion_complete))
    if os.environ.get('REHOMECTL') and os.path.exists(BASH_COMPLETION):
        checks.append(('rehomectl help covered',
                       lambda: help_covered(mandir)))

    failed = False
    for name, fn in checks:
        problems = fn()
        print('%s %s' % ('FAIL' if problems else 'PASS', name))
        for p in problems:
            print('  ' + p)
        failed = failed or bool(problems)
    sys.exit(1 if failed else 0)


main()
