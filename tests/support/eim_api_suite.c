/* The northbound API suite (eim_api_suite.h; docs/eim-api.md): the real provline-eim
 * daemon, reached over loopback HTTP. Proves: bearer authentication (401) and roles (403),
 * every endpoint, malformed and oversize requests (400/413/415), unknown EIDs and
 * operations (404), wrong methods (405), conflicting registrations (409), certificate
 * checks (EID, CI chain), the station batch import, and the bootstrap bytes ('BF57'). */
#define _POSIX_C_SOURCE 200809L
#include "eim_api_suite.h"

#include "pl_test.h"
#include "provline/protocol/b64.h"
#include "provline/eim/config.h"
#include "provline/eim/store.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const role_names[4] = {"admin", "operator", "station", "reader"};

static const char *bin(char *out, size_t cap)
{
    const char *d = getenv("PL_BIN_DIR");
    snprintf(out, cap, "%s/provline-eim", d ? d : PL_TEST_BINDIR "/bin");
    return out;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

/* ---- PKI: one CI, an EUM, an eIM cert, and eUICCs minted per EID ---- */

static void pki_dir(const struct pl_eimapi_env *env, char *out, size_t cap)
{
    snprintf(out, cap, "%s/pki", env->dir);
}

static void mkeid(unsigned n, uint8_t eid[16], char hex[33])
{
    /* 32 decimal digits (an EID), the last ones vary */
    snprintf(hex, 33, "8904903200000000000000000000%04u", n % 10000);
    size_t len = 0;
    cr_assert_eq(pl_hex_decode(hex, eid, 16, &len), PL_OK);
}

/* {"eid": ..., "euicc_certificate": b64, "eum_certificate": b64} for eUICC n of a PKI. */
static json_t *device_json(const char *pki_path, unsigned n)
{
    struct pl_pki *pki = NULL;
    struct pl_eckey *key = NULL;
    uint8_t eid[16], der[2048];
    char hex[33], b64[4096];
    size_t len = 0, elen = 0;
    const uint8_t *eum = NULL;
    json_t *o = NULL;

    mkeid(n, eid, hex);
    cr_assert_eq(pl_pki_load(pki_path, &pki), PL_OK);
    cr_assert_eq(
        pl_pki_mint_euicc_with(pki, eid, &PL_RNG_SYSTEM, time(NULL), &key, der, sizeof(der), &len),
        PL_OK);
    pl_eckey_free(key);
    o = json_object();
    json_object_set_new(o, "eid", json_string(hex));
    cr_assert_eq(pl_b64_encode(der, len, b64, sizeof(b64)), PL_OK);
    json_object_set_new(o, "euicc_certificate", json_string(b64));
    pl_cert_der(pl_pki_cert(pki, PL_PKI_EUM), &eum, &elen);
    cr_assert_eq(pl_b64_encode(eum, elen, b64, sizeof(b64)), PL_OK);
    json_object_set_new(o, "eum_certificate", json_string(b64));
    pl_pki_free(pki);
    return o;
}

/* ---- the daemon ---- */

void pl_eimapi_start(struct pl_eimapi_env *env, const char *store_json)
{
    char path[512], eim_der[600], ci_der[600], cmd[2048], out[512], exe[512];
    char *cfg = NULL;
    struct pl_pki *pki = NULL;
    size_t cap = 8192;

    memset(env, 0, sizeof(*env));
    /* a private prefix: nothing else on the machine globs it */
    snprintf(env->dir, sizeof(env->dir), "/tmp/%s.XXXXXX", "pl-eimapi");
    cr_assert_not_null(mkdtemp(env->dir));
    pki_dir(env, path, sizeof(path));
    cr_assert_eq(pl_pki_init(path, PL_CURVE_P256, &PL_RNG_SYSTEM, time(NULL)), PL_OK);
    cr_assert_eq(pl_pki_load(path, &pki), PL_OK);
    cr_assert_eq(pl_pki_path(pki, PL_PKI_EIM, PL_PKI_FILE_DER, eim_der, sizeof(eim_der)), PL_OK);
    cr_assert_eq(pl_pki_path(pki, PL_PKI_CI, PL_PKI_FILE_DER, ci_der, sizeof(ci_der)), PL_OK);
    pl_pki_free(pki);

    cfg = malloc(cap);
    cr_assert_not_null(cfg);
    snprintf(cfg, cap,
             "{\"http\": {\"listen\": \"127.0.0.1\", \"port\": 0, \"port_file\": \"port\",\n"
             "          \"max_body\": 16384, \"max_bulk_body\": 262144},\n"
             " \"store\": {%s, \"counter_guard\": \"eim.guard\"},\n"
             " \"trust\": {\"ci_certificates\": [\"%s\"]},\n"
             " \"eims\": [{\"eim_id\": \"eim.test\", \"eim_fqdn\": \"eim.test\",\n"
             "            \"eim_id_type\": \"fqdn\", \"counter_value\": 0,\n"
             "            \"association_token\": -1, \"public_key\": {\"certificate\": \"%s\"},\n"
             "            \"supported_protocols\": [\"retrieveCoaps\"],\n"
             "            \"indirect_profile_download\": true},\n"
             "          {\"eim_id\": \"eim2.test\", \"public_key\": {\"certificate\": \"%s\"}}]}\n",
             store_json, ci_der, eim_der, eim_der);
    snprintf(env->config, sizeof(env->config), "%s/eim.json", env->dir);
    write_text(env->config, cfg);
    free(cfg);

    bin(exe, sizeof(exe));
    for (int r = 0; r < 4; r++) {
        snprintf(cmd, sizeof(cmd), "%s token add --config %s --operator %s-op --role %s 2>&1", exe,
                 env->config, role_names[r], role_names[r]);
        cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "token add: %s", out);
        cr_assert(strncmp(out, "pleim_", 6) == 0, "token add printed: %s", out);
        out[strcspn(out, "\n")] = '\0';
        cr_assert(strlen(out) < sizeof(env->tokens[r]), "token too long: %s", out);
        memcpy(env->tokens[r], out, strlen(out) + 1);
    }

    char err[8192];
    unsigned port = 0;
    int pid = pl_test_eim_serve(exe, env->config, env->dir, &port, err, sizeof(err));
    cr_assert(pid > 0, "%s", err);
    env->pid = (pid_t)pid;
    snprintf(env->url, sizeof(env->url), "http://127.0.0.1:%u", port);
}

