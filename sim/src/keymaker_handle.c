/* Reference Key Maker (SM-DPf): one station request -> one reply, in one transaction.
 * GSMA SGP.41 v1.0 Esbpp: ESBPP02 eUICC data (OtkUpload; DPFF10 verify CI -> EUM ->
 * eUICC -> OTK signature, IFPP.md §6.4), ESBPP01 BPP delivery (LeaseRequest/Lease; DPFF01-04
 * binding with PFS, GENS06; one package per OTK, GENS08), ESBPP03 Profile Loading Report
 * (Report; DPFF05-07 euiccSignPIR verified against CERT.EUICC, SGP.22 v2.5 §2.5.6 / §5.6),
 * EUICCF03 / DMF03 OTK deletion tokens (docs/ifpp-es10f.md §5). reference/IFPP.md §6.1, §6.3,
 * §7 (cases 1, 4, 9, 10-13, 23); docs/station-keymaker-protocol.md §4-§7. */
#include "keymaker_internal.h"
#include "provline/proto/km_msg.h"
#include "provline/protocol/iccid.h"
#include "provline/protocol/bpp_bind.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/ifpp_envelope.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A refusal the station gets as an Error (or an entry result): a protocol outcome, not a
 * failure of the Key Maker. */
struct refusal {
    int code; /* provline_keymaker_ErrorCode */
    char detail[128];
};

static int refuse(struct refusal *f, int code, const char *detail)
{
    f->code = code;
    pl_km_set_str(f->detail, sizeof(f->detail), detail);
    return PL_OK;
}

#define E(x) provline_keymaker_ErrorCode_ERROR_##x

struct ctx {
    struct pl_km *km;
    const char *station;
    const provline_keymaker_Msg *req;
    provline_keymaker_Msg *rep;
    int64_t now;
    int64_t pkg_seq; /* the station's package counter, written back at the end */
    struct refusal refusal;
};

static const char *short_key(const char *station, char *out, size_t cap)
{
    pl_km_set_str(out, cap < 9 ? cap : 9, station);
    return out;
}

/* ------------------------------------------------------------------ helpers ---- */

static int euicc_pub(struct pl_km *km, const uint8_t eid[16], struct pl_eckey **pub)
{
    sqlite3_stmt *st = NULL;
    struct pl_cert *cert = NULL;
    int rc = PL_ERR_INTERNAL;

    *pub = NULL;
    if ((rc = pl_km_db_row(km, &st, "SELECT cert_euicc FROM euicc WHERE eid = ?", "b", eid,
                           (size_t)16)))
        goto out;
    const void *der = sqlite3_column_blob(st, 0);
    int len = sqlite3_column_bytes(st, 0);
    if (der == NULL || len <= 0) {
        rc = PL_ERR_DB;
        goto out;
    }
    if ((rc = pl_cert_parse(der, (size_t)len, &cert)))
        goto out;
    rc = pl_cert_public_key(cert, pub);
out:
    pl_cert_free(cert);
    sqlite3_finalize(st);
    return rc;
}

static int log_event(struct ctx *c, const char *kind, const uint8_t *package_id, const char *detail)
{
    return pl_km_db_exec(c->km, NULL,
                         "INSERT INTO event(at, station, kind, package_id, detail) "
                         "VALUES(?, ?, ?, ?, ?)",
                         "ittbt", c->now, c->station, kind, package_id,
                         package_id ? (size_t)16 : (size_t)0, detail);
}

/* ------------------------------------------------------------------- hello ---- */

static int on_hello(struct ctx *c)
{
    const provline_keymaker_Hello *h = &c->req->body.hello;
    provline_keymaker_HelloAck *a = &c->rep->body.hello_ack;
    sqlite3_stmt *st = NULL;
    int64_t last = 0;
    int rc = PL_ERR_INTERNAL;

    c->rep->which_body = PL_KM_HELLO_ACK;
    if ((rc =
             pl_km_db_exec(c->km, NULL, "UPDATE station SET name = ?, last_hello = ? WHERE key = ?",
                           "tit", h->station_id, c->now, c->station)))
        return rc;
    if ((rc = pl_km_db_int(c->km, &last, "SELECT last_seq FROM station WHERE key = ?", "t",
                           c->station)))
        return rc;
    pl_km_set_str(a->keymaker_id, sizeof(a->keymaker_id), c->km->keymaker_id);
    a->last_seq_seen = (uint64_t)last;
    if ((rc = pl_km_db_prepare(c->km, &st,
                               "SELECT package_id FROM package WHERE station = ? AND state IN "
                               "('issued', 'possibly-used') ORDER BY issued_at, package_id",
                               "t", c->station)))
        return rc;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->outstanding_count >= PL_KM_OUTSTANDING_MAX) {
            a->outstanding_truncated = true;
            break;
        }
        pb_size_t i = a->outstanding_count;
        if ((rc = pl_km_db_col_fixed(st, 0, a->outstanding[i].bytes, 16)))
            goto out;
        a->outstanding[i].size = 16;
        a->outstanding_count++;
    }
    rc = (r == SQLITE_ROW || r == SQLITE_DONE) ? PL_OK : PL_ERR_DB;
    pl_km_logf(c->km, PL_KM_LOG_INFO,
               "event=hello station_name=\"%s\" last_seq_ack=%llu outstanding=%u", h->station_id,
               (unsigned long long)h->last_seq_ack, (unsigned)a->outstanding_count);
out:
    sqlite3_finalize(st);
    return rc;
}

/* -------------------------------------------------------------- otk upload ---- */

static bool same_blob(sqlite3_stmt *st, int col, const void *p, size_t n)
{
    const void *b = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    return b != NULL && len >= 0 && (size_t)len == n && memcmp(b, p, n) == 0;
}

