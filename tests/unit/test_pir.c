/* Unit tests: SGP.22 ProfileInstallationResult (protocol/src/pir.c): vectors, fields,
 * build + sign + verify over the received bytes, negative cases. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/pir.h"
#include "provline/protocol/wr.h"
#include "sgp22_vec.h"

static const uint8_t OID[] = {0x88, 0x37, 0x0A}; /* 2.999.10 */
static const uint8_t AID[] = {0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF,
                              0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, 0x12, 0x00};

Test(pir, vectors)
{
    struct pl_vec_file *vf = pl_vec_load("sgp22_pir.txt");
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < vf->nrec; i++) {
        const struct pl_vec_rec *r = &vf->rec[i];
        const char *name = pl_vec_get(r, "name");
        int want = sgp22_err(pl_vec_get(r, "expect"));
        size_t len;
        uint8_t *der = sgp22_der(r, &len);
        struct pl_pir p;
        cr_assert_str_eq(pl_vec_get(r, "func"), "pir");
        int got = pl_pir_decode(der, len, &p);
        cr_expect_eq(got, want, "%s (line %u): got %d (%s), want %d (%s)", name, r->line, got,
                     pl_strerror(got), want, pl_strerror(want));
        if (got == PL_OK) {
            /* Re-encoding the data gives back the received 'BF27' byte for byte. */
            struct pl_wr w;
            pl_wr_init_dyn(&w, 1u << 16);
            cr_assert_eq(pl_pir_encode_data(&p, &w), PL_OK, "%s", name);
            cr_assert_eq(w.len, p.tbs_len, "%s", name);
            cr_assert_eq(memcmp(w.buf, p.tbs, w.len), 0, "%s", name);
            pl_wr_free(&w);
            ok++;
        } else {
            cr_assert_null(p.raw, "%s: the output is cleared on error", name);
            bad++;
        }
        free(der);
    }
    cr_assert_geq(ok, 3);
    cr_assert_geq(bad, 15);
    pl_vec_free(vf);
}

Test(pir, success_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_pir.txt", "pir_success", &len);
    struct pl_pir p;

    cr_assert_eq(pl_pir_decode(der, len, &p), PL_OK);
    cr_assert_eq(p.tid_len, 16);
    cr_assert_eq(p.tid[15], 0x10);
    cr_assert_eq(p.meta.seq, 5);
    cr_assert_eq(p.meta.ops, PL_NOTIF_EV_INSTALL);
    cr_assert_str_eq(p.meta.addr, "smdp.example.com");
    cr_assert(p.meta.has_iccid);
    cr_assert_eq(p.meta.iccid[0], 0x98);
    cr_assert_eq(p.smdp_oid_len, sizeof(OID));
    cr_assert_eq(memcmp(p.smdp_oid, OID, sizeof(OID)), 0);
    cr_assert(p.success);
    cr_assert_eq(p.aid_len, sizeof(AID));
    cr_assert_eq(memcmp(p.aid, AID, sizeof(AID)), 0);
    cr_assert_eq(p.sima_len, 5);
    cr_assert_eq(memcmp(p.sima, "\x30\x03\x80\x01\x00", 5), 0);
    cr_assert_eq(p.sig[0], 0x5A);
    cr_assert_eq(p.raw, der);
    cr_assert_eq(p.raw_len, len);
    cr_assert_eq(p.tbs, der + 4, "BF27 follows BF37 81 A2");
    cr_assert_eq(p.tbs_len, 2 + 1 + 0x5C);
    free(der);
}

Test(pir, error_fields)
{
    size_t len;
    uint8_t *der = sgp22_load("sgp22_pir.txt", "pir_error_sima", &len);
    struct pl_pir p;

    cr_assert_eq(pl_pir_decode(der, len, &p), PL_OK);
    cr_assert_not(p.success);
    cr_assert_eq(p.tid_len, 1);
    cr_assert_eq(p.tid[0], 0x42);
    cr_assert_eq(p.meta.seq, 300);
    cr_assert_not(p.meta.has_iccid);
    cr_assert_eq(p.cmd_id, PL_PIR_CMD_LOAD_PROFILE_ELEMENTS);
    cr_assert_eq(p.reason, PL_PIR_REASON_SCP03T_SECURITY_ERROR);
    cr_assert_eq(p.sima_len, 2);
    cr_assert_eq(p.sima[1], 0xCD);
    cr_assert_null(p.aid);
    free(der);

    der = sgp22_load("sgp22_pir.txt", "pir_error", &len);
    cr_assert_eq(pl_pir_decode(der, len, &p), PL_OK);
    cr_assert_eq(p.cmd_id, PL_PIR_CMD_INITIALISE_SECURE_CHANNEL);
    cr_assert_eq(p.reason, PL_PIR_REASON_INVALID_SIGNATURE);
    cr_assert_null(p.sima, "ErrorResult.simaResponse absent");
    free(der);
}

