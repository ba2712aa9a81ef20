/* The eIM northbound API: HTTP + JSON over libmicrohttpd (api_http.h, docs/eim-api.md).
 * Sources: RFC 9110 (status codes, methods), RFC 6750 §2.1 (Authorization: Bearer) and §3
 * (WWW-Authenticate), RFC 8259 (JSON), RFC 4648 §4 (base64). GSMA SGP.32 v1.2 for the
 * operation kinds (§2.11.1) and the bootstrap data (§2.11.1.1.1 EimConfigurationData,
 * §5.9.4 AddInitialEim 'BF57'); operation parameters use the engine's names
 * (eim_package*.c). The station batch format is defined in docs/eim-api.md §Bulk import. */
#define _POSIX_C_SOURCE 200809L
#include "provline/eim/api_http.h"

#include "provline/protocol/b64.h"
#include "eim_engine_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define LOG_ERR  3
#define LOG_WARN 4
#define LOG_INFO 6

#define MAX_LIST     1000u
#define MAX_PENDING  64u
#define HARD_DISCARD (64u << 20) /* bodies past the cap are read and dropped up to this */
#define ERR_CAP      256u
#define BULK_PATH    "/v1/devices/bulk"
#define BATCH_FORMAT "provline-station-batch/1"

struct pl_eim_api {
    struct MHD_Daemon *d;
    struct pl_eim_api_options o;
    uint16_t port;
};

struct req_ctx {
    char *body;
    size_t len;
    size_t limit;
    bool too_big;
};

/* What a handler produces: a status and a JSON body (owned), optional headers. */
struct reply {
    unsigned status;
    json_t *body;
    char location[64];
    const char *allow;
    bool challenge; /* WWW-Authenticate on 401 */
};

enum perm {
    PERM_READ = 1,      /* reader, operator, admin */
    PERM_REGISTER = 2,  /* station, operator, admin */
    PERM_QUEUE = 3,     /* operator, admin */
    PERM_BOOTSTRAP = 4, /* everyone authenticated */
    PERM_ADMIN = 5,     /* admin */
};

static bool allowed(enum pl_eim_role role, enum perm p)
{
    switch (p) {
    case PERM_READ:
        return role == PL_EIM_ROLE_READER || role == PL_EIM_ROLE_OPERATOR
               || role == PL_EIM_ROLE_ADMIN;
    case PERM_REGISTER:
        return role == PL_EIM_ROLE_STATION || role == PL_EIM_ROLE_OPERATOR
               || role == PL_EIM_ROLE_ADMIN;
    case PERM_QUEUE:
        return role == PL_EIM_ROLE_OPERATOR || role == PL_EIM_ROLE_ADMIN;
    case PERM_BOOTSTRAP:
        return true;
    case PERM_ADMIN:
        return role == PL_EIM_ROLE_ADMIN;
    default:
        return false;
    }
}

static void logf_(const struct pl_eim_api *api, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void logf_(const struct pl_eim_api *api, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (api->o.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    api->o.log(api->o.log_user, level, line);
}

/* ---- replies ---- */

static void set_error(struct reply *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Makes s valid UTF-8 in place (RFC 3629, as jansson requires of a string): every byte that
 * does not start a well-formed sequence becomes '?'. Messages quote request bytes - a query
 * value is any bytes (GET /v1/bootstrap?eimId=%CE), a member name is cut at ERR_CAP, maybe
 * inside a character - and json_pack refuses such text: the answer was a 500 "out of
 * memory" (found by tests/fuzz/fuzz_eim_api.c). */
static void utf8_repair(char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (len > 0 && len <= n - i && pl_der_utf8_valid((const uint8_t *)s + i, len)) {
            i += len;
            continue;
        }
        s[i++] = '?';
    }
}

static void set_error(struct reply *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg);
    json_decref(r->body);
    r->status = status;
    r->body = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

static void set_ok(struct reply *r, unsigned status, json_t *body)
{
    json_decref(r->body);
    r->status = status;
    r->body = body;
    if (body == NULL)
        set_error(r, 500, "internal", "out of memory");
}

static void store_error(struct reply *r, struct pl_eim_store *s, int rc)
{
    if (rc == PL_ERR_NOMEM) {
        set_error(r, 500, "internal", "out of memory");
        return;
    }
    (void)s;
    set_error(r, 500, "store", "store failure: %s", pl_strerror(rc));
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char *h = NULL;
    json_t *j = NULL;
    if (p == NULL)
        return json_null();
    h = malloc(2 * n + 1);
    if (h == NULL)
        return NULL;
    if (pl_hex_encode(p, n, h, 2 * n + 1) == PL_OK)
        j = json_string(h);
    free(h);
    return j;
}

static json_t *b64_json(const uint8_t *p, size_t n)
{
    char *s = NULL;
    json_t *j = NULL;
    if (p == NULL)
        return json_null();
    s = malloc(pl_b64_len(n) + 1);
    if (s == NULL)
        return NULL;
    if (pl_b64_encode(p, n, s, pl_b64_len(n) + 1) == PL_OK)
        j = json_string(s);
    free(s);
    return j;
}

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* Parses stored JSON text (written by us) back for a reply; [] when absent or damaged. */
static json_t *stored_json(const char *text)
{
    json_t *j = NULL;
    if (text == NULL)
        return json_array();
    j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    return j ? j : json_array();
}

/* ---- input checks ---- */

static bool parse_eid(const char *s, uint8_t eid[PL_EIM_EID_LEN])
{
    size_t n = 0;
    if (s == NULL || strlen(s) != 2 * PL_EIM_EID_LEN)
        return false;
    return pl_hex_decode(s, eid, PL_EIM_EID_LEN, &n) == PL_OK && n == PL_EIM_EID_LEN;
}

static void eid_hex(const uint8_t eid[PL_EIM_EID_LEN], char out[2 * PL_EIM_EID_LEN + 1])
{
    if (pl_hex_encode(eid, PL_EIM_EID_LEN, out, 2 * PL_EIM_EID_LEN + 1) != PL_OK)
        out[0] = '\0';
}

/* Every key of obj must be in allowed (keys starting "x_" are extensions and ignored). */
static bool only_keys(json_t *obj, const char *const *allowed_keys, const char *path, char *err,
                      size_t cap)
{
    const char *key = NULL;
    json_t *v = NULL;
    json_object_foreach(obj, key, v)
    {
        bool ok = strncmp(key, "x_", 2) == 0;
        (void)v;
        for (size_t i = 0; allowed_keys[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed_keys[i]) == 0;
        if (!ok) {
            snprintf(err, cap, "%s%s%s: unknown member", path, path[0] ? "." : "", key);
            return false;
        }
    }
    return true;
}

/* A string member: absent -> *out NULL (error if required). */
static bool get_string(json_t *obj, const char *key, bool required, size_t min, size_t max,
                       const char **out, const char *path, char *err, size_t cap)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL) {
        if (required)
            snprintf(err, cap, "%s%s%s: required", path, path[0] ? "." : "", key);
        return !required;
    }
    if (!json_is_string(v) || json_string_length(v) < min || json_string_length(v) > max
        || strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(err, cap, "%s%s%s: a string of %zu..%zu bytes", path, path[0] ? "." : "", key, min,
                 max);
        return false;
    }
    for (const char *c = json_string_value(v); *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20) {
            snprintf(err, cap, "%s%s%s: control characters", path, path[0] ? "." : "", key);
            return false;
        }
    }
    *out = json_string_value(v);
    return true;
}

