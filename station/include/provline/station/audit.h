/* The station's audit trail: an append-only hash chain
 *     h_n = SHA-256(h_{n-1} || record_n)
 * over every station transition and every APDU transcript digest (reference/IFPP.md §6.3
 * "Audit"; ARCHITECTURE.md §5 "any edit or deletion is detected by verify"), stored in its
 * own SQLite file with a fsynced "head" sidecar, checkpoints acknowledged (and, with protocol
 * version 2, signed) by the Key Maker, and a retention purge that keeps the chain verifiable.
 *
 * Format, threat model and exactly what pl_audit_verify() can and cannot detect:
 * docs/audit-trail.md. The canonical record encoding that is hashed is specified there.
 *
 * Files: PATH (SQLite, WAL, synchronous=FULL, secure_delete) and PATH.head (two 96-byte
 * slots holding the latest (seq, h_seq), rewritten in place and fdatasync'ed after every
 * commit; flock(2) on it orders writers and verifiers).
 *
 * Not thread-safe: one thread per struct pl_audit. One writing process per trail is the
 * design (the station); should two write, the lock serialises their appends and the chain
 * stays consistent. pl_audit_verify() may run in any process at any time. */
#ifndef PROVLINE_STATION_AUDIT_H
#define PROVLINE_STATION_AUDIT_H

#include "provline/protocol/clock.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_AUDIT_HASH_LEN     32u
#define PL_AUDIT_CHAIN_ID_LEN 16u
#define PL_AUDIT_KIND_MAX     32u  /* characters of kind: [a-z0-9_-] */
#define PL_AUDIT_FIXTURE_MAX  64u  /* printable ASCII */
#define PL_AUDIT_STATE_MAX    32u  /* printable ASCII */
#define PL_AUDIT_DETAIL_MAX   512u /* printable ASCII */
#define PL_AUDIT_SIG_MAX      512u /* Key Maker checkpoint acknowledgement (opaque bytes) */
#define PL_AUDIT_STATION_KEY_LEN 32u /* the station's CurveZMQ public key */
#define PL_AUDIT_KM_SIG_LEN   64u  /* a Key Maker checkpoint signature, ECDSA r||s */

/* Record kinds written by the helpers below; the station may use others. */
#define PL_AUDIT_KIND_TRANSITION "transition"
#define PL_AUDIT_KIND_APDU       "apdu"
#define PL_AUDIT_KIND_CHECKPOINT "checkpoint" /* written by pl_audit_record_checkpoint */

enum pl_audit_log_level {
    PL_AUDIT_LOG_ERROR = 0,
    PL_AUDIT_LOG_WARN = 1,
    PL_AUDIT_LOG_INFO = 2,
};

struct pl_audit_config {
    const char *path;                 /* the SQLite file (created with its sidecar) */
    const struct pl_clock_ops *clock; /* record time; NULL = wall clock (Unix ms); borrowed */
    const struct pl_rng *rng;         /* chain id of a new trail; NULL = system; borrowed */
    void (*log)(void *user, enum pl_audit_log_level level, const char *line); /* NULL: silent */
    void *log_user;
};

struct pl_audit;

/* Opens (creating if absent) the trail at cfg->path and checks its tail: the last record's
 * hash is recomputed and must agree with the head sidecar. The one disagreement a crash can
 * cause - the sidecar one record behind a committed record - is repaired and logged; any
 * other (sidecar missing for a non-empty trail, trail shorter than the sidecar, ...) is
 * PL_ERR_STATE: run `provline audit verify` and investigate. PL_ERR_DB, PL_ERR_IO,
 * PL_ERR_MALFORMED (not an audit trail). Returns owned *out (pl_audit_close). */
PL_MUST_CHECK int pl_audit_open(const struct pl_audit_config *cfg, struct pl_audit **out);
void pl_audit_close(struct pl_audit *a); /* accepts NULL */

/* One record. Every field but kind may be NULL (absent); all are borrowed. */
struct pl_audit_entry {
    const char *kind;          /* required: 1..PL_AUDIT_KIND_MAX of [a-z0-9_-] */
    const char *fixture;       /* fixture id */
    const uint8_t *eid;        /* 16 bytes */
    const uint8_t *package_id; /* 16 bytes */
    const char *state;         /* the state entered, e.g. "LOADING" */
    const char *detail;        /* free text */
    const uint8_t *digest;     /* 32 bytes, e.g. SHA-256 of an APDU transcript */
};

