/* The eIM store conformance suite (see eim_store_conformance.h). What it proves, for each
 * backend: registry CRUD; per-EID FIFO queues and their state machine; one claimer wins;
 * counters never repeat and strictly increase under two processes and two threads;
 * restoring an old database cannot make the store hand out a used counter
 * (ARCHITECTURE.md §5; docs/decisions/0011-eim-counter-floor.md); notification intake is
 * idempotent on (EID, seqNumber); operator tokens authenticate by hash. */
#define _POSIX_C_SOURCE 200809L
#include "eim_store_conformance.h"

#include "provline/eim/counter_guard.h"
#include "provline/protocol/err.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, PL_OK, "%s: %d (%s)", #expr, rc_, pl_strerror(rc_));                     \
    } while (0)

#define EXPECT(expr, want)                                                                         \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (want), "%s: got %d (%s), want %d (%s)", #expr, rc_, pl_strerror(rc_),   \
                     (want), pl_strerror(want));                                                   \
    } while (0)

static void mkeid(uint8_t eid[PL_EIM_EID_LEN], unsigned n)
{
    static const uint8_t base[PL_EIM_EID_LEN] = {0x89, 0x04, 0x90, 0x32, 0x00, 0x00, 0x00, 0x00,
                                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    memcpy(eid, base, PL_EIM_EID_LEN);
    eid[12] = (uint8_t)(n >> 24);
    eid[13] = (uint8_t)(n >> 16);
    eid[14] = (uint8_t)(n >> 8);
    eid[15] = (uint8_t)n;
}

static void guard_path(const struct pl_eimconf_backend *b, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", b->dir, name);
    cr_assert(n > 0 && (size_t)n < cap);
}

static struct pl_eim_store *open_store(const struct pl_eimconf_backend *b, const char *guard,
                                       uint32_t block)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;

    memset(&o, 0, sizeof(o));
    guard_path(b, guard, gp, sizeof(gp));
    o.guard_path = gp;
    o.guard_block = block;
    OK(b->open(b->ctx, 0, &o, &s));
    cr_assert_not_null(s);
    return s;
}

static void register_plain(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN])
{
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    memcpy(d.eid, eid, PL_EIM_EID_LEN);
    int rc = pl_eim_store_device_put(s, "test", &d);
    cr_assert_eq(rc, PL_OK, "device_put: %s (%s)", pl_strerror(rc), pl_eim_store_last_error(s));
}

