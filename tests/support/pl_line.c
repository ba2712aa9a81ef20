/* A whole lab line as child processes (pl_line.h). */
#define _POSIX_C_SOURCE 200809L
#include "pl_line.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pl_test.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"

uint64_t pl_line_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void pl_line_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int pl_line_run(const struct pl_line *l, const char *cmd, char *out, size_t cap)
{
    (void)l;
    return pl_test_run(cmd, out, cap);
}

int pl_line_count(const char *path, const char *needle)
{
    char line[4096];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

static int read_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(out, (int)cap, f) == NULL) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int pl_line_init(struct pl_line *l)
{
    char cmd[2048], out[1024];
    const char *bin = getenv("PL_BIN_DIR");

    memset(l, 0, sizeof(*l));
    l->km_pid = -1;
    l->st_pid = -1;
    if (bin == NULL) {
        fprintf(stderr, "pl_line: PL_BIN_DIR is not set\n");
        return -1;
    }
    snprintf(l->bin, sizeof(l->bin), "%s", bin);
    if (pl_test_tmpdir(l->dir, sizeof(l->dir)) != 0)
        return -1;
    snprintf(l->pki, sizeof(l->pki), "%s/pki/p256", l->dir);
    snprintf(cmd, sizeof(cmd), "'%s/provline' pki init '%s/pki' --curve p256", l->bin, l->dir);
    if (pl_test_run(cmd, out, sizeof(out)) != 0) {
        fprintf(stderr, "pl_line: %s: %s\n", cmd, out);
        return -1;
    }
    snprintf(l->km_key, sizeof(l->km_key), "%s/km.key", l->dir);
    snprintf(l->km_pub, sizeof(l->km_pub), "%s/km.pub", l->dir);
    snprintf(l->st_key, sizeof(l->st_key), "%s/station.key", l->dir);
    snprintf(l->st_pub, sizeof(l->st_pub), "%s/station.pub", l->dir);
    snprintf(cmd, sizeof(cmd), "'%s/provline-keymaker' keygen --out '%s/km' && "
                               "'%s/provline-keymaker' keygen --out '%s/station'",
             l->bin, l->dir, l->bin, l->dir);
    if (pl_test_run(cmd, out, sizeof(out)) != 0) {
        fprintf(stderr, "pl_line: keygen: %s\n", out);
        return -1;
    }
    char pub[64];
    if (read_line(l->st_pub, pub, sizeof(pub)) != 0)
        return -1;
    snprintf(l->allow, sizeof(l->allow), "%s/allow", l->dir);
    FILE *f = fopen(l->allow, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "# the station of this line\n%s\n", pub);
    fclose(f);
    snprintf(l->km_db, sizeof(l->km_db), "%s/km.db", l->dir);
    snprintf(l->km_log, sizeof(l->km_log), "%s/km.log", l->dir);
    snprintf(l->st_dir, sizeof(l->st_dir), "%s/station", l->dir);
    if (mkdir(l->st_dir, 0700) != 0)
        return -1;
    snprintf(l->conf, sizeof(l->conf), "%s/station.conf", l->dir);
    snprintf(l->journal, sizeof(l->journal), "%s/journal.db", l->st_dir);
    snprintf(l->audit, sizeof(l->audit), "%s/audit.db", l->st_dir);
    snprintf(l->pkgs, sizeof(l->pkgs), "%s/packages", l->st_dir);
    snprintf(l->st_log, sizeof(l->st_log), "%s/station.log", l->dir);
    snprintf(l->eim_id, sizeof(l->eim_id), "eim.line.test");
    if (mkdir(l->pkgs, 0700) != 0)
        return -1;
    return 0;
}

static void kill_wait(pid_t *pid, int sig)
{
    int st;
    if (*pid <= 0)
        return;
    kill(*pid, sig);
    waitpid(*pid, &st, 0);
    *pid = -1;
}

