/* The station's side of the station <-> Key Maker protocol: a ZeroMQ DEALER client with
 * CurveZMQ (the Key Maker's public key pinned, the station's key pair from Z85 files),
 * idempotent retries (a retry re-sends the request byte for byte, same msg_id and seq),
 * sequence numbers, resync after a Key Maker restart (Hello with lastSeqAck), bounded
 * exponential back-off with jitter, and a prefetch pool that keeps a configurable number of
 * leased packages ahead of the line.
 *
 * GSMA SGP.41 v1.0 Esbpp (ESBPP01 BPP delivery, ESBPP02 eUICC data, ESBPP03 Profile
 * Loading Report); reference/IFPP.md §6.3; ARCHITECTURE.md §4-§6; ZeroMQ RFC 26
 * (CurveZMQ), RFC 32 (Z85), DEPENDENCIES.md §6; protocol/proto/keymaker.proto and
 * docs/station-keymaker-protocol.md (the wire contract); docs/internals/kmclient.md (this
 * module: timers, resync, what a completion means).
 *
 * Threading: none. The client is driven by one event loop: it exposes its socket (a
 * zmq_pollitem_t or the ZMQ_FD file descriptor) and pl_kmclient_timeout_ms(); the loop
 * calls pl_kmclient_poll() whenever the socket is readable or the timeout expired, then
 * collects completions with pl_kmclient_next() / pl_kmclient_take(). Nothing blocks except
 * the pl_kmclient_wait() family ("blocking helpers" for tools and tests).
 *
 * Every frame from the network is hostile until pl_km_msg_decode() accepted it and its
 * reply_to names a request of ours, its body is the answer that request expects and its
 * fields agree with the request (EID, lease id, entry count, ...). Anything else is
 * dropped and logged. */
#ifndef PROVLINE_KMCLIENT_KMCLIENT_H
#define PROVLINE_KMCLIENT_KMCLIENT_H

#include "provline/proto/km_msg.h"
#include "provline/protocol/clock.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/es10f.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define PL_KMCLIENT_CANDIDATES_MAX 64u   /* prefetch candidate EIDs */
#define PL_KMCLIENT_POOL_MAX       64u   /* prefetch_target cap */
#define PL_KMCLIENT_QUEUE_MAX      1024u /* queue_max cap */
#define PL_KMCLIENT_RENUMBER_MAX   3u    /* STALE_SEQ renumberings of one request */

enum pl_kmclient_log_level {
    PL_KMCLIENT_LOG_ERROR = 0,
    PL_KMCLIENT_LOG_WARN = 1,
    PL_KMCLIENT_LOG_INFO = 2,
    PL_KMCLIENT_LOG_DEBUG = 3,
};

/* A leased package as the station keeps it (copies of the Lease fields). */
struct pl_kmclient_pkg {
    uint8_t package_id[PL_KM_ID_LEN];
    uint8_t lease_id[PL_KM_ID_LEN];
    uint8_t eid[PL_KM_EID_LEN];
    uint16_t otk_id;
    uint8_t transaction_id[PL_KM_TID_MAX];
    size_t tid_len;
    uint8_t iccid[PL_KM_ICCID_LEN];
    uint64_t expiry;   /* Lease.expiry, Unix seconds */
    uint8_t *envelope; /* owned: the sealed IfppPackage (DER) */
    size_t envelope_len;
};
/* Copies package i of a checked Lease into *out (returns owned: pl_kmclient_pkg_free).
 * PL_ERR_INVAL (index), PL_ERR_NOMEM. */
PL_MUST_CHECK int pl_kmclient_pkg_from_lease(const provline_keymaker_Lease *l, size_t i,
                                             struct pl_kmclient_pkg *out);
/* Frees the envelope and empties *p (accepts NULL and an emptied package). */
void pl_kmclient_pkg_free(struct pl_kmclient_pkg *p);

