/**
 * @file hdrfilter.c  Topology hiding: which headers cross from one leg to the other
 *
 * A whitelist. The engine writes the headers that describe the path and
 * the dialog itself (Via, Route, Record-Route, Contact, Call-ID, CSeq,
 * Max-Forwards, Content-Length, From, To: relay.c, proxy.c); of the rest,
 * only the headers in the table below cross, each with its rule:
 *  - pass: end-to-end by definition (capabilities, body description,
 *    authentication, session timers, 100rel, events);
 *  - identity: P-Asserted-Identity and its kin name a party; they cross
 *    unless a URI in them has an IP address for host, which is a machine
 *    of the other side rather than a name;
 *  - dialog: Replaces, Join and Target-Dialog name a dialog by its Call-ID
 *    as the sender knows it; naming the sender's own dialog they are
 *    rewritten to the receiver's Call-ID of it (the tags cross unchanged),
 *    naming any other they would show a Call-ID of the other side: dropped;
 *  - refer: Refer-To crosses without the headers embedded in its URI when
 *    they carry a Replaces (which cannot be rewritten inside the URI).
 * Everything else is dropped: Warning, Path, History-Info, Server,
 * User-Agent, Error-Info, In-Reply-To, P-Charging-Vector, X- headers and
 * any header the table does not know. `pass_header NAME` lets more cross
 * verbatim; it is read at each message, so a reload applies at once.
 *
 * Names are compared as text (case-insensitive, compact forms listed),
 * not by libre's header id: that id is a 12-bit hash for unknown names
 * too, and a crafted name could collide with a whitelisted one.
 */
#include <string.h>
#include <ctype.h>
#include <re.h>
#include "conf.h"
#include "hdrfilter.h"

enum rule {
	DROP = 0,
	PASS,
	IDENTITY,
	DIALOG,
	REFER,
};

static const struct {
	const char *name;
	const char *compact;
	enum rule rule;
} hdrv[] = {
	{"Accept",                   NULL, PASS},
	{"Accept-Contact",           "a",  PASS},
	{"Accept-Encoding",          NULL, PASS},
	{"Accept-Language",          NULL, PASS},
	{"Accept-Resource-Priority", NULL, PASS},
	{"Alert-Info",               NULL, PASS},
	{"Allow",                    NULL, PASS},
	{"Allow-Events",             "u",  PASS},
	{"Answer-Mode",              NULL, PASS},
	{"Authentication-Info",      NULL, PASS},
	{"Authorization",            NULL, PASS},
	{"Call-Info",                NULL, PASS},
	{"Content-Disposition",      NULL, PASS},
	{"Content-Encoding",         "e",  PASS},
	{"Content-Language",         NULL, PASS},
	{"Content-Type",             "c",  PASS},
	{"Date",                     NULL, PASS},
	{"Event",                    "o",  PASS},
	{"Expires",                  NULL, PASS},
	{"Identity",                 "y",  PASS},
	{"Min-Expires",              NULL, PASS},
	{"Min-SE",                   NULL, PASS},
	{"MIME-Version",             NULL, PASS},
	{"Organization",             NULL, PASS},
	{"P-Early-Media",            NULL, PASS},
	{"Priority",                 NULL, PASS},
	{"Priv-Answer-Mode",         NULL, PASS},
	{"Privacy",                  NULL, PASS},
	{"Proxy-Authenticate",       NULL, PASS},
	{"Proxy-Authorization",      NULL, PASS},
	{"RAck",                     NULL, DROP},  /* relay.c renumbers it */
	{"Reason",                   NULL, PASS},
	{"Refer-Sub",                NULL, PASS},
	{"Reject-Contact",           "j",  PASS},
	{"Request-Disposition",      "d",  PASS},
	{"Require",                  NULL, PASS},
	{"Resource-Priority",        NULL, PASS},
	{"Retry-After",              NULL, PASS},
	{"RSeq",                     NULL, PASS},
	{"Session-Expires",          "x",  PASS},
	{"SIP-ETag",                 NULL, PASS},
	{"SIP-If-Match",             NULL, PASS},
	{"Subject",                  "s",  PASS},
	{"Subscription-State",       NULL, PASS},
	{"Supported",                "k",  PASS},
	{"Timestamp",                NULL, PASS},
	{"Unsupported",              NULL, PASS},
	{"WWW-Authenticate",         NULL, PASS},
	{"Diversion",                NULL, IDENTITY},
	{"P-Asserted-Identity",      NULL, IDENTITY},
	{"P-Preferred-Identity",     NULL, IDENTITY},
	{"Referred-By",              "b",  IDENTITY},
	{"Remote-Party-ID",          NULL, IDENTITY},
	{"Join",                     NULL, DIALOG},
	{"Replaces",                 NULL, DIALOG},
	{"Target-Dialog",            NULL, DIALOG},
	{"Refer-To",                 "r",  REFER},
};

static const struct rh_conf *hf_cfg;


/** The `pass_header` lines to honour from now on (NULL: none) */
void hdrfilter_init(const struct rh_conf *cfg)
{
	hf_cfg = cfg;
}


static bool passed_by_operator(const struct pl *name)
{
	for (size_t i = 0; hf_cfg && i < hf_cfg->pass_headerc; i++) {
		if (!pl_strcasecmp(name, hf_cfg->pass_header[i]))
			return true;
	}

	return false;
}


/* the first letters differ: most of the table, told without a strlen() */
static bool first_differs(const struct pl *name, const char *s)
{
	return tolower((unsigned char)name->p[0]) !=
		tolower((unsigned char)s[0]);
}


