/* The counter guard file: see counter_guard.h and docs/decisions/0011-eim-counter-floor.md.
 * ARCHITECTURE.md §5 ("restoring an old database must not make the eIM reuse a counter
 * value"); GSMA SGP.32 v1.2 §2.11.1.1 (counterValue replay protection).
 * The file is read through rd.h like any other bytes from outside the process. */
#define _DEFAULT_SOURCE
#include "provline/eim/counter_guard.h"

#include "provline/protocol/crypto.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define GUARD_MAGIC     "PLEIMCG1"
#define GUARD_MAGIC_LEN 8u
#define GUARD_BODY_LEN  (GUARD_MAGIC_LEN + PL_EIM_STORE_ID_LEN + 4u + PL_EIM_GUARD_BUCKETS * 16u)
#define GUARD_FILE_LEN  (GUARD_BODY_LEN + PL_SHA256_LEN)

struct guard_state {
    uint8_t store_id[PL_EIM_STORE_ID_LEN];
    uint32_t block;
    uint64_t seen[PL_EIM_GUARD_BUCKETS];
    uint64_t hwm[PL_EIM_GUARD_BUCKETS];
};

struct pl_eim_guard {
    char *path;
    char *lock_path;
    char *tmp_path;
    uint32_t block;
    bool bound;
    struct guard_state st; /* cache: seen/hwm only ever grow in the file */
};

static char *str_cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

