/* ESipa.HandleNotification, eIM side: the IPA delivers a pending notification, or (v1.2) an
 * eIM Package result, outside a GetEimPackage / ProvideEimPackageResult exchange.
 * GSMA SGP.32 v1.2 §6.3.2.4 (HandleNotificationEsipa CHOICE {pendingNotification [0],
 * provideEimPackageResult [80]}; the answer has no body); reference/EIM.md §1.3, §1.6.
 * The answer being empty, acknowledgements wait for the next ProvideEimPackageResult answer
 * (the items are stored unacknowledged). */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "esipa_internal.h"
#include "provline/protocol/notif.h"

#include <stdlib.h>
#include <string.h>

/* Without an authenticated peer, the EID of an OtherSignedNotification is the one of the
 * CERT.EUICC it carries (checked again by the signature: it must verify with the registered
 * key of that EID). A PIR carries no EID. */
static int eid_of_notification(const uint8_t *raw, size_t len, uint8_t eid[PL_EIM_EID_LEN])
{
    struct pl_notif_other *n = calloc(1, sizeof(*n));
    struct pl_cert *c = NULL;
    if (n == NULL)
        return PL_ERR_NOMEM;
    int rc = pl_notif_other_decode(raw, len, n);
    if (rc == PL_OK)
        rc = pl_cert_parse(n->euicc_cert, n->euicc_cert_len, &c);
    if (rc == PL_OK)
        rc = pl_cert_eid(c, eid);
    pl_cert_free(c);
    free(n);
    return rc;
}

int pl_eim_engine_handle_notification(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                      const struct pl_sgp32_handle_notification *req, bool *stored)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_device dev;
    struct pl_eimi_acks acks;
    uint8_t eid[PL_EIM_EID_LEN];
    memset(&dev, 0, sizeof(dev));
    memset(&acks, 0, sizeof(acks));
    if (eng == NULL || req == NULL)
        return PL_ERR_INVAL;
    if (stored != NULL)
        *stored = false;
    if (req->is_provide_result) {
        int64_t code = 0;
        rc = pl_eimi_provide(eng, peer_eid, &req->provide_result, &acks, &code, eid);
        if (rc == PL_OK && stored != NULL)
            *stored = code == 0 && acks.n > 0;
        return rc;
    }
    const struct pl_sgp32_buf *pn = &req->pending_notification;
    if (peer_eid != NULL) {
        memcpy(eid, peer_eid, PL_EIM_EID_LEN);
    } else if (pn->p != NULL && pn->len > 0 && pn->p[0] == PL_TAG_SEQUENCE) {
        rc = eid_of_notification(pn->p, pn->len, eid);
        if (rc != PL_OK) {
            pl_eimi_log(eng, PL_EIM_LOG_WARNING, NULL, NULL,
                        "notification without a usable CERT.EUICC: %s", pl_strerror(rc));
            return pl_eimi_is_fatal(rc) ? rc : PL_OK;
        }
    } else {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, NULL, NULL,
                    "notification from an unauthenticated peer without an EID: not stored");
        return PL_OK;
    }
    rc = pl_eim_store_device_get(eng->store, eid, &dev);
    if (rc == PL_ERR_NOT_FOUND) {
        pl_eimi_log(eng, PL_EIM_LOG_WARNING, eid, NULL, "notification for an unknown EID");
        rc = PL_OK;
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    rc = pl_eimi_notification(eng, &dev, pn->p, pn->len, NULL, stored);
    if (!pl_eimi_is_fatal(rc))
        rc = PL_OK;
out:
    pl_eim_device_clear(&dev);
    return rc;
}
