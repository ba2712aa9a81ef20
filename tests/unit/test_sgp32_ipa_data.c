/* Unit tests: SGP.32 IpaEuiccDataRequest / IpaEuiccDataResponse, ProfileDownloadTrigger
 * request / result, EimAcknowledgements (sgp32_ipa_data.h). Known answers marked "Erlang"
 * were produced by Erlang/OTP asn1 (DER) from shared/asn1/SGP32Definitions.asn. */
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"
#include "sgp32_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define EPR_UNSIGNED_E "BF5105A203800165"

static uint8_t *encode_edr(const struct pl_sgp32_ipa_euicc_data_request *r, size_t *len)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_encode(r, &w), PL_OK);
    return pl_wr_take(&w, len);
}

Test(sgp32_ipa_data, euicc_data_request_known_answers)
{
    static const uint8_t tags[] = {0xA0, 0x81, 0xA2, 0xBF, 0x20, 0xA8};
    static const uint8_t pkid[] = {1, 2, 3};
    static const uint8_t tx[] = {7, 7};
    struct pl_sgp32_ipa_euicc_data_request r, d;
    size_t len;

    /* Erlang: every component, notification criterion seqNumber 5, EPR criterion 300 */
    memset(&r, 0, sizeof(r));
    r.tag_list = sgp32_bytes(tags, sizeof(tags));
    r.euicc_ci_pkid = sgp32_bytes(pkid, sizeof(pkid));
    r.notif_search = PL_SGP32_NOTIF_SEARCH_SEQ;
    r.notif_seq = 5;
    r.has_epr_search = true;
    r.epr_seq = 300;
    r.eim_txid = sgp32_bytes(tx, sizeof(tx));
    uint8_t *b = encode_edr(&r, &len);
    sgp32_assert_hex(b, len, "BF521C5C06A081A2BF20A80403010203A103800105A2048002012C83020707");
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(b, len, &d), PL_OK);
    cr_assert(pl_sgp32_buf_eq(d.tag_list, r.tag_list));
    cr_assert(pl_sgp32_buf_eq(d.euicc_ci_pkid, r.euicc_ci_pkid));
    cr_assert_eq(d.notif_search, PL_SGP32_NOTIF_SEARCH_SEQ);
    cr_assert_eq(d.notif_seq, 5);
    cr_assert(d.has_epr_search);
    cr_assert_eq(d.epr_seq, 300);
    cr_assert(pl_sgp32_buf_eq(d.eim_txid, r.eim_txid));
    free(b);

    /* Erlang: profileManagementOperation {enable, delete}, tagList A2 */
    static const uint8_t a2[] = {0xA2};
    memset(&r, 0, sizeof(r));
    r.tag_list = sgp32_bytes(a2, 1);
    r.notif_search = PL_SGP32_NOTIF_SEARCH_PMO;
    r.notif_events = PL_SGP32_NOTIF_ENABLE | PL_SGP32_NOTIF_DELETE;
    b = encode_edr(&r, &len);
    sgp32_assert_hex(b, len, "BF52095C01A2A10481020450");
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.notif_search, PL_SGP32_NOTIF_SEARCH_PMO);
    cr_assert_eq(d.notif_events, PL_SGP32_NOTIF_ENABLE | PL_SGP32_NOTIF_DELETE);
    cr_assert_not(d.has_epr_search);
    cr_assert_null(d.eim_txid.p);
    free(b);

    /* Erlang: empty tagList only */
    memset(&r, 0, sizeof(r));
    r.tag_list = sgp32_bytes(a2, 0);
    b = encode_edr(&r, &len);
    sgp32_assert_hex(b, len, "BF52025C00");
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(b, len, &d), PL_OK);
    cr_assert_not_null(d.tag_list.p);
    cr_assert_eq(d.tag_list.len, 0);
    free(b);

    /* tagList is mandatory */
    struct pl_wr w;
    memset(&r, 0, sizeof(r));
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_encode(&r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

Test(sgp32_ipa_data, euicc_data_request_negative)
{
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"missing tagList", "BF5203830101", PL_ERR_DER_TAG},
        {"empty", "BF5200", PL_ERR_MALFORMED},
        {"tagList constructed", "BF52027C00", PL_ERR_DER_TAG},
        {"notification criterion primitive [1]", "BF52055C00810105", PL_ERR_DER_TAG},
        {"notification criterion unknown arm", "BF52075C00A103820105", PL_ERR_DER_TAG},
        {"notification criterion two arms", "BF520A5C00A106800105800106", PL_ERR_DER_TRAILING},
        {"EPR criterion arm [1]", "BF52075C00A203810105", PL_ERR_DER_TAG},
        {"EPR criterion negative", "BF52075C00A2038001FF", PL_ERR_DER_VALUE},
        {"txid empty", "BF52045C008300", PL_ERR_DER_VALUE},
        {"criteria out of order", "BF520C5C00A203800101A103800101", PL_ERR_DER_TAG},
        {"extension [4] accepted", "BF52055C00840100", PL_OK},
        {"wrong outer", "BF53025C00", PL_ERR_DER_TAG},
        {"trailing", "BF52025C0000", PL_ERR_DER_TRAILING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_ipa_euicc_data_request_decode,
                            struct pl_sgp32_ipa_euicc_data_request, cases[i].hex, cases[i].err,
                            cases[i].name);
}

