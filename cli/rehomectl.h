/**
 * @file rehomectl.h  rehomectl: exit statuses and the commands
 */

#ifndef REHOMECTL_H
#define REHOMECTL_H

struct client;
struct args;

/** Exit status of the program, returned by every step that can end it */
enum {
	EXIT_OK      = 0,
	EXIT_FAILED  = 1,   /* failed operation, unreachable node, bad token */
	EXIT_USAGE   = 2,
};

struct odict;

/** Prints a reply for a human */
typedef void (output_h)(const struct odict *od);

int cmd_show(struct client *cl, const char *met, const char *path,
	     const struct odict *body, output_h *print);

/* rehomectl.c: one function a command, run from the command table */
int cmd_status(struct client *cl, const struct args *a);
int cmd_dialogs(struct client *cl, const struct args *a);
int cmd_shtag(struct client *cl, const struct args *a);
int cmd_rehome(struct client *cl, const struct args *a);
int cmd_move(struct client *cl, const struct args *a);
int cmd_drain(struct client *cl, const struct args *a);
int cmd_undrain(struct client *cl, const struct args *a);
int cmd_jobs(struct client *cl, const struct args *a);
int cmd_media(struct client *cl, const struct args *a);
int cmd_dialog(struct client *cl, const struct args *a);
int cmd_policy(struct client *cl, const struct args *a);

/* simulate.c */
int cmd_simulate(struct client *cl, const struct args *a);
int cmd_reload(struct client *cl, const struct args *a);
int cmd_log_level(struct client *cl, const struct args *a);
int cmd_version(struct client *cl, const struct args *a);
int cmd_help(struct client *cl, const struct args *a);

#endif
