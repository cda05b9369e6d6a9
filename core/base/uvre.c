/**
 * @file uvre.c  libuv loop embedded in libre's main loop
 *
 * libre's re_main() is the one loop of the process: it owns SIP, HTTP and
 * timers. libuv (file watching for the policy, SIGHUP; hiredis has its
 * own adapter, redis_loop.c) runs inside it: libuv's backend is an epoll
 * fd, which is registered with libre like any socket, and a libre timer
 * mirrors libuv's next timeout. Whenever either fires we run libuv once
 * without blocking.
 *
 * Three traps (see docs/design.md): libuv reports timeout 0 for an idle
 * loop, so an idle loop must not re-arm the timer (busy spin); work queued
 * into libuv from libre context is only seen after the next uv_run, so
 * callers kick; and libuv's cached clock is stale in libre context, so it is
 * refreshed before each run.
 */
#include <uv.h>
#include <re.h>
#include "log.h"
#include "uvre.h"

static struct {
	uv_loop_t loop;
	struct tmr tmr;    /* mirrors uv_backend_timeout() */
	struct tmr kick;   /* runs libuv soon after work was queued */
	bool up;
} uvre;


static void uvre_run(void);


static void tmr_handler(void *arg)
{
	(void)arg;
	uvre_run();
}


static void fd_handler(int flags, void *arg)
{
	(void)flags;
	(void)arg;
	uvre_run();
}


static void rearm(void)
{
	int t = uv_loop_alive(&uvre.loop) ? uv_backend_timeout(&uvre.loop)
					  : -1;

	if (t < 0)
		tmr_cancel(&uvre.tmr);
	else
		tmr_start(&uvre.tmr, (uint64_t)t, tmr_handler, NULL);
}


static void uvre_run(void)
{
	if (!uvre.up)
		return;

	uv_update_time(&uvre.loop);
	uv_run(&uvre.loop, UV_RUN_NOWAIT);
	rearm();
}


int uvre_init(void)
{
	int err;

	if (uvre.up)
		return EALREADY;

	err = uv_loop_init(&uvre.loop);
	if (err) {
		log_error("uvre", "uv_loop_init: %s", uv_strerror(err));
		return ENOMEM;
	}

	tmr_init(&uvre.tmr);
	tmr_init(&uvre.kick);

	err = fd_listen(uv_backend_fd(&uvre.loop), FD_READ, fd_handler, NULL);
	if (err) {
		uv_loop_close(&uvre.loop);
		return err;
	}

	uvre.up = true;
	return 0;
}


static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;

	if (!uv_is_closing(h))
		uv_close(h, NULL);
}


void uvre_close(void)
{
	if (!uvre.up)
		return;

	uvre.up = false;
	fd_close(uv_backend_fd(&uvre.loop));
	tmr_cancel(&uvre.tmr);
	tmr_cancel(&uvre.kick);

	uv_walk(&uvre.loop, close_walk, NULL);
	uv_run(&uvre.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&uvre.loop))
		log_warn("uvre", "libuv loop still busy at close");
}


uv_loop_t *uvre_loop(void)
{
	return uvre.up ? &uvre.loop : NULL;
}


/** Call after queueing libuv or hiredis work from libre context. */
void uvre_kick(void)
{
	if (uvre.up)
		tmr_start(&uvre.kick, 0, tmr_handler, NULL);
}
