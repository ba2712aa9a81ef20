/* Internal to ipa/: the IPA object, its persistent state, and the helpers shared by the
 * ES10 (ipa_es10*.c), ESipa (ipa_esipa_*.c) and procedure (ipa_proc_*.c) files.
 * Not a public header. Sources: see provline/ipa/ipa.h. */
#ifndef PROVLINE_IPA_IPA_INTERNAL_H
#define PROVLINE_IPA_IPA_INTERNAL_H

#include "provline/ipa/ipa.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/sgp32_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define PL_IPA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_IPA_PRINTF(a, b)
#endif

#define PL_IPA_TIMEOUT_DEFAULT_MS        30000
#define PL_IPA_BACKOFF_MIN_DEFAULT_MS    10000u
#define PL_IPA_BACKOFF_MAX_DEFAULT_MS    3600000u
#define PL_IPA_DELIVERY_ATTEMPTS_DEFAULT 5u
#define PL_IPA_TRIGGER_MAX               1024u /* a recorded 'BF54' request (AC <= 255 bytes) */

/* The package whose LoadEuiccPackage answer has not been captured yet. */
struct pl_ipa_flight {
    char eim_id[PL_SGP32_EIM_ID_MAX + 1];
    size_t eim_id_len;
    uint32_t counter;
    uint8_t txid[PL_SGP32_TXID_MAX];
    size_t txid_len; /* 0: none */
};

/* Everything the state file holds (docs/ipa.md §4). */
struct pl_ipa_state {
    bool has_eid;
    uint8_t eid[PL_SGP32_EID_LEN];
    char eim_id[PL_SGP32_EIM_ID_MAX + 1];
    char eim_fqdn[PL_SGP32_ADDR_MAX + 1];
    uint64_t last_poll_ms;
    uint64_t next_poll_ms;
    uint32_t backoff_ms;
    bool has_fingerprint;
    uint8_t fingerprint[PL_SHA256_LEN]; /* SHA-256 of the last ListProfileInfo answer */
    bool notify_pending;
    bool in_flight;
    struct pl_ipa_flight flight;
    bool has_pending;
    uint32_t pending_attempts;
    struct pl_wr pending; /* the ProvideEimPackageResult 'BF50' not yet accepted */
    size_t n_awaiting;
    uint32_t awaiting[PL_IPA_MAX_AWAITING_ACK];
    size_t trigger_len; /* 0: none */
    uint8_t trigger[PL_IPA_TRIGGER_MAX];
    uint64_t polls, packages, acks_applied, recovered;
};

struct pl_ipa {
    struct pl_ipa_config cfg;
    char *state_path;
    struct pl_ipa_state st;
    /* ES10 path */
    bool open;
    unsigned channel;
    /* set by the GetEimConfigurationData of this run (not persisted) */
    bool eim_config_read;
    bool has_token;
    int64_t token;
};

/* ---- core (ipa_core.c) ---- */
PL_IPA_PRINTF(3, 4)
void pl_ipa_log(const struct pl_ipa *ipa, enum pl_ipa_log_level level, const char *fmt, ...);
uint64_t pl_ipa_now(const struct pl_ipa *ipa);
/* Schedules the next poll: work done -> now, back-off reset; otherwise the back-off grows. */
void pl_ipa_schedule(struct pl_ipa *ipa, bool work);
/* Writes the state file (no-op without one); logs failures. */
int pl_ipa_save(struct pl_ipa *ipa);
/* Records seq as delivered and awaiting an acknowledgement (dropping the oldest when full). */
void pl_ipa_await_ack(struct pl_ipa *ipa, uint32_t seq);
/* Removes seq from the awaiting set; false if it was not there. */
bool pl_ipa_take_ack(struct pl_ipa *ipa, uint32_t seq);

/* ---- state file (ipa_state.c) ---- */
void pl_ipa_state_init(struct pl_ipa_state *st);
void pl_ipa_state_free(struct pl_ipa_state *st);
/* PL_ERR_NOT_FOUND when the file does not exist, PL_ERR_MALFORMED when it is corrupt. */
PL_MUST_CHECK int pl_ipa_state_read(const char *path, struct pl_ipa_state *st);
PL_MUST_CHECK int pl_ipa_state_write(const char *path, const struct pl_ipa_state *st);
PL_MUST_CHECK int pl_ipa_state_encode(const struct pl_ipa_state *st, struct pl_wr *w);
PL_MUST_CHECK int pl_ipa_state_decode(const uint8_t *p, size_t len, struct pl_ipa_state *st);

