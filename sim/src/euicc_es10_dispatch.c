/* Software eUICC: ES10 request dispatch by the request's outer tag, with the SGP.41 v1.0
 * service lock: ES10f (FPA Services) answer SW 6985 once production is closed (GENS13);
 * LPA/IPA Services (SGP.22 ES10a/b/c profile management, the SGP.32 v1.2 §5.9 ES10b
 * functions of an IoT eUICC) answer 6985 while any FREE OTK remains (EUICCF04). GetEID and
 * the notification commands serve both sides. provline reference: IFPP.md §5.7, §6.2
 * (Lock), §7 cases 15-16; EIM.md §1.4, §1.6; docs/software-euicc.md §4, §9. */
#include "euicc_internal.h"
#include "provline/protocol/der.h"
#include "provline/protocol/es10f.h"
#include "provline/protocol/notif.h"

#define SW_REF_NOT_FOUND 0x6A88u /* referenced data not found: a function we do not offer */

/* SGP.22 v2.5 ES10a/b/c and SGP.32 v1.2 ES10b functions of the LPA/IPA (RSPDefinitions.asn,
 * SGP32Definitions.asn tags), all gated by EUICCF04. The ones this eUICC implements have a
 * handler; the others answer 6A88 once the gate is open. */
struct ipa_service {
    uint32_t tag;
    int (*handler)(struct pl_euicc *e, const uint8_t *req, size_t len, struct pl_wr *rsp);
};

static const struct ipa_service ipa_services[] = {
    {0xBF20u, pl_euicc_es10b_get_euicc_info1},            /* GetEuiccInfo1 */
    {0xBF21u, NULL},                                      /* PrepareDownload */
    {0xBF22u, pl_euicc_es10b_get_euicc_info2},            /* GetEuiccInfo2 */
    {0xBF28u, pl_euicc_es10b_list_notification},          /* ListNotification */
    {0xBF29u, NULL},                                      /* SetNickname */
    {0xBF2Au, NULL},                                      /* UpdateMetadata */
    {0xBF2Du, pl_euicc_es10c_list_profile_info},          /* ProfileInfoList */
    {0xBF2Eu, NULL},                                      /* GetEuiccChallenge */
    {0xBF31u, NULL},                                      /* EnableProfile (SGP.22 local) */
    {0xBF32u, NULL},                                      /* DisableProfile */
    {0xBF33u, NULL},                                      /* DeleteProfile */
    {0xBF34u, NULL},                                      /* eUICCMemoryReset (SGP.22) */
    {0xBF38u, NULL},                                      /* AuthenticateServer */
    {0xBF3Cu, pl_euicc_es10a_euicc_configured_addresses}, /* EuiccConfiguredAddresses */
    {0xBF3Fu, NULL},                                      /* SetDefaultDpAddress (ES10a) */
    {0xBF41u, NULL},                                      /* CancelSession */
    {0xBF42u, NULL},                                      /* SGP.32 IpaeActivation */
    {0xBF43u, NULL},                                      /* GetRat */
    {0xBF51u, pl_euicc_es10b_load_euicc_package},         /* SGP.32 LoadEuiccPackage */
    {0xBF55u, pl_euicc_es10b_get_eim_configuration_data}, /* SGP.32 GetEimConfigurationData */
    {0xBF56u, pl_euicc_es10b_get_certs},                  /* SGP.32 GetCerts */
    {0xBF57u, pl_euicc_es10b_add_initial_eim},            /* SGP.32 AddInitialEim */
    {0xBF58u, NULL},                                      /* SGP.32 ProfileRollback */
    {0xBF59u, NULL},                                  /* SGP.32 ConfigureImmediateProfileEnabling */
    {0xBF5Au, NULL},                                  /* SGP.32 ImmediateEnable */
    {0xBF5Bu, NULL},                                  /* SGP.32 EnableEmergencyProfile */
    {0xBF5Cu, NULL},                                  /* SGP.32 DisableEmergencyProfile */
    {0xBF5Du, NULL},                                  /* SGP.32 ExecuteFallbackMechanism */
    {0xBF5Eu, NULL},                                  /* SGP.32 ReturnFromFallback */
    {0xBF5Fu, NULL},                                  /* SGP.32 GetConnectivityParameters */
    {0xBF64u, NULL},                                  /* SGP.32 EuiccMemoryReset */
    {0xBF65u, pl_euicc_es10b_set_default_dp_address}, /* SGP.32 SetDefaultDpAddress */
};

static const struct ipa_service *ipa_service(uint32_t tag)
{
    for (size_t i = 0; i < sizeof(ipa_services) / sizeof(ipa_services[0]); i++)
        if (ipa_services[i].tag == tag)
            return &ipa_services[i];
    return NULL;
}

int pl_euicc_es10_dispatch(struct pl_euicc *e, const uint8_t *req, size_t len, unsigned channel,
                           struct pl_wr *rsp)
{
    struct pl_der d;
    uint32_t tag;
    int rc;

    /* The known-silicon knob fired: nothing answers until the card is reset. */
    if (e->await_reset)
        return PL_SW_CONDITIONS;
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
    const struct ipa_service *svc = ipa_service(tag);
    if (svc) {
        if (pl_euicc_otk_free_count(&e->st) > 0)
            return PL_SW_CONDITIONS; /* EUICCF04 */
        if (svc->handler)
            return svc->handler(e, req, len, rsp);
    }
    return SW_REF_NOT_FOUND;
}
