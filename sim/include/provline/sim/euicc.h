/* Software eUICC: a host library that plays the card for the whole line and the field
 * without hardware.
 * Factory mode: GSMA SGP.41 v1.0 (in-factory profile provisioning, the eUICC's FPA
 * Services and the OTK lock: GENS08, GENS13, EUICCF01/03/04), with the SGP.22 v2.5 Bound
 * Profile Package machinery (§2.5.4, §2.6.4, §5.7.6 ES10b.LoadBoundProfilePackage,
 * §5.7.10-11 notifications, §5.7.20 GetEID, §5.7.15 ListProfileInfo) and provline's own
 * ES10f commands (docs/ifpp-es10f.md).
 * Field mode (IPA Services, open once no FREE OTK remains, EUICCF04): an IoT eUICC of
 * GSMA SGP.32 v1.2 §5.9 (ES10b.LoadEuiccPackage with every PSMO and eCO, AddInitialEim,
 * GetEimConfigurationData, GetCerts, RetrieveNotificationsList with eUICC Package
 * Results) and SGP.22 v2.5 §5.7.8/§5.7.12 GetEuiccInfo1/2.
 * provline reference: IFPP.md §5.6-§5.8, §6.2, §7; EIM.md §1.3-§1.6, §4;
 * ARCHITECTURE.md §4-§5. Format and rules: docs/software-euicc.md.
 *
 * One entry point takes command APDUs and returns response APDUs (pl_euicc_apdu), so the
 * FPA/IPA side drives it exactly like a card. Its whole state lives in one file, written
 * tearing-safely on every change; the object in RAM only holds session data (BSP session
 * keys, the partial profile of a load in progress, pending GET RESPONSE bytes).
 *
 * Private keys (SK.EUICC.SIG, every otSK) never leave the object through any function of
 * this API; only the state file holds them (mode 0600). The object is not thread-safe:
 * one thread at a time per object. */
#ifndef PROVLINE_SIM_EUICC_H
#define PROVLINE_SIM_EUICC_H

#include "provline/protocol/crypto.h"
#include "provline/protocol/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PL_EUICC_EID_LEN      16u
#define PL_EUICC_ICCID_LEN    10u
#define PL_EUICC_AID_LEN      16u
#define PL_EUICC_MAX_OTKS     64u /* one-time keys per eUICC */
#define PL_EUICC_MAX_PROFILES 8u  /* installed profiles; one more -> insufficientMemory(10) */
#define PL_EUICC_MAX_NOTIFS   32u /* pending notifications (= PL_NOTIF_LIST_MAX) */
#define PL_EUICC_MAX_EIMS     4u  /* associated eIMs; one more -> insufficientMemory(1) */
#define PL_EUICC_MAX_EPRS     16u /* pending eUICC Package Results; full -> SW 6A84 */
/* Highest counterValue the eUICC accepts: the SGP.32 §2.11.1.1 minimum (0x7FFFFF); above
 * it a package gets counterValueOutOfRange(6). */
#define PL_EUICC_COUNTER_MAX 0x7FFFFFu
#define PL_EUICC_EIM_ID_MAX  128u /* eimId UTF8String (SIZE(1..128)) */
#define PL_EUICC_APDU_MAX    261u /* short APDU: 4 header + Lc + 255 data + Le */
#define PL_EUICC_RAPDU_MIN   258u /* rapdu capacity pl_euicc_apdu needs: 256 data + SW */

enum pl_euicc_otk_state {
    PL_EUICC_OTK_FREE = 0,     /* usable for exactly one load */
    PL_EUICC_OTK_IN_USE = 1,   /* reserved for the retry option (IFPP.md §6.2); unused */
    PL_EUICC_OTK_CONSUMED = 2, /* smdpSign verified once: otSK wiped (GENS08) */
    PL_EUICC_OTK_DELETED = 3,  /* removed by DeleteRemainingOtks (EUICCF03) */
};
const char *pl_euicc_otk_state_name(int state);

