/* eIM-requested eUICC/IPA data, IPA side (GSMA SGP.32 v1.2 §2.11.1.2 IpaEuiccDataRequest,
 * §2.11.2.2 IpaEuiccDataResponse, §6.3.2.7 ProvideEimPackageResult ipaEuiccDataResponse).
 *
 * The tagList names IpaEuiccData components by their tags (EIM.md §1.8: v1.2 tags):
 *   A0 notificationsList     ES10b.RetrieveNotificationsList (searchCriteriaNotification)
 *   81 defaultSmdpAddress    ES10a.GetEuiccConfiguredAddresses
 *   A2 euiccPackageResultList SGP.32 RetrieveNotificationsList euiccPackageResults
 *                            (searchCriteriaEuiccPackageResult: the result with that seqNumber)
 *   BF20 / BF22 euiccInfo1/2 ES10b.GetEUICCInfo1/2 (raw)
 *   83 rootSmdsAddress       ES10a.GetEuiccConfiguredAddresses
 *   84 associationToken      ES10b.GetEimConfigurationData (the eIM this IPA serves)
 *   A5 / A6 certificates     ES10b.GetCerts (euiccCiPKIdentifierToBeUsed)
 *   A8 ipaCapabilities       the IPA's configuration
 *   A9 deviceInfo            the IPA's configuration
 *   87 eimTransactionId      always echoed when the request carries one (osmo d0da1542)
 * Any other tag: ipaEuiccDataResponseError incorrectTagList(1). GetCerts refusing the CI
 * key identifier: euiccCiPKIdNotFound(5). A component this eUICC does not offer ('6A88') or
 * the IPA was not configured with is left out; any other eUICC failure is undefinedError(127)
 * (docs/ipa.md §3). Delivered notifications and results await the eIM's acknowledgement. */
#include "ipa_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <stdlib.h>
#include <string.h>

#define LIST_BUDGET (PL_IPA_BODY_MAX / 3u)

struct edr {
    struct pl_ipa *ipa;
    const struct pl_sgp32_ipa_euicc_data_request *req;
    struct pl_sgp32_ipa_euicc_data *data;
    struct pl_wr notifs, eprs, info1, info2, eum, euicc, dp, ds;
    bool addr_done, certs_done;
    int64_t error; /* 0: none, else the IpaEuiccDataErrorCode */
};

static bool epr_seq_filter(void *user, const struct pl_sgp32_euicc_package_result *r)
{
    const struct pl_sgp32_ipa_euicc_data_request *q = ((const struct edr *)user)->req;
    if (!q->has_epr_search)
        return true;
    return r->kind == PL_SGP32_EPR_RESULT_SIGNED && r->seq_number == q->epr_seq;
}

/* eUICC failure: left out when not offered, else the whole answer is undefinedError. */
static void card_failed(struct edr *e, int rc, const char *what)
{
    if (rc == PL_ERR_UNSUPPORTED) {
        pl_ipa_log(e->ipa, PL_IPA_LOG_INFO, "IpaEuiccData: %s not offered by the eUICC: left out",
                   what);
        return;
    }
    pl_ipa_log(e->ipa, PL_IPA_LOG_WARN, "IpaEuiccData: %s failed: %s", what, pl_strerror(rc));
    if (e->error == 0)
        e->error = PL_SGP32_EDR_UNDEFINED;
}

static void get_addresses(struct edr *e)
{
    bool has_dp = false, has_ds = false;
    int rc;

    if (e->addr_done)
        return;
    e->addr_done = true;
    rc = pl_ipa_es10a_configured_addresses(e->ipa, &e->dp, &has_dp, &e->ds, &has_ds);
    if (rc != PL_OK) {
        card_failed(e, rc, "GetEuiccConfiguredAddresses");
        return;
    }
    if (has_dp) {
        e->data->default_smdp_address.p = e->dp.buf;
        e->data->default_smdp_address.len = e->dp.len;
    }
    if (has_ds) {
        e->data->root_smds_address.p = e->ds.buf;
        e->data->root_smds_address.len = e->ds.len;
    }
}

