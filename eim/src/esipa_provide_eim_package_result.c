/* ESipa.ProvideEimPackageResult, eIM side: the IPA returns the result of an eIM Package.
 * GSMA SGP.32 v1.2 §6.3.2.7 (ProvideEimPackageResult {eidValue OPTIONAL, eimPackageResult
 * CHOICE {euiccPackageResult, ePRAndNotifications, ipaEuiccDataResponse,
 * profileDownloadTriggerResult, eimPackageResultResponseError}};
 * ProvideEimPackageResultResponse CHOICE {eimAcknowledgements, emptyResponse,
 * provideEimPackageResultError {eidNotFound(2), invalidEid(3), missingEid(4),
 * undefinedError(127)}}), §2.11.1.4 (EimAcknowledgements: the eUICC seqNumbers of delivered
 * EPRs and notifications); reference/EIM.md §1.6 ("answer emptyResponse when there is nothing
 * to ack"). Error mapping: docs/eim-engine.md §7. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "esipa_internal.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <stdlib.h>
#include <string.h>

#define PL_SGP32_PROVIDE_ERR_EID_NOT_FOUND 2
#define PL_SGP32_PROVIDE_ERR_INVALID_EID   3
#define PL_SGP32_PROVIDE_ERR_MISSING_EID   4
#define PL_SGP32_PROVIDE_ERR_UNDEFINED     127

int pl_eimi_provide(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                    const struct pl_sgp32_provide_eim_package_result *req,
                    struct pl_eimi_acks *acks, int64_t *err_code, uint8_t eid_out[PL_EIM_EID_LEN])
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_device dev;
    memset(&dev, 0, sizeof(dev));
    *err_code = 0;
    const uint8_t *eid = req->has_eid ? req->eid : peer_eid;
    if (eid == NULL) {
        *err_code = PL_SGP32_PROVIDE_ERR_MISSING_EID;
        return PL_OK;
    }
    if (peer_eid != NULL && memcmp(peer_eid, eid, PL_EIM_EID_LEN) != 0) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, eid, NULL,
                    "ProvideEimPackageResult for an EID the DTLS identity is not bound to");
        return PL_ERR_DENIED;
    }
    if (eid_out != NULL)
        memcpy(eid_out, eid, PL_EIM_EID_LEN);
    rc = pl_eim_store_device_get(eng->store, eid, &dev);
    if (rc == PL_ERR_NOT_FOUND) {
        pl_eimi_log(eng, PL_EIM_LOG_INFO, eid, NULL, "ProvideEimPackageResult: unknown EID");
        *err_code = PL_SGP32_PROVIDE_ERR_EID_NOT_FOUND;
        rc = PL_OK;
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    const struct pl_sgp32_eim_package_result *r = &req->result;
    switch (r->kind) {
    case PL_SGP32_EIM_RESULT_EPR:
        rc = pl_eimi_result_epr(eng, &dev, r->euicc_package_result.p, r->euicc_package_result.len,
                                PL_EIMI_EPR_DIRECT, acks);
        break;
    case PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS:
        rc = pl_eimi_result_epr(eng, &dev, r->euicc_package_result.p, r->euicc_package_result.len,
                                PL_EIMI_EPR_DIRECT, acks);
        if (rc == PL_OK && r->notifications.p != NULL) {
            struct pl_sgp32_iter it;
            struct pl_tlv item;
            pl_sgp32_iter_init(&it, &r->notifications);
            while ((rc = pl_sgp32_iter_next(&it, &item)) == PL_OK) {
                int nrc = pl_eimi_notification(eng, &dev, item.raw, item.raw_len, acks, NULL);
                if (pl_eimi_is_fatal(nrc)) {
                    rc = nrc;
                    break;
                }
            }
            if (rc == PL_ERR_NOT_FOUND)
                rc = PL_OK;
        }
        break;
    case PL_SGP32_EIM_RESULT_IPA_EUICC_DATA:
        rc = pl_eimi_result_edr(eng, &dev, r->ipa_euicc_data_response.p,
                                r->ipa_euicc_data_response.len, acks);
        break;
    case PL_SGP32_EIM_RESULT_PDT_RESULT:
        rc = pl_eimi_result_pdt(eng, &dev, r->pdt_result.p, r->pdt_result.len, acks);
        break;
    case PL_SGP32_EIM_RESULT_ERROR:
        rc = pl_eimi_result_ipa_error(eng, &dev, r->error_txid, r->error_code);
        break;
    case PL_SGP32_EIM_RESULT_PACKAGE_RECEIVED:
    case PL_SGP32_EIM_RESULT_PACKAGE_ERROR:
    default:
        rc = PL_ERR_DER_TAG;
        break;
    }
    if (rc != PL_OK && !pl_eimi_is_fatal(rc)) {
        /* Rejected: nothing changed; the IPA learns only that the result was not taken. */
        *err_code = PL_SGP32_PROVIDE_ERR_UNDEFINED;
        rc = PL_OK;
    }