static uint8_t *encode_edresp(const struct pl_sgp32_ipa_euicc_data_response *r, size_t *len)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_encode(r, &w), PL_OK);
    return pl_wr_take(&w, len);
}

Test(sgp32_ipa_data, euicc_data_response_known_answer)
{
    /* Erlang: defaultSmdpAddress, two EPRs, rootSmdsAddress, token 77, txid, capabilities */
    static const char *ref =
        "BF5241A03F810C736D64702E6578616D706C65A210" EPR_UNSIGNED_E EPR_UNSIGNED_E
        "830C736D64732E6578616D706C6584014D87020505A808800202"
        "44810206C0";
    static const uint8_t tx[] = {5, 5};
    size_t el, len;
    uint8_t *eprs = sgp32_hex(EPR_UNSIGNED_E EPR_UNSIGNED_E, &el);
    struct pl_sgp32_ipa_euicc_data_response r, d;

    memset(&r, 0, sizeof(r));
    r.data.default_smdp_address = S("smdp.example");
    r.data.epr_list.p = eprs;
    r.data.epr_list.len = el;
    r.data.root_smds_address = S("smds.example");
    r.data.has_association_token = true;
    r.data.association_token = 77;
    r.data.eim_txid = sgp32_bytes(tx, 2);
    r.data.has_ipa_capabilities = true;
    r.data.ipa_features = PL_SGP32_IPA_INDIRECT_RSP | PL_SGP32_IPA_MINIMIZE_ESIPA_BYTES;
    r.data.has_ipa_supported_protocols = true;
    r.data.ipa_supported_protocols = PL_SGP32_PROTO_RETRIEVE_HTTPS | PL_SGP32_PROTO_RETRIEVE_COAPS;
    uint8_t *b = encode_edresp(&r, &len);
    sgp32_assert_hex(b, len, ref);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(b, len, &d), PL_OK);
    cr_assert_not(d.is_error);
    cr_assert(sgp32_buf_is(d.data.default_smdp_address, "smdp.example"));
    cr_assert(sgp32_buf_is(d.data.root_smds_address, "smds.example"));
    cr_assert_eq(d.data.epr_list.count, 2);
    cr_assert_eq(d.data.association_token, 77);
    cr_assert_eq(d.data.ipa_features, r.data.ipa_features);
    cr_assert_eq(d.data.ipa_supported_protocols, r.data.ipa_supported_protocols);
    cr_assert_null(d.data.notifications.p);
    cr_assert_null(d.data.euicc_certificate.p);

    /* each EPR of the list decodes with the EPR decoder */
    struct pl_sgp32_iter it;
    struct pl_tlv e;
    struct pl_sgp32_euicc_package_result *epr = calloc(1, sizeof(*epr));
    pl_sgp32_iter_init(&it, &d.data.epr_list);
    int n = 0;
    while (pl_sgp32_iter_next(&it, &e) == PL_OK) {
        cr_assert_eq(pl_sgp32_euicc_package_result_decode(e.raw, e.raw_len, epr), PL_OK);
        cr_assert_eq(epr->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
        n++;
    }
    cr_assert_eq(n, 2);
    free(epr);
    free(b);
    free(eprs);

    /* Erlang: error arm; empty ipaEuiccData */
    memset(&r, 0, sizeof(r));
    r.is_error = true;
    r.error_txid = sgp32_bytes(tx, 2);
    r.error_code = PL_SGP32_EDR_INCORRECT_TAG_LIST;
    b = encode_edresp(&r, &len);
    sgp32_assert_hex(b, len, "BF5209A10780020505020101");
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(b, len, &d), PL_OK);
    cr_assert(d.is_error);
    cr_assert_eq(d.error_code, 1);
    cr_assert(pl_sgp32_buf_eq(d.error_txid, r.error_txid));
    free(b);
    memset(&r, 0, sizeof(r));
    b = encode_edresp(&r, &len);
    sgp32_assert_hex(b, len, "BF5202A000");
    free(b);
}

