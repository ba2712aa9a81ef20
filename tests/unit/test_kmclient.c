/* Unit tests: the Key Maker client (keymaker-client/kmclient.h) without the Key Maker:
 * configuration and key file errors, the back-off schedule under a fake clock (exponential,
 * capped, jittered, ending in PL_ERR_TIMEOUT at the deadline), requests held until a
 * session exists, and a scripted CurveZMQ ROUTER in the test playing a hostile or confused
 * Key Maker: undecodable, multi-frame and unsolicited frames dropped, replies contradicting
 * their request refused, STALE_SEQ renumbered, INTERNAL retried with the same bytes.
 * docs/station-keymaker-protocol.md §2-§4; STYLE.md §7.3 rule 10. */
#define _POSIX_C_SOURCE 200809L
#include "pl_test.h"
#include "provline/kmclient/kmclient.h"
#include "provline/protocol/secret.h"
#include "provline/sim/pki.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define E(x) provline_keymaker_ErrorCode_ERROR_##x

static char g_dir[256];
static char g_sec[600], g_pub[600];
static char g_server_pub[41], g_server_sec[41];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static void setup(void)
{
    char pub[41], sec[41], line[64];
    cr_assert_eq(pl_test_tmpdir(g_dir, sizeof(g_dir)), 0);
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    snprintf(g_sec, sizeof(g_sec), "%s/station.key", g_dir);
    snprintf(g_pub, sizeof(g_pub), "%s/station.pub", g_dir);
    snprintf(line, sizeof(line), "%s\n", sec);
    write_file(g_sec, line);
    snprintf(line, sizeof(line), "  %s  \n", pub);
    write_file(g_pub, line);
    cr_assert_eq(zmq_curve_keypair(g_server_pub, g_server_sec), 0);
}

static void teardown(void)
{
    pl_test_rmtree(g_dir);
}

TestSuite(kmclient, .init = setup, .fini = teardown, .timeout = 120.0);

/* A TCP port with nobody listening. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    socklen_t al = sizeof(a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static char g_endpoint[64];

static void base(struct pl_kmclient_config *cfg)
{
    pl_kmclient_config_init(cfg);
    snprintf(g_endpoint, sizeof(g_endpoint), "tcp://127.0.0.1:%d", closed_port());
    cfg->endpoint = g_endpoint;
    cfg->server_public = g_server_pub;
    cfg->secret_file = g_sec;
    cfg->public_file = g_pub;
}

static uint64_t fake_now(void *user)
{
    return *(uint64_t *)user;
}

static int rng_ff(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    memset(buf, 0xff, len);
    return PL_OK;
}

static int rng_00(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    memset(buf, 0x00, len);
    return PL_OK;
}

/* ---------------------------------------------------------------- config ---- */

Test(kmclient, config_defaults_and_errors)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    char bad[600];

    pl_kmclient_config_init(&cfg);
    cr_assert_eq(cfg.attempt_ms, 1000);
    cr_assert_eq(cfg.backoff_max_ms, 8000);
    cr_assert_eq(cfg.deadline_ms, 30000);
    cr_assert_eq(cfg.prefetch_target, 0);

    base(&cfg);
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    int fd = -1;
    cr_assert_eq(pl_kmclient_fd(c, &fd), PL_OK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pl_kmclient_timeout_ms(c), -1, "a new client has nothing to do");
    cr_assert_null(pl_kmclient_checkpoint_key(c), "no checkpoint certificate configured");
    pl_kmclient_free(c);
    pl_kmclient_free(NULL);

