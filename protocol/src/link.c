/* Reliable message link: stop-and-wait ARQ over the serial frame codec, with session ids for
 * resync after a restart (pure: no I/O, time is a parameter).
 *
 * Sources: provline's own protocol, docs/serial-framing.md §3 (the rules quoted at each check
 * below are from there). Stop-and-wait with a modulo-256 sequence number, positive ACKs and
 * timeout retransmission is the classic ARQ of HDLC/LAPB (ISO/IEC 13239); the NAK is a
 * retransmission hint, never required for correctness.
 */
#include "provline/protocol/link.h"

#include <stdlib.h>
#include <string.h>

struct link_msg {
    struct link_msg *next;
    size_t len;
    uint8_t data[];
};

struct pl_link {
    struct pl_link_config cfg;
    struct pl_link_ops ops;

    uint32_t my_sess;
    uint32_t peer_sess;
    bool peer_known;
    bool up;

    /* transmit */
    struct link_msg *head, *tail;
    size_t queued_bytes;
    size_t queued_msgs;
    size_t tx_off;   /* offset in head of the fragment in flight (or the next one) */
    size_t frag_len; /* payload bytes of the fragment in flight */
    bool frag_last;
    bool inflight;
    uint8_t tx_seq; /* sequence number of the fragment in flight (or the next one) */
    uint32_t retries;
    uint64_t deadline;
    size_t frame_len;
    uint8_t frame[PL_FRAME_ENC_MAX]; /* the encoded fragment in flight */

    /* receive */
    struct pl_frame_rx rx;
    uint8_t rx_expect;
    uint8_t *rbuf;
    size_t rlen, rcap;
    bool rdrop;         /* dropping the rest of an oversize message */
    uint64_t nak_after; /* no NAK before this time */

    /* per call */
    uint64_t now;
    int werr;   /* first write error of the outermost call */
    int failed; /* PL_ERR_TIMEOUT when retries ran out during the call */
    int depth;  /* nesting of API calls (pl_link_send from a callback) */

    struct pl_link_stats st;
};

void pl_link_config_default(struct pl_link_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->session = 0;
    cfg->mtu = 1024;
    cfg->rto_ms = 250;
    cfg->reset_ms = 250;
    cfg->max_retries = 10;
    cfg->max_msg = 256u * 1024u;
    cfg->max_queue = 1024u * 1024u;
}

static bool config_ok(const struct pl_link_config *c)
{
    return c->session != 0 && c->mtu >= 1 && c->mtu <= PL_FRAME_MAX_PAYLOAD && c->rto_ms > 0
           && c->reset_ms > 0 && c->max_msg <= PL_LINK_MAX_MSG_CAP && c->max_queue >= c->max_msg;
}

/* ---- output ---- */

static void wire_write(struct pl_link *l, const uint8_t *buf, size_t len)
{
    int rc = l->ops.write(l->ops.user, buf, len);
    if (rc != 0 && l->werr == 0)
        l->werr = rc < 0 ? rc : PL_ERR_IO;
}

static void send_ctrl(struct pl_link *l, uint8_t type, uint8_t seq, uint32_t dst)
{
    uint8_t buf[PL_FRAME_CTRL_ENC_MAX];
    size_t n = 0;
    struct pl_frame_hdr h = {.type = type, .seq = seq, .src = l->my_sess, .dst = dst};
    if (pl_frame_encode(&h, NULL, buf, sizeof(buf), &n) != PL_OK) {
        if (l->werr == 0)
            l->werr = PL_ERR_INTERNAL;
        return;
    }
    wire_write(l, buf, n);
}

static void send_reset(struct pl_link *l)
{
    l->st.resets_tx++;
    send_ctrl(l, PL_FRAME_RESET, 0, l->peer_known ? l->peer_sess : 0);
    l->deadline = l->now + l->cfg.reset_ms;
}

static void emit(struct pl_link *l, enum pl_link_event ev)
{
    if (l->ops.event)
        l->ops.event(l->ops.user, ev);
}

/* ---- transmit side ---- */

