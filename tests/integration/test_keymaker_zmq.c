/* Integration: the real `provline-keymaker serve` process (from PL_BIN_DIR) against a
 * DEALER + CurveZMQ station client written here, with a software eUICC (sim/euicc.h) as the
 * device: Hello, OtkUpload of the eUICC's own GetIfppInfo output, a just-in-time Lease whose
 * envelope and BPP verify and load on the chip, the eUICC-signed PIR reported and settled,
 * idempotent retries, a double lease refused, the end-of-production OTK deletion token run
 * on the chip and its signed receipt reported, an unknown station key and a wrong server key
 * answered by silence, clean SIGTERM shutdown. docs/station-keymaker-protocol.md;
 * IFPP.md §6.3, §7 cases 4, 12, 23; DEPENDENCIES.md §6 (CurveZMQ + ZAP).
 * PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include "pl_euicc_test.h"
#include "pl_kmdev.h"
#include "pl_test.h"
#include "provline/proto/km_msg.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/x509.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define REPLY_MS   20000 /* generous: a reply that comes, comes in milliseconds */
#define SILENCE_MS 1500

struct srv {
    struct pl_et t;
    char bin[512];
    char db[512];
    char log[512];
    char endpoint[128];
    char server_pub[41];
    char station_pub[41], station_sec[41];
    pid_t pid;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void read_line_file(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    cr_assert_not_null(fgets(out, (int)cap, f));
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static int run(const char *cmd, char *out, size_t cap)
{
    return pl_test_run(cmd, out, cap);
}

/* Starts `serve` on a kernel-chosen port and waits for its "listening" event. */
static void srv_start(struct srv *s, enum pl_curve curve)
{
    char cmd[4096], path[600], out[512];
    memset(s, 0, sizeof(*s));
    const char *bindir = getenv("PL_BIN_DIR");
    cr_assert_not_null(bindir, "PL_BIN_DIR not set");
    snprintf(s->bin, sizeof(s->bin), "%s/provline-keymaker", bindir);
    cr_assert_eq(access(s->bin, X_OK), 0, "%s missing", s->bin);
    cr_assert_eq(pl_et_init(&s->t, curve), PL_OK);
    snprintf(s->db, sizeof(s->db), "%s/km.db", s->t.dir);
    snprintf(s->log, sizeof(s->log), "%s/serve.log", s->t.dir);

    /* Server keys through the CLI, station keys in process. */
    snprintf(cmd, sizeof(cmd), "'%s' keygen --out '%s/km'", s->bin, s->t.dir);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert_neq(run(cmd, out, sizeof(out)), 0, "keygen overwrote a key");
    snprintf(path, sizeof(path), "%s/km.pub", s->t.dir);
    read_line_file(path, s->server_pub, sizeof(s->server_pub));
    cr_assert_eq(strlen(s->server_pub), 40);
    struct stat st;
    snprintf(path, sizeof(path), "%s/km.key", s->t.dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0077, 0, "secret key readable by others");
    cr_assert_eq(zmq_curve_keypair(s->station_pub, s->station_sec), 0);
    char allow[128];
    snprintf(allow, sizeof(allow), "# line 1\n%s\n", s->station_pub);
    snprintf(path, sizeof(path), "%s/allow", s->t.dir);
    write_file(path, allow);

    char pki[300], profiles[512], secret[300], allowp[300];
    snprintf(pki, sizeof(pki), "%s/pki", s->t.dir);
    snprintf(secret, sizeof(secret), "%s/km.key", s->t.dir);
    snprintf(allowp, sizeof(allowp), "%s/allow", s->t.dir);
    pl_test_src(profiles, sizeof(profiles), "tests/data/ts48");

    /* --check-config first: validates and exits without serving. */
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --pki '%s' --db '%s' --profiles '%s' --bind tcp://127.0.0.1:0 "
             "--curve-secret '%s' --allow '%s' --check-config",
             s->bin, pki, s->db, profiles, secret, allowp);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "configuration OK") != NULL);
    cr_assert_eq(access(s->db, F_OK), -1, "--check-config created the database");

    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int nul = open("/dev/null", O_WRONLY);
        if (fd < 0 || nul < 0 || dup2(fd, 2) < 0 || dup2(nul, 1) < 0)
            _exit(127);
        execl(s->bin, s->bin, "serve", "--pki", pki, "--db", s->db, "--profiles", profiles,
              "--bind", "tcp://127.0.0.1:*", "--curve-secret", secret, "--allow", allowp,
              (char *)NULL);
        _exit(127);
    }
    /* Wait for the resolved endpoint in the log (the process must not die meanwhile). */
    for (int i = 0; i < 2000; i++) {
        int status;
        cr_assert_eq(waitpid(s->pid, &status, WNOHANG), 0, "keymaker exited early");
        size_t len = 0;
        char *log = (char *)pl_test_read_file(s->log, &len);
        const char *p = log ? strstr(log, "event=listening endpoint=\"") : NULL;
        if (p) {
            p += strlen("event=listening endpoint=\"");
            size_t n = strcspn(p, "\"");
            cr_assert_lt(n, sizeof(s->endpoint));
            memcpy(s->endpoint, p, n);
            s->endpoint[n] = '\0';
            free(log);
            return;
        }
        free(log);
        sleep_ms(10);
    }
    cr_assert_fail("keymaker did not start listening");
}