out:
    pl_eim_device_clear(&dev);
    return rc;
}

int pl_eimi_ack_answer(struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                       struct pl_eimi_acks *acks, struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    enum { CAP = PL_SGP32_MAX_ACKS };
    struct pl_eim_notification *pending = calloc(CAP, sizeof(*pending));
    size_t n = 0;
    struct pl_wr aw;
    pl_wr_init_dyn(&aw, PL_EIMI_RSP_MAX);
    if (pending == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* Notifications and EPRs stored earlier (HandleNotification answers are empty) and not
     * yet acknowledged go with this answer. */
    rc = pl_eim_store_notif_list(eng->store, eid, true, pending, CAP, &n);
    if (rc != PL_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        pl_eimi_acks_add(acks, pending[i].seq);
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    if (acks->n == 0) {
        m.provide_result.kind = PL_SGP32_PROVIDE_RSP_EMPTY;
    } else {
        struct pl_sgp32_eim_acknowledgements a;
        memset(&a, 0, sizeof(a));
        a.n = acks->n;
        memcpy(a.seq, acks->seq, acks->n * sizeof(acks->seq[0]));
        rc = pl_sgp32_eim_acknowledgements_encode(&a, &aw);
        if (rc == PL_OK)
            rc = pl_wr_status(&aw);
        if (rc != PL_OK)
            goto out;
        m.provide_result.kind = PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS;
        m.provide_result.acknowledgements.p = aw.buf;
        m.provide_result.acknowledgements.len = aw.len;
    }
    rc = pl_sgp32_esipa_eim_msg_encode(&m, rsp);
    if (rc == PL_OK)
        rc = pl_wr_status(rsp);
    if (rc != PL_OK)
        goto out;
    /* Marked acknowledged once the answer exists. If the answer is lost the IPA sends the
     * same items again; they are stored idempotently and acknowledged again. */
    for (size_t i = 0; i < acks->n; i++) {
        rc = pl_eim_store_notif_ack(eng->store, eid, acks->seq[i]);
        if (rc == PL_ERR_NOT_FOUND)
            rc = PL_OK;
        if (rc != PL_OK)
            goto out;
    }
out:
    for (size_t i = 0; pending != NULL && i < n; i++)
        pl_eim_notification_clear(&pending[i]);
    free(pending);
    pl_wr_free(&aw);
    return rc;
}

static int answer_error(struct pl_wr *rsp, int64_t code)
{
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    m.provide_result.kind = PL_SGP32_PROVIDE_RSP_ERROR;
    m.provide_result.error_code = code;
    int rc = pl_sgp32_esipa_eim_msg_encode(&m, rsp);
    return rc == PL_OK ? pl_wr_status(rsp) : rc;
}

int pl_eim_engine_provide_result(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                 const struct pl_sgp32_provide_eim_package_result *req,
                                 struct pl_wr *rsp)
{
    struct pl_eimi_acks acks;
    int64_t code = 0;
    uint8_t eid[PL_EIM_EID_LEN];
    if (eng == NULL || req == NULL || rsp == NULL)
        return PL_ERR_INVAL;
    memset(&acks, 0, sizeof(acks));
    int rc = pl_eimi_provide(eng, peer_eid, req, &acks, &code, eid);
    if (rc != PL_OK)
        return rc;
    if (code != 0)
        return answer_error(rsp, code);
    return pl_eimi_ack_answer(eng, eid, &acks, rsp);
}
