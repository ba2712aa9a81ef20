/* Reference Key Maker (SM-DPf): the ZeroMQ transport. ROUTER socket with CurveZMQ
 * (RFC 26/CurveZMQ, ZMTP 3.0 CURVE mechanism) and a ZAP handler (ZeroMQ RFC 27/ZAP 1.0) on
 * inproc://zeromq.zap.01 that admits only allow-listed station keys; CurveZMQ key files in
 * Z85 (ZeroMQ RFC 32/Z85). DEPENDENCIES.md §6 (CURVE alone authorises nobody; LINGER 0);
 * ARCHITECTURE.md §6; STYLE.md §7.3 rule 10 (every frame length/type-checked);
 * docs/station-keymaker-protocol.md §2 (framing, security). */
#define _POSIX_C_SOURCE 200809L
#include "keymaker_internal.h"
#include "provline/proto/km_msg.h"
#include "provline/protocol/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <threads.h>
#include <unistd.h>
#include <zmq.h>

#define ZAP_ENDPOINT   "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8
#define ALLOW_MAX      4096u
#define KEY_FILE_MAX   256u
#define ROUTING_ID_MAX 255u

/* ---------------------------------------------------------------- key files ---- */

static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return PL_ERR_IO;
    size_t n = fread(buf, 1, cap - 1, f);
    bool more = !feof(f) && fgetc(f) != EOF;
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return PL_ERR_IO;
    if (more)
        return PL_ERR_CONFIG;
    buf[n] = '\0';
    return PL_OK;
}

/* One Z85 key of 40 characters into 32 bytes. */
static int z85_key(const char *s, size_t len, uint8_t key[32])
{
    char tmp[PL_KM_Z85_KEY_LEN + 1];
    if (len != PL_KM_Z85_KEY_LEN)
        return PL_ERR_CONFIG;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return zmq_z85_decode(key, tmp) ? PL_OK : PL_ERR_CONFIG;
}

int pl_km_station_key(const char *station, uint8_t key[32])
{
    if (station == NULL || key == NULL)
        return PL_ERR_INVAL;
    return z85_key(station, strlen(station), key) == PL_OK ? PL_OK : PL_ERR_INVAL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int pl_km_read_key(const char *path, uint8_t key[32])
{
    char buf[KEY_FILE_MAX];
    int rc = PL_ERR_INTERNAL;

    if (path == NULL || key == NULL)
        return PL_ERR_INVAL;
    if ((rc = read_text(path, buf, sizeof(buf))))
        return rc;
    size_t n = strlen(buf);
    while (n > 0 && is_space(buf[n - 1]))
        n--;
    rc = z85_key(buf, n, key);
    pl_memzero(buf, sizeof(buf));
    return rc;
}

static int write_new(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0)
        return errno == EEXIST ? PL_ERR_EXISTS : PL_ERR_IO;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int rc = (w >= 0 && (size_t)w == n && fsync(fd) == 0) ? PL_OK : PL_ERR_IO;
    if (close(fd) != 0)
        rc = PL_ERR_IO;
    if (rc)
        (void)unlink(path);
    return rc;
}

int pl_km_keygen(const char *prefix)
{
    char pub[41], sec[41];
    char kpath[4096], ppath[4096];
    char line[64];
    int rc = PL_ERR_INTERNAL;

    if (prefix == NULL || prefix[0] == '\0')
        return PL_ERR_INVAL;
    int a = snprintf(kpath, sizeof(kpath), "%s.key", prefix);
    int b = snprintf(ppath, sizeof(ppath), "%s.pub", prefix);
    if (a < 0 || b < 0 || (size_t)a >= sizeof(kpath) || (size_t)b >= sizeof(ppath))
        return PL_ERR_INVAL;
    if (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0)
        return PL_ERR_EXISTS;
    if (zmq_curve_keypair(pub, sec) != 0)
        return PL_ERR_CRYPTO;
    snprintf(line, sizeof(line), "%s\n", sec);
    rc = write_new(kpath, line, 0600);
    pl_memzero(line, sizeof(line));
    pl_memzero(sec, sizeof(sec));
    if (rc)
        return rc;
    snprintf(line, sizeof(line), "%s\n", pub);
    if ((rc = write_new(ppath, line, 0644)))
        (void)unlink(kpath);
    return rc;
}

/* --------------------------------------------------------------- allow-list ---- */

struct allow {
    size_t n;
    uint8_t (*key)[32];
};

static void allow_free(struct allow *a)
{
    free(a->key);
    a->key = NULL;
    a->n = 0;
}

