/* fuzz-http.c — the request bodies (and query strings and path parameters)
 * of every HTTP route of every dialect (transport-http's ens-http-routes
 * library: native, Centerfire, KSI plan, Neolith, Rhetor, OpenAI), each route
 * handler run on a fake request (below) in place of libsoup's.
 *
 * Input: ANSWER METHOD ' ' PATH '\n' QUERY '\n' PARAM '\n' BODY — a byte for how
 * the route's requests are answered (an error among a few
 * codes; a request to an agent, which may be any process, may also succeed
 * with any data: here the request's own), the route as its table names it
 * ("POST /api/agents/{agent}/{action}"; any other text picks one by its
 * hash), the query string (k=v&k=v), the value of every {name} path
 * segment, the body.
 * Checks: every call is answered exactly once (a reply, or a stream that
 * ends); status 100-599; every JSON reply and every SSE data line is JSON
 * the core's parser accepts; an SSE event is one line; every request to the
 * core has an action.  A call still streaming at the end is dropped by its
 * client, as a vanishing peer would. */
#include "ens-fuzz.h"
#include "ens-http.h"
#include "ens-json-util.h"

#include <string.h>

struct _EnsHttpCall {
  const EnsHttpRoute *route;
  GHashTable *params, *query;
  const char *body_data;
  gsize body_len;
  JsonNode *body;
  GData *attached;
  guint replies;
  gboolean sse, sse_ended, gone;
  gboolean read_text; /* ens_http_read_text(): answers and events come with their data as text */
  guint answer; /* selector from the input */
  EnsMessage *pending; /* a request the core has not answered yet */
  EnsHttpAnswerFunc answer_func;
  gpointer answer_data;
  EnsHttpEventFunc event_func;
  gpointer event_data;
  void (*disconnect_func) (EnsHttpCall *call, gpointer data);
  gpointer disconnect_data;
  EnsHttpSseNoticeFunc notice;
  gpointer notice_data;
};

static GPtrArray *routes; /* const EnsHttpRoute* */

/* ---- the request ---- */

const EnsHost *ens_http_host (EnsHttpCall *call) { (void) call; return ens_fuzz_host (); }
EnsPlugin *ens_http_self (EnsHttpCall *call) { (void) call; return NULL; }
const EnsHttpRoute *ens_http_route (EnsHttpCall *call) { return call->route; }
SoupServerMessage *ens_http_message (EnsHttpCall *call) { (void) call; return NULL; }
const char *ens_http_base_url (EnsHttpCall *call) { (void) call; return "http://127.0.0.1:8090"; }
EnsHttp *ens_http_instance (EnsHttpCall *call) { (void) call; return NULL; }
void ens_http_metrics_text (EnsHttp *http, GString *out) { (void) http; (void) out; }

const char *
ens_http_param (EnsHttpCall *call, const char *name)
{
  return g_hash_table_lookup (call->params, name);
}

const char *
ens_http_query (EnsHttpCall *call, const char *name)
{
  return g_hash_table_lookup (call->query, name);
}

const char *
ens_http_request_body (EnsHttpCall *call, gsize *len)
{
  *len = call->body_len;
  return call->body_data;
}

JsonObject *
ens_http_body (EnsHttpCall *call)
{
  if (call->body == NULL)
    call->body = ens_http_parse_body (call, call->body_data, call->body_len);
  return call->body ? json_node_get_object (call->body) : NULL;
}

void
ens_http_attach (EnsHttpCall *call, const char *key, gpointer state, GDestroyNotify free_func)
{
  g_datalist_set_data_full (&call->attached, key, state, free_func);
}

/* ---- answering ---- */

static void
answered (EnsHttpCall *call, guint status)
{
  ENS_FUZZ_CHECK (call->replies == 0 && !call->sse, "route %s %s answered twice", call->route->method,
                  call->route->path);
  ENS_FUZZ_CHECK (status >= 100 && status <= 599, "status %u", status);
  call->replies++;
}

void
ens_http_reply_text (EnsHttpCall *call, guint status, const char *content_type, const char *text)
{
  answered (call, status);
  ENS_FUZZ_CHECK (content_type && text, "a reply without content");
}

void
ens_http_reply_json (EnsHttpCall *call, guint status, JsonNode *body)
{
  g_autofree char *text = ens_fuzz_host ()->json_to_string (body);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) back = ens_json_parse (text, strlen (text), &error);

  answered (call, status);
  ENS_FUZZ_CHECK (back != NULL, "route %s %s replied with what is not JSON (%s): %.300s", call->route->method,
                  call->route->path, error->message, text);
}

