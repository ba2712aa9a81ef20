/* GSMA SGP.32 v1.2 §2.11.2.1 EuiccPackageResult ('BF51' explicit CHOICE):
 * euiccPackageResultSigned [0], euiccPackageErrorSigned [1], euiccPackageErrorUnsigned [2],
 * and every EuiccResultData arm.
 *
 * euiccSignEPR / euiccSignEPE cover the DER of the data SEQUENCE followed by the
 * associationToken TLV (v1.1+; v1.0 used eimSignature instead), EIM.md §4.2. They are
 * verified over the received bytes (signed_raw). Tagging: docs/sgp32-codec.md. */
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "sgp32_internal.h"

#include <string.h>

#define TAG_LIST_PROFILE_INFO 0xBF2Du /* [45] SGP32-ProfileInfoListResponse */
#define TAG_SET_DEFAULT_DP    0xBF65u /* [101] SGP32-SetDefaultDpAddressResponse */
#define TAG_PROFILE_INFO      0xE3u   /* [PRIVATE 3] SGP32-ProfileInfo */

/* ---- EuiccResultData ---- */

static int int_arm(const struct pl_tlv *t, struct pl_sgp32_euicc_result *r,
                   enum pl_sgp32_result_kind kind)
{
    r->kind = kind;
    return pl_sgp32i_get_int(t, &r->code);
}

static int result_parse(const struct pl_der *parent, const struct pl_tlv *t,
                        struct pl_sgp32_euicc_result *r)
{
    static const uint32_t profile_tags[] = {TAG_PROFILE_INFO};
    static const uint32_t rat_tags[] = {PL_TAG_SEQUENCE};
    struct pl_der d, l;
    struct pl_tlv arm;
    int rc;

    memset(r, 0, sizeof(*r));
    switch (t->tag) {
    case 0x83u:
        return int_arm(t, r, PL_SGP32_RESULT_ENABLE);
    case 0x84u:
        return int_arm(t, r, PL_SGP32_RESULT_DISABLE);
    case 0x85u:
        return int_arm(t, r, PL_SGP32_RESULT_DELETE);
    case 0x87u:
        return int_arm(t, r, PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE);
    case 0x89u:
        return int_arm(t, r, PL_SGP32_RESULT_DELETE_EIM);
    case 0x8Au:
        return int_arm(t, r, PL_SGP32_RESULT_UPDATE_EIM);
    case 0x8Cu:
        return int_arm(t, r, PL_SGP32_RESULT_ROLLBACK);
    case 0x8Du:
        return int_arm(t, r, PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE);
    case 0x8Eu:
        return int_arm(t, r, PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE);
    case PL_TAG_INTEGER:
        return int_arm(t, r, PL_SGP32_RESULT_PROCESSING_TERMINATED);
    case TAG_LIST_PROFILE_INFO:
        /* [45] CHOICE (explicit) { profileInfoListOk [0] SEQUENCE OF E3, error [1] } */
        r->kind = PL_SGP32_RESULT_LIST_PROFILE_INFO;
        if ((rc = pl_sgp32i_explicit_inner(parent, t, &arm)))
            return rc;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if (arm.tag == 0x81u) {
            r->is_error = true;
            return pl_sgp32i_get_int(&arm, &r->code);
        }
        if (arm.tag != 0xA0u)
            return PL_ERR_DER_TAG;
        return pl_sgp32i_get_list(&d, &arm, profile_tags, 1, PL_SGP32_MAX_LIST, &r->list);
    case 0xA6u: /* getRATResult [6] RulesAuthorisationTable (SEQUENCE OF, implicit) */
        r->kind = PL_SGP32_RESULT_GET_RAT;
        return pl_sgp32i_get_list(parent, t, rat_tags, 1, PL_SGP32_MAX_LIST, &r->list);
    case 0xA8u: /* addEimResult [8] AddEimResult: explicit (untagged CHOICE) */
        r->kind = PL_SGP32_RESULT_ADD_EIM;
        if ((rc = pl_sgp32i_explicit_inner(parent, t, &arm)))
            return rc;
        if (arm.tag == 0x84u) {
            r->has_association_token = true;
            return pl_sgp32i_get_int(&arm, &r->association_token);
        }
        if (arm.tag == PL_TAG_INTEGER)
            return pl_sgp32i_get_int(&arm, &r->code);
        return PL_ERR_DER_TAG;
    case 0xABu: /* listEimResult [11] ListEimResult: explicit; arms [0] list, [1] error */
        r->kind = PL_SGP32_RESULT_LIST_EIM;
        if ((rc = pl_sgp32i_explicit_inner(parent, t, &arm)))
            return rc;
        if (arm.tag == 0x81u) {
            r->is_error = true;
            return pl_sgp32i_get_int(&arm, &r->code);
        }
        if (arm.tag != 0xA0u)
            return PL_ERR_DER_TAG;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_enter(&d, &arm, &l)))
            return rc;
        while (!pl_der_done(&l)) {
            struct pl_tlv e;
            if ((rc = pl_der_next(&l, &e)))
                return rc;
            if (e.tag != PL_TAG_SEQUENCE)
                return PL_ERR_DER_TAG;
            if (r->n_eims >= PL_SGP32_MAX_EIMS)
                return PL_ERR_OVERFLOW;
            if ((rc = pl_sgp32i_eim_id_info_parse(&l, &e, &r->eims[r->n_eims])))
                return rc;
            r->n_eims++;
        }
        return PL_OK;
    case TAG_SET_DEFAULT_DP: { /* BF65 { setDefaultDpAddressResult (automatic [0]) } */
        static const uint32_t known[] = {0x80u};
        struct pl_tlv f;
        r->kind = PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_int(&f, &r->code)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 1);
    }
    default:
        return PL_ERR_DER_TAG;
    }
}

