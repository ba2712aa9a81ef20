/* Software eUICC, field mode: the default SM-DP+ address.
 *  - ES10a.GetEuiccConfiguredAddresses (GSMA SGP.22 v2.5 §5.7.3): 'BF3C' {} ->
 *    'BF3C' { [80 defaultDpAddress] 81 rootDsAddress } (AUTOMATIC TAGS);
 *  - ES10b.SetDefaultDpAddress as SGP.32 v1.2 defines it (§5.9, SGP32-SetDefaultDp-
 *    AddressRequest 'BF65' { 80 defaultDpAddress } -> 'BF65' { 80 result }), the same
 *    setting the setDefaultDpAddress PSMO changes (euicc_es10b_load_euicc_package_psmo.c).
 * IPA Services: 6985 while a FREE OTK remains (SGP.41 EUICCF04, in the dispatcher).
 * rootDsAddress: the GSMA root SM-DS (decision: the value SGP.22 devices ship with; this
 * eUICC never contacts it). An empty defaultDpAddress clears the setting. */
#include "euicc_internal.h"
#include "provline/protocol/der.h"

#include <string.h>

#define TAG_CONFIGURED_ADDRESSES 0xBF3Cu
#define TAG_SET_DEFAULT_DP       0xBF65u
#define ROOT_DS_ADDRESS          "lpa.ds.gsma.com"
#define SET_DP_OK                0

int pl_euicc_es10a_euicc_configured_addresses(struct pl_euicc *e, const uint8_t *req, size_t len,
                                              struct pl_wr *rsp)
{
    int rc = pl_euicc_req_no_args(req, len, TAG_CONFIGURED_ADDRESSES);
    if (rc != PL_OK)
        return rc;
    size_t m = pl_der_begin(rsp, TAG_CONFIGURED_ADDRESSES);
    if (e->st.field.has_default_dp)
        pl_der_put_tlv(rsp, 0x80u, e->st.field.default_dp, e->st.field.default_dp_len);
    pl_der_put_utf8(rsp, 0x81u, ROOT_DS_ADDRESS);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}

int pl_euicc_es10b_set_default_dp_address(struct pl_euicc *e, const uint8_t *req, size_t len,
                                          struct pl_wr *rsp)
{
    struct pl_tlv t, a;
    struct pl_der in;
    char addr[PL_EUICC_ADDR_MAX + 1];
    size_t addr_len;
    int rc;

    if (pl_der_open_one(req, len, TAG_SET_DEFAULT_DP, &t, &in) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (pl_der_expect(&in, 0x80u, &a) != PL_OK
        || pl_der_finish(&in) != PL_OK || pl_der_get_utf8(&a, addr, sizeof(addr)) != PL_OK)
        return PL_SW_WRONG_DATA;
    addr_len = strlen(addr);
    struct pl_euicc_field *f = &e->st.field;
    f->has_default_dp = addr_len > 0;
    f->default_dp_len = addr_len;
    if (addr_len)
        memcpy(f->default_dp, addr, addr_len);
    if ((rc = pl_euicc_persist(e)))
        return rc;
    size_t m = pl_der_begin(rsp, TAG_SET_DEFAULT_DP);
    pl_der_put_int(rsp, 0x80u, SET_DP_OK);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}
