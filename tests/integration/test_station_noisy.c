/* Integration: a noisy line still finishes. Two devices on pty serial lines that drop and
 * corrupt bytes in both directions (vdevice --drop-rate/--corrupt-rate: the serial link
 * layer's CRC, retransmissions and resync must cope), two on CoAP through a relay that
 * drops datagrams (libcoap's CON retransmissions and block-wise transfer must cope). Every
 * device ends done with its profile. While the station runs, its metrics endpoint answers in
 * the Prometheus text format; SIGTERM then drains it to a clean exit.
 * ARCHITECTURE.md §6-§7; docs/serial-framing.md; docs/station.8.md (metrics). */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pl_line.h"
#include "pl_test.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"

#define N_DEV 4u
#define RUN_MS 300000

/* One HTTP/1.0 request to 127.0.0.1:port; the whole answer in out. */
static void http_get(uint16_t port, const char *request, char *out, size_t cap)
{
    struct sockaddr_in sa;
    size_t n = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    for (;;) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n + 1 >= cap)
            break;
    }
    out[n] = '\0';
    close(fd);
}

static uint16_t metrics_port(const char *log)
{
    size_t len = 0;
    char *text = (char *)pl_test_read_file(log, &len);
    const char *p = text != NULL ? strstr(text, "metrics on http://127.0.0.1:") : NULL;
    uint16_t port = 0;
    if (p != NULL)
        port = (uint16_t)strtoul(p + strlen("metrics on http://127.0.0.1:"), NULL, 10);
    free(text);
    return port;
}

Test(station_noisy, noisy_serial_and_lossy_coap_finish, .timeout = 600)
{
    struct pl_line l;
    char body[65536];
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    for (size_t i = 0; i < N_DEV; i++) {
        bool coap = i >= 2;
        cr_assert_eq(pl_line_add_device(&l, coap, 4), 0);
        struct pl_line_dev *d = &l.dev[i];
        d->args[d->n_args++] = "--seed";
        d->args[d->n_args++] = i == 0 ? "11" : i == 1 ? "22" : i == 2 ? "33" : "44";
        if (coap) {
            d->args[d->n_args++] = "--drop-rate";
            d->args[d->n_args++] = "0.1";
        } else {
            d->args[d->n_args++] = "--drop-rate";
            d->args[d->n_args++] = "0.0002";
            d->args[d->n_args++] = "--corrupt-rate";
            d->args[d->n_args++] = "0.0002";
        }
        cr_assert_eq(pl_line_dev_start(&l, i), 0);
    }
    /* Lossy links: give CoAP requests room for several retransmissions. */
    cr_assert_eq(pl_line_write_conf(&l, "[timers]\nT_FIXTURE = 60000\nT_IDENTIFY = 30000\n"
                                        "T_LOAD = 180000\n"),
                 0);
    cr_assert_eq(pl_line_station_start(&l, false), 0);

    uint64_t end = pl_line_now_ms() + RUN_MS;
    while (pl_line_count(l.st_log, "event=done ") < (int)N_DEV && pl_line_now_ms() < end)
        pl_line_sleep_ms(100);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), (int)N_DEV,
                 "not every device done in time (log %s)", l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=failed "), 0);

    /* The metrics endpoint, while the station runs. */
    uint16_t port = metrics_port(l.st_log);
    cr_assert_neq(port, 0, "no metrics_listening line");
    http_get(port, "GET /metrics HTTP/1.0\r\n\r\n", body, sizeof(body));
    cr_assert(strncmp(body, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", body);
    cr_assert(strstr(body, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", body);
    cr_assert(strstr(body, "# TYPE provline_station_packages gauge\n") != NULL, "%s", body);
    cr_assert(strstr(body, "provline_station_up 1\n") != NULL, "%s", body);
    cr_assert(strstr(body, "provline_station_packages{state=\"NOTIFIED\"} 4\n") != NULL, "%s",
              body);
    cr_assert(strstr(body, "provline_station_packages_settled{result=\"installed\"} 4\n") != NULL,
              "%s", body);
    cr_assert(strstr(body, "provline_station_devices{state=\"DONE\"} 4\n") != NULL, "%s", body);
    /* Every report's checkpoint came back signed and verified (checkpoint_certificate). */
    cr_assert(strstr(body, "provline_station_audit_checkpoints_total{kind=\"signed\"} 4\n") != NULL,
              "%s", body);
    cr_assert(strstr(body, "provline_station_audit_checkpoints_total{kind=\"unsigned\"} 0\n")
                  != NULL,
              "%s", body);
    cr_assert(strstr(body, "provline_station_audit_checkpoints_total{kind=\"rejected\"} 0\n")
                  != NULL,
              "%s", body);
    for (size_t i = 0; i < N_DEV; i++) {
        char needle[96];
        snprintf(needle, sizeof(needle), "provline_station_fixture_state{fixture=\"d%zu\",state=", i);
        cr_assert(strstr(body, needle) != NULL, "%s", body);
    }
    http_get(port, "GET /other HTTP/1.0\r\n\r\n", body, sizeof(body));
    cr_assert(strncmp(body, "HTTP/1.0 404", 12) == 0, "%s", body);
    http_get(port, "POST /metrics HTTP/1.0\r\n\r\n", body, sizeof(body));
    cr_assert(strncmp(body, "HTTP/1.0 405", 12) == 0, "%s", body);
    http_get(port, "garbage\r\n\r\n", body, sizeof(body));
    cr_assert(strncmp(body, "HTTP/1.0 400", 12) == 0, "%s", body);

    /* SIGTERM: drained and parked, exit 0. */
    status = pl_line_station_stop(&l, SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=stopped "), 1);

    for (size_t i = 0; i < N_DEV; i++)
        (void)pl_line_dev_stop(&l, i, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    /* The noise was real: each device's exit line counts what its wire lost or damaged. */
    for (size_t i = 0; i < N_DEV; i++) {
        size_t len = 0;
        char *text = (char *)pl_test_read_file(l.dev[i].log, &len);
        const char *p = text != NULL ? strstr(text, "exit code=0 ") : NULL;
        cr_assert_not_null(p, "device %zu: no exit line", i);
        const char *dp = strstr(p, "dropped="), *cp = strstr(p, "corrupted=");
        cr_assert(dp != NULL && cp != NULL);
        unsigned long hurt = strtoul(dp + 8, NULL, 10) + strtoul(cp + 10, NULL, 10);
        cr_assert_gt(hurt, 0, "device %zu: no fault was injected", i);
        free(text);
    }
    for (size_t i = 0; i < N_DEV; i++) {
        struct pl_euicc *e = NULL;
        cr_assert_eq(pl_euicc_open(l.dev[i].euicc, NULL, &e), PL_OK);
        cr_assert_eq(pl_euicc_profile_count(e), 1, "device %zu", i);
        cr_assert_not(pl_euicc_factory_mode(e));
        pl_euicc_close(e);
    }
    struct pl_km_stats ks;
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, N_DEV);
    cr_assert_eq(ks.pkg_issued + ks.pkg_possibly_used, 0);
    pl_line_free(&l);
}
