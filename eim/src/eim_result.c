/* EuiccPackageResult 'BF51' intake: match against the operation in flight, verify the eUICC
 * signature, apply, acknowledge.
 * GSMA SGP.32 v1.2 §2.11.2.1 (EuiccPackageResult: euiccPackageResultSigned {eimId,
 * counterValue, eimTransactionId, seqNumber, euiccResult}, euiccPackageErrorSigned,
 * euiccPackageErrorUnsigned; euiccSignEPR/EPE over the data SEQUENCE ‖ associationToken TLV),
 * §2.11.1.4 (acknowledgements by seqNumber); reference/EIM.md §4.2 (verify with PK.EUICC,
 * accept r‖s and DER), §4.3 (the result's counter, eimId and transaction id must be those of
 * a package this eIM sent). Rules: docs/eim-engine.md §5.
 *
 * Nothing is written before every check passed: a rejected result changes nothing. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/sgp32_euicc_package.h"

#include <stdlib.h>
#include <string.h>

const char *pl_eimi_result_code_name(enum pl_sgp32_result_kind kind, int64_t code)
{
    if (code == 0)
        return "ok";
    if (code == 127)
        return "undefinedError";
    switch (kind) {
    case PL_SGP32_RESULT_ENABLE:
    case PL_SGP32_RESULT_DISABLE:
    case PL_SGP32_RESULT_DELETE:
        switch (code) {
        case 1:
            return "iccidOrAidNotFound";
        case 2:
            return kind == PL_SGP32_RESULT_DISABLE ? "profileNotInEnabledState"
                                                   : "profileNotInDisabledState";
        case 3:
            return "disallowedByPolicy";
        case 5:
            return "catBusy";
        case 20:
            return "rollbackNotAvailable";
        case 21:
            return "returnFallbackProfile";
        default:
            return "unknownResult";
        }
    case PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE:
        return code == 1 ? "insufficientMemory" : code == 7 ? "commandError" : "unknownResult";
    case PL_SGP32_RESULT_ADD_EIM:
        switch (code) {
        case 1:
            return "insufficientMemory";
        case 2:
            return "associatedEimAlreadyExists";
        case 3:
            return "ciPKUnknown";
        case 5:
            return "invalidAssociationToken";
        case 6:
            return "counterValueOutOfRange";
        case 7:
            return "commandError";
        default:
            return "unknownResult";
        }
    case PL_SGP32_RESULT_DELETE_EIM:
        return code == 1   ? "eimNotFound"
               : code == 2 ? "lastEimDeleted"
               : code == 7 ? "commandError"
                           : "unknownResult";
    case PL_SGP32_RESULT_UPDATE_EIM:
        return code == 1   ? "eimNotFound"
               : code == 3 ? "ciPKUnknown"
               : code == 6 ? "counterValueOutOfRange"
               : code == 7 ? "commandError"
                           : "unknownResult";
    case PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE:
        return code == 1   ? "iccidOrAidNotFound"
               : code == 2 ? "fallbackNotAllowed"
               : code == 3 ? "fallbackProfileEnabled"
                           : "unknownResult";
    case PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE:
        return code == 2   ? "noFallbackAttribute"
               : code == 3 ? "fallbackProfileEnabled"
               : code == 7 ? "commandError"
                           : "unknownResult";
    case PL_SGP32_RESULT_LIST_PROFILE_INFO:
        return code == 1    ? "incorrectInputValues"
               : code == 11 ? "profileChangeOngoing"
                            : "unknownResult";
    case PL_SGP32_RESULT_PROCESSING_TERMINATED:
        return code == 1   ? "resultSizeOverflow"
               : code == 2 ? "unknownOrDamagedCommand"
               : code == 3 ? "interruption"
                           : "processingTerminated";
    case PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS:
    case PL_SGP32_RESULT_LIST_EIM:
    case PL_SGP32_RESULT_ROLLBACK:
    case PL_SGP32_RESULT_GET_RAT:
    default:
        return "unknownResult";
    }
}

static const char *epe_name(int64_t code)
{
    switch (code) {
    case PL_SGP32_EPE_INVALID_EID:
        return "invalidEid";
    case PL_SGP32_EPE_REPLAY:
        return "replayError";
    case PL_SGP32_EPE_COUNTER_OUT_OF_RANGE:
        return "counterValueOutOfRange";
    case PL_SGP32_EPE_SIZE_OVERFLOW:
        return "sizeOverflow";
    case PL_SGP32_EPE_ECALL_ACTIVE:
        return "ecallActive";
    case PL_SGP32_EPE_UNDEFINED:
        return "undefinedError";
    default:
        return "unknownError";
    }
}

/* The result arm that answers each PSMO / eCO (the enumerators are the context tags). */
static bool result_answers(const struct pl_sgp32_euicc_package *pkg, size_t i,
                           enum pl_sgp32_result_kind rk)
{
    if (i >= pkg->n_ops)
        return false;
    if (rk == PL_SGP32_RESULT_PROCESSING_TERMINATED)
        return true;
    if (pkg->kind == PL_SGP32_PACKAGE_ECO)
        return (int)rk == (int)pkg->eco[i].kind;
    switch (pkg->psmo[i].kind) {
    case PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE:
        return rk == PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE;
    case PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE:
        return rk == PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE;
    case PL_SGP32_PSMO_ENABLE:
    case PL_SGP32_PSMO_DISABLE:
    case PL_SGP32_PSMO_DELETE:
    case PL_SGP32_PSMO_GET_RAT:
    case PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE:
    case PL_SGP32_PSMO_LIST_PROFILE_INFO:
    case PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS:
    default:
        return (int)rk == (int)pkg->psmo[i].kind;
    }
}