void
ens_http_reply_bytes (EnsHttpCall *call, guint status, const char *content_type, GBytes *body)
{
  gsize len;
  const char *data = g_bytes_get_data (body, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) back = NULL;

  answered (call, status);
  ENS_FUZZ_CHECK (content_type && data, "a reply without content");
  if (g_strcmp0 (content_type, "application/json") == 0)
    {
      back = ens_json_parse (data, len, &error);
      ENS_FUZZ_CHECK (back != NULL, "route %s %s replied with what is not JSON (%s): %.*s", call->route->method,
                      call->route->path, error->message, (int) MIN (len, 300), data);
    }
}

/* Nothing is kept: every request goes through its route. */
GBytes *
ens_http_cache_get (EnsHttpCall *call, const char *key, gint64 max_age_us)
{
  (void) call;
  (void) key;
  (void) max_age_us;
  return NULL;
}

void
ens_http_cache_put (EnsHttpCall *call, const char *key, GBytes *body)
{
  (void) call;
  (void) key;
  (void) body;
}

void
ens_http_sse_begin (EnsHttpCall *call)
{
  answered (call, 200);
  call->sse = TRUE;
}

void
ens_http_sse_send (EnsHttpCall *call, const char *event, const char *data)
{
  if (!call->sse || call->sse_ended)
    return;
  ENS_FUZZ_CHECK (event == NULL || strpbrk (event, "\r\n") == NULL, "an SSE event name over lines");
  ENS_FUZZ_CHECK (strpbrk (data, "\r\n") == NULL, "SSE data over lines: %.300s", data);
  if (strcmp (data, "[DONE]") != 0)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = ens_json_parse (data, strlen (data), &error);
      ENS_FUZZ_CHECK (node != NULL, "SSE data that is not JSON (%s): %.300s", error->message, data);
    }
}

/* A whole frame: "event: ..." and "data: ..." lines, a blank line. */
static void
check_frame (GBytes *frame)
{
  gsize size;
  const char *data = g_bytes_get_data (frame, &size);
  g_autofree char *text = g_strndup (data, size);
  g_auto (GStrv) lines = NULL;

  ENS_FUZZ_CHECK (size >= 2 && strlen (text) == size && g_str_has_suffix (text, "\n\n"), "a frame without its end");
  text[size - 2] = '\0';
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr (JsonNode) node = NULL;
      if (g_str_has_prefix (lines[i], "event: ") || lines[i][0] == ':')
        continue;
      ENS_FUZZ_CHECK (g_str_has_prefix (lines[i], "data: "), "a frame line that is no field: %.200s", lines[i]);
      node = ens_json_parse (lines[i] + 6, strlen (lines[i] + 6), NULL);
      ENS_FUZZ_CHECK (node != NULL, "frame data that is not JSON: %.300s", lines[i]);
    }
}

void
ens_http_sse_send_event (EnsHttpCall *call, GBytes *frame)
{
  if (!call->sse || call->sse_ended)
    return;
  check_frame (frame);
}

void
ens_http_sse_on_dropped (EnsHttpCall *call, EnsHttpSseNoticeFunc notice, gpointer data)
{
  call->notice = notice;
  call->notice_data = data;
}

void
ens_http_sse_end (EnsHttpCall *call)
{
  if (call->sse)
    call->sse_ended = TRUE;
}

/* ---- the core ---- */

static const char *const answer_codes[] = {
  ENS_ERR_AGENT_NOT_FOUND, ENS_ERR_INVALID_PARAMETERS, ENS_ERR_TIMEOUT, ENS_ERR_INTERNAL, "SESSION_NOT_FOUND",
  "BUDGET_EXCEEDED", ENS_ERR_NOT_AVAILABLE,
};

void
ens_http_core (EnsHttpCall *call, const char *agent, const char *action, JsonNode *data, guint32 timeout_ms,
               EnsHttpAnswerFunc func, gpointer user_data)
{
  const EnsHost *host = ens_fuzz_host ();
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);

  ENS_FUZZ_CHECK (action && action[0], "a request without an action");
  ENS_FUZZ_CHECK (agent == NULL || g_utf8_validate (agent, -1, NULL), "an agent name that is not UTF-8");
  g_clear_pointer (&call->pending, host->message_unref);
  init.id = "h1";
  init.agent = agent;
  init.action = action;
  init.data = data;
  init.timeout_ms = timeout_ms;
  call->pending = host->message_new (&init);
  /* The request must encode for an agent that is a process. */
  ens_fuzz_check_lines (host->message_encode (call->pending, host->encode_native));
  call->answer_func = func;
  call->answer_data = user_data;
}

