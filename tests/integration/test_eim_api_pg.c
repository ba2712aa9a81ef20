/* The northbound API suite (tests/support/eim_api_suite.c) with the daemon on PostgreSQL:
 * one throwaway server for the binary (label postgres), a fresh database per test. Without
 * the server binaries every test FAILS. */
#define _POSIX_C_SOURCE 200809L
#include "eim_api_suite.h"
#include "pl_pgtest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

static struct pl_pgtest g_server;
static struct pl_eimapi_env g_env;

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

static void setup(void)
{
    struct pl_pgtest pg;
    char err[2048], db[64], sql[128], ci[512], store[700];
    cr_assert_eq(pl_pgtest_import(&pg, err, sizeof(err)), 0, "%s", err);
    snprintf(db, sizeof(db), "api_t%ld", (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    cr_assert_eq(pl_pgtest_sql(&pg, sql, err, sizeof(err)), 0, "%s", err);
    pl_pgtest_conninfo(&pg, db, ci, sizeof(ci));
    snprintf(store, sizeof(store), "\"backend\": \"postgres\", \"conninfo\": \"%s\"", ci);
    pl_eimapi_start(&g_env, store);
}

static void teardown(void)
{
    pl_eimapi_stop(&g_env);
}

TestSuite(eim_api_pg, .init = setup, .fini = teardown, .timeout = 180);

Test(eim_api_pg, auth_and_roles)
{
    pl_eimapi_auth(&g_env);
}
Test(eim_api_pg, register_devices)
{
    pl_eimapi_register(&g_env);
}
Test(eim_api_pg, malformed_and_oversize)
{
    pl_eimapi_malformed(&g_env);
}
Test(eim_api_pg, operations)
{
    pl_eimapi_operations(&g_env);
}
Test(eim_api_pg, bulk_import)
{
    pl_eimapi_bulk(&g_env);
}
Test(eim_api_pg, bootstrap)
{
    pl_eimapi_bootstrap(&g_env);
}
