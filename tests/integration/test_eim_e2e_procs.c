/* integration.eim_e2e_procs: acceptance of the eIM with real processes (PL_TEST_SLOW).
 * `provline-eim serve` (HTTP API + ESipa CoAP/DTLS in one process, docs/eim-api.md §esipa)
 * and one `provline-ipa` process per device, each on a software eUICC that went through
 * production in this test (one profile by IFPP, factory closed, AddInitialEim naming this
 * eIM with the test PKI's eIM certificate). Devices are registered by the bulk import of a
 * station batch report; every operation is queued through the HTTP API, executed by the
 * eUICC behind the IPA, verified by the eIM, and read back through the API; after the IPAs
 * stop, each eUICC's own state file is the cross-check. Negative cases: a device whose PSK
 * is wrong never gets a package; an operation for an unknown EID is refused with nothing
 * changed. Lost result: one IPA runs with --lose-result-after-enable.
 * test_eim_e2e_procs_pg.c runs the same on PostgreSQL (PL_E2E_PG), plus two `serve`
 * processes sharing one database.
 * GSMA SGP.32 v1.2 §2.11, §3, §6.1-6.3; docs/eim-engine.md; docs/ipa.md. */
#define _POSIX_C_SOURCE 200809L

#include "pl_ipa_test.h"
#include "pl_pgtest.h"
#include "provline/protocol/b64.h"
#include "provline/eim/http_client.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"
#include "provline/sim/pki.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PL_E2E_PG
#define PL_E2E_PG 0
#endif

#define EIM_ID   "eim.procs.test"
#define NDEV     4 /* 0..2 good devices, 3 with a wrong PSK */
#define NSERVE   2
#define WAIT_MS  60000 /* safety net only: every wait ends on a state, never on a time */
#define HTTP_CAP (4u << 20)
/* A TS.48 profile with a 20-digit ICCID (the 19-digit *-UNIQUE ones: see
 * integration.station_batch_eim). */
#define UPP "TS48v2_SAIP2.1_BERTLV.der"

struct dev {
    char card[300];
    char ipa_state[300];
    char psk_id[32];
    char psk_hex[65];
    uint8_t eid[16];
    char eid_hex[33];
    uint8_t iccid[10];
    char iccid_txt[24];
    bool has_token;
    int64_t token;
    uint8_t cert[2048];
    size_t cert_len;
    uint8_t eum[2048];
    size_t eum_len;
    pid_t ipa;
};

static struct pl_et T;
static struct dev D[NDEV];
static char CONNINFO[512];
static char URL[NSERVE][64];
static uint16_t COAP_PORT[NSERVE];
static pid_t SERVE[NSERVE];
static char TOKEN[256];
static bool CLAIMED[NSERVE]; /* nodes that completed operations */

/* argv entries (execv takes char *const []). */
static char *A(const char *s)
{
    return (char *)(uintptr_t)s;
}