void
ens_http_read_text (EnsHttpCall *call)
{
  call->read_text = TRUE;
}

void
ens_http_on_event (EnsHttpCall *call, EnsHttpEventFunc func, gpointer user_data)
{
  call->event_func = func;
  call->event_data = user_data;
}

const char *
ens_http_client_id (EnsHttpCall *call)
{
  (void) call;
  return "fuzz-node:1";
}

void
ens_http_on_disconnect (EnsHttpCall *call, void (*func) (EnsHttpCall *call, gpointer data), gpointer data)
{
  call->disconnect_func = func;
  call->disconnect_data = data;
}

/* ---- one request ---- */

static void
add_routes (const EnsHttpRoute *table)
{
  for (; table->method; table++)
    g_ptr_array_add (routes, (gpointer) table);
}

/* The JSON is the body: after the answer byte and three lines. */
size_t
LLVMFuzzerCustomMutator (uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
  size_t at = size ? 1 : 0;

  for (int lines = 0; lines < 3 && at < size; lines++)
    {
      const uint8_t *nl = memchr (data + at, '\n', size - at);
      at = nl ? (size_t) (nl + 1 - data) : size;
    }
  return ens_fuzz_mutate_json (data, size, max_size, seed, at);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  ens_fuzz_init ();
  routes = g_ptr_array_new ();
  add_routes (ens_http_routes_native);
  add_routes (ens_http_routes_openai);
  add_routes (ens_http_routes_embeddings);
  add_routes (ens_http_routes_ksi);
  add_routes (ens_http_routes_neolith);
  add_routes (ens_http_routes_rhetor);
  return 0;
}

/* The next line of @data (without its '\n'), made valid UTF-8 and free of
 * NUL: what the transport hands a route. */
