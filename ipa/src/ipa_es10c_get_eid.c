/* ES10c.GetEID (GSMA SGP.22 v2.5 §5.7.20), as the IPA uses it: the eidValue of every
 * GetEimPackageRequest (SGP.32 v1.2 §6.3.2.6) and the check that the state file belongs to
 * the eUICC in the device.
 * The codec is provline/protocol/es10c.h. */
#include "ipa_internal.h"
#include "provline/protocol/es10c.h"

int pl_ipa_es10c_get_eid(struct pl_ipa *ipa, uint8_t eid[PL_SGP32_EID_LEN])
{
    uint8_t rq[16], rb[64];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    int rc;

    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_fixed(&rsp, rb, sizeof(rb));
    if ((rc = pl_es10c_get_eid_req(&req)) != PL_OK)
        return rc;
    if ((rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "GetEID: %s (SW %04X)", pl_strerror(rc), (unsigned)sw);
        return rc;
    }
    if ((rc = pl_es10c_get_eid_rsp_decode(rsp.buf, rsp.len, eid)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "GetEID response: %s", pl_strerror(rc));
        return PL_ERR_MALFORMED;
    }
    return PL_OK;
}
