/* GSMA SGP.32 v1.2 §6.3.1 EsipaMessageFromEimToIpa and its arms:
 * §6.3.2.1 InitiateAuthenticationResponseEsipa, §6.3.2.2 AuthenticateClientResponseEsipa,
 * §6.3.2.3 GetBoundProfilePackageResponseEsipa, §6.3.2.5 CancelSessionResponseEsipa,
 * §6.3.2.6 GetEimPackageResponse, §6.3.2.7 ProvideEimPackageResultResponse,
 * §6.3.3.1 TransferEimPackageRequest.
 * Every response CHOICE is tagged, hence explicit: the arm is the single TLV inside.
 * Framing only: eIM Packages and relayed SM-DP+ bodies stay raw (strict DER checked).
 * Tagging: docs/sgp32-codec.md. */
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_esipa.h"
#include "sgp32_internal.h"

#include <string.h>

#define TAG_INITIATE_AUTH   0xBF39u
#define TAG_GET_BPP         0xBF3Au
#define TAG_AUTH_CLIENT     0xBF3Bu
#define TAG_CANCEL_SESSION  0xBF41u
#define TAG_TRANSFER        0xBF4Eu
#define TAG_GET_EIM_PACKAGE 0xBF4Fu
#define TAG_PROVIDE_RESULT  0xBF50u
#define TAG_METADATA        0xBF25u /* [37] SGP32-StoreMetadataRequest */
#define TAG_BPP             0xBF36u /* [54] BoundProfilePackage */
#define HASH_CC_LEN         32u

static int raw_of(const struct pl_tlv *t, struct pl_sgp32_buf *out)
{
    int rc = pl_der_validate(t->raw, t->raw_len, 0);
    if (rc)
        return rc;
    *out = pl_sgp32i_raw(t);
    return PL_OK;
}

static int expect_raw(struct pl_der *d, uint32_t tag, struct pl_sgp32_buf *out)
{
    struct pl_tlv t;
    int rc = pl_sgp32i_expect(d, tag, &t);
    if (rc)
        return rc;
    return raw_of(&t, out);
}

static int optional_raw(struct pl_der *d, uint32_t tag, struct pl_sgp32_buf *out)
{
    struct pl_tlv t;
    bool present;
    int rc = pl_sgp32i_optional(d, tag, &t, &present);
    if (rc || !present)
        return rc;
    return raw_of(&t, out);
}

static int optional_txid(struct pl_der *d, uint32_t tag, struct pl_sgp32_buf *out)
{
    struct pl_tlv t;
    bool present;
    int rc = pl_sgp32i_optional(d, tag, &t, &present);
    if (rc || !present)
        return rc;
    return pl_sgp32i_get_octets(&t, 1, PL_SGP32_TXID_MAX, out);
}

/* The single arm inside an explicitly tagged CHOICE; d becomes the reader it lives in. */
static int choice_arm(const struct pl_der *top, const struct pl_tlv *t, struct pl_der *d,
                      struct pl_tlv *arm)
{
    int rc = pl_sgp32i_enter(top, t, d);
    if (rc)
        return rc;
    if ((rc = pl_sgp32i_next(d, arm)))
        return rc;
    return pl_der_finish(d);
}

/* ---- decoding ---- */