static int allow_load(const char *path, struct allow *a)
{
    FILE *f = NULL;
    char line[512];
    int rc = PL_ERR_INTERNAL;

    a->n = 0;
    a->key = calloc(ALLOW_MAX, sizeof(*a->key));
    if (a->key == NULL)
        return PL_ERR_NOMEM;
    f = fopen(path, "r");
    if (f == NULL) {
        rc = PL_ERR_IO;
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            rc = PL_ERR_CONFIG; /* over-long line */
            goto out;
        }
        while (n > 0 && is_space(line[n - 1]))
            n--;
        size_t s = 0;
        while (s < n && is_space(line[s]))
            s++;
        if (s == n || line[s] == '#')
            continue;
        if (a->n >= ALLOW_MAX) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        if ((rc = z85_key(line + s, n - s, a->key[a->n])))
            goto out;
        a->n++;
    }
    rc = ferror(f) ? PL_ERR_IO : (a->n ? PL_OK : PL_ERR_CONFIG);
out:
    if (f)
        fclose(f);
    if (rc)
        allow_free(a);
    return rc;
}

int pl_km_allow_check(const char *path, size_t *n)
{
    struct allow a = {0};
    int rc = PL_ERR_INTERNAL;

    if (path == NULL)
        return PL_ERR_INVAL;
    if ((rc = allow_load(path, &a)))
        return rc;
    if (n)
        *n = a.n;
    allow_free(&a);
    return PL_OK;
}

static bool allow_has(const struct allow *a, const uint8_t key[32])
{
    bool found = false;
    for (size_t i = 0; i < a->n; i++)
        found |= pl_ct_equal(a->key[i], key, 32);
    return found;
}

int pl_km_server_check(const struct pl_km_server_config *cfg)
{
    uint8_t sk[32];
    int rc = PL_ERR_INTERNAL;

    if (cfg == NULL || cfg->bind == NULL || cfg->curve_secret_file == NULL
        || cfg->allow_file == NULL)
        return PL_ERR_CONFIG;
    if ((rc = pl_km_read_key(cfg->curve_secret_file, sk)))
        return rc;
    pl_memzero(sk, sizeof(sk));
    return pl_km_allow_check(cfg->allow_file, NULL);
}

/* ------------------------------------------------------------- ZAP handler ---- */

struct zap {
    void *sock;
    const struct allow *allow;
    const struct pl_km *km;
};

static int send_frame(void *s, const void *p, size_t n, bool more)
{
    return zmq_send(s, p, n, more ? ZMQ_SNDMORE : 0) < 0 ? PL_ERR_IO : PL_OK;
}

/* ZAP 1.0 (RFC 27): request = version, request id, domain, address, identity,
 * mechanism, credentials...; reply = version, request id, status code, status text,
 * user id, metadata. CURVE carries one 32-byte credential: the client's public key. */
