/* Reference Key Maker (SM-DPf): the daemon's settings - an INI file (libinih) and flags of
 * the same names, validated one problem per setting for `serve --check-config`.
 * ARCHITECTURE.md §7 (--config FILE, --check-config); STYLE.md §6 (ntpd's -n: validate and
 * exit); libinih r55 (ini_parse_stream: section/name/value callbacks); the settings and
 * their rules: docs/keymaker.conf.5.md. Nothing here creates or changes a file. */
#define _POSIX_C_SOURCE 200809L
#include "keymaker_internal.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTION   "keymaker"
#define WHERE_MAX 600u
#define ID_MAX    63u

struct setting_def {
    const char *name;
    bool required;
};

/* Indexed by enum pl_km_setting. */
static const struct setting_def DEFS[PL_KM_SETTINGS] = {
    {"pki", true},           {"db", true},     {"profiles", true}, {"bind", true},
    {"curve_secret", true},  {"allow", true},  {"lease_seconds", false},
    {"rsk", false},          {"verbose", false}, {"id", false},  {"metrics", false},
};

const char *pl_km_setting_name(enum pl_km_setting k)
{
    return (unsigned)k < PL_KM_SETTINGS ? DEFS[k].name : NULL;
}

void pl_km_settings_init(struct pl_km_settings *s,
                         void (*problem)(void *user, const char *where, const char *setting,
                                         const char *what),
                         void *user)
{
    memset(s, 0, sizeof(*s));
    s->problem = problem;
    s->problem_user = user;
}

void pl_km_settings_free(struct pl_km_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < PL_KM_SETTINGS; i++) {
        free(s->value[i]);
        free(s->where[i]);
    }
    pl_km_settings_init(s, s->problem, s->problem_user);
}

static void problem(struct pl_km_settings *s, const char *where, const char *setting,
                    const char *fmt, ...) PL_KM_PRINTF(4, 5);

static void problem(struct pl_km_settings *s, const char *where, const char *setting,
                    const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    s->problems++;
    if (s->problem)
        s->problem(s->problem_user, where ? where : "", setting ? setting : "", what);
}

static char *dup_str(const char *v)
{
    size_t n = strlen(v) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, v, n);
    return d;
}

/* The setting a name (INI key or flag without "--") stands for; -1 if none. */
static int lookup(const char *name)
{
    char key[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(key))
        return -1;
    for (size_t i = 0; i <= n; i++)
        key[i] = name[i] == '-' ? '_' : name[i];
    for (int i = 0; i < (int)PL_KM_SETTINGS; i++)
        if (strcmp(key, DEFS[i].name) == 0)
            return i;
    return -1;
}

int pl_km_settings_set(struct pl_km_settings *s, const char *name, const char *value,
                       const char *where)
{
    if (s == NULL || name == NULL || value == NULL)
        return PL_ERR_INVAL;
    int k = lookup(name);
    if (k < 0) {
        problem(s, where, name, "unknown setting");
        return PL_ERR_CONFIG;
    }
    char *v = dup_str(value), *w = dup_str(where ? where : "");
    if (v == NULL || w == NULL) {
        free(v);
        free(w);
        return PL_ERR_NOMEM;
    }
    free(s->value[k]);
    free(s->where[k]);
    s->value[k] = v;
    s->where[k] = w;
    return PL_OK;
}

/* ---------------------------------------------------------------- INI file ---- */

struct ini_ctx {
    struct pl_km_settings *s;
    const char *path;
    FILE *f;
    unsigned line; /* of the line inih handles now */
    bool seen[PL_KM_SETTINGS];
    int rc;
};

/* fgets that counts lines, so each problem names its line. A line longer than inih's buffer
 * would reach it in pieces (the value cut short, the rest a line of its own): it is reported
 * here, read to its end, and handed on as a blank line. */