struct pl_kmclient_config {
    const char *endpoint; /* "tcp://host:port" (required) */
    /* The Key Maker's CurveZMQ public key, pinned: Z85 text (40 characters) or a file
     * holding it. One of the two is required; the text wins. */
    const char *server_public;
    const char *server_public_file;
    /* The station's CurveZMQ key pair: the secret key file (Z85, required) and optionally
     * the public key file, which must then match the secret key. */
    const char *secret_file;
    const char *public_file;
    const char *station_id; /* Hello.station_id (logs only); NULL = "provline-station" */
    /* The certificate (DER file) whose key signs the Key Maker's audit checkpoints: the
     * reference Key Maker signs with its SM-DPf key, so its CERT.DPpb (PKI dpf.der).
     * Optional: when set, a ReportAck checkpoint whose signature does not verify is removed
     * from the reply (logged, counted in checkpoints_rejected). */
    const char *checkpoint_cert_file;
    uint64_t last_seq;      /* highest station seq used before (journal); 0 = none */
    uint64_t last_seq_ack;  /* highest Key Maker seq durably processed; 0 = none */
    /* Retransmission: attempt k waits min(backoff_max_ms, attempt_ms * 2^(k-1)) for a reply,
     * shortened by a random 0..jitter_pct %; a request that has no answer after
     * deadline_ms completes with PL_ERR_TIMEOUT. */
    uint32_t attempt_ms;     /* default 1000 */
    uint32_t backoff_max_ms; /* default 8000 */
    uint32_t jitter_pct;     /* 0..100, default 20 */
    uint32_t deadline_ms;    /* default 30000 */
    unsigned max_inflight;   /* requests first sent but unanswered; default 4 */
    unsigned queue_max;      /* requests submitted, not completed; default 64 */
    int heartbeat_ms;        /* ZMTP 3.1 PING interval (dead peer detection); default
                              * 2000, 0 = off */
    /* Prefetch (off when prefetch_target is 0): keep that many packages leased for the
     * candidate EIDs (pl_kmclient_prefetch_add). After an empty or refused lease the
     * client waits prefetch_idle_ms before asking again. */
    unsigned prefetch_target;  /* 0..PL_KMCLIENT_POOL_MAX, default 0 */
    uint32_t prefetch_idle_ms; /* default 2000 */
    /* Called for each prefetched package before it is acknowledged to the Key Maker: the
     * station journals it durably (IFPP.md §6.3 LEASED). A non-zero return drops the
     * package (not acknowledged, not pooled). NULL: acknowledged without a journal.
     * Borrows pkg for the call. */
    int (*journal)(void *user, const struct pl_kmclient_pkg *pkg);
    void *journal_user;
    const struct pl_clock_ops *clock; /* NULL = monotonic; borrowed for the client's life */
    const struct pl_rng *rng;         /* msg ids and jitter; NULL = system; borrowed likewise */
    /* Log sink; NULL = silent. One event per call: key=value pairs, no newline. Never
     * receives key material. */
    void (*log)(void *user, enum pl_kmclient_log_level level, const char *line);
    void *log_user;
};
/* Fills the defaults documented above. Cannot fail. */
void pl_kmclient_config_init(struct pl_kmclient_config *c);

struct pl_kmclient;

/* Creates the DEALER socket (own ZeroMQ context; ZMQ_LINGER 0, ZMQ_MAXMSGSIZE
 * PL_KM_FRAME_MAX, CURVE client keys, heartbeats, reconnect back-off) and connects. Nothing
 * is sent yet: the first poll that has work sends a Hello. Copies cfg (its strings too).
 * Key buffers are zeroised. PL_ERR_CONFIG (missing/malformed key, bad value), PL_ERR_IO
 * (key file unreadable, ZeroMQ failure). Returns owned *out (pl_kmclient_free). */