/* Sends the next fragment when the link is up, idle and has something queued. */
static void kick_tx(struct pl_link *l)
{
    if (!l->up || l->inflight || !l->head)
        return;
    struct link_msg *m = l->head;
    size_t left = m->len - l->tx_off;
    l->frag_len = left < l->cfg.mtu ? left : l->cfg.mtu;
    l->frag_last = l->frag_len == left;
    struct pl_frame_hdr h = {
        .type = PL_FRAME_DATA,
        .flags = l->frag_last ? 0 : (uint8_t)PL_FRAME_F_MORE,
        .seq = l->tx_seq,
        .src = l->my_sess,
        .dst = l->peer_sess,
        .len = (uint16_t)l->frag_len,
    };
    if (pl_frame_encode(&h, l->frag_len ? m->data + l->tx_off : NULL, l->frame, sizeof(l->frame),
                        &l->frame_len)
        != PL_OK) {
        if (l->werr == 0)
            l->werr = PL_ERR_INTERNAL;
        return;
    }
    l->inflight = true;
    l->retries = 0;
    l->st.frames_tx++;
    l->deadline = l->now + l->cfg.rto_ms;
    wire_write(l, l->frame, l->frame_len);
}

static void pop_head(struct pl_link *l)
{
    struct link_msg *m = l->head;
    l->head = m->next;
    if (!l->head)
        l->tail = NULL;
    l->queued_bytes -= m->len;
    l->queued_msgs--;
    free(m);
}

static void frame_acked(struct pl_link *l)
{
    l->inflight = false;
    l->retries = 0;
    l->deadline = PL_LINK_NO_DEADLINE;
    l->tx_seq++;
    l->tx_off += l->frag_len;
    if (l->frag_last) {
        pop_head(l);
        l->tx_off = 0;
        l->st.msgs_tx++;
    }
    kick_tx(l);
}

/* Forgets the sequence state of both directions: every handshake starts both at 0, and the
 * message in flight restarts from its first fragment (docs §3.3). */
static void reset_seq(struct pl_link *l)
{
    l->tx_seq = 0;
    l->tx_off = 0;
    l->inflight = false;
    l->retries = 0;
    l->rx_expect = 0;
    l->rlen = 0;
    l->rdrop = false;
}

/* New session of our own: tell the peer with a RESET and wait for its RESET_ACK. */
static void resync(struct pl_link *l, uint32_t session)
{
    l->my_sess = session;
    l->up = false;
    reset_seq(l);
    send_reset(l);
}

static void give_up(struct pl_link *l)
{
    l->st.timeouts++;
    l->failed = PL_ERR_TIMEOUT;
    emit(l, PL_LINK_EV_TIMEOUT);
    uint32_t next = l->my_sess + 1u;
    resync(l, next ? next : 1u);
}

static void retransmit(struct pl_link *l)
{
    /*= docs/serial-framing.md §3.2
     *# A DATA frame is sent at most 1 + max_retries times; then the link gives up on the
     *# session (PL_LINK_EV_TIMEOUT) and resyncs with a new session id. */
    if (l->retries >= l->cfg.max_retries) {
        give_up(l);
        return;
    }
    l->retries++;
    l->st.retransmits++;
    l->deadline = l->now + l->cfg.rto_ms;
    wire_write(l, l->frame, l->frame_len);
}

/* ---- receive side ---- */

static void go_up(struct pl_link *l)
{
    if (l->up)
        return;
    l->up = true;
    l->deadline = PL_LINK_NO_DEADLINE;
    emit(l, PL_LINK_EV_UP);
    kick_tx(l);
}

static void adopt_peer(struct pl_link *l, uint32_t session)
{
    bool had_peer = l->peer_known;
    l->peer_sess = session;
    l->peer_known = true;
    l->up = false;
    reset_seq(l);
    if (had_peer) {
        l->st.peer_resets++;
        emit(l, PL_LINK_EV_PEER_RESET);
    }
}

static void on_reset(struct pl_link *l, const struct pl_frame_hdr *h)
{
    if (l->peer_known && h->src == l->peer_sess) {
        /* A repeated RESET of the session we already follow: acknowledge again, never reset
         * twice (its first copy may have been answered and DATA may be flowing). */
        send_ctrl(l, PL_FRAME_RESET_ACK, 0, h->src);
        if (h->dst == l->my_sess)
            go_up(l);
        return;
    }
    adopt_peer(l, h->src);
    send_ctrl(l, PL_FRAME_RESET_ACK, 0, h->src);
    /*= docs/serial-framing.md §3.1
     *# A side is up once it has a frame from the peer's session addressed to its own session. */
    if (h->dst == l->my_sess)
        go_up(l);
    else
        send_reset(l); /* the new peer does not know us yet */
}

static void on_reset_ack(struct pl_link *l, const struct pl_frame_hdr *h)
{
    if (h->dst != l->my_sess) {
        l->st.stale_rx++; /* answers a RESET of an earlier session of ours */
        return;
    }
    if (!l->peer_known || h->src != l->peer_sess)
        adopt_peer(l, h->src);
    go_up(l);
}

