/* Integration: the eIM engine against provline's own IPA (ipa/, provline/ipa/ipa.h) and the
 * software eUICC (sim/), in process, no network: the IPA's ESipa transport calls the eIM's
 * request handler, the IPA reaches the eUICC over APDUs. The eUICC went through production
 * (one profile by IFPP, factory closed, AddInitialEim naming this eIM with the test PKI's eIM
 * certificate), so every eIM signature is checked by the eUICC and every result signature by
 * the eIM, both with real keys and both sides' codecs.
 * The same scenarios run on the PostgreSQL store in test_eim_ipa_e2e_pg.c (PL_E2E_PG).
 * GSMA SGP.32 v1.2 §2.11, §3 (eIM Package retrieval), §6.3; docs/eim-engine.md. */
#define _POSIX_C_SOURCE 200809L

#include "pl_ipa_test.h"
#include "pl_pgtest.h"
#include "provline/eim/engine.h"
#include "provline/eim/esipa_server.h"
#include "provline/eim/store.h"
#include "provline/ipa/ipa.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EIM_ID   "eim.e2e.test"
#define EIM_FQDN "eim.e2e.test"
#define POLLS    40
#ifndef PL_E2E_PG
#define PL_E2E_PG 0
#endif

static struct pl_et T;
static struct pl_euicc *E;
static struct pl_ipa *IPA;
static struct pl_eim_store *S;
static struct pl_eim_engine *ENG;
static char CARD[300], IPASTATE[300], DB[300], GUARD[300];
static uint8_t EID[16], ICCID[10];
static int64_t NOW_MS;
static char LOG[32768];
static unsigned REJECTED; /* eIM answers other than 2.04 */

static int64_t store_now(void *u)
{
    (void)u;
    return NOW_MS;
}

static uint64_t clock_now(void *u)
{
    (void)u;
    return (uint64_t)NOW_MS;
}

static void eim_log(void *u, int level, const char *line)
{
    (void)u;
    (void)level;
    size_t have = strlen(LOG), n = strlen(line);
    if (have + n + 2 < sizeof(LOG)) {
        memcpy(LOG + have, line, n);
        LOG[have + n] = '\n';
        LOG[have + n + 1] = '\0';
    }
}

static void ipa_log(void *u, enum pl_ipa_log_level level, const char *line)
{
    eim_log(u, (int)level, line);
}

/* The IPA's transport: straight into the eIM, as the DTLS-PSK session of this device. */
static int post(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp, int timeout_ms)
{
    enum pl_eim_esipa_code code = PL_EIM_ESIPA_SERVER_ERROR;
    (void)user;
    (void)timeout_ms;
    int rc = pl_eim_esipa_handle(ENG, EID, req, len, 0, rsp, &code);
    if (rc != PL_OK || code != PL_EIM_ESIPA_CHANGED) {
        REJECTED++;
        return PL_ERR_REMOTE;
    }
    return PL_OK;
}

static int reset_card(void *user)
{
    return pl_euicc_reset(user);
}

static void open_card(bool lose)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.lose_result_after_enable = lose;
    cr_assert_eq(pl_euicc_open(CARD, &o, &E), PL_OK);
}

static void open_ipa(bool reset_hook)
{
    struct pl_ipa_config c;
    pl_ipa_config_init(&c);
    c.apdu.transmit = pl_euicc_transmit;
    c.apdu.user = E;
    if (reset_hook) {
        c.card_reset = reset_card;
        c.card_reset_user = E;
    }
    c.transport.post = post;
    c.clock.now_ms = clock_now;
    c.state_path = IPASTATE;
    c.backoff_min_ms = 1000;
    c.backoff_max_ms = 1000;
    c.log = ipa_log;
    cr_assert_eq(pl_ipa_new(&c, &IPA), PL_OK);
}

