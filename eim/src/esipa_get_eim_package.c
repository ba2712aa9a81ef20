/* ESipa.GetEimPackage, eIM side: the IPA polls for the next eIM Package of its eUICC.
 * GSMA SGP.32 v1.2 §6.3.2.6 (GetEimPackageRequest {eidValue, notifyStateChange,
 * stateChangeCause, rPLMN}; GetEimPackageResponse CHOICE {euiccPackageRequest,
 * ipaEuiccDataRequest, profileDownloadTriggerRequest, eimPackageError
 * {noEimPackageAvailable(1), eidNotFound(2), invalidEid(3), missingEid(4), undefined(127)}}),
 * §3.x retrieval of eIM Packages; reference/EIM.md §1.2 (state-change intake), §1.6 (lost
 * results), §4.3 (counters). Operation state machine: docs/eim-engine.md §2. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/sgp32_esipa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 8 /* operations ended on the way (bad parameters, timeouts) per poll */

static int answer_error(struct pl_wr *rsp, int64_t code)
{
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    m.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_ERROR;
    m.get_eim_package.error_code = code;
    int rc = pl_sgp32_esipa_eim_msg_encode(&m, rsp);
    return rc == PL_OK ? pl_wr_status(rsp) : rc;
}

static int answer_package(struct pl_wr *rsp, enum pl_sgp32_eim_package_kind kind,
                          const uint8_t *pkg, size_t len)
{
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    m.get_eim_package.kind = kind;
    m.get_eim_package.raw.p = pkg;
    m.get_eim_package.raw.len = len;
    int rc = pl_sgp32_esipa_eim_msg_encode(&m, rsp);
    return rc == PL_OK ? pl_wr_status(rsp) : rc;
}

static enum pl_sgp32_eim_package_kind package_kind(enum pl_eim_op_kind k)
{
    if (k == PL_EIM_OP_IPA_EUICC_DATA_REQUEST)
        return PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST;
    if (k == PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER)
        return PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER;
    return PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST;
}

/* notifyStateChange (§6.3.2.6; EIM.md §1.2): the profiles changed without this eIM (fallback,
 * emergency profile, local action, reset, ...). The eIM's view is stale, so a
 * listProfileInfo is queued (once: not if one is already queued or in flight) and served in
 * FIFO order.
 * The cause and rPLMN are recorded with it (its parameters hold only search criteria, so
 * they go to the log and the store's audit of the enqueue). */
static int state_change(struct pl_eim_engine *eng,
                        const struct pl_sgp32_get_eim_package_request *req)
{
    struct pl_eim_op_summary s[64];
    size_t n = 0;
    unsigned mask = (1u << PL_EIM_OPS_QUEUED) | (1u << PL_EIM_OPS_CLAIMED) | (1u << PL_EIM_OPS_SENT)
                    | (1u << PL_EIM_OPS_REQUERY);
    int rc = pl_eim_store_op_list(eng->store, req->eid, mask, s, 64, &n);
    if (rc != PL_OK)
        return rc;
    char actor[PL_EIM_NAME_MAX + 1];
    if (req->has_state_change_cause)
        (void)snprintf(actor, sizeof(actor), "esipa.stateChange.%lld",
                       (long long)req->state_change_cause);
    else
        (void)snprintf(actor, sizeof(actor), "esipa.stateChange");
    if (req->has_rplmn)
        pl_eimi_log(eng, PL_EIM_LOG_INFO, req->eid, NULL,
                    "notifyStateChange cause %lld rPLMN %02X%02X%02X",
                    req->has_state_change_cause ? (long long)req->state_change_cause : -1LL,
                    req->rplmn[0], req->rplmn[1], req->rplmn[2]);
    else
        pl_eimi_log(eng, PL_EIM_LOG_INFO, req->eid, NULL, "notifyStateChange cause %lld",
                    req->has_state_change_cause ? (long long)req->state_change_cause : -1LL);
    for (size_t i = 0; i < n; i++) {
        if (s[i].kind == PL_EIM_OP_LIST_PROFILE_INFO)
            return PL_OK;
    }
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    memcpy(op.eid, req->eid, PL_EIM_EID_LEN);
    op.kind = PL_EIM_OP_LIST_PROFILE_INFO;
    int64_t id = 0;
    return pl_eim_store_op_enqueue(eng->store, actor, &op, &id);
}

static bool timed_out(const struct pl_eim_engine *eng, int64_t since_ms, uint64_t limit_ms)
{
    int64_t now = pl_eimi_now(eng);
    return now >= since_ms && (uint64_t)(now - since_ms) >= limit_ms;
}

