/* Unit tests: SGP.22 ES10b notification messages (protocol/src/notif.c): vectors, the
 * NotificationEvent bit string, list caps, OtherSignedNotification signatures. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "pl_test.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/wr.h"
#include "sgp22_vec.h"

/* Decodes with the decoder func names; on success re-encodes (where an encoder can
 * reproduce the input: all but OtherSignedNotification, whose signature is fresh). */
static int decode_and_reencode(const char *func, const uint8_t *der, size_t len, const char *name)
{
    struct pl_wr w;
    int rc, erc = PL_OK;
    bool check = true;
    pl_wr_init_dyn(&w, 1u << 16);
    if (strcmp(func, "meta") == 0) {
        struct pl_notif_meta m;
        if ((rc = pl_notif_meta_decode(der, len, &m)) == PL_OK)
            erc = pl_notif_meta_encode(&m, &w);
    } else if (strcmp(func, "rnl_req") == 0) {
        struct pl_notif_rnl_req q;
        if ((rc = pl_notif_rnl_req_decode(der, len, &q)) == PL_OK)
            erc = pl_notif_rnl_req_encode(&q, &w);
    } else if (strcmp(func, "rnl_rsp") == 0) {
        struct pl_notif_rnl_rsp *s = calloc(1, sizeof(*s));
        cr_assert_not_null(s);
        if ((rc = pl_notif_rnl_rsp_decode(der, len, s)) == PL_OK)
            erc = pl_notif_rnl_rsp_encode(s, &w);
        free(s);
    } else if (strcmp(func, "other") == 0) {
        struct pl_notif_other o;
        rc = pl_notif_other_decode(der, len, &o);
        check = false;
    } else if (strcmp(func, "list_req") == 0) {
        struct pl_notif_list_req q;
        if ((rc = pl_notif_list_req_decode(der, len, &q)) == PL_OK)
            erc = pl_notif_list_req_encode(&q, &w);
    } else if (strcmp(func, "list_rsp") == 0) {
        struct pl_notif_list_rsp *s = calloc(1, sizeof(*s));
        cr_assert_not_null(s);
        if ((rc = pl_notif_list_rsp_decode(der, len, s)) == PL_OK)
            erc = pl_notif_list_rsp_encode(s, &w);
        free(s);
    } else if (strcmp(func, "sent_req") == 0) {
        uint64_t seq;
        if ((rc = pl_notif_sent_req_decode(der, len, &seq)) == PL_OK)
            erc = pl_notif_sent_req_encode(seq, &w);
    } else if (strcmp(func, "sent_rsp") == 0) {
        int64_t st;
        if ((rc = pl_notif_sent_rsp_decode(der, len, &st)) == PL_OK)
            erc = pl_notif_sent_rsp_encode(st, &w);
    } else {
        cr_assert_fail("unknown func '%s'", func);
        return 1;
    }
    if (rc == PL_OK && check) {
        cr_assert_eq(erc, PL_OK, "%s: re-encoding failed: %s", name, pl_strerror(erc));
        cr_assert_eq(w.len, len, "%s: re-encoding has %zu bytes, input %zu", name, w.len, len);
        cr_assert_eq(memcmp(w.buf, der, len), 0, "%s: re-encoding differs", name);
    }
    pl_wr_free(&w);
    return rc;
}

Test(notif, vectors)
{
    struct pl_vec_file *vf = pl_vec_load("sgp22_notif.txt");
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        const char *name = pl_vec_get(r, "name");
        int want = sgp22_err(pl_vec_get(r, "expect"));
        size_t len;
        uint8_t *der = sgp22_der(r, &len);
        int got = decode_and_reencode(pl_vec_get(r, "func"), der, len, name);
        cr_expect_eq(got, want, "%s (line %u): got %d (%s), want %d (%s)", name, r->line, got,
                     pl_strerror(got), want, pl_strerror(want));
        if (want == PL_OK)
            ok++;
        else
            bad++;
        free(der);
    }
    cr_assert_geq(ok, 15);
    cr_assert_geq(bad, 25);
    pl_vec_free(vf);
}