static void setup(void)
{
    struct pl_it_eim eim = {EIM_ID, EIM_FQDN, false, 0};
    LOG[0] = '\0';
    REJECTED = 0;
    NOW_MS = (int64_t)time(NULL) * 1000;
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&T, "dev.state", 1, NULL, CARD, sizeof(CARD)), PL_OK);
    snprintf(IPASTATE, sizeof(IPASTATE), "%s/ipa.state", T.dir);
    snprintf(DB, sizeof(DB), "%s/eim.db", T.dir);
    snprintf(GUARD, sizeof(GUARD), "%s/eim.guard", T.dir);
    open_card(false);
    pl_euicc_get_eid(E, EID);
    cr_assert_eq(pl_it_produce(&T, E, &eim, ICCID), PL_OK);

    /* the eIM: store, device as the line registered it, engine */
    struct pl_eim_store_options so;
    memset(&so, 0, sizeof(so));
    so.guard_path = GUARD;
    so.now = store_now;
    if (PL_E2E_PG) {
        struct pl_pgtest pg;
        char err[2048], sql[128], ci[512], db[64];
        cr_assert_eq(pl_pgtest_import(&pg, err, sizeof(err)), 0, "%s", err);
        snprintf(db, sizeof(db), "e2e_%ld", (long)getpid());
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        cr_assert_eq(pl_pgtest_sql(&pg, sql, err, sizeof(err)), 0, "%s", err);
        pl_pgtest_conninfo(&pg, db, ci, sizeof(ci));
        cr_assert_eq(pl_eim_store_open_pg(ci, &so, &S), PL_OK);
    } else {
        cr_assert_eq(pl_eim_store_open_sqlite(DB, &so, &S), PL_OK);
    }
    const uint8_t *ec = NULL, *mc = NULL;
    size_t ec_len = 0, mc_len = 0;
    pl_euicc_cert_euicc(E, &ec, &ec_len);
    pl_euicc_cert_eum(E, &mc, &mc_len);
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    memcpy(d.eid, EID, 16);
    d.euicc_cert = (uint8_t *)(uintptr_t)ec;
    d.euicc_cert_len = ec_len;
    d.eum_cert = (uint8_t *)(uintptr_t)mc;
    d.eum_cert_len = mc_len;
    d.eim_id = (char *)(uintptr_t)EIM_ID;
    d.has_assoc_token = eim.has_token;
    d.assoc_token = eim.token;
    cr_assert_eq(pl_eim_store_device_put(S, "line", &d), PL_OK);
    const struct pl_cert *ci = pl_pki_cert(T.pki, PL_PKI_CI);
    struct pl_eim_engine_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.eim_id = EIM_ID;
    cfg.signing_key = pl_pki_key(T.pki, PL_PKI_EIM);
    cfg.ci_roots = &ci;
    cfg.n_ci_roots = 1;
    cfg.claimer = "eim-e2e";
    cfg.result_timeout_ms = 60000;
    cfg.clock.now_ms = clock_now;
    cfg.log.log = eim_log;
    cr_assert_eq(pl_eim_engine_new(S, &cfg, &ENG), PL_OK);
    open_ipa(true);
}

static void teardown(void)
{
    pl_ipa_free(IPA);
    pl_euicc_close(E);
    pl_eim_engine_free(ENG);
    pl_eim_store_close(S);
    IPA = NULL;
    E = NULL;
    ENG = NULL;
    S = NULL;
    pl_et_free(&T);
}

TestSuite(eim_ipa_e2e, .init = setup, .fini = teardown, .timeout = 120);

/* Polls until the eIM has nothing more (or a round fails). Returns the last poll status. */
static int drain(void)
{
    int rc = PL_OK;
    for (int i = 0; i < POLLS; i++) {
        rc = pl_ipa_poll(IPA);
        if (rc == PL_IPA_POLL_NO_PACKAGE || rc < 0)
            break;
        NOW_MS += 10;
    }
    return rc;
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
    cr_assert_eq(pl_eim_store_op_enqueue(S, "operator", &op, &id), PL_OK);
    return id;
}

static void assert_op(int64_t id, enum pl_eim_op_state st, const char *outcome)
{
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    cr_assert_eq(pl_eim_store_op_get(S, id, &op), PL_OK);
    cr_assert_eq(op.state, st, "op %lld %s: state %s outcome %s\n%s", (long long)id,
                 pl_eim_op_kind_name(op.kind), pl_eim_op_state_name(op.state),
                 op.outcome ? op.outcome : "-", LOG);
    if (outcome != NULL)
        cr_assert_str_eq(op.outcome ? op.outcome : "", outcome, "%s", LOG);
    pl_eim_op_clear(&op);
}

static char *profiles(void)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(S, EID, &d), PL_OK);
    char *r = strdup(d.profiles_json ? d.profiles_json : "");
    pl_eim_device_clear(&d);
    return r;
}

/* The ICCID as the eIM prints it (swapped nibbles, F for a non-digit, trailing F dropped). */
static const char *iccid_json(char out[64])
{
    static const char hex[] = "0123456789FFFFFF";
    size_t o = 0;
    for (size_t i = 0; i < 10; i++) {
        out[o++] = hex[ICCID[i] & 0x0F];
        out[o++] = hex[ICCID[i] >> 4];
    }
    while (o > 0 && out[o - 1] == 'F')
        o--;
    out[o] = '\0';
    return out;
}

static bool card_enabled(void)
{
    struct pl_euicc_profile_info pi;
    cr_assert_eq(pl_euicc_profile_get(E, 0, &pi), PL_OK);
    return pi.enabled;
}

