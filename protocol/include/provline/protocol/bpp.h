/* GSMA SGP.22 v2.5 §2.5.4 BoundProfilePackage and its plaintext inner commands,
 * §5.5.x InitialiseSecureChannel / ConfigureISDP / StoreMetadata / ReplaceSessionKeys,
 * §5.7.6 ES10b.LoadBoundProfilePackage (segmentation). ASN.1: RSPDefinitions V2.5
 * (shared/asn1/RSPDefinitions.asn). provline reference: IFPP.md §5.1, §5.2, §5.7.
 *
 * All decoders produce *views*: pointers that borrow the input buffer, valid as long as
 * it is. Decoders are strict DER and check every tag against the ASN.1. Encoders append
 * to a pl_wr (errors are sticky in the writer and also returned). */
#ifndef PROVLINE_PROTOCOL_BPP_H
#define PROVLINE_PROTOCOL_BPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/iccid.h" /* PL_ICCID_LEN */
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_TAG_BPP 0xBF36u            /* BoundProfilePackage */
#define PL_TAG_ISCR 0xBF23u           /* InitialiseSecureChannelRequest */
#define PL_TAG_CONFIGURE_ISDP 0xBF24u /* ConfigureISDPRequest */
#define PL_TAG_STORE_METADATA 0xBF25u /* StoreMetadataRequest */
#define PL_TAG_REPLACE_KEYS 0xBF26u   /* ReplaceSessionKeysRequest */

#define PL_BPP_TID_MAX 16u     /* TransactionId ::= OCTET STRING (SIZE(1..16)) */
#define PL_BPP_HOST_ID_MAX 16u /* hostId OctetTo16 */

/* Caps on the segment counts of one BPP (SGP.22 sets none; these bound memory).
 * A0: ConfigureISDP is one segment in practice; A1: StoreMetadata (icon up to 1 KiB)
 * needs at most 3; A2: ReplaceSessionKeys is one; A3: 1024 segments of at most
 * PL_BSP_MAX_SEGMENT (1020) bytes carry a profile of up to ~1 MB. */
#define PL_BPP_MAX_87_FIRST 4u
#define PL_BPP_MAX_88 16u
#define PL_BPP_MAX_87_SECOND 4u
#define PL_BPP_MAX_86 1024u
/* Most ES10b LoadBoundProfilePackage commands one BPP splits into (§5.7 rule). */
#define PL_BPP_MAX_SEGMENTS (6u + PL_BPP_MAX_88 + PL_BPP_MAX_86)

/* InitialiseSecureChannelRequest 'BF23':
 *   remoteOpId '82' = 1 (installBoundProfilePackage), transactionId '80' (1..16 B),
 *   controlRefTemplate 'A6' { '80' 01 88 (AES), '81' 01 10 (16 B), '84' hostId (1..16 B) },
 *   smdpOtpk '5F49' (65 B uncompressed point), smdpSign '5F37' (64 B r||s). */
struct pl_iscr {
    const uint8_t *tid;
    size_t tid_len;
    const uint8_t *host_id;
    size_t host_id_len;
    const uint8_t *smdp_otpk; /* PL_EC_PUB_LEN bytes */
    const uint8_t *smdp_sign; /* PL_ECDSA_SIG_LEN bytes */
    /* Set by the decoder only (NULL when built for encoding): */
    const uint8_t *raw;       /* the whole 'BF23' TLV as received */
    size_t raw_len;
    const uint8_t *signed_raw; /* received bytes '82'..'5F49'(smdpOtpk), i.e. the ISCR
                                  contents before smdpSign */
    size_t signed_raw_len;
};

/* One segment of a BPP: a whole '86'/'87'/'88' TLV (tag, length, contents). Borrowed. */
struct pl_bpp_seg {
    const uint8_t *tlv;
    size_t len;
};

/* BoundProfilePackage 'BF36'. Decoding fills every field; encoding reads iscr (fields,
 * not raw), the segment lists and has_second87. Each segment is a complete TLV with the
 * list's tag, at most PL_BSP_MAX_SEGMENT (1020) bytes long, with at least PL_BSP_MAC_LEN
 * (8) bytes of contents (the MAC). A0, A1 and A3 hold at least one segment; A2 when present too.
 * The struct is large (~17 KiB): allocate it statically or on the heap in small stacks. */
