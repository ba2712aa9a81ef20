/* Unit tests of the software eUICC in field mode (sim/euicc.h after production): the
 * SGP.32 v1.2 ES10b functions of an IoT eUICC (GetEID, GetEuiccInfo1/2, GetCerts,
 * AddInitialEim, GetEimConfigurationData, LoadEuiccPackage with every PSMO and eCO,
 * ListProfileInfo, RetrieveNotificationsList with eUICC Package Results, NotificationSent),
 * the EUICCF04 gate, the eIM signature / EID / counter checks, the one-write commit and
 * the "result lost after enable until reset" knob (EIM.md §1.6).
 *
 * Each test takes a minted eUICC through production (two TS.48 profiles loaded through
 * OTKs 1-2, DeleteRemainingOtks), then associates the test PKI's eIM (eim.crt) with
 * AddInitialEim. Packages are built with the sgp32 encoders and signed with the eIM key;
 * every result is verified with CERT.EUICC and the association token. */
#define _POSIX_C_SOURCE 200809L
#include "../../sim/src/euicc_internal.h" /* white-box: the state file codec */
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPP_A "TS48V2-SAIP2-1-BERTLV-UNIQUE.der"
#define UPP_B "TS48V3-SAIP2-3-NOBERTLV-UNIQUE.der"
#define EIM1  "eim1.provline.test"
#define EIM2  "eim2.provline.test"

/* ---- fixture ---- */

static struct pl_et T;
static char PATH[512];
static struct pl_euicc *E;
static unsigned CH;
static uint8_t EID[16];
static uint8_t ICCID_A[10], ICCID_B[10];
static uint8_t AID_A[16];
static uint32_t CTR;   /* next counterValue of eIM 1 */
static int64_t TOKEN1; /* eIM 1's association token */
static bool KNOB;
static bool AUTO_ACK; /* run() acknowledges each result (NotificationSent), as an IPA would */

static void open_card(void)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.lose_result_after_enable = KNOB;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
    cr_assert_eq(pl_et_session(E, &CH), PL_OK);
}

static void reopen(void)
{
    pl_euicc_close(E);
    E = NULL;
    open_card();
}

/* ES10 request -> response data; returns the SW. */
static uint16_t es10(const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    uint16_t sw = 0;
    pl_wr_reset(rsp);
    int rc = pl_et_es10(E, CH, req, len, rsp, &sw);
    cr_assert(rc == PL_OK || rc == PL_ERR_CARD_SW, "rc %d", rc);
    return sw;
}

static void produced(void)
{
    static const char *const upps[] = {UPP_A, UPP_B};
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&T, "euicc.state", 3, NULL, PATH, sizeof(PATH)), PL_OK);
    open_card();
    cr_assert_eq(pl_et_produce(&T, E, CH, upps, 2), PL_OK);
    pl_euicc_get_eid(E, EID);
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    memcpy(ICCID_A, pi.iccid, 10);
    memcpy(AID_A, pi.aid, 16);
    cr_assert_eq(pl_euicc_profile_get(E, 1, &pi), PL_OK);
    memcpy(ICCID_B, pi.iccid, 10);
    cr_assert_neq(memcmp(ICCID_A, ICCID_B, 10), 0);
    CTR = 1;
}

static void add_initial_eim(void)
{
    struct pl_sgp32_add_initial_eim_request q;
    struct pl_sgp32_add_initial_eim_response r;
    struct pl_wr req, rsp;
    memset(&q, 0, sizeof(q));
    q.n_eims = 1;
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, true, &q.eims[0]), PL_OK);
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&rsp, 1 << 16);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_encode(&q, &req), PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_OK);
    cr_assert_eq(pl_sgp32_add_initial_eim_response_decode(rsp.buf, rsp.len, &r), PL_OK);
    cr_assert_not(r.is_error, "AddInitialEim error %lld", (long long)r.error_code);
    cr_assert_eq(r.n_results, 1);
    cr_assert(r.results[0].has_association_token);
    TOKEN1 = r.results[0].association_token;
    cr_assert_eq(TOKEN1, 1);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

static void setup(void)
{
    KNOB = false;
    AUTO_ACK = false;
    produced();
    add_initial_eim();
}

static void setup_knob(void)
{
    KNOB = true;
    AUTO_ACK = false;
    produced();
    add_initial_eim();
}

static void setup_no_eim(void)
{
    KNOB = false;
    AUTO_ACK = false;
    produced();
}

static void teardown(void)
{
    pl_euicc_close(E);
    E = NULL;
    pl_et_free(&T);
}

/* ---- packages ---- */

static struct pl_sgp32_euicc_package *pkg_new(enum pl_sgp32_package_kind kind)
{
    static const uint8_t txid[4] = {'T', 'X', 0x00, 0x01};
    struct pl_sgp32_euicc_package *p = calloc(1, sizeof(*p));
    cr_assert_not_null(p);
    p->eim_id = pl_sgp32_str(EIM1);
    memcpy(p->eid, EID, 16);
    p->counter = CTR;
    p->eim_txid.p = txid;
    p->eim_txid.len = sizeof(txid);
    p->kind = kind;
    return p;
}

static void psmo_add(struct pl_sgp32_euicc_package *p, enum pl_sgp32_psmo_kind kind,
                     const uint8_t *iccid)
{
    struct pl_sgp32_psmo *o = &p->psmo[p->n_ops++];
    o->kind = kind;
    if (kind == PL_SGP32_PSMO_ENABLE)
        memcpy(o->enable.iccid, iccid, 10);
    else if (iccid)
        memcpy(o->profile.iccid, iccid, 10);
}

static void sign(const struct pl_sgp32_euicc_package *p, const int64_t *token,
                 const struct pl_eckey *key, struct pl_wr *req)
{
    pl_wr_reset(req);
    cr_assert_eq(pl_sgp32_euicc_package_request_sign(p, token, key, &T.rng, req), PL_OK);
}

static const struct pl_eckey *eim_key(void)
{
    return pl_pki_key(T.pki, PL_PKI_EIM);
}

/* Sends req, expects data with SW 9000, returns the decoded result verified with CERT.EUICC
 * and token (heap; raw bytes in rsp). */
static struct pl_sgp32_euicc_package_result *send_req(const struct pl_wr *req, const int64_t *token,
                                                      struct pl_wr *rsp)
{
    struct pl_sgp32_euicc_package_result *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    uint16_t sw = es10(req->buf, req->len, rsp);
    cr_assert_eq(sw, PL_SW_OK, "SW %04X", sw);
    cr_assert_eq(pl_et_epr_check(E, rsp->buf, rsp->len, token, r), PL_OK);
    return r;
}

/* Signs p as eIM 1 (consuming the counter), sends it and checks the signed result's
 * header: eimId, counter, txid, one result per operation. */
static struct pl_sgp32_euicc_package_result *run(struct pl_sgp32_euicc_package *p,
                                                 struct pl_wr *rsp)
{
    struct pl_wr req;
    pl_wr_init_dyn(&req, 1 << 16);
    sign(p, &TOKEN1, eim_key(), &req);
    struct pl_sgp32_euicc_package_result *r = send_req(&req, &TOKEN1, rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED, "kind %d code %lld", r->kind,
                 (long long)r->error_code);
    cr_assert(pl_sgp32_buf_eq(r->eim_id, p->eim_id));
    cr_assert_eq(r->counter, p->counter);
    cr_assert(pl_sgp32_buf_eq(r->eim_txid, p->eim_txid));
    cr_assert_eq(r->n_results, p->n_ops);
    CTR = p->counter + 1;
    if (AUTO_ACK) {
        struct pl_wr a;
        int64_t st;
        pl_wr_init_dyn(&a, 64);
        pl_wr_reset(&req);
        cr_assert_eq(pl_notif_sent_req_encode(r->seq_number, &req), PL_OK);
        cr_assert_eq(es10(req.buf, req.len, &a), PL_SW_OK);
        cr_assert_eq(pl_notif_sent_rsp_decode(a.buf, a.len, &st), PL_OK);
        cr_assert_eq(st, PL_NOTIF_SENT_OK);
        pl_wr_free(&a);
    }
    pl_wr_free(&req);
    return r;
}

/* One PSMO on an ICCID; returns its result code. */
static int64_t psmo1(enum pl_sgp32_psmo_kind kind, const uint8_t *iccid, bool rollback)
{
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, 1 << 16);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, kind, iccid);
    p->psmo[0].enable.rollback = rollback && kind == PL_SGP32_PSMO_ENABLE;
    struct pl_sgp32_euicc_package_result *r = run(p, &rsp);
    int64_t code = r->results[0].code;
    free(r);
    free(p);
    pl_wr_free(&rsp);
    return code;
}

