/* Unit tests: the eIM protocol engine (eim/src/eim_*.c, esipa_*.c) over a SQLite store, with
 * the test playing the IPA and the eUICC (tests/support/eim_test_env.c): every PSMO and eCO
 * goes queued -> signed package (eIM signature verified by the "eUICC", counter strictly
 * increasing and committed before the package is returned) -> signed result -> verified ->
 * state. Negative: tampered / forged / mismatched / replayed results change nothing. Lost
 * results are re-delivered, re-queried and resolved. GSMA SGP.32 v1.2 §2.11, §6.3.2;
 * docs/eim-engine.md. */
#define _POSIX_C_SOURCE 200809L

#include "eim_test_env.h"
#include "pl_test.h"
#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/notif.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pl_eimt T;

#define ICCID1 "89001012012341234012"
#define ICCID2 "8900101201234123403F"

static void setup(void)
{
    int rc = pl_eimt_init(&T, 60000);
    cr_assert_eq(rc, PL_OK, "env: %s", pl_strerror(rc));
}

static void teardown(void)
{
    pl_eimt_free(&T);
}

TestSuite(eim_engine, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---- */

/* Polls and expects a package of kind; returns the raw package (borrowing *buf). */
static struct pl_sgp32_buf poll_package(enum pl_sgp32_eim_package_kind kind, uint8_t **buf)
{
    struct pl_sgp32_esipa_eim_msg m;
    int rc = pl_eimt_get_package(&T, false, &m, buf);
    cr_assert_eq(rc, PL_OK, "GetEimPackage: %d\n%s", rc, T.log);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_GET_EIM_PACKAGE);
    cr_assert_eq(m.get_eim_package.kind, kind, "package kind %d (error %lld)\n%s",
                 (int)m.get_eim_package.kind, (long long)m.get_eim_package.error_code, T.log);
    return m.get_eim_package.raw;
}

static int64_t poll_error(void)
{
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *buf = NULL;
    cr_assert_eq(pl_eimt_get_package(&T, false, &m, &buf), PL_OK);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR, "kind %d",
                 (int)m.get_eim_package.kind);
    free(buf);
    return m.get_eim_package.error_code;
}

/* Polls for a BF51 and lets the eUICC accept it (eIM signature and counter checked).
 * *raw (may be NULL) gets the package bytes as received. */
static uint8_t *fetch_raw(struct pl_sgp32_euicc_package_request *req, struct pl_sgp32_buf *raw)
{
    uint8_t *buf = NULL;
    struct pl_sgp32_buf r = poll_package(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, &buf);
    int rc = pl_eimt_euicc_accept(&T, r.p, r.len, req);
    cr_assert_eq(rc, PL_OK, "eUICC refused the package: %s", pl_strerror(rc));
    if (raw != NULL)
        *raw = r;
    return buf;
}

static uint8_t *fetch(struct pl_sgp32_euicc_package_request *req)
{
    return fetch_raw(req, NULL);
}

static struct pl_sgp32_euicc_result code_result(enum pl_sgp32_result_kind kind, int64_t code)
{
    struct pl_sgp32_euicc_result r;
    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.code = code;
    return r;
}

static bool acks_contain(const struct pl_sgp32_esipa_eim_msg *m, uint32_t seq)
{
    struct pl_sgp32_eim_acknowledgements a;
    if (m->provide_result.kind != PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS)
        return false;
    cr_assert_eq(pl_sgp32_eim_acknowledgements_decode(m->provide_result.acknowledgements.p,
                                                      m->provide_result.acknowledgements.len, &a),
                 PL_OK);
    for (size_t i = 0; i < a.n; i++) {
        if (a.seq[i] == seq)
            return true;
    }
    return false;
}

/* Provides an EPR and expects it accepted and acknowledged with seq. */
static void provide_accepted(const uint8_t *epr, size_t len, uint32_t seq)
{
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *buf = NULL;
    cr_assert_eq(pl_eimt_provide_epr(&T, epr, len, &m, &buf), PL_OK);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
    cr_assert(acks_contain(&m, seq), "result not acknowledged (kind %d, error %lld)\n%s",
              (int)m.provide_result.kind, (long long)m.provide_result.error_code, T.log);
    free(buf);
}

/* Provides an EPR and expects provideEimPackageResultError code. */
static void provide_rejected(const uint8_t *epr, size_t len, int64_t code)
{
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *buf = NULL;
    cr_assert_eq(pl_eimt_provide_epr(&T, epr, len, &m, &buf), PL_OK);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR, "accepted?\n%s", T.log);
    cr_assert_eq(m.provide_result.error_code, code);
    free(buf);
}

static enum pl_eim_op_state op_state(int64_t id, char *outcome, size_t cap)
{
    struct pl_eim_op op;
    cr_assert_eq(pl_eimt_op(&T, id, &op), PL_OK);
    enum pl_eim_op_state st = op.state;
    if (outcome != NULL)
        snprintf(outcome, cap, "%s", op.outcome ? op.outcome : "");
    pl_eim_op_clear(&op);
    return st;
}

/* One complete operation with an ok result: returns the counter the package carried. */
static uint32_t run_ok(enum pl_eim_op_kind kind, const char *params,
                       struct pl_sgp32_euicc_result res)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, kind, params);
    cr_assert_gt(id, 0);
    uint8_t *buf = fetch(&req);
    uint8_t *epr = NULL;
    size_t len = 0;
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &res, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, seq);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_DONE, "%s: %s\n%s",
                 pl_eim_op_kind_name(kind), outcome, T.log);
    cr_assert_str_eq(outcome, "ok");
    uint32_t c = req.pkg.counter;
    free(epr);
    free(buf);
    return c;
}

/* E3 ProfileInfo with iccid, state (0/1), name. */
static void put_profile(struct pl_wr *w, const char *iccid, int state, const char *name)
{
    uint8_t b[10];
    pl_eimt_iccid(iccid, b);
    size_t m = pl_der_begin(w, 0xE3);
    (void)pl_der_put_tlv(w, 0x5A, b, 10);
    (void)pl_der_put_int(w, 0x9F70, state);
    (void)pl_der_put_utf8(w, 0x92, name);
    (void)pl_der_put_int(w, 0x95, 2);
    (void)pl_der_end(w, m);
}

static bool has(const char *json, const char *needle)
{
    return json != NULL && strstr(json, needle) != NULL;
}

/* ---- the happy path, durability ---- */

Test(eim_engine, enable_end_to_end_counter_committed_before_send)
{
    struct pl_sgp32_euicc_package_request req;
    uint32_t before = pl_eimt_store_counter(&T);
    struct pl_sgp32_buf raw;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    cr_assert_gt(id, 0);
    uint8_t *buf = fetch_raw(&req, &raw);
    cr_assert_eq(req.pkg.n_ops, 1);
    cr_assert_eq(req.pkg.psmo[0].kind, PL_SGP32_PSMO_ENABLE);
    uint8_t iccid[10];
    pl_eimt_iccid(ICCID1, iccid);
    cr_assert_eq(memcmp(req.pkg.psmo[0].enable.iccid, iccid, 10), 0);
    cr_assert(pl_sgp32_buf_eq(req.pkg.eim_id, pl_sgp32_str(PL_EIMT_EIM_ID)));
    cr_assert_eq(req.pkg.eim_txid.len, 16);
    cr_assert_gt(req.pkg.counter, before);
    cr_assert_eq(req.signature.len, 64, "eimSignature is r||s");

    /* Kill point: when the package is in the IPA's hands, another handle on the database
     * (a restarted process) already sees the counter and the exact bytes. */
    struct pl_eim_store *other = NULL;
    cr_assert_eq(pl_eimt_open_store(&T, &other), PL_OK);
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(other, T.eid, &d), PL_OK);
    cr_assert_eq(d.counter, req.pkg.counter);
    pl_eim_device_clear(&d);
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    cr_assert_eq(pl_eim_store_op_get(other, id, &op), PL_OK);
    cr_assert_eq(op.state, PL_EIM_OPS_SENT);
    cr_assert(op.has_counter);
    cr_assert_eq(op.counter, req.pkg.counter);
    cr_assert_eq(op.package_len, raw.len);
    cr_assert_eq(memcmp(op.package, raw.p, raw.len), 0, "stored bytes are the bytes sent");
    pl_eim_op_clear(&op);
    pl_eim_store_close(other);

    uint8_t *epr = NULL;
    size_t len = 0;
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, seq);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_DONE);
    cr_assert_str_eq(outcome, "ok");
    char *p = pl_eimt_profiles(&T);
    cr_assert(has(p, "\"iccid\":\"" ICCID1 "\""), "%s", p);
    cr_assert(has(p, "\"state\":\"enabled\""), "%s", p);
    free(p);
    cr_assert_eq(poll_error(), PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    free(epr);
    free(buf);
}

