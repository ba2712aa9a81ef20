/* provline-eim: the eIM daemon and its command line (ARCHITECTURE.md §3, §7).
 *   serve     the northbound HTTP+JSON API over the configured store (docs/eim-api.md)
 *   token     operator tokens (only their hashes are stored)
 *   store     counter recovery after a database restore (docs/decisions/0011)
 *   ctl       a client of the API (devices, operations, bootstrap data)
 * main() owns the process-wide state: arguments, environment, signals, stdout/stderr and
 * the exit status. Logs: one line per event on stderr. */
#define _POSIX_C_SOURCE 200809L
#include "provline/eim/api_http.h"
#include "provline/protocol/b64.h"
#include "provline/eim/config.h"
#include "provline/eim/esipa_server.h"
#include "provline/eim/http_client.h"
#include "provline/eim/store.h"
#include "provline/protocol/secret.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE   2
#define CTL_MAX_RESP (32u << 20)
#define CTL_TIMEOUT  30000
#define FILE_MAX     (64u << 20)

static bool g_verbose;

static void log_line(void *user, int level, const char *line)
{
    static const char *const names[8] = {"emerg", "alert",  "crit", "error",
                                         "warn",  "notice", "info", "debug"};
    char ts[32] = "";
    struct timespec now;
    struct tm tm;
    (void)user;
    if (level > 6 && !g_verbose)
        return;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0 && gmtime_r(&now.tv_sec, &tm) != NULL)
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "ts=%s level=%s component=eim %s\n", ts,
            names[level >= 0 && level < 8 ? level : 7], line);
}

static void logx(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logx(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(NULL, level, line);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: provline-eim <command> [options]\n"
            "\n"
            "  serve --config FILE [--check-config] [--new-guard] [--verbose]\n"
            "      Serve the northbound API, and ESipa (CoAP/DTLS) when FILE has an \"esipa\"\n"
            "      section. --check-config validates FILE and exits.\n"
            "      --new-guard: this node joins a database in use (creates its counter guard).\n"
            "  token add (--db DB | --config FILE) --operator NAME [--role ROLE]\n"
            "      Create the operator if needed (role reader|station|operator|admin, default\n"
            "      operator) and print a new bearer token once.\n"
            "  token revoke (--db DB | --config FILE) --id TOKEN_ID\n"
            "  store recover --config FILE [--guard OTHER_NODE_GUARD]...\n"
            "      After restoring the database: move every counter past all values the\n"
            "      guard files may have let out (stop every eIM process first).\n"
            "  ctl --url http://HOST:PORT [--token T] COMMAND   (token also from PL_EIM_TOKEN)\n"
            "      devices add --eid EID [--euicc-cert FILE] [--eum-cert FILE] [--eim-id ID]\n"
            "                  [--psk-identity ID --psk-key HEX]\n"
            "      devices list [--after EID] [--limit N]\n"
            "      devices show EID | devices delete EID | devices import BATCH.json\n"
            "      ops queue EID KIND [--params JSON] | ops show ID | ops list EID\n"
            "      bootstrap [--eim-id ID]\n"
            "\n"
            "DB: an SQLite file, or postgres:CONNINFO (libpq connection string).\n");
}

/* ---- options ---- */

struct opt {
    const char *name;
    bool flag;
    bool multi;
    const char *value;
    const char *values[8];
    size_t n;
    bool set;
};

