/* GSMA SGP.32 v1.2 §6.3.1 EsipaMessageFromIpaToEim and its arms:
 * §6.3.2.1 InitiateAuthenticationRequestEsipa, §6.3.2.2 AuthenticateClientRequestEsipa,
 * §6.3.2.3 GetBoundProfilePackageRequestEsipa, §6.3.2.4 HandleNotificationEsipa,
 * §6.3.2.5 CancelSessionRequestEsipa, §6.3.2.6 GetEimPackageRequest,
 * §6.3.2.7 ProvideEimPackageResult (EimPackageResult), §6.3.3.1 TransferEimPackageResponse.
 * Framing only: nested eIM Package results and relayed bodies stay raw (strict DER checked).
 * Tagging: docs/sgp32-codec.md. */
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_esipa.h"
#include "sgp32_internal.h"

#include <string.h>

#define TAG_INITIATE_AUTH     0xBF39u
#define TAG_GET_BPP           0xBF3Au
#define TAG_AUTH_CLIENT       0xBF3Bu
#define TAG_HANDLE_NOTIF      0xBF3Du
#define TAG_CANCEL_SESSION    0xBF41u
#define TAG_TRANSFER          0xBF4Eu
#define TAG_GET_EIM_PACKAGE   0xBF4Fu
#define TAG_PROVIDE_RESULT    0xBF50u
#define TAG_EUICC_INFO1       0xBF20u
#define TAG_AUTH_SERVER_RSP   0xBF38u
#define TAG_PREP_DOWNLOAD_RSP 0xBF21u

static const uint32_t notif_tags[] = {PL_SGP32_TAG_PIR, PL_TAG_SEQUENCE, 0xA0u, 0xA1u};

/* A nested TLV kept raw: strict DER all the way down. */
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

static int is_notif_tag(uint32_t tag)
{
    for (size_t i = 0; i < sizeof(notif_tags) / sizeof(notif_tags[0]); i++) {
        if (notif_tags[i] == tag)
            return 1;
    }
    return 0;
}

/* SGP32-CancelSessionResponse arms: cancelSessionResponseOk [0], cancelSessionResponseError
 * [1], compactCancelSessionResponseOk [2] (automatic tags). */
static int is_cancel_arm(uint32_t tag)
{
    return tag == 0xA0u || tag == 0x81u || tag == 0xA2u;
}

/* ---- decoding ---- */

static int initiate_auth_parse(const struct pl_der *top, const struct pl_tlv *t,
                               struct pl_sgp32_initiate_auth_request *r)
{
    static const uint32_t known[] = {0x81u, 0x83u, TAG_EUICC_INFO1, 0x82u};
    struct pl_der d;
    struct pl_tlv f;
    bool present;
    int rc;
    if ((rc = pl_sgp32i_enter(top, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x81u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_fixed(&f, r->euicc_challenge, sizeof(r->euicc_challenge))))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x83u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_utf8(&f, 0, PL_SGP32_ADDR_MAX, &r->smdp_address)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, TAG_EUICC_INFO1, &f, &present)))
        return rc;
    if (present && (rc = raw_of(&f, &r->euicc_info1)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &present)))
        return rc;
    if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &r->eim_txid)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 4);
}

