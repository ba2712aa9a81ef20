/* Test helpers for the software eUICC; see pl_euicc_test.h. */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"

#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const uint8_t HOST_ID[8] = {'P', 'L', 'T', 'E', 'S', 'T', '0', '1'};
static const uint8_t DP_OID[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0xE4, 0x4A, 0x01};

int pl_et_init(struct pl_et *t, enum pl_curve curve)
{
    int rc;
    memset(t, 0, sizeof(*t));
    t->curve = curve;
    t->rng = PL_RNG_SYSTEM;
    if (pl_test_tmpdir(t->dir, sizeof(t->dir)) != 0)
        return PL_ERR_IO;
    char pki[300];
    snprintf(pki, sizeof(pki), "%s/pki", t->dir);
    if ((rc = pl_pki_init(pki, curve, &t->rng, time(NULL))))
        return rc;
    return pl_pki_load(pki, &t->pki);
}

void pl_et_free(struct pl_et *t)
{
    pl_pki_free(t->pki);
    t->pki = NULL;
    if (t->dir[0])
        pl_test_rmtree(t->dir);
    t->dir[0] = 0;
}

int pl_et_mint(struct pl_et *t, const char *name, unsigned n, const uint8_t *eid, char *path,
               size_t cap)
{
    snprintf(path, cap, "%s/%s", t->dir, name);
    return pl_euicc_mint(t->pki, t->curve, eid, n, path, &t->rng);
}

int pl_et_copy(const char *from, const char *to)
{
    size_t len;
    uint8_t *b = pl_test_read_file(from, &len);
    if (!b)
        return -1;
    FILE *f = fopen(to, "wb");
    int rc = -1;
    if (f) {
        rc = fwrite(b, 1, len, f) == len ? 0 : -1;
        if (fclose(f) != 0)
            rc = -1;
    }
    free(b);
    return rc;
}

uint8_t *pl_et_upp(const char *name, size_t *len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/data/ts48/%s", name);
    return pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
}

int pl_et_header(uint16_t otk_id, const uint8_t *tid, size_t tid_len, const uint8_t *const *certs,
                 const size_t *cert_lens, size_t n_certs, struct pl_wr *out)
{
    struct pl_es10f_load_req h;
    memset(&h, 0, sizeof(h));
    h.otk_id = otk_id;
    h.tid = tid;
    h.tid_len = tid_len;
    h.dpf_chain.n = n_certs;
    for (size_t i = 0; i < n_certs && i < PL_IFPP_CHAIN_MAX; i++) {
        h.dpf_chain.cert[i].der = certs[i];
        h.dpf_chain.cert[i].len = cert_lens[i];
    }
    return pl_es10f_load_req_encode(&h, out);
}

int pl_et_bind(struct pl_et *t, const uint8_t eid[16], const uint8_t otpk[PL_EC_PUB_LEN],
               uint16_t hdr_otk_id, const uint8_t *upp, size_t upp_len, bool rsk,
               struct pl_et_pkg *out)
{
    int rc;
    memset(out, 0, sizeof(*out));
    pl_wr_init_dyn(&out->hdr, 64 * 1024);
    pl_wr_init_dyn(&out->bpp, PL_BIND_BPP_MAX);
    out->otk_id = hdr_otk_id;
    out->tid_len = sizeof(out->tid);
    if ((rc = t->rng.fill(t->rng.user, out->tid, out->tid_len)))
        return rc;
    struct pl_bind_params p = {
        .curve = t->curve,
        .dp_key = pl_pki_key(t->pki, PL_PKI_DPF),
        .euicc_otpk = otpk,
        .eid = eid,
        .host_id = HOST_ID,
        .host_id_len = sizeof(HOST_ID),
        .tid = out->tid,
        .tid_len = out->tid_len,
        .upp = upp,
        .upp_len = upp_len,
        .spn = "provline test SP",
        .profile_name = "TS.48 test profile",
        .profile_class = 2,
        .dp_oid = DP_OID,
        .dp_oid_len = sizeof(DP_OID),
        .replace_session_keys = rsk,
        .rng = &t->rng,
    };
    if ((rc = pl_bpp_bind(&p, &out->bpp)))
        return rc;
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_DPF), &der, &der_len);
    return pl_et_header(hdr_otk_id, out->tid, out->tid_len, &der, &der_len, 1, &out->hdr);
}

int pl_et_bind_for(struct pl_et *t, const struct pl_euicc *e, uint16_t otk_id, const uint8_t *upp,
                   size_t upp_len, bool rsk, struct pl_et_pkg *out)
{
    uint8_t eid[16];
    struct pl_euicc_otk_info oi;
    int rc = pl_euicc_otk_by_id(e, otk_id, &oi);
    if (rc)
        return rc;
    pl_euicc_get_eid(e, eid);
    return pl_et_bind(t, eid, oi.pk, otk_id, upp, upp_len, rsk, out);
}

void pl_et_pkg_free(struct pl_et_pkg *p)
{
    pl_wr_free(&p->hdr);
    pl_wr_free(&p->bpp);
}

