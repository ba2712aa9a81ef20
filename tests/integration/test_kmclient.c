/* Integration: the station's Key Maker client (keymaker-client/kmclient.h) against the real
 * `provline-keymaker serve` process, with software eUICCs as the devices: Hello, OtkUpload
 * of a minted eUICC's GetIfppInfo, just-in-time lease, load, Report + ReportAck, deletion
 * token and receipt; prefetch keeping N packages ahead; a request replayed with the same
 * msg_id getting the identical reply and no second lease; a reply lost on a cut link
 * recovered by retransmission; the Key Maker SIGKILLed and restarted on the same database
 * with the client resyncing; a restarted station resyncing its seq; an unreachable Key Maker
 * and a wrong pinned key ending in PL_ERR_TIMEOUT, not a hang.
 * docs/station-keymaker-protocol.md §2-§5; reference/IFPP.md §6.3, §7;
 * DEPENDENCIES.md §6 (CurveZMQ).
 * PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"
#include "pl_kmdev.h"
#include "pl_kmproc.h"
#include "pl_tamper.h"
#include "pl_test.h"
#include "provline/kmclient/kmclient.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/secret.h"
#include "provline/sim/keymaker.h"
#include "provline/station/audit.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define E(x)          provline_keymaker_ErrorCode_ERROR_##x
#define HANG_GUARD_MS 60000 /* only a guard against hanging: never reached when all is well */

/* ---------------------------------------------------------------- helpers ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void log_sink(void *user, enum pl_kmclient_log_level level, const char *line)
{
    FILE *f = user;
    if (f)
        fprintf(f, "%d %s\n", (int)level, line);
}

static FILE *g_log;

static void open_log(const struct pl_kmproc *k)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/client.log", k->t.dir);
    g_log = fopen(p, "w");
}

static void close_log(void)
{
    if (g_log)
        fclose(g_log);
    g_log = NULL;
}

static void base_config(const struct pl_kmproc *k, struct pl_kmclient_config *cfg)
{
    pl_kmclient_config_init(cfg);
    cfg->endpoint = k->endpoint;
    cfg->server_public_file = k->server_pub_file;
    cfg->secret_file = k->station_key_file;
    cfg->public_file = k->station_pub_file;
    cfg->station_id = "it-station";
    cfg->attempt_ms = 400;
    cfg->backoff_max_ms = 1600;
    cfg->deadline_ms = 30000;
    cfg->log = log_sink;
    cfg->log_user = g_log;
}

static struct pl_kmclient *client(const struct pl_kmclient_config *cfg)
{
    struct pl_kmclient *c = NULL;
    cr_assert_eq(pl_kmclient_new(cfg, &c), PL_OK);
    return c;
}

/* Runs the event loop (the way a station does: zmq_poll on the socket for the client's
 * timeout) until pred holds. */
static void drive(struct pl_kmclient *c, bool (*pred)(struct pl_kmclient *, void *), void *user)
{
    uint64_t start = mono_ms();
    for (;;) {
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
        if (pred(c, user))
            return;
        cr_assert_lt(mono_ms() - start, HANG_GUARD_MS, "event loop did not converge");
        int t = pl_kmclient_timeout_ms(c);
        if (t < 0 || t > 100)
            t = 100;
        zmq_pollitem_t it;
        pl_kmclient_pollitem(c, &it);
        cr_assert_geq(zmq_poll(&it, 1, t), 0);
    }
}

/* Polls until request id completes; returns it (owned). */
static void await(struct pl_kmclient *c, uint64_t id, struct pl_kmclient_done *d)
{
    uint64_t start = mono_ms();
    memset(d, 0, sizeof(*d));
    for (;;) {
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
        if (pl_kmclient_take(c, id, d) == PL_OK)
            return;
        cr_assert_lt(mono_ms() - start, HANG_GUARD_MS, "request %llu never completed",
                     (unsigned long long)id);
        int t = pl_kmclient_timeout_ms(c);
        if (t < 0 || t > 100)
            t = 100;
        zmq_pollitem_t it;
        pl_kmclient_pollitem(c, &it);
        cr_assert_geq(zmq_poll(&it, 1, t), 0);
    }
}

static struct pl_km_stats km_stats(const struct pl_kmproc *k)
{
    struct pl_km_stats s;
    cr_assert_eq(pl_km_stats_file(k->db, &s), PL_OK);
    return s;
}

/* ---- the devices ---- */

static void dev_open(struct pl_kmproc *k, struct pl_kmdev *d, const char *name, unsigned n_otks)
{
    cr_assert_eq(pl_kmdev_open(&k->t, name, n_otks, d), PL_OK);
}

/* The station's load: the envelope's ES10f header, then the BPP segments; the raw PIR. */
static void dev_load(struct pl_kmdev *d, const uint8_t *envelope, size_t len, struct pl_wr *pir)
{
    struct pl_ifpp_pkg env;
    size_t n = 0, sent = 0;
    uint16_t sw = 0;

    cr_assert_eq(pl_ifpp_pkg_decode(envelope, len, &env), PL_OK);
    cr_assert_eq(memcmp(env.eid, d->info->eid, 16), 0, "package for another chip");
    cr_assert_eq(pl_kmdev_load(d, &env, pir, &sw, &sent, &n), PL_OK, "sw %04x", sw);
    cr_assert_gt(pir->len, 0);
}

