/* Station <-> Key Maker messages: strict frame decoding and semantic checks, and the signed
 * audit checkpoint of protocol version 2.
 * GSMA SGP.41 v1.0 Esbpp (ESBPP01-03) over provline's transport; reference/IFPP.md §6.3
 * ("h_n in every REPORT, Key Maker returns a signed checkpoint"); FIPS 186-4 ECDSA;
 * docs/station-keymaker-protocol.md §3-§5 (the rules checked here), docs/audit-trail.md §4. */
#include "provline/proto/km_msg.h"

#include "pb_strict.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return PL_ERR_MALFORMED;                                                               \
    } while (0)

void pl_km_msg_init(provline_keymaker_Msg *m)
{
    provline_keymaker_Msg z = provline_keymaker_Msg_init_zero;
    *m = z;
}

void pl_km_msg_release(provline_keymaker_Msg *m)
{
    if (m == NULL)
        return;
    pb_release(provline_keymaker_Msg_fields, m);
    pl_km_msg_init(m);
}

/* Printable ASCII only: strings end up in logs and operator screens. */
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

static bool id_ok(pb_size_t size)
{
    return size == PL_KM_ID_LEN;
}

static bool otk_id_ok(uint32_t id)
{
    return id >= 1u && id <= 0xFFFFu;
}

static bool tid_ok(pb_size_t size)
{
    return size >= 1u && size <= PL_KM_TID_MAX;
}

static int check_hello(const provline_keymaker_Hello *h)
{
    CHECK(str_ok(h->station_id, sizeof(h->station_id)));
    return PL_OK;
}

static int check_hello_ack(const provline_keymaker_HelloAck *h)
{
    CHECK(str_ok(h->keymaker_id, sizeof(h->keymaker_id)));
    for (pb_size_t i = 0; i < h->outstanding_count; i++)
        CHECK(id_ok(h->outstanding[i].size));
    return PL_OK;
}

static int check_upload(const provline_keymaker_OtkUpload *u)
{
    CHECK(u->eid.size == PL_KM_EID_LEN);
    CHECK(u->cert_euicc.size > 0u && u->cert_eum.size > 0u);
    CHECK(u->otks_count >= 1u);
    for (pb_size_t i = 0; i < u->otks_count; i++) {
        const provline_keymaker_SignedOtk *o = &u->otks[i];
        CHECK(otk_id_ok(o->otk_id));
        CHECK(o->otpk.size == PL_KM_OTPK_LEN && o->otpk.bytes[0] == 0x04u);
        CHECK(o->sig.size == PL_KM_SIG_LEN);
        for (pb_size_t j = 0; j < i; j++)
            CHECK(u->otks[j].otk_id != o->otk_id);
    }
    return PL_OK;
}

static int check_upload_result(const provline_keymaker_OtkUploadResult *r)
{
    CHECK(r->eid.size == PL_KM_EID_LEN);
    for (pb_size_t i = 0; i < r->accepted_count; i++)
        CHECK(otk_id_ok(r->accepted[i]));
    for (pb_size_t i = 0; i < r->rejected_count; i++)
        CHECK(otk_id_ok(r->rejected[i].otk_id));
    return PL_OK;
}

static int check_lease_request(const provline_keymaker_LeaseRequest *q)
{
    switch (q->mode) {
    case provline_keymaker_LeaseMode_LEASE_MODE_PREFETCH:
        CHECK(q->eids_count >= 1u);
        for (pb_size_t i = 0; i < q->eids_count; i++)
            CHECK(q->eids[i].size == PL_KM_EID_LEN);
        CHECK(q->max_packages >= 1u && q->max_packages <= PL_KM_PREFETCH_MAX);
        CHECK(q->eid.size == 0u && q->otk_id == 0u);
        return PL_OK;
    case provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME:
        CHECK(q->eid.size == PL_KM_EID_LEN && otk_id_ok(q->otk_id));
        CHECK(q->eids_count == 0u && q->max_packages <= 1u);
        return PL_OK;
    case provline_keymaker_LeaseMode_LEASE_MODE_UNSPECIFIED:
    default:
        return PL_ERR_MALFORMED;
    }
}

