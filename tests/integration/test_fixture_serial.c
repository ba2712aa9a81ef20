/* integration.fixture_serial: the real provline-vdevice on a pty, the station's serial fixture
 * link (fixture_link.h over the termios back-end and the link layer): identify, load a real
 * sealed package, the success PIR verified with pl_pir_verify against the CERT.EUICC the
 * device reported, results and NotificationSent, one log line per request, SIGTERM exit 0;
 * the same on a line with 1 % byte drops and 1 % byte corruption both ways; a device unplugged
 * while the package crosses the line (nothing spent: the same package loads after replug); a
 * device unplugged while the FPA feeds the eUICC, whose interrupted load shows up as a signed
 * PIR installFailedDueToInterruption(11) after replug (IFPP.md §7 case 7); a power cut at an
 * eUICC state write (case 18); and three fixtures driven by one poll() loop.
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

#define UPP "TS48V2-SAIP2-1-BERTLV-UNIQUE.der"
#define CALL_MS 120000u

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
    char tty[512];
    char log[512];
    struct pl_ft_proc proc;
    struct pl_fixture_link *link;
};

static void dut_start(struct dut *d, const char *name, unsigned baud,
                      const char *const *extra)
{
    char bauds[16];
    const char *argv[40];
    size_t n = 0;
    snprintf(d->tty, sizeof(d->tty), "%s/%s.tty", g_dir, name);
    snprintf(d->log, sizeof(d->log), "%s/%s.log", g_dir, name);
    snprintf(bauds, sizeof(bauds), "%u", baud);
    argv[n++] = "provline-vdevice";
    argv[n++] = "--euicc";
    argv[n++] = d->state;
    argv[n++] = "--pty";
    argv[n++] = d->tty;
    argv[n++] = "--baud";
    argv[n++] = bauds;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    cr_assert_eq(pl_ft_vdevice_start(&d->proc, argv, d->log, 30000), 0,
                 "provline-vdevice did not get ready (log %s)", d->log);
    cr_assert_not_null(strstr(d->proc.ready, "READY pty"));
}

static void dut_link(struct dut *d, unsigned baud, size_t mtu, uint32_t retries, uint32_t rto)
{
    struct pl_fixture_serial_config c;
    char why[256];
    pl_fixture_serial_config_init(&c);
    c.path = d->tty;
    c.baud = baud;
    c.mtu = mtu;
    c.max_retries = retries;
    c.rto_ms = rto;
    cr_assert_eq(pl_fixture_link_serial_new(&c, &d->link, why, sizeof(why)), PL_OK, "%s", why);
}

static void dut_mint(struct pl_et *t, struct dut *d, const char *name, unsigned n_otks)
{
    char file[64];
    snprintf(file, sizeof(file), "%s.state", name);
    cr_assert_eq(pl_ft_mint(t, g_dir, file, n_otks, d->state, sizeof(d->state)), PL_OK);
}

/* One request through the link, decoded. */
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

/* Identify: the EID and CERT.EUICC (copied into cert). */
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
    cr_assert(m.body.identify_rsp.factory_mode);
    memcpy(eid, m.body.identify_rsp.eid.bytes, 16);
    size_t len;
    const uint8_t *info = pl_fx_blob(m.body.identify_rsp.ifpp_info, &len);
    struct pl_es10f_info *di = malloc(sizeof(*di));
    cr_assert_eq(pl_es10f_get_info_rsp_decode(info, len, di), PL_OK);
    cr_assert_eq(memcmp(di->eid, eid, 16), 0);
    memcpy(cert, di->cert_euicc.der, di->cert_euicc.len);
    *cert_len = di->cert_euicc.len;
    free(di);
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
}

