/* Unit tests: the reference Key Maker's registry and request handling
 * (sim/keymaker.h, pl_km_handle without ZeroMQ). IFPP.md §6.1 (OTK registry, GENS08),
 * §6.3 (reconciliation), §6.4 (never bind an unsigned OTK), §7 cases 4, 9, 10, 11, 13, 23;
 * docs/station-keymaker-protocol.md §4-§7. */
#define _POSIX_C_SOURCE 200809L
#include "pl_test.h"
#include "provline/proto/km_msg.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/x509.h"
#include "provline/sim/keymaker.h"
#include "provline/sim/pki.h"

#include <criterion/criterion.h>
#include <pb_encode.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define ST_A  "stationAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define ST_B  "stationBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define NOTKS 4

struct teuicc {
    uint8_t eid[16];
    struct pl_eckey *sk;
    uint8_t cert[PL_CERT_MAX_DER];
    size_t cert_len;
    const uint8_t *eum;
    size_t eum_len;
    struct pl_eckey *otk[NOTKS];
    struct pl_ifpp_otk sotk[NOTKS];
};

struct fx {
    char dir[256];
    char pki[512];
    char db[512];
    struct pl_pki *p;
    struct pl_km *km;
    time_t now;
    uint64_t seq[2];
    struct pl_rng rng;
};

static time_t fx_clock(void *u)
{
    return ((struct fx *)u)->now;
}

static void fx_open_km(struct fx *f)
{
    struct pl_km_config c;
    pl_km_config_init(&c);
    c.db_path = f->db;
    c.pki_dir = f->pki;
    c.clock = fx_clock;
    c.clock_user = f;
    c.lease_seconds = 600;
    cr_assert_eq(pl_km_open(&c, &f->km), PL_OK);
}

static void fx_init(struct fx *f, enum pl_curve curve, bool profiles)
{
    memset(f, 0, sizeof(*f));
    f->rng = PL_RNG_SYSTEM;
    f->now = time(NULL);
    cr_assert_eq(pl_test_tmpdir(f->dir, sizeof(f->dir)), 0);
    snprintf(f->pki, sizeof(f->pki), "%s/pki", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/km.db", f->dir);
    cr_assert_eq(pl_pki_init(f->pki, curve, &f->rng, f->now), PL_OK);
    cr_assert_eq(pl_pki_load(f->pki, &f->p), PL_OK);
    fx_open_km(f);
    if (profiles) {
        char path[512];
        unsigned added = 0, skipped = 0;
        cr_assert_eq(pl_km_load_profiles(f->km, pl_test_src(path, sizeof(path), "tests/data/ts48"),
                                         &added, &skipped),
                     PL_OK);
        cr_assert_eq(added, 20); /* 36 files, 20 distinct ICCIDs */
        cr_assert_eq(skipped, 16);
    }
}

static void fx_fini(struct fx *f)
{
    pl_km_close(f->km);
    pl_pki_free(f->p);
    pl_test_rmtree(f->dir);
}

/* A test eUICC minted by the fixture's (or another) PKI, with NOTKS signed OTKs. */
static void teuicc_init(struct teuicc *e, const struct pl_pki *p, uint8_t n, time_t now)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    static const uint8_t base[16] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0};
    memset(e, 0, sizeof(*e));
    memcpy(e->eid, base, 16);
    e->eid[15] = n;
    cr_assert_eq(pl_pki_mint_euicc_with(p, e->eid, &rng, now, &e->sk, e->cert, sizeof(e->cert),
                                        &e->cert_len),
                 PL_OK);
    pl_cert_der(pl_pki_cert(p, PL_PKI_EUM), &e->eum, &e->eum_len);
    for (int i = 0; i < NOTKS; i++) {
        cr_assert_eq(pl_eckey_generate(pl_pki_curve(p), &rng, &e->otk[i]), PL_OK);
        e->sotk[i].otk_id = (uint16_t)(i + 1);
        cr_assert_eq(pl_eckey_public(e->otk[i], e->sotk[i].otpk), PL_OK);
        cr_assert_eq(pl_ifpp_otk_sign(e->sk, e->eid, &e->sotk[i], &rng), PL_OK);
    }
}

static void teuicc_fini(struct teuicc *e)
{
    pl_eckey_free(e->sk);
    for (int i = 0; i < NOTKS; i++)
        pl_eckey_free(e->otk[i]);
}

/* ---- messages ---- */

static provline_keymaker_Msg *msg_new(struct fx *f, int st, unsigned body)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    m->version = PL_KM_VERSION;
    m->msg_id.size = 16;
    cr_assert_eq(f->rng.fill(f->rng.user, m->msg_id.bytes, 16), PL_OK);
    m->seq = ++f->seq[st];
    m->which_body = (pb_size_t)body;
    return m;
}

static void msg_free(provline_keymaker_Msg *m)
{
    pl_km_msg_release(m);
    free(m);
}

/* Sends raw bytes, returns the raw reply in *raw (if not NULL) and the decoded reply. */
static provline_keymaker_Msg *send_raw(struct fx *f, const char *station, const uint8_t *req,
                                       size_t len, struct pl_wr *raw)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_handle(f->km, station, req, len, &w), PL_OK);
    provline_keymaker_Msg *r = calloc(1, sizeof(*r));
    cr_assert_not_null(r);
    cr_assert_eq(pl_km_msg_decode(w.buf, w.len, r), PL_OK, "reply does not decode");
    if (raw) {
        pl_wr_bytes(raw, w.buf, w.len);
        cr_assert_eq(pl_wr_status(raw), PL_OK);
    }
    pl_wr_free(&w);
    return r;
}

static provline_keymaker_Msg *send_msg(struct fx *f, const char *station,
                                       const provline_keymaker_Msg *m, struct pl_wr *req_raw)
{
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK);
    provline_keymaker_Msg *r = send_raw(f, station, w.buf, w.len, NULL);
    cr_assert_eq(r->reply_to.size, 16);
    cr_assert_eq(memcmp(r->reply_to.bytes, m->msg_id.bytes, 16), 0);
    if (req_raw)
        pl_wr_bytes(req_raw, w.buf, w.len);
    pl_wr_free(&w);
    return r;
}

static void expect_error(const provline_keymaker_Msg *r, int code)
{
    cr_assert_eq(r->which_body, PL_KM_ERROR, "expected an Error, got %s",
                 pl_km_body_name(r->which_body));
    cr_assert_eq((int)r->body.error.code, code, "expected %s, got %s", pl_km_error_name(code),
                 pl_km_error_name((int)r->body.error.code));
}

static provline_keymaker_Msg *upload(struct fx *f, int st, const char *station,
                                     const struct teuicc *e)
{
    provline_keymaker_Msg *m = msg_new(f, st, PL_KM_OTK_UPLOAD);
    provline_keymaker_OtkUpload *u = &m->body.otk_upload;
    cr_assert_eq(PL_KM_SET_BYTES(u->eid, e->eid, 16), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(u->cert_euicc, e->cert, e->cert_len), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(u->cert_eum, e->eum, e->eum_len), PL_OK);
    u->otks_count = NOTKS;
    for (int i = 0; i < NOTKS; i++) {
        u->otks[i].otk_id = e->sotk[i].otk_id;
        cr_assert_eq(PL_KM_SET_BYTES(u->otks[i].otpk, e->sotk[i].otpk, 65), PL_OK);
        cr_assert_eq(PL_KM_SET_BYTES(u->otks[i].sig, e->sotk[i].sig, 64), PL_OK);
    }
    provline_keymaker_Msg *r = send_msg(f, station, m, NULL);
    msg_free(m);
    return r;
}

static void upload_ok(struct fx *f, const struct teuicc *e)
{
    provline_keymaker_Msg *r = upload(f, 0, ST_A, e);
    cr_assert_eq(r->which_body, PL_KM_OTK_UPLOAD_RESULT);
    cr_assert_eq(r->body.otk_upload_result.accepted_count, NOTKS);
    cr_assert_eq(r->body.otk_upload_result.rejected_count, 0);
    msg_free(r);
}

