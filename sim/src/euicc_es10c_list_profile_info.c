/* Software eUICC: ES10c.GetProfilesInfo / ListProfileInfo 'BF2D' (GSMA SGP.22 v2.5
 * §5.7.15), answered with the SGP.32 v1.2 SGP32-ProfileInfo 'E3' (§5.9, the listProfileInfo
 * PSMO of §2.11.1.1.3 uses the same builder). searchCriteria isdpAid '4F', iccid '5A' or
 * profileClass '95'; tagList '5C' selects the fields returned.
 *
 * Fields, in SGP32-ProfileInfo order, and where they come from: iccid '5A', isdpAid '4F',
 * profileState '9F70' (the eUICC's own state), serviceProviderName '91', profileName '92',
 * iconType '93', icon '94', profileClass '95' (StoreMetadata; operational(2) when it named
 * none, its DEFAULT), notificationConfigurationInfo 'B6', profileOwner 'B7',
 * profilePolicyRules '99', serviceSpecificDataStoredInEuicc 'BF22' (StoreMetadata, as
 * stored), fallbackAttribute '9F26' (DEFAULT FALSE: only present when TRUE). No nickname is
 * ever set ('90' absent). Without a tagList every available field but the icon is returned
 * (decision: the icon is up to 1 KiB per profile, and an IoT IPA rarely wants it).
 * An IPA Service: refused with 6985 while a FREE OTK remains (SGP.41 EUICCF04, the
 * dispatcher enforces it). */
#include "euicc_internal.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/der.h"
#include "provline/protocol/rd.h"

#include <string.h>

#define TAG_PROFILE_INFO_LIST      0xBF2Du
#define TAG_PROFILE_INFO           0xE3u
#define TAG_PROFILE_STATE          0x9F70u
#define TAG_FALLBACK_ATTRIBUTE     0x9F26u
#define TAG_PROFILE_CLASS          0x95u
#define PIL_INCORRECT_INPUT_VALUES 1
#define PROFILE_CLASS_OPERATIONAL  2
#define TAG_LIST_MAX               32u /* tags in one tagList */

/* tagList '5C' contents: BER identifier octets back to back (X.690 §8.1.2), each at most
 * three octets, folded like der.h folds tags (0x9F70 for '9F 70'). */
struct tag_set {
    size_t n;
    uint32_t tag[TAG_LIST_MAX];
};

static int tag_set_parse(const uint8_t *p, size_t len, struct tag_set *ts)
{
    struct pl_rd r;
    ts->n = 0;
    pl_rd_init(&r, p, len);
    while (!pl_rd_done(&r)) {
        uint32_t tag;
        if (pl_der_read_tag(&r, &tag) != PL_OK)
            return PL_ERR_MALFORMED;
        if (ts->n >= TAG_LIST_MAX)
            return PL_ERR_MALFORMED;
        ts->tag[ts->n++] = tag;
    }
    return PL_OK;
}

static bool wanted(const struct tag_set *ts, uint32_t tag)
{
    if (!ts)
        return tag != 0x93u && tag != 0x94u; /* default: everything but the icon */
    for (size_t i = 0; i < ts->n; i++)
        if (ts->tag[i] == tag)
            return true;
    return false;
}

static int64_t profile_class(const struct pl_smr *smr)
{
    const struct pl_bpp_seg *pc = &smr->opt[PL_SMR_PROFILE_CLASS];
    struct pl_tlv t;
    int64_t v;
    if (!pc->tlv || pl_der_parse_one(pc->tlv, pc->len, TAG_PROFILE_CLASS, &t) != PL_OK
        || pl_der_get_int(&t, &v) != PL_OK)
        return PROFILE_CLASS_OPERATIONAL;
    return v;
}

static void put_raw(struct pl_wr *w, const struct tag_set *ts, const struct pl_smr *smr,
                    enum pl_smr_opt o)
{
    if (smr->opt[o].tlv && wanted(ts, pl_smr_opt_tag(o)))
        pl_wr_bytes(w, smr->opt[o].tlv, smr->opt[o].len);
}

static void put_profile(struct pl_wr *w, const struct tag_set *ts, const struct pl_euicc_prof *p,
                        const struct pl_smr *smr, bool has_smr)
{
    size_t m = pl_der_begin(w, TAG_PROFILE_INFO);
    if (wanted(ts, 0x5Au))
        pl_der_put_tlv(w, 0x5Au, p->iccid, sizeof(p->iccid));
    if (wanted(ts, 0x4Fu))
        pl_der_put_tlv(w, 0x4Fu, p->aid, sizeof(p->aid));
    if (wanted(ts, TAG_PROFILE_STATE))
        pl_der_put_int(w, TAG_PROFILE_STATE, p->enabled ? 1 : 0);
    if (has_smr) {
        if (wanted(ts, 0x91u))
            pl_der_put_utf8(w, 0x91u, smr->spn);
        if (wanted(ts, 0x92u))
            pl_der_put_utf8(w, 0x92u, smr->name);
        put_raw(w, ts, smr, PL_SMR_ICON_TYPE);
        put_raw(w, ts, smr, PL_SMR_ICON);
        if (wanted(ts, TAG_PROFILE_CLASS))
            pl_der_put_int(w, TAG_PROFILE_CLASS, profile_class(smr));
        put_raw(w, ts, smr, PL_SMR_NOTIF_CONFIG);
        put_raw(w, ts, smr, PL_SMR_PROFILE_OWNER);
        put_raw(w, ts, smr, PL_SMR_PPR);
        put_raw(w, ts, smr, PL_SMR_SSD_STORED);
    }
    if (p->fallback && wanted(ts, TAG_FALLBACK_ATTRIBUTE))
        pl_der_put_bool(w, TAG_FALLBACK_ATTRIBUTE, true);
    pl_der_end(w, m);
}

