/*
 * DPDK 22.11 side of `dpmem bench mp`: the EAL's inter-process channel (rte_mp_*) between a
 * primary and one or two secondaries, each a dpmem-bench-dpdk process of its own.
 *
 * The conventions of dpdk_shim.c hold here too: names start with dpmem_bench_dpdk_, 0 or a
 * positive errno / rte_errno comes back, figures go through out-pointers, nothing prints.
 *
 * A primary child calls dpmem_bench_dpdk_mp_primary_init once, then the rows' rounds, then
 * dpmem_bench_dpdk_mp_cleanup; each secondary child (which the primary child starts) calls
 * dpmem_bench_dpdk_mp_secondary_init, serves until its parent tells it to stop, and calls
 * dpmem_bench_dpdk_mp_cleanup. The names, the parameters and the checks are those of
 * crates/dpmem-bench/src/mp, whose dpmem side does the same on dpmem's channel.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memzone.h>
#include <rte_string_fns.h>

/* The request row: the secondaries reply with the request's parameters. */
#define MP_BENCH_REQUEST "dpmem_bench_rt"
/* The message row: a ping from the primary, a pong from the secondary. */
#define MP_BENCH_PING "dpmem_bench_ping"
#define MP_BENCH_PONG "dpmem_bench_pong"
/* The growth row: the memzone a secondary reserves and frees round after round. */
#define MP_BENCH_GROW_ZONE "dpmem_bench_grow"
/* What a filler leaves of the free block it takes, and the most fillers (as rows.rs). */
#define MP_BENCH_FILLER_SLACK 4096
#define MP_BENCH_MAX_FILLERS 64
/* How long a request waits for its replies before the row fails. */
#define MP_BENCH_REQUEST_TIMEOUT_S 5
/* How long a whole ping-pong row may take. */
#define MP_BENCH_MESSAGE_TIMEOUT_S 60

static uint64_t
mp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* A message `name` whose parameters are the 8 bytes of `seq`. */
static void
mp_message(struct rte_mp_msg *msg, const char *name, uint64_t seq)
{
	memset(msg, 0, sizeof(*msg));
	strlcpy(msg->name, name, sizeof(msg->name));
	memcpy(msg->param, &seq, sizeof(seq));
	msg->len_param = sizeof(seq);
}

/* The sequence number a message carries, or UINT64_MAX when it carries something else. */
static uint64_t
mp_seq(const struct rte_mp_msg *msg)
{
	uint64_t seq;

	if (msg->len_param != sizeof(seq))
		return UINT64_MAX;
	memcpy(&seq, msg->param, sizeof(seq));
	return seq;
}

/* ---- the secondary ------------------------------------------------------------------ */

/* The request row: reply at once with the same parameters (rte_mp_reply matches the reply
 * to its request by name, so the reply has the request's). */
static int
mp_secondary_on_request(const struct rte_mp_msg *msg, const void *peer)
{
	struct rte_mp_msg reply;

	memset(&reply, 0, sizeof(reply));
	strlcpy(reply.name, msg->name, sizeof(reply.name));
	memcpy(reply.param, msg->param, (size_t)msg->len_param);
	reply.len_param = msg->len_param;
	return rte_mp_reply(&reply, peer);
}

/* The message row: a ping is answered with a pong carrying the same sequence number. */
static int
mp_secondary_on_ping(const struct rte_mp_msg *msg, const void *peer)
{
	struct rte_mp_msg pong;

	RTE_SET_USED(peer);
	mp_message(&pong, MP_BENCH_PONG, mp_seq(msg));
	return rte_mp_sendmsg(&pong);
}

/* rte_eal_init(argc, argv) as a secondary (the arguments say --proc-type=secondary), then its
 * two actions. */
int
dpmem_bench_dpdk_mp_secondary_init(int argc, char **argv)
{
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	if (rte_eal_process_type() != RTE_PROC_SECONDARY)
		return EPROTO;
	if (rte_mp_action_register(MP_BENCH_REQUEST, mp_secondary_on_request) != 0 ||
	    rte_mp_action_register(MP_BENCH_PING, mp_secondary_on_ping) != 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	return 0;
}

/* ---- the primary -------------------------------------------------------------------- */

/*
 * The ping-pong of the message row. The primary's pong action (on DPDK's channel thread)
 * records the time since the previous pong and sends the next ping, until `rounds` pongs
 * came; then it wakes the main thread. Everything is under `lock`, so that a main thread
 * that gave up (timeout) can stop the action from touching `round_ns` before returning.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int active;
	int done;
	int failed; /* 0, or the errno that ended the row */
	uint64_t *round_ns;
	uint64_t rounds;
	uint64_t next; /* the pong expected next */
	uint64_t last_ns;
} mp_pingpong = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.done_cond = PTHREAD_COND_INITIALIZER,
};

