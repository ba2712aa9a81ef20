/* SGP.32 ESipa messages (eIM <-> IPA, ASN.1 binding): the CHOICEs
 * EsipaMessageFromIpaToEim and EsipaMessageFromEimToIpa (§6.3.1) with every arm:
 * GetEimPackage (§6.3.2.6), ProvideEimPackageResult (§6.3.2.7), HandleNotification
 * (§6.3.2.4), TransferEimPackage (§6.3.3.1), and the indirect-download relay messages
 * InitiateAuthentication (§6.3.2.1), AuthenticateClient (§6.3.2.2),
 * GetBoundProfilePackage (§6.3.2.3), CancelSession (§6.3.2.5).
 * GSMA SGP.32 v1.2, ASN.1 module SGP32Definitions. Conventions: sgp32_common.h.
 *
 * Framing only: eIM Packages and their results ('BF51', 'BF52', 'BF53', 'BF54') and the
 * relayed ES9+/ES10b bodies (serverSigned1, 'BF38', 'BF21', 'BF36', 'BF37', ...) are carried
 * as borrowed raw TLVs, checked for strict DER structure and the expected tag but not
 * interpreted; decode eIM Packages with sgp32_euicc_package.h / sgp32_ipa_data.h. Signed
 * relay bodies are therefore forwarded byte for byte.
 *
 * Wire shapes (AUTOMATIC TAGS; docs/sgp32-codec.md). The message is the arm TLV itself:
 *   IPA->eIM  BF39 { 81 challenge [83 smdpAddress] [BF20] [82 txid] }
 *             BF3B { 80 txid, BF38 ... }      BF3A { 80 txid, BF21 ... }
 *             BF41 { 80 txid, A1 { <ES10b CancelSessionResponse arm> } }
 *             BF3D { A0 { BF37 | 30 | A0 | A1 } } | BF3D { BF50 ... }
 *             BF4E { BF51 | 30 { BF51, A0 { notifs } } | BF52 | 05 00 | 02 err }
 *             BF4F { 5A eid [80 00] [81 cause] [82 rPLMN] }
 *             BF50 { [5A eid] BF51 | 30 { BF51, A0 } | BF52 | BF54 | A0 { [80 txid] 02 err } }
 *   eIM->IPA  BF39 { A0 { [80 txid] 30 ss1 5F37 sig 04 ciPKId 30 cert [0C matchingId]
 *                         [A2 { ctxParams1 arm }] } | 81 err }
 *             BF3B { A0 { [80] [BF25] 30 5F37 30 [04 hashCc] } | A1 { 80 [BF54] } | 82 err }
 *             BF3A { A0 { [80 txid] BF36 ... } | 81 err }
 *             BF41 { A0 {} | 81 err }
 *             BF4E { BF51 | BF52 | BF53 | BF54 }
 *             BF4F { BF51 | BF52 | BF54 | 02 err }
 *             BF50 { BF53 ... | 30 00 | 02 err } */
#ifndef PROVLINE_PROTOCOL_SGP32_ESIPA_H
#define PROVLINE_PROTOCOL_SGP32_ESIPA_H

#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message arms; values are the context tag numbers (BF39 = [57], ...). */
enum pl_sgp32_esipa_kind {
    PL_SGP32_ESIPA_INITIATE_AUTHENTICATION = 57,
    PL_SGP32_ESIPA_GET_BOUND_PROFILE_PACKAGE = 58,
    PL_SGP32_ESIPA_AUTHENTICATE_CLIENT = 59,
    PL_SGP32_ESIPA_HANDLE_NOTIFICATION = 61, /* IPA->eIM only */
    PL_SGP32_ESIPA_CANCEL_SESSION = 65,
    PL_SGP32_ESIPA_TRANSFER_EIM_PACKAGE = 78,
    PL_SGP32_ESIPA_GET_EIM_PACKAGE = 79,
    PL_SGP32_ESIPA_PROVIDE_EIM_PACKAGE_RESULT = 80,
};