static int initiate_auth_parse(const struct pl_der *top, const struct pl_tlv *t,
                               struct pl_sgp32_initiate_auth_response *r)
{
    static const uint32_t known[] = {
        0x80u, PL_TAG_SEQUENCE, PL_SGP32_TAG_SIG, PL_TAG_OCTET_STRING, PL_TAG_UTF8, 0xA2u};
    struct pl_der c, d;
    struct pl_tlv arm, f, inner;
    bool present;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    if (arm.tag == 0x81u) {
        r->is_error = true;
        return pl_sgp32i_get_int(&arm, &r->error_code);
    }
    if (arm.tag != 0xA0u)
        return PL_ERR_DER_TAG;
    if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
        return rc;
    if ((rc = optional_txid(&d, 0x80u, &r->transaction_id)))
        return rc;
    if ((rc = expect_raw(&d, PL_TAG_SEQUENCE, &r->server_signed1)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_SIG, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_SIG_MAX, &r->server_signature1)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_TAG_OCTET_STRING, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, 64, &r->euicc_ci_pkid)))
        return rc;
    if ((rc = expect_raw(&d, PL_TAG_SEQUENCE, &r->server_certificate)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, PL_TAG_UTF8, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX, &r->matching_id)))
        return rc;
    /* ctxParams1 [2] CtxParams1: explicit (untagged CHOICE). */
    if ((rc = pl_sgp32i_optional(&d, 0xA2u, &f, &present)))
        return rc;
    if (present) {
        if ((rc = pl_sgp32i_explicit_inner(&d, &f, &inner)))
            return rc;
        if ((rc = raw_of(&inner, &r->ctx_params1)))
            return rc;
    }
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

static int authenticate_client_parse(const struct pl_der *top, const struct pl_tlv *t,
                                     struct pl_sgp32_authenticate_client_response *r)
{
    struct pl_der c, d;
    struct pl_tlv arm, f;
    bool present;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    switch (arm.tag) {
    case 0xA0u: { /* authenticateClientOkDPEsipa */
        static const uint32_t known[] = {0x80u, TAG_METADATA, PL_TAG_SEQUENCE, PL_SGP32_TAG_SIG,
                                         PL_TAG_OCTET_STRING};
        r->kind = PL_SGP32_AUTH_CLIENT_OK_DP;
        if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
            return rc;
        if ((rc = optional_txid(&d, 0x80u, &r->transaction_id)))
            return rc;
        if ((rc = optional_raw(&d, TAG_METADATA, &r->profile_metadata)))
            return rc;
        if ((rc = expect_raw(&d, PL_TAG_SEQUENCE, &r->smdp_signed2)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_SIG, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_SIG_MAX, &r->smdp_signature2)))
            return rc;
        if ((rc = expect_raw(&d, PL_TAG_SEQUENCE, &r->smdp_certificate)))
            return rc;
        if ((rc = pl_sgp32i_optional(&d, PL_TAG_OCTET_STRING, &f, &present)))
            return rc;
        if (present && (rc = pl_sgp32i_get_octets(&f, HASH_CC_LEN, HASH_CC_LEN, &r->hash_cc)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
    }
    case 0xA1u: { /* authenticateClientOkDSEsipa */
        static const uint32_t known[] = {0x80u, PL_SGP32_TAG_PDT};
        r->kind = PL_SGP32_AUTH_CLIENT_OK_DS;
        if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &r->transaction_id)))
            return rc;
        if ((rc = optional_raw(&d, PL_SGP32_TAG_PDT, &r->profile_download_trigger)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 2);
    }
    case 0x82u:
        r->kind = PL_SGP32_AUTH_CLIENT_ERROR;
        return pl_sgp32i_get_int(&arm, &r->error_code);
    default:
        return PL_ERR_DER_TAG;
    }
}

