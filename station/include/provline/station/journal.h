/* The station's write-ahead package journal: SQLite (WAL, synchronous=FULL), one row per
 * leased package and one transition record per state change, each committed (fsynced)
 * BEFORE the action it records; plus the device records of close production and the
 * identities of Key Maker requests that must be resent byte for byte after a restart.
 * Sealed packages (the IfppPackage envelopes as the Key Maker issued them) live as files in
 * the package directory and are purged (overwritten, fsynced, unlinked) once the Key Maker
 * acknowledged the package's report.
 *
 * Sources: reference/IFPP.md §6.3 (the durable per-package journal LEASED -> DISPATCHED
 * (fixture, eid_read) -> LOADING -> RESULT(raw) -> REPORTED -> ACKED, fsync per transition;
 * NotificationSent only after REPORT_ACK), §7 cases 7-9 and 20; ARCHITECTURE.md §2 (the
 * station stores only sealed bytes), §5 (write-ahead, recovery asks the eUICC first);
 * docs/station-keymaker-protocol.md §4 rule 4 (journal a request's identity, resend the
 * identical bytes), §6.3; DEPENDENCIES.md §9 (SQLite 3.40). Schema: docs/station.8.md.
 *
 * Every transition is checked against the table of allowed transitions (pl_journal_allowed)
 * inside its transaction: a caller bug can never move a package backwards past LOADING or
 * skip a state. Not thread-safe: one thread per struct pl_journal. */
#ifndef PROVLINE_STATION_JOURNAL_H
#define PROVLINE_STATION_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/clock.h"
#include "provline/protocol/err.h"

#define PL_J_ID_LEN 16u
#define PL_J_EID_LEN 16u
#define PL_J_TID_MAX 16u
#define PL_J_ICCID_LEN 10u
#define PL_J_PIR_MAX 4096u
#define PL_J_DETAIL_MAX 127u
#define PL_J_FIXTURE_MAX 31u
#define PL_J_ENVELOPE_MAX (64u * 1024u)
#define PL_J_RECEIPT_MAX 1024u
#define PL_J_CERT_MAX 4096u /* one DER certificate (the eIM's PL_EIM_CERT_MAX) */

/* Package states, in order (the numbers are stored). */
enum pl_jstate {
    PL_J_LEASED = 1,     /* journaled from a Lease; envelope file written */
    PL_J_DISPATCHED = 2, /* assigned to a fixture whose device's EID matched */
    PL_J_LOADING = 3,    /* LoadPackage about to leave: the package may be on the chip */
    PL_J_RESULT = 4,     /* outcome known: raw PIR, station-side error, or released */
    PL_J_REPORTED = 5,   /* Report journaled (msg id, seq) and being sent */
    PL_J_ACKED = 6,      /* ReportAck received */
    PL_J_NOTIFIED = 7,   /* NotificationSent done on the eUICC (PIR outcomes only) */
};
#define PL_J_STATE_COUNT 8u /* index 0 unused */
#define PL_J_MASK(s) (1u << (s))

enum pl_joutcome {
    PL_JO_NONE = 0,
    PL_JO_PIR = 1,       /* raw 'BF37' from the eUICC */
    PL_JO_FPA_ERROR = 2, /* station-side error, no PIR (code, detail) */
    PL_JO_RELEASED = 3,  /* never sent to a chip (expired, unused) */
};

/* Station-side error codes of FpaError reports (FpaError.code). */
enum pl_jfpa_code {
    PL_JFPA_UNKNOWN = 1,        /* the load may or may not have reached the chip, no PIR */
    PL_JFPA_DEVICE_GONE = 2,    /* the device left before its result could be fetched */
    PL_JFPA_LINK = 3,           /* the fixture link failed during the load */
    PL_JFPA_CARD = 4,           /* the eUICC failed a segment without a PIR */
    PL_JFPA_EXPIRED = 5,        /* lease or notAfter passed before the load started */
    PL_JFPA_PIR_TOO_LARGE = 6,  /* the PIR does not fit a report */
};

