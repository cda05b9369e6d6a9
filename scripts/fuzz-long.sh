#!/bin/sh
# A long fuzzing run: every target (or those named) for FUZZ_SECONDS each
# (default an hour), what adds coverage merged into tests/fuzz/corpus.
# Commit the corpus growth and record the run in tests/fuzz/README.md.
#   FUZZ_SECONDS=14400 scripts/fuzz-long.sh sip cluster
set -eu
exec "$(dirname "$0")/fuzz.sh" -t "${FUZZ_SECONDS:-3600}" -m "$@"
