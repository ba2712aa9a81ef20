/* unit.fixture_link: the station's fixture link seam (fixture_link.h) without the virtual
 * device: argument and configuration errors with their reasons, one request in flight,
 * answers matched by request_id (a stale answer and a late answer to an abandoned request
 * are dropped, never handed to the next request), the request deadline, and a device that
 * hangs up. The far end is an in-process fake device on a pty master speaking the link layer
 * (link.h), pumped from the same loop as the station's link. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture_testutil.h"
#include "provline/fixtures/fixture_link.h"
#include "provline/fixtures/pty.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/link.h"

/* ---- a fake device: the link layer on the pty master, answering from a script ---- */

enum fake_mode {
    FAKE_ECHO_ERROR = 0,  /* answer each request with an Error carrying its id */
    FAKE_STALE_FIRST = 1, /* first an Error for another id, then the right one */
    FAKE_SILENT_ONCE = 2, /* keep the first request unanswered until released */
};

struct fake {
    struct pl_pty pty;
    struct pl_serial_ops ops;
    struct pl_link *link;
    enum fake_mode mode;
    uint64_t held_id;  /* FAKE_SILENT_ONCE: the id held back */
    bool holding;
    bool release;      /* answer the held request now */
    size_t seen;
};

static uint64_t now(void)
{
    return pl_fixture_now_ms();
}

static int fake_write(void *user, const uint8_t *buf, size_t len)
{
    struct fake *f = user;
    return f->ops.write(f->ops.user, buf, len);
}

static void answer(struct fake *f, uint64_t id, int code)
{
    provline_fixture_Msg m;
    struct pl_wr w;
    pl_fx_msg_init(&m);
    m.version = 1;
    m.request_id = id;
    m.which_body = PL_FX_ERROR;
    m.body.error.code = (provline_fixture_ErrorCode)code;
    m.body.error.stage = provline_fixture_Stage_STAGE_REQUEST;
    pl_fx_set_str(m.body.error.detail, sizeof(m.body.error.detail), "fake device");
    pl_wr_init_dyn(&w, 1024);
    cr_assert_eq(pl_fx_msg_encode(&m, &w), PL_OK);
    cr_assert_eq(pl_link_send(f->link, w.buf, w.len, now()), PL_OK);
    pl_wr_free(&w);
}

static void fake_deliver(void *user, const uint8_t *msg, size_t len)
{
    struct fake *f = user;
    uint64_t id = 0;
    unsigned which = 0;
    cr_assert_eq(pl_fx_msg_peek(msg, len, &id, &which), PL_OK);
    f->seen++;
    switch (f->mode) {
    case FAKE_STALE_FIRST:
        answer(f, id + 1000, provline_fixture_ErrorCode_ERROR_INTERNAL);
        answer(f, id, provline_fixture_ErrorCode_ERROR_UNEXPECTED);
        break;
    case FAKE_SILENT_ONCE:
        if (!f->holding && f->seen == 1) {
            f->holding = true;
            f->held_id = id;
            break;
        }
        answer(f, id, provline_fixture_ErrorCode_ERROR_UNEXPECTED);
        break;
    case FAKE_ECHO_ERROR:
    default:
        answer(f, id, provline_fixture_ErrorCode_ERROR_UNEXPECTED);
        break;
    }
}

static void fake_open(struct fake *f, enum fake_mode mode)
{
    struct pl_link_config c;
    struct pl_link_ops ops = {fake_write, fake_deliver, NULL, f};
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    cr_assert_eq(pl_pty_open(&f->pty), PL_OK);
    cr_assert_eq(pl_pty_master_ops(&f->pty, 921600, &f->ops), PL_OK);
    pl_link_config_default(&c);
    c.session = 0x5eed1234u;
    c.rto_ms = 50;
    c.reset_ms = 50;
    cr_assert_eq(pl_link_new(&c, &ops, now(), &f->link), PL_OK);
}

static void fake_pump(struct fake *f)
{
    uint8_t buf[4096];
    size_t got = 0;
    if (f->link == NULL)
        return;
    if (f->release && f->holding) { /* before any new request is read */
        f->release = false;
        f->holding = false;
        answer(f, f->held_id, provline_fixture_ErrorCode_ERROR_UNEXPECTED);
    }
    int rc = PL_OK;
    if (f->ops.read(f->ops.user, buf, sizeof(buf), 0, &got) == PL_OK && got > 0)
        rc = pl_link_input(f->link, buf, got, now());
    cr_assert(rc == PL_OK || rc == PL_ERR_TIMEOUT, "fake link: %s", pl_strerror(rc));
    if (now() >= pl_link_deadline(f->link))
        rc = pl_link_tick(f->link, now());
    cr_assert(rc == PL_OK || rc == PL_ERR_TIMEOUT, "fake link: %s", pl_strerror(rc));
}

