/* Unit: the station's metrics endpoint (station/metrics.h) over loopback TCP and a unix
 * socket - Prometheus text for GET /metrics, 404/405/400 for anything else, oversized and
 * slow clients dropped, non-loopback refused - and the readable package info
 * (station/pkginfo.h): the ICCID of the MAC-only '88' StoreMetadata of a sealed package.
 * Prometheus exposition format 0.0.4; RFC 1945; GSMA SGP.22 v2.5 §2.5.4. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fixture_testutil.h"
#include "pl_euicc_test.h"
#include "pl_test.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/station/metrics.h"
#include "provline/station/pkginfo.h"

static unsigned renders;

static int render(void *user, struct pl_wr *out)
{
    (void)user;
    renders++;
    pl_metrics_header(out, "provline_test_value", "gauge", "A test value.");
    pl_metrics_value(out, "provline_test_value", "state=\"LOAD\"", 42);
    pl_metrics_value(out, "provline_test_value", NULL, 7);
    return pl_wr_status(out);
}

static uint64_t ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the endpoint until the client socket fd has its answer (or closes); returns it. */
static void exchange(struct pl_metrics *m, int fd, const char *req, size_t req_len, char *out,
                     size_t cap)
{
    size_t n = 0;
    uint64_t end = ms() + 5000;
    if (req_len > 0)
        cr_assert_eq(write(fd, req, req_len), (ssize_t)req_len);
    cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    for (;;) {
        struct pollfd fds[PL_METRICS_POLLFDS];
        size_t k = pl_metrics_pollfds(m, fds, PL_METRICS_POLLFDS);
        cr_assert_geq(poll(fds, (nfds_t)k, 10), 0);
        pl_metrics_handle(m, fds, k, ms());
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0 || errno == ECONNRESET)
            break;
        else
            cr_assert(errno == EAGAIN || errno == EWOULDBLOCK, "%s", strerror(errno));
        cr_assert_lt(ms(), end, "no answer");
    }
    out[n] = '\0';
}

