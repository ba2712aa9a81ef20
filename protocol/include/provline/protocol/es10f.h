/* ES10f "FPA Services": the commands the FPA sends to the eUICC's ISD-R during the Device
 * Production Process, as ES10 STORE DATA requests like ES10b (IFPP.md §5.7).
 *
 * PROVLINE'S OWN COMMAND SET until GSMA SGP.42 is public. Wire description, APDU-level
 * sequencing, SW 6985 lock rules and the ASN.1 module: docs/ifpp-es10f.md §1, §3-§7; rationale:
 * docs/decisions/0004-ifpp-envelope-and-es10f.md. Sources: GSMA SGP.41 v1.0 (GENS08,
 * GENS13, EUICCF03, EUICCF04, DMF03 as summarised in IFPP.md §3-§4), IFPP.md §6.1-§6.2,
 * §5.8 (the SGP.32 v1.2 EuiccPackageRequest counter pattern), ARCHITECTURE.md §4.
 *
 *   GetIfppInfo          'FF72' {}  ->  'FF73' { eid '80', factoryMode '81',
 *                          euiccCertificate 'A2' { '30' }, eumCertificate 'A3' { '30' },
 *                          otkList 'A4' { SignedOtk '30' { otkId '80', otPK '81' (65 B),
 *                                                         otkSignature '82' (64 B) } ... } }
 *   LoadIfppPackage      'FF71' { otkId '80', transactionId '81', dpfChain 'A2' { '30'... } }
 *                          -> no data (go on with the SGP.22 BPP segments) or a PIR 'BF37'
 *   DeleteRemainingOtks  'FF74' { token 'FF7A' { eid '80', counterValue '81', operation '82',
 *                                                transactionId '83' OPTIONAL },
 *                                 tokenSignature '5F37', signerChain 'A0' { '30'... } }
 *                          -> 'FF75' { receipt 'A0' { 'FF7B' { eid '80', counterValue '81',
 *                                         operation '82', transactionId '83' OPTIONAL,
 *                                         deletedOtkIds 'A4' { '02'... } }, '5F37' }
 *                                    | error '81' INTEGER }
 * DeleteRemainingOtks is also the explicit EndOfProduction / factory lock: deleting the
 * last remaining OTK closes the FPA Services for good (docs/ifpp-es10f.md §5.4).
 *
 * Ownership: decoded structs are views. Variable-length fields (transactionId,
 * certificates, PIR) borrow the input buffer; fixed-size fields are copied. Encoders
 * append to a pl_wr (errors sticky there and returned) and copy.
 * Decoder errors follow ifpp_envelope.h: PL_ERR_TRUNCATED (missing field), PL_ERR_DER_TAG,
 * PL_ERR_DER_TRAILING, PL_ERR_DER_VALUE (size/range of a primitive, unsorted or duplicate
 * otkIds), PL_ERR_OVERFLOW (list or certificate over its cap), PL_ERR_DER_TOOBIG (input
 * over the command's cap). Encoders return PL_ERR_INVAL for fields out of range. */
#ifndef PROVLINE_PROTOCOL_ES10F_H
#define PROVLINE_PROTOCOL_ES10F_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/wr.h"

/* Top-level tags (private class, docs/ifpp-es10f.md §1). */
#define PL_TAG_ES10F_LOAD_REQ        0xFF71u /* [PRIVATE 113] LoadIfppPackageRequest */
#define PL_TAG_ES10F_GET_INFO_REQ    0xFF72u /* [PRIVATE 114] GetIfppInfoRequest */
#define PL_TAG_ES10F_GET_INFO_RSP    0xFF73u /* [PRIVATE 115] GetIfppInfoResponse */
#define PL_TAG_ES10F_DELETE_OTKS_REQ 0xFF74u /* [PRIVATE 116] DeleteRemainingOtksRequest */
#define PL_TAG_ES10F_DELETE_OTKS_RSP 0xFF75u /* [PRIVATE 117] DeleteRemainingOtksResponse */
#define PL_TAG_ES10F_TOKEN           0xFF7Au /* [PRIVATE 122] DeleteOtksToken (signed) */
#define PL_TAG_ES10F_RECEIPT         0xFF7Bu /* [PRIVATE 123] OtkDeletionReceipt (signed) */
#define PL_TAG_ES10F_PIR             0xBF37u /* SGP.22 ProfileInstallationResult */

