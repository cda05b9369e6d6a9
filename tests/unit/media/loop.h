/**
 * @file loop.h  Running libre's main loop in a test, bounded in time
 *
 * run_until() runs re_main() until a condition holds (checked every
 * 5 ms) or a deadline passes, and tells which; run_for() just waits.
 * Include it after <re.h>.
 */

typedef bool (loop_cond_h)(void *arg);

static struct {
	struct tmr poll;
	struct tmr deadline;
	loop_cond_h *cond;
	void *arg;
} loop;


static void loop_poll(void *arg)
{
	(void)arg;

	if (loop.cond && loop.cond(loop.arg))
		re_cancel();
	else
		tmr_start(&loop.poll, 5, loop_poll, NULL);
}


static void loop_deadline(void *arg)
{
	(void)arg;
	re_cancel();
}


static bool run_until(loop_cond_h *cond, void *arg, uint32_t ms)
{
	loop.cond = cond;
	loop.arg = arg;
	tmr_start(&loop.poll, 0, loop_poll, NULL);
	tmr_start(&loop.deadline, ms, loop_deadline, NULL);
	(void)re_main(NULL);
	tmr_cancel(&loop.poll);
	tmr_cancel(&loop.deadline);

	return cond && cond(arg);
}


static inline void run_for(uint32_t ms)
{
	(void)run_until(NULL, NULL, ms);
}