static bool enabled(const uint8_t *iccid)
{
    for (size_t i = 0; i < pl_euicc_profile_count(E); i++) {
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_get(E, i, &pi), PL_OK);
        if (memcmp(pi.iccid, iccid, 10) == 0)
            return pi.enabled;
    }
    cr_assert_fail("ICCID not installed");
    return false;
}

static bool fallback(const uint8_t *iccid)
{
    for (size_t i = 0; i < pl_euicc_profile_count(E); i++) {
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_get(E, i, &pi), PL_OK);
        if (memcmp(pi.iccid, iccid, 10) == 0)
            return pi.fallback;
    }
    cr_assert_fail("ICCID not installed");
    return false;
}

static uint32_t eim_counter(size_t i)
{
    struct pl_euicc_eim_info info;
    cr_assert_eq(pl_euicc_eim_get(E, i, &info), PL_OK);
    return info.counter;
}

/* Index of tag's first occurrence (any depth) in w, or -1. */
static long find(const struct pl_wr *w, const uint8_t *pat, size_t n)
{
    for (size_t i = 0; i + n <= w->len; i++)
        if (memcmp(w->buf + i, pat, n) == 0)
            return (long)i;
    return -1;
}

/* ---- the gate: EUICCF04 both ways ---- */

Test(euicc_field, ipa_services_gated_while_otks_remain, .fini = teardown)
{
    static const uint8_t reqs[][8] = {
        {0xBF, 0x20, 0x00},             /* GetEuiccInfo1 */
        {0xBF, 0x22, 0x00},             /* GetEuiccInfo2 */
        {0xBF, 0x56, 0x00},             /* GetCerts */
        {0xBF, 0x55, 0x00},             /* GetEimConfigurationData */
        {0xBF, 0x57, 0x02, 0xA0, 0x00}, /* AddInitialEim */
        {0xBF, 0x2D, 0x00},             /* ListProfileInfo */
        {0xBF, 0x3C, 0x00},             /* EuiccConfiguredAddresses */
        {0xBF, 0x28, 0x00},             /* ListNotification */
        {0xBF, 0x51, 0x00},             /* LoadEuiccPackage (even malformed) */
    };
    static const size_t lens[] = {3, 3, 3, 3, 5, 3, 3, 3, 3};
    struct pl_wr w;
    pl_wr_init_dyn(&w, 1 << 16);
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&T, "euicc.state", 2, NULL, PATH, sizeof(PATH)), PL_OK);
    KNOB = false;
    open_card();
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        cr_assert_eq(es10(reqs[i], lens[i], &w), PL_SW_CONDITIONS, "request %zu", i);
    /* GetEID serves both sides */
    static const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    cr_assert_eq(es10(get_eid, sizeof(get_eid), &w), PL_SW_OK);
    /* one profile loaded, one OTK still FREE: still gated */
    struct pl_et_pkg p;
    size_t len;
    uint8_t *upp = pl_et_upp(UPP_A, &len);
    uint16_t sw;
    cr_assert_eq(pl_et_bind_for(&T, E, 1, upp, len, false, &p), PL_OK);
    cr_assert_eq(pl_et_load(E, CH, &p, &w, &sw), PL_OK);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        cr_assert_eq(es10(reqs[i], lens[i], &w), PL_SW_CONDITIONS, "request %zu", i);
    pl_et_pkg_free(&p);
    free(upp);
    /* after DeleteRemainingOtks the gate is open: no 6985 any more */
    struct pl_wr req;
    const uint8_t *cert;
    size_t cert_len;
    pl_wr_init_dyn(&req, 1 << 16);
    pl_euicc_get_eid(E, EID);
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &cert, &cert_len);
    cr_assert_eq(pl_et_dotk_req(EID, 1, PL_ES10F_OP_DELETE_REMAINING_OTKS,
                                pl_pki_key(T.pki, PL_PKI_DPF), cert, cert_len, &req),
                 PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &w), PL_SW_OK);
    cr_assert_not(pl_euicc_factory_mode(E));
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        cr_assert_neq(es10(reqs[i], lens[i], &w), PL_SW_CONDITIONS, "request %zu", i);
    /* FPA services are closed for good (GENS13) */
    static const uint8_t info_req[] = {0xFF, 0x72, 0x00};
    cr_assert_eq(es10(info_req, sizeof(info_req), &w), PL_SW_CONDITIONS);
    /* functions not offered: 6A88 once open */
    static const uint8_t rollback[] = {0xBF, 0x58, 0x03, 0x01, 0x01, 0x00};
    cr_assert_eq(es10(rollback, sizeof(rollback), &w), 0x6A88);
    pl_wr_free(&req);
    pl_wr_free(&w);
}

/* ---- identity: GetEID, EUICCInfo1/2, GetCerts ---- */

static void ci_ski(uint8_t *ski, size_t *len)
{
    cr_assert_eq(pl_cert_subject_key_id(pl_pki_cert(T.pki, PL_PKI_CI), ski, 32, len), PL_OK);
}

Test(euicc_field, eid_euicc_info_and_certs, .init = setup_no_eim, .fini = teardown)
{
    struct pl_wr w;
    struct pl_tlv t, f;
    struct pl_der d, in;
    uint8_t ski[32];
    size_t ski_len;
    pl_wr_init_dyn(&w, 1 << 16);
    ci_ski(ski, &ski_len);

    static const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    cr_assert_eq(es10(get_eid, sizeof(get_eid), &w), PL_SW_OK);
    cr_assert_eq(w.len, 21);
    cr_assert_eq(memcmp(w.buf + 5, EID, 16), 0);

    /* EUICCInfo1: svn 2.5.0, the CI's SKI for verification and signing */
    static const uint8_t info1[] = {0xBF, 0x20, 0x00};
    cr_assert_eq(es10(info1, sizeof(info1), &w), PL_SW_OK);
    cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF20u, &t), PL_OK);
    pl_der_init(&d, w.buf, w.len);
    cr_assert_eq(pl_der_enter(&d, &t, &in), PL_OK);
    cr_assert_eq(pl_der_expect(&in, 0x82u, &f), PL_OK);
    cr_assert_eq(f.len, 3);
    cr_assert_eq(memcmp(f.value, "\x02\x05\x00", 3), 0);
    for (uint32_t tag = 0xA9u; tag <= 0xAAu; tag++) {
        struct pl_der l;
        struct pl_tlv k;
        cr_assert_eq(pl_der_expect(&in, tag, &f), PL_OK);
        cr_assert_eq(pl_der_enter(&in, &f, &l), PL_OK);
        cr_assert_eq(pl_der_expect(&l, PL_TAG_OCTET_STRING, &k), PL_OK);
        cr_assert_eq(k.len, ski_len);
        cr_assert_eq(memcmp(k.value, ski, ski_len), 0);
        cr_assert_eq(pl_der_finish(&l), PL_OK);
    }
    cr_assert_eq(pl_der_finish(&in), PL_OK);

    /* SGP32-EUICCInfo2: the mandatory fields in order, ipaMode ipad, iotVersion 1.2.0 */
    static const uint8_t info2[] = {0xBF, 0x22, 0x00};
    cr_assert_eq(es10(info2, sizeof(info2), &w), PL_SW_OK);
    cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF22u, &t), PL_OK);
    cr_assert_eq(pl_der_validate(w.buf, w.len, 8), PL_OK);
    pl_der_init(&d, w.buf, w.len);
    cr_assert_eq(pl_der_enter(&d, &t, &in), PL_OK);
    static const uint32_t order[] = {0x81u, 0x82u, 0x83u, 0x84u, 0x85u, 0x88u,
                                     0xA9u, 0xAAu, 0x04u, 0x0Cu, 0x90u, 0xB4u};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        cr_assert_eq(pl_der_next(&in, &f), PL_OK);
        cr_assert_eq(f.tag, order[i], "field %zu: tag %X", i, f.tag);
        if (f.tag == 0x90u)
            cr_assert(f.len == 1 && f.value[0] == 0x00, "ipaMode ipad(0)");
        if (f.tag == 0x82u)
            cr_assert_eq(memcmp(f.value, "\x02\x05\x00", 3), 0);
    }
    cr_assert_eq(pl_der_finish(&in), PL_OK);
    static const uint8_t iot[] = {0xB4, 0x07, 0xA0, 0x05, 0x04, 0x03, 0x01, 0x02, 0x00};
    cr_assert_eq(memcmp(w.buf + w.len - sizeof(iot), iot, sizeof(iot)), 0);
    cr_assert_gt(find(&w, ski, ski_len), 0);
    /* bad requests */
    static const uint8_t bad[] = {0xBF, 0x22, 0x01};
    cr_assert_eq(es10(bad, sizeof(bad), &w), PL_SW_WRONG_DATA);

    /* GetCerts: BF56 { A0 { A5 CERT.EUM, A6 CERT.EUICC } }, implicit tags on the certs */
    const uint8_t *der[2];
    size_t der_len[2];
    pl_euicc_cert_eum(E, &der[0], &der_len[0]);
    pl_euicc_cert_euicc(E, &der[1], &der_len[1]);
    uint8_t with_ci[40] = {0xBF, 0x56, (uint8_t)(ski_len + 2), 0x80, (uint8_t)ski_len};
    memcpy(with_ci + 5, ski, ski_len);
    static const uint8_t no_ci[] = {0xBF, 0x56, 0x00};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            cr_assert_eq(es10(no_ci, sizeof(no_ci), &w), PL_SW_OK);
        else
            cr_assert_eq(es10(with_ci, ski_len + 5, &w), PL_SW_OK);
        struct pl_der c;
        struct pl_tlv a0, cert;
        cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF56u, &t), PL_OK);
        pl_der_init(&d, w.buf, w.len);
        cr_assert_eq(pl_der_enter(&d, &t, &in), PL_OK);
        cr_assert_eq(pl_der_expect(&in, 0xA0u, &a0), PL_OK);
        cr_assert_eq(pl_der_enter(&in, &a0, &c), PL_OK);
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(pl_der_expect(&c, k == 0 ? 0xA5u : 0xA6u, &cert), PL_OK);
            /* A5/A6 replace the certificate's '30': same length and contents */
            cr_assert_eq(cert.raw_len, der_len[k]);
            cr_assert_eq(memcmp(cert.raw + 1, der[k] + 1, der_len[k] - 1), 0);
        }
        cr_assert_eq(pl_der_finish(&c), PL_OK);
    }
    with_ci[5] ^= 0xFF; /* another CI: invalidCiPKId(1) */
    cr_assert_eq(es10(with_ci, ski_len + 5, &w), PL_SW_OK);
    static const uint8_t invalid_ci[] = {0xBF, 0x56, 0x03, 0x81, 0x01, 0x01};
    cr_assert_eq(w.len, sizeof(invalid_ci));
    cr_assert_eq(memcmp(w.buf, invalid_ci, sizeof(invalid_ci)), 0);

    /* EuiccConfiguredAddresses: root SM-DS only until a default SM-DP+ is set */
    static const uint8_t addrs[] = {0xBF, 0x3C, 0x00};
    cr_assert_eq(es10(addrs, sizeof(addrs), &w), PL_SW_OK);
    cr_assert_eq(w.buf[3], 0x81);
    static const uint8_t set_dp[] = {0xBF, 0x65, 0x0B, 0x80, 0x09, 's', 'm',
                                     'd',  'p',  '.',  't',  'e',  's', 't'};
    cr_assert_eq(es10(set_dp, sizeof(set_dp), &w), PL_SW_OK);
    static const uint8_t set_ok[] = {0xBF, 0x65, 0x03, 0x80, 0x01, 0x00};
    cr_assert_eq(memcmp(w.buf, set_ok, sizeof(set_ok)), 0);
    reopen();
    cr_assert_eq(es10(addrs, sizeof(addrs), &w), PL_SW_OK);
    cr_assert_eq(memcmp(w.buf + 3, set_dp + 3, 11), 0);
    pl_wr_free(&w);
}

