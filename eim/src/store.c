/* The eIM store's generic layer: argument checks, the counter guard around every
 * reservation, bearer tokens (only hashes are stored; constant-time comparison), and the
 * name tables. Backends: store_sql.c over store_sqlite.c / store_pg.c.
 * GSMA SGP.32 v1.2 §2.11.1.1 (counterValue), §2.11.1 (eCO/PSMO names), §5.14
 * (IpaEuiccDataRequest), ProfileDownloadTriggerRequest; ARCHITECTURE.md §5 (counters);
 * reference/EIM.md §1.7; docs/eim-store.md; docs/decisions/0011-eim-counter-floor.md. */
#define _POSIX_C_SOURCE 200809L
#include "provline/eim/store.h"

#include "provline/eim/counter_guard.h"
#include "provline/protocol/crypto.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/secret.h"
#include "store_sql.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pl_eim_store {
    const char *name;
    const struct pl_eim_store_ops *ops;
    void *impl;
    struct pl_eim_guard *guard; /* NULL only with allow_unguarded */
    uint8_t store_id[PL_EIM_STORE_ID_LEN];
    uint32_t counter_max;
    bool needs_recovery; /* opened for_recovery over a restored database */
};

/* ---- names ---- */

static const char *const kind_names[PL_EIM_OP_KIND_MAX + 1] = {
    [PL_EIM_OP_ENABLE] = "enable",
    [PL_EIM_OP_DISABLE] = "disable",
    [PL_EIM_OP_DELETE] = "delete",
    [PL_EIM_OP_LIST_PROFILE_INFO] = "listProfileInfo",
    [PL_EIM_OP_GET_RAT] = "getRAT",
    [PL_EIM_OP_CONFIGURE_IMMEDIATE_ENABLE] = "configureImmediateEnable",
    [PL_EIM_OP_SET_FALLBACK_ATTRIBUTE] = "setFallbackAttribute",
    [PL_EIM_OP_UNSET_FALLBACK_ATTRIBUTE] = "unsetFallbackAttribute",
    [PL_EIM_OP_SET_DEFAULT_DP_ADDRESS] = "setDefaultDpAddress",
    [PL_EIM_OP_ADD_EIM] = "addEim",
    [PL_EIM_OP_UPDATE_EIM] = "updateEim",
    [PL_EIM_OP_DELETE_EIM] = "deleteEim",
    [PL_EIM_OP_LIST_EIM] = "listEim",
    [PL_EIM_OP_IPA_EUICC_DATA_REQUEST] = "ipaEuiccDataRequest",
    [PL_EIM_OP_PROFILE_DOWNLOAD_TRIGGER] = "profileDownloadTrigger",
};

const char *pl_eim_op_kind_name(enum pl_eim_op_kind k)
{
    if ((int)k < 1 || (int)k > PL_EIM_OP_KIND_MAX)
        return NULL;
    return kind_names[k];
}

