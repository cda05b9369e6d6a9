/**
 * @file dnscache.c  A DNS cache in front of the SIP stack: answers kept for their TTL
 *
 * libre 1.1.0 resolves SIP URIs (NAPTR, SRV, A/AAAA) inside its request
 * layer, with its DNS client, which has no cache: every new call to a name
 * would ask the DNS servers again. The resolver cannot be swapped, but the
 * servers it asks can: the SIP stack's client is pointed at this cache, a
 * UDP socket on 127.0.0.1 (a port the kernel picks). The cache answers
 * from memory what it holds, and asks the configured servers, through a
 * DNS client of its own, what it does not, keeping the whole answer
 * (answer, authority and additional records) until its smallest TTL runs
 * out; the TTLs it hands out count down. Queries for a name being asked
 * wait for that one answer. An answer without records (no such name) is
 * kept for the SOA's TTL if the server sent one, else not at all; a
 * failure (timeout, server failure) is never kept.
 *
 * The table is bounded: when it is full, entries past their TTL are
 * dropped, and an answer that still finds no room is passed on without
 * being kept. Record types libre cannot encode (EDNS OPT, ...) are left
 * out of the answers; the SIP stack asks for none of them.
 */
#include <string.h>
#include <re.h>
#include "log.h"
#include "dnscache.h"

enum {
	DNSCACHE_MAX     = 4096,   /* names x types kept */
	DNSCACHE_BUCKETS = 256,
	DNSCACHE_TTL_MAX = 86400,  /* seconds: a longer TTL is cut to this */
	DNSCACHE_MSG_SZ  = 512,
};

struct dnscache {
	struct udp_sock *us;
	struct dnsc *up;        /* asks the configured servers */
	struct hash *ht;        /* struct entry, by name */
	struct sa laddr;
	uint32_t n;
};

/** One question (name, type, class) and its answer */
struct entry {
	struct le he;
	struct dnscache *dc;
	char *name;
	uint16_t type;
	uint16_t dnsclass;
	uint8_t rcode;
	uint64_t stored;        /* ms, when the answer came */
	uint64_t expires;       /* ms; 0: not kept */
	struct list rrl[3];     /* answer, authority, additional */
	struct list waiters;    /* struct waiter, while being asked */
	struct dns_query *q;
};

/** Who asked: the SIP stack's DNS client, its query id */
struct waiter {
	struct le le;
	struct sa src;
	uint16_t id;
	bool rd;
};


static void waiter_destructor(void *arg)
{
	struct waiter *w = arg;

	list_unlink(&w->le);
}


static void entry_destructor(void *arg)
{
	struct entry *e = arg;

	hash_unlink(&e->he);
	mem_deref(e->q);
	for (size_t i = 0; i < ARRAY_SIZE(e->rrl); i++)
		list_flush(&e->rrl[i]);
	list_flush(&e->waiters);
	mem_deref(e->name);
	if (e->dc)
		--e->dc->n;
}


static void cache_destructor(void *arg)
{
	struct dnscache *dc = arg;

	hash_flush(dc->ht);
	mem_deref(dc->ht);
	mem_deref(dc->up);
	mem_deref(dc->us);
}


static bool encodable(uint16_t type)
{
	switch (type) {

	case DNS_TYPE_A:     case DNS_TYPE_AAAA:  case DNS_TYPE_SRV:
	case DNS_TYPE_NAPTR: case DNS_TYPE_CNAME: case DNS_TYPE_SOA:
	case DNS_TYPE_NS:    case DNS_TYPE_PTR:   case DNS_TYPE_MX:
	case DNS_TYPE_TXT:
		return true;

	default:
		return false;
	}
}


