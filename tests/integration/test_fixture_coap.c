/* integration.fixture_coap: the real provline-vdevice as a CoAP server, the station's CoAP
 * fixture link (libcoap client, CON POST, RFC 7959 block-wise both ways): identify, load a
 * real sealed package, the success PIR verified with pl_pir_verify against the CERT.EUICC the
 * device reported, results and NotificationSent, over UDP and over DTLS-PSK; a wrong PSK or
 * identity fails with PL_ERR_DENIED and a clear reason, and no request reaches the FPA; 5 %
 * of the datagrams dropped each way and the load still finishes (CON retransmission); a
 * 60 KB body crosses in Block1 blocks; a device slower than the CON retransmission timer is
 * still asked only once per operation; and serial + UDP + DTLS fixtures in one poll() loop.
 * PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture_testutil.h"
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/fixtures/fixture_link.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"

#define UPP "TS48V3-SAIP2-3-BERTLV-UNIQUE.der"
#define CALL_MS 120000u
#define PSK_ID "fixture-7"
#define PSK_HEX "8c1f2e3d4c5b6a79887766554433221100ffeeddccbbaa99"

static const uint8_t PSK[] = {0x8c, 0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79,
                              0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                              0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99};

/* Device files (state, pty link, log) live in a directory of their own (fixture_testutil.h). */
static char g_dir[256];

static int lab_init(struct pl_et *t)
{
    int rc = pl_et_init(t, PL_CURVE_P256);
    if (rc == PL_OK && pl_ft_dir_new(g_dir, sizeof(g_dir)) != 0)
        rc = PL_ERR_IO;
    return rc;
}

static void lab_free(struct pl_et *t)
{
    pl_et_free(t);
    pl_test_rmtree(g_dir);
}

struct dut {
    char state[512];
    char log[512];
    char tty[512];
    uint16_t port;
    struct pl_ft_proc proc;
    struct pl_fixture_link *link;
};

static void dut_mint(struct pl_et *t, struct dut *d, const char *name, unsigned n_otks)
{
    char file[64];
    snprintf(file, sizeof(file), "%s.state", name);
    cr_assert_eq(pl_ft_mint(t, g_dir, file, n_otks, d->state, sizeof(d->state)), PL_OK);
    snprintf(d->log, sizeof(d->log), "%s/%s.log", g_dir, name);
    snprintf(d->tty, sizeof(d->tty), "%s/%s.tty", g_dir, name);
}

