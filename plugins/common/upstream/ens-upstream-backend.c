/* ens-upstream-backend.c — see ens-upstream-backend.h.
 *
 * Connections are reused: every completion is a POST, sent on an idle
 * pooled connection when there is one (ens-upstream-pool.c); the call
 * (ens-upstream-call.c) reads every answer to its end, or lets the pool
 * read the rest, so its connection goes back to the pool; a request whose
 * reused connection turns out to be closed before any answer came is sent
 * once more on a new connection. */
#include <libsoup/soup.h>

#include "ens-upstream-backend.h"

#include <string.h>

EnsUpstreamBackend *
ens_upstream_backend_ref (EnsUpstreamBackend *backend)
{
  g_atomic_ref_count_inc (&backend->ref);
  return backend;
}

static void
wipe (char *secret)
{
  if (secret)
    memset (secret, 0, strlen (secret));
  g_free (secret);
}

/* Drops what was made for the endpoints (the heads carry the key). */
static void
forget_endpoints (EnsUpstreamBackend *b)
{
  for (guint i = 0; i < 2; i++)
    {
      for (guint j = 0; j < 2; j++)
        if (b->heads[i][j])
          {
            memset (b->heads[i][j]->str, 0, b->heads[i][j]->len);
            g_string_free (g_steal_pointer (&b->heads[i][j]), TRUE);
          }
      b->endpoint_pools[i] = NULL; /* b->pools owns them */
    }
}

void
ens_upstream_backend_unref (EnsUpstreamBackend *b)
{
  if (!b || !g_atomic_ref_count_dec (&b->ref))
    return;
  g_free (b->name);
  g_free (b->base_url);
  wipe (b->api_key);
  g_strfreev (b->models);
  g_hash_table_unref (b->model_map);
  g_strfreev (b->capabilities);
  g_strfreev (b->embedding_models);
  g_free (b->url);
  g_clear_pointer (&b->uri, g_uri_unref);
  g_clear_pointer (&b->embeddings_uri, g_uri_unref);
  /* Header values carry the key. */
  for (guint i = 0; i < b->headers->len; i++)
    wipe (g_ptr_array_index (b->headers, i));
  g_ptr_array_unref (b->headers);
  g_ptr_array_unref (b->pools);
  g_ptr_array_unref (b->pool_keys);
  forget_endpoints (b);
  g_free (b);
}

const char *
ens_upstream_backend_model (EnsUpstreamBackend *backend, const char *requested)
{
  const char *mapped;

  if (!requested || !*requested)
    requested = backend->models && backend->models[0] ? backend->models[0] : NULL;
  if (!requested)
    return NULL;
  mapped = g_hash_table_lookup (backend->model_map, requested);
  return mapped && *mapped ? mapped : requested;
}

/* (transfer full) the key: api-key-file's first line, else $api-key-env. */
static char *
load_api_key (const EnsHost *host, EnsPlugin *self, const char *name, GSettings *s)
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
        ENS_LOG (host, self, G_LOG_LEVEL_WARNING, "backend %s: cannot read api-key-file: %s", name, error->message);
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

EnsUpstreamBackend *
ens_upstream_backend_load (const EnsHost *host, EnsPlugin *self, const char *name, GSettings *s)
{
  EnsUpstreamBackend *b = g_new0 (EnsUpstreamBackend, 1);
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
  b->api_key = load_api_key (host, self, name, s);
  b->models = g_settings_get_strv (s, "models");
  b->model_map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_variant_iter_init (&iter, map);
  while (g_variant_iter_next (&iter, "{&s&s}", &from, &to))
    g_hash_table_insert (b->model_map, g_strdup (from), g_strdup (to));
  b->capabilities = g_settings_get_strv (s, "capabilities");
  b->embedding_models = g_settings_get_strv (s, "embedding-models");
  b->quality = g_settings_get_double (s, "quality");
  b->cost_input = g_settings_get_double (s, "cost-input-per-1k");
  b->cost_output = g_settings_get_double (s, "cost-output-per-1k");
  b->latency_ms = g_settings_get_uint (s, "latency-ms");
  b->context_window = g_settings_get_uint (s, "context-window");
  b->max_concurrency = MAX (g_settings_get_uint (s, "max-concurrency"), 1);
  b->timeout_ms = MAX (g_settings_get_uint (s, "timeout-ms"), 1);
  b->max_retries = g_settings_get_uint (s, "max-retries");
  b->idle_timeout_s = MAX (g_settings_get_uint (s, "idle-timeout-s"), 1);
  b->max_line_bytes = MAX (g_settings_get_uint (s, "max-line-bytes"), 1024);
  b->max_answer_bytes = MAX (g_settings_get_uint (s, "max-answer-bytes"), 1024);
  b->max_tool_calls = g_settings_get_uint (s, "max-tool-calls");
  b->max_output_tokens = g_settings_get_uint (s, "max-output-tokens");
  b->headers = g_ptr_array_new ();
  /* The pools: as many connections as completions may run at once.  Our
   * own timer bounds each request (a model may think quietly for a
   * minute). */
  b->pools = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_upstream_pool_free);
  b->pool_keys = g_ptr_array_new_with_free_func (g_free);
  return b;
}

/* (transfer full) @url parsed when it is an http(s) URL, else NULL. */
static GUri *
http_uri (const char *url)
{
  GUri *uri = url ? g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL) : NULL;

  if (uri && g_strcmp0 (g_uri_get_scheme (uri), "http") != 0 && g_strcmp0 (g_uri_get_scheme (uri), "https") != 0)
    g_clear_pointer (&uri, g_uri_unref);
  return uri;
}