/* { transactionId [0], <body> } for AuthenticateClient / GetBoundProfilePackage. */
static int txid_and_raw_parse(const struct pl_der *top, const struct pl_tlv *t, uint32_t body_tag,
                              struct pl_sgp32_buf *txid, struct pl_sgp32_buf *body)
{
    const uint32_t known[] = {0x80u, body_tag};
    struct pl_der d;
    struct pl_tlv f;
    int rc;
    if ((rc = pl_sgp32i_enter(top, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, txid)))
        return rc;
    if ((rc = expect_raw(&d, body_tag, body)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

static int cancel_session_parse(const struct pl_der *top, const struct pl_tlv *t,
                                struct pl_sgp32_cancel_session_request *r)
{
    static const uint32_t known[] = {0x80u, 0xA1u};
    struct pl_der d;
    struct pl_tlv f, arm;
    int rc;
    if ((rc = pl_sgp32i_enter(top, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0x80u, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &r->transaction_id)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, 0xA1u, &f)))
        return rc;
    if ((rc = pl_sgp32i_explicit_inner(&d, &f, &arm)))
        return rc;
    if (!is_cancel_arm(arm.tag))
        return PL_ERR_DER_TAG; /* e.g. A1 { BF41 ... }: a second tag (asn1ct) */
    if ((rc = raw_of(&arm, &r->cancel_session_response)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 2);
}

/* EimPackageResult (transfer == false) or TransferEimPackageResponse (transfer == true). */
static int eim_result_parse(const struct pl_der *parent, const struct pl_tlv *t, bool transfer,
                            struct pl_sgp32_eim_package_result *res)
{
    struct pl_der d;
    struct pl_tlv f;
    bool present;
    int rc;
    switch (t->tag) {
    case PL_SGP32_TAG_EPR:
        res->kind = PL_SGP32_EIM_RESULT_EPR;
        return raw_of(t, &res->euicc_package_result);
    case PL_TAG_SEQUENCE: { /* ePRAndNotifications */
        static const uint32_t known[] = {PL_SGP32_TAG_EPR, 0xA0u};
        res->kind = PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = expect_raw(&d, PL_SGP32_TAG_EPR, &res->euicc_package_result)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, 0xA0u, &f)))
            return rc;
        if ((rc =
                 pl_sgp32i_get_list(&d, &f, notif_tags, 4, PL_SGP32_MAX_LIST, &res->notifications)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 2);
    }
    case PL_SGP32_TAG_IPA_DATA:
        res->kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
        return raw_of(t, &res->ipa_euicc_data_response);
    default:
        break;
    }
    if (!transfer && t->tag == PL_SGP32_TAG_PDT) {
        res->kind = PL_SGP32_EIM_RESULT_PDT_RESULT;
        return raw_of(t, &res->pdt_result);
    }
    if (!transfer && t->tag == 0xA0u) { /* eimPackageResultResponseError [0] */
        static const uint32_t known[] = {0x80u, PL_TAG_INTEGER};
        res->kind = PL_SGP32_EIM_RESULT_ERROR;
        if ((rc = pl_sgp32i_enter(parent, t, &d)))
            return rc;
        if ((rc = pl_sgp32i_optional(&d, 0x80u, &f, &present)))
            return rc;
        if (present && (rc = pl_sgp32i_get_octets(&f, 1, PL_SGP32_TXID_MAX, &res->error_txid)))
            return rc;
        if ((rc = pl_sgp32i_expect(&d, PL_TAG_INTEGER, &f)))
            return rc;
        if ((rc = pl_sgp32i_get_int(&f, &res->error_code)))
            return rc;
        return pl_sgp32i_seq_end(&d, known, 2);
    }
    if (transfer && t->tag == PL_TAG_NULL) {
        res->kind = PL_SGP32_EIM_RESULT_PACKAGE_RECEIVED;
        return pl_sgp32i_get_null(t);
    }
    if (transfer && t->tag == PL_TAG_INTEGER) {
        res->kind = PL_SGP32_EIM_RESULT_PACKAGE_ERROR;
        return pl_sgp32i_get_int(t, &res->error_code);
    }
    return PL_ERR_DER_TAG;
}

static int provide_result_parse(const struct pl_der *parent, const struct pl_tlv *t,
                                struct pl_sgp32_provide_eim_package_result *r)
{
    static const uint32_t known[] = {PL_SGP32_TAG_EID,      PL_SGP32_TAG_EPR, PL_TAG_SEQUENCE,
                                     PL_SGP32_TAG_IPA_DATA, PL_SGP32_TAG_PDT, 0xA0u};
    struct pl_der d;
    struct pl_tlv f;
    int rc;
    if ((rc = pl_sgp32i_enter(parent, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, PL_SGP32_TAG_EID, &f, &r->has_eid)))
        return rc;
    if (r->has_eid && (rc = pl_sgp32i_get_fixed(&f, r->eid, PL_SGP32_EID_LEN)))
        return rc;
    /* eimPackageResult: untagged CHOICE whose arms carry their own tags. */
    if ((rc = pl_sgp32i_next(&d, &f)))
        return rc;
    if ((rc = eim_result_parse(&d, &f, false, &r->result)))
        return rc;
    return pl_sgp32i_seq_end(&d, known, sizeof(known) / sizeof(known[0]));
}

static int handle_notification_parse(const struct pl_der *top, const struct pl_tlv *t,
                                     struct pl_sgp32_handle_notification *r)
{
    struct pl_der d;
    struct pl_tlv arm, inner;
    int rc;
    if ((rc = pl_sgp32i_enter(top, t, &d)))
        return rc;
    /* [61] CHOICE: explicit, one arm. */
    if ((rc = pl_sgp32i_next(&d, &arm)))
        return rc;
    if ((rc = pl_der_finish(&d)))
        return rc;
    if (arm.tag == TAG_PROVIDE_RESULT) {
        r->is_provide_result = true;
        return provide_result_parse(&d, &arm, &r->provide_result);
    }
    if (arm.tag != 0xA0u)
        return PL_ERR_DER_TAG;
    /* pendingNotification [0] on an untagged CHOICE: explicit. */
    if ((rc = pl_sgp32i_explicit_inner(&d, &arm, &inner)))
        return rc;
    if (!is_notif_tag(inner.tag))
        return PL_ERR_DER_TAG;
    return raw_of(&inner, &r->pending_notification);
}

static int get_eim_package_parse(const struct pl_der *top, const struct pl_tlv *t,
                                 struct pl_sgp32_get_eim_package_request *r)
{
    static const uint32_t known[] = {PL_SGP32_TAG_EID, 0x80u, 0x81u, 0x82u};
    struct pl_der d;
    struct pl_tlv f;
    int rc;
    if ((rc = pl_sgp32i_enter(top, t, &d)))
        return rc;
    if ((rc = pl_sgp32i_expect(&d, PL_SGP32_TAG_EID, &f)))
        return rc;
    if ((rc = pl_sgp32i_get_fixed(&f, r->eid, PL_SGP32_EID_LEN)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x80u, &f, &r->notify_state_change)))
        return rc;
    if (r->notify_state_change && (rc = pl_sgp32i_get_null(&f)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x81u, &f, &r->has_state_change_cause)))
        return rc;
    if (r->has_state_change_cause && (rc = pl_sgp32i_get_int(&f, &r->state_change_cause)))
        return rc;
    if ((rc = pl_sgp32i_optional(&d, 0x82u, &f, &r->has_rplmn)))
        return rc;
    if (r->has_rplmn && (rc = pl_sgp32i_get_fixed(&f, r->rplmn, sizeof(r->rplmn))))
        return rc;
    return pl_sgp32i_seq_end(&d, known, 4);
}

