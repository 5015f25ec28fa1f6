#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# deps.sh - install the Debian 12 packages natt-gw needs to build and test.
# Idempotent: does nothing (and no apt-get update) when everything is there.
set -euo pipefail

packages=(
	build-essential meson ninja-build pkg-config    # build
	libdpdk-dev dpdk dpdk-dev libipsec-mb-dev libconfig-dev  # dataplane / control; dpdk-dev: testpmd for benchmarks
	libssl-dev libpcap-dev
	python3-scapy python3-cryptography tshark jq    # tests, traffic generation
	nftables conntrack                              # test_nat: a real NAT (masquerade) and its table
	ethtool                                         # natt_live.py: veth offloads off
	clang libclang-rt-14-dev                        # libFuzzer targets
	strongswan-charon strongswan-swanctl            # test_strongswan.py: IKE peers
	libcharon-extra-plugins libstrongswan-extra-plugins  # kernel-libipsec (userspace ESP), ...
	libstrongswan-standard-plugins                  # openssl plugin: ECP DH groups, AES-GCM in charon
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (sudo) to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer "no" up front.
echo 'wireshark-common wireshark-common/install-setuid boolean false' |
	debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
