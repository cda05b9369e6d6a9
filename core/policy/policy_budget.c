/**
 * @file policy_budget.c  What one call into a policy may spend
 *
 * A call into the policy (a hook, a callback, the load-time code) may run
 * POLICY_INSN_BUDGET VM instructions and use POLICY_CPU_BUDGET_MS of CPU
 * time, whichever ends first; past either it fails, and the host applies
 * the default (policy_hooks.c, policy.c).
 *
 * Instructions are counted by a count hook every BUDGET_STEP. C functions
 * run no instructions, so those whose work a script can make grow without
 * bound, short of memory, are replaced by ones that charge it to the same
 * budget: the pattern functions per matcher step (policy_pattern.c),
 * table.move per element, before it starts. string.rep is replaced by one
 * whose work is that of writing its result. The work of any other library
 * function is bounded by the memory limit: at worst a pass over 64 MiB,
 * or table.sort of the few million elements that fit.
 *
 * CPU time needs a clock that runs while Lua or C code is busy. A POSIX
 * timer on this thread's CPU-time clock is armed for each call; when it
 * expires, the kernel signals this very thread, and the handler sets the
 * count hook to fire at the next instruction. lua_sethook is the one Lua
 * call meant for that: ldebug.c documents it as safe in a signal handler
 * (that is how lua.c stops a script on Ctrl-C), whereas calling it from
 * another thread, a watchdog thread say, would race with the VM changing
 * its call stack. The signal cannot stop a C function, only the VM once
 * the function returns, which is why C functions are bounded as above. A
 * call that waits (no CPU) is not a runaway. Where the timer cannot be
 * made, only the instruction budget applies (logged once).
 *
 * Once a call is over budget, the hook fails every instruction, so that a
 * pcall in the policy cannot swallow the error and carry on.
 */
#define _GNU_SOURCE  /* gettid */
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "log.h"
#include "policy.h"
#include "policy_int.h"

#ifndef sigev_notify_thread_id  /* glibc defines it from 2.41 on */
#define sigev_notify_thread_id _sigev_un._tid
#endif

enum {
	BUDGET_STEP = 1000,      /* instructions between two hook calls */
};

/* The timer, and what its signal handler reads */
static struct {
	timer_t timer;
	pid_t tid;                       /* thread it signals; 0: none yet */
	bool failed;                     /* could not be made: logged */
	lua_State *volatile L;           /* the state of the running call */
	volatile sig_atomic_t armed;
	volatile sig_atomic_t expired;
} cpu;


static void budget_hook(lua_State *L, lua_Debug *ar);


/** On the policy's thread, when its CPU time is up */
static void cpu_signal(int sig)
{
	(void)sig;

	if (!cpu.armed)
		return;

	cpu.expired = 1;
	lua_sethook(cpu.L, budget_hook, LUA_MASKCOUNT, 1);
}


static void exceeded(lua_State *L, struct policy_state *ps, int level)
{
	ps->over_budget = true;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);

	luaL_where(L, level);
	if (cpu.expired)
		lua_pushfstring(L, "CPU time budget of %d ms exceeded",
				POLICY_CPU_BUDGET_MS);
	else
		lua_pushfstring(L, "instruction budget of %d exceeded",
				POLICY_INSN_BUDGET);
	lua_concat(L, 2);
	lua_error(L);
}


/** `level`: the function to blame (luaL_where) */
static void charge(lua_State *L, uint64_t n, int level)
{
	struct policy_state *ps = policy_state_of(L);

	ps->insns = n > UINT64_MAX - ps->insns ? UINT64_MAX : ps->insns + n;
	if (ps->insns > POLICY_INSN_BUDGET || cpu.expired)
		exceeded(L, ps, level);
}


static void budget_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;

	charge(L, (uint64_t)lua_gethookcount(L), 0);
}


/**
 * Charge `n` instructions' worth of work done by a C function that Lua
 * called (its caller is blamed); raises the budget error when spent.
 */
void policy_budget_charge(lua_State *L, uint64_t n)
{
	charge(L, n, 1);
}


/** The timer for this thread (timers are per process and thread) */
static int cpu_timer_init(void)
{
	const pid_t tid = gettid();
	struct sigaction sa;
	struct sigevent sev;

	if (cpu.tid == tid)
		return 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cpu_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGRTMIN, &sa, NULL))
		return errno;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGRTMIN;
	sev.sigev_notify_thread_id = tid;
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &cpu.timer))
		return errno;

	cpu.tid = tid;
	return 0;
}


static void cpu_arm(lua_State *L)
{
	const struct itimerspec its = {
		.it_value = {
			.tv_sec  = POLICY_CPU_BUDGET_MS / 1000,
			.tv_nsec = (POLICY_CPU_BUDGET_MS % 1000) * 1000000L,
		},
	};
	int err = cpu_timer_init();

	if (!err) {
		cpu.L = L;
		cpu.armed = 1;
		if (timer_settime(cpu.timer, 0, &its, NULL))
			err = errno;
	}

	if (err) {
		cpu.armed = 0;
		if (!cpu.failed)
			log_warn("policy", "no CPU time budget for policy "
				 "calls, only the instruction budget: %m",
				 err);
		cpu.failed = true;
	}
}