/* Options first; returns the index of the first positional argument or -1. */
static int parse_opts(int argc, char **argv, int start, struct opt *opts, size_t n,
                      const char **pos, size_t pos_cap, size_t *npos)
{
    *npos = 0;
    for (int i = start; i < argc; i++) {
        struct opt *o = NULL;
        if (strncmp(argv[i], "--", 2) != 0) {
            if (*npos == pos_cap) {
                fprintf(stderr, "provline-eim: unexpected argument %s\n", argv[i]);
                return -1;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        for (size_t k = 0; k < n && o == NULL; k++) {
            if (strcmp(argv[i] + 2, opts[k].name) == 0)
                o = &opts[k];
        }
        if (o == NULL) {
            fprintf(stderr, "provline-eim: unknown option %s\n", argv[i]);
            return -1;
        }
        if (o->set && !o->multi) {
            fprintf(stderr, "provline-eim: %s given twice\n", argv[i]);
            return -1;
        }
        o->set = true;
        if (o->flag)
            continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "provline-eim: %s needs a value\n", argv[i]);
            return -1;
        }
        o->value = argv[++i];
        if (o->multi) {
            if (o->n == 8) {
                fprintf(stderr, "provline-eim: too many %s\n", argv[i - 1]);
                return -1;
            }
            o->values[o->n++] = o->value;
        }
    }
    return 0;
}

/* Never NULL: an unknown name (a programming error) gives an option that is never set. */
static struct opt *find(struct opt *opts, size_t n, const char *name)
{
    static struct opt none;
    for (size_t k = 0; k < n; k++) {
        if (strcmp(opts[k].name, name) == 0)
            return &opts[k];
    }
    memset(&none, 0, sizeof(none));
    return &none;
}

/* ---- serve ---- */

static int write_port_file(const char *path, uint16_t port)
{
    char tmp[4200];
    FILE *f = NULL;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%u\n", (unsigned)port);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return -1;
    return 0;
}

/* ---- the ESipa service ("esipa" section; docs/eim-engine.md §8) ---- */

struct esipa_run {
    struct pl_eim_esipa_service *svc;
    atomic_int stop;
    int rc;
};

static void *esipa_thread(void *arg)
{
    struct esipa_run *r = arg;
    r->rc = pl_eim_esipa_service_run(r->svc, &r->stop);
    if (r->rc != PL_OK) {
        logx(3, "event=esipa.failed error=\"%s\"", pl_strerror(r->rc));
        (void)kill(getpid(), SIGTERM); /* serve ends: the endpoint is gone */
    }
    return NULL;
}

/* Starts the service when the configuration has an "esipa" section (its own store handle:
 * the engine's thread alone uses it). *svc stays NULL without one. check_only: validate the
 * section (serve --check-config), open and start nothing. */
static int esipa_open(const struct pl_eim_config *cfg, bool guard_create, bool check_only,
                      struct pl_eim_store **store, struct pl_eim_esipa_service **svc)
{
    const json_t *sec = json_object_get(pl_eim_config_json(cfg), "esipa");
    const json_t *pf = json_object_get(sec, "port_file");
    const struct pl_eim_identity *id = pl_eim_config_identity(cfg, NULL);
    struct pl_eim_esipa_service_options o;
    char err[512], dir[4096], path[4200];
    const char *slash = strrchr(cfg->path, '/');
    const uint8_t *roots[PL_EIM_CONFIG_MAX_ROOTS];
    int rc;

