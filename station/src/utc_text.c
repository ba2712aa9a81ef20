/* RFC 3339 §5.6 UTC timestamps (utc_text.h); gmtime_r(3), strftime(3). */
#define _POSIX_C_SOURCE 200809L
#include "utc_text.h"

#include <stdio.h>
#include <time.h>

void pl_st_utc_text(uint64_t ms, bool with_ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000u);
    struct tm tm;
    char base[32];
    int n;

    if (cap == 0)
        return;
    out[0] = '\0';
    if (ms == 0 || gmtime_r(&s, &tm) == NULL
        || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return;
    n = with_ms ? snprintf(out, cap, "%s.%03uZ", base, (unsigned)(ms % 1000u))
                : snprintf(out, cap, "%sZ", base);
    if (n < 0 || (size_t)n >= cap)
        out[0] = '\0';
}
