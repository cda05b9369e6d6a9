/**
 * @file policy_pattern.c  Lua patterns in the sandbox, under the budget
 *
 * Lua's string.find, match, gmatch and gsub match in C, where the count
 * hook never runs: ("a"):rep(300):find("a*a*a*b") backtracks through
 * some 10^9 steps and would hold the SIP loop for seconds, and a CPU-time
 * signal cannot stop it either (policy_budget.c: the hook it sets only
 * fires between VM instructions). So the sandbox's string library has
 * these instead: the same patterns (Lua 5.4 manual, 6.4.1), matched by the
 * same backtracking algorithm with the same results and error messages,
 * except that every step of the matcher (a pattern item tried at a
 * position, a character scanned by a repetition, %b or a back-reference)
 * is charged to the call's instruction budget, and the charge fails the
 * call once the budget or its CPU time is spent. A pattern that
 * backtracks too much thus fails like a runaway loop, in milliseconds,
 * wherever it is used. Plain finds use memmem, linear where Lua's naive
 * search is quadratic.
 *
 * Trade-off: a step is cheaper than a VM instruction, so a policy that
 * matches long strings a lot reaches the budget a little sooner than the
 * time it spent would suggest; the budget stays one number.
 */
#define _GNU_SOURCE  /* memmem */
#include <ctype.h>
#include <string.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include "policy.h"
#include "policy_int.h"

enum {
	DEPTH_MAX      = 200,   /* matcher recursion, as Lua's MAXCCALLS */
	CAPTURES_MAX   = 32,    /* as LUA_MAXCAPTURES */
	STEP_CHUNK     = 256,   /* steps charged at once */
	CAP_UNFINISHED = -1,
	CAP_POSITION   = -2,
};

static const char ESC = '%';
static const char SPECIALS[] = "^$*+?.([%-";

/** One match attempt's state (Lua's MatchState) */
struct mstate {
	lua_State *L;
	const char *src_init;
	const char *src_end;
	const char *p_end;
	int depth;               /* recursion left */
	int level;               /* captures open or closed */
	size_t steps;            /* not charged yet */
	struct {
		const char *init;
		ptrdiff_t len;       /* or CAP_UNFINISHED, CAP_POSITION */
	} cap[CAPTURES_MAX];
};


static void step(struct mstate *ms, size_t n)
{
	ms->steps += n;
	if (ms->steps < STEP_CHUNK)
		return;

	n = ms->steps;
	ms->steps = 0;
	policy_budget_charge(ms->L, n);
}


/* ---- the matcher ---- */

static const char *match(struct mstate *ms, const char *s, const char *p);


/** End of the single-character class at p */
static const char *class_end(struct mstate *ms, const char *p)
{
	switch (*p++) {

	case '%':
		if (p == ms->p_end)
			luaL_error(ms->L, "malformed pattern (ends with '%%')");
		return p + 1;

	case '[':
		if (*p == '^')
			p++;
		do {  /* up to the closing ']'; '%]' does not close */
			if (p == ms->p_end)
				luaL_error(ms->L, "malformed pattern "
					   "(missing ']')");
			if (*(p++) == ESC && p < ms->p_end)
				p++;
		} while (*p != ']');
		return p + 1;

	default:
		return p;
	}
}


static bool class_match(int c, int cl)
{
	bool res;

	switch (tolower(cl)) {

	case 'a': res = isalpha(c);  break;
	case 'c': res = iscntrl(c);  break;
	case 'd': res = isdigit(c);  break;
	case 'g': res = isgraph(c);  break;
	case 'l': res = islower(c);  break;
	case 'p': res = ispunct(c);  break;
	case 's': res = isspace(c);  break;
	case 'u': res = isupper(c);  break;
	case 'w': res = isalnum(c);  break;
	case 'x': res = isxdigit(c); break;
	default:  return cl == c;
	}

	return isupper(cl) ? !res : res;
}