static int on_otk_upload(struct ctx *c)
{
    const provline_keymaker_OtkUpload *u = &c->req->body.otk_upload;
    provline_keymaker_OtkUploadResult *res = &c->rep->body.otk_upload_result;
    struct pl_cert *euicc = NULL, *eum = NULL;
    struct pl_eckey *pub = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t cert_eid[PL_CERT_EID_LEN];
    char eidhex[33];
    int rc = PL_ERR_INTERNAL;

    pl_km_hex(u->eid.bytes, 16, eidhex, sizeof(eidhex));
    /* DPFF10 / IFPP.md §6.4: the eUICC data is authentic only if CERT.EUICC chains to
     * our CI through CERT.EUM; otherwise nothing of the upload is kept. */
    if (pl_cert_parse(u->cert_euicc.bytes, u->cert_euicc.size, &euicc) != PL_OK
        || pl_cert_parse(u->cert_eum.bytes, u->cert_eum.size, &eum) != PL_OK) {
        rc = refuse(&c->refusal, E(CHAIN_INVALID), "certificate does not parse");
        goto out;
    }
    const struct pl_cert *inter[1] = {eum};
    int v = pl_cert_verify_chain(euicc, inter, 1, c->km->ci, PL_CERT_ROLE_EUICC, (time_t)c->now);
    if (v != PL_OK) {
        pl_km_logf(c->km, PL_KM_LOG_WARN, "event=otk_upload_refused eid=%s reason=\"%s\"", eidhex,
                   pl_strerror(v));
        rc = refuse(&c->refusal, E(CHAIN_INVALID), pl_strerror(v));
        goto out;
    }
    if (pl_cert_eid(euicc, cert_eid) != PL_OK || memcmp(cert_eid, u->eid.bytes, 16) != 0) {
        rc = refuse(&c->refusal, E(EID_MISMATCH), "EID differs from CERT.EUICC serialNumber");
        goto out;
    }
    if (pl_cert_curve(euicc) != c->km->curve) {
        rc = refuse(&c->refusal, E(CHAIN_INVALID), "eUICC curve differs from the SM-DPf curve");
        goto out;
    }
    if ((rc = pl_cert_public_key(euicc, &pub)))
        goto out;

    /* One CERT.EUICC per EID: a different (even validly chained) one is refused. */
    const uint8_t *der;
    size_t der_len;
    pl_cert_der(euicc, &der, &der_len);
    rc = pl_km_db_row(c->km, &st, "SELECT cert_euicc FROM euicc WHERE eid = ?", "b", u->eid.bytes,
                      (size_t)16);
    if (rc == PL_OK) {
        bool same = same_blob(st, 0, der, der_len);
        sqlite3_finalize(st);
        st = NULL;
        if (!same) {
            rc = refuse(&c->refusal, E(EID_MISMATCH),
                        "another CERT.EUICC is registered for this EID");
            goto out;
        }
    } else if (rc == PL_ERR_NOT_FOUND) {
        sqlite3_finalize(st);
        st = NULL;
        const uint8_t *eum_der;
        size_t eum_len;
        pl_cert_der(eum, &eum_der, &eum_len);
        if ((rc = pl_km_db_exec(c->km, NULL,
                                "INSERT INTO euicc(eid, cert_euicc, cert_eum, curve, first_seen) "
                                "VALUES(?, ?, ?, ?, ?)",
                                "bbbii", u->eid.bytes, (size_t)16, der, der_len, eum_der, eum_len,
                                (int64_t)c->km->curve, c->now)))
            goto out;
    } else {
        goto out;
    }

    memcpy(res->eid.bytes, u->eid.bytes, 16);
    res->eid.size = 16;
    for (pb_size_t i = 0; i < u->otks_count; i++) {
        const provline_keymaker_SignedOtk *o = &u->otks[i];
        struct pl_ifpp_otk otk;
        struct pl_eckey *pt = NULL;
        int code = E(NONE);

        otk.otk_id = (uint16_t)o->otk_id;
        memcpy(otk.otpk, o->otpk.bytes, PL_EC_PUB_LEN);
        memcpy(otk.sig, o->sig.bytes, PL_ECDSA_SIG_LEN);
        /* Never bind to a key the eUICC did not sign (§6.4): a station could substitute its
         * own key and open the profile. The point must also lie on our curve. */
        if (pl_ifpp_otk_verify(pub, u->eid.bytes, &otk) != PL_OK)
            code = E(OTK_SIGNATURE_INVALID);
        else if (pl_eckey_from_public(c->km->curve, otk.otpk, &pt) != PL_OK)
            code = E(OTK_SIGNATURE_INVALID);
        pl_eckey_free(pt);
        if (code == E(NONE)) {
            rc = pl_km_db_row(c->km, &st, "SELECT otpk FROM otk WHERE eid = ? AND otk_id = ?",
                              "bi", u->eid.bytes, (size_t)16, (int64_t)otk.otk_id);
            if (rc == PL_OK) {
                if (!same_blob(st, 0, otk.otpk, PL_EC_PUB_LEN))
                    code = E(OTK_CONFLICT); /* never overwrite a registered key */
            } else if (rc == PL_ERR_NOT_FOUND) {
                sqlite3_finalize(st);
                st = NULL;
                if ((rc =
                         pl_km_db_exec(c->km, NULL,
                                       "INSERT INTO otk(eid, otk_id, otpk, sig, state, "
                                       "uploaded_by, uploaded_at) VALUES(?, ?, ?, ?, 'FREE', ?, ?)",
                                       "bibbti", u->eid.bytes, (size_t)16, (int64_t)otk.otk_id,
                                       otk.otpk, (size_t)PL_EC_PUB_LEN, otk.sig,
                                       (size_t)PL_ECDSA_SIG_LEN, c->station, c->now)))
                    goto out;
            } else {
                goto out;
            }
            sqlite3_finalize(st);
            st = NULL;
        }
        if (code == E(NONE)) {
            res->accepted[res->accepted_count++] = o->otk_id;
        } else {
            res->rejected[res->rejected_count].otk_id = o->otk_id;
            res->rejected[res->rejected_count].code = (provline_keymaker_ErrorCode)code;
            res->rejected_count++;
            pl_km_logf(c->km, PL_KM_LOG_WARN, "event=otk_rejected eid=%s otk_id=%u reason=%s",
                       eidhex, (unsigned)o->otk_id, pl_km_error_name(code));
        }
    }
    c->rep->which_body = PL_KM_OTK_UPLOAD_RESULT;
    pl_km_logf(c->km, PL_KM_LOG_INFO, "event=otk_upload eid=%s accepted=%u rejected=%u", eidhex,
               (unsigned)res->accepted_count, (unsigned)res->rejected_count);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    pl_eckey_free(pub);
    pl_cert_free(euicc);
    pl_cert_free(eum);
    return rc;
}

/* ------------------------------------------------------------------ leases ---- */

/* FREE OTK of (eid, otk_id): PL_OK with its public key; PL_ERR_NOT_FOUND (unknown) or
 * PL_ERR_STATE (not FREE). */
static int otk_free(struct pl_km *km, const uint8_t eid[16], uint16_t otk_id,
                    uint8_t otpk[PL_EC_PUB_LEN])
{
    sqlite3_stmt *st = NULL;
    int rc = PL_ERR_INTERNAL;

    rc = pl_km_db_row(km, &st, "SELECT otpk, state FROM otk WHERE eid = ? AND otk_id = ?", "bi",
                      eid, (size_t)16, (int64_t)otk_id);
    if (rc == PL_OK)
        rc = pl_km_otk_state_from_db(sqlite3_column_text(st, 1)) != PL_KM_OTK_FREE
                 ? PL_ERR_STATE
                 : pl_km_db_col_fixed(st, 0, otpk, PL_EC_PUB_LEN);
    sqlite3_finalize(st);
    return rc;
}

/* Binds the first available profile to (eid, otk_id) and fills pkg. PL_ERR_NOT_FOUND when
 * the inventory is empty, PL_ERR_STATE when the OTK is no longer FREE (constraint). */
