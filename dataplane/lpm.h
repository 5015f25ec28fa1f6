/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lpm.h - <rte_lpm.h> for a build with -Wvla: DPDK 22.11's inline
 * rte_lpm_lookup_bulk_func() sizes a stack array by its argument. We call
 * it with at most NATT_MAX_BURST addresses, so the array is bounded.
 */
#ifndef NATT_LPM_H
#define NATT_LPM_H

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wvla"
#include <rte_lpm.h>
#pragma GCC diagnostic pop

#endif /* NATT_LPM_H */
