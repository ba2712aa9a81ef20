/* Integration (slow): the station is SIGKILLed at random points, over many runs, and so are
 * the Key Maker and a virtual device (power cut) in some runs; every process is restarted
 * and the line must still account for every package exactly once:
 *  - the Key Maker never issued two packages for one one-time key (GENS08);
 *  - no eUICC holds more than one profile, none twice, and each device ends done with the
 *    profile of the one package the Key Maker recorded as installed for it;
 *  - nothing is lost: every package the Key Maker issued is in the station's journal and was
 *    reported (none left issued), the journal agrees with the Key Maker's state, and a
 *    package left possibly used never loaded anything (its OTK was deleted unused);
 *  - the audit chain still verifies.
 * ARCHITECTURE.md §5 (invariants); reference/IFPP.md §6.3, §7 cases 7, 8, 18, 23.
 * PL_TEST_SLOW. Runs: PL_CRASH_RUNS (default 100); the seed of a failing run is printed. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pl_line.h"
#include "pl_test.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/station/audit.h"
#include "provline/station/journal.h"

#define N_DEV 2u
#define FINISH_MS 120000

static uint64_t rnd_state;

static uint32_t rnd(void)
{
    /* xorshift64*: reproducible from the run's seed. */
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;
    return (uint32_t)((rnd_state * UINT64_C(2685821657736338717)) >> 32);
}