/* The report entry of a package's PIR (ESBPP03). */
static void pir_entry(const struct pl_kmclient_pkg *pkg, const struct pl_wr *pir,
                      provline_keymaker_ReportEntry *e)
{
    memset(e, 0, sizeof(*e));
    cr_assert_eq(PL_KM_SET_BYTES(e->package_id, pkg->package_id, 16), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e->transaction_id, pkg->transaction_id, pkg->tid_len), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e->eid, pkg->eid, 16), PL_OK);
    e->which_outcome = provline_keymaker_ReportEntry_pir_tag;
    cr_assert_eq(PL_KM_SET_BYTES(e->outcome.pir, pir->buf, pir->len), PL_OK);
}

static void upload_ok(struct pl_kmclient *c, const struct pl_kmdev *d)
{
    struct pl_kmclient_done r;
    cr_assert_eq(pl_kmclient_upload(c, d->info, &r), PL_OK, "km_error %s",
                 pl_km_error_name(r.km_error));
    cr_assert_eq(r.reply->which_body, PL_KM_OTK_UPLOAD_RESULT);
    cr_assert_eq(r.reply->body.otk_upload_result.accepted_count, d->info->n_otk);
    cr_assert_eq(r.reply->body.otk_upload_result.rejected_count, 0);
    pl_kmclient_done_free(&r);
}

static void start_km(struct pl_kmproc *k)
{
    cr_assert_eq(pl_kmproc_init(k, PL_CURVE_P256), 0);
    cr_assert_eq(pl_kmproc_start(k), 0, "provline-keymaker did not start");
    open_log(k);
}

static void stop_km(struct pl_kmproc *k)
{
    close_log();
    if (k->pid > 0) {
        int st = pl_kmproc_stop(k, SIGTERM);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "keymaker did not stop cleanly");
    }
    pl_kmproc_free(k);
}

/* ------------------------------------------------------------------ flow ---- */

Test(kmclient, hello_upload_jit_lease_load_report_token_receipt, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    struct pl_kmdev d;
    struct pl_km_audit_head head;

    start_km(&k);
    base_config(&k, &cfg);
    struct pl_kmclient *c = client(&cfg);
    cr_assert_not(pl_kmclient_synced(c));

    /* Hello: a session, and where the Key Maker is. */
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_OK);
    cr_assert_eq(r.reply->which_body, PL_KM_HELLO_ACK);
    cr_assert_eq(r.reply->body.hello_ack.last_seq_seen, 0);
    cr_assert_eq(r.ident.seq, 0, "Hello must not consume a seq");
    cr_assert(pl_kmclient_synced(c));
    cr_assert_not_null(pl_kmclient_hello_ack(c));
    pl_kmclient_done_free(&r);

    /* ESBPP02: the eUICC's own GetIfppInfo. */
    dev_open(&k, &d, "dev.state", 3);
    upload_ok(c, &d);

    /* ESBPP01 just in time, for the first OTK. */
    uint16_t otk = d.info->otk[0].otk_id;
    cr_assert_eq(pl_kmclient_lease_jit(c, d.info->eid, otk, &r), PL_OK);
    cr_assert_eq(r.reply->which_body, PL_KM_LEASE);
    struct pl_kmclient_pkg pkg;
    struct pl_kmclient_pkg none;
    cr_assert_eq(pl_kmclient_pkg_from_lease(&r.reply->body.lease, 1, &none), PL_ERR_INVAL);
    cr_assert_eq(pl_kmclient_pkg_from_lease(&r.reply->body.lease, 0, &pkg), PL_OK);
    cr_assert_eq(memcmp(pkg.eid, d.info->eid, 16), 0);
    cr_assert_eq(pkg.otk_id, otk);
    pl_kmclient_done_free(&r);
    /* The same OTK twice: refused (GENS08), as an Error reply. */
    cr_assert_eq(pl_kmclient_lease_jit(c, d.info->eid, otk, &r), PL_ERR_REMOTE);
    cr_assert_eq(r.km_error, E(OTK_NOT_FREE));
    pl_kmclient_done_free(&r);

    /* Journaled: Ack. */
    cr_assert_eq(pl_kmclient_ack(c, pkg.lease_id, pkg.package_id, 1, &r), PL_OK);
    cr_assert_eq(r.reply->body.ack_result.acked_count, 1);
    pl_kmclient_done_free(&r);

    /* Load on the chip, report the eUICC-signed PIR (ESBPP03) with an audit head. */
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, PL_ES10F_PIR_MAX);
    dev_load(&d, pkg.envelope, pkg.envelope_len, &pir);
    provline_keymaker_ReportEntry e;
    pir_entry(&pkg, &pir, &e);
    memset(&head, 0x42, sizeof(head));
    cr_assert_eq(pl_kmclient_report(c, &e, 1, &head, &r), PL_OK);
    cr_assert_eq(r.reply->which_body, PL_KM_REPORT_ACK);
    cr_assert_eq(r.reply->body.report_ack.results_count, 1);
    cr_assert(r.reply->body.report_ack.has_checkpoint); /* not checked: no certificate given */
    struct pl_kmclient_stats cs;
    pl_kmclient_stats(c, &cs);
    cr_assert_eq(cs.checkpoints_unchecked, 1);
    cr_assert(r.reply->body.report_ack.results[0].accepted);
    cr_assert_eq(r.reply->body.report_ack.results[0].state,
                 provline_keymaker_PackageState_PACKAGE_STATE_INSTALLED);
    pl_kmclient_done_free(&r);
    /* Bad input never leaves the station. */
    cr_assert_eq(pl_kmclient_report(c, &e, 0, NULL, &r), PL_ERR_INVAL);
    cr_assert_eq(pl_kmclient_lease_prefetch(c, d.info->eid, 1, 9, &r), PL_ERR_MALFORMED);

    /* End of production: token, run on the chip, receipt. */
    cr_assert_eq(pl_kmclient_deletion_token(c, d.info->eid, &r), PL_OK);
    cr_assert_eq(r.reply->body.otk_deletion_token.counter, 1);
    struct pl_wr rsp;
    uint16_t sw = 0;
    pl_wr_init_dyn(&rsp, PL_ES10F_DELETE_OTKS_RSP_MAX);
    cr_assert_eq(pl_et_es10(d.e, d.ch, r.reply->body.otk_deletion_token.request.bytes,
                            r.reply->body.otk_deletion_token.request.size, &rsp, &sw),
                 PL_OK, "sw %04x", sw);
    uint64_t counter = r.reply->body.otk_deletion_token.counter;
    pl_kmclient_done_free(&r);
    cr_assert_eq(pl_kmclient_deletion_receipt(c, d.info->eid, counter, rsp.buf, rsp.len, &r), PL_OK,
                 "km_error %s", pl_km_error_name(r.km_error));
    cr_assert_eq(r.reply->which_body, PL_KM_RECEIPT_ACK);
    cr_assert_eq(r.reply->body.otk_deletion_receipt_ack.voided_count, 2);
    pl_kmclient_done_free(&r);

    struct pl_km_stats s = km_stats(&k);
    cr_assert_eq(s.pkg_installed, 1);
    cr_assert_eq(s.pkg_issued, 0);
    cr_assert_eq(s.otk_consumed, 1);
    cr_assert_eq(s.otk_void, 2);
    cr_assert_eq(pl_kmclient_pending(c), 0);
    cr_assert_eq(pl_kmclient_last_seq(c), 7, "one seq per request sent, Hello excepted");
    cr_assert_gt(pl_kmclient_last_seq_ack(c), 0);

    pl_wr_free(&rsp);
    pl_wr_free(&pir);
    pl_kmclient_pkg_free(&pkg);
    pl_kmdev_close(&d);
    pl_kmclient_free(c);
    stop_km(&k);
}