/** [set] from p (the '[') to ec (its ']') */
static bool set_match(int c, const char *p, const char *ec)
{
	bool sig = true;

	if (*(p + 1) == '^') {
		sig = false;
		p++;
	}

	while (++p < ec) {
		if (*p == ESC) {
			p++;
			if (class_match(c, (unsigned char)*p))
				return sig;
		}
		else if (*(p + 1) == '-' && p + 2 < ec) {
			p += 2;
			if ((unsigned char)*(p - 2) <= c &&
			    c <= (unsigned char)*p)
				return sig;
		}
		else if ((unsigned char)*p == c) {
			return sig;
		}
	}

	return !sig;
}


static bool single_match(const struct mstate *ms, const char *s,
			 const char *p, const char *ep)
{
	int c;

	if (s >= ms->src_end)
		return false;

	c = (unsigned char)*s;
	switch (*p) {

	case '.': return true;
	case '%': return class_match(c, (unsigned char)*(p + 1));
	case '[': return set_match(c, p, ep - 1);
	default:  return (unsigned char)*p == c;
	}
}


/** %bxy at s, with p on x */
static const char *balance_match(struct mstate *ms, const char *s,
				 const char *p)
{
	const char *s0 = s;
	int cont = 1;

	if (p >= ms->p_end - 1)
		luaL_error(ms->L, "malformed pattern (missing arguments to "
			   "'%%b')");

	if (s >= ms->src_end || *s != *p)
		return NULL;

	while (++s < ms->src_end) {
		if (*s == *(p + 1)) {
			if (--cont == 0) {
				step(ms, (size_t)(s - s0));
				return s + 1;
			}
		}
		else if (*s == *p) {
			cont++;
		}
	}

	step(ms, (size_t)(s - s0));
	return NULL;
}


static const char *max_expand(struct mstate *ms, const char *s,
			      const char *p, const char *ep)
{
	ptrdiff_t i = 0;

	while (single_match(ms, s + i, p, ep))
		i++;
	step(ms, (size_t)i);

	for (; i >= 0; i--) {
		const char *res = match(ms, s + i, ep + 1);

		if (res)
			return res;
	}

	return NULL;
}


static const char *min_expand(struct mstate *ms, const char *s,
			      const char *p, const char *ep)
{
	for (;;) {
		const char *res = match(ms, s, ep + 1);

		if (res)
			return res;
		if (!single_match(ms, s, p, ep))
			return NULL;
		s++;
	}
}


static const char *capture_start(struct mstate *ms, const char *s,
				 const char *p, ptrdiff_t what)
{
	const char *res;

	if (ms->level >= CAPTURES_MAX)
		luaL_error(ms->L, "too many captures");

	ms->cap[ms->level].init = s;
	ms->cap[ms->level].len  = what;
	ms->level++;

	res = match(ms, s, p);
	if (!res)
		ms->level--;

	return res;
}


static const char *capture_end(struct mstate *ms, const char *s,
			       const char *p)
{
	const char *res;
	int l;

	for (l = ms->level - 1; l >= 0; l--) {
		if (ms->cap[l].len == CAP_UNFINISHED)
			break;
	}
	if (l < 0)
		luaL_error(ms->L, "invalid pattern capture");

	ms->cap[l].len = s - ms->cap[l].init;
	res = match(ms, s, p);
	if (!res)
		ms->cap[l].len = CAP_UNFINISHED;

	return res;
}


/** %1..%9: the text of a closed capture again */
static const char *capture_match(struct mstate *ms, const char *s, int l)
{
	size_t len;

	l -= '1';
	if (l < 0 || l >= ms->level || ms->cap[l].len == CAP_UNFINISHED)
		luaL_error(ms->L, "invalid capture index %%%d", l + 1);

	len = (size_t)ms->cap[l].len;
	step(ms, len);

	if ((size_t)(ms->src_end - s) >= len &&
	    0 == memcmp(ms->cap[l].init, s, len))
		return s + len;

	return NULL;
}


