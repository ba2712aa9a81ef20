/* The station's write-ahead package journal (journal.h).
 * Sources: reference/IFPP.md §6.3, §7 cases 7-9, 20; ARCHITECTURE.md §2, §5;
 * docs/station-keymaker-protocol.md §4 rule 4, §6.3; SQLite 3.40 (WAL, synchronous=FULL:
 * https://www.sqlite.org/pragma.html#pragma_synchronous, "FULL ... the WAL file is synced
 * before each transaction commit"); POSIX.1-2017 fsync(), rename() for the sealed files. */
#define _POSIX_C_SOURCE 200809L
#include "provline/station/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "provline/protocol/hex.h"
#include "provline/protocol/iccid.h"
#include "utc_text.h"
#include "provline/protocol/secret.h"

#define BUSY_MS 10000
#define PL_J_PATH_MAX 1024

struct pl_journal {
    sqlite3 *db;
    char *pkg_dir; /* NULL for read-only */
    struct pl_clock_ops clock;
    bool ro;
    bool has_certs;   /* device.euicc_cert/eum_cert exist (schema 2); false in an old
                       * journal opened read-only */
    bool has_receipt; /* device.receipt/receipt_acked exist (schema 2), likewise */
};

static const char *const state_names[PL_J_STATE_COUNT] = {
    "?", "LEASED", "DISPATCHED", "LOADING", "RESULT", "REPORTED", "ACKED", "NOTIFIED",
};

const char *pl_journal_state_name(int state)
{
    return state > 0 && state < (int)PL_J_STATE_COUNT ? state_names[state] : "?";
}

const char *pl_journal_outcome_name(int outcome)
{
    switch (outcome) {
    case PL_JO_NONE: return "none";
    case PL_JO_PIR: return "pir";
    case PL_JO_FPA_ERROR: return "fpa_error";
    case PL_JO_RELEASED: return "released";
    }
    return "?";
}

const char *pl_journal_device_state_name(int state)
{
    static const char *const names[] = {"?",      "IDENTIFIED", "INSTALLED", "CLOSING",
                                        "CLOSED", "EIM_SENT",   "DONE",      "FAILED"};
    return state > 0 && state < 8 ? names[state] : "?";
}

bool pl_journal_allowed(int from, int to)
{
    switch (from) {
    case PL_J_LEASED: return to == PL_J_DISPATCHED || to == PL_J_RESULT;
    case PL_J_DISPATCHED: return to == PL_J_LOADING || to == PL_J_LEASED || to == PL_J_RESULT;
    case PL_J_LOADING: return to == PL_J_RESULT || to == PL_J_LEASED;
    case PL_J_RESULT: return to == PL_J_RESULT || to == PL_J_REPORTED;
    case PL_J_REPORTED: return to == PL_J_REPORTED || to == PL_J_ACKED;
    case PL_J_ACKED: return to == PL_J_NOTIFIED || to == PL_J_RESULT;
    default: return false;
    }
}

static uint64_t now_ms(const struct pl_journal *j)
{
    return j->clock.now_ms != NULL ? j->clock.now_ms(j->clock.user) : pl_clock_realtime_ms(NULL);
}

/* ------------------------------------------------------------- files on disk ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = PL_OK;
    if (fd < 0)
        return PL_ERR_IO;
    if (fsync(fd) != 0)
        rc = PL_ERR_IO;
    close(fd);
    return rc;
}

static int pkg_path(const struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const char *ext,
                    char *out, size_t cap)
{
    char hex[2 * PL_J_ID_LEN + 1];
    int n;
    if (pl_hex_encode(id, PL_J_ID_LEN, hex, sizeof(hex)) != PL_OK)
        return PL_ERR_INTERNAL;
    n = snprintf(out, cap, "%s/%s%s", j->pkg_dir, hex, ext);
    return n > 0 && (size_t)n < cap ? PL_OK : PL_ERR_OVERFLOW;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return PL_ERR_IO;
        }
        p += (size_t)w;
        n -= (size_t)w;
    }
    return PL_OK;
}

/* Durable: temp file, fsync, rename, fsync of the directory. */
static int write_envelope(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const uint8_t *env,
                          size_t len)
{
    char tmp[PL_J_PATH_MAX], path[PL_J_PATH_MAX];
    int rc = PL_ERR_INTERNAL, fd = -1;

    if ((rc = pkg_path(j, id, ".tmp", tmp, sizeof(tmp))) != PL_OK
        || (rc = pkg_path(j, id, ".pkg", path, sizeof(path))) != PL_OK)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return PL_ERR_IO;
    if ((rc = write_all(fd, env, len)) != PL_OK || fsync(fd) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    rc = fsync_dir(j->pkg_dir);
out:
    if (fd >= 0)
        close(fd);
    if (rc != PL_OK)
        (void)unlink(tmp);
    return rc;
}

/* Overwrites the whole file with zeros, fsyncs, unlinks, fsyncs the directory. A missing
 * file is not an error (a purge interrupted after the unlink). */
static int shred_file(const char *dir, const char *path)
{
    static const uint8_t zeros[4096];
    struct stat st;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = PL_OK;

    if (fd < 0)
        return errno == ENOENT ? PL_OK : PL_ERR_IO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return PL_ERR_IO;
    }
    for (off_t left = st.st_size; left > 0 && rc == PL_OK;) {
        size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
        rc = write_all(fd, zeros, n);
        left -= (off_t)n;
    }
    if (rc == PL_OK && fsync(fd) != 0)
        rc = PL_ERR_IO;
    close(fd);
    if (rc != PL_OK)
        return rc;
    if (unlink(path) != 0 && errno != ENOENT)
        return PL_ERR_IO;
    return fsync_dir(dir);
}

