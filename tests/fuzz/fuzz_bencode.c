/**
 * @file fuzz_bencode.c  libFuzzer target: the bencode decoder
 *
 * Whatever the input, decoding must neither crash nor leak (ASan and
 * UBSan watch), and what it accepts must encode back to the very same
 * bytes: the decoder takes only the canonical form (no leading zeros, no
 * "-0", nothing after the end) and the encoder keeps key order, so any
 * difference is a bug in one of the two (tests/fuzz/README.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#include "bencode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct odict *od = NULL;
	struct mbuf *mb;

	if (bencode_decode_odict(&od, 4, (const char *)data, size,
				 BENCODE_MAX_DEPTH))
		return 0;

	mb = mbuf_alloc(size + 1);
	if (!mb || mbuf_printf(mb, "%H", bencode_encode_odict, od))
		abort();

	if (mb->end != size || memcmp(mb->buf, data, size))
		abort();

	mem_deref(mb);
	mem_deref(od);

	return 0;
}
