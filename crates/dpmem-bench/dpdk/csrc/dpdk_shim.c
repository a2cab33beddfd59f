/*
 * DPDK 22.11 side of dpmem's side-by-side benchmarks.
 *
 * DPDK's fast paths (rings, mempool caches, mbuf alloc) are static inline, so Rust can
 * only time them through C. Each workload here therefore runs its whole measured loop in
 * C and hands back one number (nanoseconds for coarse operations, TSC cycles for fast
 * paths), so the FFI call itself never lands inside the measurement.
 *
 * Conventions for every function in this file:
 *   - names start with dpmem_bench_dpdk_ and are declared in src/shim.rs;
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

/* ---- rings (ring_perf_autotest's loops) -------------------------------------------- */

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

/*
 * The ring workloads run in a child process that calls dpmem_bench_dpdk_ring_eal_init
 * once, then the one-core and two-core loops below for every row and repetition.
 * Element kinds: 8 (pointers, the legacy void * API) and 16 (the _elem API with a
 * constant esize of 16, as ring_perf_autotest does). Ops: 0 single, 1 burst, 2 bulk.
 */

#define RING_BENCH_SIZE 4096
#define RING_BENCH_MAX_BATCH 32

/*
 * The loops' source and destination buffers are cache-aligned, as the Rust side's are
 * (`Batch` in ring.rs): both sides then copy between the same addresses modulo a line,
 * whatever alignment each compiler would have chosen for a local array.
 */

typedef void *ptr_elem; /* one name, so that "type a[], b[]" declares two arrays of pointers */

struct elem16 {
	uint64_t lo, hi;
};

static struct rte_ring *ring_st; /* SP/SC flags */
static struct rte_ring *ring_mt; /* MP/MC (default) */
static struct rte_ring *ring16_st;
static struct rte_ring *ring16_mt;

