/* The eIM store's SQL core: struct pl_eim_store_ops over a small driver (store_sql.h),
 * shared by the SQLite and PostgreSQL backends. Every statement is parameterised; the
 * only text spliced into SQL is fixed dialect strings and state names from our tables.
 * Semantics: provline/eim/store.h and docs/eim-store.md; counters and the guard:
 * docs/decisions/0011-eim-counter-floor.md. GSMA SGP.32 v1.2 §2.11.1.1 (counterValue),
 * §3.x eIM Package and notification handling; reference/EIM.md §1.6-§1.7.
 *
 * Lock order, for every write transaction that takes more than one: device row, then
 * counter bucket row, then anything else. A recovery locks the devices table first. */
#define _POSIX_C_SOURCE 200809L
#include "store_sql.h"

#include "provline/eim/counter_guard.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* ---- values and results ---- */

static struct pl_sqlv v_int(int64_t i)
{
    struct pl_sqlv v = {PL_SQLV_INT, i, NULL, 0};
    return v;
}

/* A NULL keeps the type it stands for in .i, so PostgreSQL can be told the parameter's
 * type even when the value is absent. v_null() stands for an integer. */
static struct pl_sqlv v_null(void)
{
    struct pl_sqlv v = {PL_SQLV_NULL, PL_SQLV_INT, NULL, 0};
    return v;
}

static struct pl_sqlv v_text(const char *s)
{
    struct pl_sqlv v = {PL_SQLV_TEXT, 0, s, s ? strlen(s) : 0};
    if (s == NULL) {
        v.t = PL_SQLV_NULL;
        v.i = PL_SQLV_TEXT;
    }
    return v;
}

static struct pl_sqlv v_blob(const void *p, size_t len)
{
    struct pl_sqlv v = {PL_SQLV_BLOB, 0, p, len};
    if (p == NULL) {
        v.t = PL_SQLV_NULL;
        v.i = PL_SQLV_BLOB;
    }
    return v;
}

void pl_sql_res_free(struct pl_sql_res *r)
{
    if (r == NULL)
        return;
    if (r->cells != NULL) {
        for (size_t i = 0; i < r->nrows * r->ncols; i++)
            free((void *)(uintptr_t)r->cells[i].p);
        free(r->cells);
    }
    memset(r, 0, sizeof(*r));
}

const struct pl_sqlv *pl_sql_cell(const struct pl_sql_res *r, size_t row, size_t col)
{
    static const struct pl_sqlv null_cell = {PL_SQLV_NULL, 0, NULL, 0};
    if (r == NULL || row >= r->nrows || col >= r->ncols)
        return &null_cell;
    return &r->cells[row * r->ncols + col];
}

static int64_t cell_int(const struct pl_sql_res *r, size_t row, size_t col)
{
    const struct pl_sqlv *c = pl_sql_cell(r, row, col);
    return c->t == PL_SQLV_INT ? c->i : 0;
}

static bool cell_null(const struct pl_sql_res *r, size_t row, size_t col)
{
    return pl_sql_cell(r, row, col)->t == PL_SQLV_NULL;
}

/* Copies a TEXT/BLOB cell into a new heap buffer (NUL-terminated); NULL cell gives NULL. */
static int cell_dup(const struct pl_sql_res *r, size_t row, size_t col, uint8_t **out, size_t *len)
{
    const struct pl_sqlv *c = pl_sql_cell(r, row, col);
    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (c->t != PL_SQLV_TEXT && c->t != PL_SQLV_BLOB)
        return PL_OK;
    *out = malloc(c->len + 1);
    if (*out == NULL)
        return PL_ERR_NOMEM;
    if (c->len > 0)
        memcpy(*out, c->p, c->len);
    (*out)[c->len] = 0;
    if (len != NULL)
        *len = c->len;
    return PL_OK;
}

static int cell_dup_text(const struct pl_sql_res *r, size_t row, size_t col, char **out)
{
    uint8_t *p = NULL;
    int rc = cell_dup(r, row, col, &p, NULL);
    *out = (char *)p;
    return rc;
}

/* Copies into a fixed buffer, truncating; NULL gives "". */
static void cell_copy_str(const struct pl_sql_res *r, size_t row, size_t col, char *out, size_t cap)
{
    const struct pl_sqlv *c = pl_sql_cell(r, row, col);
    size_t n = 0;
    if (cap == 0)
        return;
    if (c->t == PL_SQLV_TEXT || c->t == PL_SQLV_BLOB) {
        n = c->len < cap - 1 ? c->len : cap - 1;
        memcpy(out, c->p, n);
    }
    out[n] = '\0';
}

static bool cell_eq(const struct pl_sql_res *r, size_t row, size_t col, const void *p, size_t len)
{
    const struct pl_sqlv *c = pl_sql_cell(r, row, col);
    if (c->t == PL_SQLV_NULL)
        return p == NULL;
    if (p == NULL || c->len != len)
        return false;
    return len == 0 || memcmp(c->p, p, len) == 0;
}

static uint32_t clamp_u32(int64_t v)
{
    if (v < 0)
        return 0;
    if (v > (int64_t)UINT32_MAX)
        return UINT32_MAX;
    return (uint32_t)v;
}

/* ---- statements and transactions ---- */

static int64_t now_ms(const struct pl_sql_store *st)
{
    return st->now(st->now_user);
}

static int q(struct pl_sql_store *st, const char *sql, const struct pl_sqlv *p, size_t n,
             struct pl_sql_res *res, int64_t *changes)
{
    return st->drv->exec(st->conn, sql, p, n, res, changes);
}

static int tx_begin(struct pl_sql_store *st)
{
    return q(st, st->drv->begin_write, NULL, 0, NULL, NULL);
}

static int tx_commit(struct pl_sql_store *st)
{
    return q(st, "COMMIT", NULL, 0, NULL, NULL);
}

static void tx_rollback(struct pl_sql_store *st)
{
    (void)!q(st, "ROLLBACK", NULL, 0, NULL, NULL);
}

/* Ends a transaction: commit when rc is PL_OK, roll back otherwise. */
static int tx_end(struct pl_sql_store *st, int rc)
{
    if (rc == PL_OK)
        return tx_commit(st);
    tx_rollback(st);
    return rc;
}

/* Builds "SELECT ... FOR UPDATE" style statements from fixed parts. */
static int sql_cat(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b ? b : "");
    return (n < 0 || (size_t)n >= cap) ? PL_ERR_INTERNAL : PL_OK;
}

