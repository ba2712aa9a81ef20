/* Reference Key Maker (SM-DPf): counters and the metrics endpoint - Prometheus text
 * exposition served by a tiny HTTP/1.0 responder whose sockets the serve loop polls with
 * zmq_poll (no thread).
 * ARCHITECTURE.md §7 (each daemon has a metrics endpoint); Prometheus "Exposition formats"
 * (text format 0.0.4: "# HELP", "# TYPE", name{label="value"} value; Content-Type
 * text/plain; version=0.0.4); RFC 1945 (HTTP/1.0: one request per connection, closed after
 * the response); POSIX.1-2017 sockets (non-blocking accept/recv/send); ZeroMQ zmq_poll(3)
 * (items with a file descriptor). docs/man/provline-keymaker.8 lists the metrics. */
#define _POSIX_C_SOURCE 200809L
#include "keymaker_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX        4096u /* request head; longer is refused (400) */
#define IO_TIMEOUT_MS  5000u /* a client must be served within this */
#define BODY_MAX       (256u * 1024u)
#define CONTENT_TYPE   "text/plain; version=0.0.4; charset=utf-8"

/* ---------------------------------------------------------------- counters ---- */

static void count_error(struct pl_km_counters *k, int code)
{
    if (code > 0 && (unsigned)code < PL_KM_ERROR_CODES)
        k->errors[code]++;
}

void pl_km_count_reply(struct pl_km *km, unsigned request, const provline_keymaker_Msg *rep)
{
    struct pl_km_counters *k = &km->counters;

    k->messages[request < PL_KM_MSG_TYPES ? request : 0u]++;
    if (rep == NULL)
        return;
    switch (rep->which_body) {
    case PL_KM_ERROR:
        count_error(k, (int)rep->body.error.code);
        break;
    case PL_KM_OTK_UPLOAD_RESULT:
        for (pb_size_t i = 0; i < rep->body.otk_upload_result.rejected_count; i++)
            count_error(k, (int)rep->body.otk_upload_result.rejected[i].code);
        break;
    case PL_KM_REPORT_ACK: {
        const provline_keymaker_ReportAck *a = &rep->body.report_ack;
        for (pb_size_t i = 0; i < a->results_count; i++)
            if (!a->results[i].accepted)
                count_error(k, (int)a->results[i].code);
        count_error(k, (int)a->checkpoint_refused);
        if (a->has_checkpoint)
            k->checkpoints++;
        break;
    }
    default:
        break;
    }
}

void pl_km_counters(const struct pl_km *km, struct pl_km_counters *out)
{
    if (out == NULL)
        return;
    if (km == NULL)
        memset(out, 0, sizeof(*out));
    else
        *out = km->counters;
}

/* ------------------------------------------------------------------ render ---- */

static void put(struct pl_wr *w, const char *fmt, ...) PL_KM_PRINTF(2, 3);

static void put(struct pl_wr *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        pl_wr_fail(w, PL_ERR_OVERFLOW);
        return;
    }
    pl_wr_bytes(w, line, (size_t)n);
}