int
dpmem_bench_dpdk_ring_eal_init(int argc, char **argv)
{
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	ring_st = rte_ring_create("bench_st", RING_BENCH_SIZE, SOCKET_ID_ANY,
				  RING_F_SP_ENQ | RING_F_SC_DEQ);
	ring_mt = rte_ring_create("bench_mt", RING_BENCH_SIZE, SOCKET_ID_ANY, 0);
	ring16_st = rte_ring_create_elem("bench16_st", 16, RING_BENCH_SIZE, SOCKET_ID_ANY,
					 RING_F_SP_ENQ | RING_F_SC_DEQ);
	ring16_mt = rte_ring_create_elem("bench16_mt", 16, RING_BENCH_SIZE, SOCKET_ID_ANY, 0);
	if (ring_st == NULL || ring_mt == NULL || ring16_st == NULL || ring16_mt == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	return 0;
}

/* Per-call SP/MP and SC/MC functions, as the autotest uses them. */
#define PTR_OPS(mode, prod, cons)                                                          \
	static inline unsigned ptr_enq_single_##mode(struct rte_ring *r, void **o, unsigned n) \
	{                                                                                  \
		(void)n;                                                                   \
		return rte_ring_##prod##_enqueue(r, o[0]) == 0;                            \
	}                                                                                  \
	static inline unsigned ptr_deq_single_##mode(struct rte_ring *r, void **o, unsigned n) \
	{                                                                                  \
		(void)n;                                                                   \
		return rte_ring_##cons##_dequeue(r, o) == 0;                               \
	}                                                                                  \
	static inline unsigned ptr_enq_burst_##mode(struct rte_ring *r, void **o, unsigned n)  \
	{                                                                                  \
		return rte_ring_##prod##_enqueue_burst(r, o, n, NULL);                     \
	}                                                                                  \
	static inline unsigned ptr_deq_burst_##mode(struct rte_ring *r, void **o, unsigned n)  \
	{                                                                                  \
		return rte_ring_##cons##_dequeue_burst(r, o, n, NULL);                     \
	}                                                                                  \
	static inline unsigned ptr_enq_bulk_##mode(struct rte_ring *r, void **o, unsigned n)   \
	{                                                                                  \
		return rte_ring_##prod##_enqueue_bulk(r, o, n, NULL);                      \
	}                                                                                  \
	static inline unsigned ptr_deq_bulk_##mode(struct rte_ring *r, void **o, unsigned n)   \
	{                                                                                  \
		return rte_ring_##cons##_dequeue_bulk(r, o, n, NULL);                      \
	}
PTR_OPS(st, sp, sc)
PTR_OPS(mt, mp, mc)

#define E16_OPS(mode, prod, cons)                                                          \
	static inline unsigned e16_enq_single_##mode(struct rte_ring *r, struct elem16 *o,     \
						     unsigned n)                               \
	{                                                                                  \
		(void)n;                                                                   \
		return rte_ring_##prod##_enqueue_elem(r, o, 16) == 0;                      \
	}                                                                                  \
	static inline unsigned e16_deq_single_##mode(struct rte_ring *r, struct elem16 *o,     \
						     unsigned n)                               \
	{                                                                                  \
		(void)n;                                                                   \
		return rte_ring_##cons##_dequeue_elem(r, o, 16) == 0;                      \
	}                                                                                  \
	static inline unsigned e16_enq_burst_##mode(struct rte_ring *r, struct elem16 *o,      \
						    unsigned n)                                \
	{                                                                                  \
		return rte_ring_##prod##_enqueue_burst_elem(r, o, 16, n, NULL);            \
	}                                                                                  \
	static inline unsigned e16_deq_burst_##mode(struct rte_ring *r, struct elem16 *o,      \
						    unsigned n)                                \
	{                                                                                  \
		return rte_ring_##cons##_dequeue_burst_elem(r, o, 16, n, NULL);            \
	}                                                                                  \
	static inline unsigned e16_enq_bulk_##mode(struct rte_ring *r, struct elem16 *o,       \
						   unsigned n)                                 \
	{                                                                                  \
		return rte_ring_##prod##_enqueue_bulk_elem(r, o, 16, n, NULL);             \
	}                                                                                  \
	static inline unsigned e16_deq_bulk_##mode(struct rte_ring *r, struct elem16 *o,       \
						   unsigned n)                                 \
	{                                                                                  \
		return rte_ring_##cons##_dequeue_bulk_elem(r, o, 16, n, NULL);             \
	}
E16_OPS(st, sp, sc)
E16_OPS(mt, mp, mc)

/* One core: enqueue then dequeue `n`, `iters` times; TSC cycles for the whole loop. */
#define ONE_CORE_LOOP(kind, type, op, mode)                                                \
	static uint64_t one_core_##kind##_##op##_##mode(struct rte_ring *r, unsigned n,     \
							uint64_t iters)                    \
	{                                                                                  \
		type src[RING_BENCH_MAX_BATCH] __rte_cache_aligned;                        \
		type dst[RING_BENCH_MAX_BATCH] __rte_cache_aligned;                        \
		uint64_t start, i;                                                         \
		memset(src, 0, sizeof(src));                                               \
		start = rte_rdtsc();                                                       \
		for (i = 0; i < iters; i++) {                                              \
			kind##_enq_##op##_##mode(r, src, n);                               \
			kind##_deq_##op##_##mode(r, dst, n);                               \
		}                                                                          \
		start = rte_rdtsc() - start;                                               \
		__asm__ volatile("" : : "r"(dst) : "memory");                              \
		return start;                                                              \
	}
#define ONE_CORE_ALL(kind, type)                                                           \
	ONE_CORE_LOOP(kind, type, single, st)                                              \
	ONE_CORE_LOOP(kind, type, single, mt)                                              \
	ONE_CORE_LOOP(kind, type, burst, st)                                               \
	ONE_CORE_LOOP(kind, type, burst, mt)                                               \
	ONE_CORE_LOOP(kind, type, bulk, st)                                                \
	ONE_CORE_LOOP(kind, type, bulk, mt)
ONE_CORE_ALL(ptr, ptr_elem)
ONE_CORE_ALL(e16, struct elem16)

