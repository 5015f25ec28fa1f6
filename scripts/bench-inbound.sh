#!/bin/bash
# bench-inbound.sh - inbound NAT-T forwarding rate of natt-gw on one worker core,
# side by side with DPDK's ipsec-secgw (../shared/bench: patched for NAT-T with
# software crypto) on the same pcaps, ports and core, in the same invocation.
#
# Ports: net_pcap rx_pcap=...,infinite_rx=1 in (the capture loops, so anti-replay is
# off for both gateways: secgw's default window is 0, natt-gw's config sets 0), net_null
# out. Worker on lcore 1, main lcore 0. Rate = packets sent per second on the inside
# port, median of RUNS runs of SECS seconds (first 2 s of each run skipped).
#
#   sudo bash scripts/bench-inbound.sh
#   RUNS=5 SECS=10 SIZES="28 434 1342" ALGOS="128 256" SKIP_SECGW=1 bash scripts/bench-inbound.sh
#
# Output: a markdown table on stdout; logs under $WORK (default /tmp/natt-bench).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
WORK=${WORK:-/tmp/natt-bench}
RUNS=${RUNS:-5}
SECS=${SECS:-10}
N=${N:-4096}
SIZES=${SIZES:-"28 434 1342"}
ALGOS=${ALGOS:-"128 256"}
# secgw configurations tried per row; the best one is reported
SECGW_COMBOS=${SECGW_COMBOS:-"no-offload:crypto_aesni_mb0 cpu-crypto:crypto_aesni_gcm0"}
BUILD=${NATT_BUILD:-$ROOT/build}
PY=/usr/bin/python3
mkdir -p "$WORK"/{pcap,cfg,logs}

# shellcheck source=bench-lib.sh
. "$ROOT/scripts/bench-lib.sh"   # log, median, build_secgw (its run_for is replaced below)
frame_bytes() { echo $(( 74 + ( ($1 + 2 + 3) / 4 ) * 4 )); }   # eth+ip+udp+esp+iv+payload/pad+icv

bash "$ROOT/scripts/hugepages.sh" >/dev/null || exit 1
natt_build_fresh "$BUILD" || exit 1
[ -x "$BUILD/dataplane/natt-dataplane" ] || { log "build first: meson setup build && ninja -C build"; exit 1; }

for a in $ALGOS; do for L in $SIZES; do
	[ -s "$WORK/pcap/natt${a}_L$L.pcap" ] && continue
	log "generating pcaps (scapy)"
	$PY "$ROOT/scripts/bench_pcaps.py" "$WORK/pcap" "$N" "$(echo $SIZES | tr ' ' ,)" \
		"$(echo $ALGOS | tr ' ' ,)" >/dev/null || exit 1
	break 2
done; done

key_hex() {  # key||salt as natt-gw hex and secgw colon form
	local k=deadbeefdeadbeefdeadbeefdeadbeef
	[ "$1" = 256 ] && k=$k$k
	echo "${k}cafebabe"
}

write_natt_cfg() {  # algo
	cat > "$WORK/cfg/natt$1.cfg" <<EOC
# benchmark: the input capture loops forever, so anti-replay must be off
dataplane = { replay_window = 0; };
interfaces = (
  { name = "outside"; port = 0; role = "outside"; address = "172.16.1.5"; next_hop_mac = "02:00:00:00:00:02"; mtu = 1500; },
  { name = "inside";  port = 1; role = "inside";  address = "192.168.100.254"; next_hop_mac = "02:00:00:00:01:02"; mtu = 1500; }
);
tunnels = (
  { name = "bench"; remote = "172.16.2.5"; remote_port = 4500; algorithm = "aes-gcm-$1"; esn = false;
    inbound  = { spi = 0x105; key = "$(key_hex $1)"; };
    outbound = { spi = 0x106; key = "$(key_hex $1 | tr 'd' 'e')"; };
    remote_ts = [ "192.168.200.0/24" ]; local_ts = [ "192.168.100.0/24" ]; }
);
EOC
}

write_secgw_cfg() {  # algo type
	local k; k=$(key_hex $1 | sed 's/../&:/g; s/:$//')
	cat > "$WORK/cfg/secgw$1_$2.cfg" <<EOC
sa in 261 aead_algo aes-$1-gcm aead_key $k mode ipv4-tunnel src 172.16.2.5 dst 172.16.1.5 type $2 udp-encap
sp ipv4 in esp protect 261 pri 1 dst 192.168.100.0/24 sport 0:65535 dport 0:65535
rt ipv4 dst 192.168.100.0/24 port 1
EOC
}