static int tcp_client(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

Test(station_metrics, tcp_answers)
{
    struct pl_metrics_config c;
    struct pl_metrics *m = NULL;
    char out[8192];
    int fd;

    memset(&c, 0, sizeof(c));
    c.host = "127.0.0.1";
    c.port = 0;
    c.io_timeout_ms = 300;
    c.render = render;
    cr_assert_eq(pl_metrics_new(&c, &m), PL_OK);
    uint16_t port = pl_metrics_port(m);
    cr_assert_neq(port, 0);

    fd = tcp_client(port);
    exchange(m, fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 34, out, sizeof(out));
    close(fd);
    cr_assert(strncmp(out, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", out);
    cr_assert(strstr(out, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
    cr_assert(strstr(out, "\r\n\r\n# HELP provline_test_value A test value.\n"
                          "# TYPE provline_test_value gauge\n"
                          "provline_test_value{state=\"LOAD\"} 42\nprovline_test_value 7\n")
                  != NULL,
              "%s", out);
    cr_assert(strstr(out, "Content-Length: 133\r\n") != NULL, "%s", out);

    fd = tcp_client(port);
    exchange(m, fd, "GET /nope HTTP/1.0\r\n\r\n", 22, out, sizeof(out));
    close(fd);
    cr_assert(strncmp(out, "HTTP/1.0 404 Not Found", 22) == 0, "%s", out);
    fd = tcp_client(port);
    exchange(m, fd, "DELETE /metrics HTTP/1.0\r\n\r\n", 28, out, sizeof(out));
    close(fd);
    cr_assert(strncmp(out, "HTTP/1.0 405", 12) == 0, "%s", out);
    fd = tcp_client(port);
    exchange(m, fd, "GET\x01 / HTTP/1.0\r\n\r\n", 19, out, sizeof(out));
    close(fd);
    cr_assert(strncmp(out, "HTTP/1.0 400", 12) == 0, "%s", out);
    /* A request over the cap: 400, never a read past the buffer. */
    char *big = malloc(PL_METRICS_REQ_MAX + 100);
    memset(big, 'A', PL_METRICS_REQ_MAX + 100);
    fd = tcp_client(port);
    exchange(m, fd, big, PL_METRICS_REQ_MAX + 100, out, sizeof(out));
    close(fd);
    free(big);
    cr_assert(strncmp(out, "HTTP/1.0 400", 12) == 0, "%s", out);
    /* A client that never finishes its request is dropped after the I/O timeout. */
    unsigned before = renders;
    fd = tcp_client(port);
    exchange(m, fd, "GET /metrics HTTP/1.0\r\n", 23, out, sizeof(out));
    close(fd);
    cr_assert_str_eq(out, "");
    cr_assert_eq(renders, before);
    pl_metrics_free(m);

    /* Loopback only. */
    c.host = "10.1.2.3";
    cr_assert_eq(pl_metrics_new(&c, &m), PL_ERR_INVAL);
    c.host = NULL;
    cr_assert_eq(pl_metrics_new(&c, &m), PL_ERR_INVAL);
}

Test(station_metrics, unix_socket)
{
    struct pl_metrics_config c;
    struct pl_metrics *m = NULL;
    struct sockaddr_un su;
    char dir[256], path[300], out[8192];

    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/metrics.sock", dir);
    memset(&c, 0, sizeof(c));
    c.unix_path = path;
    c.render = render;
    cr_assert_eq(pl_metrics_new(&c, &m), PL_OK);
    cr_assert_eq(pl_metrics_port(m), 0);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    cr_assert_lt(strlen(path), sizeof(su.sun_path));
    memcpy(su.sun_path, path, strlen(path) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&su, sizeof(su)), 0);
    exchange(m, fd, "GET /metrics HTTP/1.0\n\n", 23, out, sizeof(out));
    close(fd);
    cr_assert(strstr(out, "provline_test_value 7\n") != NULL, "%s", out);
    pl_metrics_free(m);
    cr_assert_eq(access(path, F_OK), -1, "socket file left behind");
    /* A regular file at the path is never replaced. */
    FILE *f = fopen(path, "w");
    fclose(f);
    cr_assert_eq(pl_metrics_new(&c, &m), PL_ERR_IO);
    pl_test_rmtree(dir);
}

Test(station_pkginfo, iccid_from_the_88_segments)
{
    struct pl_et t;
    struct pl_euicc *e = NULL;
    struct pl_ft_pkg pkg;
    char path[512];
    uint8_t iccid[PL_PKGINFO_ICCID_LEN], want[PL_ICCID_LEN];
    size_t upp_len = 0;

    cr_assert_eq(pl_et_init(&t, PL_CURVE_P256), PL_OK);
    cr_assert_eq(pl_et_mint(&t, "dev", 2, NULL, path, sizeof(path)), PL_OK);
    cr_assert_eq(pl_euicc_open(path, NULL, &e), PL_OK);
    cr_assert_eq(pl_ft_pkg_for(&t, e, 1, "TS48V1-A-UNIQUE.der", &pkg), PL_OK);
    uint8_t *upp = pl_et_upp("TS48V1-A-UNIQUE.der", &upp_len);
    cr_assert_not_null(upp);
    cr_assert_eq(pl_upp_iccid(upp, upp_len, want), PL_OK);
    cr_assert_eq(pl_pkginfo_envelope_iccid(pkg.env.buf, pkg.env.len, iccid), PL_OK);
    cr_assert_eq(memcmp(iccid, want, sizeof(want)), 0);
    cr_assert_eq(pl_pkginfo_iccid(pkg.bpp.buf, pkg.bpp.len, iccid), PL_OK);
    cr_assert_eq(memcmp(iccid, want, sizeof(want)), 0);
    /* Damaged inputs are refused, never misread. */
    cr_assert_neq(pl_pkginfo_envelope_iccid(pkg.env.buf, pkg.env.len - 1, iccid), PL_OK);
    cr_assert_neq(pl_pkginfo_iccid(pkg.bpp.buf, pkg.bpp.len / 2, iccid), PL_OK);
    cr_assert_neq(pl_pkginfo_iccid(upp, upp_len, iccid), PL_OK);
    free(upp);
    pl_ft_pkg_free(&pkg);
    pl_euicc_close(e);
    pl_et_free(&t);
}