static char *
take_line (const uint8_t **data, gsize *size)
{
  const uint8_t *nl = memchr (*data, '\n', *size);
  gsize n = nl ? (gsize) (nl - *data) : *size;
  g_autofree char *raw = g_strndup ((const char *) *data, n);
  char *line = g_utf8_make_valid (raw, -1);

  *data += nl ? n + 1 : n;
  *size -= nl ? n + 1 : n;
  return line;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const EnsHost *host = ens_fuzz_host ();
  EnsHttpCall call = { 0 };
  g_autofree char *query = NULL, *param = NULL;
  g_auto (GStrv) pairs = NULL;
  guint rounds = 0;

  if (size < 1)
    return 0;
  call.answer = data[0];
  data += 1;
  size -= 1;
  {
    g_autofree char *line = take_line (&data, &size);
    for (guint i = 0; i < routes->len && call.route == NULL; i++)
      {
        const EnsHttpRoute *r = g_ptr_array_index (routes, i);
        g_autofree char *name = g_strconcat (r->method, " ", r->path, NULL);
        if (strcmp (name, line) == 0)
          call.route = r;
      }
    if (call.route == NULL)
      call.route = g_ptr_array_index (routes, g_str_hash (line) % routes->len);
  }
  query = take_line (&data, &size);
  param = take_line (&data, &size);
  call.body_data = (const char *) data;
  call.body_len = size;

  call.query = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  pairs = g_strsplit (query, "&", -1);
  for (guint i = 0; pairs[i]; i++)
    {
      char *eq = strchr (pairs[i], '=');
      if (pairs[i][0] == '\0')
        continue;
      g_hash_table_replace (call.query, g_strndup (pairs[i], eq ? (gsize) (eq - pairs[i]) : strlen (pairs[i])),
                            g_strdup (eq ? eq + 1 : ""));
    }
  call.params = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  {
    g_auto (GStrv) segments = g_strsplit (call.route->path, "/", -1);
    for (guint i = 0; segments[i]; i++)
      if (segments[i][0] == '{')
        g_hash_table_replace (call.params, g_strndup (segments[i] + 1, strlen (segments[i]) - 2),
                              g_strdup (param[0] ? param : "p"));
  }

  call.route->handler (&call);
  /* The core answers, as often as the route asks (a few rounds at most). */
  while (call.pending && call.answer_func && rounds++ < 8)
    {
      EnsMessage *request = call.pending;
      EnsHttpAnswerFunc func = call.answer_func;
      EnsMessage *answer;

      call.pending = NULL;
      call.answer_func = NULL;
      if (call.answer % 8 == 7 && request->agent)
        answer = ens_message_new_reply (request, request->data);
      else if (call.answer % 8 == 6 && request->agent == NULL)
        {
          /* A core verb's answer in the core's shapes: an acknowledgement
           * naming what later events carry, the empty lists of a listing. */
          static const char *const lists[] = { "agents", "sessions", "plugins", "providers", "processes" };
          JsonObject *ack;
          g_autoptr (JsonNode) ack_node = ens_node_new_object (&ack);
          json_object_set_string_member (ack, "request_id", "fz");
          json_object_set_string_member (ack, "task_id", "fz");
          json_object_set_string_member (ack, "session_id", "fz");
          json_object_set_string_member (ack, "provider", "p");
          for (guint i = 0; i < G_N_ELEMENTS (lists); i++)
            json_object_set_array_member (ack, lists[i], json_array_new ());
          if (call.read_text)
            {
              g_autofree char *text = host->json_to_string (ack_node);
              answer = ens_message_new_reply_text (request, text, strlen (text));
            }
          else
            answer = ens_message_new_reply (request, ack_node);
        }
      else
        answer = ens_message_new_error (request, answer_codes[call.answer % G_N_ELEMENTS (answer_codes)],
                                        "the core says no", request->data);
      func (&call, answer, call.answer_data);
      host->message_unref (answer);
      host->message_unref (request);
      call.answer >>= 3;
    }
  /* Events reach a call that listens: anyone may publish them, so their
   * data is the input's body, as JSON when it is. */
  if (call.event_func && !call.gone)
    {
      g_autoptr (JsonNode) body = ens_json_parse (call.body_data, call.body_len, NULL);
      g_autoptr (JsonNode) payload = NULL;
      static const char *const topics[] = { "fuzz.topic", "COMPLETION_CHUNK", "COMPLETION_RESULT",
                                            "session.fz.task_completed" };

      /* An object gets the ids the acknowledgement named, as the core's
       * events carry them (unless it names its own). */
      if (body && JSON_NODE_HOLDS_OBJECT (body))
        {
          JsonObject *o = json_object_new ();
          JsonObjectIter iter;
          const char *name;
          JsonNode *member;

          json_object_set_string_member (o, "request_id", "fz");
          json_object_set_string_member (o, "taskId", "fz");
          json_object_set_string_member (o, "sessionId", "fz");
          json_object_iter_init_ordered (&iter, json_node_get_object (body));
          while (json_object_iter_next_ordered (&iter, &name, &member))
            json_object_set_member (o, name, json_node_copy (member));
          payload = ens_node_take_object (o);
        }
      else if (body)
        payload = json_node_ref (body);

      for (guint i = 0; i < G_N_ELEMENTS (topics) && call.event_func && !call.sse_ended; i++)
        {
          EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_EVENT);
          EnsMessage *event;

          g_autofree char *text = call.read_text && payload ? host->json_to_string (payload) : NULL;

          init.topic = topics[i];
          init.from = "c1";
          init.data = text ? NULL : payload;
          init.data_text = text;
          init.data_text_len = -1;
          event = host->message_new (&init);
          call.event_func (&call, event, call.event_data);
          host->message_unref (event);
        }
    }
  /* A stream that dropped events tells its reader. */
  if (call.notice)
    {
      g_autoptr (GBytes) frame = call.notice (3, 7, call.notice_data);
      if (frame)
        check_frame (frame);
    }
  /* A stream still open: its client leaves. */
  if ((call.sse && !call.sse_ended) || call.replies == 0)
    {
      call.gone = TRUE;
      if (call.disconnect_func)
        call.disconnect_func (&call, call.disconnect_data);
    }
  else
    ENS_FUZZ_CHECK (call.replies == 1, "route %s %s: %u replies", call.route->method, call.route->path, call.replies);

  g_clear_pointer (&call.pending, host->message_unref);
  g_clear_pointer (&call.body, json_node_unref);
  g_datalist_clear (&call.attached);
  g_hash_table_unref (call.query);
  g_hash_table_unref (call.params);
  return 0;
}
