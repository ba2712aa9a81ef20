/* The northbound API suite: starts the real provline-eim (serve) on a store, with a test
 * PKI and one token per role, and exercises every endpoint. tests/integration/
 * test_eim_api.c runs it on SQLite, test_eim_api_pg.c on PostgreSQL. Never linked into a
 * product. */
#ifndef PL_EIM_API_SUITE_H
#define PL_EIM_API_SUITE_H

#include "provline/eim/http_client.h"

#include <stddef.h>
#include <sys/types.h>

enum pl_eimapi_role { PL_EIMAPI_ADMIN, PL_EIMAPI_OPERATOR, PL_EIMAPI_STATION, PL_EIMAPI_READER };

struct pl_eimapi_env {
    char dir[256];
    char config[320];
    char url[64];
    char tokens[4][128];
    pid_t pid;
};

/* store_json: the "store" section's backend members, e.g.
 * "\"backend\":\"sqlite\",\"path\":\"eim.db\"" (the guard is added). */
void pl_eimapi_start(struct pl_eimapi_env *env, const char *store_json);
/* Stops the daemon (SIGTERM; asserts a clean exit) and removes the directory. */
void pl_eimapi_stop(struct pl_eimapi_env *env);

void pl_eimapi_auth(struct pl_eimapi_env *env);
void pl_eimapi_register(struct pl_eimapi_env *env);
void pl_eimapi_malformed(struct pl_eimapi_env *env);
void pl_eimapi_operations(struct pl_eimapi_env *env);
void pl_eimapi_bulk(struct pl_eimapi_env *env);
void pl_eimapi_bootstrap(struct pl_eimapi_env *env);
void pl_eimapi_cli(struct pl_eimapi_env *env);
void pl_eimapi_check_config(struct pl_eimapi_env *env);
/* SQLite only: the operator procedure after restoring an old database (serve refuses,
 * store recover, counters above every value handed out). Stops the daemon. */
void pl_eimapi_store_recover(struct pl_eimapi_env *env);

#endif
