/* Unit tests: SGP.32 EimConfigurationData, AddInitialEim, GetEimConfigurationData
 * (sgp32_eim_config.h). Known answers marked "Erlang" were produced by Erlang/OTP asn1
 * (DER) from shared/asn1/SGP32Definitions.asn, an encoder independent of ours. */
#include "provline/protocol/sgp32_eim_config.h"
#include "sgp32_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* SubjectPublicKeyInfo contents (AlgorithmIdentifier ecPublicKey/P-256, BIT STRING with a
 * dummy 3-byte key: structure only), and the whole SPKI. */
#define SPKI_BODY_HEX "301306072A8648CE3D020106082A8648CE3D030107030400040102"
#define SPKI_HEX      "301B" SPKI_BODY_HEX
/* Erlang: eimId "eim.example", fqdn, type 2, counter 300, token 128, both key CHOICEs as
 * eimPublicKey/trustedEimPkTls, protocols {0,3}, ciPKId 01020304, indirect download. */
#define FULL_HEX                                                                                   \
    "3073800B65696D2E6578616D706C65810F65696D2E6578616D706C652E636F6D8201028302012C84020080"       \
    "A51DA01B301306072A8648CE3D020106082A8648CE3D030107030400040102"                               \
    "A61DA01B301306072A8648CE3D020106082A8648CE3D030107030400040102870204908804010203048900"

static struct pl_sgp32_eim_config full_config(const uint8_t *spki, size_t spki_len)
{
    struct pl_sgp32_eim_config c;
    memset(&c, 0, sizeof(c));
    c.eim_id = S("eim.example");
    c.eim_fqdn = S("eim.example.com");
    c.has_eim_id_type = true;
    c.eim_id_type = PL_SGP32_EIM_ID_TYPE_FQDN;
    c.has_counter = true;
    c.counter = 300;
    c.has_association_token = true;
    c.association_token = 128;
    cr_assert_eq(
        pl_sgp32_key_data_from_der(PL_SGP32_KEY_SPKI, spki, spki_len, &c.eim_public_key_data),
        PL_OK);
    c.trusted_public_key_data_tls = c.eim_public_key_data;
    c.has_supported_protocol = true;
    c.supported_protocol = PL_SGP32_PROTO_RETRIEVE_HTTPS | PL_SGP32_PROTO_INJECT_COAPS;
    static const uint8_t ski[] = {1, 2, 3, 4};
    c.euicc_ci_pkid = sgp32_bytes(ski, sizeof(ski));
    c.indirect_profile_download = true;
    return c;
}

static void assert_config_eq(const struct pl_sgp32_eim_config *a,
                             const struct pl_sgp32_eim_config *b)
{
    cr_assert(pl_sgp32_buf_eq(a->eim_id, b->eim_id));
    cr_assert(pl_sgp32_buf_eq(a->eim_fqdn, b->eim_fqdn));
    cr_assert_eq(a->has_eim_id_type, b->has_eim_id_type);
    cr_assert_eq(a->eim_id_type, b->eim_id_type);
    cr_assert_eq(a->has_counter, b->has_counter);
    cr_assert_eq(a->counter, b->counter);
    cr_assert_eq(a->has_association_token, b->has_association_token);
    cr_assert_eq(a->association_token, b->association_token);
    cr_assert_eq(a->eim_public_key_data.kind, b->eim_public_key_data.kind);
    cr_assert(pl_sgp32_buf_eq(a->eim_public_key_data.body, b->eim_public_key_data.body));
    cr_assert_eq(a->trusted_public_key_data_tls.kind, b->trusted_public_key_data_tls.kind);
    cr_assert(
        pl_sgp32_buf_eq(a->trusted_public_key_data_tls.body, b->trusted_public_key_data_tls.body));
    cr_assert_eq(a->has_supported_protocol, b->has_supported_protocol);
    cr_assert_eq(a->supported_protocol, b->supported_protocol);
    cr_assert(pl_sgp32_buf_eq(a->euicc_ci_pkid, b->euicc_ci_pkid));
    cr_assert_eq(a->indirect_profile_download, b->indirect_profile_download);
}

