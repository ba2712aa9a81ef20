/* The station's batch for the eIM (batch.h): the journal in the eIM's bulk-import format.
 * Sources: docs/eim-api.md "Bulk import" (provline-station-batch/1, the members and their
 * limits, as eim/src/api_http.c handle_bulk checks them); RFC 3339 §5.6 (created_at,
 * completed_at in UTC); RFC 4648 §4 (base64 of the DER certificates); SGP.22 Iccid ('5A',
 * EF.ICCID coding); SGP.22 (a newly installed profile is Disabled until enabled; the
 * software eUICC does the same, sim/src/euicc_es10b_load_bound_profile_package.c, also
 * for an IFPP install); jansson 2.14 (the
 * JSON, its escaping, member order as inserted). */
#define _POSIX_C_SOURCE 200809L
#include "provline/station/batch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "provline/protocol/b64.h"
#include "provline/protocol/clock.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/iccid.h"
#include "utc_text.h"
#include "provline/proto/km_msg.h"

/* Key Maker PackageState in a ReportAck (docs/station-keymaker-protocol.md; journal.c
 * pl_journal_result_text). */
#define KM_INSTALLED provline_keymaker_PackageState_PACKAGE_STATE_INSTALLED
#define KM_FAILED provline_keymaker_PackageState_PACKAGE_STATE_FAILED

static bool text_ok(const char *s, size_t max)
{
    json_t *t = NULL;
    size_t n;
    if (s == NULL)
        return true;
    n = strlen(s);
    if (n == 0 || n > max)
        return false;
    t = json_string(s); /* NULL unless valid UTF-8 */
    json_decref(t);
    return t != NULL;
}

int pl_batch_opts_check(const struct pl_batch_opts *o)
{
    return text_ok(o->batch_id, PL_BATCH_ID_MAX) && text_ok(o->station, PL_BATCH_ID_MAX)
                   && text_ok(o->eim_id, PL_BATCH_EIM_ID_MAX)
               ? PL_OK
               : PL_ERR_INVAL;
}

/* RFC 4648 §4 base64 with padding, as a JSON string (NULL on no memory). */
static json_t *b64_json(const uint8_t *p, size_t n)
{
    size_t cap = pl_b64_len(n) + 1;
    char *s = malloc(cap);
    json_t *v = NULL;
    if (s == NULL)
        return NULL;
    if (pl_b64_encode(p, n, s, cap) == PL_OK)
        v = json_stringn(s, cap - 1);
    free(s);
    return v;
}

/* ---- one device's final package ---- */

struct pick {
    struct pl_jpkg *installed; /* the package the Key Maker accepted as installed */
    struct pl_jpkg *last;      /* the last package that may have reached the chip */
    bool has_installed, has_last;
};

/* Whether any byte of the package may have reached the chip: a PIR, or a load that was
 * started and not taken back (a release means it never left the station). */
static bool on_chip(const struct pl_jpkg *r)
{
    if (r->outcome == PL_JO_PIR)
        return true;
    if (r->outcome == PL_JO_RELEASED)
        return false;
    return r->state >= PL_J_LOADING;
}

static int pick_cb(void *user, const struct pl_jpkg *r)
{
    struct pick *p = user;
    if (r->km_accepted == 1 && r->km_state == KM_INSTALLED && r->outcome == PL_JO_PIR
        && r->pir_success) {
        *p->installed = *r;
        p->has_installed = true;
    }
    if (on_chip(r)) {
        *p->last = *r;
        p->has_last = true;
    }
    return 0;
}

/* ---- the batch ---- */

struct eum_ref {
    uint8_t *der;
    size_t len;
    char name[16];
};

struct batch_ctx {
    struct pl_journal *j;
    json_t *devices, *eums;
    struct eum_ref refs[PL_BATCH_EUM_REFS_MAX];
    size_t n_refs;
    struct pick pick;
    struct pl_jcerts *certs;
};

/* The name of this CERT.EUM in eum_certificates (added on first use); NULL when the
 * table is full (the entry then carries the certificate itself). */
static const char *eum_name(struct batch_ctx *c, const uint8_t *der, size_t len, int *rc)
{
    json_t *v = NULL;
    *rc = PL_OK;
    for (size_t i = 0; i < c->n_refs; i++)
        if (c->refs[i].len == len && memcmp(c->refs[i].der, der, len) == 0)
            return c->refs[i].name;
    if (c->n_refs == PL_BATCH_EUM_REFS_MAX)
        return NULL;
    struct eum_ref *r = &c->refs[c->n_refs];
    r->der = malloc(len);
    if (r->der == NULL || (v = b64_json(der, len)) == NULL) {
        free(r->der);
        r->der = NULL;
        *rc = PL_ERR_NOMEM;
        return NULL;
    }
    memcpy(r->der, der, len);
    r->len = len;
    snprintf(r->name, sizeof(r->name), "eum-%zu", c->n_refs + 1);
    if (json_object_set_new(c->eums, r->name, v) != 0) {
        free(r->der);
        r->der = NULL;
        *rc = PL_ERR_NOMEM;
        return NULL;
    }
    c->n_refs++;
    return r->name;
}

