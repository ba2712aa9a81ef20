/* Integration: the serial seam over a real pseudo-terminal pair (fixtures/), with the frame
 * codec and the reliable link on top (protocol/frame.c, link.c; docs/serial-framing.md).
 * The slave side is opened the way a station opens a port (pl_serial_open: libserialport
 * refuses a pty, the selector falls back to termios, DEPENDENCIES.md §7); the master side plays
 * the fixture. 64 KiB and more go both ways, once in a single-thread poll loop and once with
 * one thread per end using blocking reads. No assertion depends on timing; Criterion's
 * timeout only guards against a hang. */
#define _POSIX_C_SOURCE 200809L

#include "pl_test.h"
#include "provline/fixtures/pty.h"
#include "provline/fixtures/serial.h"
#include "provline/protocol/link.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- back-end selection and open errors ---- */

Test(serial_pty, libserialport_refuses_a_pty_and_auto_falls_back_to_termios)
{
    struct pl_pty pty;
    cr_assert_eq(pl_pty_open(&pty), PL_OK);
    cr_assert_eq(strncmp(pty.slave_path, "/dev/pts/", 9), 0, "slave %s", pty.slave_path);

    struct pl_serial_ops ops;
    memset(&ops, 0, sizeof(ops));
    struct pl_serial_info info;
    int rc = pl_serial_open_libserialport(pty.slave_path, 115200, &ops, &info);
    cr_assert_eq(rc, PL_ERR_UNSUPPORTED, "libserialport on a pty: %s", pl_strerror(rc));
    cr_assert_eq(info.backend, PL_SERIAL_LIBSERIALPORT);
    cr_assert_not_null(strstr(info.why, "pseudo-terminal"), "why: %s", info.why);
    cr_assert_not_null(strstr(info.why, "termios"), "why: %s", info.why);
    cr_assert_null(ops.read, "nothing opened");

    rc = pl_serial_open_ex(pty.slave_path, 921600, PL_SERIAL_AUTO, &ops, &info);
    cr_assert_eq(rc, PL_OK, "auto: %s (%s)", pl_strerror(rc), info.why);
    cr_assert_eq(info.backend, PL_SERIAL_TERMIOS);
    cr_assert_not_null(strstr(info.why, "termios fallback"), "why: %s", info.why);
    cr_assert_not_null(strstr(info.why, "pseudo-terminal"), "why: %s", info.why);
    cr_assert_geq(ops.fd(ops.user), 0);
    pl_serial_close(&ops);
    cr_assert_null(ops.user);

    /* the plain entry point takes the same path */
    cr_assert_eq(pl_serial_open(pty.slave_path, 115200, &ops), PL_OK);
    pl_serial_close(&ops);

    /* a socat-style link to the pty in a temporary directory */
    char dir[256], link_path[400];
    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(link_path, sizeof(link_path), "%s/ttyFIXTURE0", dir);
    cr_assert_eq(symlink(pty.slave_path, link_path), 0);
    cr_assert_eq(pl_serial_open_libserialport(link_path, 115200, &ops, &info), PL_ERR_UNSUPPORTED);
    cr_assert_eq(pl_serial_open_ex(link_path, 230400, PL_SERIAL_AUTO, &ops, &info), PL_OK);
    cr_assert_eq(info.backend, PL_SERIAL_TERMIOS);
    pl_serial_close(&ops);
    /* asking for termios directly gives no fallback note */
    cr_assert_eq(pl_serial_open_ex(link_path, 460800, PL_SERIAL_TERMIOS, &ops, &info), PL_OK);
    cr_assert_eq(info.backend, PL_SERIAL_TERMIOS);
    cr_assert_str_empty(info.why);
    pl_serial_close(&ops);
    pl_test_rmtree(dir);
    pl_pty_close(&pty);
    pl_pty_close(&pty); /* twice is fine */
}

