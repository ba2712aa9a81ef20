/* Unit tests: station <-> Key Maker frame decoding and checks (protocol/proto/km_msg.h,
 * docs/station-keymaker-protocol.md §4). Seeds in tests/fuzz/corpus/keymaker_msg/. */
#include "pl_test.h"
#include "provline/proto/km_msg.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *seed(const char *name, size_t *len)
{
    char rel[256], path[512];
    snprintf(rel, sizeof(rel), "tests/fuzz/corpus/keymaker_msg/%s.bin", name);
    uint8_t *b = pl_test_read_file(pl_test_src(path, sizeof(path), rel), len);
    cr_assert_not_null(b, "%s", path);
    return b;
}

static provline_keymaker_Msg *new_msg(void)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    return m;
}

Test(km_msg, every_valid_seed_decodes)
{
    static const struct {
        const char *name;
        unsigned body;
    } ok[] = {
        {"hello", PL_KM_HELLO},
        {"hello_ack", PL_KM_HELLO_ACK},
        {"otk_upload", PL_KM_OTK_UPLOAD},
        {"otk_upload_result", PL_KM_OTK_UPLOAD_RESULT},
        {"lease_jit", PL_KM_LEASE_REQUEST},
        {"lease_prefetch", PL_KM_LEASE_REQUEST},
        {"lease", PL_KM_LEASE},
        {"ack", PL_KM_ACK},
        {"ack_result", PL_KM_ACK_RESULT},
        {"report_pir", PL_KM_REPORT},
        {"report_fpa", PL_KM_REPORT},
        {"report_ack", PL_KM_REPORT_ACK},
        {"report_audit", PL_KM_REPORT},             /* v2 */
        {"report_ack_checkpoint", PL_KM_REPORT_ACK}, /* v2 */
        {"report_ack_fork", PL_KM_REPORT_ACK},       /* v2 */
        {"token_request", PL_KM_TOKEN_REQUEST},
        {"token", PL_KM_TOKEN},
        {"error", PL_KM_ERROR},
        {"receipt", PL_KM_RECEIPT},
        {"receipt_ack", PL_KM_RECEIPT_ACK},
    };
    provline_keymaker_Msg *m = new_msg();
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len;
        uint8_t *b = seed(ok[i].name, &len);
        cr_assert_eq(pl_km_msg_decode(b, len, m), PL_OK, "%s", ok[i].name);
        cr_assert_eq(m->which_body, ok[i].body, "%s", ok[i].name);
        cr_assert_eq(m->msg_id.size, 16);
        /* re-encoding is byte-identical for these canonical seeds */
        struct pl_wr w;
        pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
        cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK, "%s", ok[i].name);
        cr_assert_eq(w.len, len, "%s", ok[i].name);
        cr_assert_eq(memcmp(w.buf, b, len), 0, "%s", ok[i].name);
        pl_wr_free(&w);
        pl_km_msg_release(m);
        free(b);
    }
    free(m);
}

Test(km_msg, malformed_seeds_refused)
{
    const char *bad[] = {"empty", "truncated", "short_id"};
    provline_keymaker_Msg *m = new_msg();
    for (size_t i = 0; i < 3; i++) {
        size_t len;
        uint8_t *b = seed(bad[i], &len);
        cr_assert_neq(pl_km_msg_decode(b, len, m), PL_OK, "%s", bad[i]);
        cr_assert_eq(m->which_body, 0);
        free(b);
    }
    free(m);
}

/* Build a valid message, break one field, check encode and decode both refuse it. */
static provline_keymaker_Msg *base(unsigned body)
{
    provline_keymaker_Msg *m = new_msg();
    m->version = PL_KM_VERSION;
    m->msg_id.size = 16;
    memset(m->msg_id.bytes, 0x42, 16);
    m->which_body = (pb_size_t)body;
    return m;
}

static void expect_refused(provline_keymaker_Msg *m, int err)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_check(m), err);
    cr_assert_eq(pl_km_msg_encode(m, &w), err);
    pl_wr_free(&w);
}

