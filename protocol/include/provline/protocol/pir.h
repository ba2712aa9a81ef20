/* GSMA SGP.22 v2.5 ProfileInstallationResult 'BF37' (§2.5.6 / §5.7.6 ES10b.LoadBoundProfile-
 * Package response, §5.6.x ES9+.HandleNotification). ASN.1: shared/asn1/RSPDefinitions.asn
 * (V2.5, AUTOMATIC TAGS). provline reference: IFPP.md §5.6.
 *
 * Tags, from the ASN.1 (the authority; IFPP.md is a summary):
 *   ProfileInstallationResult 'BF37' {
 *     profileInstallationResultData 'BF27' {
 *       transactionId '80' (1..16 B),
 *       notificationMetadata 'BF2F' { '80' seqNumber, '81' NotificationEvent, '0C' address, '5A' iccid? },
 *       smdpOid '06' (mandatory in v2.5),
 *       finalResult 'A2' (explicit: CHOICE) {
 *         successResult 'A0' { aid '4F' (5..16 B), simaResponse '04' } |
 *         errorResult   'A1' { bppCommandId '80', errorReason '81', simaResponse '82'? } } },
 *     euiccSignPIR '5F37' (64 B r||s over the whole 'BF27' TLV) }
 * Note: ErrorResult has no tagged component, so AUTOMATIC TAGS make its optional
 * simaResponse [2] = '82' (not the universal '04' of SuccessResult, whose aid is tagged). */
#ifndef PROVLINE_PROTOCOL_PIR_H
#define PROVLINE_PROTOCOL_PIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/notif.h"
#include "provline/protocol/wr.h"

#define PL_TAG_PIR 0xBF37u
#define PL_TAG_PIR_DATA 0xBF27u

#define PL_PIR_TID_MAX 16u
#define PL_PIR_AID_MIN 5u
#define PL_PIR_AID_MAX 16u

/* BppCommandId ::= INTEGER */
enum pl_pir_cmd {
    PL_PIR_CMD_INITIALISE_SECURE_CHANNEL = 0,
    PL_PIR_CMD_CONFIGURE_ISDP = 1,
    PL_PIR_CMD_STORE_METADATA = 2,
    PL_PIR_CMD_STORE_METADATA2 = 3,
    PL_PIR_CMD_REPLACE_SESSION_KEYS = 4,
    PL_PIR_CMD_LOAD_PROFILE_ELEMENTS = 5,
};

/* ErrorReason ::= INTEGER */
enum pl_pir_reason {
    PL_PIR_REASON_INCORRECT_INPUT_VALUES = 1,
    PL_PIR_REASON_INVALID_SIGNATURE = 2,
    PL_PIR_REASON_INVALID_TRANSACTION_ID = 3,
    PL_PIR_REASON_UNSUPPORTED_CRT_VALUES = 4,
    PL_PIR_REASON_UNSUPPORTED_REMOTE_OPERATION_TYPE = 5,
    PL_PIR_REASON_UNSUPPORTED_PROFILE_CLASS = 6,
    PL_PIR_REASON_SCP03T_STRUCTURE_ERROR = 7,
    PL_PIR_REASON_SCP03T_SECURITY_ERROR = 8,
    PL_PIR_REASON_ICCID_ALREADY_EXISTS = 9,         /* installFailedDueToIccidAlreadyExistsOnEuicc */
    PL_PIR_REASON_INSUFFICIENT_MEMORY = 10,         /* installFailedDueToInsufficientMemoryForProfile */
    PL_PIR_REASON_INTERRUPTION = 11,                /* installFailedDueToInterruption */
    PL_PIR_REASON_PE_PROCESSING_ERROR = 12,         /* installFailedDueToPEProcessingError */
    PL_PIR_REASON_DATA_MISMATCH = 13,               /* installFailedDueToDataMismatch */
    PL_PIR_REASON_TEST_PROFILE_INVALID_NAA_KEY = 14, /* testProfileInstallFailedDueToInvalidNaaKey */
    PL_PIR_REASON_PPR_NOT_ALLOWED = 15,
    PL_PIR_REASON_UNKNOWN_ERROR = 127,              /* installFailedDueToUnknownError */
};

/* ASN.1 identifier of the value ("configureISDP"), or "unknown". */
const char *pl_pir_cmd_name(int64_t cmd);
const char *pl_pir_reason_name(int64_t reason);

/* A PIR. For encoding fill tid, meta (raw ignored), smdp_oid, success and the result
 * fields; for decoding every field is set and the views borrow the input. */
struct pl_pir {
    const uint8_t *tid;
    size_t tid_len;
    struct pl_notif_meta meta;
    const uint8_t *smdp_oid; /* OID contents octets (after '06' L) */
    size_t smdp_oid_len;
    bool success;
    /* successResult */
    const uint8_t *aid; /* ISD-P AID, 5..16 B */
    size_t aid_len;
    /* simaResponse: mandatory in successResult, optional in errorResult (NULL = absent) */
    const uint8_t *sima;
    size_t sima_len;
    /* errorResult: any non-negative INTEGER is accepted on decode (extensible); the
     * encoder takes any value 0..INT64_MAX too. Compare with the enums above. */
    int64_t cmd_id;
    int64_t reason;
    /* Decoder only: */
    const uint8_t *sig;  /* euiccSignPIR, PL_ECDSA_SIG_LEN bytes */
    const uint8_t *tbs;  /* the whole 'BF27' TLV as received: what euiccSignPIR covers */
    size_t tbs_len;
    const uint8_t *raw;  /* the whole 'BF37' TLV */
    size_t raw_len;
};

/* Decodes exactly one 'BF37' TLV spanning [p, p+len). Does not verify the signature. */
PL_MUST_CHECK int pl_pir_decode(const uint8_t *p, size_t len, struct pl_pir *out);
/* Appends the 'BF27' ProfileInstallationResultData encoded from in (the signed part). */
PL_MUST_CHECK int pl_pir_encode_data(const struct pl_pir *in, struct pl_wr *w);
/* Builds 'BF27', signs it with the eUICC key (ECDSA-SHA256, r||s) and appends the whole
 * 'BF37'. */
PL_MUST_CHECK int pl_pir_encode(const struct pl_pir *in, const struct pl_eckey *key,
                                const struct pl_rng *rng, struct pl_wr *w);
/* Verifies euiccSignPIR over the RECEIVED 'BF27' bytes (pir must come from pl_pir_decode).
 * PL_OK, PL_ERR_BAD_SIGNATURE, or PL_ERR_INVAL for a PIR that was not decoded. */
PL_MUST_CHECK int pl_pir_verify(const struct pl_pir *pir, const struct pl_eckey *euicc_pub);

#endif
