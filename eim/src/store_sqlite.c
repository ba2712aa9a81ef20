/* The eIM store on SQLite: the embedded default (ARCHITECTURE.md §3, §7). A driver for the
 * SQL core (store_sql.c): WAL journal with synchronous=FULL (a commit is on disk when
 * COMMIT returns, which the counter invariant needs: ARCHITECTURE.md §5), foreign keys on,
 * every write transaction BEGIN IMMEDIATE (one writer at a time, several processes may
 * share the file; readers are not blocked), a busy timeout instead of failing at once.
 * SQLite 3.40 (Debian 12): UPSERT (3.24) and RETURNING (3.35) are available. Parameters
 * are written $1..$n and bound by name. reference/DEPENDENCIES.md §9. */
#define _POSIX_C_SOURCE 200809L
#include "store_sql.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sqlite_schema[] = {
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "INSERT INTO meta (k, v) VALUES ('schema', '1') ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS counter_buckets (bucket INTEGER PRIMARY KEY,"
    " seq INTEGER NOT NULL CHECK (seq >= 0))",
    "CREATE TABLE IF NOT EXISTS devices (eid BLOB PRIMARY KEY CHECK (length(eid) = 16),"
    " bucket INTEGER NOT NULL, euicc_cert BLOB, eum_cert BLOB, eim_id TEXT, assoc_token INTEGER,"
    " counter INTEGER NOT NULL CHECK (counter >= 0), psk_identity TEXT UNIQUE, psk_key BLOB,"
    " cert_fpr BLOB, profiles TEXT, eims TEXT, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, last_seen_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS devices_bucket ON devices (bucket)",
    "CREATE TABLE IF NOT EXISTS ops (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " eid BLOB NOT NULL REFERENCES devices (eid) ON DELETE CASCADE, kind TEXT NOT NULL,"
    " params BLOB, state TEXT NOT NULL, created_by TEXT, created_ms INTEGER NOT NULL,"
    " claimed_by TEXT, claimed_ms INTEGER, counter INTEGER, txid BLOB, package BLOB,"
    " sent_ms INTEGER, result BLOB, outcome TEXT, done_ms INTEGER, UNIQUE (eid, counter))",
    "CREATE INDEX IF NOT EXISTS ops_eid_state ON ops (eid, state, id)",
    "CREATE TABLE IF NOT EXISTS notifications (eid BLOB NOT NULL, seq INTEGER NOT NULL,"
    " data BLOB NOT NULL, received_ms INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (eid, seq))",
    "CREATE TABLE IF NOT EXISTS operators (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, operator TEXT NOT NULL"
    " REFERENCES operators (name) ON DELETE CASCADE, hash BLOB NOT NULL,"
    " created_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts_ms INTEGER NOT NULL, actor TEXT NOT NULL, eid BLOB, op_id INTEGER,"
    " event TEXT NOT NULL, detail TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_eid ON audit (eid, id)",
    NULL,
};

static int bind_one(sqlite3_stmt *st, int idx, const struct pl_sqlv *v)
{
    static const char empty[1] = "";
    switch (v->t) {
    case PL_SQLV_NULL:
        return sqlite3_bind_null(st, idx);
    case PL_SQLV_INT:
        return sqlite3_bind_int64(st, idx, v->i);
    case PL_SQLV_TEXT:
        return sqlite3_bind_text64(st, idx, v->len ? v->p : empty, v->len, SQLITE_STATIC,
                                   SQLITE_UTF8);
    case PL_SQLV_BLOB:
        if (v->len == 0)
            return sqlite3_bind_zeroblob(st, idx, 0); /* a NULL pointer would bind NULL */
        return sqlite3_bind_blob64(st, idx, v->p, v->len, SQLITE_STATIC);
    default:
        return SQLITE_MISUSE;
    }
}

/* Appends one row's cells to a growing result. */
static int take_row(sqlite3_stmt *st, struct pl_sql_res *res, size_t *cap)
{
    size_t ncols = (size_t)sqlite3_column_count(st);
    struct pl_sqlv *row = NULL;

    if (res->nrows == 0 && res->cells == NULL)
        res->ncols = ncols;
    if (ncols != res->ncols)
        return PL_ERR_DB;
    if ((res->nrows + 1) * ncols > *cap) {
        size_t ncap = *cap ? *cap * 2 : ncols * 8 + 1;
        struct pl_sqlv *nc = NULL;
        while (ncap < (res->nrows + 1) * ncols)
            ncap *= 2;
        nc = realloc(res->cells, ncap * sizeof(*nc));
        if (nc == NULL)
            return PL_ERR_NOMEM;
        res->cells = nc;
        *cap = ncap;
    }
    row = &res->cells[res->nrows * ncols];
    memset(row, 0, ncols * sizeof(*row));
    res->nrows++; /* counted now so a failure below frees what was copied */
    for (size_t c = 0; c < ncols; c++) {
        int t = sqlite3_column_type(st, (int)c);
        if (t == SQLITE_INTEGER) {
            row[c].t = PL_SQLV_INT;
            row[c].i = sqlite3_column_int64(st, (int)c);
        } else if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
            const void *p = t == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, (int)c)
                                             : sqlite3_column_blob(st, (int)c);
            size_t n = (size_t)sqlite3_column_bytes(st, (int)c);
            uint8_t *copy = malloc(n + 1);
            if (copy == NULL)
                return PL_ERR_NOMEM;
            if (n > 0)
                memcpy(copy, p, n);
            copy[n] = 0;
            row[c].t = t == SQLITE_TEXT ? PL_SQLV_TEXT : PL_SQLV_BLOB;
            row[c].p = copy;
            row[c].len = n;
        } else if (t == SQLITE_NULL) {
            row[c].t = PL_SQLV_NULL;
        } else {
            return PL_ERR_DB; /* no REAL columns in this schema */
        }
    }
    return PL_OK;
}

