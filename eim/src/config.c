/* provline-eim configuration file (config.h; docs/eim-api.md §Configuration).
 * GSMA SGP.32 v1.2 §2.11.1.1.1 EimConfigurationData: eimId (1..128), eimFqdn, eimIdType,
 * counterValue, associationToken, eimPublicKeyData, trustedPublicKeyDataTls,
 * eimSupportedProtocol, euiccCiPKId, indirectProfileDownload. */
#define _POSIX_C_SOURCE 200809L
#include "provline/eim/config.h"

#include "provline/protocol/b64.h"
#include "provline/eim/counter_guard.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/x509.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (1u << 20) /* a key or certificate file */

static void fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

/* Reads at most max bytes of a file; PL_ERR_OVERFLOW if it is longer. */
static int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0;
    if (f == NULL)
        return errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO;
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return PL_ERR_NOMEM;
    }
    n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return PL_ERR_IO;
    }
    fclose(f);
    if (n > max) {
        free(buf);
        return PL_ERR_OVERFLOW;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return PL_OK;
}

/* A path relative to the configuration file's directory (absolute paths unchanged). */
static char *resolve(const struct pl_eim_config *cfg, const char *p)
{
    const char *slash = strrchr(cfg->path, '/');
    size_t dl = 0, pl = strlen(p);
    char *out = NULL;
    if (p[0] == '/' || slash == NULL)
        return dup_str(p);
    dl = (size_t)(slash - cfg->path);
    out = malloc(dl + 1 + pl + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, cfg->path, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, p, pl + 1);
    return out;
}

static bool keys_ok(json_t *obj, const char *const *allowed, const char *where, char *err,
                    size_t cap)
{
    const char *key = NULL;
    json_t *v = NULL;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        (void)v;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            fail(err, cap, "%s: unknown key \"%s\"", where, key);
            return false;
        }
    }
    return true;
}

static int get_str(json_t *obj, const char *key, bool required, size_t max, char **out,
                   const char *where, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL) {
        if (!required)
            return PL_OK;
        fail(err, cap, "%s.%s: missing", where, key);
        return PL_ERR_CONFIG;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max
        || strlen(json_string_value(v)) != json_string_length(v)) {
        fail(err, cap, "%s.%s: must be a non-empty string of at most %zu bytes", where, key, max);
        return PL_ERR_CONFIG;
    }
    *out = dup_str(json_string_value(v));
    return *out ? PL_OK : PL_ERR_NOMEM;
}

static int get_int(json_t *obj, const char *key, int64_t min, int64_t max, bool *present,
                   int64_t *out, const char *where, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *present = false;
    if (v == NULL)
        return PL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        fail(err, cap, "%s.%s: must be an integer in %lld..%lld", where, key, (long long)min,
             (long long)max);
        return PL_ERR_CONFIG;
    }
    *present = true;
    *out = (int64_t)json_integer_value(v);
    return PL_OK;
}

/* {"certificate": FILE} (DER or PEM) or {"spki": FILE} (DER): the DER and its kind. */
static int get_key(const struct pl_eim_config *cfg, json_t *obj, const char *key,
                   enum pl_sgp32_key_kind *kind, uint8_t **der, size_t *der_len, const char *where,
                   char *err, size_t cap)
{
    static const char *const allowed[] = {"certificate", "spki", NULL};
    json_t *v = json_object_get(obj, key);
    json_t *cert = NULL, *spki = NULL;
    char *path = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = PL_ERR_CONFIG;
    char here[96];

    *kind = PL_SGP32_KEY_NONE;
    *der = NULL;
    *der_len = 0;
    if (v == NULL)
        return PL_OK;
    snprintf(here, sizeof(here), "%s.%s", where, key);
    if (!json_is_object(v) || !keys_ok(v, allowed, here, err, cap))
        goto bad;
    cert = json_object_get(v, "certificate");
    spki = json_object_get(v, "spki");
    if ((cert == NULL) == (spki == NULL) || !json_is_string(cert ? cert : spki)) {
        fail(err, cap, "%s: give exactly one of \"certificate\" or \"spki\" (a file name)", here);
        goto bad;
    }
    path = resolve(cfg, json_string_value(cert ? cert : spki));
    if (path == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = read_file(path, FILE_MAX, &buf, &len)) != PL_OK) {
        fail(err, cap, "%s: cannot read %s (%s)", here, path, pl_strerror(rc));
        rc = PL_ERR_CONFIG;
        goto out;
    }
    if (cert != NULL) {
        struct pl_cert *c = NULL;
        const uint8_t *d = NULL;
        size_t dl = 0;
        if (pl_cert_parse(buf, len, &c) != PL_OK) {
            fail(err, cap, "%s: %s is not a certificate", here, path);
            rc = PL_ERR_CONFIG;
            goto out;
        }
        pl_cert_der(c, &d, &dl);
        *der = malloc(dl);
        if (*der != NULL) {
            memcpy(*der, d, dl);
            *der_len = dl;
        }
        pl_cert_free(c);
        rc = *der ? PL_OK : PL_ERR_NOMEM;
        *kind = PL_SGP32_KEY_CERT;
    } else {
        struct pl_sgp32_key_data kd;
        if (pl_sgp32_key_data_from_der(PL_SGP32_KEY_SPKI, buf, len, &kd) != PL_OK) {
            fail(err, cap, "%s: %s is not a DER SubjectPublicKeyInfo", here, path);
            rc = PL_ERR_CONFIG;
            goto out;
        }
        *der = buf;
        *der_len = len;
        buf = NULL;
        *kind = PL_SGP32_KEY_SPKI;
        rc = PL_OK;
    }