static uint8_t cert_a[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static uint8_t cert_b[] = {0x30, 0x03, 0x02, 0x01, 0x02};
static uint8_t eum[] = {0x30, 0x03, 0x02, 0x01, 0x09};

static void fill_device(struct pl_eim_device *d, unsigned n, const char *psk_id)
{
    static uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    memset(d, 0, sizeof(*d));
    mkeid(d->eid, n);
    d->euicc_cert = cert_a;
    d->euicc_cert_len = sizeof(cert_a);
    d->eum_cert = eum;
    d->eum_cert_len = sizeof(eum);
    d->eim_id = (char *)(uintptr_t) "eim.example.test";
    d->has_assoc_token = true;
    d->assoc_token = 7;
    d->psk_identity = (char *)(uintptr_t)psk_id;
    d->psk_key = psk_id ? key : NULL;
    d->psk_key_len = psk_id ? sizeof(key) : 0;
    d->has_cert_fpr = true;
    memset(d->cert_fpr, 0xAB, sizeof(d->cert_fpr));
    d->profiles_json =
        (char *)(uintptr_t) "[{\"iccid\":\"8944000000000000001\",\"state\":\"enabled\"}]";
}

/* ---- registry ---- */

void pl_eimconf_registry_crud(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-crud", 0);
    struct pl_eim_device d, d2, got;
    uint8_t unknown[PL_EIM_EID_LEN];
    struct pl_eim_device_summary list[3];
    size_t n = 0, total = 0;
    uint8_t after[PL_EIM_EID_LEN];
    struct pl_eim_audit au[64];
    bool saw_register = false, saw_delete = false;

    fill_device(&d, 1, "dev-1");
    OK(pl_eim_store_device_put(s, "alice", &d));
    EXPECT(pl_eim_store_device_put(s, "alice", &d), PL_ERR_EXISTS);
    fill_device(&d2, 2, "dev-1"); /* same PSK identity as device 1 */
    EXPECT(pl_eim_store_device_put(s, "alice", &d2), PL_ERR_EXISTS);

    OK(pl_eim_store_device_get(s, d.eid, &got));
    cr_assert(memcmp(got.eid, d.eid, PL_EIM_EID_LEN) == 0);
    cr_assert_eq(got.euicc_cert_len, sizeof(cert_a));
    cr_assert(memcmp(got.euicc_cert, cert_a, sizeof(cert_a)) == 0);
    cr_assert_eq(got.eum_cert_len, sizeof(eum));
    cr_assert_str_eq(got.eim_id, "eim.example.test");
    cr_assert(got.has_assoc_token);
    cr_assert_eq(got.assoc_token, 7);
    cr_assert_eq(got.counter, 0);
    cr_assert_str_eq(got.psk_identity, "dev-1");
    cr_assert_eq(got.psk_key_len, 16);
    cr_assert(got.has_cert_fpr);
    cr_assert_eq(got.cert_fpr[31], 0xAB);
    cr_assert_str_eq(got.profiles_json, d.profiles_json);
    cr_assert_null(got.eims_json);
    cr_assert(got.created_ms > 0);
    cr_assert_eq(got.last_seen_ms, 0);
    pl_eim_device_clear(&got);

    mkeid(unknown, 999);
    EXPECT(pl_eim_store_device_get(s, unknown, &got), PL_ERR_NOT_FOUND);
    OK(pl_eim_store_device_find_psk(s, "dev-1", &got));
    cr_assert(memcmp(got.eid, d.eid, PL_EIM_EID_LEN) == 0);
    pl_eim_device_clear(&got);
    EXPECT(pl_eim_store_device_find_psk(s, "nobody", &got), PL_ERR_NOT_FOUND);

    /* update: association, profiles, last seen; the counter is not the update's business */
    d.eim_id = (char *)(uintptr_t) "eim2.example.test";
    d.has_assoc_token = false;
    d.profiles_json = NULL;
    d.eims_json = (char *)(uintptr_t) "[{\"eimId\":\"eim2.example.test\"}]";
    d.last_seen_ms = 1234567;
    d.counter = 77;
    OK(pl_eim_store_device_update(s, "alice", &d,
                                  PL_EIM_DEV_ASSOCIATION | PL_EIM_DEV_PROFILES | PL_EIM_DEV_EIMS
                                      | PL_EIM_DEV_LAST_SEEN));
    OK(pl_eim_store_device_get(s, d.eid, &got));
    cr_assert_str_eq(got.eim_id, "eim2.example.test");
    cr_assert(!got.has_assoc_token);
    cr_assert_null(got.profiles_json);
    cr_assert_str_eq(got.eims_json, d.eims_json);
    cr_assert_eq(got.last_seen_ms, 1234567);
    cr_assert_eq(got.counter, 0);
    cr_assert_str_eq(got.psk_identity, "dev-1"); /* untouched */
    pl_eim_device_clear(&got);
    memcpy(d2.eid, unknown, PL_EIM_EID_LEN);
    EXPECT(pl_eim_store_device_update(s, "alice", &d2, PL_EIM_DEV_PROFILES), PL_ERR_NOT_FOUND);
    EXPECT(pl_eim_store_device_update(s, "alice", &d, 0), PL_ERR_INVAL);

    /* bad fields are refused before the database sees them */
    fill_device(&d2, 3, NULL);
    d2.eim_id = (char *)(uintptr_t) "";
    EXPECT(pl_eim_store_device_put(s, "alice", &d2), PL_ERR_INVAL);
    fill_device(&d2, 3, NULL);
    d2.euicc_cert_len = PL_EIM_CERT_MAX + 1;
    EXPECT(pl_eim_store_device_put(s, "alice", &d2), PL_ERR_INVAL);
    fill_device(&d2, 3, NULL);
    d2.counter = PL_EIM_COUNTER_DEFAULT_MAX + 1;
    EXPECT(pl_eim_store_device_put(s, "alice", &d2), PL_ERR_INVAL);

    /* list: EID order, paged */
    for (unsigned i = 10; i < 15; i++) {
        fill_device(&d2, i, NULL);
        OK(pl_eim_store_device_put(s, "alice", &d2));
    }
    memset(after, 0, sizeof(after));
    for (int page = 0; page < 10; page++) {
        OK(pl_eim_store_device_list(s, total ? after : NULL, list, 3, &n));
        for (size_t i = 0; i < n; i++) {
            if (total + i > 0)
                cr_assert(memcmp(list[i].eid, after, PL_EIM_EID_LEN) > 0, "list out of order");
            memcpy(after, list[i].eid, PL_EIM_EID_LEN);
            cr_assert(list[i].associated);
        }
        total += n;
        if (n < 3)
            break;
    }
    cr_assert_eq(total, 6);

    /* delete */
    OK(pl_eim_store_device_delete(s, "alice", d.eid));
    EXPECT(pl_eim_store_device_get(s, d.eid, &got), PL_ERR_NOT_FOUND);
    EXPECT(pl_eim_store_device_delete(s, "alice", d.eid), PL_ERR_NOT_FOUND);
    /* the PSK identity is free again */
    fill_device(&d2, 20, "dev-1");
    OK(pl_eim_store_device_put(s, "alice", &d2));

    OK(pl_eim_store_audit_list(s, 0, au, 64, &n));
    cr_assert(n > 0);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            cr_assert(au[i].id > au[i - 1].id);
        if (strcmp(au[i].event, "device.register") == 0 && strcmp(au[i].actor, "alice") == 0)
            saw_register = true;
        if (strcmp(au[i].event, "device.delete") == 0 && au[i].has_eid
            && memcmp(au[i].eid, d.eid, PL_EIM_EID_LEN) == 0)
            saw_delete = true;
    }
    cr_assert(saw_register && saw_delete);
    pl_eim_store_close(s);
}

void pl_eimconf_bulk_put(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-bulk", 0);
    struct pl_eim_device d[4], got;
    enum pl_eim_put_result res[4];

    fill_device(&d[0], 1, NULL);
    OK(pl_eim_store_device_put(s, "station", &d[0]));
    fill_device(&d[1], 2, NULL); /* new */
    fill_device(&d[2], 1, NULL); /* same as registered: unchanged */
    fill_device(&d[3], 1, NULL); /* same EID, another certificate: conflict */
    d[3].euicc_cert = cert_b;
    d[3].euicc_cert_len = sizeof(cert_b);
    OK(pl_eim_store_device_put_many(s, "station", &d[1], 3, res));
    cr_assert_eq(res[0], PL_EIM_PUT_CREATED);
    cr_assert_eq(res[1], PL_EIM_PUT_UNCHANGED);
    cr_assert_eq(res[2], PL_EIM_PUT_CONFLICT);
    OK(pl_eim_store_device_get(s, d[0].eid, &got));
    cr_assert(memcmp(got.euicc_cert, cert_a, sizeof(cert_a)) == 0); /* not overwritten */
    pl_eim_device_clear(&got);

    /* one invalid entry: nothing of the batch is stored */
    fill_device(&d[0], 30, NULL);
    fill_device(&d[1], 31, NULL);
    d[1].eim_id = (char *)(uintptr_t) "";
    EXPECT(pl_eim_store_device_put_many(s, "station", d, 2, res), PL_ERR_INVAL);
    EXPECT(pl_eim_store_device_get(s, d[0].eid, &got), PL_ERR_NOT_FOUND);
    pl_eim_store_close(s);
}

/* ---- queue ---- */

