/* Station side of the station <-> Key Maker protocol: DEALER + CurveZMQ client, idempotent
 * retransmission, sequence numbers, resync, back-off, prefetch pool.
 * GSMA SGP.41 v1.0 Esbpp (ESBPP01-03); reference/IFPP.md §6.3 (msgId idempotency,
 * monotonic seq, HELLO {lastSeqAck}, LEASE/ACK/REPORT); ARCHITECTURE.md §6; ZeroMQ RFC 26
 * CurveZMQ, RFC 32 Z85, RFC 37 ZMTP 3.1 heartbeats; DEPENDENCIES.md §6 (LINGER 0);
 * STYLE.md §7.3 rule 10 (every frame length/type-checked before use);
 * docs/station-keymaker-protocol.md (§5.5: signed audit checkpoints, protocol version 2);
 * docs/internals/kmclient.md (timers and resync). */
#define _POSIX_C_SOURCE 200809L
#include "provline/kmclient/kmclient.h"

#include "provline/protocol/secret.h"
#include "provline/protocol/x509.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define KMC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KMC_PRINTF(a, b)
#endif

#define Z85_KEY_LEN  40u
#define KEY_FILE_MAX 256u
#define DRAIN_MAX    256u /* frames read per poll before yielding to the loop */
#define E(x)         provline_keymaker_ErrorCode_ERROR_##x

enum req_kind {
    REQ_USER = 0,
    REQ_SYNC_HELLO,     /* internal Hello for a resync */
    REQ_PREFETCH_LEASE, /* internal prefetch LeaseRequest */
    REQ_PREFETCH_ACK,   /* internal Ack of prefetched packages */
};

struct req {
    struct req *next;
    uint64_t id, tag;
    enum req_kind kind;
    unsigned body;
    struct pl_kmclient_ident ident;
    bool pinned; /* identity given by the caller: never renumbered pre-emptively */
    uint8_t *frame;
    size_t frame_len;
    bool sent;     /* transmitted at least once under the current identity */
    bool hold;     /* waits for a HelloAck before it may go out again */
    bool released; /* a HelloAck released it: the next due transmission is allowed */
    unsigned attempts, renumbers;
    uint64_t deadline_at, next_at;
    provline_keymaker_Msg *last_err; /* the latest ERROR_INTERNAL reply, retried */
    uint8_t *last_raw;
    size_t last_raw_len;
};

struct done_node {
    struct done_node *next;
    struct pl_kmclient_done d;
};

struct pl_kmclient {
    struct pl_kmclient_config cfg;
    char *endpoint;
    char *station_id;
    uint8_t station_key[PL_KM_STATION_KEY_LEN]; /* our CurveZMQ public key */
    struct pl_eckey *cp_key;                    /* checkpoint signer (checkpoint_cert_file) */
    struct pl_clock_ops clock;
    struct pl_rng rng;
    void *ctx, *sock;

    struct req *head, *tail;
    unsigned n_pending;
    struct done_node *dhead, *dtail;
    uint64_t next_id;

    uint64_t seq_next;     /* the next station seq to assign */
    uint64_t last_seq_ack; /* highest Key Maker seq delivered */
    uint64_t km_seen;      /* HelloAck.last_seq_seen */
    bool synced;
    bool have_hello_ack;
    bool more_to_read;
    provline_keymaker_HelloAck hello_ack;

    uint8_t cand[PL_KMCLIENT_CANDIDATES_MAX][PL_KM_EID_LEN];
    unsigned n_cand;
    struct pl_kmclient_pkg pool[PL_KMCLIENT_POOL_MAX];
    unsigned n_pool;
    bool prefetch_inflight;
    uint64_t prefetch_next_at;

    struct pl_kmclient_stats st;
};

/* ------------------------------------------------------------------ helpers ---- */

static void logf_(const struct pl_kmclient *c, enum pl_kmclient_log_level level, const char *fmt,
                  ...) KMC_PRINTF(3, 4);

static void logf_(const struct pl_kmclient *c, enum pl_kmclient_log_level level, const char *fmt,
                  ...)
{
    char line[512];
    va_list ap;

    if (c->cfg.log == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    c->cfg.log(c->cfg.log_user, level, line);
}

/* First 8 bytes of an id in hex: enough to follow one request through the logs. */
static const char *short_hex(const uint8_t *p, char out[17])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 0x0f];
    }
    out[16] = '\0';
    return out;
}

static uint64_t now_ms(const struct pl_kmclient *c)
{
    return pl_clock_now_ms(&c->clock);
}

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static provline_keymaker_Msg *msg_new(void)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    if (m)
        pl_km_msg_init(m);
    return m;
}

static void msg_free(provline_keymaker_Msg *m)
{
    if (m == NULL)
        return;
    pl_km_msg_release(m);
    free(m);
}

/* Reply body expected for each request body; 0 for bodies that are not requests. */
static unsigned answer_of(unsigned body)
{
    switch (body) {
    case PL_KM_HELLO:
        return PL_KM_HELLO_ACK;
    case PL_KM_OTK_UPLOAD:
        return PL_KM_OTK_UPLOAD_RESULT;
    case PL_KM_LEASE_REQUEST:
        return PL_KM_LEASE;
    case PL_KM_ACK:
        return PL_KM_ACK_RESULT;
    case PL_KM_REPORT:
        return PL_KM_REPORT_ACK;
    case PL_KM_TOKEN_REQUEST:
        return PL_KM_TOKEN;
    case PL_KM_RECEIPT:
        return PL_KM_RECEIPT_ACK;
    default:
        return 0;
    }
}

/* Wait before retransmission after `attempts` transmissions: attempt_ms doubled per
 * attempt, capped at backoff_max_ms, minus a random 0..jitter_pct %. Never 0. */
static uint64_t backoff(struct pl_kmclient *c, unsigned attempts)
{
    uint64_t w = c->cfg.attempt_ms;
    for (unsigned k = 1; k < attempts && w < c->cfg.backoff_max_ms; k++)
        w *= 2u;
    if (w > c->cfg.backoff_max_ms)
        w = c->cfg.backoff_max_ms;
    if (c->cfg.jitter_pct > 0) {
        uint8_t b[4] = {0, 0, 0, 0};
        if (c->rng.fill(c->rng.user, b, sizeof(b)) != PL_OK)
            memset(b, 0, sizeof(b)); /* no jitter rather than no retry */
        uint64_t u = ((uint64_t)b[0] << 24) | ((uint64_t)b[1] << 16) | ((uint64_t)b[2] << 8)
                     | (uint64_t)b[3];
        uint64_t span = w * c->cfg.jitter_pct / 100u;
        w -= (span * u) >> 32;
    }
    return w ? w : 1u;
}

/* ------------------------------------------------------------------- keys ---- */

/* Reads a whole small file into buf: PL_ERR_IO (cannot open or read), PL_ERR_CONFIG (more
 * than cap bytes). */
static int read_small(const char *path, void *buf, size_t cap, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return PL_ERR_IO;
    *n = fread(buf, 1, cap, f);
    bool more = !feof(f) && fgetc(f) != EOF;
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return PL_ERR_IO;
    return more ? PL_ERR_CONFIG : PL_OK;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Reads one Z85 key (40 characters, surrounding whitespace allowed) from a file. */
static int read_z85_file(const char *path, char out[Z85_KEY_LEN + 1])
{
    char buf[KEY_FILE_MAX];
    size_t n = 0;
    int rc = PL_ERR_INTERNAL;

    if ((rc = read_small(path, buf, sizeof(buf) - 1, &n)))
        goto out;
    size_t s = 0, e = n;
    while (s < e && is_space(buf[s]))
        s++;
    while (e > s && is_space(buf[e - 1]))
        e--;
    if (e - s != Z85_KEY_LEN) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    memcpy(out, buf + s, Z85_KEY_LEN);
    out[Z85_KEY_LEN] = '\0';
    rc = PL_OK;
out:
    pl_memzero(buf, sizeof(buf));
    return rc;
}

/* A Z85 key must decode to 32 bytes. */
static bool z85_ok(const char *z)
{
    uint8_t k[32];
    bool ok = strlen(z) == Z85_KEY_LEN && zmq_z85_decode(k, z) != NULL;
    pl_memzero(k, sizeof(k));
    return ok;
}

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? PL_OK : PL_ERR_IO;
}

