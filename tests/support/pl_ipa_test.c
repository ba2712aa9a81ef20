/* Test helpers for the IPA; see pl_ipa_test.h. */
#include "pl_ipa_test.h"

#include "provline/protocol/apdu.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "provline/protocol/x509.h"

#include <stdlib.h>
#include <string.h>

static int es10(struct pl_euicc *e, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    struct pl_apdu_ops ops = {pl_euicc_transmit, e};
    unsigned ch;
    uint16_t sw = 0;
    int rc = pl_et_session(e, &ch);
    if (rc != PL_OK)
        return rc;
    rc = pl_et_es10(e, ch, req, len, rsp, &sw);
    if (pl_apdu_close_channel(&ops, ch, &sw) != PL_OK && rc == PL_OK)
        rc = PL_ERR_CARD_SW;
    return rc;
}

int pl_it_produce(struct pl_et *t, struct pl_euicc *e, struct pl_it_eim *eim, uint8_t iccid[10])
{
    return pl_it_produce_upp(t, e, eim, PL_IT_UPP, iccid);
}

int pl_it_produce_upp(struct pl_et *t, struct pl_euicc *e, struct pl_it_eim *eim,
                      const char *upp_name, uint8_t iccid[10])
{
    struct pl_apdu_ops ops = {pl_euicc_transmit, e};
    struct pl_sgp32_add_initial_eim_request *q = NULL;
    struct pl_sgp32_add_initial_eim_response r;
    struct pl_euicc_profile_info pi;
    struct pl_et_pkg p;
    struct pl_wr pir, w, rsp;
    const uint8_t *der;
    size_t der_len, upp_len = 0;
    uint16_t sw = 0;
    unsigned ch;
    uint8_t *upp = pl_et_upp(upp_name, &upp_len);
    int rc;

    memset(&p, 0, sizeof(p));
    pl_wr_init_dyn(&pir, 1 << 16);
    pl_wr_init_dyn(&w, 1 << 16);
    pl_wr_init_dyn(&rsp, 4096);
    if (upp == NULL) {
        rc = PL_ERR_IO;
        goto out;
    }
    if ((rc = pl_et_bind_for(t, e, 1, upp, upp_len, false, &p)) != PL_OK
        || (rc = pl_et_session(e, &ch)) != PL_OK || (rc = pl_et_load(e, ch, &p, &pir, &sw)) != PL_OK
        || (rc = pl_apdu_close_channel(&ops, ch, &sw)) != PL_OK)
        goto out;
    if (pl_euicc_factory_mode(e) || (rc = pl_euicc_profile_get(e, 0, &pi)) != PL_OK) {
        rc = rc != PL_OK ? rc : PL_ERR_STATE;
        goto out;
    }
    memcpy(iccid, pi.iccid, 10);

    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    pl_cert_der(pl_pki_cert(t->pki, PL_PKI_EIM), &der, &der_len);
    q->n_eims = 1;
    q->eims[0].eim_id = pl_sgp32_str(eim->eim_id);
    q->eims[0].eim_fqdn = pl_sgp32_str(eim->eim_fqdn);
    q->eims[0].has_counter = true;
    q->eims[0].counter = 0;
    q->eims[0].has_association_token = true;
    q->eims[0].association_token = -1;
    if ((rc = pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, der, der_len,
                                         &q->eims[0].eim_public_key_data))
            != PL_OK
        || (rc = pl_sgp32_add_initial_eim_request_encode(q, &w)) != PL_OK
        || (rc = es10(e, w.buf, w.len, &rsp)) != PL_OK
        || (rc = pl_sgp32_add_initial_eim_response_decode(rsp.buf, rsp.len, &r)) != PL_OK)
        goto out;
    if (r.is_error || r.n_results != 1) {
        rc = PL_ERR_REMOTE;
        goto out;
    }
    eim->has_token = r.results[0].has_association_token;
    eim->token = r.results[0].association_token;
out:
    free(q);
    free(upp);
    pl_et_pkg_free(&p);
    pl_wr_free(&pir);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    return rc;
}

static int wrap(enum pl_sgp32_eim_package_kind kind, const uint8_t *p, size_t len, int64_t err,
                struct pl_wr *out)
{
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    m.get_eim_package.kind = kind;
    m.get_eim_package.raw.p = p;
    m.get_eim_package.raw.len = len;
    m.get_eim_package.error_code = err;
    return pl_sgp32_esipa_eim_msg_encode(&m, out);
}

int pl_it_psmo_response(const struct pl_it_eim *eim, const struct pl_eckey *key,
                        const uint8_t eid[16], uint32_t counter, const char *txid,
                        const struct pl_sgp32_psmo *ops, size_t n, const struct pl_rng *rng,
                        struct pl_wr *out)
{
    struct pl_sgp32_euicc_package *pkg = calloc(1, sizeof(*pkg));
    struct pl_wr w;
    int rc;