/* ---- AddInitialEim / GetEimConfigurationData ---- */

static int64_t add_initial(struct pl_sgp32_add_initial_eim_request *q,
                           struct pl_sgp32_add_initial_eim_response *r)
{
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&rsp, 1 << 16);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_encode(q, &req), PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_OK);
    cr_assert_eq(pl_sgp32_add_initial_eim_response_decode(rsp.buf, rsp.len, r), PL_OK);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    return r->is_error ? r->error_code : 0;
}

Test(euicc_field, add_initial_eim_rules, .init = setup_no_eim, .fini = teardown)
{
    struct pl_sgp32_add_initial_eim_request *q = calloc(1, sizeof(*q));
    struct pl_sgp32_add_initial_eim_response r;
    uint8_t wrong_ski[20];
    memset(wrong_ski, 0x5A, sizeof(wrong_ski));

    /* empty list: commandError(7) */
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_COMMAND_ERROR);
    /* no eimPublicKeyData: commandError(7) */
    q->n_eims = 1;
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &q->eims[0]), PL_OK);
    q->eims[0].eim_public_key_data.kind = PL_SGP32_KEY_NONE;
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_COMMAND_ERROR);
    /* a key that is not one (the point moved off the curve): commandError(7) */
    const uint8_t *eimc, *spki;
    size_t eimc_len, spki_len;
    uint8_t bad_spki[200];
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM), &eimc, &eimc_len);
    cr_assert_eq(pl_et_cert_spki(eimc, eimc_len, &spki, &spki_len), PL_OK);
    cr_assert_leq(spki_len, sizeof(bad_spki));
    memcpy(bad_spki, spki, spki_len);
    bad_spki[spki_len - 1] ^= 0x01;
    cr_assert_eq(pl_sgp32_key_data_from_der(PL_SGP32_KEY_SPKI, bad_spki, spki_len,
                                            &q->eims[0].eim_public_key_data),
                 PL_OK);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_COMMAND_ERROR);
    /* euiccCiPKId of another CI: ciPKUnknown(3) */
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &q->eims[0]), PL_OK);
    q->eims[0].euicc_ci_pkid.p = wrong_ski;
    q->eims[0].euicc_ci_pkid.len = sizeof(wrong_ski);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_CI_PK_UNKNOWN);
    /* a certificate that is no eIM certificate of our CI (the SM-DPf's): ciPKUnknown(3) */
    const uint8_t *dpf;
    size_t dpf_len;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_DPF), &dpf, &dpf_len);
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &q->eims[0]), PL_OK);
    cr_assert_eq(pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, dpf, dpf_len,
                                            &q->eims[0].eim_public_key_data),
                 PL_OK);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_CI_PK_UNKNOWN);
    /* initial counterValue above the eUICC's range: counterValueOutOfRange(6) */
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &q->eims[0]), PL_OK);
    q->eims[0].has_counter = true;
    q->eims[0].counter = PL_EUICC_COUNTER_MAX + 1;
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_COUNTER_OUT_OF_RANGE);
    /* the same eimId twice: commandError(7); more than the eUICC holds: insufficientMemory */
    q->n_eims = 2;
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &q->eims[0]), PL_OK);
    cr_assert_eq(pl_et_eim_config(&T, EIM1, false, false, &q->eims[1]), PL_OK);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_COMMAND_ERROR);
    q->n_eims = PL_EUICC_MAX_EIMS + 1;
    static const char *const ids[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < q->n_eims; i++)
        cr_assert_eq(pl_et_eim_config(&T, ids[i], false, false, &q->eims[i]), PL_OK);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY);
    cr_assert_eq(pl_euicc_eim_count(E), 0, "no error stores anything");

    /* two eIMs in one request: the first with the certificate and a token, the second with
     * its SPKI, counter 41, no token */
    q->n_eims = 2;
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, true, &q->eims[0]), PL_OK);
    cr_assert_eq(pl_et_eim_config(&T, EIM2, false, false, &q->eims[1]), PL_OK);
    q->eims[1].has_counter = true;
    q->eims[1].counter = 41;
    cr_assert_eq(add_initial(q, &r), 0);
    cr_assert_eq(r.n_results, 2);
    cr_assert(r.results[0].has_association_token);
    cr_assert_eq(r.results[0].association_token, 1);
    cr_assert_not(r.results[1].has_association_token, "addOk");
    cr_assert_eq(pl_euicc_eim_count(E), 2);
    /* only while no eIM is associated: associatedEimAlreadyExists(2) */
    q->n_eims = 1;
    cr_assert_eq(pl_et_eim_config(&T, "eim3", true, false, &q->eims[0]), PL_OK);
    cr_assert_eq(add_initial(q, &r), PL_SGP32_ADD_EIM_ALREADY_EXISTS);

    /* GetEimConfigurationData: both, durable, with counter and token; search by eimId */
    reopen();
    struct pl_wr req, rsp;
    struct pl_sgp32_get_eim_config_request gq;
    struct pl_sgp32_get_eim_config_response *gr = calloc(1, sizeof(*gr));
    pl_wr_init_dyn(&req, 1 << 10);
    pl_wr_init_dyn(&rsp, 1 << 16);
    memset(&gq, 0, sizeof(gq));
    cr_assert_eq(pl_sgp32_get_eim_config_request_encode(&gq, &req), PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_OK);
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(rsp.buf, rsp.len, gr), PL_OK);
    cr_assert_eq(gr->n_eims, 2);
    cr_assert(pl_sgp32_buf_eq(gr->eims[0].eim_id, pl_sgp32_str(EIM1)));
    cr_assert(gr->eims[0].has_counter);
    cr_assert_eq(gr->eims[0].counter, 0);
    cr_assert(gr->eims[0].has_association_token);
    cr_assert_eq(gr->eims[0].association_token, 1);
    cr_assert_eq(gr->eims[0].eim_public_key_data.kind, PL_SGP32_KEY_CERT);
    cr_assert(pl_sgp32_buf_eq(gr->eims[0].eim_fqdn, pl_sgp32_str(EIM1)));
    cr_assert(gr->eims[0].has_supported_protocol);
    cr_assert_eq(gr->eims[1].counter, 41);
    cr_assert_not(gr->eims[1].has_association_token);
    cr_assert_eq(gr->eims[1].eim_public_key_data.kind, PL_SGP32_KEY_SPKI);
    gq.eim_id = pl_sgp32_str(EIM2);
    pl_wr_reset(&req);
    cr_assert_eq(pl_sgp32_get_eim_config_request_encode(&gq, &req), PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_OK);
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(rsp.buf, rsp.len, gr), PL_OK);
    cr_assert_eq(gr->n_eims, 1);
    cr_assert(pl_sgp32_buf_eq(gr->eims[0].eim_id, pl_sgp32_str(EIM2)));
    gq.eim_id = pl_sgp32_str("nobody");
    pl_wr_reset(&req);
    cr_assert_eq(pl_sgp32_get_eim_config_request_encode(&gq, &req), PL_OK);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_OK);
    cr_assert_eq(pl_sgp32_get_eim_config_response_decode(rsp.buf, rsp.len, gr), PL_OK);
    cr_assert_eq(gr->n_eims, 0);
    static const uint8_t garbage[] = {0xBF, 0x55, 0x02, 0x05, 0x00};
    cr_assert_eq(es10(garbage, sizeof(garbage), &rsp), PL_SW_WRONG_DATA);

    /* eIM 2 (no token: '84 01 00' in both signatures) manages the eUICC from counter 42 */
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_ECO);
    p->eim_id = pl_sgp32_str(EIM2);
    p->counter = 41; /* not above its initial value */
    p->eco[p->n_ops++].kind = PL_SGP32_ECO_LIST_EIM;
    sign(p, NULL, eim_key(), &req);
    struct pl_sgp32_euicc_package_result *res = send_req(&req, NULL, &rsp);
    cr_assert_eq(res->kind, PL_SGP32_EPR_ERROR_SIGNED);
    cr_assert_eq(res->error_code, PL_SGP32_EPE_REPLAY);
    free(res);
    p->counter = 42;
    sign(p, NULL, eim_key(), &req);
    res = send_req(&req, NULL, &rsp);
    cr_assert_eq(res->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(res->results[0].n_eims, 2);
    free(res);

    free(p);
    free(gr);
    free(q);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- PSMOs ---- */

Test(euicc_field, enable_disable_delete, .init = setup, .fini = teardown)
{
    static const uint8_t unknown[10] = {0x98, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x01};
    /* enable */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, unknown, false), PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_A, true), PL_SGP32_RC_ROLLBACK_NOT_AVAILABLE);
    cr_assert_not(enabled(ICCID_A));
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_A, false), PL_SGP32_RC_OK);
    cr_assert(enabled(ICCID_A));
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_A, false),
                 PL_SGP32_RC_PROFILE_NOT_IN_DISABLED_STATE);
    /* enabling B disables A: one enabled profile at most */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_B, false), PL_SGP32_RC_OK);
    cr_assert(enabled(ICCID_B));
    cr_assert_not(enabled(ICCID_A));
    /* disable: profileNotInEnabledState(2) for a disabled one */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DISABLE, ICCID_A, false), 2);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DISABLE, unknown, false), PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND);
    /* delete: never the enabled profile */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DELETE, ICCID_B, false),
                 PL_SGP32_RC_PROFILE_NOT_IN_DISABLED_STATE);
    cr_assert_eq(pl_euicc_profile_count(E), 2);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DISABLE, ICCID_B, false), PL_SGP32_RC_OK);
    cr_assert_not(enabled(ICCID_B));
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DELETE, ICCID_B, false), PL_SGP32_RC_OK);
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DELETE, ICCID_B, false), PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DELETE, unknown, false), PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND);
    /* durable, and the counter moved with every package */
    reopen();
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_not(enabled(ICCID_A));
    cr_assert_eq(eim_counter(0), CTR - 1);
    cr_assert_eq(pl_euicc_epr_count(E), CTR - 1);
}

