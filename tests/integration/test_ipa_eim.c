/* integration.ipa_eim: provline's IPA against provline's eIM, both for real: the software
 * eUICC (taken through production, the eIM added with AddInitialEim), the IPA library with
 * its CoAP/DTLS-PSK transport, and in the same process the eIM engine on SQLite behind its
 * ESipa CoAP server (eim/include/provline/eim/esipa_server.h), polled by a thread.
 * Operations queued in the eIM's store run end to end: the eIM signs, the eUICC verifies and
 * executes, the IPA delivers, the eIM verifies the eUICC's signature and acknowledges, the
 * IPA removes the acknowledged items from the eUICC.
 * GSMA SGP.32 v1.2 §3.1.1.1, §2.11, §5.9, §6.2-§6.3; reference/EIM.md §1.6. */
#define _POSIX_C_SOURCE 200809L

#include "pl_euicc_test.h"
#include "pl_ipa_test.h"
#include "provline/eim/engine.h"
#include "provline/eim/esipa_server.h"
#include "provline/eim/store.h"
#include "provline/ipa/ipa.h"
#include "provline/ipa/ipa_coap.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EIM_ID        "eim.e2e.test"
#define UPP_20_DIGITS "TS48v2_SAIP2.1_NoBERTLV.der"
#define PSK_ID        "dev-e2e"
static const uint8_t PSK[16] = {0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
                                0x59, 0x5A, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60};

static struct pl_et T;
static char PATH[512], DB[600], GUARD[600];
static struct pl_euicc *E;
static uint8_t EID[16], ICCID[10];
static char ICCID_TXT[21];
static struct pl_it_eim EIM = {EIM_ID, "127.0.0.1", false, 0};
static struct pl_eim_store *STORE; /* the eIM's handle */
static struct pl_eim_engine *ENG;
static struct pl_eim_esipa_server *SRV;
static pthread_t TH;
static volatile int STOP;
static struct pl_ipa_coap *COAP;
static struct pl_ipa *IPA;
static char LOG[32768];
static size_t LOG_LEN;

static void cap(const char *who, const char *line)
{
    int n = snprintf(LOG + LOG_LEN, sizeof(LOG) - LOG_LEN, "%s %s\n", who, line);
    if (n > 0 && (size_t)n < sizeof(LOG) - LOG_LEN)
        LOG_LEN += (size_t)n;
}

static void ipa_log(void *user, enum pl_ipa_log_level level, const char *line)
{
    (void)user;
    (void)level;
    cap("ipa", line);
}

static void eim_log(void *user, int level, const char *line)
{
    (void)user;
    (void)level;
    cap("eim", line);
}

static void *serve(void *arg)
{
    (void)arg;
    while (!STOP)
        if (pl_eim_esipa_poll(SRV, 50) != PL_OK)
            break;
    return NULL;
}

static void iccid_text(const uint8_t in[10], char out[21])
{
    size_t k = 0;
    for (size_t i = 0; i < 10; i++) {
        uint8_t lo = in[i] & 0x0F, hi = in[i] >> 4;
        if (lo <= 9)
            out[k++] = (char)('0' + lo);
        if (hi <= 9)
            out[k++] = (char)('0' + hi);
    }
    out[k] = '\0';
}

static void open_card(bool lose)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.lose_result_after_enable = lose;
    cr_assert_eq(pl_euicc_open(PATH, &o, &E), PL_OK);
}

static int reset_card(void *user)
{
    (void)user;
    return pl_euicc_reset(E);
}

static void open_ipa(void)
{
    struct pl_ipa_coap_config cc;
    char uri[64];
    pl_ipa_coap_config_init(&cc);
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%u", (unsigned)pl_eim_esipa_port(SRV));
    cc.uri = uri;
    cc.security = PL_IPA_COAP_PSK;
    cc.psk_identity = PSK_ID;
    cc.psk = PSK;
    cc.psk_len = sizeof(PSK);
    cr_assert_eq(pl_ipa_coap_new(&cc, &COAP), PL_OK);
    struct pl_ipa_config c;
    pl_ipa_config_init(&c);
    c.apdu.transmit = pl_euicc_transmit;
    c.apdu.user = E;
    c.card_reset = reset_card;
    c.transport = pl_ipa_coap_transport(COAP);
    c.timeout_ms = 20000;
    c.log = ipa_log;
    cr_assert_eq(pl_ipa_new(&c, &IPA), PL_OK);
}

