/* SGP.32 eIM configuration: EimConfigurationData (§2.11.1.1.1), EimIdInfo, the ES10b
 * functions AddInitialEim 'BF57' (§5.9.4) and GetEimConfigurationData 'BF55' (§5.9.18).
 * GSMA SGP.32 v1.2, ASN.1 module SGP32Definitions. Conventions: sgp32_common.h.
 *
 * Wire shapes (AUTOMATIC TAGS; see docs/sgp32-codec.md):
 *   EimConfigurationData  30 { 80 eimId, 81 eimFqdn, 82 eimIdType, 83 counterValue,
 *                              84 associationToken, A5 { A0|A1 ... }, A6 { A0|A1 ... },
 *                              87 eimSupportedProtocol, 88 euiccCiPKId, 89 00 }
 *   eimPublicKeyData [5] is an explicit tag around an automatically tagged CHOICE whose arms
 *   are IMPLICIT: A5 { A0 { <SubjectPublicKeyInfo contents> } } or
 *   A5 { A1 { <Certificate contents> } } (X.680 §31.2.7; same as asn1c). The decoder also
 *   accepts the arm holding a complete '30' TLV (OpenIoTRSP's reading); both give the same
 *   view. Same for trustedPublicKeyDataTls [6].
 *   AddInitialEimRequest  BF57 { A0 { 30 cfg, ... } }
 *   AddInitialEimResponse BF57 { A0 { 84 token | 05 00, ... } } or BF57 { 81 error }
 *   GetEimConfigurationDataRequest  BF55 { [A0 { 80 eimId }] }
 *   GetEimConfigurationDataResponse BF55 { A0 { 30 cfg, ... } } */
#ifndef PROVLINE_PROTOCOL_SGP32_EIM_CONFIG_H
#define PROVLINE_PROTOCOL_SGP32_EIM_CONFIG_H

#include "provline/protocol/err.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* EimIdType */
#define PL_SGP32_EIM_ID_TYPE_OID         1
#define PL_SGP32_EIM_ID_TYPE_FQDN        2
#define PL_SGP32_EIM_ID_TYPE_PROPRIETARY 3

/* EimSupportedProtocol named bits, as a mask */
#define PL_SGP32_PROTO_RETRIEVE_HTTPS (1u << 0)
#define PL_SGP32_PROTO_RETRIEVE_COAPS (1u << 1)
#define PL_SGP32_PROTO_INJECT_HTTPS   (1u << 2)
#define PL_SGP32_PROTO_INJECT_COAPS   (1u << 3)
#define PL_SGP32_PROTO_PROPRIETARY    (1u << 4)

/* AddInitialEimError / AddEimResult codes */
#define PL_SGP32_ADD_EIM_OK                   0
#define PL_SGP32_ADD_EIM_INSUFFICIENT_MEMORY  1
#define PL_SGP32_ADD_EIM_ALREADY_EXISTS       2
#define PL_SGP32_ADD_EIM_CI_PK_UNKNOWN        3
#define PL_SGP32_ADD_EIM_INVALID_TOKEN        5
#define PL_SGP32_ADD_EIM_COUNTER_OUT_OF_RANGE 6
#define PL_SGP32_ADD_EIM_COMMAND_ERROR        7
#define PL_SGP32_ADD_EIM_UNDEFINED            127

enum pl_sgp32_key_kind {
    PL_SGP32_KEY_NONE = 0, /* component absent */
    PL_SGP32_KEY_SPKI = 1, /* eimPublicKey / trustedEimPkTls, arm [0] */
    PL_SGP32_KEY_CERT = 2, /* eimCertificate / trustedCertificateTls, arm [1] */
};

/* eimPublicKeyData / trustedPublicKeyDataTls. body is the contents octets of the
 * SubjectPublicKeyInfo or Certificate SEQUENCE, i.e. its DER without the leading '30 len';
 * re-wrap in '30' before X.509 parsing. */
struct pl_sgp32_key_data {
    enum pl_sgp32_key_kind kind;
    struct pl_sgp32_buf body;
};

/* Fills kd from a complete DER SubjectPublicKeyInfo or Certificate (borrows der). */
PL_MUST_CHECK int pl_sgp32_key_data_from_der(enum pl_sgp32_key_kind kind, const uint8_t *der,
                                             size_t len, struct pl_sgp32_key_data *kd);

