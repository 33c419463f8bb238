/* ens-http-head.c — the head of a plain HTTP/1.1 request (ens-http-head.h). */
#include "ens-http-head.h"

#include <string.h>

static gboolean
name_is (const char *name, gsize len, const char *want)
{
  return strlen (want) == len && g_ascii_strncasecmp (name, want, len) == 0;
}

/* Whether the Connection header's value (@v, @len bytes) is one a plain
 * request may have; sets @close for "close". */
static gboolean
connection_plain (const char *v, gsize len, gboolean *close)
{
  if (len == 5 && g_ascii_strncasecmp (v, "close", 5) == 0)
    *close = TRUE;
  else if (!(len == 10 && g_ascii_strncasecmp (v, "keep-alive", 10) == 0))
    return FALSE;
  return TRUE;
}

EnsHttpHeadResult
ens_http_head_parse (const char *data, gsize len, gsize max_body, EnsHttpHead *req)
{
  const char *end, *p, *sp1, *sp2, *line_end;
  gboolean have_length = FALSE, have_host = FALSE;
  guint64 length = 0;

  memset (req, 0, sizeof *req);
  if (len == 0)
    return ENS_HTTP_HEAD_NONE;
  end = memmem (data, MIN (len, ENS_HTTP_HEAD_MAX), "\r\n\r\n", 4);
  if (end == NULL)
    return ENS_HTTP_HEAD_OTHER; /* partial, or too long */
  req->head_len = (gsize) (end - data) + 4;
  if (memchr (data, '\0', req->head_len))
    return ENS_HTTP_HEAD_OTHER; /* libsoup refuses it */

  /* The request line. */
  line_end = memchr (data, '\r', req->head_len);
  if (line_end[1] != '\n')
    return ENS_HTTP_HEAD_OTHER;
  sp1 = memchr (data, ' ', (gsize) (line_end - data));
  if (sp1 == NULL)
    return ENS_HTTP_HEAD_OTHER;
  sp2 = memchr (sp1 + 1, ' ', (gsize) (line_end - sp1 - 1));
  if (sp2 == NULL || line_end - sp2 - 1 != 8 || memcmp (sp2 + 1, "HTTP/1.1", 8) != 0)
    return ENS_HTTP_HEAD_OTHER;
  req->method = data;
  req->method_len = (gsize) (sp1 - data);
  req->path = sp1 + 1;
  req->path_len = (gsize) (sp2 - sp1 - 1);
  req->post = req->method_len == 4 && memcmp (data, "POST", 4) == 0;
  if (!req->post && !(req->method_len == 3 && memcmp (data, "GET", 3) == 0))
    return ENS_HTTP_HEAD_OTHER;
  if (req->path_len == 0 || req->path[0] != '/')
    return ENS_HTTP_HEAD_OTHER;

  /* The headers. */
  for (p = line_end + 2; p < end + 2; p = line_end + 2)
    {
      const char *colon, *v;
      gsize name_len, v_len;

      line_end = memchr (p, '\r', (gsize) (end + 2 - p));
      if (line_end == NULL || line_end[1] != '\n')
        return ENS_HTTP_HEAD_OTHER;
      colon = memchr (p, ':', (gsize) (line_end - p));
      if (colon == NULL || colon == p || *p == ' ' || *p == '\t')
        return ENS_HTTP_HEAD_OTHER;
      name_len = (gsize) (colon - p);
      if (memchr (p, ' ', name_len) || memchr (p, '\t', name_len))
        return ENS_HTTP_HEAD_OTHER;
      for (v = colon + 1; v < line_end && (*v == ' ' || *v == '\t'); v++)
        ;
      for (v_len = (gsize) (line_end - v); v_len > 0 && (v[v_len - 1] == ' ' || v[v_len - 1] == '\t'); v_len--)
        ;
      switch (g_ascii_tolower (*p))
        {
        case 'c':
          if (name_is (p, name_len, "content-length"))
            {
              if (have_length || v_len == 0 || v_len > 12)
                return ENS_HTTP_HEAD_OTHER;
              for (gsize i = 0; i < v_len; i++)
                {
                  if (!g_ascii_isdigit (v[i]))
                    return ENS_HTTP_HEAD_OTHER;
                  length = length * 10 + (guint64) (v[i] - '0');
                }
              have_length = TRUE;
            }
          else if (name_is (p, name_len, "connection") && !connection_plain (v, v_len, &req->close))
            return ENS_HTTP_HEAD_OTHER;
          break;
        case 'a':
          if (name_is (p, name_len, "authorization"))
            {
              if (req->authorization)
                return ENS_HTTP_HEAD_OTHER;
              req->authorization = v;
              req->authorization_len = v_len;
            }
          break;
        case 'h':
          have_host = have_host || name_is (p, name_len, "host");
          break;
        case 'x':
          if (name_is (p, name_len, "x-request-id"))
            {
              req->request_id = v;
              req->request_id_len = v_len;
            }
          break;
        case 't':
        case 'e':
        case 'u':
        case 'o':
          if (name_is (p, name_len, "transfer-encoding") || name_is (p, name_len, "expect") ||
              name_is (p, name_len, "upgrade") || name_is (p, name_len, "origin"))
            return ENS_HTTP_HEAD_OTHER;
          break;
        default:
          break;
        }
    }

  if (!have_host)
    return ENS_HTTP_HEAD_OTHER; /* libsoup answers 400 */

  /* The body. */
  if (req->post)
    {
      if (!have_length || length > max_body || len - req->head_len < length)
        return ENS_HTTP_HEAD_OTHER;
      req->body_len = (gsize) length;
      /* A stream is SSE: libsoup's. */
      if (memmem (data + req->head_len, req->body_len, "\"stream\"", 8))
        return ENS_HTTP_HEAD_OTHER;
    }
  else if (have_length && length > 0)
    return ENS_HTTP_HEAD_OTHER;
  return ENS_HTTP_HEAD_PLAIN;
}