/* ----------------------------------------------------- idempotent replay ---- */

/* `provline audit verify TRAIL [--keymaker-cert CERT]`: exit status and output. */
static int audit_verify_cli(const char *trail, const char *cert, char *out, size_t cap)
{
    char cmd[2048];
    const char *bin = getenv("PL_BIN_DIR");
    cr_assert_not_null(bin);
    if (cert)
        snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s' --keymaker-cert '%s' 2>&1",
                 bin, trail, cert);
    else
        snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s' 2>&1", bin, trail);
    return pl_test_run(cmd, out, cap);
}

/* IFPP.md §6.3: the audit head goes with the Report, the Key Maker returns a signed
 * checkpoint; the station stores it in its trail and `provline audit verify
 * --keymaker-cert` checks it against the Key Maker's certificate. */
Test(kmclient, signed_audit_checkpoint_stored_and_verified, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    struct pl_kmdev d;
    char trail[600], dpf_der[600], ci_der[600], out[2048];

    start_km(&k);
    base_config(&k, &cfg);
    snprintf(dpf_der, sizeof(dpf_der), "%s/pki/dpf.der", k.t.dir);
    snprintf(ci_der, sizeof(ci_der), "%s/pki/ci.der", k.t.dir);
    cfg.checkpoint_cert_file = dpf_der;
    struct pl_kmclient *c = client(&cfg);

    /* The station's trail, as the station keeps it. */
    snprintf(trail, sizeof(trail), "%s/station-audit.db", k.t.dir);
    struct pl_audit_config ac = {trail, NULL, NULL, NULL, NULL};
    struct pl_audit *a = NULL;
    cr_assert_eq(pl_audit_open(&ac, &a), PL_OK);

    /* A real package: upload, lease, load; the PIR reported with the audit head. */
    dev_open(&k, &d, "dev.state", 2);
    upload_ok(c, &d);
    cr_assert_eq(pl_kmclient_lease_jit(c, d.info->eid, d.info->otk[0].otk_id, &r), PL_OK);
    struct pl_kmclient_pkg pkg;
    cr_assert_eq(pl_kmclient_pkg_from_lease(&r.reply->body.lease, 0, &pkg), PL_OK);
    pl_kmclient_done_free(&r);
    cr_assert_eq(pl_audit_transition(a, "fx-1", pkg.eid, pkg.package_id, "LEASED", NULL), PL_OK);
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, PL_ES10F_PIR_MAX);
    dev_load(&d, pkg.envelope, pkg.envelope_len, &pir);
    cr_assert_eq(pl_audit_transition(a, "fx-1", pkg.eid, pkg.package_id, "RESULT", NULL), PL_OK);
    provline_keymaker_ReportEntry e;
    pir_entry(&pkg, &pir, &e);
    struct pl_km_audit_head head;
    cr_assert_eq(pl_audit_checkpoint(a, &head.seq, head.h), PL_OK);
    cr_assert_eq(head.seq, 2);
    pl_audit_chain_id(a, head.chain_id);
    cr_assert_eq(pl_kmclient_report(c, &e, 1, &head, &r), PL_OK);
    const provline_keymaker_ReportAck *ra = &r.reply->body.report_ack;
    cr_assert(ra->results[0].accepted);
    cr_assert(ra->has_checkpoint, "no checkpoint (refused: %s)",
              pl_km_error_name((int)ra->checkpoint_refused));
    struct pl_kmclient_stats cs;
    pl_kmclient_stats(c, &cs);
    cr_assert_eq(cs.checkpoints_verified, 1);

    /* Stored with the signature checked once more against CERT.DPpb. */
    struct pl_audit_signed_checkpoint sc;
    memcpy(sc.station_key, ra->checkpoint.station_key.bytes, sizeof(sc.station_key));
    memcpy(sc.chain_id, ra->checkpoint.chain_id.bytes, sizeof(sc.chain_id));
    sc.seq = ra->checkpoint.seq;
    memcpy(sc.h, ra->checkpoint.head.bytes, sizeof(sc.h));
    memcpy(sc.sig, ra->checkpoint.signature.bytes, sizeof(sc.sig));
    pl_kmclient_done_free(&r);
    cr_assert_eq(pl_audit_record_signed_checkpoint(a, &sc, pl_kmclient_checkpoint_key(c)), PL_OK);
    cr_assert_eq(pl_audit_transition(a, "fx-1", pkg.eid, pkg.package_id, "ACKED", NULL), PL_OK);

    /* The same point with another head (a rewritten trail) is never signed. */
    struct pl_km_audit_head fork = head;
    fork.h[0] ^= 0xff;
    cr_assert_eq(pl_kmclient_report(c, &e, 1, &fork, &r), PL_OK);
    cr_assert_not(r.reply->body.report_ack.has_checkpoint);
    cr_assert_eq(r.reply->body.report_ack.checkpoint_refused,
                 provline_keymaker_ErrorCode_ERROR_AUDIT_FORK);
    pl_kmclient_done_free(&r);
    pl_audit_close(a);
    cr_assert_eq(pl_kmproc_log_count(&k, "event=audit_fork"), 1);

    /* verify: OK with the Key Maker's certificate, naming this station's key. */
    int st = audit_verify_cli(trail, dpf_der, out, sizeof(out));
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "checkpoints=1 ") && strstr(out, "signatures_verified=1 "), "%s", out);
    uint8_t me[32];
    char me_hex[65];
    pl_kmclient_station_key(c, me);
    for (int i = 0; i < 32; i++)
        snprintf(me_hex + 2 * i, 3, "%02x", me[i]);
    cr_assert(strstr(out, me_hex) != NULL, "%s", out);
    /* ... and FAIL with another certificate, or once the signature is altered. */
    st = audit_verify_cli(trail, ci_der, out, sizeof(out));
    cr_assert_eq(st, 1, "%s", out);
    cr_assert(strstr(out, "checkpoint-signature-invalid") && strstr(out, "seq=2 "), "%s", out);
    char copy[700], err[256];
    snprintf(copy, sizeof(copy), "%s/altered-audit.db", k.t.dir);
    cr_assert_eq(pl_tamper_copy_trail(trail, copy), 0);
    cr_assert_eq(pl_tamper_sql(copy,
                               "DROP TRIGGER checkpoint_no_update;"
                               "UPDATE checkpoint SET keymaker_sig = substr(keymaker_sig, 1, 63)"
                               " || CASE WHEN substr(keymaker_sig, 64, 1) = x'00' THEN x'01'"
                               " ELSE x'00' END WHERE seq = 2;",
                               err, sizeof(err)),
                 0, "%s", err);
    st = audit_verify_cli(copy, dpf_der, out, sizeof(out));
    cr_assert_eq(st, 1, "%s", out);
    cr_assert(strstr(out, "checkpoint-signature-invalid"), "%s", out);

    pl_wr_free(&pir);
    pl_kmclient_pkg_free(&pkg);
    pl_kmdev_close(&d);
    pl_kmclient_free(c);
    stop_km(&k);
}

