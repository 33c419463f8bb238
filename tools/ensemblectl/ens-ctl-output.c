/* ensemblectl: what the user sees — the one error line every failure ends
 * with, tables, fields and JSON on stdout. */
#include "ens-ctl.h"

#include <stdarg.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Errors                                                               */

void
ens_ctl_error_free (EnsCtlError *error)
{
  if (error == NULL)
    return;
  g_free (error->code);
  g_free (error->message);
  g_free (error);
}

void
ens_ctl_set_error (EnsCtlError **error, const char *code, const char *format, ...)
{
  va_list args;
  EnsCtlError *e;

  if (error == NULL)
    return;
  g_return_if_fail (*error == NULL);

  e = g_new0 (EnsCtlError, 1);
  e->code = g_strdup (code);
  va_start (args, format);
  e->message = g_strdup_vprintf (format, args);
  va_end (args);
  *error = e;
}

/* Control characters (say, a newline in a daemon's error message) would
 * break the one-line contract of ens_report(). */
static char *
ens_one_line (const char *text)
{
  char *line = g_strdup (text);

  for (char *p = line; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      *p = ' ';
  return line;
}

/* The single line every failure ends with; keeps stderr parseable. */
int
ens_report (const char *code, const char *message, int status)
{
  g_autofree char *safe_code = ens_one_line (code);
  g_autofree char *safe_message = ens_one_line (message);

  fflush (stdout);
  fprintf (stderr, "ensemblectl: %s: %s\n", safe_code, safe_message);
  return status;
}

int
ens_report_error (const EnsCtlError *error)
{
  return ens_report (error->code, error->message, ENS_EXIT_ERROR);
}

int
ens_usage_error (const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  return ens_report ("USAGE", message, ENS_EXIT_USAGE);
}

/* ------------------------------------------------------------------ */
/* Human-readable output                                                */

char *
ens_format_uptime (double seconds)
{
  guint64 s = seconds > 0 ? (guint64) seconds : 0;
  guint64 d = s / 86400, h = (s / 3600) % 24, m = (s / 60) % 60;

  s %= 60;
  if (d > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "d %" G_GUINT64_FORMAT "h %" G_GUINT64_FORMAT
                            "m %" G_GUINT64_FORMAT "s", d, h, m, s);
  if (h > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "h %" G_GUINT64_FORMAT "m %" G_GUINT64_FORMAT
                            "s", h, m, s);
  if (m > 0)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "m %" G_GUINT64_FORMAT "s", m, s);
  return g_strdup_printf ("%" G_GUINT64_FORMAT "s", s);
}


/* Table cells must stay on one line whatever a plugin put in them. */
char *
ens_cell (const char *text)
{
  g_autofree char *valid = NULL;

  if (text == NULL || text[0] == '\0')
    return g_strdup ("-");
  valid = g_utf8_make_valid (text, -1);
  return ens_one_line (valid);
}

void
ens_print_table (const char *const *headers, guint n_cols, GPtrArray *rows)
{
  g_autofree gsize *widths = g_new0 (gsize, n_cols);

  for (guint c = 0; c < n_cols; c++)
    widths[c] = (gsize) g_utf8_strlen (headers[c], -1);
  for (guint r = 0; r < rows->len; r++)
    {
      char **row = g_ptr_array_index (rows, r);

      for (guint c = 0; c < n_cols; c++)
        widths[c] = MAX (widths[c], (gsize) g_utf8_strlen (row[c], -1));
    }

  for (guint r = 0; r <= rows->len; r++)
    {
      const char *const *row = r == 0 ? headers : (const char *const *) g_ptr_array_index (rows, r - 1);
      g_autoptr(GString) out = g_string_new (NULL);

      for (guint c = 0; c < n_cols; c++)
        {
          g_string_append (out, row[c]);
          /* No padding after the last column: no trailing blanks. */
          if (c + 1 < n_cols)
            for (gsize pad = (gsize) g_utf8_strlen (row[c], -1); pad < widths[c] + 2; pad++)
              g_string_append_c (out, ' ');
        }
      printf ("%s\n", out->str);
    }
}

GStrv
ens_row_from (JsonObject *obj, const char *const *members, guint n)
{
  GStrv row = g_new0 (char *, n + 1);

  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = obj ? json_object_get_member (obj, members[i]) : NULL;
      g_autofree char *text = node && !JSON_NODE_HOLDS_NULL (node) ? ens_display_text (node) : NULL;

      row[i] = ens_cell (text);
    }
  return row;
}

void
ens_print_object_table (JsonArray *list, const char *const *cols, guint n_cols)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

  for (guint i = 0; list && i < json_array_get_length (list); i++)
    g_ptr_array_add (rows, ens_row_from (json_array_get_object_element (list, i), cols, n_cols));
  ens_print_table (cols, n_cols, rows);
}

void
ens_print_field (const char *label, const char *value)
{
  g_autofree char *cell = ens_cell (value);

  printf ("%-16s%s\n", label, cell);
}

void
ens_print_fields (JsonObject *obj, const char *const *members)
{
  for (guint i = 0; members[i]; i++)
    {
      JsonNode *n = json_object_get_member (obj, members[i]);
      g_autofree char *text = NULL;
      if (n == NULL)
        continue;
      text = ens_display_text (n);
      printf ("%-16s%s\n", members[i], text);
    }
}

void
ens_print_reply (EnsCtl *ctl, JsonNode *reply, const char *const *fields, const char *list_member,
                 const char *const *cols, guint n_cols)
{
  JsonObject *robj = ens_json_node_object (reply);

  if (ctl->opts->json || robj == NULL)
    ens_print_json (reply, FALSE);
  else if (fields != NULL)
    ens_print_fields (robj, fields);
  else
    ens_print_object_table (ens_json_array (robj, list_member), cols, n_cols);
}

void
ens_print_json (JsonNode *node, gboolean pretty)
{
  g_autofree char *text = ens_json_to_string (node, pretty);

  printf ("%s\n", text);
}