/* StateChangeCause */
#define PL_SGP32_STATE_CHANGE_OTHER_EIM         0
#define PL_SGP32_STATE_CHANGE_FALLBACK          1
#define PL_SGP32_STATE_CHANGE_EMERGENCY_PROFILE 2
#define PL_SGP32_STATE_CHANGE_LOCAL             3
#define PL_SGP32_STATE_CHANGE_RESET             4
#define PL_SGP32_STATE_CHANGE_IMMEDIATE_ENABLE  5
#define PL_SGP32_STATE_CHANGE_DEVICE_CHANGE     6
#define PL_SGP32_STATE_CHANGE_UNDEFINED         127

/* GetEimPackageResponse eimPackageError */
#define PL_SGP32_EIM_PKG_ERR_NO_PACKAGE    1
#define PL_SGP32_EIM_PKG_ERR_EID_NOT_FOUND 2
#define PL_SGP32_EIM_PKG_ERR_INVALID_EID   3
#define PL_SGP32_EIM_PKG_ERR_MISSING_EID   4
#define PL_SGP32_EIM_PKG_ERR_UNDEFINED     127

/* ---- IPA -> eIM bodies ---- */

/* InitiateAuthenticationRequestEsipa 'BF39' */
struct pl_sgp32_initiate_auth_request {
    uint8_t euicc_challenge[16];      /* [1] Octet16 */
    struct pl_sgp32_buf smdp_address; /* [3] optional UTF-8 */
    struct pl_sgp32_buf euicc_info1;  /* optional, whole 'BF20' TLV */
    struct pl_sgp32_buf eim_txid;     /* [2] optional */
};

/* AuthenticateClientRequestEsipa 'BF3B' */
struct pl_sgp32_authenticate_client_request {
    struct pl_sgp32_buf transaction_id;               /* [0] 1..16 */
    struct pl_sgp32_buf authenticate_server_response; /* whole 'BF38' TLV */
};

/* GetBoundProfilePackageRequestEsipa 'BF3A' */
struct pl_sgp32_get_bpp_request {
    struct pl_sgp32_buf transaction_id;            /* [0] 1..16 */
    struct pl_sgp32_buf prepare_download_response; /* whole 'BF21' TLV */
};

/* CancelSessionRequestEsipa 'BF41': both components untagged in the ASN.1, so automatic
 * tags apply: transactionId [0] '80', cancelSessionResponse [1] 'A1' (implicit, replacing
 * the response's own 'BF41'). cancel_session_response is the one TLV inside: the chosen
 * arm of the ES10b CancelSessionResponse ('A0' ok, '81' error, 'A2' compact ok), i.e. the
 * contents of the eUICC's 'BF41'. A second 'BF41' inside 'A1' is rejected. */
struct pl_sgp32_cancel_session_request {
    struct pl_sgp32_buf transaction_id;
    struct pl_sgp32_buf cancel_session_response;
};

/* EimPackageResult (ProvideEimPackageResult) and TransferEimPackageResponse arms */
enum pl_sgp32_eim_result_kind {
    PL_SGP32_EIM_RESULT_EPR = 1,                   /* euiccPackageResult 'BF51' */
    PL_SGP32_EIM_RESULT_EPR_AND_NOTIFICATIONS = 2, /* 30 { BF51, A0 { notifications } } */
    PL_SGP32_EIM_RESULT_IPA_EUICC_DATA = 3,        /* ipaEuiccDataResponse 'BF52' */
    PL_SGP32_EIM_RESULT_PDT_RESULT = 4,            /* profileDownloadTriggerResult 'BF54'
                                                    * (ProvideEimPackageResult only) */
    PL_SGP32_EIM_RESULT_ERROR = 5,                 /* eimPackageResultResponseError [0]
                                                    * (ProvideEimPackageResult only) */
    PL_SGP32_EIM_RESULT_PACKAGE_RECEIVED = 6,      /* eimPackageReceived NULL (Transfer only) */
    PL_SGP32_EIM_RESULT_PACKAGE_ERROR = 7,         /* eimPackageError INTEGER (Transfer only) */
};

/* EimPackageResultErrorCode / TransferEimPackageResponse eimPackageError */
#define PL_SGP32_EIM_RESULT_ERR_INVALID_FORMAT  1
#define PL_SGP32_EIM_RESULT_ERR_UNKNOWN_PACKAGE 2
#define PL_SGP32_EIM_RESULT_ERR_UNDEFINED       127

