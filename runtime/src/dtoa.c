/* dtoa.c -- doubles to shortest round-trip text (Grisu2).
 *
 * Florian Loitsch's Grisu2 ("Printing Floating-Point Numbers Quickly and
 * Accurately with Integers", PLDI 2010), in the form of Milo Yip's and
 * Niels Lohmann's implementations: the value and its rounding boundaries
 * are scaled by a cached power of ten into 64-bit fixed point, and digits
 * are generated until the text is inside the boundaries.  The result
 * always reads back to the same double (it lies strictly inside the
 * rounding interval); it is the shortest such text for ~99.9% of doubles
 * and at most one digit longer otherwise.  No allocation, no locale.
 *
 * Formatting follows ECMAScript's Number::toString, as JSON.stringify:
 * integers up to 21 digits in fixed notation, 1e-7 <= |v| < 1e21 in fixed
 * notation with a point, others as d.ddde+NN / d.ddde-NN.
 *
 * INV(dtoa): the cached powers table holds c_k ~ 10^k as a normalized
 * 64-bit significand f and binary exponent e (f * 2^e, f rounded to
 * nearest) for k = -300, -292, ..., 324 (generated with exact rational
 * arithmetic).
 */
#include <stdint.h>
#include <string.h>

#include "rt_internal.h"

typedef struct diyfp_s {
  uint64_t f;
  int e;
} diyfp_t;

static inline diyfp_t mul(diyfp_t x, diyfp_t y) {
  __uint128_t p = (__uint128_t)x.f * y.f;
  uint64_t h = (uint64_t)(p >> 64), l = (uint64_t)p;
  h += l >> 63; /* round to nearest */
  return (diyfp_t){h, x.e + y.e + 64};
}

static inline diyfp_t normalize(diyfp_t x) {
  int s = __builtin_clzll(x.f);
  return (diyfp_t){x.f << s, x.e - s};
}

typedef struct cached_s {
  uint64_t f;
  int e;
  int k;
} cached_t;

