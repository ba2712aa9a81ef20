/* Unit tests: SGP.32 EuiccPackageRequest (every PSMO and eCO) and EuiccPackageResult (every
 * EuiccResultData arm, the three result arms), the eIM and eUICC signatures (SGP.26
 * variant-O keys), and negative decoding. Known answers marked "Erlang" were produced by
 * Erlang/OTP asn1 (DER) from shared/asn1/SGP32Definitions.asn, an independent encoder. */
#include "provline/protocol/sgp32_euicc_package.h"
#include "sgp32_test.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t ICCID[10] = {0x98, 0x10, 0x99, 0x09, 0x00, 0x21, 0x43, 0x65, 0x87, 0x39};
static const uint8_t EID[16] = {0x89, 0x04, 0x90, 0x32, 0x12, 0x34, 0x51, 0x23,
                                0x45, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34};
static const uint8_t TXID[4] = {1, 2, 3, 4};
static uint8_t SIG5A[64];

#define SIG5A_HEX                                                                                  \
    "5F3740"                                                                                       \
    "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A" \
    "5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A"

/* Erlang: psmoList with all eleven PSMO shapes (see psmo_package()). */
#define PSMO_REQ_HEX                                                                               \
    "BF518201003081BA800B65696D2E6578616D706C655A1089049032123451234512345678901234810107820401"   \
    "020304A0818FA30E5A0A981099090021436587390500A30C5A0A98109909002143658739A40C5A0A981099090"    \
    "02143658739A50C5A0A98109909002143658739BF2D13A00C5A0A981099090021436587395C035A9F70BF2D00"    \
    "A600A719800081038837018210736D64702E6578616D706C652E636F6DA80C5A0A98109909002143658739A900"   \
    "BF650C800A64702E6578616D706C65" SIG5A_HEX

/* Erlang: ecoList addEim, deleteEim, updateEim, listEim; counter 128, no transaction id. */
#define ECO_REQ_HEX                                                                                \
    "BF5181B4306F800B65696D2E6578616D706C655A108904903212345123451234567890123481020080A14AA81E"   \
    "800465696D32810C65696D322E6578616D706C6582010283010187020780A906800465696D33AA1E800465696D"   \
    "32810C65696D322E6578616D706C6582010283010187020780AB00" SIG5A_HEX

/* Erlang: every EuiccResultData arm except listProfileInfoResult (Erlang double-tags that
 * one, see docs/sgp32-codec.md), seqNumber 42. */
#define RESULT_SIGNED_HEX                                                                          \
    "BF5181C7A081C4307F800B65696D2E6578616D706C6581010782040102030483012A3064830100840101850115"   \
    "A613301180020640A1073005800301020382020780870107A8048402012CA8030201068901028A0103AB19A017"   \
    "3010800B65696D2E6578616D706C658201023003800178AB0381017F8C01008D01028E0102020103BF650380010"  \
    "0" SIG5A_HEX
#define ERROR_SIGNED_HEX   "BF515AA1583013800B65696D2E6578616D706C65810108020104" SIG5A_HEX
#define ERROR_UNSIGNED_HEX "BF5115A213800B65696D2E6578616D706C65820109840105"
#define RAT_ELEMENT_HEX    "301180020640A1073005800301020382020780"

static void init_sig(void)
{
    memset(SIG5A, 0x5A, sizeof(SIG5A));
}

static void base_package(struct pl_sgp32_euicc_package *p, enum pl_sgp32_package_kind kind)
{
    memset(p, 0, sizeof(*p));
    p->eim_id = S("eim.example");
    memcpy(p->eid, EID, sizeof(EID));
    p->kind = kind;
}

static void psmo_package(struct pl_sgp32_euicc_package *p)
{
    static const uint8_t taglist[] = {0x5A, 0x9F, 0x70};
    static const uint8_t oid[] = {0x88, 0x37, 0x01}; /* 2.999.1 */
    base_package(p, PL_SGP32_PACKAGE_PSMO);
    p->counter = 7;
    p->eim_txid = sgp32_bytes(TXID, sizeof(TXID));
    struct pl_sgp32_psmo *o = p->psmo;
    o[0].kind = PL_SGP32_PSMO_ENABLE;
    memcpy(o[0].enable.iccid, ICCID, 10);
    o[0].enable.rollback = true;
    o[1].kind = PL_SGP32_PSMO_ENABLE;
    memcpy(o[1].enable.iccid, ICCID, 10);
    o[2].kind = PL_SGP32_PSMO_DISABLE;
    memcpy(o[2].profile.iccid, ICCID, 10);
    o[3].kind = PL_SGP32_PSMO_DELETE;
    memcpy(o[3].profile.iccid, ICCID, 10);
    o[4].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    o[4].list_profile_info.search = PL_SGP32_SEARCH_ICCID;
    memcpy(o[4].list_profile_info.iccid, ICCID, 10);
    o[4].list_profile_info.tag_list = sgp32_bytes(taglist, sizeof(taglist));
    o[5].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    o[6].kind = PL_SGP32_PSMO_GET_RAT;
    o[7].kind = PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE;
    o[7].configure_immediate_enable.immediate_enable_flag = true;
    o[7].configure_immediate_enable.default_smdp_oid = sgp32_bytes(oid, sizeof(oid));
    o[7].configure_immediate_enable.default_smdp_address = S("smdp.example.com");
    o[8].kind = PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE;
    memcpy(o[8].profile.iccid, ICCID, 10);
    o[9].kind = PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE;
    o[10].kind = PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS;
    o[10].set_default_dp_address.default_dp_address = S("dp.example");
    p->n_ops = 11;
}

static void eco_package(struct pl_sgp32_euicc_package *p)
{
    base_package(p, PL_SGP32_PACKAGE_ECO);
    p->counter = 128;
    struct pl_sgp32_eim_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.eim_id = S("eim2");
    cfg.eim_fqdn = S("eim2.example");
    cfg.has_eim_id_type = true;
    cfg.eim_id_type = PL_SGP32_EIM_ID_TYPE_FQDN;
    cfg.has_counter = true;
    cfg.counter = 1;
    cfg.has_supported_protocol = true;
    cfg.supported_protocol = PL_SGP32_PROTO_RETRIEVE_HTTPS;
    p->eco[0].kind = PL_SGP32_ECO_ADD_EIM;
    p->eco[0].eim_config = cfg;
    p->eco[1].kind = PL_SGP32_ECO_DELETE_EIM;
    p->eco[1].delete_eim_id = S("eim3");
    p->eco[2].kind = PL_SGP32_ECO_UPDATE_EIM;
    p->eco[2].eim_config = cfg;
    p->eco[3].kind = PL_SGP32_ECO_LIST_EIM;
    p->n_ops = 4;
}

