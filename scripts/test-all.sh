#!/bin/sh
# Builds rehome twice (plain, and with AddressSanitizer + UBSan) and runs
# the whole test suite (unit + integration) in both builds.
set -eu
cd "$(dirname "$0")/.."

run_suite() {
	dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
	meson compile -C "$dir"
	meson test -C "$dir" --print-errorlogs
}

run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
