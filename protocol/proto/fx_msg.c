/* Station <-> fixture (device FPA) messages: strict decoding and semantic checks.
 * provline's own "Esfac" (GSMA SGP.41 v1.0 leaves DM <-> FPA out of scope); reference/IFPP.md
 * §6.3, §7 case 22; docs/fixture-protocol.md §3 (the rules checked here). Protobuf wire
 * format: protobuf.dev "Encoding" (varint keys, wire types 0/1/2/5), read through nanopb's
 * public stream functions. */
#include <pb_decode.h>
#include <pb_encode.h>
#include <stdlib.h>
#include <string.h>

#include "provline/proto/fx_msg.h"

#include "pb_strict.h"

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond))                                                                        \
            return PL_ERR_MALFORMED;                                                        \
    } while (0)

void pl_fx_msg_init(provline_fixture_Msg *m)
{
    provline_fixture_Msg z = provline_fixture_Msg_init_zero;
    *m = z;
}

void pl_fx_msg_release(provline_fixture_Msg *m)
{
    if (m == NULL)
        return;
    pb_release(provline_fixture_Msg_fields, m);
    pl_fx_msg_init(m);
}

/* Printable ASCII only: details end up in logs and operator screens. */
static bool str_ok(const char *s, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0u)
            return true;
        if (c < 0x20u || c > 0x7eu)
            return false;
    }
    return false; /* no terminator within the field */
}

static size_t blob_len(const pb_bytes_array_t *b)
{
    return b == NULL ? 0u : (size_t)b->size;
}

/* A FT_POINTER field that must be present: 1..max bytes. */
static bool blob_ok(const pb_bytes_array_t *b, size_t max)
{
    return b != NULL && b->size >= 1u && (size_t)b->size <= max;
}

static int check_load(const provline_fixture_LoadPackageRequest *q)
{
    if (q->envelope != NULL) {
        CHECK(blob_ok(q->envelope, PL_FX_PACKAGE_MAX));
        CHECK(q->eid.size == 0u && q->header == NULL && q->bpp == NULL);
        return PL_OK;
    }
    CHECK(q->eid.size == PL_FX_EID_LEN);
    CHECK(blob_ok(q->header, PL_FX_HEADER_MAX));
    CHECK(blob_ok(q->bpp, PL_FX_PACKAGE_MAX));
    return PL_OK;
}

static bool enum_ok(int v, int max)
{
    return v >= 0 && v <= max;
}

static int check_error(const provline_fixture_Error *e)
{
    CHECK(e->code != provline_fixture_ErrorCode_ERROR_NONE);
    CHECK(enum_ok((int)e->code, (int)_provline_fixture_ErrorCode_MAX));
    CHECK(enum_ok((int)e->stage, (int)_provline_fixture_Stage_MAX));
    CHECK(str_ok(e->detail, sizeof(e->detail)));
    CHECK(e->euicc_eid.size == 0u || e->euicc_eid.size == PL_FX_EID_LEN);
    CHECK(e->segment <= e->segments_total || e->stage != provline_fixture_Stage_STAGE_SEGMENT);
    return PL_OK;
}

