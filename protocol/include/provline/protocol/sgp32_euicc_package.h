/* SGP.32 eUICC Packages (ESep): EuiccPackageRequest 'BF51' with every v1.2 PSMO and eCO
 * (§2.11.1.1, §2.11.1.1.2, §2.11.1.1.3) and EuiccPackageResult 'BF51' with every
 * EuiccResultData arm (§2.11.2.1); the eIM signature and the eUICC result signature.
 * GSMA SGP.32 v1.2, ASN.1 module SGP32Definitions. Conventions: sgp32_common.h.
 *
 * Wire shapes (AUTOMATIC TAGS; docs/sgp32-codec.md):
 *   EuiccPackageRequest  BF51 { 30 { 80 eimId, 5A eid, 81 counter, [82 txid],
 *                                    A0 { psmo... } | A1 { eco... } }, 5F37 eimSignature }
 *   Psmo   A3 {5A iccid [05 00 rollback]} | A4 {5A} | A5 {5A} | BF2D {[A0 {4F|5A|95}] [5C]}
 *          | A6 {} | A7 {[80 00] [81 oid] [82 addr]} | A8 {5A} | A9 {} | BF65 {80 addr}
 *   Eco    A8 {EimConfigurationData} | A9 {80 eimId} | AA {EimConfigurationData} | AB {}
 *   EuiccPackageResult  BF51 { A0 { 30 {80 eimId, 81 counter, [82 txid], 83 seq,
 *                                        30 {results...}}, 5F37 euiccSignEPR }
 *                            | A1 { 30 {80, 81, [82], 02 code}, 5F37 euiccSignEPE }
 *                            | A2 { 80 eimId, [82 txid], [84 token] } }
 *   EuiccResultData  83|84|85 INTEGER, BF2D {A0 {E3...} | 81 err}, A6 {RAT}, 87, A8 {84 token
 *          | 02 code}, 89, 8A, AB {A0 {30 {80 [82]}...} | 81 err}, 8C, 8D, 8E, 02 terminated,
 *          BF65 {80 result}
 *
 * Signatures (§2.11.1.1, §2.11.2.1; EIM.md §4.1-4.2): ECDSA with SHA-256 over the DER of
 * the signed SEQUENCE (EuiccPackageSigned, EuiccPackageResultDataSigned or
 * EuiccPackageErrorDataSigned) followed by the associationToken TLV '84 len value'
 * ('84 01 00' when no token is configured). Signers emit r||s (64 bytes, BSI TR-03111);
 * verifiers accept r||s or a DER ECDSA-Sig-Value and always hash the bytes as received. */
#ifndef PROVLINE_PROTOCOL_SGP32_EUICC_PACKAGE_H
#define PROVLINE_PROTOCOL_SGP32_EUICC_PACKAGE_H

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/sgp32_eim_config.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- PSMO (§2.11.1.1.3). Enumerator values are the context tag numbers. ---- */
enum pl_sgp32_psmo_kind {
    PL_SGP32_PSMO_ENABLE = 3,
    PL_SGP32_PSMO_DISABLE = 4,
    PL_SGP32_PSMO_DELETE = 5,
    PL_SGP32_PSMO_GET_RAT = 6,
    PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE = 7,
    PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE = 8,
    PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE = 9,
    PL_SGP32_PSMO_LIST_PROFILE_INFO = 45,
    PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS = 101,
};

/* ProfileInfoListRequest searchCriteria (SGP.22 §5.7.15) */
enum pl_sgp32_search_kind {
    PL_SGP32_SEARCH_NONE = 0,
    PL_SGP32_SEARCH_ISDP_AID = 1,      /* 4F OctetTo16 */
    PL_SGP32_SEARCH_ICCID = 2,         /* 5A Iccid */
    PL_SGP32_SEARCH_PROFILE_CLASS = 3, /* 95 ProfileClass */
};

struct pl_sgp32_psmo {
    enum pl_sgp32_psmo_kind kind;
    union {
        /* enable: rollback is the optional rollbackFlag NULL */
        struct {
            uint8_t iccid[PL_SGP32_ICCID_LEN];
            bool rollback;
        } enable;
        /* disable, delete, setFallbackAttribute */
        struct {
            uint8_t iccid[PL_SGP32_ICCID_LEN];
        } profile;
        /* listProfileInfo: ProfileInfoListRequest 'BF2D' */
        struct {
            enum pl_sgp32_search_kind search;
            struct pl_sgp32_buf isdp_aid; /* 1..16 bytes */
            uint8_t iccid[PL_SGP32_ICCID_LEN];
            int64_t profile_class;
            struct pl_sgp32_buf tag_list; /* optional 5C contents */
        } list_profile_info;
        /* configureImmediateEnable */
        struct {
            bool immediate_enable_flag;
            struct pl_sgp32_buf default_smdp_oid;     /* optional OID contents octets */
            struct pl_sgp32_buf default_smdp_address; /* optional UTF-8 */
        } configure_immediate_enable;
        /* setDefaultDpAddress 'BF65' */
        struct {
            struct pl_sgp32_buf default_dp_address; /* UTF-8, mandatory */
        } set_default_dp_address;
    };
};