Test(eim_engine, der_signature_accepted)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_DISABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *buf = fetch(&req);
    uint8_t *epr = NULL;
    size_t len = 0;
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_DISABLE, 0);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, true, &epr, &len), PL_OK);
    provide_accepted(epr, len, seq);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE);
    free(epr);
    free(buf);
}

/* Every PSMO and eCO of SGP.32 v1.2, each through the whole cycle, with its effect on the
 * verified device view; counters strictly increase. */
Test(eim_engine, every_psmo_and_eco)
{
    uint32_t prev = pl_eimt_store_counter(&T), c;
    char *v;

    c = run_ok(PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\",\"rollback\":true}",
               code_result(PL_SGP32_RESULT_ENABLE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"state\":\"enabled\""), "%s", v);
    free(v);

    c = run_ok(PL_EIM_OP_DISABLE, "{\"iccid\":\"" ICCID1 "\"}",
               code_result(PL_SGP32_RESULT_DISABLE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"state\":\"disabled\"") && !has(v, "enabled"), "%s", v);
    free(v);

    /* listProfileInfo: the signed list replaces the view. */
    {
        struct pl_wr w;
        pl_wr_init_dyn(&w, 4096);
        put_profile(&w, ICCID1, 0, "one");
        put_profile(&w, ICCID2, 1, "two");
        cr_assert_eq(pl_wr_status(&w), PL_OK);
        struct pl_sgp32_euicc_result r;
        memset(&r, 0, sizeof(r));
        r.kind = PL_SGP32_RESULT_LIST_PROFILE_INFO;
        r.list.p = w.buf;
        r.list.len = w.len;
        r.list.count = 2;
        c = run_ok(PL_EIM_OP_LIST_PROFILE_INFO, NULL, r);
        pl_wr_free(&w);
        cr_assert_gt(c, prev);
        prev = c;
        v = pl_eimt_profiles(&T);
        cr_assert(has(v, "\"profileName\":\"two\""), "%s", v);
        cr_assert(has(v, "\"iccid\":\"8900101201234123403\",\"state\":\"enabled\""), "%s", v);
        cr_assert(has(v, "\"profileClass\":\"operational\""), "%s", v);
        free(v);
    }
    {
        size_t n = 0;
        uint8_t rat[64];
        cr_assert_eq(pl_hex_decode("301180020640A1073005800301020382020780", rat, sizeof(rat), &n),
                     PL_OK);
        struct pl_sgp32_euicc_result r;
        memset(&r, 0, sizeof(r));
        r.kind = PL_SGP32_RESULT_GET_RAT;
        r.list.p = rat;
        r.list.len = n;
        r.list.count = 1;
        c = run_ok(PL_EIM_OP_GET_RAT, "{}", r);
        cr_assert_gt(c, prev);
        prev = c;
    }
    c = run_ok(PL_EIM_OP_CONFIGURE_IMMEDIATE_ENABLE,
               "{\"immediateEnable\":true,\"defaultSmdpOid\":\"2.999.1\","
               "\"defaultSmdpAddress\":\"smdp.example.com\"}",
               code_result(PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    c = run_ok(PL_EIM_OP_SET_FALLBACK_ATTRIBUTE, "{\"iccid\":\"" ICCID1 "\"}",
               code_result(PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"fallback\":true"), "%s", v);
    free(v);
    c = run_ok(PL_EIM_OP_UNSET_FALLBACK_ATTRIBUTE, NULL,
               code_result(PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    v = pl_eimt_profiles(&T);
    cr_assert(!has(v, "\"fallback\":true"), "%s", v);
    free(v);
    c = run_ok(PL_EIM_OP_SET_DEFAULT_DP_ADDRESS, "{\"address\":\"dp.example\"}",
               code_result(PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS, 0));
    cr_assert_gt(c, prev);
    prev = c;
    c = run_ok(PL_EIM_OP_DELETE, "{\"iccid\":\"" ICCID1 "\"}",
               code_result(PL_SGP32_RESULT_DELETE, 0));
    cr_assert_gt(c, prev);
    prev = c;
    v = pl_eimt_profiles(&T);
    cr_assert(!has(v, ICCID1), "%s", v);
    free(v);

    /* eCOs */
    {
        struct pl_sgp32_euicc_result r;
        memset(&r, 0, sizeof(r));
        r.kind = PL_SGP32_RESULT_ADD_EIM;
        r.has_association_token = true;
        r.association_token = 7;
        c = run_ok(PL_EIM_OP_ADD_EIM,
                   "{\"eimId\":\"eim2\",\"eimFqdn\":\"eim2.example\",\"eimIdType\":2,"
                   "\"counterValue\":1,\"supportedProtocols\":[\"retrieveCoaps\"]}",
                   r);
        cr_assert_gt(c, prev);
        prev = c;
        v = pl_eimt_eims(&T);
        cr_assert(has(v, "\"eimId\":\"eim2\""), "%s", v);
        free(v);
    }
    c = run_ok(PL_EIM_OP_UPDATE_EIM, "{\"eimId\":\"eim2\",\"eimFqdn\":\"eim2b.example\"}",
               code_result(PL_SGP32_RESULT_UPDATE_EIM, 0));
    cr_assert_gt(c, prev);
    prev = c;
    {
        struct pl_sgp32_euicc_result r;
        memset(&r, 0, sizeof(r));
        r.kind = PL_SGP32_RESULT_LIST_EIM;
        r.n_eims = 2;
        r.eims[0].eim_id = pl_sgp32_str(PL_EIMT_EIM_ID);
        r.eims[1].eim_id = pl_sgp32_str("eim3");
        r.eims[1].has_eim_id_type = true;
        r.eims[1].eim_id_type = 2;
        c = run_ok(PL_EIM_OP_LIST_EIM, NULL, r);
        cr_assert_gt(c, prev);
        prev = c;
        v = pl_eimt_eims(&T);
        cr_assert(has(v, "\"eimId\":\"eim3\"") && !has(v, "eim2"), "%s", v);
        free(v);
    }
    c = run_ok(PL_EIM_OP_DELETE_EIM, "{\"eimId\":\"eim3\"}",
               code_result(PL_SGP32_RESULT_DELETE_EIM, 0));
    cr_assert_gt(c, prev);
    v = pl_eimt_eims(&T);
    cr_assert(!has(v, "eim3") && has(v, PL_EIMT_EIM_ID), "%s", v);
    free(v);
    cr_assert_eq(pl_eimt_store_counter(&T), c);
}

/* A verified error result ends the operation failed and changes nothing in the view. */
Test(eim_engine, verified_error_result_fails_operation)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID2 "\"}");
    uint8_t *buf = fetch(&req);
    uint8_t *epr = NULL;
    size_t len = 0;
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 1);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, seq);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "iccidOrAidNotFound");
    char *v = pl_eimt_profiles(&T);
    cr_assert(!has(v, "enabled"), "%s", v);
    free(v);
    free(epr);
    free(buf);
}

/* ---- rejected results: nothing changes ---- */

