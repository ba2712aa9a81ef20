/* Unit tests: SGP.32 ESipa messages in both directions (sgp32_esipa.h): every arm of
 * EsipaMessageFromIpaToEim and EsipaMessageFromEimToIpa, round trips, known answers and
 * negative cases. Known answers marked "Erlang" were produced by Erlang/OTP asn1 (DER) from
 * shared/asn1/SGP32Definitions.asn; the others are hand-built with T() because asn1ct puts
 * a second tag on a tagged CHOICE type carried under a tag (docs/sgp32-codec.md). */
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "sgp32_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define EID_HEX   "89049032123451234512345678901234"
#define EIDTLV    "5A10" EID_HEX
#define EPR_U     "BF5105A203800165"     /* EuiccPackageResult, unsigned error arm */
#define EDRESP    "BF5202A000"           /* IpaEuiccDataResponse, empty ipaEuiccData */
#define PDTRES    "BF5405300380017F"     /* ProfileDownloadTriggerResult, error */
#define ACKS      "BF5303800105"         /* EimAcknowledgements [5] */
#define PDTREQ    "BF5407A0028100820101" /* ProfileDownloadTriggerRequest */
#define EDRREQ    "BF520B5C01A2A203800103830101"
#define REPEAT_CC "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC" /* 16 bytes */

static const char *pir(void)
{
    return T("BF37", CAT(T("BF27", "800101"), T("5F37", REP("11", 64))));
}

/* Decodes an IPA->eIM message, re-encodes the decoded struct and expects the same bytes. */
static void ipa_round_trip(const char *hex, struct pl_sgp32_esipa_ipa_msg *m)
{
    size_t n;
    uint8_t *b = sgp32_hex_arena(hex, &n); /* m borrows it for the rest of the test */
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_decode(b, n, m), PL_OK, "decode %s", hex);
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(m, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, hex);
    pl_wr_free(&w);
}

static void eim_round_trip(const char *hex, struct pl_sgp32_esipa_eim_msg *m)
{
    size_t n;
    uint8_t *b = sgp32_hex_arena(hex, &n); /* m borrows it for the rest of the test */
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(b, n, m), PL_OK, "decode %s", hex);
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(m, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, hex);
    pl_wr_free(&w);
}

static bool raw_is(struct pl_sgp32_buf b, const char *hex)
{
    size_t n;
    uint8_t *want = sgp32_hex(hex, &n);
    bool ok = b.p != NULL && b.len == n && memcmp(b.p, want, n) == 0;
    free(want);
    return ok;
}

/* ---- IPA -> eIM ---- */

Test(sgp32_esipa, get_eim_package_request)
{
    struct pl_sgp32_esipa_ipa_msg m;
    /* Erlang: EID only (the 21-byte minimal poll) */
    ipa_round_trip("BF4F125A10" EID_HEX, &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_GET_EIM_PACKAGE);
    cr_assert_not(m.get_eim_package.notify_state_change);
    cr_assert_not(m.get_eim_package.has_state_change_cause);
    cr_assert_not(m.get_eim_package.has_rplmn);
    /* Erlang: notifyStateChange, immediateEnableProfile, rPLMN 62F210 */
    ipa_round_trip("BF4F1C5A10" EID_HEX "8000810105820362F210", &m);
    cr_assert(m.get_eim_package.notify_state_change);
    cr_assert_eq(m.get_eim_package.state_change_cause, PL_SGP32_STATE_CHANGE_IMMEDIATE_ENABLE);
    cr_assert_eq(m.get_eim_package.rplmn[0], 0x62);
    cr_assert_eq(m.get_eim_package.eid[15], 0x34);

    /* encode from scratch */
    struct pl_sgp32_esipa_ipa_msg e;
    struct pl_wr w;
    memset(&e, 0, sizeof(e));
    e.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    e.get_eim_package.eid[0] = 0x89;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&e, &w), PL_OK);
    cr_assert_eq(w.len, 21);
    pl_wr_free(&w);
}