int
dpmem_bench_dpdk_ring_one_core(unsigned esize, int single_thread, int op, unsigned n,
			       uint64_t iters, uint64_t *cycles)
{
	if (n == 0 || n > RING_BENCH_MAX_BATCH || (esize != 8 && esize != 16) || op < 0 || op > 2)
		return EINVAL;
	if (esize == 8) {
		struct rte_ring *r = single_thread ? ring_st : ring_mt;
		if (op == 0)
			*cycles = single_thread ? one_core_ptr_single_st(r, 1, iters)
						: one_core_ptr_single_mt(r, 1, iters);
		else if (op == 1)
			*cycles = single_thread ? one_core_ptr_burst_st(r, n, iters)
						: one_core_ptr_burst_mt(r, n, iters);
		else
			*cycles = single_thread ? one_core_ptr_bulk_st(r, n, iters)
						: one_core_ptr_bulk_mt(r, n, iters);
	} else {
		struct rte_ring *r = single_thread ? ring16_st : ring16_mt;
		if (op == 0)
			*cycles = single_thread ? one_core_e16_single_st(r, 1, iters)
						: one_core_e16_single_mt(r, 1, iters);
		else if (op == 1)
			*cycles = single_thread ? one_core_e16_burst_st(r, n, iters)
						: one_core_e16_burst_mt(r, n, iters);
		else
			*cycles = single_thread ? one_core_e16_bulk_st(r, n, iters)
						: one_core_e16_bulk_mt(r, n, iters);
	}
	return 0;
}

/* Two cores: the main lcore enqueues bulks, the worker lcore dequeues them. */
struct two_core_job {
	struct rte_ring *r;
	unsigned n;
	uint64_t iters;
	int kind16;
	int single_thread;
	volatile int ready; /* set by the worker once it runs, before it waits for go */
	volatile int go;
	uint64_t cycles;
};

