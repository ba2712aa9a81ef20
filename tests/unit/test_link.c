/* Unit tests: reliable link (protocol/src/link.c, docs/serial-framing.md §3) between two
 * endpoints joined by deterministic in-memory wires (tests/support/pl_wire.c) that drop,
 * corrupt, duplicate, delay, split and add noise, on a simulated millisecond clock.
 *
 * "5% byte corruption" is applied per write (one write = one encoded frame): 5% of the frames
 * get 1..3 bytes overwritten with random values, and a further 5% are lost whole. A literal 5%
 * per-byte error rate would leave essentially no 4 KiB frame intact (0.95^4000) and no framing
 * could get through it. */
#include "pl_wire.h"
#include "provline/protocol/frame.h"
#include "provline/protocol/link.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* ---- endpoints, messages, simulated time ---- */

#define MAX_MSGS 512

struct rxlog {
    uint8_t *data[MAX_MSGS];
    size_t len[MAX_MSGS];
    size_t n;
};

struct end {
    struct pl_link *link;
    struct pl_wire *out; /* the wire this end writes to */
    struct rxlog rx;
    unsigned events[8];
    unsigned timeouts_rc; /* calls that returned PL_ERR_TIMEOUT */
    int echo;             /* deliver sends the message back */
};

static uint64_t now_ms = 1000;

static void rxlog_clear(struct rxlog *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i]);
    r->n = 0;
}

static int end_write(void *user, const uint8_t *buf, size_t len)
{
    struct end *e = user;
    return pl_wire_write(e->out, buf, len);
}

static void end_deliver(void *user, const uint8_t *msg, size_t len)
{
    struct end *e = user;
    cr_assert_not_null(msg);
    cr_assert_lt(e->rx.n, MAX_MSGS, "too many messages delivered");
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, msg, len);
    e->rx.data[e->rx.n] = copy;
    e->rx.len[e->rx.n] = len;
    e->rx.n++;
    if (e->echo) {
        cr_assert_eq(pl_link_input(e->link, msg, len, now_ms), PL_ERR_STATE,
                     "input is refused from inside a callback");
        cr_assert_eq(pl_link_send(e->link, msg, len, now_ms), PL_OK);
    }
}

static void end_event(void *user, enum pl_link_event ev)
{
    struct end *e = user;
    cr_assert((unsigned)ev < 8);
    e->events[ev]++;
}

static void end_open(struct end *e, uint32_t session, size_t mtu, uint32_t rto, size_t max_msg)
{
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cfg.session = session;
    cfg.mtu = mtu;
    cfg.rto_ms = rto;
    cfg.reset_ms = rto;
    cfg.max_retries = 15;
    cfg.max_msg = max_msg;
    cfg.max_queue = 4 * max_msg;
    struct pl_link_ops ops = {
        .write = end_write, .deliver = end_deliver, .event = end_event, .user = e};
    memset(e->events, 0, sizeof(e->events));
    e->timeouts_rc = 0;
    cr_assert_eq(pl_link_new(&cfg, &ops, now_ms, &e->link), PL_OK);
}

static void end_close(struct end *e)
{
    pl_link_free(e->link);
    e->link = NULL;
    rxlog_clear(&e->rx);
}

static void check_rc(struct end *e, int rc)
{
    if (rc == PL_ERR_TIMEOUT) {
        e->timeouts_rc++;
        return;
    }
    cr_assert_eq(rc, PL_OK, "link call failed: %s", pl_strerror(rc));
}

static int sink_input(void *user, const uint8_t *buf, size_t len)
{
    struct end *e = user;
    check_rc(e, pl_link_input(e->link, buf, len, now_ms));
    return 0;
}

/* One simulated millisecond: deliver what is due both ways, run both timers. */
static void step(struct end *a, struct end *b)
{
    now_ms++;
    pl_wire_set_now(a->out, now_ms);
    pl_wire_set_now(b->out, now_ms);
    cr_assert_eq(pl_wire_pump(a->out, now_ms, sink_input, b), 0);
    cr_assert_eq(pl_wire_pump(b->out, now_ms, sink_input, a), 0);
    check_rc(a, pl_link_tick(a->link, now_ms));
    check_rc(b, pl_link_tick(b->link, now_ms));
}

