/* ens-fake-host.c — see ens-fake-host.h. */
#include "ens-fake-host.h"

#define G_SETTINGS_ENABLE_BACKEND
#include <gio/gsettingsbackend.h>
#include <glib/gstdio.h>
#include <gmodule.h>
#include <string.h>
#include <unistd.h>

static GSettingsSchemaSource *schemas;
static GSettingsBackend *backend;
static GStrv providers;
static EnsHost host;
static GPtrArray *temp_files;

static void
fake_log (EnsPlugin *self, GLogLevelFlags level, const char *message)
{
  g_printerr ("# [plugin] %s\n", message);
}

static GVariant *
fake_config_get (EnsPlugin *self, const char *key)
{
  if (strcmp (key, "providers") == 0)
    return g_variant_ref_sink (g_variant_new_strv ((const char *const *) providers, -1));
  return NULL;
}

static const char *
fake_plugin_id (EnsPlugin *self)
{
  return g_getenv ("ENS_FAKE_PLUGIN_ID");
}

static GSettings *
fake_settings_new (EnsPlugin *self, const char *schema_id, const char *path)
{
  g_autoptr (GSettingsSchema) schema = g_settings_schema_source_lookup (schemas, schema_id, FALSE);

  if (!schema)
    return NULL;
  return g_settings_new_full (schema, backend, path);
}

static FakeCompletion *
check_open (EnsCompletion *completion)
{
  FakeCompletion *c = (FakeCompletion *) completion;

  if (c->ends > 0)
    c->after_end++;
  return c;
}

static void
fake_chunk (EnsCompletion *completion, const char *text)
{
  FakeCompletion *c = check_open (completion);
  g_ptr_array_add (c->chunks, g_strdup (text));
}

static void
fake_event (EnsCompletion *completion, const char *type, JsonNode *data)
{
  FakeCompletion *c = check_open (completion);
  g_autofree char *json = data ? json_to_string (data, FALSE) : g_strdup ("null");
  g_ptr_array_add (c->events, g_strdup_printf ("%s %s", type, json));
}

static void
fake_finish (EnsCompletion *completion, JsonNode *result)
{
  FakeCompletion *c = check_open (completion);

  c->ends++;
  c->ended_us = g_get_monotonic_time ();
  if (!c->result && !c->fail_code)
    c->result = json_node_copy (result);
}

static void
fake_fail (EnsCompletion *completion, const char *code, const char *message)
{
  FakeCompletion *c = check_open (completion);

  c->ends++;
  c->ended_us = g_get_monotonic_time ();
  if (!c->result && !c->fail_code)
    {
      c->fail_code = g_strdup (code);
      c->fail_message = g_strdup (message);
    }
  g_printerr ("# completion failed: %s: %s\n", code, message);
}

static void
remove_temp_files (void)
{
  for (guint i = 0; temp_files && i < temp_files->len; i++)
    g_unlink (g_ptr_array_index (temp_files, i));
}

void
fake_host_init (void)
{
  g_autoptr (GError) error = NULL;
  const char *dir = g_getenv ("ENS_SCHEMA_DIR");

  /* The tests talk to 127.0.0.1; a proxy from the environment must not. */
  g_unsetenv ("http_proxy");
  g_unsetenv ("HTTP_PROXY");
  g_unsetenv ("https_proxy");
  g_unsetenv ("HTTPS_PROXY");
  g_unsetenv ("all_proxy");
  g_unsetenv ("ALL_PROXY");
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);

  g_assert_nonnull (dir);
  schemas = g_settings_schema_source_new_from_directory (dir, g_settings_schema_source_get_default (), FALSE,
                                                         &error);
  g_assert_no_error (error);
  backend = g_memory_settings_backend_new ();
  providers = g_new0 (char *, 1);
  temp_files = g_ptr_array_new_with_free_func (g_free);
  atexit (remove_temp_files);

  host.struct_size = sizeof (EnsHost);
  host.abi_major = ENS_ABI_MAJOR;
  host.abi_minor = ENS_ABI_MINOR;
  host.log = fake_log;
  host.config_get = fake_config_get;
  host.plugin_id = fake_plugin_id;
  host.settings_new = fake_settings_new;
  host.completion_chunk = fake_chunk;
  host.completion_event = fake_event;
  host.completion_finish = fake_finish;
  host.completion_fail = fake_fail;
}

const EnsHost *
fake_host (void)
{
  return &host;
}

EnsPlugin *
fake_plugin_self (void)
{
  static int token;
  return (EnsPlugin *) &token; /* never dereferenced */
}

void
fake_host_set_providers (const char *const *names)
{
  g_strfreev (providers);
  providers = g_strdupv ((char **) names);
}

GSettings *
fake_host_provider_settings (const char *name)
{
  g_autofree char *path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", name);
  return fake_settings_new (NULL, "org.ensemble.Provider", path);
}

const EnsPluginDesc *
fake_plugin_load (const char *env_var)
{
  const char *path = g_getenv (env_var);
  GModule *module;
  EnsPluginQueryFunc query = NULL;

  g_assert_nonnull (path);
  module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (!module)
    g_error ("cannot load %s: %s", path, g_module_error ());
  g_assert_true (g_module_symbol (module, ENS_PLUGIN_QUERY_SYMBOL, (gpointer *) &query));
  g_module_make_resident (module);
  return query ();
}

FakeCompletion *
fake_completion_new (void)
{
  FakeCompletion *c = g_new0 (FakeCompletion, 1);

  c->chunks = g_ptr_array_new_with_free_func (g_free);
  c->events = g_ptr_array_new_with_free_func (g_free);
  return c;
}

