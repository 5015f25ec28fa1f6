# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
# bench-lib.sh - shell functions shared by the benchmark scripts (sourced, not run):
# a quiet machine before each run, timed runs that record how disturbed they were,
# retries, rate parsing, and the patched ipsec-secgw build.
#
# The sourcing script sets: ROOT, WORK, SHARED (../shared/bench), SECS, and optionally
# BUSY_MAX (cores the whole machine may use during a run; the gateway alone uses ~1.03),
# MIN_SHARE (of a core the worker thread must get), MAXTRY, QUIET_WAIT, RETRIES (log of
# every try), OTHERS_OK=1 (a run is disturbed only by the worker's share and BUSY_MAX,
# not by other processes merely running: for a machine that is never quiet), OURS (grep -e patterns of our own processes' command lines: their
# --file-prefix), and for `measured` one function per KIND: KIND_rate LOG -> Mpps, and
# optionally KIND_after NAME LOG (e.g. a check of the stats JSON).
BUSY_MAX=${BUSY_MAX:-1.3}
MIN_SHARE=${MIN_SHARE:-0.95}
MAXTRY=${MAXTRY:-5}
QUIET_WAIT=${QUIET_WAIT:-1800}
RETRIES=${RETRIES:-$WORK/logs/retries.txt}
OURS=${OURS:-"-e natt-bench-out -e natt-bench-secgw"}

log() { echo "[$(date +%T)] $*" >&2; }