static int check_lease(const provline_keymaker_Lease *l)
{
    CHECK(id_ok(l->lease_id.size));
    for (pb_size_t i = 0; i < l->packages_count; i++) {
        const provline_keymaker_Package *p = &l->packages[i];
        CHECK(id_ok(p->package_id.size) && p->eid.size == PL_KM_EID_LEN);
        CHECK(otk_id_ok(p->otk_id) && tid_ok(p->transaction_id.size));
        CHECK(p->iccid.size == PL_KM_ICCID_LEN);
        CHECK(p->envelope != NULL && p->envelope->size >= 1u
              && p->envelope->size <= PL_KM_ENVELOPE_MAX);
    }
    return PL_OK;
}

static int check_ack(const provline_keymaker_Ack *a)
{
    CHECK(id_ok(a->lease_id.size) && a->package_ids_count >= 1u);
    for (pb_size_t i = 0; i < a->package_ids_count; i++)
        CHECK(id_ok(a->package_ids[i].size));
    return PL_OK;
}

static int check_ack_result(const provline_keymaker_AckResult *a)
{
    CHECK(id_ok(a->lease_id.size));
    for (pb_size_t i = 0; i < a->acked_count; i++)
        CHECK(id_ok(a->acked[i].size));
    for (pb_size_t i = 0; i < a->unknown_count; i++)
        CHECK(id_ok(a->unknown[i].size));
    return PL_OK;
}

static int check_report(const provline_keymaker_Report *r, uint32_t version)
{
    CHECK(r->entries_count >= 1u);
    CHECK(r->audit_head.size == 0u || r->audit_head.size == PL_KM_AUDIT_LEN);
    /* v2: a chain id asks for a signed checkpoint of (chain id, seq, head); a seq without
     * it means nothing. v1 has neither field. */
    CHECK(r->audit_chain_id.size == 0u || r->audit_chain_id.size == PL_KM_CHAIN_ID_LEN);
    CHECK(r->audit_chain_id.size == 0u || r->audit_head.size == PL_KM_AUDIT_LEN);
    CHECK(r->audit_chain_id.size != 0u || r->audit_seq == 0u);
    CHECK(r->audit_seq <= (uint64_t)INT64_MAX); /* audit seqs are SQLite integers */
    CHECK(version >= 2u || r->audit_chain_id.size == 0u);
    for (pb_size_t i = 0; i < r->entries_count; i++) {
        const provline_keymaker_ReportEntry *e = &r->entries[i];
        CHECK(id_ok(e->package_id.size) && tid_ok(e->transaction_id.size));
        CHECK(e->eid.size == PL_KM_EID_LEN);
        switch (e->which_outcome) {
        case provline_keymaker_ReportEntry_pir_tag:
            CHECK(e->outcome.pir.size >= 1u);
            break;
        case provline_keymaker_ReportEntry_fpa_error_tag:
            CHECK(str_ok(e->outcome.fpa_error.detail, sizeof(e->outcome.fpa_error.detail)));
            break;
        case provline_keymaker_ReportEntry_released_tag:
            CHECK(e->outcome.released);
            break;
        default:
            return PL_ERR_MALFORMED;
        }
    }
    return PL_OK;
}

static bool code_ok(int code)
{
    return code >= 0 && code <= (int)provline_keymaker_ErrorCode_ERROR_AUDIT_FORK;
}