/* SIGTERM: the daemon must stop cleanly (exit 0) and say so. */
static void srv_stop(struct srv *s)
{
    int status = 0;
    cr_assert_eq(kill(s->pid, SIGTERM), 0);
    cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
    cr_assert(WIFEXITED(status), "keymaker killed by a signal");
    cr_assert_eq(WEXITSTATUS(status), 0);
    size_t len = 0;
    char *log = (char *)pl_test_read_file(s->log, &len);
    cr_assert_not_null(log);
    cr_assert(strstr(log, "event=stopped") != NULL);
    free(log);
    pl_et_free(&s->t);
}

/* ---- the station client: DEALER + CurveZMQ ---- */

struct cli {
    void *ctx;
    void *sock;
    uint64_t seq;
};

static void cli_open(struct cli *c, const struct srv *s, const char *server_pub, const char *pub,
                     const char *sec)
{
    int linger = 0, rcv = REPLY_MS;
    memset(c, 0, sizeof(*c));
    c->ctx = zmq_ctx_new();
    cr_assert_not_null(c->ctx);
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    cr_assert_not_null(c->sock);
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)), 0);
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &rcv, sizeof(rcv)), 0);
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server_pub, 40), 0);
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, 40), 0);
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, 40), 0);
    cr_assert_eq(zmq_connect(c->sock, s->endpoint), 0);
}

static void cli_close(struct cli *c)
{
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
}

static void cli_timeout(struct cli *c, int ms)
{
    cr_assert_eq(zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &ms, sizeof(ms)), 0);
}

/* Sends one frame; receives one reply frame into raw (if not NULL). Returns the reply
 * length, or -1 when nothing came within the receive timeout. */
static int cli_rpc(struct cli *c, const uint8_t *req, size_t len, struct pl_wr *raw)
{
    cr_assert_eq(zmq_send(c->sock, req, len, 0), (int)len);
    zmq_msg_t m;
    zmq_msg_init(&m);
    int n = zmq_msg_recv(&m, c->sock, 0);
    if (n < 0) {
        cr_assert_eq(zmq_errno(), EAGAIN);
        zmq_msg_close(&m);
        return -1;
    }
    cr_assert_not(zmq_msg_more(&m), "reply of more than one frame");
    if (raw) {
        pl_wr_bytes(raw, zmq_msg_data(&m), zmq_msg_size(&m));
        cr_assert_eq(pl_wr_status(raw), PL_OK);
    }
    zmq_msg_close(&m);
    return n;
}

