/* Internal helpers shared by the SGP.32 codecs (never included outside protocol/src).
 * GSMA SGP.32 v1.2 §2.11, §6.3; decoding rules in docs/sgp32-codec.md. */
#ifndef PROVLINE_PROTOCOL_SGP32_INTERNAL_H
#define PROVLINE_PROTOCOL_SGP32_INTERNAL_H

#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/sgp32_common.h"
#include "provline/protocol/wr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tags used by several codecs. */
#define PL_SGP32_TAG_EID      0x5Au   /* [APPLICATION 26] */
#define PL_SGP32_TAG_SIG      0x5F37u /* [APPLICATION 55] */
#define PL_SGP32_TAG_TAGLIST  0x5Cu   /* [APPLICATION 28] */
#define PL_SGP32_TAG_EPR      0xBF51u /* [81] EuiccPackageRequest / EuiccPackageResult */
#define PL_SGP32_TAG_IPA_DATA 0xBF52u /* [82] IpaEuiccDataRequest / IpaEuiccDataResponse */
#define PL_SGP32_TAG_ACKS     0xBF53u /* [83] EimAcknowledgements */
#define PL_SGP32_TAG_PDT      0xBF54u /* [84] ProfileDownloadTriggerRequest / Result */
#define PL_SGP32_TAG_PIR      0xBF37u /* [55] ProfileInstallationResult */

/* ---- decoding ---- */

/* Next TLV must carry tag: PL_ERR_MALFORMED at the end of the container (a missing
 * mandatory component), PL_ERR_DER_TAG on another tag. */
PL_MUST_CHECK int pl_sgp32i_expect(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv);
/* Next TLV, whatever its tag (PL_ERR_MALFORMED at the end of the container). */
PL_MUST_CHECK int pl_sgp32i_next(struct pl_der *d, struct pl_tlv *tlv);
/* Optional component: reads it when the next tag matches. */
PL_MUST_CHECK int pl_sgp32i_optional(struct pl_der *d, uint32_t tag, struct pl_tlv *tlv,
                                     bool *present);
/* Child reader over a constructed TLV (PL_ERR_DER_TAG when primitive). */
PL_MUST_CHECK int pl_sgp32i_enter(const struct pl_der *parent, const struct pl_tlv *tlv,
                                  struct pl_der *child);
/* End of a SEQUENCE (EXTENSIBILITY IMPLIED): remaining elements are skipped as extension
 * additions only when they carry a context tag whose number no root component in known
 * uses; anything else (universal/application class, a duplicate, a component out of order,
 * '80' where 'A0' belongs) is PL_ERR_DER_TAG. Skipped elements must be strict DER. */
PL_MUST_CHECK int pl_sgp32i_seq_end(struct pl_der *d, const uint32_t *known, size_t n_known);
/* The CHOICE that must fill a constructed explicit tag: exactly one TLV, nothing after. */
PL_MUST_CHECK int pl_sgp32i_explicit_inner(const struct pl_der *parent, const struct pl_tlv *outer,
                                           struct pl_tlv *inner);

PL_MUST_CHECK int pl_sgp32i_get_utf8(const struct pl_tlv *t, size_t min, size_t max,
                                     struct pl_sgp32_buf *out);
PL_MUST_CHECK int pl_sgp32i_get_octets(const struct pl_tlv *t, size_t min, size_t max,
                                       struct pl_sgp32_buf *out);
PL_MUST_CHECK int pl_sgp32i_get_fixed(const struct pl_tlv *t, uint8_t *out, size_t n);
/* INTEGER in 0..PL_SGP32_COUNTER_MAX (counterValue, seqNumber). */
PL_MUST_CHECK int pl_sgp32i_get_u31(const struct pl_tlv *t, uint32_t *out);
/* INTEGER fitting int64 (result codes, associationToken). */
PL_MUST_CHECK int pl_sgp32i_get_int(const struct pl_tlv *t, int64_t *out);
PL_MUST_CHECK int pl_sgp32i_get_null(const struct pl_tlv *t);
/* BIT STRING as a mask: named bit n -> (1u << n). Bits past 31 must be zero. Trailing zero
 * bits are tolerated (docs/sgp32-codec.md); padding bits must be zero (DER). */