static void assert_psmo_eq(const struct pl_sgp32_psmo *a, const struct pl_sgp32_psmo *b)
{
    cr_assert_eq(a->kind, b->kind);
    switch (a->kind) {
    case PL_SGP32_PSMO_ENABLE:
        cr_assert_eq(memcmp(a->enable.iccid, b->enable.iccid, 10), 0);
        cr_assert_eq(a->enable.rollback, b->enable.rollback);
        break;
    case PL_SGP32_PSMO_DISABLE:
    case PL_SGP32_PSMO_DELETE:
    case PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE:
        cr_assert_eq(memcmp(a->profile.iccid, b->profile.iccid, 10), 0);
        break;
    case PL_SGP32_PSMO_LIST_PROFILE_INFO:
        cr_assert_eq(a->list_profile_info.search, b->list_profile_info.search);
        if (a->list_profile_info.search == PL_SGP32_SEARCH_ICCID)
            cr_assert_eq(memcmp(a->list_profile_info.iccid, b->list_profile_info.iccid, 10), 0);
        cr_assert(pl_sgp32_buf_eq(a->list_profile_info.isdp_aid, b->list_profile_info.isdp_aid));
        cr_assert(pl_sgp32_buf_eq(a->list_profile_info.tag_list, b->list_profile_info.tag_list));
        break;
    case PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE:
        cr_assert_eq(a->configure_immediate_enable.immediate_enable_flag,
                     b->configure_immediate_enable.immediate_enable_flag);
        cr_assert(pl_sgp32_buf_eq(a->configure_immediate_enable.default_smdp_oid,
                                  b->configure_immediate_enable.default_smdp_oid));
        cr_assert(pl_sgp32_buf_eq(a->configure_immediate_enable.default_smdp_address,
                                  b->configure_immediate_enable.default_smdp_address));
        break;
    case PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS:
        cr_assert(pl_sgp32_buf_eq(a->set_default_dp_address.default_dp_address,
                                  b->set_default_dp_address.default_dp_address));
        break;
    case PL_SGP32_PSMO_GET_RAT:
    case PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE:
    default:
        break;
    }
}

static void assert_package_eq(const struct pl_sgp32_euicc_package *a,
                              const struct pl_sgp32_euicc_package *b)
{
    cr_assert(pl_sgp32_buf_eq(a->eim_id, b->eim_id));
    cr_assert_eq(memcmp(a->eid, b->eid, 16), 0);
    cr_assert_eq(a->counter, b->counter);
    cr_assert(pl_sgp32_buf_eq(a->eim_txid, b->eim_txid));
    cr_assert_eq(a->kind, b->kind);
    cr_assert_eq(a->n_ops, b->n_ops);
    for (size_t i = 0; i < a->n_ops; i++) {
        if (a->kind == PL_SGP32_PACKAGE_PSMO) {
            assert_psmo_eq(&a->psmo[i], &b->psmo[i]);
            continue;
        }
        cr_assert_eq(a->eco[i].kind, b->eco[i].kind);
        if (a->eco[i].kind == PL_SGP32_ECO_DELETE_EIM)
            cr_assert(pl_sgp32_buf_eq(a->eco[i].delete_eim_id, b->eco[i].delete_eim_id));
        if (a->eco[i].kind == PL_SGP32_ECO_ADD_EIM || a->eco[i].kind == PL_SGP32_ECO_UPDATE_EIM) {
            cr_assert(pl_sgp32_buf_eq(a->eco[i].eim_config.eim_id, b->eco[i].eim_config.eim_id));
            cr_assert(
                pl_sgp32_buf_eq(a->eco[i].eim_config.eim_fqdn, b->eco[i].eim_config.eim_fqdn));
            cr_assert_eq(a->eco[i].eim_config.counter, b->eco[i].eim_config.counter);
            cr_assert_eq(a->eco[i].eim_config.supported_protocol,
                         b->eco[i].eim_config.supported_protocol);
        }
    }
}

/* Encodes pkg with the dummy signature, checks the known answer, decodes, compares, and
 * re-encodes the decoded struct to the same bytes. */
static void round_trip_request(const struct pl_sgp32_euicc_package *pkg, const char *ref_hex)
{
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    struct pl_wr w, w2;
    init_sig();
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(pkg, SIG5A, sizeof(SIG5A), &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, ref_hex);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(w.buf, w.len, d), PL_OK);
    assert_package_eq(pkg, &d->pkg);
    cr_assert_eq(d->signature.len, 64);
    cr_assert_eq(memcmp(d->signature.p, SIG5A, 64), 0);
    /* signed_raw is the '30' TLV inside BF51, in place in the input */
    cr_assert_eq(d->signed_raw.p[0], 0x30);
    cr_assert(d->signed_raw.p > w.buf && d->signed_raw.p + d->signed_raw.len < w.buf + w.len);
    pl_wr_init_dyn(&w2, SGP32_TEST_WR_MAX);
    cr_assert_eq(
        pl_sgp32_euicc_package_request_encode(&d->pkg, d->signature.p, d->signature.len, &w2),
        PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_eq(memcmp(w2.buf, w.buf, w.len), 0);
    pl_wr_free(&w2);
    pl_wr_free(&w);
    free(d);
}

Test(sgp32_euicc_package, every_psmo_known_answer)
{
    struct pl_sgp32_euicc_package pkg;
    psmo_package(&pkg);
    round_trip_request(&pkg, PSMO_REQ_HEX);
}

Test(sgp32_euicc_package, every_eco_known_answer)
{
    struct pl_sgp32_euicc_package pkg;
    eco_package(&pkg);
    round_trip_request(&pkg, ECO_REQ_HEX);
}

