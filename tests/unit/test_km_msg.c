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
    m->version = 2;
    expect_refused(m, PL_ERR_UNSUPPORTED);
    m->version = 1;
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