int pl_fx_msg_check(const provline_fixture_Msg *m)
{
    if (m == NULL)
        return PL_ERR_INVAL;
    if (m->version != PL_FX_VERSION)
        return PL_ERR_UNSUPPORTED;
    CHECK(m->request_id != 0u || m->which_body == PL_FX_ERROR);
    switch (m->which_body) {
    case PL_FX_IDENTIFY:
    case PL_FX_UPLOAD_OTKS:
    case PL_FX_FETCH_RESULTS:
    case PL_FX_NOTIFICATION_SENT:
    case PL_FX_NOTIFICATION_SENT_RSP:
        return PL_OK;
    case PL_FX_IDENTIFY_RSP: {
        const provline_fixture_IdentifyResponse *r = &m->body.identify_rsp;
        CHECK(r->eid.size == PL_FX_EID_LEN);
        CHECK(blob_len(r->ifpp_info) <= PL_FX_IFPP_INFO_MAX);
        CHECK(!r->factory_mode || blob_len(r->ifpp_info) >= 1u);
        return PL_OK;
    }
    case PL_FX_UPLOAD_OTKS_RSP:
        CHECK(blob_ok(m->body.upload_otks_rsp.ifpp_info, PL_FX_IFPP_INFO_MAX));
        return PL_OK;
    case PL_FX_LOAD_PACKAGE:
        return check_load(&m->body.load_package);
    case PL_FX_LOAD_PACKAGE_RSP: {
        const provline_fixture_LoadPackageResponse *r = &m->body.load_package_rsp;
        CHECK(r->pir.size >= 1u);
        CHECK(r->segments_sent <= r->segments_total);
        return PL_OK;
    }
    case PL_FX_FETCH_RESULTS_RSP:
        CHECK(blob_ok(m->body.fetch_results_rsp.list, PL_FX_RESULTS_MAX));
        return PL_OK;
    case PL_FX_DELETE_OTKS:
        CHECK(blob_ok(m->body.delete_otks.request, PL_FX_DOTK_REQ_MAX));
        return PL_OK;
    case PL_FX_DELETE_OTKS_RSP:
        CHECK(m->body.delete_otks_rsp.response.size >= 1u);
        return PL_OK;
    case PL_FX_CONFIGURE_EIM:
        CHECK(blob_ok(m->body.configure_initial_eim.request, PL_FX_EIM_REQ_MAX));
        return PL_OK;
    case PL_FX_CONFIGURE_EIM_RSP:
        CHECK(m->body.configure_initial_eim_rsp.response.size >= 1u);
        return PL_OK;
    case PL_FX_ERROR:
        return check_error(&m->body.error);
    default:
        return PL_ERR_MALFORMED;
    }
}

int pl_fx_msg_decode(const uint8_t *buf, size_t len, provline_fixture_Msg *m)
{
    int rc;

    if (m == NULL || (buf == NULL && len != 0))
        return PL_ERR_INVAL;
    pl_fx_msg_init(m);
    rc = pl_pb_decode_strict(provline_fixture_Msg_fields, buf, len, PL_FX_MSG_MAX, m);
    if (rc == PL_OK)
        rc = pl_fx_msg_check(m);
    if (rc != PL_OK)
        pl_fx_msg_release(m);
    return rc;
}

int pl_fx_msg_encode(const provline_fixture_Msg *m, struct pl_wr *w)
{
    int rc;

    if (m == NULL || w == NULL)
        return PL_ERR_INVAL;
    if ((rc = pl_wr_status(w)))
        return rc;
    if ((rc = pl_fx_msg_check(m))) {
        pl_wr_fail(w, rc);
        return rc;
    }
    return pl_pb_encode_wr(provline_fixture_Msg_fields, m, PL_FX_MSG_MAX, w);
}

int pl_fx_msg_peek(const uint8_t *buf, size_t len, uint64_t *request_id, unsigned *which)
{
    uint64_t id = 0;
    unsigned body = 0;

    if ((buf == NULL && len != 0) || request_id == NULL || which == NULL)
        return PL_ERR_INVAL;
    *request_id = 0;
    *which = 0;
    if (len > PL_FX_MSG_MAX)
        return PL_ERR_OVERFLOW;
    pb_istream_t s = pb_istream_from_buffer(buf, len);
    for (;;) {
        pb_wire_type_t wt;
        uint32_t tag;
        bool eof = false;
        if (!pb_decode_tag(&s, &wt, &tag, &eof)) {
            if (eof)
                break;
            return PL_ERR_MALFORMED;
        }
        if (tag == provline_fixture_Msg_request_id_tag && wt == PB_WT_VARINT) {
            if (!pb_decode_varint(&s, &id))
                return PL_ERR_MALFORMED;
            continue;
        }
        if (tag >= provline_fixture_Msg_identify_tag && tag <= provline_fixture_Msg_error_tag
            && wt == PB_WT_STRING)
            body = (unsigned)tag; /* the last oneof member wins, as in pb_decode */
        if (!pb_skip_field(&s, wt))
            return PL_ERR_MALFORMED;
    }
    *request_id = id;
    *which = body;
    return PL_OK;
}

