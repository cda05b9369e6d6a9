/**
 * @file job.h  rehomectl: following a long operation to its end
 */

#ifndef REHOMECTL_JOB_H
#define REHOMECTL_JOB_H

struct client;

int job_follow(struct client *cl, struct odict *job, const char *what);

#endif
