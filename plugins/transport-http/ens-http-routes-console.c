/* ens-http-routes-console.c — the web console: its page at GET /, its files
 * at GET /console/{file} from the folder http-console-dir names (the
 * installed one by default), and the daemon's recent history at
 * GET /api/stats/history.
 *
 * The files are public like /health: they hold no data, and a visitor the
 * daemon does not serve must see the page to be asked for the token; every
 * request the page then makes carries the daemon's own authentication.
 *
 * A file is served only when its name is a plain one (letters, digits, '.',
 * '_', '-', not starting with '.'), so no request names anything outside
 * the folder, whatever its encoding; only regular files of the types below
 * are served.  Each answer carries an ETag (revalidated: no-cache), a
 * Content-Security-Policy that allows nothing but the daemon itself, and
 * nosniff. */
#include "ens-http.h"
#include "ens-host-config.h"

#include <string.h>
#include <sys/stat.h>

#define CONSOLE_MAX_NAME 64
#define CONSOLE_MAX_FILE (4 * 1024 * 1024)

static const struct {
  const char *suffix, *type;
} content_types[] = {
  { ".html", "text/html; charset=utf-8" },
  { ".js", "text/javascript; charset=utf-8" },
  { ".css", "text/css; charset=utf-8" },
  { ".svg", "image/svg+xml" },
  { ".json", "application/json" },
  { ".txt", "text/plain; charset=utf-8" },
};

static const char *
content_type_of (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (content_types); i++)
    if (g_str_has_suffix (name, content_types[i].suffix))
      return content_types[i].type;
  return NULL;
}

static gboolean
plain_name (const char *name)
{
  gsize len = name ? strlen (name) : 0;

  if (len == 0 || len > CONSOLE_MAX_NAME || name[0] == '.')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static void
security_headers (EnsHttpCall *call)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (ens_http_message (call));

  soup_message_headers_replace (h, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'");
  soup_message_headers_replace (h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (h, "Referrer-Policy", "no-referrer");
  soup_message_headers_replace (h, "X-Frame-Options", "DENY");
  soup_message_headers_replace (h, "Cross-Origin-Opener-Policy", "same-origin");
}

/* TRUE when the request's If-None-Match names @etag (or is "*"). */
static gboolean
etag_matches (EnsHttpCall *call, const char *etag)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (ens_http_message (call));
  const char *header = soup_message_headers_get_list (h, "If-None-Match");
  g_auto (GStrv) tags = NULL;

  if (header == NULL)
    return FALSE;
  tags = g_strsplit (header, ",", -1);
  for (guint i = 0; tags[i]; i++)
    {
      const char *tag = g_strstrip (tags[i]);
      if (g_str_has_prefix (tag, "W/"))
        tag += 2;
      if (strcmp (tag, "*") == 0 || strcmp (tag, etag) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
not_found (EnsHttpCall *call, const char *message)
{
  ens_http_reply_error (call, 404, "NOT_FOUND", message, NULL);
}

static void
serve_file (EnsHttpCall *call, const char *name)
{
  const EnsHost *host = ens_http_host (call);
  EnsPlugin *self = ens_http_self (call);
  g_autofree char *dir = ens_host_config_string (host, self, "http-console-dir", "");
  g_autofree char *path = NULL;
  g_autofree char *etag = NULL;
  g_autofree char *text = NULL;
  const char *type = content_type_of (name);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (ens_http_message (call));
  struct stat st;
  gsize len = 0;

  security_headers (call);
  if (dir[0] == '\0' || type == NULL)
    {
      not_found (call, "no such file in the web console");
      return;
    }
  path = g_build_filename (dir, name, NULL);
  if (stat (path, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > CONSOLE_MAX_FILE)
    {
      if (strcmp (name, "index.html") == 0)
        {
          ENS_LOG (host, self, G_LOG_LEVEL_WARNING, "the web console is not installed: no %s", path);
          not_found (call, "the web console's files are not installed (see the setting http-console-dir)");
        }
      else
        not_found (call, "no such file in the web console");
      return;
    }
  /* Size, change time and inode: what changes when the file is replaced. */
  etag = g_strdup_printf ("\"%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x\"",
                          (gint64) st.st_size, (gint64) st.st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) +
                                                 st.st_mtim.tv_nsec, (gint64) st.st_ino);
  soup_message_headers_replace (h, "ETag", etag);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  if (etag_matches (call, etag))
    {
      ens_http_reply_text (call, 304, type, "");
      return;
    }
  if (!g_file_get_contents (path, &text, &len, NULL) || memchr (text, '\0', len) != NULL)
    {
      /* Gone meanwhile, unreadable, or not text. */
      ens_http_reply_error (call, 500, "INTERNAL_ERROR", "the web console's file could not be read", NULL);
      return;
    }
  ens_http_reply_text (call, 200, type, text);
}

static void
route_index (EnsHttpCall *call)
{
  serve_file (call, "index.html");
}

static void
route_file (EnsHttpCall *call)
{
  const char *name = ens_http_param (call, "file");

  if (!plain_name (name))
    {
      security_headers (call);
      not_found (call, "no such file in the web console");
      return;
    }
  serve_file (call, name);
}

/* GET /api/stats/history?seconds=N: the stats.history verb. */
static void
route_stats_history (EnsHttpCall *call)
{
  const char *seconds = ens_http_query (call, "seconds");
  guint64 n = 0;
  JsonObject *obj = json_object_new ();
  g_autoptr (JsonNode) data = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (data, obj);
  if (seconds && !g_ascii_string_to_unsigned (seconds, 10, 1, 600, &n, NULL))
    {
      ens_http_reply_invalid (call, "seconds", "an integer from 1 to 600 (query parameter)");
      return;
    }
  if (seconds)
    json_object_set_int_member (obj, "seconds", (gint64) n);
  ens_http_core_reply (call, NULL, "stats.history", data);
}

const EnsHttpRoute ens_http_routes_console[] = {
  { "GET", "/", route_index, "console", "The web console (public: the page asks for the token when one is needed)",
    NULL, TRUE },
  { "GET", "/console/{file}", route_file, "console", "The web console's files (public)", NULL, TRUE },
  { "GET", "/api/stats/history", route_stats_history, "native",
    "The last minutes, one point a second: t, requests_per_s, deliveries_per_s, published_per_s, errors_per_s, "
    "completions_per_s, completion_latency_ms, connections, completions_running (?seconds=1..600)",
    NULL, FALSE },
  { NULL },
};