static void fake_close(struct fake *f)
{
    pl_link_free(f->link);
    f->link = NULL;
    pl_serial_close(&f->ops);
    pl_pty_close(&f->pty);
}

static struct pl_fixture_link *station_open(struct fake *f)
{
    struct pl_fixture_serial_config c;
    struct pl_fixture_link *l = NULL;
    char why[256];
    pl_fixture_serial_config_init(&c);
    c.path = f->pty.slave_path;
    c.baud = 921600;
    c.rto_ms = 50;
    cr_assert_eq(pl_fixture_link_serial_new(&c, &l, why, sizeof(why)), PL_OK, "%s", why);
    return l;
}

/* Drives both ends until the station's request ends; returns its result. */
static int run(struct pl_fixture_link *l, struct fake *f, struct pl_wr *rsp)
{
    bool done = false;
    for (int turn = 0; turn < 100000; turn++) {
        struct pollfd pf[2];
        nfds_t n = 0;
        int fd = pl_fixture_link_fd(l);
        if (fd >= 0)
            pf[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
        if (f->link != NULL)
            pf[n++] = (struct pollfd){.fd = f->pty.master, .events = POLLIN};
        (void)poll(pf, n, 5);
        fake_pump(f);
        int rc = pl_fixture_link_poll(l, now(), rsp, &done);
        if (done)
            return rc;
    }
    cr_assert_fail("the request never ended");
    return PL_ERR_INTERNAL;
}

static void request(uint64_t id, struct pl_wr *w)
{
    pl_wr_reset(w);
    cr_assert_eq(pl_ft_req_identify(id, w), PL_OK);
}

Test(fixture_link, configuration_errors)
{
    struct pl_fixture_serial_config s;
    struct pl_fixture_coap_config c;
    struct pl_fixture_link *l = NULL;
    char why[256];

    pl_fixture_serial_config_init(&s);
    cr_assert_eq(pl_fixture_link_serial_new(&s, &l, why, sizeof(why)), PL_ERR_INVAL);
    cr_assert_gt(strlen(why), 0);
    s.path = "/nonexistent/tty-of-fixture-9";
    cr_assert_eq(pl_fixture_link_serial_new(&s, &l, why, sizeof(why)), PL_ERR_NOT_FOUND);
    cr_assert_not_null(strstr(why, "/nonexistent/tty-of-fixture-9"), "%s", why);
    s.baud = 9600;
    cr_assert_eq(pl_fixture_link_serial_new(&s, &l, why, sizeof(why)), PL_ERR_INVAL);
    cr_assert_null(l);

    pl_fixture_coap_config_init(&c);
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_ERR_INVAL);
    c.host = "fixture-7.local";
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_ERR_INVAL);
    cr_assert_not_null(strstr(why, "numeric"), "%s", why);
    c.host = "127.0.0.1";
    c.dtls = true;
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_ERR_INVAL);
    cr_assert_not_null(strstr(why, "PSK"), "%s", why);
    c.dtls = false;
    c.resource = "a/b";
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_ERR_INVAL);
    c.resource = NULL;
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_OK, "%s", why);

    /* send: only requests with an id; one at a time. */
    struct pl_wr w;
    pl_wr_init_dyn(&w, 256);
    static const uint8_t junk[] = {0xFF, 0xFF};
    cr_assert_eq(pl_fixture_link_send(l, junk, sizeof(junk), 1000, now()), PL_ERR_INVAL);
    static const uint8_t rsp_body[] = {0x08, 0x01, 0x10, 0x05, 0x9A, 0x01, 0x02, 0x08, 0x00};
    cr_assert_eq(pl_fixture_link_send(l, rsp_body, sizeof(rsp_body), 1000, now()), PL_ERR_INVAL);
    request(1, &w);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 0, now()), PL_ERR_INVAL);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 1000, now()), PL_OK);
    cr_assert(pl_fixture_link_busy(l));
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 1000, now()), PL_ERR_STATE);
    pl_fixture_link_cancel(l);
    cr_assert_not(pl_fixture_link_busy(l));
    pl_wr_free(&w);
    pl_fixture_link_free(l);
    pl_fixture_link_free(NULL);
}