static int check_report_ack(const provline_keymaker_ReportAck *r, uint32_t version)
{
    for (pb_size_t i = 0; i < r->results_count; i++)
        CHECK(id_ok(r->results[i].package_id.size));
    CHECK(code_ok((int)r->checkpoint_refused));
    if (version < 2u) {
        CHECK(!r->has_checkpoint && r->checkpoint_refused == 0);
        return PL_OK;
    }
    if (r->has_checkpoint) {
        const provline_keymaker_AuditCheckpoint *cp = &r->checkpoint;
        CHECK(r->checkpoint_refused == 0);
        CHECK(cp->station_key.size == PL_KM_STATION_KEY_LEN);
        CHECK(cp->chain_id.size == PL_KM_CHAIN_ID_LEN && cp->head.size == PL_KM_AUDIT_LEN);
        CHECK(cp->signature.size == PL_KM_SIG_LEN);
    }
    return PL_OK;
}

static int check_token(const provline_keymaker_OtkDeletionToken *t)
{
    CHECK(t->eid.size == PL_KM_EID_LEN && t->counter >= 1u && t->request.size >= 1u);
    return PL_OK;
}

static int check_receipt_ack(const provline_keymaker_OtkDeletionReceiptAck *a)
{
    CHECK(a->eid.size == PL_KM_EID_LEN);
    for (pb_size_t i = 0; i < a->voided_count; i++)
        CHECK(otk_id_ok(a->voided[i]));
    for (pb_size_t i = 0; i < a->settled_count; i++)
        CHECK(id_ok(a->settled[i].size));
    return PL_OK;
}

int pl_km_msg_check(const provline_keymaker_Msg *m)
{
    if (m == NULL)
        return PL_ERR_INVAL;
    if (m->version < PL_KM_VERSION_MIN || m->version > PL_KM_VERSION)
        return PL_ERR_UNSUPPORTED;
    CHECK(id_ok(m->msg_id.size));
    CHECK(m->reply_to.size == 0u || id_ok(m->reply_to.size));
    switch (m->which_body) {
    case PL_KM_HELLO:
        return check_hello(&m->body.hello);
    case PL_KM_HELLO_ACK:
        return check_hello_ack(&m->body.hello_ack);
    case PL_KM_OTK_UPLOAD:
        return check_upload(&m->body.otk_upload);
    case PL_KM_OTK_UPLOAD_RESULT:
        return check_upload_result(&m->body.otk_upload_result);
    case PL_KM_LEASE_REQUEST:
        return check_lease_request(&m->body.lease_request);
    case PL_KM_LEASE:
        return check_lease(&m->body.lease);
    case PL_KM_ACK:
        return check_ack(&m->body.ack);
    case PL_KM_ACK_RESULT:
        return check_ack_result(&m->body.ack_result);
    case PL_KM_REPORT:
        return check_report(&m->body.report, m->version);
    case PL_KM_REPORT_ACK:
        return check_report_ack(&m->body.report_ack, m->version);
    case PL_KM_TOKEN_REQUEST:
        CHECK(m->body.otk_deletion_token_request.eid.size == PL_KM_EID_LEN);
        return PL_OK;
    case PL_KM_TOKEN:
        return check_token(&m->body.otk_deletion_token);
    case PL_KM_ERROR:
        CHECK(str_ok(m->body.error.detail, sizeof(m->body.error.detail)));
        return PL_OK;
    case PL_KM_RECEIPT:
        CHECK(m->body.otk_deletion_receipt.eid.size == PL_KM_EID_LEN);
        CHECK(m->body.otk_deletion_receipt.counter >= 1u);
        CHECK(m->body.otk_deletion_receipt.response.size >= 1u);
        return PL_OK;
    case PL_KM_RECEIPT_ACK:
        return check_receipt_ack(&m->body.otk_deletion_receipt_ack);
    default:
        return PL_ERR_MALFORMED;
    }
}

int pl_km_msg_decode(const uint8_t *buf, size_t len, provline_keymaker_Msg *m)
{
    int rc;

    if (m == NULL || (buf == NULL && len != 0))
        return PL_ERR_INVAL;
    pl_km_msg_init(m);
    rc = pl_pb_decode_strict(provline_keymaker_Msg_fields, buf, len, PL_KM_FRAME_MAX, m);
    if (rc == PL_OK)
        rc = pl_km_msg_check(m);
    if (rc != PL_OK)
        pl_km_msg_release(m);
    return rc;
}

