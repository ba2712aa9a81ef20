/* Internal to the station library: times as RFC 3339 UTC text, for the reports (journal.c
 * CSV/JSON export) and the eIM batch (batch.c). */
#ifndef PROVLINE_STATION_UTC_TEXT_H
#define PROVLINE_STATION_UTC_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "2026-11-25T10:00:00Z", or with milliseconds "2026-11-25T10:00:00.123Z", of ms since the
 * epoch. Empty for 0 (never happened) and when cap is too small: never a cut-short time. */
void pl_st_utc_text(uint64_t ms, bool with_ms, char *out, size_t cap);

#endif