/* Starts the device as a CoAP server on an ephemeral port (from its READY line). */
static void dut_start_coap(struct dut *d, bool dtls, const char *const *extra)
{
    const char *argv[40];
    size_t n = 0;
    argv[n++] = "provline-vdevice";
    argv[n++] = "--euicc";
    argv[n++] = d->state;
    argv[n++] = "--coap";
    argv[n++] = "127.0.0.1:0";
    if (dtls) {
        argv[n++] = "--psk-id";
        argv[n++] = PSK_ID;
        argv[n++] = "--psk";
        argv[n++] = PSK_HEX;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    cr_assert_eq(pl_ft_vdevice_start(&d->proc, argv, d->log, 30000), 0,
                 "provline-vdevice did not get ready (log %s)", d->log);
    unsigned port = 0;
    char proto[8] = "";
    cr_assert_eq(sscanf(d->proc.ready, "READY coap 127.0.0.1:%u %7s", &port, proto), 2, "%s",
                 d->proc.ready);
    cr_assert_str_eq(proto, dtls ? "dtls" : "udp");
    cr_assert(port > 0 && port < 65536);
    d->port = (uint16_t)port;
}

static int dut_link_coap(struct dut *d, bool dtls, const char *id, const uint8_t *psk,
                         size_t psk_len, uint32_t ack_ms, unsigned max_retransmit)
{
    struct pl_fixture_coap_config c;
    char why[256];
    pl_fixture_coap_config_init(&c);
    c.host = "127.0.0.1";
    c.port = d->port;
    c.dtls = dtls;
    c.psk_identity = id;
    c.psk = psk;
    c.psk_len = psk_len;
    c.ack_timeout_ms = ack_ms;
    c.max_retransmit = max_retransmit;
    int rc = pl_fixture_link_coap_new(&c, &d->link, why, sizeof(why));
    cr_assert_eq(rc, PL_OK, "%s", why);
    return rc;
}

static int station_call(struct dut *d, const struct pl_wr *req, provline_fixture_Msg *m)
{
    struct pl_wr rsp;
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    int rc = pl_fixture_link_call(d->link, req->buf, req->len, &rsp, CALL_MS);
    if (rc == PL_OK)
        cr_assert_eq(pl_fx_msg_decode(rsp.buf, rsp.len, m), PL_OK);
    pl_wr_free(&rsp);
    return rc;
}

static void station_identify(struct dut *d, uint64_t id, uint8_t eid[16], uint8_t *cert,
                             size_t *cert_len)
{
    struct pl_wr req;
    provline_fixture_Msg m;
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_identify(id, &req), PL_OK);
    cr_assert_eq(station_call(d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d->link));
    cr_assert_eq(m.which_body, PL_FX_IDENTIFY_RSP, "%s",
                 m.which_body == PL_FX_ERROR ? m.body.error.detail : pl_fx_body_name(m.which_body));
    cr_assert_eq(m.request_id, id);
    memcpy(eid, m.body.identify_rsp.eid.bytes, 16);
    size_t len;
    const uint8_t *info = pl_fx_blob(m.body.identify_rsp.ifpp_info, &len);
    cr_assert_gt(len, 1024, "the GetIfppInfo answer should need Block2");
    struct pl_es10f_info *di = malloc(sizeof(*di));
    cr_assert_eq(pl_es10f_get_info_rsp_decode(info, len, di), PL_OK);
    memcpy(cert, di->cert_euicc.der, di->cert_euicc.len);
    *cert_len = di->cert_euicc.len;
    free(di);
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
}

static void station_load_ok(struct dut *d, uint64_t id, const struct pl_ft_pkg *p,
                            const uint8_t *cert, size_t cert_len, uint8_t *pir_raw,
                            size_t *pir_len)
{
    struct pl_wr req;
    provline_fixture_Msg m;
    struct pl_pir pir;
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_load_env(id, p->env.buf, p->env.len, &req), PL_OK);
    cr_assert_eq(station_call(d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d->link));
    cr_assert_eq(m.which_body, PL_FX_LOAD_PACKAGE_RSP, "%s",
                 m.which_body == PL_FX_ERROR ? m.body.error.detail : pl_fx_body_name(m.which_body));
    const provline_fixture_LoadPackageResponse *lr = &m.body.load_package_rsp;
    memcpy(pir_raw, lr->pir.bytes, lr->pir.size);
    *pir_len = lr->pir.size;
    cr_assert_eq(pl_et_pir_check_cert(cert, cert_len, pir_raw, *pir_len, &pir), PL_OK);
    cr_assert(pir.success, "PIR error %lld/%lld", (long long)pir.cmd_id, (long long)pir.reason);
    cr_assert_eq(memcmp(pir.tid, p->tid, p->tid_len), 0);
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
}

static void dut_stop_clean(struct dut *d)
{
    pl_fixture_link_free(d->link);
    d->link = NULL;
    int st = pl_ft_proc_stop(&d->proc, 10000);
    cr_assert(WIFEXITED(st), "vdevice did not exit by itself on SIGTERM");
    cr_assert_eq(WEXITSTATUS(st), 0);
}

