/* The eIM store: one interface, several backends.
 *
 * What an eIM must remember (reference/EIM.md §1.7; GSMA SGP.32 v1.2 §2.11, §3.x):
 *  - the device registry: EID, CERT.EUICC and CERT.EUM (DER, as received), this eIM's
 *    association (eimId, associationToken), the current counterValue, the ESipa (D)TLS
 *    credentials, the profiles and eIMs last reported, last-seen time;
 *  - a per-EID FIFO of operations (PSMOs, eCOs, eUICC data requests, download triggers),
 *    each going queued -> claimed -> sent -> done | failed | requery;
 *  - durable, strictly increasing per-eUICC counters (ARCHITECTURE.md §5), guarded against
 *    a restored database by the counter guard (counter_guard.h,
 * docs/decisions/0011-eim-counter-floor.md);
 *  - notifications received from the IPA, idempotent on (EID, seqNumber);
 *  - operators of the northbound API (name, role) and their token hashes;
 *  - an audit of every state change.
 * docs/eim-store.md describes the schema and the semantics in full.
 *
 * A backend is a struct pl_eim_store_ops (the vtable) plus its private state; the handle
 * struct pl_eim_store is opaque. Backends in this tree: SQLite (embedded default,
 * store_sqlite.c) and PostgreSQL (several eIM processes on one database, store_pg.c).
 * Both implement the same SQL core (store_sql.c), and tests/support/eim_store_conformance.c
 * runs the same suite against each.
 *
 * Threads: one handle must not be used by two threads at once. Open one handle per thread
 * or process; the backends make concurrent handles safe (transactions and row locks).
 *
 * Ownership: inputs are borrowed (copied where kept). Output structs are filled with heap
 * members the caller releases with the matching pl_eim_*_clear(). */
#ifndef PROVLINE_EIM_STORE_H
#define PROVLINE_EIM_STORE_H

#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_EIM_EID_LEN       16u
#define PL_EIM_EIM_ID_MAX    128u       /* eimId UTF8String (SIZE(1..128)) */
#define PL_EIM_NAME_MAX      64u        /* operator / claimer names */
#define PL_EIM_TXID_MAX      16u        /* TransactionId OCTET STRING (SIZE(1..16)) */
#define PL_EIM_CERT_MAX      4096u      /* one DER certificate */
#define PL_EIM_BLOB_MAX      (1u << 20) /* package, result, notification, params, JSON */
#define PL_EIM_PSK_ID_MAX    128u
#define PL_EIM_PSK_KEY_MAX   64u
#define PL_EIM_FPR_LEN       32u         /* SHA-256 certificate fingerprint */
#define PL_EIM_COUNTER_LIMIT 0x7FFFFFFFu /* counterValue INTEGER cap (sgp32_common.h) */
/* Default upper bound of handed-out counters: SGP.32 eUICCs accept at least 0x7FFFFF. */
#define PL_EIM_COUNTER_DEFAULT_MAX 0x7FFFFFu

struct pl_eim_store;
struct pl_eim_guard;

/* ---- device registry ---- */

struct pl_eim_device {
    uint8_t eid[PL_EIM_EID_LEN];
    uint8_t *euicc_cert; /* CERT.EUICC DER, optional */
    size_t euicc_cert_len;
    uint8_t *eum_cert; /* CERT.EUM DER, optional */
    size_t eum_cert_len;
    char *eim_id; /* this eIM's association: eimId (NULL: not associated) */
    bool has_assoc_token;
    int64_t assoc_token; /* associationToken returned by the eUICC */
    uint32_t counter;    /* last counterValue handed out (initial value at registration) */
    char *psk_identity;  /* ESipa DTLS PSK identity, optional, unique */
    uint8_t *psk_key;    /* its key, optional */
    size_t psk_key_len;
    bool has_cert_fpr;
    uint8_t cert_fpr[PL_EIM_FPR_LEN]; /* SHA-256 of the device's (D)TLS client certificate */
    char *profiles_json;              /* profiles last reported (JSON array text), optional */
    char *eims_json;      /* eIM associations last reported (JSON array text), optional */
    int64_t created_ms;   /* set by the store */
    int64_t updated_ms;   /* set by the store */
    int64_t last_seen_ms; /* 0: never seen */
};

