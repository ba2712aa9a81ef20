/* Software eUICC, field mode: ES10b.GetEUICCInfo (GSMA SGP.22 v2.5 §5.7.8) as an IoT eUICC
 * answers it: GetEuiccInfo1Request 'BF20' -> EUICCInfo1 'BF20' and GetEuiccInfo2Request
 * 'BF22' -> SGP32-EUICCInfo2 'BF22' (GSMA SGP.32 v1.2 §5.9, SGP32Definitions: ipaMode [16]
 * and iotSpecificInfo [20] are "mandatory within SGP.32"). An IPA Service: refused with
 * 6985 while a FREE OTK remains (SGP.41 EUICCF04, in the dispatcher).
 *
 * Content (decision: realistic and minimal, every mandatory field, no optional one that
 * would claim something this eUICC does not do):
 *   svn 2.5.0 (the SGP.22 version SGP.32 v1.2 builds on); euiccCiPKIdListForVerification
 *   and ...ForSigning = { SKI of the one CI this eUICC trusts }; profileVersion 2.3.1
 *   (SAIP); euiccFirmwareVer 1.0.0; extCardResource (ETSI TS 102 226 §8.2.1.7.2):
 *   installed applications = installed profiles, free non-volatile memory = free profile
 *   slots x 1 MiB, free volatile memory 16 KiB; uiccCapability usim, isim, milenage,
 *   usimTestAlgorithm, javacard; rspCapability additionalProfile while a slot is free;
 *   ppVersion 0.0.0 and sasAcreditationNumber "PROVLINE-SIM-TEST" (a software card has
 *   neither); ipaMode ipad(0); iotSpecificInfo { iotVersion { 1.2.0 } } without
 *   ecallSupported / fallbackSupported (neither the Emergency Profile nor the Fallback
 *   Mechanism itself is implemented; the Fallback Attribute is).
 * Tagging: SGP32-EUICCInfo2 has tagged components, so its untagged ones keep their
 * universal tags (ppVersion '04', sasAcreditationNumber '0C'; X.680 §25.3). */
#include "euicc_internal.h"
#include "provline/protocol/der.h"

#include <string.h>

#define TAG_EUICC_INFO1 0xBF20u
#define TAG_EUICC_INFO2 0xBF22u

static const uint8_t svn[3] = {2, 5, 0};
static const uint8_t profile_version[3] = {2, 3, 1};
static const uint8_t firmware_version[3] = {1, 0, 0};
static const uint8_t pp_version[3] = {0, 0, 0};
static const uint8_t iot_version[3] = {1, 2, 0};
/* UICCCapability (PEDefinitions): usimSupport(1) isimSupport(2) akaMilenage(4)
 * usimTestAlgorithm(8) javacard(14); 15 bits -> one unused bit. */
static const uint8_t uicc_capability[] = {0x01, 0x68, 0x82};
#define SAS_NUMBER "PROVLINE-SIM-TEST"

int pl_euicc_req_no_args(const uint8_t *req, size_t len, uint32_t tag)
{
    struct pl_tlv t;
    if (pl_der_parse_one(req, len, tag, &t) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (pl_der_validate(req, len, PL_DER_MAX_DEPTH) != PL_OK)
        return PL_SW_WRONG_DATA;
    return PL_OK;
}

/* [tag] SEQUENCE OF SubjectKeyIdentifier with the CI's SKI. */
static void put_ci_list(struct pl_wr *w, uint32_t tag, const uint8_t *ski, size_t ski_len)
{
    size_t m = pl_der_begin(w, tag);
    pl_der_put_tlv(w, PL_TAG_OCTET_STRING, ski, ski_len);
    pl_der_end(w, m);
}

int pl_euicc_es10b_get_euicc_info1(struct pl_euicc *e, const uint8_t *req, size_t len,
                                   struct pl_wr *rsp)
{
    uint8_t ski[PL_EUICC_SKI_MAX];
    size_t ski_len;
    int rc = pl_euicc_req_no_args(req, len, TAG_EUICC_INFO1);
    if (rc)
        return rc;
    if ((rc = pl_euicc_ci_ski(e, ski, &ski_len)))
        return rc;
    size_t m = pl_der_begin(rsp, TAG_EUICC_INFO1);
    pl_der_put_tlv(rsp, 0x82u, svn, sizeof(svn));
    put_ci_list(rsp, 0xA9u, ski, ski_len);
    put_ci_list(rsp, 0xAAu, ski, ski_len);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}

int pl_euicc_es10b_get_euicc_info2(struct pl_euicc *e, const uint8_t *req, size_t len,
                                   struct pl_wr *rsp)
{
    uint8_t ski[PL_EUICC_SKI_MAX];
    size_t ski_len;
    int rc = pl_euicc_req_no_args(req, len, TAG_EUICC_INFO2);
    if (rc)
        return rc;
    if ((rc = pl_euicc_ci_ski(e, ski, &ski_len)))
        return rc;
    size_t free_slots = PL_EUICC_MAX_PROFILES - e->st.n_prof;
    uint32_t free_nvm = (uint32_t)free_slots * 1024u * 1024u;

    size_t m = pl_der_begin(rsp, TAG_EUICC_INFO2);
    pl_der_put_tlv(rsp, 0x81u, profile_version, sizeof(profile_version));
    pl_der_put_tlv(rsp, 0x82u, svn, sizeof(svn));
    pl_der_put_tlv(rsp, 0x83u, firmware_version, sizeof(firmware_version));
    /* extCardResource: TS 102 226 TLVs inside the OCTET STRING */
    size_t mr = pl_der_begin(rsp, 0x84u);
    uint8_t apps = (uint8_t)e->st.n_prof;
    pl_der_put_tlv(rsp, 0x81u, &apps, 1);
    uint8_t nvm[4] = {(uint8_t)(free_nvm >> 24), (uint8_t)(free_nvm >> 16),
                      (uint8_t)(free_nvm >> 8), (uint8_t)free_nvm};
    pl_der_put_tlv(rsp, 0x82u, nvm, sizeof(nvm));
    static const uint8_t ram[2] = {0x40, 0x00};
    pl_der_put_tlv(rsp, 0x83u, ram, sizeof(ram));
    pl_der_end(rsp, mr);
    pl_der_put_tlv(rsp, 0x85u, uicc_capability, sizeof(uicc_capability));
    /* rspCapability: additionalProfile(0) while a slot is free; else the empty string */
    static const uint8_t rsp_cap_more[] = {0x07, 0x80};
    static const uint8_t rsp_cap_none[] = {0x00};
    if (free_slots)
        pl_der_put_tlv(rsp, 0x88u, rsp_cap_more, sizeof(rsp_cap_more));
    else
        pl_der_put_tlv(rsp, 0x88u, rsp_cap_none, sizeof(rsp_cap_none));
    put_ci_list(rsp, 0xA9u, ski, ski_len);
    put_ci_list(rsp, 0xAAu, ski, ski_len);
    pl_der_put_tlv(rsp, PL_TAG_OCTET_STRING, pp_version, sizeof(pp_version));
    pl_der_put_utf8(rsp, PL_TAG_UTF8, SAS_NUMBER);
    pl_der_put_int(rsp, 0x90u, 0); /* ipaMode ipad(0) */
    size_t mi = pl_der_begin(rsp, 0xB4u);
    size_t mv = pl_der_begin(rsp, 0xA0u);
    pl_der_put_tlv(rsp, PL_TAG_OCTET_STRING, iot_version, sizeof(iot_version));
    pl_der_end(rsp, mv);
    pl_der_end(rsp, mi);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}