static int bind_one(struct ctx *c, const uint8_t lease_id[16], int64_t expiry,
                    const uint8_t eid[16], uint16_t otk_id, const uint8_t otpk[PL_EC_PUB_LEN],
                    provline_keymaker_Package *pkg)
{
    struct pl_km *km = c->km;
    sqlite3_stmt *st = NULL;
    struct pl_wr upp, bpp, env;
    uint8_t package_id[16], tid[16], iccid[PL_ICCID_LEN];
    int64_t profile_id = 0;
    char name[65];
    int changes = 0;
    int rc = PL_ERR_INTERNAL;

    pl_wr_init_dyn(&upp, PL_KM_UPP_MAX);
    pl_wr_init_dyn(&bpp, PL_KM_ENVELOPE_MAX);
    pl_wr_init_dyn(&env, PL_KM_ENVELOPE_MAX);
    if ((rc = pl_km_db_row(km, &st,
                           "SELECT id, iccid, upp, name FROM profile WHERE state = 'available' "
                           "ORDER BY id LIMIT 1",
                           "")))
        goto out;
    profile_id = (int64_t)sqlite3_column_int64(st, 0);
    if ((rc = pl_km_db_col_fixed(st, 1, iccid, sizeof(iccid)))
        || (rc = pl_km_db_col_wr(st, 2, &upp)))
        goto out;
    pl_km_set_str(name, sizeof(name), (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    st = NULL;

    if ((rc = km->rng.fill(km->rng.user, package_id, sizeof(package_id)))
        || (rc = km->rng.fill(km->rng.user, tid, sizeof(tid))))
        goto out;

    /* SGP.22 §2.5.4 binding with a fresh ephemeral key (GENS06); keys wiped inside. */
    struct pl_bind_params bp = {
        .curve = km->curve,
        .dp_key = km->dpf_key,
        .euicc_otpk = otpk,
        .eid = eid,
        .host_id = (const uint8_t *)PL_KM_HOST_ID,
        .host_id_len = sizeof(PL_KM_HOST_ID) - 1,
        .tid = tid,
        .tid_len = sizeof(tid),
        .upp = upp.buf,
        .upp_len = upp.len,
        .spn = km->spn,
        .profile_name = name,
        .profile_class = -1,
        .replace_session_keys = km->rsk,
        .rng = &km->rng,
    };
    if ((rc = pl_bpp_bind(&bp, &bpp)))
        goto out;

    struct pl_ifpp_pkg p;
    memset(&p, 0, sizeof(p));
    memcpy(p.package_id, package_id, 16);
    pl_km_set_str(p.batch_id, sizeof(p.batch_id), km->batch_id);
    memcpy(p.eid, eid, 16);
    p.otk_id = otk_id;
    if ((rc = pl_sha256(otpk, PL_EC_PUB_LEN, p.otpk_hash)))
        goto out;
    p.tid = tid;
    p.tid_len = sizeof(tid);
    p.curve = km->curve;
    p.not_after = (uint64_t)(c->now + (int64_t)km->package_seconds);
    p.key_maker_seq = (uint64_t)++c->pkg_seq;
    p.dpf_chain.n = 1;
    pl_cert_der(km->dpf, &p.dpf_chain.cert[0].der, &p.dpf_chain.cert[0].len);
    p.bpp = bpp.buf;
    p.bpp_len = bpp.len;
    if ((rc = pl_ifpp_pkg_encode_sign(&p, km->dpf_key, &km->rng, &env)))
        goto out;
    if (env.len > PL_KM_ENVELOPE_MAX) {
        rc = PL_ERR_OVERFLOW;
        goto out;
    }

    /* The registry: package row (UNIQUE(eid, otk_id) and UNIQUE otk.package_id enforce
     * GENS08 even if the check above were bypassed), OTK FREE -> BOUND, profile reserved. */
    rc = pl_km_db_exec(km, NULL,
                       "INSERT INTO package(package_id, eid, otk_id, transaction_id, profile_id, "
                       "station, lease_id, state, envelope, km_seq, issued_at, expiry, not_after) "
                       "VALUES(?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?, ?, ?, ?)",
                       "bbibitbbiiii", package_id, (size_t)16, eid, (size_t)16, (int64_t)otk_id,
                       tid, (size_t)16, profile_id, c->station, lease_id, (size_t)16, env.buf,
                       env.len, (int64_t)p.key_maker_seq, c->now, expiry, (int64_t)p.not_after);
    if (rc == PL_ERR_EXISTS) {
        rc = PL_ERR_STATE;
        goto out;
    }
    if (rc)
        goto out;
    if ((rc = pl_km_db_exec(km, &changes,
                            "UPDATE otk SET state = 'BOUND', package_id = ? "
                            "WHERE eid = ? AND otk_id = ? AND state = 'FREE'",
                            "bbi", package_id, (size_t)16, eid, (size_t)16, (int64_t)otk_id)))
        goto out;
    if (changes != 1) {
        rc = PL_ERR_STATE;
        goto out;
    }
    if ((rc = pl_km_db_exec(km, &changes,
                            "UPDATE profile SET state = 'reserved' WHERE id = ? AND state = "
                            "'available'",
                            "i", profile_id)))
        goto out;
    if (changes != 1) {
        rc = PL_ERR_INTERNAL;
        goto out;
    }

    memcpy(pkg->package_id.bytes, package_id, 16);
    pkg->package_id.size = 16;
    memcpy(pkg->eid.bytes, eid, 16);
    pkg->eid.size = 16;
    pkg->otk_id = otk_id;
    memcpy(pkg->transaction_id.bytes, tid, 16);
    pkg->transaction_id.size = 16;
    memcpy(pkg->iccid.bytes, iccid, sizeof(iccid));
    pkg->iccid.size = sizeof(iccid);
    pkg->envelope = malloc(PB_BYTES_ARRAY_T_ALLOCSIZE(env.len));
    if (pkg->envelope == NULL) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    pkg->envelope->size = (pb_size_t)env.len;
    memcpy(pkg->envelope->bytes, env.buf, env.len);

    char ph[33], eh[33], ih[PL_ICCID_TEXT_MAX];
    pl_iccid_text(iccid, ih);
    pl_km_logf(km, PL_KM_LOG_INFO,
               "event=package_issued package=%s eid=%s otk_id=%u iccid=%s state=issued bytes=%zu",
               pl_km_hex(package_id, 16, ph, sizeof(ph)), pl_km_hex(eid, 16, eh, sizeof(eh)),
               (unsigned)otk_id, ih, env.len);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    pl_wr_free(&upp); /* zeroises the clear-text profile copy */
    pl_wr_free(&bpp);
    pl_wr_free(&env);
    return rc;
}

static int on_lease_request(struct ctx *c)
{
    const provline_keymaker_LeaseRequest *q = &c->req->body.lease_request;
    provline_keymaker_Lease *l = &c->rep->body.lease;
    struct pl_km *km = c->km;
    uint8_t lease_id[16], otpk[PL_EC_PUB_LEN];
    int64_t expiry = c->now + (int64_t)km->lease_seconds;
    int rc = PL_ERR_INTERNAL;

    if ((rc = km->rng.fill(km->rng.user, lease_id, sizeof(lease_id))))
        return rc;
    if ((rc = pl_km_db_exec(km, NULL,
                            "INSERT INTO lease(lease_id, station, issued_at, expiry) "
                            "VALUES(?, ?, ?, ?)",
                            "btii", lease_id, (size_t)16, c->station, c->now, expiry)))
        return rc;
    memcpy(l->lease_id.bytes, lease_id, 16);
    l->lease_id.size = 16;
    l->expiry = (uint64_t)expiry;

    if (q->mode == provline_keymaker_LeaseMode_LEASE_MODE_JUST_IN_TIME) {
        int64_t known = 0;
        uint16_t otk_id = (uint16_t)q->otk_id;
        if (pl_km_db_int(km, &known, "SELECT count(*) FROM euicc WHERE eid = ?", "b", q->eid.bytes,
                         (size_t)16)
                != PL_OK
            || known == 0)
            return refuse(&c->refusal, E(UNKNOWN_EID), "no verified OtkUpload for this EID");
        rc = otk_free(km, q->eid.bytes, otk_id, otpk);
        if (rc == PL_ERR_NOT_FOUND)
            return refuse(&c->refusal, E(UNKNOWN_OTK), "no verified OTK with this otkId");
        if (rc == PL_ERR_STATE)
            return refuse(&c->refusal, E(OTK_NOT_FREE), "OTK already bound, consumed or void");
        if (rc)
            return rc;
        rc = bind_one(c, lease_id, expiry, q->eid.bytes, otk_id, otpk, &l->packages[0]);
        if (rc == PL_ERR_NOT_FOUND)
            return refuse(&c->refusal, E(NO_PROFILE), "profile inventory empty");
        if (rc == PL_ERR_STATE)
            return refuse(&c->refusal, E(OTK_NOT_FREE), "OTK already bound");
        if (rc)
            return rc;
        l->packages_count = 1;
    } else {
        /* PREFETCH: one package per listed eUICC that has no unsettled package yet, on its
         * lowest FREE OTK, up to max_packages. */
        for (pb_size_t i = 0; i < q->eids_count && l->packages_count < q->max_packages; i++) {
            const uint8_t *eid = q->eids[i].bytes;
            int64_t busy = 0, id = 0;
            bool dup = false;
            for (pb_size_t j = 0; j < i; j++)
                dup = dup || memcmp(q->eids[j].bytes, eid, 16) == 0;
            if (dup)
                continue;
            if ((rc = pl_km_db_int(km, &busy,
                                   "SELECT count(*) FROM package WHERE eid = ? AND state IN "
                                   "('issued', 'possibly-used')",
                                   "b", eid, (size_t)16)))
                return rc;
            if (busy)
                continue;
            rc = pl_km_db_int(km, &id,
                              "SELECT otk_id FROM otk WHERE eid = ? AND state = 'FREE' "
                              "ORDER BY otk_id LIMIT 1",
                              "b", eid, (size_t)16);
            if (rc == PL_ERR_NOT_FOUND)
                continue; /* unknown eUICC or no FREE OTK left */
            if (rc)
                return rc;
            if ((rc = otk_free(km, eid, (uint16_t)id, otpk)))
                return rc;
            rc = bind_one(c, lease_id, expiry, eid, (uint16_t)id, otpk,
                          &l->packages[l->packages_count]);
            if (rc == PL_ERR_NOT_FOUND) {
                if (l->packages_count == 0)
                    return refuse(&c->refusal, E(NO_PROFILE), "profile inventory empty");
                break;
            }
            if (rc)
                return rc;
            l->packages_count++;
        }
    }
    c->rep->which_body = PL_KM_LEASE;
    return PL_OK;
}

/* --------------------------------------------------------------------- ack ---- */

static int on_ack(struct ctx *c)
{
    const provline_keymaker_Ack *a = &c->req->body.ack;
    provline_keymaker_AckResult *res = &c->rep->body.ack_result;
    int rc = PL_ERR_INTERNAL;

    memcpy(res->lease_id.bytes, a->lease_id.bytes, 16);
    res->lease_id.size = 16;
    for (pb_size_t i = 0; i < a->package_ids_count; i++) {
        int64_t n = 0;
        if ((rc = pl_km_db_int(c->km, &n,
                               "SELECT count(*) FROM package WHERE package_id = ? AND lease_id = ? "
                               "AND station = ?",
                               "bbt", a->package_ids[i].bytes, (size_t)16, a->lease_id.bytes,
                               (size_t)16, c->station)))
            return rc;
        if (n == 1) {
            if ((rc = pl_km_db_exec(c->km, NULL,
                                    "UPDATE package SET acked_at = coalesce(acked_at, ?) "
                                    "WHERE package_id = ?",
                                    "ib", c->now, a->package_ids[i].bytes, (size_t)16)))
                return rc;
            memcpy(res->acked[res->acked_count].bytes, a->package_ids[i].bytes, 16);
            res->acked[res->acked_count++].size = 16;
        } else {
            memcpy(res->unknown[res->unknown_count].bytes, a->package_ids[i].bytes, 16);
            res->unknown[res->unknown_count++].size = 16;
        }
    }
    c->rep->which_body = PL_KM_ACK_RESULT;
    return PL_OK;
}

/* ------------------------------------------------------------------ report ---- */

struct pkg_row {
    uint8_t package_id[16];
    uint8_t eid[16];
    uint16_t otk_id;
    uint8_t tid[16];
    size_t tid_len;
    int state;
    int64_t profile_id;
    char station[PL_KM_STATION_MAX + 1];
    uint8_t iccid[PL_ICCID_LEN];
};

static int pkg_load(struct pl_km *km, const char *where, const void *key, size_t key_len,
                    struct pkg_row *p, struct pl_wr *pir)
{
    sqlite3_stmt *st = NULL;
    char sql[512];
    int rc = PL_ERR_INTERNAL;

    int n = snprintf(sql, sizeof(sql),
                     "SELECT p.package_id, p.eid, p.otk_id, p.transaction_id, p.state, "
                     "p.profile_id, p.station, f.iccid, p.pir FROM package p "
                     "JOIN profile f ON f.id = p.profile_id WHERE %s = ?",
                     where);
    if (n < 0 || (size_t)n >= sizeof(sql))
        return PL_ERR_INTERNAL;
    if ((rc = pl_km_db_row(km, &st, sql, "b", key, key_len)))
        goto out;
    int tl = sqlite3_column_bytes(st, 3);
    if (tl < 1 || tl > 16) {
        rc = PL_ERR_DB;
        goto out;
    }
    p->tid_len = (size_t)tl;
    if ((rc = pl_km_db_col_fixed(st, 0, p->package_id, 16))
        || (rc = pl_km_db_col_fixed(st, 1, p->eid, 16))
        || (rc = pl_km_db_col_fixed(st, 3, p->tid, p->tid_len))
        || (rc = pl_km_db_col_fixed(st, 7, p->iccid, sizeof(p->iccid))))
        goto out;
    p->otk_id = (uint16_t)sqlite3_column_int(st, 2);
    p->state = pl_km_pkg_state_from_db(sqlite3_column_text(st, 4));
    p->profile_id = (int64_t)sqlite3_column_int64(st, 5);
    pl_km_set_str(p->station, sizeof(p->station), (const char *)sqlite3_column_text(st, 6));
    if (pir && (rc = pl_km_db_col_wr(st, 8, pir)))
        goto out;
    rc = p->state ? PL_OK : PL_ERR_DB;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Settles a package on verified proof: success -> installed (OTK CONSUMED, profile
 * installed); error -> failed (OTK VOID, the profile goes back to the inventory). */
static int settle(struct ctx *c, const struct pkg_row *p, bool success, const uint8_t *pir,
                  size_t pir_len)
{
    struct pl_km *km = c->km;
    int rc = PL_ERR_INTERNAL;

    if ((rc = pl_km_db_exec(km, NULL,
                            "UPDATE package SET state = ?, pir = ?, settled_at = ? "
                            "WHERE package_id = ?",
                            "tbib", success ? "installed" : "failed", pir, pir_len, c->now,
                            p->package_id, (size_t)16)))
        return rc;
    if ((rc = pl_km_db_exec(km, NULL,
                            "UPDATE otk SET state = ? WHERE eid = ? AND otk_id = ? AND "
                            "package_id = ?",
                            "tbib", success ? "CONSUMED" : "VOID", p->eid, (size_t)16,
                            (int64_t)p->otk_id, p->package_id, (size_t)16)))
        return rc;
    return pl_km_db_exec(km, NULL, "UPDATE profile SET state = ? WHERE id = ?", "ti",
                         success ? "installed" : "available", p->profile_id);
}

static int entry_pir(struct ctx *c, const provline_keymaker_ReportEntry *e,
                     provline_keymaker_EntryResult *res)
{
    struct pl_km *km = c->km;
    struct pl_pir pir;
    struct pkg_row p;
    struct pl_eckey *pub = NULL;
    struct pl_wr stored;
    const uint8_t *raw = e->outcome.pir.bytes;
    size_t raw_len = e->outcome.pir.size;
    int rc = PL_ERR_INTERNAL;

    pl_wr_init_dyn(&stored, PL_ES10F_PIR_MAX);
    memset(&p, 0, sizeof(p));
    if (pl_pir_decode(raw, raw_len, &pir) != PL_OK) {
        res->code = E(PIR_INVALID);
        rc = log_event(c, "pir_malformed", e->package_id.bytes, NULL);
        goto out;
    }
    /* The PIR's own transactionId names the package (IFPP.md §6.2: PIR tid = ISCR tid). */
    rc = pkg_load(km, "p.transaction_id", pir.tid, pir.tid_len, &p, &stored);
    if (rc == PL_ERR_NOT_FOUND) {
        res->code = E(UNKNOWN_TRANSACTION);
        rc = log_event(c, "pir_unknown_transaction", e->package_id.bytes, NULL);
        goto out;
    }
    if (rc)
        goto out;
    if (memcmp(p.package_id, e->package_id.bytes, 16) != 0 || e->transaction_id.size != p.tid_len
        || memcmp(e->transaction_id.bytes, p.tid, p.tid_len) != 0) {
        res->code = E(PIR_MISMATCH); /* an old PIR replayed for another package (case 11) */
        rc = log_event(c, "pir_mismatch", e->package_id.bytes, NULL);
        goto out;
    }
    if (memcmp(e->eid.bytes, p.eid, 16) != 0) {
        res->code = E(EID_MISMATCH);
        rc = PL_OK;
        goto out;
    }
    /* DPFF05-07: euiccSignPIR over the received 'BF27' with the CERT.EUICC verified at
     * upload time. A forged or altered PIR (case 10) stops here. */
    if ((rc = euicc_pub(km, p.eid, &pub)))
        goto out;
    if (pl_pir_verify(&pir, pub) != PL_OK) {
        char ph[33];
        pl_km_logf(km, PL_KM_LOG_WARN, "event=pir_rejected package=%s reason=bad_signature",
                   pl_km_hex(p.package_id, 16, ph, sizeof(ph)));
        res->code = E(PIR_INVALID);
        rc = log_event(c, "pir_forged", p.package_id, NULL);
        goto out;
    }
    if (pir.success && pir.meta.has_iccid && memcmp(pir.meta.iccid, p.iccid, PL_ICCID_LEN) != 0) {
        res->code = E(PIR_MISMATCH);
        rc = log_event(c, "pir_iccid_mismatch", p.package_id, NULL);
        goto out;
    }
    if (p.state == PL_KM_PKG_INSTALLED || p.state == PL_KM_PKG_FAILED) {
        /* Already settled: the same PIR again is fine (a retried report), any other is not. */
        if (stored.len == raw_len && memcmp(stored.buf, raw, raw_len) == 0) {
            res->accepted = true;
        } else {
            res->code = E(PIR_MISMATCH);
            rc = log_event(c, "pir_second_result", p.package_id, NULL);
            if (rc)
                goto out;
        }
        res->state = (provline_keymaker_PackageState)p.state;
        rc = PL_OK;
        goto out;
    }
    if ((rc = settle(c, &p, pir.success, raw, raw_len)))
        goto out;
    res->accepted = true;
    res->state = pir.success ? provline_keymaker_PackageState_PACKAGE_STATE_INSTALLED
                             : provline_keymaker_PackageState_PACKAGE_STATE_FAILED;
    char ph[33], eh[33];
    pl_km_logf(
        km, PL_KM_LOG_INFO, "event=package_settled package=%s eid=%s otk_id=%u state=%s otk=%s%s%s",
        pl_km_hex(p.package_id, 16, ph, sizeof(ph)), pl_km_hex(p.eid, 16, eh, sizeof(eh)),
        (unsigned)p.otk_id, pir.success ? "installed" : "failed", pir.success ? "CONSUMED" : "VOID",
        pir.success ? "" : " reason=", pir.success ? "" : pl_pir_reason_name(pir.reason));
    rc = PL_OK;
out:
    pl_eckey_free(pub);
    pl_wr_free(&stored);
    return rc;
}

static int entry_unproven(struct ctx *c, const provline_keymaker_ReportEntry *e,
                          provline_keymaker_EntryResult *res)
{
    struct pkg_row p;
    int rc = PL_ERR_INTERNAL;
    bool released = e->which_outcome == provline_keymaker_ReportEntry_released_tag;

    rc = pkg_load(c->km, "p.package_id", e->package_id.bytes, 16, &p, NULL);
    if (rc == PL_ERR_NOT_FOUND) {
        res->code = E(UNKNOWN_PACKAGE);
        return PL_OK;
    }
    if (rc)
        return rc;
    /* Unsigned claims count only from the station that holds the lease. */
    if (strcmp(p.station, c->station) != 0) {
        res->code = E(NOT_OWNER);
        return PL_OK;
    }
    if (e->transaction_id.size != p.tid_len
        || memcmp(e->transaction_id.bytes, p.tid, p.tid_len) != 0) {
        res->code = E(PIR_MISMATCH);
        return PL_OK;
    }
    if (memcmp(e->eid.bytes, p.eid, 16) != 0) {
        res->code = E(EID_MISMATCH);
        return PL_OK;
    }
    res->accepted = true;
    if (p.state == PL_KM_PKG_ISSUED) {
        /* No proof either way: the package stays loadable on its one chip, so it is
         * "possibly used" until a signed PIR or a deletion receipt (IFPP.md §6.3). */
        const provline_keymaker_FpaError *fe = &e->outcome.fpa_error;
        if (released)
            rc = pl_km_db_exec(c->km, NULL,
                               "UPDATE package SET state = 'possibly-used', fpa_code = NULL, "
                               "fpa_detail = 'released' WHERE package_id = ?",
                               "b", p.package_id, (size_t)16);
        else
            rc = pl_km_db_exec(c->km, NULL,
                               "UPDATE package SET state = 'possibly-used', fpa_code = ?, "
                               "fpa_detail = ? WHERE package_id = ?",
                               "itb", (int64_t)fe->code, fe->detail, p.package_id, (size_t)16);
        if (rc)
            return rc;
        p.state = PL_KM_PKG_POSSIBLY_USED;
        char ph[33];
        pl_km_logf(c->km, PL_KM_LOG_INFO, "event=package_unproven package=%s outcome=%s state=%s",
                   pl_km_hex(p.package_id, 16, ph, sizeof(ph)), released ? "released" : "fpa_error",
                   "possibly-used");
    }
    res->state = (provline_keymaker_PackageState)p.state;
    return PL_OK;
}

/* IFPP.md §6.3 "Key Maker returns a signed checkpoint": signs (station key, chain id, seq,
 * head) with the SM-DPf key (docs/decisions/0013-audit-checkpoint-key.md) and remembers it.
 * Once a head is signed for (station, chain, seq), another head for the same point is a
 * fork of the station's trail (rewritten history): refused with AUDIT_FORK, logged, and the
 * first signature stays the only one. The report's entries are judged all the same. */
static int sign_checkpoint(struct ctx *c, const provline_keymaker_Report *r,
                           provline_keymaker_ReportAck *a)
{
    struct pl_km *km = c->km;
    struct pl_km_audit_head head;
    uint8_t key[PL_KM_STATION_KEY_LEN];
    sqlite3_stmt *st = NULL;
    char ch[2 * PL_KM_CHAIN_ID_LEN + 1], sk[16];
    int rc = PL_ERR_INTERNAL;

    if (r->audit_chain_id.size != PL_KM_CHAIN_ID_LEN)
        return PL_OK; /* not asked for (version 1, or a head without its chain) */
    memcpy(head.chain_id, r->audit_chain_id.bytes, PL_KM_CHAIN_ID_LEN);
    head.seq = r->audit_seq;
    memcpy(head.h, r->audit_head.bytes, PL_KM_AUDIT_LEN);
    pl_km_hex(head.chain_id, PL_KM_CHAIN_ID_LEN, ch, sizeof(ch));
    short_key(c->station, sk, sizeof(sk));
    if (pl_km_station_key(c->station, key) != PL_OK) {
        pl_km_logf(km, PL_KM_LOG_ERROR, "event=checkpoint_not_signed station=%s reason=bad_key", sk);
        a->checkpoint_refused = E(INTERNAL);
        return PL_OK;
    }
    rc = pl_km_db_row(km, &st,
                      "SELECT h, sig FROM audit_checkpoint WHERE station = ? AND chain_id = ? AND "
                      "seq = ?",
                      "tbi", c->station, head.chain_id, (size_t)PL_KM_CHAIN_ID_LEN,
                      (int64_t)head.seq);
    if (rc == PL_OK) {
        if (!same_blob(st, 0, head.h, PL_KM_AUDIT_LEN)) {
            char detail[80];
            snprintf(detail, sizeof(detail), "chain=%s seq=%llu", ch, (unsigned long long)head.seq);
            pl_km_logf(km, PL_KM_LOG_WARN, "event=audit_fork station=%s chain=%s seq=%llu", sk, ch,
                       (unsigned long long)head.seq);
            a->checkpoint_refused = E(AUDIT_FORK);
            rc = log_event(c, "audit_fork", NULL, detail);
            goto out;
        }
        /* The same point again (a later report with an unchanged head): the same signature. */
        uint8_t sig[PL_KM_SIG_LEN];
        if ((rc = pl_km_db_col_fixed(st, 1, sig, sizeof(sig)))
            || (rc = pl_km_checkpoint_set(&a->checkpoint, key, &head, sig)))
            goto out;
        a->has_checkpoint = true;
        goto out;
    }
    if (rc != PL_ERR_NOT_FOUND)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = pl_km_checkpoint_sign(km->dpf_key, &km->rng, key, &head, &a->checkpoint)))
        goto out;
    if ((rc = pl_km_db_exec(km, NULL,
                            "INSERT INTO audit_checkpoint(station, chain_id, seq, h, sig, at) "
                            "VALUES(?, ?, ?, ?, ?, ?)",
                            "tbibbi", c->station, head.chain_id, (size_t)PL_KM_CHAIN_ID_LEN,
                            (int64_t)head.seq, head.h, (size_t)PL_KM_AUDIT_LEN,
                            a->checkpoint.signature.bytes, (size_t)PL_KM_SIG_LEN, c->now)))
        goto out;
    a->has_checkpoint = true;
    pl_km_logf(km, PL_KM_LOG_INFO, "event=audit_checkpoint_signed station=%s chain=%s seq=%llu", sk,
               ch, (unsigned long long)head.seq);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static int on_report(struct ctx *c)
{
    const provline_keymaker_Report *r = &c->req->body.report;
    provline_keymaker_ReportAck *a = &c->rep->body.report_ack;
    int rc = PL_ERR_INTERNAL;

    if (r->audit_head.size == PL_KM_AUDIT_LEN) {
        char h[65];
        if ((rc = log_event(c, "audit_head", NULL,
                            pl_km_hex(r->audit_head.bytes, PL_KM_AUDIT_LEN, h, sizeof(h))))
            || (rc = sign_checkpoint(c, r, a)))
            return rc;
    }
    for (pb_size_t i = 0; i < r->entries_count; i++) {
        const provline_keymaker_ReportEntry *e = &r->entries[i];
        provline_keymaker_EntryResult *res = &a->results[i];
        memcpy(res->package_id.bytes, e->package_id.bytes, 16);
        res->package_id.size = 16;
        if (e->which_outcome == provline_keymaker_ReportEntry_pir_tag)
            rc = entry_pir(c, e, res);
        else
            rc = entry_unproven(c, e, res);
        if (rc)
            return rc;
        if (!res->accepted) {
            char ph[33];
            pl_km_logf(c->km, PL_KM_LOG_WARN, "event=report_entry_refused package=%s code=%s",
                       pl_km_hex(e->package_id.bytes, 16, ph, sizeof(ph)),
                       pl_km_error_name(res->code));
        }
        a->results_count++;
    }
    c->rep->which_body = PL_KM_REPORT_ACK;
    return PL_OK;
}

/* ------------------------------------------------------- OTK deletion token ---- */

static int on_token_request(struct ctx *c)
{
    const uint8_t *eid = c->req->body.otk_deletion_token_request.eid.bytes;
    provline_keymaker_OtkDeletionToken *t = &c->rep->body.otk_deletion_token;
    struct pl_km *km = c->km;
    struct pl_es10f_delete_otks_req req;
    struct pl_wr w;
    int64_t last = 0;
    uint64_t next = 0;
    int rc = PL_ERR_INTERNAL;

    rc = pl_km_db_int(km, &last, "SELECT deletion_counter FROM euicc WHERE eid = ?", "b", eid,
                      (size_t)16);
    if (rc == PL_ERR_NOT_FOUND)
        return refuse(&c->refusal, E(UNKNOWN_EID), "no verified OtkUpload for this EID");
    if (rc)
        return rc;
    if (last < 0 || pl_es10f_counter_next((uint64_t)last, &next) != PL_OK)
        return refuse(&c->refusal, E(STATE), "deletion counter exhausted");
    /* The counter is stored (in this transaction) before the token leaves: a restored or
     * crashed Key Maker never signs the same counterValue twice. */
    if ((rc = pl_km_db_exec(km, NULL, "UPDATE euicc SET deletion_counter = ? WHERE eid = ?", "ib",
                            (int64_t)next, eid, (size_t)16)))
        return rc;
    if ((rc = pl_km_db_exec(km, NULL,
                            "INSERT INTO deletion_token(eid, counter, station, issued_at) "
                            "VALUES(?, ?, ?, ?)",
                            "biti", eid, (size_t)16, (int64_t)next, c->station, c->now)))
        return rc;
    memset(&req, 0, sizeof(req));
    memcpy(req.token.eid, eid, 16);
    req.token.counter = next;
    req.token.op = PL_ES10F_OP_DELETE_REMAINING_OTKS;
    if ((rc = pl_es10f_token_sign(&req.token, km->dpf_key, &km->rng, req.sig)))
        return rc;
    req.signer_chain.n = 1;
    pl_cert_der(km->dpf, &req.signer_chain.cert[0].der, &req.signer_chain.cert[0].len);
    pl_wr_init_fixed(&w, t->request.bytes, sizeof(t->request.bytes));
    if ((rc = pl_es10f_delete_otks_req_encode(&req, &w)))
        return rc;
    t->request.size = (pb_size_t)w.len;
    memcpy(t->eid.bytes, eid, 16);
    t->eid.size = 16;
    t->counter = next;
    c->rep->which_body = PL_KM_TOKEN;
    char eh[33];
    pl_km_logf(km, PL_KM_LOG_INFO, "event=deletion_token eid=%s counter=%llu",
               pl_km_hex(eid, 16, eh, sizeof(eh)), (unsigned long long)next);
    return PL_OK;
}

/* ------------------------------------------------------ OTK deletion receipt ---- */

/* docs/ifpp-es10f.md §5: the receipt lists the OTKs that were still FREE on the chip when
 * it executed our token. A package bound to one of them was never loaded (loading
 * consumes the OTK first, IFPP.md §6.2), so it is settled "failed"; every OTK of the chip
 * still FREE in the registry is gone from the chip too. */
static int on_receipt(struct ctx *c)
{
    const provline_keymaker_OtkDeletionReceipt *q = &c->req->body.otk_deletion_receipt;
    provline_keymaker_OtkDeletionReceiptAck *a = &c->rep->body.otk_deletion_receipt_ack;
    struct pl_km *km = c->km;
    struct pl_es10f_delete_otks_rsp rsp;
    struct pl_es10f_token sent;
    struct pl_eckey *pub = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    char eh[33];
    int rc = PL_ERR_INTERNAL;

    pl_km_hex(q->eid.bytes, 16, eh, sizeof(eh));
    rc = euicc_pub(km, q->eid.bytes, &pub);
    if (rc == PL_ERR_NOT_FOUND)
        return refuse(&c->refusal, E(UNKNOWN_EID), "no verified OtkUpload for this EID");
    if (rc)
        return rc;
    if ((rc = pl_km_db_int(km, &n,
                           "SELECT count(*) FROM deletion_token WHERE eid = ? AND "
                           "counter = ?",
                           "bi", q->eid.bytes, (size_t)16, (int64_t)q->counter)))
        goto out;
    if (n != 1 || q->counter > (uint64_t)INT64_MAX) {
        rc = refuse(&c->refusal, E(RECEIPT_INVALID), "no token with this counterValue");
        goto out;
    }
    memset(&sent, 0, sizeof(sent));
    memcpy(sent.eid, q->eid.bytes, 16);
    sent.counter = q->counter;
    sent.op = PL_ES10F_OP_DELETE_REMAINING_OTKS;
    if (pl_es10f_delete_otks_rsp_decode(q->response.bytes, q->response.size, &rsp) != PL_OK) {
        rc = refuse(&c->refusal, E(RECEIPT_INVALID), "not a DeleteRemainingOtksResponse");
        goto out;
    }
    int v = pl_es10f_delete_otks_rsp_verify(&rsp, pub, &sent);
    if (v != PL_OK) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=receipt_rejected eid=%s reason=\"%s\"", eh,
                   pl_strerror(v));
        rc = refuse(&c->refusal, E(RECEIPT_INVALID), pl_strerror(v));
        goto out;
    }
    memcpy(a->eid.bytes, q->eid.bytes, 16);
    a->eid.size = 16;
    for (size_t i = 0; i < rsp.receipt.n_deleted; i++) {
        uint16_t id = rsp.receipt.deleted[i];
        uint8_t pid[16];
        bool has_pkg = false;
        int state = 0;
        rc = pl_km_db_row(km, &st, "SELECT state, package_id FROM otk WHERE eid = ? AND otk_id = ?",
                          "bi", q->eid.bytes, (size_t)16, (int64_t)id);
        if (rc == PL_OK) {
            state = pl_km_otk_state_from_db(sqlite3_column_text(st, 0));
            has_pkg = sqlite3_column_type(st, 1) != SQLITE_NULL;
            if (has_pkg && (rc = pl_km_db_col_fixed(st, 1, pid, 16)))
                goto out;
        } else if (rc != PL_ERR_NOT_FOUND) {
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        if (state == PL_KM_OTK_BOUND && has_pkg) {
            struct pkg_row p;
            if ((rc = pkg_load(km, "p.package_id", pid, 16, &p, NULL)))
                goto out;
            if (p.state == PL_KM_PKG_ISSUED || p.state == PL_KM_PKG_POSSIBLY_USED) {
                if ((rc = settle(c, &p, false, NULL, 0))
                    || (rc = pl_km_db_exec(km, NULL,
                                           "UPDATE package SET fpa_detail = 'OTK deleted unused "
                                           "(signed receipt)' WHERE package_id = ?",
                                           "b", pid, (size_t)16)))
                    goto out;
                memcpy(a->settled[a->settled_count].bytes, pid, 16);
                a->settled[a->settled_count++].size = 16;
                a->voided[a->voided_count++] = id;
                char ph[33];
                pl_km_logf(km, PL_KM_LOG_INFO,
                           "event=package_settled package=%s eid=%s otk_id=%u state=failed "
                           "otk=VOID reason=otk_deleted_unused",
                           pl_km_hex(pid, 16, ph, sizeof(ph)), eh, (unsigned)id);
            }
        } else if (state == PL_KM_OTK_FREE) {
            if ((rc = pl_km_db_exec(km, NULL,
                                    "UPDATE otk SET state = 'VOID' WHERE eid = ? AND "
                                    "otk_id = ? AND state = 'FREE'",
                                    "bi", q->eid.bytes, (size_t)16, (int64_t)id)))
                goto out;
            a->voided[a->voided_count++] = id;
        } else if (state == PL_KM_OTK_CONSUMED) {
            /* The chip calls FREE an OTK a verified PIR said was used: keep the proof, log. */
            if ((rc = log_event(c, "receipt_contradicts_pir", NULL, eh)))
                goto out;
        }
    }
    /* No FREE OTK is left on the chip: the rest of the registry's FREE ones are gone too. */
    if ((rc = pl_km_db_prepare(km, &st,
                               "SELECT otk_id FROM otk WHERE eid = ? AND state = 'FREE' "
                               "ORDER BY otk_id",
                               "b", q->eid.bytes, (size_t)16)))
        goto out;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && a->voided_count < 64u)
        a->voided[a->voided_count++] = (uint32_t)sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = pl_km_db_exec(km, NULL,
                            "UPDATE otk SET state = 'VOID' WHERE eid = ? AND "
                            "state = 'FREE'",
                            "b", q->eid.bytes, (size_t)16))
        || (rc = log_event(c, "otk_deletion_receipt", NULL, eh)))
        goto out;
    c->rep->which_body = PL_KM_RECEIPT_ACK;
    pl_km_logf(km, PL_KM_LOG_INFO,
               "event=otk_deletion_receipt eid=%s counter=%llu voided=%u "
               "settled=%u",
               eh, (unsigned long long)q->counter, (unsigned)a->voided_count,
               (unsigned)a->settled_count);
    rc = PL_OK;
