/* ens-http-common.c — the upstream HTTP call shared by the HTTP providers.
 *
 * One call = one completion: POST the body, retry 429/5xx answers with
 * exponential backoff (or what retry-after asks), then either read the whole
 * body or read a server-sent event stream line by line.  Each attempt has
 * its own GCancellable; the host's cancellable, the per-request timer and
 * the end of the call all cancel it.
 *
 * Lifetime: a call is referenced by the provider's set of running calls
 * until it ends, and by each pending libsoup operation (which always
 * completes, cancelled or not).  Timer and idle callbacks take a reference
 * for their own duration only; ending a call removes them.
 *
 * libsoup 3 detail: a response body stream that is dropped unclosed is
 * closed synchronously, which reads the rest of the body and would block
 * the main loop.  So every body stream is closed with close_async(), with
 * the attempt's cancellable cancelled when the call was aborted (libsoup
 * then drops the connection; the server sees it close) and left alone when
 * the answer is complete (the connection goes back to the pool). */
#include "ens-http-common.h"

#include <string.h>

#define MAX_BODY_BYTES (64 * 1024 * 1024) /* a plain answer larger than this is refused */
#define MAX_ERROR_BYTES (64 * 1024)       /* of an error body, enough for its message */
#define MAX_RETRY_AFTER_MS 60000          /* a longer retry-after is capped */
#define READ_CHUNK 16384

/* ---------------------------------------------------------------- backends */

EnsHttpBackend *
ens_http_backend_ref (EnsHttpBackend *backend)
{
  g_atomic_ref_count_inc (&backend->ref);
  return backend;
}

void
ens_http_backend_unref (EnsHttpBackend *backend)
{
  if (!backend || !g_atomic_ref_count_dec (&backend->ref))
    return;
  g_free (backend->name);
  g_free (backend->base_url);
  if (backend->api_key)
    memset (backend->api_key, 0, strlen (backend->api_key));
  g_free (backend->api_key);
  g_strfreev (backend->models);
  g_hash_table_unref (backend->model_map);
  g_strfreev (backend->capabilities);
  if (backend->session)
    soup_session_abort (backend->session);
  g_clear_object (&backend->session);
  g_free (backend);
}

const char *
ens_http_backend_upstream_model (EnsHttpBackend *backend, const char *requested)
{
  const char *mapped;

  if (!requested || !*requested)
    requested = backend->models && backend->models[0] ? backend->models[0] : NULL;
  if (!requested)
    return NULL;
  mapped = g_hash_table_lookup (backend->model_map, requested);
  return mapped && *mapped ? mapped : requested;
}

static gboolean
valid_instance_name (const char *name)
{
  if (!name || !*name)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return TRUE;
}

/* (transfer full) the key: api-key-file's first line, else $api-key-env. */
static char *
load_api_key (EnsHttpProvider *provider, const char *name, GSettings *s)
{
  g_autofree char *file = g_settings_get_string (s, "api-key-file");
  g_autofree char *env = g_settings_get_string (s, "api-key-env");

  if (*file)
    {
      g_autofree char *text = NULL;
      g_autoptr (GError) error = NULL;

      if (g_file_get_contents (file, &text, NULL, &error))
        {
          char *nl = strpbrk (text, "\r\n");
          if (nl)
            *nl = '\0';
          g_strstrip (text);
          if (*text)
            return g_steal_pointer (&text);
        }
      else
        ENS_LOG (provider->host, provider->self, G_LOG_LEVEL_WARNING, "backend %s: cannot read api-key-file: %s",
                 name, error->message);
      return NULL;
    }
  if (*env)
    {
      const char *value = g_getenv (env);
      if (value && *value)
        return g_strstrip (g_strdup (value));
    }
  return NULL;
}

static EnsHttpBackend *
backend_load (EnsHttpProvider *provider, const char *name, GSettings *s)
{
  EnsHttpBackend *b = g_new0 (EnsHttpBackend, 1);
  g_autoptr (GVariant) map = g_settings_get_value (s, "model-map");
  g_autofree char *url = g_settings_get_string (s, "base-url");
  GVariantIter iter;
  const char *from, *to;
  gsize len;

  g_atomic_ref_count_init (&b->ref);
  b->name = g_strdup (name);
  g_strstrip (url);
  len = strlen (url);
  while (len > 0 && url[len - 1] == '/')
    url[--len] = '\0';
  b->base_url = g_steal_pointer (&url);
  b->api_key = load_api_key (provider, name, s);
  b->models = g_settings_get_strv (s, "models");
  b->model_map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_variant_iter_init (&iter, map);
  while (g_variant_iter_next (&iter, "{&s&s}", &from, &to))
    g_hash_table_insert (b->model_map, g_strdup (from), g_strdup (to));
  b->capabilities = g_settings_get_strv (s, "capabilities");
  b->quality = g_settings_get_double (s, "quality");
  b->cost_input = g_settings_get_double (s, "cost-input-per-1k");
  b->cost_output = g_settings_get_double (s, "cost-output-per-1k");
  b->latency_ms = g_settings_get_uint (s, "latency-ms");
  b->context_window = g_settings_get_uint (s, "context-window");
  b->max_concurrency = MAX (g_settings_get_uint (s, "max-concurrency"), 1);
  b->timeout_ms = MAX (g_settings_get_uint (s, "timeout-ms"), 1);
  b->max_retries = g_settings_get_uint (s, "max-retries");
  /* Our own timer bounds each request (libsoup's I/O timeout would cut off
   * a model that thinks quietly for a minute); no content decoder, so body
   * streams are libsoup's own and close asynchronously (see above). */
  b->session = soup_session_new_with_options ("max-conns", MAX (b->max_concurrency * 2, 10),
                                              "max-conns-per-host", MAX (b->max_concurrency, 2),
                                              "timeout", 0, "idle-timeout", 60,
                                              "user-agent", "ensemble-provider/1.0", NULL);
  soup_session_remove_feature_by_type (b->session, SOUP_TYPE_CONTENT_DECODER);
  return b;
}

