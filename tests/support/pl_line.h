/* A whole lab line for the station's integration tests: a test PKI (`provline pki init`),
 * the real provline-keymaker, software eUICCs (`provline-keymaker mint-euicc`) behind
 * provline-vdevice processes (pty serial or CoAP), and one provline-station with its
 * configuration, each a child process with its log in the line's directory. Never linked
 * into a product. */
#ifndef PL_LINE_H
#define PL_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fixture_testutil.h"

#define PL_LINE_DEV_MAX 16u
#define PL_LINE_ARGS_MAX 16u

struct pl_line_dev {
    bool coap;
    char euicc[512];            /* state file */
    char link[512];             /* pty symlink (serial) */
    uint16_t port;              /* CoAP UDP port (fixed after the first start) */
    char log[512];
    const char *args[PL_LINE_ARGS_MAX]; /* extra vdevice arguments (borrowed strings) */
    size_t n_args;
    struct pl_ft_proc proc;
    bool running;
    uint8_t eid[16];
};

struct pl_line {
    char dir[256];
    char bin[512];
    char pki[600];              /* DIR/pki/p256 */
    /* Key Maker */
    char km_db[600], km_log[600], km_key[600], km_pub[600], allow[600];
    char km_endpoint[128];      /* resolved at the first start, reused by restarts */
    const char *km_args[PL_LINE_ARGS_MAX];
    size_t n_km_args;
    pid_t km_pid;
    /* station */
    char st_dir[400];           /* journal, audit, packages: everything the station stores */
    char conf[600], journal[600], audit[600], pkgs[600], st_log[600], st_key[600], st_pub[600];
    char eim_id[64];
    pid_t st_pid;
    /* devices */
    size_t n_dev;
    struct pl_line_dev dev[PL_LINE_DEV_MAX];
};

/* Temp directory, PKI, CurveZMQ keys of the Key Maker and the station, allow-list.
 * 0 on success; on failure a message on stderr. */
int pl_line_init(struct pl_line *l);
/* Stops every process (SIGKILL) and removes the directory. */
void pl_line_free(struct pl_line *l);

/* Starts `provline-keymaker serve` (profiles: tests/data/ts48) and waits for it to listen. */
int pl_line_km_start(struct pl_line *l);
/* Sends sig and waits for the exit; returns the waitpid status (or -1). */
int pl_line_km_stop(struct pl_line *l, int sig);

/* Mints a software eUICC with n_otks OTKs and registers a device (not started). */
int pl_line_add_device(struct pl_line *l, bool coap, unsigned n_otks);
/* Starts (or restarts) device i and waits for its READY line. */
int pl_line_dev_start(struct pl_line *l, size_t i);
int pl_line_dev_stop(struct pl_line *l, size_t i, int sig);

/* Writes the station configuration: every device a fixture (d0, d1, ...), fast test timers,
 * then the text of `extra` appended verbatim (may be NULL). */
int pl_line_write_conf(struct pl_line *l, const char *extra);
/* Starts provline-station --config CONF [--once]; stderr appends to the station log. */
int pl_line_station_start(struct pl_line *l, bool once);
/* Waits at most ms for the station to exit; 0 with *status, -1 on timeout. */
int pl_line_station_wait(struct pl_line *l, int ms, int *status);
int pl_line_station_stop(struct pl_line *l, int sig);

/* Runs a command line with the line's binaries; output in out. Returns the exit status. */
int pl_line_run(const struct pl_line *l, const char *cmd, char *out, size_t cap);
/* Counts the lines of file path containing needle. */
int pl_line_count(const char *path, const char *needle);
/* Milliseconds of the monotonic clock. */
uint64_t pl_line_now_ms(void);
void pl_line_sleep_ms(unsigned ms);

#endif