bool pl_fx_is_request(unsigned which)
{
    switch (which) {
    case PL_FX_IDENTIFY:
    case PL_FX_UPLOAD_OTKS:
    case PL_FX_LOAD_PACKAGE:
    case PL_FX_FETCH_RESULTS:
    case PL_FX_NOTIFICATION_SENT:
    case PL_FX_DELETE_OTKS:
    case PL_FX_CONFIGURE_EIM:
        return true;
    default:
        return false;
    }
}

unsigned pl_fx_response_for(unsigned which)
{
    /* Every response tag is its request's tag + 1 (fixture.proto). */
    return pl_fx_is_request(which) ? which + 1u : 0u;
}

int pl_fx_set_blob(pb_bytes_array_t **field, const void *src, size_t n)
{
    if (field == NULL || (src == NULL && n != 0))
        return PL_ERR_INVAL;
    if (n > PB_SIZE_MAX)
        return PL_ERR_OVERFLOW;
    if (*field != NULL) {
        memset((*field)->bytes, 0, (*field)->size);
        free(*field);
        *field = NULL;
    }
    if (n == 0)
        return PL_OK;
    pb_bytes_array_t *b = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(n));
    if (b == NULL)
        return PL_ERR_NOMEM;
    b->size = (pb_size_t)n;
    memcpy(b->bytes, src, n);
    *field = b;
    return PL_OK;
}

int pl_fx_set_bytes(uint8_t *dst, pb_size_t *size, size_t cap, const void *src, size_t n)
{
    if (dst == NULL || size == NULL || (src == NULL && n != 0))
        return PL_ERR_INVAL;
    if (n > cap)
        return PL_ERR_OVERFLOW;
    if (n)
        memcpy(dst, src, n);
    *size = (pb_size_t)n;
    return PL_OK;
}

void pl_fx_set_str(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    if (dst == NULL || cap == 0)
        return;
    for (; src != NULL && src[i] != '\0' && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20u && c <= 0x7eu) ? (char)c : '?';
    }
    dst[i] = '\0';
}

const uint8_t *pl_fx_blob(const pb_bytes_array_t *field, size_t *len)
{
    if (field == NULL || field->size == 0u) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = field->size;
    return field->bytes;
}

const char *pl_fx_body_name(unsigned which)
{
    switch (which) {
    case 0: return "none";
    case PL_FX_IDENTIFY: return "identify";
    case PL_FX_IDENTIFY_RSP: return "identify_rsp";
    case PL_FX_UPLOAD_OTKS: return "upload_otks";
    case PL_FX_UPLOAD_OTKS_RSP: return "upload_otks_rsp";
    case PL_FX_LOAD_PACKAGE: return "load_package";
    case PL_FX_LOAD_PACKAGE_RSP: return "load_package_rsp";
    case PL_FX_FETCH_RESULTS: return "fetch_results";
    case PL_FX_FETCH_RESULTS_RSP: return "fetch_results_rsp";
    case PL_FX_NOTIFICATION_SENT: return "notification_sent";
    case PL_FX_NOTIFICATION_SENT_RSP: return "notification_sent_rsp";
    case PL_FX_DELETE_OTKS: return "delete_otks";
    case PL_FX_DELETE_OTKS_RSP: return "delete_otks_rsp";
    case PL_FX_CONFIGURE_EIM: return "configure_initial_eim";
    case PL_FX_CONFIGURE_EIM_RSP: return "configure_initial_eim_rsp";
    case PL_FX_ERROR: return "error";
    default: return "unknown";
    }
}

const char *pl_fx_error_name(int code)
{
    static const char *const names[] = {
        "NONE", "MALFORMED_REQUEST", "UNSUPPORTED_VERSION", "REQUEST_ID_REUSED",
        "BAD_PACKAGE", "EID_MISMATCH", "CARD_SW", "CARD_IO", "CARD_RESPONSE", "NO_RESULT",
        "UNEXPECTED", "INTERNAL",
    };
    if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[code];
}

const char *pl_fx_stage_name(int stage)
{
    static const char *const names[] = {
        "none", "request", "session", "get_eid", "command", "header", "segment",
    };
    if (stage < 0 || (size_t)stage >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[stage];
}