/* Load: returns the decoded, verified PIR's success flag; raw PIR copied out. */
static bool station_load(struct dut *d, uint64_t id, const struct pl_ft_pkg *p,
                         const uint8_t *cert, size_t cert_len, uint8_t *pir_raw, size_t *pir_len)
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
    /* The station's check: euiccSignPIR over the received bytes with CERT.EUICC. */
    cr_assert_eq(pl_et_pir_check_cert(cert, cert_len, pir_raw, *pir_len, &pir), PL_OK);
    cr_assert_eq(pir.tid_len, p->tid_len);
    cr_assert_eq(memcmp(pir.tid, p->tid, p->tid_len), 0);
    bool ok = pir.success;
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
    return ok;
}

/* FetchResults: the pending notifications, decoded into *out (heap struct). */
static void station_fetch(struct dut *d, uint64_t id, struct pl_notif_rnl_rsp *out,
                          struct pl_wr *raw)
{
    struct pl_wr req;
    provline_fixture_Msg m;
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_fetch(id, false, 0, &req), PL_OK);
    cr_assert_eq(station_call(d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d->link));
    cr_assert_eq(m.which_body, PL_FX_FETCH_RESULTS_RSP);
    size_t len;
    const uint8_t *list = pl_fx_blob(m.body.fetch_results_rsp.list, &len);
    pl_wr_reset(raw);
    cr_assert_eq(pl_wr_bytes(raw, list, len), PL_OK);
    cr_assert_eq(pl_notif_rnl_rsp_decode(raw->buf, raw->len, out), PL_OK);
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

static void full_flow(unsigned baud, size_t mtu, const char *const *faults, uint32_t retries,
                      uint32_t rto)
{
    struct pl_et t;
    struct dut d;
    struct pl_ft_pkg p;
    uint8_t eid[16], cert[4096], pir_raw[4096];
    size_t cert_len = 0, pir_len = 0;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 2);
    cr_assert_eq(pl_ft_pkg_for_path(&t, d.state, 1, UPP, &p), PL_OK);
    dut_start(&d, "dut", baud, faults);
    dut_link(&d, baud, mtu, retries, rto);

    station_identify(&d, 1, eid, cert, &cert_len);
    cr_assert_eq(memcmp(eid, p.eid, 16), 0);
    cr_assert(station_load(&d, 2, &p, cert, cert_len, pir_raw, &pir_len), "PIR is an error");

    struct pl_notif_rnl_rsp *rl = malloc(sizeof(*rl));
    struct pl_wr raw;
    pl_wr_init_dyn(&raw, PL_FX_MSG_MAX);
    station_fetch(&d, 3, rl, &raw);
    cr_assert_eq(rl->n, 1);
    cr_assert_eq(rl->items[0].raw_len, pir_len);
    cr_assert_eq(memcmp(rl->items[0].raw, pir_raw, pir_len), 0);

    struct pl_wr req;
    provline_fixture_Msg m;
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_notif_sent(4, rl->items[0].meta.seq, &req), PL_OK);
    cr_assert_eq(station_call(&d, &req, &m), PL_OK);
    cr_assert_eq(m.which_body, PL_FX_NOTIFICATION_SENT_RSP);
    cr_assert_eq(m.body.notification_sent_rsp.status, PL_NOTIF_SENT_OK);
    pl_fx_msg_release(&m);

    struct pl_fixture_link_stats st;
    pl_fixture_link_get_stats(d.link, &st);
    cr_assert_eq(st.requests, 4);
    cr_assert_eq(st.responses, 4);
    cr_assert_eq(st.failures, 0);
    cr_log_info("link: retransmits=%llu naks_rx=%llu naks_tx=%llu timeouts=%llu bad_frames=%llu",
                (unsigned long long)st.retransmits, (unsigned long long)st.naks_rx,
                (unsigned long long)st.naks_tx, (unsigned long long)st.timeouts,
                (unsigned long long)st.bad_frames);
    if (faults != NULL)
        cr_assert_gt(st.retransmits + st.bad_frames + st.naks_rx, 0, "the faults did not bite");
    dut_stop_clean(&d);
    cr_assert_eq(pl_ft_count_lines(d.log, "fpa req="), 4, "one log line per request");

    /* The eUICC holds the profile (read its state after the device is gone). */
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(d.state, &o, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    cr_assert_eq(pl_euicc_notif_count(e), 0);
    pl_euicc_close(e);

    free(rl);
    pl_wr_free(&raw);
    pl_wr_free(&req);
    pl_ft_pkg_free(&p);
    lab_free(&t);
}

