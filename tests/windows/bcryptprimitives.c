/*
 * bcryptprimitives.c: a TEST-ONLY stand-in for Windows' bcryptprimitives.dll.
 *
 * Rust's std (>= 1.78) imports ProcessPrng from bcryptprimitives.dll, which
 * Windows 10+ always has but Wine 8 does not: without it wsbridge.dll fails
 * to load under Wine (error 126). .ci/windows.sh builds this file into a
 * bcryptprimitives.dll placed next to the test .exe files, so Wine's loader
 * finds it in the application directory. It forwards to
 * BCryptGenRandom(NULL, .., BCRYPT_USE_SYSTEM_PREFERRED_RNG), which Wine has.
 *
 * Never ship it: real Windows has the real one.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x7fffffffu ? 0x7fffffffu : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE; /* the real ProcessPrng is documented to always return TRUE */
}
