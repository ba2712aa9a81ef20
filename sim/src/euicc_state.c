/* Software eUICC state file: encoding, strict decoding and tearing-safe writes.
 * provline reference: IFPP.md §6.2 ("State, updated atomically (temp file + fsync +
 * rename ...)") and §7 case 18 (tearing during the OTK state write); the field-mode
 * records (eIMs with their counters, SGP.32 v1.2 §2.11.1.1; pending eUICC Package Results,
 * §2.11.2.1) ride in the same file and the same writes. docs/software-euicc.md §2-§3
 * (format, write protocol). POSIX.1-2008 open/fsync/rename. */
#define _POSIX_C_SOURCE 200809L

#include "euicc_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* File = magic(4) "PLEU" || version(1) || 3 zero bytes || u32be body length || body
 *        || SHA-256 over everything before it. */
static const uint8_t state_magic[4] = {'P', 'L', 'E', 'U'};
#define STATE_VERSION    2u /* written; version 1 (factory mode only) is still read */
#define STATE_VERSION_V1 1u
#define STATE_HDR_LEN    12u

/* Body tags (context class, provline-local). */
#define T_CURVE      0x80u
#define T_EID        0x81u
#define T_SK         0x82u
#define T_CERT_EUICC 0x83u
#define T_CERT_EUM   0x84u
#define T_CERT_CI    0x85u
#define T_FACTORY    0x86u
#define T_PIR_SEQ    0x87u
#define T_DOTK_CTR   0x88u
#define T_ISDP_NEXT  0x89u
#define T_OTKS       0xA0u
#define T_PROFILE    0xA1u
#define T_NOTIF      0xA2u
#define T_MARKER     0xA3u
#define T_FIELD      0xA5u /* version 2: field-mode settings */
#define T_EIM        0xA6u /* version 2: one associated eIM (repeated) */
#define T_EPR        0xA7u /* version 2: one pending eUICC Package Result (repeated) */

void pl_euicc_prof_free(struct pl_euicc_prof *p)
{
    if (p->meta) {
        pl_memzero(p->meta, p->meta_len);
        free(p->meta);
    }
    if (p->upp) {
        pl_memzero(p->upp, p->upp_len);
        free(p->upp);
    }
    memset(p, 0, sizeof(*p));
}

void pl_euicc_state_free(struct pl_euicc_state *s)
{
    free(s->cert_euicc);
    free(s->cert_eum);
    free(s->cert_ci);
    if (s->otk) {
        pl_memzero(s->otk, s->n_otk * sizeof(*s->otk));
        free(s->otk);
    }
    for (size_t i = 0; i < s->n_prof; i++)
        pl_euicc_prof_free(&s->prof[i]);
    for (size_t i = 0; i < s->n_notif; i++)
        free(s->notif[i].raw);
    for (size_t i = 0; i < s->n_epr; i++)
        free(s->epr[i].raw);
    pl_memzero(s, sizeof(*s));
}

struct pl_euicc_otk *pl_euicc_otk_find(struct pl_euicc_state *s, uint16_t id)
{
    for (size_t i = 0; i < s->n_otk; i++)
        if (s->otk[i].id == id)
            return &s->otk[i];
    return NULL;
}

size_t pl_euicc_otk_free_count(const struct pl_euicc_state *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_otk; i++)
        if (s->otk[i].state == PL_EUICC_OTK_FREE)
            n++;
    return n;
}

int pl_euicc_seq_add(struct pl_euicc_seq_blob *list, size_t *n, size_t cap, uint64_t seq,
                     uint8_t *raw, size_t len)
{
    if (*n >= cap) {
        free(raw);
        return PL_ERR_OVERFLOW;
    }
    list[*n].seq = seq;
    list[*n].raw = raw;
    list[*n].len = len;
    (*n)++;
    return PL_OK;
}

bool pl_euicc_seq_remove(struct pl_euicc_seq_blob *list, size_t *n, uint64_t seq)
{
    for (size_t i = 0; i < *n; i++) {
        if (list[i].seq != seq)
            continue;
        free(list[i].raw);
        memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof(list[0]));
        (*n)--;
        memset(&list[*n], 0, sizeof(list[0]));
        return true;
    }
    return false;
}

/* ---- encoding ---- */

