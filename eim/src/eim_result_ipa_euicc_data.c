/* IpaEuiccDataResponse 'BF52' intake: the answer to a device-data request, or to the requery
 * of a signed operation whose result was lost.
 * GSMA SGP.32 v1.2 §2.11.2.2 (IpaEuiccDataResponse CHOICE {ipaEuiccData {notificationsList
 * [0], defaultSmdpAddress [1], euiccPackageResultList [2], euiccInfo1, euiccInfo2, ...,
 * eumCertificate [5], euiccCertificate [6], eimTransactionId [7], ...},
 * ipaEuiccDataResponseError {eimTransactionId [0], ipaEuiccDataErrorCode}}); the IPA echoes
 * the request's eimTransactionId (osmo d0da1542). reference/EIM.md §1.6 (lost EPRs), §1.8
 * (certificates arrive as IMPLICIT contents: re-wrapped in '30' before X.509 parsing).
 * The data is unsigned; only what verifies on its own is used: certificates through their
 * chain and EID, EPRs and notifications through the eUICC signature. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/der.h"

#include <stdlib.h>
#include <string.h>

static const char *edr_error_name(int64_t code)
{
    switch (code) {
    case PL_SGP32_EDR_INCORRECT_TAG_LIST:
        return "incorrectTagList";
    case PL_SGP32_EDR_CI_PKID_NOT_FOUND:
        return "euiccCiPKIdNotFound";
    case PL_SGP32_EDR_ECALL_ACTIVE:
        return "ecallActive";
    default:
        return "undefinedError";
    }
}

/* '30' len contents, for certificates delivered as IMPLICIT contents octets. */
static uint8_t *rewrap(struct pl_sgp32_buf body, size_t *len)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_EIM_CERT_MAX);
    (void)pl_der_put_tlv(&w, PL_TAG_SEQUENCE, body.p, body.len);
    if (pl_wr_status(&w) != PL_OK) {
        pl_wr_free(&w);
        return NULL;
    }
    return pl_wr_take(&w, len);
}

/* CERT.EUICC / CERT.EUM learnt from the device: kept only if their chain verifies and the
 * EID is the device's, and only when the registry has none (a device's certificates do not
 * change; a different pair is logged and ignored). */
static int learn_certs(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                       const struct pl_sgp32_ipa_euicc_data *data)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t *euicc = NULL, *eum = NULL;
    size_t euicc_len = 0, eum_len = 0;
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    if (data->euicc_certificate.p == NULL || data->eum_certificate.p == NULL)
        return PL_OK;
    euicc = rewrap(data->euicc_certificate, &euicc_len);
    eum = rewrap(data->eum_certificate, &eum_len);
    if (euicc == NULL || eum == NULL) {
        rc = PL_ERR_DER_TOOBIG;
        goto out;
    }
    rc = pl_eimi_verify_euicc_certs(eng, dev->eid, euicc, euicc_len, eum, eum_len);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                    "certificates reported by the IPA do not verify: %s", pl_strerror(rc));
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_CERT;
        goto out;
    }
    if (dev->euicc_cert != NULL && dev->euicc_cert_len > 0) {
        if (dev->euicc_cert_len != euicc_len || memcmp(dev->euicc_cert, euicc, euicc_len) != 0)
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                        "the IPA reports another CERT.EUICC than the registered one: kept the "
                        "registered one");
        rc = PL_OK;
        goto out;
    }
    rc = pl_eim_store_device_get(eng->store, dev->eid, &d);
    if (rc != PL_OK)
        goto out;
    d.euicc_cert = euicc;
    d.euicc_cert_len = euicc_len;
    d.eum_cert = eum;
    d.eum_cert_len = eum_len;
    euicc = eum = NULL;
    rc = pl_eim_store_device_update(eng->store, eng->claimer, &d, PL_EIM_DEV_CERTS);
    if (rc == PL_OK)
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, NULL, "verified eUICC certificates stored");
out:
    free(euicc);
    free(eum);
    pl_eim_device_clear(&d);
    return rc;
}