static void header(struct pl_wr *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One labelled series per state of a metric. */
struct series {
    const char *label;
    uint64_t value;
};

static void family(struct pl_wr *w, const char *name, const char *type, const char *help,
                   const char *key, const struct series *s, size_t n)
{
    header(w, name, type, help);
    for (size_t i = 0; i < n; i++)
        put(w, "%s{%s=\"%s\"} %llu\n", name, key, s[i].label, (unsigned long long)s[i].value);
}

static void single(struct pl_wr *w, const char *name, const char *type, const char *help,
                   uint64_t v)
{
    header(w, name, type, help);
    put(w, "%s %llu\n", name, (unsigned long long)v);
}

/* The request types a station sends (and "invalid": frames that did not decode). */
static const unsigned REQUESTS[] = {
    PL_KM_HELLO,         PL_KM_OTK_UPLOAD,    PL_KM_LEASE_REQUEST, PL_KM_ACK,
    PL_KM_REPORT,        PL_KM_TOKEN_REQUEST, PL_KM_RECEIPT,
};

int pl_km_metrics_render(struct pl_km *km, struct pl_wr *out)
{
    struct pl_km_stats st;
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || out == NULL)
        return PL_ERR_INVAL;
    if ((rc = pl_km_stats(km, &st)))
        return rc;
    const struct pl_km_counters *k = &km->counters;

    single(out, "provline_keymaker_up", "gauge", "1 while the Key Maker serves.", 1);
    const struct series pkg[] = {
        {"issued", st.pkg_issued},
        {"installed", st.pkg_installed},
        {"failed", st.pkg_failed},
        {"possibly-used", st.pkg_possibly_used},
    };
    family(out, "provline_keymaker_packages", "gauge",
           "Packages by state (database): issued and not settled, installed, failed, "
           "possibly-used.",
           "state", pkg, sizeof(pkg) / sizeof(pkg[0]));
    single(out, "provline_keymaker_packages_issued_total", "counter",
           "Packages ever issued (database; every state).",
           (uint64_t)st.pkg_issued + st.pkg_installed + st.pkg_failed + st.pkg_possibly_used);
    const struct series otk[] = {
        {"FREE", st.otk_free},
        {"BOUND", st.otk_bound},
        {"CONSUMED", st.otk_consumed},
        {"VOID", st.otk_void},
    };
    family(out, "provline_keymaker_otks", "gauge", "One-time keys in the registry by state.",
           "state", otk, sizeof(otk) / sizeof(otk[0]));
    const struct series prof[] = {
        {"available", st.profiles_available},
        {"reserved", st.profiles_reserved},
        {"installed", st.profiles_installed},
    };
    family(out, "provline_keymaker_profiles", "gauge", "Profile inventory by state.", "state",
           prof, sizeof(prof) / sizeof(prof[0]));
    single(out, "provline_keymaker_euiccs", "gauge", "eUICCs with verified OTK uploads.",
           st.euiccs);
    single(out, "provline_keymaker_stations", "gauge", "Stations that have sent a request.",
           st.stations);
    single(out, "provline_keymaker_audit_checkpoints", "gauge",
           "Audit checkpoints signed (database).", st.audit_checkpoints);

    header(out, "provline_keymaker_messages_total", "counter",
           "Requests received since start, by message type (invalid: did not decode; "
           "unexpected: a reply type).");
    put(out, "provline_keymaker_messages_total{type=\"invalid\"} %llu\n",
        (unsigned long long)k->messages[0]);
    uint64_t other = 0;
    for (unsigned t = 1; t < PL_KM_MSG_TYPES; t++)
        other += k->messages[t];
    for (size_t i = 0; i < sizeof(REQUESTS) / sizeof(REQUESTS[0]); i++) {
        put(out, "provline_keymaker_messages_total{type=\"%s\"} %llu\n",
            pl_km_body_name(REQUESTS[i]), (unsigned long long)k->messages[REQUESTS[i]]);
        other -= k->messages[REQUESTS[i]];
    }
    /* Reply-type bodies sent as requests (answered UNEXPECTED). */
    put(out, "provline_keymaker_messages_total{type=\"unexpected\"} %llu\n",
        (unsigned long long)other);
    header(out, "provline_keymaker_errors_total", "counter",
           "Error codes answered since start: Error replies, rejected OTKs, refused report "
           "entries and checkpoints.");
    for (int code = 1; code <= (int)provline_keymaker_ErrorCode_ERROR_AUDIT_FORK; code++)
        put(out, "provline_keymaker_errors_total{code=\"%s\"} %llu\n", pl_km_error_name(code),
            (unsigned long long)k->errors[code]);
    single(out, "provline_keymaker_dedup_hits_total", "counter",
           "Retried requests answered from the stored reply.", k->dedup_hits);
    single(out, "provline_keymaker_checkpoints_returned_total", "counter",
           "Signed audit checkpoints returned in ReportAcks since start.", k->checkpoints);
    single(out, "provline_keymaker_frames_dropped_total", "counter",
           "Frames dropped before decoding (not one frame, unauthenticated, too big).",
           k->frames_dropped);
    return pl_wr_status(out);
}

/* ------------------------------------------------------------- HTTP server ---- */

struct client {
    int fd; /* -1: free slot */
    uint64_t deadline;
    char req[REQ_MAX];
    size_t req_len;
    uint8_t *rsp; /* the whole response once the request is read */
    size_t rsp_len, rsp_off;
};

