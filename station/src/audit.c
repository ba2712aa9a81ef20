/* Station audit trail: append-only SHA-256 hash chain in SQLite with a fsynced head
 * sidecar, Key Maker checkpoints, retention purge with an anchor, offline verification.
 * reference/IFPP.md §6.3 ("Audit: per-station hash chain h_n = SHA-256(h_{n-1} || record_n)
 * over journal transitions + SHA-256 of each APDU transcript; h_n in every REPORT, Key Maker
 * returns a signed checkpoint"); ARCHITECTURE.md §5 (append-only; any edit or deletion
 * detected by verify); FIPS 180-4 SHA-256; SQLite 3.40 (WAL, synchronous=FULL,
 * secure_delete; DEPENDENCIES.md §9); flock(2), fdatasync(2); the Key Maker's checkpoint
 * signature of protocol version 2 (docs/station-keymaker-protocol.md §5.5, km_msg.h).
 * Format and detection limits: docs/audit-trail.md. */
#define _DEFAULT_SOURCE
#include "provline/station/audit.h"

#include "provline/proto/km_msg.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/wr.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__GNUC__) || defined(__clang__)
#define AUD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AUD_PRINTF(a, b)
#endif

#define FORMAT_NAME     "provline-audit-1"
#define GENESIS_LABEL   "provline-audit-genesis-v1"
#define RECORD_TAG      "PLAR"
#define CP_DIGEST_LABEL "provline-audit-checkpoint-ack-v1" /* unsigned acknowledgement */
#define CP_SIGNED_LABEL "provline-audit-checkpoint-ack-v2" /* with station key and signature */
#define HEAD_MAGIC      "PLAUDHD1"
#define HEAD_SLOT_LEN   96u /* magic 8, chain id 16, seq 8, h 32, SHA-256 of the 64 before */
#define HEAD_SLOTS      2u
#define COL_MAX         4096 /* any column longer than this is not ours */
#define N_FIELDS        7

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS record("
    " seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL, fixture TEXT,"
    " eid BLOB, package_id BLOB, state TEXT, detail TEXT, digest BLOB,"
    " h_prev BLOB NOT NULL, h BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS checkpoint("
    " seq INTEGER PRIMARY KEY, h BLOB NOT NULL, keymaker_sig BLOB NOT NULL,"
    " recorded_ms INTEGER NOT NULL, station_key BLOB);"
    "CREATE TABLE IF NOT EXISTS anchor("
    " id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, h BLOB NOT NULL);"
    /* Defence in depth against accidents through SQL (an attacker drops these): records
     * and checkpoints never change; records go only at or below the anchor (purge). */
    "CREATE TRIGGER IF NOT EXISTS record_no_update BEFORE UPDATE ON record"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS record_no_delete BEFORE DELETE ON record"
    " WHEN OLD.seq > (SELECT seq FROM anchor WHERE id = 1)"
    " BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS checkpoint_no_update BEFORE UPDATE ON checkpoint"
    " BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS checkpoint_no_delete BEFORE DELETE ON checkpoint"
    " BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;";

struct pl_audit {
    sqlite3 *db;
    int head_fd;
    char *path;
    struct pl_clock_ops clock;
    void (*log)(void *user, enum pl_audit_log_level level, const char *line);
    void *log_user;
    uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN];
    bool broken; /* a sidecar write failed: appends refused */
};

/* One stored field of a record: absent (SQL NULL) or n bytes. */
struct field {
    const uint8_t *p;
    size_t n;
    bool present;
};

struct rec {
    uint64_t seq;
    int64_t time_ms;
    struct field f[N_FIELDS]; /* kind, fixture, eid, package_id, state, detail, digest */
};

struct head {
    bool valid;
    uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN];
    uint64_t seq;
    uint8_t h[PL_AUDIT_HASH_LEN];
};

/* ------------------------------------------------------------------ helpers ---- */

static void alog(const struct pl_audit *a, enum pl_audit_log_level level, const char *fmt, ...)
    AUD_PRINTF(3, 4);

static void alog(const struct pl_audit *a, enum pl_audit_log_level level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (a->log == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n >= 0)
        a->log(a->log_user, level, line);
}

static void be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

static bool printable(const char *s, size_t min, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x20u || c > 0x7eu || n >= max)
            return false;
    }
    return n >= min;
}

static bool kind_ok(const uint8_t *p, size_t n)
{
    if (n < 1 || n > PL_AUDIT_KIND_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool text_ok(const struct field *f, size_t max)
{
    if (!f->present)
        return true;
    if (f->n < 1 || f->n > max)
        return false;
    for (size_t i = 0; i < f->n; i++)
        if (f->p[i] < 0x20u || f->p[i] > 0x7eu)
            return false;
    return true;
}

static bool blob_ok(const struct field *f, size_t len)
{
    return !f->present || f->n == len;
}

/* The rules pl_audit_append enforces, re-checked on stored records. */
static bool rec_ok(const struct rec *r)
{
    return r->f[0].present && kind_ok(r->f[0].p, r->f[0].n)
           && text_ok(&r->f[1], PL_AUDIT_FIXTURE_MAX) && blob_ok(&r->f[2], 16)
           && blob_ok(&r->f[3], 16) && text_ok(&r->f[4], PL_AUDIT_STATE_MAX)
           && text_ok(&r->f[5], PL_AUDIT_DETAIL_MAX) && blob_ok(&r->f[6], PL_AUDIT_HASH_LEN)
           && r->time_ms >= 0;
}

/* h = SHA-256(prev || "PLAR" || seq(8) || time_ms(8) || for each field: present(1) ||
 * length(4, big-endian) || bytes) - docs/audit-trail.md §2. */
static int rec_hash(const uint8_t prev[PL_AUDIT_HASH_LEN], const struct rec *r,
                    uint8_t out[PL_AUDIT_HASH_LEN])
{
    uint8_t hdr[4 + 8 + 8];
    uint8_t fh[N_FIELDS][5];
    struct pl_iov iov[2 + 2 * N_FIELDS];
    size_t n = 0;

    memcpy(hdr, RECORD_TAG, 4);
    be64(hdr + 4, r->seq);
    be64(hdr + 12, (uint64_t)r->time_ms);
    iov[n++] = (struct pl_iov){prev, PL_AUDIT_HASH_LEN};
    iov[n++] = (struct pl_iov){hdr, sizeof(hdr)};
    for (int i = 0; i < N_FIELDS; i++) {
        const struct field *f = &r->f[i];
        if (f->n > UINT32_MAX)
            return PL_ERR_OVERFLOW;
        fh[i][0] = f->present ? 1u : 0u;
        fh[i][1] = (uint8_t)(f->n >> 24);
        fh[i][2] = (uint8_t)(f->n >> 16);
        fh[i][3] = (uint8_t)(f->n >> 8);
        fh[i][4] = (uint8_t)f->n;
        iov[n++] = (struct pl_iov){fh[i], 5};
        iov[n++] = (struct pl_iov){f->p, f->present ? f->n : 0};
    }
    return pl_sha256_iov(iov, n, out);
}

static int genesis(const uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN], uint8_t out[PL_AUDIT_HASH_LEN])
{
    struct pl_iov iov[2] = {{GENESIS_LABEL, sizeof(GENESIS_LABEL) - 1},
                            {chain_id, PL_AUDIT_CHAIN_ID_LEN}};
    return pl_sha256_iov(iov, 2, out);
}

/* One stored acknowledgement: the Key Maker's bytes (empty, opaque, or a 64-byte signature)
 * and, for a signed checkpoint, the station key it was signed for (NULL otherwise). */
struct ack {
    const uint8_t *sig;
    size_t sig_len;
    const uint8_t *station_key;
};

/* Digest of a "checkpoint" record: binds the stored acknowledgement into the chain.
 * Unsigned: SHA-256(ack-v1 || seq || h || sig); signed: SHA-256(ack-v2 || seq || h ||
 * station_key || sig). Distinct labels keep the two forms from ever colliding. */
static int cp_digest(uint64_t seq, const uint8_t h[PL_AUDIT_HASH_LEN], const struct ack *k,
                     uint8_t out[PL_AUDIT_HASH_LEN])
{
    uint8_t s[8];
    be64(s, seq);
    if (k->station_key == NULL) {
        struct pl_iov iov[4] = {{CP_DIGEST_LABEL, sizeof(CP_DIGEST_LABEL) - 1},
                                {s, 8},
                                {h, PL_AUDIT_HASH_LEN},
                                {k->sig, k->sig_len}};
        return pl_sha256_iov(iov, 4, out);
    }
    struct pl_iov iov[5] = {{CP_SIGNED_LABEL, sizeof(CP_SIGNED_LABEL) - 1},
                            {s, 8},
                            {h, PL_AUDIT_HASH_LEN},
                            {k->station_key, PL_AUDIT_STATION_KEY_LEN},
                            {k->sig, k->sig_len}};
    return pl_sha256_iov(iov, 5, out);
}

/* ----------------------------------------------------------------- sidecar ---- */

static char *head_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 6);
    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, ".head", 6);
    }
    return p;
}