static provline_keymaker_Msg *msg_new(struct cli *c, unsigned body)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    struct pl_rng rng = PL_RNG_SYSTEM;
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    m->version = PL_KM_VERSION;
    m->msg_id.size = 16;
    cr_assert_eq(rng.fill(rng.user, m->msg_id.bytes, 16), PL_OK);
    m->seq = ++c->seq;
    m->which_body = (pb_size_t)body;
    return m;
}

static void msg_free(provline_keymaker_Msg *m)
{
    pl_km_msg_release(m);
    free(m);
}

/* Encodes m into req (reset first), sends it, decodes and returns the reply; the raw
 * reply goes to raw when not NULL. */
static provline_keymaker_Msg *cli_call(struct cli *c, const provline_keymaker_Msg *m,
                                       struct pl_wr *req, struct pl_wr *raw)
{
    struct pl_wr tmp, r;
    struct pl_wr *q = req ? req : &tmp;
    pl_wr_init_dyn(&tmp, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&r, PL_KM_FRAME_MAX);
    if (req)
        pl_wr_reset(req);
    cr_assert_eq(pl_km_msg_encode(m, q), PL_OK);
    cr_assert_gt(cli_rpc(c, q->buf, q->len, &r), 0, "no reply from the Key Maker");
    provline_keymaker_Msg *rep = calloc(1, sizeof(*rep));
    cr_assert_not_null(rep);
    cr_assert_eq(pl_km_msg_decode(r.buf, r.len, rep), PL_OK);
    cr_assert_eq(rep->reply_to.size, 16);
    cr_assert_eq(memcmp(rep->reply_to.bytes, m->msg_id.bytes, 16), 0);
    if (raw)
        pl_wr_bytes(raw, r.buf, r.len);
    pl_wr_free(&tmp);
    pl_wr_free(&r);
    return rep;
}

static void hello_ok(struct cli *c)
{
    provline_keymaker_Msg *m = msg_new(c, PL_KM_HELLO);
    strcpy(m->body.hello.station_id, "it-station");
    provline_keymaker_Msg *r = cli_call(c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_HELLO_ACK);
    msg_free(m);
    msg_free(r);
}

/* ---- the device ---- */

/* Mints a software eUICC and reads its GetIfppInfo (EID, certificates, signed OTKs). */
static void dev_open(struct srv *s, struct pl_kmdev *d, unsigned n_otks)
{
    cr_assert_eq(pl_kmdev_open(&s->t, "device.state", n_otks, d), PL_OK);
}

/* The station forwards the eUICC's own data (IFPP.md §6.4: signed OTKs only). */
static provline_keymaker_Msg *upload_msg(struct cli *c, const struct pl_kmdev *d)
{
    provline_keymaker_Msg *m = msg_new(c, PL_KM_OTK_UPLOAD);
    provline_keymaker_OtkUpload *u = &m->body.otk_upload;
    cr_assert_eq(PL_KM_SET_BYTES(u->eid, d->info->eid, 16), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(u->cert_euicc, d->info->cert_euicc.der, d->info->cert_euicc.len),
                 PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(u->cert_eum, d->info->cert_eum.der, d->info->cert_eum.len), PL_OK);
    u->otks_count = (pb_size_t)d->info->n_otk;
    for (size_t i = 0; i < d->info->n_otk; i++) {
        u->otks[i].otk_id = d->info->otk[i].otk_id;
        cr_assert_eq(PL_KM_SET_BYTES(u->otks[i].otpk, d->info->otk[i].otpk, 65), PL_OK);
        cr_assert_eq(PL_KM_SET_BYTES(u->otks[i].sig, d->info->otk[i].sig, 64), PL_OK);
    }
    return m;
}

