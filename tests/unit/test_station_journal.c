/* Unit: the station's write-ahead journal (station/journal.h): the package state machine
 * LEASED -> DISPATCHED -> LOADING -> RESULT -> REPORTED -> ACKED -> NOTIFIED with every
 * transition committed before it returns (a second connection sees it), every disallowed
 * transition refused (never backwards past LOADING, never a second different PIR, no release
 * of a package that may be on a chip), sealed envelope files written durably and purged
 * (overwritten and unlinked) only after the acknowledgement, orphan files swept at open,
 * pending lease requests, devices, counts and the batch export; the eUICC certificates kept
 * per device (schema 2, migrated in place from a version 1 journal) and the eIM batch
 * (station/batch.h, docs/eim-api.md "Bulk import"). reference/IFPP.md §6.3. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pl_test.h"
#include "provline/station/batch.h"
#include "provline/station/journal.h"

static char dir[256], db[300], pkgs[300];

static void setup(void)
{
    cr_assert_eq(pl_test_tmpdir(dir, sizeof(dir)), 0);
    snprintf(db, sizeof(db), "%s/j.db", dir);
    snprintf(pkgs, sizeof(pkgs), "%s/pkgs", dir);
}

static void teardown(void)
{
    pl_test_rmtree(dir);
}

static void mkrow(struct pl_jpkg *r, uint8_t id, uint16_t otk)
{
    memset(r, 0, sizeof(*r));
    memset(r->package_id, id, 16);
    memset(r->lease_id, 0x11, 16);
    memset(r->eid, 0x89, 16);
    r->otk_id = otk;
    memset(r->tid, id ^ 0x5a, 16);
    r->tid_len = 16;
    r->has_iccid = true;
    /* StoreMetadata '5A' of a TS.48 profile: EF.ICCID coding of 8949449999999990023. */
    memcpy(r->iccid, "\x98\x94\x44\x99\x99\x99\x99\x09\x20\xf3", 10);
    snprintf(r->batch_id, sizeof(r->batch_id), "B1");
    r->lease_expiry = 2000000000u;
    r->not_after = 2000000000u;
}

static bool file_exists(const uint8_t id)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/", pkgs);
    for (int i = 0; i < 16; i++)
        snprintf(p + strlen(p), sizeof(p) - strlen(p), "%02x", id);
    snprintf(p + strlen(p), sizeof(p) - strlen(p), ".pkg");
    return access(p, F_OK) == 0;
}

static int state_of(const uint8_t id)
{
    struct pl_journal *ro = NULL;
    struct pl_jpkg *r = malloc(sizeof(*r));
    uint8_t pid[16];
    memset(pid, id, 16);
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    cr_assert_eq(pl_journal_get(ro, pid, r), PL_OK);
    int s = r->state;
    pl_journal_close(ro);
    free(r);
    return s;
}

static const uint8_t env[] = "sealed envelope bytes (opaque to the journal)";

