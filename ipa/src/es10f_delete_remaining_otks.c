/* FPA request DeleteOtks: provline's ES10f DeleteRemainingOtks 'FF74' -> 'FF75' (es10f.h;
 * SGP.41 v1.0 EUICCF03 / DMF03 as summarised in reference/IFPP.md §3-§4, §6.2; ARCHITECTURE.md
 * §4 step 6). The FPA forwards the Key-Maker-signed request as it came and the eUICC-signed
 * receipt as it came; it checks only that both are well-formed (docs/fixture-protocol.md §2.6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpa_internal.h"
#include "provline/protocol/es10f.h"

int pl_fpa_do_delete_otks(struct pl_fpa_job *j)
{
    const pb_bytes_array_t *rq = j->req->body.delete_otks.request;
    struct pl_es10f_delete_otks_req *q = NULL;
    struct pl_es10f_delete_otks_rsp *r = NULL;
    struct pl_wr out;
    const uint8_t *req;
    size_t req_len;
    int rc;

    pl_wr_init_dyn(&out, PL_FX_DOTK_RSP_MAX);
    req = pl_fx_blob(rq, &req_len);
    q = malloc(sizeof(*q));
    r = malloc(sizeof(*r));
    if (q == NULL || r == NULL) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                         provline_fixture_Stage_STAGE_REQUEST, "out of memory");
        goto out;
    }
    if ((rc = pl_es10f_delete_otks_req_decode(req, req_len, q)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                         provline_fixture_Stage_STAGE_REQUEST, "DeleteRemainingOtks request: %s",
                         pl_strerror(rc));
        goto out;
    }
    if (req_len > PL_ES10_MAX_BLOCKS * j->f->cfg.mss) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                         provline_fixture_Stage_STAGE_REQUEST, "request too long for STORE DATA");
        goto out;
    }
    memcpy(j->eid, q->token.eid, PL_FX_EID_LEN);
    j->has_eid = true;
    if ((rc = pl_fpa_session(j)) != PL_OK
        || (rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_COMMAND, req, req_len, &out))
               != PL_OK)
        goto out;
    if ((rc = pl_es10f_delete_otks_rsp_decode(out.buf, out.len, r)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND, "DeleteRemainingOtks response: %s",
                         pl_strerror(rc));
        goto out;
    }
    j->rsp.which_body = PL_FX_DELETE_OTKS_RSP;
    if ((rc = PL_FX_SET_BYTES(j->rsp.body.delete_otks_rsp.response, out.buf, out.len))
        != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND, "response over its cap");
        goto out;
    }
    if (r->ok)
        snprintf(j->note, sizeof(j->note), "receipt deleted=%zu counter=%llu",
                 r->receipt.n_deleted, (unsigned long long)r->receipt.counter);
    else
        snprintf(j->note, sizeof(j->note), "refused error=%s",
                 pl_es10f_dotk_error_name(r->error));
out:
    free(q);
    free(r);
    pl_wr_free(&out);
    return rc;
}