# run_for LOG cmd... : run SECS+3 s, then SIGTERM (a background job of a
# non-interactive shell starts with SIGINT ignored, and bash cannot trap it)
run_for() {
	local lg=$1; shift
	"$@" > "$lg" 2>&1 &
	local pid=$!
	sleep $((SECS + 3))
	kill -TERM $pid 2>/dev/null
	for _ in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.2; done
	kill -0 $pid 2>/dev/null && { kill -KILL $pid; log "had to SIGKILL"; }
	wait $pid 2>/dev/null
}

natt_run() {  # algo L -> Mpps
	local lg=$WORK/logs/natt$1_L$2_r$3.log
	run_for "$lg" "$ROOT/scripts/natt-gw" --config "$WORK/cfg/natt$1.cfg" --stats-interval 1000 \
		--stats-json "$WORK/logs/natt$1_L$2_r$3.json" -- -l 0,1 --no-pci \
		--vdev "net_pcap0,rx_pcap=$WORK/pcap/natt$1_L$2.pcap,infinite_rx=1" --vdev net_null0,no-rx=1
	# lines: "rx N (X Mpps)  tx N (Y Mpps) ..." once a second; skip 2 warm-up
	# samples and average the rest, as parse_stats.py does for ipsec-secgw
	grep -o 'tx [0-9]* ([0-9.]* Mpps)' "$lg" | awk '{gsub(/\(/,"",$3); print $3}' | tail -n +3 |
		awk '{s += $1; n++} END {if (n) printf "%.3f\n", s / n; else print "nan"}'
}

secgw_run() {  # algo L type cdev run -> Mpps
	local lg=$WORK/logs/secgw$1_L$2_$3_r$5.log
	run_for "$lg" "$WORK/secgw/build/ipsec-secgw" -l 1 -n 1 --file-prefix natt-bench-secgw --no-pci \
		--vdev "$4" --vdev "net_pcap0,rx_pcap=$WORK/pcap/natt$1_L$2.pcap,infinite_rx=1" \
		--vdev net_null1,no-rx=1 -- -p 0x3 -P -u 0x1 -l -s 32768 --config "(0,0,1)" \
		-f "$WORK/cfg/secgw$1_$3.cfg" -t 1
	rm -f /dev/hugepages/natt-bench-secgwmap_* 2>/dev/null
	python3 "$SHARED/parse_stats.py" secgw "$lg" 2 | awk '{print $1}'
}

[ "${SKIP_SECGW:-0}" = 1 ] || build_secgw
for a in $ALGOS; do
	write_natt_cfg $a
	for c in $SECGW_COMBOS; do write_secgw_cfg $a "${c%%:*}"; done
done
echo "| algo | outer frame | natt-gw Mpps | Gbps (L2) | cycles/pkt | ipsec-secgw Mpps (best config) | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
HZ=$(tsc_hz)
# Runs of natt-gw and of each secgw configuration alternate (this VM's rate
# drifts by up to 2x over minutes; interleaving keeps the ratio honest).
for a in $ALGOS; do
	for L in $SIZES; do
		fb=$(frame_bytes $L); nv=""; best=0; bestc="-"
		declare -A sv=()
		for r in $(seq 1 $RUNS); do
			nv="$nv $(natt_run $a $L $r)"
			[ "${SKIP_SECGW:-0}" = 1 ] && continue
			for c in $SECGW_COMBOS; do
				IFS=: read -r t cdev <<< "$c"
				sv[$c]="${sv[$c]:-} $(secgw_run $a $L $t $cdev $r)"
			done
		done
		nm=$(echo $nv | tr ' ' '\n' | median)
		log "natt-gw aes$a L$L: runs$nv -> $nm"
		for c in "${!sv[@]}"; do
			sm=$(echo ${sv[$c]} | tr ' ' '\n' | median)
			log "secgw aes$a L$L $c: runs${sv[$c]} -> $sm"
			if [ "$(echo "$sm > $best" | bc -l)" = 1 ]; then best=$sm; bestc="${c%%:*}/${c#*:}"; fi
		done
		unset sv
		printf "| aes-gcm-%s | %s B | %.2f | %.2f | %.0f | %s (%s) | %s |\n" "$a" "$fb" "$nm" \
			"$(echo "$nm * $fb * 8 / 1000" | bc -l)" "$(echo "$HZ / ($nm * 1000000)" | bc -l)" \
			"$best" "${bestc%0}" "$( [ "$best" != 0 ] && printf '%.2fx' "$(echo "$nm / $best" | bc -l)" || echo -)"
	done
done