Test(sgp32_ipa_data, euicc_data_response_certificates_and_infos)
{
    /* eumCertificate [5] / euiccCertificate [6] are IMPLICIT: A5/A6 hold the certificate's
     * contents (TBS, algorithm, signature) directly (EIM.md §1.8). */
    size_t eum_len, euicc_len, len;
    uint8_t *eum = sgp32_file(SGP32_EUM_CERT, &eum_len);
    uint8_t *euicc = sgp32_file(SGP32_EUICC_CERT, &euicc_len);
    struct pl_tlv ct;
    struct pl_sgp32_ipa_euicc_data_response r, d;
    size_t nl, il, dl;
    const char *notif = CAT(T("BF37", CAT(T("BF27", "800101"), T("5F37", REP("11", 64)))),
                            T("30", CAT(T("BF2F", "800102"), T("5F37", REP("22", 64)))));
    uint8_t *notifs = sgp32_hex(notif, &nl);
    uint8_t *info1 = sgp32_hex("BF2003820102", &il);
    uint8_t *dev = sgp32_hex("800435290611A100", &dl); /* DeviceInfo contents: tac, caps */

    memset(&r, 0, sizeof(r));
    r.data.notifications.p = notifs;
    r.data.notifications.len = nl;
    r.data.euicc_info1 = sgp32_bytes(info1, il);
    cr_assert_eq(pl_der_parse_one(eum, eum_len, 0x30, &ct), PL_OK);
    r.data.eum_certificate = sgp32_bytes(ct.value, ct.len);
    cr_assert_eq(pl_der_parse_one(euicc, euicc_len, 0x30, &ct), PL_OK);
    r.data.euicc_certificate = sgp32_bytes(ct.value, ct.len);
    r.data.device_info = sgp32_bytes(dev, dl);
    uint8_t *b = encode_edresp(&r, &len);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.data.notifications.count, 2);
    cr_assert(pl_sgp32_buf_eq(d.data.euicc_info1, r.data.euicc_info1));
    cr_assert(pl_sgp32_buf_eq(d.data.eum_certificate, r.data.eum_certificate));
    cr_assert(pl_sgp32_buf_eq(d.data.euicc_certificate, r.data.euicc_certificate));
    cr_assert(pl_sgp32_buf_eq(d.data.device_info, r.data.device_info));
    /* the A6 bytes on the wire are the certificate minus its '30' header */
    cr_assert_not_null(sgp32_find(b, len, euicc + 4, euicc_len - 4));
    cr_assert_null(sgp32_find(b, len, euicc, 4));
    free(b);

    /* A6 holding a complete certificate (explicit reading) is tolerated */
    char *certhex = malloc(2 * euicc_len + 1);
    cr_assert_eq(pl_hex_encode(euicc, euicc_len, certhex, 2 * euicc_len + 1), PL_OK);
    b = sgp32_hex(T("BF52", T("A0", T("A6", certhex))), &len);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_decode(b, len, &d), PL_OK);
    cr_assert(pl_sgp32_buf_eq(d.data.euicc_certificate, r.data.euicc_certificate));
    free(b);
    free(certhex);

    free(notifs);
    free(info1);
    free(dev);
    free(eum);
    free(euicc);
}

Test(sgp32_ipa_data, euicc_data_response_negative)
{
    char many[2048] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, EPR_UNSIGNED_E);
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"no CHOICE arm (BF52 { 81 .. })", "BF520481020000", PL_ERR_DER_TAG},
        {"arm [2]", "BF5202A200", PL_ERR_DER_TAG},
        {"two arms", "BF5204A000A000", PL_ERR_DER_TRAILING},
        {"EPR list element not BF51", T("BF52", T("A0", T("A2", "A203800165"))), PL_ERR_DER_TAG},
        {"65 EPRs", T("BF52", T("A0", T("A2", many))), PL_ERR_OVERFLOW},
        {"notification element wrong tag", T("BF52", T("A0", T("A0", "0400"))), PL_ERR_DER_TAG},
        {"certificate body not a certificate", T("BF52", T("A0", T("A6", "0500"))), PL_ERR_DER_TAG},
        {"capabilities without features", T("BF52", T("A0", T("A8", "810100"))), PL_ERR_DER_TAG},
        {"capabilities bad bits", T("BF52", T("A0", T("A8", "80020401"))), PL_ERR_DER_VALUE},
        {"root SM-DS not UTF-8", T("BF52", T("A0", "8301C0")), PL_ERR_DER_VALUE},
        {"components out of order", T("BF52", T("A0", "840101 830161")), PL_ERR_DER_TAG},
        {"extension [10] accepted", T("BF52", T("A0", "840101 8A0100")), PL_OK},
        {"error arm without code", T("BF52", T("A1", "800101")), PL_ERR_MALFORMED},
        {"error arm txid empty", T("BF52", T("A1", "8000020101")), PL_ERR_DER_VALUE},
        {"EUICCInfo1 not DER", T("BF52", T("A0", "BF200402020001")), PL_ERR_DER_NONMINIMAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_ipa_euicc_data_response_decode,
                            struct pl_sgp32_ipa_euicc_data_response, cases[i].hex, cases[i].err,
                            cases[i].name);
}