/* ---- eCO (§2.11.1.1.2) ---- */
enum pl_sgp32_eco_kind {
    PL_SGP32_ECO_ADD_EIM = 8,
    PL_SGP32_ECO_DELETE_EIM = 9,
    PL_SGP32_ECO_UPDATE_EIM = 10,
    PL_SGP32_ECO_LIST_EIM = 11,
};

struct pl_sgp32_eco {
    enum pl_sgp32_eco_kind kind;
    union {
        struct pl_sgp32_eim_config eim_config; /* addEim, updateEim */
        struct pl_sgp32_buf delete_eim_id;     /* deleteEim */
    };
};

enum pl_sgp32_package_kind {
    PL_SGP32_PACKAGE_PSMO = 0, /* psmoList [0] */
    PL_SGP32_PACKAGE_ECO = 1,  /* ecoList [1] */
};

/* EuiccPackageSigned */
struct pl_sgp32_euicc_package {
    struct pl_sgp32_buf eim_id; /* [0] 1..128 bytes */
    uint8_t eid[PL_SGP32_EID_LEN];
    uint32_t counter;             /* [1] counterValue, 0..PL_SGP32_COUNTER_MAX */
    struct pl_sgp32_buf eim_txid; /* [2] optional, 1..16 bytes */
    enum pl_sgp32_package_kind kind;
    size_t n_ops; /* 0..PL_SGP32_MAX_OPS */
    union {
        struct pl_sgp32_psmo psmo[PL_SGP32_MAX_OPS];
        struct pl_sgp32_eco eco[PL_SGP32_MAX_OPS];
    };
};

/* EuiccPackageRequest as decoded: the package plus the received signed bytes. */
struct pl_sgp32_euicc_package_request {
    struct pl_sgp32_euicc_package pkg;
    struct pl_sgp32_buf signed_raw; /* the EuiccPackageSigned TLV exactly as received */
    struct pl_sgp32_buf signature;  /* eimSignature contents (r||s or DER) */
};

/* DER(EuiccPackageSigned), the signed part alone (for an external signer / HSM). */
PL_MUST_CHECK int pl_sgp32_euicc_package_signed_encode(const struct pl_sgp32_euicc_package *pkg,
                                                       struct pl_wr *w);
/* BF51 with a signature produced elsewhere (sig: 1..PL_SGP32_SIG_MAX bytes, copied). */
PL_MUST_CHECK int pl_sgp32_euicc_package_request_encode(const struct pl_sgp32_euicc_package *pkg,
                                                        const uint8_t *sig, size_t sig_len,
                                                        struct pl_wr *w);
/* BF51 signed with the eIM key: r||s over DER(EuiccPackageSigned) ‖ token TLV.
 * association_token NULL: none configured ('84 01 00'). */