Test(sgp32_esipa, provide_eim_package_result_every_arm)
{
    struct pl_sgp32_esipa_ipa_msg m;
    /* Erlang: eimPackageResultResponseError with EID; profileDownloadTriggerResult */
    ipa_round_trip("BF501A5A10" EID_HEX "A006800107020102", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
    cr_assert(m.provide_result.has_eid);
    cr_assert_eq(m.provide_result.result.kind, PL_SGP32_EIM_RESULT_ERROR);
    cr_assert_eq(m.provide_result.result.error_code, PL_SGP32_EIM_RESULT_ERR_UNKNOWN_PACKAGE);
    cr_assert_eq(m.provide_result.result.error_txid.len, 1);
    ipa_round_trip("BF500BBF5408820101300380017F", &m);
    cr_assert_not(m.provide_result.has_eid);
    cr_assert_eq(m.provide_result.result.kind, PL_SGP32_EIM_RESULT_PDT_RESULT);
    cr_assert(raw_is(m.provide_result.result.pdt_result, "BF5408820101300380017F"));

    /* hand-built: one BF51 (asn1ct would write BF51 BF51) */
    ipa_round_trip(T("BF50", CAT(EIDTLV, EPR_U)), &m);
    cr_assert_eq(m.provide_result.result.kind, PL_SGP32_EIM_RESULT_EPR);
    cr_assert(raw_is(m.provide_result.result.euicc_package_result, EPR_U));
    ipa_round_trip(T("BF50", T("30", CAT(EPR_U, T("A0", pir())))), &m);
    cr_assert_eq(m.provide_result.result.kind, PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS);
    cr_assert_eq(m.provide_result.result.notifications.count, 1);
    ipa_round_trip(T("BF50", EDRESP), &m);
    cr_assert_eq(m.provide_result.result.kind, PL_SGP32_EIM_RESULT_IPA_EUICC_DATA);
    cr_assert(raw_is(m.provide_result.result.ipa_euicc_data_response, EDRESP));

    /* the carried EPR decodes with its own decoder */
    struct pl_sgp32_euicc_package_result *epr = calloc(1, sizeof(*epr));
    ipa_round_trip(T("BF50", EPR_U), &m);
    cr_assert_eq(
        pl_sgp32_euicc_package_result_decode(m.provide_result.result.euicc_package_result.p,
                                             m.provide_result.result.euicc_package_result.len, epr),
        PL_OK);
    cr_assert(sgp32_buf_is(epr->eim_id, "e"));
    free(epr);
}

Test(sgp32_esipa, transfer_eim_package_response_every_arm)
{
    struct pl_sgp32_esipa_ipa_msg m;
    /* Erlang: eimPackageReceived; eimPackageError */
    ipa_round_trip("BF4E020500", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE);
    cr_assert_eq(m.transfer_response.kind, PL_SGP32_EIM_RESULT_PACKAGE_RECEIVED);
    ipa_round_trip("BF4E03020102", &m);
    cr_assert_eq(m.transfer_response.kind, PL_SGP32_EIM_RESULT_PACKAGE_ERROR);
    cr_assert_eq(m.transfer_response.error_code, 2);
    ipa_round_trip(T("BF4E", EPR_U), &m);
    cr_assert_eq(m.transfer_response.kind, PL_SGP32_EIM_RESULT_EPR);
    ipa_round_trip(T("BF4E", T("30", CAT(EPR_U, T("A0", CAT(pir(), pir()))))), &m);
    cr_assert_eq(m.transfer_response.kind, PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS);
    cr_assert_eq(m.transfer_response.notifications.count, 2);
    ipa_round_trip(T("BF4E", EDRESP), &m);
    cr_assert_eq(m.transfer_response.kind, PL_SGP32_EIM_RESULT_IPA_EUICC_DATA);
}

Test(sgp32_esipa, handle_notification)
{
    struct pl_sgp32_esipa_ipa_msg m;
    /* pendingNotification [0] is explicit around the PendingNotification arm */
    ipa_round_trip(T("BF3D", T("A0", pir())), &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_HANDLE_NOTIFICATION);
    cr_assert_not(m.handle_notification.is_provide_result);
    cr_assert(raw_is(m.handle_notification.pending_notification, pir()));
    /* OtherSignedNotification '30' and the compact arms A0 / A1 */
    ipa_round_trip(T("BF3D", T("A0", T("30", CAT(T("BF2F", "800102"), T("5F37", REP("22", 64)))))),
                   &m);
    ipa_round_trip(T("BF3D", T("A0", T("A0", "800101"))), &m);
    ipa_round_trip(T("BF3D", T("A0", T("A1", "800101"))), &m);
    /* provideEimPackageResult [80] */
    ipa_round_trip(T("BF3D", T("BF50", CAT(EIDTLV, EPR_U))), &m);
    cr_assert(m.handle_notification.is_provide_result);
    cr_assert(m.handle_notification.provide_result.has_eid);
    cr_assert_eq(m.handle_notification.provide_result.result.kind, PL_SGP32_EIM_RESULT_EPR);
}

Test(sgp32_esipa, relay_requests)
{
    struct pl_sgp32_esipa_ipa_msg m;
    /* Erlang: InitiateAuthenticationRequestEsipa with every component, and minimal */
    ipa_round_trip("BF39378110" REPEAT_CC "830C736D64702E6578616D706C65BF20118203020500A904040201"
                   "02AA0404020102820109",
                   &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_INITIATE_AUTHENTICATION);
    cr_assert_eq(m.initiate_auth.euicc_challenge[15], 0xCC);
    cr_assert(sgp32_buf_is(m.initiate_auth.smdp_address, "smdp.example"));
    cr_assert(raw_is(m.initiate_auth.euicc_info1, "BF20118203020500A90404020102AA0404020102"));
    cr_assert_eq(m.initiate_auth.eim_txid.len, 1);
    ipa_round_trip("BF39128110" REPEAT_CC, &m);
    cr_assert_null(m.initiate_auth.smdp_address.p);

    /* AuthenticateClient: transactionId [0] and the ES10b response 'BF38' verbatim */
    const char *bf38 = T("BF38", T("A0", CAT(T("30", "800101"), T("5F37", REP("33", 64)))));
    ipa_round_trip(T("BF3B", CAT("80020102", bf38)), &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_AUTHENTICATE_CLIENT);
    cr_assert(raw_is(m.authenticate_client.authenticate_server_response, bf38));

    /* GetBoundProfilePackage: 'BF21' verbatim */
    const char *bf21 = T("BF21", T("A0", CAT(T("30", "800101"), T("5F37", REP("44", 64)))));
    ipa_round_trip(T("BF3A", CAT("80020102", bf21)), &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE);
    cr_assert(raw_is(m.get_bpp.prepare_download_response, bf21));

    /* CancelSession: automatic tags '80' / 'A1'; A1 holds the ES10b response's arm */
    ipa_round_trip("BF410980020102A103810105", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_CANCEL_SESSION);
    cr_assert(raw_is(m.cancel_session.cancel_session_response, "810105"));
    ipa_round_trip(
        T("BF41",
          CAT("80020102", T("A1", T("A0", CAT(T("30", "800101"), T("5F37", REP("55", 64))))))),
        &m);
}

Test(sgp32_esipa, double_tag_passes_framing_but_not_the_epr_decoder)
{
    /* asn1ct writes BF50 { BF51 { BF51 { A2 .. } } }: ESipa framing only checks the 'BF51'
     * tag and DER, so the message frames; the EuiccPackageResult decoder then refuses it. */
    struct pl_sgp32_esipa_ipa_msg m;
    size_t n;
    uint8_t *b = sgp32_hex_arena(T("BF50", T("BF51", EPR_U)), &n);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_decode(b, n, &m), PL_OK);
    struct pl_sgp32_euicc_package_result *epr = calloc(1, sizeof(*epr));
    cr_assert_eq(
        pl_sgp32_euicc_package_result_decode(m.provide_result.result.euicc_package_result.p,
                                             m.provide_result.result.euicc_package_result.len, epr),
        PL_ERR_DER_TAG);
    free(epr);
}