/* ------------------------------------------------------------------- sqlite ---- */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS package("
    " package_id BLOB PRIMARY KEY CHECK(length(package_id) = 16),"
    " lease_id BLOB NOT NULL, eid BLOB NOT NULL CHECK(length(eid) = 16),"
    " otk_id INTEGER NOT NULL, tid BLOB NOT NULL, iccid BLOB, batch_id TEXT NOT NULL,"
    " lease_expiry INTEGER NOT NULL, not_after INTEGER NOT NULL, prefetched INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK(state BETWEEN 1 AND 7), fixture TEXT, eid_read BLOB,"
    " load_request_id INTEGER, outcome INTEGER NOT NULL DEFAULT 0, pir BLOB,"
    " pir_success INTEGER, fpa_code INTEGER, detail TEXT, report_msg_id BLOB,"
    " report_seq INTEGER, report_audit BLOB, km_accepted INTEGER NOT NULL DEFAULT -1,"
    " km_code INTEGER, km_state INTEGER, notif_status INTEGER,"
    " purged INTEGER NOT NULL DEFAULT 0, t1 INTEGER, t2 INTEGER, t3 INTEGER, t4 INTEGER,"
    " t5 INTEGER, t6 INTEGER, t7 INTEGER, t_purged INTEGER);"
    "CREATE UNIQUE INDEX IF NOT EXISTS package_tid ON package(tid);"
    "CREATE INDEX IF NOT EXISTS package_eid ON package(eid);"
    "CREATE TABLE IF NOT EXISTS transition(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " package_id BLOB NOT NULL, from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,"
    " at INTEGER NOT NULL, fixture TEXT, detail TEXT);"
    "CREATE TABLE IF NOT EXISTS device(eid BLOB PRIMARY KEY CHECK(length(eid) = 16),"
    " state INTEGER NOT NULL, fixture TEXT, loads INTEGER NOT NULL, installed BLOB,"
    " token_counter INTEGER NOT NULL DEFAULT 0, detail TEXT, t_first INTEGER NOT NULL,"
    " t_last INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS lease_req(eid BLOB NOT NULL, otk_id INTEGER NOT NULL,"
    " fixture TEXT, msg_id BLOB NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,"
    " PRIMARY KEY(eid, otk_id));"
    "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY AUTOINCREMENT, package_id BLOB,"
    " fixture TEXT, at INTEGER NOT NULL, text TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(k, v) VALUES('schema', 1);";

/* The schema above is version 1 and is never changed; later versions are migrations run
 * at every read-write open, each in one transaction with its version bump, so a journal of
 * any earlier version (a station upgraded mid-batch) is brought up to date in place.
 *   2: device.receipt, device.receipt_acked (the eUICC's OTK deletion receipt, kept until
 *      the Key Maker acknowledged it); device.euicc_cert, device.eum_cert (CERT.EUICC /
 *      CERT.EUM captured at Identify, for the eIM's bulk import; docs/eim-api.md "Bulk
 *      import").
 *   3: info(k, v TEXT): the station id of the station that writes the journal (the batch
 *      export names it). */
#define SCHEMA_VERSION 3

static int exec(struct pl_journal *j, const char *sql)
{
    return sqlite3_exec(j->db, sql, NULL, NULL, NULL) == SQLITE_OK ? PL_OK : PL_ERR_DB;
}

static int prep(struct pl_journal *j, const char *sql, sqlite3_stmt **st)
{
    return sqlite3_prepare_v2(j->db, sql, -1, st, NULL) == SQLITE_OK ? PL_OK : PL_ERR_DB;
}

static int begin(struct pl_journal *j)
{
    return exec(j, "BEGIN IMMEDIATE");
}

static int commit(struct pl_journal *j)
{
    if (exec(j, "COMMIT") == PL_OK)
        return PL_OK;
    (void)exec(j, "ROLLBACK");
    return PL_ERR_DB;
}

static void rollback(struct pl_journal *j)
{
    (void)exec(j, "ROLLBACK");
}

static int sweep(struct pl_journal *j);

/* Whether table has column (PRAGMA table_info; names are fixed strings of this file). */
static int has_column(struct pl_journal *j, const char *table, const char *column, bool *has)
{
    sqlite3_stmt *st = NULL;
    char sql[128];
    int rc;
    *has = false;
    snprintf(sql, sizeof(sql), "PRAGMA table_info(%s)", table);
    if ((rc = prep(j, sql, &st)) != PL_OK)
        return rc;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = PL_ERR_DB;
            break;
        }
        const unsigned char *name = sqlite3_column_text(st, 1);
        if (name != NULL && strcmp((const char *)name, column) == 0)
            *has = true;
    }
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct pl_journal *j)
{
    uint64_t v = 0;
    bool has = false;
    int rc;

    if ((rc = pl_journal_meta_get(j, "schema", &v)) != PL_OK)
        return rc;
    if (v >= SCHEMA_VERSION) {
        if ((rc = has_column(j, "device", "euicc_cert", &j->has_certs)) != PL_OK)
            return rc;
        return has_column(j, "device", "receipt", &j->has_receipt);
    }
    if ((rc = begin(j)) != PL_OK)
        return rc;
    /* 1 -> 2. The column check makes a migration interrupted before its commit (it then
     * left nothing) or run twice harmless. 2 -> 3: IF NOT EXISTS, likewise. */
    if ((rc = has_column(j, "device", "euicc_cert", &has)) != PL_OK
        || (!has && (rc = exec(j, "ALTER TABLE device ADD COLUMN euicc_cert BLOB")) != PL_OK)
        || (rc = has_column(j, "device", "eum_cert", &has)) != PL_OK
        || (!has && (rc = exec(j, "ALTER TABLE device ADD COLUMN eum_cert BLOB")) != PL_OK)
        || (rc = has_column(j, "device", "receipt", &has)) != PL_OK
        || (!has && (rc = exec(j, "ALTER TABLE device ADD COLUMN receipt BLOB")) != PL_OK)
        || (!has
            && (rc = exec(j, "ALTER TABLE device ADD COLUMN receipt_acked INTEGER NOT NULL "
                             "DEFAULT 0")) != PL_OK)
        || (rc = exec(j, "CREATE TABLE IF NOT EXISTS info(k TEXT PRIMARY KEY, v TEXT NOT NULL)"))
               != PL_OK
        || (rc = exec(j, "UPDATE meta SET v = 3 WHERE k = 'schema'")) != PL_OK) {
        rollback(j);
        return rc;
    }
    if ((rc = commit(j)) != PL_OK)
        return rc;
    j->has_certs = true;
    j->has_receipt = true;
    return PL_OK;
}