static int audit(struct pl_sql_store *st, const char *actor, const uint8_t *eid, int64_t op_id,
                 const char *event, const char *detail)
{
    struct pl_sqlv p[] = {v_int(now_ms(st)),
                          v_text(actor ? actor : "-"),
                          v_blob(eid, eid ? PL_EIM_EID_LEN : 0),
                          op_id > 0 ? v_int(op_id) : v_null(),
                          v_text(event),
                          v_text(detail ? detail : "")};
    return q(st,
             "INSERT INTO audit (ts_ms, actor, eid, op_id, event, detail)"
             " VALUES ($1, $2, $3, $4, $5, $6)",
             p, NP(p), NULL, NULL);
}

/* ---- schema ---- */

static int gen_store_id(char out[33])
{
    uint8_t id[PL_EIM_STORE_ID_LEN];
    int rc = pl_rng_system_fill(NULL, id, sizeof(id));
    if (rc != PL_OK)
        return rc;
    return pl_hex_encode(id, sizeof(id), out, 33);
}

int pl_sql_store_new(const struct pl_sql_driver *drv, void *conn,
                     const struct pl_eim_store_options *opt, struct pl_sql_store **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sql_store *st = NULL;
    char id[33];
    bool in_tx = false;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        drv->close(conn);
        return PL_ERR_NOMEM;
    }
    st->drv = drv;
    st->conn = conn;
    st->now = opt->now;
    st->now_user = opt->now_user;

    /* An existing schema is not touched: DDL (CREATE INDEX IF NOT EXISTS takes a SHARE lock
     * on its table) and the bucket inserts would otherwise queue behind, and deadlock with,
     * reservations running in other processes. */
    {
        struct pl_sql_res r = {0};
        bool ready = q(st, "SELECT v FROM meta WHERE k = 'schema'", NULL, 0, &r, NULL) == PL_OK
                     && r.nrows == 1;
        pl_sql_res_free(&r);
        if (ready) {
            *out = st;
            return PL_OK;
        }
    }
    if ((rc = tx_begin(st)) != PL_OK)
        goto out;
    in_tx = true;
    if (drv->schema_lock != NULL && (rc = q(st, drv->schema_lock, NULL, 0, NULL, NULL)) != PL_OK)
        goto out;
    for (size_t i = 0; drv->schema[i] != NULL; i++) {
        if ((rc = q(st, drv->schema[i], NULL, 0, NULL, NULL)) != PL_OK)
            goto out;
    }
    if ((rc = gen_store_id(id)) != PL_OK)
        goto out;
    {
        struct pl_sqlv p[] = {v_text(id)};
        rc = q(st, "INSERT INTO meta (k, v) VALUES ('store_id', $1) ON CONFLICT DO NOTHING", p,
               NP(p), NULL, NULL);
        if (rc != PL_OK)
            goto out;
    }
    for (int64_t b = 0; b < (int64_t)PL_EIM_GUARD_BUCKETS; b++) {
        struct pl_sqlv p[] = {v_int(b)};
        rc =
            q(st, "INSERT INTO counter_buckets (bucket, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
              p, NP(p), NULL, NULL);
        if (rc != PL_OK)
            goto out;
    }
    in_tx = false;
    if ((rc = tx_commit(st)) != PL_OK)
        goto out;
    *out = st;
    st = NULL;
    rc = PL_OK;
out:
    if (st != NULL) {
        if (in_tx)
            tx_rollback(st);
        drv->close(st->conn);
        free(st);
    }
    return rc;
}

static void sql_close(void *impl)
{
    struct pl_sql_store *st = impl;
    if (st == NULL)
        return;
    st->drv->close(st->conn);
    free(st);
}

static const char *sql_last_error(void *impl)
{
    struct pl_sql_store *st = impl;
    const char *m = st->drv->errmsg(st->conn);
    return m ? m : "";
}

static int sql_store_id(void *impl, char out[33])
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    int rc = q(st, "SELECT v FROM meta WHERE k = 'store_id'", NULL, 0, &r, NULL);
    if (rc != PL_OK)
        return rc;
    rc = PL_ERR_DB;
    if (r.nrows == 1) {
        cell_copy_str(&r, 0, 0, out, 33);
        rc = strlen(out) == 32 ? PL_OK : PL_ERR_DB;
    }
    pl_sql_res_free(&r);
    return rc;
}

/* ---- devices ---- */

#define DEVICE_COLS                                                                                \
    "eid, euicc_cert, eum_cert, eim_id, assoc_token, counter, psk_identity, psk_key, cert_fpr, "   \
    "profiles, eims, created_ms, updated_ms, last_seen_ms"

static int device_from_row(const struct pl_sql_res *r, size_t row, struct pl_eim_device *d)
{
    int rc = PL_ERR_INTERNAL;
    const struct pl_sqlv *c = NULL;

    memset(d, 0, sizeof(*d));
    c = pl_sql_cell(r, row, 0);
    if (c->t != PL_SQLV_BLOB || c->len != PL_EIM_EID_LEN)
        return PL_ERR_DB;
    memcpy(d->eid, c->p, PL_EIM_EID_LEN);
    if ((rc = cell_dup(r, row, 1, &d->euicc_cert, &d->euicc_cert_len)) != PL_OK
        || (rc = cell_dup(r, row, 2, &d->eum_cert, &d->eum_cert_len)) != PL_OK
        || (rc = cell_dup_text(r, row, 3, &d->eim_id)) != PL_OK)
        goto out;
    d->has_assoc_token = !cell_null(r, row, 4);
    d->assoc_token = cell_int(r, row, 4);
    d->counter = clamp_u32(cell_int(r, row, 5));
    if ((rc = cell_dup_text(r, row, 6, &d->psk_identity)) != PL_OK
        || (rc = cell_dup(r, row, 7, &d->psk_key, &d->psk_key_len)) != PL_OK)
        goto out;
    c = pl_sql_cell(r, row, 8);
    if (c->t == PL_SQLV_BLOB && c->len == PL_EIM_FPR_LEN) {
        d->has_cert_fpr = true;
        memcpy(d->cert_fpr, c->p, PL_EIM_FPR_LEN);
    }
    if ((rc = cell_dup_text(r, row, 9, &d->profiles_json)) != PL_OK
        || (rc = cell_dup_text(r, row, 10, &d->eims_json)) != PL_OK)
        goto out;
    d->created_ms = cell_int(r, row, 11);
    d->updated_ms = cell_int(r, row, 12);
    d->last_seen_ms = cell_int(r, row, 13);
    rc = PL_OK;
out:
    if (rc != PL_OK)
        pl_eim_device_clear(d);
    return rc;
}