static void result_put(struct pl_wr *w, const struct pl_sgp32_euicc_result *r)
{
    size_t m, l;
    switch (r->kind) {
    case PL_SGP32_RESULT_ENABLE:
    case PL_SGP32_RESULT_DISABLE:
    case PL_SGP32_RESULT_DELETE:
    case PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE:
    case PL_SGP32_RESULT_DELETE_EIM:
    case PL_SGP32_RESULT_UPDATE_EIM:
    case PL_SGP32_RESULT_ROLLBACK:
    case PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE:
    case PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE:
        (void)pl_der_put_int(w, 0x80u | (uint32_t)r->kind, r->code);
        return;
    case PL_SGP32_RESULT_PROCESSING_TERMINATED:
        (void)pl_der_put_int(w, PL_TAG_INTEGER, r->code);
        return;
    case PL_SGP32_RESULT_LIST_PROFILE_INFO:
        m = pl_der_begin(w, TAG_LIST_PROFILE_INFO);
        if (r->is_error)
            (void)pl_der_put_int(w, 0x81u, r->code);
        else
            pl_sgp32i_put_list(w, 0xA0u, &r->list);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_RESULT_GET_RAT:
        pl_sgp32i_put_list(w, 0xA6u, &r->list);
        return;
    case PL_SGP32_RESULT_ADD_EIM:
        m = pl_der_begin(w, 0xA8u);
        if (r->has_association_token)
            (void)pl_der_put_int(w, 0x84u, r->association_token);
        else
            (void)pl_der_put_int(w, PL_TAG_INTEGER, r->code);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_RESULT_LIST_EIM:
        m = pl_der_begin(w, 0xABu);
        if (r->is_error) {
            (void)pl_der_put_int(w, 0x81u, r->code);
        } else if (r->n_eims > PL_SGP32_MAX_EIMS) {
            pl_sgp32i_fail(w);
        } else {
            l = pl_der_begin(w, 0xA0u);
            for (size_t i = 0; i < r->n_eims; i++)
                pl_sgp32i_eim_id_info_put(w, &r->eims[i]);
            pl_sgp32i_end(w, l);
        }
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS:
        m = pl_der_begin(w, TAG_SET_DEFAULT_DP);
        (void)pl_der_put_int(w, 0x80u, r->code);
        pl_sgp32i_end(w, m);
        return;
    default:
        pl_sgp32i_fail(w);
        return;
    }
}

/* ---- data SEQUENCEs ---- */