static const struct pl_apdu_ops *ops_for(struct pl_euicc *e, struct pl_apdu_ops *ops)
{
    ops->transmit = pl_euicc_transmit;
    ops->user = e;
    return ops;
}

int pl_et_session(struct pl_euicc *e, unsigned *ch)
{
    struct pl_apdu_ops ops;
    uint16_t sw;
    int rc = pl_apdu_open_channel(ops_for(e, &ops), ch, &sw);
    if (rc)
        return rc;
    return pl_apdu_select_aid(&ops, *ch, pl_apdu_isdr_aid, PL_ISDR_AID_LEN, NULL, &sw);
}

int pl_et_es10(struct pl_euicc *e, unsigned ch, const uint8_t *req, size_t len, struct pl_wr *rsp,
               uint16_t *sw)
{
    struct pl_apdu_ops ops;
    return pl_es10_transceive(ops_for(e, &ops), ch, req, len, 0, rsp, sw);
}

struct pl_bpp_span *pl_et_segments(const uint8_t *bpp, size_t len, size_t *n)
{
    struct pl_bpp *d = calloc(1, sizeof(*d));
    struct pl_bpp_span *s = calloc(PL_BPP_MAX_SEGMENTS, sizeof(*s));
    *n = 0;
    if (!d || !s || pl_bpp_decode(bpp, len, d) != PL_OK
        || pl_bpp_segments(d, s, PL_BPP_MAX_SEGMENTS, n) != PL_OK) {
        free(d);
        free(s);
        return NULL;
    }
    free(d);
    return s;
}

int pl_et_send(struct pl_euicc *e, unsigned ch, const uint8_t *hdr, size_t hdr_len,
               const struct pl_bpp_span *spans, size_t n, struct pl_wr *pir, uint16_t *sw,
               size_t *sent)
{
    int rc;
    *sent = 0;
    if (hdr) {
        if ((rc = pl_et_es10(e, ch, hdr, hdr_len, pir, sw)))
            return rc;
        if (pir->len)
            return PL_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = pl_et_es10(e, ch, spans[i].p, spans[i].len, pir, sw)))
            return rc;
        (*sent)++;
        if (pir->len)
            return PL_OK;
    }
    return PL_OK;
}

int pl_et_load(struct pl_euicc *e, unsigned ch, const struct pl_et_pkg *p, struct pl_wr *pir,
               uint16_t *sw)
{
    size_t n, sent;
    struct pl_bpp_span *s = pl_et_segments(p->bpp.buf, p->bpp.len, &n);
    if (!s)
        return PL_ERR_MALFORMED;
    int rc = pl_et_send(e, ch, p->hdr.buf, p->hdr.len, s, n, pir, sw, &sent);
    free(s);
    return rc;
}

int pl_et_pir_check_cert(const uint8_t *cert, size_t cert_len, const uint8_t *p, size_t len,
                         struct pl_pir *out)
{
    struct pl_cert *c = NULL;
    struct pl_eckey *k = NULL;
    int rc = pl_pir_decode(p, len, out);
    if (rc)
        return rc;
    if ((rc = pl_cert_parse(cert, cert_len, &c)) || (rc = pl_cert_public_key(c, &k)))
        goto out;
    rc = pl_pir_verify(out, k);
out:
    pl_eckey_free(k);
    pl_cert_free(c);
    return rc;
}

int pl_et_pir_check(const struct pl_euicc *e, const uint8_t *p, size_t len, struct pl_pir *out)
{
    const uint8_t *cert;
    size_t cert_len;
    pl_euicc_cert_euicc(e, &cert, &cert_len);
    return pl_et_pir_check_cert(cert, cert_len, p, len, out);
}

int pl_et_dotk_req(const uint8_t eid[16], uint64_t counter, uint32_t op, const struct pl_eckey *key,
                   const uint8_t *cert, size_t cert_len, struct pl_wr *out)
{
    struct pl_es10f_delete_otks_req q;
    struct pl_rng rng = PL_RNG_SYSTEM;
    int rc;
    memset(&q, 0, sizeof(q));
    memcpy(q.token.eid, eid, 16);
    q.token.counter = counter;
    q.token.op = op;
    if ((rc = pl_es10f_token_sign(&q.token, key, &rng, q.sig)))
        return rc;
    q.signer_chain.n = 1;
    q.signer_chain.cert[0].der = cert;
    q.signer_chain.cert[0].len = cert_len;
    return pl_es10f_delete_otks_req_encode(&q, out);
}

