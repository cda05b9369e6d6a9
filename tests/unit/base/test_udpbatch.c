/**
 * @file test_udpbatch.c  Unit tests of the batched reading of UDP listeners
 *
 * A libre UDP socket opened while udpbatch is on (as listener.c opens the
 * SIP listeners) gets a burst of datagrams queued before the loop runs:
 * every one reaches the registered helper and then the receive handler,
 * in the order sent, with its bytes and source, through far fewer reads
 * than datagrams; an empty one arrives empty, an oversized one truncated
 * as libre truncates; one a helper handles stops there, as in libre. A
 * handler that closes the socket in the middle of a batch gets nothing
 * more (and nothing is read from freed memory: run it under ASan).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <check.h>
#include <re.h>
#include "udpbatch.h"

enum {
	BURST   = 80,     /* datagrams sent before the loop runs */
	EMPTY   = 7,      /* the index of the empty one */
	LARGE   = 40,     /* of the one longer than libre's 8 KB */
	SWALLOW = 50,     /* of the one the helper handles */
	RXSZ    = 8192,
};

struct rx {
	struct udp_sock *us;
	struct udp_helper *uh;
	struct sa sender;
	int helper_seen;       /* datagrams the helper saw */
	int seen;              /* ... the receive handler */
	int expect;            /* the index the next one must have */
	int close_at;          /* close the socket after this index, or -1 */
	bool order_ok;
	bool src_ok;
};


static size_t len_of(int i)
{
	if (i == EMPTY)
		return 0;
	if (i == LARGE)
		return RXSZ + 100;

	return 16 + (size_t)i * 7;
}


/* datagram i: its index, then bytes that say where they are */
static void fill(uint8_t *buf, int i)
{
	for (size_t k = 0; k < len_of(i); k++)
		buf[k] = (uint8_t)(i + k);
}


static int index_of(const struct mbuf *mb)
{
	return mbuf_get_left(mb) ? mbuf_buf(mb)[0] : EMPTY;
}


static bool content_ok(const struct mbuf *mb, int i)
{
	size_t want = min(len_of(i), RXSZ);
	uint8_t buf[RXSZ + 100];

	fill(buf, i);
	return mbuf_get_left(mb) == want &&
		!memcmp(mbuf_buf(mb), buf, want);
}


static bool helper_recv(struct sa *src, struct mbuf *mb, void *arg)
{
	struct rx *rx = arg;
	(void)src;

	if (index_of(mb) != rx->helper_seen)
		rx->order_ok = false;
	++rx->helper_seen;

	return index_of(mb) == SWALLOW;
}


static void recv_handler(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct rx *rx = arg;
	int i = index_of(mb);

	if (rx->expect == SWALLOW)
		++rx->expect;
	if (i != rx->expect || !content_ok(mb, i) ||
	    rx->helper_seen != i + 1)
		rx->order_ok = false;
	if (!sa_cmp(src, &rx->sender, SA_ALL))
		rx->src_ok = false;

	++rx->expect;
	++rx->seen;
	if (i == rx->close_at) {
		rx->uh = mem_deref(rx->uh);
		rx->us = mem_deref(rx->us);
	}
	if (i == BURST - 1 || !rx->us)
		re_cancel();
}


static void timeout_handler(void *arg)
{
	(void)arg;
	re_cancel();
}


/* Open the socket batched, send the burst to it, run the loop */
static void burst(struct rx *rx)
{
	static uint8_t buf[RXSZ + 100];
	struct sa laddr;
	struct tmr tmr;
	int fd;

	rx->order_ok = rx->src_ok = true;
	ck_assert_int_eq(sa_set_str(&laddr, "127.0.0.1", 0), 0);
	udpbatch_set(true);
	ck_assert_int_eq(udp_listen(&rx->us, &laddr, recv_handler, rx), 0);
	udpbatch_set(false);
	ck_assert_int_eq(udp_register_helper(&rx->uh, rx->us, 0, NULL,
					     helper_recv, rx), 0);
	ck_assert_int_eq(udp_local_get(rx->us, &laddr), 0);

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	rx->sender = laddr;
	sa_set_port(&rx->sender, 0);
	ck_assert_int_eq(bind(fd, &rx->sender.u.sa, rx->sender.len), 0);
	ck_assert_int_eq(getsockname(fd, &rx->sender.u.sa,
				     &rx->sender.len), 0);

	for (int i = 0; i < BURST; i++) {
		fill(buf, i);
		ck_assert_int_eq(sendto(fd, buf, len_of(i), 0, &laddr.u.sa,
					laddr.len), (ssize_t)len_of(i));
	}

	tmr_init(&tmr);
	tmr_start(&tmr, 5000, timeout_handler, NULL);
	ck_assert_int_eq(re_main(NULL), 0);
	tmr_cancel(&tmr);
	(void)close(fd);
}


START_TEST(test_burst_in_order)
{
	struct rx rx = {.close_at = -1};
	uint64_t reads, datagrams;

	burst(&rx);
	udpbatch_stats(&reads, &datagrams);

	ck_assert_int_eq(rx.helper_seen, BURST);
	ck_assert_int_eq(rx.seen, BURST - 1);   /* one the helper took */
	ck_assert(rx.order_ok);
	ck_assert(rx.src_ok);
	ck_assert_uint_eq(datagrams, BURST);
	ck_assert_uint_le(reads, BURST / 32 + 1);

	mem_deref(rx.uh);
	mem_deref(rx.us);
}
END_TEST


START_TEST(test_closed_mid_batch)
{
	struct rx rx = {.close_at = 3};
	struct tmr tmr;

	burst(&rx);
	ck_assert_int_eq(rx.seen, 4);
	ck_assert(rx.order_ok);
	ck_assert_ptr_null(rx.us);

	/* nothing left to read it: the loop only ends by its timer */
	tmr_init(&tmr);
	tmr_start(&tmr, 100, timeout_handler, NULL);
	ck_assert_int_eq(re_main(NULL), 0);
	ck_assert_int_eq(rx.seen, 4);
}
END_TEST


static Suite *udpbatch_suite(void)
{
	Suite *s = suite_create("udpbatch");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_burst_in_order);
	tcase_add_test(tc, test_closed_mid_batch);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(udpbatch_suite());
}
