/* A real provline-keymaker process for integration tests (see pl_kmproc.h).
 * docs/station-keymaker-protocol.md §2 (keys, allow-list), §10 (serve). */
#define _POSIX_C_SOURCE 200809L
#include "pl_kmproc.h"

#include "pl_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int read_line(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char *r = fgets(out, (int)cap, f);
    fclose(f);
    if (r == NULL)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

int pl_kmproc_init(struct pl_kmproc *k, enum pl_curve curve)
{
    char cmd[1400], out[512], path[600], sec[41], line[64];

    memset(k, 0, sizeof(*k));
    const char *bindir = getenv("PL_BIN_DIR");
    if (bindir == NULL)
        return -1;
    snprintf(k->bin, sizeof(k->bin), "%s/provline-keymaker", bindir);
    if (access(k->bin, X_OK) != 0 || pl_et_init(&k->t, curve) != 0)
        return -1;
    snprintf(k->db, sizeof(k->db), "%s/km.db", k->t.dir);
    snprintf(k->log, sizeof(k->log), "%s/serve.log", k->t.dir);
    snprintf(cmd, sizeof(cmd), "'%s' keygen --out '%s/km' 2>&1", k->bin, k->t.dir);
    if (pl_test_run(cmd, out, sizeof(out)) != 0)
        return -1;
    snprintf(k->server_pub_file, sizeof(k->server_pub_file), "%s/km.pub", k->t.dir);
    if (read_line(k->server_pub_file, k->server_pub, sizeof(k->server_pub)) != 0
        || strlen(k->server_pub) != 40)
        return -1;
    if (zmq_curve_keypair(k->station_pub, sec) != 0)
        return -1;
    snprintf(k->station_key_file, sizeof(k->station_key_file), "%s/station.key", k->t.dir);
    snprintf(k->station_pub_file, sizeof(k->station_pub_file), "%s/station.pub", k->t.dir);
    snprintf(line, sizeof(line), "%s\n", sec);
    int rc = write_text(k->station_key_file, line, 0600);
    memset(sec, 0, sizeof(sec));
    memset(line, 0, sizeof(line));
    snprintf(line, sizeof(line), "%s\n", k->station_pub);
    if (rc != 0 || write_text(k->station_pub_file, line, 0644) != 0)
        return -1;
    snprintf(line, sizeof(line), "# station\n%s\n", k->station_pub);
    snprintf(path, sizeof(path), "%s/allow", k->t.dir);
    return write_text(path, line, 0644);
}

/* Forks `provline-keymaker` with argv (argv[0] ignored) logging to k->log, and waits for its
 * "listening" event; k->endpoint gets the resolved endpoint. */
static int spawn(struct pl_kmproc *k, const char *const *argv)
{
    /* A fresh log per start: the "listening" line found is this process's. */
    if (unlink(k->log) != 0 && access(k->log, F_OK) == 0)
        return -1;
    fflush(NULL);
    k->pid = fork();
    if (k->pid < 0) {
        k->pid = 0;
        return -1;
    }
    if (k->pid == 0) {
        int fd = open(k->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_WRONLY);
        if (fd < 0 || nul < 0 || dup2(fd, 2) < 0 || dup2(nul, 1) < 0)
            _exit(127);
        char *av[32];
        size_t n = 0;
        for (; argv[n] != NULL && n + 1 < sizeof(av) / sizeof(av[0]); n++)
            av[n] = strdup(argv[n]); /* the child owns copies: execv wants non-const */
        av[n] = NULL;
        execv(k->bin, av);
        _exit(127);
    }
    for (int i = 0; i < 2000; i++) {
        int status;
        if (waitpid(k->pid, &status, WNOHANG) != 0) {
            k->pid = 0;
            return -1; /* exited early (port taken?) */
        }
        size_t len = 0;
        char *log = (char *)pl_test_read_file(k->log, &len);
        const char *p = log ? strstr(log, "event=listening endpoint=\"") : NULL;
        if (p) {
            p += strlen("event=listening endpoint=\"");
            size_t n = strcspn(p, "\"");
            if (n < sizeof(k->endpoint)) {
                memcpy(k->endpoint, p, n);
                k->endpoint[n] = '\0';
            }
            free(log);
            return n < sizeof(k->endpoint) ? 0 : -1;
        }
        free(log);
        sleep_ms(10);
    }
    return -1;
}

void pl_kmproc_paths(const struct pl_kmproc *k, struct pl_kmproc_paths *p)
{
    snprintf(p->pki, sizeof(p->pki), "%s/pki", k->t.dir);
    snprintf(p->secret, sizeof(p->secret), "%s/km.key", k->t.dir);
    snprintf(p->allow, sizeof(p->allow), "%s/allow", k->t.dir);
    pl_test_src(p->profiles, sizeof(p->profiles), "tests/data/ts48");
}

int pl_kmproc_start(struct pl_kmproc *k)
{
    struct pl_kmproc_paths p;
    char bind[sizeof(k->endpoint)];
    snprintf(bind, sizeof(bind), "%s", k->endpoint[0] ? k->endpoint : "tcp://127.0.0.1:*");
    pl_kmproc_paths(k, &p);
    const char *const argv[] = {"provline-keymaker", "serve",    "--pki",   p.pki,
                                "--db",              k->db,      "--profiles", p.profiles,
                                "--bind",            bind,       "--curve-secret", p.secret,
                                "--allow",           p.allow,    "--verbose",  NULL};
    return spawn(k, argv);
}

int pl_kmproc_start_config(struct pl_kmproc *k, const char *config)
{
    const char *const argv[] = {"provline-keymaker", "serve", "--config", config, NULL};
    return spawn(k, argv);
}

int pl_kmproc_stop(struct pl_kmproc *k, int sig)
{
    int status = 0;
    if (k->pid <= 0)
        return -1;
    if (kill(k->pid, sig) != 0)
        return -1;
    pid_t r = waitpid(k->pid, &status, 0);
    k->pid = 0;
    return r < 0 ? -1 : status;
}

void pl_kmproc_free(struct pl_kmproc *k)
{
    if (k->pid > 0)
        (void)pl_kmproc_stop(k, SIGKILL);
    pl_et_free(&k->t);
}

int pl_kmproc_log_count(const struct pl_kmproc *k, const char *needle)
{
    size_t len = 0;
    char *log = (char *)pl_test_read_file(k->log, &len);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}