/** Before the outermost call into L: a fresh budget */
void policy_budget_start(struct policy_state *ps)
{
	ps->insns = 0;
	ps->over_budget = false;
	cpu.expired = 0;
	lua_sethook(ps->L, budget_hook, LUA_MASKCOUNT, BUDGET_STEP);
	cpu_arm(ps->L);
}


/** After the outermost call: no budget outside calls */
void policy_budget_stop(struct policy_state *ps)
{
	static const struct itimerspec off;

	if (cpu.armed) {
		cpu.armed = 0;
		(void)timer_settime(cpu.timer, 0, &off, NULL);
	}

	lua_sethook(ps->L, NULL, 0, 0);
}


/* ---- library functions whose work grows with their arguments ---- */

/**
 * string.rep, with what Lua's does and its errors. Lua copies the string
 * n times, which for rep("", 1e18) is a loop of 10^18 empty copies and
 * for rep("x", 2^25) 2^25 calls of memcpy; here the first copy is copied
 * doubling, so the work is that of writing the result, which the memory
 * limit bounds.
 */
static int l_rep(lua_State *L)
{
	size_t l, lsep, unit, total, done;
	const char *s = luaL_checklstring(L, 1, &l);
	const lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &lsep);
	luaL_Buffer b;
	char *p;

	unit = l + lsep;
	if (n <= 0 || unit == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	if (unit < l || unit > (size_t)INT_MAX / (lua_Unsigned)n)
		return luaL_error(L, "resulting string too large");
	if (n == 1) {
		lua_settop(L, 1);
		return 1;
	}

	total = (size_t)n * unit - lsep;
	p = luaL_buffinitsize(L, &b, total);
	memcpy(p, s, l);
	memcpy(p + l, sep, lsep);

	for (done = unit; done < total; done *= 2)
		memcpy(p + done, p, min(done, total - done));

	luaL_pushresultsize(&b, total);
	return 1;
}


/** A table, or a value with the metamethod the access needs */
static void table_check(lua_State *L, int arg, const char *event)
{
	bool ok;

	if (lua_type(L, arg) == LUA_TTABLE)
		return;

	if (lua_getmetatable(L, arg)) {
		ok = lua_getfield(L, -1, event) != LUA_TNIL;
		lua_pop(L, 2);
		if (ok)
			return;
	}

	luaL_checktype(L, arg, LUA_TTABLE);
}


/**
 * table.move(a1, f, e, t [,a2]), with what Lua's does and its errors,
 * but charging the e - f + 1 elements before moving any: Lua's would
 * loop 10^12 times over table.move({}, 1, 1e12, 1).
 */
static int l_move(lua_State *L)
{
	const lua_Integer f = luaL_checkinteger(L, 2);
	const lua_Integer e = luaL_checkinteger(L, 3);
	const lua_Integer t = luaL_checkinteger(L, 4);
	const int tt = lua_isnoneornil(L, 5) ? 1 : 5;
	lua_Integer n;

	table_check(L, 1, "__index");
	table_check(L, tt, "__newindex");

	if (e >= f) {
		luaL_argcheck(L, f > 0 || e < LUA_MAXINTEGER + f, 3,
			      "too many elements to move");
		n = e - f + 1;
		luaL_argcheck(L, t <= LUA_MAXINTEGER - n + 1, 4,
			      "destination wrap around");
		policy_budget_charge(L, (uint64_t)n);

		/* overlapping ranges of one table: copy from the end */
		if (t > e || t <= f ||
		    (tt != 1 && !lua_compare(L, 1, tt, LUA_OPEQ))) {
			for (lua_Integer i = 0; i < n; i++) {
				lua_geti(L, 1, f + i);
				lua_seti(L, tt, t + i);
			}
		}
		else {
			for (lua_Integer i = n - 1; i >= 0; i--) {
				lua_geti(L, 1, f + i);
				lua_seti(L, tt, t + i);
			}
		}
	}

	lua_pushvalue(L, tt);
	return 1;
}


static const struct {
	const char *lib;
	const char *name;
	lua_CFunction fn;
} replaced[] = {
	{LUA_STRLIBNAME, "rep",  l_rep},
	{LUA_TABLIBNAME, "move", l_move},
};


/** In the libraries of the table at `t` (the sandbox template), put
 * these functions in place of Lua's own */
void policy_budget_open(lua_State *L, int t)
{
	t = lua_absindex(L, t);

	for (size_t i = 0; i < ARRAY_SIZE(replaced); i++) {
		lua_getfield(L, t, replaced[i].lib);
		lua_pushcfunction(L, replaced[i].fn);
		lua_setfield(L, -2, replaced[i].name);
		lua_pop(L, 1);
	}
}
