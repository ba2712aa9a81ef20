/* The eIM store conformance suite (tests/support/eim_store_conformance.c) on the SQLite
 * backend: a fresh database file and guard directory per test. */
#define _POSIX_C_SOURCE 200809L
#include "eim_store_conformance.h"
#include "pl_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lite_ctx {
    char dir[256];
    char db[320];
    char other[320];
    char snap[320];
};

static struct lite_ctx g_ctx;
static struct pl_eimconf_backend g_be;

static int lite_open(void *ctx, int which, const struct pl_eim_store_options *opt,
                     struct pl_eim_store **out)
{
    struct lite_ctx *c = ctx;
    return pl_eim_store_open_sqlite(which == 0 ? c->db : c->other, opt, out);
}

static int copy_file(const char *from, const char *to)
{
    size_t len = 0;
    uint8_t *buf = pl_test_read_file(from, &len);
    FILE *f = NULL;
    int rc = -1;
    if (buf == NULL)
        return -1;
    f = fopen(to, "wb");
    if (f != NULL && fwrite(buf, 1, len, f) == len)
        rc = 0;
    if (f != NULL && fclose(f) != 0)
        rc = -1;
    free(buf);
    return rc;
}

/* Every handle is closed, so the WAL has been checkpointed into the main file. */
static int lite_snapshot(void *ctx)
{
    struct lite_ctx *c = ctx;
    char wal[340];
    snprintf(wal, sizeof(wal), "%s-wal", c->db);
    if (access(wal, F_OK) == 0)
        return -1;
    return copy_file(c->db, c->snap);
}

static int lite_restore(void *ctx)
{
    struct lite_ctx *c = ctx;
    char side[340];
    snprintf(side, sizeof(side), "%s-wal", c->db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", c->db);
    unlink(side);
    return copy_file(c->snap, c->db);
}

static void setup(void)
{
    /* a private prefix: nothing else on the machine globs it */
    snprintf(g_ctx.dir, sizeof(g_ctx.dir), "/tmp/%s.XXXXXX", "pl-eimstore");
    cr_assert_not_null(mkdtemp(g_ctx.dir));
    snprintf(g_ctx.db, sizeof(g_ctx.db), "%s/eim.db", g_ctx.dir);
    snprintf(g_ctx.other, sizeof(g_ctx.other), "%s/other.db", g_ctx.dir);
    snprintf(g_ctx.snap, sizeof(g_ctx.snap), "%s/eim.db.backup", g_ctx.dir);
    g_be.open = lite_open;
    g_be.snapshot = lite_snapshot;
    g_be.restore = lite_restore;
    g_be.ctx = &g_ctx;
    g_be.dir = g_ctx.dir;
}

static void teardown(void)
{
    pl_test_rmtree(g_ctx.dir);
}

TestSuite(eim_store_sqlite, .init = setup, .fini = teardown, .timeout = 120);

Test(eim_store_sqlite, registry_crud)
{
    pl_eimconf_registry_crud(&g_be);
}
Test(eim_store_sqlite, bulk_put)
{
    pl_eimconf_bulk_put(&g_be);
}
Test(eim_store_sqlite, queue_fifo)
{
    pl_eimconf_queue_fifo(&g_be);
}
Test(eim_store_sqlite, op_transitions)
{
    pl_eimconf_op_transitions(&g_be);
}
Test(eim_store_sqlite, claim_one_wins)
{
    pl_eimconf_claim_one_wins(&g_be);
}
Test(eim_store_sqlite, counter_basics)
{
    pl_eimconf_counter_basics(&g_be);
}
Test(eim_store_sqlite, counter_processes)
{
    pl_eimconf_counter_processes(&g_be);
}
Test(eim_store_sqlite, counter_threads)
{
    pl_eimconf_counter_threads(&g_be);
}
Test(eim_store_sqlite, counter_restore)
{
    pl_eimconf_counter_restore(&g_be);
}
Test(eim_store_sqlite, counter_restore_two_nodes)
{
    pl_eimconf_counter_restore_two_nodes(&g_be);
}
Test(eim_store_sqlite, counter_restore_small)
{
    pl_eimconf_counter_restore_small(&g_be);
}

Test(eim_store_sqlite, guard_mismatch)
{
    pl_eimconf_guard_mismatch(&g_be);
}
Test(eim_store_sqlite, notifications)
{
    pl_eimconf_notifications(&g_be);
}
Test(eim_store_sqlite, operator_tokens)
{
    pl_eimconf_operator_tokens(&g_be);
}

/* SQLite-specific: the journal really is WAL and the durability FULL. */
Test(eim_store_sqlite, refuses_memory_database)
{
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.allow_unguarded = true;
    cr_assert_eq(pl_eim_store_open_sqlite(":memory:", &o, &s), PL_ERR_DB);
    cr_assert_null(s);
}
