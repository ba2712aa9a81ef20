/* unit.fpa: the FPA (ipa/fpa.h) against the software eUICC, APDU seam direct (a counting
 * transmit in between): identify, upload, load of a sealed package in both request forms
 * with a verified success PIR, the EID check before any package byte (IFPP.md §7 case 22),
 * replay of an installed package (case 1), results and NotificationSent, DeleteRemainingOtks
 * and the lock, AddInitialEim refused while OTKs remain (EUICCF04), resends by request_id,
 * malformed requests, transport failures and the session reopened after them. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_testutil.h"
#include "pl_euicc_test.h"
#include "provline/ipa/fpa.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/x509.h"

#define N_OTKS 3u
#define UPP "TS48V1-A-UNIQUE.der"

struct rig {
    struct pl_et t;
    char path[512];
    struct pl_euicc *e;
    struct pl_ft_card card;
    struct pl_fpa *fpa;
    int log_lines;
};

static void on_log(void *user, enum pl_fpa_log_level level, const char *line)
{
    struct rig *r = user;
    (void)level;
    cr_assert_not_null(strstr(line, "fpa req="));
    cr_assert_null(strchr(line, '\n'));
    r->log_lines++;
}

static void rig_fpa(struct rig *r, bool basic)
{
    struct pl_fpa_config c;
    pl_fpa_config_init(&c);
    c.apdu.transmit = pl_ft_card_transmit;
    c.apdu.user = &r->card;
    c.basic_channel = basic;
    c.log = on_log;
    c.log_user = r;
    cr_assert_eq(pl_fpa_new(&c, &r->fpa), PL_OK);
}

static void rig_open(struct rig *r, const char *name)
{
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_et_mint(&r->t, name, N_OTKS, NULL, r->path, sizeof(r->path)), PL_OK);
    cr_assert_eq(pl_euicc_open(r->path, &o, &r->e), PL_OK);
    memset(&r->card, 0, sizeof(r->card));
    r->card.e = r->e;
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    cr_assert_eq(pl_et_init(&r->t, PL_CURVE_P256), PL_OK);
    rig_open(r, "dut.state");
    rig_fpa(r, false);
}

static void rig_free(struct rig *r)
{
    pl_fpa_free(r->fpa);
    pl_euicc_close(r->e);
    pl_et_free(&r->t);
}

/* Sends req through the FPA and decodes the response into *m (must decode). */
static void call(struct rig *r, const struct pl_wr *req, provline_fixture_Msg *m)
{
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    cr_assert_eq(pl_fpa_handle(r->fpa, req->buf, req->len, &rsp), PL_OK);
    cr_assert_eq(pl_fx_msg_decode(rsp.buf, rsp.len, m), PL_OK);
    pl_wr_free(&rsp);
}

static void call_raw(struct rig *r, const uint8_t *req, size_t len, provline_fixture_Msg *m)
{
    struct pl_wr w;
    pl_wr_init_fixed(&w, (uint8_t *)(uintptr_t)req, len);
    w.len = len;
    call(r, &w, m);
}

static void expect_error(const provline_fixture_Msg *m, int code, int stage)
{
    cr_assert_eq(m->which_body, PL_FX_ERROR, "got %s", pl_fx_body_name(m->which_body));
    cr_assert_eq(m->body.error.code, code, "code %s (%s)", pl_fx_error_name(m->body.error.code),
                 m->body.error.detail);
    cr_assert_eq(m->body.error.stage, stage, "stage %s", pl_fx_stage_name(m->body.error.stage));
    cr_assert_gt(strlen(m->body.error.detail), 0);
}

static size_t free_otks(const struct pl_euicc *e)
{
    size_t n = 0;
    for (size_t i = 0; i < pl_euicc_otk_count(e); i++) {
        struct pl_euicc_otk_info oi;
        cr_assert_eq(pl_euicc_otk_get(e, i, &oi), PL_OK);
        n += oi.state == PL_EUICC_OTK_FREE;
    }
    return n;
}

