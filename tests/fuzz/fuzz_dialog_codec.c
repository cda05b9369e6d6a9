/**
 * @file fuzz_dialog_codec.c  libFuzzer target: the dialog codec
 *
 * A replicated dialog comes from another node or from Redis, so its JSON
 * is untrusted input. Whatever the input, decoding must neither crash nor
 * leak, and a dialog it accepts must survive a round trip: encoded and
 * decoded again it is equal (dialog_equal) and encodes to the very same
 * text, so that what one node writes every other reads back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <re.h>
#define DEBUG_MODULE "fuzz"
#define DEBUG_LEVEL 0
#include <re_dbg.h>
#include "dialog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


/* libre's JSON parser warns on malformed input: too slow to print */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;

	dbg_init(DBG_ERR, 0);
	return 0;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dialog *a = NULL, *b = NULL;
	struct mbuf *ma = NULL, *mb = NULL;

	if (dialog_decode(&a, (const char *)data, size))
		return 0;

	if (dialog_encode_mb(&ma, a) ||
	    dialog_decode(&b, (const char *)ma->buf, ma->end) ||
	    !dialog_equal(a, b) ||
	    dialog_encode_mb(&mb, b) ||
	    ma->end != mb->end || memcmp(ma->buf, mb->buf, ma->end))
		abort();

	mem_deref(mb);
	mem_deref(ma);
	mem_deref(b);
	mem_deref(a);

	return 0;
}