out:
    sqlite3_finalize(st);
    pl_eckey_free(pub);
    return rc;
}

/* ---------------------------------------------------------------- dispatch ---- */

static int dispatch(struct ctx *c)
{
    switch (c->req->which_body) {
    case PL_KM_HELLO:
        return on_hello(c);
    case PL_KM_OTK_UPLOAD:
        return on_otk_upload(c);
    case PL_KM_LEASE_REQUEST:
        return on_lease_request(c);
    case PL_KM_ACK:
        return on_ack(c);
    case PL_KM_REPORT:
        return on_report(c);
    case PL_KM_TOKEN_REQUEST:
        return on_token_request(c);
    case PL_KM_RECEIPT:
        return on_receipt(c);
    default:
        return refuse(&c->refusal, E(UNEXPECTED), "reply-type message sent as a request");
    }
}

static void set_error(provline_keymaker_Msg *rep, int code, const char *detail)
{
    pl_km_msg_release(rep);
    rep->which_body = PL_KM_ERROR;
    rep->body.error.code = (provline_keymaker_ErrorCode)code;
    pl_km_set_str(rep->body.error.detail, sizeof(rep->body.error.detail), detail);
}

/* Header of a reply; reply_to may be NULL (undecodable request). A reply speaks the
 * request's protocol version (a version 1 station gets version 1 answers). */