/* EuiccPackageResultDataSigned / EuiccPackageErrorDataSigned */
static int data_parse(const struct pl_der *parent, const struct pl_tlv *t,
                      struct pl_sgp32_euicc_package_result *res)
{
    static const uint32_t known_result[] = {0x80u, 0x81u, 0x82u, 0x83u, PL_TAG_SEQUENCE};
    static const uint32_t known_error[] = {0x80u, 0x81u, 0x82u, PL_TAG_INTEGER};
    struct pl_der d, l;
    struct pl_tlv f;
    bool present;
    int rc;

    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &res->eim_id)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x81u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_u31(&f, &res->counter)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &res->eim_txid)))
        return rc;
    if (res->kind == PL_SGP32_EPR_ERROR_SIGNED) {
        if ((rc = pl_sgp32i_expect(&d, PL_TAG_INTEGER, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_int(&f, &res->error_code)))
            return rc;
        return pl_sgp32i_seq_end(&d, known_error, 4);
    }
    if ((rc = pl_sgp32i_expect(&d, 0x83u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_u31(&f, &res->seq_number)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_TAG_SEQUENCE, &f)))
        return rc;
    if ((rc = pl_sgp32i_enter(&d, &f, &l)))
        return rc;
    while (!pl_der_done(&l)) {
        struct pl_tlv e;
        if ((rc = pl_der_next(&l, &e)))
            return rc;
        if (res->n_results >= PL_SGP32_MAX_RESULTS)
            return PL_ERR_OVERFLOW;
        if ((rc = result_parse(&l, &e, &res->results[res->n_results])))
            return rc;
        res->n_results++;
    }
    return pl_sgp32i_seq_end(&d, known_result, 5);
}

static void data_put(struct pl_wr *w, const struct pl_sgp32_euicc_package_result *res)
{
    if (res->kind != PL_SGP32_EPR_RESULT_SIGNED && res->kind != PL_SGP32_EPR_ERROR_SIGNED) {
        pl_sgp32i_fail(w);
        return;
    }
    size_t m = pl_der_begin(w, PL_TAG_SEQUENCE);
    pl_sgp32i_put_utf8(w, 0x80u, res->eim_id, 1, PL_SGP32_EIM_ID_MAX);
    pl_sgp32i_put_u31(w, 0x81u, res->counter);
    if (res->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x82u, res->eim_txid, 1, PL_SGP32_TXID_MAX);
    if (res->kind == PL_SGP32_EPR_ERROR_SIGNED) {
        (void)pl_der_put_int(w, PL_TAG_INTEGER, res->error_code);
    } else if (res->n_results > PL_SGP32_MAX_RESULTS) {
        pl_sgp32i_fail(w);
    } else {
        pl_sgp32i_put_u31(w, 0x83u, res->seq_number);
        size_t l = pl_der_begin(w, PL_TAG_SEQUENCE);
        for (size_t i = 0; i < res->n_results; i++)
            result_put(w, &res->results[i]);
        pl_sgp32i_end(w, l);
    }
    pl_sgp32i_end(w, m);
}

static int unsigned_parse(const struct pl_der *parent, const struct pl_tlv *t,
                          struct pl_sgp32_euicc_package_result *res)
{
    static const uint32_t known[] = {0x80u, 0x82u, 0x84u};
    struct pl_der d;
    struct pl_tlv f;
    bool present;
    int rc;

    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &res->eim_id)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &res->eim_txid)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x84u, &f, &res->has_association_token)))
        return rc;
    if (res->has_association_token && (rc = pl_sgp32i_get_int(&f, &res->association_token)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 3);
}

/* ---- EuiccPackageResult ---- */

int pl_sgp32_euicc_package_result_data_encode(const struct pl_sgp32_euicc_package_result *res,
                                              struct pl_wr *w)
{
    if (res == NULL || w == NULL)
        return PL_ERR_INVAL;
    data_put(w, res);
    return pl_wr_status(w);
}

/* Writes BF51 { arm { data, 5F37 sig } } signing in place when key != NULL. */
static int result_write(const struct pl_sgp32_euicc_package_result *res, const uint8_t *sig,
                        size_t sig_len, const int64_t *token, const struct pl_eckey *key,
                        const struct pl_rng *rng, struct pl_wr *w)
{
    uint8_t own[PL_ECDSA_SIG_LEN];
    int rc = PL_ERR_INTERNAL;

    size_t m = pl_der_begin(w, PL_SGP32_TAG_EPR);
    switch (res->kind) {
    case PL_SGP32_EPR_RESULT_SIGNED:
    case PL_SGP32_EPR_ERROR_SIGNED: {
        size_t a = pl_der_begin(w, res->kind == PL_SGP32_EPR_RESULT_SIGNED ? 0xA0u : 0xA1u);
        size_t start = w->len;
        data_put(w, res);
        if ((rc = pl_wr_status(w)))
            goto out;
        if (key != NULL) {
            rc = pl_sgp32i_sign(key, rng, w->buf + start, w->len - start, token, own);
            if (rc) {
                pl_wr_fail(w, rc);
                goto out;
            }
            sig = own;
            sig_len = sizeof(own);
        }
        if (sig == NULL || sig_len == 0 || sig_len > PL_SGP32_SIG_MAX)
            pl_sgp32i_fail(w);
        else
            (void)pl_der_put_tlv(w, PL_SGP32_TAG_SIG, sig, sig_len);
        pl_sgp32i_end(w, a);
        break;
    }
    case PL_SGP32_EPR_ERROR_UNSIGNED: {
        size_t a = pl_der_begin(w, 0xA2u);
        pl_sgp32i_put_utf8(w, 0x80u, res->eim_id, 1, PL_SGP32_EIM_ID_MAX);
        if (res->eim_txid.p)
            pl_sgp32i_put_octets(w, 0x82u, res->eim_txid, 1, PL_SGP32_TXID_MAX);
        if (res->has_association_token)
            (void)pl_der_put_int(w, 0x84u, res->association_token);
        pl_sgp32i_end(w, a);
        break;
    }
    default:
        pl_sgp32i_fail(w);
        break;
    }
    pl_sgp32i_end(w, m);
    rc = pl_wr_status(w);
out:
    memset(own, 0, sizeof(own));
    return rc;
}

