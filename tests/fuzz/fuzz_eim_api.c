/* Fuzz target: the eIM's northbound HTTP+JSON API (eim/src/api_http.c, docs/eim-api.md) fed
 * over loopback HTTP, the way an untrusted factory station or a careless operator reaches it:
 * the station batch import POST /v1/devices/bulk (format provline-station-batch/1,
 * docs/eim-api.md §Bulk import, decision 0018), POST /v1/devices, POST
 * /v1/devices/{eid}/operations (GSMA SGP.32 v1.2 §2.11.1 operation kinds) and query strings.
 * RFC 9110 (status codes), RFC 8259 (JSON), RFC 4648 §4 (base64), RFC 3986 §2.1 (the
 * percent-encoding of the query).
 *
 * Set up once per process: a temp dir (mkdtemp /tmp/pl-fuzz-eimapi.XXXXXX), a configuration
 * written there (CI = SGP.26 variant O test CI, eIM key = its S_EIMsign certificate, both from
 * tests/data/sgp26/variant-o), its SQLite store and counter guard, an admin token, the API on
 * 127.0.0.1 with a free port, and one device registered over the API: the SGP.26 test eUICC
 * (EID 89049032123451234512345678901235, with its CERT.EUICC and CERT.EUM). All of it is
 * kept for the process's life and removed at exit. The caps are small (max_body 2 KiB, bulk
 * 3 KiB, 16 devices a batch) so that 413 and the batch size limit are within reach.
 *
 * Input: the first byte modulo 5 picks the request (so the seeds start with a readable letter),
 * the rest is its body or query:
 *   0 'A'  POST /v1/devices/bulk              body
 *   1 'B'  POST /v1/devices                   body
 *   2 'C'  POST /v1/devices/{fixed EID}/operations   body
 *   3 'D'  GET  /v1/devices?REST              (REST percent-encoded, cut at 1536 characters)
 *   4 'E'  GET  /v1/bootstrap?REST
 * Invariants (abort() otherwise): the request gets an answer; its status is one the API uses
 * for these requests with a valid admin token and a JSON body - 200, 201, 400, 404, 409, 413
 * (202 and 422 are never used; 401/403/405/415 cannot happen here; 500 would be a store
 * failure, which a SQLite file in a temp dir does not have); the body is JSON; an error is
 * {"error": {"code", "message"}} with string members; a bulk answer's counts add up
 * (received = created + unchanged + skipped + conflicts); a registered device reads back
 * (GET /v1/devices/{eid} 200) and a queued operation too (GET /v1/operations/{id} 200,
 * state "queued", same kind). Every 64th input checks GET /v1/health; every 1024th deletes
 * every device over the API and registers the fixed one again, so the store stays small. */
#define _POSIX_C_SOURCE 200809L

#include "pl_test.h"
#include "provline/eim/api_http.h"
#include "provline/eim/config.h"
#include "provline/eim/http_client.h"
#include "provline/eim/store.h"
#include "provline/protocol/b64.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SGP26_DIR    PL_TEST_SRCDIR "/tests/data/sgp26/variant-o/"
#define FIXED_EID    "89049032123451234512345678901235"
#define MAX_RESP     (512u << 10)
#define TIMEOUT_MS   10000
#define MAX_QUERY    1536u /* encoded; the client's request head has 2 KiB */
#define HEALTH_EVERY 64u
#define RESET_EVERY  1024u

static struct {
    char dir[64];
    char url[64];
    char token[PL_EIM_TOKEN_MAX];
    char *fixed_body; /* POST /v1/devices body of the fixed device */
    struct pl_eim_config *cfg;
    struct pl_eim_store *store;
    struct pl_eim_api *api;
    unsigned long runs;
} F;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_eim_api: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (F.dir[0] != '\0')
        pl_test_rmtree(F.dir); /* the server thread may still run: it only finds no files */
    abort();
}

static void cleanup(void)
{
    pl_eim_api_stop(F.api);
    F.api = NULL;
    pl_eim_store_close(F.store);
    F.store = NULL;
    pl_eim_config_free(F.cfg);
    F.cfg = NULL;
    free(F.fixed_body);
    F.fixed_body = NULL;
    if (F.dir[0] != '\0')
        pl_test_rmtree(F.dir);
    F.dir[0] = '\0';
}

