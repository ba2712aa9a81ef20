/* The northbound API (docs/eim-api.md) of the real provline-eim daemon on SQLite: the suite
 * in tests/support/eim_api_suite.c, one fresh daemon, PKI and database per test. */
#include "eim_api_suite.h"

#include <criterion/criterion.h>

static struct pl_eimapi_env g_env;

static void setup(void)
{
    pl_eimapi_start(&g_env, "\"backend\": \"sqlite\", \"path\": \"eim.db\"");
}

static void teardown(void)
{
    pl_eimapi_stop(&g_env);
}

TestSuite(eim_api, .init = setup, .fini = teardown, .timeout = 120);

Test(eim_api, auth_and_roles)
{
    pl_eimapi_auth(&g_env);
}
Test(eim_api, register_devices)
{
    pl_eimapi_register(&g_env);
}
Test(eim_api, malformed_and_oversize)
{
    pl_eimapi_malformed(&g_env);
}
Test(eim_api, operations)
{
    pl_eimapi_operations(&g_env);
}
Test(eim_api, bulk_import)
{
    pl_eimapi_bulk(&g_env);
}
Test(eim_api, bootstrap)
{
    pl_eimapi_bootstrap(&g_env);
}
Test(eim_api, cli)
{
    pl_eimapi_cli(&g_env);
}
Test(eim_api, check_config)
{
    pl_eimapi_check_config(&g_env);
}

Test(eim_api, store_recover_after_restore)
{
    pl_eimapi_store_recover(&g_env);
}