int pl_km_msg_encode(const provline_keymaker_Msg *m, struct pl_wr *w)
{
    int rc;

    if (m == NULL || w == NULL)
        return PL_ERR_INVAL;
    if ((rc = pl_wr_status(w)))
        return rc;
    if ((rc = pl_km_msg_check(m))) {
        pl_wr_fail(w, rc);
        return rc;
    }
    return pl_pb_encode_wr(provline_keymaker_Msg_fields, m, PL_KM_FRAME_MAX, w);
}

const char *pl_km_body_name(unsigned which)
{
    switch (which) {
    case 0:
        return "none";
    case PL_KM_HELLO:
        return "hello";
    case PL_KM_HELLO_ACK:
        return "hello_ack";
    case PL_KM_OTK_UPLOAD:
        return "otk_upload";
    case PL_KM_OTK_UPLOAD_RESULT:
        return "otk_upload_result";
    case PL_KM_LEASE_REQUEST:
        return "lease_request";
    case PL_KM_LEASE:
        return "lease";
    case PL_KM_ACK:
        return "ack";
    case PL_KM_ACK_RESULT:
        return "ack_result";
    case PL_KM_REPORT:
        return "report";
    case PL_KM_REPORT_ACK:
        return "report_ack";
    case PL_KM_TOKEN_REQUEST:
        return "otk_deletion_token_request";
    case PL_KM_TOKEN:
        return "otk_deletion_token";
    case PL_KM_ERROR:
        return "error";
    case PL_KM_RECEIPT:
        return "otk_deletion_receipt";
    case PL_KM_RECEIPT_ACK:
        return "otk_deletion_receipt_ack";
    default:
        return "unknown";
    }
}

const char *pl_km_error_name(int code)
{
    static const char *const names[] = {
        "NONE",
        "MALFORMED",
        "UNSUPPORTED_VERSION",
        "STALE_SEQ",
        "MSG_ID_REUSED",
        "UNKNOWN_EID",
        "UNKNOWN_OTK",
        "OTK_NOT_FREE",
        "CHAIN_INVALID",
        "OTK_SIGNATURE_INVALID",
        "OTK_CONFLICT",
        "EID_MISMATCH",
        "NO_PROFILE",
        "UNKNOWN_PACKAGE",
        "UNKNOWN_TRANSACTION",
        "PIR_INVALID",
        "PIR_MISMATCH",
        "NOT_OWNER",
        "STATE",
        "INTERNAL",
        "UNEXPECTED",
        "RECEIPT_INVALID",
        "AUDIT_FORK",
    };
    if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[code];
}

const char *pl_km_state_name(int state)
{
    switch (state) {
    case provline_keymaker_PackageState_PACKAGE_STATE_ISSUED:
        return "issued";
    case provline_keymaker_PackageState_PACKAGE_STATE_INSTALLED:
        return "installed";
    case provline_keymaker_PackageState_PACKAGE_STATE_FAILED:
        return "failed";
    case provline_keymaker_PackageState_PACKAGE_STATE_POSSIBLY_USED:
        return "possibly-used";
    default:
        return "unknown";
    }
}

int pl_km_set_bytes(uint8_t *dst, pb_size_t *size, size_t cap, const void *src, size_t n)
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

void pl_km_set_str(char *dst, size_t cap, const char *src)
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

/* ------------------------------------------------------- audit checkpoints ---- */

#define TBS_LABEL "provline-audit-checkpoint-v2"

int pl_km_report_set_audit(provline_keymaker_Report *r, const struct pl_km_audit_head *a)
{
    int rc = PL_ERR_INTERNAL;
    if (r == NULL || a == NULL)
        return PL_ERR_INVAL;
    if ((rc = PL_KM_SET_BYTES(r->audit_head, a->h, PL_KM_AUDIT_LEN))
        || (rc = PL_KM_SET_BYTES(r->audit_chain_id, a->chain_id, PL_KM_CHAIN_ID_LEN)))
        return rc;
    r->audit_seq = a->seq;
    return PL_OK;
}

