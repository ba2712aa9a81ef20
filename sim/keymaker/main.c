/* provline-keymaker: the reference Key Maker (SM-DPf) of a lab line.
 * GSMA SGP.41 v1.0 SM-DPf (binding, eUICC data and Profile Loading Report verification),
 * SGP.22 v2.5 §2.5.4 BPP generation; reference/IFPP.md §3, §5, §6.1, §6.3;
 * ARCHITECTURE.md §4-§7; docs/station-keymaker-protocol.md.
 * The daemon's main() owns the process-wide state: arguments, signals, stdout/stderr,
 * the exit status. ARCHITECTURE.md §7: --config FILE (docs/keymaker.conf.5.md) with flags
 * overriding it, --check-config, SIGTERM, structured logs (one line per event on stderr), a
 * metrics endpoint (--metrics), docs/man/provline-keymaker.8. */
#define _POSIX_C_SOURCE 200809L
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/x509.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/sim/pki.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 2

static volatile sig_atomic_t g_stop;
static enum pl_km_log_level g_level = PL_KM_LOG_INFO;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void log_stderr(void *user, enum pl_km_log_level level, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32] = "";
    struct timespec now;
    struct tm tm;

    (void)user;
    if (level > g_level)
        return;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm) != NULL)
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* One fprintf per event: lines from the ZAP thread never interleave mid-line. */
    fprintf(stderr, "ts=%s level=%s component=keymaker %s\n", ts,
            names[(unsigned)level < 4u ? (unsigned)level : 3u], line);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: provline-keymaker <command> [options]\n"
            "\n"
            "  serve [--config FILE] [--check-config] [--pki DIR] [--db FILE] [--profiles DIR]\n"
            "        [--bind ENDPOINT] [--curve-secret FILE] [--allow FILE] [--lease-seconds N]\n"
            "        [--id NAME] [--metrics 127.0.0.1:PORT] [--rsk] [--verbose]\n"
            "      Serve stations over ZeroMQ (ROUTER, CurveZMQ, ZAP allow-list). Settings come\n"
            "      from the INI file (keymaker.conf(5)); flags override it. --check-config\n"
            "      validates them, names each problem and exits 0 or 1.\n"
            "  keygen --out PREFIX\n"
            "      Write a CurveZMQ key pair: PREFIX.key (secret, 0600) and PREFIX.pub (Z85).\n"
            "  bind --pki DIR --eid HEX --otk-pub HEX --upp FILE --out BPP.der\n"
            "       [--curve p256|bp256] [--host-id HEX] [--transaction-id HEX] [--rsk|--no-rsk]\n"
            "      Offline binding of one UPP to one one-time key (lab use: the OTK given here\n"
            "      is NOT verified; the served path only binds eUICC-signed OTKs).\n"
            "  status --db FILE\n"
            "      Counts of the inventory, OTK registry and packages.\n"
            "  mint-euicc --pki DIR --out FILE [--eid HEX] [--otks N]\n"
            "      Create a software eUICC state file (sim/euicc.h) with N signed OTKs.\n");
}

/* Finds "--name VALUE" style options; flags have no value. */
struct opt {
    const char *name;
    bool flag;
    const char *value;
    bool set;
};

static int parse_opts(int argc, char **argv, struct opt *opts, size_t n)
{
    for (int i = 1; i < argc; i++) {
        size_t k = 0;
        for (; k < n; k++)
            if (strcmp(argv[i], opts[k].name) == 0)
                break;
        if (k == n) {
            fprintf(stderr, "provline-keymaker %s: unknown option '%s'\n", argv[0], argv[i]);
            return -1;
        }
        if (opts[k].flag) {
            opts[k].set = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "provline-keymaker %s: %s needs a value\n", argv[0], argv[i]);
            return -1;
        }
        opts[k].value = argv[++i];
        opts[k].set = true;
    }
    return 0;
}

static const char *need(const struct opt *o, const char *cmd)
{
    if (!o->set || o->value == NULL || o->value[0] == '\0') {
        fprintf(stderr, "provline-keymaker %s: %s is required\n", cmd, o->name);
        return NULL;
    }
    return o->value;
}

/* ---------------------------------------------------------------------- serve ---- */

/* Settings problems: for --check-config one human line each on stderr; when serving, one
 * structured log line each (then the daemon exits 1). */
static void on_problem(void *user, const char *where, const char *setting, const char *what)
{
    const bool *checking = user;
    if (*checking) {
        fprintf(stderr, "provline-keymaker: %s: %s%s%s\n", where, setting,
                setting[0] ? ": " : "", what);
        return;
    }
    char line[1024];
    snprintf(line, sizeof(line), "event=config_error where=\"%s\" setting=%s problem=\"%s\"",
             where, setting[0] ? setting : "-", what);
    log_stderr(NULL, PL_KM_LOG_ERROR, line);
}

