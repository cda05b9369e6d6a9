/**
 * @file randbuf.c  libre's random numbers, served from a buffer of OpenSSL's
 *
 * libre's rand_u32() asks OpenSSL's RAND_bytes() for 4 bytes at a time,
 * and sip_msg_decode() draws a rand_u64() (two of them) for every message
 * it reads, for a To tag it may need. OpenSSL 3 takes locks and checks the
 * PID (a getpid() syscall) on every call: 14 % of rehomed's CPU when it
 * relays calls (bench/RESULTS.md, issue 15).
 *
 * So the engine interposes on libre's rand_u32() and rand_u64(), as
 * sipmend.c does on its parser (the dynamic linker prefers these to
 * libre.so's, also for libre's own calls, which go through its PLT), and
 * serves them from a buffer of RAND_bytes() output refilled 512 bytes at a
 * time: the same generator, one call per 64 numbers instead of one or two
 * per number. The buffer is per thread; a child of fork() starts with an
 * empty one (pthread_atfork), so no two processes hand out the same bytes.
 * rand_bytes() and rand_str() still draw from OpenSSL directly: they ask
 * for many bytes at once, and seldom.
 */
#include <string.h>
#include <pthread.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <re.h>
#include "log.h"
#include "randbuf.h"

enum { RANDBUF_SZ = 512 };

static __thread struct {
	uint8_t buf[RANDBUF_SZ];
	size_t left;              /* unused bytes, at the buffer's end */
} rb;


static void forget(void)
{
	memset(&rb, 0, sizeof(rb));
}


/** Drain n bytes (n divides RANDBUF_SZ) into p, refilling when empty */
static void take(void *p, size_t n)
{
	if (rb.left < n) {
		if (RAND_bytes(rb.buf, sizeof(rb.buf)) <= 0) {
			log_warn("rand", "RAND_bytes() error: %lu",
				 ERR_get_error());
			ERR_clear_error();
		}
		rb.left = sizeof(rb.buf);
	}

	memcpy(p, rb.buf + sizeof(rb.buf) - rb.left, n);
	rb.left -= n;
}


/** A child of fork() must not serve the bytes its parent will serve */
void randbuf_init(void)
{
	static bool registered;

	if (!registered)
		registered = 0 == pthread_atfork(NULL, NULL, forget);
}


uint32_t rand_u32(void)
{
	uint32_t v;

	take(&v, sizeof(v));

	return v;
}


uint64_t rand_u64(void)
{
	uint64_t v;

	take(&v, sizeof(v));

	return v;
}