static const char *bin(const char *name, char *out, size_t cap)
{
    const char *b = getenv("PL_BIN_DIR");
    cr_assert(b != NULL, "PL_BIN_DIR is not set");
    snprintf(out, cap, "%s/%s", b, name);
    return out;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fork + exec with stdout/stderr to log (appended). */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int stop_proc(pid_t *pid)
{
    int rc = 0;
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        rc = wait_exit(*pid);
        *pid = 0;
    }
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (f == NULL)
        return strdup("");
    buf = calloc(1, 1u << 20);
    n = buf ? fread(buf, 1, (1u << 20) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

/* The last 3000 bytes of a log, for assertion messages (static buffer). */
static const char *tail(const char *path)
{
    static char out[3001];
    char *all = slurp(path);
    size_t n = strlen(all);
    snprintf(out, sizeof(out), "%s", all + (n > 3000 ? n - 3000 : 0));
    free(all);
    return out;
}

static uint16_t wait_port(const char *path, pid_t pid, const char *log)
{
    int64_t end = mono_ms() + WAIT_MS;
    for (;;) {
        FILE *f = fopen(path, "r");
        unsigned port = 0;
        if (f != NULL) {
            int ok = fscanf(f, "%u", &port);
            fclose(f);
            if (ok == 1 && port > 0 && port < 65536)
                return (uint16_t)port;
        }
        cr_assert(waitpid(pid, NULL, WNOHANG) == 0, "serve exited:\n%s", tail(log));
        cr_assert(mono_ms() < end, "no port in %s:\n%s", path, tail(log));
        sleep_ms(20);
    }
}

/* One API call; returns the HTTP status, *out the parsed body (may be NULL). */
static int api(int node, const char *method, const char *path, const char *body, json_t **out)
{
    struct pl_eim_http_req req;
    struct pl_eim_http_resp resp;
    json_error_t jerr;
    int st;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.path = path;
    req.token = TOKEN;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    cr_assert_eq(pl_eim_http_do(URL[node], &req, HTTP_CAP, 10000, &resp), PL_OK, "%s %s", method,
                 path);
    st = resp.status;
    if (out != NULL)
        *out = resp.body_len ? json_loads(resp.body, 0, &jerr) : NULL;
    pl_eim_http_resp_clear(&resp);
    return st;
}

static int64_t queue_op(int node, const struct dev *d, const char *kind, const char *params)
{
    char path[128], body[2048];
    json_t *r = NULL;
    snprintf(path, sizeof(path), "/v1/devices/%s/operations", d->eid_hex);
    snprintf(body, sizeof(body), "{\"kind\":\"%s\"%s%s%s}", kind, params ? ",\"params\":" : "",
             params ? params : "", "");
    int st = api(node, "POST", path, body, &r);
    cr_assert_eq(st, 201, "queue %s: HTTP %d", kind, st);
    int64_t id = (int64_t)json_integer_value(json_object_get(r, "id"));
    cr_assert_str_eq(json_string_value(json_object_get(r, "state")), "queued");
    json_decref(r);
    cr_assert(id > 0);
    return id;
}

/* GET /v1/operations/{id} (owned). */
static json_t *get_op(int node, int64_t id)
{
    char path[64];
    json_t *r = NULL;
    snprintf(path, sizeof(path), "/v1/operations/%lld", (long long)id);
    cr_assert_eq(api(node, "GET", path, NULL, &r), 200);
    return r;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Waits until the operation is done or failed; returns it (owned). */
static json_t *wait_op(int node, int64_t id, const char *log)
{
    int64_t end = mono_ms() + WAIT_MS;
    for (;;) {
        json_t *o = get_op(node, id);
        const char *st = jstr(o, "state");
        if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0)
            return o;
        cr_assert(mono_ms() < end, "op %lld (%s) still %s\n%s", (long long)id, jstr(o, "kind"), st,
                  log ? tail(log) : "");
        json_decref(o);
        sleep_ms(30);
    }
}

static void expect_op(int node, int64_t id, const char *state, const char *outcome, const char *log)
{
    json_t *o = wait_op(node, id, log);
    char *txt = json_dumps(o, JSON_COMPACT);
    cr_assert_str_eq(jstr(o, "state"), state, "%s\n%s", txt, log ? tail(log) : "");
    if (outcome != NULL)
        cr_assert_str_eq(jstr(o, "outcome"), outcome, "%s\n%s", txt, log ? tail(log) : "");
    free(txt);
    json_decref(o);
}

static json_t *get_dev(int node, const struct dev *d)
{
    char path[64];
    json_t *r = NULL;
    snprintf(path, sizeof(path), "/v1/devices/%s", d->eid_hex);
    cr_assert_eq(api(node, "GET", path, NULL, &r), 200);
    return r;
}

/* The device's profile entry for its ICCID in the API view (borrowed from dev), or NULL. */
static const json_t *api_profile(const json_t *dev, const struct dev *d)
{
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(dev, "profiles"), i, p)
    {
        if (strcmp(jstr(p, "iccid"), d->iccid_txt) == 0)
            return p;
    }
    return NULL;
}

static void iccid_text(const uint8_t ic[10], char out[24])
{
    static const char hex[] = "0123456789FFFFFF";
    size_t o = 0;
    for (size_t i = 0; i < 10; i++) {
        out[o++] = hex[ic[i] & 0x0F];
        out[o++] = hex[ic[i] >> 4];
    }
    while (o > 0 && out[o - 1] == 'F')
        o--;
    out[o] = '\0';
}

static void b64_set(json_t *o, const char *k, const uint8_t *p, size_t n)
{
    char *b = malloc(pl_b64_len(n) + 1);
    cr_assert(b != NULL);
    cr_assert_eq(pl_b64_encode(p, n, b, pl_b64_len(n) + 1), PL_OK);
    json_object_set_new(o, k, json_string(b));
    free(b);
}

/* ---- set-up: PKI, devices through production, configuration, servers ---- */

static void make_devices(void)
{
    for (size_t i = 0; i < NDEV; i++) {
        struct dev *d = &D[i];
        struct pl_it_eim eim = {EIM_ID, EIM_ID, false, 0};
        struct pl_euicc_opts o;
        struct pl_euicc *e = NULL;
        const uint8_t *p = NULL;
        size_t n = 0;
        char name[32];
        memset(d, 0, sizeof(*d));
        snprintf(name, sizeof(name), "card%zu.state", i);
        cr_assert_eq(pl_et_mint(&T, name, 1, NULL, d->card, sizeof(d->card)), PL_OK);
        snprintf(d->ipa_state, sizeof(d->ipa_state), "%s/ipa%zu.state", T.dir, i);
        pl_euicc_opts_init(&o);
        cr_assert_eq(pl_euicc_open(d->card, &o, &e), PL_OK);
        pl_euicc_get_eid(e, d->eid);
        cr_assert_eq(pl_it_produce_upp(&T, e, &eim, UPP, d->iccid), PL_OK);
        d->has_token = eim.has_token;
        d->token = eim.token;
        pl_euicc_cert_euicc(e, &p, &n);
        cr_assert(n <= sizeof(d->cert));
        memcpy(d->cert, p, n);
        d->cert_len = n;
        pl_euicc_cert_eum(e, &p, &n);
        cr_assert(n <= sizeof(d->eum));
        memcpy(d->eum, p, n);
        d->eum_len = n;
        pl_euicc_close(e);
        cr_assert_eq(pl_hex_encode(d->eid, 16, d->eid_hex, sizeof(d->eid_hex)), PL_OK);
        iccid_text(d->iccid, d->iccid_txt);
        cr_log_info("device %zu: EID %s ICCID %s", i, d->eid_hex, d->iccid_txt);
        snprintf(d->psk_id, sizeof(d->psk_id), "dev-%zu", i);
        for (size_t k = 0; k < 16; k++)
            snprintf(d->psk_hex + 2 * k, 3, "%02x", (unsigned)(0x10 + 16 * i + k) & 0xFF);
    }
}

static void write_config(int node, const char *path)
{
    const char *pki = pl_pki_dir(T.pki);
    char store[1200], esipa[2400];
    FILE *f;
    if (PL_E2E_PG)
        snprintf(store, sizeof(store),
                 "{\"backend\":\"postgres\",\"conninfo\":\"%s\",\"counter_guard\":\"eim%d.guard\","
                 "\"guard_block\":4}",
                 CONNINFO, node);
    else
        snprintf(store, sizeof(store),
                 "{\"backend\":\"sqlite\",\"path\":\"eim.db\",\"counter_guard\":\"eim%d.guard\","
                 "\"guard_block\":4}",
                 node);
    snprintf(esipa, sizeof(esipa),
             "{\"signing_key\":\"%s/eim.key\",\"eim_id\":\"%s\",\"claimer\":\"eim-%d\","
             "\"port\":0,\"port_file\":\"esipa%d.port\",\"security\":[\"psk\",\"pki\"],"
             "\"certificate\":\"%s/eim-tls.crt\",\"private_key\":\"%s/eim-tls.key\","
             "\"result_timeout_ms\":3000}",
             pki, EIM_ID, node, node, pki, pki);
    f = fopen(path, "w");
    cr_assert(f != NULL);
    fprintf(f,
            "{\"http\":{\"listen\":\"127.0.0.1\",\"port\":0,\"port_file\":\"http%d.port\"},\n"
            " \"store\":%s,\n"
            " \"trust\":{\"ci_certificates\":[\"%s/ci.der\"]},\n"
            " \"eims\":[{\"eim_id\":\"%s\",\"eim_fqdn\":\"%s\",\"eim_id_type\":\"fqdn\","
            "\"counter_value\":0,\"association_token\":-1,"
            "\"public_key\":{\"certificate\":\"%s/eim.der\"}}],\n"
            " \"esipa\":%s}\n",
            node, store, pki, EIM_ID, EIM_ID, pki, esipa);
    cr_assert_eq(fclose(f), 0);
}

static void log_path(const char *what, int i, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s%d.log", T.dir, what, i);
}

static void start_serve(int node)
{
    char cfg[400], log[400], port[400], exe[400];
    log_path("serve", node, log, sizeof(log));
    snprintf(cfg, sizeof(cfg), "%s/eim%d.json", T.dir, node);
    write_config(node, cfg);
    bin("provline-eim", exe, sizeof(exe));
    if (node == 0 && TOKEN[0] == '\0') {
        char out[400];
        snprintf(out, sizeof(out), "%s/token.out", T.dir);
        char *argv[] = {
            exe,         A("token"), A("add"), A("--config"), cfg, A("--operator"), A("acceptance"),
            A("--role"), A("admin"), NULL};
        pid_t p = spawn(argv, out);
        cr_assert_eq(wait_exit(p), 0, "%s", tail(out));
        char *t = slurp(out);
        cr_assert(sscanf(t, "%255s", TOKEN) == 1, "%s", t);
        free(t);
    }
    char *argv[] = {exe, A("serve"), A("--config"), cfg, node > 0 ? A("--new-guard") : NULL, NULL};
    SERVE[node] = spawn(argv, log);
    snprintf(port, sizeof(port), "%s/http%d.port", T.dir, node);
    snprintf(URL[node], sizeof(URL[node]), "http://127.0.0.1:%u",
             (unsigned)wait_port(port, SERVE[node], log));
    snprintf(port, sizeof(port), "%s/esipa%d.port", T.dir, node);
    COAP_PORT[node] = wait_port(port, SERVE[node], log);
}

/* The IPA of device i against eIM node; psk NULL: certificate mode (the test PKI's TLS CA). */
static void start_ipa(size_t i, int node, const char *psk, bool lose)
{
    struct dev *d = &D[i];
    char exe[400], url[128], log[400], ca[400], iv[] = "--interval-ms";
    (void)iv;
    log_path("ipa", (int)i, log, sizeof(log));
    bin("provline-ipa", exe, sizeof(exe));
    snprintf(url, sizeof(url), "coaps://127.0.0.1:%u", (unsigned)COAP_PORT[node]);
    snprintf(ca, sizeof(ca), "%s/tls-ca.crt", pl_pki_dir(T.pki));
    char *argv[20];
    size_t a = 0;
    argv[a++] = exe;
    argv[a++] = A("--euicc");
    argv[a++] = d->card;
    argv[a++] = A("--eim");
    argv[a++] = url;
    if (psk != NULL) {
        argv[a++] = A("--psk-id");
        argv[a++] = d->psk_id;
        argv[a++] = A("--psk");
        argv[a++] = A(psk);
    } else {
        argv[a++] = A("--ca");
        argv[a++] = ca;
    }
    argv[a++] = A("--state");
    argv[a++] = d->ipa_state;
    argv[a++] = iv;
    argv[a++] = A("50");
    argv[a++] = A("--max-interval-ms");
    argv[a++] = A("200");
    argv[a++] = A("--timeout-ms");
    argv[a++] = A("2000");
    if (lose)
        argv[a++] = A("--lose-result-after-enable");
    argv[a] = NULL;
    d->ipa = spawn(argv, log);
}

static void stop_ipa(size_t i)
{
    char log[400];
    log_path("ipa", (int)i, log, sizeof(log));
    cr_assert_eq(stop_proc(&D[i].ipa), 0, "ipa %zu:\n%s", i, tail(log));
}

/* Registers every device by the bulk import of a station-style batch report. */
static void import_batch(int node)
{
    json_t *b =
        json_pack("{s:s,s:s,s:s,s:s,s:[]}", "format", "provline-station-batch/1", "batch_id",
                  "acceptance-0001", "station", "line1", "eim_id", EIM_ID, "devices");
    json_t *r = NULL;
    for (size_t i = 0; i < NDEV; i++) {
        json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "eid", D[i].eid_hex, "status",
                              "installed", "iccid", D[i].iccid_txt, "profile_state", "disabled",
                              "psk_identity", D[i].psk_id, "psk_key", D[i].psk_hex);
        cr_assert(e != NULL);
        b64_set(e, "euicc_certificate", D[i].cert, D[i].cert_len);
        b64_set(e, "eum_certificate", D[i].eum, D[i].eum_len);
        if (D[i].has_token)
            json_object_set_new(e, "association_token", json_integer(D[i].token));
        json_array_append_new(json_object_get(b, "devices"), e);
    }
    char *txt = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    int st = api(node, "POST", "/v1/devices/bulk", txt, &r);
    free(txt);
    char *rt = r ? json_dumps(r, JSON_COMPACT) : strdup("(none)");
    cr_assert_eq(st, 200, "bulk: %d %s", st, rt);
    cr_assert_eq(json_integer_value(json_object_get(r, "created")), NDEV, "%s", rt);
    free(rt);
    json_decref(r);
}