static provline_keymaker_Msg *jit_msg(struct fx *f, int st, const uint8_t eid[16], uint16_t otk)
{
    provline_keymaker_Msg *m = msg_new(f, st, PL_KM_LEASE_REQUEST);
    m->body.lease_request.mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.lease_request.eid, eid, 16), PL_OK);
    m->body.lease_request.otk_id = otk;
    return m;
}

static provline_keymaker_Msg *jit(struct fx *f, int st, const char *station, const uint8_t eid[16],
                                  uint16_t otk)
{
    provline_keymaker_Msg *m = jit_msg(f, st, eid, otk);
    provline_keymaker_Msg *r = send_msg(f, station, m, NULL);
    msg_free(m);
    return r;
}

static int otk_state(struct fx *f, const uint8_t eid[16], uint16_t id)
{
    int s = 0;
    cr_assert_eq(pl_km_otk_state(f->km, eid, id, &s), PL_OK);
    return s;
}

static int pkg_state(struct fx *f, const uint8_t pid[16])
{
    int s = 0;
    cr_assert_eq(pl_km_package_state(f->km, pid, &s), PL_OK);
    return s;
}

/* The eUICC side of one package: envelope signature, target, smdpSign with our otPK,
 * BSP open of every segment; returns the UPP's ICCID. */
static void open_package(struct fx *f, const struct teuicc *e, int otk_index,
                         const provline_keymaker_Package *pkg, uint8_t iccid_out[10])
{
    struct pl_ifpp_pkg env;
    struct pl_eckey *dpf_pub = NULL;
    cr_assert_not_null(pkg->envelope);
    cr_assert_eq(pl_ifpp_pkg_decode(pkg->envelope->bytes, pkg->envelope->size, &env), PL_OK);
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(f->p, PL_PKI_DPF), &dpf_pub), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&env, dpf_pub), PL_OK);
    cr_assert_eq(
        pl_ifpp_pkg_check_target(&env, e->eid, e->sotk[otk_index].otk_id, e->sotk[otk_index].otpk),
        PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(&env, (uint64_t)f->now), PL_OK);
    cr_assert_eq(memcmp(env.package_id, pkg->package_id.bytes, 16), 0);
    cr_assert_eq(env.tid_len, pkg->transaction_id.size);
    cr_assert_eq(memcmp(env.tid, pkg->transaction_id.bytes, env.tid_len), 0);

    struct pl_bpp *bpp = calloc(1, sizeof(*bpp));
    cr_assert_not_null(bpp);
    cr_assert_eq(pl_bpp_decode(env.bpp, env.bpp_len, bpp), PL_OK);
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, e->sotk[otk_index].otpk, dpf_pub), PL_OK);
    /* ... and not with another OTK of the same chip (anti-misbinding, IFPP.md §5.2). */
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, e->sotk[(otk_index + 1) % NOTKS].otpk, dpf_pub),
                 PL_ERR_BAD_SIGNATURE);
    uint8_t z[32];
    struct pl_bsp_keys k;
    struct pl_bsp s;
    cr_assert_eq(pl_ecdh(e->otk[otk_index], bpp->iscr.smdp_otpk, z), PL_OK);
    cr_assert_eq(pl_bsp_derive(z, bpp->iscr.host_id, bpp->iscr.host_id_len, e->eid, &k), PL_OK);
    pl_bsp_init(&s, &k);
    struct pl_wr pt;
    pl_wr_init_dyn(&pt, 1u << 20);
    cr_assert_eq(pl_bsp_unwrap(&s, 0x87, true, bpp->first87[0].tlv, bpp->first87[0].len, &pt),
                 PL_OK);
    pl_wr_reset(&pt);
    for (size_t i = 0; i < bpp->n88; i++)
        cr_assert_eq(pl_bsp_unwrap(&s, 0x88, false, bpp->seq88[i].tlv, bpp->seq88[i].len, &pt),
                     PL_OK);
    struct pl_smr smr;
    cr_assert_eq(pl_smr_decode(pt.buf, pt.len, &smr), PL_OK);
    memcpy(iccid_out, smr.iccid, 10);
    cr_assert_eq(memcmp(smr.iccid, pkg->iccid.bytes, 10), 0);
    pl_wr_reset(&pt);
    cr_assert_not(bpp->has_second87);
    for (size_t i = 0; i < bpp->n86; i++)
        cr_assert_eq(pl_bsp_unwrap(&s, 0x86, true, bpp->seq86[i].tlv, bpp->seq86[i].len, &pt),
                     PL_OK);
    uint8_t upp_iccid[10];
    cr_assert_eq(pl_upp_iccid(pt.buf, pt.len, upp_iccid), PL_OK);
    cr_assert_eq(memcmp(upp_iccid, smr.iccid, 10), 0);
    pl_wr_free(&pt);
    pl_bsp_wipe(&s);
    free(bpp);
    pl_eckey_free(dpf_pub);
}

/* A PIR as the eUICC would sign it (pir.h), for transaction tid. key = the signer. */
static void make_pir(const struct pl_eckey *key, const uint8_t *tid, size_t tid_len,
                     const uint8_t iccid[10], bool success, struct pl_wr *out)
{
    static const uint8_t oid[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0xE4, 0x35, 0x01};
    static const uint8_t aid[16] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                                    0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x10, 0x00};
    static const uint8_t sima[] = {0x30, 0x00};
    struct pl_pir pir;
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(&pir, 0, sizeof(pir));
    pir.tid = tid;
    pir.tid_len = tid_len;
    pir.meta.seq = 1;
    pir.meta.ops = PL_NOTIF_EV_INSTALL;
    strcpy(pir.meta.addr, "keymaker.example");
    if (iccid) {
        pir.meta.has_iccid = true;
        memcpy(pir.meta.iccid, iccid, 10);
    }
    pir.smdp_oid = oid;
    pir.smdp_oid_len = sizeof(oid);
    if (success) {
        pir.success = true;
        pir.aid = aid;
        pir.aid_len = sizeof(aid);
        pir.sima = sima;
        pir.sima_len = sizeof(sima);
    } else {
        pir.cmd_id = PL_PIR_CMD_LOAD_PROFILE_ELEMENTS;
        pir.reason = PL_PIR_REASON_SCP03T_SECURITY_ERROR;
    }
    cr_assert_eq(pl_pir_encode(&pir, key, &rng, out), PL_OK);
}

enum outcome { O_PIR, O_FPA, O_RELEASED };

static provline_keymaker_Msg *report_msg(struct fx *f, int st, const provline_keymaker_Package *p,
                                         enum outcome o, const struct pl_wr *pir)
{
    provline_keymaker_Msg *m = msg_new(f, st, PL_KM_REPORT);
    provline_keymaker_Report *r = &m->body.report;
    r->entries_count = 1;
    provline_keymaker_ReportEntry *e = &r->entries[0];
    cr_assert_eq(PL_KM_SET_BYTES(e->package_id, p->package_id.bytes, 16), PL_OK);
    cr_assert_eq(
        PL_KM_SET_BYTES(e->transaction_id, p->transaction_id.bytes, p->transaction_id.size), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e->eid, p->eid.bytes, 16), PL_OK);
    if (o == O_PIR) {
        e->which_outcome = provline_keymaker_ReportEntry_pir_tag;
        cr_assert_eq(PL_KM_SET_BYTES(e->outcome.pir, pir->buf, pir->len), PL_OK);
    } else if (o == O_FPA) {
        e->which_outcome = provline_keymaker_ReportEntry_fpa_error_tag;
        e->outcome.fpa_error.code = 42;
        strcpy(e->outcome.fpa_error.detail, "fixture lost power");
    } else {
        e->which_outcome = provline_keymaker_ReportEntry_released_tag;
        e->outcome.released = true;
    }
    return m;
}

/* Sends a one-entry report; returns the entry result code, fills *state / *accepted. */
static int report(struct fx *f, int st, const char *station, const provline_keymaker_Package *p,
                  enum outcome o, const struct pl_wr *pir, bool *accepted, int *state)
{
    provline_keymaker_Msg *m = report_msg(f, st, p, o, pir);
    provline_keymaker_Msg *r = send_msg(f, station, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_REPORT_ACK);
    cr_assert_eq(r->body.report_ack.results_count, 1);
    const provline_keymaker_EntryResult *er = &r->body.report_ack.results[0];
    cr_assert_eq(memcmp(er->package_id.bytes, p->package_id.bytes, 16), 0);
    int code = (int)er->code;
    if (accepted)
        *accepted = er->accepted;
    if (state)
        *state = (int)er->state;
    msg_free(m);
    msg_free(r);
    return code;
}