/* One request; the answer's status and parsed body (owned by the caller). */
static int call(const char *method, const char *path, const void *body, size_t len, json_t **json)
{
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    json_error_t jerr;
    int rc, status;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.token = F.token;
    if (strcmp(method, "POST") == 0) {
        req.content_type = "application/json";
        req.body = body;
        req.body_len = len;
    }
    rc = pl_eim_http_do(F.url, &req, MAX_RESP, TIMEOUT_MS, &resp);
    if (rc != PL_OK)
        die("%s %s: no answer: %s", method, path, pl_strerror(rc));
    status = resp.status;
    *json = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (*json == NULL || !json_is_object(*json))
        die("%s %s: HTTP %d, the body is not a JSON object (%s): %.200s", method, path, status,
            jerr.text, resp.body);
    if (status >= 400) {
        json_t *e = json_object_get(*json, "error");
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "code"))
            || !json_is_string(json_object_get(e, "message")))
            die("%s %s: HTTP %d, not an error body: %.200s", method, path, status, resp.body);
    }
    switch (status) {
    case 200:
    case 201:
    case 400:
    case 404:
    case 409:
    case 413:
        break;
    default:
        die("%s %s: unexpected HTTP %d: %.200s", method, path, status, resp.body);
    }
    pl_eim_http_resp_clear(&resp);
    return status;
}

static void expect(const char *method, const char *path, const void *body, size_t len, int want)
{
    json_t *j = NULL;
    int st = call(method, path, body, len, &j);
    if (st != want)
        die("%s %s: HTTP %d, want %d", method, path, st, want);
    json_decref(j);
}

static char *b64_file(const char *name)
{
    char path[512];
    size_t len = 0;
    uint8_t *der = NULL;
    char *out = NULL;

    snprintf(path, sizeof(path), "%s%s", SGP26_DIR, name);
    der = pl_test_read_file(path, &len);
    if (der == NULL)
        die("cannot read %s", path);
    out = malloc(pl_b64_len(len) + 1);
    if (out == NULL || pl_b64_encode(der, len, out, pl_b64_len(len) + 1) != PL_OK)
        die("base64 of %s", path);
    free(der);
    return out;
}

static void write_config(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        die("cannot write %s", path);
    fprintf(
        f,
        "{\"http\": {\"listen\": \"127.0.0.1\", \"port\": 0, \"max_body\": 2048,\n"
        "          \"max_bulk_body\": 3072, \"max_bulk_devices\": 16},\n"
        " \"store\": {\"backend\": \"sqlite\", \"path\": \"eim.db\",\n"
        "           \"counter_guard\": \"eim.guard\"},\n"
        " \"trust\": {\"ci_certificates\": [\"%sCERT_CI_SIG_NIST.der\"]},\n"
        " \"eims\": [{\"eim_id\": \"eim.example.com\", \"eim_fqdn\": \"eim.example.com\",\n"
        "            \"eim_id_type\": \"fqdn\", \"counter_value\": 0,\n"
        "            \"association_token\": -1,\n"
        "            \"public_key\": {\"certificate\": \"%sCERT_S_EIMsign_ECDSA_NIST.der\"},\n"
        "            \"supported_protocols\": [\"retrieveCoaps\"],\n"
        "            \"indirect_profile_download\": true},\n"
        "          {\"eim_id\": \"eim2.example.com\",\n"
        "           \"public_key\": {\"certificate\": \"%sCERT_S_EIMsign_ECDSA_NIST.der\"}}]}\n",
        SGP26_DIR, SGP26_DIR, SGP26_DIR);
    if (fclose(f) != 0)
        die("cannot write %s", path);
}

static void register_fixed(void)
{
    json_t *j = NULL;
    int st = call("POST", "/v1/devices", F.fixed_body, strlen(F.fixed_body), &j);
    if (st != 201 && st != 200)
        die("registering the fixed device: HTTP %d", st);
    json_decref(j);
}

