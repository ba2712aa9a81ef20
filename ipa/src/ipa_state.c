/* The IPA's own state file (provline format, docs/ipa.md §4): what the IPA must remember
 * across a restart so that no eUICC Package result is lost or invented (SGP.32 v1.2
 * §3.1.1.1 eIM Package Retrieval, §2.11.1.4 EimAcknowledgements; reference/EIM.md §1.6).
 *
 *   offset 0  "PLIP"  magic          4  01 format version      5  00 00 00 reserved
 *          8  u32 big-endian body length N
 *         12  body: strict DER TLVs, context tags in this order
 *             80 EID (16) | 81 eimId | 82 eimFqdn | 83 lastPoll | 84 nextPoll | 85 backoff
 *             | 86 fingerprint (32) | 87 notifyStateChange BOOLEAN
 *             | A8 { 80 eimId, 81 counter, [82 txid] }   package in flight
 *             | A9 { 80 attempts, 81 ProvideEimPackageResult }   result not yet accepted
 *             | AA { 80 seq ... }   delivered, awaiting an acknowledgement
 *             | 8B ProfileDownloadTriggerRequest | AC { 80 polls, 81 packages, 82 acks,
 *             83 recovered }
 *     12 + N  SHA-256 over bytes 0 .. 12+N (a torn or edited file is refused)
 *
 * Written tearing-safely: PATH.tmp (O_TRUNC, 0600) -> fsync -> rename -> fsync of the
 * directory, so after a power loss PATH is the old or the new state, never a mix. The file
 * is parsed like any hostile input (der.h). */
#define _POSIX_C_SOURCE 200809L

#include "ipa_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_MAGIC   "PLIP"
#define STATE_VERSION 1u
#define STATE_HDR     12u
#define STATE_MAX     (2u * PL_IPA_BODY_MAX + 8192u)

void pl_ipa_state_init(struct pl_ipa_state *st)
{
    memset(st, 0, sizeof(*st));
    pl_wr_init_dyn(&st->pending, PL_IPA_BODY_MAX);
}

void pl_ipa_state_free(struct pl_ipa_state *st)
{
    pl_wr_free(&st->pending);
}

int pl_ipa_state_encode(const struct pl_ipa_state *st, struct pl_wr *w)
{
    uint8_t digest[PL_SHA256_LEN];
    size_t start = w->len, m, body;
    int rc;

    pl_wr_bytes(w, STATE_MAGIC, 4);
    pl_wr_u8(w, STATE_VERSION);
    pl_wr_bytes(w, "\0\0\0", 3);
    pl_wr_u32be(w, 0); /* patched below */
    body = w->len;
    if (st->has_eid)
        pl_der_put_tlv(w, 0x80u, st->eid, PL_SGP32_EID_LEN);
    if (st->eim_id[0] != '\0')
        pl_der_put_utf8(w, 0x81u, st->eim_id);
    if (st->eim_fqdn[0] != '\0')
        pl_der_put_utf8(w, 0x82u, st->eim_fqdn);
    pl_der_put_uint(w, 0x83u, st->last_poll_ms);
    pl_der_put_uint(w, 0x84u, st->next_poll_ms);
    pl_der_put_uint(w, 0x85u, st->backoff_ms);
    if (st->has_fingerprint)
        pl_der_put_tlv(w, 0x86u, st->fingerprint, PL_SHA256_LEN);
    pl_der_put_bool(w, 0x87u, st->notify_pending);
    if (st->in_flight) {
        m = pl_der_begin(w, 0xA8u);
        pl_der_put_tlv(w, 0x80u, st->flight.eim_id, st->flight.eim_id_len);
        pl_der_put_uint(w, 0x81u, st->flight.counter);
        if (st->flight.txid_len > 0)
            pl_der_put_tlv(w, 0x82u, st->flight.txid, st->flight.txid_len);
        pl_der_end(w, m);
    }
    if (st->has_pending) {
        m = pl_der_begin(w, 0xA9u);
        pl_der_put_uint(w, 0x80u, st->pending_attempts);
        pl_der_put_tlv(w, 0x81u, st->pending.buf, st->pending.len);
        pl_der_end(w, m);
    }
    if (st->n_awaiting > 0) {
        m = pl_der_begin(w, 0xAAu);
        for (size_t i = 0; i < st->n_awaiting; i++)
            pl_der_put_uint(w, 0x80u, st->awaiting[i]);
        pl_der_end(w, m);
    }
    if (st->trigger_len > 0)
        pl_der_put_tlv(w, 0x8Bu, st->trigger, st->trigger_len);
    m = pl_der_begin(w, 0xACu);
    pl_der_put_uint(w, 0x80u, st->polls);
    pl_der_put_uint(w, 0x81u, st->packages);
    pl_der_put_uint(w, 0x82u, st->acks_applied);
    pl_der_put_uint(w, 0x83u, st->recovered);
    pl_der_end(w, m);
    if ((rc = pl_wr_status(w)) != PL_OK)
        return rc;
    size_t n = w->len - body;
    if (n > STATE_MAX)
        return PL_ERR_OVERFLOW;
    w->buf[start + 8] = (uint8_t)(n >> 24);
    w->buf[start + 9] = (uint8_t)(n >> 16);
    w->buf[start + 10] = (uint8_t)(n >> 8);
    w->buf[start + 11] = (uint8_t)n;
    if ((rc = pl_sha256(w->buf + start, w->len - start, digest)) != PL_OK)
        return rc;
    pl_wr_bytes(w, digest, sizeof(digest));
    return pl_wr_status(w);
}

