/**
 * @file dialog_log.c  Log lines about one dialog: its did and Call-ID on each
 *
 * A call's story is told by several modules (sip, dialog, repl, rehome)
 * and, once re-homed or replicated, by several nodes. Every line about one
 * dialog starts with the same two fields, `did=<16 hex> callid=<the
 * caller's Call-ID>`, so that one grep finds all of it, whichever id the
 * operator holds. base/log knows nothing of dialogs, so the prefix is made
 * here, in front of the caller's message (libre's %v). A line about a did
 * whose dialog is not in the table (ended, or never seen here) says
 * `callid=-`.
 */
#include <stdarg.h>
#include <re.h>
#include "log.h"
#include "did.h"
#include "dialog.h"


static void vlog(enum log_level level, const char *mod, uint64_t did,
		 const char *callid, const char *fmt, va_list *ap)
{
	char id[DID_STRSZ];

	(void)did_encode(id, sizeof(id), did);
	log_msg(level, mod, "did=%s callid=%s: %v", id,
		str_isset(callid) ? callid : "-", fmt, ap);
}


/** One line about `dlg`, at `level`, from module `mod` */
void dialog_log(enum log_level level, const char *mod,
		const struct dialog *dlg, const char *fmt, ...)
{
	va_list ap;

	if (!dlg || level < log_get_level())
		return;

	va_start(ap, fmt);
	vlog(level, mod, dlg->did, dlg->callid, fmt, &ap);
	va_end(ap);
}


/** The same for a did alone: its Call-ID from the table, if it is there */
void dialog_log_did(enum log_level level, const char *mod, uint64_t did,
		    const char *fmt, ...)
{
	const struct dialog *dlg;
	va_list ap;

	if (level < log_get_level())
		return;

	dlg = dialog_lookup(did);

	va_start(ap, fmt);
	vlog(level, mod, did, dlg ? dlg->callid : NULL, fmt, &ap);
	va_end(ap);
}
