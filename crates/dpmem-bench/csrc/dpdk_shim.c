/*
 * DPDK 22.11 side of dpmem's side-by-side benchmarks.
 *
 * DPDK's fast paths (rings, mempool caches, mbuf alloc) are static inline, so Rust can
 * only time them through C. Each workload here therefore runs its whole measured loop in
 * C and hands back one number (nanoseconds for coarse operations, TSC cycles for fast
 * paths), so the FFI call itself never lands inside the measurement.
 *
 * Conventions for every function in this file:
 *   - names start with dpmem_bench_dpdk_ and are declared in src/dpdk_shim.rs;
 *   - the return value is 0 on success or a positive rte_errno / errno value;
 *   - results go through out-pointers, one per figure;
 *   - no function prints: the Rust harness owns all output.
 *
 * Sections: common helpers, EAL lifecycle, (later) rings, mempools, malloc, mbufs.
 */

#include <errno.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_version.h>

/* ---- common helpers --------------------------------------------------------------- */

/* CLOCK_MONOTONIC, not the TSC: EAL init runs before DPDK has calibrated the TSC, and
 * it takes milliseconds, far above the clock's resolution. */
static uint64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Error text for a code returned by this file; covers DPDK's own E_RTE_* codes. */
const char *
dpmem_bench_dpdk_strerror(int code)
{
	return rte_strerror(code);
}

/* "DPDK 22.11.x", for the report header. */
const char *
dpmem_bench_dpdk_version(void)
{
	return rte_version();
}

/* ---- EAL lifecycle ----------------------------------------------------------------- */

/*
 * Time rte_eal_init(argc, argv) and then rte_eal_cleanup().
 *
 * DPDK allows one rte_eal_init per process, so the harness calls this once per child
 * process. argv is permuted by getopt inside DPDK; the caller must not reuse it.
 */
int
dpmem_bench_dpdk_eal_init(int argc, char **argv, uint64_t *init_ns, uint64_t *cleanup_ns)
{
	uint64_t start;
	int ret;

	start = monotonic_ns();
	ret = rte_eal_init(argc, argv);
	*init_ns = monotonic_ns() - start;
	if (ret < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;

	start = monotonic_ns();
	ret = rte_eal_cleanup();
	*cleanup_ns = monotonic_ns() - start;
	if (ret < 0)
		return rte_errno != 0 ? rte_errno : -ret;
	return 0;
}

/* ---- malloc (malloc_perf_autotest) -------------------------------------------------- */

#include <stdio.h>
#include <stdlib.h>

#include <rte_malloc.h>
#include <rte_memzone.h>

/* A small deterministic generator, the same sequence the Rust side uses for the churn. */
static uint64_t
churn_next(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/*
 * After rte_eal_init(argc, argv): for each of n_sizes sizes, `counts[i]` rte_malloc calls
 * then as many rte_free calls, timed as a batch, then the same with rte_zmalloc;
 * `mz_count` memzones of `mz_len` bytes reserved then freed; a churn of `churn_ops` random
 * allocations and frees over `churn_slots` slots (sizes 64 B .. 64 KiB). Outputs, in ns
 * per alloc+free pair (per operation for the churn): malloc_ns[i], zmalloc_ns[i],
 * *memzone_ns, *churn_ns, and the greatest free block of socket 0 after the churn, before
 * its blocks are freed. rte_eal_cleanup() follows.
 */
int
dpmem_bench_dpdk_malloc(int argc, char **argv, const uint64_t *sizes, const uint64_t *counts,
			unsigned int n_sizes, uint64_t mz_len, unsigned int mz_count,
			unsigned int churn_slots, unsigned int churn_ops, uint64_t *malloc_ns,
			uint64_t *zmalloc_ns, uint64_t *memzone_ns, uint64_t *churn_ns,
			uint64_t *greatest_free_after_churn)
{
	uint64_t max_count = 0, start, alloc_time, rng = 0x9e3779b97f4a7c15ULL;
	const struct rte_memzone **zones;
	struct rte_malloc_socket_stats stats;
	void **blocks;
	unsigned int i, pass, n;
	int ret = 0;

	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	for (i = 0; i < n_sizes; i++)
		max_count = counts[i] > max_count ? counts[i] : max_count;
	if (churn_slots > max_count)
		max_count = churn_slots;
	if (mz_count > max_count)
		max_count = mz_count;
	blocks = calloc(max_count, sizeof(*blocks));
	zones = calloc(max_count, sizeof(*zones));
	if (blocks == NULL || zones == NULL) {
		ret = ENOMEM;
		goto out;
	}

	for (i = 0; i < n_sizes && ret == 0; i++) {
		for (pass = 0; pass < 2 && ret == 0; pass++) {
			start = monotonic_ns();
			for (n = 0; n < counts[i]; n++) {
				blocks[n] = pass == 0 ? rte_malloc(NULL, sizes[i], 0) :
							rte_zmalloc(NULL, sizes[i], 0);
				if (blocks[n] == NULL) {
					ret = ENOMEM;
					break;
				}
			}
			alloc_time = monotonic_ns() - start;
			start = monotonic_ns();
			for (unsigned int k = 0; k < n; k++)
				rte_free(blocks[k]);
			alloc_time += monotonic_ns() - start;
			(pass == 0 ? malloc_ns : zmalloc_ns)[i] = alloc_time / (counts[i] ? counts[i] : 1);
		}
	}

	if (ret == 0) {
		char name[RTE_MEMZONE_NAMESIZE];

		start = monotonic_ns();
		for (n = 0; n < mz_count; n++) {
			snprintf(name, sizeof(name), "bench_mz_%u", n);
			zones[n] = rte_memzone_reserve(name, mz_len, SOCKET_ID_ANY, 0);
			if (zones[n] == NULL) {
				ret = rte_errno != 0 ? rte_errno : ENOMEM;
				break;
			}
		}
		for (unsigned int k = 0; k < n; k++)
			rte_memzone_free(zones[k]);
		*memzone_ns = (monotonic_ns() - start) / (mz_count ? mz_count : 1);
	}

	if (ret == 0) {
		memset(blocks, 0, churn_slots * sizeof(*blocks));
		start = monotonic_ns();
		for (n = 0; n < churn_ops; n++) {
			uint64_t r = churn_next(&rng);
			unsigned int slot = (unsigned int)(r % churn_slots);

			if (blocks[slot] != NULL) {
				rte_free(blocks[slot]);
				blocks[slot] = NULL;
			} else {
				/* 64 B << 0..10: log-uniform up to 64 KiB. */
				blocks[slot] = rte_malloc(NULL, (size_t)64 << ((r >> 32) % 11), 0);
			}
		}
		*churn_ns = (monotonic_ns() - start) / (churn_ops ? churn_ops : 1);
		rte_malloc_get_socket_stats(0, &stats);
		*greatest_free_after_churn = stats.greatest_free_size;
		for (n = 0; n < churn_slots; n++)
			rte_free(blocks[n]);
	}

out:
	free(blocks);
	free(zones);
	rte_eal_cleanup();
	return ret;
}
