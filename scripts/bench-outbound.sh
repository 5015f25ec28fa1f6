#!/bin/bash
# bench-outbound.sh - outbound NAT-T rate of natt-gw on one worker core (clear IPv4 in
# on the inside port -> ESP-in-UDP/4500 AES-GCM out on the outside port), side by side
# with DPDK's ipsec-secgw outbound (../shared/bench: patched for NAT-T with software
# crypto, the command line and SA/SP/RT config of shared/bench/run.sh) on the same
# clear pcap, port types and core, in the same invocation.
#
# Ports: net_pcap rx_pcap=clear_L<L>.pcap,infinite_rx=1 on the inside/protected port,
# net_null,no-rx=1 on the outside port (port 0 for both gateways). Worker on lcore 1
# (natt-gw: main lcore 0 + worker 1; ipsec-secgw: -l 1, as in run.sh). Rate = packets
# sent per second on the outside port, after a 2 s warm-up; median of RUNS runs, the
# runs of natt-gw and of each secgw configuration interleaved. The looping input just
# keeps raising the ESP sequence number (no replay issue outbound).
#
# Before measuring, each gateway's output is captured once (tx_pcap on the outside
# port, finite input) and decrypted with scapy (bench_pcaps_out.py verify). Before each
# run it waits for a quiet machine (no natt-dataplane, testpmd, secgw, ninja, compiler or
# test process; < 0.25 cores busy), and a run during which one of those processes
# appeared, the machine used more than BUSY_MAX cores or the worker thread got less than
# MIN_SHARE of its core is repeated, up to MAXTRY times (every try is logged).
#
#   sudo RUNS=5 SECS=10 bash scripts/bench-outbound.sh
#   RUNS=1 SECS=3 SIZES=434 ALGOS=128 bash scripts/bench-outbound.sh   # smoke
#   SKIP_NATT=1 ... / SKIP_SECGW=1 ... / SKIP_VERIFY=1 ...
#
# Output: a markdown table on stdout; logs under $WORK (default /tmp/natt-bench, shared
# with bench-inbound.sh: same secgw build; outbound files are named out_* / clear_*).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
WORK=${WORK:-/tmp/natt-bench}
RUNS=${RUNS:-5}
SECS=${SECS:-10}
N=${N:-4096}
SIZES=${SIZES:-"28 434 1342"}
ALGOS=${ALGOS:-"128 256"}
# secgw configurations tried per row (as in bench-inbound.sh); the best one is reported
SECGW_COMBOS=${SECGW_COMBOS:-"no-offload:crypto_aesni_mb0 cpu-crypto:crypto_aesni_gcm0"}
BUILD=${NATT_BUILD:-$ROOT/build}
PY=/usr/bin/python3
SPI=0x106        # outbound SPI (262) for both gateways
mkdir -p "$WORK"/{pcap,cfg,logs}
RETRIES=$WORK/logs/out_retries.txt
: > "$RETRIES"

# shellcheck source=bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"
frame_bytes() { echo $(( 74 + ( ($1 + 2 + 3) / 4 ) * 4 )); }   # eth+ip+udp+esp+iv+payload/pad+icv

bash "$ROOT/scripts/hugepages.sh" >/dev/null || exit 1
if [ "${SKIP_NATT:-0}" != 1 ]; then
	natt_build_fresh "$BUILD" || exit 1
	[ -x "$BUILD/dataplane/natt-dataplane" ] || { log "build first: meson setup build && ninja -C build"; exit 1; }
	# run a private copy of the binaries: a rebuild in $BUILD during the benchmark
	# must not change what is measured half-way
	mkdir -p "$WORK/natt-build/dataplane" "$WORK/natt-build/control"
	cp "$BUILD/dataplane/natt-dataplane" "$WORK/natt-build/dataplane/" &&
	cp "$BUILD/control/natt-control" "$WORK/natt-build/control/" || exit 1
	export NATT_BUILD=$WORK/natt-build
	log "natt-gw: $BUILD binaries (repo HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- dataplane control 2>/dev/null || echo ', dataplane/control modified'), natt-dataplane md5 $(md5sum < "$BUILD/dataplane/natt-dataplane" | cut -c1-12)) copied to $NATT_BUILD"
fi

for L in $SIZES; do
	[ -s "$WORK/pcap/clear_L$L.pcap" ] && [ -s "$WORK/pcap/empty.pcap" ] && continue
	log "generating clear pcaps (scapy)"
	$PY "$ROOT/scripts/bench_pcaps_out.py" gen "$WORK/pcap" "$N" "$(echo $SIZES | tr ' ' ,)" >&2 || exit 1
	break
done

# key||salt, hex: the keys of bench-inbound.sh's natt-gw config; the outbound one
# (deadbeef.. with d -> e) is also secgw's outbound key here
key_hex() {  # algo [in]
	local k=eeaebeefeeaebeefeeaebeefeeaebeef
	[ "${2:-}" = in ] && k=deadbeefdeadbeefdeadbeefdeadbeef
	[ "$1" = 256 ] && k=$k$k
	echo "${k}cafebabe"
}

