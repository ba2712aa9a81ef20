/* Integration: `provline-keymaker serve` as a daemon (ARCHITECTURE.md §7): the INI
 * configuration file (docs/keymaker.conf.5.md) with flags overriding it; --check-config
 * accepting a good file and refusing each bad setting (and each bad line) with exit 1 and a
 * message naming it, without creating anything; the Prometheus metrics endpoint
 * (GET /metrics; 404, 405, 400 otherwise) whose counters move after an upload and a lease,
 * a refused lease and a retried request; SIGTERM. docs/man/provline-keymaker.8.
 * PL_TEST_SLOW */
#define _POSIX_C_SOURCE 200809L
#include "pl_kmproc.h"
#include "pl_test.h"
#include "provline/kmclient/kmclient.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/x509.h"
#include "provline/sim/pki.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define E(x) provline_keymaker_ErrorCode_ERROR_##x

static struct pl_kmproc g_k;
static char g_conf[600];

static void setup(void)
{
    cr_assert_eq(pl_kmproc_init(&g_k, PL_CURVE_P256), 0);
    snprintf(g_conf, sizeof(g_conf), "%s/keymaker.conf", g_k.t.dir);
}

static void teardown(void)
{
    pl_kmproc_free(&g_k);
}

TestSuite(keymaker_daemon, .init = setup, .fini = teardown, .timeout = 300.0);

/* ---------------------------------------------------------------- config ---- */

struct kv {
    const char *key;
    char value[600];
};

/* A good configuration: the PKI, keys and allow-list of pl_kmproc_init, a kernel-chosen
 * ZeroMQ port and metrics port. */
static size_t good_settings(struct kv *kv)
{
    struct pl_kmproc_paths p;
    pl_kmproc_paths(&g_k, &p);
    const char *const v[][2] = {
        {"pki", p.pki},
        {"db", g_k.db},
        {"profiles", p.profiles},
        {"bind", "tcp://127.0.0.1:*"},
        {"curve_secret", p.secret},
        {"allow", p.allow},
        {"lease_seconds", "900"},
        {"rsk", "no"},
        {"verbose", "yes"},
        {"id", "lab-km-1"},
        {"metrics", "127.0.0.1:0"},
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    for (size_t i = 0; i < n; i++) {
        kv[i].key = v[i][0];
        snprintf(kv[i].value, sizeof(kv[i].value), "%s", v[i][1]);
    }
    return n;
}

/* Writes the good configuration with `key` set to `value` (NULL value: key left out), plus
 * extra text after the settings. Returns the line of `key` (0 if left out). */
static int write_conf(const char *key, const char *value, const char *extra)
{
    struct kv kv[16];
    size_t n = good_settings(kv);
    int line = 0, at = 3;
    FILE *f = fopen(g_conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "# provline-keymaker test configuration\n\n[keymaker]\n");
    for (size_t i = 0; i < n; i++) {
        const char *v = kv[i].value;
        if (key && strcmp(kv[i].key, key) == 0) {
            if (value == NULL)
                continue;
            v = value;
            line = at + 1;
        }
        fprintf(f, "%s = %s\n", kv[i].key, v);
        at++;
    }
    if (extra)
        fputs(extra, f);
    cr_assert_eq(fclose(f), 0);
    return line;
}

/* Runs `serve --config g_conf --check-config [flags]`; returns the exit status. */
static int check_config(const char *flags, char *out, size_t cap)
{
    char cmd[1600];
    snprintf(cmd, sizeof(cmd), "'%s' serve --config '%s' --check-config %s 2>&1", g_k.bin, g_conf,
             flags ? flags : "");
    return pl_test_run(cmd, out, cap);
}

Test(keymaker_daemon, check_config_accepts_a_good_file)
{
    char out[2048];
    write_conf(NULL, NULL, NULL);
    int st = check_config(NULL, out, sizeof(out));
    cr_assert_eq(st, 0, "%s", out);
    cr_assert(strstr(out, "configuration OK") != NULL, "%s", out);
    cr_assert_eq(access(g_k.db, F_OK), -1, "--check-config created the database");
    /* Flags alone (no file) work as before. */
    struct pl_kmproc_paths p;
    pl_kmproc_paths(&g_k, &p);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "'%s' serve --pki '%s' --db '%s' --profiles '%s' --bind tcp://127.0.0.1:0 "
             "--curve-secret '%s' --allow '%s' --check-config 2>&1",
             g_k.bin, p.pki, g_k.db, p.profiles, p.secret, p.allow);
    st = pl_test_run(cmd, out, sizeof(out));
    cr_assert_eq(st, 0, "%s", out);
}

