/* ens-bench-soup — a bare libsoup-3 server, the gateway benchmark's
 * baseline for ensembled's HTTP server path: one handler answering every
 * request with the same JSON document, nothing else.
 *
 *   ens-bench-soup [--body-file FILE]
 *
 * Listens on a loopback port the kernel picks, prints it alone on the first
 * line of stdout, serves until SIGTERM/SIGINT.  The body is FILE's content
 * (the benchmark passes ensembled's own answer, so both send the same
 * bytes), by default {"status":"ok"}.  Not part of the test suite. */
#include <glib-unix.h>
#include <libsoup/soup.h>
#include <stdio.h>

static GBytes *body;

static void
handle (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  (void) server;
  (void) path;
  (void) query;
  (void) data;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, g_bytes_get_data (body, NULL),
                                    g_bytes_get_size (body));
}

static gboolean
on_signal (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupServer) server = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autoslist (GUri) uris = NULL;
  g_autofree char *text = NULL;
  gsize len = 0;

  if (argc == 3 && g_str_equal (argv[1], "--body-file"))
    {
      if (!g_file_get_contents (argv[2], &text, &len, &error))
        {
          g_printerr ("ens-bench-soup: %s\n", error->message);
          return 1;
        }
      body = g_bytes_new_take (g_steal_pointer (&text), len);
    }
  else if (argc == 1)
    body = g_bytes_new_static ("{\"status\":\"ok\"}", 15);
  else
    {
      g_printerr ("usage: ens-bench-soup [--body-file FILE]\n");
      return 2;
    }
  server = soup_server_new ("server-header", NULL, NULL);
  soup_server_add_handler (server, NULL, handle, NULL, NULL);
  if (!soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error))
    {
      g_printerr ("ens-bench-soup: %s\n", error->message);
      return 1;
    }
  uris = soup_server_get_uris (server);
  printf ("%d\n", g_uri_get_port (uris->data));
  fflush (stdout);
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_main_loop_run (loop);
  g_bytes_unref (body);
  return 0;
}
