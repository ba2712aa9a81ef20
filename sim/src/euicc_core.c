/* Software eUICC: object lifecycle, persistence, the signed PIR as a pending notification,
 * and read-only views. GSMA SGP.22 v2.5 §5.7.6 (ProfileInstallationResult, stored as a
 * pending notification until ES10b.RemoveNotificationFromList), SGP.41 v1.0 GENS08
 * (one OTK loads at most one profile). provline reference: IFPP.md §5.6, §6.2, §7 cases
 * 7 and 18; docs/software-euicc.md. */
#define _POSIX_C_SOURCE 200809L

#include "euicc_internal.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/secret.h"
#include "provline/protocol/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* smdpOid used in a PIR when the package named none (no ConfigureISDP dpOid yet):
 * 2.999.1, under the ITU-T X.660 "example" arc. */
static const uint8_t default_smdp_oid[] = {0x88, 0x37, 0x01};
/* notificationAddress of the PIR: provline's Key Maker is reached through the station,
 * never by the eUICC, so the field names no real host (RFC 2606 .invalid). */
#define NOTIF_ADDR "keymaker.provline.invalid"
/* simaResponse of a successful install: EUICCResponse { peStatus { { status ok(0) } } }
 * (PEDefinitions.asn, AUTOMATIC TAGS). */
static const uint8_t sima_ok[] = {0x30, 0x07, 0xA0, 0x05, 0x30, 0x03, 0x80, 0x01, 0x00};

const char *pl_euicc_otk_state_name(int state)
{
    switch (state) {
    case PL_EUICC_OTK_FREE:
        return "FREE";
    case PL_EUICC_OTK_IN_USE:
        return "IN_USE";
    case PL_EUICC_OTK_CONSUMED:
        return "CONSUMED";
    case PL_EUICC_OTK_DELETED:
        return "DELETED";
    default:
        return "unknown";
    }
}

void pl_euicc_opts_init(struct pl_euicc_opts *o)
{
    memset(o, 0, sizeof(*o));
}

int pl_euicc_persist(struct pl_euicc *e)
{
    if (e->dead)
        return PL_ERR_STATE;
    e->writes++;
    bool cut = e->opts.fail_write_at != 0 && e->writes == e->opts.fail_write_at;
    int rc = pl_euicc_state_write(e->path, &e->st, cut);
    if (rc) {
        /* Power lost (or the medium failed): RAM no longer matches the file. */
        e->dead = true;
        pl_euicc_load_reset(e);
    }
    return rc;
}

int pl_euicc_pir_emit(struct pl_euicc *e, const uint8_t *tid, size_t tid_len, const uint8_t *iccid,
                      const uint8_t *aid, int cmd, int reason, bool clear_marker, struct pl_wr *out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_pir pir;
    struct pl_wr w;
    uint8_t *bytes = NULL;
    size_t len = 0;

    pl_wr_init_dyn(&w, 4096);
    memset(&pir, 0, sizeof(pir));
    if (e->st.n_notif >= PL_EUICC_MAX_NOTIFS) {
        rc = PL_ERR_OVERFLOW; /* loads are refused before this can happen */
        goto out;
    }
    pir.tid = tid;
    pir.tid_len = tid_len;
    pir.meta.seq = e->st.pir_seq + 1;
    pir.meta.ops = PL_NOTIF_EV_INSTALL;
    memcpy(pir.meta.addr, NOTIF_ADDR, sizeof(NOTIF_ADDR));
    if (iccid) {
        pir.meta.has_iccid = true;
        memcpy(pir.meta.iccid, iccid, PL_EUICC_ICCID_LEN);
    }
    if (e->load.dp_oid_len) {
        pir.smdp_oid = e->load.dp_oid;
        pir.smdp_oid_len = e->load.dp_oid_len;
    } else {
        pir.smdp_oid = default_smdp_oid;
        pir.smdp_oid_len = sizeof(default_smdp_oid);
    }
    if (aid) {
        pir.success = true;
        pir.aid = aid;
        pir.aid_len = PL_EUICC_AID_LEN;
        pir.sima = sima_ok;
        pir.sima_len = sizeof(sima_ok);
    } else {
        pir.cmd_id = cmd;
        pir.reason = reason;
    }
    if ((rc = pl_pir_encode(&pir, e->sk, &e->rng, &w)))
        goto out;
    bytes = pl_wr_take(&w, &len);
    if (!bytes) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (out) {
        pl_wr_bytes(out, bytes, len);
        if ((rc = pl_wr_status(out)))
            goto out;
    }
    e->st.pir_seq++;
    rc = PL_EUICC_NOTIF_ADD(&e->st, e->st.pir_seq, bytes, len);
    bytes = NULL; /* taken */
    if (rc)
        goto out;
    if (clear_marker)
        memset(&e->st.loading, 0, sizeof(e->st.loading));
    rc = pl_euicc_persist(e);
out:
    free(bytes);
    pl_wr_free(&w);
    return rc;
}

