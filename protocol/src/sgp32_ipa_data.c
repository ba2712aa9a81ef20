/* GSMA SGP.32 v1.2 §2.11.1.2 IpaEuiccDataRequest, §2.11.2.2 IpaEuiccDataResponse /
 * IpaEuiccData, §2.11.1.3 ProfileDownloadTriggerRequest, §2.11.2.3
 * ProfileDownloadTriggerResult, §2.11.1.4 EimAcknowledgements.
 * Tagging per SGP32Definitions (AUTOMATIC TAGS): docs/sgp32-codec.md. */
#include "provline/protocol/sgp32_ipa_data.h"

#include "provline/protocol/der.h"
#include "sgp32_internal.h"

#include <string.h>

#define CIPKID_MAX      64u /* [D] euiccCiPKIdentifierToBeUsed octets */
#define TAG_EUICC_INFO1 0xBF20u
#define TAG_EUICC_INFO2 0xBF22u

/* ---- IpaEuiccDataRequest (§2.11.1.2) ---- */

int pl_sgp32_ipa_euicc_data_request_encode(const struct pl_sgp32_ipa_euicc_data_request *req,
                                           struct pl_wr *w)
{
    size_t c;
    if (req == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_IPA_DATA);
    if (req->tag_list.p == NULL)
        pl_sgp32i_fail(w);
    pl_sgp32i_put_octets(w, PL_SGP32_TAG_TAGLIST, req->tag_list, 0, PL_SGP32_ADDR_MAX);
    if (req->euicc_ci_pkid.p)
        pl_sgp32i_put_octets(w, PL_TAG_OCTET_STRING, req->euicc_ci_pkid, 1, CIPKID_MAX);
    switch (req->notif_search) {
    case PL_SGP32_NOTIF_SEARCH_NONE:
        break;
    case PL_SGP32_NOTIF_SEARCH_SEQ:
        c = pl_der_begin(w, 0xA1u);
        pl_sgp32i_put_u31(w, 0x80u, req->notif_seq);
        pl_sgp32i_end(w, c);
        break;
    case PL_SGP32_NOTIF_SEARCH_PMO:
        c = pl_der_begin(w, 0xA1u);
        pl_sgp32i_put_bits(w, 0x81u, req->notif_events);
        pl_sgp32i_end(w, c);
        break;
    default:
        pl_sgp32i_fail(w);
        break;
    }
    if (req->has_epr_search) {
        c = pl_der_begin(w, 0xA2u);
        pl_sgp32i_put_u31(w, 0x80u, req->epr_seq);
        pl_sgp32i_end(w, c);
    }
    if (req->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x83u, req->eim_txid, 1, PL_SGP32_TXID_MAX);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_ipa_euicc_data_request_decode(const uint8_t *buf, size_t len,
                                           struct pl_sgp32_ipa_euicc_data_request *req)
{
    static const uint32_t known[] = {PL_SGP32_TAG_TAGLIST, PL_TAG_OCTET_STRING, 0xA1u, 0xA2u,
                                     0x83u};
    struct pl_der d;
    struct pl_tlv t, f, arm;
    bool present;
    int rc;