static int open_common(const char *path, int flags, struct pl_journal **out)
{
    struct pl_journal *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return PL_ERR_NOMEM;
    if (sqlite3_open_v2(path, &j->db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(j->db);
        free(j);
        return PL_ERR_DB;
    }
    sqlite3_busy_timeout(j->db, BUSY_MS);
    *out = j;
    return PL_OK;
}

int pl_journal_open(const char *path, const char *pkg_dir, const struct pl_clock_ops *clock,
                    struct pl_journal **out)
{
    struct pl_journal *j = NULL;
    int rc = PL_ERR_INTERNAL;

    *out = NULL;
    if (path == NULL || pkg_dir == NULL)
        return PL_ERR_INVAL;
    if (mkdir(pkg_dir, 0700) != 0 && errno != EEXIST)
        return PL_ERR_IO;
    if ((rc = open_common(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &j)) != PL_OK)
        return rc;
    if (clock != NULL)
        j->clock = *clock;
    j->pkg_dir = strdup(pkg_dir);
    if (j->pkg_dir == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* WAL + FULL: every COMMIT fsyncs the WAL before it returns (write-ahead). */
    if ((rc = exec(j, "PRAGMA journal_mode=WAL")) != PL_OK
        || (rc = exec(j, "PRAGMA synchronous=FULL")) != PL_OK
        || (rc = exec(j, "PRAGMA secure_delete=ON")) != PL_OK
        || (rc = exec(j, "PRAGMA foreign_keys=ON")) != PL_OK
        || (rc = exec(j, schema)) != PL_OK || (rc = migrate(j)) != PL_OK)
        goto out;
    (void)chmod(path, 0600);
    rc = sweep(j);
out:
    if (rc != PL_OK) {
        pl_journal_close(j);
        return rc;
    }
    *out = j;
    return PL_OK;
}

int pl_journal_open_ro(const char *path, struct pl_journal **out)
{
    struct pl_journal *j = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    *out = NULL;
    if (path == NULL)
        return PL_ERR_INVAL;
    if ((rc = open_common(path, SQLITE_OPEN_READONLY, &j)) != PL_OK)
        return rc;
    j->ro = true;
    /* A file that is not a journal fails here rather than in the first query. */
    if (prep(j, "SELECT v FROM meta WHERE k = 'schema'", &st) != PL_OK
        || sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        pl_journal_close(j);
        return PL_ERR_DB;
    }
    sqlite3_finalize(st);
    /* An old journal is read as it is (never migrated read-only): no certificates, no
     * deletion receipts. */
    if ((rc = has_column(j, "device", "euicc_cert", &j->has_certs)) != PL_OK
        || (rc = has_column(j, "device", "receipt", &j->has_receipt)) != PL_OK) {
        pl_journal_close(j);
        return rc;
    }
    *out = j;
    return PL_OK;
}

void pl_journal_close(struct pl_journal *j)
{
    if (j == NULL)
        return;
    sqlite3_close(j->db);
    free(j->pkg_dir);
    free(j);
}

/* Files in pkg_dir that no unpurged row references: a crash between the file and its row,
 * or a purge interrupted before its row was marked. */
static int sweep(struct pl_journal *j)
{
    DIR *d = opendir(j->pkg_dir);
    struct dirent *e;
    int rc = PL_OK;

    if (d == NULL)
        return PL_ERR_IO;
    while ((e = readdir(d)) != NULL && rc == PL_OK) {
        size_t n = strlen(e->d_name);
        uint8_t id[PL_J_ID_LEN];
        size_t idlen = 0;
        char hex[2 * PL_J_ID_LEN + 1];
        char path[PL_J_PATH_MAX];
        sqlite3_stmt *st = NULL;
        bool live = false;

        if (n != 2 * PL_J_ID_LEN + 4
            || (strcmp(e->d_name + 2 * PL_J_ID_LEN, ".pkg") != 0
                && strcmp(e->d_name + 2 * PL_J_ID_LEN, ".tmp") != 0))
            continue;
        memcpy(hex, e->d_name, 2 * PL_J_ID_LEN);
        hex[2 * PL_J_ID_LEN] = '\0';
        if (pl_hex_decode(hex, id, sizeof(id), &idlen) != PL_OK || idlen != PL_J_ID_LEN)
            continue;
        if (strcmp(e->d_name + 2 * PL_J_ID_LEN, ".pkg") == 0) {
            if ((rc = prep(j, "SELECT 1 FROM package WHERE package_id = ?1 AND purged = 0",
                           &st)) != PL_OK)
                break;
            sqlite3_bind_blob(st, 1, id, (int)sizeof(id), SQLITE_STATIC);
            live = sqlite3_step(st) == SQLITE_ROW;
            sqlite3_finalize(st);
        }
        if (live)
            continue;
        if (snprintf(path, sizeof(path), "%s/%s", j->pkg_dir, e->d_name) >= (int)sizeof(path))
            continue;
        rc = shred_file(j->pkg_dir, path);
    }
    closedir(d);
    return rc;
}

/* --------------------------------------------------------------------- meta ---- */

int pl_journal_meta_get(struct pl_journal *j, const char *key, uint64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc;
    *v = 0;
    if ((rc = prep(j, "SELECT v FROM meta WHERE k = ?1", &st)) != PL_OK)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *v = (uint64_t)sqlite3_column_int64(st, 0);
        rc = PL_OK;
    } else {
        rc = rc == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_meta_raise(struct pl_journal *j, const char *key, uint64_t v)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = prep(j, "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET "
                      "v = max(v, excluded.v)",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* ----------------------------------------------------------------- packages ---- */

#define PKG_COLS                                                                             \
    "package_id, lease_id, eid, otk_id, tid, iccid, batch_id, lease_expiry, not_after,"     \
    " prefetched, state, fixture, eid_read, load_request_id, outcome, pir, pir_success,"    \
    " fpa_code, detail, report_msg_id, report_seq, report_audit, km_accepted, km_code,"     \
    " km_state, notif_status, purged, t1, t2, t3, t4, t5, t6, t7, t_purged"

static void col_blob(sqlite3_stmt *st, int i, uint8_t *dst, size_t cap, size_t *len, bool *has)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    bool ok = p != NULL && n > 0 && (size_t)n <= cap;
    if (ok)
        memcpy(dst, p, (size_t)n);
    if (len != NULL)
        *len = ok ? (size_t)n : 0;
    if (has != NULL)
        *has = ok;
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static void row_read(sqlite3_stmt *st, struct pl_jpkg *r)
{
    bool has;
    memset(r, 0, sizeof(*r));
    col_blob(st, 0, r->package_id, sizeof(r->package_id), NULL, NULL);
    col_blob(st, 1, r->lease_id, sizeof(r->lease_id), NULL, NULL);
    col_blob(st, 2, r->eid, sizeof(r->eid), NULL, NULL);
    r->otk_id = (uint16_t)sqlite3_column_int(st, 3);
    col_blob(st, 4, r->tid, sizeof(r->tid), &r->tid_len, NULL);
    col_blob(st, 5, r->iccid, sizeof(r->iccid), NULL, &r->has_iccid);
    col_text(st, 6, r->batch_id, sizeof(r->batch_id));
    r->lease_expiry = (uint64_t)sqlite3_column_int64(st, 7);
    r->not_after = (uint64_t)sqlite3_column_int64(st, 8);
    r->prefetched = sqlite3_column_int(st, 9) != 0;
    r->state = sqlite3_column_int(st, 10);
    col_text(st, 11, r->fixture, sizeof(r->fixture));
    col_blob(st, 12, r->eid_read, sizeof(r->eid_read), NULL, &r->has_eid_read);
    r->load_request_id = (uint64_t)sqlite3_column_int64(st, 13);
    r->outcome = sqlite3_column_int(st, 14);
    col_blob(st, 15, r->pir, sizeof(r->pir), &r->pir_len, NULL);
    r->pir_success = sqlite3_column_int(st, 16) != 0;
    r->fpa_code = (uint32_t)sqlite3_column_int64(st, 17);
    col_text(st, 18, r->detail, sizeof(r->detail));
    col_blob(st, 19, r->report_msg_id, sizeof(r->report_msg_id), NULL, &r->has_report_ident);
    r->report_seq = (uint64_t)sqlite3_column_int64(st, 20);
    col_blob(st, 21, r->report_audit, sizeof(r->report_audit), NULL, &has);
    r->has_report_audit = has;
    r->km_accepted = sqlite3_column_int(st, 22);
    r->km_code = sqlite3_column_int(st, 23);
    r->km_state = sqlite3_column_int(st, 24);
    r->notif_status = sqlite3_column_type(st, 25) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 25);
    r->purged = sqlite3_column_int(st, 26) != 0;
    for (unsigned s = 1; s < PL_J_STATE_COUNT; s++)
        r->t[s] = (uint64_t)sqlite3_column_int64(st, 26 + (int)s);
    r->t_purged = (uint64_t)sqlite3_column_int64(st, 34);
}

static int get_locked(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], struct pl_jpkg *out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = prep(j, "SELECT " PKG_COLS " FROM package WHERE package_id = ?1", &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, id, PL_J_ID_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        row_read(st, out);
        rc = PL_OK;
    } else {
        rc = rc == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_get(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], struct pl_jpkg *out)
{
    return get_locked(j, id, out);
}

static int add_transition(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], int from, int to,
                          uint64_t at, const char *fixture, const char *detail)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = prep(j, "INSERT INTO transition(package_id, from_state, to_state, at, fixture,"
                      " detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, from);
    sqlite3_bind_int(st, 3, to);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)at);
    if (fixture != NULL && fixture[0] != '\0')
        sqlite3_bind_text(st, 5, fixture, -1, SQLITE_STATIC);
    if (detail != NULL && detail[0] != '\0')
        sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_lease(struct pl_journal *j, const struct pl_jpkg *row, const uint8_t *envelope,
                     size_t len)
{
    sqlite3_stmt *st = NULL;
    struct pl_jpkg cur;
    uint64_t at = now_ms(j);
    int rc = PL_ERR_INTERNAL;

    if (j->ro)
        return PL_ERR_STATE;
    if (envelope == NULL || len == 0 || len > PL_J_ENVELOPE_MAX || row->tid_len == 0
        || row->tid_len > PL_J_TID_MAX)
        return PL_ERR_INVAL;
    if (get_locked(j, row->package_id, &cur) == PL_OK)
        return PL_ERR_EXISTS;
    /* The sealed file first: a row never names a file that is not on disk. */
    if ((rc = write_envelope(j, row->package_id, envelope, len)) != PL_OK)
        return rc;
    if ((rc = begin(j)) != PL_OK)
        return rc;
    if ((rc = prep(j, "INSERT INTO package(package_id, lease_id, eid, otk_id, tid, iccid,"
                      " batch_id, lease_expiry, not_after, prefetched, state, t1)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11)",
                   &st)) != PL_OK)
        goto fail;
    sqlite3_bind_blob(st, 1, row->package_id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, row->lease_id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, row->eid, PL_J_EID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, row->otk_id);
    sqlite3_bind_blob(st, 5, row->tid, (int)row->tid_len, SQLITE_STATIC);
    if (row->has_iccid)
        sqlite3_bind_blob(st, 6, row->iccid, PL_J_ICCID_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, row->batch_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)row->lease_expiry);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)row->not_after);
    sqlite3_bind_int(st, 10, row->prefetched ? 1 : 0);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)at);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        rc = rc == SQLITE_CONSTRAINT ? PL_ERR_EXISTS : PL_ERR_DB;
        goto fail;
    }
    if ((rc = add_transition(j, row->package_id, 0, PL_J_LEASED, at, NULL,
                             row->prefetched ? "prefetch" : "jit")) != PL_OK)
        goto fail;
    if ((rc = prep(j, "DELETE FROM lease_req WHERE eid = ?1 AND otk_id = ?2", &st)) != PL_OK)
        goto fail;
    sqlite3_bind_blob(st, 1, row->eid, PL_J_EID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, row->otk_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    if (rc != PL_OK)
        goto fail;
    return commit(j);
fail:
    rollback(j);
    {
        /* The file of a row that was not written is swept now (never at a live row). */
        char path[PL_J_PATH_MAX];
        if (rc != PL_ERR_EXISTS && pkg_path(j, row->package_id, ".pkg", path, sizeof(path)) == PL_OK)
            (void)shred_file(j->pkg_dir, path);
    }
    return rc;
}

