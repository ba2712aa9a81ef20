/* Strict DER TLV layer (ITU-T X.690 §8, §10) over the bounds-checked reader.
 *
 * Tags are held as the raw identifier octets, big-endian, in a uint32_t:
 * 0x30 SEQUENCE, 0x80 [0] primitive, 0xA0 [0] constructed, 0x5A, 0xBF36 [54]
 * constructed context, 0x5F37 [APPLICATION 55] primitive, 0x9F70 ...
 * At most 3 identifier octets (tag numbers up to 16383).
 *
 * Rejected, each with its own error: indefinite length (PL_ERR_DER_INDEFINITE),
 * non-minimal length or tag (PL_ERR_DER_NONMINIMAL), a length beyond the enclosing
 * buffer (PL_ERR_DER_LENGTH), bytes after the value (PL_ERR_DER_TRAILING), nesting
 * beyond the depth limit (PL_ERR_DER_DEPTH), a length over the size cap
 * (PL_ERR_DER_TOOBIG). */
#ifndef PROVLINE_PROTOCOL_DER_H
#define PROVLINE_PROTOCOL_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/protocol/rd.h"
#include "provline/protocol/wr.h"

#define PL_DER_MAX_DEPTH 24u
#define PL_DER_MAX_LEN (4u * 1024u * 1024u)

/* One decoded TLV. All pointers borrow the input buffer. */
struct pl_tlv {
    uint32_t tag;
    bool constructed;
    const uint8_t *value; /* contents octets */
    size_t len;
    const uint8_t *raw;   /* the whole TLV: identifier, length and contents */
    size_t raw_len;       /* use raw/raw_len to verify signatures over received bytes */
};

/* A DER reader: a bounds-checked reader plus the nesting depth it sits at. */
struct pl_der {
    struct pl_rd rd;
    unsigned depth;
    unsigned max_depth;
    size_t max_len;
};

void pl_der_init(struct pl_der *d, const uint8_t *p, size_t len);
/* Same, with explicit limits (depth >= 1, max_len >= 1). */
void pl_der_init_limits(struct pl_der *d, const uint8_t *p, size_t len, unsigned max_depth,
                        size_t max_len);
bool pl_der_done(const struct pl_der *d);
/* Reads the next TLV header and skips its contents. */
PL_MUST_CHECK int pl_der_next(struct pl_der *d, struct pl_tlv *tlv);
/* Reads the next TLV, which must carry tag (else PL_ERR_DER_TAG, cursor unchanged). */
PL_MUST_CHECK int pl_der_expect(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv);
/* If the next TLV carries tag, reads it and sets *present; otherwise leaves the cursor. */
PL_MUST_CHECK int pl_der_optional(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv,
                                  bool *present);
/* Tag of the next TLV without advancing (PL_ERR_TRUNCATED at the end). */
PL_MUST_CHECK int pl_der_peek_tag(const struct pl_der *d, uint32_t *tag);
/* A child reader over a constructed TLV's contents, one level deeper; it cannot read
 * past the TLV. PL_ERR_DER_TAG if tlv is primitive, PL_ERR_DER_DEPTH past the limit. */
PL_MUST_CHECK int pl_der_enter(const struct pl_der *parent, const struct pl_tlv *tlv,
                               struct pl_der *child);
/* PL_OK if the reader is exhausted, PL_ERR_DER_TRAILING otherwise. */
PL_MUST_CHECK int pl_der_finish(const struct pl_der *d);
/* Exactly one TLV with tag (0 = any) spanning all of [p, p+len), no trailing bytes. */
PL_MUST_CHECK int pl_der_parse_one(const uint8_t *p, size_t len, uint32_t tag, struct pl_tlv *tlv);
/* The same, then enters it: *t is the TLV, *in reads its contents (default limits).
 * PL_ERR_INVAL for NULL p with len > 0. */
PL_MUST_CHECK int pl_der_open_one(const uint8_t *p, size_t len, uint32_t tag, struct pl_tlv *t,
                                  struct pl_der *in);
/* Walks every constructed value recursively: the whole buffer must be one strictly
 * valid DER TLV (structure only; contents of primitives are not interpreted). */
PL_MUST_CHECK int pl_der_validate(const uint8_t *p, size_t len, unsigned max_depth);

/* Reads only a TLV header (identifier and length octets) from r, with the same strict
 * rules as pl_der_next, without requiring the contents to be present: for streamed
 * segments whose contents arrive in later commands (SGP.22 ES10b LoadBoundProfilePackage
 * sends 'BF36'/'A1'/'A3' headers alone). On error r does not move. */