out:
    free(path);
    free(buf);
    return rc;
bad:
    rc = PL_ERR_CONFIG;
    goto out;
}

static int parse_identity(struct pl_eim_config *cfg, json_t *obj, struct pl_eim_identity *id,
                          const char *where, char *err, size_t cap)
{
    static const char *const allowed[] = {"eim_id",
                                          "eim_fqdn",
                                          "eim_id_type",
                                          "counter_value",
                                          "association_token",
                                          "public_key",
                                          "tls_trust",
                                          "supported_protocols",
                                          "euicc_ci_pkid",
                                          "indirect_profile_download",
                                          NULL};
    static const char *const protos[] = {"retrieveHttps", "retrieveCoaps", "injectHttps",
                                         "injectCoaps", "proprietary"};
    static const char *const types[] = {"oid", "fqdn", "proprietary"};
    json_t *v = NULL;
    bool present = false;
    int64_t i = 0;
    int rc;

    if (!json_is_object(obj)) {
        fail(err, cap, "%s: must be an object", where);
        return PL_ERR_CONFIG;
    }
    if (!keys_ok(obj, allowed, where, err, cap))
        return PL_ERR_CONFIG;
    if ((rc = get_str(obj, "eim_id", true, PL_SGP32_EIM_ID_MAX, &id->eim_id, where, err, cap))
        || (rc =
                get_str(obj, "eim_fqdn", false, PL_SGP32_ADDR_MAX, &id->eim_fqdn, where, err, cap)))
        return rc;
    v = json_object_get(obj, "eim_id_type");
    if (v != NULL) {
        for (size_t k = 0; k < 3 && id->eim_id_type == 0; k++) {
            if (json_is_string(v) && strcmp(json_string_value(v), types[k]) == 0)
                id->eim_id_type = (int64_t)k + 1;
        }
        if (id->eim_id_type == 0) {
            fail(err, cap, "%s.eim_id_type: one of \"oid\", \"fqdn\", \"proprietary\"", where);
            return PL_ERR_CONFIG;
        }
    }
    if ((rc =
             get_int(obj, "counter_value", 0, PL_SGP32_COUNTER_MAX, &present, &i, where, err, cap)))
        return rc;
    id->has_counter = present;
    id->counter_value = (uint32_t)i;
    if ((rc = get_int(obj, "association_token", -1, INT64_MAX, &present, &i, where, err, cap)))
        return rc;
    id->has_association_token = present;
    id->association_token = i;
    if ((rc = get_key(cfg, obj, "public_key", &id->key_kind, &id->key_der, &id->key_der_len, where,
                      err, cap))
        || (rc = get_key(cfg, obj, "tls_trust", &id->tls_kind, &id->tls_der, &id->tls_der_len,
                         where, err, cap)))
        return rc;
    v = json_object_get(obj, "supported_protocols");
    if (v != NULL) {
        size_t idx = 0;
        json_t *p = NULL;
        if (!json_is_array(v)) {
            fail(err, cap, "%s.supported_protocols: must be an array of names", where);
            return PL_ERR_CONFIG;
        }
        id->has_protocols = true;
        json_array_foreach(v, idx, p)
        {
            bool known = false;
            for (size_t k = 0; k < 5 && json_is_string(p); k++) {
                if (strcmp(json_string_value(p), protos[k]) == 0) {
                    id->protocols |= 1u << k;
                    known = true;
                }
            }
            if (!known) {
                fail(err, cap, "%s.supported_protocols[%zu]: unknown protocol", where, idx);
                return PL_ERR_CONFIG;
            }
        }
    }
    v = json_object_get(obj, "euicc_ci_pkid");
    if (v != NULL
        && (!json_is_string(v)
            || pl_hex_decode(json_string_value(v), id->ci_pkid, sizeof(id->ci_pkid),
                             &id->ci_pkid_len)
                   != PL_OK
            || id->ci_pkid_len == 0)) {
        fail(err, cap, "%s.euicc_ci_pkid: hex, 1..64 bytes", where);
        return PL_ERR_CONFIG;
    }
    v = json_object_get(obj, "indirect_profile_download");
    if (v != NULL) {
        if (!json_is_boolean(v)) {
            fail(err, cap, "%s.indirect_profile_download: true or false", where);
            return PL_ERR_CONFIG;
        }
        id->indirect_profile_download = json_is_true(v);
    }
    return PL_OK;
}