/* Parses one slot (untrusted bytes: through the reader). */
static void head_parse(const uint8_t *buf, size_t len, struct head *out)
{
    struct pl_rd r;
    const uint8_t *magic = NULL, *check = NULL;
    uint8_t want[PL_AUDIT_HASH_LEN];

    memset(out, 0, sizeof(*out));
    pl_rd_init(&r, buf, len);
    if (pl_rd_bytes(&r, 8, &magic) || memcmp(magic, HEAD_MAGIC, 8) != 0
        || pl_rd_copy(&r, out->chain_id, PL_AUDIT_CHAIN_ID_LEN) || pl_rd_u64be(&r, &out->seq)
        || pl_rd_copy(&r, out->h, PL_AUDIT_HASH_LEN) || pl_rd_bytes(&r, PL_AUDIT_HASH_LEN, &check)
        || !pl_rd_done(&r))
        return;
    if (pl_sha256(buf, HEAD_SLOT_LEN - PL_AUDIT_HASH_LEN, want) != PL_OK
        || !pl_ct_equal(want, check, PL_AUDIT_HASH_LEN))
        return;
    out->valid = true;
}

/* Reads the sidecar: the valid slot with the highest seq. PL_ERR_IO on read errors;
 * out->valid false when no slot is valid. */
static int head_read(int fd, struct head *out)
{
    uint8_t buf[HEAD_SLOT_LEN * HEAD_SLOTS];
    size_t got = 0;

    memset(out, 0, sizeof(*out));
    while (got < sizeof(buf)) {
        ssize_t n = pread(fd, buf + got, sizeof(buf) - got, (off_t)got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return PL_ERR_IO;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    for (size_t i = 0; i < HEAD_SLOTS; i++) {
        struct head h;
        if (got < (i + 1) * HEAD_SLOT_LEN)
            break;
        head_parse(buf + i * HEAD_SLOT_LEN, HEAD_SLOT_LEN, &h);
        if (h.valid && (!out->valid || h.seq > out->seq))
            *out = h;
    }
    return PL_OK;
}

/* Writes (seq, h) into slot seq % 2, leaving the other slot (the previous head) intact, and
 * fdatasyncs: a torn write can only lose the newest head, never both. */
static int head_write(struct pl_audit *a, uint64_t seq, const uint8_t h[PL_AUDIT_HASH_LEN])
{
    uint8_t slot[HEAD_SLOT_LEN];
    struct pl_wr w;

    pl_wr_init_fixed(&w, slot, sizeof(slot));
    pl_wr_bytes(&w, HEAD_MAGIC, 8);
    pl_wr_bytes(&w, a->chain_id, PL_AUDIT_CHAIN_ID_LEN);
    pl_wr_u64be(&w, seq);
    pl_wr_bytes(&w, h, PL_AUDIT_HASH_LEN);
    uint8_t *check = pl_wr_reserve(&w, PL_AUDIT_HASH_LEN);
    if (check == NULL || pl_wr_status(&w) != PL_OK
        || pl_sha256(slot, HEAD_SLOT_LEN - PL_AUDIT_HASH_LEN, check) != PL_OK)
        return PL_ERR_INTERNAL;
    off_t off = (off_t)((seq % HEAD_SLOTS) * HEAD_SLOT_LEN);
    size_t done = 0;
    while (done < sizeof(slot)) {
        ssize_t n = pwrite(a->head_fd, slot + done, sizeof(slot) - done, off + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PL_ERR_IO;
        done += (size_t)n;
    }
    return fdatasync(a->head_fd) == 0 ? PL_OK : PL_ERR_IO;
}

static int lock_fd(int fd, int op)
{
    while (flock(fd, op) != 0) {
        if (errno != EINTR)
            return PL_ERR_IO;
    }
    return PL_OK;
}

static void unlock_fd(int fd)
{
    (void)flock(fd, LOCK_UN);
}

/* ----------------------------------------------------------------- SQLite ---- */

static int db_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? PL_OK : PL_ERR_DB;
}

static int db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql)
{
    return sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK ? PL_OK : PL_ERR_DB;
}

/* Trails written before signed checkpoints have no checkpoint.station_key column. */
static bool has_station_key_column(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    bool ok = db_prepare(db, &st, "SELECT station_key FROM checkpoint LIMIT 0") == PL_OK;
    sqlite3_finalize(st);
    return ok;
}

static void col_field(sqlite3_stmt *st, int col, struct field *f)
{
    f->present = sqlite3_column_type(st, col) != SQLITE_NULL;
    f->p = f->present ? sqlite3_column_blob(st, col) : NULL;
    int n = f->present ? sqlite3_column_bytes(st, col) : 0;
    f->n = n > 0 ? (size_t)n : 0;
    if (f->p == NULL)
        f->n = 0;
}

/* Copies a blob column of exactly n bytes; false otherwise. */
static bool col_fixed(sqlite3_stmt *st, int col, void *out, size_t n)
{
    const void *p = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (p == NULL || len < 0 || (size_t)len != n)
        return false;
    memcpy(out, p, n);
    return true;
}

/* Runs a query for one chain point (seq, h): PL_OK, PL_ERR_NOT_FOUND (no row),
 * PL_ERR_MALFORMED (seq below min, or h not 32 bytes), PL_ERR_DB. */
static int point_row(sqlite3 *db, const char *sql, sqlite3_int64 min, uint64_t *seq,
                     uint8_t h[PL_AUDIT_HASH_LEN])
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db, &st, sql);
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        sqlite3_int64 s = sqlite3_column_int64(st, 0);
        rc = (s >= min && col_fixed(st, 1, h, PL_AUDIT_HASH_LEN)) ? PL_OK : PL_ERR_MALFORMED;
        *seq = (uint64_t)s;
    } else {
        rc = r == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The anchor (seq, h). */
static int anchor_get(sqlite3 *db, uint64_t *seq, uint8_t h[PL_AUDIT_HASH_LEN])
{
    int rc = point_row(db, "SELECT seq, h FROM anchor WHERE id = 1", 0, seq, h);
    return rc == PL_ERR_NOT_FOUND ? PL_ERR_MALFORMED : rc;
}

/* The last record (seq, h), or the anchor when there is none. */
static int tail_get(sqlite3 *db, uint64_t *seq, uint8_t h[PL_AUDIT_HASH_LEN])
{
    int rc = point_row(db, "SELECT seq, h FROM record ORDER BY seq DESC LIMIT 1", 1, seq, h);
    return rc == PL_ERR_NOT_FOUND ? anchor_get(db, seq, h) : rc;
}

/* Runs a bound statement that returns no row and finalises it: PL_OK or PL_ERR_DB. */
static int step_done(sqlite3_stmt **st)
{
    int r = sqlite3_step(*st);
    sqlite3_finalize(*st);
    *st = NULL;
    return r == SQLITE_DONE ? PL_OK : PL_ERR_DB;
}

#define REC_COLS "seq, time_ms, kind, fixture, eid, package_id, state, detail, digest, h_prev, h"

/* Fills r from a row selected with REC_COLS (views into the statement). false when a column
 * is over COL_MAX (not something pl_audit_append could have written). */
static bool rec_from_row(sqlite3_stmt *st, struct rec *r)
{
    sqlite3_int64 s = sqlite3_column_int64(st, 0);
    r->seq = s > 0 ? (uint64_t)s : 0u;
    r->time_ms = (int64_t)sqlite3_column_int64(st, 1);
    for (int i = 0; i < N_FIELDS; i++) {
        col_field(st, 2 + i, &r->f[i]);
        if (r->f[i].n > COL_MAX)
            return false;
    }
    return s > 0;
}

/* Recomputes the hash of the record at seq from its stored h_prev and compares it with
 * its stored h (the tail check of pl_audit_open). */
static int record_check(sqlite3 *db, uint64_t seq, uint8_t h_prev[PL_AUDIT_HASH_LEN],
                        uint8_t h[PL_AUDIT_HASH_LEN])
{
    sqlite3_stmt *st = NULL;
    struct rec r;
    uint8_t calc[PL_AUDIT_HASH_LEN];
    int rc = db_prepare(db, &st, "SELECT " REC_COLS " FROM record WHERE seq = ?");

    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int s = sqlite3_step(st);
    if (s != SQLITE_ROW) {
        rc = s == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
        goto out;
    }
    if (!rec_from_row(st, &r) || !rec_ok(&r) || !col_fixed(st, 9, h_prev, PL_AUDIT_HASH_LEN)
        || !col_fixed(st, 10, h, PL_AUDIT_HASH_LEN)) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = rec_hash(h_prev, &r, calc)))
        goto out;
    rc = pl_ct_equal(calc, h, PL_AUDIT_HASH_LEN) ? PL_OK : PL_ERR_MALFORMED;
