#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# hugepages.sh - reserve 2 MB hugepages and mount hugetlbfs at /dev/hugepages.
# DPDK multi-process (natt-dataplane + natt-control) shares memory through
# these files. Idempotent: never lowers an existing reservation.
# NATT_HUGEPAGES=N overrides the number of pages (default 1024 = 2 GB).
set -euo pipefail

want=${NATT_HUGEPAGES:-1024}
sysctl=/proc/sys/vm/nr_hugepages
mnt=/dev/hugepages

die() { echo "hugepages.sh: $*" >&2; exit 1; }

have=$(<"$sysctl")
if ((have >= want)) && mountpoint -q "$mnt"; then
	exit 0
fi
((EUID == 0)) || die "need root to reserve $want hugepages (have $have) and mount $mnt; run with sudo"

if ((have < want)); then
	echo "$want" >"$sysctl" 2>/dev/null ||
		die "cannot write $sysctl (read-only /proc/sys? in a container use --privileged or reserve on the host)"
	got=$(<"$sysctl")
	if ((got < want)); then
		echo "$have" >"$sysctl" # a partial reservation only hogs memory
		die "asked for $want hugepages, kernel gave $got (memory too small or fragmented); free memory, lower NATT_HUGEPAGES, or boot with hugepages=$want"
	fi
	have=$got
fi

if ! mountpoint -q "$mnt"; then
	mkdir -p "$mnt"
	mount -t hugetlbfs nodev "$mnt" || die "cannot mount hugetlbfs on $mnt"
fi
echo "hugepages.sh: $have x 2 MB hugepages, hugetlbfs on $mnt"
