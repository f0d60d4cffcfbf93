/* json.c -- JSON string output for the --json modes.
 *
 * Owns escaping: every string the tool prints in JSON goes through
 * hs_json_str, which escapes quotes, backslashes and control characters
 * and replaces bytes that are not valid UTF-8 with U+FFFD, so the output
 * always parses even when a snapshot holds binary data in its strings.
 */
#include "heapsnap.h"

static int utf8_len(const unsigned char *p)
{
  unsigned c = p[0];
  int n;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0 && c >= 0xC2)
    n = 2;
  else if ((c & 0xF0) == 0xE0)
    n = 3;
  else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

void hs_json_str(FILE *f, const char *str)
{
  const unsigned char *p = (const unsigned char *)(str ? str : "");
  fputc('"', f);
  while (*p) {
    unsigned c = *p;
    if (c == '"' || c == '\\') {
      fputc('\\', f);
      fputc((int)c, f);
      p++;
    } else if (c < 0x20) {
      fprintf(f, "\\u%04x", c);
      p++;
    } else if (c < 0x80) {
      fputc((int)c, f);
      p++;
    } else {
      int n = utf8_len(p);
      if (n == 0) {
        fputs("\\ufffd", f);
        p++;
      } else {
        fwrite(p, 1, (size_t)n, f);
        p += n;
      }
    }
  }
  fputc('"', f);
}
