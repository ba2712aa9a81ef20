/* GSMA SGP.22 v2.5 notifications: NotificationMetadata 'BF2F' (§2.5.x / ASN.1),
 * §5.7.9 ES10b.ListNotification 'BF28', §5.7.10 ES10b.RetrieveNotificationsList 'BF2B',
 * §5.7.11 ES10b.RemoveNotificationFromList (NotificationSent 'BF30'). ASN.1:
 * shared/asn1/RSPDefinitions.asn (V2.5, AUTOMATIC TAGS). provline reference: IFPP.md §5.6.
 *
 * Tags, from the ASN.1 (checked one by one):
 *   RetrieveNotificationsListRequest  BF2B { A0 { 80 seqNumber | 81 NotificationEvent } OPTIONAL }
 *     (searchCriteria is an untagged CHOICE in a SEQUENCE without tags, so AUTOMATIC TAGS
 *      give it [0], explicit because it is a CHOICE: 'A0' wraps the alternative)
 *   RetrieveNotificationsListResponse BF2B { A0 { (BF37 | 30)* } | 81 INTEGER }
 *   ListNotificationRequest  BF28 { 81 NotificationEvent OPTIONAL }
 *   ListNotificationResponse BF28 { A0 { BF2F* } | 81 INTEGER }
 *   NotificationSentRequest  BF30 { 80 seqNumber }
 *   NotificationSentResponse BF30 { 80 deleteNotificationStatus }
 *   NotificationMetadata     BF2F { 80 seqNumber, 81 NotificationEvent, 0C address, 5A iccid? }
 *   OtherSignedNotification  30 { BF2F, 5F37 signature, 30 CERT.EUICC, 30 CERT.EUM }
 *
 * Decoders borrow the input; raw views let callers forward notifications byte-exact. */
#ifndef PROVLINE_PROTOCOL_NOTIF_H
#define PROVLINE_PROTOCOL_NOTIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provline/protocol/crypto.h"
#include "provline/protocol/der.h"
#include "provline/protocol/err.h"
#include "provline/protocol/wr.h"

#define PL_TAG_NOTIF_META 0xBF2Fu
#define PL_TAG_LIST_NOTIF 0xBF28u
#define PL_TAG_RETRIEVE_NOTIF 0xBF2Bu
#define PL_TAG_NOTIF_SENT 0xBF30u

/* NotificationEvent BIT STRING named bits, as a mask (bit n of the ASN.1 = 1u << n). */
#define PL_NOTIF_EV_INSTALL (1u << 0)
#define PL_NOTIF_EV_ENABLE (1u << 1)
#define PL_NOTIF_EV_DISABLE (1u << 2)
#define PL_NOTIF_EV_DELETE (1u << 3)
#define PL_NOTIF_EV_ALL 0x0Fu /* the events SGP.22 v2.5 names; others are rejected */

#define PL_NOTIF_ADDR_MAX 255u /* notificationAddress: an FQDN */
#define PL_NOTIF_ICCID_LEN 10u
#define PL_NOTIF_LIST_MAX 32u  /* cap on the notifications one response may carry */

/* NotificationMetadata 'BF2F'. ops has exactly one bit set ("Only one bit SHALL be set
 * to 1"). */
struct pl_notif_meta {
    uint64_t seq;
    uint8_t ops;
    char addr[PL_NOTIF_ADDR_MAX + 1]; /* NUL-terminated copy, valid UTF-8 */
    bool has_iccid;
    uint8_t iccid[PL_NOTIF_ICCID_LEN];
    const uint8_t *raw; /* decoder only: the whole 'BF2F' TLV as received */
    size_t raw_len;
};
/* Decodes exactly one 'BF2F' TLV spanning [p, p+len). */
PL_MUST_CHECK int pl_notif_meta_decode(const uint8_t *p, size_t len, struct pl_notif_meta *out);
PL_MUST_CHECK int pl_notif_meta_encode(const struct pl_notif_meta *in, struct pl_wr *w);

/* NotificationEvent as a DER BIT STRING (X.690 §11.2.2: trailing zero bits removed).
 * get: any set bit outside PL_NOTIF_EV_ALL or a
 * non-minimal form is PL_ERR_DER_VALUE. ops == 0 encodes as the empty bit string. */
PL_MUST_CHECK int pl_notif_event_get(const struct pl_tlv *tlv, uint8_t *ops);
int pl_notif_event_put(struct pl_wr *w, uint32_t tag, uint8_t ops);

/* ---- RetrieveNotificationsList 'BF2B' ---- */

enum pl_notif_crit {
    PL_NOTIF_CRIT_NONE = 0, /* all pending notifications */
    PL_NOTIF_CRIT_SEQ = 1,  /* seqNumber '80' */
    PL_NOTIF_CRIT_OPS = 2,  /* profileManagementOperation '81' */
};
struct pl_notif_rnl_req {
    enum pl_notif_crit crit;
    uint64_t seq;
    uint8_t ops; /* bits of PL_NOTIF_EV_ALL */
};
PL_MUST_CHECK int pl_notif_rnl_req_decode(const uint8_t *p, size_t len, struct pl_notif_rnl_req *out);
PL_MUST_CHECK int pl_notif_rnl_req_encode(const struct pl_notif_rnl_req *in, struct pl_wr *w);