    *svc = NULL;
    if (sec == NULL)
        return PL_OK;
    if (pf != NULL && (!json_is_string(pf) || json_string_length(pf) == 0)) {
        logx(3, "event=config_invalid error=\"esipa.port_file: must be a non-empty string\"");
        return PL_ERR_CONFIG;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - cfg->path) : 1,
             slash ? cfg->path : ".");
    rc = check_only ? PL_OK : pl_eim_config_open_store(cfg, false, guard_create, store);
    if (rc != PL_OK) {
        logx(3, "event=esipa.store_open_failed error=\"%s\"", pl_strerror(rc));
        return rc;
    }
    for (size_t i = 0; i < cfg->n_roots; i++)
        roots[i] = cfg->roots[i];
    memset(&o, 0, sizeof(o));
    o.section = sec;
    o.base_dir = dir;
    o.roots = roots;
    o.root_len = cfg->root_len;
    o.n_roots = cfg->n_roots;
    o.default_eim_id = id != NULL ? id->eim_id : NULL;
    o.store = check_only ? NULL : *store;
    o.log.log = log_line;
    o.check_only = check_only;
    rc = pl_eim_esipa_service_start(&o, svc, err, sizeof(err));
    if (rc != PL_OK && check_only) {
        fprintf(stderr, "provline-eim: %s\n", err);
        return rc;
    }
    if (check_only)
        return PL_OK;
    if (rc != PL_OK) {
        logx(3, "event=esipa.start_failed error=\"%s\" detail=\"%s\"", pl_strerror(rc), err);
        return rc;
    }
    if (pf != NULL) {
        const char *p = json_string_value(pf);
        if (p[0] == '/')
            snprintf(path, sizeof(path), "%s", p);
        else
            snprintf(path, sizeof(path), "%s/%s", dir, p);
        if (write_port_file(path, pl_eim_esipa_service_port(*svc)) != 0) {
            logx(3, "event=port_file_failed path=%s", path);
            return PL_ERR_IO;
        }
    }
    logx(6, "event=esipa.listening port=%u", (unsigned)pl_eim_esipa_service_port(*svc));
    return PL_OK;
}

static int cmd_serve(int argc, char **argv)
{
    struct opt opts[] = {{"config", false, false, NULL, {0}, 0, false},
                         {"check-config", true, false, NULL, {0}, 0, false},
                         {"new-guard", true, false, NULL, {0}, 0, false},
                         {"verbose", true, false, NULL, {0}, 0, false}};
    const size_t no = sizeof(opts) / sizeof(opts[0]);
    const char *pos[1];
    size_t npos = 0;
    struct pl_eim_config *cfg = NULL;
    struct pl_eim_store *store = NULL;
    struct pl_eim_api *api = NULL;
    struct pl_eim_api_options ao;
    struct pl_eim_store *esipa_store = NULL;
    struct esipa_run er;
    pthread_t esipa_tid;
    bool esipa_running = false;
    char err[512];
    sigset_t set;
    int sig = 0, rc, status = 1;

    memset(&er, 0, sizeof(er));
    atomic_init(&er.stop, 0);
    if (parse_opts(argc, argv, 2, opts, no, pos, 0, &npos) != 0 || !opts[0].set) {
        usage(stderr);
        return EXIT_USAGE;
    }
    g_verbose = opts[3].set;
    rc = pl_eim_config_load(opts[0].value, &cfg, err, sizeof(err));
    if (rc != PL_OK) {
        fprintf(stderr, "provline-eim: %s\n", err);
        return 1;
    }
    if (opts[1].set) {
        struct pl_eim_store *none = NULL;
        struct pl_eim_esipa_service *nosvc = NULL;
        rc = esipa_open(cfg, false, true, &none, &nosvc);
        pl_eim_config_free(cfg);
        if (rc != PL_OK)
            return 1;
        printf("configuration OK\n");
        return 0;
    }
    /* SIGTERM/SIGINT are taken with sigwait: blocked before any thread starts. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = pl_eim_config_open_store(cfg, false, opts[2].set, &store);
    if (rc == PL_ERR_REPLAY) {
        logx(3, "event=store.refused reason=\"the database is older than the counter guard (a "
                "restored backup?): run provline-eim store recover\"");
        goto out;
    }
    if (rc != PL_OK) {
        logx(3, "event=store.open_failed backend=%s error=\"%s\"", cfg->backend, pl_strerror(rc));
        goto out;
    }
    memset(&ao, 0, sizeof(ao));
    ao.cfg = cfg;
    ao.store = store;
    ao.log = log_line;
    rc = pl_eim_api_start(&ao, &api);
    if (rc != PL_OK) {
        logx(3, "event=listen_failed address=%s port=%u error=\"%s\"", cfg->listen_host,
             (unsigned)cfg->listen_port, pl_strerror(rc));
        goto out;
    }
    if (esipa_open(cfg, false, false, &esipa_store, &er.svc) != PL_OK)
        goto out;
    if (er.svc != NULL) {
        if (pthread_create(&esipa_tid, NULL, esipa_thread, &er) != 0) {
            logx(3, "event=esipa.thread_failed");
            goto out;
        }
        esipa_running = true;
    }
    if (cfg->port_file != NULL && write_port_file(cfg->port_file, pl_eim_api_port(api)) != 0) {
        logx(3, "event=port_file_failed path=%s", cfg->port_file);
        goto out;
    }
    logx(6, "event=listening address=%s port=%u backend=%s", cfg->listen_host,
         (unsigned)pl_eim_api_port(api), pl_eim_store_backend(store));
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP)
            continue; /* no reload yet: the configuration is read once */
        break;
    }
    logx(6, "event=stopping signal=%d", sig);
    status = 0;
