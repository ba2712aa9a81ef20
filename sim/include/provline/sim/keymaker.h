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
 * process and are never logged. It also signs the stations' audit checkpoints (protocol
 * version 2, docs/decisions/0016-audit-checkpoint-key.md). Not thread-safe: one thread per
 * struct pl_km.
 *
 * The daemon around it (ARCHITECTURE.md §7): settings from an INI file and flags
 * (pl_km_settings_*, docs/keymaker.conf.5.md), a Prometheus metrics endpoint served from the
 * same loop (pl_km_metrics_render), structured logs through the injected sink. */
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
    unsigned audit_checkpoints; /* checkpoints signed (one per station, chain, seq) */
};
PL_MUST_CHECK int pl_km_stats(struct pl_km *km, struct pl_km_stats *out);
/* PL_ERR_NOT_FOUND if unknown. */
PL_MUST_CHECK int pl_km_otk_state(struct pl_km *km, const uint8_t eid[16], uint16_t otk_id,
                                  int *state);
PL_MUST_CHECK int pl_km_package_state(struct pl_km *km, const uint8_t package_id[16], int *state);

/* Opens db_path read-only and fills *out (for `status` while a daemon runs). */
PL_MUST_CHECK int pl_km_stats_file(const char *db_path, struct pl_km_stats *out);

/* ---- counters and metrics ---- */

#define PL_KM_MSG_TYPES   32u /* counters by Msg body tag (keymaker.proto field number) */
#define PL_KM_ERROR_CODES 32u /* counters by ErrorCode */

/* Counted by this process since pl_km_open (not stored: a restart starts at 0, which
 * Prometheus reads as a counter reset). */
struct pl_km_counters {
    uint64_t messages[PL_KM_MSG_TYPES]; /* requests by body tag; [0] = frames that did not
                                         * decode */
    uint64_t errors[PL_KM_ERROR_CODES]; /* error codes answered: Error replies, rejected OTKs,
                                         * refused report entries, refused checkpoints */
    uint64_t dedup_hits;                /* retried msg_ids answered from the dedup record */
    uint64_t checkpoints;               /* signed audit checkpoints returned */
    uint64_t frames_dropped;            /* by the server: not [routing id][one frame] */
    uint64_t internal_errors;           /* requests that failed inside the Key Maker */
};
void pl_km_counters(const struct pl_km *km, struct pl_km_counters *out);

/* Appends the Prometheus text exposition (format 0.0.4) of the database views
 * (pl_km_stats: packages, OTKs and profiles by state) and the counters to out. */
PL_MUST_CHECK int pl_km_metrics_render(struct pl_km *km, struct pl_wr *out);

/* ---- CurveZMQ keys (Z85 text files) ---- */

/* Writes a fresh CurveZMQ key pair: prefix.key (secret, mode 0600) and prefix.pub, one
 * Z85 line each. PL_ERR_EXISTS if either exists, PL_ERR_IO. */
PL_MUST_CHECK int pl_km_keygen(const char *prefix);
/* Reads a key file holding one Z85 key (40 characters, optional trailing newline) and
 * decodes it into 32 bytes. PL_ERR_CONFIG for a malformed file, PL_ERR_IO. */
PL_MUST_CHECK int pl_km_read_key(const char *path, uint8_t key[32]);
/* Checks an allow-list file (one Z85 station key per line, '#' comments, not empty); *n
 * (may be NULL) gets the number of keys. PL_ERR_CONFIG, PL_ERR_OVERFLOW, PL_ERR_IO. */
PL_MUST_CHECK int pl_km_allow_check(const char *path, size_t *n);

/* ---- the ZeroMQ server ---- */

struct pl_km_server_config {
    const char *bind;              /* e.g. "tcp://127.0.0.1:5555" */
    const char *curve_secret_file; /* the Key Maker's CurveZMQ secret key (Z85) */
    const char *allow_file;        /* station public keys, one Z85 per line; '#' comments */
    int poll_ms;                   /* loop tick for stop checks and lease expiry; 0 = 500 */
    /* Metrics endpoint "127.x.y.z:PORT" (IPv4 loopback only; PORT 0 = the kernel picks one,
     * logged as event=metrics_listening); NULL = none. HTTP/1.0 GET /metrics. */
    const char *metrics;
};

/* Checks the server configuration without binding: the key file and the allow-list
 * parse, and the list is not empty. PL_ERR_CONFIG / PL_ERR_IO. */
PL_MUST_CHECK int pl_km_server_check(const struct pl_km_server_config *cfg);

