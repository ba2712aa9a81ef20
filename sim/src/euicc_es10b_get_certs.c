/* Software eUICC, field mode: ES10b.GetCerts (GSMA SGP.32 v1.2 §5.9, SGP32Definitions
 * GetCertsRequest / GetCertsResponse 'BF56'): the IPA reads CERT.EUM and CERT.EUICC to put
 * them into IpaEuiccData (EIM.md §1.3). An IPA Service: 6985 while a FREE OTK remains
 * (SGP.41 EUICCF04, in the dispatcher).
 *
 * Wire (AUTOMATIC TAGS; X.680 §25.3, §31.2.7):
 *   GetCertsRequest   BF56 { [80 euiccCiPKId] }
 *   GetCertsResponse  BF56 { A0 { A5 <CERT.EUM contents>, A6 <CERT.EUICC contents> } }
 *                   | BF56 { 81 getCertsError }
 * GetCertsResponse is a tagged CHOICE (explicit); its untagged arms get [0] / [1]; the
 * certificates' [5] / [6] are implicit, so they replace the '30' of each Certificate
 * (the IMPLICIT-sibling shape of EIM.md §1.8). An euiccCiPKId other than the SKI of the one
 * CI this eUICC trusts is invalidCiPKId(1). */
#include "euicc_internal.h"
#include "provline/protocol/der.h"

#include <string.h>

#define TAG_GET_CERTS          0xBF56u
#define GET_CERTS_INVALID_CIPK 1

/* '[tag] <contents of the certificate SEQUENCE>' */
static int put_cert_implicit(struct pl_wr *w, uint32_t tag, const uint8_t *der, size_t len)
{
    struct pl_tlv t;
    int rc = pl_der_parse_one(der, len, PL_TAG_SEQUENCE, &t);
    if (rc)
        return rc;
    pl_der_put_tlv(w, tag, t.value, t.len);
    return pl_wr_status(w);
}

int pl_euicc_es10b_get_certs(struct pl_euicc *e, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    struct pl_tlv t, ci;
    struct pl_der in;
    bool has_ci;
    uint8_t ski[PL_EUICC_SKI_MAX];
    size_t ski_len;
    int rc;

    if (pl_der_open_one(req, len, TAG_GET_CERTS, &t, &in) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (pl_der_optional(&in, 0x80u, &ci, &has_ci) != PL_OK
        || pl_der_finish(&in) != PL_OK)
        return PL_SW_WRONG_DATA;
    if ((rc = pl_euicc_ci_ski(e, ski, &ski_len)))
        return rc;
    size_t m = pl_der_begin(rsp, TAG_GET_CERTS);
    if (has_ci && (ci.len != ski_len || memcmp(ci.value, ski, ski_len) != 0)) {
        pl_der_put_int(rsp, 0x81u, GET_CERTS_INVALID_CIPK);
    } else {
        size_t mc = pl_der_begin(rsp, 0xA0u);
        if ((rc = put_cert_implicit(rsp, 0xA5u, e->st.cert_eum, e->st.cert_eum_len))
            || (rc = put_cert_implicit(rsp, 0xA6u, e->st.cert_euicc, e->st.cert_euicc_len)))
            return rc;
        pl_der_end(rsp, mc);
    }
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}