Test(notif, event_bit_string)
{
    static const struct {
        uint8_t ops;
        uint8_t der[4];
        size_t len;
    } cases[] = {
        {0, {0x81, 0x01, 0x00}, 3},
        {PL_NOTIF_EV_INSTALL, {0x81, 0x02, 0x07, 0x80}, 4},
        {PL_NOTIF_EV_ENABLE, {0x81, 0x02, 0x06, 0x40}, 4},
        {PL_NOTIF_EV_DISABLE, {0x81, 0x02, 0x05, 0x20}, 4},
        {PL_NOTIF_EV_DELETE, {0x81, 0x02, 0x04, 0x10}, 4},
        {PL_NOTIF_EV_INSTALL | PL_NOTIF_EV_DELETE, {0x81, 0x02, 0x04, 0x90}, 4},
        {PL_NOTIF_EV_ALL, {0x81, 0x02, 0x04, 0xF0}, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[8];
        struct pl_wr w;
        struct pl_tlv t;
        uint8_t ops = 0xFF;
        pl_wr_init_fixed(&w, buf, sizeof(buf));
        cr_assert_eq(pl_notif_event_put(&w, 0x81, cases[i].ops), PL_OK);
        cr_assert_eq(w.len, cases[i].len, "case %zu", i);
        cr_assert_eq(memcmp(buf, cases[i].der, cases[i].len), 0, "case %zu", i);
        cr_assert_eq(pl_der_parse_one(buf, w.len, 0x81, &t), PL_OK);
        cr_assert_eq(pl_notif_event_get(&t, &ops), PL_OK);
        cr_assert_eq(ops, cases[i].ops);
    }
    uint8_t buf[8];
    struct pl_wr w;
    pl_wr_init_fixed(&w, buf, sizeof(buf));
    cr_assert_eq(pl_notif_event_put(&w, 0x81, 0x10), PL_ERR_INVAL, "bit 4 is not named");
}

Test(notif, rnl_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_notif.txt", "rnl_rsp_list", &len);
    struct pl_notif_rnl_rsp *s = calloc(1, sizeof(*s));
    struct pl_pir pir;
    struct pl_notif_other other;

    cr_assert_not_null(s);
    cr_assert_eq(pl_notif_rnl_rsp_decode(der, len, s), PL_OK);
    cr_assert_not(s->is_error);
    cr_assert_eq(s->n, 2);
    cr_assert_eq(s->items[0].kind, PL_NOTIF_KIND_PIR);
    cr_assert_eq(s->items[0].meta.seq, 5);
    cr_assert_eq(s->items[0].meta.ops, PL_NOTIF_EV_INSTALL);
    cr_assert_eq(s->items[0].raw[0], 0xBF);
    cr_assert_eq(s->items[0].raw[1], 0x37);
    cr_assert_eq(s->items[1].kind, PL_NOTIF_KIND_OTHER);
    cr_assert_eq(s->items[1].meta.seq, 6);
    cr_assert_eq(s->items[1].meta.ops, PL_NOTIF_EV_DELETE);
    cr_assert_eq(s->items[1].raw[0], 0x30);
    /* The raw entries are complete and decode on their own (forwarded byte-exact). */
    cr_assert_eq(pl_pir_decode(s->items[0].raw, s->items[0].raw_len, &pir), PL_OK);
    cr_assert_eq(pl_notif_other_decode(s->items[1].raw, s->items[1].raw_len, &other), PL_OK);
    cr_assert_eq(s->items[0].raw_len + s->items[1].raw_len + 9, len, "BF2B 82 xxxx A0 82 xxxx");
    free(der);

    der = sgp22_load("sgp22_notif.txt", "rnl_rsp_error", &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(der, len, s), PL_OK);
    cr_assert(s->is_error);
    cr_assert_eq(s->error, PL_NOTIF_RESULT_UNDEFINED_ERROR);
    cr_assert_eq(s->n, 0);
    free(der);

    struct pl_notif_rnl_req q;
    der = sgp22_load("sgp22_notif.txt", "rnl_req_seq", &len);
    cr_assert_eq(pl_notif_rnl_req_decode(der, len, &q), PL_OK);
    cr_assert_eq(q.crit, PL_NOTIF_CRIT_SEQ);
    cr_assert_eq(q.seq, 5);
    free(der);
    der = sgp22_load("sgp22_notif.txt", "rnl_req_ops", &len);
    cr_assert_eq(pl_notif_rnl_req_decode(der, len, &q), PL_OK);
    cr_assert_eq(q.crit, PL_NOTIF_CRIT_OPS);
    cr_assert_eq(q.ops, PL_NOTIF_EV_INSTALL | PL_NOTIF_EV_DELETE);
    free(der);
    der = sgp22_load("sgp22_notif.txt", "rnl_req_none", &len);
    cr_assert_eq(pl_notif_rnl_req_decode(der, len, &q), PL_OK);
    cr_assert_eq(q.crit, PL_NOTIF_CRIT_NONE);
    free(der);
    free(s);
}

Test(notif, list_and_sent_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_notif.txt", "list_rsp", &len);
    struct pl_notif_list_rsp *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);
    cr_assert_eq(pl_notif_list_rsp_decode(der, len, s), PL_OK);
    cr_assert_eq(s->n, 2);
    cr_assert_eq(s->items[0].seq, 5);
    cr_assert_eq(s->items[1].seq, 300);
    cr_assert_str_eq(s->items[1].addr, "dp.example");
    cr_assert_not(s->items[1].has_iccid);
    free(der);
    free(s);

    struct pl_notif_list_req q;
    der = sgp22_load("sgp22_notif.txt", "list_req_ops", &len);
    cr_assert_eq(pl_notif_list_req_decode(der, len, &q), PL_OK);
    cr_assert(q.has_ops);
    cr_assert_eq(q.ops, PL_NOTIF_EV_ENABLE);
    free(der);

    static const struct {
        const char *name;
        int64_t want;
    } sent[] = {{"sent_rsp_ok", PL_NOTIF_SENT_OK},
                {"sent_rsp_nothing", PL_NOTIF_SENT_NOTHING_TO_DELETE},
                {"sent_rsp_undef", PL_NOTIF_SENT_UNDEFINED_ERROR}};
    for (size_t i = 0; i < 3; i++) {
        int64_t st = -5;
        der = sgp22_load("sgp22_notif.txt", sent[i].name, &len);
        cr_assert_eq(pl_notif_sent_rsp_decode(der, len, &st), PL_OK);
        cr_assert_eq(st, sent[i].want, "%s", sent[i].name);
        free(der);
    }
    uint64_t seq = 0;
    der = sgp22_load("sgp22_notif.txt", "sent_req", &len);
    cr_assert_eq(pl_notif_sent_req_decode(der, len, &seq), PL_OK);
    cr_assert_eq(seq, 7);
    free(der);

    /* Large sequence numbers: INTEGER contents 00 FF.. (positive, minimal). */
    struct pl_wr w;
    pl_wr_init_dyn(&w, 64);
    cr_assert_eq(pl_notif_sent_req_encode(UINT64_MAX, &w), PL_OK);
    cr_assert_eq(w.len, 2 + 1 + 2 + 9, "BF30 0C 80 09 00 FF..");
    cr_assert_eq(pl_notif_sent_req_decode(w.buf, w.len, &seq), PL_OK);
    cr_assert_eq(seq, UINT64_MAX);
    pl_wr_free(&w);
}