static bool get_b64(json_t *obj, const char *key, size_t max, uint8_t **out, size_t *len,
                    const char *path, char *err, size_t cap)
{
    const char *s = NULL;
    *out = NULL;
    *len = 0;
    if (!get_string(obj, key, false, 4, max * 2, &s, path, err, cap))
        return false;
    if (s == NULL)
        return true;
    if (pl_b64_decode(s, strlen(s), max, out, len) != PL_OK) {
        snprintf(err, cap, "%s%s%s: not base64 (RFC 4648, padded) of at most %zu bytes", path,
                 path[0] ? "." : "", key, max);
        return false;
    }
    return true;
}

static bool get_hexbytes(json_t *obj, const char *key, size_t min, size_t max, uint8_t *out,
                         size_t *len, bool *present, const char *path, char *err, size_t cap)
{
    const char *s = NULL;
    *present = false;
    if (!get_string(obj, key, false, 2 * min, 2 * max, &s, path, err, cap))
        return false;
    if (s == NULL)
        return true;
    if (pl_hex_decode(s, out, max, len) != PL_OK || *len < min) {
        snprintf(err, cap, "%s%s%s: hex, %zu..%zu bytes", path, path[0] ? "." : "", key, min, max);
        return false;
    }
    *present = true;
    return true;
}

/* An ICCID as the text of the 10 bytes of a '5A' Iccid (EF.ICCID nibble order,
 * provline/protocol/iccid.h): 18..20 characters, digits and 'F' (a non-digit nibble)
 * anywhere, at least 18 digits - exactly what the engine parses and prints, so any profile
 * the eUICC reports can be registered and named in an operation. */
static bool iccid_ok(const char *s)
{
    uint8_t bytes[PL_ICCID_LEN];
    return pl_iccid_parse(s, bytes) == PL_OK;
}

/* ---- devices ---- */

static char *dup_s(const char *s)
{
    size_t n = 0;
    char *d = NULL;
    if (s == NULL)
        return NULL;
    n = strlen(s);
    d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

/* Checks CERT.EUICC against the EID and, when CI roots are configured, its chain. */
static bool check_certs(const struct pl_eim_api *api, const struct pl_eim_device *d,
                        const char *path, char *err, size_t cap)
{
    struct pl_cert *euicc = NULL, *eum = NULL;
    uint8_t eid[PL_CERT_EID_LEN];
    bool ok = false;
    const char *sep = path[0] ? "." : "";

    if (d->eum_cert != NULL && pl_cert_parse(d->eum_cert, d->eum_cert_len, &eum) != PL_OK) {
        snprintf(err, cap, "%s%seum_certificate: not an X.509 certificate (strict DER)", path, sep);
        goto out;
    }
    if (eum != NULL && !pl_cert_is_ca(eum)) {
        snprintf(err, cap, "%s%seum_certificate: not a CA certificate", path, sep);
        goto out;
    }
    if (d->euicc_cert == NULL) {
        ok = true;
        goto out;
    }
    if (pl_cert_parse(d->euicc_cert, d->euicc_cert_len, &euicc) != PL_OK) {
        snprintf(err, cap, "%s%seuicc_certificate: not an X.509 certificate (strict DER)", path,
                 sep);
        goto out;
    }
    if (pl_cert_eid(euicc, eid) != PL_OK || memcmp(eid, d->eid, PL_EIM_EID_LEN) != 0) {
        snprintf(err, cap, "%s%seuicc_certificate: its EID (subject serialNumber) is not %s", path,
                 sep, "the device's eid");
        goto out;
    }
    if (api->o.cfg->n_roots > 0) {
        int last = PL_ERR_CERT_CHAIN;
        if (eum == NULL) {
            snprintf(err, cap, "%s%seum_certificate: required to verify the eUICC chain", path,
                     sep);
            goto out;
        }
        for (size_t i = 0; i < api->o.cfg->n_roots && last != PL_OK; i++) {
            struct pl_cert *root = NULL;
            const struct pl_cert *mid[1] = {eum};
            if (pl_cert_parse(api->o.cfg->roots[i], api->o.cfg->root_len[i], &root) != PL_OK)
                continue;
            last =
                pl_cert_verify_chain(euicc, mid, 1, root, PL_CERT_ROLE_EUICC, (int64_t)time(NULL));
            pl_cert_free(root);
        }
        if (last != PL_OK) {
            snprintf(err, cap, "%s%seuicc_certificate: chain to the configured CI: %s", path, sep,
                     pl_strerror(last));
            goto out;
        }
    }
    ok = true;
out:
    pl_cert_free(euicc);
    pl_cert_free(eum);
    return ok;
}

/* Common members of a device (POST /v1/devices and a batch entry) into d (heap members,
 * pl_eim_device_clear). eum_refs: the batch's named EUM certificates (or NULL). */
static bool parse_device(const struct pl_eim_api *api, json_t *obj, json_t *eum_refs,
                         const char *default_eim, const char *path, struct pl_eim_device *d,
                         char *err, size_t cap)
{
    const char *s = NULL, *sep = path[0] ? "." : "";
    json_t *v = NULL;
    bool present = false;
    uint8_t key[PL_EIM_PSK_KEY_MAX];
    size_t klen = 0, flen = 0;
    const struct pl_eim_identity *id = NULL;

    memset(d, 0, sizeof(*d));
    if (!json_is_object(obj)) {
        snprintf(err, cap, "%s: must be an object", path[0] ? path : "body");
        return false;
    }
    if (!get_string(obj, "eid", true, 32, 32, &s, path, err, cap))
        return false;
    if (!parse_eid(s, d->eid)) {
        snprintf(err, cap, "%s%seid: 32 hex digits", path, sep);
        return false;
    }
    if (!get_b64(obj, "euicc_certificate", PL_EIM_CERT_MAX, &d->euicc_cert, &d->euicc_cert_len,
                 path, err, cap)
        || !get_b64(obj, "eum_certificate", PL_EIM_CERT_MAX, &d->eum_cert, &d->eum_cert_len, path,
                    err, cap))
        return false;
    if (!get_string(obj, "eum_certificate_ref", false, 1, 64, &s, path, err, cap))
        return false;
    if (s != NULL) {
        json_t *ref = eum_refs ? json_object_get(eum_refs, s) : NULL;
        if (d->eum_cert != NULL || ref == NULL || !json_is_string(ref)
            || pl_b64_decode(json_string_value(ref), json_string_length(ref), PL_EIM_CERT_MAX,
                                 &d->eum_cert, &d->eum_cert_len)
                   != PL_OK) {
            snprintf(err, cap,
                     "%s%seum_certificate_ref: names no entry of eum_certificates (or both forms"
                     " given)",
                     path, sep);
            return false;
        }
    }
    if (!get_string(obj, "eim_id", false, 1, PL_EIM_EIM_ID_MAX, &s, path, err, cap))
        return false;
    id = pl_eim_config_identity(api->o.cfg, s ? s : default_eim);
    if (id == NULL) {
        snprintf(err, cap, "%s%seim_id: not an eIM of this server", path, sep);
        return false;
    }
    d->eim_id = dup_s(id->eim_id);
    d->counter = id->has_counter ? id->counter_value : 0;
    d->has_assoc_token = id->has_association_token && id->association_token >= 0;
    d->assoc_token = id->association_token;
    v = json_object_get(obj, "counter_value");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > (json_int_t)PL_EIM_COUNTER_DEFAULT_MAX) {
            snprintf(err, cap, "%s%scounter_value: an integer in 0..%u", path, sep,
                     PL_EIM_COUNTER_DEFAULT_MAX);
            return false;
        }
        d->counter = (uint32_t)json_integer_value(v);
    }
    v = json_object_get(obj, "association_token");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            snprintf(err, cap, "%s%sassociation_token: a non-negative integer", path, sep);
            return false;
        }
        d->has_assoc_token = true;
        d->assoc_token = (int64_t)json_integer_value(v);
    }
    if (!get_string(obj, "psk_identity", false, 1, PL_EIM_PSK_ID_MAX, &s, path, err, cap))
        return false;
    d->psk_identity = dup_s(s);
    if (!get_hexbytes(obj, "psk_key", 16, PL_EIM_PSK_KEY_MAX, key, &klen, &present, path, err, cap))
        return false;
    if (present) {
        d->psk_key = malloc(klen);
        if (d->psk_key == NULL) {
            snprintf(err, cap, "out of memory");
            return false;
        }
        memcpy(d->psk_key, key, klen);
        d->psk_key_len = klen;
    }
    if ((d->psk_key != NULL) != (d->psk_identity != NULL)) {
        snprintf(err, cap, "%s%spsk_identity, psk_key: give both or neither", path, sep);
        return false;
    }
    if (!get_hexbytes(obj, "cert_fingerprint", PL_EIM_FPR_LEN, PL_EIM_FPR_LEN, d->cert_fpr, &flen,
                      &d->has_cert_fpr, path, err, cap))
        return false;
    return check_certs(api, d, path, err, cap);
}

