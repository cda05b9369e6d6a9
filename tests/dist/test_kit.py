"""test_kit.py  The testing kit for operators works from an install, without the source tree.

`meson install` into a temporary DESTDIR, then, from a directory outside
the source tree, with nothing but the installed files:
- busted with only the installed kit on its path (--lpath=<datadir>/
  rehome/testing/?.lua) runs the installed worked examples' specs
  (policies/examples/*_spec.lua), which pass;
- a deployment's own policy and spec, as docs/policies.md shows them
  (fake_rehome, scenario: 10 000 dialogs, a node dies), pass, and a spec
  that expects the wrong thing fails (busted exits non-zero);
- every installed example policy passes `rehomed -t` with the installed
  library (REHOME_LUADIR), and a broken one does not.

Usage: test_kit.py BUILDDIR PKGDATADIR (env REHOMED, BUSTED).
Exits 1 with the reason on the first failure.
"""
import glob
import os
import subprocess
import sys
import tempfile

BUILD, PKGDATADIR = sys.argv[1], sys.argv[2]
REHOMED = os.environ['REHOMED']
BUSTED = os.environ.get('BUSTED', '/usr/bin/busted')

POLICY = '''\
-- a deployment's policy: the next live node takes a dead node's tags
local rehome = require "rehome"
local takeover = require "takeover"
local t = takeover.new{rehome = rehome}
return {on_node_down = function() t:sweep() end}
'''

SPEC = '''\
local scenario = require "scenario"

describe("our policy", function()
  it("node2 takes node1's calls when node1 dies", function()
    local f = scenario.cluster("node2", {"node1", "node2"},
                               {acme = "node1"})
    scenario.dialogs(f, 10000, {"acme"})
    local p = f.load("policy.lua")
    local acts = scenario.node_dies(f, p, "node1")
    assert.are.equal(1, #acts)
    assert.are.equal("%s", acts[1].req.tag)
  end)
end)
'''


def fail(why):
    print('FAIL: ' + why)
    sys.exit(1)


def run(argv, cwd, env=None):
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def busted(kit, cwd, *roots):
    return run(['lua5.4', BUSTED, '--lpath=%s/?.lua' % kit] + list(roots),
               cwd)


def main():
    with tempfile.TemporaryDirectory(prefix='rehome-kit-') as tmp:
        dest = os.path.join(tmp, 'dest')
        rc, out = run(['meson', 'install', '--destdir', dest,
                       '--no-rebuild', '--quiet'], BUILD)
        if rc:
            fail('meson install: ' + out)
        share = dest + PKGDATADIR
        kit = os.path.join(share, 'testing')
        for name in ('fake_rehome.lua', 'scenario.lua'):
            if not os.path.isfile(os.path.join(kit, name)):
                fail('not installed: %s/%s' % (kit, name))

        work = os.path.join(tmp, 'ci')
        os.makedirs(os.path.join(work, 'spec'))
        examples = os.path.join(share, 'policies', 'examples')
        specs = glob.glob(os.path.join(examples, '*_spec.lua'))
        if len(specs) < 4:
            fail('examples\' specs installed: %s' % specs)
        rc, out = busted(kit, work, examples)
        if rc or ' 0 failures' not in out:
            fail('the installed examples\' specs:\n' + out)

        with open(os.path.join(work, 'policy.lua'), 'w') as f:
            f.write(POLICY)
        spec = os.path.join(work, 'spec', 'policy_spec.lua')
        with open(spec, 'w') as f:
            f.write(SPEC % 'acme')
        rc, out = busted(kit, work, 'spec')
        if rc or '1 success' not in out:
            fail('a deployment\'s spec:\n' + out)
        with open(spec, 'w') as f:
            f.write(SPEC % 'globex')
        rc, out = busted(kit, work, 'spec')
        if rc == 0 or '1 failure' not in out:
            fail('a wrong spec passed:\n' + out)

        env = dict(os.environ, REHOME_LUADIR=os.path.join(share, 'lua'))
        policies = [p for p in glob.glob(os.path.join(examples, '*.lua'))
                    if not p.endswith('_spec.lua')]
        broken = os.path.join(work, 'broken.lua')
        with open(broken, 'w') as f:
            f.write('return {on_tick = function() end\n')
        for policy in policies + [broken]:
            conf = os.path.join(work, 'rehome.conf')
            with open(conf, 'w') as f:
                f.write('listen udp:127.0.0.1:5060 tag=public\n'
                        'ctl_token t\npolicy %s\n' % policy)
            rc, out = run([REHOMED, '-t', '-c', conf], work, env)
            if (rc == 0) != (policy != broken):
                fail('rehomed -t %s: exit %d\n%s' % (policy, rc, out))
        print('kit: %d example specs, %d example policies checked' %
              (len(specs), len(policies)))


main()