void pl_eimapi_stop(struct pl_eimapi_env *env)
{
    int st = 0;
    if (env->pid > 0) {
        kill(env->pid, SIGTERM);
        cr_assert_eq(waitpid(env->pid, &st, 0), env->pid);
        env->pid = 0;
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "serve did not stop cleanly: %d", st);
    }
    pl_test_rmtree(env->dir);
}

/* ---- requests ---- */

/* role < 0: no Authorization. Returns the parsed JSON body (NULL if not JSON). */
static json_t *call_full(struct pl_eimapi_env *env, int role, const char *auth, const char *method,
                         const char *path, const char *ctype, const void *body, size_t len,
                         int want)
{
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    json_t *j = NULL;
    int rc;

    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.token = role >= 0 ? env->tokens[role] : NULL;
    req.auth_header = auth;
    req.content_type = ctype;
    req.body = body;
    req.body_len = len;
    rc = pl_eim_http_do(env->url, &req, 8u << 20, 30000, &resp);
    cr_assert_eq(rc, PL_OK, "%s %s: %s", method, path, pl_strerror(rc));
    cr_assert_eq(resp.status, want, "%s %s: HTTP %d, want %d: %s", method, path, resp.status, want,
                 resp.body);
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    cr_assert_not_null(j, "%s %s: the body is not JSON: %s", method, path, resp.body);
    if (want >= 400) {
        json_t *e = json_object_get(j, "error");
        cr_assert(json_is_object(e) && json_is_string(json_object_get(e, "code"))
                      && json_is_string(json_object_get(e, "message")),
                  "error body: %s", resp.body);
    }
    pl_eim_http_resp_clear(&resp);
    return j;
}

static json_t *call(struct pl_eimapi_env *env, int role, const char *method, const char *path,
                    json_t *body, int want)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_t *j = call_full(env, role, NULL, method, path, NULL, text, text ? strlen(text) : 0, want);
    free(text);
    return j;
}

static void expect(struct pl_eimapi_env *env, int role, const char *method, const char *path,
                   json_t *body, int want)
{
    json_decref(call(env, role, method, path, body, want));
}

static const char *error_message(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "message"));
}

/* ---- tests ---- */

void pl_eimapi_auth(struct pl_eimapi_env *env)
{
    char pki[300], path[128];
    json_t *dev = NULL;
    const char *eid = NULL;

    expect(env, -1, "GET", "/v1/health", NULL, 200); /* the only open endpoint */
    expect(env, -1, "GET", "/v1/devices", NULL, 401);
    json_decref(call_full(env, -1, "Bearer", "GET", "/v1/devices", NULL, NULL, 0, 401));
    json_decref(
        call_full(env, -1, "Basic YWxpY2U6c2VjcmV0", "GET", "/v1/devices", NULL, NULL, 0, 401));
    json_decref(call_full(
        env, -1, "Bearer pleim_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "GET",
        "/v1/devices", NULL, NULL, 0, 401));
    {
        char bad[160];
        snprintf(bad, sizeof(bad), "Bearer %s", env->tokens[PL_EIMAPI_ADMIN]);
        bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
        json_decref(call_full(env, -1, bad, "GET", "/v1/devices", NULL, NULL, 0, 401));
        /* the scheme is case-insensitive (RFC 9110 §11.1) */
        snprintf(bad, sizeof(bad), "bearer %s", env->tokens[PL_EIMAPI_READER]);
        json_decref(call_full(env, -1, bad, "GET", "/v1/devices", NULL, NULL, 0, 200));
    }

    pki_dir(env, pki, sizeof(pki));
    dev = device_json(pki, 1);
    eid = json_string_value(json_object_get(dev, "eid"));
    snprintf(path, sizeof(path), "/v1/devices/%s", eid);
    /* roles: reader reads, station registers, operator queues, admin deletes */
    expect(env, PL_EIMAPI_READER, "POST", "/v1/devices", dev, 403);
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", dev, 201);
    expect(env, PL_EIMAPI_STATION, "GET", path, NULL, 403);
    expect(env, PL_EIMAPI_READER, "GET", path, NULL, 200);
    {
        json_t *op = json_pack("{s:s}", "kind", "getRAT");
        char ops[160];
        snprintf(ops, sizeof(ops), "%s/operations", path);
        expect(env, PL_EIMAPI_READER, "POST", ops, op, 403);
        expect(env, PL_EIMAPI_STATION, "POST", ops, op, 403);
        expect(env, PL_EIMAPI_OPERATOR, "POST", ops, op, 201);
        json_decref(op);
    }
    expect(env, PL_EIMAPI_STATION, "GET", "/v1/bootstrap", NULL, 200);
    expect(env, PL_EIMAPI_OPERATOR, "DELETE", path, NULL, 403);
    expect(env, PL_EIMAPI_ADMIN, "DELETE", path, NULL, 200);
    expect(env, PL_EIMAPI_ADMIN, "GET", path, NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "DELETE", path, NULL, 404);
    json_decref(dev);
}

