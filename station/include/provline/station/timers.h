/* The station's named timers: every timeout and interval the station uses has a name, a
 * unit, a default, bounds and a doc string, and can be overridden in the [timers] section
 * of the configuration file (docs/station.conf.5.md).
 *
 * Sources: reference/STYLE.md §7.3 rule 7 (every timeout is a named timer with a unit, a
 * default and a doc string, overridable by config), after libosmocore's struct osmo_tdef
 * (include/osmocom/core/tdef.h: .T, .default_val, .unit, .desc); reference/IFPP.md §6.3,
 * §7 cases 7-9 and 20 (the timeouts of the station's fixture and Key Maker exchanges). */
#ifndef PROVLINE_STATION_TIMERS_H
#define PROVLINE_STATION_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"

enum pl_timer_id {
    PL_T_IDENTIFY = 0,    /* Identify answer from the fixture */
    PL_T_PROBE,           /* pause between Identify probes of an empty or finished fixture */
    PL_T_FIXTURE,         /* answer to a short fixture request (fetch, notify, delete, eIM) */
    PL_T_LOAD,            /* answer to LoadPackage (whole BPP through the fixture) */
    PL_T_KEYMAKER,        /* one Key Maker exchange, retransmissions included */
    PL_T_KM_ATTEMPT,      /* first retransmission interval of a Key Maker request */
    PL_T_RETRY,           /* back-off before a failed step is tried again */
    PL_T_DRAIN,           /* SIGTERM: time in-flight loads get to finish before parking */
    PL_T_LEASE_MARGIN,    /* refuse to start a load this close to lease expiry / notAfter */
    PL_T_METRICS_IO,      /* a metrics client must send its request within this */
    PL_T_COUNT
};

enum pl_timer_unit {
    PL_TU_MS = 0,
    PL_TU_S = 1,
};

struct pl_timer_def {
    const char *name; /* as written in [timers], e.g. "T_LOAD" */
    enum pl_timer_unit unit;
    uint32_t def;     /* default, in unit */
    uint32_t min, max;
    const char *doc;
};

/* The values in force, in each timer's unit. */
struct pl_timers {
    uint32_t v[PL_T_COUNT];
};

/* The definition of timer id (never NULL for id < PL_T_COUNT; NULL otherwise). */
const struct pl_timer_def *pl_timer_def(enum pl_timer_id id);
/* "ms" or "s". */
const char *pl_timer_unit_name(enum pl_timer_unit u);
/* Fills every default. Cannot fail. */
void pl_timers_init(struct pl_timers *t);
/* Finds a timer by its name (exact, case-sensitive). PL_ERR_NOT_FOUND. */
PL_MUST_CHECK int pl_timer_by_name(const char *name, enum pl_timer_id *out);
/* Parses a decimal value for timer id and range-checks it. PL_ERR_INVAL (not a number),
 * PL_ERR_OVERFLOW (outside [min, max]). */
PL_MUST_CHECK int pl_timer_parse(enum pl_timer_id id, const char *text, uint32_t *out);
/* The value of id in milliseconds. */
uint64_t pl_timer_ms(const struct pl_timers *t, enum pl_timer_id id);

#endif