static int map_err(sqlite3 *db, int src)
{
    int ext = sqlite3_extended_errcode(db);
    (void)src;
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
        return PL_ERR_EXISTS;
    if (src == SQLITE_NOMEM)
        return PL_ERR_NOMEM;
    return PL_ERR_DB;
}

static int lite_exec(void *conn, const char *sql, const struct pl_sqlv *params, size_t n,
                     struct pl_sql_res *res, int64_t *changes)
{
    sqlite3 *db = conn;
    sqlite3_stmt *st = NULL;
    int rc = PL_ERR_INTERNAL, src;
    size_t cap = 0;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (changes != NULL)
        *changes = 0;
    src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src != SQLITE_OK) {
        rc = map_err(db, src);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char name[24];
        int idx;
        snprintf(name, sizeof(name), "$%zu", i + 1);
        idx = sqlite3_bind_parameter_index(st, name);
        if (idx == 0)
            continue; /* this statement does not use the parameter */
        if ((src = bind_one(st, idx, &params[i])) != SQLITE_OK) {
            rc = map_err(db, src);
            goto out;
        }
    }
    for (;;) {
        src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            break;
        if (src != SQLITE_ROW) {
            rc = map_err(db, src);
            goto out;
        }
        if (res != NULL && (rc = take_row(st, res, &cap)) != PL_OK)
            goto out;
    }
    if (changes != NULL)
        *changes = (int64_t)sqlite3_changes64(db);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    if (rc != PL_OK && res != NULL)
        pl_sql_res_free(res);
    return rc;
}

static const char *lite_errmsg(void *conn)
{
    return sqlite3_errmsg(conn);
}

static void lite_close(void *conn)
{
    sqlite3_close_v2(conn);
}

static const struct pl_sql_driver sqlite_driver = {
    .name = "sqlite",
    .begin_write = "BEGIN IMMEDIATE",
    .for_update = "",
    .lock_devices = NULL,
    .schema_lock = NULL,
    .schema = sqlite_schema,
    .exec = lite_exec,
    .errmsg = lite_errmsg,
    .close = lite_close,
};

int pl_eim_store_open_sqlite(const char *path, const struct pl_eim_store_options *opt,
                             struct pl_eim_store **out)
{
    int rc = PL_ERR_INTERNAL;
    sqlite3 *db = NULL;
    struct pl_eim_store_options o;
    struct pl_sql_store *st = NULL;
    struct pl_sql_res r = {0};

    if (path == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    pl_eim_store_options_defaults(opt, &o);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = PL_ERR_DB;
        goto out;
    }
    sqlite3_busy_timeout(db, o.busy_timeout_ms);
    if ((rc = lite_exec(db, "PRAGMA journal_mode=WAL", NULL, 0, &r, NULL)) != PL_OK)
        goto out;
    if (r.nrows != 1 || pl_sql_cell(&r, 0, 0)->t != PL_SQLV_TEXT
        || strcmp(pl_sql_cell(&r, 0, 0)->p, "wal") != 0) {
        rc = PL_ERR_DB; /* e.g. an in-memory database: not durable, refuse */
        goto out;
    }
    if ((rc = lite_exec(db, "PRAGMA synchronous=FULL", NULL, 0, NULL, NULL)) != PL_OK
        || (rc = lite_exec(db, "PRAGMA foreign_keys=ON", NULL, 0, NULL, NULL)) != PL_OK)
        goto out;
    rc = pl_sql_store_new(&sqlite_driver, db, &o, &st);
    db = NULL; /* taken */
    if (rc != PL_OK)
        goto out;
    rc = pl_eim_store_wrap("sqlite", &pl_eim_sql_ops, st, &o, out);
out:
    pl_sql_res_free(&r);
    if (db != NULL)
        sqlite3_close_v2(db);
    return rc;
}
