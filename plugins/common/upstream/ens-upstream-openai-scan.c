/* ens-upstream-openai-scan.c — see ens-upstream-openai-scan.h.
 *
 * The scanner reports each member of an object with its value's text; a
 * member named twice counts as it does in the tree (the last one wins).
 * Objects within are read once the object around them is read: its spans
 * are kept, and only the last one of a name is read. */
#include "ens-upstream-openai-scan.h"

#include <string.h>

/* A string member: a span of the text when it has no escape, else its
 * unescaped copy.  len 0: absent, null or "" (all mean nothing said). */
typedef struct {
  const char *text;
  gsize len;
  char *copy;
} Str;

/* A value that is an object: its text, NULL when absent or null. */
typedef struct {
  const char *text;
  gsize len;
} Span;

typedef struct {
  const EnsUpstreamScanner *scanner;
  gboolean chunk;  /* a chat.completion.chunk: "delta", else "message" */
  gboolean odd;    /* for the typed reader */
  Str model, reason, content;
  Span usage, choices, choice, inner; /* inner: the message or the delta */
  gint64 input_tokens, output_tokens; /* -1: not said */
} Scan;

static gboolean
is_null (const char *value, gsize len)
{
  return len == 4 && memcmp (value, "null", 4) == 0;
}

static void
str_clear (Str *s)
{
  g_clear_pointer (&s->copy, g_free);
  s->text = NULL;
  s->len = 0;
}

/* A string value (@string unescaped), or null; anything else is odd. */
static void
str_take (Scan *scan, Str *s, const char *value, gsize len, const char *string)
{
  str_clear (s);
  if (!string)
    scan->odd |= !is_null (value, len);
  else if (memchr (value, '\\', len) == NULL)
    {
      s->text = value + 1;
      s->len = len - 2;
    }
  else
    {
      s->copy = g_strdup (string);
      s->text = s->copy;
      s->len = strlen (s->copy);
    }
}

/* An object value, or null; anything else is odd. */
static void
span_take (Scan *scan, Span *s, const char *value, gsize len)
{
  s->text = NULL;
  s->len = 0;
  if (value[0] == '{')
    {
      s->text = value;
      s->len = len;
    }
  else
    scan->odd |= !is_null (value, len);
}

/* A count: a plain integer of at most 18 digits (no sign, fraction or
 * exponent), or null (-1: not said); anything else is odd. */
static void
count_take (Scan *scan, gint64 *out, const char *value, gsize len)
{
  gint64 n = 0;

  *out = -1;
  if (is_null (value, len))
    return;
  if (len == 0 || len > 18)
    {
      scan->odd = TRUE;
      return;
    }
  for (gsize i = 0; i < len; i++)
    {
      if (value[i] < '0' || value[i] > '9')
        {
          scan->odd = TRUE;
          return;
        }
      n = n * 10 + (value[i] - '0');
    }
  *out = n;
}

static void
top_member (const char *name, const char *value, gsize len, const char *string, gpointer data)
{
  Scan *scan = data;

  if (strcmp (name, "choices") == 0)
    {
      scan->choices.text = NULL;
      if (value[0] == '[')
        {
          scan->choices.text = value;
          scan->choices.len = len;
        }
      else
        scan->odd |= !is_null (value, len);
    }
  else if (strcmp (name, "model") == 0)
    str_take (scan, &scan->model, value, len, string);
  else if (strcmp (name, "usage") == 0)
    span_take (scan, &scan->usage, value, len);
  else if (strcmp (name, "error") == 0)
    scan->odd |= !is_null (value, len);
}

static void
usage_member (const char *name, const char *value, gsize len, const char *string, gpointer data)
{
  Scan *scan = data;

  (void) string;
  if (strcmp (name, "prompt_tokens") == 0)
    count_take (scan, &scan->input_tokens, value, len);
  else if (strcmp (name, "completion_tokens") == 0)
    count_take (scan, &scan->output_tokens, value, len);
}