/* Deterministic message i of stream `stream`: size up to max_len, content from a PRNG. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static size_t msg_make(uint64_t stream, size_t i, size_t max_len, uint8_t *out)
{
    uint64_t s = mix(stream * 1000003u + i);
    size_t len = (size_t)(s % (max_len + 1));
    if (i % 17 == 3)
        len = 0; /* empty messages are messages too */
    if (i % 13 == 5)
        len = max_len;
    for (size_t k = 0; k < len; k++) {
        if (k % 8 == 0)
            s = mix(s + k);
        out[k] = (uint8_t)(s >> (8 * (k % 8)));
    }
    return len;
}

static void check_msg(const struct rxlog *r, size_t at, uint64_t stream, size_t i, size_t max_len)
{
    static uint8_t want[64 * 1024];
    size_t n = msg_make(stream, i, max_len, want);
    cr_assert_eq(r->len[at], n, "message %zu (index %zu): length %zu, want %zu", at, i, r->len[at],
                 n);
    cr_assert_eq(memcmp(r->data[at], want, n), 0, "message %zu (index %zu) differs", at, i);
}

struct feeder {
    uint64_t stream;
    size_t next, total, max_len;
};

/* Keeps up to three messages queued. */
static void feed(struct end *e, struct feeder *f)
{
    static uint8_t buf[64 * 1024];
    while (f->next < f->total && pl_link_pending(e->link) < 3) {
        size_t n = msg_make(f->stream, f->next, f->max_len, buf);
        cr_assert_eq(pl_link_send(e->link, buf, n, now_ms), PL_OK);
        f->next++;
    }
}

static struct pl_wire *wire(uint64_t seed, unsigned drop, unsigned corrupt, unsigned dup,
                            unsigned noise, unsigned delay, unsigned chunk)
{
    struct pl_wire_cfg c = {.seed = seed,
                            .drop_permille = drop,
                            .corrupt_permille = corrupt,
                            .dup_permille = dup,
                            .noise_permille = noise,
                            .max_delay_ms = delay,
                            .max_chunk = chunk};
    struct pl_wire *w = pl_wire_new(&c);
    cr_assert_not_null(w);
    return w;
}

/* ---- the lossy-wire scenario ---- */

