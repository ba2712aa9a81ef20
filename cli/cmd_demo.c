/* `provline demo`: a whole provisioning line on one machine, embedded defaults
 * (ARCHITECTURE.md §7): a test PKI, the reference Key Maker (SM-DPf), N virtual devices
 * with software eUICCs (half on pty serial fixtures, half on CoAP fixtures) and one
 * untrusted station that provisions them all (SGP.41 IFPP flow, ARCHITECTURE.md §4).
 * It then proves the outcome from the artefacts rather than from the station's word:
 * each eUICC's own state (profile installed, no free OTK, factory services closed,
 * initial eIM set), the Key Maker's reconciliation, and the audit chain.
 *
 *   provline demo [--dir DIR] [--devices N] [--coap M] [--profiles DIR] [--timeout S]
 *
 * Every program runs from the directory of this binary; logs stay in DIR. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* wait4(2): the station's own rusage */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/iccid.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/sim/pki.h"

#ifndef PL_DEMO_PROFILES
#define PL_DEMO_PROFILES "tests/data/ts48"
#endif

#define DEMO_DEV_MAX 32
#define DEMO_PATH 1024

struct demo_dev {
    bool coap;
    unsigned port;
    pid_t pid;
    int ready_fd;
    char euicc[DEMO_PATH];
    char link[DEMO_PATH];
    char log[DEMO_PATH];
};

struct demo {
    char bin[DEMO_PATH];
    char dir[DEMO_PATH];
    char pki[DEMO_PATH];
    char profiles[DEMO_PATH];
    unsigned n_dev, n_coap, timeout_s;
    pid_t km_pid;
    unsigned km_port;
    struct demo_dev dev[DEMO_DEV_MAX];
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("provline demo: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int path_join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s/%s", a, b);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* A free loopback port, by asking the kernel (raced only by other programs). */
static unsigned free_port(int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    unsigned port = 0;
    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0
        && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Starts bin/argv[0] with stdout to *out_fd (a pipe, when out_fd != NULL, else the log)
 * and stderr to log. */
static pid_t spawn(const struct demo *d, const char *const argv[], const char *log, int *out_fd)
{
    char exe[DEMO_PATH];
    int pfd[2] = {-1, -1};
    if (path_join(exe, sizeof(exe), d->bin, argv[0]) != 0)
        return -1;
    if (out_fd && pipe(pfd) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (lfd >= 0) {
            dup2(lfd, 2);
            if (!out_fd)
                dup2(lfd, 1);
            close(lfd);
        }
        if (out_fd) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
        }
        char *av[32];
        size_t n = 0;
        for (; argv[n] != NULL && n + 1 < sizeof(av) / sizeof(av[0]); n++)
            av[n] = strdup(argv[n]); /* the child owns copies: execv wants non-const */
        av[n] = NULL;
        execv(exe, av);
        _exit(127);
    }
    if (out_fd) {
        close(pfd[1]);
        if (pid < 0) {
            close(pfd[0]);
            return -1;
        }
        *out_fd = pfd[0];
    }
    return pid;
}

/* Runs a program to completion; returns its exit status or -1. */
static int run(const struct demo *d, const char *const argv[], const char *log)
{
    int status;
    pid_t pid = spawn(d, argv, log, NULL);
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void stop(pid_t *pid)
{
    int status;
    if (*pid <= 0)
        return;
    kill(*pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = -1;
            return;
        }
        sleep_ms(10);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    *pid = -1;
}

/* Waits until a line starting with prefix appears on fd (the program's stdout). */
static int wait_line(int fd, const char *prefix, unsigned ms)
{
    char line[512];
    size_t n = 0;
    uint64_t end = now_ms() + ms;
    while (now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(end - now_ms()));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        char c;
        if (read(fd, &c, 1) != 1)
            return -1;
        if (c == '\n' || n + 1 >= sizeof(line)) {
            line[n] = '\0';
            if (strncmp(line, prefix, strlen(prefix)) == 0)
                return 0;
            n = 0;
        } else {
            line[n++] = c;
        }
    }
    return -1;
}

/* Waits until needle appears in the file at path. */
static int wait_in_file(const char *path, const char *needle, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    char buf[16384];
    while (now_ms() < end) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (strstr(buf, needle))
                return 0;
        }
        sleep_ms(20);
    }
    return -1;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
    char buf[256];
    FILE *f = fopen(from, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return write_file(to, buf);
}

