#!/bin/sh
# Builds rehome twice (plain, and with AddressSanitizer + UBSan) and runs
# the whole test suite (unit + integration) in both, then prints one line
# "N passed, M failed" over both builds; then builds the libFuzzer targets
# with clang and runs each for FUZZ_SECONDS (default 30), failing on any
# crash, leak or timeout (scripts/fuzz.sh).
set -eu
cd "$(dirname "$0")/.."

run_suite() {
	dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
	meson compile -C "$dir"
	meson test -C "$dir" --print-errorlogs
}

# meson writes one JSON object per test result into testlog.json
count() {
	grep -c "\"result\": \"$1\"" build/meson-logs/testlog.json \
		build-asan/meson-logs/testlog.json |
		awk -F: '{ n += $2 } END { print n + 0 }'
}

run_suite build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
echo "$(count OK) passed, $(count FAIL) failed"
./scripts/fuzz.sh -t "${FUZZ_SECONDS:-30}"
