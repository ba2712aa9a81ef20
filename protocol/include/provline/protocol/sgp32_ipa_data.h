/* SGP.32 eIM Packages other than eUICC Packages, and their results:
 * IpaEuiccDataRequest 'BF52' (§2.11.1.2) / IpaEuiccDataResponse 'BF52' (§2.11.2.2),
 * ProfileDownloadTriggerRequest 'BF54' (§2.11.1.3) / ProfileDownloadTriggerResult 'BF54'
 * (§2.11.2.3), EimAcknowledgements 'BF53' (§2.11.1.4).
 * GSMA SGP.32 v1.2, ASN.1 module SGP32Definitions. Conventions: sgp32_common.h.
 *
 * Wire shapes (AUTOMATIC TAGS; docs/sgp32-codec.md):
 *   IpaEuiccDataRequest   BF52 { 5C tagList, [04 ciPKId], [A1 { 80 seq | 81 events }],
 *                                [A2 { 80 seq }], [83 txid] }
 *   IpaEuiccDataResponse  BF52 { A0 { [A0 notifs] [81] [A2 EPRs] [BF20] [BF22] [83] [84]
 *                                     [A5 cert] [A6 cert] [87 txid] [A8 caps] [A9 devinfo] } }
 *                       | BF52 { A1 { [80 txid] 02 code } }
 *   ProfileDownloadTriggerRequest  BF54 { [A0 { 80 AC | 81 00 | A2 { [80 smds] } }] [82 txid] }
 *   ProfileDownloadTriggerResult   BF54 { [82 txid] BF37 {...} | 30 { 80 reason [04 rsp] } }
 *   EimAcknowledgements  BF53 { 80 seq, 80 seq, ... } */
#ifndef PROVLINE_PROTOCOL_SGP32_IPA_DATA_H
#define PROVLINE_PROTOCOL_SGP32_IPA_DATA_H

#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- IpaEuiccDataRequest ---- */

enum pl_sgp32_notif_search {
    PL_SGP32_NOTIF_SEARCH_NONE = 0,
    PL_SGP32_NOTIF_SEARCH_SEQ = 1, /* seqNumber [0] */
    PL_SGP32_NOTIF_SEARCH_PMO = 2, /* profileManagementOperation [1] NotificationEvent */
};

/* NotificationEvent (SGP.22) named bits, as a mask */
#define PL_SGP32_NOTIF_INSTALL (1u << 0)
#define PL_SGP32_NOTIF_ENABLE  (1u << 1)
#define PL_SGP32_NOTIF_DISABLE (1u << 2)
#define PL_SGP32_NOTIF_DELETE  (1u << 3)