/* The enums carry the ASN.1 numbers (RSPDefinitions V2.5 BppCommandId, ErrorReason). */
Test(pir, enum_values_and_names)
{
    static const struct {
        int64_t v;
        const char *name;
    } cmds[] = {{0, "initialiseSecureChannel"}, {1, "configureISDP"}, {2, "storeMetadata"},
                {3, "storeMetadata2"},          {4, "replaceSessionKeys"}, {5, "loadProfileElements"}};
    static const struct {
        int64_t v;
        const char *name;
    } reasons[] = {{1, "incorrectInputValues"},
                   {2, "invalidSignature"},
                   {3, "invalidTransactionId"},
                   {4, "unsupportedCrtValues"},
                   {5, "unsupportedRemoteOperationType"},
                   {6, "unsupportedProfileClass"},
                   {7, "scp03tStructureError"},
                   {8, "scp03tSecurityError"},
                   {9, "installFailedDueToIccidAlreadyExistsOnEuicc"},
                   {10, "installFailedDueToInsufficientMemoryForProfile"},
                   {11, "installFailedDueToInterruption"},
                   {12, "installFailedDueToPEProcessingError"},
                   {13, "installFailedDueToDataMismatch"},
                   {14, "testProfileInstallFailedDueToInvalidNaaKey"},
                   {15, "pprNotAllowed"},
                   {127, "installFailedDueToUnknownError"}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        cr_assert_str_eq(pl_pir_cmd_name(cmds[i].v), cmds[i].name);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        cr_assert_str_eq(pl_pir_reason_name(reasons[i].v), reasons[i].name);
    cr_assert_str_eq(pl_pir_cmd_name(6), "unknown");
    cr_assert_str_eq(pl_pir_cmd_name(-1), "unknown");
    cr_assert_str_eq(pl_pir_reason_name(0), "unknown");
    cr_assert_str_eq(pl_pir_reason_name(16), "unknown");
    cr_assert_eq(PL_PIR_CMD_LOAD_PROFILE_ELEMENTS, 5);
    cr_assert_eq(PL_PIR_REASON_INTERRUPTION, 11);
    cr_assert_eq(PL_PIR_REASON_PPR_NOT_ALLOWED, 15);
    cr_assert_eq(PL_PIR_REASON_UNKNOWN_ERROR, 127);
}

static void fill_success(struct pl_pir *p, const uint8_t *tid, size_t tid_len)
{
    memset(p, 0, sizeof(*p));
    p->tid = tid;
    p->tid_len = tid_len;
    p->meta.seq = 42;
    p->meta.ops = PL_NOTIF_EV_INSTALL;
    memcpy(p->meta.addr, "keymaker.factory.example", 25);
    p->meta.has_iccid = true;
    memset(p->meta.iccid, 0x89, sizeof(p->meta.iccid));
    p->smdp_oid = OID;
    p->smdp_oid_len = sizeof(OID);
    p->success = true;
    p->aid = AID;
    p->aid_len = sizeof(AID);
    p->sima = (const uint8_t *)"\x30\x03\x80\x01\x00";
    p->sima_len = 5;
}

static void sign_verify(enum pl_curve curve)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *key = NULL, *other = NULL, *pub = NULL;
    uint8_t tid[16], pk[PL_EC_PUB_LEN];
    struct pl_pir in, out;
    struct pl_wr w;

    cr_assert_eq(pl_eckey_generate(curve, &rng, &key), PL_OK);
    cr_assert_eq(pl_eckey_generate(curve, &rng, &other), PL_OK);
    cr_assert_eq(pl_eckey_public(key, pk), PL_OK);
    cr_assert_eq(pl_eckey_from_public(curve, pk, &pub), PL_OK);
    memset(tid, 0xA5, sizeof(tid));
    fill_success(&in, tid, sizeof(tid));

    pl_wr_init_dyn(&w, 4096);
    cr_assert_eq(pl_pir_encode(&in, key, &rng, &w), PL_OK);
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, key), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, other), PL_ERR_BAD_SIGNATURE, "another eUICC's key");
    cr_assert(out.success);
    cr_assert_eq(out.meta.seq, 42);
    cr_assert_str_eq(out.meta.addr, "keymaker.factory.example");

    /* A flipped bit anywhere in the signed 'BF27' (here: the last simaResponse byte,
     * which keeps the DER valid) is detected. */
    size_t sima_last = (size_t)(out.tbs - w.buf) + out.tbs_len - 1;
    w.buf[sima_last] ^= 0x01;
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_ERR_BAD_SIGNATURE);
    w.buf[sima_last] ^= 0x01;
    /* ... and in the transactionId. */
    size_t tid_first = (size_t)(out.tid - w.buf);
    w.buf[tid_first] ^= 0x40;
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_ERR_BAD_SIGNATURE);
    w.buf[tid_first] ^= 0x40;
    /* ... and in the signature itself. */
    w.buf[w.len - 10] ^= 0x02;
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_ERR_BAD_SIGNATURE);
    w.buf[w.len - 10] ^= 0x02;
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_OK, "restored: verifies again");

    /* A PIR that was not decoded has no received bytes to verify. */
    cr_assert_eq(pl_pir_verify(&in, pub), PL_ERR_INVAL);

    /* An error PIR signs and verifies the same way. */
    pl_wr_reset(&w);
    in.success = false;
    in.aid = NULL;
    in.aid_len = 0;
    in.sima = NULL;
    in.sima_len = 0;
    in.cmd_id = PL_PIR_CMD_INITIALISE_SECURE_CHANNEL;
    in.reason = PL_PIR_REASON_INVALID_SIGNATURE;
    cr_assert_eq(pl_pir_encode(&in, key, &rng, &w), PL_OK);
    cr_assert_eq(pl_pir_decode(w.buf, w.len, &out), PL_OK);
    cr_assert_not(out.success);
    cr_assert_null(out.sima);
    cr_assert_eq(out.reason, 2);
    cr_assert_eq(pl_pir_verify(&out, pub), PL_OK);

    pl_wr_free(&w);
    pl_eckey_free(key);
    pl_eckey_free(other);
    pl_eckey_free(pub);
}