write_natt_cfg() {  # algo: the inbound bench config (one tunnel; remote_ts covers the
	# inner destination 192.168.200.1, local_ts the inner source 192.168.100.1)
	cat > "$WORK/cfg/out_natt$1.cfg" <<EOC
dataplane = { replay_window = 0; };
interfaces = (
  { name = "outside"; port = 0; role = "outside"; address = "172.16.1.5"; next_hop_mac = "02:00:00:00:00:02"; mtu = 1500; },
  { name = "inside";  port = 1; role = "inside";  address = "192.168.100.254"; next_hop_mac = "02:00:00:00:01:02"; mtu = 1500; }
);
tunnels = (
  { name = "bench"; remote = "172.16.2.5"; remote_port = 4500; algorithm = "aes-gcm-$1"; esn = false;
    inbound  = { spi = 0x105; key = "$(key_hex "$1" in)"; };
    outbound = { spi = $SPI; key = "$(key_hex $1)"; };
    remote_ts = [ "192.168.200.0/24" ]; local_ts = [ "192.168.100.0/24" ]; }
);
EOC
}

write_secgw_cfg() {  # algo type: shared/bench/run.sh's outbound NAT-T config
	local k; k=$(key_hex $1 | sed 's/../&:/g; s/:$//')
	cat > "$WORK/cfg/out_secgw$1_$2.cfg" <<EOC
sa out $((SPI)) aead_algo aes-$1-gcm aead_key $k mode ipv4-tunnel src 172.16.1.5 dst 172.16.2.5 type $2 udp-encap
sp ipv4 out esp protect $((SPI)) pri 1 dst 192.168.200.0/24 sport 0:65535 dport 0:65535
rt ipv4 dst 172.16.2.5/32 port 0
EOC
}

natt_after() { natt_check "$WORK/logs/$1.json" >> "$2"; }
natt_check() {  # stats JSON -> one line: port tx counts and any drops (warnings to stderr)
	$PY - "$1" <<'EOP'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    print("natt_check: no stats json (%s)" % e); sys.exit(0)
p = {x["port"]: x for x in j["ports"]}
o, i = p.get(0, {}), p.get(1, {})   # port 0 = outside, 1 = inside (config)
d = {k: v for k, v in j["drops"].items() if v}
tx = j["counters"].get("tx_packets", 0)
line = ("natt_check: outside tx %d (%d B), inside rx %d tx %d, all tx %d, encrypted %s, drops %s"
        % (o.get("tx_packets", 0), o.get("tx_bytes", 0), i.get("rx_packets", 0),
           i.get("tx_packets", 0), tx, j["counters"].get("encrypted"), d or "none"))
print(line)
if d or not o.get("tx_packets") or i.get("tx_packets") or tx != o.get("tx_packets"):
    print("WARNING " + sys.argv[1] + ": " + line, file=sys.stderr)
EOP
}

natt_run() {  # algo L run -> Mpps
	local n=out_natt$1_L$2_r$3
	measured natt $n "$ROOT/scripts/natt-gw" --config "$WORK/cfg/out_natt$1.cfg" --file-prefix natt-bench-out \
		--stats-interval 1000 --stats-json "$WORK/logs/$n.json" -- -l 0,1 --no-pci \
		--vdev net_null0,no-rx=1 --vdev "net_pcap0,rx_pcap=$WORK/pcap/clear_L$2.pcap,infinite_rx=1"
}

# shared/bench/run.sh secgw_cmd for dir=out: port 0 = output, port 1 = net_pcap rx
# (protected), no -u, --config "(1,0,1)"
secgw_argv() {  # algo type cdev port0 port1 -> SECGW_ARGV
	SECGW_ARGV=("$WORK/secgw/build/ipsec-secgw" -l 1 -n 1 --file-prefix natt-bench-secgw --no-pci
		--vdev "$3" --vdev "$4" --vdev "$5" -- -p 0x3 -P -l -s 32768 --config "(1,0,1)"
		-f "$WORK/cfg/out_secgw$1_$2.cfg")
}
secgw_run() {  # algo L type cdev run -> Mpps
	secgw_argv "$1" "$3" "$4" net_null0,no-rx=1 "net_pcap1,rx_pcap=$WORK/pcap/clear_L$2.pcap,infinite_rx=1"
	measured secgw "out_secgw$1_L$2_$3_r$5" "${SECGW_ARGV[@]}" -t 1
}