static void setup(void)
{
    char path[128], err[512];
    char *euicc = NULL, *eum = NULL;
    size_t cap = 0;
    int rc;

    snprintf(F.dir, sizeof(F.dir), "/tmp/pl-fuzz-eimapi.XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        die("mkdtemp");
    atexit(cleanup);
    snprintf(path, sizeof(path), "%s/eim.json", F.dir);
    write_config(path);
    if (pl_eim_config_load(path, &F.cfg, err, sizeof(err)) != PL_OK)
        die("configuration: %s", err);
    if ((rc = pl_eim_config_open_store(F.cfg, false, false, &F.store)) != PL_OK)
        die("store: %s", pl_strerror(rc));
    /* What `provline-eim token add --role admin` does; the server thread is not running yet. */
    if ((rc = pl_eim_store_operator_put(F.store, "fuzz", "fuzz-admin", PL_EIM_ROLE_ADMIN)) != PL_OK
        || (rc = pl_eim_store_token_create(F.store, "fuzz", "fuzz-admin", F.token, sizeof(F.token)))
               != PL_OK)
        die("token: %s", pl_strerror(rc));
    struct pl_eim_api_options o = {.cfg = F.cfg, .store = F.store, .log = NULL, .log_user = NULL};
    if ((rc = pl_eim_api_start(&o, &F.api)) != PL_OK)
        die("api: %s", pl_strerror(rc));
    snprintf(F.url, sizeof(F.url), "http://127.0.0.1:%u", (unsigned)pl_eim_api_port(F.api));

    euicc = b64_file("CERT_EUICC_SIG_NIST.der");
    eum = b64_file("CERT_EUM_SIG_NIST.der");
    cap = strlen(euicc) + strlen(eum) + 256;
    F.fixed_body = malloc(cap);
    if (F.fixed_body == NULL)
        die("out of memory");
    snprintf(F.fixed_body, cap,
             "{\"eid\":\"%s\",\"euicc_certificate\":\"%s\",\"eum_certificate\":\"%s\"}", FIXED_EID,
             euicc, eum);
    free(euicc);
    free(eum);
    register_fixed();
}

/* Removes every device (and so every operation) over the API, then registers the fixed one
 * again: keeps the store's size bounded over a long run. */
static void reset_devices(void)
{
    for (int round = 0; round < 64; round++) {
        json_t *j = NULL, *devs = NULL, *d = NULL;
        size_t i = 0;
        if (call("GET", "/v1/devices?limit=1000", NULL, 0, &j) != 200)
            die("listing devices");
        devs = json_object_get(j, "devices");
        if (!json_is_array(devs))
            die("GET /v1/devices: no devices array");
        if (json_array_size(devs) == 0) {
            json_decref(j);
            register_fixed();
            return;
        }
        json_array_foreach(devs, i, d)
        {
            char p[64];
            const char *eid = json_string_value(json_object_get(d, "eid"));
            if (eid == NULL || strlen(eid) != 32)
                die("GET /v1/devices: an entry without an eid");
            snprintf(p, sizeof(p), "/v1/devices/%s", eid);
            expect("DELETE", p, NULL, 0, 200);
        }
        json_decref(j);
    }
    die("devices do not go away");
}

/* RFC 3986 §2.1: every byte except unreserved ones and the query's own '=' '&' '+' is
 * percent-encoded, so any input is a valid request line. */
static char *query_path(const char *prefix, const uint8_t *p, size_t n)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t plen = strlen(prefix), k = plen;
    char *out = malloc(plen + MAX_QUERY + 1);

    if (out == NULL)
        die("out of memory");
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < n && k + 3 <= plen + MAX_QUERY; i++) {
        uint8_t c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
            || c == '.' || c == '_' || c == '~' || c == '=' || c == '&' || c == '+') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hexd[c >> 4];
            out[k++] = hexd[c & 15];
        }
    }
    out[k] = '\0';
    return out;
}

static json_int_t int_member(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        die("answer: %s is not a count", key);
    return json_integer_value(v);
}