static bool otk_has_sk(uint8_t state)
{
    return state == PL_EUICC_OTK_FREE || state == PL_EUICC_OTK_IN_USE;
}

static void encode_body(const struct pl_euicc_state *s, struct pl_wr *w)
{
    pl_der_put_uint(w, T_CURVE, (uint64_t)s->curve);
    pl_der_put_tlv(w, T_EID, s->eid, sizeof(s->eid));
    pl_der_put_tlv(w, T_SK, s->sk, sizeof(s->sk));
    pl_der_put_tlv(w, T_CERT_EUICC, s->cert_euicc, s->cert_euicc_len);
    pl_der_put_tlv(w, T_CERT_EUM, s->cert_eum, s->cert_eum_len);
    pl_der_put_tlv(w, T_CERT_CI, s->cert_ci, s->cert_ci_len);
    pl_der_put_bool(w, T_FACTORY, s->factory_mode);
    pl_der_put_uint(w, T_PIR_SEQ, s->pir_seq);
    pl_der_put_uint(w, T_DOTK_CTR, s->dotk_counter);
    pl_der_put_uint(w, T_ISDP_NEXT, s->isdp_next);

    size_t m = pl_der_begin(w, T_OTKS);
    for (size_t i = 0; i < s->n_otk; i++) {
        const struct pl_euicc_otk *o = &s->otk[i];
        size_t mo = pl_der_begin(w, PL_TAG_SEQUENCE);
        pl_der_put_uint(w, 0x80u, o->id);
        pl_der_put_uint(w, 0x81u, o->state);
        pl_der_put_tlv(w, 0x82u, o->pk, sizeof(o->pk));
        if (otk_has_sk(o->state))
            pl_der_put_tlv(w, 0x83u, o->sk, sizeof(o->sk));
        pl_der_end(w, mo);
    }
    pl_der_end(w, m);

    for (size_t i = 0; i < s->n_prof; i++) {
        const struct pl_euicc_prof *p = &s->prof[i];
        m = pl_der_begin(w, T_PROFILE);
        pl_der_put_tlv(w, 0x80u, p->aid, sizeof(p->aid));
        pl_der_put_tlv(w, 0x81u, p->iccid, sizeof(p->iccid));
        pl_der_put_bool(w, 0x82u, p->enabled);
        pl_der_put_tlv(w, 0x83u, p->meta, p->meta_len);
        pl_der_put_tlv(w, 0x84u, p->upp, p->upp_len);
        if (p->fallback)
            pl_der_put_bool(w, 0x85u, true);
        pl_der_end(w, m);
    }
    for (size_t i = 0; i < s->n_notif; i++) {
        m = pl_der_begin(w, T_NOTIF);
        pl_der_put_uint(w, 0x80u, s->notif[i].seq);
        pl_der_put_tlv(w, 0x81u, s->notif[i].raw, s->notif[i].len);
        pl_der_end(w, m);
    }
    if (s->loading.active) {
        m = pl_der_begin(w, T_MARKER);
        pl_der_put_uint(w, 0x80u, s->loading.otk_id);
        pl_der_put_tlv(w, 0x81u, s->loading.tid, s->loading.tid_len);
        pl_der_end(w, m);
    }

    /* The field settings only once they differ from the defaults: a factory-mode state
     * then has the body of a version 1 file. */
    const struct pl_euicc_field *f = &s->field;
    if (f->token_last || f->has_default_dp || f->immediate_enable || f->has_ie_oid
        || f->has_ie_addr) {
        m = pl_der_begin(w, T_FIELD);
        pl_der_put_int(w, 0x80u, f->token_last);
        if (f->has_default_dp)
            pl_der_put_tlv(w, 0x81u, f->default_dp, f->default_dp_len);
        if (f->immediate_enable)
            pl_der_put_bool(w, 0x82u, true);
        if (f->has_ie_oid)
            pl_der_put_tlv(w, 0x83u, f->ie_oid, f->ie_oid_len);
        if (f->has_ie_addr)
            pl_der_put_tlv(w, 0x84u, f->ie_addr, f->ie_addr_len);
        pl_der_end(w, m);
    }
    for (size_t i = 0; i < s->n_eim; i++) {
        const struct pl_euicc_eim *x = &s->eim[i];
        m = pl_der_begin(w, T_EIM);
        pl_der_put_tlv(w, 0x80u, x->id, x->id_len);
        pl_der_put_uint(w, 0x81u, x->counter);
        if (x->has_token)
            pl_der_put_int(w, 0x82u, x->token);
        pl_der_put_tlv(w, 0x83u, x->cfg, x->cfg_len);
        pl_der_end(w, m);
    }
    for (size_t i = 0; i < s->n_epr; i++) {
        m = pl_der_begin(w, T_EPR);
        pl_der_put_uint(w, 0x80u, s->epr[i].seq);
        pl_der_put_tlv(w, 0x81u, s->epr[i].raw, s->epr[i].len);
        pl_der_end(w, m);
    }
}

