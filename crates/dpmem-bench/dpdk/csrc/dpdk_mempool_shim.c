/*
 * DPDK 22.11 side of `dpmem bench mempool`: the loops of mempool_perf_autotest.
 *
 * rte_mempool_generic_get/put and the per-lcore cache are static inline, so the timed loop
 * has to live in C. The conventions of dpdk_shim.c hold here too: names start with
 * dpmem_bench_dpdk_, 0 or a positive errno / rte_errno comes back, figures go through
 * out-pointers, nothing prints.
 *
 * One benchmark child calls dpmem_bench_dpdk_mempool_init once (EAL init with two lcores,
 * then the two pools), then dpmem_bench_dpdk_mempool_run once per row.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_pause.h>

/* Objects one timed chunk moves: each lcore checks the clock once per chunk. */
#define MEMPOOL_BENCH_CHUNK 65536u
/* The largest `keep` of any row: the size of the table the objects sit in meanwhile. */
#define MEMPOOL_BENCH_MAX_KEEP 512u
#define MEMPOOL_BENCH_MAX_CORES 2u

/* The two pools of the autotest: no cache, and the largest cache DPDK allows. */
static struct rte_mempool *pool_nocache;
static struct rte_mempool *pool_cache;
static unsigned int pool_size;

static uint64_t
mempool_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* What the autotest writes into each object when the pool is populated: its index in the
 * first four bytes, zeros elsewhere. */
static void
mempool_bench_obj_init(struct rte_mempool *mp, void *arg, void *obj, unsigned int index)
{
	RTE_SET_USED(arg);
	memset(obj, 0, mp->elt_size);
	*(uint32_t *)obj = index;
}

/*
 * rte_eal_init(argc, argv), then both pools: `rte_lcore_count() * (512 + 512) - 1` objects
 * of `elt_size` bytes, the size mempool_perf_autotest gives them. The pool size is returned
 * through *size so the parent can print it.
 */
