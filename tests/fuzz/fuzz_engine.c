/**
 * @file fuzz_engine.c  The fuzz targets' engine: a node started in-process
 *
 * The targets that feed the engine's own entry points (SIP requests and
 * responses, cluster channels) start a whole node with engine_init(), as
 * rehomed does, from a config text: the same modules wired the same way,
 * so that a message takes the path it takes in production. Only the
 * socket end is cut off: the link wraps sip_listen(), redis_subscribe()
 * and redis_subscribe_ready() (-Wl,--wrap, tests/fuzz/meson.build), which
 * record
 * the handlers the engine registers, so that a target can hand a message
 * to them directly instead of through a socket. Replies and relayed
 * requests still leave by the real transports, to port 9 of 127.0.0.1,
 * where nothing listens.
 *
 * Ports are taken from the kernel (0), so that targets can run side by
 * side; the config says which addresses.
 *
 * Timers the engine started fire in a turn of libre's loop
 * (fuzz_engine_poll). A due timer would still have the loop wait a
 * millisecond in epoll, a thousand inputs a second at most; a pipe kept
 * readable wakes it at once and ends the turn, after the due timers ran.
 */
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <re.h>
#define DEBUG_MODULE "fuzz"
#define DEBUG_LEVEL 0
#include <re_dbg.h>
#include "conf.h"
#include "log.h"
#include "engine.h"
#include "redis.h"
#include "fuzz_engine.h"

enum { CHANNELS_MAX = 8 };

struct channel {
	char name[128];
	redis_msg_h *h;
};

static struct {
	struct rh_conf cfg;
	sip_msg_h *reqh;
	sip_msg_h *resph;
	struct channel chanv[CHANNELS_MAX];
	size_t chanc;
	int wake[2];     /* a pipe, always readable */
} fe;


int __real_sip_listen(struct sip_lsnr **lsnrp, struct sip *sip, bool req,
		      sip_msg_h *msgh, void *arg);
int __wrap_sip_listen(struct sip_lsnr **lsnrp, struct sip *sip, bool req,
		      sip_msg_h *msgh, void *arg);
int __real_redis_subscribe(const char *chan, redis_msg_h *h, void *arg);
int __wrap_redis_subscribe(const char *chan, redis_msg_h *h, void *arg);
int __real_redis_subscribe_ready(const char *chan, redis_msg_h *h,
				 redis_ready_h *readyh, void *arg);
int __wrap_redis_subscribe_ready(const char *chan, redis_msg_h *h,
				 redis_ready_h *readyh, void *arg);


/** Every handler the engine registers takes NULL as its argument */
int __wrap_sip_listen(struct sip_lsnr **lsnrp, struct sip *sip, bool req,
		      sip_msg_h *msgh, void *arg)
{
	if (req)
		fe.reqh = msgh;
	else
		fe.resph = msgh;

	return __real_sip_listen(lsnrp, sip, req, msgh, arg);
}


static void channel_record(const char *chan, redis_msg_h *h)
{
	if (fe.chanc < CHANNELS_MAX) {
		struct channel *c = &fe.chanv[fe.chanc++];

		str_ncpy(c->name, chan, sizeof(c->name));
		c->h = h;
	}
}


int __wrap_redis_subscribe(const char *chan, redis_msg_h *h, void *arg)
{
	channel_record(chan, h);
	return __real_redis_subscribe(chan, h, arg);
}


int __wrap_redis_subscribe_ready(const char *chan, redis_msg_h *h,
				 redis_ready_h *readyh, void *arg)
{
	channel_record(chan, h);
	return __real_redis_subscribe_ready(chan, h, readyh, arg);
}


static void wake_handler(int flags, void *arg)
{
	(void)flags;
	(void)arg;
	re_cancel();
}


/** Start the node; any failure is the harness's own, so abort */
int fuzz_engine_init(const char *conf_text)
{
	char errbuf[256];
	int err;

	err = libre_init();
	if (err)
		goto out;

	err = conf_load_buf(&fe.cfg, "fuzz.conf", conf_text, strlen(conf_text),
			    errbuf, sizeof(errbuf));
	if (err) {
		(void)re_fprintf(stderr, "fuzz: %s\n", errbuf);
		goto out;
	}

	for (size_t i = 0; i < fe.cfg.listenc; i++)
		sa_set_port(&fe.cfg.listen[i].addr, 0);
	sa_set_port(&fe.cfg.ctl_listen, 0);

	dbg_init(DBG_ERR, 0);    /* libre's warnings on malformed input */
	log_init();
	log_set_level(fe.cfg.log_level);
	err = engine_init(&fe.cfg);
	if (err)
		goto out;

	if (pipe(fe.wake) || write(fe.wake[1], "", 1) != 1) {
		err = errno;
		goto out;
	}
	err = fd_listen(fe.wake[0], FD_READ, wake_handler, NULL);

 out:
	if (err)
		abort();
	return 0;
}


/** One turn of the loop: whatever timer is due fires */
void fuzz_engine_poll(void)
{
	(void)re_main(NULL);
}


const struct rh_conf *fuzz_engine_conf(void)
{
	return engine_conf();
}


sip_msg_h *fuzz_engine_sip_handler(bool req)
{
	return req ? fe.reqh : fe.resph;
}


/** The handler of the channel whose name ends in `suffix`, or NULL */
redis_msg_h *fuzz_engine_channel(const char *suffix)
{
	const size_t n = str_len(suffix);

	for (size_t i = 0; i < fe.chanc; i++) {
		const size_t l = str_len(fe.chanv[i].name);

		if (l >= n && !str_cmp(fe.chanv[i].name + l - n, suffix))
			return fe.chanv[i].h;
	}

	return NULL;
}