out:
    if (esipa_running) {
        atomic_store(&er.stop, 1);
        (void)pthread_join(esipa_tid, NULL);
        if (er.rc != PL_OK)
            status = 1;
    }
    pl_eim_esipa_service_stop(er.svc);
    pl_eim_store_close(esipa_store);
    pl_eim_api_stop(api);
    pl_eim_store_close(store);
    pl_eim_config_free(cfg);
    return status;
}

/* ---- token and store ---- */

static int open_db(struct opt *db, struct opt *config, bool for_recovery,
                   struct pl_eim_config **cfg_out, struct pl_eim_store **out)
{
    struct pl_eim_store_options o;
    char err[512];
    int rc;

    *cfg_out = NULL;
    if (db->set == config->set) {
        fprintf(stderr, "provline-eim: give --db or --config\n");
        return PL_ERR_INVAL;
    }
    if (config->set) {
        rc = pl_eim_config_load(config->value, cfg_out, err, sizeof(err));
        if (rc != PL_OK) {
            fprintf(stderr, "provline-eim: %s\n", err);
            return rc;
        }
        return pl_eim_config_open_store(*cfg_out, for_recovery, false, out);
    }
    /* No counter is reserved through this handle: no guard needed. */
    memset(&o, 0, sizeof(o));
    o.allow_unguarded = true;
    if (strncmp(db->value, "postgres:", 9) == 0)
        return pl_eim_store_open_pg(db->value + 9, &o, out);
    if (strncmp(db->value, "postgresql://", 13) == 0)
        return pl_eim_store_open_pg(db->value, &o, out);
    return pl_eim_store_open_sqlite(db->value, &o, out);
}

