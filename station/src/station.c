/* provline-station's event loop and its shared services: logging, the audit trail, the Key
 * Maker client and the routing of its completions, the journaling of leased packages, the
 * reports, the background reporter, the drain, the metrics.
 *
 * Sources: ARCHITECTURE.md §2, §4-§7; reference/IFPP.md §6.3 (journal, audit head in every
 * report, NotificationSent only after REPORT_ACK), §7 cases 9, 20, 23;
 * docs/station-keymaker-protocol.md §4 (identical resends, sequence numbers), §5.3-§5.5;
 * docs/audit-trail.md (checkpoints); POSIX.1-2017 poll(). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provline/protocol/hex.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/secret.h"
#include "provline/station/pkginfo.h"
#include "station_internal.h"

#define BG_TAG (UINT64_C(1) << 62)
#define RESEND_TAG (UINT64_C(1) << 61) /* | index in s->resend */
#define POLL_CAP_MS 200 /* the stop flag is looked at least this often */

/* ---------------------------------------------------------------- logging ---- */

static void hex_or_dash(const uint8_t *p, size_t n, bool has, char *out, size_t cap)
{
    if (!has || pl_hex_encode(p, n, out, cap) != PL_OK)
        snprintf(out, cap, "-");
}

void st_logf(struct pl_station *s, const struct st_job *j, enum pl_station_log_level lvl,
             const char *event, const char *fmt, ...)
{
    char msg[400], esc[800], line[1100], eid[33], pkg[33];
    size_t k = 0;
    va_list ap;

    if (s->log == NULL || lvl > s->cfg->log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* msg is quoted: escape quotes and backslashes, replace control bytes. */
    for (size_t i = 0; msg[i] != '\0' && k + 2 < sizeof(esc); i++) {
        unsigned char ch = (unsigned char)msg[i];
        if (ch == '"' || ch == '\\')
            esc[k++] = '\\';
        esc[k++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    esc[k] = '\0';
    hex_or_dash(j != NULL ? j->eid : NULL, 16, j != NULL && j->has_dev, eid, sizeof(eid));
    hex_or_dash(j != NULL ? j->pkg : NULL, 16, j != NULL && j->has_pkg, pkg, sizeof(pkg));
    snprintf(line, sizeof(line), "fixture=%s eid=%s pkg=%s state=%s event=%s msg=\"%s\"",
             j != NULL ? j->cfg->name : "-", eid, pkg,
             j != NULL ? pl_fsm_state_name(&j->fsm) : "-", event, esc);
    s->log(s->log_user, lvl, line);
}

int st_fatal(struct pl_station *s, const struct st_job *j, int rc, const char *what)
{
    if (s->fatal == 0)
        s->fatal = rc != PL_OK ? rc : PL_ERR_INTERNAL;
    st_logf(s, j, PL_STATION_LOG_ERROR, "fatal", "%s failed: %s; the station stops", what,
            pl_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------------ audit ---- */

void st_audit_transition(struct pl_station *s, const struct st_job *j, const uint8_t *pkg,
                         const char *state, const char *detail)
{
    char clean[PL_AUDIT_DETAIL_MAX];
    size_t k = 0;
    int rc;
    if (s->fatal != 0)
        return;
    if (detail != NULL) {
        for (size_t i = 0; detail[i] != '\0' && k + 1 < sizeof(clean); i++) {
            unsigned char ch = (unsigned char)detail[i];
            clean[k++] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
        }
    }
    clean[k] = '\0';
    rc = pl_audit_transition(s->audit, j != NULL ? j->cfg->name : NULL,
                             j != NULL && j->has_dev ? j->eid : NULL, pkg, state,
                             detail != NULL ? clean : NULL);
    if (rc != PL_OK)
        st_fatal(s, j, rc, "audit append");
}

void st_audit_exchange_digest(struct pl_station *s, const struct st_job *j,
                              const uint8_t digest[PL_AUDIT_HASH_LEN], const char *what)
{
    int rc;
    if (s->fatal != 0)
        return;
    rc = pl_audit_apdu(s->audit, j != NULL ? j->cfg->name : NULL,
                       j != NULL && j->has_dev ? j->eid : NULL,
                       j != NULL && j->has_pkg ? j->pkg : NULL, digest, what);
    if (rc != PL_OK)
        st_fatal(s, j, rc, "audit append");
}

void st_audit_exchange(struct pl_station *s, const struct st_job *j, const uint8_t *req,
                       size_t req_len, const uint8_t *rsp, size_t rsp_len, const char *what)
{
    uint8_t digest[PL_AUDIT_HASH_LEN];
    struct pl_iov iov[2] = {{req, req_len}, {rsp, rsp_len}};
    int rc;
    if (s->fatal != 0)
        return;
    if ((rc = pl_sha256_iov(iov, 2, digest)) != PL_OK) {
        st_fatal(s, j, rc, "audit digest");
        return;
    }
    st_audit_exchange_digest(s, j, digest, what);
}

uint64_t st_unix_now(void)
{
    return pl_clock_realtime_ms(NULL) / 1000u;
}

/* -------------------------------------------------------------- Key Maker ---- */

int st_km_ident(struct pl_station *s, struct pl_kmclient_ident *id)
{
    uint64_t last = 0;
    int rc = s->rng.fill(s->rng.user, id->msg_id, sizeof(id->msg_id));
    if (rc != PL_OK)
        return rc;
    if ((rc = pl_journal_meta_get(s->j, "last_seq", &last)) != PL_OK)
        return rc;
    if (pl_kmclient_last_seq(s->km) > last)
        last = pl_kmclient_last_seq(s->km);
    id->seq = last + 1u;
    if ((rc = pl_journal_meta_raise(s->j, "last_seq", id->seq)) == PL_OK && id->seq > s->saved_seq)
        s->saved_seq = id->seq;
    return rc;
}

/* Writes only what moved: a journal write is an fsync. */
void st_km_seq_save(struct pl_station *s)
{
    uint64_t seq = pl_kmclient_last_seq(s->km), ack = pl_kmclient_last_seq_ack(s->km);
    int rc = PL_OK;
    if (seq > s->saved_seq && (rc = pl_journal_meta_raise(s->j, "last_seq", seq)) == PL_OK)
        s->saved_seq = seq;
    if (rc == PL_OK && ack > s->saved_seq_ack
        && (rc = pl_journal_meta_raise(s->j, "last_seq_ack", ack)) == PL_OK)
        s->saved_seq_ack = ack;
    if (rc != PL_OK)
        st_fatal(s, NULL, rc, "journal seq");
}


int st_journal_package(struct pl_station *s, const struct pl_kmclient_pkg *p, bool prefetched)
{
    struct pl_ifpp_pkg *env = malloc(sizeof(*env));
    struct pl_jpkg *row = calloc(1, sizeof(*row));
    int rc = PL_ERR_INTERNAL;

    if (env == NULL || row == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    memcpy(row->package_id, p->package_id, 16);
    memcpy(row->lease_id, p->lease_id, 16);
    memcpy(row->eid, p->eid, 16);
    row->otk_id = p->otk_id;
    memcpy(row->tid, p->transaction_id, p->tid_len);
    row->tid_len = p->tid_len;
    row->lease_expiry = p->expiry;
    row->prefetched = prefetched;
    /* The envelope's routing fields and the '88' ICCID (readable, MAC-only). A package that
     * does not decode is journaled all the same (it was issued to this station) and is
     * released by the load check. */
    if (pl_ifpp_pkg_decode(p->envelope, p->envelope_len, env) == PL_OK) {
        row->not_after = env->not_after;
        snprintf(row->batch_id, sizeof(row->batch_id), "%s", env->batch_id);
        if (pl_pkginfo_iccid(env->bpp, env->bpp_len, row->iccid) == PL_OK) {
            row->has_iccid = true;
            if (memcmp(row->iccid, p->iccid, sizeof(row->iccid)) != 0)
                st_logf(s, NULL, PL_STATION_LOG_WARN, "iccid_mismatch",
                        "the Lease's ICCID differs from the package's StoreMetadata");
        }
    } else {
        st_logf(s, NULL, PL_STATION_LOG_WARN, "envelope_bad",
                "a leased envelope does not decode; it will be released");
    }
    rc = pl_journal_lease(s->j, row, p->envelope, p->envelope_len);
    if (rc == PL_ERR_EXISTS)
        goto out;
    if (rc != PL_OK) {
        st_fatal(s, NULL, rc, "journal lease");
        goto out;
    }
    {
        char pkg[33];
        hex_or_dash(p->package_id, 16, true, pkg, sizeof(pkg));
        st_logf(s, NULL, PL_STATION_LOG_INFO, "leased", "package %s otkId %u journaled (%s)", pkg,
                p->otk_id, prefetched ? "prefetch" : "just in time");
    }
    rc = pl_audit_transition(s->audit, NULL, p->eid, p->package_id,
                             pl_journal_state_name(PL_J_LEASED), prefetched ? "prefetch" : "jit");
    if (rc != PL_OK)
        st_fatal(s, NULL, rc, "audit append");
out:
    free(env);
    free(row);
    return rc;
}

int st_lease_submit(struct pl_station *s, const uint8_t eid[16], uint16_t otk,
                    const struct pl_kmclient_ident *id, uint64_t tag, uint64_t *km_id)
{
    provline_keymaker_Msg *m = calloc(1, sizeof(*m));
    int rc;
    if (m == NULL)
        return PL_ERR_NOMEM;
    pl_km_msg_init(m);
    m->which_body = PL_KM_LEASE_REQUEST;
    m->body.lease_request.mode = provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME;
    m->body.lease_request.otk_id = otk;
    if ((rc = PL_KM_SET_BYTES(m->body.lease_request.eid, eid, 16)) == PL_OK)
        rc = pl_kmclient_submit(s->km, m, tag, id, km_id, NULL);
    pl_km_msg_release(m);
    free(m);
    if (rc == PL_OK)
        st_km_seq_save(s);
    return rc;
}

bool st_lease_resend_busy(const struct pl_station *s, const uint8_t eid[16])
{
    for (size_t i = 0; i < s->n_resend; i++)
        if (s->resend[i].busy && memcmp(s->resend[i].eid, eid, 16) == 0)
            return true;
    return false;
}

int st_lease_reply(struct pl_station *s, const provline_keymaker_Lease *l)
{
    uint8_t ids[8 * 16];
    size_t n_ids = 0;
    int rc = PL_OK;
    for (size_t i = 0; i < l->packages_count && i < 8; i++) {
        struct pl_kmclient_pkg p;
        if ((rc = pl_kmclient_pkg_from_lease(l, i, &p)) != PL_OK)
            return rc;
        rc = st_journal_package(s, &p, false);
        if (rc == PL_OK || rc == PL_ERR_EXISTS)
            memcpy(ids + 16 * n_ids++, p.package_id, 16);
        pl_kmclient_pkg_free(&p);
        if (s->fatal != 0)
            return s->fatal;
    }
    /* Journaled durably: acknowledge (no state change at the Key Maker; fire and forget). */
    if (n_ids > 0 && pl_kmclient_send_ack(s->km, l->lease_id.bytes, ids, n_ids, 0, NULL) == PL_OK)
        st_km_seq_save(s);
    return PL_OK;
}

/* Journaled lease requests whose answer a crash may have lost go out first, before any
 * other request of this run takes a higher sequence number (a request that reached the Key
 * Maker is answered from its record; one that never did is processed now). */
static int resend_cb(void *user, const struct pl_jlease_req *r)
{
    struct pl_station *s = user;
    struct pl_kmclient_ident id;
    struct st_resend *x;
    int rc;
    if (s->n_resend >= ST_RESEND_MAX)
        return 0; /* the jobs resend the rest */
    x = &s->resend[s->n_resend];
    memcpy(id.msg_id, r->msg_id, sizeof(id.msg_id));
    id.seq = r->seq;
    rc = st_lease_submit(s, r->eid, r->otk_id, &id, RESEND_TAG | s->n_resend, &x->km_id);
    if (rc != PL_OK)
        return 0;
    memcpy(x->eid, r->eid, 16);
    x->otk = r->otk_id;
    x->busy = true;
    s->n_resend++;
    st_logf(s, NULL, PL_STATION_LOG_INFO, "lease_resend",
            "resending a journaled LeaseRequest (otkId %u, seq %llu) before anything else",
            r->otk_id, (unsigned long long)r->seq);
    return 0;
}

static void resend_done(struct pl_station *s, size_t idx, struct pl_kmclient_done *d)
{
    struct st_resend *x;
    int rc;
    if (idx >= s->n_resend)
        return;
    x = &s->resend[idx];
    if (!x->busy || d->id != x->km_id)
        return;
    x->busy = false;
    if (d->status == PL_OK && d->reply->body.lease.packages_count == 0) {
        /* An empty Lease is an answer too (as in the job's act_lease): settled. */
        if ((rc = pl_journal_lease_req_del(s->j, x->eid, x->otk)) != PL_OK)
            st_fatal(s, NULL, rc, "journal lease request");
    } else if (d->status == PL_OK) {
        if ((rc = st_lease_reply(s, &d->reply->body.lease)) != PL_OK && s->fatal == 0)
            st_logf(s, NULL, PL_STATION_LOG_WARN, "lease_copy", "%s", pl_strerror(rc));
    } else if (d->status == PL_ERR_REMOTE) {
        /* The recorded answer to that request: it is settled. */
        st_logf(s, NULL, PL_STATION_LOG_WARN, "lease_refused",
                "journaled LeaseRequest for otkId %u refused: %s", x->otk,
                pl_km_error_name(d->km_error));
        if ((rc = pl_journal_lease_req_del(s->j, x->eid, x->otk)) != PL_OK)
            st_fatal(s, NULL, rc, "journal lease request");
    } else {
        s->n_km_fail++; /* kept: the device's job resends it */
    }
}

/* The kmclient's prefetch journal hook: LEASED before the package is acknowledged. */
static int prefetch_journal(void *user, const struct pl_kmclient_pkg *pkg)
{
    struct pl_station *s = user;
    int rc = st_journal_package(s, pkg, true);
    return rc == PL_ERR_EXISTS ? PL_OK : rc;
}

bool st_claimed(const struct pl_station *s, const uint8_t id[16], const struct st_job *except)
{
    if (s->bg_busy && memcmp(s->bg_pkg, id, 16) == 0)
        return true;
    for (size_t i = 0; i < s->n_jobs; i++) {
        const struct st_job *j = &s->jobs[i];
        if (j == except || !j->has_pkg || memcmp(j->pkg, id, 16) != 0)
            continue;
        if (j->fsm.state != PL_JOB_IDLE && j->fsm.state != PL_JOB_DONE
            && j->fsm.state != PL_JOB_FAILED && j->fsm.state != PL_JOB_PARKED)
            return true;
    }
    return false;
}

int st_report_submit(struct pl_station *s, const struct st_job *j, const struct pl_jpkg *row,
                     uint64_t tag, uint64_t *id, uint64_t *cp_seq, uint8_t cp_h[PL_AUDIT_HASH_LEN],
                     bool *cp_valid)
{
    provline_keymaker_ReportEntry *e = calloc(1, sizeof(*e));
    struct pl_kmclient_ident ident;
    uint8_t audit[PL_AUDIT_HASH_LEN];
    provline_keymaker_Msg *m = NULL;
    int rc = PL_ERR_INTERNAL;

    *cp_valid = false;
    if (e == NULL)
        return PL_ERR_NOMEM;
    if ((rc = PL_KM_SET_BYTES(e->package_id, row->package_id, 16)) != PL_OK
        || (rc = PL_KM_SET_BYTES(e->transaction_id, row->tid, row->tid_len)) != PL_OK
        || (rc = PL_KM_SET_BYTES(e->eid, row->eid, 16)) != PL_OK)
        goto out;
    if (row->outcome == PL_JO_PIR && row->pir_len <= sizeof(e->outcome.pir.bytes)) {
        e->which_outcome = provline_keymaker_ReportEntry_pir_tag;
        if ((rc = PL_KM_SET_BYTES(e->outcome.pir, row->pir, row->pir_len)) != PL_OK)
            goto out;
    } else if (row->outcome == PL_JO_RELEASED) {
        e->which_outcome = provline_keymaker_ReportEntry_released_tag;
        e->outcome.released = true;
    } else {
        e->which_outcome = provline_keymaker_ReportEntry_fpa_error_tag;
        e->outcome.fpa_error.code = row->outcome == PL_JO_PIR ? PL_JFPA_PIR_TOO_LARGE
                                                              : row->fpa_code;
        pl_km_set_str(e->outcome.fpa_error.detail, sizeof(e->outcome.fpa_error.detail),
                      row->outcome == PL_JO_PIR ? "PIR larger than a report entry" : row->detail);
    }
    if (row->state == PL_J_REPORTED && row->has_report_ident) {
        /* Resend the journaled request byte for byte: same msg_id, seq and audit head. */
        memcpy(ident.msg_id, row->report_msg_id, sizeof(ident.msg_id));
        ident.seq = row->report_seq;
        memcpy(audit, row->report_audit, sizeof(audit));
        if (!row->has_report_audit)
            memset(audit, 0, sizeof(audit));
        /* The head's seq is a point of the chain: find it again to ask for the same
         * checkpoint (docs/audit-trail.md §4). A head the trail no longer holds (purged
         * below it) is sent as in protocol v1: unsigned. */
        else if (pl_audit_find(s->audit, audit, cp_seq) == PL_OK) {
            memcpy(cp_h, audit, PL_AUDIT_HASH_LEN);
            *cp_valid = true;
        }
    } else {
        /* The audit head goes with the report (IFPP.md §6.3); journal it with the identity
         * before the bytes leave. */
        if ((rc = pl_audit_checkpoint(s->audit, cp_seq, audit)) != PL_OK) {
            st_fatal(s, j, rc, "audit checkpoint");
            goto out;
        }
        memcpy(cp_h, audit, PL_AUDIT_HASH_LEN);
        *cp_valid = true;
        if ((rc = st_km_ident(s, &ident)) != PL_OK) {
            st_fatal(s, j, rc, "journal seq");
            goto out;
        }
        if ((rc = pl_journal_reported(s->j, row->package_id, ident.msg_id, ident.seq, audit))
            != PL_OK) {
            st_fatal(s, j, rc, "journal reported");
            goto out;
        }
        rc = pl_audit_transition(s->audit, j != NULL ? j->cfg->name : NULL, row->eid,
                                 row->package_id, pl_journal_state_name(PL_J_REPORTED),
                                 pl_journal_outcome_name(row->outcome));
        if (rc != PL_OK) {
            st_fatal(s, j, rc, "audit append");
            goto out;
        }
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    pl_km_msg_init(m);
    m->which_body = PL_KM_REPORT;
    m->body.report.entries_count = 1;
    m->body.report.entries[0] = *e;
    if (*cp_valid) {
        /* Protocol v2: ask the Key Maker to sign (chain id, seq, head). */
        struct pl_km_audit_head head;
        pl_audit_chain_id(s->audit, head.chain_id);
        head.seq = *cp_seq;
        memcpy(head.h, audit, sizeof(head.h));
        rc = pl_km_report_set_audit(&m->body.report, &head);
    } else {
        rc = PL_KM_SET_BYTES(m->body.report.audit_head, audit, sizeof(audit));
    }
    if (rc != PL_OK)
        goto out;
    rc = pl_kmclient_submit(s->km, m, tag, &ident, id, NULL);
    if (rc == PL_OK) {
        s->n_reports++;
        st_km_seq_save(s);
        st_logf(s, j, PL_STATION_LOG_INFO, "report", "Report (%s), seq %llu",
                pl_journal_outcome_name(row->outcome), (unsigned long long)ident.seq);
    }
out:
    if (m != NULL) {
        pl_km_msg_release(m);
        free(m);
    }
    free(e);
    return rc;
}

/* A ReportAck's AuditCheckpoint into the trail (docs/audit-trail.md §4). */
static int record_signed_checkpoint(struct pl_station *s,
                                    const provline_keymaker_AuditCheckpoint *k)
{
    struct pl_audit_signed_checkpoint cp;

    if (k->station_key.size != sizeof(cp.station_key) || k->chain_id.size != sizeof(cp.chain_id)
        || k->head.size != sizeof(cp.h) || k->signature.size != sizeof(cp.sig))
        return PL_ERR_MALFORMED;
    memcpy(cp.station_key, k->station_key.bytes, sizeof(cp.station_key));
    memcpy(cp.chain_id, k->chain_id.bytes, sizeof(cp.chain_id));
    cp.seq = k->seq;
    memcpy(cp.h, k->head.bytes, sizeof(cp.h));
    memcpy(cp.sig, k->signature.bytes, sizeof(cp.sig));
    /* No key here: the client verified the signature with checkpoint_certificate and removed
     * a checkpoint that failed (pl_kmclient_config.checkpoint_cert_file). */
    return pl_audit_record_signed_checkpoint(s->audit, &cp, NULL);
}

int st_report_done(struct pl_station *s, const struct st_job *j, const uint8_t pkg[16],
                   const struct pl_kmclient_done *d, uint64_t cp_seq, const uint8_t *cp_h,
                   bool cp_valid)
{
    const provline_keymaker_ReportAck *a = &d->reply->body.report_ack;
    const provline_keymaker_EntryResult *r = NULL;
    int rc;

    for (size_t i = 0; i < a->results_count; i++)
        if (a->results[i].package_id.size == 16 && memcmp(a->results[i].package_id.bytes, pkg, 16) == 0)
            r = &a->results[i];
    if (r == NULL)
        return PL_ERR_MALFORMED;
    if ((rc = pl_journal_acked(s->j, pkg, r->accepted, r->code, r->state)) != PL_OK)
        return st_fatal(s, j, rc, "journal acked");
    st_logf(s, j, r->accepted ? PL_STATION_LOG_INFO : PL_STATION_LOG_WARN, "report_ack",
            "Key Maker %s the report: package %s%s%s", r->accepted ? "accepted" : "refused",
            pl_km_state_name(r->state), r->accepted ? "" : ", ",
            r->accepted ? "" : pl_km_error_name(r->code));
    rc = pl_audit_transition(s->audit, j != NULL ? j->cfg->name : NULL, NULL, pkg,
                             pl_journal_state_name(PL_J_ACKED), pl_km_state_name(r->state));
    if (rc != PL_OK)
        return st_fatal(s, j, rc, "audit append");
    /* The Key Maker saw (seq, h): chain its signed checkpoint (protocol v2; the client
     * already removed one whose signature fails), or its bare acknowledgement (v1). */
    if (cp_valid && cp_h != NULL) {
        if (a->has_checkpoint) {
            rc = record_signed_checkpoint(s, &a->checkpoint);
            if (rc == PL_OK)
                s->n_cp_signed++;
        } else {
            if (a->checkpoint_refused != 0)
                st_logf(s, j, PL_STATION_LOG_WARN, "checkpoint", "Key Maker refused to sign: %s",
                        pl_km_error_name(a->checkpoint_refused));
            rc = pl_audit_record_checkpoint(s->audit, cp_seq, cp_h, NULL, 0);
            if (rc == PL_OK)
                s->n_cp_unsigned++;
        }
        if (rc != PL_OK && rc != PL_ERR_EXISTS)
            st_logf(s, j, PL_STATION_LOG_WARN, "checkpoint", "not recorded: %s", pl_strerror(rc));
    }
    /* Retention: the Key Maker acknowledged, the sealed bytes go. */
    if ((rc = pl_journal_purge(s->j, pkg)) != PL_OK)
        return st_fatal(s, j, rc, "purge");
    if ((rc = pl_audit_transition(s->audit, j != NULL ? j->cfg->name : NULL, NULL, pkg, "PURGED",
                                  "sealed package overwritten and unlinked")) != PL_OK)
        return st_fatal(s, j, rc, "audit append");
    return PL_OK;
}

/* ------------------------------------------------------ background reporter ---- */

struct bg_ctx {
    struct pl_station *s;
    bool found;
    struct pl_jpkg *row;
};

static bool eid_seated(const struct pl_station *s, const uint8_t eid[16])
{
    for (size_t i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].has_dev && memcmp(s->jobs[i].eid, eid, 16) == 0)
            return true;
    return false;
}

static int bg_pick(void *user, const struct pl_jpkg *row)
{
    struct bg_ctx *c = user;
    uint64_t margin = pl_timer_ms(&c->s->cfg->timers, PL_T_LEASE_MARGIN) / 1000u;
    bool expired_lease = row->state == PL_J_LEASED && row->lease_expiry < st_unix_now() + margin;

    if (st_claimed(c->s, row->package_id, NULL) || eid_seated(c->s, row->eid))
        return 0;
    if (row->state != PL_J_RESULT && row->state != PL_J_REPORTED && !expired_lease)
        return 0;
    *c->row = *row;
    c->found = true;
    return 1;
}

/* Results whose device is in no fixture (left, or the station restarted without it) are
 * still reported, and leases that ran out unused are released (IFPP.md §7 cases 9, 20):
 * nothing waits for a device that may never come back. */
static void bg_step(struct pl_station *s, uint64_t now)
{
    struct bg_ctx c = {s, false, NULL};
    int rc;

    if (s->bg_busy || now < s->bg_next || s->fatal != 0)
        return;
    s->bg_next = now + pl_timer_ms(&s->cfg->timers, PL_T_RETRY);
    c.row = malloc(sizeof(*c.row));
    if (c.row == NULL)
        return;
    rc = pl_journal_each(s->j, PL_J_MASK(PL_J_LEASED) | PL_J_MASK(PL_J_RESULT) | PL_J_MASK(PL_J_REPORTED),
                         NULL, NULL, bg_pick, &c);
    if (rc < 0) {
        st_fatal(s, NULL, rc, "journal scan");
        goto out;
    }
    if (!c.found)
        goto out;
    if (c.row->state == PL_J_LEASED) {
        if (s->draining)
            goto out;
        if ((rc = pl_journal_result_released(s->j, c.row->package_id, "lease expired unused"))
            != PL_OK) {
            st_fatal(s, NULL, rc, "journal release");
            goto out;
        }
        s->n_released++;
        {
            char pkg[33];
            hex_or_dash(c.row->package_id, 16, true, pkg, sizeof(pkg));
            st_logf(s, NULL, PL_STATION_LOG_WARN, "released",
                    "package %s: lease expired unused (its device is in no fixture)", pkg);
        }
        if ((rc = pl_journal_get(s->j, c.row->package_id, c.row)) != PL_OK) {
            st_fatal(s, NULL, rc, "journal read");
            goto out;
        }
    }
    memcpy(s->bg_pkg, c.row->package_id, 16);
    s->bg_busy = true;
    rc = st_report_submit(s, NULL, c.row, BG_TAG, &s->bg_km_id, &s->bg_cp_seq, s->bg_cp_h,
                          &s->bg_cp_valid);
    if (rc != PL_OK)
        s->bg_busy = false;
out:
    free(c.row);
}

static void bg_done(struct pl_station *s, struct pl_kmclient_done *d)
{
    if (!s->bg_busy || d->id != s->bg_km_id)
        return;
    s->bg_busy = false;
    if (d->status != PL_OK) {
        s->n_km_fail++;
        return; /* journaled as REPORTED: resent identically later */
    }
    if (st_report_done(s, NULL, s->bg_pkg, d, s->bg_cp_seq, s->bg_cp_h, s->bg_cp_valid) == PL_OK)
        s->bg_next = 0; /* more may be waiting */
}

/* ---------------------------------------------------------------- metrics ---- */

static int render(void *user, struct pl_wr *out)
{
    struct pl_station *s = user;
    struct pl_journal_counts c;
    char labels[128];
    int rc = pl_journal_counts(s->j, &c);
    if (rc != PL_OK)
        return rc;
    pl_metrics_header(out, "provline_station_up", "gauge", "1 while the station runs.");
    pl_metrics_value(out, "provline_station_up", NULL, 1);
    pl_metrics_header(out, "provline_station_draining", "gauge", "1 after SIGTERM.");
    pl_metrics_value(out, "provline_station_draining", NULL, s->draining ? 1 : 0);
    pl_metrics_header(out, "provline_station_keymaker_synced", "gauge",
                      "1 while the Key Maker session is synchronised (HelloAck).");
    pl_metrics_value(out, "provline_station_keymaker_synced", NULL, pl_kmclient_synced(s->km) ? 1 : 0);
    pl_metrics_header(out, "provline_station_packages", "gauge",
                      "Packages in the journal by journal state.");
    for (unsigned st = 1; st < PL_J_STATE_COUNT; st++) {
        snprintf(labels, sizeof(labels), "state=\"%s\"", pl_journal_state_name((int)st));
        pl_metrics_value(out, "provline_station_packages", labels, c.state[st]);
    }
    pl_metrics_header(out, "provline_station_packages_settled", "gauge",
                      "Reported packages by the Key Maker's answer.");
    pl_metrics_value(out, "provline_station_packages_settled", "result=\"installed\"", c.installed);
    pl_metrics_value(out, "provline_station_packages_settled", "result=\"failed\"", c.failed);
    pl_metrics_value(out, "provline_station_packages_settled", "result=\"possibly-used\"",
                     c.possibly_used);
    pl_metrics_value(out, "provline_station_packages_settled", "result=\"refused\"", c.refused);
    pl_metrics_header(out, "provline_station_packages_purged", "gauge",
                      "Sealed packages securely purged after the Key Maker's acknowledgement.");
    pl_metrics_value(out, "provline_station_packages_purged", NULL, c.purged);
    pl_metrics_header(out, "provline_station_devices", "gauge", "Devices by journal state.");
    for (unsigned st = 1; st < 8; st++) {
        snprintf(labels, sizeof(labels), "state=\"%s\"", pl_journal_device_state_name((int)st));
        pl_metrics_value(out, "provline_station_devices", labels, c.device[st]);
    }
    pl_metrics_header(out, "provline_station_fixture_state", "gauge",
                      "1 for the state each fixture's job is in.");
    for (size_t i = 0; i < s->n_jobs; i++) {
        snprintf(labels, sizeof(labels), "fixture=\"%s\",state=\"%s\"", s->jobs[i].cfg->name,
                 pl_fsm_state_name(&s->jobs[i].fsm));
        pl_metrics_value(out, "provline_station_fixture_state", labels, 1);
    }
    pl_metrics_header(out, "provline_station_loads_total", "counter",
                      "LoadPackage requests sent, per fixture.");
    for (size_t i = 0; i < s->n_jobs; i++) {
        snprintf(labels, sizeof(labels), "fixture=\"%s\"", s->jobs[i].cfg->name);
        pl_metrics_value(out, "provline_station_loads_total", labels, s->jobs[i].n_loads);
    }
    pl_metrics_header(out, "provline_station_devices_done_total", "counter",
                      "Devices finished, per fixture.");
    for (size_t i = 0; i < s->n_jobs; i++) {
        snprintf(labels, sizeof(labels), "fixture=\"%s\"", s->jobs[i].cfg->name);
        pl_metrics_value(out, "provline_station_devices_done_total", labels, s->jobs[i].n_done);
    }
    pl_metrics_header(out, "provline_station_devices_failed_total", "counter",
                      "Devices failed, per fixture.");
    for (size_t i = 0; i < s->n_jobs; i++) {
        snprintf(labels, sizeof(labels), "fixture=\"%s\"", s->jobs[i].cfg->name);
        pl_metrics_value(out, "provline_station_devices_failed_total", labels, s->jobs[i].n_failed);
    }
    pl_metrics_header(out, "provline_station_fixture_failures_total", "counter",
                      "Fixture requests that failed (transport) or were answered with an Error.");
    for (size_t i = 0; i < s->n_jobs; i++) {
        snprintf(labels, sizeof(labels), "fixture=\"%s\",kind=\"transport\"", s->jobs[i].cfg->name);
        pl_metrics_value(out, "provline_station_fixture_failures_total", labels, s->jobs[i].n_fx_fail);
        snprintf(labels, sizeof(labels), "fixture=\"%s\",kind=\"error\"", s->jobs[i].cfg->name);
        pl_metrics_value(out, "provline_station_fixture_failures_total", labels, s->jobs[i].n_fx_error);
    }
    pl_metrics_header(out, "provline_station_pir_total", "counter",
                      "eUICC-signed PIRs received (load answers and recovered ones).");
    pl_metrics_value(out, "provline_station_pir_total", "result=\"success\"", s->n_pir_success);
    pl_metrics_value(out, "provline_station_pir_total", "result=\"error\"", s->n_pir_error);
    pl_metrics_header(out, "provline_station_reports_total", "counter", "Reports sent.");
    pl_metrics_value(out, "provline_station_reports_total", NULL, s->n_reports);
    pl_metrics_header(out, "provline_station_released_total", "counter",
                      "Packages released unused (expired, wrong device, refused by checks).");
    pl_metrics_value(out, "provline_station_released_total", NULL, s->n_released);
    pl_metrics_header(out, "provline_station_keymaker_failures_total", "counter",
                      "Key Maker exchanges without a usable answer (timeouts, I/O).");
    pl_metrics_value(out, "provline_station_keymaker_failures_total", NULL, s->n_km_fail);
    struct pl_kmclient_stats ks;
    pl_kmclient_stats(s->km, &ks);
    pl_metrics_header(out, "provline_station_audit_checkpoints_total", "counter",
                      "Audit checkpoints recorded: signed by the Key Maker, unsigned (not "
                      "signed, or its signature rejected: then also counted as rejected).");
    pl_metrics_value(out, "provline_station_audit_checkpoints_total", "kind=\"signed\"",
                     s->n_cp_signed);
    pl_metrics_value(out, "provline_station_audit_checkpoints_total", "kind=\"unsigned\"",
                     s->n_cp_unsigned);
    pl_metrics_value(out, "provline_station_audit_checkpoints_total", "kind=\"rejected\"",
                     ks.checkpoints_rejected);
    pl_metrics_header(out, "provline_station_refused_events_total", "counter",
                      "Events a job state did not permit (logged and refused).");
    pl_metrics_value(out, "provline_station_refused_events_total", NULL, s->n_refused_events);
    return pl_wr_status(out);
}

/* ------------------------------------------------------------- life cycle ---- */

static void km_log(void *user, enum pl_kmclient_log_level level, const char *line)
{
    struct pl_station *s = user;
    enum pl_station_log_level l = (enum pl_station_log_level)level;
    if (s->log == NULL || l > s->cfg->log_level)
        return;
    char buf[1100];
    snprintf(buf, sizeof(buf), "fixture=- eid=- pkg=- state=- component=kmclient %s", line);
    s->log(s->log_user, l, buf);
}

static void audit_log(void *user, enum pl_audit_log_level level, const char *line)
{
    struct pl_station *s = user;
    enum pl_station_log_level l = (enum pl_station_log_level)level;
    if (s->log == NULL || l > s->cfg->log_level)
        return;
    char buf[1100];
    snprintf(buf, sizeof(buf), "fixture=- eid=- pkg=- state=- component=audit %s", line);
    s->log(s->log_user, l, buf);
}

/* DISPATCHED rows at start: LOADING was never journaled, so nothing of them left. */
static int undispatch_cb(void *user, const struct pl_jpkg *row)
{
    struct pl_station *s = user;
    int rc = pl_journal_undispatch(s->j, row->package_id, "restart: load never sent");
    if (rc == PL_OK)
        rc = pl_audit_transition(s->audit, row->fixture, row->eid, row->package_id,
                                 pl_journal_state_name(PL_J_LEASED), "restart: load never sent");
    return rc != PL_OK ? rc : 0;
}

static int add_candidates(struct pl_station *s)
{
    char line[256];
    FILE *f;
    if (s->cfg->prefetch_depth == 0 || s->cfg->expected_eids[0] == '\0')
        return PL_OK;
    f = fopen(s->cfg->expected_eids, "r");
    if (f == NULL)
        return PL_ERR_IO;
    while (fgets(line, sizeof(line), f) != NULL) {
        uint8_t eid[16];
        size_t n = 0;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (pl_hex_decode(line, eid, sizeof(eid), &n) != PL_OK || n != 16)
            continue;
        int rc = pl_kmclient_prefetch_add(s->km, eid);
        if (rc != PL_OK && rc != PL_ERR_EXISTS)
            break;
    }
    fclose(f);
    return PL_OK;
}

int pl_station_new(const struct pl_station_config *cfg, pl_station_log_fn log, void *log_user,
                   struct pl_station **out)
{
    struct pl_station *s;
    struct pl_kmclient_config kc;
    struct pl_audit_config ac;
    uint64_t last_seq = 0, last_ack = 0;
    int rc = PL_ERR_INTERNAL;

    *out = NULL;
    if (cfg == NULL || cfg->n_fixtures == 0)
        return PL_ERR_INVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PL_ERR_NOMEM;
    s->cfg = cfg;
    s->log = log;
    s->log_user = log_user;
    s->rng = PL_RNG_SYSTEM;
    if ((rc = pl_journal_open(cfg->journal, cfg->packages, NULL, &s->j)) != PL_OK) {
        st_logf(s, NULL, PL_STATION_LOG_ERROR, "journal", "cannot open %s: %s", cfg->journal,
                pl_strerror(rc));
        goto out;
    }
    /* Who writes this journal: reports and the eIM batch name the station by it. */
    if ((rc = pl_journal_info_set(s->j, PL_J_INFO_STATION, cfg->station_id)) != PL_OK) {
        st_logf(s, NULL, PL_STATION_LOG_ERROR, "journal", "cannot record the station id: %s",
                pl_strerror(rc));
        goto out;
    }
    memset(&ac, 0, sizeof(ac));
    ac.path = cfg->audit;
    ac.log = audit_log;
    ac.log_user = s;
    if ((rc = pl_audit_open(&ac, &s->audit)) != PL_OK) {
        st_logf(s, NULL, PL_STATION_LOG_ERROR, "audit", "cannot open %s: %s", cfg->audit,
                pl_strerror(rc));
        goto out;
    }
    if ((rc = pl_journal_meta_get(s->j, "last_seq", &last_seq)) != PL_OK
        || (rc = pl_journal_meta_get(s->j, "last_seq_ack", &last_ack)) != PL_OK)
        goto out;
    s->saved_seq = last_seq;
    s->saved_seq_ack = last_ack;
    pl_kmclient_config_init(&kc);
    kc.endpoint = cfg->km_endpoint;
    kc.server_public_file = cfg->km_server_public;
    kc.secret_file = cfg->km_client_secret;
    kc.public_file = cfg->km_client_public[0] != '\0' ? cfg->km_client_public : NULL;
    kc.checkpoint_cert_file = cfg->km_checkpoint_cert[0] != '\0' ? cfg->km_checkpoint_cert : NULL;
    kc.station_id = cfg->station_id;
    kc.last_seq = last_seq;
    kc.last_seq_ack = last_ack;
    kc.attempt_ms = (uint32_t)pl_timer_ms(&cfg->timers, PL_T_KM_ATTEMPT);
    kc.deadline_ms = (uint32_t)pl_timer_ms(&cfg->timers, PL_T_KEYMAKER);
    kc.max_inflight = 8;
    kc.queue_max = 256;
    kc.prefetch_target = cfg->prefetch_depth;
    kc.journal = prefetch_journal;
    kc.journal_user = s;
    kc.log = km_log;
    kc.log_user = s;
    if ((rc = pl_kmclient_new(&kc, &s->km)) != PL_OK) {
        st_logf(s, NULL, PL_STATION_LOG_ERROR, "keymaker", "Key Maker client: %s",
                pl_strerror(rc));
        goto out;
    }
    if ((rc = add_candidates(s)) != PL_OK)
        goto out;
    if (cfg->metrics != PL_METRICS_OFF) {
        struct pl_metrics_config mc;
        memset(&mc, 0, sizeof(mc));
        if (cfg->metrics == PL_METRICS_TCP) {
            mc.host = cfg->metrics_host;
            mc.port = cfg->metrics_port;
        } else {
            mc.unix_path = cfg->metrics_unix;
        }
        mc.io_timeout_ms = (uint32_t)pl_timer_ms(&cfg->timers, PL_T_METRICS_IO);
        mc.render = render;
        mc.user = s;
        if ((rc = pl_metrics_new(&mc, &s->metrics)) != PL_OK) {
            st_logf(s, NULL, PL_STATION_LOG_ERROR, "metrics", "cannot listen: %s",
                    pl_strerror(rc));
            goto out;
        }
        if (cfg->metrics == PL_METRICS_TCP)
            st_logf(s, NULL, PL_STATION_LOG_INFO, "metrics_listening",
                    "Prometheus metrics on http://%s:%u/metrics", cfg->metrics_host,
                    (unsigned)pl_metrics_port(s->metrics));
        else
            st_logf(s, NULL, PL_STATION_LOG_INFO, "metrics_listening",
                    "Prometheus metrics on unix socket %s (GET /metrics)", cfg->metrics_unix);
    }
    s->jobs = calloc(cfg->n_fixtures, sizeof(*s->jobs));
    if (s->jobs == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_fixtures; i++) {
        if ((rc = st_job_init(&s->jobs[i], s, (unsigned)i, &cfg->fixtures[i])) != PL_OK)
            goto out;
        s->n_jobs++;
    }
    /* Recovery step 0: a package DISPATCHED but never LOADING goes back to the pool. The
     * rest of the recovery is per device: the first Identify of each device asks it for
     * its pending results before anything is resent. */
    if ((rc = pl_journal_each(s->j, PL_J_MASK(PL_J_DISPATCHED), NULL, NULL, undispatch_cb, s))
        != PL_OK)
        goto out;
    *out = s;
    return PL_OK;
out:
    pl_station_free(s);
    return rc;
}

void pl_station_free(struct pl_station *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_jobs; i++)
        st_job_deinit(&s->jobs[i]);
    free(s->jobs);
    pl_metrics_free(s->metrics);
    pl_kmclient_free(s->km);
    pl_audit_close(s->audit);
    pl_journal_close(s->j);
    free(s);
}

uint16_t pl_station_metrics_port(const struct pl_station *s)
{
    return s != NULL ? pl_metrics_port(s->metrics) : 0;
}

static void route_completions(struct pl_station *s, uint64_t now)
{
    struct pl_kmclient_done d;
    while (pl_kmclient_next(s->km, &d)) {
        if (d.tag == BG_TAG) {
            bg_done(s, &d);
        } else if ((d.tag & RESEND_TAG) != 0) {
            resend_done(s, (size_t)(d.tag & ~RESEND_TAG), &d);
        } else if (d.tag != 0) {
            uint64_t idx = (d.tag >> 32) - 1u;
            if (idx < s->n_jobs)
                st_job_km_done(&s->jobs[idx], &d, now);
        }
        pl_kmclient_done_free(&d);
    }
    /* Highest Key Maker seq processed (Hello.last_seq_ack after a restart). */
    st_km_seq_save(s);
}

static bool all_parked(const struct pl_station *s)
{
    for (size_t i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].fsm.state != PL_JOB_PARKED)
            return false;
    for (size_t i = 0; i < s->n_resend; i++)
        if (s->resend[i].busy)
            return false;
    return !s->bg_busy;
}

static bool all_finished(const struct pl_station *s)
{
    for (size_t i = 0; i < s->n_jobs; i++) {
        unsigned st = s->jobs[i].fsm.state;
        if (!s->jobs[i].finished || (st != PL_JOB_DONE && st != PL_JOB_FAILED))
            return false;
    }
    return true;
}

static void start_drain(struct pl_station *s, uint64_t now, const char *why)
{
    s->draining = true;
    s->drain_deadline = now + pl_timer_ms(&s->cfg->timers, PL_T_DRAIN);
    st_logf(s, NULL, PL_STATION_LOG_INFO, "drain", "%s: finishing loads in flight (T_DRAIN %llu ms)",
            why, (unsigned long long)pl_timer_ms(&s->cfg->timers, PL_T_DRAIN));
    for (size_t i = 0; i < s->n_jobs; i++)
        st_job_event(&s->jobs[i], PL_JEV_DRAIN, now);
}

int pl_station_run(struct pl_station *s, volatile sig_atomic_t *stop)
{
    struct pollfd *fds;
    size_t cap = s->n_jobs + 1u + PL_METRICS_POLLFDS;
    uint64_t now = pl_fixture_now_ms();
    bool drain_expired = false;
    int rc = PL_OK;

    fds = calloc(cap, sizeof(*fds));
    if (fds == NULL)
        return PL_ERR_NOMEM;
    st_logf(s, NULL, PL_STATION_LOG_INFO, "started", "%zu fixtures, Key Maker %s", s->n_jobs,
            s->cfg->km_endpoint);
    if ((rc = pl_journal_lease_req_each(s->j, resend_cb, s)) != PL_OK) {
        free(fds);
        return st_fatal(s, NULL, rc, "journal scan");
    }
    for (size_t i = 0; i < s->n_jobs; i++)
        st_job_start(&s->jobs[i], now);

    while (s->fatal == 0) {
        size_t n = 0, km_slot, metrics_slot;
        int kfd = -1;
        uint64_t deadline = UINT64_MAX;

        now = pl_fixture_now_ms();
        if (!s->draining && stop != NULL && *stop)
            start_drain(s, now, "SIGTERM");
        if (!s->draining && s->cfg->once && all_finished(s))
            start_drain(s, now, "every fixture finished (once)");
        if (s->draining) {
            /* Jobs that came to rest after the drain started park now. */
            for (size_t i = 0; i < s->n_jobs; i++) {
                unsigned st = s->jobs[i].fsm.state;
                if (st == PL_JOB_IDLE || st == PL_JOB_DONE || st == PL_JOB_FAILED
                    || st == PL_JOB_WAIT)
                    st_job_event(&s->jobs[i], PL_JEV_DRAIN, now);
            }
            if (!drain_expired && now >= s->drain_deadline) {
                drain_expired = true;
                for (size_t i = 0; i < s->n_jobs; i++)
                    st_job_event(&s->jobs[i], PL_JEV_DRAIN_EXPIRED, now);
                s->bg_busy = false;
                for (size_t i = 0; i < s->n_resend; i++)
                    s->resend[i].busy = false;
            }
            if (all_parked(s))
                break;
        }

        /* Work first: timers, deferred events, reporter. */
        for (size_t i = 0; i < s->n_jobs; i++)
            st_job_tick(&s->jobs[i], now);
        bg_step(s, now);
        if ((rc = pl_kmclient_poll(s->km)) != PL_OK)
            st_logf(s, NULL, PL_STATION_LOG_WARN, "keymaker_io", "%s", pl_strerror(rc));
        route_completions(s, now);
        if (s->fatal != 0)
            break;

        /* Then wait for I/O or the next deadline. */
        for (size_t i = 0; i < s->n_jobs; i++) {
            uint64_t d = st_job_deadline(&s->jobs[i]);
            int fd = st_job_fd(&s->jobs[i]);
            if (d < deadline)
                deadline = d;
            fds[n].fd = fd;
            fds[n].events = POLLIN;
            fds[n].revents = 0;
            n++;
        }
        km_slot = n;
        if (pl_kmclient_fd(s->km, &kfd) == PL_OK && kfd >= 0) {
            fds[n].fd = kfd;
            fds[n].events = POLLIN;
            fds[n].revents = 0;
            n++;
        }
        metrics_slot = n;
        n += pl_metrics_pollfds(s->metrics, fds + n, cap - n);
        if (pl_metrics_deadline(s->metrics) < deadline)
            deadline = pl_metrics_deadline(s->metrics);
        int km_to = pl_kmclient_timeout_ms(s->km);
        if (km_to >= 0 && now + (uint64_t)km_to < deadline)
            deadline = now + (uint64_t)km_to;
        if (s->draining && s->drain_deadline < deadline)
            deadline = s->drain_deadline;
        if (s->bg_next > now && s->bg_next < deadline)
            deadline = s->bg_next;
        int to = POLL_CAP_MS;
        if (deadline <= now)
            to = 0;
        else if (deadline - now < (uint64_t)POLL_CAP_MS)
            to = (int)(deadline - now);
        int pr = poll(fds, (nfds_t)n, to);
        if (pr < 0 && errno != EINTR) {
            rc = PL_ERR_IO;
            break;
        }
        now = pl_fixture_now_ms();
        for (size_t i = 0; i < s->n_jobs; i++)
            st_job_poll_link(&s->jobs[i], now);
        (void)km_slot;
        if (s->metrics != NULL && metrics_slot < n)
            pl_metrics_handle(s->metrics, fds + metrics_slot, n - metrics_slot, now);
    }
    free(fds);
    if (s->fatal != 0)
        return s->fatal;
    st_logf(s, NULL, PL_STATION_LOG_INFO, "stopped", "every fixture parked; journal and audit closed");
    return rc == PL_ERR_IO ? rc : PL_OK;
}