static int parse_http(struct pl_eim_config *cfg, json_t *obj, char *err, size_t cap)
{
    static const char *const allowed[] = {
        "listen", "port", "port_file", "max_body", "max_bulk_body", "max_bulk_devices", NULL};
    bool present = false;
    int64_t i = 0;
    int rc;
    char *pf = NULL;

    if (obj == NULL)
        return PL_OK;
    if (!json_is_object(obj) || !keys_ok(obj, allowed, "http", err, cap)) {
        if (!json_is_object(obj))
            fail(err, cap, "http: must be an object");
        return PL_ERR_CONFIG;
    }
    if (json_object_get(obj, "listen") != NULL) {
        free(cfg->listen_host);
        cfg->listen_host = NULL;
        if ((rc = get_str(obj, "listen", true, 64, &cfg->listen_host, "http", err, cap)))
            return rc;
    }
    if ((rc = get_int(obj, "port", 0, 65535, &present, &i, "http", err, cap)))
        return rc;
    if (present)
        cfg->listen_port = (uint16_t)i;
    if ((rc = get_str(obj, "port_file", false, 4096, &pf, "http", err, cap)))
        return rc;
    if (pf != NULL) {
        cfg->port_file = resolve(cfg, pf);
        free(pf);
        if (cfg->port_file == NULL)
            return PL_ERR_NOMEM;
    }
    if ((rc = get_int(obj, "max_body", 1024, 64 << 20, &present, &i, "http", err, cap)))
        return rc;
    if (present)
        cfg->max_body = (size_t)i;
    if ((rc = get_int(obj, "max_bulk_body", 1024, 256 << 20, &present, &i, "http", err, cap)))
        return rc;
    if (present)
        cfg->max_bulk_body = (size_t)i;
    if ((rc = get_int(obj, "max_bulk_devices", 1, 1000000, &present, &i, "http", err, cap)))
        return rc;
    if (present)
        cfg->max_bulk_devices = (size_t)i;
    return PL_OK;
}