Test(serial_pty, open_errors_are_specific)
{
    struct pl_serial_ops ops;
    memset(&ops, 0, sizeof(ops));
    struct pl_serial_info info;
    const enum pl_serial_backend all[] = {PL_SERIAL_AUTO, PL_SERIAL_TERMIOS,
                                          PL_SERIAL_LIBSERIALPORT};
    for (size_t i = 0; i < 3; i++) {
        int rc = pl_serial_open_ex("/dev/ttyNOSUCHPORT9", 115200, all[i], &ops, &info);
        cr_assert_eq(rc, PL_ERR_NOT_FOUND, "%s: %s (%s)", pl_serial_backend_name(all[i]),
                     pl_strerror(rc), info.why);
        cr_assert_neq(info.why[0], '\0');
        cr_assert_eq(pl_serial_open_ex("/dev/null", 9600, all[i], &ops, &info), PL_ERR_INVAL,
                     "9600 baud is outside 115200..921600");
        cr_assert_eq(pl_serial_open_ex(NULL, 115200, all[i], &ops, &info), PL_ERR_INVAL);
    }
    /* not a terminal at all */
    int rc = pl_serial_open_ex("/dev/null", 115200, PL_SERIAL_AUTO, &ops, &info);
    cr_assert_eq(rc, PL_ERR_UNSUPPORTED, "%s (%s)", pl_strerror(rc), info.why);
    cr_assert_not_null(strstr(info.why, "not a terminal"), "why: %s", info.why);
    cr_assert_eq(pl_serial_open_ex("/dev/null", 115200, (enum pl_serial_backend)7, &ops, &info),
                 PL_ERR_INVAL);
    cr_assert_null(ops.read);
    for (unsigned b = 0; b < 2000000; b += 1111)
        cr_assert_eq(pl_serial_baud_ok(b), b == 115200 || b == 230400 || b == 460800 || b == 500000
                                               || b == 576000 || b == 921600);
    cr_assert(pl_serial_baud_ok(921600));
    cr_assert_not(pl_serial_baud_ok(1000000));
}

/* ---- the read contract, raw mode, hangup ---- */

static void read_exact(struct pl_serial_ops *o, uint8_t *buf, size_t n)
{
    size_t have = 0;
    for (int tries = 0; have < n && tries < 100; tries++) {
        size_t got = 0;
        cr_assert_eq(o->read(o->user, buf + have, n - have, 1000, &got), PL_OK);
        have += got;
    }
    cr_assert_eq(have, n);
}

Test(serial_pty, read_contract_binary_clean_and_hangup, .timeout = 60)
{
    struct pl_pty pty;
    cr_assert_eq(pl_pty_open(&pty), PL_OK);
    struct pl_serial_ops st, fx;
    cr_assert_eq(pl_serial_open(pty.slave_path, 921600, &st), PL_OK);
    cr_assert_eq(pl_pty_master_ops(&pty, 921600, &fx), PL_OK);
    cr_assert_eq(fx.fd(fx.user), pty.master);

    uint8_t buf[512];
    size_t got = 99;
    cr_assert_eq(st.read(st.user, buf, sizeof(buf), 0, &got), PL_OK);
    cr_assert_eq(got, 0, "nothing there, no wait");
    cr_assert_eq(st.read(st.user, buf, sizeof(buf), -1, &got), PL_ERR_INVAL);

    /* every byte value, both ways: no echo, no CR/LF mapping, no XON/XOFF, no signals */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    cr_assert_eq(fx.write(fx.user, all, sizeof(all)), PL_OK);
    read_exact(&st, buf, 256);
    cr_assert_eq(memcmp(buf, all, 256), 0);
    cr_assert_eq(fx.read(fx.user, buf, sizeof(buf), 0, &got), PL_OK);
    cr_assert_eq(got, 0, "nothing was echoed back");
    cr_assert_eq(st.write(st.user, all, sizeof(all)), PL_OK);
    read_exact(&fx, buf, 256);
    cr_assert_eq(memcmp(buf, all, 256), 0);

    /* a partial read: 5 bytes there, 20 asked for, the timeout ends the wait */
    cr_assert_eq(fx.write(fx.user, (const uint8_t *)"hello", 5), PL_OK);
    size_t have = 0;
    for (int tries = 0; have < 5 && tries < 50; tries++) {
        cr_assert_eq(st.read(st.user, buf + have, 20 - have, 100, &got), PL_OK);
        have += got;
    }
    cr_assert_eq(have, 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);

    /* the far end goes away: the station's reads fail instead of waiting forever */
    pl_serial_close(&fx);
    pl_pty_close(&pty);
    int rc = st.read(st.user, buf, sizeof(buf), 200, &got);
    cr_assert_eq(rc, PL_ERR_IO, "read after hangup: %s", pl_strerror(rc));
    pl_serial_close(&st);
}