int pl_euicc_open(const char *path, const struct pl_euicc_opts *opts, struct pl_euicc **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_euicc *e = NULL;
    char tmp[4096];

    if (!path || !out)
        return PL_ERR_INVAL;
    *out = NULL;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return PL_ERR_INVAL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return PL_ERR_NOMEM;
    pl_es10_rx_init(&e->rx, 0);
    if (opts)
        e->opts = *opts;
    e->rng = e->opts.rng ? *e->opts.rng : PL_RNG_SYSTEM;
    e->path = malloc(strlen(path) + 1);
    if (!e->path) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    memcpy(e->path, path, strlen(path) + 1);
    /* A temporary file left by a write the power cut short is garbage: the live file
     * is the last complete state. */
    (void)unlink(tmp);
    if ((rc = pl_euicc_state_read(path, &e->st)))
        goto out;
    if ((rc = pl_eckey_from_private(e->st.curve, e->st.sk, &e->sk)))
        goto out;
    pl_wr_init_dyn(&e->load.meta, PL_EUICC_META_MAX);
    pl_wr_init_dyn(&e->load.upp, PL_EUICC_UPP_MAX);
    if (e->st.loading.active) {
        /* IFPP.md §6.2: "power cut mid-load, found at next boot ->
         * installFailedDueToInterruption(11)". The OTK is CONSUMED and nothing was
         * installed (install and marker clearing are one write). */
        uint8_t tid[PL_EUICC_TID_MAX];
        size_t tid_len = e->st.loading.tid_len;
        memcpy(tid, e->st.loading.tid, tid_len);
        rc = pl_euicc_pir_emit(e, tid, tid_len, NULL, NULL, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS,
                               PL_PIR_REASON_INTERRUPTION, true, NULL);
        if (rc)
            goto out;
    }
    *out = e;
    e = NULL;
    rc = PL_OK;
out:
    pl_euicc_close(e);
    return rc;
}

void pl_euicc_close(struct pl_euicc *e)
{
    if (!e)
        return;
    pl_euicc_load_reset(e);
    pl_wr_free(&e->load.meta);
    pl_wr_free(&e->load.upp);
    pl_es10_rx_free(&e->rx);
    if (e->rsp) {
        pl_memzero(e->rsp, e->rsp_len);
        free(e->rsp);
    }
    pl_eckey_free(e->sk);
    pl_euicc_state_free(&e->st);
    free(e->path);
    pl_memzero(e, sizeof(*e));
    free(e);
}

/* ---- views ---- */

bool pl_euicc_is_dead(const struct pl_euicc *e)
{
    return e->dead;
}

unsigned pl_euicc_write_count(const struct pl_euicc *e)
{
    return e->writes;
}

void pl_euicc_get_eid(const struct pl_euicc *e, uint8_t eid[PL_EUICC_EID_LEN])
{
    memcpy(eid, e->st.eid, PL_EUICC_EID_LEN);
}

enum pl_curve pl_euicc_curve(const struct pl_euicc *e)
{
    return e->st.curve;
}

bool pl_euicc_factory_mode(const struct pl_euicc *e)
{
    return e->st.factory_mode;
}

bool pl_euicc_load_in_progress(const struct pl_euicc *e)
{
    return e->st.loading.active;
}

void pl_euicc_cert_euicc(const struct pl_euicc *e, const uint8_t **der, size_t *len)
{
    *der = e->st.cert_euicc;
    *len = e->st.cert_euicc_len;
}