static int get_u32(const struct pl_tlv *t, uint32_t *out)
{
    uint64_t v;
    int rc = pl_der_get_uint(t, &v);
    if (rc != PL_OK)
        return rc;
    if (v > UINT32_MAX)
        return PL_ERR_DER_VALUE;
    *out = (uint32_t)v;
    return PL_OK;
}

static int decode_flight(const struct pl_der *parent, const struct pl_tlv *t,
                         struct pl_ipa_flight *f)
{
    struct pl_der d;
    struct pl_tlv x;
    const uint8_t *p;
    size_t n;
    bool present;
    int rc;

    if ((rc = pl_der_enter(parent, t, &d)) != PL_OK || (rc = pl_der_expect(&d, 0x80u, &x)) != PL_OK
        || (rc = pl_der_get_octets(&x, 1, PL_SGP32_EIM_ID_MAX, &p, &n)) != PL_OK)
        return rc;
    memcpy(f->eim_id, p, n);
    f->eim_id[n] = '\0';
    f->eim_id_len = n;
    if ((rc = pl_der_expect(&d, 0x81u, &x)) != PL_OK || (rc = get_u32(&x, &f->counter)) != PL_OK
        || (rc = pl_der_optional(&d, 0x82u, &x, &present)) != PL_OK)
        return rc;
    if (present) {
        if ((rc = pl_der_get_octets(&x, 1, PL_SGP32_TXID_MAX, &p, &n)) != PL_OK)
            return rc;
        memcpy(f->txid, p, n);
        f->txid_len = n;
    }
    return pl_der_finish(&d);
}

