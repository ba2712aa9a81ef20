/* GSMA SGP.32 v1.2 §2.11.1.1 EuiccPackageRequest / EuiccPackageSigned, §2.11.1.1.2 Eco,
 * §2.11.1.1.3 Psmo (ESep, carried in ESipa and ES10b.LoadEuiccPackage).
 *
 * §2.11.1.1: the eIM signs euiccPackageSigned concatenated with the associationToken TLV
 * ('84 01 00' when none is configured); the signature is verified over the bytes exactly as
 * received (signed_raw), never over a re-encoding. Tagging: docs/sgp32-codec.md. */
#include "provline/protocol/sgp32_euicc_package.h"

#include "provline/protocol/der.h"
#include "sgp32_internal.h"

#include <string.h>

#define TAG_LIST_PROFILE_INFO 0xBF2Du /* [45] ProfileInfoListRequest */
#define TAG_SET_DEFAULT_DP    0xBF65u /* [101] SGP32-SetDefaultDpAddressRequest */

/* ---- PSMO ---- */

static int iccid_only_parse(const struct pl_der *parent, const struct pl_tlv *t, uint8_t *iccid)
{
    static const uint32_t known[] = {PL_SGP32_TAG_EID};
    struct pl_der d;
    struct pl_tlv f;
    int rc;
    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_EID, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_fixed(&f, iccid, PL_SGP32_ICCID_LEN)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 1);
}

static int empty_seq_parse(const struct pl_der *parent, const struct pl_tlv *t)
{
    struct pl_der d;
    int rc = pl_sgp32i_enter(parent, t, &d);
    if (rc)
        return rc;
    return pl_sgp32i_seq_end(&d, NULL, 0);
}

/* SGP.22 ProfileInfoListRequest: BF2D { [A0 { 4F | 5A | 95 }] [5C tagList] } */
static int list_profile_info_parse(const struct pl_der *parent, const struct pl_tlv *t,
                                   struct pl_sgp32_psmo *op)
{
    static const uint32_t known[] = {0xA0u, PL_SGP32_TAG_TAGLIST};
    struct pl_der d;
    struct pl_tlv f, arm;
    bool present;
    int rc;
    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    op->list_profile_info.search = PL_SGP32_SEARCH_NONE;
    if ((rc = pl_sgp32i_optional(&d, 0xA0u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
            return rc;
        switch (arm.tag) {
        case 0x4Fu:
            op->list_profile_info.search = PL_SGP32_SEARCH_ISDP_AID;
            rc = pl_sgp32i_get_octets(&arm, 1, 16, &op->list_profile_info.isdp_aid);
            break;
        case PL_SGP32_TAG_EID:
            op->list_profile_info.search = PL_SGP32_SEARCH_ICCID;
            rc = pl_sgp32i_get_fixed(&arm, op->list_profile_info.iccid, PL_SGP32_ICCID_LEN);
            break;
        case 0x95u:
            op->list_profile_info.search = PL_SGP32_SEARCH_PROFILE_CLASS;
            rc = pl_sgp32i_get_int(&arm, &op->list_profile_info.profile_class);
            break;
        default:
            rc = PL_ERR_DER_TAG;
            break;
        }
        if (rc)
            return rc;
    }
    if ((rc = pl_sgp32i_optional(&d, PL_SGP32_TAG_TAGLIST, &f, &present)))
        return rc;
    if (present
        && (rc = pl_sgp32i_get_octets(&f, 0, PL_SGP32_ADDR_MAX, &op->list_profile_info.tag_list)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

static int psmo_parse(const struct pl_der *parent, const struct pl_tlv *t, struct pl_sgp32_psmo *op)
{
    struct pl_der d;
    struct pl_tlv f;
    bool present;
    int rc;

    memset(op, 0, sizeof(*op));
    switch (t->tag) {
    case 0xA3u: { /* enable [3] SEQUENCE { iccid 5A, rollbackFlag NULL OPTIONAL } */
        static const uint32_t known[] = {PL_SGP32_TAG_EID, PL_TAG_NULL};
        op->kind = PL_SGP32_PSMO_ENABLE;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_EID, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_fixed(&f, op->enable.iccid, PL_SGP32_ICCID_LEN)))
            return rc;
        /* A tagged component (iccid) disables automatic tagging: rollbackFlag is '05 00'. */
        if ((rc = pl_sgp32i_optional(&d, PL_TAG_NULL, &f, &op->enable.rollback)))
            return rc;
        if (op->enable.rollback && (rc = pl_sgp32i_get_null(&f)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 2);
    }
    case 0xA4u:
        op->kind = PL_SGP32_PSMO_DISABLE;
        return iccid_only_parse(parent, t, op->profile.iccid);
    case 0xA5u:
        op->kind = PL_SGP32_PSMO_DELETE;
        return iccid_only_parse(parent, t, op->profile.iccid);
    case TAG_LIST_PROFILE_INFO:
        op->kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
        return list_profile_info_parse(parent, t, op);
    case 0xA6u:
        op->kind = PL_SGP32_PSMO_GET_RAT;
        return empty_seq_parse(parent, t);
    case 0xA7u: { /* configureImmediateEnable [7] */
        static const uint32_t known[] = {0x80u, 0x81u, 0x82u};
        op->kind = PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_optional(&d, 0x80u, &f,
                                     &op->configure_immediate_enable.immediate_enable_flag)))
            return rc;
        if (op->configure_immediate_enable.immediate_enable_flag && (rc = pl_sgp32i_get_null(&f)))
            return rc;
        if ((rc = pl_sgp32i_optional(&d, 0x81u, &f, &present)))
            return rc;
        if (present
            && (rc = pl_sgp32i_get_oid(&f, &op->configure_immediate_enable.default_smdp_oid)))
            return rc;
        if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
            return rc;
        if (present
            && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX,
                                        &op->configure_immediate_enable.default_smdp_address)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 3);
    }
    case 0xA8u:
        op->kind = PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE;
        return iccid_only_parse(parent, t, op->profile.iccid);
    case 0xA9u:
        op->kind = PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE;
        return empty_seq_parse(parent, t);
    case TAG_SET_DEFAULT_DP: { /* BF65 { defaultDpAddress (automatic [0]) } */
        static const uint32_t known[] = {0x80u};
        op->kind = PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX,
                                     &op->set_default_dp_address.default_dp_address)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 1);
    }
    default:
        return PL_ERR_DER_TAG;
    }
}

