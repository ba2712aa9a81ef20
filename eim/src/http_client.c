/* Minimal HTTP/1.1 client (http_client.h). RFC 9112: status-line, header fields,
 * Content-Length framing, or the body runs to the connection close. */
#define _POSIX_C_SOURCE 200809L
#include "provline/eim/http_client.h"

#include "provline/protocol/rd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *p = NULL, *colon = NULL, *end = NULL;
    size_t hl, pl;
    if (strncmp(url, "http://", 7) != 0)
        return PL_ERR_INVAL;
    p = url + 7;
    end = p + strcspn(p, "/");
    if (*end == '/' && end[1] != '\0')
        return PL_ERR_INVAL; /* base URL only */
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || rb[1] != ':')
            return PL_ERR_INVAL;
        hl = (size_t)(rb - p - 1);
        if (hl == 0 || hl >= hcap)
            return PL_ERR_INVAL;
        memcpy(host, p + 1, hl);
        colon = rb + 1;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        if (colon == NULL)
            return PL_ERR_INVAL;
        hl = (size_t)(colon - p);
        if (hl == 0 || hl >= hcap)
            return PL_ERR_INVAL;
        memcpy(host, p, hl);
    }
    host[hl] = '\0';
    pl = (size_t)(end - colon - 1);
    if (pl == 0 || pl >= pcap)
        return PL_ERR_INVAL;
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    for (size_t i = 0; i < pl; i++) {
        if (port[i] < '0' || port[i] > '9')
            return PL_ERR_INVAL;
    }
    return PL_OK;
}

/* One address, connected before the deadline (a non-blocking connect(2) waited for with
 * poll(2), its outcome read from SO_ERROR), then made blocking again. PL_ERR_TIMEOUT when
 * the deadline passed, PL_ERR_IO otherwise. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    int rc = PL_ERR_IO;
    if (fd < 0)
        return PL_ERR_IO;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        rc = PL_OK;
    } else if (errno == EINPROGRESS) {
        for (;;) {
            struct pollfd pf = {fd, POLLOUT, 0};
            int64_t left = deadline - mono_ms();
            int err = 0;
            socklen_t el = sizeof(err);
            if (left <= 0) {
                rc = PL_ERR_TIMEOUT;
                break;
            }
            int n = poll(&pf, 1, left > INT32_MAX ? INT32_MAX : (int)left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            if (n == 0)
                continue; /* the deadline check above ends it */
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
                rc = PL_OK;
            break;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (rc == PL_OK && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0))
        rc = PL_ERR_IO;
    if (rc != PL_OK) {
        close(fd);
        return rc;
    }
    *out = fd;
    return PL_OK;
}

static int connect_to(const char *host, const char *port, int timeout_ms, int *out)
{
    struct addrinfo hints, *res = NULL, *ai = NULL;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int rc = PL_ERR_IO;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return PL_ERR_IO;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((rc = connect_one(ai, deadline, out)) != PL_ERR_IO)
            break; /* connected, or out of time */
    }
    freeaddrinfo(res);
    return rc;
}

static int send_all(int fd, const void *p, size_t n, int64_t deadline)
{
    const char *c = p;
    while (n > 0) {
        struct pollfd pf = {fd, POLLOUT, 0};
        int64_t left = deadline - mono_ms();
        ssize_t w;
        if (left <= 0)
            return PL_ERR_TIMEOUT;
        if (poll(&pf, 1, (int)left) <= 0)
            return PL_ERR_TIMEOUT;
        w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return PL_ERR_IO;
        c += w;
        n -= (size_t)w;
    }
    return PL_OK;
}

/* Finds "\r\n\r\n" in the received bytes. */
static bool header_end(const char *buf, size_t n, size_t *end)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            *end = i + 4;
            return true;
        }
    }
    return false;
}

/* Status code and Content-Length (-1 when absent) from the header block. */
static int parse_head(const char *buf, size_t n, int *status, long long *clen)
{
    struct pl_rd r;
    const uint8_t *line = NULL;
    size_t i = 0;

    *clen = -1;
    if (n < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
        return PL_ERR_MALFORMED;
    if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0'
        || buf[11] > '9')
        return PL_ERR_MALFORMED;
    *status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    pl_rd_init(&r, (const uint8_t *)buf, n);
    while (pl_rd_left(&r) > 0) {
        size_t len = 0;
        const char *l = (const char *)pl_rd_ptr(&r);
        const char *nl = memchr(l, '\n', pl_rd_left(&r));
        if (nl == NULL)
            break;
        len = (size_t)(nl - l) + 1;
        if (pl_rd_bytes(&r, len, &line) != PL_OK)
            return PL_ERR_MALFORMED;
        i++;
        if (i == 1)
            continue;
        if (len > 16 && strncasecmp((const char *)line, "Content-Length:", 15) == 0) {
            char num[24];
            size_t k = 15, m = 0;
            while (k < len && line[k] == ' ')
                k++;
            while (k < len && line[k] >= '0' && line[k] <= '9' && m < sizeof(num) - 1)
                num[m++] = (char)line[k++];
            num[m] = '\0';
            if (m == 0 || m > 15)
                return PL_ERR_MALFORMED;
            *clen = strtoll(num, NULL, 10);
        }
    }
    return PL_OK;
}