/* ---- ES10 path (ipa_es10.c) ---- */
/* One ES10 request over the ISD-R path (opened on demand); response data appended to rsp,
 * the final status word in *sw (may be NULL). A transport failure drops the path; with
 * retry, a request on a path that was already open is sent once more on a fresh path (for
 * idempotent reads only: never for LoadEuiccPackage). */
PL_MUST_CHECK int pl_ipa_es10(struct pl_ipa *ipa, const uint8_t *req, size_t len, struct pl_wr *rsp,
                              uint16_t *sw, bool retry);
void pl_ipa_es10_drop(struct pl_ipa *ipa);
/* Resets the eUICC through cfg.card_reset (PL_ERR_UNSUPPORTED without one); the ES10 path
 * is gone afterwards. */
PL_MUST_CHECK int pl_ipa_card_reset(struct pl_ipa *ipa);
/* Status word meaning "this eUICC does not offer the function" (ISO 7816-4 '6A88', '6D00'). */
bool pl_ipa_sw_unsupported(uint16_t sw);

/* ES10c.GetEID (SGP.22 v2.5 §5.7.20), ipa_es10c_get_eid.c */
PL_MUST_CHECK int pl_ipa_es10c_get_eid(struct pl_ipa *ipa, uint8_t eid[PL_SGP32_EID_LEN]);
/* ES10b.GetEimConfigurationData (SGP.32 §5.9.18), ipa_es10b_get_eim_configuration_data.c:
 * fills ipa->st.eim_id / eim_fqdn and ipa->token. PL_ERR_UNSUPPORTED when the eUICC does not
 * offer it, PL_ERR_NOT_FOUND when no eIM is configured. */
PL_MUST_CHECK int pl_ipa_es10b_get_eim_configuration_data(struct pl_ipa *ipa);
/* ES10c.ListProfileInfo (SGP.22 v2.5 §5.7.15) fingerprint, ipa_es10c_list_profile_info.c */
PL_MUST_CHECK int pl_ipa_es10c_profiles_fingerprint(struct pl_ipa *ipa, uint8_t fp[PL_SHA256_LEN]);
/* ES10b.LoadEuiccPackage (SGP.32 §5.9.1), ipa_es10b_load_euicc_package.c: the raw
 * EuiccPackageResult 'BF51' appended to epr (checked with the codec). */
PL_MUST_CHECK int pl_ipa_es10b_load_euicc_package(struct pl_ipa *ipa, const uint8_t *req,
                                                  size_t len, struct pl_wr *epr, uint16_t *sw);

/* ES10b.RetrieveNotificationsList (SGP.22 v2.5 §5.7.10, SGP.32 §5.9.x searchCriteria
 * euiccPackageResults), ipa_es10b_retrieve_notifications_list.c. */
enum pl_ipa_notif_crit {
    PL_IPA_NOTIF_ALL = 0,
    PL_IPA_NOTIF_SEQ = 1,
    PL_IPA_NOTIF_EVENTS = 2,
};
/* Pending notifications: the element TLVs back to back appended to list (each raw, as the
 * eUICC gave them) and their seqNumbers in seqs (cap PL_NOTIF_LIST_MAX). At most max_bytes
 * of elements are taken (the rest stay for later). */
PL_MUST_CHECK int pl_ipa_es10b_notifications(struct pl_ipa *ipa, enum pl_ipa_notif_crit crit,
                                             uint32_t arg, size_t max_bytes, struct pl_wr *list,
                                             size_t *count, uint32_t *seqs, size_t *n_seqs);
/* Stored eUICC Package Results: each 'BF51' element the eUICC returns is decoded, passed to
 * keep(user, &res) and appended to list when keep returns true. */
