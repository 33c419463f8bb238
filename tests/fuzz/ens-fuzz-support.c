/* ens-fuzz-support.c — what the fuzz targets share: fatal criticals, tree
 * comparison, the check of encoded bytes, a host table for dialect code. */
#include "ens-fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Criticals and warnings abort (SIGABRT, which libFuzzer catches and
 * saves the input for; GLib's own fatal path would raise SIGTRAP); what
 * the daemon logs below that is noise here.  With ENS_FUZZ_SURVEY set in
 * the environment each is printed with its stack and the run goes on: many
 * distinct ones found in one run. */
static gboolean survey; /* ENS_FUZZ_SURVEY set: report each with its stack, carry on */

void __sanitizer_print_stack_trace (void) __attribute__ ((weak));

static void
on_log (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  (void) data;
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      fprintf (stderr, "%s: %s\n", domain ? domain : "(no domain)", message);
      if (!survey || (level & G_LOG_LEVEL_ERROR))
        abort ();
      if (__sanitizer_print_stack_trace)
        __sanitizer_print_stack_trace ();
    }
}

void
ens_fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  survey = g_getenv ("ENS_FUZZ_SURVEY") != NULL;
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

/* ---- a JSON-aware mutator ---- */

static JsonNode *
scalar (const char *json)
{
  return ens_json_parse (json, strlen (json), NULL);
}

/* A value of some type, or @donor (another node of the tree), or @node
 * wrapped in an array or an object. */
static JsonNode *
other_value (GRand *rand, JsonNode *node, JsonNode *donor)
{
  static const char *const values[] = {
    "null", "true", "false", "0", "-1", "1", "9007199254740993", "-9223372036854775808", "1e300", "0.5", "-0.0",
    "\"\"", "\"x\"", "\"\\u00e9\\ud83d\\ude00\"", "\"*\"", "[]", "{}", "[1,\"a\",null]", "{\"a\":{\"b\":[]}}",
  };
  guint pick = (guint) g_rand_int_range (rand, 0, G_N_ELEMENTS (values) + 3);

  if (pick < G_N_ELEMENTS (values))
    return scalar (values[pick]);
  if (pick == G_N_ELEMENTS (values))
    return json_node_copy (donor);
  {
    JsonNode *wrapped;
    if (pick == G_N_ELEMENTS (values) + 1)
      {
        JsonArray *a = json_array_new ();
        json_array_add_element (a, json_node_copy (node));
        wrapped = json_node_init_array (json_node_alloc (), a);
        json_array_unref (a);
      }
    else
      {
        JsonObject *o = json_object_new ();
        json_object_set_member (o, "a", json_node_copy (node));
        wrapped = json_node_init_object (json_node_alloc (), o);
        json_object_unref (o);
      }
    return wrapped;
  }
}

/* A fresh (unsealed) copy of @node with node number @target (pre-order)
 * replaced, or, when it is an object, one of its members dropped. */
static JsonNode *
rebuild (JsonNode *node, guint *count, guint target, GRand *rand, JsonNode *donor)
{
  gboolean here = (*count)++ == target;

  if (here && !(JSON_NODE_HOLDS_OBJECT (node) && g_rand_boolean (rand)))
    return other_value (rand, node, donor);
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *o = json_object_new ();
      JsonObjectIter iter;
      const char *name;
      JsonNode *member, *out;
      guint n = json_object_get_size (json_node_get_object (node));
      guint drop = here && n ? (guint) g_rand_int_range (rand, 0, (gint32) n) : G_MAXUINT, i = 0;

      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        {
          JsonNode *child = rebuild (member, count, target, rand, donor);
          if (i++ == drop)
            json_node_unref (child);
          else
            json_object_set_member (o, name, child);
        }
      out = json_node_init_object (json_node_alloc (), o);
      json_object_unref (o);
      return out;
    }
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *in = json_node_get_array (node), *a = json_array_new ();
      JsonNode *out;

      for (guint i = 0; i < json_array_get_length (in); i++)
        json_array_add_element (a, rebuild (json_array_get_element (in, i), count, target, rand, donor));
      out = json_node_init_array (json_node_alloc (), a);
      json_array_unref (a);
      return out;
    }
  return json_node_copy (node);
}

static void
count_nodes (JsonNode *node, GPtrArray *all)
{
  g_ptr_array_add (all, node);
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *member;
      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        count_nodes (member, all);
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (node)); i++)
      count_nodes (json_array_get_element (json_node_get_array (node), i), all);
}

size_t
ens_fuzz_mutate_json (uint8_t *data, size_t size, size_t max_size, unsigned int seed, size_t offset)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (JsonNode) mutated = NULL;
  g_autoptr (GPtrArray) all = NULL;
  g_autofree char *text = NULL;
  guint count = 0;
  gsize len;

  if (offset > size || g_rand_boolean (rand))
    return LLVMFuzzerMutate (data, size, max_size);
  root = ens_json_parse ((const char *) data + offset, size - offset, NULL);
  if (root == NULL)
    return LLVMFuzzerMutate (data, size, max_size);
  all = g_ptr_array_new ();
  count_nodes (root, all);
  mutated = rebuild (root, &count, (guint) g_rand_int_range (rand, 0, (gint32) all->len), rand,
                     g_ptr_array_index (all, g_rand_int_range (rand, 0, (gint32) all->len)));
  text = ens_json_to_string (mutated);
  len = strlen (text);
  if (offset + len > max_size)
    return LLVMFuzzerMutate (data, size, max_size);
  memcpy (data + offset, text, len);
  return offset + len;
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

/* A client handle that is never dereferenced: its messages go to
 * fuzz_client_submit. */
static EnsClient *
fuzz_client_new (EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data, guint32 flags, const char *peer)
{
  static int token;

  (void) transport;
  (void) sink;
  (void) sink_data;
  (void) flags;
  (void) peer;
  return (EnsClient *) &token;
}

static void
fuzz_client_close (EnsClient *client)
{
  (void) client;
}

static const char *
fuzz_client_id (EnsClient *client)
{
  (void) client;
  return "fuzz-node:1";
}

/* Every setting has the default its reader falls back on, but those whose
 * schema default is more than that (the Rhetor roster: one of its names, so
 * a route still reaches its own verb within the answers an input steers). */
static GVariant *
fuzz_config_get (EnsPlugin *self, const char *key)
{
  static const char *const specialists[] = { "apollo", NULL };

  (void) self;
  if (g_strcmp0 (key, "rhetor-specialists") == 0)
    return g_variant_ref_sink (g_variant_new_strv (specialists, -1));
  return NULL;
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
      host.client_new = fuzz_client_new;
      host.client_close = fuzz_client_close;
      host.client_submit = fuzz_client_submit;
      host.client_id = fuzz_client_id;
      host.node_id = fuzz_node_id;
      host.config_get = fuzz_config_get;
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