static GPtrArray *
backends_load (EnsHttpProvider *provider)
{
  GPtrArray *backends = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_http_backend_unref);
  g_autoptr (GVariant) names = provider->host->config_get (provider->self, "providers");
  const char *own_id = provider->host->plugin_id (provider->self);
  GVariantIter iter;
  const char *name;

  if (!names || !g_variant_is_of_type (names, G_VARIANT_TYPE_STRING_ARRAY))
    return backends;
  g_variant_iter_init (&iter, names);
  while (g_variant_iter_next (&iter, "&s", &name))
    {
      g_autofree char *path = NULL;
      g_autofree char *plugin = NULL;
      g_autoptr (GSettings) s = NULL;

      if (!valid_instance_name (name))
        {
          ENS_LOG (provider->host, provider->self, G_LOG_LEVEL_WARNING,
                   "provider name \"%s\" skipped: only letters, digits, '-', '_' and '.' are allowed", name);
          continue;
        }
      path = g_strdup_printf ("/org/ensemble/daemon/providers/%s/", name);
      s = provider->host->settings_new (provider->self, "org.ensemble.Provider", path);
      if (!s)
        {
          ENS_LOG (provider->host, provider->self, G_LOG_LEVEL_WARNING,
                   "schema org.ensemble.Provider is not installed; no backends");
          break;
        }
      plugin = g_settings_get_string (s, "plugin");
      if (g_strcmp0 (plugin, provider->id) != 0 && g_strcmp0 (plugin, own_id) != 0)
        continue;
      g_ptr_array_add (backends, backend_load (provider, name, s));
    }
  return backends;
}

static void call_end (EnsHttpCall *call, gboolean graceful);
static EnsHttpCall *call_ref (EnsHttpCall *call);
static void call_unref (EnsHttpCall *call);

/* A body stream being closed gracefully (draining the rest of a finished
 * answer); the provider cancels it at stop. */
typedef struct {
  EnsHttpProvider *provider; /* NULL once the provider is gone */
  GCancellable *cancel;
} Drain;

EnsHttpProvider *
ens_http_provider_new (const EnsHost *host, EnsPlugin *self, const char *id)
{
  EnsHttpProvider *provider = g_new0 (EnsHttpProvider, 1);

  provider->host = host;
  provider->self = self;
  provider->id = id;
  provider->calls = g_hash_table_new_full (g_direct_hash, g_direct_equal, (GDestroyNotify) call_unref, NULL);
  provider->drains = g_hash_table_new (g_direct_hash, g_direct_equal);
  provider->backends = backends_load (provider);
  return provider;
}

void
ens_http_provider_free (EnsHttpProvider *provider)
{
  GHashTableIter iter;
  gpointer key;

  /* Ending a call removes it from the set, so take them one at a time. */
  while (g_hash_table_size (provider->calls) > 0)
    {
      EnsHttpCall *call;

      g_hash_table_iter_init (&iter, provider->calls);
      g_hash_table_iter_next (&iter, &key, NULL);
      call = call_ref (key);
      ens_http_call_fail (call, "CANCELLED", "the provider plugin is stopping");
      call_unref (call);
    }
  g_hash_table_iter_init (&iter, provider->drains);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Drain *d = key;
      d->provider = NULL;
      g_cancellable_cancel (d->cancel);
    }
  g_hash_table_unref (provider->drains);
  g_hash_table_unref (provider->calls);
  g_ptr_array_unref (provider->backends);
  g_free (provider);
}

JsonNode *
ens_http_provider_backends (EnsHttpProvider *provider)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *own_id = provider->host->plugin_id (provider->self);

  /* Running calls keep their own backend references. */
  g_ptr_array_unref (provider->backends);
  provider->backends = backends_load (provider);

  json_builder_begin_array (b);
  for (guint i = 0; i < provider->backends->len; i++)
    {
      EnsHttpBackend *be = g_ptr_array_index (provider->backends, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, be->name);
      json_builder_set_member_name (b, "provider");
      json_builder_add_string_value (b, own_id ? own_id : provider->id);
      json_builder_set_member_name (b, "models");
      json_builder_begin_array (b);
      for (char **m = be->models; m && *m; m++)
        json_builder_add_string_value (b, *m);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "quality");
      json_builder_add_double_value (b, be->quality);
      json_builder_set_member_name (b, "cost_per_1k_input");
      json_builder_add_double_value (b, be->cost_input);
      json_builder_set_member_name (b, "cost_per_1k_output");
      json_builder_add_double_value (b, be->cost_output);
      json_builder_set_member_name (b, "latency_ms");
      json_builder_add_int_value (b, be->latency_ms);
      json_builder_set_member_name (b, "context_window");
      json_builder_add_int_value (b, be->context_window);
      json_builder_set_member_name (b, "capabilities");
      json_builder_begin_array (b);
      for (char **c = be->capabilities; c && *c; c++)
        json_builder_add_string_value (b, *c);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "max_concurrency");
      json_builder_add_int_value (b, be->max_concurrency);
      json_builder_set_member_name (b, "local");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