Test(sgp32_eim_config, full_known_answer_and_round_trip)
{
    size_t spki_len, n;
    uint8_t *spki = sgp32_hex(SPKI_HEX, &spki_len);
    struct pl_sgp32_eim_config c = full_config(spki, spki_len), d;
    struct pl_wr w;

    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, FULL_HEX);

    uint8_t *ref = sgp32_hex(FULL_HEX, &n);
    cr_assert_eq(pl_sgp32_eim_config_decode(ref, n, &d), PL_OK);
    assert_config_eq(&c, &d);
    cr_assert(sgp32_buf_is(d.eim_id, "eim.example"));
    cr_assert_eq(d.eim_public_key_data.kind, PL_SGP32_KEY_SPKI);
    /* body is the SPKI contents: the SPKI DER without its '30 1B' header */
    cr_assert_eq(d.eim_public_key_data.body.len, spki_len - 2);
    cr_assert_eq(memcmp(d.eim_public_key_data.body.p, spki + 2, spki_len - 2), 0);
    free(ref);
    free(spki);
    pl_wr_free(&w);
}

Test(sgp32_eim_config, minimal_and_negative_token)
{
    /* eimId only, then associationToken -1 ("let the eUICC compute one", onomondo-eim). */
    struct pl_sgp32_eim_config c, d;
    struct pl_wr w;
    memset(&c, 0, sizeof(c));
    c.eim_id = S("b");
    c.has_association_token = true;
    c.association_token = -1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "30068001628401FF");
    cr_assert_eq(pl_sgp32_eim_config_decode(w.buf, w.len, &d), PL_OK);
    assert_config_eq(&c, &d);
    cr_assert_eq(d.association_token, -1);
    pl_wr_free(&w);
}

Test(sgp32_eim_config, certificate_arm_with_real_certificate)
{
    size_t len;
    uint8_t *cert = sgp32_file(SGP32_EIM_CERT, &len);
    struct pl_sgp32_eim_config c, d;
    struct pl_wr w;

    memset(&c, 0, sizeof(c));
    c.eim_id = S("eim");
    cr_assert_eq(pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, cert, len, &c.eim_public_key_data),
                 PL_OK);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_OK);
    /* A5 { A1 { tbsCertificate, signatureAlgorithm, signature } }: implicit arm */
    cr_assert_eq(pl_sgp32_eim_config_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(d.eim_public_key_data.kind, PL_SGP32_KEY_CERT);
    cr_assert(pl_sgp32_buf_eq(d.eim_public_key_data.body, c.eim_public_key_data.body));

    /* The body re-wrapped in '30' is the original certificate, usable as X.509. */
    struct pl_wr cw;
    struct pl_cert *pc = NULL;
    pl_wr_init_dyn(&cw, SGP32_TEST_WR_MAX);
    (void)pl_der_put_tlv(&cw, PL_TAG_SEQUENCE, d.eim_public_key_data.body.p,
                         d.eim_public_key_data.body.len);
    cr_assert_eq(pl_wr_status(&cw), PL_OK);
    cr_assert_eq(cw.len, len);
    cr_assert_eq(memcmp(cw.buf, cert, len), 0);
    cr_assert_eq(pl_cert_parse(cw.buf, cw.len, &pc), PL_OK);
    pl_cert_free(pc);
    pl_wr_free(&cw);
    pl_wr_free(&w);
    free(cert);
}

