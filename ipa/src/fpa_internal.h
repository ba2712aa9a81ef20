/* Internal to ipa/: the FPA object, one request's job, and the ES10 helpers shared by the
 * request handlers. Not a public header. Sources: see provline/ipa/fpa.h. */
#ifndef PROVLINE_IPA_FPA_INTERNAL_H
#define PROVLINE_IPA_FPA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/ipa/fpa.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/crypto.h"

#if defined(__GNUC__) || defined(__clang__)
#define PL_FPA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_FPA_PRINTF(a, b)
#endif

struct pl_fpa {
    struct pl_fpa_config cfg;
    struct pl_apdu_ops ops; /* counting wrapper around cfg.apdu */
    bool open;              /* the ES10 path (channel + ISD-R selected) is open */
    unsigned channel;
    /* The last request and its response (transport resends are answered from here). */
    bool have_last;
    uint64_t last_id;
    uint8_t last_hash[PL_SHA256_LEN];
    struct pl_wr last_rsp;
    struct pl_fpa_stats st;
};

/* One request being handled. A handler fills rsp's body on success, or calls pl_fpa_fail()
 * and returns its (negative) result. */
struct pl_fpa_job {
    struct pl_fpa *f;
    const provline_fixture_Msg *req;
    provline_fixture_Msg rsp;
    /* failure (code 0: none) */
    int code;  /* provline_fixture_ErrorCode */
    int stage; /* provline_fixture_Stage */
    uint16_t sw;
    uint32_t segment, segments_total;
    bool has_euicc_eid;
    uint8_t euicc_eid[PL_FX_EID_LEN];
    char detail[PL_FX_DETAIL_MAX + 1];
    /* for the log line */
    bool has_eid;
    uint8_t eid[PL_FX_EID_LEN];
    char note[160];
};

/* Records the failure (first one wins) and returns PL_ERR_REMOTE. */
PL_FPA_PRINTF(4, 5)
int pl_fpa_fail(struct pl_fpa_job *j, int code, int stage, const char *fmt, ...);

/* Opens the ES10 path when it is not open: MANAGE CHANNEL + SELECT ISD-R (or SELECT on the
 * basic channel). Failures are recorded at STAGE_SESSION. */
int pl_fpa_session(struct pl_fpa_job *j);
/* Forgets the ES10 path (after a transport error). */
void pl_fpa_session_drop(struct pl_fpa *f);

/* One ES10 request over the open path; response data appended to out. Maps failures:
 * an error SW -> ERROR_CARD_SW (j->sw), a response over out's cap -> ERROR_CARD_RESPONSE,
 * transport errors -> ERROR_CARD_IO (and the path is dropped). *sw (may be NULL) gets the
 * final status word. */
int pl_fpa_es10(struct pl_fpa_job *j, int stage, const uint8_t *req, size_t len,
                struct pl_wr *out);
/* The same without recording anything: the raw pl_es10_transceive result. */
int pl_fpa_es10_raw(struct pl_fpa *f, const uint8_t *req, size_t len, struct pl_wr *out,
                    uint16_t *sw);
/* Records the failure of a pl_fpa_es10_raw() call as pl_fpa_es10 would. */
int pl_fpa_es10_failed(struct pl_fpa_job *j, int stage, int rc, uint16_t sw, const char *what);

/* ES10c.GetEID (SGP.22 v2.5 §5.7.20) over an open session, with one retry on a fresh
 * session if a session that was already open fails (the eUICC was reset under us).
 * Failures are recorded at STAGE_SESSION / STAGE_GET_EID. */
int pl_fpa_get_eid(struct pl_fpa_job *j, uint8_t eid[PL_FX_EID_LEN]);

/* Request handlers (fpa_es10f.c, fpa_load.c, fpa_notif.c). */
int pl_fpa_do_identify(struct pl_fpa_job *j);
int pl_fpa_do_upload_otks(struct pl_fpa_job *j);
int pl_fpa_do_load(struct pl_fpa_job *j);
int pl_fpa_do_fetch_results(struct pl_fpa_job *j);
int pl_fpa_do_notification_sent(struct pl_fpa_job *j);
int pl_fpa_do_delete_otks(struct pl_fpa_job *j);
int pl_fpa_do_configure_eim(struct pl_fpa_job *j);

#endif