Test(station_journal, the_whole_path_write_ahead, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL;
    struct pl_jpkg *r = malloc(sizeof(*r)), *g = malloc(sizeof(*g));
    uint8_t *e = NULL, mid[16], audit[32], pir[] = {0xBF, 0x37, 0x00};
    size_t elen = 0;

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    mkrow(r, 0xA1, 3);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_ERR_EXISTS);
    cr_assert(file_exists(0xA1));
    cr_assert_eq(state_of(0xA1), PL_J_LEASED);
    cr_assert_eq(pl_journal_envelope(j, r->package_id, &e, &elen), PL_OK);
    cr_assert_eq(elen, sizeof(env));
    cr_assert_eq(memcmp(e, env, elen), 0);
    free(e);

    /* Disallowed moves from LEASED. */
    cr_assert_eq(pl_journal_loading(j, r->package_id, 7), PL_ERR_STATE);
    memset(mid, 1, sizeof(mid));
    cr_assert_eq(pl_journal_reported(j, r->package_id, mid, 5, NULL), PL_ERR_STATE);
    cr_assert_eq(pl_journal_purge(j, r->package_id), PL_ERR_STATE);

    uint8_t eid_read[16];
    memset(eid_read, 0x89, 16);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, "f1", eid_read), PL_OK);
    cr_assert_eq(state_of(0xA1), PL_J_DISPATCHED);
    cr_assert_eq(pl_journal_loading(j, r->package_id, 77), PL_OK);
    cr_assert_eq(state_of(0xA1), PL_J_LOADING);
    /* Once LOADING the package may be on the chip: it can never be released or dispatched
     * again, only resolved by a result (or by the FPA's "nothing sent", undispatch). */
    cr_assert_eq(pl_journal_result_released(j, r->package_id, "no"), PL_ERR_STATE);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, "f2", eid_read), PL_ERR_STATE);
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), true), PL_OK);
    cr_assert_eq(state_of(0xA1), PL_J_RESULT);
    /* A PIR is never replaced by another nor downgraded to an error. */
    uint8_t other[] = {0xBF, 0x37, 0x01, 0x00};
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, other, sizeof(other), false),
                 PL_ERR_EXISTS);
    cr_assert_eq(pl_journal_result_error(j, r->package_id, PL_JFPA_UNKNOWN, "x"), PL_ERR_STATE);
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), true), PL_OK);
    memset(audit, 0xAD, sizeof(audit));
    cr_assert_eq(pl_journal_reported(j, r->package_id, mid, 42, audit), PL_OK);
    cr_assert_eq(pl_journal_notified(j, r->package_id, 0), PL_ERR_STATE); /* not before ACK */
    cr_assert_eq(pl_journal_get(j, r->package_id, g), PL_OK);
    cr_assert(g->has_report_ident);
    cr_assert_eq(g->report_seq, 42);
    cr_assert(g->has_report_audit);
    cr_assert_eq(memcmp(g->report_audit, audit, 32), 0);
    cr_assert_eq(g->km_accepted, -1);
    cr_assert_eq(pl_journal_acked(j, r->package_id, true, 0, 2), PL_OK);
    cr_assert_eq(state_of(0xA1), PL_J_ACKED);
    /* Retention: the sealed bytes go after the acknowledgement. */
    cr_assert(file_exists(0xA1));
    cr_assert_eq(pl_journal_purge(j, r->package_id), PL_OK);
    cr_assert_not(file_exists(0xA1));
    cr_assert_eq(pl_journal_purge(j, r->package_id), PL_OK);
    cr_assert_eq(pl_journal_envelope(j, r->package_id, &e, &elen), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_journal_notified(j, r->package_id, 0), PL_OK);
    cr_assert_eq(pl_journal_get(j, r->package_id, g), PL_OK);
    cr_assert_eq(g->state, PL_J_NOTIFIED);
    cr_assert(g->purged);
    cr_assert_eq(g->outcome, PL_JO_PIR);
    cr_assert(g->pir_success);
    cr_assert_str_eq(g->fixture, "f1");
    cr_assert_eq(g->load_request_id, 77);
    for (int s = PL_J_LEASED; s <= PL_J_NOTIFIED; s++)
        cr_assert_neq(g->t[s], 0, "no time for %s", pl_journal_state_name(s));
    /* Nothing after NOTIFIED. */
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), true), PL_ERR_STATE);
    pl_journal_close(j);
    free(r);
    free(g);
}

Test(station_journal, undispatch_release_and_reopen_after_error, .init = setup,
     .fini = teardown)
{
    struct pl_journal *j = NULL;
    struct pl_jpkg *r = malloc(sizeof(*r)), *g = malloc(sizeof(*g));
    uint8_t eid[16], mid[16] = {0}, pir[] = {0xBF, 0x37, 0x00};
    memset(eid, 0x89, 16);
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);

    /* The FPA said nothing was sent: back to the pool, usable again. */
    mkrow(r, 0xB1, 1);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, "f1", eid), PL_OK);
    cr_assert_eq(pl_journal_loading(j, r->package_id, 9), PL_OK);
    cr_assert_eq(pl_journal_undispatch(j, r->package_id, "EID_MISMATCH"), PL_OK);
    cr_assert_eq(pl_journal_get(j, r->package_id, g), PL_OK);
    cr_assert_eq(g->state, PL_J_LEASED);
    cr_assert_str_eq(g->fixture, "");
    /* Released (never left): RESULT(released). */
    cr_assert_eq(pl_journal_result_released(j, r->package_id, "lease expired"), PL_OK);
    cr_assert_eq(pl_journal_get(j, r->package_id, g), PL_OK);
    cr_assert_eq(g->outcome, PL_JO_RELEASED);

    /* A station-side error, acknowledged as possibly used, then proof: the PIR reopens it. */
    mkrow(r, 0xB2, 2);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, "f1", eid), PL_OK);
    cr_assert_eq(pl_journal_loading(j, r->package_id, 10), PL_OK);
    cr_assert_eq(pl_journal_result_error(j, r->package_id, PL_JFPA_UNKNOWN, "no PIR"), PL_OK);
    cr_assert_eq(pl_journal_reported(j, r->package_id, mid, 3, NULL), PL_OK);
    cr_assert_eq(pl_journal_acked(j, r->package_id, true, 0, 4), PL_OK);
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), false), PL_OK);
    cr_assert_eq(pl_journal_get(j, r->package_id, g), PL_OK);
    cr_assert_eq(g->state, PL_J_RESULT);
    cr_assert_eq(g->outcome, PL_JO_PIR);
    cr_assert_eq(g->km_accepted, -1, "the earlier answer no longer applies");
    cr_assert_not(g->has_report_ident, "a new report gets a new identity");
    /* But an acknowledged PIR is final. */
    cr_assert_eq(pl_journal_reported(j, r->package_id, mid, 4, NULL), PL_OK);
    cr_assert_eq(pl_journal_acked(j, r->package_id, true, 0, 3), PL_OK);
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), false), PL_ERR_STATE);

    /* Transition table sanity. */
    cr_assert(pl_journal_allowed(PL_J_LOADING, PL_J_RESULT));
    cr_assert_not(pl_journal_allowed(PL_J_LOADING, PL_J_DISPATCHED));
    cr_assert_not(pl_journal_allowed(PL_J_RESULT, PL_J_LOADING));
    cr_assert_not(pl_journal_allowed(PL_J_NOTIFIED, PL_J_RESULT));
    cr_assert_not(pl_journal_allowed(PL_J_REPORTED, PL_J_NOTIFIED));
    cr_assert_not(pl_journal_allowed(0, PL_J_LEASED));
    pl_journal_close(j);
    free(r);
    free(g);
}

