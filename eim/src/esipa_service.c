/* The ESipa service of `provline-eim serve`: the engine and the CoAP server configured from
 * the "esipa" section of the configuration file (esipa_server.h; docs/eim-engine.md §8).
 * GSMA SGP.32 v1.2 §6.2 (CoAP binding), §2.6 (CERT.EIM.ECDSA signing key). The signing key is
 * read from its PEM file into a pl_eckey (zeroised when the service stops); the file buffer is
 * wiped at once. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/eim/esipa_server.h"
#include "provline/protocol/secret.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_FILE_MAX (16u * 1024u)
#define PATH_MAX_LEN 4096u

struct pl_eim_esipa_service {
    struct pl_eckey *key;
    struct pl_cert *roots[PL_EIM_MAX_CI_ROOTS];
    size_t n_roots;
    struct pl_eim_engine *eng;
    struct pl_eim_esipa_server *srv;
};

static void err_set(char *err, size_t cap, const char *what, const char *why)
{
    if (err != NULL && cap > 0)
        (void)snprintf(err, cap, "esipa.%s: %s", what, why);
}

static int path_of(const char *base, const char *rel, char *out)
{
    int n;
    if (rel[0] == '/' || base == NULL || base[0] == '\0')
        n = snprintf(out, PATH_MAX_LEN, "%s", rel);
    else
        n = snprintf(out, PATH_MAX_LEN, "%s/%s", base, rel);
    return n > 0 && (size_t)n < PATH_MAX_LEN ? PL_OK : PL_ERR_INVAL;
}

static int load_key(const char *path, struct pl_eckey **out)
{
    uint8_t *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = 0;
    int rc = PL_ERR_IO;
    FILE *f = NULL;
    if (buf == NULL)
        return PL_ERR_NOMEM;
    f = fopen(path, "rb");
    if (f != NULL) {
        n = fread(buf, 1, KEY_FILE_MAX + 1, f);
        if (!ferror(f) && n > 0 && n <= KEY_FILE_MAX)
            rc = pl_eckey_parse(buf, n, out);
        (void)fclose(f);
    }
    pl_memzero(buf, KEY_FILE_MAX + 1);
    free(buf);
    if (rc == PL_OK && !pl_eckey_has_private(*out)) {
        pl_eckey_free(*out);
        *out = NULL;
        rc = PL_ERR_BAD_KEY;
    }
    return rc;
}

/* A string member (absent: *out = def). */
static int get_str(const json_t *sec, const char *key, const char *def, const char **out, char *err,
                   size_t cap)
{
    const json_t *v = json_object_get(sec, key);
    *out = def;
    if (v == NULL)
        return PL_OK;
    if (!json_is_string(v) || json_string_length(v) == 0
        || strlen(json_string_value(v)) != json_string_length(v)) {
        err_set(err, cap, key, "must be a non-empty string");
        return PL_ERR_CONFIG;
    }
    *out = json_string_value(v);
    return PL_OK;
}

static int get_uint(const json_t *sec, const char *key, uint64_t def, uint64_t max, uint64_t *out,
                    char *err, size_t cap)
{
    const json_t *v = json_object_get(sec, key);
    *out = def;
    if (v == NULL)
        return PL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        err_set(err, cap, key, "must be an integer in range");
        return PL_ERR_CONFIG;
    }
    *out = (uint64_t)json_integer_value(v);
    return PL_OK;
}

static int check_keys(const json_t *sec, char *err, size_t cap)
{
    static const char *const known[] = {"signing_key",
                                        "eim_id",
                                        "claimer",
                                        "address",
                                        "port",
                                        "path",
                                        "security",
                                        "certificate",
                                        "private_key",
                                        "client_ca",
                                        "psk_hint",
                                        "insecure_plain_udp",
                                        "max_body",
                                        "result_timeout_ms",
                                        "requery_timeout_ms",
                                        "port_file", /* read by provline-eim serve */
                                        NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)sec, key, v)
    {
        size_t i = 0;
        while (known[i] != NULL && strcmp(known[i], key) != 0)
            i++;
        if (known[i] == NULL) {
            err_set(err, cap, key, "unknown member");
            return PL_ERR_CONFIG;
        }
    }
    return PL_OK;
}