/* Leases one JIT package for OTK index i of e and checks it; copies the Package out. */
static void lease_one(struct fx *f, const struct teuicc *e, int i, provline_keymaker_Package *out,
                      uint8_t iccid[10])
{
    provline_keymaker_Msg *r = jit(f, 0, ST_A, e->eid, e->sotk[i].otk_id);
    cr_assert_eq(r->which_body, PL_KM_LEASE, "got %s (%s)", pl_km_body_name(r->which_body),
                 r->which_body == PL_KM_ERROR ? pl_km_error_name((int)r->body.error.code) : "");
    cr_assert_eq(r->body.lease.packages_count, 1);
    cr_assert_eq(r->body.lease.expiry, (uint64_t)f->now + 600u);
    open_package(f, e, i, &r->body.lease.packages[0], iccid);
    *out = r->body.lease.packages[0];
    out->envelope = NULL; /* owned by r */
    msg_free(r);
}

/* ------------------------------------------------------------------- tests ---- */

Test(keymaker, hello_and_resync)
{
    struct fx f;
    fx_init(&f, PL_CURVE_P256, false);
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_HELLO);
    strcpy(m->body.hello.station_id, "line-1");
    m->seq = 17;
    provline_keymaker_Msg *r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_HELLO_ACK);
    cr_assert_str_eq(r->body.hello_ack.keymaker_id, "provline-keymaker");
    cr_assert_eq(r->body.hello_ack.last_seq_seen, 17);
    cr_assert_eq(r->body.hello_ack.outstanding_count, 0);
    cr_assert_eq(r->seq, 1);
    msg_free(r);
    msg_free(m);
    /* A station that lost its journal restarts at seq 1: Hello is accepted and tells it
     * where to continue; a non-Hello below the mark is refused. */
    f.seq[0] = 0;
    m = msg_new(&f, 0, PL_KM_HELLO);
    r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_HELLO_ACK);
    cr_assert_eq(r->body.hello_ack.last_seq_seen, 17);
    cr_assert_eq(r->seq, 2);
    cr_assert_eq(r->body.hello_ack.keymaker_seq, 2);
    msg_free(r);
    msg_free(m);
    m = msg_new(&f, 0, PL_KM_TOKEN_REQUEST);
    m->body.otk_deletion_token_request.eid.size = 16;
    r = send_msg(&f, ST_A, m, NULL);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_STALE_SEQ);
    msg_free(r);
    msg_free(m);
    fx_fini(&f);
}