#define TWO_CORE_SIDE(kind, type, dir, mode)                                               \
	static uint64_t two_core_##kind##_##dir##_##mode(struct two_core_job *job)          \
	{                                                                                  \
		type buf[RING_BENCH_MAX_BATCH] __rte_cache_aligned;                        \
		uint64_t start, i;                                                         \
		memset(buf, 0, sizeof(buf));                                               \
		while (!job->go)                                                           \
			rte_pause();                                                       \
		start = rte_rdtsc();                                                       \
		for (i = 0; i < job->iters; i++)                                           \
			while (kind##_##dir##_bulk_##mode(job->r, buf, job->n) == 0)       \
				rte_pause();                                               \
		start = rte_rdtsc() - start;                                               \
		__asm__ volatile("" : : "r"(buf) : "memory");                              \
		return start;                                                              \
	}
TWO_CORE_SIDE(ptr, ptr_elem, enq, st)
TWO_CORE_SIDE(ptr, ptr_elem, enq, mt)
TWO_CORE_SIDE(ptr, ptr_elem, deq, st)
TWO_CORE_SIDE(ptr, ptr_elem, deq, mt)
TWO_CORE_SIDE(e16, struct elem16, enq, st)
TWO_CORE_SIDE(e16, struct elem16, enq, mt)
TWO_CORE_SIDE(e16, struct elem16, deq, st)
TWO_CORE_SIDE(e16, struct elem16, deq, mt)

static int
two_core_dequeuer(void *arg)
{
	struct two_core_job *job = arg;

	job->ready = 1;
	if (job->kind16)
		job->cycles = job->single_thread ? two_core_e16_deq_st(job) : two_core_e16_deq_mt(job);
	else
		job->cycles = job->single_thread ? two_core_ptr_deq_st(job) : two_core_ptr_deq_mt(job);
	return 0;
}

int
dpmem_bench_dpdk_ring_two_cores(unsigned esize, int single_thread, unsigned n, uint64_t iters,
				uint64_t *enq_cycles, uint64_t *deq_cycles)
{
	struct two_core_job job;
	unsigned worker;
	int ret;

	if (n == 0 || n > RING_BENCH_MAX_BATCH || (esize != 8 && esize != 16))
		return EINVAL;
	worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	if (worker >= RTE_MAX_LCORE)
		return ENODEV;
	memset(&job, 0, sizeof(job));
	job.kind16 = esize == 16;
	job.single_thread = single_thread;
	job.r = job.kind16 ? (single_thread ? ring16_st : ring16_mt)
			   : (single_thread ? ring_st : ring_mt);
	job.n = n;
	job.iters = iters;
	ret = rte_eal_remote_launch(two_core_dequeuer, &job, worker);
	if (ret != 0)
		return -ret;
	/* Both loops start together: without this the enqueuer's clock would run while the
	 * worker is still waking up from the launch. (The Rust harness waits for its dequeuer
	 * thread the same way.) */
	while (!job.ready)
		rte_pause();
	job.go = 1;
	if (job.kind16)
		*enq_cycles = single_thread ? two_core_e16_enq_st(&job) : two_core_e16_enq_mt(&job);
	else
		*enq_cycles = single_thread ? two_core_ptr_enq_st(&job) : two_core_ptr_enq_mt(&job);
	rte_eal_wait_lcore(worker);
	*deq_cycles = job.cycles;
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
 * After rte_eal_init(argc, argv): for each of n_sizes sizes, `malloc_counts[i]` rte_malloc
 * calls then as many rte_free calls, timed as a batch, then `zmalloc_counts[i]` of the same
 * with rte_zmalloc; `mz_count` memzones of `mz_len` bytes reserved then freed; a churn of
 * `churn_ops` random allocations and frees over `churn_slots` slots (sizes 64 B .. 64 KiB).
 * A count of 0 skips its loop (`dpmem bench --filter`), whose figure is then 0. Outputs, in ns
 * per alloc+free pair (per operation for the churn): malloc_ns[i], zmalloc_ns[i],
 * *memzone_ns, *churn_ns, and the greatest free block of socket 0 after the churn, before
 * its blocks are freed. rte_eal_cleanup() follows.
 */
int
dpmem_bench_dpdk_malloc(int argc, char **argv, const uint64_t *sizes,
			const uint64_t *malloc_counts, const uint64_t *zmalloc_counts,
			unsigned int n_sizes, uint64_t mz_len, unsigned int mz_count,
			unsigned int churn_slots, unsigned int churn_ops, uint64_t *malloc_ns,
			uint64_t *zmalloc_ns, uint64_t *memzone_ns, uint64_t *churn_ns,
			uint64_t *greatest_free_after_churn)
{
	uint64_t max_count = 0, start, alloc_time, count, rng = 0x9e3779b97f4a7c15ULL;
	const struct rte_memzone **zones;
	struct rte_malloc_socket_stats stats;
	void **blocks;
	unsigned int i, pass, n;
	int ret = 0;

	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	for (i = 0; i < n_sizes; i++) {
		max_count = malloc_counts[i] > max_count ? malloc_counts[i] : max_count;
		max_count = zmalloc_counts[i] > max_count ? zmalloc_counts[i] : max_count;
	}
	if (churn_slots > max_count)
		max_count = churn_slots;
	if (mz_count > max_count)
		max_count = mz_count;
	blocks = calloc(max_count ? max_count : 1, sizeof(*blocks));
	zones = calloc(max_count ? max_count : 1, sizeof(*zones));
	if (blocks == NULL || zones == NULL) {
		ret = ENOMEM;
		goto out;
	}

	for (i = 0; i < n_sizes && ret == 0; i++) {
		for (pass = 0; pass < 2 && ret == 0; pass++) {
			count = pass == 0 ? malloc_counts[i] : zmalloc_counts[i];
			start = monotonic_ns();
			for (n = 0; n < count; n++) {
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
			(pass == 0 ? malloc_ns : zmalloc_ns)[i] = count ? alloc_time / count : 0;
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
		*memzone_ns = mz_count ? (monotonic_ns() - start) / mz_count : 0;
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
		*churn_ns = churn_ops ? (monotonic_ns() - start) / churn_ops : 0;
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