/* ---- eIM -> IPA ---- */

Test(sgp32_esipa, get_eim_package_response_every_arm)
{
    struct pl_sgp32_esipa_eim_msg m;
    /* Erlang: noEimPackageAvailable (BF4F 03 02 01 01, EIM.md §1.8), PDT, EDR */
    eim_round_trip("BF4F03020101", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_GET_EIM_PACKAGE);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR);
    cr_assert_eq(m.get_eim_package.error_code, PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    eim_round_trip("BF4F0A" PDTREQ, &m);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER);
    cr_assert(raw_is(m.get_eim_package.raw, PDTREQ));
    eim_round_trip("BF4F0E" EDRREQ, &m);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST);

    /* an eUICC Package built by our encoder, carried verbatim */
    struct pl_sgp32_euicc_package pkg;
    uint8_t sig[64];
    struct pl_wr pw;
    memset(&pkg, 0, sizeof(pkg));
    memset(sig, 0x5A, sizeof(sig));
    pkg.eim_id = S("eim");
    pkg.counter = 3;
    pkg.n_ops = 1;
    pkg.psmo[0].kind = PL_SGP32_PSMO_GET_RAT;
    pl_wr_init_dyn(&pw, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, sig, 64, &pw), PL_OK);
    struct pl_sgp32_esipa_eim_msg e;
    memset(&e, 0, sizeof(e));
    e.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    e.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST;
    e.get_eim_package.raw = sgp32_bytes(pw.buf, pw.len);
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(&e, &w), PL_OK);
    cr_assert_eq(w.buf[0], 0xBF);
    cr_assert_eq(w.buf[1], 0x4F);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(w.buf, w.len, &m), PL_OK);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST);
    cr_assert_eq(m.get_eim_package.raw.len, pw.len);
    cr_assert_eq(memcmp(m.get_eim_package.raw.p, pw.buf, pw.len), 0);
    struct pl_sgp32_euicc_package_request *req = calloc(1, sizeof(*req));
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(m.get_eim_package.raw.p,
                                                       m.get_eim_package.raw.len, req),
                 PL_OK);
    cr_assert_eq(req->pkg.counter, 3);
    free(req);
    pl_wr_free(&w);
    pl_wr_free(&pw);
}

