/**
 * @file output.h  rehomectl: replies printed as JSON or for people
 */

#ifndef REHOMECTL_OUTPUT_H
#define REHOMECTL_OUTPUT_H

void output_json(const struct mbuf *mb);
void output_object(const struct odict *od);
void output_dialogs(const struct odict *od);
void output_jobs(const struct odict *od);
void output_relays(const struct odict *od);
int  output_scalar(struct re_printf *pf, void *arg);

#endif
