# Writes tests/vectors/sgp22_{bpp,inner,pir,notif}.txt: the Erlang/OTP encodings made by
# sgp22_vectors.escript (the positive records) plus hand-made negative cases built with
# the small DER helper below. Usage: python3 sgp22_vectors.py sgp22_erlang.txt REPO_ROOT
import sys
ERL, ROOT = sys.argv[1], sys.argv[2]
ref = {}
for line in open(ERL):
    k, v = line.strip().split(' = ')
    ref[k] = bytes.fromhex(v)

def L(n):
    if n < 0x80: return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(b)]) + b
def tlv(tag, content):
    t = tag.to_bytes((tag.bit_length() + 7) // 8, 'big')
    return t + L(len(content)) + content
def h(b): return b.hex()

out = {}
def rec(fname, name, func, der, expect, comment):
    out.setdefault(fname, []).append((name, func, der, expect, comment))

# ---------------- BPP / ISCR ----------------
F = 'sgp22_bpp.txt'
otpk = bytes.fromhex("049d346aabe1466db5006749ae5251f75912a2336b5022540f29f1dbdc98ea32362c1296b7027bb59214d597177b7cc90ecc72aebea2729b16180bba89c87c8757")
tidv = bytes(range(1, 17)); sig = b'\x5a' * 64
op = tlv(0x82, b'\x01'); tid = tlv(0x80, tidv)
def crt(kt=b'\x88', kl=b'\x10', hid=b'HOSTID01', extra=b''):
    return tlv(0xA6, tlv(0x80, kt) + tlv(0x81, kl) + tlv(0x84, hid) + extra)
pk = tlv(0x5F49, otpk); sg = tlv(0x5F37, sig)
def iscr(*parts): return tlv(0xBF23, b''.join(parts))
assert iscr(op, tid, crt(), pk, sg) == ref['iscr']
for k in ['iscr', 'bpp_full', 'bpp_no_a2']:
    rec(F, k, 'bpp' if k.startswith('bpp') else 'iscr', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding (see README)')
rec(F, 'iscr_opid2', 'iscr', iscr(tlv(0x82, b'\x02'), tid, crt(), pk, sg), 'PL_ERR_UNSUPPORTED', 'remoteOpId 2: only installBoundProfilePackage(1) exists')
rec(F, 'iscr_opid_nonmin', 'iscr', iscr(tlv(0x82, b'\x00\x01'), tid, crt(), pk, sg), 'PL_ERR_DER_NONMINIMAL', 'remoteOpId INTEGER 00 01')
rec(F, 'iscr_keytype', 'iscr', iscr(op, tid, crt(kt=b'\x80'), pk, sg), 'PL_ERR_UNSUPPORTED', "CRT keyType 80 (not AES '88')")
rec(F, 'iscr_keylen', 'iscr', iscr(op, tid, crt(kl=b'\x20'), pk, sg), 'PL_ERR_UNSUPPORTED', 'CRT keyLen 32')
rec(F, 'iscr_keytype_2b', 'iscr', iscr(op, tid, crt(kt=b'\x88\x00'), pk, sg), 'PL_ERR_DER_VALUE', 'CRT keyType two octets (Octet1)')
rec(F, 'iscr_crt_extra', 'iscr', iscr(op, tid, crt(extra=tlv(0x85, b'\x00')), pk, sg), 'PL_ERR_DER_TRAILING', "unknown '85' inside the CRT")
rec(F, 'iscr_crt_nohost', 'iscr', iscr(op, tid, tlv(0xA6, tlv(0x80, b'\x88') + tlv(0x81, b'\x10')), pk, sg), 'PL_ERR_TRUNCATED', 'CRT without hostId')
rec(F, 'iscr_tid17', 'iscr', iscr(op, tlv(0x80, bytes(17)), crt(), pk, sg), 'PL_ERR_DER_VALUE', 'transactionId 17 bytes (SIZE(1..16))')
rec(F, 'iscr_tid0', 'iscr', iscr(op, tlv(0x80, b''), crt(), pk, sg), 'PL_ERR_DER_VALUE', 'empty transactionId')
rec(F, 'iscr_host17', 'iscr', iscr(op, tid, crt(hid=bytes(17)), pk, sg), 'PL_ERR_DER_VALUE', 'hostId 17 bytes')
rec(F, 'iscr_otpk64', 'iscr', iscr(op, tid, crt(), tlv(0x5F49, otpk[:64]), sg), 'PL_ERR_DER_VALUE', 'smdpOtpk 64 bytes')
rec(F, 'iscr_otpk_compressed', 'iscr', iscr(op, tid, crt(), tlv(0x5F49, b'\x02' + otpk[1:]), sg), 'PL_ERR_DER_VALUE', 'smdpOtpk 65 bytes not starting 04')
rec(F, 'iscr_sign63', 'iscr', iscr(op, tid, crt(), pk, tlv(0x5F37, sig[:63])), 'PL_ERR_DER_VALUE', 'smdpSign 63 bytes')
rec(F, 'iscr_nosign', 'iscr', iscr(op, tid, crt(), pk), 'PL_ERR_TRUNCATED', 'smdpSign missing')
rec(F, 'iscr_order', 'iscr', iscr(tid, op, crt(), pk, sg), 'PL_ERR_DER_TAG', 'transactionId before remoteOpId')
rec(F, 'iscr_extra', 'iscr', iscr(op, tid, crt(), pk, sg, tlv(0x80, b'\x00')), 'PL_ERR_DER_TRAILING', 'a TLV after smdpSign')
rec(F, 'iscr_outer_tag', 'iscr', tlv(0xBF24, op + tid + crt() + pk + sg), 'PL_ERR_DER_TAG', "outer tag BF24")
rec(F, 'iscr_trailing', 'iscr', ref['iscr'] + b'\x00', 'PL_ERR_DER_TRAILING', 'one byte after BF23')

I = ref['iscr']
def seg(tag, n, fill): return tlv(tag, bytes([fill]) * n)
a0 = tlv(0xA0, seg(0x87, 24, 0xA1)); a1 = tlv(0xA1, seg(0x88, 40, 0xB1) + seg(0x88, 16, 0xB2))
a2 = tlv(0xA2, seg(0x87, 56, 0xC1)); a3 = tlv(0xA3, seg(0x86, 200, 0xD1) + seg(0x86, 8, 0xD2) + seg(0x86, 1016, 0xD3))
def bpp(*parts): return tlv(0xBF36, b''.join(parts))
assert bpp(I, a0, a1, a2, a3) == ref['bpp_full']
assert bpp(I, a0, a1, a3) == ref['bpp_no_a2']
rec(F, 'bpp_missing_a1', 'bpp', bpp(I, a0, a3), 'PL_ERR_DER_TAG', "no 'A1' sequenceOf88")
rec(F, 'bpp_missing_a0', 'bpp', bpp(I, a1, a3), 'PL_ERR_DER_TAG', "no 'A0' firstSequenceOf87")
rec(F, 'bpp_missing_a3', 'bpp', bpp(I, a0, a1, a2), 'PL_ERR_TRUNCATED', "no 'A3' sequenceOf86")
rec(F, 'bpp_missing_iscr', 'bpp', bpp(a0, a1, a3), 'PL_ERR_DER_TAG', 'no BF23')
rec(F, 'bpp_empty_a3', 'bpp', bpp(I, a0, a1, tlv(0xA3, b'')), 'PL_ERR_DER_VALUE', "empty 'A3': no profile element")
rec(F, 'bpp_empty_a0', 'bpp', bpp(I, tlv(0xA0, b''), a1, a3), 'PL_ERR_DER_VALUE', "empty 'A0': no ConfigureISDP")
rec(F, 'bpp_87_in_a1', 'bpp', bpp(I, a0, tlv(0xA1, seg(0x87, 16, 0xB1)), a3), 'PL_ERR_DER_TAG', "'87' inside 'A1'")
rec(F, 'bpp_86_in_a0', 'bpp', bpp(I, tlv(0xA0, seg(0x86, 16, 0xA1)), a1, a3), 'PL_ERR_DER_TAG', "'86' inside 'A0'")
rec(F, 'bpp_constructed_86', 'bpp', bpp(I, a0, a1, tlv(0xA3, tlv(0xA6, seg(0x04, 16, 0)))), 'PL_ERR_DER_TAG', "constructed 'A6' inside 'A3'")
rec(F, 'bpp_a2_after_a3', 'bpp', bpp(I, a0, a1, a3, a2), 'PL_ERR_DER_TRAILING', "'A2' after 'A3'")
rec(F, 'bpp_extra_inside', 'bpp', bpp(I, a0, a1, a3, tlv(0xA4, b'')), 'PL_ERR_DER_TRAILING', "unknown 'A4' after 'A3'")
rec(F, 'bpp_trailing', 'bpp', ref['bpp_no_a2'] + b'\x00', 'PL_ERR_DER_TRAILING', 'one byte after BF36')
rec(F, 'bpp_short_segment', 'bpp', bpp(I, a0, a1, tlv(0xA3, seg(0x86, 7, 0xD1))), 'PL_ERR_DER_VALUE', "'86' with 7 bytes: shorter than its MAC")
rec(F, 'bpp_segment_1021', 'bpp', bpp(I, a0, a1, tlv(0xA3, seg(0x86, 1017, 0xD1))), 'PL_ERR_OVERFLOW', "'86' TLV of 1021 bytes (max 1020)")
rec(F, 'bpp_five_87', 'bpp', bpp(I, tlv(0xA0, seg(0x87, 16, 1) * 5), a1, a3), 'PL_ERR_OVERFLOW', "five '87' in 'A0' (cap PL_BPP_MAX_87_FIRST = 4)")
rec(F, 'bpp_indefinite', 'bpp', b'\xbf\x36\x80' + I + a0 + a1 + a3 + b'\x00\x00', 'PL_ERR_DER_INDEFINITE', 'indefinite length (BER, not DER)')
body = I + a0 + a1 + a3
rec(F, 'bpp_nonminimal_len', 'bpp', b'\xbf\x36\x83' + len(body).to_bytes(3, 'big') + body, 'PL_ERR_DER_NONMINIMAL', 'length in 3 octets where 2 suffice')
rec(F, 'bpp_truncated', 'bpp', ref['bpp_no_a2'][:-1], 'PL_ERR_DER_LENGTH', 'last byte cut')
rec(F, 'bpp_bad_iscr', 'bpp', bpp(iscr(tlv(0x82, b'\x02'), tid, crt(), pk, sg), a0, a1, a3), 'PL_ERR_UNSUPPORTED', 'ISCR inside with remoteOpId 2')

# ConfigureISDP / StoreMetadata / ReplaceSessionKeys
F = 'sgp22_inner.txt'
for k in ['cfg_isdp_empty', 'cfg_isdp_oid']:
    rec(F, k, 'cfg', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
oid = bytes.fromhex('2b0601040181f802')
rec(F, 'cfg_oid_universal', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x06, oid))), 'PL_ERR_DER_TAG', "dpOid as universal '06': AUTOMATIC TAGS make it '80'")
rec(F, 'cfg_oid_extra', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x80, oid) + tlv(0x81, b'\x01'))), 'PL_OK', 'dpOid followed by SM-DP+ specific data')
rec(F, 'cfg_oid_extra_bad', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x80, oid) + b'\x81\x05\x01')), 'PL_ERR_DER_LENGTH', 'broken TLV after dpOid')
rec(F, 'cfg_dp_129', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x80, oid) + tlv(0x81, bytes(115)))), 'PL_ERR_DER_VALUE', "'B8' of 129 bytes (max 128)")
rec(F, 'cfg_dp_empty', 'cfg', tlv(0xBF24, tlv(0xB8, b'')), 'PL_ERR_TRUNCATED', "'B8' without dpOid")
rec(F, 'cfg_oid_nonminimal', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x80, b'\x2b\x80\x01'))), 'PL_ERR_DER_NONMINIMAL', 'OID arc with a leading 80')
rec(F, 'cfg_extra', 'cfg', tlv(0xBF24, tlv(0xB8, tlv(0x80, oid)) + tlv(0x80, b'')), 'PL_ERR_DER_TRAILING', "a TLV after 'B8'")
for k in ['smr_min', 'smr_full']:
    rec(F, k, 'smr', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
iccid = tlv(0x5A, bytes.fromhex('98109909002143658739'))
spn = tlv(0x91, b'OpCo'); name = tlv(0x92, b'IoT profile')
def smr(*p): return tlv(0xBF25, b''.join(p))
assert smr(iccid, spn, name) == ref['smr_min']
rec(F, 'smr_iccid9', 'smr', smr(tlv(0x5A, bytes(9)), spn, name), 'PL_ERR_DER_VALUE', 'ICCID 9 bytes')
rec(F, 'smr_spn33', 'smr', smr(iccid, tlv(0x91, b'x' * 33), name), 'PL_ERR_DER_VALUE', 'serviceProviderName 33 characters (SIZE(0..32))')
rec(F, 'smr_spn32_utf8', 'smr', smr(iccid, tlv(0x91, 'é'.encode() * 32), name), 'PL_OK', 'serviceProviderName 32 two-byte characters (64 bytes)')
rec(F, 'smr_name65', 'smr', smr(iccid, spn, tlv(0x92, b'n' * 65)), 'PL_ERR_DER_VALUE', 'profileName 65 characters (SIZE(0..64))')
rec(F, 'smr_name_bad_utf8', 'smr', smr(iccid, spn, tlv(0x92, b'\xc3\x28')), 'PL_ERR_DER_VALUE', 'profileName not UTF-8')
rec(F, 'smr_no_name', 'smr', smr(iccid, spn, tlv(0x93, b'\x01')), 'PL_ERR_DER_TAG', 'profileName missing')
rec(F, 'smr_icon_no_type', 'smr', smr(iccid, spn, name, tlv(0x94, b'\x89PNG')), 'PL_ERR_DER_VALUE', 'icon without iconType')
rec(F, 'smr_icon_1025', 'smr', smr(iccid, spn, name, tlv(0x93, b'\x01'), tlv(0x94, bytes(1025))), 'PL_ERR_DER_VALUE', 'icon 1025 bytes (SIZE(0..1024))')
rec(F, 'smr_order', 'smr', smr(iccid, spn, name, tlv(0x95, b'\x00'), tlv(0x93, b'\x01')), 'PL_ERR_DER_TRAILING', 'profileClass before iconType')
rec(F, 'smr_unknown', 'smr', smr(iccid, spn, name, tlv(0x9A, b'\x00')), 'PL_ERR_DER_TRAILING', "unknown '9A'")
rec(F, 'smr_class_nonmin', 'smr', smr(iccid, spn, name, tlv(0x95, b'\x00\x01')), 'PL_ERR_DER_NONMINIMAL', 'profileClass INTEGER 00 01')
rec(F, 'smr_owner_broken', 'smr', smr(iccid, spn, name, tlv(0xB7, b'\x80\x05\x00')), 'PL_ERR_DER_LENGTH', 'profileOwner with a broken inner TLV')
rec(F, 'rsk', 'rsk', ref['rsk'], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
k16 = bytes(16)
rec(F, 'rsk_15', 'rsk', tlv(0xBF26, tlv(0x80, k16) + tlv(0x81, bytes(15)) + tlv(0x82, k16)), 'PL_ERR_DER_VALUE', 'ppkEnc 15 bytes')
rec(F, 'rsk_missing', 'rsk', tlv(0xBF26, tlv(0x80, k16) + tlv(0x81, k16)), 'PL_ERR_TRUNCATED', 'ppkCmac missing')
rec(F, 'rsk_order', 'rsk', tlv(0xBF26, tlv(0x81, k16) + tlv(0x80, k16) + tlv(0x82, k16)), 'PL_ERR_DER_TAG', "'81' first")
rec(F, 'rsk_extra', 'rsk', tlv(0xBF26, tlv(0x80, k16) + tlv(0x81, k16) + tlv(0x82, k16) + tlv(0x83, b'')), 'PL_ERR_DER_TRAILING', 'a fourth field')

# ---------------- PIR ----------------
F = 'sgp22_pir.txt'
for k in ['pir_success', 'pir_error_sima', 'pir_error']:
    rec(F, k, 'pir', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding (euiccSignPIR is a dummy 5A..5A)')
meta = ref['meta']
meta2 = bytes.fromhex('bf2f148002012c810207800c0a64702e6578616d706c65')
oidv = tlv(0x06, bytes.fromhex('88370a'))
aid = tlv(0x4F, bytes.fromhex('A0000005591010FFFFFFFF8900001200'))
sima = tlv(0x04, bytes.fromhex('3003800100'))
def pir(data, s=sg): return tlv(0xBF37, tlv(0xBF27, data) + s)
ok_data = tid + meta + oidv + tlv(0xA2, tlv(0xA0, aid + sima))
assert pir(ok_data) == ref['pir_success']
t42 = tlv(0x80, b'\x42')
err_fr = lambda inner: tlv(0xA2, tlv(0xA1, inner))
assert pir(t42 + meta2 + oidv + err_fr(tlv(0x80, b'\x05') + tlv(0x81, b'\x08') + tlv(0x82, b'\xab\xcd'))) == ref['pir_error_sima']
rec(F, 'pir_err_sima_04', 'pir', pir(t42 + meta2 + oidv + err_fr(tlv(0x80, b'\x05') + tlv(0x81, b'\x08') + tlv(0x04, b'\xab\xcd'))), 'PL_ERR_DER_TRAILING', "ErrorResult.simaResponse as '04': AUTOMATIC TAGS make it '82'")
rec(F, 'pir_no_oid', 'pir', pir(tid + meta + tlv(0xA2, tlv(0xA0, aid + sima))), 'PL_ERR_DER_TAG', 'smdpOid absent (optional only before v2.5)')
rec(F, 'pir_no_a2', 'pir', pir(tid + meta + oidv + tlv(0xA0, aid + sima)), 'PL_ERR_DER_TAG', "finalResult without its explicit 'A2'")
rec(F, 'pir_both', 'pir', pir(tid + meta + oidv + tlv(0xA2, tlv(0xA0, aid + sima) + tlv(0xA1, tlv(0x80, b'\x05') + tlv(0x81, b'\x08')))), 'PL_ERR_DER_TRAILING', "'A2' with both alternatives")
rec(F, 'pir_a3', 'pir', pir(tid + meta + oidv + tlv(0xA2, tlv(0xA3, b''))), 'PL_ERR_DER_TAG', "unknown alternative 'A3'")
rec(F, 'pir_empty_a2', 'pir', pir(tid + meta + oidv + tlv(0xA2, b'')), 'PL_ERR_TRUNCATED', "empty 'A2'")
rec(F, 'pir_aid4', 'pir', pir(tid + meta + oidv + tlv(0xA2, tlv(0xA0, tlv(0x4F, bytes(4)) + sima))), 'PL_ERR_DER_VALUE', 'aid 4 bytes (SIZE(5..16))')
rec(F, 'pir_aid17', 'pir', pir(tid + meta + oidv + tlv(0xA2, tlv(0xA0, tlv(0x4F, bytes(17)) + sima))), 'PL_ERR_DER_VALUE', 'aid 17 bytes')
rec(F, 'pir_no_sima', 'pir', pir(tid + meta + oidv + tlv(0xA2, tlv(0xA0, aid))), 'PL_ERR_TRUNCATED', 'SuccessResult without simaResponse')
rec(F, 'pir_sig65', 'pir', pir(ok_data, tlv(0x5F37, bytes(65))), 'PL_ERR_DER_VALUE', 'euiccSignPIR 65 bytes')
rec(F, 'pir_no_sig', 'pir', tlv(0xBF37, tlv(0xBF27, ok_data)), 'PL_ERR_TRUNCATED', 'euiccSignPIR missing')
rec(F, 'pir_neg_cmd', 'pir', pir(t42 + meta2 + oidv + err_fr(tlv(0x80, b'\xff') + tlv(0x81, b'\x08'))), 'PL_ERR_DER_VALUE', 'bppCommandId -1')
rec(F, 'pir_unknown_reason', 'pir', pir(t42 + meta2 + oidv + err_fr(tlv(0x80, b'\x05') + tlv(0x81, b'\x10'))), 'PL_OK', 'errorReason 16: not in v2.5 but the INTEGER is extensible')
rec(F, 'pir_enable', 'pir', pir(tid + tlv(0xBF2F, tlv(0x80, b'\x05') + tlv(0x81, b'\x06\x40') + tlv(0x0C, b'a')) + oidv + tlv(0xA2, tlv(0xA0, aid + sima))), 'PL_ERR_DER_VALUE', 'notificationMetadata with notificationEnable')
rec(F, 'pir_tid17', 'pir', pir(tlv(0x80, bytes(17)) + meta + oidv + tlv(0xA2, tlv(0xA0, aid + sima))), 'PL_ERR_DER_VALUE', 'transactionId 17 bytes')
rec(F, 'pir_trailing', 'pir', ref['pir_success'] + b'\x00', 'PL_ERR_DER_TRAILING', 'one byte after BF37')
rec(F, 'pir_data_trailing', 'pir', pir(ok_data + tlv(0x83, b'')), 'PL_ERR_DER_TRAILING', "unknown TLV at the end of 'BF27'")
rec(F, 'pir_outer', 'pir', tlv(0xBF36, tlv(0xBF27, ok_data) + sg), 'PL_ERR_DER_TAG', 'outer tag BF36')

# ---------------- notifications ----------------
F = 'sgp22_notif.txt'
for k in ['meta', 'meta_delete', 'meta_enable']:
    rec(F, k, 'meta', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
def m(*p): return tlv(0xBF2F, b''.join(p))
s5 = tlv(0x80, b'\x05'); addr = tlv(0x0C, b'smdp.example.com')
rec(F, 'meta_two_bits', 'meta', m(s5, tlv(0x81, b'\x04\x90'), addr), 'PL_ERR_DER_VALUE', 'install and delete both set ("Only one bit SHALL be set")')
rec(F, 'meta_nonminimal_bits', 'meta', m(s5, tlv(0x81, b'\x00\x80'), addr), 'PL_ERR_DER_VALUE', 'notificationInstall with 7 trailing zero bits kept (X.690 11.2.2)')
rec(F, 'meta_no_bits', 'meta', m(s5, tlv(0x81, b'\x00'), addr), 'PL_ERR_DER_VALUE', 'empty NotificationEvent')
rec(F, 'meta_unknown_bit', 'meta', m(s5, tlv(0x81, b'\x03\x08'), addr), 'PL_ERR_DER_VALUE', 'bit 4, not named in v2.5')
rec(F, 'meta_padding', 'meta', m(s5, tlv(0x81, b'\x07\x81'), addr), 'PL_ERR_DER_VALUE', 'a padding bit set')
rec(F, 'meta_two_octets', 'meta', m(s5, tlv(0x81, b'\x07\x80\x00'), addr), 'PL_ERR_DER_VALUE', 'a second, all-zero octet')
rec(F, 'meta_neg_seq', 'meta', m(tlv(0x80, b'\xff'), tlv(0x81, b'\x07\x80'), addr), 'PL_ERR_DER_VALUE', 'seqNumber -1')
rec(F, 'meta_bad_utf8', 'meta', m(s5, tlv(0x81, b'\x07\x80'), tlv(0x0C, b'\xff')), 'PL_ERR_DER_VALUE', 'notificationAddress not UTF-8')
rec(F, 'meta_ia5', 'meta', m(s5, tlv(0x81, b'\x07\x80'), tlv(0x16, b'a.b')), 'PL_ERR_DER_TAG', 'notificationAddress as IA5String')
rec(F, 'meta_iccid9', 'meta', m(s5, tlv(0x81, b'\x07\x80'), addr, tlv(0x5A, bytes(9))), 'PL_ERR_DER_VALUE', 'ICCID 9 bytes')
rec(F, 'meta_addr256', 'meta', m(s5, tlv(0x81, b'\x07\x80'), tlv(0x0C, b'a' * 256)), 'PL_ERR_DER_VALUE', 'notificationAddress 256 bytes (cap 255)')
rec(F, 'meta_extra', 'meta', m(s5, tlv(0x81, b'\x07\x80'), addr, tlv(0x5A, bytes(10)), tlv(0x83, b'')), 'PL_ERR_DER_TRAILING', 'a TLV after iccid')
for k in ['rnl_req_none', 'rnl_req_seq', 'rnl_req_ops']:
    rec(F, k, 'rnl_req', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
rec(F, 'rnl_req_bare_seq', 'rnl_req', tlv(0xBF2B, s5), 'PL_ERR_DER_TRAILING', "seqNumber without the 'A0' searchCriteria wrapper")
rec(F, 'rnl_req_82', 'rnl_req', tlv(0xBF2B, tlv(0xA0, tlv(0x82, b'\x05'))), 'PL_ERR_DER_TAG', "unknown criterion '82'")
rec(F, 'rnl_req_two', 'rnl_req', tlv(0xBF2B, tlv(0xA0, s5 + tlv(0x81, b'\x07\x80'))), 'PL_ERR_DER_TRAILING', 'two criteria')
rec(F, 'rnl_req_empty_a0', 'rnl_req', tlv(0xBF2B, tlv(0xA0, b'')), 'PL_ERR_TRUNCATED', "empty 'A0'")
for k in ['rnl_rsp_list', 'rnl_rsp_empty', 'rnl_rsp_error']:
    rec(F, k, 'rnl_rsp', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding; the list and OtherSignedNotification framed by hand around Erlang-encoded parts and the SGP.26 test certificates of tests/data/sgp26/variant-o')
rec(F, 'rnl_rsp_set', 'rnl_rsp', tlv(0xBF2B, tlv(0xA0, tlv(0x31, b''))), 'PL_ERR_DER_TAG', "a '31' entry")
rec(F, 'rnl_rsp_both', 'rnl_rsp', tlv(0xBF2B, tlv(0xA0, b'') + tlv(0x81, b'\x7f')), 'PL_ERR_DER_TRAILING', 'list and error together')
rec(F, 'rnl_rsp_bad_pir', 'rnl_rsp', tlv(0xBF2B, tlv(0xA0, ref['pir_success'][:-1])), 'PL_ERR_DER_LENGTH', 'a truncated PIR entry')
rec(F, 'rnl_rsp_pir_no_oid', 'rnl_rsp', tlv(0xBF2B, tlv(0xA0, pir(tid + meta + tlv(0xA2, tlv(0xA0, aid + sima))))), 'PL_ERR_DER_TAG', 'a PIR entry without smdpOid')
rec(F, 'rnl_rsp_empty', 'rnl_rsp', tlv(0xBF2B, b''), 'PL_ERR_TRUNCATED', 'neither list nor error')
rec(F, 'other', 'other', ref['other'], 'PL_OK', 'hand-framed around Erlang-encoded NotificationMetadata and the SGP.26 test certificates')
om = bytes.fromhex('bf2f25800106810204100c10736d64702e6578616d706c652e636f6d5a0a98109909002143658739')
cert = open(ROOT + '/tests/data/sgp26/variant-o/CERT_EUICC_SIG_NIST.der', 'rb').read()
eum = open(ROOT + '/tests/data/sgp26/variant-o/CERT_EUM_SIG_NIST.der', 'rb').read()
assert tlv(0x30, om + sg + cert + eum) == ref['other']
rec(F, 'other_sig63', 'other', tlv(0x30, om + tlv(0x5F37, sig[:63]) + cert + eum), 'PL_ERR_DER_VALUE', 'signature 63 bytes')
rec(F, 'other_no_eum', 'other', tlv(0x30, om + sg + cert), 'PL_ERR_TRUNCATED', 'eumCertificate missing')
rec(F, 'other_cert_tag', 'other', tlv(0x30, om + sg + tlv(0x31, cert[4:]) + eum), 'PL_ERR_DER_TAG', "euiccCertificate as '31'")
for k in ['list_req_none', 'list_req_ops']:
    rec(F, k, 'list_req', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
rec(F, 'list_req_80', 'list_req', tlv(0xBF28, tlv(0x80, b'\x07\x80')), 'PL_ERR_DER_TRAILING', "filter tagged '80'")
for k in ['list_rsp', 'list_rsp_error']:
    rec(F, k, 'list_rsp', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
rec(F, 'list_rsp_pir', 'list_rsp', tlv(0xBF28, tlv(0xA0, ref['pir_success'])), 'PL_ERR_DER_TAG', 'a PIR where NotificationMetadata belongs')
for k in ['sent_req']:
    rec(F, k, 'sent_req', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
rec(F, 'sent_req_neg', 'sent_req', tlv(0xBF30, tlv(0x80, b'\x80')), 'PL_ERR_DER_VALUE', 'seqNumber -128')
rec(F, 'sent_req_empty', 'sent_req', tlv(0xBF30, b''), 'PL_ERR_TRUNCATED', 'no seqNumber')
for k in ['sent_rsp_ok', 'sent_rsp_nothing', 'sent_rsp_undef']:
    rec(F, k, 'sent_rsp', ref[k], 'PL_OK', 'Erlang/OTP asn1 DER encoding')
rec(F, 'sent_rsp_81', 'sent_rsp', tlv(0xBF30, tlv(0x81, b'\x00')), 'PL_ERR_DER_TAG', "status tagged '81'")

hdr = {
 'sgp22_bpp.txt': 'BoundProfilePackage, InitialiseSecureChannelRequest',
 'sgp22_inner.txt': 'ConfigureISDPRequest, StoreMetadataRequest, ReplaceSessionKeysRequest (BPP plaintext commands)',
 'sgp22_pir.txt': 'ProfileInstallationResult',
 'sgp22_notif.txt': 'NotificationMetadata, Retrieve/ListNotification, NotificationSent, OtherSignedNotification',
}
for fname, recs in out.items():
    with open(ROOT + '/tests/vectors/' + fname, 'w') as f:
        f.write('# SGP.22 v2.5 (RSPDefinitions.asn) DER vectors: %s.\n' % hdr[fname])
        f.write('# Records: name, func (the decoder under test), der (hex), expect (PL_OK or the\n')
        f.write('# pl_err the decoder must return). Source of each record in its comment; see README.md.\n\n')
        for (name, func, der, expect, comment) in recs:
            f.write('# %s\nname = %s\nfunc = %s\nexpect = %s\nder = %s\n\n' % (comment, name, func, expect, h(der)))
    print(fname, len(recs))
