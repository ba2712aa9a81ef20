/* A real `provline-keymaker serve` process for integration tests: a test PKI, CurveZMQ keys
 * (server keys through `keygen`, a station key pair written as Z85 files the way a station
 * keeps them), an allow-list, start on a kernel-chosen port, SIGKILL/SIGTERM, restart on the
 * same endpoint and database. Never linked into a product. */
#ifndef PL_KMPROC_H
#define PL_KMPROC_H

#include "pl_euicc_test.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pl_kmproc {
    struct pl_et t; /* temp dir + PKI (t.dir/pki) */
    char bin[512];  /* provline-keymaker */
    char db[512];
    char log[512];
    char endpoint[128];  /* resolved "tcp://127.0.0.1:PORT" after the first start */
    char server_pub[41]; /* Z85 */
    char server_pub_file[512];
    char station_pub[41];
    char station_key_file[512]; /* station secret key, Z85, mode 0600 */
    char station_pub_file[512];
    pid_t pid; /* 0 when not running */
};

/* Creates the PKI, keys and allow-list (PL_BIN_DIR must name the build's bin directory).
 * 0 or -1. */
int pl_kmproc_init(struct pl_kmproc *k, enum pl_curve curve);
/* Starts serve: on "tcp://127.0.0.1:*" the first time, then on the same endpoint; waits
 * (up to 20 s) for its "listening" event. 0 or -1. */
int pl_kmproc_start(struct pl_kmproc *k);
/* Starts `serve --config config` (the file names the endpoint) and waits as
 * pl_kmproc_start does. 0 or -1. */
int pl_kmproc_start_config(struct pl_kmproc *k, const char *config);
/* The files pl_kmproc_init made, for a configuration file. */
struct pl_kmproc_paths {
    char pki[300], secret[300], allow[300], profiles[512];
};
void pl_kmproc_paths(const struct pl_kmproc *k, struct pl_kmproc_paths *p);
/* Sends sig and reaps the process. Returns its wait status, or -1. */
int pl_kmproc_stop(struct pl_kmproc *k, int sig);
/* Stops a running process (SIGKILL) and removes the temp dir. */
void pl_kmproc_free(struct pl_kmproc *k);
/* Counts in the log of "needle". */
int pl_kmproc_log_count(const struct pl_kmproc *k, const char *needle);

#endif