struct snapshot {
    enum pl_eim_op_state state;
    uint32_t counter;
    char *profiles;
    size_t unacked;
};

static void snap(int64_t id, struct snapshot *s)
{
    struct pl_eim_notification n[8];
    s->state = op_state(id, NULL, 0);
    s->counter = pl_eimt_store_counter(&T);
    s->profiles = pl_eimt_profiles(&T);
    s->unacked = 0;
    cr_assert_eq(pl_eim_store_notif_list(T.store, T.eid, false, n, 8, &s->unacked), PL_OK);
    for (size_t i = 0; i < s->unacked; i++)
        pl_eim_notification_clear(&n[i]);
}

static void assert_unchanged(int64_t id, const struct snapshot *before)
{
    struct snapshot now;
    snap(id, &now);
    cr_assert_eq(now.state, before->state, "operation state changed");
    cr_assert_eq(now.counter, before->counter);
    cr_assert_str_eq(now.profiles, before->profiles);
    cr_assert_eq(now.unacked, before->unacked, "something was stored");
    free(now.profiles);
}

static int64_t sent_enable(struct pl_sgp32_euicc_package_request *req, uint8_t **buf)
{
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    cr_assert_gt(id, 0);
    *buf = fetch(req);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    return id;
}

Test(eim_engine, tampered_result_signature_rejected)
{
    struct pl_sgp32_euicc_package_request req;
    struct snapshot before;
    uint8_t *buf = NULL, *epr = NULL;
    size_t len = 0;
    int64_t id = sent_enable(&req, &buf);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    snap(id, &before);
    epr[len - 1] ^= 0x01; /* last byte of euiccSignEPR */
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    epr[len - 1] ^= 0x01;
    /* a signed byte changed instead: the result code inside the data */
    uint8_t *copy = malloc(len);
    memcpy(copy, epr, len);
    for (size_t i = 0; i + 2 < len; i++) {
        if (copy[i] == 0x83 && copy[i + 1] == 0x01 && copy[i + 2] == 0x00) {
            copy[i + 2] = 0x01;
            break;
        }
    }
    provide_rejected(copy, len, 127);
    assert_unchanged(id, &before);
    /* the genuine result still goes through */
    provide_accepted(epr, len, T.euicc_seq - 1);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE);
    free(copy);
    free(before.profiles);
    free(epr);
    free(buf);
}

Test(eim_engine, result_signed_by_another_euicc_rejected)
{
    struct pl_sgp32_euicc_package_request req;
    struct snapshot before;
    uint8_t *buf = NULL, *epr = NULL;
    size_t len = 0;
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *other = NULL;
    int64_t id = sent_enable(&req, &buf);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &other), PL_OK);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, other, false, &epr, &len), PL_OK);
    snap(id, &before);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);
    /* also with a DER signature */
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, other, true, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    pl_eckey_free(other);
    free(before.profiles);
    free(epr);
    free(buf);
}

/* Results whose eimTransactionId, eimId or counterValue are not those of the package in
 * flight, correctly signed by the device: rejected. */
Test(eim_engine, mismatched_results_rejected)
{
    struct pl_sgp32_euicc_package_request req;
    struct snapshot before;
    uint8_t *buf = NULL, *epr = NULL;
    size_t len = 0;
    int64_t id = sent_enable(&req, &buf);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    snap(id, &before);

    struct pl_sgp32_euicc_package_request bad = req;
    static const uint8_t other_txid[16] = {9, 9, 9};
    bad.pkg.eim_txid.p = other_txid;
    cr_assert_eq(pl_eimt_epr(&T, &bad, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);

    bad = req;
    bad.pkg.eim_txid.p = NULL;
    bad.pkg.eim_txid.len = 0;
    cr_assert_eq(pl_eimt_epr(&T, &bad, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);

    bad = req;
    bad.pkg.eim_id = pl_sgp32_str("eim.somebody-else");
    cr_assert_eq(pl_eimt_epr(&T, &bad, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);

    bad = req;
    bad.pkg.counter = req.pkg.counter + 1;
    cr_assert_eq(pl_eimt_epr(&T, &bad, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);

    bad.pkg.counter = req.pkg.counter - 1;
    cr_assert_eq(pl_eimt_epr(&T, &bad, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    free(epr);

    /* a result arm that does not answer the PSMO (deleteResult for an enable): verified,
     * but applied to nothing */
    struct pl_sgp32_euicc_result wrong = code_result(PL_SGP32_RESULT_DELETE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &wrong, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, T.euicc_seq - 1);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "unexpectedResult");
    char *v = pl_eimt_profiles(&T);
    cr_assert_str_eq(v, before.profiles);
    free(v);
    free(before.profiles);
    free(epr);
    free(buf);
}

Test(eim_engine, result_for_unknown_transaction_or_eid_rejected)
{
    struct pl_sgp32_euicc_package_request req;
    uint8_t *buf = NULL, *epr = NULL;
    size_t len = 0;
    struct snapshot before;
    int64_t id = sent_enable(&req, &buf);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, T.euicc_seq - 1);
    snap(id, &before);
    /* nothing in flight now: a signed result for a transaction never sent */
    struct pl_sgp32_euicc_package_request ghost = req;
    static const uint8_t txid[16] = {0xEE};
    ghost.pkg.eim_txid.p = txid;
    ghost.pkg.counter = req.pkg.counter + 5;
    uint8_t *g = NULL;
    size_t glen = 0;
    cr_assert_eq(pl_eimt_epr(&T, &ghost, &r, 1, NULL, false, &g, &glen), PL_OK);
    provide_rejected(g, glen, 127);
    assert_unchanged(id, &before);
    /* unknown EID */
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *rb = NULL;
    T.eid[15] ^= 0x01;
    cr_assert_eq(pl_eimt_provide_epr(&T, g, glen, &m, &rb), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR);
    cr_assert_eq(m.provide_result.error_code, 2, "eidNotFound");
    free(rb);
    cr_assert_eq(pl_eimt_get_package(&T, false, &m, &rb), PL_OK);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_ERROR);
    cr_assert_eq(m.get_eim_package.error_code, PL_SGP32_EIM_PKG_ERR_EID_NOT_FOUND);
    free(rb);
    T.eid[15] ^= 0x01;
    assert_unchanged(id, &before);
    free(before.profiles);
    free(g);
    free(epr);
    free(buf);
}

/* Replays: an old valid result presented while a newer package is in flight is not applied
 * to it; an exact copy of an accepted result is acknowledged again and applied to nothing;
 * a second, different result for an accepted counter is rejected. */
Test(eim_engine, replayed_results_change_nothing)
{
    struct pl_sgp32_euicc_package_request req1, req2;
    uint8_t *buf1 = NULL, *buf2 = NULL, *epr1 = NULL, *alt = NULL;
    size_t len1 = 0, alt_len = 0;
    struct snapshot before;
    int64_t id1 = sent_enable(&req1, &buf1);
    struct pl_sgp32_euicc_result ok = code_result(PL_SGP32_RESULT_ENABLE, 0);
    uint32_t seq1 = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req1, &ok, 1, NULL, false, &epr1, &len1), PL_OK);
    provide_accepted(epr1, len1, seq1);
    cr_assert_eq(op_state(id1, NULL, 0), PL_EIM_OPS_DONE);

    int64_t id2 = pl_eimt_enqueue(&T, PL_EIM_OP_DISABLE, "{\"iccid\":\"" ICCID1 "\"}");
    buf2 = fetch(&req2);
    cr_assert_gt(req2.pkg.counter, req1.pkg.counter);
    snap(id2, &before);

    /* the exact copy of result 1 (the IPA lost our ack): re-acknowledged, nothing applied */
    provide_accepted(epr1, len1, seq1);
    assert_unchanged(id2, &before);
    cr_assert_eq(op_state(id1, NULL, 0), PL_EIM_OPS_DONE);

    /* another signed result for counter 1 (a different seqNumber): rejected */
    struct pl_sgp32_euicc_result fail = code_result(PL_SGP32_RESULT_ENABLE, 3);
    cr_assert_eq(pl_eimt_epr(&T, &req1, &fail, 1, NULL, false, &alt, &alt_len), PL_OK);
    provide_rejected(alt, alt_len, 127);
    assert_unchanged(id2, &before);
    char outcome[64];
    cr_assert_eq(op_state(id1, outcome, sizeof(outcome)), PL_EIM_OPS_DONE);
    cr_assert_str_eq(outcome, "ok");
    char *v = pl_eimt_profiles(&T);
    cr_assert(has(v, "enabled"), "%s", v);
    free(v);
    free(before.profiles);
    free(alt);
    free(epr1);
    free(buf1);
    free(buf2);
}

/* A device whose registered CERT.EUICC does not chain to the configured CI: its results are
 * not trusted, whatever they say. */
Test(eim_engine, result_from_untrusted_certificate_rejected)
{
    struct pl_sgp32_euicc_package_request req;
    uint8_t *buf = NULL, *epr = NULL;
    size_t len = 0;
    struct snapshot before;
    char dir[256];
    struct pl_pki *other = NULL;
    struct pl_rng rng = PL_RNG_SYSTEM;
    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    char pdir[300];
    snprintf(pdir, sizeof(pdir), "%s/pki", dir);
    cr_assert_eq(pl_pki_init(pdir, PL_CURVE_P256, &rng, (time_t)(T.now_ms / 1000)), PL_OK);
    cr_assert_eq(pl_pki_load(pdir, &other), PL_OK);
    struct pl_eckey *k2 = NULL;
    uint8_t cert2[4096];
    size_t cert2_len = 0;
    cr_assert_eq(pl_pki_mint_euicc_with(other, T.eid, &rng, (time_t)(T.now_ms / 1000), &k2, cert2,
                                        sizeof(cert2), &cert2_len),
                 PL_OK);
    const uint8_t *eum2 = NULL;
    size_t eum2_len = 0;
    pl_cert_der(pl_pki_cert(other, PL_PKI_EUM), &eum2, &eum2_len);
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    free(d.euicc_cert);
    free(d.eum_cert);
    d.euicc_cert = malloc(cert2_len);
    memcpy(d.euicc_cert, cert2, cert2_len);
    d.euicc_cert_len = cert2_len;
    d.eum_cert = malloc(eum2_len);
    memcpy(d.eum_cert, eum2, eum2_len);
    d.eum_cert_len = eum2_len;
    cr_assert_eq(pl_eim_store_device_update(T.store, "test", &d, PL_EIM_DEV_CERTS), PL_OK);
    pl_eim_device_clear(&d);

    int64_t id = sent_enable(&req, &buf);
    snap(id, &before);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, k2, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    assert_unchanged(id, &before);
    pl_eckey_free(k2);
    pl_pki_free(other);
    pl_test_rmtree(dir);
    free(before.profiles);
    free(epr);
    free(buf);
}

/* ---- lost results (EIM.md §1.6; docs/eim-engine.md §4) ---- */

/* Answers a requery BF52 with an IpaEuiccData holding the given EPRs (concatenated TLVs). */
static struct pl_sgp32_esipa_eim_msg answer_edr(struct pl_sgp32_buf txid, const uint8_t *eprs,
                                                size_t len, size_t count, uint8_t **buf)
{
    struct pl_sgp32_ipa_euicc_data_response rsp;
    struct pl_sgp32_eim_package_result r;
    struct pl_sgp32_esipa_eim_msg m;
    struct pl_wr w;
    memset(&rsp, 0, sizeof(rsp));
    memset(&r, 0, sizeof(r));
    pl_wr_init_dyn(&w, 65536);
    rsp.data.eim_txid = txid;
    if (count > 0) {
        rsp.data.epr_list.p = eprs;
        rsp.data.epr_list.len = len;
        rsp.data.epr_list.count = count;
    }
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_encode(&rsp, &w), PL_OK);
    r.kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
    r.ipa_euicc_data_response.p = w.buf;
    r.ipa_euicc_data_response.len = w.len;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, buf), PL_OK);
    pl_wr_free(&w);
    return m;
}