out:
    sqlite3_finalize(st);
    return rc;
}

static int meta_chain_id(sqlite3 *db, uint8_t out[PL_AUDIT_CHAIN_ID_LEN])
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db, &st,
                        "SELECT (SELECT value FROM meta WHERE key = 'format'), "
                        "(SELECT value FROM meta WHERE key = 'chain_id')");
    if (rc)
        return PL_ERR_MALFORMED; /* no meta table: not a trail */
    rc = PL_ERR_MALFORMED;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *f = sqlite3_column_blob(st, 0);
        int fl = sqlite3_column_bytes(st, 0);
        if (f != NULL && fl == (int)(sizeof(FORMAT_NAME) - 1)
            && memcmp(f, FORMAT_NAME, sizeof(FORMAT_NAME) - 1) == 0
            && col_fixed(st, 1, out, PL_AUDIT_CHAIN_ID_LEN))
            rc = PL_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ------------------------------------------------------------------ writer ---- */

static int create_schema(struct pl_audit *a, const struct pl_rng *rng)
{
    sqlite3_stmt *st = NULL;
    uint8_t g[PL_AUDIT_HASH_LEN];
    int rc = PL_ERR_INTERNAL;

    if ((rc = db_exec(a->db, "BEGIN IMMEDIATE")))
        return rc;
    if ((rc = db_exec(a->db, SCHEMA)))
        goto out;
    /* A trail from before signed checkpoints: add the column (NULL = unsigned rows). */
    if (!has_station_key_column(a->db)
        && (rc = db_exec(a->db, "ALTER TABLE checkpoint ADD COLUMN station_key BLOB")))
        goto out;
    if ((rc = meta_chain_id(a->db, a->chain_id)) == PL_OK)
        goto commit; /* an existing trail */
    int64_t n = -1;
    if ((rc = db_prepare(a->db, &st, "SELECT count(*) FROM meta")))
        goto out;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (n != 0) {
        rc = PL_ERR_MALFORMED; /* meta present but not ours */
        goto out;
    }
    if ((rc = rng->fill(rng->user, a->chain_id, PL_AUDIT_CHAIN_ID_LEN))
        || (rc = genesis(a->chain_id, g)))
        goto out;
    if ((rc = db_prepare(a->db, &st,
                         "INSERT INTO meta(key, value) VALUES('format', ?), ('chain_id', ?)")))
        goto out;
    sqlite3_bind_text(st, 1, FORMAT_NAME, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, a->chain_id, PL_AUDIT_CHAIN_ID_LEN, SQLITE_STATIC);
    if ((rc = step_done(&st)))
        goto out;
    if ((rc = db_prepare(a->db, &st, "INSERT INTO anchor(id, seq, h) VALUES(1, 0, ?)")))
        goto out;
    sqlite3_bind_blob(st, 1, g, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    if ((rc = step_done(&st)))
        goto out;
commit:
    if ((rc = db_exec(a->db, "COMMIT")))
        goto out;
    return PL_OK;
out:
    sqlite3_finalize(st);
    (void)db_exec(a->db, "ROLLBACK");
    return rc;
}

/* Compares the sidecar with the tail; repairs the crash window (sidecar one behind). */
static int reconcile_head(struct pl_audit *a)
{
    struct head hd;
    uint64_t seq = 0;
    uint8_t h[PL_AUDIT_HASH_LEN], h_prev[PL_AUDIT_HASH_LEN];
    int rc = PL_ERR_INTERNAL;

    if ((rc = tail_get(a->db, &seq, h)) || (rc = head_read(a->head_fd, &hd)))
        return rc;
    if (seq > 0 && (rc = record_check(a->db, seq, h_prev, h))) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_tail_invalid seq=%llu", (unsigned long long)seq);
        return rc == PL_ERR_MALFORMED ? PL_ERR_STATE : rc;
    }
    struct stat sb;
    if (!hd.valid && fstat(a->head_fd, &sb) == 0 && sb.st_size == 0) {
        uint64_t anchor = 0;
        uint8_t ah[PL_AUDIT_HASH_LEN];
        if ((rc = anchor_get(a->db, &anchor, ah)))
            return rc;
        if (seq == 0 && anchor == 0)
            return head_write(a, 0, h); /* a new trail */
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_head_missing last_seq=%llu",
             (unsigned long long)seq);
        return PL_ERR_STATE;
    }
    if (!hd.valid || memcmp(hd.chain_id, a->chain_id, PL_AUDIT_CHAIN_ID_LEN) != 0) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_head_corrupt");
        return PL_ERR_STATE;
    }
    if (hd.seq == seq && pl_ct_equal(hd.h, h, PL_AUDIT_HASH_LEN))
        return PL_OK;
    if (seq > 0 && hd.seq + 1u == seq && pl_ct_equal(hd.h, h_prev, PL_AUDIT_HASH_LEN)) {
        /* Committed, then the process died before the sidecar write: finish it. */
        alog(a, PL_AUDIT_LOG_WARN, "event=audit_head_repaired head_seq=%llu last_seq=%llu",
             (unsigned long long)hd.seq, (unsigned long long)seq);
        return head_write(a, seq, h);
    }
    alog(a, PL_AUDIT_LOG_ERROR, "event=audit_head_disagrees head_seq=%llu last_seq=%llu",
         (unsigned long long)hd.seq, (unsigned long long)seq);
    return PL_ERR_STATE;
}