PL_MUST_CHECK int pl_kmclient_new(const struct pl_kmclient_config *cfg, struct pl_kmclient **out);
/* Closes the socket and context (LINGER 0: nothing waits), frees every pending request,
 * completion and pooled package. Accepts NULL. */
void pl_kmclient_free(struct pl_kmclient *c);

/* ---- the event loop ---- */

/* The socket, for zmq_poll: item->events = ZMQ_POLLIN. */
void pl_kmclient_pollitem(struct pl_kmclient *c, zmq_pollitem_t *item);
/* ZMQ_FD for poll(2)/epoll: edge-triggered, "readable" means "call pl_kmclient_poll()";
 * pl_kmclient_poll() always reads until the socket has nothing left. */
PL_MUST_CHECK int pl_kmclient_fd(struct pl_kmclient *c, int *fd);
/* Milliseconds until the client needs pl_kmclient_poll() again for a timer; -1 = no timer
 * (idle); 0 = now. */
int pl_kmclient_timeout_ms(struct pl_kmclient *c);
/* Non-blocking: reads every available reply, fires due timers (deadlines, retransmissions,
 * resync, prefetch) and sends what is due. PL_OK, or PL_ERR_IO if the socket failed. */
PL_MUST_CHECK int pl_kmclient_poll(struct pl_kmclient *c);

/* ---- requests ---- */

/* Pins the identity of a request for a replay after a station restart: the journal kept
 * the msg_id and seq of a request that may have reached the Key Maker; submitting the same
 * body with them yields the same bytes, so the Key Maker answers with its recorded reply
 * (or, if it never processed it, processes it now). */
struct pl_kmclient_ident {
    uint8_t msg_id[PL_KM_ID_LEN];
    uint64_t seq;
};

/* A finished request. */
struct pl_kmclient_done {
    uint64_t id;      /* as returned by the submit */
    uint64_t tag;     /* the caller's cookie */
    unsigned request; /* PL_KM_* body of the request */
    /* PL_OK: the expected reply (reply->which_body is the answer to `request`);
     * PL_ERR_REMOTE: an Error reply (km_error, reply->body.error);
     * PL_ERR_TIMEOUT: no reply within deadline_ms (reply NULL);
     * PL_ERR_MALFORMED: a reply of the wrong type or contradicting the request;
     * PL_ERR_IO: the socket failed. */
    int status;
    int km_error;                   /* provline_keymaker_ErrorCode when status is PL_ERR_REMOTE */
    struct pl_kmclient_ident ident; /* final msg_id and seq (changed by a renumbering) */
    unsigned attempts;              /* transmissions (1 = answered at the first try) */
    provline_keymaker_Msg *reply;   /* owned (decoded and checked) or NULL */
    uint8_t *raw;                   /* owned: the reply frame as received, or NULL */
    size_t raw_len;
};
/* Frees reply and raw and empties *d. Accepts NULL and an emptied completion. */
void pl_kmclient_done_free(struct pl_kmclient_done *d);

/* Queues a request. Borrows m: its body must be set; its header (msg_id, seq, reply_to,
 * version) is overwritten here (from ident when not NULL, else a fresh random msg_id and
 * the next seq), and the message is encoded at once. *id (may be NULL) gets the request
 * id, *assigned (may be NULL) the identity to journal before the bytes leave.
 * PL_ERR_OVERFLOW (queue full), PL_ERR_MALFORMED (pl_km_msg_check refused m),
 * PL_ERR_INVAL (reply-type body). */
PL_MUST_CHECK int pl_kmclient_submit(struct pl_kmclient *c, provline_keymaker_Msg *m, uint64_t tag,
                                     const struct pl_kmclient_ident *ident, uint64_t *id,
                                     struct pl_kmclient_ident *assigned);