/* profiles: [{"iccid": "...", "state": "enabled"|"disabled", ...}] as given (validated). */
static bool parse_profiles(json_t *obj, const char *path, struct pl_eim_device *d, char *err,
                           size_t cap)
{
    static const char *const keys[] = {"iccid", "state", "class", "nickname", "source", NULL};
    json_t *list = json_object_get(obj, "profiles"), *p = NULL;
    size_t i = 0;
    if (list == NULL)
        return true;
    if (!json_is_array(list) || json_array_size(list) > 32) {
        snprintf(err, cap, "%s%sprofiles: an array of at most 32 objects", path,
                 path[0] ? "." : "");
        return false;
    }
    json_array_foreach(list, i, p)
    {
        char where[96];
        const char *s = NULL;
        snprintf(where, sizeof(where), "%s%sprofiles[%zu]", path, path[0] ? "." : "", i);
        if (!json_is_object(p)) {
            snprintf(err, cap, "%s: must be an object", where);
            return false;
        }
        if (!only_keys(p, keys, where, err, cap)
            || !get_string(p, "iccid", true, 18, 20, &s, where, err, cap))
            return false;
        if (!iccid_ok(s)) {
            snprintf(err, cap, "%s.iccid: 18..20 digits or F (EF.ICCID nibble order)", where);
            return false;
        }
        if (!get_string(p, "state", false, 1, 16, &s, where, err, cap))
            return false;
        if (s != NULL && strcmp(s, "enabled") != 0 && strcmp(s, "disabled") != 0) {
            snprintf(err, cap, "%s.state: \"enabled\" or \"disabled\"", where);
            return false;
        }
        if (!get_string(p, "class", false, 1, 16, &s, where, err, cap)
            || !get_string(p, "nickname", false, 1, 64, &s, where, err, cap)
            || !get_string(p, "source", false, 1, 32, &s, where, err, cap))
            return false;
    }
    d->profiles_json = json_dumps(list, JSON_COMPACT);
    return d->profiles_json != NULL;
}

static void handle_register(struct pl_eim_api *api, const char *actor, json_t *body,
                            struct reply *r)
{
    static const char *const keys[] = {"eid",
                                       "euicc_certificate",
                                       "eum_certificate",
                                       "eim_id",
                                       "counter_value",
                                       "association_token",
                                       "psk_identity",
                                       "psk_key",
                                       "cert_fingerprint",
                                       "profiles",
                                       NULL};
    struct pl_eim_device d;
    enum pl_eim_put_result res = PL_EIM_PUT_CONFLICT;
    char err[ERR_CAP] = "", eid[33];
    int rc;

