/* Internal: the eIM protocol engine's shared state and helpers (GSMA SGP.32 v1.2 §2.11,
 * §6.3.2). Never included outside eim/src. docs/eim-engine.md describes the design. */
#ifndef PROVLINE_EIM_ENGINE_INTERNAL_H
#define PROVLINE_EIM_ENGINE_INTERNAL_H

#include "provline/eim/engine.h"
#include "provline/eim/store.h"
#include "provline/protocol/sgp32_euicc_package.h"
#include "provline/protocol/sgp32_ipa_data.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define PL_EIMI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_EIMI_PRINTF(a, b)
#endif

#define PL_EIMI_PKG_MAX  (64u * 1024u) /* one eIM Package we build */
#define PL_EIMI_RSP_MAX  (16u * 1024u) /* one answer to the IPA */
#define PL_EIMI_TXID_LEN 16u           /* eimTransactionId we assign (random) */
#define PL_EIMI_SCAN_OPS 256u          /* operations scanned per EID for a replayed result */

struct pl_eim_engine {
    struct pl_eim_store *store;
    char eim_id[PL_EIM_EIM_ID_MAX + 1];
    const struct pl_eckey *key;
    const struct pl_cert *ci[PL_EIM_MAX_CI_ROOTS];
    size_t n_ci;
    char claimer[PL_EIM_NAME_MAX + 1];
    uint64_t result_timeout_ms;
    uint64_t requery_timeout_ms;
    struct pl_clock_ops clock;
    struct pl_rng rng;
    struct pl_eim_log_ops log;
};

/* Sequence numbers to acknowledge in the next BF50 answer (deduplicated). */
struct pl_eimi_acks {
    size_t n;
    uint32_t seq[PL_SGP32_MAX_ACKS];
};
void pl_eimi_acks_add(struct pl_eimi_acks *a, uint32_t seq);

/* ---- eim_engine.c ---- */
void pl_eimi_log(const struct pl_eim_engine *eng, int level, const uint8_t *eid,
                 const struct pl_eim_op *op, const char *fmt, ...) PL_EIMI_PRINTF(5, 6);
int64_t pl_eimi_now(const struct pl_eim_engine *eng);
/* True for errors that are the eIM's own trouble (5.00), not a rejection of the input. */
bool pl_eimi_is_fatal(int rc);
/* The associationToken of the device (NULL: none configured, '84 01 00'). */
const int64_t *pl_eimi_token(const struct pl_eim_device *dev);
/* PK.EUICC.SIG of the device, from its registered CERT.EUICC after verifying CI -> EUM ->
 * eUICC at the engine's time and that the certificate's EID is the device's. Returns owned
 * *out. PL_ERR_NOT_FOUND when the device has no certificates, PL_ERR_CERT* otherwise. */
PL_MUST_CHECK int pl_eimi_euicc_key(const struct pl_eim_engine *eng,
                                    const struct pl_eim_device *dev, struct pl_eckey **out);
/* Verifies a CERT.EUICC / CERT.EUM pair (DER) against the CI roots and checks the EID. */
PL_MUST_CHECK int pl_eimi_verify_euicc_certs(const struct pl_eim_engine *eng,
                                             const uint8_t eid[PL_EIM_EID_LEN],
                                             const uint8_t *euicc, size_t euicc_len,
                                             const uint8_t *eum, size_t eum_len);
/* The operation of the EID in claimed, sent or requery (at most one, store.h op_claim).
 * PL_ERR_NOT_FOUND if none. Fills *out (pl_eim_op_clear). */
PL_MUST_CHECK int pl_eimi_inflight(const struct pl_eim_engine *eng,
                                   const uint8_t eid[PL_EIM_EID_LEN], struct pl_eim_op *out);
/* Stores an EPR or notification (idempotent on EID and seqNumber: *inserted false for a
 * repeat, PL_ERR_EXISTS for other bytes under the same seqNumber) and queues its ack. */
PL_MUST_CHECK int pl_eimi_keep_for_ack(const struct pl_eim_engine *eng,
                                       const uint8_t eid[PL_EIM_EID_LEN], uint32_t seq,
                                       const uint8_t *raw, size_t len, struct pl_eimi_acks *acks,
                                       bool *inserted);
/* Human-readable EID (32 hex digits + NUL). */
void pl_eimi_eid_hex(const uint8_t eid[PL_EIM_EID_LEN], char out[2 * PL_EIM_EID_LEN + 1]);

/* ---- eim_package.c: signed eUICC Packages (BF51) ---- */
/* Parses op->params for a PSMO/eCO kind into *pkg (eimId, EID, ops; counter and txid are
 * set by the caller). Views in *pkg borrow *arena, released with pl_eimi_arena_free.
 * PL_ERR_INVAL (detail in err) on bad parameters. */
struct pl_eimi_arena {
    void *json; /* json_t root */
    uint8_t *bufs[8];
    size_t n;
};
void pl_eimi_arena_free(struct pl_eimi_arena *a);
PL_MUST_CHECK int pl_eimi_params_package(enum pl_eim_op_kind kind, const uint8_t *params,
                                         size_t len, struct pl_eimi_arena *arena,
                                         struct pl_sgp32_euicc_package *pkg, char *err,
                                         size_t err_cap);