/* INSERT ... ON CONFLICT DO NOTHING; *created = whether a row was added. */
static int device_insert(struct pl_sql_store *st, const struct pl_eim_device *d, bool *created)
{
    int64_t t = now_ms(st), changes = 0;
    struct pl_sqlv p[] = {
        v_blob(d->eid, PL_EIM_EID_LEN),
        v_int((int64_t)pl_eim_store_bucket(d->eid)),
        v_blob(d->euicc_cert, d->euicc_cert_len),
        v_blob(d->eum_cert, d->eum_cert_len),
        v_text(d->eim_id),
        d->has_assoc_token ? v_int(d->assoc_token) : v_null(),
        v_int((int64_t)d->counter),
        v_text(d->psk_identity),
        v_blob(d->psk_key, d->psk_key_len),
        d->has_cert_fpr ? v_blob(d->cert_fpr, PL_EIM_FPR_LEN) : v_blob(NULL, 0),
        v_text(d->profiles_json),
        v_text(d->eims_json),
        v_int(t),
        v_int(t),
        d->last_seen_ms > 0 ? v_int(d->last_seen_ms) : v_null(),
    };
    int rc = q(st,
               "INSERT INTO devices (eid, bucket, euicc_cert, eum_cert, eim_id, assoc_token, "
               "counter, psk_identity, psk_key, cert_fpr, profiles, eims, created_ms, updated_ms, "
               "last_seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
               "$15) ON CONFLICT DO NOTHING",
               p, NP(p), NULL, &changes);
    *created = changes == 1;
    return rc;
}

static int sql_device_put(void *impl, const char *actor, const struct pl_eim_device *d)
{
    struct pl_sql_store *st = impl;
    bool created = false;
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = device_insert(st, d, &created);
    if (rc == PL_OK && !created)
        rc = PL_ERR_EXISTS;
    if (rc == PL_OK)
        rc = audit(st, actor, d->eid, 0, "device.register", NULL);
    return tx_end(st, rc);
}

static int sql_device_put_many(void *impl, const char *actor, const struct pl_eim_device *d,
                               size_t n, enum pl_eim_put_result *results)
{
    struct pl_sql_store *st = impl;
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    for (size_t i = 0; i < n && rc == PL_OK; i++) {
        bool created = false;
        struct pl_sql_res r = {0};
        struct pl_sqlv p[] = {v_blob(d[i].eid, PL_EIM_EID_LEN)};

        if ((rc = device_insert(st, &d[i], &created)) != PL_OK)
            break;
        if (created) {
            results[i] = PL_EIM_PUT_CREATED;
            rc = audit(st, actor, d[i].eid, 0, "device.register", "bulk");
            continue;
        }
        rc = q(st, "SELECT euicc_cert, eum_cert FROM devices WHERE eid = $1", p, NP(p), &r, NULL);
        if (rc == PL_OK) {
            bool same = r.nrows == 1 && cell_eq(&r, 0, 0, d[i].euicc_cert, d[i].euicc_cert_len)
                        && cell_eq(&r, 0, 1, d[i].eum_cert, d[i].eum_cert_len);
            results[i] = same ? PL_EIM_PUT_UNCHANGED : PL_EIM_PUT_CONFLICT;
        }
        pl_sql_res_free(&r);
    }
    return tx_end(st, rc);
}

static int device_select(struct pl_sql_store *st, const char *where, struct pl_sqlv key,
                         struct pl_eim_device *out)
{
    char sql[512];
    struct pl_sql_res r = {0};
    int rc = PL_ERR_INTERNAL;
    int n = snprintf(sql, sizeof(sql), "SELECT " DEVICE_COLS " FROM devices WHERE %s", where);

    if (n < 0 || (size_t)n >= sizeof(sql))
        return PL_ERR_INTERNAL;
    if ((rc = q(st, sql, &key, 1, &r, NULL)) != PL_OK)
        return rc;
    rc = r.nrows == 0 ? PL_ERR_NOT_FOUND : device_from_row(&r, 0, out);
    pl_sql_res_free(&r);
    return rc;
}

static int sql_device_get(void *impl, const uint8_t eid[PL_EIM_EID_LEN], struct pl_eim_device *out)
{
    return device_select(impl, "eid = $1", v_blob(eid, PL_EIM_EID_LEN), out);
}

static int sql_device_find_psk(void *impl, const char *identity, struct pl_eim_device *out)
{
    return device_select(impl, "psk_identity = $1", v_text(identity), out);
}

static int sql_device_update(void *impl, const char *actor, const struct pl_eim_device *d,
                             unsigned fields)
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[16];
    size_t np = 0;
    char sql[768];
    size_t len = 0;
    int64_t changes = 0;
    int rc = PL_ERR_INTERNAL;
    char detail[64];

#define SET(col, val)                                                                              \
    do {                                                                                           \
        p[np] = (val);                                                                             \
        np++;                                                                                      \
        int w_ = snprintf(sql + len, sizeof(sql) - len, ", %s = $%zu", (col), np);                 \
        if (w_ < 0 || (size_t)w_ >= sizeof(sql) - len)                                             \
            return PL_ERR_INTERNAL;                                                                \
        len += (size_t)w_;                                                                         \
    } while (0)

    p[np++] = v_blob(d->eid, PL_EIM_EID_LEN);
    p[np++] = v_int(now_ms(st));
    len = (size_t)snprintf(sql, sizeof(sql), "UPDATE devices SET updated_ms = $2");
    if (fields & PL_EIM_DEV_CERTS) {
        SET("euicc_cert", v_blob(d->euicc_cert, d->euicc_cert_len));
        SET("eum_cert", v_blob(d->eum_cert, d->eum_cert_len));
    }
    if (fields & PL_EIM_DEV_ASSOCIATION) {
        SET("eim_id", v_text(d->eim_id));
        SET("assoc_token", d->has_assoc_token ? v_int(d->assoc_token) : v_null());
    }
    if (fields & PL_EIM_DEV_CREDENTIALS) {
        SET("psk_identity", v_text(d->psk_identity));
        SET("psk_key", v_blob(d->psk_key, d->psk_key_len));
        SET("cert_fpr", d->has_cert_fpr ? v_blob(d->cert_fpr, PL_EIM_FPR_LEN) : v_blob(NULL, 0));
    }
    if (fields & PL_EIM_DEV_PROFILES)
        SET("profiles", v_text(d->profiles_json));
    if (fields & PL_EIM_DEV_EIMS)
        SET("eims", v_text(d->eims_json));
    if (fields & PL_EIM_DEV_LAST_SEEN)
        SET("last_seen_ms", d->last_seen_ms > 0 ? v_int(d->last_seen_ms) : v_null());
