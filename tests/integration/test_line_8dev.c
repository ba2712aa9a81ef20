/* Integration: a whole line on one machine - the real provline-keymaker (fresh test PKI,
 * TS.48 profiles), one provline-station and 8 provline-vdevice processes (4 on pty serial,
 * 4 on CoAP) with 8 freshly minted software eUICCs. Every device must end done: its eUICC
 * holds exactly the Key Maker's UPP, no FREE one-time key is left, the FPA services answer
 * 6985 (locked), the initial eIM is configured; the Key Maker reconciles every package as
 * installed; the station's journal, export, audit chain and package store agree.
 * ARCHITECTURE.md §4-§5; reference/IFPP.md §6.3; docs/station.8.md. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pl_euicc_test.h"
#include "pl_line.h"
#include "pl_test.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/station/audit.h"

#define N_DEV 8u
#define RUN_MS 240000

/* The UPP the Key Maker bound into the installed package of eid (malloc'd). */
static uint8_t *km_installed_upp(const char *db, const uint8_t eid[16], size_t *len, int *count)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t *out = NULL;
    *count = 0;
    cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h,
                                    "SELECT p.upp FROM package k JOIN profile p ON p.id = "
                                    "k.profile_id WHERE k.eid = ?1 AND k.state = 'installed'",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(st, 1, eid, 16, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        (*count)++;
        *len = (size_t)sqlite3_column_bytes(st, 0);
        free(out);
        out = malloc(*len);
        cr_assert_not_null(out);
        memcpy(out, sqlite3_column_blob(st, 0), *len);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static void check_device(const struct pl_line *l, size_t i)
{
    const struct pl_line_dev *d = &l->dev[i];
    struct pl_euicc *e = NULL;
    struct pl_euicc_profile_info pi;
    struct pl_euicc_eim_info ei;
    struct pl_wr req, rsp;
    uint8_t *upp;
    size_t upp_len = 0;
    unsigned ch = 0;
    uint16_t sw = 0;
    int installed = 0;

    cr_assert_eq(pl_euicc_open(d->euicc, NULL, &e), PL_OK, "device %zu state unreadable", i);
    /* Exactly one profile: the Key Maker's UPP, byte for byte. */
    cr_assert_eq(pl_euicc_profile_count(e), 1, "device %zu has %zu profiles", i,
                 pl_euicc_profile_count(e));
    cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
    upp = km_installed_upp(l->km_db, d->eid, &upp_len, &installed);
    cr_assert_eq(installed, 1, "device %zu: %d installed packages at the Key Maker", i, installed);
    cr_assert_eq(pi.upp_len, upp_len);
    cr_assert(memcmp(pi.upp, upp, upp_len) == 0, "device %zu: profile differs from the UPP", i);
    free(upp);
    /* No FREE one-time key left; the FPA services are closed for good. */
    for (size_t k = 0; k < pl_euicc_otk_count(e); k++) {
        struct pl_euicc_otk_info oi;
        cr_assert_eq(pl_euicc_otk_get(e, k, &oi), PL_OK);
        cr_assert_neq(oi.state, PL_EUICC_OTK_FREE, "device %zu: otkId %u still FREE", i, oi.id);
    }
    cr_assert_not(pl_euicc_factory_mode(e), "device %zu still in factory mode", i);
    pl_wr_init_dyn(&req, 64);
    pl_wr_init_dyn(&rsp, 65536);
    cr_assert_eq(pl_es10f_get_info_req_encode(&req), PL_OK);
    cr_assert_eq(pl_et_session(e, &ch), PL_OK);
    (void)pl_et_es10(e, ch, req.buf, req.len, &rsp, &sw);
    cr_assert_eq(sw, 0x6985, "device %zu: ES10f GetIfppInfo answered %04x, not 6985", i, sw);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    /* The initial eIM of the configuration. */
    cr_assert_geq(pl_euicc_eim_count(e), 1, "device %zu has no eIM", i);
    cr_assert_eq(pl_euicc_eim_get(e, 0, &ei), PL_OK);
    cr_assert_str_eq(ei.id, l->eim_id);
    pl_euicc_close(e);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(line, eight_devices_serial_and_coap, .timeout = 400)
{
    struct pl_line l;
    char cmd[4096], out[8192];
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    for (size_t i = 0; i < N_DEV; i++) {
        cr_assert_eq(pl_line_add_device(&l, i >= N_DEV / 2, 4), 0);
        cr_assert_eq(pl_line_dev_start(&l, i), 0);
    }
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);

    /* --check-config validates and creates nothing. */
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' --config '%s' --check-config", l.bin, l.conf);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "configuration OK: 8 fixtures") != NULL, "%s", out);
    cr_assert_eq(access(l.journal, F_OK), -1, "--check-config created the journal");

    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, RUN_MS, &status), 0, "station did not finish (log %s)",
                 l.st_log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d (log %s)", status,
              l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), (int)N_DEV, "not every device done");
    cr_assert_eq(pl_line_count(l.st_log, "event=failed "), 0);
    cr_assert_eq(pl_line_count(l.st_log, "not permitted"), 0, "an event was refused");
    for (size_t i = 0; i < N_DEV; i++) {
        int st = pl_line_dev_stop(&l, i, SIGTERM);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "vdevice %zu exit %d", i, st);
    }
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);

    for (size_t i = 0; i < N_DEV; i++)
        check_device(&l, i);

    /* The Key Maker: every package installed, nothing issued or possibly used. */
    struct pl_km_stats ks;
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, N_DEV);
    cr_assert_eq(ks.pkg_issued, 0);
    cr_assert_eq(ks.pkg_failed, 0);
    cr_assert_eq(ks.pkg_possibly_used, 0);
    cr_assert_eq(ks.otk_free, 0);
    cr_assert_eq(ks.otk_bound, 0);

    /* The station's journal, as `status` reports it. */
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' status --journal '%s'", l.bin, l.journal);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    cr_assert(strstr(out, "package_state NOTIFIED   8\n") != NULL, "%s", out);
    cr_assert(strstr(out, "packages_total 8\n") != NULL, "%s", out);
    cr_assert(strstr(out, "package_result installed 8\n") != NULL, "%s", out);
    cr_assert(strstr(out, "packages_purged 8\n") != NULL, "%s", out);
    cr_assert(strstr(out, "device_state DONE       8\n") != NULL, "%s", out);
    /* Retention: every sealed package was purged once acknowledged. */
    cr_assert_eq(count_files(l.pkgs), 0);

    /* Batch report: one CSV line per package, ICCID from the '88' StoreMetadata. */
    char csv[700], json[700];
    snprintf(csv, sizeof(csv), "%s/report.csv", l.dir);
    snprintf(json, sizeof(json), "%s/report.json", l.dir);
    snprintf(cmd, sizeof(cmd),
             "'%s/provline-station' export --journal '%s' --csv '%s' && "
             "'%s/provline-station' export --journal '%s' --json '%s'",
             l.bin, l.journal, csv, l.bin, l.journal, json);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    size_t len = 0;
    char *text = (char *)pl_test_read_file(csv, &len);
    cr_assert_not_null(text);
    cr_assert_eq(count_str(text, "\n"), N_DEV + 1);
    cr_assert_eq(count_str(text, ",installed,NOTIFIED,"), N_DEV);
    for (size_t i = 0; i < N_DEV; i++) {
        char eid[33];
        cr_assert_eq(pl_hex_encode(l.dev[i].eid, 16, eid, sizeof(eid)), PL_OK);
        cr_assert_eq(count_str(text, eid), 1, "EID %s not exactly once in the report", eid);
    }
    cr_assert_eq(count_str(text, ",89494499"), N_DEV, "TS.48 ICCIDs missing: %s", text);
    free(text);
    text = (char *)pl_test_read_file(json, &len);
    cr_assert_not_null(text);
    cr_assert_eq(count_str(text, "\"result\": \"installed\""), N_DEV);
    free(text);

    /* The audit chain verifies end to end. */
    struct pl_audit_report ar;
    cr_assert_eq(pl_audit_verify(l.audit, &ar), PL_OK);
    cr_assert(ar.ok, "audit: %s", ar.detail);
    cr_assert_geq(ar.checkpoints, N_DEV, "a checkpoint per report");
    /* Every checkpoint carries the Key Maker's signature (protocol v2), and the offline
     * verifier checks each with the SM-DPf certificate (docs/audit-trail.md §4). */
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s' --keymaker-cert '%s/dpf.der'",
             l.bin, l.audit, l.pki);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    char want[64];
    snprintf(want, sizeof(want), "signatures_verified=%llu ", (unsigned long long)ar.checkpoints);
    cr_assert(strstr(out, want) != NULL, "not every checkpoint signed: %s", out);
    cr_assert(strstr(out, "signatures_unchecked=0 ") != NULL, "%s", out);
    pl_line_free(&l);
}