/* The log line of a failure that ends `serve`: exit status 1. */
static int serve_fatal(const char *step, const char *dir, int rc)
{
    char line[512];
    snprintf(line, sizeof(line), "event=fatal step=%s%s%s%s error=\"%s\"", step,
             dir ? " dir=\"" : "", dir ? dir : "", dir ? "\"" : "", pl_strerror(rc));
    log_stderr(NULL, PL_KM_LOG_ERROR, line);
    return 1;
}

/* Flags of `serve` that are settings (docs/keymaker.conf.5.md): --NAME VALUE, or a switch. */
static bool is_switch(const char *name)
{
    return strcmp(name, "--rsk") == 0 || strcmp(name, "--verbose") == 0;
}

/* --NAME is a setting (pl_km_setting_name, '-' for '_'). */
static bool known_flag(const char *flag)
{
    char key[32];
    size_t n = strlen(flag);
    if (n < 3 || n - 2 >= sizeof(key) || strncmp(flag, "--", 2) != 0)
        return false;
    for (size_t i = 2; i <= n; i++)
        key[i - 2] = flag[i] == '-' ? '_' : flag[i];
    for (unsigned k = 0; k < PL_KM_SETTINGS; k++)
        if (strcmp(key, pl_km_setting_name((enum pl_km_setting)k)) == 0)
            return true;
    return false;
}

static int cmd_serve(int argc, char **argv)
{
    struct pl_km_settings s;
    struct pl_km_daemon d;
    struct pl_km *km = NULL;
    const char *config = NULL;
    bool checking = false;
    int rc = PL_ERR_INTERNAL;

    /* --config and --check-config first: the file is read before the flags, which
     * override it whatever their order. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0) {
            checking = true;
        } else if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "provline-keymaker serve: --config needs a value\n");
                return EXIT_USAGE;
            }
            config = argv[++i];
        } else if (!known_flag(argv[i])) {
            fprintf(stderr, "provline-keymaker serve: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        } else if (!is_switch(argv[i])) {
            i++; /* a setting's value, applied below */
        }
    }
    pl_km_settings_init(&s, on_problem, &checking);
    if (config != NULL && pl_km_settings_load(&s, config) == PL_ERR_NOMEM) {
        fprintf(stderr, "provline-keymaker: out of memory\n");
        pl_km_settings_free(&s);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-config") == 0)
            continue;
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        const char *flag = argv[i], *value = "true";
        if (!is_switch(flag)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "provline-keymaker serve: %s needs a value\n", flag);
                pl_km_settings_free(&s);
                return EXIT_USAGE;
            }
            value = argv[++i];
        }
        if ((rc = pl_km_settings_set(&s, flag + 2, value, flag))) {
            fprintf(stderr, "provline-keymaker: out of memory\n");
            pl_km_settings_free(&s);
            return 1;
        }
    }
    /* Everything that can be checked without binding, creating or writing anything. */
    (void)pl_km_settings_check(&s, time(NULL));
    if (checking) {
        unsigned n = s.problems;
        pl_km_settings_free(&s);
        if (n > 0) {
            fprintf(stderr, "provline-keymaker: configuration has %u problem%s\n", n,
                    n == 1 ? "" : "s");
            return 1;
        }
        printf("configuration OK\n");
        return 0;
    }
    if (s.problems > 0 || pl_km_settings_apply(&s, &d) != PL_OK) {
        pl_km_settings_free(&s);
        return 1;
    }
    if (d.verbose)
        g_level = PL_KM_LOG_DEBUG;
    d.km.log = log_stderr;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    int status = 1;
    unsigned added = 0, skipped = 0;
    if ((rc = pl_km_open(&d.km, &km))) {
        serve_fatal("open", NULL, rc);
        goto out;
    }
    if ((rc = pl_km_load_profiles(km, d.profiles, &added, &skipped))) {
        serve_fatal("profiles", d.profiles, rc);
        goto out;
    }
    char line[128];
    snprintf(line, sizeof(line), "event=profiles_loaded added=%u skipped=%u", added, skipped);
    log_stderr(NULL, PL_KM_LOG_INFO, line);
    if ((rc = pl_km_serve(km, &d.server, &g_stop))) {
        serve_fatal("serve", NULL, rc);
        goto out;
    }
    log_stderr(NULL, PL_KM_LOG_INFO, "event=stopped");
    status = 0;
out:
    pl_km_close(km);
    pl_km_settings_free(&s);
    return status;
}

/* --------------------------------------------------------------------- keygen ---- */