static void check_bulk(const json_t *j)
{
    json_t *conflicts = json_object_get(j, "conflicts");
    if (!json_is_string(json_object_get(j, "batch_id")) || !json_is_array(conflicts))
        die("bulk answer: batch_id or conflicts missing");
    if (int_member(j, "received")
        != int_member(j, "created") + int_member(j, "unchanged") + int_member(j, "skipped")
               + (json_int_t)json_array_size(conflicts))
        die("bulk answer: the counts do not add up");
}

static void check_registered(const json_t *j)
{
    char p[64];
    json_t *dev = NULL;
    const char *eid = json_string_value(json_object_get(j, "eid"));
    if (eid == NULL || strlen(eid) != 32 || !json_is_boolean(json_object_get(j, "created")))
        die("register answer: eid or created missing");
    snprintf(p, sizeof(p), "/v1/devices/%s", eid);
    if (call("GET", p, NULL, 0, &dev) != 200)
        die("a registered device does not read back");
    if (!json_is_string(json_object_get(dev, "eid"))
        || strcasecmp(json_string_value(json_object_get(dev, "eid")), eid) != 0
        || !json_is_array(json_object_get(dev, "profiles")))
        die("GET %s: not the device", p);
    json_decref(dev);
}

static void check_queued(const json_t *j)
{
    char p[64];
    json_t *op = NULL, *id = json_object_get(j, "id");
    const char *kind = json_string_value(json_object_get(j, "kind"));
    if (!json_is_integer(id) || json_integer_value(id) <= 0 || kind == NULL)
        die("queue answer: id or kind missing");
    snprintf(p, sizeof(p), "/v1/operations/%lld", (long long)json_integer_value(id));
    if (call("GET", p, NULL, 0, &op) != 200)
        die("a queued operation does not read back");
    if (!json_is_string(json_object_get(op, "kind"))
        || strcmp(json_string_value(json_object_get(op, "kind")), kind) != 0
        || !json_is_string(json_object_get(op, "state"))
        || strcmp(json_string_value(json_object_get(op, "state")), "queued") != 0
        || !json_is_object(json_object_get(op, "params")))
        die("GET %s: not the queued operation", p);
    json_decref(op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    char *path = NULL;
    int st;

    if (F.api == NULL)
        setup();
    F.runs++;
    if (F.runs % RESET_EVERY == 0)
        reset_devices();
    if (size == 0)
        return 0;
    switch (data[0] % 5) {
    case 0:
        st = call("POST", "/v1/devices/bulk", data + 1, size - 1, &j);
        if (st == 200)
            check_bulk(j);
        else if (st != 400 && st != 413)
            die("bulk: HTTP %d", st);
        break;
    case 1:
        st = call("POST", "/v1/devices", data + 1, size - 1, &j);
        if (st == 200 || st == 201)
            check_registered(j);
        else if (st != 400 && st != 409 && st != 413)
            die("register: HTTP %d", st);
        break;
    case 2:
        st = call("POST", "/v1/devices/" FIXED_EID "/operations", data + 1, size - 1, &j);
        if (st == 201)
            check_queued(j);
        else if (st != 400 && st != 413)
            die("queue: HTTP %d", st);
        break;
    case 3:
        path = query_path("/v1/devices?", data + 1, size - 1);
        st = call("GET", path, NULL, 0, &j);
        if (st == 200
            && (!json_is_array(json_object_get(j, "devices"))
                || json_object_get(j, "next") == NULL))
            die("GET /v1/devices: devices or next missing");
        if (st != 200 && st != 400)
            die("GET %s: HTTP %d", path, st);
        break;
    default:
        path = query_path("/v1/bootstrap?", data + 1, size - 1);
        st = call("GET", path, NULL, 0, &j);
        if (st != 200 && st != 404)
            die("GET %s: HTTP %d", path, st);
        break;
    }
    free(path);
    json_decref(j);
    if (F.runs % HEALTH_EVERY == 0) {
        json_t *h = NULL;
        if (call("GET", "/v1/health", NULL, 0, &h) != 200
            || !json_is_string(json_object_get(h, "status")))
            die("GET /v1/health after input %lu", F.runs);
        json_decref(h);
    }
    return 0;
}
