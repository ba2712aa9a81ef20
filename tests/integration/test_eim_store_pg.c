/* The eIM store conformance suite (tests/support/eim_store_conformance.c) on the
 * PostgreSQL backend. The binary starts one throwaway server (initdb + pg_ctl, unix socket
 * only) before its tests and removes it after them; each test gets fresh databases. Without
 * the server binaries every test FAILS (CI installs postgresql-15). CTest label: postgres. */
#define _POSIX_C_SOURCE 200809L
#include "eim_store_conformance.h"
#include "pl_pgtest.h"
#include "pl_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct pl_pgtest g_server; /* the runner process's server */

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    char err[2048];
    (void)set;
    if (pl_pgtest_start(&g_server, err, sizeof(err)) != 0)
        pl_pgtest_export(NULL, err);
    else
        pl_pgtest_export(&g_server, NULL);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    pl_pgtest_stop(&g_server);
}

struct pg_ctx {
    struct pl_pgtest pg;
    char db[64];
    char other[64];
    char dir[256];
};

static struct pg_ctx g_ctx;
static struct pl_eimconf_backend g_be;

static int pg_open(void *ctx, int which, const struct pl_eim_store_options *opt,
                   struct pl_eim_store **out)
{
    struct pg_ctx *c = ctx;
    char ci[512];
    pl_pgtest_conninfo(&c->pg, which == 0 ? c->db : c->other, ci, sizeof(ci));
    return pl_eim_store_open_pg(ci, opt, out);
}

static int pg_snapshot(void *ctx)
{
    struct pg_ctx *c = ctx;
    char sql[256], err[512];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s_snap", c->db);
    if (pl_pgtest_sql(&c->pg, sql, err, sizeof(err)) != 0) {
        cr_log_error("%s", err);
        return -1;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s_snap TEMPLATE %s", c->db, c->db);
    if (pl_pgtest_sql(&c->pg, sql, err, sizeof(err)) != 0) {
        cr_log_error("%s", err);
        return -1;
    }
    return 0;
}

static int pg_restore(void *ctx)
{
    struct pg_ctx *c = ctx;
    char sql[256], err[512];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", c->db);
    if (pl_pgtest_sql(&c->pg, sql, err, sizeof(err)) != 0) {
        cr_log_error("%s", err);
        return -1;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s_snap", c->db, c->db);
    if (pl_pgtest_sql(&c->pg, sql, err, sizeof(err)) != 0) {
        cr_log_error("%s", err);
        return -1;
    }
    return 0;
}

static void setup(void)
{
    char err[2048], sql[128];
    cr_assert_eq(pl_pgtest_import(&g_ctx.pg, err, sizeof(err)), 0, "%s", err);
    snprintf(g_ctx.db, sizeof(g_ctx.db), "eim_t%ld", (long)getpid());
    snprintf(g_ctx.other, sizeof(g_ctx.other), "eim_o%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", g_ctx.db);
    cr_assert_eq(pl_pgtest_sql(&g_ctx.pg, sql, err, sizeof(err)), 0, "%s", err);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", g_ctx.other);
    cr_assert_eq(pl_pgtest_sql(&g_ctx.pg, sql, err, sizeof(err)), 0, "%s", err);
    /* a private prefix: nothing else on the machine globs it */
    snprintf(g_ctx.dir, sizeof(g_ctx.dir), "/tmp/%s.XXXXXX", "pl-eimstorepg");
    cr_assert_not_null(mkdtemp(g_ctx.dir));
    g_be.open = pg_open;
    g_be.snapshot = pg_snapshot;
    g_be.restore = pg_restore;
    g_be.ctx = &g_ctx;
    g_be.dir = g_ctx.dir;
}

static void teardown(void)
{
    pl_test_rmtree(g_ctx.dir);
}

TestSuite(eim_store_pg, .init = setup, .fini = teardown, .timeout = 180);

Test(eim_store_pg, registry_crud)
{
    pl_eimconf_registry_crud(&g_be);
}
Test(eim_store_pg, bulk_put)
{
    pl_eimconf_bulk_put(&g_be);
}
Test(eim_store_pg, queue_fifo)
{
    pl_eimconf_queue_fifo(&g_be);
}
Test(eim_store_pg, op_transitions)
{
    pl_eimconf_op_transitions(&g_be);
}
Test(eim_store_pg, claim_one_wins)
{
    pl_eimconf_claim_one_wins(&g_be);
}
Test(eim_store_pg, counter_basics)
{
    pl_eimconf_counter_basics(&g_be);
}
Test(eim_store_pg, counter_processes)
{
    pl_eimconf_counter_processes(&g_be);
}
Test(eim_store_pg, counter_threads)
{
    pl_eimconf_counter_threads(&g_be);
}
Test(eim_store_pg, counter_restore)
{
    pl_eimconf_counter_restore(&g_be);
}
Test(eim_store_pg, counter_restore_two_nodes)
{
    pl_eimconf_counter_restore_two_nodes(&g_be);
}
Test(eim_store_pg, counter_restore_small)
{
    pl_eimconf_counter_restore_small(&g_be);
}

Test(eim_store_pg, guard_mismatch)
{
    pl_eimconf_guard_mismatch(&g_be);
}
Test(eim_store_pg, notifications)
{
    pl_eimconf_notifications(&g_be);
}
Test(eim_store_pg, operator_tokens)
{
    pl_eimconf_operator_tokens(&g_be);
}

/* PostgreSQL-specific: a wrong server is a clean error, not a hang or a crash. */
Test(eim_store_pg, unreachable_server)
{
    struct pl_eim_store_options o;
    struct pl_eim_store *s = NULL;
    memset(&o, 0, sizeof(o));
    o.allow_unguarded = true;
    cr_assert_eq(
        pl_eim_store_open_pg("host=/nonexistent-dir port=1 dbname=x connect_timeout=2", &o, &s),
        PL_ERR_DB);
    cr_assert_null(s);
}