int pl_audit_open(const struct pl_audit_config *cfg, struct pl_audit **out)
{
    struct pl_audit *a = NULL;
    char *hp = NULL;
    bool locked = false;
    int rc = PL_ERR_INTERNAL;

    if (cfg == NULL || out == NULL || cfg->path == NULL || cfg->path[0] == '\0')
        return PL_ERR_INVAL;
    *out = NULL;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return PL_ERR_NOMEM;
    a->head_fd = -1;
    a->clock = cfg->clock ? *cfg->clock : PL_CLOCK_REALTIME;
    a->log = cfg->log;
    a->log_user = cfg->log_user;
    size_t n = strlen(cfg->path) + 1;
    a->path = malloc(n);
    hp = head_path(cfg->path);
    if (a->path == NULL || hp == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    memcpy(a->path, cfg->path, n);
    a->head_fd = open(hp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (a->head_fd < 0) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_open_failed file=\"%s\" error=\"%s\"", hp,
             strerror(errno));
        rc = PL_ERR_IO;
        goto out;
    }
    if ((rc = lock_fd(a->head_fd, LOCK_EX)))
        goto out;
    locked = true;
    if (sqlite3_open_v2(a->path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
        != SQLITE_OK) {
        rc = PL_ERR_DB;
        goto out;
    }
    sqlite3_busy_timeout(a->db, 5000);
    if ((rc = db_exec(a->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                             "PRAGMA secure_delete=ON;")))
        goto out;
    struct pl_rng rng = cfg->rng ? *cfg->rng : PL_RNG_SYSTEM;
    if ((rc = create_schema(a, &rng))) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_open_failed file=\"%s\" error=\"%s\"", a->path,
             rc == PL_ERR_MALFORMED ? "not an audit trail" : pl_strerror(rc));
        goto out;
    }
    if ((rc = reconcile_head(a)))
        goto out;
    alog(a, PL_AUDIT_LOG_INFO, "event=audit_open file=\"%s\"", a->path);
    *out = a;
    a = NULL;
    rc = PL_OK;
out:
    if (locked)
        unlock_fd(a ? a->head_fd : (*out)->head_fd);
    free(hp);
    pl_audit_close(a);
    return rc;
}

void pl_audit_close(struct pl_audit *a)
{
    if (a == NULL)
        return;
    if (a->db)
        sqlite3_close(a->db);
    if (a->head_fd >= 0)
        close(a->head_fd);
    free(a->path);
    free(a);
}

void pl_audit_chain_id(const struct pl_audit *a, uint8_t out[PL_AUDIT_CHAIN_ID_LEN])
{
    if (a && out)
        memcpy(out, a->chain_id, PL_AUDIT_CHAIN_ID_LEN);
}

static void set_text(struct field *f, const char *s)
{
    f->present = s != NULL;
    f->p = (const uint8_t *)s;
    f->n = s ? strlen(s) : 0;
}

static void set_blob(struct field *f, const uint8_t *p, size_t n)
{
    f->present = p != NULL;
    f->p = p;
    f->n = p ? n : 0;
}

static int bind_field(sqlite3_stmt *st, int col, const struct field *f, bool text)
{
    int r;
    if (!f->present)
        r = sqlite3_bind_null(st, col);
    else if (text)
        r = sqlite3_bind_text(st, col, (const char *)f->p, (int)f->n, SQLITE_STATIC);
    else
        r = sqlite3_bind_blob(st, col, f->p, (int)f->n, SQLITE_STATIC);
    return r == SQLITE_OK ? PL_OK : PL_ERR_DB;
}

/* Inserts r as the next record inside the caller's transaction; *seq_out / h_out get its
 * number and hash. */
static int insert_record(struct pl_audit *a, struct rec *r, uint64_t *seq_out,
                         uint8_t h_out[PL_AUDIT_HASH_LEN])
{
    static const bool is_text[N_FIELDS] = {true, true, false, false, true, true, false};
    sqlite3_stmt *st = NULL;
    uint8_t prev[PL_AUDIT_HASH_LEN];
    uint64_t last = 0;
    int rc = PL_ERR_INTERNAL;

    if ((rc = tail_get(a->db, &last, prev)))
        return rc;
    r->seq = last + 1u;
    if ((rc = rec_hash(prev, r, h_out)))
        return rc;
    if ((rc = db_prepare(a->db, &st,
                         "INSERT INTO record(" REC_COLS ") "
                         "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")))
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)r->seq);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->time_ms);
    for (int i = 0; i < N_FIELDS; i++)
        if ((rc = bind_field(st, 3 + i, &r->f[i], is_text[i])))
            goto out;
    sqlite3_bind_blob(st, 10, prev, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, h_out, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    if ((rc = step_done(&st)) == PL_OK)
        *seq_out = r->seq;
out:
    sqlite3_finalize(st);
    return rc;
}

/* After COMMIT (fsynced, synchronous=FULL): the sidecar. If this fails the sidecar is one
 * behind, the one case pl_audit_open repairs; the handle refuses to widen the gap. */
static int commit_head(struct pl_audit *a, uint64_t seq, const uint8_t h[PL_AUDIT_HASH_LEN])
{
    int rc = head_write(a, seq, h);
    if (rc) {
        a->broken = true;
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_head_write_failed seq=%llu",
             (unsigned long long)seq);
    }
    return rc;
}

static void now_ms(const struct pl_audit *a, int64_t *out)
{
    uint64_t now = pl_clock_now_ms(&a->clock);
    *out = now > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)now;
}

/* Appends inside the caller's lock. */
static int append_locked(struct pl_audit *a, struct rec *r, uint64_t *seq_out,
                         uint8_t h_out[PL_AUDIT_HASH_LEN])
{
    uint8_t h[PL_AUDIT_HASH_LEN];
    uint64_t seq = 0;
    int rc = PL_ERR_INTERNAL;

    if (a->broken)
        return PL_ERR_STATE;
    if ((rc = db_exec(a->db, "BEGIN IMMEDIATE")))
        return rc;
    if ((rc = insert_record(a, r, &seq, h)) || (rc = db_exec(a->db, "COMMIT"))) {
        (void)db_exec(a->db, "ROLLBACK");
        return rc;
    }
    if ((rc = commit_head(a, seq, h)))
        return rc;
    if (seq_out)
        *seq_out = seq;
    if (h_out)
        memcpy(h_out, h, PL_AUDIT_HASH_LEN);
    return PL_OK;
}

static int entry_to_rec(const struct pl_audit_entry *e, struct rec *r)
{
    memset(r, 0, sizeof(*r));
    if (e->kind == NULL || !kind_ok((const uint8_t *)e->kind, strlen(e->kind)))
        return PL_ERR_INVAL;
    if ((e->fixture && !printable(e->fixture, 1, PL_AUDIT_FIXTURE_MAX))
        || (e->state && !printable(e->state, 1, PL_AUDIT_STATE_MAX))
        || (e->detail && !printable(e->detail, 1, PL_AUDIT_DETAIL_MAX)))
        return PL_ERR_INVAL;
    set_text(&r->f[0], e->kind);
    set_text(&r->f[1], e->fixture);
    set_blob(&r->f[2], e->eid, 16);
    set_blob(&r->f[3], e->package_id, 16);
    set_text(&r->f[4], e->state);
    set_text(&r->f[5], e->detail);
    set_blob(&r->f[6], e->digest, PL_AUDIT_HASH_LEN);
    return PL_OK;
}

int pl_audit_append(struct pl_audit *a, const struct pl_audit_entry *e, uint64_t *seq,
                    uint8_t h[PL_AUDIT_HASH_LEN])
{
    struct rec r;
    int rc = PL_ERR_INTERNAL;

    if (a == NULL || e == NULL)
        return PL_ERR_INVAL;
    if ((rc = entry_to_rec(e, &r)))
        return rc;
    /* "checkpoint" records are written by pl_audit_record_checkpoint only (verify matches
     * each with its checkpoint row). */
    if (strcmp(e->kind, PL_AUDIT_KIND_CHECKPOINT) == 0)
        return PL_ERR_INVAL;
    now_ms(a, &r.time_ms);
    if ((rc = lock_fd(a->head_fd, LOCK_EX)))
        return rc;
    rc = append_locked(a, &r, seq, h);
    unlock_fd(a->head_fd);
    if (rc && rc != PL_ERR_STATE)
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_append_failed kind=%s error=\"%s\"", e->kind,
             pl_strerror(rc));
    return rc;
}