int pl_euicc_state_encode(const struct pl_euicc_state *s, struct pl_wr *w)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_wr body;
    uint8_t digest[PL_SHA256_LEN];

    pl_wr_init_dyn(&body, PL_EUICC_STATE_MAX);
    encode_body(s, &body);
    if ((rc = pl_wr_status(&body)))
        goto out;
    if (body.len > UINT32_MAX) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }
    size_t start = w->len;
    pl_wr_bytes(w, state_magic, sizeof(state_magic));
    pl_wr_u8(w, STATE_VERSION);
    pl_wr_u8(w, 0);
    pl_wr_u16be(w, 0);
    pl_wr_u32be(w, (uint32_t)body.len);
    pl_wr_bytes(w, body.buf, body.len);
    if ((rc = pl_wr_status(w)))
        goto out;
    if ((rc = pl_sha256(w->buf + start, w->len - start, digest)))
        goto out;
    pl_wr_bytes(w, digest, sizeof(digest));
    rc = pl_wr_status(w);
out:
    pl_wr_free(&body);
    return rc;
}

/* ---- decoding (the file is read like any untrusted input) ---- */

static int get_blob(const struct pl_tlv *t, size_t min, size_t max, uint8_t **out, size_t *out_len)
{
    const uint8_t *p;
    size_t n;
    int rc = pl_der_get_octets(t, min, max, &p, &n);
    if (rc)
        return rc;
    uint8_t *c = malloc(n ? n : 1);
    if (!c)
        return PL_ERR_NOMEM;
    if (n)
        memcpy(c, p, n);
    *out = c;
    *out_len = n;
    return PL_OK;
}

static int get_u64_max(const struct pl_tlv *t, uint64_t max, uint64_t *out)
{
    int rc = pl_der_get_uint(t, out);
    if (rc)
        return rc;
    return *out > max ? PL_ERR_DER_VALUE : PL_OK;
}

static int expect_uint(struct pl_der *d, uint32_t tag, uint64_t max, uint64_t *out)
{
    struct pl_tlv t;
    int rc = pl_der_expect(d, tag, &t);
    if (rc)
        return rc;
    return get_u64_max(&t, max, out);
}

static int expect_fixed(struct pl_der *d, uint32_t tag, void *out, size_t n)
{
    struct pl_tlv t;
    int rc = pl_der_expect(d, tag, &t);
    if (rc)
        return rc;
    return pl_der_get_fixed(&t, out, n);
}

static int expect_blob(struct pl_der *d, uint32_t tag, size_t min, size_t max, uint8_t **out,
                       size_t *len)
{
    struct pl_tlv t;
    int rc = pl_der_expect(d, tag, &t);
    if (rc)
        return rc;
    return get_blob(&t, min, max, out, len);
}