/* CURVE client options: the pinned server key, our key pair (secret zeroised here). */
static int set_keys(struct pl_kmclient *c)
{
    char server[Z85_KEY_LEN + 1], secret[Z85_KEY_LEN + 1], pub[Z85_KEY_LEN + 1];
    char derived[Z85_KEY_LEN + 1];
    int rc = PL_ERR_INTERNAL;

    memset(secret, 0, sizeof(secret));
    memset(derived, 0, sizeof(derived));
    if (c->cfg.server_public != NULL) {
        if (strlen(c->cfg.server_public) != Z85_KEY_LEN) {
            rc = PL_ERR_CONFIG;
            goto out;
        }
        memcpy(server, c->cfg.server_public, sizeof(server));
    } else if ((rc = read_z85_file(c->cfg.server_public_file, server))) {
        goto out;
    }
    if ((rc = read_z85_file(c->cfg.secret_file, secret)))
        goto out;
    if (!z85_ok(server) || !z85_ok(secret) || zmq_curve_public(derived, secret) != 0) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    if (c->cfg.public_file != NULL) {
        if ((rc = read_z85_file(c->cfg.public_file, pub)))
            goto out;
        if (strcmp(pub, derived) != 0) {
            logf_(c, PL_KMCLIENT_LOG_ERROR, "event=config_error reason=public_key_mismatch");
            rc = PL_ERR_CONFIG;
            goto out;
        }
    }
    if (zmq_z85_decode(c->station_key, derived) == NULL) {
        rc = PL_ERR_CONFIG;
        goto out;
    }
    if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, Z85_KEY_LEN) != 0
        || zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, derived, Z85_KEY_LEN) != 0
        || zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, secret, Z85_KEY_LEN) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    rc = PL_OK;
out:
    pl_memzero(secret, sizeof(secret));
    return rc;
}

/* The public key of the certificate in a DER file (the checkpoint signer). */
static int load_cert_key(const char *path, struct pl_eckey **key)
{
    uint8_t buf[PL_CERT_MAX_DER];
    struct pl_cert *cert = NULL;
    size_t n = 0;
    int rc = PL_ERR_INTERNAL;

    if ((rc = read_small(path, buf, sizeof(buf), &n)))
        return rc;
    if (n == 0)
        return PL_ERR_CONFIG;
    if ((rc = pl_cert_parse(buf, n, &cert)) == PL_OK)
        rc = pl_cert_public_key(cert, key);
    pl_cert_free(cert);
    return rc;
}

/* -------------------------------------------------------------- lifecycle ---- */

void pl_kmclient_config_init(struct pl_kmclient_config *c)
{
    memset(c, 0, sizeof(*c));
    c->attempt_ms = 1000;
    c->backoff_max_ms = 8000;
    c->jitter_pct = 20;
    c->deadline_ms = 30000;
    c->max_inflight = 4;
    c->queue_max = 64;
    c->heartbeat_ms = 2000;
    c->prefetch_idle_ms = 2000;
}

static bool config_ok(const struct pl_kmclient_config *c)
{
    return c->endpoint != NULL && c->endpoint[0] != '\0' && c->secret_file != NULL
           && (c->server_public != NULL || c->server_public_file != NULL) && c->attempt_ms > 0
           && c->backoff_max_ms >= c->attempt_ms && c->jitter_pct <= 100u && c->deadline_ms > 0
           && c->max_inflight >= 1u && c->queue_max >= 1u && c->queue_max <= PL_KMCLIENT_QUEUE_MAX
           && c->prefetch_target <= PL_KMCLIENT_POOL_MAX && c->heartbeat_ms >= 0
           && c->heartbeat_ms <= 3600000 && c->last_seq < UINT64_MAX / 2u;
}

