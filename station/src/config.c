/* provline-station configuration (config.h): INI via libinih, then validation.
 * Sources: ARCHITECTURE.md §7; reference/STYLE.md §7.3 rules 7, 10; DEPENDENCIES.md §6-§7;
 * GSMA SGP.32 v1.2 §5.9.4 AddInitialEim (sgp32_eim_config.h) for the [eim] request;
 * ZeroMQ RFC 32 (Z85) for the CurveZMQ key files. Format: docs/station.conf.5.md. */
#define _POSIX_C_SOURCE 200809L
#include "provline/station/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provline/fixtures/serial.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/x509.h"

#define CERT_FILE_MAX 8192u

void pl_station_diag_add(struct pl_station_diag *diag, const char *fmt, ...)
{
    va_list ap;
    if (diag == NULL)
        return;
    if (diag->n >= PL_STATION_DIAG_MAX) {
        diag->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(diag->msg[diag->n], PL_STATION_DIAG_LEN, fmt, ap);
    va_end(ap);
    diag->n++;
}

const char *pl_fixture_transport_name(enum pl_fixture_transport t)
{
    switch (t) {
    case PL_FIXTURE_SERIAL: return "serial";
    case PL_FIXTURE_COAP: return "coap";
    }
    return "?";
}

const char *pl_station_log_level_name(enum pl_station_log_level l)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    return (unsigned)l < 4u ? names[l] : "?";
}

void pl_station_config_init(struct pl_station_config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->station_id, sizeof(c->station_id), "provline-station");
    c->max_loads = 3;
    c->log_level = PL_STATION_LOG_INFO;
    pl_timers_init(&c->timers);
}

void pl_station_config_deinit(struct pl_station_config *c)
{
    if (c == NULL)
        return;
    free(c->eim_request);
    c->eim_request = NULL;
    c->eim_request_len = 0;
    for (size_t i = 0; i < PL_STATION_FIXTURES_MAX; i++) {
        pl_memzero(c->fixtures[i].psk_key, sizeof(c->fixtures[i].psk_key));
        c->fixtures[i].psk_key_len = 0;
    }
}

/* ------------------------------------------------------------------- parsing ---- */

struct parse {
    struct pl_station_config *c;
    struct pl_station_diag *diag;
    unsigned errors;
};

static void perr(struct parse *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void perr(struct parse *p, const char *fmt, ...)
{
    char line[PL_STATION_DIAG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pl_station_diag_add(p->diag, "%s", line);
    p->errors++;
}

static bool copy_str(struct parse *p, const char *sec, const char *key, const char *val, char *dst,
                     size_t cap)
{
    size_t n = strlen(val);
    if (n == 0) {
        perr(p, "[%s] %s: empty value", sec, key);
        return false;
    }
    if (n >= cap) {
        perr(p, "[%s] %s: value longer than %zu characters", sec, key, cap - 1);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)val[i];
        if (ch < 0x20 || ch == 0x7f) {
            perr(p, "[%s] %s: control character in value", sec, key);
            return false;
        }
    }
    memcpy(dst, val, n + 1);
    return true;
}

static bool parse_uint(struct parse *p, const char *sec, const char *key, const char *val,
                       unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v;
    if (val[0] < '0' || val[0] > '9') {
        perr(p, "[%s] %s: '%s' is not a decimal number", sec, key, val);
        return false;
    }
    errno = 0;
    v = strtoul(val, &end, 10);
    if (errno != 0 || *end != '\0') {
        perr(p, "[%s] %s: '%s' is not a decimal number", sec, key, val);
        return false;
    }
    if (v < min || v > max) {
        perr(p, "[%s] %s: %lu is outside %lu..%lu", sec, key, v, min, max);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_bool(struct parse *p, const char *sec, const char *key, const char *val,
                       bool *out)
{
    if (strcmp(val, "true") == 0 || strcmp(val, "yes") == 0 || strcmp(val, "1") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(val, "false") == 0 || strcmp(val, "no") == 0 || strcmp(val, "0") == 0) {
        *out = false;
        return true;
    }
    perr(p, "[%s] %s: '%s' is not true/false", sec, key, val);
    return false;
}

/* "host:port" or "[v6]:port". */
static bool split_host_port(const char *s, char *host, size_t hcap, uint16_t *port)
{
    const char *colon;
    size_t hlen;
    char *end = NULL;
    unsigned long v;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return false;
        hlen = (size_t)(rb - s - 1);
        if (hlen == 0 || hlen >= hcap)
            return false;
        memcpy(host, s + 1, hlen);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= hcap || memchr(s, ':', hlen) != NULL)
            return false;
        memcpy(host, s, hlen);
    }
    host[hlen] = '\0';
    if (colon[1] < '0' || colon[1] > '9')
        return false;
    errno = 0;
    v = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || v > 65535u)
        return false;
    *port = (uint16_t)v;
    return true;
}