static void full_flow(bool dtls, const char *const *faults, uint32_t ack_ms, unsigned retrans)
{
    struct pl_et t;
    struct dut d;
    struct pl_ft_pkg p;
    uint8_t eid[16], cert[4096], pir_raw[4096];
    size_t cert_len = 0, pir_len = 0;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 2);
    cr_assert_eq(pl_ft_pkg_for_path(&t, d.state, 2, UPP, &p), PL_OK);
    cr_assert_gt(p.env.len, 8 * 1024, "the package should need many Block1 blocks");
    dut_start_coap(&d, dtls, faults);
    (void)dut_link_coap(&d, dtls, PSK_ID, PSK, sizeof(PSK), ack_ms, retrans);

    station_identify(&d, 11, eid, cert, &cert_len);
    cr_assert_eq(memcmp(eid, p.eid, 16), 0);
    station_load_ok(&d, 12, &p, cert, cert_len, pir_raw, &pir_len);

    struct pl_wr req;
    provline_fixture_Msg m;
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_fetch(13, false, 0, &req), PL_OK);
    cr_assert_eq(station_call(&d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d.link));
    cr_assert_eq(m.which_body, PL_FX_FETCH_RESULTS_RSP);
    struct pl_notif_rnl_rsp *rl = malloc(sizeof(*rl));
    size_t len;
    const uint8_t *list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    cr_assert_eq(pl_notif_rnl_rsp_decode(list, len, rl), PL_OK);
    cr_assert_eq(rl->n, 1);
    cr_assert_eq(rl->items[0].raw_len, pir_len);
    cr_assert_eq(memcmp(rl->items[0].raw, pir_raw, pir_len), 0);
    uint64_t seq = rl->items[0].meta.seq;
    pl_fx_msg_release(&m);
    pl_wr_reset(&req);
    cr_assert_eq(pl_ft_req_notif_sent(14, seq, &req), PL_OK);
    cr_assert_eq(station_call(&d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d.link));
    cr_assert_eq(m.body.notification_sent_rsp.status, PL_NOTIF_SENT_OK);
    pl_fx_msg_release(&m);

    struct pl_fixture_link_stats st;
    pl_fixture_link_get_stats(d.link, &st);
    cr_assert_eq(st.responses, 4);
    cr_assert_eq(st.failures, 0);
    dut_stop_clean(&d);
    /* One log line per request handled: a resend (its answer was lost) is answered from the
     * FPA's store and logged as replayed. */
    int handled = pl_ft_count_lines(d.log, "fpa req=");
    int replayed = pl_ft_count_lines(d.log, "result=replayed");
    cr_log_info("requests handled %d, answered again from the FPA store %d", handled, replayed);
    cr_assert_eq(handled - replayed, 4, "handled %d, replayed %d", handled, replayed);
    if (faults != NULL && strcmp(faults[0], "--drop-rate") == 0)
        cr_assert_eq(pl_ft_count_lines(d.log, " dropped=0 "), 0, "no datagram was dropped");

    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(d.state, &o, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    pl_euicc_close(e);
    free(rl);
    pl_wr_free(&req);
    pl_ft_pkg_free(&p);
    lab_free(&t);
}

Test(fixture_coap, udp_identify_load_verify, .timeout = 300)
{
    full_flow(false, NULL, 0, 0);
}

Test(fixture_coap, dtls_psk_identify_load_verify, .timeout = 300)
{
    full_flow(true, NULL, 0, 0);
}

Test(fixture_coap, udp_5_percent_drops_still_finish, .timeout = 600)
{
    static const char *const faults[] = {"--drop-rate", "0.05", "--seed", "42", NULL};
    full_flow(false, faults, 1000, 8);
}

Test(fixture_coap, slow_device_retransmissions_answered_once, .timeout = 300)
{
    /* The device answers 1.2 s late, the client's ACK_TIMEOUT is 0.4 s: it retransmits the
     * CON while the FPA works. The eUICC still sees each operation once. */
    static const char *const slow[] = {"--delay-ms", "1200", NULL};
    full_flow(false, slow, 400, 6);
}

