#!/bin/bash
# bench-scale.sh - natt-gw with up to 1,000,000 tunnels on one worker core:
#   load   configuration load time (parse+validate, apply) of 0 / 10k / 100k / 1M tunnels,
#          a no-change reload (SIGHUP) and a natt-control restart with nothing to change,
#          hugepage memory of the dataplane and natt-control's peak RSS
#   sizes  what the memory consists of: struct sizes and DPDK table footprints measured
#          by a tiny C program compiled against the tree's headers and DPDK
#   fwd    forwarding rate, inbound (AES-GCM-128, 106-byte frames) and outbound (42-byte
#          clear frames -> 106-byte ESP frames), traffic for 1 tunnel vs spread uniformly
#          at random over 10k / 100k / 1M tunnels
#
#   sudo NATT_HUGEPAGES=4096 bash scripts/hugepages.sh
#   sudo NATT_BUILD=/tmp/bench-bin bash scripts/bench-scale.sh            # everything
#   PARTS="load" LOAD_SIZES="10000" LOAD_RUNS=1 bash scripts/bench-scale.sh  # smoke
#
# Knobs: PARTS ("load sizes fwd"), LOAD_SIZES ("0 10000 100000 1000000"), LOAD_RUNS (3),
# FWD_SIZES ("1s 1 10000 100000 1000000"; 1s = 1 tunnel with a NPKTS_SMALL = 4096-frame
# capture as in bench-inbound.sh, the others NPKTS = 262144 frames), FWD_DIRS ("in out"),
# RUNS (5), SECS (10), MAXT (--max-tunnels, 1000000), SKIP_VERIFY=1, FWD_PERF=1 (perf
# profile of the worker in run 1), PERF=1 (perf record both processes during one 1M
# load), QUIET_CORES (0.3: a run starts once the machine is below that many busy cores,
# or after QUIET_WAIT s, 1800), WORK (/tmp/natt-bench-scale). Binaries: NATT_BUILD
# (default build/), copied to $WORK/bin first so that a rebuild during the run changes
# nothing.
#
# Ports: net_null (no-rx) for the load part; net_pcap rx_pcap=...,infinite_rx=1 in and
# net_null out for fwd (anti-replay off: the capture loops). Lcores: -l 0,1 (main 0,
# worker 1); natt-control on lcore 0. Rate = tx packets per second of the dataplane's
# counters (telemetry /natt/stats) over SECS seconds after a 2 s warm-up; median of RUNS
# runs, each a fresh dataplane. Every result line carries the 1-minute load average
# taken just before it. Output: markdown tables on stdout, logs under $WORK/logs.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/natt-bench-scale}
BUILD=${NATT_BUILD:-$ROOT/build}
PARTS=${PARTS:-"load sizes fwd"}
LOAD_SIZES=${LOAD_SIZES:-"0 10000 100000 1000000"}
LOAD_RUNS=${LOAD_RUNS:-3}
FWD_SIZES=${FWD_SIZES:-"1s 1 10000 100000 1000000"}
FWD_DIRS=${FWD_DIRS:-"in out"}
RUNS=${RUNS:-5}
SECS=${SECS:-10}
NPKTS=${NPKTS:-262144}
NPKTS_SMALL=${NPKTS_SMALL:-4096}   # size "1s": 1 tunnel, bench-inbound.sh's capture size
MAXT=${MAXT:-1000000}
QUIET_CORES=${QUIET_CORES:-0.3}
QUIET_WAIT=${QUIET_WAIT:-1800}
PY=/usr/bin/python3
HELP=$ROOT/scripts/bench_scale_pcaps.py
PREFIX=nbs-$$
BIN=$WORK/bin
mkdir -p "$WORK"/{cfg,pcap,logs} "$BIN"/{dataplane,control}