Test(keymaker, upload_lease_open_double_binding_refused)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 1, f.now);
    upload_ok(&f, &e);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_FREE);

    provline_keymaker_Package p;
    uint8_t iccid[10];
    lease_one(&f, &e, 0, &p, iccid);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_BOUND);
    cr_assert_eq(pkg_state(&f, p.package_id.bytes), PL_KM_PKG_ISSUED);

    /* GENS08: a second lease on the same OTK (new msg_id) is refused, from any station. */
    provline_keymaker_Msg *r = jit(&f, 0, ST_A, e.eid, 1);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    msg_free(r);
    r = jit(&f, 1, ST_B, e.eid, 1);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    msg_free(r);
    /* Another OTK of the same chip binds a different profile. */
    provline_keymaker_Package p2;
    uint8_t iccid2[10];
    lease_one(&f, &e, 1, &p2, iccid2);
    cr_assert_neq(memcmp(iccid, iccid2, 10), 0, "one ICCID issued twice");
    cr_assert_neq(memcmp(p.transaction_id.bytes, p2.transaction_id.bytes, 16), 0);
    /* Unknown OTK / EID. */
    r = jit(&f, 0, ST_A, e.eid, 9);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNKNOWN_OTK);
    msg_free(r);
    uint8_t other[16];
    memcpy(other, e.eid, 16);
    other[15] ^= 0x55;
    r = jit(&f, 0, ST_A, other, 1);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNKNOWN_EID);
    msg_free(r);

    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.pkg_issued, 2);
    cr_assert_eq(s.otk_bound, 2);
    cr_assert_eq(s.otk_free, 2);
    cr_assert_eq(s.profiles_reserved, 2);
    cr_assert_eq(s.euiccs, 1);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, database_refuses_a_second_package_on_one_otk)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 2, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package p;
    uint8_t iccid[10];
    lease_one(&f, &e, 0, &p, iccid);
    /* Bypass the Key Maker's checks and try to insert a second package for (EID, otk 1)
     * directly: the schema's constraints refuse it (second line of defence). */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(f.db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(
        sqlite3_prepare_v2(db,
                           "INSERT INTO package(package_id, eid, otk_id, transaction_id, "
                           "profile_id, station, lease_id, state, envelope, km_seq, "
                           "issued_at, expiry, not_after) SELECT ?, eid, otk_id, ?, "
                           "profile_id, station, lease_id, 'issued', envelope, 99, 0, 0, 0 "
                           "FROM package WHERE package_id = ?",
                           -1, &st, NULL),
        SQLITE_OK);
    uint8_t pid[16], tid[16];
    memset(pid, 0xEE, 16);
    memset(tid, 0xDD, 16);
    sqlite3_bind_blob(st, 1, pid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, tid, 16, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, p.package_id.bytes, 16, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st) & 0xFF, SQLITE_CONSTRAINT);
    sqlite3_finalize(st);
    /* Nor can the OTK go back to FREE while it names a package, or be BOUND twice. */
    cr_assert_neq(
        sqlite3_exec(db, "UPDATE otk SET state = 'FREE' WHERE state = 'BOUND'", NULL, NULL, NULL),
        SQLITE_OK);
    cr_assert_neq(sqlite3_exec(db,
                               "UPDATE otk SET state = 'BOUND', package_id = "
                               "(SELECT package_id FROM package LIMIT 1) WHERE state = 'FREE'",
                               NULL, NULL, NULL),
                  SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_BOUND);
    cr_assert_eq(otk_state(&f, e.eid, 2), PL_KM_OTK_FREE);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, idempotent_message_ids)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 3, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Msg *m = jit_msg(&f, 0, e.eid, 1);
    struct pl_wr req, rep1, rep2;
    pl_wr_init_dyn(&req, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&rep1, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&rep2, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &req), PL_OK);
    provline_keymaker_Msg *r1 = send_raw(&f, ST_A, req.buf, req.len, &rep1);
    cr_assert_eq(r1->which_body, PL_KM_LEASE);
    /* The retry (lost reply) gets the same bytes, not a second binding. */
    provline_keymaker_Msg *r2 = send_raw(&f, ST_A, req.buf, req.len, &rep2);
    cr_assert_eq(rep1.len, rep2.len);
    cr_assert_eq(memcmp(rep1.buf, rep2.buf, rep1.len), 0);
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.pkg_issued, 1);
    /* ... also after a Key Maker restart. */
    pl_km_close(f.km);
    fx_open_km(&f);
    struct pl_wr rep3;
    pl_wr_init_dyn(&rep3, PL_KM_FRAME_MAX);
    provline_keymaker_Msg *r3 = send_raw(&f, ST_A, req.buf, req.len, &rep3);
    cr_assert_eq(rep3.len, rep1.len);
    cr_assert_eq(memcmp(rep3.buf, rep1.buf, rep1.len), 0);
    /* The same msg_id from another station is another message (ids are per station). */
    provline_keymaker_Msg *rb = send_raw(&f, ST_B, req.buf, req.len, NULL);
    expect_error(rb, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    /* The same msg_id with other content is refused, and not recorded. */
    m->body.lease_request.otk_id = 2;
    provline_keymaker_Msg *r4 = send_msg(&f, ST_A, m, NULL);
    expect_error(r4, provline_keymaker_ErrorCode_ERROR_MSG_ID_REUSED);
    cr_assert_eq(otk_state(&f, e.eid, 2), PL_KM_OTK_FREE);
    /* A refusal is an answer too: its retry gets the same refusal. */
    struct pl_wr e1, e2;
    pl_wr_init_dyn(&e1, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&e2, PL_KM_FRAME_MAX);
    provline_keymaker_Msg *m5 = jit_msg(&f, 0, e.eid, 1);
    struct pl_wr req5;
    pl_wr_init_dyn(&req5, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m5, &req5), PL_OK);
    provline_keymaker_Msg *x1 = send_raw(&f, ST_A, req5.buf, req5.len, &e1);
    provline_keymaker_Msg *x2 = send_raw(&f, ST_A, req5.buf, req5.len, &e2);
    expect_error(x1, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    cr_assert_eq(e1.len, e2.len);
    cr_assert_eq(memcmp(e1.buf, e2.buf, e1.len), 0);
    /* A stale sequence number with a fresh msg_id is refused. */
    provline_keymaker_Msg *m6 = jit_msg(&f, 0, e.eid, 3);
    m6->seq = 1;
    provline_keymaker_Msg *r6 = send_msg(&f, ST_A, m6, NULL);
    expect_error(r6, provline_keymaker_ErrorCode_ERROR_STALE_SEQ);
    cr_assert_eq(otk_state(&f, e.eid, 3), PL_KM_OTK_FREE);

    msg_free(m);
    msg_free(m5);
    msg_free(m6);
    msg_free(r1);
    msg_free(r2);
    msg_free(r3);
    msg_free(rb);
    msg_free(r4);
    msg_free(r6);
    msg_free(x1);
    msg_free(x2);
    pl_wr_free(&req);
    pl_wr_free(&req5);
    pl_wr_free(&rep1);
    pl_wr_free(&rep2);
    pl_wr_free(&rep3);
    pl_wr_free(&e1);
    pl_wr_free(&e2);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, unsigned_or_foreign_otks_never_bound)
{
    struct fx f;
    struct teuicc e, other;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 4, f.now);
    teuicc_init(&other, f.p, 5, f.now);
    /* OTK 2 signed by another eUICC's key, OTK 3 with a station-made key and a zero
     * signature, OTK 4 off the curve (signed, but not a valid point). */
    struct pl_rng rng = PL_RNG_SYSTEM;
    cr_assert_eq(pl_ifpp_otk_sign(other.sk, e.eid, &e.sotk[1], &rng), PL_OK);
    memset(e.sotk[2].sig, 0, 64);
    e.sotk[3].otpk[64] ^= 0x01;
    cr_assert_eq(pl_ifpp_otk_sign(e.sk, e.eid, &e.sotk[3], &rng), PL_OK);
    provline_keymaker_Msg *r = upload(&f, 0, ST_A, &e);
    cr_assert_eq(r->which_body, PL_KM_OTK_UPLOAD_RESULT);
    cr_assert_eq(r->body.otk_upload_result.accepted_count, 1);
    cr_assert_eq(r->body.otk_upload_result.accepted[0], 1);
    cr_assert_eq(r->body.otk_upload_result.rejected_count, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(r->body.otk_upload_result.rejected[i].code,
                     provline_keymaker_ErrorCode_ERROR_OTK_SIGNATURE_INVALID);
    msg_free(r);
    for (uint16_t id = 2; id <= 4; id++) {
        int s = 0;
        cr_assert_eq(pl_km_otk_state(f.km, e.eid, id, &s), PL_ERR_NOT_FOUND);
        r = jit(&f, 0, ST_A, e.eid, id);
        expect_error(r, provline_keymaker_ErrorCode_ERROR_UNKNOWN_OTK);
        msg_free(r);
    }
    /* A validly signed but different key for a registered otkId is refused (no overwrite). */
    struct teuicc e2 = e;
    cr_assert_eq(pl_eckey_public(other.otk[0], e2.sotk[0].otpk), PL_OK);
    cr_assert_eq(pl_ifpp_otk_sign(e.sk, e.eid, &e2.sotk[0], &rng), PL_OK);
    r = upload(&f, 0, ST_A, &e2);
    cr_assert_eq(r->body.otk_upload_result.rejected_count, 4);
    cr_assert_eq(r->body.otk_upload_result.rejected[0].code,
                 provline_keymaker_ErrorCode_ERROR_OTK_CONFLICT);
    msg_free(r);

    /* An eUICC of a foreign PKI (another CI): nothing of it is kept. */
    char dir2[512];
    snprintf(dir2, sizeof(dir2), "%s/pki2", f.dir);
    struct pl_pki *p2 = NULL;
    cr_assert_eq(pl_pki_init(dir2, PL_CURVE_P256, &rng, f.now), PL_OK);
    cr_assert_eq(pl_pki_load(dir2, &p2), PL_OK);
    struct teuicc foreign;
    teuicc_init(&foreign, p2, 6, f.now);
    r = upload(&f, 0, ST_A, &foreign);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_CHAIN_INVALID);
    msg_free(r);
    r = jit(&f, 0, ST_A, foreign.eid, 1);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNKNOWN_EID);
    msg_free(r);
    /* Our EUM with a foreign eUICC certificate, and the right cert under another EID. */
    foreign.eum = e.eum;
    foreign.eum_len = e.eum_len;
    r = upload(&f, 0, ST_A, &foreign);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_CHAIN_INVALID);
    msg_free(r);
    struct teuicc liar = other;
    liar.eid[15] ^= 0x01;
    r = upload(&f, 0, ST_A, &liar);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_EID_MISMATCH);
    msg_free(r);
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.euiccs, 1);
    cr_assert_eq(s.otk_free, 1);
    teuicc_fini(&foreign);
    pl_pki_free(p2);
    teuicc_fini(&e);
    teuicc_fini(&other);
    fx_fini(&f);
}

Test(keymaker, pir_success_installs_and_is_idempotent)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 7, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package p;
    uint8_t iccid[10];
    lease_one(&f, &e, 0, &p, iccid);
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, 4096);
    make_pir(e.sk, p.transaction_id.bytes, 16, iccid, true, &pir);
    bool ok = false;
    int st = 0;
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st), 0);
    cr_assert(ok);
    cr_assert_eq(st, PL_KM_PKG_INSTALLED);
    cr_assert_eq(pkg_state(&f, p.package_id.bytes), PL_KM_PKG_INSTALLED);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_CONSUMED);
    /* The same PIR again (another station may report it too: it is signed) is accepted. */
    cr_assert_eq(report(&f, 1, ST_B, &p, O_PIR, &pir, &ok, &st), 0);
    cr_assert(ok);
    cr_assert_eq(st, PL_KM_PKG_INSTALLED);
    /* A different, validly signed result for a settled package is refused. */
    struct pl_wr pir2;
    pl_wr_init_dyn(&pir2, 4096);
    make_pir(e.sk, p.transaction_id.bytes, 16, iccid, false, &pir2);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir2, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_MISMATCH);
    cr_assert_not(ok);
    cr_assert_eq(pkg_state(&f, p.package_id.bytes), PL_KM_PKG_INSTALLED);
    /* A station error after proof changes nothing. */
    cr_assert_eq(report(&f, 0, ST_A, &p, O_FPA, NULL, &ok, &st), 0);
    cr_assert_eq(st, PL_KM_PKG_INSTALLED);
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.profiles_installed, 1);
    cr_assert_eq(s.otk_consumed, 1);
    pl_wr_free(&pir);
    pl_wr_free(&pir2);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, forged_and_unknown_pirs_rejected)
{
    struct fx f;
    struct teuicc e, other;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 8, f.now);
    teuicc_init(&other, f.p, 9, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package p, q;
    uint8_t iccid[10], iccid_q[10];
    lease_one(&f, &e, 0, &p, iccid);
    lease_one(&f, &e, 1, &q, iccid_q);
    bool ok = true;
    int st = 0;
    /* Fake success signed by another chip's key (case 10). */
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, 4096);
    make_pir(other.sk, p.transaction_id.bytes, 16, iccid, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_INVALID);
    cr_assert_not(ok);
    /* A genuine PIR with one bit flipped in its signed part. */
    pl_wr_reset(&pir);
    make_pir(e.sk, p.transaction_id.bytes, 16, iccid, true, &pir);
    pir.buf[pir.len - 70] ^= 0x01;
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_INVALID);
    /* Not a PIR at all. */
    struct pl_wr junk;
    pl_wr_init_dyn(&junk, 64);
    pl_wr_bytes(&junk, "\xBF\x37\x01\x00", 4);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &junk, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_INVALID);
    /* A genuine PIR for a transaction the Key Maker never issued. */
    uint8_t tid[16];
    memset(tid, 0x5A, 16);
    pl_wr_reset(&pir);
    make_pir(e.sk, tid, 16, iccid, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_UNKNOWN_TRANSACTION);
    /* A genuine PIR of package q presented for package p (old PIR replayed, case 11). */
    pl_wr_reset(&pir);
    make_pir(e.sk, q.transaction_id.bytes, 16, iccid_q, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_MISMATCH);
    /* A genuine success PIR naming another ICCID than the package's profile. */
    pl_wr_reset(&pir);
    make_pir(e.sk, p.transaction_id.bytes, 16, iccid_q, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &p, O_PIR, &pir, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_PIR_MISMATCH);
    /* None of it changed anything. */
    cr_assert_eq(pkg_state(&f, p.package_id.bytes), PL_KM_PKG_ISSUED);
    cr_assert_eq(pkg_state(&f, q.package_id.bytes), PL_KM_PKG_ISSUED);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_BOUND);
    /* Unknown package id for a station claim. */
    provline_keymaker_Package u = p;
    memset(u.package_id.bytes, 0x11, 16);
    cr_assert_eq(report(&f, 0, ST_A, &u, O_RELEASED, NULL, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_UNKNOWN_PACKAGE);
    pl_wr_free(&pir);
    pl_wr_free(&junk);
    teuicc_fini(&e);
    teuicc_fini(&other);
    fx_fini(&f);
}

