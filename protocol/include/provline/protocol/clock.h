/* Clock seam (STYLE.md §7.3 rule 9: clock and RNG are vtable seams): every timer, back-off
 * and timestamp in provline's libraries reads time through a struct pl_clock_ops, so tests
 * plug in a fake clock and step it deterministically.
 * POSIX.1-2008 clock_gettime(2) (CLOCK_MONOTONIC, CLOCK_REALTIME) for the defaults. */
#ifndef PROVLINE_PROTOCOL_CLOCK_H
#define PROVLINE_PROTOCOL_CLOCK_H

#include <stdint.h>

struct pl_clock_ops {
    /* Milliseconds since an arbitrary origin. A monotonic clock never goes backwards;
     * callers of a wall clock must tolerate steps. */
    uint64_t (*now_ms)(void *user);
    void *user;
};

/* Monotonic milliseconds (CLOCK_MONOTONIC): timers, back-off, deadlines. */
uint64_t pl_clock_monotonic_ms(void *user);
/* Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME): timestamps in records. */
uint64_t pl_clock_realtime_ms(void *user);

#define PL_CLOCK_MONOTONIC ((struct pl_clock_ops){pl_clock_monotonic_ms, NULL})
#define PL_CLOCK_REALTIME  ((struct pl_clock_ops){pl_clock_realtime_ms, NULL})

/* Reads a clock; a NULL ops (or ops without now_ms) reads the monotonic default. */
uint64_t pl_clock_now_ms(const struct pl_clock_ops *ops);

#endif