static int cmd_token(int argc, char **argv)
{
    struct opt opts[] = {{"db", false, false, NULL, {0}, 0, false},
                         {"config", false, false, NULL, {0}, 0, false},
                         {"operator", false, false, NULL, {0}, 0, false},
                         {"role", false, false, NULL, {0}, 0, false},
                         {"id", false, false, NULL, {0}, 0, false}};
    const size_t no = sizeof(opts) / sizeof(opts[0]);
    const char *pos[1];
    size_t npos = 0;
    struct pl_eim_config *cfg = NULL;
    struct pl_eim_store *s = NULL;
    char token[PL_EIM_TOKEN_MAX];
    enum pl_eim_role role = PL_EIM_ROLE_OPERATOR;
    int rc, status = 1;
    const char *sub = argc > 2 ? argv[2] : "";

    if (parse_opts(argc, argv, 3, opts, no, pos, 0, &npos) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "add") == 0) {
        if (!opts[2].set || opts[4].set
            || (opts[3].set && pl_eim_role_from_name(opts[3].value, &role) != PL_OK)) {
            fprintf(stderr, "provline-eim: token add needs --operator NAME and a valid --role\n");
            return EXIT_USAGE;
        }
    } else if (strcmp(sub, "revoke") == 0) {
        if (!opts[4].set || opts[2].set || opts[3].set) {
            fprintf(stderr, "provline-eim: token revoke needs --id TOKEN_ID\n");
            return EXIT_USAGE;
        }
    } else {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((rc = open_db(&opts[0], &opts[1], false, &cfg, &s)) != PL_OK) {
        fprintf(stderr, "provline-eim: cannot open the store: %s\n", pl_strerror(rc));
        goto out;
    }
    if (strcmp(sub, "revoke") == 0) {
        rc = pl_eim_store_token_revoke(s, "cli", opts[4].value);
        if (rc != PL_OK) {
            fprintf(stderr, "provline-eim: revoke: %s\n", pl_strerror(rc));
            goto out;
        }
        printf("revoked\n");
        status = 0;
        goto out;
    }
    rc = pl_eim_store_operator_put(s, "cli", opts[2].value, role);
    if (rc == PL_OK)
        rc = pl_eim_store_token_create(s, "cli", opts[2].value, token, sizeof(token));
    if (rc != PL_OK) {
        fprintf(stderr, "provline-eim: token add: %s\n", pl_strerror(rc));
        goto out;
    }
    printf("%s\n", token);
    fflush(stdout);
    pl_memzero(token, sizeof(token));
    fprintf(stderr, "provline-eim: token for %s (role %s) printed once; it cannot be shown again\n",
            opts[2].value, pl_eim_role_name(role));
    status = 0;
out:
    pl_eim_store_close(s);
    pl_eim_config_free(cfg);
    return status;
}

static int cmd_store(int argc, char **argv)
{
    struct opt opts[] = {{"config", false, false, NULL, {0}, 0, false},
                         {"guard", false, true, NULL, {0}, 0, false}};
    struct opt nodb = {"db", false, false, NULL, {0}, 0, false};
    const char *pos[1];
    size_t npos = 0;
    struct pl_eim_config *cfg = NULL;
    struct pl_eim_store *s = NULL;
    uint64_t bumped = 0;
    int rc, status = 1;

    if (argc < 3 || strcmp(argv[2], "recover") != 0
        || parse_opts(argc, argv, 3, opts, 2, pos, 0, &npos) != 0 || !opts[0].set) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((rc = open_db(&nodb, &opts[0], true, &cfg, &s)) != PL_OK) {
        fprintf(stderr, "provline-eim: cannot open the store: %s\n", pl_strerror(rc));
        goto out;
    }
    rc = pl_eim_store_counter_recover(s, "cli", opts[1].values, opts[1].n, &bumped);
    if (rc != PL_OK) {
        fprintf(stderr, "provline-eim: recover: %s\n", pl_strerror(rc));
        goto out;
    }
    printf("recovered: %llu device counters moved past every guarded value\n",
           (unsigned long long)bumped);
    status = 0;
out:
    pl_eim_store_close(s);
    pl_eim_config_free(cfg);
    return status;
}

/* ---- ctl ---- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;
    if (f == NULL)
        return NULL;
    buf = malloc(FILE_MAX + 1);
    if (buf != NULL) {
        n = fread(buf, 1, FILE_MAX + 1, f);
        if (ferror(f) || n > FILE_MAX) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            *len = n;
        }
    }
    fclose(f);
    return buf;
}

/* Adds "key": base64(file) to obj. */
static int add_file_b64(json_t *obj, const char *key, const char *path)
{
    size_t len = 0;
    char *data = read_all(path, &len), *b = NULL;
    int rc = -1;
    if (data == NULL) {
        fprintf(stderr, "provline-eim: cannot read %s\n", path);
        return -1;
    }
    b = malloc(pl_b64_len(len) + 1);
    if (b != NULL
        && pl_b64_encode((const uint8_t *)data, len, b, pl_b64_len(len) + 1) == PL_OK)
        rc = json_object_set_new(obj, key, json_string(b));
    free(b);
    free(data);
    return rc;
}

