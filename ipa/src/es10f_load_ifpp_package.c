/* FPA request LoadPackage: provline's ES10f LoadIfppPackage header 'FF71' then the SGP.22
 * ES10b.LoadBoundProfilePackage segments (GSMA SGP.22 v2.5 §5.7.6, in the order lpac sends
 * them: reference/IFPP.md §5.7), over STORE DATA to the ISD-R.
 *
 * Order of work (docs/fixture-protocol.md §4.2):
 *  1. the whole package is parsed before any APDU: envelope (ifpp_envelope.h) or header
 *     (es10f.h), the BPP (bpp.h) and its segmentation; header and ISCR transactionId agree;
 *     every command fits STORE DATA;
 *  2. GetEID: the eUICC must be the package's (IFPP.md §6.3: "Before loading, require the
 *     device EID (GetIfppInfo) = envelope eid, so a mis-seated device never costs an OTK";
 *     §7 case 22: "Abort before BF23; no OTK spent");
 *  3. header, then each segment, stopping at the first response carrying data (the PIR
 *     'BF37': "BF37 after the last segment, or as soon as any segment fails", IFPP.md §5.7)
 *     or at the first error status word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpa_internal.h"
#include "provline/protocol/bpp.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"

struct load_plan {
    uint8_t eid[PL_FX_EID_LEN];
    const uint8_t *hdr;  /* the 'FF71' command */
    size_t hdr_len;
    struct pl_wr hdr_buf; /* form (a): the header built from the envelope */
    const uint8_t *tid;   /* the ISCR transactionId */
    size_t tid_len;
    struct pl_bpp *bpp;   /* decoded (heap: ~17 KiB) */
    struct pl_bpp_span *spans;
    size_t n;
};

static int bad(struct pl_fpa_job *j, const char *what, int rc)
{
    return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_BAD_PACKAGE,
                       provline_fixture_Stage_STAGE_REQUEST, "%s: %s", what, pl_strerror(rc));
}

/* Step 1: everything from the request, nothing sent. */
static int plan(struct pl_fpa_job *j, struct load_plan *p)
{
    const provline_fixture_LoadPackageRequest *q = &j->req->body.load_package;
    const uint8_t *bpp;
    size_t bpp_len;
    int rc;

    if (q->envelope != NULL) {
        struct pl_ifpp_pkg pkg;
        struct pl_es10f_load_req lr;
        const uint8_t *env = pl_fx_blob(q->envelope, NULL);
        if ((rc = pl_ifpp_pkg_decode(env, q->envelope->size, &pkg)) != PL_OK)
            return bad(j, "envelope", rc);
        memcpy(p->eid, pkg.eid, PL_FX_EID_LEN);
        pl_es10f_load_req_from_pkg(&pkg, &lr);
        pl_wr_init_dyn(&p->hdr_buf, PL_ES10F_LOAD_REQ_MAX);
        if ((rc = pl_es10f_load_req_encode(&lr, &p->hdr_buf)) != PL_OK)
            return bad(j, "header from envelope", rc);
        p->hdr = p->hdr_buf.buf;
        p->hdr_len = p->hdr_buf.len;
        bpp = pkg.bpp;
        bpp_len = pkg.bpp_len;
    } else {
        struct pl_es10f_load_req lr;
        memcpy(p->eid, q->eid.bytes, PL_FX_EID_LEN);
        p->hdr = pl_fx_blob(q->header, &p->hdr_len);
        if ((rc = pl_es10f_load_req_decode(p->hdr, p->hdr_len, &lr)) != PL_OK)
            return bad(j, "header", rc);
        bpp = pl_fx_blob(q->bpp, &bpp_len);
        p->tid = lr.tid;
        p->tid_len = lr.tid_len;
    }
    p->bpp = malloc(sizeof(*p->bpp));
    p->spans = calloc(PL_BPP_MAX_SEGMENTS, sizeof(*p->spans));
    if (p->bpp == NULL || p->spans == NULL)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                           provline_fixture_Stage_STAGE_REQUEST, "out of memory");
    if ((rc = pl_bpp_decode(bpp, bpp_len, p->bpp)) != PL_OK)
        return bad(j, "BPP", rc);
    /* Form (b): the header must name this BPP's transaction (the envelope decoder checks
     * its own transactionId against the ISCR). */
    if (p->tid != NULL
        && (p->tid_len != p->bpp->iscr.tid_len
            || memcmp(p->tid, p->bpp->iscr.tid, p->tid_len) != 0))
        return bad(j, "header transactionId differs from the ISCR's", PL_ERR_MALFORMED);
    p->tid = p->bpp->iscr.tid;
    p->tid_len = p->bpp->iscr.tid_len;
    if ((rc = pl_bpp_segments(p->bpp, p->spans, PL_BPP_MAX_SEGMENTS, &p->n)) != PL_OK)
        return bad(j, "segmentation", rc);
    /* Every command must fit STORE DATA's 256 blocks: refuse now, not half-way. */
    size_t max_cmd = PL_ES10_MAX_BLOCKS * j->f->cfg.mss;
    if (p->hdr_len > max_cmd)
        return bad(j, "header too long for STORE DATA", PL_ERR_OVERFLOW);
    for (size_t i = 0; i < p->n; i++)
        if (p->spans[i].len > max_cmd)
            return bad(j, "segment too long for STORE DATA", PL_ERR_OVERFLOW);
    return PL_OK;
}