static struct pl_fixture_cfg *fixture_for(struct parse *p, const char *name)
{
    struct pl_station_config *c = p->c;
    size_t n = strlen(name);

    for (size_t i = 0; i < c->n_fixtures; i++)
        if (strcmp(c->fixtures[i].name, name) == 0)
            return &c->fixtures[i];
    if (n == 0 || n > PL_STATION_NAME_MAX) {
        perr(p, "[fixture %s]: a fixture name has 1..%u characters", name, PL_STATION_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
              || ch == '_' || ch == '-' || ch == '.')) {
            perr(p, "[fixture %s]: a fixture name uses only A-Z a-z 0-9 _ - .", name);
            return NULL;
        }
    }
    if (c->n_fixtures >= PL_STATION_FIXTURES_MAX) {
        perr(p, "[fixture %s]: more than %u fixtures", name, PL_STATION_FIXTURES_MAX);
        return NULL;
    }
    struct pl_fixture_cfg *f = &c->fixtures[c->n_fixtures++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, n + 1);
    f->baud = 115200;
    return f;
}

static void h_fixture(struct parse *p, const char *sec, const char *fname, const char *key,
                      const char *val)
{
    struct pl_fixture_cfg *f = fixture_for(p, fname);
    unsigned long v;

    if (f == NULL)
        return;
    if (strcmp(key, "transport") == 0) {
        if (strcmp(val, "serial") == 0)
            f->transport = PL_FIXTURE_SERIAL;
        else if (strcmp(val, "coap") == 0)
            f->transport = PL_FIXTURE_COAP;
        else
            perr(p, "[%s] transport: '%s' is neither serial nor coap", sec, val);
    } else if (strcmp(key, "port") == 0) {
        (void)copy_str(p, sec, key, val, f->port, sizeof(f->port));
    } else if (strcmp(key, "baud") == 0) {
        if (parse_uint(p, sec, key, val, 1, 4000000, &v))
            f->baud = (unsigned)v;
    } else if (strcmp(key, "psk_identity") == 0) {
        if (copy_str(p, sec, key, val, f->psk_identity, sizeof(f->psk_identity)))
            f->has_psk = true;
    } else if (strcmp(key, "psk_key") == 0) {
        size_t n = 0;
        if (pl_hex_decode(val, f->psk_key, sizeof(f->psk_key), &n) != PL_OK || n == 0) {
            perr(p, "[%s] psk_key: not 1..%u bytes of hex", sec, PL_STATION_PSK_MAX);
            pl_memzero(f->psk_key, sizeof(f->psk_key));
            n = 0;
        }
        f->psk_key_len = n;
        f->has_psk = true;
    } else {
        perr(p, "[%s] %s: unknown key", sec, key);
    }
}

static void h_timers(struct parse *p, const char *key, const char *val)
{
    enum pl_timer_id id;
    uint32_t v = 0;
    int rc;

    if (pl_timer_by_name(key, &id) != PL_OK) {
        perr(p, "[timers] %s: unknown timer (see docs/station.conf.5.md)", key);
        return;
    }
    rc = pl_timer_parse(id, val, &v);
    if (rc != PL_OK) {
        const struct pl_timer_def *d = pl_timer_def(id);
        perr(p, "[timers] %s: '%s' is not a value in %u..%u %s", key, val, d->min, d->max,
             pl_timer_unit_name(d->unit));
        return;
    }
    p->c->timers.v[id] = v;
}

