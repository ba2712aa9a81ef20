/* The FPA core: request decoding, the resend cache, dispatch, response/Error encoding, the
 * per-request log line, and the ES10 path to the ISD-R.
 * Sources: reference/IFPP.md §5.7 (ES10 over STORE DATA on a logical channel to the ISD-R,
 * as lpac does it: MANAGE CHANNEL, SELECT by AID, STORE DATA, GET RESPONSE), §6.3;
 * ISO/IEC 7816-4 §7.1.1-§7.1.2; docs/fixture-protocol.md §4 (FPA rules). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpa_internal.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/pir.h"

/* ---------------------------------------------------------------- object ---- */

void pl_fpa_config_init(struct pl_fpa_config *c)
{
    memset(c, 0, sizeof(*c));
}

static int count_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                          size_t rcap, size_t *rlen)
{
    struct pl_fpa *f = user;
    f->st.apdus++;
    return f->cfg.apdu.transmit(f->cfg.apdu.user, capdu, clen, rapdu, rcap, rlen);
}

int pl_fpa_new(const struct pl_fpa_config *cfg, struct pl_fpa **out)
{
    if (cfg == NULL || out == NULL || cfg->apdu.transmit == NULL || cfg->mss > PL_ES10_MSS_MAX)
        return PL_ERR_INVAL;
    *out = NULL;
    struct pl_fpa *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return PL_ERR_NOMEM;
    f->cfg = *cfg;
    if (f->cfg.mss == 0)
        f->cfg.mss = PL_ES10_MSS_DEFAULT;
    f->ops.transmit = count_transmit;
    f->ops.user = f;
    pl_wr_init_dyn(&f->last_rsp, PL_FX_MSG_MAX);
    *out = f;
    return PL_OK;
}

void pl_fpa_free(struct pl_fpa *f)
{
    if (f == NULL)
        return;
    pl_wr_free(&f->last_rsp);
    free(f);
}

void pl_fpa_reset(struct pl_fpa *f)
{
    if (f == NULL)
        return;
    pl_fpa_session_drop(f);
    f->have_last = false;
    f->last_id = 0;
    pl_wr_reset(&f->last_rsp);
}

void pl_fpa_get_stats(const struct pl_fpa *f, struct pl_fpa_stats *st)
{
    if (f != NULL && st != NULL)
        *st = f->st;
}

/* ---------------------------------------------------------------- failures ---- */

int pl_fpa_fail(struct pl_fpa_job *j, int code, int stage, const char *fmt, ...)
{
    if (j->code == 0) {
        va_list ap;
        char buf[256];
        j->code = code;
        j->stage = stage;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        pl_fx_set_str(j->detail, sizeof(j->detail), buf);
    }
    return PL_ERR_REMOTE;
}

/* ---------------------------------------------------------------- ES10 path ---- */

void pl_fpa_session_drop(struct pl_fpa *f)
{
    f->open = false;
    f->channel = 0;
}

int pl_fpa_session(struct pl_fpa_job *j)
{
    struct pl_fpa *f = j->f;
    unsigned ch = 0;
    uint16_t sw = 0;
    int rc;

    if (f->open)
        return PL_OK;
    if (!f->cfg.basic_channel) {
        rc = pl_apdu_open_channel(&f->ops, &ch, &sw);
        if (rc != PL_OK) {
            j->sw = sw;
            if (rc == PL_ERR_CARD_SW)
                return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_SW,
                                   provline_fixture_Stage_STAGE_SESSION,
                                   "MANAGE CHANNEL refused, SW %04X", (unsigned)sw);
            return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_IO,
                               provline_fixture_Stage_STAGE_SESSION, "MANAGE CHANNEL: %s",
                               pl_strerror(rc));
        }
    }
    rc = pl_apdu_select_aid(&f->ops, ch, pl_apdu_isdr_aid, PL_ISDR_AID_LEN, NULL, &sw);
    if (rc != PL_OK) {
        j->sw = sw;
        if (!f->cfg.basic_channel && rc == PL_ERR_CARD_SW) {
            /* Give the channel back; its result does not change the answer. */
            uint16_t csw;
            int crc = pl_apdu_close_channel(&f->ops, ch, &csw);
            (void)crc;
        }
        if (rc == PL_ERR_CARD_SW)
            return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_SW,
                               provline_fixture_Stage_STAGE_SESSION,
                               "SELECT ISD-R refused, SW %04X", (unsigned)sw);
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_IO,
                           provline_fixture_Stage_STAGE_SESSION, "SELECT ISD-R: %s",
                           pl_strerror(rc));
    }
    f->open = true;
    f->channel = ch;
    f->st.sessions++;
    return PL_OK;
}

