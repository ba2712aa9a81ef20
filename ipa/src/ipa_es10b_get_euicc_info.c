/* The ES10 reads behind IpaEuiccData (GSMA SGP.32 v1.2 §2.11.2.2):
 *   ES10b.GetEUICCInfo1 (SGP.22 v2.5 §5.7.8)   BF20 00 -> EUICCInfo1 'BF20' (forwarded raw)
 *   ES10b.GetEUICCInfo2 (SGP.22 v2.5 §5.7.8, SGP.32 SGP32-EUICCInfo2)
 *                                              BF22 00 -> 'BF22' (forwarded raw: signed data
 *                                              elsewhere carry extension fields, EIM.md §1.8)
 *   ES10b.GetCerts (SGP.32 v1.2 §5.9.x)        BF56 { [80 euiccCiPKId] }
 *                                            -> BF56 { A0 { A5 eumCert, A6 euiccCert } | 81 err }
 *   ES10a.GetEuiccConfiguredAddresses (SGP.22 v2.5 §5.7.3)
 *                                              BF3C 00 -> BF3C { [80 defaultDp] 81 rootDs }
 * Every answer is checked with der.h (strict DER, expected tags) before use. */
#include "ipa_internal.h"
#include "provline/protocol/der.h"

#define TAG_INFO1     0xBF20u
#define TAG_INFO2     0xBF22u
#define TAG_CERTS     0xBF56u
#define TAG_ADDRESSES 0xBF3Cu

int pl_ipa_es10b_get_euicc_info(struct pl_ipa *ipa, bool info2, struct pl_wr *out)
{
    uint32_t tag = info2 ? TAG_INFO2 : TAG_INFO1;
    uint8_t req[3] = {0xBF, (uint8_t)(tag & 0xFFu), 0x00};
    int rc = PL_ERR_INTERNAL;
    struct pl_wr rsp;
    struct pl_tlv t;
    uint16_t sw = 0;

    pl_wr_init_dyn(&rsp, PL_IPA_ES10_RSP_MAX);
    rc = pl_ipa_es10(ipa, req, sizeof(req), &rsp, &sw, true);
    if (rc == PL_ERR_CARD_SW && pl_ipa_sw_unsupported(sw)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    if (pl_der_parse_one(rsp.buf, rsp.len, tag, &t) != PL_OK
        || pl_der_validate(rsp.buf, rsp.len, PL_DER_MAX_DEPTH) != PL_OK) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    pl_wr_bytes(out, rsp.buf, rsp.len);
    rc = pl_wr_status(out);
out:
    if (rc != PL_OK && rc != PL_ERR_UNSUPPORTED)
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEUICCInfo%d: %s (SW %04X)", info2 ? 2 : 1,
                   pl_strerror(rc), (unsigned)sw);
    pl_wr_free(&rsp);
    return rc;
}

int pl_ipa_es10b_get_certs(struct pl_ipa *ipa, const uint8_t *ci_pkid, size_t ci_pkid_len,
                           struct pl_wr *eum, struct pl_wr *euicc, bool *ci_error)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t rq[96];
    struct pl_wr req, rsp;
    struct pl_der d, in, certs;
    struct pl_tlv t, arm, a5, a6;
    uint16_t sw = 0;
    size_t m;

    *ci_error = false;
    pl_wr_init_fixed(&req, rq, sizeof(rq));
    pl_wr_init_dyn(&rsp, PL_IPA_ES10_RSP_MAX);
    m = pl_der_begin(&req, TAG_CERTS);
    if (ci_pkid != NULL)
        pl_der_put_tlv(&req, 0x80u, ci_pkid, ci_pkid_len);
    pl_der_end(&req, m);
    if ((rc = pl_wr_status(&req)) != PL_OK)
        goto out;
    rc = pl_ipa_es10(ipa, req.buf, req.len, &rsp, &sw, true);
    if (rc == PL_ERR_CARD_SW && pl_ipa_sw_unsupported(sw)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    pl_der_init(&d, rsp.buf, rsp.len);
    if (pl_der_validate(rsp.buf, rsp.len, PL_DER_MAX_DEPTH) != PL_OK
        || pl_der_parse_one(rsp.buf, rsp.len, TAG_CERTS, &t) != PL_OK
        || pl_der_enter(&d, &t, &in) != PL_OK || pl_der_next(&in, &arm) != PL_OK
        || pl_der_finish(&in) != PL_OK) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if (arm.tag == 0x81u) {
        *ci_error = true;
        rc = PL_OK;
        goto out;
    }
    if (arm.tag != 0xA0u || pl_der_enter(&in, &arm, &certs) != PL_OK
        || pl_der_expect(&certs, 0xA5u, &a5) != PL_OK || pl_der_expect(&certs, 0xA6u, &a6) != PL_OK
        || a5.len == 0 || a6.len == 0) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    pl_wr_bytes(eum, a5.value, a5.len);
    pl_wr_bytes(euicc, a6.value, a6.len);
    if ((rc = pl_wr_status(eum)) == PL_OK)
        rc = pl_wr_status(euicc);
out:
    if (rc != PL_OK && rc != PL_ERR_UNSUPPORTED)
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetCerts: %s (SW %04X)", pl_strerror(rc), (unsigned)sw);
    pl_wr_free(&rsp);
    return rc;
}

int pl_ipa_es10a_configured_addresses(struct pl_ipa *ipa, struct pl_wr *default_dp,
                                      bool *has_default_dp, struct pl_wr *root_ds,
                                      bool *has_root_ds)
{
    static const uint8_t req[] = {0xBF, 0x3C, 0x00};
    int rc = PL_ERR_INTERNAL;
    struct pl_wr rsp;
    struct pl_der d, in;
    struct pl_tlv t, x;
    bool present = false;
    uint16_t sw = 0;
    char tmp[PL_SGP32_ADDR_MAX + 1];

    *has_default_dp = false;
    *has_root_ds = false;
    pl_wr_init_dyn(&rsp, 4096);
    rc = pl_ipa_es10(ipa, req, sizeof(req), &rsp, &sw, true);
    if (rc == PL_ERR_CARD_SW && pl_ipa_sw_unsupported(sw)) {
        rc = PL_ERR_UNSUPPORTED;
        goto out;
    }
    if (rc != PL_OK)
        goto out;
    pl_der_init(&d, rsp.buf, rsp.len);
    if (pl_der_parse_one(rsp.buf, rsp.len, TAG_ADDRESSES, &t) != PL_OK
        || pl_der_enter(&d, &t, &in) != PL_OK || pl_der_optional(&in, 0x80u, &x, &present) != PL_OK
        || (present && pl_der_get_utf8(&x, tmp, sizeof(tmp)) != PL_OK)) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if (present) {
        pl_wr_bytes(default_dp, x.value, x.len);
        *has_default_dp = true;
    }
    if (pl_der_expect(&in, 0x81u, &x) != PL_OK || pl_der_get_utf8(&x, tmp, sizeof(tmp)) != PL_OK) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    pl_wr_bytes(root_ds, x.value, x.len);
    *has_root_ds = true;
    if ((rc = pl_wr_status(default_dp)) == PL_OK)
        rc = pl_wr_status(root_ds);
out:
    if (rc != PL_OK && rc != PL_ERR_UNSUPPORTED)
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEuiccConfiguredAddresses: %s (SW %04X)",
                   pl_strerror(rc), (unsigned)sw);
    pl_wr_free(&rsp);
    return rc;
}