Test(euicc_field, several_operations_in_one_package, .init = setup, .fini = teardown)
{
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, 1 << 16);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);  /* already: 2 */
    psmo_add(p, PL_SGP32_PSMO_DELETE, ICCID_A);  /* enabled: 2 */
    psmo_add(p, PL_SGP32_PSMO_DISABLE, ICCID_A); /* ok */
    psmo_add(p, PL_SGP32_PSMO_DELETE, ICCID_A);  /* ok */
    psmo_add(p, PL_SGP32_PSMO_GET_RAT, NULL);
    struct pl_sgp32_euicc_package_result *r = run(p, &rsp);
    static const int64_t want[] = {0, 2, 2, 0, 0};
    static const enum pl_sgp32_result_kind kinds[] = {
        PL_SGP32_RESULT_ENABLE,  PL_SGP32_RESULT_ENABLE, PL_SGP32_RESULT_DELETE,
        PL_SGP32_RESULT_DISABLE, PL_SGP32_RESULT_DELETE, PL_SGP32_RESULT_GET_RAT};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(r->results[i].kind, kinds[i]);
        cr_assert_eq(r->results[i].code, want[i], "op %zu: %lld", i, (long long)r->results[i].code);
    }
    cr_assert_eq(r->results[5].kind, PL_SGP32_RESULT_GET_RAT);
    cr_assert_eq(r->results[5].list.count, 0, "empty RAT");
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_eq(r->seq_number, 3, "after the two PIRs of production (seq 1, 2)");
    free(r);
    free(p);
    pl_wr_free(&rsp);
}

static struct pl_sgp32_euicc_package_result *list_psmo(enum pl_sgp32_search_kind search,
                                                       const void *key, size_t key_len,
                                                       const char *tag_list, size_t tl_len,
                                                       struct pl_wr *rsp)
{
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    struct pl_sgp32_psmo *o = &p->psmo[p->n_ops++];
    o->kind = PL_SGP32_PSMO_LIST_PROFILE_INFO;
    o->list_profile_info.search = search;
    if (search == PL_SGP32_SEARCH_ISDP_AID) {
        o->list_profile_info.isdp_aid.p = key;
        o->list_profile_info.isdp_aid.len = key_len;
    } else if (search == PL_SGP32_SEARCH_ICCID) {
        memcpy(o->list_profile_info.iccid, key, 10);
    } else if (search == PL_SGP32_SEARCH_PROFILE_CLASS) {
        o->list_profile_info.profile_class = *(const int64_t *)key;
    }
    if (tag_list) {
        o->list_profile_info.tag_list.p = (const uint8_t *)tag_list;
        o->list_profile_info.tag_list.len = tl_len;
    }
    struct pl_sgp32_euicc_package_result *r = run(p, rsp);
    cr_assert_eq(r->results[0].kind, PL_SGP32_RESULT_LIST_PROFILE_INFO);
    free(p);
    return r;
}

