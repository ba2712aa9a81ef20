/* eIM Package Retrieval, IPA side (GSMA SGP.32 v1.2 §3.1.1.1; ESipa.GetEimPackage §6.3.2.6,
 * ESipa.ProvideEimPackageResult §6.3.2.7): one poll round.
 *
 *   identify     GetEID (the state file belongs to one eUICC; a new EID starts a fresh
 *                state) and, once per run, GetEimConfigurationData (eimId, eimFqdn);
 *   recover      a package still in flight (lost LoadEuiccPackage answer, restart);
 *   deliver      a result still pending goes before anything new;
 *   state change ListProfileInfo fingerprint differs from the last one -> notifyStateChange;
 *   poll         GetEimPackageRequest { eidValue, [notifyStateChange] };
 *   carry out    BF51 / BF52 / BF54 (ipa_proc_*.c), then deliver the result;
 *   schedule     work -> poll again at once, back-off reset; noEimPackageAvailable, an eIM
 *                error or any failure -> the back-off doubles, bounded (ipa_core.c).
 * reference/EIM.md §1.2-§1.6, §2.3. */
#include "ipa_internal.h"
#include "provline/protocol/sgp32_esipa.h"

#include <string.h>

int pl_ipa_proc_identify(struct pl_ipa *ipa)
{
    uint8_t eid[PL_SGP32_EID_LEN];
    int rc;

    if ((rc = pl_ipa_es10c_get_eid(ipa, eid)) != PL_OK)
        return rc;
    if (!ipa->st.has_eid || memcmp(eid, ipa->st.eid, sizeof(eid)) != 0) {
        if (ipa->st.has_eid)
            pl_ipa_log(ipa, PL_IPA_LOG_WARN, "another eUICC in the device: state started afresh");
        pl_ipa_state_free(&ipa->st);
        pl_ipa_state_init(&ipa->st);
        memcpy(ipa->st.eid, eid, sizeof(eid));
        ipa->st.has_eid = true;
        ipa->eim_config_read = false;
        ipa->has_token = false;
        if ((rc = pl_ipa_save(ipa)) != PL_OK)
            return rc;
    }
    if (!ipa->eim_config_read) {
        rc = pl_ipa_es10b_get_eim_configuration_data(ipa);
        if (rc == PL_OK) {
            pl_ipa_log(ipa, PL_IPA_LOG_INFO, "associated eIM %s (%s)", ipa->st.eim_id,
                       ipa->st.eim_fqdn[0] ? ipa->st.eim_fqdn : "no FQDN");
        } else if (rc == PL_ERR_UNSUPPORTED || rc == PL_ERR_NOT_FOUND || rc == PL_ERR_MALFORMED
                   || rc == PL_ERR_CARD_SW) {
            pl_ipa_log(ipa, PL_IPA_LOG_WARN, "eIM configuration not available: %s",
                       rc == PL_ERR_NOT_FOUND ? "no eIM associated" : pl_strerror(rc));
            ipa->eim_config_read = true; /* the eUICC answered: do not ask every poll */
        } else {
            return rc;
        }
    }
    return PL_OK;
}

/* The round failed or found nothing: back-off, state saved, rc returned. */
static int idle(struct pl_ipa *ipa, int rc)
{
    pl_ipa_schedule(ipa, false);
    int src = pl_ipa_save(ipa);
    return rc < 0 || src == PL_OK ? rc : src;
}

static int worked(struct pl_ipa *ipa)
{
    pl_ipa_schedule(ipa, true);
    int rc = pl_ipa_save(ipa);
    return rc != PL_OK ? rc : PL_IPA_POLL_WORK_DONE;
}

/* Recovers a package in flight and delivers a pending result. *did: something was sent. */
static int settle(struct pl_ipa *ipa, bool *did)
{
    int rc;

    *did = false;
    if (ipa->st.in_flight && (rc = pl_ipa_proc_recover_in_flight(ipa)) != PL_OK)
        return rc;
    if (ipa->st.in_flight)
        return PL_ERR_STATE; /* not recovered yet */
    if (!ipa->st.has_pending)
        return PL_OK;
    *did = true;
    return pl_ipa_esipa_provide_eim_package_result(ipa);
}