static int get_bpp_parse(const struct pl_der *top, const struct pl_tlv *t,
                         struct pl_sgp32_get_bpp_response *r)
{
    static const uint32_t known[] = {0x80u, TAG_BPP};
    struct pl_der c, d;
    struct pl_tlv arm;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    if (arm.tag == 0x81u) {
        r->is_error = true;
        return pl_sgp32i_get_int(&arm, &r->error_code);
    }
    if (arm.tag != 0xA0u)
        return PL_ERR_DER_TAG;
    if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
        return rc;
    if ((rc = optional_txid(&d, 0x80u, &r->transaction_id)))
        return rc;
    if ((rc = expect_raw(&d, TAG_BPP, &r->bound_profile_package)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

static int cancel_session_parse(const struct pl_der *top, const struct pl_tlv *t,
                                struct pl_sgp32_cancel_session_response *r)
{
    struct pl_der c, d;
    struct pl_tlv arm;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    if (arm.tag == 0x81u) {
        r->is_error = true;
        return pl_sgp32i_get_int(&arm, &r->error_code);
    }
    if (arm.tag != 0xA0u) /* cancelSessionOk SGP32-CancelSessionOk ::= SEQUENCE {} */
        return PL_ERR_DER_TAG;
    if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
        return rc;
    return pl_sgp32i_seq_end(&d, NULL, 0);
}

static int eim_package_parse(const struct pl_der *top, const struct pl_tlv *t, bool transfer,
                             struct pl_sgp32_eim_package *p)
{
    struct pl_der c;
    struct pl_tlv arm;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    switch (arm.tag) {
    case PL_SGP32_TAG_EPR:
        p->kind = PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST;
        break;
    case PL_SGP32_TAG_IPA_DATA:
        p->kind = PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST;
        break;
    case PL_SGP32_TAG_PDT:
        p->kind = PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER;
        break;
    case PL_SGP32_TAG_ACKS:
        if (!transfer)
            return PL_ERR_DER_TAG;
        p->kind = PL_SGP32_EIM_PACKAGE_EIM_ACKNOWLEDGEMENTS;
        break;
    case PL_TAG_INTEGER:
        if (transfer)
            return PL_ERR_DER_TAG;
        p->kind = PL_SGP32_EIM_PACKAGE_ERROR;
        return pl_sgp32i_get_int(&arm, &p->error_code);
    default:
        return PL_ERR_DER_TAG;
    }
    return raw_of(&arm, &p->raw);
}

static int provide_result_response_parse(const struct pl_der *top, const struct pl_tlv *t,
                                         struct pl_sgp32_provide_result_response *r)
{
    struct pl_der c, d;
    struct pl_tlv arm;
    int rc;

    if ((rc = choice_arm(top, t, &c, &arm)))
        return rc;
    switch (arm.tag) {
    case PL_SGP32_TAG_ACKS:
        r->kind = PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS;
        return raw_of(&arm, &r->acknowledgements);
    case PL_TAG_SEQUENCE:
        r->kind = PL_SGP32_PROVIDE_RSP_EMPTY;
        if ((rc = pl_sgp32i_enter(&c, &arm, &d)))
            return rc;
        return pl_sgp32i_seq_end(&d, NULL, 0);
    case PL_TAG_INTEGER:
        r->kind = PL_SGP32_PROVIDE_RSP_ERROR;
        return pl_sgp32i_get_int(&arm, &r->error_code);
    default:
        return PL_ERR_DER_TAG;
    }
}

int pl_sgp32_esipa_eim_msg_decode(const uint8_t *buf, size_t len, struct pl_sgp32_esipa_eim_msg *m)
{
    struct pl_der top;
    struct pl_tlv t;
    int rc;

    if (m == NULL || (buf == NULL && len != 0))
        return PL_ERR_INVAL;
    memset(m, 0, sizeof(*m));
    if ((rc = pl_der_parse_one(buf, len, 0, &t)))
        return rc;
    pl_der_init(&top, buf, len);
    switch (t.tag) {
    case TAG_INITIATE_AUTH:
        m->kind = PL_SGP32_ESIPA_INITIATE_AUTHENTICATION;
        return initiate_auth_parse(&top, &t, &m->initiate_auth);
    case TAG_AUTH_CLIENT:
        m->kind = PL_SGP32_ESIPA_AUTHENTICATE_CLIENT;
        return authenticate_client_parse(&top, &t, &m->authenticate_client);
    case TAG_GET_BPP:
        m->kind = PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE;
        return get_bpp_parse(&top, &t, &m->get_bpp);
    case TAG_CANCEL_SESSION:
        m->kind = PL_SGP32_ESIPA_CANCEL_SESSION;
        return cancel_session_parse(&top, &t, &m->cancel_session);
    case TAG_TRANSFER:
        m->kind = PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE;
        return eim_package_parse(&top, &t, true, &m->transfer_request);
    case TAG_GET_EIM_PACKAGE:
        m->kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
        return eim_package_parse(&top, &t, false, &m->get_eim_package);
    case TAG_PROVIDE_RESULT:
        m->kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
        return provide_result_response_parse(&top, &t, &m->provide_result);
    default:
        return PL_ERR_DER_TAG;
    }
}

/* ---- encoding ---- */

static void eim_package_put(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_eim_package *p,
                            bool transfer)
{
    size_t m = pl_der_begin(w, tag);
    switch (p->kind) {
    case PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST:
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_EPR, p->raw);
        break;
    case PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST:
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_IPA_DATA, p->raw);
        break;
    case PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER:
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_PDT, p->raw);
        break;
    case PL_SGP32_EIM_PACKAGE_EIM_ACKNOWLEDGEMENTS:
        if (!transfer)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_ACKS, p->raw);
        break;
    case PL_SGP32_EIM_PACKAGE_ERROR:
        if (transfer)
            pl_sgp32i_fail(w);
        (void)pl_der_put_int(w, PL_TAG_INTEGER, p->error_code);
        break;
    default:
        pl_sgp32i_fail(w);
        break;
    }
    pl_sgp32i_end(w, m);
}

