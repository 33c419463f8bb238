/* ens-upstream-response.c — see ens-upstream-response.h.
 *
 * The head is gathered in one buffer (its lines split in place, the
 * headers pointing into it); the body is handed on from the caller's
 * bytes without a copy.  Lines end with CRLF or a bare LF. */
#include "ens-upstream-response.h"

#include <gio/gio.h>
#include <string.h>

#define MAX_CHUNK_LINE 4096 /* a chunk-size line with its extensions, or a trailer line */

typedef enum {
  ST_HEAD,        /* gathering the status line and headers */
  ST_LENGTH,      /* a body of @left bytes */
  ST_CHUNK_SIZE,  /* a chunk-size line */
  ST_CHUNK_DATA,  /* @left bytes of a chunk */
  ST_CHUNK_CRLF,  /* the line end after a chunk's data */
  ST_TRAILER,     /* trailer lines up to an empty one */
  ST_TO_EOF,      /* a body up to the end of the connection */
  ST_DONE,
} State;

struct _EnsUpstreamResponse {
  gboolean head_only;
  State state;
  gboolean started, has_head, keep_alive;
  guint status;
  GString *head;      /* the head's bytes; its lines split in place once complete */
  GPtrArray *headers; /* char*: name, value, ... pointing into @head */
  GString *line;      /* a chunk-size or trailer line */
  guint64 left;
  char *media_type;
};

EnsUpstreamResponse *
ens_upstream_response_new (gboolean head_only)
{
  EnsUpstreamResponse *r = g_new0 (EnsUpstreamResponse, 1);

  r->head_only = head_only;
  r->head = g_string_sized_new (512);
  r->headers = g_ptr_array_new ();
  r->line = g_string_sized_new (16);
  return r;
}

void
ens_upstream_response_free (EnsUpstreamResponse *r)
{
  if (!r)
    return;
  g_string_free (r->head, TRUE);
  g_ptr_array_unref (r->headers);
  g_string_free (r->line, TRUE);
  g_free (r->media_type);
  g_free (r);
}

void
ens_upstream_response_reset (EnsUpstreamResponse *r)
{
  r->state = ST_HEAD;
  r->started = r->has_head = r->keep_alive = FALSE;
  r->status = 0;
  g_string_truncate (r->head, 0);
  g_ptr_array_set_size (r->headers, 0);
  g_string_truncate (r->line, 0);
  r->left = 0;
  g_clear_pointer (&r->media_type, g_free);
}

gboolean
ens_upstream_response_started (EnsUpstreamResponse *r)
{
  return r->started;
}

gboolean
ens_upstream_response_has_head (EnsUpstreamResponse *r)
{
  return r->has_head;
}

gboolean
ens_upstream_response_done (EnsUpstreamResponse *r)
{
  return r->state == ST_DONE;
}

gboolean
ens_upstream_response_keep_alive (EnsUpstreamResponse *r)
{
  return r->keep_alive;
}

guint
ens_upstream_response_status (EnsUpstreamResponse *r)
{
  return r->status;
}

const char *
ens_upstream_response_header (EnsUpstreamResponse *r, const char *name)
{
  for (guint i = 0; i + 1 < r->headers->len; i += 2)
    if (g_ascii_strcasecmp (g_ptr_array_index (r->headers, i), name) == 0)
      return g_ptr_array_index (r->headers, i + 1);
  return NULL;
}

const char *
ens_upstream_response_media_type (EnsUpstreamResponse *r)
{
  return r->media_type;
}

static gboolean
fail (GError **error, const char *message)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, message);
  return FALSE;
}

/* TRUE when the comma-separated list @value holds @token (any case). */
static gboolean
has_token (const char *value, const char *token)
{
  gsize n = strlen (token);

  while (value && *value)
    {
      while (*value == ' ' || *value == '\t' || *value == ',')
        value++;
      if (g_ascii_strncasecmp (value, token, n) == 0)
        {
          const char *end = value + n;
          while (*end == ' ' || *end == '\t')
            end++;
          if (*end == '\0' || *end == ',' || *end == ';')
            return TRUE;
        }
      value = strchr (value, ',');
    }
  return FALSE;
}

static char *
trim (char *s)
{
  char *end;

  while (*s == ' ' || *s == '\t')
    s++;
  end = s + strlen (s);
  while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    *--end = '\0';
  return s;
}

/* Splits the complete head in @r->head into status and headers; decides
 * the body's framing. */