static int handler(void *user, const char *section, const char *key, const char *val)
{
    struct parse *p = user;
    struct pl_station_config *c = p->c;
    unsigned long v;

    if (strncmp(section, "fixture ", 8) == 0) {
        const char *name = section + 8;
        while (*name == ' ')
            name++;
        h_fixture(p, section, name, key, val);
    } else if (strcmp(section, "line") == 0) {
        if (strcmp(key, "station_id") == 0)
            (void)copy_str(p, section, key, val, c->station_id, sizeof(c->station_id));
        else if (strcmp(key, "batch_id") == 0)
            (void)copy_str(p, section, key, val, c->batch_id, sizeof(c->batch_id));
        else if (strcmp(key, "prefetch_depth") == 0) {
            if (parse_uint(p, section, key, val, 0, 64, &v))
                c->prefetch_depth = (unsigned)v;
        } else if (strcmp(key, "expected_eids") == 0)
            (void)copy_str(p, section, key, val, c->expected_eids, sizeof(c->expected_eids));
        else if (strcmp(key, "max_loads") == 0) {
            if (parse_uint(p, section, key, val, 1, 16, &v))
                c->max_loads = (unsigned)v;
        } else if (strcmp(key, "once") == 0)
            (void)parse_bool(p, section, key, val, &c->once);
        else
            perr(p, "[line] %s: unknown key", key);
    } else if (strcmp(section, "keymaker") == 0) {
        if (strcmp(key, "endpoint") == 0)
            (void)copy_str(p, section, key, val, c->km_endpoint, sizeof(c->km_endpoint));
        else if (strcmp(key, "server_public_key") == 0)
            (void)copy_str(p, section, key, val, c->km_server_public, sizeof(c->km_server_public));
        else if (strcmp(key, "client_secret_key") == 0)
            (void)copy_str(p, section, key, val, c->km_client_secret, sizeof(c->km_client_secret));
        else if (strcmp(key, "client_public_key") == 0)
            (void)copy_str(p, section, key, val, c->km_client_public, sizeof(c->km_client_public));
        else if (strcmp(key, "checkpoint_certificate") == 0)
            (void)copy_str(p, section, key, val, c->km_checkpoint_cert,
                           sizeof(c->km_checkpoint_cert));
        else
            perr(p, "[keymaker] %s: unknown key", key);
    } else if (strcmp(section, "storage") == 0) {
        if (strcmp(key, "journal") == 0)
            (void)copy_str(p, section, key, val, c->journal, sizeof(c->journal));
        else if (strcmp(key, "audit") == 0)
            (void)copy_str(p, section, key, val, c->audit, sizeof(c->audit));
        else if (strcmp(key, "packages") == 0)
            (void)copy_str(p, section, key, val, c->packages, sizeof(c->packages));
        else
            perr(p, "[storage] %s: unknown key", key);
    } else if (strcmp(section, "eim") == 0) {
        if (strcmp(key, "add_initial_eim") == 0)
            (void)copy_str(p, section, key, val, c->eim_file, sizeof(c->eim_file));
        else if (strcmp(key, "eim_id") == 0)
            (void)copy_str(p, section, key, val, c->eim_id, sizeof(c->eim_id));
        else if (strcmp(key, "eim_fqdn") == 0)
            (void)copy_str(p, section, key, val, c->eim_fqdn, sizeof(c->eim_fqdn));
        else if (strcmp(key, "eim_certificate") == 0)
            (void)copy_str(p, section, key, val, c->eim_cert, sizeof(c->eim_cert));
        else
            perr(p, "[eim] %s: unknown key", key);
    } else if (strcmp(section, "metrics") == 0) {
        if (strcmp(key, "listen") == 0) {
            char host[64];
            uint16_t port = 0;
            if (!split_host_port(val, host, sizeof(host), &port)) {
                perr(p, "[metrics] listen: '%s' is not HOST:PORT", val);
            } else if (strcmp(host, "localhost") != 0 && strncmp(host, "127.", 4) != 0) {
                perr(p, "[metrics] listen: '%s' is not a loopback address (127.x.x.x or "
                        "localhost)", host);
            } else {
                c->metrics = PL_METRICS_TCP;
                snprintf(c->metrics_host, sizeof(c->metrics_host), "%s",
                         strcmp(host, "localhost") == 0 ? "127.0.0.1" : host);
                c->metrics_port = port;
            }
        } else if (strcmp(key, "unix") == 0) {
            if (copy_str(p, section, key, val, c->metrics_unix, sizeof(c->metrics_unix)))
                c->metrics = PL_METRICS_UNIX;
        } else {
            perr(p, "[metrics] %s: unknown key", key);
        }
    } else if (strcmp(section, "log") == 0) {
        if (strcmp(key, "level") == 0) {
            unsigned i = 0;
            for (; i < 4; i++)
                if (strcmp(val, pl_station_log_level_name((enum pl_station_log_level)i)) == 0)
                    break;
            if (i == 4)
                perr(p, "[log] level: '%s' is not error, warn, info or debug", val);
            else
                c->log_level = (enum pl_station_log_level)i;
        } else {
            perr(p, "[log] %s: unknown key", key);
        }
    } else if (strcmp(section, "timers") == 0) {
        h_timers(p, key, val);
    } else {
        perr(p, "[%s]: unknown section (key %s)", section, key);
    }
    return 1; /* keep going: every error is reported */
}

