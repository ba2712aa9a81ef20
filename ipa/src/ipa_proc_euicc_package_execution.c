/* eUICC Package execution, IPA side (GSMA SGP.32 v1.2 §3.2 eUICC Package procedures,
 * §2.11.1.1 EuiccPackageRequest, §5.9.1 ES10b.LoadEuiccPackage, §2.11.2.1
 * EuiccPackageResult, §6.3.2.7 ProvideEimPackageResult ePRAndNotifications).
 *
 *   1. decode the request with the codec (only to learn eimId / counterValue /
 *      eimTransactionId; the bytes go to the eUICC as received);
 *   2. record "package in flight" in the state file BEFORE the eUICC sees it;
 *   3. LoadEuiccPackage; the eUICC-signed result;
 *   4. the pending notifications (RetrieveNotificationsList) ride along;
 *   5. the ProvideEimPackageResult is stored as the pending result and the flight cleared,
 *      in one state write; delivery follows (ipa_esipa_provide_eim_package_result.c).
 *
 * Lost result (EIM.md §1.6: real eUICCs REFRESH or answer '6985' after an enable; a power
 * cut between 2 and 5): the IPA never invents a result. It asks the eUICC for the stored
 * result of that package (SGP.32 RetrieveNotificationsList searchCriteria
 * euiccPackageResults, matched on eimId + counterValue + eimTransactionId); when the eUICC
 * answers and holds none, it reports eimPackageResultResponseError undefinedError(127) with
 * the eimTransactionId so that the eIM re-queries (IpaEuiccDataRequest 'A2'); when the eUICC
 * cannot be reached it keeps the flight and tries again at the next poll. */
#include "ipa_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"

#include <stdlib.h>
#include <string.h>

/* Room kept in a result body for what is not a notification. */
#define RESULT_OVERHEAD 256u