Test(fpa, identify_and_upload)
{
    struct rig r;
    struct pl_wr req;
    provline_fixture_Msg m;
    uint8_t eid[16];
    rig_init(&r);
    pl_euicc_get_eid(r.e, eid);

    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_identify(7, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.request_id, 7);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP);
    cr_assert_eq(memcmp(m.body.identify_rsp.eid.bytes, eid, 16), 0);
    cr_assert(m.body.identify_rsp.factory_mode);
    size_t len;
    const uint8_t *info = pl_fx_blob(m.body.identify_rsp.ifpp_info, &len);
    struct pl_es10f_info *d = malloc(sizeof(*d));
    cr_assert_eq(pl_es10f_get_info_rsp_decode(info, len, d), PL_OK);
    cr_assert_eq(memcmp(d->eid, eid, 16), 0);
    cr_assert_eq(d->n_otk, N_OTKS);
    pl_fx_msg_release(&m);

    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_upload_otks(8, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_UPLOAD_OTKS_RSP);
    info = pl_fx_blob(m.body.upload_otks_rsp.ifpp_info, &len);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(info, len, d), PL_OK);
    cr_assert_eq(d->n_otk, N_OTKS);
    /* The eUICC's OTK signatures verify with CERT.EUICC (what the Key Maker will check). */
    struct pl_cert *c = NULL;
    struct pl_eckey *k = NULL;
    cr_assert_eq(pl_cert_parse(d->cert_euicc.der, d->cert_euicc.len, &c), PL_OK);
    cr_assert_eq(pl_cert_public_key(c, &k), PL_OK);
    for (size_t i = 0; i < d->n_otk; i++)
        cr_assert_eq(pl_ifpp_otk_verify(k, d->eid, &d->otk[i]), PL_OK);
    pl_eckey_free(k);
    pl_cert_free(c);
    pl_fx_msg_release(&m);

    struct pl_fpa_stats st;
    pl_fpa_get_stats(r.fpa, &st);
    cr_assert_eq(st.requests, 2);
    cr_assert_eq(st.sessions, 1, "the ES10 path is opened once and kept");
    cr_assert_eq(st.errors, 0);
    cr_assert_eq(st.apdus, r.card.apdus);
    cr_assert_eq(r.log_lines, 2);
    free(d);
    pl_wr_free(&req);
    rig_free(&r);
}

Test(fpa, identify_on_basic_channel)
{
    struct rig r;
    struct pl_wr req;
    provline_fixture_Msg m;
    memset(&r, 0, sizeof(r));
    cr_assert_eq(pl_et_init(&r.t, PL_CURVE_P256), PL_OK);
    rig_open(&r, "dut.state");
    rig_fpa(&r, true);
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_identify(1, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP);
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
    rig_free(&r);
}

/* Loads pkg with request form (a) or (b); returns the decoded response. */
static void load(struct rig *r, uint64_t id, const struct pl_ft_pkg *p, bool parts,
                 provline_fixture_Msg *m)
{
    struct pl_wr req;
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    if (parts)
        cr_assert_eq(pl_ft_req_load_parts(id, p->eid, p->hdr.buf, p->hdr.len, p->bpp.buf,
                                          p->bpp.len, &req), PL_OK);
    else
        cr_assert_eq(pl_ft_req_load_env(id, p->env.buf, p->env.len, &req), PL_OK);
    call(r, &req, m);
    cr_assert_eq(m->request_id, id);
    pl_wr_free(&req);
}

static void expect_success(struct rig *r, const provline_fixture_Msg *m,
                           const struct pl_ft_pkg *p)
{
    struct pl_pir pir;
    cr_assert_eq(m->which_body, PL_FX_LOAD_PACKAGE_RSP, "got %s: %s",
                 pl_fx_body_name(m->which_body),
                 m->which_body == PL_FX_ERROR ? m->body.error.detail : "");
    const provline_fixture_LoadPackageResponse *lr = &m->body.load_package_rsp;
    cr_assert_eq(pl_et_pir_check(r->e, lr->pir.bytes, lr->pir.size, &pir), PL_OK);
    cr_assert(pir.success, "PIR error cmd %lld reason %lld", (long long)pir.cmd_id,
              (long long)pir.reason);
    cr_assert_eq(pir.tid_len, p->tid_len);
    cr_assert_eq(memcmp(pir.tid, p->tid, p->tid_len), 0);
    cr_assert_eq(lr->segments_sent, lr->segments_total);
    cr_assert_gt(lr->segments_total, 6);
}

