/* Integration: SIGTERM while a package is being loaded. The device answers every request
 * 1.5 s late (vdevice --delay-ms), so the signal lands with the load in flight.
 *  - With the default T_DRAIN the load runs to its end: its PIR is journaled, reported and
 *    acknowledged, NotificationSent is done, then the station parks and exits 0.
 *  - With T_DRAIN = 0 the station parks at once: the package stays LOADING in the journal
 *    and the station exits 0; the next start asks the device for its pending results
 *    (the device executed the load: the SIGTERM is sent once its log shows it),
 *    finds the PIR by transactionId and finishes the device without resending anything
 *    (one package, one load).
 * ARCHITECTURE.md §7 (clean shutdown on SIGTERM); reference/IFPP.md §6.3, §7 case 8. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pl_line.h"
#include "pl_test.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/station/journal.h"

static void start_line(struct pl_line *l, const char *timers)
{
    cr_assert_eq(pl_line_init(l), 0);
    cr_assert_eq(pl_line_km_start(l), 0);
    cr_assert_eq(pl_line_add_device(l, false, 3), 0);
    l->dev[0].args[l->dev[0].n_args++] = "--delay-ms";
    l->dev[0].args[l->dev[0].n_args++] = "1500";
    cr_assert_eq(pl_line_dev_start(l, 0), 0);
    cr_assert_eq(pl_line_write_conf(l, timers), 0);
    cr_assert_eq(pl_line_station_start(l, false), 0);
    uint64_t end = pl_line_now_ms() + 60000;
    while (pl_line_count(l->st_log, "event=load ") == 0 && pl_line_now_ms() < end)
        pl_line_sleep_ms(5);
    cr_assert_eq(pl_line_count(l->st_log, "event=load "), 1, "no load started (log %s)",
                 l->st_log);
    /* The device has the whole request and executed it; its answer is held back. */
    while (pl_line_count(l->dev[0].log, "body=load_package") == 0 && pl_line_now_ms() < end)
        pl_line_sleep_ms(5);
    cr_assert_eq(pl_line_count(l->dev[0].log, "body=load_package"), 1);
}

struct one {
    int n;
    struct pl_jpkg row;
};

static int first(void *user, const struct pl_jpkg *row)
{
    struct one *o = user;
    if (o->n++ == 0)
        o->row = *row;
    return 0;
}

static void journal_one(const struct pl_line *l, struct one *o)
{
    struct pl_journal *j = NULL;
    memset(o, 0, sizeof(*o));
    cr_assert_eq(pl_journal_open_ro(l->journal, &j), PL_OK);
    cr_assert_eq(pl_journal_each(j, 0, NULL, NULL, first, o), PL_OK);
    pl_journal_close(j);
}

Test(station_drain, sigterm_lets_the_load_finish, .timeout = 180)
{
    struct pl_line l;
    struct one *o = malloc(sizeof(*o));
    int status;

    start_line(&l, NULL);
    uint64_t t0 = pl_line_now_ms();
    status = pl_line_station_stop(&l, SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_geq(pl_line_now_ms() - t0, 1000u, "the station did not wait for the load");
    cr_assert_eq(pl_line_count(l.st_log, "event=drain msg=\"SIGTERM"), 1);
    cr_assert_eq(pl_line_count(l.st_log, "event=pir "), 1, "the load did not finish");
    cr_assert_eq(pl_line_count(l.st_log, "event=parked"), 0, "nothing had to be cut");
    cr_assert_eq(pl_line_count(l.st_log, "event=stopped "), 1);
    journal_one(&l, o);
    cr_assert_eq(o->n, 1);
    cr_assert_eq(o->row.state, PL_J_NOTIFIED, "left %s", pl_journal_state_name(o->row.state));
    cr_assert_eq(o->row.km_state, 2);
    /* The device was parked after its package: production goes on at the next start. */
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, 120000, &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1);
    cr_assert_eq(pl_line_count(l.st_log, "event=load "), 1, "a second load");
    pl_line_free(&l);
    free(o);
}

Test(station_drain, drain_timeout_parks_loading_for_recovery, .timeout = 180)
{
    struct pl_line l;
    struct one *o = malloc(sizeof(*o));
    struct pl_km_stats ks;
    int status;

    start_line(&l, "[timers]\nT_DRAIN = 0\n");
    status = pl_line_station_stop(&l, SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=parked"), 1, "the load was not parked");
    cr_assert_eq(pl_line_count(l.st_log, "event=pir "), 0);
    journal_one(&l, o);
    cr_assert_eq(o->n, 1);
    cr_assert_eq(o->row.state, PL_J_LOADING, "left %s", pl_journal_state_name(o->row.state));

    /* Next start: recovery first (FetchResults), the PIR matched, no second load. */
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, 120000, &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "state=RECOVER event=transition"), 1);
    cr_assert_eq(pl_line_count(l.st_log, "event=pir_found "), 1);
    cr_assert_eq(pl_line_count(l.st_log, "event=load "), 1, "the package was sent again");
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1);
    journal_one(&l, o);
    cr_assert_eq(o->n, 1);
    cr_assert_eq(o->row.state, PL_J_NOTIFIED);
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, 1);
    cr_assert_eq(ks.pkg_issued + ks.pkg_failed + ks.pkg_possibly_used, 0);
    struct pl_euicc *e = NULL;
    cr_assert_eq(pl_euicc_open(l.dev[0].euicc, NULL, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    pl_euicc_close(e);
    pl_line_free(&l);
    free(o);
}