/* Appends a record (one SQLite transaction, then the sidecar, both fsynced before return).
 * *seq and h (each may be NULL) get the new record's number and chain hash.
 * PL_ERR_INVAL (field out of its rules, or the reserved kind "checkpoint"), PL_ERR_STATE (an
 * earlier sidecar write failed: the handle refuses further appends), PL_ERR_DB, PL_ERR_IO. */
PL_MUST_CHECK int pl_audit_append(struct pl_audit *a, const struct pl_audit_entry *e, uint64_t *seq,
                                  uint8_t h[PL_AUDIT_HASH_LEN]);
/* kind "transition": a package/fixture entered `state`. */
PL_MUST_CHECK int pl_audit_transition(struct pl_audit *a, const char *fixture, const uint8_t *eid,
                                      const uint8_t *package_id, const char *state,
                                      const char *detail);
/* kind "apdu": digest = SHA-256 of one APDU transcript (what the station sent and got). */
PL_MUST_CHECK int pl_audit_apdu(struct pl_audit *a, const char *fixture, const uint8_t *eid,
                                const uint8_t *package_id, const uint8_t digest[PL_AUDIT_HASH_LEN],
                                const char *detail);

/* The chain head (seq, h_seq) to put in a Report (Report.audit_head = h). On an empty trail
 * the anchor: (0, h_0) for a new one. */
PL_MUST_CHECK int pl_audit_checkpoint(struct pl_audit *a, uint64_t *seq,
                                      uint8_t h[PL_AUDIT_HASH_LEN]);
/* Stores an unsigned acknowledgement of checkpoint (seq, h) by the Key Maker (a version 1
 * Key Maker, or a ReportAck without a checkpoint): sig (0..PL_AUDIT_SIG_MAX opaque bytes,
 * usually none) and chains a "checkpoint" record whose digest covers (seq, h, sig). (seq, h)
 * must be a point of this chain (PL_ERR_STATE if h differs, PL_ERR_NOT_FOUND if seq is not in
 * the trail). Recording the same acknowledgement again is PL_OK; another one for the same
 * seq is PL_ERR_EXISTS. */
PL_MUST_CHECK int pl_audit_record_checkpoint(struct pl_audit *a, uint64_t seq,
                                             const uint8_t h[PL_AUDIT_HASH_LEN],
                                             const uint8_t *keymaker_sig, size_t sig_len);

/* A checkpoint the Key Maker signed (protocol version 2, ReportAck.checkpoint): its signature
 * over pl_km_checkpoint_tbs(station_key, chain_id, seq, h) (provline/proto/km_msg.h). */
struct pl_audit_signed_checkpoint {
    uint8_t station_key[PL_AUDIT_STATION_KEY_LEN];
    uint8_t chain_id[PL_AUDIT_CHAIN_ID_LEN];
    uint64_t seq;
    uint8_t h[PL_AUDIT_HASH_LEN];
    uint8_t sig[PL_AUDIT_KM_SIG_LEN];
};
/* Stores a signed checkpoint as pl_audit_record_checkpoint stores an acknowledgement, with
 * the station key beside the signature; the chained record's digest covers both. cp->chain_id
 * must be this trail's (PL_ERR_STATE). With keymaker_key (borrowed; the Key Maker's
 * checkpoint key, e.g. from its CERT.DPpb) the signature must verify first, else
 * PL_ERR_BAD_SIGNATURE and nothing is stored. Other errors as pl_audit_record_checkpoint. */
PL_MUST_CHECK int pl_audit_record_signed_checkpoint(struct pl_audit *a,
                                                    const struct pl_audit_signed_checkpoint *cp,
                                                    const struct pl_eckey *keymaker_key);