#define PL_ES10F_OTK_MAX 64u /* OTKs in one list */
/* Caps on whole commands / responses. */
#define PL_ES10F_GET_INFO_RSP_MAX    (2u * PL_IFPP_CERT_MAX + PL_ES10F_OTK_MAX * 160u + 256u)
#define PL_ES10F_LOAD_REQ_MAX        (PL_IFPP_CHAIN_MAX * PL_IFPP_CERT_MAX + 256u)
#define PL_ES10F_DELETE_OTKS_REQ_MAX (PL_IFPP_CHAIN_MAX * PL_IFPP_CERT_MAX + 512u)
#define PL_ES10F_DELETE_OTKS_RSP_MAX (PL_ES10F_OTK_MAX * 5u + 512u)
#define PL_ES10F_PIR_MAX             4096u /* a 'BF37' as LoadIfppPackage response */

/* ---------------------------------------------------------------- one-time keys ---- */

/* The OTK signature message (ARCHITECTURE.md §4 step 1, IFPP.md §6.1):
 *   "IFPP-OTK" (8 ASCII bytes) || EID (16) || otkId (2, big-endian) || otPK (65)
 * signed with SK.EUICC.SIG (ECDSA-SHA256, r||s). otPK is on the curve of CERT.EUICC. */
#define PL_IFPP_OTK_LABEL     "IFPP-OTK"
#define PL_IFPP_OTK_LABEL_LEN 8u
#define PL_IFPP_OTK_MSG_LEN   (PL_IFPP_OTK_LABEL_LEN + PL_IFPP_EID_LEN + 2u + PL_EC_PUB_LEN)

/* SignedOtk. All fields copied. */
struct pl_ifpp_otk {
    uint16_t otk_id;
    uint8_t otpk[PL_EC_PUB_LEN];
    uint8_t sig[PL_ECDSA_SIG_LEN];
};

/* Builds the 91-byte message otkSignature covers. Cannot fail. */
void pl_ifpp_otk_signed_data(const uint8_t eid[PL_IFPP_EID_LEN], uint16_t otk_id,
                             const uint8_t otpk[PL_EC_PUB_LEN], uint8_t out[PL_IFPP_OTK_MSG_LEN]);
/* eUICC side: signs otk->otk_id/otpk for eid with SK.EUICC.SIG, writing otk->sig. */
PL_MUST_CHECK int pl_ifpp_otk_sign(const struct pl_eckey *euicc_sk,
                                   const uint8_t eid[PL_IFPP_EID_LEN], struct pl_ifpp_otk *otk,
                                   const struct pl_rng *rng);
/* Verifies otk->sig with PK.EUICC.SIG (from a CERT.EUICC whose chain was verified to the
 * CI) for eid. PL_OK or PL_ERR_BAD_SIGNATURE. It does not check that otPK is a point on
 * the curve: do that (pl_eckey_from_public) before binding to it. */
PL_MUST_CHECK int pl_ifpp_otk_verify(const struct pl_eckey *euicc_pub,
                                     const uint8_t eid[PL_IFPP_EID_LEN],
                                     const struct pl_ifpp_otk *otk);

/* ------------------------------------------------------------------ GetIfppInfo ---- */

/* Request 'FF72' 00 (no fields). */
PL_MUST_CHECK int pl_es10f_get_info_req_encode(struct pl_wr *w);
/* PL_OK if [p, p+len) is exactly 'FF72' 00. */
PL_MUST_CHECK int pl_es10f_get_info_req_decode(const uint8_t *p, size_t len);

