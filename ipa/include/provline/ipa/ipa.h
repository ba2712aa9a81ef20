/* The IPA (IoT Profile Assistant, SGP.32 v1.2 IPAd role): the device agent after production.
 * It polls the eIM over ESipa (eIM Package Retrieval, §3.1.1.1 / §6.3.2.6 GetEimPackage),
 * executes what it gets through the eUICC's ES10b functions and reports the result
 * (§6.3.2.7 ProvideEimPackageResult):
 *   - EuiccPackageRequest 'BF51' -> ES10b.LoadEuiccPackage (§5.9.1), the eUICC-signed
 *     EuiccPackageResult plus the pending notifications (ES10b.RetrieveNotificationsList,
 *     SGP.22 v2.5 §5.7.10) as ePRAndNotifications;
 *   - IpaEuiccDataRequest 'BF52' (§2.11.1.2) -> IpaEuiccData collected from the eUICC
 *     (notifications, stored eUICC Package Results, EUICCInfo1/2, certificates, ...);
 *   - ProfileDownloadTriggerRequest 'BF54' (§2.11.1.3) -> recorded; the SM-DP+ download itself
 *     is not implemented, so the result is profileDownloadError undefinedError(127)
 *     (docs/ipa.md §5);
 *   - eimPackageError noEimPackageAvailable -> bounded exponential back-off;
 *   - EimAcknowledgements 'BF53' (§2.11.1.4) in the eIM's answer -> ES10b.RemoveNotification-
 *     FromList (NotificationSent 'BF30') for every acknowledged seqNumber the IPA delivered.
 * notifyStateChange (§6.3.2.6) is set when the eUICC's profile list changed since the last
 * poll for a reason the IPA did not cause.
 *
 * Results are never invented: if the eUICC's answer to LoadEuiccPackage is lost (an error
 * status word, a transport error, no data) the IPA looks for the stored result on the eUICC
 * (SGP.32 RetrieveNotificationsList, searchCriteria euiccPackageResults) and, if there is
 * none, reports eimPackageResultResponseError undefinedError(127) so that the eIM re-queries
 * (IpaEuiccDataRequest with searchCriteriaEuiccPackageResult). EIM.md §1.6.
 *
 * The IPA keeps a small state file (eimId/FQDN from GetEimConfigurationData, last poll,
 * back-off, the package in flight, the result not yet delivered, the sequence numbers
 * awaiting an acknowledgement, the last download trigger), written tearing-safely
 * (temporary file, fsync, rename, fsync of the directory) before every step whose loss
 * would lose a result. Format: docs/ipa.md §4.
 *
 * Seams (STYLE.md §7.3 rule 9): the eUICC only through struct pl_apdu_ops (ES10 over STORE
 * DATA, pl_es10_transceive), the eIM only through struct pl_esipa_transport_ops (CoAP/DTLS
 * back-end in provline/ipa/ipa_coap.h), time only through struct pl_clock_ops.
 * Not thread-safe: one thread per struct pl_ipa. Nothing is printed; an optional callback gets
 * one line per event. */
#ifndef PROVLINE_IPA_IPA_H
#define PROVLINE_IPA_IPA_H

#include "provline/protocol/apdu.h"
#include "provline/protocol/clock.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Cap on one ESipa body in either direction (an eIM response, a result the IPA sends). */
#define PL_IPA_BODY_MAX (64u * 1024u)
/* Cap on one ES10 response from the eUICC. */
#define PL_IPA_ES10_RSP_MAX (64u * 1024u)
/* Sequence numbers (notifications, eUICC Package Results) delivered and awaiting an
 * acknowledgement; the oldest is forgotten past this. */
#define PL_IPA_MAX_AWAITING_ACK 64u

/* ---- the ESipa transport seam ---- */

/* post sends one ESipa request body (an EsipaMessageFromIpaToEim, DER) and appends the eIM's
 * response body to rsp (a writer with its own cap; an empty body is a valid answer).
 * timeout_ms (> 0) bounds the whole exchange. Returns PL_OK, or PL_ERR_TIMEOUT (no answer),
 * PL_ERR_IO (network), PL_ERR_DENIED (the security handshake was refused: wrong PSK,
 * untrusted certificate), PL_ERR_REMOTE (the server answered an error status),
 * PL_ERR_OVERFLOW (the body exceeds rsp's cap). */