    if (req == NULL)
        return PL_ERR_INVAL;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_IPA_DATA, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_TAGLIST, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 0, PL_SGP32_ADDR_MAX, &req->tag_list)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, PL_TAG_OCTET_STRING, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, CIPKID_MAX, &req->euicc_ci_pkid)))
        return rc;
    /* searchCriteriaNotification [1] CHOICE: explicit. */
    if ((rc = pl_sgp32i_optional(&d, 0xA1u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
            return rc;
        if (arm.tag == 0x80u) {
            req->notif_search = PL_SGP32_NOTIF_SEARCH_SEQ;
            rc = pl_sgp32i_get_u31(&arm, &req->notif_seq);
        } else if (arm.tag == 0x81u) {
            req->notif_search = PL_SGP32_NOTIF_SEARCH_PMO;
            rc = pl_sgp32i_get_bits(&arm, &req->notif_events);
        } else {
            rc = PL_ERR_DER_TAG;
        }
        if (rc)
            return rc;
    }
    /* searchCriteriaEuiccPackageResult [2] CHOICE { seqNumber [0] }: explicit. */
    if ((rc = pl_sgp32i_optional(&d, 0xA2u, &f, &req->has_epr_search)))
        return rc;
    if (req->has_epr_search) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
            return rc;
        if (arm.tag != 0x80u)
            return PL_ERR_DER_TAG;
        if ((rc = pl_sgp32i_get_u31(&arm, &req->epr_seq)))
            return rc;
    }
    if ((rc = pl_sgp32i_optional(&d, 0x83u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &req->eim_txid)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

/* ---- IpaEuiccDataResponse (§2.11.2.2) ---- */

static const uint32_t notif_tags[] = {PL_SGP32_TAG_PIR, PL_TAG_SEQUENCE, 0xA0u, 0xA1u};
static const uint32_t epr_tags[] = {PL_SGP32_TAG_EPR};

static int ipa_data_parse(const struct pl_der *parent, const struct pl_tlv *t,
                          struct pl_sgp32_ipa_euicc_data *data)
{
    static const uint32_t known[] = {0xA0u, 0x81u, 0xA2u, TAG_EUICC_INFO1, TAG_EUICC_INFO2, 0x83u,
                                     0x84u, 0xA5u, 0xA6u, 0x87u,           0xA8u,           0xA9u};
    struct pl_der d, c;
    struct pl_tlv f, g;
    bool present;
    int rc;

    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA0u, &f, &present)))
        return rc;
    if (present
        && (rc =
                pl_sgp32i_get_list(&d, &f, notif_tags, 4, PL_SGP32_MAX_LIST, &data->notifications)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x81u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX, &data->default_smdp_address)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA2u, &f, &present)))
        return rc;
    if (present
        && (rc = pl_sgp32i_get_list(&d, &f, epr_tags, 1, PL_SGP32_MAX_LIST, &data->epr_list)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, TAG_EUICC_INFO1, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_der_validate(f.raw, f.raw_len, 0)))
            return rc;
        data->euicc_info1 = pl_sgp32i_raw(&f);
    }
    if ((rc = pl_sgp32i_optional(&d, TAG_EUICC_INFO2, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_der_validate(f.raw, f.raw_len, 0)))
            return rc;
        data->euicc_info2 = pl_sgp32i_raw(&f);
    }
    if ((rc = pl_sgp32i_optional(&d, 0x83u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX, &data->root_smds_address)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x84u, &f, &data->has_association_token)))
        return rc;
    if (data->has_association_token && (rc = pl_sgp32i_get_int(&f, &data->association_token)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA5u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_x509_body(&d, &f, true, &data->eum_certificate)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA6u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_x509_body(&d, &f, true, &data->euicc_certificate)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x87u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &data->eim_txid)))
        return rc;
    /* ipaCapabilities [8] IpaCapabilities (implicit SEQUENCE) { [0] BIT STRING, [1] OPT } */
    if ((rc = pl_sgp32i_optional(&d, 0xA8u, &f, &data->has_ipa_capabilities)))
        return rc;
    if (data->has_ipa_capabilities) {
        static const uint32_t caps_known[] = {0x80u, 0x81u};
        if ((rc = pl_sgp32i_enter(&d, &f, &c)))
            return rc;
        if ((rc = pl_sgp32i_expect(&c, 0x80u, &g)))
            return rc;
        if ((rc = pl_sgp32i_get_bits(&g, &data->ipa_features)))
            return rc;
        if ((rc = pl_sgp32i_optional(&c, 0x81u, &g, &data->has_ipa_supported_protocols)))
            return rc;
        if (data->has_ipa_supported_protocols
            && (rc = pl_sgp32i_get_bits(&g, &data->ipa_supported_protocols)))
            return rc;
        if ((rc = pl_sgp32i_seq_end(&c, caps_known, 2)))
            return rc;
    }
    /* deviceInfo [9] DeviceInfo (SGP.22, implicit SEQUENCE): kept as contents. */
    if ((rc = pl_sgp32i_optional(&d, 0xA9u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_der_validate(f.raw, f.raw_len, 0)))
            return rc;
        data->device_info = pl_sgp32i_value(&f);
    }
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