Test(fixture_serial, identify_load_verify_115200, .timeout = 300)
{
    full_flow(115200, 0, NULL, 0, 0);
}

Test(fixture_serial, identify_load_verify_921600, .timeout = 300)
{
    full_flow(921600, 0, NULL, 0, 0);
}

Test(fixture_serial, noisy_line_still_finishes, .timeout = 600)
{
    /* 1 % of the bytes lost and 1 % corrupted, each direction: small frames and generous
     * retries on both ends keep the stop-and-wait link moving. */
    static const char *const faults[] = {
        "--corrupt-rate", "0.01", "--drop-rate", "0.01", "--seed", "7",
        "--mtu", "48", "--max-retries", "200", "--rto-ms", "10", NULL,
    };
    full_flow(921600, 48, faults, 200, 10);
}

/* GetIfppInfo through Identify: is otk_id still FREE? */
static bool otk_free(struct dut *d, uint64_t id, uint16_t otk_id)
{
    struct pl_wr req;
    provline_fixture_Msg m;
    pl_wr_init_dyn(&req, 64);
    cr_assert_eq(pl_ft_req_upload_otks(id, &req), PL_OK);
    cr_assert_eq(station_call(d, &req, &m), PL_OK, "%s", pl_fixture_link_why(d->link));
    cr_assert_eq(m.which_body, PL_FX_UPLOAD_OTKS_RSP);
    size_t len;
    const uint8_t *info = pl_fx_blob(m.body.upload_otks_rsp.ifpp_info, &len);
    struct pl_es10f_info *di = malloc(sizeof(*di));
    cr_assert_eq(pl_es10f_get_info_rsp_decode(info, len, di), PL_OK);
    bool found = pl_es10f_info_find_otk(di, otk_id) != NULL;
    free(di);
    pl_fx_msg_release(&m);
    pl_wr_free(&req);
    return found;
}

/* The load request dies with the device: PL_ERR_IO (hangup) or PL_ERR_TIMEOUT; exit 3. */
static void load_dies(struct dut *d, uint64_t id, const struct pl_ft_pkg *p)
{
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_load_env(id, p->env.buf, p->env.len, &req), PL_OK);
    int rc = pl_fixture_link_call(d->link, req.buf, req.len, &rsp, 20000);
    cr_assert(rc == PL_ERR_IO || rc == PL_ERR_TIMEOUT, "got %s", pl_strerror(rc));
    cr_assert_gt(strlen(pl_fixture_link_why(d->link)), 0);
    int st = -1;
    cr_assert_eq(pl_ft_proc_wait(&d->proc, 20000, &st), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3, "vdevice exit status %d", st);
    cr_assert_eq(pl_ft_count_lines(d->log, "unplugged after"), 1);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
}

