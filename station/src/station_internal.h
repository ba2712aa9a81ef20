/* Internal structures of the station daemon (station.c: loop, Key Maker, reporter,
 * metrics; job.c: the per-fixture job FSM). Never included outside station/src. */
#ifndef PROVLINE_STATION_INTERNAL_H
#define PROVLINE_STATION_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/fixtures/fixture_link.h"
#include "provline/kmclient/kmclient.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/es10f.h"
#include "provline/station/audit.h"
#include "provline/station/journal.h"
#include "provline/station/metrics.h"
#include "provline/station/station.h"

#define ST_SKIP_OTK_MAX 16u
#define ST_MAX_RETRIES 8u    /* failed attempts of one step before the device fails */
#define ST_RESEND_MAX 64u    /* journaled lease requests resent at start */

/* One event's payload. */
struct st_ev {
    int rc;                           /* transport / status code */
    provline_fixture_Msg *fx;         /* decoded fixture answer (FX_RSP / FX_ERROR) */
    struct pl_kmclient_done *km;      /* Key Maker completion (KM_*) */
};

struct st_job {
    struct pl_station *s;
    unsigned idx;
    const struct pl_fixture_cfg *cfg;
    struct pl_fixture_link *link;
    struct pl_fsm fsm;
    /* a deferred event (a send that failed at once), dispatched by the loop */
    bool pending;
    unsigned pending_ev;
    int pending_rc;
    /* fixture request in flight */
    bool fx_busy;
    uint64_t fx_req_id;
    unsigned fx_body;
    uint8_t *fx_req;
    size_t fx_req_len;
    /* Key Maker request in flight */
    bool km_busy;
    uint64_t km_id;
    uint64_t cp_seq;            /* audit checkpoint sent with the report in flight */
    uint8_t cp_h[PL_AUDIT_HASH_LEN];
    bool cp_valid;
    /* the device in the fixture */
    bool has_dev;
    uint8_t eid[16];
    bool factory_mode;
    uint8_t *info_raw;          /* GetIfppInfo 'FF73' (info borrows it) */
    size_t info_len;
    struct pl_es10f_info *info; /* decoded when factory_mode */
    bool uploaded;              /* the Key Maker accepted this device's OTKs (this session) */
    bool fetched;               /* FetchResults done since the last Identify */
    bool eim_repeat;            /* an AddInitialEim was sent before this one */
    bool receipt_gave_up;       /* the Key Maker did not answer the receipt this session */
    bool probing;               /* an Identify probe of an empty fixture or finished device */
    bool probe_digest_valid;
    uint8_t probe_digest[PL_AUDIT_HASH_LEN];
    uint16_t skip_otk[ST_SKIP_OTK_MAX];
    size_t n_skip;
    /* the package being worked on */
    bool has_pkg;
    uint8_t pkg[16];
    uint64_t token_counter;
    uint8_t *token_req;
    size_t token_len;
    uint8_t *receipt;
    size_t receipt_len;
    unsigned retries;
    bool finished;              /* reached DONE/FAILED for the device present */
    bool drain_seen;
    char detail[128];           /* why the device failed */
    /* counters for metrics */
    uint64_t n_loads, n_done, n_failed, n_fx_fail, n_fx_error, n_refused;
};

/* A journaled lease request resent at start, before any other request of this run. */
struct st_resend {
    bool busy;
    uint64_t km_id;
    uint8_t eid[16];
    uint16_t otk;
};

struct pl_station {
    const struct pl_station_config *cfg;
    pl_station_log_fn log;
    void *log_user;
    struct pl_journal *j;
    struct pl_audit *audit;
    struct pl_kmclient *km;
    struct pl_metrics *metrics;
    struct pl_rng rng;
    size_t n_jobs;
    struct st_job *jobs;
    bool draining;
    uint64_t drain_deadline;
    int fatal;                  /* first journal/audit failure: the loop stops */
    /* the background reporter: results whose device is not in any fixture */
    bool bg_busy;
    uint64_t bg_km_id;
    uint8_t bg_pkg[16];
    uint64_t bg_next;
    uint64_t saved_seq, saved_seq_ack; /* last values written to the journal */
    uint64_t bg_cp_seq;
    uint8_t bg_cp_h[PL_AUDIT_HASH_LEN];
    bool bg_cp_valid;
    /* journaled lease requests, resent first at start */
    size_t n_resend;
    struct st_resend resend[ST_RESEND_MAX];
    /* counters */
    uint64_t n_pir_success, n_pir_error, n_reports, n_released, n_km_fail, n_refused_events;
    uint64_t n_cp_signed, n_cp_unsigned; /* audit checkpoints recorded (docs/audit-trail.md §4) */
};