    memset(&d, 0, sizeof(d));
    if (!json_is_object(body) || !only_keys(body, keys, "", err, sizeof(err))
        || !parse_device(api, body, NULL, NULL, "", &d, err, sizeof(err))
        || !parse_profiles(body, "", &d, err, sizeof(err))) {
        set_error(r, 400, "invalid", "%s", err[0] ? err : "body: must be an object");
        goto out;
    }
    rc = pl_eim_store_device_put_many(api->o.store, actor, &d, 1, &res);
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        goto out;
    }
    eid_hex(d.eid, eid);
    if (res == PL_EIM_PUT_CONFLICT) {
        set_error(r, 409, "conflict",
                  "device %s is registered with other certificates (or its psk_identity is "
                  "taken)",
                  eid);
        goto out;
    }
    set_ok(r, res == PL_EIM_PUT_CREATED ? 201 : 200,
           json_pack("{s:s,s:b}", "eid", eid, "created", res == PL_EIM_PUT_CREATED));
    snprintf(r->location, sizeof(r->location), "/v1/devices/%s", eid);
    logf_(api, LOG_INFO, "event=device.register eid=%s created=%d actor=%s", eid,
          res == PL_EIM_PUT_CREATED, actor);
out:
    pl_eim_device_clear(&d);
}

static void handle_bulk(struct pl_eim_api *api, const char *actor, json_t *body, struct reply *r)
{
    static const char *const top[] = {"format", "batch_id",         "station", "created_at",
                                      "eim_id", "eum_certificates", "devices", NULL};
    static const char *const dev_keys[] = {"eid",
                                           "iccid",
                                           "status",
                                           "profile_state",
                                           "euicc_certificate",
                                           "eum_certificate",
                                           "eum_certificate_ref",
                                           "eim_id",
                                           "counter_value",
                                           "association_token",
                                           "psk_identity",
                                           "psk_key",
                                           "cert_fingerprint",
                                           "fixture",
                                           "completed_at",
                                           NULL};
    char err[ERR_CAP] = "";
    const char *s = NULL, *batch = NULL, *default_eim = NULL;
    json_t *devs = NULL, *refs = NULL, *item = NULL, *conflicts = NULL;
    struct pl_eim_device *d = NULL;
    enum pl_eim_put_result *res = NULL;
    size_t n = 0, idx = 0, take = 0, skipped = 0, created = 0, unchanged = 0;
    int rc;

    if (!json_is_object(body) || !only_keys(body, top, "", err, sizeof(err))) {
        set_error(r, 400, "invalid", "%s", err[0] ? err : "body: must be an object");
        return;
    }
    if (!get_string(body, "format", true, 1, 64, &s, "", err, sizeof(err))
        || !get_string(body, "batch_id", true, 1, 128, &batch, "", err, sizeof(err))
        || !get_string(body, "station", false, 1, 128, &s, "", err, sizeof(err))
        || !get_string(body, "created_at", false, 1, 64, &s, "", err, sizeof(err))
        || !get_string(body, "eim_id", false, 1, PL_EIM_EIM_ID_MAX, &default_eim, "", err,
                       sizeof(err))) {
        set_error(r, 400, "invalid", "%s", err);
        return;
    }
    if (strcmp(json_string_value(json_object_get(body, "format")), BATCH_FORMAT) != 0) {
        set_error(r, 400, "invalid", "format: must be \"%s\"", BATCH_FORMAT);
        return;
    }
    refs = json_object_get(body, "eum_certificates");
    if (refs != NULL && (!json_is_object(refs) || json_object_size(refs) > 64)) {
        set_error(r, 400, "invalid",
                  "eum_certificates: an object of at most 64 named certificates");
        return;
    }
    devs = json_object_get(body, "devices");
    if (!json_is_array(devs) || json_array_size(devs) == 0
        || json_array_size(devs) > api->o.cfg->max_bulk_devices) {
        set_error(r, 400, "invalid", "devices: an array of 1..%zu entries",
                  api->o.cfg->max_bulk_devices);
        return;
    }
    n = json_array_size(devs);
    d = calloc(n, sizeof(*d));
    res = calloc(n, sizeof(*res));
    conflicts = json_array();
    if (d == NULL || res == NULL || conflicts == NULL) {
        set_error(r, 500, "internal", "out of memory");
        goto out;
    }
    /* Everything is checked before anything is stored: one bad entry rejects the batch. */
    json_array_foreach(devs, idx, item)
    {
        char path[32];
        const char *status = NULL, *iccid = NULL, *pstate = NULL;
        snprintf(path, sizeof(path), "devices[%zu]", idx);
        if (!json_is_object(item)) {
            set_error(r, 400, "invalid", "%s: must be an object", path);
            goto out;
        }
        if (!only_keys(item, dev_keys, path, err, sizeof(err))
            || !get_string(item, "status", true, 1, 32, &status, path, err, sizeof(err))
            || !get_string(item, "iccid", false, 18, 20, &iccid, path, err, sizeof(err))
            || !get_string(item, "profile_state", false, 1, 16, &pstate, path, err, sizeof(err))
            || !get_string(item, "fixture", false, 1, 128, &s, path, err, sizeof(err))
            || !get_string(item, "completed_at", false, 1, 64, &s, path, err, sizeof(err))) {
            set_error(r, 400, "invalid", "%s", err);
            goto out;
        }
        if (strcmp(status, "installed") != 0 && strcmp(status, "failed") != 0
            && strcmp(status, "possibly_used") != 0) {
            set_error(r, 400, "invalid",
                      "%s.status: \"installed\", \"failed\" or \"possibly_used\"", path);
            goto out;
        }
        if (iccid != NULL && !iccid_ok(iccid)) {
            set_error(r, 400, "invalid", "%s.iccid: 18..20 digits or F (EF.ICCID nibble order)",
                      path);
            goto out;
        }
        if (pstate != NULL && strcmp(pstate, "enabled") != 0 && strcmp(pstate, "disabled") != 0) {
            set_error(r, 400, "invalid", "%s.profile_state: \"enabled\" or \"disabled\"", path);
            goto out;
        }
        if (!parse_device(api, item, refs, default_eim, path, &d[take], err, sizeof(err))) {
            pl_eim_device_clear(&d[take]);
            set_error(r, 400, "invalid", "%s", err);
            goto out;
        }
        for (size_t k = 0; k < take; k++) {
            if (memcmp(d[k].eid, d[take].eid, PL_EIM_EID_LEN) == 0) {
                pl_eim_device_clear(&d[take]);
                set_error(r, 400, "invalid", "%s.eid: appears twice in the batch", path);
                goto out;
            }
        }
        if (strcmp(status, "installed") != 0) {
            pl_eim_device_clear(&d[take]); /* only devices that left the line with a profile */
            skipped++;
            continue;
        }
        if (iccid != NULL) {
            json_t *prof = json_pack("[{s:s,s:s}]", "iccid", iccid, "source", "factory");
            if (prof != NULL && pstate != NULL)
                json_object_set_new(json_array_get(prof, 0), "state", json_string(pstate));
            d[take].profiles_json = prof ? json_dumps(prof, JSON_COMPACT) : NULL;
            json_decref(prof);
            if (d[take].profiles_json == NULL) {
                take++;
                set_error(r, 500, "internal", "out of memory");
                goto out;
            }
        }
        take++;
    }
    rc = pl_eim_store_device_put_many(api->o.store, actor, d, take, res);
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        goto out;
    }
    for (size_t i = 0; i < take; i++) {
        char eid[33];
        if (res[i] == PL_EIM_PUT_CREATED) {
            created++;
        } else if (res[i] == PL_EIM_PUT_UNCHANGED) {
            unchanged++;
        } else {
            eid_hex(d[i].eid, eid);
            json_array_append_new(conflicts, json_string(eid));
        }
    }
    set_ok(r, 200,
           json_pack("{s:s,s:I,s:I,s:I,s:I,s:O}", "batch_id", batch, "received", (json_int_t)n,
                     "created", (json_int_t)created, "unchanged", (json_int_t)unchanged, "skipped",
                     (json_int_t)skipped, "conflicts", conflicts));
    logf_(api, LOG_INFO,
          "event=device.bulk batch=%s received=%zu created=%zu unchanged=%zu skipped=%zu "
          "conflicts=%zu actor=%s",
          batch, n, created, unchanged, skipped, json_array_size(conflicts), actor);