/* One step: *done set when an answer was written to rsp. */
static int step(struct pl_eim_engine *eng, const struct pl_eim_device *dev, struct pl_wr *rsp,
                bool *done)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    *done = false;
    rc = pl_eimi_inflight(eng, dev->eid, &op);
    if (rc == PL_ERR_NOT_FOUND) {
        rc = pl_eim_store_op_claim(eng->store, dev->eid, eng->claimer, &op);
        if (rc == PL_ERR_NOT_FOUND) {
            *done = true;
            rc = answer_error(rsp, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
            goto out;
        }
        if (rc != PL_OK)
            goto out;
    } else if (rc != PL_OK) {
        goto out;
    }
    if (op.state == PL_EIM_OPS_CLAIMED) {
        if (op.claimed_by == NULL || strcmp(op.claimed_by, eng->claimer) != 0) {
            /* Another eIM process is building this EID's package. */
            *done = true;
            rc = answer_error(rsp, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
            goto out;
        }
        {
            struct pl_wr pkg;
            pl_wr_init_dyn(&pkg, PL_EIMI_PKG_MAX);
            const char *fail = NULL;
            rc = pl_eimi_package_build(eng, dev, &op, &pkg, &fail);
            if (rc == PL_OK) {
                *done = true;
                rc = answer_package(rsp, package_kind(op.kind), pkg.buf, pkg.len);
            } else if (rc == PL_ERR_INVAL && fail != NULL) {
                /* Parameters the codec refuses, or no counter left: the operation ends. */
                rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED,
                                            NULL, 0, fail);
            } else {
                int rel = pl_eim_store_op_release(eng->store, op.id, eng->claimer);
                if (rel != PL_OK)
                    pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "release failed: %s",
                                pl_strerror(rel));
            }
            pl_wr_free(&pkg);
        }
        goto out;
    }
    if (op.state == PL_EIM_OPS_SENT) {
        if (!timed_out(eng, op.sent_ms, eng->result_timeout_ms)) {
            /* Re-delivery of the exact stored bytes (never re-signed, same counter): the
             * IPA polls again only when it lost the package or its result. */
            pl_eimi_log(eng, PL_EIM_LOG_INFO, dev->eid, &op, "re-delivered");
            *done = true;
            rc = answer_package(rsp, package_kind(op.kind), op.package, op.package_len);
            goto out;
        }
        if (!pl_eim_op_kind_is_signed(op.kind)) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "no result in time");
            rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, NULL, 0,
                                        "noResult");
            goto out;
        }
        /* EIM.md §1.6: the result is lost; ask the eUICC's stored results. */
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "no result in time: requery");
        rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_REQUERY, NULL, 0,
                                    "requery");
        if (rc != PL_OK)
            goto out;
        op.state = PL_EIM_OPS_REQUERY; /* and served now */
    }
    if (op.state == PL_EIM_OPS_REQUERY) {
        if (timed_out(eng, op.sent_ms, eng->requery_timeout_ms)) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, dev->eid, &op, "result lost for good");
            rc = pl_eim_store_op_finish(eng->store, eng->claimer, op.id, PL_EIM_OPS_FAILED, NULL, 0,
                                        "resultLost");
            goto out;
        }
        {
            struct pl_wr q;
            pl_wr_init_dyn(&q, PL_EIMI_PKG_MAX);
            rc = pl_eimi_requery_build(eng, &op, &q);
            if (rc == PL_OK) {
                *done = true;
                rc = answer_package(rsp, PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, q.buf, q.len);
            }
            pl_wr_free(&q);
        }
        goto out;
    }
    rc = PL_ERR_INTERNAL;
out:
    pl_eim_op_clear(&op);
    return rc;
}

int pl_eim_engine_get_eim_package(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                  const struct pl_sgp32_get_eim_package_request *req,
                                  struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_device dev;
    memset(&dev, 0, sizeof(dev));
    if (eng == NULL || req == NULL || rsp == NULL)
        return PL_ERR_INVAL;
    if (peer_eid != NULL && memcmp(peer_eid, req->eid, PL_EIM_EID_LEN) != 0) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, req->eid, NULL,
                    "GetEimPackage for an EID the DTLS identity is not bound to");
        return PL_ERR_DENIED;
    }
    rc = pl_eim_store_device_get(eng->store, req->eid, &dev);
    if (rc == PL_ERR_NOT_FOUND) {
        pl_eimi_log(eng, PL_EIM_LOG_INFO, req->eid, NULL, "GetEimPackage: unknown EID");
        rc = answer_error(rsp, PL_SGP32_EIM_PKG_ERR_EID_NOT_FOUND);
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    dev.last_seen_ms = pl_eimi_now(eng);
    rc = pl_eim_store_device_update(eng->store, NULL, &dev, PL_EIM_DEV_LAST_SEEN);
    if (rc != PL_OK)
        goto out;
    if (req->notify_state_change && (rc = state_change(eng, req)) != PL_OK)
        goto out;
    for (int i = 0; i < MAX_STEPS; i++) {
        bool done = false;
        size_t mark = rsp->len;
        rc = step(eng, &dev, rsp, &done);
        if (rc != PL_OK || done)
            goto out;
        if (rsp->len != mark) {
            rc = PL_ERR_INTERNAL;
            goto out;
        }
    }
    rc = answer_error(rsp, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
out:
    pl_eim_device_clear(&dev);
    return rc;
}
