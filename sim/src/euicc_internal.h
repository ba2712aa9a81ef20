/* Software eUICC, factory (IFPP) and field (SGP.32 IoT) mode: private state and helpers
 * shared by the sim/src/euicc_*.c files. Never included from outside sim/src/ (the unit
 * tests include it white-box for the state codec).
 * provline reference: IFPP.md §6.2 (state, ES10f), §5.6-§5.7 (PIR, APDU transport),
 * §7 (failure matrix); EIM.md §1.3-§1.6, §4 (eUICC Packages, counters, association);
 * GSMA SGP.32 v1.2 §2.11, §5.9; docs/software-euicc.md (state file format, tearing
 * safety, field mode). */
#ifndef PROVLINE_SIM_EUICC_INTERNAL_H
#define PROVLINE_SIM_EUICC_INTERNAL_H

#include "provline/protocol/apdu.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/bsp.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/wr.h"
#include "provline/sim/euicc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PL_EUICC_SK_LEN      PL_EC_PRIV_LEN
#define PL_EUICC_TID_MAX     16u
#define PL_EUICC_STATE_MAX   (64u * 1024u * 1024u) /* whole state file */
#define PL_EUICC_CERT_MAX    8192u
#define PL_EUICC_META_MAX    4096u                   /* StoreMetadata 'BF25' plaintext */
#define PL_EUICC_UPP_MAX     (1024u * 1024u + 8192u) /* profile bytes of one ISD-P */
#define PL_EUICC_PIR_MAX     4096u                   /* one stored PIR 'BF37' */
#define PL_EUICC_EIM_CFG_MAX 4096u         /* one stored EimConfigurationData (canonical DER) */
#define PL_EUICC_EPR_MAX     (16u * 1024u) /* one stored EuiccPackageResult 'BF51' */
#define PL_EUICC_RESULTS_MAX (12u * 1024u) /* result list bytes of one package (ProfileInfo) */
#define PL_EUICC_ADDR_MAX    255u          /* stored FQDNs (default SM-DP+ address) */
#define PL_EUICC_OID_MAX     64u           /* stored defaultSmdpOid contents octets */

/* ---- persistent state (IFPP.md §6.2) ---- */

struct pl_euicc_otk {
    uint16_t id;
    uint8_t state;               /* enum pl_euicc_otk_state */
    uint8_t sk[PL_EUICC_SK_LEN]; /* otSK; all zero unless state == FREE */
    uint8_t pk[PL_EC_PUB_LEN];   /* otPK (public) */
};

struct pl_euicc_prof {
    uint8_t aid[PL_EUICC_AID_LEN]; /* ISD-P AID */
    uint8_t iccid[PL_EUICC_ICCID_LEN];
    bool enabled;
    bool fallback; /* SGP.32 Fallback Attribute (at most one profile has it) */
    uint8_t *meta; /* StoreMetadata 'BF25' plaintext, owned */
    size_t meta_len;
    uint8_t *upp; /* concatenated '86' plaintexts, owned */
    size_t upp_len;
};

/* A signed record waiting for its acknowledgement, by seqNumber: a pending notification
 * (whole 'BF37' PIR) or an eUICC Package Result (whole 'BF51', SGP.32 §2.11.2.1). */
struct pl_euicc_seq_blob {
    uint64_t seq;
    uint8_t *raw; /* owned */
    size_t len;
};

/* One associated eIM (SGP.32 §2.11.1.1.1 EimConfigurationData). */
struct pl_euicc_eim {
    uint8_t id[PL_EUICC_EIM_ID_MAX]; /* eimId (UTF-8), id_len bytes */
    size_t id_len;
    uint32_t counter; /* last accepted counterValue; the initial one until a package came */
    bool has_token;
    int64_t token; /* associationToken: part of every signature input for this eIM */
    /* The configuration as associated, re-encoded canonically without counterValue and
     * associationToken (those two live above and change). */
    uint8_t cfg[PL_EUICC_EIM_CFG_MAX];
    size_t cfg_len;
};