#undef SET
    if ((rc = sql_cat(sql + len, sizeof(sql) - len, " WHERE eid = $1", NULL)) != PL_OK)
        return rc;

    if ((rc = tx_begin(st)) != PL_OK)
        return rc;
    rc = q(st, sql, p, np, NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = PL_ERR_NOT_FOUND;
    /* last-seen alone is bookkeeping, not a state change worth an audit row */
    if (rc == PL_OK && (fields & ~(unsigned)PL_EIM_DEV_LAST_SEEN) != 0) {
        snprintf(detail, sizeof(detail), "fields=0x%x", fields);
        rc = audit(st, actor, d->eid, 0, "device.update", detail);
    }
    return tx_end(st, rc);
}

static int sql_device_delete(void *impl, const char *actor, const uint8_t eid[PL_EIM_EID_LEN])
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN)};
    int64_t changes = 0;
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st, "DELETE FROM ops WHERE eid = $1", p, NP(p), NULL, NULL);
    if (rc == PL_OK)
        rc = q(st, "DELETE FROM notifications WHERE eid = $1", p, NP(p), NULL, NULL);
    if (rc == PL_OK)
        rc = q(st, "DELETE FROM devices WHERE eid = $1", p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = PL_ERR_NOT_FOUND;
    if (rc == PL_OK)
        rc = audit(st, actor, eid, 0, "device.delete", NULL);
    return tx_end(st, rc);
}

static int sql_device_list(void *impl, const uint8_t *after_eid, struct pl_eim_device_summary *out,
                           size_t cap, size_t *n)
{
    struct pl_sql_store *st = impl;
    static const uint8_t empty[1] = {0};
    struct pl_sqlv p[] = {after_eid ? v_blob(after_eid, PL_EIM_EID_LEN) : v_blob(empty, 0),
                          v_int((int64_t)cap)};
    struct pl_sql_res r = {0};
    int rc = q(st,
               "SELECT eid, counter, CASE WHEN eim_id IS NULL THEN 0 ELSE 1 END, created_ms, "
               "last_seen_ms FROM devices WHERE eid > $1 ORDER BY eid LIMIT $2",
               p, NP(p), &r, NULL);
    *n = 0;
    if (rc != PL_OK)
        return rc;
    for (size_t i = 0; i < r.nrows && i < cap; i++) {
        const struct pl_sqlv *c = pl_sql_cell(&r, i, 0);
        if (c->t != PL_SQLV_BLOB || c->len != PL_EIM_EID_LEN) {
            rc = PL_ERR_DB;
            break;
        }
        memcpy(out[i].eid, c->p, PL_EIM_EID_LEN);
        out[i].counter = clamp_u32(cell_int(&r, i, 1));
        out[i].associated = cell_int(&r, i, 2) != 0;
        out[i].created_ms = cell_int(&r, i, 3);
        out[i].last_seen_ms = cell_int(&r, i, 4);
        *n = i + 1;
    }
    pl_sql_res_free(&r);
    return rc;
}

/* ---- counters ---- */

static int sql_reserve_counter(void *impl, const uint8_t eid[PL_EIM_EID_LEN], unsigned bucket,
                               uint32_t max, struct pl_eim_guard *guard, uint32_t *out)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    int64_t value = 0, seq = 0;
    char detail[64];
    int rc = tx_begin(st);

    if (rc != PL_OK)
        return rc;
    {
        struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN), v_int((int64_t)max)};
        rc = q(st,
               "UPDATE devices SET counter = counter + 1 WHERE eid = $1 AND counter < $2"
               " RETURNING counter",
               p, NP(p), &r, NULL);
    }
    if (rc != PL_OK)
        goto out;
    if (r.nrows != 1) {
        struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN)};
        pl_sql_res_free(&r);
        rc = q(st, "SELECT counter FROM devices WHERE eid = $1", p, NP(p), &r, NULL);
        if (rc == PL_OK)
            rc = r.nrows == 0 ? PL_ERR_NOT_FOUND : PL_ERR_OVERFLOW;
        goto out;
    }
    value = cell_int(&r, 0, 0);
    pl_sql_res_free(&r);
    {
        struct pl_sqlv p[] = {v_int((int64_t)bucket)};
        rc = q(st, "UPDATE counter_buckets SET seq = seq + 1 WHERE bucket = $1 RETURNING seq", p,
               NP(p), &r, NULL);
    }
    if (rc != PL_OK)
        goto out;
    if (r.nrows != 1) {
        rc = PL_ERR_DB;
        goto out;
    }
    seq = cell_int(&r, 0, 0);
    /* The guard's high-water mark must cover seq before this reservation commits. */
    if (guard != NULL && (rc = pl_eim_guard_admit(guard, bucket, (uint64_t)seq)) != PL_OK)
        goto out;
    snprintf(detail, sizeof(detail), "counter=%lld", (long long)value);
    rc = audit(st, NULL, eid, 0, "counter.reserve", detail);
out:
    pl_sql_res_free(&r);
    rc = tx_end(st, rc);
    if (rc == PL_OK)
        *out = clamp_u32(value);
    return rc;
}

static int sql_bucket_seqs(void *impl, uint64_t seq[256])
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    int rc = q(st, "SELECT bucket, seq FROM counter_buckets", NULL, 0, &r, NULL);
    if (rc != PL_OK)
        return rc;
    memset(seq, 0, 256 * sizeof(seq[0]));
    for (size_t i = 0; i < r.nrows; i++) {
        int64_t b = cell_int(&r, i, 0), v = cell_int(&r, i, 1);
        if (b < 0 || b > 255 || v < 0) {
            rc = PL_ERR_DB;
            break;
        }
        seq[b] = (uint64_t)v;
    }
    pl_sql_res_free(&r);
    return rc;
}

