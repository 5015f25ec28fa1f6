/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * check.h - the CHECK() of the unit tests that print only failures: counts
 * into n_pass / n_fail (the including file defines them) and prints
 * "FAIL file:line: message" for a failed condition.
 */
#ifndef NATT_TEST_CHECK_H
#define NATT_TEST_CHECK_H

#include <stdio.h>

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (cond) {                                                    \
			n_pass++;                                              \
		} else {                                                       \
			n_fail++;                                              \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

#endif /* NATT_TEST_CHECK_H */
