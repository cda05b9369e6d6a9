#!/bin/sh
# Builds the Debian package from a copy of this tree, installs it, and checks
# the installed system: the config and its policy pass rehomed -t, a policy
# finds the Lua library without REHOME_LUADIR, the testing kit runs the
# installed examples' specs outside the source tree, the units pass
# systemd-analyze verify, the man pages, completion and system user are
# there. Exits non-zero on the first failure.
#
#   scripts/check-package.sh [--keep]
#
# Needs root (or sudo) to install. The package is purged at the end unless
# --keep is given (or it was installed before). .ci/run calls this after
# the test suite.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)

KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rehome-package.XXXXXX")
INSTALLED_BEFORE=0
dpkg-query -W -f='${Status}' rehome 2>/dev/null | grep -q "ok installed" &&
	INSTALLED_BEFORE=1

cleanup() {
	status=$?
	if [ "$KEEP" -eq 0 ] && [ "$INSTALLED_BEFORE" -eq 0 ] &&
	   dpkg-query -W -f='${Status}' rehome 2>/dev/null |
	   grep -q "ok installed"; then
		$SUDO env DEBIAN_FRONTEND=noninteractive \
			apt-get purge -y -q rehome >/dev/null || true
	fi
	if [ "$status" -eq 0 ]; then
		rm -rf "$TMP"
		echo "check-package: all good"
	else
		echo "check-package: FAILED (logs in $TMP)" >&2
	fi
	exit "$status"
}
trap cleanup EXIT INT TERM

step() { echo "== $*"; }
fail() { echo "check-package: $*" >&2; exit 1; }

# A copy of the tree as it is (uncommitted changes included), without the
# build directories: dpkg-buildpackage writes debian/ and ../*.deb
step "copy of the tree in $TMP/rehome"
mkdir "$TMP/rehome"
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$SRC" ls-files -z --cached --others --exclude-standard |
		(cd "$SRC" && xargs -0 sh -c \
			'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
		tar -C "$SRC" --null -T - -cf - | tar -C "$TMP/rehome" -xf -
else
	tar -C "$SRC" --exclude='./build*' -cf - . | tar -C "$TMP/rehome" -xf -
fi

step "dpkg-buildpackage -us -uc -b"
(cd "$TMP/rehome" && nice dpkg-buildpackage -us -uc -b) \
	>"$TMP/build.log" 2>&1 || {
	tail -n 60 "$TMP/build.log" >&2
	fail "dpkg-buildpackage failed (log above)"
}
DEB=$(ls "$TMP"/rehome_*.deb)
dpkg-deb --info "$DEB" | sed -n '/Package:/,/Description:/p'

step "apt-get install $DEB"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$DEB" \
	>"$TMP/install.log" 2>&1 || {
	cat "$TMP/install.log" >&2
	fail "the package does not install"
}

REHOMED=$(dpkg -L rehome | grep '/s\?bin/rehomed$')
UNITDIR=$(dirname "$(dpkg -L rehome | grep '/rehomed\.service$')")

step "rehomed -t -c /etc/rehome/rehome.conf"
"$REHOMED" -t -c /etc/rehome/rehome.conf

step "the installed conf with its policy line on (no REHOME_LUADIR)"
grep -q '^#policy ' /etc/rehome/rehome.conf ||
	grep -q '^policy ' /etc/rehome/rehome.conf ||
	fail "/etc/rehome/rehome.conf has no policy line"
sed 's/^#policy /policy /' /etc/rehome/rehome.conf >"$TMP/policy.conf"
env -u REHOME_LUADIR "$REHOMED" -t -c "$TMP/policy.conf"
for policy in $(dpkg -L rehome | grep '/policies/.*\.lua$' |
		grep -v '_spec\.lua$'); do
	sed "s|^#\?policy .*|policy $policy|" /etc/rehome/rehome.conf \
		>"$TMP/each.conf"
	env -u REHOME_LUADIR "$REHOMED" -t -c "$TMP/each.conf" \
		>/dev/null 2>"$TMP/each.err" || {
		cat "$TMP/each.err" >&2
		fail "$policy does not load"
	}
done

step "the testing kit: busted on the installed examples' specs"
KIT=$(dirname "$(dpkg -L rehome | grep '/testing/fake_rehome\.lua$')")
EXAMPLES=$(dirname "$(dpkg -L rehome |
	grep '/policies/examples/overload_spec\.lua$')")
(cd "$TMP" && lua5.4 /usr/bin/busted --lpath="$KIT/?.lua" "$EXAMPLES") \
	>"$TMP/kit.log" 2>&1 || {
	cat "$TMP/kit.log" >&2
	fail "the installed testing kit does not run the examples' specs"
}

step "systemd-analyze verify"
for unit in rehomed.service rehomed@.service; do
	[ -f "$UNITDIR/$unit" ] || fail "no $UNITDIR/$unit"
done
# a template is verified through an instance
cp "$UNITDIR/rehomed@.service" "$TMP/rehomed@node1.service"
# (a warning, such as an unknown key, does not change its exit status)
systemd-analyze verify "$UNITDIR/rehomed.service" \
	"$TMP/rehomed@node1.service" >"$TMP/verify.log" 2>&1 || {
	cat "$TMP/verify.log" >&2
	fail "systemd-analyze verify failed"
}
if grep 'rehomed' "$TMP/verify.log" >&2; then
	fail "systemd-analyze verify warns about the units"
fi

step "man pages, completion, user"
for page in rehomed.8 rehomectl.8 rehome.conf.5 rehome-policy.7; do
	man -w "${page##*.}" "${page%.*}" >/dev/null ||
		fail "no man page $page"
done
dpkg -L rehome | grep -q '/bash-completion/completions/rehomectl$' ||
	fail "no bash completion"
dpkg -L rehome | grep -q '/sysctl.d/60-rehome.conf$' ||
	fail "no sysctl.d file for udp_rcvbuf"
getent passwd rehome >/dev/null || fail "no system user rehome"
rehomectl --help >/dev/null || fail "rehomectl does not run"