/* Each setting with a bad value: exit 1, one message naming the setting and its line. */
Test(keymaker_daemon, check_config_rejects_each_bad_setting)
{
    char bad_key[700], empty_allow[700], missing[700], text[700];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", g_k.t.dir);
    snprintf(bad_key, sizeof(bad_key), "%s/bad.key", g_k.t.dir);
    snprintf(empty_allow, sizeof(empty_allow), "%s/empty.allow", g_k.t.dir);
    snprintf(text, sizeof(text), "%s/not-a-dir", g_k.t.dir);
    FILE *f = fopen(bad_key, "w");
    cr_assert_not_null(f);
    fputs("this is not a key\n", f);
    fclose(f);
    f = fopen(empty_allow, "w");
    cr_assert_not_null(f);
    fputs("# nobody\n", f);
    fclose(f);
    f = fopen(text, "w");
    cr_assert_not_null(f);
    fclose(f);
    char db_in_missing[800];
    snprintf(db_in_missing, sizeof(db_in_missing), "%s/km.db", missing);
    const struct {
        const char *key, *value, *says;
    } bad[] = {
        {"pki", missing, "cannot load the PKI"},
        {"pki", g_k.t.dir, "cannot load the PKI"}, /* a directory, but no PKI */
        {"db", db_in_missing, "directory does not exist"},
        {"profiles", missing, "not a readable directory"},
        {"profiles", text, "not a readable directory"},
        {"bind", "http://127.0.0.1:80", "tcp:// or ipc://"},
        {"curve_secret", bad_key, "Z85"},
        {"curve_secret", missing, "cannot read"},
        {"allow", empty_allow, "station keys"},
        {"allow", missing, "cannot read"},
        {"lease_seconds", "0", "1..2592000"},
        {"lease_seconds", "1h", "1..2592000"},
        {"lease_seconds", "2592001", "1..2592000"},
        {"rsk", "maybe", "true or false"},
        {"verbose", "2", "true or false"},
        {"id", "a-very-long-keymaker-name-that-goes-on-and-on-well-past-sixty-three-chars",
         "printable"},
        {"metrics", "0.0.0.0:9464", "loopback"},
        {"metrics", "127.0.0.1:65536", "loopback"},
        {"metrics", "127.0.0.1", "loopback"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[2048], where[700], want[64];
        int line = write_conf(bad[i].key, bad[i].value, NULL);
        int st = check_config(NULL, out, sizeof(out));
        cr_assert_eq(st, 1, "%s = %s: exit %d: %s", bad[i].key, bad[i].value, st, out);
        snprintf(where, sizeof(where), "%s:%d: %s: ", g_conf, line, bad[i].key);
        cr_assert(strstr(out, where) != NULL, "%s = %s: no '%s' in: %s", bad[i].key,
                  bad[i].value, where, out);
        cr_assert(strstr(out, bad[i].says) != NULL, "%s = %s: %s", bad[i].key, bad[i].value,
                  out);
        cr_assert(strstr(out, "configuration has 1 problem\n") != NULL, "%s", out);
        snprintf(want, sizeof(want), "configuration OK");
        cr_assert(strstr(out, want) == NULL);
    }
    cr_assert_eq(access(g_k.db, F_OK), -1, "--check-config created the database");
}

Test(keymaker_daemon, check_config_rejects_bad_lines_and_missing_settings)
{
    char out[4096];
    const char *required[] = {"pki", "db", "profiles", "bind", "curve_secret", "allow"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        write_conf(required[i], NULL, NULL);
        cr_assert_eq(check_config(NULL, out, sizeof(out)), 1, "%s: %s", required[i], out);
        char want[64];
        snprintf(want, sizeof(want), "%s: required, not set", required[i]);
        cr_assert(strstr(out, want) != NULL, "%s", out);
    }
    /* Lines of the file: an unknown key, a key twice, another section, a broken line. */
    int base = write_conf(NULL, NULL, "colour = blue\n"); /* line 15 */
    (void)base;
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1);
    cr_assert(strstr(out, ":15: colour: unknown setting") != NULL, "%s", out);
    write_conf(NULL, NULL, "bind = tcp://127.0.0.1:5555\n");
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1);
    cr_assert(strstr(out, ":15: bind: given twice") != NULL, "%s", out);
    write_conf(NULL, NULL, "[station]\nname = x\n");
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1);
    cr_assert(strstr(out, ":16: name: unknown section [station]") != NULL, "%s", out);
    write_conf(NULL, NULL, "this line has no equals sign\n");
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1);
    cr_assert(strstr(out, ":15: not a [section] or key = value line") != NULL, "%s", out);
    /* A line too long for the parser is a problem, never a value cut short; the lines after
     * it keep their numbers. */
    char longline[400];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "id = ", 5);
    memcpy(longline + 250, "\ncolour = red\n", 15);
    write_conf("id", NULL, longline); /* lines 14 and 15 */
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1);
    cr_assert(strstr(out, ":14: line longer than 198 characters") != NULL, "%s", out);
    cr_assert(strstr(out, ":15: colour: unknown setting") != NULL, "%s", out);
    cr_assert(strstr(out, "configuration has 2 problems") != NULL, "%s", out);
    /* A missing file. */
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "'%s' serve --config '%s/none.conf' --check-config 2>&1", g_k.bin,
             g_k.t.dir);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "cannot read the configuration file") != NULL, "%s", out);
    /* Usage errors are not configuration problems: exit 2. */
    snprintf(cmd, sizeof(cmd), "'%s' serve --config '%s' --colour blue 2>&1", g_k.bin, g_conf);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s' serve --config 2>&1", g_k.bin);
    cr_assert_eq(pl_test_run(cmd, out, sizeof(out)), 2, "%s", out);
}

