/* provline-station: the untrusted line controller of an IoT factory line (GSMA SGP.41
 * in-factory profile provisioning). This file owns the process-wide state: arguments,
 * signals, stdout/stderr and the exit status; everything else is the provline_station
 * library (station.h).
 *
 * Sources: ARCHITECTURE.md §7 (--config FILE, --check-config, foreground, clean shutdown on
 * SIGTERM, structured logs, metrics, man page); reference/STYLE.md §7.4 (config check exits
 * 0 or 1). Manual: docs/station.8.md; configuration: docs/station.conf.5.md.
 *
 *   provline-station [run] --config FILE [--check-config] [--once]
 *   provline-station export --journal FILE (--csv OUT | --json OUT)
 *   provline-station export --journal FILE --batch OUT [--batch-id ID] [--station NAME]
 *                           [--eim-id ID]      (docs/eim-api.md "Bulk import")
 *   provline-station status --journal FILE
 *
 * Exit status: 0 success (and after a SIGTERM drain), 1 error, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provline/protocol/err.h"
#include "provline/station/batch.h"
#include "provline/station/config.h"
#include "provline/station/journal.h"
#include "provline/station/station.h"

#define EXIT_USAGE 2

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: provline-station [run] --config FILE [--check-config] [--once]\n"
            "       provline-station export --journal FILE (--csv OUT | --json OUT)\n"
            "       provline-station export --journal FILE --batch OUT [--batch-id ID]\n"
            "                               [--station NAME] [--eim-id ID]\n"
            "       provline-station status --journal FILE\n"
            "\n"
            "  run            drive every fixture of the configuration (the default)\n"
            "  --check-config validate the configuration, print one line per error, exit 0/1\n"
            "  --once         exit 0 once every fixture's device is done or failed\n"
            "  export         batch report of the journal (OUT '-' = standard output);\n"
            "                 --batch: the eIM's bulk import (provline-station-batch/1);\n"
            "                 --station defaults to the station id recorded in the journal\n"
            "  status         packages and devices per state\n"
            "See provline-station(8) and station.conf(5): docs/station.8.md, "
            "docs/station.conf.5.md.\n");
}

static void log_line(void *user, enum pl_station_log_level level, const char *line)
{
    char ts[64] = "";
    struct timespec now;
    struct tm tm;
    (void)user;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm) != NULL) {
        char base[32];
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts, sizeof(ts), "%s.%03uZ", base, (unsigned)(now.tv_nsec / 1000000L) % 1000u);
    }
    fprintf(stderr, "station %s level=%s ts=%s\n", line, pl_station_log_level_name(level), ts);
    fflush(stderr);
}

static int print_diag(const struct pl_station_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "provline-station: configuration: %s\n", d->msg[i]);
    if (d->dropped > 0)
        fprintf(stderr, "provline-station: configuration: ... and %zu more\n", d->dropped);
    return (int)d->n;
}

static int cmd_run(int argc, char **argv)
{
    struct pl_station_config *cfg = NULL;
    struct pl_station_diag *diag = NULL;
    struct pl_station *st = NULL;
    const char *path = NULL;
    bool check = false, once = false;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0 || strcmp(argv[i], "-n") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else {
            fprintf(stderr, "provline-station: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "provline-station: --config FILE is required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    cfg = malloc(sizeof(*cfg));
    diag = calloc(1, sizeof(*diag));
    if (cfg == NULL || diag == NULL) {
        fprintf(stderr, "provline-station: out of memory\n");
        free(cfg);
        free(diag);
        return 1;
    }
    pl_station_config_init(cfg);
    rc = pl_station_config_load(path, cfg, diag);
    print_diag(diag);
    if (rc != PL_OK) {
        fprintf(stderr, "provline-station: %s: configuration invalid (%s)\n", path,
                pl_strerror(rc));
        goto out;
    }
    if (check) {
        printf("configuration OK: %zu fixtures, Key Maker %s\n", cfg->n_fixtures,
               cfg->km_endpoint);
        status = 0;
        goto out;
    }
    if (once)
        cfg->once = true;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if ((rc = pl_station_new(cfg, log_line, NULL, &st)) != PL_OK) {
        fprintf(stderr, "provline-station: cannot start: %s\n", pl_strerror(rc));
        goto out;
    }
    rc = pl_station_run(st, &g_stop);
    if (rc != PL_OK)
        fprintf(stderr, "provline-station: stopped on error: %s\n", pl_strerror(rc));
    status = rc == PL_OK ? 0 : 1;
out:
    pl_station_free(st);
    pl_station_config_deinit(cfg);
    free(cfg);
    free(diag);
    return status;
}

static int write_file(void *user, const char *s, size_t n)
{
    return fwrite(s, 1, n, (FILE *)user) == n ? PL_OK : PL_ERR_IO;
}

static int export_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "provline-station export: %s%s%s%s\n", msg, arg ? " '" : "", arg ? arg : "",
            arg ? "'" : "");
    usage(stderr);
    return EXIT_USAGE;
}

static int cmd_export(int argc, char **argv)
{
    const char *journal = NULL, *out = NULL;
    enum pl_journal_export_fmt fmt = 0;
    bool batch = false;
    struct pl_batch_opts bo;
    struct pl_journal *j = NULL;
    size_t n_dev = 0;
    FILE *f = NULL;
    int rc;

    memset(&bo, 0, sizeof(bo));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--journal") == 0 && has_val) {
            journal = argv[++i];
        } else if ((strcmp(a, "--csv") == 0 || strcmp(a, "--json") == 0
                    || strcmp(a, "--batch") == 0)
                   && has_val) {
            if (fmt != 0 || batch)
                return export_usage("give one of --csv, --json, --batch", NULL);
            if (strcmp(a, "--batch") == 0)
                batch = true;
            else
                fmt = strcmp(a, "--csv") == 0 ? PL_JOURNAL_CSV : PL_JOURNAL_JSON;
            out = argv[++i];
        } else if (strcmp(a, "--batch-id") == 0 && has_val) {
            bo.batch_id = argv[++i];
        } else if (strcmp(a, "--station") == 0 && has_val) {
            bo.station = argv[++i];
        } else if (strcmp(a, "--eim-id") == 0 && has_val) {
            bo.eim_id = argv[++i];
        } else {
            return export_usage("unknown or incomplete option", a);
        }
    }
    if (journal == NULL || (fmt == 0 && !batch))
        return export_usage("--journal FILE and one of --csv OUT, --json OUT, --batch OUT are "
                            "required",
                            NULL);
    if (!batch && (bo.batch_id != NULL || bo.station != NULL || bo.eim_id != NULL))
        return export_usage("--batch-id, --station and --eim-id go with --batch", NULL);
    if (batch && pl_batch_opts_check(&bo) != PL_OK)
        return export_usage("--batch-id, --station, --eim-id: 1..128 bytes of UTF-8", NULL);
    if ((rc = pl_journal_open_ro(journal, &j)) != PL_OK) {
        fprintf(stderr, "provline-station export: cannot open journal %s: %s\n", journal,
                pl_strerror(rc));
        return 1;
    }
    f = strcmp(out, "-") == 0 ? stdout : fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "provline-station export: cannot write %s\n", out);
        pl_journal_close(j);
        return 1;
    }
    rc = batch ? pl_batch_export(j, &bo, write_file, f, &n_dev)
               : pl_journal_export(j, fmt, write_file, f);
    if (f != stdout) {
        if (fclose(f) != 0 && rc == PL_OK)
            rc = PL_ERR_IO;
    } else if (fflush(f) != 0 && rc == PL_OK) {
        rc = PL_ERR_IO;
    }
    pl_journal_close(j);
    if (rc == PL_ERR_NOT_FOUND && batch) {
        fprintf(stderr, "provline-station export: no device of the journal received a package; "
                        "no batch written\n");
        if (f != stdout)
            (void)remove(out);
        return 1;
    }
    if (rc != PL_OK) {
        fprintf(stderr, "provline-station export: %s\n", pl_strerror(rc));
        return 1;
    }
    if (batch && f != stdout)
        fprintf(stderr, "provline-station export: %zu devices in batch %s\n", n_dev, out);
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    const char *journal = NULL;
    struct pl_journal *j = NULL;
    struct pl_journal_counts c;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--journal") == 0 && i + 1 < argc) {
            journal = argv[++i];
        } else {
            fprintf(stderr, "provline-station status: unknown or incomplete option '%s'\n",
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    if (journal == NULL) {
        fprintf(stderr, "provline-station status: --journal FILE is required\n");
        return EXIT_USAGE;
    }
    if ((rc = pl_journal_open_ro(journal, &j)) != PL_OK) {
        fprintf(stderr, "provline-station status: cannot open journal %s: %s\n", journal,
                pl_strerror(rc));
        return 1;
    }
    rc = pl_journal_counts(j, &c);
    pl_journal_close(j);
    if (rc != PL_OK) {
        fprintf(stderr, "provline-station status: %s\n", pl_strerror(rc));
        return 1;
    }
    uint64_t total = 0;
    for (unsigned s = 1; s < PL_J_STATE_COUNT; s++) {
        printf("package_state %-10s %llu\n", pl_journal_state_name((int)s),
               (unsigned long long)c.state[s]);
        total += c.state[s];
    }
    printf("packages_total %llu\n", (unsigned long long)total);
    printf("package_result installed %llu\n", (unsigned long long)c.installed);
    printf("package_result failed %llu\n", (unsigned long long)c.failed);
    printf("package_result possibly-used %llu\n", (unsigned long long)c.possibly_used);
    printf("package_result refused %llu\n", (unsigned long long)c.refused);
    printf("packages_purged %llu\n", (unsigned long long)c.purged);
    for (unsigned s = 1; s < 8; s++)
        printf("device_state %-10s %llu\n", pl_journal_device_state_name((int)s),
               (unsigned long long)c.device[s]);
    printf("pending_lease_requests %llu\n", (unsigned long long)c.pending_leases);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0
                      || strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("provline-station 0.1.0 (SGP.41 v1.0 IFPP station, provline protocols v1)\n");
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && argv[1][0] != '-') {
        fprintf(stderr, "provline-station: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    return cmd_run(argc, argv);
}
