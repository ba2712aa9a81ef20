/* A software eUICC as the Key Maker tests' device: minted by the test PKI, its GetIfppInfo
 * read the way a station reads it (the OtkUpload data), and a sealed package loaded the
 * way a station loads it (the ES10f header, then the SGP.22 segments). Used by
 * tests/integration/test_keymaker_zmq.c and test_kmclient.c. Never linked into a product.
 * reference/IFPP.md §6.1-§6.3; docs/ifpp-es10f.md. */
#ifndef PL_KMDEV_H
#define PL_KMDEV_H

#include "pl_euicc_test.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"

#include <stddef.h>
#include <stdint.h>

struct pl_kmdev {
    struct pl_euicc *e;
    unsigned ch;
    struct pl_wr info_raw; /* info's certificate views borrow this buffer */
    struct pl_es10f_info *info;
};

/* Mints an eUICC with n_otks signed OTKs into t->dir/name, opens a session and reads its
 * GetIfppInfo into d->info. 0, or a negative error (d half-open: pl_kmdev_close it). */
int pl_kmdev_open(struct pl_et *t, const char *name, unsigned n_otks, struct pl_kmdev *d);
void pl_kmdev_close(struct pl_kmdev *d); /* accepts an emptied or half-open device */

/* Loads a decoded envelope: its ES10f header, then every BPP segment; the raw PIR goes to
 * pir, the last status word to *sw and the segments sent to *sent. 0 or a negative error. */
int pl_kmdev_load(struct pl_kmdev *d, const struct pl_ifpp_pkg *env, struct pl_wr *pir,
                  uint16_t *sw, size_t *sent, size_t *n_segments);

#endif