static int setup_pki_and_keys(struct demo *d)
{
    char pkiroot[DEMO_PATH], km[DEMO_PATH], st[DEMO_PATH], log[DEMO_PATH];
    time_t now = time(NULL);
    struct pl_rng rng = PL_RNG_SYSTEM;
    if (path_join(pkiroot, sizeof(pkiroot), d->dir, "pki") != 0 || mkdir(pkiroot, 0700) != 0)
        return -1;
    if (path_join(d->pki, sizeof(d->pki), pkiroot, "p256") != 0
        || pl_pki_init(d->pki, PL_CURVE_P256, &rng, now) != PL_OK)
        return -1;
    say("test PKI (CI, EUM, SM-DPf, eIM, TLS) in %s", d->pki);
    if (path_join(km, sizeof(km), d->dir, "keymaker") != 0
        || path_join(st, sizeof(st), d->dir, "station") != 0
        || path_join(log, sizeof(log), d->dir, "setup.log") != 0)
        return -1;
    const char *kg1[] = {"provline-keymaker", "keygen", "--out", km, NULL};
    const char *kg2[] = {"provline-keymaker", "keygen", "--out", st, NULL};
    if (run(d, kg1, log) != 0 || run(d, kg2, log) != 0)
        return -1;
    char pub[DEMO_PATH + 8], allow[DEMO_PATH];
    snprintf(pub, sizeof(pub), "%s.pub", st);
    if (path_join(allow, sizeof(allow), d->dir, "allow") != 0 || copy_file(pub, allow) != 0)
        return -1;
    say("CurveZMQ keys for the Key Maker and the station; the station's key is on the allow-list");
    return 0;
}

static int start_keymaker(struct demo *d)
{
    char db[DEMO_PATH], key[DEMO_PATH], allow[DEMO_PATH], log[DEMO_PATH], bind[64];
    if (path_join(db, sizeof(db), d->dir, "keymaker.db") != 0
        || path_join(key, sizeof(key), d->dir, "keymaker.key") != 0
        || path_join(allow, sizeof(allow), d->dir, "allow") != 0
        || path_join(log, sizeof(log), d->dir, "keymaker.log") != 0)
        return -1;
    d->km_port = free_port(SOCK_STREAM);
    snprintf(bind, sizeof(bind), "tcp://127.0.0.1:%u", d->km_port);
    const char *argv[] = {"provline-keymaker", "serve", "--pki", d->pki, "--db", db, "--profiles",
                    d->profiles, "--bind", bind, "--curve-secret", key, "--allow", allow, NULL};
    d->km_pid = spawn(d, argv, log, NULL);
    if (d->km_pid < 0 || wait_in_file(log, "event=listening", 10000) != 0) {
        say("the Key Maker did not start (see %s)", log);
        return -1;
    }
    /* One profile per device: a short inventory would fail devices with NO_PROFILE. */
    struct pl_km_stats ks;
    int rc = pl_km_stats_file(db, &ks);
    if (rc != PL_OK) {
        say("cannot read the Key Maker's inventory %s: %s", db, pl_strerror(rc));
        return -1;
    }
    if (ks.profiles_available < d->n_dev) {
        say("the Key Maker's inventory holds %u distinct profiles (from %s); a line of %u "
            "devices needs one each: use --devices %u or less, or --profiles DIR with more",
            ks.profiles_available, d->profiles, d->n_dev, ks.profiles_available);
        return -1;
    }
    say("Key Maker (SM-DPf) serving %s with the %u TS.48 profiles of %s", bind,
        ks.profiles_available, d->profiles);
    return 0;
}

