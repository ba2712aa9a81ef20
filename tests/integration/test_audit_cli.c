/* Integration: `provline audit verify FILE` (cli/cmd_audit.c) on an untouched station audit
 * trail and on each kind of tampering: exit status 0 with "OK" and the counts, or 1 with
 * "FAIL" naming the first bad record; 2 for usage errors. reference/IFPP.md §6.3;
 * ARCHITECTURE.md §5; docs/audit-trail.md. */
#define _POSIX_C_SOURCE 200809L
#include "pl_tamper.h"
#include "pl_test.h"
#include "provline/station/audit.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DROP_TRIGGERS                                                                              \
    "DROP TRIGGER record_no_update; DROP TRIGGER record_no_delete; "                               \
    "DROP TRIGGER checkpoint_no_update; DROP TRIGGER checkpoint_no_delete;"

static char g_dir[256];
static char g_trail[512];

/* A trail of 12 records (transitions and APDU digests) with a checkpoint at 10: 13 in all. */
static void setup(void)
{
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7};
    cr_assert_eq(pl_test_tmpdir(g_dir, sizeof(g_dir)), 0);
    snprintf(g_trail, sizeof(g_trail), "%s/station-audit.db", g_dir);
    struct pl_audit_config cfg = {g_trail, NULL, NULL, NULL, NULL};
    struct pl_audit *a = NULL;
    cr_assert_eq(pl_audit_open(&cfg, &a), PL_OK);
    for (int i = 1; i <= 12; i++) {
        char detail[32];
        snprintf(detail, sizeof(detail), "step-%02d", i);
        if (i % 4 == 0) {
            uint8_t digest[32];
            memset(digest, i, sizeof(digest));
            cr_assert_eq(pl_audit_apdu(a, "fixture-3", eid, NULL, digest, detail), PL_OK);
        } else {
            cr_assert_eq(pl_audit_transition(a, "fixture-3", eid, NULL, "LOADING", detail), PL_OK);
        }
        if (i == 10) {
            uint64_t seq = 0;
            uint8_t h[32];
            cr_assert_eq(pl_audit_checkpoint(a, &seq, h), PL_OK);
            cr_assert_eq(seq, 10);
            cr_assert_eq(pl_audit_record_checkpoint(a, seq, h, NULL, 0), PL_OK);
        }
    }
    pl_audit_close(a);
}

static void teardown(void)
{
    pl_test_rmtree(g_dir);
}

/* Runs `provline audit verify path`; returns the exit status, output in out. */
static int verify_cli(const char *path, char *out, size_t cap)
{
    char cmd[1400];
    const char *bin = getenv("PL_BIN_DIR");
    cr_assert_not_null(bin, "PL_BIN_DIR not set");
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s' 2>&1", bin, path);
    return pl_test_run(cmd, out, cap);
}

/* A tampered copy of the trail: sql (may be NULL) applied to it. */
static void tampered(const char *name, const char *sql, char *path, size_t cap)
{
    char err[256];
    snprintf(path, cap, "%s/%s.db", g_dir, name);
    cr_assert_eq(pl_tamper_copy_trail(g_trail, path), 0);
    if (sql)
        cr_assert_eq(pl_tamper_sql(path, sql, err, sizeof(err)), 0, "%s", err);
}

static void expect_fail(const char *path, const char *fault, const char *seq)
{
    char out[1024];
    int st = verify_cli(path, out, sizeof(out));
    cr_assert_eq(st, 1, "exit %d: %s", st, out);
    cr_assert(strncmp(out, "FAIL ", 5) == 0, "%s", out);
    cr_assert(strstr(out, fault) != NULL, "expected %s: %s", fault, out);
    cr_assert(strstr(out, seq) != NULL, "expected %s: %s", seq, out);
}

TestSuite(audit_cli, .init = setup, .fini = teardown, .timeout = 120.0);

Test(audit_cli, untouched_trail_ok)
{
    char out[1024];
    int st = verify_cli(g_trail, out, sizeof(out));
    cr_assert_eq(st, 0, "exit %d: %s", st, out);
    cr_assert(strncmp(out, "OK ", 3) == 0, "%s", out);
    cr_assert(strstr(out, "records=13 first=1 last=13 anchor=0 head=13 checkpoints=1") != NULL,
              "%s", out);
}