static void initiate_auth_put(struct pl_wr *w, const struct pl_sgp32_initiate_auth_response *r)
{
    size_t m = pl_der_begin(w, TAG_INITIATE_AUTH);
    if (r->is_error) {
        (void)pl_der_put_int(w, 0x81u, r->error_code);
    } else {
        size_t a = pl_der_begin(w, 0xA0u);
        if (r->transaction_id.p)
            pl_sgp32i_put_octets(w, 0x80u, r->transaction_id, 1, PL_SGP32_TXID_MAX);
        pl_sgp32i_put_raw(w, PL_TAG_SEQUENCE, r->server_signed1);
        if (r->server_signature1.p == NULL)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_octets(w, PL_SGP32_TAG_SIG, r->server_signature1, 1, PL_SGP32_SIG_MAX);
        if (r->euicc_ci_pkid.p == NULL)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_octets(w, PL_TAG_OCTET_STRING, r->euicc_ci_pkid, 1, 64);
        pl_sgp32i_put_raw(w, PL_TAG_SEQUENCE, r->server_certificate);
        if (r->matching_id.p)
            pl_sgp32i_put_utf8(w, PL_TAG_UTF8, r->matching_id, 0, PL_SGP32_ADDR_MAX);
        if (r->ctx_params1.p) {
            size_t c = pl_der_begin(w, 0xA2u);
            pl_sgp32i_put_raw(w, 0, r->ctx_params1);
            pl_sgp32i_end(w, c);
        }
        pl_sgp32i_end(w, a);
    }
    pl_sgp32i_end(w, m);
}