static int decode_body(const uint8_t *p, size_t len, struct pl_ipa_state *st)
{
    struct pl_der d, in;
    struct pl_tlv t, x;
    bool present;
    uint64_t v;
    int rc;

    pl_der_init(&d, p, len);
    if ((rc = pl_der_optional(&d, 0x80u, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        if ((rc = pl_der_get_fixed(&t, st->eid, PL_SGP32_EID_LEN)) != PL_OK)
            return rc;
        st->has_eid = true;
    }
    if ((rc = pl_der_optional(&d, 0x81u, &t, &present)) != PL_OK
        || (present && (rc = pl_der_get_utf8(&t, st->eim_id, sizeof(st->eim_id))) != PL_OK)
        || (rc = pl_der_optional(&d, 0x82u, &t, &present)) != PL_OK
        || (present && (rc = pl_der_get_utf8(&t, st->eim_fqdn, sizeof(st->eim_fqdn))) != PL_OK)
        || (rc = pl_der_expect(&d, 0x83u, &t)) != PL_OK
        || (rc = pl_der_get_uint(&t, &st->last_poll_ms)) != PL_OK
        || (rc = pl_der_expect(&d, 0x84u, &t)) != PL_OK
        || (rc = pl_der_get_uint(&t, &st->next_poll_ms)) != PL_OK
        || (rc = pl_der_expect(&d, 0x85u, &t)) != PL_OK
        || (rc = get_u32(&t, &st->backoff_ms)) != PL_OK
        || (rc = pl_der_optional(&d, 0x86u, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        if ((rc = pl_der_get_fixed(&t, st->fingerprint, PL_SHA256_LEN)) != PL_OK)
            return rc;
        st->has_fingerprint = true;
    }
    if ((rc = pl_der_expect(&d, 0x87u, &t)) != PL_OK
        || (rc = pl_der_get_bool(&t, &st->notify_pending)) != PL_OK
        || (rc = pl_der_optional(&d, 0xA8u, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        if ((rc = decode_flight(&d, &t, &st->flight)) != PL_OK)
            return rc;
        st->in_flight = true;
    }
    if ((rc = pl_der_optional(&d, 0xA9u, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        const uint8_t *b;
        size_t n;
        if ((rc = pl_der_enter(&d, &t, &in)) != PL_OK
            || (rc = pl_der_expect(&in, 0x80u, &x)) != PL_OK
            || (rc = get_u32(&x, &st->pending_attempts)) != PL_OK
            || (rc = pl_der_expect(&in, 0x81u, &x)) != PL_OK
            || (rc = pl_der_get_octets(&x, 1, PL_IPA_BODY_MAX, &b, &n)) != PL_OK
            || (rc = pl_der_finish(&in)) != PL_OK)
            return rc;
        pl_wr_reset(&st->pending);
        pl_wr_bytes(&st->pending, b, n);
        if ((rc = pl_wr_status(&st->pending)) != PL_OK)
            return rc;
        st->has_pending = true;
    }
    if ((rc = pl_der_optional(&d, 0xAAu, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        if ((rc = pl_der_enter(&d, &t, &in)) != PL_OK)
            return rc;
        while (!pl_der_done(&in)) {
            if (st->n_awaiting == PL_IPA_MAX_AWAITING_ACK)
                return PL_ERR_OVERFLOW;
            if ((rc = pl_der_expect(&in, 0x80u, &x)) != PL_OK
                || (rc = get_u32(&x, &st->awaiting[st->n_awaiting])) != PL_OK)
                return rc;
            st->n_awaiting++;
        }
    }
    if ((rc = pl_der_optional(&d, 0x8Bu, &t, &present)) != PL_OK)
        return rc;
    if (present) {
        if (t.len == 0 || t.len > PL_IPA_TRIGGER_MAX)
            return PL_ERR_DER_VALUE;
        memcpy(st->trigger, t.value, t.len);
        st->trigger_len = t.len;
    }
    if ((rc = pl_der_expect(&d, 0xACu, &t)) != PL_OK || (rc = pl_der_enter(&d, &t, &in)) != PL_OK
        || (rc = pl_der_expect(&in, 0x80u, &x)) != PL_OK
        || (rc = pl_der_get_uint(&x, &st->polls)) != PL_OK
        || (rc = pl_der_expect(&in, 0x81u, &x)) != PL_OK
        || (rc = pl_der_get_uint(&x, &st->packages)) != PL_OK
        || (rc = pl_der_expect(&in, 0x82u, &x)) != PL_OK
        || (rc = pl_der_get_uint(&x, &st->acks_applied)) != PL_OK
        || (rc = pl_der_expect(&in, 0x83u, &x)) != PL_OK || (rc = pl_der_get_uint(&x, &v)) != PL_OK
        || (rc = pl_der_finish(&in)) != PL_OK)
        return rc;
    st->recovered = v;
    return pl_der_finish(&d);
}

int pl_ipa_state_decode(const uint8_t *p, size_t len, struct pl_ipa_state *st)
{
    uint8_t digest[PL_SHA256_LEN], magic[4], version, reserved[3];
    const uint8_t *body, *stored;
    uint32_t n;
    struct pl_rd r;
    int rc;

    pl_ipa_state_free(st);
    pl_ipa_state_init(st);
    pl_rd_init(&r, p, len);
    if (pl_rd_copy(&r, magic, 4) != PL_OK || memcmp(magic, STATE_MAGIC, 4) != 0
        || pl_rd_u8(&r, &version) != PL_OK || version != STATE_VERSION
        || pl_rd_copy(&r, reserved, 3) != PL_OK || (reserved[0] | reserved[1] | reserved[2]) != 0
        || pl_rd_u32be(&r, &n) != PL_OK || n > STATE_MAX || pl_rd_bytes(&r, n, &body) != PL_OK
        || pl_rd_bytes(&r, PL_SHA256_LEN, &stored) != PL_OK || !pl_rd_done(&r))
        return PL_ERR_MALFORMED;
    if ((rc = pl_sha256(p, STATE_HDR + (size_t)n, digest)) != PL_OK)
        return rc;
    if (!pl_ct_equal(digest, stored, PL_SHA256_LEN))
        return PL_ERR_MALFORMED;
    if (decode_body(body, n, st) != PL_OK) {
        pl_ipa_state_free(st);
        pl_ipa_state_init(st);
        return PL_ERR_MALFORMED;
    }
    return PL_OK;
}

int pl_ipa_state_read(const char *path, struct pl_ipa_state *st)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY);

    if (fd < 0)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    buf = malloc(STATE_MAX + STATE_HDR + PL_SHA256_LEN + 1);
    if (buf == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        size_t cap = STATE_MAX + STATE_HDR + PL_SHA256_LEN + 1;
        ssize_t got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = PL_ERR_IO;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
        if (len == cap) {
            rc = PL_ERR_MALFORMED; /* larger than any state we write */
            goto out;
        }
    }
    rc = pl_ipa_state_decode(buf, len, st);
out:
    if (buf != NULL) {
        pl_memzero(buf, len);
        free(buf);
    }
    close(fd);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return PL_ERR_IO;
        p += put;
        n -= (size_t)put;
    }
    return PL_OK;
}

static int fsync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n;
    int fd, rc = PL_OK;

    if (slash == NULL) {
        dir[0] = '.';
        n = 1;
    } else {
        n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof(dir))
            return PL_ERR_OVERFLOW;
        memcpy(dir, path, n);
    }
    dir[n] = '\0';
    fd = open(dir, O_RDONLY);
    if (fd < 0)
        return PL_ERR_IO;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = PL_ERR_IO;
    close(fd);
    return rc;
}

int pl_ipa_state_write(const char *path, const struct pl_ipa_state *st)
{
    int rc = PL_ERR_INTERNAL;
    char tmp[4096];
    struct pl_wr w;
    int fd = -1;

    pl_wr_init_dyn(&w, STATE_MAX + STATE_HDR + PL_SHA256_LEN);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    if ((rc = pl_ipa_state_encode(st, &w)) != PL_OK)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    if ((rc = write_all(fd, w.buf, w.len)) != PL_OK)
        goto out;
    if (fsync(fd) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = PL_ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    rc = fsync_dir(path);
out:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    pl_wr_free(&w);
    return rc;
}