#define REFUSED(field, value, err)                                                                 \
    do {                                                                                           \
        base(&cfg);                                                                                \
        cfg.field = value;                                                                         \
        c = NULL;                                                                                  \
        cr_assert_eq(pl_kmclient_new(&cfg, &c), err, #field);                                      \
        cr_assert_null(c);                                                                         \
    } while (0)
    REFUSED(endpoint, NULL, PL_ERR_CONFIG);
    REFUSED(endpoint, "nonsense://x", PL_ERR_CONFIG);
    REFUSED(secret_file, NULL, PL_ERR_CONFIG);
    REFUSED(attempt_ms, 0, PL_ERR_CONFIG);
    REFUSED(backoff_max_ms, 10, PL_ERR_CONFIG);
    REFUSED(jitter_pct, 101, PL_ERR_CONFIG);
    REFUSED(deadline_ms, 0, PL_ERR_CONFIG);
    REFUSED(max_inflight, 0, PL_ERR_CONFIG);
    REFUSED(queue_max, PL_KMCLIENT_QUEUE_MAX + 1, PL_ERR_CONFIG);
    REFUSED(prefetch_target, PL_KMCLIENT_POOL_MAX + 1, PL_ERR_CONFIG);
    REFUSED(server_public, "tooshort", PL_ERR_CONFIG);
    REFUSED(server_public, "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~", PL_ERR_CONFIG);

    snprintf(bad, sizeof(bad), "%s/missing.key", g_dir);
    REFUSED(secret_file, bad, PL_ERR_IO);
    snprintf(bad, sizeof(bad), "%s/bad.key", g_dir);
    write_file(bad, "not a z85 key\n");
    REFUSED(secret_file, bad, PL_ERR_CONFIG);
    /* A public key file that does not belong to the secret key. */
    char other_pub[41], other_sec[41], line[64];
    cr_assert_eq(zmq_curve_keypair(other_pub, other_sec), 0);
    snprintf(bad, sizeof(bad), "%s/other.pub", g_dir);
    snprintf(line, sizeof(line), "%s\n", other_pub);
    write_file(bad, line);
    REFUSED(public_file, bad, PL_ERR_CONFIG);
    /* The server key from a file works like the text. */
    snprintf(bad, sizeof(bad), "%s/server.pub", g_dir);
    snprintf(line, sizeof(line), "%s\n", g_server_pub);
    write_file(bad, line);
    base(&cfg);
    cfg.server_public = NULL;
    cfg.server_public_file = bad;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    pl_kmclient_free(c);
    /* The checkpoint signer's certificate: a readable DER certificate. */
    snprintf(bad, sizeof(bad), "%s/missing.der", g_dir);
    REFUSED(checkpoint_cert_file, bad, PL_ERR_IO);
    snprintf(bad, sizeof(bad), "%s/bad.key", g_dir);
    REFUSED(checkpoint_cert_file, bad, PL_ERR_CONFIG);
#undef REFUSED
}

Test(kmclient, bad_requests_never_queue)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    uint8_t eid[16] = {0x89}, ids[9 * 16] = {0};
    uint64_t id = 0;

    base(&cfg);
    cfg.queue_max = 2;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    cr_assert_eq(pl_kmclient_send_ack(c, ids, ids, 9, 0, &id), PL_ERR_INVAL);
    cr_assert_eq(pl_kmclient_send_lease_prefetch(c, eid, 0, 1, 0, &id), PL_ERR_INVAL);
    cr_assert_eq(pl_kmclient_send_lease_jit(c, eid, 0, 0, &id), PL_ERR_MALFORMED);
    cr_assert_eq(pl_kmclient_last_seq(c), 0, "a refused request consumed a seq");
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    pl_km_msg_init(m);
    m->which_body = PL_KM_LEASE; /* a reply type */
    cr_assert_eq(pl_kmclient_submit(c, m, 0, NULL, &id, NULL), PL_ERR_INVAL);
    m->which_body = PL_KM_TOKEN_REQUEST;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, eid, 16), PL_OK);
    struct pl_kmclient_ident pin = {{0}, 0};
    cr_assert_eq(pl_kmclient_submit(c, m, 0, &pin, &id, NULL), PL_ERR_INVAL, "seq 0 pinned");
    struct pl_kmclient_ident got;
    cr_assert_eq(pl_kmclient_submit(c, m, 0, NULL, &id, &got), PL_OK);
    cr_assert_eq(got.seq, 1);
    cr_assert_eq(pl_kmclient_submit(c, m, 0, NULL, &id, &got), PL_OK);
    cr_assert_eq(got.seq, 2);
    cr_assert_eq(pl_kmclient_submit(c, m, 0, NULL, &id, NULL), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_kmclient_pending(c), 2);
    /* A pinned identity moves the sequence above it. */
    pl_kmclient_free(c);
    cfg.queue_max = 8;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    pin.seq = 41;
    memset(pin.msg_id, 7, sizeof(pin.msg_id));
    cr_assert_eq(pl_kmclient_submit(c, m, 0, &pin, &id, &got), PL_OK);
    cr_assert_eq(got.seq, 41);
    cr_assert_eq(memcmp(got.msg_id, pin.msg_id, 16), 0);
    cr_assert_eq(pl_kmclient_submit(c, m, 0, NULL, &id, &got), PL_OK);
    cr_assert_eq(got.seq, 42);
    pl_km_msg_release(m);
    free(m);
    pl_kmclient_free(c);
}

