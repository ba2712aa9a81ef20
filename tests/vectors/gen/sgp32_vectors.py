# Writes tests/vectors/sgp32/*.hex: SGP.32 v1.2 DER vectors, hand-built from the ASN.1 of
# shared/asn1/SGP32Definitions.asn (AUTOMATIC TAGS applied by hand, see docs/sgp32-codec.md).
# Each tree below is typed tag by tag; this script only computes lengths and lays the bytes
# out with one annotated TLV per line. Cross-check against an independent ASN.1 compiler with
# sgp32_crosscheck.escript (Erlang/OTP asn1). Usage: python3 sgp32_vectors.py REPO_ROOT
import os
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else '.'
OUT = os.path.join(ROOT, 'tests/vectors/sgp32')


def L(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b


class N:
    """A TLV: constructed when given children, primitive when given bytes."""

    def __init__(self, tag, comment, *kids, value=None):
        self.tag = bytes.fromhex(tag)
        self.comment = comment
        self.kids = kids
        self.value = value

    def der(self):
        c = self.value if self.value is not None else b''.join(k.der() for k in self.kids)
        return self.tag + L(len(c)) + c

    def lines(self, depth=0):
        c = self.value if self.value is not None else b''.join(k.der() for k in self.kids)
        pad = '  ' * depth
        head = (self.tag + L(len(c))).hex()
        if self.value is not None:
            v = self.value.hex()
            chunks = [v[i:i + 64] for i in range(0, len(v), 64)] or ['']
            out = ['%s%s %s' % (pad, head, chunks[0])]
            out += ['%s  %s' % (pad, ch) for ch in chunks[1:]]
            width = max(len(x) for x in out)
            out[0] = out[0].ljust(max(width, 48)) + ' # ' + self.comment
            return out
        out = [('%s%s' % (pad, head)).ljust(48) + ' # ' + self.comment]
        for k in self.kids:
            out += k.lines(depth + 1)
        return out


def P(tag, comment, hexval):
    return N(tag, comment, value=bytes.fromhex(hexval))


def U(tag, comment, text):
    return N(tag, comment + ' "%s"' % text, value=text.encode())


def write(name, asn1, decoder, expect, erlang, note, node, extra=b''):
    lines = ['# asn1: ' + asn1, '# decoder: ' + decoder, '# expect: ' + expect,
             '# erlang: ' + erlang]
    lines += ['# ' + x for x in note.split('\n')]
    lines += node.lines()
    if extra:
        lines.append(extra.hex() + '  # trailing byte(s)')
    with open(os.path.join(OUT, name + '.hex'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


ICCID = '98109909002143658739'
EID = '89049032123451234512345678901234'
SIG = '5a' * 64
cert = open(os.path.join(ROOT, 'tests/data/sgp26/variant-o/CERT_S_EIMsign_ECDSA_NIST.der'),
            'rb').read()
assert cert[0] == 0x30 and cert[1] == 0x82
cert_body = cert[4:]


def sig(comment='eimSignature (dummy r||s)'):
    return P('5f37', comment, SIG)


# ---- EuiccPackageRequest, psmoList with every PSMO ----
psmos = N('a0', 'psmoList [0] SEQUENCE OF Psmo',
          N('a3', 'enable [3]', P('5a', 'iccid', ICCID), P('05', 'rollbackFlag NULL (untagged)', '')),
          N('a4', 'disable [4]', P('5a', 'iccid', ICCID)),
          N('a5', 'delete [5]', P('5a', 'iccid', ICCID)),
          N('bf2d', 'listProfileInfo [45] ProfileInfoListRequest',
            N('a0', 'searchCriteria [0] (explicit CHOICE)', P('5a', 'iccid', ICCID)),
            P('5c', 'tagList', '5a9f70')),
          N('a6', 'getRAT [6] SEQUENCE {}'),
          N('a7', 'configureImmediateEnable [7]', P('80', 'immediateEnableFlag', ''),
            P('81', 'defaultSmdpOid 2.999.1', '883701'),
            U('82', 'defaultSmdpAddress', 'smdp.example.com')),
          N('a8', 'setFallbackAttribute [8]', P('5a', 'iccid', ICCID)),
          N('a9', 'unsetFallbackAttribute [9] SEQUENCE {}'),
          N('bf65', 'setDefaultDpAddress [101] SGP32-SetDefaultDpAddressRequest',
            U('80', 'defaultDpAddress (automatic [0])', 'dp.example')))
write('euicc_package_request_psmo', 'EuiccPackageRequest', 'euicc_package_request', 'ok', 'same',
      'SGP.32 v1.2 §2.11.1.1; every PSMO of the v1.2 Psmo CHOICE (§2.11.1.1.3)',
      N('bf51', 'EuiccPackageRequest [81]',
        N('30', 'euiccPackageSigned EuiccPackageSigned',
          U('80', 'eimId', 'eim.example'), P('5a', 'eidValue', EID), P('81', 'counterValue 7', '07'),
          P('82', 'eimTransactionId', '01020304'), psmos),
        sig()))

# ---- EuiccPackageRequest, ecoList with every eCO; addEim carries a certificate ----
cfg_cert = N('a8', 'addEim [8] EimConfigurationData', U('80', 'eimId', 'eim2'),
             U('81', 'eimFqdn', 'eim2.example'), P('82', 'eimIdType fqdn(2)', '02'),
             P('83', 'counterValue 1', '01'), P('84', 'associationToken 128 (leading 00)', '0080'),
             N('a5', 'eimPublicKeyData [5] (explicit CHOICE)',
               P('a1', 'eimCertificate [1] IMPLICIT Certificate: TBS, algorithm, signature',
                 cert_body.hex())),
             P('87', 'eimSupportedProtocol {retrieveHttps, retrieveCoaps}', '06c0'),
             P('89', 'indirectProfileDownload', ''))
ecos = N('a1', 'ecoList [1] SEQUENCE OF Eco', cfg_cert,
         N('a9', 'deleteEim [9]', U('80', 'eimId', 'eim3')),
         N('aa', 'updateEim [10] EimConfigurationData', U('80', 'eimId', 'eim2'),
           P('83', 'counterValue 100', '64')),
         N('ab', 'listEim [11] SEQUENCE {}'))
write('euicc_package_request_eco', 'EuiccPackageRequest', 'euicc_package_request', 'ok', 'same',
      'SGP.32 v1.2 §2.11.1.1; every eCO (§2.11.1.1.2); addEim with the SGP.26 eIM certificate',
      N('bf51', 'EuiccPackageRequest [81]',
        N('30', 'euiccPackageSigned', U('80', 'eimId', 'eim.example'), P('5a', 'eidValue', EID),
          P('81', 'counterValue 128', '0080'), ecos),
        sig()))

# ---- EuiccPackageResult: every EuiccResultData arm ----
e3 = N('e3', 'SGP32-ProfileInfo [PRIVATE 3]', P('5a', 'iccid', ICCID), P('9f70', 'profileState enabled', '01'))
results = N('30', 'euiccResult SEQUENCE OF EuiccResultData',
            P('83', 'enableResult ok', '00'), P('84', 'disableResult iccidOrAidNotFound', '01'),
            P('85', 'deleteResult returnFallbackProfile', '15'),
            N('bf2d', 'listProfileInfoResult [45]: one tag (implicit on the tagged CHOICE)',
              N('a0', 'profileInfoListOk [0]', e3)),
            N('a6', 'getRATResult [6] RulesAuthorisationTable',
              N('30', 'ProfilePolicyAuthorisationRule', P('80', 'pprIds {ppr1}', '0640'),
                N('a1', 'allowedOperators', N('30', 'OperatorId', P('80', 'mccMnc', '010203'))),
                P('82', 'pprFlags {consentRequired}', '0780'))),
            P('87', 'configureImmediateEnableResult commandError', '07'),
            N('a8', 'addEimResult [8] (explicit CHOICE)', P('84', 'associationToken 300', '012c')),
            N('a8', 'addEimResult [8] (explicit CHOICE)', P('02', 'addEimResultCode counterValueOutOfRange', '06')),
            P('89', 'deleteEimResult lastEimDeleted', '02'), P('8a', 'updateEimResult ciPKUnknown', '03'),
            N('ab', 'listEimResult [11] (explicit CHOICE)',
              N('a0', 'eimIdList [0]', N('30', 'EimIdInfo', U('80', 'eimId', 'eim.example'),
                                         P('82', 'eimIdType fqdn', '02')))),
            P('8c', 'rollbackResult ok', '00'), P('8d', 'setFallbackAttributeResult fallbackNotAllowed', '02'),
            P('8e', 'unsetFallbackAttributeResult noFallbackAttribute', '02'),
            P('02', 'processingTerminated interruption', '03'),
            N('bf65', 'setDefaultDpAddressResult [101]', P('80', 'setDefaultDpAddressResult ok', '00')))
write('euicc_package_result_signed', 'EuiccPackageResult', 'euicc_package_result', 'ok', 'double-tag',
      'SGP.32 v1.2 §2.11.2.1; every EuiccResultData arm (16 = PL_SGP32_MAX_RESULTS).\n'
      'asn1ct writes listProfileInfoResult as BF2D BF2D; asn1c and X.680 §31.2.7 give one BF2D.',
      N('bf51', 'EuiccPackageResult [81] (explicit CHOICE)',
        N('a0', 'euiccPackageResultSigned [0]',
          N('30', 'euiccPackageResultDataSigned', U('80', 'eimId', 'eim.example'),
            P('81', 'counterValue 7', '07'), P('82', 'eimTransactionId', '01020304'),
            P('83', 'seqNumber 42', '2a'), results),
          sig('euiccSignEPR (dummy r||s)'))))
write('euicc_package_error_signed', 'EuiccPackageResult', 'euicc_package_result', 'ok', 'same',
      'SGP.32 v1.2 §2.11.2.1 euiccPackageErrorSigned, replayError(4)',
      N('bf51', 'EuiccPackageResult [81]',
        N('a1', 'euiccPackageErrorSigned [1]',
          N('30', 'euiccPackageErrorDataSigned', U('80', 'eimId', 'eim.example'),
            P('81', 'counterValue 8', '08'), P('02', 'euiccPackageErrorCode replayError', '04')),
          sig('euiccSignEPE (dummy r||s)'))))
write('euicc_package_error_unsigned', 'EuiccPackageResult', 'euicc_package_result', 'ok', 'same',
      'SGP.32 v1.2 §2.11.2.1 euiccPackageErrorUnsigned',
      N('bf51', 'EuiccPackageResult [81]',
        N('a2', 'euiccPackageErrorUnsigned [2]', U('80', 'eimId', 'eim.example'),
          P('82', 'eimTransactionId', '09'), P('84', 'associationToken 5', '05'))))

# ---- eIM configuration ----
spki_body = '301306072a8648ce3d020106082a8648ce3d030107030400040102'
cfg_full = N('30', 'EimConfigurationData', U('80', 'eimId', 'eim.example'),
             U('81', 'eimFqdn', 'eim.example.com'), P('82', 'eimIdType fqdn', '02'),
             P('83', 'counterValue 300', '012c'), P('84', 'associationToken 128', '0080'),
             N('a5', 'eimPublicKeyData [5]', P('a0', 'eimPublicKey [0] IMPLICIT SubjectPublicKeyInfo (dummy key)', spki_body)),
             N('a6', 'trustedPublicKeyDataTls [6]', P('a0', 'trustedEimPkTls [0] IMPLICIT SPKI', spki_body)),
             P('87', 'eimSupportedProtocol {retrieveHttps, injectCoaps}', '0490'),
             P('88', 'euiccCiPKId', '01020304'), P('89', 'indirectProfileDownload', ''))
write('eim_configuration_data', 'EimConfigurationData', 'eim_configuration_data', 'ok', 'same',
      'SGP.32 v1.2 §2.11.1.1.1, every component', cfg_full)
write('add_initial_eim_request', 'AddInitialEimRequest', 'add_initial_eim_request', 'ok', 'same',
      'SGP.32 v1.2 §5.9.4 ES10b.AddInitialEim', N('bf57', 'AddInitialEimRequest [87]',
        N('a0', 'eimConfigurationDataList [0]', cfg_full,
          N('30', 'EimConfigurationData', U('80', 'eimId', 'b'), P('84', 'associationToken -1', 'ff')))))
write('add_initial_eim_response_ok', 'AddInitialEimResponse', 'add_initial_eim_response', 'ok', 'same',
      'SGP.32 v1.2 §5.9.4; [87] CHOICE is explicit, the SEQUENCE OF CHOICE has no automatic tags',
      N('bf57', 'AddInitialEimResponse [87]', N('a0', 'addInitialEimOk [0]',
        P('84', 'associationToken 1', '01'), P('05', 'addOk NULL', ''))))
write('add_initial_eim_response_error', 'AddInitialEimResponse', 'add_initial_eim_response', 'ok', 'same',
      'SGP.32 v1.2 §5.9.4 addInitialEimError associatedEimAlreadyExists',
      N('bf57', 'AddInitialEimResponse [87]', P('81', 'addInitialEimError [1]', '02')))
write('get_eim_configuration_data_request', 'GetEimConfigurationDataRequest',
      'get_eim_configuration_data_request', 'ok', 'same',
      'SGP.32 v1.2 §5.9.18; searchCriteria gets automatic [0], explicit because it is a CHOICE',
      N('bf55', 'GetEimConfigurationDataRequest [85]',
        N('a0', 'searchCriteria [0]', U('80', 'eimId', 'eim1'))))
write('get_eim_configuration_data_response', 'GetEimConfigurationDataResponse',
      'get_eim_configuration_data_response', 'ok', 'same', 'SGP.32 v1.2 §5.9.18',
      N('bf55', 'GetEimConfigurationDataResponse [85]', N('a0', 'eimConfigurationDataList [0]', cfg_full)))

# ---- IPA data, triggers, acknowledgements ----
write('ipa_euicc_data_request', 'IpaEuiccDataRequest', 'ipa_euicc_data_request', 'ok', 'same',
      'SGP.32 v1.2 §2.11.1.2', N('bf52', 'IpaEuiccDataRequest [82]',
        P('5c', 'tagList', 'a081a2bf20a8'), P('04', 'euiccCiPKIdentifierToBeUsed', '010203'),
        N('a1', 'searchCriteriaNotification [1] (explicit CHOICE)', P('80', 'seqNumber 5', '05')),
        N('a2', 'searchCriteriaEuiccPackageResult [2]', P('80', 'seqNumber 300', '012c')),
        P('83', 'eimTransactionId', '0707')))
epr_u = N('bf51', 'EuiccPackageResult (unsigned error)', N('a2', 'euiccPackageErrorUnsigned', U('80', 'eimId', 'e')))
# ProfileInstallationResult: the Erlang-encoded SGP.22 record pir_success of sgp22_pir.txt
PIR_HEX = None
for block in open(os.path.join(ROOT, 'tests/vectors/sgp22_pir.txt')).read().split('\n\n'):
    if 'name = pir_success' in block:
        PIR_HEX = [x for x in block.split('\n') if x.startswith('der = ')][0][6:]
assert PIR_HEX and PIR_HEX.startswith('bf37')
pir = P(PIR_HEX[:4], 'ProfileInstallationResult (sgp22_pir.txt pir_success, relayed raw)',
        PIR_HEX[4 + 4:] if PIR_HEX[4:6] == '81' else PIR_HEX[6:])
write('ipa_euicc_data_response', 'IpaEuiccDataResponse', 'ipa_euicc_data_response', 'ok', 'same',
      'SGP.32 v1.2 §2.11.2.2; [82] CHOICE explicit, arm ipaEuiccData [0];\n'
      'eumCertificate/euiccCertificate are IMPLICIT (contents directly under A5/A6)',
      N('bf52', 'IpaEuiccDataResponse [82]', N('a0', 'ipaEuiccData [0]',
        N('a0', 'notificationsList [0]', pir),
        U('81', 'defaultSmdpAddress', 'smdp.example'),
        N('a2', 'euiccPackageResultList [2]', epr_u, epr_u),
        U('83', 'rootSmdsAddress', 'smds.example'), P('84', 'associationToken 77', '4d'),
        P('a6', 'euiccCertificate [6] IMPLICIT Certificate', cert_body.hex()),
        P('87', 'eimTransactionId', '0505'),
        N('a8', 'ipaCapabilities [8]', P('80', 'ipaFeatures {indirect, minimizeEsipaBytes}', '0244'),
          P('81', 'ipaSupportedProtocols {retrieveHttps, retrieveCoaps}', '06c0')),
        N('a9', 'deviceInfo [9] IMPLICIT DeviceInfo', P('80', 'tac', '35290611'), N('a1', 'deviceCapabilities')))))
write('ipa_euicc_data_response_error', 'IpaEuiccDataResponse', 'ipa_euicc_data_response', 'ok', 'same',
      'SGP.32 v1.2 §2.11.2.2 ipaEuiccDataResponseError incorrectTagList',
      N('bf52', 'IpaEuiccDataResponse [82]', N('a1', 'ipaEuiccDataResponseError [1]',
        P('80', 'eimTransactionId', '0505'), P('02', 'ipaEuiccDataErrorCode incorrectTagList', '01'))))
write('profile_download_trigger_request', 'ProfileDownloadTriggerRequest',
      'profile_download_trigger_request', 'ok', 'same', 'SGP.32 v1.2 §2.11.1.3 activation code',
      N('bf54', 'ProfileDownloadTriggerRequest [84]',
        N('a0', 'profileDownloadData [0] (explicit CHOICE)', U('80', 'activationCode', '1$smdp.example$MATCH')),
        P('82', 'eimTransactionId', '01')))
write('profile_download_trigger_result', 'ProfileDownloadTriggerResult',
      'profile_download_trigger_result', 'ok', 'same', 'SGP.32 v1.2 §2.11.2.3 profileDownloadError',
      N('bf54', 'ProfileDownloadTriggerResult [84]', P('82', 'eimTransactionId', '01'),
        N('30', 'profileDownloadError', P('80', 'profileDownloadErrorReason ecallActive', '68'),
          P('04', 'errorResponse', 'bf3900'))))
write('eim_acknowledgements', 'EimAcknowledgements', 'eim_acknowledgements', 'ok', 'same',
      'SGP.32 v1.2 §2.11.1.4; SequenceNumber ::= [0] INTEGER',
      N('bf53', 'EimAcknowledgements [83]', P('80', 'seq 13', '0d'), P('80', 'seq 14', '0e')))

# ---- ESipa ----
write('esipa_get_eim_package_request', 'GetEimPackageRequest', 'esipa_ipa_to_eim', 'ok', 'same',
      'SGP.32 v1.2 §6.3.2.6', N('bf4f', 'GetEimPackageRequest [79]', P('5a', 'eidValue', EID),
                                 P('80', 'notifyStateChange', ''), P('81', 'stateChangeCause fallback', '01'),
                                 P('82', 'rPLMN', '62f210')))
write('esipa_get_eim_package_response_none', 'GetEimPackageResponse', 'esipa_eim_to_ipa', 'ok', 'same',
      'SGP.32 v1.2 §6.3.2.6 noEimPackageAvailable (EIM.md §1.8: BF4F 03 02 01 01)',
      N('bf4f', 'GetEimPackageResponse [79]', P('02', 'eimPackageError noEimPackageAvailable', '01')))
write('esipa_get_eim_package_response_package', 'GetEimPackageResponse', 'esipa_eim_to_ipa', 'ok', 'same',
      'SGP.32 v1.2 §6.3.2.6 euiccPackageRequest',
      N('bf4f', 'GetEimPackageResponse [79]',
        N('bf51', 'euiccPackageRequest [81]', N('30', 'euiccPackageSigned', U('80', 'eimId', 'e'),
          P('5a', 'eidValue', EID), P('81', 'counterValue 1', '01'),
          N('a0', 'psmoList', N('a4', 'disable', P('5a', 'iccid', ICCID)))), sig())))
write('esipa_provide_eim_package_result', 'ProvideEimPackageResult', 'esipa_ipa_to_eim', 'ok', 'double-tag',
      'SGP.32 v1.2 §6.3.2.7 with ePRAndNotifications; one BF51 (asn1ct writes two)',
      N('bf50', 'ProvideEimPackageResult [80]', P('5a', 'eidValue', EID),
        N('30', 'ePRAndNotifications', epr_u, N('a0', 'notificationList [0]', pir))))
write('esipa_provide_eim_package_result_response_empty', 'ProvideEimPackageResultResponse',
      'esipa_eim_to_ipa', 'ok', 'same', 'SGP.32 v1.2 §6.3.2.7 emptyResponse (EIM.md §1.8: BF50 02 30 00)',
      N('bf50', 'ProvideEimPackageResultResponse [80]', N('30', 'emptyResponse SEQUENCE {}')))
write('esipa_handle_notification', 'HandleNotificationEsipa', 'esipa_ipa_to_eim', 'ok', 'same',
      'SGP.32 v1.2 §6.3.2.4; pendingNotification [0] explicit (untagged CHOICE)',
      N('bf3d', 'HandleNotificationEsipa [61]', N('a0', 'pendingNotification [0]', pir)))
write('esipa_transfer_eim_package_request', 'TransferEimPackageRequest', 'esipa_eim_to_ipa', 'ok', 'same',
      'SGP.32 v1.2 §6.3.3.1 eimAcknowledgements',
      N('bf4e', 'TransferEimPackageRequest [78]', N('bf53', 'eimAcknowledgements [83]', P('80', 'seq 5', '05'))))
write('esipa_transfer_eim_package_response', 'TransferEimPackageResponse', 'esipa_ipa_to_eim', 'ok', 'same',
      'SGP.32 v1.2 §6.3.3.1 eimPackageReceived',
      N('bf4e', 'TransferEimPackageResponse [78]', P('05', 'eimPackageReceived NULL', '')))
write('esipa_cancel_session_request', 'CancelSessionRequestEsipa', 'esipa_ipa_to_eim', 'ok', 'double-tag',
      'SGP.32 v1.2 §6.3.2.5; both components untagged, so automatic [0]/[1];\n'
      '[1] is IMPLICIT on the tagged CHOICE: A1 holds the ES10b BF41 contents (asn1c agrees)',
      N('bf41', 'CancelSessionRequestEsipa [65]', P('80', 'transactionId', '0102'),
        N('a1', 'cancelSessionResponse [1]', P('81', 'cancelSessionResponseError invalidTransactionId', '05'))))
write('esipa_initiate_authentication_request', 'InitiateAuthenticationRequestEsipa', 'esipa_ipa_to_eim',
      'ok', 'same', 'SGP.32 v1.2 §6.3.2.1 (components in declaration order: [1], [3], BF20, [2])',
      N('bf39', 'InitiateAuthenticationRequestEsipa [57]', P('81', 'euiccChallenge', 'cc' * 16),
        U('83', 'smdpAddress', 'smdp.example'),
        N('bf20', 'euiccInfo1 EUICCInfo1', P('82', 'svn 2.5.0', '020500'),
          N('a9', 'euiccCiPKIdListForVerification', P('04', 'SKI', '0102')),
          N('aa', 'euiccCiPKIdListForSigning', P('04', 'SKI', '0102'))),
        P('82', 'eimTransactionId', '09')))

# ---- negative vectors: tagging traps ----
write('neg_epr_double_tag', 'EuiccPackageResult', 'euicc_package_result', 'DER_TAG', 'n/a',
      'asn1ct-style second BF51 (EIM.md §1.8): rejected',
      N('bf51', 'EuiccPackageResult', N('bf51', 'second tag', N('a2', 'euiccPackageErrorUnsigned', U('80', 'eimId', 'e')))))
write('neg_epr_no_arm_tag', 'EuiccPackageResult', 'euicc_package_result', 'DER_TAG', 'n/a',
      'BF51 { 30 data, 5F37 } without the [0] arm tag (OpenIoTRSP\'s first reading): rejected',
      N('bf51', 'EuiccPackageResult', N('30', 'data', U('80', 'eimId', 'e'), P('81', 'counter', '01'),
                                        P('83', 'seq', '01'), N('30', 'results', P('83', 'enable ok', '00'))),
        sig()))
write('neg_get_eim_config_bare_choice', 'GetEimConfigurationDataRequest',
      'get_eim_configuration_data_request', 'DER_TAG', 'n/a',
      'searchCriteria CHOICE without its explicit [0]: 80 where A0 belongs',
      N('bf55', 'GetEimConfigurationDataRequest', U('80', 'eimId', 'eim1')))
write('neg_cancel_session_double_tag', 'CancelSessionRequestEsipa', 'esipa_ipa_to_eim', 'DER_TAG', 'n/a',
      'A1 { BF41 { 81 05 } } (asn1ct): the [1] tag must replace BF41, not wrap it',
      N('bf41', 'CancelSessionRequestEsipa', P('80', 'transactionId', '0102'),
        N('a1', 'cancelSessionResponse', N('bf41', 'second tag', P('81', 'error', '05')))))
write('neg_eim_config_bare_certificate', 'EimConfigurationData', 'eim_configuration_data', 'DER_TAG', 'n/a',
      'eimPublicKeyData [5] holding a bare 30 without the CHOICE arm tag (vendor-rejected, EIM.md §1.8)',
      N('30', 'EimConfigurationData', U('80', 'eimId', 'e'),
        N('a5', 'eimPublicKeyData', P('30', 'Certificate contents (bare)', cert_body.hex()))))
write('neg_eid_15_bytes', 'GetEimPackageRequest', 'esipa_ipa_to_eim', 'DER_VALUE', 'n/a',
      'eidValue Octet16 with 15 octets', N('bf4f', 'GetEimPackageRequest', P('5a', 'eidValue', EID[:30])))
write('neg_counter_negative', 'EuiccPackageRequest', 'euicc_package_request', 'DER_VALUE', 'n/a',
      'counterValue -1', N('bf51', 'EuiccPackageRequest', N('30', 'signed', U('80', 'eimId', 'e'),
        P('5a', 'eid', EID), P('81', 'counterValue -1', 'ff'), N('a0', 'psmoList')), sig()))
write('neg_trailing', 'GetEimPackageResponse', 'esipa_eim_to_ipa', 'DER_TRAILING', 'n/a',
      'a byte after the message', N('bf4f', 'GetEimPackageResponse', P('02', 'error', '01')), extra=b'\x00')
print('wrote', len([f for f in os.listdir(OUT) if f.endswith('.hex')]), 'files to', OUT)