void pl_eimapi_register(struct pl_eimapi_env *env)
{
    char pki[300], path[128], other_pki[300];
    json_t *dev = NULL, *dev2 = NULL, *j = NULL, *bad = NULL;
    const char *eid = NULL;

    pki_dir(env, pki, sizeof(pki));
    dev = device_json(pki, 7);
    eid = json_string_value(json_object_get(dev, "eid"));
    json_object_set_new(dev, "psk_identity", json_string("dev-7"));
    json_object_set_new(dev, "psk_key", json_string("00112233445566778899aabbccddeeff"));
    json_object_set_new(
        dev, "profiles",
        json_pack("[{s:s,s:s}]", "iccid", "89440000000000000071", "state", "enabled"));
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", dev, 201);
    cr_assert(json_is_true(json_object_get(j, "created")));
    json_decref(j);
    /* the same registration again is harmless */
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", dev, 200);
    cr_assert(json_is_false(json_object_get(j, "created")));
    json_decref(j);

    snprintf(path, sizeof(path), "/v1/devices/%s", eid);
    j = call(env, PL_EIMAPI_READER, "GET", path, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "eid")), eid);
    cr_assert_eq(json_integer_value(json_object_get(j, "counter")), 0);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "association"), "eim_id")),
        "eim.test");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "credentials"), "psk_identity")),
        "dev-7");
    cr_assert(json_is_true(json_object_get(json_object_get(j, "credentials"), "has_psk_key")));
    cr_assert_null(json_object_get(json_object_get(j, "credentials"), "psk_key")); /* never shown */
    cr_assert_eq(json_array_size(json_object_get(j, "profiles")), 1);
    cr_assert_eq(json_array_size(json_object_get(j, "pending_operations")), 0);
    cr_assert(json_is_true(json_object_get(j, "has_euicc_certificate")));
    json_decref(j);

    /* the same EID with another certificate: conflict */
    dev2 = device_json(pki, 7); /* a fresh key, so another certificate */
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", dev2, 409);
    /* a PSK identity already in use: conflict */
    json_decref(dev2);
    dev2 = device_json(pki, 8);
    json_object_set_new(dev2, "psk_identity", json_string("dev-7"));
    json_object_set_new(dev2, "psk_key", json_string("00112233445566778899aabbccddeeff"));
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", dev2, 409);
    json_decref(dev2);

    /* the certificate must carry the device's EID */
    bad = json_deep_copy(dev);
    json_object_set_new(bad, "eid", json_string("89049032000000000000000000009999"));
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    cr_assert(strstr(error_message(j), "euicc_certificate") != NULL, "%s", error_message(j));
    json_decref(j);
    json_decref(bad);

    /* and chain to the configured CI: an eUICC of another PKI is refused */
    snprintf(other_pki, sizeof(other_pki), "%s/other-pki", env->dir);
    cr_assert_eq(pl_pki_init(other_pki, PL_CURVE_P256, &PL_RNG_SYSTEM, time(NULL)), PL_OK);
    bad = device_json(other_pki, 9);
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    cr_assert(strstr(error_message(j), "chain") != NULL, "%s", error_message(j));
    json_decref(j);
    /* without its EUM certificate the chain cannot be checked */
    json_object_del(bad, "eum_certificate");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);

    /* field checks */
    bad = json_pack("{s:s}", "eid", "8904903200000000000000000000001");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);
    bad = json_pack("{s:s}", "eid", "8904903200000000000000000000001Z");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);
    bad = json_pack("{s:s,s:s}", "eid", "89049032000000000000000000000011", "euicc_certificate",
                    "not base64!");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);
    bad = json_pack("{s:s,s:s}", "eid", "89049032000000000000000000000011", "euicc_certificate",
                    "MAMCAQE=");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400); /* not a certificate */
    json_decref(bad);
    bad = json_pack("{s:s,s:s}", "eid", "89049032000000000000000000000011", "eim_id", "other");
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    cr_assert(strstr(error_message(j), "eim_id") != NULL);
    json_decref(j);
    json_decref(bad);
    bad = json_pack("{s:s,s:s}", "eid", "89049032000000000000000000000011", "psk_identity", "x");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400); /* identity without key */
    json_decref(bad);
    bad = json_pack("{s:s,s:i}", "eid", "89049032000000000000000000000011", "counter_value", -1);
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);
    bad = json_pack("{s:s,s:[{s:s}]}", "eid", "89049032000000000000000000000011", "profiles",
                    "iccid", "12");
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    json_decref(bad);
    bad = json_pack("{s:s,s:b}", "eid", "89049032000000000000000000000011", "surprise", 1);
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 400);
    cr_assert(strstr(error_message(j), "surprise") != NULL);
    json_decref(j);
    json_decref(bad);
    /* a device without certificates (learned later from the eUICC) is fine, eIM chosen */
    bad = json_pack("{s:s,s:s,s:i}", "eid", "89049032000000000000000000000011", "eim_id",
                    "eim2.test", "counter_value", 41);
    expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices", bad, 201);
    json_decref(bad);
    j = call(env, PL_EIMAPI_READER, "GET", "/v1/devices/89049032000000000000000000000011", NULL,
             200);
    cr_assert_eq(json_integer_value(json_object_get(j, "counter")), 41);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "association"), "eim_id")),
        "eim2.test");
    json_decref(j);

    /* list, paged */
    j = call(env, PL_EIMAPI_READER, "GET", "/v1/devices?limit=1", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "devices")), 1);
    cr_assert(json_is_string(json_object_get(j, "next")));
    {
        char next[128];
        snprintf(next, sizeof(next), "/v1/devices?limit=10&after=%s",
                 json_string_value(json_object_get(j, "next")));
        json_decref(j);
        j = call(env, PL_EIMAPI_READER, "GET", next, NULL, 200);
        cr_assert_eq(json_array_size(json_object_get(j, "devices")), 1);
        cr_assert(json_is_null(json_object_get(j, "next")));
    }
    json_decref(j);
    expect(env, PL_EIMAPI_READER, "GET", "/v1/devices?limit=0", NULL, 400);
    expect(env, PL_EIMAPI_READER, "GET", "/v1/devices?after=zz", NULL, 400);
    json_decref(dev);
}