static void fill_upload(provline_keymaker_Msg *m)
{
    provline_keymaker_OtkUpload *u = &m->body.otk_upload;
    u->eid.size = 16;
    u->cert_euicc.size = 1;
    u->cert_eum.size = 1;
    u->otks_count = 2;
    for (int i = 0; i < 2; i++) {
        u->otks[i].otk_id = (uint32_t)(i + 1);
        u->otks[i].otpk.size = 65;
        u->otks[i].otpk.bytes[0] = 0x04;
        u->otks[i].sig.size = 64;
    }
}

Test(km_msg, field_rules)
{
    provline_keymaker_Msg *m = base(PL_KM_OTK_UPLOAD);
    fill_upload(m);
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    m->version = PL_KM_VERSION + 1u;
    expect_refused(m, PL_ERR_UNSUPPORTED);
    m->version = 0;
    expect_refused(m, PL_ERR_UNSUPPORTED);
    m->version = 1; /* still decoded */
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    m->msg_id.size = 15;
    expect_refused(m, PL_ERR_MALFORMED);
    m->msg_id.size = 16;
    m->reply_to.size = 3;
    expect_refused(m, PL_ERR_MALFORMED);
    m->reply_to.size = 0;
    m->body.otk_upload.otks[1].otk_id = 1; /* duplicate otkId */
    expect_refused(m, PL_ERR_MALFORMED);
    m->body.otk_upload.otks[1].otk_id = 0x10000; /* out of u16 */
    expect_refused(m, PL_ERR_MALFORMED);
    m->body.otk_upload.otks[1].otk_id = 2;
    m->body.otk_upload.otks[1].otpk.bytes[0] = 0x02; /* compressed point */
    expect_refused(m, PL_ERR_MALFORMED);
    m->body.otk_upload.otks[1].otpk.bytes[0] = 0x04;
    m->body.otk_upload.otks[1].sig.size = 63;
    expect_refused(m, PL_ERR_MALFORMED);
    m->body.otk_upload.otks[1].sig.size = 64;
    m->body.otk_upload.eid.size = 10;
    expect_refused(m, PL_ERR_MALFORMED);
    m->body.otk_upload.eid.size = 16;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    free(m);

    m = base(PL_KM_LEASE_REQUEST);
    provline_keymaker_LeaseRequest *q = &m->body.lease_request;
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    q->eid.size = 16;
    q->otk_id = 0;
    expect_refused(m, PL_ERR_MALFORMED);
    q->otk_id = 7;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_UNSPECIFIED;
    expect_refused(m, PL_ERR_MALFORMED);
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_PREFETCH; /* needs eids, no eid */
    expect_refused(m, PL_ERR_MALFORMED);
    q->eid.size = 0;
    q->otk_id = 0;
    q->eids_count = 1;
    q->eids[0].size = 16;
    q->max_packages = 9;
    expect_refused(m, PL_ERR_MALFORMED);
    q->max_packages = 8;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    free(m);

    m = base(PL_KM_HELLO);
    strcpy(m->body.hello.station_id, "st\x01");
    expect_refused(m, PL_ERR_MALFORMED);
    strcpy(m->body.hello.station_id, "st-1");
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    m->which_body = 0;
    expect_refused(m, PL_ERR_MALFORMED);
    free(m);

    m = base(PL_KM_REPORT);
    provline_keymaker_Report *r = &m->body.report;
    r->entries_count = 1;
    r->entries[0].package_id.size = 16;
    r->entries[0].transaction_id.size = 16;
    r->entries[0].eid.size = 16;
    expect_refused(m, PL_ERR_MALFORMED); /* no outcome */
    r->entries[0].which_outcome = provline_keymaker_ReportEntry_released_tag;
    r->entries[0].outcome.released = true;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    r->audit_head.size = 31;
    expect_refused(m, PL_ERR_MALFORMED);
    free(m);
}