struct pl_sgp32_ipa_euicc_data_request {
    struct pl_sgp32_buf tag_list;      /* 5C contents, mandatory (0..PL_SGP32_ADDR_MAX) */
    struct pl_sgp32_buf euicc_ci_pkid; /* optional, 1..64 bytes */
    enum pl_sgp32_notif_search notif_search;
    uint32_t notif_seq;    /* NOTIF_SEARCH_SEQ */
    uint32_t notif_events; /* NOTIF_SEARCH_PMO: PL_SGP32_NOTIF_* mask */
    bool has_epr_search;
    uint32_t epr_seq;             /* searchCriteriaEuiccPackageResult seqNumber */
    struct pl_sgp32_buf eim_txid; /* [3] optional */
};
PL_MUST_CHECK int
pl_sgp32_ipa_euicc_data_request_encode(const struct pl_sgp32_ipa_euicc_data_request *req,
                                       struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_ipa_euicc_data_request_decode(const uint8_t *buf, size_t len,
                                       struct pl_sgp32_ipa_euicc_data_request *req);

/* ---- IpaEuiccDataResponse ---- */

/* IpaCapabilities ipaFeatures bits */
#define PL_SGP32_IPA_DIRECT_RSP                (1u << 0)
#define PL_SGP32_IPA_INDIRECT_RSP              (1u << 1)
#define PL_SGP32_IPA_EIM_DOWNLOAD_DATA         (1u << 2)
#define PL_SGP32_IPA_EIM_CTX_PARAMS1           (1u << 3)
#define PL_SGP32_IPA_EIM_METADATA_VERIFICATION (1u << 4)
#define PL_SGP32_IPA_MINIMIZE_ESIPA_BYTES      (1u << 5)

/* IpaEuiccDataErrorCode */
#define PL_SGP32_EDR_INCORRECT_TAG_LIST 1
#define PL_SGP32_EDR_CI_PKID_NOT_FOUND  5
#define PL_SGP32_EDR_ECALL_ACTIVE       104
#define PL_SGP32_EDR_UNDEFINED          127

struct pl_sgp32_ipa_euicc_data {
    /* [0] PendingNotificationList: elements BF37, 30, A0 or A1 (SGP32-PendingNotification) */
    struct pl_sgp32_list notifications;
    struct pl_sgp32_buf default_smdp_address; /* [1] UTF-8 */
    struct pl_sgp32_list epr_list;            /* [2] EuiccPackageResult elements ('BF51') */
    struct pl_sgp32_buf euicc_info1;          /* EUICCInfo1: the whole 'BF20' TLV */
    struct pl_sgp32_buf euicc_info2;          /* SGP32-EUICCInfo2: the whole 'BF22' TLV */
    struct pl_sgp32_buf root_smds_address;    /* [3] UTF-8 */
    bool has_association_token;
    int64_t association_token;             /* [4] */
    struct pl_sgp32_buf eum_certificate;   /* [5] Certificate contents (no '30' header) */
    struct pl_sgp32_buf euicc_certificate; /* [6] Certificate contents (no '30' header) */
    struct pl_sgp32_buf eim_txid;          /* [7] */
    bool has_ipa_capabilities;             /* [8] */
    uint32_t ipa_features;                 /* PL_SGP32_IPA_* mask */
    bool has_ipa_supported_protocols;
    uint32_t ipa_supported_protocols; /* PL_SGP32_PROTO_* mask (same bit order) */
    struct pl_sgp32_buf device_info;  /* [9] DeviceInfo contents (no '30' header) */
};

struct pl_sgp32_ipa_euicc_data_response {
    bool is_error; /* ipaEuiccDataResponseError [1] */
    struct pl_sgp32_ipa_euicc_data data;
    struct pl_sgp32_buf error_txid; /* error: eimTransactionId [0], optional */
    int64_t error_code;             /* error: PL_SGP32_EDR_* */
};
PL_MUST_CHECK int
pl_sgp32_ipa_euicc_data_response_encode(const struct pl_sgp32_ipa_euicc_data_response *rsp,
                                        struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_ipa_euicc_data_response_decode(const uint8_t *buf, size_t len,
                                        struct pl_sgp32_ipa_euicc_data_response *rsp);

/* ---- ProfileDownloadTriggerRequest ---- */

enum pl_sgp32_pdd_kind {
    PL_SGP32_PDD_NONE = 0,                 /* profileDownloadData absent */
    PL_SGP32_PDD_ACTIVATION_CODE = 1,      /* [0] UTF8String (SIZE(0..255)) */
    PL_SGP32_PDD_CONTACT_DEFAULT_SMDP = 2, /* [1] NULL */
    PL_SGP32_PDD_CONTACT_SMDS = 3,         /* [2] SEQUENCE { smdsAddress OPTIONAL } */
};

struct pl_sgp32_profile_download_trigger_request {
    enum pl_sgp32_pdd_kind kind;
    struct pl_sgp32_buf activation_code; /* PDD_ACTIVATION_CODE */
    struct pl_sgp32_buf smds_address;    /* PDD_CONTACT_SMDS, optional */
    struct pl_sgp32_buf eim_txid;        /* [2] optional */
};
PL_MUST_CHECK int pl_sgp32_profile_download_trigger_request_encode(
    const struct pl_sgp32_profile_download_trigger_request *req, struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_profile_download_trigger_request_decode(
    const uint8_t *buf, size_t len, struct pl_sgp32_profile_download_trigger_request *req);

/* ---- ProfileDownloadTriggerResult ---- */

#define PL_SGP32_PDT_ECALL_ACTIVE 104
#define PL_SGP32_PDT_UNDEFINED    127

struct pl_sgp32_profile_download_trigger_result {
    struct pl_sgp32_buf eim_txid; /* [2] optional */
    bool is_error;                /* profileDownloadError chosen */
    /* profileInstallationResult: the whole 'BF37' TLV, signed by the eUICC; relayed raw. */
    struct pl_sgp32_buf profile_installation_result;
    int64_t error_reason;               /* profileDownloadErrorReason [0] */
    struct pl_sgp32_buf error_response; /* errorResponse OCTET STRING, optional */
};
PL_MUST_CHECK int pl_sgp32_profile_download_trigger_result_encode(
    const struct pl_sgp32_profile_download_trigger_result *res, struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_profile_download_trigger_result_decode(
    const uint8_t *buf, size_t len, struct pl_sgp32_profile_download_trigger_result *res);

/* ---- EimAcknowledgements ---- */

struct pl_sgp32_eim_acknowledgements {
    size_t n;                        /* 0..PL_SGP32_MAX_ACKS */
    uint32_t seq[PL_SGP32_MAX_ACKS]; /* SequenceNumber ::= [0] INTEGER, 0..PL_SGP32_COUNTER_MAX */
};
PL_MUST_CHECK int
pl_sgp32_eim_acknowledgements_encode(const struct pl_sgp32_eim_acknowledgements *acks,
                                     struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_eim_acknowledgements_decode(const uint8_t *buf, size_t len,
                                                       struct pl_sgp32_eim_acknowledgements *acks);

#endif
