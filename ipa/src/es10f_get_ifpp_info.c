/* FPA requests Identify and UploadOtks: ES10c.GetEID (SGP.22 v2.5 §5.7.20) and provline's
 * ES10f GetIfppInfo 'FF72' -> 'FF73' (es10f.h; reference/IFPP.md §6.2, ARCHITECTURE.md §4
 * steps 1-2). A locked eUICC answers GetIfppInfo with SW 6985 (GENS13): Identify reports it
 * as factory_mode = false, UploadOtks as ERROR_CARD_SW. docs/fixture-protocol.md §2.1-§2.2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fpa_internal.h"
#include "provline/protocol/es10f.h"

/* GetIfppInfo into info (raw bytes) and checks them. *locked when the eUICC answered 6985. */
static int get_info(struct pl_fpa_job *j, struct pl_wr *info, bool *locked, bool *factory_mode,
                    uint8_t eid[PL_FX_EID_LEN], size_t *n_otk)
{
    uint8_t rq[8];
    struct pl_wr req;
    uint16_t sw = 0;
    int rc;

    *locked = false;
    if ((rc = pl_fpa_session(j)) != PL_OK)
        return rc;
    pl_wr_init_fixed(&req, rq, sizeof(rq));
    if ((rc = pl_es10f_get_info_req_encode(&req)) != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                           provline_fixture_Stage_STAGE_COMMAND, "GetIfppInfo encode: %s",
                           pl_strerror(rc));
    rc = pl_fpa_es10_raw(j->f, req.buf, req.len, info, &sw);
    j->sw = sw;
    if (rc == PL_ERR_CARD_SW && sw == PL_SW_CONDITIONS) {
        *locked = true;
        return PL_OK;
    }
    if (rc != PL_OK)
        return pl_fpa_es10_failed(j, provline_fixture_Stage_STAGE_COMMAND, rc, sw, "GetIfppInfo");
    struct pl_es10f_info *d = malloc(sizeof(*d));
    if (d == NULL)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                           provline_fixture_Stage_STAGE_COMMAND, "out of memory");
    rc = pl_es10f_get_info_rsp_decode(info->buf, info->len, d);
    if (rc == PL_OK) {
        *factory_mode = d->factory_mode;
        memcpy(eid, d->eid, PL_FX_EID_LEN);
        *n_otk = d->n_otk;
    }
    free(d);
    if (rc != PL_OK)
        return pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                           provline_fixture_Stage_STAGE_COMMAND, "GetIfppInfo response: %s",
                           pl_strerror(rc));
    return PL_OK;
}

int pl_fpa_do_identify(struct pl_fpa_job *j)
{
    uint8_t eid[PL_FX_EID_LEN] = {0}, info_eid[PL_FX_EID_LEN] = {0};
    bool locked = false, factory = false;
    size_t n_otk = 0;
    struct pl_wr info;
    int rc;

    pl_wr_init_dyn(&info, PL_FX_IFPP_INFO_MAX);
    if ((rc = pl_fpa_get_eid(j, eid)) != PL_OK)
        goto out;
    if ((rc = get_info(j, &info, &locked, &factory, info_eid, &n_otk)) != PL_OK)
        goto out;
    if (!locked && memcmp(info_eid, eid, PL_FX_EID_LEN) != 0) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_RESPONSE,
                         provline_fixture_Stage_STAGE_COMMAND,
                         "GetIfppInfo names another EID than GetEID");
        goto out;
    }
    provline_fixture_IdentifyResponse *r = &j->rsp.body.identify_rsp;
    j->rsp.which_body = PL_FX_IDENTIFY_RSP;
    if ((rc = PL_FX_SET_BYTES(r->eid, eid, PL_FX_EID_LEN)) != PL_OK)
        goto internal;
    r->factory_mode = !locked && factory;
    if (!locked && (rc = pl_fx_set_blob(&r->ifpp_info, info.buf, info.len)) != PL_OK)
        goto internal;
    snprintf(j->note, sizeof(j->note), "factory_mode=%d free_otks=%u", r->factory_mode ? 1 : 0,
             (unsigned)n_otk);
    rc = PL_OK;
    goto out;
internal:
    rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                     provline_fixture_Stage_STAGE_NONE, "response: %s", pl_strerror(rc));
out:
    pl_wr_free(&info);
    return rc;
}

int pl_fpa_do_upload_otks(struct pl_fpa_job *j)
{
    uint8_t eid[PL_FX_EID_LEN] = {0};
    bool locked = false, factory = false;
    size_t n_otk = 0;
    struct pl_wr info;
    int rc;

    pl_wr_init_dyn(&info, PL_FX_IFPP_INFO_MAX);
    if ((rc = get_info(j, &info, &locked, &factory, eid, &n_otk)) != PL_OK)
        goto out;
    if (locked) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_CARD_SW,
                         provline_fixture_Stage_STAGE_COMMAND,
                         "GetIfppInfo: FPA Services closed (SW 6985)");
        goto out;
    }
    memcpy(j->eid, eid, PL_FX_EID_LEN);
    j->has_eid = true;
    j->rsp.which_body = PL_FX_UPLOAD_OTKS_RSP;
    if ((rc = pl_fx_set_blob(&j->rsp.body.upload_otks_rsp.ifpp_info, info.buf, info.len))
        != PL_OK) {
        rc = pl_fpa_fail(j, provline_fixture_ErrorCode_ERROR_INTERNAL,
                         provline_fixture_Stage_STAGE_NONE, "response: %s", pl_strerror(rc));
        goto out;
    }
    snprintf(j->note, sizeof(j->note), "free_otks=%u", (unsigned)n_otk);
out:
    pl_wr_free(&info);
    return rc;
}
