/* provline-ipa: the IPA (GSMA SGP.32 v1.2 IPAd) of a virtual device in the field: the
 * software eUICC (sim/, its state file) behind the IPA library (provline/ipa/ipa.h), polling
 * an eIM over ESipa on CoAP/DTLS (provline/ipa/ipa_coap.h).
 *
 *   provline-ipa --euicc STATE --eim coaps://HOST:PORT[/PATH]
 *                [--psk-id ID --psk HEX | --ca FILE [--server-name NAME]] [--plain]
 *                [--state FILE] [--once | --interval-ms N] [--max-interval-ms N]
 *                [--timeout-ms N] [--lose-result-after-enable] [--verbose]
 *
 * --once polls until the eIM has nothing more to give (noEimPackageAvailable or an eIM
 * error) and exits 0, or 1 on a failed round; otherwise it polls forever on the IPA's
 * schedule (--interval-ms is the first back-off step, doubling up to --max-interval-ms)
 * until SIGTERM / SIGINT, then exits 0. --lose-result-after-enable turns on the software
 * eUICC's known-silicon knob (EIM.md §1.6: the answer to an enable is lost until the card
 * is reset); the IPA resets the card through pl_euicc_reset, as a modem does on REFRESH.
 * Logs go to stderr (one line per event); the final "status ..." line goes to stdout.
 * Exit: 0 ok, 1 failure, 2 usage. docs/ipa.md §6. */
#define _POSIX_C_SOURCE 200809L

#include "provline/ipa/ipa.h"
#include "provline/ipa/ipa_coap.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "provline/sim/euicc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

struct opts {
    const char *euicc, *eim, *psk_id, *psk_hex, *ca, *server_name, *state;
    bool once, plain, lose, verbose;
    unsigned long interval_ms, max_interval_ms, timeout_ms;
};

static void usage(void)
{
    fprintf(stderr, "usage: provline-ipa --euicc STATE --eim coaps://HOST:PORT[/PATH]\n"
                    "         [--psk-id ID --psk HEX | --ca FILE [--server-name NAME]] [--plain]\n"
                    "         [--state FILE] [--once | --interval-ms N] [--max-interval-ms N]\n"
                    "         [--timeout-ms N] [--lose-result-after-enable] [--verbose]\n");
}

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (strcmp(a, "--once") == 0) {
            o->once = true;
            takes = false;
        } else if (strcmp(a, "--plain") == 0) {
            o->plain = true;
            takes = false;
        } else if (strcmp(a, "--lose-result-after-enable") == 0) {
            o->lose = true;
            takes = false;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = true;
            takes = false;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 1;
        }
        if (!takes)
            continue;
        if (v == NULL) {
            fprintf(stderr, "provline-ipa: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--euicc") == 0)
            o->euicc = v;
        else if (strcmp(a, "--eim") == 0)
            o->eim = v;
        else if (strcmp(a, "--psk-id") == 0)
            o->psk_id = v;
        else if (strcmp(a, "--psk") == 0)
            o->psk_hex = v;
        else if (strcmp(a, "--ca") == 0)
            o->ca = v;
        else if (strcmp(a, "--server-name") == 0)
            o->server_name = v;
        else if (strcmp(a, "--state") == 0)
            o->state = v;
        else if (strcmp(a, "--interval-ms") == 0) {
            if (!parse_ulong(v, 1, 86400000ul, &o->interval_ms)) {
                fprintf(stderr, "provline-ipa: bad --interval-ms\n");
                return 2;
            }
        } else if (strcmp(a, "--max-interval-ms") == 0) {
            if (!parse_ulong(v, 1, 86400000ul, &o->max_interval_ms)) {
                fprintf(stderr, "provline-ipa: bad --max-interval-ms\n");
                return 2;
            }
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (!parse_ulong(v, 1, 600000ul, &o->timeout_ms)) {
                fprintf(stderr, "provline-ipa: bad --timeout-ms\n");
                return 2;
            }
        } else {
            fprintf(stderr, "provline-ipa: unknown option %s\n", a);
            return 2;
        }
    }
    if (o->euicc == NULL || o->eim == NULL) {
        fprintf(stderr, "provline-ipa: --euicc and --eim are required\n");
        return 2;
    }
    int modes = (o->psk_id != NULL || o->psk_hex != NULL) + (o->ca != NULL) + o->plain;
    if (modes != 1 || (o->psk_id != NULL) != (o->psk_hex != NULL)) {
        fprintf(stderr, "provline-ipa: give exactly one of --psk-id/--psk, --ca, --plain\n");
        return 2;
    }
    if (o->once && o->interval_ms != 0) {
        fprintf(stderr, "provline-ipa: --once and --interval-ms exclude each other\n");
        return 2;
    }
    if (o->max_interval_ms != 0 && o->interval_ms > o->max_interval_ms) {
        fprintf(stderr, "provline-ipa: --interval-ms above --max-interval-ms\n");
        return 2;
    }
    return 0;
}

