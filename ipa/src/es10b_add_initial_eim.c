/* FPA request ConfigureInitialEim: GSMA SGP.32 v1.2 §5.9.4 ES10b.AddInitialEim 'BF57'
 * (sgp32_eim_config.h), the last step of production (ARCHITECTURE.md §4 step 6; reference/
 * IFPP.md §5.8). The eUICC refuses it with 6985 while one-time keys remain (EUICCF04).
 * The FPA forwards request and response as they came, after checking both are well-formed
 * (docs/fixture-protocol.md §2.7). */
#include <stdio.h>
#include <stdlib.h>

#include "fpa_internal.h"
#include "provline/protocol/sgp32_eim_config.h"

int pl_fpa_do_configure_eim(struct pl_fpa_job *j)
{
    struct pl_sgp32_add_initial_eim_request *q = NULL;
    struct pl_sgp32_add_initial_eim_response *r = NULL;
    struct pl_wr out;
    const uint8_t *req;
    size_t req_len;
    int rc;

    pl_wr_init_dyn(&out, PL_FX_EIM_RSP_MAX);
    req = pl_fx_blob(j->req->body.configure_initial_eim.request, &req_len);
    q = malloc(sizeof(*q));
    r = malloc(sizeof(*r));
    if (q == NULL || r == NULL) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                         provline_fixture_Stage_STAGE_REQUEST, "out of memory");
        goto out;
    }
    if ((rc = pl_sgp32_add_initial_eim_request_decode(req, req_len, q)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                         provline_fixture_Stage_STAGE_REQUEST, "AddInitialEim request: %s",
                         pl_strerror(rc));
        goto out;
    }
    if (req_len > PL_ES10_MAX_BLOCKS * j->f->cfg.mss) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                         provline_fixture_Stage_STAGE_REQUEST, "request too long for STORE DATA");
        goto out;
    }
    if ((rc = pl_fpa_session(j)) != PL_OK
        || (rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_COMMAND, req, req_len, &out))
               != PL_OK)
        goto out;
    if ((rc = pl_sgp32_add_initial_eim_response_decode(out.buf, out.len, r)) != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND, "AddInitialEim response: %s",
                         pl_strerror(rc));
        goto out;
    }
    j->rsp.which_body = PL_FX_CONFIGURE_EIM_RSP;
    if ((rc = PL_FX_SET_BYTES(j->rsp.body.configure_initial_eim_rsp.response, out.buf, out.len))
        != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND, "response over its cap");
        goto out;
    }
    if (r->is_error)
        snprintf(j->note, sizeof(j->note), "eims=%zu error=%lld", q->n_eims,
                 (long long)r->error_code);
    else
        snprintf(j->note, sizeof(j->note), "eims=%zu added=%zu", q->n_eims, r->n_results);
out:
    free(q);
    free(r);
    pl_wr_free(&out);
    return rc;
}