static void setup(void)
{
    memset(SERVE, 0, sizeof(SERVE));
    memset(CLAIMED, 0, sizeof(CLAIMED));
    TOKEN[0] = '\0';
    cr_assert_eq(pl_et_init(&T, PL_CURVE_P256), PL_OK);
    if (PL_E2E_PG) {
        struct pl_pgtest pg;
        char err[2048], sql[128], db[64];
        static unsigned seq;
        cr_assert_eq(pl_pgtest_import(&pg, err, sizeof(err)), 0, "%s", err);
        snprintf(db, sizeof(db), "procs_%ld_%u", (long)getpid(), seq++);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        cr_assert_eq(pl_pgtest_sql(&pg, sql, err, sizeof(err)), 0, "%s", err);
        pl_pgtest_conninfo(&pg, db, CONNINFO, sizeof(CONNINFO));
    }
    make_devices();
}

static void teardown(void)
{
    for (size_t i = 0; i < NDEV; i++) {
        if (D[i].ipa > 0) {
            kill(D[i].ipa, SIGKILL);
            (void)wait_exit(D[i].ipa);
            D[i].ipa = 0;
        }
    }
    for (int n = 0; n < NSERVE; n++) {
        if (SERVE[n] > 0) {
            kill(SERVE[n], SIGKILL);
            (void)wait_exit(SERVE[n]);
            SERVE[n] = 0;
        }
    }
    if (getenv("PL_KEEP_TMP") == NULL)
        pl_et_free(&T);
}