static enum rule rule_of(const struct pl *name)
{
	if (!name->l)
		return DROP;

	if (passed_by_operator(name))
		return PASS;

	for (size_t i = 0; i < ARRAY_SIZE(hdrv); i++) {
		if (first_differs(name, hdrv[i].name) &&
		    (!hdrv[i].compact || first_differs(name, hdrv[i].compact)))
			continue;

		if (!pl_strcasecmp(name, hdrv[i].name) ||
		    (hdrv[i].compact && !pl_strcasecmp(name, hdrv[i].compact)))
			return hdrv[i].rule;
	}

	return DROP;
}


/** The URI host at p (after "sip:"/"sips:"), up to its end */
static void uri_host(struct pl *host, const char *p, const char *end)
{
	const char *q = p;

	/* userinfo ends at '@', the whole URI at one of ;?>, or LWS */
	while (q < end && !strchr(";?>, \t\r\n@", *q))
		++q;
	if (q < end && *q == '@')
		p = q + 1;

	host->p = p;
	if (p < end && *p == '[') {
		q = memchr(p, ']', end - p);
		host->l = q ? (size_t)(q - p) + 1 : (size_t)(end - p);
		return;
	}

	for (q = p; q < end && !strchr(":;?>, \t\r\n", *q); q++)
		;
	host->l = q - p;
}


static bool is_ip_host(const struct pl *host)
{
	struct sa sa;
	struct pl h = *host;

	if (h.l > 2 && h.p[0] == '[') {
		h.p += 1;
		h.l -= 2;
	}

	return 0 == sa_set(&sa, &h, 0);
}


/** A sip: or sips: URI in val has an IP address for host */
static bool names_an_address(const struct pl *val)
{
	const char *end = val->p + val->l;

	for (const char *p = val->p; p + 4 <= end; p++) {
		size_t skip;
		struct pl host;

		if (!strncasecmp(p, "sip:", 4))
			skip = 4;
		else if (p + 5 <= end && !strncasecmp(p, "sips:", 5))
			skip = 5;
		else
			continue;

		uri_host(&host, p + skip, end);
		if (is_ip_host(&host))
			return true;
	}

	return false;
}


/**
 * Replaces, Join, Target-Dialog: "callid;params". The sender's own
 * dialog is renamed to the receiver's Call-ID; any other is dropped.
 */
static int print_dialog_ref(struct mbuf *mb, const struct sip_hdr *hdr,
			    const struct hdrfilter_ids *ids)
{
	struct pl callid, rest;
	const char *semi = pl_strchr(&hdr->val, ';');

	callid.p = hdr->val.p;
	callid.l = semi ? (size_t)(semi - hdr->val.p) : hdr->val.l;
	while (callid.l && isspace((unsigned char)callid.p[callid.l - 1]))
		--callid.l;

	if (!ids || !ids->to_callid || pl_cmp(&callid, &ids->from_callid))
		return 0;

	rest.p = callid.p + callid.l;
	rest.l = hdr->val.l - callid.l;

	return mbuf_printf(mb, "%r: %s%r\r\n", &hdr->name, ids->to_callid,
			   &rest);
}


static bool has_word(const struct pl *pl, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= pl->l; i++) {
		if (!strncasecmp(pl->p + i, word, n))
			return true;
	}

	return false;
}


/** Refer-To, without embedded headers (`?...` in <>) carrying Replaces */
static int print_refer_to(struct mbuf *mb, const struct sip_hdr *hdr)
{
	const char *end = hdr->val.p + hdr->val.l;
	const char *q = pl_strchr(&hdr->val, '?');
	const char *gt;
	struct pl head, tail, embedded;

	if (!q)
		return mbuf_printf(mb, "%r: %r\r\n", &hdr->name, &hdr->val);

	gt = memchr(q, '>', end - q);
	embedded.p = q;
	embedded.l = (gt ? gt : end) - q;
	if (!has_word(&embedded, "replaces"))
		return mbuf_printf(mb, "%r: %r\r\n", &hdr->name, &hdr->val);

	head.p = hdr->val.p;
	head.l = q - hdr->val.p;
	tail.p = embedded.p + embedded.l;
	tail.l = end - tail.p;

	return mbuf_printf(mb, "%r: %r%r\r\n", &hdr->name, &head, &tail);
}


/**
 * Print the headers of msg that may cross to the other leg, each as its
 * rule says.
 *
 * @param mb   Buffer to print to
 * @param msg  The request or response from one leg
 * @param ids  Call-IDs of the dialog on the sender's and receiver's leg
 *             (NULL: no dialog yet, dialog references are dropped)
 *
 * @return 0 if success, otherwise errorcode
 */
int hdrfilter_print(struct mbuf *mb, const struct sip_msg *msg,
		    const struct hdrfilter_ids *ids)
{
	struct le *le;
	int err = 0;

	if (!mb || !msg)
		return EINVAL;

	LIST_FOREACH(&msg->hdrl, le) {
		const struct sip_hdr *hdr = le->data;

		switch (rule_of(&hdr->name)) {

		case PASS:
			err |= mbuf_printf(mb, "%r: %r\r\n", &hdr->name,
					   &hdr->val);
			break;

		case IDENTITY:
			if (!names_an_address(&hdr->val))
				err |= mbuf_printf(mb, "%r: %r\r\n",
						   &hdr->name, &hdr->val);
			break;

		case DIALOG:
			err |= print_dialog_ref(mb, hdr, ids);
			break;

		case REFER:
			err |= print_refer_to(mb, hdr);
			break;

		case DROP:
			break;
		}
	}

	return err;
}