int pl_journal_envelope(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], uint8_t **env,
                        size_t *len)
{
    char path[PL_J_PATH_MAX];
    struct pl_jpkg row;
    struct stat st;
    uint8_t *buf = NULL;
    int rc, fd;
    size_t got = 0;

    *env = NULL;
    *len = 0;
    if (j->pkg_dir == NULL)
        return PL_ERR_STATE;
    if ((rc = get_locked(j, id, &row)) != PL_OK)
        return rc;
    if (row.purged)
        return PL_ERR_NOT_FOUND;
    if ((rc = pkg_path(j, id, ".pkg", path, sizeof(path))) != PL_OK)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || (uint64_t)st.st_size > PL_J_ENVELOPE_MAX) {
        close(fd);
        return PL_ERR_IO;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        close(fd);
        return PL_ERR_NOMEM;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return PL_ERR_IO;
    }
    *env = buf;
    *len = got;
    return PL_OK;
}

/* One transition: inside a write transaction, check the current state, run the caller's
 * UPDATE (?1 = id, ?2 = to, ?3 = now; its own parameters from ?4), log the transition. */
struct upd {
    const char *sql;
    void (*bind)(sqlite3_stmt *st, const void *ctx);
    const void *ctx;
};

static int move(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], int to, unsigned from_mask,
                const struct upd *u, const char *fixture, const char *detail)
{
    struct pl_jpkg cur;
    sqlite3_stmt *st = NULL;
    uint64_t at = now_ms(j);
    int rc;

    if (j->ro)
        return PL_ERR_STATE;
    if ((rc = begin(j)) != PL_OK)
        return rc;
    if ((rc = get_locked(j, id, &cur)) != PL_OK)
        goto fail;
    if ((from_mask & PL_J_MASK(cur.state)) == 0 || !pl_journal_allowed(cur.state, to)) {
        rc = PL_ERR_STATE;
        goto fail;
    }
    if ((rc = prep(j, u->sql, &st)) != PL_OK)
        goto fail;
    sqlite3_bind_blob(st, 1, id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, to);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)at);
    if (u->bind != NULL)
        u->bind(st, u->ctx);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    if (rc != PL_OK)
        goto fail;
    if ((rc = add_transition(j, id, cur.state, to, at, fixture != NULL ? fixture : cur.fixture,
                             detail)) != PL_OK)
        goto fail;
    return commit(j);
fail:
    rollback(j);
    return rc;
}