struct pl_esipa_transport_ops {
    int (*post)(void *user, const uint8_t *req, size_t len, struct pl_wr *rsp, int timeout_ms);
    void *user;
};

enum pl_ipa_log_level {
    PL_IPA_LOG_ERROR = 0,
    PL_IPA_LOG_WARN = 1,
    PL_IPA_LOG_INFO = 2,
    PL_IPA_LOG_DEBUG = 3,
};

struct pl_ipa_config {
    /* The eUICC (copied; apdu.user is borrowed and must outlive the IPA). */
    struct pl_apdu_ops apdu;
    /* false (default): MANAGE CHANNEL + SELECT ISD-R on the new channel; true: SELECT on the
     * basic channel 0. */
    bool basic_channel;
    /* STORE DATA block size, 1..255; 0 = PL_ES10_MSS_DEFAULT. */
    size_t mss;
    /* Resets the eUICC (the UICC reset a REFRESH asks for; ISO/IEC 7816-3 warm reset);
     * optional (NULL: the IPA cannot reset the card). Called when the answer to
     * LoadEuiccPackage was lost, before the stored result is fetched: real eUICCs refuse
     * every command ('6985') after an enable until reset (EIM.md §1.6). Returns PL_OK or a
     * negative pl_err. card_reset_user is borrowed. */
    int (*card_reset)(void *user);
    void *card_reset_user;
    /* The eIM (copied; transport.user borrowed). */
    struct pl_esipa_transport_ops transport;
    /* Bound on one ESipa exchange; 0 = 30000 ms. */
    int timeout_ms;
    /* Time source for the poll schedule and the state file; now_ms == NULL: wall clock
     * (CLOCK_REALTIME, so that a schedule survives a reboot). Copied. */
    struct pl_clock_ops clock;
    /* State file (copied); NULL: keep the state in RAM only. */
    const char *state_path;
    /* Poll back-off after noEimPackageAvailable or a failure: starts at backoff_min_ms and
     * doubles up to backoff_max_ms; reset to 0 (poll again at once) when work arrives.
     * 0 = defaults 10 000 ms / 3 600 000 ms. */
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    /* IpaCapabilities reported in IpaEuiccData (PL_SGP32_IPA_* / PL_SGP32_PROTO_* masks of
     * sgp32_ipa_data.h / sgp32_eim_config.h). Default 0 / PL_SGP32_PROTO_RETRIEVE_COAPS. */
    uint32_t ipa_features;
    uint32_t ipa_protocols;
    bool ipa_protocols_set; /* true: use ipa_protocols as given (even 0) */
    /* DeviceInfo for IpaEuiccData 'A9': the contents octets of the SEQUENCE (borrowed, must
     * outlive the IPA); NULL: not offered. */
    const uint8_t *device_info;
    size_t device_info_len;
    /* A result the eIM refuses (provideEimPackageResultError or an unusable answer) is
     * offered this many times, then dropped (the eUICC keeps its own copy until
     * acknowledged). 0 = 5. Transport failures do not count. */
    unsigned max_delivery_attempts;
    /* One line per event, without newline (may be NULL). */
    void (*log)(void *user, enum pl_ipa_log_level level, const char *line);
    void *log_user;
};
/* Defaults as documented above; apdu and transport empty. Cannot fail. */
void pl_ipa_config_init(struct pl_ipa_config *c);

struct pl_ipa;

/* Returns owned *out (pl_ipa_free). Reads the state file when it exists (a missing file is a
 * fresh state; a corrupt one is PL_ERR_MALFORMED, an unreadable one PL_ERR_IO).
 * PL_ERR_INVAL without apdu.transmit or transport.post, with mss > 255, or with
 * backoff_min_ms > backoff_max_ms. Sends nothing. */
PL_MUST_CHECK int pl_ipa_new(const struct pl_ipa_config *cfg, struct pl_ipa **out);
/* Accepts NULL. Does not close the logical channel (the eUICC may be gone). */
void pl_ipa_free(struct pl_ipa *ipa);

