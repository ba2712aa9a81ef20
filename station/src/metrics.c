/* Prometheus text endpoint over HTTP/1.0 (metrics.h). Sources: Prometheus exposition format
 * 0.0.4; RFC 1945 §5-§6 (Request-Line, Status-Line); POSIX.1-2017 socket(), poll(). */
#define _POSIX_C_SOURCE 200809L
#include "provline/station/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct client {
    int fd;                 /* -1 = free slot */
    uint64_t deadline;
    uint8_t req[PL_METRICS_REQ_MAX];
    size_t req_len;
    uint8_t *out;           /* response being written */
    size_t out_len, out_off;
};

struct pl_metrics {
    struct pl_metrics_config cfg;
    int lfd;
    uint16_t port;
    char *unix_path;
    struct client c[PL_METRICS_CLIENTS_MAX];
};

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return PL_ERR_IO;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return PL_OK;
}

int pl_metrics_new(const struct pl_metrics_config *cfg, struct pl_metrics **out)
{
    struct pl_metrics *m;
    int rc = PL_ERR_INTERNAL, one = 1;

    *out = NULL;
    if (cfg == NULL || cfg->render == NULL || (cfg->host == NULL) == (cfg->unix_path == NULL))
        return PL_ERR_INVAL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return PL_ERR_NOMEM;
    m->cfg = *cfg;
    m->cfg.host = NULL;
    m->cfg.unix_path = NULL;
    if (m->cfg.io_timeout_ms == 0)
        m->cfg.io_timeout_ms = 2000;
    m->lfd = -1;
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX; i++)
        m->c[i].fd = -1;
    if (cfg->host != NULL) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons(cfg->port);
        if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1
            || (ntohl(sa.sin_addr.s_addr) >> 24) != 127u) {
            rc = PL_ERR_INVAL; /* loopback only */
            goto out;
        }
        m->lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (m->lfd < 0) {
            rc = PL_ERR_IO;
            goto out;
        }
        (void)setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0
            || getsockname(m->lfd, (struct sockaddr *)&sa, &sl) != 0) {
            rc = PL_ERR_IO;
            goto out;
        }
        m->port = ntohs(sa.sin_port);
    } else {
        struct sockaddr_un su;
        struct stat st;
        size_t n = strlen(cfg->unix_path);
        memset(&su, 0, sizeof(su));
        su.sun_family = AF_UNIX;
        if (n == 0 || n >= sizeof(su.sun_path)) {
            rc = PL_ERR_INVAL;
            goto out;
        }
        memcpy(su.sun_path, cfg->unix_path, n + 1);
        /* Replace only a stale socket, never another kind of file. */
        if (lstat(cfg->unix_path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode) || unlink(cfg->unix_path) != 0) {
                rc = PL_ERR_IO;
                goto out;
            }
        }
        m->unix_path = strdup(cfg->unix_path);
        m->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (m->unix_path == NULL || m->lfd < 0) {
            rc = m->unix_path == NULL ? PL_ERR_NOMEM : PL_ERR_IO;
            goto out;
        }
        if (bind(m->lfd, (struct sockaddr *)&su, sizeof(su)) != 0) {
            free(m->unix_path);
            m->unix_path = NULL;
            rc = PL_ERR_IO;
            goto out;
        }
        (void)chmod(cfg->unix_path, 0600);
    }
    if (listen(m->lfd, 8) != 0 || (rc = set_nonblock(m->lfd)) != PL_OK) {
        rc = PL_ERR_IO;
        goto out;
    }
    *out = m;
    return PL_OK;
out:
    pl_metrics_free(m);
    return rc;
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->req_len = 0;
}

void pl_metrics_free(struct pl_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX; i++)
        client_close(&m->c[i]);
    if (m->lfd >= 0)
        close(m->lfd);
    if (m->unix_path != NULL) {
        (void)unlink(m->unix_path);
        free(m->unix_path);
    }
    free(m);
}

uint16_t pl_metrics_port(const struct pl_metrics *m)
{
    return m != NULL ? m->port : 0;
}

size_t pl_metrics_pollfds(const struct pl_metrics *m, struct pollfd *fds, size_t cap)
{
    size_t n = 0;
    if (m == NULL || cap == 0)
        return 0;
    fds[n].fd = m->lfd;
    fds[n].events = POLLIN;
    fds[n].revents = 0;
    n++;
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX && n < cap; i++) {
        if (m->c[i].fd < 0)
            continue;
        fds[n].fd = m->c[i].fd;
        fds[n].events = m->c[i].out != NULL ? POLLOUT : POLLIN;
        fds[n].revents = 0;
        n++;
    }
    return n;
}

uint64_t pl_metrics_deadline(const struct pl_metrics *m)
{
    uint64_t d = UINT64_MAX;
    if (m == NULL)
        return d;
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX; i++)
        if (m->c[i].fd >= 0 && m->c[i].deadline < d)
            d = m->c[i].deadline;
    return d;
}

static void respond(struct pl_metrics *m, struct client *c, int code, const char *reason,
                    const char *ctype, const uint8_t *body, size_t body_len)
{
    struct pl_wr w;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, body_len);
    (void)m;
    pl_wr_init_dyn(&w, sizeof(head) + PL_METRICS_BODY_MAX);
    (void)pl_wr_bytes(&w, head, (size_t)n);
    (void)pl_wr_bytes(&w, body, body_len);
    if (pl_wr_status(&w) != PL_OK) {
        pl_wr_free(&w);
        client_close(c);
        return;
    }
    c->out = pl_wr_take(&w, &c->out_len);
    c->out_off = 0;
    pl_wr_free(&w);
    if (c->out == NULL)
        client_close(c);
}