void pl_eimapi_malformed(struct pl_eimapi_env *env)
{
    static const char *const bodies[] = {
        "{",                                /* truncated */
        "[1,2,3]",                          /* not an object */
        "{\"eid\": \"a\", \"eid\": \"b\"}", /* duplicate key */
        "{\"eid\": 12}",                    /* wrong type */
        "",                                 /* empty */
        "{\"eid\": \"89049032000000000000000000000011\"} trailing",
        "\"just a string\"",
    };
    char *big = NULL;
    size_t big_len = 16384 + 100;
    json_t *j = NULL;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        j = call_full(env, PL_EIMAPI_ADMIN, NULL, "POST", "/v1/devices", NULL, bodies[i],
                      strlen(bodies[i]), 400);
        json_decref(j);
    }
    j = call_full(env, PL_EIMAPI_ADMIN, NULL, "POST", "/v1/devices", NULL, "{", 1, 400);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "invalid_json");
    json_decref(j);
    /* wrong media type */
    json_decref(
        call_full(env, PL_EIMAPI_ADMIN, NULL, "POST", "/v1/devices", "text/plain", "{}", 2, 415));
    /* over the body cap (16 KiB in this configuration): 413, and nothing stored */
    big = malloc(big_len + 1);
    cr_assert_not_null(big);
    memset(big, ' ', big_len);
    memcpy(big, "{\"eid\": \"89049032000000000000000000000012\"", 42);
    big[big_len - 1] = '}';
    big[big_len] = '\0';
    json_decref(
        call_full(env, PL_EIMAPI_ADMIN, NULL, "POST", "/v1/devices", NULL, big, big_len, 413));
    free(big);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/devices/89049032000000000000000000000012", NULL, 404);
    /* the server is still fine after all that */
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/devices", NULL, 200);

    /* unknown resources and methods */
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/nothing", NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/devices/1234", NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/devices/89049032000000000000000000000012/x", NULL,
           404);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/operations/abc", NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/operations/0", NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/operations/999999", NULL, 404);
    expect(env, PL_EIMAPI_ADMIN, "PUT", "/v1/devices", NULL, 405);
    expect(env, PL_EIMAPI_ADMIN, "GET", "/v1/devices/bulk", NULL, 405);
    expect(env, PL_EIMAPI_ADMIN, "POST", "/v1/bootstrap", NULL, 405);
    /* a GET with a body */
    json_decref(call_full(env, PL_EIMAPI_ADMIN, NULL, "GET", "/v1/devices", NULL, "{}", 2, 400));
}