Test(station_journal, orphans_requests_devices_counts_export, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL;
    struct pl_jpkg *r = malloc(sizeof(*r));
    struct pl_jlease_req q, q2;
    struct pl_jdevice *d = calloc(1, sizeof(*d)), *d2 = calloc(1, sizeof(*d2));
    struct pl_journal_counts c;
    uint64_t v = 0;
    char p[400];

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    /* Sequence numbers only go up. */
    cr_assert_eq(pl_journal_meta_raise(j, "last_seq", 10), PL_OK);
    cr_assert_eq(pl_journal_meta_raise(j, "last_seq", 4), PL_OK);
    cr_assert_eq(pl_journal_meta_get(j, "last_seq", &v), PL_OK);
    cr_assert_eq(v, 10);
    /* A pending lease request is dropped by the lease it produced. */
    memset(&q, 0, sizeof(q));
    memset(q.eid, 0x89, 16);
    q.otk_id = 5;
    memset(q.msg_id, 0x33, 16);
    q.seq = 11;
    snprintf(q.fixture, sizeof(q.fixture), "f1");
    cr_assert_eq(pl_journal_lease_req_put(j, &q), PL_OK);
    cr_assert_eq(pl_journal_lease_req_get(j, q.eid, &q2), PL_OK);
    cr_assert_eq(q2.otk_id, 5);
    cr_assert_eq(q2.seq, 11);
    cr_assert_eq(memcmp(q2.msg_id, q.msg_id, 16), 0);
    mkrow(r, 0xC1, 5);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_lease_req_get(j, q.eid, &q2), PL_ERR_NOT_FOUND);
    /* Devices. */
    memset(d->eid, 0x89, 16);
    d->state = PL_JD_CLOSED;
    snprintf(d->fixture, sizeof(d->fixture), "f1");
    d->token_counter = 7;
    d->has_receipt = true;
    d->receipt_len = 3;
    memcpy(d->receipt, "\xFF\x75\x00", 3);
    cr_assert_eq(pl_journal_device_put(j, d), PL_OK);
    cr_assert_eq(pl_journal_device_get(j, d->eid, d2), PL_OK);
    cr_assert_eq(d2->state, PL_JD_CLOSED);
    cr_assert_eq(d2->token_counter, 7);
    cr_assert(d2->has_receipt);
    cr_assert_eq(d2->receipt_len, 3);
    cr_assert_not(d2->receipt_acked);
    /* Counts. */
    cr_assert_eq(pl_journal_counts(j, &c), PL_OK);
    cr_assert_eq(c.state[PL_J_LEASED], 1);
    cr_assert_eq(c.device[PL_JD_CLOSED], 1);
    cr_assert_eq(c.pending_leases, 0);
    pl_journal_close(j);

    /* A file left by a crash between the file and its row is swept at the next open; the
     * live package's file stays. */
    snprintf(p, sizeof(p), "%s/00112233445566778899aabbccddeeff.pkg", pkgs);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("orphan", f);
    fclose(f);
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(access(p, F_OK), -1, "orphan not swept");
    cr_assert(file_exists(0xC1));

    pl_journal_close(j);
    /* A read-only journal refuses every write. */
    struct pl_journal *ro = NULL;
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    mkrow(r, 0xC2, 6);
    cr_assert_eq(pl_journal_lease(ro, r, env, sizeof(env)), PL_ERR_STATE);
    cr_assert_eq(pl_journal_dispatch(ro, r->package_id, "f", r->eid), PL_ERR_STATE);
    cr_assert_eq(pl_journal_device_put(ro, d), PL_ERR_STATE);
    cr_assert_eq(pl_journal_purge(ro, r->package_id), PL_ERR_STATE);
    pl_journal_close(ro);
    free(r);
    free(d);
    free(d2);
}

