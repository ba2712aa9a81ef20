/* Clock seam defaults: POSIX.1-2008 clock_gettime(2). No state, no I/O besides the clock. */
#define _POSIX_C_SOURCE 200809L
#include "provline/protocol/clock.h"

#include <time.h>

static uint64_t read_ms(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0 || ts.tv_sec < 0 || ts.tv_nsec < 0)
        return 0; /* cannot happen for these clock ids on Linux */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t pl_clock_monotonic_ms(void *user)
{
    (void)user;
    return read_ms(CLOCK_MONOTONIC);
}

uint64_t pl_clock_realtime_ms(void *user)
{
    (void)user;
    return read_ms(CLOCK_REALTIME);
}

uint64_t pl_clock_now_ms(const struct pl_clock_ops *ops)
{
    if (ops == NULL || ops->now_ms == NULL)
        return pl_clock_monotonic_ms(NULL);
    return ops->now_ms(ops->user);
}
