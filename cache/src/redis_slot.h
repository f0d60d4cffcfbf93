/* redis_slot.h -- which Redis Cluster hash slot a key belongs to.  Internal
 * to cache/; dependency-free, so a test can compile redis_slot.c in. */
#ifndef TENURE_CACHE_REDIS_SLOT_H
#define TENURE_CACHE_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

/* The cluster's hash slots: a key's slot is its CRC16 modulo this. */
#define CACHE__REDIS_SLOTS 16384u

/* CRC16 as the cluster spec gives it (XMODEM/CCITT: polynomial 0x1021,
 * initial value 0, no reflection, no final xor): "123456789" is 0x31C3. */
uint16_t cache__redis_crc16(const char *p, size_t n);

/* KEY's slot (KLEN bytes).  A hash tag decides when there is one: from the
 * first '{' to the first '}' after it, if at least one byte lies between,
 * only those bytes are hashed ("{user1}.a" and "{user1}.b" share a slot;
 * "{}a" and "a{}" hash whole). */
unsigned cache__redis_slot(const char *key, size_t klen);

#endif
