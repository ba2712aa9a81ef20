/* provline-vdevice, serial mode: a pseudo-terminal pair whose slave is symlinked at LINKPATH
 * for the station to open (termios back-end), the reliable serial link (protocol link.h) on
 * the master side, output paced at the configured baud rate as a real 8N1 line would (10 bit
 * times per byte), and per-byte drop / corruption in both directions.
 * Sources: docs/serial-framing.md §3-§4 (link, timing), DEPENDENCIES.md §7 (ptys, raw mode),
 * fixtures pty.h (pair with the slave held open in raw mode), docs/fixture-protocol.md §6. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provline/fixtures/pty.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/link.h"
#include "vdevice.h"

#define INQ_MAX 4u
#define OUTQ_MAX (4u * 1024u * 1024u)

struct vser {
    struct vdev *v;
    struct pl_pty pty;
    struct pl_link *link;
    /* bytes waiting for the paced line */
    uint8_t *out;
    size_t out_len, out_off;
    uint64_t tx_free_us; /* the line is busy until then */
    /* requests delivered by the link, handled by the main loop */
    uint8_t *inq[INQ_MAX];
    size_t inq_len[INQ_MAX];
    size_t n_in;
    /* an answer held back by --delay-ms */
    struct pl_wr delayed;
    bool has_delayed;
    uint64_t due_ms;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int link_write(void *user, const uint8_t *buf, size_t len)
{
    struct vser *s = user;
    if (s->out_off > 0 && s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    if (len > OUTQ_MAX - s->out_len)
        return PL_ERR_OVERFLOW; /* the link retransmits later */
    uint8_t *n = realloc(s->out, s->out_len + len);
    if (n == NULL)
        return PL_ERR_NOMEM;
    s->out = n;
    memcpy(s->out + s->out_len, buf, len);
    s->out_len += len;
    return PL_OK;
}

static void link_deliver(void *user, const uint8_t *msg, size_t len)
{
    struct vser *s = user;
    if (s->n_in >= INQ_MAX || len == 0) {
        vdev_log("serial: request dropped (queue full or empty message)");
        return;
    }
    uint8_t *p = malloc(len);
    if (p == NULL)
        return;
    memcpy(p, msg, len);
    s->inq[s->n_in] = p;
    s->inq_len[s->n_in] = len;
    s->n_in++;
}

static void link_event(void *user, enum pl_link_event ev)
{
    (void)user;
    switch (ev) {
    case PL_LINK_EV_UP: vdev_log("serial: link up"); break;
    case PL_LINK_EV_PEER_RESET: vdev_log("serial: station started a new session"); break;
    case PL_LINK_EV_TIMEOUT: vdev_log("serial: retries ran out, resynchronising"); break;
    case PL_LINK_EV_RX_DROPPED: vdev_log("serial: oversized message dropped"); break;
    default: break;
    }
}

/* Writes what the line can carry by now: at 8N1 one byte costs 10 bit times. */
static int pump_out(struct vser *s)
{
    unsigned baud = s->v->baud;
    uint64_t t = now_us();
    if (s->out_off >= s->out_len || t < s->tx_free_us)
        return 0;
    /* A burst of at most ~2 ms of line time, at least one byte. */
    size_t chunk = (size_t)baud / 10u / 500u;
    if (chunk == 0)
        chunk = 1;
    size_t n = s->out_len - s->out_off;
    if (n > chunk)
        n = chunk;
    uint8_t buf[512];
    if (n > sizeof(buf))
        n = sizeof(buf);
    memcpy(buf, s->out + s->out_off, n);
    size_t keep = vdev_fault_bytes(&s->v->f, buf, n);
    ssize_t w = keep > 0 ? write(s->pty.master, buf, keep) : 0;
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0; /* the station is not reading: try again */
        vdev_log("serial: write to the pty failed: %s", strerror(errno));
        return -1;
    }
    if ((size_t)w < keep && keep == n) {
        n = (size_t)w; /* clean line, pty buffer full: the rest goes out later */
    }
    /* (A partial write of faulted bytes loses the rest, as a glitch on the line would.) */
    s->out_off += n;
    uint64_t base = s->tx_free_us > t ? s->tx_free_us : t;
    s->tx_free_us = base + (uint64_t)n * 10u * 1000000u / baud;
    return 0;
}

static int read_in(struct vser *s, uint64_t now_ms)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t r = read(s->pty.master, buf, sizeof(buf));
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            vdev_log("serial: read from the pty failed: %s", strerror(errno));
            return -1;
        }
        if (r == 0)
            return 0;
        size_t n = (size_t)r;
        struct vdev_faults *f = &s->v->f;
        bool unplug = false;
        if (f->unplug_after > 0 && f->bytes_in + n >= f->unplug_after) {
            n = (size_t)(f->unplug_after - f->bytes_in);
            unplug = true;
        }
        f->bytes_in += n;
        n = vdev_fault_bytes(f, buf, n);
        int rc = pl_link_input(s->link, buf, n, now_ms);
        if (rc != PL_OK && rc != PL_ERR_TIMEOUT)
            vdev_log("serial: link input: %s", pl_strerror(rc));
        if (unplug) {
            pl_pty_close(&s->pty); /* the station sees a hangup */
            unlink(s->v->pty_path);
            vdev_unplug(s->v);
        }
    }
}