static int start_devices(struct demo *d)
{
    char log[DEMO_PATH];
    if (path_join(log, sizeof(log), d->dir, "setup.log") != 0)
        return -1;
    for (unsigned i = 0; i < d->n_dev; i++) {
        struct demo_dev *v = &d->dev[i];
        char name[32], addr[64];
        v->coap = i >= d->n_dev - d->n_coap;
        snprintf(name, sizeof(name), "dev%u.euicc", i);
        if (path_join(v->euicc, sizeof(v->euicc), d->dir, name) != 0)
            return -1;
        snprintf(name, sizeof(name), "dev%u.log", i);
        if (path_join(v->log, sizeof(v->log), d->dir, name) != 0)
            return -1;
        snprintf(name, sizeof(name), "dev%u.pty", i);
        if (path_join(v->link, sizeof(v->link), d->dir, name) != 0)
            return -1;
        const char *mint[] = {"provline-keymaker", "mint-euicc", "--pki", d->pki, "--out", v->euicc,
                        "--otks", "2", NULL};
        if (run(d, mint, log) != 0) {
            say("minting eUICC %u failed (see %s)", i, log);
            return -1;
        }
        if (v->coap) {
            v->port = free_port(SOCK_DGRAM);
            snprintf(addr, sizeof(addr), "127.0.0.1:%u", v->port);
            const char *argv[] = {"provline-vdevice", "--euicc", v->euicc, "--coap", addr, NULL};
            v->pid = spawn(d, argv, v->log, &v->ready_fd);
        } else {
            const char *argv[] = {"provline-vdevice", "--euicc", v->euicc, "--pty", v->link,
                            "--baud", "921600", NULL};
            v->pid = spawn(d, argv, v->log, &v->ready_fd);
        }
        if (v->pid < 0 || wait_line(v->ready_fd, "READY", 10000) != 0) {
            say("virtual device %u did not start (see %s)", i, v->log);
            return -1;
        }
    }
    say("%u virtual devices with software eUICCs (2 one-time keys each): %u on pty serial "
        "fixtures at 921600 baud, %u on CoAP fixtures",
        d->n_dev, d->n_dev - d->n_coap, d->n_coap);
    return 0;
}