/* One package row (copies). */
struct pl_jpkg {
    uint8_t package_id[PL_J_ID_LEN];
    uint8_t lease_id[PL_J_ID_LEN];
    uint8_t eid[PL_J_EID_LEN];
    uint16_t otk_id;
    uint8_t tid[PL_J_TID_MAX];
    size_t tid_len;
    bool has_iccid;
    uint8_t iccid[PL_J_ICCID_LEN];   /* from the BPP's '88' StoreMetadata (MAC-only, readable) */
    char batch_id[65];
    uint64_t lease_expiry;           /* Unix seconds */
    uint64_t not_after;              /* Unix seconds (envelope) */
    bool prefetched;
    int state;                       /* enum pl_jstate */
    char fixture[PL_J_FIXTURE_MAX + 1];
    bool has_eid_read;
    uint8_t eid_read[PL_J_EID_LEN];
    uint64_t load_request_id;
    int outcome;                     /* enum pl_joutcome */
    uint8_t pir[PL_J_PIR_MAX];
    size_t pir_len;
    bool pir_success;
    uint32_t fpa_code;
    char detail[PL_J_DETAIL_MAX + 1];
    bool has_report_ident;
    uint8_t report_msg_id[PL_J_ID_LEN];
    uint64_t report_seq;
    bool has_report_audit;
    uint8_t report_audit[32];
    int km_accepted;                 /* -1 not yet, 0 refused, 1 accepted */
    int km_code;                     /* ErrorCode when refused */
    int km_state;                    /* PackageState after the report */
    bool purged;
    int64_t notif_status;            /* NotificationSent status, -1 none */
    uint64_t t[PL_J_STATE_COUNT];    /* Unix ms of reaching each state (0 = not reached) */
    uint64_t t_purged;
};

/* Device states of the close-production steps (per EID). */
enum pl_jdev_state {
    PL_JD_IDENTIFIED = 1,
    PL_JD_INSTALLED = 2,   /* a package was installed (PIR success, acknowledged) */
    PL_JD_CLOSING = 3,     /* a DeleteRemainingOtks request is about to be sent */
    PL_JD_CLOSED = 4,      /* the eUICC's signed deletion receipt came back (kept until the
                            * Key Maker answered it) */
    PL_JD_EIM_SENT = 5,    /* AddInitialEim about to be sent */
    PL_JD_DONE = 6,
    PL_JD_FAILED = 7,
};

struct pl_jdevice {
    uint8_t eid[PL_J_EID_LEN];
    int state;                       /* enum pl_jdev_state */
    char fixture[PL_J_FIXTURE_MAX + 1];
    unsigned loads;                  /* packages sent to this device */
    bool has_installed;
    uint8_t installed[PL_J_ID_LEN];  /* the installed package */
    uint64_t token_counter;
    bool has_receipt;                /* the eUICC's signed deletion receipt 'FF75' */
    uint8_t receipt[PL_J_RECEIPT_MAX];
    size_t receipt_len;
    bool receipt_acked;              /* the Key Maker answered the receipt */
    char detail[PL_J_DETAIL_MAX + 1];
    uint64_t t_first, t_last;
};

/* A journaled Key Maker request identity (docs/station-keymaker-protocol.md §4 rule 4). */
struct pl_jlease_req {
    uint8_t eid[PL_J_EID_LEN];
    uint16_t otk_id;
    char fixture[PL_J_FIXTURE_MAX + 1];
    uint8_t msg_id[PL_J_ID_LEN];
    uint64_t seq;
};

struct pl_journal;

/* Opens (creates) the journal at path, WAL + synchronous=FULL, and the package directory
 * pkg_dir (created 0700 if missing). Files in pkg_dir that no live row references (left by
 * a crash between writing a file and its row) are purged. clock: wall clock for the
 * timestamps, NULL = realtime. PL_ERR_DB, PL_ERR_IO. Returns owned *out. */
PL_MUST_CHECK int pl_journal_open(const char *path, const char *pkg_dir,
                                  const struct pl_clock_ops *clock, struct pl_journal **out);
/* Read-only (export, status, tests); safe while a station runs. pkg_dir unused. */
PL_MUST_CHECK int pl_journal_open_ro(const char *path, struct pl_journal **out);
void pl_journal_close(struct pl_journal *j); /* accepts NULL */

/* Allowed package transitions (from -> to), the journal's own safety net. */
bool pl_journal_allowed(int from, int to);
const char *pl_journal_state_name(int state);   /* "LEASED", ...; "?" */
const char *pl_journal_outcome_name(int outcome); /* "pir", ...; "?" */
const char *pl_journal_device_state_name(int state);