static char *reader(char *str, int num, void *stream)
{
    struct ini_ctx *c = stream;
    char *r = fgets(str, num, c->f);
    if (r == NULL)
        return NULL;
    c->line++;
    size_t n = strlen(str);
    if (n > 0 && str[n - 1] != '\n' && !feof(c->f) && num >= 2) {
        int ch;
        while ((ch = fgetc(c->f)) != EOF && ch != '\n')
            continue;
        char where[WHERE_MAX];
        snprintf(where, sizeof(where), "%s:%u", c->path, c->line);
        problem(c->s, where, "", "line longer than %d characters", num - 2);
        c->rc = PL_ERR_CONFIG;
        str[0] = '\n';
        str[1] = '\0';
    }
    return r;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *c = user;
    char where[WHERE_MAX];
    snprintf(where, sizeof(where), "%s:%u", c->path, c->line);
    if (strcmp(section, SECTION) != 0) {
        if (section[0] == '\0')
            problem(c->s, where, name, "setting outside the [" SECTION "] section");
        else
            problem(c->s, where, name, "unknown section [%s]", section);
        c->rc = PL_ERR_CONFIG;
        return 1; /* keep going: every problem is reported */
    }
    int k = lookup(name);
    if (k >= 0 && c->seen[k]) {
        problem(c->s, where, name, "given twice");
        c->rc = PL_ERR_CONFIG;
        return 1;
    }
    int rc = pl_km_settings_set(c->s, name, value, where);
    if (rc == PL_ERR_NOMEM)
        return 0;
    if (rc) {
        c->rc = rc;
        return 1;
    }
    c->seen[k] = true;
    return 1;
}

int pl_km_settings_load(struct pl_km_settings *s, const char *path)
{
    struct ini_ctx c;

    if (s == NULL || path == NULL)
        return PL_ERR_INVAL;
    memset(&c, 0, sizeof(c));
    c.s = s;
    c.path = path;
    c.rc = PL_OK;
    c.f = fopen(path, "r");
    if (c.f == NULL) {
        problem(s, path, "", "cannot read the configuration file: %s", strerror(errno));
        return PL_ERR_IO;
    }
    int r = ini_parse_stream(reader, &c, on_pair, &c);
    fclose(c.f);
    if (r < 0)
        return PL_ERR_NOMEM;
    if (r > 0) {
        char where[WHERE_MAX];
        snprintf(where, sizeof(where), "%s:%d", path, r);
        problem(s, where, "", "not a [section] or key = value line");
        return PL_ERR_CONFIG;
    }
    return c.rc;
}

/* -------------------------------------------------------------- validation ---- */

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_seconds(const char *v, uint32_t *out)
{
    uint64_t n = 0;
    if (*v == '\0' || strlen(v) > 10)
        return false;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        n = n * 10u + (uint64_t)(*p - '0');
    }
    if (n < 1u || n > PL_KM_LEASE_SECONDS_MAX)
        return false;
    *out = (uint32_t)n;
    return true;
}

static bool id_ok(const char *v)
{
    size_t n = strlen(v);
    if (n < 1 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20u || (unsigned char)v[i] > 0x7eu)
            return false;
    return true;
}

static bool endpoint_ok(const char *v)
{
    return (strncmp(v, "tcp://", 6) == 0 || strncmp(v, "ipc://", 6) == 0) && strlen(v) > 6
           && strlen(v) < 256;
}

/* The database is created by serve: its directory must take a new file, an existing file
 * must be a writable regular file. */
