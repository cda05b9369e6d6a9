/**
 * @file simulate.c  rehomectl policy simulate: a dry run of a policy on a node
 *
 * One POST /v1/policy/simulate; the node loads the policy (the running
 * one, or --file) beside the running one, feeds it the event on its live
 * state and answers with the actions the policy would take, each with the
 * dialogs it would touch, and the lines it logged: nothing is done. The
 * file is read by the node, so a relative --file is made absolute here
 * when it exists on this host (the usual case: rehomectl on the node);
 * otherwise it is sent as given, for the node to find.
 */
#include <stdlib.h>
#include <limits.h>
#include <re.h>
#include "rehomectl.h"
#include "args.h"
#include "client.h"
#include "output.h"


/** The event as the API names it: node-down -> node_down */
static int event_name(char *buf, size_t sz, const char *word)
{
	size_t i;

	for (i = 0; word[i] && i + 1 < sz; i++)
		buf[i] = word[i] == '-' ? '_' : word[i];
	buf[i] = '\0';

	return 0;
}


static int invite_add(struct odict *body, const struct args *a)
{
	struct odict *inv = NULL;
	int err;

	err = odict_alloc(&inv, 4);
	if (err)
		return err;

	err |= odict_entry_add(inv, "from", ODICT_STRING, a->from);
	err |= odict_entry_add(inv, "to", ODICT_STRING, a->to);
	if (a->ruri)
		err |= odict_entry_add(inv, "ruri", ODICT_STRING, a->ruri);
	err |= odict_entry_add(body, "invite", ODICT_OBJECT, inv);

	mem_deref(inv);
	return err;
}


static int body_build(struct odict **odp, const struct args *a)
{
	const bool node_event = a->nword == 4;
	char event[16], path[PATH_MAX];
	const char *file = a->file;
	struct odict *od = NULL;
	int err;

	if (file && realpath(file, path))
		file = path;

	err = odict_alloc(&od, 8);
	if (err)
		return err;

	(void)event_name(event, sizeof(event), a->word[2]);
	err |= file ? odict_entry_add(od, "file", ODICT_STRING, file)
		    : odict_entry_add(od, "file", ODICT_NULL);
	err |= odict_entry_add(od, "event", ODICT_STRING, event);
	if (node_event)
		err |= odict_entry_add(od, "node", ODICT_STRING, a->arg);
	if (!str_cmp(event, "invite"))
		err |= invite_add(od, a);

	if (err)
		mem_deref(od);
	else
		*odp = od;

	return err;
}


/** ", key value" for each of the keys the action has */
static void details_print(const struct odict *act, const char *const *keys)
{
	for (; *keys; keys++) {
		const struct odict_entry *e = odict_lookup(act, *keys);

		if (e)
			(void)re_printf(", %s %H", *keys, output_scalar, e);
	}
}


static void action_print(const struct odict *act)
{
	static const char *const rehome_keys[] = {"mode", "body", "rate",
						  NULL};
	static const char *const move_keys[] = {"count", "percent", NULL};
	static const char *const invite_keys[] = {"shtag", "target", "reject",
						  "reason", NULL};
	const char *name = odict_string(act, "action");
	const char *tag = odict_string(act, "tag");
	uint64_t n = 0;

	(void)odict_get_number(act, &n, "dialogs");
	(void)re_printf("  %s", name ? name : "?");
	if (tag)
		(void)re_printf(" %s", tag);

	if (!str_cmp(name, "rehome")) {
		details_print(act, rehome_keys);
	}
	else if (!str_cmp(name, "move")) {
		(void)re_printf(" to %s", odict_string(act, "to"));
		details_print(act, move_keys);
	}
	else if (!str_cmp(name, "invite")) {
		if (odict_lookup(act, "default"))
			(void)re_printf(", default (default_shtag, upstream)");
		details_print(act, invite_keys);
	}

	(void)re_printf(": %llu dialog%s\n", (unsigned long long)n,
			n == 1 ? "" : "s");
}


static void report_print(const struct odict *od)
{
	const struct odict_entry *acts = odict_lookup(od, "actions");
	const struct odict_entry *log = odict_lookup(od, "log");
	const char *node = odict_string(od, "node");
	bool called = false, truncated = false;
	struct le *le;

	(void)odict_get_boolean(od, &called, "called");
	(void)odict_get_boolean(od, &truncated, "truncated");
	(void)re_printf("dry run of %s on %s: %s%s%s\n",
			odict_string(od, "policy"), odict_string(od, "node_id"),
			odict_string(od, "event"), node ? " " : "",
			node ? node : "");
	if (!called)
		(void)re_printf("(the policy has no %s)\n",
				odict_string(od, "hook"));

	if (!acts || acts->type != ODICT_ARRAY || !acts->u.odict->lst.head) {
		(void)re_printf("actions: none\n");
	}
	else {
		(void)re_printf("actions (none done):\n");
		LIST_FOREACH(&acts->u.odict->lst, le) {
			const struct odict_entry *e = le->data;

			if (e->type == ODICT_OBJECT)
				action_print(e->u.odict);
		}
	}

	if (log && log->type == ODICT_ARRAY && log->u.odict->lst.head) {
		(void)re_printf("log:\n");
		LIST_FOREACH(&log->u.odict->lst, le) {
			const struct odict_entry *e = le->data;

			if (e->type == ODICT_OBJECT)
				(void)re_printf("  %s: %s\n",
					odict_string(e->u.odict, "level"),
					odict_string(e->u.odict, "msg"));
		}
	}

	if (truncated)
		(void)re_printf("(report truncated)\n");
}


/** policy simulate [--file F] node-down N | node-up N | tick | invite */
int cmd_simulate(struct client *cl, const struct args *a)
{
	struct odict *body = NULL;
	int ret;

	if (body_build(&body, a)) {
		(void)re_fprintf(stderr, "rehomectl: out of memory\n");
		return EXIT_FAILED;
	}

	ret = cmd_show(cl, "POST", "/v1/policy/simulate", body, report_print);
	mem_deref(body);

	return ret;
}
