/* Station <-> fixture (device FPA) messages (protocol/proto/fixture.proto, nanopb): strict
 * decoding of one message and the semantic checks every field needs before use.
 * provline's own "Esfac" (SGP.41 v1.0 leaves DM <-> FPA out of scope): reference/IFPP.md
 * §3 steps 8-12, §6.3, §7 case 22; ARCHITECTURE.md §4, §6. Wire contract, rules and both
 * transports: docs/fixture-protocol.md.
 *
 * A message is hostile until pl_fx_msg_decode() accepted it: nanopb decodes into statically
 * sized fields or bounded allocations (fixture.options), then pl_fx_msg_check() enforces the
 * exact sizes (EID 16 bytes, per-field caps below), the presence rules and the ranges. Only
 * then may a handler read a field. The raw ES10 bytes the messages carry are NOT parsed
 * here: the FPA (ipa/fpa.h) and the station parse them with the protocol/ codecs. */
#ifndef PROVLINE_PROTO_FX_MSG_H
#define PROVLINE_PROTO_FX_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fixture.pb.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_FX_VERSION 1u
#define PL_FX_EID_LEN 16u
/* Per-field caps (bytes). The package forms are limited by nanopb's 16-bit pb_size_t; the
 * Key Maker issues envelopes of at most 49152 bytes (PL_KM_ENVELOPE_MAX). */
#define PL_FX_PACKAGE_MAX 65535u      /* LoadPackage envelope, and bpp */
#define PL_FX_HEADER_MAX 41216u       /* LoadPackage header 'FF71' (= PL_ES10F_LOAD_REQ_MAX) */
#define PL_FX_IFPP_INFO_MAX 26880u    /* 'FF73' (= PL_ES10F_GET_INFO_RSP_MAX) */
#define PL_FX_PIR_MAX 4096u           /* 'BF37' (= PL_ES10F_PIR_MAX) */
#define PL_FX_RESULTS_MAX 65535u      /* 'BF2B' RetrieveNotificationsList response */
#define PL_FX_DOTK_REQ_MAX 41472u     /* 'FF74' (= PL_ES10F_DELETE_OTKS_REQ_MAX) */
#define PL_FX_DOTK_RSP_MAX 1024u      /* 'FF75' (>= PL_ES10F_DELETE_OTKS_RSP_MAX) */
#define PL_FX_EIM_REQ_MAX 16384u      /* 'BF57' request */
#define PL_FX_EIM_RSP_MAX 1024u       /* 'BF57' response */
#define PL_FX_DETAIL_MAX 127u         /* Error.detail characters */
/* Largest encoded message either side sends or accepts (a LoadPackage in form (b) at its
 * caps, plus framing). Transports size their buffers from this. */
#define PL_FX_MSG_MAX (192u * 1024u)

/* Body tags (Msg.which_body). */
#define PL_FX_IDENTIFY provline_fixture_Msg_identify_tag
#define PL_FX_IDENTIFY_RSP provline_fixture_Msg_identify_rsp_tag
#define PL_FX_UPLOAD_OTKS provline_fixture_Msg_upload_otks_tag
#define PL_FX_UPLOAD_OTKS_RSP provline_fixture_Msg_upload_otks_rsp_tag
#define PL_FX_LOAD_PACKAGE provline_fixture_Msg_load_package_tag
#define PL_FX_LOAD_PACKAGE_RSP provline_fixture_Msg_load_package_rsp_tag
#define PL_FX_FETCH_RESULTS provline_fixture_Msg_fetch_results_tag
#define PL_FX_FETCH_RESULTS_RSP provline_fixture_Msg_fetch_results_rsp_tag
#define PL_FX_NOTIFICATION_SENT provline_fixture_Msg_notification_sent_tag
#define PL_FX_NOTIFICATION_SENT_RSP provline_fixture_Msg_notification_sent_rsp_tag
#define PL_FX_DELETE_OTKS provline_fixture_Msg_delete_otks_tag
#define PL_FX_DELETE_OTKS_RSP provline_fixture_Msg_delete_otks_rsp_tag
#define PL_FX_CONFIGURE_EIM provline_fixture_Msg_configure_initial_eim_tag
#define PL_FX_CONFIGURE_EIM_RSP provline_fixture_Msg_configure_initial_eim_rsp_tag
#define PL_FX_ERROR provline_fixture_Msg_error_tag