/* Builds the package of a claimed operation: reserves the counter (signed kinds) durably,
 * signs, stores the exact bytes with op_mark_sent, and appends them to out.
 * PL_ERR_INVAL with *fail set ("invalidParameters", "counterExhausted"): the operation can
 * never be built and should end failed with that outcome. Other errors are transient. */
PL_MUST_CHECK int pl_eimi_package_build(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                        const struct pl_eim_op *op, struct pl_wr *out,
                                        const char **fail);

/* ---- eim_package_ipa_euicc_data_request.c / eim_package_profile_download_trigger.c ---- */
PL_MUST_CHECK int pl_eimi_params_edr(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                                     struct pl_sgp32_ipa_euicc_data_request *req, char *err,
                                     size_t err_cap);
PL_MUST_CHECK int pl_eimi_params_pdt(const uint8_t *params, size_t len, struct pl_eimi_arena *arena,
                                     struct pl_sgp32_profile_download_trigger_request *req,
                                     char *err, size_t err_cap);
/* The requery of a signed operation whose result is lost (docs/eim-engine.md §4):
 * phase A BF52 { 5C 'A2', A2 { 80 seqNumber }, 83 txid } while the eIM can guess the
 * seqNumber and less than 2 result timeouts passed since the package was sent; then phase B
 * BF52 { 5C 'A2', 83 alternate txid } (every stored result). Only a phase-B answer without
 * the result proves that the package never ran. */
PL_MUST_CHECK int pl_eimi_requery_build(const struct pl_eim_engine *eng, const struct pl_eim_op *op,
                                        struct pl_wr *out);
/* The phase-B transaction id: the operation's with the first byte inverted. */
void pl_eimi_requery_alt_txid(const struct pl_eim_op *op, uint8_t out[PL_EIM_TXID_MAX]);
/* True while a requery may still search by seqNumber (phase A window). */
bool pl_eimi_requery_searching(const struct pl_eim_engine *eng, const struct pl_eim_op *op);

/* ---- eim_result.c: EuiccPackageResult (BF51) ---- */
enum pl_eimi_epr_origin {
    PL_EIMI_EPR_DIRECT = 0,  /* ProvideEimPackageResult / HandleNotification */
    PL_EIMI_EPR_REQUERY = 1, /* inside an IpaEuiccData euiccPackageResultList */
};
/* Verifies one EPR against the in-flight operation and applies it. PL_OK when accepted
 * (applied, or an identical replay re-acknowledged); a non-fatal negative value when
 * rejected (nothing changed); fatal errors (pl_eimi_is_fatal) as such. */
PL_MUST_CHECK int pl_eimi_result_epr(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                     const uint8_t *raw, size_t len, enum pl_eimi_epr_origin origin,
                                     struct pl_eimi_acks *acks);
/* eimPackageResultResponseError: the IPA could not process the package. */
PL_MUST_CHECK int pl_eimi_result_ipa_error(struct pl_eim_engine *eng,
                                           const struct pl_eim_device *dev,
                                           struct pl_sgp32_buf txid, int64_t code);
/* Outcome text of a result code of one EuiccResultData arm ("ok", "iccidOrAidNotFound"). */
const char *pl_eimi_result_code_name(enum pl_sgp32_result_kind kind, int64_t code);

/* ---- eim_result_ipa_euicc_data.c / eim_result_profile_download_trigger.c ---- */
PL_MUST_CHECK int pl_eimi_result_edr(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                     const uint8_t *raw, size_t len, struct pl_eimi_acks *acks);
PL_MUST_CHECK int pl_eimi_result_pdt(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                     const uint8_t *raw, size_t len, struct pl_eimi_acks *acks);
/* One pending notification (PIR 'BF37' or OtherSignedNotification '30'): verified with the
 * device's eUICC key, applied to the profile view, stored, acknowledged. */
PL_MUST_CHECK int pl_eimi_notification(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                       const uint8_t *raw, size_t len, struct pl_eimi_acks *acks,
                                       bool *stored);

/* ---- eim_result_state.c: the verified device view (profiles_json, eims_json) ---- */
/* Applies the verified result of one PSMO/eCO to the device's view and writes it. */
PL_MUST_CHECK int pl_eimi_state_apply(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                      const struct pl_sgp32_euicc_package *pkg, size_t index,
                                      const struct pl_sgp32_euicc_result *res);
/* A verified profile event (PIR install, other notification enable/disable/delete). */
PL_MUST_CHECK int pl_eimi_state_profile_event(struct pl_eim_engine *eng,
                                              const struct pl_eim_device *dev, uint8_t event,
                                              const uint8_t iccid[PL_SGP32_ICCID_LEN]);
/* ICCIDs as text: pl_iccid_text / pl_iccid_parse (provline/protocol/iccid.h). */

#endif