Test(fixture_serial, unplugged_mid_transfer_costs_nothing, .timeout = 300)
{
    struct pl_et t;
    struct dut d;
    struct pl_ft_pkg p;
    uint8_t eid[16], cert[4096], pir_raw[4096];
    size_t cert_len = 0, pir_len = 0;
    char after[32];

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 2);
    cr_assert_eq(pl_ft_pkg_for_path(&t, d.state, 1, UPP, &p), PL_OK);
    /* Pulled when about half of the package has crossed the line. The FPA takes a whole
     * request before it talks to the eUICC, so nothing of it reached the eUICC. */
    snprintf(after, sizeof(after), "%zu", p.env.len / 2);
    const char *const extra[] = {"--unplug-after-bytes", after, NULL};
    dut_start(&d, "dut", 921600, extra);
    dut_link(&d, 921600, 0, 0, 0);
    load_dies(&d, 1, &p);

    /* Plugged in again (same eUICC, a fresh pty at the same path; the link's next send
     * reopens the port): no result pending, the OTK still FREE, the same package loads. */
    dut_start(&d, "dut", 921600, NULL);
    station_identify(&d, 2, eid, cert, &cert_len);
    struct pl_notif_rnl_rsp *rl = malloc(sizeof(*rl));
    struct pl_wr raw;
    pl_wr_init_dyn(&raw, PL_FX_MSG_MAX);
    station_fetch(&d, 3, rl, &raw);
    cr_assert_eq(rl->n, 0);
    cr_assert(otk_free(&d, 4, 1));
    cr_assert(station_load(&d, 5, &p, cert, cert_len, pir_raw, &pir_len));
    struct pl_fixture_link_stats ls;
    pl_fixture_link_get_stats(d.link, &ls);
    cr_assert_geq(ls.reopens, 1);
    cr_assert_eq(ls.failures, 1);
    dut_stop_clean(&d);
    free(rl);
    pl_wr_free(&raw);
    pl_ft_pkg_free(&p);
    lab_free(&t);
}

Test(fixture_serial, unplugged_during_euicc_load_interrupted_pir, .timeout = 300)
{
    struct pl_et t;
    struct dut d;
    struct pl_ft_pkg p;
    uint8_t eid[16], cert[4096];
    size_t cert_len = 0;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 2);
    cr_assert_eq(pl_ft_pkg_for_path(&t, d.state, 1, UPP, &p), PL_OK);
    /* The load is the device's first request: ~20 APDUs of session, GetEID, header and the
     * first segments, then ~100 STORE DATA blocks of '86' profile elements. Power goes at
     * APDU 60, in the middle of the '86' (IFPP.md §7 case 7). */
    const char *const extra[] = {"--unplug-after-apdus", "60", NULL};
    dut_start(&d, "dut", 921600, extra);
    dut_link(&d, 921600, 0, 0, 0);
    load_dies(&d, 1, &p);

    /* Plugged in again: the eUICC reports the interrupted load as a signed error PIR for the
     * package's transaction; the OTK is spent. */
    dut_start(&d, "dut", 921600, NULL);
    station_identify(&d, 2, eid, cert, &cert_len);
    struct pl_notif_rnl_rsp *rl = malloc(sizeof(*rl));
    struct pl_wr raw;
    pl_wr_init_dyn(&raw, PL_FX_MSG_MAX);
    station_fetch(&d, 3, rl, &raw);
    cr_assert_eq(rl->n, 1, "the interrupted load left no PIR");
    struct pl_pir pir;
    cr_assert_eq(pl_et_pir_check_cert(cert, cert_len, rl->items[0].raw, rl->items[0].raw_len,
                                      &pir), PL_OK);
    cr_assert_not(pir.success);
    cr_assert_eq(pir.reason, PL_PIR_REASON_INTERRUPTION, "reason %lld", (long long)pir.reason);
    cr_assert_eq(pir.tid_len, p.tid_len);
    cr_assert_eq(memcmp(pir.tid, p.tid, p.tid_len), 0);
    cr_assert_not(otk_free(&d, 4, 1));
    dut_stop_clean(&d);
    free(rl);
    pl_wr_free(&raw);
    pl_ft_pkg_free(&p);
    lab_free(&t);
}