static int64_t enqueue(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                       enum pl_eim_op_kind kind, const char *params)
{
    struct pl_eim_op op;
    int64_t id = 0;
    memset(&op, 0, sizeof(op));
    memcpy(op.eid, eid, PL_EIM_EID_LEN);
    op.kind = kind;
    op.params = (uint8_t *)(uintptr_t)params;
    op.params_len = params ? strlen(params) : 0;
    OK(pl_eim_store_op_enqueue(s, "alice", &op, &id));
    cr_assert(id > 0);
    return id;
}

static void send_with(struct pl_eim_store *s, int64_t id, const char *claimer, uint32_t counter,
                      int want)
{
    static uint8_t pkg[] = {0xBF, 0x51, 0x03, 0x30, 0x01, 0x00};
    struct pl_eim_op sent;
    memset(&sent, 0, sizeof(sent));
    sent.has_counter = counter != 0;
    sent.counter = counter;
    sent.txid[0] = 0x42;
    sent.txid_len = 1;
    sent.package = pkg;
    sent.package_len = sizeof(pkg);
    EXPECT(pl_eim_store_op_mark_sent(s, id, claimer, &sent), want);
}

void pl_eimconf_queue_fifo(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-fifo", 0);
    uint8_t a[PL_EIM_EID_LEN], bb[PL_EIM_EID_LEN], unknown[PL_EIM_EID_LEN];
    int64_t ids[4], idb;
    struct pl_eim_op op;
    struct pl_eim_op_summary sum[8];
    size_t n = 0;

    mkeid(a, 1);
    mkeid(bb, 2);
    mkeid(unknown, 3);
    register_plain(s, a);
    register_plain(s, bb);
    ids[0] = enqueue(s, a, PL_EIM_OP_ENABLE, "{\"iccid\":\"89440000000000000011\"}");
    idb = enqueue(s, bb, PL_EIM_OP_GET_RAT, NULL);
    ids[1] = enqueue(s, a, PL_EIM_OP_DISABLE, "{\"iccid\":\"89440000000000000011\"}");
    ids[2] = enqueue(s, a, PL_EIM_OP_LIST_EIM, NULL);
    cr_assert(ids[0] < idb && idb < ids[1] && ids[1] < ids[2]);

    OK(pl_eim_store_op_get(s, ids[0], &op));
    cr_assert_eq(op.kind, PL_EIM_OP_ENABLE);
    cr_assert_eq(op.state, PL_EIM_OPS_QUEUED);
    cr_assert_str_eq(op.created_by, "alice");
    cr_assert_eq(op.params_len, strlen("{\"iccid\":\"89440000000000000011\"}"));
    cr_assert(!op.has_counter);
    pl_eim_op_clear(&op);

    OK(pl_eim_store_op_list(s, a, 0, sum, 8, &n));
    cr_assert_eq(n, 3);
    cr_assert_eq(sum[0].id, ids[0]);
    cr_assert_eq(sum[1].id, ids[1]);
    cr_assert_eq(sum[2].id, ids[2]);
    cr_assert_eq(sum[2].kind, PL_EIM_OP_LIST_EIM);

    /* FIFO per EID: the head first, one in flight at a time; other EIDs are independent */
    OK(pl_eim_store_op_claim(s, a, "node1", &op));
    cr_assert_eq(op.id, ids[0]);
    cr_assert_eq(op.state, PL_EIM_OPS_CLAIMED);
    cr_assert_str_eq(op.claimed_by, "node1");
    pl_eim_op_clear(&op);
    EXPECT(pl_eim_store_op_claim(s, a, "node2", &op), PL_ERR_NOT_FOUND);
    OK(pl_eim_store_op_claim(s, bb, "node2", &op));
    cr_assert_eq(op.id, idb);
    pl_eim_op_clear(&op);

    /* release keeps the place in the queue */
    EXPECT(pl_eim_store_op_release(s, ids[0], "node2"), PL_ERR_STATE);
    OK(pl_eim_store_op_release(s, ids[0], "node1"));
    EXPECT(pl_eim_store_op_release(s, ids[0], "node1"), PL_ERR_STATE);
    OK(pl_eim_store_op_claim(s, a, "node2", &op));
    cr_assert_eq(op.id, ids[0]);
    pl_eim_op_clear(&op);

    for (int i = 0; i < 3; i++) {
        uint32_t c = 0;
        OK(pl_eim_store_reserve_counter(s, a, &c));
        cr_assert_eq(c, (uint32_t)i + 1);
        send_with(s, ids[i], "node2", c, PL_OK);
        EXPECT(pl_eim_store_op_claim(s, a, "node2", &op), PL_ERR_NOT_FOUND); /* in flight */
        OK(pl_eim_store_op_finish(s, "node2", ids[i], PL_EIM_OPS_DONE,
                                  (const uint8_t *)"\xBF\x51\x00", 3, "ok"));
        if (i < 2) {
            OK(pl_eim_store_op_claim(s, a, "node2", &op));
            cr_assert_eq(op.id, ids[i + 1], "op %d", i);
            pl_eim_op_clear(&op);
        }
    }
    EXPECT(pl_eim_store_op_claim(s, a, "node2", &op), PL_ERR_NOT_FOUND); /* empty */
    OK(pl_eim_store_op_list(s, a, 1u << PL_EIM_OPS_DONE, sum, 8, &n));
    cr_assert_eq(n, 3);
    OK(pl_eim_store_op_list(s, a, 1u << PL_EIM_OPS_QUEUED, sum, 8, &n));
    cr_assert_eq(n, 0);

    EXPECT(pl_eim_store_op_enqueue(
               s, "alice", &(struct pl_eim_op){.kind = PL_EIM_OP_ENABLE, .eid = {0x89}}, &idb),
           PL_ERR_NOT_FOUND);
    {
        struct pl_eim_op bad;
        memset(&bad, 0, sizeof(bad));
        memcpy(bad.eid, a, PL_EIM_EID_LEN);
        bad.kind = (enum pl_eim_op_kind)99;
        EXPECT(pl_eim_store_op_enqueue(s, "alice", &bad, &idb), PL_ERR_INVAL);
    }
    EXPECT(pl_eim_store_op_get(s, 987654321, &op), PL_ERR_NOT_FOUND);
    EXPECT(pl_eim_store_op_claim(s, unknown, "node1", &op), PL_ERR_NOT_FOUND);

    /* deleting the device removes its operations */
    OK(pl_eim_store_device_delete(s, "alice", a));
    EXPECT(pl_eim_store_op_get(s, ids[0], &op), PL_ERR_NOT_FOUND);
    pl_eim_store_close(s);
}