int pl_eim_op_kind_from_name(const char *s, enum pl_eim_op_kind *out)
{
    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    for (int k = 1; k <= PL_EIM_OP_KIND_MAX; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (enum pl_eim_op_kind)k;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

bool pl_eim_op_kind_is_signed(enum pl_eim_op_kind k)
{
    return (int)k >= PL_EIM_OP_ENABLE && (int)k <= PL_EIM_OP_LIST_EIM;
}

static const char *const state_names[] = {
    [PL_EIM_OPS_QUEUED] = "queued", [PL_EIM_OPS_CLAIMED] = "claimed",
    [PL_EIM_OPS_SENT] = "sent",     [PL_EIM_OPS_DONE] = "done",
    [PL_EIM_OPS_FAILED] = "failed", [PL_EIM_OPS_REQUERY] = "requery",
};

const char *pl_eim_op_state_name(enum pl_eim_op_state s)
{
    if ((int)s < PL_EIM_OPS_QUEUED || (int)s > PL_EIM_OPS_REQUERY)
        return NULL;
    return state_names[s];
}

int pl_eim_op_state_from_name(const char *s, enum pl_eim_op_state *out)
{
    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    for (int k = PL_EIM_OPS_QUEUED; k <= PL_EIM_OPS_REQUERY; k++) {
        if (strcmp(s, state_names[k]) == 0) {
            *out = (enum pl_eim_op_state)k;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

static const char *const role_names[] = {
    [PL_EIM_ROLE_READER] = "reader",
    [PL_EIM_ROLE_STATION] = "station",
    [PL_EIM_ROLE_OPERATOR] = "operator",
    [PL_EIM_ROLE_ADMIN] = "admin",
};

const char *pl_eim_role_name(enum pl_eim_role r)
{
    if ((int)r < PL_EIM_ROLE_READER || (int)r > PL_EIM_ROLE_ADMIN)
        return NULL;
    return role_names[r];
}

int pl_eim_role_from_name(const char *s, enum pl_eim_role *out)
{
    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    for (int k = PL_EIM_ROLE_READER; k <= PL_EIM_ROLE_ADMIN; k++) {
        if (strcmp(s, role_names[k]) == 0) {
            *out = (enum pl_eim_role)k;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

/* ---- owned structs ---- */

void pl_eim_device_clear(struct pl_eim_device *d)
{
    if (d == NULL)
        return;
    free(d->euicc_cert);
    free(d->eum_cert);
    free(d->eim_id);
    free(d->psk_identity);
    if (d->psk_key != NULL)
        pl_memzero(d->psk_key, d->psk_key_len);
    free(d->psk_key);
    free(d->profiles_json);
    free(d->eims_json);
    memset(d, 0, sizeof(*d));
}

void pl_eim_op_clear(struct pl_eim_op *op)
{
    if (op == NULL)
        return;
    free(op->params);
    free(op->created_by);
    free(op->claimed_by);
    free(op->package);
    free(op->result);
    free(op->outcome);
    memset(op, 0, sizeof(*op));
}

void pl_eim_notification_clear(struct pl_eim_notification *n)
{
    if (n == NULL)
        return;
    free(n->data);
    memset(n, 0, sizeof(*n));
}

unsigned pl_eim_store_bucket(const uint8_t eid[PL_EIM_EID_LEN])
{
    /* FNV-1a over the EID, folded to 8 bits: EIDs of one EUM range differ mostly in
     * their last digits, and every byte moves the hash. Stable forever: it is stored. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < PL_EIM_EID_LEN; i++) {
        h ^= eid[i];
        h *= 16777619u;
    }
    return (unsigned)((h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) & 0xFFu);
}

/* ---- checks ---- */

static bool name_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '.' || c == '_' || c == '-' || c == '@';
        if (!ok || n >= PL_EIM_NAME_MAX)
            return false;
    }
    return n > 0;
}

static bool text_ok(const char *s, size_t min, size_t max)
{
    size_t n;
    if (s == NULL)
        return min == 0;
    n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return false; /* no control characters in stored identifiers */
    }
    return true;
}

static bool blob_ok(const uint8_t *p, size_t len, size_t max)
{
    return (p == NULL && len == 0) || (p != NULL && len <= max);
}

static int check_device(const struct pl_eim_store *s, const struct pl_eim_device *d,
                        unsigned fields)
{
    if (d == NULL)
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_CERTS)
        && (!blob_ok(d->euicc_cert, d->euicc_cert_len, PL_EIM_CERT_MAX)
            || !blob_ok(d->eum_cert, d->eum_cert_len, PL_EIM_CERT_MAX)))
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_ASSOCIATION) && !text_ok(d->eim_id, 0, PL_EIM_EIM_ID_MAX))
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_ASSOCIATION) && d->eim_id != NULL && d->eim_id[0] == '\0')
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_CREDENTIALS)
        && (!text_ok(d->psk_identity, 0, PL_EIM_PSK_ID_MAX)
            || (d->psk_identity != NULL && d->psk_identity[0] == '\0')
            || !blob_ok(d->psk_key, d->psk_key_len, PL_EIM_PSK_KEY_MAX)
            || (d->psk_key != NULL && d->psk_key_len == 0)))
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_PROFILES) && d->profiles_json != NULL
        && strlen(d->profiles_json) > PL_EIM_BLOB_MAX)
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_EIMS) && d->eims_json != NULL
        && strlen(d->eims_json) > PL_EIM_BLOB_MAX)
        return PL_ERR_INVAL;
    if ((fields & PL_EIM_DEV_LAST_SEEN) && d->last_seen_ms < 0)
        return PL_ERR_INVAL;
    if (s != NULL && d->counter > s->counter_max)
        return PL_ERR_INVAL;
    return PL_OK;
}

