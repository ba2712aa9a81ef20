/* Software eUICC: ES10c.GetEID (GSMA SGP.22 v2.5 §5.7.20): GetEuiccDataRequest 'BF3E'
 * { tagList '5C' = '5A' } -> GetEuiccDataResponse 'BF3E' { eidValue '5A' (16 B) }.
 * Available in factory mode and after it. */
#include "euicc_internal.h"
#include "provline/protocol/der.h"

#define TAG_GET_EUICC_DATA 0xBF3Eu

int pl_euicc_es10c_get_eid(struct pl_euicc *e, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    struct pl_tlv t, tl;
    struct pl_der in;
    if (pl_der_open_one(req, len, TAG_GET_EUICC_DATA, &t, &in) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (pl_der_expect(&in, 0x5Cu, &tl) != PL_OK
        || pl_der_finish(&in) != PL_OK || tl.len != 1 || tl.value[0] != 0x5Au)
        return PL_SW_WRONG_DATA;
    size_t m = pl_der_begin(rsp, TAG_GET_EUICC_DATA);
    pl_der_put_tlv(rsp, 0x5Au, e->st.eid, sizeof(e->st.eid));
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}