static void iccid_only_put(struct pl_wr *w, uint32_t tag, const uint8_t *iccid)
{
    size_t m = pl_der_begin(w, tag);
    (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, iccid, PL_SGP32_ICCID_LEN);
    pl_sgp32i_end(w, m);
}

static void psmo_put(struct pl_wr *w, const struct pl_sgp32_psmo *op)
{
    size_t m;
    switch (op->kind) {
    case PL_SGP32_PSMO_ENABLE:
        m = pl_der_begin(w, 0xA3u);
        (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, op->enable.iccid, PL_SGP32_ICCID_LEN);
        if (op->enable.rollback)
            (void)pl_der_put_null(w, PL_TAG_NULL);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_PSMO_DISABLE:
        iccid_only_put(w, 0xA4u, op->profile.iccid);
        return;
    case PL_SGP32_PSMO_DELETE:
        iccid_only_put(w, 0xA5u, op->profile.iccid);
        return;
    case PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE:
        iccid_only_put(w, 0xA8u, op->profile.iccid);
        return;
    case PL_SGP32_PSMO_LIST_PROFILE_INFO:
        m = pl_der_begin(w, TAG_LIST_PROFILE_INFO);
        if (op->list_profile_info.search != PL_SGP32_SEARCH_NONE) {
            size_t c = pl_der_begin(w, 0xA0u);
            switch (op->list_profile_info.search) {
            case PL_SGP32_SEARCH_ISDP_AID:
                pl_sgp32i_put_octets(w, 0x4Fu, op->list_profile_info.isdp_aid, 1, 16);
                break;
            case PL_SGP32_SEARCH_ICCID:
                (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, op->list_profile_info.iccid,
                                     PL_SGP32_ICCID_LEN);
                break;
            case PL_SGP32_SEARCH_PROFILE_CLASS:
                (void)pl_der_put_int(w, 0x95u, op->list_profile_info.profile_class);
                break;
            case PL_SGP32_SEARCH_NONE:
            default:
                pl_sgp32i_fail(w);
                break;
            }
            pl_sgp32i_end(w, c);
        }
        if (op->list_profile_info.tag_list.p)
            pl_sgp32i_put_octets(w, PL_SGP32_TAG_TAGLIST, op->list_profile_info.tag_list, 0,
                                 PL_SGP32_ADDR_MAX);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_PSMO_GET_RAT:
        (void)pl_der_put_tlv(w, 0xA6u, NULL, 0);
        return;
    case PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE:
        m = pl_der_begin(w, 0xA7u);
        if (op->configure_immediate_enable.immediate_enable_flag)
            (void)pl_der_put_null(w, 0x80u);
        if (op->configure_immediate_enable.default_smdp_oid.p) {
            struct pl_tlv oid = {0x81u,
                                 false,
                                 op->configure_immediate_enable.default_smdp_oid.p,
                                 op->configure_immediate_enable.default_smdp_oid.len,
                                 NULL,
                                 0};
            if (pl_der_check_oid(&oid) != PL_OK)
                pl_sgp32i_fail(w);
            pl_sgp32i_put_octets(w, 0x81u, op->configure_immediate_enable.default_smdp_oid, 1,
                                 PL_DER_MAX_LEN);
        }
        if (op->configure_immediate_enable.default_smdp_address.p)
            pl_sgp32i_put_utf8(w, 0x82u, op->configure_immediate_enable.default_smdp_address, 0,
                               PL_SGP32_ADDR_MAX);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE:
        (void)pl_der_put_tlv(w, 0xA9u, NULL, 0);
        return;
    case PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS:
        if (op->set_default_dp_address.default_dp_address.p == NULL) {
            pl_sgp32i_fail(w);
            return;
        }
        m = pl_der_begin(w, TAG_SET_DEFAULT_DP);
        pl_sgp32i_put_utf8(w, 0x80u, op->set_default_dp_address.default_dp_address, 0,
                           PL_SGP32_ADDR_MAX);
        pl_sgp32i_end(w, m);
        return;
    default:
        pl_sgp32i_fail(w);
        return;
    }
}

