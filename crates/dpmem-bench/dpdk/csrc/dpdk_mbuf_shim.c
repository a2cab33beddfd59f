/*
 * DPDK 22.11 side of `dpmem bench mbuf`: packet buffer loops.
 *
 * rte_pktmbuf_alloc/free, the data operations, attach_extbuf and chain are static inline, so
 * the timed loops live in C. The conventions of dpdk_shim.c hold here too: names start with
 * dpmem_bench_dpdk_, 0 or a positive errno / rte_errno comes back, figures go through
 * out-pointers, nothing prints.
 *
 * One benchmark child calls dpmem_bench_dpdk_mbuf_init once (EAL init with two lcores, the
 * four pools, the ring, the external frame), then dpmem_bench_dpdk_mbuf_run once per row and
 * repetition. The rows and their numbers are those of crates/dpmem-bench/src/mbuf.rs, whose
 * dpmem loops (mbuf_loops.rs) do the same operations.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_pause.h>
#include <rte_ring.h>

/* The shape of the rows; init checks that the Rust side asks for the same. */
#define MBUF_BENCH_BURST 32u
#define MBUF_BENCH_HDR_LEN 62u
#define MBUF_BENCH_EXT_LEN 1260u
#define MBUF_BENCH_COPY_LEN 1200u
/* The data-operations row grows the tail by this much and the head by that, then cuts both. */
#define MBUF_BENCH_APPEND_LEN 64u
#define MBUF_BENCH_PREPEND_LEN 14u
/* Where the transmit row writes each header's sequence number: the RTP one, after
 * Ethernet (14), IPv4 (20) and UDP (8) headers and the RTP flags (2). */
#define MBUF_BENCH_SEQ_OFFSET 44u
#define MBUF_BENCH_RING_SIZE 1024u
/* The external frame: one burst's payloads, and room for the shared info at its end. */
#define MBUF_BENCH_FRAME_LEN                                                                \
	(MBUF_BENCH_BURST * MBUF_BENCH_EXT_LEN + sizeof(struct rte_mbuf_ext_shared_info) + 8u)

/* The rows, numbered as MbufRow::code() numbers them. */
enum mbuf_row {
	ROW_ALLOC_FREE,
	ROW_BULK,
	ROW_DATA_OPS,
	ROW_CLONE,
	ROW_COPY,
	ROW_EXTBUF,
	ROW_TX_PACKET,
	ROW_MIXED_POOLS,
	ROW_CROSS_CORE,
};

static struct rte_mempool *pool_main;  /* rows 1-5, 8 and 9 */
static struct rte_mempool *pool_other; /* row 8's second pool, the same geometry */
static struct rte_mempool *pool_hdr;   /* row 7's header buffers */
static struct rte_mempool *pool_chain; /* external segments: no room of their own */
static unsigned int pool_buffers;
static struct rte_ring *ring_cross_core;
static char *frame;
static rte_iova_t frame_iova;
static struct rte_mbuf_ext_shared_info *frame_shinfo;
static uint8_t hdr_template[MBUF_BENCH_HDR_LEN];

/* Start and end of a timed loop, on the clock and on the TSC. */
struct span {
	uint64_t start_ns, start_tsc, end_ns, end_tsc;
};

static uint64_t
mbuf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline void
span_start(struct span *s)
{
	s->start_ns = mbuf_now_ns();
	s->start_tsc = rte_rdtsc();
}

static inline void
span_stop(struct span *s)
{
	s->end_tsc = rte_rdtsc();
	s->end_ns = mbuf_now_ns();
}

/* The frame stays for the child's life: its owner's reference never goes, so this never runs
 * (DPDK needs a callback all the same). */
static void
frame_free_cb(void *addr, void *opaque)
{
	RTE_SET_USED(addr);
	RTE_SET_USED(opaque);
}

/*
 * rte_eal_init(argc, argv), then the pools (rte_pktmbuf_pool_create: `buffers` each, cache
 * `cache`, no private area; room `data_room` for the main and other pools, `hdr_room` for the
 * header pool, none for the chain pool), the cross-core ring (SP/SC), and the external frame
 * with its shared info at the end (rte_pktmbuf_ext_shinfo_init_helper: one reference, the
 * owner's). EINVAL when the loop shape the caller expects is not this file's.
 */