int pl_eimi_result_edr(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                       const uint8_t *raw, size_t len, struct pl_eimi_acks *acks)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_ipa_euicc_data_response *rsp = calloc(1, sizeof(*rsp));
    struct pl_eim_op op;
    struct pl_eim_device fresh;
    memset(&op, 0, sizeof(op));
    memset(&fresh, 0, sizeof(fresh));
    if (rsp == NULL)
        return PL_ERR_NOMEM;
    rc = pl_sgp32_ipa_euicc_data_response_decode(raw, len, rsp);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL, "malformed IpaEuiccDataResponse: %s",
                    pl_strerror(rc));
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_MALFORMED;
        goto out;
    }
    /* The operation it answers: a data request in sent, or a requery, with this txid. */
    rc = pl_eimi_inflight(eng, dev->eid, &op);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    bool requery = rc == PL_OK && op.state == PL_EIM_OPS_REQUERY;
    bool edr =
        rc == PL_OK && op.state == PL_EIM_OPS_SENT && op.kind == PL_EIM_OP_IPA_EUICC_DATA_REQUEST;
    struct pl_sgp32_buf optx = {op.txid_len ? op.txid : NULL, op.txid_len};
    uint8_t alt[PL_EIM_TXID_MAX];
    pl_eimi_requery_alt_txid(&op, alt);
    struct pl_sgp32_buf alttx = {op.txid_len ? alt : NULL, op.txid_len};
    struct pl_sgp32_buf txid = rsp->is_error ? rsp->error_txid : rsp->data.eim_txid;
    /* A requery's phase B is asked under the alternate transaction id (§4). */
    bool all_results = requery && op.txid_len > 0 && pl_sgp32_buf_eq(txid, alttx);
    if (!(requery || edr) || !(pl_sgp32_buf_eq(txid, optx) || all_results)) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                    "IpaEuiccDataResponse rejected: no matching request in flight");
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if (rsp->is_error) {
        const char *name = edr_error_name(rsp->error_code);
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "IpaEuiccData error: %s", name);
        /* A requery the IPA cannot answer leaves the operation unresolved (it is asked
         * again until the requery time runs out); a data request ends failed. */
        rc = requery ? PL_OK
                     : pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED,
                                              raw, len, name);
        goto out;
    }
    const struct pl_sgp32_ipa_euicc_data *data = &rsp->data;
    rc = learn_certs(eng, dev, data);
    if (pl_eimi_is_fatal(rc))
        goto out;
    /* Re-read: learn_certs may just have stored the certificates the signatures need. */
    rc = pl_eim_store_device_get(eng->store, dev->eid, &fresh);
    if (rc != PL_OK)
        goto out;
    struct pl_sgp32_iter it;
    struct pl_tlv item;
    if (data->epr_list.p != NULL) {
        pl_sgp32_iter_init(&it, &data->epr_list);
        while ((rc = pl_sgp32_iter_next(&it, &item)) == PL_OK) {
            int erc =
                pl_eimi_result_epr(eng, &fresh, item.raw, item.raw_len, PL_EIMI_EPR_REQUERY, acks);
            if (pl_eimi_is_fatal(erc)) {
                rc = erc;
                goto out;
            }
        }
        if (rc != PL_ERR_NOT_FOUND)
            goto out;
    }
    if (data->notifications.p != NULL) {
        pl_sgp32_iter_init(&it, &data->notifications);
        while ((rc = pl_sgp32_iter_next(&it, &item)) == PL_OK) {
            int nrc = pl_eimi_notification(eng, &fresh, item.raw, item.raw_len, acks, NULL);
            if (pl_eimi_is_fatal(nrc)) {
                rc = nrc;
                goto out;
            }
        }
        if (rc != PL_ERR_NOT_FOUND)
            goto out;
    }
    if (requery) {
        /* Did one of the EPRs resolve it? If not, the eUICC holds no result for the
         * package: it did not run (docs/eim-engine.md §4). */
        struct pl_eim_op now;
        memset(&now, 0, sizeof(now));
        rc = pl_eim_store_op_get(eng->store, op.id, &now);
        enum pl_eim_op_state st = now.state;
        pl_eim_op_clear(&now);
        if (rc != PL_OK)
            goto out;
        if (st == PL_EIM_OPS_REQUERY && !all_results) {
            pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, &op,
                        "not among the results searched by seqNumber: all are asked next");
        } else if (st == PL_EIM_OPS_REQUERY) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op,
                        "the eUICC holds no result for the package");
            rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, raw,
                                        len, "resultNotFound");
        }
        goto out;
    }
    rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_DONE, raw, len, "ok");
    if (rc == PL_OK)
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, &op, "device data received");
out:
    pl_eim_device_clear(&fresh);
    pl_eim_op_clear(&op);
    free(rsp);
    return rc;
}