static int to_buf(void *user, const char *s, size_t n)
{
    char *b = user;
    size_t have = strlen(b);
    if (have + n >= 8192)
        return PL_ERR_OVERFLOW;
    memcpy(b + have, s, n);
    b[have + n] = '\0';
    return PL_OK;
}

Test(station_journal, export_csv_and_json, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL;
    struct pl_jpkg *r = malloc(sizeof(*r));
    char *buf = calloc(1, 8192);
    uint8_t eid[16], mid[16] = {0}, pir[] = {0xBF, 0x37, 0x00};
    memset(eid, 0x89, 16);

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    mkrow(r, 0xD1, 1);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, "fx-1", eid), PL_OK);
    cr_assert_eq(pl_journal_loading(j, r->package_id, 1), PL_OK);
    cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), true), PL_OK);
    cr_assert_eq(pl_journal_reported(j, r->package_id, mid, 1, NULL), PL_OK);
    cr_assert_eq(pl_journal_acked(j, r->package_id, true, 0, 2), PL_OK);
    mkrow(r, 0xD2, 2);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_export(j, PL_JOURNAL_CSV, to_buf, buf), PL_OK);
    cr_assert(strncmp(buf, "eid,iccid,package_id,transaction_id,otk_id,result,state,fixture,", 64) == 0,
              "%s", buf);
    cr_assert(strstr(buf, "89898989898989898989898989898989,8949449999999990023,"
                          "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1,")
                  != NULL,
              "%s", buf);
    cr_assert(strstr(buf, ",1,installed,ACKED,fx-1,") != NULL, "%s", buf);
    cr_assert(strstr(buf, ",2,pending,LEASED,,") != NULL, "%s", buf);
    buf[0] = '\0';
    cr_assert_eq(pl_journal_export(j, PL_JOURNAL_JSON, to_buf, buf), PL_OK);
    cr_assert(buf[0] == '[' && strstr(buf, "\"result\": \"installed\"") != NULL, "%s", buf);
    cr_assert(strstr(buf, "\"fixture\": \"fx-1\"") != NULL, "%s", buf);
    cr_assert(strstr(buf, "},\n  {") != NULL, "%s", buf);
    cr_assert_eq(pl_journal_export(j, 9, to_buf, buf), PL_ERR_INVAL);
    pl_journal_close(j);
    /* Not a journal. */
    char p[400];
    snprintf(p, sizeof(p), "%s/not.db", dir);
    FILE *f = fopen(p, "w");
    fputs("hello", f);
    fclose(f);
    struct pl_journal *ro = NULL;
    cr_assert_neq(pl_journal_open_ro(p, &ro), PL_OK);
    free(r);
    free(buf);
}

/* ---- eUICC certificates and the eIM batch ---- */

/* Stand-in certificate bytes: the journal and the batch treat them as opaque. */
static const uint8_t cert_euicc_a[] = {0x30, 0x03, 0x02, 0x01, 0x0A};
static const uint8_t cert_euicc_b[] = {0x30, 0x03, 0x02, 0x01, 0x0B};
static const uint8_t cert_eum[] = {0x30, 0x04, 0x04, 0x02, 0xEE, 0x01};

static void put_device(struct pl_journal *j, uint8_t eid_byte, int state, const char *fixture)
{
    struct pl_jdevice *d = calloc(1, sizeof(*d));
    cr_assert_not_null(d);
    memset(d->eid, eid_byte, 16);
    d->state = state;
    snprintf(d->fixture, sizeof(d->fixture), "%s", fixture);
    cr_assert_eq(pl_journal_device_put(j, d), PL_OK);
    free(d);
}

static void sql(const char *text)
{
    sqlite3 *h = NULL;
    char *err = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, text, NULL, NULL, &err), SQLITE_OK, "%s: %s", text,
                 err ? err : "");
    sqlite3_close(h);
}