struct dispatch_ctx {
    const char *fixture;
    const uint8_t *eid_read;
};
static void bind_dispatch(sqlite3_stmt *st, const void *ctx)
{
    const struct dispatch_ctx *c = ctx;
    sqlite3_bind_text(st, 4, c->fixture, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, c->eid_read, PL_J_EID_LEN, SQLITE_STATIC);
}

int pl_journal_dispatch(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const char *fixture,
                        const uint8_t eid_read[PL_J_EID_LEN])
{
    struct dispatch_ctx c = {fixture, eid_read};
    struct upd u = {"UPDATE package SET state = ?2, t2 = ?3, fixture = ?4, eid_read = ?5"
                    " WHERE package_id = ?1",
                    bind_dispatch, &c};
    if (fixture == NULL || eid_read == NULL)
        return PL_ERR_INVAL;
    return move(j, id, PL_J_DISPATCHED, PL_J_MASK(PL_J_LEASED), &u, fixture, NULL);
}

static void bind_u64(sqlite3_stmt *st, const void *ctx)
{
    sqlite3_bind_int64(st, 4, (sqlite3_int64) * (const uint64_t *)ctx);
}

int pl_journal_loading(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], uint64_t request_id)
{
    struct upd u = {"UPDATE package SET state = ?2, t3 = ?3, load_request_id = ?4"
                    " WHERE package_id = ?1",
                    bind_u64, &request_id};
    return move(j, id, PL_J_LOADING, PL_J_MASK(PL_J_DISPATCHED), &u, NULL, NULL);
}

int pl_journal_undispatch(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const char *why)
{
    struct upd u = {"UPDATE package SET state = ?2, fixture = NULL, eid_read = NULL,"
                    " load_request_id = NULL, t2 = NULL, t3 = NULL WHERE package_id = ?1",
                    NULL, NULL};
    return move(j, id, PL_J_LEASED, PL_J_MASK(PL_J_DISPATCHED) | PL_J_MASK(PL_J_LOADING), &u,
                NULL, why);
}

struct result_ctx {
    int outcome;
    const uint8_t *pir;
    size_t pir_len;
    int success;
    uint32_t code;
    const char *detail;
};
static void bind_result(sqlite3_stmt *st, const void *ctx)
{
    const struct result_ctx *c = ctx;
    sqlite3_bind_int(st, 4, c->outcome);
    if (c->pir != NULL)
        sqlite3_bind_blob(st, 5, c->pir, (int)c->pir_len, SQLITE_STATIC);
    if (c->success >= 0)
        sqlite3_bind_int(st, 6, c->success);
    if (c->code != 0)
        sqlite3_bind_int64(st, 7, c->code);
    if (c->detail != NULL && c->detail[0] != '\0')
        sqlite3_bind_text(st, 8, c->detail, -1, SQLITE_STATIC);
}

static const char result_sql[] =
    "UPDATE package SET state = ?2, t4 = ?3, outcome = ?4, pir = ?5, pir_success = ?6,"
    " fpa_code = ?7, detail = ?8, report_msg_id = NULL, report_seq = NULL,"
    " report_audit = NULL, km_accepted = -1, km_code = NULL, km_state = NULL, t5 = NULL,"
    " t6 = NULL WHERE package_id = ?1";

int pl_journal_result_pir(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const uint8_t *pir,
                          size_t len, bool success)
{
    struct result_ctx c = {PL_JO_PIR, pir, len, success ? 1 : 0, 0, NULL};
    struct upd u = {result_sql, bind_result, &c};
    struct pl_jpkg cur;
    unsigned mask = PL_J_MASK(PL_J_LEASED) | PL_J_MASK(PL_J_DISPATCHED) | PL_J_MASK(PL_J_LOADING)
                    | PL_J_MASK(PL_J_RESULT);
    int rc;

    if (pir == NULL || len == 0 || len > PL_J_PIR_MAX)
        return PL_ERR_INVAL;
    /* A PIR found after a station-side error or release was acknowledged reopens the
     * package: proof replaces "possibly used" (docs/station-keymaker-protocol.md §6.1). */
    if ((rc = get_locked(j, id, &cur)) != PL_OK)
        return rc;
    if (cur.state == PL_J_ACKED && cur.outcome != PL_JO_PIR)
        mask |= PL_J_MASK(PL_J_ACKED);
    if (cur.state == PL_J_RESULT && cur.outcome == PL_JO_PIR
        && (cur.pir_len != len || memcmp(cur.pir, pir, len) != 0))
        return PL_ERR_EXISTS; /* a second, different PIR for one package: never replaced */
    return move(j, id, PL_J_RESULT, mask, &u, NULL, success ? "pir success" : "pir error");
}

int pl_journal_result_error(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], uint32_t code,
                            const char *detail)
{
    struct result_ctx c = {PL_JO_FPA_ERROR, NULL, 0, -1, code, detail};
    struct upd u = {result_sql, bind_result, &c};
    struct pl_jpkg cur;
    int rc;
    if (code == 0)
        return PL_ERR_INVAL;
    if ((rc = get_locked(j, id, &cur)) != PL_OK)
        return rc;
    if (cur.state == PL_J_RESULT && cur.outcome == PL_JO_PIR)
        return PL_ERR_STATE; /* a PIR is never downgraded to an error */
    return move(j, id, PL_J_RESULT,
                PL_J_MASK(PL_J_LEASED) | PL_J_MASK(PL_J_DISPATCHED) | PL_J_MASK(PL_J_LOADING)
                    | PL_J_MASK(PL_J_RESULT),
                &u, NULL, detail);
}

int pl_journal_result_released(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], const char *why)
{
    struct result_ctx c = {PL_JO_RELEASED, NULL, 0, -1, 0, why};
    struct upd u = {result_sql, bind_result, &c};
    /* Only a package that never left for a chip can be released. */
    return move(j, id, PL_J_RESULT, PL_J_MASK(PL_J_LEASED) | PL_J_MASK(PL_J_DISPATCHED), &u, NULL,
                why);
}

struct report_ctx {
    const uint8_t *msg_id;
    uint64_t seq;
    const uint8_t *audit;
};
static void bind_report(sqlite3_stmt *st, const void *ctx)
{
    const struct report_ctx *c = ctx;
    sqlite3_bind_blob(st, 4, c->msg_id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)c->seq);
    if (c->audit != NULL)
        sqlite3_bind_blob(st, 6, c->audit, 32, SQLITE_STATIC);
}

int pl_journal_reported(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                        const uint8_t msg_id[PL_J_ID_LEN], uint64_t seq, const uint8_t *audit)
{
    struct report_ctx c = {msg_id, seq, audit};
    struct upd u = {"UPDATE package SET state = ?2, t5 = ?3, report_msg_id = ?4,"
                    " report_seq = ?5, report_audit = ?6 WHERE package_id = ?1",
                    bind_report, &c};
    if (msg_id == NULL)
        return PL_ERR_INVAL;
    return move(j, id, PL_J_REPORTED, PL_J_MASK(PL_J_RESULT) | PL_J_MASK(PL_J_REPORTED), &u, NULL,
                NULL);
}