struct pl_sgp32_eim_config {
    struct pl_sgp32_buf eim_id;   /* [0] UTF8String (SIZE(1..128)), mandatory */
    struct pl_sgp32_buf eim_fqdn; /* [1] optional, at most PL_SGP32_ADDR_MAX bytes */
    bool has_eim_id_type;
    int64_t eim_id_type; /* [2] PL_SGP32_EIM_ID_TYPE_* */
    bool has_counter;
    uint32_t counter; /* [3] initial counterValue, 0..PL_SGP32_COUNTER_MAX */
    bool has_association_token;
    int64_t association_token; /* [4] (-1 asks the eUICC to compute one, per onomondo-eim) */
    struct pl_sgp32_key_data eim_public_key_data;         /* [5] */
    struct pl_sgp32_key_data trusted_public_key_data_tls; /* [6] */
    bool has_supported_protocol;
    uint32_t supported_protocol;       /* [7] PL_SGP32_PROTO_* mask */
    struct pl_sgp32_buf euicc_ci_pkid; /* [8] SubjectKeyIdentifier, optional */
    bool indirect_profile_download;    /* [9] NULL present */
};

/* EimIdInfo ::= SEQUENCE { eimId [0], eimIdType [2] OPTIONAL } (in ListEimResult) */
struct pl_sgp32_eim_id_info {
    struct pl_sgp32_buf eim_id;
    bool has_eim_id_type;
    int64_t eim_id_type;
};

/* EimConfigurationData as a stand-alone '30' SEQUENCE. */
PL_MUST_CHECK int pl_sgp32_eim_config_encode(const struct pl_sgp32_eim_config *cfg,
                                             struct pl_wr *w);
PL_MUST_CHECK int pl_sgp32_eim_config_decode(const uint8_t *buf, size_t len,
                                             struct pl_sgp32_eim_config *cfg);

/* AddInitialEimRequest 'BF57' */
struct pl_sgp32_add_initial_eim_request {
    size_t n_eims; /* 0..PL_SGP32_MAX_EIMS */
    struct pl_sgp32_eim_config eims[PL_SGP32_MAX_EIMS];
};
PL_MUST_CHECK int
pl_sgp32_add_initial_eim_request_encode(const struct pl_sgp32_add_initial_eim_request *req,
                                        struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_add_initial_eim_request_decode(const uint8_t *buf, size_t len,
                                        struct pl_sgp32_add_initial_eim_request *req);

/* AddInitialEimResponse 'BF57': addInitialEimOk (one entry per configuration: a token or
 * addOk) or addInitialEimError. */
struct pl_sgp32_add_initial_eim_entry {
    bool has_association_token; /* false: addOk NULL */
    int64_t association_token;
};
struct pl_sgp32_add_initial_eim_response {
    bool is_error;
    int64_t error_code; /* PL_SGP32_ADD_EIM_* when is_error */
    size_t n_results;   /* 0..PL_SGP32_MAX_EIMS */
    struct pl_sgp32_add_initial_eim_entry results[PL_SGP32_MAX_EIMS];
};
PL_MUST_CHECK int
pl_sgp32_add_initial_eim_response_encode(const struct pl_sgp32_add_initial_eim_response *rsp,
                                         struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_add_initial_eim_response_decode(const uint8_t *buf, size_t len,
                                         struct pl_sgp32_add_initial_eim_response *rsp);

/* GetEimConfigurationDataRequest 'BF55' with the optional searchCriteria eimId. */
struct pl_sgp32_get_eim_config_request {
    struct pl_sgp32_buf eim_id; /* absent: all eIMs */
};
PL_MUST_CHECK int
pl_sgp32_get_eim_config_request_encode(const struct pl_sgp32_get_eim_config_request *req,
                                       struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_get_eim_config_request_decode(const uint8_t *buf, size_t len,
                                       struct pl_sgp32_get_eim_config_request *req);

/* GetEimConfigurationDataResponse 'BF55' */
struct pl_sgp32_get_eim_config_response {
    size_t n_eims;
    struct pl_sgp32_eim_config eims[PL_SGP32_MAX_EIMS];
};
PL_MUST_CHECK int
pl_sgp32_get_eim_config_response_encode(const struct pl_sgp32_get_eim_config_response *rsp,
                                        struct pl_wr *w);
PL_MUST_CHECK int
pl_sgp32_get_eim_config_response_decode(const uint8_t *buf, size_t len,
                                        struct pl_sgp32_get_eim_config_response *rsp);

#endif
