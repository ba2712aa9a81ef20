/* Software eUICC: ES10b.RetrieveNotificationsList 'BF2B' (GSMA SGP.22 v2.5 §5.7.10, with
 * the SGP.32 v1.2 §5.9 extension SGP32-RetrieveNotificationsListRequest / Response),
 * ES10b.RemoveNotificationFromList / NotificationSent 'BF30' (§5.7.11) and
 * ES10b.ListNotification 'BF28' (§5.7.9).
 *
 * Two kinds of pending items share one seqNumber sequence: PIRs (the crash-recovery hook
 * of the line: a PIR stays until the station, after the Key Maker's acknowledgement,
 * removes it; IFPP.md §5.6, §6.3) and, in field mode, signed eUICC Package Results (the
 * eIM's lost-result recovery: EIM.md §1.6). Both leave only through NotificationSent with
 * their seqNumber (after the eIM's EimAcknowledgements).
 *
 * searchCriteria (BF2B { A0 { 80 seqNumber | 81 NotificationEvent | 82 NULL } }):
 *   absent                        notificationList 'A0' with every pending notification;
 *   seqNumber                     an eUICC Package Result with that seqNumber ->
 *                                 euiccPackageResultList 'A2' { it }; else notificationList
 *                                 'A0' with the notification of that number (or empty);
 *   profileManagementOperation    notificationList 'A0', the notifications of those events;
 *   euiccPackageResults           euiccPackageResultList 'A2' with every pending result.
 * (decision: SGP.32 lets one seqNumber search reach both kinds, and only one kind can
 * answer it.) Available in factory mode (FPA) and after it (IPA). */
#include "euicc_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"

#include <stdlib.h>
#include <string.h>

#define TAG_CRIT_EPRS 0x82u /* searchCriteria euiccPackageResults [2] NULL */

static int put_eprs(const struct pl_euicc *e, bool by_seq, uint64_t seq, struct pl_wr *rsp)
{
    size_t m = pl_der_begin(rsp, PL_TAG_RETRIEVE_NOTIF);
    size_t ml = pl_der_begin(rsp, 0xA2u);
    for (size_t i = 0; i < e->st.n_epr; i++)
        if (!by_seq || e->st.epr[i].seq == seq)
            pl_wr_bytes(rsp, e->st.epr[i].raw, e->st.epr[i].len);
    pl_der_end(rsp, ml);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}

static bool is_epr_request(const uint8_t *req, size_t len)
{
    struct pl_tlv t, c, s;
    struct pl_der in, cd;
    bool present;
    if (pl_der_open_one(req, len, PL_TAG_RETRIEVE_NOTIF, &t, &in) != PL_OK)
        return false;
    if (pl_der_optional(&in, 0xA0u, &c, &present) != PL_OK
        || !present || pl_der_finish(&in) != PL_OK)
        return false;
    if (pl_der_enter(&in, &c, &cd) != PL_OK || pl_der_next(&cd, &s) != PL_OK
        || pl_der_finish(&cd) != PL_OK)
        return false;
    return s.tag == TAG_CRIT_EPRS && pl_der_get_null(&s) == PL_OK;
}

int pl_euicc_es10b_retrieve_notifications(struct pl_euicc *e, const uint8_t *req, size_t len,
                                          struct pl_wr *rsp)
{
    struct pl_notif_rnl_req q;
    struct pl_notif_rnl_rsp *r;
    int rc;

    if (is_epr_request(req, len))
        return put_eprs(e, false, 0, rsp);
    if (pl_notif_rnl_req_decode(req, len, &q) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (q.crit == PL_NOTIF_CRIT_SEQ) {
        for (size_t i = 0; i < e->st.n_epr; i++)
            if (e->st.epr[i].seq == q.seq)
                return put_eprs(e, true, q.seq, rsp);
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < e->st.n_notif && r->n < PL_NOTIF_LIST_MAX; i++) {
        const struct pl_euicc_seq_blob *n = &e->st.notif[i];
        if (q.crit == PL_NOTIF_CRIT_SEQ && n->seq != q.seq)
            continue;
        /* every pending notification here is a PIR: profileManagementOperation install */
        if (q.crit == PL_NOTIF_CRIT_OPS && !(q.ops & PL_NOTIF_EV_INSTALL))
            continue;
        r->items[r->n].kind = PL_NOTIF_KIND_PIR;
        r->items[r->n].raw = n->raw;
        r->items[r->n].raw_len = n->len;
        r->n++;
    }
    rc = pl_notif_rnl_rsp_encode(r, rsp);
    free(r);
    return rc;
}

int pl_euicc_es10b_list_notification(struct pl_euicc *e, const uint8_t *req, size_t len,
                                     struct pl_wr *rsp)
{
    struct pl_notif_list_req q;
    struct pl_notif_list_rsp *r;
    struct pl_pir pir;
    int rc = PL_OK;

    if (pl_notif_list_req_decode(req, len, &q) != PL_OK)
        return PL_SW_WRONG_DATA;
    r = calloc(1, sizeof(*r));
    if (!r)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < e->st.n_notif && r->n < PL_NOTIF_LIST_MAX; i++) {
        if ((rc = pl_pir_decode(e->st.notif[i].raw, e->st.notif[i].len, &pir)))
            goto out; /* our own stored PIR */
        if (q.has_ops && !(q.ops & pir.meta.ops))
            continue;
        r->items[r->n++] = pir.meta;
    }
    rc = pl_notif_list_rsp_encode(r, rsp);
out:
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
    /* seqNumbers are shared by notifications and eUICC Package Results: one of them. */
    if (!pl_euicc_seq_remove(e->st.notif, &e->st.n_notif, seq)
        && !pl_euicc_seq_remove(e->st.epr, &e->st.n_epr, seq))
        return pl_notif_sent_rsp_encode(PL_NOTIF_SENT_NOTHING_TO_DELETE, rsp);
    if ((rc = pl_euicc_persist(e)))
        return rc;
    return pl_notif_sent_rsp_encode(PL_NOTIF_SENT_OK, rsp);
}