static void lossy_run(uint64_t seed, size_t mtu)
{
    enum { N = 200, MAXLEN = 16 * 1024 };
    struct end a = {0}, b = {0};
    a.out = wire(seed * 2 + 1, 50, 50, 20, 10, 5, 300);
    b.out = wire(seed * 2 + 2, 50, 50, 20, 10, 5, 300);
    end_open(&a, (uint32_t)(0xA0000000u + seed), mtu, 40, 64 * 1024);
    end_open(&b, (uint32_t)(0xB0000000u + seed), mtu, 40, 64 * 1024);
    struct feeder fa = {.stream = seed * 10 + 1, .total = N, .max_len = MAXLEN};
    struct feeder fb = {.stream = seed * 10 + 2, .total = N, .max_len = MAXLEN};

    size_t steps = 0;
    while (a.rx.n < N || b.rx.n < N) {
        feed(&a, &fa);
        feed(&b, &fb);
        step(&a, &b);
        cr_assert_lt(++steps, 5000000u, "no progress: A got %zu, B got %zu", a.rx.n, b.rx.n);
    }
    /* Run on a while: nothing more may arrive (exactly once). */
    for (int i = 0; i < 3000; i++)
        step(&a, &b);
    cr_assert_eq(b.rx.n, N);
    cr_assert_eq(a.rx.n, N);
    for (size_t i = 0; i < N; i++) {
        check_msg(&b.rx, i, fa.stream, i, MAXLEN);
        check_msg(&a.rx, i, fb.stream, i, MAXLEN);
    }
    cr_assert_eq(pl_link_pending(a.link), 0);
    cr_assert_eq(pl_link_pending(b.link), 0);

    /* The wire really was hostile, and the link really worked for it. */
    struct pl_wire_stats wa, wb;
    pl_wire_get_stats(a.out, &wa);
    pl_wire_get_stats(b.out, &wb);
    cr_assert_gt(wa.dropped + wb.dropped, 50);
    cr_assert_gt(wa.corrupted + wb.corrupted, 50);
    cr_assert_gt(wa.duplicated + wb.duplicated, 10);
    struct pl_link_stats sa, sb;
    pl_link_get_stats(a.link, &sa);
    pl_link_get_stats(b.link, &sb);
    cr_assert_eq(sa.msgs_tx, N);
    cr_assert_eq(sb.msgs_rx, N);
    cr_assert_gt(sa.retransmits + sb.retransmits, 0);
    cr_assert_gt(sa.dup_rx + sb.dup_rx, 0);
    cr_assert_gt(sa.line.bad_crc + sb.line.bad_crc + sa.line.truncated + sb.line.truncated, 0);
    cr_assert_eq(sa.timeouts + sb.timeouts, 0, "retries never ran out");
    cr_assert_eq(a.events[PL_LINK_EV_PEER_RESET] + b.events[PL_LINK_EV_PEER_RESET], 0);
    cr_assert_eq(a.events[PL_LINK_EV_UP], 1);
    cr_assert_eq(b.events[PL_LINK_EV_UP], 1);

    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

Test(link, lossy_wire_200_messages_both_ways_mtu_1024)
{
    lossy_run(1, 1024);
}

Test(link, lossy_wire_200_messages_both_ways_mtu_4096)
{
    lossy_run(2, PL_FRAME_MAX_PAYLOAD);
}

Test(link, lossy_wire_200_messages_both_ways_mtu_100)
{
    lossy_run(3, 100);
}

/* ---- restarts ---- */

/* Finds where the messages of `stream` received in r start: r must be the run
 * first, first+1, ... of complete messages. */
static size_t check_contiguous(const struct rxlog *r, uint64_t stream, size_t lo, size_t hi,
                               size_t total, size_t max_len)
{
    cr_assert_gt(r->n, 0);
    static uint8_t want[64 * 1024];
    size_t first = SIZE_MAX;
    for (size_t k = lo; k <= hi && first == SIZE_MAX; k++) {
        size_t n = msg_make(stream, k, max_len, want);
        if (r->len[0] == n && memcmp(r->data[0], want, n) == 0)
            first = k;
    }
    cr_assert_neq(first, SIZE_MAX, "first message after the restart is not index %zu..%zu", lo, hi);
    cr_assert_eq(r->n, total - first, "messages %zu..%zu expected, got %zu", first, total - 1,
                 r->n);
    for (size_t i = 0; i < r->n; i++)
        check_msg(r, i, stream, first + i, max_len);
    return first;
}

Test(link, receiver_restart_resyncs_and_resumes)
{
    enum { N = 60, MAXLEN = 6000 };
    struct end a = {0}, b = {0};
    a.out = wire(11, 20, 20, 10, 5, 3, 200);
    b.out = wire(12, 20, 20, 10, 5, 3, 200);
    end_open(&a, 0x1111, 512, 30, 16 * 1024);
    end_open(&b, 0x2222, 512, 30, 16 * 1024);
    struct feeder fa = {.stream = 77, .total = N, .max_len = MAXLEN};

    size_t steps = 0;
    while (b.rx.n < 20) {
        feed(&a, &fa);
        step(&a, &b);
        cr_assert_lt(++steps, 1000000u);
    }
    for (size_t i = 0; i < 20; i++)
        check_msg(&b.rx, i, fa.stream, i, MAXLEN);

    /* The fixture reboots: a new incarnation with a new session, nothing remembered. The bytes
     * already on the wire towards it now belong to a dead session. */
    end_close(&b);
    end_open(&b, 0x3333, 512, 30, 16 * 1024);
    struct feeder fb = {.stream = 78, .total = 10, .max_len = MAXLEN};
    while (fa.next < N || pl_link_pending(a.link) > 0 || a.rx.n < fb.total) {
        feed(&a, &fa);
        feed(&b, &fb);
        step(&a, &b);
        cr_assert_lt(++steps, 2000000u);
    }
    for (int i = 0; i < 2000; i++)
        step(&a, &b);

    /* The message in flight at the reboot (19 if its last ACK was lost, else 20) is sent again
     * from its first fragment; everything after it arrives in order, once, complete. */
    check_contiguous(&b.rx, fa.stream, 19, 20, N, MAXLEN);
    cr_assert_eq(a.rx.n, fb.total);
    for (size_t i = 0; i < fb.total; i++)
        check_msg(&a.rx, i, fb.stream, i, MAXLEN);
    cr_assert_eq(a.events[PL_LINK_EV_PEER_RESET], 1, "the station noticed the reboot once");
    cr_assert_eq(a.events[PL_LINK_EV_UP], 2);
    cr_assert_eq(b.events[PL_LINK_EV_PEER_RESET], 0, "a fresh incarnation has no old peer");
    cr_assert_eq(a.timeouts_rc + b.timeouts_rc, 0);

    /* Now the sender restarts; the receiver sees a peer reset and takes the new stream. */
    end_close(&a);
    end_open(&a, 0x4444, 512, 30, 16 * 1024);
    rxlog_clear(&b.rx);
    struct feeder fa2 = {.stream = 79, .total = 15, .max_len = MAXLEN};
    while (b.rx.n < fa2.total) {
        feed(&a, &fa2);
        step(&a, &b);
        cr_assert_lt(++steps, 3000000u);
    }
    for (int i = 0; i < 2000; i++)
        step(&a, &b);
    cr_assert_eq(b.rx.n, fa2.total);
    for (size_t i = 0; i < fa2.total; i++)
        check_msg(&b.rx, i, fa2.stream, i, MAXLEN);
    cr_assert_eq(b.events[PL_LINK_EV_PEER_RESET], 1);
    struct pl_link_stats sb;
    pl_link_get_stats(b.link, &sb);
    cr_assert_eq(sb.peer_resets, 1);

    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

Test(link, retries_run_out_then_link_recovers_with_new_session)
{
    struct end a = {0}, b = {0};
    a.out = wire(21, 0, 0, 0, 0, 2, 0);
    b.out = wire(22, 0, 0, 0, 0, 2, 0);
    end_open(&a, 0x5000, 256, 20, 4096);
    end_open(&b, 0x6000, 256, 20, 4096);
    for (int i = 0; i < 200; i++)
        step(&a, &b);
    cr_assert(pl_link_is_up(a.link));
    cr_assert(pl_link_is_up(b.link));

    pl_wire_cut(a.out, 1); /* cable pulled on A's transmit side */
    const uint8_t msg[600] = {1, 2, 3};
    cr_assert_eq(pl_link_send(a.link, msg, sizeof(msg), now_ms), PL_OK);
    int guard = 0;
    while (a.timeouts_rc == 0) {
        step(&a, &b);
        cr_assert_lt(++guard, 100000);
    }
    struct pl_link_stats sa;
    pl_link_get_stats(a.link, &sa);
    cr_assert_eq(sa.retransmits, 15, "exactly max_retries retransmissions");
    cr_assert_eq(sa.timeouts, 1);
    cr_assert_eq(a.events[PL_LINK_EV_TIMEOUT], 1);
    cr_assert_not(pl_link_is_up(a.link));
    cr_assert_eq(pl_link_session(a.link), 0x5001, "follow-on session");
    cr_assert_eq(pl_link_pending(a.link), 1, "the message stays queued");

    /* While cut, A keeps knocking with RESETs and nothing else happens. */
    uint64_t resets = sa.resets_tx;
    for (int i = 0; i < 500; i++)
        step(&a, &b);
    pl_link_get_stats(a.link, &sa);
    cr_assert_gt(sa.resets_tx, resets + 10);
    cr_assert_not(pl_link_is_up(a.link));
    cr_assert_eq(b.rx.n, 0);

    pl_wire_cut(a.out, 0);
    guard = 0;
    while (b.rx.n == 0) {
        step(&a, &b);
        cr_assert_lt(++guard, 100000);
    }
    for (int i = 0; i < 500; i++)
        step(&a, &b);
    cr_assert_eq(b.rx.n, 1);
    cr_assert_eq(b.rx.len[0], sizeof(msg));
    cr_assert_eq(memcmp(b.rx.data[0], msg, sizeof(msg)), 0);
    cr_assert(pl_link_is_up(a.link));
    cr_assert_eq(b.events[PL_LINK_EV_PEER_RESET], 1, "B saw A's new session");
    cr_assert_eq(a.timeouts_rc, 1);

    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

Test(link, explicit_restart_keeps_queue)
{
    struct end a = {0}, b = {0};
    a.out = wire(31, 0, 0, 0, 0, 1, 0);
    b.out = wire(32, 0, 0, 0, 0, 1, 0);
    end_open(&a, 0x70, 64, 20, 4096);
    end_open(&b, 0x80, 64, 20, 4096);
    uint8_t m[300];
    memset(m, 0xAB, sizeof(m));
    cr_assert_eq(pl_link_send(a.link, m, sizeof(m), now_ms), PL_OK);
    cr_assert_eq(pl_link_restart(a.link, 0x70, now_ms), PL_ERR_INVAL, "same session");
    cr_assert_eq(pl_link_restart(a.link, 0, now_ms), PL_ERR_INVAL);
    cr_assert_eq(pl_link_restart(a.link, 0x71, now_ms), PL_OK);
    for (int i = 0; i < 300; i++)
        step(&a, &b);
    cr_assert_eq(b.rx.n, 1);
    cr_assert_eq(b.rx.len[0], sizeof(m));
    cr_assert_eq(pl_link_session(a.link), 0x71);
    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

/* ---- limits and callbacks ---- */

Test(link, oversize_incoming_message_is_dropped_and_next_one_delivered)
{
    struct end a = {0}, b = {0};
    a.out = wire(41, 0, 0, 0, 0, 1, 0);
    b.out = wire(42, 0, 0, 0, 0, 1, 0);
    end_open(&a, 0x10, 256, 20, 8000);
    end_open(&b, 0x20, 256, 20, 1000); /* B accepts at most 1000 bytes */
    static uint8_t big[5000];
    memset(big, 7, sizeof(big));
    cr_assert_eq(pl_link_send(a.link, big, sizeof(big), now_ms), PL_OK);
    cr_assert_eq(pl_link_send(a.link, (const uint8_t *)"tail", 4, now_ms), PL_OK);
    for (int i = 0; i < 500; i++)
        step(&a, &b);
    cr_assert_eq(b.rx.n, 1);
    cr_assert_eq(b.rx.len[0], 4);
    cr_assert_eq(memcmp(b.rx.data[0], "tail", 4), 0);
    cr_assert_eq(b.events[PL_LINK_EV_RX_DROPPED], 1);
    struct pl_link_stats sa, sb;
    pl_link_get_stats(a.link, &sa);
    pl_link_get_stats(b.link, &sb);
    cr_assert_eq(sb.rx_dropped, 1);
    cr_assert_eq(sa.msgs_tx, 2, "the link stays in step: both messages were acknowledged");
    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

Test(link, send_limits)
{
    struct end a = {0};
    a.out = wire(51, 0, 0, 0, 0, 0, 0);
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cfg.session = 1;
    cfg.max_msg = 1000;
    cfg.max_queue = 1000;
    struct pl_link_ops ops = {.write = end_write, .deliver = end_deliver, .user = &a};
    cr_assert_eq(pl_link_new(&cfg, &ops, now_ms, &a.link), PL_OK);
    uint8_t m[1001] = {0};
    cr_assert_eq(pl_link_send(a.link, m, 1001, now_ms), PL_ERR_INVAL, "over max_msg");
    cr_assert_eq(pl_link_send(a.link, NULL, 5, now_ms), PL_ERR_INVAL);
    cr_assert_eq(pl_link_send(a.link, m, 600, now_ms), PL_OK);
    cr_assert_eq(pl_link_send(a.link, m, 600, now_ms), PL_ERR_OVERFLOW, "queue full");
    cr_assert_eq(pl_link_send(a.link, m, 400, now_ms), PL_OK);
    cr_assert_eq(pl_link_send(a.link, NULL, 0, now_ms), PL_OK, "empty message fits");
    cr_assert_eq(pl_link_pending(a.link), 3);
    cr_assert_not(pl_link_is_up(a.link));
    end_close(&a);
    pl_wire_free(a.out);
}

Test(link, config_validation)
{
    struct end a = {0};
    struct pl_link *l = NULL;
    struct pl_link_ops ops = {.write = end_write, .deliver = end_deliver, .user = &a};
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "session 0");
    cfg.session = 9;
    cfg.mtu = 0;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "mtu 0");
    cfg.mtu = PL_FRAME_MAX_PAYLOAD + 1;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "mtu over the frame limit");
    cfg.mtu = PL_FRAME_MAX_PAYLOAD;
    cfg.max_msg = PL_LINK_MAX_MSG_CAP + 1;
    cfg.max_queue = 2 * cfg.max_msg;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "max_msg over the cap");
    cfg.max_msg = 1000;
    cfg.max_queue = 999;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "queue smaller than a message");
    cfg.max_queue = 1000;
    cfg.rto_ms = 0;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "rto 0");
    cfg.rto_ms = 10;
    ops.deliver = NULL;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_ERR_INVAL, "no deliver callback");
    ops.deliver = end_deliver;
    cr_assert_eq(pl_link_new(&cfg, &ops, 0, &l), PL_OK);
    cr_assert_eq(pl_link_deadline(NULL), PL_LINK_NO_DEADLINE);
    cr_assert_eq(pl_link_deadline(l), 0, "the first RESET is due at once");
    pl_link_free(l);
    pl_link_free(NULL);
}