static int sql_counter_recover(void *impl, const char *actor, const uint64_t hwm[256],
                               uint64_t *bumped)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    uint64_t seq[256];
    char sql[160];
    int rc = tx_begin(st);

    *bumped = 0;
    if (rc != PL_OK)
        return rc;
    if (st->drv->lock_devices != NULL
        && (rc = q(st, st->drv->lock_devices, NULL, 0, NULL, NULL)) != PL_OK)
        goto out;
    if ((rc = sql_cat(sql, sizeof(sql), "SELECT bucket, seq FROM counter_buckets",
                      st->drv->for_update))
        != PL_OK)
        goto out;
    if ((rc = q(st, sql, NULL, 0, &r, NULL)) != PL_OK)
        goto out;
    memset(seq, 0, sizeof(seq));
    for (size_t i = 0; i < r.nrows; i++) {
        int64_t b = cell_int(&r, i, 0);
        if (b >= 0 && b < 256)
            seq[b] = (uint64_t)cell_int(&r, i, 1);
    }
    for (unsigned b = 0; b < 256; b++) {
        int64_t changes = 0;
        char detail[96];
        if (hwm[b] <= seq[b])
            continue;
        if (hwm[b] > (uint64_t)INT64_MAX / 2) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        {
            /* At most (hwm - seq) reservations of this bucket can be missing from the
             * database, so no EID of the bucket moved more than that since the backup. */
            struct pl_sqlv p[] = {v_int((int64_t)(hwm[b] - seq[b])), v_int((int64_t)b)};
            rc = q(st, "UPDATE devices SET counter = counter + $1 WHERE bucket = $2", p, NP(p),
                   NULL, &changes);
        }
        if (rc != PL_OK)
            goto out;
        {
            struct pl_sqlv p[] = {v_int((int64_t)hwm[b]), v_int((int64_t)b)};
            rc = q(st, "UPDATE counter_buckets SET seq = $1 WHERE bucket = $2", p, NP(p), NULL,
                   NULL);
        }
        if (rc != PL_OK)
            goto out;
        *bumped += (uint64_t)changes;
        snprintf(detail, sizeof(detail), "bucket=%u seq=%llu hwm=%llu devices=%lld", b,
                 (unsigned long long)seq[b], (unsigned long long)hwm[b], (long long)changes);
        if ((rc = audit(st, actor, NULL, 0, "counter.recover", detail)) != PL_OK)
            goto out;
    }
    rc = PL_OK;
out:
    pl_sql_res_free(&r);
    return tx_end(st, rc);
}

/* ---- operations ---- */

#define OP_COLS                                                                                    \
    "id, eid, kind, state, params, created_by, created_ms, claimed_by, claimed_ms, counter, "      \
    "txid, package, sent_ms, result, outcome, done_ms"

static int op_from_row(const struct pl_sql_res *r, size_t row, struct pl_eim_op *op)
{
    int rc = PL_ERR_DB;
    const struct pl_sqlv *c = NULL;
    char name[48];

    memset(op, 0, sizeof(*op));
    op->id = cell_int(r, row, 0);
    c = pl_sql_cell(r, row, 1);
    if (c->t != PL_SQLV_BLOB || c->len != PL_EIM_EID_LEN)
        goto out;
    memcpy(op->eid, c->p, PL_EIM_EID_LEN);
    cell_copy_str(r, row, 2, name, sizeof(name));
    if (pl_eim_op_kind_from_name(name, &op->kind) != PL_OK)
        goto out;
    cell_copy_str(r, row, 3, name, sizeof(name));
    if (pl_eim_op_state_from_name(name, &op->state) != PL_OK)
        goto out;
    if ((rc = cell_dup(r, row, 4, &op->params, &op->params_len)) != PL_OK
        || (rc = cell_dup_text(r, row, 5, &op->created_by)) != PL_OK)
        goto out;
    op->created_ms = cell_int(r, row, 6);
    if ((rc = cell_dup_text(r, row, 7, &op->claimed_by)) != PL_OK)
        goto out;
    op->claimed_ms = cell_int(r, row, 8);
    op->has_counter = !cell_null(r, row, 9);
    op->counter = clamp_u32(cell_int(r, row, 9));
    c = pl_sql_cell(r, row, 10);
    if (c->t == PL_SQLV_BLOB && c->len <= PL_EIM_TXID_MAX) {
        memcpy(op->txid, c->p, c->len);
        op->txid_len = c->len;
    }
    if ((rc = cell_dup(r, row, 11, &op->package, &op->package_len)) != PL_OK)
        goto out;
    op->sent_ms = cell_int(r, row, 12);
    if ((rc = cell_dup(r, row, 13, &op->result, &op->result_len)) != PL_OK
        || (rc = cell_dup_text(r, row, 14, &op->outcome)) != PL_OK)
        goto out;
    op->done_ms = cell_int(r, row, 15);
    rc = PL_OK;
out:
    if (rc != PL_OK)
        pl_eim_op_clear(op);
    return rc;
}

static int sql_op_enqueue(void *impl, const char *actor, const struct pl_eim_op *op, int64_t *id)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    char detail[64];
    struct pl_sqlv p[] = {v_blob(op->eid, PL_EIM_EID_LEN), v_text(pl_eim_op_kind_name(op->kind)),
                          v_blob(op->params, op->params_len), v_text(actor), v_int(now_ms(st))};
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "INSERT INTO ops (eid, kind, params, state, created_by, created_ms)"
           " SELECT $1, $2, $3, 'queued', $4, $5 WHERE EXISTS"
           " (SELECT 1 FROM devices WHERE eid = $1) RETURNING id",
           p, NP(p), &r, NULL);
    if (rc == PL_OK && r.nrows != 1)
        rc = PL_ERR_NOT_FOUND;
    if (rc == PL_OK) {
        *id = cell_int(&r, 0, 0);
        snprintf(detail, sizeof(detail), "kind=%s", pl_eim_op_kind_name(op->kind));
        rc = audit(st, actor, op->eid, *id, "op.queued", detail);
    }
    pl_sql_res_free(&r);
    return tx_end(st, rc);
}

static int sql_op_get(void *impl, int64_t id, struct pl_eim_op *out)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_int(id)};
    int rc = q(st, "SELECT " OP_COLS " FROM ops WHERE id = $1", p, NP(p), &r, NULL);
    if (rc != PL_OK)
        return rc;
    rc = r.nrows == 0 ? PL_ERR_NOT_FOUND : op_from_row(&r, 0, out);
    pl_sql_res_free(&r);
    return rc;
}

