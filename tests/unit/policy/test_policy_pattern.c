/**
 * @file test_policy_pattern.c  The sandbox's pattern functions against Lua's
 *
 * Two Lua states: one with Lua's own string library, one whose find,
 * match, gmatch and gsub are policy_pattern.c's (and rep policy_budget.c's),
 * charging a policy_state of its own. Each case is a Lua expression run in
 * both; the results, or the error messages, must be the same. Then the
 * cases Lua's own functions would take seconds on: there, only the
 * replacements run, and must fail on the budget at once.
 */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <re.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "policy.h"
#include "policy_int.h"
#include "policy_fixture.h"

/* "ok" and the results as %q / tostring, or "err" and the message */
static const char RUN[] =
	"local expr = ...\n"
	"local f = assert(load('return ' .. expr, '=case'))\n"
	"local r = table.pack(pcall(f))\n"
	"local out = {}\n"
	"for i = 2, r.n do\n"
	"  local v = r[i]\n"
	"  if type(v) == 'function' then\n"
	"    local t = {}\n"
	"    for a, b in v do t[#t + 1] = tostring(a) .. '|' .. tostring(b)"
	" end\n"
	"    v = 'iter{' .. table.concat(t, ';') .. '}'\n"
	"  end\n"
	"  out[#out + 1] = type(v) == 'string' and string.format('%q', v)"
	" or tostring(v)\n"
	"end\n"
	"return (r[1] and 'ok ' or 'err ') .. table.concat(out, ', ')\n";

