/* Profile Download Trigger, IPA side (GSMA SGP.32 v1.2 §2.11.1.3
 * ProfileDownloadTriggerRequest 'BF54', §2.11.2.3 ProfileDownloadTriggerResult 'BF54',
 * §3.2.x indirect/direct profile download).
 *
 * The download itself (ES9+ or the ESipa relay InitiateAuthentication .. GetBoundProfile-
 * Package, then ES10b.LoadBoundProfilePackage) is out of scope for provline's IPA. The
 * trigger is recorded in the state file (pl_ipa_last_trigger) so that an integrator or a
 * later version can act on it, and the eIM gets an honest answer at once:
 *   ProfileDownloadTriggerResult { eimTransactionId echoed,
 *                                  profileDownloadError { undefinedError(127) } }
 * (the error arm offers only ecallActive(104) and undefinedError(127)). docs/ipa.md §5. */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <string.h>

int pl_ipa_proc_profile_download_trigger(struct pl_ipa *ipa, const uint8_t *p, size_t len)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_profile_download_trigger_request q;
    struct pl_sgp32_profile_download_trigger_result r;
    struct pl_sgp32_eim_package_result res;
    uint8_t ob[64];
    struct pl_wr out;

    ipa->st.packages++;
    memset(&res, 0, sizeof(res));
    if ((rc = pl_sgp32_profile_download_trigger_request_decode(p, len, &q)) != PL_OK
        || len > PL_IPA_TRIGGER_MAX) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ProfileDownloadTriggerRequest refused: %s",
                   rc != PL_OK ? pl_strerror(rc) : "too long");
        res.kind = PL_SGP32_EIM_RESULT_ERROR;
        res.error_code = PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT;
        return pl_ipa_set_pending_result(ipa, &res);
    }
    memcpy(ipa->st.trigger, p, len);
    ipa->st.trigger_len = len;
    pl_ipa_log(ipa, PL_IPA_LOG_INFO,
               "profile download trigger (%s) recorded; download not supported: undefinedError",
               q.kind == PL_SGP32_PDD_ACTIVATION_CODE        ? "activationCode"
               : q.kind == PL_SGP32_PDD_CONTACT_DEFAULT_SMDP ? "contactDefaultSmdp"
               : q.kind == PL_SGP32_PDD_CONTACT_SMDS         ? "contactSmds"
                                                             : "no data");
    memset(&r, 0, sizeof(r));
    r.eim_txid = q.eim_txid;
    r.is_error = true;
    r.error_reason = PL_SGP32_PDT_UNDEFINED;
    pl_wr_init_fixed(&out, ob, sizeof(ob));
    if ((rc = pl_sgp32_profile_download_trigger_result_encode(&r, &out)) != PL_OK)
        return rc;
    res.kind = PL_SGP32_EIM_RESULT_PDT_RESULT;
    res.pdt_result.p = out.buf;
    res.pdt_result.len = out.len;
    return pl_ipa_set_pending_result(ipa, &res);
}