struct pl_sgp32_euicc_package_result;
typedef bool (*pl_ipa_epr_filter)(void *user, const struct pl_sgp32_euicc_package_result *res);
PL_MUST_CHECK int pl_ipa_es10b_package_results(struct pl_ipa *ipa, pl_ipa_epr_filter keep,
                                               void *user, size_t max_bytes, struct pl_wr *list,
                                               size_t *count, uint32_t *seqs, size_t *n_seqs);
/* ES10b.RemoveNotificationFromList (NotificationSent 'BF30'), same file: *status the
 * deleteNotificationStatus. */
PL_MUST_CHECK int pl_ipa_es10b_notification_sent(struct pl_ipa *ipa, uint32_t seq, int64_t *status);

/* ES10b.GetEUICCInfo1 / GetEUICCInfo2 (SGP.22 v2.5 §5.7.8, SGP.32 §5.9.x), GetCerts
 * (SGP.32 §5.9.x), ES10a.GetEuiccConfiguredAddresses (SGP.22 v2.5 §5.7.3):
 * ipa_es10b_get_euicc_info.c. Each appends what IpaEuiccData needs. */
PL_MUST_CHECK int pl_ipa_es10b_get_euicc_info(struct pl_ipa *ipa, bool info2, struct pl_wr *out);
/* *ci_error set (and PL_OK returned) when the eUICC answered getCertsError. The certificate
 * contents (without '30 len') go to eum / euicc. */
PL_MUST_CHECK int pl_ipa_es10b_get_certs(struct pl_ipa *ipa, const uint8_t *ci_pkid,
                                         size_t ci_pkid_len, struct pl_wr *eum, struct pl_wr *euicc,
                                         bool *ci_error);
PL_MUST_CHECK int pl_ipa_es10a_configured_addresses(struct pl_ipa *ipa, struct pl_wr *default_dp,
                                                    bool *has_default_dp, struct pl_wr *root_ds,
                                                    bool *has_root_ds);

/* ---- ESipa (ipa_esipa_*.c) ---- */
/* Posts one body and appends the answer to rsp (cap PL_IPA_BODY_MAX). */
PL_MUST_CHECK int pl_ipa_esipa_post(struct pl_ipa *ipa, const uint8_t *req, size_t len,
                                    struct pl_wr *rsp);
/* GetEimPackageRequest 'BF4F' with eidValue and notifyStateChange. */
PL_MUST_CHECK int pl_ipa_esipa_get_eim_package_request(struct pl_ipa *ipa, bool notify,
                                                       struct pl_wr *w);
/* Stores a ProvideEimPackageResult carrying result (encoded arm, see the codec) as the
 * pending result (attempts reset) and saves the state. */
struct pl_sgp32_eim_package_result;
PL_MUST_CHECK int pl_ipa_set_pending_result(struct pl_ipa *ipa,
                                            const struct pl_sgp32_eim_package_result *result);
/* Delivers the pending result; applies the eIM's acknowledgements; clears it when the eIM
 * took it (or after max_delivery_attempts refusals). PL_OK when accepted. */
PL_MUST_CHECK int pl_ipa_esipa_provide_eim_package_result(struct pl_ipa *ipa);
/* Applies an EimAcknowledgements 'BF53' TLV: NotificationSent for each delivered seqNumber. */
PL_MUST_CHECK int pl_ipa_proc_eim_acknowledgements(struct pl_ipa *ipa, const uint8_t *p,
                                                   size_t len);

/* ---- procedures (ipa_proc_*.c) ---- */
/* GetEID check (the state belongs to one eUICC) and the eIM configuration. */
PL_MUST_CHECK int pl_ipa_proc_identify(struct pl_ipa *ipa);
/* Each stores its result as the pending result (or fails before anything was executed). */
PL_MUST_CHECK int pl_ipa_proc_euicc_package(struct pl_ipa *ipa, const uint8_t *p, size_t len);
/* Recovers the result of the package in flight (lost answer or crash): pending result. */
PL_MUST_CHECK int pl_ipa_proc_recover_in_flight(struct pl_ipa *ipa);
PL_MUST_CHECK int pl_ipa_proc_ipa_euicc_data(struct pl_ipa *ipa, const uint8_t *p, size_t len);
PL_MUST_CHECK int pl_ipa_proc_profile_download_trigger(struct pl_ipa *ipa, const uint8_t *p,
                                                       size_t len);

#endif