/* Contents octets that must be a series of valid DER TLVs (re-tagged SEQUENCE contents). */
static void put_contents(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf body)
{
    struct pl_der d;
    pl_der_init(&d, body.p, body.len);
    while (!pl_der_done(&d)) {
        struct pl_tlv t;
        if (pl_der_next(&d, &t) != PL_OK || pl_der_validate(t.raw, t.raw_len, 0) != PL_OK) {
            pl_sgp32i_fail(w);
            return;
        }
    }
    (void)pl_der_put_tlv(w, tag, body.p, body.len);
}

static void ipa_data_put(struct pl_wr *w, const struct pl_sgp32_ipa_euicc_data *data)
{
    size_t m = pl_der_begin(w, 0xA0u);
    if (data->notifications.p)
        pl_sgp32i_put_list(w, 0xA0u, &data->notifications);
    if (data->default_smdp_address.p)
        pl_sgp32i_put_utf8(w, 0x81u, data->default_smdp_address, 0, PL_SGP32_ADDR_MAX);
    if (data->epr_list.p)
        pl_sgp32i_put_list(w, 0xA2u, &data->epr_list);
    if (data->euicc_info1.p)
        pl_sgp32i_put_raw(w, TAG_EUICC_INFO1, data->euicc_info1);
    if (data->euicc_info2.p)
        pl_sgp32i_put_raw(w, TAG_EUICC_INFO2, data->euicc_info2);
    if (data->root_smds_address.p)
        pl_sgp32i_put_utf8(w, 0x83u, data->root_smds_address, 0, PL_SGP32_ADDR_MAX);
    if (data->has_association_token)
        (void)pl_der_put_int(w, 0x84u, data->association_token);
    if (data->eum_certificate.p) {
        if (pl_sgp32i_check_x509_body(data->eum_certificate.p, data->eum_certificate.len, true))
            pl_sgp32i_fail(w);
        (void)pl_der_put_tlv(w, 0xA5u, data->eum_certificate.p, data->eum_certificate.len);
    }
    if (data->euicc_certificate.p) {
        if (pl_sgp32i_check_x509_body(data->euicc_certificate.p, data->euicc_certificate.len, true))
            pl_sgp32i_fail(w);
        (void)pl_der_put_tlv(w, 0xA6u, data->euicc_certificate.p, data->euicc_certificate.len);
    }
    if (data->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x87u, data->eim_txid, 1, PL_SGP32_TXID_MAX);
    if (data->has_ipa_capabilities) {
        size_t c = pl_der_begin(w, 0xA8u);
        pl_sgp32i_put_bits(w, 0x80u, data->ipa_features);
        if (data->has_ipa_supported_protocols)
            pl_sgp32i_put_bits(w, 0x81u, data->ipa_supported_protocols);
        pl_sgp32i_end(w, c);
    }
    if (data->device_info.p)
        put_contents(w, 0xA9u, data->device_info);
    pl_sgp32i_end(w, m);
}

int pl_sgp32_ipa_euicc_data_response_encode(const struct pl_sgp32_ipa_euicc_data_response *rsp,
                                            struct pl_wr *w)
{
    if (rsp == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_IPA_DATA);
    if (rsp->is_error) {
        size_t c = pl_der_begin(w, 0xA1u);
        if (rsp->error_txid.p)
            pl_sgp32i_put_octets(w, 0x80u, rsp->error_txid, 1, PL_SGP32_TXID_MAX);
        (void)pl_der_put_int(w, PL_TAG_INTEGER, rsp->error_code);
        pl_sgp32i_end(w, c);
    } else {
        ipa_data_put(w, &rsp->data);
    }
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_ipa_euicc_data_response_decode(const uint8_t *buf, size_t len,
                                            struct pl_sgp32_ipa_euicc_data_response *rsp)
{
    static const uint32_t known[] = {0x80u, PL_TAG_INTEGER};
    struct pl_der d, e;
    struct pl_tlv t, arm, f;
    bool present;
    int rc;

    if (rsp == NULL)
        return PL_ERR_INVAL;
    memset(rsp, 0, sizeof(*rsp));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_IPA_DATA, &t, &d)))
        return rc;
    /* [82] CHOICE is explicit; arms get automatic tags [0] ipaEuiccData, [1] error. */
    if ((rc = pl_sgp32i_next(&d, &arm)))
        return rc;
    if ((rc = pl_der_finish(&d)))
        return rc;
    if (arm.tag == 0xA0u)
        return ipa_data_parse(&d, &arm, &rsp->data);
    if (arm.tag != 0xA1u)
        return PL_ERR_DER_TAG;
    rsp->is_error = true;
    if ((rc = pl_sgp32i_enter(&d, &arm, &e)))
        return rc;
    if ((rc = pl_sgp32i_optional(&e, 0x80u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &rsp->error_txid)))
        return rc;
    if ((rc = pl_sgp32i_expect(&e, PL_TAG_INTEGER, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_int(&f, &rsp->error_code)))
        return rc;
    return pl_sgp32i_seq_end(&e, known, 2);
}