/* Whether a result entry reports success. */
static bool result_ok(const struct pl_sgp32_euicc_result *r)
{
    switch (r->kind) {
    case PL_SGP32_RESULT_LIST_PROFILE_INFO:
    case PL_SGP32_RESULT_LIST_EIM:
        return !r->is_error;
    case PL_SGP32_RESULT_GET_RAT:
        return true;
    case PL_SGP32_RESULT_ADD_EIM:
        return r->has_association_token || r->code == 0;
    case PL_SGP32_RESULT_PROCESSING_TERMINATED:
        return false;
    default:
        return r->code == 0;
    }
}

/* An exact copy of a result this eIM already accepted (the IPA lost our acknowledgement):
 * nothing is applied again, its seqNumber is acknowledged again. PL_ERR_NOT_FOUND if it is
 * not such a copy. */
static int replayed(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                    const struct pl_sgp32_euicc_package_result *res, const uint8_t *raw, size_t len,
                    struct pl_eimi_acks *acks)
{
    int rc = PL_ERR_NOT_FOUND;
    struct pl_eim_op_summary *s = calloc(PL_EIMI_SCAN_OPS, sizeof(*s));
    size_t n = 0;
    if (s == NULL)
        return PL_ERR_NOMEM;
    if (res->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        goto out;
    unsigned mask = (1u << PL_EIM_OPS_DONE) | (1u << PL_EIM_OPS_FAILED);
    rc = pl_eim_store_op_list(eng->store, dev->eid, mask, s, PL_EIMI_SCAN_OPS, &n);
    if (rc != PL_OK)
        goto out;
    rc = PL_ERR_NOT_FOUND;
    for (size_t i = n; i-- > 0;) {
        if (!pl_eim_op_kind_is_signed(s[i].kind))
            continue;
        struct pl_eim_op op;
        memset(&op, 0, sizeof(op));
        int grc = pl_eim_store_op_get(eng->store, s[i].id, &op);
        if (grc != PL_OK) {
            rc = grc;
            goto out;
        }
        bool same = op.has_counter && op.counter == res->counter && op.result != NULL
                    && op.result_len == len && memcmp(op.result, raw, len) == 0;
        bool older = op.has_counter && op.counter < res->counter;
        pl_eim_op_clear(&op);
        if (same) {
            if (res->kind == PL_SGP32_EPR_RESULT_SIGNED)
                pl_eimi_acks_add(acks, res->seq_number);
            pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, NULL,
                        "identical copy of the accepted result for counterValue %u: "
                        "acknowledged again, nothing applied",
                        (unsigned)res->counter);
            rc = PL_OK;
            goto out;
        }
        if (older)
            break;
    }
out:
    free(s);
    return rc;
}