/* ---- station.c services for jobs ---- */
void st_logf(struct pl_station *s, const struct st_job *j, enum pl_station_log_level lvl,
             const char *event, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Records a fatal journal/audit failure (the loop stops) and logs it. Returns rc. */
int st_fatal(struct pl_station *s, const struct st_job *j, int rc, const char *what);
/* Audit helpers: failures are fatal. */
void st_audit_transition(struct pl_station *s, const struct st_job *j, const uint8_t *pkg,
                         const char *state, const char *detail);
void st_audit_exchange(struct pl_station *s, const struct st_job *j, const uint8_t *req,
                       size_t req_len, const uint8_t *rsp, size_t rsp_len, const char *what);
/* The same with a digest already computed. */
void st_audit_exchange_digest(struct pl_station *s, const struct st_job *j,
                              const uint8_t digest[PL_AUDIT_HASH_LEN], const char *what);
/* Unix seconds (wall clock). */
uint64_t st_unix_now(void);
/* A fresh pinned identity for a Key Maker request that is journaled before it leaves. */
PL_MUST_CHECK int st_km_ident(struct pl_station *s, struct pl_kmclient_ident *id);
/* Submits a just-in-time LeaseRequest for (eid, otk) with the journaled identity id. */
PL_MUST_CHECK int st_lease_submit(struct pl_station *s, const uint8_t eid[16], uint16_t otk,
                                  const struct pl_kmclient_ident *id, uint64_t tag, uint64_t *km_id);
/* True while the start-up resend of eid's journaled lease request is in flight. */
bool st_lease_resend_busy(const struct pl_station *s, const uint8_t eid[16]);
/* Journals every package of a Lease reply and acknowledges them. PL_OK or a fatal error. */
PL_MUST_CHECK int st_lease_reply(struct pl_station *s, const provline_keymaker_Lease *l);
/* Journals the highest station seq the client assigned (after every submit). */
void st_km_seq_save(struct pl_station *s);
/* Journals a package a Lease delivered (hygiene checks, ICCID from '88', sealed file). */
PL_MUST_CHECK int st_journal_package(struct pl_station *s, const struct pl_kmclient_pkg *p,
                                     bool prefetched);
/* True if a job or the reporter works on package id right now. */
bool st_claimed(const struct pl_station *s, const uint8_t id[16], const struct st_job *except);
/* Builds the single-entry Report of a journaled RESULT/REPORTED row and submits it with its
 * journaled identity (a new one is journaled first). */
PL_MUST_CHECK int st_report_submit(struct pl_station *s, const struct st_job *j,
                                   const struct pl_jpkg *row, uint64_t tag, uint64_t *id,
                                   uint64_t *cp_seq, uint8_t cp_h[PL_AUDIT_HASH_LEN],
                                   bool *cp_valid);
/* Applies a ReportAck to the journal (ACKED, then the purge). */
PL_MUST_CHECK int st_report_done(struct pl_station *s, const struct st_job *j,
                                 const uint8_t pkg[16], const struct pl_kmclient_done *d,
                                 uint64_t cp_seq, const uint8_t *cp_h, bool cp_valid);

/* ---- job.c ---- */
PL_MUST_CHECK int st_job_init(struct st_job *j, struct pl_station *s, unsigned idx,
                              const struct pl_fixture_cfg *cfg);
void st_job_deinit(struct st_job *j);
/* Starts the job (recovery of the journal happens through the first Identify). */
void st_job_start(struct st_job *j, uint64_t now);
/* Link I/O + completion of the fixture request in flight. */
void st_job_poll_link(struct st_job *j, uint64_t now);
/* A Key Maker completion for this job (d borrowed). */
void st_job_km_done(struct st_job *j, struct pl_kmclient_done *d, uint64_t now);
/* Timers and deferred events. */
void st_job_tick(struct st_job *j, uint64_t now);
/* The earliest time the job needs the loop (timer, link deadline). */
uint64_t st_job_deadline(const struct st_job *j);
int st_job_fd(const struct st_job *j);
void st_job_event(struct st_job *j, unsigned ev, uint64_t now);

#endif
