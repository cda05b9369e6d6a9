/**
 * @file rehome_media.c  Moving calls' media to another relay: the job kind "media"
 *
 * A media move is a re-home that stays on this node: each call's media
 * goes to the new relay (anchor_move: the relay gets the call's SDPs, two
 * ng round trips), then both legs are re-INVITEd with the new relay's SDP
 * (rehome_call.c, with opts.media_to). So the pacing, the in-flight bound,
 * the per-call outcomes and the job's progress are the re-homing jobs',
 * and a re-home can carry a media move in the same re-INVITEs.
 *
 * The job takes no tag: it moves dialogs this node serves, chosen when it
 * starts (those on the old relay, of one tag if given, `count` at most).
 * A call on the old relay that this node does not serve is its owner's to
 * move; `policies/media_failover.lua` runs on every node for that reason.
 */
#include <re.h>
#include "log.h"
#include "dialog.h"
#include "mrelay.h"
#include "anchor.h"
#include "rehome.h"
#include "rehome_int.h"


static bool collect_relay(struct dialog *dlg, void *arg)
{
	struct rehome_job *job = arg;

	if (job->limit && job->itemc >= job->limit)
		return true;

	if (dlg->replica || dlg->state != DIALOG_CONFIRMED ||
	    dialog_locked(dlg) || str_cmp(dialog_media(dlg), job->media_from))
		return false;

	if (job->tag && str_cmp(dlg->shtag, job->tag))
		return false;

	if (rehome_job_add(job, dlg->did)) {
		job->err = ENOMEM;
		return true;
	}

	return false;
}


/** ready: the calls this node serves on the old relay */
static void relay_collect(struct rehome_job *job)
{
	(void)dialog_apply(collect_relay, job);
}


static const struct rehome_job_ops media_ops = {
	.name      = "media",
	.peer      = "to",
	.ready     = relay_collect,
	.step      = rehome_job_pace,
	.item_done = rehome_item_count,
};


/** A relay's name as media_relay writes it (mrelay_find takes IP:PORT too) */
static int relay_name(char *buf, size_t sz, const char *name)
{
	const struct mrelay *relay = mrelay_find(anchor_relays(), name);

	if (!relay)
		return ENOENT;

	str_ncpy(buf, mrelay_name(relay), sz);
	return 0;
}


/**
 * Move the media of calls this node serves from relay `from` to relay
 * `to`: `count` of them at most (0: all), of tag `tag` only if given.
 *
 * @return 0 if the job starts (readyh, then doneh, as other jobs), ENOENT
 *         for an unknown relay, EINVAL for from = to, ENODEV when `to`
 *         is down
 */
int rehome_media(const char *from, const char *to, uint32_t count,
		 const char *tag, const struct rehome_opts *opts,
		 rehome_done_h *readyh, rehome_done_h *doneh, void *arg)
{
	struct rehome_opts o = opts ? *opts : (struct rehome_opts){0};
	char src[REHOME_MEDIA_SZ];
	struct rehome_job *job;
	int err;

	if (!anchor_enabled())
		return ENOENT;

	err  = relay_name(src, sizeof(src), from);
	err |= relay_name(o.media_to, sizeof(o.media_to), to);
	if (err)
		return ENOENT;
	if (!str_cmp(src, o.media_to))
		return EINVAL;
	if (!mrelay_is_up(mrelay_find(anchor_relays(), o.media_to)))
		return ENODEV;

	o.mode = REHOME_CHALLENGE;
	o.body = REHOME_BODY_OUTBOUND;
	o.all = true;

	err = rehome_job_alloc(&job, &media_ops, &o, readyh, doneh, arg);
	if (err)
		return err;

	job->limit = count;
	err  = str_dup(&job->media_from, src);
	err |= str_dup(&job->node, o.media_to);
	if (tag)
		err |= str_dup(&job->tag, tag);
	if (err) {
		mem_deref(job);
		return err;
	}

	log_info("rehome", "job %u: media from %s to %s", job->id, src,
		 o.media_to);
	rehome_job_take_tags(job);   /* none to take: it runs now */
	return 0;
}