Test(kmclient, prefetch_candidates)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    uint8_t eid[16] = {0};
    struct pl_kmclient_pkg p;

    base(&cfg);
    cfg.prefetch_target = 2;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    for (unsigned i = 0; i < PL_KMCLIENT_CANDIDATES_MAX; i++) {
        eid[15] = (uint8_t)i;
        cr_assert_eq(pl_kmclient_prefetch_add(c, eid), PL_OK);
    }
    eid[15] = 200;
    cr_assert_eq(pl_kmclient_prefetch_add(c, eid), PL_ERR_OVERFLOW);
    eid[15] = 3;
    cr_assert_eq(pl_kmclient_prefetch_add(c, eid), PL_ERR_EXISTS);
    pl_kmclient_prefetch_remove(c, eid);
    cr_assert_eq(pl_kmclient_prefetch_add(c, eid), PL_OK);
    cr_assert_eq(pl_kmclient_prefetch_take(c, eid, &p), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_kmclient_prefetch_ready(c), 0);
    /* Candidates and no session: the client wants to run now (a Hello first). */
    cr_assert_eq(pl_kmclient_timeout_ms(c), 0);
    cr_assert_eq(pl_kmclient_poll(c), PL_OK);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.hellos_sent + s.send_eagain, 1, "sent %llu eagain %llu",
                 (unsigned long long)s.hellos_sent, (unsigned long long)s.send_eagain);
    cr_assert_eq(s.prefetch_requests, 0, "a lease before the session");
    pl_kmclient_free(c);
}

/* ---------------------------------------------------------------- back-off ---- */

/* Drives a Hello to an unreachable endpoint with a fake clock: the wait before each
 * retransmission, as pl_kmclient_timeout_ms() reports it, then the completion. */
static unsigned run_schedule(struct pl_kmclient *c, uint64_t *clock, uint32_t *waits, unsigned cap,
                             struct pl_kmclient_done *d)
{
    uint64_t id = 0;
    unsigned n = 0;
    cr_assert_eq(pl_kmclient_send_hello(c, 0, &id), PL_OK);
    for (;;) {
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
        if (pl_kmclient_take(c, id, d) == PL_OK)
            return n;
        int t = pl_kmclient_timeout_ms(c);
        cr_assert_gt(t, 0, "a pending request with no timer, or a busy loop");
        cr_assert_lt(n, cap);
        waits[n++] = (uint32_t)t;
        *clock += (uint64_t)t;
    }
}

Test(kmclient, backoff_is_exponential_capped_and_ends_at_the_deadline)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    uint64_t now = 1000000;
    struct pl_clock_ops clk = {fake_now, &now};
    uint32_t waits[64];

    base(&cfg);
    cfg.clock = &clk;
    cfg.attempt_ms = 100;
    cfg.backoff_max_ms = 800;
    cfg.jitter_pct = 0;
    cfg.deadline_ms = 5000;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    unsigned n = run_schedule(c, &now, waits, 64, &d);
    /* Sends at 0, 100, 300, 700, 1500, 2300, 3100, 3900, 4700; the deadline at 5000. */
    static const uint32_t want[] = {100, 200, 400, 800, 800, 800, 800, 800, 300};
    cr_assert_eq(n, sizeof(want) / sizeof(want[0]));
    for (unsigned i = 0; i < n; i++)
        cr_assert_eq(waits[i], want[i], "wait %u: %u", i, waits[i]);
    cr_assert_eq(d.status, PL_ERR_TIMEOUT);
    cr_assert_eq(d.attempts, 9);
    cr_assert_null(d.reply);
    pl_kmclient_done_free(&d);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.timeouts, 1);
    cr_assert_eq(s.frames_sent, 9);
    cr_assert_eq(s.retransmissions, 8);
    cr_assert_eq(pl_kmclient_timeout_ms(c), -1);
    cr_assert_eq(pl_kmclient_pending(c), 0);
    pl_kmclient_free(c);
}

Test(kmclient, jitter_shortens_each_wait_within_its_bound)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    uint64_t now = 5;
    struct pl_clock_ops clk = {fake_now, &now};
    struct pl_rng hi = {rng_ff, NULL}, lo = {rng_00, NULL};
    uint32_t waits[64];

    base(&cfg);
    cfg.clock = &clk;
    cfg.attempt_ms = 100;
    cfg.backoff_max_ms = 400;
    cfg.jitter_pct = 50;
    cfg.deadline_ms = 2000;
    cfg.rng = &hi; /* the largest cut: about half of each wait */
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    unsigned n = run_schedule(c, &now, waits, 64, &d);
    uint32_t w = 100;
    for (unsigned i = 0; i + 1 < n; i++) {
        cr_assert_geq(waits[i], w / 2, "wait %u: %u under the jitter bound", i, waits[i]);
        cr_assert_leq(waits[i], w / 2 + 1, "wait %u: %u", i, waits[i]);
        if (w < 400)
            w *= 2;
    }
    cr_assert_eq(d.status, PL_ERR_TIMEOUT);
    pl_kmclient_done_free(&d);
    pl_kmclient_free(c);

    cfg.rng = &lo; /* no cut at all */
    now = 5;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    n = run_schedule(c, &now, waits, 64, &d);
    cr_assert_eq(waits[0], 100);
    cr_assert_eq(waits[1], 200);
    cr_assert_eq(waits[2], 400);
    cr_assert_eq(waits[3], 400);
    pl_kmclient_done_free(&d);
    pl_kmclient_free(c);
}