static const char *const cases[] = {
	/* find: positions, init, plain, anchors, captures */
	"string.find('hello world', 'o w')",
	"string.find('hello world', 'o', 6)",
	"string.find('hello', 'l', -2)",
	"string.find('hello', 'l', -100)",
	"string.find('hello', 'xyz')",
	"string.find('hello', '', 5)",
	"string.find('hello', '', 6)",
	"string.find('hello', '', 7)",
	"string.find('hello', 'l', 100)",
	"string.find('a.b', '.', 1, true)",
	"string.find('a+b', '+', 1, true)",
	"string.find('a+b', 'b+', 1, true)",
	"string.find('a\\0b', '\\0b')",
	"string.find('abc', '^b')",
	"string.find('abc', '^a')",
	"string.find('abc', 'c$')",
	"string.find('a$c', '$c')",
	"string.find('hello world', '(o)(r)')",
	"string.find('hello', '()ll()')",
	"string.find('THE END', '%f[%w]%w+', 2)",
	"string.find('aaa', 'a-', 2)",
	"string.find(12345, 34)",
	"('abc'):find('b')",
	/* match: classes, sets, repetitions */
	"string.match('key=value', '(%w+)=(%w+)')",
	"string.match('  trim me  ', '^%s*(.-)%s*$')",
	"string.match('2024-05-01', '(%d+)-(%d+)-(%d+)')",
	"string.match('THE (quick) fox', '%((%a+)%)')",
	"string.match('f(a(b)c)d', '%b()')",
	"string.match('f(a)(b)', '%b()%b()')",
	"string.match('[[x]]', '%[(%b[])%]')",
	"string.match('f(a(b c', '%b()')",
	"string.match('THE (quick) fox', '%f[%a]%a+')",
	"string.match('hello', '(h)(e)(l)(l)(o)')",
	"string.match('hello hello', '(h%a+) %1')",
	"string.match('hello help', '(h%a+) %1')",
	"string.match('abc', 'a*')",
	"string.match('aaa', 'a-b')",
	"string.match('aaab', 'a-b')",
	"string.match('aaab', '^a+')",
	"string.match('aab', 'a?ab')",
	"string.match('b', 'a?b')",
	"string.match('x]', '[%]]')",
	"string.match(']', '[]]')",
	"string.match('a-b', '[a%-]+')",
	"string.match('a-z', '[^a-]')",
	"string.match('m', '[a-z]')",
	"string.match('M', '[^a-z]')",
	"string.match('abc123', '[%a]+')",
	"string.match('abc123', '[%A]+')",
	"string.match('ABC def', '%u+')",
	"string.match('ABC def', '%l+')",
	"string.match('a\\tb', '%c')",
	"string.match('x y', '%S+$')",
	"string.match('a, b!', '%p')",
	"string.match('0x1F', '%x+', 3)",
	"string.match('a.b', '%.')",
	"string.match('\\200\\201', '[\\128-\\255]+')",
	"string.match('key = val', '(%w+)%s*=%s*(%w+)')",
	"string.match('hello', '.-(l+)(.*)')",
	"string.match('abc', '((a)(b))')",
	"string.match('abc', '()(b)()')",
	"string.match('a$', 'a$$')",
	"string.match('hello', 'l', -2)",
	/* errors */
	"string.match('hello', '(')",
	"string.match('hello', '%')",
	"string.match('hello', '[a')",
	"string.match('hello', '[a%')",
	"string.match('hello', '(()')",
	"string.match('hello', '%1')",
	"string.match('hello', '(h)%2')",
	"string.match('hello', '%0')",
	"string.match('hello', '%f')",
	"string.match('hello', '%fa')",
	"string.match('hello', '%b')",
	"string.match('hello', '%ba')",
	"string.match('hello', ')')",
	"string.match(('a'):rep(40), ('(a)'):rep(33))",
	"string.match(('a'):rep(300), ('a?'):rep(250))",
	"string.find('abc')",
	"string.find('abc', {})",
	"string.find(nil, 'a')",
	/* gsub */
	"string.gsub('hello world', 'o', '0')",
	"string.gsub('hello world', 'o', '0', 1)",
	"string.gsub('hello world', 'o', '0', 0)",
	"string.gsub('hello world', '(o)', '[%1]')",
	"string.gsub('hello world', '%w+', '%0 %0')",
	"string.gsub('hello', '', '-')",
	"string.gsub('abc', '%w', '%%')",
	"string.gsub('abc', '%w', '%2')",
	"string.gsub('abc', '%w', '%x')",
	"string.gsub('hello world', '%w+', {hello = 'HI'})",
	"string.gsub('hello world', '%w+', {hello = false})",
	"string.gsub('hello world', '%w+', {hello = {}})",
	"string.gsub('hello world', '%w+', function(w) return w:upper() end)",
	"string.gsub('hello world', '%w+', function(w) end)",
	"string.gsub('hello world', '(%w)(%w*)', function(a, b)"
	" return b .. a end)",
	"string.gsub('abc', '^a', 'x')",
	"string.gsub('aaa', '^a', 'x')",
	"string.gsub('abc', '()', '%1')",
	"string.gsub('abc', '()', {})",
	"string.gsub('hello', 'l*', 'X')",
	"string.gsub('abc', 'b*', '-')",
	"string.gsub('abc', 'b', 5)",
	"string.gsub('abc', 'b', true)",
	"string.gsub('a b c', ' ', '', 1.0)",
	"string.gsub('abc', '(b)', '%1%1%0')",
	/* gmatch */
	"string.gmatch('one two  three', '%a+')",
	"string.gmatch('a=1, b=2', '(%w+)=(%w+)')",
	"string.gmatch('^a^a', '^a')",
	"string.gmatch('abcabc', 'a', 3)",
	"string.gmatch('abcabc', 'a', -2)",
	"string.gmatch('abc', 'a', 10)",
	"string.gmatch('abc', 'x*')",
	"string.gmatch('abc', '()')",
	/* rep */
	"string.rep('ab', 3, ',')",
	"string.rep('ab', 3)",
	"string.rep('ab', 1, ',')",
	"string.rep('ab', 0)",
	"string.rep('ab', -1)",
	"string.rep('', 5, ',')",
	"string.rep('x', 5, '')",
	"#string.rep('abc', 1000, '--')",
	"string.rep('abc', 2^40)",
	"string.rep('x')",
	/* move */
	"table.concat(table.move({1, 2, 3}, 1, 3, 2), ',')",
	"table.concat(table.move({1, 2, 3}, 2, 3, 1), ',')",
	"table.concat(table.move({1, 2, 3}, 1, 3, 1, {}), ',')",
	"table.concat(table.move({1, 2, 3}, 3, 1, 1), ',')",
	"table.move({}, math.mininteger, math.maxinteger, 1)",
	"table.move({}, 1, 2, math.maxinteger)",
	"table.move(nil, 1, 2, 1)",
	"table.move({}, 1, 2, 1, 5)",
	"table.move({}, 'a', 2, 1)",
	"table.move(setmetatable({}, {__index = function(t, k) return k * 2"
	" end}), 1, 3, 1, {})[3]",
};


static struct policy_state ps;   /* what the replacements charge */
static lua_State *ref, *safe;


static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;

	if (!nsize) {
		free(ptr);
		return NULL;
	}

	return realloc(ptr, nsize);
}