static provline_keymaker_Msg *jit_msg(struct cli *c, const uint8_t eid[16], uint16_t otk)
{
    provline_keymaker_Msg *m = msg_new(c, PL_KM_LEASE_REQUEST);
    m->body.lease_request.mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.lease_request.eid, eid, 16), PL_OK);
    m->body.lease_request.otk_id = otk;
    return m;
}

/* Station hygiene and the load (IFPP.md §6.3): envelope signature and target, then the
 * ES10f header and the SGP.22 segments; returns the raw PIR. */
static void station_load(struct srv *s, struct pl_kmdev *d, const provline_keymaker_Package *p,
                         struct pl_wr *pir)
{
    struct pl_ifpp_pkg env;
    struct pl_eckey *dpf = NULL;
    cr_assert_eq(pl_ifpp_pkg_decode(p->envelope->bytes, p->envelope->size, &env), PL_OK);
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(s->t.pki, PL_PKI_DPF), &dpf), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_verify(&env, dpf), PL_OK);
    const struct pl_ifpp_otk *otk = pl_es10f_info_find_otk(d->info, env.otk_id);
    cr_assert_not_null(otk);
    cr_assert_eq(pl_ifpp_pkg_check_target(&env, d->info->eid, env.otk_id, otk->otpk), PL_OK);
    cr_assert_eq(pl_ifpp_pkg_check_time(&env, (uint64_t)time(NULL)), PL_OK);
    /* The BPP inside is bound to this OTK: smdpSign verifies with it (IFPP.md §5.2). */
    struct pl_bpp *bpp = calloc(1, sizeof(*bpp));
    cr_assert_not_null(bpp);
    cr_assert_eq(pl_bpp_decode(env.bpp, env.bpp_len, bpp), PL_OK);
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, otk->otpk, dpf), PL_OK);
    for (size_t i = 0; i < bpp->n86; i++)
        cr_assert_leq(bpp->seq86[i].len, 1020);
    free(bpp);
    pl_eckey_free(dpf);

    size_t n = 0, sent = 0;
    uint16_t sw = 0;
    cr_assert_eq(pl_kmdev_load(d, &env, pir, &sw, &sent, &n), PL_OK, "sw %04x", sw);
    cr_assert_eq(sent, n);
    cr_assert_gt(pir->len, 0);
}