struct pl_euicc_opts {
    /* RNG for signatures (blinding) and random values; NULL = PL_RNG_SYSTEM. Borrowed:
     * must outlive the object. */
    const struct pl_rng *rng;
    /* Time against which the SM-DPf and Key Maker certificates are checked; 0 = the
     * wall clock at each check (time(NULL)). */
    time_t now;
    /* TEST KNOB, off (0) in every product use. The Nth state write counted from open
     * (1-based) is "cut by a power loss": half of the temporary file is written, the
     * rename does not happen, the call that caused the write fails, and the object turns
     * dead (every later pl_euicc_apdu returns PL_ERR_STATE) as a card without power
     * would. Reopen the file to continue. It never changes what is checked or when. */
    unsigned fail_write_at;
    /* KNOWN-SILICON KNOB, off by default (EIM.md §1.6, onomondo-ipa issue #3): after a
     * LoadEuiccPackage whose enable PSMO succeeded, the eUICC executes and stores
     * everything (the signed result stays pending for RetrieveNotificationsList) but the
     * response is lost: that command and every later ES10 command answer SW 6985 until
     * the card is reset (pl_euicc_reset, or close + open). The eIM must learn the outcome
     * by re-querying. It never changes what is checked or stored. */
    bool lose_result_after_enable;
};
/* Defaults: system RNG, wall clock, no cut. Cannot fail. */
void pl_euicc_opts_init(struct pl_euicc_opts *o);

struct pl_pki;

/* Creates a new eUICC state file at path (replaced if it exists):
 *  - the EID: eid (PL_EUICC_EID_LEN bytes, 32 BCD digits) or, when eid is NULL, a random
 *    valid EID (prefix 89049032, check digits per ITU-T E.118 / GSMA SGP.29 mod 97);
 *  - SK.EUICC.SIG + CERT.EUICC on `curve`, issued by the test PKI's EUM
 *    (pl_pki_mint_euicc); CERT.EUM and CERT.CI are copied from the PKI;
 *  - n_otks (1..PL_EUICC_MAX_OTKS) one-time key pairs on `curve`, otkId 1..n_otks,
 *    all FREE; factoryMode = true; no profile, no notification.
 * Borrows pki and rng (NULL = system RNG). PL_ERR_INVAL for bad arguments, PL_ERR_IO. */
PL_MUST_CHECK int pl_euicc_mint(const struct pl_pki *pki, enum pl_curve curve, const uint8_t *eid,
                                unsigned n_otks, const char *path, const struct pl_rng *rng);

struct pl_euicc;

/* Opens the state file at path (copies path and opts). A load that was in progress when
 * the file was last written (power loss) is closed here: the eUICC stores a signed PIR
 * installFailedDueToInterruption(11) as a pending notification (IFPP.md §6.2, §7 case 7
 * and 18); that is one state write. Returns owned *out (pl_euicc_close).
 * PL_ERR_IO / PL_ERR_NOT_FOUND for file errors, PL_ERR_MALFORMED for a corrupt file. */
PL_MUST_CHECK int pl_euicc_open(const char *path, const struct pl_euicc_opts *opts,
                                struct pl_euicc **out);
/* Frees the object, wiping every key in RAM. A load still in progress is NOT finished:
 * the next open reports it as interrupted. Accepts NULL. */
void pl_euicc_close(struct pl_euicc *e);

/* The APDU seam: processes one command APDU (ISO/IEC 7816-4 short form) and writes the
 * response APDU (data || SW1 SW2) into rapdu (rcap >= PL_EUICC_RAPDU_MIN). Card-level
 * errors are status words inside a PL_OK return; a negative return means the call itself
 * failed (PL_ERR_INVAL for bad arguments, PL_ERR_STATE on a dead object).
 * Handled: MANAGE CHANNEL (open/close), SELECT by AID (ISD-R), STORE DATA (ES10 requests,
 * chained with P1 11/91 and block numbers), GET RESPONSE after 61xx. */
PL_MUST_CHECK int pl_euicc_apdu(struct pl_euicc *e, const uint8_t *capdu, size_t clen,
                                uint8_t *rapdu, size_t rcap, size_t *rlen);
