/* ES10b.RetrieveNotificationsList (GSMA SGP.22 v2.5 §5.7.10; SGP.32 v1.2 §5.9.x
 * SGP32-RetrieveNotificationsListRequest with searchCriteria euiccPackageResults) and
 * ES10b.RemoveNotificationFromList (SGP.22 v2.5 §5.7.11, NotificationSent 'BF30').
 *
 *   pending notifications:   BF2B { [A0 { 80 seq | 81 events }] }
 *                         -> BF2B { A0 { BF37 | 30 ... } | 81 error }     (notif.h codec)
 *   stored package results:  BF2B { A0 { 82 00 } }   searchCriteria [0] explicit, arm [2] NULL
 *                         -> BF2B { A2 { BF51 ... } | A0 {} | 81 error }
 *   NotificationSent:        BF30 { 80 seq } -> BF30 { 80 deleteNotificationStatus }
 *
 * Elements are forwarded raw (they are eUICC-signed); their seqNumbers are collected so that
 * only what the IPA delivered is removed when the eIM acknowledges it (§2.11.1.4).
 * ASN.1: shared/asn1/SGP32Definitions.asn, RSPDefinitions.asn. */
#include "ipa_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/sgp32_euicc_package.h"

#include <stdlib.h>
#include <string.h>

#define TAG_NOTIF_LIST  0xA0u
#define TAG_NOTIF_ERROR 0x81u
#define TAG_EPR_LIST    0xA2u
#define TAG_EPR         0xBF51u

int pl_ipa_es10b_notifications(struct pl_ipa *ipa, enum pl_ipa_notif_crit crit, uint32_t arg,
                               size_t max_bytes, struct pl_wr *list, size_t *count, uint32_t *seqs,
                               size_t *n_seqs)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_notif_rnl_req q = {.crit = PL_NOTIF_CRIT_NONE};
    struct pl_notif_rnl_rsp *r = NULL;
    uint8_t rq[32];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    size_t taken = 0;

    *count = 0;
    *n_seqs = 0;
    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_dyn(&rsp, PL_IPA_ES10_RSP_MAX);
    if (crit == PL_IPA_NOTIF_SEQ) {
        q.crit = PL_NOTIF_CRIT_SEQ;
        q.seq = arg;
    } else if (crit == PL_IPA_NOTIF_EVENTS) {
        q.crit = PL_NOTIF_CRIT_OPS;
        q.ops = (uint8_t)(arg & PL_NOTIF_EV_ALL);
    }
    if ((rc = pl_notif_rnl_req_encode(&q, &req)) != PL_OK)
        goto out;
    if ((rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "RetrieveNotificationsList: %s (SW %04X)", pl_strerror(rc),
                   (unsigned)sw);
        goto out;
    }
    r = malloc(sizeof(*r));
    if (r == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = pl_notif_rnl_rsp_decode(rsp.buf, rsp.len, r)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "RetrieveNotificationsList response: %s", pl_strerror(rc));
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if (r->is_error) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "RetrieveNotificationsList: error %lld",
                   (long long)r->error);
        rc = PL_OK; /* nothing to deliver */
        goto out;
    }
    for (size_t i = 0; i < r->n && *n_seqs < PL_NOTIF_LIST_MAX; i++) {
        if (r->items[i].meta.seq > PL_SGP32_COUNTER_MAX)
            continue; /* cannot be acknowledged in an EimAcknowledgements */
        if (taken + r->items[i].raw_len > max_bytes)
            break;
        pl_wr_bytes(list, r->items[i].raw, r->items[i].raw_len);
        taken += r->items[i].raw_len;
        seqs[(*n_seqs)++] = (uint32_t)r->items[i].meta.seq;
        (*count)++;
    }
    rc = pl_wr_status(list);
out:
    free(r);
    pl_wr_free(&rsp);
    return rc;
}