/* ---- checks on the eUICC's own state ---- */

static struct pl_euicc *open_card(size_t i)
{
    struct pl_euicc_opts o;
    struct pl_euicc *e = NULL;
    pl_euicc_opts_init(&o);
    cr_assert_eq(pl_euicc_open(D[i].card, &o, &e), PL_OK);
    return e;
}

static uint32_t card_counter(struct pl_euicc *e)
{
    for (size_t k = 0; k < pl_euicc_eim_count(e); k++) {
        struct pl_euicc_eim_info ei;
        cr_assert_eq(pl_euicc_eim_get(e, k, &ei), PL_OK);
        if (strcmp(ei.id, EIM_ID) == 0)
            return ei.counter;
    }
    cr_assert_fail("the eUICC lost its association with " EIM_ID);
    return 0;
}

/* Every operation of the device: counters of the signed ones strictly increase in queue
 * order, none is pending, each completed once (one done_ms, one claimer). Returns the
 * highest counter. */
static uint32_t check_ops(int node, const struct dev *d)
{
    char path[128];
    json_t *r = NULL, *ops, *o;
    size_t i;
    int64_t last = 0;
    snprintf(path, sizeof(path), "/v1/devices/%s/operations", d->eid_hex);
    cr_assert_eq(api(node, "GET", path, NULL, &r), 200);
    ops = json_is_array(r) ? r : json_object_get(r, "operations");
    cr_assert(json_is_array(ops));
    json_array_foreach(ops, i, o)
    {
        json_t *full = get_op(node, (int64_t)json_integer_value(json_object_get(o, "id")));
        const json_t *c = json_object_get(full, "counter");
        const char *st = jstr(full, "state");
        const char *by = jstr(full, "claimed_by");
        cr_assert(json_is_integer(json_object_get(full, "done_ms")), "completed once, at one time");
        cr_assert(strncmp(by, "eim-", 4) == 0 && by[4] >= '0' && by[4] < '0' + NSERVE
                      && by[5] == '\0',
                  "claimed by one node: \"%s\"", by);
        CLAIMED[by[4] - '0'] = true;
        cr_assert(strcmp(st, "done") == 0 || strcmp(st, "failed") == 0, "op %lld %s",
                  (long long)json_integer_value(json_object_get(o, "id")), st);
        if (json_is_integer(c)) {
            cr_assert_gt(json_integer_value(c), last, "counter of op %lld not increasing",
                         (long long)json_integer_value(json_object_get(o, "id")));
            last = json_integer_value(c);
        }
        json_decref(full);
    }
    json_decref(r);
    return (uint32_t)last;
}