out:
    for (size_t i = 0; i < take; i++)
        pl_eim_device_clear(&d[i]);
    free(d);
    free(res);
    json_decref(conflicts);
}

static json_t *op_summaries(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                            unsigned mask, int *rc)
{
    struct pl_eim_op_summary *sum = calloc(MAX_PENDING, sizeof(*sum));
    size_t n = 0;
    json_t *arr = NULL;
    if (sum == NULL) {
        *rc = PL_ERR_NOMEM;
        return NULL;
    }
    *rc = pl_eim_store_op_list(s, eid, mask, sum, MAX_PENDING, &n);
    if (*rc == PL_OK) {
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:I}", "id", (json_int_t)sum[i].id,
                                                 "kind", pl_eim_op_kind_name(sum[i].kind), "state",
                                                 pl_eim_op_state_name(sum[i].state), "created_ms",
                                                 (json_int_t)sum[i].created_ms));
        }
        if (arr == NULL)
            *rc = PL_ERR_NOMEM;
    }
    free(sum);
    return arr;
}

static void handle_show_device(struct pl_eim_api *api, const uint8_t eid[PL_EIM_EID_LEN],
                               struct reply *r)
{
    struct pl_eim_device d;
    json_t *pending = NULL, *o = NULL;
    char hex[33];
    int rc = pl_eim_store_device_get(api->o.store, eid, &d);
    const unsigned mask = (1u << PL_EIM_OPS_QUEUED) | (1u << PL_EIM_OPS_CLAIMED)
                          | (1u << PL_EIM_OPS_SENT) | (1u << PL_EIM_OPS_REQUERY);

    eid_hex(eid, hex);
    if (rc == PL_ERR_NOT_FOUND) {
        set_error(r, 404, "not_found", "no device %s", hex);
        return;
    }
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        return;
    }
    pending = op_summaries(api->o.store, eid, mask, &rc);
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        goto out;
    }
    o = json_pack(
        "{s:s,s:I,s:{s:o,s:o},s:o,s:o,s:{s:o,s:b,s:o},s:b,s:b,s:I,s:I,s:o,s:O}", "eid", hex,
        "counter", (json_int_t)d.counter, "association", "eim_id", opt_str(d.eim_id),
        "association_token", d.has_assoc_token ? json_integer(d.assoc_token) : json_null(), "eims",
        stored_json(d.eims_json), "profiles", stored_json(d.profiles_json), "credentials",
        "psk_identity", opt_str(d.psk_identity), "has_psk_key", d.psk_key != NULL,
        "cert_fingerprint", d.has_cert_fpr ? hex_json(d.cert_fpr, PL_EIM_FPR_LEN) : json_null(),
        "has_euicc_certificate", d.euicc_cert != NULL, "has_eum_certificate", d.eum_cert != NULL,
        "created_ms", (json_int_t)d.created_ms, "updated_ms", (json_int_t)d.updated_ms,
        "last_seen_ms", d.last_seen_ms ? json_integer(d.last_seen_ms) : json_null(),
        "pending_operations", pending);
    set_ok(r, 200, o);
out:
    json_decref(pending);
    pl_eim_device_clear(&d);
}

static void handle_list_devices(struct pl_eim_api *api, struct MHD_Connection *c, struct reply *r)
{
    const char *after_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
    const char *limit_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    uint8_t after[PL_EIM_EID_LEN];
    long limit = 100;
    struct pl_eim_device_summary *sum = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    int rc;

    if (after_s != NULL && !parse_eid(after_s, after)) {
        set_error(r, 400, "invalid", "after: 32 hex digits");
        return;
    }
    if (limit_s != NULL) {
        char *end = NULL;
        limit = strtol(limit_s, &end, 10);
        if (end == limit_s || *end != '\0' || limit < 1 || limit > (long)MAX_LIST) {
            set_error(r, 400, "invalid", "limit: 1..%u", MAX_LIST);
            return;
        }
    }
    sum = calloc((size_t)limit, sizeof(*sum));
    arr = json_array();
    if (sum == NULL || arr == NULL) {
        set_error(r, 500, "internal", "out of memory");
        goto out;
    }
    rc = pl_eim_store_device_list(api->o.store, after_s ? after : NULL, sum, (size_t)limit, &n);
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        eid_hex(sum[i].eid, hex);
        json_array_append_new(
            arr, json_pack("{s:s,s:I,s:b,s:I,s:o}", "eid", hex, "counter",
                           (json_int_t)sum[i].counter, "associated", sum[i].associated,
                           "created_ms", (json_int_t)sum[i].created_ms, "last_seen_ms",
                           sum[i].last_seen_ms ? json_integer(sum[i].last_seen_ms) : json_null()));
    }
    {
        char next[33] = "";
        if (n == (size_t)limit)
            eid_hex(sum[n - 1].eid, next);
        set_ok(r, 200,
               json_pack("{s:O,s:o}", "devices", arr, "next",
                         next[0] ? json_string(next) : json_null()));
    }