Test(station_journal, device_certificates_and_schema_migration, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL, *ro = NULL;
    struct pl_jcerts *c = malloc(sizeof(*c));
    uint8_t eid[16], other[16], *big = calloc(1, PL_J_CERT_MAX + 1);
    struct pl_jdevice *d = calloc(1, sizeof(*d));
    uint64_t v = 0;
    memset(eid, 0x89, 16);
    memset(other, 0x77, 16);
    cr_assert(c != NULL && big != NULL && d != NULL);

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(pl_journal_meta_get(j, "schema", &v), PL_OK);
    cr_assert_eq(v, 3);
    /* Only on an existing device record. */
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_a, sizeof(cert_euicc_a),
                                             cert_eum, sizeof(cert_eum)),
                 PL_ERR_NOT_FOUND);
    put_device(j, 0x89, PL_JD_IDENTIFIED, "f1");
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert_not(c->has_euicc);
    cr_assert_not(c->has_eum);
    cr_assert_eq(pl_journal_device_certs_get(j, other, c), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_a, sizeof(cert_euicc_a),
                                             cert_eum, sizeof(cert_eum)),
                 PL_OK);
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert(c->has_euicc && c->euicc_len == sizeof(cert_euicc_a)
              && memcmp(c->euicc, cert_euicc_a, sizeof(cert_euicc_a)) == 0);
    cr_assert(c->has_eum && c->eum_len == sizeof(cert_eum)
              && memcmp(c->eum, cert_eum, sizeof(cert_eum)) == 0);
    /* A device_put (every state change) keeps them. */
    put_device(j, 0x89, PL_JD_DONE, "f1");
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert(c->has_euicc && c->has_eum);
    /* Over the cap or empty: refused, nothing changed. */
    cr_assert_eq(pl_journal_device_certs_put(j, eid, big, PL_J_CERT_MAX + 1, NULL, 0),
                 PL_ERR_INVAL);
    cr_assert_eq(pl_journal_device_certs_put(j, eid, big, 0, NULL, 0), PL_ERR_INVAL);
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert_eq(c->euicc_len, sizeof(cert_euicc_a));
    /* Replaced by the next Identify's (NULL: none). */
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_b, sizeof(cert_euicc_b), NULL, 0),
                 PL_OK);
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert(c->has_euicc && memcmp(c->euicc, cert_euicc_b, sizeof(cert_euicc_b)) == 0);
    cr_assert_not(c->has_eum);
    pl_journal_close(j);
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    cr_assert_eq(pl_journal_device_certs_put(ro, eid, cert_euicc_a, sizeof(cert_euicc_a), NULL, 0),
                 PL_ERR_STATE);
    pl_journal_close(ro);

    /* A journal of schema 1 as the first stations wrote it (no certificates, no deletion
     * receipts, no info table): read-only it reads as it is; the next read-write open
     * migrates it in place. */
    sql("ALTER TABLE device DROP COLUMN euicc_cert; ALTER TABLE device DROP COLUMN eum_cert;"
        " ALTER TABLE device DROP COLUMN receipt; ALTER TABLE device DROP COLUMN receipt_acked;"
        " DROP TABLE info; UPDATE meta SET v = 1 WHERE k = 'schema';");
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    cr_assert_eq(pl_journal_device_certs_get(ro, eid, c), PL_OK);
    cr_assert_not(c->has_euicc);
    cr_assert_eq(pl_journal_device_get(ro, eid, d), PL_OK);
    cr_assert_eq(d->state, PL_JD_DONE);
    cr_assert_not(d->has_receipt);
    pl_journal_close(ro);
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(pl_journal_meta_get(j, "schema", &v), PL_OK);
    cr_assert_eq(v, 3);
    cr_assert_eq(pl_journal_device_get(j, eid, d), PL_OK);
    cr_assert_eq(d->state, PL_JD_DONE);
    /* the migrated device table keeps a deletion receipt */
    d->has_receipt = true;
    d->receipt_len = 3;
    memcpy(d->receipt, "\xFF\x75\x00", 3);
    d->receipt_acked = true;
    cr_assert_eq(pl_journal_device_put(j, d), PL_OK);
    cr_assert_eq(pl_journal_device_get(j, eid, d), PL_OK);
    cr_assert(d->has_receipt && d->receipt_len == 3 && d->receipt_acked);
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_a, sizeof(cert_euicc_a),
                                             cert_eum, sizeof(cert_eum)),
                 PL_OK);
    pl_journal_close(j);
    /* Opening again changes nothing. */
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(pl_journal_device_certs_get(j, eid, c), PL_OK);
    cr_assert(c->has_euicc && c->has_eum);
    pl_journal_close(j);
    free(c);
    free(big);
    free(d);
}

/* A package of device eid_byte through to the Key Maker's answer km_state (0: not yet
 * reported), with a PIR of success pir_ok (no PIR: a load without an answer). */