Test(sgp32_euicc_package, each_psmo_alone)
{
    struct pl_sgp32_euicc_package all, one;
    psmo_package(&all);
    for (size_t i = 0; i < all.n_ops; i++) {
        base_package(&one, PL_SGP32_PACKAGE_PSMO);
        one.counter = (uint32_t)i;
        one.psmo[0] = all.psmo[i];
        one.n_ops = 1;
        struct pl_wr w;
        struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
        init_sig();
        pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
        cr_assert_eq(pl_sgp32_euicc_package_request_encode(&one, SIG5A, 64, &w), PL_OK);
        cr_assert_eq(pl_sgp32_euicc_package_request_decode(w.buf, w.len, d), PL_OK, "psmo %zu", i);
        assert_package_eq(&one, &d->pkg);
        pl_wr_free(&w);
        free(d);
    }
}

Test(sgp32_euicc_package, list_profile_info_search_criteria)
{
    static const uint8_t aid[] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0x01};
    struct pl_sgp32_euicc_package pkg;
    base_package(&pkg, PL_SGP32_PACKAGE_PSMO);
    pkg.n_ops = 2;
    pkg.psmo[0].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    pkg.psmo[0].list_profile_info.search = PL_SGP32_SEARCH_ISDP_AID;
    pkg.psmo[0].list_profile_info.isdp_aid = sgp32_bytes(aid, sizeof(aid));
    pkg.psmo[1].kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    pkg.psmo[1].list_profile_info.search = PL_SGP32_SEARCH_PROFILE_CLASS;
    pkg.psmo[1].list_profile_info.profile_class = 2;
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_signed_encode(&pkg, &w), PL_OK);
    /* BF2D { A0 { 4F aid } }, BF2D { A0 { 95 02 } } */
    sgp32_assert_hex(w.buf, w.len,
                     T("30", CAT("800B65696D2E6578616D706C65 5A1089049032123451234512345678901234 "
                                 "810100",
                                 T("A0", CAT(T("BF2D", T("A0", "4F08A000000559101001")),
                                             T("BF2D", T("A0", "950102")))))));
    struct pl_wr full;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    init_sig();
    pl_wr_init_dyn(&full, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 64, &full), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(full.buf, full.len, d), PL_OK);
    assert_package_eq(&pkg, &d->pkg);
    cr_assert_eq(d->pkg.psmo[1].list_profile_info.profile_class, 2);
    free(d);
    pl_wr_free(&full);
    pl_wr_free(&w);
}

Test(sgp32_euicc_package, signed_part_known_answer)
{
    /* Erlang: EuiccPackageSigned { "e", EID, 1, psmoList { getRAT } } */
    struct pl_sgp32_euicc_package pkg;
    struct pl_wr w;
    base_package(&pkg, PL_SGP32_PACKAGE_PSMO);
    pkg.eim_id = S("e");
    pkg.counter = 1;
    pkg.n_ops = 1;
    pkg.psmo[0].kind = PL_SGP32_PSMO_GET_RAT;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_signed_encode(&pkg, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, "301C8001655A1089049032123451234512345678901234810101A002A600");
    pl_wr_free(&w);
}

Test(sgp32_euicc_package, association_token_tlv)
{
    uint8_t t[PL_SGP32_TOKEN_TLV_MAX];
    size_t n;
    const int64_t zero = 0, one = 1, t127 = 127, t128 = 128, neg = -1, big = 0x123456;
    cr_assert_eq(pl_sgp32_token_tlv(NULL, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "840100");
    cr_assert_eq(pl_sgp32_token_tlv(&zero, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "840100");
    cr_assert_eq(pl_sgp32_token_tlv(&one, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "840101");
    cr_assert_eq(pl_sgp32_token_tlv(&t127, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "84017F");
    /* minimal two's complement: 128 needs a leading 00 (the onomondo-eim trap, EIM.md §1.8) */
    cr_assert_eq(pl_sgp32_token_tlv(&t128, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "84020080");
    cr_assert_eq(pl_sgp32_token_tlv(&neg, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "8401FF");
    cr_assert_eq(pl_sgp32_token_tlv(&big, t, &n), PL_OK);
    sgp32_assert_hex(t, n, "8403123456");
}

/* ---- eIM signature ---- */

struct sig_fixture {
    struct pl_eckey *eim_sk, *eim_pk, *euicc_sk, *euicc_pk;
};

static void load_keys(struct sig_fixture *f)
{
    f->eim_sk = sgp32_key(SGP32_EIM_SK);
    f->eim_pk = sgp32_cert_key(SGP32_EIM_CERT);
    f->euicc_sk = sgp32_key(SGP32_EUICC_SK);
    f->euicc_pk = sgp32_cert_key(SGP32_EUICC_CERT);
}

static void free_keys(struct sig_fixture *f)
{
    pl_eckey_free(f->eim_sk);
    pl_eckey_free(f->eim_pk);
    pl_eckey_free(f->euicc_sk);
    pl_eckey_free(f->euicc_pk);
}

static uint8_t *sign_request(const struct pl_sgp32_euicc_package *pkg, const int64_t *token,
                             const struct pl_eckey *sk, size_t *len)
{
    struct pl_wr w;
    const struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_sign(pkg, token, sk, &rng, &w), PL_OK);
    uint8_t *out = pl_wr_take(&w, len);
    cr_assert_not_null(out);
    return out;
}

Test(sgp32_euicc_package, eim_signature_without_token)
{
    struct sig_fixture f;
    struct pl_sgp32_euicc_package pkg;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    size_t len;
    const int64_t zero = 0, five = 5;

    load_keys(&f);
    psmo_package(&pkg);
    uint8_t *msg = sign_request(&pkg, NULL, f.eim_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(d->signature.len, 64, "eimSignature is emitted as r||s");
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_OK);
    /* token 0 has the same TLV '84 01 00' */
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, &zero, f.eim_pk), PL_OK);
    /* a configured token that was not used: fails */
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, &five, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    /* wrong key */
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.euicc_pk), PL_ERR_BAD_SIGNATURE);

    /* The signature input is exactly signed_raw ‖ '84 01 00' (checked without our helper). */
    static const uint8_t tok[] = {0x84, 0x01, 0x00};
    struct pl_iov iov[2] = {{d->signed_raw.p, d->signed_raw.len}, {tok, sizeof(tok)}};
    cr_assert_eq(pl_ecdsa_verify_iov(f.eim_pk, iov, 2, d->signature.p), PL_OK);
    /* ... and not the signed part alone */
    cr_assert_eq(pl_ecdsa_verify(f.eim_pk, d->signed_raw.p, d->signed_raw.len, d->signature.p),
                 PL_ERR_BAD_SIGNATURE);
    free(msg);
    free(d);
    free_keys(&f);
}

Test(sgp32_euicc_package, eim_signature_with_token)
{
    struct sig_fixture f;
    struct pl_sgp32_euicc_package pkg;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    size_t len;
    const int64_t t128 = 128, t127 = 127;

    load_keys(&f);
    eco_package(&pkg);
    uint8_t *msg = sign_request(&pkg, &t128, f.eim_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, &t128, f.eim_pk), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, &t127, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    static const uint8_t tok[] = {0x84, 0x02, 0x00, 0x80};
    struct pl_iov iov[2] = {{d->signed_raw.p, d->signed_raw.len}, {tok, sizeof(tok)}};
    cr_assert_eq(pl_ecdsa_verify_iov(f.eim_pk, iov, 2, d->signature.p), PL_OK);
    free(msg);
    free(d);
    free_keys(&f);
}

Test(sgp32_euicc_package, eim_signature_tamper)
{
    struct sig_fixture f;
    struct pl_sgp32_euicc_package pkg;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    size_t len;

    load_keys(&f);
    psmo_package(&pkg);
    uint8_t *msg = sign_request(&pkg, NULL, f.eim_sk, &len);
    /* counterValue: '81 01 07' right after the EID; still valid DER once tampered */
    uint8_t *ctr = sgp32_find(msg, len, "\x81\x01\x07", 3);
    cr_assert_not_null(ctr);
    ctr[2] = 0x08;
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(d->pkg.counter, 8);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    ctr[2] = 0x07;
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_OK);
    /* one bit of s */
    msg[len - 1] ^= 0x01;
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    /* an ICCID byte inside the first PSMO */
    msg[len - 1] ^= 0x01;
    uint8_t *iccid = sgp32_find(msg, len, ICCID, sizeof(ICCID));
    cr_assert_not_null(iccid);
    iccid[9] ^= 0x10;
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    free(msg);
    free(d);
    free_keys(&f);
}

