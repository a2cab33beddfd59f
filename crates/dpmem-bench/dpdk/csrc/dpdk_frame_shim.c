/*
 * DPDK 22.11 side of `dpmem bench frame`: media frames as Intel's Media Transport Library
 * moves them on DPDK — the ST 2110-20 transmit loop (a header buffer per packet written from
 * a template, a zero-room buffer attached to the frame's bytes as an external buffer,
 * chained; freed in bulk as TX completion frees them) and the receive side's copies of
 * payloads into a frame, by rte_memcpy and through the dma_skeleton software DMA device.
 *
 * The conventions of dpdk_shim.c hold here too: names start with dpmem_bench_dpdk_, 0 or a
 * positive errno / rte_errno comes back, figures go through out-pointers, nothing prints.
 *
 * One benchmark child calls dpmem_bench_dpdk_frame_init once (EAL init, whose arguments
 * create the device; the pools; the transmitted frame with its shared info; the destination
 * frame; the device with one channel, started), then dpmem_bench_dpdk_frame_run once per row
 * and repetition. The rows and their numbers are those of crates/dpmem-bench/src/frame/,
 * whose dpmem loops (dpmem_loops.rs) do the same work.
 */

/* dmadev is still experimental in 22.11. */
#define ALLOW_EXPERIMENTAL_API

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dmadev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>
#include <rte_memzone.h>
#include <rte_pause.h>

/* The header and burst this file is written for; init checks the Rust side asks for them. */
#define FRAME_BENCH_HDR_LEN 62u
#define FRAME_BENCH_BURST 32u
/* The most packets a frame may have: the arrays of sent packets are this long. */
#define FRAME_BENCH_MAX_PACKETS 8192u
/* Where the header's fields are: IPv4 after Ethernet, UDP, RTP, the sample row data header. */
#define IP_AT 14u
#define UDP_AT 34u
#define RTP_AT 42u
#define SRD_AT 54u
/* Bytes of the stamp each received packet carries at the start of its payload. */
#define STAMP_LEN 8u

/* The rows, numbered as FrameRow::code() numbers them. */
enum frame_row {
	ROW_PACKETISE,
	ROW_PACKETISE_REDUNDANT,
	ROW_REASSEMBLY_CPU,
	ROW_REASSEMBLY_DEVICE,
};

/* The shape both sides share (FrameShape on the Rust side, field for field). */
struct dpmem_bench_frame_shape {
	uint32_t tx_buffers;
	uint32_t tx_cache;
	uint16_t hdr_room;
	uint32_t rx_buffers;
	uint32_t rx_cache;
	uint16_t rx_room;
	uint32_t burst;
	uint16_t hdr_len;
	uint16_t payload_len;
	uint32_t frame_size;
	uint32_t line_bytes;
	uint32_t pgroup_bytes;
	uint32_t pgroup_pixels;
	uint32_t fps_num;
	uint32_t fps_den;
	uint32_t rx_packets;
	uint32_t nb_desc;
	uint32_t max_reap;
};

static struct dpmem_bench_frame_shape shape;
static uint32_t packets_per_frame;

static struct rte_mempool *pool_hdr;
static struct rte_mempool *pool_payload; /* zero room: external payload segments */
static struct rte_mempool *pool_rx;

/* The transmitted frame, its device address and its shared info (whose callback is the
 * frame's "done"). */
static uint8_t *tx_frame;
static rte_iova_t tx_frame_iova;
static struct rte_mbuf_ext_shared_info *tx_shinfo;
static uint64_t frames_done;
static uint64_t frames_sent;
static uint32_t next_seq;

/* The header every packet starts from, and the one's-complement sum of its IPv4 header's
 * fixed words (everything but total length, identification and checksum). */
static uint8_t hdr_template[FRAME_BENCH_HDR_LEN];
static uint32_t ip_fixed_sum;

/* The frame payloads are copied to on receive. */
static uint8_t *rx_frame;
static rte_iova_t rx_frame_iova;
static uint64_t next_rx_frame;

static int16_t dma_dev = -1;
/* Packets held for copies in flight, in the order the copies were queued. */
static struct rte_mbuf **held;
static uint32_t held_head, held_tail;

/* Packets of the frame being sent, per path. */
static struct rte_mbuf *sent[FRAME_BENCH_MAX_PACKETS];
static struct rte_mbuf *sent_twin[FRAME_BENCH_MAX_PACKETS];

struct span {
	uint64_t start_ns, start_tsc, end_ns, end_tsc;
};

static uint64_t
frame_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static inline void
span_start(struct span *s)
{
	s->start_ns = frame_now_ns();
	s->start_tsc = rte_rdtsc();
}