void pl_line_free(struct pl_line *l)
{
    for (size_t i = 0; i < l->n_dev; i++)
        if (l->dev[i].running)
            (void)pl_line_dev_stop(l, i, SIGKILL);
    kill_wait(&l->st_pid, SIGKILL);
    kill_wait(&l->km_pid, SIGKILL);
    if (l->dir[0] != '\0' && getenv("PL_KEEP_TMP") == NULL)
        pl_test_rmtree(l->dir);
}

/* Children die with the test process (a failed assertion must not leave a line running). */
static pid_t spawn_out(const char *const *argv, const char *log, int out_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    char *av[64];
    size_t n = 0;
    for (; argv[n] != NULL && n + 1 < sizeof(av) / sizeof(av[0]); n++)
        av[n] = strdup(argv[n]);
    av[n] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDWR);
    if (fd < 0 || nul < 0) {
        /* Still the test's stderr: say why the child exits 127 (a test directory removed
         * under a running line, say). */
        fprintf(stderr, "pl_line: cannot open %s: %s\n", fd < 0 ? log : "/dev/null",
                strerror(errno));
        _exit(127);
    }
    if (dup2(fd, 2) < 0 || dup2(out_fd >= 0 ? out_fd : nul, 1) < 0 || dup2(nul, 0) < 0)
        _exit(127);
    execv(av[0], av);
    fprintf(stderr, "pl_line: cannot run %s: %s\n", av[0], strerror(errno)); /* into the log */
    _exit(127);
}

static pid_t spawn(const char *const *argv, const char *log)
{
    return spawn_out(argv, log, -1);
}

