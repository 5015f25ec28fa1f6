#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# run-demo.sh - build natt-gw and run it on generated NAT-T traffic, no NIC
# needed. Runs until Ctrl-C, or for DEMO_SECONDS=N seconds. NATT_BUILD picks
# the build directory (default build/).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/deps.sh
bash scripts/hugepages.sh
export NATT_BUILD=${NATT_BUILD:-$root/build}
[[ -f $NATT_BUILD/build.ninja ]] || meson setup "$NATT_BUILD"
ninja -C "$NATT_BUILD"

dir=$NATT_BUILD/demo
mkdir -p "$dir"
/usr/bin/python3 scripts/gen-traffic.py --config "$dir/demo.cfg" --pcap "$dir/demo.pcap" \
	--inside-pcap "$dir/demo-inside.pcap"

cat <<EOF

natt-gw demo
  outside port 0: net_pcap replaying $dir/demo.pcap in a loop
                  (ESP-in-UDP/4500 from simulated peers behind NAT)
  inside  port 1: net_pcap replaying $dir/demo-inside.pcap in a loop
                  (clear LAN traffic to the tunnels; what the gateway
                  sends on either port is discarded)
  config:         $dir/demo.cfg (anti-replay off: the capture repeats)
  natt-dataplane (lcores 0,1) decrypts one way, encrypts the other, and
  prints its counters every second; the final counters go to
  $dir/stats.json.
  Stop with Ctrl-C${DEMO_SECONDS:+ (or automatically after $DEMO_SECONDS s)}.

EOF

cmd=(scripts/natt-gw --config "$dir/demo.cfg" --stats-interval 1000
	--stats-json "$dir/stats.json"
	-- -l "0,1" --no-pci
	--vdev "net_pcap0,rx_pcap=$dir/demo.pcap,infinite_rx=1"
	--vdev "net_pcap1,rx_pcap=$dir/demo-inside.pcap,infinite_rx=1")
if [[ -n ${DEMO_SECONDS:-} ]]; then
	# SIGINT, as Ctrl-C would; natt-gw forwards it and exits 0 when clean.
	timeout --foreground --preserve-status -s INT "$DEMO_SECONDS" "${cmd[@]}"
else
	"${cmd[@]}"
fi
echo "final counters: $dir/stats.json"