Test(sgp32_euicc_package, eim_signature_der_form_accepted)
{
    struct sig_fixture f;
    struct pl_sgp32_euicc_package pkg;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    size_t len, der_len;
    uint8_t der[PL_ECDSA_DER_MAX];
    struct pl_wr w;

    load_keys(&f);
    psmo_package(&pkg);
    uint8_t *msg = sign_request(&pkg, NULL, f.eim_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_ecdsa_sig_to_der(d->signature.p, der, sizeof(der), &der_len), PL_OK);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, der, der_len, &w), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(w.buf, w.len, d), PL_OK);
    cr_assert_eq(d->signature.len, der_len);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_OK);
    /* a DER signature of the wrong message still fails */
    const int64_t one = 1;
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, &one, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    pl_wr_free(&w);
    free(msg);
    free(d);
    free_keys(&f);
}

Test(sgp32_euicc_package, eim_signature_over_received_bytes)
{
    /* A signed part carrying an extension addition ([40] after ecoList) is signed by a peer;
     * our decoder skips the extension, and verification still succeeds because it hashes
     * the received bytes, not a re-encoding (which would drop [40]). */
    struct sig_fixture f;
    struct pl_sgp32_euicc_package_request *d = calloc(1, sizeof(*d));
    uint8_t sig[64];
    size_t sl, ml;
    const struct pl_rng rng = PL_RNG_SYSTEM;
    load_keys(&f);
    const char *signed_hex =
        T("30", "8001655A1089049032123451234512345678901234810101A102AB009F28020102");
    uint8_t *sd = sgp32_hex(signed_hex, &sl);
    static const uint8_t tok[] = {0x84, 0x01, 0x00};
    struct pl_iov iov[2] = {{sd, sl}, {tok, 3}};
    cr_assert_eq(pl_ecdsa_sign_iov(f.eim_sk, iov, 2, &rng, sig), PL_OK);
    char sighex[129];
    cr_assert_eq(pl_hex_encode(sig, 64, sighex, sizeof(sighex)), PL_OK);
    uint8_t *msg = sgp32_hex(T("BF51", CAT(signed_hex, T("5F37", sighex))), &ml);
    cr_assert_eq(pl_sgp32_euicc_package_request_decode(msg, ml, d), PL_OK);
    cr_assert_eq(d->pkg.kind, PL_SGP32_PACKAGE_ECO);
    cr_assert_eq(d->pkg.eco[0].kind, PL_SGP32_ECO_LIST_EIM);
    cr_assert_eq(d->signed_raw.len, sl);
    cr_assert_eq(pl_sgp32_euicc_package_request_verify(d, NULL, f.eim_pk), PL_OK);
    /* re-encoding the decoded package gives different bytes, whose signature would fail */
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_signed_encode(&d->pkg, &w), PL_OK);
    cr_assert_neq(w.len, sl);
    pl_wr_free(&w);
    free(msg);
    free(sd);
    free(d);
    free_keys(&f);
}

/* ---- request: negative decoding ---- */

#define EIMID     "800B65696D2E6578616D706C65"
#define EIDTLV    "5A1089049032123451234512345678901234"
#define ENABLE_OP "A30C5A0A98109909002143658739"

static const char *req(const char *signed_contents)
{
    return T("BF51", CAT(T("30", signed_contents), SIG5A_HEX));
}

