/* provline-vdevice: a virtual device for rehearsing a line without hardware. It serves the
 * station's fixture link (a serial line on a pseudo-terminal, or CoAP over UDP/DTLS-PSK)
 * and hands every fixture request to the FPA (ipa/fpa.h), whose eUICC is the software
 * eUICC (sim/euicc.h) on a state file.
 *
 * Sources: ARCHITECTURE.md §3 (sim/: virtual device), §6 (fixture transports), §7 (clean
 * shutdown on SIGTERM, one log line per event); reference/IFPP.md §7 (cases 7, 18: cut
 * transfers and power loss); docs/fixture-protocol.md §6 (this program: options, output,
 * exit codes, fault model); DEPENDENCIES.md §3, §7.
 *
 *   provline-vdevice --euicc STATE (--pty LINKPATH [--baud N] |
 *                    --coap HOST:PORT [--psk-id ID --psk HEX] [--resource NAME])
 *                    [--drop-rate P] [--corrupt-rate P] [--delay-ms N]
 *                    [--unplug-after-bytes N] [--unplug-after-apdus N]
 *                    [--power-cut-at-write N] [--seed S]
 *                    [--mtu N] [--rto-ms N] [--max-retries N] [--basic-channel]
 *
 * stdout carries exactly one line once the link is served: "READY pty LINKPATH SLAVE" or
 * "READY coap HOST:PORT udp|dtls". stderr carries the log, one line per request. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provline/fixtures/serial.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "vdevice.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

void vdev_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "provline-vdevice: %s\n", line);
    fflush(stderr);
}

static void fpa_log(void *user, enum pl_fpa_log_level level, const char *line)
{
    (void)user;
    (void)level;
    vdev_log("%s", line);
}

int vdev_handle(struct vdev *v, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    int rc = pl_fpa_handle(v->fpa, req, len, rsp);
    if (pl_euicc_is_dead(v->euicc)) {
        vdev_log("power cut: the eUICC's state write %u was cut; exiting without an answer",
                 pl_euicc_write_count(v->euicc));
        _exit(VDEV_EXIT_POWER_CUT);
    }
    return rc;
}

_Noreturn void vdev_unplug(struct vdev *v)
{
    vdev_log("unplugged after %" PRIu64 " bytes from the station and %" PRIu64
             " APDUs to the eUICC",
             v->f.bytes_in, v->f.apdus);
    pl_euicc_close(v->euicc); /* a load in progress stays unfinished: interrupted at next open */
    _exit(VDEV_EXIT_UNPLUGGED);
}

/* The APDU seam between the FPA and the eUICC, counting for --unplug-after-apdus: the
 * device loses power before the Nth APDU reaches the eUICC. */
static int vdev_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                         size_t rcap, size_t *rlen)
{
    struct vdev *v = user;
    v->f.apdus++;
    if (v->f.unplug_after_apdus > 0 && v->f.apdus >= v->f.unplug_after_apdus)
        vdev_unplug(v);
    return pl_euicc_transmit(v->euicc, capdu, clen, rapdu, rcap, rlen);
}

/* ---- fault PRNG: splitmix64 (S. Vigna, public-domain reference description) ---- */