/* Field-mode settings (SGP.32 §5.9: configureImmediateEnable, setDefaultDpAddress). */
struct pl_euicc_field {
    int64_t token_last; /* the last associationToken the eUICC handed out */
    bool has_default_dp;
    uint8_t default_dp[PL_EUICC_ADDR_MAX];
    size_t default_dp_len;
    bool immediate_enable;
    bool has_ie_oid;
    uint8_t ie_oid[PL_EUICC_OID_MAX]; /* defaultSmdpOid contents octets */
    size_t ie_oid_len;
    bool has_ie_addr;
    uint8_t ie_addr[PL_EUICC_ADDR_MAX]; /* defaultSmdpAddress of immediate enable */
    size_t ie_addr_len;
};


/* The "in-progress load" marker: set (and persisted) together with the OTK consumption,
 * cleared (and persisted) together with the final PIR. Found set at open: the load was
 * interrupted by a power loss -> installFailedDueToInterruption(11). */
struct pl_euicc_marker {
    bool active;
    uint16_t otk_id;
    uint8_t tid[PL_EUICC_TID_MAX];
    size_t tid_len;
};

struct pl_euicc_state {
    enum pl_curve curve;
    uint8_t eid[PL_EUICC_EID_LEN];
    uint8_t sk[PL_EUICC_SK_LEN]; /* SK.EUICC.SIG */
    uint8_t *cert_euicc;         /* CERT.EUICC DER, owned */
    size_t cert_euicc_len;
    uint8_t *cert_eum;
    size_t cert_eum_len;
    uint8_t *cert_ci; /* the CI root the eUICC trusts (dpfChain, tokens) */
    size_t cert_ci_len;
    bool factory_mode;
    uint64_t pir_seq;      /* last seqNumber used for a notification */
    uint64_t dotk_counter; /* last accepted DeleteRemainingOtks counterValue */
    uint32_t isdp_next;    /* next ISD-P number */
    size_t n_otk;
    struct pl_euicc_otk *otk; /* owned array of n_otk */
    size_t n_prof;
    struct pl_euicc_prof prof[PL_EUICC_MAX_PROFILES];
    size_t n_notif;
    struct pl_euicc_seq_blob notif[PL_EUICC_MAX_NOTIFS];
    struct pl_euicc_marker loading;
    /* field mode */
    size_t n_eim;
    struct pl_euicc_eim eim[PL_EUICC_MAX_EIMS];
    struct pl_euicc_field field;
    size_t n_epr;
    struct pl_euicc_seq_blob epr[PL_EUICC_MAX_EPRS];
};

/* Zeroises and frees everything the state owns; the state becomes empty. */
void pl_euicc_state_free(struct pl_euicc_state *s);
/* Serialises the state (docs/software-euicc.md §2) into w. */
PL_MUST_CHECK int pl_euicc_state_encode(const struct pl_euicc_state *s, struct pl_wr *w);
/* Parses a whole state file image (magic, body, digest). s must be empty; on error it
 * is left empty. */
PL_MUST_CHECK int pl_euicc_state_decode(const uint8_t *p, size_t len, struct pl_euicc_state *s);
/* Reads path into s. */
PL_MUST_CHECK int pl_euicc_state_read(const char *path, struct pl_euicc_state *s);
/* Writes s to path tearing-safely: path.tmp, fsync, rename, fsync of the directory.
 * cut = true simulates a power loss during this write: half the temporary file is
 * written, nothing is renamed, PL_ERR_IO is returned. */
PL_MUST_CHECK int pl_euicc_state_write(const char *path, const struct pl_euicc_state *s, bool cut);

struct pl_euicc_otk *pl_euicc_otk_find(struct pl_euicc_state *s, uint16_t id);
size_t pl_euicc_otk_free_count(const struct pl_euicc_state *s);
/* Appends to list (*n of cap used); takes raw, even on error (PL_ERR_OVERFLOW when full). */
PL_MUST_CHECK int pl_euicc_seq_add(struct pl_euicc_seq_blob *list, size_t *n, size_t cap,
                                   uint64_t seq, uint8_t *raw, size_t len);
/* Removes (and frees) the record with seq; false when there is none. */
bool pl_euicc_seq_remove(struct pl_euicc_seq_blob *list, size_t *n, uint64_t seq);
#define PL_EUICC_NOTIF_ADD(s, seq, raw, len)                                                      \
    pl_euicc_seq_add((s)->notif, &(s)->n_notif, PL_EUICC_MAX_NOTIFS, (seq), (raw), (len))
