/* Reference Key Maker (SM-DPf): private state shared by sim/src/keymaker_*.c.
 * Never included from outside sim/src/. GSMA SGP.41 v1.0 SM-DPf; reference/IFPP.md §6.1,
 * §6.3; docs/station-keymaker-protocol.md. */
#ifndef PROVLINE_SIM_KEYMAKER_INTERNAL_H
#define PROVLINE_SIM_KEYMAKER_INTERNAL_H

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"
#include "provline/sim/keymaker.h"
#include "provline/sim/pki.h"

#include "provline/proto/km_msg.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zmq.h>

#if defined(__GNUC__) || defined(__clang__)
#define PL_KM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_KM_PRINTF(a, b)
#endif

#define PL_KM_HOST_ID         "PROVLINE-SMDPF" /* ISCR hostId (1..16 B) */
#define PL_KM_OUTSTANDING_MAX 32u              /* HelloAck.outstanding */

struct pl_km {
    char *db_path;
    char *keymaker_id;
    char *batch_id;
    char *spn;
    uint32_t lease_seconds;
    uint32_t package_seconds;
    bool rsk;
    struct pl_rng rng;
    time_t (*clock)(void *user);
    void *clock_user;
    void (*log)(void *user, enum pl_km_log_level level, const char *line);
    void *log_user;

    sqlite3 *db;
    struct pl_pki *pki;
    const struct pl_cert *ci;  /* borrowed from pki */
    const struct pl_cert *dpf; /* CERT.DPpb: binding, envelope and token signer */
    const struct pl_eckey *dpf_key;
    enum pl_curve curve;

    struct pl_km_counters counters; /* metrics (keymaker_metrics.c) */
};

time_t pl_km_now(const struct pl_km *km);
/* The raw 32-byte CurveZMQ public key of a station identity (its Z85 text, as ZAP reported
 * it). PL_ERR_INVAL if station is not a Z85 key. */
PL_MUST_CHECK int pl_km_station_key(const char *station, uint8_t key[32]);
void pl_km_logf(const struct pl_km *km, enum pl_km_log_level level, const char *fmt, ...)
    PL_KM_PRINTF(3, 4);
/* Lowercase hex of n bytes into out (cap >= 2n+1), truncated safely; returns out. */
const char *pl_km_hex(const uint8_t *p, size_t n, char *out, size_t cap);

/* ---- counters (keymaker_metrics.c) ---- */

/* Counts one request answered with rep (body tag of the request, 0 when it did not decode):
 * the message type and every error code the reply carries. */
void pl_km_count_reply(struct pl_km *km, unsigned request, const provline_keymaker_Msg *rep);

/* ---- the metrics endpoint (keymaker_metrics.c): a tiny HTTP/1.0 responder polled by the
 * serve loop's zmq_poll. ---- */

#define PL_KM_HTTP_CLIENTS 8u
#define PL_KM_HTTP_ITEMS   (1u + PL_KM_HTTP_CLIENTS) /* poll items it may need */

struct pl_km_http;
/* Parses "127.x.y.z:PORT" (numeric IPv4 loopback, PORT 0..65535). PL_ERR_CONFIG. */
PL_MUST_CHECK int pl_km_metrics_addr(const char *text, uint32_t *ip, uint16_t *port);
/* Binds and listens (non-blocking) on the address. PL_ERR_CONFIG, PL_ERR_IO. Returns owned
 * *out; *bound gets the port bound. */
PL_MUST_CHECK int pl_km_http_open(struct pl_km *km, const char *addr, struct pl_km_http **out,
                                  uint16_t *bound);
void pl_km_http_close(struct pl_km_http *h); /* accepts NULL */
/* Fills up to cap zmq poll items (fd items: the listener, each client); returns how many. */
size_t pl_km_http_items(const struct pl_km_http *h, zmq_pollitem_t *items, size_t cap);
/* Serves what the poll reported (items as filled, with revents) and drops clients past
 * their deadline. Never blocks. */
void pl_km_http_handle(struct pl_km_http *h, const zmq_pollitem_t *items, size_t n);
/* Milliseconds until the earliest client deadline, -1 when none. */
int pl_km_http_timeout_ms(const struct pl_km_http *h);

/* ---- SQLite helpers (keymaker_db.c). Parameter formats, one char per parameter:
 * 'b' blob (const void *, size_t), 'i' integer (int64_t), 't' text (const char *),
 * 'n' NULL (no argument). ---- */
PL_MUST_CHECK int pl_km_db_prepare(struct pl_km *km, sqlite3_stmt **st, const char *sql,
                                   const char *fmt, ...);
/* Runs a statement that returns no row. PL_ERR_EXISTS on a constraint violation,
 * PL_ERR_DB otherwise; *changes (may be NULL) = rows changed. */
PL_MUST_CHECK int pl_km_db_exec(struct pl_km *km, int *changes, const char *sql, const char *fmt,
                                ...);
/* Prepares and runs a query to its first row: PL_OK with *st on the row (read it, then
 * sqlite3_finalize(*st)), PL_ERR_NOT_FOUND (no row) or PL_ERR_DB; *st must be finalised in
 * every case (it may be NULL). */
PL_MUST_CHECK int pl_km_db_row(struct pl_km *km, sqlite3_stmt **st, const char *sql,
                               const char *fmt, ...);
/* Runs a query expecting at most one row with one integer column: PL_OK and *v, or
 * PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_km_db_int(struct pl_km *km, int64_t *v, const char *sql, const char *fmt, ...);
PL_MUST_CHECK int pl_km_db_begin(struct pl_km *km);
PL_MUST_CHECK int pl_km_db_commit(struct pl_km *km);
void pl_km_db_rollback(struct pl_km *km);
/* Copies column col of the current row (a blob) into out (exactly n bytes, else
 * PL_ERR_DB) or appends it to a writer. */
PL_MUST_CHECK int pl_km_db_col_fixed(sqlite3_stmt *st, int col, void *out, size_t n);
PL_MUST_CHECK int pl_km_db_col_wr(sqlite3_stmt *st, int col, struct pl_wr *w);

/* State names as stored. */
const char *pl_km_pkg_state_db(int state); /* "issued", ... */
int pl_km_pkg_state_from_db(const unsigned char *s);
const char *pl_km_otk_state_db(int state); /* "FREE", ... */
int pl_km_otk_state_from_db(const unsigned char *s);

/* Creates the schema (idempotent). */
PL_MUST_CHECK int pl_km_db_schema(struct pl_km *km);

#endif
