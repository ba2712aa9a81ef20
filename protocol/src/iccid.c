/* ICCID codings and text (iccid.h). ITU-T E.118 (the digits); ETSI TS 102 221 §13.2
 * (EF.ICCID: nibble-swapped BCD); SGP.22 v2.5 §2.4a Iccid ("as coded in EF.ICCID");
 * TCA eUICC Profile Package v2.3 §8.1.1 (ProfileHeader.iccid, natural order, as the GSMA
 * TS.48 v6 test profiles carry it). */
#include "provline/protocol/iccid.h"

#include <string.h>

void pl_iccid_swap(const uint8_t in[PL_ICCID_LEN], uint8_t out[PL_ICCID_LEN])
{
    for (size_t i = 0; i < PL_ICCID_LEN; i++)
        out[i] = (uint8_t)((uint8_t)(in[i] << 4) | (uint8_t)(in[i] >> 4));
}

void pl_iccid_text(const uint8_t iccid[PL_ICCID_LEN], char out[PL_ICCID_TEXT_MAX])
{
    static const char digit[] = "0123456789FFFFFF";
    size_t o = 0;
    for (size_t i = 0; i < PL_ICCID_LEN; i++) {
        out[o++] = digit[iccid[i] & 0x0Fu];
        out[o++] = digit[iccid[i] >> 4];
    }
    while (o > 0 && out[o - 1] == 'F')
        o--;
    out[o] = '\0';
}

int pl_iccid_parse(const char *text, uint8_t iccid[PL_ICCID_LEN])
{
    size_t n, digits = 0;
    if (text == NULL || iccid == NULL)
        return PL_ERR_INVAL;
    n = strlen(text);
    if (n > 2 * PL_ICCID_LEN)
        return PL_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        if (text[i] >= '0' && text[i] <= '9')
            digits++;
        else if (text[i] != 'F' && text[i] != 'f')
            return PL_ERR_INVAL;
    }
    if (digits < 18)
        return PL_ERR_INVAL;
    for (size_t i = 0; i < PL_ICCID_LEN; i++) {
        char a = 2 * i < n ? text[2 * i] : 'F';
        char b = 2 * i + 1 < n ? text[2 * i + 1] : 'F';
        uint8_t lo = a >= '0' && a <= '9' ? (uint8_t)(a - '0') : 0x0Fu;
        uint8_t hi = b >= '0' && b <= '9' ? (uint8_t)(b - '0') : 0x0Fu;
        iccid[i] = (uint8_t)(hi << 4 | lo);
    }
    return PL_OK;
}