int pl_kmclient_new(const struct pl_kmclient_config *cfg, struct pl_kmclient **out)
{
    struct pl_kmclient *c = NULL;
    int rc = PL_ERR_INTERNAL;

    if (out == NULL || cfg == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (!config_ok(cfg))
        return PL_ERR_CONFIG;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PL_ERR_NOMEM;
    c->cfg = *cfg;
    c->endpoint = dup_str(cfg->endpoint);
    c->station_id = dup_str(cfg->station_id ? cfg->station_id : "provline-station");
    if (c->endpoint == NULL || c->station_id == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    /* Key file names are used only here; do not keep borrowed pointers around. */
    c->cfg.endpoint = c->endpoint;
    c->cfg.station_id = c->station_id;
    c->clock = cfg->clock ? *cfg->clock : PL_CLOCK_MONOTONIC;
    c->rng = cfg->rng ? *cfg->rng : PL_RNG_SYSTEM;
    c->seq_next = cfg->last_seq + 1u;
    c->last_seq_ack = cfg->last_seq_ack;
    c->next_id = 1;

    c->ctx = zmq_ctx_new();
    if (c->ctx == NULL) {
        rc = PL_ERR_IO;
        goto out;
    }
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int64_t maxmsg = (int64_t)PL_KM_FRAME_MAX;
    int rmax = (int)(cfg->backoff_max_ms < 30000u ? cfg->backoff_max_ms : 30000u);
    if (c->sock == NULL || set_int(c->sock, ZMQ_LINGER, 0)
        || zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0
        || set_int(c->sock, ZMQ_RECONNECT_IVL, 100)
        || set_int(c->sock, ZMQ_RECONNECT_IVL_MAX, rmax < 100 ? 100 : rmax)) {
        rc = PL_ERR_IO;
        goto out;
    }
    if (cfg->heartbeat_ms > 0
        && (set_int(c->sock, ZMQ_HEARTBEAT_IVL, cfg->heartbeat_ms)
            || set_int(c->sock, ZMQ_HEARTBEAT_TIMEOUT, cfg->heartbeat_ms * 3))) {
        rc = PL_ERR_IO;
        goto out;
    }
    if ((rc = set_keys(c))) {
        logf_(c, PL_KMCLIENT_LOG_ERROR, "event=config_error reason=\"curve keys: %s\"",
              pl_strerror(rc));
        goto out;
    }
    if (cfg->checkpoint_cert_file != NULL
        && (rc = load_cert_key(cfg->checkpoint_cert_file, &c->cp_key))) {
        logf_(c, PL_KMCLIENT_LOG_ERROR,
              "event=config_error reason=\"checkpoint certificate: %s\"", pl_strerror(rc));
        rc = rc == PL_ERR_IO ? PL_ERR_IO : PL_ERR_CONFIG;
        goto out;
    }
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        logf_(c, PL_KMCLIENT_LOG_ERROR, "event=connect_failed endpoint=\"%s\" error=\"%s\"",
              c->endpoint, zmq_strerror(zmq_errno()));
        rc = PL_ERR_CONFIG;
        goto out;
    }
    c->cfg.server_public = NULL;
    c->cfg.server_public_file = NULL;
    c->cfg.secret_file = NULL;
    c->cfg.public_file = NULL;
    c->cfg.checkpoint_cert_file = NULL;
    logf_(c, PL_KMCLIENT_LOG_INFO, "event=kmclient_started endpoint=\"%s\" station=\"%s\"",
          c->endpoint, c->station_id);
    *out = c;
    c = NULL;
    rc = PL_OK;
out:
    pl_kmclient_free(c);
    return rc;
}

static void req_free(struct req *r)
{
    if (r == NULL)
        return;
    free(r->frame);
    msg_free(r->last_err);
    free(r->last_raw);
    free(r);
}

void pl_kmclient_done_free(struct pl_kmclient_done *d)
{
    if (d == NULL)
        return;
    msg_free(d->reply);
    free(d->raw);
    memset(d, 0, sizeof(*d));
}

void pl_kmclient_pkg_free(struct pl_kmclient_pkg *p)
{
    if (p == NULL)
        return;
    free(p->envelope);
    memset(p, 0, sizeof(*p));
}

void pl_kmclient_free(struct pl_kmclient *c)
{
    if (c == NULL)
        return;
    if (c->sock)
        zmq_close(c->sock);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    while (c->head) {
        struct req *r = c->head;
        c->head = r->next;
        req_free(r);
    }
    while (c->dhead) {
        struct done_node *d = c->dhead;
        c->dhead = d->next;
        pl_kmclient_done_free(&d->d);
        free(d);
    }
    for (unsigned i = 0; i < c->n_pool; i++)
        pl_kmclient_pkg_free(&c->pool[i]);
    pl_eckey_free(c->cp_key);
    free(c->endpoint);
    free(c->station_id);
    free(c);
}

/* ---------------------------------------------------------------- requests ---- */

/* Sets the header and encodes m into a fresh frame. */
static int encode_frame(struct pl_kmclient *c, provline_keymaker_Msg *m,
                        const struct pl_kmclient_ident *ident, uint8_t **frame, size_t *len)
{
    struct pl_wr w;
    int rc = PL_ERR_INTERNAL;

    (void)c;
    memcpy(m->msg_id.bytes, ident->msg_id, PL_KM_ID_LEN);
    m->msg_id.size = PL_KM_ID_LEN;
    m->seq = ident->seq;
    m->reply_to.size = 0;
    m->version = PL_KM_VERSION;
    pl_wr_init_dyn(&w, PL_KM_FRAME_MAX);
    if ((rc = pl_km_msg_encode(m, &w))) {
        pl_wr_free(&w);
        return rc;
    }
    *frame = pl_wr_take(&w, len);
    pl_wr_free(&w);
    return *frame ? PL_OK : PL_ERR_NOMEM;
}

/* A fresh identity: random msg_id; Hello carries seq 0 (it is exempt from the sequence
 * check and must not advance it), every other request the next seq. */
static int new_ident(struct pl_kmclient *c, unsigned body, struct pl_kmclient_ident *id)
{
    int rc = c->rng.fill(c->rng.user, id->msg_id, PL_KM_ID_LEN);
    if (rc)
        return rc;
    id->seq = body == PL_KM_HELLO ? 0u : c->seq_next++;
    return PL_OK;
}

/* now: the caller's notion of the present (a poll passes its own, so what it queues is
 * due within the same poll). */
static int submit(struct pl_kmclient *c, provline_keymaker_Msg *m, uint64_t tag,
                  const struct pl_kmclient_ident *ident, enum req_kind kind, uint64_t now,
                  uint64_t *id, struct pl_kmclient_ident *assigned)
{
    struct req *r = NULL;
    int rc = PL_ERR_INTERNAL;

    if (c == NULL || m == NULL)
        return PL_ERR_INVAL;
    if (answer_of(m->which_body) == 0)
        return PL_ERR_INVAL;
    /* Internal requests may exceed the queue by a few; user ones may not. */
    if (kind == REQ_USER && c->n_pending >= c->cfg.queue_max)
        return PL_ERR_OVERFLOW;
    if (ident != NULL && m->which_body != PL_KM_HELLO && ident->seq == 0)
        return PL_ERR_INVAL;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PL_ERR_NOMEM;
    r->kind = kind;
    r->tag = tag;
    r->body = m->which_body;
    if (ident != NULL) {
        r->ident = *ident;
        r->pinned = true;
        if (m->which_body != PL_KM_HELLO && ident->seq >= c->seq_next)
            c->seq_next = ident->seq + 1u;
    } else if ((rc = new_ident(c, m->which_body, &r->ident))) {
        goto out;
    }
    if ((rc = encode_frame(c, m, &r->ident, &r->frame, &r->frame_len))) {
        /* Nothing left: give the seq back so the sequence stays dense. */
        if (ident == NULL && m->which_body != PL_KM_HELLO && c->seq_next == r->ident.seq + 1u)
            c->seq_next--;
        goto out;
    }
    r->id = c->next_id++;
    r->deadline_at = now + c->cfg.deadline_ms;
    r->next_at = now;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->n_pending++;
    c->st.submitted++;
    if (id)
        *id = r->id;
    if (assigned)
        *assigned = r->ident;
    char h[17];
    logf_(c, PL_KMCLIENT_LOG_DEBUG, "event=request_queued id=%llu msg=%s mid=%s seq=%llu",
          (unsigned long long)r->id, pl_km_body_name(r->body), short_hex(r->ident.msg_id, h),
          (unsigned long long)r->ident.seq);
    r = NULL;
    rc = PL_OK;
out:
    req_free(r);
    return rc;
}

int pl_kmclient_submit(struct pl_kmclient *c, provline_keymaker_Msg *m, uint64_t tag,
                       const struct pl_kmclient_ident *ident, uint64_t *id,
                       struct pl_kmclient_ident *assigned)
{
    if (c == NULL)
        return PL_ERR_INVAL;
    return submit(c, m, tag, ident, REQ_USER, now_ms(c), id, assigned);
}

static void unlink_req(struct pl_kmclient *c, struct req *r)
{
    struct req *prev = NULL;
    for (struct req *p = c->head; p; prev = p, p = p->next) {
        if (p != r)
            continue;
        if (prev)
            prev->next = p->next;
        else
            c->head = p->next;
        if (c->tail == p)
            c->tail = prev;
        c->n_pending--;
        return;
    }
}

static void on_internal_done(struct pl_kmclient *c, struct req *r, struct pl_kmclient_done *d);

/* Finishes r (unlinks and frees it): takes reply and raw. User requests go to the
 * completion queue, internal ones to their handler. */
static void complete(struct pl_kmclient *c, struct req *r, int status, int km_error,
                     provline_keymaker_Msg *reply, uint8_t *raw, size_t raw_len)
{
    struct done_node *n = calloc(1, sizeof(*n));
    char h[17];

    unlink_req(c, r);
    c->st.completed++;
    if (status == PL_ERR_TIMEOUT && r->kind == REQ_USER)
        c->st.timeouts++;
    logf_(c, status == PL_OK ? PL_KMCLIENT_LOG_DEBUG : PL_KMCLIENT_LOG_WARN,
          "event=request_done id=%llu msg=%s mid=%s seq=%llu attempts=%u status=\"%s\"%s%s",
          (unsigned long long)r->id, pl_km_body_name(r->body), short_hex(r->ident.msg_id, h),
          (unsigned long long)r->ident.seq, r->attempts, pl_strerror(status),
          status == PL_ERR_REMOTE ? " km_error=" : "",
          status == PL_ERR_REMOTE ? pl_km_error_name(km_error) : "");
    struct pl_kmclient_done tmp;
    struct pl_kmclient_done *d = n ? &n->d : &tmp;
    memset(d, 0, sizeof(*d));
    d->id = r->id;
    d->tag = r->tag;
    d->request = r->body;
    d->status = status;
    d->km_error = km_error;
    d->ident = r->ident;
    d->attempts = r->attempts;
    d->reply = reply;
    d->raw = raw;
    d->raw_len = raw_len;
    if (r->kind != REQ_USER) {
        on_internal_done(c, r, d);
        pl_kmclient_done_free(d);
        free(n);
    } else if (n == NULL) {
        /* Out of memory: the completion cannot be queued; say so loudly. */
        logf_(c, PL_KMCLIENT_LOG_ERROR, "event=completion_lost id=%llu reason=nomem",
              (unsigned long long)r->id);
        pl_kmclient_done_free(d);
    } else {
        if (c->dtail)
            c->dtail->next = n;
        else
            c->dhead = n;
        c->dtail = n;
    }
    req_free(r);
}

bool pl_kmclient_next(struct pl_kmclient *c, struct pl_kmclient_done *out)
{
    if (c == NULL || out == NULL || c->dhead == NULL)
        return false;
    struct done_node *n = c->dhead;
    c->dhead = n->next;
    if (c->dhead == NULL)
        c->dtail = NULL;
    *out = n->d;
    free(n);
    return true;
}

int pl_kmclient_take(struct pl_kmclient *c, uint64_t id, struct pl_kmclient_done *out)
{
    struct done_node *prev = NULL;

    if (c == NULL || out == NULL)
        return PL_ERR_INVAL;
    for (struct done_node *n = c->dhead; n; prev = n, n = n->next) {
        if (n->d.id != id)
            continue;
        if (prev)
            prev->next = n->next;
        else
            c->dhead = n->next;
        if (c->dtail == n)
            c->dtail = prev;
        *out = n->d;
        free(n);
        return PL_OK;
    }
    return PL_ERR_NOT_FOUND;
}

static bool is_pending(const struct pl_kmclient *c, uint64_t id)
{
    for (const struct req *r = c->head; r; r = r->next)
        if (r->id == id)
            return true;
    return false;
}

/* New identity for a request the Key Maker refused with STALE_SEQ (so it never processed
 * it: a processed msg_id is answered from the dedup record before the seq check) or that
 * never left with a seq the Key Maker has already passed. */
static int renumber(struct pl_kmclient *c, struct req *r)
{
    provline_keymaker_Msg *m = msg_new();
    struct pl_kmclient_ident id;
    uint8_t *frame = NULL;
    size_t len = 0;
    int rc = PL_ERR_INTERNAL;

    if (m == NULL)
        return PL_ERR_NOMEM;
    if ((rc = pl_km_msg_decode(r->frame, r->frame_len, m)))
        goto out;
    if ((rc = new_ident(c, r->body, &id)))
        goto out;
    if ((rc = encode_frame(c, m, &id, &frame, &len)))
        goto out;
    char a[17], b[17];
    logf_(c, PL_KMCLIENT_LOG_INFO,
          "event=request_renumbered id=%llu msg=%s old_mid=%s old_seq=%llu mid=%s seq=%llu",
          (unsigned long long)r->id, pl_km_body_name(r->body), short_hex(r->ident.msg_id, a),
          (unsigned long long)r->ident.seq, short_hex(id.msg_id, b), (unsigned long long)id.seq);
    free(r->frame);
    r->frame = frame;
    r->frame_len = len;
    r->ident = id;
    r->sent = false;
    c->st.renumbered++;
    rc = PL_OK;
out:
    msg_free(m);
    return rc;
}

/* ---------------------------------------------------------- typed requests ---- */

static int typed(struct pl_kmclient *c, provline_keymaker_Msg *m, int build_rc, uint64_t tag,
                 uint64_t *id)
{
    int rc = build_rc ? build_rc : pl_kmclient_submit(c, m, tag, NULL, id, NULL);
    msg_free(m);
    return rc;
}

int pl_kmclient_send_hello(struct pl_kmclient *c, uint64_t tag, uint64_t *id)
{
    if (c == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    m->which_body = PL_KM_HELLO;
    pl_km_set_str(m->body.hello.station_id, sizeof(m->body.hello.station_id), c->station_id);
    m->body.hello.last_seq_ack = c->last_seq_ack;
    return typed(c, m, PL_OK, tag, id);
}

static int build_upload(provline_keymaker_Msg *m, const struct pl_es10f_info *info)
{
    provline_keymaker_OtkUpload *u = &m->body.otk_upload;
    int rc = PL_ERR_INTERNAL;

    m->which_body = PL_KM_OTK_UPLOAD;
    if (info->n_otk == 0 || info->n_otk > sizeof(u->otks) / sizeof(u->otks[0]))
        return PL_ERR_INVAL;
    if ((rc = PL_KM_SET_BYTES(u->eid, info->eid, PL_KM_EID_LEN))
        || (rc = PL_KM_SET_BYTES(u->cert_euicc, info->cert_euicc.der, info->cert_euicc.len))
        || (rc = PL_KM_SET_BYTES(u->cert_eum, info->cert_eum.der, info->cert_eum.len)))
        return rc;
    for (size_t i = 0; i < info->n_otk; i++) {
        u->otks[i].otk_id = info->otk[i].otk_id;
        if ((rc = PL_KM_SET_BYTES(u->otks[i].otpk, info->otk[i].otpk, PL_KM_OTPK_LEN))
            || (rc = PL_KM_SET_BYTES(u->otks[i].sig, info->otk[i].sig, PL_KM_SIG_LEN)))
            return rc;
    }
    u->otks_count = (pb_size_t)info->n_otk;
    return PL_OK;
}

int pl_kmclient_send_upload(struct pl_kmclient *c, const struct pl_es10f_info *info, uint64_t tag,
                            uint64_t *id)
{
    if (c == NULL || info == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    return typed(c, m, build_upload(m, info), tag, id);
}

int pl_kmclient_send_lease_jit(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                               uint16_t otk_id, uint64_t tag, uint64_t *id)
{
    if (c == NULL || eid == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    provline_keymaker_LeaseRequest *q = &m->body.lease_request;
    m->which_body = PL_KM_LEASE_REQUEST;
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    q->otk_id = otk_id;
    return typed(c, m, PL_KM_SET_BYTES(q->eid, eid, PL_KM_EID_LEN), tag, id);
}

static int build_prefetch(provline_keymaker_Msg *m, const uint8_t *eids, size_t n, unsigned max)
{
    provline_keymaker_LeaseRequest *q = &m->body.lease_request;
    int rc = PL_ERR_INTERNAL;

    m->which_body = PL_KM_LEASE_REQUEST;
    q->mode = provline_keymaker_LeaseMode_LEASE_MODE_PREFETCH;
    if (eids == NULL || n == 0 || n > sizeof(q->eids) / sizeof(q->eids[0]))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        if ((rc = PL_KM_SET_BYTES(q->eids[i], eids + i * PL_KM_EID_LEN, PL_KM_EID_LEN)))
            return rc;
    q->eids_count = (pb_size_t)n;
    q->max_packages = max;
    return PL_OK;
}

int pl_kmclient_send_lease_prefetch(struct pl_kmclient *c, const uint8_t *eids, size_t n,
                                    unsigned max, uint64_t tag, uint64_t *id)
{
    if (c == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    return typed(c, m, build_prefetch(m, eids, n, max), tag, id);
}

static int build_ack(provline_keymaker_Msg *m, const uint8_t lease_id[PL_KM_ID_LEN],
                     const uint8_t *ids, size_t n)
{
    provline_keymaker_Ack *a = &m->body.ack;
    int rc = PL_ERR_INTERNAL;

    m->which_body = PL_KM_ACK;
    if (lease_id == NULL || ids == NULL || n == 0
        || n > sizeof(a->package_ids) / sizeof(a->package_ids[0]))
        return PL_ERR_INVAL;
    if ((rc = PL_KM_SET_BYTES(a->lease_id, lease_id, PL_KM_ID_LEN)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = PL_KM_SET_BYTES(a->package_ids[i], ids + i * PL_KM_ID_LEN, PL_KM_ID_LEN)))
            return rc;
    a->package_ids_count = (pb_size_t)n;
    return PL_OK;
}

int pl_kmclient_send_ack(struct pl_kmclient *c, const uint8_t lease_id[PL_KM_ID_LEN],
                         const uint8_t *package_ids, size_t n, uint64_t tag, uint64_t *id)
{
    if (c == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    return typed(c, m, build_ack(m, lease_id, package_ids, n), tag, id);
}

static int build_report(provline_keymaker_Msg *m, const provline_keymaker_ReportEntry *entries,
                        size_t n, const struct pl_km_audit_head *audit)
{
    provline_keymaker_Report *r = &m->body.report;

    m->which_body = PL_KM_REPORT;
    if (entries == NULL || n == 0 || n > sizeof(r->entries) / sizeof(r->entries[0]))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++)
        r->entries[i] = entries[i];
    r->entries_count = (pb_size_t)n;
    return audit ? pl_km_report_set_audit(r, audit) : PL_OK;
}

int pl_kmclient_send_report(struct pl_kmclient *c, const provline_keymaker_ReportEntry *entries,
                            size_t n, const struct pl_km_audit_head *audit, uint64_t tag,
                            uint64_t *id)
{
    if (c == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    return typed(c, m, build_report(m, entries, n, audit), tag, id);
}

int pl_kmclient_send_token_request(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                                   uint64_t tag, uint64_t *id)
{
    if (c == NULL || eid == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    m->which_body = PL_KM_TOKEN_REQUEST;
    return typed(c, m, PL_KM_SET_BYTES(m->body.otk_deletion_token_request.eid, eid, PL_KM_EID_LEN),
                 tag, id);
}

int pl_kmclient_send_receipt(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                             uint64_t counter, const uint8_t *response, size_t len, uint64_t tag,
                             uint64_t *id)
{
    if (c == NULL || eid == NULL || response == NULL)
        return PL_ERR_INVAL;
    provline_keymaker_Msg *m = msg_new();
    if (m == NULL)
        return PL_ERR_NOMEM;
    provline_keymaker_OtkDeletionReceipt *r = &m->body.otk_deletion_receipt;
    m->which_body = PL_KM_RECEIPT;
    r->counter = counter;
    int rc = PL_KM_SET_BYTES(r->eid, eid, PL_KM_EID_LEN);
    if (rc == PL_OK)
        rc = PL_KM_SET_BYTES(r->response, response, len);
    return typed(c, m, rc, tag, id);
}

/* ---------------------------------------------------------------- prefetch ---- */

static int cand_find(const struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN])
{
    for (unsigned i = 0; i < c->n_cand; i++)
        if (memcmp(c->cand[i], eid, PL_KM_EID_LEN) == 0)
            return (int)i;
    return -1;
}

static int pool_find(const struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN])
{
    for (unsigned i = 0; i < c->n_pool; i++)
        if (memcmp(c->pool[i].eid, eid, PL_KM_EID_LEN) == 0)
            return (int)i;
    return -1;
}

int pl_kmclient_prefetch_add(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN])
{
    if (c == NULL || eid == NULL)
        return PL_ERR_INVAL;
    if (cand_find(c, eid) >= 0)
        return PL_ERR_EXISTS;
    if (c->n_cand >= PL_KMCLIENT_CANDIDATES_MAX)
        return PL_ERR_OVERFLOW;
    memcpy(c->cand[c->n_cand++], eid, PL_KM_EID_LEN);
    return PL_OK;
}

void pl_kmclient_prefetch_remove(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN])
{
    if (c == NULL || eid == NULL)
        return;
    int i = cand_find(c, eid);
    if (i < 0)
        return;
    memmove(c->cand[i], c->cand[i + 1], (size_t)(c->n_cand - (unsigned)i - 1u) * PL_KM_EID_LEN);
    c->n_cand--;
}

unsigned pl_kmclient_prefetch_ready(const struct pl_kmclient *c)
{
    return c ? c->n_pool : 0u;
}

bool pl_kmclient_prefetch_busy(const struct pl_kmclient *c)
{
    return c != NULL && c->prefetch_inflight;
}

int pl_kmclient_prefetch_take(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                              struct pl_kmclient_pkg *out)
{
    if (c == NULL || eid == NULL || out == NULL)
        return PL_ERR_INVAL;
    int i = pool_find(c, eid);
    if (i < 0)
        return PL_ERR_NOT_FOUND;
    *out = c->pool[i];
    c->pool[i] = c->pool[c->n_pool - 1u];
    memset(&c->pool[c->n_pool - 1u], 0, sizeof(c->pool[0]));
    c->n_pool--;
    pl_kmclient_prefetch_remove(c, eid);
    return PL_OK;
}

int pl_kmclient_pkg_from_lease(const provline_keymaker_Lease *l, size_t i,
                               struct pl_kmclient_pkg *out)
{
    if (l == NULL || out == NULL || i >= l->packages_count)
        return PL_ERR_INVAL;
    const provline_keymaker_Package *p = &l->packages[i];
    memset(out, 0, sizeof(*out));
    if (l->lease_id.size != PL_KM_ID_LEN || p->package_id.size != PL_KM_ID_LEN
        || p->eid.size != PL_KM_EID_LEN || p->transaction_id.size == 0
        || p->transaction_id.size > PL_KM_TID_MAX || p->iccid.size != PL_KM_ICCID_LEN
        || p->envelope == NULL || p->envelope->size == 0 || p->otk_id == 0 || p->otk_id > 0xFFFFu)
        return PL_ERR_MALFORMED;
    memcpy(out->package_id, p->package_id.bytes, PL_KM_ID_LEN);
    memcpy(out->lease_id, l->lease_id.bytes, PL_KM_ID_LEN);
    memcpy(out->eid, p->eid.bytes, PL_KM_EID_LEN);
    out->otk_id = (uint16_t)p->otk_id;
    memcpy(out->transaction_id, p->transaction_id.bytes, p->transaction_id.size);
    out->tid_len = p->transaction_id.size;
    memcpy(out->iccid, p->iccid.bytes, PL_KM_ICCID_LEN);
    out->expiry = l->expiry;
    out->envelope = malloc(p->envelope->size);
    if (out->envelope == NULL)
        return PL_ERR_NOMEM;
    memcpy(out->envelope, p->envelope->bytes, p->envelope->size);
    out->envelope_len = p->envelope->size;
    return PL_OK;
}

/* Candidates without a pooled package, in order, up to cap; returns how many. */
static size_t eligible(const struct pl_kmclient *c, uint8_t *eids, size_t cap)
{
    size_t n = 0;
    for (unsigned i = 0; i < c->n_cand && n < cap; i++) {
        if (pool_find(c, c->cand[i]) >= 0)
            continue;
        memcpy(eids + n * PL_KM_EID_LEN, c->cand[i], PL_KM_EID_LEN);
        n++;
    }
    return n;
}

/* Prefetch has something to ask for (timer aside). */
static bool prefetch_could(const struct pl_kmclient *c)
{
    if (c->cfg.prefetch_target == 0 || c->prefetch_inflight || c->n_pool >= c->cfg.prefetch_target)
        return false;
    for (unsigned i = 0; i < c->n_cand; i++)
        if (pool_find(c, c->cand[i]) < 0)
            return true;
    return false;
}

static bool prefetch_wanted(const struct pl_kmclient *c, uint64_t now)
{
    return now >= c->prefetch_next_at && prefetch_could(c);
}

static void prefetch_pass(struct pl_kmclient *c, uint64_t now)
{
    uint8_t eids[PL_KM_PREFETCH_MAX * PL_KM_EID_LEN];

    if (!c->synced || !prefetch_wanted(c, now))
        return;
    size_t n = eligible(c, eids, PL_KM_PREFETCH_MAX);
    unsigned want = c->cfg.prefetch_target - c->n_pool;
    if (want > PL_KM_PREFETCH_MAX)
        want = PL_KM_PREFETCH_MAX;
    if (want > n)
        want = (unsigned)n;
    provline_keymaker_Msg *m = msg_new();
    int rc = m ? build_prefetch(m, eids, n, want) : PL_ERR_NOMEM;
    if (rc == PL_OK)
        rc = submit(c, m, 0, NULL, REQ_PREFETCH_LEASE, now, NULL, NULL);
    msg_free(m);
    if (rc) {
        logf_(c, PL_KMCLIENT_LOG_ERROR, "event=prefetch_failed error=\"%s\"", pl_strerror(rc));
        c->prefetch_next_at = now + c->cfg.prefetch_idle_ms;
        return;
    }
    c->prefetch_inflight = true;
    c->st.prefetch_requests++;
    logf_(c, PL_KMCLIENT_LOG_DEBUG, "event=prefetch_request candidates=%zu max=%u pooled=%u", n,
          want, c->n_pool);
}

static void prefetch_lease_done(struct pl_kmclient *c, const struct pl_kmclient_done *d)
{
    uint8_t ids[PL_KM_PREFETCH_MAX * PL_KM_ID_LEN];
    size_t n_ids = 0;
    uint64_t now = now_ms(c);

    c->prefetch_inflight = false;
    if (d->status != PL_OK) {
        c->prefetch_next_at = now + c->cfg.prefetch_idle_ms;
        return;
    }
    const provline_keymaker_Lease *l = &d->reply->body.lease;
    for (pb_size_t i = 0; i < l->packages_count; i++) {
        struct pl_kmclient_pkg p;
        char h[17];
        int rc = pl_kmclient_pkg_from_lease(l, i, &p);
        if (rc == PL_OK && c->n_pool >= PL_KMCLIENT_POOL_MAX)
            rc = PL_ERR_OVERFLOW;
        if (rc == PL_OK && c->cfg.journal && c->cfg.journal(c->cfg.journal_user, &p) != 0)
            rc = PL_ERR_IO;
        if (rc) {
            /* Not acknowledged: the Key Maker turns it "possibly used" at lease expiry. */
            c->st.prefetch_dropped++;
            logf_(c, PL_KMCLIENT_LOG_ERROR,
                  "event=prefetch_package_dropped package=%s error=\"%s\"",
                  short_hex(l->packages[i].package_id.bytes, h), pl_strerror(rc));
            pl_kmclient_pkg_free(&p);
            continue;
        }
        memcpy(ids + n_ids * PL_KM_ID_LEN, p.package_id, PL_KM_ID_LEN);
        n_ids++;
        c->pool[c->n_pool++] = p;
        c->st.prefetch_packages++;
        logf_(c, PL_KMCLIENT_LOG_INFO, "event=package_prefetched package=%s otk_id=%u state=LEASED",
              short_hex(p.package_id, h), (unsigned)p.otk_id);
    }
    if (n_ids > 0) {
        provline_keymaker_Msg *m = msg_new();
        int rc = m ? build_ack(m, l->lease_id.bytes, ids, n_ids) : PL_ERR_NOMEM;
        if (rc == PL_OK)
            rc = submit(c, m, 0, NULL, REQ_PREFETCH_ACK, now, NULL, NULL);
        msg_free(m);
        if (rc)
            logf_(c, PL_KMCLIENT_LOG_ERROR, "event=prefetch_ack_failed error=\"%s\"",
                  pl_strerror(rc));
    }
    /* Something came: ask again at once if still short; nothing came: wait. */
    c->prefetch_next_at = l->packages_count > 0 ? now : now + c->cfg.prefetch_idle_ms;
}

static void on_internal_done(struct pl_kmclient *c, struct req *r, struct pl_kmclient_done *d)
{
    switch (r->kind) {
    case REQ_PREFETCH_LEASE:
        prefetch_lease_done(c, d);
        break;
    case REQ_PREFETCH_ACK:
        if (d->status == PL_OK && d->reply->body.ack_result.unknown_count > 0)
            logf_(c, PL_KMCLIENT_LOG_WARN, "event=prefetch_ack_unknown count=%u",
                  (unsigned)d->reply->body.ack_result.unknown_count);
        break;
    case REQ_SYNC_HELLO:
    case REQ_USER:
    default:
        break; /* a HelloAck was applied when it arrived */
    }
}

/* ----------------------------------------------------------------- replies ---- */

static bool same_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && memcmp(a, b, an) == 0;
}

/* A ReportAck's checkpoint is the one the Report asked for: this station's key and the
 * report's chain id, seq and head; none (and no refusal) when nothing was asked. */
static bool checkpoint_ok(const struct pl_kmclient *c, const provline_keymaker_Report *q,
                          const provline_keymaker_ReportAck *a)
{
    const provline_keymaker_AuditCheckpoint *cp = &a->checkpoint;
    if (q->audit_chain_id.size == 0)
        return !a->has_checkpoint && a->checkpoint_refused == 0;
    if (!a->has_checkpoint)
        return true;
    return same_bytes(cp->station_key.bytes, cp->station_key.size, c->station_key,
                      PL_KM_STATION_KEY_LEN)
           && same_bytes(cp->chain_id.bytes, cp->chain_id.size, q->audit_chain_id.bytes,
                         q->audit_chain_id.size)
           && cp->seq == q->audit_seq
           && same_bytes(cp->head.bytes, cp->head.size, q->audit_head.bytes, q->audit_head.size);
}

/* Does the reply agree with the request it answers? (A Key Maker bug or a confused
 * routing must not hand the station a package for another chip.) */
static bool answer_ok(const struct pl_kmclient *c, const provline_keymaker_Msg *q,
                      const provline_keymaker_Msg *a)
{
    switch (q->which_body) {
    case PL_KM_HELLO:
        return true;
    case PL_KM_OTK_UPLOAD: {
        const provline_keymaker_OtkUploadResult *r = &a->body.otk_upload_result;
        const provline_keymaker_OtkUpload *u = &q->body.otk_upload;
        if (!same_bytes(r->eid.bytes, r->eid.size, u->eid.bytes, u->eid.size)
            || (size_t)r->accepted_count + r->rejected_count > u->otks_count)
            return false;
        return true;
    }
    case PL_KM_LEASE_REQUEST: {
        const provline_keymaker_LeaseRequest *lq = &q->body.lease_request;
        const provline_keymaker_Lease *l = &a->body.lease;
        if (lq->mode == provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME) {
            return l->packages_count == 1
                   && same_bytes(l->packages[0].eid.bytes, l->packages[0].eid.size, lq->eid.bytes,
                                 lq->eid.size)
                   && l->packages[0].otk_id == lq->otk_id;
        }
        if (l->packages_count > lq->max_packages)
            return false;
        for (pb_size_t i = 0; i < l->packages_count; i++) {
            bool listed = false, dup = false;
            for (pb_size_t j = 0; j < lq->eids_count; j++)
                listed = listed
                         || same_bytes(l->packages[i].eid.bytes, l->packages[i].eid.size,
                                       lq->eids[j].bytes, lq->eids[j].size);
            for (pb_size_t j = 0; j < i; j++)
                dup = dup
                      || same_bytes(l->packages[i].eid.bytes, l->packages[i].eid.size,
                                    l->packages[j].eid.bytes, l->packages[j].eid.size);
            if (!listed || dup)
                return false;
        }
        return true;
    }
    case PL_KM_ACK: {
        const provline_keymaker_AckResult *r = &a->body.ack_result;
        return same_bytes(r->lease_id.bytes, r->lease_id.size, q->body.ack.lease_id.bytes,
                          q->body.ack.lease_id.size)
               && (size_t)r->acked_count + r->unknown_count == q->body.ack.package_ids_count;
    }
    case PL_KM_REPORT: {
        const provline_keymaker_ReportAck *r = &a->body.report_ack;
        if (r->results_count != q->body.report.entries_count)
            return false;
        for (pb_size_t i = 0; i < r->results_count; i++)
            if (!same_bytes(r->results[i].package_id.bytes, r->results[i].package_id.size,
                            q->body.report.entries[i].package_id.bytes,
                            q->body.report.entries[i].package_id.size))
                return false;
        return checkpoint_ok(c, &q->body.report, r);
    }
    case PL_KM_TOKEN_REQUEST:
        return same_bytes(a->body.otk_deletion_token.eid.bytes, a->body.otk_deletion_token.eid.size,
                          q->body.otk_deletion_token_request.eid.bytes,
                          q->body.otk_deletion_token_request.eid.size);
    case PL_KM_RECEIPT:
        return same_bytes(
            a->body.otk_deletion_receipt_ack.eid.bytes, a->body.otk_deletion_receipt_ack.eid.size,
            q->body.otk_deletion_receipt.eid.bytes, q->body.otk_deletion_receipt.eid.size);
    default:
        return false;
    }
}

static void on_hello_ack(struct pl_kmclient *c, const provline_keymaker_Msg *m, uint64_t now)
{
    const provline_keymaker_HelloAck *a = &m->body.hello_ack;
    /* The Key Maker's seq towards us: the field when set, else the reply's own seq (the
     * latest it has used). Below what we already processed = its state went back. */
    uint64_t km_seq = a->keymaker_seq > m->seq ? a->keymaker_seq : m->seq;
    if (km_seq < c->last_seq_ack) {
        c->st.keymaker_rollback = true;
        logf_(c, PL_KMCLIENT_LOG_ERROR,
              "event=keymaker_rollback keymaker_seq=%llu last_seq_ack=%llu",
              (unsigned long long)km_seq, (unsigned long long)c->last_seq_ack);
    }
    c->km_seen = a->last_seq_seen;
    if (a->last_seq_seen < UINT64_MAX / 2u && c->seq_next <= a->last_seq_seen)
        c->seq_next = a->last_seq_seen + 1u;
    c->hello_ack = *a;
    c->have_hello_ack = true;
    if (!c->synced)
        c->st.resyncs++;
    c->synced = true;
    unsigned released = 0;
    for (struct req *r = c->head; r; r = r->next) {
        if (!r->hold)
            continue;
        r->hold = false;
        r->released = true;
        r->next_at = now;
        released++;
    }
    logf_(c, PL_KMCLIENT_LOG_INFO,
          "event=synced keymaker=\"%s\" last_seq_seen=%llu next_seq=%llu outstanding=%u%s "
          "released=%u",
          a->keymaker_id, (unsigned long long)a->last_seq_seen, (unsigned long long)c->seq_next,
          (unsigned)a->outstanding_count, a->outstanding_truncated ? "+" : "", released);
}

/* The checkpoint's signature, with the configured signer's key. One that does not verify
 * is taken out of the reply: the entry results stand (they rest on the eUICC's
 * signatures), but the station must not store a checkpoint it cannot prove. */
static void check_checkpoint(struct pl_kmclient *c, const struct req *r,
                             provline_keymaker_ReportAck *a)
{
    if (c->cp_key == NULL) {
        c->st.checkpoints_unchecked++;
        return;
    }
    int rc = pl_km_checkpoint_verify(c->cp_key, &a->checkpoint);
    if (rc == PL_OK) {
        c->st.checkpoints_verified++;
        return;
    }
    c->st.checkpoints_rejected++;
    logf_(c, PL_KMCLIENT_LOG_ERROR,
          "event=checkpoint_rejected id=%llu seq=%llu reason=\"%s\" action=removed",
          (unsigned long long)r->id, (unsigned long long)a->checkpoint.seq, pl_strerror(rc));
    memset(&a->checkpoint, 0, sizeof(a->checkpoint));
    a->has_checkpoint = false;
}

static struct req *find_req(struct pl_kmclient *c, const uint8_t msg_id[PL_KM_ID_LEN])
{
    for (struct req *r = c->head; r; r = r->next)
        if (memcmp(r->ident.msg_id, msg_id, PL_KM_ID_LEN) == 0)
            return r;
    return NULL;
}

static void on_frame(struct pl_kmclient *c, const uint8_t *data, size_t len)
{
    provline_keymaker_Msg *m = msg_new(), *q = NULL;
    uint8_t *raw = NULL;
    uint64_t now = now_ms(c);
    char h[17];

    if (m == NULL) {
        c->st.dropped_frames++;
        return;
    }
    int rc = pl_km_msg_decode(data, len, m); /* releases m on failure */
    if (rc != PL_OK) {
        c->st.dropped_frames++;
        logf_(c, PL_KMCLIENT_LOG_WARN, "event=frame_dropped bytes=%zu reason=\"%s\"", len,
              pl_strerror(rc));
        goto out;
    }
    if (m->reply_to.size != PL_KM_ID_LEN) {
        c->st.dropped_frames++;
        logf_(c, PL_KMCLIENT_LOG_WARN, "event=frame_dropped msg=%s reason=not_a_reply",
              pl_km_body_name(m->which_body));
        goto out;
    }
    struct req *r = find_req(c, m->reply_to.bytes);
    if (r == NULL) {
        /* The answer to an earlier copy of a request already answered, or to an identity
         * replaced by a renumbering. */
        c->st.duplicate_replies++;
        logf_(c, PL_KMCLIENT_LOG_DEBUG, "event=reply_ignored mid=%s reason=no_pending_request",
              short_hex(m->reply_to.bytes, h));
        goto out;
    }
    c->st.replies++;
    if (m->which_body == PL_KM_ERROR) {
        int code = (int)m->body.error.code;
        if (code == E(STALE_SEQ) && r->body != PL_KM_HELLO
            && r->renumbers < PL_KMCLIENT_RENUMBER_MAX) {
            r->renumbers++;
            if ((rc = renumber(c, r)) == PL_OK) {
                r->hold = false;
                r->released = true;
                r->next_at = now;
                goto out;
            }
            msg_free(m);
            m = NULL;
            complete(c, r, rc, 0, NULL, NULL, 0);
            goto out;
        }
        if (code == E(INTERNAL)) {
            /* Not recorded by the Key Maker: the same msg_id is processed afresh later. */
            msg_free(r->last_err);
            free(r->last_raw);
            r->last_raw = malloc(len);
            if (r->last_raw)
                memcpy(r->last_raw, data, len);
            r->last_raw_len = r->last_raw ? len : 0;
            r->last_err = m;
            m = NULL;
            r->hold = false;
            r->released = true; /* a retry of this msg_id, not a missing reply */
            r->next_at = now + backoff(c, r->attempts);
            logf_(c, PL_KMCLIENT_LOG_WARN, "event=keymaker_internal_error id=%llu retry_in_ms=%llu",
                  (unsigned long long)r->id, (unsigned long long)(r->next_at - now));
            goto out;
        }
    }
    if (m->seq > c->last_seq_ack)
        c->last_seq_ack = m->seq;
    raw = malloc(len ? len : 1u);
    if (raw == NULL) {
        complete(c, r, PL_ERR_NOMEM, 0, NULL, NULL, 0);
        goto out;
    }
    memcpy(raw, data, len);
    if (m->which_body == PL_KM_ERROR) {
        int code = (int)m->body.error.code;
        complete(c, r, PL_ERR_REMOTE, code, m, raw, len);
        m = NULL;
        raw = NULL;
        goto out;
    }
    q = msg_new();
    bool ok = q != NULL && m->which_body == answer_of(r->body)
              && pl_km_msg_decode(r->frame, r->frame_len, q) == PL_OK && answer_ok(c, q, m);
    if (!ok) {
        logf_(c, PL_KMCLIENT_LOG_ERROR,
              "event=reply_refused id=%llu msg=%s reply=%s "
              "reason=contradicts_request",
              (unsigned long long)r->id, pl_km_body_name(r->body), pl_km_body_name(m->which_body));
        complete(c, r, PL_ERR_MALFORMED, 0, m, raw, len);
        m = NULL;
        raw = NULL;
        goto out;
    }
    if (m->which_body == PL_KM_HELLO_ACK)
        on_hello_ack(c, m, now);
    if (m->which_body == PL_KM_REPORT_ACK && m->body.report_ack.has_checkpoint)
        check_checkpoint(c, r, &m->body.report_ack);
    complete(c, r, PL_OK, 0, m, raw, len);
    m = NULL;
    raw = NULL;
out:
    msg_free(q);
    msg_free(m);
    free(raw);
}

/* Reads frames until the socket has none (or DRAIN_MAX, then the loop is told to come
 * back at once). Each must be exactly one frame. */
static int drain(struct pl_kmclient *c)
{
    c->more_to_read = false;
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, c->sock, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&f);
            if (e == EAGAIN)
                return PL_OK;
            if (e == EINTR)
                continue;
            logf_(c, PL_KMCLIENT_LOG_ERROR, "event=recv_failed error=\"%s\"", zmq_strerror(e));
            return PL_ERR_IO;
        }
        if (zmq_msg_more(&f)) {
            /* A DEALER reply is one frame; read the rest of this message and drop it. */
            bool more = true;
            while (more) {
                zmq_msg_close(&f);
                zmq_msg_init(&f);
                if (zmq_msg_recv(&f, c->sock, ZMQ_DONTWAIT) < 0)
                    break;
                more = zmq_msg_more(&f);
            }
            zmq_msg_close(&f);
            c->st.dropped_frames++;
            logf_(c, PL_KMCLIENT_LOG_WARN, "event=frame_dropped reason=more_than_one_frame");
            continue;
        }
        size_t n = zmq_msg_size(&f);
        if (n > PL_KM_FRAME_MAX) {
            c->st.dropped_frames++;
            logf_(c, PL_KMCLIENT_LOG_WARN, "event=frame_dropped bytes=%zu reason=too_big", n);
        } else {
            on_frame(c, zmq_msg_data(&f), n);
        }
        zmq_msg_close(&f);
    }
    c->more_to_read = true;
    return PL_OK;
}