Test(keymaker_daemon, flags_override_the_file)
{
    char out[2048];
    write_conf("bind", "nonsense", NULL);
    cr_assert_eq(check_config(NULL, out, sizeof(out)), 1, "%s", out);
    cr_assert_eq(check_config("--bind tcp://127.0.0.1:0", out, sizeof(out)), 0, "%s", out);
    write_conf(NULL, NULL, NULL);
    cr_assert_eq(check_config("--lease-seconds never", out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "--lease-seconds: lease_seconds: ") != NULL, "%s", out);
    /* A bad setting given twice is reported once, where the winning value came from. */
    write_conf("metrics", "10.0.0.1:80", NULL);
    cr_assert_eq(check_config("--metrics 127.0.0.2:0", out, sizeof(out)), 0, "%s", out);
}

/* -------------------------------------------------------------- metrics ---- */

/* One HTTP exchange with the metrics endpoint: the whole answer in out. Returns the status
 * code. */
static int http(uint16_t port, const char *request, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = {20, 0}; /* hang guard only */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    size_t len = strlen(request);
    cr_assert_eq(send(fd, request, len, 0), (ssize_t)len);
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, out + got, cap - 1 - got, 0);
        cr_assert_geq(n, 0, "metrics endpoint did not answer");
        if (n == 0)
            break;
        got += (size_t)n;
        cr_assert_lt(got, cap - 1, "answer too long");
    }
    out[got] = '\0';
    close(fd);
    int code = 0;
    cr_assert(strncmp(out, "HTTP/1.0 ", 9) == 0, "%s", out);
    code = atoi(out + 9);
    return code;
}