EnsHttpBackend *
ens_http_provider_find (EnsHttpProvider *provider, const char *name)
{
  for (guint i = 0; name && i < provider->backends->len; i++)
    {
      EnsHttpBackend *be = g_ptr_array_index (provider->backends, i);
      if (strcmp (be->name, name) == 0)
        return be;
    }
  return NULL;
}

JsonNode *
ens_http_provider_describe (EnsHttpProvider *provider)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "backends");
  json_builder_begin_array (b);
  for (guint i = 0; i < provider->backends->len; i++)
    {
      EnsHttpBackend *be = g_ptr_array_index (provider->backends, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, be->name);
      json_builder_set_member_name (b, "base_url");
      json_builder_add_string_value (b, be->base_url);
      json_builder_set_member_name (b, "has_key");
      json_builder_add_boolean_value (b, be->api_key != NULL);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "running");
  json_builder_add_int_value (b, g_hash_table_size (provider->calls));
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* ------------------------------------------------------------------- calls */

struct _EnsHttpCall {
  gint ref;
  EnsHttpProvider *provider; /* NULL once ended */
  EnsHttpBackend *backend;   /* ref */
  EnsCompletion *completion; /* NULL once ended */
  GCancellable *cancellable; /* the host's, ref */
  gulong cancel_id;
  const EnsHttpCallClass *klass;
  gpointer data;
  GDestroyNotify free_data;
  gboolean ended, streamed, stream, io_pending, reading_error;

  char *url;
  GUri *uri;
  char **headers;
  GBytes *body;
  guint attempt;

  GCancellable *io_cancel; /* the current attempt */
  SoupMessage *msg;
  GInputStream *input;     /* libsoup's body stream */
  GDataInputStream *lines; /* over @input, not closing it */
  GByteArray *buf;
  gsize buf_limit;
  guint status;
  GString *sse_event, *sse_data;
  gboolean sse_has_data;

  guint timeout_id, retry_id, idle_id;
  char *later_code, *later_message;
};

static EnsHttpCall *
call_ref (EnsHttpCall *call)
{
  call->ref++;
  return call;
}

static void
call_unref (EnsHttpCall *call)
{
  if (--call->ref > 0)
    return;
  g_assert (call->ended && !call->input);
  if (call->free_data)
    call->free_data (call->data);
  ens_http_backend_unref (call->backend);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->io_cancel);
  g_clear_object (&call->msg);
  g_free (call->url);
  g_clear_pointer (&call->uri, g_uri_unref);
  g_strfreev (call->headers);
  g_clear_pointer (&call->body, g_bytes_unref);
  g_clear_pointer (&call->buf, g_byte_array_unref);
  if (call->sse_event)
    g_string_free (call->sse_event, TRUE);
  if (call->sse_data)
    g_string_free (call->sse_data, TRUE);
  g_free (call->later_code);
  g_free (call->later_message);
  g_free (call);
}

gpointer
ens_http_call_get_data (EnsHttpCall *call)
{
  return call->data;
}

EnsHttpBackend *
ens_http_call_get_backend (EnsHttpCall *call)
{
  return call->backend;
}

gboolean
ens_http_call_is_running (EnsHttpCall *call)
{
  return !call->ended;
}

static void
on_drained (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Drain *d = user_data;

  g_input_stream_close_finish (G_INPUT_STREAM (source), res, NULL);
  if (d && d->provider)
    g_hash_table_remove (d->provider->drains, d);
  if (d)
    {
      g_object_unref (d->cancel);
      g_free (d);
    }
}

/* Lets go of the attempt's HTTP message and body stream.  Only when no
 * operation is pending on the stream. */
static void
call_release_io (EnsHttpCall *call, gboolean graceful)
{
  Drain *d = NULL;

  g_assert (!call->io_pending);
  if (!graceful && call->io_cancel)
    g_cancellable_cancel (call->io_cancel);
  g_clear_object (&call->lines);
  if (call->input)
    {
      if (graceful && call->provider && !g_input_stream_is_closed (call->input))
        {
          d = g_new0 (Drain, 1);
          d->provider = call->provider;
          d->cancel = g_object_ref (call->io_cancel);
          g_hash_table_add (call->provider->drains, d);
        }
      g_input_stream_close_async (call->input, G_PRIORITY_DEFAULT, call->io_cancel, on_drained, d);
      g_clear_object (&call->input);
    }
  g_clear_object (&call->msg);
}

