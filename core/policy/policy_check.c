/**
 * @file policy_check.c  Checking a policy file without running it (rehomed -t)
 *
 * The file is loaded exactly as a reload loads it: a sandboxed state, its
 * top-level code run (require() of the library included) and a table of
 * hooks returned, on_load(nil) called; then the state is dropped. No
 * engine stands behind it, so a `rehome` call made at load time fails with
 * "not supported" (a policy has no business acting before its hooks are
 * called). Errors are Lua's own, FILE:LINE: message, from the sandbox's
 * loader.
 */
#include <lua.h>
#include <re.h>
#include "policy.h"
#include "policy_int.h"


int policy_check(const char *path, const char *libdir, char *errbuf,
		 size_t errsz)
{
	static const struct policy_ops no_engine;
	struct policy_state *ps = NULL;
	int err;

	if (!str_isset(path))
		return EINVAL;

	err = policy_state_load(&ps, path, libdir ? libdir : REHOME_LUADIR,
				&no_engine, errbuf, errsz);
	if (!err)
		err = policy_handover(ps, NULL, errbuf, errsz);
	mem_deref(ps);

	return err;
}