static void text(struct pl_metrics *m, struct client *c, int code, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);
    respond(m, c, code, reason, "text/plain; charset=utf-8", (const uint8_t *)body, (size_t)n);
}

/* The Request-Line is "METHOD SP URI SP HTTP/x.y"; headers are read and ignored. */
static void on_request(struct pl_metrics *m, struct client *c)
{
    char line[256];
    size_t n = 0;
    while (n < c->req_len && n < sizeof(line) - 1 && c->req[n] != '\r' && c->req[n] != '\n') {
        uint8_t ch = c->req[n];
        if (ch < 0x20 || ch > 0x7e) {
            text(m, c, 400, "Bad Request");
            return;
        }
        line[n] = (char)ch;
        n++;
    }
    line[n] = '\0';
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/", 5) != 0) {
        text(m, c, 400, "Bad Request");
        return;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    if (strcmp(line, "GET") != 0) {
        text(m, c, 405, "Method Not Allowed");
        return;
    }
    if (strcmp(sp1 + 1, "/metrics") != 0) {
        text(m, c, 404, "Not Found");
        return;
    }
    struct pl_wr body;
    pl_wr_init_dyn(&body, PL_METRICS_BODY_MAX);
    if (m->cfg.render(m->cfg.user, &body) != PL_OK || pl_wr_status(&body) != PL_OK) {
        pl_wr_free(&body);
        text(m, c, 500, "Internal Server Error");
        return;
    }
    respond(m, c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.buf, body.len);
    pl_wr_free(&body);
}

static bool request_complete(const struct client *c)
{
    for (size_t i = 3; i < c->req_len; i++)
        if (c->req[i - 3] == '\r' && c->req[i - 2] == '\n' && c->req[i - 1] == '\r'
            && c->req[i] == '\n')
            return true;
    for (size_t i = 1; i < c->req_len; i++) /* bare LF line ends, as some tools send */
        if (c->req[i - 1] == '\n' && c->req[i] == '\n')
            return true;
    return false;
}

static void on_readable(struct pl_metrics *m, struct client *c)
{
    for (;;) {
        if (c->req_len >= sizeof(c->req)) {
            text(m, c, 400, "Bad Request");
            return;
        }
        ssize_t r = read(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            client_close(c);
            return;
        }
        c->req_len += (size_t)r;
        if (request_complete(c)) {
            on_request(m, c);
            return;
        }
    }
}

static void on_writable(struct client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            client_close(c);
            return;
        }
        c->out_off += (size_t)w;
    }
    /* Whatever the client still sent (an oversized request) is read and dropped first:
     * closing with unread input would reset the connection and lose the answer. */
    (void)shutdown(c->fd, SHUT_WR);
    for (size_t drained = 0; drained < 64u * 1024u;) {
        uint8_t sink[1024];
        ssize_t r = read(c->fd, sink, sizeof(sink));
        if (r <= 0)
            break;
        drained += (size_t)r;
    }
    client_close(c);
}

static struct client *client_by_fd(struct pl_metrics *m, int fd)
{
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX; i++)
        if (m->c[i].fd == fd)
            return &m->c[i];
    return NULL;
}

void pl_metrics_handle(struct pl_metrics *m, const struct pollfd *fds, size_t n, uint64_t now_ms)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (fds[i].revents == 0)
            continue;
        if (fds[i].fd == m->lfd) {
            for (;;) {
                int fd = accept(m->lfd, NULL, NULL);
                if (fd < 0)
                    break;
                struct client *c = client_by_fd(m, -1);
                if (c == NULL || set_nonblock(fd) != PL_OK) {
                    close(fd); /* all slots busy: the client retries */
                    continue;
                }
                c->fd = fd;
                c->req_len = 0;
                c->deadline = now_ms + m->cfg.io_timeout_ms;
            }
            continue;
        }
        struct client *c = client_by_fd(m, fds[i].fd);
        if (c == NULL)
            continue;
        if (c->out != NULL) {
            if (fds[i].revents & (POLLOUT | POLLERR | POLLHUP))
                on_writable(c);
        } else if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) {
            on_readable(m, c);
        }
    }
    for (size_t i = 0; i < PL_METRICS_CLIENTS_MAX; i++)
        if (m->c[i].fd >= 0 && now_ms >= m->c[i].deadline)
            client_close(&m->c[i]);
}

void pl_metrics_header(struct pl_wr *out, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    if (n > 0 && (size_t)n < sizeof(line))
        (void)pl_wr_bytes(out, line, (size_t)n);
    else
        pl_wr_fail(out, PL_ERR_OVERFLOW);
}

void pl_metrics_value(struct pl_wr *out, const char *name, const char *labels, uint64_t value)
{
    char line[512];
    int n;
    if (labels != NULL && labels[0] != '\0')
        n = snprintf(line, sizeof(line), "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    else
        n = snprintf(line, sizeof(line), "%s %llu\n", name, (unsigned long long)value);
    if (n > 0 && (size_t)n < sizeof(line))
        (void)pl_wr_bytes(out, line, (size_t)n);
    else
        pl_wr_fail(out, PL_ERR_OVERFLOW);
}
