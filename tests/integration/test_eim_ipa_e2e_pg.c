/* integration.eim_ipa_e2e_pg: the scenarios of test_eim_ipa_e2e.c (the eIM engine against
 * provline's IPA and the software eUICC) on the PostgreSQL store backend, with one
 * throwaway server for the binary (tests/support/pl_pgtest.h; label postgres). Each test gets
 * a fresh database. Without the server binaries every test FAILS. */
#define PL_E2E_PG 1
#include "test_eim_ipa_e2e.c"

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