static int cmd_keygen(int argc, char **argv)
{
    struct opt o[] = {{"--out", false, NULL, false}};
    if (parse_opts(argc, argv, o, 1) != 0)
        return EXIT_USAGE;
    const char *prefix = need(&o[0], "keygen");
    if (!prefix)
        return EXIT_USAGE;
    int rc = pl_km_keygen(prefix);
    if (rc) {
        fprintf(stderr, "provline-keymaker keygen: %s\n", pl_strerror(rc));
        return 1;
    }
    printf("%s.key\n%s.pub\n", prefix, prefix);
    return 0;
}

/* ----------------------------------------------------------------------- bind ---- */

static uint8_t *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    if (buf == NULL || ferror(f) || n > max || n == 0) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int hex_arg(const char *name, const char *s, uint8_t *out, size_t min, size_t max,
                   size_t *len)
{
    size_t n = 0;
    if (pl_hex_decode(s, out, max, &n) != PL_OK || n < min || n > max) {
        fprintf(stderr, "provline-keymaker bind: %s must be %zu..%zu bytes of hex\n", name, min,
                max);
        return -1;
    }
    *len = n;
    return 0;
}

static int cmd_bind(int argc, char **argv)
{
    struct opt o[] = {
        {"--pki", false, NULL, false},     {"--eid", false, NULL, false},
        {"--otk-pub", false, NULL, false}, {"--upp", false, NULL, false},
        {"--out", false, NULL, false},     {"--curve", false, NULL, false},
        {"--host-id", false, NULL, false}, {"--transaction-id", false, NULL, false},
        {"--rsk", true, NULL, false},      {"--no-rsk", true, NULL, false},
    };
    struct pl_pki *pki = NULL;
    struct pl_wr bpp;
    struct pl_rng rng = PL_RNG_SYSTEM;
    uint8_t eid[16], otpk[PL_EC_PUB_LEN], host[16], tid[16];
    size_t eid_len = 0, otpk_len = 0, host_len = 0, tid_len = 0, upp_len = 0;
    uint8_t *upp = NULL;
    int status = 1;

    pl_wr_init_dyn(&bpp, PL_BIND_BPP_MAX);
    if (parse_opts(argc, argv, o, sizeof(o) / sizeof(o[0])) != 0)
        return EXIT_USAGE;
    const char *pki_dir = need(&o[0], "bind"), *eid_hex = need(&o[1], "bind"),
               *otk_hex = need(&o[2], "bind"), *upp_path = need(&o[3], "bind"),
               *out_path = need(&o[4], "bind");
    if (!pki_dir || !eid_hex || !otk_hex || !upp_path || !out_path)
        return EXIT_USAGE;
    if (o[8].set && o[9].set) {
        fprintf(stderr, "provline-keymaker bind: --rsk and --no-rsk are exclusive\n");
        return EXIT_USAGE;
    }
    if (hex_arg("--eid", eid_hex, eid, 16, 16, &eid_len)
        || hex_arg("--otk-pub", otk_hex, otpk, PL_EC_PUB_LEN, PL_EC_PUB_LEN, &otpk_len))
        return EXIT_USAGE;
    if (o[6].set) {
        if (hex_arg("--host-id", o[6].value, host, 1, 16, &host_len))
            return EXIT_USAGE;
    } else {
        host_len = 14;
        memcpy(host, "PROVLINE-SMDPF", host_len);
    }
    if (o[7].set) {
        if (hex_arg("--transaction-id", o[7].value, tid, 1, 16, &tid_len))
            return EXIT_USAGE;
    } else {
        tid_len = 16;
        if (rng.fill(rng.user, tid, tid_len) != PL_OK) {
            fprintf(stderr, "provline-keymaker bind: RNG failure\n");
            return 1;
        }
    }
    int rc = pl_pki_load(pki_dir, &pki);
    if (rc) {
        fprintf(stderr, "provline-keymaker bind: PKI %s: %s\n", pki_dir, pl_strerror(rc));
        return 1;
    }
    enum pl_curve curve = pl_pki_curve(pki);
    if (o[5].set) {
        enum pl_curve want = PL_CURVE_NONE;
        if (pl_curve_from_name(o[5].value, &want) != PL_OK || want != curve) {
            fprintf(stderr, "provline-keymaker bind: --curve %s does not match the PKI (%s)\n",
                    o[5].value, pl_curve_name(curve));
            goto out;
        }
    }
    upp = read_file(upp_path, PL_BIND_UPP_MAX, &upp_len);
    if (upp == NULL) {
        fprintf(stderr, "provline-keymaker bind: cannot read %s\n", upp_path);
        goto out;
    }
    struct pl_bind_params bp = {
        .curve = curve,
        .dp_key = pl_pki_key(pki, PL_PKI_DPF),
        .euicc_otpk = otpk,
        .eid = eid,
        .host_id = host,
        .host_id_len = host_len,
        .tid = tid,
        .tid_len = tid_len,
        .upp = upp,
        .upp_len = upp_len,
        .spn = "provline lab",
        .profile_name = upp_path,
        .profile_class = -1,
        .replace_session_keys = o[8].set,
        .rng = &rng,
    };
    if (strlen(upp_path) > 64)
        bp.profile_name = upp_path + strlen(upp_path) - 64;
    if ((rc = pl_bpp_bind(&bp, &bpp))) {
        fprintf(stderr, "provline-keymaker bind: %s\n", pl_strerror(rc));
        goto out;
    }
    FILE *f = fopen(out_path, "wb");
    if (f == NULL || fwrite(bpp.buf, 1, bpp.len, f) != bpp.len) {
        fprintf(stderr, "provline-keymaker bind: cannot write %s\n", out_path);
        if (f)
            fclose(f);
        goto out;
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "provline-keymaker bind: cannot write %s\n", out_path);
        goto out;
    }
    char th[33];
    if (pl_hex_encode(tid, tid_len, th, sizeof(th)) != PL_OK)
        th[0] = '\0';
    printf("bpp=%s bytes=%zu transaction_id=%s curve=%s rsk=%s\n", out_path, bpp.len, th,
           pl_curve_name(curve), o[8].set ? "yes" : "no");
    status = 0;
