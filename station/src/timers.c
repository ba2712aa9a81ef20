/* The station's named timers (timers.h). reference/STYLE.md §7.3 rule 7; libosmocore
 * tdef.h as the model (name, unit, default, description). */
#include "provline/station/timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct pl_timer_def defs[PL_T_COUNT] = {
    [PL_T_IDENTIFY] = {"T_IDENTIFY", PL_TU_MS, 5000, 50, 600000,
                       "wait for the fixture's answer to Identify (GetEID + GetIfppInfo)"},
    [PL_T_PROBE] = {"T_PROBE", PL_TU_MS, 1000, 10, 600000,
                    "pause between Identify probes while a fixture is empty, and while a "
                    "finished device is still seated"},
    [PL_T_FIXTURE] = {"T_FIXTURE", PL_TU_MS, 15000, 50, 600000,
                      "wait for the answer to a short fixture request (FetchResults, "
                      "NotificationSent, DeleteOtks, ConfigureInitialEim)"},
    [PL_T_LOAD] = {"T_LOAD", PL_TU_MS, 120000, 100, 3600000,
                   "wait for the answer to LoadPackage; on expiry the package is never "
                   "resent: the station asks the device for its pending results instead"},
    [PL_T_KEYMAKER] = {"T_KEYMAKER", PL_TU_MS, 30000, 100, 3600000,
                       "deadline of one Key Maker exchange (retransmissions of the identical "
                       "bytes included); on expiry the step is retried after T_RETRY"},
    [PL_T_KM_ATTEMPT] = {"T_KM_ATTEMPT", PL_TU_MS, 1000, 10, 60000,
                         "first retransmission interval of a Key Maker request (doubles up "
                         "to 8x)"},
    [PL_T_RETRY] = {"T_RETRY", PL_TU_MS, 1000, 10, 600000,
                    "back-off before a step that failed (timeout, refused, link error) is "
                    "tried again"},
    [PL_T_DRAIN] = {"T_DRAIN", PL_TU_MS, 30000, 0, 3600000,
                    "after SIGTERM, how long loads in flight may run to their end; loads "
                    "still running then are parked as LOADING for recovery"},
    [PL_T_LEASE_MARGIN] = {"T_LEASE_MARGIN", PL_TU_S, 60, 0, 86400,
                           "refuse to start a load when the lease expiry or the package's "
                           "notAfter is less than this far away (IFPP.md section 7 case 20)"},
    [PL_T_METRICS_IO] = {"T_METRICS_IO", PL_TU_MS, 2000, 10, 60000,
                         "a metrics client must send its HTTP request within this"},
};

const struct pl_timer_def *pl_timer_def(enum pl_timer_id id)
{
    if ((unsigned)id >= PL_T_COUNT)
        return NULL;
    return &defs[id];
}

const char *pl_timer_unit_name(enum pl_timer_unit u)
{
    return u == PL_TU_S ? "s" : "ms";
}

void pl_timers_init(struct pl_timers *t)
{
    for (unsigned i = 0; i < PL_T_COUNT; i++)
        t->v[i] = defs[i].def;
}

int pl_timer_by_name(const char *name, enum pl_timer_id *out)
{
    for (unsigned i = 0; i < PL_T_COUNT; i++) {
        if (strcmp(defs[i].name, name) == 0) {
            *out = (enum pl_timer_id)i;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

int pl_timer_parse(enum pl_timer_id id, const char *text, uint32_t *out)
{
    const struct pl_timer_def *d = pl_timer_def(id);
    char *end = NULL;
    unsigned long long v;

    if (d == NULL || text == NULL || text[0] < '0' || text[0] > '9')
        return PL_ERR_INVAL;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return errno == ERANGE ? PL_ERR_OVERFLOW : PL_ERR_INVAL;
    if (v < d->min || v > d->max)
        return PL_ERR_OVERFLOW;
    *out = (uint32_t)v;
    return PL_OK;
}

uint64_t pl_timer_ms(const struct pl_timers *t, enum pl_timer_id id)
{
    const struct pl_timer_def *d = pl_timer_def(id);
    if (d == NULL)
        return 0;
    return d->unit == PL_TU_S ? (uint64_t)t->v[id] * 1000u : (uint64_t)t->v[id];
}