struct pl_sgp32_eim_package_result {
    enum pl_sgp32_eim_result_kind kind;
    struct pl_sgp32_buf euicc_package_result;    /* EPR, EPR_AND_NOTIFICATIONS: 'BF51' TLV */
    struct pl_sgp32_list notifications;          /* EPR_AND_NOTIFICATIONS: PendingNotifications */
    struct pl_sgp32_buf ipa_euicc_data_response; /* IPA_EUICC_DATA: 'BF52' TLV */
    struct pl_sgp32_buf pdt_result;              /* PDT_RESULT: 'BF54' TLV */
    struct pl_sgp32_buf error_txid;              /* ERROR: eimTransactionId [0], optional */
    int64_t error_code;                          /* ERROR, PACKAGE_ERROR */
};

/* ProvideEimPackageResult 'BF50' */
struct pl_sgp32_provide_eim_package_result {
    bool has_eid;
    uint8_t eid[PL_SGP32_EID_LEN];
    struct pl_sgp32_eim_package_result result;
};

/* HandleNotificationEsipa 'BF3D' */
struct pl_sgp32_handle_notification {
    bool is_provide_result; /* provideEimPackageResult [80] chosen */
    /* pendingNotification [0] (explicit): the PendingNotification arm TLV, 'BF37' (PIR),
     * '30' (OtherSignedNotification), 'A0' / 'A1' (compact forms). */
    struct pl_sgp32_buf pending_notification;
    struct pl_sgp32_provide_eim_package_result provide_result;
};

/* GetEimPackageRequest 'BF4F' */
struct pl_sgp32_get_eim_package_request {
    uint8_t eid[PL_SGP32_EID_LEN];
    bool notify_state_change; /* [0] NULL */
    bool has_state_change_cause;
    int64_t state_change_cause; /* [1] PL_SGP32_STATE_CHANGE_* */
    bool has_rplmn;
    uint8_t rplmn[3]; /* [2] MCC/MNC, 3GPP TS 24.008 */
};

struct pl_sgp32_esipa_ipa_msg {
    enum pl_sgp32_esipa_kind kind;
    union {
        struct pl_sgp32_initiate_auth_request initiate_auth;
        struct pl_sgp32_authenticate_client_request authenticate_client;
        struct pl_sgp32_get_bpp_request get_bpp;
        struct pl_sgp32_cancel_session_request cancel_session;
        struct pl_sgp32_handle_notification handle_notification;
        struct pl_sgp32_eim_package_result transfer_response; /* TransferEimPackageResponse */
        struct pl_sgp32_get_eim_package_request get_eim_package;
        struct pl_sgp32_provide_eim_package_result provide_result;
    };
};

