/**
 * @file redis_loop.c  hiredis on libre's own loop: one write per loop turn
 *
 * hiredis asks its event adapter for read and write interest; this one
 * answers with libre's fd_listen() and a timer, instead of the libuv
 * adapter nested in libre's loop (uvre.c). The libuv adapter re-registers
 * the socket with epoll on every command (uv_poll_start: two epoll_ctl
 * calls, then two more once the output is written) and writes only after
 * one more epoll_wait has said the socket is writable: four system calls
 * and a poll round trip per replication message, on top of the write.
 *
 * Here a command only starts a zero-delay timer: libre runs timers after
 * the descriptors of the same loop turn, so everything queued while
 * handling this turn's SIP messages and Redis replies leaves in one write
 * at the end of the turn, with no added delay. Write interest is taken
 * from the kernel only when it is needed: while connecting (hiredis
 * learns that the connection is up from the first write event) and when
 * the socket's buffer is full; read interest is kept as hiredis asks.
 *
 * hiredis frees a context (and calls cleanup) from inside its read or
 * write handling when the connection fails, so the handlers hold a
 * reference to the adapter and stop once cleanup has cleared it.
 */
#include <re.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "log.h"
#include "redis.h"
#include "redis_int.h"

/** The loop side of one hiredis context */
struct redis_loop {
	redisAsyncContext *ac;        /* NULL once hiredis cleaned up */
	int fd;
	int flags;                    /* FD_READ/FD_WRITE given to libre */
	bool want_read;
	bool want_write;              /* hiredis waits for a write event */
	bool writing;                 /* inside redisAsyncHandleWrite */
	struct tmr flush;             /* writes at the end of the turn */
};


static void loop_destructor(void *arg)
{
	struct redis_loop *rl = arg;

	tmr_cancel(&rl->flush);
}


static void fd_handler(int flags, void *arg);


/** Give libre the interest hiredis asked for, when it changed */
static void interest_update(struct redis_loop *rl)
{
	int flags = (rl->want_read ? FD_READ : 0) |
		(rl->want_write ? FD_WRITE : 0);
	int err;

	if (flags == rl->flags)
		return;

	if (!flags) {
		fd_close(rl->fd);
	}
	else {
		/* not listening: the watchdog's probe resets the session */
		err = fd_listen(rl->fd, flags, fd_handler, rl);
		if (err) {
			log_warn("redis", "cannot poll fd %d: %m", rl->fd,
				 err);
			return;
		}
	}

	rl->flags = flags;
}


/** Write what hiredis holds; hiredis may free the context meanwhile */
static void write_out(struct redis_loop *rl)
{
	rl->writing = true;
	redisAsyncHandleWrite(rl->ac);
	rl->writing = false;
}


static void flush_handler(void *arg)
{
	struct redis_loop *rl = mem_ref(arg);

	if (rl->ac)
		write_out(rl);

	mem_deref(rl);
}


static void fd_handler(int flags, void *arg)
{
	struct redis_loop *rl = mem_ref(arg);

	if (rl->ac && (flags & FD_READ))
		redisAsyncHandleRead(rl->ac);
	if (rl->ac && (flags & FD_WRITE))
		write_out(rl);

	mem_deref(rl);
}


static void add_read(void *arg)
{
	struct redis_loop *rl = arg;

	rl->want_read = true;
	interest_update(rl);
}


static void del_read(void *arg)
{
	struct redis_loop *rl = arg;

	rl->want_read = false;
	interest_update(rl);
}


/*
 * A command was queued (write at the end of this turn), or hiredis needs
 * a write event: to see the connection up, or because the socket took
 * only part of the output.
 */
static void add_write(void *arg)
{
	struct redis_loop *rl = arg;

	if (rl->writing || !(rl->ac->c.flags & REDIS_CONNECTED)) {
		rl->want_write = true;
		interest_update(rl);
	}
	else if (!rl->want_write && !tmr_isrunning(&rl->flush)) {
		tmr_start(&rl->flush, 0, flush_handler, rl);
	}
}


static void del_write(void *arg)
{
	struct redis_loop *rl = arg;

	tmr_cancel(&rl->flush);
	rl->want_write = false;
	interest_update(rl);
}


static void cleanup(void *arg)
{
	struct redis_loop *rl = arg;

	rl->ac = NULL;
	rl->want_read = rl->want_write = false;
	tmr_cancel(&rl->flush);
	interest_update(rl);
	mem_deref(rl);
}


/** Run ac on libre's loop (in place of an adapter such as libuv's) */
int redis_loop_attach(redisAsyncContext *ac)
{
	struct redis_loop *rl;

	if (!ac || ac->ev.data)
		return EINVAL;

	rl = mem_zalloc(sizeof(*rl), loop_destructor);
	if (!rl)
		return ENOMEM;

	rl->ac = ac;
	rl->fd = ac->c.fd;
	ac->ev.data     = rl;
	ac->ev.addRead  = add_read;
	ac->ev.delRead  = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup  = cleanup;

	return 0;
}