static uint8_t *encode_pdt(const struct pl_sgp32_profile_download_trigger_request *r, size_t *len)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_encode(r, &w), PL_OK);
    return pl_wr_take(&w, len);
}

Test(sgp32_ipa_data, profile_download_trigger_request)
{
    struct pl_sgp32_profile_download_trigger_request r, d;
    static const uint8_t one[] = {1}, two[] = {1, 2};
    size_t len;

    /* Erlang: activation code + txid; contactDefaultSmdp; contactSmds {}; no data */
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_PDD_ACTIVATION_CODE;
    r.activation_code = S("1$smdp.example$MATCH");
    r.eim_txid = sgp32_bytes(one, 1);
    uint8_t *b = encode_pdt(&r, &len);
    sgp32_assert_hex(b, len, "BF541BA01680143124736D64702E6578616D706C65244D41544348820101");
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.kind, PL_SGP32_PDD_ACTIVATION_CODE);
    cr_assert(sgp32_buf_is(d.activation_code, "1$smdp.example$MATCH"));
    cr_assert(pl_sgp32_buf_eq(d.eim_txid, r.eim_txid));
    free(b);

    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_PDD_CONTACT_DEFAULT_SMDP;
    b = encode_pdt(&r, &len);
    sgp32_assert_hex(b, len, "BF5404A0028100");
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.kind, PL_SGP32_PDD_CONTACT_DEFAULT_SMDP);
    free(b);

    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_PDD_CONTACT_SMDS;
    b = encode_pdt(&r, &len);
    sgp32_assert_hex(b, len, "BF5404A002A200");
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.kind, PL_SGP32_PDD_CONTACT_SMDS);
    cr_assert_null(d.smds_address.p);
    free(b);

    /* contactSmds with an address: A2 { 80 addr } (automatic tag inside the SEQUENCE) */
    r.smds_address = S("ds");
    b = encode_pdt(&r, &len);
    sgp32_assert_hex(b, len, "BF5408A006A20480026473");
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert(sgp32_buf_is(d.smds_address, "ds"));
    free(b);

    memset(&r, 0, sizeof(r));
    r.eim_txid = sgp32_bytes(two, 2);
    b = encode_pdt(&r, &len);
    sgp32_assert_hex(b, len, "BF540482020102");
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.kind, PL_SGP32_PDD_NONE);
    free(b);

    /* activation code at the 255-byte limit, and over it */
    char ac[300];
    memset(ac, 'A', 256);
    ac[255] = 0;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_PDD_ACTIVATION_CODE;
    r.activation_code = pl_sgp32_str(ac);
    b = encode_pdt(&r, &len);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(b, len, &d), PL_OK);
    cr_assert_eq(d.activation_code.len, 255);
    free(b);
    ac[255] = 'A';
    ac[256] = 0;
    r.activation_code = pl_sgp32_str(ac);
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_encode(&r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"activation code 256 bytes", T("BF54", T("A0", T("80", REP("41", 256)))),
         PL_ERR_DER_VALUE},
        {"activationCode without the [0] wrapper", "BF5403800141", PL_ERR_DER_TAG},
        {"unknown data arm", "BF5404A0028300", PL_ERR_DER_TAG},
        {"contactDefaultSmdp not NULL", "BF5405A003810100", PL_ERR_DER_VALUE},
        {"contactSmds address tagged [1]", "BF5408A006A20481026473", PL_OK},
        {"txid before data", "BF5407820101A0028100", PL_ERR_DER_TAG},
        {"wrong outer", "BF5504A0028100", PL_ERR_DER_TAG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_profile_download_trigger_request_decode,
                            struct pl_sgp32_profile_download_trigger_request, cases[i].hex,
                            cases[i].err, cases[i].name);
}