Test(keymaker, reconciliation_of_each_case)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 10, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package pa, pb, pc, pd;
    uint8_t ia[10], ib[10], ic[10], id[10];
    lease_one(&f, &e, 0, &pa, ia);
    lease_one(&f, &e, 1, &pb, ib);
    lease_one(&f, &e, 2, &pc, ic);
    lease_one(&f, &e, 3, &pd, id);
    bool ok = false;
    int st = 0;
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, 4096);

    /* a: verified PIR error -> failed, OTK VOID, the profile back in the inventory. */
    make_pir(e.sk, pa.transaction_id.bytes, 16, NULL, false, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &pa, O_PIR, &pir, &ok, &st), 0);
    cr_assert(ok);
    cr_assert_eq(st, PL_KM_PKG_FAILED);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_VOID);
    provline_keymaker_Msg *r = jit(&f, 0, ST_A, e.eid, 1); /* VOID is never rebound */
    expect_error(r, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    msg_free(r);

    /* b: station error -> possibly-used, OTK stays BOUND; a later PIR settles it. */
    cr_assert_eq(report(&f, 0, ST_A, &pb, O_FPA, NULL, &ok, &st), 0);
    cr_assert(ok);
    cr_assert_eq(st, PL_KM_PKG_POSSIBLY_USED);
    cr_assert_eq(otk_state(&f, e.eid, 2), PL_KM_OTK_BOUND);
    /* Another station's unsigned claim is refused. */
    cr_assert_eq(report(&f, 1, ST_B, &pc, O_RELEASED, NULL, &ok, &st),
                 provline_keymaker_ErrorCode_ERROR_NOT_OWNER);
    cr_assert_eq(pkg_state(&f, pc.package_id.bytes), PL_KM_PKG_ISSUED);
    pl_wr_reset(&pir);
    make_pir(e.sk, pb.transaction_id.bytes, 16, ib, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &pb, O_PIR, &pir, &ok, &st), 0);
    cr_assert_eq(st, PL_KM_PKG_INSTALLED);
    cr_assert_eq(otk_state(&f, e.eid, 2), PL_KM_OTK_CONSUMED);

    /* c: released -> possibly-used (no proof: the BPP is still loadable on that chip). */
    cr_assert_eq(report(&f, 0, ST_A, &pc, O_RELEASED, NULL, &ok, &st), 0);
    cr_assert_eq(st, PL_KM_PKG_POSSIBLY_USED);

    /* d: lease expires without any report -> possibly-used (case 9). */
    unsigned n = 99;
    cr_assert_eq(pl_km_expire(f.km, &n), PL_OK);
    cr_assert_eq(n, 0);
    f.now += 601;
    cr_assert_eq(pl_km_expire(f.km, &n), PL_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(pkg_state(&f, pd.package_id.bytes), PL_KM_PKG_POSSIBLY_USED);

    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.pkg_failed, 1);
    cr_assert_eq(s.pkg_installed, 1);
    cr_assert_eq(s.pkg_possibly_used, 2);
    cr_assert_eq(s.pkg_issued, 0);
    cr_assert_eq(s.otk_void, 1);
    cr_assert_eq(s.otk_consumed, 1);
    cr_assert_eq(s.otk_bound, 2);
    cr_assert_eq(s.profiles_installed, 1);
    cr_assert_eq(s.profiles_reserved, 2); /* c and d: possibly on their chips */
    cr_assert_eq(s.profiles_available, 20 - 3);

    /* Hello lists what the station still holds unsettled. */
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_HELLO);
    r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->body.hello_ack.outstanding_count, 2);
    msg_free(m);
    msg_free(r);
    pl_wr_free(&pir);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, prefetch_ack_and_inventory)
{
    struct fx f;
    struct teuicc a, b;
    fx_init(&f, PL_CURVE_BP256R1, true);
    teuicc_init(&a, f.p, 11, f.now);
    teuicc_init(&b, f.p, 12, f.now);
    upload_ok(&f, &a);
    upload_ok(&f, &b);
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_LEASE_REQUEST);
    provline_keymaker_LeaseRequest *q = &m->body.lease_request;
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_PREFETCH;
    q->max_packages = 8;
    q->eids_count = 3;
    cr_assert_eq(PL_KM_SET_BYTES(q->eids[0], a.eid, 16), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(q->eids[1], b.eid, 16), PL_OK);
    uint8_t unknown[16];
    memset(unknown, 0x89, 16);
    cr_assert_eq(PL_KM_SET_BYTES(q->eids[2], unknown, 16), PL_OK);
    provline_keymaker_Msg *r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_LEASE);
    cr_assert_eq(r->body.lease.packages_count, 2);
    uint8_t icc[10];
    open_package(&f, &a, 0, &r->body.lease.packages[0], icc);
    open_package(&f, &b, 0, &r->body.lease.packages[1], icc);
    /* Ack: both known; a foreign id is reported unknown. */
    provline_keymaker_Msg *ack = msg_new(&f, 0, PL_KM_ACK);
    ack->body.ack.lease_id = (provline_keymaker_Ack_lease_id_t){0};
    cr_assert_eq(PL_KM_SET_BYTES(ack->body.ack.lease_id, r->body.lease.lease_id.bytes, 16), PL_OK);
    ack->body.ack.package_ids_count = 3;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(PL_KM_SET_BYTES(ack->body.ack.package_ids[i],
                                     r->body.lease.packages[i].package_id.bytes, 16),
                     PL_OK);
    memset(ack->body.ack.package_ids[2].bytes, 0x77, 16);
    ack->body.ack.package_ids[2].size = 16;
    provline_keymaker_Msg *ar = send_msg(&f, ST_A, ack, NULL);
    cr_assert_eq(ar->which_body, PL_KM_ACK_RESULT);
    cr_assert_eq(ar->body.ack_result.acked_count, 2);
    cr_assert_eq(ar->body.ack_result.unknown_count, 1);
    /* The same lease acked by another station: nothing of it is theirs. */
    msg_free(ar);
    ack->seq = ++f.seq[1];
    cr_assert_eq(f.rng.fill(f.rng.user, ack->msg_id.bytes, 16), PL_OK);
    ar = send_msg(&f, ST_B, ack, NULL);
    cr_assert_eq(ar->body.ack_result.acked_count, 0);
    cr_assert_eq(ar->body.ack_result.unknown_count, 3);
    /* Again: both eUICCs have an unsettled package, so nothing new is bound. */
    m->seq = ++f.seq[0];
    cr_assert_eq(f.rng.fill(f.rng.user, m->msg_id.bytes, 16), PL_OK);
    provline_keymaker_Msg *r2 = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r2->which_body, PL_KM_LEASE);
    cr_assert_eq(r2->body.lease.packages_count, 0);
    msg_free(m);
    msg_free(r);
    msg_free(r2);
    msg_free(ack);
    msg_free(ar);
    teuicc_fini(&a);
    teuicc_fini(&b);
    fx_fini(&f);
}

