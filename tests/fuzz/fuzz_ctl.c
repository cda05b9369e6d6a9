/**
 * @file fuzz_ctl.c  libFuzzer target: control API requests
 *
 * The input is what a client writes on one control API connection: the
 * node (fuzz_engine.c, with a token) accepts it and its HTTP server
 * (ctl_http.c) frames it, checks the token, the limits and routes each
 * request to its handler (ctl.c and the modules' routes), over as many
 * requests as the input pipelines.
 *
 * The TCP end is cut off with -Wl,--wrap: tcp_sock_alloc() records the
 * server's connect handler, tcp_accept() hands out a stand-in connection
 * whose handlers are kept here, and tcp_send() and friends take whatever
 * the server writes. The first byte of the input sets the size of the
 * reads the server gets (1 to 256 bytes), so that requests also arrive
 * split at every place, as from a slow client.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "conf.h"
#include "redis.h"
#include "fuzz_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char conf_text[] =
	"node_id fuzz\n"
	"listen udp:127.0.0.1:5060 tag=public\n"
	"ctl_listen 127.0.0.1:8060\n"
	"ctl_token fuzz-token-0123456789\n"
	"log_level error\n";

/** The one connection of an input: the server's handlers and state */
static struct {
	tcp_conn_h *connh;
	void *conn_arg;
	tcp_recv_h *recvh;
	tcp_close_h *closeh;
	void *arg;
	bool open;       /* the server holds the stand-in connection */
} fc;


int __real_tcp_sock_alloc(struct tcp_sock **tsp, const struct sa *local,
			  tcp_conn_h *ch, void *arg);
int __wrap_tcp_sock_alloc(struct tcp_sock **tsp, const struct sa *local,
			  tcp_conn_h *ch, void *arg);
int __wrap_tcp_accept(struct tcp_conn **tcp, struct tcp_sock *ts,
		      tcp_estab_h *eh, tcp_recv_h *rh, tcp_close_h *ch,
		      void *arg);
void __wrap_tcp_reject(struct tcp_sock *ts);
int __wrap_tcp_send(struct tcp_conn *tc, struct mbuf *mb);
size_t __wrap_tcp_conn_txqsz(const struct tcp_conn *tc);
int __wrap_tcp_set_send(struct tcp_conn *tc, tcp_send_h *sendh);


int __wrap_tcp_sock_alloc(struct tcp_sock **tsp, const struct sa *local,
			  tcp_conn_h *ch, void *arg)
{
	fc.connh = ch;
	fc.conn_arg = arg;

	return __real_tcp_sock_alloc(tsp, local, ch, arg);
}


static void stand_in_destructor(void *arg)
{
	(void)arg;
	fc.open = false;
}


int __wrap_tcp_accept(struct tcp_conn **tcp, struct tcp_sock *ts,
		      tcp_estab_h *eh, tcp_recv_h *rh, tcp_close_h *ch,
		      void *arg)
{
	(void)ts;
	(void)eh;

	*tcp = mem_zalloc(1, stand_in_destructor);
	if (!*tcp)
		return ENOMEM;

	fc.recvh = rh;
	fc.closeh = ch;
	fc.arg = arg;
	fc.open = true;
	return 0;
}


void __wrap_tcp_reject(struct tcp_sock *ts)
{
	(void)ts;
}


/** What the server writes must be a whole HTTP response's worth */
int __wrap_tcp_send(struct tcp_conn *tc, struct mbuf *mb)
{
	if (!tc || !mb || mbuf_get_left(mb) < 12 ||
	    memcmp(mbuf_buf(mb), "HTTP/1.1 ", 9))
		abort();

	return 0;
}


size_t __wrap_tcp_conn_txqsz(const struct tcp_conn *tc)
{
	(void)tc;
	return 0;
}


int __wrap_tcp_set_send(struct tcp_conn *tc, tcp_send_h *sendh)
{
	(void)tc;
	(void)sendh;
	return 0;
}


int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;

	(void)fuzz_engine_init(conf_text);
	if (!fc.connh)
		abort();

	return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sa peer;
	size_t chunk;

	if (!size)
		return 0;

	chunk = (size_t)data[0] + 1;
	++data;
	--size;

	(void)sa_set_str(&peer, "127.0.0.1", 40000);
	fc.connh(&peer, fc.conn_arg);

	while (fc.open && size) {
		struct mbuf *mb = mbuf_alloc(chunk);
		const size_t n = min(chunk, size);

		if (!mb)
			abort();
		(void)mbuf_write_mem(mb, data, n);
		mb->pos = 0;
		fc.recvh(mb, fc.arg);
		mem_deref(mb);

		data += n;
		size -= n;
	}

	/* each pipelined request waits for a turn of the loop */
	for (int i = 0; i < 8 && fc.open; i++)
		fuzz_engine_poll();

	if (fc.open)
		fc.closeh(ECONNRESET, fc.arg);

	return 0;
}
