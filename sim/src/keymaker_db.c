/* Reference Key Maker (SM-DPf): the SQLite state, the profile inventory and the read-only
 * views. GSMA SGP.41 v1.0 (SM-DPf Profile Package storage, OTK registry: GENS08),
 * reference/IFPP.md §6.1 (registry FREE -> BOUND -> CONSUMED | VOID), §6.3 (package
 * reconciliation), docs/station-keymaker-protocol.md §6 (package state machine). */
#define _POSIX_C_SOURCE 200809L
#include "keymaker_internal.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/secret.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- schema ---- */

/* One package per OTK, ever: UNIQUE(eid, otk_id) on package, and otk.package_id UNIQUE.
 * The state checks in keymaker_handle.c come first; these constraints are the second
 * line of defence (GENS08, IFPP.md §7 case 4). */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');"
    "CREATE TABLE IF NOT EXISTS profile("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " iccid BLOB NOT NULL UNIQUE CHECK(length(iccid) = 10),"
    " sha256 BLOB NOT NULL UNIQUE CHECK(length(sha256) = 32),"
    " upp BLOB NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'available'"
    "  CHECK(state IN ('available', 'reserved', 'installed')),"
    " added_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS euicc("
    " eid BLOB PRIMARY KEY CHECK(length(eid) = 16),"
    " cert_euicc BLOB NOT NULL,"
    " cert_eum BLOB NOT NULL,"
    " curve INTEGER NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " deletion_counter INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS otk("
    " eid BLOB NOT NULL REFERENCES euicc(eid),"
    " otk_id INTEGER NOT NULL CHECK(otk_id BETWEEN 1 AND 65535),"
    " otpk BLOB NOT NULL CHECK(length(otpk) = 65),"
    " sig BLOB NOT NULL CHECK(length(sig) = 64),"
    " state TEXT NOT NULL CHECK(state IN ('FREE', 'BOUND', 'CONSUMED', 'VOID')),"
    " package_id BLOB UNIQUE,"
    " uploaded_by TEXT NOT NULL,"
    " uploaded_at INTEGER NOT NULL,"
    " PRIMARY KEY(eid, otk_id),"
    " CHECK(state <> 'FREE' OR package_id IS NULL),"
    " CHECK(state <> 'BOUND' OR package_id IS NOT NULL));"
    "CREATE TABLE IF NOT EXISTS lease("
    " lease_id BLOB PRIMARY KEY CHECK(length(lease_id) = 16),"
    " station TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " expiry INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS package("
    " package_id BLOB PRIMARY KEY CHECK(length(package_id) = 16),"
    " eid BLOB NOT NULL,"
    " otk_id INTEGER NOT NULL,"
    " transaction_id BLOB NOT NULL UNIQUE,"
    " profile_id INTEGER NOT NULL REFERENCES profile(id),"
    " station TEXT NOT NULL,"
    " lease_id BLOB NOT NULL REFERENCES lease(lease_id),"
    " state TEXT NOT NULL"
    "  CHECK(state IN ('issued', 'installed', 'failed', 'possibly-used')),"
    " envelope BLOB NOT NULL,"
    " km_seq INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " expiry INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " acked_at INTEGER,"
    " settled_at INTEGER,"
    " pir BLOB,"
    " fpa_code INTEGER,"
    " fpa_detail TEXT,"
    " UNIQUE(eid, otk_id),"
    " FOREIGN KEY(eid, otk_id) REFERENCES otk(eid, otk_id));"
    "CREATE TABLE IF NOT EXISTS station("
    " key TEXT PRIMARY KEY,"
    " name TEXT NOT NULL DEFAULT '',"
    " last_seq INTEGER NOT NULL DEFAULT 0,"
    " km_seq INTEGER NOT NULL DEFAULT 0,"
    " pkg_seq INTEGER NOT NULL DEFAULT 0,"
    " last_hello INTEGER);"
    "CREATE TABLE IF NOT EXISTS dedup("
    " station TEXT NOT NULL,"
    " msg_id BLOB NOT NULL CHECK(length(msg_id) = 16),"
    " req_sha256 BLOB NOT NULL,"
    " reply BLOB NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(station, msg_id));"
    "CREATE TABLE IF NOT EXISTS deletion_token("
    " eid BLOB NOT NULL REFERENCES euicc(eid),"
    " counter INTEGER NOT NULL,"
    " station TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " PRIMARY KEY(eid, counter));"
    "CREATE TABLE IF NOT EXISTS event("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " station TEXT,"
    " kind TEXT NOT NULL,"
    " package_id BLOB,"
    " detail TEXT);"
    /* Audit checkpoints signed for stations (IFPP.md §6.3): one head per (station, chain,
     * seq), the evidence a rewritten station trail is compared with. */
    "CREATE TABLE IF NOT EXISTS audit_checkpoint("
    " station TEXT NOT NULL,"
    " chain_id BLOB NOT NULL CHECK(length(chain_id) = 16),"
    " seq INTEGER NOT NULL CHECK(seq >= 0),"
    " h BLOB NOT NULL CHECK(length(h) = 32),"
    " sig BLOB NOT NULL CHECK(length(sig) = 64),"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY(station, chain_id, seq));"
    "CREATE INDEX IF NOT EXISTS package_state ON package(state);";

