/* The IPA object: configuration, lifecycle, the log line, the poll schedule (bounded
 * exponential back-off after noEimPackageAvailable, reset when work arrives) and the set of
 * sequence numbers awaiting an eIM acknowledgement.
 * Sources: GSMA SGP.32 v1.2 §3.1.1.1 (eIM Package Retrieval: the IPA polls; the polling
 * policy is the device's), §2.11.1.4 (EimAcknowledgements); reference/EIM.md §2.3 (back-off
 * after noEimPackageAvailable), STYLE.md §7.3 rules 6 and 9. */
#include "ipa_internal.h"
#include "provline/protocol/hex.h"
#include "provline/protocol/sgp32_eim_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pl_ipa_config_init(struct pl_ipa_config *c)
{
    memset(c, 0, sizeof(*c));
}

int pl_ipa_new(const struct pl_ipa_config *cfg, struct pl_ipa **out)
{
    int rc = PL_ERR_INTERNAL;
    struct pl_ipa *ipa = NULL;

    if (out == NULL)
        return PL_ERR_INVAL;
    *out = NULL;
    if (cfg == NULL || cfg->apdu.transmit == NULL || cfg->transport.post == NULL
        || cfg->mss > PL_ES10_MSS_MAX || cfg->timeout_ms < 0
        || (cfg->device_info == NULL && cfg->device_info_len != 0))
        return PL_ERR_INVAL;
    ipa = calloc(1, sizeof(*ipa));
    if (ipa == NULL)
        return PL_ERR_NOMEM;
    ipa->cfg = *cfg;
    if (ipa->cfg.mss == 0)
        ipa->cfg.mss = PL_ES10_MSS_DEFAULT;
    if (ipa->cfg.timeout_ms == 0)
        ipa->cfg.timeout_ms = PL_IPA_TIMEOUT_DEFAULT_MS;
    if (ipa->cfg.clock.now_ms == NULL)
        ipa->cfg.clock = PL_CLOCK_REALTIME;
    if (ipa->cfg.backoff_min_ms == 0)
        ipa->cfg.backoff_min_ms = PL_IPA_BACKOFF_MIN_DEFAULT_MS;
    if (ipa->cfg.backoff_max_ms == 0)
        ipa->cfg.backoff_max_ms = PL_IPA_BACKOFF_MAX_DEFAULT_MS;
    if (ipa->cfg.max_delivery_attempts == 0)
        ipa->cfg.max_delivery_attempts = PL_IPA_DELIVERY_ATTEMPTS_DEFAULT;
    if (!ipa->cfg.ipa_protocols_set)
        ipa->cfg.ipa_protocols = PL_SGP32_PROTO_RETRIEVE_COAPS;
    ipa->cfg.state_path = NULL;
    pl_ipa_state_init(&ipa->st);
    if (ipa->cfg.backoff_min_ms > ipa->cfg.backoff_max_ms) {
        rc = PL_ERR_INVAL;
        goto out;
    }
    if (cfg->state_path != NULL) {
        size_t n = strlen(cfg->state_path);
        if (n == 0) {
            rc = PL_ERR_INVAL;
            goto out;
        }
        ipa->state_path = malloc(n + 1);
        if (ipa->state_path == NULL) {
            rc = PL_ERR_NOMEM;
            goto out;
        }
        memcpy(ipa->state_path, cfg->state_path, n + 1);
        rc = pl_ipa_state_read(ipa->state_path, &ipa->st);
        if (rc == PL_ERR_NOT_FOUND) {
            pl_ipa_state_free(&ipa->st);
            pl_ipa_state_init(&ipa->st);
        } else if (rc != PL_OK) {
            goto out;
        }
    }
    *out = ipa;
    ipa = NULL;
    rc = PL_OK;
out:
    pl_ipa_free(ipa);
    return rc;
}

void pl_ipa_free(struct pl_ipa *ipa)
{
    if (ipa == NULL)
        return;
    pl_ipa_state_free(&ipa->st);
    free(ipa->state_path);
    free(ipa);
}

void pl_ipa_log(const struct pl_ipa *ipa, enum pl_ipa_log_level level, const char *fmt, ...)
{
    char msg[512], line[600], eid[2 * PL_SGP32_EID_LEN + 1] = "-";
    va_list ap;

    if (ipa->cfg.log == NULL)
        return;
    if (ipa->st.has_eid && pl_hex_encode(ipa->st.eid, PL_SGP32_EID_LEN, eid, sizeof(eid)) != PL_OK)
        snprintf(eid, sizeof(eid), "?");
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(line, sizeof(line), "ipa(%s){%s}: %s", eid,
             ipa->st.in_flight     ? "IN_FLIGHT"
             : ipa->st.has_pending ? "RESULT_PENDING"
                                   : "IDLE",
             msg);
    ipa->cfg.log(ipa->cfg.log_user, level, line);
}