Test(sgp32_eim_config, explicit_arm_reading_tolerated)
{
    /* A5 { A0 { 30 <spki> } } (OpenIoTRSP's reading) decodes to the same view, and
     * re-encodes to the X.680 implicit form A5 { A0 { <spki contents> } }. */
    size_t n, bl;
    uint8_t *b = sgp32_hex("3024 800165 A51F A01D " SPKI_HEX, &n);
    uint8_t *body = sgp32_hex(SPKI_BODY_HEX, &bl);
    struct pl_sgp32_eim_config d;
    struct pl_wr w;

    cr_assert_eq(pl_sgp32_eim_config_decode(b, n, &d), PL_OK);
    cr_assert_eq(d.eim_public_key_data.kind, PL_SGP32_KEY_SPKI);
    cr_assert_eq(d.eim_public_key_data.body.len, bl);
    cr_assert_eq(memcmp(d.eim_public_key_data.body.p, body, bl), 0);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&d, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "3022 800165 A51D A01B " SPKI_BODY_HEX);
    pl_wr_free(&w);
    free(body);
    free(b);

    /* The explicit wrapper must hold exactly one SPKI: a truncated inner length fails. */
    b = sgp32_hex("3024 800165 A51F A01D 301C" SPKI_BODY_HEX, &n);
    cr_assert_eq(pl_sgp32_eim_config_decode(b, n, &d), PL_ERR_DER_LENGTH);
    free(b);
}

struct neg_case {
    const char *name;
    const char *hex;
    int err;
};

Test(sgp32_eim_config, negative_cases)
{
    static const struct neg_case cases[] = {
        {"wrong outer tag", "31038001 65", PL_ERR_DER_TAG},
        {"missing eimId", "3003 830101", PL_ERR_DER_TAG},
        {"empty sequence", "3000", PL_ERR_MALFORMED},
        {"empty eimId", "3002 8000", PL_ERR_DER_VALUE},
        {"eimId not UTF-8", "3003 8001 ff", PL_ERR_DER_VALUE},
        {"counter negative", "3006 800165 8301ff", PL_ERR_DER_VALUE},
        {"counter over 2^31-1", "300A 800165 83050080000000", PL_ERR_DER_VALUE},
        {"counter non-minimal", "3007 800165 83020001", PL_ERR_DER_NONMINIMAL},
        {"duplicate idType", "3009 800165 820101 820102", PL_ERR_DER_TAG},
        {"out of order", "3009 800165 830101 820102", PL_ERR_DER_TAG},
        {"unknown key arm", "3009 800165 A504 A2020500", PL_ERR_DER_TAG},
        {"two key arms", "3009 800165 A504 A000A100", PL_ERR_DER_TRAILING},
        {"universal element after the root", "3006 800165 020100", PL_ERR_DER_TAG},
        {"key arm not SPKI", "3009 800165 A504 A0020500", PL_ERR_DER_TAG},
        {"NULL with content", "3006 800165 890100", PL_ERR_DER_VALUE},
        {"bit string bad padding", "3007 800165 87020491", PL_ERR_DER_VALUE},
        {"bit 32 set", "300B 800165 8706000000000080", PL_ERR_DER_VALUE},
        {"trailing bytes", "3003800165 00", PL_ERR_DER_TRAILING},
        {"indefinite length", "3080 800165 0000", PL_ERR_DER_INDEFINITE},
        {"truncated", "3005 800165", PL_ERR_DER_LENGTH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n;
        uint8_t *b = sgp32_hex(cases[i].hex, &n);
        struct pl_sgp32_eim_config d;
        int rc = pl_sgp32_eim_config_decode(b, n, &d);
        cr_expect_eq(rc, cases[i].err, "%s: got %d (%s), want %d", cases[i].name, rc,
                     pl_strerror(rc), cases[i].err);
        free(b);
    }
}

Test(sgp32_eim_config, extension_additions_skipped)
{
    /* EXTENSIBILITY IMPLIED: an unknown trailing component (here [30] and 9F7F) is ignored. */
    size_t n;
    uint8_t *b = sgp32_hex("300B 800165 9E0100 9F7F020102", &n);
    struct pl_sgp32_eim_config d;
    cr_assert_eq(pl_sgp32_eim_config_decode(b, n, &d), PL_OK);
    cr_assert(sgp32_buf_is(d.eim_id, "e"));
    free(b);
}

Test(sgp32_eim_config, encoder_rejects_invalid)
{
    struct pl_sgp32_eim_config c;
    struct pl_wr w;
    char longid[130];
    memset(longid, 'x', 129);
    longid[129] = 0;

    memset(&c, 0, sizeof(c));
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_ERR_INVAL, "eimId absent");
    pl_wr_free(&w);

    c.eim_id = pl_sgp32_str(longid);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_ERR_INVAL, "eimId of 129 bytes");
    pl_wr_free(&w);

    longid[128] = 0;
    c.eim_id = pl_sgp32_str(longid);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_OK, "eimId of 128 bytes");
    pl_wr_free(&w);

    c.has_counter = true;
    c.counter = 0x80000000u;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_ERR_INVAL, "counter out of range");
    pl_wr_free(&w);

    c.has_counter = false;
    c.eim_public_key_data.kind = PL_SGP32_KEY_SPKI;
    static const uint8_t junk[] = {0x04, 0x00};
    c.eim_public_key_data.body = sgp32_bytes(junk, sizeof(junk));
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_ERR_INVAL, "key body not an SPKI");
    pl_wr_free(&w);

    /* A fixed buffer too small: overflow, not a crash. */
    uint8_t small[8];
    c.eim_public_key_data.kind = PL_SGP32_KEY_NONE;
    pl_wr_init_fixed(&w, small, sizeof(small));
    cr_assert_eq(pl_sgp32_eim_config_encode(&c, &w), PL_ERR_OVERFLOW);

    struct pl_sgp32_key_data kd;
    cr_assert_eq(pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, junk, sizeof(junk), &kd),
                 PL_ERR_DER_TAG);
}