/* Response 'FF73'. otk lists the FREE one-time keys only, sorted by strictly increasing
 * otkId. The struct is ~8.5 KiB. */
struct pl_es10f_info {
    uint8_t eid[PL_IFPP_EID_LEN];   /* copied */
    bool factory_mode;              /* TRUE from a compliant eUICC: a locked one answers 6985 */
    struct pl_ifpp_cert cert_euicc; /* borrowed: whole '30' TLV of CERT.EUICC */
    struct pl_ifpp_cert cert_eum;   /* borrowed: whole '30' TLV of CERT.EUM */
    size_t n_otk;                   /* 0..PL_ES10F_OTK_MAX */
    struct pl_ifpp_otk otk[PL_ES10F_OTK_MAX]; /* copied */
};
PL_MUST_CHECK int pl_es10f_get_info_rsp_encode(const struct pl_es10f_info *in, struct pl_wr *w);
PL_MUST_CHECK int pl_es10f_get_info_rsp_decode(const uint8_t *p, size_t len,
                                               struct pl_es10f_info *out);
/* The entry for otk_id, or NULL. Borrows info. */
const struct pl_ifpp_otk *pl_es10f_info_find_otk(const struct pl_es10f_info *info, uint16_t otk_id);

/* -------------------------------------------------------------- LoadIfppPackage ---- */

/* The header command 'FF71', sent as its own STORE DATA sequence before the SGP.22
 * LoadBoundProfilePackage segments of the package's BPP (bpp.h pl_bpp_segments()). */
struct pl_es10f_load_req {
    uint16_t otk_id;
    const uint8_t *tid; /* borrowed, 1..16 B: must equal the ISCR transactionId */
    size_t tid_len;
    struct pl_ifpp_chain dpf_chain; /* borrowed */
};
PL_MUST_CHECK int pl_es10f_load_req_encode(const struct pl_es10f_load_req *in, struct pl_wr *w);
PL_MUST_CHECK int pl_es10f_load_req_decode(const uint8_t *p, size_t len,
                                           struct pl_es10f_load_req *out);
/* Fills the header from a decoded package (borrows pkg's views). Cannot fail. */
void pl_es10f_load_req_from_pkg(const struct pl_ifpp_pkg *pkg, struct pl_es10f_load_req *out);

/* The response to the header and to every segment: empty while all is well, or a
 * ProfileInstallationResult 'BF37' (the last segment's result, or the first error). */
struct pl_es10f_load_rsp {
    bool has_pir;
    const uint8_t *pir; /* borrowed: the whole 'BF37' TLV (parse with pir.h) */
    size_t pir_len;
};
/* Appends nothing (has_pir false) or the PIR bytes (one strictly valid 'BF37' TLV of at
 * most PL_ES10F_PIR_MAX bytes, else PL_ERR_INVAL). */
PL_MUST_CHECK int pl_es10f_load_rsp_encode(const struct pl_es10f_load_rsp *in, struct pl_wr *w);
/* len 0: has_pir false. Otherwise exactly one strictly valid 'BF37' TLV. */
PL_MUST_CHECK int pl_es10f_load_rsp_decode(const uint8_t *p, size_t len,
                                           struct pl_es10f_load_rsp *out);

/* ---------------------------------------------------------- DeleteRemainingOtks ---- */

/* FactoryOperation ::= INTEGER. Only one is defined; it is also EndOfProduction. */
#define PL_ES10F_OP_DELETE_REMAINING_OTKS 1u

/* DeleteOtksErrorCode ::= INTEGER (docs/ifpp-es10f.md §5.3). Numbers shared with SGP.32
 * EuiccPackageErrorCode where the meaning is the same (3, 4, 6, 127). */
