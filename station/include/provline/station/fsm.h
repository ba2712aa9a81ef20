/* A small table-driven finite state machine engine for the station's per-fixture jobs.
 *
 * Sources: reference/STYLE.md §7.3 rule 7 (each state lists its accepted events and allowed
 * next states, its onenter and action functions; name tables for states and events; every
 * timeout a named timer; a disallowed event is logged and refused, never ignored), after
 * libosmocore's struct osmo_fsm_state (in_event_mask, out_state_mask, onenter, action) and
 * its "Event ... not permitted" refusal.
 *
 * The engine owns no clock: callers pass now (monotonic milliseconds). Each state may name a
 * timer (timers.h) that is armed on entry; when it expires pl_fsm_tick() dispatches the
 * definition's timeout event, which the state must accept like any other event. */
#ifndef PROVLINE_STATION_FSM_H
#define PROVLINE_STATION_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/station/timers.h"

#define PL_FSM_MAX 64u     /* states and events per definition (bit masks) */
#define PL_FSM_NO_TIMER (-1)
#define PL_FSM_BIT(x) ((uint64_t)1u << (x))

struct pl_fsm;

struct pl_fsm_state {
    const char *name;
    uint64_t in_events;  /* PL_FSM_BIT(event) of every event this state accepts */
    uint64_t out_states; /* PL_FSM_BIT(state) of every state it may move to */
    int timer;           /* enum pl_timer_id armed on entry, or PL_FSM_NO_TIMER */
    /* Called after the state changed (prev = the state left). May be NULL. */
    void (*onenter)(struct pl_fsm *fi, unsigned prev, uint64_t now);
    /* Handles an accepted event; data is the event's payload (borrowed). Returns PL_OK or a
     * pl_err, which pl_fsm_dispatch returns. May be NULL (the event is then only logged). */
    int (*action)(struct pl_fsm *fi, unsigned event, void *data, uint64_t now);
};

enum pl_fsm_log_level {
    PL_FSM_LOG_ERROR = 0,
    PL_FSM_LOG_WARN = 1,
    PL_FSM_LOG_INFO = 2,
    PL_FSM_LOG_DEBUG = 3,
};

struct pl_fsm_def {
    const char *name;
    const struct pl_fsm_state *states; /* indexed by state number */
    unsigned n_states;                 /* 1..PL_FSM_MAX */
    const char *const *event_names;    /* indexed by event number */
    unsigned n_events;                 /* 1..PL_FSM_MAX */
    unsigned timeout_event;            /* dispatched by pl_fsm_tick when the timer expires */
};

struct pl_fsm {
    const struct pl_fsm_def *def;
    unsigned state;
    void *priv;                   /* the owner's object */
    const struct pl_timers *timers; /* borrowed */
    int timer;                    /* the armed timer, or PL_FSM_NO_TIMER */
    uint64_t deadline;            /* when it expires (valid if timer armed) */
    /* Log sink (may be NULL): one event per call, msg without newline. */
    void (*log)(void *user, const struct pl_fsm *fi, enum pl_fsm_log_level level,
                const char *event, const char *msg);
    void *log_user;
    uint64_t refused;             /* events refused (not in in_events) */
};

/* Checks a definition: sizes within PL_FSM_MAX, every state and event named, masks only
 * naming existing states/events, timers valid, the timeout event accepted by every state
 * that arms a timer. PL_OK or PL_ERR_INVAL. */
PL_MUST_CHECK int pl_fsm_def_check(const struct pl_fsm_def *def);

/* Starts an instance in state initial (no onenter, no timer). Borrows def and timers. */
void pl_fsm_init(struct pl_fsm *fi, const struct pl_fsm_def *def, unsigned initial,
                 const struct pl_timers *timers, void *priv);

/* Delivers an event. An event the current state does not accept is logged ("event X not
 * permitted in state Y") and refused with PL_ERR_STATE; PL_ERR_INVAL for an unknown event.
 * Otherwise returns the action's result. */
PL_MUST_CHECK int pl_fsm_dispatch(struct pl_fsm *fi, unsigned event, void *data, uint64_t now);

/* Moves to state next if the current state lists it (else logged and PL_ERR_STATE, the
 * state unchanged): disarms the timer, arms next's timer, calls next's onenter. Moving to
 * the current state is a re-entry (timer re-armed, onenter called) and must be listed too. */
PL_MUST_CHECK int pl_fsm_transition(struct pl_fsm *fi, unsigned next, uint64_t now);

/* Arms timer id to expire after its configured value (or after ms when ms != 0),
 * replacing the armed one. */
void pl_fsm_timer_start(struct pl_fsm *fi, int id, uint64_t ms, uint64_t now);
void pl_fsm_timer_stop(struct pl_fsm *fi);
/* Milliseconds until the armed timer expires (0 = due), or -1 if none. */
int64_t pl_fsm_timer_left(const struct pl_fsm *fi, uint64_t now);
/* If the armed timer expired: disarms it and dispatches the timeout event. PL_OK when
 * nothing was due; otherwise the dispatch result. */
PL_MUST_CHECK int pl_fsm_tick(struct pl_fsm *fi, uint64_t now);

const char *pl_fsm_state_name(const struct pl_fsm *fi);
/* Names from a definition ("?" when out of range; never NULL). */
const char *pl_fsm_def_state_name(const struct pl_fsm_def *def, unsigned state);
const char *pl_fsm_def_event_name(const struct pl_fsm_def *def, unsigned event);
bool pl_fsm_accepts(const struct pl_fsm *fi, unsigned event);

#endif
