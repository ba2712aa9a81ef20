/* Benchmark: serial frame codec throughput (encode + incremental decode, CRC-32 and COBS
 * included) against the line rate it has to keep up with: 921600 baud, 8N1 = 10 bits per
 * byte = 92 160 B/s (ARCHITECTURE.md §6, the fastest fixture link). Prints MB/s of payload and
 * the ratio to the line rate; the codec must be far above 1x so the line, not the CPU, limits.
 *
 * Sources: protocol/include/provline/protocol/frame.h, docs/serial-framing.md §4.
 * Usage: bench_frame [seconds per case, default 1] */
#define _POSIX_C_SOURCE 200809L

#include "provline/protocol/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_RATE_BPS    921600.0
#define LINE_BYTES_PER_S (LINE_RATE_BPS / 10.0) /* 8N1 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t frames_seen;
static size_t bytes_seen;

static void on_frame(void *user, const struct pl_frame_hdr *h, const uint8_t *payload)
{
    (void)user;
    (void)payload;
    frames_seen++;
    bytes_seen += h->len;
}

static void fill(uint8_t *p, size_t n, int zeros)
{
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
        if (zeros && i % 7 == 0)
            p[i] = 0;
    }
}

static int run_case(const char *name, size_t len, int zeros, double seconds, double *worst)
{
    static uint8_t payload[PL_FRAME_MAX_PAYLOAD];
    static uint8_t wire[PL_FRAME_ENC_MAX];
    static struct pl_frame_rx rx;
    fill(payload, len, zeros);
    struct pl_frame_hdr h = {.type = PL_FRAME_DATA,
                             .seq = 1,
                             .src = 0x11111111u,
                             .dst = 0x22222222u,
                             .len = (uint16_t)len};
    size_t wn = 0;

    /* encode only */
    size_t iters = 0;
    double t0 = now_s(), t1;
    do {
        for (int k = 0; k < 64; k++) {
            h.seq = (uint8_t)iters;
            if (pl_frame_encode(&h, payload, wire, sizeof(wire), &wn) != PL_OK)
                return 1;
            iters++;
        }
        t1 = now_s();
    } while (t1 - t0 < seconds);
    double enc = (double)iters * (double)len / (t1 - t0);

    /* decode only (the same wire bytes, fed whole) */
    pl_frame_rx_init(&rx);
    frames_seen = bytes_seen = 0;
    iters = 0;
    t0 = now_s();
    do {
        for (int k = 0; k < 64; k++) {
            (void)pl_frame_rx_feed(&rx, wire, wn, on_frame, NULL);
            iters++;
        }
        t1 = now_s();
    } while (t1 - t0 < seconds);
    if (frames_seen != iters || pl_frame_rx_errors(&rx) != 0)
        return 1;
    double dec = (double)iters * (double)len / (t1 - t0);

    /* encode then decode, as a frame goes from station to fixture */
    pl_frame_rx_init(&rx);
    frames_seen = bytes_seen = 0;
    iters = 0;
    t0 = now_s();
    do {
        for (int k = 0; k < 64; k++) {
            h.seq = (uint8_t)iters;
            if (pl_frame_encode(&h, payload, wire, sizeof(wire), &wn) != PL_OK)
                return 1;
            (void)pl_frame_rx_feed(&rx, wire, wn, on_frame, NULL);
            iters++;
        }
        t1 = now_s();
    } while (t1 - t0 < seconds);
    if (frames_seen != iters)
        return 1;
    double both = (double)iters * (double)len / (t1 - t0);
    double ratio = both / LINE_BYTES_PER_S;
    double eff = (double)len / (double)wn;
    printf("%-22s %6zu B  wire %6zu B (%5.1f%%)  encode %8.1f MB/s  decode %8.1f MB/s  "
           "enc+dec %8.1f MB/s  = %8.0fx line rate\n",
           name, len, wn, 100.0 * eff, enc / 1e6, dec / 1e6, both / 1e6, ratio);
    if (ratio < *worst)
        *worst = ratio;
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0)
        seconds = 1.0;
    printf("serial frame codec vs line rate %.0f baud 8N1 = %.0f B/s payload ceiling\n",
           LINE_RATE_BPS, LINE_BYTES_PER_S);
    double worst = 1e300;
    struct {
        const char *name;
        size_t len;
        int zeros;
    } cases[] = {
        {"control-size payload", 16, 0},
        {"small", 256, 0},
        {"mtu default", 1024, 0},
        {"max payload", PL_FRAME_MAX_PAYLOAD, 0},
        {"max payload, zeros", PL_FRAME_MAX_PAYLOAD, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (run_case(cases[i].name, cases[i].len, cases[i].zeros, seconds, &worst) != 0) {
            fprintf(stderr, "bench_frame: codec failure in case %s\n", cases[i].name);
            return 1;
        }
    }
    printf("slowest case: %.0fx the 921600-baud line rate\n", worst);
    return worst > 10.0 ? 0 : 1;
}