int pl_fpa_es10_raw(struct pl_fpa *f, const uint8_t *req, size_t len, struct pl_wr *out,
                    uint16_t *sw)
{
    uint16_t s = 0;
    int rc = pl_es10_transceive(&f->ops, f->channel, req, len, f->cfg.mss, out, &s);
    if (sw != NULL)
        *sw = s;
    return rc;
}

int pl_fpa_es10_failed(struct pl_fpa_job *j, int stage, int rc, uint16_t sw, const char *what)
{
    j->sw = sw;
    if (rc == PL_ERR_CARD_SW)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_SW, stage,
                           "%s: eUICC answered SW %04X", what, (unsigned)sw);
    if (rc == PL_ERR_OVERFLOW)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE, stage,
                           "%s: response over its cap", what);
    /* The APDU path is in an unknown state: open it again next time. */
    pl_fpa_session_drop(j->f);
    return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_IO, stage, "%s: %s", what,
                       pl_strerror(rc));
}

int pl_fpa_es10(struct pl_fpa_job *j, int stage, const uint8_t *req, size_t len,
                struct pl_wr *out)
{
    uint16_t sw = 0;
    int rc = pl_fpa_es10_raw(j->f, req, len, out, &sw);
    j->sw = sw;
    if (rc == PL_OK)
        return PL_OK;
    return pl_fpa_es10_failed(j, stage, rc, sw, "ES10");
}

/* ---------------------------------------------------------------- responses ---- */

static void set_error(struct pl_fpa_job *j, provline_fixture_Msg *m)
{
    pl_fx_msg_release(m);
    m->version = PL_FX_VERSION;
    m->request_id = j->req != NULL ? j->req->request_id : 0u;
    m->which_body = PL_FX_ERROR;
    provline_fixture_Error *e = &m->body.error;
    e->code = (provline_fixture_ErrorCode)j->code;
    e->stage = (provline_fixture_Stage)j->stage;
    e->card_sw = j->sw;
    e->segments_total = j->segments_total;
    e->segment = j->segment;
    if (e->stage == provline_fixture_Stage_STAGE_SEGMENT && e->segment > e->segments_total)
        e->segments_total = e->segment;
    memcpy(e->detail, j->detail, sizeof(e->detail));
    if (j->has_euicc_eid && PL_FX_SET_BYTES(e->euicc_eid, j->euicc_eid, PL_FX_EID_LEN) != PL_OK)
        e->euicc_eid.size = 0;
}

/* Encodes the job's outcome into w (empty on entry). */
static int encode_outcome(struct pl_fpa_job *j, uint64_t request_id, struct pl_wr *w)
{
    int rc;
    if (j->code == 0) {
        j->rsp.version = PL_FX_VERSION;
        j->rsp.request_id = request_id;
        if ((rc = pl_fx_msg_encode(&j->rsp, w)) == PL_OK)
            return PL_OK;
        /* A response that breaks our own caps: report it rather than send nothing. */
        pl_wr_reset(w);
        (void)pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                          provline_fixture_Stage_STAGE_NONE, "response encoding failed: %s",
                          pl_strerror(rc));
    }
    provline_fixture_Msg e;
    pl_fx_msg_init(&e);
    set_error(j, &e);
    e.request_id = request_id;
    rc = pl_fx_msg_encode(&e, w);
    pl_fx_msg_release(&e);
    return rc;
}

static void log_line(struct pl_fpa *f, const struct pl_fpa_job *j, uint64_t id, unsigned which,
                     bool replayed)
{
    char line[512], eid[2 * PL_FX_EID_LEN + 1] = "-";
    if (f->cfg.log == NULL)
        return;
    if (j->has_eid && pl_hex_encode(j->eid, PL_FX_EID_LEN, eid, sizeof(eid)) != PL_OK)
        eid[0] = '\0';
    if (replayed) {
        snprintf(line, sizeof(line), "fpa req=%llu body=%s result=replayed",
                 (unsigned long long)id, pl_fx_body_name(which));
        f->cfg.log(f->cfg.log_user, PL_FPA_LOG_INFO, line);
        return;
    }
    if (j->code == 0) {
        snprintf(line, sizeof(line), "fpa req=%llu body=%s eid=%s result=ok%s%s",
                 (unsigned long long)id, pl_fx_body_name(which), eid, j->note[0] ? " " : "",
                 j->note);
        f->cfg.log(f->cfg.log_user, PL_FPA_LOG_INFO, line);
        return;
    }
    snprintf(line, sizeof(line),
             "fpa req=%llu body=%s eid=%s result=error code=%s stage=%s sw=%04X segment=%u/%u "
             "detail=\"%s\"",
             (unsigned long long)id, pl_fx_body_name(which), eid, pl_fx_error_name(j->code),
             pl_fx_stage_name(j->stage), (unsigned)j->sw, (unsigned)j->segment,
             (unsigned)j->segments_total, j->detail);
    f->cfg.log(f->cfg.log_user, PL_FPA_LOG_WARN, line);
}