int
dpmem_bench_dpdk_mbuf_init(int argc, char **argv, unsigned int buffers, unsigned int cache,
			   uint16_t data_room, uint16_t hdr_room, unsigned int burst,
			   unsigned int hdr_len, unsigned int ext_len, unsigned int copy_len)
{
	uint16_t frame_len = MBUF_BENCH_FRAME_LEN;
	unsigned int i;

	if (burst != MBUF_BENCH_BURST || hdr_len != MBUF_BENCH_HDR_LEN ||
	    ext_len != MBUF_BENCH_EXT_LEN || copy_len != MBUF_BENCH_COPY_LEN)
		return EINVAL;
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	pool_main = rte_pktmbuf_pool_create("bench_mbuf_main", buffers, cache, 0, data_room,
					    SOCKET_ID_ANY);
	pool_other = rte_pktmbuf_pool_create("bench_mbuf_other", buffers, cache, 0, data_room,
					     SOCKET_ID_ANY);
	pool_hdr = rte_pktmbuf_pool_create("bench_mbuf_hdr", buffers, cache, 0, hdr_room,
					   SOCKET_ID_ANY);
	pool_chain = rte_pktmbuf_pool_create("bench_mbuf_chain", buffers, cache, 0, 0,
					     SOCKET_ID_ANY);
	if (pool_main == NULL || pool_other == NULL || pool_hdr == NULL || pool_chain == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	pool_buffers = buffers;
	ring_cross_core = rte_ring_create("bench_mbuf_xcore", MBUF_BENCH_RING_SIZE, SOCKET_ID_ANY,
					  RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (ring_cross_core == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	frame = rte_zmalloc("bench_mbuf_frame", MBUF_BENCH_FRAME_LEN, RTE_CACHE_LINE_SIZE);
	if (frame == NULL)
		return ENOMEM;
	frame_iova = rte_malloc_virt2iova(frame);
	frame_shinfo = rte_pktmbuf_ext_shinfo_init_helper(frame, &frame_len, frame_free_cb, NULL);
	if (frame_shinfo == NULL || frame_len < MBUF_BENCH_BURST * MBUF_BENCH_EXT_LEN)
		return EINVAL;
	for (i = 0; i < MBUF_BENCH_HDR_LEN; i++)
		hdr_template[i] = (uint8_t)(0x40 + i);
	return 0;
}

/* Whether every buffer is back in its pool (lcore caches count as in it). */
static int
pools_full(void)
{
	return rte_mempool_avail_count(pool_main) == pool_buffers &&
	       rte_mempool_avail_count(pool_other) == pool_buffers &&
	       rte_mempool_avail_count(pool_hdr) == pool_buffers &&
	       rte_mempool_avail_count(pool_chain) == pool_buffers;
}

/* The packet the clone, copy and cross-core rows start from: one segment of COPY_LEN bytes. */
static struct rte_mbuf *
source_packet(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool_main);
	char *data;

	if (m == NULL)
		return NULL;
	data = rte_pktmbuf_append(m, MBUF_BENCH_COPY_LEN);
	if (data == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(data, 0x5a, MBUF_BENCH_COPY_LEN);
	return m;
}

/* Makes `m` (fresh from the chain pool) one segment of EXT_LEN bytes at `off` in the frame,
 * taking the reference it holds on the frame's shared info, as MTL's transmitter does. */
static __rte_always_inline void
attach_frame_piece(struct rte_mbuf *m, unsigned int off)
{
	rte_mbuf_ext_refcnt_update(frame_shinfo, 1);
	rte_pktmbuf_attach_extbuf(m, frame + off, frame_iova + off, MBUF_BENCH_EXT_LEN,
				  frame_shinfo);
	m->data_len = MBUF_BENCH_EXT_LEN;
	m->pkt_len = MBUF_BENCH_EXT_LEN;
}

/* ---- the one-lcore rows: `ops` operations, timed as one loop ---------------------------- */

static int
row_alloc_free(uint64_t ops, struct span *t)
{
	uint64_t i;

	span_start(t);
	for (i = 0; i < ops; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool_main);

		if (unlikely(m == NULL))
			return ENOENT;
		rte_pktmbuf_free(m);
	}
	span_stop(t);
	return 0;
}

/* `ops` buffers, in bulks of BURST. */
static int
row_bulk(uint64_t ops, struct span *t)
{
	struct rte_mbuf *pkts[MBUF_BENCH_BURST];
	uint64_t i;

	span_start(t);
	for (i = 0; i < ops; i += MBUF_BENCH_BURST) {
		if (unlikely(rte_pktmbuf_alloc_bulk(pool_main, pkts, MBUF_BENCH_BURST) != 0))
			return ENOENT;
		rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
	}
	span_stop(t);
	return 0;
}

/* One op: append, prepend, adj and trim on one buffer, a byte written into each grown end. */
static int
row_data_ops(uint64_t ops, struct span *t)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool_main);
	uint64_t i;
	int ret = 0;

	if (m == NULL)
		return ENOENT;
	span_start(t);
	for (i = 0; i < ops; i++) {
		char *tail = rte_pktmbuf_append(m, MBUF_BENCH_APPEND_LEN);
		char *head;

		if (unlikely(tail == NULL)) {
			ret = ENOSPC;
			break;
		}
		tail[0] = (char)i;
		head = rte_pktmbuf_prepend(m, MBUF_BENCH_PREPEND_LEN);
		if (unlikely(head == NULL)) {
			ret = ENOSPC;
			break;
		}
		head[0] = (char)i;
		if (unlikely(rte_pktmbuf_adj(m, MBUF_BENCH_PREPEND_LEN) == NULL ||
			     rte_pktmbuf_trim(m, MBUF_BENCH_APPEND_LEN) != 0)) {
			ret = EINVAL;
			break;
		}
	}
	span_stop(t);
	rte_pktmbuf_free(m);
	return ret;
}