/* ------------------------------------------------------------------ timers ---- */

static void deadlines(struct pl_kmclient *c, uint64_t now)
{
    struct req *r = c->head;
    while (r) {
        struct req *next = r->next;
        if (now >= r->deadline_at) {
            if (r->last_err) {
                provline_keymaker_Msg *m = r->last_err;
                uint8_t *raw = r->last_raw;
                size_t n = r->last_raw_len;
                r->last_err = NULL;
                r->last_raw = NULL;
                complete(c, r, PL_ERR_REMOTE, (int)m->body.error.code, m, raw, n);
            } else {
                complete(c, r, PL_ERR_TIMEOUT, 0, NULL, NULL, 0);
            }
        }
        r = next;
    }
}

static bool hello_pending(const struct pl_kmclient *c)
{
    for (const struct req *r = c->head; r; r = r->next)
        if (r->body == PL_KM_HELLO)
            return true;
    return false;
}

static bool needs_session(const struct pl_kmclient *c, uint64_t now)
{
    for (const struct req *r = c->head; r; r = r->next)
        if (r->body != PL_KM_HELLO)
            return true;
    return prefetch_wanted(c, now);
}

/* A resync Hello nobody waits for any more (its requests completed) is dropped. */
static void reap_hello(struct pl_kmclient *c, uint64_t now)
{
    if (needs_session(c, now))
        return;
    struct req *r = c->head;
    while (r) {
        struct req *next = r->next;
        if (r->kind == REQ_SYNC_HELLO)
            complete(c, r, PL_ERR_STATE, 0, NULL, NULL, 0);
        r = next;
    }
}