static int set_str(json_t *o, const char *key, const char *val)
{
    return json_object_set_new(o, key, json_string(val)) == 0 ? PL_OK : PL_ERR_NOMEM;
}

static int device_cb(void *user, const struct pl_jdevice *d)
{
    struct batch_ctx *c = user;
    const struct pl_jpkg *p = NULL;
    const char *status = NULL, *fixture = NULL, *name = NULL;
    char eid[2 * PL_J_EID_LEN + 1], pkg[2 * PL_J_ID_LEN + 1], iccid[2 * PL_J_ICCID_LEN + 1];
    char ts[40], res_buf[32];
    uint64_t done_ms = 0;
    json_t *o = NULL;
    int rc = PL_ERR_INTERNAL;

    c->pick.has_installed = c->pick.has_last = false;
    if ((rc = pl_journal_each(c->j, 0, d->eid, NULL, pick_cb, &c->pick)) != PL_OK)
        return rc;
    if (c->pick.has_installed) {
        p = c->pick.installed;
        status = "installed";
    } else if (c->pick.has_last) {
        p = c->pick.last;
        /* Only the Key Maker's verdict on the eUICC-signed PIR is proof. */
        status = p->km_accepted == 1 && p->km_state == KM_FAILED && p->outcome == PL_JO_PIR
                         && !p->pir_success
                     ? "failed"
                     : "possibly_used";
    } else {
        return PL_OK; /* no package ever reached this device: nothing for the eIM */
    }
    if ((rc = pl_journal_device_certs_get(c->j, d->eid, c->certs)) == PL_ERR_NOT_FOUND)
        memset(c->certs, 0, sizeof(*c->certs));
    else if (rc != PL_OK)
        return rc;
    if (pl_hex_encode(d->eid, PL_J_EID_LEN, eid, sizeof(eid)) != PL_OK
        || pl_hex_encode(p->package_id, PL_J_ID_LEN, pkg, sizeof(pkg)) != PL_OK)
        return PL_ERR_INTERNAL;
    if ((o = json_object()) == NULL)
        return PL_ERR_NOMEM;
    rc = PL_ERR_NOMEM;
    if (set_str(o, "eid", eid) != PL_OK || set_str(o, "status", status) != PL_OK)
        goto out;
    if (p->has_iccid) {
        pl_iccid_text(p->iccid, iccid);
        /* The factory profile is as the eUICC installed it: Disabled (SGP.22); the line
         * sends no profile state change, so the journal never knows better. */
        if (set_str(o, "iccid", iccid) != PL_OK || set_str(o, "profile_state", "disabled") != PL_OK)
            goto out;
    }
    if (c->certs->has_euicc
        && json_object_set_new(o, "euicc_certificate",
                               b64_json(c->certs->euicc, c->certs->euicc_len))
               != 0)
        goto out;
    if (c->certs->has_eum) {
        name = eum_name(c, c->certs->eum, c->certs->eum_len, &rc);
        if (rc != PL_OK)
            goto out;
        rc = PL_ERR_NOMEM;
        if (name != NULL ? set_str(o, "eum_certificate_ref", name) != PL_OK
                         : json_object_set_new(o, "eum_certificate",
                                               b64_json(c->certs->eum, c->certs->eum_len))
                               != 0)
            goto out;
    }
    fixture = p->fixture[0] != '\0' ? p->fixture : d->fixture;
    if (fixture[0] != '\0' && set_str(o, "fixture", fixture) != PL_OK)
        goto out;
    /* The line finished the device (done or failed) at its record's last change; otherwise
     * the latest step of its package. */
    if (d->state == PL_JD_DONE || d->state == PL_JD_FAILED) {
        done_ms = d->t_last;
    } else {
        for (unsigned s = 1; s < PL_J_STATE_COUNT; s++)
            if (p->t[s] > done_ms)
                done_ms = p->t[s];
    }
    pl_st_utc_text(done_ms, true, ts, sizeof(ts));
    if (done_ms != 0 && ts[0] != '\0' && set_str(o, "completed_at", ts) != PL_OK)
        goto out;
    /* Station-side notes (x_* members, which the eIM ignores): the package and the
     * journal's own reading of it. */
    if (set_str(o, "x_package_id", pkg) != PL_OK
        || set_str(o, "x_result", pl_journal_result_text(p, res_buf, sizeof(res_buf))) != PL_OK
        || set_str(o, "x_device_state", pl_journal_device_state_name(d->state)) != PL_OK)
        goto out;
    if (json_array_append_new(c->devices, o) != 0) {
        o = NULL; /* stolen even on failure */
        goto out;
    }
    return PL_OK;
out:
    json_decref(o);
    return rc;
}