/* ---- framing + link over the pty ---- */

#define N_MSGS 17
#define BIG    (64 * 1024)

struct side {
    const char *name;
    struct pl_serial_ops io;
    struct pl_link *link;
    uint64_t stream;
    size_t sent;
    size_t got;
    size_t bytes_got;
    int bad;
};

static size_t msg_len(size_t i)
{
    return i == 0 ? BIG : (size_t)((i * 2654435761u) % 4097u); /* 64 KiB, then 0..4096 */
}

static void msg_fill(uint64_t stream, size_t i, uint8_t *out, size_t n)
{
    uint64_t x = stream * 0x9E3779B97F4A7C15ull + i + 1;
    for (size_t k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[k] = (uint8_t)x;
    }
}

static int side_write(void *user, const uint8_t *buf, size_t len)
{
    struct side *s = user;
    return s->io.write(s->io.user, buf, len);
}

static void side_deliver(void *user, const uint8_t *msg, size_t len)
{
    struct side *s = user;
    static _Thread_local uint8_t want[BIG];
    size_t i = s->got;
    /* the peer's stream is the other one */
    uint64_t peer_stream = s->stream ^ 3u;
    if (i >= N_MSGS || len != msg_len(i)) {
        s->bad++;
        return;
    }
    msg_fill(peer_stream, i, want, len);
    if (memcmp(msg, want, len) != 0)
        s->bad++;
    s->got++;
    s->bytes_got += len;
}

static void side_open(struct side *s, uint32_t session, uint64_t stream)
{
    struct pl_link_config cfg;
    pl_link_config_default(&cfg);
    cfg.session = session;
    cfg.mtu = PL_FRAME_MAX_PAYLOAD;
    cfg.rto_ms = 300;
    cfg.reset_ms = 100;
    cfg.max_retries = 20;
    cfg.max_msg = 2 * BIG;
    cfg.max_queue = 4 * BIG;
    struct pl_link_ops ops = {.write = side_write, .deliver = side_deliver, .user = s};
    s->stream = stream;
    cr_assert_eq(pl_link_new(&cfg, &ops, mono_ms(), &s->link), PL_OK);
}

static void side_feed(struct side *s)
{
    static _Thread_local uint8_t buf[BIG];
    while (s->sent < N_MSGS && pl_link_pending(s->link) < 2) {
        size_t n = msg_len(s->sent);
        msg_fill(s->stream, s->sent, buf, n);
        cr_assert_eq(pl_link_send(s->link, buf, n, mono_ms()), PL_OK);
        s->sent++;
    }
}

static int side_done(const struct side *s)
{
    return s->got == N_MSGS && s->sent == N_MSGS && pl_link_pending(s->link) == 0;
}

/* Reads what is there (timeout 0 after poll, or a blocking read of up to timeout_ms). */
static void side_pump(struct side *s, int timeout_ms)
{
    uint8_t buf[4096];
    size_t got = 0;
    int rc = s->io.read(s->io.user, buf, sizeof(buf), timeout_ms, &got);
    cr_assert_eq(rc, PL_OK, "%s read: %s", s->name, pl_strerror(rc));
    if (got) {
        rc = pl_link_input(s->link, buf, got, mono_ms());
        cr_assert_eq(rc, PL_OK, "%s input: %s", s->name, pl_strerror(rc));
    }
    rc = pl_link_tick(s->link, mono_ms());
    cr_assert_eq(rc, PL_OK, "%s tick: %s", s->name, pl_strerror(rc));
}

