/* The station's metrics endpoint: Prometheus text exposition format (version 0.0.4) served
 * by a tiny HTTP/1.0 responder on a loopback TCP port or on a unix stream socket, driven by
 * the station's one event loop (non-blocking, no thread).
 *
 * Sources: ARCHITECTURE.md §7 (each daemon has a metrics endpoint); Prometheus "Exposition
 * formats" (text format 0.0.4: `# HELP`, `# TYPE`, `name{label="v"} value` lines,
 * Content-Type text/plain; version=0.0.4); RFC 1945 (HTTP/1.0: one request per connection,
 * the server closes after the response). Documented in docs/station.8.md.
 *
 * Only `GET /metrics` is answered (200); any other path gets 404, any other method 405, a
 * request that is malformed or larger than PL_METRICS_REQ_MAX bytes 400, and a client that
 * has not sent its whole request within the I/O timeout is dropped. The TCP listener binds
 * only loopback addresses (the configuration refuses others). */
#ifndef PROVLINE_STATION_METRICS_H
#define PROVLINE_STATION_METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_METRICS_REQ_MAX 4096u
#define PL_METRICS_CLIENTS_MAX 8u
#define PL_METRICS_BODY_MAX (256u * 1024u)
/* Poll entries pl_metrics_pollfds may fill: the listener and each client. */
#define PL_METRICS_POLLFDS (1u + PL_METRICS_CLIENTS_MAX)

struct pl_metrics_config {
    const char *host;      /* TCP: numeric IPv4 loopback address, e.g. "127.0.0.1" */
    uint16_t port;         /* TCP: 0 = any free port (see pl_metrics_port) */
    const char *unix_path; /* set instead of host for a unix socket (a stale socket file at
                            * the path is replaced; the socket is made mode 0600) */
    uint32_t io_timeout_ms;
    /* Appends the exposition text (borrows out). Called once per GET /metrics. */
    int (*render)(void *user, struct pl_wr *out);
    void *user;
};

struct pl_metrics;

/* Binds and listens (non-blocking). PL_ERR_IO (bind/listen failed: in use, no permission),
 * PL_ERR_INVAL. Returns owned *out. */
PL_MUST_CHECK int pl_metrics_new(const struct pl_metrics_config *cfg, struct pl_metrics **out);
/* Closes every socket (and removes the unix socket file). Accepts NULL. */
void pl_metrics_free(struct pl_metrics *m);
/* The bound TCP port (0 for a unix socket). */
uint16_t pl_metrics_port(const struct pl_metrics *m);

/* Fills up to cap poll entries (listener + clients, each with the events it needs) and
 * returns how many. */
size_t pl_metrics_pollfds(const struct pl_metrics *m, struct pollfd *fds, size_t cap);
/* Serves what the poll reported (fds as filled by pl_metrics_pollfds, with revents) and
 * drops clients past their deadline. Never blocks. */
void pl_metrics_handle(struct pl_metrics *m, const struct pollfd *fds, size_t n, uint64_t now_ms);
/* Earliest client deadline (UINT64_MAX when none). */
uint64_t pl_metrics_deadline(const struct pl_metrics *m);

/* Appends one "# HELP"/"# TYPE" header pair. */
void pl_metrics_header(struct pl_wr *out, const char *name, const char *type, const char *help);
/* Appends `name{labels} value` (labels may be NULL or "", e.g. `state="LOAD"`). */
void pl_metrics_value(struct pl_wr *out, const char *name, const char *labels, uint64_t value);

#endif