Test(keymaker, empty_inventory_and_bad_frames)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, false);
    teuicc_init(&e, f.p, 13, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Msg *r = jit(&f, 0, ST_A, e.eid, 1);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_NO_PROFILE);
    msg_free(r);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_FREE); /* refusal rolled back */
    /* Garbage and unsupported versions get an unrecorded Error. */
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    r = send_raw(&f, ST_A, junk, sizeof(junk), NULL);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_MALFORMED);
    cr_assert_eq(r->reply_to.size, 0);
    msg_free(r);
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_HELLO);
    m->version = PL_KM_VERSION + 1u;
    struct pl_wr w;
    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_ERR_UNSUPPORTED);
    pl_wr_free(&w);
    /* encode by hand (pl_km_msg_encode refuses it): answered in the Key Maker's version */
    uint8_t frame[256];
    pb_ostream_t os = pb_ostream_from_buffer(frame, sizeof(frame));
    cr_assert(pb_encode(&os, provline_keymaker_Msg_fields, m));
    r = send_raw(&f, ST_A, frame, os.bytes_written, NULL);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNSUPPORTED_VERSION);
    cr_assert_eq(r->version, PL_KM_VERSION);
    msg_free(r);
    /* A version 1 station still gets answers, in version 1. */
    m->version = 1;
    r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_HELLO_ACK);
    cr_assert_eq(r->version, 1);
    msg_free(r);
    msg_free(m);
    /* A reply-type message sent as a request. */
    m = msg_new(&f, 0, PL_KM_ACK_RESULT);
    m->body.ack_result.lease_id.size = 16;
    r = send_msg(&f, ST_A, m, NULL);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNEXPECTED);
    msg_free(r);
    msg_free(m);
    /* Adding the same profile twice. */
    char path[512];
    size_t len;
    uint8_t *upp =
        pl_test_read_file(pl_test_src(path, sizeof(path), "tests/data/ts48/TS48v1_A.der"), &len);
    cr_assert_not_null(upp);
    cr_assert_eq(pl_km_add_profile(f.km, "a", upp, len), PL_OK);
    cr_assert_eq(pl_km_add_profile(f.km, "b", upp, len), PL_ERR_EXISTS);
    cr_assert_neq(pl_km_add_profile(f.km, "c", upp + 1, len - 1), PL_OK);
    free(upp);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, deletion_tokens_counter)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_P256, false);
    teuicc_init(&e, f.p, 14, f.now);
    upload_ok(&f, &e);
    struct pl_eckey *dpf_pub = NULL;
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(f.p, PL_PKI_DPF), &dpf_pub), PL_OK);
    for (uint64_t want = 1; want <= 2; want++) {
        provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_TOKEN_REQUEST);
        cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, e.eid, 16), PL_OK);
        provline_keymaker_Msg *r = send_msg(&f, ST_A, m, NULL);
        cr_assert_eq(r->which_body, PL_KM_TOKEN);
        cr_assert_eq(r->body.otk_deletion_token.counter, want);
        struct pl_es10f_delete_otks_req req;
        cr_assert_eq(pl_es10f_delete_otks_req_decode(r->body.otk_deletion_token.request.bytes,
                                                     r->body.otk_deletion_token.request.size, &req),
                     PL_OK);
        int reason = -1;
        cr_assert_eq(pl_es10f_delete_otks_req_check(&req, dpf_pub, e.eid, want - 1, &reason),
                     PL_OK);
        cr_assert_eq(reason, 0);
        /* The eUICC refuses it as a replay once it has seen this counter. */
        cr_assert_eq(pl_es10f_delete_otks_req_check(&req, dpf_pub, e.eid, want, &reason),
                     PL_ERR_REPLAY);
        msg_free(m);
        msg_free(r);
    }
    /* Persisted: a restart continues at 3. */
    pl_km_close(f.km);
    fx_open_km(&f);
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_TOKEN_REQUEST);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, e.eid, 16), PL_OK);
    provline_keymaker_Msg *r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->body.otk_deletion_token.counter, 3);
    msg_free(r);
    m->seq = ++f.seq[0];
    cr_assert_eq(f.rng.fill(f.rng.user, m->msg_id.bytes, 16), PL_OK);
    m->body.otk_deletion_token_request.eid.bytes[15] ^= 0xFF;
    r = send_msg(&f, ST_A, m, NULL);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_UNKNOWN_EID);
    msg_free(r);
    msg_free(m);
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.deletion_tokens, 3);
    pl_eckey_free(dpf_pub);
    teuicc_fini(&e);
    fx_fini(&f);
}

Test(keymaker, keys_and_status_file)
{
    char dir[256], prefix[300], path[320];
    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(prefix, sizeof(prefix), "%s/k", dir);
    cr_assert_eq(pl_km_keygen(prefix), PL_OK);
    cr_assert_eq(pl_km_keygen(prefix), PL_ERR_EXISTS);
    uint8_t key[32];
    snprintf(path, sizeof(path), "%s.key", prefix);
    cr_assert_eq(pl_km_read_key(path, key), PL_OK);
    snprintf(path, sizeof(path), "%s.pub", prefix);
    cr_assert_eq(pl_km_read_key(path, key), PL_OK);
    snprintf(path, sizeof(path), "%s/bad", dir);
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp);
    fputs("not-a-z85-key\n", fp);
    fclose(fp);
    cr_assert_eq(pl_km_read_key(path, key), PL_ERR_CONFIG);
    snprintf(path, sizeof(path), "%s/missing", dir);
    cr_assert_eq(pl_km_read_key(path, key), PL_ERR_IO);
    struct pl_km_server_config sc = {.bind = "tcp://127.0.0.1:1"};
    char secret[320], allow[320];
    snprintf(secret, sizeof(secret), "%s.key", prefix);
    snprintf(allow, sizeof(allow), "%s/allow", dir);
    sc.curve_secret_file = secret;
    sc.allow_file = allow;
    fp = fopen(allow, "w");
    fputs("# stations\n\n", fp);
    fclose(fp);
    cr_assert_eq(pl_km_server_check(&sc), PL_ERR_CONFIG); /* empty list */
    fp = fopen(allow, "a");
    fputs("  rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", fp);
    fclose(fp);
    cr_assert_eq(pl_km_server_check(&sc), PL_OK);
    fp = fopen(allow, "a");
    fputs("short\n", fp);
    fclose(fp);
    cr_assert_eq(pl_km_server_check(&sc), PL_ERR_CONFIG);
    pl_test_rmtree(dir);
}

/* The eUICC's signed DeleteRemainingOtks response for (eid, counter) listing `deleted`. */
static void make_receipt(const struct pl_eckey *key, const uint8_t eid[16], uint64_t counter,
                         const uint16_t *deleted, size_t n, struct pl_wr *out)
{
    struct pl_es10f_token t;
    struct pl_es10f_delete_otks_rsp rsp;
    struct pl_rng rng = PL_RNG_SYSTEM;
    memset(&t, 0, sizeof(t));
    memcpy(t.eid, eid, 16);
    t.counter = counter;
    t.op = PL_ES10F_OP_DELETE_REMAINING_OTKS;
    memset(&rsp, 0, sizeof(rsp));
    rsp.ok = true;
    pl_es10f_receipt_init(&rsp.receipt, &t);
    rsp.receipt.n_deleted = n;
    for (size_t i = 0; i < n; i++)
        rsp.receipt.deleted[i] = deleted[i];
    cr_assert_eq(pl_es10f_receipt_sign(&rsp.receipt, key, &rng, rsp.sig), PL_OK);
    cr_assert_eq(pl_es10f_delete_otks_rsp_encode(&rsp, out), PL_OK);
}