/* Serves until *stop becomes non-zero (set from a signal handler): ROUTER socket with
 * ZMQ_CURVE_SERVER, ZMQ_LINGER 0, ZMQ_MAXMSGSIZE; a ZAP handler thread on
 * inproc://zeromq.zap.01 that admits only the allow-listed station keys (others get no
 * answer at all). Each accepted frame pair (routing id, one protobuf frame) goes through
 * pl_km_handle; anything else is dropped and logged. With cfg->metrics, the metrics
 * endpoint's sockets are polled by the same zmq_poll (no thread). PL_OK after a clean
 * stop; PL_ERR_IO if a socket cannot be set up (bind, metrics port in use). */
PL_MUST_CHECK int pl_km_serve(struct pl_km *km, const struct pl_km_server_config *cfg,
                              volatile sig_atomic_t *stop);

/* ---- daemon settings (provline-keymaker serve --config FILE and flags;
 * docs/keymaker.conf.5.md) ---- */

enum pl_km_setting {
    PL_KM_SET_PKI = 0,
    PL_KM_SET_DB = 1,
    PL_KM_SET_PROFILES = 2,
    PL_KM_SET_BIND = 3,
    PL_KM_SET_CURVE_SECRET = 4,
    PL_KM_SET_ALLOW = 5,
    PL_KM_SET_LEASE_SECONDS = 6,
    PL_KM_SET_RSK = 7,
    PL_KM_SET_VERBOSE = 8,
    PL_KM_SET_ID = 9,
    PL_KM_SET_METRICS = 10,
};
#define PL_KM_SETTINGS          11u
#define PL_KM_LEASE_SECONDS_MAX (30u * 86400u)

/* Every problem found goes to the sink, one call per problem: where (e.g. "km.conf:7",
 * "--bind", "km.conf"), the setting's name (or "" for the file itself) and what is wrong. */
struct pl_km_settings {
    char *value[PL_KM_SETTINGS]; /* owned copies of the text given; NULL = not set */
    char *where[PL_KM_SETTINGS]; /* owned: where each value came from */
    void (*problem)(void *user, const char *where, const char *setting, const char *what);
    void *problem_user;
    unsigned problems; /* problems reported so far */
};
/* Empty settings reporting to problem (may be NULL). Cannot fail. */
void pl_km_settings_init(struct pl_km_settings *s,
                         void (*problem)(void *user, const char *where, const char *setting,
                                         const char *what),
                         void *user);
void pl_km_settings_free(struct pl_km_settings *s); /* accepts an initialised struct */
/* The INI key of a setting ("pki", "curve_secret", ...); NULL for an unknown one. */
const char *pl_km_setting_name(enum pl_km_setting k);

/* Sets one setting by its INI key (the flag without "--", '-' read as '_'), replacing an
 * earlier value (flags override the file); copies name, value and where. An unknown name is
 * a problem (PL_ERR_CONFIG). PL_ERR_NOMEM. */
PL_MUST_CHECK int pl_km_settings_set(struct pl_km_settings *s, const char *name, const char *value,
                                     const char *where);
/* Reads an INI file: settings as "key = value" lines in one [keymaker] section; '#' and ';'
 * start comments. An unknown section or key, a key outside the section, a key given twice
 * and a syntax error are problems (PL_ERR_CONFIG). PL_ERR_IO (also a problem) if the file
 * cannot be read. */
PL_MUST_CHECK int pl_km_settings_load(struct pl_km_settings *s, const char *path);
/* Validates every setting without creating or changing anything: the required ones (pki, db,
 * profiles, bind, curve_secret, allow) are set; numbers, booleans, the endpoint, the id and
 * the loopback metrics address parse; the PKI loads and its CERT.DPpb chains to its CI at
 * now; the key file and the allow-list parse; the profiles directory is readable; the
 * database's directory is writable. One problem per bad setting. Returns the number of
 * problems found by this call (0: the settings are usable). */
unsigned pl_km_settings_check(struct pl_km_settings *s, time_t now);

/* The daemon's configuration, from settings that passed pl_km_settings_check (strings
 * borrowed from s). */
struct pl_km_daemon {
    struct pl_km_config km;            /* db_path, pki_dir, keymaker_id, lease_seconds, rsk */
    struct pl_km_server_config server; /* bind, curve_secret_file, allow_file, metrics */
    const char *profiles;
    bool verbose;
};
/* Fills *out (pl_km_config_init defaults for the rest). PL_ERR_CONFIG if a value does not
 * parse (settings not checked). */
PL_MUST_CHECK int pl_km_settings_apply(const struct pl_km_settings *s, struct pl_km_daemon *out);

#endif
