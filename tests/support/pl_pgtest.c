/* Throwaway PostgreSQL server for tests: see pl_pgtest.h (DEPENDENCIES.md §9). */
#define _POSIX_C_SOURCE 200809L
#include "pl_pgtest.h"

#include "pl_test.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BINDIR "/usr/lib/postgresql/15/bin"

static const char *bindir(void)
{
    const char *d = getenv("PL_PG_BINDIR");
    return (d != NULL && d[0] != '\0') ? d : DEFAULT_BINDIR;
}

/* Appends the last lines of a log file to err. */
static void log_tail(const char *path, char *err, size_t cap)
{
    size_t len = 0, used = strlen(err);
    uint8_t *buf = pl_test_read_file(path, &len);
    if (buf == NULL || used + 2 >= cap) {
        free(buf);
        return;
    }
    {
        size_t keep = cap - used - 2;
        const char *start = (const char *)buf + (len > keep ? len - keep : 0);
        snprintf(err + used, cap - used, "\n%s", start);
    }
    free(buf);
}

static int run_as_postgres(const char *cmd)
{
    char full[2048];
    int n;
    if (geteuid() == 0)
        n = snprintf(full, sizeof(full), "runuser -u postgres -- %s", cmd);
    else
        n = snprintf(full, sizeof(full), "%s", cmd);
    if (n < 0 || (size_t)n >= sizeof(full))
        return -1;
    return pl_test_run(full, NULL, 0);
}

int pl_pgtest_start(struct pl_pgtest *pg, char *err, size_t cap)
{
    char path[512], cmd[1536];
    const char *bin = bindir();

    memset(pg, 0, sizeof(*pg));
    err[0] = '\0';
    snprintf(path, sizeof(path), "%s/initdb", bin);
    if (access(path, X_OK) != 0) {
        snprintf(err, cap,
                 "PostgreSQL server binaries not found in %s (install postgresql-15, or set "
                 "PL_PG_BINDIR)",
                 bin);
        return -1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "/tmp/pl-pgtest-XXXXXX");
    if (mkdtemp(pg->dir) == NULL) {
        snprintf(err, cap, "mkdtemp failed");
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
            snprintf(err, cap, "running as root but there is no usable postgres user");
            pl_test_rmtree(pg->dir);
            return -1;
        }
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    pg->port = 20000 + rand() % 30000; /* only names the socket: no TCP listener at all */

    snprintf(cmd, sizeof(cmd),
             "%s/initdb -D %s/data -A trust -U postgres -E UTF8 --no-sync >%s/initdb.log 2>&1", bin,
             pg->dir, pg->dir);
    if (run_as_postgres(cmd) != 0) {
        snprintf(err, cap, "initdb failed:");
        snprintf(path, sizeof(path), "%s/initdb.log", pg->dir);
        log_tail(path, err, cap);
        pl_test_rmtree(pg->dir);
        return -1;
    }
    snprintf(cmd, sizeof(cmd),
             "%s/pg_ctl -D %s/data -l %s/server.log -o \"-k %s -p %d -c listen_addresses=\" "
             "-w -t 60 start >%s/pg_ctl.log 2>&1",
             bin, pg->dir, pg->dir, pg->dir, pg->port, pg->dir);
    if (run_as_postgres(cmd) != 0) {
        snprintf(err, cap, "pg_ctl start failed:");
        snprintf(path, sizeof(path), "%s/server.log", pg->dir);
        log_tail(path, err, cap);
        pl_test_rmtree(pg->dir);
        return -1;
    }
    pg->running = true;
    return 0;
}

void pl_pgtest_stop(struct pl_pgtest *pg)
{
    char cmd[1024];
    if (pg->dir[0] == '\0')
        return;
    if (pg->running) {
        snprintf(cmd, sizeof(cmd), "%s/pg_ctl -D %s/data -m immediate -w stop >/dev/null 2>&1",
                 bindir(), pg->dir);
        (void)run_as_postgres(cmd);
        pg->running = false;
    }
    pl_test_rmtree(pg->dir);
    pg->dir[0] = '\0';
}

void pl_pgtest_export(const struct pl_pgtest *pg, const char *error)
{
    char port[16];
    if (error != NULL) {
        setenv("PL_PGTEST_ERROR", error, 1);
        return;
    }
    unsetenv("PL_PGTEST_ERROR");
    snprintf(port, sizeof(port), "%d", pg->port);
    setenv("PL_PGTEST_DIR", pg->dir, 1);
    setenv("PL_PGTEST_PORT", port, 1);
}

int pl_pgtest_import(struct pl_pgtest *pg, char *err, size_t cap)
{
    const char *e = getenv("PL_PGTEST_ERROR");
    const char *dir = getenv("PL_PGTEST_DIR");
    const char *port = getenv("PL_PGTEST_PORT");
    memset(pg, 0, sizeof(*pg));
    if (e != NULL) {
        snprintf(err, cap, "%s", e);
        return -1;
    }
    if (dir == NULL || port == NULL) {
        snprintf(err, cap, "no test PostgreSQL server was started");
        return -1;
    }
    snprintf(pg->dir, sizeof(pg->dir), "%s", dir);
    pg->port = atoi(port);
    pg->running = true;
    return 0;
}

void pl_pgtest_conninfo(const struct pl_pgtest *pg, const char *db, char *out, size_t cap)
{
    snprintf(out, cap, "host=%s port=%d user=postgres dbname=%s connect_timeout=10", pg->dir,
             pg->port, db);
}

int pl_pgtest_sql(const struct pl_pgtest *pg, const char *sql, char *err, size_t cap)
{
    char ci[512];
    PGconn *c = NULL;
    PGresult *r = NULL;
    int rc = -1;

    pl_pgtest_conninfo(pg, "postgres", ci, sizeof(ci));
    c = PQconnectdb(ci);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, cap, "connect: %s", c ? PQerrorMessage(c) : "out of memory");
        goto out;
    }
    r = PQexec(c, sql);
    if (r == NULL
        || (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)) {
        snprintf(err, cap, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        goto out;
    }
    rc = 0;
out:
    PQclear(r);
    PQfinish(c);
    return rc;
}