Test(euicc_field, list_profile_info_and_fallback, .init = setup, .fini = teardown)
{
    struct pl_wr rsp, w;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&w, 1 << 16);
    struct pl_sgp32_euicc_package_result *r;
    AUTO_ACK = true;

    /* all: two E3 with ICCID, AID, state, SPN, name, class operational */
    r = list_psmo(PL_SGP32_SEARCH_NONE, NULL, 0, NULL, 0, &rsp);
    cr_assert_not(r->results[0].is_error);
    cr_assert_eq(r->results[0].list.count, 2);
    w.len = 0;
    cr_assert_eq(pl_wr_bytes(&w, r->results[0].list.p, r->results[0].list.len), PL_OK);
    cr_assert_gt(find(&w, ICCID_A, 10), 0);
    cr_assert_gt(find(&w, ICCID_B, 10), 0);
    static const uint8_t class_op[] = {0x95, 0x01, 0x02};
    cr_assert_gt(find(&w, class_op, 3), 0);
    free(r);
    /* by ICCID, by ISD-P AID, by class; nothing for another class */
    r = list_psmo(PL_SGP32_SEARCH_ICCID, ICCID_B, 10, NULL, 0, &rsp);
    cr_assert_eq(r->results[0].list.count, 1);
    free(r);
    r = list_psmo(PL_SGP32_SEARCH_ISDP_AID, AID_A, 16, NULL, 0, &rsp);
    cr_assert_eq(r->results[0].list.count, 1);
    free(r);
    int64_t cls = 2;
    r = list_psmo(PL_SGP32_SEARCH_PROFILE_CLASS, &cls, 0, NULL, 0, &rsp);
    cr_assert_eq(r->results[0].list.count, 2);
    free(r);
    cls = 0;
    r = list_psmo(PL_SGP32_SEARCH_PROFILE_CLASS, &cls, 0, NULL, 0, &rsp);
    cr_assert_eq(r->results[0].list.count, 0);
    free(r);
    /* tagList: only the ICCID and the state */
    r = list_psmo(PL_SGP32_SEARCH_ICCID, ICCID_A, 10, "\x5A\x9F\x70", 3, &rsp);
    uint8_t want[] = {0xE3, 0x10, 0x5A, 0x0A, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x9F, 0x70, 0x01, 0x00};
    memcpy(want + 4, ICCID_A, 10);
    cr_assert_eq(r->results[0].list.len, sizeof(want));
    cr_assert_eq(memcmp(r->results[0].list.p, want, sizeof(want)), 0);
    free(r);
    /* a tagList that is not one: incorrectInputValues(1) */
    r = list_psmo(PL_SGP32_SEARCH_NONE, NULL, 0, "\x5A\x9F", 2, &rsp);
    cr_assert(r->results[0].is_error);
    cr_assert_eq(r->results[0].code, 1);
    free(r);

    /* fallback attribute: A gets it, shows it as 9F26 TRUE; moves to B; rules with enable */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE, ICCID_A, false), 0);
    cr_assert(fallback(ICCID_A));
    r = list_psmo(PL_SGP32_SEARCH_ICCID, ICCID_A, 10, NULL, 0, &rsp);
    static const uint8_t fb_true[] = {0x9F, 0x26, 0x01, 0xFF};
    w.len = 0;
    cr_assert_eq(pl_wr_bytes(&w, r->results[0].list.p, r->results[0].list.len), PL_OK);
    cr_assert_gt(find(&w, fb_true, 4), 0);
    free(r);
    static const uint8_t unknown[10] = {0x98, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x01};
    cr_assert_eq(psmo1(PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE, unknown, false), 1);
    /* the fallback profile cannot be deleted: returnFallbackProfile(21) */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DELETE, ICCID_A, false), PL_SGP32_RC_RETURN_FALLBACK_PROFILE);
    /* enabled fallback profile: the attribute neither moves nor goes: fallbackProfileEnabled */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_A, false), 0);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE, ICCID_B, false), 3);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE, NULL, false), 3);
    cr_assert(fallback(ICCID_A));
    cr_assert_not(fallback(ICCID_B));
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, ICCID_B, false), 0);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE, ICCID_B, false), 0);
    cr_assert(fallback(ICCID_B));
    cr_assert_not(fallback(ICCID_A), "one fallback profile at most");
    reopen();
    cr_assert(fallback(ICCID_B));
    cr_assert_eq(psmo1(PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE, NULL, false), 3);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DISABLE, ICCID_B, false), 0);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE, NULL, false), 0);
    cr_assert_eq(psmo1(PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE, NULL, false), 2);
    cr_assert_not(fallback(ICCID_B));

    /* the ES10c ListProfileInfo answers the same SGP.32 ProfileInfo */
    static const uint8_t all[] = {0xBF, 0x2D, 0x00};
    cr_assert_eq(es10(all, sizeof(all), &w), PL_SW_OK);
    cr_assert_gt(find(&w, ICCID_B, 10), 0);
    cr_assert_gt(find(&w, class_op, 3), 0);
    static const uint8_t bad_crit[] = {0xBF, 0x2D, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x00};
    cr_assert_eq(es10(bad_crit, sizeof(bad_crit), &w), PL_SW_OK);
    static const uint8_t pil_err[] = {0xBF, 0x2D, 0x03, 0x81, 0x01, 0x01};
    cr_assert_eq(w.len, sizeof(pil_err));
    cr_assert_eq(memcmp(w.buf, pil_err, sizeof(pil_err)), 0);
    static const uint8_t bad_tags[] = {0xBF, 0x2D, 0x03, 0x5C, 0x01, 0x9F};
    cr_assert_eq(es10(bad_tags, sizeof(bad_tags), &w), PL_SW_OK);
    cr_assert_eq(memcmp(w.buf, pil_err, sizeof(pil_err)), 0);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
}

Test(euicc_field, configure_immediate_enable_and_default_dp, .init = setup, .fini = teardown)
{
    static const uint8_t oid[] = {0x2B, 0x06, 0x01, 0x04, 0x01};
    struct pl_wr rsp, w;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&w, 1 << 16);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    struct pl_sgp32_psmo *o = &p->psmo[p->n_ops++];
    o->kind = PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE;
    o->configure_immediate_enable.immediate_enable_flag = true;
    o->configure_immediate_enable.default_smdp_oid.p = oid;
    o->configure_immediate_enable.default_smdp_oid.len = sizeof(oid);
    o->configure_immediate_enable.default_smdp_address = pl_sgp32_str("smdp.ie.test");
    o = &p->psmo[p->n_ops++];
    o->kind = PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS;
    o->set_default_dp_address.default_dp_address = pl_sgp32_str("smdp.default.test");
    struct pl_sgp32_euicc_package_result *r = run(p, &rsp);
    cr_assert_eq(r->results[0].kind, PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE);
    cr_assert_eq(r->results[0].code, 0);
    cr_assert_eq(r->results[1].kind, PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS);
    cr_assert_eq(r->results[1].code, 0);
    free(r);
    reopen();
    static const uint8_t addrs[] = {0xBF, 0x3C, 0x00};
    cr_assert_eq(es10(addrs, sizeof(addrs), &w), PL_SW_OK);
    cr_assert_gt(find(&w, (const uint8_t *)"smdp.default.test", 17), 0);
    /* white-box: the immediate-enable settings are in the state file */
    struct pl_euicc_state st;
    cr_assert_eq(pl_euicc_state_read(PATH, &st), PL_OK);
    cr_assert(st.field.immediate_enable);
    cr_assert_eq(st.field.ie_oid_len, sizeof(oid));
    cr_assert_eq(st.field.ie_addr_len, strlen("smdp.ie.test"));
    pl_euicc_state_free(&st);
    free(p);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
}

/* ---- eCOs ---- */