uint64_t pl_ipa_now(const struct pl_ipa *ipa)
{
    return pl_clock_now_ms(&ipa->cfg.clock);
}

void pl_ipa_schedule(struct pl_ipa *ipa, bool work)
{
    uint64_t now = pl_ipa_now(ipa);

    if (work) {
        ipa->st.backoff_ms = 0;
    } else if (ipa->st.backoff_ms == 0) {
        ipa->st.backoff_ms = ipa->cfg.backoff_min_ms;
    } else if (ipa->st.backoff_ms >= ipa->cfg.backoff_max_ms / 2u) {
        ipa->st.backoff_ms = ipa->cfg.backoff_max_ms;
    } else {
        ipa->st.backoff_ms *= 2u;
    }
    if (ipa->st.backoff_ms > ipa->cfg.backoff_max_ms)
        ipa->st.backoff_ms = ipa->cfg.backoff_max_ms;
    ipa->st.next_poll_ms = now + ipa->st.backoff_ms;
}

uint64_t pl_ipa_next_poll_ms(const struct pl_ipa *ipa)
{
    uint64_t now = pl_ipa_now(ipa);
    return ipa->st.next_poll_ms > now ? ipa->st.next_poll_ms - now : 0;
}

int pl_ipa_save(struct pl_ipa *ipa)
{
    if (ipa->state_path == NULL)
        return PL_OK;
    int rc = pl_ipa_state_write(ipa->state_path, &ipa->st);
    if (rc != PL_OK)
        pl_ipa_log(ipa, PL_IPA_LOG_ERROR, "state file %s not written: %s", ipa->state_path,
                   pl_strerror(rc));
    return rc;
}

void pl_ipa_await_ack(struct pl_ipa *ipa, uint32_t seq)
{
    struct pl_ipa_state *st = &ipa->st;

    for (size_t i = 0; i < st->n_awaiting; i++)
        if (st->awaiting[i] == seq)
            return;
    if (st->n_awaiting == PL_IPA_MAX_AWAITING_ACK) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "awaiting-ack set full: forgetting seq %u",
                   (unsigned)st->awaiting[0]);
        memmove(st->awaiting, st->awaiting + 1, (st->n_awaiting - 1) * sizeof(st->awaiting[0]));
        st->n_awaiting--;
    }
    st->awaiting[st->n_awaiting++] = seq;
}

bool pl_ipa_take_ack(struct pl_ipa *ipa, uint32_t seq)
{
    struct pl_ipa_state *st = &ipa->st;

    for (size_t i = 0; i < st->n_awaiting; i++) {
        if (st->awaiting[i] != seq)
            continue;
        memmove(st->awaiting + i, st->awaiting + i + 1,
                (st->n_awaiting - i - 1) * sizeof(st->awaiting[0]));
        st->n_awaiting--;
        return true;
    }
    return false;
}

bool pl_ipa_awaiting_ack(const struct pl_ipa *ipa, uint32_t seq)
{
    for (size_t i = 0; i < ipa->st.n_awaiting; i++)
        if (ipa->st.awaiting[i] == seq)
            return true;
    return false;
}

void pl_ipa_get_status(const struct pl_ipa *ipa, struct pl_ipa_status *s)
{
    const struct pl_ipa_state *st = &ipa->st;

    memset(s, 0, sizeof(*s));
    s->has_eid = st->has_eid;
    memcpy(s->eid, st->eid, sizeof(s->eid));
    snprintf(s->eim_id, sizeof(s->eim_id), "%s", st->eim_id);
    snprintf(s->eim_fqdn, sizeof(s->eim_fqdn), "%s", st->eim_fqdn);
    s->last_poll_ms = st->last_poll_ms;
    s->next_poll_at_ms = st->next_poll_ms;
    s->backoff_ms = st->backoff_ms;
    s->package_in_flight = st->in_flight;
    s->result_pending = st->has_pending;
    s->result_attempts = st->pending_attempts;
    s->notify_state_change = st->notify_pending;
    s->awaiting_ack = st->n_awaiting;
    s->has_trigger = st->trigger_len > 0;
    s->polls = st->polls;
    s->packages = st->packages;
    s->acks_applied = st->acks_applied;
    s->results_recovered = st->recovered;
}

int pl_ipa_last_trigger(const struct pl_ipa *ipa, const uint8_t **p, size_t *len)
{
    if (ipa->st.trigger_len == 0)
        return PL_ERR_NOT_FOUND;
    *p = ipa->st.trigger;
    *len = ipa->st.trigger_len;
    return PL_OK;
}
