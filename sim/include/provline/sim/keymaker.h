/* The reference Key Maker (SM-DPf) of a lab line: profile inventory, eUICC records and
 * their verified one-time keys (OTK registry), just-in-time and prefetch binding into
 * sealed IFPP packages, Profile Loading Report verification and reconciliation, OTK
 * deletion tokens; served to stations over ZeroMQ ROUTER + CurveZMQ + a ZAP allow-list.
 *
 * GSMA SGP.41 v1.0 SM-DPf functions (DPFF01-10: binding, verification of eUICC data and
 * of Profile Loading Reports; GENS06 PFS, GENS08 one profile per OTK), with the SGP.22
 * v2.5 §2.5.4 BPP inside provline's envelope (ifpp_envelope.h); reference/IFPP.md §3,
 * §5, §6.1, §6.3, §6.4, §7; ARCHITECTURE.md §4-§6. Wire contract:
 * docs/station-keymaker-protocol.md.
 *
 * State lives in one SQLite database (WAL, synchronous=FULL). Every request is handled in
 * one IMMEDIATE transaction together with the record of its reply, so a crash leaves
 * either nothing or the whole effect plus the reply a retry will get (idempotency).
 *
 * The SM-DPf binding key (the PKI's dpf.key) and every ephemeral key stay inside this
 * process and are never logged. Not thread-safe: one thread per struct pl_km. */
#ifndef PROVLINE_SIM_KEYMAKER_H
#define PROVLINE_SIM_KEYMAKER_H

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PL_KM_UPP_MAX     (40u * 1024u) /* largest UPP the inventory takes (envelope cap) */
#define PL_KM_Z85_KEY_LEN 40u           /* CurveZMQ key, Z85 text */
#define PL_KM_STATION_MAX 64u           /* station identity text (Z85 public key) */

/* Log levels of the injected sink. */
enum pl_km_log_level {
    PL_KM_LOG_ERROR = 0,
    PL_KM_LOG_WARN = 1,
    PL_KM_LOG_INFO = 2,
    PL_KM_LOG_DEBUG = 3,
};

struct pl_km_config {
    const char *db_path;       /* SQLite file (created) */
    const char *pki_dir;       /* pl_pki_init layout: ci.der, dpf.key, dpf.der are used */
    const char *keymaker_id;   /* name in HelloAck and logs; NULL = "provline-keymaker" */
    const char *batch_id;      /* envelope batchId; NULL = "provline" */
    const char *spn;           /* StoreMetadata serviceProviderName; NULL = "provline lab" */
    uint32_t lease_seconds;    /* Lease.expiry = now + this; 0 = 3600 */
    uint32_t package_seconds;  /* envelope notAfter = now + this; 0 = 7 days */
    bool replace_session_keys; /* BPPs carry 'A2' ReplaceSessionKeys */
    const struct pl_rng *rng;  /* NULL = PL_RNG_SYSTEM; borrowed */
    /* Clock (Unix seconds); NULL = time(NULL). Certificates, leases and notAfter use it. */
    time_t (*clock)(void *user);
    void *clock_user;
    /* Log sink; NULL = silent. One event per call: `line` is one line of key=value
     * pairs without a newline. Never receives key material. */
    void (*log)(void *user, enum pl_km_log_level level, const char *line);
    void *log_user;
};
/* Defaults as documented above (all NULL / 0). Cannot fail. */
void pl_km_config_init(struct pl_km_config *c);

struct pl_km;

/* Opens (creating the schema if needed) the database and loads the PKI.
 * PL_ERR_CONFIG for a missing path, PL_ERR_DB for SQLite errors, PKI errors as
 * pl_pki_load. Returns owned *out (pl_km_close). */
PL_MUST_CHECK int pl_km_open(const struct pl_km_config *cfg, struct pl_km **out);
void pl_km_close(struct pl_km *km); /* accepts NULL; zeroises keys */

/* Loads every regular file "*.der" of dir as a UPP into the inventory. A file is taken
 * only if pl_upp_iccid accepts it (SAIP ProfileHeader first) and it is at most
 * PL_KM_UPP_MAX bytes; an ICCID or content already in the inventory is skipped.
 * *added / *skipped (may be NULL) count files. PL_ERR_IO if dir cannot be read. */
PL_MUST_CHECK int pl_km_load_profiles(struct pl_km *km, const char *dir, unsigned *added,
                                      unsigned *skipped);
/* Adds one UPP (borrowed). PL_ERR_EXISTS if its ICCID or content is already there. */
PL_MUST_CHECK int pl_km_add_profile(struct pl_km *km, const char *name, const uint8_t *upp,
                                    size_t len);