static void ensure_hello(struct pl_kmclient *c, uint64_t now)
{
    if (c->synced || hello_pending(c) || !needs_session(c, now))
        return;
    provline_keymaker_Msg *m = msg_new();
    int rc = PL_ERR_NOMEM;
    if (m) {
        m->which_body = PL_KM_HELLO;
        pl_km_set_str(m->body.hello.station_id, sizeof(m->body.hello.station_id), c->station_id);
        m->body.hello.last_seq_ack = c->last_seq_ack;
        rc = submit(c, m, 0, NULL, REQ_SYNC_HELLO, now, NULL, NULL);
    }
    msg_free(m);
    if (rc)
        logf_(c, PL_KMCLIENT_LOG_ERROR, "event=resync_failed error=\"%s\"", pl_strerror(rc));
}

static unsigned inflight(const struct pl_kmclient *c)
{
    unsigned n = 0;
    for (const struct req *r = c->head; r; r = r->next)
        if (r->sent)
            n++;
    return n;
}

static int send_req(struct pl_kmclient *c, struct req *r, uint64_t now)
{
    char h[17];
    int n = zmq_send(c->sock, r->frame, r->frame_len, ZMQ_DONTWAIT);
    r->attempts++;
    r->next_at = now + backoff(c, r->attempts);
    if (n < 0) {
        int e = zmq_errno();
        if (e != EAGAIN && e != EINTR) {
            logf_(c, PL_KMCLIENT_LOG_ERROR, "event=send_failed error=\"%s\"", zmq_strerror(e));
            return PL_ERR_IO;
        }
        c->st.send_eagain++;
        if (r->body != PL_KM_HELLO && c->synced) {
            /* No way out (no connection or a full queue): the session is in doubt. */
            logf_(c, PL_KMCLIENT_LOG_WARN, "event=send_blocked id=%llu action=resync",
                  (unsigned long long)r->id);
            c->synced = false;
        }
        return PL_OK;
    }
    if (r->sent)
        c->st.retransmissions++;
    r->sent = true;
    c->st.frames_sent++;
    if (r->body == PL_KM_HELLO)
        c->st.hellos_sent++;
    logf_(c, r->attempts > 1 ? PL_KMCLIENT_LOG_INFO : PL_KMCLIENT_LOG_DEBUG,
          "event=request_sent id=%llu msg=%s mid=%s seq=%llu attempt=%u next_in_ms=%llu",
          (unsigned long long)r->id, pl_km_body_name(r->body), short_hex(r->ident.msg_id, h),
          (unsigned long long)r->ident.seq, r->attempts, (unsigned long long)(r->next_at - now));
    return PL_OK;
}