static void run_flow(enum pl_curve curve)
{
    struct srv s;
    struct cli c;
    struct pl_kmdev d;
    srv_start(&s, curve);
    cli_open(&c, &s, s.server_pub, s.station_pub, s.station_sec);
    hello_ok(&c);
    dev_open(&s, &d, 3);

    /* 2. OTK upload: every OTK of the chip verified and registered. */
    provline_keymaker_Msg *m = upload_msg(&c, &d);
    provline_keymaker_Msg *r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_OTK_UPLOAD_RESULT);
    cr_assert_eq(r->body.otk_upload_result.accepted_count, 3);
    cr_assert_eq(r->body.otk_upload_result.rejected_count, 0);
    msg_free(m);
    msg_free(r);

    /* 3. Just-in-time lease for the first OTK; its retry gets the very same reply. */
    uint16_t otk_id = d.info->otk[0].otk_id;
    struct pl_wr req, raw1, raw2;
    pl_wr_init_dyn(&req, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&raw1, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&raw2, PL_KM_FRAME_MAX);
    m = jit_msg(&c, d.info->eid, otk_id);
    provline_keymaker_Msg *lease = cli_call(&c, m, &req, &raw1);
    cr_assert_eq(lease->which_body, PL_KM_LEASE, "got %s", pl_km_body_name(lease->which_body));
    cr_assert_eq(lease->body.lease.packages_count, 1);
    const provline_keymaker_Package *p = &lease->body.lease.packages[0];
    cr_assert_eq(memcmp(p->eid.bytes, d.info->eid, 16), 0);
    cr_assert_eq(p->otk_id, otk_id);
    cr_assert_gt(cli_rpc(&c, req.buf, req.len, &raw2), 0);
    cr_assert_eq(raw1.len, raw2.len);
    cr_assert_eq(memcmp(raw1.buf, raw2.buf, raw1.len), 0, "retried msg_id got another answer");
    msg_free(m);

    /* A new lease request for the same OTK is refused (GENS08). */
    m = jit_msg(&c, d.info->eid, otk_id);
    r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_ERROR);
    cr_assert_eq(r->body.error.code, provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE);
    msg_free(m);
    msg_free(r);

    /* Ack the lease. */
    m = msg_new(&c, PL_KM_ACK);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.ack.lease_id, lease->body.lease.lease_id.bytes, 16),
                 PL_OK);
    m->body.ack.package_ids_count = 1;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.ack.package_ids[0], p->package_id.bytes, 16), PL_OK);
    r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_ACK_RESULT);
    cr_assert_eq(r->body.ack_result.acked_count, 1);
    msg_free(m);
    msg_free(r);

    /* 4. Load on the chip; 5. report the eUICC-signed PIR. */
    struct pl_wr pir;
    pl_wr_init_dyn(&pir, PL_ES10F_PIR_MAX);
    station_load(&s, &d, p, &pir);
    struct pl_pir dec;
    cr_assert_eq(pl_pir_decode(pir.buf, pir.len, &dec), PL_OK);
    cr_assert(dec.success, "install failed: %s", pl_pir_reason_name(dec.reason));
    m = msg_new(&c, PL_KM_REPORT);
    provline_keymaker_ReportEntry *e = &m->body.report.entries[0];
    m->body.report.entries_count = 1;
    cr_assert_eq(PL_KM_SET_BYTES(e->package_id, p->package_id.bytes, 16), PL_OK);
    cr_assert_eq(
        PL_KM_SET_BYTES(e->transaction_id, p->transaction_id.bytes, p->transaction_id.size), PL_OK);
    cr_assert_eq(PL_KM_SET_BYTES(e->eid, p->eid.bytes, 16), PL_OK);
    e->which_outcome = provline_keymaker_ReportEntry_pir_tag;
    cr_assert_eq(PL_KM_SET_BYTES(e->outcome.pir, pir.buf, pir.len), PL_OK);
    r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_REPORT_ACK);
    cr_assert(r->body.report_ack.results[0].accepted);
    cr_assert_eq(r->body.report_ack.results[0].state,
                 provline_keymaker_PackageState_PACKAGE_STATE_INSTALLED);
    msg_free(m);
    msg_free(r);

    /* 6. End of production: a Key-Maker-signed token, executed by the eUICC, and its
     * signed receipt reported back: the two unused OTKs become VOID. */
    m = msg_new(&c, PL_KM_TOKEN_REQUEST);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, d.info->eid, 16), PL_OK);
    r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_TOKEN);
    cr_assert_eq(r->body.otk_deletion_token.counter, 1);
    struct pl_wr rcpt;
    uint16_t sw = 0;
    pl_wr_init_dyn(&rcpt, PL_ES10F_DELETE_OTKS_RSP_MAX);
    cr_assert_eq(pl_et_es10(d.e, d.ch, r->body.otk_deletion_token.request.bytes,
                            r->body.otk_deletion_token.request.size, &rcpt, &sw),
                 PL_OK, "sw %04x", sw);
    struct pl_es10f_delete_otks_rsp dr;
    cr_assert_eq(pl_es10f_delete_otks_rsp_decode(rcpt.buf, rcpt.len, &dr), PL_OK);
    cr_assert(dr.ok, "eUICC refused the token: %s", pl_es10f_dotk_error_name(dr.error));
    cr_assert_eq(dr.receipt.n_deleted, 2);
    msg_free(m);
    msg_free(r);
    m = msg_new(&c, PL_KM_RECEIPT);
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_receipt.eid, d.info->eid, 16), PL_OK);
    m->body.otk_deletion_receipt.counter = 1;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_receipt.response, rcpt.buf, rcpt.len), PL_OK);
    r = cli_call(&c, m, NULL, NULL);
    cr_assert_eq(r->which_body, PL_KM_RECEIPT_ACK, "got %s", pl_km_body_name(r->which_body));
    cr_assert_eq(r->body.otk_deletion_receipt_ack.voided_count, 2);
    cr_assert_eq(r->body.otk_deletion_receipt_ack.settled_count, 0);
    msg_free(m);
    msg_free(r);
    pl_wr_free(&rcpt);

    /* The status command reads the live database. */
    char cmd[1200], out[1024];
    snprintf(cmd, sizeof(cmd), "'%s' status --db '%s'", s.bin, s.db);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "packages: issued=0 installed=1 failed=0 possibly-used=0") != NULL, "%s",
              out);
    cr_assert(strstr(out, "otks: FREE=0 BOUND=0 CONSUMED=1 VOID=2") != NULL, "%s", out);
    cr_assert(strstr(out, "deletion-tokens: 1") != NULL, "%s", out);

    msg_free(lease);
    pl_wr_free(&req);
    pl_wr_free(&raw1);
    pl_wr_free(&raw2);
    pl_wr_free(&pir);
    pl_kmdev_close(&d);
    cli_close(&c);
    srv_stop(&s);
}