#define ALL_FIELDS 0x3Fu

/* ---- open / close ---- */

static int64_t realtime_ms(void *user)
{
    struct timespec ts;
    (void)user;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pl_eim_store_options_defaults(const struct pl_eim_store_options *in,
                                   struct pl_eim_store_options *out)
{
    memset(out, 0, sizeof(*out));
    if (in != NULL)
        *out = *in;
    if (out->now == NULL) {
        out->now = realtime_ms;
        out->now_user = NULL;
    }
    if (out->counter_max == 0 || out->counter_max > PL_EIM_COUNTER_LIMIT)
        out->counter_max = PL_EIM_COUNTER_DEFAULT_MAX;
    if (out->busy_timeout_ms <= 0)
        out->busy_timeout_ms = 10000;
    if (out->guard_block == 0)
        out->guard_block = PL_EIM_GUARD_DEFAULT_BLOCK;
}

/* A bucket whose sequence is below this guard's high-water mark may have lost a
 * reservation that was admitted but never committed (a crash, a rollback), or the database
 * was restored within one guard block: either way its counters are moved past the mark
 * (decision 0011). With the default block of 1 this is at most one value, and nothing after
 * a clean run. */
static int settle(struct pl_eim_store *s, uint64_t seq[PL_EIM_GUARD_BUCKETS])
{
    uint64_t hwm[PL_EIM_GUARD_BUCKETS], bumped = 0;
    bool behind = false;
    int rc = pl_eim_guard_read_hwm_of(s->guard, s->store_id, hwm);
    if (rc != PL_OK)
        return rc;
    for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS && !behind; b++)
        behind = seq[b] < hwm[b];
    if (!behind)
        return PL_OK;
    if ((rc = s->ops->counter_recover(s->impl, "store.open", hwm, &bumped)) != PL_OK)
        return rc;
    if ((rc = s->ops->bucket_seqs(s->impl, seq)) != PL_OK)
        return rc;
    return pl_eim_guard_raise(s->guard, s->store_id, seq);
}

int pl_eim_store_wrap(const char *name, const struct pl_eim_store_ops *ops, void *impl,
                      const struct pl_eim_store_options *opt, struct pl_eim_store **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_eim_store *s = NULL;
    struct pl_eim_store_options o;
    char id_hex[33];
    size_t id_len = 0;
    uint64_t seq[PL_EIM_GUARD_BUCKETS];

    if (ops == NULL || impl == NULL || out == NULL) {
        if (ops != NULL && impl != NULL)
            ops->close(impl);
        return PL_ERR_INVAL;
    }
    *out = NULL;
    pl_eim_store_options_defaults(opt, &o);
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ops->close(impl);
        return PL_ERR_NOMEM;
    }
    s->name = name ? name : ops->name;
    s->ops = ops;
    s->impl = impl;
    s->counter_max = o.counter_max;
    if ((rc = ops->store_id(impl, id_hex)) != PL_OK)
        goto out;
    if ((rc = pl_hex_decode(id_hex, s->store_id, sizeof(s->store_id), &id_len)) != PL_OK
        || id_len != PL_EIM_STORE_ID_LEN) {
        rc = PL_ERR_DB;
        goto out;
    }
    if (o.guard_path == NULL) {
        rc = o.allow_unguarded ? PL_OK : PL_ERR_CONFIG;
        if (rc != PL_OK)
            goto out;
    } else {
        if ((rc = ops->bucket_seqs(impl, seq)) != PL_OK)
            goto out;
        if ((rc = pl_eim_guard_open(o.guard_path, o.guard_block, &s->guard)) != PL_OK)
            goto out;
        rc = pl_eim_guard_bind(s->guard, s->store_id, seq, o.guard_create);
        if ((rc == PL_ERR_REPLAY || rc == PL_ERR_CONFIG) && o.for_recovery) {
            s->needs_recovery = true;
            rc = PL_OK;
        }
        if (rc != PL_OK)
            goto out;
        if (!s->needs_recovery && (rc = settle(s, seq)) != PL_OK)
            goto out;
    }
    *out = s;
    s = NULL;
    rc = PL_OK;