Test(kmclient, requests_wait_for_a_session_and_time_out_unsent)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    uint64_t now = 0, id = 0;
    struct pl_clock_ops clk = {fake_now, &now};
    uint8_t eid[16] = {0x89};

    base(&cfg);
    cfg.clock = &clk;
    cfg.attempt_ms = 100;
    cfg.backoff_max_ms = 100;
    cfg.jitter_pct = 0;
    cfg.deadline_ms = 1000;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    cr_assert_eq(pl_kmclient_send_token_request(c, eid, 5, &id), PL_OK);
    cr_assert_eq(pl_kmclient_poll(c), PL_OK);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.frames_sent, 1, "only the resync Hello may go out");
    cr_assert_eq(s.hellos_sent, 1);
    cr_assert_eq(pl_kmclient_pending(c), 2);
    while (pl_kmclient_take(c, id, &d) != PL_OK) {
        int t = pl_kmclient_timeout_ms(c);
        cr_assert_gt(t, 0);
        now += (uint64_t)t;
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
    }
    cr_assert_eq(d.status, PL_ERR_TIMEOUT);
    cr_assert_eq(d.tag, 5);
    cr_assert_eq(d.attempts, 0);
    pl_kmclient_done_free(&d);
    cr_assert_eq(pl_kmclient_pending(c), 0, "resync Hello kept without a request");
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.hellos_sent, 10);
    pl_kmclient_free(c);
}

/* ------------------------------------------------- a scripted Key Maker ---- */

struct fake {
    void *ctx, *sock;
    char endpoint[128];
    uint8_t rid[256];
    size_t rid_len;
};

static void fake_open(struct fake *f)
{
    int one = 1, zero = 0;
    memset(f, 0, sizeof(*f));
    f->ctx = zmq_ctx_new();
    f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
    cr_assert_eq(zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof(zero)), 0);
    cr_assert_eq(zmq_setsockopt(f->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
    cr_assert_eq(zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, g_server_sec, 40), 0);
    cr_assert_eq(zmq_bind(f->sock, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(f->endpoint);
    cr_assert_eq(zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, f->endpoint, &len), 0);
}

static void fake_close(struct fake *f)
{
    zmq_close(f->sock);
    zmq_ctx_term(f->ctx);
}

/* Runs the client until the fake receives one request; decodes it into *m (released by
 * the caller); the raw frame goes to raw when not NULL. */
static void fake_recv(struct fake *f, struct pl_kmclient *c, provline_keymaker_Msg *m,
                      struct pl_wr *raw)
{
    for (int i = 0; i < 400; i++) {
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
        zmq_pollitem_t it = {f->sock, 0, ZMQ_POLLIN, 0};
        cr_assert_geq(zmq_poll(&it, 1, 50), 0);
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        cr_assert_geq(zmq_msg_recv(&id, f->sock, 0), 0);
        cr_assert(zmq_msg_more(&id));
        cr_assert_geq(zmq_msg_recv(&body, f->sock, 0), 0);
        cr_assert_not(zmq_msg_more(&body), "the client sent more than one frame");
        f->rid_len = zmq_msg_size(&id);
        cr_assert_leq(f->rid_len, sizeof(f->rid));
        memcpy(f->rid, zmq_msg_data(&id), f->rid_len);
        cr_assert_eq(pl_km_msg_decode(zmq_msg_data(&body), zmq_msg_size(&body), m), PL_OK);
        if (raw) {
            pl_wr_reset(raw);
            pl_wr_bytes(raw, zmq_msg_data(&body), zmq_msg_size(&body));
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        return;
    }
    cr_assert_fail("no request reached the fake Key Maker");
}

static void fake_send_raw(struct fake *f, const void *p, size_t n, const void *extra, size_t en)
{
    cr_assert_eq(zmq_send(f->sock, f->rid, f->rid_len, ZMQ_SNDMORE), (int)f->rid_len);
    cr_assert_eq(zmq_send(f->sock, p, n, extra ? ZMQ_SNDMORE : 0), (int)n);
    if (extra)
        cr_assert_eq(zmq_send(f->sock, extra, en, 0), (int)en);
}

/* Sends rep as the answer to req (reply_to = req's msg_id unless other_id). */
static void fake_reply(struct fake *f, const provline_keymaker_Msg *req, provline_keymaker_Msg *rep,
                       uint64_t seq, const uint8_t *other_id)
{
    struct pl_wr w;
    rep->version = PL_KM_VERSION;
    rep->msg_id.size = 16;
    memset(rep->msg_id.bytes, 0x5a, 16);
    rep->seq = seq;
    rep->reply_to.size = 16;
    memcpy(rep->reply_to.bytes, other_id ? other_id : req->msg_id.bytes, 16);
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(rep, &w), PL_OK);
    fake_send_raw(f, w.buf, w.len, NULL, 0);
    pl_wr_free(&w);
}

static provline_keymaker_Msg *msg_new(void)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    return m;
}