static void wrong_credentials(const char *id, const uint8_t *psk, size_t psk_len)
{
    struct pl_et t;
    struct dut d;
    struct pl_wr req, rsp;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 1);
    dut_start_coap(&d, true, NULL);
    (void)dut_link_coap(&d, true, id, psk, psk_len, 0, 0);
    pl_wr_init_dyn(&req, 64);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_identify(1, &req), PL_OK);
    int rc = pl_fixture_link_call(d.link, req.buf, req.len, &rsp, CALL_MS);
    cr_assert_eq(rc, PL_ERR_DENIED, "got %s: %s", pl_strerror(rc), pl_fixture_link_why(d.link));
    cr_assert_not_null(strstr(pl_fixture_link_why(d.link), "PSK"), "%s",
                       pl_fixture_link_why(d.link));
    cr_assert_eq(rsp.len, 0);
    /* The link stays usable for a retry (a fresh session), still refused. */
    rc = pl_fixture_link_call(d.link, req.buf, req.len, &rsp, CALL_MS);
    cr_assert_eq(rc, PL_ERR_DENIED, "got %s", pl_strerror(rc));
    dut_stop_clean(&d);
    cr_assert_eq(pl_ft_count_lines(d.log, "fpa req="), 0, "a request reached the FPA");
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    lab_free(&t);
}

Test(fixture_coap, dtls_wrong_psk_fails_clearly, .timeout = 300)
{
    uint8_t bad[sizeof(PSK)];
    memcpy(bad, PSK, sizeof(PSK));
    bad[5] ^= 0x01;
    wrong_credentials(PSK_ID, bad, sizeof(bad));
}

Test(fixture_coap, dtls_wrong_identity_fails_clearly, .timeout = 300)
{
    wrong_credentials("fixture-8", PSK, sizeof(PSK));
}

Test(fixture_coap, large_body_block1_and_bad_package_error, .timeout = 300)
{
    struct pl_et t;
    struct dut d;
    struct pl_wr req;
    provline_fixture_Msg m;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 1);
    dut_start_coap(&d, false, NULL);
    (void)dut_link_coap(&d, false, NULL, NULL, 0, 0, 0);
    /* A 60 000-byte "envelope" that is not one: the body crosses in ~59 Block1 blocks and
     * the FPA refuses it before any APDU. */
    uint8_t *junk = malloc(60000);
    for (size_t i = 0; i < 60000; i++)
        junk[i] = (uint8_t)(i * 7u + 3u);
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_load_env(21, junk, 60000, &req), PL_OK);
    cr_assert_eq(station_call(&d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d.link));
    cr_assert_eq(m.which_body, PL_FX_ERROR);
    cr_assert_eq(m.request_id, 21);
    cr_assert_eq(m.body.error.code, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE);
    pl_fx_msg_release(&m);
    /* The same bytes again (a station resend): the same answer from the FPA's store. */
    cr_assert_eq(station_call(&d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d.link));
    cr_assert_eq(m.body.error.code, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE);
    pl_fx_msg_release(&m);
    dut_stop_clean(&d);
    cr_assert_eq(pl_ft_count_lines(d.log, "result=replayed"), 1);
    cr_assert_eq(pl_ft_count_lines(d.log, " apdus=0 "), 1, "the junk reached the eUICC");
    free(junk);
    pl_wr_free(&req);
    lab_free(&t);
}