Test(fpa, load_envelope_success)
{
    struct rig r;
    struct pl_ft_pkg p;
    provline_fixture_Msg m;
    rig_init(&r);
    cr_assert_eq(pl_ft_pkg_for(&r.t, r.e, 2, UPP, &p), PL_OK);
    load(&r, 100, &p, false, &m);
    expect_success(&r, &m, &p);
    cr_assert_eq(pl_euicc_profile_count(r.e), 1);
    cr_assert_eq(free_otks(r.e), N_OTKS - 1);
    cr_assert_gt(r.card.package_blocks, 0);
    pl_fx_msg_release(&m);
    pl_ft_pkg_free(&p);
    rig_free(&r);
}

Test(fpa, load_parts_success_then_replay_refused)
{
    struct rig r;
    struct pl_ft_pkg p;
    provline_fixture_Msg m;
    struct pl_pir pir;
    rig_init(&r);
    cr_assert_eq(pl_ft_pkg_for(&r.t, r.e, 1, UPP, &p), PL_OK);
    load(&r, 5, &p, true, &m);
    expect_success(&r, &m, &p);
    pl_fx_msg_release(&m);

    /* IFPP.md §7 case 1: the installed package again (a new request): an error PIR signed
     * by the eUICC, no second profile. */
    load(&r, 6, &p, false, &m);
    cr_assert_eq(m.which_body, PL_FX_LOAD_PACKAGE_RSP);
    const provline_fixture_LoadPackageResponse *lr = &m.body.load_package_rsp;
    cr_assert_eq(pl_et_pir_check(r.e, lr->pir.bytes, lr->pir.size, &pir), PL_OK);
    cr_assert_not(pir.success);
    cr_assert_lt(lr->segments_sent, lr->segments_total, "stopped at the first error");
    cr_assert_eq(pl_euicc_profile_count(r.e), 1);
    pl_fx_msg_release(&m);
    pl_ft_pkg_free(&p);
    rig_free(&r);
}

/* IFPP.md §7 case 22: the package for chip A in the fixture of chip B. */
static void eid_mismatch(bool parts)
{
    struct rig r;
    struct pl_ft_pkg p;
    provline_fixture_Msg m;
    char path_a[512];
    struct pl_euicc *a = NULL;
    struct pl_euicc_opts o;
    uint8_t eid_a[16], eid_b[16];

    rig_init(&r); /* chip B is in the fixture */
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_et_mint(&r.t, "a.state", N_OTKS, NULL, path_a, sizeof(path_a)), PL_OK);
    cr_assert_eq(pl_euicc_open(path_a, &o, &a), PL_OK);
    pl_euicc_get_eid(a, eid_a);
    pl_euicc_get_eid(r.e, eid_b);
    cr_assert_neq(memcmp(eid_a, eid_b, 16), 0);
    cr_assert_eq(pl_ft_pkg_for(&r.t, a, 1, UPP, &p), PL_OK);

    load(&r, 9, &p, parts, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_EID_MISMATCH,
                 provline_fixture_Stage_STAGE_GET_EID);
    cr_assert_eq(m.body.error.euicc_eid.size, 16);
    cr_assert_eq(memcmp(m.body.error.euicc_eid.bytes, eid_b, 16), 0);
    /* GetEID went out, no block of the package did. */
    cr_assert_gt(r.card.apdus, 0);
    cr_assert_eq(r.card.package_blocks, 0, "package bytes reached the wrong eUICC");
    cr_assert_eq(free_otks(r.e), N_OTKS);
    cr_assert_eq(pl_euicc_notif_count(r.e), 0);
    cr_assert_not(pl_euicc_load_in_progress(r.e));
    pl_fx_msg_release(&m);
    pl_ft_pkg_free(&p);
    pl_euicc_close(a);
    rig_free(&r);
}

Test(fpa, eid_mismatch_envelope_refused_before_package)
{
    eid_mismatch(false);
}

Test(fpa, eid_mismatch_parts_refused_before_package)
{
    eid_mismatch(true);
}

