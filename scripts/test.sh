#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# test.sh - build natt-gw three ways and run the meson test suites on each:
#   build       release, -Werror                      all suites
#   build-asan  debug, ASan + UBSan                   all suites
#   build-fuzz  clang, -Dfuzz=true (if libFuzzer)     suite fuzz
# The last line printed is "N passed, N failed" summed over every run; a build
# that fails counts as 1 failed. Exit status is non-zero if anything failed.
#
# Knobs: TEST_SUITES="unit vectors" limits the suites, SKIP_ASAN=1, SKIP_FUZZ=1.
set -uo pipefail # no -e: keep going after a failure and report the total

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1

passed=0 failed=0 skipped=0
suites=${TEST_SUITES:-}
read -r -a suites <<<"${suites//,/ }"

finish() {
	((skipped == 0)) || echo "($skipped skipped)"
	echo "$passed passed, $failed failed"
	((failed == 0))
	exit
}

# setup_build DIR [meson options...]: configure (or reconfigure) and compile.
setup_build() {
	local dir=$1
	shift
	echo "=== build $dir: $*"
	if [[ -f $dir/build.ninja ]]; then
		meson configure "$dir" "$@" || return 1
	elif [[ -d $dir/meson-private ]]; then # a setup that failed half-way
		meson setup --wipe "$dir" "$@" || return 1
	else
		meson setup "$dir" "$@" || return 1
	fi
	ninja -C "$dir"
}

# count KEY LOG: N from the last "KEY: N" of meson's summary in LOG, else 0.
# Summary keys: Ok, Expected Fail, Fail, Unexpected Pass, Skipped, Timeout.
count() {
	sed -e 's/Expected Fail:/XFAIL:/g' -e 's/Unexpected Pass:/XPASS:/g' "$2" |
		grep -oE "(^|[[:space:]])$1:[[:space:]]+[0-9]+" | tail -n1 |
		grep -oE '[0-9]+$' || echo 0
}

# run_tests DIR [meson test args...]: run the tests and add up the summary.
run_tests() {
	local dir=$1 log rc ok bad skip
	shift
	log=$dir/test-summary.log
	echo "=== test $dir"
	meson test -C "$dir" --print-errorlogs --num-processes 1 "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	ok=$(($(count Ok "$log") + $(count XFAIL "$log"))) # expected fails behaved
	bad=$(($(count Fail "$log") + $(count Timeout "$log") + $(count XPASS "$log")))
	skip=$(count Skipped "$log")
	# meson itself failed (no summary, bad suite name...): count it once.
	((rc == 0 || bad > 0)) || bad=1
	echo "=== $dir: $ok passed, $bad failed, $skip skipped"
	passed=$((passed + ok)) failed=$((failed + bad)) skipped=$((skipped + skip))
}

# build_and_test DIR "SUITE..." [meson options...]
build_and_test() {
	local dir=$1 s args=()
	read -r -a wanted <<<"$2"
	shift 2
	for s in "${wanted[@]}"; do args+=(--suite "$s"); done
	if setup_build "$dir" "$@"; then
		run_tests "$dir" "${args[@]}" "${meson_test_extra[@]}"
	else
		echo "=== $dir: build failed"
		failed=$((failed + 1))
	fi
}

if ! bash scripts/deps.sh; then
	failed=$((failed + 1))
	finish
fi
bash scripts/hugepages.sh || echo "test.sh: WARNING: no hugepages; tests that need them will fail"

meson_test_extra=()
build_and_test build "${suites[*]}" -Dbuildtype=release -Dwerror=true

if [[ ${SKIP_ASAN:-0} != 1 ]]; then
	# DPDK keeps allocations until exit, so leak checking is off for now;
	# the other ASan checks stay on and abort the test at the first error.
	export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:print_summary=1
	export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1
	meson_test_extra=(--timeout-multiplier 3)
	build_and_test build-asan "${suites[*]}" -Dbuildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false
fi

fuzz_wanted=1
if ((${#suites[@]})); then
	fuzz_wanted=0
	for s in "${suites[@]}"; do [[ $s == fuzz ]] && fuzz_wanted=1; done
fi
if [[ ${SKIP_FUZZ:-0} != 1 ]] && ((fuzz_wanted)); then
	if echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' |
		clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null; then
		meson_test_extra=(--timeout-multiplier 3)
		CC=clang build_and_test build-fuzz fuzz -Dbuildtype=debug -Dfuzz=true \
			-Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false
	else
		echo "=== build-fuzz: skipped (clang with libFuzzer not available)"
	fi
fi

finish
