/* The FPA (Factory Profile Assistant): the device agent in factory mode. It serves the
 * station's fixture messages (protocol/proto/fixture.proto, fx_msg.h) and carries each one
 * to the eUICC as ES10 commands over the APDU seam, returning the eUICC's raw answers.
 *
 * Sources: GSMA SGP.41 v1.0 FPA role (forwards the BPP and SM-DPf data to the eUICC via
 * ES10f, returns the Profile Installation Result; reference/IFPP.md §1, §3 steps 8-12);
 * IFPP.md §5.7 (ES10 over STORE DATA on a logical channel to the ISD-R, the
 * LoadBoundProfilePackage segment order, as lpac does it), §6.2 (provline's ES10f), §6.3 and
 * §7 case 22 (the EID check before loading); SGP.22 v2.5 §5.7.20 GetEID, §5.7.10-11
 * notifications; SGP.32 v1.2 §5.9.4 AddInitialEim. Wire contract: docs/fixture-protocol.md.
 *
 * What the FPA guarantees (docs/fixture-protocol.md §4):
 *  - a request is decoded and checked in full, and a package (envelope, header, BPP and its
 *    segmentation) is parsed in full, before any APDU is sent;
 *  - the eUICC's EID is read (GetEID) and compared with the package's EID before any byte of
 *    the package is sent: a mis-seated device never costs a one-time key;
 *  - segments go in SGP.22 order and stop at the first response that carries data (the PIR)
 *    or the first error status word;
 *  - a request repeated with the same request_id and the same bytes (a transport resend) gets
 *    the stored response again without touching the eUICC; the same request_id with other
 *    bytes gets ERROR_REQUEST_ID_REUSED;
 *  - every answer from the eUICC is checked with the protocol/ decoders before it is
 *    forwarded (raw, never re-encoded: the station verifies the eUICC's signatures).
 *
 * Not thread-safe: one thread per struct pl_fpa. No I/O of its own besides the APDU seam; no
 * printing: an optional log callback gets one line per request. */
#ifndef PROVLINE_IPA_FPA_H
#define PROVLINE_IPA_FPA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/apdu.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

enum pl_fpa_log_level {
    PL_FPA_LOG_ERROR = 0,
    PL_FPA_LOG_WARN = 1,
    PL_FPA_LOG_INFO = 2,
};

struct pl_fpa_config {
    /* The eUICC (copied; apdu.user is borrowed and must outlive the FPA). */
    struct pl_apdu_ops apdu;
    /* false (default): open a logical channel (MANAGE CHANNEL) and SELECT the ISD-R on it,
     * as lpac does; true: SELECT the ISD-R on the basic channel 0. */
    bool basic_channel;
    /* STORE DATA block size, 1..255; 0 = PL_ES10_MSS_DEFAULT (120, lpac's es10x_mss). */
    size_t mss;
    /* One line per handled request, without newline, key=value pairs (may be NULL). */
    void (*log)(void *user, enum pl_fpa_log_level level, const char *line);
    void *log_user;
};
/* Defaults as documented above; apdu empty. Cannot fail. */
void pl_fpa_config_init(struct pl_fpa_config *c);

struct pl_fpa;

/* Returns owned *out (pl_fpa_free). PL_ERR_INVAL without apdu.transmit or with mss > 255;
 * PL_ERR_NOMEM. Sends nothing: the ES10 path is opened by the first request needing it. */
PL_MUST_CHECK int pl_fpa_new(const struct pl_fpa_config *cfg, struct pl_fpa **out);
/* Accepts NULL. Does not close the logical channel (the eUICC may be gone). */
void pl_fpa_free(struct pl_fpa *f);

/* Handles one fixture request message (req borrowed, len bytes) and appends exactly one
 * response message to rsp: the matching response, or an Error (fixture.proto) for anything
 * that could not be carried out, including requests that fail to decode. rsp should allow
 * PL_FX_MSG_MAX bytes. Returns PL_OK when a response was appended; a negative error only
 * when not even an Error could be encoded (rsp failed). */
PL_MUST_CHECK int pl_fpa_handle(struct pl_fpa *f, const uint8_t *req, size_t len,
                                struct pl_wr *rsp);

/* The eUICC was reset or replaced: forget the ES10 session (the channel is opened again on
 * the next request) and the stored last response. */
void pl_fpa_reset(struct pl_fpa *f);

struct pl_fpa_stats {
    uint64_t requests;    /* messages handled */
    uint64_t replayed;    /* answered from the stored last response */
    uint64_t errors;      /* answered with an Error */
    uint64_t apdus;       /* C-APDUs sent to the eUICC */
    uint64_t sessions;    /* times the ES10 path was opened */
};
void pl_fpa_get_stats(const struct pl_fpa *f, struct pl_fpa_stats *st);

#endif