#define PL_EUICC_EPR_ADD(s, seq, raw, len)                                                        \
    pl_euicc_seq_add((s)->epr, &(s)->n_epr, PL_EUICC_MAX_EPRS, (seq), (raw), (len))
void pl_euicc_prof_free(struct pl_euicc_prof *p);

/* ---- the runtime object ---- */

/* BPP load progress (RAM only; IFPP.md §5.7 segment order). */
enum pl_euicc_phase {
    PL_LOAD_IDLE = 0,
    PL_LOAD_HEADER,  /* ES10f LoadIfppPackage header 'FF71' accepted */
    PL_LOAD_ISCR,    /* 'BF36' header + 'BF23' accepted, OTK consumed; expect 'A0' */
    PL_LOAD_A0,      /* 'A0' done; expect 'A1' header */
    PL_LOAD_A1,      /* inside 'A1'; expect '88' */
    PL_LOAD_A1_DONE, /* 'A1' complete; expect 'A2' or 'A3' header */
    PL_LOAD_A2,      /* 'A2' done; expect 'A3' header */
    PL_LOAD_A3,      /* inside 'A3'; expect '86' */
};

struct pl_euicc_load {
    enum pl_euicc_phase phase;
    /* from the ES10f header, then the ISCR: the PIR's transactionId */
    uint16_t otk_id;
    uint8_t tid[PL_EUICC_TID_MAX];
    size_t tid_len;
    struct pl_eckey *dpf_pub; /* CERT.DPf key, its chain verified to the CI */
    bool consumed;            /* the OTK was consumed for this load */
    /* byte accounting of the 'BF36' being received */
    size_t bpp_left; /* contents of 'BF36' still to come */
    size_t a1_left;
    size_t a3_left;
    struct pl_bsp bsp; /* session keys: RAM only, wiped on every exit */
    uint8_t iccid[PL_EUICC_ICCID_LEN];
    struct pl_wr meta;                        /* '88' plaintexts (StoreMetadata) */
    struct pl_wr upp;                         /* '86' plaintexts (the profile) */
    uint8_t dp_oid[PL_CONFIGURE_ISDP_DP_MAX]; /* ConfigureISDP dpOid, for the PIR's smdpOid */
    size_t dp_oid_len;
    bool has_iccid;
    unsigned channel; /* logical channel the load runs on */
};

#define PL_EUICC_CHANNELS 4u /* basic channel 0 + logical channels 1..3 */

struct pl_euicc {
    char *path;
    struct pl_euicc_opts opts;
    struct pl_rng rng;
    unsigned writes; /* state writes attempted since open */
    bool dead;       /* power was "cut": every call fails */
    struct pl_euicc_state st;
    struct pl_eckey *sk; /* SK.EUICC.SIG as a key object */
    /* transport */
    bool chan_open[PL_EUICC_CHANNELS];
    bool isdr_selected[PL_EUICC_CHANNELS];
    struct pl_es10_rx rx; /* STORE DATA reassembly */
    struct pl_es10_tx tx; /* pending response, borrows rsp */
    uint8_t *rsp;         /* owned copy of the pending response */
    size_t rsp_len;
    unsigned rsp_chan;
    struct pl_euicc_load load;
    bool await_reset; /* lose_result_after_enable fired: ES10 answers 6985 until reset */
};

/* Persists e->st. On failure (a simulated cut or a real I/O error) the object turns
 * dead: its RAM state no longer matches the file and nothing more may happen. */
PL_MUST_CHECK int pl_euicc_persist(struct pl_euicc *e);

/* Builds, signs and stores (persisting) a PIR for transaction tid, appending the whole
 * 'BF37' to out when out != NULL. success: aid is the ISD-P; error: cmd/reason.
 * clear_marker: clear the in-progress marker in the same write. */
PL_MUST_CHECK int pl_euicc_pir_emit(struct pl_euicc *e, const uint8_t *tid, size_t tid_len,
                                    const uint8_t *iccid, const uint8_t *aid, int cmd, int reason,
                                    bool clear_marker, struct pl_wr *out);

