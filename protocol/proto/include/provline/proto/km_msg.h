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
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#include <stddef.h>
#include <stdint.h>

#define PL_KM_VERSION      1u
#define PL_KM_ID_LEN       16u /* msg_id, package_id, lease_id */
#define PL_KM_EID_LEN      16u
#define PL_KM_TID_MAX      16u /* transactionId 1..16 */
#define PL_KM_OTPK_LEN     65u
#define PL_KM_SIG_LEN      64u
#define PL_KM_ICCID_LEN    10u
#define PL_KM_AUDIT_LEN    32u
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
 * PL_OK, PL_ERR_MALFORMED or PL_ERR_UNSUPPORTED (version). */
PL_MUST_CHECK int pl_km_msg_check(const provline_keymaker_Msg *m);

/* Checks m (pl_km_msg_check) and appends its encoding to w. */
PL_MUST_CHECK int pl_km_msg_encode(const provline_keymaker_Msg *m, struct pl_wr *w);

/* Names for logs: "hello", "lease_request", ...; "none" / "unknown". */
const char *pl_km_body_name(unsigned which);
const char *pl_km_error_name(int code);  /* "OTK_NOT_FREE", ... */
const char *pl_km_state_name(int state); /* "issued", "installed", ... */

/* Copies n bytes into a nanopb bytes field of capacity cap (its max_size). */
#define PL_KM_SET_BYTES(field, src, n)                                                             \
    pl_km_set_bytes((field).bytes, &(field).size, sizeof((field).bytes), (src), (n))
PL_MUST_CHECK int pl_km_set_bytes(uint8_t *dst, pb_size_t *size, size_t cap, const void *src,
                                  size_t n);
/* Copies a NUL-terminated string into a nanopb char[] field, truncating at cap-1 bytes and
 * replacing bytes outside printable ASCII with '?'. */
void pl_km_set_str(char *dst, size_t cap, const char *src);

#endif
