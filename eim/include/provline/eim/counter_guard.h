/* The counter guard: a small file, kept outside the database and its backups, that
 * bounds every counterValue the eIM may have handed out, so that restoring an old
 * database cannot make the eIM reuse a counter (ARCHITECTURE.md §5; reference/EIM.md §4.3;
 * GSMA SGP.32 v1.2 §2.11.1.1 replay protection: the eUICC accepts a package only when its
 * counterValue is greater than the last one it accepted).
 * Design and proof: docs/decisions/0011-eim-counter-floor.md.
 *
 * Every EID falls in one of 256 buckets (pl_eim_store_bucket). The database keeps one
 * sequence per bucket, incremented in the same transaction as every counter reservation
 * of an EID of that bucket. The guard file keeps, per bucket:
 *   seen - a sequence value known to have been committed (a lower bound of the database's),
 *   hwm  - the highest sequence value any reservation may use (written, with fsync, BEFORE
 *          a reservation beyond it commits; extended `block` values at a time).
 * The database is behind (restored) when its sequence is below `seen`. Any EID's counter
 * can then have moved at most (hwm - seq) times since the backup: adding that to every
 * counter of the bucket puts each above every value handed out before.
 *
 * File: "PLEIMCG1", store id (16), block (u32 BE), 256 x (seen u64 BE, hwm u64 BE),
 * SHA-256 of everything before (32). Replaced atomically (write, fsync, rename, fsync dir)
 * under flock(2) on "<path>.lock", so processes and threads sharing the file agree. */
#ifndef PROVLINE_EIM_COUNTER_GUARD_H
#define PROVLINE_EIM_COUNTER_GUARD_H

#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_EIM_GUARD_BUCKETS       256u
#define PL_EIM_GUARD_DEFAULT_BLOCK 1u /* see decision 0011: exact detection */
#define PL_EIM_STORE_ID_LEN        16u

struct pl_eim_guard;

/* Opens (does not yet read or create) the guard at path. block: 0 gives the default. */
PL_MUST_CHECK int pl_eim_guard_open(const char *path, uint32_t block, struct pl_eim_guard **out);
void pl_eim_guard_free(struct pl_eim_guard *g); /* accepts NULL */

/* Binds the guard to a database: store_id and its current bucket sequences.
 * No file yet: created from db_seq when every sequence is 0 (a new database) or when
 * create_over_used is set (a new eIM node joins a database in use: the operator vouches
 * that no other guard was lost); otherwise PL_ERR_CONFIG (the guard was lost: the
 * counters handed out since the last backup cannot be vouched for).
 * File present: PL_ERR_CONFIG if it belongs to another store; PL_ERR_REPLAY if some
 * db_seq[b] < seen[b] (the database is older than the guard: the guard stays unbound,
 * admit refuses, until pl_eim_guard_raise after a recovery); PL_ERR_MALFORMED if the
 * file is damaged. */
PL_MUST_CHECK int pl_eim_guard_bind(struct pl_eim_guard *g,
                                    const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                                    const uint64_t db_seq[PL_EIM_GUARD_BUCKETS],
                                    bool create_over_used);

/* Called by a backend inside the reservation transaction, after it moved the bucket
 * sequence to new_seq and before it commits. Extends the file when new_seq > hwm.
 * PL_ERR_REPLAY if new_seq - 1 < seen (the database went back in time); PL_ERR_IO. */
PL_MUST_CHECK int pl_eim_guard_admit(struct pl_eim_guard *g, unsigned bucket, uint64_t new_seq);

/* Reads a guard file (any, e.g. another eIM node's) and returns its hwm per bucket;
 * PL_ERR_CONFIG if it belongs to another store, PL_ERR_NOT_FOUND if it does not exist. */
PL_MUST_CHECK int pl_eim_guard_read_hwm(const char *path,
                                        const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                                        uint64_t hwm[PL_EIM_GUARD_BUCKETS]);

/* The same for this guard's own file. */
PL_MUST_CHECK int pl_eim_guard_read_hwm_of(const struct pl_eim_guard *g,
                                           const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                                           uint64_t hwm[PL_EIM_GUARD_BUCKETS]);

/* After a recovery moved the database's sequences to seq: raises this guard's seen (and
 * hwm) to at least seq, creating the file if it was lost, and binds the guard. */
PL_MUST_CHECK int pl_eim_guard_raise(struct pl_eim_guard *g,
                                     const uint8_t store_id[PL_EIM_STORE_ID_LEN],
                                     const uint64_t seq[PL_EIM_GUARD_BUCKETS]);

#endif
