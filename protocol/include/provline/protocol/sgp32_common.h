/* Shared definitions of the SGP.32 codecs: borrowed byte views, list views and their
 * iterator, the caps every decoder enforces, and the associationToken TLV that is part of
 * every eIM and eUICC signature input.
 *
 * GSMA SGP.32 v1.2 §2.11 (eIM configuration, eUICC Packages; ASN.1 module
 * SGP32Definitions, AUTOMATIC TAGS, EXTENSIBILITY IMPLIED) and §2.11.1.1 (signature input
 * "euiccPackageSigned ‖ associationToken", '84 01 00' when none is configured).
 * Tagging decisions and caps: docs/sgp32-codec.md.
 *
 * Conventions for every sgp32_*.h header:
 *  - One struct per ASN.1 type serves both directions: encoders read it, decoders fill it.
 *  - Decoders borrow: every pl_sgp32_buf / pl_sgp32_list in a decoded struct points into
 *    the input buffer, which must outlive the struct. Decoders accept exactly one TLV
 *    spanning the whole buffer (PL_ERR_DER_TRAILING otherwise).
 *  - Encoders append to a pl_wr; on failure the writer holds a sticky error and partial
 *    output. A malformed struct (bad length, unknown arm) fails with PL_ERR_INVAL.
 *  - Decoder errors: PL_ERR_DER_TAG (unexpected tag or unknown CHOICE arm),
 *    PL_ERR_MALFORMED (a mandatory component is missing), PL_ERR_DER_VALUE (a value
 *    outside its type or size constraint, e.g. an EID that is not 16 bytes, a counter out of
 *    range), PL_ERR_OVERFLOW (more list items than the cap), PL_ERR_DER_TRAILING, and
 *    the strict-DER errors of der.h.
 *  - Optional byte fields are absent when p == NULL. Strings are UTF-8, not NUL-terminated. */
#ifndef PROVLINE_PROTOCOL_SGP32_COMMON_H
#define PROVLINE_PROTOCOL_SGP32_COMMON_H

#include "provline/protocol/der.h"
#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PL_SGP32_EID_LEN     16u         /* eidValue Octet16 */
#define PL_SGP32_ICCID_LEN   10u         /* Iccid OCTET STRING (SIZE(10)) */
#define PL_SGP32_TXID_MAX    16u         /* TransactionId OCTET STRING (SIZE(1..16)) */
#define PL_SGP32_EIM_ID_MAX  128u        /* eimId UTF8String (SIZE(1..128)) */
#define PL_SGP32_ADDR_MAX    255u        /* [D] cap on FQDN / address strings */
#define PL_SGP32_AC_MAX      255u        /* activationCode UTF8String (SIZE(0..255)) */
#define PL_SGP32_COUNTER_MAX 0x7FFFFFFFu /* [D] counterValue / seqNumber: 0..2^31-1 */
#define PL_SGP32_SIG_MAX     72u         /* 5F37 contents: r||s (64) or DER ECDSA-Sig-Value */

/* Caps on decoded counts ([D], docs/sgp32-codec.md). Exceeding one is PL_ERR_OVERFLOW. */
#define PL_SGP32_MAX_OPS     16u /* PSMOs or eCOs in one eUICC Package */
#define PL_SGP32_MAX_RESULTS 16u /* EuiccResultData entries in one result */
#define PL_SGP32_MAX_EIMS    8u  /* eIMs in one list (ListEim, AddInitialEim, GetEimConfig) */
#define PL_SGP32_MAX_ACKS    64u /* sequence numbers in EimAcknowledgements */
#define PL_SGP32_MAX_LIST    64u /* items in a borrowed list view (notifications, EPRs) */

/* Longest associationToken TLV: 84 len + 8 content octets. */
#define PL_SGP32_TOKEN_TLV_MAX 10u

/* A borrowed byte string. Absent (for optional fields) when p == NULL. */
struct pl_sgp32_buf {
    const uint8_t *p;
    size_t len;
};

/* A view of a NUL-terminated C string (borrows s; s may be NULL for "absent"). */
static inline struct pl_sgp32_buf pl_sgp32_str(const char *s)
{
    struct pl_sgp32_buf b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

/* A borrowed SEQUENCE OF: the contents octets (the element TLVs back to back) and the
 * number of elements. Decoders have checked every element's tag and DER framing. Encoders
 * copy p/len verbatim (count is ignored there). Absent when p == NULL. */
struct pl_sgp32_list {
    const uint8_t *p;
    size_t len;
    size_t count;
};

/* Walks the elements of a list view. */
struct pl_sgp32_iter {
    struct pl_der d;
};

void pl_sgp32_iter_init(struct pl_sgp32_iter *it, const struct pl_sgp32_list *l);
/* Next element TLV (borrowing the list's buffer); PL_ERR_NOT_FOUND after the last. */
PL_MUST_CHECK int pl_sgp32_iter_next(struct pl_sgp32_iter *it, struct pl_tlv *item);

/* Writes the associationToken TLV of the signature input (SGP.32 §2.11.1.1): '84' len
 * minimal two's-complement INTEGER; token NULL (none configured) gives '84 01 00'. */
PL_MUST_CHECK int pl_sgp32_token_tlv(const int64_t *token, uint8_t out[PL_SGP32_TOKEN_TLV_MAX],
                                     size_t *out_len);

/* True when the two views hold the same bytes (both absent counts as equal). */
bool pl_sgp32_buf_eq(struct pl_sgp32_buf a, struct pl_sgp32_buf b);

#endif
