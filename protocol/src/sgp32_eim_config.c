/* GSMA SGP.32 v1.2 §2.11.1.1.1 EimConfigurationData, §5.9.4 ES10b.AddInitialEim ('BF57'),
 * §5.9.18 ES10b.GetEimConfigurationData ('BF55'); EimIdInfo (§2.11.2.1, ListEimResult).
 * Tagging per SGP32Definitions (AUTOMATIC TAGS): docs/sgp32-codec.md. */
#include "provline/protocol/sgp32_eim_config.h"

#include "provline/protocol/der.h"
#include "sgp32_internal.h"

#include <string.h>

#define TAG_ADD_INITIAL_EIM 0xBF57u
#define TAG_GET_EIM_CONFIG  0xBF55u
#define SKI_MAX             64u /* [D] SubjectKeyIdentifier octets (20 in practice) */

/* ---- eimPublicKeyData / trustedPublicKeyDataTls ---- */

static int key_data_parse(const struct pl_der *parent, const struct pl_tlv *outer,
                          struct pl_sgp32_key_data *kd)
{
    struct pl_der c;
    struct pl_tlv arm;
    int rc;

    if ((rc = pl_sgp32i_enter(parent, outer, &c)))
        return rc;
    if ((rc = pl_sgp32i_next(&c, &arm)))
        return rc;
    if ((rc = pl_der_finish(&c)))
        return rc;
    if (arm.tag == 0xA0u)
        kd->kind = PL_SGP32_KEY_SPKI;
    else if (arm.tag == 0xA1u)
        kd->kind = PL_SGP32_KEY_CERT;
    else
        return PL_ERR_DER_TAG;
    return pl_sgp32i_x509_body(&c, &arm, kd->kind == PL_SGP32_KEY_CERT, &kd->body);
}

static void key_data_put(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_key_data *kd)
{
    if (kd->kind != PL_SGP32_KEY_SPKI && kd->kind != PL_SGP32_KEY_CERT) {
        pl_sgp32i_fail(w);
        return;
    }
    if (kd->body.p == NULL
        || pl_sgp32i_check_x509_body(kd->body.p, kd->body.len, kd->kind == PL_SGP32_KEY_CERT)
               != PL_OK) {
        pl_sgp32i_fail(w);
        return;
    }
    size_t m = pl_der_begin(w, tag);
    (void)pl_der_put_tlv(w, kd->kind == PL_SGP32_KEY_SPKI ? 0xA0u : 0xA1u, kd->body.p,
                         kd->body.len);
    pl_sgp32i_end(w, m);
}

int pl_sgp32_key_data_from_der(enum pl_sgp32_key_kind kind, const uint8_t *der, size_t len,
                               struct pl_sgp32_key_data *kd)
{
    struct pl_tlv t;
    int rc;
    if (kd == NULL || der == NULL || (kind != PL_SGP32_KEY_SPKI && kind != PL_SGP32_KEY_CERT))
        return PL_ERR_INVAL;
    if ((rc = pl_der_parse_one(der, len, PL_TAG_SEQUENCE, &t)))
        return rc;
    if ((rc = pl_sgp32i_check_x509_body(t.value, t.len, kind == PL_SGP32_KEY_CERT)))
        return rc;
    kd->kind = kind;
    kd->body = pl_sgp32i_value(&t);
    return PL_OK;
}

/* ---- EimConfigurationData ---- */