/* Initialises *m to an empty message (cannot fail). */
void pl_fx_msg_init(provline_fixture_Msg *m);
/* Frees what decoding or pl_fx_set_blob allocated and empties *m. Accepts an initialised or
 * decoded message, any number of times; NULL is fine. */
void pl_fx_msg_release(provline_fixture_Msg *m);

/* Decodes exactly one message of len bytes (borrows buf) into *m and checks it with
 * pl_fx_msg_check(). PL_ERR_OVERFLOW for more than PL_FX_MSG_MAX bytes, PL_ERR_MALFORMED
 * for anything nanopb or the checks refuse, PL_ERR_UNSUPPORTED for another version.
 * On success release *m with pl_fx_msg_release(); on failure *m is already released. */
PL_MUST_CHECK int pl_fx_msg_decode(const uint8_t *buf, size_t len, provline_fixture_Msg *m);

/* The semantic checks (docs/fixture-protocol.md §3): version, request_id non-zero (except
 * in an Error), exact sizes and caps, presence rules (LoadPackage: exactly one form).
 * PL_OK, PL_ERR_MALFORMED or PL_ERR_UNSUPPORTED (version). */
PL_MUST_CHECK int pl_fx_msg_check(const provline_fixture_Msg *m);

/* Checks m and appends its encoding to w (errors sticky in w). */
PL_MUST_CHECK int pl_fx_msg_encode(const provline_fixture_Msg *m, struct pl_wr *w);

/* Reads only the top-level request_id and body tag of an encoded message, without
 * allocating or checking the rest (a transport matching responses to requests, or an FPA
 * answering an undecodable request). Absent fields give 0. PL_ERR_MALFORMED when the
 * top-level wire format is broken, PL_ERR_OVERFLOW over PL_FX_MSG_MAX. */
PL_MUST_CHECK int pl_fx_msg_peek(const uint8_t *buf, size_t len, uint64_t *request_id,
                                 unsigned *which);

/* True for the bodies the station sends (identify, load_package, ...). */
bool pl_fx_is_request(unsigned which);
/* The response body that answers a request body (0 if which is not a request). An Error
 * answers every request. */
unsigned pl_fx_response_for(unsigned which);

/* Sets a FT_POINTER bytes field to a fresh copy of n bytes (n == 0 clears it). Frees the
 * previous value. PL_ERR_OVERFLOW for n > 65535, PL_ERR_NOMEM. pl_fx_msg_release frees. */
PL_MUST_CHECK int pl_fx_set_blob(pb_bytes_array_t **field, const void *src, size_t n);
/* Copies n bytes into a static bytes field of capacity cap (its max_size). */
#define PL_FX_SET_BYTES(field, src, n)                                                      \
    pl_fx_set_bytes((field).bytes, &(field).size, sizeof((field).bytes), (src), (n))
PL_MUST_CHECK int pl_fx_set_bytes(uint8_t *dst, pb_size_t *size, size_t cap, const void *src,
                                  size_t n);
/* Copies a NUL-terminated string into Error.detail-like char[] fields, truncating at cap-1
 * bytes and replacing bytes outside printable ASCII with '?'. */
void pl_fx_set_str(char *dst, size_t cap, const char *src);
/* Bytes of a FT_POINTER field (NULL/0 when absent). */
const uint8_t *pl_fx_blob(const pb_bytes_array_t *field, size_t *len);

/* Names for logs: "identify", "load_package_rsp", ...; "none" / "unknown". */
const char *pl_fx_body_name(unsigned which);
const char *pl_fx_error_name(int code);  /* "EID_MISMATCH", ...; never NULL */
const char *pl_fx_stage_name(int stage); /* "segment", ...; never NULL */

#endif