/** %f[set] at s: a frontier; NULL or the pattern after the set */
static const char *frontier_match(struct mstate *ms, const char *s,
				  const char *p)
{
	const char *ep;
	int prev, cur;

	if (*p != '[')
		luaL_error(ms->L, "missing '[' after '%%f' in pattern");

	ep = class_end(ms, p);
	prev = s == ms->src_init ? '\0' : (unsigned char)*(s - 1);
	cur  = s < ms->src_end ? (unsigned char)*s : '\0';

	if (!set_match(prev, p, ep - 1) && set_match(cur, p, ep - 1))
		return ep;

	return NULL;
}


/** A single-character class at p, with its repetition if any */
static const char *item_match(struct mstate *ms, const char *s,
			      const char *p, const char **pnext)
{
	const char *ep = class_end(ms, p);
	const char *res;

	*pnext = NULL;

	if (!single_match(ms, s, p, ep)) {
		if (*ep == '*' || *ep == '?' || *ep == '-') {
			*pnext = ep + 1;  /* accepts zero */
			return s;
		}
		return NULL;
	}

	switch (*ep) {

	case '?':
		res = match(ms, s + 1, ep + 1);
		if (res)
			return res;
		*pnext = ep + 1;
		return s;

	case '+':
		return max_expand(ms, s + 1, p, ep);

	case '*':
		return max_expand(ms, s, p, ep);

	case '-':
		return min_expand(ms, s, p, ep);

	default:
		*pnext = ep;
		return s + 1;
	}
}


/**
 * Match pattern p at s: the end of the match, or NULL. When an item
 * leaves the rest of the pattern to match (*pnext set), loop instead of
 * recursing, as Lua does.
 */
static const char *match(struct mstate *ms, const char *s, const char *p)
{
	const char *pnext;

	if (ms->depth-- == 0)
		luaL_error(ms->L, "pattern too complex");

	while (s && p != ms->p_end) {
		step(ms, 1);
		pnext = NULL;

		switch (*p) {

		case '(':
			if (*(p + 1) == ')')
				s = capture_start(ms, s, p + 2, CAP_POSITION);
			else
				s = capture_start(ms, s, p + 1,
						  CAP_UNFINISHED);
			break;

		case ')':
			s = capture_end(ms, s, p + 1);
			break;

		case '$':
			if (p + 1 == ms->p_end) {
				s = s == ms->src_end ? s : NULL;
				break;
			}
			s = item_match(ms, s, p, &pnext);
			break;

		case '%':
			switch (*(p + 1)) {

			case 'b':
				s = balance_match(ms, s, p + 2);
				pnext = p + 4;
				break;

			case 'f':
				pnext = frontier_match(ms, s, p + 2);
				if (!pnext)
					s = NULL;
				break;

			case '0': case '1': case '2': case '3': case '4':
			case '5': case '6': case '7': case '8': case '9':
				s = capture_match(ms, s,
						  (unsigned char)*(p + 1));
				pnext = p + 2;
				break;

			default:
				s = item_match(ms, s, p, &pnext);
				break;
			}
			break;

		default:
			s = item_match(ms, s, p, &pnext);
			break;
		}

		if (!pnext)
			break;
		p = pnext;
	}

	ms->depth++;
	return s;
}


/* ---- captures ---- */

/** Capture i: its text (length) or, for a position, push it
 * (CAP_POSITION); capture 0 is the whole match when there are none */
static ptrdiff_t capture_get(struct mstate *ms, int i, const char *s,
			     const char *e, const char **cap)
{
	ptrdiff_t len;

	if (i >= ms->level) {
		if (i != 0)
			luaL_error(ms->L, "invalid capture index %%%d", i + 1);
		*cap = s;
		return e - s;
	}

	len = ms->cap[i].len;
	*cap = ms->cap[i].init;
	if (len == CAP_UNFINISHED)
		luaL_error(ms->L, "unfinished capture");
	else if (len == CAP_POSITION)
		lua_pushinteger(ms->L, (ms->cap[i].init - ms->src_init) + 1);

	return len;
}