static int ctl_call(const char *url, const char *token, const char *method, const char *path,
                    const char *body)
{
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.token = token;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    rc = pl_eim_http_do(url, &req, CTL_MAX_RESP, CTL_TIMEOUT, &resp);
    if (rc != PL_OK) {
        fprintf(stderr, "provline-eim: %s %s: %s\n", method, path, pl_strerror(rc));
        return 1;
    }
    fputs(resp.body, stdout);
    if (resp.body_len == 0 || resp.body[resp.body_len - 1] != '\n')
        fputc('\n', stdout);
    rc = resp.status >= 200 && resp.status < 300 ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "provline-eim: HTTP %d\n", resp.status);
    pl_eim_http_resp_clear(&resp);
    return rc;
}

/* A path segment must not smuggle "/", "?", spaces or control characters. */
static bool segment_ok(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 64)
        return false;
    for (; *s; s++) {
        bool ok = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z');
        if (!ok)
            return false;
    }
    return true;
}

static int cmd_ctl(int argc, char **argv)
{
    struct opt opts[] = {
        {"url", false, false, NULL, {0}, 0, false},
        {"token", false, false, NULL, {0}, 0, false},
        {"eid", false, false, NULL, {0}, 0, false},
        {"euicc-cert", false, false, NULL, {0}, 0, false},
        {"eum-cert", false, false, NULL, {0}, 0, false},
        {"eim-id", false, false, NULL, {0}, 0, false},
        {"psk-identity", false, false, NULL, {0}, 0, false},
        {"psk-key", false, false, NULL, {0}, 0, false},
        {"after", false, false, NULL, {0}, 0, false},
        {"limit", false, false, NULL, {0}, 0, false},
        {"params", false, false, NULL, {0}, 0, false},
    };
    const size_t no = sizeof(opts) / sizeof(opts[0]);
    const char *pos[4];
    size_t npos = 0;
    const char *url = NULL, *token = NULL;
    char path[512];
    int status = EXIT_USAGE;

    if (parse_opts(argc, argv, 2, opts, no, pos, 4, &npos) != 0 || npos < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    url = find(opts, no, "url")->value;
    token = find(opts, no, "token")->set ? find(opts, no, "token")->value : getenv("PL_EIM_TOKEN");
    if (url == NULL) {
        fprintf(stderr, "provline-eim: ctl needs --url\n");
        return EXIT_USAGE;
    }
    if (strcmp(pos[0], "devices") == 0 && npos >= 2) {
        if (strcmp(pos[1], "add") == 0 && npos == 2 && find(opts, no, "eid")->set) {
            json_t *o = json_pack("{s:s}", "eid", find(opts, no, "eid")->value);
            char *text = NULL;
            struct opt *ec = find(opts, no, "euicc-cert"), *um = find(opts, no, "eum-cert");
            struct opt *ei = find(opts, no, "eim-id"), *pi = find(opts, no, "psk-identity");
            struct opt *pk = find(opts, no, "psk-key");
            if (o == NULL)
                return 1;
            if ((ec->set && add_file_b64(o, "euicc_certificate", ec->value) != 0)
                || (um->set && add_file_b64(o, "eum_certificate", um->value) != 0)) {
                json_decref(o);
                return 1;
            }
            if (ei->set)
                json_object_set_new(o, "eim_id", json_string(ei->value));
            if (pi->set)
                json_object_set_new(o, "psk_identity", json_string(pi->value));
            if (pk->set)
                json_object_set_new(o, "psk_key", json_string(pk->value));
            text = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            if (text == NULL)
                return 1;
            status = ctl_call(url, token, "POST", "/v1/devices", text);
            free(text);
        } else if (strcmp(pos[1], "list") == 0 && npos == 2) {
            struct opt *af = find(opts, no, "after"), *li = find(opts, no, "limit");
            if ((af->set && !segment_ok(af->value)) || (li->set && !segment_ok(li->value)))
                return EXIT_USAGE;
            snprintf(path, sizeof(path), "/v1/devices?limit=%s%s%s", li->set ? li->value : "100",
                     af->set ? "&after=" : "", af->set ? af->value : "");
            status = ctl_call(url, token, "GET", path, NULL);
        } else if ((strcmp(pos[1], "show") == 0 || strcmp(pos[1], "delete") == 0) && npos == 3
                   && segment_ok(pos[2])) {
            snprintf(path, sizeof(path), "/v1/devices/%s", pos[2]);
            status =
                ctl_call(url, token, strcmp(pos[1], "show") == 0 ? "GET" : "DELETE", path, NULL);
        } else if (strcmp(pos[1], "import") == 0 && npos == 3) {
            size_t len = 0;
            char *text = read_all(pos[2], &len);
            if (text == NULL) {
                fprintf(stderr, "provline-eim: cannot read %s\n", pos[2]);
                return 1;
            }
            status = ctl_call(url, token, "POST", "/v1/devices/bulk", text);
            free(text);
        }
    } else if (strcmp(pos[0], "ops") == 0 && npos >= 3) {
        if (strcmp(pos[1], "queue") == 0 && npos == 4 && segment_ok(pos[2])) {
            struct opt *pa = find(opts, no, "params");
            json_t *params = NULL, *o = NULL;
            json_error_t jerr;
            char *text = NULL;
            if (pa->set) {
                params = json_loads(pa->value, JSON_REJECT_DUPLICATES, &jerr);
                if (params == NULL) {
                    fprintf(stderr, "provline-eim: --params: %s\n", jerr.text);
                    return EXIT_USAGE;
                }
            }
            o = json_pack("{s:s}", "kind", pos[3]);
            if (o != NULL && params != NULL)
                json_object_set_new(o, "params", params);
            else
                json_decref(params);
            text = o ? json_dumps(o, JSON_COMPACT) : NULL;
            json_decref(o);
            if (text == NULL)
                return 1;
            snprintf(path, sizeof(path), "/v1/devices/%s/operations", pos[2]);
            status = ctl_call(url, token, "POST", path, text);
            free(text);
        } else if (strcmp(pos[1], "show") == 0 && npos == 3 && segment_ok(pos[2])) {
            snprintf(path, sizeof(path), "/v1/operations/%s", pos[2]);
            status = ctl_call(url, token, "GET", path, NULL);
        } else if (strcmp(pos[1], "list") == 0 && npos == 3 && segment_ok(pos[2])) {
            snprintf(path, sizeof(path), "/v1/devices/%s/operations", pos[2]);
            status = ctl_call(url, token, "GET", path, NULL);
        }
    } else if (strcmp(pos[0], "bootstrap") == 0 && npos == 1) {
        struct opt *ei = find(opts, no, "eim-id");
        char *esc = NULL;
        if (ei->set) {
            /* eimId may hold any character: percent-encode it for the query */
            size_t n = strlen(ei->value);
            esc = malloc(3 * n + 1);
            if (esc == NULL)
                return 1;
            for (size_t i = 0, o = 0; i <= n; i++) {
                unsigned char c = (unsigned char)ei->value[i];
                bool plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                             || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
                if (c == 0) {
                    esc[o] = '\0';
                } else if (plain) {
                    esc[o++] = (char)c;
                } else {
                    snprintf(esc + o, 4, "%%%02X", c);
                    o += 3;
                }
            }
        }
        snprintf(path, sizeof(path), "/v1/bootstrap%s%.400s", esc ? "?eimId=" : "", esc ? esc : "");
        free(esc);
        status = ctl_call(url, token, "GET", path, NULL);
    }
    if (status == EXIT_USAGE)
        usage(stderr);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "token") == 0)
        return cmd_token(argc, argv);
    if (strcmp(argv[1], "store") == 0)
        return cmd_store(argc, argv);
    if (strcmp(argv[1], "ctl") == 0)
        return cmd_ctl(argc, argv);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return EXIT_USAGE;
}