/* ---- the scenario ---- */

/* nserve eIM processes; device i talks to node i % nserve (and, with two nodes, to the
 * other one in a second round). */
static void scenario(int nserve)
{
    char params[512], logs[NDEV][400], hexcert[4096];
    const char *wrong_psk = "00112233445566778899aabbccddeeff";
    struct pl_euicc *e;
    json_t *dv;
    const json_t *p;

    for (int n = 0; n < nserve; n++)
        start_serve(n);
    for (size_t i = 0; i < NDEV; i++)
        log_path("ipa", (int)i, logs[i], sizeof(logs[i]));

    /* registration through the API: the batch report, all four devices */
    import_batch(0);

    /* negative: an operation for an unknown EID is refused; nothing changed */
    {
        json_t *r = NULL, *before = NULL, *after = NULL;
        cr_assert_eq(api(0, "GET", "/v1/devices?limit=100", NULL, &before), 200);
        int st = api(0, "POST", "/v1/devices/89049032000000000000000000099999/operations",
                     "{\"kind\":\"listProfileInfo\"}", &r);
        cr_assert(st == 404, "unknown EID: HTTP %d", st);
        json_decref(r);
        cr_assert_eq(api(0, "GET", "/v1/devices/89049032000000000000000000099999", NULL, NULL),
                     404);
        cr_assert_eq(api(0, "GET", "/v1/devices?limit=100", NULL, &after), 200);
        cr_assert(json_equal(before, after));
        cr_assert_eq(json_array_size(json_object_get(after, "devices")), NDEV);
        json_decref(before);
        json_decref(after);
    }

    /* the IPAs: 0 and 2 by PSK, 1 by certificate (eIM's eim-tls), 3 with a wrong PSK;
     * 2 loses the result of an enable until the card is reset */
    start_ipa(0, 0 % nserve, D[0].psk_hex, false);
    start_ipa(1, 1 % nserve, NULL, false);
    start_ipa(2, 0 % nserve, D[2].psk_hex, true);
    start_ipa(3, 1 % nserve, wrong_psk, false);

    /* device 0: profile management */
    int n0 = 0 % nserve;
    int64_t l0 = queue_op(n0, &D[0], "listProfileInfo", NULL);
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", D[0].iccid_txt);
    int64_t en0 = queue_op(n0, &D[0], "enable", params);
    int64_t rat = queue_op(n0, &D[0], "getRAT", NULL);
    int64_t cie = queue_op(n0, &D[0], "configureImmediateEnable", "{\"immediateEnable\":true}");
    int64_t sdp = queue_op(n0, &D[0], "setDefaultDpAddress", "{\"address\":\"smdp.procs.test\"}");
    expect_op(n0, l0, "done", "ok", logs[0]);
    expect_op(n0, en0, "done", "ok", logs[0]);
    dv = get_dev(n0, &D[0]);
    p = api_profile(dv, &D[0]);
    cr_assert(p != NULL && strcmp(jstr(p, "state"), "enabled") == 0, "%s",
              json_dumps(dv, JSON_COMPACT));
    json_decref(dv);
    expect_op(n0, rat, "done", "ok", logs[0]);
    expect_op(n0, cie, "done", "ok", logs[0]);
    expect_op(n0, sdp, "done", "ok", logs[0]);
    int64_t dis0 = queue_op(n0, &D[0], "disable", params);
    int64_t del0 = queue_op(n0, &D[0], "delete", params);
    expect_op(n0, dis0, "done", "ok", logs[0]);
    expect_op(n0, del0, "done", "ok", logs[0]);
    dv = get_dev(n0, &D[0]);
    cr_assert(api_profile(dv, &D[0]) == NULL, "deleted: %s", json_dumps(dv, JSON_COMPACT));
    json_decref(dv);

    /* device 1 (certificate mode): fallback attribute, eIM configuration, device data */
    int n1 = 1 % nserve;
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", D[1].iccid_txt);
    int64_t sfa = queue_op(n1, &D[1], "setFallbackAttribute", params);
    int64_t ufa = queue_op(n1, &D[1], "unsetFallbackAttribute", NULL);
    {
        const uint8_t *der = NULL;
        size_t len = 0;
        const struct pl_cert *c = pl_pki_cert(T.pki, PL_PKI_EIM);
        pl_cert_der(c, &der, &len);
        cr_assert_eq(pl_hex_encode(der, len, hexcert, sizeof(hexcert)), PL_OK);
    }
    char addp[4400];
    snprintf(addp, sizeof(addp),
             "{\"eimId\":\"eim.second.test\",\"eimFqdn\":\"eim.second.test\",\"eimIdType\":2,"
             "\"counterValue\":0,\"eimCertificate\":\"%s\"}",
             hexcert);
    int64_t add = queue_op(n1, &D[1], "addEim", addp);
    int64_t le1 = queue_op(n1, &D[1], "listEim", NULL);
    int64_t upd = queue_op(n1, &D[1], "updateEim",
                           "{\"eimId\":\"eim.second.test\",\"eimFqdn\":\"eim2.second.test\"}");
    int64_t dle = queue_op(n1, &D[1], "deleteEim", "{\"eimId\":\"eim.second.test\"}");
    int64_t le2 = queue_op(n1, &D[1], "listEim", NULL);
    int64_t edr = queue_op(n1, &D[1], "ipaEuiccDataRequest", NULL);
    expect_op(n1, sfa, "done", "ok", logs[1]);
    expect_op(n1, ufa, "done", "ok", logs[1]);
    expect_op(n1, add, "done", "ok", logs[1]);
    expect_op(n1, le1, "done", "ok", logs[1]);
    expect_op(n1, upd, "done", "ok", logs[1]);
    expect_op(n1, dle, "done", "ok", logs[1]);
    expect_op(n1, le2, "done", "ok", logs[1]);
    expect_op(n1, edr, "done", "ok", logs[1]);
    dv = get_dev(n1, &D[1]);
    {
        char *t = json_dumps(json_object_get(dv, "eims"), JSON_COMPACT);
        cr_assert(t != NULL && strstr(t, EIM_ID) != NULL && strstr(t, "eim.second") == NULL,
                  "eims after deleteEim: %s", t ? t : "-");
        free(t);
    }
    json_decref(dv);

    /* device 2: download trigger, then an enable whose result the eUICC loses */
    int n2 = 0 % nserve;
    int64_t pdt = queue_op(n2, &D[2], "profileDownloadTrigger",
                           "{\"activationCode\":\"1$smdp.procs.test$MATCH-0001\"}");
    json_t *po = wait_op(n2, pdt, logs[2]);
    cr_assert(strcmp(jstr(po, "state"), "done") == 0 || strcmp(jstr(po, "state"), "failed") == 0);
    cr_assert(jstr(po, "result")[0] != '\0', "the IPA's answer is kept");
    json_decref(po);
    snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", D[2].iccid_txt);
    int64_t en2 = queue_op(n2, &D[2], "enable", params);
    expect_op(n2, en2, "done", "ok", logs[2]);
    dv = get_dev(n2, &D[2]);
    p = api_profile(dv, &D[2]);
    cr_assert(p != NULL && strcmp(jstr(p, "state"), "enabled") == 0, "%s",
              json_dumps(dv, JSON_COMPACT));
    json_decref(dv);

    /* device 3 (wrong PSK): its operation is still queued after everything else ran */
    int64_t l3 = queue_op(n1, &D[3], "listProfileInfo", NULL);

    if (nserve > 1) {
        /* second round: each working device now talks to the other node */
        stop_ipa(0);
        stop_ipa(1);
        start_ipa(0, 1, D[0].psk_hex, false);
        start_ipa(1, 0, D[1].psk_hex, false);
        int64_t a = queue_op(1, &D[0], "getRAT", NULL);
        int64_t b = queue_op(0, &D[1], "listProfileInfo", NULL);
        snprintf(params, sizeof(params), "{\"iccid\":\"%s\"}", D[1].iccid_txt);
        int64_t c = queue_op(0, &D[1], "enable", params);
        expect_op(1, a, "done", "ok", logs[0]);
        expect_op(0, b, "done", "ok", logs[1]);
        expect_op(1, c, "done", "ok", logs[1]);
    }

    {
        json_t *o3 = get_op(n1, l3);
        cr_assert_str_eq(jstr(o3, "state"), "queued", "wrong PSK got a package:\n%s",
                         tail(logs[3]));
        json_decref(o3);
    }

    for (size_t i = 0; i < NDEV; i++)
        stop_ipa(i);

    /* the eUICCs' own state */
    e = open_card(0);
    cr_assert_eq(pl_euicc_profile_count(e), 0, "device 0's profile was deleted");
    {
        uint32_t cc = card_counter(e), oc = check_ops(0, &D[0]);
        cr_assert_eq(cc, oc, "eUICC counter %u, highest operation counter %u", cc, oc);
    }
    pl_euicc_close(e);

    e = open_card(1);
    {
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_count(e), 1);
        cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
        cr_assert_not(pi.fallback, "unsetFallbackAttribute reached the card");
        cr_assert_eq(pi.enabled, nserve > 1);
        cr_assert_eq(pl_euicc_eim_count(e), 1, "eim.second.test added then deleted");
    }
    cr_assert_eq(card_counter(e), check_ops(0, &D[1]));
    pl_euicc_close(e);

    e = open_card(2);
    {
        struct pl_euicc_profile_info pi;
        cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
        cr_assert(pi.enabled, "the lost enable did happen on the card");
    }
    cr_assert_eq(card_counter(e), check_ops(0, &D[2]));
    pl_euicc_close(e);

    e = open_card(3);
    cr_assert_eq(card_counter(e), 0, "no package ever reached the wrong-PSK device");
    cr_assert_eq(pl_euicc_notif_count(e), 1, "its factory PIR is still pending");
    pl_euicc_close(e);

    /* the store's counter per device (API view) matches what was handed out */
    for (size_t i = 0; i < 3; i++) {
        dv = get_dev(0, &D[i]);
        e = open_card(i);
        cr_assert_eq((uint32_t)json_integer_value(json_object_get(dv, "counter")), card_counter(e),
                     "device %zu", i);
        pl_euicc_close(e);
        json_decref(dv);
    }

    for (int n = 0; n < nserve; n++)
        cr_assert(CLAIMED[n], "node %d completed operations", n);
    for (int n = 0; n < nserve; n++) {
        char log[400];
        log_path("serve", n, log, sizeof(log));
        cr_assert_eq(stop_proc(&SERVE[n]), 0, "serve %d:\n%s", n, tail(log));
    }
}