log() { echo "[$(date +%T)] $*" >&2; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
pages() { local f n=0; for f in /dev/hugepages/"${PREFIX}"map_*; do [ -e "$f" ] && n=$((n + 1)); done; echo $n; }   # our 2 MB pages
hfree() { awk '/HugePages_Free/ {print $2}' /proc/meminfo; }

bash "$ROOT/scripts/hugepages.sh" >/dev/null || exit 1
# a meson build directory is brought up to date first (bench-lib.sh's natt_build_fresh)
[ ! -f "$BUILD/build.ninja" ] || ninja -C "$BUILD" dataplane/natt-dataplane control/natt-control > /dev/null || exit 1
[ -x "$BUILD/dataplane/natt-dataplane" ] && [ -x "$BUILD/control/natt-control" ] ||
	{ log "no binaries in $BUILD (meson setup build && ninja -C build)"; exit 1; }
if [ "$(cd "$BUILD" && pwd)" != "$(cd "$BIN" && pwd)" ]; then
	cp "$BUILD/dataplane/natt-dataplane" "$BIN/dataplane/" &&
	cp "$BUILD/control/natt-control" "$BIN/control/" || exit 1
fi
log "binaries: $BUILD -> $BIN (natt-dataplane md5 $(md5sum < "$BIN/dataplane/natt-dataplane" | cut -c1-12), natt-control md5 $(md5sum < "$BIN/control/natt-control" | cut -c1-12)); repo HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"

# ------------------------------------------------------------ processes
DP_PID='' CTL_PID=''
cleanup() {
	[ -n "$CTL_PID" ] && kill -TERM "$CTL_PID" 2>/dev/null && wait "$CTL_PID" 2>/dev/null
	dp_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dp_start() {  # LOG "dataplane opts" EAL args...
	local lg=$1 dpo=$2; shift 2
	: > "$lg"
	# shellcheck disable=SC2086
	"$BIN/dataplane/natt-dataplane" -l 0,1 --no-pci "$@" --base-virtaddr=0x200000000000 \
		--file-prefix "$PREFIX" --proc-type=primary -- $dpo > "$lg" 2>&1 &
	DP_PID=$!
	for _ in $(seq 1 1200); do
		grep -q 'ready, waiting' "$lg" && return 0
		if ! kill -0 "$DP_PID" 2>/dev/null; then
			log "natt-dataplane exited: $(tail -n 3 "$lg" | tr '\n' ' ')"; wait "$DP_PID"; DP_PID=''; return 1
		fi
		sleep 0.1
	done
	log "natt-dataplane not ready after 120 s"; return 1
}
dp_stop() {
	[ -n "$DP_PID" ] || return 0
	kill -TERM "$DP_PID" 2>/dev/null
	for _ in $(seq 1 600); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$DP_PID" 2>/dev/null && { kill -KILL "$DP_PID"; log "had to SIGKILL natt-dataplane"; }
	wait "$DP_PID" 2>/dev/null
	DP_PID=''
	rm -f /dev/hugepages/"${PREFIX}"map_* 2>/dev/null
	rm -rf /var/run/dpdk/"$PREFIX"
}
ctl_eal=(-l 0 --proc-type=secondary --file-prefix "$PREFIX" --no-pci --log-level=lib.eal:error)
ctl() { "$BIN/control/natt-control" "${ctl_eal[@]}" -- "$@"; }

# "natt-control: start: generation 1 applied on 1 worker(s) in X ms (parse P ms, apply A ms; ..."
# -> "total parse apply"
applied() { grep -E "natt-control: ($2) generation" "$1" | tail -n 1 |
	sed -E 's/.* in ([0-9.]+) ms \(parse ([0-9.]+) ms, apply ([0-9.]+) ms.*/\1 \2 \3/'; }
wait_line() {  # file regex timeout_s
	for _ in $(seq 1 $(($3 * 10))); do grep -qE "$2" "$1" && return 0; sleep 0.1; done
	return 1
}

# ------------------------------------------------------------ quiet machine
cpu_sample() { head -1 /proc/stat | awk '{b=$2+$3+$4+$7+$8+$9; print b, b+$5+$6}'; }
wait_quiet() {  # no run of ours is going on here: wait for < QUIET_CORES cores busy
	local t=0 a b busy
	while :; do
		a=$(cpu_sample); sleep 1; b=$(cpu_sample)
		busy=$(echo "$a $b" | awk -v n="$(nproc)" '{printf "%.2f", n * ($3 - $1) / ($4 - $2 + 0.0001)}')
		[ "$(echo "$busy < $QUIET_CORES" | bc -l)" = 1 ] && return 0
		[ $t -ge "$QUIET_WAIT" ] && { log "machine still busy ($busy cores) after ${QUIET_WAIT}s, going on"; return 1; }
		[ $((t % 120)) = 0 ] && log "machine busy ($busy cores, load $(load1)), waiting"
		sleep 4; t=$((t + 5))
	done
}

# ------------------------------------------------------------ configs and captures
cfg_for() {  # N kind(load|fwd) -> path; load: gen-tunnels.py defaults (replay window 1024)
	local n=$1 k=$2 f
	f=$WORK/cfg/${k}_$n.cfg
	if [ ! -s "$f" ]; then
		if [ "$k" = load ]; then
			$PY "$HELP" cfg "$n" "$f" --seed 1 >&2 || exit 1
		else
			$PY "$HELP" cfg "$n" "$f" --seed 1 --replay-window 0 >&2 || exit 1
		fi
	fi
	echo "$f"
}

# ------------------------------------------------------------ part 1+2: load and memory
LOAD_LINE=''
# N run -> LOAD_LINE (not echoed: no subshell, DP_PID must stay visible to cleanup):
# "N run total parse apply | sighup: total parse apply | restart: total parse apply |
#  rss_once_kB rss_daemon_kB pages_before pages_after load1 hugepages_free_before
#  hugepages_free_after heap_alloc_before heap_alloc_after"
load_run() {
	local n=$1 r=$2 cfg lg p0 p1 a0 a1 hf0 hf1 once hup rst rss1 rss2 ld pf='' perf=()
	cfg=$(cfg_for "$n" load)
	lg=$WORK/logs/load_${n}_r$r
	wait_quiet; ld=$(load1); hf0=$(hfree)
	dp_start "$lg.dp.log" "--max-tunnels $MAXT" --vdev net_null0,no-rx=1 --vdev net_null1,no-rx=1 || return 1
	sleep 0.5; p0=$(pages); read -r a0 _ <<< "$($PY "$HELP" heap "$PREFIX")"
	if [ "${PERF:-0}" = 1 ] && [ "$n" = 1000000 ] && [ "$r" = 1 ]; then
		perf record -e cpu-clock -F 999 -g -p "$DP_PID" -o "$lg.dp.perf" > /dev/null 2>&1 &
		pf=$!
		perf=(perf record -e cpu-clock -F 999 -g -o "$lg.ctl.perf" --)
	fi
	/usr/bin/time -v -o "$lg.once.time" "${perf[@]}" "$BIN/control/natt-control" "${ctl_eal[@]}" -- \
		--config "$cfg" --once > "$lg.once.log" 2>&1 || { log "natt-control --once failed: $(tail -n 2 "$lg.once.log")"; dp_stop; return 1; }
	if [ -n "${pf:-}" ]; then
		kill -INT "$pf"; wait "$pf"
		perf report -i "$lg.dp.perf" --no-children --sort comm,dso,sym -g none --stdio 2>/dev/null | grep "%" | head -40 > "$lg.dp.perf.txt"
		perf report -i "$lg.ctl.perf" --no-children --sort comm,dso,sym -g none --stdio 2>/dev/null | grep "%" | head -40 > "$lg.ctl.perf.txt"
		log "perf profiles: $lg.dp.perf.txt $lg.ctl.perf.txt"
	fi
	p1=$(pages); hf1=$(hfree); read -r a1 _ <<< "$($PY "$HELP" heap "$PREFIX")"
	once=$(applied "$lg.once.log" start:)
	rss1=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$lg.once.time")
	# natt-control restarted: converges with nothing to change
	"$BIN/control/natt-control" "${ctl_eal[@]}" -- --config "$cfg" > "$lg.daemon.log" 2>&1 &
	CTL_PID=$!   # the process itself (not a subshell): it gets the SIGHUP
	wait_line "$lg.daemon.log" "natt-control: start: generation" 600 || log "daemon did not converge"
	rst=$(applied "$lg.daemon.log" start:)
	# no-change reload
	kill -HUP "$CTL_PID"
	wait_line "$lg.daemon.log" "natt-control: reload generation" 600 || log "SIGHUP reload not seen"
	hup=$(applied "$lg.daemon.log" reload)
	rss2=$(awk '/VmHWM/ {print $2}' /proc/"$CTL_PID"/status)
	kill -TERM "$CTL_PID"; wait "$CTL_PID" 2>/dev/null; CTL_PID=''
	dp_stop
	grep -h 'natt-control: \(start\|reload\)' "$lg.once.log" "$lg.daemon.log" >&2
	LOAD_LINE="$n $r ${once:-nan nan nan} ${hup:-nan nan nan} ${rst:-nan nan nan} ${rss1:-nan} ${rss2:-nan} $p0 $p1 $ld $hf0 $hf1 ${a0:-0} ${a1:-0}"
}

part_load() {
	local n r res=$WORK/logs/load_results.txt
	: > "$res"
	for n in $LOAD_SIZES; do cfg_for "$n" load > /dev/null; done
	for r in $(seq 1 "$LOAD_RUNS"); do
		for n in $LOAD_SIZES; do
			log "load: $n tunnels, run $r"
			LOAD_LINE="$n $r failed"
			load_run "$n" "$r"
			echo "$LOAD_LINE" >> "$res"; echo "$LOAD_LINE" >&2
		done
	done
	echo
	echo "Load time, dataplane started with --max-tunnels $MAXT, median of $LOAD_RUNS runs (ms), [min-max] for parse and apply"
	echo
	echo "| tunnels | first apply: parse+validate | apply | total | no-change reload (SIGHUP): total | of it apply | natt-control restart, nothing to change: total | of it apply |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	col() { awk -v c="$1" '{print $c}' "$WORK/logs/.l" | median; }
	rng() { awk -v c="$1" '{print $c}' "$WORK/logs/.l" | sort -g | sed -n '1p;$p' | tr '\n' '-' | sed 's/-$//'; }
	for n in $LOAD_SIZES; do
		awk -v n="$n" '$1 == n' "$res" > "$WORK/logs/.l"
		printf "| %s | %s [%s] | %s [%s] | %s | %s | %s | %s | %s |\n" "$n" "$(col 4)" "$(rng 4)" "$(col 5)" "$(rng 5)" \
			"$(col 3)" "$(col 6)" "$(col 8)" "$(col 9)" "$(col 11)"
	done
	echo
	echo "loads (1-min) at the start of each run: $(awk '{printf "%s:r%s=%s ", $1, $2, $16}' "$res")"
	echo
	echo "Memory (2 MB hugepage files of the dataplane's --file-prefix; natt-control peak RSS)"
	echo
	echo "| tunnels | dataplane hugepages, started | with the config applied | per tunnel, all of it (KB) | DPDK heap allocated, started (MB) | with the config (MB) | added per tunnel (B) | HugePages_Free before start / after apply (whole machine) | natt-control --once VmHWM (MB) | natt-control daemon VmHWM after restart + SIGHUP (MB) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for n in $LOAD_SIZES; do
		awk -v n="$n" '$1 == n && $2 == 1 {
			printf "| %s | %d pages (%d MB) | %d pages (%d MB) | %s | %.1f | %.1f | %s | %s / %s | %.0f | %.0f |\n", n, $14, $14 * 2, $15, $15 * 2,
				(n ? sprintf("%.2f", $15 * 2048 / n) : "-"), $19 / 1048576, $20 / 1048576,
				(n ? sprintf("%.0f", ($20 - $19) / n) : "-"), $17, $18, $12 / 1024, $13 / 1024}' "$res"
	done
	echo
	echo "(results per run: $res; columns: tunnels run total parse apply | SIGHUP total parse apply | restart total parse apply | rss_once_kB rss_daemon_kB pages_before pages_after load1 hugepages_free_before hugepages_free_after heap_alloc_before heap_alloc_after)"
}

# ------------------------------------------------------------ part 2b: struct and table sizes
part_sizes() {
	local src=$WORK/sizes.c exe=$WORK/sizes
	cat > "$src" <<'EOC'
/* sizes.c (written by scripts/bench-scale.sh): what natt-dataplane allocates per tunnel
 * and per worker, measured: struct sizes from the tree's headers, DPDK table footprints
 * from the malloc heap's allocated bytes before/after creating each table exactly as
 * dataplane/sa_table.c and main.c do. */
#include <stdio.h>
#include <stdlib.h>
#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_fib.h>
#include <rte_rib.h>
#include <rte_mbuf.h>
#include "sa.h"
#include "worker.h"
#include "natt_journal.h"

static size_t heap(void)
{
	struct rte_malloc_socket_stats s;
	rte_malloc_get_socket_stats(0, &s);
	return s.heap_allocsz_bytes;
}

int main(int argc, char **argv)
{
	int k = rte_eal_init(argc, argv);
	uint32_t n = (uint32_t)atoi(argv[k + 1]);
	size_t h0, h1;
	char name[32];

	if (k < 0) return 1;
	printf("sizeof natt_sa %zu (without window %zu), natt_gcm_key %zu (gcm_key_data %zu), "
	       "replay_window(0) %zu, replay_window(1024) %zu\n", sizeof(struct natt_sa),
	       offsetof(struct natt_sa, rw), sizeof(struct natt_gcm_key), sizeof(struct gcm_key_data),
	       replay_window_size(0), replay_window_size(1024));
	printf("sizeof natt_tunnel_stats %zu, natt_journal_tunnel %zu, natt_out_slot %zu, "
	       "natt_retire %zu, natt_worker %zu, natt_ctl_msg %zu\n",
	       sizeof(struct natt_tunnel_stats), sizeof(struct natt_journal_tunnel),
	       sizeof(struct natt_out_slot), sizeof(struct natt_retire), sizeof(struct natt_worker),
	       sizeof(struct natt_ctl_msg));
	/* one SA as sa_create() allocates it: rte_zmalloc, cache-line aligned */
	for (int w = 0; w <= 1024; w += 1024) {
		size_t sz = offsetof(struct natt_sa, rw) + replay_window_size(w);
		h0 = heap();
		for (int i = 0; i < 10000; i++)
			if (!rte_zmalloc_socket("natt_sa", sz, RTE_CACHE_LINE_SIZE, 0)) return 1;
		printf("SA window %d: %zu B asked, %.1f B of heap each\n", w, sz, (heap() - h0) / 10000.0);
	}
	/* sa_in / sa_out: table_create() */
	{
		struct rte_hash_parameters p = { .name = name, .entries = 2 * (n < 64 ? 64 : n),
			.key_len = sizeof(uint32_t), .hash_func = rte_hash_crc, .socket_id = 0,
			.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE };
		struct rte_hash *h;
		snprintf(name, sizeof(name), "sz_sa");
		h0 = heap();
		h = rte_hash_create(&p);
		h1 = heap();
		if (!h) return 1;
		for (uint32_t i = 1; i <= n; i++)
			if (rte_hash_add_key_data(h, &i, (void *)(uintptr_t)i) < 0) return 1;
		printf("rte_hash %u entries (ext table): %zu B = %.1f B per max_tunnel; adding %u keys: +%zu B\n",
		       p.entries, h1 - h0, (double)(h1 - h0) / n, n, heap() - h1);
	}
	/* fib_create(); rte_fib_create() makes a RIB of 2 * max_routes nodes */
	{
		uint32_t tbl8s = n / 8 < 1024 ? 1024 : n / 8;
		struct rte_fib_conf c = { .type = RTE_FIB_DIR24_8, .default_nh = NATT_FIB_NONE,
			.max_routes = (int)natt_max_routes(n),
			.dir24_8 = { .nh_sz = RTE_FIB_DIR24_8_4B,
				     .num_tbl8 = tbl8s > 65536 ? 65536 : tbl8s } };
		struct rte_rib_conf rc = { .ext_sz = 0, .max_nodes = 2 * c.max_routes };
		struct rte_fib *f;
		struct rte_rib *rib;
		h0 = heap();
		rib = rte_rib_create("sz_rib", 0, &rc);
		h1 = heap();
		if (!rib) return 1;
		printf("  of which rte_rib with %d nodes: %zu B (%.1f B per node)\n", rc.max_nodes,
		       h1 - h0, (double)(h1 - h0) / rc.max_nodes);
		rte_rib_free(rib);
		h0 = heap();
		f = rte_fib_create("sz_fib", 0, &c);
		h1 = heap();
		if (!f) return 1;
		for (uint32_t i = 0; i < n; i++)
			if (rte_fib_add(f, (10u << 24 | 64u << 16) + i, 32, i)) return 1;
		printf("rte_fib DIR24_8 max_routes %d, %u tbl8 groups: %zu B = %.1f B per max_tunnel; "
		       "adding %u /32s: +%zu B\n", c.max_routes, c.dir24_8.num_tbl8, h1 - h0,
		       (double)(h1 - h0) / n, n, heap() - h1);
	}
	/* main.c's mbuf pool, per mbuf */
	{
		struct rte_mempool *mp;
		h0 = heap();
		mp = rte_pktmbuf_pool_create("sz_mb", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
		if (!mp) return 1;
		printf("mbuf: %.1f B of heap each (RTE_MBUF_DEFAULT_BUF_SIZE %d)\n",
		       (heap() - h0) / 16383.0, RTE_MBUF_DEFAULT_BUF_SIZE);
	}
	return 0;
}
EOC
	# shellcheck disable=SC2046
	cc -O2 -o "$exe" "$src" -I"$ROOT/dataplane" -I"$ROOT/dataplane/include" \
		$(pkg-config --cflags libdpdk) $(pkg-config --libs libdpdk) -lIPSec_MB 2> "$WORK/logs/sizes_build.log" ||
		{ log "sizes.c did not build: $(head -5 "$WORK/logs/sizes_build.log")"; return 1; }
	echo
	echo "Sizes (tree $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), headers as in the working tree), for max_tunnels $MAXT:"
	echo
	echo '```'
	"$exe" -l 0 --huge-unlink --no-pci --file-prefix "$PREFIX-sz" --log-level=lib.eal:error -- "$MAXT" 2>&1 | grep -v -e '^EAL' -e '^TELEMETRY'
	rm -f /dev/hugepages/"$PREFIX"-szmap_* 2>/dev/null; rm -rf /var/run/dpdk/"$PREFIX"-sz
	echo '```'
}

# ------------------------------------------------------------ part 3: forwarding
verify_fwd() {  # dir N cfg pcap: play the capture once, capture the gateway's output, check it
	local d=$1 n=$2 cfg=$3 pc=$4 lg out
	lg=$WORK/logs/verify_${d}_$n out=$WORK/logs/verify_${d}_$n.pcap; rm -f "$out"
	[ -s "$WORK/pcap/empty.pcap" ] || $PY -c "import struct,sys; open(sys.argv[1],'wb').write(struct.pack('<IHHiIII',0xa1b2c3d4,2,4,0,0,65535,1))" "$WORK/pcap/empty.pcap"
	if [ "$d" = in ]; then
		$PY "$HELP" verify-in "$pc" "$cfg" --sample 2000 >&2 || return 1
		dp_start "$lg.dp.log" "--max-tunnels $MAXT --exit-after-idle 2000 --extra-mbufs 4096" \
			--vdev "net_pcap0,rx_pcap=$pc" --vdev "net_pcap1,rx_pcap=$WORK/pcap/empty.pcap,tx_pcap=$out" || return 1
	else
		dp_start "$lg.dp.log" "--max-tunnels $MAXT --exit-after-idle 2000 --extra-mbufs 4096" \
			--vdev "net_pcap0,rx_pcap=$WORK/pcap/empty.pcap,tx_pcap=$out" --vdev "net_pcap1,rx_pcap=$pc" || return 1
	fi
	ctl --config "$cfg" --once > "$lg.ctl.log" 2>&1 || { log "natt-control failed: $(tail -n 2 "$lg.ctl.log")"; dp_stop; return 1; }
	for _ in $(seq 1 1200); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
	dp_stop
	if [ "$d" = in ]; then
		$PY "$HELP" verify-gw-in "$out" "$pc" "$cfg" >&2
	else
		$PY "$HELP" verify-out "$out" "$pc" "$cfg" --sample 2000 >&2
	fi
}

FWD_LINE=''
fwd_run() {  # dir size run -> FWD_LINE="Mpps rx_Mpps drops per-second-samples load busy_cores"
	local d=$1 n=$2 r=$3 cfg pc lg ld v vdevs s0 s1 busy
	cfg=$(cfg_for "${n%s}" fwd); pc=$WORK/pcap/${d}_$n.pcap
	lg=$WORK/logs/fwd_${d}_${n}_r$r
	# DPDK 22.11: a secondary (natt-control) attaching to a primary whose net_pcap devargs
	# string is exactly 75 characters long crashes in rte_eal_init (strtol(NULL) in
	# net_pcap's kvargs handler; 74 and 76 are fine). Lengthen the path by a symlink.
	local arg="net_pcap0,rx_pcap=$pc,infinite_rx=1"
	if [ ${#arg} = 75 ]; then
		ln -sf "$pc" "${pc%.pcap}_.pcap"; arg="net_pcap0,rx_pcap=${pc%.pcap}_.pcap,infinite_rx=1"
	fi
	if [ "$d" = in ]; then
		# shellcheck disable=SC2054 # commas belong to the vdev arguments
		vdevs=(--vdev "$arg" --vdev net_null0,no-rx=1)
	else
		# shellcheck disable=SC2054
		vdevs=(--vdev net_null0,no-rx=1 --vdev "$arg")
	fi
	wait_quiet; ld=$(load1)
	dp_start "$lg.dp.log" "--max-tunnels $MAXT --extra-mbufs $(($(frames_of "$n") + 8192)) --stats-interval 1000" "${vdevs[@]}" || return 1
	ctl --config "$cfg" --once > "$lg.ctl.log" 2>&1 || { log "natt-control failed: $(tail -n 2 "$lg.ctl.log")"; dp_stop; return 1; }
	s0=$(cpu_sample)
	v=$($PY "$HELP" rate "$PREFIX" --warmup 2 --secs "$SECS")
	s1=$(cpu_sample)
	busy=$(echo "$s0 $s1" | awk -v n="$(nproc)" '{printf "%.2f", n * ($3 - $1) / ($4 - $2 + 0.0001)}')
	$PY "$HELP" tel "$PREFIX" /natt/stats /natt/drops /ethdev/stats,0 /ethdev/stats,1 > "$lg.tel.json" 2>&1
	if [ "${FWD_PERF:-0}" = 1 ] && [ "$r" = 1 ]; then   # where the worker's cycles go
		perf record -e cpu-clock -F 4999 -g -p "$DP_PID" -o "$lg.perf" -- sleep 3 > /dev/null 2>&1
		perf report -i "$lg.perf" --no-children --comm rte-worker-1 --sort dso,sym -g none --stdio 2>/dev/null |
			grep -v -e '^#' -e '^$' | grep '%' | head -30 > "$lg.perf.txt"
	fi
	dp_stop
	FWD_LINE="$v $ld $busy"
}
frames_of() { case $1 in *s) echo "$NPKTS_SMALL" ;; *) echo "$NPKTS" ;; esac; }

part_fwd() {
	local d n r res=$WORK/logs/fwd_results.txt cfg pc one
	: > "$res"
	for d in $FWD_DIRS; do for n in $FWD_SIZES; do
		cfg=$(cfg_for "${n%s}" fwd); pc=$WORK/pcap/${d}_$n.pcap
		one=(); [ "${n%s}" = 1 ] && one=(--one)
		[ -s "$pc" ] && [ -s "$pc.idx" ] || $PY "$HELP" ${d}pcap "$cfg" "$pc" "$(frames_of "$n")" "${one[@]}" >&2 || exit 1
		if [ "${SKIP_VERIFY:-0}" != 1 ]; then
			log "functional check: $d, $n tunnels"
			verify_fwd "$d" "$n" "$cfg" "$pc" || { log "VERIFY FAILED: $d $n"; [ "${FORCE:-0}" = 1 ] || exit 1; }
		fi
	done; done
	# runs of the sizes interleaved (the VM's speed drifts over minutes)
	for r in $(seq 1 "$RUNS"); do
		for d in $FWD_DIRS; do for n in $FWD_SIZES; do
			log "fwd: $d, $n tunnels, run $r"
			FWD_LINE="nan nan 0 - $(load1) nan"
			fwd_run "$d" "$n" "$r"
			echo "$d $n $r $FWD_LINE" >> "$res"; echo "$d $n $r $FWD_LINE" >&2
		done; done
	done
	HZ=$(awk '/^cpu MHz/ {print $4 * 1e6; exit}' /proc/cpuinfo)
	echo
	echo "Forwarding on one worker core, 106-byte outer frames (AES-GCM-128, inner IPv4 28 B), $NPKTS-frame captures looping, --max-tunnels $MAXT; Mpps = median of $RUNS runs of $SECS s [min-max]"
	echo
	echo "| direction | tunnels with traffic | capture (frames) | Mpps | cycles/pkt | vs 1 tunnel (same capture size) | drops in the runs | load avg (1-min) at each run's start | cores busy during each run |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	for d in $FWD_DIRS; do
		local base=''
		for n in $FWD_SIZES; do
			local m lo hi dr lds bz
			m=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n && $4 != "nan" {print $4}' "$res" | median)
			lo=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n && $4 != "nan" {print $4}' "$res" | sort -g | head -1)
			hi=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n && $4 != "nan" {print $4}' "$res" | sort -g | tail -1)
			[ "$m" = nan ] && { printf "| %s | %s | %s | failed (see %s) |\n" "$d" "${n%s}" "$(frames_of "$n")" "$res"; continue; }
			dr=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n {s += $6} END {print s + 0}' "$res")
			lds=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n {printf "%s ", $8}' "$res")
			bz=$(awk -v d="$d" -v n="$n" '$1 == d && $2 == n {printf "%s ", $9}' "$res")
			[ "$n" = 1 ] && base=$m
			printf "| %s | %s | %s | %.2f [%s-%s] | %.0f | %s | %s | %s| %s|\n" "$([ "$d" = in ] && echo inbound || echo outbound)" \
				"${n%s}" "$(frames_of "$n")" "$m" "$lo" "$hi" "$(echo "$HZ / ($m * 1000000)" | bc -l)" \
				"$( [ -n "$base" ] && [ "$n" != 1s ] && printf '%.2f' "$(echo "$m / $base" | bc -l)" || echo -)" "$dr" "$lds" "$bz"
		done
	done
	echo
	echo "(per run: $res; columns: dir tunnels run Mpps rx_Mpps drops per-second-Mpps load1 busy_cores)"
}

for p in $PARTS; do
	case $p in
	load) part_load ;;
	sizes) part_sizes ;;
	fwd) part_fwd ;;
	*) log "unknown part $p" ;;
	esac
done
log "logs: $WORK/logs"