out:
    pl_eim_store_close(s);
    return rc;
}

void pl_eim_store_close(struct pl_eim_store *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    pl_eim_guard_free(s->guard);
    free(s);
}

const char *pl_eim_store_backend(const struct pl_eim_store *s)
{
    return s ? s->name : "";
}

const char *pl_eim_store_last_error(const struct pl_eim_store *s)
{
    const char *m = NULL;
    if (s == NULL || s->ops->last_error == NULL)
        return "";
    m = s->ops->last_error(s->impl);
    return m ? m : "";
}

int pl_eim_store_id(struct pl_eim_store *s, char out[33])
{
    if (s == NULL || out == NULL)
        return PL_ERR_INVAL;
    return pl_hex_encode(s->store_id, sizeof(s->store_id), out, 33);
}

/* ---- registry ---- */

int pl_eim_store_device_put(struct pl_eim_store *s, const char *actor,
                            const struct pl_eim_device *d)
{
    int rc;
    if (s == NULL || (rc = check_device(s, d, ALL_FIELDS)) != PL_OK)
        return PL_ERR_INVAL;
    return s->ops->device_put(s->impl, actor, d);
}

int pl_eim_store_device_put_many(struct pl_eim_store *s, const char *actor,
                                 const struct pl_eim_device *d, size_t n,
                                 enum pl_eim_put_result *results)
{
    if (s == NULL || (n > 0 && (d == NULL || results == NULL)))
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (check_device(s, &d[i], ALL_FIELDS) != PL_OK)
            return PL_ERR_INVAL;
    }
    if (n == 0)
        return PL_OK;
    return s->ops->device_put_many(s->impl, actor, d, n, results);
}

int pl_eim_store_device_get(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                            struct pl_eim_device *out)
{
    if (s == NULL || eid == NULL || out == NULL)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s->ops->device_get(s->impl, eid, out);
}

int pl_eim_store_device_find_psk(struct pl_eim_store *s, const char *identity,
                                 struct pl_eim_device *out)
{
    if (s == NULL || out == NULL || !text_ok(identity, 1, PL_EIM_PSK_ID_MAX))
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s->ops->device_find_psk(s->impl, identity, out);
}

int pl_eim_store_device_update(struct pl_eim_store *s, const char *actor,
                               const struct pl_eim_device *d, unsigned fields)
{
    if (s == NULL || fields == 0 || (fields & ~ALL_FIELDS) != 0
        || check_device(NULL, d, fields) != PL_OK)
        return PL_ERR_INVAL;
    return s->ops->device_update(s->impl, actor, d, fields);
}

int pl_eim_store_device_delete(struct pl_eim_store *s, const char *actor,
                               const uint8_t eid[PL_EIM_EID_LEN])
{
    if (s == NULL || eid == NULL)
        return PL_ERR_INVAL;
    return s->ops->device_delete(s->impl, actor, eid);
}

int pl_eim_store_device_list(struct pl_eim_store *s, const uint8_t *after_eid,
                             struct pl_eim_device_summary *out, size_t cap, size_t *n)
{
    if (s == NULL || n == NULL || (cap > 0 && out == NULL) || cap > INT32_MAX)
        return PL_ERR_INVAL;
    *n = 0;
    if (cap == 0)
        return PL_OK;
    return s->ops->device_list(s->impl, after_eid, out, cap, n);
}

/* ---- counters ---- */

int pl_eim_store_reserve_counter(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                                 uint32_t *out)
{
    if (s == NULL || eid == NULL || out == NULL)
        return PL_ERR_INVAL;
    if (s->needs_recovery)
        return PL_ERR_REPLAY;
    return s->ops->reserve_counter(s->impl, eid, pl_eim_store_bucket(eid), s->counter_max, s->guard,
                                   out);
}