void pl_km_checkpoint_tbs(const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                          const uint8_t chain_id[PL_KM_CHAIN_ID_LEN], uint64_t seq,
                          const uint8_t h[PL_KM_AUDIT_LEN], uint8_t out[PL_KM_CHECKPOINT_TBS_LEN])
{
    struct pl_wr w;
    pl_wr_init_fixed(&w, out, PL_KM_CHECKPOINT_TBS_LEN);
    pl_wr_bytes(&w, TBS_LABEL, sizeof(TBS_LABEL) - 1u);
    pl_wr_bytes(&w, station_key, PL_KM_STATION_KEY_LEN);
    pl_wr_bytes(&w, chain_id, PL_KM_CHAIN_ID_LEN);
    pl_wr_u64be(&w, seq);
    pl_wr_bytes(&w, h, PL_KM_AUDIT_LEN); /* exactly fills out: cannot fail */
}

int pl_km_checkpoint_set(provline_keymaker_AuditCheckpoint *cp,
                         const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                         const struct pl_km_audit_head *a, const uint8_t sig[PL_KM_SIG_LEN])
{
    int rc = PL_ERR_INTERNAL;

    if (cp == NULL || station_key == NULL || a == NULL || sig == NULL)
        return PL_ERR_INVAL;
    cp->seq = a->seq;
    if ((rc = PL_KM_SET_BYTES(cp->station_key, station_key, PL_KM_STATION_KEY_LEN))
        || (rc = PL_KM_SET_BYTES(cp->chain_id, a->chain_id, PL_KM_CHAIN_ID_LEN))
        || (rc = PL_KM_SET_BYTES(cp->head, a->h, PL_KM_AUDIT_LEN)))
        return rc;
    return PL_KM_SET_BYTES(cp->signature, sig, PL_KM_SIG_LEN);
}

int pl_km_checkpoint_sign(const struct pl_eckey *key, const struct pl_rng *rng,
                          const uint8_t station_key[PL_KM_STATION_KEY_LEN],
                          const struct pl_km_audit_head *a, provline_keymaker_AuditCheckpoint *cp)
{
    uint8_t tbs[PL_KM_CHECKPOINT_TBS_LEN], sig[PL_KM_SIG_LEN];
    int rc = PL_ERR_INTERNAL;

    if (key == NULL || rng == NULL || station_key == NULL || a == NULL || cp == NULL)
        return PL_ERR_INVAL;
    pl_km_checkpoint_tbs(station_key, a->chain_id, a->seq, a->h, tbs);
    if ((rc = pl_ecdsa_sign(key, tbs, sizeof(tbs), rng, sig)))
        return rc;
    return pl_km_checkpoint_set(cp, station_key, a, sig);
}

int pl_km_checkpoint_verify(const struct pl_eckey *key, const provline_keymaker_AuditCheckpoint *cp)
{
    uint8_t tbs[PL_KM_CHECKPOINT_TBS_LEN];

    if (key == NULL || cp == NULL)
        return PL_ERR_INVAL;
    if (cp->station_key.size != PL_KM_STATION_KEY_LEN || cp->chain_id.size != PL_KM_CHAIN_ID_LEN
        || cp->head.size != PL_KM_AUDIT_LEN || cp->signature.size != PL_KM_SIG_LEN)
        return PL_ERR_MALFORMED;
    pl_km_checkpoint_tbs(cp->station_key.bytes, cp->chain_id.bytes, cp->seq, cp->head.bytes, tbs);
    return pl_ecdsa_verify(key, tbs, sizeof(tbs), cp->signature.bytes) == PL_OK
               ? PL_OK
               : PL_ERR_BAD_SIGNATURE;
}