out:
    json_decref(arr);
    free(sum);
}

static void handle_delete_device(struct pl_eim_api *api, const char *actor,
                                 const uint8_t eid[PL_EIM_EID_LEN], struct reply *r)
{
    char hex[33];
    int rc = pl_eim_store_device_delete(api->o.store, actor, eid);
    eid_hex(eid, hex);
    if (rc == PL_ERR_NOT_FOUND) {
        set_error(r, 404, "not_found", "no device %s", hex);
        return;
    }
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        return;
    }
    set_ok(r, 200, json_pack("{s:s,s:b}", "eid", hex, "deleted", 1));
}

/* ---- operations ---- */


static void handle_queue(struct pl_eim_api *api, const char *actor,
                         const uint8_t eid[PL_EIM_EID_LEN], json_t *body, struct reply *r)
{
    static const char *const keys[] = {"kind", "params", NULL};
    char err[ERR_CAP] = "", hex[33];
    const char *kind_s = NULL;
    enum pl_eim_op_kind kind;
    json_t *params = NULL;
    char *text = NULL;
    struct pl_eim_op op;
    int64_t id = 0;
    int rc;

    eid_hex(eid, hex);
    if (!json_is_object(body) || !only_keys(body, keys, "", err, sizeof(err))
        || !get_string(body, "kind", true, 1, 64, &kind_s, "", err, sizeof(err))) {
        set_error(r, 400, "invalid", "%s", err[0] ? err : "body: must be an object");
        return;
    }
    if (pl_eim_op_kind_from_name(kind_s, &kind) != PL_OK) {
        set_error(r, 400, "invalid", "kind: unknown operation \"%.64s\"", kind_s);
        return;
    }
    params = json_object_get(body, "params");
    if (params == NULL) {
        params = json_object();
        if (params == NULL) {
            set_error(r, 500, "internal", "out of memory");
            return;
        }
    } else {
        json_incref(params);
    }
    if (!json_is_object(params)) {
        set_error(r, 400, "invalid", "params: must be an object");
        goto out;
    }
    text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL) {
        set_error(r, 500, "internal", "out of memory");
        goto out;
    }
    /* The engine's own reading of the parameters decides (what it would refuse when the
     * operation's turn comes is refused now). */
    if (pl_eim_engine_check_params(kind, (const uint8_t *)text, strlen(text), err, sizeof(err))
        != PL_OK) {
        set_error(r, 400, "invalid", "params: %s", err[0] ? err : "not valid for this operation");
        goto out;
    }
    memset(&op, 0, sizeof(op));
    memcpy(op.eid, eid, PL_EIM_EID_LEN);
    op.kind = kind;
    op.params = (uint8_t *)text;
    op.params_len = strlen(text);
    rc = pl_eim_store_op_enqueue(api->o.store, actor, &op, &id);
    if (rc == PL_ERR_NOT_FOUND) {
        set_error(r, 404, "not_found", "no device %s", hex);
        goto out;
    }
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        goto out;
    }
    snprintf(r->location, sizeof(r->location), "/v1/operations/%lld", (long long)id);
    set_ok(r, 201,
           json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)id, "eid", hex, "kind", kind_s, "state",
                     "queued"));
    logf_(api, LOG_INFO, "event=op.queued eid=%s op=%lld kind=%s actor=%s", hex, (long long)id,
          kind_s, actor);
out:
    free(text);
    json_decref(params);
}

static void handle_show_op(struct pl_eim_api *api, int64_t id, struct reply *r)
{
    struct pl_eim_op op;
    char hex[33];
    json_t *params = NULL;
    int rc = pl_eim_store_op_get(api->o.store, id, &op);
    if (rc == PL_ERR_NOT_FOUND) {
        set_error(r, 404, "not_found", "no operation %lld", (long long)id);
        return;
    }
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        return;
    }
    eid_hex(op.eid, hex);
    params = op.params ? json_loadb((const char *)op.params, op.params_len, 0, NULL) : NULL;
    set_ok(r, 200,
           json_pack("{s:I,s:s,s:s,s:s,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
                     (json_int_t)op.id, "eid", hex, "kind", pl_eim_op_kind_name(op.kind), "state",
                     pl_eim_op_state_name(op.state), "params", params ? params : json_object(),
                     "created_by", opt_str(op.created_by), "created_ms", (json_int_t)op.created_ms,
                     "counter", op.has_counter ? json_integer(op.counter) : json_null(),
                     "transaction_id", op.txid_len ? hex_json(op.txid, op.txid_len) : json_null(),
                     "sent_ms", op.sent_ms ? json_integer(op.sent_ms) : json_null(), "package",
                     hex_json(op.package, op.package_len), "result",
                     hex_json(op.result, op.result_len), "outcome", opt_str(op.outcome), "done_ms",
                     op.done_ms ? json_integer(op.done_ms) : json_null(), "claimed_by",
                     opt_str(op.claimed_by)));
    pl_eim_op_clear(&op);
}

/* ---- bootstrap ---- */

static int identity_config(const struct pl_eim_identity *id, struct pl_sgp32_eim_config *c)
{
    int rc;
    memset(c, 0, sizeof(*c));
    c->eim_id = pl_sgp32_str(id->eim_id);
    c->eim_fqdn = pl_sgp32_str(id->eim_fqdn);
    c->has_eim_id_type = id->eim_id_type != 0;
    c->eim_id_type = id->eim_id_type;
    c->has_counter = id->has_counter;
    c->counter = id->counter_value;
    c->has_association_token = id->has_association_token;
    c->association_token = id->association_token;
    if (id->key_der != NULL
        && (rc = pl_sgp32_key_data_from_der(id->key_kind, id->key_der, id->key_der_len,
                                            &c->eim_public_key_data))
               != PL_OK)
        return rc;
    if (id->tls_der != NULL
        && (rc = pl_sgp32_key_data_from_der(id->tls_kind, id->tls_der, id->tls_der_len,
                                            &c->trusted_public_key_data_tls))
               != PL_OK)
        return rc;
    c->has_supported_protocol = id->has_protocols;
    c->supported_protocol = id->protocols;
    if (id->ci_pkid_len > 0) {
        c->euicc_ci_pkid.p = id->ci_pkid;
        c->euicc_ci_pkid.len = id->ci_pkid_len;
    }
    c->indirect_profile_download = id->indirect_profile_download;
    return PL_OK;
}

static json_t *bytes_both(const uint8_t *p, size_t n)
{
    return json_pack("{s:o,s:o}", "hex", hex_json(p, n), "base64", b64_json(p, n));
}