static void get_certs(struct edr *e)
{
    bool ci_error = false;
    int rc;

    if (e->certs_done)
        return;
    e->certs_done = true;
    rc = pl_ipa_es10b_get_certs(e->ipa, e->req->euicc_ci_pkid.p, e->req->euicc_ci_pkid.len, &e->eum,
                                &e->euicc, &ci_error);
    if (rc != PL_OK) {
        card_failed(e, rc, "GetCerts");
        return;
    }
    if (ci_error) {
        if (e->error == 0)
            e->error = PL_SGP32_EDR_CI_PKID_NOT_FOUND;
        return;
    }
    e->data->eum_certificate.p = e->eum.buf;
    e->data->eum_certificate.len = e->eum.len;
    e->data->euicc_certificate.p = e->euicc.buf;
    e->data->euicc_certificate.len = e->euicc.len;
}

static void one_tag(struct edr *e, uint32_t tag)
{
    struct pl_ipa *ipa = e->ipa;
    uint32_t seqs[PL_SGP32_MAX_LIST];
    size_t count = 0, n = 0;
    int rc;

    switch (tag) {
    case 0xA0u: {
        enum pl_ipa_notif_crit crit = PL_IPA_NOTIF_ALL;
        uint32_t arg = 0;
        if (e->data->notifications.p != NULL)
            return; /* listed twice */
        if (e->req->notif_search == PL_SGP32_NOTIF_SEARCH_SEQ) {
            crit = PL_IPA_NOTIF_SEQ;
            arg = e->req->notif_seq;
        } else if (e->req->notif_search == PL_SGP32_NOTIF_SEARCH_PMO) {
            crit = PL_IPA_NOTIF_EVENTS;
            arg = e->req->notif_events;
        }
        rc = pl_ipa_es10b_notifications(ipa, crit, arg, LIST_BUDGET, &e->notifs, &count, seqs, &n);
        if (rc != PL_OK) {
            card_failed(e, rc, "RetrieveNotificationsList");
            return;
        }
        e->data->notifications.p = e->notifs.buf != NULL ? e->notifs.buf : (const uint8_t *)"";
        e->data->notifications.len = e->notifs.len;
        e->data->notifications.count = count;
        for (size_t i = 0; i < n; i++)
            pl_ipa_await_ack(ipa, seqs[i]);
        return;
    }
    case 0xA2u:
        if (e->data->epr_list.p != NULL)
            return;
        rc = pl_ipa_es10b_package_results(ipa, epr_seq_filter, e, LIST_BUDGET, &e->eprs, &count,
                                          seqs, &n);
        if (rc != PL_OK) {
            card_failed(e, rc, "RetrieveNotificationsList(euiccPackageResults)");
            return;
        }
        e->data->epr_list.p = e->eprs.buf != NULL ? e->eprs.buf : (const uint8_t *)"";
        e->data->epr_list.len = e->eprs.len;
        e->data->epr_list.count = count;
        for (size_t i = 0; i < n; i++)
            pl_ipa_await_ack(ipa, seqs[i]);
        return;
    case 0x81u:
    case 0x83u:
        get_addresses(e);
        return;
    case 0xBF20u:
    case 0xBF22u: {
        bool two = tag == 0xBF22u;
        struct pl_wr *w = two ? &e->info2 : &e->info1;
        if (w->len > 0)
            return;
        rc = pl_ipa_es10b_get_euicc_info(ipa, two, w);
        if (rc != PL_OK) {
            card_failed(e, rc, two ? "GetEUICCInfo2" : "GetEUICCInfo1");
            return;
        }
        if (two) {
            e->data->euicc_info2.p = w->buf;
            e->data->euicc_info2.len = w->len;
        } else {
            e->data->euicc_info1.p = w->buf;
            e->data->euicc_info1.len = w->len;
        }
        return;
    }
    case 0x84u:
        if (!ipa->eim_config_read) {
            rc = pl_ipa_es10b_get_eim_configuration_data(ipa);
            if (rc != PL_OK && rc != PL_ERR_NOT_FOUND) {
                card_failed(e, rc, "GetEimConfigurationData");
                return;
            }
        }
        if (ipa->has_token) {
            e->data->has_association_token = true;
            e->data->association_token = ipa->token;
        }
        return;
    case 0xA5u:
    case 0xA6u:
        get_certs(e);
        return;
    case 0xA8u:
        e->data->has_ipa_capabilities = true;
        e->data->ipa_features = ipa->cfg.ipa_features;
        e->data->has_ipa_supported_protocols = true;
        e->data->ipa_supported_protocols = ipa->cfg.ipa_protocols;
        return;
    case 0xA9u:
        if (ipa->cfg.device_info != NULL) {
            e->data->device_info.p = ipa->cfg.device_info;
            e->data->device_info.len = ipa->cfg.device_info_len;
        }
        return;
    case 0x87u:
        return; /* echoed anyway */
    default:
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "IpaEuiccData: tag %X not in IpaEuiccData", tag);
        e->error = PL_SGP32_EDR_INCORRECT_TAG_LIST;
        return;
    }
}

