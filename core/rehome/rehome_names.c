/**
 * @file rehome_names.c  Re-homing modes, bodies and outcomes by name, both ways
 *
 * The names are what the control API, rehomectl, Lua policies and the
 * logs use; the tables are indexed by the enums of rehome.h, so their
 * order is theirs. Names are matched without regard to case.
 */
#include <re.h>
#include "rehome.h"

static const char *mode_names[] = {"challenge", "challenge-callee", "caller",
				   "callee", "update"};
static const char *body_names[] = {"outbound", "inbound", "none"};
static const char *outcome_names[] = {"pending", "moved", "failed",
				      "ended"};


static int name_decode(unsigned *vp, const char *name, const char **names,
		       size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!str_casecmp(name, names[i])) {
			*vp = (unsigned)i;
			return 0;
		}
	}

	return EINVAL;
}


int rehome_mode_decode(enum rehome_mode *modep, const char *name)
{
	unsigned v;
	int err = name_decode(&v, name, mode_names, ARRAY_SIZE(mode_names));

	if (!err)
		*modep = (enum rehome_mode)v;

	return err;
}


int rehome_body_decode(enum rehome_body *bodyp, const char *name)
{
	unsigned v;
	int err = name_decode(&v, name, body_names, ARRAY_SIZE(body_names));

	if (!err)
		*bodyp = (enum rehome_body)v;

	return err;
}


const char *rehome_mode_name(enum rehome_mode mode)
{
	return (unsigned)mode < ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}


const char *rehome_body_name(enum rehome_body body)
{
	return (unsigned)body < ARRAY_SIZE(body_names) ? body_names[body] : "?";
}


const char *rehome_outcome_name(enum rehome_outcome outcome)
{
	return (unsigned)outcome < ARRAY_SIZE(outcome_names) ?
		outcome_names[outcome] : "?";
}


int rehome_outcome_decode(enum rehome_outcome *outcomep, const char *name)
{
	unsigned v;
	int err = name_decode(&v, name, outcome_names,
			      ARRAY_SIZE(outcome_names));

	if (!err)
		*outcomep = (enum rehome_outcome)v;

	return err;
}