static lua_State *open(bool replaced)
{
	lua_State *L = lua_newstate(alloc, &ps);

	ck_assert_ptr_nonnull(L);
	luaL_openlibs(L);
	if (!replaced)
		return L;

	lua_getglobal(L, LUA_STRLIBNAME);
	policy_pattern_open(L);
	lua_pop(L, 1);
	lua_pushglobaltable(L);
	policy_budget_open(L, -1);
	lua_pop(L, 1);

	return L;
}


static char *run(lua_State *L, const char *expr)
{
	char *out = NULL;

	ps.insns = 0;
	ps.over_budget = false;

	ck_assert_int_eq(luaL_loadbuffer(L, RUN, sizeof(RUN) - 1, "=run"),
			 LUA_OK);
	lua_pushstring(L, expr);
	ck_assert_int_eq(lua_pcall(L, 1, 1, 0), LUA_OK);
	ck_assert_int_eq(str_dup(&out, lua_tostring(L, -1)), 0);
	lua_pop(L, 1);

	return out;
}


/** The error a call of expr fails with: an overrun fails every later
 * instruction too, so this runs it straight from C */
static char *error_of(lua_State *L, const char *expr)
{
	char *out = NULL;
	int err;

	ps.insns = 0;
	ps.over_budget = false;

	err = re_sdprintf(&out, "return %s", expr);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(luaL_loadstring(L, out), LUA_OK);
	out = mem_deref(out);

	if (lua_pcall(L, 0, LUA_MULTRET, 0) == LUA_OK)
		err = re_sdprintf(&out, "no error, %d results", lua_gettop(L));
	else
		err = str_dup(&out, lua_tostring(L, -1));
	ck_assert_int_eq(err, 0);

	lua_settop(L, 0);
	lua_sethook(L, NULL, 0, 0);
	return out;
}


static void setup(void)
{
	ref  = open(false);
	safe = open(true);
}


static void teardown(void)
{
	lua_close(ref);
	lua_close(safe);
}


START_TEST(test_same_as_lua)
{
	const char *expr = cases[_i];
	char *want = run(ref, expr);
	char *got  = run(safe, expr);

	ck_assert_msg(0 == strcmp(want, got), "%s:\n  lua:  %s\n  ours: %s",
		      expr, want, got);
	mem_deref(want);
	mem_deref(got);
}
END_TEST


/* Lua's own would backtrack for seconds (or minutes) on these */
static const char *const catastrophic[] = {
	"string.find(('a'):rep(300), 'a*a*a*b')",
	"string.match(('a'):rep(300), 'a-a-a-b')",
	"string.gsub(('a'):rep(300), 'a*a*a*b', '')",
	"string.gmatch(('a'):rep(300), 'a*a*a*b')()",
	"pcall(string.find, ('a'):rep(300), 'a*a*a*b') or 'swallowed'",
	"string.find(('a'):rep(5000), '(.-)%1%1b')",
	"string.find(('('):rep(2000), '%b()x')",
};


START_TEST(test_catastrophic_fails_fast)
{
	const char *expr = catastrophic[_i];
	double t0 = fixture_cpu_ms();
	char *got = error_of(safe, expr);

	ck_assert_msg(strstr(got, "instruction budget of 1000000 exceeded"),
		      "%s: %s", expr, got);
	ck_assert_msg(fixture_cpu_ms() - t0 < 1000, "%s took %.0f ms of CPU",
		      expr, fixture_cpu_ms() - t0);
	mem_deref(got);
}
END_TEST


START_TEST(test_charged)
{
	double t0 = fixture_cpu_ms();
	char *got;

	got = error_of(safe, "table.move({}, 1, 1e12, 1)");
	ck_assert_msg(strstr(got, "instruction budget"), "%s", got);
	mem_deref(got);

	/* rep of nothing, many times, and of much: at once */
	got = run(safe, "#string.rep('', 1e18) + #string.rep('x', 1e7)");
	ck_assert_str_eq(got, "ok 10000000");
	mem_deref(got);

	ck_assert_msg(fixture_cpu_ms() - t0 < 1000, "took %.0f ms of CPU",
		      fixture_cpu_ms() - t0);
}
END_TEST


static Suite *pattern_suite(void)
{
	Suite *s = suite_create("policy_pattern");
	TCase *tc = tcase_create("pattern");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_same_as_lua, 0, ARRAY_SIZE(cases));
	tcase_add_loop_test(tc, test_catastrophic_fails_fast, 0,
			    ARRAY_SIZE(catastrophic));
	tcase_add_test(tc, test_charged);
	suite_add_tcase(s, tc);

	return s;
}


#include "check_main.h"

int main(void)
{
	return check_main(pattern_suite());
}