/* One identifier (X.690 §8.1.2) as the DER layer reads it: DER-minimal, at most 3 octets,
 * never 0 (end-of-contents). For tag lists (SGP.22/SGP.32 tagList: identifiers back to
 * back). PL_ERR_TRUNCATED, PL_ERR_DER_TAG, PL_ERR_DER_NONMINIMAL. */
PL_MUST_CHECK int pl_der_read_tag(struct pl_rd *r, uint32_t *tag);
PL_MUST_CHECK int pl_der_read_header(struct pl_rd *r, size_t max_len, uint32_t *tag, size_t *len);
/* True if s[0..n) is well-formed UTF-8 (RFC 3629: no overlongs, surrogates or NUL). */
bool pl_der_utf8_valid(const uint8_t *s, size_t n);

/* Tag helpers. */
bool pl_der_tag_constructed(uint32_t tag);
/* Number of identifier octets the tag uses (1..3), 0 if not a valid encoding. */
unsigned pl_der_tag_size(uint32_t tag);

/* Primitive content decoders (strict X.690 §8/§10/§11). */
/* INTEGER: minimal two's complement, fits int64. */
PL_MUST_CHECK int pl_der_get_int(const struct pl_tlv *tlv, int64_t *out);
/* INTEGER that must be >= 0 and fit uint64. */
PL_MUST_CHECK int pl_der_get_uint(const struct pl_tlv *tlv, uint64_t *out);
/* BOOLEAN: exactly one octet, 0x00 or 0xFF (DER). */
PL_MUST_CHECK int pl_der_get_bool(const struct pl_tlv *tlv, bool *out);
/* NULL: empty contents. */
PL_MUST_CHECK int pl_der_get_null(const struct pl_tlv *tlv);
/* OCTET STRING with length in [min, max]; borrows. */
PL_MUST_CHECK int pl_der_get_octets(const struct pl_tlv *tlv, size_t min, size_t max,
                                    const uint8_t **out, size_t *len);
/* OCTET STRING of exactly n bytes copied to out. */
PL_MUST_CHECK int pl_der_get_fixed(const struct pl_tlv *tlv, void *out, size_t n);
/* UTF8String: valid UTF-8 (no overlong forms, surrogates or NUL), at most max bytes;
 * copies into out (cap bytes incl. the terminating NUL). */
PL_MUST_CHECK int pl_der_get_utf8(const struct pl_tlv *tlv, char *out, size_t cap);
/* OBJECT IDENTIFIER contents: structurally valid (minimal base-128 arcs). */
PL_MUST_CHECK int pl_der_check_oid(const struct pl_tlv *tlv);
/* BIT STRING: unused-bits octet 0..7, zero padding bits (DER); borrows the bits. */
PL_MUST_CHECK int pl_der_get_bits(const struct pl_tlv *tlv, const uint8_t **bits, size_t *nbytes,
                                  unsigned *unused);

/* Encoders. All append to w; errors are sticky in w (check pl_wr_status). */
int pl_der_put_tlv(struct pl_wr *w, uint32_t tag, const void *value, size_t len);
int pl_der_put_header(struct pl_wr *w, uint32_t tag, size_t len);
int pl_der_put_int(struct pl_wr *w, uint32_t tag, int64_t v);
int pl_der_put_uint(struct pl_wr *w, uint32_t tag, uint64_t v);
int pl_der_put_bool(struct pl_wr *w, uint32_t tag, bool v);
int pl_der_put_null(struct pl_wr *w, uint32_t tag);
int pl_der_put_utf8(struct pl_wr *w, uint32_t tag, const char *s);
/* Constructed values of unknown length: begin returns a mark, end back-patches the
 * minimal length. Nest freely; end in reverse order. */
size_t pl_der_begin(struct pl_wr *w, uint32_t tag);
int pl_der_end(struct pl_wr *w, size_t mark);

/* Common tags. */
#define PL_TAG_BOOLEAN 0x01u
#define PL_TAG_INTEGER 0x02u
#define PL_TAG_BIT_STRING 0x03u
#define PL_TAG_OCTET_STRING 0x04u
#define PL_TAG_NULL 0x05u
#define PL_TAG_OID 0x06u
#define PL_TAG_UTF8 0x0Cu
#define PL_TAG_SEQUENCE 0x30u
#define PL_TAG_SET 0x31u

#endif