struct pl_km_http {
    struct pl_km *km;
    int lfd;
    struct client c[PL_KM_HTTP_CLIENTS];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int pl_km_metrics_addr(const char *text, uint32_t *ip, uint16_t *port)
{
    char host[64];
    struct in_addr a;

    if (text == NULL || ip == NULL || port == NULL)
        return PL_ERR_INVAL;
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof(host))
        return PL_ERR_CONFIG;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (inet_pton(AF_INET, host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127u)
        return PL_ERR_CONFIG; /* numeric IPv4 loopback only */
    const char *p = colon + 1;
    unsigned long v = 0;
    if (*p == '\0' || strlen(p) > 5)
        return PL_ERR_CONFIG;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return PL_ERR_CONFIG;
        v = v * 10u + (unsigned long)(*p - '0');
    }
    if (v > 65535u)
        return PL_ERR_CONFIG;
    *ip = a.s_addr;
    *port = (uint16_t)v;
    return PL_OK;
}

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0
        || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
        return PL_ERR_IO;
    return PL_OK;
}

static void client_drop(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rsp);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int pl_km_http_open(struct pl_km *km, const char *addr, struct pl_km_http **out, uint16_t *bound)
{
    struct pl_km_http *h = NULL;
    struct sockaddr_in sa;
    uint32_t ip = 0;
    uint16_t port = 0;
    int one = 1;
    int rc = PL_ERR_INTERNAL;

    if (km == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if ((rc = pl_km_metrics_addr(addr, &ip, &port)))
        return rc;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return PL_ERR_NOMEM;
    h->km = km;
    for (size_t i = 0; i < PL_KM_HTTP_CLIENTS; i++)
        h->c[i].fd = -1;
    h->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = ip;
    sa.sin_port = htons(port);
    socklen_t sl = sizeof(sa);
    if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || nonblocking(h->lfd) != PL_OK || bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0
        || listen(h->lfd, 16) != 0 || getsockname(h->lfd, (struct sockaddr *)&sa, &sl) != 0) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=metrics_failed address=\"%s\" error=\"%s\"", addr,
                   strerror(errno));
        rc = PL_ERR_IO;
        goto out;
    }
    if (bound)
        *bound = ntohs(sa.sin_port);
    *out = h;
    h = NULL;
    rc = PL_OK;
out:
    pl_km_http_close(h);
    return rc;
}

void pl_km_http_close(struct pl_km_http *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < PL_KM_HTTP_CLIENTS; i++)
        client_drop(&h->c[i]);
    if (h->lfd >= 0)
        close(h->lfd);
    free(h);
}

size_t pl_km_http_items(const struct pl_km_http *h, zmq_pollitem_t *items, size_t cap)
{
    size_t n = 0;
    if (h == NULL || cap == 0)
        return 0;
    items[n++] = (zmq_pollitem_t){NULL, h->lfd, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < PL_KM_HTTP_CLIENTS && n < cap; i++)
        if (h->c[i].fd >= 0)
            items[n++] = (zmq_pollitem_t){NULL, h->c[i].fd,
                                          h->c[i].rsp ? ZMQ_POLLOUT : ZMQ_POLLIN, 0};
    return n;
}

int pl_km_http_timeout_ms(const struct pl_km_http *h)
{
    uint64_t next = UINT64_MAX, now = mono_ms();
    if (h == NULL)
        return -1;
    for (size_t i = 0; i < PL_KM_HTTP_CLIENTS; i++)
        if (h->c[i].fd >= 0 && h->c[i].deadline < next)
            next = h->c[i].deadline;
    if (next == UINT64_MAX)
        return -1;
    return next <= now ? 0 : (int)(next - now);
}

static void accept_all(struct pl_km_http *h, uint64_t now)
{
    for (;;) {
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0)
            return; /* EAGAIN: none left (or a transient error: the next poll retries) */
        struct client *c = NULL;
        for (size_t i = 0; i < PL_KM_HTTP_CLIENTS && c == NULL; i++)
            if (h->c[i].fd < 0)
                c = &h->c[i];
        if (c == NULL || nonblocking(fd) != PL_OK) {
            pl_km_logf(h->km, PL_KM_LOG_WARN, "event=metrics_client_refused reason=%s",
                       c ? "socket" : "too_many_clients");
            close(fd);
            continue;
        }
        c->fd = fd;
        c->deadline = now + IO_TIMEOUT_MS;
    }
}

