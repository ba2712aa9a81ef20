/* The eIM's view of a device, changed only by verified eUICC results: the profile list
 * (store profiles_json) and the eIM associations (store eims_json).
 * GSMA SGP.32 v1.2 §2.11.2.1 (EuiccResultData: enable/disable/delete results,
 * SGP32-ProfileInfoListResponse, AddEimResult, DeleteEimResult, UpdateEimResult,
 * ListEimResult, set/unsetFallbackAttribute results), SGP.22 v2.5 §5.7.15 (ProfileInfo
 * 'E3': iccid '5A', isdpAid '4F', profileState '9F70', nickname '90', serviceProviderName
 * '91', profileName '92', profileClass '95'), SGP.32 SGP32-ProfileInfo fallbackAttribute
 * '9F26'. JSON shapes: docs/eim-engine.md §6. */
#define _POSIX_C_SOURCE 200809L

#include "eim_engine_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/notif.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- loading and saving the views ---- */

static json_t *load_array(const char *text)
{
    json_t *a = NULL;
    if (text != NULL)
        a = json_loads(text, 0, NULL);
    if (a != NULL && !json_is_array(a)) {
        json_decref(a);
        a = NULL;
    }
    return a != NULL ? a : json_array();
}

enum view { VIEW_PROFILES, VIEW_EIMS };

/* Re-reads the device (the freshest view), lets `fn` edit the array, writes it back. */
typedef int (*edit_fn)(json_t *arr, const void *arg);

static int edit_view(struct pl_eim_engine *eng, const uint8_t eid[PL_EIM_EID_LEN], enum view v,
                     edit_fn fn, const void *arg)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_device d;
    char *text = NULL;
    json_t *arr = NULL;
    memset(&d, 0, sizeof(d));
    rc = pl_eim_store_device_get(eng->store, eid, &d);
    if (rc != PL_OK)
        goto out;
    arr = load_array(v == VIEW_PROFILES ? d.profiles_json : d.eims_json);
    if (arr == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    rc = fn(arr, arg);
    if (rc != PL_OK)
        goto out;
    text = json_dumps(arr, JSON_COMPACT);
    if (text == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    if (v == VIEW_PROFILES) {
        free(d.profiles_json);
        d.profiles_json = text;
    } else {
        free(d.eims_json);
        d.eims_json = text;
    }
    text = NULL;
    rc = pl_eim_store_device_update(eng->store, eng->claimer, &d,
                                    v == VIEW_PROFILES ? PL_EIM_DEV_PROFILES : PL_EIM_DEV_EIMS);
out:
    free(text);
    json_decref(arr);
    pl_eim_device_clear(&d);
    return rc;
}

static json_t *find_by(json_t *arr, const char *key, const char *val, size_t *idx)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(json_object_get(e, key));
        if (s != NULL && strcmp(s, val) == 0) {
            if (idx != NULL)
                *idx = i;
            return e;
        }
    }
    return NULL;
}

/* ---- profiles ---- */

struct profile_change {
    uint8_t event; /* PL_NOTIF_EV_* or one of the pseudo-events below */
    char iccid[21];
};
#define EV_FALLBACK_SET   0x10u
#define EV_FALLBACK_UNSET 0x20u

static int set_str(json_t *o, const char *k, const char *v)
{
    return json_object_set_new(o, k, json_string(v)) == 0 ? PL_OK : PL_ERR_NOMEM;
}

static int set_bool(json_t *o, const char *k, bool v)
{
    return json_object_set_new(o, k, json_boolean(v)) == 0 ? PL_OK : PL_ERR_NOMEM;
}