/* Builds '<outer> { A0 { entry * n } }'. */
static uint8_t *list_of(uint32_t outer, const uint8_t *entry, size_t elen, size_t n, size_t *len)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1u << 20);
    size_t m = pl_der_begin(&w, outer);
    size_t l = pl_der_begin(&w, 0xA0);
    for (size_t i = 0; i < n; i++)
        pl_wr_bytes(&w, entry, elen);
    pl_der_end(&w, l);
    pl_der_end(&w, m);
    cr_assert_eq(pl_wr_status(&w), PL_OK);
    return pl_wr_take(&w, len);
}

Test(notif, list_caps)
{
    size_t elen, len;
    uint8_t *meta = sgp22_load("sgp22_notif.txt", "meta", &elen);
    struct pl_notif_list_rsp *s = calloc(1, sizeof(*s));
    cr_assert_not_null(s);

    uint8_t *der = list_of(PL_TAG_LIST_NOTIF, meta, elen, PL_NOTIF_LIST_MAX, &len);
    cr_assert_eq(pl_notif_list_rsp_decode(der, len, s), PL_OK);
    cr_assert_eq(s->n, PL_NOTIF_LIST_MAX);
    free(der);
    der = list_of(PL_TAG_LIST_NOTIF, meta, elen, PL_NOTIF_LIST_MAX + 1, &len);
    cr_assert_eq(pl_notif_list_rsp_decode(der, len, s), PL_ERR_OVERFLOW);
    cr_assert_eq(s->n, 0, "cleared on error");
    free(der);
    free(meta);

    struct pl_notif_rnl_rsp *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    uint8_t *pir = sgp22_load("sgp22_pir.txt", "pir_success", &elen);
    der = list_of(PL_TAG_RETRIEVE_NOTIF, pir, elen, PL_NOTIF_LIST_MAX, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(der, len, r), PL_OK);
    cr_assert_eq(r->n, PL_NOTIF_LIST_MAX);
    /* The encoder refuses more than the cap, and a kind that does not match its bytes. */
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1u << 20);
    r->n = PL_NOTIF_LIST_MAX + 1;
    cr_assert_eq(pl_notif_rnl_rsp_encode(r, &w), PL_ERR_INVAL);
    pl_wr_reset(&w);
    r->n = 1;
    r->items[0].kind = PL_NOTIF_KIND_OTHER;
    cr_assert_eq(pl_notif_rnl_rsp_encode(r, &w), PL_ERR_DER_TAG);
    pl_wr_reset(&w);
    r->items[0].kind = PL_NOTIF_KIND_PIR;
    r->items[0].raw_len -= 1;
    cr_assert_eq(pl_notif_rnl_rsp_encode(r, &w), PL_ERR_DER_LENGTH);
    pl_wr_free(&w);
    free(der);
    der = list_of(PL_TAG_RETRIEVE_NOTIF, pir, elen, PL_NOTIF_LIST_MAX + 1, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(der, len, r), PL_ERR_OVERFLOW);
    free(der);
    free(pir);
    free(r);
    free(s);
}