static int transmit(struct pl_kmclient *c, uint64_t now)
{
    unsigned active = inflight(c);
    int rc = PL_ERR_INTERNAL;

    for (struct req *r = c->head; r; r = r->next) {
        if (r->hold || r->next_at > now)
            continue;
        bool hello = r->body == PL_KM_HELLO;
        if (!hello && r->sent && !r->released) {
            /* No reply within the wait: the Key Maker may have restarted or the link
             * dropped. Resync before anything else goes out again. */
            if (c->synced) {
                char h[17];
                logf_(c, PL_KMCLIENT_LOG_WARN,
                      "event=reply_missing id=%llu msg=%s mid=%s attempts=%u action=resync",
                      (unsigned long long)r->id, pl_km_body_name(r->body),
                      short_hex(r->ident.msg_id, h), r->attempts);
            }
            c->synced = false;
        }
        if (!hello && !c->synced) {
            r->hold = true;
            r->released = false;
            continue;
        }
        if (!r->sent) {
            if (!hello && active >= c->cfg.max_inflight)
                continue;
            /* A seq the Key Maker has passed would only earn STALE_SEQ; an identity that
             * never left (and was not pinned by the caller) can simply be replaced. */
            if (!hello && !r->pinned && r->ident.seq <= c->km_seen && (rc = renumber(c, r)))
                return rc;
            active++;
        }
        r->released = false;
        if ((rc = send_req(c, r, now)))
            return rc;
    }
    return PL_OK;
}