static int
row_clone(uint64_t ops, struct span *t)
{
	struct rte_mbuf *src = source_packet();
	uint64_t i;
	int ret = 0;

	if (src == NULL)
		return ENOENT;
	span_start(t);
	for (i = 0; i < ops; i++) {
		struct rte_mbuf *c = rte_pktmbuf_clone(src, pool_main);

		if (unlikely(c == NULL)) {
			ret = ENOENT;
			break;
		}
		rte_pktmbuf_free(c);
	}
	span_stop(t);
	rte_pktmbuf_free(src);
	return ret;
}

static int
row_copy(uint64_t ops, struct span *t)
{
	struct rte_mbuf *src = source_packet();
	uint64_t i;
	int ret = 0;

	if (src == NULL)
		return ENOENT;
	span_start(t);
	for (i = 0; i < ops; i++) {
		struct rte_mbuf *c = rte_pktmbuf_copy(src, pool_main, 0, MBUF_BENCH_COPY_LEN);

		if (unlikely(c == NULL)) {
			ret = ENOENT;
			break;
		}
		rte_pktmbuf_free(c);
	}
	span_stop(t);
	rte_pktmbuf_free(src);
	return ret;
}

/* One op: a chain-pool buffer attached to a piece of the frame, then freed. */
static int
row_extbuf(uint64_t ops, struct span *t)
{
	uint64_t i;

	span_start(t);
	for (i = 0; i < ops; i++) {
		struct rte_mbuf *m = rte_pktmbuf_alloc(pool_chain);

		if (unlikely(m == NULL))
			return ENOENT;
		attach_frame_piece(m, (unsigned int)(i % MBUF_BENCH_BURST) * MBUF_BENCH_EXT_LEN);
		rte_pktmbuf_free(m);
	}
	span_stop(t);
	return 0;
}

/*
 * One op: one packet of a media transmitter (MTL's ST 2110-20 path), made in bursts of BURST
 * and freed in bulk: a header buffer with 62 bytes (a template, then the sequence number),
 * chained to a chain-pool buffer attached to 1260 bytes of the frame.
 */