TestSuite(eim_e2e_procs, .init = setup, .fini = teardown, .timeout = 110);

Test(eim_e2e_procs, one_serve_three_ipas)
{
    scenario(1);
}

/* serve refuses to run with an unusable "esipa" section: exit 1, no port written, the
 * member at fault named in the log. */
Test(eim_e2e_procs, serve_refuses_a_bad_esipa_section)
{
    char cfg[400], log[400], port[400], exe[400];
    char *text;
    FILE *f;
    snprintf(cfg, sizeof(cfg), "%s/eim0.json", T.dir);
    write_config(0, cfg);
    text = slurp(cfg);
    f = fopen(cfg, "w");
    cr_assert(f != NULL);
    /* the signing key replaced by a file that does not exist */
    char *k = strstr(text, "/eim.key");
    cr_assert(k != NULL);
    fprintf(f, "%.*s/missing.key%s", (int)(k - text), text, k + strlen("/eim.key"));
    cr_assert_eq(fclose(f), 0);
    free(text);
    log_path("serve", 0, log, sizeof(log));
    char *argv[] = {bin("provline-eim", exe, sizeof(exe)) ? exe : NULL, A("serve"), A("--config"),
                    cfg, NULL};
    SERVE[0] = spawn(argv, log);
    int rc = wait_exit(SERVE[0]);
    SERVE[0] = 0;
    cr_assert_eq(rc, 1, "%s", tail(log));
    cr_assert(strstr(tail(log), "esipa.signing_key") != NULL, "%s", tail(log));
    snprintf(port, sizeof(port), "%s/http0.port", T.dir);
    cr_assert_neq(access(port, F_OK), 0, "no port file when serve cannot start");
}

