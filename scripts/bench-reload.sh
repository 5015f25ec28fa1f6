#!/bin/bash
# bench-reload.sh - a configuration reload under full load: does it lose a packet of a
# tunnel it does not touch?
#
# 100,000 tunnels (scripts/gen-tunnels.py, anti-replay off because the capture loops,
# dataplane.rekey_grace = 3600 s so that the grace of rekeyed tunnels outlasts the run).
# Traffic: a capture with every tunnel exactly EACH times (400,000 frames, random order,
# AES-GCM-128, 106-byte frames) on net_pcap infinite_rx into the outside port, net_null
# out; one worker on lcore 1, natt-control (the daemon scripts/natt-gw keeps) on lcore 0.
# After PRE seconds the config file is replaced (new file renamed over it) by one that
# removes REMOVE tunnels, rekeys REKEY others (new inbound and outbound SPI and key; the
# capture keeps sending under the old inbound SPI, which the grace keeps) and adds ADD
# new ones; POST seconds later everything stops.
#
# Measured:
#   - the reload's duration (natt-control's log line: parse, apply)
#   - tx rate every 100 ms (DPDK telemetry /natt/stats, sampled by a separate process)
#     before, during (parse, apply) and after the reload
#   - loss: the dataplane writes its final counters (--stats-json) after its worker has
#     stopped, per tunnel included. net_pcap's infinite_rx hands out the capture in
#     order, round after round, so R frames received on the outside port means frame k
#     arrived R // N + (k < R % N) times; from the capture's SPI list that is exactly
#     how many packets each tunnel was sent. Zero loss of untouched (and of rekeyed)
#     tunnels = for every one of them in_packets == sent, and auth_failed = replay =
#     policy = 0; every no_sa drop is accounted for by removed tunnels (their packets
#     sent - delivered before the removal == no_sa), and there is no other drop reason.
#     The port's rte_eth stats (imissed, ierrors, rx_nombuf) are read via telemetry.
#
#   sudo NATT_HUGEPAGES=4096 bash scripts/hugepages.sh
#   sudo NATT_BUILD=/tmp/bench-bin bash scripts/bench-reload.sh
#
# Knobs: N (100000), ADD/REMOVE/REKEY (10000 each), EACH (4 frames per tunnel), PRE (6 s),
# POST (6 s), RUNS (3), GRACE (3600), MAXT (131072), WORK (/tmp/natt-bench-scale),
# PERF=1 (perf record the dataplane from the file change to the reload's log line),
# NATT_BUILD (default build/, copied to $WORK/bin-reload).
# Output: markdown on stdout; logs under $WORK/logs/reload_r<run>*.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/natt-bench-scale}
BUILD=${NATT_BUILD:-$ROOT/build}
N=${N:-100000}
ADD=${ADD:-10000}
REMOVE=${REMOVE:-10000}
REKEY=${REKEY:-10000}
EACH=${EACH:-4}
PRE=${PRE:-6}
POST=${POST:-6}
RUNS=${RUNS:-3}
GRACE=${GRACE:-3600}
MAXT=${MAXT:-131072}
PY=/usr/bin/python3
HELP=$ROOT/scripts/bench_scale_pcaps.py
PREFIX=nbr-$$
BIN=$WORK/bin-reload
mkdir -p "$WORK"/{cfg,pcap,logs,live} "$BIN"/{dataplane,control}

