/* graph.c -- naming and lookup over a read snapshot.
 *
 * Owns the presentation of nodes and edges (DevTools class names, edge
 * labels as the program spells them) and the id index used to match
 * objects across snapshots.  V8 object ids are stable for the life of an
 * object, so the same id in two snapshots of one process is the same
 * object.
 *
 * INV(by_id): once built, by_id holds every node ordinal exactly once,
 * sorted by node_id ascending.
 */
#include "heapsnap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *hs_node_kind_name(hs_node_kind_t k)
{
  static const char *const names[] = {
    "hidden", "array", "string", "object", "code", "closure", "regexp",
    "number", "native", "synthetic", "concatenated string", "sliced string",
    "symbol", "bigint", "object shape", "other"};
  return (unsigned)k <= HS_NODE_OTHER ? names[k] : "other";
}

const char *hs_edge_kind_name(hs_edge_kind_t k)
{
  static const char *const names[] = {"context", "element", "property",
                                      "internal", "hidden", "shortcut",
                                      "weak", "other"};
  return (unsigned)k <= HS_EDGE_OTHER ? names[k] : "other";
}

const char *hs_node_class(const hs_snapshot_t *s, uint32_t n, char *buf,
                          size_t bufsize)
{
  uint8_t k = s->node_kind[n];
  switch (k) {
  case HS_NODE_HIDDEN:
    return "(system)";
  case HS_NODE_OBJECT:
  case HS_NODE_NATIVE:
    return hs_node_name(s, n);
  case HS_NODE_CODE:
    return "(compiled code)";
  case HS_NODE_CONCAT_STRING:
  case HS_NODE_SLICED_STRING:
    return "(string)";
  default:
    snprintf(buf, bufsize, "(%s)", hs_node_kind_name((hs_node_kind_t)k));
    return buf;
  }
}

const char *hs_edge_label(const hs_snapshot_t *s, uint32_t e, char *buf,
                          size_t bufsize)
{
  uint8_t k = s->edge_kind[e];
  if (!s->edge_name)
    return "";
  if (k == HS_EDGE_ELEMENT) {
    snprintf(buf, bufsize, "[%u]", s->edge_name[e]);
    return buf;
  }
  if (k == HS_EDGE_HIDDEN) {
    snprintf(buf, bufsize, "<%u>", s->edge_name[e]);
    return buf;
  }
  return hs_str(s, s->edge_name[e]);
}

/* LSD radix sort of ordinals by id, two 16-bit passes (stable, so equal
 * ids keep ordinal order). */
int hs_id_index(hs_snapshot_t *s)
{
  if (s->by_id)
    return 0;
  uint32_t n = s->node_count;
  uint32_t *v = malloc((size_t)n * sizeof *v + 1);
  uint32_t *tmp = malloc((size_t)n * sizeof *tmp + 1);
  uint32_t *cnt = malloc(65536 * sizeof *cnt);
  if (!v || !tmp || !cnt) {
    free(v);
    free(tmp);
    free(cnt);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < n; i++)
    tmp[i] = i;
  uint32_t *src = tmp, *dst = v;
  for (int shift = 0; shift < 32; shift += 16) {
    memset(cnt, 0, 65536 * sizeof *cnt);
    for (uint32_t i = 0; i < n; i++)
      cnt[(s->node_id[src[i]] >> shift) & 0xFFFF]++;
    uint32_t sum = 0;
    for (uint32_t d = 0; d < 65536; d++) {
      uint32_t c = cnt[d];
      cnt[d] = sum;
      sum += c;
    }
    for (uint32_t i = 0; i < n; i++)
      dst[cnt[(s->node_id[src[i]] >> shift) & 0xFFFF]++] = src[i];
    uint32_t *t = src;
    src = dst;
    dst = t;
  }
  /* After two passes the result is back in tmp's buffer (src). */
  if (src != v)
    memcpy(v, src, (size_t)n * sizeof *v);
  free(tmp);
  free(cnt);
  s->by_id = v;
  return 0;
}

uint32_t hs_find_id(const hs_snapshot_t *s, uint32_t id)
{
  size_t lo = 0, hi = s->node_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->node_id[s->by_id[mid]] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->node_count && s->node_id[s->by_id[lo]] == id)
    return s->by_id[lo];
  return UINT32_MAX;
}
