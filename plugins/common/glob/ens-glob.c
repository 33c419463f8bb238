/* ens-glob.c — Redis-style glob patterns, so that a bus pattern means the
 * same thing as the Redis PSUBSCRIBE it maps to when the bus spans machines:
 * '*' any run, '?' one byte, '[abc]' '[^a]' '[a-z]' classes, '\x' literal. */
#include "ens-glob.h"

/* Matches one class starting after '['; advances *pp past the closing ']'. */
static gboolean
class_match (const char **pp, char c)
{
  const char *p = *pp;
  gboolean negate = FALSE, match = FALSE;

  if (*p == '^')
    {
      negate = TRUE;
      p++;
    }
  for (; *p && *p != ']'; p++)
    {
      if (*p == '\\' && p[1])
        {
          p++;
          match |= (*p == c);
        }
      else if (p[1] == '-' && p[2] && p[2] != ']')
        {
          char lo = MIN (p[0], p[2]), hi = MAX (p[0], p[2]);
          match |= (c >= lo && c <= hi);
          p += 2;
        }
      else
        match |= (*p == c);
    }
  *pp = *p ? p + 1 : p; /* an unclosed class runs to the end, as in Redis */
  return negate ? !match : match;
}

gboolean
ens_glob_match (const char *pattern, const char *string)
{
  const char *p = pattern, *s = string;
  const char *star_p = NULL, *star_s = NULL;

  /* Iterative matcher with one backtrack point: linear in practice and no
   * recursion for hostile patterns like "*a*a*a*a*b". */
  while (*s)
    {
      if (*p == '*')
        {
          while (*p == '*')
            p++;
          if (*p == '\0')
            return TRUE;
          star_p = p;
          star_s = s;
          continue;
        }
      if (*p == '?')
        {
          p++;
          s++;
          continue;
        }
      if (*p == '[')
        {
          const char *q = p + 1;
          if (class_match (&q, *s))
            {
              p = q;
              s++;
              continue;
            }
        }
      else
        {
          const char *q = p;
          if (*q == '\\' && q[1])
            q++;
          if (*q && *q == *s)
            {
              p = q + 1;
              s++;
              continue;
            }
        }
      if (star_p == NULL)
        return FALSE;
      p = star_p;
      s = ++star_s;
    }
  while (*p == '*')
    p++;
  return *p == '\0';
}

gboolean
ens_glob_is_pattern (const char *s)
{
  for (; *s; s++)
    if (*s == '*' || *s == '?' || *s == '[' || *s == '\\')
      return TRUE;
  return FALSE;
}