/* ---- eCO ---- */

static int eco_parse(const struct pl_der *parent, const struct pl_tlv *t, struct pl_sgp32_eco *op)
{
    memset(op, 0, sizeof(*op));
    switch (t->tag) {
    case 0xA8u:
        op->kind = PL_SGP32_ECO_ADD_EIM;
        return pl_sgp32i_eim_config_parse(parent, t, &op->eim_config);
    case 0xAAu:
        op->kind = PL_SGP32_ECO_UPDATE_EIM;
        return pl_sgp32i_eim_config_parse(parent, t, &op->eim_config);
    case 0xA9u: { /* deleteEim [9] SEQUENCE { eimId [0] UTF8String } */
        static const uint32_t known[] = {0x80u};
        struct pl_der d;
        struct pl_tlv f;
        int rc;
        op->kind = PL_SGP32_ECO_DELETE_EIM;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &op->delete_eim_id)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 1);
    }
    case 0xABu:
        op->kind = PL_SGP32_ECO_LIST_EIM;
        return empty_seq_parse(parent, t);
    default:
        return PL_ERR_DER_TAG;
    }
}

static void eco_put(struct pl_wr *w, const struct pl_sgp32_eco *op)
{
    size_t m;
    switch (op->kind) {
    case PL_SGP32_ECO_ADD_EIM:
        pl_sgp32i_eim_config_put(w, 0xA8u, &op->eim_config);
        return;
    case PL_SGP32_ECO_UPDATE_EIM:
        pl_sgp32i_eim_config_put(w, 0xAAu, &op->eim_config);
        return;
    case PL_SGP32_ECO_DELETE_EIM:
        m = pl_der_begin(w, 0xA9u);
        pl_sgp32i_put_utf8(w, 0x80u, op->delete_eim_id, 1, PL_SGP32_EIM_ID_MAX);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_ECO_LIST_EIM:
        (void)pl_der_put_tlv(w, 0xABu, NULL, 0);
        return;
    default:
        pl_sgp32i_fail(w);
        return;
    }
}

/* ---- EuiccPackageSigned ---- */

static int package_parse(const struct pl_der *parent, const struct pl_tlv *t,
                         struct pl_sgp32_euicc_package *pkg)
{
    static const uint32_t known[] = {0x80u, PL_SGP32_TAG_EID, 0x81u, 0x82u, 0xA0u, 0xA1u};
    struct pl_der d, l;
    struct pl_tlv f, arm;
    bool present;
    int rc;

    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &pkg->eim_id)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_EID, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_fixed(&f, pkg->eid, PL_SGP32_EID_LEN)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x81u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_u31(&f, &pkg->counter)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &pkg->eim_txid)))
        return rc;
    /* euiccPackage: untagged CHOICE, automatic tags psmoList [0] / ecoList [1]. */
    if ((rc = pl_sgp32i_next(&d, &arm)))
        return rc;
    if (arm.tag == 0xA0u)
        pkg->kind = PL_SGP32_PACKAGE_PSMO;
    else if (arm.tag == 0xA1u)
        pkg->kind = PL_SGP32_PACKAGE_ECO;
    else
        return PL_ERR_DER_TAG;
    if ((rc = pl_sgp32i_enter(&d, &arm, &l)))
        return rc;
    while (!pl_der_done(&l)) {
        struct pl_tlv e;
        if ((rc = pl_der_next(&l, &e)))
            return rc;
        if (pkg->n_ops >= PL_SGP32_MAX_OPS)
            return PL_ERR_OVERFLOW;
        if (pkg->kind == PL_SGP32_PACKAGE_PSMO)
            rc = psmo_parse(&l, &e, &pkg->psmo[pkg->n_ops]);
        else
            rc = eco_parse(&l, &e, &pkg->eco[pkg->n_ops]);
        if (rc)
            return rc;
        pkg->n_ops++;
    }
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