static void msg_free(provline_keymaker_Msg *m)
{
    pl_km_msg_release(m);
    free(m);
}

static struct pl_kmclient *fake_client(struct fake *f)
{
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    base(&cfg);
    cfg.endpoint = f->endpoint;
    cfg.attempt_ms = 300;
    cfg.backoff_max_ms = 300;
    cfg.deadline_ms = 60000;
    cfg.jitter_pct = 0;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    return c;
}

/* Hello -> HelloAck{last_seq_seen = 10}. */
static void fake_session(struct fake *f, struct pl_kmclient *c)
{
    provline_keymaker_Msg *q = msg_new(), *a = msg_new();
    fake_recv(f, c, q, NULL);
    cr_assert_eq(q->which_body, PL_KM_HELLO);
    cr_assert_eq(q->seq, 0);
    a->which_body = PL_KM_HELLO_ACK;
    a->body.hello_ack.last_seq_seen = 10;
    strcpy(a->body.hello_ack.keymaker_id, "fake");
    fake_reply(f, q, a, 1, NULL);
    msg_free(q);
    msg_free(a);
}

static void wait_done(struct pl_kmclient *c, uint64_t id, struct pl_kmclient_done *d)
{
    for (int i = 0; i < 400; i++) {
        cr_assert_eq(pl_kmclient_poll(c), PL_OK);
        if (pl_kmclient_take(c, id, d) == PL_OK)
            return;
        zmq_pollitem_t it;
        pl_kmclient_pollitem(c, &it);
        cr_assert_geq(zmq_poll(&it, 1, 50), 0);
    }
    cr_assert_fail("request %llu did not complete", (unsigned long long)id);
}

static const uint8_t EID_A[16] = {0x89, 0x04, 0x90, 0x32, 0xaa};
static const uint8_t EID_B[16] = {0x89, 0x04, 0x90, 0x32, 0xbb};

Test(kmclient, hostile_frames_are_dropped_and_the_real_reply_taken)
{
    struct fake f;
    struct pl_kmclient_done d;
    uint64_t id = 0;
    fake_open(&f);
    struct pl_kmclient *c = fake_client(&f);
    cr_assert_eq(pl_kmclient_send_token_request(c, EID_A, 0, &id), PL_OK);
    fake_session(&f, c);
    provline_keymaker_Msg *q = msg_new(), *a = msg_new();
    fake_recv(&f, c, q, NULL);
    cr_assert_eq(q->which_body, PL_KM_TOKEN_REQUEST);
    cr_assert_eq(q->seq, 11, "not continued above the Key Maker's last_seq_seen");

    static const uint8_t junk[] = {0x0a, 0x10, 0x01, 0xff};
    fake_send_raw(&f, junk, sizeof(junk), NULL, 0);            /* undecodable */
    fake_send_raw(&f, junk, sizeof(junk), junk, sizeof(junk)); /* two frames */
    uint8_t stranger[16];
    memset(stranger, 0x77, sizeof(stranger));
    a->which_body = PL_KM_TOKEN;
    cr_assert_eq(PL_KM_SET_BYTES(a->body.otk_deletion_token.eid, EID_A, 16), PL_OK);
    a->body.otk_deletion_token.counter = 1;
    a->body.otk_deletion_token.request.size = 3;
    fake_reply(&f, q, a, 2, stranger); /* answers nobody */
    provline_keymaker_Msg *hello = msg_new();
    hello->which_body = PL_KM_HELLO;       /* a request-type message */
    fake_reply(&f, q, hello, 3, stranger); /* ... answering nobody */
    hello->reply_to.size = 0;              /* ... answering nothing */
    struct pl_wr w;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    cr_assert_eq(pl_km_msg_encode(hello, &w), PL_OK);
    fake_send_raw(&f, w.buf, w.len, NULL, 0);
    pl_wr_free(&w);
    fake_reply(&f, q, a, 4, NULL); /* the answer */
    wait_done(c, id, &d);
    cr_assert_eq(d.status, PL_OK, "%s", pl_strerror(d.status));
    cr_assert_eq(d.reply->body.otk_deletion_token.counter, 1);
    cr_assert_eq(pl_kmclient_last_seq_ack(c), 4);
    pl_kmclient_done_free(&d);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.dropped_frames, 3, "junk, two-frame message, message that is no reply");
    cr_assert_eq(s.duplicate_replies, 2, "the two answers to an unknown msg_id");
    msg_free(q);
    msg_free(a);
    msg_free(hello);
    pl_kmclient_free(c);
    fake_close(&f);
}