int pl_eim_store_counter_recover(struct pl_eim_store *s, const char *actor,
                                 const char *const *guard_paths, size_t n, uint64_t *bumped)
{
    int rc = PL_ERR_INTERNAL;
    uint64_t hwm[PL_EIM_GUARD_BUCKETS], other[PL_EIM_GUARD_BUCKETS], seq[PL_EIM_GUARD_BUCKETS];
    size_t sources = 0;

    if (s == NULL || bumped == NULL || (n > 0 && guard_paths == NULL) || s->guard == NULL)
        return PL_ERR_INVAL;
    *bumped = 0;
    memset(hwm, 0, sizeof(hwm));
    /* Our own guard (absent if it was lost) and every other node's. */
    for (size_t i = 0; i <= n; i++) {
        const char *path = NULL;
        if (i == 0) {
            rc = PL_ERR_NOT_FOUND;
            if (s->guard != NULL)
                rc = pl_eim_guard_read_hwm_of(s->guard, s->store_id, other);
        } else {
            path = guard_paths[i - 1];
            rc = pl_eim_guard_read_hwm(path, s->store_id, other);
        }
        if (rc == PL_ERR_NOT_FOUND && i == 0)
            continue;
        if (rc != PL_OK)
            return rc;
        sources++;
        for (unsigned b = 0; b < PL_EIM_GUARD_BUCKETS; b++) {
            if (other[b] > hwm[b])
                hwm[b] = other[b];
        }
    }
    if (sources == 0)
        return PL_ERR_CONFIG; /* no guard at all: nothing bounds the lost reservations */
    if ((rc = s->ops->counter_recover(s->impl, actor, hwm, bumped)) != PL_OK)
        return rc;
    if ((rc = s->ops->bucket_seqs(s->impl, seq)) != PL_OK)
        return rc;
    if ((rc = pl_eim_guard_raise(s->guard, s->store_id, seq)) != PL_OK)
        return rc;
    s->needs_recovery = false;
    return PL_OK;
}

/* ---- operations ---- */

int pl_eim_store_op_enqueue(struct pl_eim_store *s, const char *actor, const struct pl_eim_op *op,
                            int64_t *id)
{
    if (s == NULL || op == NULL || id == NULL || pl_eim_op_kind_name(op->kind) == NULL
        || !blob_ok(op->params, op->params_len, PL_EIM_BLOB_MAX)
        || (actor != NULL && !name_ok(actor)))
        return PL_ERR_INVAL;
    return s->ops->op_enqueue(s->impl, actor, op, id);
}

int pl_eim_store_op_get(struct pl_eim_store *s, int64_t id, struct pl_eim_op *out)
{
    if (s == NULL || out == NULL || id <= 0)
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s->ops->op_get(s->impl, id, out);
}

int pl_eim_store_op_list(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                         unsigned state_mask, struct pl_eim_op_summary *out, size_t cap, size_t *n)
{
    if (s == NULL || eid == NULL || n == NULL || (cap > 0 && out == NULL) || cap > INT32_MAX
        || (state_mask & ~0x7Eu) != 0)
        return PL_ERR_INVAL;
    *n = 0;
    if (cap == 0)
        return PL_OK;
    return s->ops->op_list(s->impl, eid, state_mask, out, cap, n);
}

int pl_eim_store_op_claim(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                          const char *claimer, struct pl_eim_op *out)
{
    if (s == NULL || eid == NULL || out == NULL || !name_ok(claimer))
        return PL_ERR_INVAL;
    memset(out, 0, sizeof(*out));
    return s->ops->op_claim(s->impl, eid, claimer, out);
}

int pl_eim_store_op_release(struct pl_eim_store *s, int64_t id, const char *claimer)
{
    if (s == NULL || id <= 0 || !name_ok(claimer))
        return PL_ERR_INVAL;
    return s->ops->op_release(s->impl, id, claimer);
}

int pl_eim_store_op_mark_sent(struct pl_eim_store *s, int64_t id, const char *claimer,
                              const struct pl_eim_op *sent)
{
    if (s == NULL || id <= 0 || sent == NULL || !name_ok(claimer)
        || sent->txid_len > PL_EIM_TXID_MAX || sent->package == NULL || sent->package_len == 0
        || sent->package_len > PL_EIM_BLOB_MAX
        || (sent->has_counter && (sent->counter == 0 || sent->counter > s->counter_max)))
        return PL_ERR_INVAL;
    return s->ops->op_mark_sent(s->impl, id, claimer, sent);
}