static int finish_header(struct pl_km *km, provline_keymaker_Msg *rep, const uint8_t *reply_to,
                         uint32_t version, uint64_t seq)
{
    int rc = km->rng.fill(km->rng.user, rep->msg_id.bytes, 16);
    rep->msg_id.size = 16;
    rep->version = version;
    rep->seq = seq;
    if (reply_to) {
        memcpy(rep->reply_to.bytes, reply_to, 16);
        rep->reply_to.size = 16;
    }
    return rc;
}

/* An Error reply that is not recorded (the request was not processed). */
static int reply_unrecorded(struct pl_km *km, const provline_keymaker_Msg *req, int code,
                            const char *detail, provline_keymaker_Msg *rep, struct pl_wr *out)
{
    int rc = PL_ERR_INTERNAL;
    set_error(rep, code, detail);
    if ((rc = finish_header(km, rep, req ? req->msg_id.bytes : NULL,
                            req ? req->version : PL_KM_VERSION, 0)))
        return rc;
    return pl_km_msg_encode(rep, out);
}

int pl_km_handle(struct pl_km *km, const char *station, const uint8_t *req, size_t len,
                 struct pl_wr *reply)
{
    provline_keymaker_Msg *m = NULL, *rep = NULL;
    uint8_t digest[PL_SHA256_LEN];
    struct pl_wr enc;
    sqlite3_stmt *st = NULL;
    char sk[16];
    int rc = PL_ERR_INTERNAL;
    bool in_tx = false;