Test(sgp32_ipa_data, profile_download_trigger_result)
{
    struct pl_sgp32_profile_download_trigger_result r, d;
    static const uint8_t one[] = {1};
    static const uint8_t rsp[] = {0xBF, 0x39, 0x00};
    size_t len, pl;
    struct pl_wr w;

    /* Erlang: error ecallActive with errorResponse, txid 01; error undefined */
    memset(&r, 0, sizeof(r));
    r.eim_txid = sgp32_bytes(one, 1);
    r.is_error = true;
    r.error_reason = PL_SGP32_PDT_ECALL_ACTIVE;
    r.error_response = sgp32_bytes(rsp, 3);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF540D82010130088001680403BF3900");
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_decode(w.buf, w.len, &d), PL_OK);
    cr_assert(d.is_error);
    cr_assert_eq(d.error_reason, 104);
    cr_assert(pl_sgp32_buf_eq(d.error_response, r.error_response));
    cr_assert(pl_sgp32_buf_eq(d.eim_txid, r.eim_txid));
    pl_wr_free(&w);

    memset(&r, 0, sizeof(r));
    r.is_error = true;
    r.error_reason = PL_SGP32_PDT_UNDEFINED;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5405300380017F");
    pl_wr_free(&w);

    /* profileInstallationResult: the BF37 TLV carried raw */
    const char *pir = T("BF37", CAT(T("BF27", "800101"), T("5F37", REP("11", 64))));
    uint8_t *p = sgp32_hex(pir, &pl);
    memset(&r, 0, sizeof(r));
    r.profile_installation_result = sgp32_bytes(p, pl);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, T("BF54", pir));
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_not(d.is_error);
    cr_assert(pl_sgp32_buf_eq(d.profile_installation_result, r.profile_installation_result));
    pl_wr_free(&w);
    free(p);

    /* the encoder refuses a PIR that is not one 'BF37' TLV */
    static const uint8_t junk[] = {0x30, 0x00};
    r.profile_installation_result = sgp32_bytes(junk, 2);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    (void)len;

    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"result data missing", "BF5403820101", PL_ERR_MALFORMED},
        {"unknown result arm", "BF5402A000", PL_ERR_DER_TAG},
        {"error without reason", "BF5404300204 00", PL_ERR_DER_TAG},
        {"two result arms", "BF540A30038001683003800168", PL_ERR_DER_TAG},
        {"PIR not DER", "BF5407BF370402020001", PL_ERR_DER_NONMINIMAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_profile_download_trigger_result_decode,
                            struct pl_sgp32_profile_download_trigger_result, cases[i].hex,
                            cases[i].err, cases[i].name);
}

Test(sgp32_ipa_data, eim_acknowledgements)
{
    struct pl_sgp32_eim_acknowledgements a, d;
    struct pl_wr w;

    /* Erlang: [1, 200, 0] and [] */
    memset(&a, 0, sizeof(a));
    a.n = 3;
    a.seq[0] = 1;
    a.seq[1] = 200;
    a.seq[2] = 0;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_acknowledgements_encode(&a, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF530A800101800200C8800100");
    cr_assert_eq(pl_sgp32_eim_acknowledgements_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.seq[1], 200);
    pl_wr_free(&w);

    a.n = 0;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_acknowledgements_encode(&a, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5300");
    cr_assert_eq(pl_sgp32_eim_acknowledgements_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(d.n, 0);
    pl_wr_free(&w);

    a.n = PL_SGP32_MAX_ACKS + 1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_acknowledgements_encode(&a, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    char many[1024] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, "800101");
    char cap[1024] = "";
    for (int i = 0; i < 64; i++)
        strcat(cap, "800101");
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"64 (cap)", T("BF53", cap), PL_OK},
        {"65", T("BF53", many), PL_ERR_OVERFLOW},
        {"universal INTEGER elements", "BF5303020101", PL_ERR_DER_TAG},
        {"negative", "BF53038001FF", PL_ERR_DER_VALUE},
        {"over 2^31-1", "BF5307800500800000 00", PL_ERR_DER_VALUE},
        {"wrong outer", "BF5203800101", PL_ERR_DER_TAG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_eim_acknowledgements_decode,
                            struct pl_sgp32_eim_acknowledgements, cases[i].hex, cases[i].err,
                            cases[i].name);
}