Test(fpa, bad_package_costs_no_apdu)
{
    struct rig r;
    struct pl_ft_pkg p;
    provline_fixture_Msg m;
    struct pl_wr req;
    rig_init(&r);
    cr_assert_eq(pl_ft_pkg_for(&r.t, r.e, 1, UPP, &p), PL_OK);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);

    /* A cut envelope. */
    cr_assert_eq(pl_ft_req_load_env(1, p.env.buf, p.env.len - 100, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    /* Form (b) with the header of another transaction. */
    struct pl_wr hdr;
    uint8_t other_tid[16];
    memset(other_tid, 0x5A, sizeof(other_tid));
    const uint8_t *dpf;
    size_t dpf_len;
    pl_cert_der(pl_pki_cert(r.t.pki, PL_PKI_DPF), &dpf, &dpf_len);
    pl_wr_init_dyn(&hdr, 64 * 1024);
    cr_assert_eq(pl_et_header(1, other_tid, sizeof(other_tid), &dpf, &dpf_len, 1, &hdr), PL_OK);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_load_parts(2, p.eid, hdr.buf, hdr.len, p.bpp.buf, p.bpp.len, &req),
                 PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    /* Form (b) with a BPP that is not one. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_load_parts(3, p.eid, p.hdr.buf, p.hdr.len, p.hdr.buf, p.hdr.len, &req),
                 PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    cr_assert_eq(r.card.apdus, 0, "a malformed package must not reach the eUICC at all");
    cr_assert_eq(free_otks(r.e), N_OTKS);
    pl_wr_free(&hdr);
    pl_wr_free(&req);
    pl_ft_pkg_free(&p);
    rig_free(&r);
}

Test(fpa, malformed_requests_get_errors)
{
    struct rig r;
    provline_fixture_Msg m;
    struct pl_wr req;
    rig_init(&r);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);

    /* Garbage: no request_id can be read, the Error carries 0. */
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
    call_raw(&r, junk, sizeof(junk), &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                 provline_fixture_Stage_STAGE_REQUEST);
    cr_assert_eq(m.request_id, 0);
    pl_fx_msg_release(&m);

    /* Empty message: version 0. */
    call_raw(&r, NULL, 0, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_UNSUPPORTED_VERSION,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    /* Version 2, request_id 44: the Error echoes the id. */
    static const uint8_t v2[] = {0x08, 0x02, 0x10, 44, 0x52, 0x00};
    call_raw(&r, v2, sizeof(v2), &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_UNSUPPORTED_VERSION,
                 provline_fixture_Stage_STAGE_REQUEST);
    cr_assert_eq(m.request_id, 44);
    pl_fx_msg_release(&m);

    /* request_id 0 in a request. */
    cr_assert_eq(pl_ft_req_identify(0, &req), PL_ERR_MALFORMED, "the encoder refuses it too");
    static const uint8_t id0[] = {0x08, 0x01, 0x52, 0x00};
    call_raw(&r, id0, sizeof(id0), &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    /* A response body sent to the device. */
    static const uint8_t rsp_body[] = {0x08, 0x01, 0x10, 0x05, 0x9A, 0x01, 0x02, 0x08, 0x00};
    call_raw(&r, rsp_body, sizeof(rsp_body), &m); /* notification_sent_rsp {status 0} */
    expect_error(&m, provline_fixture_ErrorCode_ERROR_UNEXPECTED,
                 provline_fixture_Stage_STAGE_REQUEST);
    cr_assert_eq(m.request_id, 5);
    pl_fx_msg_release(&m);

    /* LoadPackage with both forms at once. */
    {
        provline_fixture_Msg q;
        pl_fx_msg_init(&q);
        q.version = 1;
        q.request_id = 77;
        q.which_body = PL_FX_LOAD_PACKAGE;
        static const uint8_t x[16] = {1};
        cr_assert_eq(pl_fx_set_blob(&q.body.load_package.envelope, x, sizeof(x)), PL_OK);
        cr_assert_eq(PL_FX_SET_BYTES(q.body.load_package.eid, x, 16), PL_OK);
        pl_wr_reset(&req);
        cr_assert_eq(pl_fx_msg_encode(&q, &req), PL_ERR_MALFORMED);
        /* Encode it by hand: envelope (field 1) and eid (field 2) in one LoadPackageRequest. */
        uint8_t raw[64];
        size_t n = 0;
        raw[n++] = 0x08; raw[n++] = 0x01; raw[n++] = 0x10; raw[n++] = 77;
        raw[n++] = 0x72; raw[n++] = 36; /* field 14, length 36 */
        raw[n++] = 0x0A; raw[n++] = 16; memcpy(raw + n, x, 16); n += 16;
        raw[n++] = 0x12; raw[n++] = 16; memcpy(raw + n, x, 16); n += 16;
        call_raw(&r, raw, n, &m);
        expect_error(&m, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                     provline_fixture_Stage_STAGE_REQUEST);
        cr_assert_eq(m.request_id, 77);
        pl_fx_msg_release(&m);
        pl_fx_msg_release(&q);
    }

    /* DeleteOtks / AddInitialEim with bytes that are not the commands. */
    static const uint8_t notder[] = {0x30, 0x03, 0x01, 0x01};
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_delete_otks(90, notder, sizeof(notder), &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_configure_eim(91, notder, sizeof(notder), &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                 provline_fixture_Stage_STAGE_REQUEST);
    pl_fx_msg_release(&m);

    cr_assert_eq(r.card.apdus, 0, "nothing malformed reaches the eUICC");
    struct pl_fpa_stats st;
    pl_fpa_get_stats(r.fpa, &st);
    cr_assert_eq(st.errors, st.requests);
    pl_wr_free(&req);
    rig_free(&r);
}

Test(fpa, resend_answered_from_cache_and_id_reuse_refused)
{
    struct rig r;
    struct pl_ft_pkg p;
    struct pl_wr req, rsp1, rsp2;
    provline_fixture_Msg m;
    rig_init(&r);
    cr_assert_eq(pl_ft_pkg_for(&r.t, r.e, 3, UPP, &p), PL_OK);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&rsp1, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&rsp2, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_load_env(31, p.env.buf, p.env.len, &req), PL_OK);
    cr_assert_eq(pl_fpa_handle(r.fpa, req.buf, req.len, &rsp1), PL_OK);
    size_t apdus = r.card.apdus;
    /* The transport delivered the same request twice: same answer, eUICC untouched (a second
     * load would have produced an error PIR for the same transaction). */
    cr_assert_eq(pl_fpa_handle(r.fpa, req.buf, req.len, &rsp2), PL_OK);
    cr_assert_eq(r.card.apdus, apdus);
    cr_assert_eq(rsp1.len, rsp2.len);
    cr_assert_eq(memcmp(rsp1.buf, rsp2.buf, rsp1.len), 0);
    cr_assert_eq(pl_euicc_notif_count(r.e), 1);
    cr_assert_eq(pl_fx_msg_decode(rsp2.buf, rsp2.len, &m), PL_OK);
    expect_success(&r, &m, &p);
    pl_fx_msg_release(&m);
    struct pl_fpa_stats st;
    pl_fpa_get_stats(r.fpa, &st);
    cr_assert_eq(st.replayed, 1);

    /* The same id for another request. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_identify(31, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_REQUEST_ID_REUSED,
                 provline_fixture_Stage_STAGE_REQUEST);
    cr_assert_eq(r.card.apdus, apdus);
    pl_fx_msg_release(&m);
    /* A reset forgets the cache: the identify id is now usable. */
    pl_fpa_reset(r.fpa);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP);
    pl_fx_msg_release(&m);

    pl_wr_free(&req);
    pl_wr_free(&rsp1);
    pl_wr_free(&rsp2);
    pl_ft_pkg_free(&p);
    rig_free(&r);
}

Test(fpa, results_and_notification_sent)
{
    struct rig r;
    struct pl_ft_pkg p;
    struct pl_wr req;
    provline_fixture_Msg m;
    struct pl_notif_rnl_rsp *d = malloc(sizeof(*d));
    rig_init(&r);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);

    /* Nothing pending yet. */
    cr_assert_eq(pl_ft_req_fetch(1, false, 0, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_FETCH_RESULTS_RSP);
    size_t len;
    const uint8_t *list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(list, len, d), PL_OK);
    cr_assert_eq(d->n, 0);
    pl_fx_msg_release(&m);

    cr_assert_eq(pl_ft_pkg_for(&r.t, r.e, 1, UPP, &p), PL_OK);
    load(&r, 2, &p, false, &m);
    expect_success(&r, &m, &p);
    uint8_t pir_raw[4096];
    size_t pir_len = m.body.load_package_rsp.pir.size;
    memcpy(pir_raw, m.body.load_package_rsp.pir.bytes, pir_len);
    pl_fx_msg_release(&m);

    /* The PIR is pending, byte for byte the one the load returned. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_fetch(3, false, 0, &req), PL_OK);
    call(&r, &req, &m);
    list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(list, len, d), PL_OK);
    cr_assert_eq(d->n, 1);
    cr_assert_eq(d->items[0].kind, PL_NOTIF_KIND_PIR);
    cr_assert_eq(d->items[0].raw_len, pir_len);
    cr_assert_eq(memcmp(d->items[0].raw, pir_raw, pir_len), 0);
    uint64_t seq = d->items[0].meta.seq;
    pl_fx_msg_release(&m);

    /* By seqNumber: found, and not found for another. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_fetch(4, true, seq, &req), PL_OK);
    call(&r, &req, &m);
    list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(list, len, d), PL_OK);
    cr_assert_eq(d->n, 1);
    pl_fx_msg_release(&m);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_fetch(5, true, seq + 100, &req), PL_OK);
    call(&r, &req, &m);
    list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(list, len, d), PL_OK);
    cr_assert_eq(d->n, 0);
    pl_fx_msg_release(&m);

    /* NotificationSent: deleted once, then nothing to delete. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_notif_sent(6, seq, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_NOTIFICATION_SENT_RSP);
    cr_assert_eq(m.body.notification_sent_rsp.status, PL_NOTIF_SENT_OK);
    pl_fx_msg_release(&m);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_notif_sent(7, seq, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.body.notification_sent_rsp.status, PL_NOTIF_SENT_NOTHING_TO_DELETE);
    pl_fx_msg_release(&m);
    cr_assert_eq(pl_euicc_notif_count(r.e), 0);

    free(d);
    pl_wr_free(&req);
    pl_ft_pkg_free(&p);
    rig_free(&r);
}

Test(fpa, delete_otks_locks_and_eim_gated)
{
    struct rig r;
    struct pl_wr req, raw;
    provline_fixture_Msg m;
    uint8_t eid[16];
    rig_init(&r);
    pl_euicc_get_eid(r.e, eid);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&raw, PL_FX_MSG_MAX);

    /* AddInitialEim while OTKs remain: EUICCF04, SW 6985. */
    cr_assert_eq(pl_ft_add_initial_eim("eim.test", &raw), PL_OK);
    cr_assert_eq(pl_ft_req_configure_eim(1, raw.buf, raw.len, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_CARD_SW,
                 provline_fixture_Stage_STAGE_COMMAND);
    cr_assert_eq(m.body.error.card_sw, 0x6985);
    pl_fx_msg_release(&m);

    /* The Key-Maker-signed DeleteRemainingOtks: a signed receipt, then the lock. */
    const uint8_t *cert;
    size_t cert_len;
    pl_cert_der(pl_pki_cert(r.t.pki, PL_PKI_DPF), &cert, &cert_len);
    pl_wr_reset(&raw);
    cr_assert_eq(pl_et_dotk_req(eid, 1, PL_ES10F_OP_DELETE_REMAINING_OTKS,
                                pl_pki_key(r.t.pki, PL_PKI_DPF), cert, cert_len, &raw), PL_OK);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_delete_otks(2, raw.buf, raw.len, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_DELETE_OTKS_RSP, "%s",
                 m.which_body == PL_FX_ERROR ? m.body.error.detail : "");
    struct pl_es10f_delete_otks_rsp dr;
    const provline_fixture_DeleteOtksResponse *x = &m.body.delete_otks_rsp;
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(x->response.bytes, x->response.size, &dr), PL_OK);
    cr_assert(dr.ok);
    cr_assert_eq(dr.receipt.n_deleted, N_OTKS);
    pl_fx_msg_release(&m);
    cr_assert_not(pl_euicc_factory_mode(r.e));

    /* Identify still answers (GetEID), factory mode off, no OTK list. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_identify(3, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP);
    cr_assert_not(m.body.identify_rsp.factory_mode);
    cr_assert_null(m.body.identify_rsp.ifpp_info);
    cr_assert_eq(memcmp(m.body.identify_rsp.eid.bytes, eid, 16), 0);
    pl_fx_msg_release(&m);

    /* UploadOtks after the lock: 6985 (GENS13). */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_upload_otks(4, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_CARD_SW,
                 provline_fixture_Stage_STAGE_COMMAND);
    cr_assert_eq(m.body.error.card_sw, 0x6985);
    pl_fx_msg_release(&m);

    /* The same token again: the eUICC's own refusal (replay), forwarded as its response. */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_delete_otks(5, raw.buf, raw.len, &req), PL_OK);
    call(&r, &req, &m);
    if (m.which_body == PL_FX_DELETE_OTKS_RSP) {
        x = &m.body.delete_otks_rsp;
        cr_assert_eq(pl_es10f_delete_otks_rsp_decode(x->response.bytes, x->response.size, &dr),
                     PL_OK);
        cr_assert_not(dr.ok);
    } else {
        expect_error(&m, provline_fixture_ErrorCode_ERROR_CARD_SW,
                     provline_fixture_Stage_STAGE_COMMAND);
    }
    pl_fx_msg_release(&m);

    pl_wr_free(&raw);
    pl_wr_free(&req);
    rig_free(&r);
}