static void rx_drop_message(struct pl_link *l)
{
    l->st.rx_dropped++;
    l->rlen = 0;
    emit(l, PL_LINK_EV_RX_DROPPED);
}

/* Appends one in-order fragment; delivers the message on its last fragment. */
static void rx_fragment(struct pl_link *l, const struct pl_frame_hdr *h, const uint8_t *p)
{
    bool last = (h->flags & PL_FRAME_F_MORE) == 0;
    if (!l->rdrop && h->len > 0) {
        size_t need = l->rlen + h->len;
        if (need > l->cfg.max_msg) {
            rx_drop_message(l);
            l->rdrop = true;
        } else if (need > l->rcap) {
            size_t cap = l->rcap ? l->rcap * 2 : 4096;
            if (cap < need)
                cap = need;
            if (cap > l->cfg.max_msg)
                cap = l->cfg.max_msg;
            uint8_t *nb = realloc(l->rbuf, cap);
            if (!nb) {
                rx_drop_message(l);
                l->rdrop = true;
            } else {
                l->rbuf = nb;
                l->rcap = cap;
            }
        }
        if (!l->rdrop) {
            memcpy(l->rbuf + l->rlen, p, h->len);
            l->rlen += h->len;
        }
    }
    if (!last)
        return;
    bool deliver = !l->rdrop;
    size_t len = l->rlen;
    l->rlen = 0;
    l->rdrop = false;
    if (deliver) {
        static const uint8_t empty[1] = {0};
        l->st.msgs_rx++;
        l->ops.deliver(l->ops.user, l->rbuf ? l->rbuf : empty, len);
    }
}

static void on_data(struct pl_link *l, const struct pl_frame_hdr *h, const uint8_t *p)
{
    /*= docs/serial-framing.md §3.2
     *# DATA with the expected seq is acknowledged and delivered; DATA with the previous seq is
     *# a duplicate (our ACK was lost): acknowledged again, not delivered; anything else is
     *# dropped and answered with NAK(expected). */
    if (h->seq == l->rx_expect) {
        l->rx_expect++;
        send_ctrl(l, PL_FRAME_ACK, h->seq, l->peer_sess);
        rx_fragment(l, h, p);
    } else if (h->seq == (uint8_t)(l->rx_expect - 1u)) {
        l->st.dup_rx++;
        send_ctrl(l, PL_FRAME_ACK, h->seq, l->peer_sess);
    } else {
        l->st.out_of_order++;
        l->st.naks_tx++;
        send_ctrl(l, PL_FRAME_NAK, l->rx_expect, l->peer_sess);
    }
}

static void on_ack(struct pl_link *l, const struct pl_frame_hdr *h)
{
    if (l->inflight && h->seq == l->tx_seq)
        frame_acked(l);
    /* otherwise a duplicate ACK of a frame already acknowledged */
}

static void on_nak(struct pl_link *l, const struct pl_frame_hdr *h)
{
    l->st.naks_rx++;
    if (!l->inflight)
        return;
    if (h->seq == l->tx_seq)
        retransmit(l);
    else if (h->seq == (uint8_t)(l->tx_seq + 1u))
        frame_acked(l); /* NAK(e) also says everything before e arrived */
}

static void on_frame(void *user, const struct pl_frame_hdr *h, const uint8_t *payload)
{
    struct pl_link *l = user;
    l->st.frames_rx++;
    if (h->type == PL_FRAME_RESET) {
        on_reset(l, h);
        return;
    }
    if (h->type == PL_FRAME_RESET_ACK) {
        on_reset_ack(l, h);
        return;
    }
    /*= docs/serial-framing.md §3.1
     *# DATA, ACK and NAK are accepted only when src is the peer's current session and dst is
     *# ours; anything else belongs to an earlier incarnation and is dropped. */
    if (!l->peer_known || h->src != l->peer_sess || h->dst != l->my_sess) {
        l->st.stale_rx++;
        return;
    }
    go_up(l);
    switch (h->type) {
    case PL_FRAME_DATA:
        on_data(l, h, payload);
        break;
    case PL_FRAME_ACK:
        on_ack(l, h);
        break;
    case PL_FRAME_NAK:
        on_nak(l, h);
        break;
    default:
        break;
    }
}

/* ---- API ---- */

static void call_begin(struct pl_link *l, uint64_t now_ms)
{
    if (l->depth++ == 0) {
        l->werr = 0;
        l->failed = 0;
    }
    if (now_ms > l->now)
        l->now = now_ms; /* time never runs backwards inside the link */
}