/* Polls, expects the requery of the package req (tagList 'A2'): phase A searches by
 * seqNumber under the package's transaction id, phase B asks for every stored result under
 * the alternate id. Returns the transaction id to answer with (static storage). */
static struct pl_sgp32_buf expect_requery(const struct pl_sgp32_euicc_package_request *req,
                                          bool searching, uint32_t seq)
{
    static uint8_t txid[16];
    uint8_t *buf = NULL;
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, &buf);
    struct pl_sgp32_ipa_euicc_data_request q;
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(raw.p, raw.len, &q), PL_OK);
    cr_assert_eq(q.tag_list.len, 1);
    cr_assert_eq(q.tag_list.p[0], 0xA2);
    cr_assert_eq(q.has_epr_search, searching, "searchCriteriaEuiccPackageResult");
    cr_assert_eq(q.eim_txid.len, 16);
    if (searching) {
        cr_assert_eq(q.epr_seq, seq);
        cr_assert(pl_sgp32_buf_eq(q.eim_txid, req->pkg.eim_txid));
    } else {
        cr_assert_not(pl_sgp32_buf_eq(q.eim_txid, req->pkg.eim_txid));
        cr_assert_eq(memcmp(q.eim_txid.p + 1, req->pkg.eim_txid.p + 1, 15), 0);
    }
    memcpy(txid, q.eim_txid.p, 16);
    free(buf);
    struct pl_sgp32_buf r = {txid, 16};
    return r;
}

Test(eim_engine, lost_result_redelivered_then_replay_error_requeried_and_resolved)
{
    struct pl_sgp32_euicc_package_request req, again;
    struct pl_sgp32_buf raw1, raw2;
    uint8_t *epr = NULL, *epe = NULL, *b2 = NULL, *b3 = NULL;
    size_t len = 0, epe_len = 0;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *b1 = fetch_raw(&req, &raw1);
    /* the eUICC ran it; the EPR is lost (REFRESH after enable, EIM.md §1.6) */
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    /* the IPA polls again: the very same bytes come back (never re-signed) */
    raw2 = poll_package(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, &b2);
    cr_assert_eq(raw2.len, raw1.len);
    cr_assert_eq(memcmp(raw2.p, raw1.p, raw1.len), 0);
    cr_assert_eq(pl_eimt_euicc_accept(&T, raw2.p, raw2.len, &again), PL_ERR_REPLAY);
    /* the eUICC answers replayError (signed): the eIM re-queries */
    cr_assert_eq(pl_eimt_epe(&T, &again, PL_SGP32_EPE_REPLAY, &epe, &epe_len), PL_OK);
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide_epr(&T, epe, epe_len, &m, &b3), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY, "%s", T.log);
    free(b3);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_REQUERY);
    char *v = pl_eimt_profiles(&T);
    cr_assert(!has(v, "enabled"), "nothing applied yet: %s", v);
    free(v);
    /* nothing stored from this eUICC yet: no seqNumber to search by, all results asked */
    expect_requery(&req, false, 0);
    struct pl_sgp32_buf tx = expect_requery(&req, false, 0); /* asked again until answered */
    /* the IPA reads the eUICC's stored results */
    m = answer_edr(tx, epr, len, 1, &b3);
    cr_assert(acks_contain(&m, seq), "%s", T.log);
    free(b3);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_DONE, "%s", T.log);
    cr_assert_str_eq(outcome, "ok");
    v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"state\":\"enabled\""), "%s", v);
    free(v);
    cr_assert_eq(poll_error(), PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    free(epr);
    free(epe);
    free(b1);
    free(b2);
}

