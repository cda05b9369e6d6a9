/**
 * @file sdpver.h  The o= version of the SDP sent to one leg (RFC 3264 8)
 */

#ifndef REHOME_SDPVER_H
#define REHOME_SDPVER_H

int  sdpver_decode(uint64_t *verp, const char *sdp);
int  sdpver_rewrite(char **outp, const char *sdp, uint64_t ver);
bool sdpver_same(const char *a, const char *b);
int  sdpver_out(char **outp, uint64_t *off, const char *last, char *sdp,
		bool own);

#endif