static provline_keymaker_Msg *send_receipt(struct fx *f, const uint8_t eid[16], uint64_t counter,
                                           const struct pl_wr *rsp)
{
    provline_keymaker_Msg *m = msg_new(f, 0, PL_KM_RECEIPT);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_receipt.eid, eid, 16), PL_OK);
    m->body.otk_deletion_receipt.counter = counter;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_receipt.response, rsp->buf, rsp->len), PL_OK);
    provline_keymaker_Msg *r = send_msg(f, ST_A, m, NULL);
    msg_free(m);
    return r;
}

/* End of production: a signed receipt proves which OTKs were still FREE on the chip, so a
 * possibly-used package on one of them is settled "failed" (never loaded); a package whose
 * OTK the chip consumed stays as it is. */
Test(keymaker, deletion_receipt_settles_possibly_used)
{
    struct fx f;
    struct teuicc e, other;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 15, f.now);
    teuicc_init(&other, f.p, 16, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package p1, p2;
    uint8_t i1[10], i2[10];
    lease_one(&f, &e, 0, &p1, i1);
    lease_one(&f, &e, 1, &p2, i2);
    bool ok = false;
    int st = 0;
    cr_assert_eq(report(&f, 0, ST_A, &p1, O_FPA, NULL, &ok, &st), 0);
    cr_assert_eq(st, PL_KM_PKG_POSSIBLY_USED);
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, 4096);
    make_pir(e.sk, p2.transaction_id.bytes, 16, i2, true, &pir);
    cr_assert_eq(report(&f, 0, ST_A, &p2, O_PIR, &pir, &ok, &st), 0);

    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_TOKEN_REQUEST);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, e.eid, 16), PL_OK);
    provline_keymaker_Msg *r = send_msg(&f, ST_A, m, NULL);
    cr_assert_eq(r->which_body, PL_KM_TOKEN);
    uint64_t counter = r->body.otk_deletion_token.counter;
    msg_free(m);
    msg_free(r);

    static const uint16_t deleted[] = {1, 3}; /* OTK 4 the registry knows FREE too */
    struct pl_wr rcpt;
    pl_wr_init_dyn(&rcpt, 4096);
    /* Refused: signed by another chip; for a counter never issued; not a receipt. */
    make_receipt(other.sk, e.eid, counter, deleted, 2, &rcpt);
    r = send_receipt(&f, e.eid, counter, &rcpt);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_RECEIPT_INVALID);
    msg_free(r);
    pl_wr_reset(&rcpt);
    make_receipt(e.sk, e.eid, counter + 1, deleted, 2, &rcpt);
    r = send_receipt(&f, e.eid, counter + 1, &rcpt);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_RECEIPT_INVALID);
    msg_free(r);
    r = send_receipt(&f, e.eid, counter, &pir);
    expect_error(r, provline_keymaker_ErrorCode_ERROR_RECEIPT_INVALID);
    msg_free(r);
    cr_assert_eq(pkg_state(&f, p1.package_id.bytes), PL_KM_PKG_POSSIBLY_USED);

    pl_wr_reset(&rcpt);
    make_receipt(e.sk, e.eid, counter, deleted, 2, &rcpt);
    r = send_receipt(&f, e.eid, counter, &rcpt);
    cr_assert_eq(r->which_body, PL_KM_RECEIPT_ACK);
    cr_assert_eq(r->body.otk_deletion_receipt_ack.settled_count, 1);
    cr_assert_eq(memcmp(r->body.otk_deletion_receipt_ack.settled[0].bytes, p1.package_id.bytes, 16),
                 0);
    cr_assert_eq(r->body.otk_deletion_receipt_ack.voided_count, 3); /* 1, 3 and the stale 4 */
    msg_free(r);
    cr_assert_eq(pkg_state(&f, p1.package_id.bytes), PL_KM_PKG_FAILED);
    cr_assert_eq(pkg_state(&f, p2.package_id.bytes), PL_KM_PKG_INSTALLED);
    cr_assert_eq(otk_state(&f, e.eid, 1), PL_KM_OTK_VOID);
    cr_assert_eq(otk_state(&f, e.eid, 2), PL_KM_OTK_CONSUMED);
    cr_assert_eq(otk_state(&f, e.eid, 3), PL_KM_OTK_VOID);
    cr_assert_eq(otk_state(&f, e.eid, 4), PL_KM_OTK_VOID);
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats(f.km, &s), PL_OK);
    cr_assert_eq(s.profiles_installed, 1);
    cr_assert_eq(s.profiles_reserved, 0);
    cr_assert_eq(s.pkg_possibly_used, 0);
    pl_wr_free(&pir);
    pl_wr_free(&rcpt);
    teuicc_fini(&e);
    teuicc_fini(&other);
    fx_fini(&f);
}

/* ------------------------------------------------ signed audit checkpoints ---- */

/* A released-entry report for p carrying audit head (chain, seq, h); v1 = the head only. */
static provline_keymaker_Msg *send_audit_report(struct fx *f, int st, const char *station,
                                                const provline_keymaker_Package *p,
                                                const struct pl_km_audit_head *a, bool v1)
{
    provline_keymaker_Msg *m = report_msg(f, st, p, O_RELEASED, NULL);
    if (v1) {
        m->version = 1;
        cr_assert_eq(PL_KM_SET_BYTES(m->body.report.audit_head, a->h, 32), PL_OK);
    } else {
        cr_assert_eq(pl_km_report_set_audit(&m->body.report, a), PL_OK);
    }
    provline_keymaker_Msg *r = send_msg(f, station, m, NULL);
    msg_free(m);
    cr_assert_eq(r->which_body, PL_KM_REPORT_ACK);
    cr_assert_eq(r->body.report_ack.results_count, 1);
    return r;
}

