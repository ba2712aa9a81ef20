/* Unit: provline-station's configuration (station/config.h) and named timers (timers.h):
 * a complete file parses into the documented fields; every kind of mistake is reported with
 * its own message and fails the check; the [eim] request is built or read and decodes.
 * docs/station.conf.5.md; reference/STYLE.md §7.3 rule 7. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pl_test.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/station/config.h"
#include "provline/station/timers.h"

static char dir[256];
static char conf_head[4096];

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(path, mode), 0);
}

static void setup(void)
{
    char p[512];
    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(p, sizeof(p), "%s/km.pub", dir);
    write_text(p, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", 0644);
    snprintf(p, sizeof(p), "%s/st.key", dir);
    write_text(p, "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\n", 0600);
    snprintf(p, sizeof(p), "%s/pkgs", dir);
    cr_assert_eq(mkdir(p, 0700), 0);
    snprintf(conf_head, sizeof(conf_head),
             "[keymaker]\nendpoint = tcp://127.0.0.1:5555\nserver_public_key = %s/km.pub\n"
             "client_secret_key = %s/st.key\n\n"
             "[storage]\njournal = %s/j.db\naudit = %s/a.db\npackages = %s/pkgs\n\n",
             dir, dir, dir, dir, dir);
}

static void teardown(void)
{
    pl_test_rmtree(dir);
}

/* Loads head + text; returns the result, diag in *d. */
static int load(const char *text, struct pl_station_config *c, struct pl_station_diag *d)
{
    char all[8192];
    snprintf(all, sizeof(all), "%s%s", conf_head, text);
    memset(d, 0, sizeof(*d));
    pl_station_config_init(c);
    return pl_station_config_load_string(all, c, d);
}

static bool has_msg(const struct pl_station_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++)
        if (strstr(d->msg[i], needle) != NULL)
            return true;
    return false;
}

static void dump(const struct pl_station_diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "diag: %s\n", d->msg[i]);
}

Test(station_config, complete_file, .init = setup, .fini = teardown)
{
    struct pl_station_config *c = malloc(sizeof(*c));
    struct pl_station_diag d;
    cr_assert_not_null(c);
    int rc = load("[line]\nstation_id = line-7\nbatch_id = B42\nmax_loads = 2\nonce = yes\n\n"
                  "[eim]\neim_id = eim.example\neim_fqdn = eim.example\n\n"
                  "[metrics]\nlisten = localhost:9464\n\n[log]\nlevel = warn\n\n"
                  "[timers]\nT_LOAD = 90000\nT_LEASE_MARGIN = 5\n\n"
                  "[fixture a]\ntransport = serial\nport = /dev/ttyUSB0\nbaud = 921600\n\n"
                  "[fixture b-2]\ntransport = coap\nport = 10.0.0.7:5684\n"
                  "psk_identity = dev-b\npsk_key = 00112233445566778899aabbccddeeff\n",
                  c, &d);
    dump(&d);
    cr_assert_eq(rc, PL_OK);
    cr_assert_eq(d.n, 0);
    cr_assert_str_eq(c->station_id, "line-7");
    cr_assert_str_eq(c->batch_id, "B42");
    cr_assert_eq(c->max_loads, 2);
    cr_assert(c->once);
    cr_assert_eq(c->log_level, PL_STATION_LOG_WARN);
    cr_assert_eq(c->metrics, PL_METRICS_TCP);
    cr_assert_str_eq(c->metrics_host, "127.0.0.1");
    cr_assert_eq(c->metrics_port, 9464);
    cr_assert_eq(c->timers.v[PL_T_LOAD], 90000);
    cr_assert_eq(pl_timer_ms(&c->timers, PL_T_LEASE_MARGIN), 5000);
    cr_assert_eq(c->timers.v[PL_T_PROBE], pl_timer_def(PL_T_PROBE)->def);
    cr_assert_eq(c->n_fixtures, 2);
    cr_assert_str_eq(c->fixtures[0].name, "a");
    cr_assert_eq(c->fixtures[0].transport, PL_FIXTURE_SERIAL);
    cr_assert_eq(c->fixtures[0].baud, 921600);
    cr_assert_eq(c->fixtures[1].transport, PL_FIXTURE_COAP);
    cr_assert_str_eq(c->fixtures[1].host, "10.0.0.7");
    cr_assert_eq(c->fixtures[1].udp_port, 5684);
    cr_assert(c->fixtures[1].has_psk);
    cr_assert_eq(c->fixtures[1].psk_key_len, 16);
    /* The AddInitialEim request built from [eim] decodes to that eIM. */
    struct pl_sgp32_add_initial_eim_request *q = calloc(1, sizeof(*q));
    cr_assert_not_null(c->eim_request);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_decode(c->eim_request, c->eim_request_len, q),
                 PL_OK);
    cr_assert_eq(q->n_eims, 1);
    cr_assert_eq(q->eims[0].eim_id.len, strlen("eim.example"));
    cr_assert_eq(memcmp(q->eims[0].eim_id.p, "eim.example", q->eims[0].eim_id.len), 0);
    free(q);
    pl_station_config_deinit(c);
    /* deinit wipes the PSK and frees the request. */
    for (size_t i = 0; i < sizeof(c->fixtures[1].psk_key); i++)
        cr_assert_eq(c->fixtures[1].psk_key[i], 0);
    cr_assert_null(c->eim_request);
    free(c);
}

