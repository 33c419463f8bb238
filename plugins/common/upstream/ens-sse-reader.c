/* ens-sse-reader.c — see ens-sse-reader.h.  The event-stream format is the
 * one of the HTML standard ("Server-sent events", parsing an event stream). */
#include "ens-sse-reader.h"

#include "ens-upstream-json.h"

#include <string.h>

struct _EnsSseReader {
  gsize max_line;
  EnsSseEventFunc func;
  gpointer user_data;
  GString *line;   /* the start of a line whose end has not arrived yet */
  GString *event;  /* "event:" of the event being read */
  GString *data;   /* its "data:" lines, joined */
  gboolean has_data, skip_lf, stopped, first_line;
};

EnsSseReader *
ens_sse_reader_new (gsize max_line, EnsSseEventFunc func, gpointer user_data)
{
  EnsSseReader *r = g_new0 (EnsSseReader, 1);

  r->max_line = max_line;
  r->func = func;
  r->user_data = user_data;
  r->line = g_string_new (NULL);
  r->event = g_string_new (NULL);
  r->data = g_string_new (NULL);
  r->first_line = TRUE;
  return r;
}

void
ens_sse_reader_free (EnsSseReader *r)
{
  if (!r)
    return;
  g_string_free (r->line, TRUE);
  g_string_free (r->event, TRUE);
  g_string_free (r->data, TRUE);
  g_free (r);
}

static gboolean
too_long (EnsSseReader *r, gsize len, GError **error)
{
  if (len <= r->max_line)
    return FALSE;
  g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT,
               "an event-stream line longer than %" G_GSIZE_FORMAT " bytes", r->max_line);
  return TRUE;
}

/* The blank line: hands the event over, if it has data. */
static void
dispatch (EnsSseReader *r)
{
  if (r->has_data && !r->func (r->event->len ? r->event->str : NULL, r->data->str, r->data->len, r->user_data))
    r->stopped = TRUE;
  g_string_truncate (r->event, 0);
  g_string_truncate (r->data, 0);
  r->has_data = FALSE;
}

/* One line, without its line end.  FALSE with @error when the event's data
 * grows over the cap. */
static gboolean
line (EnsSseReader *r, const char *p, gsize len, GError **error)
{
  const char *colon, *value;
  gsize name_len, value_len;

  if (r->first_line)
    {
      r->first_line = FALSE;
      if (len >= 3 && memcmp (p, "\xEF\xBB\xBF", 3) == 0)
        p += 3, len -= 3;
    }
  if (len == 0)
    {
      dispatch (r);
      return TRUE;
    }
  if (*p == ':')
    return TRUE; /* a comment, e.g. a keep-alive */
  colon = memchr (p, ':', len);
  name_len = colon ? (gsize) (colon - p) : len;
  value = colon ? colon + 1 : p + len;
  if (colon && value < p + len && *value == ' ')
    value++;
  value_len = (gsize) (p + len - value);
  if (name_len == 4 && memcmp (p, "data", 4) == 0)
    {
      if (r->data->len + value_len + 1 > r->max_line)
        {
          g_set_error (error, ENS_UPSTREAM_ERROR, ENS_UPSTREAM_ERROR_LIMIT,
                       "an event-stream event with more than %" G_GSIZE_FORMAT " bytes of data", r->max_line);
          return FALSE;
        }
      if (r->has_data)
        g_string_append_c (r->data, '\n');
      g_string_append_len (r->data, value, (gssize) value_len);
      r->has_data = TRUE;
    }
  else if (name_len == 5 && memcmp (p, "event", 5) == 0)
    {
      g_string_truncate (r->event, 0);
      g_string_append_len (r->event, value, (gssize) value_len);
    }
  /* id: and retry: mean nothing for one request; other fields are ignored. */
  return TRUE;
}

static gboolean
feed (EnsSseReader *r, const char *bytes, gsize len, GError **error)
{
  const char *p = bytes, *end = bytes + len, *lf = NULL;
  gboolean lf_unknown = TRUE;

  if (r->stopped)
    return FALSE;
  if (r->skip_lf && p < end)
    {
      r->skip_lf = FALSE;
      if (*p == '\n')
        p++;
    }
  while (p < end && !r->stopped)
    {
      const char *cr, *eol;

      /* The next LF is looked for again only once it is behind us: a
       * stream of CR-only lines stays linear. */
      if (lf_unknown || (lf && lf < p))
        {
          lf = memchr (p, '\n', (gsize) (end - p));
          lf_unknown = FALSE;
        }
      cr = memchr (p, '\r', (gsize) ((lf ? lf : end) - p));
      eol = cr ? cr : lf;

      if (!eol)
        {
          if (too_long (r, r->line->len + (gsize) (end - p), error))
            return FALSE;
          g_string_append_len (r->line, p, end - p);
          break;
        }
      if (r->line->len > 0)
        {
          if (too_long (r, r->line->len + (gsize) (eol - p), error))
            return FALSE;
          g_string_append_len (r->line, p, eol - p);
          if (!line (r, r->line->str, r->line->len, error))
            return FALSE;
          g_string_truncate (r->line, 0);
        }
      else
        {
          if (too_long (r, (gsize) (eol - p), error))
            return FALSE;
          if (!line (r, p, (gsize) (eol - p), error))
            return FALSE;
        }
      p = eol + 1;
      if (*eol == '\r')
        {
          if (p == end)
            r->skip_lf = TRUE; /* the LF of a CRLF may start the next piece */
          else if (*p == '\n')
            p++;
        }
    }
  return !r->stopped;
}

static gboolean
finish (EnsSseReader *r, GError **error)
{
  if (r->stopped)
    return FALSE;
  if (r->line->len > 0)
    {
      if (!line (r, r->line->str, r->line->len, error))
        return FALSE;
      g_string_truncate (r->line, 0);
    }
  if (!r->stopped)
    dispatch (r);
  return !r->stopped;
}

/* After an error the reader is stopped too: what follows is not read. */
gboolean
ens_sse_reader_feed (EnsSseReader *r, const char *bytes, gsize len, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (feed (r, bytes, len, error))
    return TRUE;
  r->stopped = TRUE;
  return FALSE;
}

gboolean
ens_sse_reader_finish (EnsSseReader *r, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);
  if (finish (r, error))
    return TRUE;
  r->stopped = TRUE;
  return FALSE;
}
