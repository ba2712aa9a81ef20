/* Strict protobuf framing shared by the Key Maker and fixture messages (pb_strict.h).
 * nanopb 0.4.7: pb_istream_from_buffer, pb_decode, pb_get_encoded_size, pb_encode. */
#include "pb_strict.h"

#include <pb_decode.h>
#include <pb_encode.h>

#include "provline/protocol/err.h"

int pl_pb_decode_strict(const pb_msgdesc_t *fields, const uint8_t *buf, size_t len, size_t max,
                        void *msg)
{
    if (len > max)
        return PL_ERR_OVERFLOW;
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    if (!pb_decode(&s, fields, msg))
        return PL_ERR_MALFORMED;
    return s.bytes_left != 0u ? PL_ERR_MALFORMED : PL_OK;
}

int pl_pb_encode_wr(const pb_msgdesc_t *fields, const void *msg, size_t max, struct pl_wr *w)
{
    size_t n = 0;
    int rc;

    if ((rc = pl_wr_status(w)))
        return rc;
    if (!pb_get_encoded_size(&n, fields, msg)) {
        pl_wr_fail(w, PL_ERR_INTERNAL);
        return PL_ERR_INTERNAL;
    }
    if (n > max) {
        pl_wr_fail(w, PL_ERR_OVERFLOW);
        return PL_ERR_OVERFLOW;
    }
    uint8_t *dst = pl_wr_reserve(w, n);
    if (dst == NULL)
        return pl_wr_status(w);
    pb_ostream_t os = pb_ostream_from_buffer(dst, n);
    if (!pb_encode(&os, fields, msg) || os.bytes_written != n) {
        pl_wr_fail(w, PL_ERR_INTERNAL);
        return PL_ERR_INTERNAL;
    }
    return PL_OK;
}