int pl_sgp32_esipa_ipa_msg_decode(const uint8_t *buf, size_t len, struct pl_sgp32_esipa_ipa_msg *m)
{
    struct pl_der top, d;
    struct pl_tlv t, arm;
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
        return txid_and_raw_parse(&top, &t, TAG_AUTH_SERVER_RSP,
                                  &m->authenticate_client.transaction_id,
                                  &m->authenticate_client.authenticate_server_response);
    case TAG_GET_BPP:
        m->kind = PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE;
        return txid_and_raw_parse(&top, &t, TAG_PREP_DOWNLOAD_RSP, &m->get_bpp.transaction_id,
                                  &m->get_bpp.prepare_download_response);
    case TAG_CANCEL_SESSION:
        m->kind = PL_SGP32_ESIPA_CANCEL_SESSION;
        return cancel_session_parse(&top, &t, &m->cancel_session);
    case TAG_HANDLE_NOTIF:
        m->kind = PL_SGP32_ESIPA_HANDLE_NOTIFICATION;
        return handle_notification_parse(&top, &t, &m->handle_notification);
    case TAG_TRANSFER:
        /* [78] CHOICE: explicit, one arm. */
        m->kind = PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE;
        if ((rc = pl_sgp32i_enter(&top, &t, &d)))
            return rc;
        if ((rc = pl_sgp32i_next(&d, &arm)))
            return rc;
        if ((rc = pl_der_finish(&d)))
            return rc;
        return eim_result_parse(&d, &arm, true, &m->transfer_response);
    case TAG_GET_EIM_PACKAGE:
        m->kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
        return get_eim_package_parse(&top, &t, &m->get_eim_package);
    case TAG_PROVIDE_RESULT:
        m->kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
        return provide_result_parse(&top, &t, &m->provide_result);
    default:
        return PL_ERR_DER_TAG;
    }
}