Test(sgp32_esipa, transfer_eim_package_request_every_arm)
{
    struct pl_sgp32_esipa_eim_msg m;
    /* Erlang: eimAcknowledgements */
    eim_round_trip("BF4E06" ACKS, &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE);
    cr_assert_eq(m.transfer_request.kind, PL_SGP32_EIM_PACKAGE_EIM_ACKNOWLEDGEMENTS);
    eim_round_trip(T("BF4E", PDTREQ), &m);
    cr_assert_eq(m.transfer_request.kind, PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER);
    eim_round_trip(T("BF4E", EDRREQ), &m);
    cr_assert_eq(m.transfer_request.kind, PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST);
    eim_round_trip(T("BF4E", T("BF51", CAT(T("30", "800165"), T("5F37", REP("5A", 64))))), &m);
    cr_assert_eq(m.transfer_request.kind, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST);
}

Test(sgp32_esipa, provide_result_response_every_arm)
{
    struct pl_sgp32_esipa_eim_msg m;
    /* Erlang: acknowledgements [13, 14]; emptyResponse (BF50 02 30 00); invalidEid */
    eim_round_trip("BF5009BF530680010D80010E", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS);
    cr_assert(raw_is(m.provide_result.acknowledgements, "BF530680010D80010E"));
    eim_round_trip("BF50023000", &m);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY);
    eim_round_trip("BF5003020103", &m);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR);
    cr_assert_eq(m.provide_result.error_code, 3);
}