static bool matches(const struct pl_euicc_pil_query *q, const struct pl_euicc_prof *p,
                    const struct pl_smr *smr, bool has_smr)
{
    switch (q->search) {
    case PL_SGP32_SEARCH_ISDP_AID:
        return q->aid_len == sizeof(p->aid) && memcmp(q->aid, p->aid, sizeof(p->aid)) == 0;
    case PL_SGP32_SEARCH_ICCID:
        return memcmp(q->iccid, p->iccid, sizeof(p->iccid)) == 0;
    case PL_SGP32_SEARCH_PROFILE_CLASS:
        return (has_smr ? profile_class(smr) : PROFILE_CLASS_OPERATIONAL) == q->profile_class;
    default:
        return true;
    }
}

int pl_euicc_profile_info_put(const struct pl_euicc *e, const struct pl_euicc_pil_query *q,
                              struct pl_wr *out, size_t *count)
{
    struct tag_set ts;
    struct pl_smr smr;

    *count = 0;
    if (q->has_tag_list && tag_set_parse(q->tag_list, q->tag_list_len, &ts) != PL_OK)
        return PL_ERR_MALFORMED;
    for (size_t i = 0; i < e->st.n_prof; i++) {
        const struct pl_euicc_prof *p = &e->st.prof[i];
        /* The metadata was checked at install; a profile without readable metadata still
         * lists its ICCID, AID and state. */
        bool has_smr = pl_smr_decode(p->meta, p->meta_len, &smr) == PL_OK;
        if (!matches(q, p, &smr, has_smr))
            continue;
        put_profile(out, q->has_tag_list ? &ts : NULL, p, &smr, has_smr);
        (*count)++;
    }
    return pl_wr_status(out);
}

int pl_euicc_es10c_list_profile_info(struct pl_euicc *e, const uint8_t *req, size_t len,
                                     struct pl_wr *rsp)
{
    struct pl_tlv t, c, s, tl;
    struct pl_der in, cd;
    struct pl_euicc_pil_query q;
    bool has_crit = false;
    size_t n;

    memset(&q, 0, sizeof(q));
    memset(&s, 0, sizeof(s));
    if (pl_der_open_one(req, len, TAG_PROFILE_INFO_LIST, &t, &in) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (pl_der_optional(&in, 0xA0u, &c, &has_crit) != PL_OK)
        return PL_SW_WRONG_DATA;
    if (has_crit) {
        if (pl_der_enter(&in, &c, &cd) != PL_OK || pl_der_next(&cd, &s) != PL_OK
            || pl_der_finish(&cd) != PL_OK)
            return PL_SW_WRONG_DATA;
    }
    if (pl_der_optional(&in, 0x5Cu, &tl, &q.has_tag_list) != PL_OK || pl_der_finish(&in) != PL_OK)
        return PL_SW_WRONG_DATA;
    q.tag_list = tl.value;
    q.tag_list_len = q.has_tag_list ? tl.len : 0;

    bool bad = false;
    if (has_crit) {
        switch (s.tag) {
        case 0x4Fu:
            q.search = PL_SGP32_SEARCH_ISDP_AID;
            q.aid = s.value;
            q.aid_len = s.len;
            bad = s.len < 1 || s.len > PL_EUICC_AID_LEN;
            break;
        case 0x5Au:
            q.search = PL_SGP32_SEARCH_ICCID;
            bad = s.len != sizeof(q.iccid);
            if (!bad)
                memcpy(q.iccid, s.value, sizeof(q.iccid));
            break;
        case TAG_PROFILE_CLASS:
            q.search = PL_SGP32_SEARCH_PROFILE_CLASS;
            bad = pl_der_get_int(&s, &q.profile_class) != PL_OK;
            break;
        default:
            bad = true;
            break;
        }
    }
    struct pl_wr body;
    int rc = PL_OK;
    pl_wr_init_dyn(&body, PL_EUICC_STATE_MAX);
    if (!bad) {
        rc = pl_euicc_profile_info_put(e, &q, &body, &n);
        /* a tagList that is not a list of tags: incorrectInputValues, nothing listed */
        bad = rc == PL_ERR_MALFORMED;
    }
    if (rc && !bad)
        goto out;
    size_t m = pl_der_begin(rsp, TAG_PROFILE_INFO_LIST);
    if (bad)
        pl_der_put_int(rsp, 0x81u, PIL_INCORRECT_INPUT_VALUES);
    else
        pl_der_put_tlv(rsp, 0xA0u, body.buf, body.len);
    pl_der_end(rsp, m);
    rc = pl_wr_status(rsp);
out:
    pl_wr_free(&body);
    return rc;
}