Test(km_msg, lease_envelope_pointer_roundtrip)
{
    provline_keymaker_Msg *m = base(PL_KM_LEASE);
    provline_keymaker_Lease *l = &m->body.lease;
    l->lease_id.size = 16;
    l->packages_count = 1;
    provline_keymaker_Package *p = &l->packages[0];
    p->package_id.size = 16;
    p->eid.size = 16;
    p->otk_id = 3;
    p->transaction_id.size = 16;
    p->iccid.size = 10;
    expect_refused(m, PL_ERR_MALFORMED); /* no envelope */
    size_t n = 40000;
    pb_bytes_array_t *env = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(n));
    cr_assert_not_null(env);
    env->size = (pb_size_t)n;
    for (size_t i = 0; i < n; i++)
        env->bytes[i] = (uint8_t)i;
    p->envelope = env;
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK);
    provline_keymaker_Msg *d = new_msg();
    cr_assert_eq(pl_km_msg_decode(w.buf, w.len, d), PL_OK);
    cr_assert_eq(d->body.lease.packages[0].envelope->size, n);
    cr_assert_eq(memcmp(d->body.lease.packages[0].envelope->bytes, env->bytes, n), 0);
    pl_km_msg_release(d);
    cr_assert_null(d->body.lease.packages[0].envelope);
    pl_km_msg_release(d); /* idempotent */
    free(d);
    pl_wr_free(&w);
    free(env);
    free(m);
}

Test(km_msg, oversized_frame_refused)
{
    size_t n = PL_KM_FRAME_MAX + 1;
    uint8_t *b = calloc(1, n);
    provline_keymaker_Msg *m = new_msg();
    cr_assert_eq(pl_km_msg_decode(b, n, m), PL_ERR_OVERFLOW);
    free(b);
    free(m);
}

/* ---------------------------------------------- version 2: audit checkpoints ---- */

static provline_keymaker_Msg *audit_report(void)
{
    provline_keymaker_Msg *m = base(PL_KM_REPORT);
    provline_keymaker_Report *r = &m->body.report;
    r->entries_count = 1;
    r->entries[0].package_id.size = 16;
    r->entries[0].transaction_id.size = 16;
    r->entries[0].eid.size = 16;
    r->entries[0].which_outcome = provline_keymaker_ReportEntry_released_tag;
    r->entries[0].outcome.released = true;
    struct pl_km_audit_head a;
    memset(a.chain_id, 0xc1, sizeof(a.chain_id));
    memset(a.h, 0x4a, sizeof(a.h));
    a.seq = 41;
    cr_assert_eq(pl_km_report_set_audit(r, &a), PL_OK);
    cr_assert_eq(r->audit_seq, 41);
    cr_assert_eq(r->audit_chain_id.size, 16);
    cr_assert_eq(r->audit_head.size, 32);
    cr_assert_eq(pl_km_report_set_audit(r, NULL), PL_ERR_INVAL);
    return m;
}

Test(km_msg, report_audit_fields)
{
    provline_keymaker_Msg *m = audit_report();
    provline_keymaker_Report *r = &m->body.report;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    r->audit_chain_id.size = 15;
    expect_refused(m, PL_ERR_MALFORMED);
    r->audit_chain_id.size = 16;
    r->audit_head.size = 0; /* a chain id asks to sign a head: none given */
    expect_refused(m, PL_ERR_MALFORMED);
    r->audit_head.size = 32;
    r->audit_seq = (uint64_t)INT64_MAX + 1u;
    expect_refused(m, PL_ERR_MALFORMED);
    r->audit_seq = 0; /* the anchor of an empty trail */
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    m->version = 1; /* version 1 has no chain id */
    expect_refused(m, PL_ERR_MALFORMED);
    r->audit_chain_id.size = 0;
    cr_assert_eq(pl_km_msg_check(m), PL_OK); /* v1: the head alone */
    m->version = PL_KM_VERSION;
    r->audit_seq = 5; /* a seq without its chain */
    expect_refused(m, PL_ERR_MALFORMED);
    free(m);
}

static struct pl_eckey *gen_key(void)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &k), PL_OK);
    return k;
}

