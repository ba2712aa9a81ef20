/* ES10c.GetEID (GSMA SGP.22 v2.5 §5.7.20), as the IPA uses it: the eidValue of every
 * GetEimPackageRequest (SGP.32 v1.2 §6.3.2.6) and the check that the state file belongs to
 * the eUICC in the device.
 *   GetEuiccDataRequest  'BF3E' { tagList '5C' = '5A' }
 *   GetEuiccDataResponse 'BF3E' { eidValue '5A' OCTET STRING (SIZE(16)) }
 * ASN.1: shared/asn1/RSPDefinitions.asn (GetEuiccDataRequest/Response). */
#include "ipa_internal.h"
#include "provline/protocol/der.h"

#define TAG_GET_EUICC_DATA 0xBF3Eu
#define TAG_TAG_LIST       0x5Cu
#define TAG_EID            0x5Au

static int decode_eid(const uint8_t *p, size_t len, uint8_t eid[PL_SGP32_EID_LEN])
{
    struct pl_der d, in;
    struct pl_tlv t, e;
    int rc;

    if ((rc = pl_der_parse_one(p, len, TAG_GET_EUICC_DATA, &t)) != PL_OK)
        return rc;
    pl_der_init(&d, p, len);
    if ((rc = pl_der_enter(&d, &t, &in)) != PL_OK || (rc = pl_der_expect(&in, TAG_EID, &e)) != PL_OK
        || (rc = pl_der_finish(&in)) != PL_OK)
        return rc;
    return pl_der_get_fixed(&e, eid, PL_SGP32_EID_LEN);
}

int pl_ipa_es10c_get_eid(struct pl_ipa *ipa, uint8_t eid[PL_SGP32_EID_LEN])
{
    static const uint8_t tag_list[] = {TAG_EID};
    uint8_t rq[16], rb[64];
    struct pl_wr req, rsp;
    uint16_t sw = 0;
    size_t m;
    int rc;

    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_fixed(&rsp, rb, sizeof(rb));
    m = pl_der_begin(&req, TAG_GET_EUICC_DATA);
    pl_der_put_tlv(&req, TAG_TAG_LIST, tag_list, sizeof(tag_list));
    pl_der_end(&req, m);
    if ((rc = pl_wr_status(&req)) != PL_OK)
        return rc;
    if ((rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "GetEID: %s (SW %04X)", pl_strerror(rc), (unsigned)sw);
        return rc;
    }
    if ((rc = decode_eid(rsp.buf, rsp.len, eid)) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "GetEID response: %s", pl_strerror(rc));
        return PL_ERR_MALFORMED;
    }
    return PL_OK;
}
