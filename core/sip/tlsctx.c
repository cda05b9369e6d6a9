/**
 * @file tlsctx.c  The node's TLS context: certificate, CA, peer verification
 *
 * One libre TLS context serves every `tls` listener, and, since libre
 * 1.1.0 opens outgoing TLS connections with the context of a TLS
 * transport, every connection the node opens too. libre hands the
 * context to its transports once, so a reload cannot swap it: the new
 * certificate and CA are loaded into the same OpenSSL context instead,
 * and connections opened from then on use them (those open keep the
 * session they negotiated). The files are read first into a scratch
 * context, so a file that does not load leaves the running one as it was.
 * They are read again at every reload even when their paths did not
 * change: renewing a certificate in place is the usual way.
 *
 * With `tls_ca` the node verifies its peers' certificate chains: servers
 * it connects to must present one, clients are asked for one and checked
 * if they send it (phones seldom have one). libre 1.1.0 gives no access to
 * a SIP connection's TLS session, so the host name in a server's
 * certificate is not checked against the URI it was reached by.
 */
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/err.h>
#include <re.h>
#include "log.h"
#include "conf.h"
#include "tlsctx.h"

static struct {
	struct tls *tls;
	bool warned;       /* "peers are not verified" said once */
} tc;


static bool uses_tls(const struct rh_conf *cfg)
{
	for (size_t i = 0; i < cfg->listenc; i++) {
		if (cfg->listen[i].tp == SIP_TRANSP_TLS)
			return true;
	}

	return false;
}


/* A CA store from the file, or NULL for none */
static int ca_store(X509_STORE **storep, const char *cafile)
{
	X509_STORE *store;

	*storep = NULL;
	if (!str_isset(cafile))
		return 0;

	store = X509_STORE_new();
	if (!store)
		return ENOMEM;

	if (!X509_STORE_load_file(store, cafile)) {
		ERR_clear_error();
		X509_STORE_free(store);
		return EINVAL;
	}

	*storep = store;
	return 0;
}


/*
 * Read both files: the CA bundle into a new store, the certificate and
 * its key into a scratch context (which checks that they match).
 */
static int read_files(X509_STORE **storep, const struct rh_conf *cfg,
		      char *errbuf, size_t errsz)
{
	struct tls *scratch = NULL;
	int err;

	err = ca_store(storep, cfg->tls_ca);
	if (err) {
		(void)re_snprintf(errbuf, errsz, "tls_ca: %s: not a PEM CA "
				  "bundle", cfg->tls_ca);
		return err;
	}

	err = tls_alloc(&scratch, TLS_METHOD_SSLV23, cfg->tls_cert, NULL);
	mem_deref(scratch);
	if (err) {
		(void)re_snprintf(errbuf, errsz, "tls_cert: %s: no matching "
				  "PEM certificate and private key",
				  cfg->tls_cert);
		X509_STORE_free(*storep);
		*storep = NULL;
	}

	return err;
}


/** rehomed -t: the certificate and CA files load */
int tlsctx_check(const struct rh_conf *cfg, char *errbuf, size_t errsz)
{
	X509_STORE *store = NULL;
	int err;

	if (!str_isset(cfg->tls_cert))
		return 0;

	err = read_files(&store, cfg, errbuf, errsz);
	X509_STORE_free(store);

	return err;
}


/**
 * Load cfg's tls_cert and tls_ca into the context: at start, and again at
 * every reload. Files that do not load change nothing.
 *
 * @param errbuf Out: which file did not load
 */
int tlsctx_apply(const struct rh_conf *cfg, char *errbuf, size_t errsz)
{
	X509_STORE *store = NULL;
	SSL_CTX *ctx;
	int err;

	if (!tc.tls)
		return 0;

	err = read_files(&store, cfg, errbuf, errsz);
	if (err)
		return err;

	ctx = tls_openssl_context(tc.tls);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) <= 0 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_cert,
					SSL_FILETYPE_PEM) <= 0) {
		/* read a moment ago: the file changed under us */
		ERR_clear_error();
		X509_STORE_free(store);
		(void)re_snprintf(errbuf, errsz, "tls_cert: %s: changed "
				  "while being read", cfg->tls_cert);
		return EAGAIN;
	}

	if (store) {
		SSL_CTX_set_cert_store(ctx, store);  /* frees the old one */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		tc.warned = false;
	}
	else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		if (!tc.warned)
			log_warn("tls", "no tls_ca: TLS peers are not "
				 "verified");
		tc.warned = true;
	}

	log_info("tls", "certificate %s%s%s", cfg->tls_cert,
		 store ? ", peers verified against " : "",
		 store ? cfg->tls_ca : "");
	return 0;
}


/** The context, made when a tls listener needs one; NULL otherwise */
int tlsctx_init(const struct rh_conf *cfg)
{
	char errbuf[CONF_PATH_SZ + 64];
	int err;

	if (!uses_tls(cfg))
		return 0;

	err = tls_alloc(&tc.tls, TLS_METHOD_SSLV23, NULL, NULL);
	if (err)
		return err;

	err = tlsctx_apply(cfg, errbuf, sizeof(errbuf));
	if (err) {
		log_error("tls", "%s", errbuf);
		tlsctx_close();
	}

	return err;
}


void tlsctx_close(void)
{
	tc.tls = mem_deref(tc.tls);
	tc.warned = false;
}


struct tls *tlsctx_get(void)
{
	return tc.tls;
}