void pl_euicc_cert_eum(const struct pl_euicc *e, const uint8_t **der, size_t *len)
{
    *der = e->st.cert_eum;
    *len = e->st.cert_eum_len;
}

void pl_euicc_cert_ci(const struct pl_euicc *e, const uint8_t **der, size_t *len)
{
    *der = e->st.cert_ci;
    *len = e->st.cert_ci_len;
}

size_t pl_euicc_otk_count(const struct pl_euicc *e)
{
    return e->st.n_otk;
}

static void otk_info(const struct pl_euicc_otk *o, struct pl_euicc_otk_info *out)
{
    out->id = o->id;
    out->state = (enum pl_euicc_otk_state)o->state;
    memcpy(out->pk, o->pk, sizeof(out->pk));
}

int pl_euicc_otk_get(const struct pl_euicc *e, size_t i, struct pl_euicc_otk_info *out)
{
    if (i >= e->st.n_otk)
        return PL_ERR_NOT_FOUND;
    otk_info(&e->st.otk[i], out);
    return PL_OK;
}

int pl_euicc_otk_by_id(const struct pl_euicc *e, uint16_t id, struct pl_euicc_otk_info *out)
{
    for (size_t i = 0; i < e->st.n_otk; i++) {
        if (e->st.otk[i].id == id) {
            otk_info(&e->st.otk[i], out);
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

size_t pl_euicc_profile_count(const struct pl_euicc *e)
{
    return e->st.n_prof;
}

int pl_euicc_profile_get(const struct pl_euicc *e, size_t i, struct pl_euicc_profile_info *out)
{
    if (i >= e->st.n_prof)
        return PL_ERR_NOT_FOUND;
    const struct pl_euicc_prof *p = &e->st.prof[i];
    memcpy(out->aid, p->aid, sizeof(out->aid));
    memcpy(out->iccid, p->iccid, sizeof(out->iccid));
    out->enabled = p->enabled;
    out->fallback = p->fallback;
    out->upp = p->upp;
    out->upp_len = p->upp_len;
    return PL_OK;
}

size_t pl_euicc_notif_count(const struct pl_euicc *e)
{
    return e->st.n_notif;
}

size_t pl_euicc_eim_count(const struct pl_euicc *e)
{
    return e->st.n_eim;
}

int pl_euicc_eim_get(const struct pl_euicc *e, size_t i, struct pl_euicc_eim_info *out)
{
    if (i >= e->st.n_eim)
        return PL_ERR_NOT_FOUND;
    const struct pl_euicc_eim *x = &e->st.eim[i];
    memset(out, 0, sizeof(*out));
    memcpy(out->id, x->id, x->id_len);
    out->counter = x->counter;
    out->has_token = x->has_token;
    out->token = x->token;
    return PL_OK;
}

size_t pl_euicc_epr_count(const struct pl_euicc *e)
{
    return e->st.n_epr;
}

bool pl_euicc_awaiting_reset(const struct pl_euicc *e)
{
    return e->await_reset;
}

int pl_euicc_verify_dpf_chain(const struct pl_euicc *e, const struct pl_ifpp_chain *chain,
                              struct pl_eckey **pub)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_cert *root = NULL;
    struct pl_cert *certs[PL_IFPP_CHAIN_MAX] = {NULL};
    size_t n = 0;

    *pub = NULL;
    if (chain->n == 0 || chain->n > PL_IFPP_CHAIN_MAX) {
        rc = PL_ERR_CERT_CHAIN;
        goto out;
    }
    if ((rc = pl_cert_parse(e->st.cert_ci, e->st.cert_ci_len, &root)))
        goto out;
    for (n = 0; n < chain->n; n++) {
        if ((rc = pl_cert_parse(chain->cert[n].der, chain->cert[n].len, &certs[n])))
            goto out;
    }
    time_t now = e->opts.now ? e->opts.now : time(NULL);
    if ((rc = pl_cert_verify_chain(certs[0], (const struct pl_cert *const *)&certs[1], n - 1, root,
                                   PL_CERT_ROLE_DPPB, now)))
        goto out;
    rc = pl_cert_public_key(certs[0], pub);
out:
    for (size_t i = 0; i < PL_IFPP_CHAIN_MAX; i++)
        pl_cert_free(certs[i]);
    pl_cert_free(root);
    return rc;
}
