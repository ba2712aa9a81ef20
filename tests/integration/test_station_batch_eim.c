/* Integration: a station's batch goes to the eIM unchanged. A whole lab line (the real
 * provline-keymaker with TS.48 "UNIQUE" profiles, provline-station --once, 3 provline-vdevice
 * processes: 2 serial, 1 CoAP) produces its devices; `provline-station export --batch` writes
 * the journal in the eIM's bulk-import format; a real `provline-eim serve` (SQLite, trusting
 * the line's CI) takes the file byte for byte on POST /v1/devices/bulk: every device is
 * created with its certificates (chain verified to the CI) and its factory profile, a
 * second post changes nothing, and the ICCIDs of the UNIQUE profiles - an F nibble inside -
 * are accepted for registration and for an operation.
 * docs/eim-api.md "Bulk import", docs/station.8.md (export), station/batch.h. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pl_line.h"
#include "pl_test.h"
#include "provline/eim/http_client.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"

#define N_DEV 3u
#define RUN_MS 180000

struct eim {
    char dir[700], config[800], url[64];
    char station_tok[128], reader_tok[128], operator_tok[128];
    pid_t pid;
};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert(fputs(text, f) >= 0);
    cr_assert_eq(fclose(f), 0);
}

static void token(const struct pl_line *l, struct eim *m, const char *role, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-eim' token add --config '%s' --operator %s-op --role %s 2>&1", l->bin,
             m->config, role, role);
    cr_assert_eq(pl_test_run(cmd, out, cap), 0, "token add: %s", out);
    out[strcspn(out, "\n")] = '\0';
    cr_assert(strncmp(out, "pleim_", 6) == 0, "token add printed: %s", out);
}

/* provline-eim serve on SQLite whose trust anchor is the line's CI and whose eIM identity is
 * the one the station configured on the devices. */
static void eim_start(const struct pl_line *l, struct eim *m)
{
    char cfg[4096], exe[600];

    memset(m, 0, sizeof(*m));
    snprintf(m->dir, sizeof(m->dir), "%s/eim", l->dir);
    cr_assert_eq(mkdir(m->dir, 0700), 0);
    snprintf(m->config, sizeof(m->config), "%s/eim.json", m->dir);
    snprintf(cfg, sizeof(cfg),
             "{\"http\": {\"listen\": \"127.0.0.1\", \"port\": 0, \"port_file\": \"port\",\n"
             "          \"max_body\": 16384, \"max_bulk_body\": 262144},\n"
             " \"store\": {\"backend\": \"sqlite\", \"path\": \"eim.db\","
             " \"counter_guard\": \"eim.guard\"},\n"
             " \"trust\": {\"ci_certificates\": [\"%s/ci.der\"]},\n"
             " \"eims\": [{\"eim_id\": \"%s\", \"eim_fqdn\": \"%s\",\n"
             "            \"public_key\": {\"certificate\": \"%s/eim.der\"}}]}\n",
             l->pki, l->eim_id, l->eim_id, l->pki);
    write_text(m->config, cfg);
    token(l, m, "station", m->station_tok, sizeof(m->station_tok));
    token(l, m, "reader", m->reader_tok, sizeof(m->reader_tok));
    token(l, m, "operator", m->operator_tok, sizeof(m->operator_tok));

    snprintf(exe, sizeof(exe), "%s/provline-eim", l->bin);
    char err[8192];
    unsigned port = 0;
    int pid = pl_test_eim_serve(exe, m->config, m->dir, &port, err, sizeof(err));
    cr_assert(pid > 0, "%s", err);
    m->pid = (pid_t)pid;
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%u", port);
}

static void eim_stop(struct eim *m)
{
    int st = 0;
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGTERM);
    cr_assert_eq(waitpid(m->pid, &st, 0), m->pid);
    m->pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "provline-eim serve exit %d", st);
}