struct ack_ctx {
    int accepted, code, state;
};
static void bind_ack(sqlite3_stmt *st, const void *ctx)
{
    const struct ack_ctx *c = ctx;
    sqlite3_bind_int(st, 4, c->accepted);
    sqlite3_bind_int(st, 5, c->code);
    sqlite3_bind_int(st, 6, c->state);
}

int pl_journal_acked(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], bool accepted,
                     int km_code, int km_state)
{
    struct ack_ctx c = {accepted ? 1 : 0, km_code, km_state};
    struct upd u = {"UPDATE package SET state = ?2, t6 = ?3, km_accepted = ?4, km_code = ?5,"
                    " km_state = ?6 WHERE package_id = ?1",
                    bind_ack, &c};
    char detail[64];
    snprintf(detail, sizeof(detail), "%s state=%d code=%d", accepted ? "accepted" : "refused",
             km_state, km_code);
    return move(j, id, PL_J_ACKED, PL_J_MASK(PL_J_REPORTED), &u, NULL, detail);
}

static void bind_i64(sqlite3_stmt *st, const void *ctx)
{
    sqlite3_bind_int64(st, 4, (sqlite3_int64) * (const int64_t *)ctx);
}

int pl_journal_notified(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN], int64_t status)
{
    struct upd u = {"UPDATE package SET state = ?2, t7 = ?3, notif_status = ?4"
                    " WHERE package_id = ?1",
                    bind_i64, &status};
    return move(j, id, PL_J_NOTIFIED, PL_J_MASK(PL_J_ACKED), &u, NULL, NULL);
}

int pl_journal_purge(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN])
{
    char path[PL_J_PATH_MAX];
    struct pl_jpkg cur;
    sqlite3_stmt *st = NULL;
    int rc;

    if (j->ro || j->pkg_dir == NULL)
        return PL_ERR_STATE;
    if ((rc = get_locked(j, id, &cur)) != PL_OK)
        return rc;
    if (cur.state != PL_J_ACKED && cur.state != PL_J_NOTIFIED)
        return PL_ERR_STATE;
    if (cur.purged)
        return PL_OK;
    if ((rc = pkg_path(j, id, ".pkg", path, sizeof(path))) != PL_OK
        || (rc = shred_file(j->pkg_dir, path)) != PL_OK)
        return rc;
    if ((rc = prep(j, "UPDATE package SET purged = 1, t_purged = ?2 WHERE package_id = ?1",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)now_ms(j));
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_each(struct pl_journal *j, unsigned state_mask, const uint8_t *eid,
                    const char *fixture, int (*cb)(void *user, const struct pl_jpkg *row),
                    void *user)
{
    sqlite3_stmt *st = NULL;
    struct pl_jpkg *row;
    int rc;

    row = malloc(sizeof(*row));
    if (row == NULL)
        return PL_ERR_NOMEM;
    if ((rc = prep(j, "SELECT " PKG_COLS " FROM package WHERE (?1 IS NULL OR eid = ?1) AND"
                      " (?2 IS NULL OR fixture = ?2) ORDER BY rowid",
                   &st)) != PL_OK) {
        free(row);
        return rc;
    }
    if (eid != NULL)
        sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    if (fixture != NULL)
        sqlite3_bind_text(st, 2, fixture, -1, SQLITE_STATIC);
    rc = PL_OK;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = PL_ERR_DB;
            break;
        }
        row_read(st, row);
        if (state_mask != 0 && (state_mask & PL_J_MASK(row->state)) == 0)
            continue;
        if ((rc = cb(user, row)) != 0)
            break;
    }
    sqlite3_finalize(st);
    free(row);
    return rc;
}

int pl_journal_counts(struct pl_journal *j, struct pl_journal_counts *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = prep(j, "SELECT state, purged, km_accepted, km_state, outcome, pir_success"
                      " FROM package",
                   &st)) != PL_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int s = sqlite3_column_int(st, 0);
        int acc = sqlite3_column_int(st, 2);
        int ks = sqlite3_column_int(st, 3);
        if (s > 0 && s < (int)PL_J_STATE_COUNT)
            out->state[s]++;
        if (sqlite3_column_int(st, 1) != 0)
            out->purged++;
        if (acc == 0)
            out->refused++;
        else if (acc == 1 && ks == 2)
            out->installed++;
        else if (acc == 1 && ks == 3)
            out->failed++;
        else if (acc == 1 && ks == 4)
            out->possibly_used++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return PL_ERR_DB;
    if ((rc = prep(j, "SELECT state, count(*) FROM device GROUP BY state", &st)) != PL_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int s = sqlite3_column_int(st, 0);
        if (s > 0 && s < 8)
            out->device[s] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return PL_ERR_DB;
    if ((rc = prep(j, "SELECT count(*) FROM lease_req", &st)) != PL_OK)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        out->pending_leases = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return PL_OK;
}

/* ------------------------------------------------------------------ devices ---- */