int pl_audit_transition(struct pl_audit *a, const char *fixture, const uint8_t *eid,
                        const uint8_t *package_id, const char *state, const char *detail)
{
    struct pl_audit_entry e = {
        PL_AUDIT_KIND_TRANSITION, fixture, eid, package_id, state, detail, NULL};
    if (state == NULL)
        return PL_ERR_INVAL;
    return pl_audit_append(a, &e, NULL, NULL);
}

int pl_audit_apdu(struct pl_audit *a, const char *fixture, const uint8_t *eid,
                  const uint8_t *package_id, const uint8_t digest[PL_AUDIT_HASH_LEN],
                  const char *detail)
{
    struct pl_audit_entry e = {PL_AUDIT_KIND_APDU, fixture, eid, package_id, NULL, detail, digest};
    if (digest == NULL)
        return PL_ERR_INVAL;
    return pl_audit_append(a, &e, NULL, NULL);
}

int pl_audit_checkpoint(struct pl_audit *a, uint64_t *seq, uint8_t h[PL_AUDIT_HASH_LEN])
{
    uint64_t s = 0;
    uint8_t hh[PL_AUDIT_HASH_LEN];
    int rc = PL_ERR_INTERNAL;

    if (a == NULL)
        return PL_ERR_INVAL;
    if ((rc = tail_get(a->db, &s, hh)))
        return rc;
    if (seq)
        *seq = s;
    if (h)
        memcpy(h, hh, PL_AUDIT_HASH_LEN);
    return PL_OK;
}

/* h of the chain point seq: a record, or the anchor. */
static int chain_point(sqlite3 *db, uint64_t seq, uint8_t h[PL_AUDIT_HASH_LEN])
{
    uint64_t anchor = 0;
    uint8_t ah[PL_AUDIT_HASH_LEN];
    sqlite3_stmt *st = NULL;
    int rc = anchor_get(db, &anchor, ah);

    if (rc)
        return rc;
    if (seq == anchor) {
        memcpy(h, ah, PL_AUDIT_HASH_LEN);
        return PL_OK;
    }
    if (seq < anchor || seq > (uint64_t)INT64_MAX)
        return PL_ERR_NOT_FOUND;
    if ((rc = db_prepare(db, &st, "SELECT h FROM record WHERE seq = ?")))
        return rc;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = col_fixed(st, 0, h, PL_AUDIT_HASH_LEN) ? PL_OK : PL_ERR_MALFORMED;
    else
        rc = r == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    sqlite3_finalize(st);
    return rc;
}

static int record_checkpoint_locked(struct pl_audit *a, uint64_t seq,
                                    const uint8_t h[PL_AUDIT_HASH_LEN], const struct ack *k)
{
    sqlite3_stmt *st = NULL;
    uint8_t point[PL_AUDIT_HASH_LEN], digest[PL_AUDIT_HASH_LEN], hn[PL_AUDIT_HASH_LEN];
    char detail[32];
    struct rec rec;
    uint64_t rseq = 0;
    int rc = PL_ERR_INTERNAL;

    if ((rc = db_exec(a->db, "BEGIN IMMEDIATE")))
        return rc;
    if ((rc = chain_point(a->db, seq, point)))
        goto out;
    if (!pl_ct_equal(point, h, PL_AUDIT_HASH_LEN)) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_checkpoint_refused seq=%llu reason=hash_differs",
             (unsigned long long)seq);
        rc = PL_ERR_STATE;
        goto out;
    }
    /* Already recorded? The same acknowledgement again is fine, another one is not. */
    if ((rc = db_prepare(a->db, &st,
                         "SELECT keymaker_sig, station_key FROM checkpoint WHERE seq = ?")))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        struct field fs, fk;
        col_field(st, 0, &fs);
        col_field(st, 1, &fk);
        bool same = fs.n == k->sig_len && (k->sig_len == 0 || memcmp(fs.p, k->sig, fs.n) == 0)
                    && fk.present == (k->station_key != NULL)
                    && (!fk.present
                        || (fk.n == PL_AUDIT_STATION_KEY_LEN
                            && memcmp(fk.p, k->station_key, fk.n) == 0));
        rc = same ? PL_OK : PL_ERR_EXISTS;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r != SQLITE_DONE) {
        rc = PL_ERR_DB;
        goto out;
    }
    if ((rc = cp_digest(seq, h, k, digest)))
        goto out;
    memset(&rec, 0, sizeof(rec));
    now_ms(a, &rec.time_ms);
    if ((rc = db_prepare(a->db, &st,
                         "INSERT INTO checkpoint(seq, h, keymaker_sig, recorded_ms, station_key) "
                         "VALUES(?, ?, ?, ?, ?)")))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_blob(st, 2, h, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, k->sig_len ? (const void *)k->sig : (const void *)"",
                      (int)k->sig_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)rec.time_ms);
    if (k->station_key)
        sqlite3_bind_blob(st, 5, k->station_key, PL_AUDIT_STATION_KEY_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    if ((rc = step_done(&st)))
        goto out;
    /* The acknowledgement is chained too: deleting or editing the row is then detected. */
    snprintf(detail, sizeof(detail), "seq=%llu", (unsigned long long)seq);
    set_text(&rec.f[0], PL_AUDIT_KIND_CHECKPOINT);
    set_text(&rec.f[5], detail);
    set_blob(&rec.f[6], digest, PL_AUDIT_HASH_LEN);
    if ((rc = insert_record(a, &rec, &rseq, hn)) || (rc = db_exec(a->db, "COMMIT")))
        goto out;
    if ((rc = commit_head(a, rseq, hn)))
        return rc;
    alog(a, PL_AUDIT_LOG_INFO, "event=audit_checkpoint seq=%llu sig_bytes=%zu signed=%s record=%llu",
         (unsigned long long)seq, k->sig_len, k->station_key ? "yes" : "no",
         (unsigned long long)rseq);
    return PL_OK;
out:
    sqlite3_finalize(st);
    (void)db_exec(a->db, rc == PL_OK ? "COMMIT" : "ROLLBACK");
    return rc;
}

static int record_checkpoint(struct pl_audit *a, uint64_t seq, const uint8_t h[PL_AUDIT_HASH_LEN],
                             const struct ack *k)
{
    int rc = PL_ERR_INTERNAL;

    if (a->broken)
        return PL_ERR_STATE;
    if ((rc = lock_fd(a->head_fd, LOCK_EX)))
        return rc;
    rc = record_checkpoint_locked(a, seq, h, k);
    unlock_fd(a->head_fd);
    return rc;
}

int pl_audit_record_checkpoint(struct pl_audit *a, uint64_t seq, const uint8_t h[PL_AUDIT_HASH_LEN],
                               const uint8_t *keymaker_sig, size_t sig_len)
{
    struct ack k = {keymaker_sig, sig_len, NULL};

    if (a == NULL || h == NULL || sig_len > PL_AUDIT_SIG_MAX || (keymaker_sig == NULL && sig_len))
        return PL_ERR_INVAL;
    return record_checkpoint(a, seq, h, &k);
}

int pl_audit_record_signed_checkpoint(struct pl_audit *a, const struct pl_audit_signed_checkpoint *cp,
                                      const struct pl_eckey *keymaker_key)
{
    struct ack k;

    if (a == NULL || cp == NULL)
        return PL_ERR_INVAL;
    if (memcmp(cp->chain_id, a->chain_id, PL_AUDIT_CHAIN_ID_LEN) != 0) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_checkpoint_refused seq=%llu reason=other_chain",
             (unsigned long long)cp->seq);
        return PL_ERR_STATE;
    }
    if (keymaker_key != NULL) {
        uint8_t tbs[PL_KM_CHECKPOINT_TBS_LEN];
        pl_km_checkpoint_tbs(cp->station_key, cp->chain_id, cp->seq, cp->h, tbs);
        if (pl_ecdsa_verify(keymaker_key, tbs, sizeof(tbs), cp->sig) != PL_OK) {
            alog(a, PL_AUDIT_LOG_ERROR,
                 "event=audit_checkpoint_refused seq=%llu reason=bad_signature",
                 (unsigned long long)cp->seq);
            return PL_ERR_BAD_SIGNATURE;
        }
    }
    k.sig = cp->sig;
    k.sig_len = sizeof(cp->sig);
    k.station_key = cp->station_key;
    return record_checkpoint(a, cp->seq, cp->h, &k);
}