static int
row_tx_packet(uint64_t ops, struct span *t)
{
	struct rte_mbuf *pkts[MBUF_BENCH_BURST];
	uint16_t seq = 0;
	uint64_t i;
	unsigned int j;

	span_start(t);
	for (i = 0; i < ops; i += MBUF_BENCH_BURST) {
		if (unlikely(rte_pktmbuf_alloc_bulk(pool_hdr, pkts, MBUF_BENCH_BURST) != 0))
			return ENOENT;
		for (j = 0; j < MBUF_BENCH_BURST; j++) {
			char *hdr = rte_pktmbuf_append(pkts[j], MBUF_BENCH_HDR_LEN);
			rte_be16_t be_seq = rte_cpu_to_be_16(seq++);
			struct rte_mbuf *seg;

			if (unlikely(hdr == NULL)) {
				rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
				return ENOSPC;
			}
			rte_memcpy(hdr, hdr_template, MBUF_BENCH_HDR_LEN);
			memcpy(hdr + MBUF_BENCH_SEQ_OFFSET, &be_seq, sizeof(be_seq));
			seg = rte_pktmbuf_alloc(pool_chain);
			if (unlikely(seg == NULL)) {
				rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
				return ENOENT;
			}
			attach_frame_piece(seg, j * MBUF_BENCH_EXT_LEN);
			if (unlikely(rte_pktmbuf_chain(pkts[j], seg) != 0)) {
				rte_pktmbuf_free(seg);
				rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
				return EOVERFLOW;
			}
		}
		rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
	}
	span_stop(t);
	return 0;
}

/* `ops` buffers, BURST at a time: half from each of two pools, freed in one bulk call with the
 * pools alternating, so every buffer starts a new run of its pool. */
static int
row_mixed_pools(uint64_t ops, struct span *t)
{
	struct rte_mbuf *a[MBUF_BENCH_BURST / 2], *b[MBUF_BENCH_BURST / 2];
	struct rte_mbuf *pkts[MBUF_BENCH_BURST];
	uint64_t i;
	unsigned int j;

	span_start(t);
	for (i = 0; i < ops; i += MBUF_BENCH_BURST) {
		if (unlikely(rte_pktmbuf_alloc_bulk(pool_main, a, MBUF_BENCH_BURST / 2) != 0))
			return ENOENT;
		if (unlikely(rte_pktmbuf_alloc_bulk(pool_other, b, MBUF_BENCH_BURST / 2) != 0)) {
			rte_pktmbuf_free_bulk(a, MBUF_BENCH_BURST / 2);
			return ENOENT;
		}
		for (j = 0; j < MBUF_BENCH_BURST / 2; j++) {
			pkts[2 * j] = a[j];
			pkts[2 * j + 1] = b[j];
		}
		rte_pktmbuf_free_bulk(pkts, MBUF_BENCH_BURST);
	}
	span_stop(t);
	return 0;
}

/* ---- the two-lcore row ----------------------------------------------------------------- */

/* What the worker lcore does in the cross-core row, and what it found. */
struct cross_core_job {
	uint64_t ops;
	/* Lcores at the start line; each waits for both. */
	uint32_t ready;
	/* Set by the main lcore when it fails: the worker stops once the ring is empty. */
	uint32_t stop;
	struct span span;
	uint64_t freed;
};

/* The worker: dequeue up to BURST clones at a time and free each, until `ops` are freed. */
static int
cross_core_consumer(void *arg)
{
	struct cross_core_job *job = arg;
	struct rte_mbuf *got[MBUF_BENCH_BURST];
	uint64_t freed = 0;

	__atomic_fetch_add(&job->ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&job->ready, __ATOMIC_ACQUIRE) < 2)
		rte_pause();
	span_start(&job->span);
	while (freed < job->ops) {
		unsigned int n = rte_ring_sc_dequeue_burst(ring_cross_core, (void **)got,
							   MBUF_BENCH_BURST, NULL);
		unsigned int k;

		if (n == 0) {
			if (__atomic_load_n(&job->stop, __ATOMIC_ACQUIRE))
				break;
			rte_pause();
			continue;
		}
		for (k = 0; k < n; k++)
			rte_pktmbuf_free(got[k]);
		freed += n;
	}
	span_stop(&job->span);
	job->freed = freed;
	return 0;
}

/*
 * One op: a clone made on the main lcore, passed through the SP/SC ring in bursts of BURST,
 * and freed on the worker lcore; the source's reference count is touched from both. The
 * span runs from the earlier start to the later end of the two loops.
 */