    if (pkg == NULL || n > PL_SGP32_MAX_OPS) {
        free(pkg);
        return PL_ERR_INVAL;
    }
    pkg->eim_id = pl_sgp32_str(eim->eim_id);
    memcpy(pkg->eid, eid, 16);
    pkg->counter = counter;
    pkg->eim_txid = pl_sgp32_str(txid);
    pkg->kind = PL_SGP32_PACKAGE_PSMO;
    pkg->n_ops = n;
    for (size_t i = 0; i < n; i++)
        pkg->psmo[i] = ops[i];
    pl_wr_init_dyn(&w, 1 << 16);
    rc =
        pl_sgp32_euicc_package_request_sign(pkg, eim->has_token ? &eim->token : NULL, key, rng, &w);
    if (rc == PL_OK)
        rc = wrap(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, w.buf, w.len, 0, out);
    pl_wr_free(&w);
    free(pkg);
    return rc;
}

int pl_it_error_response(int64_t code, struct pl_wr *out)
{
    return wrap(PL_SGP32_EIM_PACKAGE_ERROR, NULL, 0, code, out);
}

static int add(uint32_t *seqs, size_t cap, size_t *n, uint64_t seq)
{
    if (*n == cap || seq > UINT32_MAX)
        return PL_ERR_OVERFLOW;
    seqs[(*n)++] = (uint32_t)seq;
    return PL_OK;
}

static int notif_seqs(const struct pl_sgp32_list *l, uint32_t *seqs, size_t cap, size_t *n)
{
    struct pl_sgp32_iter it;
    struct pl_tlv t;
    int rc;
    if (l->p == NULL)
        return PL_OK;
    pl_sgp32_iter_init(&it, l);
    while ((rc = pl_sgp32_iter_next(&it, &t)) == PL_OK) {
        if (t.tag == PL_TAG_PIR) {
            struct pl_pir pir;
            if ((rc = pl_pir_decode(t.raw, t.raw_len, &pir)) != PL_OK
                || (rc = add(seqs, cap, n, pir.meta.seq)) != PL_OK)
                return rc;
        } else {
            struct pl_notif_other o;
            if ((rc = pl_notif_other_decode(t.raw, t.raw_len, &o)) != PL_OK
                || (rc = add(seqs, cap, n, o.meta.seq)) != PL_OK)
                return rc;
        }
    }
    return rc == PL_ERR_NOT_FOUND ? PL_OK : rc;
}

static int epr_seqs(const struct pl_sgp32_list *l, uint32_t *seqs, size_t cap, size_t *n)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    struct pl_sgp32_iter it;
    struct pl_tlv t;
    int rc = PL_OK;
    if (r == NULL)
        return PL_ERR_NOMEM;
    if (l->p != NULL) {
        pl_sgp32_iter_init(&it, l);
        while ((rc = pl_sgp32_iter_next(&it, &t)) == PL_OK) {
            if ((rc = pl_sgp32_euicc_package_result_decode(t.raw, t.raw_len, r)) != PL_OK)
                break;
            if (r->kind == PL_SGP32_EPR_RESULT_SIGNED && (rc = add(seqs, cap, n, r->seq_number)))
                break;
        }
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
    }
    free(r);
    return rc;
}

int pl_it_result_seqs(const struct pl_sgp32_eim_package_result *res, uint32_t *seqs, size_t cap,
                      size_t *n)
{
    int rc = PL_OK;
    *n = 0;
    if (res->kind == PL_SGP32_EIM_RESULT_EPR
        || res->kind == PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS) {
        struct pl_sgp32_list one = {res->euicc_package_result.p, res->euicc_package_result.len, 1};
        if ((rc = epr_seqs(&one, seqs, cap, n)) == PL_OK
            && res->kind == PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS)
            rc = notif_seqs(&res->notifications, seqs, cap, n);
    } else if (res->kind == PL_SGP32_EIM_RESULT_IPA_EUICC_DATA) {
        struct pl_sgp32_ipa_euicc_data_response *d = calloc(1, sizeof(*d));
        if (d == NULL)
            return PL_ERR_NOMEM;
        rc = pl_sgp32_ipa_euicc_data_response_decode(res->ipa_euicc_data_response.p,
                                                     res->ipa_euicc_data_response.len, d);
        if (rc == PL_OK && !d->is_error
            && (rc = notif_seqs(&d->data.notifications, seqs, cap, n)) == PL_OK)
            rc = epr_seqs(&d->data.epr_list, seqs, cap, n);
        free(d);
    }
    return rc;
}

int pl_it_ack_response(const uint32_t *seqs, size_t n, struct pl_wr *out)
{
    struct pl_sgp32_esipa_eim_msg a;
    struct pl_sgp32_eim_acknowledgements acks;
    uint8_t ab[1024];
    struct pl_wr aw;
    int rc;

    memset(&a, 0, sizeof(a));
    a.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    if (n == 0) {
        a.provide_result.kind = PL_SGP32_PROVIDE_RSP_EMPTY;
        return pl_sgp32_esipa_eim_msg_encode(&a, out);
    }
    if (n > PL_SGP32_MAX_ACKS)
        return PL_ERR_OVERFLOW;
    memset(&acks, 0, sizeof(acks));
    for (size_t i = 0; i < n; i++)
        acks.seq[acks.n++] = seqs[i];
    pl_wr_init_fixed(&aw, ab, sizeof(ab));
    if ((rc = pl_sgp32_eim_acknowledgements_encode(&acks, &aw)) != PL_OK)
        return rc;
    a.provide_result.kind = PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS;
    a.provide_result.acknowledgements.p = aw.buf;
    a.provide_result.acknowledgements.len = aw.len;
    return pl_sgp32_esipa_eim_msg_encode(&a, out);
}