static void
remove_source (guint *id)
{
  if (*id)
    g_source_remove (*id);
  *id = 0;
}

/* Marks the call ended: no more host calls, sources removed, I/O let go
 * (or cancelled, for the pending operation's callback to let go). */
static void
call_end (EnsHttpCall *call, gboolean graceful)
{
  EnsHttpProvider *provider = call->provider;

  if (call->ended)
    return;
  call->ended = TRUE;
  call->completion = NULL;
  if (call->cancel_id)
    g_cancellable_disconnect (call->cancellable, call->cancel_id);
  call->cancel_id = 0;
  remove_source (&call->timeout_id);
  remove_source (&call->retry_id);
  remove_source (&call->idle_id);
  if (call->io_pending)
    g_cancellable_cancel (call->io_cancel);
  else
    call_release_io (call, graceful);
  call->provider = NULL;
  if (provider)
    g_hash_table_remove (provider->calls, call); /* drops the set's reference */
}

void
ens_http_call_chunk (EnsHttpCall *call, const char *text)
{
  if (call->ended || !text || !*text)
    return;
  call->streamed = TRUE;
  call->provider->host->completion_chunk (call->completion, text);
}

void
ens_http_call_event (EnsHttpCall *call, const char *type, JsonNode *data)
{
  if (call->ended)
    return;
  call->provider->host->completion_event (call->completion, type, data);
}

void
ens_http_call_finish (EnsHttpCall *call, JsonNode *result)
{
  if (call->ended)
    return;
  call->provider->host->completion_finish (call->completion, result);
  call_end (call, TRUE);
}

void
ens_http_call_fail (EnsHttpCall *call, const char *code, const char *message)
{
  if (call->ended)
    return;
  call->provider->host->completion_fail (call->completion, code, message);
  call_end (call, FALSE);
}

static gboolean
on_idle (gpointer user_data)
{
  EnsHttpCall *call = call_ref (user_data);

  call->idle_id = 0;
  if (call->later_code)
    ens_http_call_fail (call, call->later_code, call->later_message);
  else
    ens_http_call_fail (call, "CANCELLED", "cancelled by the requester");
  call_unref (call);
  return G_SOURCE_REMOVE;
}

/* The host's cancellable fired.  Reports from an idle callback: a
 * "cancelled" handler may not disconnect itself. */
static void
on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  EnsHttpCall *call = user_data;

  /* The attempt is cancelled by the idle callback, through call_end: an
   * I/O callback seeing it cancelled first would report the wrong error. */
  if (!call->idle_id)
    call->idle_id = g_idle_add_full (G_PRIORITY_HIGH, on_idle, call, NULL);
}

EnsHttpCall *
ens_http_call_new (EnsHttpProvider *provider, EnsHttpBackend *backend, EnsCompletion *completion,
                   GCancellable *cancellable, const EnsHttpCallClass *klass, gpointer data,
                   GDestroyNotify free_data)
{
  EnsHttpCall *call = g_new0 (EnsHttpCall, 1);

  call->ref = 1; /* the provider's set */
  call->provider = provider;
  call->backend = backend ? ens_http_backend_ref (backend) : NULL;
  call->completion = completion;
  call->klass = klass;
  call->data = data;
  call->free_data = free_data;
  g_hash_table_add (provider->calls, call);
  if (cancellable)
    {
      call->cancellable = g_object_ref (cancellable);
      call->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled), call, NULL);
    }
  return call;
}

void
ens_http_call_fail_later (EnsHttpCall *call, const char *code, const char *message)
{
  if (call->ended || call->later_code)
    return;
  call->later_code = g_strdup (code);
  call->later_message = g_strdup (message);
  if (!call->idle_id)
    call->idle_id = g_idle_add_full (G_PRIORITY_HIGH, on_idle, call, NULL);
}

static gboolean
on_timeout (gpointer user_data)
{
  EnsHttpCall *call = call_ref (user_data);
  g_autofree char *text = NULL;

  call->timeout_id = 0;
  text = g_strdup_printf ("%s did not answer within %u ms", call->backend->name, call->backend->timeout_ms);
  ens_http_call_fail (call, "TIMEOUT", text);
  call_unref (call);
  return G_SOURCE_REMOVE;
}

static void
arm_timeout (EnsHttpCall *call)
{
  remove_source (&call->timeout_id);
  call->timeout_id = g_timeout_add (call->backend->timeout_ms, on_timeout, call);
}

static void attempt_start (EnsHttpCall *call);

static gboolean
on_retry (gpointer user_data)
{
  EnsHttpCall *call = call_ref (user_data);

  call->retry_id = 0;
  attempt_start (call);
  call_unref (call);
  return G_SOURCE_REMOVE;
}