Test(eim_ipa_e2e, list_enable_disable_with_real_signatures)
{
    char ic[64], params[128];
    iccid_json(ic);
    int64_t l = enqueue(PL_EIM_OP_LIST_PROFILE_INFO, NULL);
    cr_assert_eq(drain(), PL_IPA_POLL_NO_PACKAGE, "%s", LOG);
    assert_op(l, PL_EIM_OPS_DONE, "ok");
    char *v = profiles();
    cr_assert(strstr(v, ic) != NULL && strstr(v, "\"state\":\"disabled\"") != NULL,
              "the eUICC's own signed list: %s", v);
    free(v);
    /* the factory PIR and the EPR were acknowledged and left the eUICC */
    cr_assert_eq(pl_euicc_epr_count(E), 0, "%s", LOG);
    cr_assert_eq(pl_euicc_notif_count(E), 0, "%s", LOG);

    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", ic);
    int64_t en = enqueue(PL_EIM_OP_ENABLE, params);
    cr_assert_eq(drain(), PL_IPA_POLL_NO_PACKAGE, "%s", LOG);
    assert_op(en, PL_EIM_OPS_DONE, "ok");
    cr_assert(card_enabled());
    v = profiles();
    cr_assert(strstr(v, "\"state\":\"enabled\"") != NULL, "%s", v);
    free(v);

    /* enabling it again: the eUICC's verified refusal */
    int64_t en2 = enqueue(PL_EIM_OP_ENABLE, params);
    int64_t dis = enqueue(PL_EIM_OP_DISABLE, params);
    cr_assert_eq(drain(), PL_IPA_POLL_NO_PACKAGE, "%s", LOG);
    assert_op(en2, PL_EIM_OPS_FAILED, "profileNotInDisabledState");
    assert_op(dis, PL_EIM_OPS_DONE, "ok");
    cr_assert_not(card_enabled());
    cr_assert_eq(REJECTED, 0, "%s", LOG);
}

Test(eim_ipa_e2e, eim_configuration_and_device_data)
{
    int64_t le = enqueue(PL_EIM_OP_LIST_EIM, NULL);
    int64_t edr = enqueue(PL_EIM_OP_IPA_EUICC_DATA_REQUEST, NULL);
    cr_assert_eq(drain(), PL_IPA_POLL_NO_PACKAGE, "%s", LOG);
    assert_op(le, PL_EIM_OPS_DONE, "ok");
    assert_op(edr, PL_EIM_OPS_DONE, "ok");
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(S, EID, &d), PL_OK);
    cr_assert(d.eims_json != NULL && strstr(d.eims_json, EIM_ID) != NULL, "%s",
              d.eims_json ? d.eims_json : "(none)");
    pl_eim_device_clear(&d);
    cr_assert_eq(REJECTED, 0, "%s", LOG);
}

/* The known-silicon loss (EIM.md §1.6): the answer to the enable is lost until the card is
 * reset. With the reset hook the IPA recovers the stored result itself; without it the eIM's
 * requery finds it in the eUICC. Either way the eIM ends with the verified result. */
Test(eim_ipa_e2e, lost_enable_result_recovered_by_the_ipa)
{
    char ic[64], params[128];
    pl_ipa_free(IPA);
    pl_euicc_close(E);
    IPA = NULL;
    open_card(true);
    open_ipa(true);
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", iccid_json(ic));
    int64_t en = enqueue(PL_EIM_OP_ENABLE, params);
    for (int i = 0; i < POLLS; i++) {
        int rc = pl_ipa_poll(IPA);
        if (rc == PL_IPA_POLL_NO_PACKAGE)
            break;
        NOW_MS += 1000;
    }
    assert_op(en, PL_EIM_OPS_DONE, "ok");
    cr_assert(card_enabled());
}

Test(eim_ipa_e2e, lost_enable_result_recovered_by_eim_requery)
{
    char ic[64], params[128];
    pl_ipa_free(IPA);
    pl_euicc_close(E);
    IPA = NULL;
    open_card(true);
    open_ipa(false); /* this IPA cannot reset the card: it loses the result */
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", iccid_json(ic));
    int64_t en = enqueue(PL_EIM_OP_ENABLE, params);
    int rc = pl_ipa_poll(IPA);
    cr_assert(rc < 0 || rc == PL_IPA_POLL_WORK_DONE, "rc %d\n%s", rc, LOG);
    assert_op(en, PL_EIM_OPS_SENT, NULL);
    /* the device comes back after a reset (power cycle) with a blank IPA: nothing remembers
     * the package but the eUICC's stored result */
    pl_ipa_free(IPA);
    IPA = NULL;
    cr_assert_eq(pl_euicc_reset(E), PL_OK);
    cr_assert_eq(remove(IPASTATE), 0);
    open_ipa(false);
    NOW_MS += 61000; /* past the result timeout */
    for (int i = 0; i < POLLS; i++) {
        rc = pl_ipa_poll(IPA);
        if (rc == PL_IPA_POLL_NO_PACKAGE)
            break;
        NOW_MS += 1000;
    }
    assert_op(en, PL_EIM_OPS_DONE, "ok");
    cr_assert(strstr(LOG, "requery") != NULL, "resolved through the eIM's requery:\n%s", LOG);
    if (getenv("PL_E2E_LOG"))
        fprintf(stderr, "%s", LOG);
    cr_assert(card_enabled());
    char *v = profiles();
    cr_assert(strstr(v, "\"state\":\"enabled\"") != NULL, "%s", v);
    free(v);
}
