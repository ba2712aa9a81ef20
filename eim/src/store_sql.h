/* Internal: the SQL core shared by the SQLite and PostgreSQL store backends.
 * store_sql.c implements struct pl_eim_store_ops once, over a small driver (this file):
 * parameterised statements with typed values ($1..$n placeholders in both dialects;
 * SQLite binds them by name), materialised results, and the few dialect strings that
 * differ (write-transaction start, row locks, DDL). Never included outside eim/src. */
#ifndef PROVLINE_EIM_STORE_SQL_H
#define PROVLINE_EIM_STORE_SQL_H

#include "provline/eim/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pl_sqlv_type {
    PL_SQLV_NULL = 0,
    PL_SQLV_INT = 1,  /* 64-bit integer */
    PL_SQLV_TEXT = 2, /* UTF-8, p/len (results: NUL-terminated copy) */
    PL_SQLV_BLOB = 3,
};

struct pl_sqlv {
    enum pl_sqlv_type t;
    int64_t i; /* the value; for PL_SQLV_NULL parameters, the type the NULL stands for */
    const void *p;
    size_t len;
};

/* A materialised result: nrows x ncols cells, each owning its bytes. */
struct pl_sql_res {
    size_t nrows;
    size_t ncols;
    struct pl_sqlv *cells;
};
void pl_sql_res_free(struct pl_sql_res *r);
const struct pl_sqlv *pl_sql_cell(const struct pl_sql_res *r, size_t row, size_t col);

struct pl_sql_driver {
    const char *name;
    const char *begin_write;   /* "BEGIN IMMEDIATE" (SQLite) / "BEGIN" (PostgreSQL) */
    const char *for_update;    /* "" / " FOR UPDATE" */
    const char *lock_devices;  /* NULL / "LOCK TABLE devices IN EXCLUSIVE MODE" */
    const char *schema_lock;   /* NULL / advisory lock statement, run in the DDL transaction */
    const char *const *schema; /* DDL, NULL-terminated, each idempotent (IF NOT EXISTS) */
    /* Runs one statement. res (may be NULL) receives the rows; changes (may be NULL) the
     * rows inserted/updated/deleted. Errors: PL_ERR_EXISTS (unique violation), PL_ERR_DB,
     * PL_ERR_NOMEM. */
    int (*exec)(void *conn, const char *sql, const struct pl_sqlv *params, size_t n,
                struct pl_sql_res *res, int64_t *changes);
    const char *(*errmsg)(void *conn);
    void (*close)(void *conn);
};

struct pl_sql_store {
    const struct pl_sql_driver *drv;
    void *conn;
    pl_eim_now_fn now;
    void *now_user;
};

/* Creates the schema and the store identity (idempotent) and returns the SQL store;
 * takes conn (closed on failure). */
PL_MUST_CHECK int pl_sql_store_new(const struct pl_sql_driver *drv, void *conn,
                                   const struct pl_eim_store_options *opt,
                                   struct pl_sql_store **out);

/* Options with the defaults filled in (store.c). */
void pl_eim_store_options_defaults(const struct pl_eim_store_options *in,
                                   struct pl_eim_store_options *out);

extern const struct pl_eim_store_ops pl_eim_sql_ops;

#endif
