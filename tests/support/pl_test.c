/* Test helpers: files, temp dirs, running commands. */
#define _POSIX_C_SOURCE 200809L
#include "pl_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