static void capture_push(struct mstate *ms, int i, const char *s,
			 const char *e)
{
	const char *cap;
	const ptrdiff_t len = capture_get(ms, i, s, e, &cap);

	if (len != CAP_POSITION)
		lua_pushlstring(ms->L, cap, (size_t)len);
}


/** The captures, or the whole match s..e when there are none and s */
static int captures_push(struct mstate *ms, const char *s, const char *e)
{
	const int n = (ms->level == 0 && s) ? 1 : ms->level;

	luaL_checkstack(ms->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		capture_push(ms, i, s, e);

	return n;
}


/* ---- the library functions ---- */

static void mstate_init(struct mstate *ms, lua_State *L, const char *s,
			size_t ls, const char *p, size_t lp)
{
	ms->L        = L;
	ms->src_init = s;
	ms->src_end  = s + ls;
	ms->p_end    = p + lp;
	ms->depth    = DEPTH_MAX;
	ms->level    = 0;
	ms->steps    = 0;
}


/** A start position as Lua counts it (negative: from the end), 1-based */
static size_t pos_get(lua_Integer pos, size_t len)
{
	if (pos > 0)
		return (size_t)pos;
	if (pos == 0 || pos < -(lua_Integer)len)
		return 1;

	return len + (size_t)pos + 1;
}


static bool has_specials(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++) {
		if (p[i] && strchr(SPECIALS, p[i]))
			return true;
	}

	return false;
}


static int find_aux(lua_State *L, bool find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	const size_t init = pos_get(luaL_optinteger(L, 3, 1), ls) - 1;
	const char *s1 = s + init;
	struct mstate ms;
	bool anchor;

	if (init > ls) {
		lua_pushnil(L);
		return 1;
	}

	if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
		const char *s2 = lp ? memmem(s1, ls - init, p, lp) : s1;

		if (!s2) {
			lua_pushnil(L);
			return 1;
		}
		lua_pushinteger(L, (s2 - s) + 1);
		lua_pushinteger(L, (lua_Integer)((s2 - s) + lp));
		return 2;
	}

	anchor = *p == '^';
	if (anchor) {
		p++;
		lp--;
	}

	mstate_init(&ms, L, s, ls, p, lp);
	do {
		const char *e;

		ms.level = 0;
		e = match(&ms, s1, p);
		if (!e)
			continue;

		if (!find)
			return captures_push(&ms, s1, e);

		lua_pushinteger(L, (s1 - s) + 1);
		lua_pushinteger(L, e - s);
		return captures_push(&ms, NULL, NULL) + 2;

	} while (s1++ < ms.src_end && !anchor);

	lua_pushnil(L);
	return 1;
}


static int l_find(lua_State *L)
{
	return find_aux(L, true);
}


static int l_match(lua_State *L)
{
	return find_aux(L, false);
}


/** gmatch's iterator; upvalues: subject, pattern, its struct gmatch */
struct gmatch {
	const char *src;
	const char *p;
	const char *lastmatch;   /* an empty match there is skipped */
	struct mstate ms;
};


static int gmatch_next(lua_State *L)
{
	struct gmatch *gm = lua_touserdata(L, lua_upvalueindex(3));

	gm->ms.L = L;
	for (const char *src = gm->src; src <= gm->ms.src_end; src++) {
		const char *e;

		gm->ms.level = 0;
		gm->ms.depth = DEPTH_MAX;  /* even after an error in a match */
		e = match(&gm->ms, src, gm->p);
		if (e && e != gm->lastmatch) {
			gm->src = gm->lastmatch = e;
			return captures_push(&gm->ms, src, e);
		}
	}

	return 0;
}


static int l_gmatch(lua_State *L)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = pos_get(luaL_optinteger(L, 3, 1), ls) - 1;
	struct gmatch *gm;

	lua_settop(L, 2);  /* the strings stay alive as upvalues */
	gm = lua_newuserdatauv(L, sizeof(*gm), 0);
	if (init > ls)
		init = ls + 1;

	mstate_init(&gm->ms, L, s, ls, p, lp);
	gm->src = s + init;
	gm->p = p;
	gm->lastmatch = NULL;

	lua_pushcclosure(L, gmatch_next, 3);
	return 1;
}