static const char *db_problem(const char *path)
{
    char dir[4096];
    struct stat st;
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1u;
    if (path[0] == '\0' || n >= sizeof(dir))
        return "not a usable path";
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else if (n == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return "its directory does not exist";
    if (access(dir, W_OK | X_OK) != 0)
        return "its directory is not writable";
    if (stat(path, &st) == 0 && (!S_ISREG(st.st_mode) || access(path, R_OK | W_OK) != 0))
        return "exists but is not a readable and writable file";
    return NULL;
}

/* The PKI loads, and the binding certificate chains to its own CI (else no eUICC would
 * accept a package, and pl_km_open refuses to start). */
static const char *pki_problem(const char *dir, time_t now, char *buf, size_t cap)
{
    struct pl_pki *p = NULL;
    int rc = pl_pki_load(dir, &p);
    if (rc) {
        snprintf(buf, cap, "cannot load the PKI: %s", pl_strerror(rc));
        return buf;
    }
    rc = pl_cert_verify_chain(pl_pki_cert(p, PL_PKI_DPF), NULL, 0, pl_pki_cert(p, PL_PKI_CI),
                              PL_CERT_ROLE_DPPB, now);
    pl_pki_free(p);
    if (rc) {
        snprintf(buf, cap, "the SM-DPf certificate (dpf.der) does not verify: %s",
                 pl_strerror(rc));
        return buf;
    }
    return NULL;
}

/* One setting's problem, or NULL. */
static const char *check_one(enum pl_km_setting k, const char *v, time_t now, char *buf,
                             size_t cap)
{
    uint8_t key[32];
    uint32_t u32 = 0, ip = 0;
    uint16_t port = 0;
    bool b = false;
    int rc = PL_ERR_INTERNAL;
    DIR *d = NULL;

    switch (k) {
    case PL_KM_SET_PKI:
        return pki_problem(v, now, buf, cap);
    case PL_KM_SET_DB:
        return db_problem(v);
    case PL_KM_SET_PROFILES:
        d = opendir(v);
        if (d == NULL)
            return "not a readable directory";
        closedir(d);
        return NULL;
    case PL_KM_SET_BIND:
        return endpoint_ok(v) ? NULL : "must be a tcp:// or ipc:// endpoint";
    case PL_KM_SET_CURVE_SECRET:
        rc = pl_km_read_key(v, key);
        pl_memzero(key, sizeof(key));
        if (rc == PL_ERR_IO)
            return "cannot read the key file";
        return rc ? "not a Z85 CurveZMQ key file (40 characters)" : NULL;
    case PL_KM_SET_ALLOW:
        rc = pl_km_allow_check(v, NULL);
        if (rc == PL_ERR_IO)
            return "cannot read the allow-list";
        if (rc) {
            snprintf(buf, cap, "not a list of Z85 station keys (one a line, at least one): %s",
                     pl_strerror(rc));
            return buf;
        }
        return NULL;
    case PL_KM_SET_LEASE_SECONDS:
        return parse_seconds(v, &u32) ? NULL : "must be a whole number of seconds, 1..2592000";
    case PL_KM_SET_RSK:
    case PL_KM_SET_VERBOSE:
        return parse_bool(v, &b) ? NULL : "must be true or false (yes/no, on/off, 1/0)";
    case PL_KM_SET_ID:
        return id_ok(v) ? NULL : "must be 1..63 printable ASCII characters";
    case PL_KM_SET_METRICS:
        return pl_km_metrics_addr(v, &ip, &port) == PL_OK
                   ? NULL
                   : "must be a loopback IPv4 address and port, e.g. 127.0.0.1:9464";
    default:
        return "unknown setting";
    }
}

unsigned pl_km_settings_check(struct pl_km_settings *s, time_t now)
{
    char buf[256];
    unsigned before;

    if (s == NULL)
        return 1;
    before = s->problems;
    for (int k = 0; k < (int)PL_KM_SETTINGS; k++) {
        const char *v = s->value[k];
        if (v == NULL) {
            if (DEFS[k].required)
                problem(s, "configuration", DEFS[k].name, "required, not set");
            continue;
        }
        const char *what = check_one((enum pl_km_setting)k, v, now, buf, sizeof(buf));
        if (what)
            problem(s, s->where[k], DEFS[k].name, "%s", what);
    }
    return s->problems - before;
}

int pl_km_settings_apply(const struct pl_km_settings *s, struct pl_km_daemon *out)
{
    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    pl_km_config_init(&out->km);
    for (int k = 0; k < (int)PL_KM_SETTINGS; k++)
        if (DEFS[k].required && s->value[k] == NULL)
            return PL_ERR_CONFIG;
    out->km.pki_dir = s->value[PL_KM_SET_PKI];
    out->km.db_path = s->value[PL_KM_SET_DB];
    out->km.keymaker_id = s->value[PL_KM_SET_ID];
    out->profiles = s->value[PL_KM_SET_PROFILES];
    out->server.bind = s->value[PL_KM_SET_BIND];
    out->server.curve_secret_file = s->value[PL_KM_SET_CURVE_SECRET];
    out->server.allow_file = s->value[PL_KM_SET_ALLOW];
    out->server.metrics = s->value[PL_KM_SET_METRICS];
    if ((s->value[PL_KM_SET_LEASE_SECONDS]
         && !parse_seconds(s->value[PL_KM_SET_LEASE_SECONDS], &out->km.lease_seconds))
        || (s->value[PL_KM_SET_RSK]
            && !parse_bool(s->value[PL_KM_SET_RSK], &out->km.replace_session_keys))
        || (s->value[PL_KM_SET_VERBOSE] && !parse_bool(s->value[PL_KM_SET_VERBOSE], &out->verbose))
        || (s->value[PL_KM_SET_ID] && !id_ok(s->value[PL_KM_SET_ID])))
        return PL_ERR_CONFIG;
    return PL_OK;
}