static json_t *call(const struct eim *m, const char *token, const char *method, const char *path,
                    const void *body, size_t len, int want)
{
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    json_t *j = NULL;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.token = token;
    req.body = body;
    req.body_len = len;
    cr_assert_eq(pl_eim_http_do(m->url, &req, 1u << 20, 30000, &resp), PL_OK, "%s %s", method,
                 path);
    cr_assert_eq(resp.status, want, "%s %s: HTTP %d: %s", method, path, resp.status, resp.body);
    j = json_loadb(resp.body, resp.body_len, 0, NULL);
    cr_assert_not_null(j, "%s %s: not JSON: %s", method, path, resp.body);
    pl_eim_http_resp_clear(&resp);
    return j;
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "no integer %s", key);
    return json_integer_value(v);
}

/* The ICCID of the device's one profile as the eIM writes ICCIDs: the '5A' bytes in
 * EF.ICCID nibble order (low nibble first), a non-digit as F, trailing F dropped. Written
 * here independently of pl_iccid_text (protocol/iccid.h). */
static void device_iccid(const struct pl_line_dev *d, char out[21])
{
    struct pl_euicc *e = NULL;
    struct pl_euicc_profile_info pi;
    size_t o = 0;
    cr_assert_eq(pl_euicc_open(d->euicc, NULL, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
    cr_assert_not(pi.enabled, "the factory profile is installed disabled");
    for (size_t i = 0; i < sizeof(pi.iccid); i++) {
        unsigned lo = pi.iccid[i] & 0x0Fu, hi = pi.iccid[i] >> 4;
        out[o++] = lo < 10 ? (char)('0' + lo) : 'F';
        out[o++] = hi < 10 ? (char)('0' + hi) : 'F';
    }
    while (o > 0 && out[o - 1] == 'F')
        o--;
    out[o] = '\0';
    pl_euicc_close(e);
}

Test(station_batch_eim, line_batch_posted_unchanged, .timeout = 300)
{
    struct pl_line l;
    struct eim m;
    char cmd[4096], out[8192], batch[700], path[128], iccid[N_DEV][21];
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    for (size_t i = 0; i < N_DEV; i++) {
        cr_assert_eq(pl_line_add_device(&l, i == N_DEV - 1, 2), 0);
        cr_assert_eq(pl_line_dev_start(&l, i), 0);
    }
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, RUN_MS, &status), 0, "station did not finish (log %s)",
                 l.st_log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d (log %s)", status,
              l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), (int)N_DEV, "not every device done");
    for (size_t i = 0; i < N_DEV; i++) {
        int st = pl_line_dev_stop(&l, i, SIGTERM);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vdevice %zu exit %d", i, st);
        device_iccid(&l.dev[i], iccid[i]);
        /* TS.48 "UNIQUE" profiles: 19-digit ICCIDs of the telecom industry (89...), read from
         * the eUICC's own ProfileInfo in EF.ICCID coding (SGP.22 Iccid). */
        cr_assert(strncmp(iccid[i], "8949449999999990", 16) == 0 && strlen(iccid[i]) == 19,
                  "%s", iccid[i]);
    }
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);

    /* The batch, as an operator would run it. */
    snprintf(batch, sizeof(batch), "%s/batch.json", l.dir);
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-station' export --journal '%s' --batch '%s' --station test-line "
             "--eim-id '%s' 2>&1",
             l.bin, l.journal, batch, l.eim_id);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    size_t len = 0;
    uint8_t *body = pl_test_read_file(batch, &len);
    cr_assert_not_null(body);
    json_t *b = json_loadb((const char *)body, len, 0, NULL);
    cr_assert_not_null(b, "%s", body);
    cr_assert_str_eq(json_string_value(json_object_get(b, "format")), "provline-station-batch/1");
    cr_assert(strncmp(json_string_value(json_object_get(b, "batch_id")), "test-line-", 10) == 0);
    cr_assert_eq(json_array_size(json_object_get(b, "devices")), N_DEV);
    /* One EUM for the whole line, named once. */
    cr_assert_eq(json_object_size(json_object_get(b, "eum_certificates")), 1);
    json_decref(b);

    eim_start(&l, &m);
    /* Posted unchanged: every device created. */
    json_t *r = call(&m, m.station_tok, "POST", "/v1/devices/bulk", body, len, 200);
    cr_assert_eq(num(r, "received"), N_DEV);
    cr_assert_eq(num(r, "created"), N_DEV, "%s", json_dumps(r, 0));
    cr_assert_eq(num(r, "unchanged"), 0);
    cr_assert_eq(num(r, "skipped"), 0);
    cr_assert_eq(json_array_size(json_object_get(r, "conflicts")), 0);
    json_decref(r);
    /* Again: safe, nothing changes. */
    r = call(&m, m.station_tok, "POST", "/v1/devices/bulk", body, len, 200);
    cr_assert_eq(num(r, "created"), 0);
    cr_assert_eq(num(r, "unchanged"), N_DEV);
    cr_assert_eq(json_array_size(json_object_get(r, "conflicts")), 0);
    json_decref(r);
    free(body);

    for (size_t i = 0; i < N_DEV; i++) {
        char eid[33];
        cr_assert_eq(pl_hex_encode(l.dev[i].eid, 16, eid, sizeof(eid)), PL_OK);
        snprintf(path, sizeof(path), "/v1/devices/%s", eid);
        json_t *d = call(&m, m.reader_tok, "GET", path, NULL, 0, 200);
        cr_assert_str_eq(json_string_value(json_object_get(d, "eid")), eid);
        cr_assert(json_is_true(json_object_get(d, "has_euicc_certificate")));
        cr_assert(json_is_true(json_object_get(d, "has_eum_certificate")));
        json_t *assoc = json_object_get(d, "association");
        cr_assert_str_eq(json_string_value(json_object_get(assoc, "eim_id")), l.eim_id);
        json_t *profs = json_object_get(d, "profiles");
        cr_assert_eq(json_array_size(profs), 1, "device %zu profiles", i);
        json_t *p = json_array_get(profs, 0);
        cr_assert_str_eq(json_string_value(json_object_get(p, "iccid")), iccid[i]);
        cr_assert_str_eq(json_string_value(json_object_get(p, "state")), "disabled");
        json_decref(d);
        /* The same ICCID names the profile in an operation. */
        char op[128];
        int n = snprintf(op, sizeof(op), "{\"kind\": \"enable\", \"params\": {\"iccid\": \"%s\"}}",
                         iccid[i]);
        snprintf(path, sizeof(path), "/v1/devices/%s/operations", eid);
        json_decref(call(&m, m.operator_tok, "POST", path, op, (size_t)n, 201));
    }
    /* Not an ICCID: refused (17 digits, or a letter other than F); an F nibble inside (the
     * engine's text of any 5A bytes) is still taken. */
    {
        char eid[33], op[128];
        cr_assert_eq(pl_hex_encode(l.dev[0].eid, 16, eid, sizeof(eid)), PL_OK);
        snprintf(path, sizeof(path), "/v1/devices/%s/operations", eid);
        int n = snprintf(op, sizeof(op), "{\"kind\": \"enable\", \"params\": {\"iccid\": \"%s\"}}",
                         "9894449999999909FFF3");
        json_decref(call(&m, m.operator_tok, "POST", path, op, (size_t)n, 400));
        n = snprintf(op, sizeof(op), "{\"kind\": \"enable\", \"params\": {\"iccid\": \"%s\"}}",
                     "989444999999990920A3");
        json_decref(call(&m, m.operator_tok, "POST", path, op, (size_t)n, 400));
        n = snprintf(op, sizeof(op), "{\"kind\": \"enable\", \"params\": {\"iccid\": \"%s\"}}",
                     "989444999999990920F3");
        json_decref(call(&m, m.operator_tok, "POST", path, op, (size_t)n, 201));
    }
    eim_stop(&m);
    pl_line_free(&l);
}