/* ---- meta values (station seq numbers) ---- */
PL_MUST_CHECK int pl_journal_meta_get(struct pl_journal *j, const char *key, uint64_t *v);
/* Text facts about the journal (schema 3), e.g. PL_J_INFO_STATION: set (insert or replace;
 * value at most PL_J_INFO_MAX bytes, else PL_ERR_INVAL) and get (PL_ERR_NOT_FOUND when not
 * recorded, or in a journal older than schema 3; PL_ERR_OVERFLOW if cap is too small). */
#define PL_J_INFO_MAX 128u
#define PL_J_INFO_STATION "station_id"
PL_MUST_CHECK int pl_journal_info_set(struct pl_journal *j, const char *key, const char *value);
PL_MUST_CHECK int pl_journal_info_get(struct pl_journal *j, const char *key, char *out,
                                      size_t cap);
/* Stores max(current, v). */
PL_MUST_CHECK int pl_journal_meta_raise(struct pl_journal *j, const char *key, uint64_t v);

/* ---- packages ---- */

/* LEASED: writes the sealed envelope file (fsync, rename, fsync dir), then inserts the row
 * and its first transition, and deletes the pending lease request of (eid, otk_id) in the
 * same transaction. row: package_id, lease_id, eid, otk_id, tid, iccid, batch_id,
 * lease_expiry, not_after, prefetched are used. PL_ERR_EXISTS if the package is known
 * (nothing changed). */
PL_MUST_CHECK int pl_journal_lease(struct pl_journal *j, const struct pl_jpkg *row,
                                   const uint8_t *envelope, size_t len);
/* PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_journal_get(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                 struct pl_jpkg *out);
/* Reads the sealed envelope (returns owned *env, free()). PL_ERR_NOT_FOUND once purged. */
PL_MUST_CHECK int pl_journal_envelope(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                      uint8_t **env, size_t *len);

/* The transitions. Each checks the current state (PL_ERR_STATE if not allowed), commits,
 * and only then returns PL_OK. */
PL_MUST_CHECK int pl_journal_dispatch(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                      const char *fixture, const uint8_t eid_read[PL_J_EID_LEN]);
PL_MUST_CHECK int pl_journal_loading(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                     uint64_t request_id);
/* DISPATCHED/LOADING -> LEASED, only when nothing of the package reached the chip (the FPA
 * said so before sending, or the load never left). */
PL_MUST_CHECK int pl_journal_undispatch(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                        const char *why);
/* -> RESULT with a raw PIR (success as decoded). Also RESULT -> RESULT while not reported
 * (a PIR found later replaces a station-side error). */
PL_MUST_CHECK int pl_journal_result_pir(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                        const uint8_t *pir, size_t len, bool success);
PL_MUST_CHECK int pl_journal_result_error(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                          uint32_t code, const char *detail);
PL_MUST_CHECK int pl_journal_result_released(struct pl_journal *j,
                                             const uint8_t id[PL_J_ID_LEN], const char *why);
/* RESULT -> REPORTED (or REPORTED -> REPORTED with a renumbered identity). audit may be
 * NULL. */
PL_MUST_CHECK int pl_journal_reported(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                      const uint8_t msg_id[PL_J_ID_LEN], uint64_t seq,
                                      const uint8_t *audit);
PL_MUST_CHECK int pl_journal_acked(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                   bool accepted, int km_code, int km_state);
PL_MUST_CHECK int pl_journal_notified(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN],
                                      int64_t status);
/* Securely purges the sealed envelope of an ACKED/NOTIFIED package: overwrite with zeros,
 * fsync, unlink, fsync the directory, then mark the row purged. PL_ERR_STATE before ACKED.
 * Idempotent. */
PL_MUST_CHECK int pl_journal_purge(struct pl_journal *j, const uint8_t id[PL_J_ID_LEN]);

/* Calls cb for every package whose state is in state_mask (PL_J_MASK bits; 0 = all), whose
 * eid is eid (NULL = any) and fixture is fixture (NULL = any), in lease order. A non-zero
 * return of cb stops the walk and is returned. row is borrowed for the call. */
PL_MUST_CHECK int pl_journal_each(struct pl_journal *j, unsigned state_mask, const uint8_t *eid,
                                  const char *fixture,
                                  int (*cb)(void *user, const struct pl_jpkg *row), void *user);