Test(link, callbacks_may_send_but_not_input)
{
    struct end a = {0}, b = {0};
    a.out = wire(61, 30, 30, 10, 0, 2, 50);
    b.out = wire(62, 30, 30, 10, 0, 2, 50);
    end_open(&a, 0xAA, 128, 20, 4096);
    end_open(&b, 0xBB, 128, 20, 4096);
    b.echo = 1;
    struct feeder fa = {.stream = 5, .total = 30, .max_len = 1000};
    size_t steps = 0;
    while (a.rx.n < fa.total) {
        feed(&a, &fa);
        step(&a, &b);
        cr_assert_lt(++steps, 1000000u);
    }
    for (size_t i = 0; i < fa.total; i++)
        check_msg(&a.rx, i, fa.stream, i, 1000);
    end_close(&a);
    end_close(&b);
    pl_wire_free(a.out);
    pl_wire_free(b.out);
}

/* ---- the protocol bytes, frame by frame ---- */

struct capture {
    struct pl_frame_rx rx;
    struct pl_frame_hdr h[64];
    uint8_t payload[64][64];
    size_t n;
    int fail_writes;
};

static void cap_frame(void *user, const struct pl_frame_hdr *h, const uint8_t *p)
{
    struct capture *c = user;
    cr_assert_lt(c->n, 64);
    c->h[c->n] = *h;
    if (h->len)
        memcpy(c->payload[c->n], p, h->len < 64 ? h->len : 64);
    c->n++;
}