/* ---- encoding ---- */

static void eim_result_put(struct pl_wr *w, const struct pl_sgp32_eim_package_result *res,
                           bool transfer)
{
    size_t m;
    switch (res->kind) {
    case PL_SGP32_EIM_RESULT_EPR:
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_EPR, res->euicc_package_result);
        return;
    case PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS:
        m = pl_der_begin(w, PL_TAG_SEQUENCE);
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_EPR, res->euicc_package_result);
        pl_sgp32i_put_list(w, 0xA0u, &res->notifications);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_EIM_RESULT_IPA_EUICC_DATA:
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_IPA_DATA, res->ipa_euicc_data_response);
        return;
    case PL_SGP32_EIM_RESULT_PDT_RESULT:
        if (transfer)
            break;
        pl_sgp32i_put_raw(w, PL_SGP32_TAG_PDT, res->pdt_result);
        return;
    case PL_SGP32_EIM_RESULT_ERROR:
        if (transfer)
            break;
        m = pl_der_begin(w, 0xA0u);
        if (res->error_txid.p)
            pl_sgp32i_put_octets(w, 0x80u, res->error_txid, 1, PL_SGP32_TXID_MAX);
        (void)pl_der_put_int(w, PL_TAG_INTEGER, res->error_code);
        pl_sgp32i_end(w, m);
        return;
    case PL_SGP32_EIM_RESULT_PACKAGE_RECEIVED:
        if (!transfer)
            break;
        (void)pl_der_put_null(w, PL_TAG_NULL);
        return;
    case PL_SGP32_EIM_RESULT_PACKAGE_ERROR:
        if (!transfer)
            break;
        (void)pl_der_put_int(w, PL_TAG_INTEGER, res->error_code);
        return;
    default:
        break;
    }
    pl_sgp32i_fail(w);
}

static void provide_result_put(struct pl_wr *w, const struct pl_sgp32_provide_eim_package_result *r)
{
    size_t m = pl_der_begin(w, TAG_PROVIDE_RESULT);
    if (r->has_eid)
        (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, r->eid, PL_SGP32_EID_LEN);
    eim_result_put(w, &r->result, false);
    pl_sgp32i_end(w, m);
}

static void txid_put(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf txid)
{
    if (txid.p == NULL)
        pl_sgp32i_fail(w);
    pl_sgp32i_put_octets(w, tag, txid, 1, PL_SGP32_TXID_MAX);
}

