/* ES10c.ListProfileInfo (GSMA SGP.22 v2.5 §5.7.15, 'BF2D'), used by the IPA to notice a
 * change of the eUICC's profiles it did not cause (a local operation, a fallback, a reset),
 * which it then reports with notifyStateChange in the next GetEimPackageRequest
 * (SGP.32 v1.2 §6.3.2.6). The fingerprint is SHA-256 over the whole answer to
 * ProfileInfoListRequest 'BF2D 00' (every profile, the eUICC's default tag list): any
 * change of ICCID, state, nickname or class changes it. docs/ipa.md §3. */
#include "ipa_internal.h"
#include "provline/protocol/der.h"

#define TAG_PROFILE_INFO_LIST 0xBF2Du

int pl_ipa_es10c_profiles_fingerprint(struct pl_ipa *ipa, uint8_t fp[PL_SHA256_LEN])
{
    static const uint8_t req[] = {0xBF, 0x2D, 0x00};
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
    if (rc != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ListProfileInfo: %s (SW %04X)", pl_strerror(rc),
                   (unsigned)sw);
        goto out;
    }
    if (pl_der_parse_one(rsp.buf, rsp.len, TAG_PROFILE_INFO_LIST, &t) != PL_OK
        || pl_der_validate(rsp.buf, rsp.len, PL_DER_MAX_DEPTH) != PL_OK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "ListProfileInfo: malformed response");
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    rc = pl_sha256(rsp.buf, rsp.len, fp);
out:
    pl_wr_free(&rsp);
    return rc;
}