static int reply_encode(struct mbuf *mb, const struct entry *e,
			const struct waiter *w)
{
	int64_t age = (int64_t)((tmr_jiffies() - e->stored) / 1000);
	struct dnshdr hdr = {
		.id = w->id, .qr = true, .rd = w->rd, .ra = true,
		.rcode = e->rcode, .nq = 1,
		.nans  = (uint16_t)list_count(&e->rrl[0]),
		.nauth = (uint16_t)list_count(&e->rrl[1]),
		.nadd  = (uint16_t)list_count(&e->rrl[2]),
	};
	struct hash *names = NULL;
	struct le *le;
	int err;

	err = hash_alloc(&names, 16);
	if (err)
		return err;

	err  = dns_hdr_encode(mb, &hdr);
	err |= dns_dname_encode(mb, e->name, names, 0, true);
	err |= mbuf_write_u16(mb, htons(e->type));
	err |= mbuf_write_u16(mb, htons(e->dnsclass));

	for (size_t i = 0; i < ARRAY_SIZE(e->rrl) && !err; i++) {
		LIST_FOREACH(&e->rrl[i], le)
			err |= dns_rr_encode(mb, le->data, age, names, 0);
	}

	hash_flush(names);
	mem_deref(names);

	return err;
}


static void reply(struct dnscache *dc, const struct entry *e,
		  const struct waiter *w)
{
	struct mbuf *mb = mbuf_alloc(DNSCACHE_MSG_SZ);

	if (!mb)
		return;

	if (!reply_encode(mb, e, w)) {
		mb->pos = 0;
		(void)udp_send(dc->us, &w->src, mb);
	}

	mem_deref(mb);
}


/* Entries past their TTL go, to make room */
static bool expired_apply(struct le *le, void *arg)
{
	struct entry *e = le->data;
	const uint64_t *now = arg;

	if (!e->q && e->expires <= *now)
		mem_deref(e);

	return false;
}


static uint32_t min_ttl(const struct entry *e)
{
	uint32_t ttl = DNSCACHE_TTL_MAX;
	bool any = false;
	struct le *le;

	for (size_t i = 0; i < ARRAY_SIZE(e->rrl); i++) {
		LIST_FOREACH(&e->rrl[i], le) {
			const struct dnsrr *rr = le->data;

			ttl = min(ttl, (uint32_t)max(rr->ttl, (int64_t)0));
			any = true;
		}
	}

	return any ? ttl : 0;
}


static bool keep_rr(struct dnsrr *rr, void *arg)
{
	struct list *lst = arg;

	if (encodable(rr->type))
		list_append(lst, &rr->le, mem_ref(rr));

	return false;
}


static void answer_handler(int err, const struct dnshdr *hdr,
			   struct list *ansl, struct list *authl,
			   struct list *addl, void *arg)
{
	struct entry *e = arg;
	struct list *lv[3] = {ansl, authl, addl};
	uint64_t now = tmr_jiffies();
	struct le *le;

	e->stored = now;   /* libre has cleared e->q */
	e->expires = 0;
	e->rcode = err || !hdr ? DNS_RCODE_SRV_FAIL : hdr->rcode;

	if (!err && hdr) {
		for (size_t i = 0; i < ARRAY_SIZE(lv); i++)
			(void)dns_rrlist_apply(lv[i], NULL, DNS_QTYPE_ANY,
					       DNS_QCLASS_ANY, false, keep_rr,
					       &e->rrl[i]);
	}

	if (e->rcode == DNS_RCODE_OK || e->rcode == DNS_RCODE_NAME_ERR)
		e->expires = now + 1000ull * min_ttl(e);

	while ((le = list_head(&e->waiters)) != NULL) {
		reply(e->dc, e, le->data);
		mem_deref(le->data);
	}

	if (e->expires <= now || !e->he.list)
		mem_deref(e);   /* nothing worth keeping, or no room */
}


static bool entry_cmp(struct le *le, void *arg)
{
	const struct entry *e = le->data;
	const struct entry *key = arg;

	return e->type == key->type && e->dnsclass == key->dnsclass &&
		!str_casecmp(e->name, key->name);
}