enum pl_es10f_dotk_error {
    PL_ES10F_DOTK_INCORRECT_INPUT_VALUES = 1,
    PL_ES10F_DOTK_INVALID_SIGNATURE = 2,
    PL_ES10F_DOTK_INVALID_EID = 3,
    PL_ES10F_DOTK_REPLAY_ERROR = 4,
    PL_ES10F_DOTK_UNSUPPORTED_OPERATION = 5,
    PL_ES10F_DOTK_COUNTER_OUT_OF_RANGE = 6,
    PL_ES10F_DOTK_NOT_IN_FACTORY_MODE = 7,
    PL_ES10F_DOTK_INVALID_CERTIFICATE = 8,
    PL_ES10F_DOTK_UNDEFINED_ERROR = 127,
};
/* ASN.1 identifier ("replayError"), or "unknown". Never NULL. */
const char *pl_es10f_dotk_error_name(int code);

/* counterValue: per eUICC, strictly increasing, 1..PL_ES10F_COUNTER_MAX; the eUICC starts
 * with last = 0. */
#define PL_ES10F_COUNTER_MAX ((uint64_t)INT64_MAX)
/* eUICC side: PL_OK if value is acceptable after last; PL_ERR_INVAL if value is 0 or over
 * PL_ES10F_COUNTER_MAX (counterValueOutOfRange); PL_ERR_REPLAY if value <= last
 * (replayError). */
PL_MUST_CHECK int pl_es10f_counter_check(uint64_t last, uint64_t value);
/* Key Maker side: *next = last + 1; PL_ERR_OVERFLOW when last >= PL_ES10F_COUNTER_MAX. */
PL_MUST_CHECK int pl_es10f_counter_next(uint64_t last, uint64_t *next);

/* DeleteOtksToken 'FF7A' (the signed part of the request). */
struct pl_es10f_token {
    uint8_t eid[PL_IFPP_EID_LEN]; /* copied */
    uint64_t counter;             /* counterValue */
    uint32_t op;                  /* operation; decoders accept any 0..2^32-1 */
    const uint8_t *tid;           /* borrowed, optional correlation id: NULL/0 = absent */
    size_t tid_len;
};
/* Appends the token TLV 'FF7A': the bytes tokenSignature covers. */
PL_MUST_CHECK int pl_es10f_token_encode(const struct pl_es10f_token *t, struct pl_wr *w);
/* Key Maker side: signs pl_es10f_token_encode() output with the key of CERT.DPf. */
PL_MUST_CHECK int pl_es10f_token_sign(const struct pl_es10f_token *t, const struct pl_eckey *key,
                                      const struct pl_rng *rng, uint8_t sig[PL_ECDSA_SIG_LEN]);

struct pl_es10f_delete_otks_req {
    struct pl_es10f_token token;
    uint8_t sig[PL_ECDSA_SIG_LEN];     /* copied; tokenSignature r||s */
    struct pl_ifpp_chain signer_chain; /* borrowed; CERT.DPf first */
    /* Set by the decoder only: */
    const uint8_t *raw; /* the whole 'FF74' TLV */
    size_t raw_len;
    const uint8_t *signed_raw; /* the whole 'FF7A' TLV as received */
    size_t signed_raw_len;
};
PL_MUST_CHECK int pl_es10f_delete_otks_req_encode(const struct pl_es10f_delete_otks_req *in,
                                                  struct pl_wr *w);
PL_MUST_CHECK int pl_es10f_delete_otks_req_decode(const uint8_t *p, size_t len,
                                                  struct pl_es10f_delete_otks_req *out);
/* Verifies tokenSignature over the received 'FF7A' bytes with the signer's public key
 * (the leaf of signer_chain, after the caller verified the chain to the CI).
 * PL_OK, PL_ERR_BAD_SIGNATURE, or PL_ERR_INVAL if req was not decoded. */