Test(kmclient, replies_contradicting_their_request_are_refused)
{
    struct fake f;
    struct pl_kmclient_done d;
    uint64_t id = 0;
    fake_open(&f);
    struct pl_kmclient *c = fake_client(&f);
    cr_assert_eq(pl_kmclient_send_lease_jit(c, EID_A, 3, 0, &id), PL_OK);
    fake_session(&f, c);
    provline_keymaker_Msg *q = msg_new(), *a = msg_new();
    fake_recv(&f, c, q, NULL);
    cr_assert_eq(q->which_body, PL_KM_LEASE_REQUEST);
    /* A package for another chip. */
    provline_keymaker_Lease *l = &a->body.lease;
    a->which_body = PL_KM_LEASE;
    l->lease_id.size = 16;
    l->packages_count = 1;
    provline_keymaker_Package *p = &l->packages[0];
    p->package_id.size = 16;
    cr_assert_eq(PL_KM_SET_BYTES(p->eid, EID_B, 16), PL_OK);
    p->otk_id = 3;
    p->transaction_id.size = 16;
    p->iccid.size = 10;
    p->envelope = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(4));
    cr_assert_not_null(p->envelope);
    p->envelope->size = 4;
    memset(p->envelope->bytes, 0x30, 4);
    fake_reply(&f, q, a, 2, NULL);
    wait_done(c, id, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);

    /* The wrong reply type: a HelloAck to a token request. */
    pl_km_msg_release(q);
    cr_assert_eq(pl_kmclient_send_token_request(c, EID_A, 0, &id), PL_OK);
    fake_recv(&f, c, q, NULL);
    provline_keymaker_Msg *ack = msg_new();
    ack->which_body = PL_KM_HELLO_ACK;
    fake_reply(&f, q, ack, 3, NULL);
    wait_done(c, id, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);

    /* A ReportAck with the wrong number of results. */
    pl_km_msg_release(q);
    provline_keymaker_ReportEntry e;
    memset(&e, 0, sizeof(e));
    e.package_id.size = 16;
    e.transaction_id.size = 16;
    cr_assert_eq(PL_KM_SET_BYTES(e.eid, EID_A, 16), PL_OK);
    e.which_outcome = provline_keymaker_ReportEntry_released_tag;
    e.outcome.released = true;
    cr_assert_eq(pl_kmclient_send_report(c, &e, 1, NULL, 0, &id), PL_OK);
    fake_recv(&f, c, q, NULL);
    provline_keymaker_Msg *ra = msg_new();
    ra->which_body = PL_KM_REPORT_ACK;
    fake_reply(&f, q, ra, 4, NULL);
    wait_done(c, id, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);

    msg_free(q);
    msg_free(a);
    msg_free(ack);
    msg_free(ra);
    pl_kmclient_free(c);
    fake_close(&f);
}