int pl_ipa_es10b_package_results(struct pl_ipa *ipa, pl_ipa_epr_filter keep, void *user,
                                 size_t max_bytes, struct pl_wr *list, size_t *count,
                                 uint32_t *seqs, size_t *n_seqs)
{
    static const uint8_t req[] = {0xBF, 0x2B, 0x04, 0xA0, 0x02, 0x82, 0x00};
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_result *res = NULL;
    struct pl_der d, in;
    struct pl_tlv t, arm, item;
    struct pl_wr rsp;
    uint16_t sw = 0;
    size_t taken = 0;

    *count = 0;
    *n_seqs = 0;
    pl_wr_init_dyn(&rsp, PL_IPA_ES10_RSP_MAX);
    rc = pl_ipa_es10(ipa, req, sizeof(req), &rsp, &sw, true);
    if (rc == PL_ERR_CARD_SW && (pl_ipa_sw_unsupported(sw) || sw == PL_SW_WRONG_DATA)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (rc != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN,
                   "RetrieveNotificationsList(euiccPackageResults): %s "
                   "(SW %04X)",
                   pl_strerror(rc), (unsigned)sw);
        goto out;
    }
    pl_der_init(&d, rsp.buf, rsp.len);
    if ((rc = pl_der_parse_one(rsp.buf, rsp.len, PL_TAG_RETRIEVE_NOTIF, &t)) != PL_OK
        || (rc = pl_der_enter(&d, &t, &in)) != PL_OK || (rc = pl_der_next(&in, &arm)) != PL_OK
        || (rc = pl_der_finish(&in)) != PL_OK)
        goto bad;
    if (arm.tag == TAG_NOTIF_ERROR || (arm.tag == TAG_NOTIF_LIST && arm.len == 0)) {
        rc = PL_OK; /* none stored */
        goto out;
    }
    if (arm.tag != TAG_EPR_LIST) {
        rc = PL_ERR_DER_TAG;
        goto bad;
    }
    res = malloc(sizeof(*res));
    if (res == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    {
        struct pl_der lst;
        if ((rc = pl_der_enter(&in, &arm, &lst)) != PL_OK)
            goto bad;
        while (!pl_der_done(&lst)) {
            if ((rc = pl_der_expect(&lst, TAG_EPR, &item)) != PL_OK
                || (rc = pl_sgp32_euicc_package_result_decode(item.raw, item.raw_len, res))
                       != PL_OK)
                goto bad;
            if (keep != NULL && !keep(user, res))
                continue;
            if (taken + item.raw_len > max_bytes || *count == PL_SGP32_MAX_LIST)
                break;
            pl_wr_bytes(list, item.raw, item.raw_len);
            taken += item.raw_len;
            (*count)++;
            if (res->kind == PL_SGP32_EPR_RESULT_SIGNED)
                seqs[(*n_seqs)++] = res->seq_number;
        }
    }
    rc = pl_wr_status(list);
    goto out;
bad:
    pl_ipa_log(ipa, PL_IPA_LOG_WARN,
               "RetrieveNotificationsList(euiccPackageResults) "
               "response: %s",
               pl_strerror(rc));
    rc = PL_ERR_MALFORMED;
out:
    free(res);
    pl_wr_free(&rsp);
    return rc;
}

int pl_ipa_es10b_notification_sent(struct pl_ipa *ipa, uint32_t seq, int64_t *status)
{
    uint8_t rq[32], rb[32];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    int rc;

    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_fixed(&rsp, rb, sizeof(rb));
    if ((rc = pl_notif_sent_req_encode(seq, &req)) != PL_OK)
        return rc;
    if ((rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "NotificationSent(%u): %s (SW %04X)", (unsigned)seq,
                   pl_strerror(rc), (unsigned)sw);
        return rc;
    }
    if ((rc = pl_notif_sent_rsp_decode(rsp.buf, rsp.len, status)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "NotificationSent(%u) response: %s", (unsigned)seq,
                   pl_strerror(rc));
        return PL_ERR_MALFORMED;
    }
    return PL_OK;
}