static int
row_cross_core(uint64_t ops, struct span *t)
{
	struct cross_core_job job;
	struct rte_mbuf *clones[MBUF_BENCH_BURST];
	struct rte_mbuf *src;
	struct span main_span;
	unsigned int worker, j;
	uint64_t i;
	int ret = 0;

	worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	if (worker >= RTE_MAX_LCORE)
		return ENODEV;
	src = source_packet();
	if (src == NULL)
		return ENOENT;
	memset(&job, 0, sizeof(job));
	job.ops = ops;
	ret = rte_eal_remote_launch(cross_core_consumer, &job, worker);
	if (ret != 0) {
		rte_pktmbuf_free(src);
		return -ret;
	}
	__atomic_fetch_add(&job.ready, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&job.ready, __ATOMIC_ACQUIRE) < 2)
		rte_pause();
	span_start(&main_span);
	for (i = 0; i < ops && ret == 0; i += MBUF_BENCH_BURST) {
		unsigned int sent = 0;

		for (j = 0; j < MBUF_BENCH_BURST; j++) {
			clones[j] = rte_pktmbuf_clone(src, pool_main);
			if (unlikely(clones[j] == NULL)) {
				rte_pktmbuf_free_bulk(clones, j);
				ret = ENOENT;
				break;
			}
		}
		while (ret == 0 && sent < MBUF_BENCH_BURST) {
			unsigned int n = rte_ring_sp_enqueue_burst(ring_cross_core,
								   (void **)&clones[sent],
								   MBUF_BENCH_BURST - sent, NULL);

			if (n == 0)
				rte_pause();
			sent += n;
		}
	}
	span_stop(&main_span);
	/* Only a failure stops the worker early: on success it stops once it has freed `ops`,
	 * and a stop raised now could end it between the last burst's enqueue and its dequeue. */
	if (ret != 0)
		__atomic_store_n(&job.stop, 1, __ATOMIC_RELEASE);
	rte_eal_wait_lcore(worker);
	if (ret != 0) {
		/* What the worker left in the ring when it stopped. */
		unsigned int n;

		while ((n = rte_ring_sc_dequeue_burst(ring_cross_core, (void **)clones,
						      MBUF_BENCH_BURST, NULL)) != 0)
			rte_pktmbuf_free_bulk(clones, n);
	}
	rte_pktmbuf_free(src);
	if (ret == 0 && job.freed != ops)
		ret = EIO;
	t->start_ns = RTE_MIN(main_span.start_ns, job.span.start_ns);
	t->start_tsc = RTE_MIN(main_span.start_tsc, job.span.start_tsc);
	t->end_ns = RTE_MAX(main_span.end_ns, job.span.end_ns);
	t->end_tsc = RTE_MAX(main_span.end_tsc, job.span.end_tsc);
	return ret;
}

/*
 * One row, `ops` operations: the nanoseconds and TSC cycles of its timed loop. EBUSY when a
 * pool was not full before or after the row (a buffer lost), EINVAL for an unknown row or an
 * `ops` that is not a multiple of the burst.
 */
int
dpmem_bench_dpdk_mbuf_run(unsigned int row, uint64_t ops, uint64_t *ns, uint64_t *cycles)
{
	struct span t;
	int ret;

	if (pool_main == NULL)
		return ENODEV;
	if (ops % MBUF_BENCH_BURST != 0)
		return EINVAL;
	if (!pools_full())
		return EBUSY;
	memset(&t, 0, sizeof(t));
	switch (row) {
	case ROW_ALLOC_FREE:
		ret = row_alloc_free(ops, &t);
		break;
	case ROW_BULK:
		ret = row_bulk(ops, &t);
		break;
	case ROW_DATA_OPS:
		ret = row_data_ops(ops, &t);
		break;
	case ROW_CLONE:
		ret = row_clone(ops, &t);
		break;
	case ROW_COPY:
		ret = row_copy(ops, &t);
		break;
	case ROW_EXTBUF:
		ret = row_extbuf(ops, &t);
		break;
	case ROW_TX_PACKET:
		ret = row_tx_packet(ops, &t);
		break;
	case ROW_MIXED_POOLS:
		ret = row_mixed_pools(ops, &t);
		break;
	case ROW_CROSS_CORE:
		ret = row_cross_core(ops, &t);
		break;
	default:
		return EINVAL;
	}
	if (ret != 0)
		return ret;
	if (!pools_full())
		return EBUSY;
	*ns = t.end_ns - t.start_ns;
	*cycles = t.end_tsc - t.start_tsc;
	return 0;
}