/* The value of one series line ("name{labels} value") in a scrape; -1 if absent. */
static long long series(const char *scrape, const char *name)
{
    char key[200];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(scrape, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static void scrape(uint16_t port, char *out, size_t cap)
{
    cr_assert_eq(http(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", out, cap), 200, "%s", out);
    cr_assert(strstr(out, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", out);
    cr_assert(strstr(out, "# TYPE provline_keymaker_messages_total counter") != NULL);
}

/* A minted eUICC's data as GetIfppInfo would give it: certificates and signed OTKs. */
struct chip {
    struct pl_es10f_info info;
    uint8_t cert[PL_CERT_MAX_DER];
    struct pl_eckey *sk;
};

static void chip_mint(struct chip *c, unsigned n_otk)
{
    struct pl_pki *p = NULL;
    struct pl_kmproc_paths paths;
    struct pl_rng rng = PL_RNG_SYSTEM;
    size_t len = 0;
    static const uint8_t eid[16] = {0x89, 0x04, 0x90, 0x32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42, 1};

    memset(c, 0, sizeof(*c));
    pl_kmproc_paths(&g_k, &paths);
    cr_assert_eq(pl_pki_load(paths.pki, &p), PL_OK);
    cr_assert_eq(pl_pki_mint_euicc_with(p, eid, &rng, time(NULL), &c->sk, c->cert,
                                        sizeof(c->cert), &len),
                 PL_OK);
    memcpy(c->info.eid, eid, 16);
    c->info.cert_euicc.der = c->cert;
    c->info.cert_euicc.len = len;
    /* The EUM certificate is the PKI's; keep a copy past the PKI's life. */
    const uint8_t *eum;
    size_t eum_len;
    pl_cert_der(pl_pki_cert(p, PL_PKI_EUM), &eum, &eum_len);
    uint8_t *copy = malloc(eum_len);
    cr_assert_not_null(copy);
    memcpy(copy, eum, eum_len);
    c->info.cert_eum.der = copy;
    c->info.cert_eum.len = eum_len;
    for (unsigned i = 0; i < n_otk; i++) {
        struct pl_eckey *k = NULL;
        struct pl_ifpp_otk o;
        cr_assert_eq(pl_eckey_generate(pl_pki_curve(p), &rng, &k), PL_OK);
        o.otk_id = (uint16_t)(i + 1);
        cr_assert_eq(pl_eckey_public(k, o.otpk), PL_OK);
        cr_assert_eq(pl_ifpp_otk_sign(c->sk, eid, &o, &rng), PL_OK);
        c->info.otk[i].otk_id = o.otk_id;
        memcpy(c->info.otk[i].otpk, o.otpk, sizeof(o.otpk));
        memcpy(c->info.otk[i].sig, o.sig, sizeof(o.sig));
        pl_eckey_free(k);
    }
    c->info.n_otk = n_otk;
    pl_pki_free(p);
}

static void chip_free(struct chip *c)
{
    free((void *)(uintptr_t)c->info.cert_eum.der);
    pl_eckey_free(c->sk);
}

Test(keymaker_daemon, metrics_endpoint_counts_what_happens)
{
    char out[65536], before[65536];
    write_conf(NULL, NULL, NULL);
    cr_assert_eq(pl_kmproc_start_config(&g_k, g_conf), 0, "keymaker did not start");
    size_t len = 0;
    char *log = (char *)pl_test_read_file(g_k.log, &len);
    cr_assert_not_null(log);
    const char *p = strstr(log, "event=metrics_listening address=\"127.0.0.1:");
    cr_assert_not_null(p, "%s", log);
    uint16_t port = (uint16_t)atoi(p + strlen("event=metrics_listening address=\"127.0.0.1:"));
    cr_assert_gt(port, 0);
    /* The log is structured: one event per line, key=value. */
    cr_assert(strstr(log, "component=keymaker event=keymaker_open") != NULL, "%s", log);
    cr_assert(strstr(log, "id=\"lab-km-1\"") != NULL, "%s", log);
    free(log);

    scrape(port, before, sizeof(before));
    cr_assert_eq(series(before, "provline_keymaker_up"), 1);
    cr_assert_eq(series(before, "provline_keymaker_packages{state=\"issued\"}"), 0);
    cr_assert_eq(series(before, "provline_keymaker_packages_issued_total"), 0);
    cr_assert_eq(series(before, "provline_keymaker_otks{state=\"BOUND\"}"), 0);
    cr_assert_eq(series(before, "provline_keymaker_profiles{state=\"available\"}"), 20);
    cr_assert_eq(series(before, "provline_keymaker_messages_total{type=\"lease_request\"}"), 0);
    cr_assert_eq(series(before, "provline_keymaker_errors_total{code=\"OTK_NOT_FREE\"}"), 0);
    cr_assert_eq(series(before, "provline_keymaker_dedup_hits_total"), 0);

    /* A station uploads a chip's OTKs and leases a package for OTK 1. */
    struct pl_kmclient_config cfg;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    pl_kmclient_config_init(&cfg);
    cfg.endpoint = g_k.endpoint;
    cfg.server_public_file = g_k.server_pub_file;
    cfg.secret_file = g_k.station_key_file;
    cr_assert_eq(pl_kmclient_new(&cfg, &c), PL_OK);
    struct chip chip;
    chip_mint(&chip, 3);
    cr_assert_eq(pl_kmclient_upload(c, &chip.info, &d), PL_OK);
    pl_kmclient_done_free(&d);
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    cr_assert_not_null(m);
    pl_km_msg_init(m);
    m->which_body = PL_KM_LEASE_REQUEST;
    m->body.lease_request.mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    m->body.lease_request.otk_id = 1;
    cr_assert_eq(PL_KM_SET_BYTES(m->body.lease_request.eid, chip.info.eid, 16), PL_OK);
    cr_assert_eq(pl_kmclient_call(c, m, NULL, &d), PL_OK);
    cr_assert_eq(d.reply->body.lease.packages_count, 1);
    struct pl_kmclient_ident ident = d.ident;
    pl_kmclient_done_free(&d);
    /* The same request again (a retry): answered from the record, nothing new leased. */
    cr_assert_eq(pl_kmclient_call(c, m, &ident, &d), PL_OK);
    pl_kmclient_done_free(&d);
    /* The same OTK in a new request: refused (GENS08). */
    cr_assert_eq(pl_kmclient_call(c, m, NULL, &d), PL_ERR_REMOTE);
    cr_assert_eq(d.km_error, E(OTK_NOT_FREE));
    pl_kmclient_done_free(&d);
    pl_km_msg_release(m);
    free(m);

    scrape(port, out, sizeof(out));
    cr_assert_eq(series(out, "provline_keymaker_packages{state=\"issued\"}"), 1, "%s", out);
    cr_assert_eq(series(out, "provline_keymaker_packages_issued_total"), 1);
    cr_assert_eq(series(out, "provline_keymaker_otks{state=\"BOUND\"}"), 1);
    cr_assert_eq(series(out, "provline_keymaker_otks{state=\"FREE\"}"), 2);
    cr_assert_eq(series(out, "provline_keymaker_profiles{state=\"reserved\"}"), 1);
    cr_assert_eq(series(out, "provline_keymaker_euiccs"), 1);
    cr_assert_eq(series(out, "provline_keymaker_messages_total{type=\"otk_upload\"}"), 1);
    cr_assert_eq(series(out, "provline_keymaker_messages_total{type=\"lease_request\"}"), 3);
    cr_assert_geq(series(out, "provline_keymaker_messages_total{type=\"hello\"}"), 1);
    cr_assert_eq(series(out, "provline_keymaker_errors_total{code=\"OTK_NOT_FREE\"}"), 1);
    cr_assert_eq(series(out, "provline_keymaker_dedup_hits_total"), 1);

    /* Anything but GET /metrics. */
    cr_assert_eq(http(port, "GET /other HTTP/1.0\r\n\r\n", out, sizeof(out)), 404, "%s", out);
    cr_assert_eq(http(port, "POST /metrics HTTP/1.0\r\n\r\n", out, sizeof(out)), 405, "%s", out);
    cr_assert_eq(http(port, "garbage\r\n\r\n", out, sizeof(out)), 400, "%s", out);
    scrape(port, out, sizeof(out)); /* still serving */

    pl_kmclient_free(c);
    chip_free(&chip);
    int st = pl_kmproc_stop(&g_k, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "keymaker did not stop cleanly");
    cr_assert_eq(pl_kmproc_log_count(&g_k, "event=stopped"), 1);
}

Test(keymaker_daemon, serve_refuses_a_bad_configuration_with_log_lines)
{
    write_conf("lease_seconds", "soon", NULL);
    cr_assert_neq(pl_kmproc_start_config(&g_k, g_conf), 0, "started with a bad configuration");
    cr_assert_eq(pl_kmproc_log_count(&g_k, "level=error component=keymaker event=config_error"),
                 1);
    cr_assert_eq(pl_kmproc_log_count(&g_k, "setting=lease_seconds"), 1);
    cr_assert_eq(access(g_k.db, F_OK), -1, "a refused configuration created the database");
    /* A metrics port in use: serve fails and says so. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char taken[64];
    snprintf(taken, sizeof(taken), "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    write_conf("metrics", taken, NULL);
    cr_assert_neq(pl_kmproc_start_config(&g_k, g_conf), 0);
    cr_assert_eq(pl_kmproc_log_count(&g_k, "event=metrics_failed"), 1);
    close(fd);
}