/* " AND state IN ('queued', ...)" from a mask of 1u << state (names from our own table). */
static int state_filter(unsigned mask, char *out, size_t cap)
{
    size_t len = 0;
    bool first = true;
    out[0] = '\0';
    if (mask == 0)
        return PL_OK;
    for (int s = PL_EIM_OPS_QUEUED; s <= PL_EIM_OPS_REQUERY; s++) {
        int w;
        if ((mask & (1u << s)) == 0)
            continue;
        w = snprintf(out + len, cap - len, "%s'%s'", first ? " AND state IN (" : ", ",
                     pl_eim_op_state_name((enum pl_eim_op_state)s));
        if (w < 0 || (size_t)w >= cap - len)
            return PL_ERR_INTERNAL;
        len += (size_t)w;
        first = false;
    }
    if (first)
        return PL_ERR_INVAL;
    return sql_cat(out + len, cap - len, ")", NULL);
}

static int sql_op_list(void *impl, const uint8_t eid[PL_EIM_EID_LEN], unsigned state_mask,
                       struct pl_eim_op_summary *out, size_t cap, size_t *n)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    char filter[160], sql[320];
    struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN), v_int((int64_t)cap)};
    int rc = state_filter(state_mask, filter, sizeof(filter));
    int w;

    *n = 0;
    if (rc != PL_OK)
        return rc;
    w = snprintf(sql, sizeof(sql),
                 "SELECT id, kind, state, created_ms FROM ops WHERE eid = $1%s ORDER BY id "
                 "LIMIT $2",
                 filter);
    if (w < 0 || (size_t)w >= sizeof(sql))
        return PL_ERR_INTERNAL;
    if ((rc = q(st, sql, p, NP(p), &r, NULL)) != PL_OK)
        return rc;
    for (size_t i = 0; i < r.nrows && i < cap; i++) {
        char name[48];
        out[i].id = cell_int(&r, i, 0);
        cell_copy_str(&r, i, 1, name, sizeof(name));
        if (pl_eim_op_kind_from_name(name, &out[i].kind) != PL_OK) {
            rc = PL_ERR_DB;
            break;
        }
        cell_copy_str(&r, i, 2, name, sizeof(name));
        if (pl_eim_op_state_from_name(name, &out[i].state) != PL_OK) {
            rc = PL_ERR_DB;
            break;
        }
        out[i].created_ms = cell_int(&r, i, 3);
        *n = i + 1;
    }
    pl_sql_res_free(&r);
    return rc;
}

static int sql_op_claim(void *impl, const uint8_t eid[PL_EIM_EID_LEN], const char *claimer,
                        struct pl_eim_op *out)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    char sql[160];
    int64_t id = 0;
    int rc = tx_begin(st);

    if (rc != PL_OK)
        return rc;
    /* The device row serialises every claim of this EID (PostgreSQL: FOR UPDATE; SQLite:
     * the write transaction already excludes other writers). */
    if ((rc =
             sql_cat(sql, sizeof(sql), "SELECT 1 FROM devices WHERE eid = $1", st->drv->for_update))
        != PL_OK)
        goto out;
    {
        struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN)};
        if ((rc = q(st, sql, p, NP(p), &r, NULL)) != PL_OK)
            goto out;
        if (r.nrows == 0) {
            rc = PL_ERR_NOT_FOUND;
            goto out;
        }
        pl_sql_res_free(&r);
        rc =
            q(st,
              "SELECT count(*) FROM ops WHERE eid = $1 AND state IN ('claimed', 'sent', 'requery')",
              p, NP(p), &r, NULL);
        if (rc != PL_OK)
            goto out;
        if (cell_int(&r, 0, 0) != 0) {
            rc = PL_ERR_NOT_FOUND; /* one package in flight (or being re-queried) per eUICC */
            goto out;
        }
        pl_sql_res_free(&r);
    }
    {
        struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN), v_text(claimer), v_int(now_ms(st))};
        rc = q(st,
               "UPDATE ops SET state = 'claimed', claimed_by = $2, claimed_ms = $3 WHERE id ="
               " (SELECT min(id) FROM ops WHERE eid = $1 AND state = 'queued')"
               " AND state = 'queued' RETURNING id",
               p, NP(p), &r, NULL);
    }
    if (rc != PL_OK)
        goto out;
    if (r.nrows != 1) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    id = cell_int(&r, 0, 0);
    rc = audit(st, claimer, eid, id, "op.claimed", NULL);
out:
    pl_sql_res_free(&r);
    rc = tx_end(st, rc);
    if (rc == PL_OK)
        rc = sql_op_get(st, id, out);
    return rc;
}

/* After an UPDATE matched no row: PL_ERR_NOT_FOUND or PL_ERR_STATE. */
static int op_why_not(struct pl_sql_store *st, int64_t id)
{
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_int(id)};
    int rc = q(st, "SELECT state FROM ops WHERE id = $1", p, NP(p), &r, NULL);
    if (rc == PL_OK)
        rc = r.nrows == 0 ? PL_ERR_NOT_FOUND : PL_ERR_STATE;
    pl_sql_res_free(&r);
    return rc;
}

static int op_eid(struct pl_sql_store *st, int64_t id, uint8_t eid[PL_EIM_EID_LEN])
{
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_int(id)};
    int rc = q(st, "SELECT eid FROM ops WHERE id = $1", p, NP(p), &r, NULL);
    if (rc == PL_OK) {
        const struct pl_sqlv *c = pl_sql_cell(&r, 0, 0);
        if (r.nrows == 1 && c->t == PL_SQLV_BLOB && c->len == PL_EIM_EID_LEN)
            memcpy(eid, c->p, PL_EIM_EID_LEN);
        else
            rc = PL_ERR_NOT_FOUND;
    }
    pl_sql_res_free(&r);
    return rc;
}

static int sql_op_release(void *impl, int64_t id, const char *claimer)
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_int(id), v_text(claimer)};
    uint8_t eid[PL_EIM_EID_LEN];
    int64_t changes = 0;
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "UPDATE ops SET state = 'queued', claimed_by = NULL, claimed_ms = NULL"
           " WHERE id = $1 AND state = 'claimed' AND claimed_by = $2",
           p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = op_why_not(st, id);
    if (rc == PL_OK && (rc = op_eid(st, id, eid)) == PL_OK)
        rc = audit(st, claimer, eid, id, "op.released", NULL);
    return tx_end(st, rc);
}

