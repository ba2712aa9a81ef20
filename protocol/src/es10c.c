/* ES10c.GetEID codec (es10c.h). GSMA SGP.22 v2.5 §5.7.20; RSPDefinitions.asn. */
#include "provline/protocol/es10c.h"

#include "provline/protocol/der.h"

#define TAG_GET_EUICC_DATA 0xBF3Eu
#define TAG_TAG_LIST       0x5Cu
#define TAG_EID            0x5Au

int pl_es10c_get_eid_req(struct pl_wr *w)
{
    static const uint8_t tag_list[] = {TAG_EID};
    size_t m = pl_der_begin(w, TAG_GET_EUICC_DATA);
    pl_der_put_tlv(w, TAG_TAG_LIST, tag_list, sizeof(tag_list));
    pl_der_end(w, m);
    return pl_wr_status(w);
}

int pl_es10c_get_eid_rsp_decode(const uint8_t *p, size_t len, uint8_t eid[PL_ES10C_EID_LEN])
{
    struct pl_der in;
    struct pl_tlv t, e;
    int rc;

    if ((rc = pl_der_open_one(p, len, TAG_GET_EUICC_DATA, &t, &in)) != PL_OK
        || (rc = pl_der_expect(&in, TAG_EID, &e)) != PL_OK || (rc = pl_der_finish(&in)) != PL_OK)
        return rc;
    return pl_der_get_fixed(&e, eid, PL_ES10C_EID_LEN);
}