static int call_end(struct pl_link *l)
{
    if (--l->depth > 0)
        return PL_OK; /* the outermost call reports */
    int rc = l->failed ? l->failed : l->werr;
    l->werr = 0;
    l->failed = 0;
    return rc;
}

int pl_link_new(const struct pl_link_config *cfg, const struct pl_link_ops *ops, uint64_t now_ms,
                struct pl_link **out)
{
    if (!cfg || !ops || !out || !ops->write || !ops->deliver || !config_ok(cfg))
        return PL_ERR_INVAL;
    struct pl_link *l = calloc(1, sizeof(*l));
    if (!l)
        return PL_ERR_NOMEM;
    l->cfg = *cfg;
    l->ops = *ops;
    l->my_sess = cfg->session;
    l->now = now_ms;
    l->deadline = now_ms; /* first RESET on the first tick */
    pl_frame_rx_init(&l->rx);
    *out = l;
    return PL_OK;
}

void pl_link_free(struct pl_link *l)
{
    if (!l)
        return;
    while (l->head)
        pop_head(l);
    free(l->rbuf);
    free(l);
}

int pl_link_send(struct pl_link *l, const uint8_t *msg, size_t len, uint64_t now_ms)
{
    if (!l || (!msg && len))
        return PL_ERR_INVAL;
    if (len > l->cfg.max_msg)
        return PL_ERR_INVAL;
    if (len > l->cfg.max_queue - l->queued_bytes)
        return PL_ERR_OVERFLOW;
    struct link_msg *m = malloc(sizeof(*m) + len);
    if (!m)
        return PL_ERR_NOMEM;
    m->next = NULL;
    m->len = len;
    if (len)
        memcpy(m->data, msg, len);
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    l->queued_bytes += len;
    l->queued_msgs++;
    call_begin(l, now_ms);
    kick_tx(l);
    return call_end(l);
}

int pl_link_input(struct pl_link *l, const uint8_t *bytes, size_t n, uint64_t now_ms)
{
    if (!l || (!bytes && n))
        return PL_ERR_INVAL;
    if (l->depth > 0)
        return PL_ERR_STATE; /* not from a callback */
    call_begin(l, now_ms);
    uint64_t damaged = pl_frame_rx_errors(&l->rx);
    (void)pl_frame_rx_feed(&l->rx, bytes, n, on_frame, l);
    /*= docs/serial-framing.md §3.2
     *# A side that decodes a damaged frame while up may send NAK(expected), at most one per
     *# rto/2, so that the peer retransmits without waiting for its timeout. */
    if (l->up && pl_frame_rx_errors(&l->rx) > damaged && l->now >= l->nak_after) {
        l->nak_after = l->now + l->cfg.rto_ms / 2u;
        l->st.naks_tx++;
        send_ctrl(l, PL_FRAME_NAK, l->rx_expect, l->peer_sess);
    }
    return call_end(l);
}

int pl_link_tick(struct pl_link *l, uint64_t now_ms)
{
    if (!l)
        return PL_ERR_INVAL;
    if (l->depth > 0)
        return PL_ERR_STATE;
    call_begin(l, now_ms);
    if (l->deadline != PL_LINK_NO_DEADLINE && l->now >= l->deadline) {
        if (!l->up)
            send_reset(l);
        else if (l->inflight)
            retransmit(l);
        else
            l->deadline = PL_LINK_NO_DEADLINE;
    }
    return call_end(l);
}

uint64_t pl_link_deadline(const struct pl_link *l)
{
    return l ? l->deadline : PL_LINK_NO_DEADLINE;
}

int pl_link_restart(struct pl_link *l, uint32_t new_session, uint64_t now_ms)
{
    if (!l || new_session == 0 || new_session == l->my_sess)
        return PL_ERR_INVAL;
    if (l->depth > 0)
        return PL_ERR_STATE;
    call_begin(l, now_ms);
    resync(l, new_session);
    return call_end(l);
}

bool pl_link_is_up(const struct pl_link *l)
{
    return l && l->up;
}

uint32_t pl_link_session(const struct pl_link *l)
{
    return l ? l->my_sess : 0;
}

size_t pl_link_pending(const struct pl_link *l)
{
    return l ? l->queued_msgs : 0;
}

void pl_link_get_stats(const struct pl_link *l, struct pl_link_stats *st)
{
    *st = l->st;
    st->line = l->rx.stats;
}