PL_MUST_CHECK int pl_sgp32_esipa_ipa_msg_encode(const struct pl_sgp32_esipa_ipa_msg *m,
                                                struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_esipa_ipa_msg_decode(const uint8_t *buf, size_t len,
                                                struct pl_sgp32_esipa_ipa_msg *m);

/* ---- eIM -> IPA bodies ---- */

/* InitiateAuthenticationResponseEsipa 'BF39' */
struct pl_sgp32_initiate_auth_response {
    bool is_error;
    int64_t error_code; /* initiateAuthenticationErrorEsipa */
    /* initiateAuthenticationOkEsipa: */
    struct pl_sgp32_buf transaction_id;     /* [0] optional */
    struct pl_sgp32_buf server_signed1;     /* whole '30' ServerSigned1 TLV */
    struct pl_sgp32_buf server_signature1;  /* '5F37' contents */
    struct pl_sgp32_buf euicc_ci_pkid;      /* euiccCiPKIdentifierToBeUsed '04' contents */
    struct pl_sgp32_buf server_certificate; /* whole '30' Certificate TLV */
    struct pl_sgp32_buf matching_id;        /* optional UTF-8 */
    struct pl_sgp32_buf ctx_params1;        /* optional: the CtxParams1 arm TLV inside 'A2' */
};

enum pl_sgp32_auth_client_kind {
    PL_SGP32_AUTH_CLIENT_OK_DP = 0, /* authenticateClientOkDPEsipa [0] */
    PL_SGP32_AUTH_CLIENT_OK_DS = 1, /* authenticateClientOkDSEsipa [1] */
    PL_SGP32_AUTH_CLIENT_ERROR = 2, /* authenticateClientErrorEsipa [2] */
};

/* AuthenticateClientResponseEsipa 'BF3B' */
struct pl_sgp32_authenticate_client_response {
    enum pl_sgp32_auth_client_kind kind;
    int64_t error_code;
    struct pl_sgp32_buf transaction_id;           /* [0]: optional for OK_DP, mandatory for OK_DS */
    struct pl_sgp32_buf profile_metadata;         /* OK_DP: optional whole 'BF25' TLV */
    struct pl_sgp32_buf smdp_signed2;             /* OK_DP: whole '30' TLV */
    struct pl_sgp32_buf smdp_signature2;          /* OK_DP: '5F37' contents */
    struct pl_sgp32_buf smdp_certificate;         /* OK_DP: whole '30' TLV */
    struct pl_sgp32_buf hash_cc;                  /* OK_DP: optional Octet32 */
    struct pl_sgp32_buf profile_download_trigger; /* OK_DS: optional whole 'BF54' TLV */
};

/* GetBoundProfilePackageResponseEsipa 'BF3A' */
struct pl_sgp32_get_bpp_response {
    bool is_error;
    int64_t error_code;
    struct pl_sgp32_buf transaction_id;        /* [0] optional */
    struct pl_sgp32_buf bound_profile_package; /* whole 'BF36' TLV */
};

/* CancelSessionResponseEsipa 'BF41' */
struct pl_sgp32_cancel_session_response {
    bool is_error; /* cancelSessionError [1]; otherwise cancelSessionOk [0] (empty) */
    int64_t error_code;
};

/* An eIM Package: TransferEimPackageRequest and GetEimPackageResponse arms. */
enum pl_sgp32_eim_package_kind {
    PL_SGP32_EIM_PACKAGE_ERROR = 1,                     /* GetEimPackageResponse only */
    PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST = 81,    /* 'BF51' */
    PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST = 82,   /* 'BF52' */
    PL_SGP32_EIM_PACKAGE_EIM_ACKNOWLEDGEMENTS = 83,     /* 'BF53', TransferEimPackage only */
    PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER = 84, /* 'BF54' */
};

struct pl_sgp32_eim_package {
    enum pl_sgp32_eim_package_kind kind;
    struct pl_sgp32_buf raw; /* the whole 'BF5x' TLV */
    int64_t error_code;      /* PACKAGE_ERROR: PL_SGP32_EIM_PKG_ERR_* */
};

enum pl_sgp32_provide_result_response_kind {
    PL_SGP32_PROVIDE_RSP_ACKNOWLEDGEMENTS = 0, /* eimAcknowledgements 'BF53' */
    PL_SGP32_PROVIDE_RSP_EMPTY = 1,            /* emptyResponse '30 00' */
    PL_SGP32_PROVIDE_RSP_ERROR = 2,            /* provideEimPackageResultError INTEGER */
};

/* ProvideEimPackageResultResponse 'BF50' */
struct pl_sgp32_provide_result_response {
    enum pl_sgp32_provide_result_response_kind kind;
    struct pl_sgp32_buf acknowledgements; /* the whole 'BF53' TLV */
    int64_t error_code;                   /* 2 eidNotFound, 3 invalidEid, 4 missingEid, 127 */
};

struct pl_sgp32_esipa_eim_msg {
    enum pl_sgp32_esipa_kind kind;
    union {
        struct pl_sgp32_initiate_auth_response initiate_auth;
        struct pl_sgp32_authenticate_client_response authenticate_client;
        struct pl_sgp32_get_bpp_response get_bpp;
        struct pl_sgp32_cancel_session_response cancel_session;
        struct pl_sgp32_eim_package transfer_request; /* TransferEimPackageRequest */
        struct pl_sgp32_eim_package get_eim_package;  /* GetEimPackageResponse */
        struct pl_sgp32_provide_result_response provide_result;
    };
};

PL_MUST_CHECK int pl_sgp32_esipa_eim_msg_encode(const struct pl_sgp32_esipa_eim_msg *m,
                                                struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_esipa_eim_msg_decode(const uint8_t *buf, size_t len,
                                                struct pl_sgp32_esipa_eim_msg *m);

#endif