int pl_et_produce(struct pl_et *t, struct pl_euicc *e, unsigned ch, const char *const *upp_names,
                  size_t n_upps)
{
    int rc = PL_OK;
    struct pl_wr w;
    uint16_t sw = 0;
    uint8_t eid[16];

    pl_wr_init_dyn(&w, 1u << 20);
    for (size_t i = 0; i < n_upps && rc == PL_OK; i++) {
        struct pl_et_pkg p;
        struct pl_pir pir;
        size_t len;
        uint8_t *upp = pl_et_upp(upp_names[i], &len);
        if (!upp)
            return PL_ERR_NOT_FOUND;
        rc = pl_et_bind_for(t, e, (uint16_t)(i + 1), upp, len, false, &p);
        pl_wr_reset(&w);
        if (rc == PL_OK)
            rc = pl_et_load(e, ch, &p, &w, &sw);
        if (rc == PL_OK)
            rc = pl_et_pir_check(e, w.buf, w.len, &pir);
        if (rc == PL_OK && !pir.success)
            rc = PL_ERR_REMOTE;
        pl_et_pkg_free(&p);
        free(upp);
    }
    if (rc == PL_OK) {
        const uint8_t *cert;
        size_t cert_len;
        struct pl_es10f_delete_otks_rsp r;
        pl_euicc_get_eid(e, eid);
        pl_cert_der(pl_pki_cert(t->pki, PL_PKI_DPF), &cert, &cert_len);
        struct pl_wr req;
        pl_wr_init_dyn(&req, 64 * 1024);
        rc = pl_et_dotk_req(eid, 1, PL_ES10F_OP_DELETE_REMAINING_OTKS,
                            pl_pki_key(t->pki, PL_PKI_DPF), cert, cert_len, &req);
        pl_wr_reset(&w);
        if (rc == PL_OK)
            rc = pl_et_es10(e, ch, req.buf, req.len, &w, &sw);
        if (rc == PL_OK)
            rc = pl_es10f_delete_otks_rsp_decode(w.buf, w.len, &r);
        if (rc == PL_OK && !r.ok)
            rc = PL_ERR_REMOTE;
        pl_wr_free(&req);
    }
    if (rc == PL_OK && pl_euicc_factory_mode(e))
        rc = PL_ERR_STATE;
    pl_wr_free(&w);
    return rc;
}

int pl_et_cert_spki(const uint8_t *der, size_t len, const uint8_t **spki, size_t *spki_len)
{
    struct pl_der d, c, tbs;
    struct pl_tlv t;
    uint32_t tag;
    int rc;
    pl_der_init(&d, der, len);
    if ((rc = pl_der_expect(&d, PL_TAG_SEQUENCE, &t)) || (rc = pl_der_enter(&d, &t, &c))
        || (rc = pl_der_expect(&c, PL_TAG_SEQUENCE, &t)) || (rc = pl_der_enter(&c, &t, &tbs)))
        return rc;
    /* [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo */
    if ((rc = pl_der_peek_tag(&tbs, &tag)))
        return rc;
    if (tag == 0xA0u && (rc = pl_der_next(&tbs, &t)))
        return rc;
    for (int i = 0; i < 5; i++)
        if ((rc = pl_der_next(&tbs, &t)))
            return rc;
    if ((rc = pl_der_expect(&tbs, PL_TAG_SEQUENCE, &t)))
        return rc;
    *spki = t.raw;
    *spki_len = t.raw_len;
    return PL_OK;
}

int pl_et_eim_config(const struct pl_et *t, const char *id, bool cert, bool ask_token,
                     struct pl_sgp32_eim_config *cfg)
{
    const uint8_t *der, *spki;
    size_t der_len, spki_len;
    int rc;
    memset(cfg, 0, sizeof(*cfg));
    cfg->eim_id = pl_sgp32_str(id);
    cfg->eim_fqdn = pl_sgp32_str(id);
    cfg->has_eim_id_type = true;
    cfg->eim_id_type = PL_SGP32_EIM_ID_TYPE_FQDN;
    cfg->has_association_token = ask_token;
    cfg->association_token = -1;
    cfg->has_supported_protocol = true;
    cfg->supported_protocol = PL_SGP32_PROTO_RETRIEVE_COAPS;
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_EIM), &der, &der_len);
    if (cert)
        return pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, der, der_len,
                                          &cfg->eim_public_key_data);
    if ((rc = pl_et_cert_spki(der, der_len, &spki, &spki_len)))
        return rc;
    return pl_sgp32_key_data_from_der(PL_SGP32_KEY_SPKI, spki, spki_len, &cfg->eim_public_key_data);
}

int pl_et_epr_check(const struct pl_euicc *e, const uint8_t *p, size_t len, const int64_t *token,
                    struct pl_sgp32_euicc_package_result *res)
{
    struct pl_cert *c = NULL;
    struct pl_eckey *k = NULL;
    const uint8_t *cert;
    size_t cert_len;
    int rc = pl_sgp32_euicc_package_result_decode(p, len, res);
    if (rc || res->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        return rc;
    pl_euicc_cert_euicc(e, &cert, &cert_len);
    if ((rc = pl_cert_parse(cert, cert_len, &c)) || (rc = pl_cert_public_key(c, &k)))
        goto out;
    rc = pl_sgp32_euicc_package_result_verify(res, token, k);
out:
    pl_eckey_free(k);
    pl_cert_free(c);
    return rc;
}