Test(km_msg, checkpoint_sign_verify_and_ack_rules)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *k = gen_key(), *other = gen_key();
    uint8_t station[32], tbs[PL_KM_CHECKPOINT_TBS_LEN];
    struct pl_km_audit_head a;
    memset(station, 0x5e, sizeof(station));
    memset(a.chain_id, 0xc1, sizeof(a.chain_id));
    memset(a.h, 0x4a, sizeof(a.h));
    a.seq = 0x0102030405060708ull;

    /* The signed bytes: label, station key, chain id, seq big-endian, head. */
    pl_km_checkpoint_tbs(station, a.chain_id, a.seq, a.h, tbs);
    cr_assert_eq(sizeof(tbs), 116);
    cr_assert_eq(memcmp(tbs, "provline-audit-checkpoint-v2", 28), 0);
    cr_assert_eq(memcmp(tbs + 28, station, 32), 0);
    cr_assert_eq(memcmp(tbs + 60, a.chain_id, 16), 0);
    static const uint8_t seq_be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert_eq(memcmp(tbs + 76, seq_be, 8), 0);
    cr_assert_eq(memcmp(tbs + 84, a.h, 32), 0);

    provline_keymaker_Msg *m = base(PL_KM_REPORT_ACK);
    provline_keymaker_ReportAck *ra = &m->body.report_ack;
    provline_keymaker_AuditCheckpoint *cp = &ra->checkpoint;
    cr_assert_eq(pl_km_checkpoint_sign(k, &rng, station, &a, cp), PL_OK);
    ra->has_checkpoint = true;
    cr_assert_eq(pl_km_checkpoint_verify(k, cp), PL_OK);
    cr_assert_eq(pl_km_checkpoint_verify(other, cp), PL_ERR_BAD_SIGNATURE);
    cr_assert_eq(pl_ecdsa_verify(k, tbs, sizeof(tbs), cp->signature.bytes), PL_OK);

    /* Each signed field matters: one bit flipped in any of them and it no longer verifies. */
    uint8_t *fields[] = {(uint8_t *)&cp->seq, cp->station_key.bytes, cp->chain_id.bytes + 15,
                         cp->head.bytes + 31, cp->signature.bytes + 10};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        *fields[i] ^= 1u;
        cr_assert_eq(pl_km_checkpoint_verify(k, cp), PL_ERR_BAD_SIGNATURE, "field %zu", i);
        *fields[i] ^= 1u;
    }
    cr_assert_eq(pl_km_checkpoint_verify(k, cp), PL_OK);

    /* The ReportAck rules: exact sizes, no refusal beside a checkpoint, none in v1. */
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    cp->signature.size = 63;
    expect_refused(m, PL_ERR_MALFORMED);
    cr_assert_eq(pl_km_checkpoint_verify(k, cp), PL_ERR_MALFORMED);
    cp->signature.size = 64;
    cp->station_key.size = 31;
    expect_refused(m, PL_ERR_MALFORMED);
    cp->station_key.size = 32;
    ra->checkpoint_refused = provline_keymaker_ErrorCode_ERROR_AUDIT_FORK;
    expect_refused(m, PL_ERR_MALFORMED);
    ra->has_checkpoint = false;
    cr_assert_eq(pl_km_msg_check(m), PL_OK);
    ra->checkpoint_refused = (provline_keymaker_ErrorCode)99;
    expect_refused(m, PL_ERR_MALFORMED);
    ra->checkpoint_refused = provline_keymaker_ErrorCode_ERROR_NONE;
    ra->has_checkpoint = true;
    m->version = 1;
    expect_refused(m, PL_ERR_MALFORMED);
    m->version = PL_KM_VERSION;
    cr_assert_str_eq(pl_km_error_name(provline_keymaker_ErrorCode_ERROR_AUDIT_FORK), "AUDIT_FORK");

    /* Round trip: what is decoded still verifies. */
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK);
    provline_keymaker_Msg *d = new_msg();
    cr_assert_eq(pl_km_msg_decode(w.buf, w.len, d), PL_OK);
    cr_assert(d->body.report_ack.has_checkpoint);
    cr_assert_eq(pl_km_checkpoint_verify(k, &d->body.report_ack.checkpoint), PL_OK);
    pl_km_msg_release(d);
    free(d);
    pl_wr_free(&w);
    free(m);
    pl_eckey_free(k);
    pl_eckey_free(other);
}