static int zap_main(void *arg)
{
    struct zap *z = arg;
    zmq_msg_t f[ZAP_MAX_FRAMES];

    for (;;) {
        int n = 0, more = 1;
        bool overflow = false;
        while (more) {
            zmq_msg_t tmp;
            zmq_msg_init(&tmp);
            if (zmq_msg_recv(&tmp, z->sock, 0) < 0) {
                zmq_msg_close(&tmp);
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&f[i]);
                if (zmq_errno() == EINTR)
                    goto next;
                return 0; /* ETERM: the context is shutting down */
            }
            more = zmq_msg_more(&tmp);
            if (n < ZAP_MAX_FRAMES) {
                f[n++] = tmp;
            } else {
                overflow = true;
                zmq_msg_close(&tmp);
            }
        }
        {
            const char *status = "400", *text = "denied";
            char user[PL_KM_Z85_KEY_LEN + 1] = "";
            const void *rid = n >= 2 ? zmq_msg_data(&f[1]) : "";
            size_t rid_len = n >= 2 ? zmq_msg_size(&f[1]) : 0;
            bool version_ok =
                n >= 1 && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0;
            bool curve = n == 7 && !overflow && zmq_msg_size(&f[5]) == 5
                         && memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0
                         && zmq_msg_size(&f[6]) == 32;
            if (!version_ok || n < 6 || overflow) {
                status = "500";
                text = "malformed ZAP request";
            } else if (curve) {
                const uint8_t *key = zmq_msg_data(&f[6]);
                char z85[PL_KM_Z85_KEY_LEN + 1];
                if (zmq_z85_encode(z85, key, 32) == NULL) {
                    status = "500";
                    text = "internal";
                } else if (allow_has(z->allow, key)) {
                    status = "200";
                    text = "OK";
                    memcpy(user, z85, sizeof(user));
                } else {
                    char addr[64];
                    size_t al = zmq_msg_size(&f[3]) < sizeof(addr) - 1 ? zmq_msg_size(&f[3])
                                                                       : sizeof(addr) - 1;
                    memcpy(addr, zmq_msg_data(&f[3]), al);
                    addr[al] = '\0';
                    char shown[16];
                    pl_km_set_str(shown, 9, z85);
                    pl_km_set_str(addr, sizeof(addr), addr);
                    pl_km_logf(z->km, PL_KM_LOG_WARN,
                               "event=zap_denied key=%s... address=%s reason=not_allow_listed",
                               shown, addr);
                }
            } else {
                pl_km_logf(z->km, PL_KM_LOG_WARN, "event=zap_denied reason=mechanism_not_curve");
            }
            /* Always answer: a REP socket must, and libzmq then drops the peer (no reply). */
            if (send_frame(z->sock, "1.0", 3, true) || send_frame(z->sock, rid, rid_len, true)
                || send_frame(z->sock, status, 3, true)
                || send_frame(z->sock, text, strlen(text), true)
                || send_frame(z->sock, user, strlen(user), true)
                || send_frame(z->sock, "", 0, false)) {
                for (int i = 0; i < n; i++)
                    zmq_msg_close(&f[i]);
                if (zmq_errno() == ETERM)
                    return 0;
                continue;
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
    next:;
    }
}

/* ------------------------------------------------------------------ server ---- */

static void drain(void *s)
{
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
}

/* Receives one ROUTER message: exactly [routing id (1..255 B)][one frame]. Anything else
 * is read to its end and dropped. */
static void serve_one(struct pl_km *km, void *router)
{
    zmq_msg_t id, body;
    struct pl_wr reply;
    char station[PL_KM_STATION_MAX + 1];

    zmq_msg_init(&id);
    zmq_msg_init(&body);
    pl_wr_init_dyn(&reply, PL_KM_FRAME_MAX);
    if (zmq_msg_recv(&id, router, ZMQ_DONTWAIT) < 0)
        goto out;
    if (!zmq_msg_more(&id) || zmq_msg_size(&id) == 0 || zmq_msg_size(&id) > ROUTING_ID_MAX) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=frame_dropped reason=bad_routing_id");
        km->counters.frames_dropped++;
        if (zmq_msg_more(&id))
            drain(router);
        goto out;
    }
    if (zmq_msg_recv(&body, router, ZMQ_DONTWAIT) < 0)
        goto out;
    if (zmq_msg_more(&body)) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=frame_dropped reason=more_than_one_frame");
        km->counters.frames_dropped++;
        drain(router);
        goto out;
    }
    /* The station is who ZAP admitted, never what the message claims. */
    const char *uid = zmq_msg_gets(&body, "User-Id");
    if (uid == NULL || strlen(uid) != PL_KM_Z85_KEY_LEN) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=frame_dropped reason=unauthenticated");
        km->counters.frames_dropped++;
        goto out;
    }
    memcpy(station, uid, PL_KM_Z85_KEY_LEN + 1);
    if (zmq_msg_size(&body) > PL_KM_FRAME_MAX) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=frame_dropped reason=too_big bytes=%zu",
                   zmq_msg_size(&body));
        km->counters.frames_dropped++;
        goto out;
    }
    if (pl_km_handle(km, station, zmq_msg_data(&body), zmq_msg_size(&body), &reply) != PL_OK
        || pl_wr_status(&reply) != PL_OK)
        goto out;
    if (zmq_send(router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0
        || zmq_send(router, reply.buf, reply.len, ZMQ_DONTWAIT) < 0)
        pl_km_logf(km, PL_KM_LOG_WARN, "event=reply_not_sent error=\"%s\"",
                   zmq_strerror(zmq_errno()));
out:
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    pl_wr_free(&reply);
}

static int set_int(void *s, int opt, int v)
{
    return zmq_setsockopt(s, opt, &v, sizeof(v)) == 0 ? PL_OK : PL_ERR_IO;
}

