/* Software eUICC: ES10 request dispatch by the request's outer tag, with the SGP.41 v1.0
 * service lock: ES10f (FPA Services) answer SW 6985 once production is closed (GENS13);
 * LPA/IPA Services (SGP.22 ES10b/ES10c profile management, SGP.32 AddInitialEim, ...)
 * answer 6985 while any FREE OTK remains (EUICCF04). GetEID and the notification commands
 * serve both sides. provline reference: IFPP.md §5.7, §6.2 (Lock), §7 cases 15-16;
 * docs/software-euicc.md §4. */
#include "euicc_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"

#define SW_REF_NOT_FOUND 0x6A88u /* referenced data not found: a function we do not offer */

/* SGP.22 v2.5 ES10a/b/c and SGP.32 v1.2 ES10b functions of the LPA/IPA (RSPDefinitions.asn,
 * SGP32Definitions.asn tags), all gated by EUICCF04. Only ListProfileInfo is implemented. */
static bool is_ipa_service(uint32_t tag)
{
    switch (tag) {
    case 0xBF20u: /* GetEuiccInfo1 */
    case 0xBF21u: /* PrepareDownload */
    case 0xBF22u: /* GetEuiccInfo2 */
    case 0xBF28u: /* ListNotification */
    case 0xBF29u: /* SetNickname */
    case 0xBF2Au: /* UpdateMetadata */
    case 0xBF2Du: /* ProfileInfoList */
    case 0xBF2Eu: /* GetEuiccChallenge */
    case 0xBF31u: /* EnableProfile */
    case 0xBF32u: /* DisableProfile */
    case 0xBF33u: /* DeleteProfile */
    case 0xBF34u: /* eUICCMemoryReset */
    case 0xBF38u: /* AuthenticateServer */
    case 0xBF3Cu: /* EuiccConfiguredAddresses */
    case 0xBF3Fu: /* SetDefaultDpAddress */
    case 0xBF41u: /* CancelSession */
    case 0xBF43u: /* GetRat */
    case 0xBF51u: /* SGP.32 LoadEuiccPackage */
    case 0xBF52u: /* SGP.32 GetCerts */
    case 0xBF55u: /* SGP.32 GetEimConfigurationData */
    case 0xBF56u: /* SGP.32 ImmediateEnable / EuiccMemoryReset */
    case 0xBF57u: /* SGP.32 AddInitialEim */
        return true;
    default:
        return false;
    }
}

int pl_euicc_es10_dispatch(struct pl_euicc *e, const uint8_t *req, size_t len, unsigned channel,
                           struct pl_wr *rsp)
{
    struct pl_der d;
    uint32_t tag;
    int rc;

    pl_der_init(&d, req, len);
    if (pl_der_peek_tag(&d, &tag) != PL_OK)
        return PL_SW_WRONG_DATA;

    if (e->load.phase != PL_LOAD_IDLE) {
        if (pl_euicc_is_bpp_segment_tag(tag) && channel == e->load.channel)
            return pl_euicc_es10b_load_bpp_segment(e, req, len, rsp);
        /* Any other command ends the load: a consumed OTK gets its signed
         * installFailedDueToInterruption(11) now (IFPP.md §7 case 7); a header alone is
         * simply forgotten. */
        if ((rc = pl_euicc_load_interrupt(e)))
            return rc;
    }

    switch (tag) {
    case PL_TAG_ES10F_LOAD_REQ:
        rc = pl_euicc_es10f_load_header(e, req, len, rsp);
        if (rc == PL_OK && e->load.phase == PL_LOAD_HEADER)
            e->load.channel = channel;
        return rc;
    case PL_TAG_ES10F_GET_INFO_REQ:
        return pl_euicc_es10f_get_ifpp_info(e, req, len, rsp);
    case PL_TAG_ES10F_DELETE_OTKS_REQ:
        return pl_euicc_es10f_delete_otks(e, req, len, rsp);
    case PL_TAG_RETRIEVE_NOTIF:
        return pl_euicc_es10b_retrieve_notifications(e, req, len, rsp);
    case PL_TAG_NOTIF_SENT:
        return pl_euicc_es10b_notification_sent(e, req, len, rsp);
    case 0xBF3Eu:
        return pl_euicc_es10c_get_eid(e, req, len, rsp);
    case PL_TAG_BPP:
        /* A BPP without the ES10f header: in factory mode the OTK is unknown; after it, an
         * SGP.22 download would need PrepareDownload, which this eUICC does not offer. */
        return PL_SW_CONDITIONS;
    default:
        break;
    }
    if (is_ipa_service(tag)) {
        if (pl_euicc_otk_free_count(&e->st) > 0)
            return PL_SW_CONDITIONS; /* EUICCF04 */
        if (tag == 0xBF2Du)
            return pl_euicc_es10c_list_profile_info(e, req, len, rsp);
    }
    return SW_REF_NOT_FOUND;
}