/* Walks the tagList: identifiers back to back (X.690 §8.1.2, read by the DER layer); stops
 * at the first error, so nothing more is asked of the eUICC for an answer that will be an
 * error anyway. */
static int walk_tags(struct edr *e)
{
    struct pl_rd r;

    pl_rd_init(&r, e->req->tag_list.p, e->req->tag_list.len);
    while (!pl_rd_done(&r) && e->error == 0) {
        uint32_t tag;
        if (pl_der_read_tag(&r, &tag) != PL_OK) {
            e->error = PL_SGP32_EDR_INCORRECT_TAG_LIST;
            return PL_OK;
        }
        one_tag(e, tag);
    }
    return PL_OK;
}

int pl_ipa_proc_ipa_euicc_data(struct pl_ipa *ipa, const uint8_t *p, size_t len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_ipa_euicc_data_request q;
    struct pl_sgp32_ipa_euicc_data_response *r = NULL;
    struct pl_sgp32_eim_package_result res;
    struct pl_wr out;
    struct edr e;
    size_t awaiting_before = ipa->st.n_awaiting;
    uint32_t saved[PL_IPA_MAX_AWAITING_ACK];

    memcpy(saved, ipa->st.awaiting, sizeof(saved));
    memset(&e, 0, sizeof(e));
    pl_wr_init_dyn(&out, PL_IPA_BODY_MAX);
    pl_wr_init_dyn(&e.notifs, LIST_BUDGET);
    pl_wr_init_dyn(&e.eprs, LIST_BUDGET);
    pl_wr_init_dyn(&e.info1, PL_IPA_ES10_RSP_MAX);
    pl_wr_init_dyn(&e.info2, PL_IPA_ES10_RSP_MAX);
    pl_wr_init_dyn(&e.eum, PL_IPA_ES10_RSP_MAX);
    pl_wr_init_dyn(&e.euicc, PL_IPA_ES10_RSP_MAX);
    pl_wr_init_dyn(&e.dp, PL_SGP32_ADDR_MAX);
    pl_wr_init_dyn(&e.ds, PL_SGP32_ADDR_MAX);
    ipa->st.packages++;
    memset(&res, 0, sizeof(res));
    if ((rc = pl_sgp32_ipa_euicc_data_request_decode(p, len, &q)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "IpaEuiccDataRequest refused: %s", pl_strerror(rc));
        res.kind = PL_SGP32_EIM_RESULT_ERROR;
        res.error_code = PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT;
        rc = pl_ipa_set_pending_result(ipa, &res);
        goto out;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    e.ipa = ipa;
    e.req = &q;
    e.data = &r->data;
    if ((rc = walk_tags(&e)) != PL_OK)
        goto out;
    if (e.error != 0) {
        /* Nothing of it is delivered: nothing to await. */
        ipa->st.n_awaiting = awaiting_before;
        memcpy(ipa->st.awaiting, saved, sizeof(saved));
        memset(r, 0, sizeof(*r));
        r->is_error = true;
        r->error_code = e.error;
        r->error_txid = q.eim_txid;
    } else {
        r->data.eim_txid = q.eim_txid;
    }
    if ((rc = pl_sgp32_ipa_euicc_data_response_encode(r, &out)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "IpaEuiccDataResponse not encodable: %s",
                   pl_strerror(rc));
        ipa->st.n_awaiting = awaiting_before;
        memcpy(ipa->st.awaiting, saved, sizeof(saved));
        goto out;
    }
    pl_ipa_log(ipa, PL_IPA_LOG_INFO, "IpaEuiccData %s (%zu bytes)",
               r->is_error ? "error" : "collected", out.len);
    res.kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
    res.ipa_euicc_data_response.p = out.buf;
    res.ipa_euicc_data_response.len = out.len;
    rc = pl_ipa_set_pending_result(ipa, &res);
out:
    free(r);
    pl_wr_free(&out);
    pl_wr_free(&e.notifs);
    pl_wr_free(&e.eprs);
    pl_wr_free(&e.info1);
    pl_wr_free(&e.info2);
    pl_wr_free(&e.eum);
    pl_wr_free(&e.euicc);
    pl_wr_free(&e.dp);
    pl_wr_free(&e.ds);
    return rc;
}
