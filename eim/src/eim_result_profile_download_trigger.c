/* ProfileDownloadTriggerResult 'BF54' intake: the outcome of a direct profile download the
 * eIM triggered.
 * GSMA SGP.32 v1.2 §2.11.2.3 (ProfileDownloadTriggerResult {eimTransactionId [2] OPTIONAL,
 * CHOICE {profileInstallationResult 'BF37', profileDownloadError {profileDownloadErrorReason
 * [0] (ecallActive(104), undefined(127)), errorResponse OPTIONAL}}}); SGP.22 v2.5 §5.7.6
 * (ProfileInstallationResult, euiccSignPIR over 'BF27' as received).
 * Only a PIR verified with the device's eUICC key counts as installed. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/pir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pl_eimi_result_pdt(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                       const uint8_t *raw, size_t len, struct pl_eimi_acks *acks)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_profile_download_trigger_result res;
    struct pl_pir *pir = calloc(1, sizeof(*pir));
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    if (pir == NULL)
        return PL_ERR_NOMEM;
    rc = pl_sgp32_profile_download_trigger_result_decode(raw, len, &res);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                    "malformed ProfileDownloadTriggerResult: %s", pl_strerror(rc));
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_MALFORMED;
        goto out;
    }
    rc = pl_eimi_inflight(eng, dev->eid, &op);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    struct pl_sgp32_buf optx = {op.txid_len ? op.txid : NULL, op.txid_len};
    if (rc != PL_OK || op.state != PL_EIM_OPS_SENT || op.kind != PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER
        || !pl_sgp32_buf_eq(res.eim_txid, optx)) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                    "ProfileDownloadTriggerResult rejected: no matching trigger in flight");
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    if (res.is_error) {
        char outcome[48];
        (void)snprintf(outcome, sizeof(outcome), "profileDownloadError:%lld",
                       (long long)res.error_reason);
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "%s", outcome);
        rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, raw, len,
                                    outcome);
        goto out;
    }
    rc = pl_pir_decode(res.profile_installation_result.p, res.profile_installation_result.len, pir);
    if (rc != PL_OK) {
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_MALFORMED;
        goto out;
    }
    /* Verified, applied, stored and acknowledged as a notification. */
    rc = pl_eimi_notification(eng, dev, res.profile_installation_result.p,
                              res.profile_installation_result.len, acks, NULL);
    if (rc != PL_OK)
        goto out;
    char outcome[64] = "installed";
    if (!pir->success)
        (void)snprintf(outcome, sizeof(outcome), "installFailed:%s",
                       pl_pir_reason_name(pir->reason));
    rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id,
                                pir->success ? PL_EIM_OPS_DONE : PL_EIM_OPS_FAILED, raw, len,
                                outcome);
    if (rc == PL_OK)
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, &op, "verified PIR: %s", outcome);
out:
    pl_eim_op_clear(&op);
    free(pir);
    return rc;
}