int pl_eim_guard_open(const char *path, uint32_t block, struct pl_eim_guard **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_guard *g = NULL;

    if (path == NULL || path[0] == '\0' || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return PL_ERR_NOMEM;
    g->block = block ? block : PL_EIM_GUARD_DEFAULT_BLOCK;
    g->path = str_cat(path, "");
    g->lock_path = str_cat(path, ".lock");
    g->tmp_path = str_cat(path, ".tmp");
    if (g->path == NULL || g->lock_path == NULL || g->tmp_path == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    *out = g;
    g = NULL;
    rc = PL_OK;
out:
    pl_eim_guard_free(g);
    return rc;
}

void pl_eim_guard_free(struct pl_eim_guard *g)
{
    if (g == NULL)
        return;
    free(g->path);
    free(g->lock_path);
    free(g->tmp_path);
    free(g);
}

/* flock(2) on a separate lock file: the guard itself is replaced by rename. Each call
 * opens its own descriptor, so two handles in one process exclude each other too. */
static int lock_take(const struct pl_eim_guard *g, int how, int *fd_out)
{
    int fd = open(g->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return PL_ERR_IO;
    while (flock(fd, how) != 0) {
        if (errno != EINTR) {
            close(fd);
            return PL_ERR_IO;
        }
    }
    *fd_out = fd;
    return PL_OK;
}

static void lock_drop(int fd)
{
    if (fd >= 0) {
        (void)flock(fd, LOCK_UN);
        close(fd);
    }
}

/* Parses the file image (untrusted: it may be damaged, truncated or someone else's). */
static int parse_image(const uint8_t *buf, size_t len, struct guard_state *st)
{
    struct pl_rd r;
    const uint8_t *magic = NULL;
    uint8_t digest[PL_SHA256_LEN];
    const uint8_t *stored = NULL;
    uint32_t block = 0;

    if (len != GUARD_FILE_LEN)
        return PL_ERR_MALFORMED;
    pl_rd_init(&r, buf, len);
    if (pl_rd_bytes(&r, GUARD_MAGIC_LEN, &magic) != PL_OK
        || memcmp(magic, GUARD_MAGIC, GUARD_MAGIC_LEN) != 0)
        return PL_ERR_MALFORMED;
    if (pl_rd_copy(&r, st->store_id, PL_EIM_STORE_ID_LEN) != PL_OK
        || pl_rd_u32be(&r, &block) != PL_OK)
        return PL_ERR_MALFORMED;
    st->block = block;
    for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
        if (pl_rd_u64be(&r, &st->seen[b]) != PL_OK || pl_rd_u64be(&r, &st->hwm[b]) != PL_OK)
            return PL_ERR_MALFORMED;
        if (st->seen[b] > st->hwm[b])
            return PL_ERR_MALFORMED;
    }
    if (pl_rd_bytes(&r, PL_SHA256_LEN, &stored) != PL_OK || !pl_rd_done(&r))
        return PL_ERR_MALFORMED;
    if (pl_sha256(buf, GUARD_BODY_LEN, digest) != PL_OK)
        return PL_ERR_CRYPTO;
    if (!pl_ct_equal(digest, stored, PL_SHA256_LEN))
        return PL_ERR_MALFORMED;
    return PL_OK;
}

/* Reads path into st. PL_ERR_NOT_FOUND when the file does not exist. */
static int read_file(const char *path, struct guard_state *st)
{
    uint8_t buf[GUARD_FILE_LEN + 1];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    while (n < sizeof(buf)) {
        ssize_t got = read(fd, buf + n, sizeof(buf) - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            close(fd);
            return PL_ERR_IO;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    return parse_image(buf, n, st);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xFFu);
        v >>= 8;
    }
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PL_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return PL_OK;
}

/* Durable atomic replace: the new content is on disk before the rename, and the rename
 * is on disk (directory fsync) before we return. */
static int write_file(const struct pl_eim_guard *g, const struct guard_state *st)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t buf[GUARD_FILE_LEN];
    size_t off = 0;
    int fd = -1, dfd = -1;
    char *dir = NULL, *slash = NULL;

    memcpy(buf, GUARD_MAGIC, GUARD_MAGIC_LEN);
    off = GUARD_MAGIC_LEN;
    memcpy(buf + off, st->store_id, PL_EIM_STORE_ID_LEN);
    off += PL_EIM_STORE_ID_LEN;
    put_u32(buf + off, st->block);
    off += 4;
    for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
        put_u64(buf + off, st->seen[b]);
        put_u64(buf + off + 8, st->hwm[b]);
        off += 16;
    }
    if ((rc = pl_sha256(buf, GUARD_BODY_LEN, buf + GUARD_BODY_LEN)) != PL_OK)
        goto out;

    fd = open(g->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    if ((rc = write_all(fd, buf, sizeof(buf))) != PL_OK)
        goto out;
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = PL_ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename(g->tmp_path, g->path) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    dir = str_cat(g->path, "");
    if (dir == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    rc = PL_OK;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

int pl_eim_guard_bind(struct pl_eim_guard *g, const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                      const uint64_t db_seq[PL_EIM_GUARD_BUCKETS], bool create_over_used)
{
    int rc = PL_ERR_INTERNAL;
    int lfd = -1;
    struct guard_state st;

    if (g == NULL || store_id == NULL || db_seq == NULL)
        return PL_ERR_INVAL;
    if ((rc = lock_take(g, LOCK_EX, &lfd)) != PL_OK)
        return rc;
    memset(&st, 0, sizeof(st));
    rc = read_file(g->path, &st);
    if (rc == PL_ERR_NOT_FOUND) {
        for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS && !create_over_used; b++) {
            if (db_seq[b] != 0) {
                rc = PL_ERR_CONFIG; /* reserved counters exist, but no guard vouches for them */
                goto out;
            }
        }
        memcpy(st.store_id, store_id, PL_EIM_STORE_ID_LEN);
        st.block = g->block;
        for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
            st.seen[b] = db_seq[b]; /* committed now: an older database is caught from here on */
            st.hwm[b] = db_seq[b];
        }
        if ((rc = write_file(g, &st)) != PL_OK)
            goto out;
    } else if (rc != PL_OK) {
        goto out;
    }
    if (memcmp(st.store_id, store_id, PL_EIM_STORE_ID_LEN) != 0) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    g->st = st;
    g->bound = false;
    for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
        if (db_seq[b] < st.seen[b]) {
            rc = PL_ERR_REPLAY;
            goto out;
        }
    }
    g->bound = true;
    rc = PL_OK;
out:
    lock_drop(lfd);
    return rc;
}