void pl_eimapi_operations(struct pl_eimapi_env *env)
{
    /* every kind, with parameters in the engine's names (docs/eim-api.md §Operations) */
    static const char *const kinds[][2] = {
        {"enable", "{\"iccid\": \"89440000000000000011\", \"rollback\": true}"},
        {"disable", "{\"iccid\": \"89440000000000000011\"}"},
        {"delete", "{\"iccid\": \"8944000000000000001F\"}"},
        {"listProfileInfo", "{\"tagList\": \"5a9f70\"}"},
        {"getRAT", "{}"},
        {"configureImmediateEnable",
         "{\"immediateEnable\": true, \"defaultSmdpAddress\": \"smdp.example\"}"},
        {"setFallbackAttribute", "{\"iccid\": \"89440000000000000011\"}"},
        {"unsetFallbackAttribute", NULL},
        {"setDefaultDpAddress", "{\"address\": \"smdp.example\"}"},
        {"addEim", "{\"eimId\": \"eim3.test\", \"eimFqdn\": \"eim3.test\", \"counterValue\": 0, "
                   "\"supportedProtocols\": [\"retrieveCoaps\"]}"},
        {"updateEim", "{\"eimId\": \"eim3.test\", \"eimFqdn\": \"new.eim3.test\"}"},
        {"deleteEim", "{\"eimId\": \"eim3.test\"}"},
        {"listEim", "{}"},
        {"ipaEuiccDataRequest", "{\"tagList\": \"a0a2\"}"},
        {"profileDownloadTrigger", "{\"activationCode\": \"1$smdp.example$MATCHING-ID\"}"},
    };
    static const char *const invalid[][2] = {
        {"enable", "{}"},                                              /* iccid missing */
        {"enable", "{\"iccid\": \"123\"}"},                            /* not an ICCID */
        {"enable", "{\"iccid\": \"89440000000000000011\", \"x\": 1}"}, /* unknown parameter */
        {"getRAT", "{\"iccid\": \"89440000000000000011\"}"},
        {"configureImmediateEnable", "{\"immediateEnable\": \"yes\"}"},
        {"listProfileInfo", "{\"tagList\": \"5g\"}"},
        {"setDefaultDpAddress", "{}"},
        {"profileDownloadTrigger", "{\"activationCode\": \"1$a$b\", \"contactSmds\": true}"},
        {"teleport", "{}"},
        {"enable", "[]"},
        /* values only the engine's reading knows to be wrong (an API table once let these
         * through, and the operation failed at its turn in the queue) */
        {"ipaEuiccDataRequest", "{\"notificationEvents\": [\"bogus\"]}"},
        {"ipaEuiccDataRequest", "{\"tagList\": \"\"}"},
    };
    char pki[300], ops_path[160], dev_path[128], op_path[64];
    json_t *dev = NULL, *j = NULL, *body = NULL;
    const char *eid = NULL;
    json_int_t first = 0, last = 0;
    const size_t nk = sizeof(kinds) / sizeof(kinds[0]);

    pki_dir(env, pki, sizeof(pki));
    dev = device_json(pki, 20);
    eid = json_string_value(json_object_get(dev, "eid"));
    expect(env, PL_EIMAPI_OPERATOR, "POST", "/v1/devices", dev, 201);
    snprintf(dev_path, sizeof(dev_path), "/v1/devices/%s", eid);
    snprintf(ops_path, sizeof(ops_path), "/v1/devices/%s/operations", eid);

    for (size_t i = 0; i < nk; i++) {
        body = json_pack("{s:s}", "kind", kinds[i][0]);
        if (kinds[i][1] != NULL)
            json_object_set_new(body, "params", json_loads(kinds[i][1], 0, NULL));
        j = call(env, PL_EIMAPI_OPERATOR, "POST", ops_path, body, 201);
        cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "queued");
        cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), kinds[i][0]);
        last = json_integer_value(json_object_get(j, "id"));
        if (i == 0)
            first = last;
        cr_assert(last > 0);
        json_decref(j);
        json_decref(body);
    }
    cr_assert_eq(last - first, (json_int_t)nk - 1);

    /* status of one operation, with its parameters as queued */
    snprintf(op_path, sizeof(op_path), "/v1/operations/%lld", (long long)first);
    j = call(env, PL_EIMAPI_READER, "GET", op_path, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "enable");
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "queued");
    cr_assert_str_eq(json_string_value(json_object_get(j, "eid")), eid);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "params"), "iccid")),
                     "89440000000000000011");
    cr_assert(json_is_true(json_object_get(json_object_get(j, "params"), "rollback")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "created_by")), "operator-op");
    cr_assert(json_is_null(json_object_get(j, "counter")));
    cr_assert(json_is_null(json_object_get(j, "result")));
    cr_assert(json_is_null(json_object_get(j, "outcome")));
    json_decref(j);

    /* the device shows them pending, in queue order */
    j = call(env, PL_EIMAPI_READER, "GET", dev_path, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "pending_operations")), nk);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(j, "pending_operations"), nk - 1), "kind")),
                     "profileDownloadTrigger");
    json_decref(j);
    j = call(env, PL_EIMAPI_READER, "GET", ops_path, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "operations")), nk);
    json_decref(j);

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        body = json_pack("{s:s}", "kind", invalid[i][0]);
        json_object_set_new(body, "params", json_loads(invalid[i][1], 0, NULL));
        expect(env, PL_EIMAPI_OPERATOR, "POST", ops_path, body, 400);
        json_decref(body);
    }
    body = json_pack("{s:s,s:{},s:i}", "kind", "getRAT", "params", "extra", 1);
    expect(env, PL_EIMAPI_OPERATOR, "POST", ops_path, body, 400);
    json_decref(body);
    body = json_pack("{s:{}}", "params");
    expect(env, PL_EIMAPI_OPERATOR, "POST", ops_path, body, 400); /* no kind */
    json_decref(body);
    /* nothing invalid was queued */
    j = call(env, PL_EIMAPI_READER, "GET", ops_path, NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "operations")), nk);
    json_decref(j);

    /* unknown device */
    body = json_pack("{s:s}", "kind", "getRAT");
    expect(env, PL_EIMAPI_OPERATOR, "POST",
           "/v1/devices/89049032000000000000000000000099/operations", body, 404);
    expect(env, PL_EIMAPI_READER, "GET", "/v1/devices/89049032000000000000000000000099/operations",
           NULL, 404);
    json_decref(body);
    json_decref(dev);
}