static int decode_otks(struct pl_der *d, struct pl_euicc_state *s)
{
    struct pl_tlv t, e;
    struct pl_der in, od;
    int rc = pl_der_expect(d, T_OTKS, &t);
    if (rc)
        return rc;
    if ((rc = pl_der_enter(d, &t, &in)))
        return rc;
    s->otk = calloc(PL_EUICC_MAX_OTKS, sizeof(*s->otk));
    if (!s->otk)
        return PL_ERR_NOMEM;
    while (!pl_der_done(&in)) {
        uint64_t v;
        if (s->n_otk >= PL_EUICC_MAX_OTKS)
            return PL_ERR_OVERFLOW;
        struct pl_euicc_otk *o = &s->otk[s->n_otk];
        if ((rc = pl_der_expect(&in, PL_TAG_SEQUENCE, &e)) || (rc = pl_der_enter(&in, &e, &od)))
            return rc;
        if ((rc = expect_uint(&od, 0x80u, UINT16_MAX, &v)))
            return rc;
        o->id = (uint16_t)v;
        if ((rc = expect_uint(&od, 0x81u, PL_EUICC_OTK_DELETED, &v)))
            return rc;
        o->state = (uint8_t)v;
        if ((rc = expect_fixed(&od, 0x82u, o->pk, sizeof(o->pk))))
            return rc;
        if (otk_has_sk(o->state) && (rc = expect_fixed(&od, 0x83u, o->sk, sizeof(o->sk))))
            return rc;
        if ((rc = pl_der_finish(&od)))
            return rc;
        for (size_t i = 0; i < s->n_otk; i++)
            if (s->otk[i].id == o->id)
                return PL_ERR_MALFORMED; /* duplicate otkId */
        s->n_otk++;
    }
    return PL_OK;
}

static int decode_profile(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    struct pl_der in;
    struct pl_tlv e;
    int rc;
    if (s->n_prof >= PL_EUICC_MAX_PROFILES)
        return PL_ERR_OVERFLOW;
    struct pl_euicc_prof *p = &s->prof[s->n_prof];
    if ((rc = pl_der_enter(d, t, &in)))
        return rc;
    s->n_prof++; /* from here p is owned by s, freed with it on error */
    if ((rc = expect_fixed(&in, 0x80u, p->aid, sizeof(p->aid)))
        || (rc = expect_fixed(&in, 0x81u, p->iccid, sizeof(p->iccid))))
        return rc;
    if ((rc = pl_der_expect(&in, 0x82u, &e)) || (rc = pl_der_get_bool(&e, &p->enabled)))
        return rc;
    if ((rc = expect_blob(&in, 0x83u, 0, PL_EUICC_META_MAX, &p->meta, &p->meta_len))
        || (rc = expect_blob(&in, 0x84u, 0, PL_EUICC_UPP_MAX, &p->upp, &p->upp_len)))
        return rc;
    bool present;
    if ((rc = pl_der_optional(&in, 0x85u, &e, &present)))
        return rc;
    if (present) {
        /* written only when TRUE: FALSE here would be a second encoding of one state */
        if ((rc = pl_der_get_bool(&e, &p->fallback)))
            return rc;
        if (!p->fallback)
            return PL_ERR_DER_VALUE;
    }
    return pl_der_finish(&in);
}

/* A { 80 seqNumber, 81 bytes (1..max) } record: pending notifications and stored eUICC
 * package results share the shape. *raw is owned by the caller on success. */
static int decode_seq_blob(struct pl_der *d, const struct pl_tlv *t, size_t max, uint64_t *seq,
                           uint8_t **raw, size_t *len)
{
    struct pl_der in;
    int rc;
    *raw = NULL;
    *len = 0;
    if ((rc = pl_der_enter(d, t, &in)))
        return rc;
    if ((rc = expect_uint(&in, 0x80u, UINT64_MAX, seq)))
        return rc;
    if ((rc = expect_blob(&in, 0x81u, 1, max, raw, len)))
        return rc;
    if ((rc = pl_der_finish(&in))) {
        free(*raw);
        *raw = NULL;
        return rc;
    }
    return PL_OK;
}

static int decode_notif(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    uint64_t seq;
    uint8_t *pir;
    size_t len;
    int rc = decode_seq_blob(d, t, PL_EUICC_PIR_MAX, &seq, &pir, &len);
    return rc != PL_OK ? rc : PL_EUICC_NOTIF_ADD(s, seq, pir, len);
}

static int decode_marker(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    struct pl_der in;
    struct pl_tlv e;
    uint64_t v;
    const uint8_t *tid;
    int rc;
    if ((rc = pl_der_enter(d, t, &in)))
        return rc;
    if ((rc = expect_uint(&in, 0x80u, UINT16_MAX, &v)))
        return rc;
    s->loading.otk_id = (uint16_t)v;
    if ((rc = pl_der_expect(&in, 0x81u, &e))
        || (rc = pl_der_get_octets(&e, 1, PL_EUICC_TID_MAX, &tid, &s->loading.tid_len)))
        return rc;
    memcpy(s->loading.tid, tid, s->loading.tid_len);
    s->loading.active = true;
    return pl_der_finish(&in);
}