int pl_journal_device_get(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                          struct pl_jdevice *out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = prep(j,
                   j->has_receipt
                       ? "SELECT state, fixture, loads, installed, token_counter, detail, t_first,"
                         " t_last, receipt, receipt_acked FROM device WHERE eid = ?1"
                       : "SELECT state, fixture, loads, installed, token_counter, detail, t_first,"
                         " t_last, NULL, 0 FROM device WHERE eid = ?1",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memcpy(out->eid, eid, PL_J_EID_LEN);
        out->state = sqlite3_column_int(st, 0);
        col_text(st, 1, out->fixture, sizeof(out->fixture));
        out->loads = (unsigned)sqlite3_column_int(st, 2);
        col_blob(st, 3, out->installed, sizeof(out->installed), NULL, &out->has_installed);
        out->token_counter = (uint64_t)sqlite3_column_int64(st, 4);
        col_text(st, 5, out->detail, sizeof(out->detail));
        out->t_first = (uint64_t)sqlite3_column_int64(st, 6);
        out->t_last = (uint64_t)sqlite3_column_int64(st, 7);
        col_blob(st, 8, out->receipt, sizeof(out->receipt), &out->receipt_len, &out->has_receipt);
        out->receipt_acked = sqlite3_column_int(st, 9) != 0;
        rc = PL_OK;
    } else {
        rc = rc == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_device_put(struct pl_journal *j, const struct pl_jdevice *d)
{
    sqlite3_stmt *st = NULL;
    uint64_t at = now_ms(j);
    int rc;
    if (j->ro)
        return PL_ERR_STATE;
    if (d->has_receipt && (d->receipt_len == 0 || d->receipt_len > PL_J_RECEIPT_MAX))
        return PL_ERR_INVAL;
    if ((rc = prep(j, "INSERT INTO device(eid, state, fixture, loads, installed, token_counter,"
                      " detail, t_first, t_last, receipt, receipt_acked)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)"
                      " ON CONFLICT(eid) DO UPDATE SET state = excluded.state,"
                      " fixture = excluded.fixture, loads = excluded.loads,"
                      " installed = excluded.installed, token_counter = excluded.token_counter,"
                      " detail = excluded.detail, t_last = excluded.t_last,"
                      " receipt = excluded.receipt, receipt_acked = excluded.receipt_acked",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, d->eid, PL_J_EID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, d->state);
    sqlite3_bind_text(st, 3, d->fixture, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)d->loads);
    if (d->has_installed)
        sqlite3_bind_blob(st, 5, d->installed, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)d->token_counter);
    sqlite3_bind_text(st, 7, d->detail, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)at);
    if (d->has_receipt)
        sqlite3_bind_blob(st, 9, d->receipt, (int)d->receipt_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, d->receipt_acked ? 1 : 0);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_info_set(struct pl_journal *j, const char *key, const char *value)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (j == NULL || key == NULL || value == NULL || strlen(value) > PL_J_INFO_MAX)
        return PL_ERR_INVAL;
    if (j->ro)
        return PL_ERR_STATE; /* as every writer on a read-only handle */
    if ((rc = prep(j, "INSERT INTO info(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = ?2",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_info_get(struct pl_journal *j, const char *key, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (j == NULL || key == NULL || out == NULL || cap == 0)
        return PL_ERR_INVAL;
    out[0] = '\0';
    /* A journal older than schema 3 has no info table: nothing recorded. */
    if (prep(j, "SELECT v FROM info WHERE k = ?1", &st) != PL_OK)
        return PL_ERR_NOT_FOUND;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        size_t n = v != NULL ? strlen((const char *)v) : 0;
        if (n >= cap) {
            rc = PL_ERR_OVERFLOW;
        } else {
            memcpy(out, v != NULL ? (const char *)v : "", n + 1);
            rc = PL_OK;
        }
    } else {
        rc = rc == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_device_certs_put(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                                const uint8_t *euicc_cert, size_t euicc_len,
                                const uint8_t *eum_cert, size_t eum_len)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (j->ro || !j->has_certs)
        return PL_ERR_STATE;
    if ((euicc_cert != NULL && (euicc_len == 0 || euicc_len > PL_J_CERT_MAX))
        || (eum_cert != NULL && (eum_len == 0 || eum_len > PL_J_CERT_MAX)))
        return PL_ERR_INVAL;
    if ((rc = prep(j, "UPDATE device SET euicc_cert = ?2, eum_cert = ?3 WHERE eid = ?1", &st))
        != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    if (euicc_cert != NULL)
        sqlite3_bind_blob(st, 2, euicc_cert, (int)euicc_len, SQLITE_STATIC);
    if (eum_cert != NULL)
        sqlite3_bind_blob(st, 3, eum_cert, (int)eum_len, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    if (rc == PL_OK && sqlite3_changes(j->db) != 1)
        rc = PL_ERR_NOT_FOUND;
    return rc;
}

/* A certificate column into dst (absent, empty or over the cap: none). */
int pl_journal_device_certs_get(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                                struct pl_jcerts *out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = prep(j,
                   j->has_certs ? "SELECT euicc_cert, eum_cert FROM device WHERE eid = ?1"
                                : "SELECT NULL, NULL FROM device WHERE eid = ?1",
                   &st))
        != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_blob(st, 0, out->euicc, PL_J_CERT_MAX, &out->euicc_len, &out->has_euicc);
        col_blob(st, 1, out->eum, PL_J_CERT_MAX, &out->eum_len, &out->has_eum);
        rc = PL_OK;
    } else {
        rc = rc == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_device_each(struct pl_journal *j,
                           int (*cb)(void *user, const struct pl_jdevice *d), void *user)
{
    sqlite3_stmt *st = NULL;
    struct pl_jdevice *d = NULL;
    int rc;

    /* Every EID the journal names: normally each has a device record (written at its first
     * Identify, before any lease); a package whose EID has none is still listed. */
    if ((rc = prep(j, "SELECT e.eid FROM (SELECT eid FROM device UNION SELECT eid FROM package)"
                      " e LEFT JOIN device d ON d.eid = e.eid"
                      " ORDER BY d.t_first IS NULL, d.t_first, e.eid",
                   &st)) != PL_OK)
        return rc;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        sqlite3_finalize(st);
        return PL_ERR_NOMEM;
    }
    rc = PL_OK;
    for (;;) {
        uint8_t eid[PL_J_EID_LEN];
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW || sqlite3_column_bytes(st, 0) != PL_J_EID_LEN) {
            rc = PL_ERR_DB;
            break;
        }
        memcpy(eid, sqlite3_column_blob(st, 0), PL_J_EID_LEN);
        rc = pl_journal_device_get(j, eid, d);
        if (rc == PL_ERR_NOT_FOUND) {
            memset(d, 0, sizeof(*d));
            memcpy(d->eid, eid, PL_J_EID_LEN);
            rc = PL_OK;
        }
        if (rc != PL_OK || (rc = cb(user, d)) != 0)
            break;
    }
    free(d);
    sqlite3_finalize(st);
    return rc;
}

/* ----------------------------------------------------------- lease requests ---- */

int pl_journal_lease_req_put(struct pl_journal *j, const struct pl_jlease_req *r)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (j->ro)
        return PL_ERR_STATE;
    if ((rc = prep(j, "INSERT OR REPLACE INTO lease_req(eid, otk_id, fixture, msg_id, seq, at)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, r->eid, PL_J_EID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, r->otk_id);
    sqlite3_bind_text(st, 3, r->fixture, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 4, r->msg_id, PL_J_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)r->seq);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)now_ms(j));
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_lease_req_get(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                             struct pl_jlease_req *out)
{
    sqlite3_stmt *st = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = prep(j, "SELECT otk_id, fixture, msg_id, seq FROM lease_req WHERE eid = ?1"
                      " ORDER BY at LIMIT 1",
                   &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memcpy(out->eid, eid, PL_J_EID_LEN);
        out->otk_id = (uint16_t)sqlite3_column_int(st, 0);
        col_text(st, 1, out->fixture, sizeof(out->fixture));
        col_blob(st, 2, out->msg_id, sizeof(out->msg_id), NULL, NULL);
        out->seq = (uint64_t)sqlite3_column_int64(st, 3);
        rc = PL_OK;
    } else {
        rc = rc == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_lease_req_each(struct pl_journal *j,
                              int (*cb)(void *user, const struct pl_jlease_req *r), void *user)
{
    sqlite3_stmt *st = NULL;
    struct pl_jlease_req r;
    int rc;
    if ((rc = prep(j, "SELECT eid, otk_id, fixture, msg_id, seq FROM lease_req ORDER BY seq",
                   &st)) != PL_OK)
        return rc;
    rc = PL_OK;
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE)
            break;
        if (s != SQLITE_ROW) {
            rc = PL_ERR_DB;
            break;
        }
        memset(&r, 0, sizeof(r));
        col_blob(st, 0, r.eid, sizeof(r.eid), NULL, NULL);
        r.otk_id = (uint16_t)sqlite3_column_int(st, 1);
        col_text(st, 2, r.fixture, sizeof(r.fixture));
        col_blob(st, 3, r.msg_id, sizeof(r.msg_id), NULL, NULL);
        r.seq = (uint64_t)sqlite3_column_int64(st, 4);
        if ((rc = cb(user, &r)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_lease_req_del(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN], uint16_t otk_id)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = prep(j, "DELETE FROM lease_req WHERE eid = ?1 AND otk_id = ?2", &st)) != PL_OK)
        return rc;
    sqlite3_bind_blob(st, 1, eid, PL_J_EID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, otk_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

int pl_journal_note(struct pl_journal *j, const uint8_t *package_id, const char *fixture,
                    const char *text)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if (j->ro)
        return PL_ERR_STATE;
    if ((rc = prep(j, "INSERT INTO note(package_id, fixture, at, text) VALUES(?1, ?2, ?3, ?4)",
                   &st)) != PL_OK)
        return rc;
    if (package_id != NULL)
        sqlite3_bind_blob(st, 1, package_id, PL_J_ID_LEN, SQLITE_STATIC);
    if (fixture != NULL)
        sqlite3_bind_text(st, 2, fixture, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now_ms(j));
    sqlite3_bind_text(st, 4, text != NULL ? text : "", -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? PL_OK : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------- export ---- */

const char *pl_journal_result_text(const struct pl_jpkg *row, char *buf, size_t cap)
{
    if (row->km_accepted == 1) {
        switch (row->km_state) {
        case 2: return "installed";
        case 3: return "failed";
        case 4: return "possibly-used";
        case 1: return "issued";
        default: break;
        }
        snprintf(buf, cap, "state-%d", row->km_state);
        return buf;
    }
    if (row->km_accepted == 0) {
        snprintf(buf, cap, "refused-%d", row->km_code);
        return buf;
    }
    if (row->state >= PL_J_RESULT) {
        if (row->outcome == PL_JO_PIR)
            return row->pir_success ? "pir-success-unreported" : "pir-error-unreported";
        if (row->outcome == PL_JO_RELEASED)
            return "released-unreported";
        return "error-unreported";
    }
    return "pending";
}

/* The ICCID of StoreMetadata '5A' (10 bytes, EF.ICCID coding) as its digits - the text an
 * operator reads off a SIM and the eIM's API takes (provline/protocol/iccid.h; a TS.48 test
 * profile reads "8949449999999990023"). Empty when the package's '88' could not be read. */
static void iccid_str(const struct pl_jpkg *r, char out[PL_ICCID_TEXT_MAX])
{
    out[0] = '\0';
    if (r->has_iccid)
        pl_iccid_text(r->iccid, out);
}

struct export_ctx {
    enum pl_journal_export_fmt fmt;
    int (*write)(void *user, const char *s, size_t n);
    void *user;
    unsigned n;
};

static int export_row(void *user, const struct pl_jpkg *r)
{
    struct export_ctx *x = user;
    char eid[33], pkg[33], tid[33], iccid[PL_ICCID_TEXT_MAX], res_buf[32], ts[PL_J_STATE_COUNT][32];
    char line[1024];
    const char *res = pl_journal_result_text(r, res_buf, sizeof(res_buf));
    int n;

    if (pl_hex_encode(r->eid, PL_J_EID_LEN, eid, sizeof(eid)) != PL_OK
        || pl_hex_encode(r->package_id, PL_J_ID_LEN, pkg, sizeof(pkg)) != PL_OK
        || pl_hex_encode(r->tid, r->tid_len, tid, sizeof(tid)) != PL_OK)
        return PL_ERR_INTERNAL;
    iccid_str(r, iccid);
    for (unsigned s = 1; s < PL_J_STATE_COUNT; s++)
        pl_st_utc_text(r->t[s], true, ts[s], sizeof(ts[s]));
    /* Every field is hex, digits, a fixed word, a timestamp or a fixture name restricted to
     * [A-Za-z0-9_.-] by the configuration: nothing needs quoting or escaping. */
    if (x->fmt == PL_JOURNAL_CSV) {
        n = snprintf(line, sizeof(line), "%s,%s,%s,%s,%u,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", eid,
                     iccid, pkg, tid, r->otk_id, res, pl_journal_state_name(r->state), r->fixture,
                     ts[1], ts[2], ts[3], ts[4], ts[5], ts[6], ts[7]);
    } else {
        n = snprintf(line, sizeof(line),
                     "%s  {\"eid\": \"%s\", \"iccid\": \"%s\", \"package_id\": \"%s\", "
                     "\"transaction_id\": \"%s\", \"otk_id\": %u, \"result\": \"%s\", "
                     "\"state\": \"%s\", \"fixture\": \"%s\", \"leased_at\": \"%s\", "
                     "\"dispatched_at\": \"%s\", \"loading_at\": \"%s\", \"result_at\": \"%s\", "
                     "\"reported_at\": \"%s\", \"acked_at\": \"%s\", \"notified_at\": \"%s\"}",
                     x->n == 0 ? "" : ",\n", eid, iccid, pkg, tid, r->otk_id, res,
                     pl_journal_state_name(r->state), r->fixture, ts[1], ts[2], ts[3], ts[4],
                     ts[5], ts[6], ts[7]);
    }
    if (n < 0 || (size_t)n >= sizeof(line))
        return PL_ERR_OVERFLOW;
    x->n++;
    return x->write(x->user, line, (size_t)n);
}

int pl_journal_export(struct pl_journal *j, enum pl_journal_export_fmt fmt,
                      int (*write)(void *user, const char *s, size_t n), void *user)
{
    static const char csv_head[] = "eid,iccid,package_id,transaction_id,otk_id,result,state,"
                                   "fixture,leased_at,dispatched_at,loading_at,result_at,"
                                   "reported_at,acked_at,notified_at\n";
    struct export_ctx x = {fmt, write, user, 0};
    int rc;

    if (fmt != PL_JOURNAL_CSV && fmt != PL_JOURNAL_JSON)
        return PL_ERR_INVAL;
    rc = fmt == PL_JOURNAL_CSV ? write(user, csv_head, sizeof(csv_head) - 1)
                               : write(user, "[\n", 2);
    if (rc != PL_OK)
        return rc;
    if ((rc = pl_journal_each(j, 0, NULL, NULL, export_row, &x)) != PL_OK)
        return rc;
    if (fmt == PL_JOURNAL_JSON)
        return write(user, x.n == 0 ? "]\n" : "\n]\n", x.n == 0 ? 2 : 3);
    return PL_OK;
}