void pl_eimapi_bulk(struct pl_eimapi_env *env)
{
    char pki[300];
    json_t *batch = NULL, *devs = NULL, *d = NULL, *j = NULL, *refs = NULL;
    const char *eum = NULL;
    char eid_skipped[33] = "";

    pki_dir(env, pki, sizeof(pki));
    batch = json_pack("{s:s,s:s,s:s,s:s}", "format", "provline-station-batch/1", "batch_id",
                      "line1-2026-11-25-0001", "station", "line1", "created_at",
                      "2026-11-25T10:00:00Z");
    devs = json_array();
    refs = json_object();
    for (unsigned i = 0; i < 4; i++) {
        d = device_json(pki, 100 + i);
        json_object_set_new(d, "iccid", json_string("8944000000000000010"));
        json_object_set_new(d, "status", json_string(i == 3 ? "failed" : "installed"));
        json_object_set_new(d, "profile_state", json_string("enabled"));
        json_object_set_new(d, "fixture", json_string("F1"));
        json_object_set_new(d, "completed_at", json_string("2026-11-25T10:01:00Z"));
        json_object_set_new(d, "x_station_note", json_string("extensions are ignored"));
        if (i == 1) { /* the shared EUM certificate by reference */
            eum = json_string_value(json_object_get(d, "eum_certificate"));
            json_object_set_new(refs, "eum-1", json_string(eum));
            json_object_del(d, "eum_certificate");
            json_object_set_new(d, "eum_certificate_ref", json_string("eum-1"));
        }
        if (i == 3)
            snprintf(eid_skipped, sizeof(eid_skipped), "%s",
                     json_string_value(json_object_get(d, "eid")));
        json_array_append_new(devs, d);
    }
    json_object_set_new(batch, "eum_certificates", refs);
    json_object_set(batch, "devices", devs);

    expect(env, PL_EIMAPI_READER, "POST", "/v1/devices/bulk", batch, 403);
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", batch, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "batch_id")), "line1-2026-11-25-0001");
    cr_assert_eq(json_integer_value(json_object_get(j, "received")), 4);
    cr_assert_eq(json_integer_value(json_object_get(j, "created")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "skipped")), 1);
    cr_assert_eq(json_array_size(json_object_get(j, "conflicts")), 0);
    json_decref(j);
    {
        char path[128];
        const char *eid0 = json_string_value(json_object_get(json_array_get(devs, 0), "eid"));
        snprintf(path, sizeof(path), "/v1/devices/%s", eid0);
        j = call(env, PL_EIMAPI_READER, "GET", path, NULL, 200);
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "profiles"), 0), "iccid")),
                         "8944000000000000010");
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(j, "profiles"), 0), "state")),
                         "enabled");
        json_decref(j);
        snprintf(path, sizeof(path), "/v1/devices/%s", eid_skipped);
        expect(env, PL_EIMAPI_READER, "GET", path, NULL, 404); /* failed devices not imported */
    }
    /* the same report again: nothing new */
    j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", batch, 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "created")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "unchanged")), 3);
    json_decref(j);
    /* a device re-reported with another certificate is a conflict, listed by EID */
    {
        json_t *b2 = json_deep_copy(batch);
        json_t *d0 = json_array_get(json_object_get(b2, "devices"), 0);
        json_t *fresh = device_json(pki, 100);
        json_object_set(d0, "euicc_certificate", json_object_get(fresh, "euicc_certificate"));
        json_decref(fresh);
        j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b2, 200);
        cr_assert_eq(json_array_size(json_object_get(j, "conflicts")), 1);
        cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "conflicts"), 0)),
                         json_string_value(json_object_get(d0, "eid")));
        json_decref(j);
        json_decref(b2);
    }
    /* invalid batches are refused whole, with the entry named */
    {
        json_t *b3 = json_deep_copy(batch);
        json_t *extra = device_json(pki, 200);
        json_object_set_new(extra, "status", json_string("installed"));
        json_array_append_new(json_object_get(b3, "devices"), extra);
        json_object_set_new(json_array_get(json_object_get(b3, "devices"), 2), "status",
                            json_string("maybe"));
        j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b3, 400);
        cr_assert(strstr(error_message(j), "devices[2].status") != NULL, "%s", error_message(j));
        json_decref(j);
        expect(env, PL_EIMAPI_READER, "GET", "/v1/devices/89049032000000000000000000000200", NULL,
               404);
        json_decref(b3);
    }
    {
        json_t *b4 = json_deep_copy(batch);
        json_object_set_new(b4, "format", json_string("provline-station-batch/9"));
        expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b4, 400);
        json_decref(b4);
        b4 = json_deep_copy(batch);
        json_array_append(json_object_get(b4, "devices"),
                          json_array_get(json_object_get(b4, "devices"), 0));
        j = call(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b4, 400);
        cr_assert(strstr(error_message(j), "twice") != NULL, "%s", error_message(j));
        json_decref(j);
        json_decref(b4);
        b4 = json_deep_copy(batch);
        json_object_set_new(json_array_get(json_object_get(b4, "devices"), 1),
                            "eum_certificate_ref", json_string("nope"));
        expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b4, 400);
        json_decref(b4);
        b4 = json_deep_copy(batch);
        json_object_set_new(b4, "devices", json_array());
        expect(env, PL_EIMAPI_STATION, "POST", "/v1/devices/bulk", b4, 400);
        json_decref(b4);
    }
    json_decref(devs);
    json_decref(batch);
}