Test(fixture_link, coap_nobody_listening_fails)
{
    struct pl_fixture_coap_config c;
    struct pl_fixture_link *l = NULL;
    struct pl_wr w, rsp;
    char why[256];
    /* A UDP port nobody listens on: ICMP port unreachable, or no ACK at all. */
    pl_fixture_coap_config_init(&c);
    c.host = "127.0.0.1";
    c.port = 9; /* discard: not served on a test machine */
    c.ack_timeout_ms = 200;
    c.max_retransmit = 1;
    cr_assert_eq(pl_fixture_link_coap_new(&c, &l, why, sizeof(why)), PL_OK, "%s", why);
    pl_wr_init_dyn(&w, 256);
    pl_wr_init_dyn(&rsp, 256);
    request(3, &w);
    int rc = pl_fixture_link_call(l, w.buf, w.len, &rsp, 20000);
    cr_assert(rc == PL_ERR_IO || rc == PL_ERR_TIMEOUT, "got %s", pl_strerror(rc));
    cr_assert_gt(strlen(pl_fixture_link_why(l)), 0);
    cr_assert_eq(rsp.len, 0);
    struct pl_fixture_link_stats st;
    pl_fixture_link_get_stats(l, &st);
    cr_assert_eq(st.failures, 1);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    pl_fixture_link_free(l);
}

Test(fixture_link, answer_matched_by_request_id)
{
    struct fake f;
    struct pl_wr w, rsp;
    provline_fixture_Msg m;
    fake_open(&f, FAKE_STALE_FIRST);
    struct pl_fixture_link *l = station_open(&f);
    pl_wr_init_dyn(&w, 256);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    request(41, &w);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 30000, now()), PL_OK);
    cr_assert_eq(run(l, &f, &rsp), PL_OK, "%s", pl_fixture_link_why(l));
    cr_assert_eq(pl_fx_msg_decode(rsp.buf, rsp.len, &m), PL_OK);
    cr_assert_eq(m.request_id, 41);
    cr_assert_eq(m.body.error.code, provline_fixture_ErrorCode_ERROR_UNEXPECTED);
    pl_fx_msg_release(&m);
    struct pl_fixture_link_stats st;
    pl_fixture_link_get_stats(l, &st);
    cr_assert_eq(st.stale, 1, "the answer for another id must be dropped");
    cr_assert_eq(st.responses, 1);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    pl_fixture_link_free(l);
    fake_close(&f);
}

Test(fixture_link, deadline_then_late_answer_is_stale)
{
    struct fake f;
    struct pl_wr w, rsp;
    provline_fixture_Msg m;
    fake_open(&f, FAKE_SILENT_ONCE);
    struct pl_fixture_link *l = station_open(&f);
    pl_wr_init_dyn(&w, 256);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);

    /* The device takes request 50 and says nothing: the deadline ends it. */
    request(50, &w);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 300, now()), PL_OK);
    cr_assert_eq(run(l, &f, &rsp), PL_ERR_TIMEOUT);
    cr_assert_not_null(strstr(pl_fixture_link_why(l), "50"), "%s", pl_fixture_link_why(l));
    cr_assert_eq(rsp.len, 0);
    cr_assert_not(pl_fixture_link_busy(l));

    /* Request 51 goes out; the device answers 50 late, then 51. */
    request(51, &w);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 30000, now()), PL_OK);
    f.release = true;
    cr_assert_eq(run(l, &f, &rsp), PL_OK, "%s", pl_fixture_link_why(l));
    cr_assert_eq(pl_fx_msg_decode(rsp.buf, rsp.len, &m), PL_OK);
    cr_assert_eq(m.request_id, 51, "the late answer was taken for the next request");
    pl_fx_msg_release(&m);
    struct pl_fixture_link_stats st;
    pl_fixture_link_get_stats(l, &st);
    cr_assert_eq(st.stale, 1);
    cr_assert_eq(st.failures, 1);
    cr_assert_eq(st.responses, 1);
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    pl_fixture_link_free(l);
    fake_close(&f);
}

Test(fixture_link, device_hangs_up)
{
    struct fake f;
    struct pl_wr w, rsp;
    fake_open(&f, FAKE_SILENT_ONCE);
    struct pl_fixture_link *l = station_open(&f);
    pl_wr_init_dyn(&w, 256);
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    request(60, &w);
    cr_assert_eq(pl_fixture_link_send(l, w.buf, w.len, 30000, now()), PL_OK);
    /* Let the request cross, then the device goes away. */
    bool done = false;
    for (int i = 0; i < 2000 && f.seen == 0; i++) {
        struct pollfd pf = {.fd = f.pty.master, .events = POLLIN};
        (void)poll(&pf, 1, 5);
        fake_pump(&f);
        cr_assert_eq(pl_fixture_link_poll(l, now(), &rsp, &done), PL_OK);
        cr_assert_not(done);
    }
    cr_assert_eq(f.seen, 1);
    fake_close(&f);
    int rc = run(l, &f, &rsp);
    cr_assert_eq(rc, PL_ERR_IO, "got %s", pl_strerror(rc));
    cr_assert_not_null(strstr(pl_fixture_link_why(l), "unplugged"), "%s",
                       pl_fixture_link_why(l));
    pl_wr_free(&w);
    pl_wr_free(&rsp);
    pl_fixture_link_free(l);
}
