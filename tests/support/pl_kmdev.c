/* A software eUICC as the Key Maker tests' device (see pl_kmdev.h).
 * reference/IFPP.md §6.1-§6.3; docs/ifpp-es10f.md (GetIfppInfo, LoadIfppPackage). */
#include "pl_kmdev.h"

#include <stdlib.h>
#include <string.h>

int pl_kmdev_open(struct pl_et *t, const char *name, unsigned n_otks, struct pl_kmdev *d)
{
    char path[512];
    struct pl_euicc_opts o;
    struct pl_wr q;
    uint8_t req[8];
    uint16_t sw = 0;
    int rc = PL_ERR_INTERNAL;

    memset(d, 0, sizeof(*d));
    pl_wr_init_dyn(&d->info_raw, PL_ES10F_GET_INFO_RSP_MAX);
    if ((rc = pl_et_mint(t, name, n_otks, NULL, path, sizeof(path))))
        return rc;
    pl_euicc_opts_init(&o);
    if ((rc = pl_euicc_open(path, &o, &d->e)) || (rc = pl_et_session(d->e, &d->ch)))
        return rc;
    pl_wr_init_fixed(&q, req, sizeof(req));
    if ((rc = pl_es10f_get_info_req_encode(&q))
        || (rc = pl_et_es10(d->e, d->ch, q.buf, q.len, &d->info_raw, &sw)))
        return rc;
    d->info = calloc(1, sizeof(*d->info));
    if (d->info == NULL)
        return PL_ERR_NOMEM;
    if ((rc = pl_es10f_get_info_rsp_decode(d->info_raw.buf, d->info_raw.len, d->info)))
        return rc;
    return d->info->n_otk == n_otks ? PL_OK : PL_ERR_STATE;
}

void pl_kmdev_close(struct pl_kmdev *d)
{
    pl_euicc_close(d->e);
    free(d->info);
    pl_wr_free(&d->info_raw);
    memset(d, 0, sizeof(*d));
}

int pl_kmdev_load(struct pl_kmdev *d, const struct pl_ifpp_pkg *env, struct pl_wr *pir,
                  uint16_t *sw, size_t *sent, size_t *n_segments)
{
    struct pl_es10f_load_req h;
    struct pl_wr hdr;
    size_t n = 0;
    int rc = PL_ERR_INTERNAL;

    *sent = 0;
    *n_segments = 0;
    pl_wr_init_dyn(&hdr, PL_ES10F_LOAD_REQ_MAX);
    pl_es10f_load_req_from_pkg(env, &h);
    struct pl_bpp_span *spans = NULL;
    if ((rc = pl_es10f_load_req_encode(&h, &hdr)))
        goto out;
    spans = pl_et_segments(env->bpp, env->bpp_len, &n);
    if (spans == NULL) {
        rc = PL_ERR_MALFORMED;
        goto out;
    }
    *n_segments = n;
    rc = pl_et_send(d->e, d->ch, hdr.buf, hdr.len, spans, n, pir, sw, sent);
out:
    free(spans);
    pl_wr_free(&hdr);
    return rc;
}