/* A non-2xx answer, its body read: retry it or fail the call. */
static void
handle_http_error (EnsHttpCall *call)
{
  guint status = call->status;
  EnsHttpBackend *be = call->backend;
  g_autofree char *detail = ens_http_error_message_from_body ((const char *) call->buf->data, call->buf->len);
  g_autofree char *text = g_strdup_printf ("%s answered HTTP %u: %s", be->name, status, detail);
  gboolean retryable = status == 429 || status >= 500;

  if (retryable && call->attempt < be->max_retries && !call->streamed)
    {
      gint64 after = ens_http_retry_after_ms (soup_message_get_response_headers (call->msg));
      guint delay = after >= 0 ? (guint) MIN (after, MAX_RETRY_AFTER_MS) : ens_http_backoff_ms (call->attempt);

      ENS_LOG (call->provider->host, call->provider->self, G_LOG_LEVEL_INFO, "%s; retry %u of %u in %u ms", text,
               call->attempt + 1, be->max_retries, delay);
      remove_source (&call->timeout_id);
      call_release_io (call, TRUE);
      call->attempt++;
      call->retry_id = g_timeout_add (delay, on_retry, call);
      return;
    }
  ens_http_call_fail (call, ens_http_error_code_for_status (status), text);
}

static void read_bytes_next (EnsHttpCall *call);

static void
on_read_bytes (GObject *source, GAsyncResult *res, gpointer user_data)
{
  EnsHttpCall *call = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, &error);

  call->io_pending = FALSE;
  if (call->ended)
    call_release_io (call, FALSE);
  else if (!bytes)
    {
      g_autofree char *text = g_strdup_printf ("%s: reading the answer failed: %s", call->backend->name,
                                               error->message);
      ens_http_call_fail (call, "UPSTREAM_ERROR", text);
    }
  else if (g_bytes_get_size (bytes) > 0 && call->buf->len + g_bytes_get_size (bytes) > call->buf_limit &&
           !call->reading_error)
    {
      g_autofree char *text = g_strdup_printf ("%s: answer larger than %u bytes", call->backend->name,
                                               (guint) call->buf_limit);
      ens_http_call_fail (call, "UPSTREAM_ERROR", text);
    }
  else if (g_bytes_get_size (bytes) > 0 && call->buf->len < call->buf_limit)
    {
      gsize n = MIN (g_bytes_get_size (bytes), call->buf_limit - call->buf->len);
      g_byte_array_append (call->buf, g_bytes_get_data (bytes, NULL), n);
      read_bytes_next (call);
    }
  else if (call->reading_error)
    handle_http_error (call);
  else
    {
      const EnsHttpCallClass *klass = call->klass;

      /* At the end of the body: closing is immediate, the connection is reused. */
      remove_source (&call->timeout_id);
      call_release_io (call, TRUE);
      g_byte_array_append (call->buf, (const guint8 *) "", 1); /* NUL for parsers, not counted */
      klass->plain_body (call, (const char *) call->buf->data, call->buf->len - 1);
      if (!call->ended)
        ens_http_call_fail (call, "UPSTREAM_ERROR", "the provider did not end the call"); /* a bug */
    }
  call_unref (call);
}

static void
read_bytes_next (EnsHttpCall *call)
{
  call->io_pending = TRUE;
  g_input_stream_read_bytes_async (call->input, READ_CHUNK, G_PRIORITY_DEFAULT, call->io_cancel, on_read_bytes,
                                   call_ref (call));
}

/* One complete SSE event (a blank line, or the end of the stream). */
static void
sse_dispatch (EnsHttpCall *call)
{
  if (call->sse_has_data)
    call->klass->sse_event (call, call->sse_event->len ? call->sse_event->str : NULL, call->sse_data->str);
  g_string_truncate (call->sse_event, 0);
  g_string_truncate (call->sse_data, 0);
  call->sse_has_data = FALSE;
}

static void
sse_line (EnsHttpCall *call, const char *line)
{
  const char *value;

  if (!*line)
    {
      sse_dispatch (call);
      return;
    }
  if (*line == ':')
    return; /* comment, e.g. keep-alive */
  value = strchr (line, ':');
  if (value)
    {
      value++;
      if (*value == ' ')
        value++;
    }
  else
    value = "";
  if (g_str_has_prefix (line, "data:") || strcmp (line, "data") == 0)
    {
      if (call->sse_has_data)
        g_string_append_c (call->sse_data, '\n');
      g_string_append (call->sse_data, value);
      call->sse_has_data = TRUE;
    }
  else if (g_str_has_prefix (line, "event:"))
    g_string_assign (call->sse_event, value);
  /* id: and retry: mean nothing for a single request. */
}

static void read_line_next (EnsHttpCall *call);

static void
on_line (GObject *source, GAsyncResult *res, gpointer user_data)
{
  EnsHttpCall *call = user_data;
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), res, &len, &error);

  call->io_pending = FALSE;
  if (call->ended)
    call_release_io (call, FALSE);
  else if (error)
    {
      g_autofree char *text = g_strdup_printf ("%s: the stream broke: %s", call->backend->name, error->message);
      ens_http_call_fail (call, "UPSTREAM_ERROR", text);
    }
  else if (!line)
    {
      sse_dispatch (call);
      if (!call->ended)
        {
          remove_source (&call->timeout_id);
          call_release_io (call, TRUE);
          call->klass->sse_eof (call);
        }
      if (!call->ended)
        {
          g_autofree char *text = g_strdup_printf ("%s: the stream ended before the answer was complete",
                                                   call->backend->name);
          ens_http_call_fail (call, "UPSTREAM_ERROR", text);
        }
    }
  else
    {
      arm_timeout (call); /* a stream times out when it stalls, not when it is long */
      sse_line (call, line);
      if (!call->ended)
        read_line_next (call);
      else if (call->input)
        call_release_io (call, TRUE);
    }
  call_unref (call);
}