/* Frees the heap members and zeroes *d (the PSK key is wiped). Accepts NULL. */
void pl_eim_device_clear(struct pl_eim_device *d);

/* A row of pl_eim_store_device_list(). */
struct pl_eim_device_summary {
    uint8_t eid[PL_EIM_EID_LEN];
    uint32_t counter;
    bool associated;
    int64_t created_ms;
    int64_t last_seen_ms;
};

/* What pl_eim_store_device_update() changes: a mask of these bits. */
enum pl_eim_device_field {
    PL_EIM_DEV_CERTS = 1u << 0,       /* euicc_cert, eum_cert */
    PL_EIM_DEV_ASSOCIATION = 1u << 1, /* eim_id, has_assoc_token, assoc_token */
    PL_EIM_DEV_CREDENTIALS = 1u << 2, /* psk_identity, psk_key, has_cert_fpr, cert_fpr */
    PL_EIM_DEV_PROFILES = 1u << 3,    /* profiles_json */
    PL_EIM_DEV_EIMS = 1u << 4,        /* eims_json */
    PL_EIM_DEV_LAST_SEEN = 1u << 5,   /* last_seen_ms */
};

/* Outcome of one entry of pl_eim_store_device_put_many(). */
enum pl_eim_put_result {
    PL_EIM_PUT_CREATED = 0,
    PL_EIM_PUT_UNCHANGED = 1, /* already registered with the same certificates */
    PL_EIM_PUT_CONFLICT = 2,  /* already registered with different certificates */
};

/* ---- operation queue ---- */

enum pl_eim_op_kind {
    PL_EIM_OP_ENABLE = 1,
    PL_EIM_OP_DISABLE = 2,
    PL_EIM_OP_DELETE = 3,
    PL_EIM_OP_LIST_PROFILE_INFO = 4,
    PL_EIM_OP_GET_RAT = 5,
    PL_EIM_OP_CONFIGURE_IMMEDIATE_ENABLE = 6,
    PL_EIM_OP_SET_FALLBACK_ATTRIBUTE = 7,
    PL_EIM_OP_UNSET_FALLBACK_ATTRIBUTE = 8,
    PL_EIM_OP_SET_DEFAULT_DP_ADDRESS = 9,
    PL_EIM_OP_ADD_EIM = 10,
    PL_EIM_OP_UPDATE_EIM = 11,
    PL_EIM_OP_DELETE_EIM = 12,
    PL_EIM_OP_LIST_EIM = 13,
    PL_EIM_OP_IPA_EUICC_DATA_REQUEST = 14,
    PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER = 15,
};
#define PL_EIM_OP_KIND_MAX 15

/* The SGP.32 ASN.1 name of a kind ("enable", "listProfileInfo", ...); NULL if unknown. */
const char *pl_eim_op_kind_name(enum pl_eim_op_kind k);
/* Parses such a name (exact match). PL_ERR_NOT_FOUND if unknown. */
PL_MUST_CHECK int pl_eim_op_kind_from_name(const char *s, enum pl_eim_op_kind *out);
/* True for the kinds sent as a signed eUICC Package (PSMO or eCO, BF51): those consume a
 * counter value. ipaEuiccDataRequest (BF52) and profileDownloadTrigger (BF54) do not. */
bool pl_eim_op_kind_is_signed(enum pl_eim_op_kind k);

enum pl_eim_op_state {
    PL_EIM_OPS_QUEUED = 1,  /* waiting; FIFO per EID */
    PL_EIM_OPS_CLAIMED = 2, /* taken by one eIM process, package being built */
    PL_EIM_OPS_SENT = 3,    /* package (with its counter) stored durably, then sent */
    PL_EIM_OPS_DONE = 4,    /* result received and verified */
    PL_EIM_OPS_FAILED = 5,  /* ended without a usable result (error, cancel, verify failure) */
    PL_EIM_OPS_REQUERY = 6, /* result lost: the eIM asks the eUICC again (EIM.md §1.6) */
};
const char *pl_eim_op_state_name(enum pl_eim_op_state s); /* "queued", ...; NULL if unknown */
PL_MUST_CHECK int pl_eim_op_state_from_name(const char *s, enum pl_eim_op_state *out);

