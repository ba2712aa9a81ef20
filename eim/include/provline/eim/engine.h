/* The eIM protocol engine: turns the per-EID operation queue of the store into signed eUICC
 * Packages and other eIM Packages, and turns the IPA's answers into verified state.
 *
 * GSMA SGP.32 v1.2: §2.11.1.1 EuiccPackageRequest (eimSignature over
 * DER(EuiccPackageSigned) ‖ associationToken TLV, '84 01 00' when none), §2.11.1.1.2 eCOs,
 * §2.11.1.1.3 PSMOs, §2.11.1.2 IpaEuiccDataRequest, §2.11.1.3 ProfileDownloadTriggerRequest,
 * §2.11.1.4 EimAcknowledgements, §2.11.2 results; §6.3.2.4 HandleNotification, §6.3.2.6
 * GetEimPackage, §6.3.2.7 ProvideEimPackageResult. Provline reference: reference/EIM.md.
 * The operation state machine, counter discipline, result verification and lost-result
 * re-query are described in docs/eim-engine.md.
 *
 * All state lives in the store (provline/eim/store.h); the engine keeps none between calls,
 * so several engines (threads or processes, each with its own store handle and claimer
 * name) may serve the same database. One engine must not be used by two threads at once.
 *
 * Trust: every byte from the IPA is hostile. Device state (profiles, eIM associations,
 * certificates) changes only after an eUICC signature verified with PK.EUICC.SIG of a
 * CERT.EUICC whose chain CI -> EUM -> eUICC verifies against one of cfg->ci_roots and whose
 * EID is the device's. */
#ifndef PROVLINE_EIM_ENGINE_H
#define PROVLINE_EIM_ENGINE_H

#include "provline/eim/store.h"
#include "provline/protocol/clock.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_esipa.h"
#include "provline/protocol/wr.h"
#include "provline/protocol/x509.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Log levels (syslog numbering). */
#define PL_EIM_LOG_ERR     3
#define PL_EIM_LOG_WARNING 4
#define PL_EIM_LOG_INFO    6
#define PL_EIM_LOG_DEBUG   7

/* Log sink: one line per event, no trailing newline, "eim(<EID>){<op id> <state>}: ...". */
struct pl_eim_log_ops {
    void (*log)(void *user, int level, const char *line);
    void *user;
};

#define PL_EIM_DEFAULT_RESULT_TIMEOUT_MS  (10u * 60u * 1000u)       /* 10 min */
#define PL_EIM_DEFAULT_REQUERY_TIMEOUT_MS (24u * 60u * 60u * 1000u) /* 24 h */
#define PL_EIM_MAX_CI_ROOTS               8u
/* The tagList of a requery (searchCriteriaEuiccPackageResult): euiccPackageResultList. */
#define PL_EIM_REQUERY_TAG 0xA2u

struct pl_eim_engine_config {
    /* eimId put in packages for devices whose association (store eim_id) is not set.
     * Devices with an eim_id use theirs. 1..128 bytes of UTF-8. Copied. */
    const char *eim_id;
    /* SK.EIM.ECDSA: the package signing key (borrowed; must outlive the engine; must hold
     * the private part). Only this thread may use it while the engine runs (crypto.h). */
    const struct pl_eckey *signing_key;
    /* Trust anchors for CERT.EUICC chains (CI certificates, borrowed). 1..8. */
    const struct pl_cert *const *ci_roots;
    size_t n_ci_roots;
    /* This process's name in operation claims (1..64 of [A-Za-z0-9._@-]); NULL: "eim".
     * Give each eIM process sharing a database its own name. Copied. */
    const char *claimer;
    /* A signed package in `sent` longer than this is re-queried (docs/eim-engine.md §4).
     * 0: PL_EIM_DEFAULT_RESULT_TIMEOUT_MS. An unsigned package (data request, download
     * trigger) in `sent` longer than this ends failed ("noResult"). */
    uint64_t result_timeout_ms;
    /* An operation in `requery` longer than this (since it was sent) ends failed
     * ("resultLost"). 0: PL_EIM_DEFAULT_REQUERY_TIMEOUT_MS. */
    uint64_t requery_timeout_ms;
    /* Wall clock in ms since 1970, the same time base as the store's `now` (operation
     * timestamps are compared with it) and used for certificate validity. NULL now_ms:
     * CLOCK_REALTIME. Copied. */
    struct pl_clock_ops clock;
    /* RNG for transaction ids and signature blinding; NULL fill: PL_RNG_SYSTEM. Copied. */
    struct pl_rng rng;
    /* Optional log sink (NULL log: silent). Copied. */
    struct pl_eim_log_ops log;
};

struct pl_eim_engine;

/* Creates an engine over `store` (borrowed; must outlive the engine). PL_ERR_INVAL on a
 * missing/invalid eim_id, key without a private part, no CI root, bad claimer. */
PL_MUST_CHECK int pl_eim_engine_new(struct pl_eim_store *store,
                                    const struct pl_eim_engine_config *cfg,
                                    struct pl_eim_engine **out);
void pl_eim_engine_free(struct pl_eim_engine *eng); /* accepts NULL */