static void
read_line_next (EnsHttpCall *call)
{
  call->io_pending = TRUE;
  g_data_input_stream_read_line_async (call->lines, G_PRIORITY_DEFAULT, call->io_cancel, on_line,
                                       call_ref (call));
}

static gboolean
is_event_stream (SoupMessage *msg)
{
  const char *type = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  return type && g_ascii_strcasecmp (type, "text/event-stream") == 0;
}

static void
on_sent (GObject *source, GAsyncResult *res, gpointer user_data)
{
  EnsHttpCall *call = user_data;
  g_autoptr (GError) error = NULL;
  GInputStream *input = soup_session_send_finish (SOUP_SESSION (source), res, &error);

  call->io_pending = FALSE;
  call->input = input;
  if (call->ended)
    call_release_io (call, FALSE);
  else if (!input)
    {
      g_autofree char *text = g_strdup_printf ("cannot reach %s at %s: %s", call->backend->name, call->url,
                                               error->message);
      ens_http_call_fail (call, "UPSTREAM_ERROR", text);
    }
  else
    {
      call->status = soup_message_get_status (call->msg);
      g_clear_pointer (&call->buf, g_byte_array_unref);
      call->buf = g_byte_array_new ();
      if (SOUP_STATUS_IS_SUCCESSFUL (call->status) && call->stream && is_event_stream (call->msg))
        {
          call->lines = g_data_input_stream_new (input);
          g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (call->lines), FALSE);
          g_data_input_stream_set_newline_type (call->lines, G_DATA_STREAM_NEWLINE_TYPE_ANY);
          if (!call->sse_event)
            {
              call->sse_event = g_string_new (NULL);
              call->sse_data = g_string_new (NULL);
            }
          read_line_next (call);
        }
      else
        {
          call->reading_error = !SOUP_STATUS_IS_SUCCESSFUL (call->status);
          call->buf_limit = call->reading_error ? MAX_ERROR_BYTES : MAX_BODY_BYTES;
          read_bytes_next (call);
        }
    }
  call_unref (call);
}

static void
attempt_start (EnsHttpCall *call)
{
  SoupMessageHeaders *h;

  g_clear_object (&call->io_cancel);
  call->io_cancel = g_cancellable_new ();
  g_clear_object (&call->msg);
  call->msg = soup_message_new_from_uri (SOUP_METHOD_POST, call->uri);
  h = soup_message_get_request_headers (call->msg);
  for (char **p = call->headers; p && p[0] && p[1]; p += 2)
    if (*p[1])
      soup_message_headers_replace (h, p[0], p[1]);
  soup_message_headers_replace (h, "Accept", call->stream ? "text/event-stream" : "application/json");
  soup_message_set_request_body_from_bytes (call->msg, "application/json", call->body);
  arm_timeout (call);
  call->io_pending = TRUE;
  soup_session_send_async (call->backend->session, call->msg, G_PRIORITY_DEFAULT, call->io_cancel, on_sent,
                           call_ref (call));
}

void
ens_http_call_send (EnsHttpCall *call, const char *url, const char *const *headers, GBytes *body,
                    gboolean stream)
{
  GPtrArray *h = g_ptr_array_new ();

  if (call->ended)
    {
      g_ptr_array_unref (h);
      return;
    }
  for (const char *const *p = headers; p && p[0]; p += 2)
    {
      g_ptr_array_add (h, g_strdup (p[0]));
      g_ptr_array_add (h, g_strdup (p[1] ? p[1] : ""));
    }
  g_ptr_array_add (h, NULL);
  call->headers = (char **) g_ptr_array_free (h, FALSE);
  call->url = g_strdup (url);
  call->body = g_bytes_ref (body);
  call->stream = stream;
  call->uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  if (!call->uri ||
      (g_strcmp0 (g_uri_get_scheme (call->uri), "http") != 0 && g_strcmp0 (g_uri_get_scheme (call->uri), "https") != 0))
    {
      g_autofree char *text = g_strdup_printf ("backend %s: base-url \"%s\" is not an http(s) URL",
                                               call->backend->name, call->backend->base_url);
      ens_http_call_fail_later (call, "NOT_CONFIGURED", text);
      return;
    }
  /* Cancelled before it started: the idle callback reports it. */
  if (call->cancellable && g_cancellable_is_cancelled (call->cancellable))
    return;
  attempt_start (call);
}

/* ------------------------------------------------------------ error helpers */

const char *
ens_http_error_code_for_status (guint status)
{
  if (status == 401 || status == 403)
    return "AUTH_FAILED";
  if (status == 429 || status == 529) /* 529: Anthropic's "overloaded" */
    return "RATE_LIMITED";
  if (status >= 400 && status < 500)
    return "BAD_REQUEST";
  return "UPSTREAM_ERROR";
}