static int entry_new(struct entry **ep, struct dnscache *dc, char *name,
		     uint16_t type, uint16_t dnsclass)
{
	uint64_t now = tmr_jiffies();
	struct entry *e;

	if (dc->n >= DNSCACHE_MAX)
		hash_apply(dc->ht, expired_apply, &now);

	e = mem_zalloc(sizeof(*e), entry_destructor);
	if (!e)
		return ENOMEM;

	e->name = mem_ref(name);
	e->type = type;
	e->dnsclass = dnsclass;
	e->dc = dc;
	++dc->n;
	if (dc->n <= DNSCACHE_MAX)   /* else answered, not kept */
		hash_append(dc->ht, hash_joaat_str_ci(name), &e->he, e);

	*ep = e;
	return 0;
}


static int ask(struct dnscache *dc, struct entry *e, const struct sa *src,
	       const struct dnshdr *hdr)
{
	struct waiter *w;
	struct le *le;
	int err = 0;

	LIST_FOREACH(&e->waiters, le) {
		w = le->data;
		if (w->id == hdr->id && sa_cmp(&w->src, src, SA_ALL))
			return 0;   /* the same query, sent again */
	}

	w = mem_zalloc(sizeof(*w), waiter_destructor);
	if (!w)
		return ENOMEM;

	w->src = *src;
	w->id = hdr->id;
	w->rd = hdr->rd;
	list_append(&e->waiters, &w->le, w);

	if (!e->q) {
		for (size_t i = 0; i < ARRAY_SIZE(e->rrl); i++)
			list_flush(&e->rrl[i]);
		err = dnsc_query(&e->q, dc->up, e->name, e->type, e->dnsclass,
				 true, answer_handler, e);
	}

	return err;
}


static void recv_handler(const struct sa *src, struct mbuf *mb, void *arg)
{
	struct dnscache *dc = arg;
	struct entry key = {.name = NULL}, *e;
	struct dnshdr hdr;

	if (dns_hdr_decode(mb, &hdr) || hdr.qr || hdr.nq != 1 ||
	    dns_dname_decode(mb, &key.name, 0) || mbuf_get_left(mb) < 4)
		goto out;

	key.type = ntohs(mbuf_read_u16(mb));
	key.dnsclass = ntohs(mbuf_read_u16(mb));

	e = list_ledata(hash_lookup(dc->ht, hash_joaat_str_ci(key.name),
				    entry_cmp, &key));
	if (e && !e->q && e->expires > tmr_jiffies()) {
		struct waiter w = {.src = *src, .id = hdr.id, .rd = hdr.rd};

		reply(dc, e, &w);
		goto out;
	}

	if (!e && entry_new(&e, dc, key.name, key.type, key.dnsclass))
		goto out;

	if (ask(dc, e, src, &hdr)) {
		log_warn("dns", "cannot ask for %s: no DNS server", key.name);
		mem_deref(e);
	}

 out:
	mem_deref(key.name);
}


/**
 * A cache on 127.0.0.1 in front of the DNS servers srvv.
 *
 * @param laddr Out: its address, the one server to give the SIP stack
 */
int dnscache_alloc(struct dnscache **dcp, struct sa *laddr,
		   const struct sa *srvv, uint32_t srvc)
{
	struct dnscache *dc;
	struct sa local;
	int err;

	if (!dcp || !laddr || !srvv || !srvc)
		return EINVAL;

	dc = mem_zalloc(sizeof(*dc), cache_destructor);
	if (!dc)
		return ENOMEM;

	err = hash_alloc(&dc->ht, DNSCACHE_BUCKETS);
	if (err)
		goto out;

	err = dnsc_alloc(&dc->up, NULL, srvv, srvc);
	if (err)
		goto out;

	(void)sa_set_str(&local, "127.0.0.1", 0);
	err = udp_listen(&dc->us, &local, recv_handler, dc);
	if (err)
		goto out;

	err = udp_local_get(dc->us, &dc->laddr);

 out:
	if (err) {
		mem_deref(dc);
	}
	else {
		*laddr = dc->laddr;
		*dcp = dc;
	}

	return err;
}


/** Ask other servers from now on; what is kept stays until its TTL */
int dnscache_servers(struct dnscache *dc, const struct sa *srvv,
		     uint32_t srvc)
{
	if (!dc || !srvv || !srvc)
		return EINVAL;

	return dnsc_srv_set(dc->up, srvv, srvc);
}
