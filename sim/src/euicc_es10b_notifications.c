/* Software eUICC: ES10b.RetrieveNotificationsList 'BF2B' (GSMA SGP.22 v2.5 §5.7.10) and
 * ES10b.RemoveNotificationFromList / NotificationSent 'BF30' (§5.7.11). The pending PIRs
 * are the crash-recovery hook of the line (IFPP.md §5.6, §6.3): a PIR stays on the eUICC
 * until the station, after the Key Maker's acknowledgement, removes it. Available in
 * factory mode (FPA) and after it (LPA/IPA). */
#include "euicc_internal.h"
#include "provline/protocol/notif.h"

#include <stdlib.h>
#include <string.h>

int pl_euicc_es10b_retrieve_notifications(struct pl_euicc *e, const uint8_t *req, size_t len,
                                          struct pl_wr *rsp)
{
    struct pl_notif_rnl_req q;
    struct pl_notif_rnl_rsp *r;
    int rc;

    if (pl_notif_rnl_req_decode(req, len, &q) != PL_OK)
        return PL_SW_WRONG_DATA;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < e->st.n_notif && r->n < PL_NOTIF_LIST_MAX; i++) {
        const struct pl_euicc_notif *n = &e->st.notif[i];
        if (q.crit == PL_NOTIF_CRIT_SEQ && n->seq != q.seq)
            continue;
        /* every pending notification here is a PIR: profileManagementOperation install */
        if (q.crit == PL_NOTIF_CRIT_OPS && !(q.ops & PL_NOTIF_EV_INSTALL))
            continue;
        r->items[r->n].kind = PL_NOTIF_KIND_PIR;
        r->items[r->n].raw = n->pir;
        r->items[r->n].raw_len = n->len;
        r->n++;
    }
    rc = pl_notif_rnl_rsp_encode(r, rsp);
    free(r);
    return rc;
}

int pl_euicc_es10b_notification_sent(struct pl_euicc *e, const uint8_t *req, size_t len,
                                     struct pl_wr *rsp)
{
    uint64_t seq;
    int rc;

    if (pl_notif_sent_req_decode(req, len, &seq) != PL_OK)
        return PL_SW_WRONG_DATA;
    for (size_t i = 0; i < e->st.n_notif; i++) {
        if (e->st.notif[i].seq != seq)
            continue;
        free(e->st.notif[i].pir);
        memmove(&e->st.notif[i], &e->st.notif[i + 1],
                (e->st.n_notif - i - 1) * sizeof(e->st.notif[0]));
        e->st.n_notif--;
        memset(&e->st.notif[e->st.n_notif], 0, sizeof(e->st.notif[0]));
        if ((rc = pl_euicc_persist(e)))
            return rc;
        return pl_notif_sent_rsp_encode(PL_NOTIF_SENT_OK, rsp);
    }
    return pl_notif_sent_rsp_encode(PL_NOTIF_SENT_NOTHING_TO_DELETE, rsp);
}