static char *
shorten (const char *text, gsize len)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) len);
  glong chars;

  g_strstrip (valid);
  chars = g_utf8_strlen (valid, -1);
  if (!*valid)
    return g_strdup ("(no details)");
  if (chars <= 300)
    return g_steal_pointer (&valid);
  *g_utf8_offset_to_pointer (valid, 300) = '\0';
  return g_strconcat (valid, "…", NULL);
}

char *
ens_http_error_message_from_body (const char *body, gsize len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonObject *obj;

  if (!body || len == 0)
    return g_strdup ("(no details)");
  if (!json_parser_load_from_data (parser, body, (gssize) len, NULL) || !(root = json_parser_get_root (parser)) ||
      !JSON_NODE_HOLDS_OBJECT (root))
    return shorten (body, len);
  obj = json_node_get_object (root);
  if (ens_json_object (obj, "error"))
    {
      JsonObject *err = ens_json_object (obj, "error");
      const char *message = ens_json_string (err, "message");
      const char *type = ens_json_string (err, "type");

      if (message && type)
        return g_strdup_printf ("%s (%s)", message, type);
      if (message)
        return g_strdup (message);
    }
  if (ens_json_string (obj, "error"))
    return g_strdup (ens_json_string (obj, "error"));
  if (ens_json_string (obj, "message"))
    return g_strdup (ens_json_string (obj, "message"));
  return shorten (body, len);
}

guint
ens_http_backoff_ms (guint attempt)
{
  return attempt >= 4 ? 8000 : 500u << attempt;
}

gint64
ens_http_retry_after_ms (SoupMessageHeaders *headers)
{
  g_autofree char *ms = NULL;
  g_autofree char *s = NULL;
  guint64 n;

  if (!headers)
    return -1;
  ms = g_strdup (soup_message_headers_get_one (headers, "retry-after-ms"));
  s = g_strdup (soup_message_headers_get_one (headers, "retry-after"));
  if (ms && g_ascii_string_to_unsigned (g_strstrip (ms), 10, 0, G_MAXINT32, &n, NULL))
    return (gint64) n;
  if (!s)
    return -1;
  if (g_ascii_string_to_unsigned (g_strstrip (s), 10, 0, G_MAXINT32, &n, NULL))
    return (gint64) n * 1000;
  else
    {
      g_autoptr (GDateTime) when = soup_date_time_new_from_http_string (s);
      g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

      if (when)
        return MAX (g_date_time_difference (when, now) / 1000, 0);
    }
  return -1;
}

/* -------------------------------------------------------------- tool calls */

typedef struct {
  gint64 index;
  char *id, *name;
  GString *arguments;
  gboolean announced;
} ToolCall;

struct _EnsToolCalls {
  GPtrArray *calls; /* ToolCall*, in order of first appearance */
};

static void
tool_call_free (ToolCall *tc)
{
  g_free (tc->id);
  g_free (tc->name);
  g_string_free (tc->arguments, TRUE);
  g_free (tc);
}

EnsToolCalls *
ens_tool_calls_new (void)
{
  EnsToolCalls *calls = g_new0 (EnsToolCalls, 1);
  calls->calls = g_ptr_array_new_with_free_func ((GDestroyNotify) tool_call_free);
  return calls;
}

void
ens_tool_calls_free (EnsToolCalls *calls)
{
  if (!calls)
    return;
  g_ptr_array_unref (calls->calls);
  g_free (calls);
}

static ToolCall *
tool_call_get (EnsToolCalls *calls, gint64 index, gboolean create)
{
  ToolCall *tc;

  for (guint i = 0; i < calls->calls->len; i++)
    {
      tc = g_ptr_array_index (calls->calls, i);
      if (tc->index == index)
        return tc;
    }
  if (!create)
    return NULL;
  tc = g_new0 (ToolCall, 1);
  tc->index = index;
  tc->arguments = g_string_new (NULL);
  g_ptr_array_add (calls->calls, tc);
  return tc;
}

gboolean
ens_tool_calls_update (EnsToolCalls *calls, gint64 index, const char *id, const char *name, const char *arguments)
{
  ToolCall *tc = tool_call_get (calls, index, TRUE);

  if (id && *id && !tc->id)
    tc->id = g_strdup (id);
  if (name && *name)
    {
      /* Some servers send the name in pieces, like the arguments. */
      char *joined = g_strconcat (tc->name ? tc->name : "", name, NULL);
      g_free (tc->name);
      tc->name = joined;
    }
  if (arguments)
    g_string_append (tc->arguments, arguments);
  if (tc->name && !tc->announced)
    {
      tc->announced = TRUE;
      return TRUE;
    }
  return FALSE;
}

guint
ens_tool_calls_count (EnsToolCalls *calls)
{
  return calls->calls->len;
}

JsonNode *
ens_tool_calls_start_event (EnsToolCalls *calls, gint64 index)
{
  ToolCall *tc = tool_call_get (calls, index, FALSE);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "index");
  json_builder_add_int_value (b, index);
  json_builder_set_member_name (b, "id");
  if (tc && tc->id)
    json_builder_add_string_value (b, tc->id);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, tc && tc->name ? tc->name : "");
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