void pl_eimapi_bootstrap(struct pl_eimapi_env *env)
{
    json_t *j = call(env, PL_EIMAPI_STATION, "GET", "/v1/bootstrap", NULL, 200);
    const char *hex =
        json_string_value(json_object_get(json_object_get(j, "add_initial_eim_request"), "hex"));
    const char *b64 =
        json_string_value(json_object_get(json_object_get(j, "add_initial_eim_request"), "base64"));
    uint8_t *der = NULL, *der2 = NULL;
    size_t len = 0, len2 = 0;
    struct pl_sgp32_add_initial_eim_request req;

    cr_assert_not_null(hex);
    cr_assert_not_null(b64);
    cr_assert(strncmp(hex, "bf57", 4) == 0, "%s", hex);
    der = malloc(strlen(hex) / 2 + 1);
    cr_assert_eq(pl_hex_decode(hex, der, strlen(hex) / 2, &len), PL_OK);
    cr_assert_eq(pl_b64_decode(b64, strlen(b64), 1u << 16, &der2, &len2), PL_OK);
    cr_assert_eq(len, len2);
    cr_assert(memcmp(der, der2, len) == 0);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(der, len, &req), PL_OK);
    cr_assert_eq(req.n_eims, 1);
    cr_assert_eq(req.eims[0].eim_id.len, strlen("eim.test"));
    cr_assert(memcmp(req.eims[0].eim_id.p, "eim.test", 8) == 0);
    cr_assert(req.eims[0].has_eim_id_type);
    cr_assert_eq(req.eims[0].eim_id_type, PL_SGP32_EIM_ID_TYPE_FQDN);
    cr_assert(req.eims[0].has_counter);
    cr_assert_eq(req.eims[0].counter, 0);
    cr_assert(req.eims[0].has_association_token);
    cr_assert_eq(req.eims[0].association_token, -1);
    cr_assert_eq(req.eims[0].eim_public_key_data.kind, PL_SGP32_KEY_CERT);
    cr_assert(req.eims[0].has_supported_protocol);
    cr_assert_eq(req.eims[0].supported_protocol, PL_SGP32_PROTO_RETRIEVE_COAPS);
    cr_assert(req.eims[0].indirect_profile_download);
    cr_assert_str_eq(json_string_value(json_object_get(j, "eim_id")), "eim.test");
    cr_assert(strncmp(json_string_value(
                          json_object_get(json_object_get(j, "eim_configuration_data"), "hex")),
                      "30", 2)
              == 0);
    free(der);
    free(der2);
    json_decref(j);

    j = call(env, PL_EIMAPI_READER, "GET", "/v1/bootstrap?eimId=eim2.test", NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "eim_id")), "eim2.test");
    json_decref(j);
    expect(env, PL_EIMAPI_READER, "GET", "/v1/bootstrap?eimId=unknown.test", NULL, 404);
}

void pl_eimapi_cli(struct pl_eimapi_env *env)
{
    char exe[512], cmd[2048], out[8192], pki[300], cert[400], eum[400];
    struct pl_pki *p = NULL;
    struct pl_eckey *key = NULL;
    uint8_t eid[16], der[2048];
    char hex[33];
    size_t len = 0, elen = 0;
    const uint8_t *eum_der = NULL;
    FILE *f = NULL;

    bin(exe, sizeof(exe));
    pki_dir(env, pki, sizeof(pki));
    mkeid(300, eid, hex);
    cr_assert_eq(pl_pki_load(pki, &p), PL_OK);
    cr_assert_eq(
        pl_pki_mint_euicc_with(p, eid, &PL_RNG_SYSTEM, time(NULL), &key, der, sizeof(der), &len),
        PL_OK);
    pl_eckey_free(key);
    snprintf(cert, sizeof(cert), "%s/euicc300.der", env->dir);
    f = fopen(cert, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(der, 1, len, f), len);
    fclose(f);
    pl_cert_der(pl_pki_cert(p, PL_PKI_EUM), &eum_der, &elen);
    snprintf(eum, sizeof(eum), "%s/eum.der", env->dir);
    f = fopen(eum, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(eum_der, 1, elen, f), elen);
    fclose(f);
    pl_pki_free(p);

    snprintf(cmd, sizeof(cmd),
             "%s ctl --url %s --token %s devices add --eid %s --euicc-cert %s --eum-cert %s", exe,
             env->url, env->tokens[PL_EIMAPI_OPERATOR], hex, cert, eum);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "\"created\":true") != NULL, "%s", out);
    snprintf(cmd, sizeof(cmd), "%s ctl --url %s --token %s devices list", exe, env->url,
             env->tokens[PL_EIMAPI_READER]);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, hex) != NULL, "%s", out);
    snprintf(cmd, sizeof(cmd),
             "%s ctl --url %s --token %s ops queue %s enable --params "
             "'{\"iccid\":\"89440000000000000011\"}'",
             exe, env->url, env->tokens[PL_EIMAPI_OPERATOR], hex);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "\"state\":\"queued\"") != NULL, "%s", out);
    {
        json_t *j = json_loads(out, 0, NULL);
        long long id = (long long)json_integer_value(json_object_get(j, "id"));
        json_decref(j);
        snprintf(cmd, sizeof(cmd), "%s ctl --url %s --token %s ops show %lld", exe, env->url,
                 env->tokens[PL_EIMAPI_READER], id);
        cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
        cr_assert(strstr(out, "\"kind\":\"enable\"") != NULL, "%s", out);
    }
    snprintf(cmd, sizeof(cmd), "%s ctl --url %s --token %s devices show %s", exe, env->url,
             env->tokens[PL_EIMAPI_READER], hex);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "\"pending_operations\":[{") != NULL, "%s", out);
    /* the token from the environment; a wrong one fails with exit status 1 */
    snprintf(cmd, sizeof(cmd), "PL_EIM_TOKEN=%s %s ctl --url %s bootstrap --eim-id eim2.test",
             env->tokens[PL_EIMAPI_STATION], exe, env->url);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "\"eim_id\":\"eim2.test\"") != NULL, "%s", out);
    snprintf(cmd, sizeof(cmd), "%s ctl --url %s --token nope devices list 2>&1", exe, env->url);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "HTTP 401") != NULL, "%s", out);
    snprintf(cmd, sizeof(cmd), "%s ctl --url %s devices frobnicate 2>/dev/null", exe, env->url);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2);
    /* the server is gone: a clean error, not a hang */
    snprintf(cmd, sizeof(cmd), "%s ctl --url http://127.0.0.1:1 --token x devices list 2>&1", exe);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
}