Test(fixture_coap, serial_udp_dtls_one_loop, .timeout = 300)
{
    enum { N = 3 };
    struct pl_et t;
    struct dut d[N];
    struct pl_ft_pkg p[N];
    struct pl_wr req[N], rsp[N];
    bool done[N];
    int res[N];

    memset(d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "dut%d", i);
        dut_mint(&t, &d[i], name, 1);
        cr_assert_eq(pl_ft_pkg_for_path(&t, d[i].state, 1, UPP, &p[i]), PL_OK);
    }
    /* Fixture 0 on a serial pty, 1 on CoAP/UDP, 2 on CoAP/DTLS-PSK. */
    {
        const char *argv[] = {"provline-vdevice", "--euicc", d[0].state, "--pty", d[0].tty,
                              "--baud", "460800", NULL};
        cr_assert_eq(pl_ft_vdevice_start(&d[0].proc, argv, d[0].log, 30000), 0);
        struct pl_fixture_serial_config c;
        char why[256];
        pl_fixture_serial_config_init(&c);
        c.path = d[0].tty;
        c.baud = 460800;
        cr_assert_eq(pl_fixture_link_serial_new(&c, &d[0].link, why, sizeof(why)), PL_OK, "%s",
                     why);
    }
    dut_start_coap(&d[1], false, NULL);
    (void)dut_link_coap(&d[1], false, NULL, NULL, 0, 0, 0);
    dut_start_coap(&d[2], true, NULL);
    (void)dut_link_coap(&d[2], true, PSK_ID, PSK, sizeof(PSK), 0, 0);

    uint64_t now = pl_fixture_now_ms();
    for (int i = 0; i < N; i++) {
        pl_wr_init_dyn(&req[i], PL_FX_MSG_MAX);
        pl_wr_init_dyn(&rsp[i], PL_FX_MSG_MAX);
        cr_assert_eq(pl_ft_req_load_env(200 + (uint64_t)i, p[i].env.buf, p[i].env.len, &req[i]),
                     PL_OK);
        cr_assert_eq(pl_fixture_link_send(d[i].link, req[i].buf, req[i].len, CALL_MS, now),
                     PL_OK, "%s", pl_fixture_link_why(d[i].link));
        done[i] = false;
        res[i] = PL_ERR_INTERNAL;
    }
    int left = N;
    while (left > 0) {
        struct pollfd pf[N];
        nfds_t nf = 0;
        uint64_t dl = PL_FIXTURE_NO_DEADLINE;
        for (int i = 0; i < N; i++) {
            if (done[i])
                continue;
            int fd = pl_fixture_link_fd(d[i].link);
            if (fd >= 0)
                pf[nf++] = (struct pollfd){.fd = fd, .events = POLLIN};
            uint64_t x = pl_fixture_link_deadline(d[i].link);
            if (x < dl)
                dl = x;
        }
        now = pl_fixture_now_ms();
        int wait = dl == PL_FIXTURE_NO_DEADLINE ? 1000 : (dl <= now ? 0 : (int)(dl - now));
        if (wait > 1000)
            wait = 1000;
        cr_assert_geq(poll(pf, nf, wait), 0);
        now = pl_fixture_now_ms();
        for (int i = 0; i < N; i++) {
            if (done[i])
                continue;
            res[i] = pl_fixture_link_poll(d[i].link, now, &rsp[i], &done[i]);
            if (done[i])
                left--;
        }
    }
    for (int i = 0; i < N; i++) {
        provline_fixture_Msg m;
        struct pl_pir pir;
        struct pl_euicc *e = NULL;
        struct pl_euicc_opts o;
        cr_assert_eq(res[i], PL_OK, "fixture %d: %s", i, pl_fixture_link_why(d[i].link));
        cr_assert_eq(pl_fx_msg_decode(rsp[i].buf, rsp[i].len, &m), PL_OK);
        cr_assert_eq(m.request_id, 200 + (uint64_t)i);
        cr_assert_eq(m.which_body, PL_FX_LOAD_PACKAGE_RSP, "fixture %d: %s", i,
                     m.which_body == PL_FX_ERROR ? m.body.error.detail : "");
        dut_stop_clean(&d[i]);
        pl_euicc_opts_init(&o);
        cr_assert_eq(pl_euicc_open(d[i].state, &o, &e), PL_OK);
        const provline_fixture_LoadPackageResponse *lr = &m.body.load_package_rsp;
        cr_assert_eq(pl_et_pir_check(e, lr->pir.bytes, lr->pir.size, &pir), PL_OK);
        cr_assert(pir.success);
        pl_euicc_close(e);
        pl_fx_msg_release(&m);
        pl_wr_free(&req[i]);
        pl_wr_free(&rsp[i]);
        pl_ft_pkg_free(&p[i]);
    }
    lab_free(&t);
}
