/* Integration: what the station refuses to do.
 *  - IFPP.md §7 case 20: a lease that expires within T_LEASE_MARGIN is never started. The
 *    Key Maker here leases for 30 s against the default 60 s margin: every package is
 *    released unused and reported, the device keeps all its one-time keys FREE and gets no
 *    profile, and fails for want of a usable lease.
 *  - IFPP.md §7 case 22: a package leased for device A is never sent to device B. A's
 *    package is journaled, then A leaves the fixture and B takes its place on the same
 *    port; B is served with its own package, A's is released once its lease runs out,
 *    and A's eUICC was never touched.
 * reference/IFPP.md §6.3. */
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

static void euicc_untouched(const char *path, unsigned n_otks)
{
    struct pl_euicc *e = NULL;
    cr_assert_eq(pl_euicc_open(path, NULL, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 0);
    cr_assert(pl_euicc_factory_mode(e));
    cr_assert_eq(pl_euicc_otk_count(e), n_otks);
    for (size_t k = 0; k < n_otks; k++) {
        struct pl_euicc_otk_info oi;
        cr_assert_eq(pl_euicc_otk_get(e, k, &oi), PL_OK);
        cr_assert_eq(oi.state, PL_EUICC_OTK_FREE, "otkId %u spent", oi.id);
    }
    cr_assert_eq(pl_euicc_notif_count(e), 0);
    pl_euicc_close(e);
}

struct tally {
    unsigned released, dispatched, total;
};

static int tally_cb(void *user, const struct pl_jpkg *row)
{
    struct tally *t = user;
    t->total++;
    if (row->outcome == PL_JO_RELEASED)
        t->released++;
    if (row->t[PL_J_DISPATCHED] != 0)
        t->dispatched++;
    return 0;
}

static void tally_eid(const struct pl_line *l, const uint8_t *eid, struct tally *t)
{
    struct pl_journal *j = NULL;
    memset(t, 0, sizeof(*t));
    cr_assert_eq(pl_journal_open_ro(l->journal, &j), PL_OK);
    cr_assert_eq(pl_journal_each(j, 0, eid, NULL, tally_cb, t), PL_OK);
    pl_journal_close(j);
}

Test(station_refusals, expired_lease_is_never_started, .timeout = 180)
{
    struct pl_line l;
    struct pl_km_stats ks;
    struct tally t;
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    l.km_args[l.n_km_args++] = "--lease-seconds";
    l.km_args[l.n_km_args++] = "30";
    cr_assert_eq(pl_line_km_start(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, false, 3), 0);
    cr_assert_eq(pl_line_dev_start(&l, 0), 0);
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0); /* T_LEASE_MARGIN: default 60 s */
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, 120000, &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=load "), 0, "a load was started");
    cr_assert_eq(pl_line_count(l.st_log, "event=released "), 3);
    cr_assert_eq(pl_line_count(l.st_log, "lease expiry"), 3);
    cr_assert_eq(pl_line_count(l.st_log, "no FREE one-time key left"), 1);
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    euicc_untouched(l.dev[0].euicc, 3);
    tally_eid(&l, l.dev[0].eid, &t);
    cr_assert_eq(t.total, 3);
    cr_assert_eq(t.released, 3);
    cr_assert_eq(t.dispatched, 0);
    /* The Key Maker keeps them possibly used: the station's word is no proof. */
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_possibly_used, 3);
    cr_assert_eq(ks.pkg_installed + ks.pkg_issued + ks.pkg_failed, 0);
    pl_line_free(&l);
}

Test(station_refusals, package_for_a_never_reaches_b, .timeout = 300)
{
    struct pl_line l;
    struct tally t;
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    /* A lease that ends 30 s after the margin: A's package is released 30 s after its
     * lease, and B's own lease leaves it 30 s to start its load (headroom for a loaded
     * machine: a shorter window makes B's lease, too, run into the margin). */
    l.km_args[l.n_km_args++] = "--lease-seconds";
    l.km_args[l.n_km_args++] = "90";
    cr_assert_eq(pl_line_km_start(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, false, 2), 0); /* A */
    cr_assert_eq(pl_line_add_device(&l, false, 2), 0); /* B, on A's port later */
    cr_assert_eq(pl_line_dev_start(&l, 0), 0);
    l.n_dev = 1; /* one fixture: A's port */
    cr_assert_eq(pl_line_write_conf(&l, NULL), 0);
    l.n_dev = 2;
    /* The station must not get further than the lease: the first load is held back by a
     * crash right after the package was journaled. */
    cr_assert_eq(pl_line_station_start(&l, false), 0);
    uint64_t end = pl_line_now_ms() + 60000;
    while (pl_line_count(l.st_log, "event=leased ") == 0 && pl_line_now_ms() < end)
        pl_line_sleep_ms(1);
    (void)pl_line_station_stop(&l, SIGKILL);
    cr_assert_eq(pl_line_count(l.st_log, "event=leased "), 1);
    /* A leaves; B is seated on the same port. */
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    snprintf(l.dev[1].link, sizeof(l.dev[1].link), "%s", l.dev[0].link);
    cr_assert_eq(pl_line_dev_start(&l, 1), 0);
    cr_assert_eq(pl_line_station_start(&l, false), 0);
    end = pl_line_now_ms() + 180000;
    while ((pl_line_count(l.st_log, "event=done ") == 0
            || pl_line_count(l.st_log, "lease expired unused") == 0)
           && pl_line_now_ms() < end)
        pl_line_sleep_ms(50);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1, "B not done (log %s)", l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "lease expired unused"), 1, "A's lease not released");
    /* Let the release be reported, then stop. */
    end = pl_line_now_ms() + 20000;
    tally_eid(&l, l.dev[0].eid, &t);
    while (pl_line_now_ms() < end) {
        struct pl_journal *j = NULL;
        struct pl_journal_counts c;
        cr_assert_eq(pl_journal_open_ro(l.journal, &j), PL_OK);
        cr_assert_eq(pl_journal_counts(j, &c), PL_OK);
        pl_journal_close(j);
        if (c.state[PL_J_RESULT] + c.state[PL_J_REPORTED] + c.state[PL_J_LEASED] == 0)
            break;
        pl_line_sleep_ms(50);
    }
    status = pl_line_station_stop(&l, SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    (void)pl_line_dev_stop(&l, 1, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);

    /* A: its package never left the journal for a chip; its eUICC is untouched. */
    tally_eid(&l, l.dev[0].eid, &t);
    cr_assert_eq(t.total, 1);
    cr_assert_eq(t.dispatched, 0, "A's package was dispatched");
    cr_assert_eq(t.released, 1);
    euicc_untouched(l.dev[0].euicc, 2);
    /* B: its own package, one profile. */
    tally_eid(&l, l.dev[1].eid, &t);
    cr_assert_eq(t.total, 1);
    struct pl_euicc *e = NULL;
    cr_assert_eq(pl_euicc_open(l.dev[1].euicc, NULL, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    pl_euicc_close(e);
    struct pl_km_stats ks;
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, 1);
    cr_assert_eq(ks.pkg_possibly_used, 1, "A's package: possibly used until proof");
    pl_line_free(&l);
}
