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