    if (km == NULL || station == NULL || reply == NULL || (req == NULL && len != 0))
        return PL_ERR_INVAL;
    if (station[0] == '\0' || strlen(station) > PL_KM_STATION_MAX)
        return PL_ERR_INVAL;
    pl_wr_init_dyn(&enc, PL_KM_FRAME_MAX);
    m = calloc(1, sizeof(*m));
    rep = calloc(1, sizeof(*rep));
    if (!m || !rep) {
        rc = PL_ERR_NOMEM;
        goto out;
    }
    pl_km_msg_init(rep);
    short_key(station, sk, sizeof(sk));

    int drc = pl_km_msg_decode(req, len, m);
    if (drc != PL_OK) {
        pl_km_logf(km, PL_KM_LOG_WARN, "event=request_refused station=%s bytes=%zu reason=\"%s\"",
                   sk, len, pl_strerror(drc));
        rc = reply_unrecorded(km, NULL,
                              drc == PL_ERR_UNSUPPORTED ? E(UNSUPPORTED_VERSION) : E(MALFORMED),
                              pl_strerror(drc), rep, reply);
        pl_km_count_reply(km, 0, rep);
        goto out;
    }
    if ((rc = pl_sha256(req, len, digest)))
        goto out;

    if ((rc = pl_km_db_begin(km)))
        goto internal;
    in_tx = true;