PL_MUST_CHECK int pl_es10f_delete_otks_req_verify(const struct pl_es10f_delete_otks_req *req,
                                                  const struct pl_eckey *signer_pub);
/* eUICC side: every check on a decoded request after the chain, in the order fixed by
 * docs/ifpp-es10f.md §5.3: signature, EID, counter, operation. On failure *reason gets the
 * DeleteOtksErrorCode to answer and the return is PL_ERR_BAD_SIGNATURE, PL_ERR_DENIED
 * (other EID), PL_ERR_INVAL (counter out of range), PL_ERR_REPLAY or PL_ERR_UNSUPPORTED.
 * PL_OK with *reason = 0 when the request is to be executed. */
PL_MUST_CHECK int pl_es10f_delete_otks_req_check(const struct pl_es10f_delete_otks_req *req,
                                                 const struct pl_eckey *signer_pub,
                                                 const uint8_t eid[PL_IFPP_EID_LEN],
                                                 uint64_t last_counter, int *reason);

/* OtkDeletionReceipt 'FF7B' (the signed part of a successful response). */
struct pl_es10f_receipt {
    uint8_t eid[PL_IFPP_EID_LEN]; /* copied */
    uint64_t counter;             /* echo of the token */
    uint32_t op;                  /* echo of the token */
    const uint8_t *tid;           /* borrowed echo of the token's transactionId; NULL/0 = absent */
    size_t tid_len;
    size_t n_deleted;                   /* 0..PL_ES10F_OTK_MAX */
    uint16_t deleted[PL_ES10F_OTK_MAX]; /* strictly increasing otkIds deleted now */
};
/* Copies eid, counter, op and the tid view from the token; no OTK deleted yet. */
void pl_es10f_receipt_init(struct pl_es10f_receipt *r, const struct pl_es10f_token *t);
/* Appends the receipt TLV 'FF7B': the bytes the eUICC signature covers. */
PL_MUST_CHECK int pl_es10f_receipt_encode(const struct pl_es10f_receipt *r, struct pl_wr *w);
/* eUICC side: signs pl_es10f_receipt_encode() output with SK.EUICC.SIG. */
PL_MUST_CHECK int pl_es10f_receipt_sign(const struct pl_es10f_receipt *r,
                                        const struct pl_eckey *key, const struct pl_rng *rng,
                                        uint8_t sig[PL_ECDSA_SIG_LEN]);

struct pl_es10f_delete_otks_rsp {
    bool ok;   /* true: receipt + sig; false: error */
    int error; /* DeleteOtksErrorCode (1..127) when !ok */
    struct pl_es10f_receipt receipt;
    uint8_t sig[PL_ECDSA_SIG_LEN]; /* copied; euiccSignature r||s */
    /* Set by the decoder only (receipt arm): */
    const uint8_t *signed_raw; /* the whole 'FF7B' TLV as received */
    size_t signed_raw_len;
};
PL_MUST_CHECK int pl_es10f_delete_otks_rsp_encode(const struct pl_es10f_delete_otks_rsp *in,
                                                  struct pl_wr *w);
PL_MUST_CHECK int pl_es10f_delete_otks_rsp_decode(const uint8_t *p, size_t len,
                                                  struct pl_es10f_delete_otks_rsp *out);
/* Key Maker side: verifies a decoded receipt with PK.EUICC.SIG over the received 'FF7B'
 * bytes, then that it answers `sent` (same eid, counterValue, operation and transactionId).
 * PL_OK, PL_ERR_BAD_SIGNATURE, PL_ERR_REPLAY (a valid receipt for another token),
 * PL_ERR_STATE (rsp is an error response), PL_ERR_INVAL (not decoded). */
PL_MUST_CHECK int pl_es10f_delete_otks_rsp_verify(const struct pl_es10f_delete_otks_rsp *rsp,
                                                  const struct pl_eckey *euicc_pub,
                                                  const struct pl_es10f_token *sent);

#endif