static void
mp_pingpong_end(int failed)
{
	mp_pingpong.active = 0;
	mp_pingpong.done = 1;
	mp_pingpong.failed = failed;
	pthread_cond_signal(&mp_pingpong.done_cond);
}

static int
mp_primary_on_pong(const struct rte_mp_msg *msg, const void *peer)
{
	uint64_t now = mp_now_ns();
	struct rte_mp_msg ping;

	RTE_SET_USED(peer);
	pthread_mutex_lock(&mp_pingpong.lock);
	if (!mp_pingpong.active) {
		pthread_mutex_unlock(&mp_pingpong.lock);
		return 0;
	}
	if (mp_seq(msg) != mp_pingpong.next) {
		mp_pingpong_end(EBADMSG);
	} else {
		mp_pingpong.round_ns[mp_pingpong.next] = now - mp_pingpong.last_ns;
		mp_pingpong.last_ns = now;
		mp_pingpong.next++;
		if (mp_pingpong.next == mp_pingpong.rounds) {
			mp_pingpong_end(0);
		} else {
			mp_message(&ping, MP_BENCH_PING, mp_pingpong.next);
			if (rte_mp_sendmsg(&ping) != 0)
				mp_pingpong_end(rte_errno != 0 ? rte_errno : EIO);
		}
	}
	pthread_mutex_unlock(&mp_pingpong.lock);
	return 0;
}

/* rte_eal_init(argc, argv) as the primary, then the pong action of the message row. */
int
dpmem_bench_dpdk_mp_primary_init(int argc, char **argv)
{
	if (rte_eal_init(argc, argv) < 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	if (rte_eal_process_type() != RTE_PROC_PRIMARY)
		return EPROTO;
	if (rte_mp_action_register(MP_BENCH_PONG, mp_primary_on_pong) != 0)
		return rte_errno != 0 ? rte_errno : EINVAL;
	return 0;
}

/*
 * `rounds` synchronous requests to every secondary, round k carrying k; each must reach
 * `secondaries` peers (ENOTCONN otherwise) and get all their replies (ETIMEDOUT otherwise),
 * each carrying k back (EBADMSG otherwise). round_ns[k] is round k's time, from before
 * rte_mp_request_sync to after the replies were freed.
 */
int
dpmem_bench_dpdk_mp_request_rounds(unsigned int secondaries, uint64_t rounds,
				   uint64_t *round_ns)
{
	const struct timespec timeout = { .tv_sec = MP_BENCH_REQUEST_TIMEOUT_S };
	struct rte_mp_msg req;
	struct rte_mp_reply reply;
	uint64_t k, start;
	int i, rc;

	for (k = 0; k < rounds; k++) {
		start = mp_now_ns();
		mp_message(&req, MP_BENCH_REQUEST, k);
		if (rte_mp_request_sync(&req, &reply, &timeout) != 0)
			return rte_errno != 0 ? rte_errno : EIO;
		rc = 0;
		if (reply.nb_sent != (int)secondaries)
			rc = ENOTCONN;
		else if (reply.nb_received != reply.nb_sent)
			rc = ETIMEDOUT;
		for (i = 0; rc == 0 && i < reply.nb_received; i++)
			if (mp_seq(&reply.msgs[i]) != k)
				rc = EBADMSG;
		free(reply.msgs);
		if (rc != 0)
			return rc;
		round_ns[k] = mp_now_ns() - start;
	}
	return 0;
}

/*
 * `rounds` rounds of ping-pong with the one secondary (see mp_primary_on_pong): the first
 * ping from here, the rest from the pong action. round_ns[k] is the time from the previous
 * pong (or the first ping) to pong k. ETIMEDOUT when the row took more than
 * MP_BENCH_MESSAGE_TIMEOUT_S; EBADMSG when a pong carried the wrong number.
 */
int
dpmem_bench_dpdk_mp_message_rounds(uint64_t rounds, uint64_t *round_ns)
{
	struct timespec deadline;
	struct rte_mp_msg ping;
	int rc = 0;

	if (rounds == 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += MP_BENCH_MESSAGE_TIMEOUT_S;
	pthread_mutex_lock(&mp_pingpong.lock);
	mp_pingpong.round_ns = round_ns;
	mp_pingpong.rounds = rounds;
	mp_pingpong.next = 0;
	mp_pingpong.done = 0;
	mp_pingpong.failed = 0;
	mp_pingpong.active = 1;
	mp_pingpong.last_ns = mp_now_ns();
	mp_message(&ping, MP_BENCH_PING, 0);
	/* Sent under the lock: the first pong's action waits until this thread sleeps. */
	if (rte_mp_sendmsg(&ping) != 0)
		mp_pingpong_end(rte_errno != 0 ? rte_errno : EIO);
	while (!mp_pingpong.done && rc == 0)
		rc = pthread_cond_timedwait(&mp_pingpong.done_cond, &mp_pingpong.lock, &deadline);
	if (!mp_pingpong.done)
		mp_pingpong_end(ETIMEDOUT);
	rc = mp_pingpong.failed;
	mp_pingpong.round_ns = NULL;
	pthread_mutex_unlock(&mp_pingpong.lock);
	return rc;
}

/* Bytes the heaps of every socket hold: every page they map. */
static uint64_t
mp_heap_bytes(void)
{
	struct rte_malloc_socket_stats stats;
	unsigned int i;
	uint64_t total = 0;

	for (i = 0; i < rte_socket_count(); i++)
		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &stats) == 0)
			total += stats.heap_totalsz_bytes;
	return total;
}

