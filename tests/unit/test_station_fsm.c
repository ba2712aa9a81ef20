/* Unit: the table-driven FSM engine (station/fsm.h) and the station's job table
 * (pl_station_job_fsm): accepted events run their action, a disallowed event is logged and
 * refused (never ignored), a transition outside the allowed set is refused, the named timer
 * armed on entry delivers the timeout event; the job table passes the engine's checks and
 * every state is reachable and has a way on. reference/STYLE.md §7.3 rule 7. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "provline/station/fsm.h"
#include "provline/station/station.h"

enum { S_A, S_B, S_C, S_N };
enum { E_TIMEOUT, E_GO, E_STAY, E_N };

static const char *const ev_names[E_N] = {"timeout", "go", "stay"};
static unsigned actions, enters;
static char last_log[256];
static unsigned logs_refused;

static void on_b(struct pl_fsm *fi, unsigned prev, uint64_t now)
{
    (void)fi;
    (void)prev;
    (void)now;
    enters++;
}

static int act(struct pl_fsm *fi, unsigned ev, void *data, uint64_t now)
{
    (void)data;
    actions++;
    if (ev == E_GO)
        return pl_fsm_transition(fi, fi->state == S_A ? S_B : S_C, now);
    if (ev == E_TIMEOUT)
        return pl_fsm_transition(fi, S_C, now);
    return PL_OK;
}

static const struct pl_fsm_state st[S_N] = {
    [S_A] = {"A", PL_FSM_BIT(E_GO) | PL_FSM_BIT(E_STAY), PL_FSM_BIT(S_B), PL_FSM_NO_TIMER, NULL,
             act},
    [S_B] = {"B", PL_FSM_BIT(E_TIMEOUT) | PL_FSM_BIT(E_GO), PL_FSM_BIT(S_C), PL_T_RETRY, on_b,
             act},
    [S_C] = {"C", 0, 0, PL_FSM_NO_TIMER, NULL, NULL},
};
static const struct pl_fsm_def def = {"t", st, S_N, ev_names, E_N, E_TIMEOUT};

static void logger(void *user, const struct pl_fsm *fi, enum pl_fsm_log_level level,
                   const char *event, const char *msg)
{
    (void)user;
    (void)fi;
    (void)event;
    snprintf(last_log, sizeof(last_log), "%s", msg);
    if (level <= PL_FSM_LOG_WARN)
        logs_refused++;
}

static void fresh(struct pl_fsm *fi, const struct pl_timers *t)
{
    actions = enters = logs_refused = 0;
    last_log[0] = '\0';
    pl_fsm_init(fi, &def, S_A, t, NULL);
    fi->log = logger;
}

Test(station_fsm, accepted_refused_and_transitions)
{
    struct pl_fsm fi;
    struct pl_timers t;
    pl_timers_init(&t);
    cr_assert_eq(pl_fsm_def_check(&def), PL_OK);
    fresh(&fi, &t);
    /* A refuses TIMEOUT: logged, refused, no action, state unchanged. */
    cr_assert_eq(pl_fsm_dispatch(&fi, E_TIMEOUT, NULL, 0), PL_ERR_STATE);
    cr_assert_eq(actions, 0);
    cr_assert_eq(logs_refused, 1);
    cr_assert(strstr(last_log, "event timeout not permitted in state A") != NULL, "%s", last_log);
    cr_assert_eq(fi.refused, 1);
    cr_assert_eq(pl_fsm_dispatch(&fi, 99, NULL, 0), PL_ERR_INVAL);
    /* STAY runs the action, no transition. */
    cr_assert_eq(pl_fsm_dispatch(&fi, E_STAY, NULL, 0), PL_OK);
    cr_assert_eq(fi.state, S_A);
    /* A -> C is not in A's out set: refused, state kept. */
    cr_assert_eq(pl_fsm_transition(&fi, S_C, 0), PL_ERR_STATE);
    cr_assert_eq(fi.state, S_A);
    cr_assert(strstr(last_log, "transition A -> C not allowed") != NULL, "%s", last_log);
    /* GO: A -> B, onenter runs, B's named timer is armed. */
    cr_assert_eq(pl_fsm_dispatch(&fi, E_GO, NULL, 1000), PL_OK);
    cr_assert_eq(fi.state, S_B);
    cr_assert_eq(enters, 1);
    cr_assert_eq(fi.timer, PL_T_RETRY);
    cr_assert_eq(pl_fsm_timer_left(&fi, 1000), (int64_t)t.v[PL_T_RETRY]);
    /* Not yet due: nothing; due: the timeout event moves B -> C. */
    cr_assert_eq(pl_fsm_tick(&fi, 1000 + t.v[PL_T_RETRY] - 1), PL_OK);
    cr_assert_eq(fi.state, S_B);
    cr_assert_eq(pl_fsm_tick(&fi, 1000 + t.v[PL_T_RETRY]), PL_OK);
    cr_assert_eq(fi.state, S_C);
    cr_assert_eq(fi.timer, PL_FSM_NO_TIMER);
    /* C accepts nothing. */
    cr_assert_eq(pl_fsm_dispatch(&fi, E_GO, NULL, 0), PL_ERR_STATE);
    cr_assert_str_eq(pl_fsm_state_name(&fi), "C");
}

