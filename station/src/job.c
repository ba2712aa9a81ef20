/* The per-fixture job of provline-station: a table-driven state machine (STYLE.md §7.3 rule
 * 7) that takes one device from identification to done, over the write-ahead journal.
 *
 * Sources: ARCHITECTURE.md §4 (flow steps 1-6), §5 (invariants: one package per OTK, never
 * loaded twice, nothing lost, write-ahead, recovery asks the eUICC first); reference/IFPP.md
 * §6.3 (station: EID check before loading, NotificationSent only after REPORT_ACK), §7 cases
 * 7 (truncated transfer), 8 (crash mid-load: RetrieveNotificationsList, match transactionId,
 * no resend), 9 (PIR withheld), 20 (expired lease / notAfter: refuse to start), 22 (wrong
 * device: abort before BF23, no OTK spent), 23 (Key Maker restart: identical resends);
 * docs/station-keymaker-protocol.md §4-§5; docs/fixture-protocol.md (the fixture messages);
 * GSMA SGP.22 v2.5 §5.7.10-11 (RetrieveNotificationsList, NotificationSent), SGP.32 v1.2
 * §5.9.4 (AddInitialEim).
 *
 * One decision point, job_next(), derives the next step from the journal and from what the
 * device in the fixture just said (Identify); every step ends by calling it again, or by a
 * fresh Identify. So a restart, a lost answer or a swapped device all resume the same way. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/hex.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/x509.h"
#include "station_internal.h"

#define B(x) PL_FSM_BIT(x)
#define ROWS_MAX 64u

/* -------------------------------------------------------------- the table ---- */

static const char *const event_names[PL_JEV_COUNT] = {
    [PL_JEV_TIMEOUT] = "timeout",          [PL_JEV_FX_RSP] = "fx_rsp",
    [PL_JEV_FX_ERROR] = "fx_error",        [PL_JEV_FX_FAIL] = "fx_fail",
    [PL_JEV_KM_OK] = "km_ok",              [PL_JEV_KM_REFUSED] = "km_refused",
    [PL_JEV_KM_FAIL] = "km_fail",          [PL_JEV_DRAIN] = "drain",
    [PL_JEV_DRAIN_EXPIRED] = "drain_expired",
};