struct pl_eim_op {
    int64_t id; /* > 0, assigned by the store, increasing */
    uint8_t eid[PL_EIM_EID_LEN];
    enum pl_eim_op_kind kind;
    enum pl_eim_op_state state;
    uint8_t *params; /* kind-specific parameters (the API stores JSON text) */
    size_t params_len;
    char *created_by; /* operator name, optional */
    int64_t created_ms;
    char *claimed_by; /* claimer (eIM process) when claimed or later */
    int64_t claimed_ms;
    bool has_counter;
    uint32_t counter; /* counterValue of the package (signed kinds) */
    uint8_t txid[PL_EIM_TXID_MAX];
    size_t txid_len;  /* eimTransactionId, 0 when absent */
    uint8_t *package; /* the exact bytes sent (BF51 / BF52 / BF54) */
    size_t package_len;
    int64_t sent_ms;
    uint8_t *result; /* the result bytes as received */
    size_t result_len;
    char *outcome; /* verified outcome text ("ok", "iccidOrAidNotFound", "cancelled", ...) */
    int64_t done_ms;
};
void pl_eim_op_clear(struct pl_eim_op *op); /* accepts NULL */

struct pl_eim_op_summary {
    int64_t id;
    enum pl_eim_op_kind kind;
    enum pl_eim_op_state state;
    int64_t created_ms;
};

/* ---- notifications, operators, audit ---- */

struct pl_eim_notification {
    uint8_t eid[PL_EIM_EID_LEN];
    uint32_t seq; /* seqNumber as assigned by the eUICC */
    uint8_t *data;
    size_t len;
    bool acked;
    int64_t received_ms;
};
void pl_eim_notification_clear(struct pl_eim_notification *n); /* accepts NULL */

enum pl_eim_role {
    PL_EIM_ROLE_READER = 1,   /* read devices, operations, bootstrap data */
    PL_EIM_ROLE_STATION = 2,  /* a production line: register devices (one or bulk), bootstrap */
    PL_EIM_ROLE_OPERATOR = 3, /* reader + station + queue operations */
    PL_EIM_ROLE_ADMIN = 4,    /* everything */
};
const char *pl_eim_role_name(enum pl_eim_role r); /* NULL if unknown */
PL_MUST_CHECK int pl_eim_role_from_name(const char *s, enum pl_eim_role *out);

struct pl_eim_operator {
    char name[PL_EIM_NAME_MAX + 1];
    enum pl_eim_role role;
};

#define PL_EIM_TOKEN_ID_LEN 16u /* hex digits of the public token id */
#define PL_EIM_TOKEN_MAX    96u /* "pleim_" id "_" secret, NUL included */

struct pl_eim_audit {
    int64_t id;
    int64_t ts_ms;
    char actor[PL_EIM_NAME_MAX + 1];
    bool has_eid;
    uint8_t eid[PL_EIM_EID_LEN];
    int64_t op_id; /* 0: none */
    char event[48];
    char detail[256]; /* truncated */
};

/* ---- the backend vtable ----
 * The generic layer (store.c) checks arguments before calling a backend, and passes the
 * counter guard into reserve_counter. A backend returns PL_ERR_NOT_FOUND, PL_ERR_EXISTS,
 * PL_ERR_STATE, PL_ERR_OVERFLOW, PL_ERR_DB or PL_ERR_NOMEM as documented for the
 * pl_eim_store_* wrappers below. `actor` (may be NULL) is recorded in the audit. */
