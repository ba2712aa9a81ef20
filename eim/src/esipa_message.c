/* ESipa request dispatch, independent of the transport: one DER EsipaMessageFromIpaToEim in,
 * one DER EsipaMessageFromEimToIpa (or nothing) and a CoAP response code out.
 * GSMA SGP.32 v1.2 §6.3.1 (EsipaMessageFromIpaToEim / EsipaMessageFromEimToIpa), §6.1 (ASN.1
 * binding), §6.2 (CoAP binding); response code mapping: esipa_server.h, docs/eim-engine.md §7.
 *
 * The indirect-download relay functions (§6.3.2.1 InitiateAuthentication, §6.3.2.2
 * AuthenticateClient, §6.3.2.3 GetBoundProfilePackage, §6.3.2.5 CancelSession) need an
 * ES9+' client to an SM-DP+, which this eIM does not have: they are answered with their
 * SGP.32 error arm undefinedError(127), so a conforming IPA falls back cleanly. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/eim/esipa_server.h"
#include "provline/protocol/sgp32_esipa.h"

#include <stdlib.h>
#include <string.h>

#define RELAY_UNDEFINED_ERROR 127

static int relay_unsupported(enum pl_sgp32_esipa_kind kind, struct pl_wr *w)
{
    struct pl_sgp32_esipa_eim_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = kind;
    switch (kind) {
    case PL_SGP32_ESIPA_INITIATE_AUTHENTICATION:
        m.initiate_auth.is_error = true;
        m.initiate_auth.error_code = RELAY_UNDEFINED_ERROR;
        break;
    case PL_SGP32_ESIPA_AUTHENTICATE_CLIENT:
        m.authenticate_client.kind = PL_SGP32_AUTH_CLIENT_ERROR;
        m.authenticate_client.error_code = RELAY_UNDEFINED_ERROR;
        break;
    case PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE:
        m.get_bpp.is_error = true;
        m.get_bpp.error_code = RELAY_UNDEFINED_ERROR;
        break;
    case PL_SGP32_ESIPA_CANCEL_SESSION:
        m.cancel_session.is_error = true;
        m.cancel_session.error_code = RELAY_UNDEFINED_ERROR;
        break;
    default:
        return PL_ERR_INVAL;
    }
    int rc = pl_sgp32_esipa_eim_msg_encode(&m, w);
    return rc == PL_OK ? pl_wr_status(w) : rc;
}

int pl_eim_esipa_handle(struct pl_eim_engine *eng, const uint8_t *peer_eid, const uint8_t *body,
                        size_t len, size_t max_body, struct pl_wr *rsp,
                        enum pl_eim_esipa_code *code)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_sgp32_esipa_ipa_msg *msg = NULL;
    struct pl_wr out;
    if (eng == NULL || rsp == NULL || code == NULL || (body == NULL && len > 0))
        return PL_ERR_INVAL;
    *code = PL_EIM_ESIPA_SERVER_ERROR;
    pl_wr_init_dyn(&out, PL_EIMI_PKG_MAX + PL_EIMI_RSP_MAX);
    size_t max = max_body ? max_body : PL_EIM_ESIPA_DEFAULT_MAX_BODY;
    if (len > max) {
        *code = PL_EIM_ESIPA_TOO_LARGE;
        rc = PL_OK;
        goto out;
    }
    msg = calloc(1, sizeof(*msg));
    if (msg == NULL) {
        rc = PL_OK; /* 5.00 */
        goto out;
    }
    rc = pl_sgp32_esipa_ipa_msg_decode(body, len, msg);
    if (rc != PL_OK) {
        pl_eimi_log(eng, PL_EIM_LOG_INFO, peer_eid, NULL, "malformed ESipa request: %s",
                    pl_strerror(rc));
        *code = PL_EIM_ESIPA_BAD_REQUEST;
        rc = PL_OK;
        goto out;
    }
    switch (msg->kind) {
    case PL_SGP32_ESIPA_GET_EIM_PACKAGE:
        rc = pl_eim_engine_get_eim_package(eng, peer_eid, &msg->get_eim_package, &out);
        break;
    case PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT:
        rc = pl_eim_engine_provide_result(eng, peer_eid, &msg->provide_result, &out);
        break;
    case PL_SGP32_ESIPA_HANDLE_NOTIFICATION:
        rc = pl_eim_engine_handle_notification(eng, peer_eid, &msg->handle_notification, NULL);
        break;
    case PL_SGP32_ESIPA_INITIATE_AUTHENTICATION:
    case PL_SGP32_ESIPA_AUTHENTICATE_CLIENT:
    case PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE:
    case PL_SGP32_ESIPA_CANCEL_SESSION:
        pl_eimi_log(eng, PL_EIM_LOG_INFO, peer_eid, NULL,
                    "indirect download relay (arm %d) not offered: undefinedError", (int)msg->kind);
        rc = relay_unsupported(msg->kind, &out);
        break;
    case PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE:
    default:
        /* TransferEimPackageResponse answers an injection, where the eIM is the client. */
        *code = PL_EIM_ESIPA_BAD_REQUEST;
        rc = PL_OK;
        goto out;
    }
    if (rc == PL_OK) {
        *code = PL_EIM_ESIPA_CHANGED;
        rc = pl_wr_bytes(rsp, out.buf, out.len);
        if (rc == PL_OK)
            rc = pl_wr_status(rsp);
        if (rc != PL_OK)
            *code = PL_EIM_ESIPA_SERVER_ERROR;
        rc = PL_OK;
        goto out;
    }
    if (rc == PL_ERR_DENIED) {
        *code = PL_EIM_ESIPA_FORBIDDEN;
    } else {
        pl_eimi_log(eng, PL_EIM_LOG_ERR, peer_eid, NULL, "ESipa request failed: %s (%s)",
                    pl_strerror(rc), pl_eim_store_last_error(eng->store));
        *code = PL_EIM_ESIPA_SERVER_ERROR;
    }
    rc = PL_OK;
out:
    pl_wr_free(&out);
    free(msg);
    return rc;
}