int pl_eim_store_op_finish(struct pl_eim_store *s, const char *actor, int64_t id,
                           enum pl_eim_op_state to, const uint8_t *result, size_t result_len,
                           const char *outcome)
{
    if (s == NULL || id <= 0
        || (to != PL_EIM_OPS_DONE && to != PL_EIM_OPS_FAILED && to != PL_EIM_OPS_REQUERY)
        || !blob_ok(result, result_len, PL_EIM_BLOB_MAX) || !text_ok(outcome, 0, 128))
        return PL_ERR_INVAL;
    return s->ops->op_finish(s->impl, actor, id, to, result, result_len, outcome);
}

/* ---- notifications ---- */

int pl_eim_store_notif_put(struct pl_eim_store *s, const struct pl_eim_notification *n,
                           bool *inserted)
{
    if (s == NULL || n == NULL || inserted == NULL || n->data == NULL || n->len == 0
        || n->len > PL_EIM_BLOB_MAX || n->seq > PL_EIM_COUNTER_LIMIT)
        return PL_ERR_INVAL;
    return s->ops->notif_put(s->impl, n, inserted);
}

int pl_eim_store_notif_ack(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN], uint32_t seq)
{
    if (s == NULL || eid == NULL)
        return PL_ERR_INVAL;
    return s->ops->notif_ack(s->impl, eid, seq);
}

int pl_eim_store_notif_list(struct pl_eim_store *s, const uint8_t eid[PL_EIM_EID_LEN],
                            bool unacked_only, struct pl_eim_notification *out, size_t cap,
                            size_t *n)
{
    if (s == NULL || eid == NULL || n == NULL || (cap > 0 && out == NULL) || cap > INT32_MAX)
        return PL_ERR_INVAL;
    *n = 0;
    if (cap == 0)
        return PL_OK;
    return s->ops->notif_list(s->impl, eid, unacked_only, out, cap, n);
}

/* ---- operators and tokens ---- */

#define TOKEN_PREFIX     "pleim_"
#define TOKEN_PREFIX_LEN 6u
#define TOKEN_SECRET_LEN 32u
#define TOKEN_B64_LEN    43u /* base64url of 32 bytes, unpadded */
#define TOKEN_LEN        (TOKEN_PREFIX_LEN + PL_EIM_TOKEN_ID_LEN + 1u + TOKEN_B64_LEN)

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rem = n - i;
        if (rem > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rem > 2)
            v |= in[i + 2];
        out[o++] = b64url[(v >> 18) & 63u];
        out[o++] = b64url[(v >> 12) & 63u];
        if (rem > 1)
            out[o++] = b64url[(v >> 6) & 63u];
        if (rem > 2)
            out[o++] = b64url[v & 63u];
    }
    out[o] = '\0';
}

int pl_eim_store_operator_put(struct pl_eim_store *s, const char *actor, const char *name,
                              enum pl_eim_role role)
{
    if (s == NULL || !name_ok(name) || pl_eim_role_name(role) == NULL)
        return PL_ERR_INVAL;
    return s->ops->operator_put(s->impl, actor, name, role);
}