int pl_line_km_start(struct pl_line *l)
{
    char bin[600], profiles[600], bind[160];
    const char *argv[32];
    size_t n = 0;
    long start_off = 0;
    struct stat st;

    snprintf(bin, sizeof(bin), "%s/provline-keymaker", l->bin);
    pl_test_src(profiles, sizeof(profiles), "tests/data/ts48");
    snprintf(bind, sizeof(bind), "%s", l->km_endpoint[0] != '\0' ? l->km_endpoint : "tcp://127.0.0.1:*");
    if (stat(l->km_log, &st) == 0)
        start_off = (long)st.st_size;
    argv[n++] = bin;
    argv[n++] = "serve";
    argv[n++] = "--pki";
    argv[n++] = l->pki;
    argv[n++] = "--db";
    argv[n++] = l->km_db;
    argv[n++] = "--profiles";
    argv[n++] = profiles;
    argv[n++] = "--bind";
    argv[n++] = bind;
    argv[n++] = "--curve-secret";
    argv[n++] = l->km_key;
    argv[n++] = "--allow";
    argv[n++] = l->allow;
    for (size_t i = 0; i < l->n_km_args && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
        argv[n++] = l->km_args[i];
    argv[n] = NULL;
    l->km_pid = spawn(argv, l->km_log);
    if (l->km_pid < 0)
        return -1;
    for (int i = 0; i < 3000; i++) {
        int status;
        if (waitpid(l->km_pid, &status, WNOHANG) == l->km_pid) {
            l->km_pid = -1;
            fprintf(stderr, "pl_line: keymaker exited early (see %s)\n", l->km_log);
            return -1;
        }
        size_t len = 0;
        char *log = (char *)pl_test_read_file(l->km_log, &len);
        const char *p = NULL;
        if (log != NULL && (size_t)start_off < len)
            p = strstr(log + start_off, "event=listening endpoint=\"");
        if (p != NULL) {
            p += strlen("event=listening endpoint=\"");
            size_t k = strcspn(p, "\"");
            if (k < sizeof(l->km_endpoint)) {
                memcpy(l->km_endpoint, p, k);
                l->km_endpoint[k] = '\0';
            }
            free(log);
            return 0;
        }
        free(log);
        pl_line_sleep_ms(10);
    }
    fprintf(stderr, "pl_line: keymaker did not listen\n");
    return -1;
}

int pl_line_km_stop(struct pl_line *l, int sig)
{
    int status = -1;
    if (l->km_pid <= 0)
        return -1;
    kill(l->km_pid, sig);
    if (waitpid(l->km_pid, &status, 0) != l->km_pid)
        status = -1;
    l->km_pid = -1;
    return status;
}

int pl_line_add_device(struct pl_line *l, bool coap, unsigned n_otks)
{
    struct pl_line_dev *d;
    char cmd[2048], out[1024];
    struct pl_euicc *e = NULL;

    if (l->n_dev >= PL_LINE_DEV_MAX)
        return -1;
    d = &l->dev[l->n_dev];
    memset(d, 0, sizeof(*d));
    d->coap = coap;
    /* A copy of the directory: d lives inside l, and gcc's -Wrestrict cannot tell the
     * destination member from the source member apart. */
    char dir[sizeof(l->dir)];
    memcpy(dir, l->dir, sizeof(dir));
    snprintf(d->euicc, sizeof(d->euicc), "%s/dev%zu.euicc", dir, l->n_dev);
    snprintf(d->link, sizeof(d->link), "%s/dev%zu.pty", dir, l->n_dev);
    snprintf(d->log, sizeof(d->log), "%s/dev%zu.log", dir, l->n_dev);
    snprintf(cmd, sizeof(cmd), "'%s/provline-keymaker' mint-euicc --pki '%s' --out '%s' --otks %u",
             l->bin, l->pki, d->euicc, n_otks);
    if (pl_test_run(cmd, out, sizeof(out)) != 0) {
        fprintf(stderr, "pl_line: mint: %s\n", out);
        return -1;
    }
    if (pl_euicc_open(d->euicc, NULL, &e) != PL_OK)
        return -1;
    pl_euicc_get_eid(e, d->eid);
    pl_euicc_close(e);
    l->n_dev++;
    return 0;
}

int pl_line_dev_start(struct pl_line *l, size_t i)
{
    struct pl_line_dev *d = &l->dev[i];
    const char *argv[8 + PL_LINE_ARGS_MAX];
    char addr[64];
    size_t n = 0;

    argv[n++] = "provline-vdevice";
    argv[n++] = "--euicc";
    argv[n++] = d->euicc;
    if (d->coap) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)d->port);
        argv[n++] = "--coap";
        argv[n++] = addr;
    } else {
        argv[n++] = "--pty";
        argv[n++] = d->link;
        argv[n++] = "--baud";
        argv[n++] = "921600";
    }
    for (size_t k = 0; k < d->n_args; k++)
        argv[n++] = d->args[k];
    argv[n] = NULL;
    char bin[600];
    int pfd[2];
    snprintf(bin, sizeof(bin), "%s/provline-vdevice", l->bin);
    argv[0] = bin;
    memset(&d->proc, 0, sizeof(d->proc));
    d->proc.pid = -1;
    d->proc.out_fd = -1;
    if (pipe(pfd) != 0)
        return -1;
    d->proc.pid = spawn_out(argv, d->log, pfd[1]);
    close(pfd[1]);
    d->proc.out_fd = pfd[0];
    /* Wait for its "READY ...\n" line. */
    size_t got = 0;
    uint64_t end = pl_line_now_ms() + 10000;
    while (got + 1 < sizeof(d->proc.ready) && pl_line_now_ms() < end) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        ssize_t r = read(pfd[0], d->proc.ready + got, 1);
        if (r <= 0)
            break;
        if (d->proc.ready[got++] == '\n')
            break;
    }
    d->proc.ready[got] = '\0';
    if (d->proc.pid <= 0 || strncmp(d->proc.ready, "READY ", 6) != 0) {
        fprintf(stderr, "pl_line: vdevice %zu did not start (see %s)\n", i, d->log);
        if (d->proc.pid > 0) {
            int st;
            kill(d->proc.pid, SIGKILL);
            waitpid(d->proc.pid, &st, 0);
        }
        close(pfd[0]);
        d->proc.pid = -1;
        d->proc.out_fd = -1;
        return -1;
    }
    d->running = true;
    if (d->coap && d->port == 0) {
        const char *p = strstr(d->proc.ready, "127.0.0.1:");
        if (p == NULL)
            return -1;
        d->port = (uint16_t)strtoul(p + strlen("127.0.0.1:"), NULL, 10);
    }
    return 0;
}