/* Copies the next word (up to one space) of *p into out; false if it is empty, too long,
 * or not followed by a space. */
static bool word(const char **p, char *out, size_t cap)
{
    size_t n = strcspn(*p, " ");
    if (n == 0 || n >= cap || (*p)[n] != ' ')
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n + 1;
    return true;
}

/* The whole response for one request head (status line, headers, body). */
static int respond(struct pl_km_http *h, struct client *c)
{
    struct pl_wr body, rsp;
    const char *status = "200 OK";
    int rc = PL_ERR_INTERNAL;

    pl_wr_init_dyn(&body, BODY_MAX);
    pl_wr_init_dyn(&rsp, BODY_MAX + 512u);
    /* Request line: METHOD SP TARGET SP HTTP/1.x (RFC 1945 §5.1). */
    char method[16] = "", target[256] = "";
    c->req[strcspn(c->req, "\r\n")] = '\0';
    const char *p = c->req;
    bool ok = word(&p, method, sizeof(method)) && word(&p, target, sizeof(target));
    if (!ok || strncmp(p, "HTTP/1.", 7) != 0 || strlen(p) != 8) {
        status = "400 Bad Request";
    } else if (strcmp(method, "GET") != 0) {
        status = "405 Method Not Allowed";
    } else if (strcmp(target, "/metrics") != 0 && strncmp(target, "/metrics?", 9) != 0) {
        status = "404 Not Found";
    } else if ((rc = pl_km_metrics_render(h->km, &body))) {
        status = "500 Internal Server Error";
        pl_wr_reset(&body);
    }
    if (strncmp(status, "200", 3) != 0)
        put(&body, "%s\n", status);
    put(&rsp,
        "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n"
        "Allow: GET\r\n\r\n",
        status, CONTENT_TYPE, body.len);
    pl_wr_bytes(&rsp, body.buf, body.len);
    pl_km_logf(h->km, PL_KM_LOG_DEBUG, "event=metrics_request method=%s path=\"%s\" status=%.3s",
               method[0] ? method : "-", target[0] ? target : "-", status);
    if ((rc = pl_wr_status(&rsp)) == PL_OK) {
        c->rsp = pl_wr_take(&rsp, &c->rsp_len);
        rc = c->rsp ? PL_OK : PL_ERR_NOMEM;
    }
    pl_wr_free(&body);
    pl_wr_free(&rsp);
    return rc;
}

static void client_read(struct pl_km_http *h, struct client *c)
{
    ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1u - c->req_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        client_drop(c);
        return;
    }
    if (n < 0)
        return;
    c->req_len += (size_t)n;
    c->req[c->req_len] = '\0';
    bool complete = strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL;
    if (!complete && c->req_len < sizeof(c->req) - 1u)
        return;
    if (!complete)
        memcpy(c->req, "X", 2); /* over-long head: answered 400 */
    if (respond(h, c) != PL_OK)
        client_drop(c);
}

static void client_write(struct client *c)
{
    ssize_t n = send(c->fd, c->rsp + c->rsp_off, c->rsp_len - c->rsp_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        client_drop(c);
        return;
    }
    c->rsp_off += (size_t)n;
    if (c->rsp_off == c->rsp_len)
        client_drop(c); /* HTTP/1.0: the server closes after the response */
}

void pl_km_http_handle(struct pl_km_http *h, const zmq_pollitem_t *items, size_t n)
{
    uint64_t now = mono_ms();
    if (h == NULL)
        return;
    for (size_t k = 0; k < n; k++) {
        if (items[k].revents == 0)
            continue;
        if (items[k].fd == h->lfd) {
            accept_all(h, now);
            continue;
        }
        for (size_t i = 0; i < PL_KM_HTTP_CLIENTS; i++) {
            struct client *c = &h->c[i];
            if (c->fd != items[k].fd)
                continue;
            if (items[k].revents & ZMQ_POLLERR)
                client_drop(c);
            else if (c->rsp)
                client_write(c);
            else
                client_read(h, c);
            break;
        }
    }
    for (size_t i = 0; i < PL_KM_HTTP_CLIENTS; i++)
        if (h->c[i].fd >= 0 && now >= h->c[i].deadline) {
            pl_km_logf(h->km, PL_KM_LOG_WARN, "event=metrics_client_dropped reason=timeout");
            client_drop(&h->c[i]);
        }
}