static int expect_octets_into(struct pl_der *d, uint32_t tag, size_t min, uint8_t *out, size_t cap,
                              size_t *len)
{
    struct pl_tlv t;
    const uint8_t *v;
    int rc = pl_der_expect(d, tag, &t);
    if (rc)
        return rc;
    if ((rc = pl_der_get_octets(&t, min, cap, &v, len)))
        return rc;
    memcpy(out, v, *len);
    return PL_OK;
}

static int optional_octets_into(struct pl_der *d, uint32_t tag, bool *has, uint8_t *out, size_t cap,
                                size_t *len)
{
    uint32_t next;
    *has = false;
    if (pl_der_done(d) || pl_der_peek_tag(d, &next) != PL_OK || next != tag)
        return PL_OK;
    *has = true;
    return expect_octets_into(d, tag, 0, out, cap, len);
}

static int decode_field(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    struct pl_der in;
    struct pl_tlv e;
    bool present;
    int rc;
    struct pl_euicc_field *f = &s->field;
    if ((rc = pl_der_enter(d, t, &in)))
        return rc;
    if ((rc = pl_der_expect(&in, 0x80u, &e)) || (rc = pl_der_get_int(&e, &f->token_last)))
        return rc;
    if (f->token_last < 0)
        return PL_ERR_DER_VALUE;
    if ((rc = optional_octets_into(&in, 0x81u, &f->has_default_dp, f->default_dp,
                                   sizeof(f->default_dp), &f->default_dp_len)))
        return rc;
    if ((rc = pl_der_optional(&in, 0x82u, &e, &present)))
        return rc;
    if (present) {
        if ((rc = pl_der_get_bool(&e, &f->immediate_enable)))
            return rc;
        if (!f->immediate_enable)
            return PL_ERR_DER_VALUE;
    }
    if ((rc = optional_octets_into(&in, 0x83u, &f->has_ie_oid, f->ie_oid, sizeof(f->ie_oid),
                                   &f->ie_oid_len))
        || (rc = optional_octets_into(&in, 0x84u, &f->has_ie_addr, f->ie_addr, sizeof(f->ie_addr),
                                      &f->ie_addr_len)))
        return rc;
    if (!f->token_last && !f->has_default_dp && !f->immediate_enable && !f->has_ie_oid
        && !f->has_ie_addr)
        return PL_ERR_DER_VALUE; /* the defaults are written as no record at all */
    return pl_der_finish(&in);
}

static int decode_eim(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    struct pl_der in;
    struct pl_tlv e;
    uint64_t v;
    bool present;
    int rc;
    if (s->n_eim >= PL_EUICC_MAX_EIMS)
        return PL_ERR_OVERFLOW;
    struct pl_euicc_eim *x = &s->eim[s->n_eim];
    if ((rc = pl_der_enter(d, t, &in)))
        return rc;
    if ((rc = expect_octets_into(&in, 0x80u, 1, x->id, sizeof(x->id), &x->id_len)))
        return rc;
    if ((rc = expect_uint(&in, 0x81u, PL_EUICC_COUNTER_MAX, &v)))
        return rc;
    x->counter = (uint32_t)v;
    if ((rc = pl_der_optional(&in, 0x82u, &e, &present)))
        return rc;
    if (present && (rc = pl_der_get_int(&e, &x->token)))
        return rc;
    x->has_token = present;
    if ((rc = expect_octets_into(&in, 0x83u, 1, x->cfg, sizeof(x->cfg), &x->cfg_len)))
        return rc;
    if ((rc = pl_der_finish(&in)))
        return rc;
    if (pl_euicc_eim_find(s, x->id, x->id_len))
        return PL_ERR_MALFORMED; /* duplicate eimId */
    struct pl_sgp32_eim_config cfg;
    if ((rc = pl_sgp32_eim_config_decode(x->cfg, x->cfg_len, &cfg)))
        return rc;
    if (cfg.eim_id.len != x->id_len || memcmp(cfg.eim_id.p, x->id, x->id_len) != 0
        || cfg.has_counter || cfg.has_association_token)
        return PL_ERR_MALFORMED; /* the configuration is not this eIM's stored form */
    s->n_eim++;
    return PL_OK;
}