static int sql_op_mark_sent(void *impl, int64_t id, const char *claimer,
                            const struct pl_eim_op *sent)
{
    struct pl_sql_store *st = impl;
    uint8_t eid[PL_EIM_EID_LEN];
    int64_t changes = 0;
    char detail[64];
    /* The counter must have been reserved for this EID already (never above the device's
     * counter); UNIQUE (eid, counter) forbids two packages with one value. */
    struct pl_sqlv p[] = {v_int(id),
                          v_text(claimer),
                          sent->has_counter ? v_int((int64_t)sent->counter) : v_null(),
                          sent->txid_len ? v_blob(sent->txid, sent->txid_len) : v_blob(NULL, 0),
                          v_blob(sent->package, sent->package_len),
                          v_int(now_ms(st))};
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "UPDATE ops SET state = 'sent', counter = $3, txid = $4, package = $5, sent_ms = $6"
           " WHERE id = $1 AND state = 'claimed' AND claimed_by = $2 AND ($3 IS NULL OR $3 <="
           " (SELECT d.counter FROM devices d WHERE d.eid = ops.eid))",
           p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = op_why_not(st, id);
    if (rc == PL_OK && (rc = op_eid(st, id, eid)) == PL_OK) {
        snprintf(detail, sizeof(detail), "counter=%lld",
                 sent->has_counter ? (long long)sent->counter : -1LL);
        rc = audit(st, claimer, eid, id, "op.sent", detail);
    }
    return tx_end(st, rc);
}

static int sql_op_finish(void *impl, const char *actor, int64_t id, enum pl_eim_op_state to,
                         const uint8_t *result, size_t result_len, const char *outcome)
{
    struct pl_sql_store *st = impl;
    uint8_t eid[PL_EIM_EID_LEN];
    int64_t changes = 0;
    char detail[160], event[32];
    const char *from =
        to == PL_EIM_OPS_REQUERY ? "('sent')" : "('queued', 'claimed', 'sent', 'requery')";
    char sql[256];
    struct pl_sqlv p[] = {v_int(id), v_text(pl_eim_op_state_name(to)), v_blob(result, result_len),
                          v_text(outcome), v_int(now_ms(st))};
    int rc = PL_ERR_INTERNAL;
    int w = snprintf(sql, sizeof(sql),
                     "UPDATE ops SET state = $2, result = COALESCE($3, result), outcome = $4,"
                     " done_ms = $5 WHERE id = $1 AND state IN %s",
                     from);
    if (w < 0 || (size_t)w >= sizeof(sql))
        return PL_ERR_INTERNAL;
    if ((rc = tx_begin(st)) != PL_OK)
        return rc;
    rc = q(st, sql, p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = op_why_not(st, id);
    if (rc == PL_OK && (rc = op_eid(st, id, eid)) == PL_OK) {
        snprintf(event, sizeof(event), "op.%s", pl_eim_op_state_name(to));
        snprintf(detail, sizeof(detail), "outcome=%s", outcome ? outcome : "");
        rc = audit(st, actor, eid, id, event, detail);
    }
    return tx_end(st, rc);
}

/* ---- notifications ---- */

static int sql_notif_put(void *impl, const struct pl_eim_notification *n, bool *inserted)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    int64_t changes = 0;
    char detail[48];
    struct pl_sqlv p[] = {v_blob(n->eid, PL_EIM_EID_LEN), v_int((int64_t)n->seq),
                          v_blob(n->data, n->len), v_int(now_ms(st))};
    int rc = tx_begin(st);

    *inserted = false;
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "INSERT INTO notifications (eid, seq, data, received_ms, acked)"
           " VALUES ($1, $2, $3, $4, 0) ON CONFLICT DO NOTHING",
           p, NP(p), NULL, &changes);
    if (rc != PL_OK)
        goto out;
    if (changes == 1) {
        *inserted = true;
        snprintf(detail, sizeof(detail), "seq=%u", (unsigned)n->seq);
        rc = audit(st, NULL, n->eid, 0, "notification.received", detail);
        goto out;
    }
    rc = q(st, "SELECT data FROM notifications WHERE eid = $1 AND seq = $2", p, 2, &r, NULL);
    if (rc == PL_OK && !(r.nrows == 1 && cell_eq(&r, 0, 0, n->data, n->len)))
        rc = PL_ERR_EXISTS;
out:
    pl_sql_res_free(&r);
    return tx_end(st, rc);
}

static int sql_notif_ack(void *impl, const uint8_t eid[PL_EIM_EID_LEN], uint32_t seq)
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN), v_int((int64_t)seq)};
    int64_t changes = 0;
    char detail[48];
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st, "UPDATE notifications SET acked = 1 WHERE eid = $1 AND seq = $2", p, NP(p), NULL,
           &changes);
    if (rc == PL_OK && changes != 1)
        rc = PL_ERR_NOT_FOUND;
    if (rc == PL_OK) {
        snprintf(detail, sizeof(detail), "seq=%u", (unsigned)seq);
        rc = audit(st, NULL, eid, 0, "notification.acked", detail);
    }
    return tx_end(st, rc);
}

static int sql_notif_list(void *impl, const uint8_t eid[PL_EIM_EID_LEN], bool unacked_only,
                          struct pl_eim_notification *out, size_t cap, size_t *n)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_blob(eid, PL_EIM_EID_LEN), v_int((int64_t)cap)};
    int rc = q(st,
               unacked_only ? "SELECT seq, data, acked, received_ms FROM notifications"
                              " WHERE eid = $1 AND acked = 0 ORDER BY seq LIMIT $2"
                            : "SELECT seq, data, acked, received_ms FROM notifications"
                              " WHERE eid = $1 ORDER BY seq LIMIT $2",
               p, NP(p), &r, NULL);
    *n = 0;
    if (rc != PL_OK)
        return rc;
    for (size_t i = 0; i < r.nrows && i < cap; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        memcpy(out[i].eid, eid, PL_EIM_EID_LEN);
        out[i].seq = clamp_u32(cell_int(&r, i, 0));
        if ((rc = cell_dup(&r, i, 1, &out[i].data, &out[i].len)) != PL_OK)
            break;
        out[i].acked = cell_int(&r, i, 2) != 0;
        out[i].received_ms = cell_int(&r, i, 3);
        *n = i + 1;
    }
    if (rc != PL_OK) {
        for (size_t i = 0; i < *n; i++)
            pl_eim_notification_clear(&out[i]);
        *n = 0;
    }
    pl_sql_res_free(&r);
    return rc;
}