/* serve --check-config checks the "esipa" section too, without starting or creating
 * anything: a good configuration passes, a missing signing key or a bad security list is
 * named, and no port file appears. */
Test(eim_e2e_procs, check_config_covers_the_esipa_section)
{
    char cfg[400], bad[400], log[400], port[400], exe[400];
    char *text;
    FILE *f;
    snprintf(cfg, sizeof(cfg), "%s/eim0.json", T.dir);
    write_config(0, cfg);
    log_path("check", 0, log, sizeof(log));
    char *argv[] = {bin("provline-eim", exe, sizeof(exe)) ? exe : NULL, A("serve"), A("--config"),
                    cfg, A("--check-config"), NULL};
    pid_t p = spawn(argv, log);
    cr_assert_eq(wait_exit(p), 0, "%s", tail(log));
    cr_assert(strstr(tail(log), "configuration OK") != NULL, "%s", tail(log));

    text = slurp(cfg);
    static const struct {
        const char *from, *to, *named;
    } cases[] = {{"/eim.key", "/missing.key", "esipa.signing_key"},
                 {"/eim-tls.crt", "/missing.crt", "esipa.certificate"},
                 {"\"security\":[\"psk\",\"pki\"]", "\"security\":[\"tls\"]", "esipa.security"},
                 {"\"esipa\":{", "\"esipa\":{\"colour\":1,", "colour"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *k = strstr(text, cases[i].from);
        cr_assert(k != NULL, "case %zu: %s not in the configuration", i, cases[i].from);
        snprintf(bad, sizeof(bad), "%s/bad%zu.json", T.dir, i);
        f = fopen(bad, "w");
        cr_assert(f != NULL);
        fprintf(f, "%.*s%s%s", (int)(k - text), text, cases[i].to, k + strlen(cases[i].from));
        cr_assert_eq(fclose(f), 0);
        char lg[400];
        snprintf(lg, sizeof(lg), "%s/check-bad%zu.log", T.dir, i);
        argv[3] = bad;
        p = spawn(argv, lg);
        cr_assert_eq(wait_exit(p), 1, "case %zu: %s", i, tail(lg));
        cr_assert(strstr(tail(lg), cases[i].named) != NULL, "case %zu: %s", i, tail(lg));
        cr_assert(strstr(tail(lg), "configuration OK") == NULL, "case %zu", i);
    }
    free(text);
    snprintf(port, sizeof(port), "%s/http0.port", T.dir);
    cr_assert_neq(access(port, F_OK), 0, "check-config starts nothing");
    snprintf(port, sizeof(port), "%s/esipa0.port", T.dir);
    cr_assert_neq(access(port, F_OK), 0, "check-config starts nothing");
}

#if PL_E2E_PG
Test(eim_e2e_procs, two_serves_share_one_database)
{
    scenario(2);
}
#endif
