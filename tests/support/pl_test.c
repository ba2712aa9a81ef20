/* Test helpers: files, temp dirs, running commands. */
#define _POSIX_C_SOURCE 200809L
#include "pl_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint8_t *pl_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        cap *= 2;
        uint8_t *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

const char *pl_test_src(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", PL_TEST_SRCDIR, rel);
    return out;
}

int pl_test_tmpdir(char *out, size_t cap)
{
    char tmpl[] = "/tmp/pltest.XXXXXX";
    if (!mkdtemp(tmpl))
        return -1;
    snprintf(out, cap, "%s", tmpl);
    return 0;
}

void pl_test_rmtree(const char *path)
{
    char cmd[1024];
    if (!path || strncmp(path, "/tmp/", 5) != 0)
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    int rc = system(cmd);
    (void)rc;
}

int pl_test_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    char tmp[512];
    size_t got;
    while ((got = fread(tmp, 1, sizeof(tmp), p)) > 0) {
        if (out && cap > 1) {
            size_t room = cap - 1 - n;
            size_t c = got < room ? got : room;
            memcpy(out + n, tmp, c);
            n += c;
        }
    }
    if (out && cap)
        out[n] = 0;
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int pl_test_eim_serve(const char *exe, const char *config, const char *dir, unsigned *port,
                      char *err, size_t err_cap)
{
    char port_file[1024], logp[1024];
    snprintf(port_file, sizeof(port_file), "%s/port", dir);
    snprintf(logp, sizeof(logp), "%s/serve.log", dir);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, err_cap, "fork failed");
        return -1;
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(logp, "w", stderr) == NULL)
            _exit(126);
        execl(exe, exe, "serve", "--config", config, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        size_t len = 0;
        int st = 0;
        uint8_t *p = pl_test_read_file(port_file, &len);
        if (p != NULL) {
            *port = (unsigned)strtoul((char *)p, NULL, 10);
            free(p);
            return (int)pid;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            uint8_t *log = pl_test_read_file(logp, &len);
            snprintf(err, err_cap, "provline-eim serve exited (%d): %s", st,
                     log != NULL ? (char *)log : "");
            free(log);
            return -1;
        }
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    snprintf(err, err_cap, "provline-eim serve did not start listening (log %s)", logp);
    return -1;
}