Test(fpa, transport_failure_then_session_reopened)
{
    struct rig r;
    struct pl_wr req;
    provline_fixture_Msg m;
    rig_init(&r);
    pl_wr_init_dyn(&req, 64);

    r.card.fail_at = 1; /* the very first APDU (MANAGE CHANNEL) */
    cr_assert_eq(pl_ft_req_identify(1, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_CARD_IO,
                 provline_fixture_Stage_STAGE_SESSION);
    pl_fx_msg_release(&m);

    r.card.fail_at = (int)r.card.apdus + 3; /* open, select, then GetEID fails */
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_identify(2, &req), PL_OK);
    call(&r, &req, &m);
    expect_error(&m, provline_fixture_ErrorCode_ERROR_CARD_IO,
                 provline_fixture_Stage_STAGE_GET_EID);
    pl_fx_msg_release(&m);

    /* The path is opened again and everything works. */
    r.card.fail_at = 0;
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_identify(3, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP);
    pl_fx_msg_release(&m);
    struct pl_fpa_stats st;
    pl_fpa_get_stats(r.fpa, &st);
    cr_assert_eq(st.sessions, 2);
    pl_wr_free(&req);
    rig_free(&r);
}

Test(fpa, card_replaced_under_open_session)
{
    /* The eUICC is "reset" (a fresh object on the same state: its channels are gone) while
     * the FPA still believes its channel is open: GetEID fails once, the FPA reopens. */
    struct rig r;
    struct pl_wr req;
    provline_fixture_Msg m;
    struct pl_euicc_opts o;
    rig_init(&r);
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_identify(1, &req), PL_OK);
    call(&r, &req, &m);
    pl_fx_msg_release(&m);
    pl_euicc_close(r.e);
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(r.path, &o, &r.e), PL_OK);
    r.card.e = r.e;
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_identify(2, &req), PL_OK);
    call(&r, &req, &m);
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP, "%s",
                 m.which_body == PL_FX_ERROR ? m.body.error.detail : "");
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
    rig_free(&r);
}

Test(fpa, arguments)
{
    struct pl_fpa_config c;
    struct pl_fpa *f = NULL;
    pl_fpa_config_init(&c);
    cr_assert_eq(pl_fpa_new(&c, &f), PL_ERR_INVAL);
    c.apdu.transmit = pl_ft_card_transmit;
    c.mss = 256;
    cr_assert_eq(pl_fpa_new(&c, &f), PL_ERR_INVAL);
    c.mss = 0;
    cr_assert_eq(pl_fpa_new(&c, &f), PL_OK);
    cr_assert_eq(pl_fpa_handle(f, NULL, 1, NULL), PL_ERR_INVAL);
    pl_fpa_free(f);
    pl_fpa_free(NULL);
}