Test(kmclient, replayed_msg_id_gets_identical_reply_and_no_second_lease, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r1, r2, r3;
    struct pl_kmclient_ident id;
    struct pl_kmdev d;
    struct pl_rng rng = PL_RNG_SYSTEM;

    start_km(&k);
    base_config(&k, &cfg);
    struct pl_kmclient *c = client(&cfg);
    dev_open(&k, &d, "dev.state", 3);
    upload_ok(c, &d);

    /* The station journaled (msg_id, seq) of a JIT lease; after its restart it replays the
     * same request with the same identity. */
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    m->which_body = PL_KM_LEASE_REQUEST;
    m->body.lease_request.mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.lease_request.eid, d.info->eid, 16), PL_OK);
    m->body.lease_request.otk_id = d.info->otk[0].otk_id;
    cr_assert_eq(rng.fill(rng.user, id.msg_id, 16), PL_OK);
    id.seq = pl_kmclient_last_seq(c) + 1u;
    cr_assert_eq(pl_kmclient_call(c, m, &id, &r1), PL_OK);
    cr_assert_eq(memcmp(r1.ident.msg_id, id.msg_id, 16), 0);
    cr_assert_eq(r1.ident.seq, id.seq);
    cr_assert_eq(pl_kmclient_call(c, m, &id, &r2), PL_OK);
    cr_assert_eq(r1.raw_len, r2.raw_len);
    cr_assert_eq(memcmp(r1.raw, r2.raw, r1.raw_len), 0, "a replay got another answer");
    struct pl_km_stats s = km_stats(&k);
    cr_assert_eq(s.pkg_issued, 1, "the replay leased a second package");
    cr_assert_eq(s.otk_bound, 1);

    /* The same msg_id with other bytes is refused (MSG_ID_REUSED), nothing bound. */
    m->body.lease_request.otk_id = d.info->otk[1].otk_id;
    cr_assert_eq(pl_kmclient_call(c, m, &id, &r3), PL_ERR_REMOTE);
    cr_assert_eq(r3.km_error, E(MSG_ID_REUSED));
    pl_kmclient_done_free(&r3);
    cr_assert_eq(km_stats(&k).otk_bound, 1);

    /* A journaled identity whose seq the Key Maker has passed but whose msg_id it never
     * saw: STALE_SEQ (recorded, no effect), so the client renumbers and it goes through. */
    cr_assert_eq(rng.fill(rng.user, id.msg_id, 16), PL_OK);
    id.seq = 1;
    struct pl_kmclient_stats st0, st1;
    pl_kmclient_stats(c, &st0);
    cr_assert_eq(pl_kmclient_call(c, m, &id, &r3), PL_OK, "km_error %s",
                 pl_km_error_name(r3.km_error));
    pl_kmclient_stats(c, &st1);
    cr_assert_eq(st1.renumbered, st0.renumbered + 1);
    cr_assert_neq(memcmp(r3.ident.msg_id, id.msg_id, 16), 0);
    cr_assert_gt(r3.ident.seq, r1.ident.seq);
    cr_assert_eq(km_stats(&k).pkg_issued, 2);

    pl_kmclient_done_free(&r1);
    pl_kmclient_done_free(&r2);
    pl_kmclient_done_free(&r3);
    pl_km_msg_release(m);
    free(m);
    pl_kmdev_close(&d);
    pl_kmclient_free(c);
    stop_km(&k);
}

