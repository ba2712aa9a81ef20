/* Test helpers for the fixture link (fixture.proto, the FPA, provline-vdevice): sealed
 * packages for a minted software eUICC, fixture request builders, a counting APDU seam, and
 * a child-process runner for the virtual device. Never linked into a product. */
#ifndef PL_FIXTURE_TESTUTIL_H
#define PL_FIXTURE_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pl_euicc_test.h"
#include "provline/proto/fx_msg.h"
#include "provline/protocol/apdu.h"
#include "provline/protocol/wr.h"

/* ---- files ---- */

/* A fresh private directory /tmp/plfixture.XXXXXX for device state files, ptys and logs
 * (its own prefix: a cleanup of other tests' /tmp/pltest.* directories cannot pull the
 * files from under a running virtual device). 0 on success. Remove with pl_test_rmtree. */
int pl_ft_dir_new(char *out, size_t cap);
/* Mints an eUICC with n OTKs (random EID) on t's PKI and curve into dir/name. */
int pl_ft_mint(struct pl_et *t, const char *dir, const char *name, unsigned n, char *path,
               size_t cap);

/* ---- packages ---- */

/* One sealed package: the envelope 'FF70' (signed with the PKI's SM-DPf key, which plays
 * the Key Maker), plus the parts of form (b) and the transactionId. */
struct pl_ft_pkg {
    struct pl_wr env;  /* 'FF70' */
    struct pl_wr hdr;  /* 'FF71' */
    struct pl_wr bpp;  /* 'BF36' */
    uint8_t eid[16];
    uint16_t otk_id;
    uint8_t tid[16];
    size_t tid_len;
};
/* Binds the TS.48 profile upp_name (tests/data/ts48) to (eid, otpk, otk_id) and seals it. */
int pl_ft_pkg_make(struct pl_et *t, const uint8_t eid[16], const uint8_t otpk[65],
                   uint16_t otk_id, const char *upp_name, struct pl_ft_pkg *out);
/* Same for OTK otk_id of an open eUICC. */
int pl_ft_pkg_for(struct pl_et *t, const struct pl_euicc *e, uint16_t otk_id,
                  const char *upp_name, struct pl_ft_pkg *out);
/* Same for the eUICC state file at path (opened and closed here). */
int pl_ft_pkg_for_path(struct pl_et *t, const char *path, uint16_t otk_id, const char *upp_name,
                       struct pl_ft_pkg *out);
void pl_ft_pkg_free(struct pl_ft_pkg *p);

/* ---- requests and responses ---- */

int pl_ft_req_identify(uint64_t id, struct pl_wr *w);
int pl_ft_req_upload_otks(uint64_t id, struct pl_wr *w);
int pl_ft_req_load_env(uint64_t id, const uint8_t *env, size_t len, struct pl_wr *w);
int pl_ft_req_load_parts(uint64_t id, const uint8_t eid[16], const uint8_t *hdr, size_t hdr_len,
                         const uint8_t *bpp, size_t bpp_len, struct pl_wr *w);
/* has_seq false: all pending notifications. */
int pl_ft_req_fetch(uint64_t id, bool has_seq, uint64_t seq, struct pl_wr *w);
int pl_ft_req_notif_sent(uint64_t id, uint64_t seq, struct pl_wr *w);
int pl_ft_req_delete_otks(uint64_t id, const uint8_t *raw, size_t len, struct pl_wr *w);
int pl_ft_req_configure_eim(uint64_t id, const uint8_t *raw, size_t len, struct pl_wr *w);
/* An AddInitialEim 'BF57' request with one eIM named eim_id. */
int pl_ft_add_initial_eim(const char *eim_id, struct pl_wr *w);

/* ---- a counting APDU seam in front of a software eUICC ---- */

struct pl_ft_card {
    struct pl_euicc *e;
    size_t apdus;           /* C-APDUs seen */
    size_t store_data;      /* STORE DATA blocks */
    size_t package_blocks;  /* STORE DATA blocks of a package: first block of 'FF71' or of a
                             * BPP segment ('BF36', 'A0'..'A3', '86', '87', '88'), and their
                             * continuations */
    int fail_at;            /* > 0: the fail_at-th APDU (1-based) fails with PL_ERR_IO */
    bool in_package;        /* internal */
};
/* transmit for struct pl_apdu_ops (user = struct pl_ft_card *). */
int pl_ft_card_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                        size_t rcap, size_t *rlen);

/* ---- the virtual device as a child process ---- */

struct pl_ft_proc {
    pid_t pid;
    int out_fd;        /* its stdout (read end) */
    char ready[256];   /* the READY line it printed */
    char err_path[512]; /* its stderr goes to this file */
};
/* Starts PL_BIN_DIR/provline-vdevice with argv (argv[0] ignored, NULL-terminated), stderr
 * to err_path, and waits (at most wait_ms) for its "READY ..." line on stdout. 0 on
 * success; on failure the child is killed. */
int pl_ft_vdevice_start(struct pl_ft_proc *p, const char *const *argv, const char *err_path,
                        int wait_ms);
/* Waits at most wait_ms for the child to exit; its status via *status (waitpid form).
 * 0 when it exited, -1 on timeout (the child is left running). */
int pl_ft_proc_wait(struct pl_ft_proc *p, int wait_ms, int *status);
/* SIGTERM, then wait up to wait_ms, then SIGKILL. Returns the exit status (waitpid form) or
 * -1. Safe on a stopped process. */
int pl_ft_proc_stop(struct pl_ft_proc *p, int wait_ms);
/* The number of lines of the child's stderr file that contain needle. */
int pl_ft_count_lines(const char *path, const char *needle);

#endif
