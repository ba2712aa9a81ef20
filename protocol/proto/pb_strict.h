/* Internal to protocol/proto/: the strict protobuf framing both message families share
 * (docs/station-keymaker-protocol.md §3, docs/fixture-protocol.md §3): a whole buffer is
 * exactly one message, no bytes left over, a size cap either way; validation is the
 * caller's (pl_km_msg_check, pl_fx_msg_check). nanopb 0.4.7 pb_decode / pb_encode. */
#ifndef PROVLINE_PROTO_PB_STRICT_H
#define PROVLINE_PROTO_PB_STRICT_H

#include <pb.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/wr.h"

/* Decodes [buf, buf+len) into the zero-initialised *msg: PL_ERR_OVERFLOW beyond max,
 * PL_ERR_MALFORMED for bytes nanopb refuses or bytes left over. On error the caller
 * releases *msg (pb_release) as it may hold allocations. */
int pl_pb_decode_strict(const pb_msgdesc_t *fields, const uint8_t *buf, size_t len, size_t max,
                        void *msg);
/* Appends the encoding of the already validated *msg to w: PL_ERR_OVERFLOW (w failed) when
 * it would exceed max, PL_ERR_INTERNAL if nanopb fails; w's status otherwise. */
int pl_pb_encode_wr(const pb_msgdesc_t *fields, const void *msg, size_t max, struct pl_wr *w);

#endif