    /* Idempotency: a msg_id seen before gets its recorded reply, byte for byte. */
    rc = pl_km_db_row(km, &st, "SELECT req_sha256, reply FROM dedup WHERE station = ? AND msg_id = ?",
                      "tb", station, m->msg_id.bytes, (size_t)16);
    if (rc == PL_OK) {
        bool same = same_blob(st, 0, digest, sizeof(digest));
        if (same && (rc = pl_km_db_col_wr(st, 1, reply)) == PL_OK) {
            pl_km_logf(km, PL_KM_LOG_INFO, "event=request_replayed station=%s msg=%s seq=%llu", sk,
                       pl_km_body_name(m->which_body), (unsigned long long)m->seq);
            km->counters.dedup_hits++;
            pl_km_count_reply(km, m->which_body, NULL);
            goto out;
        }
        sqlite3_finalize(st);
        st = NULL;
        pl_km_db_rollback(km);
        in_tx = false;
        if (!same) {
            pl_km_logf(km, PL_KM_LOG_WARN, "event=request_refused station=%s reason=msg_id_reused",
                       sk);
            rc = reply_unrecorded(km, m, E(MSG_ID_REUSED),
                                  "msg_id already used for another request", rep, reply);
            pl_km_count_reply(km, m->which_body, rep);
            goto out;
        }
        goto internal;
    }
    if (rc != PL_ERR_NOT_FOUND)
        goto internal;
    sqlite3_finalize(st);
    st = NULL;