static int q_int(sqlite3 *h, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

struct jrow_ctx {
    sqlite3 *km;
    unsigned n;
    unsigned seed;
};

/* Every journaled package is settled, and its acknowledged state is the Key Maker's. */
static int check_jrow(void *user, const struct pl_jpkg *row)
{
    struct jrow_ctx *c = user;
    sqlite3_stmt *st = NULL;
    char state[32] = "";
    c->n++;
    cr_assert(row->state == PL_J_ACKED || row->state == PL_J_NOTIFIED,
              "seed %u: package left %s in the journal", c->seed,
              pl_journal_state_name(row->state));
    cr_assert(row->purged, "seed %u: acknowledged package not purged", c->seed);
    cr_assert_eq(sqlite3_prepare_v2(c->km, "SELECT state FROM package WHERE package_id = ?1", -1,
                                    &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_blob(st, 1, row->package_id, 16, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "seed %u: journaled package unknown to the Key Maker",
                 c->seed);
    snprintf(state, sizeof(state), "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (row->km_accepted == 1 && row->km_state == 2)
        cr_assert_str_eq(state, "installed", "seed %u", c->seed);
    if (strcmp(state, "installed") == 0) {
        cr_assert_eq(row->outcome, PL_JO_PIR, "seed %u", c->seed);
        cr_assert(row->pir_success, "seed %u", c->seed);
    }
    return 0;
}

static void verify(struct pl_line *l, unsigned seed)
{
    sqlite3 *km = NULL;
    struct pl_journal *j = NULL;
    uint8_t iccids[N_DEV][PL_EUICC_ICCID_LEN];

    cr_assert_eq(sqlite3_open_v2(l->km_db, &km, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    /* GENS08: never two packages for one one-time key. */
    cr_assert_eq(q_int(km, "SELECT count(*) FROM (SELECT eid, otk_id FROM package GROUP BY eid,"
                           " otk_id HAVING count(*) > 1)"),
                 0, "seed %u: two packages for one OTK", seed);
    /* Every package reported: none left issued. A package may stay possibly used (the
     * station reported a failure without proof and the eUICC's deletion receipt, its proof,
     * was lost with a station killed between the deletion and its journal entry): it must
     * then never have been loaded - its OTK deleted unused on the chip (checked below). */
    cr_assert_eq(q_int(km, "SELECT count(*) FROM package WHERE state = 'issued'"), 0,
                 "seed %u: packages left issued at the Key Maker", seed);
    cr_assert_eq(q_int(km, "SELECT count(*) FROM package WHERE state = 'installed'"), (int)N_DEV,
                 "seed %u: installed packages", seed);
    cr_assert_eq(q_int(km, "SELECT count(*) FROM (SELECT eid FROM package WHERE state ="
                           " 'installed' GROUP BY eid HAVING count(*) > 1)"),
                 0, "seed %u: a device with two installed packages", seed);

    /* Each eUICC: exactly one profile, the one of its installed package; none shared. */
    for (size_t i = 0; i < l->n_dev; i++) {
        struct pl_euicc *e = NULL;
        struct pl_euicc_profile_info pi;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(pl_euicc_open(l->dev[i].euicc, NULL, &e), PL_OK);
        cr_assert_eq(pl_euicc_profile_count(e), 1, "seed %u: device %zu holds %zu profiles", seed,
                     i, pl_euicc_profile_count(e));
        cr_assert_eq(pl_euicc_profile_get(e, 0, &pi), PL_OK);
        cr_assert_not(pl_euicc_factory_mode(e), "seed %u: device %zu not locked", seed, i);
        cr_assert_eq(sqlite3_prepare_v2(km,
                                        "SELECT p.iccid, p.upp FROM package k JOIN profile p ON"
                                        " p.id = k.profile_id WHERE k.eid = ?1 AND k.state ="
                                        " 'installed'",
                                        -1, &st, NULL),
                     SQLITE_OK);
        sqlite3_bind_blob(st, 1, l->dev[i].eid, 16, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "seed %u: device %zu has no installed package",
                     seed, i);
        cr_assert_eq(memcmp(sqlite3_column_blob(st, 0), pi.iccid, PL_EUICC_ICCID_LEN), 0,
                     "seed %u: device %zu holds another profile than its package's", seed, i);
        cr_assert_eq((size_t)sqlite3_column_bytes(st, 1), pi.upp_len);
        cr_assert_eq(memcmp(sqlite3_column_blob(st, 1), pi.upp, pi.upp_len), 0);
        sqlite3_finalize(st);
        /* Packages still possibly used: their OTK never loaded anything. */
        cr_assert_eq(sqlite3_prepare_v2(km,
                                        "SELECT otk_id FROM package WHERE eid = ?1 AND state ="
                                        " 'possibly-used'",
                                        -1, &st, NULL),
                     SQLITE_OK);
        sqlite3_bind_blob(st, 1, l->dev[i].eid, 16, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
            struct pl_euicc_otk_info oi;
            cr_assert_eq(pl_euicc_otk_by_id(e, (uint16_t)sqlite3_column_int(st, 0), &oi), PL_OK);
            cr_assert_eq(oi.state, PL_EUICC_OTK_DELETED,
                         "seed %u: a possibly-used package's OTK %u is %s on the chip", seed,
                         oi.id, pl_euicc_otk_state_name(oi.state));
        }
        sqlite3_finalize(st);
        memcpy(iccids[i], pi.iccid, PL_EUICC_ICCID_LEN);
        for (size_t k = 0; k < i; k++)
            cr_assert_neq(memcmp(iccids[k], pi.iccid, PL_EUICC_ICCID_LEN), 0,
                          "seed %u: one profile on two devices", seed);
        pl_euicc_close(e);
    }

    /* Nothing lost: every package the Key Maker issued is journaled, and settled there. */
    struct jrow_ctx c = {km, 0, seed};
    cr_assert_eq(pl_journal_open_ro(l->journal, &j), PL_OK);
    cr_assert_eq(pl_journal_each(j, 0, NULL, NULL, check_jrow, &c), PL_OK);
    pl_journal_close(j);
    cr_assert_eq((int)c.n, q_int(km, "SELECT count(*) FROM package"),
                 "seed %u: the Key Maker issued packages the journal does not hold", seed);
    sqlite3_close(km);

    struct pl_audit_report ar;
    cr_assert_eq(pl_audit_verify(l->audit, &ar), PL_OK);
    cr_assert(ar.ok, "seed %u: audit: %s", seed, ar.detail);
}

/* Kill points aimed at the moments that matter: right after the station logged one of these
 * (a lease on its way, a load in flight, a PIR in hand, a report, close production). */
static const char *const marks[] = {
    "event=lease_request", "event=leased",       "event=load ",         "event=pir ",
    "event=report ",       "state=NOTIFY event", "state=DELETE event",  "state=RECEIPT event",
    "state=EIM event",     "state=RECOVER event",
};

/* Waits (at most 3 s) for one more line with mark in the station log than `before`. */
static void wait_mark(const struct pl_line *l, const char *mark, int before)
{
    uint64_t end = pl_line_now_ms() + 3000u;
    while (pl_line_now_ms() < end && pl_line_count(l->st_log, mark) <= before)
        pl_line_sleep_ms(2);
}

static void one_run(unsigned seed)
{
    struct pl_line l;
    int status = -1;
    bool km_victim, dev_victim;
    unsigned kills;

    rnd_state = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)seed * UINT64_C(0x100000001B3));
    km_victim = rnd() % 4u == 0;
    dev_victim = rnd() % 4u == 1;
    kills = 1u + rnd() % 3u;

    cr_assert_eq(pl_line_init(&l), 0, "seed %u", seed);
    cr_assert_eq(pl_line_km_start(&l), 0, "seed %u", seed);
    for (size_t i = 0; i < N_DEV; i++) {
        cr_assert_eq(pl_line_add_device(&l, i == 1, 4), 0);
        cr_assert_eq(pl_line_dev_start(&l, i), 0);
    }
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);

    for (unsigned k = 0; k < kills; k++) {
        if (rnd() % 3u == 0) {
            pl_line_sleep_ms(rnd() % 1500u);
        } else {
            const char *mark = marks[rnd() % (sizeof(marks) / sizeof(marks[0]))];
            wait_mark(&l, mark, pl_line_count(l.st_log, mark));
            pl_line_sleep_ms(rnd() % 40u);
        }
        /* The station dies at a random point (maybe after it finished: then it simply
         * starts again on a finished line). */
        (void)pl_line_station_stop(&l, SIGKILL);
        if (km_victim && rnd() % 2u == 0) {
            (void)pl_line_km_stop(&l, SIGKILL);
            cr_assert_eq(pl_line_km_start(&l), 0, "seed %u: keymaker restart", seed);
        }
        if (dev_victim && k == 0) {
            size_t d = rnd() % N_DEV;
            (void)pl_line_dev_stop(&l, d, SIGKILL); /* power cut */
            cr_assert_eq(pl_line_dev_start(&l, d), 0, "seed %u: vdevice restart", seed);
        }
        cr_assert_eq(pl_line_station_start(&l, true), 0);
    }
    cr_assert_eq(pl_line_station_wait(&l, FINISH_MS, &status), 0,
                 "seed %u: the station did not finish (log %s)", seed, l.st_log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "seed %u: station exit %d (log %s)",
              seed, status, l.st_log);
    for (size_t i = 0; i < N_DEV; i++)
        (void)pl_line_dev_stop(&l, i, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    verify(&l, seed);
    pl_line_free(&l);
}

Test(station_crash, sigkill_at_random_points, .timeout = 3600)
{
    const char *env = getenv("PL_CRASH_RUNS");
    const char *seed0 = getenv("PL_CRASH_SEED");
    unsigned runs = env != NULL ? (unsigned)strtoul(env, NULL, 10) : 100u;
    unsigned base = seed0 != NULL ? (unsigned)strtoul(seed0, NULL, 10) : 1u;
    for (unsigned r = 0; r < runs; r++)
        one_run(base + r);
}