/* Typed submits (same contract; all inputs borrowed). */
PL_MUST_CHECK int pl_kmclient_send_hello(struct pl_kmclient *c, uint64_t tag, uint64_t *id);
/* OtkUpload of a GetIfppInfo response as the eUICC returned it (ESBPP02). */
PL_MUST_CHECK int pl_kmclient_send_upload(struct pl_kmclient *c, const struct pl_es10f_info *info,
                                          uint64_t tag, uint64_t *id);
PL_MUST_CHECK int pl_kmclient_send_lease_jit(struct pl_kmclient *c,
                                             const uint8_t eid[PL_KM_EID_LEN], uint16_t otk_id,
                                             uint64_t tag, uint64_t *id);
/* eids: n (1..8) EIDs of 16 bytes each, in order of preference; max 1..8. */
PL_MUST_CHECK int pl_kmclient_send_lease_prefetch(struct pl_kmclient *c, const uint8_t *eids,
                                                  size_t n, unsigned max, uint64_t tag,
                                                  uint64_t *id);
/* package_ids: n (1..8) ids of 16 bytes each. */
PL_MUST_CHECK int pl_kmclient_send_ack(struct pl_kmclient *c, const uint8_t lease_id[PL_KM_ID_LEN],
                                       const uint8_t *package_ids, size_t n, uint64_t tag,
                                       uint64_t *id);
/* n (1..16) entries; audit (the station's audit chain head, the Key Maker is asked to sign
 * it) may be NULL. A ReportAck is accepted only if its checkpoint, when present, is the one
 * asked for: this station's key and the report's chain id, seq and head (else the
 * completion is PL_ERR_MALFORMED); its signature is checked with checkpoint_cert_file. */
PL_MUST_CHECK int pl_kmclient_send_report(struct pl_kmclient *c,
                                          const provline_keymaker_ReportEntry *entries, size_t n,
                                          const struct pl_km_audit_head *audit, uint64_t tag,
                                          uint64_t *id);
PL_MUST_CHECK int pl_kmclient_send_token_request(struct pl_kmclient *c,
                                                 const uint8_t eid[PL_KM_EID_LEN], uint64_t tag,
                                                 uint64_t *id);
/* OtkDeletionReceipt: the eUICC's raw 'FF75' answer (len 1..1024) to the token `counter`. */
PL_MUST_CHECK int pl_kmclient_send_receipt(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                                           uint64_t counter, const uint8_t *response, size_t len,
                                           uint64_t tag, uint64_t *id);

/* Pops the oldest completion into *out (returns owned: pl_kmclient_done_free). false when
 * none is waiting. */
bool pl_kmclient_next(struct pl_kmclient *c, struct pl_kmclient_done *out);
/* Takes the completion of request id out of the queue. PL_ERR_NOT_FOUND if it has not
 * completed (or was taken already). */
PL_MUST_CHECK int pl_kmclient_take(struct pl_kmclient *c, uint64_t id,
                                   struct pl_kmclient_done *out);

/* ---- blocking helpers (tools, tests): run the loop until request id completes ----
 * They poll the socket with zmq_poll for pl_kmclient_timeout_ms(), so the clock must be
 * one that advances (the default). Other completions stay queued. Each returns
 * out->status (and fills *out, which the caller frees), or a local error before sending
 * (then *out is empty). */
