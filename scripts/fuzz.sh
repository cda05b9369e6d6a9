#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan, in
# build-fuzz) and runs each for a while over a copy of its seed corpus:
#   scripts/fuzz.sh [-t SECONDS] [-m] [TARGET...]
# -t: seconds per target (default 30, the CI stage of test-all.sh);
# -m: merge what the run found into tests/fuzz/corpus/<target> (only the
#     inputs that add coverage; scripts/fuzz-long.sh does this).
# A crash, leak or an input taking over 30 s (a hang: inputs take
# milliseconds, but a loaded machine stalls ASan's quarantine recycling
# for seconds; the quarantine is kept small for that) fails the run; its
# input is kept as build-fuzz/fuzz-artifacts/<target>-<kind>-<sha1> (make
# it a corpus file or a unit test, tests/fuzz/README.md). One line per
# target goes to
# build-fuzz/fuzz-stats.txt: executions, corpus size, result.
# The targets that keep a node between inputs (sip, cluster, ctl) make
# libFuzzer's per-input leak check scan the whole heap every time, which
# costs them 90 % of their speed: they run without it, and what the run
# found is then replayed once with it.
set -eu
cd "$(dirname "$0")/.."

secs=30
merge=0
while getopts t:m opt; do
	case $opt in
	t) secs=$OPTARG ;;
	m) merge=1 ;;
	*) echo "usage: $0 [-t SECONDS] [-m] [TARGET...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=${*:-"bencode dialog_codec conf sip cluster ctl"}

build=build-fuzz
[ -f "$build/build.ninja" ] || CC=clang meson setup "$build" -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false
meson compile -C "$build"

mkdir -p "$build/fuzz-artifacts"
stats="$build/fuzz-stats.txt"
: > "$stats"
failed=0
for t in $targets; do
	seeds=tests/fuzz/corpus/$t
	work=$(mktemp -d)
	dict=
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	log="$build/fuzz-$t.log"
	case $t in
	sip|cluster|ctl) leaks=0 ;;
	*) leaks=1 ;;
	esac
	rc=0
	ASAN_OPTIONS=quarantine_size_mb=32 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	"$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=30 \
		-rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=3 $dict \
		-detect_leaks=$leaks \
		-artifact_prefix="$build/fuzz-artifacts/$t-" \
		"$work" "$seeds" > "$log" 2>&1 || rc=$?
	if [ "$rc" -eq 0 ] && [ "$leaks" -eq 0 ]; then
		"$build/tests/fuzz/fuzz_$t" -runs=0 -close_fd_mask=3 \
			-artifact_prefix="$build/fuzz-artifacts/$t-" \
			"$work" >> "$log" 2>&1 || rc=$?
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ "$rc" -eq 0 ]; then
		result=ok
	else
		result="FAILED (exit $rc, see $log)"
		failed=1
		grep -E "^(==[0-9]+==ERROR|SUMMARY|.*runtime error)" "$log" \
			| head -5 >&2 || true
	fi
	echo "$t: ${execs:-0} executions in ${secs} s," \
		"$(ls "$work" | wc -l) new inputs: $result" | tee -a "$stats"
	if [ "$merge" -eq 1 ] && [ "$rc" -eq 0 ]; then
		"$build/tests/fuzz/fuzz_$t" -merge=1 -close_fd_mask=3 \
			"$seeds" "$work" > "$build/fuzz-$t-merge.log" 2>&1
	fi
	rm -rf "$work"
done
exit $failed