static int cap_write(void *user, const uint8_t *buf, size_t len)
{
    struct capture *c = user;
    if (c->fail_writes)
        return PL_ERR_IO;
    (void)pl_frame_rx_feed(&c->rx, buf, len, cap_frame, c);
    return 0;
}

static struct rxlog cap_log;
static void cap_deliver(void *user, const uint8_t *msg, size_t len)
{
    (void)user;
    cr_assert_lt(cap_log.n, MAX_MSGS);
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, msg, len);
    cap_log.data[cap_log.n] = copy;
    cap_log.len[cap_log.n++] = len;
}

static void feed_frame(struct pl_link *l, uint8_t type, uint8_t flags, uint8_t seq, uint32_t src,
                       uint32_t dst, const char *payload, int expect_rc)
{
    uint8_t buf[PL_FRAME_ENC_MAX];
    size_t n = 0;
    size_t plen = payload ? strlen(payload) : 0;
    struct pl_frame_hdr h = {
        .type = type, .flags = flags, .seq = seq, .src = src, .dst = dst, .len = (uint16_t)plen};
    cr_assert_eq(pl_frame_encode(&h, (const uint8_t *)payload, buf, sizeof(buf), &n), PL_OK);
    cr_assert_eq(pl_link_input(l, buf, n, now_ms), expect_rc);
}

