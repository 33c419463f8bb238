/* ens-fuzz-support.c — what the fuzz targets share: fatal criticals, tree
 * comparison, the check of encoded bytes, a host table for dialect code. */
#include "ens-fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Criticals and warnings abort (SIGABRT, which libFuzzer catches and
 * saves the input for; GLib's own fatal path would raise SIGTRAP); what
 * the daemon logs below that is noise here. */
static void
on_log (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  (void) data;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      fprintf (stderr, "%s: %s\n", domain ? domain : "(no domain)", message);
      abort ();
    }
}

void
ens_fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  g_log_set_default_handler (on_log, NULL);
}

void
ens_fuzz_fail (const char *file, int line, const char *format, ...)
{
  va_list args;

  fprintf (stderr, "%s:%d: fuzz check failed: ", file, line);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fputc ('\n', stderr);
  abort ();
}

gboolean
ens_fuzz_same_tree (JsonNode *a, JsonNode *b, gboolean numeric)
{
  if (json_node_get_node_type (a) != json_node_get_node_type (b))
    return FALSE;
  switch (json_node_get_node_type (a))
    {
    case JSON_NODE_NULL:
      return TRUE;
    case JSON_NODE_VALUE:
      {
        GType ta = json_node_get_value_type (a), tb = json_node_get_value_type (b);
        if (numeric && (ta == G_TYPE_INT64 || ta == G_TYPE_DOUBLE) && (tb == G_TYPE_INT64 || tb == G_TYPE_DOUBLE))
          {
            double da = ta == G_TYPE_INT64 ? (double) json_node_get_int (a) : json_node_get_double (a);
            double db = tb == G_TYPE_INT64 ? (double) json_node_get_int (b) : json_node_get_double (b);
            if (ta == G_TYPE_INT64 && tb == G_TYPE_INT64)
              return json_node_get_int (a) == json_node_get_int (b);
            return da == db;
          }
        if (ta != tb)
          return FALSE;
        if (ta == G_TYPE_DOUBLE)
          {
            double da = json_node_get_double (a), db = json_node_get_double (b);
            return memcmp (&da, &db, sizeof da) == 0; /* -0.0 is not 0.0 */
          }
        if (ta == G_TYPE_STRING)
          return strcmp (json_node_get_string (a), json_node_get_string (b)) == 0;
        if (ta == G_TYPE_INT64)
          return json_node_get_int (a) == json_node_get_int (b);
        if (ta == G_TYPE_BOOLEAN)
          return json_node_get_boolean (a) == json_node_get_boolean (b);
        return FALSE;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *x = json_node_get_array (a), *y = json_node_get_array (b);
        guint n = json_array_get_length (x);
        if (n != json_array_get_length (y))
          return FALSE;
        for (guint i = 0; i < n; i++)
          if (!ens_fuzz_same_tree (json_array_get_element (x, i), json_array_get_element (y, i), numeric))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter ia, ib;
        const char *na, *nb;
        JsonNode *ma, *mb;

        json_object_iter_init_ordered (&ia, json_node_get_object (a));
        json_object_iter_init_ordered (&ib, json_node_get_object (b));
        for (;;)
          {
            gboolean more_a = json_object_iter_next_ordered (&ia, &na, &ma);
            gboolean more_b = json_object_iter_next_ordered (&ib, &nb, &mb);
            if (!more_a || !more_b)
              return more_a == more_b;
            if (strcmp (na, nb) != 0 || !ens_fuzz_same_tree (ma, mb, numeric))
              return FALSE;
          }
      }
    default:
      return FALSE;
    }
}

guint
ens_fuzz_check_lines (GBytes *bytes)
{
  gsize size;
  const char *data = g_bytes_get_data (bytes, &size);
  const char *end = data + size, *p = data;
  guint lines = 0;

  ENS_FUZZ_CHECK (size > 0 && data[size - 1] == '\n', "encoded bytes do not end with a newline");
  while (p < end)
    {
      const char *nl = memchr (p, '\n', (gsize) (end - p));
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = ens_json_parse (p, (gsize) (nl - p), &error);

      ENS_FUZZ_CHECK (node != NULL, "an encoder wrote what the parser refuses: %s: %.*s", error->message,
                      (int) MIN (nl - p, 400), p);
      lines++;
      p = nl + 1;
    }
  return lines;
}

/* ---- a host table over the core's own functions ---- */

static GPtrArray *submitted;

static void
fuzz_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  (void) self;
  (void) level;
  (void) message;
}

static void
fuzz_client_submit (EnsClient *client, EnsMessage *msg)
{
  (void) client;
  g_ptr_array_add (submitted, ens_message_ref (msg));
}

static const char *
fuzz_client_id (EnsClient *client)
{
  (void) client;
  return "fuzz-node:1";
}

static const char *
fuzz_node_id (void)
{
  return "fuzz-node";
}

const EnsHost *
ens_fuzz_host (void)
{
  static EnsHost host;

  if (host.struct_size == 0)
    {
      EnsHostServices none = { 0 }; /* the entries that need them are not used */

      host = *ens_host_table (&none);
      host.log = fuzz_log;
      host.client_submit = fuzz_client_submit;
      host.client_id = fuzz_client_id;
      host.node_id = fuzz_node_id;
      submitted = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_message_unref);
    }
  return &host;
}

GPtrArray *
ens_fuzz_take_submitted (void)
{
  GPtrArray *out;

  ens_fuzz_host ();
  out = submitted;
  submitted = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_message_unref);
  return out;
}