struct pl_journal_counts {
    uint64_t state[PL_J_STATE_COUNT]; /* packages per state */
    uint64_t purged;
    uint64_t installed, failed, possibly_used, refused; /* by the Key Maker's answer */
    uint64_t device[8];               /* devices per enum pl_jdev_state */
    uint64_t pending_leases;
};
PL_MUST_CHECK int pl_journal_counts(struct pl_journal *j, struct pl_journal_counts *out);

/* ---- devices ---- */
/* PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_journal_device_get(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                                        struct pl_jdevice *out);
/* Inserts or replaces the device record (t_first kept, t_last = now). */
PL_MUST_CHECK int pl_journal_device_put(struct pl_journal *j, const struct pl_jdevice *d);

/* The eUICC's certificates as its GetIfppInfo answer carried them at Identify (docs/
 * ifpp-es10f.md, GetIfppInfo: CERT.EUICC and CERT.EUM, each a whole DER '30' TLV). Public
 * data, kept for the eIM's bulk import (docs/eim-api.md "Bulk import"); never a key. */
struct pl_jcerts {
    bool has_euicc;
    uint8_t euicc[PL_J_CERT_MAX];
    size_t euicc_len;
    bool has_eum;
    uint8_t eum[PL_J_CERT_MAX];
    size_t eum_len;
};
/* Stores (copies) the certificates on the device record of eid, replacing what it held;
 * NULL stores none for that certificate. The record must exist (pl_journal_device_put
 * first): PL_ERR_NOT_FOUND. PL_ERR_INVAL for an empty certificate or one over
 * PL_J_CERT_MAX bytes; PL_ERR_STATE read-only. pl_journal_device_put never changes them. */
PL_MUST_CHECK int pl_journal_device_certs_put(struct pl_journal *j,
                                              const uint8_t eid[PL_J_EID_LEN],
                                              const uint8_t *euicc_cert, size_t euicc_len,
                                              const uint8_t *eum_cert, size_t eum_len);
/* PL_ERR_NOT_FOUND without a device record; a record without certificates (or a journal
 * from before they were kept) gives has_euicc = has_eum = false. */
PL_MUST_CHECK int pl_journal_device_certs_get(struct pl_journal *j,
                                              const uint8_t eid[PL_J_EID_LEN],
                                              struct pl_jcerts *out);
/* Calls cb for every EID of the journal (a device record or a package), oldest device
 * first; d is the device record (state 0 when only packages name the EID), borrowed for
 * the call. A non-zero return of cb stops the walk and is returned. */
PL_MUST_CHECK int pl_journal_device_each(struct pl_journal *j,
                                         int (*cb)(void *user, const struct pl_jdevice *d),
                                         void *user);

/* ---- pending lease requests ---- */
PL_MUST_CHECK int pl_journal_lease_req_put(struct pl_journal *j, const struct pl_jlease_req *r);
/* The pending request for eid (any otk), PL_ERR_NOT_FOUND if none. */
PL_MUST_CHECK int pl_journal_lease_req_get(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                                           struct pl_jlease_req *out);
/* Calls cb for every pending request, lowest seq first (non-zero return stops). */
PL_MUST_CHECK int pl_journal_lease_req_each(struct pl_journal *j,
                                            int (*cb)(void *user, const struct pl_jlease_req *r),
                                            void *user);
PL_MUST_CHECK int pl_journal_lease_req_del(struct pl_journal *j, const uint8_t eid[PL_J_EID_LEN],
                                           uint16_t otk_id);

/* ---- free-form events (recovery notes, refusals) ---- */
PL_MUST_CHECK int pl_journal_note(struct pl_journal *j, const uint8_t *package_id,
                                  const char *fixture, const char *text);

/* ---- export ---- */
enum pl_journal_export_fmt {
    PL_JOURNAL_CSV = 1,
    PL_JOURNAL_JSON = 2,
};
/* Writes the batch report (one record per package: eid, iccid, package_id, transaction_id,
 * result, fixture, state, timestamps) through write (which returns 0 or a pl_err). */
PL_MUST_CHECK int pl_journal_export(struct pl_journal *j, enum pl_journal_export_fmt fmt,
                                    int (*write)(void *user, const char *s, size_t n),
                                    void *user);
/* "installed", "failed", "possibly-used", "refused:<code>", "released", "pending" ... for a
 * row (static strings or buf). */
const char *pl_journal_result_text(const struct pl_jpkg *row, char *buf, size_t cap);

#endif