Test(sgp32_euicc_package, request_negative_cases)
{
    const char *ops = T("A0", ENABLE_OP);
    char seventeen[2048] = "";
    for (int i = 0; i < 17; i++)
        strcat(seventeen, ENABLE_OP);
    char sixteen[2048] = "";
    for (int i = 0; i < 16; i++)
        strcat(sixteen, ENABLE_OP);
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"baseline", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), PL_OK},
        {"16 operations (cap)", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", sixteen))))),
         PL_OK},
        {"17 operations", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", seventeen))))),
         PL_ERR_OVERFLOW},
        {"wrong outer tag",
         T("BF52", CAT(T("30", CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), SIG5A_HEX)),
         PL_ERR_DER_TAG},
        {"wrong package arm [2]", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A2", ENABLE_OP))))),
         PL_ERR_DER_TAG},
        {"eCO inside psmoList", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "AB00"))))),
         PL_ERR_DER_TAG},
        {"unknown PSMO [10]", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "AA00"))))),
         PL_ERR_DER_TAG},
        {"PSMO enable primitive", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "8300"))))),
         PL_ERR_DER_TAG},
        {"missing counterValue", req(CAT(EIMID, CAT(EIDTLV, ops))), PL_ERR_DER_TAG},
        {"missing package", req(CAT(EIMID, CAT(EIDTLV, "810107"))), PL_ERR_MALFORMED},
        {"missing eidValue", req(CAT(EIMID, CAT("810107", ops))), PL_ERR_DER_TAG},
        {"missing signature", T("BF51", T("30", CAT(EIMID, CAT(EIDTLV, CAT("810107", ops))))),
         PL_ERR_MALFORMED},
        {"eidValue 15 bytes",
         req(CAT(EIMID, CAT("5A0F890490321234512345123456789012", CAT("810107", ops)))),
         PL_ERR_DER_VALUE},
        {"eidValue 17 bytes",
         req(CAT(EIMID, CAT("5A118904903212345123451234567890123456", CAT("810107", ops)))),
         PL_ERR_DER_VALUE},
        {"counter negative", req(CAT(EIMID, CAT(EIDTLV, CAT("8101FF", ops)))), PL_ERR_DER_VALUE},
        {"counter 2^31", req(CAT(EIMID, CAT(EIDTLV, CAT("81050080000000", ops)))),
         PL_ERR_DER_VALUE},
        {"counter 2^31-1", req(CAT(EIMID, CAT(EIDTLV, CAT("81047FFFFFFF", ops)))), PL_OK},
        {"counter 9 bytes", req(CAT(EIMID, CAT(EIDTLV, CAT("8109010000000000000000", ops)))),
         PL_ERR_DER_VALUE},
        {"txid empty", req(CAT(EIMID, CAT(EIDTLV, CAT("810107 8200", ops)))), PL_ERR_DER_VALUE},
        {"txid 17 bytes",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107 82110102030405060708090A0B0C0D0E0F1011", ops)))),
         PL_ERR_DER_VALUE},
        {"eimId empty", req(CAT("8000", CAT(EIDTLV, CAT("810107", ops)))), PL_ERR_DER_VALUE},
        {"ICCID 9 bytes",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "A30B5A09981099090021436587"))))),
         PL_ERR_DER_VALUE},
        /* enable has a tagged component, so no automatic tags: rollbackFlag is '05 00'. A
         * context [0] after the iccid is an extension addition (ignored), not the flag. */
        {"context [0] after iccid is an extension",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", T("A3", "5A0A98109909002143658739"
                                                                  "8000")))))),
         PL_OK},
        {"rollbackFlag twice",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", T("A3", "5A0A98109909002143658739"
                                                                  "05000500")))))),
         PL_ERR_DER_TAG},
        {"signature 73 bytes",
         T("BF51",
           CAT(T("30", CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), T("5F37", REP("00", 73)))),
         PL_ERR_DER_VALUE},
        {"signature 72 bytes",
         T("BF51",
           CAT(T("30", CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), T("5F37", REP("00", 72)))),
         PL_OK},
        {"signature empty",
         T("BF51", CAT(T("30", CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), "5F3700")),
         PL_ERR_DER_VALUE},
        {"trailing byte", CAT(req(CAT(EIMID, CAT(EIDTLV, CAT("810107", ops)))), "00"),
         PL_ERR_DER_TRAILING},
        {"component after ecoList out of order",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", CAT(ops, "820101"))))), PL_ERR_DER_TAG},
        {"universal element after the root",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", CAT(ops, "0500"))))), PL_ERR_DER_TAG},
        {"extension [40] after the root",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", CAT(ops, "9F280100"))))), PL_OK},
        {"setDefaultDpAddress without address",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "BF6500"))))), PL_ERR_MALFORMED},
        {"configureImmediateEnable bad OID",
         req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A0", "A703810188"))))), PL_ERR_DER_VALUE},
        {"deleteEim empty eimId", req(CAT(EIMID, CAT(EIDTLV, CAT("810107", T("A1", "A9028000"))))),
         PL_ERR_DER_VALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_euicc_package_request_decode,
                            struct pl_sgp32_euicc_package_request, cases[i].hex, cases[i].err,
                            cases[i].name);
}

Test(sgp32_euicc_package, request_encoder_rejects_invalid)
{
    struct pl_sgp32_euicc_package pkg;
    struct pl_wr w;
    init_sig();

    psmo_package(&pkg);
    pkg.n_ops = PL_SGP32_MAX_OPS + 1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    psmo_package(&pkg);
    pkg.psmo[3].kind = (enum pl_sgp32_psmo_kind)44;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    psmo_package(&pkg);
    pkg.counter = PL_SGP32_COUNTER_MAX + 1u;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    psmo_package(&pkg);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 0, &w), PL_ERR_INVAL);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, NULL, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    eco_package(&pkg);
    pkg.eco[1].delete_eim_id = S("");
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(&pkg, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    eco_package(&pkg);
    pkg.kind = (enum pl_sgp32_package_kind)2;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_signed_encode(&pkg, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
}

/* ---- EuiccPackageResult ---- */

static void result_base(struct pl_sgp32_euicc_package_result *r, enum pl_sgp32_epr_kind kind)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->eim_id = S("eim.example");
}