int pl_audit_find(struct pl_audit *a, const uint8_t h[PL_AUDIT_HASH_LEN], uint64_t *seq)
{
    sqlite3_stmt *st = NULL;
    uint64_t anchor = 0;
    uint8_t ah[PL_AUDIT_HASH_LEN];
    int rc = PL_ERR_INTERNAL;

    if (a == NULL || h == NULL || seq == NULL)
        return PL_ERR_INVAL;
    if ((rc = anchor_get(a->db, &anchor, ah)))
        return rc;
    if (pl_ct_equal(ah, h, PL_AUDIT_HASH_LEN)) {
        *seq = anchor;
        return PL_OK;
    }
    if ((rc = db_prepare(a->db, &st, "SELECT seq FROM record WHERE h = ? ORDER BY seq LIMIT 1")))
        return rc;
    sqlite3_bind_blob(st, 1, h, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(st, 0);
        *seq = v > 0 ? (uint64_t)v : 0u;
        rc = v > 0 ? PL_OK : PL_ERR_MALFORMED;
    } else {
        rc = r == SQLITE_DONE ? PL_ERR_NOT_FOUND : PL_ERR_DB;
    }
    sqlite3_finalize(st);
    return rc;
}

static int purge_locked(struct pl_audit *a, uint64_t before)
{
    sqlite3_stmt *st = NULL;
    uint64_t anchor = 0, last = 0;
    uint8_t ah[PL_AUDIT_HASH_LEN], lh[PL_AUDIT_HASH_LEN], h[PL_AUDIT_HASH_LEN];
    int rc = PL_ERR_INTERNAL;

    if (before == 0 || before > (uint64_t)INT64_MAX)
        return PL_ERR_INVAL;
    uint64_t cut = before - 1u;
    if ((rc = db_exec(a->db, "BEGIN IMMEDIATE")))
        return rc;
    if ((rc = anchor_get(a->db, &anchor, ah)) || (rc = tail_get(a->db, &last, lh)))
        goto out;
    if (cut <= anchor) {
        rc = db_exec(a->db, "COMMIT");
        return rc;
    }
    if (cut > last) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    if ((rc = chain_point(a->db, cut, h)))
        goto out;
    /* The new anchor must be a point the Key Maker acknowledged. */
    if ((rc = db_prepare(a->db, &st, "SELECT h FROM checkpoint WHERE seq = ?")))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cut);
    uint8_t cph[PL_AUDIT_HASH_LEN];
    int r = sqlite3_step(st);
    bool backed = r == SQLITE_ROW && col_fixed(st, 0, cph, PL_AUDIT_HASH_LEN)
                  && pl_ct_equal(cph, h, PL_AUDIT_HASH_LEN);
    sqlite3_finalize(st);
    st = NULL;
    if (!backed) {
        alog(a, PL_AUDIT_LOG_ERROR, "event=audit_purge_refused before=%llu reason=no_checkpoint",
             (unsigned long long)before);
        rc = PL_ERR_STATE;
        goto out;
    }
    if ((rc = db_prepare(a->db, &st, "UPDATE anchor SET seq = ?, h = ? WHERE id = 1")))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cut);
    sqlite3_bind_blob(st, 2, h, PL_AUDIT_HASH_LEN, SQLITE_STATIC);
    if ((rc = step_done(&st)))
        goto out;
    if ((rc = db_prepare(a->db, &st, "DELETE FROM record WHERE seq <= ?")))
        goto out;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)cut);
    if ((rc = step_done(&st)))
        goto out;
    int deleted = sqlite3_changes(a->db);
    if ((rc = db_exec(a->db, "COMMIT")))
        goto out;
    /* secure_delete overwrote the freed pages in the database; copy the WAL back and
     * truncate it so the old page images do not linger there either. */
    if (sqlite3_wal_checkpoint_v2(a->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK)
        alog(a, PL_AUDIT_LOG_WARN, "event=audit_wal_checkpoint_failed");
    alog(a, PL_AUDIT_LOG_INFO, "event=audit_purged before=%llu deleted=%d anchor=%llu",
         (unsigned long long)before, deleted, (unsigned long long)cut);
    return PL_OK;
out:
    sqlite3_finalize(st);
    (void)db_exec(a->db, "ROLLBACK");
    return rc;
}

int pl_audit_purge_before(struct pl_audit *a, uint64_t before)
{
    int rc = PL_ERR_INTERNAL;
    if (a == NULL)
        return PL_ERR_INVAL;
    if ((rc = lock_fd(a->head_fd, LOCK_EX)))
        return rc;
    rc = purge_locked(a, before);
    unlock_fd(a->head_fd);
    return rc;
}

/* ---------------------------------------------------------------- verifier ---- */

const char *pl_audit_fault_name(enum pl_audit_fault f)
{
    switch (f) {
    case PL_AUDIT_FAULT_NONE:
        return "none";
    case PL_AUDIT_FAULT_FORMAT:
        return "not-an-audit-trail";
    case PL_AUDIT_FAULT_ANCHOR:
        return "anchor-invalid";
    case PL_AUDIT_FAULT_GAP:
        return "records-missing";
    case PL_AUDIT_FAULT_LINK:
        return "chain-link-broken";
    case PL_AUDIT_FAULT_HASH:
        return "hash-mismatch";
    case PL_AUDIT_FAULT_RECORD:
        return "record-malformed";
    case PL_AUDIT_FAULT_HEAD_MISSING:
        return "head-missing";
    case PL_AUDIT_FAULT_HEAD_CORRUPT:
        return "head-corrupt";
    case PL_AUDIT_FAULT_TRUNCATED:
        return "tail-truncated";
    case PL_AUDIT_FAULT_UNANCHORED:
        return "records-after-head";
    case PL_AUDIT_FAULT_HEAD_MISMATCH:
        return "head-mismatch";
    case PL_AUDIT_FAULT_CHECKPOINT:
        return "checkpoint-mismatch";
    case PL_AUDIT_FAULT_SIGNATURE:
        return "checkpoint-signature-invalid";
    default:
        return "unknown";
    }
}

static void fault(struct pl_audit_report *rep, enum pl_audit_fault f, uint64_t seq, const char *fmt,
                  ...) AUD_PRINTF(4, 5);

/* Records the first fault only. */
static void fault(struct pl_audit_report *rep, enum pl_audit_fault f, uint64_t seq, const char *fmt,
                  ...)
{
    va_list ap;
    if (rep->fault != PL_AUDIT_FAULT_NONE)
        return;
    rep->ok = false;
    rep->fault = f;
    rep->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
    va_end(ap);
}

/* "seq=N" with N a canonical decimal. */
static bool parse_cp_detail(const struct field *f, uint64_t *seq)
{
    uint64_t v = 0;
    if (!f->present || f->n < 5 || f->n > 24 || memcmp(f->p, "seq=", 4) != 0)
        return false;
    if (f->p[4] == '0' && f->n > 5)
        return false;
    for (size_t i = 4; i < f->n; i++) {
        if (f->p[i] < '0' || f->p[i] > '9' || v > (UINT64_MAX - 9u) / 10u)
            return false;
        v = v * 10u + (uint64_t)(f->p[i] - '0');
    }
    *seq = v;
    return true;
}