Test(station_config, every_error_has_its_message, .init = setup, .fini = teardown)
{
    struct pl_station_config *c = malloc(sizeof(*c));
    struct pl_station_diag d;
    char p[512], text[4096];
    cr_assert_not_null(c);
    snprintf(p, sizeof(p), "%s/bad.pub", dir);
    write_text(p, "too short\n", 0644);
    snprintf(text, sizeof(text),
             "[keymaker]\nclient_public_key = %s/bad.pub\nwhatever = 1\n\n"
             "[nonsense]\nx = 1\n\n"
             "[line]\nprefetch_depth = 2\nmax_loads = 99\n\n"
             "[metrics]\nlisten = 192.168.1.2:80\n\n[log]\nlevel = loud\n\n"
             "[timers]\nT_LOAD = 5\nT_BOGUS = 1\nT_PROBE = abc\n\n"
             "[fixture s]\ntransport = serial\nport = /dev/ttyS9\nbaud = 9600\npsk_key = 00\n\n"
             "[fixture dup]\ntransport = serial\nport = /dev/ttyS9\n\n"
             "[fixture c]\ntransport = coap\nport = nocolon\n\n"
             "[fixture t]\ntransport = usb\nport = x\n\n"
             "[fixture h]\ntransport = coap\nport = example.com:5683\n\n"
             "[fixture bad name!]\ntransport = serial\nport = /dev/ttyS1\n",
             dir);
    int rc = load(text, c, &d);
    dump(&d);
    cr_assert_eq(rc, PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "[keymaker] client_public_key:"));
    cr_assert(has_msg(&d, "does not hold one 40-character Z85 key"));
    cr_assert(has_msg(&d, "[keymaker] whatever: unknown key"));
    cr_assert(has_msg(&d, "[nonsense]: unknown section"));
    cr_assert(has_msg(&d, "[line] max_loads: 99 is outside 1..16"));
    cr_assert(has_msg(&d, "prefetch_depth: needs expected_eids"));
    cr_assert(has_msg(&d, "not a loopback address"));
    cr_assert(has_msg(&d, "[log] level: 'loud'"));
    cr_assert(has_msg(&d, "[timers] T_LOAD: '5' is not a value in 100..3600000 ms"));
    cr_assert(has_msg(&d, "[timers] T_BOGUS: unknown timer"));
    cr_assert(has_msg(&d, "[timers] T_PROBE: 'abc'"));
    cr_assert(has_msg(&d, "[fixture s] baud: 9600 is not one of"));
    cr_assert(has_msg(&d, "[fixture s] psk_identity/psk_key: only for coap"));
    cr_assert(has_msg(&d, "[fixture dup] port: /dev/ttyS9 is also fixture s's"));
    cr_assert(has_msg(&d, "[fixture c] port: 'nocolon' is not HOST:PORT"));
    cr_assert(has_msg(&d, "[fixture t] transport: 'usb' is neither serial nor coap"));
    cr_assert(has_msg(&d, "[fixture bad name!]: a fixture name uses only"));
    cr_assert(has_msg(&d, "[fixture h] port: host 'example.com' is not a numeric"));
    pl_station_config_deinit(c);
    free(c);
}