static int profile_edit(json_t *arr, const void *arg)
{
    const struct profile_change *c = arg;
    size_t idx = 0;
    json_t *p = find_by(arr, "iccid", c->iccid, &idx);
    size_t i;
    json_t *e;
    switch (c->event) {
    case PL_NOTIF_EV_INSTALL:
        if (p != NULL)
            return PL_OK;
        p = json_object();
        if (p == NULL || json_array_append_new(arr, p) != 0)
            return PL_ERR_NOMEM;
        if (set_str(p, "iccid", c->iccid) != PL_OK || set_str(p, "state", "disabled") != PL_OK)
            return PL_ERR_NOMEM;
        return PL_OK;
    case PL_NOTIF_EV_ENABLE:
        /* One enabled profile per eUICC (SGP.22 §2.4.x): enabling one disables the others. */
        json_array_foreach(arr, i, e)
        {
            if (e != p && set_str(e, "state", "disabled") != PL_OK)
                return PL_ERR_NOMEM;
        }
        if (p == NULL) {
            p = json_object();
            if (p == NULL || json_array_append_new(arr, p) != 0
                || set_str(p, "iccid", c->iccid) != PL_OK)
                return PL_ERR_NOMEM;
        }
        return set_str(p, "state", "enabled");
    case PL_NOTIF_EV_DISABLE:
        return p != NULL ? set_str(p, "state", "disabled") : PL_OK;
    case PL_NOTIF_EV_DELETE:
        if (p != NULL && json_array_remove(arr, idx) != 0)
            return PL_ERR_NOMEM;
        return PL_OK;
    case EV_FALLBACK_SET:
        json_array_foreach(arr, i, e)
        {
            if (set_bool(e, "fallback", e == p) != PL_OK)
                return PL_ERR_NOMEM;
        }
        return PL_OK;
    case EV_FALLBACK_UNSET:
        json_array_foreach(arr, i, e)
        {
            if (set_bool(e, "fallback", false) != PL_OK)
                return PL_ERR_NOMEM;
        }
        return PL_OK;
    default:
        return PL_OK;
    }
}

int pl_eimi_state_profile_event(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                                uint8_t event, const uint8_t iccid[PL_SGP32_ICCID_LEN])
{
    struct profile_change c;
    memset(&c, 0, sizeof(c));
    c.event = event;
    if (iccid != NULL)
        pl_iccid_text(iccid, c.iccid);
    return edit_view(eng, dev->eid, VIEW_PROFILES, profile_edit, &c);
}

/* One ProfileInfo 'E3' as a JSON object; unknown members are skipped (extensible). */
static int profile_info(const struct pl_tlv *e3, json_t **out)
{
    struct pl_der d;
    struct pl_tlv f;
    int rc;
    json_t *o = json_object();
    if (o == NULL)
        return PL_ERR_NOMEM;
    pl_der_init(&d, e3->value, e3->len);
    while (!pl_der_done(&d)) {
        if ((rc = pl_der_next(&d, &f)) != PL_OK)
            goto fail;
        char text[65 * 2 + 1];
        int64_t v;
        bool b;
        rc = PL_OK;
        switch (f.tag) {
        case 0x5Au:
            if (f.len != PL_SGP32_ICCID_LEN) {
                rc = PL_ERR_DER_VALUE;
                break;
            }
            pl_iccid_text(f.value, text);
            rc = set_str(o, "iccid", text);
            break;
        case 0x4Fu:
            if (f.len == 0 || f.len > 16 || pl_hex_encode(f.value, f.len, text, sizeof(text)))
                rc = PL_ERR_DER_VALUE;
            else
                rc = set_str(o, "isdpAid", text);
            break;
        case 0x9F70u:
            if ((rc = pl_der_get_int(&f, &v)) == PL_OK)
                rc = set_str(o, "state", v == 1 ? "enabled" : v == 0 ? "disabled" : "unknown");
            break;
        case 0x90u:
        case 0x91u:
        case 0x92u:
            if ((rc = pl_der_get_utf8(&f, text, 65)) == PL_OK)
                rc = set_str(o,
                             f.tag == 0x90u   ? "nickname"
                             : f.tag == 0x91u ? "serviceProviderName"
                                              : "profileName",
                             text);
            break;
        case 0x95u:
            if ((rc = pl_der_get_int(&f, &v)) == PL_OK)
                rc = set_str(o, "profileClass",
                             v == 0   ? "test"
                             : v == 1 ? "provisioning"
                             : v == 2 ? "operational"
                                      : "unknown");
            break;
        case 0x9F26u:
            if ((rc = pl_der_get_bool(&f, &b)) == PL_OK)
                rc = set_bool(o, "fallback", b);
            break;
        default:
            break;
        }
        if (rc != PL_OK)
            goto fail;
    }
    if (json_object_get(o, "iccid") == NULL) {
        rc = PL_ERR_DER_VALUE;
        goto fail;
    }
    *out = o;
    return PL_OK;
fail:
    json_decref(o);
    return rc;
}

struct list_replace {
    const struct pl_sgp32_list *list;
    bool full; /* no search criterion: the list is the whole truth */
};