/* Walks the records from the anchor. *last / last_h get the verified tail. */
static int verify_records(sqlite3 *db, uint64_t anchor, const uint8_t anchor_h[PL_AUDIT_HASH_LEN],
                          struct pl_audit_report *rep, uint64_t *last,
                          uint8_t last_h[PL_AUDIT_HASH_LEN])
{
    sqlite3_stmt *st = NULL;
    uint8_t prev[PL_AUDIT_HASH_LEN], calc[PL_AUDIT_HASH_LEN], stored_prev[PL_AUDIT_HASH_LEN],
        stored[PL_AUDIT_HASH_LEN];
    uint64_t expect = anchor + 1u;
    int rc = db_prepare(db, &st, "SELECT " REC_COLS " FROM record ORDER BY seq");

    if (rc) {
        fault(rep, PL_AUDIT_FAULT_FORMAT, 0, "no record table");
        return PL_OK;
    }
    memcpy(prev, anchor_h, PL_AUDIT_HASH_LEN);
    *last = anchor;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        struct rec rec;
        bool cols = rec_from_row(st, &rec);
        uint64_t seq = rec.seq;
        if (seq <= anchor) {
            fault(rep, PL_AUDIT_FAULT_ANCHOR, seq,
                  "record %llu at or before the anchor %llu (purged record reinserted?)",
                  (unsigned long long)seq, (unsigned long long)anchor);
            break;
        }
        if (seq != expect) {
            fault(rep, PL_AUDIT_FAULT_GAP, expect, "records %llu..%llu missing (deleted)",
                  (unsigned long long)expect, (unsigned long long)(seq - 1u));
            break;
        }
        if (!cols || !rec_ok(&rec)) {
            fault(rep, PL_AUDIT_FAULT_RECORD, seq, "record %llu breaks the field rules",
                  (unsigned long long)seq);
            break;
        }
        if (!col_fixed(st, 9, stored_prev, PL_AUDIT_HASH_LEN)
            || !pl_ct_equal(stored_prev, prev, PL_AUDIT_HASH_LEN)) {
            fault(rep, PL_AUDIT_FAULT_LINK, seq,
                  "record %llu: h_prev is not the hash of record %llu (inserted, reordered or "
                  "replaced)",
                  (unsigned long long)seq, (unsigned long long)(seq - 1u));
            break;
        }
        if ((rc = rec_hash(prev, &rec, calc)))
            goto out;
        if (!col_fixed(st, 10, stored, PL_AUDIT_HASH_LEN)
            || !pl_ct_equal(calc, stored, PL_AUDIT_HASH_LEN)) {
            fault(rep, PL_AUDIT_FAULT_HASH, seq,
                  "record %llu: content does not hash to its h (record or hash edited)",
                  (unsigned long long)seq);
            break;
        }
        memcpy(prev, calc, PL_AUDIT_HASH_LEN);
        if (rep->records == 0)
            rep->first_seq = seq;
        rep->last_seq = seq;
        rep->records++;
        *last = seq;
        expect = seq + 1u;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = PL_ERR_DB;
        goto out;
    }
    memcpy(last_h, prev, PL_AUDIT_HASH_LEN);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

/* The acknowledgement of a checkpoint row selected as (..., keymaker_sig, station_key) at
 * columns col, col + 1: false if it breaks the rules (oversized, or a station key that is not
 * 32 bytes). */
static bool ack_from_row(sqlite3_stmt *st, int col, struct ack *k)
{
    struct field fs, fk;
    col_field(st, col, &fs);
    col_field(st, col + 1, &fk);
    k->sig = fs.p;
    k->sig_len = fs.n;
    k->station_key = fk.present ? fk.p : NULL;
    return fs.present && fs.n <= PL_AUDIT_SIG_MAX
           && (!fk.present || (fk.p != NULL && fk.n == PL_AUDIT_STATION_KEY_LEN));
}

/* Every checkpoint row agrees with the chain (and its signature with the key), and every
 * "checkpoint" record has its row with the digest it committed to. cp_cols: the SQL of the
 * acknowledgement columns (a trail from before signed checkpoints has no station_key). */
static int verify_checkpoints(sqlite3 *db, const uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN],
                              uint64_t anchor, const uint8_t anchor_h[PL_AUDIT_HASH_LEN],
                              uint64_t last, const struct pl_audit_verify_opts *opts,
                              struct pl_audit_report *rep)
{
    sqlite3_stmt *st = NULL, *rs = NULL;
    bool anchor_backed = anchor == 0;
    const char *ack_cols =
        has_station_key_column(db) ? "keymaker_sig, station_key" : "keymaker_sig, NULL";
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT seq, h, %s FROM checkpoint ORDER BY seq", ack_cols);
    int rc = db_prepare(db, &st, sql);

    if (rc) {
        fault(rep, PL_AUDIT_FAULT_FORMAT, 0, "no checkpoint table");
        return PL_OK;
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 s = sqlite3_column_int64(st, 0);
        uint64_t seq = s > 0 ? (uint64_t)s : 0u;
        uint8_t h[PL_AUDIT_HASH_LEN], point[PL_AUDIT_HASH_LEN];
        struct ack k;
        rep->checkpoints++;
        if (s < 0 || !col_fixed(st, 1, h, PL_AUDIT_HASH_LEN) || !ack_from_row(st, 2, &k)) {
            fault(rep, PL_AUDIT_FAULT_CHECKPOINT, seq, "checkpoint %llu malformed",
                  (unsigned long long)seq);
            break;
        }
        if (seq > last) {
            fault(rep, PL_AUDIT_FAULT_TRUNCATED, seq,
                  "checkpoint %llu beyond the last record %llu (tail truncated)",
                  (unsigned long long)seq, (unsigned long long)last);
            break;
        }
        if (seq < anchor) {
            rep->checkpoints_before_anchor++;
        } else {
            if ((rc = chain_point(db, seq, point)))
                goto out;
            if (!pl_ct_equal(point, h, PL_AUDIT_HASH_LEN)) {
                fault(rep, PL_AUDIT_FAULT_CHECKPOINT, seq,
                      "checkpoint %llu: h differs from the chain", (unsigned long long)seq);
                break;
            }
            if (seq == anchor && pl_ct_equal(anchor_h, h, PL_AUDIT_HASH_LEN))
                anchor_backed = true;
        }
        if (k.station_key != NULL) {
            memcpy(rep->station_key, k.station_key, PL_AUDIT_STATION_KEY_LEN);
            rep->has_station_key = true;
        }
        if (opts && opts->keymaker_key) {
            /* Every checkpoint must be one the Key Maker signed for this chain (protocol
             * v2): (station key, chain id, seq, h) under its key. */
            uint8_t tbs[PL_KM_CHECKPOINT_TBS_LEN];
            if (k.station_key == NULL || k.sig_len != PL_ECDSA_SIG_LEN) {
                fault(rep, PL_AUDIT_FAULT_SIGNATURE, seq,
                      "checkpoint %llu: not signed by the Key Maker", (unsigned long long)seq);
                break;
            }
            pl_km_checkpoint_tbs(k.station_key, chain_id, seq, h, tbs);
            if (pl_ecdsa_verify(opts->keymaker_key, tbs, sizeof(tbs), k.sig) != PL_OK) {
                fault(rep, PL_AUDIT_FAULT_SIGNATURE, seq,
                      "checkpoint %llu: Key Maker signature does not verify",
                      (unsigned long long)seq);
                break;
            }
            rep->signatures_verified++;
        } else if (k.sig_len > 0) {
            rep->signatures_unchecked++;
        }
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = PL_ERR_DB;
        goto out;
    }
    if (!anchor_backed)
        fault(rep, PL_AUDIT_FAULT_ANCHOR, anchor,
              "anchor %llu is backed by no checkpoint (records purged without one?)",
              (unsigned long long)anchor);

