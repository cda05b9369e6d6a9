/**
 * @file sdpver.c  The o= version of the SDP sent to one leg (RFC 3264 8)
 *
 * An endpoint takes a description whose o= version did not change as the
 * same session, and may ignore what changed in it. As long as the engine
 * only relays, the versions a leg sees are the other endpoint's own and
 * grow as that endpoint changes its session. But when the engine offers a
 * leg something of its own choosing (a re-home passes one leg's answer to
 * the other, or offers the other leg's latest description), the version it
 * carries may be no higher than the one that leg was sent last. Then the
 * engine raises it above that one, and remembers by how much in a per-leg
 * offset, which every later SDP sent to the leg, relayed or not, gets too:
 * the versions that leg sees keep increasing, as with the CSeq offsets of
 * cseq.c, and the offset is one integer to replicate. A description equal
 * to the last one sent but for its version is sent as it was sent then.
 *
 * Only the o= version is touched; an SDP without a well-formed o= line is
 * sent as it is.
 */
#include <string.h>
#include <re.h>
#include "sdpver.h"


/** The version field of sdp's o= line */
static int ver_pl(struct pl *ver, const char *sdp)
{
	struct pl user, id;
	const char *o;

	if (!sdp)
		return EINVAL;

	o = strncmp(sdp, "o=", 2) ? strstr(sdp, "\no=") : sdp;
	if (!o)
		return ENOENT;

	if (*o == '\n')
		++o;

	/* o=<username> <sess-id> <sess-version> <nettype> ... */
	if (re_regex(o, strcspn(o, "\r\n"), "o=[^ ]+ [^ ]+ [0-9]+ ", &user,
		     &id, ver) || user.p != o + 2)
		return EBADMSG;

	return ver->l > 19 ? ERANGE : 0;   /* beyond what a uint64_t holds */
}


/** The o= version of sdp */
int sdpver_decode(uint64_t *verp, const char *sdp)
{
	struct pl ver;
	int err;

	if (!verp)
		return EINVAL;

	err = ver_pl(&ver, sdp);
	if (!err)
		*verp = pl_u64(&ver);

	return err;
}


/** A copy of sdp with o= version ver */
int sdpver_rewrite(char **outp, const char *sdp, uint64_t ver)
{
	struct pl v;
	int err;

	if (!outp)
		return EINVAL;

	err = ver_pl(&v, sdp);
	if (err)
		return err;

	return re_sdprintf(outp, "%b%llu%s", sdp, (size_t)(v.p - sdp),
			   (unsigned long long)ver, v.p + v.l);
}


/** True if a and b are the same description but for their o= version */
bool sdpver_same(const char *a, const char *b)
{
	struct pl va, vb;

	if (!a || !b)
		return a == b;

	if (ver_pl(&va, a) || ver_pl(&vb, b))
		return 0 == strcmp(a, b);

	return va.p - a == vb.p - b &&
		0 == strncmp(a, b, (size_t)(va.p - a)) &&
		0 == strcmp(va.p + va.l, vb.p + vb.l);
}


/**
 * The SDP to send a leg, for `sdp`: its version raised by the leg's offset
 * `*off`. `own`: the engine offers or answers it of its own choosing; if
 * it differs from `last` (what the leg was sent last, or NULL) and its
 * version would not be above last's, it gets last's + 1, and *off grows.
 *
 * @param outp  Set to a reference: sdp, last, or a rewritten copy
 *
 * @return 0, or ENOMEM
 */
int sdpver_out(char **outp, uint64_t *off, const char *last, char *sdp,
	       bool own)
{
	uint64_t ver, prev, want;

	if (!outp || !off || !sdp)
		return EINVAL;

	if (own && last && sdpver_same(last, sdp)) {
		*outp = mem_ref((char *)last);
		return 0;
	}

	if (sdpver_decode(&ver, sdp)) {
		*outp = mem_ref(sdp);
		return 0;
	}

	want = ver + *off;
	if (own && !sdpver_decode(&prev, last) && want <= prev) {
		*off += prev + 1 - want;
		want = prev + 1;
	}

	if (want == ver) {
		*outp = mem_ref(sdp);
		return 0;
	}

	return sdpver_rewrite(outp, sdp, want);
}