PL_MUST_CHECK int pl_sgp32_euicc_package_request_sign(const struct pl_sgp32_euicc_package *pkg,
                                                      const int64_t *association_token,
                                                      const struct pl_eckey *eim_key,
                                                      const struct pl_rng *rng, struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_euicc_package_request_decode(const uint8_t *buf, size_t len,
                                                        struct pl_sgp32_euicc_package_request *req);
/* Verifies eimSignature over signed_raw ‖ token TLV with the eIM public key:
 * PL_OK or PL_ERR_BAD_SIGNATURE. */
PL_MUST_CHECK int
pl_sgp32_euicc_package_request_verify(const struct pl_sgp32_euicc_package_request *req,
                                      const int64_t *association_token,
                                      const struct pl_eckey *eim_pub);

/* ---- EuiccPackageResult (§2.11.2.1) ---- */

/* EuiccResultData arms; values are the context tag numbers, except processingTerminated
 * (an untagged INTEGER). */
enum pl_sgp32_result_kind {
    PL_SGP32_RESULT_ENABLE = 3,
    PL_SGP32_RESULT_DISABLE = 4,
    PL_SGP32_RESULT_DELETE = 5,
    PL_SGP32_RESULT_GET_RAT = 6,
    PL_SGP32_RESULT_CONFIGURE_IMMEDIATE_ENABLE = 7,
    PL_SGP32_RESULT_ADD_EIM = 8,
    PL_SGP32_RESULT_DELETE_EIM = 9,
    PL_SGP32_RESULT_UPDATE_EIM = 10,
    PL_SGP32_RESULT_LIST_EIM = 11,
    PL_SGP32_RESULT_ROLLBACK = 12,
    PL_SGP32_RESULT_SET_FALLBACK_ATTRIBUTE = 13,
    PL_SGP32_RESULT_UNSET_FALLBACK_ATTRIBUTE = 14,
    PL_SGP32_RESULT_LIST_PROFILE_INFO = 45,
    PL_SGP32_RESULT_SET_DEFAULT_DP_ADDRESS = 101,
    PL_SGP32_RESULT_PROCESSING_TERMINATED = 1000,
};

/* Common result codes (EnableProfileResult etc.; see the ASN.1 for each arm's list). */
#define PL_SGP32_RC_OK                            0
#define PL_SGP32_RC_ICCID_OR_AID_NOT_FOUND        1
#define PL_SGP32_RC_PROFILE_NOT_IN_DISABLED_STATE 2
#define PL_SGP32_RC_DISALLOWED_BY_POLICY          3
#define PL_SGP32_RC_CAT_BUSY                      5
#define PL_SGP32_RC_ROLLBACK_NOT_AVAILABLE        20
#define PL_SGP32_RC_RETURN_FALLBACK_PROFILE       21
#define PL_SGP32_RC_UNDEFINED                     127

/* EuiccPackageErrorCode */
#define PL_SGP32_EPE_INVALID_EID          3
#define PL_SGP32_EPE_REPLAY               4
#define PL_SGP32_EPE_COUNTER_OUT_OF_RANGE 6
#define PL_SGP32_EPE_SIZE_OVERFLOW        15
#define PL_SGP32_EPE_ECALL_ACTIVE         104
#define PL_SGP32_EPE_UNDEFINED            127

struct pl_sgp32_euicc_result {
    enum pl_sgp32_result_kind kind;
    /* INTEGER arms (enable, disable, delete, configureImmediateEnable, deleteEim, updateEim,
     * rollback, set/unsetFallbackAttribute, processingTerminated, setDefaultDpAddress),
     * addEimResultCode (addEim without token), and the error of listProfileInfo/listEim. */
    int64_t code;
    bool has_association_token; /* addEim: associationToken [4] chosen */
    int64_t association_token;
    bool is_error; /* listProfileInfo / listEim: the error arm was chosen (code) */
    /* listProfileInfo ok: the 'E3' ProfileInfo elements; getRAT: the '30'
     * ProfilePolicyAuthorisationRule elements. */
    struct pl_sgp32_list list;
    size_t n_eims; /* listEim ok */
    struct pl_sgp32_eim_id_info eims[PL_SGP32_MAX_EIMS];
};

enum pl_sgp32_epr_kind {
    PL_SGP32_EPR_RESULT_SIGNED = 0,  /* euiccPackageResultSigned [0] */
    PL_SGP32_EPR_ERROR_SIGNED = 1,   /* euiccPackageErrorSigned [1] */
    PL_SGP32_EPR_ERROR_UNSIGNED = 2, /* euiccPackageErrorUnsigned [2] */
};

struct pl_sgp32_euicc_package_result {
    enum pl_sgp32_epr_kind kind;
    struct pl_sgp32_buf eim_id;   /* all kinds */
    uint32_t counter;             /* signed kinds */
    struct pl_sgp32_buf eim_txid; /* optional, all kinds */
    uint32_t seq_number;          /* RESULT_SIGNED */
    size_t n_results;             /* RESULT_SIGNED, 0..PL_SGP32_MAX_RESULTS */
    struct pl_sgp32_euicc_result results[PL_SGP32_MAX_RESULTS];
    int64_t error_code;         /* ERROR_SIGNED: PL_SGP32_EPE_* */
    bool has_association_token; /* ERROR_UNSIGNED */
    int64_t association_token;
    /* Decode only: the ...DataSigned TLV as received and the signature contents. */
    struct pl_sgp32_buf signed_raw;
    struct pl_sgp32_buf signature;
};

/* DER of the signed data SEQUENCE alone (signed kinds; PL_ERR_INVAL for ERROR_UNSIGNED). */
PL_MUST_CHECK int
pl_sgp32_euicc_package_result_data_encode(const struct pl_sgp32_euicc_package_result *res,
                                          struct pl_wr *w);
/* BF51 with a signature produced elsewhere (ignored for ERROR_UNSIGNED). */
PL_MUST_CHECK int
pl_sgp32_euicc_package_result_encode(const struct pl_sgp32_euicc_package_result *res,
                                     const uint8_t *sig, size_t sig_len, struct pl_wr *w);
/* BF51 signed by the eUICC key (r||s over data ‖ token TLV); for ERROR_UNSIGNED the key may
 * be NULL and nothing is signed. */
PL_MUST_CHECK int pl_sgp32_euicc_package_result_sign(
    const struct pl_sgp32_euicc_package_result *res, const int64_t *association_token,
    const struct pl_eckey *euicc_key, const struct pl_rng *rng, struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_euicc_package_result_decode(const uint8_t *buf, size_t len,
                                                       struct pl_sgp32_euicc_package_result *res);
/* Verifies euiccSignEPR / euiccSignEPE with PK.EUICC.SIG: PL_OK, PL_ERR_BAD_SIGNATURE, or
 * PL_ERR_STATE for an unsigned result. */
PL_MUST_CHECK int
pl_sgp32_euicc_package_result_verify(const struct pl_sgp32_euicc_package_result *res,
                                     const int64_t *association_token,
                                     const struct pl_eckey *euicc_pub);

#endif