/* ---- operators, tokens, audit ---- */

static int sql_operator_put(void *impl, const char *actor, const char *name, enum pl_eim_role role)
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_text(name), v_text(pl_eim_role_name(role)), v_int(now_ms(st))};
    char detail[96];
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "INSERT INTO operators (name, role, created_ms) VALUES ($1, $2, $3)"
           " ON CONFLICT (name) DO UPDATE SET role = excluded.role",
           p, NP(p), NULL, NULL);
    if (rc == PL_OK) {
        snprintf(detail, sizeof(detail), "name=%s role=%s", name, pl_eim_role_name(role));
        rc = audit(st, actor, NULL, 0, "operator.put", detail);
    }
    return tx_end(st, rc);
}

static int sql_token_put(void *impl, const char *actor, const char *operator_name,
                         const char *token_id, const uint8_t hash[32])
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_text(token_id), v_text(operator_name), v_blob(hash, 32),
                          v_int(now_ms(st))};
    int64_t changes = 0;
    char detail[96];
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st,
           "INSERT INTO tokens (id, operator, hash, created_ms) SELECT $1, $2, $3, $4"
           " WHERE EXISTS (SELECT 1 FROM operators WHERE name = $2)",
           p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = PL_ERR_NOT_FOUND;
    if (rc == PL_OK) {
        snprintf(detail, sizeof(detail), "operator=%s token=%s", operator_name, token_id);
        rc = audit(st, actor, NULL, 0, "token.create", detail);
    }
    return tx_end(st, rc);
}

static int sql_token_lookup(void *impl, const char *token_id, struct pl_eim_operator *op,
                            uint8_t hash[32])
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_text(token_id)};
    char role[32];
    const struct pl_sqlv *c = NULL;
    int rc = q(st,
               "SELECT o.name, o.role, t.hash FROM tokens t JOIN operators o"
               " ON o.name = t.operator WHERE t.id = $1",
               p, NP(p), &r, NULL);
    if (rc != PL_OK)
        return rc;
    rc = PL_ERR_NOT_FOUND;
    if (r.nrows == 1) {
        cell_copy_str(&r, 0, 0, op->name, sizeof(op->name));
        cell_copy_str(&r, 0, 1, role, sizeof(role));
        c = pl_sql_cell(&r, 0, 2);
        rc = PL_ERR_DB;
        if (pl_eim_role_from_name(role, &op->role) == PL_OK && c->t == PL_SQLV_BLOB
            && c->len == 32) {
            memcpy(hash, c->p, 32);
            rc = PL_OK;
        }
    }
    pl_sql_res_free(&r);
    return rc;
}

static int sql_token_revoke(void *impl, const char *actor, const char *token_id)
{
    struct pl_sql_store *st = impl;
    struct pl_sqlv p[] = {v_text(token_id)};
    int64_t changes = 0;
    char detail[64];
    int rc = tx_begin(st);
    if (rc != PL_OK)
        return rc;
    rc = q(st, "DELETE FROM tokens WHERE id = $1", p, NP(p), NULL, &changes);
    if (rc == PL_OK && changes != 1)
        rc = PL_ERR_NOT_FOUND;
    if (rc == PL_OK) {
        snprintf(detail, sizeof(detail), "token=%s", token_id);
        rc = audit(st, actor, NULL, 0, "token.revoke", detail);
    }
    return tx_end(st, rc);
}

static int sql_audit_list(void *impl, int64_t after_id, struct pl_eim_audit *out, size_t cap,
                          size_t *n)
{
    struct pl_sql_store *st = impl;
    struct pl_sql_res r = {0};
    struct pl_sqlv p[] = {v_int(after_id), v_int((int64_t)cap)};
    int rc = q(st,
               "SELECT id, ts_ms, actor, eid, op_id, event, detail FROM audit WHERE id > $1"
               " ORDER BY id LIMIT $2",
               p, NP(p), &r, NULL);
    *n = 0;
    if (rc != PL_OK)
        return rc;
    for (size_t i = 0; i < r.nrows && i < cap; i++) {
        const struct pl_sqlv *c = pl_sql_cell(&r, i, 3);
        memset(&out[i], 0, sizeof(out[i]));
        out[i].id = cell_int(&r, i, 0);
        out[i].ts_ms = cell_int(&r, i, 1);
        cell_copy_str(&r, i, 2, out[i].actor, sizeof(out[i].actor));
        if (c->t == PL_SQLV_BLOB && c->len == PL_EIM_EID_LEN) {
            out[i].has_eid = true;
            memcpy(out[i].eid, c->p, PL_EIM_EID_LEN);
        }
        out[i].op_id = cell_int(&r, i, 4);
        cell_copy_str(&r, i, 5, out[i].event, sizeof(out[i].event));
        cell_copy_str(&r, i, 6, out[i].detail, sizeof(out[i].detail));
        *n = i + 1;
    }
    pl_sql_res_free(&r);
    return rc;
}

const struct pl_eim_store_ops pl_eim_sql_ops = {
    .name = "sql", /* the driver's name is given to pl_eim_store_wrap */
    .close = sql_close,
    .last_error = sql_last_error,
    .store_id = sql_store_id,
    .device_put = sql_device_put,
    .device_put_many = sql_device_put_many,
    .device_get = sql_device_get,
    .device_find_psk = sql_device_find_psk,
    .device_update = sql_device_update,
    .device_delete = sql_device_delete,
    .device_list = sql_device_list,
    .reserve_counter = sql_reserve_counter,
    .counter_recover = sql_counter_recover,
    .bucket_seqs = sql_bucket_seqs,
    .op_enqueue = sql_op_enqueue,
    .op_get = sql_op_get,
    .op_list = sql_op_list,
    .op_claim = sql_op_claim,
    .op_release = sql_op_release,
    .op_mark_sent = sql_op_mark_sent,
    .op_finish = sql_op_finish,
    .notif_put = sql_notif_put,
    .notif_ack = sql_notif_ack,
    .notif_list = sql_notif_list,
    .operator_put = sql_operator_put,
    .token_put = sql_token_put,
    .token_lookup = sql_token_lookup,
    .token_revoke = sql_token_revoke,
    .audit_list = sql_audit_list,
};