Test(sgp32_esipa, relay_responses)
{
    struct pl_sgp32_esipa_eim_msg m;
    /* Erlang: error arms */
    eim_round_trip("BF3903810134", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_INITIATE_AUTHENTICATION);
    cr_assert(m.initiate_auth.is_error);
    cr_assert_eq(m.initiate_auth.error_code, 52);
    eim_round_trip("BF3A0381015F", &m);
    cr_assert(m.get_bpp.is_error);
    cr_assert_eq(m.get_bpp.error_code, 95);
    eim_round_trip("BF3B03820107", &m);
    cr_assert_eq(m.authenticate_client.kind, PL_SGP32_AUTH_CLIENT_ERROR);
    cr_assert_eq(m.authenticate_client.error_code, 7);
    eim_round_trip("BF4102A000", &m);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_CANCEL_SESSION);
    cr_assert_not(m.cancel_session.is_error);
    eim_round_trip("BF4103810102", &m);
    cr_assert(m.cancel_session.is_error);
    cr_assert_eq(m.cancel_session.error_code, 2);
    /* Erlang: authenticateClientOkDSEsipa with a PDT */
    eim_round_trip("BF3B0FA10D80020102BF5406A00480024143", &m);
    cr_assert_eq(m.authenticate_client.kind, PL_SGP32_AUTH_CLIENT_OK_DS);
    cr_assert(raw_is(m.authenticate_client.profile_download_trigger, "BF5406A00480024143"));

    /* hand-built ok arms: the relayed parts keep their bytes */
    const char *ss1 = T("30", CAT("800102", T("83", "736D6470")));
    const char *cert = T("30", CAT(T("30", "020101"), CAT(T("30", "0500"), "030100")));
    const char *ok =
        T("BF39",
          T("A0", CAT("800102",
                      CAT(ss1, CAT(T("5F37", REP("66", 64)),
                                   CAT("040301 0203",
                                       CAT(cert, CAT("0C024944", T("A2", T("A0", "800101"))))))))));
    eim_round_trip(ok, &m);
    cr_assert_not(m.initiate_auth.is_error);
    cr_assert(raw_is(m.initiate_auth.server_signed1, ss1));
    cr_assert(raw_is(m.initiate_auth.server_certificate, cert));
    cr_assert_eq(m.initiate_auth.server_signature1.len, 64);
    cr_assert_eq(m.initiate_auth.euicc_ci_pkid.len, 3);
    cr_assert(sgp32_buf_is(m.initiate_auth.matching_id, "ID"));
    cr_assert(raw_is(m.initiate_auth.ctx_params1, "A003800101"));

    const char *meta = T("BF25", CAT("5A0A98109909002143658739", "9100 9200"));
    const char *sd2 = T("30", "800102");
    const char *dp =
        T("BF3B",
          T("A0", CAT("800102", CAT(meta, CAT(sd2, CAT(T("5F37", REP("77", 64)),
                                                       CAT(cert, T("04", REP("88", 32)))))))));
    eim_round_trip(dp, &m);
    cr_assert_eq(m.authenticate_client.kind, PL_SGP32_AUTH_CLIENT_OK_DP);
    cr_assert(raw_is(m.authenticate_client.profile_metadata, meta));
    cr_assert(raw_is(m.authenticate_client.smdp_signed2, sd2));
    cr_assert(raw_is(m.authenticate_client.smdp_certificate, cert));
    cr_assert_eq(m.authenticate_client.hash_cc.len, 32);

    const char *bpp = T("BF36", CAT(T("BF23", "800101"), T("A0", T("87", "00"))));
    eim_round_trip(T("BF3A", T("A0", CAT("800102", bpp))), &m);
    cr_assert_not(m.get_bpp.is_error);
    cr_assert(raw_is(m.get_bpp.bound_profile_package, bpp));
    eim_round_trip(T("BF3A", T("A0", bpp)), &m);
    cr_assert_null(m.get_bpp.transaction_id.p);
}

/* ---- negative ---- */