void pl_eimconf_op_transitions(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-trans", 0);
    uint8_t a[PL_EIM_EID_LEN];
    struct pl_eim_op op;
    int64_t id1, id2, id3;
    uint32_t c = 0;

    mkeid(a, 5);
    register_plain(s, a);
    id1 = enqueue(s, a, PL_EIM_OP_DELETE, "{\"iccid\":\"89440000000000000011\"}");
    id2 = enqueue(s, a, PL_EIM_OP_IPA_EUICC_DATA_REQUEST, "{\"tagList\":\"A2\"}");
    id3 = enqueue(s, a, PL_EIM_OP_ADD_EIM, "{}");

    /* only the claimer may send, and only with a counter already reserved for this EID */
    send_with(s, id1, "node1", 1, PL_ERR_STATE); /* not claimed yet */
    OK(pl_eim_store_op_claim(s, a, "node1", &op));
    pl_eim_op_clear(&op);
    send_with(s, id1, "node1", 1, PL_ERR_STATE); /* counter 1 not reserved yet */
    OK(pl_eim_store_reserve_counter(s, a, &c));
    cr_assert_eq(c, 1);
    send_with(s, id1, "node2", c, PL_ERR_STATE); /* not the claimer */
    send_with(s, id1, "node1", c, PL_OK);
    send_with(s, id1, "node1", c, PL_ERR_STATE); /* already sent */
    OK(pl_eim_store_op_get(s, id1, &op));
    cr_assert_eq(op.state, PL_EIM_OPS_SENT);
    cr_assert(op.has_counter);
    cr_assert_eq(op.counter, 1);
    cr_assert_eq(op.txid_len, 1);
    cr_assert_eq(op.package_len, 6);
    cr_assert_eq(op.package[0], 0xBF);
    cr_assert(op.sent_ms > 0);
    pl_eim_op_clear(&op);

    /* sent -> requery -> failed */
    OK(pl_eim_store_op_finish(s, "node1", id1, PL_EIM_OPS_REQUERY, NULL, 0, "result lost"));
    EXPECT(pl_eim_store_op_finish(s, "node1", id1, PL_EIM_OPS_REQUERY, NULL, 0, NULL),
           PL_ERR_STATE);
    OK(pl_eim_store_op_finish(s, "node1", id1, PL_EIM_OPS_FAILED,
                              (const uint8_t *)"\xBF\x51\x01\x00", 4, "replayError"));
    EXPECT(pl_eim_store_op_finish(s, "node1", id1, PL_EIM_OPS_DONE, NULL, 0, "ok"), PL_ERR_STATE);
    OK(pl_eim_store_op_get(s, id1, &op));
    cr_assert_eq(op.state, PL_EIM_OPS_FAILED);
    cr_assert_str_eq(op.outcome, "replayError");
    cr_assert_eq(op.result_len, 4);
    cr_assert(op.done_ms > 0);
    pl_eim_op_clear(&op);

    /* a data request carries no counter; a counter value is never used twice */
    OK(pl_eim_store_op_claim(s, a, "node1", &op));
    cr_assert_eq(op.id, id2);
    pl_eim_op_clear(&op);
    EXPECT(pl_eim_store_op_finish(s, "node1", id2, PL_EIM_OPS_REQUERY, NULL, 0, NULL),
           PL_ERR_STATE); /* requery only after sent */
    send_with(s, id2, "node1", 0, PL_OK);
    OK(pl_eim_store_op_finish(s, "node1", id2, PL_EIM_OPS_DONE, NULL, 0, "ok"));
    OK(pl_eim_store_op_claim(s, a, "node1", &op));
    cr_assert_eq(op.id, id3);
    pl_eim_op_clear(&op);
    send_with(s, id3, "node1", 1, PL_ERR_EXISTS); /* counter 1 went with id1 */
    OK(pl_eim_store_reserve_counter(s, a, &c));
    send_with(s, id3, "node1", c, PL_OK);
    OK(pl_eim_store_op_finish(s, "node1", id3, PL_EIM_OPS_DONE, NULL, 0, "ok"));

    /* a queued operation can be cancelled (failed) and is never claimed */
    id1 = enqueue(s, a, PL_EIM_OP_LIST_PROFILE_INFO, NULL);
    OK(pl_eim_store_op_finish(s, "alice", id1, PL_EIM_OPS_FAILED, NULL, 0, "cancelled"));
    EXPECT(pl_eim_store_op_claim(s, a, "node1", &op), PL_ERR_NOT_FOUND);
    EXPECT(pl_eim_store_op_finish(s, "alice", id1, PL_EIM_OPS_QUEUED, NULL, 0, NULL), PL_ERR_INVAL);
    EXPECT(pl_eim_store_op_finish(s, "alice", 424242, PL_EIM_OPS_DONE, NULL, 0, NULL),
           PL_ERR_NOT_FOUND);
    pl_eim_store_close(s);
}

/* Children of a fork: report through the exit status only, never through Criterion. */
static int child_claim(const struct pl_eimconf_backend *b, const uint8_t eid[PL_EIM_EID_LEN],
                       int go_fd, const char *name)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    struct pl_eim_op op;
    char c = 0;
    int rc;

    memset(&o, 0, sizeof(o));
    snprintf(gp, sizeof(gp), "%s/g-claim", b->dir);
    o.guard_path = gp;
    if (b->open(b->ctx, 0, &o, &s) != PL_OK)
        return 3;
    if (read(go_fd, &c, 1) != 1)
        return 4;
    rc = pl_eim_store_op_claim(s, eid, name, &op);
    pl_eim_op_clear(&op);
    pl_eim_store_close(s);
    return rc == PL_OK ? 0 : rc == PL_ERR_NOT_FOUND ? 1 : 2;
}