/* ------------------------------------------------- lost reply, cut link ---- */

/* A TCP relay between the client and the Key Maker that, when armed, swallows the next
 * bytes coming from the Key Maker and cuts both connections (a reply lost with the link). */
struct relay {
    int lfd;
    int port;
    int target_port;
    atomic_int armed;
    atomic_int stop;
    atomic_int cuts;
    thrd_t th;
};

static int relay_main(void *arg)
{
    struct relay *r = arg;
    int cfd = -1, sfd = -1;
    uint8_t buf[65536];

    while (!atomic_load(&r->stop)) {
        struct pollfd p[3] = {{r->lfd, POLLIN, 0}, {cfd, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(p, 3, 50) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & POLLIN) {
            int n = accept(r->lfd, NULL, NULL);
            if (n >= 0) {
                if (cfd >= 0)
                    close(cfd);
                if (sfd >= 0)
                    close(sfd);
                cfd = n;
                sfd = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in a = {0};
                a.sin_family = AF_INET;
                a.sin_port = htons((uint16_t)r->target_port);
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                if (connect(sfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                    close(cfd);
                    close(sfd);
                    cfd = sfd = -1;
                }
            }
        }
        if (cfd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(cfd, buf, sizeof(buf));
            if (n <= 0 || write(sfd, buf, (size_t)n) != n) {
                close(cfd);
                close(sfd);
                cfd = sfd = -1;
                continue;
            }
        }
        if (sfd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(sfd, buf, sizeof(buf));
            bool cut = n > 0 && atomic_exchange(&r->armed, 0);
            if (cut)
                atomic_fetch_add(&r->cuts, 1);
            if (n <= 0 || cut || write(cfd, buf, (size_t)n) != n) {
                close(cfd);
                close(sfd);
                cfd = sfd = -1;
            }
        }
    }
    if (cfd >= 0)
        close(cfd);
    if (sfd >= 0)
        close(sfd);
    return 0;
}

static void relay_start(struct relay *r, const char *endpoint)
{
    memset(r, 0, sizeof(*r));
    const char *colon = strrchr(endpoint, ':');
    cr_assert_not_null(colon);
    r->target_port = atoi(colon + 1);
    r->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(r->lfd, 0);
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(r->lfd, 4), 0);
    cr_assert_eq(getsockname(r->lfd, (struct sockaddr *)&a, &al), 0);
    r->port = ntohs(a.sin_port);
    cr_assert_eq(thrd_create(&r->th, relay_main, r), thrd_success);
}

static void relay_stop(struct relay *r)
{
    int res = 0;
    atomic_store(&r->stop, 1);
    thrd_join(r->th, &res);
    close(r->lfd);
}

Test(kmclient, reply_lost_on_a_cut_link_is_recovered_without_a_second_lease, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    struct relay rl;
    struct pl_kmdev d;
    char ep[64];

    start_km(&k);
    relay_start(&rl, k.endpoint);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", rl.port);
    base_config(&k, &cfg);
    cfg.endpoint = ep;
    cfg.heartbeat_ms = 0; /* no PONGs: the next bytes from the Key Maker are the reply */
    struct pl_kmclient *c = client(&cfg);
    dev_open(&k, &d, "dev.state", 2);
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_OK);
    pl_kmclient_done_free(&r);
    upload_ok(c, &d);

    atomic_store(&rl.armed, 1);
    cr_assert_eq(pl_kmclient_lease_jit(c, d.info->eid, d.info->otk[0].otk_id, &r), PL_OK,
                 "km_error %s", pl_km_error_name(r.km_error));
    cr_assert_eq(atomic_load(&rl.cuts), 1, "the relay did not cut the reply");
    cr_assert_geq(r.attempts, 2, "answered without a retransmission");
    struct pl_kmclient_stats st;
    pl_kmclient_stats(c, &st);
    cr_assert_geq(st.retransmissions, 1);
    cr_assert_geq(st.resyncs, 2, "no resync after the lost reply");
    /* One package, the one the first attempt bound, delivered by the retransmission. */
    struct pl_km_stats s = km_stats(&k);
    cr_assert_eq(s.pkg_issued, 1, "the retransmission leased again");
    cr_assert_eq(s.otk_bound, 1);
    cr_assert_geq(pl_kmproc_log_count(&k, "event=request_replayed"), 1);
    pl_kmclient_done_free(&r);

    pl_kmdev_close(&d);
    pl_kmclient_free(c);
    relay_stop(&rl);
    stop_km(&k);
}