static inline void
span_stop(struct span *s)
{
	s->end_tsc = rte_rdtsc();
	s->end_ns = frame_now_ns();
}

/* The frame's last reference is gone: it is free again. */
static void
frame_done_cb(void *addr, void *opaque)
{
	RTE_SET_USED(addr);
	(*(uint64_t *)opaque)++;
}

static inline void
put_be16(uint8_t *at, uint16_t v)
{
	rte_be16_t be = rte_cpu_to_be_16(v);

	memcpy(at, &be, sizeof(be));
}

static inline void
put_be32(uint8_t *at, uint32_t v)
{
	rte_be32_t be = rte_cpu_to_be_32(v);

	memcpy(at, &be, sizeof(be));
}

/*
 * rte_eal_init(argc, argv), then: the header pool (hdr_room), the zero-room payload pool and
 * the receive pool (rx_room), each rte_pktmbuf_pool_create'd with the shape's sizes and
 * caches; the transmitted frame in an IOVA-contiguous memzone and its shared info (count 0
 * between frames, callback counting frames done); the destination frame; device `dev_name`
 * with one MEM_TO_MEM channel of nb_desc descriptors, started. EINVAL when the shape is not
 * one this file can run.
 */
int
dpmem_bench_dpdk_frame_init(int argc, char **argv, const struct dpmem_bench_frame_shape *s,
			    const uint8_t *template, unsigned int template_len, const char *dev_name)
{
	const struct rte_memzone *mz;
	struct rte_dma_conf conf = { .nb_vchans = 1 };
	struct rte_dma_vchan_conf vconf = { .direction = RTE_DMA_DIR_MEM_TO_MEM };
	unsigned int i;
	int id;

	shape = *s;
	if (shape.hdr_len != FRAME_BENCH_HDR_LEN || template_len != FRAME_BENCH_HDR_LEN ||
	    shape.burst != FRAME_BENCH_BURST || shape.payload_len == 0 ||
	    shape.line_bytes == 0 || shape.pgroup_bytes == 0 || shape.fps_num == 0 ||
	    !rte_is_power_of_2(shape.nb_desc) || shape.max_reap == 0)
		return EINVAL;
	packets_per_frame = (shape.frame_size + shape.payload_len - 1) / shape.payload_len;
	if (packets_per_frame > FRAME_BENCH_MAX_PACKETS ||
	    (uint64_t)shape.rx_packets * shape.payload_len > shape.frame_size)
		return EINVAL;
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;

	pool_hdr = rte_pktmbuf_pool_create("bench_frame_h", shape.tx_buffers, shape.tx_cache, 0,
					   shape.hdr_room, SOCKET_ID_ANY);
	pool_payload = rte_pktmbuf_pool_create("bench_frame_p", shape.tx_buffers, shape.tx_cache,
					       0, 0, SOCKET_ID_ANY);
	pool_rx = rte_pktmbuf_pool_create("bench_frame_rx", shape.rx_buffers, shape.rx_cache, 0,
					  shape.rx_room, SOCKET_ID_ANY);
	if (pool_hdr == NULL || pool_payload == NULL || pool_rx == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;

	/* As dpmem's session asks for its frames: IOVA-contiguous if it can be had. */
	mz = rte_memzone_reserve_aligned("bench_frame_tx", shape.frame_size, SOCKET_ID_ANY,
					 RTE_MEMZONE_IOVA_CONTIG, 4096);
	if (mz == NULL)
		mz = rte_memzone_reserve_aligned("bench_frame_tx", shape.frame_size,
						 SOCKET_ID_ANY, 0, 4096);
	if (mz == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	tx_frame = mz->addr;
	tx_frame_iova = mz->iova;
	memset(tx_frame, 0, shape.frame_size);
	tx_shinfo = rte_zmalloc("bench_frame_shinfo", sizeof(*tx_shinfo), RTE_CACHE_LINE_SIZE);
	if (tx_shinfo == NULL)
		return ENOMEM;
	tx_shinfo->free_cb = frame_done_cb;
	tx_shinfo->fcb_opaque = &frames_done;
	rte_mbuf_ext_refcnt_set(tx_shinfo, 0);

	mz = rte_memzone_reserve_aligned("bench_frame_rx_frame", shape.frame_size, SOCKET_ID_ANY,
					 RTE_MEMZONE_IOVA_CONTIG, 4096);
	if (mz == NULL)
		return rte_errno != 0 ? rte_errno : ENOMEM;
	rx_frame = mz->addr;
	rx_frame_iova = mz->iova;
	memset(rx_frame, 0, shape.frame_size);

	/* The template, with the fields each packet computes cleared, and its fixed sum. */
	memcpy(hdr_template, template, FRAME_BENCH_HDR_LEN);
	memset(hdr_template + IP_AT + 2, 0, 4);	 /* total length, identification */
	memset(hdr_template + IP_AT + 10, 0, 2); /* checksum */
	hdr_template[RTP_AT + 1] &= 0x7f;	 /* marker */
	ip_fixed_sum = 0;
	for (i = 0; i < 20; i += 2)
		ip_fixed_sum += (uint32_t)hdr_template[IP_AT + i] << 8 | hdr_template[IP_AT + i + 1];

	id = rte_dma_get_dev_id_by_name(dev_name);
	if (id < 0)
		return ENODEV;
	dma_dev = (int16_t)id;
	vconf.nb_desc = (uint16_t)shape.nb_desc;
	if (rte_dma_configure(dma_dev, &conf) != 0 || rte_dma_vchan_setup(dma_dev, 0, &vconf) != 0)
		return EINVAL;
	if (rte_dma_start(dma_dev) != 0)
		return EIO;
	held = rte_zmalloc("bench_frame_held", shape.nb_desc * sizeof(*held), RTE_CACHE_LINE_SIZE);
	if (held == NULL)
		return ENOMEM;
	return 0;
}

/* Whether every buffer is back in its pool (lcore caches count as in it). */
static int
pools_full(void)
{
	return rte_mempool_avail_count(pool_hdr) == shape.tx_buffers &&
	       rte_mempool_avail_count(pool_payload) == shape.tx_buffers &&
	       rte_mempool_avail_count(pool_rx) == shape.rx_buffers;
}

/* ---- transmit --------------------------------------------------------------------------- */

/* Writes packet `seq`'s header into `out`: the template, then the lengths, the IPv4
 * identification and checksum, the RTP marker, sequence number and timestamp, and the
 * payload header's extended sequence number, length, row and offset (as dpmem's
 * HeaderTemplate::write does). */
static __rte_always_inline void
write_header(uint8_t *out, uint32_t seq, uint32_t timestamp, int marker, uint16_t row,
	     uint16_t pixel, uint16_t len)
{
	uint16_t ip_total = (uint16_t)(FRAME_BENCH_HDR_LEN - IP_AT + len);
	uint16_t udp_len = (uint16_t)(FRAME_BENCH_HDR_LEN - UDP_AT + len);
	uint16_t ip_id = (uint16_t)seq;
	uint32_t sum = ip_fixed_sum + ip_total + ip_id;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	rte_memcpy(out, hdr_template, FRAME_BENCH_HDR_LEN);
	put_be16(out + IP_AT + 2, ip_total);
	put_be16(out + IP_AT + 4, ip_id);
	put_be16(out + IP_AT + 10, (uint16_t)~sum);
	put_be16(out + UDP_AT + 4, udp_len);
	out[RTP_AT + 1] |= (uint8_t)(marker << 7);
	put_be16(out + RTP_AT + 2, (uint16_t)seq);
	put_be32(out + RTP_AT + 4, timestamp);
	put_be16(out + SRD_AT, (uint16_t)(seq >> 16));
	put_be16(out + SRD_AT + 2, len);
	put_be16(out + SRD_AT + 4, row & 0x7fff);
	put_be16(out + SRD_AT + 6, pixel & 0x7fff);
}

/* Frees the first `n` packets of each path (those the frame built before it failed). */
static void
free_sent(unsigned int n, int redundant)
{
	rte_pktmbuf_free_bulk(sent, n);
	if (redundant)
		rte_pktmbuf_free_bulk(sent_twin, n);
}

/*
 * One frame: per packet a header buffer (bulk-allocated a burst at a time) with the header
 * written, chained to a payload buffer attached to the frame's bytes with one more reference
 * on the frame's shared info; with `redundant`, a second header over the same payload segment
 * (its count +1), as MTL's redundant path does. The builder holds its own reference on the
 * frame from the first packet to the last. Then the packets are freed a burst at a time, as
 * TX completion frees them, and the frame's done callback must have run once.
 */
static int
packetise_frame(int redundant)
{
	uint32_t total = packets_per_frame;
	uint32_t timestamp =
		(uint32_t)(frames_sent * UINT64_C(90000) * shape.fps_den / shape.fps_num);
	uint32_t seq0 = next_seq;
	uint64_t done_before = frames_done;
	unsigned int i, j;

	frames_sent++;
	next_seq += total;
	/* The builder's reference: the frame is the application's alone until now. */
	rte_mbuf_ext_refcnt_set(tx_shinfo, 1);
	for (i = 0; i < total; i += FRAME_BENCH_BURST) {
		unsigned int n = RTE_MIN(FRAME_BENCH_BURST, total - i);

		if (unlikely(rte_pktmbuf_alloc_bulk(pool_hdr, &sent[i], n) != 0)) {
			free_sent(i, redundant);
			return ENOENT;
		}
		if (redundant && unlikely(rte_pktmbuf_alloc_bulk(pool_hdr, &sent_twin[i], n) != 0)) {
			rte_pktmbuf_free_bulk(&sent[i], n);
			free_sent(i, redundant);
			return ENOENT;
		}
		for (j = 0; j < n; j++) {
			uint32_t k = i + j;
			uint32_t off = k * shape.payload_len;
			uint16_t len = (uint16_t)RTE_MIN((uint32_t)shape.payload_len,
							 shape.frame_size - off);
			uint32_t in_line = off % shape.line_bytes;
			uint16_t row = (uint16_t)(off / shape.line_bytes);
			uint16_t pixel =
				(uint16_t)(in_line / shape.pgroup_bytes * shape.pgroup_pixels);
			int marker = k + 1 == total;
			uint8_t *hdr = (uint8_t *)rte_pktmbuf_append(sent[k], FRAME_BENCH_HDR_LEN);
			struct rte_mbuf *seg;

			if (unlikely(hdr == NULL))
				goto failed;
			write_header(hdr, seq0 + k, timestamp, marker, row, pixel, len);
			seg = rte_pktmbuf_alloc(pool_payload);
			if (unlikely(seg == NULL))
				goto failed;
			rte_mbuf_ext_refcnt_update(tx_shinfo, 1);
			rte_pktmbuf_attach_extbuf(seg, tx_frame + off, tx_frame_iova + off, len,
						  tx_shinfo);
			seg->data_len = len;
			seg->pkt_len = len;
			if (unlikely(rte_pktmbuf_chain(sent[k], seg) != 0)) {
				rte_pktmbuf_free(seg);
				goto failed;
			}
			if (redundant) {
				uint8_t *twin = (uint8_t *)rte_pktmbuf_append(sent_twin[k],
									      FRAME_BENCH_HDR_LEN);

				if (unlikely(twin == NULL))
					goto failed;
				write_header(twin, seq0 + k, timestamp, marker, row, pixel, len);
				rte_mbuf_refcnt_update(seg, 1);
				if (unlikely(rte_pktmbuf_chain(sent_twin[k], seg) != 0)) {
					rte_pktmbuf_free(seg);
					goto failed;
				}
			}
			continue;
failed:
			free_sent(i + n, redundant);
			return ENOSPC;
		}
	}
	/* The builder's reference goes last: packets freed from here on can finish the frame. */
	if (rte_mbuf_ext_refcnt_update(tx_shinfo, -1) == 0)
		tx_shinfo->free_cb(tx_frame, tx_shinfo->fcb_opaque);
	for (i = 0; i < total; i += FRAME_BENCH_BURST)
		rte_pktmbuf_free_bulk(&sent[i], RTE_MIN(FRAME_BENCH_BURST, total - i));
	if (redundant)
		for (i = 0; i < total; i += FRAME_BENCH_BURST)
			rte_pktmbuf_free_bulk(&sent_twin[i], RTE_MIN(FRAME_BENCH_BURST, total - i));
	return frames_done == done_before + 1 ? 0 : EIO;
}

/* ---- receive ---------------------------------------------------------------------------- */

static inline uint64_t
stamp_of(uint64_t frame, uint32_t i)
{
	return frame * shape.rx_packets + i;
}

/* Frees the packets of up to max_reap copies the device reports done; how many, or -1 when
 * one failed. */
static int
reap(void)
{
	bool error = false;
	uint16_t done = rte_dma_completed(dma_dev, 0, (uint16_t)shape.max_reap, NULL, &error);
	uint16_t k;

	for (k = 0; k < done; k++)
		rte_pktmbuf_free(held[held_tail++ & (shape.nb_desc - 1)]);
	return error ? -1 : done;
}

/*
 * One frame received: per burst the receive buffers bulk-allocated, each with header and
 * payload appended and the packet's stamp written at the payload, the payload copied to its
 * place in the destination frame — by rte_memcpy, the buffer freed at once; or by the
 * device, the buffer held until the copy is reported, with the channel given room for the
 * whole burst first. The frame ends when no copy is in flight.
 */
static int
receive_frame(uint64_t frame, int on_device)
{
	struct rte_mbuf *pkts[FRAME_BENCH_BURST];
	uint32_t total = shape.rx_packets;
	uint32_t len = shape.payload_len;
	uint32_t i = 0;
	unsigned int j;

	while (i < total) {
		unsigned int n = RTE_MIN(FRAME_BENCH_BURST, total - i);

		if (on_device) {
			while (rte_dma_burst_capacity(dma_dev, 0) < n) {
				int done = reap();

				if (done < 0)
					return EIO;
				if (done == 0)
					rte_pause();
			}
		}
		if (unlikely(rte_pktmbuf_alloc_bulk(pool_rx, pkts, n) != 0))
			return ENOENT;
		for (j = 0; j < n; j++, i++) {
			struct rte_mbuf *m = pkts[j];
			uint8_t *data = (uint8_t *)rte_pktmbuf_append(m, FRAME_BENCH_HDR_LEN + len);
			uint64_t stamp = stamp_of(frame, i);
			uint64_t at = (uint64_t)i * len;

			if (unlikely(data == NULL)) {
				rte_pktmbuf_free_bulk(&pkts[j], n - j);
				return ENOSPC;
			}
			memcpy(data + FRAME_BENCH_HDR_LEN, &stamp, STAMP_LEN);
			if (!on_device) {
				rte_memcpy(rx_frame + at, data + FRAME_BENCH_HDR_LEN, len);
				rte_pktmbuf_free(m);
				continue;
			}
			if (unlikely(rte_dma_copy(dma_dev, 0,
						  rte_pktmbuf_iova_offset(m, FRAME_BENCH_HDR_LEN),
						  rx_frame_iova + at, len, 0) < 0)) {
				rte_pktmbuf_free_bulk(&pkts[j], n - j);
				return ENOSPC;
			}
			held[held_head++ & (shape.nb_desc - 1)] = m;
		}
		if (on_device) {
			rte_dma_submit(dma_dev, 0);
			if (reap() < 0)
				return EIO;
		}
	}
	while (held_tail != held_head) {
		int done = reap();

		if (done < 0)
			return EIO;
		if (done == 0)
			rte_pause();
	}
	return 0;
}

/* Waits (at most a second) for the copies still in flight after a failure, and frees their
 * packets. */
static void
drain_after_failure(void)
{
	uint64_t end = frame_now_ns() + UINT64_C(1000000000);

	while (held_tail != held_head && frame_now_ns() < end)
		if (reap() <= 0)
			rte_pause();
}

/* Every stamp of frame `frame` is at its payload's place in the destination frame. */
static int
stamps_in_place(uint64_t frame)
{
	uint32_t i;

	for (i = 0; i < shape.rx_packets; i++) {
		uint64_t stamp = stamp_of(frame, i);

		if (memcmp(rx_frame + (uint64_t)i * shape.payload_len, &stamp, STAMP_LEN) != 0)
			return 0;
	}
	return 1;
}

/*
 * One row over `frames` frames: the nanoseconds and TSC cycles of its timed loop. EBUSY when
 * a pool was not full before or after the row (a buffer lost), EIO when a frame was not done
 * once or a payload is not where it was copied to, EINVAL for an unknown row or no frames.
 */
int
dpmem_bench_dpdk_frame_run(unsigned int row, uint64_t frames, uint64_t *ns, uint64_t *cycles)
{
	struct span t;
	uint64_t f, first = next_rx_frame;
	int ret = 0;

	if (pool_hdr == NULL || dma_dev < 0)
		return ENODEV;
	if (frames == 0 || row > ROW_REASSEMBLY_DEVICE)
		return EINVAL;
	if (!pools_full())
		return EBUSY;
	memset(&t, 0, sizeof(t));
	switch (row) {
	case ROW_PACKETISE:
	case ROW_PACKETISE_REDUNDANT:
		span_start(&t);
		for (f = 0; f < frames && ret == 0; f++)
			ret = packetise_frame(row == ROW_PACKETISE_REDUNDANT);
		span_stop(&t);
		break;
	default:
		next_rx_frame += frames;
		span_start(&t);
		for (f = first; f < first + frames && ret == 0; f++)
			ret = receive_frame(f, row == ROW_REASSEMBLY_DEVICE);
		span_stop(&t);
		if (ret != 0)
			drain_after_failure();
		else if (!stamps_in_place(first + frames - 1))
			ret = EIO;
		break;
	}
	if (ret != 0)
		return ret;
	if (!pools_full())
		return EBUSY;
	*ns = t.end_ns - t.start_ns;
	*cycles = t.end_tsc - t.start_tsc;
	return 0;
}