/** A replacement string: %0..%9 are captures, %% a '%' */
static void repl_string(struct mstate *ms, luaL_Buffer *b, const char *s,
			const char *e)
{
	lua_State *L = ms->L;
	size_t l;
	const char *news = lua_tolstring(L, 3, &l);
	const char *p;

	while ((p = memchr(news, ESC, l)) != NULL) {
		luaL_addlstring(b, news, (size_t)(p - news));
		p++;

		if (*p == ESC) {
			luaL_addchar(b, *p);
		}
		else if (*p == '0') {
			luaL_addlstring(b, s, (size_t)(e - s));
		}
		else if (isdigit((unsigned char)*p)) {
			const char *cap;
			ptrdiff_t len = capture_get(ms, *p - '1', s, e, &cap);

			if (len == CAP_POSITION)
				luaL_addvalue(b);
			else
				luaL_addlstring(b, cap, (size_t)len);
		}
		else {
			luaL_error(L, "invalid use of '%c' in replacement "
				   "string", ESC);
		}

		l -= (size_t)(p + 1 - news);
		news = p + 1;
	}

	luaL_addlstring(b, news, l);
}


/** Add the replacement of s..e; false if the match was kept as is */
static bool repl_add(struct mstate *ms, luaL_Buffer *b, const char *s,
		     const char *e, int tr)
{
	lua_State *L = ms->L;

	switch (tr) {

	case LUA_TFUNCTION:
		lua_pushvalue(L, 3);
		lua_call(L, captures_push(ms, s, e), 1);
		break;

	case LUA_TTABLE:
		capture_push(ms, 0, s, e);
		lua_gettable(L, 3);
		break;

	default:
		repl_string(ms, b, s, e);
		return true;
	}

	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
		return false;
	}

	if (!lua_isstring(L, -1))
		luaL_error(L, "invalid replacement value (a %s)",
			   luaL_typename(L, -1));

	luaL_addvalue(b);
	return true;
}


static int l_gsub(lua_State *L)
{
	size_t srcl, lp;
	const char *src = luaL_checklstring(L, 1, &srcl);
	const char *p = luaL_checklstring(L, 2, &lp);
	const char *lastmatch = NULL;
	const int tr = lua_type(L, 3);
	const lua_Integer max_s = luaL_optinteger(L, 4,
						 (lua_Integer)srcl + 1);
	const bool anchor = *p == '^';
	lua_Integer n = 0;
	bool changed = false;
	struct mstate ms;
	luaL_Buffer b;

	luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING ||
			 tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
			 "string/function/table");

	luaL_buffinit(L, &b);
	if (anchor) {
		p++;
		lp--;
	}

	mstate_init(&ms, L, src, srcl, p, lp);
	while (n < max_s) {
		const char *e;

		ms.level = 0;
		e = match(&ms, src, p);
		if (e && e != lastmatch) {
			n++;
			changed = repl_add(&ms, &b, src, e, tr) || changed;
			src = lastmatch = e;
		}
		else if (src < ms.src_end) {
			luaL_addchar(&b, *src++);
		}
		else {
			break;
		}

		if (anchor)
			break;
	}

	if (!changed) {
		lua_pushvalue(L, 1);
	}
	else {
		luaL_addlstring(&b, src, (size_t)(ms.src_end - src));
		luaL_pushresult(&b);
	}

	lua_pushinteger(L, n);
	return 2;
}


static const luaL_Reg pattern_funcs[] = {
	{"find",   l_find},
	{"match",  l_match},
	{"gmatch", l_gmatch},
	{"gsub",   l_gsub},
	{NULL, NULL}
};


/** Replace the pattern functions of the string library on the stack top
 * (string methods too: strings index that same table) */
void policy_pattern_open(lua_State *L)
{
	luaL_setfuncs(L, pattern_funcs, 0);
}