void
fake_completion_free (FakeCompletion *c)
{
  g_ptr_array_unref (c->chunks);
  g_ptr_array_unref (c->events);
  if (c->result)
    json_node_unref (c->result);
  g_free (c->fail_code);
  g_free (c->fail_message);
  g_free (c->text);
  g_free (c);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

gboolean
fake_run_until (const gboolean *flag, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, set_flag, &expired);

  while (!*flag && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return *flag;
}

void
fake_run_for (guint ms)
{
  gboolean never = FALSE;
  fake_run_until (&never, ms);
}

gboolean
fake_completion_wait (FakeCompletion *c, guint timeout_ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (timeout_ms, set_flag, &expired);

  while (c->ends == 0 && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return c->ends > 0;
}

const char *
fake_completion_text (FakeCompletion *c)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < c->chunks->len; i++)
    g_string_append (s, g_ptr_array_index (c->chunks, i));
  g_free (c->text);
  c->text = g_string_free (s, FALSE);
  return c->text;
}

JsonObject *
fake_completion_result (FakeCompletion *c)
{
  return c->result && JSON_NODE_HOLDS_OBJECT (c->result) ? json_node_get_object (c->result) : NULL;
}

/* ------------------------------------------------------------------ server */

typedef struct {
  SoupServerMessage *msg; /* ref */
  GStrv pieces;
  guint next, interval_ms, timer;
  gboolean hang, repeat, finished;
  gboolean *closed;
  gulong finished_id, disconnected_id;
} Stream;

static void
stream_free (Stream *s)
{
  if (s->timer)
    g_source_remove (s->timer);
  g_signal_handler_disconnect (s->msg, s->finished_id);
  g_signal_handler_disconnect (s->msg, s->disconnected_id);
  g_object_unref (s->msg);
  g_strfreev (s->pieces);
  g_free (s);
}

static gboolean
stream_free_idle (gpointer data)
{
  stream_free (data);
  return G_SOURCE_REMOVE;
}

static void
on_stream_gone (SoupServerMessage *msg, gpointer data)
{
  Stream *s = data;

  if (s->closed)
    *s->closed = TRUE;
  if (s->finished)
    return;
  s->finished = TRUE;
  if (s->timer)
    g_source_remove (s->timer);
  s->timer = 0;
  /* Not from inside the signal emission. */
  g_idle_add (stream_free_idle, s);
}

static gboolean
stream_step (gpointer data)
{
  Stream *s = data;
  SoupMessageBody *body = soup_server_message_get_response_body (s->msg);
  guint n = g_strv_length (s->pieces);

  s->timer = 0;
  if (s->finished)
    return G_SOURCE_REMOVE;
  if (s->next < n)
    {
      const char *p = s->pieces[s->next++];
      soup_message_body_append (body, SOUP_MEMORY_COPY, p, strlen (p));
    }
  else if (s->repeat && n > 0)
    {
      const char *p = s->pieces[n - 1];
      soup_message_body_append (body, SOUP_MEMORY_COPY, p, strlen (p));
    }
  if (s->next >= n && !s->hang && !s->repeat)
    {
      soup_message_body_complete (body);
      soup_server_message_unpause (s->msg);
      return G_SOURCE_REMOVE; /* freed when the message finishes */
    }
  soup_server_message_unpause (s->msg);
  if (s->next < n || s->repeat)
    s->timer = g_timeout_add (s->interval_ms, stream_step, s);
  return G_SOURCE_REMOVE;
}

void
fake_server_stream (SoupServerMessage *msg, const char *content_type, const char *const *pieces,
                    guint interval_ms, gboolean hang, gboolean repeat, gboolean *closed)
{
  Stream *s = g_new0 (Stream, 1);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  s->msg = g_object_ref (msg);
  s->pieces = g_strdupv ((char **) pieces);
  s->interval_ms = interval_ms;
  s->hang = hang;
  s->repeat = repeat;
  s->closed = closed;
  s->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (on_stream_gone), s);
  s->disconnected_id = g_signal_connect (msg, "disconnected", G_CALLBACK (on_stream_gone), s);
  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  soup_message_headers_set_content_type (h, content_type, NULL);
  soup_server_message_pause (msg);
  s->timer = g_timeout_add (1, stream_step, s);
}

void
fake_server_hang (SoupServerMessage *msg)
{
  soup_server_message_pause (msg);
}

void
fake_server_reply (SoupServerMessage *msg, guint status, const char *content_type, const char *body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY, body, strlen (body));
}

JsonNode *
fake_server_request_json (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  if (!json_parser_load_from_data (parser, data, (gssize) len, NULL) || !json_parser_get_root (parser))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

char *
fake_server_start (SoupServer **server, SoupServerCallback callback, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  GSList *uris;
  char *url;
  gsize len;

  *server = soup_server_new (NULL, NULL);
  soup_server_add_handler (*server, NULL, callback, user_data, NULL);
  soup_server_listen (*server, addr, 0, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (*server);
  g_assert_nonnull (uris);
  url = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    url[--len] = '\0';
  return url;
}

char *
fake_key_file (const char *key)
{
  g_autoptr (GError) error = NULL;
  char *path = NULL;
  int fd = g_file_open_tmp ("ens-key-XXXXXX", &path, &error);
  g_autofree char *text = g_strdup_printf ("%s\nsecond line ignored\n", key);

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  close (fd);
  g_ptr_array_add (temp_files, g_strdup (path));
  return path;
}