static int finish_parse(int ini_rc, struct parse *p, struct pl_station_config *c,
                        struct pl_station_diag *diag)
{
    int rc;
    if (ini_rc < 0) {
        pl_station_diag_add(diag, "cannot read the configuration file: %s", strerror(errno));
        return PL_ERR_IO;
    }
    if (ini_rc > 0)
        perr(p, "line %d: not a [section] or key = value line (or longer than 197 characters)",
             ini_rc);
    rc = pl_station_config_check(c, diag);
    if (p->errors > 0)
        return PL_ERR_CONFIG;
    return rc;
}

int pl_station_config_load(const char *path, struct pl_station_config *c,
                           struct pl_station_diag *diag)
{
    struct parse p = {c, diag, 0};
    int ini_rc;
    if (path == NULL) {
        pl_station_diag_add(diag, "no configuration file given");
        return PL_ERR_CONFIG;
    }
    errno = 0;
    ini_rc = ini_parse(path, handler, &p);
    return finish_parse(ini_rc, &p, c, diag);
}

int pl_station_config_load_string(const char *text, struct pl_station_config *c,
                                  struct pl_station_diag *diag)
{
    struct parse p = {c, diag, 0};
    return finish_parse(ini_parse_string(text, handler, &p), &p, c, diag);
}

/* ---------------------------------------------------------------- validation ---- */

static bool is_z85(int ch)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";
    return ch != '\0' && strchr(alphabet, ch) != NULL;
}

/* A key file: one Z85 key of 40 characters and an optional newline. The contents are never
 * printed (the secret key). */
static bool check_key_file(struct pl_station_diag *diag, const char *key, const char *path,
                           bool secret)
{
    char buf[48];
    size_t n;
    bool ok = true;
    struct stat st;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        pl_station_diag_add(diag, "[keymaker] %s: cannot open %s: %s", key, path, strerror(errno));
        return false;
    }
    n = fread(buf, 1, sizeof(buf), f);
    if (fstat(fileno(f), &st) == 0 && secret && (st.st_mode & 0077) != 0) {
        pl_station_diag_add(diag, "[keymaker] %s: %s is readable by group or others (chmod 600)",
                            key, path);
        ok = false;
    }
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n != 40) {
        pl_station_diag_add(diag, "[keymaker] %s: %s does not hold one 40-character Z85 key",
                            key, path);
        ok = false;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!is_z85((unsigned char)buf[i])) {
                pl_station_diag_add(diag, "[keymaker] %s: %s holds a character outside Z85", key,
                                    path);
                ok = false;
                break;
            }
        }
    }
    pl_memzero(buf, sizeof(buf));
    return ok;
}