int pl_kmclient_poll(struct pl_kmclient *c)
{
    int rc = PL_ERR_INTERNAL;

    if (c == NULL)
        return PL_ERR_INVAL;
    if ((rc = drain(c)))
        return rc;
    uint64_t now = now_ms(c);
    deadlines(c, now);
    reap_hello(c, now);
    prefetch_pass(c, now);
    ensure_hello(c, now);
    if ((rc = transmit(c, now)))
        return rc;
    /* transmit() may have found a reply missing: the resync Hello goes out now. */
    ensure_hello(c, now);
    if ((rc = transmit(c, now)))
        return rc;
    /* ZMQ_FD is edge-triggered: leave the socket with nothing unread. */
    return drain(c);
}

int pl_kmclient_timeout_ms(struct pl_kmclient *c)
{
    if (c == NULL)
        return -1;
    uint64_t now = now_ms(c);
    if (c->more_to_read)
        return 0;
    uint64_t next = UINT64_MAX;
    unsigned active = inflight(c);
    for (const struct req *r = c->head; r; r = r->next) {
        uint64_t t = r->deadline_at;
        bool blocked = r->hold
                       || (!r->sent && r->body != PL_KM_HELLO
                           && (active >= c->cfg.max_inflight || !c->synced));
        if (!blocked && r->next_at < t)
            t = r->next_at;
        if (t < next)
            next = t;
    }
    if (c->synced && prefetch_could(c) && c->prefetch_next_at < next)
        next = c->prefetch_next_at;
    if (!c->synced && !hello_pending(c) && needs_session(c, now))
        return 0;
    if (next == UINT64_MAX)
        return -1;
    if (next <= now)
        return 0;
    uint64_t d = next - now;
    return d > (uint64_t)INT32_MAX ? INT32_MAX : (int)d;
}