Test(station_config, missing_and_unsafe_files, .init = setup, .fini = teardown)
{
    struct pl_station_config *c = malloc(sizeof(*c));
    struct pl_station_diag d;
    char p[512], text[2048];
    cr_assert_not_null(c);
    /* A secret key readable by others, an eIM file that is not 'BF57', no fixture. */
    snprintf(p, sizeof(p), "%s/st.key", dir);
    cr_assert_eq(chmod(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/eim.der", dir);
    write_text(p, "not DER", 0644);
    snprintf(text, sizeof(text), "[eim]\nadd_initial_eim = %s/eim.der\n", dir);
    int rc = load(text, c, &d);
    dump(&d);
    cr_assert_eq(rc, PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "readable by group or others"));
    cr_assert(has_msg(&d, "is not a DER AddInitialEim request"));
    cr_assert(has_msg(&d, "no [fixture NAME] section"));
    pl_station_config_deinit(c);

    /* Nothing at all: the required keys are each named. */
    memset(&d, 0, sizeof(d));
    pl_station_config_init(c);
    cr_assert_eq(pl_station_config_load_string("[line]\nonce = false\n", c, &d), PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "[keymaker] endpoint: required"));
    cr_assert(has_msg(&d, "[keymaker] server_public_key: required"));
    cr_assert(has_msg(&d, "[keymaker] client_secret_key: required"));
    cr_assert(has_msg(&d, "[storage] journal: required"));
    cr_assert(has_msg(&d, "[storage] packages: required"));
    pl_station_config_deinit(c);

    /* An unreadable file. */
    memset(&d, 0, sizeof(d));
    pl_station_config_init(c);
    snprintf(p, sizeof(p), "%s/none.conf", dir);
    cr_assert_eq(pl_station_config_load(p, c, &d), PL_ERR_IO);
    cr_assert(has_msg(&d, "cannot read the configuration file"));
    pl_station_config_deinit(c);
    free(c);
}

/* [keymaker] checkpoint_certificate: a DER certificate with an EC key, or a clear error. */
Test(station_config, checkpoint_certificate, .init = setup, .fini = teardown)
{
    struct pl_station_config *c = malloc(sizeof(*c));
    struct pl_station_diag d;
    char p[512], text[2048];
    cr_assert_not_null(c);
    snprintf(text, sizeof(text),
             "[keymaker]\ncheckpoint_certificate = %s/tests/data/sgp26/pysim-dppb/"
             "CERT_S_SM_DPpb_ECDSA_NIST.der\n[fixture a]\ntransport = coap\n"
             "port = 127.0.0.1:5683\n",
             PL_TEST_SRCDIR);
    int rc = load(text, c, &d);
    dump(&d);
    cr_assert_eq(rc, PL_OK);
    cr_assert(strstr(c->km_checkpoint_cert, "CERT_S_SM_DPpb_ECDSA_NIST.der") != NULL);
    pl_station_config_deinit(c);

    snprintf(p, sizeof(p), "%s/dpf.der", dir);
    write_text(p, "not DER", 0644);
    snprintf(text, sizeof(text),
             "[keymaker]\ncheckpoint_certificate = %s\n[fixture a]\ntransport = coap\n"
             "port = 127.0.0.1:5683\n",
             p);
    cr_assert_eq(load(text, c, &d), PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "checkpoint_certificate: "), "no message");
    cr_assert(has_msg(&d, "is not a DER certificate"));
    pl_station_config_deinit(c);

    snprintf(text, sizeof(text),
             "[keymaker]\ncheckpoint_certificate = %s/missing.der\n[fixture a]\n"
             "transport = coap\nport = 127.0.0.1:5683\n",
             dir);
    cr_assert_eq(load(text, c, &d), PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "checkpoint_certificate: cannot read"));
    pl_station_config_deinit(c);
    free(c);
}