Test(eim_engine, lost_result_after_timeout_requeried_by_seq_and_resolved)
{
    struct pl_sgp32_euicc_package_request req;
    uint8_t *epr = NULL, *b3 = NULL;
    size_t len = 0;
    run_ok(PL_EIM_OP_GET_RAT, NULL, code_result(PL_SGP32_RESULT_GET_RAT, 0));
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_DELETE, "{\"iccid\":\"" ICCID2 "\"}");
    uint8_t *b1 = fetch(&req);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_DELETE, 0);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, true, &epr, &len), PL_OK);
    T.now_ms += 60000; /* the result timeout of the test engine */
    struct pl_sgp32_buf tx = expect_requery(&req, true, seq);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_REQUERY);
    /* an answer for another transaction resolves nothing and changes nothing */
    static const uint8_t wrong[16] = {0x77};
    struct pl_sgp32_buf wtx = {wrong, sizeof(wrong)};
    struct pl_sgp32_esipa_eim_msg m = answer_edr(wtx, epr, len, 1, &b3);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR);
    free(b3);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_REQUERY);
    m = answer_edr(tx, epr, len, 1, &b3);
    cr_assert(acks_contain(&m, seq));
    free(b3);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE, "%s", T.log);
    free(epr);
    free(b1);
}

Test(eim_engine, requery_without_the_result_ends_failed_and_queue_moves_on)
{
    struct pl_sgp32_euicc_package_request req, req2;
    uint8_t *b3 = NULL;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    int64_t id2 = pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    uint8_t *b1 = fetch(&req);
    T.now_ms += 61000;
    struct pl_sgp32_buf tx = expect_requery(&req, false, 0);
    struct pl_sgp32_esipa_eim_msg m = answer_edr(tx, NULL, 0, 0, &b3);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY);
    free(b3);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "resultNotFound");
    uint8_t *b2 = fetch(&req2);
    cr_assert_eq(req2.pkg.kind, PL_SGP32_PACKAGE_ECO);
    cr_assert_gt(req2.pkg.counter, req.pkg.counter);
    cr_assert_eq(op_state(id2, NULL, 0), PL_EIM_OPS_SENT);
    free(b1);
    free(b2);
}

/* A miss of the seqNumber search proves nothing (the guess may be off): only the answer to
 * the all-results question ends the operation. */
Test(eim_engine, requery_search_miss_then_all_results)
{
    struct pl_sgp32_euicc_package_request req;
    uint8_t *b3 = NULL, *epr = NULL;
    size_t len = 0;
    run_ok(PL_EIM_OP_GET_RAT, NULL, code_result(PL_SGP32_RESULT_GET_RAT, 0));
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *b1 = fetch(&req);
    /* the eUICC numbered something else first: the result got seqNumber + 1 */
    T.euicc_seq++;
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    T.now_ms += 60000;
    struct pl_sgp32_buf tx = expect_requery(&req, true, T.euicc_seq - 2);
    struct pl_sgp32_esipa_eim_msg m = answer_edr(tx, NULL, 0, 0, &b3);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY);
    free(b3);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_REQUERY, "a search miss decides nothing");
    T.now_ms += 60000; /* two result timeouts after sending: phase B */
    tx = expect_requery(&req, false, 0);
    m = answer_edr(tx, epr, len, 1, &b3);
    cr_assert(acks_contain(&m, T.euicc_seq - 1));
    free(b3);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE, "%s", T.log);
    free(epr);
    free(b1);
}

Test(eim_engine, requery_gives_up_after_requery_timeout)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *b1 = fetch(&req);
    T.now_ms += 61000;
    expect_requery(&req, false, 0);
    T.now_ms += (int64_t)PL_EIM_DEFAULT_REQUERY_TIMEOUT_MS;
    cr_assert_eq(poll_error(), PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "resultLost");
    free(b1);
}

/* euiccPackageErrorUnsigned and the IPA's own error cannot be verified: they decide nothing,
 * the eUICC is asked. */
Test(eim_engine, unsigned_errors_lead_to_requery_not_failure)
{
    struct pl_sgp32_euicc_package_request req;
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *b = NULL;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *b1 = fetch(&req);
    struct pl_sgp32_euicc_package_result *u = calloc(1, sizeof(*u));
    struct pl_wr w;
    pl_wr_init_dyn(&w, 4096);
    u->kind = PL_SGP32_EPR_ERROR_UNSIGNED;
    u->eim_id = req.pkg.eim_id;
    u->eim_txid = req.pkg.eim_txid;
    cr_assert_eq(pl_sgp32_euicc_package_result_encode(u, NULL, 0, &w), PL_OK);
    cr_assert_eq(pl_eimt_provide_epr(&T, w.buf, w.len, &m, &b), PL_OK);
    free(b);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_REQUERY);
    pl_wr_free(&w);
    free(u);
    free(b1);

    /* the IPA's eimPackageResultResponseError on a data request ends it (no counter) */
    uint8_t *b2 = NULL;
    pl_eimt_free(&T);
    setup();
    int64_t id2 = pl_eimt_enqueue(&T, PL_EIM_OP_IPA_EUICC_DATA_REQUEST, NULL);
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, &b2);
    struct pl_sgp32_ipa_euicc_data_request q;
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(raw.p, raw.len, &q), PL_OK);
    struct pl_sgp32_eim_package_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_EIM_RESULT_ERROR;
    r.error_txid = q.eim_txid;
    r.error_code = PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY);
    free(b);
    char outcome[64];
    cr_assert_eq(op_state(id2, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "invalidPackageFormat");
    free(b2);
}

/* ---- device data, download trigger, notifications ---- */

static struct pl_sgp32_buf cert_contents(const uint8_t *der, size_t len)
{
    struct pl_tlv t;
    cr_assert_eq(pl_der_parse_one(der, len, 0x30, &t), PL_OK);
    struct pl_sgp32_buf b = {t.value, t.len};
    return b;
}

/* A device registered without certificates learns them from a data request answer, after
 * the chain and the EID verified; results then verify. */
Test(eim_engine, ipa_euicc_data_request_learns_verified_certificates)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    free(d.euicc_cert);
    free(d.eum_cert);
    d.euicc_cert = d.eum_cert = NULL;
    d.euicc_cert_len = d.eum_cert_len = 0;
    cr_assert_eq(pl_eim_store_device_update(T.store, "test", &d, PL_EIM_DEV_CERTS), PL_OK);
    pl_eim_device_clear(&d);

    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_IPA_EUICC_DATA_REQUEST, "{\"resultSeq\":3}");
    uint8_t *b1 = NULL, *b2 = NULL;
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, &b1);
    struct pl_sgp32_ipa_euicc_data_request q;
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(raw.p, raw.len, &q), PL_OK);
    cr_assert_eq(q.tag_list.len, 10, "default tagList");
    cr_assert(q.has_epr_search && q.epr_seq == 3);
    cr_assert_eq(q.eim_txid.len, 16);
    cr_assert_eq(pl_eimt_store_counter(&T), 0, "no counter for an unsigned package");

    /* first an answer whose certificates are from another EID: not learnt */
    const uint8_t *eum = NULL;
    size_t eum_len = 0;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EUM), &eum, &eum_len);
    struct pl_sgp32_ipa_euicc_data_response rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.data.eim_txid = q.eim_txid;
    rsp.data.eum_certificate = cert_contents(eum, eum_len);
    rsp.data.euicc_certificate = cert_contents(T.euicc_cert, T.euicc_cert_len);
    static const uint8_t addr[] = "smdp.example.com";
    rsp.data.default_smdp_address.p = addr;
    rsp.data.default_smdp_address.len = sizeof(addr) - 1;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_encode(&rsp, &w), PL_OK);
    struct pl_sgp32_eim_package_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
    r.ipa_euicc_data_response.p = w.buf;
    r.ipa_euicc_data_response.len = w.len;
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b2), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_EMPTY, "%s", T.log);
    free(b2);
    pl_wr_free(&w);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_DONE);
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    cr_assert_eq(d.euicc_cert_len, T.euicc_cert_len);
    cr_assert_eq(memcmp(d.euicc_cert, T.euicc_cert, T.euicc_cert_len), 0);
    pl_eim_device_clear(&d);
    free(b1);
    /* and results verify with them now */
    run_ok(PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}", code_result(PL_SGP32_RESULT_ENABLE, 0));
}

