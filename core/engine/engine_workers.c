/**
 * @file engine_workers.c  `workers N`: one supervisor, N worker processes
 *
 * The engine is single-threaded and its modules keep their state in
 * globals, so a host's cores are used by processes, not threads: the
 * process started (the one systemd knows, MAINPID) forks N workers and
 * only supervises them. Each worker is a whole node (conf_workers.c: its
 * node_id gets "-wK", its control server port + K - 1) that shares the
 * listeners' addresses with its siblings (reuseport.c) and has own
 * sockets for its dialogs (listener.c). With Redis the workers are
 * members of the cluster like any node, so a worker's death is a node
 * failure the cluster handles: a sibling re-homes its calls. Without
 * Redis a dead worker's calls are lost with it.
 *
 * The supervisor restarts a worker that died (after WORKER_RESTART_MS, so
 * a worker that cannot start does not spin), passes SIGHUP on (each
 * worker reloads the file), and on SIGTERM or SIGINT stops the workers
 * and waits for them. It takes signals synchronously (sigtimedwait) and
 * runs no event loop; its one-second tick restarts workers and pings the
 * systemd watchdog. A worker dies with its supervisor (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "sdnotify.h"
#include "engine.h"

enum {
	WORKER_TICK_MS    = 1000,   /* restarts and watchdog pings */
	WORKER_RESTART_MS = 1000,   /* from a worker's death to its restart */
	WORKER_STOP_MS    = 10000,  /* SIGTERM to SIGKILL at a stop */
};

/** One worker slot */
struct worker {
	pid_t pid;               /* 0: not running */
	uint64_t restart_at;     /* ms, tmr_jiffies() */
};

static struct {
	struct worker w[CONF_MAX_WORKERS];
	uint32_t n;
	sigset_t caught;         /* blocked, taken by sigtimedwait */
	sigset_t before;         /* the mask to give back to a worker */
	pid_t self;
} sv;


/* In the child: become worker k, or exit */
static void child_setup(struct rh_conf *cfg, uint32_t k)
{
	int err;

	(void)sigprocmask(SIG_SETMASK, &sv.before, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() != sv.self)
		exit(1);

	/* only the supervisor talks to systemd */
	(void)unsetenv("NOTIFY_SOCKET");
	(void)unsetenv("WATCHDOG_USEC");

	err = conf_worker_apply(cfg, k);
	if (err) {
		log_error("workers", "worker %u: %m", k, err);
		exit(1);
	}
	log_set_worker(k);
}


/* Returns true in the new worker, false in the supervisor */
static bool worker_fork(struct rh_conf *cfg, uint32_t k)
{
	struct worker *w = &sv.w[k - 1];
	pid_t pid = fork();

	if (pid == 0) {
		child_setup(cfg, k);
		return true;
	}

	if (pid < 0) {
		log_error("workers", "worker %u: fork: %m", k, errno);
		w->restart_at = tmr_jiffies() + WORKER_RESTART_MS;
		return false;
	}

	w->pid = pid;
	w->restart_at = 0;
	log_info("workers", "worker %u: pid %d", k, (int)pid);
	return false;
}


static void workers_signal(int sig)
{
	for (uint32_t i = 0; i < sv.n; i++) {
		if (sv.w[i].pid > 0)
			(void)kill(sv.w[i].pid, sig);
	}
}


static uint32_t workers_reap(bool stopping)
{
	uint32_t running = 0;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (uint32_t i = 0; i < sv.n; i++) {
			if (sv.w[i].pid != pid)
				continue;

			sv.w[i].pid = 0;
			sv.w[i].restart_at = tmr_jiffies() + WORKER_RESTART_MS;
			if (stopping)
				continue;
			if (WIFSIGNALED(status))
				log_warn("workers", "worker %u (pid %d) killed "
					 "by signal %d: restarting", i + 1,
					 (int)pid, WTERMSIG(status));
			else
				log_warn("workers", "worker %u (pid %d) exited"
					 " with %d: restarting", i + 1,
					 (int)pid, WEXITSTATUS(status));
		}
	}

	for (uint32_t i = 0; i < sv.n; i++)
		running += sv.w[i].pid > 0;

	return running;
}


/* SIGTERM to all, SIGKILL to those still there after WORKER_STOP_MS */
static void workers_stop(void)
{
	uint64_t deadline = tmr_jiffies() + WORKER_STOP_MS;
	const struct timespec tick = {0, 100 * 1000 * 1000};

	workers_signal(SIGTERM);
	while (workers_reap(true)) {
		if (tmr_jiffies() > deadline) {
			log_warn("workers", "workers still running: SIGKILL");
			workers_signal(SIGKILL);
			deadline = UINT64_MAX;
		}
		(void)sigtimedwait(&sv.caught, NULL, &tick);
	}
}


/* The supervisor's loop; true in a worker forked from it */
static bool supervise(struct rh_conf *cfg)
{
	const struct timespec tick = {WORKER_TICK_MS / 1000, 0};

	for (;;) {
		int sig = sigtimedwait(&sv.caught, NULL, &tick);

		switch (sig) {

		case SIGTERM:
		case SIGINT:
			log_info("workers", "signal %d: stopping the workers",
				 sig);
			sdnotify_stopping();
			workers_stop();
			return false;

		case SIGHUP:
			log_info("workers", "SIGHUP: to the workers");
			workers_signal(SIGHUP);
			break;

		default:
			break;
		}

		(void)workers_reap(false);
		sdnotify_ping();

		for (uint32_t i = 0; i < sv.n; i++) {
			const struct worker *w = &sv.w[i];

			if (!w->pid && w->restart_at <= tmr_jiffies() &&
			    worker_fork(cfg, i + 1))
				return true;
		}
	}
}


/**
 * Fork the workers of `workers N` (N > 1) and supervise them
 *
 * @param cfg  The loaded configuration; in a worker it becomes that
 *             worker's (conf_worker_apply())
 *
 * @return true in the supervisor once it has stopped the workers, false
 *         in a worker (and with one worker: no supervisor), which then
 *         runs as a node
 */
bool engine_workers_run(struct rh_conf *cfg)
{
	if (!cfg || cfg->workers < 2)
		return false;

	sv.n = cfg->workers;
	sv.self = getpid();
	(void)sigemptyset(&sv.caught);
	(void)sigaddset(&sv.caught, SIGCHLD);
	(void)sigaddset(&sv.caught, SIGTERM);
	(void)sigaddset(&sv.caught, SIGINT);
	(void)sigaddset(&sv.caught, SIGHUP);
	(void)sigprocmask(SIG_BLOCK, &sv.caught, &sv.before);

	log_info("workers", "starting %u workers", sv.n);
	for (uint32_t k = 1; k <= sv.n; k++) {
		if (worker_fork(cfg, k))
			return false;
	}

	(void)sdnotify_ready();
	if (supervise(cfg))
		return false;

	log_info("workers", "all workers stopped");
	return true;
}
