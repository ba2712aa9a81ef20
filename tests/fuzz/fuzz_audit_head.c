/* Fuzz target: the audit trail's head sidecar (station/src/audit.c, docs/audit-trail.md §3),
 * the one part of `provline audit verify` that parses raw file bytes itself. A small trail is
 * built once (fixed chain id and clock, so seeds stay valid); each input becomes its sidecar
 * and pl_audit_verify() runs on it. Nothing may crash or leak, and a verdict of "ok" must
 * mean the sidecar really holds a valid slot for the trail's last record.
 *
 * Input: first byte 0 = the rest is the whole sidecar file; otherwise the rest is a list of
 * (offset, xor) byte pairs applied to the genuine sidecar (first byte 1 and nothing else =
 * the genuine sidecar, which must verify). */
#define _POSIX_C_SOURCE 200809L
#include "provline/station/audit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD_MAX 4096u

static char g_path[128], g_head[140];
static uint8_t g_genuine[HEAD_MAX];
static size_t g_genuine_len;

static uint64_t fixed_now(void *user)
{
    (void)user;
    return 1700000000000ull;
}

static int fixed_fill(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(0xa5u ^ i);
    return PL_OK;
}

static char g_dir[64];

/* Leaves no trail behind in /tmp. */
static void cleanup(void)
{
    char p[160];
    unlink(g_head);
    unlink(g_path);
    snprintf(p, sizeof(p), "%s-wal", g_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", g_path);
    unlink(p);
    rmdir(g_dir);
}

static void build_once(void)
{
    static int done;
    if (done)
        return;
    char tmpl[] = "/tmp/plfuzz-audit.XXXXXX";
    if (mkdtemp(tmpl) == NULL)
        abort();
    snprintf(g_dir, sizeof(g_dir), "%s", tmpl);
    atexit(cleanup);
    snprintf(g_path, sizeof(g_path), "%s/audit.db", tmpl);
    snprintf(g_head, sizeof(g_head), "%s.head", g_path);
    struct pl_clock_ops clk = {fixed_now, NULL};
    struct pl_rng rng = {fixed_fill, NULL};
    struct pl_audit_config cfg = {g_path, &clk, &rng, NULL, NULL};
    struct pl_audit *a = NULL;
    if (pl_audit_open(&cfg, &a) != PL_OK)
        abort();
    for (int i = 0; i < 3; i++)
        if (pl_audit_transition(a, "fx", NULL, NULL, "LOADING", NULL) != PL_OK)
            abort();
    pl_audit_close(a);
    FILE *f = fopen(g_head, "rb");
    if (f == NULL)
        abort();
    g_genuine_len = fread(g_genuine, 1, sizeof(g_genuine), f);
    fclose(f);
    done = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[HEAD_MAX];
    size_t len = 0;
    struct pl_audit_report r;

    build_once();
    if (size == 0)
        return 0;
    if (data[0] == 0) {
        len = size - 1 < sizeof(head) ? size - 1 : sizeof(head);
        memcpy(head, data + 1, len);
    } else {
        memcpy(head, g_genuine, g_genuine_len);
        len = g_genuine_len;
        for (size_t i = 1; i + 1 < size; i += 2)
            head[data[i] % len] ^= data[i + 1];
    }
    FILE *f = fopen(g_head, "wb");
    if (f == NULL || fwrite(head, 1, len, f) != len || fclose(f) != 0)
        abort();
    if (pl_audit_verify(g_path, &r) != PL_OK)
        abort();
    /* The genuine sidecar must verify; a changed one only if it still names record 3. */
    if (size == 1 && data[0] != 0 && !r.ok)
        abort();
    if (r.ok && (r.head_seq != 3 || r.last_seq != 3))
        abort();
    return 0;
}