void
ens_upstream_backend_set_url (EnsUpstreamBackend *b, const char *url)
{
  g_free (b->url);
  g_clear_pointer (&b->uri, g_uri_unref);
  b->url = g_strdup (url);
  b->uri = http_uri (url);
  forget_endpoints (b);
}

void
ens_upstream_backend_set_embeddings_url (EnsUpstreamBackend *b, const char *url)
{
  g_clear_pointer (&b->embeddings_uri, g_uri_unref);
  b->embeddings_uri = http_uri (url);
  forget_endpoints (b);
}

void
ens_upstream_backend_add_header (EnsUpstreamBackend *b, const char *name, const char *value)
{
  g_ptr_array_add (b->headers, g_strdup (name));
  g_ptr_array_add (b->headers, g_strdup (value ? value : ""));
  forget_endpoints (b);
}

/* 0 for the endpoint, 1 for the embeddings endpoint, -1 for another URI. */
static int
endpoint (EnsUpstreamBackend *b, GUri *uri)
{
  return uri == b->uri ? 0 : uri == b->embeddings_uri ? 1 : -1;
}

/* TRUE when @s may go in a header line. */
static gboolean
header_safe (const char *s)
{
  return !strpbrk (s, "\r\n");
}

static void
write_head (EnsUpstreamBackend *b, GUri *uri, gboolean stream, GString *r)
{
  const char *host = g_uri_get_host (uri), *path = g_uri_get_path (uri), *query = g_uri_get_query (uri);
  int port = g_uri_get_port (uri);
  gboolean tls = g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0;

  g_string_append (r, "POST ");
  g_string_append (r, *path ? path : "/");
  if (query)
    {
      g_string_append_c (r, '?');
      g_string_append (r, query);
    }
  g_string_append (r, " HTTP/1.1\r\nHost: ");
  if (strchr (host, ':'))
    g_string_append_printf (r, "[%s]", host);
  else
    g_string_append (r, host);
  if (port > 0 && port != (tls ? 443 : 80))
    g_string_append_printf (r, ":%d", port);
  g_string_append (r, "\r\nUser-Agent: ensemble-provider/1.0\r\nAccept: ");
  g_string_append (r, stream ? "text/event-stream" : "application/json");
  g_string_append (r, "\r\n");
  for (guint i = 0; i + 1 < b->headers->len; i += 2)
    {
      const char *name = g_ptr_array_index (b->headers, i), *value = g_ptr_array_index (b->headers, i + 1);

      if (!*value || !header_safe (name) || !header_safe (value) || g_ascii_strcasecmp (name, "Accept") == 0 ||
          g_ascii_strcasecmp (name, "Content-Type") == 0 || g_ascii_strcasecmp (name, "Content-Length") == 0 ||
          g_ascii_strcasecmp (name, "Host") == 0)
        continue;
      g_string_append (r, name);
      g_string_append (r, ": ");
      g_string_append (r, value);
      g_string_append (r, "\r\n");
    }
}

void
ens_upstream_backend_append_head (EnsUpstreamBackend *b, GUri *uri, gboolean stream, GString *out)
{
  int e = endpoint (b, uri);
  GString **head = e < 0 ? NULL : &b->heads[e][stream != FALSE];

  if (!head)
    {
      write_head (b, uri, stream, out);
      return;
    }
  if (!*head)
    {
      *head = g_string_new (NULL);
      write_head (b, uri, stream, *head);
    }
  g_string_append_len (out, (*head)->str, (gssize) (*head)->len);
}

static EnsUpstreamPool *find_pool (EnsUpstreamBackend *b, GUri *uri);

EnsUpstreamPool *
ens_upstream_backend_pool (EnsUpstreamBackend *b, GUri *uri)
{
  int e = endpoint (b, uri);

  if (e >= 0 && !b->endpoint_pools[e])
    b->endpoint_pools[e] = find_pool (b, uri);
  return e >= 0 ? b->endpoint_pools[e] : find_pool (b, uri);
}

/* The pool of @uri's scheme://host:port, made on first use. */
static EnsUpstreamPool *
find_pool (EnsUpstreamBackend *b, GUri *uri)
{
  const char *scheme = g_uri_get_scheme (uri);
  gboolean tls = g_ascii_strcasecmp (scheme, "https") == 0;
  int port = g_uri_get_port (uri);
  g_autofree char *key = NULL;
  EnsUpstreamPool *pool;

  if (port <= 0)
    port = tls ? 443 : 80;
  key = g_strdup_printf ("%s://%s:%d", tls ? "https" : "http", g_uri_get_host (uri), port);
  for (guint i = 0; i < b->pool_keys->len; i++)
    if (strcmp (g_ptr_array_index (b->pool_keys, i), key) == 0)
      return g_ptr_array_index (b->pools, i);
  pool = ens_upstream_pool_new (tls ? "https" : "http", g_uri_get_host (uri), (guint16) port, b->max_concurrency,
                                b->idle_timeout_s);
  g_ptr_array_add (b->pools, pool);
  g_ptr_array_add (b->pool_keys, g_steal_pointer (&key));
  return pool;
}

guint
ens_upstream_backend_draining (EnsUpstreamBackend *b)
{
  guint n = 0;

  for (guint i = 0; i < b->pools->len; i++)
    n += ens_upstream_pool_draining (g_ptr_array_index (b->pools, i));
  return n;
}