struct pl_bpp {
    struct pl_iscr iscr;
    size_t n87_first;
    struct pl_bpp_seg first87[PL_BPP_MAX_87_FIRST];   /* A0 ConfigureISDP, enc+MAC */
    size_t n88;
    struct pl_bpp_seg seq88[PL_BPP_MAX_88];           /* A1 StoreMetadata, MAC only */
    bool has_second87;
    size_t n87_second;
    struct pl_bpp_seg second87[PL_BPP_MAX_87_SECOND]; /* A2 ReplaceSessionKeys */
    size_t n86;
    struct pl_bpp_seg seq86[PL_BPP_MAX_86];           /* A3 profile elements */
    /* Set by the decoder only: the whole 'BF36' TLV and the sizes the segmentation needs. */
    const uint8_t *raw;
    size_t raw_len;
    size_t hdr_len;    /* 'BF36' identifier + length octets */
    size_t a0_len;     /* whole 'A0' TLV */
    size_t a1_hdr_len; /* 'A1' identifier + length octets */
    size_t a2_len;     /* whole 'A2' TLV, 0 when absent */
    size_t a3_hdr_len; /* 'A3' identifier + length octets */
};

/* Decodes exactly one 'BF23' TLV spanning [p, p+len). Borrows p.
 * PL_ERR_UNSUPPORTED when remoteOpId != 1 or the CRT is not (88, 10) (SGP.22 errors
 * unsupportedRemoteOperationType(5) / unsupportedCrtValues(4)); DER errors otherwise;
 * PL_ERR_DER_VALUE for wrong field sizes. */
PL_MUST_CHECK int pl_iscr_decode(const uint8_t *p, size_t len, struct pl_iscr *out);
/* Encodes 'BF23' from the fields (raw/signed_raw ignored). */
PL_MUST_CHECK int pl_iscr_encode(const struct pl_iscr *in, struct pl_wr *w);

/* The data smdpSign covers (SGP.22 §5.5.1 / IFPP.md §5.2):
 *   82 01 01 || 80 L tid || A6 L (80 01 88 | 81 01 10 | 84 L hostId) || 5F49 41 otPK.DP
 *   || 5F49 41 otPK.EUICC
 * For a decoded ISCR (signed_raw set) the first four TLVs are the received bytes; otherwise
 * they are encoded from the fields. euicc_otpk is the eUICC's one-time public key (not in
 * the BPP). Appends to w. */
PL_MUST_CHECK int pl_bpp_iscr_signed_data(const struct pl_iscr *iscr,
                                          const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                                          struct pl_wr *w);
/* Signs with the SM-DP(f) key: writes r||s into sig (the caller points iscr->smdp_sign at it). */
PL_MUST_CHECK int pl_iscr_sign(const struct pl_iscr *iscr, const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                               const struct pl_eckey *dp_key, const struct pl_rng *rng,
                               uint8_t sig[PL_ECDSA_SIG_LEN]);
/* PL_OK or PL_ERR_BAD_SIGNATURE (or another error): verifies smdpSign with the SM-DP(f)
 * public key over pl_bpp_iscr_signed_data(). */
PL_MUST_CHECK int pl_iscr_verify(const struct pl_iscr *iscr, const uint8_t euicc_otpk[PL_EC_PUB_LEN],
                                 const struct pl_eckey *dp_pub);

/* Decodes exactly one 'BF36' TLV spanning [p, p+len) into *out (borrows p).
 * PL_ERR_OVERFLOW when a list exceeds its cap or a segment exceeds PL_BSP_MAX_SEGMENT. */
PL_MUST_CHECK int pl_bpp_decode(const uint8_t *p, size_t len, struct pl_bpp *out);
/* Encodes 'BF36' from in (the iscr fields and the segment TLVs, copied verbatim after a
 * check of their tag and framing). */
PL_MUST_CHECK int pl_bpp_encode(const struct pl_bpp *in, struct pl_wr *w);

/* One ES10b.LoadBoundProfilePackage command: bytes [off, off+len) of the decoded BPP's
 * raw buffer; p points at them (borrowed from bpp->raw). */
struct pl_bpp_span {
    size_t off;
    size_t len;
    const uint8_t *p;
};
/* Number of commands pl_bpp_segments() yields for a decoded BPP. */
size_t pl_bpp_segment_count(const struct pl_bpp *bpp);
/* Splits a *decoded* BPP into its ES10b commands, in the order lpac sends them
 * (SGP.22 §2.5.5 / §5.7.6, IFPP.md §5.7):
 *   (1) 'BF36' tag+length plus the whole 'BF23'; (2) the whole 'A0'; (3) 'A1' tag+length;
 *   (4) each '88'; (5) the whole 'A2' if present; (6) 'A3' tag+length; (7) each '86'.
 * The spans are contiguous and cover the BPP exactly. PL_ERR_OVERFLOW if cap is too small,
 * PL_ERR_INVAL if bpp was not produced by pl_bpp_decode. */