int pl_eim_store_token_create(struct pl_eim_store *s, const char *actor, const char *operator_name,
                              char *token, size_t cap)
{
    int rc = PL_ERR_INTERNAL;
    uint8_t rnd[8 + TOKEN_SECRET_LEN];
    uint8_t hash[PL_SHA256_LEN];
    char id[PL_EIM_TOKEN_ID_LEN + 1];

    if (s == NULL || !name_ok(operator_name) || token == NULL || cap < PL_EIM_TOKEN_MAX)
        return PL_ERR_INVAL;
    if ((rc = pl_rng_system_fill(NULL, rnd, sizeof(rnd))) != PL_OK)
        goto out;
    if ((rc = pl_hex_encode(rnd, 8, id, sizeof(id))) != PL_OK)
        goto out;
    memcpy(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    memcpy(token + TOKEN_PREFIX_LEN, id, PL_EIM_TOKEN_ID_LEN);
    token[TOKEN_PREFIX_LEN + PL_EIM_TOKEN_ID_LEN] = '_';
    b64url_encode(rnd + 8, TOKEN_SECRET_LEN, token + TOKEN_PREFIX_LEN + PL_EIM_TOKEN_ID_LEN + 1);
    if ((rc = pl_sha256(token, TOKEN_LEN, hash)) != PL_OK)
        goto out;
    rc = s->ops->token_put(s->impl, actor, operator_name, id, hash);
out:
    pl_memzero(rnd, sizeof(rnd));
    if (rc != PL_OK)
        pl_memzero(token, cap);
    return rc;
}

/* The id part of a well-formed token, or PL_ERR_DENIED. */
static int token_split(const char *token, char id[PL_EIM_TOKEN_ID_LEN + 1])
{
    size_t n = 0;
    if (token == NULL)
        return PL_ERR_DENIED;
    n = strnlen(token, TOKEN_LEN + 1);
    if (n != TOKEN_LEN || memcmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0
        || token[TOKEN_PREFIX_LEN + PL_EIM_TOKEN_ID_LEN] != '_')
        return PL_ERR_DENIED;
    for (size_t i = 0; i < PL_EIM_TOKEN_ID_LEN; i++) {
        char c = token[TOKEN_PREFIX_LEN + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return PL_ERR_DENIED;
        id[i] = c;
    }
    id[PL_EIM_TOKEN_ID_LEN] = '\0';
    for (size_t i = TOKEN_PREFIX_LEN + PL_EIM_TOKEN_ID_LEN + 1; i < TOKEN_LEN; i++) {
        if (strchr(b64url, token[i]) == NULL)
            return PL_ERR_DENIED;
    }
    return PL_OK;
}

int pl_eim_store_token_auth(struct pl_eim_store *s, const char *token, struct pl_eim_operator *op)
{
    int rc = PL_ERR_INTERNAL;
    char id[PL_EIM_TOKEN_ID_LEN + 1];
    uint8_t stored[PL_SHA256_LEN], presented[PL_SHA256_LEN];

    if (s == NULL || op == NULL)
        return PL_ERR_INVAL;
    memset(op, 0, sizeof(*op));
    if ((rc = token_split(token, id)) != PL_OK)
        return PL_ERR_DENIED;
    if ((rc = pl_sha256(token, TOKEN_LEN, presented)) != PL_OK)
        return rc;
    rc = s->ops->token_lookup(s->impl, id, op, stored);
    if (rc == PL_ERR_NOT_FOUND) {
        memset(op, 0, sizeof(*op));
        return PL_ERR_DENIED;
    }
    if (rc != PL_OK)
        return rc; /* a database failure is not an authentication failure */
    if (!pl_ct_equal(stored, presented, PL_SHA256_LEN)) {
        memset(op, 0, sizeof(*op));
        return PL_ERR_DENIED;
    }
    return PL_OK;
}

int pl_eim_store_token_revoke(struct pl_eim_store *s, const char *actor, const char *token_id)
{
    char id[PL_EIM_TOKEN_ID_LEN + 1];
    if (s == NULL || token_id == NULL)
        return PL_ERR_INVAL;
    if (token_split(token_id, id) != PL_OK) {
        size_t n = strlen(token_id);
        if (n != PL_EIM_TOKEN_ID_LEN)
            return PL_ERR_INVAL;
        for (size_t i = 0; i < n; i++) {
            char c = token_id[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                return PL_ERR_INVAL;
        }
        memcpy(id, token_id, n + 1);
    }
    return s->ops->token_revoke(s->impl, actor, id);
}

int pl_eim_store_audit_list(struct pl_eim_store *s, int64_t after_id, struct pl_eim_audit *out,
                            size_t cap, size_t *n)
{
    if (s == NULL || n == NULL || (cap > 0 && out == NULL) || cap > INT32_MAX)
        return PL_ERR_INVAL;
    *n = 0;
    if (cap == 0)
        return PL_OK;
    return s->ops->audit_list(s->impl, after_id, out, cap, n);
}