Test(pir, sign_verify_p256)
{
    sign_verify(PL_CURVE_P256);
}

Test(pir, sign_verify_brainpool)
{
    sign_verify(PL_CURVE_BP256R1);
}

/* The signature is over the received bytes: a key of another curve, or a public-only key
 * asked to sign, fails cleanly. */
Test(pir, encode_errors)
{
    struct pl_rng rng = PL_RNG_SYSTEM;
    struct pl_eckey *key = NULL, *pub = NULL;
    uint8_t tid[17] = {0}, pk[PL_EC_PUB_LEN];
    struct pl_pir in;
    struct pl_wr w;

    cr_assert_eq(pl_eckey_generate(PL_CURVE_P256, &rng, &key), PL_OK);
    cr_assert_eq(pl_eckey_public(key, pk), PL_OK);
    cr_assert_eq(pl_eckey_from_public(PL_CURVE_P256, pk, &pub), PL_OK);

#define EXPECT_ENC(k, want)                                                                \
    do {                                                                                   \
        pl_wr_init_dyn(&w, 4096);                                                          \
        int rc_ = pl_pir_encode(&in, (k), &rng, &w);                                       \
        cr_expect_eq(rc_, (want), "line %d: %d %s", __LINE__, rc_, pl_strerror(rc_));      \
        if ((want) != PL_OK)                                                               \
            cr_expect_eq(pl_wr_status(&w), (want), "line %d: writer failed", __LINE__);    \
        pl_wr_free(&w);                                                                    \
    } while (0)

    fill_success(&in, tid, 16);
    EXPECT_ENC(key, PL_OK);
    EXPECT_ENC(pub, PL_ERR_BAD_KEY); /* no private part */
    in.tid_len = 17;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.tid_len = 0;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.tid_len = 16;
    in.aid_len = 4;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.aid_len = 17;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.aid_len = sizeof(AID);
    in.meta.ops = PL_NOTIF_EV_ENABLE;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.meta.ops = PL_NOTIF_EV_INSTALL;
    in.smdp_oid = NULL;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.smdp_oid = (const uint8_t *)"\x88";
    in.smdp_oid_len = 1;
    EXPECT_ENC(key, PL_ERR_INVAL); /* unfinished arc */
    in.smdp_oid = OID;
    in.smdp_oid_len = sizeof(OID);
    in.success = false;
    in.cmd_id = -1;
    EXPECT_ENC(key, PL_ERR_INVAL);
    in.cmd_id = 5;
    in.reason = 127;
    EXPECT_ENC(key, PL_OK);
#undef EXPECT_ENC

    /* A small fixed output: the signature is computed, then the writer overflows. */
    uint8_t small[32];
    pl_wr_init_fixed(&w, small, sizeof(small));
    cr_assert_eq(pl_pir_encode(&in, key, &rng, &w), PL_ERR_OVERFLOW);
    pl_eckey_free(key);
    pl_eckey_free(pub);
}