# ------------------------------------------------------------ functional check
verify_all() {
	local a L c t cdev out ok=1 pid
	for a in $ALGOS; do for L in ${VERIFY_SIZES:-$SIZES}; do
		if [ "${SKIP_NATT:-0}" != 1 ]; then
			out=$WORK/logs/out_verify_natt${a}_L$L.pcap; rm -f "$out"
			timeout -s TERM 60 "$ROOT/scripts/natt-gw" --config "$WORK/cfg/out_natt$a.cfg" \
				--file-prefix natt-bench-out --exit-after-idle 1000 \
				--stats-json "$WORK/logs/out_verify_natt${a}_L$L.json" -- -l 0,1 --no-pci \
				--vdev "net_pcap0,rx_pcap=$WORK/pcap/empty.pcap,tx_pcap=$out" \
				--vdev "net_pcap1,rx_pcap=$WORK/pcap/clear_L$L.pcap" \
				> "$WORK/logs/out_verify_natt${a}_L$L.log" 2>&1
			printf 'natt-gw aes%s L%s: ' "$a" "$L" >&2
			$PY "$ROOT/scripts/bench_pcaps_out.py" verify "$out" "$L" "$N" "$(key_hex $a)" $SPI >&2 || ok=0
		fi
		[ "${SKIP_SECGW:-0}" = 1 ] && continue
		for c in $SECGW_COMBOS; do
			IFS=: read -r t cdev <<< "$c"
			out=$WORK/logs/out_verify_secgw${a}_L${L}_$t.pcap; rm -f "$out"
			secgw_argv "$a" "$t" "$cdev" "net_pcap0,tx_pcap=$out" "net_pcap1,rx_pcap=$WORK/pcap/clear_L$L.pcap"
			"${SECGW_ARGV[@]}" > "$WORK/logs/out_verify_secgw${a}_L${L}_$t.log" 2>&1 &
			pid=$!; sleep 3; kill -TERM $pid 2>/dev/null
			for _ in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
			kill -0 $pid 2>/dev/null && kill -KILL $pid
			wait $pid 2>/dev/null; rm -f /dev/hugepages/natt-bench-secgwmap_* 2>/dev/null
			printf 'secgw %s/%s aes%s L%s: ' "$t" "${cdev%0}" "$a" "$L" >&2
			$PY "$ROOT/scripts/bench_pcaps_out.py" verify "$out" "$L" "$N" "$(key_hex $a)" $SPI >&2 || ok=0
		done
	done; done
	return $((1 - ok))
}

[ "${SKIP_SECGW:-0}" = 1 ] || build_secgw
for a in $ALGOS; do
	write_natt_cfg $a
	for c in $SECGW_COMBOS; do write_secgw_cfg $a "${c%%:*}"; done
done
if [ "${SKIP_VERIFY:-0}" != 1 ]; then
	log "functional check: capture each gateway's output and decrypt it (scapy)"
	wait_quiet
	verify_all || { log "VERIFY FAILED (see above and $WORK/logs/out_verify_*)"; [ "${FORCE:-0}" = 1 ] || exit 1; }
fi
[ "${VERIFY_ONLY:-0}" = 1 ] && exit 0

echo "| algo | outer frame | natt-gw Mpps | Gbps (L2) | cycles/pkt | ipsec-secgw Mpps (best config) | ratio | ≥ 1.5x? |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
HZ=$(tsc_hz)
for a in $ALGOS; do
	for L in $SIZES; do
		fb=$(frame_bytes $L); nv=""; best=0; bestc="-"
		declare -A sv=()
		for r in $(seq 1 "$RUNS"); do
			[ "${SKIP_NATT:-0}" = 1 ] || nv="$nv $(natt_run $a $L $r)"
			[ "${SKIP_SECGW:-0}" = 1 ] && continue
			for c in $SECGW_COMBOS; do
				IFS=: read -r t cdev <<< "$c"
				sv[$c]="${sv[$c]:-} $(secgw_run $a $L $t $cdev $r)"
			done
		done
		nm=$(echo $nv | tr ' ' '\n' | grep . | median)
		log "natt-gw aes$a L$L: runs$nv -> $nm"
		for c in "${!sv[@]}"; do
			sm=$(echo ${sv[$c]} | tr ' ' '\n' | grep . | median)
			log "secgw aes$a L$L $c: runs${sv[$c]} -> $sm"
			if [ "$sm" != nan ] && [ "$(echo "$sm > $best" | bc -l)" = 1 ]; then best=$sm; bestc="${c%%:*}/${c#*:}"; fi
		done
		unset sv
		ratio=- met=-
		if [ "$best" != 0 ] && [ "$nm" != nan ]; then
			ratio=$(printf '%.2fx' "$(echo "$nm / $best" | bc -l)")
			if [ "$(echo "$nm >= 1.5 * $best" | bc -l)" = 1 ]; then met=yes
			else met=$(printf 'no (%.0f%% short of %.2f)' "$(echo "100 * (1 - $nm / (1.5 * $best))" | bc -l)" \
				"$(echo "1.5 * $best" | bc -l)"); fi
		fi
		if [ "$nm" != nan ]; then
			printf "| aes-gcm-%s | %s B | %.2f | %.2f | %.0f | %s (%s) | %s | %s |\n" "$a" "$fb" "$nm" \
				"$(echo "$nm * $fb * 8 / 1000" | bc -l)" "$(echo "$HZ / ($nm * 1000000)" | bc -l)" \
				"$best" "${bestc%0}" "$ratio" "$met"
		else
			printf "| aes-gcm-%s | %s B | - | - | - | %s (%s) | - | - |\n" "$a" "$fb" "$best" "${bestc%0}"
		fi
	done
done
log "per-try log: $RETRIES ($(grep -c ' try ' "$RETRIES") tries for $(grep -c ' try 1:' "$RETRIES") runs, $(grep -c DISTURBED "$RETRIES") kept disturbed)"