static void handle_requests(struct vser *s, uint64_t now_ms)
{
    while (s->n_in > 0 && !s->has_delayed) {
        uint8_t *req = s->inq[0];
        size_t len = s->inq_len[0];
        memmove(&s->inq[0], &s->inq[1], (s->n_in - 1) * sizeof(s->inq[0]));
        memmove(&s->inq_len[0], &s->inq_len[1], (s->n_in - 1) * sizeof(s->inq_len[0]));
        s->n_in--;
        pl_wr_reset(&s->delayed);
        int rc = vdev_handle(s->v, req, len, &s->delayed);
        free(req);
        if (rc != PL_OK) {
            vdev_log("serial: no answer could be built: %s", pl_strerror(rc));
            continue;
        }
        s->has_delayed = true;
        s->due_ms = now_ms + s->v->f.delay_ms;
    }
    if (s->has_delayed && now_ms >= s->due_ms) {
        int rc = pl_link_send(s->link, s->delayed.buf, s->delayed.len, now_ms);
        if (rc != PL_OK)
            vdev_log("serial: answer not queued: %s", pl_strerror(rc));
        s->has_delayed = false;
        pl_wr_reset(&s->delayed);
    }
}

static uint32_t default_rto(size_t mtu, unsigned baud)
{
    uint64_t frame_bytes = (uint64_t)PL_FRAME_COBS_MAX(PL_FRAME_HDR_LEN + mtu + PL_FRAME_CRC_LEN) + 2u;
    uint64_t frame_ms = (frame_bytes * 10u * 1000u + baud - 1u) / baud;
    return (uint32_t)(2u * frame_ms + 100u);
}

int vdev_run_serial(struct vdev *v)
{
    struct vser s;
    struct pl_link_config cfg;
    struct pl_link_ops ops = {link_write, link_deliver, link_event, &s};
    struct pl_rng rng = PL_RNG_SYSTEM;
    uint32_t session = 0;
    int exit_code = VDEV_EXIT_RUNTIME;
    int rc;

    memset(&s, 0, sizeof(s));
    s.v = v;
    s.pty.master = -1;
    s.pty.slave_hold = -1;
    pl_wr_init_dyn(&s.delayed, PL_FX_MSG_MAX);
    if ((rc = pl_pty_open(&s.pty)) != PL_OK) {
        vdev_log("serial: cannot open a pty: %s", pl_strerror(rc));
        goto out;
    }
    (void)unlink(v->pty_path);
    if (symlink(s.pty.slave_path, v->pty_path) != 0) {
        vdev_log("serial: symlink %s -> %s: %s", v->pty_path, s.pty.slave_path, strerror(errno));
        goto out;
    }
    pl_link_config_default(&cfg);
    while (session == 0)
        if ((rc = rng.fill(rng.user, (uint8_t *)&session, sizeof(session))) != PL_OK)
            goto out;
    cfg.session = session;
    if (v->mtu != 0)
        cfg.mtu = v->mtu;
    cfg.rto_ms = v->rto_ms != 0 ? v->rto_ms : default_rto(cfg.mtu, v->baud);
    cfg.reset_ms = cfg.rto_ms;
    if (v->max_retries != 0)
        cfg.max_retries = v->max_retries;
    cfg.max_msg = PL_FX_MSG_MAX;
    cfg.max_queue = 2u * PL_FX_MSG_MAX;
    if ((rc = pl_link_new(&cfg, &ops, now_us() / 1000u, &s.link)) != PL_OK) {
        vdev_log("serial: link: %s", pl_strerror(rc));
        goto out;
    }
    vdev_log("serial: %s -> %s baud=%u mtu=%zu rto_ms=%u", v->pty_path, s.pty.slave_path,
             v->baud, cfg.mtu, (unsigned)cfg.rto_ms);
    printf("READY pty %s %s\n", v->pty_path, s.pty.slave_path);
    fflush(stdout);

    while (!*v->stop) {
        uint64_t t_ms = now_us() / 1000u;
        if (t_ms >= pl_link_deadline(s.link)) {
            rc = pl_link_tick(s.link, t_ms);
            if (rc != PL_OK && rc != PL_ERR_TIMEOUT)
                vdev_log("serial: link timer: %s", pl_strerror(rc));
        }
        handle_requests(&s, t_ms);
        if (pump_out(&s) != 0)
            goto out;

        /* Sleep until input, the next line slot, a link timer or a delayed answer. */
        uint64_t now = now_us();
        uint64_t wake = now + 200000u; /* stop checks */
        uint64_t dl = pl_link_deadline(s.link);
        if (dl != PL_LINK_NO_DEADLINE && dl * 1000u < wake)
            wake = dl * 1000u;
        if (s.out_off < s.out_len && s.tx_free_us < wake)
            wake = s.tx_free_us;
        if (s.has_delayed && s.due_ms * 1000u < wake)
            wake = s.due_ms * 1000u;
        int timeout = wake <= now ? 0 : (int)((wake - now + 999u) / 1000u);
        struct pollfd pf = {.fd = s.pty.master, .events = POLLIN};
        int pr = poll(&pf, 1, timeout);
        if (pr < 0 && errno != EINTR) {
            vdev_log("serial: poll: %s", strerror(errno));
            goto out;
        }
        if (pr > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR))
            && read_in(&s, now_us() / 1000u) != 0)
            goto out;
    }
    exit_code = VDEV_EXIT_OK;
out:
    pl_link_free(s.link);
    for (size_t i = 0; i < s.n_in; i++)
        free(s.inq[i]);
    free(s.out);
    pl_wr_free(&s.delayed);
    if (s.pty.master >= 0) {
        char target[128];
        ssize_t n = readlink(v->pty_path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, s.pty.slave_path) == 0)
                unlink(v->pty_path);
        }
        pl_pty_close(&s.pty);
    }
    return exit_code;
}