static void produce(struct pl_journal *j, uint8_t pkg, uint8_t eid_byte, const char *fixture,
                    int pir_ok, int km_state)
{
    struct pl_jpkg *r = malloc(sizeof(*r));
    uint8_t mid[16] = {0}, pir[] = {0xBF, 0x37, 0x00};
    cr_assert_not_null(r);
    mkrow(r, pkg, pkg);
    memset(r->eid, eid_byte, 16);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_dispatch(j, r->package_id, fixture, r->eid), PL_OK);
    cr_assert_eq(pl_journal_loading(j, r->package_id, pkg), PL_OK);
    if (pir_ok >= 0)
        cr_assert_eq(pl_journal_result_pir(j, r->package_id, pir, sizeof(pir), pir_ok == 1),
                     PL_OK);
    if (km_state > 0) {
        mid[0] = pkg;
        cr_assert_eq(pl_journal_reported(j, r->package_id, mid, pkg, NULL), PL_OK);
        cr_assert_eq(pl_journal_acked(j, r->package_id, true, 0, km_state), PL_OK);
    }
    free(r);
}

static json_t *batch_json(struct pl_journal *j, const struct pl_batch_opts *o, size_t *n)
{
    char *buf = calloc(1, 8192);
    json_error_t e;
    cr_assert_not_null(buf);
    cr_assert_eq(pl_batch_export(j, o, to_buf, buf, n), PL_OK);
    json_t *t = json_loads(buf, 0, &e);
    cr_assert_not_null(t, "not JSON (%s): %s", e.text, buf);
    free(buf);
    return t;
}

static json_t *entry(json_t *top, uint8_t eid_byte)
{
    char hex[33];
    size_t i;
    json_t *d;
    for (int k = 0; k < 16; k++)
        snprintf(hex + 2 * k, 3, "%02x", eid_byte);
    json_array_foreach(json_object_get(top, "devices"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "eid")), hex) == 0)
            return d;
    }
    return NULL;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The station id recorded in the journal (schema 3): set, replaced, read back read-only;
 * absent in an older journal; too long refused. */
Test(station_journal, station_id_info, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL, *ro = NULL;
    char out[PL_J_INFO_MAX + 1], small[4], big[PL_J_INFO_MAX + 2];
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(pl_journal_info_get(j, PL_J_INFO_STATION, out, sizeof(out)), PL_ERR_NOT_FOUND);
    cr_assert_eq(pl_journal_info_set(j, PL_J_INFO_STATION, "line-1"), PL_OK);
    cr_assert_eq(pl_journal_info_set(j, PL_J_INFO_STATION, "line-2"), PL_OK);
    cr_assert_eq(pl_journal_info_get(j, PL_J_INFO_STATION, out, sizeof(out)), PL_OK);
    cr_assert_str_eq(out, "line-2");
    cr_assert_eq(pl_journal_info_get(j, PL_J_INFO_STATION, small, sizeof(small)),
                 PL_ERR_OVERFLOW);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert_eq(pl_journal_info_set(j, PL_J_INFO_STATION, big), PL_ERR_INVAL);
    pl_journal_close(j);
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    cr_assert_eq(pl_journal_info_get(ro, PL_J_INFO_STATION, out, sizeof(out)), PL_OK);
    cr_assert_str_eq(out, "line-2");
    cr_assert_eq(pl_journal_info_set(ro, PL_J_INFO_STATION, "line-3"), PL_ERR_STATE);
    pl_journal_close(ro);
    /* A schema-2 journal: nothing recorded, and no error. */
    sql("DROP TABLE info; UPDATE meta SET v = 2 WHERE k = 'schema';");
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    cr_assert_eq(pl_journal_info_get(ro, PL_J_INFO_STATION, out, sizeof(out)), PL_ERR_NOT_FOUND);
    pl_journal_close(ro);
}