static uint64_t next64(struct vdev_faults *f)
{
    uint64_t z = (f->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double vdev_rand01(struct vdev_faults *f)
{
    return (double)(next64(f) >> 11) * (1.0 / 9007199254740992.0);
}

uint8_t vdev_rand_byte(struct vdev_faults *f)
{
    uint8_t b;
    do {
        b = (uint8_t)next64(f);
    } while (b == 0);
    return b;
}

size_t vdev_fault_bytes(struct vdev_faults *f, uint8_t *buf, size_t n)
{
    size_t k = 0;
    if (f->drop <= 0.0 && f->corrupt <= 0.0)
        return n;
    for (size_t i = 0; i < n; i++) {
        if (f->drop > 0.0 && vdev_rand01(f) < f->drop) {
            f->dropped++;
            continue;
        }
        uint8_t b = buf[i];
        if (f->corrupt > 0.0 && vdev_rand01(f) < f->corrupt) {
            b ^= vdev_rand_byte(f);
            f->corrupted++;
        }
        buf[k++] = b;
    }
    return k;
}

bool vdev_any_packet_fault(const struct vdev_faults *f)
{
    return f->drop > 0.0 || f->corrupt > 0.0 || f->unplug_after > 0;
}

/* ---- arguments ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: provline-vdevice --euicc STATE (--pty LINKPATH [--baud N] |\n"
            "         --coap HOST:PORT [--psk-id ID --psk HEX] [--resource NAME])\n"
            "         [--drop-rate P] [--corrupt-rate P] [--delay-ms N]\n"
            "         [--unplug-after-bytes N] [--unplug-after-apdus N]\n"
            "         [--power-cut-at-write N] [--seed S]\n"
            "         [--mtu N] [--rto-ms N] [--max-retries N] [--basic-channel]\n");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0' || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *end = NULL;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == NULL || *end != '\0' || !(v >= 0.0 && v < 1.0))
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct vdev v;
    uint64_t u = 0;
    bool basic = false, have_seed = false;
    unsigned cut = 0;
    const char *psk_hex = NULL;
    int rc;

    memset(&v, 0, sizeof(v));
    v.baud = 115200;
    v.stop = &g_stop;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--basic-channel") == 0) {
            basic = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return VDEV_EXIT_OK;
        }
        if (val == NULL) {
            fprintf(stderr, "provline-vdevice: %s needs a value\n", a);
            usage();
            return VDEV_EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "--euicc") == 0)
            v.euicc_path = val;
        else if (strcmp(a, "--pty") == 0)
            v.pty_path = val;
        else if (strcmp(a, "--coap") == 0)
            v.coap = val;
        else if (strcmp(a, "--resource") == 0)
            v.resource = val;
        else if (strcmp(a, "--psk-id") == 0)
            v.psk_id = val;
        else if (strcmp(a, "--psk") == 0)
            psk_hex = val;
        else if (strcmp(a, "--baud") == 0)
            ok = parse_u64(val, UINT32_MAX, &u) == 0 && pl_serial_baud_ok((unsigned)u)
                 && ((v.baud = (unsigned)u), true);
        else if (strcmp(a, "--drop-rate") == 0)
            ok = parse_rate(val, &v.f.drop) == 0;
        else if (strcmp(a, "--corrupt-rate") == 0)
            ok = parse_rate(val, &v.f.corrupt) == 0;
        else if (strcmp(a, "--delay-ms") == 0)
            ok = parse_u64(val, 600000, &u) == 0 && ((v.f.delay_ms = (uint32_t)u), true);
        else if (strcmp(a, "--unplug-after-bytes") == 0)
            ok = parse_u64(val, UINT64_MAX, &v.f.unplug_after) == 0 && v.f.unplug_after > 0;
        else if (strcmp(a, "--unplug-after-apdus") == 0)
            ok = parse_u64(val, UINT64_MAX, &v.f.unplug_after_apdus) == 0
                 && v.f.unplug_after_apdus > 0;
        else if (strcmp(a, "--power-cut-at-write") == 0)
            ok = parse_u64(val, UINT32_MAX, &u) == 0 && u > 0 && ((cut = (unsigned)u), true);
        else if (strcmp(a, "--seed") == 0)
            ok = parse_u64(val, UINT64_MAX, &v.f.seed) == 0 && ((have_seed = true), true);
        else if (strcmp(a, "--mtu") == 0)
            ok = parse_u64(val, 4096, &u) == 0 && u > 0 && ((v.mtu = (size_t)u), true);
        else if (strcmp(a, "--rto-ms") == 0)
            ok = parse_u64(val, 600000, &u) == 0 && u > 0 && ((v.rto_ms = (uint32_t)u), true);
        else if (strcmp(a, "--max-retries") == 0)
            ok = parse_u64(val, 100000, &u) == 0 && u > 0
                 && ((v.max_retries = (uint32_t)u), true);
        else {
            fprintf(stderr, "provline-vdevice: unknown option %s\n", a);
            usage();
            return VDEV_EXIT_USAGE;
        }
        if (!ok) {
            fprintf(stderr, "provline-vdevice: bad value for %s: %s\n", a, val);
            return VDEV_EXIT_USAGE;
        }
    }
    if (v.euicc_path == NULL || (v.pty_path == NULL) == (v.coap == NULL)) {
        fprintf(stderr, "provline-vdevice: need --euicc and exactly one of --pty / --coap\n");
        usage();
        return VDEV_EXIT_USAGE;
    }
    if ((v.psk_id == NULL) != (psk_hex == NULL) || (v.psk_id != NULL && v.coap == NULL)) {
        fprintf(stderr, "provline-vdevice: --psk-id and --psk go together, with --coap\n");
        return VDEV_EXIT_USAGE;
    }
    if (psk_hex != NULL
        && (pl_hex_decode(psk_hex, v.psk, sizeof(v.psk), &v.psk_len) != PL_OK || v.psk_len == 0)) {
        fprintf(stderr, "provline-vdevice: --psk must be 1..64 bytes of hex\n");
        return VDEV_EXIT_USAGE;
    }
    if (!have_seed)
        v.f.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    v.f.state = v.f.seed;

    /* The device: software eUICC + FPA. */
    struct pl_euicc_opts o;
    pl_euicc_opts_init(&o);
    o.fail_write_at = cut;
    if ((rc = pl_euicc_open(v.euicc_path, &o, &v.euicc)) != PL_OK) {
        fprintf(stderr, "provline-vdevice: cannot open eUICC state %s: %s\n", v.euicc_path,
                pl_strerror(rc));
        return VDEV_EXIT_USAGE;
    }
    if (pl_euicc_is_dead(v.euicc)) {
        vdev_log("power cut while opening the eUICC state");
        return VDEV_EXIT_POWER_CUT;
    }
    struct pl_fpa_config fc;
    pl_fpa_config_init(&fc);
    fc.apdu.transmit = vdev_transmit;
    fc.apdu.user = &v;
    fc.basic_channel = basic;
    fc.log = fpa_log;
    if ((rc = pl_fpa_new(&fc, &v.fpa)) != PL_OK) {
        fprintf(stderr, "provline-vdevice: FPA: %s\n", pl_strerror(rc));
        pl_euicc_close(v.euicc);
        return VDEV_EXIT_RUNTIME;
    }
    uint8_t eid[PL_EUICC_EID_LEN];
    char eid_hex[2 * PL_EUICC_EID_LEN + 1];
    pl_euicc_get_eid(v.euicc, eid);
    if (pl_hex_encode(eid, sizeof(eid), eid_hex, sizeof(eid_hex)) != PL_OK)
        eid_hex[0] = '\0';
    vdev_log("start eid=%s factory_mode=%d seed=%" PRIu64 " drop=%g corrupt=%g delay_ms=%u "
             "unplug_after=%" PRIu64 " unplug_after_apdus=%" PRIu64 " power_cut_at_write=%u",
             eid_hex, pl_euicc_factory_mode(v.euicc) ? 1 : 0, v.f.seed, v.f.drop, v.f.corrupt,
             (unsigned)v.f.delay_ms, v.f.unplug_after, v.f.unplug_after_apdus, cut);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = v.pty_path != NULL ? vdev_run_serial(&v) : vdev_run_coap(&v);

    struct pl_fpa_stats st;
    pl_fpa_get_stats(v.fpa, &st);
    vdev_log("exit code=%d requests=%" PRIu64 " replayed=%" PRIu64 " errors=%" PRIu64
             " apdus=%" PRIu64 " bytes_in=%" PRIu64 " dropped=%" PRIu64 " corrupted=%" PRIu64,
             rc, st.requests, st.replayed, st.errors, st.apdus, v.f.bytes_in, v.f.dropped,
             v.f.corrupted);
    pl_fpa_free(v.fpa);
    pl_euicc_close(v.euicc);
    pl_memzero(v.psk, sizeof(v.psk));
    return rc;
}
