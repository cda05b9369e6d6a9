#!/bin/sh
# Installs every Debian 12 package rehome needs to build, run and test.
# The one list of dependencies: README and .ci/run both call this.
set -eu

BUILD="gcc pkg-config meson ninja-build libre-dev libuv1-dev libhiredis-dev liblua5.4-dev check"
RUN="redis-server"
TEST="sip-tester baresip lua5.4 python3 procps"
BENCH="kamailio"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $BUILD $RUN $TEST $BENCH