Test(eim_engine, ipa_euicc_data_with_foreign_certificates_not_learnt)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    free(d.euicc_cert);
    free(d.eum_cert);
    d.euicc_cert = d.eum_cert = NULL;
    d.euicc_cert_len = d.eum_cert_len = 0;
    cr_assert_eq(pl_eim_store_device_update(T.store, "test", &d, PL_EIM_DEV_CERTS), PL_OK);
    pl_eim_device_clear(&d);
    pl_eimt_enqueue(&T, PL_EIM_OP_IPA_EUICC_DATA_REQUEST, NULL);
    uint8_t *b1 = NULL, *b2 = NULL;
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST, &b1);
    struct pl_sgp32_ipa_euicc_data_request q;
    cr_assert_eq(pl_sgp32_ipa_euicc_data_request_decode(raw.p, raw.len, &q), PL_OK);
    /* the sample eUICC's certificate: chain fine, but another EID */
    const uint8_t *eum = NULL, *other = NULL;
    size_t eum_len = 0, other_len = 0;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EUM), &eum, &eum_len);
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EUICC_SAMPLE), &other, &other_len);
    struct pl_sgp32_ipa_euicc_data_response rsp;
    memset(&rsp, 0, sizeof(rsp));
    rsp.data.eim_txid = q.eim_txid;
    rsp.data.eum_certificate = cert_contents(eum, eum_len);
    rsp.data.euicc_certificate = cert_contents(other, other_len);
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_ipa_euicc_data_response_encode(&rsp, &w), PL_OK);
    struct pl_sgp32_eim_package_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_EIM_RESULT_IPA_EUICC_DATA;
    r.ipa_euicc_data_response.p = w.buf;
    r.ipa_euicc_data_response.len = w.len;
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b2), PL_OK);
    free(b2);
    pl_wr_free(&w);
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    cr_assert(d.euicc_cert == NULL || d.euicc_cert_len == 0, "foreign certificate learnt");
    pl_eim_device_clear(&d);
    free(b1);
}

Test(eim_engine, profile_download_trigger_and_verified_pir)
{
    uint8_t *b1 = NULL, *b2 = NULL, *pir = NULL;
    size_t pir_len = 0;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER,
                                 "{\"activationCode\":\"1$smdp.example.com$MATCHING-1\"}");
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, &b1);
    struct pl_sgp32_profile_download_trigger_request q;
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(raw.p, raw.len, &q), PL_OK);
    cr_assert_eq(q.kind, PL_SGP32_PDD_ACTIVATION_CODE);
    cr_assert(pl_sgp32_buf_eq(q.activation_code, pl_sgp32_str("1$smdp.example.com$MATCHING-1")));
    cr_assert_eq(q.eim_txid.len, 16);
    uint8_t iccid[10];
    pl_eimt_iccid(ICCID2, iccid);
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_pir(&T, iccid, &pir, &pir_len), PL_OK);

    struct pl_sgp32_profile_download_trigger_result res;
    memset(&res, 0, sizeof(res));
    res.eim_txid = q.eim_txid;
    res.profile_installation_result.p = pir;
    res.profile_installation_result.len = pir_len;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&res, &w), PL_OK);
    /* tampered PIR first: rejected, nothing stored */
    w.buf[w.len - 1] ^= 0x01;
    struct pl_sgp32_eim_package_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_EIM_RESULT_PDT_RESULT;
    r.pdt_result.p = w.buf;
    r.pdt_result.len = w.len;
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b2), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR);
    free(b2);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    w.buf[w.len - 1] ^= 0x01;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b2), PL_OK);
    cr_assert(acks_contain(&m, seq), "%s", T.log);
    free(b2);
    char outcome[64];
    cr_assert_eq(op_state(id, outcome, sizeof(outcome)), PL_EIM_OPS_DONE);
    cr_assert_str_eq(outcome, "installed");
    char *v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"iccid\":\"8900101201234123403\",\"state\":\"disabled\""), "%s", v);
    free(v);
    pl_wr_free(&w);
    free(pir);
    free(b1);

    /* the other profileDownloadData arms */
    int64_t id2 =
        pl_eimt_enqueue(&T, PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER, "{\"contactDefaultSmdp\":true}");
    raw = poll_package(PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, &b1);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(raw.p, raw.len, &q), PL_OK);
    cr_assert_eq(q.kind, PL_SGP32_PDD_CONTACT_DEFAULT_SMDP);
    memset(&res, 0, sizeof(res));
    res.eim_txid = q.eim_txid;
    res.is_error = true;
    res.error_reason = 127;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_profile_download_trigger_result_encode(&res, &w), PL_OK);
    r.pdt_result.p = w.buf;
    r.pdt_result.len = w.len;
    cr_assert_eq(pl_eimt_provide(&T, &r, &m, &b2), PL_OK);
    free(b2);
    cr_assert_eq(op_state(id2, outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
    cr_assert_str_eq(outcome, "profileDownloadError:127");
    pl_wr_free(&w);
    free(b1);
    int64_t id3 = pl_eimt_enqueue(&T, PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER,
                                  "{\"contactSmds\":true,\"smdsAddress\":\"smds.example\"}");
    raw = poll_package(PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER, &b1);
    cr_assert_eq(pl_sgp32_profile_download_trigger_request_decode(raw.p, raw.len, &q), PL_OK);
    cr_assert_eq(q.kind, PL_SGP32_PDD_CONTACT_SMDS);
    cr_assert(pl_sgp32_buf_eq(q.smds_address, pl_sgp32_str("smds.example")));
    cr_assert_eq(op_state(id3, NULL, 0), PL_EIM_OPS_SENT);
    free(b1);
}

/* HandleNotification: verified notifications are stored (once) and acknowledged in the next
 * ProvideEimPackageResult answer; forged ones are not stored. */
Test(eim_engine, notifications_stored_then_acknowledged_in_next_answer)
{
    uint8_t iccid[10], *n1 = NULL, *n2 = NULL, *b = NULL;
    size_t l1 = 0, l2 = 0;
    pl_eimt_iccid(ICCID1, iccid);
    uint32_t s1 = T.euicc_seq;
    cr_assert_eq(pl_eimt_other_notif(&T, PL_NOTIF_EV_ENABLE, iccid, &n1, &l1), PL_OK);
    uint32_t s2 = T.euicc_seq;
    cr_assert_eq(pl_eimt_pir(&T, iccid, &n2, &l2), PL_OK);

    /* OtherSignedNotification from an unauthenticated peer: EID from its certificate */
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_HANDLE_NOTIFICATION;
    req.handle_notification.pending_notification.p = n1;
    req.handle_notification.pending_notification.len = l1;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &w), PL_OK);
    size_t rl = 0;
    int code = 0;
    cr_assert_eq(pl_eimt_raw(&T, w.buf, w.len, &b, &rl, &code), PL_OK);
    cr_assert_eq(code, 204);
    cr_assert_eq(rl, 0, "HandleNotification has an empty answer");
    free(b);
    pl_wr_free(&w);
    char *v = pl_eimt_profiles(&T);
    cr_assert(has(v, "\"state\":\"enabled\""), "verified enable notification applied: %s", v);
    free(v);

    /* a PIR names no EID: without an authenticated peer it is not stored */
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_HANDLE_NOTIFICATION;
    req.handle_notification.pending_notification.p = n2;
    req.handle_notification.pending_notification.len = l2;
    pl_wr_init_dyn(&w, 65536);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &w), PL_OK);
    cr_assert_eq(pl_eimt_raw(&T, w.buf, w.len, &b, &rl, &code), PL_OK);
    cr_assert_eq(code, 204);
    free(b);
    pl_wr_free(&w);
    struct pl_eim_notification list[8];
    size_t n = 0;
    cr_assert_eq(pl_eim_store_notif_list(T.store, T.eid, true, list, 8, &n), PL_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(list[0].seq, s1);
    pl_eim_notification_clear(&list[0]);

    /* with the peer authenticated (DTLS PSK identity) it is; a forged one is not */
    bool stored = false;
    n2[l2 - 1] ^= 0x01;
    cr_assert_eq(pl_eim_engine_handle_notification(T.eng, T.eid, &req.handle_notification, &stored),
                 PL_OK);
    cr_assert_not(stored);
    n2[l2 - 1] ^= 0x01;
    cr_assert_eq(pl_eim_engine_handle_notification(T.eng, T.eid, &req.handle_notification, &stored),
                 PL_OK);
    cr_assert(stored);
    cr_assert_eq(pl_eim_engine_handle_notification(T.eng, T.eid, &req.handle_notification, &stored),
                 PL_OK);
    cr_assert_not(stored, "stored once");
    /* another EID than the authenticated one */
    uint8_t other[16];
    memcpy(other, T.eid, 16);
    other[0] ^= 1;
    cr_assert_eq(pl_eim_engine_handle_notification(T.eng, other, &req.handle_notification, &stored),
                 PL_OK);
    cr_assert_not(stored);

    /* the next ProvideEimPackageResult answer acknowledges both */
    struct pl_sgp32_euicc_package_request preq;
    pl_eimt_enqueue(&T, PL_EIM_OP_LIST_EIM, NULL);
    uint8_t *pb = fetch(&preq);
    struct pl_sgp32_euicc_result r;
    memset(&r, 0, sizeof(r));
    r.kind = PL_SGP32_RESULT_LIST_EIM;
    r.n_eims = 1;
    r.eims[0].eim_id = pl_sgp32_str(PL_EIMT_EIM_ID);
    uint8_t *epr = NULL;
    size_t len = 0;
    uint32_t s3 = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &preq, &r, 1, NULL, false, &epr, &len), PL_OK);
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide_epr(&T, epr, len, &m, &b), PL_OK);
    cr_assert(acks_contain(&m, s1) && acks_contain(&m, s2) && acks_contain(&m, s3), "%s", T.log);
    free(b);
    cr_assert_eq(pl_eim_store_notif_list(T.store, T.eid, true, list, 8, &n), PL_OK);
    cr_assert_eq(n, 0, "all acknowledged");
    free(epr);
    free(pb);
    free(n1);
    free(n2);
}

