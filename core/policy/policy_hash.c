/**
 * @file policy_hash.c  Which policy runs: the SHA-256 of its file, and its metrics
 *
 * Nodes compare their policies by the SHA-256 of the file each loaded, in
 * hex, the same string `sha256sum` prints, so an operator can tell which
 * version of a deployed file a node runs. OpenSSL's libcrypto computes it
 * (libre only offers SHA-1 and HMACs). The file is read again after a
 * load succeeded rather than hashed as Lua reads it, to keep the loader
 * untouched; a file replaced within that instant is hashed as the new
 * one, and the next reload (the watch sees the replacement) puts it
 * right.
 *
 * The metrics are an info-style gauge, rehome_policy_info{path, hash} 1,
 * and rehome_policy_loaded_timestamp_seconds: a PromQL
 * `count(count by (hash) (rehome_policy_info)) > 1` finds drift.
 */
#include <errno.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <re.h>
#include "metrics.h"
#include "policy.h"
#include "policy_int.h"

enum { READ_SZ = 8192 };


static int digest_file(uint8_t *md, unsigned *mdlen, FILE *f)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t buf[READ_SZ];
	size_t n;
	int err = 0;

	if (!ctx)
		return ENOMEM;

	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		err = EPROTO;
		goto out;
	}

	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (!EVP_DigestUpdate(ctx, buf, n)) {
			err = EPROTO;
			goto out;
		}
	}

	if (ferror(f))
		err = EIO;
	else if (!EVP_DigestFinal_ex(ctx, md, mdlen))
		err = EPROTO;

 out:
	EVP_MD_CTX_free(ctx);
	return err;
}


/**
 * The SHA-256 of the file at `path` in lower-case hex
 *
 * @param hex  At least POLICY_HASH_SZ bytes
 */
int policy_hash_file(char *hex, size_t sz, const char *path)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	FILE *f;
	int err;

	if (!hex || sz < POLICY_HASH_SZ || !path)
		return EINVAL;

	f = fopen(path, "rb");
	if (!f)
		return errno;

	err = digest_file(md, &mdlen, f);
	fclose(f);
	if (err)
		return err;

	return re_snprintf(hex, sz, "%w", md, (size_t)mdlen) ==
		POLICY_HASH_SZ - 1 ? 0 : EINVAL;
}


/** metrics_collector_h: the running policy, nothing without one */
int policy_hash_metrics(struct re_printf *pf, void *arg)
{
	const char *path = policy_path();
	const char *lv[] = {"path", path, "hash", policy_hash(), NULL};
	int err;
	(void)arg;

	if (!policy_loaded_at())
		return 0;

	err  = metrics_family_print(pf, "rehome_policy_info", "gauge",
				    "1 for the policy this node runs, by its "
				    "file and the file's SHA-256");
	err |= re_hprintf(pf, "rehome_policy_info%H 1\n",
			  metrics_labels_print, lv);
	err |= metrics_family_print(pf,
				    "rehome_policy_loaded_timestamp_seconds",
				    "gauge", "When the running policy was "
				    "loaded, Unix time");
	err |= re_hprintf(pf, "rehome_policy_loaded_timestamp_seconds %llu\n",
			  (unsigned long long)(policy_loaded_at() / 1000));

	return err;
}