/* Handles one request frame from the station authenticated as `station` (its CurveZMQ
 * public key in Z85, as the ZAP handler reported it) and appends the reply frame to
 * reply. Every request gets exactly one reply (an Error message when refused); a retried
 * msg_id gets the stored reply byte for byte. PL_OK when a reply was written; a negative
 * error only if not even an Error reply could be built. */
PL_MUST_CHECK int pl_km_handle(struct pl_km *km, const char *station, const uint8_t *req,
                               size_t len, struct pl_wr *reply);

/* Marks issued packages whose lease expired without a report "possibly-used" (IFPP.md
 * §7 case 9). *n (may be NULL) gets the number changed. */
PL_MUST_CHECK int pl_km_expire(struct pl_km *km, unsigned *n);

/* ---- read-only views (status CLI, tests) ---- */

/* Package states (= keymaker.proto PackageState). */
enum pl_km_pkg_state {
    PL_KM_PKG_ISSUED = 1,
    PL_KM_PKG_INSTALLED = 2,
    PL_KM_PKG_FAILED = 3,
    PL_KM_PKG_POSSIBLY_USED = 4,
};
/* OTK registry states (IFPP.md §6.1). */
enum pl_km_otk_state {
    PL_KM_OTK_FREE = 1,
    PL_KM_OTK_BOUND = 2,
    PL_KM_OTK_CONSUMED = 3,
    PL_KM_OTK_VOID = 4,
};
const char *pl_km_otk_state_name(int state); /* "FREE", ...; never NULL */

struct pl_km_stats {
    unsigned profiles_available, profiles_reserved, profiles_installed;
    unsigned euiccs;
    unsigned otk_free, otk_bound, otk_consumed, otk_void;
    unsigned pkg_issued, pkg_installed, pkg_failed, pkg_possibly_used;
    unsigned stations, dedup_entries, deletion_tokens;
};
PL_MUST_CHECK int pl_km_stats(struct pl_km *km, struct pl_km_stats *out);
/* PL_ERR_NOT_FOUND if unknown. */
PL_MUST_CHECK int pl_km_otk_state(struct pl_km *km, const uint8_t eid[16], uint16_t otk_id,
                                  int *state);
PL_MUST_CHECK int pl_km_package_state(struct pl_km *km, const uint8_t package_id[16], int *state);

/* Opens db_path read-only and fills *out (for `status` while a daemon runs). */
PL_MUST_CHECK int pl_km_stats_file(const char *db_path, struct pl_km_stats *out);

/* ---- CurveZMQ keys (Z85 text files) ---- */

/* Writes a fresh CurveZMQ key pair: prefix.key (secret, mode 0600) and prefix.pub, one
 * Z85 line each. PL_ERR_EXISTS if either exists, PL_ERR_IO. */
PL_MUST_CHECK int pl_km_keygen(const char *prefix);
/* Reads a key file holding one Z85 key (40 characters, optional trailing newline) and
 * decodes it into 32 bytes. PL_ERR_CONFIG for a malformed file, PL_ERR_IO. */
PL_MUST_CHECK int pl_km_read_key(const char *path, uint8_t key[32]);

/* ---- the ZeroMQ server ---- */

struct pl_km_server_config {
    const char *bind;              /* e.g. "tcp://127.0.0.1:5555" */
    const char *curve_secret_file; /* the Key Maker's CurveZMQ secret key (Z85) */
    const char *allow_file;        /* station public keys, one Z85 per line; '#' comments */
    int poll_ms;                   /* loop tick for stop checks and lease expiry; 0 = 500 */
};

/* Checks the server configuration without binding: the key file and the allow-list
 * parse, and the list is not empty. PL_ERR_CONFIG / PL_ERR_IO. */
PL_MUST_CHECK int pl_km_server_check(const struct pl_km_server_config *cfg);

/* Serves until *stop becomes non-zero (set from a signal handler): ROUTER socket with
 * ZMQ_CURVE_SERVER, ZMQ_LINGER 0, ZMQ_MAXMSGSIZE; a ZAP handler thread on
 * inproc://zeromq.zap.01 that admits only the allow-listed station keys (others get no
 * answer at all). Each accepted frame pair (routing id, one protobuf frame) goes through
 * pl_km_handle; anything else is dropped and logged. PL_OK after a clean stop. */
PL_MUST_CHECK int pl_km_serve(struct pl_km *km, const struct pl_km_server_config *cfg,
                              volatile sig_atomic_t *stop);

#endif