static const cached_t powers[] = {
    {0xab70fe17c79ac6cau, -1060, -300},
    {0xff77b1fcbebcdc4fu, -1034, -292},
    {0xbe5691ef416bd60cu, -1007, -284},
    {0x8dd01fad907ffc3cu, -980, -276},
    {0xd3515c2831559a83u, -954, -268},
    {0x9d71ac8fada6c9b5u, -927, -260},
    {0xea9c227723ee8bcbu, -901, -252},
    {0xaecc49914078536du, -874, -244},
    {0x823c12795db6ce57u, -847, -236},
    {0xc21094364dfb5637u, -821, -228},
    {0x9096ea6f3848984fu, -794, -220},
    {0xd77485cb25823ac7u, -768, -212},
    {0xa086cfcd97bf97f4u, -741, -204},
    {0xef340a98172aace5u, -715, -196},
    {0xb23867fb2a35b28eu, -688, -188},
    {0x84c8d4dfd2c63f3bu, -661, -180},
    {0xc5dd44271ad3cdbau, -635, -172},
    {0x936b9fcebb25c996u, -608, -164},
    {0xdbac6c247d62a584u, -582, -156},
    {0xa3ab66580d5fdaf6u, -555, -148},
    {0xf3e2f893dec3f126u, -529, -140},
    {0xb5b5ada8aaff80b8u, -502, -132},
    {0x87625f056c7c4a8bu, -475, -124},
    {0xc9bcff6034c13053u, -449, -116},
    {0x964e858c91ba2655u, -422, -108},
    {0xdff9772470297ebdu, -396, -100},
    {0xa6dfbd9fb8e5b88fu, -369, -92},
    {0xf8a95fcf88747d94u, -343, -84},
    {0xb94470938fa89bcfu, -316, -76},
    {0x8a08f0f8bf0f156bu, -289, -68},
    {0xcdb02555653131b6u, -263, -60},
    {0x993fe2c6d07b7facu, -236, -52},
    {0xe45c10c42a2b3b06u, -210, -44},
    {0xaa242499697392d3u, -183, -36},
    {0xfd87b5f28300ca0eu, -157, -28},
    {0xbce5086492111aebu, -130, -20},
    {0x8cbccc096f5088ccu, -103, -12},
    {0xd1b71758e219652cu, -77, -4},
    {0x9c40000000000000u, -50, 4},
    {0xe8d4a51000000000u, -24, 12},
    {0xad78ebc5ac620000u, 3, 20},
    {0x813f3978f8940984u, 30, 28},
    {0xc097ce7bc90715b3u, 56, 36},
    {0x8f7e32ce7bea5c70u, 83, 44},
    {0xd5d238a4abe98068u, 109, 52},
    {0x9f4f2726179a2245u, 136, 60},
    {0xed63a231d4c4fb27u, 162, 68},
    {0xb0de65388cc8ada8u, 189, 76},
    {0x83c7088e1aab65dbu, 216, 84},
    {0xc45d1df942711d9au, 242, 92},
    {0x924d692ca61be758u, 269, 100},
    {0xda01ee641a708deau, 295, 108},
    {0xa26da3999aef774au, 322, 116},
    {0xf209787bb47d6b85u, 348, 124},
    {0xb454e4a179dd1877u, 375, 132},
    {0x865b86925b9bc5c2u, 402, 140},
    {0xc83553c5c8965d3du, 428, 148},
    {0x952ab45cfa97a0b3u, 455, 156},
    {0xde469fbd99a05fe3u, 481, 164},
    {0xa59bc234db398c25u, 508, 172},
    {0xf6c69a72a3989f5cu, 534, 180},
    {0xb7dcbf5354e9beceu, 561, 188},
    {0x88fcf317f22241e2u, 588, 196},
    {0xcc20ce9bd35c78a5u, 614, 204},
    {0x98165af37b2153dfu, 641, 212},
    {0xe2a0b5dc971f303au, 667, 220},
    {0xa8d9d1535ce3b396u, 694, 228},
    {0xfb9b7cd9a4a7443cu, 720, 236},
    {0xbb764c4ca7a44410u, 747, 244},
    {0x8bab8eefb6409c1au, 774, 252},
    {0xd01fef10a657842cu, 800, 260},
    {0x9b10a4e5e9913129u, 827, 268},
    {0xe7109bfba19c0c9du, 853, 276},
    {0xac2820d9623bf429u, 880, 284},
    {0x80444b5e7aa7cf85u, 907, 292},
    {0xbf21e44003acdd2du, 933, 300},
    {0x8e679c2f5e44ff8fu, 960, 308},
    {0xd433179d9c8cb841u, 986, 316},
    {0x9e19db92b4e31ba9u, 1013, 324}};

/* Scaling with c_k brings the exponent into [ALPHA, GAMMA]: the integral
 * part of the scaled boundary then fits 32 bits. */
enum { ALPHA = -60, GAMMA = -32 };

static inline cached_t cached_power(int e) {
  int f = ALPHA - e - 1;
  int k = (f * 78913) / (1 << 18) + (f > 0); /* ceil(f * log10(2)) */
  int index = (300 + k + 7) / 8;
  return powers[index];
}

static inline int largest_pow10(uint32_t n, uint32_t *pow10) {
  static const uint32_t p[] = {1,      10,      100,      1000,      10000,
                               100000, 1000000, 10000000, 100000000,
                               1000000000};
  int d = 10;
  while (d > 1 && n < p[d - 1])
    d--;
  *pow10 = p[d - 1];
  return d;
}

static inline void round_weed(char *buf, int len, uint64_t dist,
                              uint64_t delta, uint64_t rest, uint64_t ten_k) {
  while (rest < dist && delta - rest >= ten_k &&
         (rest + ten_k < dist || dist - rest > rest + ten_k - dist)) {
    buf[len - 1]--;
    rest += ten_k;
  }
}

/* Digits of W (between M_MINUS and M_PLUS, all scaled) into BUF; *K10 gets
 * the decimal exponent. */