static const char *level_name(enum pl_ipa_log_level l)
{
    switch (l) {
    case PL_IPA_LOG_ERROR:
        return "error";
    case PL_IPA_LOG_WARN:
        return "warn";
    case PL_IPA_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void ipa_log(void *user, enum pl_ipa_log_level level, const char *line)
{
    const struct opts *o = user;
    if (level == PL_IPA_LOG_DEBUG && !o->verbose)
        return;
    fprintf(stderr, "provline-ipa: %s %s\n", level_name(level), line);
}

static void coap_log(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "provline-ipa: transport %s\n", line);
}

static int card_reset(void *user)
{
    return pl_euicc_reset(user);
}

/* Sleeps up to ms, waking early on a signal. */
static void nap(uint64_t ms)
{
    while (ms > 0 && !g_stop) {
        uint64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static const char *status_name(int rc)
{
    switch (rc) {
    case PL_IPA_POLL_WORK_DONE:
        return "work-done";
    case PL_IPA_POLL_NO_PACKAGE:
        return "no-package";
    case PL_IPA_POLL_EIM_ERROR:
        return "eim-error";
    default:
        return pl_strerror(rc);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    struct pl_euicc_opts eo;
    struct pl_euicc *e = NULL;
    struct pl_ipa_coap_config cc;
    struct pl_ipa_coap *coap = NULL;
    struct pl_ipa_config ic;
    struct pl_ipa *ipa = NULL;
    struct pl_ipa_status st;
    uint8_t psk[PL_IPA_COAP_PSK_MAX];
    size_t psk_len = 0;
    int rc, exit_code = 1, last = PL_OK;

    if ((rc = parse_args(argc, argv, &o)) != 0) {
        if (rc == 2)
            usage();
        return rc == 1 ? 0 : 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    pl_euicc_opts_init(&eo);
    eo.lose_result_after_enable = o.lose;
    if ((rc = pl_euicc_open(o.euicc, &eo, &e)) != PL_OK) {
        fprintf(stderr, "provline-ipa: cannot open the eUICC %s: %s\n", o.euicc, pl_strerror(rc));
        goto out;
    }

    pl_ipa_coap_config_init(&cc);
    cc.uri = o.eim;
    cc.log = coap_log;
    if (o.psk_hex != NULL) {
        if (pl_hex_decode(o.psk_hex, psk, sizeof(psk), &psk_len) != PL_OK || psk_len == 0) {
            fprintf(stderr, "provline-ipa: --psk must be 1..%u bytes of hex\n",
                    PL_IPA_COAP_PSK_MAX);
            exit_code = 2;
            goto out;
        }
        cc.security = PL_IPA_COAP_PSK;
        cc.psk_identity = o.psk_id;
        cc.psk = psk;
        cc.psk_len = psk_len;
    } else if (o.ca != NULL) {
        cc.security = PL_IPA_COAP_CERT;
        cc.ca_file = o.ca;
        cc.server_name = o.server_name;
    } else {
        cc.security = PL_IPA_COAP_PLAIN;
        cc.allow_plain = true;
    }
    rc = pl_ipa_coap_new(&cc, &coap);
    pl_memzero(psk, sizeof(psk));
    if (rc != PL_OK) {
        fprintf(stderr, "provline-ipa: eIM transport: %s\n", pl_strerror(rc));
        exit_code = 2;
        goto out;
    }

    pl_ipa_config_init(&ic);
    ic.apdu.transmit = pl_euicc_transmit;
    ic.apdu.user = e;
    ic.card_reset = card_reset;
    ic.card_reset_user = e;
    ic.transport = pl_ipa_coap_transport(coap);
    ic.timeout_ms = o.timeout_ms != 0 ? (int)o.timeout_ms : 0;
    ic.state_path = o.state;
    ic.backoff_min_ms = (uint32_t)o.interval_ms;
    ic.backoff_max_ms = (uint32_t)o.max_interval_ms;
    if (ic.backoff_min_ms != 0 && ic.backoff_max_ms == 0 && ic.backoff_min_ms > 3600000u)
        ic.backoff_max_ms = ic.backoff_min_ms;
    if (ic.backoff_max_ms != 0 && ic.backoff_min_ms == 0 && ic.backoff_max_ms < 10000u)
        ic.backoff_min_ms = ic.backoff_max_ms;
    ic.log = ipa_log;
    ic.log_user = &o;
    if ((rc = pl_ipa_new(&ic, &ipa)) != PL_OK) {
        fprintf(stderr, "provline-ipa: IPA: %s\n", pl_strerror(rc));
        goto out;
    }

    if (o.once) {
        for (unsigned round = 0; round < 64 && !g_stop; round++) {
            last = pl_ipa_poll(ipa);
            fprintf(stderr, "provline-ipa: info poll: %s\n", status_name(last));
            if (last != PL_IPA_POLL_WORK_DONE)
                break;
        }
        exit_code = last >= 0 ? 0 : 1;
    } else {
        while (!g_stop) {
            last = pl_ipa_poll(ipa);
            fprintf(stderr, "provline-ipa: info poll: %s, next in %llu ms\n", status_name(last),
                    (unsigned long long)pl_ipa_next_poll_ms(ipa));
            nap(pl_ipa_next_poll_ms(ipa));
        }
        exit_code = 0;
    }
    pl_ipa_get_status(ipa, &st);
    printf("status polls=%llu packages=%llu acks=%llu recovered=%llu pending=%d in_flight=%d "
           "awaiting_ack=%zu trigger=%d eim=%s last=%s\n",
           (unsigned long long)st.polls, (unsigned long long)st.packages,
           (unsigned long long)st.acks_applied, (unsigned long long)st.results_recovered,
           st.result_pending, st.package_in_flight, st.awaiting_ack, st.has_trigger,
           st.eim_id[0] ? st.eim_id : "-", status_name(last));
    fflush(stdout);
out:
    pl_ipa_free(ipa);
    pl_ipa_coap_free(coap);
    pl_euicc_close(e);
    return exit_code;
}
