/* Software eUICC: ES10c.GetProfilesInfo / ListProfileInfo 'BF2D' (GSMA SGP.22 v2.5
 * §5.7.15), minimal: searchCriteria isdpAid '4F' or iccid '5A' (profileClass '95' matches
 * nothing stored here); tagList is accepted and ignored; each ProfileInfo 'E3' carries
 * iccid '5A', isdpAid '4F', profileState '9F70', serviceProviderName '91', profileName '92'.
 * An IPA/LPA Service: refused with 6985 while a FREE OTK remains (SGP.41 EUICCF04, the
 * dispatcher enforces it). */
#include "euicc_internal.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/der.h"

#include <string.h>

#define TAG_PROFILE_INFO_LIST      0xBF2Du
#define TAG_PROFILE_INFO           0xE3u
#define TAG_PROFILE_STATE          0x9F70u
#define PIL_INCORRECT_INPUT_VALUES 1

static void put_profile(struct pl_wr *w, const struct pl_euicc_prof *p)
{
    struct pl_smr smr;
    size_t m = pl_der_begin(w, TAG_PROFILE_INFO);
    pl_der_put_tlv(w, 0x5Au, p->iccid, sizeof(p->iccid));
    pl_der_put_tlv(w, 0x4Fu, p->aid, sizeof(p->aid));
    pl_der_put_int(w, TAG_PROFILE_STATE, p->enabled ? 1 : 0);
    if (pl_smr_decode(p->meta, p->meta_len, &smr) == PL_OK) {
        pl_der_put_utf8(w, 0x91u, smr.spn);
        pl_der_put_utf8(w, 0x92u, smr.name);
    }
    pl_der_end(w, m);
}

int pl_euicc_es10c_list_profile_info(struct pl_euicc *e, const uint8_t *req, size_t len,
                                     struct pl_wr *rsp)
{
    struct pl_tlv t, c, s;
    struct pl_der d, in, cd;
    bool has_crit = false, present;
    uint32_t crit_tag = 0;

    memset(&s, 0, sizeof(s));

    if (pl_der_parse_one(req, len, TAG_PROFILE_INFO_LIST, &t) != PL_OK)
        return PL_SW_WRONG_DATA;
    pl_der_init(&d, req, len);
    if (pl_der_enter(&d, &t, &in) != PL_OK || pl_der_optional(&in, 0xA0u, &c, &has_crit) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (has_crit) {
        if (pl_der_enter(&in, &c, &cd) != PL_OK || pl_der_next(&cd, &s) != PL_OK
            || pl_der_finish(&cd) != PL_OK)
            return PL_SW_WRONG_DATA;
        crit_tag = s.tag;
    }
    if (pl_der_optional(&in, 0x5Cu, &c, &present) != PL_OK || pl_der_finish(&in) != PL_OK)
        return PL_SW_WRONG_DATA;

    size_t m = pl_der_begin(rsp, TAG_PROFILE_INFO_LIST);
    if (has_crit && crit_tag != 0x4Fu && crit_tag != 0x5Au && crit_tag != 0x95u) {
        pl_der_put_int(rsp, 0x81u, PIL_INCORRECT_INPUT_VALUES);
        pl_der_end(rsp, m);
        return pl_wr_status(rsp);
    }
    size_t ml = pl_der_begin(rsp, 0xA0u);
    for (size_t i = 0; i < e->st.n_prof; i++) {
        const struct pl_euicc_prof *p = &e->st.prof[i];
        if (has_crit && crit_tag == 0x95u)
            continue;
        if (has_crit && crit_tag == 0x4Fu
            && (s.len != sizeof(p->aid) || memcmp(s.value, p->aid, s.len) != 0))
            continue;
        if (has_crit && crit_tag == 0x5Au
            && (s.len != sizeof(p->iccid) || memcmp(s.value, p->iccid, s.len) != 0))
            continue;
        put_profile(rsp, p);
    }
    pl_der_end(rsp, ml);
    pl_der_end(rsp, m);
    return pl_wr_status(rsp);
}