Test(kmclient, stale_seq_renumbers_and_internal_error_retries_the_same_bytes)
{
    struct fake f;
    struct pl_kmclient_done d;
    struct pl_wr raw1, raw2;
    uint64_t id = 0;
    fake_open(&f);
    struct pl_kmclient *c = fake_client(&f);
    pl_wr_init_dyn(&raw1, PL_KM_FRAME_MAX);
    pl_wr_init_dyn(&raw2, PL_KM_FRAME_MAX);
    struct pl_kmclient_ident pin;
    memset(pin.msg_id, 0x11, 16);
    pin.seq = 3; /* journaled long ago: below the fake's last_seq_seen of 10 */
    provline_keymaker_Msg *m = msg_new();
    m->which_body = PL_KM_TOKEN_REQUEST;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, EID_A, 16), PL_OK);
    cr_assert_eq(pl_kmclient_submit(c, m, 0, &pin, &id, NULL), PL_OK);
    fake_session(&f, c);

    /* The pinned identity goes out as it is (it may have been processed). */
    provline_keymaker_Msg *q = msg_new(), *a = msg_new();
    fake_recv(&f, c, q, NULL);
    cr_assert_eq(q->seq, 3);
    cr_assert_eq(memcmp(q->msg_id.bytes, pin.msg_id, 16), 0);
    a->which_body = PL_KM_ERROR;
    a->body.error.code = E(STALE_SEQ);
    fake_reply(&f, q, a, 2, NULL);
    /* Refused without effect: renumbered above everything and sent again. */
    pl_km_msg_release(q);
    fake_recv(&f, c, q, &raw1);
    cr_assert_eq(q->seq, 11);
    cr_assert_neq(memcmp(q->msg_id.bytes, pin.msg_id, 16), 0);
    /* INTERNAL: not recorded by the Key Maker; the retry carries the same bytes. */
    pl_km_msg_release(a);
    a->which_body = PL_KM_ERROR;
    a->body.error.code = E(INTERNAL);
    fake_reply(&f, q, a, 0, NULL);
    provline_keymaker_Msg *q2 = msg_new();
    fake_recv(&f, c, q2, &raw2);
    cr_assert_eq(raw1.len, raw2.len);
    cr_assert_eq(memcmp(raw1.buf, raw2.buf, raw1.len), 0, "a retry changed the request");
    pl_km_msg_release(a);
    a->which_body = PL_KM_TOKEN;
    cr_assert_eq(PL_KM_SET_BYTES(a->body.otk_deletion_token.eid, EID_A, 16), PL_OK);
    a->body.otk_deletion_token.counter = 9;
    a->body.otk_deletion_token.request.size = 1;
    fake_reply(&f, q2, a, 3, NULL);
    wait_done(c, id, &d);
    cr_assert_eq(d.status, PL_OK);
    cr_assert_eq(d.ident.seq, 11);
    cr_assert_geq(d.attempts, 3);
    pl_kmclient_done_free(&d);
    struct pl_kmclient_stats s;
    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.renumbered, 1);

    msg_free(m);
    msg_free(q);
    msg_free(q2);
    msg_free(a);
    pl_wr_free(&raw1);
    pl_wr_free(&raw2);
    pl_kmclient_free(c);
    fake_close(&f);
}

/* ------------------------------------------------ signed audit checkpoints ---- */

/* A ReportAck for the one-entry report q, with checkpoint cp (NULL: none) or refusal. */
static provline_keymaker_Msg *report_ack(const provline_keymaker_Msg *q,
                                         const provline_keymaker_AuditCheckpoint *cp, int refused)
{
    provline_keymaker_Msg *a = msg_new();
    a->which_body = PL_KM_REPORT_ACK;
    provline_keymaker_ReportAck *ra = &a->body.report_ack;
    ra->results_count = 1;
    cr_assert_eq(PL_KM_SET_BYTES(ra->results[0].package_id, q->body.report.entries[0].package_id.bytes, 16),
                 PL_OK);
    ra->results[0].accepted = true;
    ra->results[0].state = provline_keymaker_PackageState_PACKAGE_STATE_POSSIBLY_USED;
    if (cp) {
        ra->checkpoint = *cp;
        ra->has_checkpoint = true;
    }
    ra->checkpoint_refused = (provline_keymaker_ErrorCode)refused;
    return a;
}

/* Submits a report (audit may be NULL), lets the fake answer it with cp / refused, returns
 * the completion. */
static void report_round(struct fake *f, struct pl_kmclient *c, const struct pl_km_audit_head *audit,
                         const provline_keymaker_AuditCheckpoint *cp, int refused, uint64_t seq,
                         struct pl_kmclient_done *d)
{
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 9};
    provline_keymaker_ReportEntry e;
    uint64_t id = 0;
    memset(&e, 0, sizeof(e));
    e.package_id.size = 16;
    memset(e.package_id.bytes, 0x31, 16);
    e.transaction_id.size = 16;
    cr_assert_eq(PL_KM_SET_BYTES(e.eid, eid, 16), PL_OK);
    e.which_outcome = provline_keymaker_ReportEntry_released_tag;
    e.outcome.released = true;
    cr_assert_eq(pl_kmclient_send_report(c, &e, 1, audit, 0, &id), PL_OK);
    provline_keymaker_Msg *q = msg_new();
    fake_recv(f, c, q, NULL);
    cr_assert_eq(q->version, PL_KM_VERSION);
    if (audit) {
        cr_assert_eq(q->body.report.audit_seq, audit->seq);
        cr_assert_eq(memcmp(q->body.report.audit_chain_id.bytes, audit->chain_id, 16), 0);
        cr_assert_eq(memcmp(q->body.report.audit_head.bytes, audit->h, 32), 0);
    }
    provline_keymaker_Msg *a = report_ack(q, cp, refused);
    fake_reply(f, q, a, seq, NULL);
    wait_done(c, id, d);
    msg_free(q);
    msg_free(a);
}