void pl_eimapi_check_config(struct pl_eimapi_env *env)
{
    char exe[512], cmd[1200], out[2048], bad[400];
    bin(exe, sizeof(exe));
    snprintf(cmd, sizeof(cmd), "%s serve --config %s --check-config 2>&1", exe, env->config);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "configuration OK") != NULL);

    snprintf(bad, sizeof(bad), "%s/bad.json", env->dir);
    write_text(bad, "{\"store\": {\"backend\": \"sqlite\", \"path\": \"x.db\", \"counter_guard\":"
                    " \"g\", \"colour\": \"blue\"}, \"eims\": [{\"eim_id\": \"e\"}]}");
    snprintf(cmd, sizeof(cmd), "%s serve --config %s --check-config 2>&1", exe, bad);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "store: unknown key \"colour\"") != NULL, "%s", out);
    write_text(bad, "{\"store\": {\"backend\": \"sqlite\", \"path\": \"x.db\", \"counter_guard\":"
                    " \"g\"}, \"eims\": []}");
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "eims") != NULL, "%s", out);
    write_text(bad, "{\"store\": {\"backend\": \"mysql\", \"counter_guard\": \"g\"},"
                    " \"eims\": [{\"eim_id\": \"e\"}]}");
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "store.backend") != NULL, "%s", out);
    write_text(bad, "{\"store\": {\"backend\": \"sqlite\", \"path\": \"x.db\", \"counter_guard\":"
                    " \"g\"}, \"eims\": [{\"eim_id\": \"e\", \"public_key\": {\"certificate\":"
                    " \"missing.der\"}}]}");
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "missing.der") != NULL, "%s", out);
    write_text(bad, "{\"store\": ");
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    snprintf(cmd, sizeof(cmd), "%s serve 2>/dev/null", exe);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2);
}

static void copy_file(const char *from, const char *to)
{
    size_t len = 0;
    uint8_t *buf = pl_test_read_file(from, &len);
    FILE *f = NULL;
    cr_assert_not_null(buf, "cannot read %s", from);
    f = fopen(to, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(buf);
}

static uint32_t reserve_n(const char *config, const uint8_t eid[16], int n, bool add)
{
    struct pl_eim_config *cfg = NULL;
    struct pl_eim_store *s = NULL;
    char err[512];
    uint32_t c = 0;
    cr_assert_eq(pl_eim_config_load(config, &cfg, err, sizeof(err)), PL_OK, "%s", err);
    cr_assert_eq(pl_eim_config_open_store(cfg, false, false, &s), PL_OK);
    if (add) {
        struct pl_eim_device d;
        memset(&d, 0, sizeof(d));
        memcpy(d.eid, eid, 16);
        cr_assert_eq(pl_eim_store_device_put(s, "test", &d), PL_OK);
    }
    for (int i = 0; i < n; i++)
        cr_assert_eq(pl_eim_store_reserve_counter(s, eid, &c), PL_OK);
    pl_eim_store_close(s);
    pl_eim_config_free(cfg);
    return c;
}

void pl_eimapi_store_recover(struct pl_eimapi_env *env)
{
    char exe[512], cmd[1200], out[4096], db[400], backup[400], side[420];
    uint8_t eid[16];
    char hex[33];
    uint32_t last = 0, next = 0;
    int st = 0;

    /* the daemon is stopped for a restore */
    kill(env->pid, SIGTERM);
    cr_assert_eq(waitpid(env->pid, &st, 0), env->pid);
    env->pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    bin(exe, sizeof(exe));
    snprintf(db, sizeof(db), "%s/eim.db", env->dir);
    snprintf(backup, sizeof(backup), "%s/eim.db.backup", env->dir);
    mkeid(500, eid, hex);
    last = reserve_n(env->config, eid, 3, true);
    cr_assert_eq(last, 3);
    copy_file(db, backup); /* every handle closed: the WAL is in the main file */
    last = reserve_n(env->config, eid, 5, false);
    cr_assert_eq(last, 8); /* 4..8 went out after the backup */
    copy_file(backup, db);
    snprintf(side, sizeof(side), "%s-wal", db);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", db);
    unlink(side);

    /* (timeout: a daemon that wrongly starts must not hang the test) */
    snprintf(cmd, sizeof(cmd), "timeout 20 %s serve --config %s 2>&1", exe, env->config);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "store recover") != NULL, "%s", out);
    snprintf(cmd, sizeof(cmd), "%s store recover --config %s 2>&1", exe, env->config);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "recovered: 1 ") != NULL, "%s", out);
    next = reserve_n(env->config, eid, 1, false);
    cr_assert(next > last, "counter %u reused after the restore (last handed out %u)", next, last);
    snprintf(cmd, sizeof(cmd), "%s store recover 2>&1", exe);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
}