static int parse_store(struct pl_eim_config *cfg, json_t *obj, char *err, size_t cap)
{
    static const char *const allowed[] = {"backend",     "path",        "conninfo", "counter_guard",
                                          "guard_block", "counter_max", NULL};
    bool present = false;
    int64_t i = 0;
    char *tmp = NULL;
    int rc;

    if (!json_is_object(obj)) {
        fail(err, cap, "store: missing or not an object");
        return PL_ERR_CONFIG;
    }
    if (!keys_ok(obj, allowed, "store", err, cap))
        return PL_ERR_CONFIG;
    if ((rc = get_str(obj, "backend", true, 16, &cfg->backend, "store", err, cap)))
        return rc;
    if (strcmp(cfg->backend, "sqlite") == 0) {
        if ((rc = get_str(obj, "path", true, 4096, &tmp, "store", err, cap)))
            return rc;
        cfg->sqlite_path = resolve(cfg, tmp);
        free(tmp);
        tmp = NULL;
        if (cfg->sqlite_path == NULL)
            return PL_ERR_NOMEM;
        if (json_object_get(obj, "conninfo") != NULL) {
            fail(err, cap, "store.conninfo: only for the postgres backend");
            return PL_ERR_CONFIG;
        }
    } else if (strcmp(cfg->backend, "postgres") == 0) {
        if ((rc = get_str(obj, "conninfo", true, 4096, &cfg->pg_conninfo, "store", err, cap)))
            return rc;
        if (json_object_get(obj, "path") != NULL) {
            fail(err, cap, "store.path: only for the sqlite backend");
            return PL_ERR_CONFIG;
        }
    } else {
        fail(err, cap, "store.backend: \"sqlite\" or \"postgres\"");
        return PL_ERR_CONFIG;
    }
    if ((rc = get_str(obj, "counter_guard", true, 4096, &tmp, "store", err, cap)))
        return rc;
    cfg->guard_path = resolve(cfg, tmp);
    free(tmp);
    if (cfg->guard_path == NULL)
        return PL_ERR_NOMEM;
    if ((rc = get_int(obj, "guard_block", 1, 1 << 20, &present, &i, "store", err, cap)))
        return rc;
    if (present)
        cfg->guard_block = (uint32_t)i;
    if ((rc =
             get_int(obj, "counter_max", 1, PL_EIM_COUNTER_LIMIT, &present, &i, "store", err, cap)))
        return rc;
    if (present)
        cfg->counter_max = (uint32_t)i;
    return PL_OK;
}

static int parse_trust(struct pl_eim_config *cfg, json_t *obj, char *err, size_t cap)
{
    static const char *const allowed[] = {"ci_certificates", NULL};
    json_t *list = NULL, *v = NULL;
    size_t idx = 0;

    if (obj == NULL)
        return PL_OK;
    if (!json_is_object(obj) || !keys_ok(obj, allowed, "trust", err, cap)) {
        if (!json_is_object(obj))
            fail(err, cap, "trust: must be an object");
        return PL_ERR_CONFIG;
    }
    list = json_object_get(obj, "ci_certificates");
    if (list == NULL)
        return PL_OK;
    if (!json_is_array(list) || json_array_size(list) > PL_EIM_CONFIG_MAX_ROOTS) {
        fail(err, cap, "trust.ci_certificates: an array of at most %u file names",
             PL_EIM_CONFIG_MAX_ROOTS);
        return PL_ERR_CONFIG;
    }
    json_array_foreach(list, idx, v)
    {
        char *path = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        struct pl_cert *c = NULL;
        const uint8_t *d = NULL;
        size_t dl = 0;
        int rc;
        if (!json_is_string(v)) {
            fail(err, cap, "trust.ci_certificates[%zu]: a file name", idx);
            return PL_ERR_CONFIG;
        }
        path = resolve(cfg, json_string_value(v));
        if (path == NULL)
            return PL_ERR_NOMEM;
        rc = read_file(path, FILE_MAX, &buf, &len);
        if (rc == PL_OK && pl_cert_parse(buf, len, &c) != PL_OK)
            rc = PL_ERR_CERT;
        free(buf);
        if (rc != PL_OK) {
            fail(err, cap, "trust.ci_certificates[%zu]: %s: %s", idx, path, pl_strerror(rc));
            free(path);
            return PL_ERR_CONFIG;
        }
        free(path);
        pl_cert_der(c, &d, &dl);
        cfg->roots[cfg->n_roots] = malloc(dl);
        if (cfg->roots[cfg->n_roots] == NULL) {
            pl_cert_free(c);
            return PL_ERR_NOMEM;
        }
        memcpy(cfg->roots[cfg->n_roots], d, dl);
        cfg->root_len[cfg->n_roots] = dl;
        cfg->n_roots++;
        pl_cert_free(c);
    }
    return PL_OK;
}