Test(sgp32_esipa, ipa_to_eim_negative)
{
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"unknown message BF40", "BF4000", PL_ERR_DER_TAG},
        {"eIM->IPA only message decoded as IPA->eIM? (BF4F with an eIM arm)", "BF4F03020101",
         PL_ERR_DER_TAG},
        {"GetEimPackage EID 15 bytes",
         "BF4F115A0F"
         "890490321234512345123456789012",
         PL_ERR_DER_VALUE},
        {"GetEimPackage missing EID", "BF4F028000", PL_ERR_DER_TAG},
        {"GetEimPackage empty", "BF4F00", PL_ERR_MALFORMED},
        {"GetEimPackage rPLMN 2 bytes", "BF4F165A10" EID_HEX "8202 62F2", PL_ERR_DER_VALUE},
        {"GetEimPackage notifyStateChange not NULL", "BF4F155A10" EID_HEX "800100",
         PL_ERR_DER_VALUE},
        {"GetEimPackage rPLMN before cause", "BF4F1A5A10" EID_HEX "820362F210810105",
         PL_ERR_DER_TAG},
        {"GetEimPackage trailing", "BF4F125A10" EID_HEX "00", PL_ERR_DER_TRAILING},
        {"ProvideResult two results", T("BF50", CAT(EPR_U, EPR_U)), PL_ERR_DER_TAG},
        {"ProvideResult no result", T("BF50", EIDTLV), PL_ERR_MALFORMED},
        {"ProvideResult eimPackageReceived (Transfer only)", "BF50020500", PL_ERR_DER_TAG},
        {"ProvideResult EID 17 bytes", T("BF50", CAT("5A11" EID_HEX "00", EPR_U)),
         PL_ERR_DER_VALUE},
        {"ePRAndNotifications without notifications", T("BF50", T("30", EPR_U)), PL_ERR_MALFORMED},
        {"ePRAndNotifications bad notification", T("BF50", T("30", CAT(EPR_U, T("A0", "0400")))),
         PL_ERR_DER_TAG},
        {"Transfer PDT result (Provide only)", T("BF4E", PDTRES), PL_ERR_DER_TAG},
        {"Transfer two arms", "BF4E0405000500", PL_ERR_DER_TRAILING},
        {"HandleNotification arm [1]", T("BF3D", T("A1", pir())), PL_ERR_DER_TAG},
        {"HandleNotification without [0] wrapper", T("BF3D", pir()), PL_ERR_DER_TAG},
        {"HandleNotification notification INTEGER", T("BF3D", T("A0", "020101")), PL_ERR_DER_TAG},
        {"CancelSession second tag A1 { BF41 .. }", "BF410C80020102A106BF4103810105",
         PL_ERR_DER_TAG},
        {"CancelSession A1 with two TLVs", "BF410C80020102A106810105810105", PL_ERR_DER_TRAILING},
        {"CancelSession missing response", "BF410480020102", PL_ERR_MALFORMED},
        {"AuthenticateClient body not BF38", T("BF3B", CAT("80020102", T("BF21", "800101"))),
         PL_ERR_DER_TAG},
        {"AuthenticateClient txid 17 bytes",
         T("BF3B", CAT(T("80", REP("01", 17)), T("BF38", "800101"))), PL_ERR_DER_VALUE},
        {"GetBPP relayed body not DER", T("BF3A", CAT("80020102", "BF210402020001")),
         PL_ERR_DER_NONMINIMAL},
        {"InitiateAuth challenge 15 bytes", T("BF39", T("81", REP("CC", 15))), PL_ERR_DER_VALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_esipa_ipa_msg_decode, struct pl_sgp32_esipa_ipa_msg,
                            cases[i].hex, cases[i].err, cases[i].name);
}