int pl_km_db_schema(struct pl_km *km)
{
    char *msg = NULL;
    if (sqlite3_exec(km->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_schema_failed error=\"%s\"", msg ? msg : "?");
        sqlite3_free(msg);
        return PL_ERR_DB;
    }
    return PL_OK;
}

/* ---- helpers ---- */

time_t pl_km_now(const struct pl_km *km)
{
    return km->clock ? km->clock(km->clock_user) : time(NULL);
}

void pl_km_logf(const struct pl_km *km, enum pl_km_log_level level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (km == NULL || km->log == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    km->log(km->log_user, level, line);
}

const char *pl_km_hex(const uint8_t *p, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    if (cap == 0)
        return out;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        out[o++] = digits[p[i] >> 4];
        out[o++] = digits[p[i] & 0x0Fu];
    }
    out[o] = '\0';
    return out;
}

static int bind_va(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int idx = 1;
    for (const char *f = fmt; f && *f; f++, idx++) {
        int r = SQLITE_ERROR;
        switch (*f) {
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            if (n > (size_t)INT32_MAX)
                return PL_ERR_DB;
            r = p ? sqlite3_bind_blob(st, idx, p, (int)n, SQLITE_TRANSIENT)
                  : sqlite3_bind_null(st, idx);
            break;
        }
        case 'i':
            r = sqlite3_bind_int64(st, idx, (sqlite3_int64)va_arg(ap, int64_t));
            break;
        case 't': {
            const char *s = va_arg(ap, const char *);
            r = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT)
                  : sqlite3_bind_null(st, idx);
            break;
        }
        case 'n':
            r = sqlite3_bind_null(st, idx);
            break;
        default:
            return PL_ERR_INTERNAL;
        }
        if (r != SQLITE_OK)
            return PL_ERR_DB;
    }
    return PL_OK;
}

static int prepare_va(struct pl_km *km, sqlite3_stmt **st, const char *sql, const char *fmt,
                      va_list ap)
{
    int rc = PL_ERR_INTERNAL;
    *st = NULL;
    if (sqlite3_prepare_v2(km->db, sql, -1, st, NULL) != SQLITE_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_prepare_failed error=\"%s\"",
                   sqlite3_errmsg(km->db));
        return PL_ERR_DB;
    }
    if ((rc = bind_va(*st, fmt, ap))) {
        sqlite3_finalize(*st);
        *st = NULL;
    }
    return rc;
}