Test(station_journal, batch_for_the_eim, .init = setup, .fini = teardown)
{
    struct pl_journal *j = NULL, *ro = NULL;
    struct pl_batch_opts o;
    size_t n = 0;
    uint8_t eid[16];
    char *buf = calloc(1, 8192);
    cr_assert_not_null(buf);

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    /* Nothing produced yet: no batch (the eIM takes 1.. entries). */
    memset(&o, 0, sizeof(o));
    cr_assert_eq(pl_batch_export(j, &o, to_buf, buf, &n), PL_ERR_NOT_FOUND);
    cr_assert_eq(buf[0], '\0');
    /* A: installed (verified), certificates; B: a verified PIR error, same EUM; C: a load
     * without any answer, no certificates; D: identified, its only lease released unused. */
    put_device(j, 0xA0, PL_JD_IDENTIFIED, "f1");
    put_device(j, 0xB0, PL_JD_IDENTIFIED, "f2");
    put_device(j, 0xC0, PL_JD_IDENTIFIED, "f3");
    put_device(j, 0xD0, PL_JD_IDENTIFIED, "f4");
    memset(eid, 0xA0, 16);
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_a, sizeof(cert_euicc_a),
                                             cert_eum, sizeof(cert_eum)),
                 PL_OK);
    memset(eid, 0xB0, 16);
    cr_assert_eq(pl_journal_device_certs_put(j, eid, cert_euicc_b, sizeof(cert_euicc_b),
                                             cert_eum, sizeof(cert_eum)),
                 PL_OK);
    produce(j, 0x01, 0xB0, "f2", 0, 3);  /* PIR error, Key Maker: failed */
    produce(j, 0x02, 0xA0, "f1", 0, 3);  /* a first attempt failed ... */
    produce(j, 0x03, 0xA0, "f1", 1, 2);  /* ... the second installed */
    produce(j, 0x04, 0xC0, "f3", -1, 0); /* LOADING, no answer */
    struct pl_jpkg *r = malloc(sizeof(*r));
    mkrow(r, 0x05, 5);
    memset(r->eid, 0xD0, 16);
    cr_assert_eq(pl_journal_lease(j, r, env, sizeof(env)), PL_OK);
    cr_assert_eq(pl_journal_result_released(j, r->package_id, "expired"), PL_OK);
    free(r);
    put_device(j, 0xA0, PL_JD_DONE, "f1");
    pl_journal_close(j);

    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    o.batch_id = "line1-2026-11-25-0001";
    o.station = "line1";
    o.eim_id = "eim.example.com";
    o.created_ms = 1795600800000ull; /* 2026-11-25T10:00:00Z */
    json_t *t = batch_json(ro, &o, &n);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(str(t, "format"), "provline-station-batch/1");
    cr_assert_str_eq(str(t, "batch_id"), "line1-2026-11-25-0001");
    cr_assert_str_eq(str(t, "station"), "line1");
    cr_assert_str_eq(str(t, "created_at"), "2026-11-25T10:00:00Z");
    cr_assert_str_eq(str(t, "eim_id"), "eim.example.com");
    cr_assert_eq(json_array_size(json_object_get(t, "devices")), 3);
    /* One EUM for both devices that have it, named once. */
    json_t *eums = json_object_get(t, "eum_certificates");
    cr_assert_eq(json_object_size(eums), 1);
    cr_assert_str_eq(str(eums, "eum-1"), "MAQEAu4B");

    json_t *a = entry(t, 0xA0), *b = entry(t, 0xB0), *c = entry(t, 0xC0);
    cr_assert(a != NULL && b != NULL && c != NULL);
    cr_assert_null(entry(t, 0xD0), "a device without a package on its chip is not a batch entry");
    cr_assert_str_eq(str(a, "status"), "installed");
    /* The ICCID's digits (protocol/iccid.h), as the eIM reads the '5A' bytes
     * 98 94 44 99 99 99 99 09 20 F3. */
    cr_assert_str_eq(str(a, "iccid"), "8949449999999990023");
    cr_assert_str_eq(str(a, "profile_state"), "disabled");
    cr_assert_str_eq(str(a, "euicc_certificate"), "MAMCAQo=");
    cr_assert_str_eq(str(a, "eum_certificate_ref"), "eum-1");
    cr_assert_null(json_object_get(a, "eum_certificate"));
    cr_assert_str_eq(str(a, "fixture"), "f1");
    cr_assert_str_eq(str(a, "x_package_id"), "03030303030303030303030303030303");
    cr_assert_str_eq(str(a, "x_result"), "installed");
    const char *done = str(a, "completed_at");
    cr_assert(done != NULL && strlen(done) == 24 && done[10] == 'T' && done[23] == 'Z', "%s",
              done ? done : "(none)");
    cr_assert_str_eq(str(b, "status"), "failed");
    cr_assert_str_eq(str(b, "euicc_certificate"), "MAMCAQs=");
    cr_assert_str_eq(str(b, "eum_certificate_ref"), "eum-1");
    cr_assert_str_eq(str(c, "status"), "possibly_used");
    cr_assert_str_eq(str(c, "x_result"), "pending");
    /* No certificates captured: no certificate members at all. */
    cr_assert_null(json_object_get(c, "euicc_certificate"));
    cr_assert_null(json_object_get(c, "eum_certificate_ref"));
    cr_assert_null(json_object_get(c, "eum_certificate"));
    json_decref(t);

    /* Defaults: no station or eim_id members; batch_id "station-<UTC date-time>". */
    memset(&o, 0, sizeof(o));
    o.created_ms = 1795600800000ull;
    t = batch_json(ro, &o, &n);
    cr_assert_str_eq(str(t, "batch_id"), "station-20261125T100000Z");
    cr_assert_null(json_object_get(t, "station"));
    cr_assert_null(json_object_get(t, "eim_id"));
    json_decref(t);
    o.station = "line\"1\\";
    t = batch_json(ro, &o, &n); /* escaped by the JSON writer */
    cr_assert_str_eq(str(t, "batch_id"), "line\"1\\-20261125T100000Z");
    cr_assert_str_eq(str(t, "station"), "line\"1\\");
    json_decref(t);
    /* Without --station: the station id the station recorded in its journal. */
    pl_journal_close(ro);
    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    cr_assert_eq(pl_journal_info_set(j, PL_J_INFO_STATION, "line-7"), PL_OK);
    pl_journal_close(j);
    cr_assert_eq(pl_journal_open_ro(db, &ro), PL_OK);
    o.station = NULL;
    t = batch_json(ro, &o, &n);
    cr_assert_str_eq(str(t, "station"), "line-7");
    cr_assert_str_eq(str(t, "batch_id"), "line-7-20261125T100000Z");
    json_decref(t);
    /* Options out of the eIM's limits. */
    char long_id[PL_BATCH_ID_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    o.batch_id = long_id;
    buf[0] = '\0';
    cr_assert_eq(pl_batch_export(ro, &o, to_buf, buf, &n), PL_ERR_INVAL);
    cr_assert_eq(buf[0], '\0');
    o.batch_id = "";
    cr_assert_eq(pl_batch_opts_check(&o), PL_ERR_INVAL);
    o.batch_id = "b\xff";
    cr_assert_eq(pl_batch_opts_check(&o), PL_ERR_INVAL);
    o.batch_id = "b";
    o.eim_id = "";
    cr_assert_eq(pl_batch_opts_check(&o), PL_ERR_INVAL);
    pl_journal_close(ro);
    free(buf);
}

