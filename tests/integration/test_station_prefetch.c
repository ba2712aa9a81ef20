/* Integration: prefetch mode (IFPP.md §6.3 step 3, "the station leases ahead so the line
 * never waits"). The Key Maker already holds the device's signed one-time keys (uploaded
 * here beforehand, as an EUM manifest would provide them); the station, configured with the
 * device's EID as a candidate and prefetch_depth = 1, leases and journals a package before
 * the device is even seated, then loads that package when it arrives: no upload, no
 * just-in-time lease, one package, done. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pl_euicc_test.h"
#include "pl_line.h"
#include "pl_test.h"
#include "provline/kmclient/kmclient.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/hex.h"
#include "provline/sim/euicc.h"
#include "provline/sim/keymaker.h"
#include "provline/station/journal.h"

/* The eUICC's own GetIfppInfo answer, uploaded with the station's key. */
static void preload_otks(const struct pl_line *l, const char *euicc)
{
    struct pl_euicc *e = NULL;
    struct pl_wr req, rsp;
    struct pl_es10f_info *info = malloc(sizeof(*info));
    struct pl_kmclient_config kc;
    struct pl_kmclient *c = NULL;
    struct pl_kmclient_done d;
    unsigned ch = 0;
    uint16_t sw = 0;

    cr_assert_not_null(info);
    cr_assert_eq(pl_euicc_open(euicc, NULL, &e), PL_OK);
    pl_wr_init_dyn(&req, 64);
    pl_wr_init_dyn(&rsp, 65536);
    cr_assert_eq(pl_es10f_get_info_req_encode(&req), PL_OK);
    cr_assert_eq(pl_et_session(e, &ch), PL_OK);
    cr_assert_eq(pl_et_es10(e, ch, req.buf, req.len, &rsp, &sw), PL_OK);
    cr_assert_eq(sw, 0x9000);
    cr_assert_eq(pl_es10f_get_info_rsp_decode(rsp.buf, rsp.len, info), PL_OK);

    pl_kmclient_config_init(&kc);
    kc.endpoint = l->km_endpoint;
    kc.server_public_file = l->km_pub;
    kc.secret_file = l->st_key;
    cr_assert_eq(pl_kmclient_new(&kc, &c), PL_OK);
    cr_assert_eq(pl_kmclient_upload(c, info, &d), PL_OK);
    cr_assert_eq(d.reply->body.otk_upload_result.accepted_count, info->n_otk);
    pl_kmclient_done_free(&d);
    pl_kmclient_free(c);
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    pl_euicc_close(e);
    free(info);
}

struct seen {
    unsigned n, prefetched;
    int state;
};

static int seen_cb(void *user, const struct pl_jpkg *row)
{
    struct seen *s = user;
    s->n++;
    if (row->prefetched)
        s->prefetched++;
    s->state = row->state;
    return 0;
}

Test(station_prefetch, package_leased_before_the_device_arrives, .timeout = 180)
{
    struct pl_line l;
    char eids[700], extra[1024], hex[33];
    int status = -1;

    cr_assert_eq(pl_line_init(&l), 0);
    cr_assert_eq(pl_line_km_start(&l), 0);
    cr_assert_eq(pl_line_add_device(&l, false, 3), 0);
    preload_otks(&l, l.dev[0].euicc);

    snprintf(eids, sizeof(eids), "%s/expected_eids", l.dir);
    cr_assert_eq(pl_hex_encode(l.dev[0].eid, 16, hex, sizeof(hex)), PL_OK);
    FILE *f = fopen(eids, "w");
    cr_assert_not_null(f);
    fprintf(f, "# candidates\n%s\n", hex);
    fclose(f);
    snprintf(extra, sizeof(extra), "[line]\nprefetch_depth = 1\nexpected_eids = %s\n", eids);
    cr_assert_eq(pl_line_write_conf(&l, extra), 0);

    /* The station first, with an empty fixture: the package comes ahead of the device. */
    cr_assert_eq(pl_line_station_start(&l, true), 0);
    uint64_t end = pl_line_now_ms() + 30000;
    while (pl_line_count(l.st_log, "journaled (prefetch)") == 0 && pl_line_now_ms() < end)
        pl_line_sleep_ms(20);
    cr_assert_eq(pl_line_count(l.st_log, "journaled (prefetch)"), 1, "no prefetch (log %s)",
                 l.st_log);
    cr_assert_eq(pl_line_dev_start(&l, 0), 0);
    cr_assert_eq(pl_line_station_wait(&l, 120000, &status), 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "station exit %d", status);
    cr_assert_eq(pl_line_count(l.st_log, "event=done "), 1);
    cr_assert_eq(pl_line_count(l.st_log, "event=lease_request "), 0, "a just-in-time lease");
    cr_assert_eq(pl_line_count(l.st_log, "state=COLLECT"), 0, "an upload");

    struct pl_journal *j = NULL;
    struct seen s = {0, 0, 0};
    cr_assert_eq(pl_journal_open_ro(l.journal, &j), PL_OK);
    cr_assert_eq(pl_journal_each(j, 0, NULL, NULL, seen_cb, &s), PL_OK);
    pl_journal_close(j);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.prefetched, 1);
    cr_assert_eq(s.state, PL_J_NOTIFIED);
    (void)pl_line_dev_stop(&l, 0, SIGTERM);
    cr_assert_eq(pl_line_km_stop(&l, SIGTERM), 0);
    struct pl_km_stats ks;
    cr_assert_eq(pl_km_stats_file(l.km_db, &ks), PL_OK);
    cr_assert_eq(ks.pkg_installed, 1);
    cr_assert_eq(ks.pkg_issued + ks.pkg_possibly_used + ks.pkg_failed, 0);
    pl_line_free(&l);
}