static void plan_free(struct load_plan *p)
{
    if (p->hdr_buf.dynamic)
        pl_wr_free(&p->hdr_buf);
    free(p->bpp);
    free(p->spans);
}

/* A response with data: it must be one PIR. */
static int take_pir(struct pl_fpa_job *j, const struct load_plan *p, const struct pl_wr *out,
                    int stage, size_t sent)
{
    struct pl_es10f_load_rsp lr;
    struct pl_pir pir;
    int rc;

    if ((rc = pl_es10f_load_rsp_decode(out->buf, out->len, &lr)) != PL_OK || !lr.has_pir
        || (rc = pl_pir_decode(lr.pir, lr.pir_len, &pir)) != PL_OK) {
        j->segment = (uint32_t)sent;
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE, stage,
                           "load response is not a PIR: %s", pl_strerror(rc));
    }
    provline_fixture_LoadPackageResponse *r = &j->rsp.body.load_package_rsp;
    j->rsp.which_body = PL_FX_LOAD_PACKAGE_RSP;
    if ((rc = PL_FX_SET_BYTES(r->pir, lr.pir, lr.pir_len)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE, stage,
                           "PIR over %u bytes", (unsigned)PL_FX_PIR_MAX);
    r->segments_sent = (uint32_t)sent;
    r->segments_total = (uint32_t)p->n;
    bool same_tid = pir.tid_len == p->tid_len && memcmp(pir.tid, p->tid, p->tid_len) == 0;
    /* Unverified here (the station verifies euiccSignPIR): for the log only. */
    if (pir.success)
        snprintf(j->note, sizeof(j->note), "pir=success segments=%zu/%zu%s", sent, p->n,
                 same_tid ? "" : " pir_tid=other");
    else
        snprintf(j->note, sizeof(j->note), "pir=error cmd=%s reason=%s segments=%zu/%zu%s",
                 pl_pir_cmd_name(pir.cmd_id), pl_pir_reason_name(pir.reason), sent, p->n,
                 same_tid ? "" : " pir_tid=other");
    return PL_OK;
}

int pl_fpa_do_load(struct pl_fpa_job *j)
{
    struct load_plan p;
    struct pl_wr out;
    uint8_t eid[PL_FX_EID_LEN];
    int rc;

    memset(&p, 0, sizeof(p));
    pl_wr_init_dyn(&out, PL_ES10F_PIR_MAX);
    if ((rc = plan(j, &p)) != PL_OK)
        goto out;
    j->segments_total = (uint32_t)p.n;

    /* 2. The EID check: nothing of the package has been sent yet. */
    if ((rc = pl_fpa_get_eid(j, eid)) != PL_OK)
        goto out;
    if (memcmp(eid, p.eid, PL_FX_EID_LEN) != 0) {
        char want[2 * PL_FX_EID_LEN + 1], have[2 * PL_FX_EID_LEN + 1];
        if (pl_hex_encode(p.eid, PL_FX_EID_LEN, want, sizeof(want)) != PL_OK
            || pl_hex_encode(eid, PL_FX_EID_LEN, have, sizeof(have)) != PL_OK)
            want[0] = have[0] = '\0';
        memcpy(j->euicc_eid, eid, PL_FX_EID_LEN);
        j->has_euicc_eid = true;
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_EID_MISMATCH,
                         provline_fixture_Stage_STAGE_GET_EID,
                         "package for EID %s, eUICC is %s: nothing sent", want, have);
        goto out;
    }

    /* 3. Header, then the segments in order. */
    if ((rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_HEADER, p.hdr, p.hdr_len, &out))
        != PL_OK)
        goto out;
    if (out.len > 0) {
        rc = take_pir(j, &p, &out, provline_fixture_Stage_STAGE_HEADER, 0);
        goto out;
    }
    for (size_t i = 0; i < p.n; i++) {
        j->segment = (uint32_t)i;
        rc = pl_fpa_es10(j, provline_fixture_Stage_STAGE_SEGMENT, p.spans[i].p, p.spans[i].len,
                         &out);
        if (rc != PL_OK)
            goto out;
        if (out.len > 0) {
            rc = take_pir(j, &p, &out, provline_fixture_Stage_STAGE_SEGMENT, i + 1);
            goto out;
        }
    }
    j->segment = (uint32_t)p.n;
    rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_NO_RESULT,
                     provline_fixture_Stage_STAGE_SEGMENT,
                     "all %zu segments accepted, no PIR returned", p.n);
out:
    pl_wr_free(&out);
    plan_free(&p);
    return rc;
}
