/* The station's batch for the eIM: the journal written in the eIM's bulk-import format
 * `provline-station-batch/1` (docs/eim-api.md "Bulk import", accepted unchanged by
 * `POST /v1/devices/bulk`), so a station's production goes to the eIM as it is.
 *
 * One entry per EID that received a package: the device's final package decides its
 * status - `installed` when the Key Maker acknowledged a verified PIR success for it,
 * `failed` for a verified PIR error, `possibly_used` for anything without that proof
 * (ARCHITECTURE.md §5: the station never decides an installation; before the Key Maker's
 * answer nothing is proven). Devices that never had a package on the chip are left out.
 * The certificates are those captured at Identify (journal.h pl_jcerts). */
#ifndef PROVLINE_STATION_BATCH_H
#define PROVLINE_STATION_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/err.h"
#include "provline/station/journal.h"

#define PL_BATCH_FORMAT "provline-station-batch/1"
#define PL_BATCH_ID_MAX 128u      /* batch_id, station: 1..128 bytes (the eIM's limits) */
#define PL_BATCH_EIM_ID_MAX 128u  /* eimId UTF8String (SIZE(1..128)), SGP.32 v1.2 §2.11.1.1.1 */
#define PL_BATCH_EUM_REFS_MAX 64u /* eum_certificates entries the eIM accepts */

struct pl_batch_opts {
    const char *batch_id; /* NULL: "<station or 'station'>-<created_at as YYYYMMDDTHHMMSSZ>" */
    const char *station;  /* NULL: no "station" member */
    const char *eim_id;   /* NULL: no "eim_id" member (the eIM's default identity) */
    uint64_t created_ms;  /* Unix ms of created_at; 0 = now */
};

/* Checks the options: lengths (1..max) and UTF-8 text. PL_ERR_INVAL. */
PL_MUST_CHECK int pl_batch_opts_check(const struct pl_batch_opts *o);

/* Writes the batch JSON of journal j through write (returns 0 or a pl_err); *n_devices (may
 * be NULL) is the number of entries. PL_ERR_INVAL (options), PL_ERR_NOT_FOUND when no
 * device received a package (the eIM takes 1..max_bulk_devices entries: nothing is
 * written), PL_ERR_DB, PL_ERR_NOMEM. Borrows everything. */
PL_MUST_CHECK int pl_batch_export(struct pl_journal *j, const struct pl_batch_opts *o,
                                  int (*write)(void *user, const char *s, size_t n), void *user,
                                  size_t *n_devices);

#endif