static void every_result(struct pl_sgp32_euicc_package_result *r, uint8_t *rat, size_t rat_len)
{
    result_base(r, PL_SGP32_EPR_RESULT_SIGNED);
    r->counter = 7;
    r->eim_txid = sgp32_bytes(TXID, sizeof(TXID));
    r->seq_number = 42;
    struct pl_sgp32_euicc_result *x = r->results;
    x[0].kind = PL_SGP32_RESULT_ENABLE;
    x[0].code = PL_SGP32_RC_OK;
    x[1].kind = PL_SGP32_RESULT_DISABLE;
    x[1].code = PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND;
    x[2].kind = PL_SGP32_RESULT_DELETE;
    x[2].code = PL_SGP32_RC_RETURN_FALLBACK_PROFILE;
    x[3].kind = PL_SGP32_RESULT_GET_RAT;
    x[3].list.p = rat;
    x[3].list.len = rat_len;
    x[3].list.count = 1;
    x[4].kind = PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE;
    x[4].code = 7;
    x[5].kind = PL_SGP32_RESULT_ADD_EIM;
    x[5].has_association_token = true;
    x[5].association_token = 300;
    x[6].kind = PL_SGP32_RESULT_ADD_EIM;
    x[6].code = PL_SGP32_ADD_EIM_COUNTER_OUT_OF_RANGE;
    x[7].kind = PL_SGP32_RESULT_DELETE_EIM;
    x[7].code = 2; /* lastEimDeleted */
    x[8].kind = PL_SGP32_RESULT_UPDATE_EIM;
    x[8].code = 3;
    x[9].kind = PL_SGP32_RESULT_LIST_EIM;
    x[9].n_eims = 2;
    x[9].eims[0].eim_id = S("eim.example");
    x[9].eims[0].has_eim_id_type = true;
    x[9].eims[0].eim_id_type = PL_SGP32_EIM_ID_TYPE_FQDN;
    x[9].eims[1].eim_id = S("x");
    x[10].kind = PL_SGP32_RESULT_LIST_EIM;
    x[10].is_error = true;
    x[10].code = 127;
    x[11].kind = PL_SGP32_RESULT_ROLLBACK;
    x[11].code = 0;
    x[12].kind = PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE;
    x[12].code = 2;
    x[13].kind = PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE;
    x[13].code = 2;
    x[14].kind = PL_SGP32_RESULT_PROCESSING_TERMINATED;
    x[14].code = 3;
    x[15].kind = PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS;
    x[15].code = 0;
    r->n_results = 16;
}

static void assert_result_eq(const struct pl_sgp32_euicc_result *a,
                             const struct pl_sgp32_euicc_result *b)
{
    cr_assert_eq(a->kind, b->kind);
    cr_assert_eq(a->code, b->code, "kind %d", a->kind);
    cr_assert_eq(a->has_association_token, b->has_association_token);
    cr_assert_eq(a->association_token, b->association_token);
    cr_assert_eq(a->is_error, b->is_error);
    cr_assert_eq(a->list.len, b->list.len);
    cr_assert_eq(a->list.count, b->list.count);
    if (a->list.len)
        cr_assert_eq(memcmp(a->list.p, b->list.p, a->list.len), 0);
    cr_assert_eq(a->n_eims, b->n_eims);
    for (size_t i = 0; i < a->n_eims; i++) {
        cr_assert(pl_sgp32_buf_eq(a->eims[i].eim_id, b->eims[i].eim_id));
        cr_assert_eq(a->eims[i].has_eim_id_type, b->eims[i].has_eim_id_type);
        cr_assert_eq(a->eims[i].eim_id_type, b->eims[i].eim_id_type);
    }
}

static void assert_epr_eq(const struct pl_sgp32_euicc_package_result *a,
                          const struct pl_sgp32_euicc_package_result *b)
{
    cr_assert_eq(a->kind, b->kind);
    cr_assert(pl_sgp32_buf_eq(a->eim_id, b->eim_id));
    cr_assert_eq(a->counter, b->counter);
    cr_assert(pl_sgp32_buf_eq(a->eim_txid, b->eim_txid));
    cr_assert_eq(a->seq_number, b->seq_number);
    cr_assert_eq(a->error_code, b->error_code);
    cr_assert_eq(a->has_association_token, b->has_association_token);
    cr_assert_eq(a->association_token, b->association_token);
    cr_assert_eq(a->n_results, b->n_results);
    for (size_t i = 0; i < a->n_results; i++)
        assert_result_eq(&a->results[i], &b->results[i]);
}

static void round_trip_result(const struct pl_sgp32_euicc_package_result *r, const char *ref)
{
    struct pl_sgp32_euicc_package_result *d = calloc(1, sizeof(*d));
    struct pl_wr w, w2;
    init_sig();
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(r, SIG5A, 64, &w), PL_OK);
    sgp32_assert_hex(w.buf, w.len, ref);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(w.buf, w.len, d), PL_OK);
    assert_epr_eq(r, d);
    if (r->kind != PL_SGP32_EPR_ERROR_UNSIGNED) {
        cr_assert_eq(d->signature.len, 64);
        cr_assert_eq(d->signed_raw.p[0], 0x30);
    } else {
        cr_assert_null(d->signature.p);
    }
    pl_wr_init_dyn(&w2, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(d, SIG5A, 64, &w2), PL_OK);
    cr_assert_eq(w2.len, w.len);
    cr_assert_eq(memcmp(w2.buf, w.buf, w.len), 0);
    pl_wr_free(&w2);
    pl_wr_free(&w);
    free(d);
}

Test(sgp32_euicc_package, result_every_arm_known_answer)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    size_t rl;
    uint8_t *rat = sgp32_hex(RAT_ELEMENT_HEX, &rl);
    every_result(r, rat, rl);
    round_trip_result(r, RESULT_SIGNED_HEX);
    free(rat);
    free(r);
}

Test(sgp32_euicc_package, result_error_arms_known_answer)
{
    struct pl_sgp32_euicc_package_result r;
    static const uint8_t txid9[] = {9};
    result_base(&r, PL_SGP32_EPR_ERROR_SIGNED);
    r.counter = 8;
    r.error_code = PL_SGP32_EPE_REPLAY;
    round_trip_result(&r, ERROR_SIGNED_HEX);

    result_base(&r, PL_SGP32_EPR_ERROR_UNSIGNED);
    r.eim_txid = sgp32_bytes(txid9, 1);
    r.has_association_token = true;
    r.association_token = 5;
    round_trip_result(&r, ERROR_UNSIGNED_HEX);
}

