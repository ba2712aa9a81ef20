/* IpaEuiccDataRequest 'BF52' packages: the eIM's device-data request (an operation of kind
 * ipaEuiccDataRequest) and the lost-result requery of a signed operation.
 * GSMA SGP.32 v1.2 §2.11.1.2 (IpaEuiccDataRequest: tagList, searchCriteriaNotification,
 * searchCriteriaEuiccPackageResult, eimTransactionId, which the IPA echoes in IpaEuiccData),
 * reference/EIM.md §1.6 (lost EPRs: re-query with tagList 'A2' and
 * searchCriteriaEuiccPackageResult), §1.8 (tagList lists only IpaEuiccData tags).
 * Design of the requery: docs/eim-engine.md §4. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "eim_package_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int pl_eimi_params_edr(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                       struct pl_sgp32_ipa_euicc_data_request *req, char *err, size_t err_cap)
{
    static const char *const allowed[] = {
        "tagList", "euiccCiPKId", "notificationSeq", "notificationEvents", "resultSeq", NULL};
    static const char *const events[] = {"install", "enable", "disable", "delete"};
    json_t *obj = NULL;
    bool present;
    int64_t v = 0;
    int rc;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_eimi_json_open(params, len, arena, allowed, &obj, err, err_cap)))
        return rc;
    if ((rc = pl_eimi_json_hex(obj, "tagList", false, 1, 64, arena, &req->tag_list, err, err_cap)))
        return rc;
    if (req->tag_list.p == NULL) {
        /* The default of engine.h: defaultSmdpAddress, associationToken, eumCertificate,
         * euiccCertificate, ipaCapabilities, deviceInfo, euiccInfo1, euiccInfo2 */
        static const uint8_t def[] = {0x81, 0x84, 0xA5, 0xA6, 0xA8, 0xA9, 0xBF, 0x20, 0xBF, 0x22};
        req->tag_list.p = def;
        req->tag_list.len = sizeof(def);
    }
    if ((rc = pl_eimi_json_hex(obj, "euiccCiPKId", false, 1, 64, arena, &req->euicc_ci_pkid, err,
                               err_cap)))
        return rc;
    if ((rc = pl_eimi_json_int(obj, "notificationSeq", &present, 0, PL_SGP32_COUNTER_MAX, &v, err,
                               err_cap)))
        return rc;
    if (present) {
        req->notif_search = PL_SGP32_NOTIF_SEARCH_SEQ;
        req->notif_seq = (uint32_t)v;
    }
    json_t *ev = json_object_get(obj, "notificationEvents");
    if (ev != NULL) {
        if (present || !json_is_array(ev) || json_array_size(ev) == 0) {
            pl_eimi_err(err, err_cap, "\"%s\" must be a non-empty array, without notificationSeq",
                        "notificationEvents");
            return PL_ERR_INVAL;
        }
        size_t i;
        json_t *e;
        req->notif_search = PL_SGP32_NOTIF_SEARCH_PMO;
        json_array_foreach(ev, i, e)
        {
            const char *s = json_string_value(e);
            size_t k = 0;
            while (s != NULL && k < 4 && strcmp(s, events[k]) != 0)
                k++;
            if (s == NULL || k == 4) {
                pl_eimi_err(err, err_cap, "unknown event in \"%s\"", "notificationEvents");
                return PL_ERR_INVAL;
            }
            req->notif_events |= 1u << k;
        }
    }
    if ((rc = pl_eimi_json_int(obj, "resultSeq", &present, 0, PL_SGP32_COUNTER_MAX, &v, err,
                               err_cap)))
        return rc;
    req->has_epr_search = present;
    req->epr_seq = present ? (uint32_t)v : 0;
    return PL_OK;
}

/* The first seqNumber the lost EPR can have: one more than the highest seqNumber stored from
 * this eUICC (EPRs and notifications share the eUICC's sequence:
 * ES10b.RemoveNotificationFromList takes a bare seqNumber for both). *known false when the
 * eIM has stored nothing from the eUICC (or too much to scan): no basis for a guess. */
static int next_seq(const struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN],
                    uint32_t *out, bool *known)
{
    enum { CAP = 256 };
    struct pl_eim_notification *n = calloc(CAP, sizeof(*n));
    size_t count = 0;
    *out = 0;
    *known = false;
    if (n == NULL)
        return PL_ERR_NOMEM;
    int rc = pl_eim_store_notif_list(eng->store, eid, false, n, CAP, &count);
    if (rc == PL_OK && count > 0 && count < CAP) {
        uint32_t max = 0;
        for (size_t i = 0; i < count; i++) {
            if (n[i].seq > max)
                max = n[i].seq;
        }
        if (max < PL_SGP32_COUNTER_MAX) {
            *out = max + 1;
            *known = true;
        }
    }
    for (size_t i = 0; i < count; i++)
        pl_eim_notification_clear(&n[i]);
    free(n);
    return rc;
}

void pl_eimi_requery_alt_txid(const struct pl_eim_op *op, uint8_t out[PL_EIM_TXID_MAX])
{
    memcpy(out, op->txid, op->txid_len);
    if (op->txid_len > 0)
        out[0] ^= 0xFFu;
}

bool pl_eimi_requery_searching(const struct pl_eim_engine *eng, const struct pl_eim_op *op)
{
    int64_t now = pl_eimi_now(eng);
    return now < op->sent_ms || (uint64_t)(now - op->sent_ms) < 2 * eng->result_timeout_ms;
}

int pl_eimi_requery_build(const struct pl_eim_engine *eng, const struct pl_eim_op *op,
                          struct pl_wr *out)
{
    static const uint8_t tag_list[] = {PL_EIM_REQUERY_TAG};
    struct pl_sgp32_ipa_euicc_data_request req;
    uint8_t alt[PL_EIM_TXID_MAX];
    memset(&req, 0, sizeof(req));
    uint32_t seq = 0;
    bool known = false;
    int rc = next_seq(eng, op->eid, &seq, &known);
    if (rc != PL_OK)
        return rc;
    req.tag_list.p = tag_list;
    req.tag_list.len = sizeof(tag_list);
    if (known && pl_eimi_requery_searching(eng, op)) {
        /* Phase A: the result the eUICC most likely holds, by its seqNumber. */
        req.has_epr_search = true;
        req.epr_seq = seq;
        req.eim_txid.p = op->txid;
        req.eim_txid.len = op->txid_len;
    } else {
        /* Phase B: every stored result, under the alternate transaction id so the answer
         * tells which question it answers. */
        pl_eimi_requery_alt_txid(op, alt);
        req.eim_txid.p = alt;
        req.eim_txid.len = op->txid_len;
    }
    if (req.eim_txid.len == 0)
        req.eim_txid.p = NULL;
    rc = pl_sgp32_ipa_euicc_data_request_encode(&req, out);
    if (rc == PL_OK)
        rc = pl_wr_status(out);
    return rc;
}