int pl_eim_esipa_service_start(const struct pl_eim_esipa_service_options *o,
                               struct pl_eim_esipa_service **out, char *err, size_t cap)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_esipa_service *svc = NULL;
    const json_t *sec;
    char key_path[PATH_MAX_LEN], cert_path[PATH_MAX_LEN], pkey_path[PATH_MAX_LEN],
        ca_path[PATH_MAX_LEN];
    const char *s_key, *s_eim, *s_claimer, *s_addr, *s_path, *s_cert, *s_pkey, *s_ca, *s_hint;
    uint64_t port, max_body, rto, qto;
    if (out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (o == NULL || o->section == NULL || (o->store == NULL && !o->check_only) || o->n_roots == 0
        || o->n_roots > PL_EIM_MAX_CI_ROOTS) {
        err_set(err, cap, "section", "missing, or no CI root configured");
        return PL_ERR_INVAL;
    }
    sec = o->section;
    if (!json_is_object(sec)) {
        err_set(err, cap, "section", "must be an object");
        return PL_ERR_CONFIG;
    }
    if ((rc = check_keys(sec, err, cap)) != PL_OK)
        return rc;
    if ((rc = get_str(sec, "signing_key", NULL, &s_key, err, cap)) != PL_OK
        || (rc = get_str(sec, "eim_id", o->default_eim_id, &s_eim, err, cap)) != PL_OK
        || (rc = get_str(sec, "claimer", "eim", &s_claimer, err, cap)) != PL_OK
        || (rc = get_str(sec, "address", "127.0.0.1", &s_addr, err, cap)) != PL_OK
        || (rc = get_str(sec, "path", PL_EIM_ESIPA_DEFAULT_PATH, &s_path, err, cap)) != PL_OK
        || (rc = get_str(sec, "certificate", NULL, &s_cert, err, cap)) != PL_OK
        || (rc = get_str(sec, "private_key", NULL, &s_pkey, err, cap)) != PL_OK
        || (rc = get_str(sec, "client_ca", NULL, &s_ca, err, cap)) != PL_OK
        || (rc = get_str(sec, "psk_hint", NULL, &s_hint, err, cap)) != PL_OK
        || (rc = get_uint(sec, "port", 5684, 65535, &port, err, cap)) != PL_OK
        || (rc = get_uint(sec, "max_body", 0, PL_EIM_ESIPA_MAX_BODY_LIMIT, &max_body, err, cap))
               != PL_OK
        || (rc = get_uint(sec, "result_timeout_ms", 0, UINT32_MAX, &rto, err, cap)) != PL_OK
        || (rc = get_uint(sec, "requery_timeout_ms", 0, UINT32_MAX, &qto, err, cap)) != PL_OK)
        return rc;
    if (s_key == NULL) {
        err_set(err, cap, "signing_key", "required");
        return PL_ERR_CONFIG;
    }
    if (s_eim == NULL) {
        err_set(err, cap, "eim_id", "required (no eIM identity configured)");
        return PL_ERR_CONFIG;
    }
    unsigned security = PL_EIM_ESIPA_SEC_PSK;
    const json_t *sv = json_object_get(sec, "security");
    if (sv != NULL) {
        size_t i;
        json_t *e;
        if (!json_is_array(sv)) {
            err_set(err, cap, "security", "must be an array of \"psk\" / \"pki\"");
            return PL_ERR_CONFIG;
        }
        security = 0;
        json_array_foreach((json_t *)(uintptr_t)sv, i, e)
        {
            const char *m = json_string_value(e);
            if (m != NULL && strcmp(m, "psk") == 0) {
                security |= PL_EIM_ESIPA_SEC_PSK;
            } else if (m != NULL && strcmp(m, "pki") == 0) {
                security |= PL_EIM_ESIPA_SEC_PKI;
            } else {
                err_set(err, cap, "security", "must be an array of \"psk\" / \"pki\"");
                return PL_ERR_CONFIG;
            }
        }
    }
    const json_t *pu = json_object_get(sec, "insecure_plain_udp");
    if (pu != NULL && !json_is_boolean(pu)) {
        err_set(err, cap, "insecure_plain_udp", "must be true or false");
        return PL_ERR_CONFIG;
    }
    bool plain = pu != NULL && json_is_true(pu);
    if ((plain && security != 0) || (!plain && security == 0)) {
        err_set(err, cap, "security",
                "plain UDP needs \"security\": [] and "
                "\"insecure_plain_udp\": true, and nothing else does");
        return PL_ERR_CONFIG;
    }
    if ((security & PL_EIM_ESIPA_SEC_PKI) && (s_cert == NULL || s_pkey == NULL)) {
        err_set(err, cap, "certificate", "pki needs certificate and private_key");
        return PL_ERR_CONFIG;
    }
    if (path_of(o->base_dir, s_key, key_path) != PL_OK
        || (s_cert != NULL && path_of(o->base_dir, s_cert, cert_path) != PL_OK)
        || (s_pkey != NULL && path_of(o->base_dir, s_pkey, pkey_path) != PL_OK)
        || (s_ca != NULL && path_of(o->base_dir, s_ca, ca_path) != PL_OK)) {
        err_set(err, cap, "signing_key", "path too long");
        return PL_ERR_CONFIG;
    }

    svc = calloc(1, sizeof(*svc));
    if (svc == NULL)
        return PL_ERR_NOMEM;
    rc = load_key(key_path, &svc->key);
    if (rc != PL_OK) {
        err_set(err, cap, "signing_key", "cannot read a private EC key from the file");
        goto out;
    }
    for (size_t i = 0; i < o->n_roots; i++) {
        rc = pl_cert_parse(o->roots[i], o->root_len[i], &svc->roots[i]);
        if (rc != PL_OK) {
            err_set(err, cap, "roots", "a CI certificate does not parse");
            goto out;
        }
        svc->n_roots++;
    }
    if (o->check_only) {
        /* serve --check-config: the files must be there and readable; nothing starts. */
        const char *const files[] = {s_cert != NULL ? cert_path : NULL,
                                     s_pkey != NULL ? pkey_path : NULL,
                                     s_ca != NULL ? ca_path : NULL};
        const char *const names[] = {"certificate", "private_key", "client_ca"};
        for (size_t i = 0; i < 3; i++) {
            FILE *f = files[i] != NULL ? fopen(files[i], "rb") : NULL;
            if (files[i] != NULL && f == NULL) {
                err_set(err, cap, names[i], "cannot open the file");
                rc = PL_ERR_CONFIG;
                goto out;
            }
            if (f != NULL)
                fclose(f);
        }
        rc = PL_OK;
        goto out;
    }
    struct pl_eim_engine_config ec;
    memset(&ec, 0, sizeof(ec));
    ec.eim_id = s_eim;
    ec.signing_key = svc->key;
    ec.ci_roots = (const struct pl_cert *const *)svc->roots;
    ec.n_ci_roots = svc->n_roots;
    ec.claimer = s_claimer;
    ec.result_timeout_ms = rto;
    ec.requery_timeout_ms = qto;
    ec.log = o->log;
    rc = pl_eim_engine_new(o->store, &ec, &svc->eng);
    if (rc != PL_OK) {
        err_set(err, cap, "eim_id",
                "engine refused the settings (eimId 1..128 bytes, claimer "
                "1..64 of [A-Za-z0-9._@-])");
        goto out;
    }
    struct pl_eim_esipa_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.address = s_addr;
    sc.port = (uint16_t)port;
    sc.path = s_path;
    sc.security = security;
    sc.insecure_plain_udp = plain;
    sc.cert_file = s_cert != NULL ? cert_path : NULL;
    sc.key_file = s_pkey != NULL ? pkey_path : NULL;
    sc.ca_file = s_ca != NULL ? ca_path : NULL;
    sc.psk_hint = s_hint;
    sc.max_body = (size_t)max_body;
    rc = pl_eim_esipa_start(&sc, svc->eng, o->store, &svc->srv);
    if (rc != PL_OK) {
        err_set(err, cap, "address",
                rc == PL_ERR_IO       ? "cannot bind the UDP port"
                : rc == PL_ERR_CONFIG ? "certificate or key file unusable"
                                      : "invalid endpoint settings");
        goto out;
    }
    *out = svc;
    svc = NULL;
    rc = PL_OK;
out:
    pl_eim_esipa_service_stop(svc);
    return rc;
}