int pl_eim_config_load(const char *path, struct pl_eim_config **out, char *err, size_t cap)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_config *cfg = NULL;
    uint8_t *text = NULL;
    size_t len = 0;
    json_error_t jerr;
    json_t *eims = NULL, *v = NULL;
    size_t idx = 0;

    if (path == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (err != NULL && cap > 0)
        err[0] = '\0';
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return PL_ERR_NOMEM;
    cfg->path = dup_str(path);
    cfg->listen_host = dup_str("127.0.0.1");
    if (cfg->path == NULL || cfg->listen_host == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    cfg->listen_port = 8080;
    cfg->max_body = 64u << 10;
    cfg->max_bulk_body = 16u << 20;
    cfg->max_bulk_devices = 10000;
    if ((rc = read_file(path, PL_EIM_CONFIG_MAX_BYTES, &text, &len)) != PL_OK) {
        fail(err, cap, "%s: %s", path, pl_strerror(rc));
        rc = PL_ERR_CONFIG;
        goto out;
    }
    cfg->json = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (cfg->json == NULL || !json_is_object(cfg->json)) {
        fail(err, cap, "%s:%d:%d: %s", path, jerr.line, jerr.column,
             cfg->json ? "the top level must be an object" : jerr.text);
        rc = PL_ERR_CONFIG;
        goto out;
    }
    if ((rc = parse_http(cfg, json_object_get(cfg->json, "http"), err, cap)) != PL_OK
        || (rc = parse_store(cfg, json_object_get(cfg->json, "store"), err, cap)) != PL_OK
        || (rc = parse_trust(cfg, json_object_get(cfg->json, "trust"), err, cap)) != PL_OK)
        goto out;
    eims = json_object_get(cfg->json, "eims");
    if (eims == NULL || !json_is_array(eims) || json_array_size(eims) == 0
        || json_array_size(eims) > PL_SGP32_MAX_EIMS) {
        fail(err, cap, "eims: an array of 1..%u eIM identities", PL_SGP32_MAX_EIMS);
        rc = PL_ERR_CONFIG;
        goto out;
    }
    json_array_foreach(eims, idx, v)
    {
        char where[32];
        snprintf(where, sizeof(where), "eims[%zu]", idx);
        if ((rc = parse_identity(cfg, v, &cfg->eims[idx], where, err, cap)) != PL_OK)
            goto out;
        cfg->n_eims = idx + 1;
        for (size_t k = 0; k < idx; k++) {
            if (strcmp(cfg->eims[k].eim_id, cfg->eims[idx].eim_id) == 0) {
                fail(err, cap, "%s.eim_id: duplicate", where);
                rc = PL_ERR_CONFIG;
                goto out;
            }
        }
    }
    *out = cfg;
    cfg = NULL;
    rc = PL_OK;
out:
    if (rc != PL_OK && err != NULL && cap > 0 && err[0] == '\0')
        fail(err, cap, "%s: %s", path, pl_strerror(rc));
    free(text);
    pl_eim_config_free(cfg);
    return rc;
}

void pl_eim_config_free(struct pl_eim_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < PL_SGP32_MAX_EIMS; i++) {
        free(cfg->eims[i].eim_id);
        free(cfg->eims[i].eim_fqdn);
        free(cfg->eims[i].key_der);
        free(cfg->eims[i].tls_der);
    }
    for (size_t i = 0; i < cfg->n_roots; i++)
        free(cfg->roots[i]);
    free(cfg->path);
    free(cfg->listen_host);
    free(cfg->port_file);
    free(cfg->backend);
    free(cfg->sqlite_path);
    free(cfg->pg_conninfo);
    free(cfg->guard_path);
    json_decref(cfg->json);
    free(cfg);
}

const json_t *pl_eim_config_json(const struct pl_eim_config *cfg)
{
    return cfg ? cfg->json : NULL;
}

const struct pl_eim_identity *pl_eim_config_identity(const struct pl_eim_config *cfg,
                                                     const char *eim_id)
{
    if (cfg == NULL || cfg->n_eims == 0)
        return NULL;
    if (eim_id == NULL)
        return &cfg->eims[0];
    for (size_t i = 0; i < cfg->n_eims; i++) {
        if (strcmp(cfg->eims[i].eim_id, eim_id) == 0)
            return &cfg->eims[i];
    }
    return NULL;
}

int pl_eim_config_open_store(const struct pl_eim_config *cfg, bool for_recovery, bool guard_create,
                             struct pl_eim_store **out)
{
    struct pl_eim_store_options o;
    if (cfg == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(&o, 0, sizeof(o));
    o.guard_path = cfg->guard_path;
    o.guard_block = cfg->guard_block;
    o.counter_max = cfg->counter_max;
    o.for_recovery = for_recovery;
    o.guard_create = guard_create;
    if (strcmp(cfg->backend, "sqlite") == 0)
        return pl_eim_store_open_sqlite(cfg->sqlite_path, &o, out);
    return pl_eim_store_open_pg(cfg->pg_conninfo, &o, out);
}