/* Applies a verified euiccPackageResultSigned to the device view; *outcome and *ok describe
 * it for the operation. */
static int apply_results(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                         const struct pl_eim_op *op, const struct pl_sgp32_euicc_package *pkg,
                         const struct pl_sgp32_euicc_package_result *res, const char **outcome,
                         bool *ok)
{
    *outcome = "ok";
    *ok = true;
    if (res->n_results == 0) {
        *outcome = "emptyResult";
        *ok = false;
        return PL_OK;
    }
    for (size_t i = 0; i < res->n_results; i++) {
        const struct pl_sgp32_euicc_result *r = &res->results[i];
        if (!result_answers(pkg, i, r->kind)) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, op,
                        "result %zu (arm %d) does not answer the package: nothing applied", i,
                        (int)r->kind);
            *outcome = "unexpectedResult";
            *ok = false;
            return PL_OK;
        }
    }
    for (size_t i = 0; i < res->n_results; i++) {
        const struct pl_sgp32_euicc_result *r = &res->results[i];
        if (!result_ok(r)) {
            if (*ok)
                *outcome = pl_eimi_result_code_name(r->kind, r->code);
            *ok = false;
            continue;
        }
        int rc = pl_eimi_state_apply(eng, dev, pkg, i, r);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

int pl_eimi_result_epr(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                       const uint8_t *raw, size_t len, enum pl_eimi_epr_origin origin,
                       struct pl_eimi_acks *acks)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_euicc_package_result *res = calloc(1, sizeof(*res));
    struct pl_sgp32_euicc_package_request *sent = calloc(1, sizeof(*sent));
    struct pl_eckey *key = NULL;
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    if (res == NULL || sent == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    rc = pl_sgp32_euicc_package_result_decode(raw, len, res);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL, "malformed EuiccPackageResult: %s",
                    pl_strerror(rc));
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_MALFORMED;
        goto out;
    }
    /* The operation in flight: a signed package in sent or requery. */
    rc = pl_eimi_inflight(eng, dev->eid, &op);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        goto out;
    bool match = rc == PL_OK && pl_eim_op_kind_is_signed(op.kind)
                 && (op.state == PL_EIM_OPS_SENT || op.state == PL_EIM_OPS_REQUERY)
                 && op.package != NULL;
    const char *why = "no package of this eIM is awaiting a result";
    if (match) {
        /* Our own stored bytes: they decode (we built them). */
        rc = pl_sgp32_euicc_package_request_decode(op.package, op.package_len, sent);
        if (rc != PL_OK) {
            rc = PL_ERR_INTERNAL;
            goto out;
        }
        struct pl_sgp32_buf txid = {op.txid_len ? op.txid : NULL, op.txid_len};
        if (!pl_sgp32_buf_eq(res->eim_id, sent->pkg.eim_id)) {
            match = false;
            why = "eimId is not the one of the package in flight";
        } else if (!pl_sgp32_buf_eq(res->eim_txid, txid)) {
            match = false;
            why = "unknown eimTransactionId";
        } else if (res->kind != PL_SGP32_EPR_ERROR_UNSIGNED && res->counter != sent->pkg.counter) {
            match = false;
            why = "counterValue is not the one of the package in flight";
        }
    }
    if (!match) {
        rc = replayed(eng, dev, res, raw, len, acks);
        if (rc == PL_ERR_NOT_FOUND) {
            if (origin == PL_EIMI_EPR_DIRECT)
                pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, NULL,
                            "EuiccPackageResult rejected: %s", why);
            rc = PL_ERR_NOT_FOUND;
        }
        goto out;
    }
    if (res->kind == PL_SGP32_EPR_ERROR_UNSIGNED) {
        /* Unsigned: it cannot decide anything. If the package is still awaiting a result,
         * the eUICC's stored results are asked instead (the package may not have run). */
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op,
                    "euiccPackageErrorUnsigned (cannot be verified): requery");
        if (op.state == PL_EIM_OPS_SENT)
            rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_REQUERY, NULL,
                                        0, "euiccPackageErrorUnsigned");
        else
            rc = PL_OK;
        goto out;
    }
    /* §2.11.2.1: euiccSignEPR / euiccSignEPE over the data as received ‖ token TLV, with
     * PK.EUICC.SIG of the device's CERT.EUICC (chain CI -> EUM -> eUICC verified). */
    rc = pl_eimi_euicc_key(eng, dev, &key);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op,
                    "EuiccPackageResult rejected: no trusted eUICC certificate (%s)",
                    pl_strerror(rc));
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_CERT;
        goto out;
    }
    rc = pl_sgp32_euicc_package_result_verify(res, pl_eimi_token(dev), key);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op,
                    "EuiccPackageResult rejected: eUICC signature does not verify");
        rc = PL_ERR_BAD_SIGNATURE;
        goto out;
    }
    if (res->kind == PL_SGP32_EPR_ERROR_SIGNED) {
        const char *name = epe_name(res->error_code);
        if (res->error_code == PL_SGP32_EPE_REPLAY) {
            /* The eUICC already holds this counter: the package ran before (its result was
             * lost) or the eUICC is ahead. Its stored results tell which. */
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "replayError: requery");
            rc = op.state == PL_EIM_OPS_SENT ? pl_eim_store_op_finish(
                     eng->store, eng->claimer, op.id, PL_EIM_OPS_REQUERY, NULL, 0, name)
                                             : PL_OK;
            goto out;
        }
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "eUICC refused the package: %s", name);
        rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, raw, len,
                                    name);
        goto out;
    }
    const char *outcome = "ok";
    bool ok = true;
    rc = apply_results(eng, dev, &op, &sent->pkg, res, &outcome, &ok);
    if (rc != PL_OK)
        goto out;
    rc = pl_eimi_keep_for_ack(eng, dev->eid, res->seq_number, raw, len, acks, NULL);
    if (rc == PL_ERR_EXISTS) {
        /* The eUICC's seqNumber already names other bytes: applied, not acknowledged. */
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op,
                    "seqNumber %u already stored with other content", (unsigned)res->seq_number);
        rc = PL_OK;
    }
    if (rc != PL_OK)
        goto out;
    rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id,
                                ok ? PL_EIM_OPS_DONE : PL_EIM_OPS_FAILED, raw, len, outcome);
    if (rc == PL_OK) {
        op.state = ok ? PL_EIM_OPS_DONE : PL_EIM_OPS_FAILED;
        pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, &op, "verified result: %s", outcome);
    }
