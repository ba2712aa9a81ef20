/* Station <-> Key Maker messages (protocol/proto/keymaker.proto, nanopb): strict decoding
 * of one ZeroMQ frame and the semantic checks every field needs before use.
 * GSMA SGP.41 v1.0 Esbpp (ESBPP01-03) over provline's transport; reference/IFPP.md §6.3;
 * the wire contract is docs/station-keymaker-protocol.md.
 *
 * A frame is hostile until pl_km_msg_decode() accepted it: nanopb decodes into
 * statically sized fields (keymaker.options), then pl_km_msg_check() enforces the exact
 * sizes (ids 16 bytes, EID 16, otPK 65, ...), value ranges and the presence rules the
 * protocol document gives. Only then may a handler read a field. */
#ifndef PROVLINE_PROTO_KM_MSG_H
#define PROVLINE_PROTO_KM_MSG_H

#include "keymaker.pb.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <stddef.h>
#include <stdint.h>

#define PL_KM_VERSION      2u /* what this code sends */
#define PL_KM_VERSION_MIN  1u /* oldest version still decoded (without the v2 fields) */
#define PL_KM_ID_LEN       16u /* msg_id, package_id, lease_id */
#define PL_KM_EID_LEN      16u
#define PL_KM_TID_MAX      16u /* transactionId 1..16 */
#define PL_KM_OTPK_LEN     65u
#define PL_KM_SIG_LEN      64u
#define PL_KM_ICCID_LEN    10u
#define PL_KM_AUDIT_LEN    32u
#define PL_KM_CHAIN_ID_LEN 16u /* Report.audit_chain_id, AuditCheckpoint.chain_id */
#define PL_KM_STATION_KEY_LEN 32u /* AuditCheckpoint.station_key: CurveZMQ public key */
/* "provline-audit-checkpoint-v2" || station_key || chain_id || seq (8) || head */
#define PL_KM_CHECKPOINT_TBS_LEN                                                                   \
    (28u + PL_KM_STATION_KEY_LEN + PL_KM_CHAIN_ID_LEN + 8u + PL_KM_AUDIT_LEN)
#define PL_KM_ENVELOPE_MAX 49152u         /* Package.envelope (FT_POINTER: checked here) */
#define PL_KM_PREFETCH_MAX 8u             /* LeaseRequest.max_packages */
#define PL_KM_FRAME_MAX    (256u * 1024u) /* largest frame either side accepts (ZMQ_MAXMSGSIZE) */

/* Body tags (Msg.which_body). */
#define PL_KM_HELLO             provline_keymaker_Msg_hello_tag
#define PL_KM_HELLO_ACK         provline_keymaker_Msg_hello_ack_tag
#define PL_KM_OTK_UPLOAD        provline_keymaker_Msg_otk_upload_tag
#define PL_KM_OTK_UPLOAD_RESULT provline_keymaker_Msg_otk_upload_result_tag
#define PL_KM_LEASE_REQUEST     provline_keymaker_Msg_lease_request_tag
#define PL_KM_LEASE             provline_keymaker_Msg_lease_tag
#define PL_KM_ACK               provline_keymaker_Msg_ack_tag
#define PL_KM_ACK_RESULT        provline_keymaker_Msg_ack_result_tag
#define PL_KM_REPORT            provline_keymaker_Msg_report_tag
#define PL_KM_REPORT_ACK        provline_keymaker_Msg_report_ack_tag
#define PL_KM_TOKEN_REQUEST     provline_keymaker_Msg_otk_deletion_token_request_tag
#define PL_KM_TOKEN             provline_keymaker_Msg_otk_deletion_token_tag
#define PL_KM_ERROR             provline_keymaker_Msg_error_tag
#define PL_KM_RECEIPT           provline_keymaker_Msg_otk_deletion_receipt_tag
#define PL_KM_RECEIPT_ACK       provline_keymaker_Msg_otk_deletion_receipt_ack_tag

/* Initialises *m to an empty message (cannot fail). */
void pl_km_msg_init(provline_keymaker_Msg *m);
/* Frees what decoding allocated (Package.envelope) and empties *m. Accepts an
 * initialised or decoded message, any number of times. */
void pl_km_msg_release(provline_keymaker_Msg *m);