static void check_sides(struct side *a, struct side *b)
{
    cr_assert_eq(a->bad, 0);
    cr_assert_eq(b->bad, 0);
    cr_assert_eq(a->got, N_MSGS);
    cr_assert_eq(b->got, N_MSGS);
    cr_assert_geq(a->bytes_got, BIG);
    cr_assert_geq(b->bytes_got, BIG);
    struct pl_link_stats sa, sb;
    pl_link_get_stats(a->link, &sa);
    pl_link_get_stats(b->link, &sb);
    cr_assert_eq(sa.msgs_tx, N_MSGS);
    cr_assert_eq(sb.msgs_tx, N_MSGS);
    cr_assert_eq(sa.timeouts + sb.timeouts, 0);
    cr_assert_eq(sa.line.bad_crc + sb.line.bad_crc, 0, "a pty does not corrupt bytes");
}

Test(serial_pty, link_64k_both_ways_poll_loop, .timeout = 120)
{
    struct pl_pty pty;
    cr_assert_eq(pl_pty_open(&pty), PL_OK);
    struct side st = {.name = "station"}, fx = {.name = "fixture"};
    struct pl_serial_info info;
    cr_assert_eq(pl_serial_open_ex(pty.slave_path, 921600, PL_SERIAL_AUTO, &st.io, &info), PL_OK);
    cr_assert_eq(info.backend, PL_SERIAL_TERMIOS);
    cr_assert_eq(pl_pty_master_ops(&pty, 921600, &fx.io), PL_OK);
    side_open(&st, 0x57A7105u, 1);
    side_open(&fx, 0xF1C5u, 2);

    while (!(side_done(&st) && side_done(&fx))) {
        side_feed(&st);
        side_feed(&fx);
        uint64_t now = mono_ms();
        uint64_t dl = pl_link_deadline(st.link);
        if (pl_link_deadline(fx.link) < dl)
            dl = pl_link_deadline(fx.link);
        int wait = dl <= now ? 0 : (dl - now > 50 ? 50 : (int)(dl - now));
        struct pollfd p[2] = {{.fd = st.io.fd(st.io.user), .events = POLLIN},
                              {.fd = fx.io.fd(fx.io.user), .events = POLLIN}};
        int pr = poll(p, 2, wait);
        cr_assert(pr >= 0 || errno == EINTR);
        side_pump(&st, 0);
        side_pump(&fx, 0);
    }
    check_sides(&st, &fx);
    pl_link_free(st.link);
    pl_link_free(fx.link);
    pl_serial_close(&st.io);
    pl_serial_close(&fx.io);
    pl_pty_close(&pty);
}

static atomic_int done_flags;

static void *side_thread(void *arg)
{
    struct side *s = arg;
    int mine = s->stream == 1 ? 1 : 2;
    while (atomic_load(&done_flags) != 3) {
        side_feed(s);
        side_pump(s, 5); /* blocks up to 5 ms or until 4 KiB arrived */
        if (side_done(s))
            atomic_fetch_or(&done_flags, mine);
    }
    return NULL;
}

Test(serial_pty, link_64k_both_ways_two_threads, .timeout = 120)
{
    struct pl_pty pty;
    cr_assert_eq(pl_pty_open(&pty), PL_OK);
    struct side st = {.name = "station"}, fx = {.name = "fixture"};
    cr_assert_eq(pl_serial_open(pty.slave_path, 115200, &st.io), PL_OK);
    cr_assert_eq(pl_pty_master_ops(&pty, 115200, &fx.io), PL_OK);
    side_open(&st, 0xAAAA0001u, 1);
    side_open(&fx, 0xBBBB0001u, 2);
    atomic_store(&done_flags, 0);
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, side_thread, &st), 0);
    cr_assert_eq(pthread_create(&tb, NULL, side_thread, &fx), 0);
    cr_assert_eq(pthread_join(ta, NULL), 0);
    cr_assert_eq(pthread_join(tb, NULL), 0);
    check_sides(&st, &fx);
    pl_link_free(st.link);
    pl_link_free(fx.link);
    pl_serial_close(&st.io);
    pl_serial_close(&fx.io);
    pl_pty_close(&pty);
}