void pl_kmclient_pollitem(struct pl_kmclient *c, zmq_pollitem_t *item)
{
    if (item == NULL)
        return;
    memset(item, 0, sizeof(*item));
    item->socket = c ? c->sock : NULL;
    item->events = ZMQ_POLLIN;
}

int pl_kmclient_fd(struct pl_kmclient *c, int *fd)
{
    size_t len = sizeof(*fd);
    if (c == NULL || fd == NULL)
        return PL_ERR_INVAL;
    return zmq_getsockopt(c->sock, ZMQ_FD, fd, &len) == 0 ? PL_OK : PL_ERR_IO;
}

/* ---------------------------------------------------------------- blocking ---- */

int pl_kmclient_wait(struct pl_kmclient *c, uint64_t id, struct pl_kmclient_done *out)
{
    int rc = PL_ERR_INTERNAL;

    if (c == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    for (;;) {
        if (pl_kmclient_take(c, id, out) == PL_OK)
            return out->status;
        if ((rc = pl_kmclient_poll(c)))
            return rc;
        if (pl_kmclient_take(c, id, out) == PL_OK)
            return out->status;
        if (!is_pending(c, id))
            return PL_ERR_NOT_FOUND;
        int t = pl_kmclient_timeout_ms(c);
        if (t < 0 || t > 1000)
            t = 1000; /* a pending request always has a deadline; belt and braces */
        zmq_pollitem_t it;
        pl_kmclient_pollitem(c, &it);
        if (zmq_poll(&it, 1, t) < 0 && zmq_errno() != EINTR)
            return PL_ERR_IO;
    }
}

static int wait_for(struct pl_kmclient *c, int submit_rc, uint64_t id, struct pl_kmclient_done *out)
{
    if (out == NULL)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if (submit_rc)
        return submit_rc;
    return pl_kmclient_wait(c, id, out);
}

int pl_kmclient_hello(struct pl_kmclient *c, struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_hello(c, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_upload(struct pl_kmclient *c, const struct pl_es10f_info *info,
                       struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_upload(c, info, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_lease_jit(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN], uint16_t otk_id,
                          struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_lease_jit(c, eid, otk_id, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_lease_prefetch(struct pl_kmclient *c, const uint8_t *eids, size_t n, unsigned max,
                               struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_lease_prefetch(c, eids, n, max, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_ack(struct pl_kmclient *c, const uint8_t lease_id[PL_KM_ID_LEN],
                    const uint8_t *package_ids, size_t n, struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_ack(c, lease_id, package_ids, n, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_report(struct pl_kmclient *c, const provline_keymaker_ReportEntry *entries,
                       size_t n, const struct pl_km_audit_head *audit, struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_report(c, entries, n, audit, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_deletion_token(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                               struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_token_request(c, eid, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_deletion_receipt(struct pl_kmclient *c, const uint8_t eid[PL_KM_EID_LEN],
                                 uint64_t counter, const uint8_t *response, size_t len,
                                 struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_send_receipt(c, eid, counter, response, len, 0, &id);
    return wait_for(c, rc, id, out);
}

int pl_kmclient_call(struct pl_kmclient *c, provline_keymaker_Msg *m,
                     const struct pl_kmclient_ident *ident, struct pl_kmclient_done *out)
{
    uint64_t id = 0;
    int rc = pl_kmclient_submit(c, m, 0, ident, &id, NULL);
    return wait_for(c, rc, id, out);
}

/* ------------------------------------------------------------------- state ---- */

void pl_kmclient_stats(const struct pl_kmclient *c, struct pl_kmclient_stats *out)
{
    if (out == NULL)
        return;
    if (c == NULL) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = c->st;
}

bool pl_kmclient_synced(const struct pl_kmclient *c)
{
    return c != NULL && c->synced;
}

uint64_t pl_kmclient_last_seq(const struct pl_kmclient *c)
{
    return c ? c->seq_next - 1u : 0u;
}

const struct pl_eckey *pl_kmclient_checkpoint_key(const struct pl_kmclient *c)
{
    return c ? c->cp_key : NULL;
}

void pl_kmclient_station_key(const struct pl_kmclient *c, uint8_t out[PL_KM_STATION_KEY_LEN])
{
    if (out == NULL)
        return;
    if (c == NULL)
        memset(out, 0, PL_KM_STATION_KEY_LEN);
    else
        memcpy(out, c->station_key, PL_KM_STATION_KEY_LEN);
}

uint64_t pl_kmclient_last_seq_ack(const struct pl_kmclient *c)
{
    return c ? c->last_seq_ack : 0u;
}

const provline_keymaker_HelloAck *pl_kmclient_hello_ack(const struct pl_kmclient *c)
{
    return c && c->have_hello_ack ? &c->hello_ack : NULL;
}

unsigned pl_kmclient_pending(const struct pl_kmclient *c)
{
    return c ? c->n_pending : 0u;
}
