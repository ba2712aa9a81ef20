/* Pending notifications from the eUICC (via HandleNotification, ePRAndNotifications, or an
 * IpaEuiccData notificationsList): verified, applied to the profile view, stored once per
 * (EID, seqNumber), acknowledged.
 * GSMA SGP.32 v1.2 §6.3.2.4 (HandleNotification: pendingNotification), §2.11.1.4
 * (EimAcknowledgements by seqNumber), §2.11.2.2 (PendingNotificationList); SGP.22 v2.5
 * §5.7.10 (PendingNotification: ProfileInstallationResult 'BF37' or OtherSignedNotification
 * '30', each signed by the eUICC over the bytes as received); reference/EIM.md §1.6.
 * Compact notifications ('A0' / 'A1', minimizeEsipaBytes) carry no signature this eIM can
 * check and are not accepted. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"

#include <stdlib.h>
#include <string.h>

int pl_eimi_notification(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                         const uint8_t *raw, size_t len, struct pl_eimi_acks *acks, bool *stored)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eckey *key = NULL;
    struct pl_pir *pir = NULL;
    struct pl_notif_other *other = NULL;
    struct pl_tlv t;
    uint64_t seq = 0;
    uint8_t event = 0;
    const uint8_t *iccid = NULL;
    if (stored != NULL)
        *stored = false;
    rc = pl_der_parse_one(raw, len, 0, &t);
    if (rc != PL_OK)
        goto out;
    if (t.tag == PL_TAG_PIR) {
        pir = calloc(1, sizeof(*pir));
        if (pir == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        rc = pl_pir_decode(raw, len, pir);
        if (rc != PL_OK)
            goto out;
        seq = pir->meta.seq;
        if (pir->success) {
            event = PL_NOTIF_EV_INSTALL;
            iccid = pir->meta.has_iccid ? pir->meta.iccid : NULL;
        }
    } else if (t.tag == PL_TAG_SEQUENCE) {
        other = calloc(1, sizeof(*other));
        if (other == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        rc = pl_notif_other_decode(raw, len, other);
        if (rc != PL_OK)
            goto out;
        seq = other->meta.seq;
        event = other->meta.ops;
        iccid = other->meta.has_iccid ? other->meta.iccid : NULL;
    } else {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (seq > PL_SGP32_COUNTER_MAX) {
        rc = PL_ERR_DER_VALUE;
        goto out;
    }
    rc = pl_eimi_euicc_key(eng, dev, &key);
    if (rc != PL_OK) {
        if (pl_eimi_is_fatal(rc))
            rc = PL_ERR_CERT;
        goto out;
    }
    rc = pir != NULL ? pl_pir_verify(pir, key) : pl_notif_other_verify(other, key);
    if (rc != PL_OK) {
        rc = PL_ERR_BAD_SIGNATURE;
        goto out;
    }
    /* Verified: apply, then store (a crash in between re-applies the same event). */
    if (event != 0 && iccid != NULL) {
        rc = pl_eimi_state_profile_event(eng, dev, event, iccid);
        if (rc != PL_OK)
            goto out;
    }
    rc = pl_eimi_keep_for_ack(eng, dev->eid, (uint32_t)seq, raw, len, acks, stored);
out:
    if (rc != PL_OK)
        pl_eimi_log(eng, pl_eimi_is_fatal(rc) ? PL_EIM_LOG_ERR : PL_EIM_LOG_WARNING, dev->eid, NULL,
                    "notification (seqNumber %llu) not accepted: %s", (unsigned long long)seq,
                    pl_strerror(rc));
    pl_eckey_free(key);
    free(pir);
    free(other);
    return rc;
}