/* The configuration check names each error and exits 1; the station then never starts. */
Test(line, check_config_reports_every_error, .timeout = 60)
{
    struct pl_line l;
    char cmd[4096], out[8192];

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, false, 1), 0);
    snprintf(l.km_endpoint, sizeof(l.km_endpoint), "tcp://127.0.0.1:1");
    cr_assert_eq(pl_line_write_conf(&l, "[fixture bad]\ntransport = serial\nport = /dev/null\n"
                                        "baud = 1234\n\n[timers]\nT_LOAD = 5\nT_NOPE = 1\n"),
                 0);
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' --config '%s' --check-config 2>&1", l.bin,
             l.conf);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "[fixture bad] baud: 1234 is not one of") != NULL, "%s", out);
    cr_assert(strstr(out, "[timers] T_LOAD: '5' is not a value in 100..") != NULL, "%s", out);
    cr_assert(strstr(out, "[timers] T_NOPE: unknown timer") != NULL, "%s", out);
    cr_assert(strstr(out, "configuration invalid") != NULL, "%s", out);
    /* Running it refuses too, and nothing is created. */
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' --config '%s' 2>&1", l.bin, l.conf);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert_eq(access(l.journal, F_OK), -1);
    /* Usage errors are 2. */
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' --bogus 2>&1", l.bin);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 2, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s/provline-station' status --journal '%s/none.db' 2>&1", l.bin,
             l.dir);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 1, "%s", out);
    pl_line_free(&l);
}

