/*
 * DPDK 22.11 side of `dpmem bench dma`: copies through DPDK's software DMA device, the
 * dma_skeleton vdev, in the same loop the dpmem side runs on its copy engine.
 *
 * rte_dma_copy, rte_dma_submit, rte_dma_completed and rte_dma_burst_capacity are static
 * inline, so the timed loop lives in C. The conventions of dpdk_shim.c hold here too: names
 * start with dpmem_bench_dpdk_, 0 or a positive errno / rte_errno comes back, figures go
 * through out-pointers, nothing prints.
 *
 * One benchmark child calls dpmem_bench_dpdk_dma_init once (EAL init, whose arguments
 * create the vdev; the device configured with one memory-to-memory channel and started;
 * source and destination buffers), then dpmem_bench_dpdk_dma_run once per row.
 */

/* dmadev is still experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_dmadev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_pause.h>

/* Bursts between two looks at the clock. */
#define DMA_BENCH_BURSTS_PER_CHECK 64u

static int16_t dma_dev = -1;
static uint8_t *dma_src;
static uint8_t *dma_dst;
static rte_iova_t dma_src_iova;
static rte_iova_t dma_dst_iova;
static unsigned int dma_slots;
static unsigned int dma_slot_len;

static uint64_t
dma_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/*
 * rte_eal_init(argc, argv) (whose arguments create the device, e.g. --vdev=dma_skeleton),
 * then device `dev_name` with one MEM_TO_MEM vchan of `nb_desc` descriptors, started, and
 * `slots` source and destination slots of `slot_len` bytes each, written once so their pages
 * are in place before the clock starts.
 */
int
dpmem_bench_dpdk_dma_init(int argc, char **argv, const char *dev_name, unsigned int nb_desc,
			  unsigned int slots, unsigned int slot_len)
{
	struct rte_dma_conf conf = { .nb_vchans = 1 };
	struct rte_dma_vchan_conf vconf = {
		.direction = RTE_DMA_DIR_MEM_TO_MEM,
		.nb_desc = (uint16_t)nb_desc,
	};
	size_t len = (size_t)slots * slot_len;
	int id;

	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	id = rte_dma_get_dev_id_by_name(dev_name);
	if (id < 0)
		return ENODEV;
	dma_dev = (int16_t)id;
	if (rte_dma_configure(dma_dev, &conf) != 0 || rte_dma_vchan_setup(dma_dev, 0, &vconf) != 0)
		return EINVAL;
	if (rte_dma_start(dma_dev) != 0)
		return EIO;
	dma_src = rte_malloc("bench_dma_src", len, 4096);
	dma_dst = rte_malloc("bench_dma_dst", len, 4096);
	if (dma_src == NULL || dma_dst == NULL)
		return ENOMEM;
	memset(dma_src, 0x5a, len);
	memset(dma_dst, 0, len);
	dma_src_iova = rte_malloc_virt2iova(dma_src);
	dma_dst_iova = rte_malloc_virt2iova(dma_dst);
	if (dma_src_iova == RTE_BAD_IOVA || dma_dst_iova == RTE_BAD_IOVA)
		return EFAULT;
	dma_slots = slots;
	dma_slot_len = slot_len;
	return 0;
}

/* What one pass of the loop keeps. */
struct dma_loop {
	unsigned int slot;
	uint64_t in_flight;
	uint64_t completed;
};

/*
 * One burst: as many copies of `len` bytes as fit, up to `burst`, each from the next source
 * slot to the destination slot of the same number, then the doorbell, then one look at the
 * completions (at most `max_reap`).
 */
static int
dma_burst(struct dma_loop *l, unsigned int len, unsigned int burst, unsigned int max_reap)
{
	uint16_t room = rte_dma_burst_capacity(dma_dev, 0);
	unsigned int n = RTE_MIN(burst, (unsigned int)room);
	bool error = false;
	uint16_t done;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t off = (uint64_t)l->slot * dma_slot_len;

		if (rte_dma_copy(dma_dev, 0, dma_src_iova + off, dma_dst_iova + off, len, 0) < 0)
			return ENOSPC;
		l->slot = l->slot + 1 == dma_slots ? 0 : l->slot + 1;
	}
	if (n != 0)
		rte_dma_submit(dma_dev, 0);
	l->in_flight += n;
	done = rte_dma_completed(dma_dev, 0, (uint16_t)max_reap, NULL, &error);
	if (error)
		return EIO;
	l->in_flight -= done;
	l->completed += done;
	/* Nothing to do until the device catches up: leave the core's resources to it. */
	if (n == 0 && done == 0)
		rte_pause();
	return 0;
}

/* Reaps until nothing is in flight (at most a second). */
static int
dma_drain(struct dma_loop *l, unsigned int max_reap)
{
	uint64_t end = dma_now_ns() + UINT64_C(1000000000);
	bool error = false;

	while (l->in_flight != 0) {
		uint16_t done = rte_dma_completed(dma_dev, 0, (uint16_t)max_reap, NULL, &error);

		if (error)
			return EIO;
		l->in_flight -= done;
		if (done == 0) {
			if (dma_now_ns() > end)
				return ETIMEDOUT;
			rte_pause();
		}
	}
	return 0;
}

/*
 * One row: a warm-up of `DMA_BENCH_BURSTS_PER_CHECK` bursts, drained; then bursts until
 * `duration_ns` has passed, the clock read every DMA_BENCH_BURSTS_PER_CHECK bursts.
 * *copies is what completed in that time and *elapsed_ns the time; the copies still in
 * flight at the end are drained and not counted. Then every destination slot must hold its
 * source slot's bytes (EIO otherwise).
 */
int
dpmem_bench_dpdk_dma_run(unsigned int len, unsigned int burst, unsigned int max_reap,
			 uint64_t duration_ns, uint64_t *copies, uint64_t *elapsed_ns)
{
	struct dma_loop l = { 0 };
	uint64_t start, now;
	unsigned int k;
	int rc;

	if (dma_dev < 0 || len == 0 || len > dma_slot_len)
		return EINVAL;
	for (k = 0; k < DMA_BENCH_BURSTS_PER_CHECK; k++) {
		rc = dma_burst(&l, len, burst, max_reap);
		if (rc != 0)
			return rc;
	}
	rc = dma_drain(&l, max_reap);
	if (rc != 0)
		return rc;
	l.completed = 0;
	start = dma_now_ns();
	do {
		for (k = 0; k < DMA_BENCH_BURSTS_PER_CHECK; k++) {
			rc = dma_burst(&l, len, burst, max_reap);
			if (rc != 0)
				return rc;
		}
		now = dma_now_ns();
	} while (now - start < duration_ns);
	*copies = l.completed;
	*elapsed_ns = now - start;
	rc = dma_drain(&l, max_reap);
	if (rc != 0)
		return rc;
	/* Every slot was copied at least once: its bytes are the source's. */
	for (k = 0; k < dma_slots; k++) {
		uint64_t off = (uint64_t)k * dma_slot_len;

		if (memcmp(dma_dst + off, dma_src + off, len) != 0)
			return EIO;
	}
	return 0;
}