/* ---- ProfileDownloadTriggerRequest (§2.11.1.3) ---- */

int pl_sgp32_profile_download_trigger_request_encode(
    const struct pl_sgp32_profile_download_trigger_request *req, struct pl_wr *w)
{
    size_t c, s;
    if (req == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_PDT);
    /* profileDownloadData [0] ProfileDownloadData: explicit (untagged CHOICE). */
    switch (req->kind) {
    case PL_SGP32_PDD_NONE:
        break;
    case PL_SGP32_PDD_ACTIVATION_CODE:
        c = pl_der_begin(w, 0xA0u);
        if (req->activation_code.p == NULL)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_utf8(w, 0x80u, req->activation_code, 0, PL_SGP32_AC_MAX);
        pl_sgp32i_end(w, c);
        break;
    case PL_SGP32_PDD_CONTACT_DEFAULT_SMDP:
        c = pl_der_begin(w, 0xA0u);
        (void)pl_der_put_null(w, 0x81u);
        pl_sgp32i_end(w, c);
        break;
    case PL_SGP32_PDD_CONTACT_SMDS:
        c = pl_der_begin(w, 0xA0u);
        s = pl_der_begin(w, 0xA2u);
        if (req->smds_address.p)
            pl_sgp32i_put_utf8(w, 0x80u, req->smds_address, 0, PL_SGP32_ADDR_MAX);
        pl_sgp32i_end(w, s);
        pl_sgp32i_end(w, c);
        break;
    default:
        pl_sgp32i_fail(w);
        break;
    }
    if (req->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x82u, req->eim_txid, 1, PL_SGP32_TXID_MAX);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_profile_download_trigger_request_decode(
    const uint8_t *buf, size_t len, struct pl_sgp32_profile_download_trigger_request *req)
{
    static const uint32_t known[] = {0xA0u, 0x82u};
    static const uint32_t smds_known[] = {0x80u};
    struct pl_der d, s;
    struct pl_tlv t, f, arm, g;
    bool present;
    int rc;

    if (req == NULL)
        return PL_ERR_INVAL;
    memset(req, 0, sizeof(*req));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_PDT, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0xA0u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
            return rc;
        switch (arm.tag) {
        case 0x80u:
            req->kind = PL_SGP32_PDD_ACTIVATION_CODE;
            rc = pl_sgp32i_get_utf8(&arm, 0, PL_SGP32_AC_MAX, &req->activation_code);
            break;
        case 0x81u:
            req->kind = PL_SGP32_PDD_CONTACT_DEFAULT_SMDP;
            rc = pl_sgp32i_get_null(&arm);
            break;
        case 0xA2u: {
            struct pl_der c;
            req->kind = PL_SGP32_PDD_CONTACT_SMDS;
            if ((rc = pl_sgp32i_enter(&d, &f, &c)))
                return rc;
            if ((rc = pl_sgp32i_enter(&c, &arm, &s)))
                return rc;
            if ((rc = pl_sgp32i_optional(&s, 0x80u, &g, &present)))
                return rc;
            if (present && (rc = pl_sgp32i_get_utf8(&g, 0, PL_SGP32_ADDR_MAX, &req->smds_address)))
                return rc;
            rc = pl_sgp32i_seq_end(&s, smds_known, 1);
            break;
        }
        default:
            rc = PL_ERR_DER_TAG;
            break;
        }
        if (rc)
            return rc;
    }
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &req->eim_txid)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

/* ---- ProfileDownloadTriggerResult (§2.11.2.3) ---- */