/* A checkpoint whose signature does not verify with [keymaker] checkpoint_certificate (here:
 * the eIM's certificate, a valid EC certificate of another key) is never stored as signed:
 * the station logs the rejection, keeps only an unsigned acknowledgement, production goes on
 * (the audit trail's proof is missing, not the devices'), and `provline audit verify
 * --keymaker-cert` refuses the trail while the plain chain still verifies. */
Test(line, checkpoint_with_a_foreign_signature_is_not_stored_as_signed, .timeout = 120)
{
    struct pl_line l;
    char cmd[4096], out[8192], extra[800];
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, false, 2), 0);
    cr_assert_eq(pl_line_dev_start(&l, 0), 0);
    snprintf(extra, sizeof(extra), "[keymaker]\ncheckpoint_certificate = %s/eim.der\n", l.pki);
    cr_assert_eq(pl_line_write_conf(&l, extra), 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, RUN_MS, &status), 0, "station did not finish (log %s)",
                 l.st_log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d (log %s)", status,
              l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1, "device not done (log %s)", l.st_log);
    cr_assert_geq(pl_line_count(l.st_log, "event=checkpoint_rejected"), 1, "log %s", l.st_log);
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);

    struct pl_audit_report ar;
    cr_assert_eq(pl_audit_verify(l.audit, &ar), PL_OK);
    cr_assert(ar.ok, "audit: %s", ar.detail);
    cr_assert_geq(ar.checkpoints, 1u);
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s'", l.bin, l.audit);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 0, "%s", out);
    snprintf(cmd, sizeof(cmd), "'%s/provline' audit verify '%s' --keymaker-cert '%s/dpf.der'",
             l.bin, l.audit, l.pki);
    cr_assert_eq(pl_line_run(&l, cmd, out, sizeof(out)), 1, "%s", out);
    cr_assert(strstr(out, "FAIL") != NULL, "%s", out);
    pl_line_free(&l);
}