static int profiles_replace(json_t *arr, const void *arg)
{
    const struct list_replace *lr = arg;
    struct pl_sgp32_iter it;
    struct pl_tlv item;
    json_t *fresh = json_array();
    int rc;
    if (fresh == NULL)
        return PL_ERR_NOMEM;
    pl_sgp32_iter_init(&it, lr->list);
    while ((rc = pl_sgp32_iter_next(&it, &item)) == PL_OK) {
        json_t *o = NULL;
        if (item.tag != 0xE3u) {
            rc = PL_ERR_DER_TAG;
            break;
        }
        if ((rc = profile_info(&item, &o)) != PL_OK)
            break;
        if (json_array_append_new(fresh, o) != 0) {
            rc = PL_ERR_NOMEM;
            break;
        }
    }
    if (rc != PL_ERR_NOT_FOUND) {
        json_decref(fresh);
        return rc;
    }
    if (lr->full) {
        rc =
            json_array_clear(arr) == 0 && json_array_extend(arr, fresh) == 0 ? PL_OK : PL_ERR_NOMEM;
        json_decref(fresh);
        return rc;
    }
    size_t i;
    json_t *e;
    json_array_foreach(fresh, i, e)
    {
        size_t idx = 0;
        const char *iccid = json_string_value(json_object_get(e, "iccid"));
        if (find_by(arr, "iccid", iccid, &idx) != NULL) {
            if (json_array_set(arr, idx, e) != 0) {
                json_decref(fresh);
                return PL_ERR_NOMEM;
            }
        } else if (json_array_append(arr, e) != 0) {
            json_decref(fresh);
            return PL_ERR_NOMEM;
        }
    }
    json_decref(fresh);
    return PL_OK;
}

/* ---- eIM associations ---- */

struct eim_change {
    enum pl_sgp32_eco_kind kind;
    char eim_id[PL_EIM_EIM_ID_MAX + 1];
    bool has_type;
    int64_t type;
    const struct pl_sgp32_euicc_result *list; /* listEim */
};

static int eim_entry(json_t *arr, const char *id, bool has_type, int64_t type)
{
    json_t *o = json_object();
    if (o == NULL || json_array_append_new(arr, o) != 0)
        return PL_ERR_NOMEM;
    if (set_str(o, "eimId", id) != PL_OK)
        return PL_ERR_NOMEM;
    if (has_type && json_object_set_new(o, "eimIdType", json_integer(type)) != 0)
        return PL_ERR_NOMEM;
    return PL_OK;
}

static int eims_edit(json_t *arr, const void *arg)
{
    const struct eim_change *c = arg;
    size_t idx = 0;
    switch (c->kind) {
    case PL_SGP32_ECO_ADD_EIM:
        if (find_by(arr, "eimId", c->eim_id, NULL) != NULL)
            return PL_OK;
        return eim_entry(arr, c->eim_id, c->has_type, c->type);
    case PL_SGP32_ECO_DELETE_EIM:
        if (find_by(arr, "eimId", c->eim_id, &idx) != NULL && json_array_remove(arr, idx) != 0)
            return PL_ERR_NOMEM;
        return PL_OK;
    case PL_SGP32_ECO_LIST_EIM:
        if (json_array_clear(arr) != 0)
            return PL_ERR_NOMEM;
        for (size_t i = 0; i < c->list->n_eims; i++) {
            const struct pl_sgp32_eim_id_info *e = &c->list->eims[i];
            char id[PL_EIM_EIM_ID_MAX + 1];
            if (e->eim_id.len > PL_EIM_EIM_ID_MAX || memchr(e->eim_id.p, 0, e->eim_id.len))
                return PL_ERR_DER_VALUE;
            memcpy(id, e->eim_id.p, e->eim_id.len);
            id[e->eim_id.len] = '\0';
            int rc = eim_entry(arr, id, e->has_eim_id_type, e->eim_id_type);
            if (rc != PL_OK)
                return rc;
        }
        return PL_OK;
    case PL_SGP32_ECO_UPDATE_EIM:
    default:
        return PL_OK;
    }
}

static int buf_text(struct pl_sgp32_buf b, char *out, size_t cap)
{
    if (b.p == NULL || b.len >= cap || memchr(b.p, 0, b.len) != NULL)
        return PL_ERR_DER_VALUE;
    memcpy(out, b.p, b.len);
    out[b.len] = '\0';
    return PL_OK;
}