Test(keymaker_zmq, station_flow_p256, .timeout = 300.0)
{
    run_flow(PL_CURVE_P256);
}

Test(keymaker_zmq, station_flow_brainpool, .timeout = 300.0)
{
    run_flow(PL_CURVE_BP256R1);
}

/* A station key that is not on the allow-list gets no answer at all (ZAP refuses the
 * handshake); the listed station still does, so the server was alive all along. */
Test(keymaker_zmq, unknown_station_key_gets_no_answer, .timeout = 300.0)
{
    struct srv s;
    struct cli bad, good;
    char pub[41], sec[41];
    srv_start(&s, PL_CURVE_P256);
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    cli_open(&bad, &s, s.server_pub, pub, sec);
    cli_timeout(&bad, SILENCE_MS);
    provline_keymaker_Msg *m = msg_new(&bad, PL_KM_HELLO);
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK);
    cr_assert_eq(cli_rpc(&bad, w.buf, w.len, NULL), -1, "an unlisted station got an answer");
    cli_close(&bad);
    cli_open(&good, &s, s.server_pub, s.station_pub, s.station_sec);
    hello_ok(&good);
    cli_close(&good);
    size_t len = 0;
    char *log = (char *)pl_test_read_file(s.log, &len);
    cr_assert(log && strstr(log, "event=zap_denied") != NULL);
    free(log);
    msg_free(m);
    pl_wr_free(&w);
    srv_stop(&s);
}

/* A client that does not know the Key Maker's public key (a fake server's key) completes no
 * handshake and so gets nothing; with the right key the same station is answered. */
Test(keymaker_zmq, wrong_server_key_gets_no_answer, .timeout = 300.0)
{
    struct srv s;
    struct cli bad, good;
    char fake_pub[41], fake_sec[41];
    srv_start(&s, PL_CURVE_P256);
    cr_assert_eq(zmq_curve_keypair(fake_pub, fake_sec), 0);
    cli_open(&bad, &s, fake_pub, s.station_pub, s.station_sec);
    cli_timeout(&bad, SILENCE_MS);
    provline_keymaker_Msg *m = msg_new(&bad, PL_KM_HELLO);
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(m, &w), PL_OK);
    cr_assert_eq(cli_rpc(&bad, w.buf, w.len, NULL), -1, "answered despite a wrong server key");
    cli_close(&bad);
    cli_open(&good, &s, s.server_pub, s.station_pub, s.station_sec);
    hello_ok(&good);
    /* Malformed frames from a listed station are answered with an Error, not a crash. */
    static const uint8_t junk[] = {0x0a, 0x10, 0x01};
    struct pl_wr raw;
    pl_wr_init_dyn(&raw, PL_KM_FRAME_MAX);
    cr_assert_gt(cli_rpc(&good, junk, sizeof(junk), &raw), 0);
    provline_keymaker_Msg *r = calloc(1, sizeof(*r));
    cr_assert_eq(pl_km_msg_decode(raw.buf, raw.len, r), PL_OK);
    cr_assert_eq(r->which_body, PL_KM_ERROR);
    cr_assert_eq(r->body.error.code, provline_keymaker_ErrorCode_ERROR_MALFORMED);
    hello_ok(&good);
    cli_close(&good);
    msg_free(r);
    msg_free(m);
    pl_wr_free(&w);
    pl_wr_free(&raw);
    srv_stop(&s);
}