Test(kmclient, report_checkpoints_checked)
{
    struct fake f;
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    struct pl_kmclient_stats s;
    struct pl_rng rng = PL_RNG_SYSTEM;
    char pki[600], dpf_der[700];
    struct pl_pki *p = NULL;

    snprintf(pki, sizeof(pki), "%s/pki", g_dir);
    cr_assert_eq(pl_pki_init(pki, PL_CURVE_P256, &rng, time(NULL)), PL_OK);
    cr_assert_eq(pl_pki_load(pki, &p), PL_OK);
    snprintf(dpf_der, sizeof(dpf_der), "%s/dpf.der", pki);
    const struct pl_eckey *dpf = pl_pki_key(p, PL_PKI_DPF), *ci = pl_pki_key(p, PL_PKI_CI);

    fake_open(&f);
    base(&cfg);
    cfg.endpoint = f.endpoint;
    cfg.attempt_ms = 300;
    cfg.backoff_max_ms = 300;
    cfg.deadline_ms = 60000;
    cfg.jitter_pct = 0;
    cfg.checkpoint_cert_file = dpf_der;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    cr_assert_not_null(pl_kmclient_checkpoint_key(c));
    uint8_t me[32], want[32];
    pl_kmclient_station_key(c, me);
    char pub[41];
    FILE *fp = fopen(g_pub, "r");
    cr_assert_not_null(fp);
    cr_assert_eq(fscanf(fp, " %40s", pub), 1);
    fclose(fp);
    cr_assert_not_null(zmq_z85_decode(want, pub));
    cr_assert_eq(memcmp(me, want, 32), 0, "the station key is not the public key");
    cr_assert_eq(pl_kmclient_send_hello(c, 0, NULL), PL_OK);
    fake_session(&f, c);

    struct pl_km_audit_head h;
    memset(h.chain_id, 0xc3, sizeof(h.chain_id));
    memset(h.h, 0x0d, sizeof(h.h));
    h.seq = 12;
    provline_keymaker_AuditCheckpoint cp;
    memset(&cp, 0, sizeof(cp));

    /* Signed by the Key Maker's key for this station and this head: kept. */
    cr_assert_eq(pl_km_checkpoint_sign(dpf, &rng, me, &h, &cp), PL_OK);
    report_round(&f, c, &h, &cp, 0, 2, &d);
    cr_assert_eq(d.status, PL_OK);
    cr_assert(d.reply->body.report_ack.has_checkpoint);
    cr_assert_eq(pl_km_checkpoint_verify(dpf, &d.reply->body.report_ack.checkpoint), PL_OK);
    pl_kmclient_done_free(&d);

    /* Signed by another key: the entry results stand, the checkpoint is removed. */
    cr_assert_eq(pl_km_checkpoint_sign(ci, &rng, me, &h, &cp), PL_OK);
    report_round(&f, c, &h, &cp, 0, 3, &d);
    cr_assert_eq(d.status, PL_OK);
    cr_assert(d.reply->body.report_ack.results[0].accepted);
    cr_assert_not(d.reply->body.report_ack.has_checkpoint);
    pl_kmclient_done_free(&d);

    /* A checkpoint for another point, another station, or one nobody asked for: the reply
     * contradicts the request. */
    struct pl_km_audit_head other = h;
    other.seq = 13;
    cr_assert_eq(pl_km_checkpoint_sign(dpf, &rng, me, &other, &cp), PL_OK);
    report_round(&f, c, &h, &cp, 0, 4, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);
    uint8_t stranger[32];
    memset(stranger, 0x99, sizeof(stranger));
    cr_assert_eq(pl_km_checkpoint_sign(dpf, &rng, stranger, &h, &cp), PL_OK);
    report_round(&f, c, &h, &cp, 0, 5, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);
    cr_assert_eq(pl_km_checkpoint_sign(dpf, &rng, me, &h, &cp), PL_OK);
    report_round(&f, c, NULL, &cp, 0, 6, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);
    report_round(&f, c, NULL, NULL, provline_keymaker_ErrorCode_ERROR_AUDIT_FORK, 7, &d);
    cr_assert_eq(d.status, PL_ERR_MALFORMED);
    pl_kmclient_done_free(&d);

    /* Refused (a fork of this trail): the report is still answered. */
    report_round(&f, c, &h, NULL, provline_keymaker_ErrorCode_ERROR_AUDIT_FORK, 8, &d);
    cr_assert_eq(d.status, PL_OK);
    cr_assert_eq(d.reply->body.report_ack.checkpoint_refused,
                 provline_keymaker_ErrorCode_ERROR_AUDIT_FORK);
    pl_kmclient_done_free(&d);

    pl_kmclient_stats(c, &s);
    cr_assert_eq(s.checkpoints_verified, 1);
    cr_assert_eq(s.checkpoints_rejected, 1);
    cr_assert_eq(s.checkpoints_unchecked, 0);
    pl_kmclient_free(c);
    fake_close(&f);
    pl_pki_free(p);
}