static void handle_bootstrap(struct pl_eim_api *api, struct MHD_Connection *c, struct reply *r)
{
    const char *eim_id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "eimId");
    const struct pl_eim_identity *id = pl_eim_config_identity(api->o.cfg, eim_id);
    struct pl_sgp32_add_initial_eim_request req;
    struct pl_wr w1, w2;
    int rc;

    if (id == NULL) {
        set_error(r, 404, "not_found", "no eIM \"%.128s\" on this server", eim_id ? eim_id : "");
        return;
    }
    memset(&req, 0, sizeof(req));
    req.n_eims = 1;
    pl_wr_init_dyn(&w1, 64u << 10);
    pl_wr_init_dyn(&w2, 64u << 10);
    rc = identity_config(id, &req.eims[0]);
    if (rc == PL_OK)
        rc = pl_sgp32_add_initial_eim_request_encode(&req, &w1);
    if (rc == PL_OK)
        rc = pl_sgp32_eim_config_encode(&req.eims[0], &w2);
    if (rc == PL_OK)
        rc = pl_wr_status(&w1);
    if (rc == PL_OK)
        rc = pl_wr_status(&w2);
    if (rc != PL_OK) {
        set_error(r, 500, "internal", "cannot encode the eIM configuration: %s", pl_strerror(rc));
        goto out;
    }
    set_ok(r, 200,
           json_pack("{s:s,s:o,s:o}", "eim_id", id->eim_id, "add_initial_eim_request",
                     bytes_both(w1.buf, w1.len), "eim_configuration_data",
                     bytes_both(w2.buf, w2.len)));
out:
    pl_wr_free(&w1);
    pl_wr_free(&w2);
}

/* ---- dispatch ---- */

static bool method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