Test(euicc_field, eim_configuration_operations, .init = setup, .fini = teardown)
{
    struct pl_wr rsp, req;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&req, 1 << 16);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_ECO);
    struct pl_sgp32_euicc_package_result *r;

    /* addEim: eIM 2 with its SPKI, asking for a token (2); eIM 1 again: already exists */
    p->eco[0].kind = PL_SGP32_ECO_ADD_EIM;
    cr_assert_eq(pl_et_eim_config(&T, EIM2, false, true, &p->eco[0].eim_config), PL_OK);
    p->eco[1].kind = PL_SGP32_ECO_ADD_EIM;
    cr_assert_eq(pl_et_eim_config(&T, EIM1, true, false, &p->eco[1].eim_config), PL_OK);
    p->eco[2].kind = PL_SGP32_ECO_LIST_EIM;
    p->n_ops = 3;
    r = run(p, &rsp);
    cr_assert_eq(r->results[0].kind, PL_SGP32_RESULT_ADD_EIM);
    cr_assert(r->results[0].has_association_token);
    cr_assert_eq(r->results[0].association_token, 2);
    cr_assert_not(r->results[1].has_association_token);
    cr_assert_eq(r->results[1].code, PL_SGP32_ADD_EIM_ALREADY_EXISTS);
    cr_assert_eq(r->results[2].kind, PL_SGP32_RESULT_LIST_EIM);
    cr_assert_eq(r->results[2].n_eims, 2);
    cr_assert(pl_sgp32_buf_eq(r->results[2].eims[0].eim_id, pl_sgp32_str(EIM1)));
    cr_assert(pl_sgp32_buf_eq(r->results[2].eims[1].eim_id, pl_sgp32_str(EIM2)));
    cr_assert(r->results[2].eims[1].has_eim_id_type);
    cr_assert_eq(r->results[2].eims[1].eim_id_type, PL_SGP32_EIM_ID_TYPE_FQDN);
    free(r);
    cr_assert_eq(pl_euicc_eim_count(E), 2);

    /* eIM 2 signs with its own token now; eIM 1's token no longer fits its packages */
    int64_t token2 = 2;
    struct pl_sgp32_euicc_package *q = pkg_new(PL_SGP32_PACKAGE_ECO);
    q->eim_id = pl_sgp32_str(EIM2);
    q->counter = 1;
    q->eco[q->n_ops++].kind = PL_SGP32_ECO_LIST_EIM;
    sign(q, &TOKEN1, eim_key(), &req); /* the wrong token in the signature input */
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    cr_assert(r->has_association_token);
    cr_assert_eq(r->association_token, token2);
    free(r);
    sign(q, &token2, eim_key(), &req);
    r = send_req(&req, &token2, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->results[0].n_eims, 2);
    free(r);

    /* updateEim: unknown -> eimNotFound(1); counter out of range -> 6; a foreign CI -> 3;
     * a resync of eIM 2's counter down to 0 and a new FQDN -> ok */
    memset(p, 0, sizeof(*p));
    free(p);
    p = pkg_new(PL_SGP32_PACKAGE_ECO);
    p->n_ops = 4;
    for (size_t i = 0; i < 4; i++)
        p->eco[i].kind = PL_SGP32_ECO_UPDATE_EIM;
    p->eco[0].eim_config.eim_id = pl_sgp32_str("nobody");
    p->eco[1].eim_config.eim_id = pl_sgp32_str(EIM2);
    p->eco[1].eim_config.has_counter = true;
    p->eco[1].eim_config.counter = PL_EUICC_COUNTER_MAX + 1;
    uint8_t wrong_ski[20];
    memset(wrong_ski, 0x33, sizeof(wrong_ski));
    p->eco[2].eim_config.eim_id = pl_sgp32_str(EIM2);
    p->eco[2].eim_config.euicc_ci_pkid.p = wrong_ski;
    p->eco[2].eim_config.euicc_ci_pkid.len = sizeof(wrong_ski);
    p->eco[3].eim_config.eim_id = pl_sgp32_str(EIM2);
    p->eco[3].eim_config.has_counter = true;
    p->eco[3].eim_config.counter = 0;
    p->eco[3].eim_config.eim_fqdn = pl_sgp32_str("new.eim2.test");
    r = run(p, &rsp);
    static const int64_t upd[] = {1, 6, 3, 0};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(r->results[i].kind, PL_SGP32_RESULT_UPDATE_EIM);
        cr_assert_eq(r->results[i].code, upd[i], "update %zu: %lld", i,
                     (long long)r->results[i].code);
    }
    free(r);
    cr_assert_eq(eim_counter(1), 0, "resynchronised");
    struct pl_euicc_eim_info info;
    cr_assert_eq(pl_euicc_eim_get(E, 1, &info), PL_OK);
    cr_assert(info.has_token, "the token survives an update");
    cr_assert_eq(info.token, token2);
    /* eIM 2's counter 1 is accepted again after the resync */
    sign(q, &token2, eim_key(), &req);
    r = send_req(&req, &token2, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    free(r);

    /* deleteEim: unknown -> 1; eIM 2 -> ok; eIM 1 itself -> lastEimDeleted(2) */
    free(p);
    p = pkg_new(PL_SGP32_PACKAGE_ECO);
    p->n_ops = 3;
    p->eco[0].kind = PL_SGP32_ECO_DELETE_EIM;
    p->eco[0].delete_eim_id = pl_sgp32_str("nobody");
    p->eco[1].kind = PL_SGP32_ECO_DELETE_EIM;
    p->eco[1].delete_eim_id = pl_sgp32_str(EIM2);
    p->eco[2].kind = PL_SGP32_ECO_DELETE_EIM;
    p->eco[2].delete_eim_id = pl_sgp32_str(EIM1);
    r = run(p, &rsp); /* still signed with eIM 1's token, though eIM 1 is gone */
    cr_assert_eq(r->results[0].code, 1);
    cr_assert_eq(r->results[1].code, 0);
    cr_assert_eq(r->results[2].code, 2);
    free(r);
    cr_assert_eq(pl_euicc_eim_count(E), 0);
    /* nobody left: packages of eIM 1 are unknown now, AddInitialEim is allowed again */
    free(p);
    p = pkg_new(PL_SGP32_PACKAGE_ECO);
    p->eco[p->n_ops++].kind = PL_SGP32_ECO_LIST_EIM;
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    cr_assert_not(r->has_association_token);
    free(r);
    reopen();
    cr_assert_eq(pl_euicc_eim_count(E), 0);
    {
        struct pl_sgp32_add_initial_eim_request *a = calloc(1, sizeof(*a));
        struct pl_sgp32_add_initial_eim_response ar;
        a->n_eims = 1;
        cr_assert_eq(pl_et_eim_config(&T, EIM1, true, true, &a->eims[0]), PL_OK);
        cr_assert_eq(add_initial(a, &ar), 0);
        cr_assert_eq(ar.results[0].association_token, 3, "tokens are never reused");
        free(a);
    }
    free(q);
    free(p);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- the eUICC's checks of a package ---- */

Test(euicc_field, package_checks, .init = setup, .fini = teardown)
{
    struct pl_wr rsp, req;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&req, 1 << 16);
    struct pl_sgp32_euicc_package_result *r;
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    size_t eprs = pl_euicc_epr_count(E);

    /* tampered eIM signature: unsigned error with the token, nothing done */
    sign(p, &TOKEN1, eim_key(), &req);
    req.buf[req.len - 1] ^= 0x01;
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    cr_assert(pl_sgp32_buf_eq(r->eim_id, p->eim_id));
    cr_assert(pl_sgp32_buf_eq(r->eim_txid, p->eim_txid));
    cr_assert(r->has_association_token);
    cr_assert_eq(r->association_token, TOKEN1);
    free(r);
    /* tampered signed content (the counter byte) */
    sign(p, &TOKEN1, eim_key(), &req);
    long at = find(&req, (const uint8_t *)"\x81\x01\x01\x82\x04TX", 7);
    cr_assert_gt(at, 0);
    req.buf[at + 2] = 0x02;
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    free(r);
    /* signed by another key ("unsigned"), or with the token left out of the input */
    struct pl_eckey *rogue = NULL;
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &T.rng, &rogue), PL_OK);
    sign(p, &TOKEN1, rogue, &req);
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    free(r);
    sign(p, NULL, eim_key(), &req);
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    free(r);
    /* an all-zero signature */
    struct pl_wr signed_part;
    pl_wr_init_dyn(&signed_part, 1 << 16);
    uint8_t zero_sig[64] = {0};
    pl_wr_reset(&req);
    cr_assert_eq(pl_sgp32_euicc_package_request_encode(p, zero_sig, sizeof(zero_sig), &req), PL_OK);
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    free(r);
    /* an unknown eimId: unsigned, no token */
    p->eim_id = pl_sgp32_str("eim.unknown.test");
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, NULL, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_UNSIGNED);
    cr_assert_not(r->has_association_token);
    cr_assert(pl_sgp32_buf_eq(r->eim_id, pl_sgp32_str("eim.unknown.test")));
    free(r);
    p->eim_id = pl_sgp32_str(EIM1);
    /* another EID: signed invalidEid(3) echoing eimId, counter, txid */
    p->eid[15] ^= 0x01;
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_SIGNED);
    cr_assert_eq(r->error_code, PL_SGP32_EPE_INVALID_EID);
    cr_assert_eq(r->counter, p->counter);
    cr_assert(pl_sgp32_buf_eq(r->eim_txid, p->eim_txid));
    free(r);
    p->eid[15] ^= 0x01;
    /* counter beyond the eUICC's range: signed counterValueOutOfRange(6) */
    p->counter = PL_EUICC_COUNTER_MAX + 1;
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_SIGNED);
    cr_assert_eq(r->error_code, PL_SGP32_EPE_COUNTER_OUT_OF_RANGE);
    free(r);
    /* a malformed request: 6A80 */
    static const uint8_t junk[] = {0xBF, 0x51, 0x03, 0x30, 0x01, 0x00};
    cr_assert_eq(es10(junk, sizeof(junk), &rsp), PL_SW_WRONG_DATA);
    /* nothing so far changed anything */
    cr_assert_not(enabled(ICCID_A));
    cr_assert_eq(eim_counter(0), 0);
    cr_assert_eq(pl_euicc_epr_count(E), eprs);

    /* the valid one at the top of the range works ... */
    p->counter = PL_EUICC_COUNTER_MAX;
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->results[0].code, 0);
    free(r);
    cr_assert(enabled(ICCID_A));
    cr_assert_eq(eim_counter(0), PL_EUICC_COUNTER_MAX);
    /* ... once: replayed, or any lower counter, is replayError(4) */
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_ERROR_SIGNED);
    cr_assert_eq(r->error_code, PL_SGP32_EPE_REPLAY);
    free(r);
    p->counter = 5;
    sign(p, &TOKEN1, eim_key(), &req);
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->error_code, PL_SGP32_EPE_REPLAY);
    free(r);
    reopen();
    r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->error_code, PL_SGP32_EPE_REPLAY, "the counter is durable");
    free(r);
    cr_assert_eq(pl_euicc_epr_count(E), eprs + 1);

    pl_eckey_free(rogue);
    pl_wr_free(&signed_part);
    free(p);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- results pending on the eUICC: re-query and acknowledgement ---- */

