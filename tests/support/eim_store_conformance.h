/* The eIM store conformance suite: one set of test bodies that every store backend must
 * pass (provline/eim/store.h). tests/unit/test_eim_store_sqlite.c and
 * tests/integration/test_eim_store_pg.c each provide a backend and call every
 * pl_eimconf_* function from a Criterion Test. Never linked into a product. */
#ifndef PL_EIM_STORE_CONFORMANCE_H
#define PL_EIM_STORE_CONFORMANCE_H

#include "provline/eim/store.h"

struct pl_eimconf_backend {
    /* Opens a store on the test's database (which 0) or on a second, unrelated one
     * (which 1). May be called in a forked child. */
    int (*open)(void *ctx, int which, const struct pl_eim_store_options *opt,
                struct pl_eim_store **out);
    /* Copies the main database aside / puts the copy back (every handle closed). */
    int (*snapshot)(void *ctx);
    int (*restore)(void *ctx);
    void *ctx;
    const char *dir; /* a private temporary directory (guard files) */
};

void pl_eimconf_registry_crud(const struct pl_eimconf_backend *b);
void pl_eimconf_bulk_put(const struct pl_eimconf_backend *b);
void pl_eimconf_queue_fifo(const struct pl_eimconf_backend *b);
void pl_eimconf_op_transitions(const struct pl_eimconf_backend *b);
void pl_eimconf_claim_one_wins(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_basics(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_processes(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_threads(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_restore(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_restore_two_nodes(const struct pl_eimconf_backend *b);
void pl_eimconf_counter_restore_small(const struct pl_eimconf_backend *b);
void pl_eimconf_guard_mismatch(const struct pl_eimconf_backend *b);
void pl_eimconf_notifications(const struct pl_eimconf_backend *b);
void pl_eimconf_operator_tokens(const struct pl_eimconf_backend *b);

#endif
