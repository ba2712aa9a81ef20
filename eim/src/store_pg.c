/* The eIM store on PostgreSQL (libpq 15): several provline-eim processes on one database
 * (ARCHITECTURE.md §3, §7). A driver for the SQL core (store_sql.c). Concurrency comes from
 * the database: READ COMMITTED transactions, row locks taken by UPDATE ... RETURNING
 * (counters, bucket sequences) and SELECT ... FOR UPDATE (the device row serialises the
 * claims of one EID), and LOCK TABLE for a counter recovery. Parameters and results travel
 * in binary format with explicit types (int8, text, bytea), so no value is ever spliced
 * into SQL text. libpq's notice printer is silenced: a library never prints.
 * PostgreSQL 15 manual: §13.3 (explicit locking), §43 libpq PQexecParams, §9.27.10
 * advisory locks. reference/DEPENDENCIES.md §9. */
#define _POSIX_C_SOURCE 200809L
#include "store_sql.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs (PostgreSQL catalog pg_type, stable since 7.x). */
#define OID_BOOL    16u
#define OID_BYTEA   17u
#define OID_NAME    19u
#define OID_INT8    20u
#define OID_INT2    21u
#define OID_INT4    23u
#define OID_TEXT    25u
#define OID_VARCHAR 1043u

#define PG_MAX_PARAMS 24u

struct pg_conn {
    PGconn *pg;
    char err[256];
};