log() { echo "[$(date +%T)] $*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

bash "$ROOT/scripts/hugepages.sh" >/dev/null || exit 1
# a meson build directory is brought up to date first (bench-lib.sh's natt_build_fresh)
[ ! -f "$BUILD/build.ninja" ] || ninja -C "$BUILD" dataplane/natt-dataplane control/natt-control > /dev/null || exit 1
[ -x "$BUILD/dataplane/natt-dataplane" ] && [ -x "$BUILD/control/natt-control" ] ||
	{ log "no binaries in $BUILD"; exit 1; }
cp "$BUILD/dataplane/natt-dataplane" "$BIN/dataplane/" && cp "$BUILD/control/natt-control" "$BIN/control/" || exit 1
log "binaries: $BUILD -> $BIN (natt-dataplane md5 $(md5sum < "$BIN/dataplane/natt-dataplane" | cut -c1-12), natt-control md5 $(md5sum < "$BIN/control/natt-control" | cut -c1-12))"

DP_PID='' CTL_PID='' SMP_PID=''
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
cleanup() {
	[ -n "$SMP_PID" ] && kill -TERM "$SMP_PID" 2>/dev/null
	[ -n "$CTL_PID" ] && kill -TERM "$CTL_PID" 2>/dev/null && wait "$CTL_PID" 2>/dev/null
	dp_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_line() {  # file regex timeout_s
	for _ in $(seq 1 $(($3 * 10))); do grep -qE "$2" "$1" && return 0; sleep 0.1; done
	return 1
}
ctl_eal=(-l 0 --proc-type=secondary --file-prefix "$PREFIX" --no-pci --log-level=lib.eal:error)

A=$WORK/cfg/reload_a_$N.cfg
B=$WORK/cfg/reload_b_$N.cfg
PLAN=$WORK/cfg/reload_plan_$N.json
PC=$WORK/pcap/reload_in_$N.pcap
if [ ! -s "$A" ] || [ ! -s "$PLAN" ]; then
	$PY "$HELP" cfg "$N" "$A" --seed 2 --replay-window 0 --rekey-grace "$GRACE" >&2 || exit 1
	$PY "$HELP" reload-plan "$A" "$B" "$PLAN" --add "$ADD" --remove "$REMOVE" --rekey "$REKEY" >&2 || exit 1
fi
if [ ! -s "$PC" ] || [ ! -s "$PC.idx" ]; then
	$PY "$HELP" inpcap "$A" "$PC" 0 --each "$EACH" >&2 || exit 1
	$PY "$HELP" verify-in "$PC" "$A" --sample 2000 >&2 || exit 1
fi
NF=$((N * EACH))

run() {  # r
	local r=$1 lg=$WORK/logs/reload_r$1 live=$WORK/live/natt.cfg t_rename ld0 ld1
	rm -f "$lg".* "$lg.stop"
	cp "$A" "$live"
	ld0=$(load1)
	# DPDK 22.11: a secondary attaching to a primary whose net_pcap devargs are exactly 75
	# characters long crashes (see bench-scale.sh); lengthen the path by a symlink
	local arg="net_pcap0,rx_pcap=$PC,infinite_rx=1"
	if [ ${#arg} = 75 ]; then
		ln -sf "$PC" "${PC%.pcap}_.pcap"; arg="net_pcap0,rx_pcap=${PC%.pcap}_.pcap,infinite_rx=1"
	fi
	"$BIN/dataplane/natt-dataplane" -l 0,1 --no-pci --vdev "$arg" \
		--vdev net_null0,no-rx=1 --base-virtaddr=0x200000000000 --file-prefix "$PREFIX" \
		--proc-type=primary -- --max-tunnels "$MAXT" --extra-mbufs $((NF + 8192)) \
		--stats-json "$lg.final.json" --stats-interval 1000 > "$lg.dp.log" 2>&1 &
	DP_PID=$!
	wait_line "$lg.dp.log" 'ready, waiting' 120 || { log "dataplane not up: $(tail -n 3 "$lg.dp.log")"; dp_stop; return 1; }
	# as scripts/natt-gw: natt-control --once, then the daemon that watches the file
	"$BIN/control/natt-control" "${ctl_eal[@]}" -- --config "$live" --once > "$lg.once.log" 2>&1 ||
		{ log "natt-control --once failed: $(tail -n 2 "$lg.once.log")"; dp_stop; return 1; }
	"$BIN/control/natt-control" "${ctl_eal[@]}" -- --config "$live" > "$lg.daemon.log" 2>&1 &
	CTL_PID=$!
	wait_line "$lg.daemon.log" 'natt-control: start: generation' 60 || log "daemon did not converge"
	$PY "$HELP" sample "$PREFIX" "$lg.samples.jsonl" --interval 0.1 --until-file "$lg.stop" &
	SMP_PID=$!
	sleep "$PRE"
	local pf=''
	if [ "${PERF:-0}" = 1 ]; then   # where the dataplane's time goes during the reload
		perf record -e cpu-clock -F 4999 -g -p "$DP_PID" -o "$lg.perf" > /dev/null 2>&1 &
		pf=$!
	fi
	cp "$B" "$WORK/live/.natt.cfg.new" && mv -f "$WORK/live/.natt.cfg.new" "$live"
	t_rename=$(date +%s.%N)
	wait_line "$lg.daemon.log" 'natt-control: reload generation' 120 || log "reload not seen in 120 s"
	if [ -n "$pf" ]; then
		kill -INT "$pf"; wait "$pf"
		perf report -i "$lg.perf" --no-children --sort comm,dso,sym -g none --stdio 2>/dev/null |
			grep -v -e '^#' -e '^$' | grep '%' | head -40 > "$lg.perf.txt"
		log "perf profile of the dataplane from the rename to the reload line: $lg.perf.txt"
	fi
	sleep "$POST"
	$PY "$HELP" tel "$PREFIX" /ethdev/stats,0 /ethdev/stats,1 > "$lg.ethdev.json" 2>&1
	touch "$lg.stop"; wait "$SMP_PID"; SMP_PID=''
	kill -TERM "$CTL_PID"; wait "$CTL_PID" 2>/dev/null; CTL_PID=''
	dp_stop
	ld1=$(load1)
	echo
	echo "### Run $r (load average 1-min: $ld0 at the start, $ld1 at the end)"
	echo
	grep -h 'natt-control: \(start\|reload\)' "$lg.once.log" "$lg.daemon.log" | sed 's/^/    /'
	echo
	$PY "$HELP" reload-report "$lg.samples.jsonl" "$t_rename"
	echo
	$PY "$HELP" account "$lg.final.json" "$PC" "$A" "$PLAN" --ethdev "$lg.ethdev.json" > "$lg.account.json"
	echo "zero loss of untouched tunnels: $([ $? = 0 ] && echo YES || echo NO) (details: $lg.account.json)"
	$PY - "$lg.account.json" <<'EOP'
import json, sys
a = json.load(open(sys.argv[1]))
print()
print("| tunnels | count | with traffic | packets sent to them (from rx count and capture) | delivered (per-tunnel in_packets) | lost | auth_failed+replay+policy |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for g in ("untouched", "rekeyed"):
    x = a[g]
    print("| %s | %d | %d | %d | %d | %d | %d |" % (g, x["tunnels"], x["tunnels_with_traffic"],
          x["received"], x["delivered"], x["lost"], x["auth_replay_policy"]))
x = a["removed"]
print("| removed | %d | %d | %d | %d before removal (= tx - others), then no_sa %d | sent - delivered - no_sa = %d | - |"
      % (x["tunnels"], x["tunnels"], x["received"], x["delivered_before_removal"], x["dropped_no_sa"],
         x["received_minus_delivered_minus_no_sa"]))
print()
e = a.get("ethdev")
p0 = e[0].get("/ethdev/stats") or {} if isinstance(e, list) and e else {}
print("outside port: rx %d frames (%.3f rounds of the %d-frame capture); drops by reason: %s; "
      "added tunnels delivered %d; rte_eth stats of port 0 at the end: %s" % (
          a["rx_outside"], a["rounds"], a["capture_frames"], a["drops"] or "none",
          a["added_delivered"],
          {k: p0.get(k) for k in ("ipackets", "imissed", "ierrors", "rx_nombuf")} if p0 else "n/a"))
EOP
}

echo "## Reload under load: $N tunnels, remove $REMOVE, rekey $REKEY, add $ADD (rekey_grace $GRACE s)"
for r in $(seq 1 "$RUNS"); do
	log "reload run $r"
	run "$r"
done
log "logs: $WORK/logs/reload_r*"