/* IFPP.md §6.3: "h_n in every REPORT, Key Maker returns a signed checkpoint". */
Test(keymaker, report_audit_checkpoint_signed_and_forks_refused)
{
    struct fx f;
    struct teuicc e;
    fx_init(&f, PL_CURVE_BP256R1, true);
    teuicc_init(&e, f.p, 21, f.now);
    upload_ok(&f, &e);
    provline_keymaker_Package p;
    uint8_t iccid[10];
    lease_one(&f, &e, 0, &p, iccid);
    struct pl_eckey *dpf = NULL, *ci = NULL;
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(f.p, PL_PKI_DPF), &dpf), PL_OK);
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(f.p, PL_PKI_CI), &ci), PL_OK);
    uint8_t key_a[32];
    cr_assert_not_null(zmq_z85_decode(key_a, ST_A));

    struct pl_km_audit_head a;
    memset(a.chain_id, 0xc4, sizeof(a.chain_id));
    memset(a.h, 0x17, sizeof(a.h));
    a.seq = 5;
    provline_keymaker_Msg *r = send_audit_report(&f, 0, ST_A, &p, &a, false);
    const provline_keymaker_ReportAck *ra = &r->body.report_ack;
    cr_assert(ra->results[0].accepted);
    cr_assert(ra->has_checkpoint);
    cr_assert_eq(ra->checkpoint_refused, 0);
    const provline_keymaker_AuditCheckpoint *cp = &ra->checkpoint;
    cr_assert_eq(cp->seq, 5);
    cr_assert_eq(memcmp(cp->station_key.bytes, key_a, 32), 0, "signed for another station");
    cr_assert_eq(memcmp(cp->chain_id.bytes, a.chain_id, 16), 0);
    cr_assert_eq(memcmp(cp->head.bytes, a.h, 32), 0);
    /* Signed with the SM-DPf key (CERT.DPpb), and with nothing else. */
    cr_assert_eq(pl_km_checkpoint_verify(dpf, cp), PL_OK);
    cr_assert_eq(pl_km_checkpoint_verify(ci, cp), PL_ERR_BAD_SIGNATURE);
    uint8_t first_sig[64];
    memcpy(first_sig, cp->signature.bytes, 64);
    msg_free(r);

    /* The same point again: the same signature (nothing new signed). */
    r = send_audit_report(&f, 0, ST_A, &p, &a, false);
    cr_assert(r->body.report_ack.has_checkpoint);
    cr_assert_eq(memcmp(r->body.report_ack.checkpoint.signature.bytes, first_sig, 64), 0);
    msg_free(r);

    /* Another head for the same (station, chain, seq): a rewritten trail. Refused, the entry
     * is judged all the same, and the fork is on record. */
    a.h[0] ^= 0xff;
    r = send_audit_report(&f, 0, ST_A, &p, &a, false);
    ra = &r->body.report_ack;
    cr_assert_not(ra->has_checkpoint);
    cr_assert_eq(ra->checkpoint_refused, provline_keymaker_ErrorCode_ERROR_AUDIT_FORK);
    cr_assert(ra->results[0].accepted);
    msg_free(r);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(f.db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT (SELECT count(*) FROM event WHERE kind = 'audit_fork'),"
                                    " (SELECT count(*) FROM audit_checkpoint)",
                                    -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_eq(sqlite3_column_int(st, 0), 1);
    cr_assert_eq(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Station B's trail is its own: the same (chain, seq) signed for B's key. */
    r = send_audit_report(&f, 1, ST_B, &p, &a, false);
    cr_assert(r->body.report_ack.has_checkpoint);
    cr_assert_neq(memcmp(r->body.report_ack.checkpoint.station_key.bytes, key_a, 32), 0);
    cr_assert_eq(pl_km_checkpoint_verify(dpf, &r->body.report_ack.checkpoint), PL_OK);
    cr_assert_not(r->body.report_ack.results[0].accepted); /* B does not hold the lease */
    msg_free(r);

    /* Version 1 (head only): recorded, not signed, answered in version 1. */
    a.seq = 6;
    r = send_audit_report(&f, 0, ST_A, &p, &a, true);
    cr_assert_eq(r->version, 1);
    cr_assert_not(r->body.report_ack.has_checkpoint);
    cr_assert_eq(r->body.report_ack.checkpoint_refused, 0);
    msg_free(r);

    pl_eckey_free(dpf);
    pl_eckey_free(ci);
    teuicc_fini(&e);
    fx_fini(&f);
}

/* ------------------------------------------------------ counters, metrics ---- */

static bool has_line(const struct pl_wr *w, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    size_t n = strlen(want);
    for (size_t i = 0; i + n <= w->len; i++)
        if (memcmp(w->buf + i, want, n) == 0)
            return true;
    return false;
}

Test(keymaker, counters_and_metrics_text)
{
    struct fx f;
    struct teuicc e;
    struct pl_km_counters k;
    fx_init(&f, PL_CURVE_P256, true);
    teuicc_init(&e, f.p, 22, f.now);
    pl_km_counters(f.km, &k);
    cr_assert_eq(k.messages[PL_KM_LEASE_REQUEST], 0);

    upload_ok(&f, &e);
    provline_keymaker_Package p;
    uint8_t iccid[10];
    lease_one(&f, &e, 0, &p, iccid);
    provline_keymaker_Msg *r = jit(&f, 0, ST_A, e.eid, 1); /* the same OTK again */
    expect_error(r, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    msg_free(r);
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    r = send_raw(&f, ST_A, junk, sizeof(junk), NULL);
    msg_free(r);
    /* A retried request: answered from the record. */
    provline_keymaker_Msg *m = msg_new(&f, 0, PL_KM_TOKEN_REQUEST);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, e.eid, 16), PL_OK);
    msg_free(send_msg(&f, ST_A, m, NULL));
    msg_free(send_msg(&f, ST_A, m, NULL));
    msg_free(m);
    /* A reply type sent as a request. */
    m = msg_new(&f, 0, PL_KM_ACK_RESULT);
    m->body.ack_result.lease_id.size = 16;
    msg_free(send_msg(&f, ST_A, m, NULL));
    msg_free(m);

    pl_km_counters(f.km, &k);
    cr_assert_eq(k.messages[PL_KM_OTK_UPLOAD], 1);
    cr_assert_eq(k.messages[PL_KM_LEASE_REQUEST], 2);
    cr_assert_eq(k.messages[PL_KM_TOKEN_REQUEST], 2);
    cr_assert_eq(k.messages[0], 1);
    cr_assert_eq(k.errors[provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE], 1);
    cr_assert_eq(k.errors[provline_keymaker_ErrorCode_ERROR_MALFORMED], 1);
    cr_assert_eq(k.errors[provline_keymaker_ErrorCode_ERROR_UNEXPECTED], 1);
    cr_assert_eq(k.dedup_hits, 1);

    struct pl_wr w;
    pl_wr_init_dyn(&w, 1u << 20);
    cr_assert_eq(pl_km_metrics_render(f.km, &w), PL_OK);
    cr_assert(has_line(&w, "provline_keymaker_packages{state=\"issued\"} 1"));
    cr_assert(has_line(&w, "provline_keymaker_packages_issued_total 1"));
    cr_assert(has_line(&w, "provline_keymaker_otks{state=\"BOUND\"} 1"));
    cr_assert(has_line(&w, "provline_keymaker_otks{state=\"FREE\"} 3"));
    cr_assert(has_line(&w, "provline_keymaker_messages_total{type=\"lease_request\"} 2"));
    cr_assert(has_line(&w, "provline_keymaker_messages_total{type=\"invalid\"} 1"));
    cr_assert(has_line(&w, "provline_keymaker_messages_total{type=\"unexpected\"} 1"));
    cr_assert(has_line(&w, "provline_keymaker_errors_total{code=\"OTK_NOT_FREE\"} 1"));
    cr_assert(has_line(&w, "provline_keymaker_errors_total{code=\"AUDIT_FORK\"} 0"));
    cr_assert(has_line(&w, "provline_keymaker_dedup_hits_total 1"));
    cr_assert(has_line(&w, "# TYPE provline_keymaker_errors_total counter"));
    pl_wr_free(&w);
    teuicc_fini(&e);
    fx_fini(&f);
}

/* The settings API without the daemon: names, unknown settings, apply. */
static void count_problem(void *user, const char *where, const char *setting, const char *what)
{
    (void)where;
    (void)setting;
    (void)what;
    (*(unsigned *)user)++;
}

Test(keymaker, settings_set_check_apply)
{
    struct pl_km_settings s;
    struct pl_km_daemon d;
    unsigned seen = 0;
    pl_km_settings_init(&s, count_problem, &seen);
    cr_assert_str_eq(pl_km_setting_name(PL_KM_SET_CURVE_SECRET), "curve_secret");
    cr_assert_null(pl_km_setting_name((enum pl_km_setting)PL_KM_SETTINGS));
    cr_assert_eq(pl_km_settings_set(&s, "colour", "blue", "test"), PL_ERR_CONFIG);
    cr_assert_eq(seen, 1);
    cr_assert_eq(pl_km_settings_apply(&s, &d), PL_ERR_CONFIG); /* required ones missing */
    cr_assert_eq(pl_km_settings_check(&s, time(NULL)), 6);     /* each required one */
    cr_assert_eq(seen, 7);
    const char *good[][2] = {{"pki", "/p"},        {"db", "/d"},
                             {"profiles", "/pr"},  {"bind", "tcp://127.0.0.1:1"},
                             {"curve-secret", "/k"}, {"allow", "/a"},
                             {"lease_seconds", "60"}, {"rsk", "on"},
                             {"verbose", "0"},      {"metrics", "127.0.0.1:9"}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_assert_eq(pl_km_settings_set(&s, good[i][0], good[i][1], "test"), PL_OK);
    cr_assert_eq(pl_km_settings_set(&s, "lease_seconds", "120", "--lease-seconds"), PL_OK);
    cr_assert_eq(pl_km_settings_apply(&s, &d), PL_OK);
    cr_assert_str_eq(d.server.curve_secret_file, "/k");
    cr_assert_str_eq(d.server.metrics, "127.0.0.1:9");
    cr_assert_eq(d.km.lease_seconds, 120); /* the later value wins */
    cr_assert(d.km.replace_session_keys);
    cr_assert_not(d.verbose);
    cr_assert_null(d.km.keymaker_id);
    cr_assert_eq(pl_km_settings_set(&s, "rsk", "sometimes", "test"), PL_OK);
    cr_assert_eq(pl_km_settings_apply(&s, &d), PL_ERR_CONFIG);
    pl_km_settings_free(&s);
    cr_assert_null(s.value[PL_KM_SET_PKI]);
}