static int digit_gen(char *buf, int *k10, diyfp_t mm, diyfp_t w,
                     diyfp_t mp) {
  uint64_t delta = mp.f - mm.f, dist = mp.f - w.f;
  int shift = -mp.e;
  uint64_t one = (uint64_t)1 << shift;
  uint32_t p1 = (uint32_t)(mp.f >> shift);
  uint64_t p2 = mp.f & (one - 1);
  int len = 0;
  uint32_t pow10;
  int n = largest_pow10(p1, &pow10);
  while (n > 0) {
    uint32_t d = p1 / pow10, r = p1 % pow10;
    buf[len++] = (char)('0' + d);
    p1 = r;
    n--;
    uint64_t rest = ((uint64_t)p1 << shift) + p2;
    if (rest <= delta) {
      *k10 += n;
      round_weed(buf, len, dist, delta, rest, (uint64_t)pow10 << shift);
      return len;
    }
    pow10 /= 10;
  }
  int m = 0;
  for (;;) {
    p2 *= 10;
    buf[len++] = (char)('0' + (p2 >> shift));
    p2 &= one - 1;
    m++;
    delta *= 10;
    dist *= 10;
    if (p2 <= delta)
      break;
  }
  *k10 -= m;
  round_weed(buf, len, dist, delta, p2, one);
  return len;
}

/* The shortest digits of V > 0 (finite): V ~ digits * 10^*K10. */
static int grisu2(double v, char *buf, int *k10) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  uint64_t F = bits & (((uint64_t)1 << 52) - 1);
  int E = (int)(bits >> 52) & 0x7ff;
  diyfp_t x = E == 0 ? (diyfp_t){F, 1 - 1075}
                     : (diyfp_t){F | ((uint64_t)1 << 52), E - 1075};
  bool lower_closer = F == 0 && E > 1;
  diyfp_t mp = normalize((diyfp_t){2 * x.f + 1, x.e - 1});
  diyfp_t mm = lower_closer ? (diyfp_t){4 * x.f - 1, x.e - 2}
                            : (diyfp_t){2 * x.f - 1, x.e - 1};
  mm.f <<= mm.e - mp.e;
  mm.e = mp.e;
  diyfp_t w = normalize(x);
  cached_t c = cached_power(mp.e);
  diyfp_t ck = {c.f, c.e};
  diyfp_t sw = mul(w, ck), smm = mul(mm, ck), smp = mul(mp, ck);
  smm.f++;
  smp.f--;
  *k10 = -c.k;
  return digit_gen(buf, k10, smm, sw, smp);
}

size_t rt__dtoa(double v, char *out) {
  char *o = out;
  if (v < 0) {
    *o++ = '-';
    v = -v;
  }
  char d[24];
  int k;
  int len = grisu2(v, d, &k);
  int n = len + k; /* the decimal point is after digit n */
  if (len <= n && n <= 21) {
    memcpy(o, d, (size_t)len);
    memset(o + len, '0', (size_t)(n - len));
    o += n;
  } else if (0 < n && n <= 21) {
    memcpy(o, d, (size_t)n);
    o[n] = '.';
    memcpy(o + n + 1, d + n, (size_t)(len - n));
    o += len + 1;
  } else if (-6 < n && n <= 0) {
    o[0] = '0';
    o[1] = '.';
    memset(o + 2, '0', (size_t)-n);
    memcpy(o + 2 - n, d, (size_t)len);
    o += 2 - n + len;
  } else {
    *o++ = d[0];
    if (len > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)(len - 1));
      o += len - 1;
    }
    int e = n - 1;
    *o++ = 'e';
    *o++ = e < 0 ? '-' : '+';
    if (e < 0)
      e = -e;
    if (e >= 100) {
      *o++ = (char)('0' + e / 100);
      e %= 100;
      *o++ = (char)('0' + e / 10);
    } else if (e >= 10) {
      *o++ = (char)('0' + e / 10);
    }
    *o++ = (char)('0' + e % 10);
  }
  *o = 0;
  return (size_t)(o - out);
}