/* The command line: --batch and its options, usage errors (2) for anything else. */
Test(station_journal, export_batch_command_line, .init = setup, .fini = teardown)
{
    static const char *const bad[] = {
        "--batch",                                  /* no OUT */
        "--batch - --bogus",                        /* unknown option */
        "--batch - --batch-id",                     /* no ID */
        "--csv - --batch -",                        /* two formats */
        "--json - --eim-id e",                      /* a batch option without --batch */
        "--batch - --station ''",                   /* empty */
        "--batch-id b --eim-id e",                  /* no format */
    };
    const char *bin = getenv("PL_BIN_DIR");
    char cmd[2048], *out = calloc(1, 16384);
    struct pl_journal *j = NULL;
    cr_assert_not_null(bin, "PL_BIN_DIR is not set");
    cr_assert_not_null(out);

    cr_assert_eq(pl_journal_open(db, pkgs, NULL, &j), PL_OK);
    put_device(j, 0xA0, PL_JD_IDENTIFIED, "f1");
    produce(j, 0x03, 0xA0, "f1", 1, 2);
    pl_journal_close(j);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, 2048, "'%s/provline-station' export --journal '%s' %s 2>&1", bin, db, bad[i]);
        cr_assert_eq(pl_test_run(cmd, out, 16384), 2, "%s: %s", bad[i], out);
    }
    /* The batch on standard output; --csv and --json unchanged. */
    snprintf(cmd, 2048,
             "'%s/provline-station' export --journal '%s' --batch - --batch-id B7 --station s1 "
             "--eim-id eim.x",
             bin, db);
    cr_assert_eq(pl_test_run(cmd, out, 16384), 0, "%s", out);
    json_t *t = json_loads(out, 0, NULL);
    cr_assert_not_null(t, "%s", out);
    cr_assert_str_eq(str(t, "batch_id"), "B7");
    cr_assert_str_eq(str(t, "station"), "s1");
    cr_assert_str_eq(str(t, "eim_id"), "eim.x");
    cr_assert_str_eq(str(entry(t, 0xA0), "status"), "installed");
    json_decref(t);
    snprintf(cmd, 2048, "'%s/provline-station' export --journal '%s' --csv -", bin, db);
    cr_assert_eq(pl_test_run(cmd, out, 16384), 0, "%s", out);
    cr_assert(strstr(out, ",8949449999999990023,") != NULL, "%s", out);
    free(out);
}
