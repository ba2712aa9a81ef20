/* Table-driven FSM engine (fsm.h). reference/STYLE.md §7.3 rule 7; libosmocore
 * include/osmocom/core/fsm.h (in_event_mask / out_state_mask, "not permitted" refusal) as
 * the model. */
#include "provline/station/fsm.h"

#include <stdio.h>

static void fsm_log(const struct pl_fsm *fi, enum pl_fsm_log_level lvl, const char *event,
                    const char *msg)
{
    if (fi->log != NULL)
        fi->log(fi->log_user, fi, lvl, event, msg);
}

int pl_fsm_def_check(const struct pl_fsm_def *def)
{
    uint64_t all_states, all_events;

    if (def == NULL || def->states == NULL || def->event_names == NULL || def->n_states == 0
        || def->n_states > PL_FSM_MAX || def->n_events == 0 || def->n_events > PL_FSM_MAX
        || def->timeout_event >= def->n_events)
        return PL_ERR_INVAL;
    all_states = def->n_states == 64u ? UINT64_MAX : PL_FSM_BIT(def->n_states) - 1u;
    all_events = def->n_events == 64u ? UINT64_MAX : PL_FSM_BIT(def->n_events) - 1u;
    for (unsigned e = 0; e < def->n_events; e++)
        if (def->event_names[e] == NULL || def->event_names[e][0] == '\0')
            return PL_ERR_INVAL;
    for (unsigned s = 0; s < def->n_states; s++) {
        const struct pl_fsm_state *st = &def->states[s];
        if (st->name == NULL || st->name[0] == '\0')
            return PL_ERR_INVAL;
        if ((st->in_events & ~all_events) != 0 || (st->out_states & ~all_states) != 0)
            return PL_ERR_INVAL;
        if (st->timer != PL_FSM_NO_TIMER) {
            if (st->timer < 0 || st->timer >= (int)PL_T_COUNT)
                return PL_ERR_INVAL;
            if ((st->in_events & PL_FSM_BIT(def->timeout_event)) == 0)
                return PL_ERR_INVAL;
        }
        if (st->in_events != 0 && st->action == NULL)
            return PL_ERR_INVAL;
    }
    return PL_OK;
}

void pl_fsm_init(struct pl_fsm *fi, const struct pl_fsm_def *def, unsigned initial,
                 const struct pl_timers *timers, void *priv)
{
    fi->def = def;
    fi->state = initial < def->n_states ? initial : 0;
    fi->priv = priv;
    fi->timers = timers;
    fi->timer = PL_FSM_NO_TIMER;
    fi->deadline = 0;
    fi->log = NULL;
    fi->log_user = NULL;
    fi->refused = 0;
}

const char *pl_fsm_def_state_name(const struct pl_fsm_def *def, unsigned state)
{
    if (def == NULL || state >= def->n_states || def->states[state].name == NULL)
        return "?";
    return def->states[state].name;
}

const char *pl_fsm_def_event_name(const struct pl_fsm_def *def, unsigned event)
{
    if (def == NULL || event >= def->n_events || def->event_names[event] == NULL)
        return "?";
    return def->event_names[event];
}

const char *pl_fsm_state_name(const struct pl_fsm *fi)
{
    return pl_fsm_def_state_name(fi->def, fi->state);
}

bool pl_fsm_accepts(const struct pl_fsm *fi, unsigned event)
{
    return event < fi->def->n_events
           && (fi->def->states[fi->state].in_events & PL_FSM_BIT(event)) != 0;
}

int pl_fsm_dispatch(struct pl_fsm *fi, unsigned event, void *data, uint64_t now)
{
    const struct pl_fsm_state *st = &fi->def->states[fi->state];
    char msg[160];

    if (event >= fi->def->n_events) {
        snprintf(msg, sizeof(msg), "unknown event %u refused in state %s", event, st->name);
        fsm_log(fi, PL_FSM_LOG_ERROR, "?", msg);
        fi->refused++;
        return PL_ERR_INVAL;
    }
    if ((st->in_events & PL_FSM_BIT(event)) == 0) {
        snprintf(msg, sizeof(msg), "event %s not permitted in state %s: refused",
                 fi->def->event_names[event], st->name);
        fsm_log(fi, PL_FSM_LOG_WARN, fi->def->event_names[event], msg);
        fi->refused++;
        return PL_ERR_STATE;
    }
    if (st->action == NULL)
        return PL_OK;
    return st->action(fi, event, data, now);
}

void pl_fsm_timer_start(struct pl_fsm *fi, int id, uint64_t ms, uint64_t now)
{
    if (id < 0 || id >= (int)PL_T_COUNT) {
        pl_fsm_timer_stop(fi);
        return;
    }
    if (ms == 0 && fi->timers != NULL)
        ms = pl_timer_ms(fi->timers, (enum pl_timer_id)id);
    fi->timer = id;
    fi->deadline = now + ms;
}

void pl_fsm_timer_stop(struct pl_fsm *fi)
{
    fi->timer = PL_FSM_NO_TIMER;
    fi->deadline = 0;
}

int64_t pl_fsm_timer_left(const struct pl_fsm *fi, uint64_t now)
{
    if (fi->timer == PL_FSM_NO_TIMER)
        return -1;
    return fi->deadline > now ? (int64_t)(fi->deadline - now) : 0;
}

int pl_fsm_tick(struct pl_fsm *fi, uint64_t now)
{
    if (fi->timer == PL_FSM_NO_TIMER || now < fi->deadline)
        return PL_OK;
    pl_fsm_timer_stop(fi);
    return pl_fsm_dispatch(fi, fi->def->timeout_event, NULL, now);
}

int pl_fsm_transition(struct pl_fsm *fi, unsigned next, uint64_t now)
{
    const struct pl_fsm_state *st = &fi->def->states[fi->state];
    char msg[160];
    unsigned prev = fi->state;

    if (next >= fi->def->n_states || (st->out_states & PL_FSM_BIT(next)) == 0) {
        snprintf(msg, sizeof(msg), "transition %s -> %s not allowed: refused", st->name,
                 pl_fsm_def_state_name(fi->def, next));
        fsm_log(fi, PL_FSM_LOG_ERROR, "transition", msg);
        return PL_ERR_STATE;
    }
    pl_fsm_timer_stop(fi);
    fi->state = next;
    st = &fi->def->states[next];
    if (st->timer != PL_FSM_NO_TIMER)
        pl_fsm_timer_start(fi, st->timer, 0, now);
    snprintf(msg, sizeof(msg), "state %s -> %s", pl_fsm_def_state_name(fi->def, prev),
             st->name);
    fsm_log(fi, PL_FSM_LOG_DEBUG, "transition", msg);
    if (st->onenter != NULL)
        st->onenter(fi, prev, now);
    return PL_OK;
}