static int dispatch(struct pl_fpa_job *j)
{
    switch (j->req->which_body) {
    case PL_FX_IDENTIFY: return pl_fpa_do_identify(j);
    case PL_FX_UPLOAD_OTKS: return pl_fpa_do_upload_otks(j);
    case PL_FX_LOAD_PACKAGE: return pl_fpa_do_load(j);
    case PL_FX_FETCH_RESULTS: return pl_fpa_do_fetch_results(j);
    case PL_FX_NOTIFICATION_SENT: return pl_fpa_do_notification_sent(j);
    case PL_FX_DELETE_OTKS: return pl_fpa_do_delete_otks(j);
    case PL_FX_CONFIGURE_EIM: return pl_fpa_do_configure_eim(j);
    default:
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_UNEXPECTED,
                           provline_fixture_Stage_STAGE_REQUEST, "%s is not a request",
                           pl_fx_body_name(j->req->which_body));
    }
}

int pl_fpa_handle(struct pl_fpa *f, const uint8_t *req, size_t len, struct pl_wr *rsp)
{
    int rc = PL_ERR_INTERNAL;
    uint64_t id = 0;
    unsigned which = 0;
    uint8_t hash[PL_SHA256_LEN];
    provline_fixture_Msg in;
    struct pl_fpa_job *j = NULL;
    struct pl_wr out;

    if (f == NULL || rsp == NULL || (req == NULL && len != 0))
        return PL_ERR_INVAL;
    pl_fx_msg_init(&in);
    pl_wr_init_dyn(&out, PL_FX_MSG_MAX);
    f->st.requests++;
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    j->f = f;
    pl_fx_msg_init(&j->rsp);

    /* The id of an undecodable request, so that its Error can still be matched. */
    if (pl_fx_msg_peek(req, len, &id, &which) != PL_OK) {
        id = 0;
        which = 0;
    }
    rc = pl_fx_msg_decode(req, len, &in);
    if (rc != PL_OK) {
        (void)pl_fpa_fail(j,
                          rc == PL_ERR_UNSUPPORTED
                              ? provline_fixture_ErrorCode_ERROR_UNSUPPORTED_VERSION
                              : provline_fixture_ErrorCode_ERROR_MALFORMED_REQUEST,
                          provline_fixture_Stage_STAGE_REQUEST, "request refused: %s",
                          pl_strerror(rc));
        goto answer;
    }
    id = in.request_id;
    which = in.which_body;
    j->req = &in;
    if (!pl_fx_is_request(which)) {
        (void)dispatch(j); /* records ERROR_UNEXPECTED */
        goto answer;
    }
    if ((rc = pl_sha256(req, len, hash)) != PL_OK) {
        (void)pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                          provline_fixture_Stage_STAGE_REQUEST, "hash: %s", pl_strerror(rc));
        goto answer;
    }
    if (f->have_last && f->last_id == id) {
        if (memcmp(f->last_hash, hash, sizeof(hash)) == 0) {
            /* A resend of the last request: the same answer, the eUICC untouched. */
            f->st.replayed++;
            log_line(f, j, id, which, true);
            rc = pl_wr_bytes(rsp, f->last_rsp.buf, f->last_rsp.len);
            goto out;
        }
        (void)pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_REQUEST_ID_REUSED,
                          provline_fixture_Stage_STAGE_REQUEST,
                          "request_id %llu was used for another request",
                          (unsigned long long)id);
        goto answer;
    }
    (void)dispatch(j);
    if (j->code == 0 && j->rsp.which_body == 0)
        (void)pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                          provline_fixture_Stage_STAGE_NONE, "no response built");
    /* Remember this request and its answer for resends. */
    if ((rc = encode_outcome(j, id, &out)) != PL_OK)
        goto fail;
    f->have_last = false;
    pl_wr_reset(&f->last_rsp);
    if (pl_wr_bytes(&f->last_rsp, out.buf, out.len) == PL_OK) {
        f->have_last = true;
        f->last_id = id;
        memcpy(f->last_hash, hash, sizeof(hash));
    } else {
        pl_wr_reset(&f->last_rsp); /* out of memory: no resend cache this time */
    }
    goto emit;

answer:
    if ((rc = encode_outcome(j, id, &out)) != PL_OK)
        goto fail;
emit:
    if (j->code != 0)
        f->st.errors++;
    log_line(f, j, id, which, false);
    rc = pl_wr_bytes(rsp, out.buf, out.len);
    goto out;
fail:
    if (f->cfg.log != NULL)
        f->cfg.log(f->cfg.log_user, PL_FPA_LOG_ERROR, "fpa result=unanswerable");
out:
    if (j != NULL) {
        pl_fx_msg_release(&j->rsp);
        free(j);
    }
    pl_fx_msg_release(&in);
    pl_wr_free(&out);
    return rc;
}