/* deleteEim of this eIM's own association ends it; updateEim of it may set a new token. */
static int own_association(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                           const struct pl_sgp32_eco *eco, const char *eim_id)
{
    const char *own = dev->eim_id != NULL ? dev->eim_id : eng->eim_id;
    if (strcmp(own, eim_id) != 0)
        return PL_OK;
    struct pl_eim_device d;
    memset(&d, 0, sizeof(d));
    int rc = pl_eim_store_device_get(eng->store, dev->eid, &d);
    if (rc != PL_OK)
        return rc;
    if (eco->kind == PL_SGP32_ECO_DELETE_EIM) {
        free(d.eim_id);
        d.eim_id = NULL;
        d.has_assoc_token = false;
        d.assoc_token = 0;
    } else if (eco->eim_config.has_association_token && eco->eim_config.association_token >= 0) {
        d.has_assoc_token = true;
        d.assoc_token = eco->eim_config.association_token;
    } else {
        pl_eim_device_clear(&d);
        return PL_OK;
    }
    rc = pl_eim_store_device_update(eng->store, eng->claimer, &d, PL_EIM_DEV_ASSOCIATION);
    pl_eim_device_clear(&d);
    return rc;
}

int pl_eimi_state_apply(struct pl_eim_engine *eng, const struct pl_eim_device *dev,
                        const struct pl_sgp32_euicc_package *pkg, size_t index,
                        const struct pl_sgp32_euicc_result *res)
{
    if (pkg->kind == PL_SGP32_PACKAGE_ECO) {
        const struct pl_sgp32_eco *eco = &pkg->eco[index];
        struct eim_change c;
        int rc;
        memset(&c, 0, sizeof(c));
        c.kind = eco->kind;
        switch (eco->kind) {
        case PL_SGP32_ECO_ADD_EIM:
        case PL_SGP32_ECO_UPDATE_EIM:
            if ((rc = buf_text(eco->eim_config.eim_id, c.eim_id, sizeof(c.eim_id))))
                return rc;
            c.has_type = eco->eim_config.has_eim_id_type;
            c.type = eco->eim_config.eim_id_type;
            break;
        case PL_SGP32_ECO_DELETE_EIM:
            if ((rc = buf_text(eco->delete_eim_id, c.eim_id, sizeof(c.eim_id))))
                return rc;
            break;
        case PL_SGP32_ECO_LIST_EIM:
        default:
            c.list = res;
            break;
        }
        if ((rc = edit_view(eng, dev->eid, VIEW_EIMS, eims_edit, &c)) != PL_OK)
            return rc;
        if (eco->kind == PL_SGP32_ECO_DELETE_EIM || eco->kind == PL_SGP32_ECO_UPDATE_EIM)
            return own_association(eng, dev, eco, c.eim_id);
        return PL_OK;
    }
    const struct pl_sgp32_psmo *op = &pkg->psmo[index];
    switch (op->kind) {
    case PL_SGP32_PSMO_ENABLE:
        return pl_eimi_state_profile_event(eng, dev, PL_NOTIF_EV_ENABLE, op->enable.iccid);
    case PL_SGP32_PSMO_DISABLE:
        return pl_eimi_state_profile_event(eng, dev, PL_NOTIF_EV_DISABLE, op->profile.iccid);
    case PL_SGP32_PSMO_DELETE:
        return pl_eimi_state_profile_event(eng, dev, PL_NOTIF_EV_DELETE, op->profile.iccid);
    case PL_SGP32_PSMO_SET_FALLBACK_ATTRIBUTE:
        return pl_eimi_state_profile_event(eng, dev, EV_FALLBACK_SET, op->profile.iccid);
    case PL_SGP32_PSMO_UNSET_FALLBACK_ATTRIBUTE:
        return pl_eimi_state_profile_event(eng, dev, EV_FALLBACK_UNSET, NULL);
    case PL_SGP32_PSMO_LIST_PROFILE_INFO: {
        struct list_replace lr = {&res->list, op->list_profile_info.search == PL_SGP32_SEARCH_NONE};
        return edit_view(eng, dev->eid, VIEW_PROFILES, profiles_replace, &lr);
    }
    case PL_SGP32_PSMO_GET_RAT:
    case PL_SGP32_PSMO_CONFIGURE_IMMEDIATE_ENABLE:
    case PL_SGP32_PSMO_SET_DEFAULT_DP_ADDRESS:
    default:
        return PL_OK;
    }
}
