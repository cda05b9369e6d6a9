/**
 * @file dialog_fixture.h  Dialogs the dialog tests share: typical, full
 */

#define FIXTURE_DID_HEX "fedcba9876543210"
#define FIXTURE_DID 0xfedcba9876543210ULL   /* above int63 */

extern const char fixture_sdp_a[];
extern const char fixture_sdp_b[];

void fixture_set(char **dst, const char *s);
void fixture_set_route(struct dialog *dlg, enum dialog_leg_id leg,
		       const char *route);
void fixture_set_id(struct dialog *dlg, enum dialog_id id, const char *s);
struct dialog *fixture_typical_dialog(uint64_t id);
struct dialog *fixture_full_dialog(void);
char *fixture_encode(const struct dialog *dlg);
int  fixture_decode(struct dialog **dlgp, const char *json);