/* A card reset (ISO/IEC 7816-3 cold/warm reset, or the UICC reset of a REFRESH): closes
 * the logical channels, drops a pending response and the STORE DATA reassembly, ends a
 * load in progress as a channel close would (a consumed OTK gets its signed
 * installFailedDueToInterruption(11) PIR, one state write) and clears the "awaiting reset"
 * condition of the lose_result_after_enable knob. PL_ERR_STATE on a dead object. */
PL_MUST_CHECK int pl_euicc_reset(struct pl_euicc *e);
/* Same, with the signature of a card-reset callback (user = the struct pl_euicc *). */
PL_MUST_CHECK int pl_euicc_card_reset(void *user);
/* Same, with the signature of a transmit callback (user = the struct pl_euicc *). */
PL_MUST_CHECK int pl_euicc_transmit(void *user, const uint8_t *capdu, size_t clen, uint8_t *rapdu,
                                    size_t rcap, size_t *rlen);

/* ---- read-only views of public state (tools and tests) ---- */

bool pl_euicc_is_dead(const struct pl_euicc *e);
/* State writes attempted since open (the one a cut hit included). */
unsigned pl_euicc_write_count(const struct pl_euicc *e);
void pl_euicc_get_eid(const struct pl_euicc *e, uint8_t eid[PL_EUICC_EID_LEN]);
enum pl_curve pl_euicc_curve(const struct pl_euicc *e);
bool pl_euicc_factory_mode(const struct pl_euicc *e);
/* A load consumed its OTK and has not ended yet. */
bool pl_euicc_load_in_progress(const struct pl_euicc *e);
/* CERT.EUICC / CERT.EUM / CERT.CI DER, borrowed from the object. */
void pl_euicc_cert_euicc(const struct pl_euicc *e, const uint8_t **der, size_t *len);
void pl_euicc_cert_eum(const struct pl_euicc *e, const uint8_t **der, size_t *len);
void pl_euicc_cert_ci(const struct pl_euicc *e, const uint8_t **der, size_t *len);

struct pl_euicc_otk_info {
    uint16_t id;
    enum pl_euicc_otk_state state;
    uint8_t pk[PL_EC_PUB_LEN]; /* otPK */
};
size_t pl_euicc_otk_count(const struct pl_euicc *e);
/* PL_ERR_NOT_FOUND past the end. */
PL_MUST_CHECK int pl_euicc_otk_get(const struct pl_euicc *e, size_t i,
                                   struct pl_euicc_otk_info *out);
/* The OTK with otkId id; PL_ERR_NOT_FOUND if none. */
PL_MUST_CHECK int pl_euicc_otk_by_id(const struct pl_euicc *e, uint16_t id,
                                     struct pl_euicc_otk_info *out);

struct pl_euicc_profile_info {
    uint8_t aid[PL_EUICC_AID_LEN];
    uint8_t iccid[PL_EUICC_ICCID_LEN];
    bool enabled;
    bool fallback;      /* SGP.32 Fallback Attribute set */
    const uint8_t *upp; /* the installed profile bytes (the UPP), borrowed */
    size_t upp_len;
};
size_t pl_euicc_profile_count(const struct pl_euicc *e);
PL_MUST_CHECK int pl_euicc_profile_get(const struct pl_euicc *e, size_t i,
                                       struct pl_euicc_profile_info *out);
size_t pl_euicc_notif_count(const struct pl_euicc *e);

/* ---- field mode (SGP.32) ---- */

struct pl_euicc_eim_info {
    char id[PL_EUICC_EIM_ID_MAX + 1]; /* eimId, NUL-terminated */
    uint32_t counter;                 /* last accepted counterValue (or the initial one) */
    bool has_token;
    int64_t token; /* associationToken */
};
size_t pl_euicc_eim_count(const struct pl_euicc *e);
/* PL_ERR_NOT_FOUND past the end. */
PL_MUST_CHECK int pl_euicc_eim_get(const struct pl_euicc *e, size_t i,
                                   struct pl_euicc_eim_info *out);
/* Pending signed eUICC Package Results (removed by NotificationSent with their seqNumber). */
size_t pl_euicc_epr_count(const struct pl_euicc *e);
/* The lose_result_after_enable knob fired: ES10 answers 6985 until pl_euicc_reset. */
bool pl_euicc_awaiting_reset(const struct pl_euicc *e);

#endif