Test(sgp32_euicc_package, result_list_profile_info)
{
    /* listProfileInfoResult [45] on the [45] CHOICE: one 'BF2D' (implicit), then the CHOICE
     * arm [0] SEQUENCE OF 'E3' or [1] error. Hand-built: production silicon sends
     * BF2D { A0 { E3 ... } } (EIM.md §1.8). */
    const char *e3a = T("E3", "5A0A98109909002143658739 9F700101");
    const char *e3b = T("E3", "5A0A98109909002143658740 9F700100");
    const char *ok = T(
        "BF51",
        T("A0", CAT(T("30", CAT("8001658101018301 01", T("30", T("BF2D", T("A0", CAT(e3a, e3b)))))),
                    SIG5A_HEX)));
    struct pl_sgp32_euicc_package_result *d = calloc(1, sizeof(*d));
    size_t n;
    uint8_t *b = sgp32_hex(ok, &n);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(b, n, d), PL_OK);
    cr_assert_eq(d->n_results, 1);
    cr_assert_eq(d->results[0].kind, PL_SGP32_RESULT_LIST_PROFILE_INFO);
    cr_assert_not(d->results[0].is_error);
    cr_assert_eq(d->results[0].list.count, 2);
    struct pl_sgp32_iter it;
    struct pl_tlv item;
    pl_sgp32_iter_init(&it, &d->results[0].list);
    cr_assert_eq(pl_sgp32_iter_next(&it, &item), PL_OK);
    cr_assert_eq(item.tag, 0xE3);
    cr_assert_eq(pl_sgp32_iter_next(&it, &item), PL_OK);
    cr_assert_eq(pl_sgp32_iter_next(&it, &item), PL_ERR_NOT_FOUND);
    /* re-encode is byte-exact */
    struct pl_wr w;
    init_sig();
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(d, SIG5A, 64, &w), PL_OK);
    cr_assert_eq(w.len, n);
    cr_assert_eq(memcmp(w.buf, b, n), 0);
    pl_wr_free(&w);
    free(b);

    /* error arm: BF2D { 81 0B } (profileChangeOngoing) */
    b = sgp32_hex(
        T("BF51", T("A0", CAT(T("30", CAT("8001658101018301 01", T("30", T("BF2D", "81010B")))),
                              SIG5A_HEX))),
        &n);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(b, n, d), PL_OK);
    cr_assert(d->results[0].is_error);
    cr_assert_eq(d->results[0].code, 11);
    free(b);

    /* Erlang's double tag BF2D { BF2D { ... } } and an 'E3' list without its [0] arm tag are
     * rejected. */
    b = sgp32_hex(
        T("BF51",
          T("A0", CAT(T("30", CAT("8001658101018301 01", T("30", T("BF2D", "BF2D0381010B")))),
                      SIG5A_HEX))),
        &n);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(b, n, d), PL_ERR_DER_TAG);
    free(b);
    b = sgp32_hex(
        T("BF51",
          T("A0", CAT(T("30", CAT("8001658101018301 01", T("30", T("BF2D", e3a)))), SIG5A_HEX))),
        &n);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(b, n, d), PL_ERR_DER_TAG);
    free(b);
    free(d);
}

static uint8_t *sign_result(const struct pl_sgp32_euicc_package_result *r, const int64_t *token,
                            const struct pl_eckey *sk, size_t *len)
{
    struct pl_wr w;
    const struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_sign(r, token, sk, &rng, &w), PL_OK);
    uint8_t *out = pl_wr_take(&w, len);
    cr_assert_not_null(out);
    return out;
}

Test(sgp32_euicc_package, result_signature)
{
    struct sig_fixture f;
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    struct pl_sgp32_euicc_package_result *d = calloc(1, sizeof(*d));
    size_t rl, len;
    const int64_t token = 300, other = 301;
    uint8_t *rat = sgp32_hex(RAT_ELEMENT_HEX, &rl);

    load_keys(&f);
    every_result(r, rat, rl);
    /* token present */
    uint8_t *msg = sign_result(r, &token, f.euicc_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(msg, len, d), PL_OK);
    assert_epr_eq(r, d);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, &token, f.euicc_pk), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, &other, f.euicc_pk), PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, NULL, f.euicc_pk), PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, &token, f.eim_pk), PL_ERR_BAD_SIGNATURE);
    /* signature input: data SEQUENCE ‖ 84 02 01 2C, excluding BF51/A0/5F37 */
    static const uint8_t tok[] = {0x84, 0x02, 0x01, 0x2C};
    struct pl_iov iov[2] = {{d->signed_raw.p, d->signed_raw.len}, {tok, sizeof(tok)}};
    cr_assert_eq(pl_ecdsa_verify_iov(f.euicc_pk, iov, 2, d->signature.p), PL_OK);
    /* tamper with seqNumber (83 01 2A) */
    uint8_t *seq = sgp32_find(msg, len, "\x83\x01\x2A", 3);
    cr_assert_not_null(seq);
    seq[2] = 0x2B;
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(msg, len, d), PL_OK);
    cr_assert_eq(d->seq_number, 43);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, &token, f.euicc_pk), PL_ERR_BAD_SIGNATURE);
    free(msg);

    /* no token, DER signature form */
    msg = sign_result(r, NULL, f.euicc_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, NULL, f.euicc_pk), PL_OK);
    uint8_t der[PL_ECDSA_DER_MAX];
    size_t der_len;
    cr_assert_eq(pl_ecdsa_sig_to_der(d->signature.p, der, sizeof(der), &der_len), PL_OK);
    struct pl_wr w;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(r, der, der_len, &w), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(w.buf, w.len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, NULL, f.euicc_pk), PL_OK);
    pl_wr_free(&w);
    free(msg);

    /* error signed arm */
    result_base(r, PL_SGP32_EPR_ERROR_SIGNED);
    r->counter = 9;
    r->error_code = PL_SGP32_EPE_COUNTER_OUT_OF_RANGE;
    msg = sign_result(r, &token, f.euicc_sk, &len);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(msg, len, d), PL_OK);
    cr_assert_eq(d->kind, PL_SGP32_EPR_ERROR_SIGNED);
    cr_assert_eq(d->error_code, 6);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, &token, f.euicc_pk), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, NULL, f.euicc_pk), PL_ERR_BAD_SIGNATURE);
    free(msg);

    /* unsigned arm: nothing to verify */
    result_base(r, PL_SGP32_EPR_ERROR_UNSIGNED);
    msg = sign_result(r, NULL, NULL, &len);
    cr_assert_eq(pl_sgp32_euicc_package_result_decode(msg, len, d), PL_OK);
    cr_assert_eq(pl_sgp32_euicc_package_result_verify(d, NULL, f.euicc_pk), PL_ERR_STATE);
    free(msg);

    free(rat);
    free(r);
    free(d);
    free_keys(&f);
}