Test(station_fsm, def_check_refuses_bad_tables)
{
    struct pl_fsm_state bad[S_N];
    struct pl_fsm_def d = def;
    memcpy(bad, st, sizeof(bad));
    d.states = bad;
    bad[S_A].out_states = PL_FSM_BIT(5); /* no state 5 */
    cr_assert_eq(pl_fsm_def_check(&d), PL_ERR_INVAL);
    memcpy(bad, st, sizeof(bad));
    bad[S_A].timer = PL_T_RETRY; /* a timer, but TIMEOUT not accepted */
    cr_assert_eq(pl_fsm_def_check(&d), PL_ERR_INVAL);
    memcpy(bad, st, sizeof(bad));
    bad[S_B].name = NULL;
    cr_assert_eq(pl_fsm_def_check(&d), PL_ERR_INVAL);
    memcpy(bad, st, sizeof(bad));
    bad[S_A].action = NULL; /* accepts events but has no action */
    cr_assert_eq(pl_fsm_def_check(&d), PL_ERR_INVAL);
    d.states = st;
    d.timeout_event = E_N;
    cr_assert_eq(pl_fsm_def_check(&d), PL_ERR_INVAL);
}

Test(station_fsm, job_table)
{
    const struct pl_fsm_def *j = pl_station_job_fsm();
    uint64_t reach = PL_FSM_BIT(PL_JOB_IDLE);
    cr_assert_eq(pl_fsm_def_check(j), PL_OK);
    cr_assert_eq(j->n_states, PL_JOB_STATE_COUNT);
    cr_assert_eq(j->n_events, PL_JEV_COUNT);
    /* The names the logs use. */
    cr_assert_str_eq(pl_fsm_def_state_name(j, PL_JOB_LOAD), "LOAD");
    cr_assert_str_eq(pl_fsm_def_state_name(j, PL_JOB_DONE), "DONE");
    cr_assert_str_eq(pl_fsm_def_event_name(j, PL_JEV_DRAIN), "drain");
    cr_assert_str_eq(pl_fsm_def_state_name(j, 99), "?");
    /* Every state reachable from IDLE; every state but PARKED has a way on and takes the
     * drain; PARKED takes it too (a repeated drain is harmless) and goes nowhere. */
    for (int round = 0; round < (int)PL_JOB_STATE_COUNT; round++)
        for (unsigned s = 0; s < j->n_states; s++)
            if (reach & PL_FSM_BIT(s))
                reach |= j->states[s].out_states;
    for (unsigned s = 0; s < j->n_states; s++) {
        const struct pl_fsm_state *x = &j->states[s];
        cr_assert(reach & PL_FSM_BIT(s), "%s unreachable", x->name);
        cr_assert(x->in_events & PL_FSM_BIT(PL_JEV_DRAIN), "%s ignores the drain", x->name);
        cr_assert(x->in_events & PL_FSM_BIT(PL_JEV_DRAIN_EXPIRED), "%s", x->name);
        if (s == PL_JOB_PARKED)
            cr_assert_eq(x->out_states, 0);
        else
            cr_assert(x->out_states & PL_FSM_BIT(PL_JOB_PARKED), "%s cannot park", x->name);
    }
    /* The answer to a load leads to its result first: never straight to another load or a
     * new lease. */
    cr_assert_eq(j->states[PL_JOB_LOAD].out_states & PL_FSM_BIT(PL_JOB_LOAD), 0);
    cr_assert_eq(j->states[PL_JOB_LOAD].out_states & PL_FSM_BIT(PL_JOB_LEASE), 0);
    cr_assert(j->states[PL_JOB_LOAD].out_states & PL_FSM_BIT(PL_JOB_RESULT));
    cr_assert(j->states[PL_JOB_LOAD].out_states & PL_FSM_BIT(PL_JOB_REPORT));
    /* Waiting states have their named timers; request states rely on the link's. */
    cr_assert_eq(j->states[PL_JOB_WAIT].timer, PL_T_RETRY);
    cr_assert_eq(j->states[PL_JOB_IDLE].timer, PL_T_PROBE);
    cr_assert_eq(j->states[PL_JOB_DONE].timer, PL_T_PROBE);
    /* Key Maker states do not accept fixture answers and vice versa. */
    cr_assert_eq(j->states[PL_JOB_REPORT].in_events & PL_FSM_BIT(PL_JEV_FX_RSP), 0);
    cr_assert_eq(j->states[PL_JOB_LOAD].in_events & PL_FSM_BIT(PL_JEV_KM_OK), 0);
    cr_assert_eq(j->states[PL_JOB_IDLE].in_events & PL_FSM_BIT(PL_JEV_FX_RSP), 0);
}
