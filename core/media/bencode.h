/**
 * @file bencode.h  Bencode to and from libre's odict
 */

enum {
	BENCODE_MAX_DEPTH = 32,        /* nested lists and dictionaries */
	BENCODE_MAX_ITEMS = 10000,     /* values in one document */
	BENCODE_MAX_SIZE  = 1 << 20,   /* bytes of one document */
};

int bencode_decode_odict(struct odict **odp, uint32_t hash_size,
			 const char *buf, size_t len, unsigned maxdepth);
int bencode_encode_odict(struct re_printf *pf, const struct odict *od);
int bencode_encode_entries(struct re_printf *pf, const struct odict *od);
int bencode_encode_str(struct re_printf *pf, const char *str);