static int decode_epr(struct pl_der *d, const struct pl_tlv *t, struct pl_euicc_state *s)
{
    uint64_t seq;
    uint8_t *raw;
    size_t len;
    int rc = decode_seq_blob(d, t, PL_EUICC_EPR_MAX, &seq, &raw, &len);
    return rc != PL_OK ? rc : PL_EUICC_EPR_ADD(s, seq, raw, len);
}

/* Order of the repeated / optional records after the OTKs. Ranks never decrease; the
 * marker and the field settings appear at most once. */
static int record_rank(uint32_t tag)
{
    switch (tag) {
    case T_PROFILE:
        return 1;
    case T_NOTIF:
        return 2;
    case T_MARKER:
        return 3;
    case T_FIELD:
        return 4;
    case T_EIM:
        return 5;
    case T_EPR:
        return 6;
    default:
        return 0;
    }
}

static int decode_body(const uint8_t *p, size_t len, unsigned version, struct pl_euicc_state *s)
{
    struct pl_der d;
    struct pl_tlv t;
    uint64_t v;
    int rc;

    pl_der_init_limits(&d, p, len, 4, PL_DER_MAX_LEN);
    if ((rc = expect_uint(&d, T_CURVE, PL_CURVE_BP256R1, &v)))
        return rc;
    if (v != PL_CURVE_P256 && v != PL_CURVE_BP256R1)
        return PL_ERR_DER_VALUE;
    s->curve = (enum pl_curve)v;
    if ((rc = expect_fixed(&d, T_EID, s->eid, sizeof(s->eid)))
        || (rc = expect_fixed(&d, T_SK, s->sk, sizeof(s->sk))))
        return rc;
    if ((rc = expect_blob(&d, T_CERT_EUICC, 1, PL_EUICC_CERT_MAX, &s->cert_euicc,
                          &s->cert_euicc_len))
        || (rc = expect_blob(&d, T_CERT_EUM, 1, PL_EUICC_CERT_MAX, &s->cert_eum, &s->cert_eum_len))
        || (rc = expect_blob(&d, T_CERT_CI, 1, PL_EUICC_CERT_MAX, &s->cert_ci, &s->cert_ci_len)))
        return rc;
    if ((rc = pl_der_expect(&d, T_FACTORY, &t)) || (rc = pl_der_get_bool(&t, &s->factory_mode)))
        return rc;
    if ((rc = expect_uint(&d, T_PIR_SEQ, UINT64_MAX, &s->pir_seq))
        || (rc = expect_uint(&d, T_DOTK_CTR, UINT64_MAX, &s->dotk_counter)))
        return rc;
    if ((rc = expect_uint(&d, T_ISDP_NEXT, UINT32_MAX, &v)))
        return rc;
    s->isdp_next = (uint32_t)v;
    if ((rc = decode_otks(&d, s)))
        return rc;
    int last = 0;
    while (!pl_der_done(&d)) {
        if ((rc = pl_der_next(&d, &t)))
            return rc;
        int rank = record_rank(t.tag);
        if (rank == 0 || rank < last || (rank == last && (rank == 3 || rank == 4))
            || (version == STATE_VERSION_V1 && rank >= 4))
            return PL_ERR_DER_TAG;
        last = rank;
        switch (t.tag) {
        case T_PROFILE:
            rc = decode_profile(&d, &t, s);
            break;
        case T_NOTIF:
            rc = decode_notif(&d, &t, s);
            break;
        case T_MARKER:
            rc = decode_marker(&d, &t, s);
            break;
        case T_FIELD:
            rc = decode_field(&d, &t, s);
            break;
        case T_EIM:
            rc = decode_eim(&d, &t, s);
            break;
        default:
            rc = decode_epr(&d, &t, s);
            break;
        }
        if (rc)
            return rc;
    }
    /* Cross-field rules. */
    if (s->loading.active) {
        struct pl_euicc_otk *o = pl_euicc_otk_find(s, s->loading.otk_id);
        if (!o || o->state != PL_EUICC_OTK_CONSUMED)
            return PL_ERR_MALFORMED;
    }
    for (size_t i = 0; i < s->n_notif; i++)
        if (s->notif[i].seq > s->pir_seq)
            return PL_ERR_MALFORMED;
    size_t n_fallback = 0;
    for (size_t i = 0; i < s->n_prof; i++)
        n_fallback += s->prof[i].fallback;
    if (n_fallback > 1)
        return PL_ERR_MALFORMED;
    for (size_t i = 0; i < s->n_epr; i++) {
        if (s->epr[i].seq > s->pir_seq)
            return PL_ERR_MALFORMED;
        for (size_t j = 0; j < s->n_notif; j++)
            if (s->notif[j].seq == s->epr[i].seq)
                return PL_ERR_MALFORMED; /* one seqNumber space for both */
    }
    for (size_t i = 0; i < s->n_eim; i++)
        if (s->eim[i].has_token && s->eim[i].token > s->field.token_last)
            return PL_ERR_MALFORMED;
    return PL_OK;
}