int pl_sgp32_esipa_ipa_msg_encode(const struct pl_sgp32_esipa_ipa_msg *msg, struct pl_wr *w)
{
    size_t m, c;
    if (msg == NULL || w == NULL)
        return PL_ERR_INVAL;
    switch (msg->kind) {
    case PL_SGP32_ESIPA_INITIATE_AUTHENTICATION: {
        const struct pl_sgp32_initiate_auth_request *r = &msg->initiate_auth;
        m = pl_der_begin(w, TAG_INITIATE_AUTH);
        (void)pl_der_put_tlv(w, 0x81u, r->euicc_challenge, sizeof(r->euicc_challenge));
        if (r->smdp_address.p)
            pl_sgp32i_put_utf8(w, 0x83u, r->smdp_address, 0, PL_SGP32_ADDR_MAX);
        if (r->euicc_info1.p)
            pl_sgp32i_put_raw(w, TAG_EUICC_INFO1, r->euicc_info1);
        if (r->eim_txid.p)
            pl_sgp32i_put_octets(w, 0x82u, r->eim_txid, 1, PL_SGP32_TXID_MAX);
        pl_sgp32i_end(w, m);
        break;
    }
    case PL_SGP32_ESIPA_AUTHENTICATE_CLIENT:
        m = pl_der_begin(w, TAG_AUTH_CLIENT);
        txid_put(w, 0x80u, msg->authenticate_client.transaction_id);
        pl_sgp32i_put_raw(w, TAG_AUTH_SERVER_RSP,
                          msg->authenticate_client.authenticate_server_response);
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE:
        m = pl_der_begin(w, TAG_GET_BPP);
        txid_put(w, 0x80u, msg->get_bpp.transaction_id);
        pl_sgp32i_put_raw(w, TAG_PREP_DOWNLOAD_RSP, msg->get_bpp.prepare_download_response);
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_CANCEL_SESSION:
        m = pl_der_begin(w, TAG_CANCEL_SESSION);
        txid_put(w, 0x80u, msg->cancel_session.transaction_id);
        if (msg->cancel_session.cancel_session_response.p == NULL
            || msg->cancel_session.cancel_session_response.len == 0
            || !is_cancel_arm(msg->cancel_session.cancel_session_response.p[0]))
            pl_sgp32i_fail(w);
        c = pl_der_begin(w, 0xA1u);
        pl_sgp32i_put_raw(w, 0, msg->cancel_session.cancel_session_response);
        pl_sgp32i_end(w, c);
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_HANDLE_NOTIFICATION:
        m = pl_der_begin(w, TAG_HANDLE_NOTIF);
        if (msg->handle_notification.is_provide_result) {
            provide_result_put(w, &msg->handle_notification.provide_result);
        } else {
            struct pl_tlv n;
            const struct pl_sgp32_buf *pn = &msg->handle_notification.pending_notification;
            if (pn->p == NULL || pl_der_parse_one(pn->p, pn->len, 0, &n) != PL_OK
                || !is_notif_tag(n.tag))
                pl_sgp32i_fail(w);
            c = pl_der_begin(w, 0xA0u);
            pl_sgp32i_put_raw(w, 0, *pn);
            pl_sgp32i_end(w, c);
        }
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE:
        m = pl_der_begin(w, TAG_TRANSFER);
        eim_result_put(w, &msg->transfer_response, true);
        pl_sgp32i_end(w, m);
        break;
    case PL_SGP32_ESIPA_GET_EIM_PACKAGE: {
        const struct pl_sgp32_get_eim_package_request *r = &msg->get_eim_package;
        m = pl_der_begin(w, TAG_GET_EIM_PACKAGE);
        (void)pl_der_put_tlv(w, PL_SGP32_TAG_EID, r->eid, PL_SGP32_EID_LEN);
        if (r->notify_state_change)
            (void)pl_der_put_null(w, 0x80u);
        if (r->has_state_change_cause)
            (void)pl_der_put_int(w, 0x81u, r->state_change_cause);
        if (r->has_rplmn)
            (void)pl_der_put_tlv(w, 0x82u, r->rplmn, sizeof(r->rplmn));
        pl_sgp32i_end(w, m);
        break;
    }
    case PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT:
        provide_result_put(w, &msg->provide_result);
        break;
    default:
        pl_sgp32i_fail(w);
        break;
    }
    return pl_wr_status(w);
}