void pl_eimconf_claim_one_wins(const struct pl_eimconf_backend *b)
{
    enum { K = 4 };
    struct pl_eim_store *s = open_store(b, "g-claim", 0);
    uint8_t a[PL_EIM_EID_LEN];
    int go[2];
    pid_t pids[K];
    int wins = 0, losses = 0, winner = -1;
    struct pl_eim_op op;
    int64_t id;
    char name[32];

    mkeid(a, 9);
    register_plain(s, a);
    id = enqueue(s, a, PL_EIM_OP_ENABLE, "{}");
    (void)enqueue(s, a, PL_EIM_OP_DISABLE, "{}"); /* must not be claimed beside the first */
    cr_assert_eq(pipe(go), 0);
    for (int i = 0; i < K; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            close(go[1]);
            snprintf(name, sizeof(name), "claimer%d", i);
            _exit(child_claim(b, a, go[0], name));
        }
    }
    close(go[0]);
    cr_assert_eq(write(go[1], "GGGG", K), K); /* let all of them go at once */
    close(go[1]);
    for (int i = 0; i < K; i++) {
        int st = 0;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st));
        if (WEXITSTATUS(st) == 0) {
            wins++;
            winner = i;
        } else if (WEXITSTATUS(st) == 1) {
            losses++;
        } else {
            cr_assert_fail("claimer %d failed with status %d", i, WEXITSTATUS(st));
        }
    }
    cr_assert_eq(wins, 1);
    cr_assert_eq(losses, K - 1);
    OK(pl_eim_store_op_get(s, id, &op));
    snprintf(name, sizeof(name), "claimer%d", winner);
    cr_assert_eq(op.state, PL_EIM_OPS_CLAIMED);
    cr_assert_str_eq(op.claimed_by, name);
    pl_eim_op_clear(&op);
    pl_eim_store_close(s);
}

/* ---- counters ---- */

void pl_eimconf_counter_basics(const struct pl_eimconf_backend *b)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    struct pl_eim_device d, got;
    uint8_t unknown[PL_EIM_EID_LEN];
    uint32_t c = 0;

    memset(&o, 0, sizeof(o));
    guard_path(b, "g-basic", gp, sizeof(gp));
    o.guard_path = gp;
    o.counter_max = 5;
    OK(b->open(b->ctx, 0, &o, &s));
    /* a device registered with its configured initial counterValue continues from it */
    memset(&d, 0, sizeof(d));
    mkeid(d.eid, 1);
    d.counter = 3;
    OK(pl_eim_store_device_put(s, "t", &d));
    OK(pl_eim_store_reserve_counter(s, d.eid, &c));
    cr_assert_eq(c, 4);
    OK(pl_eim_store_reserve_counter(s, d.eid, &c));
    cr_assert_eq(c, 5);
    EXPECT(pl_eim_store_reserve_counter(s, d.eid, &c), PL_ERR_OVERFLOW);
    OK(pl_eim_store_device_get(s, d.eid, &got));
    cr_assert_eq(got.counter, 5);
    pl_eim_device_clear(&got);
    mkeid(unknown, 4242);
    EXPECT(pl_eim_store_reserve_counter(s, unknown, &c), PL_ERR_NOT_FOUND);
    pl_eim_store_close(s);

    /* without a guard the store refuses to open, unless told it is a test of the store */
    memset(&o, 0, sizeof(o));
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_CONFIG);
}

#define HAMMER_N 120

/* Reserves HAMMER_N values and writes each to fd. */
static int hammer(const struct pl_eimconf_backend *b, const uint8_t eid[PL_EIM_EID_LEN], int fd,
                  const char *guard)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    int rc = 0;

    memset(&o, 0, sizeof(o));
    snprintf(gp, sizeof(gp), "%s/%s", b->dir, guard);
    o.guard_path = gp;
    o.guard_block = 0; /* the default (1): every reservation writes the guard, racing */
    if (b->open(b->ctx, 0, &o, &s) != PL_OK)
        return 3;
    for (int i = 0; i < HAMMER_N; i++) {
        uint32_t c = 0;
        if (pl_eim_store_reserve_counter(s, eid, &c) != PL_OK) {
            rc = 2;
            break;
        }
        if (write(fd, &c, sizeof(c)) != (ssize_t)sizeof(c)) {
            rc = 4;
            break;
        }
    }
    pl_eim_store_close(s);
    return rc;
}

/* Values from two reservers: each strictly increasing, none repeated, and here (every
 * reservation commits, none is abandoned) no gaps either: exactly 1..2N. */
static void check_values(const uint32_t *v1, size_t n1, const uint32_t *v2, size_t n2)
{
    static uint8_t seen[2 * HAMMER_N + 1];
    cr_assert_eq(n1, HAMMER_N);
    cr_assert_eq(n2, HAMMER_N);
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < n1; i++) {
        if (i > 0)
            cr_assert(v1[i] > v1[i - 1], "reserver 1 went back: %u after %u", v1[i], v1[i - 1]);
        cr_assert(v1[i] >= 1 && v1[i] <= 2 * HAMMER_N);
        cr_assert_eq(seen[v1[i]], 0, "value %u handed out twice", v1[i]);
        seen[v1[i]] = 1;
    }
    for (size_t i = 0; i < n2; i++) {
        if (i > 0)
            cr_assert(v2[i] > v2[i - 1], "reserver 2 went back: %u after %u", v2[i], v2[i - 1]);
        cr_assert(v2[i] >= 1 && v2[i] <= 2 * HAMMER_N);
        cr_assert_eq(seen[v2[i]], 0, "value %u handed out twice", v2[i]);
        seen[v2[i]] = 1;
    }
}