    if ((rc =
             pl_km_db_exec(km, NULL, "INSERT OR IGNORE INTO station(key) VALUES(?)", "t", station)))
        goto internal;
    int64_t last_seq = 0, km_seq = 0, pkg_seq = 0;
    if ((rc = pl_km_db_int(km, &last_seq, "SELECT last_seq FROM station WHERE key = ?", "t",
                           station))
        || (rc =
                pl_km_db_int(km, &km_seq, "SELECT km_seq FROM station WHERE key = ?", "t", station))
        || (rc = pl_km_db_int(km, &pkg_seq, "SELECT pkg_seq FROM station WHERE key = ?", "t",
                              station)))
        goto internal;

    struct ctx c = {.km = km,
                    .station = station,
                    .req = m,
                    .rep = rep,
                    .now = (int64_t)pl_km_now(km),
                    .pkg_seq = pkg_seq};
    /* Sequence numbers only move forward; Hello is exempt (resync after a station lost its
     * journal), and tells the station where the Key Maker is. */
    if (m->which_body != PL_KM_HELLO && m->seq <= (uint64_t)last_seq) {
        refuse(&c.refusal, E(STALE_SEQ), "seq not above the last one processed");
    } else {
        if (m->seq > (uint64_t)last_seq && m->seq <= (uint64_t)INT64_MAX)
            last_seq = (int64_t)m->seq;
        if ((rc = pl_km_db_exec(km, NULL, "SAVEPOINT handler", "")))
            goto internal;
        if ((rc = pl_km_db_exec(km, NULL, "UPDATE station SET last_seq = ? WHERE key = ?", "it",
                                last_seq, station)))
            goto internal;
        rc = dispatch(&c);
        if (rc)
            goto internal;
        if (c.refusal.code != E(NONE)) {
            /* Undo what the handler wrote; the refusal itself is recorded below. */
            if ((rc = pl_km_db_exec(km, NULL, "ROLLBACK TO handler", ""))
                || (rc = pl_km_db_exec(km, NULL, "UPDATE station SET last_seq = ? WHERE key = ?",
                                       "it", last_seq, station)))
                goto internal;
            c.pkg_seq = pkg_seq;
        }
        if ((rc = pl_km_db_exec(km, NULL, "RELEASE handler", "")))
            goto internal;
    }
    if (c.refusal.code != E(NONE)) {
        set_error(rep, c.refusal.code, c.refusal.detail);
        pl_km_logf(km, PL_KM_LOG_WARN,
                   "event=request_refused station=%s msg=%s seq=%llu code=%s "
                   "detail=\"%s\"",
                   sk, pl_km_body_name(m->which_body), (unsigned long long)m->seq,
                   pl_km_error_name(c.refusal.code), c.refusal.detail);
    }
    km_seq++;
    if (rep->which_body == PL_KM_HELLO_ACK)
        rep->body.hello_ack.keymaker_seq = (uint64_t)km_seq;
    if ((rc = finish_header(km, rep, m->msg_id.bytes, m->version, (uint64_t)km_seq)))
        goto internal;
    if ((rc = pl_km_msg_encode(rep, &enc)))
        goto internal;
    if ((rc = pl_km_db_exec(km, NULL,
                            "INSERT INTO dedup(station, msg_id, req_sha256, reply, at) "
                            "VALUES(?, ?, ?, ?, ?)",
                            "tbbbi", station, m->msg_id.bytes, (size_t)16, digest, sizeof(digest),
                            enc.buf, enc.len, c.now))
        || (rc = pl_km_db_exec(km, NULL, "UPDATE station SET km_seq = ?, pkg_seq = ? WHERE key = ?",
                               "iit", km_seq, c.pkg_seq, station)))
        goto internal;
    /* synchronous=FULL: the reply is durable before it leaves. */
    rc = pl_km_db_commit(km);
    in_tx = false;
    if (rc)
        goto internal;
    pl_wr_bytes(reply, enc.buf, enc.len);
    rc = pl_wr_status(reply);
    pl_km_count_reply(km, m->which_body, rep);
    if (c.refusal.code == E(NONE))
        pl_km_logf(km, PL_KM_LOG_INFO, "event=request station=%s msg=%s seq=%llu reply=%s", sk,
                   pl_km_body_name(m->which_body), (unsigned long long)m->seq,
                   pl_km_body_name(rep->which_body));
    goto out;

internal:
    /* Not recorded: a retry of the same msg_id is processed afresh. */
    sqlite3_finalize(st);
    st = NULL;
    if (in_tx) {
        pl_km_db_rollback(km);
        in_tx = false;
    }
    pl_km_logf(km, PL_KM_LOG_ERROR, "event=request_failed station=%s msg=%s error=\"%s\"", sk,
               m ? pl_km_body_name(m->which_body) : "none", pl_strerror(rc));
    rc = reply_unrecorded(km, m, E(INTERNAL), "internal error", rep, reply);
    pl_km_count_reply(km, m ? m->which_body : 0u, rep);
out:
    sqlite3_finalize(st);
    if (in_tx)
        pl_km_db_rollback(km);
    pl_wr_free(&enc);
    if (m) {
        pl_km_msg_release(m);
        free(m);
    }
    if (rep) {
        pl_km_msg_release(rep);
        free(rep);
    }
    return rc;
}