out:
    free(upp);
    pl_wr_free(&bpp);
    pl_pki_free(pki);
    return status;
}

/* --------------------------------------------------------------------- status ---- */

static int cmd_status(int argc, char **argv)
{
    struct opt o[] = {{"--db", false, NULL, false}};
    struct pl_km_stats s;
    if (parse_opts(argc, argv, o, 1) != 0)
        return EXIT_USAGE;
    const char *db = need(&o[0], "status");
    if (!db)
        return EXIT_USAGE;
    int rc = pl_km_stats_file(db, &s);
    if (rc) {
        fprintf(stderr, "provline-keymaker status: %s: %s\n", db, pl_strerror(rc));
        return 1;
    }
    printf("profiles: available=%u reserved=%u installed=%u\n", s.profiles_available,
           s.profiles_reserved, s.profiles_installed);
    printf("euiccs: %u\n", s.euiccs);
    printf("otks: FREE=%u BOUND=%u CONSUMED=%u VOID=%u\n", s.otk_free, s.otk_bound, s.otk_consumed,
           s.otk_void);
    printf("packages: issued=%u installed=%u failed=%u possibly-used=%u\n", s.pkg_issued,
           s.pkg_installed, s.pkg_failed, s.pkg_possibly_used);
    printf("stations: %u\nprocessed-messages: %u\ndeletion-tokens: %u\naudit-checkpoints: %u\n",
           s.stations, s.dedup_entries, s.deletion_tokens, s.audit_checkpoints);
    return 0;
}

/* ----------------------------------------------------------------- mint-euicc ---- */

/* Dispatches to the software eUICC's own minting (sim/euicc.h, pl_euicc_mint). */
static int cmd_mint_euicc(int argc, char **argv)
{
    struct opt o[] = {
        {"--pki", false, NULL, false},
        {"--out", false, NULL, false},
        {"--eid", false, NULL, false},
        {"--otks", false, NULL, false},
    };
    struct pl_pki *pki = NULL;
    uint8_t eid[16];
    size_t eid_len = 0;
    unsigned long n = 8;

    if (parse_opts(argc, argv, o, 4) != 0)
        return EXIT_USAGE;
    const char *dir = need(&o[0], "mint-euicc"), *out = need(&o[1], "mint-euicc");
    if (!dir || !out)
        return EXIT_USAGE;
    if (o[2].set
        && (pl_hex_decode(o[2].value, eid, sizeof(eid), &eid_len) != PL_OK
            || eid_len != sizeof(eid))) {
        fprintf(stderr, "provline-keymaker mint-euicc: --eid must be 32 hex digits\n");
        return EXIT_USAGE;
    }
    if (o[3].set) {
        char *end = NULL;
        n = strtoul(o[3].value, &end, 10);
        if (end == o[3].value || *end != '\0' || n == 0 || n > PL_EUICC_MAX_OTKS) {
            fprintf(stderr, "provline-keymaker mint-euicc: --otks must be 1..%u\n",
                    PL_EUICC_MAX_OTKS);
            return EXIT_USAGE;
        }
    }
    int rc = pl_pki_load(dir, &pki);
    if (rc == PL_OK)
        rc = pl_euicc_mint(pki, pl_pki_curve(pki), o[2].set ? eid : NULL, (unsigned)n, out, NULL);
    pl_pki_free(pki);
    if (rc) {
        fprintf(stderr, "provline-keymaker mint-euicc: %s\n", pl_strerror(rc));
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        {"serve", cmd_serve},   {"keygen", cmd_keygen},         {"bind", cmd_bind},
        {"status", cmd_status}, {"mint-euicc", cmd_mint_euicc},
    };

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "provline-keymaker: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