static void
choice_member (const char *name, const char *value, gsize len, const char *string, gpointer data)
{
  Scan *scan = data;

  if (strcmp (name, scan->chunk ? "delta" : "message") == 0)
    span_take (scan, &scan->inner, value, len);
  else if (strcmp (name, "finish_reason") == 0)
    str_take (scan, &scan->reason, value, len, string);
}

static void
inner_member (const char *name, const char *value, gsize len, const char *string, gpointer data)
{
  Scan *scan = data;

  if (strcmp (name, "content") == 0)
    str_take (scan, &scan->content, value, len, string);
  else if (strcmp (name, "tool_calls") == 0)
    scan->odd |= !is_null (value, len);
}

/* choices[0] from the text of choices (an array): scan->choice, NULL when
 * the array is empty; an element other than an object is odd. */
static void
first_choice (Scan *scan)
{
  const char *t = scan->choices.text;
  gsize i = 1;

  while (i < scan->choices.len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
    i++;
  if (i < scan->choices.len && t[i] == '{')
    {
      scan->choice.text = t + i;
      scan->choice.len = scan->choices.len - i;
    }
  else
    scan->odd |= i >= scan->choices.len || t[i] != ']';
}

/* Reads @len bytes of @text into @scan; FALSE when it is not all common. */
static gboolean
scan_answer (Scan *scan, const char *text, gsize len)
{
  const EnsUpstreamScanner *s = scan->scanner;

  scan->input_tokens = scan->output_tokens = -1;
  if (!s->members (text, len, top_member, scan, NULL) || scan->odd)
    return FALSE;
  if (scan->usage.text && !s->checked_members (scan->usage.text, scan->usage.len, usage_member, scan))
    return FALSE;
  if (scan->choices.text)
    first_choice (scan);
  if (scan->odd)
    return FALSE;
  if (scan->choice.text && !s->checked_members (scan->choice.text, scan->choice.len, choice_member, scan))
    return FALSE;
  if (scan->inner.text && !s->checked_members (scan->inner.text, scan->inner.len, inner_member, scan))
    return FALSE;
  return !scan->odd;
}

static void
scan_clear (Scan *scan)
{
  str_clear (&scan->model);
  str_clear (&scan->reason);
  str_clear (&scan->content);
}

static void
apply_usage (EnsUpstreamAnswer *a, const Scan *scan)
{
  if (scan->input_tokens >= 0)
    a->input_tokens = scan->input_tokens;
  if (scan->output_tokens >= 0)
    a->output_tokens = scan->output_tokens;
}

gboolean
ens_upstream_openai_scan_body (EnsUpstreamAnswer *a, const char *body, gsize len)
{
  Scan scan = { .scanner = a->scanner, .chunk = FALSE };
  gboolean ok;

  if (!scan.scanner)
    return FALSE;
  /* Without choices[0].message the typed reader says what is missing. */
  ok = scan_answer (&scan, body, len) && scan.inner.text;
  if (ok)
    {
      apply_usage (a, &scan);
      ens_upstream_answer_set_model_len (a, scan.model.text, scan.model.len);
      ens_upstream_answer_set_stop_reason_len (a, scan.reason.text, scan.reason.len);
      ens_upstream_answer_add_text_len (a, scan.content.text, scan.content.len, FALSE);
    }
  scan_clear (&scan);
  return ok;
}

gboolean
ens_upstream_openai_scan_chunk (EnsUpstreamAnswer *a, const char *data, gsize len)
{
  Scan scan = { .scanner = a->scanner, .chunk = TRUE };
  gboolean ok;

  if (!scan.scanner)
    return FALSE;
  ok = scan_answer (&scan, data, len);
  if (ok)
    {
      ens_upstream_answer_set_model_len (a, scan.model.text, scan.model.len);
      apply_usage (a, &scan);
      ens_upstream_answer_add_text_len (a, scan.content.text, scan.content.len, TRUE);
      ens_upstream_answer_set_stop_reason_len (a, scan.reason.text, scan.reason.len);
    }
  scan_clear (&scan);
  return ok;
}