struct pl_eim_store_ops {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(void *impl);
    const char *(*last_error)(void *impl);
    int (*store_id)(void *impl, char out[33]);
    int (*device_put)(void *impl, const char *actor, const struct pl_eim_device *d);
    int (*device_put_many)(void *impl, const char *actor, const struct pl_eim_device *d, size_t n,
                           enum pl_eim_put_result *results);
    int (*device_get)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], struct pl_eim_device *out);
    int (*device_find_psk)(void *impl, const char *identity, struct pl_eim_device *out);
    int (*device_update)(void *impl, const char *actor, const struct pl_eim_device *d,
                         unsigned fields);
    int (*device_delete)(void *impl, const char *actor, const uint8_t eid[PL_EIM_EID_LEN]);
    int (*device_list)(void *impl, const uint8_t *after_eid, struct pl_eim_device_summary *out,
                       size_t cap, size_t *n);
    int (*reserve_counter)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], unsigned bucket,
                           uint32_t max, struct pl_eim_guard *guard, uint32_t *out);
    int (*counter_recover)(void *impl, const char *actor, const uint64_t hwm[256],
                           uint64_t *bumped_devices);
    int (*bucket_seqs)(void *impl, uint64_t seq[256]);
    int (*op_enqueue)(void *impl, const char *actor, const struct pl_eim_op *op, int64_t *id);
    int (*op_get)(void *impl, int64_t id, struct pl_eim_op *out);
    int (*op_list)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], unsigned state_mask,
                   struct pl_eim_op_summary *out, size_t cap, size_t *n);
    int (*op_claim)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], const char *claimer,
                    struct pl_eim_op *out);
    int (*op_release)(void *impl, int64_t id, const char *claimer);
    int (*op_mark_sent)(void *impl, int64_t id, const char *claimer, const struct pl_eim_op *sent);
    int (*op_finish)(void *impl, const char *actor, int64_t id, enum pl_eim_op_state to,
                     const uint8_t *result, size_t result_len, const char *outcome);
    int (*notif_put)(void *impl, const struct pl_eim_notification *n, bool *inserted);
    int (*notif_ack)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], uint32_t seq);
    int (*notif_list)(void *impl, const uint8_t eid[PL_EIM_EID_LEN], bool unacked_only,
                      struct pl_eim_notification *out, size_t cap, size_t *n);
    int (*operator_put)(void *impl, const char *actor, const char *name, enum pl_eim_role role);
    int (*token_put)(void *impl, const char *actor, const char *operator_name, const char *token_id,
                     const uint8_t hash[32]);
    int (*token_lookup)(void *impl, const char *token_id, struct pl_eim_operator *op,
                        uint8_t hash[32]);
    int (*token_revoke)(void *impl, const char *actor, const char *token_id);
    int (*audit_list)(void *impl, int64_t after_id, struct pl_eim_audit *out, size_t cap,
                      size_t *n);
};

/* ---- opening ---- */

/* Time source (milliseconds since 1970); NULL uses CLOCK_REALTIME. */
typedef int64_t (*pl_eim_now_fn)(void *user);

struct pl_eim_store_options {
    /* Counter guard file (counter_guard.h). NULL disables the guard: allowed only when
     * allow_unguarded is set (tests of the store alone); the daemon always has one. */
    const char *guard_path;
    bool allow_unguarded;
    /* Create a missing guard file although the database has handed out counters: a new
     * eIM node joining a shared database. Never for a node whose guard was lost. */
    bool guard_create;
    uint32_t guard_block; /* counters reserved ahead per guard write; 0: default 64 */
    uint32_t counter_max; /* 0: PL_EIM_COUNTER_DEFAULT_MAX */
    int busy_timeout_ms;  /* SQLite: wait for a locked database; 0: 10000 */
    /* Open even when the guard shows a restored database (PL_ERR_REPLAY otherwise), to
     * run pl_eim_store_counter_recover; reservations are refused until it has run. A
     * missing guard file is then recreated by the recovery. */
    bool for_recovery;
    pl_eim_now_fn now;
    void *now_user;
};

/* Wraps a backend: takes impl (ops->close frees it, also when this fails). Used by the
 * backend constructors below; a new backend needs only its ops and this call. name
 * (static storage) is what pl_eim_store_backend reports; NULL gives ops->name. */
PL_MUST_CHECK int pl_eim_store_wrap(const char *name, const struct pl_eim_store_ops *ops,
                                    void *impl, const struct pl_eim_store_options *opt,
                                    struct pl_eim_store **out);

/* SQLite (WAL, synchronous=FULL, foreign keys on). Creates the file and the schema. */
PL_MUST_CHECK int pl_eim_store_open_sqlite(const char *path, const struct pl_eim_store_options *opt,
                                           struct pl_eim_store **out);
/* PostgreSQL through libpq; conninfo as for PQconnectdb. Creates the schema if missing
 * (serialised by an advisory lock, so several processes may start at once). */
PL_MUST_CHECK int pl_eim_store_open_pg(const char *conninfo, const struct pl_eim_store_options *opt,
                                       struct pl_eim_store **out);