static size_t read_values(int fd, uint32_t *out, size_t cap)
{
    size_t got = 0;
    uint8_t *p = (uint8_t *)out;
    for (;;) {
        ssize_t r = read(fd, p + got, cap * sizeof(uint32_t) - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == cap * sizeof(uint32_t))
            break;
    }
    return got / sizeof(uint32_t);
}

void pl_eimconf_counter_processes(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-proc", 0);
    uint8_t a[PL_EIM_EID_LEN];
    int p1[2], p2[2];
    pid_t c1, c2;
    int st1 = 0, st2 = 0;
    static uint32_t v1[HAMMER_N], v2[HAMMER_N];
    size_t n1, n2;
    struct pl_eim_device got;

    mkeid(a, 11);
    register_plain(s, a);
    pl_eim_store_close(s);
    cr_assert_eq(pipe(p1), 0);
    cr_assert_eq(pipe(p2), 0);
    c1 = fork();
    cr_assert(c1 >= 0);
    if (c1 == 0) {
        close(p1[0]);
        close(p2[0]);
        close(p2[1]);
        _exit(hammer(b, a, p1[1], "g-proc"));
    }
    c2 = fork();
    cr_assert(c2 >= 0);
    if (c2 == 0) {
        close(p2[0]);
        close(p1[0]);
        close(p1[1]);
        _exit(hammer(b, a, p2[1], "g-proc"));
    }
    close(p1[1]);
    close(p2[1]);
    n1 = read_values(p1[0], v1, HAMMER_N);
    n2 = read_values(p2[0], v2, HAMMER_N);
    cr_assert_eq(waitpid(c1, &st1, 0), c1);
    cr_assert_eq(waitpid(c2, &st2, 0), c2);
    cr_assert(WIFEXITED(st1) && WEXITSTATUS(st1) == 0, "reserver 1 status %d", st1);
    cr_assert(WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "reserver 2 status %d", st2);
    check_values(v1, n1, v2, n2);
    s = open_store(b, "g-proc", 0);
    OK(pl_eim_store_device_get(s, a, &got));
    cr_assert_eq(got.counter, 2 * HAMMER_N);
    pl_eim_device_clear(&got);
    pl_eim_store_close(s);
}

struct hammer_arg {
    const struct pl_eimconf_backend *b;
    const uint8_t *eid;
    uint32_t values[HAMMER_N];
    size_t n;
    int rc;
};

static void *hammer_thread(void *p)
{
    struct hammer_arg *h = p;
    int fds[2];
    if (pipe(fds) != 0) {
        h->rc = 5;
        return NULL;
    }
    /* HAMMER_N * 4 bytes fit in a pipe buffer: no reader needed while writing */
    h->rc = hammer(h->b, h->eid, fds[1], "g-thr");
    close(fds[1]);
    h->n = read_values(fds[0], h->values, HAMMER_N);
    close(fds[0]);
    return NULL;
}

void pl_eimconf_counter_threads(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-thr", 0);
    uint8_t a[PL_EIM_EID_LEN];
    static struct hammer_arg h1, h2;
    pthread_t t1, t2;

    mkeid(a, 12);
    register_plain(s, a);
    pl_eim_store_close(s);
    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    h1.b = h2.b = b;
    h1.eid = h2.eid = a;
    cr_assert_eq(pthread_create(&t1, NULL, hammer_thread, &h1), 0);
    cr_assert_eq(pthread_create(&t2, NULL, hammer_thread, &h2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(h1.rc, 0);
    cr_assert_eq(h2.rc, 0);
    check_values(h1.values, h1.n, h2.values, h2.n);
}

static uint32_t reserve(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN])
{
    uint32_t c = 0;
    OK(pl_eim_store_reserve_counter(s, eid, &c));
    return c;
}

void pl_eimconf_counter_restore(const struct pl_eimconf_backend *b)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    uint8_t a[PL_EIM_EID_LEN], other[PL_EIM_EID_LEN];
    uint32_t last = 0, c = 0, other_last = 0;
    uint64_t bumped = 0;

    mkeid(a, 21);
    mkeid(other, 22);
    s = open_store(b, "g-restore", 0);
    register_plain(s, a);
    register_plain(s, other);
    for (int i = 0; i < 3; i++)
        last = reserve(s, a);
    other_last = reserve(s, other);
    cr_assert_eq(last, 3);
    pl_eim_store_close(s);
    OK(b->snapshot(b->ctx)); /* the backup: counter of a = 3 */

    s = open_store(b, "g-restore", 0);
    for (int i = 0; i < 10; i++)
        last = reserve(s, a); /* 4..13 go out after the backup */
    cr_assert_eq(last, 13);
    pl_eim_store_close(s);

    OK(b->restore(b->ctx)); /* the database is back at counter 3 */
    memset(&o, 0, sizeof(o));
    guard_path(b, "g-restore", gp, sizeof(gp));
    o.guard_path = gp;
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_REPLAY);

    o.for_recovery = true;
    OK(b->open(b->ctx, 0, &o, &s));
    EXPECT(pl_eim_store_reserve_counter(s, a, &c), PL_ERR_REPLAY); /* refused until recovered */
    OK(pl_eim_store_counter_recover(s, "admin", NULL, 0, &bumped));
    cr_assert(bumped >= 1);
    c = reserve(s, a);
    cr_assert(c > last, "counter %u reused after restore (last handed out: %u)", c, last);
    cr_assert(reserve(s, other) > other_last);
    pl_eim_store_close(s);

    /* recovered: an ordinary open works again and values keep increasing */
    o.for_recovery = false;
    OK(b->open(b->ctx, 0, &o, &s));
    cr_assert(reserve(s, a) > c);
    pl_eim_store_close(s);

    /* restoring the same old backup again is caught again */
    OK(b->restore(b->ctx));
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_REPLAY);
}