static void setup(void)
{
    LOG_LEN = 0;
    LOG[0] = '\0';
    STOP = 0;
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, PATH, sizeof(PATH)), PL_OK);
    open_card(false);
    pl_euicc_get_eid(E, EID);
    /* A UPP whose ICCID has 20 digits. */
    cr_assert_eq(pl_it_produce_upp(&T, E, &EIM, UPP_20_DIGITS, ICCID), PL_OK);
    iccid_text(ICCID, ICCID_TXT);
    cr_assert_eq(strlen(ICCID_TXT), 20);

    /* the eIM: store, the device as the line registered it, engine, ESipa server */
    struct pl_eim_store_options so;
    memset(&so, 0, sizeof(so));
    snprintf(DB, sizeof(DB), "%s/eim.db", T.dir);
    snprintf(GUARD, sizeof(GUARD), "%s/eim.guard", T.dir);
    so.guard_path = GUARD;
    cr_assert_eq(pl_eim_store_open_sqlite(DB, &so, &STORE), PL_OK);
    struct pl_eim_device d;
    const uint8_t *ce, *cm;
    size_t ce_len, cm_len;
    pl_euicc_cert_euicc(E, &ce, &ce_len);
    pl_euicc_cert_eum(E, &cm, &cm_len);
    uint8_t key[16];
    memcpy(key, PSK, sizeof(key));
    memset(&d, 0, sizeof(d));
    memcpy(d.eid, EID, 16);
    d.euicc_cert = (uint8_t *)(uintptr_t)ce;
    d.euicc_cert_len = ce_len;
    d.eum_cert = (uint8_t *)(uintptr_t)cm;
    d.eum_cert_len = cm_len;
    d.eim_id = (char *)(uintptr_t)EIM_ID;
    d.has_assoc_token = EIM.has_token;
    d.assoc_token = EIM.token;
    d.counter = 0;
    d.psk_identity = (char *)(uintptr_t)PSK_ID;
    d.psk_key = key;
    d.psk_key_len = sizeof(key);
    cr_assert_eq(pl_eim_store_device_put(STORE, "line", &d), PL_OK);

    const struct pl_cert *ci = pl_pki_cert(T.pki, PL_PKI_CI);
    struct pl_eim_engine_config ec;
    memset(&ec, 0, sizeof(ec));
    ec.eim_id = EIM_ID;
    ec.signing_key = pl_pki_key(T.pki, PL_PKI_EIM);
    ec.ci_roots = &ci;
    ec.n_ci_roots = 1;
    ec.claimer = "e2e";
    ec.log.log = eim_log;
    cr_assert_eq(pl_eim_engine_new(STORE, &ec, &ENG), PL_OK);
    struct pl_eim_esipa_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.security = PL_EIM_ESIPA_SEC_PSK;
    sc.psk_hint = "provline-eim";
    cr_assert_eq(pl_eim_esipa_start(&sc, ENG, STORE, &SRV), PL_OK);
}

static void start_server(void)
{
    cr_assert_eq(pthread_create(&TH, NULL, serve, NULL), 0);
}

static void stop_server(void)
{
    if (SRV == NULL)
        return;
    STOP = 1;
    pthread_join(TH, NULL);
}

static void teardown(void)
{
    pl_ipa_free(IPA);
    IPA = NULL;
    pl_ipa_coap_free(COAP);
    COAP = NULL;
    pl_eim_esipa_stop(SRV);
    SRV = NULL;
    pl_eim_engine_free(ENG);
    ENG = NULL;
    pl_eim_store_close(STORE);
    STORE = NULL;
    pl_euicc_close(E);
    E = NULL;
    pl_et_free(&T);
}