static void on_idle(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_identify(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_recover(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_collect(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_lease(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_load(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_result(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_report(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_notify(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_token(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_delete(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_receipt(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_eim(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_done(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_failed(struct pl_fsm *fi, unsigned prev, uint64_t now);
static void on_parked(struct pl_fsm *fi, unsigned prev, uint64_t now);

static int act_idle(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_identify(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_recover(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_collect(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_lease(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_load(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_result(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_report(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_notify(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_token(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_delete(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_receipt(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_eim(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_rest(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_wait(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);
static int act_parked(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now);

/* Events every waiting state takes, and the drain. */
#define EV_DRAINS (B(PL_JEV_DRAIN) | B(PL_JEV_DRAIN_EXPIRED))
#define EV_FX (B(PL_JEV_FX_RSP) | B(PL_JEV_FX_ERROR) | B(PL_JEV_FX_FAIL) | EV_DRAINS)
#define EV_KM (B(PL_JEV_KM_OK) | B(PL_JEV_KM_REFUSED) | B(PL_JEV_KM_FAIL) | EV_DRAINS)
/* The states job_next() may choose. */
#define NEXT                                                                                  \
    (B(PL_JOB_IDLE) | B(PL_JOB_RECOVER) | B(PL_JOB_COLLECT) | B(PL_JOB_LEASE)                 \
     | B(PL_JOB_LOAD) | B(PL_JOB_REPORT) | B(PL_JOB_NOTIFY) | B(PL_JOB_TOKEN) | B(PL_JOB_EIM)  \
     | B(PL_JOB_RECEIPT)                                                                       \
     | B(PL_JOB_DONE) | B(PL_JOB_FAILED) | B(PL_JOB_WAIT) | B(PL_JOB_PARKED))
#define FAILS (B(PL_JOB_WAIT) | B(PL_JOB_FAILED) | B(PL_JOB_PARKED))

/* Fixture requests are bounded by the link's deadline (T_IDENTIFY, T_LOAD, T_FIXTURE: the
 * named timer is given to pl_fixture_link_send) and Key Maker requests by the client's
 * deadline (T_KEYMAKER); the FSM's own timers are the waits between steps. */
static const struct pl_fsm_state states[PL_JOB_STATE_COUNT] = {
    [PL_JOB_IDLE] = {"IDLE", B(PL_JEV_TIMEOUT) | EV_DRAINS,
                     B(PL_JOB_IDENTIFY) | B(PL_JOB_PARKED), PL_T_PROBE, on_idle, act_idle},
    [PL_JOB_IDENTIFY] = {"IDENTIFY", EV_FX, NEXT | B(PL_JOB_IDENTIFY), PL_FSM_NO_TIMER,
                         on_identify, act_identify},
    [PL_JOB_RECOVER] = {"RECOVER", EV_FX, NEXT, PL_FSM_NO_TIMER, on_recover, act_recover},
    [PL_JOB_COLLECT] = {"COLLECT", EV_KM, NEXT, PL_FSM_NO_TIMER, on_collect, act_collect},
    [PL_JOB_LEASE] = {"LEASE", EV_KM, NEXT, PL_FSM_NO_TIMER, on_lease, act_lease},
    /* After a load, its result comes first: never straight to another load or lease. */
    [PL_JOB_LOAD] = {"LOAD", EV_FX,
                     (NEXT & ~(B(PL_JOB_LOAD) | B(PL_JOB_LEASE) | B(PL_JOB_COLLECT)))
                         | B(PL_JOB_RESULT) | B(PL_JOB_IDENTIFY),
                     PL_FSM_NO_TIMER, on_load, act_load},
    [PL_JOB_RESULT] = {"RESULT", EV_FX, NEXT, PL_FSM_NO_TIMER, on_result, act_result},
    [PL_JOB_REPORT] = {"REPORT", EV_KM, NEXT, PL_FSM_NO_TIMER, on_report, act_report},
    [PL_JOB_NOTIFY] = {"NOTIFY", EV_FX, B(PL_JOB_IDENTIFY) | FAILS, PL_FSM_NO_TIMER, on_notify,
                       act_notify},
    [PL_JOB_TOKEN] = {"TOKEN", EV_KM, B(PL_JOB_DELETE) | FAILS, PL_FSM_NO_TIMER, on_token,
                      act_token},
    [PL_JOB_DELETE] = {"DELETE", EV_FX,
                       B(PL_JOB_RECEIPT) | B(PL_JOB_TOKEN) | B(PL_JOB_IDENTIFY) | FAILS,
                       PL_FSM_NO_TIMER, on_delete, act_delete},
    [PL_JOB_RECEIPT] = {"RECEIPT", EV_KM, B(PL_JOB_RECEIPT) | B(PL_JOB_IDENTIFY) | FAILS,
                        PL_FSM_NO_TIMER, on_receipt, act_receipt},
    [PL_JOB_EIM] = {"EIM", EV_FX, B(PL_JOB_DONE) | B(PL_JOB_IDENTIFY) | FAILS, PL_FSM_NO_TIMER,
                    on_eim, act_eim},
    [PL_JOB_DONE] = {"DONE", B(PL_JEV_TIMEOUT) | EV_DRAINS, B(PL_JOB_IDENTIFY) | B(PL_JOB_PARKED),
                     PL_T_PROBE, on_done, act_rest},
    [PL_JOB_FAILED] = {"FAILED", B(PL_JEV_TIMEOUT) | EV_DRAINS,
                       B(PL_JOB_IDENTIFY) | B(PL_JOB_PARKED), PL_T_PROBE, on_failed, act_rest},
    [PL_JOB_WAIT] = {"WAIT", B(PL_JEV_TIMEOUT) | EV_DRAINS, B(PL_JOB_IDENTIFY) | B(PL_JOB_PARKED),
                     PL_T_RETRY, NULL, act_wait},
    [PL_JOB_PARKED] = {"PARKED", EV_DRAINS, 0, PL_FSM_NO_TIMER, on_parked, act_parked},
};

static const struct pl_fsm_def job_def = {
    "job", states, PL_JOB_STATE_COUNT, event_names, PL_JEV_COUNT, PL_JEV_TIMEOUT,
};

const struct pl_fsm_def *pl_station_job_fsm(void)
{
    return &job_def;
}

/* --------------------------------------------------------------- helpers ---- */

static struct st_job *J(struct pl_fsm *fi)
{
    return fi->priv;
}

static bool fatal(const struct st_job *j)
{
    return j->s->fatal != 0;
}

/* Delivers an event; a refusal is logged (and audited) by the engine's log hook. */
static void dispatch(struct st_job *j, unsigned ev, struct st_ev *e, uint64_t now)
{
    if (pl_fsm_dispatch(&j->fsm, ev, e, now) != PL_OK && !fatal(j))
        st_logf(j->s, j, PL_STATION_LOG_DEBUG, "dispatch", "event %s not handled",
                pl_fsm_def_event_name(&job_def, ev));
}

static void go(struct st_job *j, unsigned next, uint64_t now)
{
    if (fatal(j))
        return;
    if (pl_fsm_transition(&j->fsm, next, now) != PL_OK)
        st_logf(j->s, j, PL_STATION_LOG_ERROR, "bug", "refused transition to %s",
                pl_fsm_def_state_name(&job_def, next));
}

/* An event the loop will deliver right after the current one (a send that failed at once). */
static void defer(struct st_job *j, unsigned ev, int rc)
{
    j->pending = true;
    j->pending_ev = ev;
    j->pending_rc = rc;
}

static void device_put(struct st_job *j, int state, const char *detail)
{
    struct pl_jdevice d;
    int rc = pl_journal_device_get(j->s->j, j->eid, &d);
    if (rc == PL_ERR_NOT_FOUND) {
        memset(&d, 0, sizeof(d));
        memcpy(d.eid, j->eid, sizeof(d.eid));
    } else if (rc != PL_OK) {
        st_fatal(j->s, j, rc, "journal device read");
        return;
    }
    d.state = state;
    snprintf(d.fixture, sizeof(d.fixture), "%s", j->cfg->name);
    snprintf(d.detail, sizeof(d.detail), "%s", detail != NULL ? detail : "");
    if (j->has_pkg && state == PL_JD_INSTALLED) {
        d.has_installed = true;
        memcpy(d.installed, j->pkg, sizeof(d.installed));
    }
    if (state == PL_JD_CLOSING)
        d.token_counter = j->token_counter;
    if (state == PL_JD_CLOSED && j->receipt != NULL && j->receipt_len <= sizeof(d.receipt)) {
        /* Write-ahead: the receipt is kept until the Key Maker answered it. */
        d.has_receipt = true;
        memcpy(d.receipt, j->receipt, j->receipt_len);
        d.receipt_len = j->receipt_len;
        d.receipt_acked = false;
    }
    if ((rc = pl_journal_device_put(j->s->j, &d)) != PL_OK) {
        st_fatal(j->s, j, rc, "journal device write");
        return;
    }
    st_audit_transition(j->s, j, NULL, pl_journal_device_state_name(state), detail);
}

/* The Key Maker answered the deletion receipt: it is not sent again. */
static void receipt_settled(struct st_job *j)
{
    struct pl_jdevice d;
    int rc = pl_journal_device_get(j->s->j, j->eid, &d);
    if (rc != PL_OK) {
        st_fatal(j->s, j, rc, "journal device read");
        return;
    }
    d.receipt_acked = true;
    if ((rc = pl_journal_device_put(j->s->j, &d)) != PL_OK)
        st_fatal(j->s, j, rc, "journal device write");
}

/* A journaled receipt the Key Maker has not answered yet (a restart in between). */
static bool receipt_pending(struct st_job *j)
{
    struct pl_jdevice d;
    if (j->receipt_gave_up || pl_journal_device_get(j->s->j, j->eid, &d) != PL_OK
        || !d.has_receipt || d.receipt_acked)
        return false;
    free(j->receipt);
    j->receipt = malloc(d.receipt_len);
    if (j->receipt == NULL)
        return false;
    memcpy(j->receipt, d.receipt, d.receipt_len);
    j->receipt_len = d.receipt_len;
    j->token_counter = d.token_counter;
    return true;
}

static int device_state(struct st_job *j)
{
    struct pl_jdevice d;
    return pl_journal_device_get(j->s->j, j->eid, &d) == PL_OK ? d.state : 0;
}

/* Opens the fixture link if it is not open (it reopens itself after failures). */
static int link_ensure(struct st_job *j)
{
    const struct pl_fixture_cfg *f = j->cfg;
    char why[256] = "";
    int rc;

    if (j->link != NULL)
        return PL_OK;
    if (f->transport == PL_FIXTURE_SERIAL) {
        struct pl_fixture_serial_config sc;
        pl_fixture_serial_config_init(&sc);
        sc.path = f->port;
        sc.baud = f->baud;
        rc = pl_fixture_link_serial_new(&sc, &j->link, why, sizeof(why));
    } else {
        struct pl_fixture_coap_config cc;
        pl_fixture_coap_config_init(&cc);
        cc.host = f->host;
        cc.port = f->udp_port;
        cc.dtls = f->has_psk;
        cc.psk_identity = f->has_psk ? f->psk_identity : NULL;
        cc.psk = f->has_psk ? f->psk_key : NULL;
        cc.psk_len = f->has_psk ? f->psk_key_len : 0;
        rc = pl_fixture_link_coap_new(&cc, &j->link, why, sizeof(why));
    }
    if (rc != PL_OK) {
        j->link = NULL;
        st_logf(j->s, j, PL_STATION_LOG_DEBUG, "link_open_failed", "%s: %s", pl_strerror(rc), why);
    }
    return rc;
}

/* A random non-zero 63-bit request id. */
static int new_request_id(struct st_job *j, uint64_t *id)
{
    int rc;
    do {
        if ((rc = j->s->rng.fill(j->s->rng.user, (uint8_t *)id, sizeof(*id))) != PL_OK)
            return rc;
        *id &= UINT64_C(0x7fffffffffffffff);
    } while (*id == 0);
    return PL_OK;
}

/* Sends one fixture request with request_id id (0: a fresh random one) and the named timer
 * as the link deadline. A failure to send becomes a deferred FX_FAIL. */
static void fx_send_id(struct st_job *j, provline_fixture_Msg *m, enum pl_timer_id timer,
                       uint64_t id, uint64_t now)
{
    struct pl_wr w;
    int rc;

    if ((rc = link_ensure(j)) != PL_OK || (id == 0 && (rc = new_request_id(j, &id)) != PL_OK)) {
        defer(j, PL_JEV_FX_FAIL, rc);
        return;
    }
    m->version = PL_FX_VERSION;
    m->request_id = id;
    pl_wr_init_dyn(&w, PL_FX_MSG_MAX);
    if ((rc = pl_fx_msg_encode(m, &w)) != PL_OK) {
        pl_wr_free(&w);
        st_logf(j->s, j, PL_STATION_LOG_ERROR, "fx_encode", "%s", pl_strerror(rc));
        defer(j, PL_JEV_FX_FAIL, rc);
        return;
    }
    free(j->fx_req);
    j->fx_req = pl_wr_take(&w, &j->fx_req_len);
    pl_wr_free(&w);
    if (j->fx_req == NULL) {
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    j->fx_req_id = id;
    j->fx_body = m->which_body;
    rc = pl_fixture_link_send(j->link, j->fx_req, j->fx_req_len,
                              (uint32_t)pl_timer_ms(&j->s->cfg->timers, timer), now);
    if (rc != PL_OK) {
        st_logf(j->s, j, PL_STATION_LOG_DEBUG, "fx_send_failed", "%s: %s", pl_strerror(rc),
                pl_fixture_link_why(j->link));
        defer(j, PL_JEV_FX_FAIL, rc);
        return;
    }
    j->fx_busy = true;
    st_logf(j->s, j, PL_STATION_LOG_DEBUG, "fx_sent", "%s request_id=%llu bytes=%zu",
            pl_fx_body_name(m->which_body), (unsigned long long)id, j->fx_req_len);
}

static void fx_send(struct st_job *j, provline_fixture_Msg *m, enum pl_timer_id timer,
                    uint64_t now)
{
    fx_send_id(j, m, timer, 0, now);
}

static void fx_cancel(struct st_job *j)
{
    if (j->fx_busy && j->link != NULL)
        pl_fixture_link_cancel(j->link);
    j->fx_busy = false;
}

static provline_fixture_Msg *fx_new(unsigned which)
{
    provline_fixture_Msg *m = calloc(1, sizeof(*m));
    if (m != NULL) {
        pl_fx_msg_init(m);
        m->which_body = (pb_size_t)which;
    }
    return m;
}

static void fx_free(provline_fixture_Msg *m)
{
    if (m != NULL) {
        pl_fx_msg_release(m);
        free(m);
    }
}

static uint64_t job_tag(const struct st_job *j)
{
    return (uint64_t)(j->idx + 1u) << 32;
}

/* A step failed: back off and resume through Identify, or fail the device when the step
 * keeps failing. */
static void step_failed(struct st_job *j, uint64_t now, const char *what, int rc)
{
    j->retries++;
    st_logf(j->s, j, PL_STATION_LOG_WARN, "step_failed", "%s: %s (attempt %u of %u)", what,
            pl_strerror(rc), j->retries, ST_MAX_RETRIES);
    if (j->s->draining) {
        go(j, PL_JOB_PARKED, now);
        return;
    }
    if (j->retries >= ST_MAX_RETRIES) {
        snprintf(j->detail, sizeof(j->detail), "%s: %s", what, pl_strerror(rc));
        go(j, PL_JOB_FAILED, now);
        return;
    }
    go(j, PL_JOB_WAIT, now);
}

static void fail_device(struct st_job *j, uint64_t now, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fail_device(struct st_job *j, uint64_t now, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->detail, sizeof(j->detail), fmt, ap);
    va_end(ap);
    go(j, PL_JOB_FAILED, now);
}

static bool otk_free_on_device(const struct st_job *j, uint16_t otk)
{
    return j->factory_mode && j->info != NULL && pl_es10f_info_find_otk(j->info, otk) != NULL;
}

/* ------------------------------------------------------- journal summaries ---- */

struct rowsum {
    uint8_t id[16];
    int state, outcome, km_accepted, km_state;
    bool pir_success, purged, loaded, prefetched;
    uint16_t otk;
    uint64_t lease_expiry, not_after;
};

struct rows {
    size_t n;
    bool truncated;
    struct rowsum r[ROWS_MAX];
};

static int rows_cb(void *user, const struct pl_jpkg *row)
{
    struct rows *rs = user;
    struct rowsum *x;
    if (rs->n >= ROWS_MAX) {
        rs->truncated = true;
        return 0;
    }
    x = &rs->r[rs->n++];
    memcpy(x->id, row->package_id, 16);
    x->state = row->state;
    x->outcome = row->outcome;
    x->km_accepted = row->km_accepted;
    x->km_state = row->km_state;
    x->pir_success = row->pir_success;
    x->purged = row->purged;
    x->loaded = row->t[PL_J_LOADING] != 0;
    x->prefetched = row->prefetched;
    x->otk = row->otk_id;
    x->lease_expiry = row->lease_expiry;
    x->not_after = row->not_after;
    return 0;
}

static int rows_of(struct st_job *j, struct rows *rs)
{
    rs->n = 0;
    rs->truncated = false;
    return pl_journal_each(j->s->j, 0, j->eid, NULL, rows_cb, rs);
}

/* --------------------------------------------------------- the load check ---- */

static void release(struct st_job *j, const uint8_t id[16], const char *why)
{
    int rc = pl_journal_result_released(j->s->j, id, why);
    if (rc != PL_OK) {
        st_fatal(j->s, j, rc, "journal release");
        return;
    }
    j->s->n_released++;
    st_logf(j->s, j, PL_STATION_LOG_WARN, "released", "package released unused: %s", why);
    st_audit_transition(j->s, j, id, pl_journal_state_name(PL_J_RESULT), why);
}

/* Everything checked before a byte of the package leaves (IFPP.md §6.3; §7 cases 20, 22):
 * the envelope decodes, is for this eUICC (EID read from the device) and this OTK (still
 * FREE on the chip, otPK hash), its lease and notAfter are not (nearly) over, its batch is
 * the line's, and its envelope signature verifies with the CERT.DPf it carries (hygiene:
 * the eUICC trusts only smdpSign and the BSP MACs). false: released with the reason. */
static bool load_check(struct st_job *j, const uint8_t id[16])
{
    struct pl_ifpp_pkg *pkg = NULL;
    struct pl_cert *cert = NULL;
    struct pl_eckey *key = NULL;
    struct pl_jpkg *row = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    char why[128] = "";
    uint64_t now_s = st_unix_now();
    uint64_t margin = pl_timer_ms(&j->s->cfg->timers, PL_T_LEASE_MARGIN) / 1000u;
    const struct pl_ifpp_otk *otk;
    int rc;

    pkg = malloc(sizeof(*pkg));
    row = malloc(sizeof(*row));
    if (pkg == NULL || row == NULL) {
        st_fatal(j->s, j, PL_ERR_NOMEM, "load check");
        goto out;
    }
    if ((rc = pl_journal_get(j->s->j, id, row)) != PL_OK) {
        st_fatal(j->s, j, rc, "journal read");
        goto out;
    }
    if ((rc = pl_journal_envelope(j->s->j, id, &env, &env_len)) != PL_OK) {
        snprintf(why, sizeof(why), "sealed package unreadable: %s", pl_strerror(rc));
        goto out;
    }
    if ((rc = pl_ifpp_pkg_decode(env, env_len, pkg)) != PL_OK) {
        snprintf(why, sizeof(why), "envelope does not decode: %s", pl_strerror(rc));
        goto out;
    }
    if (memcmp(pkg->package_id, row->package_id, 16) != 0 || memcmp(pkg->eid, row->eid, 16) != 0
        || pkg->otk_id != row->otk_id || pkg->tid_len != row->tid_len
        || memcmp(pkg->tid, row->tid, row->tid_len) != 0) {
        snprintf(why, sizeof(why), "envelope disagrees with its lease entry");
        goto out;
    }
    /* IFPP.md §7 case 22: the EID read from the device must be the envelope's. */
    if (!j->has_dev || memcmp(pkg->eid, j->eid, 16) != 0) {
        snprintf(why, sizeof(why), "envelope is for another eUICC");
        goto out;
    }
    otk = j->info != NULL ? pl_es10f_info_find_otk(j->info, pkg->otk_id) : NULL;
    if (otk == NULL) {
        snprintf(why, sizeof(why), "otkId %u is not FREE on the device", pkg->otk_id);
        goto out;
    }
    if (pl_ifpp_pkg_check_target(pkg, j->eid, otk->otk_id, otk->otpk) != PL_OK) {
        snprintf(why, sizeof(why), "envelope otPK hash does not match the device's otkId %u",
                 pkg->otk_id);
        goto out;
    }
    /* IFPP.md §7 case 20: never start a load on an expired lease or package. */
    if (pl_ifpp_pkg_check_time(pkg, now_s + margin) != PL_OK) {
        snprintf(why, sizeof(why), "package notAfter %llu is past or within %llu s",
                 (unsigned long long)pkg->not_after, (unsigned long long)margin);
        goto out;
    }
    if (row->lease_expiry < now_s + margin) {
        snprintf(why, sizeof(why), "lease expiry %llu is past or within %llu s",
                 (unsigned long long)row->lease_expiry, (unsigned long long)margin);
        goto out;
    }
    if (j->s->cfg->batch_id[0] != '\0' && strcmp(pkg->batch_id, j->s->cfg->batch_id) != 0) {
        snprintf(why, sizeof(why), "batch %s is not the line's batch", pkg->batch_id);
        goto out;
    }
    if (pkg->dpf_chain.n == 0
        || pl_cert_parse(pkg->dpf_chain.cert[0].der, pkg->dpf_chain.cert[0].len, &cert) != PL_OK
        || pl_cert_public_key(cert, &key) != PL_OK || pl_ifpp_pkg_verify(pkg, key) != PL_OK) {
        snprintf(why, sizeof(why), "envelope signature does not verify with its CERT.DPf");
        goto out;
    }
out:
    if (why[0] != '\0' && !fatal(j))
        release(j, id, why);
    pl_eckey_free(key);
    pl_cert_free(cert);
    free(env);
    free(row);
    free(pkg);
    return why[0] == '\0' && !fatal(j);
}

/* ------------------------------------------------------------ the decision ---- */

static unsigned job_next(struct st_job *j)
{
    struct rows *rs = NULL;
    struct pl_jlease_req req;
    unsigned next = PL_JOB_WAIT;
    int rc;

    if (fatal(j))
        return PL_JOB_PARKED;
    if (!j->has_dev)
        return j->s->draining ? PL_JOB_PARKED : PL_JOB_IDLE;
    rs = malloc(sizeof(*rs));
    if (rs == NULL) {
        st_fatal(j->s, j, PL_ERR_NOMEM, "decision");
        return PL_JOB_PARKED;
    }
    for (unsigned pass = 0; pass < 4; pass++) {
        bool again = false, installed = false, need_fetch = false;
        unsigned loads = 0;

        if ((rc = rows_of(j, rs)) != PL_OK) {
            st_fatal(j->s, j, rc, "journal scan");
            next = PL_JOB_PARKED;
            goto out;
        }
        /* Acknowledged packages: the sealed bytes are purged (retention). */
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if ((r->state == PL_J_ACKED || r->state == PL_J_NOTIFIED) && !r->purged) {
                if ((rc = pl_journal_purge(j->s->j, r->id)) != PL_OK) {
                    st_fatal(j->s, j, rc, "purge");
                    next = PL_JOB_PARKED;
                    goto out;
                }
                st_audit_transition(j->s, j, r->id, "PURGED",
                                    "sealed package overwritten and unlinked");
            }
        }
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if (r->state == PL_J_LOADING || r->state == PL_J_DISPATCHED
                || (r->outcome == PL_JO_FPA_ERROR && (r->state == PL_J_RESULT || r->state == PL_J_ACKED)))
                need_fetch = true;
            if (r->loaded)
                loads++;
            if (r->outcome == PL_JO_PIR && r->pir_success && r->km_accepted == 1
                && (r->state == PL_J_ACKED || r->state == PL_J_NOTIFIED))
                installed = true;
        }
        /* 1. Recovery: ask the eUICC before anything is resent (IFPP.md §7 case 8). */
        if (need_fetch && !j->fetched && !j->s->draining) {
            next = PL_JOB_RECOVER;
            goto out;
        }
        /* 2. Results to report, then NotificationSent for accepted PIRs. A result the
         * background reporter is reporting right now (it took it before this device was
         * identified) is waited for: until it is settled, nothing new may start for the
         * device, or a second package could be leased next to an installed one. */
        bool busy_elsewhere = false;
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if (r->state != PL_J_RESULT && r->state != PL_J_REPORTED)
                continue;
            if (st_claimed(j->s, r->id, j)) {
                busy_elsewhere = true;
                continue;
            }
            memcpy(j->pkg, r->id, 16);
            j->has_pkg = true;
            next = PL_JOB_REPORT;
            goto out;
        }
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if (r->state == PL_J_ACKED && r->outcome == PL_JO_PIR && r->km_accepted == 1) {
                memcpy(j->pkg, r->id, 16);
                j->has_pkg = true;
                next = PL_JOB_NOTIFY;
                goto out;
            }
        }
        if (j->s->draining) {
            next = PL_JOB_PARKED;
            goto out;
        }
        for (size_t i = 0; i < rs->n; i++)
            if (rs->r[i].state == PL_J_LEASED && st_claimed(j->s, rs->r[i].id, j))
                busy_elsewhere = true;
        if (busy_elsewhere) {
            st_logf(j->s, j, PL_STATION_LOG_INFO, "wait",
                    "a package of this device is being reported in the background");
            next = PL_JOB_WAIT;
            goto out;
        }
        for (size_t i = 0; i < rs->n; i++) {
            if (rs->r[i].state == PL_J_LOADING || rs->r[i].state == PL_J_DISPATCHED) {
                /* Still unresolved after FetchResults failed: retry through Identify. */
                next = PL_JOB_WAIT;
                goto out;
            }
        }
        /* A device that has its profile, or is locked, will never take another package:
         * leases of its left unused are given back at once (reported released). */
        if (installed || !j->factory_mode) {
            bool released = false;
            for (size_t i = 0; i < rs->n; i++) {
                const struct rowsum *r = &rs->r[i];
                if (r->state == PL_J_LEASED && !st_claimed(j->s, r->id, j)) {
                    release(j, r->id, installed ? "the device already has its profile"
                                                : "the device is locked");
                    released = true;
                }
            }
            if (fatal(j)) {
                next = PL_JOB_PARKED;
                goto out;
            }
            if (released)
                continue; /* reported first */
        }
        /* 3. A locked device: production is closed; the eIM is what may be left. */
        if (!j->factory_mode) {
            int ds = device_state(j);
            if (receipt_pending(j)) {
                next = PL_JOB_RECEIPT;
            } else if (installed || ds >= PL_JD_INSTALLED) {
                if (j->s->cfg->eim_request != NULL && ds != PL_JD_DONE) {
                    next = PL_JOB_EIM;
                } else {
                    if (ds != PL_JD_DONE)
                        device_put(j, PL_JD_DONE, "production closed");
                    next = PL_JOB_DONE;
                }
            } else {
                snprintf(j->detail, sizeof(j->detail),
                         "device is locked (FPA services closed) without a profile from this line");
                next = PL_JOB_FAILED;
            }
            goto out;
        }
        /* 4. A profile is installed: close production. */
        if (installed) {
            if (device_state(j) < PL_JD_INSTALLED)
                device_put(j, PL_JD_INSTALLED, "profile installed");
            next = PL_JOB_TOKEN;
            goto out;
        }
        /* A one-time key of an unproven package (station-side error, no PIR) that is no
         * longer FREE on the chip was consumed: that load happened or is still happening,
         * and its PIR will show. No other package goes to the device before it does. */
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if (r->outcome == PL_JO_FPA_ERROR && !otk_free_on_device(j, r->otk)) {
                j->fetched = false;
                if (++j->retries >= ST_MAX_RETRIES) {
                    snprintf(j->detail, sizeof(j->detail),
                             "one-time key %u consumed without a result", r->otk);
                    next = PL_JOB_FAILED;
                } else {
                    st_logf(j->s, j, PL_STATION_LOG_WARN, "wait",
                            "one-time key %u was consumed without a PIR yet: waiting for it",
                            r->otk);
                    next = PL_JOB_WAIT;
                }
                goto out;
            }
        }
        if (loads >= j->s->cfg->max_loads) {
            snprintf(j->detail, sizeof(j->detail), "%u packages tried without an installed profile",
                     loads);
            next = PL_JOB_FAILED;
            goto out;
        }
        /* 5. A leased package for this device (JIT earlier, or prefetched). */
        for (size_t i = 0; i < rs->n; i++) {
            const struct rowsum *r = &rs->r[i];
            if (r->state != PL_J_LEASED || st_claimed(j->s, r->id, j))
                continue;
            if (!otk_free_on_device(j, r->otk)) {
                release(j, r->id, "its one-time key is no longer FREE on the device");
                again = true;
                continue;
            }
            if (!load_check(j, r->id)) {
                again = true;
                continue;
            }
            if (r->prefetched) {
                struct pl_kmclient_pkg p;
                if (pl_kmclient_prefetch_take(j->s->km, j->eid, &p) == PL_OK)
                    pl_kmclient_pkg_free(&p);
                pl_kmclient_prefetch_remove(j->s->km, j->eid);
            }
            memcpy(j->pkg, r->id, 16);
            j->has_pkg = true;
            next = PL_JOB_LOAD;
            goto out;
        }
        if (fatal(j)) {
            next = PL_JOB_PARKED;
            goto out;
        }
        if (again)
            continue; /* released packages are reported first */
        /* 6. A journaled lease request: resend it byte for byte (protocol §4 rule 4). */
        if (pl_journal_lease_req_get(j->s->j, j->eid, &req) == PL_OK) {
            /* Resent as it is, first: no upload before it (its seq must stay the next). */
            next = st_lease_resend_busy(j->s, j->eid) ? PL_JOB_WAIT : PL_JOB_LEASE;
            goto out;
        }
        /* 7. A new lease on the lowest FREE one-time key no package of ours names. */
        bool have_otk = false;
        for (size_t k = 0; j->info != NULL && k < j->info->n_otk && !have_otk; k++) {
            uint16_t otk = j->info->otk[k].otk_id;
            bool used = false;
            for (size_t i = 0; i < rs->n; i++)
                used = used || rs->r[i].otk == otk;
            for (size_t i = 0; i < j->n_skip; i++)
                used = used || j->skip_otk[i] == otk;
            have_otk = !used;
        }
        if (!have_otk) {
            snprintf(j->detail, sizeof(j->detail), "no FREE one-time key left to lease for");
            next = PL_JOB_FAILED;
            goto out;
        }
        next = j->uploaded ? PL_JOB_LEASE : PL_JOB_COLLECT;
        goto out;
    }
    next = PL_JOB_WAIT;
out:
    free(rs);
    return next;
}

static void next_step(struct st_job *j, uint64_t now)
{
    go(j, job_next(j), now);
}

/* Re-identify (refreshes the device's OTK list and lock state), unless draining. */
static void reidentify(struct st_job *j, uint64_t now)
{
    go(j, j->s->draining ? PL_JOB_PARKED : PL_JOB_IDENTIFY, now);
}

/* ----------------------------------------------------- fixture completions ---- */

/* Decodes the link's answer into an event: FX_RSP for the expected body, FX_ERROR for an
 * Error, FX_FAIL for a transport failure or anything else. */
void st_job_poll_link(struct st_job *j, uint64_t now)
{
    struct pl_wr rsp;
    bool done = false;
    int rc;

    if (j->link == NULL)
        return;
    pl_wr_init_dyn(&rsp, PL_FX_MSG_MAX);
    rc = pl_fixture_link_poll(j->link, now, j->fx_busy ? &rsp : NULL, &done);
    if (!j->fx_busy || !done) {
        pl_wr_free(&rsp);
        return;
    }
    j->fx_busy = false;
    if (rc != PL_OK) {
        struct st_ev e = {rc, NULL, NULL};
        j->n_fx_fail++;
        st_logf(j->s, j, PL_STATION_LOG_WARN, "fx_fail", "%s: %s: %s", pl_fx_body_name(j->fx_body),
                pl_strerror(rc), pl_fixture_link_why(j->link));
        pl_wr_free(&rsp);
        dispatch(j, PL_JEV_FX_FAIL, &e, now);
        return;
    }
    if (j->probing) {
        /* Audited only if the probe leads somewhere (fsm_log). */
        struct pl_iov iov[2] = {{j->fx_req, j->fx_req_len}, {rsp.buf, rsp.len}};
        j->probe_digest_valid = pl_sha256_iov(iov, 2, j->probe_digest) == PL_OK;
    } else {
        st_audit_exchange(j->s, j, j->fx_req, j->fx_req_len, rsp.buf, rsp.len,
                          pl_fx_body_name(j->fx_body));
    }
    provline_fixture_Msg *m = fx_new(0);
    struct st_ev e = {PL_OK, m, NULL};
    unsigned ev = PL_JEV_FX_FAIL;
    if (m == NULL) {
        e.rc = PL_ERR_NOMEM;
    } else if ((rc = pl_fx_msg_decode(rsp.buf, rsp.len, m)) != PL_OK) {
        e.rc = rc;
        st_logf(j->s, j, PL_STATION_LOG_WARN, "fx_malformed", "answer to %s: %s",
                pl_fx_body_name(j->fx_body), pl_strerror(rc));
    } else if (m->request_id != j->fx_req_id && !(m->which_body == PL_FX_ERROR && m->request_id == 0)) {
        e.rc = PL_ERR_MALFORMED;
    } else if (m->which_body == PL_FX_ERROR) {
        ev = PL_JEV_FX_ERROR;
        j->n_fx_error++;
        st_logf(j->s, j, PL_STATION_LOG_WARN, "fx_error", "%s: %s at %s sw=%04x: %s",
                pl_fx_body_name(j->fx_body), pl_fx_error_name(m->body.error.code),
                pl_fx_stage_name(m->body.error.stage), (unsigned)m->body.error.card_sw,
                m->body.error.detail);
    } else if (m->which_body == pl_fx_response_for(j->fx_body)) {
        ev = PL_JEV_FX_RSP;
    } else {
        e.rc = PL_ERR_MALFORMED;
    }
    pl_wr_free(&rsp);
    dispatch(j, ev, &e, now);
    fx_free(m);
}

void st_job_km_done(struct st_job *j, struct pl_kmclient_done *d, uint64_t now)
{
    struct st_ev e = {d->status, NULL, d};
    unsigned ev;
    if (!j->km_busy || d->id != j->km_id)
        return; /* a request the job gave up (drain, restart of the step) */
    j->km_busy = false;
    if (d->status == PL_OK)
        ev = PL_JEV_KM_OK;
    else if (d->status == PL_ERR_REMOTE)
        ev = PL_JEV_KM_REFUSED;
    else
        ev = PL_JEV_KM_FAIL;
    if (ev != PL_JEV_KM_OK)
        st_logf(j->s, j, ev == PL_JEV_KM_REFUSED ? PL_STATION_LOG_WARN : PL_STATION_LOG_INFO,
                ev == PL_JEV_KM_REFUSED ? "km_refused" : "km_fail", "%s: %s%s%s",
                pl_km_body_name(d->request), pl_strerror(d->status),
                ev == PL_JEV_KM_REFUSED ? " " : "",
                ev == PL_JEV_KM_REFUSED ? pl_km_error_name(d->km_error) : "");
    if (ev == PL_JEV_KM_FAIL)
        j->s->n_km_fail++;
    dispatch(j, ev, &e, now);
}

/* Common handling of the drain events while a request is in flight that may be abandoned
 * (nothing of a package is at stake). Returns true when handled. */
static bool drain_abandon(struct st_job *j, unsigned ev, uint64_t now)
{
    if (ev != PL_JEV_DRAIN && ev != PL_JEV_DRAIN_EXPIRED)
        return false;
    fx_cancel(j);
    j->km_busy = false;
    go(j, PL_JOB_PARKED, now);
    return true;
}

/* The drain events in a state that must run to its end (a load, its result, its report,
 * NotificationSent): DRAIN only notes it; DRAIN_EXPIRED parks (the journal keeps LOADING,
 * RESULT or REPORTED for the recovery at the next start). */
static bool drain_finish(struct st_job *j, unsigned ev, uint64_t now)
{
    if (ev == PL_JEV_DRAIN) {
        j->drain_seen = true;
        st_logf(j->s, j, PL_STATION_LOG_INFO, "drain", "finishing the step in flight");
        return true;
    }
    if (ev == PL_JEV_DRAIN_EXPIRED) {
        fx_cancel(j);
        j->km_busy = false;
        st_logf(j->s, j, PL_STATION_LOG_WARN, "parked",
                "drain timeout: step left for recovery at the next start");
        go(j, PL_JOB_PARKED, now);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ IDLE ---- */

static void on_idle(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    (void)prev;
    (void)now;
    J(fi)->has_pkg = false;
}

static int act_idle(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)data;
    if (drain_abandon(j, ev, now))
        return PL_OK;
    j->probing = true;
    go(j, PL_JOB_IDENTIFY, now);
    return PL_OK;
}

/* -------------------------------------------------------------- IDENTIFY ---- */

static void on_identify(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    provline_fixture_Msg *m = fx_new(PL_FX_IDENTIFY);
    (void)prev;
    if (m == NULL) {
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    fx_send(j, m, PL_T_IDENTIFY, now);
    fx_free(m);
}

static void forget_device(struct st_job *j)
{
    j->has_dev = false;
    j->has_pkg = false;
    j->factory_mode = false;
    free(j->info);
    j->info = NULL;
    free(j->info_raw);
    j->info_raw = NULL;
    j->info_len = 0;
}

/* CERT.EUICC and CERT.EUM of the GetIfppInfo answer (docs/ifpp-es10f.md GetIfppInfo) go on
 * the device record, byte for byte as the eUICC sent them, for the eIM's bulk import
 * (docs/eim-api.md "Bulk import"; the eIM checks the chain and the EID in CERT.EUICC).
 * Public data: no key. A certificate too large to keep is logged and left out (the device
 * can still be produced; the eIM needs it only to verify the chain). */
static int keep_certs(struct st_job *j)
{
    const struct pl_ifpp_cert *eu = &j->info->cert_euicc, *em = &j->info->cert_eum;
    int rc = pl_journal_device_certs_put(j->s->j, j->eid, eu->len > 0 ? eu->der : NULL, eu->len,
                                         em->len > 0 ? em->der : NULL, em->len);
    if (rc == PL_ERR_INVAL) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "certs", "eUICC certificates over %u bytes not kept",
                PL_J_CERT_MAX);
        return PL_OK;
    }
    if (rc != PL_OK)
        return st_fatal(j->s, j, rc, "journal device certificates");
    return PL_OK;
}

static int identified(struct st_job *j, const provline_fixture_IdentifyResponse *r)
{
    const uint8_t *raw;
    size_t raw_len = 0;
    bool same = j->has_dev && memcmp(j->eid, r->eid.bytes, 16) == 0;
    char hex[33];
    int rc;

    if (!same) {
        /* Another device (or the first): its session starts over; the journal keeps what
         * was done for any EID. */
        forget_device(j);
        memcpy(j->eid, r->eid.bytes, 16);
        j->uploaded = false;
        j->n_skip = 0;
        j->finished = false;
        j->retries = 0;
        j->eim_repeat = false;
        j->receipt_gave_up = false;
        j->detail[0] = '\0';
    }
    free(j->info);
    j->info = NULL;
    free(j->info_raw);
    j->info_raw = NULL;
    j->info_len = 0;
    j->has_dev = true;
    j->factory_mode = r->factory_mode;
    j->fetched = false;
    raw = pl_fx_blob(r->ifpp_info, &raw_len);
    if (j->factory_mode) {
        if (raw == NULL || raw_len == 0)
            return PL_ERR_MALFORMED;
        j->info_raw = malloc(raw_len);
        j->info = malloc(sizeof(*j->info));
        if (j->info_raw == NULL || j->info == NULL)
            return PL_ERR_NOMEM;
        memcpy(j->info_raw, raw, raw_len);
        j->info_len = raw_len;
        if ((rc = pl_es10f_get_info_rsp_decode(j->info_raw, j->info_len, j->info)) != PL_OK)
            return rc;
        if (memcmp(j->info->eid, j->eid, 16) != 0)
            return PL_ERR_MALFORMED; /* GetIfppInfo names another eUICC than GetEID */
    }
    if (!same) {
        struct pl_jdevice d;
        if (pl_hex_encode(j->eid, 16, hex, sizeof(hex)) != PL_OK)
            hex[0] = '\0';
        st_logf(j->s, j, PL_STATION_LOG_INFO, "device", "device %s in the fixture (%s, %zu free OTKs)",
                hex, j->factory_mode ? "factory mode" : "locked",
                j->info != NULL ? j->info->n_otk : (size_t)0);
        rc = pl_journal_device_get(j->s->j, j->eid, &d);
        if (rc == PL_ERR_NOT_FOUND)
            device_put(j, PL_JD_IDENTIFIED, "identified");
        else if (rc != PL_OK)
            return st_fatal(j->s, j, rc, "journal device read");
        if (j->info != NULL && (rc = keep_certs(j)) != PL_OK)
            return rc;
    }
    return PL_OK;
}

static int act_identify(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    int rc;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev != PL_JEV_FX_RSP) {
        if (j->finished && j->has_dev) {
            /* A probe of a finished device got no answer (a noisy line, or it left): it
             * stays finished; a device with another EID starts a new session. */
            go(j, j->detail[0] != '\0' ? PL_JOB_FAILED : PL_JOB_DONE, now);
            return PL_OK;
        }
        /* No device, no eUICC, or no link: wait for one. */
        forget_device(j);
        go(j, PL_JOB_IDLE, now);
        return PL_OK;
    }
    if ((rc = identified(j, &e->fx->body.identify_rsp)) != PL_OK) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "identify_bad", "unusable Identify answer: %s",
                pl_strerror(rc));
        forget_device(j);
        go(j, PL_JOB_IDLE, now);
        return PL_OK;
    }
    /* A device already finished (or failed) in this session stays so while it is seated. */
    if (j->finished) {
        go(j, j->detail[0] != '\0' ? PL_JOB_FAILED : PL_JOB_DONE, now);
        return PL_OK;
    }
    next_step(j, now);
    return PL_OK;
}

/* --------------------------------------------------------- RECOVER / RESULT ---- */

static void send_fetch(struct st_job *j, uint64_t now)
{
    provline_fixture_Msg *m = fx_new(PL_FX_FETCH_RESULTS);
    if (m == NULL) {
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    m->body.fetch_results.has_seq_number = false;
    fx_send(j, m, PL_T_FIXTURE, now);
    fx_free(m);
}

static void on_recover(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    (void)prev;
    send_fetch(J(fi), now);
}

static void on_result(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    (void)prev;
    send_fetch(J(fi), now);
}

struct match_ctx {
    struct st_job *j;
    const struct pl_pir *pir;
    const uint8_t *raw;
    size_t raw_len;
    bool matched;
};

static int match_cb(void *user, const struct pl_jpkg *row)
{
    struct match_ctx *c = user;
    struct st_job *j = c->j;
    int rc;
    if (row->tid_len != c->pir->tid_len || memcmp(row->tid, c->pir->tid, row->tid_len) != 0)
        return 0;
    c->matched = true;
    /* A PIR already journaled or reported for this package changes nothing; proof for a
     * package in LOADING, or one reported without proof, is journaled now. */
    if (row->outcome == PL_JO_PIR)
        return 0;
    if (!(row->state == PL_J_LOADING || row->state == PL_J_RESULT
          || (row->state == PL_J_ACKED && row->outcome != PL_JO_PIR)))
        return 0;
    rc = pl_journal_result_pir(j->s->j, row->package_id, c->raw, c->raw_len, c->pir->success);
    if (rc != PL_OK)
        return st_fatal(j->s, j, rc, "journal result");
    if (c->pir->success)
        j->s->n_pir_success++;
    else
        j->s->n_pir_error++;
    st_logf(j->s, j, PL_STATION_LOG_INFO, "pir_found", "pending %s PIR matched transactionId",
            c->pir->success ? "success" : "error");
    st_audit_transition(j->s, j, row->package_id, pl_journal_state_name(PL_J_RESULT),
                        c->pir->success ? "recovered pir success" : "recovered pir error");
    return 0;
}

struct unresolved_ctx {
    struct st_job *j;
    const char *why;
    uint32_t code;
};

static int unresolved_cb(void *user, const struct pl_jpkg *row)
{
    struct unresolved_ctx *c = user;
    int rc;
    if (row->state == PL_J_DISPATCHED) {
        /* DISPATCHED: LOADING was never journaled, so the request never left. */
        rc = pl_journal_undispatch(c->j->s->j, row->package_id, "load never sent");
        if (rc == PL_OK)
            st_audit_transition(c->j->s, c->j, row->package_id,
                                pl_journal_state_name(PL_J_LEASED), "load never sent");
    } else {
        rc = pl_journal_result_error(c->j->s->j, row->package_id, c->code, c->why);
        st_logf(c->j->s, c->j, PL_STATION_LOG_WARN, "unresolved",
                "package may have reached the chip: %s; reported as a station-side error "
                "(possibly used until a receipt or a PIR proves otherwise)",
                c->why);
        st_audit_transition(c->j->s, c->j, row->package_id, pl_journal_state_name(PL_J_RESULT),
                            c->why);
    }
    return rc != PL_OK ? st_fatal(c->j->s, c->j, rc, "journal resolve") : 0;
}

/* Matches every pending PIR on the eUICC against this device's journaled packages by
 * transactionId; loads still LOADING without a PIR become station-side errors ("possibly
 * used" at the Key Maker until a receipt or a later PIR proves otherwise). Never resends. */
static int apply_results(struct st_job *j, const provline_fixture_FetchResultsResponse *r,
                         uint32_t code, const char *why)
{
    struct pl_notif_rnl_rsp *list = NULL;
    const uint8_t *raw;
    size_t len = 0;
    int rc = PL_ERR_INTERNAL;

    raw = pl_fx_blob(r->list, &len);
    list = malloc(sizeof(*list));
    if (list == NULL)
        return PL_ERR_NOMEM;
    if ((rc = pl_notif_rnl_rsp_decode(raw, len, list)) != PL_OK) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "results_bad", "RetrieveNotificationsList: %s",
                pl_strerror(rc));
        goto out;
    }
    if (list->is_error) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "results_error",
                "RetrieveNotificationsList error %lld", (long long)list->error);
        rc = PL_ERR_REMOTE;
        goto out;
    }
    for (size_t i = 0; i < list->n; i++) {
        struct pl_pir pir;
        struct match_ctx c = {j, &pir, list->items[i].raw, list->items[i].raw_len, false};
        if (list->items[i].kind != PL_NOTIF_KIND_PIR
            || pl_pir_decode(list->items[i].raw, list->items[i].raw_len, &pir) != PL_OK)
            continue;
        if ((rc = pl_journal_each(j->s->j, 0, j->eid, NULL, match_cb, &c)) != PL_OK)
            goto out;
        if (!c.matched)
            st_logf(j->s, j, PL_STATION_LOG_INFO, "pir_unknown",
                    "a pending PIR names no package of this journal (seq %llu)",
                    (unsigned long long)pir.meta.seq);
    }
    struct unresolved_ctx u = {j, why, code};
    rc = pl_journal_each(j->s->j, PL_J_MASK(PL_J_LOADING) | PL_J_MASK(PL_J_DISPATCHED), j->eid,
                         NULL, unresolved_cb, &u);
out:
    free(list);
    return rc;
}

static int act_recover(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    int rc;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev != PL_JEV_FX_RSP) {
        step_failed(j, now, "FetchResults (recovery)", e->rc != PL_OK ? e->rc : PL_ERR_REMOTE);
        return PL_OK;
    }
    rc = apply_results(j, &e->fx->body.fetch_results_rsp, PL_JFPA_UNKNOWN,
                       "no pending PIR for this transaction after a restart or lost answer");
    if (fatal(j))
        return rc;
    if (rc != PL_OK) {
        step_failed(j, now, "FetchResults (recovery)", rc);
        return PL_OK;
    }
    j->retries = 0;
    j->fetched = true;
    next_step(j, now);
    return PL_OK;
}

static int act_result(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev != PL_JEV_FX_RSP) {
        /* The package may be on the chip: it stays LOADING and is recovered through
         * Identify + FetchResults, never resent. */
        step_failed(j, now, "FetchResults after a load", e->rc != PL_OK ? e->rc : PL_ERR_REMOTE);
        return PL_OK;
    }
    rc = apply_results(j, &e->fx->body.fetch_results_rsp, PL_JFPA_UNKNOWN,
                       "load ended without a PIR and none is pending");
    if (fatal(j))
        return rc;
    if (rc != PL_OK) {
        step_failed(j, now, "FetchResults after a load", rc);
        return PL_OK;
    }
    j->retries = 0;
    j->fetched = true;
    next_step(j, now);
    return PL_OK;
}

/* --------------------------------------------------------------- COLLECT ---- */

static void on_collect(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    int rc;
    (void)prev;
    (void)now;
    if (j->info == NULL) {
        defer(j, PL_JEV_KM_FAIL, PL_ERR_STATE);
        return;
    }
    rc = pl_kmclient_send_upload(j->s->km, j->info, job_tag(j), &j->km_id);
    if (rc != PL_OK) {
        defer(j, PL_JEV_KM_FAIL, rc);
        return;
    }
    j->km_busy = true;
    st_km_seq_save(j->s);
}

static int act_collect(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_KM_FAIL) {
        step_failed(j, now, "OtkUpload", e->rc);
        return PL_OK;
    }
    if (ev == PL_JEV_KM_REFUSED) {
        j->n_refused++;
        fail_device(j, now, "Key Maker refused the OTK upload: %s",
                    pl_km_error_name(e->km->km_error));
        return PL_OK;
    }
    const provline_keymaker_OtkUploadResult *r = &e->km->reply->body.otk_upload_result;
    st_logf(j->s, j, PL_STATION_LOG_INFO, "otks_uploaded", "accepted=%u rejected=%u",
            (unsigned)r->accepted_count, (unsigned)r->rejected_count);
    if (r->accepted_count == 0) {
        fail_device(j, now, "Key Maker accepted none of the device's one-time keys");
        return PL_OK;
    }
    for (size_t i = 0; i < r->rejected_count && j->n_skip < ST_SKIP_OTK_MAX; i++)
        j->skip_otk[j->n_skip++] = (uint16_t)r->rejected[i].otk_id;
    j->retries = 0;
    j->uploaded = true;
    next_step(j, now);
    return PL_OK;
}

/* ----------------------------------------------------------------- LEASE ---- */

/* The OTK to lease for: the journaled request's, or the lowest FREE one no package of ours
 * names and the Key Maker did not refuse. 0 if none. */
static uint16_t lease_otk(struct st_job *j, struct pl_jlease_req *req, bool *journaled)
{
    struct rows *rs;
    uint16_t pick = 0;

    *journaled = pl_journal_lease_req_get(j->s->j, j->eid, req) == PL_OK;
    if (*journaled)
        return req->otk_id;
    rs = malloc(sizeof(*rs));
    if (rs == NULL || rows_of(j, rs) != PL_OK) {
        free(rs);
        return 0;
    }
    for (size_t k = 0; j->info != NULL && k < j->info->n_otk && pick == 0; k++) {
        uint16_t otk = j->info->otk[k].otk_id;
        bool used = false;
        for (size_t i = 0; i < rs->n; i++)
            used = used || rs->r[i].otk == otk;
        for (size_t i = 0; i < j->n_skip; i++)
            used = used || j->skip_otk[i] == otk;
        if (!used)
            pick = otk;
    }
    free(rs);
    return pick;
}

static void on_lease(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    struct pl_jlease_req req;
    struct pl_kmclient_ident id;
    bool journaled = false;
    uint16_t otk;
    int rc;
    (void)prev;
    (void)now;

    otk = lease_otk(j, &req, &journaled);
    if (otk == 0) {
        defer(j, PL_JEV_KM_FAIL, PL_ERR_NOT_FOUND);
        return;
    }
    if (journaled) {
        memcpy(id.msg_id, req.msg_id, sizeof(id.msg_id));
        id.seq = req.seq;
        st_logf(j->s, j, PL_STATION_LOG_INFO, "lease_resend",
                "resending the journaled LeaseRequest for otkId %u (same msg_id, seq %llu)", otk,
                (unsigned long long)req.seq);
    } else {
        /* Write-ahead: the request's identity is journaled before the bytes leave, so a
         * restart resends the identical request (protocol §4 rule 4). */
        if ((rc = st_km_ident(j->s, &id)) != PL_OK) {
            defer(j, PL_JEV_KM_FAIL, rc);
            return;
        }
        memset(&req, 0, sizeof(req));
        memcpy(req.eid, j->eid, 16);
        req.otk_id = otk;
        snprintf(req.fixture, sizeof(req.fixture), "%s", j->cfg->name);
        memcpy(req.msg_id, id.msg_id, sizeof(req.msg_id));
        req.seq = id.seq;
        if ((rc = pl_journal_lease_req_put(j->s->j, &req)) != PL_OK) {
            st_fatal(j->s, j, rc, "journal lease request");
            return;
        }
    }
    if ((rc = st_lease_submit(j->s, j->eid, otk, &id, job_tag(j), &j->km_id)) != PL_OK) {
        defer(j, PL_JEV_KM_FAIL, rc);
        return;
    }
    j->km_busy = true;
    st_logf(j->s, j, PL_STATION_LOG_INFO, "lease_request", "just-in-time lease for otkId %u", otk);
}

static int act_lease(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    struct pl_jlease_req req;
    int rc;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_KM_FAIL) {
        step_failed(j, now, "LeaseRequest", e->rc);
        return PL_OK;
    }
    bool have_req = pl_journal_lease_req_get(j->s->j, j->eid, &req) == PL_OK;
    if (ev == PL_JEV_KM_REFUSED) {
        int code = e->km->km_error;
        j->n_refused++;
        /* The refusal is the recorded answer to that request: it is settled. */
        if (have_req && (rc = pl_journal_lease_req_del(j->s->j, j->eid, req.otk_id)) != PL_OK)
            return st_fatal(j->s, j, rc, "journal lease request");
        if (code == provline_keymaker_ErrorCode_ERROR_OTK_NOT_FREE
            || code == provline_keymaker_ErrorCode_ERROR_UNKNOWN_OTK) {
            if (have_req && j->n_skip < ST_SKIP_OTK_MAX)
                j->skip_otk[j->n_skip++] = req.otk_id;
            if (code == provline_keymaker_ErrorCode_ERROR_UNKNOWN_OTK)
                j->uploaded = false;
            next_step(j, now);
        } else if (code == provline_keymaker_ErrorCode_ERROR_UNKNOWN_EID && j->retries < 2) {
            j->retries++;
            j->uploaded = false;
            next_step(j, now);
        } else {
            fail_device(j, now, "Key Maker refused the lease: %s", pl_km_error_name(code));
        }
        return PL_OK;
    }
    const provline_keymaker_Lease *l = &e->km->reply->body.lease;
    if (l->packages_count == 0) {
        if (have_req)
            if ((rc = pl_journal_lease_req_del(j->s->j, j->eid, req.otk_id)) != PL_OK)
                return st_fatal(j->s, j, rc, "journal lease request");
        fail_device(j, now, "Key Maker leased no package");
        return PL_OK;
    }
    if ((rc = st_lease_reply(j->s, l)) != PL_OK) {
        if (fatal(j))
            return rc;
        step_failed(j, now, "Lease (copy)", rc);
        return PL_OK;
    }
    j->retries = 0;
    next_step(j, now);
    return PL_OK;
}

/* ------------------------------------------------------------------ LOAD ---- */

static void on_load(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    provline_fixture_Msg *m = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    uint64_t rid = 0;
    int rc;
    (void)prev;

    if ((rc = pl_journal_envelope(j->s->j, j->pkg, &env, &env_len)) != PL_OK) {
        defer(j, PL_JEV_FX_FAIL, rc);
        return;
    }
    m = fx_new(PL_FX_LOAD_PACKAGE);
    if (m == NULL || (rc = pl_fx_set_blob(&m->body.load_package.envelope, env, env_len)) != PL_OK) {
        free(env);
        fx_free(m);
        defer(j, PL_JEV_FX_FAIL, m == NULL ? PL_ERR_NOMEM : rc);
        return;
    }
    free(env);
    /* Write-ahead: DISPATCHED (fixture, EID read from the device) then LOADING, each
     * committed before the request leaves; from here on the package is never resent. */
    if ((rc = pl_journal_dispatch(j->s->j, j->pkg, j->cfg->name, j->eid)) != PL_OK) {
        fx_free(m);
        st_fatal(j->s, j, rc, "journal dispatch");
        return;
    }
    st_audit_transition(j->s, j, j->pkg, pl_journal_state_name(PL_J_DISPATCHED), NULL);
    if ((rc = new_request_id(j, &rid)) == PL_OK)
        rc = pl_journal_loading(j->s->j, j->pkg, rid);
    if (rc != PL_OK) {
        fx_free(m);
        st_fatal(j->s, j, rc, "journal loading");
        return;
    }
    st_audit_transition(j->s, j, j->pkg, pl_journal_state_name(PL_J_LOADING), NULL);
    j->n_loads++;
    st_logf(j->s, j, PL_STATION_LOG_INFO, "load", "LoadPackage: %zu bytes of sealed package",
            env_len);
    fx_send_id(j, m, PL_T_LOAD, rid, now);
    fx_free(m);
}

/* The FPA stopped before any byte of the package reached the eUICC: it may go back to the
 * pool (docs/fixture-protocol.md §4: EID check and request checks come first). */
static bool nothing_sent(const provline_fixture_Error *err)
{
    return err->stage == provline_fixture_Stage_STAGE_REQUEST
           || err->stage == provline_fixture_Stage_STAGE_SESSION
           || err->stage == provline_fixture_Stage_STAGE_GET_EID;
}

static int act_load(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_FX_FAIL) {
        /* No answer: the package may be on the chip, or still on its way there (a CoAP
         * block-wise transfer or a serial message the link keeps retransmitting outlives the
         * request's deadline). The transport is torn down first, so nothing of this request
         * can arrive any more; a request the device already has is handled before anything
         * sent later (the FPA works in order). Then, after T_RETRY, Identify and
         * FetchResults tell what happened. Never resent. */
        pl_fixture_link_free(j->link);
        j->link = NULL;
        j->fetched = false;
        st_logf(j->s, j, PL_STATION_LOG_WARN, "load_unanswered",
                "no answer to LoadPackage: link closed, the device will be asked for its "
                "results");
        go(j, j->s->draining ? PL_JOB_PARKED : PL_JOB_WAIT, now);
        return PL_OK;
    }
    if (ev == PL_JEV_FX_ERROR) {
        const provline_fixture_Error *err = &e->fx->body.error;
        if (nothing_sent(err)) {
            bool mismatch = err->code == provline_fixture_ErrorCode_ERROR_EID_MISMATCH;
            if ((rc = pl_journal_undispatch(j->s->j, j->pkg, pl_fx_error_name(err->code))) != PL_OK)
                return st_fatal(j->s, j, rc, "journal undispatch");
            st_audit_transition(j->s, j, j->pkg, pl_journal_state_name(PL_J_LEASED),
                                pl_fx_error_name(err->code));
            if (mismatch) {
                /* IFPP.md §7 case 22: another device sits in the fixture; nothing spent. */
                reidentify(j, now);
                return PL_OK;
            }
            if (err->code == provline_fixture_ErrorCode_ERROR_BAD_PACKAGE)
                release(j, j->pkg, "the FPA refused the package as malformed");
            step_failed(j, now, "LoadPackage refused before sending", PL_ERR_REMOTE);
            return PL_OK;
        }
        go(j, PL_JOB_RESULT, now);
        return PL_OK;
    }
    const provline_fixture_LoadPackageResponse *r = &e->fx->body.load_package_rsp;
    struct pl_pir pir;
    struct pl_jpkg *row = malloc(sizeof(*row));
    if (row == NULL)
        return st_fatal(j->s, j, PL_ERR_NOMEM, "load result");
    if ((rc = pl_journal_get(j->s->j, j->pkg, row)) != PL_OK) {
        free(row);
        return st_fatal(j->s, j, rc, "journal read");
    }
    bool ok = r->pir.size > 0 && pl_pir_decode(r->pir.bytes, r->pir.size, &pir) == PL_OK
              && pir.tid_len == row->tid_len && memcmp(pir.tid, row->tid, row->tid_len) == 0;
    free(row);
    if (!ok) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "load_no_pir",
                "LoadPackage answered without a PIR for this transaction (%u of %u segments)",
                (unsigned)r->segments_sent, (unsigned)r->segments_total);
        go(j, PL_JOB_RESULT, now);
        return PL_OK;
    }
    if ((rc = pl_journal_result_pir(j->s->j, j->pkg, r->pir.bytes, r->pir.size, pir.success))
        != PL_OK)
        return st_fatal(j->s, j, rc, "journal result");
    if (pir.success)
        j->s->n_pir_success++;
    else
        j->s->n_pir_error++;
    st_audit_transition(j->s, j, j->pkg, pl_journal_state_name(PL_J_RESULT),
                        pir.success ? "pir success" : "pir error");
    if (pir.success)
        st_logf(j->s, j, PL_STATION_LOG_INFO, "pir", "profile installed (eUICC-signed PIR)");
    else
        st_logf(j->s, j, PL_STATION_LOG_WARN, "pir", "PIR error: %s at %s",
                pl_pir_reason_name(pir.reason), pl_pir_cmd_name(pir.cmd_id));
    j->retries = 0;
    j->fetched = true; /* the answer came: nothing to recover for it */
    next_step(j, now);
    return PL_OK;
}

/* ---------------------------------------------------------------- REPORT ---- */

static void on_report(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    struct pl_jpkg *row = malloc(sizeof(*row));
    int rc;
    (void)prev;
    (void)now;
    if (row == NULL) {
        defer(j, PL_JEV_KM_FAIL, PL_ERR_NOMEM);
        return;
    }
    if ((rc = pl_journal_get(j->s->j, j->pkg, row)) != PL_OK) {
        free(row);
        st_fatal(j->s, j, rc, "journal read");
        return;
    }
    rc = st_report_submit(j->s, j, row, job_tag(j), &j->km_id, &j->cp_seq, j->cp_h, &j->cp_valid);
    free(row);
    if (rc != PL_OK) {
        if (!fatal(j))
            defer(j, PL_JEV_KM_FAIL, rc);
        return;
    }
    j->km_busy = true;
}

static int act_report(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev != PL_JEV_KM_OK) {
        if (ev == PL_JEV_KM_REFUSED)
            j->n_refused++;
        step_failed(j, now, "Report", e->rc);
        return PL_OK;
    }
    if ((rc = st_report_done(j->s, j, j->pkg, e->km, j->cp_seq, j->cp_h, j->cp_valid)) != PL_OK) {
        if (fatal(j))
            return rc;
        step_failed(j, now, "ReportAck", rc);
        return PL_OK;
    }
    j->retries = 0;
    next_step(j, now);
    return PL_OK;
}

/* ---------------------------------------------------------------- NOTIFY ---- */

static void on_notify(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    struct pl_jpkg *row = malloc(sizeof(*row));
    struct pl_pir pir;
    provline_fixture_Msg *m = NULL;
    int rc;
    (void)prev;

    if (row == NULL) {
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    if ((rc = pl_journal_get(j->s->j, j->pkg, row)) != PL_OK) {
        free(row);
        st_fatal(j->s, j, rc, "journal read");
        return;
    }
    rc = pl_pir_decode(row->pir, row->pir_len, &pir);
    uint64_t seq = pir.meta.seq;
    free(row);
    if (rc != PL_OK) {
        defer(j, PL_JEV_FX_FAIL, rc);
        return;
    }
    m = fx_new(PL_FX_NOTIFICATION_SENT);
    if (m == NULL) {
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    /* SGP.22 §5.7.11: only now, after the Key Maker's ReportAck accepted the PIR. */
    m->body.notification_sent.seq_number = seq;
    fx_send(j, m, PL_T_FIXTURE, now);
    fx_free(m);
}

static int act_notify(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    struct pl_jpkg *row;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev != PL_JEV_FX_RSP) {
        step_failed(j, now, "NotificationSent", e->rc != PL_OK ? e->rc : PL_ERR_REMOTE);
        return PL_OK;
    }
    int64_t status = e->fx->body.notification_sent_rsp.status;
    if (status != PL_NOTIF_SENT_OK && status != PL_NOTIF_SENT_NOTHING_TO_DELETE) {
        step_failed(j, now, "NotificationSent", PL_ERR_REMOTE);
        return PL_OK;
    }
    if ((rc = pl_journal_notified(j->s->j, j->pkg, status)) != PL_OK)
        return st_fatal(j->s, j, rc, "journal notified");
    st_audit_transition(j->s, j, j->pkg, pl_journal_state_name(PL_J_NOTIFIED), NULL);
    row = malloc(sizeof(*row));
    if (row != NULL && pl_journal_get(j->s->j, j->pkg, row) == PL_OK && row->pir_success
        && row->km_accepted == 1 && device_state(j) < PL_JD_INSTALLED)
        device_put(j, PL_JD_INSTALLED, "profile installed");
    free(row);
    j->retries = 0;
    reidentify(j, now);
    return PL_OK;
}

/* ------------------------------------------------ TOKEN / DELETE / RECEIPT ---- */

static void on_token(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    int rc;
    (void)prev;
    (void)now;
    rc = pl_kmclient_send_token_request(j->s->km, j->eid, job_tag(j), &j->km_id);
    if (rc != PL_OK) {
        defer(j, PL_JEV_KM_FAIL, rc);
        return;
    }
    j->km_busy = true;
    st_km_seq_save(j->s);
}

static int act_token(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_KM_FAIL) {
        step_failed(j, now, "OtkDeletionTokenRequest", e->rc);
        return PL_OK;
    }
    if (ev == PL_JEV_KM_REFUSED) {
        j->n_refused++;
        fail_device(j, now, "Key Maker refused the deletion token: %s",
                    pl_km_error_name(e->km->km_error));
        return PL_OK;
    }
    const provline_keymaker_OtkDeletionToken *t = &e->km->reply->body.otk_deletion_token;
    free(j->token_req);
    j->token_req = malloc(t->request.size);
    if (j->token_req == NULL)
        return st_fatal(j->s, j, PL_ERR_NOMEM, "token");
    memcpy(j->token_req, t->request.bytes, t->request.size);
    j->token_len = t->request.size;
    j->token_counter = t->counter;
    /* Write-ahead for the device: CLOSING with the counter, before the token leaves. */
    device_put(j, PL_JD_CLOSING, "DeleteRemainingOtks");
    if (fatal(j))
        return j->s->fatal;
    j->retries = 0;
    go(j, PL_JOB_DELETE, now);
    return PL_OK;
}

static void on_delete(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    provline_fixture_Msg *m = fx_new(PL_FX_DELETE_OTKS);
    int rc;
    (void)prev;
    if (m == NULL || (rc = pl_fx_set_blob(&m->body.delete_otks.request, j->token_req,
                                          j->token_len)) != PL_OK) {
        fx_free(m);
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    fx_send(j, m, PL_T_FIXTURE, now);
    fx_free(m);
}

static int act_delete(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    struct pl_es10f_delete_otks_rsp rsp;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_FX_FAIL) {
        step_failed(j, now, "DeleteRemainingOtks", e->rc);
        return PL_OK;
    }
    if (ev == PL_JEV_FX_ERROR) {
        if (e->fx->body.error.code == provline_fixture_ErrorCode_ERROR_CARD_SW
            && e->fx->body.error.card_sw == 0x6985u) {
            /* FPA services closed: the deletion happened (answer lost) or was done before. */
            reidentify(j, now);
            return PL_OK;
        }
        step_failed(j, now, "DeleteRemainingOtks", PL_ERR_REMOTE);
        return PL_OK;
    }
    const provline_fixture_DeleteOtksResponse *r = &e->fx->body.delete_otks_rsp;
    if ((rc = pl_es10f_delete_otks_rsp_decode(r->response.bytes, r->response.size, &rsp)) != PL_OK) {
        step_failed(j, now, "DeleteRemainingOtks response", rc);
        return PL_OK;
    }
    if (!rsp.ok) {
        st_logf(j->s, j, PL_STATION_LOG_WARN, "delete_refused", "eUICC: %s",
                pl_es10f_dotk_error_name(rsp.error));
        if (rsp.error == PL_ES10F_DOTK_NOT_IN_FACTORY_MODE) {
            reidentify(j, now);
        } else if ((rsp.error == PL_ES10F_DOTK_REPLAY_ERROR
                    || rsp.error == PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE)
                   && j->retries + 1 < ST_MAX_RETRIES) {
            j->retries++;
            go(j, PL_JOB_TOKEN, now); /* a fresh counter from the Key Maker */
        } else {
            fail_device(j, now, "eUICC refused DeleteRemainingOtks: %s",
                        pl_es10f_dotk_error_name(rsp.error));
        }
        return PL_OK;
    }
    free(j->receipt);
    j->receipt = malloc(r->response.size);
    if (j->receipt == NULL)
        return st_fatal(j->s, j, PL_ERR_NOMEM, "receipt");
    memcpy(j->receipt, r->response.bytes, r->response.size);
    j->receipt_len = r->response.size;
    st_logf(j->s, j, PL_STATION_LOG_INFO, "otks_deleted",
            "eUICC deleted %zu remaining one-time keys (signed receipt, counter %llu)",
            rsp.receipt.n_deleted, (unsigned long long)rsp.receipt.counter);
    device_put(j, PL_JD_CLOSED, "remaining OTKs deleted");
    if (fatal(j))
        return j->s->fatal;
    j->retries = 0;
    go(j, j->s->draining ? PL_JOB_PARKED : PL_JOB_RECEIPT, now);
    return PL_OK;
}

static void on_receipt(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    int rc;
    (void)prev;
    (void)now;
    rc = pl_kmclient_send_receipt(j->s->km, j->eid, j->token_counter, j->receipt, j->receipt_len,
                                  job_tag(j), &j->km_id);
    if (rc != PL_OK) {
        defer(j, PL_JEV_KM_FAIL, rc);
        return;
    }
    j->km_busy = true;
    st_km_seq_save(j->s);
}

static int act_receipt(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;

    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_KM_FAIL && j->retries < 3) {
        j->retries++;
        go(j, PL_JOB_RECEIPT, now);
        return PL_OK;
    }
    if (ev == PL_JEV_KM_FAIL)
        j->receipt_gave_up = true; /* kept in the journal: sent again after a restart */
    else
        receipt_settled(j);
    if (ev == PL_JEV_KM_OK) {
        const provline_keymaker_OtkDeletionReceiptAck *a = &e->km->reply->body.otk_deletion_receipt_ack;
        st_logf(j->s, j, PL_STATION_LOG_INFO, "receipt_ack",
                "Key Maker: %u OTKs void, %u packages settled by the receipt",
                (unsigned)a->voided_count, (unsigned)a->settled_count);
    } else {
        /* The receipt only settles possibly-used packages sooner; production goes on. */
        st_logf(j->s, j, PL_STATION_LOG_WARN, "receipt_not_recorded", "%s",
                ev == PL_JEV_KM_REFUSED ? pl_km_error_name(e->km->km_error) : pl_strerror(e->rc));
    }
    j->retries = 0;
    reidentify(j, now);
    return PL_OK;
}

/* ------------------------------------------------------------------- EIM ---- */

static void on_eim(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    provline_fixture_Msg *m;
    int rc;
    (void)prev;
    j->eim_repeat = device_state(j) == PL_JD_EIM_SENT;
    if (!j->eim_repeat)
        device_put(j, PL_JD_EIM_SENT, "AddInitialEim");
    if (fatal(j))
        return;
    m = fx_new(PL_FX_CONFIGURE_EIM);
    if (m == NULL || (rc = pl_fx_set_blob(&m->body.configure_initial_eim.request,
                                          j->s->cfg->eim_request, j->s->cfg->eim_request_len))
                         != PL_OK) {
        fx_free(m);
        defer(j, PL_JEV_FX_FAIL, PL_ERR_NOMEM);
        return;
    }
    fx_send(j, m, PL_T_FIXTURE, now);
    fx_free(m);
}

static int act_eim(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    struct st_ev *e = data;
    struct pl_sgp32_add_initial_eim_response *r;
    int rc;

    if (drain_finish(j, ev, now))
        return PL_OK;
    if (ev == PL_JEV_FX_FAIL) {
        step_failed(j, now, "ConfigureInitialEim", e->rc);
        return PL_OK;
    }
    if (ev == PL_JEV_FX_ERROR) {
        if (e->fx->body.error.code == provline_fixture_ErrorCode_ERROR_CARD_SW
            && e->fx->body.error.card_sw == 0x6985u) {
            reidentify(j, now); /* IPA services still closed: OTKs remain */
            return PL_OK;
        }
        step_failed(j, now, "ConfigureInitialEim", PL_ERR_REMOTE);
        return PL_OK;
    }
    const provline_fixture_ConfigureInitialEimResponse *x = &e->fx->body.configure_initial_eim_rsp;
    r = malloc(sizeof(*r));
    if (r == NULL)
        return st_fatal(j->s, j, PL_ERR_NOMEM, "eim");
    rc = pl_sgp32_add_initial_eim_response_decode(x->response.bytes, x->response.size, r);
    bool ok = rc == PL_OK && !r->is_error;
    /* Our own earlier AddInitialEim took effect and only its answer was lost. */
    bool repeat_ok = rc == PL_OK && r->is_error && j->eim_repeat
                     && r->error_code == PL_SGP32_ADD_EIM_ALREADY_EXISTS;
    int64_t code = rc == PL_OK ? r->error_code : -1;
    free(r);
    if (ok || repeat_ok) {
        device_put(j, PL_JD_DONE, ok ? "initial eIM configured" : "initial eIM already ours");
        if (fatal(j))
            return j->s->fatal;
        go(j, PL_JOB_DONE, now);
        return PL_OK;
    }
    if (rc != PL_OK) {
        step_failed(j, now, "AddInitialEim response", rc);
        return PL_OK;
    }
    fail_device(j, now, "eUICC refused AddInitialEim (error %lld)", (long long)code);
    return PL_OK;
}

/* ------------------------------------------------- DONE / FAILED / WAIT ---- */

static void on_done(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)now;
    j->has_pkg = false;
    j->detail[0] = '\0';
    if (!j->finished || prev != PL_JOB_IDENTIFY) {
        j->n_done++;
        st_logf(j->s, j, PL_STATION_LOG_INFO, "done",
                "device done: profile installed, production closed%s",
                j->s->cfg->eim_request != NULL ? ", initial eIM set" : "");
    }
    j->finished = true;
}

static void on_failed(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)now;
    j->has_pkg = false;
    if (!j->finished || prev != PL_JOB_IDENTIFY) {
        j->n_failed++;
        st_logf(j->s, j, PL_STATION_LOG_ERROR, "failed", "device failed: %s", j->detail);
        if (j->has_dev)
            device_put(j, PL_JD_FAILED, j->detail);
    }
    j->finished = true;
}

static int act_rest(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)data;
    if (drain_abandon(j, ev, now))
        return PL_OK;
    if (j->s->cfg->once) {
        pl_fsm_timer_stop(&j->fsm); /* nothing more to do for this fixture */
        return PL_OK;
    }
    /* Probe: a new device replaces this one, or the same one is still seated. */
    j->probing = true;
    go(j, PL_JOB_IDENTIFY, now);
    return PL_OK;
}

static int act_wait(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)data;
    if (drain_abandon(j, ev, now))
        return PL_OK;
    go(j, PL_JOB_IDENTIFY, now);
    return PL_OK;
}

static void on_parked(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    struct st_job *j = J(fi);
    (void)prev;
    (void)now;
    fx_cancel(j);
    j->km_busy = false;
}

static int act_parked(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    (void)fi;
    (void)ev;
    (void)data;
    (void)now;
    return PL_OK; /* already parked: a repeated drain is harmless */
}

/* ------------------------------------------------------------ life cycle ---- */

static void fsm_log(void *user, const struct pl_fsm *fi, enum pl_fsm_log_level level,
                    const char *event, const char *msg)
{
    struct st_job *j = user;
    enum pl_station_log_level l = PL_STATION_LOG_DEBUG;
    (void)fi;
    if (level == PL_FSM_LOG_ERROR)
        l = PL_STATION_LOG_ERROR;
    else if (level == PL_FSM_LOG_WARN)
        l = PL_STATION_LOG_WARN;
    else if (strcmp(event, "transition") == 0)
        l = PL_STATION_LOG_INFO;
    if (strcmp(event, "transition") == 0) {
        unsigned st = j->fsm.state;
        if (j->probing && (st == PL_JOB_IDENTIFY || st == PL_JOB_IDLE || st == PL_JOB_DONE
                           || st == PL_JOB_FAILED)) {
            /* A probe that changes nothing (empty fixture, finished device still seated):
             * neither logged above debug nor audited, or it would add records every
             * T_PROBE for as long as the line runs. */
            st_logf(j->s, j, PL_STATION_LOG_DEBUG, event, "%s (probe)", msg);
            return;
        }
        if (j->probing) {
            /* The probe found work: its Identify is audited now, then the new state. */
            j->probing = false;
            if (j->probe_digest_valid)
                st_audit_exchange_digest(j->s, j, j->probe_digest, "identify");
            j->probe_digest_valid = false;
            st_audit_transition(j->s, j, NULL, pl_fsm_def_state_name(&job_def, PL_JOB_IDENTIFY),
                                "probe");
        }
        st_audit_transition(j->s, j, j->has_pkg ? j->pkg : NULL, pl_fsm_state_name(&j->fsm),
                            NULL);
    } else if (level <= PL_FSM_LOG_WARN) {
        j->s->n_refused_events++;
        st_audit_transition(j->s, j, j->has_pkg ? j->pkg : NULL, pl_fsm_state_name(&j->fsm), msg);
    }
    st_logf(j->s, j, l, event, "%s", msg);
}

int st_job_init(struct st_job *j, struct pl_station *s, unsigned idx,
                const struct pl_fixture_cfg *cfg)
{
    memset(j, 0, sizeof(*j));
    j->s = s;
    j->idx = idx;
    j->cfg = cfg;
    pl_fsm_init(&j->fsm, &job_def, PL_JOB_IDLE, &s->cfg->timers, j);
    j->fsm.log = fsm_log;
    j->fsm.log_user = j;
    return PL_OK;
}

void st_job_deinit(struct st_job *j)
{
    if (j == NULL)
        return;
    pl_fixture_link_free(j->link);
    j->link = NULL;
    free(j->fx_req);
    free(j->info);
    free(j->info_raw);
    free(j->token_req);
    free(j->receipt);
    memset(j, 0, sizeof(*j));
}

void st_job_start(struct st_job *j, uint64_t now)
{
    go(j, PL_JOB_IDENTIFY, now);
}

void st_job_event(struct st_job *j, unsigned ev, uint64_t now)
{
    struct st_ev e = {PL_OK, NULL, NULL};
    dispatch(j, ev, &e, now);
}

void st_job_tick(struct st_job *j, uint64_t now)
{
    /* Deferred events first (at most a few in a row: each moves the job on). */
    for (unsigned i = 0; i < 8 && j->pending && !fatal(j); i++) {
        struct st_ev e = {j->pending_rc, NULL, NULL};
        unsigned ev = j->pending_ev;
        j->pending = false;
        if (ev == PL_JEV_FX_FAIL)
            j->n_fx_fail++;
        dispatch(j, ev, &e, now);
    }
    if (!fatal(j) && j->fsm.timer != PL_FSM_NO_TIMER && now >= j->fsm.deadline) {
        struct st_ev e = {PL_ERR_TIMEOUT, NULL, NULL};
        pl_fsm_timer_stop(&j->fsm);
        dispatch(j, PL_JEV_TIMEOUT, &e, now);
    }
}

uint64_t st_job_deadline(const struct st_job *j)
{
    uint64_t d = UINT64_MAX;
    if (j->pending)
        return 0;
    if (j->fsm.timer != PL_FSM_NO_TIMER)
        d = j->fsm.deadline;
    if (j->link != NULL) {
        uint64_t l = pl_fixture_link_deadline(j->link);
        if (l < d)
            d = l;
    }
    return d;
}

int st_job_fd(const struct st_job *j)
{
    return j->link != NULL ? pl_fixture_link_fd(j->link) : -1;
}