int pl_eim_guard_admit(struct pl_eim_guard *g, unsigned bucket, uint64_t new_seq)
{
    int rc = PL_ERR_INTERNAL;
    int lfd = -1;
    struct guard_state st;

    if (g == NULL || !g->bound || bucket >= PL_EIM_GUARD_BUCKETS || new_seq == 0)
        return PL_ERR_INVAL;
    /* new_seq - 1 was committed before this transaction took the bucket row. */
    if (new_seq - 1 < g->st.seen[bucket])
        return PL_ERR_REPLAY;
    if (new_seq <= g->st.hwm[bucket])
        return PL_OK;

    if ((rc = lock_take(g, LOCK_EX, &lfd)) != PL_OK)
        return rc;
    if ((rc = read_file(g->path, &st)) != PL_OK)
        goto out; /* the guard vanished or was damaged while we ran: stop handing out */
    if (memcmp(st.store_id, g->st.store_id, PL_EIM_STORE_ID_LEN) != 0) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    if (new_seq - 1 < st.seen[bucket]) {
        rc = PL_ERR_REPLAY;
        goto out;
    }
    if (new_seq > st.hwm[bucket]) {
        if (new_seq - 1 > UINT64_MAX - g->block) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        st.seen[bucket] = new_seq - 1;
        st.hwm[bucket] = new_seq - 1 + g->block;
        if ((rc = write_file(g, &st)) != PL_OK)
            goto out;
    }
    g->st = st;
    rc = PL_OK;
out:
    lock_drop(lfd);
    return rc;
}

int pl_eim_guard_read_hwm(const char *path, const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                          uint64_t hwm[PL_EIM_GUARD_BUCKETS])
{
    struct guard_state st;
    int rc;

    if (path == NULL || store_id == NULL || hwm == NULL)
        return PL_ERR_INVAL;
    if ((rc = read_file(path, &st)) != PL_OK)
        return rc;
    if (memcmp(st.store_id, store_id, PL_EIM_STORE_ID_LEN) != 0)
        return PL_ERR_CONFIG;
    memcpy(hwm, st.hwm, sizeof(st.hwm));
    return PL_OK;
}

int pl_eim_guard_read_hwm_of(const struct pl_eim_guard *g,
                             const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                             uint64_t hwm[PL_EIM_GUARD_BUCKETS])
{
    if (g == NULL)
        return PL_ERR_INVAL;
    return pl_eim_guard_read_hwm(g->path, store_id, hwm);
}

int pl_eim_guard_raise(struct pl_eim_guard *g, const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                       const uint64_t seq[PL_EIM_GUARD_BUCKETS])
{
    int rc = PL_ERR_INTERNAL;
    int lfd = -1;
    struct guard_state st;

    if (g == NULL || store_id == NULL || seq == NULL)
        return PL_ERR_INVAL;
    if ((rc = lock_take(g, LOCK_EX, &lfd)) != PL_OK)
        return rc;
    rc = read_file(g->path, &st);
    if (rc == PL_ERR_NOT_FOUND) {
        memset(&st, 0, sizeof(st));
        memcpy(st.store_id, store_id, PL_EIM_STORE_ID_LEN);
        st.block = g->block;
    } else if (rc != PL_OK) {
        goto out;
    }
    if (memcmp(st.store_id, store_id, PL_EIM_STORE_ID_LEN) != 0) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
        if (seq[b] > st.seen[b])
            st.seen[b] = seq[b];
        if (st.seen[b] > st.hwm[b])
            st.hwm[b] = st.seen[b];
    }
    if ((rc = write_file(g, &st)) != PL_OK)
        goto out;
    g->st = st;
    g->bound = true;
    rc = PL_OK;
out:
    lock_drop(lfd);
    return rc;
}