int pl_eim_esipa_service_poll(struct pl_eim_esipa_service *svc, unsigned timeout_ms)
{
    return svc != NULL ? pl_eim_esipa_poll(svc->srv, timeout_ms) : PL_ERR_INVAL;
}

int pl_eim_esipa_service_run(struct pl_eim_esipa_service *svc, const atomic_int *stop)
{
    if (svc == NULL || stop == NULL)
        return PL_ERR_INVAL;
    while (atomic_load(stop) == 0) {
        int rc = pl_eim_esipa_poll(svc->srv, 200);
        if (rc != PL_OK)
            return rc;
    }
    return PL_OK;
}

uint16_t pl_eim_esipa_service_port(const struct pl_eim_esipa_service *svc)
{
    return svc != NULL ? pl_eim_esipa_port(svc->srv) : 0;
}

void pl_eim_esipa_service_stop(struct pl_eim_esipa_service *svc)
{
    if (svc == NULL)
        return;
    pl_eim_esipa_stop(svc->srv);
    pl_eim_engine_free(svc->eng);
    for (size_t i = 0; i < svc->n_roots; i++)
        pl_cert_free(svc->roots[i]);
    pl_eckey_free(svc->key);
    pl_memzero(svc, sizeof(*svc));
    free(svc);
}