int pl_km_db_prepare(struct pl_km *km, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = prepare_va(km, st, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int pl_km_db_exec(struct pl_km *km, int *changes, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    int rc = PL_ERR_INTERNAL;

    va_start(ap, fmt);
    rc = prepare_va(km, &st, sql, fmt, ap);
    va_end(ap);
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = PL_OK;
        if (changes)
            *changes = sqlite3_changes(km->db);
    } else if ((r & 0xFF) == SQLITE_CONSTRAINT) {
        rc = PL_ERR_EXISTS;
    } else {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_step_failed error=\"%s\"",
                   sqlite3_errmsg(km->db));
        rc = PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Prepares and runs to the first row: PL_OK (a row), PL_ERR_NOT_FOUND (none), PL_ERR_DB. */
static int row_va(struct pl_km *km, sqlite3_stmt **st, const char *sql, const char *fmt,
                  va_list ap)
{
    int rc = prepare_va(km, st, sql, fmt, ap);
    if (rc)
        return rc;
    int r = sqlite3_step(*st);
    if (r == SQLITE_ROW)
        return PL_OK;
    return r == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
}

int pl_km_db_row(struct pl_km *km, sqlite3_stmt **st, const char *sql, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = row_va(km, st, sql, fmt, ap);
    va_end(ap);
    return rc;
}

int pl_km_db_int(struct pl_km *km, int64_t *v, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;

    va_start(ap, fmt);
    int rc = row_va(km, &st, sql, fmt, ap);
    va_end(ap);
    if (rc == PL_OK)
        *v = (int64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int pl_km_db_begin(struct pl_km *km)
{
    /* IMMEDIATE: take the write lock now, so a read-then-write check (the OTK is FREE,
     * then bind it) cannot race another writer. */
    return sqlite3_exec(km->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? PL_OK
                                                                                  : PL_ERR_DB;
}

int pl_km_db_commit(struct pl_km *km)
{
    if (sqlite3_exec(km->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_commit_failed error=\"%s\"",
                   sqlite3_errmsg(km->db));
        pl_km_db_rollback(km);
        return PL_ERR_DB;
    }
    return PL_OK;
}

void pl_km_db_rollback(struct pl_km *km)
{
    if (!sqlite3_get_autocommit(km->db))
        (void)sqlite3_exec(km->db, "ROLLBACK", NULL, NULL, NULL);
}

int pl_km_db_col_fixed(sqlite3_stmt *st, int col, void *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (p == NULL || len < 0 || (size_t)len != n)
        return PL_ERR_DB;
    memcpy(out, p, n);
    return PL_OK;
}

int pl_km_db_col_wr(sqlite3_stmt *st, int col, struct pl_wr *w)
{
    const void *p = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (len < 0 || (p == NULL && len != 0))
        return PL_ERR_DB;
    pl_wr_bytes(w, p, (size_t)len);
    return pl_wr_status(w);
}

static const char *const PKG_STATES[] = {NULL, "issued", "installed", "failed", "possibly-used"};
static const char *const OTK_STATES[] = {NULL, "FREE", "BOUND", "CONSUMED", "VOID"};

const char *pl_km_pkg_state_db(int state)
{
    return (state >= 1 && state <= 4) ? PKG_STATES[state] : "unknown";
}

int pl_km_pkg_state_from_db(const unsigned char *s)
{
    for (int i = 1; s && i <= 4; i++)
        if (strcmp((const char *)s, PKG_STATES[i]) == 0)
            return i;
    return 0;
}

const char *pl_km_otk_state_db(int state)
{
    return (state >= 1 && state <= 4) ? OTK_STATES[state] : "unknown";
}

const char *pl_km_otk_state_name(int state)
{
    return pl_km_otk_state_db(state);
}

int pl_km_otk_state_from_db(const unsigned char *s)
{
    for (int i = 1; s && i <= 4; i++)
        if (strcmp((const char *)s, OTK_STATES[i]) == 0)
            return i;
    return 0;
}

/* ---- lifecycle ---- */

void pl_km_config_init(struct pl_km_config *c)
{
    memset(c, 0, sizeof(*c));
}

static char *dup_or(const char *s, const char *def)
{
    const char *src = s ? s : def;
    size_t n = strlen(src);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, src, n + 1);
    return d;
}

static int open_db(struct pl_km *km, const char *path, int flags)
{
    if (sqlite3_open_v2(path, &km->db, flags, NULL) != SQLITE_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_open_failed path=\"%s\" error=\"%s\"", path,
                   km->db ? sqlite3_errmsg(km->db) : "out of memory");
        return PL_ERR_DB;
    }
    sqlite3_extended_result_codes(km->db, 1);
    (void)sqlite3_busy_timeout(km->db, 5000);
    return PL_OK;
}

int pl_km_open(const struct pl_km_config *cfg, struct pl_km **out)
{
    struct pl_km *km = NULL;
    int rc = PL_ERR_INTERNAL;
    char *msg = NULL;

    if (cfg == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (cfg->db_path == NULL || cfg->pki_dir == NULL)
        return PL_ERR_CONFIG;
    km = calloc(1, sizeof(*km));
    if (km == NULL)
        return PL_ERR_NOMEM;
    km->log = cfg->log;
    km->log_user = cfg->log_user;
    km->clock = cfg->clock;
    km->clock_user = cfg->clock_user;
    km->rng = cfg->rng ? *cfg->rng : PL_RNG_SYSTEM;
    km->lease_seconds = cfg->lease_seconds ? cfg->lease_seconds : 3600u;
    km->package_seconds = cfg->package_seconds ? cfg->package_seconds : 7u * 86400u;
    km->rsk = cfg->replace_session_keys;
    km->db_path = dup_or(cfg->db_path, "");
    km->keymaker_id = dup_or(cfg->keymaker_id, "provline-keymaker");
    km->batch_id = dup_or(cfg->batch_id, "provline");
    km->spn = dup_or(cfg->spn, "provline lab");
    if (!km->db_path || !km->keymaker_id || !km->batch_id || !km->spn) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (km->batch_id[0] == '\0' || strlen(km->batch_id) > 64u || strlen(km->spn) > 32u) {
        rc = PL_ERR_CONFIG;
        goto out;
    }

    if ((rc = pl_pki_load(cfg->pki_dir, &km->pki))) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=pki_load_failed dir=\"%s\" error=\"%s\"",
                   cfg->pki_dir, pl_strerror(rc));
        goto out;
    }
    km->ci = pl_pki_cert(km->pki, PL_PKI_CI);
    km->dpf = pl_pki_cert(km->pki, PL_PKI_DPF);
    km->dpf_key = pl_pki_key(km->pki, PL_PKI_DPF);
    km->curve = pl_pki_curve(km->pki);
    if (!km->ci || !km->dpf || !km->dpf_key || pl_eckey_curve(km->dpf_key) != km->curve) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    /* The binding certificate must verify to our own CI, or no eUICC will accept it. */
    if ((rc = pl_cert_verify_chain(km->dpf, NULL, 0, km->ci, PL_CERT_ROLE_DPPB, pl_km_now(km)))) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=dpf_chain_invalid error=\"%s\"", pl_strerror(rc));
        goto out;
    }

    if ((rc = open_db(km, km->db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)))
        goto out;
    /* WAL + synchronous=FULL: a reply is only sent after its transaction is on disk. */
    if (sqlite3_exec(km->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                     NULL, NULL, &msg)
        != SQLITE_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=db_pragma_failed error=\"%s\"", msg ? msg : "?");
        sqlite3_free(msg);
        rc = PL_ERR_DB;
        goto out;
    }
    if ((rc = pl_km_db_schema(km)))
        goto out;
    pl_km_logf(km, PL_KM_LOG_INFO, "event=keymaker_open db=\"%s\" curve=%s id=\"%s\"", km->db_path,
               pl_curve_name(km->curve), km->keymaker_id);
    *out = km;
    km = NULL;
    rc = PL_OK;