JsonNode *
ens_tool_calls_to_json (EnsToolCalls *calls)
{
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  for (guint i = 0; i < calls->calls->len; i++)
    {
      ToolCall *tc = g_ptr_array_index (calls->calls, i);
      JsonObject *obj = json_object_new ();
      g_autoptr (JsonParser) parser = json_parser_new ();
      const char *args = tc->arguments->len ? tc->arguments->str : "{}";

      json_object_set_string_member (obj, "id", tc->id ? tc->id : "");
      json_object_set_string_member (obj, "type", "function");
      json_object_set_string_member (obj, "name", tc->name ? tc->name : "");
      if (json_parser_load_from_data (parser, args, -1, NULL) && json_parser_get_root (parser))
        json_object_set_member (obj, "arguments", json_node_copy (json_parser_get_root (parser)));
      else
        json_object_set_string_member (obj, "arguments", args);
      json_array_add_object_element (array, obj);
    }
  json_node_take_array (node, array);
  return node;
}

/* -------------------------------------------------------------- JSON bits */

const char *
ens_json_string (JsonObject *obj, const char *member)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;

  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

JsonObject *
ens_json_object (JsonObject *obj, const char *member)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

gboolean
ens_json_number (JsonObject *obj, const char *member, double *out)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;
  GType type = n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_value_type (n) : G_TYPE_INVALID;

  if (type != G_TYPE_DOUBLE && type != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_double (n);
  return TRUE;
}

gboolean
ens_json_int (JsonObject *obj, const char *member, gint64 *out)
{
  JsonNode *n = obj ? json_object_get_member (obj, member) : NULL;

  if (!n || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int (n);
  return TRUE;
}

char *
ens_http_content_text (JsonNode *content)
{
  GString *text;

  if (!content || JSON_NODE_HOLDS_NULL (content))
    return g_strdup ("");
  if (JSON_NODE_HOLDS_VALUE (content) && json_node_get_value_type (content) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (content));
  if (!JSON_NODE_HOLDS_ARRAY (content))
    return g_strdup ("");
  text = g_string_new (NULL);
  for (guint i = 0; i < json_array_get_length (json_node_get_array (content)); i++)
    {
      JsonNode *part = json_array_get_element (json_node_get_array (content), i);
      const char *t = JSON_NODE_HOLDS_OBJECT (part) ? ens_json_string (json_node_get_object (part), "text") : NULL;
      if (t)
        g_string_append (text, t);
    }
  return g_string_free (text, FALSE);
}

GBytes *
ens_http_json_bytes (JsonNode *node)
{
  gsize len = 0;
  char *text = json_to_string (node, FALSE);

  len = strlen (text);
  return g_bytes_new_take (text, len);
}

/* Rough token count: about four characters a token for English text. */
static gint64
estimate_tokens (gsize chars)
{
  return (gint64) ((chars + 3) / 4);
}

JsonNode *
ens_http_result_new (JsonNode *request, const char *response, const char *model, gint64 input_tokens,
                     gint64 output_tokens, const char *finish_reason, JsonNode *tool_calls)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gboolean estimated = input_tokens < 0 || output_tokens < 0;

  if (input_tokens < 0)
    {
      JsonObject *req = request && JSON_NODE_HOLDS_OBJECT (request) ? json_node_get_object (request) : NULL;
      JsonNode *messages = req ? json_object_get_member (req, "messages") : NULL;
      gsize chars = 0;

      for (guint i = 0; messages && JSON_NODE_HOLDS_ARRAY (messages) &&
                        i < json_array_get_length (json_node_get_array (messages));
           i++)
        {
          JsonNode *m = json_array_get_element (json_node_get_array (messages), i);
          g_autofree char *t = JSON_NODE_HOLDS_OBJECT (m)
                                 ? ens_http_content_text (json_object_get_member (json_node_get_object (m), "content"))
                                 : NULL;
          chars += t ? g_utf8_strlen (t, -1) : 0;
        }
      input_tokens = estimate_tokens (chars);
    }
  if (output_tokens < 0)
    {
      gsize chars = response ? (gsize) g_utf8_strlen (response, -1) : 0;

      if (tool_calls)
        {
          g_autofree char *t = json_to_string (tool_calls, FALSE);
          chars += strlen (t);
        }
      output_tokens = estimate_tokens (chars);
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "response");
  json_builder_add_string_value (b, response ? response : "");
  json_builder_set_member_name (b, "model");
  json_builder_add_string_value (b, model ? model : "");
  json_builder_set_member_name (b, "usage");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input_tokens");
  json_builder_add_int_value (b, input_tokens);
  json_builder_set_member_name (b, "output_tokens");
  json_builder_add_int_value (b, output_tokens);
  if (estimated)
    {
      json_builder_set_member_name (b, "estimated");
      json_builder_add_boolean_value (b, TRUE);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "finish_reason");
  json_builder_add_string_value (b, finish_reason ? finish_reason : "stop");
  if (tool_calls && JSON_NODE_HOLDS_ARRAY (tool_calls) && json_array_get_length (json_node_get_array (tool_calls)) > 0)
    {
      json_builder_set_member_name (b, "tool_calls");
      json_builder_add_value (b, json_node_copy (tool_calls));
    }
  json_builder_end_object (b);
  return json_builder_get_root (b);
}