void pl_eimconf_counter_restore_two_nodes(const struct pl_eimconf_backend *b)
{
    char g1[512], g2[512];
    const char *others[1];
    struct pl_eim_store_options o1, o2;
    struct pl_eim_store *n1 = NULL, *n2 = NULL;
    uint8_t a[PL_EIM_EID_LEN];
    uint32_t last = 0, c = 0;
    uint64_t bumped = 0;

    mkeid(a, 31);
    guard_path(b, "g-node1", g1, sizeof(g1));
    guard_path(b, "g-node2", g2, sizeof(g2));
    memset(&o1, 0, sizeof(o1));
    o1.guard_path = g1;
    o2 = o1;
    o2.guard_path = g2;
    OK(b->open(b->ctx, 0, &o1, &n1));
    register_plain(n1, a);
    last = reserve(n1, a);
    /* node 2 joins a database in use: its new guard must be allowed explicitly */
    EXPECT(b->open(b->ctx, 0, &o2, &n2), PL_ERR_CONFIG);
    o2.guard_create = true;
    OK(b->open(b->ctx, 0, &o2, &n2));
    o2.guard_create = false;
    pl_eim_store_close(n1);
    pl_eim_store_close(n2);
    OK(b->snapshot(b->ctx));
    /* after the backup, node 2 alone hands out many values; node 1 never sees them */
    OK(b->open(b->ctx, 0, &o2, &n2));
    for (int i = 0; i < 20; i++)
        last = reserve(n2, a);
    pl_eim_store_close(n2);
    OK(b->restore(b->ctx));
    /* recovering with every node's guard puts the counter above all of them */
    o1.for_recovery = true;
    OK(b->open(b->ctx, 0, &o1, &n1));
    others[0] = g2;
    OK(pl_eim_store_counter_recover(n1, "admin", others, 1, &bumped));
    c = reserve(n1, a);
    cr_assert(c > last, "counter %u reused (node 2 handed out up to %u)", c, last);
    pl_eim_store_close(n1);
    /* node 2 opens normally after the recovery */
    OK(b->open(b->ctx, 0, &o2, &n2));
    cr_assert(reserve(n2, a) > c);
    pl_eim_store_close(n2);
}

void pl_eimconf_guard_mismatch(const struct pl_eimconf_backend *b)
{
    char gp[512], other_gp[512], missing[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    uint8_t a[PL_EIM_EID_LEN];
    FILE *f = NULL;

    mkeid(a, 41);
    s = open_store(b, "g-mm", 0);
    register_plain(s, a);
    (void)reserve(s, a);
    pl_eim_store_close(s);

    memset(&o, 0, sizeof(o));
    /* a guard that belongs to another database */
    guard_path(b, "g-other", other_gp, sizeof(other_gp));
    o.guard_path = other_gp;
    OK(b->open(b->ctx, 1, &o, &s));
    pl_eim_store_close(s);
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_CONFIG);
    /* no guard for a database that has handed out counters */
    guard_path(b, "g-missing", missing, sizeof(missing));
    o.guard_path = missing;
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_CONFIG);
    /* a damaged guard */
    guard_path(b, "g-mm", gp, sizeof(gp));
    f = fopen(gp, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 40, SEEK_SET), 0);
    cr_assert_eq(fputc(0x5A, f), 0x5A);
    fclose(f);
    o.guard_path = gp;
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_MALFORMED);
    /* a truncated one */
    f = fopen(gp, "wb");
    cr_assert_not_null(f);
    fputs("PLEIMCG1", f);
    fclose(f);
    EXPECT(b->open(b->ctx, 0, &o, &s), PL_ERR_MALFORMED);
}

/* ---- notifications ---- */

void pl_eimconf_notifications(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-notif", 0);
    struct pl_eim_notification n, list[8];
    uint8_t data1[] = {0xBF, 0x2F, 0x02, 0x80, 0x05};
    uint8_t data2[] = {0xBF, 0x2F, 0x02, 0x80, 0x06};
    bool ins = false;
    size_t cnt = 0;

    memset(&n, 0, sizeof(n));
    mkeid(n.eid, 51); /* need not be registered: notifications may precede registration */
    n.seq = 5;
    n.data = data1;
    n.len = sizeof(data1);
    OK(pl_eim_store_notif_put(s, &n, &ins));
    cr_assert(ins);
    OK(pl_eim_store_notif_put(s, &n, &ins));
    cr_assert(!ins); /* the same notification again: idempotent */
    n.data = data2;
    EXPECT(pl_eim_store_notif_put(s, &n, &ins), PL_ERR_EXISTS); /* same seq, other bytes */
    n.seq = 3;
    OK(pl_eim_store_notif_put(s, &n, &ins));
    cr_assert(ins);
    n.len = 0;
    EXPECT(pl_eim_store_notif_put(s, &n, &ins), PL_ERR_INVAL);

    OK(pl_eim_store_notif_list(s, n.eid, false, list, 8, &cnt));
    cr_assert_eq(cnt, 2);
    cr_assert_eq(list[0].seq, 3);
    cr_assert_eq(list[1].seq, 5);
    cr_assert_eq(list[1].len, sizeof(data1));
    cr_assert(memcmp(list[1].data, data1, sizeof(data1)) == 0);
    cr_assert(!list[0].acked && !list[1].acked);
    for (size_t i = 0; i < cnt; i++)
        pl_eim_notification_clear(&list[i]);
    OK(pl_eim_store_notif_ack(s, n.eid, 5));
    EXPECT(pl_eim_store_notif_ack(s, n.eid, 99), PL_ERR_NOT_FOUND);
    OK(pl_eim_store_notif_list(s, n.eid, true, list, 8, &cnt));
    cr_assert_eq(cnt, 1);
    cr_assert_eq(list[0].seq, 3);
    pl_eim_notification_clear(&list[0]);
    /* a repeat of an acknowledged notification does not reopen it */
    n.seq = 5;
    n.data = data1;
    n.len = sizeof(data1);
    OK(pl_eim_store_notif_put(s, &n, &ins));
    cr_assert(!ins);
    OK(pl_eim_store_notif_list(s, n.eid, true, list, 8, &cnt));
    cr_assert_eq(cnt, 1);
    pl_eim_notification_clear(&list[0]);
    pl_eim_store_close(s);
}