out:
    pl_eckey_free(key);
    pl_eim_op_clear(&op);
    free(res);
    free(sent);
    return rc;
}

int pl_eimi_result_ipa_error(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                             struct pl_sgp32_buf txid, int64_t code)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    rc = pl_eimi_inflight(eng, dev->eid, &op);
    if (rc != PL_OK)
        goto out;
    struct pl_sgp32_buf optx = {op.txid_len ? op.txid : NULL, op.txid_len};
    if (op.state == PL_EIM_OPS_CLAIMED || (txid.p != NULL && !pl_sgp32_buf_eq(txid, optx))) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    const char *name = code == PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT    ? "invalidPackageFormat"
                       : code == PL_SGP32_EIM_RESULT_ERR_UNKNOWN_PACKAGE ? "unknownPackage"
                                                                         : "ipaUndefinedError";
    pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "IPA could not process the package: %s",
                name);
    if (pl_eim_op_kind_is_signed(op.kind)) {
        /* Unsigned word of the IPA: whether the eUICC ran the package is asked of the eUICC. */
        rc = op.state == PL_EIM_OPS_SENT ? pl_eim_store_op_finish(eng->store, eng->claimer, op.id,
                                                                  PL_EIM_OPS_REQUERY, NULL, 0, name)
                                         : PL_OK;
        goto out;
    }
    rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, NULL, 0, name);
out:
    pl_eim_op_clear(&op);
    return rc;
}