/* Allocates (into fillers, counting *count) every free block of the heaps a zone of zone_len
 * bytes would fit in; ENOSPC when MP_BENCH_MAX_FILLERS did not do it. */
static int
mp_take_free_blocks(uint64_t zone_len, void **fillers, unsigned int *count)
{
	struct rte_malloc_socket_stats stats;
	unsigned int i;
	int socket, roomy;

	while (*count < MP_BENCH_MAX_FILLERS) {
		roomy = 0;
		for (i = 0; i < rte_socket_count() && !roomy; i++) {
			socket = rte_socket_id_by_idx(i);
			if (rte_malloc_get_socket_stats(socket, &stats) == 0 &&
			    stats.greatest_free_size >= zone_len)
				roomy = 1;
		}
		if (!roomy)
			return 0;
		fillers[*count] = rte_malloc_socket(NULL,
						    stats.greatest_free_size - MP_BENCH_FILLER_SLACK,
						    64, socket);
		if (fillers[*count] == NULL)
			return rte_errno != 0 ? rte_errno : ENOMEM;
		(*count)++;
	}
	return ENOSPC;
}

static int
mp_reserve_rounds(uint64_t zone_len, uint64_t rounds, uint64_t *round_ns)
{
	const struct rte_memzone *mz;
	uint64_t k, start, before, grown;

	for (k = 0; k < rounds; k++) {
		before = mp_heap_bytes();
		start = mp_now_ns();
		mz = rte_memzone_reserve(MP_BENCH_GROW_ZONE, (size_t)zone_len, SOCKET_ID_ANY, 0);
		if (mz == NULL)
			return rte_errno != 0 ? rte_errno : ENOMEM;
		round_ns[k] = mp_now_ns() - start;
		grown = mp_heap_bytes() - before;
		if (rte_memzone_free(mz) != 0)
			return rte_errno != 0 ? rte_errno : EIO;
		if (grown < zone_len)
			return ENOTRECOVERABLE;
	}
	return 0;
}

/*
 * The growth row, in a secondary: every free block a zone would fit in taken by an untimed
 * allocation (a filler; memory the EAL mapped at start would otherwise serve the first zones
 * without a new page), then `rounds` rounds of rte_memzone_reserve of `zone_len` bytes (timed
 * into round_ns[k]), each checked to have grown the heap by at least the zone
 * (ENOTRECOVERABLE otherwise: it did not need a new page), then rte_memzone_free (not timed),
 * which gives the page back in every process; then the fillers freed.
 */
int
dpmem_bench_dpdk_mp_grow_rounds(uint64_t zone_len, uint64_t rounds, uint64_t *round_ns)
{
	void *fillers[MP_BENCH_MAX_FILLERS];
	unsigned int count = 0, i;
	int rc;

	rc = mp_take_free_blocks(zone_len, fillers, &count);
	if (rc == 0)
		rc = mp_reserve_rounds(zone_len, rounds, round_ns);
	for (i = 0; i < count; i++)
		rte_free(fillers[i]);
	return rc;
}

/* rte_eal_cleanup(), primary or secondary. */
int
dpmem_bench_dpdk_mp_cleanup(void)
{
	if (rte_eal_cleanup() != 0)
		return rte_errno != 0 ? rte_errno : EIO;
	return 0;
}