PL_MUST_CHECK int pl_sgp32i_get_bits(const struct pl_tlv *t, uint32_t *mask);
/* OBJECT IDENTIFIER contents (validated) as a view. */
PL_MUST_CHECK int pl_sgp32i_get_oid(const struct pl_tlv *t, struct pl_sgp32_buf *out);
/* SEQUENCE OF contents as a list view: every element must be one of tags[0..n_tags) (any tag
 * when n_tags == 0) and constructed elements must be DER-valid; at most cap elements. */
PL_MUST_CHECK int pl_sgp32i_get_list(const struct pl_der *parent, const struct pl_tlv *t,
                                     const uint32_t *tags, size_t n_tags, size_t cap,
                                     struct pl_sgp32_list *out);
/* Checks the contents octets of an X.509 SEQUENCE: SubjectPublicKeyInfo (AlgorithmIdentifier,
 * BIT STRING) or Certificate (tbsCertificate, AlgorithmIdentifier, BIT STRING), RFC 5280. */
PL_MUST_CHECK int pl_sgp32i_check_x509_body(const uint8_t *p, size_t len, bool cert);
/* An X.509 SEQUENCE implicitly re-tagged as t (e.g. A5 eumCertificate): body = its contents.
 * Also accepts t holding one complete '30' TLV (explicit reading; docs/sgp32-codec.md). */
PL_MUST_CHECK int pl_sgp32i_x509_body(const struct pl_der *parent, const struct pl_tlv *t,
                                      bool cert, struct pl_sgp32_buf *body);
/* A whole TLV as a view (raw bytes). */
struct pl_sgp32_buf pl_sgp32i_raw(const struct pl_tlv *t);
struct pl_sgp32_buf pl_sgp32i_value(const struct pl_tlv *t);

/* ---- encoding (errors are sticky in w) ---- */

void pl_sgp32i_put_utf8(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf s, size_t min,
                        size_t max);
void pl_sgp32i_put_octets(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf s, size_t min,
                          size_t max);
/* BIT STRING from a mask, DER named-bit form (trailing zero bits removed, X.690 §11.2.2). */
void pl_sgp32i_put_bits(struct pl_wr *w, uint32_t tag, uint32_t mask);
void pl_sgp32i_put_u31(struct pl_wr *w, uint32_t tag, uint32_t v);
/* Copies bytes that must be exactly one DER TLV carrying tag (0: any tag). */
void pl_sgp32i_put_raw(struct pl_wr *w, uint32_t tag, struct pl_sgp32_buf raw);
/* Copies a list's contents under tag. */
void pl_sgp32i_put_list(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_list *l);
void pl_sgp32i_fail(struct pl_wr *w);
/* Closes a constructed value opened with pl_der_begin (sticky error in w). */
void pl_sgp32i_end(struct pl_wr *w, size_t mark);

/* ---- nested types shared between codecs ---- */

struct pl_sgp32_eim_config;
struct pl_sgp32_eim_id_info;
/* EimConfigurationData carried under tag (30, or A8/AA inside an eCO). */
PL_MUST_CHECK int pl_sgp32i_eim_config_parse(const struct pl_der *parent, const struct pl_tlv *t,
                                             struct pl_sgp32_eim_config *cfg);
void pl_sgp32i_eim_config_put(struct pl_wr *w, uint32_t tag, const struct pl_sgp32_eim_config *cfg);
PL_MUST_CHECK int pl_sgp32i_eim_id_info_parse(const struct pl_der *parent, const struct pl_tlv *t,
                                              struct pl_sgp32_eim_id_info *info);
void pl_sgp32i_eim_id_info_put(struct pl_wr *w, const struct pl_sgp32_eim_id_info *info);

/* ---- signatures ---- */

/* ECDSA-SHA256 over signed ‖ associationToken TLV; writes r||s. */
PL_MUST_CHECK int pl_sgp32i_sign(const struct pl_eckey *key, const struct pl_rng *rng,
                                 const uint8_t *signed_der, size_t signed_len, const int64_t *token,
                                 uint8_t sig[PL_ECDSA_SIG_LEN]);
/* Verifies sig (r||s, or a DER ECDSA-Sig-Value) over signed ‖ associationToken TLV. */
PL_MUST_CHECK int pl_sgp32i_verify(const struct pl_eckey *key, struct pl_sgp32_buf signed_raw,
                                   const int64_t *token, struct pl_sgp32_buf sig);

#endif