static void authenticate_client_put(struct pl_wr *w,
                                    const struct pl_sgp32_authenticate_client_response *r)
{
    size_t m = pl_der_begin(w, TAG_AUTH_CLIENT), a;
    switch (r->kind) {
    case PL_SGP32_AUTH_CLIENT_OK_DP:
        a = pl_der_begin(w, 0xA0u);
        if (r->transaction_id.p)
            pl_sgp32i_put_octets(w, 0x80u, r->transaction_id, 1, PL_SGP32_TXID_MAX);
        if (r->profile_metadata.p)
            pl_sgp32i_put_raw(w, TAG_METADATA, r->profile_metadata);
        pl_sgp32i_put_raw(w, PL_TAG_SEQUENCE, r->smdp_signed2);
        if (r->smdp_signature2.p == NULL)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_octets(w, PL_SGP32_TAG_SIG, r->smdp_signature2, 1, PL_SGP32_SIG_MAX);
        pl_sgp32i_put_raw(w, PL_TAG_SEQUENCE, r->smdp_certificate);
        if (r->hash_cc.p)
            pl_sgp32i_put_octets(w, PL_TAG_OCTET_STRING, r->hash_cc, HASH_CC_LEN, HASH_CC_LEN);
        pl_sgp32i_end(w, a);
        break;
    case PL_SGP32_AUTH_CLIENT_OK_DS:
        a = pl_der_begin(w, 0xA1u);
        if (r->transaction_id.p == NULL)
            pl_sgp32i_fail(w);
        pl_sgp32i_put_octets(w, 0x80u, r->transaction_id, 1, PL_SGP32_TXID_MAX);
        if (r->profile_download_trigger.p)
            pl_sgp32i_put_raw(w, PL_SGP32_TAG_PDT, r->profile_download_trigger);
        pl_sgp32i_end(w, a);
        break;
    case PL_SGP32_AUTH_CLIENT_ERROR:
        (void)pl_der_put_int(w, 0x82u, r->error_code);
        break;
    default:
        pl_sgp32i_fail(w);
        break;
    }
    pl_sgp32i_end(w, m);
}

int pl_sgp32_esipa_eim_msg_encode(const struct pl_sgp32_esipa_eim_msg *msg, struct pl_wr *w)
{
    size_t m, a;
    if (msg == NULL || w == NULL)
        return PL_ERR_INVAL;
    switch (msg->kind) {
    case PL_SGP32_ESIPA_INITIATE_AUTHENTICATION:
        initiate_auth_put(w, &msg->initiate_auth);
        break;
    case PL_SGP32_ESIPA_AUTHENTICATE_CLIENT:
        authenticate_client_put(w, &msg->authenticate_client);
        break;
    case PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE:
        m = pl_der_begin(w, TAG_GET_BPP);
        if (msg->get_bpp.is_error) {
            (void)pl_der_put_int(w, 0x81u, msg->get_bpp.error_code);
        } else {
            a = pl_der_begin(w, 0xA0u);
            if (msg->get_bpp.transaction_id.p)
                pl_sgp32i_put_octets(w, 0x80u, msg->get_bpp.transaction_id, 1, PL_SGP32_TXID_MAX);
            pl_sgp32i_put_raw(w, TAG_BPP, msg->get_bpp.bound_profile_package);
            pl_sgp32i_end(w, a);
        }
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_CANCEL_SESSION:
        m = pl_der_begin(w, TAG_CANCEL_SESSION);
        if (msg->cancel_session.is_error)
            (void)pl_der_put_int(w, 0x81u, msg->cancel_session.error_code);
        else
            (void)pl_der_put_tlv(w, 0xA0u, NULL, 0);
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE:
        eim_package_put(w, TAG_TRANSFER, &msg->transfer_request, true);
        break;
    case PL_SGP32_ESIPA_GET_EIM_PACKAGE:
        eim_package_put(w, TAG_GET_EIM_PACKAGE, &msg->get_eim_package, false);
        break;
    case PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT:
        m = pl_der_begin(w, TAG_PROVIDE_RESULT);
        switch (msg->provide_result.kind) {
        case PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS:
            pl_sgp32i_put_raw(w, PL_SGP32_TAG_ACKS, msg->provide_result.acknowledgements);
            break;
        case PL_SGP32_PROVIDE_RSP_EMPTY:
            (void)pl_der_put_tlv(w, PL_TAG_SEQUENCE, NULL, 0);
            break;
        case PL_SGP32_PROVIDE_RSP_ERROR:
            (void)pl_der_put_int(w, PL_TAG_INTEGER, msg->provide_result.error_code);
            break;
        default:
            pl_sgp32i_fail(w);
            break;
        }
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_HANDLE_NOTIFICATION: /* IPA->eIM only */
    default:
        pl_sgp32i_fail(w);
        break;
    }
    return pl_wr_status(w);
}