/* ------------------------------------------------------- Key Maker restart ---- */

static bool unsynced_pred(struct pl_kmclient *c, void *user)
{
    (void)user;
    return !pl_kmclient_synced(c);
}

Test(kmclient, keymaker_killed_and_restarted_client_resyncs_and_continues, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    struct pl_kmdev d;

    start_km(&k);
    base_config(&k, &cfg);
    struct pl_kmclient *c = client(&cfg);
    dev_open(&k, &d, "dev.state", 3);
    upload_ok(c, &d);
    cr_assert_eq(pl_kmclient_lease_jit(c, d.info->eid, d.info->otk[0].otk_id, &r), PL_OK);
    struct pl_kmclient_pkg first;
    cr_assert_eq(pl_kmclient_pkg_from_lease(&r.reply->body.lease, 0, &first), PL_OK);
    pl_kmclient_done_free(&r);

    /* The Key Maker dies hard; the station carries on asking. */
    int st = pl_kmproc_stop(&k, SIGKILL);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    uint64_t id = 0;
    cr_assert_eq(pl_kmclient_send_lease_jit(c, d.info->eid, d.info->otk[1].otk_id, 7, &id), PL_OK);
    drive(c, unsynced_pred, NULL); /* the reply went missing: the client knows */
    cr_assert_eq(pl_kmclient_pending(c), 2, "the lease and a resync Hello");

    /* Back on the same endpoint and database. */
    cr_assert_eq(pl_kmproc_start(&k), 0, "restart failed");
    await(c, id, &r);
    cr_assert_eq(r.status, PL_OK, "status %s km_error %s", pl_strerror(r.status),
                 pl_km_error_name(r.km_error));
    cr_assert_eq(r.tag, 7);
    struct pl_kmclient_pkg second;
    cr_assert_eq(pl_kmclient_pkg_from_lease(&r.reply->body.lease, 0, &second), PL_OK);
    pl_kmclient_done_free(&r);
    /* (The lease may have been answered from the queue before the resync Hello, which is
     * then dropped as nobody waits for it: the session is re-established on demand.) The
     * station's Hello on reconnection: the restarted Key Maker knows both packages as
     * outstanding for this station, and the sequence where it was. */
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_OK);
    pl_kmclient_done_free(&r);
    cr_assert(pl_kmclient_synced(c));
    struct pl_kmclient_stats cs;
    pl_kmclient_stats(c, &cs);
    cr_assert_geq(cs.resyncs, 2);
    cr_assert_not(cs.keymaker_rollback);
    const provline_keymaker_HelloAck *ack = pl_kmclient_hello_ack(c);
    cr_assert_not_null(ack);
    cr_assert_eq(ack->last_seq_seen, pl_kmclient_last_seq(c));
    bool has_first = false, has_second = false;
    for (pb_size_t i = 0; i < ack->outstanding_count; i++) {
        has_first = has_first || memcmp(ack->outstanding[i].bytes, first.package_id, 16) == 0;
        has_second = has_second || memcmp(ack->outstanding[i].bytes, second.package_id, 16) == 0;
    }
    cr_assert(has_first && has_second, "packages not outstanding after the restart");

    /* And the line continues: report the first package given back, ack the second. */
    provline_keymaker_ReportEntry e;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(PL_KM_SET_BYTES(e.package_id, first.package_id, 16), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e.transaction_id, first.transaction_id, first.tid_len), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e.eid, first.eid, 16), PL_OK);
    e.which_outcome = provline_keymaker_ReportEntry_released_tag;
    e.outcome.released = true;
    cr_assert_eq(pl_kmclient_report(c, &e, 1, NULL, &r), PL_OK);
    cr_assert(r.reply->body.report_ack.results[0].accepted);
    cr_assert_eq(r.reply->body.report_ack.results[0].state,
                 provline_keymaker_PackageState_PACKAGE_STATE_POSSIBLY_USED);
    pl_kmclient_done_free(&r);
    cr_assert_eq(pl_kmclient_ack(c, second.lease_id, second.package_id, 1, &r), PL_OK);
    cr_assert_eq(r.reply->body.ack_result.acked_count, 1);
    pl_kmclient_done_free(&r);
    struct pl_km_stats s = km_stats(&k);
    cr_assert_eq(s.pkg_issued, 1);
    cr_assert_eq(s.pkg_possibly_used, 1);
    cr_assert_eq(s.otk_bound, 2, "a package was bound twice or lost");

    pl_kmclient_pkg_free(&first);
    pl_kmclient_pkg_free(&second);
    pl_kmdev_close(&d);
    pl_kmclient_free(c);
    stop_km(&k);
}