/* The offline `bind` command: a BPP that verifies with the given OTK and opens on the
 * software eUICC side of the crypto; bad arguments are refused. */
Test(keymaker_zmq, offline_bind_cli, .timeout = 300.0)
{
    struct pl_et t;
    char cmd[2048], out[1024], otkhex[131], bpp_path[400], upp[512], eidhex[33];
    struct pl_eckey *otk = NULL;
    uint8_t otpk[65];
    const char *bindir = getenv("PL_BIN_DIR");
    cr_assert_not_null(bindir);
    cr_assert_eq(pl_et_init(&t, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &t.rng, &otk), PL_OK);
    cr_assert_eq(pl_eckey_public(otk, otpk), PL_OK);
    for (int i = 0; i < 65; i++)
        snprintf(otkhex + 2 * i, 3, "%02x", otpk[i]);
    snprintf(eidhex, sizeof(eidhex), "%s", PL_PKI_SAMPLE_EID);
    snprintf(bpp_path, sizeof(bpp_path), "%s/out.der", t.dir);
    pl_test_src(upp, sizeof(upp), "tests/data/ts48/TS48v4_SAIP2.3_BERTLV.der");
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-keymaker' bind --pki '%s/pki' --eid %s --otk-pub %s --upp '%s' "
             "--out '%s' --curve p256 --transaction-id 00112233445566778899aabbccddeeff --rsk",
             bindir, t.dir, eidhex, otkhex, upp, bpp_path);
    cr_assert_eq(run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "transaction_id=00112233445566778899aabbccddeeff") != NULL, "%s", out);
    size_t len = 0;
    uint8_t *b = pl_test_read_file(bpp_path, &len);
    cr_assert_not_null(b);
    struct pl_bpp *bpp = calloc(1, sizeof(*bpp));
    cr_assert_eq(pl_bpp_decode(b, len, bpp), PL_OK);
    cr_assert(bpp->has_second87);
    struct pl_eckey *dpf = NULL;
    cr_assert_eq(pl_cert_public_key(pl_pki_cert(t.pki, PL_PKI_DPF), &dpf), PL_OK);
    cr_assert_eq(pl_iscr_verify(&bpp->iscr, otpk, dpf), PL_OK);
    /* wrong curve, bad hex, missing option */
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-keymaker' bind --pki '%s/pki' --eid %s --otk-pub %s --upp '%s' "
             "--out '%s' --curve bp256",
             bindir, t.dir, eidhex, otkhex, upp, bpp_path);
    cr_assert_neq(run(cmd, out, sizeof(out)), 0);
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-keymaker' bind --pki '%s/pki' --eid 1234 --otk-pub %s --upp '%s' "
             "--out '%s'",
             bindir, t.dir, otkhex, upp, bpp_path);
    cr_assert_neq(run(cmd, out, sizeof(out)), 0);
    snprintf(cmd, sizeof(cmd), "'%s/provline-keymaker' bind --pki '%s/pki'", bindir, t.dir);
    cr_assert_neq(run(cmd, out, sizeof(out)), 0);
    free(bpp);
    free(b);
    pl_eckey_free(dpf);
    pl_eckey_free(otk);
    pl_et_free(&t);
}