Test(sgp32_eim_config, add_initial_eim_request)
{
    /* Erlang: two configurations, the full one and { eimId "b", associationToken -1 }. */
    static const char *ref_hex = "BF577FA07D" FULL_HEX "30068001628401FF";
    size_t spki_len, n;
    uint8_t *spki = sgp32_hex(SPKI_HEX, &spki_len);
    struct pl_sgp32_add_initial_eim_request req, d;
    struct pl_wr w;

    memset(&req, 0, sizeof(req));
    req.n_eims = 2;
    req.eims[0] = full_config(spki, spki_len);
    req.eims[1].eim_id = S("b");
    req.eims[1].has_association_token = true;
    req.eims[1].association_token = -1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_encode(&req, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, ref_hex);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_eq(d.n_eims, 2);
    assert_config_eq(&req.eims[0], &d.eims[0]);
    assert_config_eq(&req.eims[1], &d.eims[1]);
    pl_wr_free(&w);

    /* Cap: 9 configurations overflow, 8 decode. */
    char big[512] = "BF572FA02D";
    for (int i = 0; i < 9; i++)
        strcat(big, "3003800161");
    uint8_t *b = sgp32_hex(big, &n);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(b, n, &d), PL_ERR_OVERFLOW);
    free(b);
    strcpy(big, "BF572AA028");
    for (int i = 0; i < 8; i++)
        strcat(big, "3003800161");
    b = sgp32_hex(big, &n);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(b, n, &d), PL_OK);
    cr_assert_eq(d.n_eims, 8);
    cr_assert(sgp32_buf_is(d.eims[7].eim_id, "a"));
    free(b);

    /* Element that is not a SEQUENCE; missing [0]. */
    b = sgp32_hex("BF5707A005 3103800161", &n);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(b, n, &d), PL_ERR_DER_TAG);
    free(b);
    b = sgp32_hex("BF5700", &n);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(b, n, &d), PL_ERR_MALFORMED);
    free(b);
    free(spki);
}