Test(kmclient, restarted_station_continues_above_the_keymakers_seq, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    struct pl_kmdev d;

    start_km(&k);
    base_config(&k, &cfg);
    struct pl_kmclient *c = client(&cfg);
    dev_open(&k, &d, "dev.state", 2);
    upload_ok(c, &d);
    cr_assert_eq(pl_kmclient_deletion_token(c, d.info->eid, &r), PL_OK);
    pl_kmclient_done_free(&r);
    uint64_t used = pl_kmclient_last_seq(c);
    cr_assert_eq(used, 2);
    pl_kmclient_free(c);

    /* A station that lost its journal starts from seq 0: the automatic Hello tells it the
     * Key Maker's last_seq_seen, and its first request goes out above it. */
    c = client(&cfg);
    cr_assert_eq(pl_kmclient_deletion_token(c, d.info->eid, &r), PL_OK, "km_error %s",
                 pl_km_error_name(r.km_error));
    cr_assert_eq(r.ident.seq, used + 1u);
    cr_assert_eq(r.reply->body.otk_deletion_token.counter, 2);
    pl_kmclient_done_free(&r);
    struct pl_kmclient_stats st;
    pl_kmclient_stats(c, &st);
    cr_assert_geq(st.hellos_sent, 1);
    pl_kmclient_free(c);

    /* With its journal (last_seq given) no renumbering is needed at all. */
    cfg.last_seq = used + 1u;
    c = client(&cfg);
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_OK);
    pl_kmclient_done_free(&r);
    cr_assert_eq(pl_kmclient_deletion_token(c, d.info->eid, &r), PL_OK);
    cr_assert_eq(r.ident.seq, used + 2u);
    pl_kmclient_done_free(&r);
    pl_kmclient_stats(c, &st);
    cr_assert_eq(st.renumbered, 0);
    pl_kmclient_free(c);

    pl_kmdev_close(&d);
    stop_km(&k);
}

/* ---------------------------------------------------------------- prefetch ---- */

#define N_DEV 5

struct journal {
    int calls;
    int fail_first; /* fail this many calls */
};

static int journal_hook(void *user, const struct pl_kmclient_pkg *p)
{
    struct journal *j = user;
    cr_assert_not_null(p->envelope);
    j->calls++;
    return j->calls <= j->fail_first ? -1 : 0;
}

struct idle_want {
    unsigned ready;
};

/* The pool holds `ready` packages and nothing is on the wire (the Acks included). */
static bool pool_idle(struct pl_kmclient *c, void *user)
{
    const struct idle_want *w = user;
    return pl_kmclient_prefetch_ready(c) == w->ready && !pl_kmclient_prefetch_busy(c)
           && pl_kmclient_pending(c) == 0;
}

static void prefetch_setup(struct pl_kmproc *k, struct pl_kmdev *devs, struct pl_kmclient_config *cfg,
                           struct journal *j, struct pl_kmclient **out)
{
    start_km(k);
    base_config(k, cfg);
    cfg->prefetch_target = 2;
    cfg->prefetch_idle_ms = 60000; /* an empty answer would stop asking for the whole test */
    cfg->journal = journal_hook;
    cfg->journal_user = j;
    *out = client(cfg);
    for (int i = 0; i < N_DEV; i++) {
        char name[32];
        snprintf(name, sizeof(name), "dev%d.state", i);
        dev_open(k, &devs[i], name, 2);
        upload_ok(*out, &devs[i]);
    }
}