Test(fixture_serial, power_cut_at_state_write, .timeout = 300)
{
    struct pl_et t;
    struct dut d;
    struct pl_ft_pkg p;
    uint8_t eid[16], cert[4096];
    size_t cert_len = 0;

    memset(&d, 0, sizeof(d));
    cr_assert_eq(lab_init(&t), PL_OK);
    dut_mint(&t, &d, "dut", 2);
    cr_assert_eq(pl_ft_pkg_for_path(&t, d.state, 2, UPP, &p), PL_OK);
    /* The first state write of the load (the OTK consumption) loses power. */
    const char *const extra[] = {"--power-cut-at-write", "1", NULL};
    dut_start(&d, "dut", 921600, extra);
    dut_link(&d, 921600, 0, 0, 0);
    station_identify(&d, 1, eid, cert, &cert_len);
    struct pl_wr req, rsp;
    pl_wr_init_dyn(&req, PL_FX_MSG_MAX);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    cr_assert_eq(pl_ft_req_load_env(2, p.env.buf, p.env.len, &req), PL_OK);
    int rc = pl_fixture_link_call(d.link, req.buf, req.len, &rsp, 20000);
    cr_assert_neq(rc, PL_OK, "a device without power answered");
    int st = -1;
    cr_assert_eq(pl_ft_proc_wait(&d.proc, 20000, &st), 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4, "vdevice exit status %d", st);
    cr_assert_eq(pl_ft_count_lines(d.log, "power cut"), 1);

    /* IFPP.md §7 case 18: after the cut, either the OTK is FREE and nothing is installed,
     * or it is CONSUMED with an error PIR; never FREE with a profile. */
    struct pl_euicc *e = NULL;
    struct pl_euicc_opts o;
    struct pl_euicc_otk_info oi;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(d.state, &o, &e), PL_OK);
    cr_assert_eq(pl_euicc_otk_by_id(e, 2, &oi), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 0);
    if (oi.state == PL_EUICC_OTK_FREE)
        cr_assert_eq(pl_euicc_notif_count(e), 0);
    else
        cr_assert_eq(pl_euicc_notif_count(e), 1);
    pl_euicc_close(e);
    pl_fixture_link_free(d.link);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    pl_ft_pkg_free(&p);
    lab_free(&t);
}

Test(fixture_serial, three_fixtures_one_loop, .timeout = 300)
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
        dut_start(&d[i], name, i == 0 ? 115200 : 921600, NULL);
        dut_link(&d[i], i == 0 ? 115200 : 921600, 0, 0, 0);
        pl_wr_init_dyn(&req[i], PL_FX_MSG_MAX);
        pl_wr_init_dyn(&rsp[i], PL_FX_MSG_MAX);
        cr_assert_eq(pl_ft_req_load_env(100 + (uint64_t)i, p[i].env.buf, p[i].env.len, &req[i]),
                     PL_OK);
        done[i] = false;
        res[i] = PL_ERR_INTERNAL;
    }
    /* The station's loop: all loads in flight at once, one poll(). */
    uint64_t now = pl_fixture_now_ms();
    for (int i = 0; i < N; i++)
        cr_assert_eq(pl_fixture_link_send(d[i].link, req[i].buf, req[i].len, CALL_MS, now), PL_OK);
    cr_assert_eq(pl_fixture_link_send(d[0].link, req[0].buf, req[0].len, CALL_MS, now),
                 PL_ERR_STATE, "one request at a time per link");
    int left = N, turns = 0;
    while (left > 0) {
        struct pollfd pf[N];
        uint64_t dl = PL_FIXTURE_NO_DEADLINE;
        nfds_t nf = 0;
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
        turns++;
    }
    cr_assert_gt(turns, N, "the loads did not overlap");
    for (int i = 0; i < N; i++) {
        provline_fixture_Msg m;
        cr_assert_eq(res[i], PL_OK, "fixture %d: %s", i, pl_fixture_link_why(d[i].link));
        cr_assert_eq(pl_fx_msg_decode(rsp[i].buf, rsp[i].len, &m), PL_OK);
        cr_assert_eq(m.request_id, 100 + (uint64_t)i);
        cr_assert_eq(m.which_body, PL_FX_LOAD_PACKAGE_RSP);
        pl_fx_msg_release(&m);
        dut_stop_clean(&d[i]);
        pl_wr_free(&req[i]);
        pl_wr_free(&rsp[i]);
        pl_ft_pkg_free(&p[i]);
    }
    lab_free(&t);
}