/* The seq of the chain point whose hash is h (a record, or the anchor): for a station that
 * resends a journaled Report with its audit head. PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_audit_find(struct pl_audit *a, const uint8_t h[PL_AUDIT_HASH_LEN],
                                uint64_t *seq);
/* Retention: deletes the records with seq < before and makes (before - 1, h_{before-1}) the
 * anchor the chain is verified from. There must be a recorded checkpoint at before - 1 (the
 * anchor is then a point the Key Maker acknowledged), else PL_ERR_STATE; before - 1 beyond
 * the last record is PL_ERR_INVAL; at or below the current anchor it is a no-op. Deleted
 * rows are overwritten (secure_delete) and the WAL is truncated. Checkpoint rows are kept. */
PL_MUST_CHECK int pl_audit_purge_before(struct pl_audit *a, uint64_t before);

/* The chain id of this trail (random, fixed at creation). */
void pl_audit_chain_id(const struct pl_audit *a, uint8_t out[PL_AUDIT_CHAIN_ID_LEN]);

/* ---- verification ---- */

enum pl_audit_fault {
    PL_AUDIT_FAULT_NONE = 0,
    PL_AUDIT_FAULT_FORMAT,        /* not an audit trail / schema or meta missing */
    PL_AUDIT_FAULT_ANCHOR,        /* anchor wrong: bad genesis, or no checkpoint backs it */
    PL_AUDIT_FAULT_GAP,           /* records missing (deleted) before bad_seq */
    PL_AUDIT_FAULT_LINK,          /* h_prev of bad_seq is not the previous record's h */
    PL_AUDIT_FAULT_HASH,          /* record bad_seq does not hash to its stored h */
    PL_AUDIT_FAULT_RECORD,        /* record bad_seq breaks the field rules */
    PL_AUDIT_FAULT_HEAD_MISSING,  /* no readable sidecar */
    PL_AUDIT_FAULT_HEAD_CORRUPT,  /* no valid slot, or another chain's sidecar */
    PL_AUDIT_FAULT_TRUNCATED,     /* the trail ends before the sidecar / a checkpoint */
    PL_AUDIT_FAULT_UNANCHORED,    /* records after the sidecar's head */
    PL_AUDIT_FAULT_HEAD_MISMATCH, /* the sidecar's h differs from the record's */
    PL_AUDIT_FAULT_CHECKPOINT,    /* a checkpoint contradicts the chain or its record */
    PL_AUDIT_FAULT_SIGNATURE,     /* a checkpoint signature does not verify (key given) */
};
const char *pl_audit_fault_name(enum pl_audit_fault f); /* "hash-mismatch", ...; never NULL */

struct pl_audit_report {
    bool ok;
    enum pl_audit_fault fault;
    uint64_t bad_seq;             /* the record (or checkpoint seq) at fault; 0 if none */
    char detail[200];             /* one line for humans */
    uint64_t records;             /* records verified */
    uint64_t first_seq, last_seq; /* 0, 0 when no record */
    uint64_t anchor_seq;
    uint64_t head_seq;
    uint64_t checkpoints;               /* checkpoint rows */
    uint64_t checkpoints_before_anchor; /* purged past: cannot be matched to records */
    uint64_t signatures_verified;       /* with opts->keymaker_key */
    uint64_t signatures_unchecked;
    bool has_station_key; /* a signed checkpoint was seen: */
    uint8_t station_key[PL_AUDIT_STATION_KEY_LEN]; /* the station key of the last one */
};

struct pl_audit_verify_opts {
    /* If set, every checkpoint must be a signed one (pl_audit_record_signed_checkpoint)
     * whose 64-byte r||s ECDSA signature by this key verifies over pl_km_checkpoint_tbs() of
     * (its station key, this chain id, seq, h) (PL_AUDIT_FAULT_SIGNATURE otherwise).
     * Borrowed. */
    const struct pl_eckey *keymaker_key;
};

/* Recomputes the whole chain of the trail at path (read-only; never creates or changes a
 * file) and cross-checks anchor, sidecar and checkpoints. PL_OK when the trail could be
 * examined: report->ok tells the verdict and, when false, the first fault in order (records
 * by seq, then sidecar, then checkpoints). PL_ERR_NOT_FOUND (no file), PL_ERR_DB / PL_ERR_IO
 * (unreadable). */
PL_MUST_CHECK int pl_audit_verify(const char *path, struct pl_audit_report *report);
PL_MUST_CHECK int pl_audit_verify_ex(const char *path, const struct pl_audit_verify_opts *opts,
                                     struct pl_audit_report *report);

#endif
