/* ES10c.GetEID (GSMA SGP.22 v2.5 §5.7.20), as the FPA uses it for the EID check before a
 * package (reference/IFPP.md §6.3, §7 case 22); the codec is provline/protocol/es10c.h. The
 * eUICC serves it in factory mode and after it. */
#include <string.h>

#include "fpa_internal.h"
#include "provline/protocol/es10c.h"

static int get_eid_once(struct pl_fpa_job *j, uint8_t eid[PL_FX_EID_LEN], int *raw_rc)
{
    uint8_t rq[16], rb[64];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    int rc;

    *raw_rc = PL_OK;
    if ((rc = pl_fpa_session(j)) != PL_OK)
        return rc;
    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_fixed(&rsp, rb, sizeof(rb));
    if ((rc = pl_es10c_get_eid_req(&req)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                           provline_fixture_Stage_STAGE_GET_EID, "GetEID encode: %s",
                           pl_strerror(rc));
    rc = pl_fpa_es10_raw(j->f, req.buf, req.len, &rsp, &sw);
    j->sw = sw;
    if (rc != PL_OK) {
        *raw_rc = rc;
        return rc;
    }
    if ((rc = pl_es10c_get_eid_rsp_decode(rsp.buf, rsp.len, eid)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                           provline_fixture_Stage_STAGE_GET_EID, "GetEID response: %s",
                           pl_strerror(rc));
    return PL_OK;
}

int pl_fpa_get_eid(struct pl_fpa_job *j, uint8_t eid[PL_FX_EID_LEN])
{
    bool was_open = j->f->open;
    int raw = PL_OK;
    int rc = get_eid_once(j, eid, &raw);

    if (rc == PL_OK) {
        memcpy(j->eid, eid, PL_FX_EID_LEN);
        j->has_eid = true;
        return PL_OK;
    }
    if (raw == PL_OK)
        return rc; /* recorded already (session or decoding) */
    if (was_open && j->code == 0) {
        /* The path we had may be gone (card reset, channel closed): one fresh attempt. */
        pl_fpa_session_drop(j->f);
        rc = get_eid_once(j, eid, &raw);
        if (rc == PL_OK) {
            memcpy(j->eid, eid, PL_FX_EID_LEN);
            j->has_eid = true;
            return PL_OK;
        }
        if (raw == PL_OK)
            return rc;
    }
    return pl_fpa_es10_failed(j, provline_fixture_Stage_STAGE_GET_EID, raw, j->sw, "GetEID");
}