static gboolean
parse_head (EnsUpstreamResponse *r, GError **error)
{
  char *p = r->head->str, *nl, *colon;
  const char *te, *cl, *conn;
  int minor;
  guint64 n;

  nl = strchr (p, '\n');
  *nl = '\0';
  p = trim (p);
  if (strncmp (p, "HTTP/1.", 7) != 0 || !g_ascii_isdigit (p[7]) || p[8] != ' ' || !g_ascii_isdigit (p[9]) ||
      !g_ascii_isdigit (p[10]) || !g_ascii_isdigit (p[11]) || (p[12] != '\0' && p[12] != ' '))
    return fail (error, "not an HTTP/1.x status line");
  minor = p[7] - '0';
  r->status = (guint) ((p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0'));
  g_ptr_array_set_size (r->headers, 0);
  for (p = nl + 1; *p; p = nl + 1)
    {
      nl = strchr (p, '\n');
      if (!nl)
        break;
      *nl = '\0';
      if (*p == '\r' || *p == '\0')
        break; /* the blank line */
      if (*p == ' ' || *p == '\t')
        return fail (error, "folded header line");
      colon = strchr (p, ':');
      if (!colon || colon == p)
        return fail (error, "malformed header line");
      *colon = '\0';
      for (const char *c = p; *c; c++)
        if (*c == ' ' || *c == '\t')
          return fail (error, "malformed header name");
      g_ptr_array_add (r->headers, p);
      g_ptr_array_add (r->headers, trim (colon + 1));
    }
  if (r->status < 100)
    return fail (error, "bad status code");
  if (r->status < 200)
    return TRUE; /* interim: the caller skips it */

  conn = ens_upstream_response_header (r, "Connection");
  r->keep_alive = minor >= 1 ? !has_token (conn, "close") : has_token (conn, "keep-alive");
  {
    const char *type = ens_upstream_response_header (r, "Content-Type");
    if (type)
      {
        gsize len = strcspn (type, "; \t");
        r->media_type = g_ascii_strdown (type, (gssize) len);
      }
  }
  te = ens_upstream_response_header (r, "Transfer-Encoding");
  cl = ens_upstream_response_header (r, "Content-Length");
  if (r->head_only || r->status == 204 || r->status == 304)
    r->state = ST_DONE;
  else if (te && has_token (te, "chunked"))
    r->state = ST_CHUNK_SIZE;
  else if (te)
    {
      r->state = ST_TO_EOF; /* another coding: the end of the connection delimits it */
      r->keep_alive = FALSE;
    }
  else if (cl)
    {
      if (!g_ascii_string_to_unsigned (cl, 10, 0, G_MAXUINT64, &n, NULL))
        return fail (error, "bad Content-Length");
      r->left = n;
      r->state = n ? ST_LENGTH : ST_DONE;
    }
  else
    {
      r->state = ST_TO_EOF;
      r->keep_alive = FALSE;
    }
  return TRUE;
}

/* Gathers head bytes; returns the bytes of @data consumed, -1 on error.
 * Sets *complete once the blank line was found. */
static gssize
feed_head (EnsUpstreamResponse *r, const char *data, gsize len, gboolean *complete, GError **error)
{
  gsize old = r->head->len;
  gsize from = old >= 3 ? old - 3 : 0;
  const char *s;

  *complete = FALSE;
  g_string_append_len (r->head, data, (gssize) MIN (len, ENS_UPSTREAM_RESPONSE_MAX_HEAD + 4 - old));
  /* A line feed followed by an optional CR and a line feed ends the head. */
  for (s = r->head->str + from; (s = memchr (s, '\n', r->head->len - (gsize) (s - r->head->str))); s++)
    {
      const char *next = s + 1;

      if (next < r->head->str + r->head->len && *next == '\r')
        next++;
      if (next < r->head->str + r->head->len && *next == '\n')
        {
          gsize end = (gsize) (next + 1 - r->head->str);

          if (s == r->head->str)
            continue; /* a stray line feed before the status line */
          g_string_truncate (r->head, end);
          *complete = TRUE;
          return (gssize) (end - old);
        }
    }
  if (r->head->len > ENS_UPSTREAM_RESPONSE_MAX_HEAD)
    {
      fail (error, "the answer's head is larger than 64 KiB");
      return -1;
    }
  return (gssize) len;
}

/* Gathers a line of the chunked framing into @r->line; TRUE when complete
 * (the line end not included).  *used: bytes of @data consumed. */
static gboolean
feed_line (EnsUpstreamResponse *r, const char *data, gsize len, gsize *used, GError **error)
{
  const char *nl = memchr (data, '\n', len);
  gsize n = nl ? (gsize) (nl - data) : len;

  if (r->line->len + n > MAX_CHUNK_LINE)
    return fail (error, "a chunk line is too long");
  g_string_append_len (r->line, data, (gssize) n);
  *used = nl ? n + 1 : n;
  if (!nl)
    return FALSE;
  if (r->line->len && r->line->str[r->line->len - 1] == '\r')
    g_string_truncate (r->line, r->line->len - 1);
  return TRUE;
}

gssize
ens_upstream_response_feed (EnsUpstreamResponse *r, const char *data, gsize len,
                            const EnsUpstreamResponseSink *sink, gpointer user_data, GError **error)
{
  gsize pos = 0;

  if (len > 0)
    r->started = TRUE;
  while (pos < len && r->state != ST_DONE)
    {
      const char *p = data + pos;
      gsize n = len - pos, used;

      switch (r->state)
        {
        case ST_HEAD:
          {
            gboolean complete;
            gssize got = feed_head (r, p, n, &complete, error);

            if (got < 0)
              return -1;
            pos += (gsize) got;
            if (!complete)
              break;
            if (memchr (r->head->str, '\0', r->head->len))
              {
                fail (error, "a NUL byte in the answer's head");
                return -1;
              }
            if (!parse_head (r, error))
              return -1;
            if (r->status < 200)
              {
                g_string_truncate (r->head, 0); /* 100 Continue and the like */
                continue;
              }
            r->has_head = TRUE;
            sink->head (user_data);
            if (r->state == ST_DONE)
              sink->end (user_data);
          }
          break;
        case ST_LENGTH:
        case ST_CHUNK_DATA:
          used = (gsize) MIN ((guint64) n, r->left);
          sink->body (user_data, p, used);
          pos += used;
          r->left -= used;
          if (r->left == 0 && r->state == ST_CHUNK_DATA)
            r->state = ST_CHUNK_CRLF;
          else if (r->left == 0)
            {
              r->state = ST_DONE;
              sink->end (user_data);
            }
          break;
        case ST_TO_EOF:
          sink->body (user_data, p, n);
          pos += n;
          break;
        case ST_CHUNK_CRLF:
          if (!feed_line (r, p, n, &used, error))
            {
              if (error && *error)
                return -1;
              pos += used;
              break;
            }
          pos += used;
          if (r->line->len != 0)
            {
              fail (error, "a chunk is longer than its size");
              return -1;
            }
          r->state = ST_CHUNK_SIZE;
          break;
        case ST_CHUNK_SIZE:
        case ST_TRAILER:
          if (!feed_line (r, p, n, &used, error))
            {
              if (error && *error)
                return -1;
              pos += used;
              break;
            }
          pos += used;
          if (r->state == ST_TRAILER)
            {
              if (r->line->len == 0)
                {
                  r->state = ST_DONE;
                  sink->end (user_data);
                }
            }
          else
            {
              guint64 size = 0;
              gsize digits = 0;

              for (const char *c = r->line->str; g_ascii_isxdigit (*c); c++, digits++)
                {
                  if (size >> 60)
                    {
                      fail (error, "a chunk size is too large");
                      return -1;
                    }
                  size = size * 16 + (guint64) g_ascii_xdigit_value (*c);
                }
              if (digits == 0 ||
                  (r->line->str[digits] != '\0' && r->line->str[digits] != ';' && r->line->str[digits] != ' ' &&
                   r->line->str[digits] != '\t'))
                {
                  fail (error, "bad chunk size");
                  return -1;
                }
              r->left = size;
              r->state = size ? ST_CHUNK_DATA : ST_TRAILER;
            }
          g_string_truncate (r->line, 0);
          break;
        case ST_DONE:
          break;
        }
    }
  return (gssize) pos;
}

gboolean
ens_upstream_response_eof (EnsUpstreamResponse *r, const EnsUpstreamResponseSink *sink, gpointer user_data)
{
  if (r->state == ST_DONE)
    return TRUE;
  if (r->state != ST_TO_EOF)
    return FALSE;
  r->state = ST_DONE;
  sink->end (user_data);
  return TRUE;
}