static bool dir_writable(const char *dir)
{
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
}

/* A file the station creates: its directory must exist and be writable. */
static bool check_file_dir(struct pl_station_diag *diag, const char *sec, const char *key,
                           const char *path)
{
    char dir[PL_STATION_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        size_t n = (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    if (!dir_writable(dir)) {
        pl_station_diag_add(diag, "[%s] %s: directory %s does not exist or is not writable", sec,
                            key, dir);
        return false;
    }
    return true;
}

static uint8_t *read_small_file(const char *path, size_t max, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    size_t n;

    *err = 0;
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        *err = ENOMEM;
        return NULL;
    }
    n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (n > max) {
        free(buf);
        *err = EFBIG;
        return NULL;
    }
    *len = n;
    return buf;
}

static bool build_eim(struct pl_station_config *c, struct pl_station_diag *diag)
{
    struct pl_sgp32_add_initial_eim_request *q = NULL;
    uint8_t *cert = NULL;
    size_t cert_len = 0;
    int err = 0, rc;
    bool ok = false;
    struct pl_wr w;

    free(c->eim_request);
    c->eim_request = NULL;
    c->eim_request_len = 0;
    pl_wr_init_dyn(&w, PL_STATION_EIM_REQ_MAX);
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        pl_station_diag_add(diag, "[eim]: out of memory");
        goto out;
    }
    if (c->eim_file[0] != '\0') {
        if (c->eim_id[0] != '\0' || c->eim_fqdn[0] != '\0' || c->eim_cert[0] != '\0') {
            pl_station_diag_add(diag, "[eim]: give either add_initial_eim or eim_id "
                                      "(+ eim_fqdn, eim_certificate), not both");
            goto out;
        }
        size_t n = 0;
        uint8_t *buf = read_small_file(c->eim_file, PL_STATION_EIM_REQ_MAX, &n, &err);
        if (buf == NULL) {
            pl_station_diag_add(diag, "[eim] add_initial_eim: cannot read %s: %s", c->eim_file,
                                err == EFBIG ? "larger than 16384 bytes" : strerror(err));
            goto out;
        }
        rc = pl_sgp32_add_initial_eim_request_decode(buf, n, q);
        if (rc != PL_OK || q->n_eims == 0) {
            pl_station_diag_add(diag, "[eim] add_initial_eim: %s is not a DER AddInitialEim "
                                      "request 'BF57' with at least one eIM (%s)",
                                c->eim_file, rc != PL_OK ? pl_strerror(rc) : "empty list");
            free(buf);
            goto out;
        }
        c->eim_request = buf;
        c->eim_request_len = n;
        ok = true;
        goto out;
    }
    if (c->eim_id[0] == '\0') {
        if (c->eim_fqdn[0] != '\0' || c->eim_cert[0] != '\0')
            pl_station_diag_add(diag, "[eim]: eim_fqdn / eim_certificate need eim_id");
        else
            ok = true; /* no [eim]: the step is skipped */
        goto out;
    }
    q->n_eims = 1;
    q->eims[0].eim_id = pl_sgp32_str(c->eim_id);
    if (c->eim_fqdn[0] != '\0')
        q->eims[0].eim_fqdn = pl_sgp32_str(c->eim_fqdn);
    q->eims[0].has_counter = true;
    q->eims[0].counter = 0;
    if (c->eim_cert[0] != '\0') {
        cert = read_small_file(c->eim_cert, CERT_FILE_MAX, &cert_len, &err);
        if (cert == NULL) {
            pl_station_diag_add(diag, "[eim] eim_certificate: cannot read %s: %s", c->eim_cert,
                                err == EFBIG ? "larger than 8192 bytes" : strerror(err));
            goto out;
        }
        rc = pl_sgp32_key_data_from_der(PL_SGP32_KEY_CERT, cert, cert_len,
                                        &q->eims[0].eim_public_key_data);
        if (rc != PL_OK) {
            pl_station_diag_add(diag, "[eim] eim_certificate: %s is not a DER certificate (%s)",
                                c->eim_cert, pl_strerror(rc));
            goto out;
        }
    }
    rc = pl_sgp32_add_initial_eim_request_encode(q, &w);
    if (rc != PL_OK) {
        pl_station_diag_add(diag, "[eim]: cannot build AddInitialEim: %s", pl_strerror(rc));
        goto out;
    }
    c->eim_request = pl_wr_take(&w, &c->eim_request_len);
    ok = c->eim_request != NULL;
out:
    pl_wr_free(&w);
    free(cert);
    free(q);
    return ok;
}