static int carry_out(struct pl_ipa *ipa, const uint8_t *rsp, size_t len, bool notified)
{
    struct pl_sgp32_esipa_eim_msg m;
    const struct pl_sgp32_eim_package *pkg = &m.get_eim_package;
    int rc;

    if ((rc = pl_sgp32_esipa_eim_msg_decode(rsp, len, &m)) != PL_OK
        || m.kind != PL_SGP32_ESIPA_GET_EIM_PACKAGE) {
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEimPackage: unusable answer (%zu bytes): %s", len,
                   rc != PL_OK ? pl_strerror(rc) : "another message");
        return idle(ipa, PL_ERR_MALFORMED);
    }
    if (notified) {
        ipa->st.notify_pending = false; /* the eIM has seen notifyStateChange */
        pl_ipa_log(ipa, PL_IPA_LOG_INFO, "state change notified");
    }
    switch (pkg->kind) {
    case PL_SGP32_EIM_PACKAGE_ERROR:
        if (pkg->error_code == PL_SGP32_EIM_PKG_ERR_NO_PACKAGE) {
            rc = idle(ipa, PL_IPA_POLL_NO_PACKAGE);
            pl_ipa_log(ipa, PL_IPA_LOG_DEBUG, "noEimPackageAvailable: next poll in %u ms",
                       (unsigned)ipa->st.backoff_ms);
            return rc;
        }
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEimPackage: eimPackageError %lld",
                   (long long)pkg->error_code);
        return idle(ipa, PL_IPA_POLL_EIM_ERROR);
    case PL_SGP32_EIM_PACKAGE_EUICC_PACKAGE_REQUEST:
        rc = pl_ipa_proc_euicc_package(ipa, pkg->raw.p, pkg->raw.len);
        break;
    case PL_SGP32_EIM_PACKAGE_IPA_EUICC_DATA_REQUEST:
        rc = pl_ipa_proc_ipa_euicc_data(ipa, pkg->raw.p, pkg->raw.len);
        break;
    case PL_SGP32_EIM_PACKAGE_PROFILE_DOWNLOAD_TRIGGER:
        rc = pl_ipa_proc_profile_download_trigger(ipa, pkg->raw.p, pkg->raw.len);
        break;
    default:
        pl_ipa_log(ipa, PL_IPA_LOG_WARN, "GetEimPackage: package kind %d not expected here",
                   (int)pkg->kind);
        return idle(ipa, PL_ERR_MALFORMED);
    }
    if (rc != PL_OK)
        return idle(ipa, rc);
    if (ipa->st.in_flight) /* answer lost and the eUICC out of reach: next poll */
        return idle(ipa, PL_ERR_STATE);
    if ((rc = pl_ipa_esipa_provide_eim_package_result(ipa)) != PL_OK)
        return idle(ipa, rc);
    return worked(ipa);
}

int pl_ipa_poll(struct pl_ipa *ipa)
{
    uint8_t fp[PL_SHA256_LEN];
    struct pl_wr req, rsp;
    bool did = false, notify;
    int rc;

    rc = pl_ipa_proc_identify(ipa);
    ipa->st.last_poll_ms = pl_ipa_now(ipa); /* after identify: a new eUICC starts afresh */
    if (rc != PL_OK)
        return idle(ipa, rc);
    rc = settle(ipa, &did);
    if (rc != PL_OK)
        return idle(ipa, rc);
    if (did)
        return worked(ipa);

    rc = pl_ipa_es10c_profiles_fingerprint(ipa, fp);
    if (rc == PL_OK) {
        if (ipa->st.has_fingerprint && memcmp(fp, ipa->st.fingerprint, sizeof(fp)) != 0) {
            pl_ipa_log(ipa, PL_IPA_LOG_INFO, "eUICC profiles changed since the last poll");
            ipa->st.notify_pending = true;
        }
        memcpy(ipa->st.fingerprint, fp, sizeof(fp));
        ipa->st.has_fingerprint = true;
    }
    notify = ipa->st.notify_pending;

    pl_wr_init_dyn(&req, 256);
    pl_wr_init_dyn(&rsp, PL_IPA_BODY_MAX);
    if ((rc = pl_ipa_esipa_get_eim_package_request(ipa, notify, &req)) != PL_OK) {
        rc = idle(ipa, rc);
        goto out;
    }
    ipa->st.polls++;
    if ((rc = pl_ipa_esipa_post(ipa, req.buf, req.len, &rsp)) != PL_OK) {
        rc = idle(ipa, rc);
        goto out;
    }
    rc = carry_out(ipa, rsp.buf, rsp.len, notify);
out:
    pl_wr_free(&req);
    pl_wr_free(&rsp);
    return rc;
}

int pl_ipa_handle_get_eim_package_response(struct pl_ipa *ipa, const uint8_t *rsp, size_t len)
{
    bool did = false;
    int rc;

    if (!ipa->st.has_eid && (rc = pl_ipa_proc_identify(ipa)) != PL_OK)
        return idle(ipa, rc);
    /* A result still owed goes first: it must not be overwritten. */
    if ((rc = settle(ipa, &did)) != PL_OK)
        return idle(ipa, rc);
    return carry_out(ipa, rsp, len, false);
}