int pl_eim_http_do(const char *url, const struct pl_eim_http_req *req, size_t max_resp,
                   int timeout_ms, struct pl_eim_http_resp *out)
{
    int rc = PL_ERR_INTERNAL;
    char host[256], port[16], head[2048];
    int fd = -1, n;
    char *buf = NULL;
    size_t got = 0, hend = 0;
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    int status = 0;
    long long clen = -1;

    if (url == NULL || req == NULL || req->method == NULL || req->path == NULL || out == NULL
        || max_resp == 0)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    if ((rc = parse_url(url, host, sizeof(host), port, sizeof(port))) != PL_OK)
        return rc;
    if (strchr(req->path, '\r') || strchr(req->path, '\n') || strchr(req->path, ' '))
        return PL_ERR_INVAL;
    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                 "User-Agent: provline-eim-ctl\r\nAccept: application/json\r\n",
                 req->method, req->path, host, port);
    if (n < 0 || (size_t)n >= sizeof(head))
        return PL_ERR_INVAL;
    if (req->auth_header != NULL || req->token != NULL) {
        int k = req->auth_header ? snprintf(head + n, sizeof(head) - (size_t)n,
                                            "Authorization: %s\r\n", req->auth_header)
                                 : snprintf(head + n, sizeof(head) - (size_t)n,
                                            "Authorization: Bearer %s\r\n", req->token);
        if (k < 0 || (size_t)k >= sizeof(head) - (size_t)n)
            return PL_ERR_INVAL;
        n += k;
    }
    if (req->body != NULL || req->body_len > 0 || strcmp(req->method, "POST") == 0) {
        int k = snprintf(head + n, sizeof(head) - (size_t)n,
                         "Content-Type: %s\r\nContent-Length: %zu\r\n",
                         req->content_type ? req->content_type : "application/json", req->body_len);
        if (k < 0 || (size_t)k >= sizeof(head) - (size_t)n)
            return PL_ERR_INVAL;
        n += k;
    }
    if ((size_t)n + 2 >= sizeof(head))
        return PL_ERR_INVAL;
    head[n++] = '\r';
    head[n++] = '\n';

    if ((rc = connect_to(host, port, timeout_ms, &fd)) != PL_OK)
        return rc;
    if ((rc = send_all(fd, head, (size_t)n, deadline)) != PL_OK)
        goto out;
    if (req->body_len > 0 && (rc = send_all(fd, req->body, req->body_len, deadline)) != PL_OK) {
        /* The server may answer (413) and close before reading everything: read on. */
        if (rc != PL_ERR_IO)
            goto out;
    }
    buf = malloc(max_resp + 1);
    if (buf == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        int64_t left = deadline - mono_ms();
        ssize_t r;
        if (left <= 0) {
            rc = PL_ERR_TIMEOUT;
            goto out;
        }
        if (poll(&pf, 1, (int)left) <= 0) {
            rc = PL_ERR_TIMEOUT;
            goto out;
        }
        if (got == max_resp) {
            rc = PL_ERR_OVERFLOW;
            goto out;
        }
        r = recv(fd, buf + got, max_resp - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (hend > 0 || got > 0)
                break; /* a reset after a complete answer */
            rc = PL_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (hend == 0 && header_end(buf, got, &hend)) {
            if ((rc = parse_head(buf, hend, &status, &clen)) != PL_OK)
                goto out;
        }
        if (hend > 0 && clen >= 0 && got - hend >= (size_t)clen)
            break;
    }
    if (hend == 0 && !header_end(buf, got, &hend)) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    if (status == 0 && (rc = parse_head(buf, hend, &status, &clen)) != PL_OK)
        goto out;
    if (clen >= 0 && got - hend < (size_t)clen) {
        rc = PL_ERR_MALFORMED; /* truncated body */
        goto out;
    }
    out->status = status;
    out->body_len = clen >= 0 ? (size_t)clen : got - hend;
    out->body = malloc(out->body_len + 1);
    if (out->body == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    memcpy(out->body, buf + hend, out->body_len);
    out->body[out->body_len] = '\0';
    rc = PL_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    if (rc != PL_OK)
        pl_eim_http_resp_clear(out);
    return rc;
}

void pl_eim_http_resp_clear(struct pl_eim_http_resp *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}
