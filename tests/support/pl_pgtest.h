/* A throwaway PostgreSQL server for tests (reference/DEPENDENCIES.md §9): initdb into a
 * temporary directory (owned by the postgres user when we run as root), pg_ctl start with a
 * unix socket in that directory and no TCP listener, stop and remove at the end. Missing
 * server binaries are an error, never a skipped test. Never linked into a product. */
#ifndef PL_PGTEST_H
#define PL_PGTEST_H

#include <stdbool.h>
#include <stddef.h>

struct pl_pgtest {
    char dir[256]; /* data, socket and logs live here */
    int port;      /* names the socket file; there is no TCP listener */
    bool running;
};

/* Starts a server. On failure returns -1 with a reason (and the log tail) in err. The
 * binaries come from $PL_PG_BINDIR or /usr/lib/postgresql/15/bin. */
int pl_pgtest_start(struct pl_pgtest *pg, char *err, size_t cap);
/* Stops the server (immediate) and removes its directory. */
void pl_pgtest_stop(struct pl_pgtest *pg);

/* Makes the server known to the test processes forked later (environment variables), or
 * the reason it could not start. */
void pl_pgtest_export(const struct pl_pgtest *pg, const char *error);
/* In a test process: 0 and *pg filled, or -1 with the exported reason in err. */
int pl_pgtest_import(struct pl_pgtest *pg, char *err, size_t cap);

/* libpq connection string for database db. */
void pl_pgtest_conninfo(const struct pl_pgtest *pg, const char *db, char *out, size_t cap);
/* Runs one statement on the "postgres" database; 0 or -1 with the message in err. */
int pl_pgtest_sql(const struct pl_pgtest *pg, const char *sql, char *err, size_t cap);

#endif
