/* ens-mcp-link-stdio.c — an MCP server started as a command, spoken to on
 * its stdin and stdout, one JSON-RPC message per line (MCP's stdio
 * transport).  Its stderr is dropped.  When it exits, or closes its stdout,
 * the link is closed, saying how. */
#include "ens-mcp-link.h"
#include "ens-jsonrpc.h"

#include <string.h>

typedef struct {
  EnsMcpLink link;
  GSubprocess *proc;
  GDataInputStream *out;  /* the server's stdout */
  GOutputStream *in;      /* its stdin */
  GCancellable *cancel;
  GQueue queue;           /* GBytes waiting to be written */
  guint refs;             /* one for the owner, one per pending operation */
  gboolean writing, closed, freed;
} StdioLink;

static StdioLink *
link_ref (StdioLink *l)
{
  l->refs++;
  return l;
}

static void
link_unref (StdioLink *l)
{
  if (--l->refs > 0)
    return;
  g_clear_object (&l->proc);
  g_clear_object (&l->out);
  g_object_unref (l->cancel);
  g_queue_clear_full (&l->queue, (GDestroyNotify) g_bytes_unref);
  g_free (l);
}

static void
closed (StdioLink *l, const char *why)
{
  if (l->closed)
    return;
  l->closed = TRUE;
  g_cancellable_cancel (l->cancel);
  l->link.on_closed (why, l->link.user_data);
}

static void flush (StdioLink *l);

static void
written (GObject *source, GAsyncResult *res, gpointer data)
{
  StdioLink *l = data;
  g_autoptr (GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, &error))
    {
      if (!l->freed)
        closed (l, "its stdin closed");
    }
  else if (!l->freed)
    {
      l->writing = FALSE;
      g_bytes_unref (g_queue_pop_head (&l->queue));
      flush (l);
    }
  link_unref (l);
}

static void
flush (StdioLink *l)
{
  GBytes *head = g_queue_peek_head (&l->queue);

  if (l->writing || head == NULL || l->closed)
    return;
  l->writing = TRUE;
  g_output_stream_write_all_async (l->in, g_bytes_get_data (head, NULL), g_bytes_get_size (head), G_PRIORITY_DEFAULT,
                                   l->cancel, written, link_ref (l));
}

static void
stdio_send (EnsMcpLink *link, JsonNode *msg)
{
  StdioLink *l = (StdioLink *) link;
  char *text = ens_jsonrpc_to_string (msg);
  gsize len = strlen (text);

  if (l->closed)
    {
      g_free (text);
      return;
    }
  text = g_realloc (text, len + 2);
  text[len] = '\n';
  text[len + 1] = '\0';
  g_queue_push_tail (&l->queue, g_bytes_new_take (text, len + 1));
  flush (l);
}

static void read_line (StdioLink *l);

static void
line_read (GObject *source, GAsyncResult *res, gpointer data)
{
  StdioLink *l = data;
  g_autoptr (GError) error = NULL;
  gsize len = 0;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), res, &len, &error);
  g_autoptr (JsonNode) msg = NULL;

  if (l->freed || l->closed)
    ;
  else if (line == NULL)
    {
      if (error)
        closed (l, error->message);
      /* else EOF: the exit (wait_done) says how it ended */
    }
  else if (len > l->link.max_message)
    closed (l, "it sent a message over the size limit");
  else
    {
      msg = l->link.parse (line, len, NULL);
      if (msg) /* anything else on stdout is not MCP: skipped */
        l->link.on_message (msg, l->link.user_data);
      if (!l->closed && !l->freed)
        read_line (l);
    }
  link_unref (l);
}

static void
read_line (StdioLink *l)
{
  g_data_input_stream_read_line_async (l->out, G_PRIORITY_DEFAULT, l->cancel, line_read, link_ref (l));
}

static void
wait_done (GObject *source, GAsyncResult *res, gpointer data)
{
  StdioLink *l = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *why = NULL;

  if (g_subprocess_wait_finish (G_SUBPROCESS (source), res, &error) && !l->freed)
    {
      if (g_subprocess_get_if_signaled (l->proc))
        why = g_strdup_printf ("it was killed by signal %d", g_subprocess_get_term_sig (l->proc));
      else
        why = g_strdup_printf ("it exited with status %d", g_subprocess_get_exit_status (l->proc));
      closed (l, why);
    }
  link_unref (l);
}

static void
stdio_free (EnsMcpLink *link)
{
  StdioLink *l = (StdioLink *) link;

  l->closed = TRUE;
  l->freed = TRUE;
  g_cancellable_cancel (l->cancel);
  g_subprocess_force_exit (l->proc);
  link_unref (l);
}

static const EnsMcpLinkClass stdio_class = { .send = stdio_send, .free = stdio_free };

EnsMcpLink *
ens_mcp_link_stdio_new (char **argv, gsize max_message, EnsMcpLinkMessageFunc on_message,
                        EnsMcpLinkClosedFunc on_closed, gpointer user_data, GError **error)
{
  GSubprocess *proc = g_subprocess_newv ((const char *const *) argv,
                                         G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                           G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                         error);
  StdioLink *l;

  if (proc == NULL)
    return NULL;
  l = g_new0 (StdioLink, 1);
  l->link.klass = &stdio_class;
  l->link.on_message = on_message;
  l->link.on_closed = on_closed;
  l->link.user_data = user_data;
  l->link.max_message = max_message;
  l->refs = 1;
  l->proc = proc;
  l->cancel = g_cancellable_new ();
  l->in = g_subprocess_get_stdin_pipe (proc);
  l->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_data_input_stream_set_newline_type (l->out, G_DATA_STREAM_NEWLINE_TYPE_LF);
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (l->out), 65536);
  g_queue_init (&l->queue);
  g_subprocess_wait_async (proc, l->cancel, wait_done, link_ref (l));
  read_line (l);
  return &l->link;
}

void
ens_mcp_link_send (EnsMcpLink *link, JsonNode *msg)
{
  link->klass->send (link, msg);
}

void
ens_mcp_link_free (EnsMcpLink *link)
{
  if (link)
    link->klass->free (link);
}
