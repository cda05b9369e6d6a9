#!/bin/sh
# Installs every Debian 12 package rehome needs to build, run and test, and
# to build its own Debian package (scripts/check-package.sh); with --bench
# also what the benchmarks compare against (Kamailio).
# The one list of dependencies: README, bench/ and .ci/run call this.
set -eu

BUILD="gcc pkg-config meson ninja-build libre-dev libuv1-dev libhiredis-dev liblua5.4-dev libssl-dev check libsystemd-dev"
RUN="redis-server"
PACKAGE="debhelper dpkg-dev fakeroot systemd bash-completion man-db"
# prometheus: its promtool lints /metrics and checks docs/prometheus/
TEST="redis-sentinel sip-tester baresip lua5.4 lua-busted python3 python3-redis python3-yaml procps rtpengine-daemon prometheus"
BENCH=""
[ "${1:-}" = "--bench" ] && BENCH="kamailio linux-perf"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q $BUILD $RUN $TEST $PACKAGE $BENCH