int pl_sgp32_euicc_package_result_encode(const struct pl_sgp32_euicc_package_result *res,
                                         const uint8_t *sig, size_t sig_len, struct pl_wr *w)
{
    if (res == NULL || w == NULL)
        return PL_ERR_INVAL;
    return result_write(res, sig, sig_len, NULL, NULL, NULL, w);
}

int pl_sgp32_euicc_package_result_sign(const struct pl_sgp32_euicc_package_result *res,
                                       const int64_t *association_token,
                                       const struct pl_eckey *euicc_key, const struct pl_rng *rng,
                                       struct pl_wr *w)
{
    if (res == NULL || w == NULL)
        return PL_ERR_INVAL;
    if (res->kind != PL_SGP32_EPR_ERROR_UNSIGNED && (euicc_key == NULL || rng == NULL))
        return PL_ERR_INVAL;
    if (res->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        euicc_key = NULL;
    return result_write(res, NULL, 0, association_token, euicc_key, rng, w);
}

int pl_sgp32_euicc_package_result_decode(const uint8_t *buf, size_t len,
                                         struct pl_sgp32_euicc_package_result *res)
{
    static const uint32_t known[] = {PL_TAG_SEQUENCE, PL_SGP32_TAG_SIG};
    struct pl_der d, a;
    struct pl_tlv t, arm, f;
    int rc;

    if (res == NULL)
        return PL_ERR_INVAL;
    memset(res, 0, sizeof(*res));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_EPR, &t, &d)))
        return rc;
    /* [81] CHOICE is explicit: exactly one arm inside BF51. */
    if ((rc = pl_sgp32i_next(&d, &arm)))
        return rc;
    switch (arm.tag) {
    case 0xA0u:
        res->kind = PL_SGP32_EPR_RESULT_SIGNED;
        break;
    case 0xA1u:
        res->kind = PL_SGP32_EPR_ERROR_SIGNED;
        break;
    case 0xA2u:
        res->kind = PL_SGP32_EPR_ERROR_UNSIGNED;
        break;
    default:
        return PL_ERR_DER_TAG; /* incl. BF51 { 30 ... } without the arm tag (EIM.md §1.8) */
    }
    if ((rc = pl_der_finish(&d)))
        return rc;
    if (res->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        return unsigned_parse(&d, &arm, res);
    if ((rc = pl_sgp32i_enter(&d, &arm, &a)))
        return rc;
    if ((rc = pl_sgp32i_expect(&a, PL_TAG_SEQUENCE, &f)))
        return rc;
    if ((rc = data_parse(&a, &f, res)))
        return rc;
    res->signed_raw = pl_sgp32i_raw(&f);
    if ((rc = pl_sgp32i_expect(&a, PL_SGP32_TAG_SIG, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_SIG_MAX, &res->signature)))
        return rc;
    return pl_sgp32i_seq_end(&a, known, 2);
}

int pl_sgp32_euicc_package_result_verify(const struct pl_sgp32_euicc_package_result *res,
                                         const int64_t *association_token,
                                         const struct pl_eckey *euicc_pub)
{
    if (res == NULL || euicc_pub == NULL)
        return PL_ERR_INVAL;
    if (res->kind == PL_SGP32_EPR_ERROR_UNSIGNED)
        return PL_ERR_STATE;
    return pl_sgp32i_verify(euicc_pub, res->signed_raw, association_token, res->signature);
}