struct pl_ifpp_chain;
/* Verifies an SM-DPf chain (leaf first; the CI root is the eUICC's CERT.CI) for role DPpb
 * at the object's time and returns the leaf's public key (owned). Certificate errors as
 * pl_cert_parse / pl_cert_verify_chain. */
PL_MUST_CHECK int pl_euicc_verify_dpf_chain(const struct pl_euicc *e,
                                            const struct pl_ifpp_chain *chain,
                                            struct pl_eckey **pub);

/* Ends a load in error: stores a signed error PIR (cmd, reason; cmd < 0 = the command the
 * load was at) as a pending notification, clearing the in-progress marker in the same
 * write when the OTK was consumed, appends the 'BF37' to out (may be NULL), and wipes the
 * load context (keys, partial profile). Nothing to do when no load is in progress. */
PL_MUST_CHECK int pl_euicc_load_abort(struct pl_euicc *e, int cmd, int reason, struct pl_wr *out);
/* Ends a load cut short by another command or a closed channel: once the OTK was consumed,
 * a signed installFailedDueToInterruption(11) PIR is stored (IFPP.md §7 case 7); a header
 * alone is forgotten. */
PL_MUST_CHECK int pl_euicc_load_interrupt(struct pl_euicc *e);
/* Wipes the RAM load context without any state change. */
void pl_euicc_load_reset(struct pl_euicc *e);

/* ES10 request handlers: req is one whole reassembled STORE DATA request (borrowed);
 * the response (possibly empty) is appended to rsp. Return PL_OK, or a status word
 * (> 0, e.g. 0x6985) to answer instead of data, or a negative pl_err (-> 6F00). */
PL_MUST_CHECK int pl_euicc_es10_dispatch(struct pl_euicc *e, const uint8_t *req, size_t len,
                                         unsigned channel, struct pl_wr *rsp);