int pl_km_serve(struct pl_km *km, const struct pl_km_server_config *cfg,
                volatile sig_atomic_t *stop)
{
    struct allow allow = {0};
    struct zap z;
    uint8_t sk[32];
    void *ctx = NULL, *router = NULL, *zap = NULL;
    struct pl_km_http *http = NULL;
    thrd_t thread;
    bool thread_up = false;
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || cfg == NULL || stop == NULL || cfg->bind == NULL)
        return PL_ERR_INVAL;
    if ((rc = pl_km_read_key(cfg->curve_secret_file, sk))) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=config_error file=\"%s\" error=\"%s\"",
                   cfg->curve_secret_file, pl_strerror(rc));
        return rc;
    }
    if ((rc = allow_load(cfg->allow_file, &allow))) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=config_error file=\"%s\" error=\"%s\"",
                   cfg->allow_file, pl_strerror(rc));
        goto out;
    }
    ctx = zmq_ctx_new();
    if (ctx == NULL) {
        rc = PL_ERR_IO;
        goto out;
    }
    /* The ZAP handler is bound before the ROUTER so no handshake ever runs without it. */
    zap = zmq_socket(ctx, ZMQ_REP);
    if (zap == NULL || set_int(zap, ZMQ_LINGER, 0) || zmq_bind(zap, ZAP_ENDPOINT) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    z.sock = zap;
    z.allow = &allow;
    z.km = km;
    if (thrd_create(&thread, zap_main, &z) != thrd_success) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }
    thread_up = true;
    zap = NULL; /* owned by the thread now */

    router = zmq_socket(ctx, ZMQ_ROUTER);
    int64_t maxmsg = (int64_t)PL_KM_FRAME_MAX;
    if (router == NULL || set_int(router, ZMQ_LINGER, 0) || set_int(router, ZMQ_CURVE_SERVER, 1)
        || zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, sk, sizeof(sk)) != 0
        || zmq_setsockopt(router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0
        || zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, "provline-keymaker", 17) != 0) {
        rc = PL_ERR_IO;
        goto out;
    }
    pl_memzero(sk, sizeof(sk));
    if (zmq_bind(router, cfg->bind) != 0) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=bind_failed endpoint=\"%s\" error=\"%s\"", cfg->bind,
                   zmq_strerror(zmq_errno()));
        rc = PL_ERR_IO;
        goto out;
    }
    /* The resolved endpoint: with "tcp://127.0.0.1:*" the kernel picks a free port. */
    char endpoint[256];
    size_t elen = sizeof(endpoint);
    if (zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &elen) != 0 || elen == 0
        || endpoint[elen - 1] != '\0')
        pl_km_set_str(endpoint, sizeof(endpoint), cfg->bind);
    if (cfg->metrics != NULL) {
        uint16_t port = 0;
        if ((rc = pl_km_http_open(km, cfg->metrics, &http, &port)))
            goto out;
        char host[64];
        size_t hl = strcspn(cfg->metrics, ":");
        pl_km_set_str(host, hl + 1 < sizeof(host) ? hl + 1 : sizeof(host), cfg->metrics);
        pl_km_logf(km, PL_KM_LOG_INFO, "event=metrics_listening address=\"%s:%u\" path=/metrics",
                   host, (unsigned)port);
    }
    pl_km_logf(km, PL_KM_LOG_INFO, "event=listening endpoint=\"%s\" stations=%zu", endpoint,
               allow.n);

    int tick = cfg->poll_ms > 0 ? cfg->poll_ms : 500;
    time_t last_expire = 0;
    while (!*stop) {
        /* One zmq_poll for the ROUTER and the metrics endpoint's sockets. */
        zmq_pollitem_t it[1 + PL_KM_HTTP_ITEMS];
        it[0] = (zmq_pollitem_t){router, 0, ZMQ_POLLIN, 0};
        size_t n_it = 1 + pl_km_http_items(http, it + 1, PL_KM_HTTP_ITEMS);
        int wait = pl_km_http_timeout_ms(http);
        int n = zmq_poll(it, (int)n_it, wait >= 0 && wait < tick ? wait : tick);
        if (n < 0) {
            if (zmq_errno() == EINTR)
                continue;
            rc = PL_ERR_IO;
            goto out;
        }
        if (n > 0 && (it[0].revents & ZMQ_POLLIN))
            serve_one(km, router);
        pl_km_http_handle(http, it + 1, n_it - 1);
        time_t now = pl_km_now(km);
        if (now != last_expire) {
            last_expire = now;
            if (pl_km_expire(km, NULL) != PL_OK)
                pl_km_logf(km, PL_KM_LOG_ERROR, "event=expire_failed");
        }
    }
    pl_km_logf(km, PL_KM_LOG_INFO, "event=stopping");
    rc = PL_OK;
out:
    pl_memzero(sk, sizeof(sk));
    pl_km_http_close(http);
    if (router)
        zmq_close(router);
    if (zap)
        zmq_close(zap);
    if (ctx) {
        /* Shutdown makes the ZAP thread's blocking receive fail with ETERM. */
        zmq_ctx_shutdown(ctx);
        if (thread_up) {
            int res = 0;
            thrd_join(thread, &res);
            zmq_close(z.sock);
        }
        zmq_ctx_term(ctx);
    }
    allow_free(&allow);
    return rc;
}