#define RES_HDR "8001658101018301 01"

static const char *res_with(const char *results)
{
    return T("BF51", T("A0", CAT(T("30", CAT(RES_HDR, T("30", results))), SIG5A_HEX)));
}

Test(sgp32_euicc_package, result_negative_cases)
{
    char seventeen[1024] = "", sixteen[1024] = "";
    for (int i = 0; i < 17; i++)
        strcat(seventeen, "830100");
    for (int i = 0; i < 16; i++)
        strcat(sixteen, "830100");
    char nine_eims[1024] = "";
    for (int i = 0; i < 9; i++)
        strcat(nine_eims, "3003800161");
    struct {
        const char *name;
        const char *hex;
        int err;
    } cases[] = {
        {"baseline", res_with("830100"), PL_OK},
        {"16 results (cap)", res_with(sixteen), PL_OK},
        {"17 results", res_with(seventeen), PL_ERR_OVERFLOW},
        {"no CHOICE arm tag (BF51 { 30 .. })",
         T("BF51", CAT(T("30", CAT(RES_HDR, T("30", "830100"))), SIG5A_HEX)), PL_ERR_DER_TAG},
        {"double tag BF51 { BF51 { A0 .. } }", T("BF51", res_with("830100")), PL_ERR_DER_TAG},
        {"unknown arm [3]", T("BF51", T("A3", "800165")), PL_ERR_DER_TAG},
        {"two arms", T("BF51", CAT(T("A2", "800165"), T("A2", "800165"))), PL_ERR_DER_TRAILING},
        {"empty", "BF5100", PL_ERR_MALFORMED},
        {"missing signature", T("BF51", T("A0", T("30", CAT(RES_HDR, T("30", "830100"))))),
         PL_ERR_MALFORMED},
        {"missing seqNumber",
         T("BF51", T("A0", CAT(T("30", CAT("800165810101", T("30", "830100"))), SIG5A_HEX))),
         PL_ERR_DER_TAG},
        {"seqNumber negative",
         T("BF51", T("A0", CAT(T("30", CAT("8001658101018301FF", T("30", "830100"))), SIG5A_HEX))),
         PL_ERR_DER_VALUE},
        {"counter 2^31",
         T("BF51",
           T("A0", CAT(T("30", CAT("80016581050080000000830101", T("30", "830100"))), SIG5A_HEX))),
         PL_ERR_DER_VALUE},
        {"unknown result [15]", res_with("8F0100"), PL_ERR_DER_TAG},
        {"result [6] primitive", res_with("860100"), PL_ERR_DER_TAG},
        {"enableResult non-minimal", res_with("83020001"), PL_ERR_DER_NONMINIMAL},
        {"enableResult empty", res_with("8300"), PL_ERR_DER_VALUE},
        {"addEimResult two arms", res_with("A806840101020100"), PL_ERR_DER_TRAILING},
        {"addEimResult unknown arm", res_with("A803850101"), PL_ERR_DER_TAG},
        {"listEimResult element not SEQUENCE", res_with("AB07A0053103800161"), PL_ERR_DER_TAG},
        {"listEimResult 9 eIMs", res_with(T("AB", T("A0", nine_eims))), PL_ERR_OVERFLOW},
        {"listEimResult eimId 129 bytes",
         res_with(T("AB", T("A0", T("30", T("80", REP("61", 129)))))), PL_ERR_DER_VALUE},
        {"listEimResult eimId 128 bytes",
         res_with(T("AB", T("A0", T("30", T("80", REP("61", 128)))))), PL_OK},
        {"getRATResult element not SEQUENCE", res_with("A6020500"), PL_ERR_DER_TAG},
        {"setDefaultDpAddressResult without result", res_with("BF6500"), PL_ERR_MALFORMED},
        {"error arm without code", T("BF51", T("A1", CAT(T("30", "800165810101"), SIG5A_HEX))),
         PL_ERR_MALFORMED},
        {"unsigned arm eimId empty", T("BF51", T("A2", "8000")), PL_ERR_DER_VALUE},
        {"trailing byte", CAT(res_with("830100"), "00"), PL_ERR_DER_TRAILING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        SGP32_EXPECT_DECODE(pl_sgp32_euicc_package_result_decode,
                            struct pl_sgp32_euicc_package_result, cases[i].hex, cases[i].err,
                            cases[i].name);
}

Test(sgp32_euicc_package, result_encoder_rejects_invalid)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    struct pl_wr w;
    init_sig();

    result_base(r, PL_SGP32_EPR_RESULT_SIGNED);
    r->n_results = PL_SGP32_MAX_RESULTS + 1;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(r, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    result_base(r, PL_SGP32_EPR_RESULT_SIGNED);
    r->n_results = 1;
    r->results[0].kind = (enum pl_sgp32_result_kind)2;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(r, SIG5A, 64, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    result_base(r, PL_SGP32_EPR_RESULT_SIGNED);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(r, NULL, 0, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    result_base(r, PL_SGP32_EPR_ERROR_UNSIGNED);
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_data_encode(r, &w), PL_ERR_INVAL);
    pl_wr_free(&w);

    result_base(r, PL_SGP32_EPR_RESULT_SIGNED);
    const struct pl_rng rng = PL_RNG_SYSTEM;
    pl_wr_init_dyn(&w, SGP32_TEST_WR_MAX);
    cr_assert_eq(pl_sgp32_euicc_package_result_sign(r, NULL, NULL, &rng, &w), PL_ERR_INVAL);
    pl_wr_free(&w);
    free(r);
}