out:
    pl_km_close(km);
    return rc;
}

void pl_km_close(struct pl_km *km)
{
    if (km == NULL)
        return;
    if (km->db)
        sqlite3_close_v2(km->db);
    pl_pki_free(km->pki); /* zeroises the private keys */
    free(km->db_path);
    free(km->keymaker_id);
    free(km->batch_id);
    free(km->spn);
    pl_memzero(km, sizeof(*km));
    free(km);
}

/* ---- inventory ---- */

int pl_km_add_profile(struct pl_km *km, const char *name, const uint8_t *upp, size_t len)
{
    uint8_t iccid[PL_ICCID_LEN];
    uint8_t digest[PL_SHA256_LEN];
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || name == NULL || upp == NULL)
        return PL_ERR_INVAL;
    if (len == 0 || len > PL_KM_UPP_MAX)
        return PL_ERR_OVERFLOW;
    if ((rc = pl_upp_iccid(upp, len, iccid)))
        return rc;
    if ((rc = pl_sha256(upp, len, digest)))
        return rc;
    rc = pl_km_db_exec(km, NULL,
                       "INSERT INTO profile(name, iccid, sha256, upp, added_at) "
                       "VALUES(?, ?, ?, ?, ?)",
                       "tbbbi", name, iccid, sizeof(iccid), digest, sizeof(digest), upp, len,
                       (int64_t)pl_km_now(km));
    if (rc == PL_OK) {
        char text[PL_ICCID_TEXT_MAX];
        pl_iccid_text(iccid, text);
        pl_km_logf(km, PL_KM_LOG_INFO, "event=profile_added name=\"%s\" iccid=%s bytes=%zu", name,
                   text, len);
    }
    return rc;
}

