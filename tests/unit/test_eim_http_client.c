/* Unit: the eIM API's HTTP client (eim/http_client.h) keeps its timeout while connecting: a
 * listener whose accept queue is full drops further SYNs (Linux, tcp_abort_on_overflow=0),
 * so a connect to it would block for the kernel's SYN retries (minutes) - the client must
 * give up with PL_ERR_TIMEOUT near the deadline. And a closed port is PL_ERR_IO at once. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "provline/eim/http_client.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int listener(int backlog, unsigned *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, backlog), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int plain_connect(unsigned port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    (void)connect(fd, (struct sockaddr *)&a, sizeof(a));
    return fd;
}

Test(eim_http_client, connect_keeps_the_timeout, .timeout = 30)
{
    unsigned port = 0;
    int lfd = listener(0, &port);
    int fill[4];
    char url[64];
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    /* fill the accept queue (never accepted) */
    for (size_t i = 0; i < 4; i++)
        fill[i] = plain_connect(port);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.path = "/v1/health";
    memset(&resp, 0, sizeof(resp));
    long t0 = now_ms();
    int rc = pl_eim_http_do(url, &req, 4096, 700, &resp);
    long dt = now_ms() - t0;
    pl_eim_http_resp_clear(&resp);
    cr_assert_eq(rc, PL_ERR_TIMEOUT, "rc %d after %ld ms", rc, dt);
    cr_assert_lt(dt, 5000, "gave up only after %ld ms", dt);
    for (size_t i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
}

Test(eim_http_client, closed_port_is_an_io_error)
{
    unsigned port = 0;
    int lfd = listener(1, &port);
    char url[64];
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    close(lfd); /* nothing listens there any more */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.path = "/v1/health";
    memset(&resp, 0, sizeof(resp));
    cr_assert_eq(pl_eim_http_do(url, &req, 4096, 700, &resp), PL_ERR_IO);
    pl_eim_http_resp_clear(&resp);
}