# A meson build directory is brought up to date before its binaries are copied, so that
# what is measured is the tree; any other directory (a saved copy) is used as it is.
natt_build_fresh() {  # BUILD
	[ -f "$1/build.ninja" ] || return 0
	ninja -C "$1" dataplane/natt-dataplane control/natt-control > /dev/null 2>&1 ||
		{ log "ninja -C $1 failed: run it to see why"; return 1; }
}
# cycles per second for cycles/packet: the kernel's TSC rate ("cpu MHz"; an integer, bc
# cannot read awk's 2.59612e+09)
tsc_hz() { awk '/^cpu MHz/ {printf "%.0f\n", $4 * 1e6; exit}' /proc/cpuinfo; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# ------------------------------------------------------------ quiet machine
cpu_sample() { head -1 /proc/stat | awk '{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}'; }
cores_busy() {  # "busy0 tot0" "busy1 tot1" -> cores busy in between
	local a b
	read -ra a <<< "$1"; read -ra b <<< "$2"
	echo "$(nproc) * (${b[0]} - ${a[0]}) / (${b[1]} - ${a[1]} + 0.0001)" | bc -l | xargs printf '%.2f\n'
}
others() {  # processes that would disturb a measurement (ours carry our --file-prefix)
	local p
	# shellcheck disable=SC2086 # OURS is a list of grep arguments
	{ for p in natt-dataplane natt-control dpdk-testpmd ipsec-secgw ninja cc1 cc1plus lto1 ld meson; do
		pgrep -a -x "$p"; done
	  pgrep -af 'pytest|scripts/test\.sh|tests/|test_[a-z_]+\.py'; } 2>/dev/null |
		grep -v -e "^$$ " $OURS | sort -u
}
wait_quiet() {
	local t=0 o s0 s1 b
	while :; do
		o=$(others); s0=$(cpu_sample); sleep 1; s1=$(cpu_sample); b=$(cores_busy "$s0" "$s1")
		[ -z "$o" ] && [ "$(echo "$b < 0.25" | bc -l)" = 1 ] && return 0
		if [ $t -ge "$QUIET_WAIT" ]; then log "machine still busy after ${QUIET_WAIT}s, running anyway"; return 1; fi
		[ $((t % 300)) = 0 ] && log "machine busy ($b cores; $(echo "$o" | awk '{print $2}' | sort -u | tr '\n' ' ')), waiting"
		sleep 9; t=$((t + 10))
	done
}

thread_ticks() {  # pid -> "tid utime+stime" per thread
	local t
	for t in /proc/"$1"/task/*; do awk -v t="${t##*/}" '{print t, $14 + $15}' "$t/stat" 2>/dev/null; done
}
# run_for LOG cmd... : run SECS+3 s, then SIGTERM (a background job of a non-interactive
# shell starts with SIGINT ignored). Over the measured window [2 s, 2+SECS s]:
# RUN_BUSY = cores busy on the machine, RUN_SHARE = CPU share of the busiest thread of
# the gateway process (its worker; another poller on the same core halves it),
# RUN_OTHERS = disturbing processes seen during the run, RUN_PID = the process polled
# (natt-gw's natt-dataplane child, or the command itself). RUN_HOOK, if set, is run
# (with RUN_PID set) once the window has started, e.g. a profiler. RUN_READY, if set, is
# a command run with the log as argument until it succeeds (every 0.5 s, at most
# READY_WAIT s, 300) before the 2 s warm-up starts: a gateway that loads a million
# tunnels first is measured once it forwards, not while it loads.
RUN_BUSY=nan RUN_OTHERS="" RUN_SHARE=nan RUN_PID='' RUN_HOOK='' RUN_READY=''
run_for() {
	local lg=$1; shift
	"$@" > "$lg" 2>&1 &
	local pid=$! s0 s1 t0 t1 w0 w1 i
	if [ -n "$RUN_READY" ]; then
		for i in $(seq 1 $((2 * ${READY_WAIT:-300}))); do
			$RUN_READY "$lg" && break
			kill -0 $pid 2>/dev/null || break
			sleep 0.5
		done
	fi
	sleep 2; s0=$(cpu_sample)
	RUN_PID=$(pgrep -P $pid -x natt-dataplane | head -1); RUN_PID=${RUN_PID:-$pid}
	t0=$(thread_ticks "$RUN_PID"); w0=$(date +%s.%N)
	[ -n "$RUN_HOOK" ] && $RUN_HOOK
	sleep $((SECS / 2)); RUN_OTHERS=$(others)
	sleep $((SECS - SECS / 2)); s1=$(cpu_sample)
	t1=$(thread_ticks "$RUN_PID"); w1=$(date +%s.%N)
	RUN_BUSY=$(cores_busy "$s0" "$s1")
	RUN_SHARE=$(awk -v hz="$(getconf CLK_TCK)" -v dt="$(echo "$w1 - $w0" | bc -l)" \
		'NR == FNR {a[$1] = $2; next} ($1 in a) {d = ($2 - a[$1]) / hz / dt; if (d > m) m = d}
		 END {printf "%.2f\n", m}' <(echo "$t0") <(echo "$t1"))
	sleep 1
	kill -TERM $pid 2>/dev/null
	for _ in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
	kill -0 $pid 2>/dev/null && { kill -KILL $pid; log "had to SIGKILL $pid"; }
	wait $pid 2>/dev/null
	rm -f /dev/hugepages/natt-bench-secgwmap_* /dev/hugepages/nb-secgwmap_* /dev/hugepages/nb-iomap_* 2>/dev/null
}

# rates (Mpps) from the logs of the three programs, 2 warm-up samples skipped
natt_rate() {  # "rx N (X Mpps)  tx N (Y Mpps) ..." once a second: the mean tx rate
	# from the third sample after the first that forwarded (not the tunnel load)
	grep -o 'tx [0-9]* ([0-9.]* Mpps)' "$1" | awk '{gsub(/\(/,"",$3); print $3}' |
		awk 'f || $1 > 0 {f = 1; print}' |
		tail -n +3 | awk '{s += $1; n++} END {if (n) printf "%.3f\n", s / n; else print "nan"}'
}
natt_ready() { grep -q 'tx [0-9]* ([0-9.]*[1-9][0-9.]* Mpps)' "$1"; }  # it forwards
secgw_rate() { python3 "$SHARED/parse_stats.py" secgw "$1" 2 | awk '{print $1}'; }
testpmd_rate() { python3 "$SHARED/parse_stats.py" testpmd "$1" 2 | awk '{print $1}'; }

# measured KIND NAME cmd... -> echoes the rate (Mpps); retries disturbed runs. Logs go
# to $WORK/logs/NAME.log; every try is a line in $RETRIES; NAME.rate holds "Mpps
# disturbed(0|1) worker-share machine-busy-cores load1" of the run kept.
measured() {
	local kind=$1 name=$2 try v lg bad; shift 2
	for try in $(seq 1 "$MAXTRY"); do
		wait_quiet
		lg=$WORK/logs/$name.log
		RUN_READY=''
		declare -F "${kind}_ready" > /dev/null && RUN_READY=${kind}_ready
		run_for "$lg" "$@"
		v=$("${kind}_rate" "$lg")
		declare -F "${kind}_after" > /dev/null && "${kind}_after" "$name" "$lg"
		echo "$name try $try: $v Mpps, worker $RUN_SHARE of a core, machine busy $RUN_BUSY cores, load $(cut -d' ' -f1 /proc/loadavg)${RUN_OTHERS:+, others: $(echo "$RUN_OTHERS" | awk '{print $2}' | sort -u | tr '\n' ' ')}" >> "$RETRIES"
		bad=1
		if { [ "${OTHERS_OK:-0}" = 1 ] || [ -z "$RUN_OTHERS" ]; } &&
		   [ "$(echo "$RUN_BUSY <= $BUSY_MAX && $RUN_SHARE >= $MIN_SHARE" | bc -l)" = 1 ]; then
			bad=0; break
		fi
		log "$name: disturbed (worker $RUN_SHARE of a core, machine busy $RUN_BUSY cores${RUN_OTHERS:+, other processes ran}), retry $try"
		[ "$try" = "$MAXTRY" ] && { echo "$name: DISTURBED in all $MAXTRY tries, last one kept" >> "$RETRIES"; log "$name: kept a disturbed run"; }
	done
	echo "$v $bad $RUN_SHARE $RUN_BUSY $(cut -d' ' -f1 /proc/loadavg)" > "$WORK/logs/$name.rate"
	echo "$v"
}

# ------------------------------------------------------------ ipsec-secgw
build_secgw() {  # Debian's 22.11 example (dpdk-doc) + shared/bench/secgw-vdev-natt.patch
	[ -x "$WORK/secgw/build/ipsec-secgw" ] && return
	[ -d /usr/share/dpdk/examples/ipsec-secgw ] || { log "no /usr/share/dpdk/examples: apt-get install dpdk-doc"; exit 1; }
	log "building patched ipsec-secgw"
	rm -rf "$WORK/secgw" && cp -r /usr/share/dpdk/examples/ipsec-secgw "$WORK/secgw" &&
	(cd "$WORK/secgw" && patch -p1 < "$SHARED/secgw-vdev-natt.patch" >/dev/null &&
	 make -j2 > "$WORK/logs/secgw_build.log" 2>&1) || { log "secgw build failed"; exit 1; }
}