/* ---- ESipa functions (transport-independent) ----
 * `peer_eid` (may be NULL) is the EID the transport authenticated (the device bound to the
 * DTLS PSK identity); when given, a request about another EID fails with PL_ERR_DENIED.
 * The *_rsp functions append the DER EsipaMessageFromEimToIpa body to rsp and return PL_OK
 * whenever an SGP.32 answer was produced, including SGP.32 error answers (eidNotFound, ...).
 * A negative return means no answer (the transport reports an error): PL_ERR_DENIED,
 * PL_ERR_DB / PL_ERR_NOMEM / PL_ERR_INTERNAL (5.00). Nothing is changed in the store when
 * a request is rejected. */

/* GetEimPackage (§6.3.2.6): the next package for req->eid, or eimPackageError
 * noEimPackageAvailable(1) / eidNotFound(2). notifyStateChange queues a listProfileInfo
 * (once) so that the eIM's view of the profiles is refreshed first. */
PL_MUST_CHECK int pl_eim_engine_get_eim_package(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                                                const struct pl_sgp32_get_eim_package_request *req,
                                                struct pl_wr *rsp);

/* ProvideEimPackageResult (§6.3.2.7): verifies and applies the result; the answer is
 * eimAcknowledgements (the seqNumbers of the EPR and notifications now stored, and of
 * notifications stored earlier and not yet acknowledged), emptyResponse, or
 * provideEimPackageResultError: eidNotFound(2), invalidEid(3), missingEid(4),
 * undefinedError(127) for a result that was rejected (bad signature, unknown transaction,
 * counter or eimId mismatch...; nothing changes). */
PL_MUST_CHECK int
pl_eim_engine_provide_result(struct pl_eim_engine *eng, const uint8_t *peer_eid,
                             const struct pl_sgp32_provide_eim_package_result *req,
                             struct pl_wr *rsp);

/* HandleNotification (§6.3.2.4): a pending notification (PIR 'BF37' or
 * OtherSignedNotification '30') is verified with the device's eUICC key and stored, or a
 * provideEimPackageResult is processed as above. The ESipa answer is empty, so
 * acknowledgements wait for the next ProvideEimPackageResult answer. The EID is peer_eid,
 * else the provide-result's eidValue, else (OtherSignedNotification) the EID of the
 * verified CERT.EUICC it carries. *stored tells whether something new was stored.
 * PL_OK also when the notification was rejected (logged); PL_ERR_DENIED as above. */
PL_MUST_CHECK int pl_eim_engine_handle_notification(struct pl_eim_engine *eng,
                                                    const uint8_t *peer_eid,
                                                    const struct pl_sgp32_handle_notification *req,
                                                    bool *stored);

/* ---- operation parameters ----
 * The store keeps each operation's parameters as the JSON object the northbound API
 * received (store.h: params). The engine reads these members (unknown members are an
 * error; ICCIDs are written as printed on the card (ITU-T E.118: the digits in order, each
 * byte's nibbles swapped on the wire), 18..20 digits, 'F' for a padding nibble (trailing
 * padding may be left out) - the form the engine uses in the device view;
 * hex strings are even-length, case-insensitive):
 *   enable                    {"iccid": s, "rollback"?: bool}
 *   disable, delete, setFallbackAttribute   {"iccid": s}
 *   listProfileInfo           {"iccid"?: s | "isdpAid"?: hex | "profileClass"?: 0|1|2,
 *                              "tagList"?: hex}   (at most one search criterion)
 *   getRAT, unsetFallbackAttribute, listEim   {}
 *   configureImmediateEnable  {"immediateEnable": bool, "defaultSmdpOid"?: "1.2.3...",
 *                              "defaultSmdpAddress"?: s}
 *   setDefaultDpAddress       {"address": s}
 *   addEim, updateEim         {"eimId": s, "eimFqdn"?: s, "eimIdType"?: 1|2|3,
 *                              "counterValue"?: n, "associationToken"?: n,
 *                              "eimPublicKey"?: hex SPKI | "eimCertificate"?: hex cert,
 *                              "trustedPublicKeyTls"?: hex SPKI |
 *                              "trustedCertificateTls"?: hex cert,
 *                              "supportedProtocols"?: ["retrieveHttps", "retrieveCoaps",
 *                                 "injectHttps", "injectCoaps", "proprietary"],
 *                              "euiccCiPKId"?: hex, "indirectProfileDownload"?: bool}
 *   deleteEim                 {"eimId": s}
 *   ipaEuiccDataRequest       {"tagList"?: hex (default 8184A5A6A8A9BF20BF22:
 *                              defaultSmdpAddress, associationToken, eumCertificate,
 *                              euiccCertificate, ipaCapabilities, deviceInfo, euiccInfo1,
 *                              euiccInfo2),
 *                              "euiccCiPKId"?: hex, "notificationSeq"?: n |
 *                              "notificationEvents"?: ["install","enable","disable","delete"],
 *                              "resultSeq"?: n}
 *   profileDownloadTrigger    {"activationCode": s | "contactDefaultSmdp": true |
 *                              "contactSmds": true, "smdsAddress"?: s} (none: no
 *                              profileDownloadData)
 * Missing params (NULL / empty) count as {}. An operation whose parameters are invalid
 * ends failed with outcome "invalidParameters" when it reaches the head of the queue (the
 * northbound API refuses such parameters up front with pl_eim_engine_check_params). */

/* Checks an operation's parameters as the engine will read them (for the northbound API
 * to refuse bad input up front). PL_OK or PL_ERR_INVAL (detail in err, NUL-terminated, may
 * be NULL). */
PL_MUST_CHECK int pl_eim_engine_check_params(enum pl_eim_op_kind kind, const uint8_t *params,
                                             size_t len, char *err, size_t err_cap);

#endif