static size_t rnl(const uint8_t *req, size_t len, struct pl_wr *w, uint32_t *arm)
{
    struct pl_tlv t, a, item;
    struct pl_der d, in, l;
    size_t n = 0;
    cr_assert_eq(es10(req, len, w), PL_SW_OK);
    cr_assert_eq(pl_der_parse_one(w->buf, w->len, 0xBF2Bu, &t), PL_OK);
    pl_der_init(&d, w->buf, w->len);
    cr_assert_eq(pl_der_enter(&d, &t, &in), PL_OK);
    cr_assert_eq(pl_der_next(&in, &a), PL_OK);
    cr_assert_eq(pl_der_finish(&in), PL_OK);
    *arm = a.tag;
    cr_assert_eq(pl_der_enter(&in, &a, &l), PL_OK);
    while (!pl_der_done(&l)) {
        cr_assert_eq(pl_der_next(&l, &item), PL_OK);
        n++;
    }
    return n;
}

Test(euicc_field, results_retrievable_and_acknowledged, .init = setup, .fini = teardown)
{
    static const uint8_t all_eprs[] = {0xBF, 0x2B, 0x04, 0xA0, 0x02, 0x82, 0x00};
    static const uint8_t all_notifs[] = {0xBF, 0x2B, 0x00};
    struct pl_wr rsp1, rsp2, w;
    uint32_t arm;
    pl_wr_init_dyn(&rsp1, 1 << 16);
    pl_wr_init_dyn(&rsp2, 1 << 16);
    pl_wr_init_dyn(&w, 1 << 16);

    /* none yet: an empty result list; the two production PIRs are notifications */
    cr_assert_eq(rnl(all_eprs, sizeof(all_eprs), &w, &arm), 0);
    cr_assert_eq(arm, 0xA2u);
    cr_assert_eq(rnl(all_notifs, sizeof(all_notifs), &w, &arm), 2);
    cr_assert_eq(arm, 0xA0u);

    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    struct pl_sgp32_euicc_package_result *r1 = run(p, &rsp1);
    free(p);
    p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_GET_RAT, NULL);
    struct pl_sgp32_euicc_package_result *r2 = run(p, &rsp2);
    cr_assert_eq(r1->seq_number, 3);
    cr_assert_eq(r2->seq_number, 4);

    /* all results, byte for byte what LoadEuiccPackage answered, after a power cycle */
    reopen();
    cr_assert_eq(rnl(all_eprs, sizeof(all_eprs), &w, &arm), 2);
    cr_assert_eq(arm, 0xA2u);
    cr_assert_gt(find(&w, rsp1.buf, rsp1.len), 0);
    cr_assert_gt(find(&w, rsp2.buf, rsp2.len), 0);
    /* by seqNumber: one result in 'A2'; a PIR's seqNumber: the PIR in 'A0' */
    static const uint8_t by_seq3[] = {0xBF, 0x2B, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x03};
    cr_assert_eq(rnl(by_seq3, sizeof(by_seq3), &w, &arm), 1);
    cr_assert_eq(arm, 0xA2u);
    cr_assert_gt(find(&w, rsp1.buf, rsp1.len), 0);
    static const uint8_t by_seq1[] = {0xBF, 0x2B, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x01};
    cr_assert_eq(rnl(by_seq1, sizeof(by_seq1), &w, &arm), 1);
    cr_assert_eq(arm, 0xA0u);
    static const uint8_t by_seq9[] = {0xBF, 0x2B, 0x05, 0xA0, 0x03, 0x80, 0x01, 0x09};
    cr_assert_eq(rnl(by_seq9, sizeof(by_seq9), &w, &arm), 0);
    /* by event: results are not notifications */
    static const uint8_t installs[] = {0xBF, 0x2B, 0x06, 0xA0, 0x04, 0x81, 0x02, 0x07, 0x80};
    cr_assert_eq(rnl(installs, sizeof(installs), &w, &arm), 2);
    cr_assert_eq(arm, 0xA0u);
    static const uint8_t bad[] = {0xBF, 0x2B, 0x04, 0xA0, 0x02, 0x83, 0x00};
    cr_assert_eq(es10(bad, sizeof(bad), &w), PL_SW_WRONG_DATA);
    /* ListNotification lists the PIRs' metadata */
    static const uint8_t list_notif[] = {0xBF, 0x28, 0x00};
    struct pl_notif_list_rsp *ln = calloc(1, sizeof(*ln));
    cr_assert_eq(es10(list_notif, sizeof(list_notif), &w), PL_SW_OK);
    cr_assert_eq(pl_notif_list_rsp_decode(w.buf, w.len, ln), PL_OK);
    cr_assert_eq(ln->n, 2);
    cr_assert_eq(ln->items[0].seq, 1);
    free(ln);

    /* the eIM acknowledged seq 3: NotificationSent removes that result only, durably */
    struct pl_wr q;
    int64_t st;
    pl_wr_init_dyn(&q, 64);
    cr_assert_eq(pl_notif_sent_req_encode(3, &q), PL_OK);
    cr_assert_eq(es10(q.buf, q.len, &w), PL_SW_OK);
    cr_assert_eq(pl_notif_sent_rsp_decode(w.buf, w.len, &st), PL_OK);
    cr_assert_eq(st, PL_NOTIF_SENT_OK);
    cr_assert_eq(es10(q.buf, q.len, &w), PL_SW_OK);
    cr_assert_eq(pl_notif_sent_rsp_decode(w.buf, w.len, &st), PL_OK);
    cr_assert_eq(st, PL_NOTIF_SENT_NOTHING_TO_DELETE);
    reopen();
    cr_assert_eq(pl_euicc_epr_count(E), 1);
    cr_assert_eq(rnl(all_eprs, sizeof(all_eprs), &w, &arm), 1);
    cr_assert_gt(find(&w, rsp2.buf, rsp2.len), 0);
    cr_assert_eq(pl_euicc_notif_count(E), 2);

    free(r1);
    free(r2);
    free(p);
    pl_wr_free(&q);
    pl_wr_free(&w);
    pl_wr_free(&rsp1);
    pl_wr_free(&rsp2);
}

Test(euicc_field, result_list_full_refuses_packages, .init = setup, .fini = teardown)
{
    struct pl_wr rsp, req, q;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&q, 64);
    for (size_t i = 0; i < PL_EUICC_MAX_EPRS; i++) {
        struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_ECO);
        p->eco[p->n_ops++].kind = PL_SGP32_ECO_LIST_EIM;
        free(run(p, &rsp));
        free(p);
    }
    cr_assert_eq(pl_euicc_epr_count(E), PL_EUICC_MAX_EPRS);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    sign(p, &TOKEN1, eim_key(), &req);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_MEMORY);
    cr_assert_not(enabled(ICCID_A));
    cr_assert_eq(eim_counter(0), CTR - 1, "the counter is not consumed");
    /* one acknowledged: the same package goes through */
    cr_assert_eq(pl_notif_sent_req_encode(3, &q), PL_OK);
    cr_assert_eq(es10(q.buf, q.len, &rsp), PL_SW_OK);
    struct pl_sgp32_euicc_package_result *r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert(enabled(ICCID_A));
    free(r);
    free(p);
    pl_wr_free(&q);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- tearing: one write per package ---- */

