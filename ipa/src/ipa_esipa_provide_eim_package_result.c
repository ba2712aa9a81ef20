/* ESipa.ProvideEimPackageResult, IPA side (GSMA SGP.32 v1.2 §6.3.2.7):
 *   ProvideEimPackageResult 'BF50' { eidValue '5A', eimPackageResult }
 *   answer 'BF50' { eimAcknowledgements 'BF53' | emptyResponse '30 00' |
 *                   provideEimPackageResultError INTEGER }
 * The result is stored (state file) before it is sent and cleared only when the eIM has
 * taken it, so a lost answer or a restart sends it again (the eIM correlates by
 * eimTransactionId / counterValue, EIM.md decision 2). An eIM that refuses it
 * max_delivery_attempts times gets it no more: the eUICC keeps its own copy of an eUICC
 * Package Result until acknowledged, so the eIM can still fetch it with an
 * IpaEuiccDataRequest (§2.11.1.2 searchCriteriaEuiccPackageResult). */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_esipa.h"

#include <string.h>

int pl_ipa_set_pending_result(struct pl_ipa *ipa, const struct pl_sgp32_eim_package_result *result)
{
    struct pl_sgp32_esipa_ipa_msg m;
    int rc;

    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    m.provide_result.has_eid = ipa->st.has_eid;
    memcpy(m.provide_result.eid, ipa->st.eid, PL_SGP32_EID_LEN);
    m.provide_result.result = *result;
    pl_wr_reset(&ipa->st.pending);
    if ((rc = pl_sgp32_esipa_ipa_msg_encode(&m, &ipa->st.pending)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "ProvideEimPackageResult not encodable: %s",
                   pl_strerror(rc));
        pl_wr_free(&ipa->st.pending);
        pl_wr_init_dyn(&ipa->st.pending, PL_IPA_BODY_MAX);
        ipa->st.has_pending = false;
        return rc;
    }
    ipa->st.has_pending = true;
    ipa->st.pending_attempts = 0;
    return pl_ipa_save(ipa);
}

static void drop_pending(struct pl_ipa *ipa)
{
    pl_wr_reset(&ipa->st.pending);
    ipa->st.has_pending = false;
    ipa->st.pending_attempts = 0;
}

/* The eIM did not take the result: count it, and give up after the configured attempts. */
static int refused(struct pl_ipa *ipa, int err)
{
    ipa->st.pending_attempts++;
    if (ipa->st.pending_attempts >= ipa->cfg.max_delivery_attempts) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR,
                   "result refused %u times: dropped (the eUICC keeps its copy)",
                   (unsigned)ipa->st.pending_attempts);
        drop_pending(ipa);
    }
    int rc = pl_ipa_save(ipa);
    return rc != PL_OK ? rc : err;
}

int pl_ipa_esipa_provide_eim_package_result(struct pl_ipa *ipa)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_wr rsp;

    if (!ipa->st.has_pending)
        return PL_OK;
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    if ((rc = pl_ipa_esipa_post(ipa, ipa->st.pending.buf, ipa->st.pending.len, &rsp)) != PL_OK)
        goto out; /* transport: try again later, not counted */
    if (pl_sgp32_esipa_eim_msg_decode(rsp.buf, rsp.len, &m) != PL_OK
        || m.kind != PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ProvideEimPackageResult: unusable answer (%zu bytes)",
                   rsp.len);
        rc = refused(ipa, PL_ERR_MALFORMED);
        goto out;
    }
    switch (m.provide_result.kind) {
    case PL_SGP32_PROVIDE_RSP_ERROR:
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ProvideEimPackageResult refused: error %lld",
                   (long long)m.provide_result.error_code);
        rc = refused(ipa, PL_ERR_REMOTE);
        goto out;
    case PL_SGP32_PROVIDE_RSP_EMPTY:
        drop_pending(ipa);
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "result delivered (no acknowledgements)");
        rc = pl_ipa_save(ipa);
        goto out;
    case PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS:
        drop_pending(ipa);
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "result delivered");
        if ((rc = pl_ipa_save(ipa)) != PL_OK)
            goto out;
        rc = pl_ipa_proc_eim_acknowledgements(ipa, m.provide_result.acknowledgements.p,
                                              m.provide_result.acknowledgements.len);
        goto out;
    default:
        rc = refused(ipa, PL_ERR_MALFORMED);
        goto out;
    }
out:
    pl_wr_free(&rsp);
    return rc;
}