/* What one poll achieved (non-negative returns of pl_ipa_poll). */
enum pl_ipa_poll_status {
    /* An eIM Package was executed or a pending result was delivered: poll again at once
     * (pl_ipa_next_poll_ms() is 0). */
    PL_IPA_POLL_WORK_DONE = 0,
    /* noEimPackageAvailable: wait pl_ipa_next_poll_ms() (the back-off grew). */
    PL_IPA_POLL_NO_PACKAGE = 1,
    /* The eIM answered an eimPackageError other than noEimPackageAvailable (eidNotFound,
     * invalidEid, missingEid, undefined): back-off as for NO_PACKAGE. */
    PL_IPA_POLL_EIM_ERROR = 2,
};

/* One round of eIM Package Retrieval: delivers a result still pending from an earlier
 * round, or else sends GetEimPackage and carries out what the eIM answered (see the top of
 * this file), delivering the result in the same call.
 * Returns a pl_ipa_poll_status, or a negative error when the round failed: transport errors
 * (PL_ERR_TIMEOUT, PL_ERR_IO, PL_ERR_DENIED, PL_ERR_REMOTE), PL_ERR_MALFORMED (the eIM's answer
 * does not decode or is not a valid answer to the request), PL_ERR_CARD_SW / PL_ERR_IO (the
 * eUICC could not be reached: nothing was sent to the eIM), PL_ERR_STATE (the answer to a
 * LoadEuiccPackage was lost and the eUICC does not answer yet: the package stays in flight),
 * PL_ERR_IO when the state file cannot be written. In every case pl_ipa_next_poll_ms() tells
 * when to poll next: errors count as an empty poll for the back-off. A result that could not be
 * delivered stays pending (in the state file) and goes first at the next poll. */
PL_MUST_CHECK int pl_ipa_poll(struct pl_ipa *ipa);

/* Milliseconds until the next poll is due, by the configured clock (0: now). */
uint64_t pl_ipa_next_poll_ms(const struct pl_ipa *ipa);

/* Carries out one GetEimPackageResponse body (rsp, borrowed) as if the eIM had just sent it
 * in answer to a poll: executes the package and delivers the result over the transport.
 * For eIM Packages that arrive by another path (a pushed trigger) and for the fuzz target.
 * Same returns as pl_ipa_poll. */
PL_MUST_CHECK int pl_ipa_handle_get_eim_package_response(struct pl_ipa *ipa, const uint8_t *rsp,
                                                         size_t len);

/* Read-only view of the IPA's state (a copy). */
struct pl_ipa_status {
    bool has_eid;
    uint8_t eid[16];
    char eim_id[129];           /* "" when unknown (GetEimConfigurationData gave nothing) */
    char eim_fqdn[256];         /* "" when unknown */
    uint64_t last_poll_ms;      /* clock time of the last poll, 0 = never */
    uint64_t next_poll_at_ms;   /* clock time the next poll is due */
    uint32_t backoff_ms;        /* current back-off, 0 after work */
    bool package_in_flight;     /* a LoadEuiccPackage whose result was not yet captured */
    bool result_pending;        /* a result not yet accepted by the eIM */
    unsigned result_attempts;   /* refusals of the pending result so far */
    bool notify_state_change;   /* the next GetEimPackage carries notifyStateChange */
    size_t awaiting_ack;        /* sequence numbers delivered, not yet acknowledged */
    bool has_trigger;           /* a ProfileDownloadTriggerRequest was recorded */
    uint64_t polls;             /* GetEimPackage requests sent */
    uint64_t packages;          /* eIM Packages carried out */
    uint64_t acks_applied;      /* NotificationSent commands sent for acknowledgements */
    uint64_t results_recovered; /* lost LoadEuiccPackage answers recovered from the eUICC */
};
void pl_ipa_get_status(const struct pl_ipa *ipa, struct pl_ipa_status *st);

/* The raw ProfileDownloadTriggerRequest 'BF54' last recorded (borrowed from the IPA, valid
 * until the next poll), or PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_ipa_last_trigger(const struct pl_ipa *ipa, const uint8_t **p, size_t *len);

/* Is seq delivered and awaiting an acknowledgement? (tests and tools) */
bool pl_ipa_awaiting_ack(const struct pl_ipa *ipa, uint32_t seq);

#endif