struct writer {
    int (*write)(void *user, const char *s, size_t n);
    void *user;
    int rc;
};

static int dump_writer(const char *buf, size_t n, void *user)
{
    struct writer *w = user;
    if (w->rc == PL_OK)
        w->rc = w->write(w->user, buf, n);
    return w->rc == PL_OK ? 0 : -1;
}

int pl_batch_export(struct pl_journal *j, const struct pl_batch_opts *o,
                    int (*write)(void *user, const char *s, size_t n), void *user,
                    size_t *n_devices)
{
    struct batch_ctx c;
    struct writer w = {write, user, PL_OK};
    json_t *top = NULL;
    uint64_t now = o->created_ms != 0 ? o->created_ms : pl_clock_realtime_ms(NULL);
    char created[40], id[PL_BATCH_ID_MAX + 1];
    int rc = PL_ERR_INTERNAL;

    if (n_devices != NULL)
        *n_devices = 0;
    if ((rc = pl_batch_opts_check(o)) != PL_OK)
        return rc;
    memset(&c, 0, sizeof(c));
    c.j = j;
    /* Without --station: the station id the station recorded in its journal (schema 3). */
    char recorded[PL_J_INFO_MAX + 1];
    const char *station = o->station;
    if (station == NULL && pl_journal_info_get(j, PL_J_INFO_STATION, recorded, sizeof(recorded))
                               == PL_OK
        && recorded[0] != '\0' && text_ok(recorded, PL_BATCH_ID_MAX))
        station = recorded;
    pl_st_utc_text(now, false, created, sizeof(created));
    if (created[0] == '\0')
        return PL_ERR_INVAL;
    if (o->batch_id != NULL) {
        snprintf(id, sizeof(id), "%s", o->batch_id);
    } else {
        /* "<station>-20261125T100000Z": the created_at without separators. */
        char compact[24];
        size_t k = 0;
        for (const char *s = created; *s != '\0' && k + 1 < sizeof(compact); s++)
            if (*s != '-' && *s != ':')
                compact[k++] = *s;
        compact[k] = '\0';
        int n = snprintf(id, sizeof(id), "%.100s-%s", station != NULL ? station : "station",
                         compact);
        if (n < 0 || (size_t)n >= sizeof(id))
            return PL_ERR_INTERNAL;
    }
    c.pick.installed = malloc(sizeof(*c.pick.installed));
    c.pick.last = malloc(sizeof(*c.pick.last));
    c.certs = malloc(sizeof(*c.certs));
    c.devices = json_array();
    c.eums = json_object();
    top = json_object();
    rc = PL_ERR_NOMEM;
    if (c.pick.installed == NULL || c.pick.last == NULL || c.certs == NULL || c.devices == NULL
        || c.eums == NULL || top == NULL)
        goto out;
    if ((rc = pl_journal_device_each(j, device_cb, &c)) != PL_OK)
        goto out;
    if (json_array_size(c.devices) == 0) {
        rc = PL_ERR_NOT_FOUND;
        goto out;
    }
    rc = PL_ERR_NOMEM;
    if (set_str(top, "format", PL_BATCH_FORMAT) != PL_OK || set_str(top, "batch_id", id) != PL_OK
        || (station != NULL && set_str(top, "station", station) != PL_OK)
        || set_str(top, "created_at", created) != PL_OK
        || (o->eim_id != NULL && set_str(top, "eim_id", o->eim_id) != PL_OK))
        goto out;
    if (c.n_refs > 0 && json_object_set(top, "eum_certificates", c.eums) != 0)
        goto out;
    if (json_object_set(top, "devices", c.devices) != 0)
        goto out;
    if (json_dump_callback(top, dump_writer, &w, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0) {
        rc = w.rc != PL_OK ? w.rc : PL_ERR_NOMEM;
        goto out;
    }
    if ((rc = write(user, "\n", 1)) != PL_OK)
        goto out;
    if (n_devices != NULL)
        *n_devices = json_array_size(c.devices);
    rc = PL_OK;
out:
    for (size_t i = 0; i < c.n_refs; i++)
        free(c.refs[i].der);
    json_decref(top);
    json_decref(c.devices);
    json_decref(c.eums);
    free(c.pick.installed);
    free(c.pick.last);
    free(c.certs);
    return rc;
}