static int64_t enqueue(enum pl_eim_op_kind kind, const char *params)
{
    struct pl_eim_op op;
    int64_t id = 0;
    memset(&op, 0, sizeof(op));
    memcpy(op.eid, EID, 16);
    op.kind = kind;
    op.params = (uint8_t *)(uintptr_t)params;
    op.params_len = params ? strlen(params) : 0;
    cr_assert_eq(pl_eim_store_op_enqueue(STORE, "operator", &op, &id), PL_OK);
    return id;
}

/* After the server thread stopped: the operation as the eIM recorded it. */
static void expect_op(int64_t id, enum pl_eim_op_state state, const char *outcome)
{
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    cr_assert_eq(pl_eim_store_op_get(STORE, id, &op), PL_OK);
    cr_assert_eq(op.state, state, "op %lld state %d (%s)\n%s", (long long)id, (int)op.state,
                 op.outcome ? op.outcome : "-", LOG);
    if (outcome != NULL)
        cr_assert_str_eq(op.outcome, outcome, "%s", LOG);
    pl_eim_op_clear(&op);
}

static bool enabled(void)
{
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    return pi.enabled;
}

#define POLL(expect)                                                                               \
    do {                                                                                           \
        int prc_ = pl_ipa_poll(IPA);                                                               \
        cr_assert_eq(prc_, (expect), "poll -> %d (%s)\n%s", prc_,                                  \
                     prc_ < 0 ? pl_strerror(prc_) : "status", LOG);                                \
    } while (0)

TestSuite(ipa_eim, .init = setup, .fini = teardown, .timeout = 120);

Test(ipa_eim, enable_and_disable_end_to_end)
{
    char params[64];
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", ICCID_TXT);
    int64_t en = enqueue(PL_EIM_OP_ENABLE, params);
    int64_t dis = enqueue(PL_EIM_OP_DISABLE, params);
    start_server();
    open_ipa();
    POLL(PL_IPA_POLL_WORK_DONE); /* enable */
    cr_assert(enabled(), "%s", LOG);
    POLL(PL_IPA_POLL_WORK_DONE); /* disable */
    cr_assert_not(enabled());
    POLL(PL_IPA_POLL_NO_PACKAGE);
    stop_server();
    expect_op(en, PL_EIM_OPS_DONE, "ok");
    expect_op(dis, PL_EIM_OPS_DONE, "ok");
    /* everything the IPA delivered was acknowledged and removed from the eUICC */
    cr_assert_eq(pl_euicc_epr_count(E), 0, "%s", LOG);
    cr_assert_eq(pl_euicc_notif_count(E), 0, "%s", LOG);
    struct pl_ipa_status s;
    pl_ipa_get_status(IPA, &s);
    cr_assert_eq(s.awaiting_ack, 0);
    cr_assert_str_eq(s.eim_id, EIM_ID);
    cr_assert_eq(s.packages, 2);
}

Test(ipa_eim, ipa_euicc_data_request_end_to_end)
{
    int64_t id = enqueue(PL_EIM_OP_IPA_EUICC_DATA_REQUEST, "{\"tagList\":\"A0BF20A6\"}");
    start_server();
    open_ipa();
    POLL(PL_IPA_POLL_WORK_DONE);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    stop_server();
    expect_op(id, PL_EIM_OPS_DONE, NULL);
    cr_assert_eq(pl_euicc_notif_count(E), 0, "the factory PIR was acknowledged\n%s", LOG);
}

Test(ipa_eim, lost_result_end_to_end)
{
    pl_euicc_close(E);
    E = NULL;
    open_card(true); /* the answer to an enable is lost until the card is reset */
    char params[64];
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", ICCID_TXT);
    int64_t en = enqueue(PL_EIM_OP_ENABLE, params);
    start_server();
    open_ipa();
    POLL(PL_IPA_POLL_WORK_DONE);
    POLL(PL_IPA_POLL_NO_PACKAGE);
    stop_server();
    cr_assert(enabled(), "%s", LOG);
    struct pl_ipa_status s;
    pl_ipa_get_status(IPA, &s);
    cr_assert_eq(s.results_recovered, 1, "%s", LOG);
    expect_op(en, PL_EIM_OPS_DONE, "ok");
    cr_assert_eq(pl_euicc_epr_count(E), 0);
}