Test(notif, meta_encode_rejects)
{
    struct pl_notif_meta m;
    struct pl_wr w;
    memset(&m, 0, sizeof(m));
    pl_wr_init_dyn(&w, 1024);
    m.ops = PL_NOTIF_EV_INSTALL | PL_NOTIF_EV_ENABLE;
    cr_assert_eq(pl_notif_meta_encode(&m, &w), PL_ERR_INVAL, "two bits");
    pl_wr_reset(&w);
    m.ops = 0;
    cr_assert_eq(pl_notif_meta_encode(&m, &w), PL_ERR_INVAL, "no bit");
    pl_wr_reset(&w);
    m.ops = PL_NOTIF_EV_DISABLE;
    memset(m.addr, 'a', PL_NOTIF_ADDR_MAX);
    cr_assert_eq(pl_notif_meta_encode(&m, &w), PL_OK, "255-byte address");
    pl_wr_reset(&w);
    m.addr[0] = (char)0xFF;
    cr_assert_eq(pl_notif_meta_encode(&m, &w), PL_ERR_INVAL, "not UTF-8");
    pl_wr_free(&w);

    struct pl_notif_rnl_req q = {.crit = (enum pl_notif_crit)7};
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_notif_rnl_req_encode(&q, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

static uint8_t *read_data(const char *rel, size_t *len)
{
    char path[512];
    uint8_t *p = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(p, "cannot read %s", path);
    return p;
}

Test(notif, other_sign_verify)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *key = NULL, *other_key = NULL;
    size_t clen, elen;
    uint8_t *cert = read_data("tests/data/sgp26/variant-o/CERT_EUICC_SIG_NIST.der", &clen);
    uint8_t *eum = read_data("tests/data/sgp26/variant-o/CERT_EUM_SIG_NIST.der", &elen);
    struct pl_notif_other in, out;
    struct pl_wr w;

    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &key), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &other_key), PL_OK);
    memset(&in, 0, sizeof(in));
    in.meta.seq = 9;
    in.meta.ops = PL_NOTIF_EV_DELETE;
    memcpy(in.meta.addr, "smdp.example.com", 17);
    in.euicc_cert = cert;
    in.euicc_cert_len = clen;
    in.eum_cert = eum;
    in.eum_cert_len = elen;

    pl_wr_init_dyn(&w, 8192);
    cr_assert_eq(pl_notif_other_encode(&in, key, &rng, &w), PL_OK);
    cr_assert_eq(pl_notif_other_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(out.meta.seq, 9);
    cr_assert_eq(out.euicc_cert_len, clen);
    cr_assert_eq(memcmp(out.euicc_cert, cert, clen), 0);
    cr_assert_eq(memcmp(out.eum_cert, eum, elen), 0);
    cr_assert_eq(pl_notif_other_verify(&out, key), PL_OK);
    cr_assert_eq(pl_notif_other_verify(&out, other_key), PL_ERR_BAD_SIGNATURE);
    /* Flip a bit of the signed address (still valid UTF-8: 's' -> 'r'). */
    size_t at = (size_t)(out.meta.raw - w.buf) + out.meta.raw_len - 1;
    w.buf[at] ^= 0x01;
    cr_assert_eq(pl_notif_other_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_notif_other_verify(&out, key), PL_ERR_BAD_SIGNATURE);
    memset(&out, 0, sizeof(out));
    cr_assert_eq(pl_notif_other_verify(&out, key), PL_ERR_INVAL);

    /* A certificate that is not one DER SEQUENCE is refused. */
    pl_wr_reset(&w);
    in.eum_cert_len = elen - 1;
    cr_assert_eq(pl_notif_other_encode(&in, key, &rng, &w), PL_ERR_DER_LENGTH);

    pl_wr_free(&w);
    pl_eckey_free(key);
    pl_eckey_free(other_key);
    free(cert);
    free(eum);
}
