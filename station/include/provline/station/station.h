/* provline-station: the untrusted line controller. One event loop (poll) drives every
 * fixture concurrently, each with its own table-driven job state machine
 *   identify -> collect OTKs (upload to the Key Maker) -> lease -> load -> result -> report
 *   -> notification sent -> close production (deletion token -> DeleteRemainingOtks ->
 *   receipt) -> initial eIM -> done / failed
 * over a write-ahead journal (journal.h), the audit hash chain (audit.h), the Key Maker
 * client (kmclient.h), the fixture links (fixture_link.h) and a metrics endpoint
 * (metrics.h).
 *
 * Sources: ARCHITECTURE.md §2 (trust model), §4 (the in-factory flow), §5 (invariants),
 * §7 (processes: SIGTERM, logs, metrics); reference/IFPP.md §6.3 (station), §7 cases 7-9,
 * 20, 22, 23 (failure matrix); reference/STYLE.md §7.3 rule 7 (table-driven FSM, named
 * timers); docs/station-keymaker-protocol.md; docs/fixture-protocol.md. Operator manual:
 * docs/station.8.md; configuration: docs/station.conf.5.md.
 *
 * The library never prints, reads the environment or exits: log lines go to the sink given
 * to pl_station_new, and the caller owns signals (it passes the flag a handler sets). */
#ifndef PROVLINE_STATION_STATION_H
#define PROVLINE_STATION_STATION_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/station/config.h"
#include "provline/station/fsm.h"

/* States of the per-fixture job (the FSM definition returned by pl_station_job_fsm). */
enum pl_job_state {
    PL_JOB_IDLE = 0,    /* no device known: probe with Identify every T_PROBE */
    PL_JOB_IDENTIFY,    /* Identify in flight (GetEID + GetIfppInfo) */
    PL_JOB_RECOVER,     /* FetchResults for journaled loads (before anything is resent) */
    PL_JOB_COLLECT,     /* OtkUpload of the device's signed OTKs to the Key Maker */
    PL_JOB_LEASE,       /* LeaseRequest (just in time) in flight */
    PL_JOB_LOAD,        /* LoadPackage in flight */
    PL_JOB_RESULT,      /* FetchResults after a load that returned no PIR */
    PL_JOB_REPORT,      /* Report in flight */
    PL_JOB_NOTIFY,      /* NotificationSent in flight */
    PL_JOB_TOKEN,       /* OtkDeletionTokenRequest in flight */
    PL_JOB_DELETE,      /* DeleteRemainingOtks in flight */
    PL_JOB_RECEIPT,     /* OtkDeletionReceipt in flight */
    PL_JOB_EIM,         /* ConfigureInitialEim (AddInitialEim) in flight */
    PL_JOB_DONE,        /* device finished: profile installed, OTKs deleted, eIM set */
    PL_JOB_FAILED,      /* device cannot be finished by this line */
    PL_JOB_WAIT,        /* back-off (T_RETRY) before the step is retried */
    PL_JOB_PARKED,      /* drained: nothing more until restart */
    PL_JOB_STATE_COUNT
};

enum pl_job_event {
    PL_JEV_TIMEOUT = 0,     /* the state's named timer expired */
    PL_JEV_FX_RSP,          /* the fixture answered with the expected response */
    PL_JEV_FX_ERROR,        /* the fixture answered with an Error */
    PL_JEV_FX_FAIL,         /* the fixture link failed or timed out */
    PL_JEV_KM_OK,           /* the Key Maker answered */
    PL_JEV_KM_REFUSED,      /* the Key Maker answered with an Error */
    PL_JEV_KM_FAIL,         /* no usable answer from the Key Maker (timeout, I/O) */
    PL_JEV_DRAIN,           /* SIGTERM: finish or park */
    PL_JEV_DRAIN_EXPIRED,   /* T_DRAIN passed: park now */
    PL_JEV_COUNT
};

/* The job FSM (states, accepted events, allowed next states, timers). */
const struct pl_fsm_def *pl_station_job_fsm(void);

typedef void (*pl_station_log_fn)(void *user, enum pl_station_log_level level, const char *line);

struct pl_station;

/* Opens the journal, the audit trail, the Key Maker client, the metrics endpoint and one
 * job per fixture (links are opened by the jobs and reopened as needed). Borrows cfg for
 * the station's life. PL_ERR_DB / PL_ERR_IO / PL_ERR_CONFIG / PL_ERR_STATE (audit trail
 * inconsistent). Returns owned *out (pl_station_free). */
PL_MUST_CHECK int pl_station_new(const struct pl_station_config *cfg, pl_station_log_fn log,
                                 void *log_user, struct pl_station **out);
void pl_station_free(struct pl_station *s); /* accepts NULL */

/* Runs the loop until *stop becomes non-zero and the drain finished (or T_DRAIN passed),
 * or, with cfg->once, until every fixture is done or failed. PL_OK on a clean end; a
 * negative error when the journal or the audit trail failed (the station stops: it never
 * acts without its write-ahead record). */
PL_MUST_CHECK int pl_station_run(struct pl_station *s, volatile sig_atomic_t *stop);

/* The metrics TCP port actually bound (0 when none / unix socket). */
uint16_t pl_station_metrics_port(const struct pl_station *s);

#endif