PL_MUST_CHECK int pl_kmclient_wait(struct pl_kmclient *c, uint64_t id,
                                   struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_hello(struct pl_kmclient *c, struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_upload(struct pl_kmclient *c, const struct pl_es10f_info *info,
                                     struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_lease_jit(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                                        uint16_t otk_id, struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_lease_prefetch(struct pl_kmclient *c, const uint8_t *eids, size_t n,
                                             unsigned max, struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_ack(struct pl_kmclient *c, const uint8_t lease_id[PL_KM_ID_LEN],
                                  const uint8_t *package_ids, size_t n,
                                  struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_report(struct pl_kmclient *c,
                                     const provline_keymaker_ReportEntry *entries, size_t n,
                                     const struct pl_km_audit_head *audit,
                                     struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_deletion_token(struct pl_kmclient *c,
                                             const uint8_t eid[PL_KM_EID_LEN],
                                             struct pl_kmclient_done *out);
PL_MUST_CHECK int pl_kmclient_deletion_receipt(struct pl_kmclient *c,
                                               const uint8_t eid[PL_KM_EID_LEN], uint64_t counter,
                                               const uint8_t *response, size_t len,
                                               struct pl_kmclient_done *out);
/* Submits m (as pl_kmclient_submit) and waits. */
PL_MUST_CHECK int pl_kmclient_call(struct pl_kmclient *c, provline_keymaker_Msg *m,
                                   const struct pl_kmclient_ident *ident,
                                   struct pl_kmclient_done *out);

/* ---- prefetch ---- */

/* Adds a candidate EID (a device expected on the line whose OTKs the Key Maker knows).
 * PL_ERR_EXISTS (already a candidate), PL_ERR_OVERFLOW (PL_KMCLIENT_CANDIDATES_MAX). */
PL_MUST_CHECK int pl_kmclient_prefetch_add(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN]);
/* Removes a candidate (no-op if absent); a pooled package for it stays pooled. */
void pl_kmclient_prefetch_remove(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN]);
/* Packages pooled (leased, journaled, acknowledged or being acknowledged). */
unsigned pl_kmclient_prefetch_ready(const struct pl_kmclient *c);
/* True while a prefetch lease request is on its way. */
bool pl_kmclient_prefetch_busy(const struct pl_kmclient *c);
/* Takes the pooled package for eid (returns owned *out) and removes eid from the
 * candidates; the next poll tops the pool up. PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_kmclient_prefetch_take(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                                            struct pl_kmclient_pkg *out);

/* ---- state ---- */

struct pl_kmclient_stats {
    uint64_t submitted, completed, timeouts;
    uint64_t frames_sent, retransmissions, send_eagain;
    uint64_t replies, duplicate_replies, dropped_frames;
    uint64_t hellos_sent, resyncs, renumbered;
    uint64_t prefetch_requests, prefetch_packages, prefetch_dropped;
    /* ReportAck checkpoints: signature verified with checkpoint_cert_file, removed because
     * it did not verify, or passed on unchecked (no certificate configured). */
    uint64_t checkpoints_verified, checkpoints_rejected, checkpoints_unchecked;
    bool keymaker_rollback; /* a HelloAck showed the Key Maker's seq below lastSeqAck */
};
void pl_kmclient_stats(const struct pl_kmclient *c, struct pl_kmclient_stats *out);
/* True after a HelloAck, until a reply goes missing. */
bool pl_kmclient_synced(const struct pl_kmclient *c);
/* Highest station seq assigned so far (journal it to survive restarts). */
uint64_t pl_kmclient_last_seq(const struct pl_kmclient *c);
/* The checkpoint signer's key from checkpoint_cert_file (borrowed, valid for the client's
 * life), or NULL when none was configured: the station passes it on to
 * pl_audit_record_signed_checkpoint. */
const struct pl_eckey *pl_kmclient_checkpoint_key(const struct pl_kmclient *c);
/* This station's CurveZMQ public key (32 bytes), the identity the Key Maker signs
 * checkpoints for. */
void pl_kmclient_station_key(const struct pl_kmclient *c, uint8_t out[PL_KM_STATION_KEY_LEN]);
/* Highest Key Maker seq of a reply delivered so far (Hello.last_seq_ack). */
uint64_t pl_kmclient_last_seq_ack(const struct pl_kmclient *c);
/* The latest HelloAck (borrowed, valid until the next poll), or NULL before the first. */
const provline_keymaker_HelloAck *pl_kmclient_hello_ack(const struct pl_kmclient *c);
/* Requests submitted and not completed (internal ones included). */
unsigned pl_kmclient_pending(const struct pl_kmclient *c);

#endif