/* Both open functions fail with PL_ERR_REPLAY when the counter guard shows that the
 * database is older than counters already handed out (a restored backup): see
 * pl_eim_store_counter_recover(). Other errors: PL_ERR_DB, PL_ERR_CONFIG (guard belongs to
 * another store, or is missing while the database has reserved counters), PL_ERR_IO. */

void pl_eim_store_close(struct pl_eim_store *s); /* accepts NULL */
const char *pl_eim_store_backend(const struct pl_eim_store *s);
/* Last backend error text for logs (never NULL, may be ""). */
const char *pl_eim_store_last_error(const struct pl_eim_store *s);
/* The random identity created with the database (32 hex digits). */
PL_MUST_CHECK int pl_eim_store_id(struct pl_eim_store *s, char out[33]);

/* ---- registry ---- */

/* Registers a device. created/updated times are set by the store. PL_ERR_EXISTS if the
 * EID (or the PSK identity) is already registered, PL_ERR_INVAL on bad fields. */
PL_MUST_CHECK int pl_eim_store_device_put(struct pl_eim_store *s, const char *actor,
                                          const struct pl_eim_device *d);
/* Registers n devices in one transaction; results[i] tells what happened to d[i]. An
 * invalid entry fails the whole call with PL_ERR_INVAL and nothing is stored. */
PL_MUST_CHECK int pl_eim_store_device_put_many(struct pl_eim_store *s, const char *actor,
                                               const struct pl_eim_device *d, size_t n,
                                               enum pl_eim_put_result *results);
/* Fills *out (clear it with pl_eim_device_clear). PL_ERR_NOT_FOUND if unknown. */
PL_MUST_CHECK int pl_eim_store_device_get(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                          struct pl_eim_device *out);
/* The device whose PSK identity is `identity` (for the DTLS server). */
PL_MUST_CHECK int pl_eim_store_device_find_psk(struct pl_eim_store *s, const char *identity,
                                               struct pl_eim_device *out);
/* Updates the fields named in `fields` (enum pl_eim_device_field) from d. The counter is
 * never changed here (only pl_eim_store_reserve_counter moves it). */
PL_MUST_CHECK int pl_eim_store_device_update(struct pl_eim_store *s, const char *actor,
                                             const struct pl_eim_device *d, unsigned fields);
/* Removes a device with its operations and notifications. */
PL_MUST_CHECK int pl_eim_store_device_delete(struct pl_eim_store *s, const char *actor,
                                             const uint8_t eid[PL_EIM_EID_LEN]);
/* Devices in EID order, after after_eid (NULL: from the start), at most cap. */
PL_MUST_CHECK int pl_eim_store_device_list(struct pl_eim_store *s, const uint8_t *after_eid,
                                           struct pl_eim_device_summary *out, size_t cap,
                                           size_t *n);

/* ---- counters ---- */

/* Hands out the next counterValue of the eUICC: increments, COMMITS, and only then
 * returns it. A value is never handed out twice, across handles and processes, and
 * values for one EID strictly increase. Gaps are allowed: a value reserved but never
 * sent is skipped (the eUICC only needs counterValue > its stored value).
 * PL_ERR_NOT_FOUND (no such device), PL_ERR_OVERFLOW (counter_max reached),
 * PL_ERR_REPLAY (the database went back in time: see pl_eim_store_counter_recover). */
PL_MUST_CHECK int pl_eim_store_reserve_counter(struct pl_eim_store *s,
                                               const uint8_t eid[PL_EIM_EID_LEN], uint32_t *out);

/* After a restore: raises every device's counter past anything the guard files
 * `guard_paths` (this store's guard is always included) may have let out, and raises the
 * guard sequences to match. Run it with every eIM process of the database stopped and
 * the guard file of each. *bumped: devices whose counter moved. Idempotent. */
PL_MUST_CHECK int pl_eim_store_counter_recover(struct pl_eim_store *s, const char *actor,
                                               const char *const *guard_paths, size_t n,
                                               uint64_t *bumped);

/* The counter bucket of an EID (0..255), as the guard counts reservations. */
unsigned pl_eim_store_bucket(const uint8_t eid[PL_EIM_EID_LEN]);

/* ---- operation queue ---- */

/* Queues op->kind with op->params for op->eid (other fields ignored); *id gets the new
 * operation id. PL_ERR_NOT_FOUND if the device is unknown. */