static uint8_t *read_small_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0;

    if (f == NULL)
        return NULL;
    buf = malloc(max + 1);
    if (buf)
        n = fread(buf, 1, max + 1, f);
    if (ferror(f) || n > max) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

int pl_km_load_profiles(struct pl_km *km, const char *dir, unsigned *added, unsigned *skipped)
{
    DIR *d = NULL;
    struct dirent *e;
    unsigned nadd = 0, nskip = 0;
    char path[4096];
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || dir == NULL)
        return PL_ERR_INVAL;
    d = opendir(dir);
    if (d == NULL) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=profiles_dir_unreadable dir=\"%s\"", dir);
        return PL_ERR_IO;
    }
    /* Sorted order so the inventory (and thus which ICCID a package gets) is reproducible. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".der") != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL) {
                rc = PL_ERR_NOMEM;
                goto out;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = dup_or(e->d_name, "");
        if (names[n] == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    /* One transaction for the whole directory: one fsync instead of one per profile. */
    if ((rc = pl_km_db_begin(km)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        size_t len = 0;
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof(path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            nskip++;
            continue;
        }
        uint8_t *upp = read_small_file(path, PL_KM_UPP_MAX, &len);
        int r = upp ? pl_km_add_profile(km, names[i], upp, len) : PL_ERR_OVERFLOW;
        free(upp);
        if (r == PL_OK) {
            nadd++;
        } else {
            nskip++;
            pl_km_logf(km, r == PL_ERR_EXISTS ? PL_KM_LOG_DEBUG : PL_KM_LOG_WARN,
                       "event=profile_skipped file=\"%s\" reason=\"%s\"", names[i],
                       r == PL_ERR_EXISTS ? "ICCID or content already in the inventory"
                                          : pl_strerror(r));
        }
    }
    rc = pl_km_db_commit(km);
out:
    pl_km_db_rollback(km); /* no-op after a commit */
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    if (added)
        *added = nadd;
    if (skipped)
        *skipped = nskip;
    return rc;
}

/* ---- reconciliation: lease expiry ---- */

int pl_km_expire(struct pl_km *km, unsigned *n)
{
    int changes = 0;
    int rc = PL_ERR_INTERNAL;
    int64_t now = (int64_t)pl_km_now(km);

    if (n)
        *n = 0;
    if ((rc = pl_km_db_begin(km)))
        return rc;
    /* An issued package whose lease ran out without any report stays loadable on its one
     * chip: it is "possibly used" until a signed PIR or a deletion receipt settles it. */
    if ((rc = pl_km_db_exec(km, NULL,
                            "INSERT INTO event(at, station, kind, package_id, detail) "
                            "SELECT ?, station, 'lease_expired', package_id, NULL FROM package "
                            "WHERE state = 'issued' AND expiry < ?",
                            "ii", now, now)))
        goto fail;
    if ((rc = pl_km_db_exec(km, &changes,
                            "UPDATE package SET state = 'possibly-used' "
                            "WHERE state = 'issued' AND expiry < ?",
                            "i", now)))
        goto fail;
    if ((rc = pl_km_db_commit(km)))
        return rc;
    if (changes > 0)
        pl_km_logf(km, PL_KM_LOG_INFO, "event=leases_expired packages=%d state=possibly-used",
                   changes);
    if (n)
        *n = (unsigned)changes;
    return PL_OK;
fail:
    pl_km_db_rollback(km);
    return rc;
}

/* ---- views ---- */

