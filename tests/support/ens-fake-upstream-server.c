/* ens-fake-upstream-server — the scripted fake LLM upstream as a process,
 * for integration tests and benchmarks: the FakeUpstream of
 * ens-fake-upstream.h on a loopback port.
 *
 *   ens-fake-upstream-server [--port N] [--mode SCRIPT] [--delay MS]
 *                            [--chunks N] [--interval MS] [--status CODE]
 *
 * It listens on 127.0.0.1 (by default on a port the kernel picks), prints
 * that port alone on the first line of stdout once it accepts connections,
 * and serves until SIGTERM or SIGINT.  The options set the script every
 * request gets; a request changes it with an x-fake-mode header or a
 * /SCRIPT/v1/... path (the words are listed in ens-fake-upstream.h). */
#include "ens-fake-upstream.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>

static gboolean
on_signal (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  gint port = 0, delay = -1, chunks = -1, interval = -1, status = -1;
  g_autofree char *mode = NULL;
  GOptionEntry entries[] = {
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Port on 127.0.0.1 (default 0: one the kernel picks)", "N" },
    { "mode", 0, 0, G_OPTION_ARG_STRING, &mode, "The default script, e.g. stream,chunks=20,interval=10", "SCRIPT" },
    { "delay", 0, 0, G_OPTION_ARG_INT, &delay, "Wait before each answer", "MS" },
    { "chunks", 0, 0, G_OPTION_ARG_INT, &chunks, "Content chunks per answer", "N" },
    { "interval", 0, 0, G_OPTION_ARG_INT, &interval, "Between two streamed chunks", "MS" },
    { "status", 0, 0, G_OPTION_ARG_INT, &status, "Answer every request with this HTTP status", "CODE" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- a scripted fake LLM upstream on loopback");
  g_autoptr (GString) words = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (FakeUpstream) up = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  FakeScript script;

  signal (SIGPIPE, SIG_IGN);
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("ens-fake-upstream-server: %s\n", error->message);
      return 2;
    }
  if (port < 0 || port > 65535)
    {
      g_printerr ("ens-fake-upstream-server: --port must be 0..65535\n");
      return 2;
    }
  if (mode)
    g_string_append (words, mode);
  if (delay >= 0)
    g_string_append_printf (words, ",delay=%d", delay);
  if (chunks >= 0)
    g_string_append_printf (words, ",chunks=%d", chunks);
  if (interval >= 0)
    g_string_append_printf (words, ",interval=%d", interval);
  if (status >= 0)
    g_string_append_printf (words, ",status=%d", status);
  fake_script_init (&script);
  if (!fake_script_parse (&script, words->str, &error))
    {
      g_printerr ("ens-fake-upstream-server: %s\n", error->message);
      return 2;
    }
  up = fake_upstream_new (&script, (guint16) port, &error);
  if (up == NULL)
    {
      g_printerr ("ens-fake-upstream-server: cannot listen on 127.0.0.1:%d: %s\n", port, error->message);
      return 1;
    }
  printf ("%u\n", fake_upstream_port (up));
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_unix_signal_add (SIGINT, on_signal, loop);
  g_main_loop_run (loop);
  return 0;
}