static int write_station_conf(const struct demo *d, const char *conf)
{
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "# written by provline demo\n"
            "[line]\nstation_id = demo-line\nmax_loads = 3\n\n"
            "[keymaker]\nendpoint = tcp://127.0.0.1:%u\nserver_public_key = %s/keymaker.pub\n"
            "client_secret_key = %s/station.key\nclient_public_key = %s/station.pub\n"
            "checkpoint_certificate = %s/dpf.der\n\n"
            "[storage]\njournal = %s/station-data/journal.db\naudit = %s/station-data/audit.db\n"
            "packages = %s/station-data/packages\n\n"
            "[eim]\neim_id = eim.demo.provline\neim_fqdn = eim.demo.provline\n"
            "eim_certificate = %s/eim.der\n\n"
            "[log]\nlevel = info\n\n"
            "[timers]\nT_PROBE = 100\n\n",
            d->km_port, d->dir, d->dir, d->dir, d->pki, d->dir, d->dir, d->dir, d->pki);
    for (unsigned i = 0; i < d->n_dev; i++) {
        const struct demo_dev *v = &d->dev[i];
        if (v->coap)
            fprintf(f, "[fixture f%u]\ntransport = coap\nport = 127.0.0.1:%u\n\n", i, v->port);
        else
            fprintf(f, "[fixture f%u]\ntransport = serial\nport = %s\nbaud = 921600\n\n", i,
                    v->link);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int run_station(struct demo *d)
{
    char conf[DEMO_PATH], data[DEMO_PATH], pkgs[DEMO_PATH], log[DEMO_PATH];
    if (path_join(conf, sizeof(conf), d->dir, "station.conf") != 0
        || path_join(data, sizeof(data), d->dir, "station-data") != 0
        || path_join(pkgs, sizeof(pkgs), data, "packages") != 0
        || path_join(log, sizeof(log), d->dir, "station.log") != 0)
        return -1;
    if (mkdir(data, 0700) != 0 || mkdir(pkgs, 0700) != 0 || write_station_conf(d, conf) != 0)
        return -1;
    say("station: %s (log %s)", conf, log);
    uint64_t t0 = now_ms();
    const char *argv[] = {"provline-station", "--config", conf, "--once", NULL};
    pid_t pid = spawn(d, argv, log, NULL);
    int status = -1;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    uint64_t end = t0 + (uint64_t)d->timeout_s * 1000u;
    while (pid > 0) {
        if (wait4(pid, &status, WNOHANG, &ru) == pid)
            break;
        if (now_ms() > end) {
            say("the station did not finish within %u s; stopping it", d->timeout_s);
            stop(&pid);
            return -1;
        }
        sleep_ms(50);
    }
    uint64_t dt = now_ms() - t0;
    say("station finished in %.1f s (%.2f devices/s)", (double)dt / 1000.0,
        dt ? (double)d->n_dev * 1000.0 / (double)dt : 0.0);
    /* getrusage(2): ru_maxrss in KiB on Linux. bench/bench_line reads this line. */
    say("station peak RSS: %ld KiB, CPU %.2f s user + %.2f s system", ru.ru_maxrss,
        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    return (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -1;
}

/* Reads each eUICC's own state: the ground truth, not the station's journal. */
static int check_devices(const struct demo *d)
{
    unsigned good = 0;
    for (unsigned i = 0; i < d->n_dev; i++) {
        const struct demo_dev *v = &d->dev[i];
        struct pl_euicc *e = NULL;
        struct pl_euicc_opts o;
        pl_euicc_opts_init(&o);
        if (pl_euicc_open(v->euicc, &o, &e) != PL_OK) {
            say("device %u: cannot read its eUICC state", i);
            continue;
        }
        uint8_t eid[PL_EUICC_EID_LEN];
        char eidhex[2 * PL_EUICC_EID_LEN + 1], iccid[PL_ICCID_TEXT_MAX] = "-";
        pl_euicc_get_eid(e, eid);
        if (pl_hex_encode(eid, sizeof(eid), eidhex, sizeof(eidhex)) != PL_OK)
            eidhex[0] = '\0';
        size_t free_otks = 0;
        for (size_t k = 0; k < pl_euicc_otk_count(e); k++) {
            struct pl_euicc_otk_info oi;
            if (pl_euicc_otk_get(e, k, &oi) == PL_OK && oi.state == PL_EUICC_OTK_FREE)
                free_otks++;
        }
        struct pl_euicc_profile_info pi;
        size_t upp = 0;
        if (pl_euicc_profile_count(e) == 1 && pl_euicc_profile_get(e, 0, &pi) == PL_OK) {
            upp = pi.upp_len;
            pl_iccid_text(pi.iccid, iccid);
        }
        bool ok = pl_euicc_profile_count(e) == 1 && free_otks == 0 && !pl_euicc_factory_mode(e)
                  && pl_euicc_eim_count(e) == 1;
        say("  %s %s eid=%s profiles=%zu iccid=%s (%zu B) free_otks=%zu factory_mode=%s eims=%zu",
            ok ? "OK  " : "FAIL", v->coap ? "coap  " : "serial", eidhex,
            pl_euicc_profile_count(e), iccid, upp, free_otks,
            pl_euicc_factory_mode(e) ? "open" : "locked", pl_euicc_eim_count(e));
        good += ok;
        pl_euicc_close(e);
    }
    say("%u of %u devices provisioned and locked (read from each eUICC's own state)", good,
        d->n_dev);
    return good == d->n_dev ? 0 : -1;
}

/* Runs a check, prints its output; its exit status (-1 if it could not run). */
static int show(const struct demo *d, const char *const argv[], const char *title)
{
    char log[DEMO_PATH];
    if (path_join(log, sizeof(log), d->dir, "report.txt") != 0)
        return -1;
    say("%s:", title);
    FILE *f = fopen(log, "a");
    if (f) {
        fprintf(f, "== %s\n", title);
        fclose(f);
    }
    long before = 0;
    struct stat st;
    if (stat(log, &st) == 0)
        before = (long)st.st_size;
    int rc = run(d, argv, log);
    f = fopen(log, "r");
    if (f) {
        char line[512];
        fseek(f, before, SEEK_SET);
        while (fgets(line, sizeof(line), f))
            printf("    %s", line);
        fclose(f);
    }
    if (rc != 0)
        say("  (exit status %d)", rc);
    return rc;
}

static int self_dir(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: provline demo [--dir DIR] [--devices N] [--coap M] "
                    "[--profiles DIR] [--timeout SECONDS]\n"
                    "  a whole line on this machine: Key Maker, station, N virtual devices\n"
                    "  (default 4: 2 on pty serial, 2 on CoAP); DIR keeps every artefact\n");
    return 2;
}

int pl_cli_demo(int argc, char **argv)
{
    struct demo *d = calloc(1, sizeof(*d));
    int rc = 1;
    if (!d)
        return 1;
    d->n_dev = 4;
    d->n_coap = 2;
    d->timeout_s = 120;
    d->km_pid = -1;
    snprintf(d->profiles, sizeof(d->profiles), "%s", PL_DEMO_PROFILES);
    bool coap_set = false;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(argv[i], "--dir") == 0 && v) {
            snprintf(d->dir, sizeof(d->dir), "%s", v);
        } else if (strcmp(argv[i], "--profiles") == 0 && v) {
            snprintf(d->profiles, sizeof(d->profiles), "%s", v);
        } else if (strcmp(argv[i], "--devices") == 0 && v) {
            d->n_dev = (unsigned)strtoul(v, &end, 10);
        } else if (strcmp(argv[i], "--coap") == 0 && v) {
            d->n_coap = (unsigned)strtoul(v, &end, 10);
            coap_set = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && v) {
            d->timeout_s = (unsigned)strtoul(v, &end, 10);
        } else {
            free(d);
            return usage();
        }
        if (end && *end) {
            free(d);
            return usage();
        }
    }
    if (!coap_set)
        d->n_coap = d->n_dev / 2;
    if (d->n_dev == 0 || d->n_dev > DEMO_DEV_MAX || d->n_coap > d->n_dev || d->timeout_s == 0) {
        free(d);
        return usage();
    }
    for (unsigned i = 0; i < DEMO_DEV_MAX; i++) {
        d->dev[i].pid = -1;
        d->dev[i].ready_fd = -1;
    }
    if (self_dir(d->bin, sizeof(d->bin)) != 0) {
        fprintf(stderr, "provline demo: cannot find the programs' directory\n");
        free(d);
        return 1;
    }
    if (d->dir[0] == '\0') {
        char tmpl[] = "/tmp/provline-demo.XXXXXX";
        if (!mkdtemp(tmpl)) {
            free(d);
            return 1;
        }
        snprintf(d->dir, sizeof(d->dir), "%s", tmpl);
    } else if (mkdir(d->dir, 0700) != 0) {
        fprintf(stderr, "provline demo: cannot create %s: %s (it must not exist)\n", d->dir,
                strerror(errno));
        free(d);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    say("a whole line on this machine, every artefact in %s", d->dir);
    if (setup_pki_and_keys(d) != 0 || start_keymaker(d) != 0 || start_devices(d) != 0)
        goto out;
    int line_rc = run_station(d);
    /* Power the devices off before reading their eUICCs' state files. */
    for (unsigned i = 0; i < d->n_dev; i++)
        stop(&d->dev[i].pid);
    say("results");
    int dev_rc = check_devices(d);
    int report_rc = -1; /* the checks and reports below: every one must pass */
    char journal[DEMO_PATH], audit[DEMO_PATH], db[DEMO_PATH], csv[DEMO_PATH], json[DEMO_PATH];
    char dpf[DEMO_PATH], batch[DEMO_PATH];
    if (path_join(journal, sizeof(journal), d->dir, "station-data/journal.db") == 0
        && path_join(audit, sizeof(audit), d->dir, "station-data/audit.db") == 0
        && path_join(db, sizeof(db), d->dir, "keymaker.db") == 0
        && path_join(csv, sizeof(csv), d->dir, "batch-report.csv") == 0
        && path_join(json, sizeof(json), d->dir, "batch-report.json") == 0
        && path_join(dpf, sizeof(dpf), d->pki, "dpf.der") == 0
        && path_join(batch, sizeof(batch), d->dir, "eim-batch.json") == 0) {
        const char *status_km[] = {"provline-keymaker", "status", "--db", db, NULL};
        const char *status_st[] = {"provline-station", "status", "--journal", journal, NULL};
        const char *verify[] = {"provline", "audit", "verify", audit, "--keymaker-cert", dpf,
                                NULL};
        const char *exp_csv[] = {"provline-station", "export", "--journal", journal, "--csv", csv,
                           NULL};
        const char *exp_json[] = {"provline-station", "export", "--journal", journal, "--json", json,
                            NULL};
        report_rc = 0;
        if (show(d, status_km, "Key Maker reconciliation (provline-keymaker status)") != 0)
            report_rc = -1;
        if (show(d, status_st, "station journal (provline-station status)") != 0)
            report_rc = -1;
        if (show(d, verify, "audit trail, Key Maker signatures checked (provline audit verify)")
            != 0)
            report_rc = -1;
        const char *exp_batch[] = {"provline-station", "export", "--journal", journal, "--batch",
                                   batch, "--eim-id", "eim.demo.provline", NULL};
        if (run(d, exp_csv, "/dev/null") == 0 && run(d, exp_json, "/dev/null") == 0)
            say("batch report: %s and %s", csv, json);
        else
            report_rc = -1;
        if (run(d, exp_batch, "/dev/null") == 0)
            say("the devices for the eIM (POST /v1/devices/bulk): %s", batch);
        else
            report_rc = -1;
    }
    rc = (line_rc == 0 && dev_rc == 0 && report_rc == 0) ? 0 : 1;
    say("%s", rc == 0 ? "line OK" : "line FAILED: see the logs in the directory above");
out:
    for (unsigned i = 0; i < d->n_dev; i++) {
        stop(&d->dev[i].pid);
        if (d->dev[i].ready_fd >= 0)
            close(d->dev[i].ready_fd);
    }
    stop(&d->km_pid);
    free(d);
    return rc;
}