/* Decodes exactly one frame of len bytes (borrows buf) into *m and checks it with
 * pl_km_msg_check(). PL_ERR_OVERFLOW for a frame over PL_KM_FRAME_MAX, PL_ERR_MALFORMED
 * for anything nanopb or the checks refuse, PL_ERR_UNSUPPORTED for another version.
 * On success release *m with pl_km_msg_release(); on failure *m is already released. */
PL_MUST_CHECK int pl_km_msg_decode(const uint8_t *buf, size_t len, provline_keymaker_Msg *m);

/* The semantic checks of a message (sizes, ranges, presence; see the protocol doc).
 * Versions PL_KM_VERSION_MIN..PL_KM_VERSION are accepted; a version 1 message must not
 * carry a version 2 field. PL_OK, PL_ERR_MALFORMED or PL_ERR_UNSUPPORTED (version). */
PL_MUST_CHECK int pl_km_msg_check(const provline_keymaker_Msg *m);

/* Checks m (pl_km_msg_check) and appends its encoding to w. */
PL_MUST_CHECK int pl_km_msg_encode(const provline_keymaker_Msg *m, struct pl_wr *w);

/* Names for logs: "hello", "lease_request", ...; "none" / "unknown". */
const char *pl_km_body_name(unsigned which);
const char *pl_km_error_name(int code);  /* "OTK_NOT_FREE", ... */
const char *pl_km_state_name(int state); /* "issued", "installed", ... */

/* ---- audit checkpoints (v2; docs/station-keymaker-protocol.md §5.5, docs/audit-trail.md) ---- */

/* A station's audit chain head as a Report carries it. */
struct pl_km_audit_head {
    uint8_t chain_id[PL_KM_CHAIN_ID_LEN];
    uint64_t seq;
    uint8_t h[PL_KM_AUDIT_LEN];
};
/* Sets Report.audit_head, audit_seq and audit_chain_id from *a (borrowed): the Key Maker is
 * asked to sign the checkpoint. PL_ERR_INVAL for NULL. */
PL_MUST_CHECK int pl_km_report_set_audit(provline_keymaker_Report *r,
                                         const struct pl_km_audit_head *a);
/* The bytes a Key Maker signs to acknowledge checkpoint (seq, h) of the audit chain chain_id
 * of the station whose CurveZMQ public key is station_key:
 * "provline-audit-checkpoint-v2" || station_key (32) || chain_id (16) || seq (8, big-endian)
 * || h (32). */
void pl_km_checkpoint_tbs(const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                          const uint8_t chain_id[PL_KM_CHAIN_ID_LEN], uint64_t seq,
                          const uint8_t h[PL_KM_AUDIT_LEN], uint8_t out[PL_KM_CHECKPOINT_TBS_LEN]);
/* Fills every field of cp from the station key, the head and a signature (copies). */
PL_MUST_CHECK int pl_km_checkpoint_set(provline_keymaker_AuditCheckpoint *cp,
                                       const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                                       const struct pl_km_audit_head *a,
                                       const uint8_t sig[PL_KM_SIG_LEN]);
/* Fills cp (station_key, chain_id, seq, head) and signs it with key (ECDSA r||s).
 * Errors of pl_ecdsa_sign. */
PL_MUST_CHECK int pl_km_checkpoint_sign(const struct pl_eckey *key, const struct pl_rng *rng,
                                        const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                                        const struct pl_km_audit_head *a,
                                        provline_keymaker_AuditCheckpoint *cp);
/* PL_OK if cp's signature verifies with key over pl_km_checkpoint_tbs() of its fields;
 * PL_ERR_MALFORMED for a field of the wrong size, PL_ERR_BAD_SIGNATURE otherwise. */
PL_MUST_CHECK int pl_km_checkpoint_verify(const struct pl_eckey *key,
                                          const provline_keymaker_AuditCheckpoint *cp);

/* Copies n bytes into a nanopb bytes field of capacity cap (its max_size). */
#define PL_KM_SET_BYTES(field, src, n)                                                             \
    pl_km_set_bytes((field).bytes, &(field).size, sizeof((field).bytes), (src), (n))
PL_MUST_CHECK int pl_km_set_bytes(uint8_t *dst, pb_size_t *size, size_t cap, const void *src,
                                  size_t n);
/* Copies a NUL-terminated string into a nanopb char[] field, truncating at cap-1 bytes and
 * replacing bytes outside printable ASCII with '?'. */
void pl_km_set_str(char *dst, size_t cap, const char *src);

#endif
