/* Reliable message link over the serial frame codec (pure: no I/O, no clock of its own).
 *
 * Sources: provline's own protocol, specified in docs/serial-framing.md §3 (stop-and-wait ARQ
 * in the manner of HDLC/LAPB; session ids make stale frames of an earlier incarnation
 * harmless). Frame format: frame.h.
 *
 * What it gives the layer above: messages of up to max_msg bytes, delivered complete, in
 * order and exactly once while both ends keep their session; a message is split into DATA
 * frames of at most mtu payload bytes. Across a session change (a peer restart, or a resync
 * after retries ran out) the message that was in flight is sent again from its start, so it
 * may be delivered twice; the layer above carries its own message ids for that case.
 *
 * Seams: bytes go out through ops.write, messages come in through ops.deliver, time comes in as
 * a now_ms argument (any monotonic millisecond clock). One owner; not thread-safe. Callbacks
 * may call pl_link_send but must not call pl_link_input/tick/restart/free.
 */
#ifndef PROVLINE_PROTOCOL_LINK_H
#define PROVLINE_PROTOCOL_LINK_H

#include "provline/protocol/err.h"
#include "provline/protocol/frame.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard upper bound for max_msg (a Bound Profile Package is < 100 KB). */
#define PL_LINK_MAX_MSG_CAP (4u * 1024u * 1024u)
#define PL_LINK_NO_DEADLINE UINT64_MAX

enum pl_link_event {
    PL_LINK_EV_UP = 1,         /* both ends know each other's session: DATA flows */
    PL_LINK_EV_PEER_RESET = 2, /* the peer started a new session: partial input dropped, the
                                * message in flight restarts from its first fragment */
    PL_LINK_EV_TIMEOUT = 3,    /* a DATA frame ran out of retries; the link resyncs with a new
                                * session of its own (queued messages are kept) */
    PL_LINK_EV_RX_DROPPED = 4, /* an incoming message was over max_msg (or memory ran out) and
                                * was dropped */
};

struct pl_link_ops {
    /* Sends bytes to the line. Returns 0, or a negative pl_err (the frame then counts as lost
     * and is retransmitted; the error is returned by the pl_link_* call that wrote). */
    int (*write)(void *user, const uint8_t *buf, size_t len);
    /* One complete message; msg is borrowed for the call. */
    void (*deliver)(void *user, const uint8_t *msg, size_t len);
    /* Optional (may be NULL). */
    void (*event)(void *user, enum pl_link_event ev);
    void *user;
};

struct pl_link_config {
    uint32_t session;     /* this incarnation's id: non-zero, different on every start (take it
                           * from an RNG); the link uses session+1, +2, ... after timeouts */
    size_t mtu;           /* DATA payload bytes per frame, 1..PL_FRAME_MAX_PAYLOAD */
    uint32_t rto_ms;      /* retransmit timeout; must exceed the time to send one full frame
                           * and its ACK at the line rate (docs/serial-framing.md §4) */
    uint32_t reset_ms;    /* interval between RESETs while not synchronised */
    uint32_t max_retries; /* retransmissions of one frame before PL_LINK_EV_TIMEOUT */
    size_t max_msg;       /* largest message sent or accepted, <= PL_LINK_MAX_MSG_CAP */
    size_t max_queue;     /* bytes of queued outgoing messages, >= max_msg */
};

struct pl_link_stats {
    uint64_t msgs_tx;      /* messages completely acknowledged */
    uint64_t msgs_rx;      /* messages delivered */
    uint64_t frames_tx;    /* DATA frames sent for the first time */
    uint64_t frames_rx;    /* valid frames from the decoder (any type, any session) */
    uint64_t retransmits;  /* DATA frames sent again (timeout or NAK) */
    uint64_t dup_rx;       /* DATA frames received again (acknowledged, not delivered) */
    uint64_t stale_rx;     /* frames of another session, dropped */
    uint64_t out_of_order; /* DATA frames with an unexpected sequence number, dropped */
    uint64_t naks_tx;
    uint64_t naks_rx;
    uint64_t resets_tx;
    uint64_t peer_resets;          /* PL_LINK_EV_PEER_RESET */
    uint64_t timeouts;             /* PL_LINK_EV_TIMEOUT */
    uint64_t rx_dropped;           /* PL_LINK_EV_RX_DROPPED */
    struct pl_frame_rx_stats line; /* the frame decoder's counters */
};

struct pl_link;

/* Defaults: mtu 1024, rto 250 ms, reset 250 ms, 10 retries, max_msg 256 KiB, queue 1 MiB;
 * session 0 (the caller must set it). */
void pl_link_config_default(struct pl_link_config *cfg);

/* Returns owned (free with pl_link_free). Copies cfg and ops. PL_ERR_INVAL on a bad config or
 * missing write/deliver. Writes nothing: the first RESET goes out on the first pl_link_tick at
 * or after now_ms. */
PL_MUST_CHECK int pl_link_new(const struct pl_link_config *cfg, const struct pl_link_ops *ops,
                              uint64_t now_ms, struct pl_link **out);
/* Frees queued messages and the link. NULL is fine. */
void pl_link_free(struct pl_link *l);

/* Queues a copy of msg (len 0 is a valid message). PL_ERR_INVAL when len > max_msg,
 * PL_ERR_OVERFLOW when the queue is full (try again after messages were acknowledged),
 * PL_ERR_NOMEM. Starts sending at once when the link is up and idle. */
PL_MUST_CHECK int pl_link_send(struct pl_link *l, const uint8_t *msg, size_t len, uint64_t now_ms);

/* Bytes from the line (borrowed, any chunking). Delivers messages and raises events through
 * ops; writes ACKs and further frames. Returns PL_OK, the first write error, or PL_ERR_TIMEOUT
 * when retries ran out during this call (the link has already started to resync). */
PL_MUST_CHECK int pl_link_input(struct pl_link *l, const uint8_t *bytes, size_t n, uint64_t now_ms);

/* Runs the timers: RESET while unsynchronised, retransmission, the retry limit. Call it at or
 * after pl_link_deadline(). Returns as pl_link_input. */
PL_MUST_CHECK int pl_link_tick(struct pl_link *l, uint64_t now_ms);

/* When pl_link_tick needs to run next (PL_LINK_NO_DEADLINE when no timer is armed). */
uint64_t pl_link_deadline(const struct pl_link *l);

/* Starts a new session of our own (non-zero, different from the current one): both ends reset
 * their sequence state; queued messages are kept and the one in flight restarts. */
PL_MUST_CHECK int pl_link_restart(struct pl_link *l, uint32_t new_session, uint64_t now_ms);

bool pl_link_is_up(const struct pl_link *l);
/* Our current session id. */
uint32_t pl_link_session(const struct pl_link *l);
/* Messages queued, including the one in flight. */
size_t pl_link_pending(const struct pl_link *l);
void pl_link_get_stats(const struct pl_link *l, struct pl_link_stats *st);

#endif
