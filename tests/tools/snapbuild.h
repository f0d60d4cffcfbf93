/* snapbuild.h -- builds small V8-format heap snapshots in memory for the
 * tools tests.
 *
 * A graph is given as nodes (type, name, id, self size) and edges (from,
 * type, name or index, to); sb_build writes the JSON text a V8 snapshot
 * would have, with the fields in V8's order or reversed (to prove the
 * reader takes the order from snapshot.meta), and with the optional
 * sections (trace_function_infos, samples, locations, an unknown key) the
 * reader must skip.  The caller frees the result.
 */
#ifndef TENURE_TESTS_SNAPBUILD_H
#define TENURE_TESTS_SNAPBUILD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *type;  /* "object", "synthetic", "closure", "array", ... */
  const char *name;
  unsigned id;
  unsigned self;
} sb_node_t;

typedef struct {
  unsigned from;
  const char *type;  /* "property", "element", "internal", "weak", ... */
  const char *name;  /* for named edges */
  unsigned index;    /* for element and hidden edges */
  unsigned to;
} sb_edge_t;

enum { SB_REVERSED = 1, SB_EXTRAS = 2 };

static const char *const sb_node_types[] = {
  "hidden", "array", "string", "object", "code", "closure", "regexp",
  "number", "native", "synthetic", "concatenated string", "sliced string",
  "symbol", "bigint", "object shape"};
static const char *const sb_edge_types[] = {
  "context", "element", "property", "internal", "hidden", "shortcut",
  "weak"};

static int sb_index(const char *const *v, int n, const char *s)
{
  for (int i = 0; i < n; i++)
    if (!strcmp(v[i], s))
      return i;
  return -1;
}

typedef struct {
  const char *v[4096];
  int n;
} sb_strings_t;

static unsigned sb_intern(sb_strings_t *t, const char *s)
{
  for (int i = 0; i < t->n; i++)
    if (!strcmp(t->v[i], s))
      return (unsigned)i;
  t->v[t->n] = s;
  return (unsigned)t->n++;
}

static void sb_json_string(FILE *f, const char *s)
{
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(f, "\\%c", *s);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

static char *sb_build(const sb_node_t *nodes, int n, const sb_edge_t *edges,
                      int m, int flags)
{
  char *out = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&out, &len);
  static sb_strings_t strs;
  strs.n = 0;
  sb_intern(&strs, "");
  int rev = flags & SB_REVERSED;
  int ecount[1024] = {0};
  for (int i = 0; i < m; i++)
    ecount[edges[i].from]++;
  fputs("{\"snapshot\":{\"meta\":{", f);
  if (!rev)
    fputs("\"node_fields\":[\"type\",\"name\",\"id\",\"self_size\","
          "\"edge_count\",\"trace_node_id\",\"detachedness\"],", f);
  else
    fputs("\"node_fields\":[\"detachedness\",\"trace_node_id\","
          "\"edge_count\",\"self_size\",\"id\",\"name\",\"type\"],", f);
  fputs("\"node_types\":[", f);
  if (rev)
    fputs("\"number\",\"number\",\"number\",\"number\",\"number\","
          "\"string\",", f);
  fputs("[", f);
  for (int i = 0; i < 15; i++)
    fprintf(f, "%s\"%s\"", i ? "," : "", sb_node_types[i]);
  fputs("]", f);
  if (!rev)
    fputs(",\"string\",\"number\",\"number\",\"number\",\"number\","
          "\"number\"", f);
  fputs("],", f);
  if (!rev)
    fputs("\"edge_fields\":[\"type\",\"name_or_index\",\"to_node\"],"
          "\"edge_types\":[[", f);
  else
    fputs("\"edge_fields\":[\"to_node\",\"name_or_index\",\"type\"],"
          "\"edge_types\":[\"node\",\"string_or_number\",[", f);
  for (int i = 0; i < 7; i++)
    fprintf(f, "%s\"%s\"", i ? "," : "", sb_edge_types[i]);
  fputs(rev ? "]]" : "],\"string_or_number\",\"node\"]", f);
  if (flags & SB_EXTRAS)
    fputs(",\"trace_function_info_fields\":[\"function_id\",\"name\"],"
          "\"location_fields\":[\"object_index\",\"script_id\",\"line\","
          "\"column\"]", f);
  fprintf(f, "},\"node_count\":%d,\"edge_count\":%d,"
          "\"trace_function_count\":0},\n", n, m);
  fputs("\"nodes\":[", f);
  for (int i = 0; i < n; i++) {
    unsigned t = (unsigned)sb_index(sb_node_types, 15, nodes[i].type);
    unsigned nm = sb_intern(&strs, nodes[i].name);
    if (!rev)
      fprintf(f, "%s%u,%u,%u,%u,%d,0,0", i ? "\n," : "", t, nm, nodes[i].id,
              nodes[i].self, ecount[i]);
    else
      fprintf(f, "%s0,0,%d,%u,%u,%u,%u", i ? "\n," : "", ecount[i],
              nodes[i].self, nodes[i].id, nm, t);
  }
  fputs("],\n\"edges\":[", f);
  int first = 1;
  for (int from = 0; from < n; from++) {
    for (int i = 0; i < m; i++) {
      if ((int)edges[i].from != from)
        continue;
      int t = sb_index(sb_edge_types, 7, edges[i].type);
      unsigned nm = (!strcmp(edges[i].type, "element") ||
                     !strcmp(edges[i].type, "hidden"))
                        ? edges[i].index : sb_intern(&strs, edges[i].name);
      unsigned to = edges[i].to * 7;
      if (!rev)
        fprintf(f, "%s%d,%u,%u", first ? "" : "\n,", t, nm, to);
      else
        fprintf(f, "%s%u,%u,%d", first ? "" : "\n,", to, nm, t);
      first = 0;
    }
  }
  fputs("],\n", f);
  if (flags & SB_EXTRAS)
    fputs("\"trace_function_infos\":[1,2],\"trace_tree\":[],"
          "\"samples\":[10,20,30,40],\"locations\":[7,1,2,3],"
          "\"future\":{\"a\":[1,{\"b\":\"c]}\\\"\"}],\"d\":-1.5e3,"
          "\"e\":true,\"f\":null},\n", f);
  fputs("\"strings\":[", f);
  for (int i = 0; i < strs.n; i++) {
    if (i)
      fputs(",\n", f);
    sb_json_string(f, strs.v[i]);
  }
  fputs("]}\n", f);
  fclose(f);
  return out;
}

#endif /* TENURE_TESTS_SNAPBUILD_H */