static bool epr_matches(void *user, const struct pl_sgp32_euicc_package_result *r)
{
    const struct pl_ipa_flight *f = user;

    if (r->eim_id.len != f->eim_id_len || memcmp(r->eim_id.p, f->eim_id, f->eim_id_len) != 0)
        return false;
    if (f->txid_len > 0
        && (r->eim_txid.p == NULL || r->eim_txid.len != f->txid_len
            || memcmp(r->eim_txid.p, f->txid, f->txid_len) != 0))
        return false;
    if (r->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        return f->txid_len > 0; /* no counter to match on: only with a transaction id */
    return r->counter == f->counter;
}

/* Reports that no result can be given for the package in flight. */
static int report_no_result(struct pl_ipa *ipa)
{
    struct pl_sgp32_eim_package_result res;

    memset(&res, 0, sizeof(res));
    res.kind = PL_SGP32_EIM_RESULT_ERROR;
    if (ipa->st.flight.txid_len > 0) {
        res.error_txid.p = ipa->st.flight.txid;
        res.error_txid.len = ipa->st.flight.txid_len;
    }
    res.error_code = PL_SGP32_EIM_RESULT_ERR_UNDEFINED;
    pl_ipa_log(ipa, PL_IPA_LOG_WARN,
               "no result for eimId=%s counter=%u: reporting undefinedError for a re-query",
               ipa->st.flight.eim_id, (unsigned)ipa->st.flight.counter);
    ipa->st.in_flight = false;
    return pl_ipa_set_pending_result(ipa, &res);
}

/* The result (raw 'BF51', already checked) plus pending notifications become the pending
 * ProvideEimPackageResult; the flight ends in the same state write. */
static int finish_with_epr(struct pl_ipa *ipa, const uint8_t *epr, size_t epr_len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_result *r = NULL;
    struct pl_sgp32_eim_package_result res;
    uint32_t seqs[PL_NOTIF_LIST_MAX];
    size_t count = 0, n_seqs = 0;
    uint8_t fp[PL_SHA256_LEN];
    struct pl_wr list;

    pl_wr_init_dyn(&list, PL_IPA_BODY_MAX);
    r = malloc(sizeof(*r));
    if (r == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = pl_sgp32_euicc_package_result_decode(epr, epr_len, r)) != PL_OK)
        goto out;
    if (epr_len + RESULT_OVERHEAD < PL_IPA_BODY_MAX) {
        rc = pl_ipa_es10b_notifications(ipa, PL_IPA_NOTIF_ALL, 0,
                                        PL_IPA_BODY_MAX - epr_len - RESULT_OVERHEAD, &list, &count,
                                        seqs, &n_seqs);
        if (rc != PL_OK) {
            pl_ipa_log(ipa, PL_IPA_LOG_WARN, "result sent without notifications: %s",
                       pl_strerror(rc));
            count = n_seqs = 0;
        }
    }
    memset(&res, 0, sizeof(res));
    res.kind = count > 0 ? PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS : PL_SGP32_EIM_RESULT_EPR;
    res.euicc_package_result.p = epr;
    res.euicc_package_result.len = epr_len;
    if (count > 0) {
        res.notifications.p = list.buf;
        res.notifications.len = list.len;
        res.notifications.count = count;
    }
    if (r->kind == PL_SGP32_EPR_RESULT_SIGNED)
        pl_ipa_await_ack(ipa, r->seq_number);
    for (size_t i = 0; i < n_seqs; i++)
        pl_ipa_await_ack(ipa, seqs[i]);
    /* What the eIM caused is no state change to report. */
    if (pl_ipa_es10c_profiles_fingerprint(ipa, fp) == PL_OK) {
        memcpy(ipa->st.fingerprint, fp, sizeof(fp));
        ipa->st.has_fingerprint = true;
    } else {
        ipa->st.has_fingerprint = false;
    }
    if (r->kind == PL_SGP32_EPR_RESULT_SIGNED)
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "result seq=%u counter=%u results=%zu notifications=%zu",
                   (unsigned)r->seq_number, (unsigned)r->counter, r->n_results, count);
    else
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "result: %s error %lld notifications=%zu",
                   r->kind == PL_SGP32_EPR_ERROR_SIGNED ? "signed" : "unsigned",
                   (long long)r->error_code, count);
    ipa->st.in_flight = false;
    rc = pl_ipa_set_pending_result(ipa, &res);
out:
    free(r);
    pl_wr_free(&list);
    return rc;
}

int pl_ipa_proc_recover_in_flight(struct pl_ipa *ipa)
{
    int rc = PL_ERR_INTERNAL;
    uint32_t seqs[PL_SGP32_MAX_LIST];
    size_t count = 0, n_seqs = 0;
    struct pl_wr list;
    struct pl_der d;
    struct pl_tlv first;

    if (!ipa->st.in_flight)
        return PL_OK;
    pl_wr_init_dyn(&list, PL_IPA_BODY_MAX);
    rc = pl_ipa_es10b_package_results(ipa, epr_matches, &ipa->st.flight,
                                      PL_IPA_BODY_MAX - RESULT_OVERHEAD, &list, &count, seqs,
                                      &n_seqs);
    if ((rc == PL_ERR_CARD_SW || rc == PL_ERR_IO || rc == PL_ERR_TIMEOUT)
        && ipa->cfg.card_reset != NULL) {
        /* A card that refuses everything until reset (EIM.md §1.6): reset, ask again. */
        if (pl_ipa_card_reset(ipa) == PL_OK) {
            pl_wr_reset(&list);
            rc = pl_ipa_es10b_package_results(ipa, epr_matches, &ipa->st.flight,
                                              PL_IPA_BODY_MAX - RESULT_OVERHEAD, &list, &count,
                                              seqs, &n_seqs);
        }
    }
    if (rc == PL_ERR_UNSUPPORTED || rc == PL_ERR_MALFORMED || (rc == PL_OK && count == 0)) {
        /* The eUICC answered and holds nothing usable. */
        rc = report_no_result(ipa);
        goto out;
    }
    if (rc != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "result of counter=%u not recovered yet: %s",
                   (unsigned)ipa->st.flight.counter, pl_strerror(rc));
        goto out; /* the eUICC is out of reach: keep the flight */
    }
    pl_der_init(&d, list.buf, list.len);
    if ((rc = pl_der_next(&d, &first)) != PL_OK)
        goto out;
    ipa->st.recovered++;
    pl_ipa_log(ipa, PL_IPA_LOG_INFO, "stored result of counter=%u recovered from the eUICC",
               (unsigned)ipa->st.flight.counter);
    rc = finish_with_epr(ipa, first.raw, first.raw_len);