Test(euicc_field, power_cut_during_package, .init = setup, .fini = teardown)
{
    struct pl_wr rsp, req;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&req, 1 << 16);
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    psmo_add(p, PL_SGP32_PSMO_DELETE, ICCID_B);
    sign(p, &TOKEN1, eim_key(), &req);
    size_t eprs = pl_euicc_epr_count(E);

    /* the package's one write is cut: after power-up nothing of it happened */
    pl_euicc_close(E);
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.fail_write_at = 1;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
    cr_assert_eq(pl_et_session(E, &CH), PL_OK);
    uint16_t sw = 0;
    pl_wr_reset(&rsp);
    cr_assert_neq(pl_et_es10(E, CH, req.buf, req.len, &rsp, &sw), PL_OK);
    cr_assert(pl_euicc_is_dead(E));
    reopen();
    cr_assert_not(enabled(ICCID_A));
    cr_assert_eq(pl_euicc_profile_count(E), 2);
    cr_assert_eq(eim_counter(0), 0);
    cr_assert_eq(pl_euicc_epr_count(E), eprs);
    /* the eIM may send the very same package again: now all of it happens */
    struct pl_sgp32_euicc_package_result *r = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(r->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(r->results[0].code, 0);
    cr_assert_eq(r->results[1].code, 0);
    free(r);
    reopen();
    cr_assert(enabled(ICCID_A));
    cr_assert_eq(pl_euicc_profile_count(E), 1);
    cr_assert_eq(eim_counter(0), p->counter);
    cr_assert_eq(pl_euicc_epr_count(E), eprs + 1);
    free(p);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- the known-silicon knob: the answer after an enable is lost until reset ---- */

Test(euicc_field, lost_result_after_enable, .init = setup_knob, .fini = teardown)
{
    static const uint8_t all_eprs[] = {0xBF, 0x2B, 0x04, 0xA0, 0x02, 0x82, 0x00};
    static const uint8_t get_eid[] = {0xBF, 0x3E, 0x03, 0x5C, 0x01, 0x5A};
    struct pl_wr rsp, req, w;
    uint32_t arm;
    pl_wr_init_dyn(&rsp, 1 << 16);
    pl_wr_init_dyn(&req, 1 << 16);
    pl_wr_init_dyn(&w, 1 << 16);

    /* packages without a successful enable answer normally (a failed enable too) */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_DISABLE, ICCID_A, false), 2);
    static const uint8_t unknown[10] = {0x98, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x01};
    cr_assert_eq(psmo1(PL_SGP32_PSMO_ENABLE, unknown, false), 1);
    cr_assert_not(pl_euicc_awaiting_reset(E));

    /* the enable: executed and stored, but the answer is 6985 without data */
    struct pl_sgp32_euicc_package *p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_A);
    sign(p, &TOKEN1, eim_key(), &req);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_CONDITIONS);
    cr_assert_eq(rsp.len, 0);
    cr_assert(pl_euicc_awaiting_reset(E));
    cr_assert(enabled(ICCID_A));
    /* until reset the card refuses everything, the re-query too */
    cr_assert_eq(es10(all_eprs, sizeof(all_eprs), &w), PL_SW_CONDITIONS);
    cr_assert_eq(es10(get_eid, sizeof(get_eid), &w), PL_SW_CONDITIONS);
    cr_assert_eq(es10(req.buf, req.len, &w), PL_SW_CONDITIONS);

    /* after a reset the eIM (through the IPA) learns the outcome by re-query */
    cr_assert_eq(pl_euicc_card_reset(E), PL_OK);
    cr_assert_not(pl_euicc_awaiting_reset(E));
    size_t rl;
    uint8_t store_on_ch[] = {0x80, 0xE2, 0x91, 0x00, 0x03, 0xBF, 0x20, 0x00};
    store_on_ch[0] |= (uint8_t)CH;
    uint8_t big[PL_EUICC_RAPDU_MIN];
    cr_assert_eq(pl_euicc_apdu(E, store_on_ch, sizeof(store_on_ch), big, sizeof(big), &rl), PL_OK);
    cr_assert_eq(big[rl - 2] << 8 | big[rl - 1], 0x6881, "the reset closed the logical channels");
    cr_assert_eq(pl_et_session(E, &CH), PL_OK);
    cr_assert_eq(rnl(all_eprs, sizeof(all_eprs), &w, &arm), 3);
    cr_assert_eq(arm, 0xA2u);
    /* the last one is the enable's result: signed, ok(0), counter of that package */
    struct pl_tlv t, a, item;
    struct pl_der d, in, l;
    cr_assert_eq(pl_der_parse_one(w.buf, w.len, 0xBF2Bu, &t), PL_OK);
    pl_der_init(&d, w.buf, w.len);
    cr_assert_eq(pl_der_enter(&d, &t, &in), PL_OK);
    cr_assert_eq(pl_der_next(&in, &a), PL_OK);
    cr_assert_eq(pl_der_enter(&in, &a, &l), PL_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pl_der_next(&l, &item), PL_OK);
    struct pl_sgp32_euicc_package_result *res = calloc(1, sizeof(*res));
    cr_assert_eq(pl_et_epr_check(E, item.raw, item.raw_len, &TOKEN1, res), PL_OK);
    cr_assert_eq(res->kind, PL_SGP32_EPR_RESULT_SIGNED);
    cr_assert_eq(res->counter, p->counter);
    cr_assert_eq(res->results[0].kind, PL_SGP32_RESULT_ENABLE);
    cr_assert_eq(res->results[0].code, 0);
    /* resending the package is a replay, answered normally */
    struct pl_sgp32_euicc_package_result *rr = send_req(&req, &TOKEN1, &rsp);
    cr_assert_eq(rr->error_code, PL_SGP32_EPE_REPLAY);
    free(rr);

    /* close + open is a reset too */
    CTR = p->counter + 1;
    free(p);
    p = pkg_new(PL_SGP32_PACKAGE_PSMO);
    psmo_add(p, PL_SGP32_PSMO_ENABLE, ICCID_B);
    sign(p, &TOKEN1, eim_key(), &req);
    cr_assert_eq(es10(req.buf, req.len, &rsp), PL_SW_CONDITIONS);
    cr_assert(pl_euicc_awaiting_reset(E));
    reopen();
    cr_assert_not(pl_euicc_awaiting_reset(E));
    cr_assert(enabled(ICCID_B));
    cr_assert_eq(rnl(all_eprs, sizeof(all_eprs), &w, &arm), 4);

    free(res);
    free(p);
    pl_wr_free(&w);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

/* ---- state file: field records, version 1 still read ---- */

static void rewrite_version(const char *from, const char *to, uint8_t version)
{
    size_t len;
    uint8_t *b = pl_test_read_file(from, &len);
    cr_assert_not_null(b);
    b[4] = version;
    cr_assert_eq(pl_sha256(b, len - 32, b + len - 32), PL_OK);
    FILE *f = fopen(to, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
    free(b);
}

Test(euicc_field, state_format_versions, .init = setup, .fini = teardown)
{
    char v1[600];
    struct pl_euicc_opts o;
    struct pl_euicc *e1 = NULL;
    pl_euicc_opts_init(&o);
    snprintf(v1, sizeof(v1), "%s.v1", PATH);
    /* a state with eIM records is no version 1 file */
    cr_assert_eq(psmo1(PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE, ICCID_A, false), 0);
    pl_euicc_close(E);
    E = NULL;
    rewrite_version(PATH, v1, 1);
    cr_assert_eq(pl_euicc_open(v1, &o, &e1), PL_ERR_MALFORMED);
    /* a factory-mode state written now reads as version 1 too */
    char fresh[600];
    snprintf(fresh, sizeof(fresh), "%s.fresh", PATH);
    cr_assert_eq(pl_euicc_mint(T.pki, PL_CURVE_P256, NULL, 2, fresh, &T.rng), PL_OK);
    rewrite_version(fresh, v1, 1);
    cr_assert_eq(pl_euicc_open(v1, &o, &e1), PL_OK);
    cr_assert(pl_euicc_factory_mode(e1));
    pl_euicc_close(e1);
    rewrite_version(fresh, v1, 3);
    cr_assert_eq(pl_euicc_open(v1, &o, &e1), PL_ERR_MALFORMED);

    /* codec round trip of the field records; inconsistent ones refused */
    struct pl_euicc_state st, st2;
    struct pl_wr w;
    cr_assert_eq(pl_euicc_state_read(PATH, &st), PL_OK);
    cr_assert_eq(st.n_eim, 1);
    cr_assert_eq(st.n_epr, 1);
    cr_assert(st.prof[0].fallback);
    pl_wr_init_dyn(&w, PL_EUICC_STATE_MAX);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_OK);
    cr_assert_eq(st2.eim[0].counter, st.eim[0].counter);
    cr_assert_eq(st2.eim[0].token, 1);
    cr_assert_eq(st2.epr[0].len, st.epr[0].len);
    cr_assert_eq(memcmp(st2.epr[0].raw, st.epr[0].raw, st.epr[0].len), 0);
    cr_assert_eq(st2.field.token_last, 1);
    pl_euicc_state_free(&st2);
    /* two fallback profiles */
    st.prof[1].fallback = true;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.prof[1].fallback = false;
    /* a result numbered above the last seqNumber handed out */
    st.epr[0].seq = st.pir_seq + 1;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.epr[0].seq = 1; /* the seqNumber of a PIR */
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.epr[0].seq = st.pir_seq;
    /* a token never handed out; a counter beyond the range; a duplicate eimId */
    st.eim[0].token = 7;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.eim[0].token = 1;
    st.eim[0].counter = PL_EUICC_COUNTER_MAX + 1;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.eim[0].counter = 1;
    st.eim[1] = st.eim[0];
    st.n_eim = 2;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_ERR_MALFORMED);
    st.n_eim = 1;
    pl_wr_reset(&w);
    cr_assert_eq(pl_euicc_state_encode(&st, &w), PL_OK);
    cr_assert_eq(pl_euicc_state_decode(w.buf, w.len, &st2), PL_OK);
    pl_euicc_state_free(&st2);
    pl_euicc_state_free(&st);
    pl_wr_free(&w);
    open_card();
}
