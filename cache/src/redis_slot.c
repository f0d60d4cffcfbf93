/* redis_slot.c -- a key's Redis Cluster hash slot: CRC16 of the key, or of
 * its hash tag, modulo 16384 (see redis_slot.h). */
#include <string.h>

#include "redis_slot.h"

#define CRC16_POLY 0x1021u /* x^16 + x^12 + x^5 + 1 */
#define CRC16_TOP 0x8000u  /* the bit shifted out: 1000 0000 0000 0000 */

/* Bit by bit, most significant first: keys are short, and a table would
 * buy nanoseconds per key against a network round trip. */
uint16_t cache__redis_crc16(const char *p, size_t n) {
  unsigned crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (unsigned)(unsigned char)p[i] << 8;
    for (int b = 0; b < 8; b++)
      crc = crc & CRC16_TOP ? (crc << 1) ^ CRC16_POLY : crc << 1;
    crc &= 0xffffu;
  }
  return (uint16_t)crc;
}

unsigned cache__redis_slot(const char *key, size_t klen) {
  const char *open = memchr(key, '{', klen);
  if (open != NULL) {
    const char *tag = open + 1;
    size_t rest = klen - (size_t)(tag - key);
    const char *close = memchr(tag, '}', rest);
    if (close != NULL && close > tag) {
      key = tag;
      klen = (size_t)(close - tag);
    }
  }
  return cache__redis_crc16(key, klen) & (CACHE__REDIS_SLOTS - 1);
}
