/**
 * @file metrics_process.c  The standard process_* metrics, read from /proc/self
 *
 * The names and meanings are those of Prometheus' own client libraries
 * (process_cpu_seconds_total, process_resident_memory_bytes, ...), so
 * dashboards made for any exporter work. Everything is read at each
 * scrape from procfs (stat, fd/, limits through getrlimit, the boot
 * time from /proc/stat): a few small reads, nothing kept in between. A
 * file that cannot be read leaves its families out rather than fail the
 * whole exposition (e.g. without procfs in a sandbox).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/resource.h>
#include <re.h>
#include "metrics.h"

enum {
	STAT_SIZE = 1024,
};

/** What /proc/self/stat and /proc/stat tell */
struct pstat {
	unsigned long long utime, stime;   /* clock ticks */
	unsigned long long start;          /* ticks after boot */
	unsigned long long vsize;          /* bytes */
	long long rss;                     /* pages */
	unsigned long long btime;          /* boot, unix seconds */
};


static int file_read(char *buf, size_t sz, const char *path)
{
	FILE *f;
	size_t n;

	f = fopen(path, "r");
	if (!f)
		return errno;

	n = fread(buf, 1, sz - 1, f);
	buf[n] = '\0';
	fclose(f);

	return n ? 0 : EIO;
}


/**
 * /proc/self/stat: the command name (field 2) may hold spaces and
 * parentheses, so the fields are counted from its last ')' (field 3 on).
 */
static int self_stat_read(struct pstat *ps)
{
	char buf[STAT_SIZE];
	const char *p;
	int err;

	err = file_read(buf, sizeof(buf), "/proc/self/stat");
	if (err)
		return err;

	p = strrchr(buf, ')');
	if (!p)
		return EPROTO;

	/* fields 3..24: state ... utime(14) stime(15) ... starttime(22)
	 * vsize(23) rss(24) */
	if (5 != sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u"
			" %llu %llu %*d %*d %*d %*d %*d %*d %llu %llu %lld",
			&ps->utime, &ps->stime, &ps->start, &ps->vsize,
			&ps->rss))
		return EPROTO;

	return 0;
}


/**
 * The boot time, from /proc/stat's btime line. Read line by line: the
 * intr line before it can be many kilobytes long, so a line is looked at
 * only from its start.
 */
static int btime_read(unsigned long long *btime)
{
	char line[256];
	bool bol = true;
	int err = ENOENT;
	FILE *f;

	f = fopen("/proc/stat", "r");
	if (!f)
		return errno;

	while (err && fgets(line, sizeof(line), f)) {
		if (bol && 1 == sscanf(line, "btime %llu", btime))
			err = 0;
		bol = line[strlen(line) - 1] == '\n';
	}

	fclose(f);
	return err;
}


static int fds_count(unsigned *np)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return errno;

	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			++n;
	}

	closedir(d);
	*np = n ? n - 1 : 0;   /* the directory's own fd */
	return 0;
}


/** A family of one sample without labels, its value printed by fmt */
static int single_print(struct re_printf *pf, const char *name,
		       const char *type, const char *help, const char *fmt,
		       ...)
{
	va_list ap;
	int err;

	err  = metrics_family_print(pf, name, type, help);
	err |= re_hprintf(pf, "%s ", name);

	va_start(ap, fmt);
	err |= re_vhprintf(fmt, ap, pf->vph, pf->arg);
	va_end(ap);

	return err | re_hprintf(pf, "\n");
}


static int stat_print(struct re_printf *pf, const struct pstat *ps)
{
	const long tck = sysconf(_SC_CLK_TCK);
	const long page = sysconf(_SC_PAGESIZE);
	int err;

	if (tck <= 0 || page <= 0)
		return 0;

	err  = single_print(pf, "process_cpu_seconds_total", "counter",
			    "Total user and system CPU time spent in seconds",
			    "%.2f", (double)(ps->utime + ps->stime) / tck);
	err |= single_print(pf, "process_resident_memory_bytes", "gauge",
			    "Resident memory size in bytes", "%lld",
			    ps->rss * page);
	err |= single_print(pf, "process_virtual_memory_bytes", "gauge",
			    "Virtual memory size in bytes", "%llu", ps->vsize);
	if (ps->btime)
		err |= single_print(pf, "process_start_time_seconds", "gauge",
				    "Start time of the process since unix "
				    "epoch in seconds", "%.2f",
				    (double)ps->btime + (double)ps->start / tck);

	return err;
}


/** process_*: CPU, memory, file descriptors, start time */
int metrics_process_print(struct re_printf *pf)
{
	struct pstat ps = {0};
	struct rlimit rl;
	unsigned fds = 0;
	int err = 0;

	if (!self_stat_read(&ps)) {
		(void)btime_read(&ps.btime);
		err |= stat_print(pf, &ps);
	}

	if (!fds_count(&fds))
		err |= single_print(pf, "process_open_fds", "gauge",
				    "Number of open file descriptors", "%u",
				    fds);

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
		err |= single_print(pf, "process_max_fds", "gauge",
				    "Maximum number of open file descriptors",
				    "%llu", (unsigned long long)rl.rlim_cur);

	return err;
}
