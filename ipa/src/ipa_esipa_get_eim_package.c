/* ESipa.GetEimPackage, IPA side (GSMA SGP.32 v1.2 §6.3.2.6; ASN.1 binding §6.3.1):
 *   GetEimPackageRequest 'BF4F' { eidValue '5A', [notifyStateChange '80 00'] }
 * sent over the transport seam, and the one helper every ESipa exchange uses.
 * stateChangeCause and rPLMN are not sent: the IPA only knows that the profile list changed,
 * not why (docs/ipa.md §3). Codec: provline/protocol/sgp32_esipa.h. */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_esipa.h"

#include <string.h>

int pl_ipa_esipa_post(struct pl_ipa *ipa, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    int rc = ipa->cfg.transport.post(ipa->cfg.transport.user, req, len, rsp, ipa->cfg.timeout_ms);
    if (rc != PL_OK)
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ESipa exchange failed: %s", pl_strerror(rc));
    return rc;
}

int pl_ipa_esipa_get_eim_package_request(struct pl_ipa *ipa, bool notify, struct pl_wr *w)
{
    struct pl_sgp32_esipa_ipa_msg m;

    memset(&m, 0, sizeof(m));
    m.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(m.get_eim_package.eid, ipa->st.eid, PL_SGP32_EID_LEN);
    m.get_eim_package.notify_state_change = notify;
    return pl_sgp32_esipa_ipa_msg_encode(&m, w);
}