static const char *const pg_schema[] = {
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "INSERT INTO meta (k, v) VALUES ('schema', '1') ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS counter_buckets (bucket BIGINT PRIMARY KEY,"
    " seq BIGINT NOT NULL CHECK (seq >= 0))",
    "CREATE TABLE IF NOT EXISTS devices (eid BYTEA PRIMARY KEY CHECK (length(eid) = 16),"
    " bucket BIGINT NOT NULL, euicc_cert BYTEA, eum_cert BYTEA, eim_id TEXT, assoc_token BIGINT,"
    " counter BIGINT NOT NULL CHECK (counter >= 0), psk_identity TEXT UNIQUE, psk_key BYTEA,"
    " cert_fpr BYTEA, profiles TEXT, eims TEXT, created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL, last_seen_ms BIGINT)",
    "CREATE INDEX IF NOT EXISTS devices_bucket ON devices (bucket)",
    "CREATE TABLE IF NOT EXISTS ops (id BIGSERIAL PRIMARY KEY,"
    " eid BYTEA NOT NULL REFERENCES devices (eid) ON DELETE CASCADE, kind TEXT NOT NULL,"
    " params BYTEA, state TEXT NOT NULL, created_by TEXT, created_ms BIGINT NOT NULL,"
    " claimed_by TEXT, claimed_ms BIGINT, counter BIGINT, txid BYTEA, package BYTEA,"
    " sent_ms BIGINT, result BYTEA, outcome TEXT, done_ms BIGINT, UNIQUE (eid, counter))",
    "CREATE INDEX IF NOT EXISTS ops_eid_state ON ops (eid, state, id)",
    "CREATE TABLE IF NOT EXISTS notifications (eid BYTEA NOT NULL, seq BIGINT NOT NULL,"
    " data BYTEA NOT NULL, received_ms BIGINT NOT NULL, acked BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (eid, seq))",
    "CREATE TABLE IF NOT EXISTS operators (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, operator TEXT NOT NULL"
    " REFERENCES operators (name) ON DELETE CASCADE, hash BYTEA NOT NULL,"
    " created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (id BIGSERIAL PRIMARY KEY, ts_ms BIGINT NOT NULL,"
    " actor TEXT NOT NULL, eid BYTEA, op_id BIGINT, event TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_eid ON audit (eid, id)",
    NULL,
};

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void set_err(struct pg_conn *c, const char *msg)
{
    size_t n = 0;
    snprintf(c->err, sizeof(c->err), "%s", msg ? msg : "");
    n = strlen(c->err);
    while (n > 0 && (c->err[n - 1] == '\n' || c->err[n - 1] == ' '))
        c->err[--n] = '\0';
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        p[i - 1] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

static int64_t get_be_signed(const uint8_t *p, size_t n)
{
    uint64_t v = (p[0] & 0x80u) ? UINT64_MAX : 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static unsigned oid_of(enum pl_sqlv_type t)
{
    switch (t) {
    case PL_SQLV_INT:
        return OID_INT8;
    case PL_SQLV_TEXT:
        return OID_TEXT;
    case PL_SQLV_BLOB:
        return OID_BYTEA;
    case PL_SQLV_NULL:
    default:
        return 0;
    }
}

static int take_rows(struct pg_conn *c, PGresult *r, struct pl_sql_res *res)
{
    size_t nrows = (size_t)PQntuples(r), ncols = (size_t)PQnfields(r);

    res->nrows = 0;
    res->ncols = ncols;
    if (nrows == 0 || ncols == 0)
        return PL_OK;
    res->cells = calloc(nrows * ncols, sizeof(*res->cells));
    if (res->cells == NULL)
        return PL_ERR_NOMEM;
    res->nrows = nrows;
    for (size_t i = 0; i < nrows; i++) {
        for (size_t j = 0; j < ncols; j++) {
            struct pl_sqlv *v = &res->cells[i * ncols + j];
            unsigned oid = (unsigned)PQftype(r, (int)j);
            const uint8_t *p = (const uint8_t *)PQgetvalue(r, (int)i, (int)j);
            size_t len = (size_t)PQgetlength(r, (int)i, (int)j);
            if (PQgetisnull(r, (int)i, (int)j)) {
                v->t = PL_SQLV_NULL;
                continue;
            }
            if (oid == OID_INT8 || oid == OID_INT4 || oid == OID_INT2 || oid == OID_BOOL) {
                size_t want = oid == OID_INT8 ? 8 : oid == OID_INT4 ? 4 : oid == OID_INT2 ? 2 : 1;
                if (len != want) {
                    set_err(c, "unexpected integer width in a binary result");
                    return PL_ERR_DB;
                }
                v->t = PL_SQLV_INT;
                v->i = oid == OID_BOOL ? (int64_t)(p[0] != 0) : get_be_signed(p, len);
            } else if (oid == OID_TEXT || oid == OID_VARCHAR || oid == OID_NAME
                       || oid == OID_BYTEA) {
                uint8_t *copy = malloc(len + 1);
                if (copy == NULL)
                    return PL_ERR_NOMEM;
                if (len > 0)
                    memcpy(copy, p, len);
                copy[len] = 0;
                v->t = oid == OID_BYTEA ? PL_SQLV_BLOB : PL_SQLV_TEXT;
                v->p = copy;
                v->len = len;
            } else {
                set_err(c, "unexpected column type in a result");
                return PL_ERR_DB;
            }
        }
    }
    return PL_OK;
}

static int pg_exec(void *conn, const char *sql, const struct pl_sqlv *params, size_t n,
                   struct pl_sql_res *res, int64_t *changes)
{
    struct pg_conn *c = conn;
    int rc = PL_ERR_INTERNAL;
    PGresult *r = NULL;
    Oid types[PG_MAX_PARAMS];
    const char *values[PG_MAX_PARAMS];
    int lengths[PG_MAX_PARAMS], formats[PG_MAX_PARAMS];
    uint8_t ints[PG_MAX_PARAMS][8];
    ExecStatusType status;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (changes != NULL)
        *changes = 0;
    if (n > PG_MAX_PARAMS)
        return PL_ERR_INTERNAL;
    if (PQstatus(c->pg) == CONNECTION_BAD)
        PQreset(c->pg); /* a lost server connection: try once to get it back */
    for (size_t i = 0; i < n; i++) {
        const struct pl_sqlv *v = &params[i];
        formats[i] = 1;
        lengths[i] = 0;
        values[i] = NULL;
        if (v->t == PL_SQLV_NULL) {
            types[i] = oid_of((enum pl_sqlv_type)v->i);
            continue;
        }
        types[i] = oid_of(v->t);
        if (v->t == PL_SQLV_INT) {
            put_be(ints[i], (uint64_t)v->i, 8);
            values[i] = (const char *)ints[i];
            lengths[i] = 8;
        } else {
            static const char empty[1] = "";
            if (v->len > (size_t)INT32_MAX)
                return PL_ERR_OVERFLOW;
            values[i] = v->len ? (const char *)v->p : empty;
            lengths[i] = (int)v->len;
        }
    }
    r = PQexecParams(c->pg, sql, (int)n, n ? types : NULL, n ? values : NULL, n ? lengths : NULL,
                     n ? formats : NULL, 1);
    if (r == NULL) {
        set_err(c, PQerrorMessage(c->pg));
        return PL_ERR_DB;
    }
    status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        set_err(c, PQresultErrorMessage(r));
        rc = (state != NULL && strcmp(state, "23505") == 0) ? PL_ERR_EXISTS : PL_ERR_DB;
        goto out;
    }
    if (changes != NULL) {
        const char *t = PQcmdTuples(r);
        *changes = (t != NULL && t[0] != '\0') ? strtoll(t, NULL, 10) : 0;
    }
    if (res != NULL && (rc = take_rows(c, r, res)) != PL_OK)
        goto out;
    rc = PL_OK;
out:
    PQclear(r);
    if (rc != PL_OK && res != NULL)
        pl_sql_res_free(res);
    return rc;
}

static const char *pg_errmsg(void *conn)
{
    return ((struct pg_conn *)conn)->err;
}

static void pg_close(void *conn)
{
    struct pg_conn *c = conn;
    if (c == NULL)
        return;
    PQfinish(c->pg);
    free(c);
}

static const struct pl_sql_driver pg_driver = {
    .name = "postgres",
    .begin_write = "BEGIN",
    .for_update = " FOR UPDATE",
    .lock_devices = "LOCK TABLE devices IN EXCLUSIVE MODE",
    /* One schema creator at a time: CREATE ... IF NOT EXISTS alone races on the catalog. */
    .schema_lock = "SELECT pg_advisory_xact_lock(7352011)",
    .schema = pg_schema,
    .exec = pg_exec,
    .errmsg = pg_errmsg,
    .close = pg_close,
};

int pl_eim_store_open_pg(const char *conninfo, const struct pl_eim_store_options *opt,
                         struct pl_eim_store **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pg_conn *c = NULL;
    struct pl_eim_store_options o;
    struct pl_sql_store *st = NULL;

    if (conninfo == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    pl_eim_store_options_defaults(opt, &o);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PL_ERR_NOMEM;
    c->pg = PQconnectdb(conninfo);
    if (c->pg == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        rc = PL_ERR_DB;
        goto out;
    }
    PQsetNoticeProcessor(c->pg, quiet_notice, NULL);
    rc = pl_sql_store_new(&pg_driver, c, &o, &st);
    c = NULL; /* taken */
    if (rc != PL_OK)
        goto out;
    rc = pl_eim_store_wrap("postgres", &pl_eim_sql_ops, st, &o, out);
out:
    pg_close(c);
    return rc;
}