/* ePRAndNotifications: the EPR and the notifications in one answer. */
Test(eim_engine, epr_and_notifications)
{
    struct pl_sgp32_euicc_package_request req;
    uint8_t iccid[10], *note = NULL, *epr = NULL, *b = NULL;
    size_t nl = 0, len = 0;
    pl_eimt_iccid(ICCID1, iccid);
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *pb = fetch(&req);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    uint32_t s1 = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    uint32_t s2 = T.euicc_seq;
    cr_assert_eq(pl_eimt_other_notif(&T, PL_NOTIF_EV_ENABLE, iccid, &note, &nl), PL_OK);
    struct pl_sgp32_eim_package_result pr;
    memset(&pr, 0, sizeof(pr));
    pr.kind = PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS;
    pr.euicc_package_result.p = epr;
    pr.euicc_package_result.len = len;
    pr.notifications.p = note;
    pr.notifications.len = nl;
    pr.notifications.count = 1;
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_eimt_provide(&T, &pr, &m, &b), PL_OK);
    cr_assert(acks_contain(&m, s1) && acks_contain(&m, s2), "%s", T.log);
    free(b);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE);
    free(note);
    free(epr);
    free(pb);
}

/* ---- queue behaviour ---- */

Test(eim_engine, notify_state_change_queues_one_list_profile_info)
{
    struct pl_sgp32_esipa_eim_msg m;
    uint8_t *b = NULL;
    struct pl_sgp32_euicc_package_request req;
    cr_assert_eq(pl_eimt_get_package(&T, true, &m, &b), PL_OK);
    cr_assert_eq(m.get_eim_package.kind, PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, "%s", T.log);
    cr_assert_eq(pl_eimt_euicc_accept(&T, m.get_eim_package.raw.p, m.get_eim_package.raw.len, &req),
                 PL_OK);
    cr_assert_eq(req.pkg.psmo[0].kind, PL_SGP32_PSMO_LIST_PROFILE_INFO);
    cr_assert_eq(req.pkg.psmo[0].list_profile_info.search, PL_SGP32_SEARCH_NONE);
    uint8_t *b2 = NULL;
    cr_assert_eq(pl_eimt_get_package(&T, true, &m, &b2), PL_OK); /* re-delivery, no new op */
    free(b2);
    struct pl_eim_op_summary s[8];
    size_t n = 0;
    cr_assert_eq(pl_eim_store_op_list(T.store, T.eid, 0, s, 8, &n), PL_OK);
    cr_assert_eq(n, 1, "one listProfileInfo, not two");
    free(b);
}

/* Parameters the engine cannot turn into a package end the operation (no counter spent);
 * the next operation is served in the same poll. */
Test(eim_engine, invalid_parameters_fail_operation_without_a_counter)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t bad1 = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"12ab\"}");
    int64_t bad2 = pl_eimt_enqueue(&T, PL_EIM_OP_DISABLE, "{\"iccid\":\"" ICCID1 "\",\"x\":1}");
    int64_t bad3 = pl_eimt_enqueue(&T, PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER,
                                   "{\"activationCode\":\"nonsense\"}");
    int64_t good = pl_eimt_enqueue(&T, PL_EIM_OP_GET_RAT, NULL);
    uint8_t *b = fetch(&req);
    cr_assert_eq(req.pkg.psmo[0].kind, PL_SGP32_PSMO_GET_RAT);
    cr_assert_eq(req.pkg.counter, 1, "no counter spent on the invalid ones");
    char outcome[64];
    int64_t bad[3] = {bad1, bad2, bad3};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(op_state(bad[i], outcome, sizeof(outcome)), PL_EIM_OPS_FAILED);
        cr_assert_str_eq(outcome, "invalidParameters");
    }
    cr_assert_eq(op_state(good, NULL, 0), PL_EIM_OPS_SENT);
    char err[128];
    cr_assert_eq(
        pl_eim_engine_check_params(PL_EIM_OP_ENABLE, (const uint8_t *)"{}", 2, err, sizeof(err)),
        PL_ERR_INVAL);
    cr_assert(strstr(err, "iccid") != NULL, "%s", err);
    const uint8_t *der = NULL;
    size_t der_len = 0;
    pl_cert_der(pl_pki_cert(T.pki, PL_PKI_EIM), &der, &der_len);
    char *ok = malloc(2 * der_len + 64);
    int n = snprintf(ok, 64, "{\"eimId\":\"e\",\"eimCertificate\":\"");
    cr_assert_eq(pl_hex_encode(der, der_len, ok + n, 2 * der_len + 1), PL_OK);
    strcat(ok, "\"}");
    cr_assert_eq(pl_eim_engine_check_params(PL_EIM_OP_ADD_EIM, (const uint8_t *)ok, strlen(ok), err,
                                            sizeof(err)),
                 PL_OK, "%s", err);
    ok[n + 2] = 'x';
    cr_assert_eq(pl_eim_engine_check_params(PL_EIM_OP_ADD_EIM, (const uint8_t *)ok, strlen(ok), err,
                                            sizeof(err)),
                 PL_ERR_INVAL);
    free(ok);
    free(b);
}

/* A claim left by a crashed process of the same name is resumed with a fresh counter; the
 * counter of the crashed attempt is skipped, never reused. */