out:
    pl_wr_free(&list);
    return rc;
}

int pl_ipa_proc_euicc_package(struct pl_ipa *ipa, const uint8_t *p, size_t len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_request *q = NULL;
    struct pl_ipa_flight *f = &ipa->st.flight;
    struct pl_wr epr;
    uint16_t sw = 0;

    pl_wr_init_dyn(&epr, PL_IPA_ES10_RSP_MAX);
    q = malloc(sizeof(*q));
    if (q == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    ipa->st.packages++;
    if ((rc = pl_sgp32_euicc_package_request_decode(p, len, q)) != PL_OK
        || len > (size_t)PL_ES10_MAX_BLOCKS * ipa->cfg.mss) {
        struct pl_sgp32_eim_package_result res;
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "eUICC Package refused: %s",
                   rc != PL_OK ? pl_strerror(rc) : "too long for STORE DATA");
        memset(&res, 0, sizeof(res));
        res.kind = PL_SGP32_EIM_RESULT_ERROR;
        res.error_code = PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT;
        rc = pl_ipa_set_pending_result(ipa, &res);
        goto out;
    }
    memset(f, 0, sizeof(*f));
    memcpy(f->eim_id, q->pkg.eim_id.p, q->pkg.eim_id.len);
    f->eim_id_len = q->pkg.eim_id.len;
    f->counter = q->pkg.counter;
    if (q->pkg.eim_txid.p != NULL) {
        memcpy(f->txid, q->pkg.eim_txid.p, q->pkg.eim_txid.len);
        f->txid_len = q->pkg.eim_txid.len;
    }
    ipa->st.in_flight = true;
    if ((rc = pl_ipa_save(ipa)) != PL_OK) {
        /* Not executed: without the flight on disk a lost answer could not be recovered. */
        ipa->st.in_flight = false;
        goto out;
    }
    pl_ipa_log(ipa, PL_IPA_LOG_INFO, "eUICC Package eimId=%s counter=%u %s ops=%zu", f->eim_id,
               (unsigned)f->counter, q->pkg.kind == PL_SGP32_PACKAGE_PSMO ? "psmo" : "eco",
               q->pkg.n_ops);
    rc = pl_ipa_es10b_load_euicc_package(ipa, p, len, &epr, &sw);
    if (rc == PL_OK) {
        rc = finish_with_epr(ipa, epr.buf, epr.len);
        goto out;
    }
    pl_ipa_log(ipa, PL_IPA_LOG_WARN, "LoadEuiccPackage answer lost: %s (SW %04X)", pl_strerror(rc),
               (unsigned)sw);
    if ((rc == PL_ERR_CARD_SW && sw == PL_SW_CONDITIONS) || rc == PL_ERR_IO
        || rc == PL_ERR_TIMEOUT) {
        /* The REFRESH the eUICC wants (or a card that stopped answering): reset it now.
         * Without a reset hook the recovery below tries the card as it is. */
        if (pl_ipa_card_reset(ipa) == PL_ERR_UNSUPPORTED)
            pl_ipa_es10_drop(ipa);
    }
    rc = pl_ipa_proc_recover_in_flight(ipa);
out:
    free(q);
    pl_wr_free(&epr);
    return rc;
}