int pl_sgp32_profile_download_trigger_result_encode(
    const struct pl_sgp32_profile_download_trigger_result *res, struct pl_wr *w)
{
    if (res == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_PDT);
    if (res->eim_txid.p)
        pl_sgp32i_put_octets(w, 0x82u, res->eim_txid, 1, PL_SGP32_TXID_MAX);
    if (res->is_error) {
        /* profileDownloadError SEQUENCE (tags present: no automatic tagging) */
        size_t c = pl_der_begin(w, PL_TAG_SEQUENCE);
        (void)pl_der_put_int(w, 0x80u, res->error_reason);
        if (res->error_response.p)
            pl_sgp32i_put_octets(w, PL_TAG_OCTET_STRING, res->error_response, 0, PL_DER_MAX_LEN);
        pl_sgp32i_end(w, c);
    } else {
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_PIR, res->profile_installation_result);
    }
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_profile_download_trigger_result_decode(
    const uint8_t *buf, size_t len, struct pl_sgp32_profile_download_trigger_result *res)
{
    static const uint32_t known[] = {0x82u, PL_SGP32_TAG_PIR, PL_TAG_SEQUENCE};
    static const uint32_t err_known[] = {0x80u, PL_TAG_OCTET_STRING};
    struct pl_der d, e;
    struct pl_tlv t, f, g;
    bool present;
    int rc;

    if (res == NULL)
        return PL_ERR_INVAL;
    memset(res, 0, sizeof(*res));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_PDT, &t, &d)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &res->eim_txid)))
        return rc;
    if ((rc = pl_sgp32i_next(&d, &f)))
        return rc;
    if (f.tag == PL_SGP32_TAG_PIR) {
        if ((rc = pl_der_validate(f.raw, f.raw_len, 0)))
            return rc;
        res->profile_installation_result = pl_sgp32i_raw(&f);
    } else if (f.tag == PL_TAG_SEQUENCE) {
        res->is_error = true;
        if ((rc = pl_sgp32i_enter(&d, &f, &e)))
            return rc;
        if ((rc = pl_sgp32i_expect(&e, 0x80u, &g)))
            return rc;
        if ((rc = pl_sgp32i_get_int(&g, &res->error_reason)))
            return rc;
        if ((rc = pl_sgp32i_optional(&e, PL_TAG_OCTET_STRING, &g, &present)))
            return rc;
        if (present && (rc = pl_sgp32i_get_octets(&g, 0, PL_DER_MAX_LEN, &res->error_response)))
            return rc;
        if ((rc = pl_sgp32i_seq_end(&e, err_known, 2)))
            return rc;
    } else {
        return PL_ERR_DER_TAG;
    }
    return pl_sgp32i_seq_end(&d, known, 3);
}

/* ---- EimAcknowledgements (§2.11.1.4) ---- */

int pl_sgp32_eim_acknowledgements_encode(const struct pl_sgp32_eim_acknowledgements *acks,
                                         struct pl_wr *w)
{
    if (acks == NULL || w == NULL)
        return PL_ERR_INVAL;
    size_t m = pl_der_begin(w, PL_SGP32_TAG_ACKS);
    if (acks->n > PL_SGP32_MAX_ACKS)
        pl_sgp32i_fail(w);
    for (size_t i = 0; i < acks->n && i < PL_SGP32_MAX_ACKS; i++)
        pl_sgp32i_put_u31(w, 0x80u, acks->seq[i]);
    pl_sgp32i_end(w, m);
    return pl_wr_status(w);
}

int pl_sgp32_eim_acknowledgements_decode(const uint8_t *buf, size_t len,
                                         struct pl_sgp32_eim_acknowledgements *acks)
{
    struct pl_der d;
    struct pl_tlv t, f;
    int rc;

    if (acks == NULL)
        return PL_ERR_INVAL;
    memset(acks, 0, sizeof(*acks));
    if ((rc = pl_der_open_one(buf, len, PL_SGP32_TAG_ACKS, &t, &d)))
        return rc;
    /* SEQUENCE OF SequenceNumber ([0] INTEGER): every element is '80'. */
    while (!pl_der_done(&d)) {
        if ((rc = pl_der_next(&d, &f)))
            return rc;
        if (f.tag != 0x80u)
            return PL_ERR_DER_TAG;
        if (acks->n >= PL_SGP32_MAX_ACKS)
            return PL_ERR_OVERFLOW;
        if ((rc = pl_sgp32i_get_u31(&f, &acks->seq[acks->n])))
            return rc;
        acks->n++;
    }
    return PL_OK;
}