    /* The chained acknowledgements: each "checkpoint" record names a row whose content
     * hashes to the record's digest (rows deleted or edited are caught here). */
    if ((rc = db_prepare(db, &rs,
                         "SELECT detail, digest, seq FROM record WHERE kind = 'checkpoint'"
                         " ORDER BY seq")))
        goto out;
    while ((r = sqlite3_step(rs)) == SQLITE_ROW && rep->fault == PL_AUDIT_FAULT_NONE) {
        struct field det;
        uint64_t cps = 0;
        uint8_t digest[PL_AUDIT_HASH_LEN], want[PL_AUDIT_HASH_LEN], h[PL_AUDIT_HASH_LEN];
        uint64_t rseq = (uint64_t)sqlite3_column_int64(rs, 2);
        col_field(rs, 0, &det);
        if (!parse_cp_detail(&det, &cps) || !col_fixed(rs, 1, digest, PL_AUDIT_HASH_LEN)) {
            fault(rep, PL_AUDIT_FAULT_CHECKPOINT, rseq, "checkpoint record %llu malformed",
                  (unsigned long long)rseq);
            break;
        }
        sqlite3_stmt *q = NULL;
        snprintf(sql, sizeof(sql), "SELECT h, %s FROM checkpoint WHERE seq = ?", ack_cols);
        if ((rc = db_prepare(db, &q, sql)))
            goto out;
        sqlite3_bind_int64(q, 1, (sqlite3_int64)cps);
        int qr = sqlite3_step(q);
        bool ok = false;
        struct ack k;
        if (qr == SQLITE_ROW && col_fixed(q, 0, h, PL_AUDIT_HASH_LEN) && ack_from_row(q, 1, &k)
            && cp_digest(cps, h, &k, want) == PL_OK)
            ok = pl_ct_equal(want, digest, PL_AUDIT_HASH_LEN);
        sqlite3_finalize(q);
        if (!ok)
            fault(rep, PL_AUDIT_FAULT_CHECKPOINT, cps,
                  "checkpoint %llu: stored acknowledgement differs from record %llu "
                  "(checkpoint edited or deleted)",
                  (unsigned long long)cps, (unsigned long long)rseq);
    }
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(rs);
    return rc;
}

/* A checkpoint row at or after the anchor without its chained acknowledgement record was
 * inserted behind the writer's back (rows before the anchor may have lost theirs to a
 * purge). */
static int verify_cp_rows_chained(sqlite3 *db, struct pl_audit_report *rep)
{
    sqlite3_stmt *st = NULL;
    int rc = db_prepare(db, &st,
                        "SELECT c.seq FROM checkpoint c WHERE NOT EXISTS (SELECT 1 FROM record r "
                        "WHERE r.kind = 'checkpoint' AND r.detail = 'seq=' || c.seq) "
                        "AND c.seq >= (SELECT seq FROM anchor WHERE id = 1) "
                        "ORDER BY c.seq LIMIT 1");
    if (rc)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        /* A row whose acknowledgement record was purged is expected; one whose record
         * should still be there is not. */
        uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
        fault(rep, PL_AUDIT_FAULT_CHECKPOINT, seq,
              "checkpoint %llu has no acknowledgement record in the chain (inserted)",
              (unsigned long long)seq);
    }
    sqlite3_finalize(st);
    return (r == SQLITE_ROW || r == SQLITE_DONE) ? PL_OK : PL_ERR_DB;
}

int pl_audit_verify_ex(const char *path, const struct pl_audit_verify_opts *opts,
                       struct pl_audit_report *rep)
{
    sqlite3 *db = NULL;
    char *hp = NULL;
    int fd = -1;
    bool locked = false, in_tx = false;
    uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN], anchor_h[PL_AUDIT_HASH_LEN], g[PL_AUDIT_HASH_LEN],
        last_h[PL_AUDIT_HASH_LEN];
    uint64_t anchor = 0, last = 0;
    struct head hd;
    int rc = PL_ERR_INTERNAL;

    if (path == NULL || rep == NULL)
        return PL_ERR_INVAL;
    memset(rep, 0, sizeof(*rep));
    rep->ok = true;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    if ((hp = head_path(path)) == NULL)
        return PL_ERR_NOMEM;
    memset(&hd, 0, sizeof(hd));
    fd = open(hp, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        /* Shared lock while the database snapshot is taken and the sidecar read, so both
         * show the same moment; released before the (long) walk over the records, which
         * runs in that snapshot (WAL): a running station is held up only briefly. */
        if ((rc = lock_fd(fd, LOCK_SH)))
            goto out;
        locked = true;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = PL_ERR_DB;
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (db_exec(db, "BEGIN") != PL_OK) {
        rc = PL_ERR_DB;
        goto out;
    }
    in_tx = true;
    /* The first read fixes the snapshot. */
    if (meta_chain_id(db, chain_id) != PL_OK) {
        fault(rep, PL_AUDIT_FAULT_FORMAT, 0, "no provline audit metadata");
        rc = PL_OK;
        goto out;
    }
    if (fd >= 0 && (rc = head_read(fd, &hd)))
        goto out;
    if (locked) {
        unlock_fd(fd);
        locked = false;
    }
    if (anchor_get(db, &anchor, anchor_h) != PL_OK) {
        fault(rep, PL_AUDIT_FAULT_FORMAT, 0, "no anchor");
        rc = PL_OK;
        goto out;
    }
    rep->anchor_seq = anchor;
    if ((rc = genesis(chain_id, g)))
        goto out;
    if (anchor == 0 && !pl_ct_equal(g, anchor_h, PL_AUDIT_HASH_LEN))
        fault(rep, PL_AUDIT_FAULT_ANCHOR, 0, "anchor 0 is not the genesis hash of this chain");
    if ((rc = verify_records(db, anchor, anchor_h, rep, &last, last_h)))
        goto out;

    /* The sidecar. */
    if (fd < 0) {
        fault(rep, PL_AUDIT_FAULT_HEAD_MISSING, 0, "head sidecar %s missing", hp);
    } else if (!hd.valid || memcmp(hd.chain_id, chain_id, PL_AUDIT_CHAIN_ID_LEN) != 0) {
        fault(rep, PL_AUDIT_FAULT_HEAD_CORRUPT, 0,
              "head sidecar %s has no valid slot of this chain", hp);
    } else if (rep->fault == PL_AUDIT_FAULT_NONE) {
        rep->head_seq = hd.seq;
        if (hd.seq > last)
            fault(rep, PL_AUDIT_FAULT_TRUNCATED, last + 1u,
                  "the head says %llu records, the trail ends at %llu (tail truncated)",
                  (unsigned long long)hd.seq, (unsigned long long)last);
        else if (hd.seq < last)
            fault(rep, PL_AUDIT_FAULT_UNANCHORED, hd.seq + 1u,
                  "records %llu..%llu come after the head (appended behind the writer's back)",
                  (unsigned long long)(hd.seq + 1u), (unsigned long long)last);
        else if (!pl_ct_equal(hd.h, last_h, PL_AUDIT_HASH_LEN))
            fault(rep, PL_AUDIT_FAULT_HEAD_MISMATCH, last,
                  "the head's hash differs from record %llu (chain rewritten)",
                  (unsigned long long)last);
    }
    if (rep->fault == PL_AUDIT_FAULT_NONE
        && (rc = verify_checkpoints(db, chain_id, anchor, anchor_h, last, opts, rep)))
        goto out;
    if (rep->fault == PL_AUDIT_FAULT_NONE && (rc = verify_cp_rows_chained(db, rep)))
        goto out;
    rc = PL_OK;
out:
    if (in_tx)
        (void)db_exec(db, "COMMIT");
    if (db)
        sqlite3_close(db);
    if (locked)
        unlock_fd(fd);
    if (fd >= 0)
        close(fd);
    free(hp);
    if (rep->fault != PL_AUDIT_FAULT_NONE)
        rep->ok = false;
    return rc;
}

int pl_audit_verify(const char *path, struct pl_audit_report *report)
{
    return pl_audit_verify_ex(path, NULL, report);
}
