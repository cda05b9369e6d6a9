/**
 * @file sdnotify.c  Telling systemd the daemon's state (Type=notify)
 *
 * READY=1 once the node answers (listeners, cluster and control API up),
 * so that `systemctl start` returns when the node can take calls and the
 * units ordered after it start only then; STOPPING=1 when a signal stops
 * it. With WatchdogSec= in the unit, WATCHDOG=1 goes out from a libre
 * timer at half the period: the timer runs on the main loop, so a loop
 * that hangs stops the pings and systemd restarts the daemon.
 *
 * libsystemd is optional (meson uses it when it finds it); without it the
 * two stubs below turn every call into a no-op, as does running outside
 * systemd (no $NOTIFY_SOCKET).
 */
#include <re.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
static inline int sd_notify(int unset_environment, const char *state)
{
	(void)unset_environment;
	(void)state;
	return 0;
}

static inline int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
	(void)unset_environment;
	(void)usec;
	return 0;
}
#endif
#include "log.h"
#include "sdnotify.h"

static struct {
	struct tmr watchdog;
	uint64_t period;         /* ms between two WATCHDOG=1 */
} sdn;


static void watchdog_handler(void *arg)
{
	(void)arg;

	(void)sd_notify(0, "WATCHDOG=1");
	tmr_start(&sdn.watchdog, sdn.period, watchdog_handler, NULL);
}


/** The node is up; also starts the watchdog pings the unit asks for */
int sdnotify_ready(void)
{
	uint64_t usec = 0;
	int r;

	r = sd_notify(0, "READY=1");
	if (r < 0) {
		log_warn("sdnotify", "READY=1: %m", -r);
		return -r;
	}

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;

	sdn.period = max(usec / 2000, (uint64_t)1);
	log_info("sdnotify", "systemd watchdog: a ping every %llu ms",
		 (unsigned long long)sdn.period);
	watchdog_handler(NULL);

	return 0;
}


/** The watchdog ping of a process without a libre loop (engine_workers.c) */
void sdnotify_ping(void)
{
	(void)sd_notify(0, "WATCHDOG=1");
}


void sdnotify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1");
}


void sdnotify_close(void)
{
	tmr_cancel(&sdn.watchdog);
}
