/* EimAcknowledgements (GSMA SGP.32 v1.2 §2.11.1.4, 'BF53' SEQUENCE OF SequenceNumber): the
 * eIM lists the seqNumbers of the notifications and eUICC Package Results it received; the
 * IPA removes each from the eUICC with ES10b.RemoveNotificationFromList (NotificationSent,
 * SGP.22 v2.5 §5.7.11), which deletes a pending notification or a stored result alike.
 * Only sequence numbers this IPA delivered and still awaits are acted on: an eIM cannot
 * make the IPA delete what it never received (docs/ipa.md §3). reference/EIM.md §1.6. */
#include "ipa_internal.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/sgp32_ipa_data.h"

int pl_ipa_proc_eim_acknowledgements(struct pl_ipa *ipa, const uint8_t *p, size_t len)
{
    struct pl_sgp32_eim_acknowledgements acks;
    bool changed = false;
    int rc, first_err = PL_OK;

    if ((rc = pl_sgp32_eim_acknowledgements_decode(p, len, &acks)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "EimAcknowledgements: %s", pl_strerror(rc));
        return PL_ERR_MALFORMED;
    }
    for (size_t i = 0; i < acks.n; i++) {
        uint32_t seq = acks.seq[i];
        int64_t status = 0;
        if (!pl_ipa_awaiting_ack(ipa, seq)) {
            pl_ipa_log(ipa, PL_IPA_LOG_WARN,
                       "acknowledgement of seq %u ignored: not delivered "
                       "by this IPA",
                       (unsigned)seq);
            continue;
        }
        rc = pl_ipa_es10b_notification_sent(ipa, seq, &status);
        if (rc != PL_OK) {
            /* Keep awaiting it: the next acknowledgement of it tries again. */
            if (first_err == PL_OK)
                first_err = rc;
            continue;
        }
        (void)pl_ipa_take_ack(ipa, seq);
        ipa->st.acks_applied++;
        changed = true;
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "seq %u acknowledged: NotificationSent status %lld",
                   (unsigned)seq, (long long)status);
    }
    if (changed && (rc = pl_ipa_save(ipa)) != PL_OK)
        return rc;
    return first_err;
}
