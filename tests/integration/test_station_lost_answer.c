/* Integration: a LoadPackage whose answer does not come within T_LOAD. The device (serial or
 * CoAP) executes every request at once but answers 1.2 s late (vdevice --delay-ms), and
 * T_LOAD is 0.4 s. The station must not resend the package nor lease another one on the
 * strength of a timeout: it closes the link (nothing of the request can still arrive), asks
 * again (Identify, FetchResults), finds the PIR by transactionId, reports it and finishes the
 * device with that one package. reference/IFPP.md §6.3, §7 cases 7-8. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pl_line.h"
#include "pl_test.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"

static void run(bool coap)
{
    struct pl_line l;
    struct pl_km_stats ks;
    struct pl_euicc *e = NULL;
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, coap, 3), 0);
    l.dev[0].args[l.dev[0].n_args++] = "--delay-ms";
    l.dev[0].args[l.dev[0].n_args++] = "1200";
    cr_assert_eq(pl_line_dev_start(&l, 0), 0);
    cr_assert_eq(pl_line_write_conf(&l, "[timers]\nT_LOAD = 400\nT_IDENTIFY = 8000\n"
                                        "T_FIXTURE = 8000\n"),
                 0);
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    cr_assert_eq(pl_line_station_wait(&l, 180000, &status), 0, "station did not finish (log %s)",
                 l.st_log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=load_unanswered "), 1, "log %s", l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=pir_found "), 1, "log %s", l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=load "), 1, "a second load (log %s)", l.st_log);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1);
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, 1);
    cr_assert_eq(ks.pkg_issued + ks.pkg_failed + ks.pkg_possibly_used, 0, "more than one package");
    cr_assert_eq(pl_euicc_open(l.dev[0].euicc, NULL, &e), PL_OK);
    cr_assert_eq(pl_euicc_profile_count(e), 1);
    pl_euicc_close(e);
    pl_line_free(&l);
}

Test(station_lost_answer, serial_load_answer_after_t_load, .timeout = 240)
{
    run(false);
}

Test(station_lost_answer, coap_load_answer_after_t_load, .timeout = 240)
{
    run(true);
}