enum pl_notif_kind {
    PL_NOTIF_KIND_PIR = 1,   /* profileInstallationResult 'BF37' */
    PL_NOTIF_KIND_OTHER = 2, /* otherSignedNotification '30' */
};
/* One PendingNotification. raw is the whole 'BF37' or '30' TLV: forward it as is. */
struct pl_notif_pending {
    enum pl_notif_kind kind;
    const uint8_t *raw;
    size_t raw_len;
    struct pl_notif_meta meta; /* decoder only: from the PIR's data or tbsOtherNotification */
};
#define PL_NOTIF_RESULT_UNDEFINED_ERROR 127 /* undefinedError(127) */
struct pl_notif_rnl_rsp {
    bool is_error;
    int64_t error; /* notificationsListResultError when is_error */
    size_t n;
    struct pl_notif_pending items[PL_NOTIF_LIST_MAX];
};
/* Each PIR entry is decoded in full (pl_pir_decode), each other notification with
 * pl_notif_other_decode; a malformed entry fails the whole response. More than
 * PL_NOTIF_LIST_MAX entries: PL_ERR_OVERFLOW. The struct is ~10 KiB. */
PL_MUST_CHECK int pl_notif_rnl_rsp_decode(const uint8_t *p, size_t len, struct pl_notif_rnl_rsp *out);
/* Copies each items[i].raw (kind and tag must agree, each a valid TLV). */
PL_MUST_CHECK int pl_notif_rnl_rsp_encode(const struct pl_notif_rnl_rsp *in, struct pl_wr *w);

/* OtherSignedNotification '30' { tbsOtherNotification 'BF2F', euiccNotificationSignature
 * '5F37' (64 B, over the 'BF2F' TLV), euiccCertificate '30', eumCertificate '30' }. */
struct pl_notif_other {
    struct pl_notif_meta meta; /* meta.raw = the signed bytes */
    const uint8_t *sig;        /* PL_ECDSA_SIG_LEN bytes */
    const uint8_t *euicc_cert; /* whole certificate TLV */
    size_t euicc_cert_len;
    const uint8_t *eum_cert;
    size_t eum_cert_len;
    const uint8_t *raw;        /* decoder only: the whole '30' TLV */
    size_t raw_len;
};
PL_MUST_CHECK int pl_notif_other_decode(const uint8_t *p, size_t len, struct pl_notif_other *out);
/* Builds tbsOtherNotification from in->meta, signs it with the eUICC key (SK.EUICC.SIG),
 * and appends the whole '30'. in->sig is ignored. Certificates are copied (each must be
 * one valid DER SEQUENCE). */
PL_MUST_CHECK int pl_notif_other_encode(const struct pl_notif_other *in, const struct pl_eckey *key,
                                        const struct pl_rng *rng, struct pl_wr *w);
/* Verifies the signature over the received 'BF2F' bytes. PL_ERR_BAD_SIGNATURE on mismatch. */
PL_MUST_CHECK int pl_notif_other_verify(const struct pl_notif_other *n, const struct pl_eckey *euicc_pub);

/* ---- ListNotification 'BF28' ---- */

struct pl_notif_list_req {
    bool has_ops;
    uint8_t ops;
};
PL_MUST_CHECK int pl_notif_list_req_decode(const uint8_t *p, size_t len, struct pl_notif_list_req *out);
PL_MUST_CHECK int pl_notif_list_req_encode(const struct pl_notif_list_req *in, struct pl_wr *w);

struct pl_notif_list_rsp {
    bool is_error;
    int64_t error; /* listNotificationsResultError when is_error */
    size_t n;
    struct pl_notif_meta items[PL_NOTIF_LIST_MAX];
};
PL_MUST_CHECK int pl_notif_list_rsp_decode(const uint8_t *p, size_t len, struct pl_notif_list_rsp *out);
PL_MUST_CHECK int pl_notif_list_rsp_encode(const struct pl_notif_list_rsp *in, struct pl_wr *w);

/* ---- NotificationSent 'BF30' (ES10b.RemoveNotificationFromList) ---- */

enum pl_notif_sent_status {
    PL_NOTIF_SENT_OK = 0,
    PL_NOTIF_SENT_NOTHING_TO_DELETE = 1,
    PL_NOTIF_SENT_UNDEFINED_ERROR = 127,
};
PL_MUST_CHECK int pl_notif_sent_req_decode(const uint8_t *p, size_t len, uint64_t *seq);
PL_MUST_CHECK int pl_notif_sent_req_encode(uint64_t seq, struct pl_wr *w);
/* Any INTEGER value is returned (extensible enumeration); callers compare with the enum. */
PL_MUST_CHECK int pl_notif_sent_rsp_decode(const uint8_t *p, size_t len, int64_t *status);
PL_MUST_CHECK int pl_notif_sent_rsp_encode(int64_t status, struct pl_wr *w);

#endif