Test(station_config, eim_from_file_and_syntax_error_line, .init = setup, .fini = teardown)
{
    struct pl_station_config *c = malloc(sizeof(*c));
    struct pl_station_diag d;
    struct pl_wr w;
    char p[512], text[2048];
    cr_assert_not_null(c);
    /* A valid 'BF57' file is taken byte for byte. */
    struct pl_sgp32_add_initial_eim_request *q = calloc(1, sizeof(*q));
    q->n_eims = 1;
    q->eims[0].eim_id = pl_sgp32_str("eim-from-file");
    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_sgp32_add_initial_eim_request_encode(q, &w), PL_OK);
    snprintf(p, sizeof(p), "%s/eim.der", dir);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(w.buf, 1, w.len, f), w.len);
    fclose(f);
    snprintf(text, sizeof(text), "[eim]\nadd_initial_eim = %s\n\n[fixture a]\ntransport = serial\n"
                                 "port = /dev/ttyS0\n", p);
    cr_assert_eq(load(text, c, &d), PL_OK);
    cr_assert_eq(c->eim_request_len, w.len);
    cr_assert_eq(memcmp(c->eim_request, w.buf, w.len), 0);
    pl_station_config_deinit(c);
    /* Both forms at once are refused. */
    snprintf(text, sizeof(text), "[eim]\nadd_initial_eim = %s\neim_id = x\n\n[fixture a]\n"
                                 "transport = serial\nport = /dev/ttyS0\n", p);
    cr_assert_eq(load(text, c, &d), PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "either add_initial_eim or eim_id"));
    pl_station_config_deinit(c);
    /* A line that is not INI names its number. */
    cr_assert_eq(load("[fixture a]\ntransport = serial\nport = /dev/ttyS0\nthis is not ini\n", c, &d),
                 PL_ERR_CONFIG);
    cr_assert(has_msg(&d, "not a [section] or key = value line"));
    pl_station_config_deinit(c);
    pl_wr_free(&w);
    free(q);
    free(c);
}

Test(station_timers, table_bounds_and_parsing)
{
    struct pl_timers t;
    enum pl_timer_id id;
    uint32_t v = 0;
    pl_timers_init(&t);
    for (unsigned i = 0; i < PL_T_COUNT; i++) {
        const struct pl_timer_def *d = pl_timer_def((enum pl_timer_id)i);
        cr_assert_not_null(d);
        cr_assert(d->name != NULL && strncmp(d->name, "T_", 2) == 0);
        cr_assert(d->doc != NULL && strlen(d->doc) > 10, "%s has no doc", d->name);
        cr_assert(d->min <= d->def && d->def <= d->max, "%s default out of bounds", d->name);
        cr_assert_eq(t.v[i], d->def);
        cr_assert_eq(pl_timer_by_name(d->name, &id), PL_OK);
        cr_assert_eq(id, (enum pl_timer_id)i);
    }
    cr_assert_null(pl_timer_def(PL_T_COUNT));
    cr_assert_eq(pl_timer_by_name("T_NOPE", &id), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "100", &v), PL_OK);
    cr_assert_eq(v, 100);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "99", &v), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "-1", &v), PL_ERR_INVAL);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "1e3", &v), PL_ERR_INVAL);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "99999999999999999999", &v), PL_ERR_OVERFLOW);
    cr_assert_eq(pl_timer_parse(PL_T_LOAD, "", &v), PL_ERR_INVAL);
    t.v[PL_T_LEASE_MARGIN] = 7;
    cr_assert_eq(pl_timer_ms(&t, PL_T_LEASE_MARGIN), 7000);
    cr_assert_str_eq(pl_timer_unit_name(PL_TU_S), "s");
}