PL_MUST_CHECK int pl_eim_store_op_enqueue(struct pl_eim_store *s, const char *actor,
                                          const struct pl_eim_op *op, int64_t *id);
PL_MUST_CHECK int pl_eim_store_op_get(struct pl_eim_store *s, int64_t id, struct pl_eim_op *out);
/* Operations of one EID in queue (id) order whose state bit (1u << state) is in
 * state_mask (0: all). */
PL_MUST_CHECK int pl_eim_store_op_list(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                       unsigned state_mask, struct pl_eim_op_summary *out,
                                       size_t cap, size_t *n);
/* Claims the head of the EID's queue for `claimer`: the oldest queued operation, and
 * only while no other operation of the EID is claimed, sent or requery (one package in
 * flight per eUICC, in FIFO order). Exactly one of several concurrent claimers wins;
 * the others get PL_ERR_NOT_FOUND, as when nothing is queued. */
PL_MUST_CHECK int pl_eim_store_op_claim(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                        const char *claimer, struct pl_eim_op *out);
/* Gives a claimed operation back to the queue (claimed -> queued), keeping its place. */
PL_MUST_CHECK int pl_eim_store_op_release(struct pl_eim_store *s, int64_t id, const char *claimer);
/* claimed -> sent: stores sent->has_counter/counter, txid, package bytes, and the time.
 * Call before the package leaves the process. PL_ERR_STATE if not claimed by claimer. */
PL_MUST_CHECK int pl_eim_store_op_mark_sent(struct pl_eim_store *s, int64_t id, const char *claimer,
                                            const struct pl_eim_op *sent);
/* Ends an operation: to = DONE or FAILED (from queued, claimed, sent or requery: a queued
 * operation may be cancelled), or REQUERY (from sent). result may be NULL. */
PL_MUST_CHECK int pl_eim_store_op_finish(struct pl_eim_store *s, const char *actor, int64_t id,
                                         enum pl_eim_op_state to, const uint8_t *result,
                                         size_t result_len, const char *outcome);

/* ---- notifications ---- */

/* Stores a notification once per (EID, seqNumber): *inserted is false for a repeat with
 * the same bytes (idempotent); a repeat with different bytes is PL_ERR_EXISTS. The EID
 * need not be registered. */
PL_MUST_CHECK int pl_eim_store_notif_put(struct pl_eim_store *s,
                                         const struct pl_eim_notification *n, bool *inserted);
PL_MUST_CHECK int pl_eim_store_notif_ack(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                         uint32_t seq);
/* In seqNumber order; clear each entry with pl_eim_notification_clear. */
PL_MUST_CHECK int pl_eim_store_notif_list(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                          bool unacked_only, struct pl_eim_notification *out,
                                          size_t cap, size_t *n);

/* ---- operators and tokens ---- */

/* Creates an operator or changes its role. Names: 1..64 of [A-Za-z0-9._@-]. */
PL_MUST_CHECK int pl_eim_store_operator_put(struct pl_eim_store *s, const char *actor,
                                            const char *name, enum pl_eim_role role);
/* Mints a new bearer token for an existing operator and stores only its hash. The token
 * ("pleim_" + 16 hex id + "_" + 43 base64url characters) is written to token (cap >=
 * PL_EIM_TOKEN_MAX) and is not recoverable later. */
PL_MUST_CHECK int pl_eim_store_token_create(struct pl_eim_store *s, const char *actor,
                                            const char *operator_name, char *token, size_t cap);
/* Checks a presented token: the stored hash is compared in constant time. PL_ERR_DENIED
 * for any unknown, revoked, malformed or wrong token (no detail on purpose). */
PL_MUST_CHECK int pl_eim_store_token_auth(struct pl_eim_store *s, const char *token,
                                          struct pl_eim_operator *op);
/* Revokes the token whose id part is token_id (or a whole token). */
PL_MUST_CHECK int pl_eim_store_token_revoke(struct pl_eim_store *s, const char *actor,
                                            const char *token_id);

/* Audit rows with id > after_id, oldest first. */
PL_MUST_CHECK int pl_eim_store_audit_list(struct pl_eim_store *s, int64_t after_id,
                                          struct pl_eim_audit *out, size_t cap, size_t *n);

#endif