Test(link, wire_protocol_handshake_ack_dup_stale_nak)
{
    static struct capture c;
    memset(&c, 0, sizeof(c));
    now_ms = 100;
    pl_frame_rx_init(&c.rx);
    rxlog_clear(&cap_log);
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cfg.session = 0xA;
    struct pl_link_ops ops = {.write = cap_write, .deliver = cap_deliver, .user = &c};
    struct pl_link *l = NULL;
    cr_assert_eq(pl_link_new(&cfg, &ops, 100, &l), PL_OK);
    cr_assert_eq(c.n, 0, "pl_link_new writes nothing");

    /* first tick: RESET(src A, dst unknown) */
    cr_assert_eq(pl_link_tick(l, 100), PL_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.h[0].type, PL_FRAME_RESET);
    cr_assert_eq(c.h[0].src, 0xA);
    cr_assert_eq(c.h[0].dst, 0);
    cr_assert_eq(pl_link_deadline(l), 100 + cfg.reset_ms);

    /* DATA before any handshake: stale */
    feed_frame(l, PL_FRAME_DATA, 0, 0, 0xB, 0xA, "early", PL_OK);
    cr_assert_eq(cap_log.n, 0);

    /* the peer answers: RESET_ACK(src B, dst A) -> up */
    feed_frame(l, PL_FRAME_RESET_ACK, 0, 0, 0xB, 0xA, NULL, PL_OK);
    cr_assert(pl_link_is_up(l));
    cr_assert_eq(pl_link_deadline(l), PL_LINK_NO_DEADLINE, "idle: no timer");

    /* DATA seq 0 in two fragments */
    size_t before = c.n;
    feed_frame(l, PL_FRAME_DATA, PL_FRAME_F_MORE, 0, 0xB, 0xA, "hel", PL_OK);
    feed_frame(l, PL_FRAME_DATA, 0, 1, 0xB, 0xA, "lo", PL_OK);
    cr_assert_eq(cap_log.n, 1);
    cr_assert_eq(cap_log.len[0], 5);
    cr_assert_eq(memcmp(cap_log.data[0], "hello", 5), 0);
    cr_assert_eq(c.n, before + 2);
    cr_assert_eq(c.h[before].type, PL_FRAME_ACK);
    cr_assert_eq(c.h[before].seq, 0);
    cr_assert_eq(c.h[before].dst, 0xB);
    cr_assert_eq(c.h[before + 1].type, PL_FRAME_ACK);
    cr_assert_eq(c.h[before + 1].seq, 1);

    /* a duplicate of seq 1: acknowledged again, not delivered */
    feed_frame(l, PL_FRAME_DATA, 0, 1, 0xB, 0xA, "lo", PL_OK);
    cr_assert_eq(cap_log.n, 1);
    cr_assert_eq(c.h[c.n - 1].type, PL_FRAME_ACK);
    cr_assert_eq(c.h[c.n - 1].seq, 1);

    /* frames of other sessions are dropped silently */
    before = c.n;
    feed_frame(l, PL_FRAME_DATA, 0, 2, 0xC, 0xA, "x", PL_OK);
    feed_frame(l, PL_FRAME_DATA, 0, 2, 0xB, 0x99, "x", PL_OK);
    feed_frame(l, PL_FRAME_RESET_ACK, 0, 0, 0xB, 0x99, NULL, PL_OK);
    cr_assert_eq(c.n, before);
    cr_assert_eq(cap_log.n, 1);

    /* a sequence gap: NAK(expected = 2) */
    feed_frame(l, PL_FRAME_DATA, 0, 7, 0xB, 0xA, "x", PL_OK);
    cr_assert_eq(c.n, before + 1);
    cr_assert_eq(c.h[before].type, PL_FRAME_NAK);
    cr_assert_eq(c.h[before].seq, 2);

    /* our own DATA, its timer, its ACK */
    now_ms = 200;
    cr_assert_eq(pl_link_send(l, (const uint8_t *)"ping", 4, 200), PL_OK);
    cr_assert_eq(c.h[c.n - 1].type, PL_FRAME_DATA);
    cr_assert_eq(c.h[c.n - 1].seq, 0);
    cr_assert_eq(c.h[c.n - 1].src, 0xA);
    cr_assert_eq(c.h[c.n - 1].dst, 0xB);
    cr_assert_eq(memcmp(c.payload[c.n - 1], "ping", 4), 0);
    cr_assert_eq(pl_link_deadline(l), 200 + cfg.rto_ms);
    before = c.n;
    cr_assert_eq(pl_link_tick(l, 200 + cfg.rto_ms - 1), PL_OK);
    cr_assert_eq(c.n, before, "not yet due");
    cr_assert_eq(pl_link_tick(l, 200 + cfg.rto_ms), PL_OK);
    cr_assert_eq(c.n, before + 1, "retransmitted");
    cr_assert_eq(c.h[before].type, PL_FRAME_DATA);
    /* NAK(0) asks for it at once */
    feed_frame(l, PL_FRAME_NAK, 0, 0, 0xB, 0xA, NULL, PL_OK);
    cr_assert_eq(c.n, before + 2);
    /* NAK(1) means seq 0 arrived */
    feed_frame(l, PL_FRAME_NAK, 0, 1, 0xB, 0xA, NULL, PL_OK);
    cr_assert_eq(pl_link_pending(l), 0);
    struct pl_link_stats st;
    pl_link_get_stats(l, &st);
    cr_assert_eq(st.msgs_tx, 1);
    cr_assert_eq(st.retransmits, 2);
    cr_assert_eq(st.dup_rx, 1);
    cr_assert_eq(st.stale_rx, 4);
    cr_assert_eq(st.out_of_order, 1);

    /* a repeated RESET of the same peer session does not reset anything */
    feed_frame(l, PL_FRAME_RESET, 0, 0, 0xB, 0xA, NULL, PL_OK);
    cr_assert_eq(c.h[c.n - 1].type, PL_FRAME_RESET_ACK);
    feed_frame(l, PL_FRAME_DATA, 0, 2, 0xB, 0xA, "go", PL_OK);
    cr_assert_eq(cap_log.n, 2, "seq 2 still expected");

    /* a RESET from a new peer session (peer reboot, it does not know us yet) */
    before = c.n;
    feed_frame(l, PL_FRAME_RESET, 0, 0, 0xD, 0, NULL, PL_OK);
    cr_assert_not(pl_link_is_up(l));
    cr_assert_eq(c.n, before + 2);
    cr_assert_eq(c.h[before].type, PL_FRAME_RESET_ACK);
    cr_assert_eq(c.h[before].dst, 0xD);
    cr_assert_eq(c.h[before + 1].type, PL_FRAME_RESET);
    cr_assert_eq(c.h[before + 1].dst, 0xD);
    feed_frame(l, PL_FRAME_RESET_ACK, 0, 0, 0xD, 0xA, NULL, PL_OK);
    cr_assert(pl_link_is_up(l));
    feed_frame(l, PL_FRAME_DATA, 0, 0, 0xD, 0xA, "new", PL_OK);
    cr_assert_eq(cap_log.n, 3, "sequence numbers restarted at 0");
    pl_link_get_stats(l, &st);
    cr_assert_eq(st.peer_resets, 1);

    /* write errors are reported by the call that wrote */
    c.fail_writes = 1;
    feed_frame(l, PL_FRAME_DATA, 0, 1, 0xD, 0xA, "y", PL_ERR_IO);
    cr_assert_eq(cap_log.n, 4, "delivered even though its ACK could not be written");
    c.fail_writes = 0;

    pl_link_free(l);
    rxlog_clear(&cap_log);
}