PL_MUST_CHECK int pl_bpp_segments(const struct pl_bpp *bpp, struct pl_bpp_span *spans, size_t cap,
                                  size_t *n);

/* ---- plaintext inner commands (carried inside the BSP segments) ---- */

/* ConfigureISDPRequest 'BF24' { dpProprietaryData 'B8' { dpOid '80', ... } OPTIONAL }.
 * DpProprietaryData ::= SEQUENCE { dpOid OBJECT IDENTIFIER } has no tagged component, so
 * AUTOMATIC TAGS make dpOid [0] IMPLICIT: '80' with OID contents (not the universal '06').
 * DpProprietaryData is at most 128 bytes including its tag and length. */
#define PL_CONFIGURE_ISDP_DP_MAX 128u
struct pl_configure_isdp {
    bool has_dp;
    const uint8_t *dp_oid;   /* OID contents octets (after '80' L) */
    size_t dp_oid_len;
    const uint8_t *dp_extra; /* further DER TLVs inside 'B8' after dpOid (may be empty) */
    size_t dp_extra_len;
};
PL_MUST_CHECK int pl_configure_isdp_decode(const uint8_t *p, size_t len,
                                           struct pl_configure_isdp *out);
PL_MUST_CHECK int pl_configure_isdp_encode(const struct pl_configure_isdp *in, struct pl_wr *w);

/* StoreMetadataRequest 'BF25': iccid '5A' (10 B), serviceProviderName '91' (UTF8String,
 * 0..32 characters), profileName '92' (0..64 characters), then optional fields kept as
 * raw TLV views (whole TLV; NULL/0 when absent), in ASN.1 order:
 * iconType '93', icon '94' (only with iconType, contents <= 1024 B), profileClass '95',
 * notificationConfigurationInfo 'B6', profileOwner 'B7', profilePolicyRules '99',
 * serviceSpecificDataStoredInEuicc 'BF22', serviceSpecificDataNotStoredInEuicc 'BF23'. */
#define PL_SMR_SPN_MAX 128u  /* bytes: 32 characters of up to 4 UTF-8 bytes */
#define PL_SMR_NAME_MAX 256u /* bytes: 64 characters */
#define PL_SMR_ICON_MAX 1024u
enum pl_smr_opt {
    PL_SMR_ICON_TYPE = 0,
    PL_SMR_ICON,
    PL_SMR_PROFILE_CLASS,
    PL_SMR_NOTIF_CONFIG,
    PL_SMR_PROFILE_OWNER,
    PL_SMR_PPR,
    PL_SMR_SSD_STORED,
    PL_SMR_SSD_NOT_STORED,
    PL_SMR_OPT_COUNT
};
struct pl_smr {
    uint8_t iccid[PL_ICCID_LEN];
    char spn[PL_SMR_SPN_MAX + 1];   /* NUL-terminated copy */
    char name[PL_SMR_NAME_MAX + 1]; /* NUL-terminated copy */
    struct pl_bpp_seg opt[PL_SMR_OPT_COUNT];
};
/* The tag of each optional field. */
uint32_t pl_smr_opt_tag(enum pl_smr_opt o);
PL_MUST_CHECK int pl_smr_decode(const uint8_t *p, size_t len, struct pl_smr *out);
PL_MUST_CHECK int pl_smr_encode(const struct pl_smr *in, struct pl_wr *w);

/* ReplaceSessionKeysRequest 'BF26' { '80' initialMacChainingValue, '81' ppkEnc,
 * '82' ppkCmac }, each 16 bytes. Copies: wipe with pl_memzero when done. */
#define PL_RSK_LEN 16u
struct pl_rsk {
    uint8_t mcv[PL_RSK_LEN];
    uint8_t ppk_enc[PL_RSK_LEN];
    uint8_t ppk_mac[PL_RSK_LEN];
};
PL_MUST_CHECK int pl_rsk_decode(const uint8_t *p, size_t len, struct pl_rsk *out);
PL_MUST_CHECK int pl_rsk_encode(const struct pl_rsk *in, struct pl_wr *w);

#endif