Test(eim_engine, crashed_claim_resumed_with_fresh_counter)
{
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    struct pl_eim_op op;
    memset(&op, 0, sizeof(op));
    cr_assert_eq(pl_eim_store_op_claim(T.store, T.eid, "eim-test", &op), PL_OK);
    cr_assert_eq(op.id, id);
    pl_eim_op_clear(&op);
    uint32_t lost = 0;
    cr_assert_eq(pl_eim_store_reserve_counter(T.store, T.eid, &lost), PL_OK); /* then crash */
    uint8_t *b = fetch(&req);
    cr_assert_gt(req.pkg.counter, lost);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    free(b);
    /* a claim by another eIM process is left alone */
    pl_eimt_free(&T);
    setup();
    pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    memset(&op, 0, sizeof(op));
    cr_assert_eq(pl_eim_store_op_claim(T.store, T.eid, "eim-other", &op), PL_OK);
    pl_eim_op_clear(&op);
    cr_assert_eq(poll_error(), PL_SGP32_EIM_PKG_ERR_NO_PACKAGE);
}

/* A signing engine restarted on the same database continues above every counter sent. */
Test(eim_engine, restarted_engine_counters_keep_increasing)
{
    uint32_t c1 = run_ok(PL_EIM_OP_GET_RAT, NULL, code_result(PL_SGP32_RESULT_GET_RAT, 0));
    pl_eim_engine_free(T.eng);
    pl_eim_store_close(T.store);
    T.eng = NULL;
    cr_assert_eq(pl_eimt_open_store(&T, &T.store), PL_OK);
    const struct pl_cert *ci = pl_pki_cert(T.pki, PL_PKI_CI);
    struct pl_eim_engine_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.eim_id = PL_EIMT_EIM_ID;
    cfg.signing_key = pl_pki_key(T.pki, PL_PKI_EIM);
    cfg.ci_roots = &ci;
    cfg.n_ci_roots = 1;
    cfg.claimer = "eim-test";
    cr_assert_eq(pl_eim_engine_new(T.store, &cfg, &T.eng), PL_OK);
    uint32_t c2 = run_ok(PL_EIM_OP_GET_RAT, NULL, code_result(PL_SGP32_RESULT_GET_RAT, 0));
    cr_assert_gt(c2, c1);
}

/* ---- the ESipa request handler ---- */

Test(eim_engine, handler_status_codes)
{
    struct pl_wr w;
    enum pl_eim_esipa_code code;
    static const uint8_t junk[] = {0xBF, 0x4F, 0x05, 0x5A, 0x10, 0x00};
    pl_wr_init_dyn(&w, 65536);
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    /* malformed: 4.00, nothing changed */
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, junk, sizeof(junk), 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_BAD_REQUEST);
    cr_assert_eq(w.len, 0);
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, NULL, 0, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_BAD_REQUEST);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_QUEUED);
    /* a valid GetEimPackage with trailing garbage */
    struct pl_sgp32_esipa_ipa_msg req;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_GET_EIM_PACKAGE;
    memcpy(req.get_eim_package.eid, T.eid, 16);
    struct pl_wr r;
    pl_wr_init_dyn(&r, 1024);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &r), PL_OK);
    cr_assert_eq(pl_wr_u8(&r, 0x00), PL_OK);
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, r.buf, r.len, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_BAD_REQUEST);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_QUEUED);
    /* oversize: 4.13 before parsing */
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, r.buf, r.len - 1, 10, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_TOO_LARGE);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_QUEUED);
    /* an authenticated peer asking for another EID: 4.03 */
    uint8_t other[16];
    memcpy(other, T.eid, 16);
    other[3] ^= 0x10;
    cr_assert_eq(pl_eim_esipa_handle(T.eng, other, r.buf, r.len - 1, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_FORBIDDEN);
    cr_assert_eq(w.len, 0);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_QUEUED);
    /* the right one: 2.04 with the package */
    cr_assert_eq(pl_eim_esipa_handle(T.eng, T.eid, r.buf, r.len - 1, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_CHANGED);
    cr_assert_gt(w.len, 100);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    pl_wr_free(&r);
    pl_wr_reset(&w);
    /* relay functions are answered with their SGP.32 error arm */
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_INITIATE_AUTHENTICATION;
    pl_wr_init_dyn(&r, 1024);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &r), PL_OK);
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, r.buf, r.len, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_CHANGED);
    struct pl_sgp32_esipa_eim_msg m;
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(w.buf, w.len, &m), PL_OK);
    cr_assert_eq(m.kind, PL_SGP32_ESIPA_INITIATE_AUTHENTICATION);
    cr_assert(m.initiate_auth.is_error);
    cr_assert_eq(m.initiate_auth.error_code, 127);
    pl_wr_free(&r);
    pl_wr_free(&w);
    /* ProvideEimPackageResult without any EID: missingEid */
    struct pl_sgp32_eim_package_result pr;
    memset(&pr, 0, sizeof(pr));
    pr.kind = PL_SGP32_EIM_RESULT_ERROR;
    pr.error_code = 127;
    memset(&req, 0, sizeof(req));
    req.kind = PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT;
    req.provide_result.result = pr;
    pl_wr_init_dyn(&r, 1024);
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_sgp32_esipa_ipa_msg_encode(&req, &r), PL_OK);
    cr_assert_eq(pl_eim_esipa_handle(T.eng, NULL, r.buf, r.len, 0, &w, &code), PL_OK);
    cr_assert_eq(code, PL_EIM_ESIPA_CHANGED);
    cr_assert_eq(pl_sgp32_esipa_eim_msg_decode(w.buf, w.len, &m), PL_OK);
    cr_assert_eq(m.provide_result.kind, PL_SGP32_PROVIDE_RSP_ERROR);
    cr_assert_eq(m.provide_result.error_code, 4);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    pl_wr_free(&r);
    pl_wr_free(&w);
}

/* With an associationToken configured, both signatures cover '84 len token' (SGP.32
 * §2.11.1.1, minimal two's complement: 300 = 84 02 01 2C); a result signed over another
 * token is rejected. */
Test(eim_engine, association_token_in_both_signatures)
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    d.has_assoc_token = true;
    d.assoc_token = 300;
    cr_assert_eq(pl_eim_store_device_update(T.store, "test", &d, PL_EIM_DEV_ASSOCIATION), PL_OK);
    pl_eim_device_clear(&d);
    struct pl_sgp32_euicc_package_request req;
    int64_t id = pl_eimt_enqueue(&T, PL_EIM_OP_ENABLE, "{\"iccid\":\"" ICCID1 "\"}");
    uint8_t *b = NULL;
    struct pl_sgp32_buf raw = poll_package(PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST, &b);
    /* an eUICC without the token refuses the package */
    cr_assert_eq(pl_eimt_euicc_accept(&T, raw.p, raw.len, &req), PL_ERR_BAD_SIGNATURE);
    T.has_token = true;
    T.token = 300;
    cr_assert_eq(pl_eimt_euicc_accept(&T, raw.p, raw.len, &req), PL_OK);
    struct pl_sgp32_euicc_result r = code_result(PL_SGP32_RESULT_ENABLE, 0);
    uint8_t *epr = NULL;
    size_t len = 0;
    T.token = 299;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_rejected(epr, len, 127);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_SENT);
    free(epr);
    T.token = 300;
    uint32_t seq = T.euicc_seq;
    cr_assert_eq(pl_eimt_epr(&T, &req, &r, 1, NULL, false, &epr, &len), PL_OK);
    provide_accepted(epr, len, seq);
    cr_assert_eq(op_state(id, NULL, 0), PL_EIM_OPS_DONE);
    free(epr);
    free(b);
}

/* deleteEim of this eIM's own association ends it in the registry. */
Test(eim_engine, delete_own_eim_clears_association)
{
    run_ok(PL_EIM_OP_DELETE_EIM, "{\"eimId\":\"" PL_EIMT_EIM_ID "\"}",
           code_result(PL_SGP32_RESULT_DELETE_EIM, 0));
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    cr_assert_eq(pl_eim_store_device_get(T.store, T.eid, &d), PL_OK);
    cr_assert(d.eim_id == NULL || d.eim_id[0] == '\0', "association still %s", d.eim_id);
    cr_assert_not(d.has_assoc_token);
    pl_eim_device_clear(&d);
}