Test(sgp32_esipa, eim_to_ipa_negative)
{
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"HandleNotification is IPA->eIM only", T("BF3D", T("A0", pir())), PL_ERR_DER_TAG},
        {"GetEimPackageRequest is IPA->eIM only", "BF4F125A10" EID_HEX, PL_ERR_DER_TAG},
        {"GetEimPackageResponse acks (Transfer only)", "BF4F06" ACKS, PL_ERR_DER_TAG},
        {"GetEimPackageResponse empty", "BF4F00", PL_ERR_MALFORMED},
        {"GetEimPackageResponse two arms", "BF4F06020101020102", PL_ERR_DER_TRAILING},
        {"Transfer error INTEGER (GetEimPackage only)", "BF4E03020101", PL_ERR_DER_TAG},
        {"ProvideResponse unknown arm", "BF5003810101", PL_ERR_DER_TAG},
        {"ProvideResponse emptyResponse with a universal element", "BF5004 3002 0500",
         PL_ERR_DER_TAG},
        {"InitiateAuth ok missing certificate",
         T("BF39", T("A0", CAT(T("30", "800102"), CAT(T("5F37", REP("66", 64)), "040101")))),
         PL_ERR_MALFORMED},
        {"InitiateAuth unknown arm", "BF3903820134", PL_ERR_DER_TAG},
        {"AuthenticateClient OkDS without txid", T("BF3B", T("A1", "")), PL_ERR_MALFORMED},
        {"AuthenticateClient hashCc 31 bytes",
         T("BF3B",
           T("A0", CAT(T("30", "800102"),
                       CAT(T("5F37", REP("77", 64)),
                           CAT(T("30", CAT(T("30", "020101"), CAT(T("30", "0500"), "030100"))),
                               T("04", REP("88", 31))))))),
         PL_ERR_DER_VALUE},
        {"GetBPP ok without BPP", T("BF3A", T("A0", "800102")), PL_ERR_MALFORMED},
        {"CancelSession ok primitive", "BF41028000", PL_ERR_DER_TAG},
        {"trailing", "BF5003020103 00", PL_ERR_DER_TRAILING},
        {"indefinite length", "BF5080020103 0000", PL_ERR_DER_INDEFINITE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_esipa_eim_msg_decode, struct pl_sgp32_esipa_eim_msg,
                            cases[i].hex, cases[i].err, cases[i].name);
}

Test(sgp32_esipa, encoders_reject_invalid)
{
    struct pl_sgp32_esipa_ipa_msg im;
    struct pl_sgp32_esipa_eim_msg em;
    struct pl_wr w;
    static const uint8_t wrong[] = {0xBF, 0x52, 0x00};
    static const uint8_t txid[] = {1};

    memset(&em, 0, sizeof(em));
    em.kind = PL_SGP32_ESIPA_HANDLE_NOTIFICATION;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(&em, &w), PL_ERR_INVAL, "HandleNotification");
    pl_wr_free(&w);

    memset(&em, 0, sizeof(em));
    em.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    em.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST;
    em.get_eim_package.raw = sgp32_bytes(wrong, sizeof(wrong)); /* BF52 where BF51 belongs */
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(&em, &w), PL_ERR_INVAL, "raw tag mismatch");
    pl_wr_free(&w);

    em.get_eim_package.kind = PL_SGP32_EIM_PACKAGE_EIM_ACKNOWLEDGEMENTS;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_encode(&em, &w), PL_ERR_INVAL, "acks in GetEimPackage");
    pl_wr_free(&w);

    memset(&im, 0, sizeof(im));
    im.kind = PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE;
    im.transfer_response.kind = PL_SGP32_EIM_RESULT_PDT_RESULT;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&im, &w), PL_ERR_INVAL, "PDT in Transfer");
    pl_wr_free(&w);

    memset(&im, 0, sizeof(im));
    im.kind = PL_SGP32_ESIPA_AUTHENTICATE_CLIENT;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&im, &w), PL_ERR_INVAL, "no txid, no body");
    pl_wr_free(&w);

    memset(&im, 0, sizeof(im));
    im.kind = PL_SGP32_ESIPA_CANCEL_SESSION;
    im.cancel_session.transaction_id = sgp32_bytes(txid, 1);
    im.cancel_session.cancel_session_response = sgp32_bytes(wrong, sizeof(wrong));
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&im, &w), PL_ERR_INVAL, "cancel arm BF52");
    pl_wr_free(&w);

    memset(&im, 0, sizeof(im));
    im.kind = (enum pl_sgp32_esipa_kind)60;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&im, &w), PL_ERR_INVAL, "unknown kind");
    pl_wr_free(&w);
}