int pl_euicc_state_decode(const uint8_t *p, size_t len, struct pl_euicc_state *s)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_rd r;
    const uint8_t *magic, *body, *digest;
    uint8_t ver, pad0;
    uint16_t pad1;
    uint32_t body_len;
    uint8_t calc[PL_SHA256_LEN];

    memset(s, 0, sizeof(*s));
    pl_rd_init(&r, p, len);
    if ((rc = pl_rd_bytes(&r, sizeof(state_magic), &magic)) || (rc = pl_rd_u8(&r, &ver))
        || (rc = pl_rd_u8(&r, &pad0)) || (rc = pl_rd_u16be(&r, &pad1))
        || (rc = pl_rd_u32be(&r, &body_len)))
        goto out;
    if (memcmp(magic, state_magic, sizeof(state_magic)) != 0
        || (ver != STATE_VERSION && ver != STATE_VERSION_V1) || pad0 || pad1) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = pl_rd_bytes(&r, body_len, &body)) || (rc = pl_rd_bytes(&r, PL_SHA256_LEN, &digest)))
        goto out;
    if (!pl_rd_done(&r)) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = pl_sha256(p, STATE_HDR_LEN + (size_t)body_len, calc)))
        goto out;
    if (!pl_ct_equal(calc, digest, sizeof(calc))) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    rc = decode_body(body, body_len, ver, s);
out:
    if (rc) {
        pl_euicc_state_free(s);
        /* Any structural problem of the file is one error for the caller. */
        if (rc != PL_ERR_NOMEM)
            rc = PL_ERR_MALFORMED;
    }
    return rc;
}

/* ---- file I/O ---- */

int pl_euicc_state_read(const char *path, struct pl_euicc_state *s)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    memset(s, 0, sizeof(*s));
    if (fd < 0) {
        rc = errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = PL_ERR_IO;
        goto out;
    }
    if (st.st_size <= 0 || (uint64_t)st.st_size > PL_EUICC_STATE_MAX) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (!buf) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = PL_ERR_IO;
            goto out;
        }
        len += (size_t)n;
    }
    rc = pl_euicc_state_decode(buf, len, s);
out:
    if (fd >= 0)
        close(fd);
    if (buf) {
        pl_memzero(buf, len);
        free(buf);
    }
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return PL_ERR_IO;
        off += (size_t)n;
    }
    return PL_OK;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1; /* "/file" */
        if (n >= sizeof(dir))
            return PL_ERR_INVAL;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return PL_ERR_IO;
    int rc = fsync(fd) == 0 ? PL_OK : PL_ERR_IO;
    close(fd);
    return rc;
}

int pl_euicc_state_write(const char *path, const struct pl_euicc_state *s, bool cut)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_wr w;
    char tmp[4096];
    int fd = -1;

    pl_wr_init_dyn(&w, PL_EUICC_STATE_MAX);
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    if ((rc = pl_euicc_state_encode(s, &w)))
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    if (cut) {
        /* The power fails half-way through the temporary file: the live file is intact. */
        rc = write_all(fd, w.buf, w.len / 2);
        rc = rc ? rc : PL_ERR_IO;
        goto out;
    }
    if ((rc = write_all(fd, w.buf, w.len)))
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
    rc = fsync_dir_of(path);
out:
    if (fd >= 0)
        close(fd);
    pl_wr_free(&w);
    return rc;
}
