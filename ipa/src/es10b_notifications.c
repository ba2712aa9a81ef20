/* FPA requests FetchResults and NotificationSent: SGP.22 v2.5 §5.7.10
 * ES10b.RetrieveNotificationsList 'BF2B' and §5.7.11 ES10b.RemoveNotificationFromList
 * (NotificationSent 'BF30'), notif.h. The PIRs stay pending on the eUICC until the station
 * has reported them (reference/IFPP.md §5.6, §6.3: "Send NotificationSent only after
 * REPORT_ACK"); FetchResults is also the crash-recovery path (§7 cases 7-8).
 * docs/fixture-protocol.md §2.4-§2.5. */
#include <stdio.h>
#include <stdlib.h>

#include "fpa_internal.h"
#include "provline/protocol/notif.h"

int pl_fpa_do_fetch_results(struct pl_fpa_job *j)
{
    const provline_fixture_FetchResultsRequest *q = &j->req->body.fetch_results;
    struct pl_notif_rnl_req rq = {.crit = PL_NOTIF_CRIT_NONE};
    struct pl_notif_rnl_rsp *d = NULL;
    uint8_t rb[32];
    struct pl_wr req, out;
    int rc;

    pl_wr_init_fixed(&req, rb, sizeof(rb));
    pl_wr_init_dyn(&out, PL_FX_RESULTS_MAX);
    if (q->has_seq_number) {
        rq.crit = PL_NOTIF_CRIT_SEQ;
        rq.seq = q->seq_number;
    }
    if ((rc = pl_notif_rnl_req_encode(&rq, &req)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                         provline_fixture_Stage_STAGE_REQUEST, "seq_number: %s",
                         pl_strerror(rc));
        goto out;
    }
    if ((rc = pl_fpa_session(j)) != PL_OK
        || (rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_COMMAND, req.buf, req.len, &out))
               != PL_OK)
        goto out;
    d = malloc(sizeof(*d));
    if (d == NULL) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                         provline_fixture_Stage_STAGE_COMMAND, "out of memory");
        goto out;
    }
    if ((rc = pl_notif_rnl_rsp_decode(out.buf, out.len, d)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND,
                         "RetrieveNotificationsList response: %s", pl_strerror(rc));
        goto out;
    }
    j->rsp.which_body = PL_FX_FETCH_RESULTS_RSP;
    if ((rc = pl_fx_set_blob(&j->rsp.body.fetch_results_rsp.list, out.buf, out.len)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                         provline_fixture_Stage_STAGE_NONE, "response: %s", pl_strerror(rc));
        goto out;
    }
    if (d->is_error)
        snprintf(j->note, sizeof(j->note), "notifications=error(%lld)", (long long)d->error);
    else
        snprintf(j->note, sizeof(j->note), "notifications=%zu", d->n);
out:
    free(d);
    pl_wr_free(&out);
    return rc;
}

int pl_fpa_do_notification_sent(struct pl_fpa_job *j)
{
    uint64_t seq = j->req->body.notification_sent.seq_number;
    uint8_t rb[32], ob[32];
    struct pl_wr req, out;
    int64_t status = 0;
    int rc;

    pl_wr_init_fixed(&req, rb, sizeof(rb));
    pl_wr_init_fixed(&out, ob, sizeof(ob));
    if ((rc = pl_notif_sent_req_encode(seq, &req)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                           provline_fixture_Stage_STAGE_REQUEST, "seq_number: %s",
                           pl_strerror(rc));
    if ((rc = pl_fpa_session(j)) != PL_OK
        || (rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_COMMAND, req.buf, req.len, &out))
               != PL_OK)
        return rc;
    if ((rc = pl_notif_sent_rsp_decode(out.buf, out.len, &status)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                           provline_fixture_Stage_STAGE_COMMAND, "NotificationSent response: %s",
                           pl_strerror(rc));
    j->rsp.which_body = PL_FX_NOTIFICATION_SENT_RSP;
    j->rsp.body.notification_sent_rsp.status = status;
    snprintf(j->note, sizeof(j->note), "seq=%llu status=%lld", (unsigned long long)seq,
             (long long)status);
    return PL_OK;
}