/* ---- operators ---- */

void pl_eimconf_operator_tokens(const struct pl_eimconf_backend *b)
{
    struct pl_eim_store *s = open_store(b, "g-op", 0);
    char t1[PL_EIM_TOKEN_MAX], t2[PL_EIM_TOKEN_MAX], bad[PL_EIM_TOKEN_MAX], id[17];
    struct pl_eim_operator op;
    size_t len;

    OK(pl_eim_store_operator_put(s, "root", "alice", PL_EIM_ROLE_OPERATOR));
    OK(pl_eim_store_token_create(s, "root", "alice", t1, sizeof(t1)));
    len = strlen(t1);
    cr_assert_eq(len, 66);
    cr_assert(strncmp(t1, "pleim_", 6) == 0);
    OK(pl_eim_store_token_auth(s, t1, &op));
    cr_assert_str_eq(op.name, "alice");
    cr_assert_eq(op.role, PL_EIM_ROLE_OPERATOR);

    /* a wrong secret, a malformed token, an unknown id: all the same answer */
    memcpy(bad, t1, len + 1);
    bad[len - 1] = bad[len - 1] == 'A' ? 'B' : 'A';
    EXPECT(pl_eim_store_token_auth(s, bad, &op), PL_ERR_DENIED);
    cr_assert_str_eq(op.name, "");
    EXPECT(pl_eim_store_token_auth(s, "pleim_nothing", &op), PL_ERR_DENIED);
    EXPECT(pl_eim_store_token_auth(s, "", &op), PL_ERR_DENIED);
    EXPECT(pl_eim_store_token_auth(s, NULL, &op), PL_ERR_DENIED);
    memcpy(bad, t1, len + 1);
    bad[6] = bad[6] == '0' ? '1' : '0';
    EXPECT(pl_eim_store_token_auth(s, bad, &op), PL_ERR_DENIED);
    memcpy(bad, t1, len + 1);
    bad[len - 1] = '!';
    EXPECT(pl_eim_store_token_auth(s, bad, &op), PL_ERR_DENIED);

    EXPECT(pl_eim_store_token_create(s, "root", "mallory", t2, sizeof(t2)), PL_ERR_NOT_FOUND);
    EXPECT(pl_eim_store_operator_put(s, "root", "bad name", PL_EIM_ROLE_READER), PL_ERR_INVAL);
    EXPECT(pl_eim_store_operator_put(s, "root", "bob", (enum pl_eim_role)0), PL_ERR_INVAL);

    /* a role change applies to existing tokens; each token can be revoked alone */
    OK(pl_eim_store_operator_put(s, "root", "alice", PL_EIM_ROLE_READER));
    OK(pl_eim_store_token_auth(s, t1, &op));
    cr_assert_eq(op.role, PL_EIM_ROLE_READER);
    OK(pl_eim_store_token_create(s, "root", "alice", t2, sizeof(t2)));
    cr_assert_str_neq(t1, t2);
    memcpy(id, t1 + 6, 16);
    id[16] = '\0';
    OK(pl_eim_store_token_revoke(s, "root", id));
    EXPECT(pl_eim_store_token_auth(s, t1, &op), PL_ERR_DENIED);
    OK(pl_eim_store_token_auth(s, t2, &op));
    EXPECT(pl_eim_store_token_revoke(s, "root", id), PL_ERR_NOT_FOUND);
    OK(pl_eim_store_token_revoke(s, "root", t2)); /* a whole token names its id too */
    EXPECT(pl_eim_store_token_auth(s, t2, &op), PL_ERR_DENIED);
    EXPECT(pl_eim_store_token_revoke(s, "root", "zz"), PL_ERR_INVAL);
    pl_eim_store_close(s);
}

/* The restores a coarse detector would miss: one reservation lost, and a restore inside a
 * guard block. Neither may hand a value out twice. */
void pl_eimconf_counter_restore_small(const struct pl_eimconf_backend *b)
{
    char gp[512];
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    uint8_t a[PL_EIM_EID_LEN], c2[PL_EIM_EID_LEN];
    uint32_t last = 0, v = 0;
    uint64_t bumped = 0;

    mkeid(a, 61);
    mkeid(c2, 62);
    /* default block: exactly one reservation after the backup */
    s = open_store(b, "g-small", 0);
    register_plain(s, a);
    (void)reserve(s, a);
    (void)reserve(s, a);
    pl_eim_store_close(s);
    OK(b->snapshot(b->ctx));
    s = open_store(b, "g-small", 0);
    last = reserve(s, a);
    cr_assert_eq(last, 3);
    pl_eim_store_close(s);
    OK(b->restore(b->ctx));
    s = open_store(b, "g-small", 0); /* settles: the lost value is skipped */
    v = reserve(s, a);
    cr_assert(v > last, "counter %u reused (last handed out %u)", v, last);
    pl_eim_store_close(s);

    /* a block of 16: a clean reopen may skip values (gaps), a restore never reuses one */
    memset(&o, 0, sizeof(o));
    guard_path(b, "g-block", gp, sizeof(gp));
    o.guard_path = gp;
    o.guard_block = 16;
    o.guard_create = true; /* a second guard on a database in use */
    OK(b->open(b->ctx, 0, &o, &s));
    register_plain(s, c2);
    (void)reserve(s, c2);
    pl_eim_store_close(s);
    OK(b->snapshot(b->ctx));
    s = open_store(b, "g-block", 16);
    last = reserve(s, c2);
    pl_eim_store_close(s);
    OK(b->restore(b->ctx));
    o.guard_create = false;
    o.for_recovery = true;
    OK(b->open(b->ctx, 0, &o, &s));
    v = 0;
    if (pl_eim_store_reserve_counter(s, c2, &v) == PL_ERR_REPLAY) {
        OK(pl_eim_store_counter_recover(s, "admin", NULL, 0, &bumped));
        v = reserve(s, c2);
    }
    cr_assert(v > last, "counter %u reused inside a guard block (last handed out %u)", v, last);
    pl_eim_store_close(s);
}