int pl_sgp32i_eim_config_parse(const struct pl_der *parent, const struct pl_tlv *t,
                               struct pl_sgp32_eim_config *cfg)
{
    static const uint32_t known[] = {0x80u, 0x81u, 0x82u, 0x83u, 0x84u,
                                     0xA5u, 0xA6u, 0x87u, 0x88u, 0x89u};
    struct pl_der d;
    struct pl_tlv f;
    bool present;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &cfg->eim_id)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x81u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX, &cfg->eim_fqdn)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &cfg->has_eim_id_type)))
        return rc;
    if (cfg->has_eim_id_type && (rc = pl_sgp32i_get_int(&f, &cfg->eim_id_type)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x83u, &f, &cfg->has_counter)))
        return rc;
    if (cfg->has_counter && (rc = pl_sgp32i_get_u31(&f, &cfg->counter)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x84u, &f, &cfg->has_association_token)))
        return rc;
    if (cfg->has_association_token && (rc = pl_sgp32i_get_int(&f, &cfg->association_token)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA5u, &f, &present)))
        return rc;
    if (present && (rc = key_data_parse(&d, &f, &cfg->eim_public_key_data)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA6u, &f, &present)))
        return rc;
    if (present && (rc = key_data_parse(&d, &f, &cfg->trusted_public_key_data_tls)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x87u, &f, &cfg->has_supported_protocol)))
        return rc;
    if (cfg->has_supported_protocol && (rc = pl_sgp32i_get_bits(&f, &cfg->supported_protocol)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x88u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, SKI_MAX, &cfg->euicc_ci_pkid)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x89u, &f, &cfg->indirect_profile_download)))
        return rc;
    if (cfg->indirect_profile_download && (rc = pl_sgp32i_get_null(&f)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

void pl_sgp32i_eim_config_put(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_eim_config *cfg)
{
    size_t m = pl_der_begin(w, tag);
    pl_sgp32i_put_utf8(w, 0x80u, cfg->eim_id, 1, PL_SGP32_EIM_ID_MAX);
    if (cfg->eim_fqdn.p)
        pl_sgp32i_put_utf8(w, 0x81u, cfg->eim_fqdn, 0, PL_SGP32_ADDR_MAX);
    if (cfg->has_eim_id_type)
        (void)pl_der_put_int(w, 0x82u, cfg->eim_id_type);
    if (cfg->has_counter)
        pl_sgp32i_put_u31(w, 0x83u, cfg->counter);
    if (cfg->has_association_token)
        (void)pl_der_put_int(w, 0x84u, cfg->association_token);
    if (cfg->eim_public_key_data.kind != PL_SGP32_KEY_NONE)
        key_data_put(w, 0xA5u, &cfg->eim_public_key_data);
    if (cfg->trusted_public_key_data_tls.kind != PL_SGP32_KEY_NONE)
        key_data_put(w, 0xA6u, &cfg->trusted_public_key_data_tls);
    if (cfg->has_supported_protocol)
        pl_sgp32i_put_bits(w, 0x87u, cfg->supported_protocol);
    if (cfg->euicc_ci_pkid.p)
        pl_sgp32i_put_octets(w, 0x88u, cfg->euicc_ci_pkid, 1, SKI_MAX);
    if (cfg->indirect_profile_download)
        (void)pl_der_put_null(w, 0x89u);
    pl_sgp32i_end(w, m);
}

int pl_sgp32_eim_config_encode(const struct pl_sgp32_eim_config *cfg, struct pl_wr *w)
{
    if (cfg == NULL || w == NULL)
        return PL_ERR_INVAL;
    pl_sgp32i_eim_config_put(w, PL_TAG_SEQUENCE, cfg);
    return pl_wr_status(w);
}

int pl_sgp32_eim_config_decode(const uint8_t *buf, size_t len, struct pl_sgp32_eim_config *cfg)
{
    struct pl_der top;
    struct pl_tlv t;
    int rc;
    if (cfg == NULL || (buf == NULL && len != 0))
        return PL_ERR_INVAL;
    if ((rc = pl_der_parse_one(buf, len, PL_TAG_SEQUENCE, &t)))
        return rc;
    pl_der_init(&top, buf, len);
    return pl_sgp32i_eim_config_parse(&top, &t, cfg);
}

/* ---- EimIdInfo ---- */

int pl_sgp32i_eim_id_info_parse(const struct pl_der *parent, const struct pl_tlv *t,
                                struct pl_sgp32_eim_id_info *info)
{
    static const uint32_t known[] = {0x80u, 0x82u};
    struct pl_der d;
    struct pl_tlv f;
    int rc;

    memset(info, 0, sizeof(*info));
    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_utf8(&f, 1, PL_SGP32_EIM_ID_MAX, &info->eim_id)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &info->has_eim_id_type)))
        return rc;
    if (info->has_eim_id_type && (rc = pl_sgp32i_get_int(&f, &info->eim_id_type)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

void pl_sgp32i_eim_id_info_put(struct pl_wr *w, const struct pl_sgp32_eim_id_info *info)
{
    size_t m = pl_der_begin(w, PL_TAG_SEQUENCE);
    pl_sgp32i_put_utf8(w, 0x80u, info->eim_id, 1, PL_SGP32_EIM_ID_MAX);
    if (info->has_eim_id_type)
        (void)pl_der_put_int(w, 0x82u, info->eim_id_type);
    pl_sgp32i_end(w, m);
}

/* ---- SEQUENCE OF EimConfigurationData under [0] ---- */

static int config_list_parse(const struct pl_der *parent, const struct pl_tlv *t,
                             struct pl_sgp32_eim_config *eims, size_t *n)
{
    struct pl_der l;
    int rc;
    *n = 0;
    if ((rc = pl_sgp32i_enter(parent, t, &l)))
        return rc;
    while (!pl_der_done(&l)) {
        struct pl_tlv e;
        if ((rc = pl_der_next(&l, &e)))
            return rc;
        if (e.tag != PL_TAG_SEQUENCE)
            return PL_ERR_DER_TAG;
        if (*n >= PL_SGP32_MAX_EIMS)
            return PL_ERR_OVERFLOW;
        if ((rc = pl_sgp32i_eim_config_parse(&l, &e, &eims[*n])))
            return rc;
        (*n)++;
    }
    return PL_OK;
}

static void config_list_put(struct pl_wr *w, const struct pl_sgp32_eim_config *eims, size_t n)
{
    if (n > PL_SGP32_MAX_EIMS) {
        pl_sgp32i_fail(w);
        return;
    }
    size_t m = pl_der_begin(w, 0xA0u);
    for (size_t i = 0; i < n; i++)
        pl_sgp32i_eim_config_put(w, PL_TAG_SEQUENCE, &eims[i]);
    pl_sgp32i_end(w, m);
}

/* ---- AddInitialEim (§5.9.4) ---- */

int pl_sgp32_add_initial_eim_request_encode(const struct pl_sgp32_add_initial_eim_request *req,
                                            struct pl_wr *w)
{
    if (req == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, TAG_ADD_INITIAL_EIM);
    config_list_put(w, req->eims, req->n_eims);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_add_initial_eim_request_decode(const uint8_t *buf, size_t len,
                                            struct pl_sgp32_add_initial_eim_request *req)
{
    static const uint32_t known[] = {0xA0u};
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;
    if (req == NULL)
        return PL_ERR_INVAL;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_der_open_one(buf, len, TAG_ADD_INITIAL_EIM, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0xA0u, &f)))
        return rc;
    if ((rc = config_list_parse(&d, &f, req->eims, &req->n_eims)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 1);
}

int pl_sgp32_add_initial_eim_response_encode(const struct pl_sgp32_add_initial_eim_response *rsp,
                                             struct pl_wr *w)
{
    if (rsp == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, TAG_ADD_INITIAL_EIM);
    if (rsp->is_error) {
        (void)pl_der_put_int(w, 0x81u, rsp->error_code);
    } else if (rsp->n_results > PL_SGP32_MAX_EIMS) {
        pl_sgp32i_fail(w);
    } else {
        size_t l = pl_der_begin(w, 0xA0u);
        for (size_t i = 0; i < rsp->n_results; i++) {
            if (rsp->results[i].has_association_token)
                (void)pl_der_put_int(w, 0x84u, rsp->results[i].association_token);
            else
                (void)pl_der_put_null(w, PL_TAG_NULL);
        }
        pl_sgp32i_end(w, l);
    }
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_add_initial_eim_response_decode(const uint8_t *buf, size_t len,
                                             struct pl_sgp32_add_initial_eim_response *rsp)
{
    struct pl_der d, l;
    struct pl_tlv t, arm;
    int rc;
    if (rsp == NULL)
        return PL_ERR_INVAL;
    memset(rsp, 0, sizeof(*rsp));
    if ((rc = pl_der_open_one(buf, len, TAG_ADD_INITIAL_EIM, &t, &d)))
        return rc;
    /* [87] CHOICE is explicit: exactly one arm inside BF57. */
    if ((rc = pl_sgp32i_next(&d, &arm)))
        return rc;
    if ((rc = pl_der_finish(&d)))
        return rc;
    if (arm.tag == 0x81u) {
        rsp->is_error = true;
        return pl_sgp32i_get_int(&arm, &rsp->error_code);
    }
    if (arm.tag != 0xA0u)
        return PL_ERR_DER_TAG;
    if ((rc = pl_sgp32i_enter(&d, &arm, &l)))
        return rc;
    while (!pl_der_done(&l)) {
        struct pl_tlv e;
        if ((rc = pl_der_next(&l, &e)))
            return rc;
        if (rsp->n_results >= PL_SGP32_MAX_EIMS)
            return PL_ERR_OVERFLOW;
        struct pl_sgp32_add_initial_eim_entry *r = &rsp->results[rsp->n_results];
        if (e.tag == 0x84u) {
            r->has_association_token = true;
            rc = pl_sgp32i_get_int(&e, &r->association_token);
        } else if (e.tag == PL_TAG_NULL) {
            rc = pl_sgp32i_get_null(&e);
        } else {
            rc = PL_ERR_DER_TAG;
        }
        if (rc)
            return rc;
        rsp->n_results++;
    }
    return PL_OK;
}

/* ---- GetEimConfigurationData (§5.9.18) ---- */

int pl_sgp32_get_eim_config_request_encode(const struct pl_sgp32_get_eim_config_request *req,
                                           struct pl_wr *w)
{
    if (req == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, TAG_GET_EIM_CONFIG);
    if (req->eim_id.p) {
        /* searchCriteria: automatic [0], explicit because it is an untagged CHOICE. */
        size_t c = pl_der_begin(w, 0xA0u);
        pl_sgp32i_put_utf8(w, 0x80u, req->eim_id, 1, PL_SGP32_EIM_ID_MAX);
        pl_sgp32i_end(w, c);
    }
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_get_eim_config_request_decode(const uint8_t *buf, size_t len,
                                           struct pl_sgp32_get_eim_config_request *req)
{
    static const uint32_t known[] = {0xA0u};
    struct pl_der d;
    struct pl_tlv t, f, arm;
    bool present;
    int rc;
    if (req == NULL)
        return PL_ERR_INVAL;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_der_open_one(buf, len, TAG_GET_EIM_CONFIG, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA0u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
            return rc;
        if (arm.tag != 0x80u)
            return PL_ERR_DER_TAG;
        if ((rc = pl_sgp32i_get_utf8(&arm, 1, PL_SGP32_EIM_ID_MAX, &req->eim_id)))
            return rc;
    }
    return pl_sgp32i_seq_end(&d, known, 1);
}

int pl_sgp32_get_eim_config_response_encode(const struct pl_sgp32_get_eim_config_response *rsp,
                                            struct pl_wr *w)
{
    if (rsp == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, TAG_GET_EIM_CONFIG);
    config_list_put(w, rsp->eims, rsp->n_eims);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_get_eim_config_response_decode(const uint8_t *buf, size_t len,
                                            struct pl_sgp32_get_eim_config_response *rsp)
{
    static const uint32_t known[] = {0xA0u};
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;
    if (rsp == NULL)
        return PL_ERR_INVAL;
    memset(rsp, 0, sizeof(*rsp));
    if ((rc = pl_der_open_one(buf, len, TAG_GET_EIM_CONFIG, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0xA0u, &f)))
        return rc;
    if ((rc = config_list_parse(&d, &f, rsp->eims, &rsp->n_eims)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 1);
}