int
dpmem_bench_dpdk_mempool_init(int argc, char **argv, unsigned int elt_size, unsigned int *size)
{
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	pool_size = rte_lcore_count() * (MEMPOOL_BENCH_MAX_KEEP + RTE_MEMPOOL_CACHE_MAX_SIZE) - 1;
	pool_nocache = rte_mempool_create("bench_mp_nocache", pool_size, elt_size, 0, 0, NULL,
					  NULL, mempool_bench_obj_init, NULL, SOCKET_ID_ANY, 0);
	if (pool_nocache == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	pool_cache = rte_mempool_create("bench_mp_cache", pool_size, elt_size,
					RTE_MEMPOOL_CACHE_MAX_SIZE, 0, NULL, NULL,
					mempool_bench_obj_init, NULL, SOCKET_ID_ANY, 0);
	if (pool_cache == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	*size = pool_size;
	return 0;
}

/* What one lcore does in a row, and what it found. */
struct mempool_job {
	struct rte_mempool *mp;
	unsigned int bulk;
	unsigned int keep;
	uint64_t duration_ns;
	/* Lcores that reached the start line; each waits until all `cores` have. */
	uint32_t *ready;
	unsigned int cores;
	uint64_t objects;
	uint64_t elapsed_ns;
	int error;
};

/*
 * One chunk: MEMPOOL_BENCH_CHUNK / keep rounds of taking `keep` objects in gets of BULK
 * and handing them back in puts of BULK. BULK is a literal at every call site, so that the
 * compiler specializes DPDK's inline get/put for it (the autotest's constant_n=1 form).
 */
static __rte_always_inline int
mempool_chunk(struct rte_mempool *mp, struct rte_mempool_cache *cache, void **table,
	      unsigned int keep, const unsigned int BULK)
{
	unsigned int round, at;

	for (round = 0; round < MEMPOOL_BENCH_CHUNK / keep; round++) {
		for (at = 0; at < keep; at += BULK)
			if (unlikely(rte_mempool_generic_get(mp, &table[at], BULK, cache) < 0))
				return ENOENT;
		for (at = 0; at < keep; at += BULK)
			rte_mempool_generic_put(mp, &table[at], BULK, cache);
	}
	return 0;
}

static int
mempool_chunk_for(struct rte_mempool *mp, struct rte_mempool_cache *cache, void **table,
		  unsigned int keep, unsigned int bulk)
{
	switch (bulk) {
	case 1:
		return mempool_chunk(mp, cache, table, keep, 1);
	case 4:
		return mempool_chunk(mp, cache, table, keep, 4);
	case 8:
		return mempool_chunk(mp, cache, table, keep, 8);
	case 32:
		return mempool_chunk(mp, cache, table, keep, 32);
	default:
		return EINVAL;
	}
}

/* The loop every lcore of a row runs: a warm-up chunk, the start line, then chunks until
 * `duration_ns` has passed; the objects moved and the time it took. */
static int
mempool_lcore_loop(void *arg)
{
	struct mempool_job *job = arg;
	void *table[MEMPOOL_BENCH_MAX_KEEP] __rte_cache_aligned;
	struct rte_mempool_cache *cache = rte_mempool_default_cache(job->mp, rte_lcore_id());
	uint64_t start, now, objects = 0;
	int ret;

	ret = mempool_chunk_for(job->mp, cache, table, job->keep, job->bulk);
	__atomic_fetch_add(job->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(job->ready, __ATOMIC_ACQUIRE) < job->cores)
		rte_pause();
	start = mempool_now_ns();
	now = start;
	while (ret == 0 && now - start < job->duration_ns) {
		ret = mempool_chunk_for(job->mp, cache, table, job->keep, job->bulk);
		objects += MEMPOOL_BENCH_CHUNK;
		now = mempool_now_ns();
	}
	job->objects = objects;
	job->elapsed_ns = now - start;
	job->error = ret;
	return 0;
}

/*
 * One row: `cores` lcores (the main one and, for 2, the next) run the loop on the pool with
 * cache `cache_size` (0 or 512) at the same time for `duration_ns`. Per lcore: objects[i]
 * moved in elapsed_ns[i].
 */
int
dpmem_bench_dpdk_mempool_run(unsigned int cache_size, unsigned int cores, unsigned int bulk,
			     unsigned int keep, uint64_t duration_ns, uint64_t *objects,
			     uint64_t *elapsed_ns)
{
	struct mempool_job jobs[MEMPOOL_BENCH_MAX_CORES];
	struct rte_mempool *mp = cache_size == 0 ? pool_nocache : pool_cache;
	unsigned int worker = RTE_MAX_LCORE, i;
	uint32_t ready = 0;
	int ret = 0;

	if (mp == NULL)
		return ENODEV;
	if (cores == 0 || cores > MEMPOOL_BENCH_MAX_CORES || keep == 0 ||
	    keep > MEMPOOL_BENCH_MAX_KEEP || bulk == 0 || keep % bulk != 0 ||
	    (cache_size != 0 && cache_size != mp->cache_size))
		return EINVAL;
	/* As the autotest: every row starts from a full pool (caches count as in the pool). */
	if (rte_mempool_avail_count(mp) != pool_size)
		return EBUSY;
	if (cores == 2) {
		worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
		if (worker >= RTE_MAX_LCORE)
			return ENODEV;
	}

	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < cores; i++) {
		jobs[i].mp = mp;
		jobs[i].bulk = bulk;
		jobs[i].keep = keep;
		jobs[i].duration_ns = duration_ns;
		jobs[i].ready = &ready;
		jobs[i].cores = cores;
	}
	if (cores == 2) {
		ret = rte_eal_remote_launch(mempool_lcore_loop, &jobs[1], worker);
		if (ret != 0)
			return -ret;
	}
	mempool_lcore_loop(&jobs[0]);
	if (cores == 2)
		rte_eal_wait_lcore(worker);

	for (i = 0; i < cores; i++) {
		if (jobs[i].error != 0 && ret == 0)
			ret = jobs[i].error;
		objects[i] = jobs[i].objects;
		elapsed_ns[i] = jobs[i].elapsed_ns;
	}
	return ret;
}