Test(audit_cli, changed_record)
{
    char p[600];
    tampered("changed", DROP_TRIGGERS "UPDATE record SET state = 'INSTALLED' WHERE seq = 5;", p,
             sizeof(p));
    expect_fail(p, "hash-mismatch", "seq=5 ");
}

Test(audit_cli, byte_edited_record)
{
    char p[600];
    tampered("bytes", NULL, p, sizeof(p));
    cr_assert_eq(pl_tamper_flip(p, "step-07", 7, 6), 0);
    expect_fail(p, "hash-mismatch", "seq=7 ");
}

Test(audit_cli, deleted_record)
{
    char p[600];
    tampered("deleted", DROP_TRIGGERS "DELETE FROM record WHERE seq = 6;", p, sizeof(p));
    expect_fail(p, "records-missing", "seq=6 ");
}

Test(audit_cli, swapped_pair)
{
    char p[600];
    tampered("swapped",
             DROP_TRIGGERS "UPDATE record SET seq = -8 WHERE seq = 8;"
                           "UPDATE record SET seq = 8 WHERE seq = 9;"
                           "UPDATE record SET seq = 9 WHERE seq = -8;",
             p, sizeof(p));
    expect_fail(p, "chain-link-broken", "seq=8 ");
}

Test(audit_cli, truncated_tail)
{
    char p[600];
    tampered("truncated", DROP_TRIGGERS "DELETE FROM record WHERE seq >= 12;", p, sizeof(p));
    expect_fail(p, "tail-truncated", "seq=12 ");
}

Test(audit_cli, inserted_record)
{
    char p[600];
    tampered("inserted",
             DROP_TRIGGERS
             "UPDATE record SET seq = seq + 1000 WHERE seq >= 4;"
             "UPDATE record SET seq = seq - 999 WHERE seq >= 1000;"
             "INSERT INTO record(seq, time_ms, kind, fixture, eid, package_id, state, detail,"
             " digest, h_prev, h) SELECT 4, time_ms, kind, fixture, eid, package_id, 'INSTALLED',"
             " detail, digest, h, randomblob(32) FROM record WHERE seq = 3;",
             p, sizeof(p));
    expect_fail(p, "hash-mismatch", "seq=4 ");
}

Test(audit_cli, changed_hash)
{
    char p[600];
    tampered("hash", DROP_TRIGGERS "UPDATE record SET h = randomblob(32) WHERE seq = 2;", p,
             sizeof(p));
    expect_fail(p, "hash-mismatch", "seq=2 ");
}

Test(audit_cli, changed_checkpoint)
{
    char p[600];
    tampered("checkpoint",
             DROP_TRIGGERS "UPDATE checkpoint SET h = (SELECT h FROM record WHERE seq = 9);", p,
             sizeof(p));
    expect_fail(p, "checkpoint-mismatch", "seq=10 ");
}

Test(audit_cli, head_sidecar_missing)
{
    char p[600], head[700];
    tampered("nohead", NULL, p, sizeof(p));
    snprintf(head, sizeof(head), "%s.head", p);
    cr_assert_eq(unlink(head), 0);
    expect_fail(p, "head-missing", "seq=0 ");
}

Test(audit_cli, usage_and_unreadable)
{
    char out[1024], cmd[1400], p[600];
    const char *bin = getenv("PL_BIN_DIR");
    cr_assert_not_null(bin);
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify 2>&1", bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit frobnicate x 2>&1", bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(p, sizeof(p), "%s/does-not-exist.db", g_dir);
    cr_assert_eq(verify_cli(p, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "cannot read") != NULL, "%s", out);
    /* A file that is not an audit trail. */
    snprintf(p, sizeof(p), "%s/text.db", g_dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("just some text, not a trail\n", f);
    fclose(f);
    cr_assert_eq(verify_cli(p, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "not-an-audit-trail") != NULL, "%s", out);
}