/* Whether tag is one of the BPP segment tags ('BF36', 'A0'-'A3', '86'-'88'). */
bool pl_euicc_is_bpp_segment_tag(uint32_t tag);
PL_MUST_CHECK int pl_euicc_es10b_load_bpp_segment(struct pl_euicc *e, const uint8_t *seg,
                                                  size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10f_load_header(struct pl_euicc *e, const uint8_t *req, size_t len,
                                             struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10f_get_ifpp_info(struct pl_euicc *e, const uint8_t *req, size_t len,
                                               struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10f_delete_otks(struct pl_euicc *e, const uint8_t *req, size_t len,
                                             struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_retrieve_notifications(struct pl_euicc *e, const uint8_t *req,
                                                        size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_notification_sent(struct pl_euicc *e, const uint8_t *req,
                                                   size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10c_get_eid(struct pl_euicc *e, const uint8_t *req, size_t len,
                                         struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10c_list_profile_info(struct pl_euicc *e, const uint8_t *req,
                                                   size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_list_notification(struct pl_euicc *e, const uint8_t *req,
                                                   size_t len, struct pl_wr *rsp);
/* A request that carries no arguments: exactly one TLV with tag (an empty SEQUENCE such as
 * 'BF20 00'; extension additions, well-formed TLVs inside, are tolerated). PL_OK or
 * PL_SW_WRONG_DATA. */
PL_MUST_CHECK int pl_euicc_req_no_args(const uint8_t *req, size_t len, uint32_t tag);
PL_MUST_CHECK int pl_euicc_es10b_get_euicc_info1(struct pl_euicc *e, const uint8_t *req, size_t len,
                                                 struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_get_euicc_info2(struct pl_euicc *e, const uint8_t *req, size_t len,
                                                 struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_get_certs(struct pl_euicc *e, const uint8_t *req, size_t len,
                                           struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_add_initial_eim(struct pl_euicc *e, const uint8_t *req, size_t len,
                                                 struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_get_eim_configuration_data(struct pl_euicc *e, const uint8_t *req,
                                                            size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_load_euicc_package(struct pl_euicc *e, const uint8_t *req,
                                                    size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10a_euicc_configured_addresses(struct pl_euicc *e, const uint8_t *req,
                                                            size_t len, struct pl_wr *rsp);
PL_MUST_CHECK int pl_euicc_es10b_set_default_dp_address(struct pl_euicc *e, const uint8_t *req,
                                                        size_t len, struct pl_wr *rsp);

/* ---- field mode helpers ---- */

/* The CI's subjectKeyIdentifier (euiccCiPKId): the one CI this eUICC trusts. */
#define PL_EUICC_SKI_MAX 32u
PL_MUST_CHECK int pl_euicc_ci_ski(const struct pl_euicc *e, uint8_t out[PL_EUICC_SKI_MAX],
                                  size_t *len);

/* ProfileInfoListRequest (SGP.22 v2.5 §5.7.15) as the handlers see it. */
struct pl_euicc_pil_query {
    enum pl_sgp32_search_kind search;
    const uint8_t *aid; /* SEARCH_ISDP_AID */
    size_t aid_len;
    uint8_t iccid[PL_EUICC_ICCID_LEN]; /* SEARCH_ICCID */
    int64_t profile_class;             /* SEARCH_PROFILE_CLASS */
    bool has_tag_list;
    const uint8_t *tag_list; /* '5C' contents: the ProfileInfo tags wanted */
    size_t tag_list_len;
};
/* Appends one SGP32-ProfileInfo 'E3' per matching profile to out; *count gets their
 * number. PL_ERR_MALFORMED for a tagList that is not a list of BER tags. */
PL_MUST_CHECK int pl_euicc_profile_info_put(const struct pl_euicc *e,
                                            const struct pl_euicc_pil_query *q, struct pl_wr *out,
                                            size_t *count);

/* eIM configuration (euicc_eim_config.c). */
struct pl_sgp32_eim_config;
struct pl_euicc_eim *pl_euicc_eim_find(struct pl_euicc_state *s, const uint8_t *id, size_t len);
void pl_euicc_eim_remove(struct pl_euicc_state *s, size_t i);
/* Checks a configuration for association (AddInitialEim, addEim, updateEim after merging):
 * *code = 0 or an AddInitialEimError / AddEimResult code (PL_SGP32_ADD_EIM_*). Returns a
 * negative pl_err only for internal failures (memory). */
PL_MUST_CHECK int pl_euicc_eim_check(const struct pl_euicc *e,
                                     const struct pl_sgp32_eim_config *cfg, int *code);
/* Builds the stored form of a checked configuration; when it asks for an association
 * token (associationToken present, any value) the eUICC hands out the next one
 * (field.token_last + 1, changing e->st.field). */
PL_MUST_CHECK int pl_euicc_eim_make(struct pl_euicc *e, const struct pl_sgp32_eim_config *cfg,
                                    struct pl_euicc_eim *out);
/* The eIM's public key for eUICC Package signatures (eimPublicKeyData), owned. */
PL_MUST_CHECK int pl_euicc_eim_key(const struct pl_euicc_eim *eim, struct pl_eckey **out);

/* One LoadEuiccPackage being executed (euicc_es10b_load_euicc_package*.c). Profiles
 * deleted by the package are parked in deleted[] and freed only at commit, so a failure
 * before the state write can restore the profile table. */
struct pl_euicc_exec {
    struct pl_euicc *e;
    struct pl_euicc_prof deleted[PL_EUICC_MAX_PROFILES];
    size_t n_deleted;
    size_t result_bytes; /* list bytes produced so far (PL_EUICC_RESULTS_MAX) */
    bool enabled;        /* an enable PSMO succeeded */
};
/* Executes one PSMO / eCO on e->st (RAM) and fills res; buf is storage the result's views
 * may point into (valid until the result is signed). Returns PL_OK or a negative pl_err
 * (internal failure: the caller rolls back). */
PL_MUST_CHECK int pl_euicc_psmo_execute(struct pl_euicc_exec *x, const struct pl_sgp32_psmo *op,
                                        struct pl_wr *buf, struct pl_sgp32_euicc_result *res);
PL_MUST_CHECK int pl_euicc_eco_execute(struct pl_euicc_exec *x, const struct pl_sgp32_eco *op,
                                       struct pl_wr *buf, struct pl_sgp32_euicc_result *res);

#endif
