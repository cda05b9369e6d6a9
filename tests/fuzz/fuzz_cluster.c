/**
 * @file fuzz_cluster.c  libFuzzer target: cluster messages as a node hears them
 *
 * A node in a cluster takes messages from four Redis channels: heartbeats
 * (":nodes"), sharing tags (":shtag"), dialog replication (":repl:<tag>",
 * here the one tag of the config) and
 * re-homing hand-offs (":rehome"). The target starts a node with a
 * cluster config (fuzz_engine.c; Redis itself is never reached) and hands
 * the input to the handler of one channel, as the Redis session would.
 *
 * The first byte picks the channel (bits 0-1) and how the rest is sent:
 * - bit 3 set: as it is, so the envelope itself (seal, stamp) is fuzzed;
 * - bit 2 set: "<stamp> <body>", sealed here with the cluster's secret,
 *   so the stamp and the freshness checks are fuzzed;
 * - else: the body alone, stamped by a peer node with a sequence number
 *   of its own and sealed, so the body decoders (JSON, dialog codec,
 *   node, tag and job logic) see input that passes the envelope.
 * Bit 4 set: no channel, a dialog's snapshot as the load after a
 * (re)connect reads it from Redis (repl_sync.c): with bit 3, as it is (a
 * record, or a message of the release before); else the dialog of a
 * record "<seal>\n<dialog>" sealed here, so the record's check and the
 * dialog's apply logic are fuzzed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "conf.h"
#include "redis.h"
#include "cluster_int.h"
#include "repl_int.h"
#include "fuzz_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum {
	SEAL_MD  = 32,
	SEAL_HEX = 2 * SEAL_MD,
	SEL_SNAPSHOT = 16,
};

#define FUZZ_SECRET "fuzz-secret-0123456789"

static const char conf_text[] =
	"node_id fuzz\n"
	"listen udp:127.0.0.1:5060 tag=public\n"
	"redis 127.0.0.1:1\n"
	"repl_secret " FUZZ_SECRET "\n"
	"shtag service active\n"
	"default_shtag service\n"
	"dialog_timeout 1\n"
	"ctl_listen 127.0.0.1:8060\n"
	"log_level error\n";

static const char *const channels[] = {":nodes", ":shtag", ":repl:service",
				       ":rehome"};

static struct {
	struct hmac *hmac;
	redis_msg_h *h[4];
	uint64_t seq;
} fc;


int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;

	(void)fuzz_engine_init(conf_text);

	for (size_t i = 0; i < ARRAY_SIZE(channels); i++) {
		fc.h[i] = fuzz_engine_channel(channels[i]);
		if (!fc.h[i])
			abort();
	}

	if (hmac_create(&fc.hmac, HMAC_HASH_SHA256,
			(const uint8_t *)FUZZ_SECRET, strlen(FUZZ_SECRET)))
		abort();

	return 0;
}


/* "<seal> " in front of what is in mb after SEAL_HEX + 1 bytes */
static void seal(struct mbuf *mb)
{
	uint8_t md[SEAL_MD];
	char hex[SEAL_HEX + 1];

	if (hmac_digest(fc.hmac, md, sizeof(md), mb->buf + SEAL_HEX + 1,
			mb->end - SEAL_HEX - 1) ||
	    re_snprintf(hex, sizeof(hex), "%w", md, sizeof(md)) != SEAL_HEX)
		abort();

	memcpy(mb->buf, hex, SEAL_HEX);
	mb->buf[SEAL_HEX] = ' ';
}


/* "<seal>\n" in front of what is in mb after CLUSTER_RECORD_SEAL bytes */
static void seal_record(struct mbuf *mb)
{
	uint8_t md[SEAL_MD];
	char b64[CLUSTER_RECORD_SEAL + 1];
	size_t n = sizeof(b64);

	mb->buf[CLUSTER_RECORD_SEAL] = '\n';
	if (hmac_digest(fc.hmac, md, sizeof(md), mb->buf + CLUSTER_RECORD_SEAL,
			mb->end - CLUSTER_RECORD_SEAL) ||
	    base64_encode(md, sizeof(md), b64, &n))
		abort();

	memcpy(mb->buf, b64, CLUSTER_RECORD_SEAL);
}


static void snapshot(struct mbuf *mb, uint8_t sel, const uint8_t *data,
		     size_t size)
{
	struct pl msg;
	int err;

	if (sel & 8) {
		err = mbuf_write_mem(mb, data, size);
	}
	else {
		err = mbuf_fill(mb, ' ', CLUSTER_RECORD_SEAL + 1);
		err |= mbuf_write_mem(mb, data, size);
		if (!err)
			seal_record(mb);
	}
	if (err)
		abort();

	msg.p = (const char *)mb->buf;
	msg.l = mb->end;
	repl_msg_apply(&msg, REPL_ORIGIN_SNAPSHOT);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbuf *mb;
	struct pl chan = PL("fuzz"), msg;
	uint8_t sel;
	int err = 0;

	if (!size)
		return 0;

	sel = data[0];
	++data;
	--size;

	mb = mbuf_alloc(SEAL_HEX + 64 + size);
	if (!mb)
		abort();

	if (sel & SEL_SNAPSHOT) {
		snapshot(mb, sel, data, size);
		goto out;
	}

	if (sel & 8) {
		err = mbuf_write_mem(mb, data, size);
	}
	else {
		err = mbuf_fill(mb, ' ', SEAL_HEX + 1);
		if (!(sel & 4))
			err |= mbuf_printf(mb, "00000000000f0220 %llu %llu "
					   "fuzzpeer ",
					   (unsigned long long)++fc.seq,
					   (unsigned long long)
					   cluster_clock_ms());
		err |= mbuf_write_mem(mb, data, size);
		if (!err && mb->end > SEAL_HEX + 1)
			seal(mb);
	}
	if (err)
		abort();

	msg.p = (const char *)mb->buf;
	msg.l = mb->end;
	fc.h[sel & 3](&chan, &msg, NULL);

 out:
	mem_deref(mb);
	fuzz_engine_poll();

	return 0;
}