static void package_put(struct pl_wr *w, const struct pl_sgp32_euicc_package *pkg)
{
    if (pkg->n_ops > PL_SGP32_MAX_OPS
        || (pkg->kind != PL_SGP32_PACKAGE_PSMO && pkg->kind != PL_SGP32_PACKAGE_ECO)) {
        pl_sgp32i_fail(w);
        return;
    }
    size_t m = pl_der_begin(w, PL_TAG_SEQUENCE);
    pl_sgp32i_put_utf8(w, 0x80u, pkg->eim_id, 1, PL_SGP32_EIM_ID_MAX);
    (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, pkg->eid, PL_SGP32_EID_LEN);
    pl_sgp32i_put_u31(w, 0x81u, pkg->counter);
    if (pkg->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x82u, pkg->eim_txid, 1, PL_SGP32_TXID_MAX);
    size_t l = pl_der_begin(w, pkg->kind == PL_SGP32_PACKAGE_PSMO ? 0xA0u : 0xA1u);
    for (size_t i = 0; i < pkg->n_ops; i++) {
        if (pkg->kind == PL_SGP32_PACKAGE_PSMO)
            psmo_put(w, &pkg->psmo[i]);
        else
            eco_put(w, &pkg->eco[i]);
    }
    pl_sgp32i_end(w, l);
    pl_sgp32i_end(w, m);
}

int pl_sgp32_euicc_package_signed_encode(const struct pl_sgp32_euicc_package *pkg, struct pl_wr *w)
{
    if (pkg == NULL || w == NULL)
        return PL_ERR_INVAL;
    package_put(w, pkg);
    return pl_wr_status(w);
}

int pl_sgp32_euicc_package_request_encode(const struct pl_sgp32_euicc_package *pkg,
                                          const uint8_t *sig, size_t sig_len, struct pl_wr *w)
{
    if (pkg == NULL || w == NULL || sig == NULL || sig_len == 0 || sig_len > PL_SGP32_SIG_MAX)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_EPR);
    package_put(w, pkg);
    (void)pl_der_put_tlv(w, PL_SGP32_TAG_SIG, sig, sig_len);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_euicc_package_request_sign(const struct pl_sgp32_euicc_package *pkg,
                                        const int64_t *association_token,
                                        const struct pl_eckey *eim_key, const struct pl_rng *rng,
                                        struct pl_wr *w)
{
    uint8_t sig[PL_ECDSA_SIG_LEN];
    int rc = PL_ERR_INTERNAL;

    if (pkg == NULL || w == NULL || eim_key == NULL || rng == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_EPR);
    size_t start = w->len;
    package_put(w, pkg);
    if ((rc = pl_wr_status(w)))
        goto out;
    /* Sign the bytes just written: they are exactly DER(EuiccPackageSigned). */
    if ((rc = pl_sgp32i_sign(eim_key, rng, w->buf + start, w->len - start, association_token,
                             sig))) {
        pl_wr_fail(w, rc);
        goto out;
    }
    (void)pl_der_put_tlv(w, PL_SGP32_TAG_SIG, sig, sizeof(sig));
    pl_sgp32i_end(w, m);
    rc = pl_wr_status(w);
out:
    memset(sig, 0, sizeof(sig));
    return rc;
}

int pl_sgp32_euicc_package_request_decode(const uint8_t *buf, size_t len,
                                          struct pl_sgp32_euicc_package_request *req)
{
    static const uint32_t known[] = {PL_TAG_SEQUENCE, PL_SGP32_TAG_SIG};
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;

    if (req == NULL)
        return PL_ERR_INVAL;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_EPR, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_TAG_SEQUENCE, &f)))
        return rc;
    if ((rc = package_parse(&d, &f, &req->pkg)))
        return rc;
    req->signed_raw = pl_sgp32i_raw(&f);
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_SIG, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_SIG_MAX, &req->signature)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

int pl_sgp32_euicc_package_request_verify(const struct pl_sgp32_euicc_package_request *req,
                                          const int64_t *association_token,
                                          const struct pl_eckey *eim_pub)
{
    if (req == NULL || eim_pub == NULL)
        return PL_ERR_INVAL;
    return pl_sgp32i_verify(eim_pub, req->signed_raw, association_token, req->signature);
}