Test(sgp32_eim_config, add_initial_eim_response)
{
    struct pl_sgp32_add_initial_eim_response r, d;
    struct pl_wr w;
    size_t n;

    /* Erlang: addInitialEimOk [ associationToken 1, addOk ] */
    memset(&r, 0, sizeof(r));
    r.n_results = 2;
    r.results[0].has_association_token = true;
    r.results[0].association_token = 1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_add_initial_eim_response_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5707A0058401010500");
    cr_assert_eq(pl_sgp32_add_initial_eim_response_decode(w.buf, w.len, &d), PL_OK);
    cr_assert_not(d.is_error);
    cr_assert_eq(d.n_results, 2);
    cr_assert(d.results[0].has_association_token);
    cr_assert_eq(d.results[0].association_token, 1);
    cr_assert_not(d.results[1].has_association_token);
    pl_wr_free(&w);

    /* Erlang: addInitialEimError associatedEimAlreadyExists */
    memset(&r, 0, sizeof(r));
    r.is_error = true;
    r.error_code = PL_SGP32_ADD_EIM_ALREADY_EXISTS;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_add_initial_eim_response_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5703810102");
    cr_assert_eq(pl_sgp32_add_initial_eim_response_decode(w.buf, w.len, &d), PL_OK);
    cr_assert(d.is_error);
    cr_assert_eq(d.error_code, 2);
    pl_wr_free(&w);

    static const struct neg_case cases[] = {
        {"wrong arm", "BF5703820102", PL_ERR_DER_TAG},
        {"two arms", "BF5706810102810103", PL_ERR_DER_TRAILING},
        {"empty choice", "BF5700", PL_ERR_MALFORMED},
        {"bad list element", "BF5705A003020101", PL_ERR_DER_TAG},
        {"addOk with content", "BF5705A003050100", PL_ERR_DER_VALUE},
        {"wrong outer", "BF5803810102", PL_ERR_DER_TAG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *b = sgp32_hex(cases[i].hex, &n);
        int rc = pl_sgp32_add_initial_eim_response_decode(b, n, &d);
        cr_expect_eq(rc, cases[i].err, "%s: got %d", cases[i].name, rc);
        free(b);
    }
}

Test(sgp32_eim_config, get_eim_configuration_data)
{
    struct pl_sgp32_get_eim_config_request q, dq;
    struct pl_sgp32_get_eim_config_response r, dr;
    struct pl_wr w;
    size_t n;

    /* Erlang: searchCriteria eimId "eim1" -> BF55 { A0 { 80 ... } } (explicit CHOICE) */
    memset(&q, 0, sizeof(q));
    q.eim_id = S("eim1");
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_get_eim_config_request_encode(&q, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5508A006800465696D31");
    cr_assert_eq(pl_sgp32_get_eim_config_request_decode(w.buf, w.len, &dq), PL_OK);
    cr_assert(sgp32_buf_is(dq.eim_id, "eim1"));
    pl_wr_free(&w);

    memset(&q, 0, sizeof(q));
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_get_eim_config_request_encode(&q, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF5500");
    cr_assert_eq(pl_sgp32_get_eim_config_request_decode(w.buf, w.len, &dq), PL_OK);
    cr_assert_null(dq.eim_id.p);
    pl_wr_free(&w);

    /* The CHOICE without its [0] wrapper: '80' is not an extension (number 0 is taken). */
    uint8_t *b = sgp32_hex("BF5506800465696D31", &n);
    cr_assert_eq(pl_sgp32_get_eim_config_request_decode(b, n, &dq), PL_ERR_DER_TAG);
    free(b);
    b = sgp32_hex("BF5508A006810465696D31", &n); /* unknown criterion */
    cr_assert_eq(pl_sgp32_get_eim_config_request_decode(b, n, &dq), PL_ERR_DER_TAG);
    free(b);

    /* Erlang: one configuration { eimId "b", counterValue 0, eimSupportedProtocol {} } */
    memset(&r, 0, sizeof(r));
    r.n_eims = 1;
    r.eims[0].eim_id = S("b");
    r.eims[0].has_counter = true;
    r.eims[0].has_supported_protocol = true;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_get_eim_config_response_encode(&r, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "BF550DA00B3009800162830100870100");
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(w.buf, w.len, &dr), PL_OK);
    cr_assert_eq(dr.n_eims, 1);
    assert_config_eq(&r.eims[0], &dr.eims[0]);
    pl_wr_free(&w);

    b = sgp32_hex("BF5500", &n);
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(b, n, &dr), PL_ERR_MALFORMED);
    free(b);
    b = sgp32_hex("BF5502A000", &n);
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(b, n, &dr), PL_OK);
    cr_assert_eq(dr.n_eims, 0);
    free(b);
}