static const char *bearer(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static bool content_is_json(struct MHD_Connection *c)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen("application/json");
    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static void route(struct pl_eim_api *api, struct MHD_Connection *c, const char *url,
                  const char *method, const struct req_ctx *rq, struct reply *r)
{
    struct pl_eim_operator op;
    enum perm need = PERM_READ;
    uint8_t eid[PL_EIM_EID_LEN];
    int64_t op_id = 0;
    json_t *body = NULL;
    json_error_t jerr;
    const char *tok = NULL;
    int rc;
    enum {
        R_LIST,
        R_REGISTER,
        R_BULK,
        R_SHOW,
        R_DELETE,
        R_QUEUE,
        R_OPS,
        R_SHOW_OP,
        R_BOOTSTRAP,
        R_HEALTH
    } which;

    /* 1. the route (404/405 before authentication reveal only the public URL space) */
    if (strcmp(url, "/v1/health") == 0) {
        which = R_HEALTH;
        if (!method_is(method, "GET")) {
            r->allow = "GET";
            set_error(r, 405, "method_not_allowed", "use GET");
            return;
        }
    } else if (strcmp(url, "/v1/devices") == 0) {
        r->allow = "GET, POST";
        if (method_is(method, "GET")) {
            which = R_LIST;
        } else if (method_is(method, "POST")) {
            which = R_REGISTER;
            need = PERM_REGISTER;
        } else {
            set_error(r, 405, "method_not_allowed", "use GET or POST");
            return;
        }
    } else if (strcmp(url, BULK_PATH) == 0) {
        r->allow = "POST";
        if (!method_is(method, "POST")) {
            set_error(r, 405, "method_not_allowed", "use POST");
            return;
        }
        which = R_BULK;
        need = PERM_REGISTER;
    } else if (strncmp(url, "/v1/devices/", 12) == 0) {
        const char *rest = url + 12;
        char eid_s[33];
        size_t len = strcspn(rest, "/");
        if (len != 32) {
            set_error(r, 404, "not_found", "no such resource (an EID is 32 hex digits)");
            return;
        }
        memcpy(eid_s, rest, 32);
        eid_s[32] = '\0';
        if (!parse_eid(eid_s, eid)) {
            set_error(r, 404, "not_found", "no such resource (an EID is 32 hex digits)");
            return;
        }
        rest += 32;
        if (rest[0] == '\0') {
            r->allow = "GET, DELETE";
            if (method_is(method, "GET")) {
                which = R_SHOW;
            } else if (method_is(method, "DELETE")) {
                which = R_DELETE;
                need = PERM_ADMIN;
            } else {
                set_error(r, 405, "method_not_allowed", "use GET or DELETE");
                return;
            }
        } else if (strcmp(rest, "/operations") == 0) {
            r->allow = "GET, POST";
            if (method_is(method, "POST")) {
                which = R_QUEUE;
                need = PERM_QUEUE;
            } else if (method_is(method, "GET")) {
                which = R_OPS;
            } else {
                set_error(r, 405, "method_not_allowed", "use GET or POST");
                return;
            }
        } else {
            set_error(r, 404, "not_found", "no such resource");
            return;
        }
    } else if (strncmp(url, "/v1/operations/", 15) == 0) {
        const char *s = url + 15;
        char *end = NULL;
        long long v = 0;
        if (*s < '1' || *s > '9' || strlen(s) > 18) {
            set_error(r, 404, "not_found", "no such resource (an operation id is a number)");
            return;
        }
        v = strtoll(s, &end, 10);
        if (*end != '\0' || v <= 0) {
            set_error(r, 404, "not_found", "no such resource (an operation id is a number)");
            return;
        }
        op_id = (int64_t)v;
        r->allow = "GET";
        if (!method_is(method, "GET")) {
            set_error(r, 405, "method_not_allowed", "use GET");
            return;
        }
        which = R_SHOW_OP;
    } else if (strcmp(url, "/v1/bootstrap") == 0) {
        r->allow = "GET";
        if (!method_is(method, "GET")) {
            set_error(r, 405, "method_not_allowed", "use GET");
            return;
        }
        which = R_BOOTSTRAP;
        need = PERM_BOOTSTRAP;
    } else {
        set_error(r, 404, "not_found", "no such resource");
        return;
    }
    r->allow = NULL;
    if (which == R_HEALTH) {
        set_ok(r, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }

    /* 2. who (RFC 6750: 401 with a challenge; 403 for a known operator without the right) */
    tok = bearer(c);
    if (tok == NULL) {
        r->challenge = true;
        set_error(r, 401, "unauthorized", "an Authorization: Bearer token is required");
        return;
    }
    rc = pl_eim_store_token_auth(api->o.store, tok, &op);
    if (rc == PL_ERR_DENIED) {
        r->challenge = true;
        set_error(r, 401, "unauthorized", "the token is not valid");
        return;
    }
    if (rc != PL_OK) {
        store_error(r, api->o.store, rc);
        return;
    }
    if (!allowed(op.role, need)) {
        set_error(r, 403, "forbidden", "role %s may not do this", pl_eim_role_name(op.role));
        return;
    }

    /* 3. the body */
    if (rq->too_big) {
        set_error(r, 413, "too_large", "the request body is over %zu bytes", rq->limit);
        return;
    }
    if (method_is(method, "POST")) {
        if (!content_is_json(c)) {
            set_error(r, 415, "unsupported_media_type", "send Content-Type: application/json");
            return;
        }
        body = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &jerr);
        if (body == NULL) {
            set_error(r, 400, "invalid_json", "line %d column %d: %s", jerr.line, jerr.column,
                      jerr.text);
            return;
        }
    } else if (rq->len > 0) {
        set_error(r, 400, "invalid", "this request takes no body");
        return;
    }

    switch (which) {
    case R_LIST:
        handle_list_devices(api, c, r);
        break;
    case R_REGISTER:
        handle_register(api, op.name, body, r);
        break;
    case R_BULK:
        handle_bulk(api, op.name, body, r);
        break;
    case R_SHOW:
        handle_show_device(api, eid, r);
        break;
    case R_DELETE:
        handle_delete_device(api, op.name, eid, r);
        break;
    case R_QUEUE:
        handle_queue(api, op.name, eid, body, r);
        break;
    case R_OPS: {
        struct pl_eim_device d;
        char hex[33];
        json_t *arr = NULL;
        eid_hex(eid, hex);
        rc = pl_eim_store_device_get(api->o.store, eid, &d);
        pl_eim_device_clear(&d);
        if (rc == PL_ERR_NOT_FOUND) {
            set_error(r, 404, "not_found", "no device %s", hex);
            break;
        }
        arr = rc == PL_OK ? op_summaries(api->o.store, eid, 0, &rc) : NULL;
        if (rc != PL_OK) {
            store_error(r, api->o.store, rc);
            break;
        }
        set_ok(r, 200, json_pack("{s:s,s:o}", "eid", hex, "operations", arr));
        break;
    }
    case R_SHOW_OP:
        handle_show_op(api, op_id, r);
        break;
    case R_BOOTSTRAP:
        handle_bootstrap(api, c, r);
        break;
    case R_HEALTH:
    default:
        set_error(r, 500, "internal", "unrouted");
        break;
    }
    json_decref(body);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
    char *text = NULL;
    struct MHD_Response *resp = NULL;
    enum MHD_Result ret;
    size_t len;

    if (r->body == NULL)
        r->body = json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message", "no body");
    text = r->body ? json_dumps(r->body, JSON_COMPACT) : NULL;
    if (text == NULL)
        return MHD_NO;
    len = strlen(text);
    text[len] = '\0';
    /* one trailing newline makes curl and shell use pleasant */
    {
        char *t2 = realloc(text, len + 2);
        if (t2 == NULL) {
            free(text);
            return MHD_NO;
        }
        text = t2;
        text[len++] = '\n';
        text[len] = '\0';
    }
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->location[0] != '\0')
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"provline-eim\"");
    ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct pl_eim_api *api = cls;
    struct req_ctx *rq = *con_cls;
    struct reply r;
    enum MHD_Result ret;
    (void)version;

    if (rq == NULL) {
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        rq->limit = strcmp(url, BULK_PATH) == 0 ? api->o.cfg->max_bulk_body : api->o.cfg->max_body;
        *con_cls = rq;
        if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long)rq->limit + HARD_DISCARD) {
            /* Far too large to read and drop: answer now and let MHD close the connection. */
            memset(&r, 0, sizeof(r));
            set_error(&r, 413, "too_large", "the request body is over %zu bytes", rq->limit);
            ret = send_reply(c, &r);
            json_decref(r.body);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (!rq->too_big && rq->len + n <= rq->limit) {
            char *nb = realloc(rq->body, rq->len + n + 1);
            if (nb == NULL)
                return MHD_NO;
            rq->body = nb;
            memcpy(rq->body + rq->len, upload_data, n);
            rq->len += n;
            rq->body[rq->len] = '\0';
        } else {
            rq->too_big = true; /* keep reading, drop the bytes, answer 413 at the end */
            free(rq->body);
            rq->body = NULL;
            rq->len += n;
            if (rq->len > rq->limit + HARD_DISCARD)
                return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    memset(&r, 0, sizeof(r));
    if (rq->too_big)
        rq->len = 0;
    route(api, c, url, method, rq, &r);
    if (r.body == NULL)
        set_error(&r, 500, "internal", "out of memory");
    logf_(api, r.status >= 500 ? LOG_ERR : LOG_INFO, "event=http method=%s path=%s status=%u",
          method, url, r.status);
    ret = send_reply(c, &r);
    json_decref(r.body);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *rq = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct pl_eim_api *api = cls;
    char line[384];
    size_t n = 0;
    if (api->o.log == NULL)
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    logf_(api, LOG_WARN, "event=httpd msg=\"%s\"", line);
}

int pl_eim_api_start(const struct pl_eim_api_options *opt, struct pl_eim_api **out)
{
    struct pl_eim_api *api = NULL;
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    const union MHD_DaemonInfo *info = NULL;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    if (opt == NULL || opt->cfg == NULL || opt->store == NULL || out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(opt->cfg->listen_host, NULL, &hints, &ai) != 0 || ai == NULL)
        return PL_ERR_CONFIG;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET6) {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(opt->cfg->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = htons(opt->cfg->listen_port);
    }
    freeaddrinfo(ai);
    api = calloc(1, sizeof(*api));
    if (api == NULL)
        return PL_ERR_NOMEM;
    api->o = *opt;
    api->d = MHD_start_daemon(flags, opt->cfg->listen_port, NULL, NULL, on_request, api,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64, MHD_OPTION_END);
    if (api->d == NULL) {
        free(api);
        return PL_ERR_IO;
    }
    info = MHD_get_daemon_info(api->d, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? info->port : opt->cfg->listen_port;
    *out = api;
    return PL_OK;
}

uint16_t pl_eim_api_port(const struct pl_eim_api *api)
{
    return api ? api->port : 0;
}

void pl_eim_api_stop(struct pl_eim_api *api)
{
    if (api == NULL)
        return;
    MHD_stop_daemon(api->d);
    free(api);
}