static bool check_expected_eids(struct pl_station_config *c, struct pl_station_diag *diag)
{
    char line[256];
    unsigned lineno = 0;
    bool ok = true;
    FILE *f = fopen(c->expected_eids, "r");

    if (f == NULL) {
        pl_station_diag_add(diag, "[line] expected_eids: cannot open %s: %s", c->expected_eids,
                            strerror(errno));
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        uint8_t eid[16];
        size_t n = 0;
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (pl_hex_decode(line, eid, sizeof(eid), &n) != PL_OK || n != sizeof(eid)) {
            pl_station_diag_add(diag, "[line] expected_eids: %s line %u is not a 32-digit hex EID",
                                c->expected_eids, lineno);
            ok = false;
        }
    }
    fclose(f);
    return ok;
}

/* The Key Maker's checkpoint certificate: a DER X.509 certificate with an EC public key. */
static bool check_checkpoint_cert(struct pl_station_diag *diag, const char *path)
{
    size_t len = 0;
    int err = 0;
    uint8_t *der = read_small_file(path, CERT_FILE_MAX, &len, &err);
    struct pl_cert *cert = NULL;
    struct pl_eckey *key = NULL;
    int rc;

    if (der == NULL) {
        pl_station_diag_add(diag, "[keymaker] checkpoint_certificate: cannot read %s: %s", path,
                            strerror(err));
        return false;
    }
    rc = pl_cert_parse(der, len, &cert);
    if (rc == PL_OK)
        rc = pl_cert_public_key(cert, &key);
    pl_eckey_free(key);
    pl_cert_free(cert);
    free(der);
    if (rc != PL_OK) {
        pl_station_diag_add(diag,
                            "[keymaker] checkpoint_certificate: %s is not a DER certificate with "
                            "an EC key (%s)",
                            path, pl_strerror(rc));
        return false;
    }
    return true;
}