static int count_into(struct pl_km *km, unsigned *dst, const char *sql)
{
    int64_t v = 0;
    int rc = pl_km_db_int(km, &v, sql, "");
    if (rc == PL_ERR_NOT_FOUND)
        v = 0;
    else if (rc)
        return rc;
    *dst = (unsigned)v;
    return PL_OK;
}

int pl_km_stats(struct pl_km *km, struct pl_km_stats *out)
{
    static const struct {
        size_t off;
        const char *sql;
    } q[] = {
        {offsetof(struct pl_km_stats, profiles_available),
         "SELECT count(*) FROM profile WHERE state = 'available'"},
        {offsetof(struct pl_km_stats, profiles_reserved),
         "SELECT count(*) FROM profile WHERE state = 'reserved'"},
        {offsetof(struct pl_km_stats, profiles_installed),
         "SELECT count(*) FROM profile WHERE state = 'installed'"},
        {offsetof(struct pl_km_stats, euiccs), "SELECT count(*) FROM euicc"},
        {offsetof(struct pl_km_stats, otk_free), "SELECT count(*) FROM otk WHERE state = 'FREE'"},
        {offsetof(struct pl_km_stats, otk_bound), "SELECT count(*) FROM otk WHERE state = 'BOUND'"},
        {offsetof(struct pl_km_stats, otk_consumed),
         "SELECT count(*) FROM otk WHERE state = 'CONSUMED'"},
        {offsetof(struct pl_km_stats, otk_void), "SELECT count(*) FROM otk WHERE state = 'VOID'"},
        {offsetof(struct pl_km_stats, pkg_issued),
         "SELECT count(*) FROM package WHERE state = 'issued'"},
        {offsetof(struct pl_km_stats, pkg_installed),
         "SELECT count(*) FROM package WHERE state = 'installed'"},
        {offsetof(struct pl_km_stats, pkg_failed),
         "SELECT count(*) FROM package WHERE state = 'failed'"},
        {offsetof(struct pl_km_stats, pkg_possibly_used),
         "SELECT count(*) FROM package WHERE state = 'possibly-used'"},
        {offsetof(struct pl_km_stats, stations), "SELECT count(*) FROM station"},
        {offsetof(struct pl_km_stats, dedup_entries), "SELECT count(*) FROM dedup"},
        {offsetof(struct pl_km_stats, deletion_tokens), "SELECT count(*) FROM deletion_token"},
        {offsetof(struct pl_km_stats, audit_checkpoints), "SELECT count(*) FROM audit_checkpoint"},
    };
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        unsigned *dst = (unsigned *)(void *)((char *)out + q[i].off);
        if ((rc = count_into(km, dst, q[i].sql)))
            return rc;
    }
    return PL_OK;
}

int pl_km_stats_file(const char *db_path, struct pl_km_stats *out)
{
    struct pl_km tmp;
    int rc = PL_ERR_INTERNAL;

    if (db_path == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(&tmp, 0, sizeof(tmp));
    if ((rc = open_db(&tmp, db_path, SQLITE_OPEN_READONLY)))
        goto out;
    rc = pl_km_stats(&tmp, out);
out:
    if (tmp.db)
        sqlite3_close_v2(tmp.db);
    return rc;
}

int pl_km_otk_state(struct pl_km *km, const uint8_t eid[16], uint16_t otk_id, int *state)
{
    sqlite3_stmt *st = NULL;
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || eid == NULL || state == NULL)
        return PL_ERR_INVAL;
    rc = pl_km_db_row(km, &st, "SELECT state FROM otk WHERE eid = ? AND otk_id = ?", "bi", eid,
                      (size_t)16, (int64_t)otk_id);
    if (rc == PL_OK) {
        *state = pl_km_otk_state_from_db(sqlite3_column_text(st, 0));
        rc = *state ? PL_OK : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_km_package_state(struct pl_km *km, const uint8_t package_id[16], int *state)
{
    sqlite3_stmt *st = NULL;
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || package_id == NULL || state == NULL)
        return PL_ERR_INVAL;
    rc = pl_km_db_row(km, &st, "SELECT state FROM package WHERE package_id = ?", "b", package_id,
                      (size_t)16);
    if (rc == PL_OK) {
        *state = pl_km_pkg_state_from_db(sqlite3_column_text(st, 0));
        rc = *state ? PL_OK : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}