int pl_line_dev_stop(struct pl_line *l, size_t i, int sig)
{
    struct pl_line_dev *d = &l->dev[i];
    int status = -1;
    if (!d->running)
        return -1;
    if (sig == SIGTERM) {
        status = pl_ft_proc_stop(&d->proc, 5000);
    } else {
        kill(d->proc.pid, sig);
        waitpid(d->proc.pid, &status, 0);
        if (d->proc.out_fd >= 0)
            close(d->proc.out_fd);
        d->proc.out_fd = -1;
        d->proc.pid = -1;
    }
    d->running = false;
    return status;
}

int pl_line_write_conf(struct pl_line *l, const char *extra)
{
    FILE *f = fopen(l->conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "# written by tests/support/pl_line.c\n"
            "[line]\nstation_id = test-line\nmax_loads = 4\n\n"
            "[keymaker]\nendpoint = %s\nserver_public_key = %s\nclient_secret_key = %s\n"
            "client_public_key = %s\ncheckpoint_certificate = %s/dpf.der\n\n"
            "[storage]\njournal = %s\naudit = %s\npackages = %s\n\n"
            "[eim]\neim_id = %s\neim_fqdn = %s\neim_certificate = %s/eim.der\n\n"
            "[metrics]\nlisten = 127.0.0.1:0\n\n"
            "[log]\nlevel = debug\n\n"
            "[timers]\nT_PROBE = 100\nT_RETRY = 200\nT_IDENTIFY = 3000\nT_FIXTURE = 8000\n"
            "T_LOAD = 30000\nT_KEYMAKER = 6000\nT_KM_ATTEMPT = 300\nT_DRAIN = 15000\n\n",
            l->km_endpoint, l->km_pub, l->st_key, l->st_pub, l->pki, l->journal, l->audit, l->pkgs,
            l->eim_id, l->eim_id, l->pki);
    for (size_t i = 0; i < l->n_dev; i++) {
        const struct pl_line_dev *d = &l->dev[i];
        if (d->coap)
            fprintf(f, "[fixture d%zu]\ntransport = coap\nport = 127.0.0.1:%u\n\n", i,
                    (unsigned)d->port);
        else
            fprintf(f, "[fixture d%zu]\ntransport = serial\nport = %s\nbaud = 921600\n\n", i,
                    d->link);
    }
    if (extra != NULL)
        fputs(extra, f);
    return fclose(f) == 0 ? 0 : -1;
}

int pl_line_station_start(struct pl_line *l, bool once)
{
    char bin[600];
    const char *argv[6];
    size_t n = 0;
    snprintf(bin, sizeof(bin), "%s/provline-station", l->bin);
    argv[n++] = bin;
    argv[n++] = "--config";
    argv[n++] = l->conf;
    if (once)
        argv[n++] = "--once";
    argv[n] = NULL;
    l->st_pid = spawn(argv, l->st_log);
    return l->st_pid > 0 ? 0 : -1;
}

int pl_line_station_wait(struct pl_line *l, int ms, int *status)
{
    uint64_t end = pl_line_now_ms() + (uint64_t)ms;
    if (l->st_pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(l->st_pid, status, WNOHANG);
        if (r == l->st_pid) {
            l->st_pid = -1;
            return 0;
        }
        if (pl_line_now_ms() >= end)
            return -1;
        pl_line_sleep_ms(20);
    }
}

int pl_line_station_stop(struct pl_line *l, int sig)
{
    int status = -1;
    if (l->st_pid <= 0)
        return -1;
    kill(l->st_pid, sig);
    if (waitpid(l->st_pid, &status, 0) != l->st_pid)
        status = -1;
    l->st_pid = -1;
    return status;
}