int pl_station_config_check(struct pl_station_config *c, struct pl_station_diag *diag)
{
    bool ok = true;

    if (c->km_endpoint[0] == '\0') {
        pl_station_diag_add(diag, "[keymaker] endpoint: required (e.g. tcp://127.0.0.1:5555)");
        ok = false;
    } else if (strncmp(c->km_endpoint, "tcp://", 6) != 0 && strncmp(c->km_endpoint, "ipc://", 6) != 0) {
        pl_station_diag_add(diag, "[keymaker] endpoint: '%s' is not tcp://HOST:PORT or ipc://PATH",
                            c->km_endpoint);
        ok = false;
    }
    if (c->km_server_public[0] == '\0') {
        pl_station_diag_add(diag, "[keymaker] server_public_key: required (the Key Maker's "
                                  "CurveZMQ public key file)");
        ok = false;
    } else {
        ok = check_key_file(diag, "server_public_key", c->km_server_public, false) && ok;
    }
    if (c->km_client_secret[0] == '\0') {
        pl_station_diag_add(diag, "[keymaker] client_secret_key: required (the station's "
                                  "CurveZMQ secret key file)");
        ok = false;
    } else {
        ok = check_key_file(diag, "client_secret_key", c->km_client_secret, true) && ok;
    }
    if (c->km_client_public[0] != '\0')
        ok = check_key_file(diag, "client_public_key", c->km_client_public, false) && ok;
    if (c->km_checkpoint_cert[0] != '\0')
        ok = check_checkpoint_cert(diag, c->km_checkpoint_cert) && ok;

    if (c->journal[0] == '\0') {
        pl_station_diag_add(diag, "[storage] journal: required (the SQLite journal file)");
        ok = false;
    } else {
        ok = check_file_dir(diag, "storage", "journal", c->journal) && ok;
    }
    if (c->audit[0] == '\0') {
        pl_station_diag_add(diag, "[storage] audit: required (the audit hash chain file)");
        ok = false;
    } else {
        ok = check_file_dir(diag, "storage", "audit", c->audit) && ok;
    }
    if (c->packages[0] == '\0') {
        pl_station_diag_add(diag, "[storage] packages: required (directory of sealed packages)");
        ok = false;
    } else if (!dir_writable(c->packages)) {
        pl_station_diag_add(diag, "[storage] packages: %s is not a writable directory",
                            c->packages);
        ok = false;
    }
    if (c->expected_eids[0] != '\0')
        ok = check_expected_eids(c, diag) && ok;
    if (c->prefetch_depth > 0 && c->expected_eids[0] == '\0') {
        pl_station_diag_add(diag, "[line] prefetch_depth: needs expected_eids (the candidate "
                                  "EIDs to lease for)");
        ok = false;
    }
    ok = build_eim(c, diag) && ok;

    if (c->n_fixtures == 0) {
        pl_station_diag_add(diag, "no [fixture NAME] section: at least one fixture is needed");
        ok = false;
    }
    for (size_t i = 0; i < c->n_fixtures; i++) {
        struct pl_fixture_cfg *f = &c->fixtures[i];
        if (f->transport == 0) {
            pl_station_diag_add(diag, "[fixture %s] transport: required (serial or coap)",
                                f->name);
            ok = false;
            continue;
        }
        if (f->port[0] == '\0') {
            pl_station_diag_add(diag, "[fixture %s] port: required (%s)", f->name,
                                f->transport == PL_FIXTURE_SERIAL ? "a serial device path"
                                                                  : "HOST:PORT");
            ok = false;
            continue;
        }
        if (f->transport == PL_FIXTURE_SERIAL) {
            if (!pl_serial_baud_ok(f->baud)) {
                pl_station_diag_add(diag, "[fixture %s] baud: %u is not one of 115200, 230400, "
                                          "460800, 500000, 576000, 921600",
                                    f->name, f->baud);
                ok = false;
            }
            if (f->has_psk) {
                pl_station_diag_add(diag, "[fixture %s] psk_identity/psk_key: only for coap",
                                    f->name);
                ok = false;
            }
        } else {
            if (!split_host_port(f->port, f->host, sizeof(f->host), &f->udp_port)
                || f->udp_port == 0) {
                pl_station_diag_add(diag, "[fixture %s] port: '%s' is not HOST:PORT", f->name,
                                    f->port);
                ok = false;
            } else {
                unsigned char a[16];
                if (inet_pton(AF_INET, f->host, a) != 1 && inet_pton(AF_INET6, f->host, a) != 1) {
                    pl_station_diag_add(diag, "[fixture %s] port: host '%s' is not a numeric "
                                              "IPv4 or IPv6 address",
                                        f->name, f->host);
                    ok = false;
                }
            }
            if (f->has_psk && (f->psk_identity[0] == '\0' || f->psk_key_len == 0)) {
                pl_station_diag_add(diag, "[fixture %s]: DTLS-PSK needs both psk_identity and "
                                          "psk_key",
                                    f->name);
                ok = false;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (c->fixtures[j].transport == f->transport && strcmp(c->fixtures[j].port, f->port) == 0) {
                pl_station_diag_add(diag, "[fixture %s] port: %s is also fixture %s's", f->name,
                                    f->port, c->fixtures[j].name);
                ok = false;
            }
        }
    }
    return ok ? PL_OK : PL_ERR_CONFIG;
}
