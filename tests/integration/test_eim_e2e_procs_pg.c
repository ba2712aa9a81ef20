/* integration.eim_e2e_procs_pg: the real-process acceptance of test_eim_e2e_procs.c on the
 * PostgreSQL store (a throwaway server, reference/DEPENDENCIES.md §9), and two
 * `provline-eim serve` processes sharing one database (counters strictly increasing per EID,
 * each operation completed once). PL_TEST_SLOW */
#define PL_E2E_PG 1
#include "test_eim_e2e_procs.c"

static struct pl_pgtest g_server;

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