Test(kmclient, prefetch_keeps_n_packages_ahead, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmdev devs[N_DEV];
    struct journal j = {0, 0};
    struct pl_kmclient *c = NULL;
    struct idle_want two = {2};

    prefetch_setup(&k, devs, &cfg, &j, &c);
    cr_assert_eq(pl_kmclient_prefetch_ready(c), 0);
    for (int i = 0; i < N_DEV; i++)
        cr_assert_eq(pl_kmclient_prefetch_add(c, devs[i].info->eid), PL_OK);
    cr_assert_eq(pl_kmclient_prefetch_add(c, devs[0].info->eid), PL_ERR_EXISTS);

    drive(c, pool_idle, &two);
    cr_assert_eq(j.calls, 2);
    struct pl_km_stats s = km_stats(&k);
    cr_assert_eq(s.pkg_issued, 2, "prefetched more than the target");
    /* Idle: more polls ask for nothing more. */
    struct pl_kmclient_stats a, b;
    pl_kmclient_stats(c, &a);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
    pl_kmclient_stats(c, &b);
    cr_assert_eq(b.prefetch_requests, a.prefetch_requests);
    cr_assert_eq(pl_kmclient_timeout_ms(c), -1, "an idle client keeps a timer");

    /* A device arrives: its package is taken, the pool is topped up for another one. */
    int taken = -1;
    struct pl_kmclient_pkg p;
    for (int i = 0; i < N_DEV && taken < 0; i++)
        if (pl_kmclient_prefetch_take(c, devs[i].info->eid, &p) == PL_OK)
            taken = i;
    cr_assert_geq(taken, 0);
    cr_assert_eq(memcmp(p.eid, devs[taken].info->eid, 16), 0);
    cr_assert_eq(pl_kmclient_prefetch_ready(c), 1);
    struct pl_kmclient_pkg q;
    cr_assert_eq(pl_kmclient_prefetch_take(c, devs[taken].info->eid, &q), PL_ERR_NOT_FOUND);
    drive(c, pool_idle, &two);
    s = km_stats(&k);
    cr_assert_eq(s.pkg_issued, 3);
    cr_assert_eq(j.calls, 3);
    /* The taken device is no candidate any more: no second package for it. */
    cr_assert_eq(pl_kmclient_prefetch_take(c, devs[taken].info->eid, &q), PL_ERR_NOT_FOUND);

    /* The package loads on its device (prefetch binds to a real, signed OTK). */
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, PL_ES10F_PIR_MAX);
    dev_load(&devs[taken], p.envelope, p.envelope_len, &pir);
    struct pl_pir dec;
    cr_assert_eq(pl_pir_decode(pir.buf, pir.len, &dec), PL_OK);
    cr_assert(dec.success);
    pl_wr_free(&pir);

    pl_kmclient_pkg_free(&p);
    for (int i = 0; i < N_DEV; i++)
        pl_kmdev_close(&devs[i]);
    pl_kmclient_free(c);
    stop_km(&k);
}

Test(kmclient, prefetch_package_not_journaled_is_not_pooled_or_acked, .timeout = 300.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmdev devs[N_DEV];
    struct journal j = {0, 1};
    struct pl_kmclient *c = NULL;
    struct idle_want two = {2};

    prefetch_setup(&k, devs, &cfg, &j, &c);
    for (int i = 0; i < N_DEV; i++)
        cr_assert_eq(pl_kmclient_prefetch_add(c, devs[i].info->eid), PL_OK);
    drive(c, pool_idle, &two);
    struct pl_kmclient_stats st;
    pl_kmclient_stats(c, &st);
    cr_assert_eq(st.prefetch_dropped, 1);
    cr_assert_eq(st.prefetch_packages, 2);
    cr_assert_eq(j.calls, 3);
    /* The dropped package stays issued at the Key Maker (never acked): 3 issued, 2 pooled. */
    cr_assert_eq(km_stats(&k).pkg_issued, 3);
    for (int i = 0; i < N_DEV; i++)
        pl_kmdev_close(&devs[i]);
    pl_kmclient_free(c);
    stop_km(&k);
}

/* ------------------------------------------------------------ unreachable ---- */

Test(kmclient, unreachable_keymaker_times_out_with_bounded_backoff, .timeout = 120.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;

    /* Keys and a port, but nobody serving it. */
    start_km(&k);
    int st = pl_kmproc_stop(&k, SIGKILL);
    cr_assert(WIFSIGNALED(st));
    base_config(&k, &cfg);
    cfg.attempt_ms = 50;
    cfg.backoff_max_ms = 200;
    cfg.deadline_ms = 1500;
    struct pl_kmclient *c = client(&cfg);
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_ERR_TIMEOUT);
    cr_assert_null(r.reply);
    /* 50, 100, 200, 200, ... within 1500 ms: at most 1 + 1500/(200*0.8) + 3 attempts. */
    cr_assert_geq(r.attempts, 2);
    cr_assert_leq(r.attempts, 14);
    pl_kmclient_done_free(&r);
    /* A request behind the missing session times out too, never sent. */
    uint8_t eid[16] = {0x89};
    cr_assert_eq(pl_kmclient_lease_jit(c, eid, 1, &r), PL_ERR_TIMEOUT);
    cr_assert_eq(r.attempts, 0);
    pl_kmclient_done_free(&r);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.timeouts, 2);
    cr_assert_eq(s.replies, 0);
    cr_assert_eq(pl_kmclient_pending(c), 0, "the resync Hello outlived its requests");
    pl_kmclient_free(c);
    stop_km(&k);
}

Test(kmclient, wrong_pinned_server_key_gets_no_session, .timeout = 120.0)
{
    struct pl_kmproc k;
    struct pl_kmclient_config cfg;
    struct pl_kmclient_done r;
    char fake_pub[41], fake_sec[41];

    start_km(&k);
    cr_assert_eq(zmq_curve_keypair(fake_pub, fake_sec), 0);
    pl_memzero(fake_sec, sizeof(fake_sec));
    base_config(&k, &cfg);
    cfg.server_public = fake_pub; /* takes precedence over the file */
    cfg.attempt_ms = 100;
    cfg.backoff_max_ms = 200;
    cfg.deadline_ms = 1200;
    struct pl_kmclient *c = client(&cfg);
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_ERR_TIMEOUT);
    pl_kmclient_done_free(&r);
    pl_kmclient_free(c);
    /* The right key on the same server works. */
    cfg.server_public = NULL;
    c = client(&cfg);
    cr_assert_eq(pl_kmclient_hello(c, &r), PL_OK);
    pl_kmclient_done_free(&r);
    pl_kmclient_free(c);
    stop_km(&k);
}
