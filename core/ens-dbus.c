/* ens-dbus.c — ensembled on D-Bus: org.ensemble.Daemon1 with an
 * ObjectManager of one object per plugin, agent and live session, from the
 * interfaces in data/org.ensemble.Daemon1.xml (gdbus-codegen).
 *
 * Calls go through the core like any client's (one internal EnsClient
 * whose replies complete the pending invocations), so D-Bus adds no logic
 * of its own.  Event signals are unicast to the callers that subscribed.
 * No bus reachable: one warning, and the daemon runs on without it. */
#include "ens-dbus.h"
#include "ens-json.h"
#include "ens-message-private.h"
#include "ens-dbus-generated.h"
#include "ens-paths.h"

#include <string.h>
#include <unistd.h>

#define ENS_DBUS_NAME "org.ensemble.Daemon1"
#define ENS_DBUS_PATH "/org/ensemble/Daemon1"

typedef struct {
  EnsDBus *dbus;
  char *caller; /* unique bus name */
  EnsSubscriber *subscriber;
  guint watch_id;
} Watcher;

struct _EnsDBus {
  EnsDaemon *d;
  GDBusConnection *connection;
  guint name_id;
  GDBusObjectManagerServer *manager;
  EnsDBusDaemon1 *daemon;
  EnsClient *client;          /* the core sees D-Bus as one client */
  GHashTable *invocations;    /* request id -> GDBusMethodInvocation */
  GHashTable *completions;    /* CompleteAndWait: completion request_id -> GDBusMethodInvocation */
  GHashTable *early_results;  /* completion request_id -> its COMPLETION_RESULT data, come before the ack */
  GHashTable *watchers;       /* caller -> Watcher */
  EnsSubscriber *lifecycle;   /* agents, sessions, budget */
  guint64 next_id;
  guint refresh_id;
  gulong loader_handlers[3];
};

/* ------------------------------------------------------------ Daemon1 */

/* The Daemon1 skeleton, with UptimeSeconds worked out when it is read:
 * it changes all the time, so it is never stored nor signalled. */
#define ENS_TYPE_DAEMON_SKELETON (ens_daemon_skeleton_get_type ())
G_DECLARE_FINAL_TYPE (EnsDaemonSkeleton, ens_daemon_skeleton, ENS, DAEMON_SKELETON, EnsDBusDaemon1Skeleton)

struct _EnsDaemonSkeleton
{
  EnsDBusDaemon1Skeleton parent;
  gint64 started_us; /* monotonic */
};

G_DEFINE_TYPE (EnsDaemonSkeleton, ens_daemon_skeleton, ENS_DBUS_TYPE_DAEMON1_SKELETON)

enum
{
  PROP_UPTIME_SECONDS = 1,
};

static void
ens_daemon_skeleton_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  EnsDaemonSkeleton *self = ENS_DAEMON_SKELETON (object);

  if (prop_id == PROP_UPTIME_SECONDS)
    g_value_set_uint64 (value, (guint64) (g_get_monotonic_time () - self->started_us) / G_USEC_PER_SEC);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

static void
ens_daemon_skeleton_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  (void) value;
  /* Nothing stores it: it is worked out when read. */
  if (prop_id != PROP_UPTIME_SECONDS)
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
}

/* GObject asks the class that installed a property for its value, so the
 * subclass overrides that one property and answers it itself. */
static void
ens_daemon_skeleton_class_init (EnsDaemonSkeletonClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = ens_daemon_skeleton_get_property;
  object_class->set_property = ens_daemon_skeleton_set_property;
  g_object_class_override_property (object_class, PROP_UPTIME_SECONDS, "uptime-seconds");
}

static void
ens_daemon_skeleton_init (EnsDaemonSkeleton *self)
{
  (void) self;
}

/* ------------------------------------------------------------ helpers */

static char *
object_path (const char *kind, const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);
  return g_strdup_printf (ENS_DBUS_PATH "/%s/%s", kind, escaped);
}

/* AGENT_NOT_FOUND -> org.ensemble.Error.AgentNotFound */
static char *
error_name (const char *code)
{
  GString *name = g_string_new ("org.ensemble.Error.");
  gboolean upper = TRUE;

  for (const char *p = code ? code : "Failed"; *p; p++)
    {
      if (*p == '_')
        {
          upper = TRUE;
          continue;
        }
      g_string_append_c (name, upper ? g_ascii_toupper (*p) : g_ascii_tolower (*p));
      upper = FALSE;
    }
  return g_string_free (name, FALSE);
}

static void
return_error (GDBusMethodInvocation *inv, const char *code, const char *message)
{
  g_autofree char *name = error_name (code);
  g_dbus_method_invocation_return_dbus_error (inv, name, message ? message : code);
}

/* ------------------------------------------------------------ the core client */

typedef void (*AnswerFunc) (GDBusMethodInvocation *inv, EnsMessage *answer);

static void
submit (EnsDBus *D, GDBusMethodInvocation *inv, const char *agent, const char *action, JsonNode *data,
        AnswerFunc func)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  g_autofree char *id = g_strdup_printf ("d%" G_GUINT64_FORMAT, ++D->next_id);
  g_autoptr (EnsMessage) msg = NULL;

  g_object_set_data (G_OBJECT (inv), "ens-answer", func);
  g_hash_table_insert (D->invocations, g_strdup (id), g_object_ref (inv));
  init.id = id;
  init.action = action;
  init.agent = agent;
  init.data = data;
  msg = ens_message_new (&init);
  ens_dispatch_client_submit (D->d->dispatch, D->client, msg);
}

static void finish_completion (GDBusMethodInvocation *inv, JsonObject *result_event);

/* A COMPLETION_RESULT for a CompleteAndWait caller (results of Complete go
 * to their caller's bus name, not here). */
static void
completion_result (EnsDBus *D, EnsMessage *event)
{
  JsonObject *obj = event->data && JSON_NODE_HOLDS_OBJECT (event->data) ? json_node_get_object (event->data) : NULL;
  const char *rid = obj ? json_object_get_string_member_with_default (obj, "request_id", NULL) : NULL;
  GDBusMethodInvocation *inv;

  if (rid == NULL)
    return;
  inv = g_hash_table_lookup (D->completions, rid);
  if (inv == NULL)
    {
      g_hash_table_insert (D->early_results, g_strdup (rid), json_node_ref (event->data));
      return;
    }
  finish_completion (inv, obj);
  g_hash_table_remove (D->completions, rid);
}

static void
sink_deliver (gpointer data, EnsMessage *msg)
{
  EnsDBus *D = data;
  GDBusMethodInvocation *inv;
  AnswerFunc func;

  if (msg->kind == ENS_MESSAGE_EVENT && g_strcmp0 (msg->topic, "COMPLETION_RESULT") == 0)
    {
      completion_result (D, msg);
      return;
    }
  if (msg->kind != ENS_MESSAGE_REPLY && msg->kind != ENS_MESSAGE_ERROR)
    return;
  inv = msg->id ? g_hash_table_lookup (D->invocations, msg->id) : NULL;
  if (inv == NULL)
    return;
  func = g_object_get_data (G_OBJECT (inv), "ens-answer");
  if (msg->kind == ENS_MESSAGE_ERROR)
    return_error (inv, msg->error_code, msg->error_message);
  else
    func (inv, msg);
  g_hash_table_remove (D->invocations, msg->id);
}

static void
sink_disconnect (gpointer data, const char *reason)
{
  (void) data;
  (void) reason; /* the daemon is stopping; ens_dbus_shutdown follows */
}

static const EnsClientSink dbus_sink = { sizeof (EnsClientSink), sink_deliver, sink_disconnect };

static void
answer_json (GDBusMethodInvocation *inv, EnsMessage *answer)
{
  g_autofree char *text = ens_json_to_string (answer->data);
  g_dbus_method_invocation_return_value (inv, g_variant_new ("(s)", text));
}

static void
answer_seq (GDBusMethodInvocation *inv, EnsMessage *answer)
{
  JsonObject *obj = json_node_get_object (answer->data);
  g_dbus_method_invocation_return_value (inv, g_variant_new ("(t)", (guint64) json_object_get_int_member (obj, "seq")));
}

static void
answer_request_id (GDBusMethodInvocation *inv, EnsMessage *answer)
{
  JsonObject *obj = json_node_get_object (answer->data);
  g_dbus_method_invocation_return_value (inv, g_variant_new ("(s)", json_object_get_string_member (obj, "request_id")));
}

/* JSON text from a caller; NULL after answering the error. */
static JsonNode *
parse_arg (GDBusMethodInvocation *inv, const char *what, const char *text, gboolean object_only)
{
  g_autoptr (GError) error = NULL;
  JsonNode *node = ens_json_parse (text, strlen (text), &error);

  if (node == NULL)
    {
      g_autofree char *message = g_strdup_printf ("%s is not valid JSON: %s", what, error->message);
      return_error (inv, ENS_ERR_INVALID_JSON, message);
      return NULL;
    }
  if (object_only && !JSON_NODE_HOLDS_OBJECT (node))
    {
      g_autofree char *message = g_strdup_printf ("%s must be a JSON object", what);
      json_node_unref (node);
      return_error (inv, ENS_ERR_INVALID_PARAMETERS, message);
      return NULL;
    }
  return node;
}

static gboolean refresh_properties (gpointer data);

/* ------------------------------------------------------------ methods */

static gboolean
on_health (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, gpointer data)
{
  (void) iface;
  refresh_properties (data);
  submit (data, inv, NULL, "health", NULL, answer_json);
  return TRUE;
}

static gboolean
on_list_plugins (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, gpointer data)
{
  (void) iface;
  submit (data, inv, NULL, "plugins.list", NULL, answer_json);
  return TRUE;
}

static gboolean
on_list_agents (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, gpointer data)
{
  (void) iface;
  submit (data, inv, NULL, "agents.list", NULL, answer_json);
  return TRUE;
}

static gboolean
on_publish (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *topic, const char *json, gpointer data)
{
  g_autoptr (JsonNode) value = parse_arg (inv, "data", json, FALSE);
  JsonObject *obj;
  g_autoptr (JsonNode) params = NULL;

  (void) iface;
  if (value == NULL)
    return TRUE;
  params = ens_json_object_node (&obj);
  json_object_set_string_member (obj, "topic", topic);
  json_object_set_member (obj, "data", json_node_ref (value));
  submit (data, inv, NULL, "publish", params, answer_seq);
  return TRUE;
}

static gboolean
on_request (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *agent, const char *action,
            const char *json, gpointer data)
{
  g_autoptr (JsonNode) value = parse_arg (inv, "data", json, FALSE);

  (void) iface;
  if (value == NULL)
    return TRUE;
  if (agent[0] == '\0' || action[0] == '\0')
    {
      return_error (inv, ENS_ERR_INVALID_PARAMETERS, "agent and action must not be empty");
      return TRUE;
    }
  submit (data, inv, agent, action, value, answer_json);
  return TRUE;
}

static gboolean
on_complete (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *prompt, const char *options,
             gpointer data)
{
  g_autoptr (JsonNode) params = parse_arg (inv, "options", options[0] ? options : "{}", TRUE);

  (void) iface;
  if (params == NULL)
    return TRUE;
  json_object_set_string_member (json_node_get_object (params), "prompt", prompt);
  /* Results go to the caller as Event signals: the target is its name. */
  json_object_set_string_member (json_node_get_object (params), "client_id",
                                 g_dbus_method_invocation_get_sender (inv) ? g_dbus_method_invocation_get_sender (inv)
                                                                           : "dbus");
  submit (data, inv, NULL, "complete", params, answer_request_id);
  return TRUE;
}

static void
finish_completion (GDBusMethodInvocation *inv, JsonObject *result_event)
{
  JsonNode *result = json_object_get_member (result_event, "result");

  if (result != NULL && JSON_NODE_HOLDS_OBJECT (result))
    {
      g_autofree char *text = ens_json_to_string (result);
      const char *response = json_object_get_string_member_with_default (json_node_get_object (result), "response", "");

      g_dbus_method_invocation_return_value (inv, g_variant_new ("(ss)", response, text));
      return;
    }
  return_error (inv, json_object_get_string_member_with_default (result_event, "code", "COMPLETION_FAILED"),
                json_object_get_string_member_with_default (result_event, "error", "the completion failed"));
}

/* The acknowledgement: from now on the result is awaited by request id. */
static void
answer_wait (GDBusMethodInvocation *inv, EnsMessage *answer)
{
  EnsDBus *D = g_object_get_data (G_OBJECT (inv), "ens-dbus");
  const char *rid = json_object_get_string_member (json_node_get_object (answer->data), "request_id");
  JsonNode *early = g_hash_table_lookup (D->early_results, rid);

  if (early != NULL)
    {
      finish_completion (inv, json_node_get_object (early));
      g_hash_table_remove (D->early_results, rid);
      return;
    }
  g_hash_table_insert (D->completions, g_strdup (rid), g_object_ref (inv));
}

static gboolean
on_complete_and_wait (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *prompt, const char *options,
                      gpointer data)
{
  EnsDBus *D = data;
  g_autoptr (JsonNode) params = parse_arg (inv, "options", options[0] ? options : "{}", TRUE);

  (void) iface;
  if (params == NULL)
    return TRUE;
  if (json_object_has_member (json_node_get_object (params), "client_id"))
    {
      return_error (inv, ENS_ERR_INVALID_PARAMETERS,
                    "client_id: CompleteAndWait answers its caller (use Complete to send the result elsewhere)");
      return TRUE;
    }
  json_object_set_string_member (json_node_get_object (params), "prompt", prompt);
  g_object_set_data (G_OBJECT (inv), "ens-dbus", D);
  /* No client_id: the results come to the core's D-Bus client, here. */
  submit (D, inv, NULL, "complete", params, answer_wait);
  return TRUE;
}

/* ------------------------------------------------------------ Event signals */

static void
watcher_free (Watcher *w)
{
  if (w->watch_id)
    g_bus_unwatch_name (w->watch_id);
  ens_subscriber_free (w->dbus->d->bus, w->subscriber);
  g_free (w->caller);
  g_free (w);
}

static void
watcher_event (EnsMessage *event, gpointer data)
{
  Watcher *w = data;
  const char *json = ens_message_get_data_text (event, NULL);

  g_dbus_connection_emit_signal (w->dbus->connection, w->caller, ENS_DBUS_PATH, "org.ensemble.Daemon1", "Event",
                                 g_variant_new ("(ss)", event->topic, json), NULL);
}

static void
caller_vanished (GDBusConnection *connection, const char *name, gpointer data)
{
  EnsDBus *D = data;

  (void) connection;
  g_hash_table_remove (D->watchers, name); /* its subscriptions go with it */
}

static Watcher *
watcher_for (EnsDBus *D, const char *caller)
{
  Watcher *w = g_hash_table_lookup (D->watchers, caller);

  if (w == NULL)
    {
      w = g_new0 (Watcher, 1);
      w->dbus = D;
      w->caller = g_strdup (caller);
      w->subscriber = ens_subscriber_new (watcher_event, w, NULL);
      w->watch_id = g_bus_watch_name_on_connection (D->connection, caller, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                                    caller_vanished, D, NULL);
      g_hash_table_insert (D->watchers, w->caller, w);
    }
  return w;
}

static gboolean
on_subscribe (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *const *patterns, gpointer data)
{
  EnsDBus *D = data;
  const char *caller = g_dbus_method_invocation_get_sender (inv);
  Watcher *w;

  if (caller == NULL)
    {
      return_error (inv, ENS_ERR_INVALID_REQUEST, "subscribing needs a message bus connection");
      return TRUE;
    }
  for (guint i = 0; patterns[i]; i++)
    {
      const char *colon = strchr (patterns[i], ':');
      if (patterns[i][0] == '\0' || strlen (patterns[i]) > 1024)
        {
          return_error (inv, ENS_ERR_INVALID_PARAMETERS, "patterns must be non-empty and at most 1024 bytes");
          return TRUE;
        }
      /* "TOPIC:TARGET" observes events private to TARGET: a caller may
       * only observe its own (its unique name), not other callers'. */
      if (colon && strcmp (colon + 1, caller) != 0)
        {
          g_autofree char *text = g_strdup_printf ("%s: a caller may only observe events targeted at itself (%s)",
                                                   patterns[i], caller);
          return_error (inv, ENS_ERR_PERMISSION_DENIED, text);
          return TRUE;
        }
    }
  w = watcher_for (D, caller);
  for (guint i = 0; patterns[i]; i++)
    ens_bus_subscribe (D->d->bus, w->subscriber, patterns[i]);
  ens_dbus_daemon1_complete_subscribe (iface, inv);
  return TRUE;
}

static gboolean
on_unsubscribe (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, const char *const *patterns, gpointer data)
{
  EnsDBus *D = data;
  const char *caller = g_dbus_method_invocation_get_sender (inv);
  Watcher *w = caller ? g_hash_table_lookup (D->watchers, caller) : NULL;

  for (guint i = 0; w && patterns[i]; i++)
    ens_bus_unsubscribe (D->d->bus, w->subscriber, patterns[i]);
  ens_dbus_daemon1_complete_unsubscribe (iface, inv);
  return TRUE;
}

/* ------------------------------------------------------------ Shutdown */

static void
got_caller_uid (GObject *source, GAsyncResult *result, gpointer data)
{
  GDBusMethodInvocation *inv = data;
  EnsDBus *D = g_object_get_data (G_OBJECT (inv), "ens-dbus");
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  guint32 uid = G_MAXUINT32;

  if (reply)
    g_variant_get (reply, "(u)", &uid);
  if (uid != getuid () && uid != 0)
    {
      return_error (inv, ENS_ERR_PERMISSION_DENIED, "only the daemon's own user or root may shut it down");
      g_object_unref (inv);
      return;
    }
  g_message ("shutdown requested over D-Bus by %s (uid %u)", g_dbus_method_invocation_get_sender (inv), uid);
  ens_dbus_daemon1_complete_shutdown (D->daemon, inv);
  g_object_unref (inv);
  ens_daemon_quit (D->d);
}

static gboolean
on_shutdown (EnsDBusDaemon1 *iface, GDBusMethodInvocation *inv, gpointer data)
{
  EnsDBus *D = data;
  const char *caller = g_dbus_method_invocation_get_sender (inv);

  (void) iface;
  if (caller == NULL)
    {
      return_error (inv, ENS_ERR_PERMISSION_DENIED, "cannot tell who is asking");
      return TRUE;
    }
  g_object_set_data (G_OBJECT (inv), "ens-dbus", D);
  /* Authorised by the caller's uid as the bus daemon knows it. */
  g_dbus_connection_call (D->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "GetConnectionUnixUser", g_variant_new ("(s)", caller), G_VARIANT_TYPE ("(u)"),
                          G_DBUS_CALL_FLAGS_NONE, 5000, NULL, got_caller_uid, g_object_ref (inv));
  return TRUE;
}

/* ------------------------------------------------------------ objects */

static void
on_plugin_loaded (EnsLoader *loader, EnsPlugin *plugin, gpointer data)
{
  EnsDBus *D = data;
  const EnsPluginDesc *desc = ens_plugin_get_desc (plugin);
  g_autofree char *path = NULL;
  g_autoptr (EnsDBusObjectSkeleton) object = NULL;
  g_autoptr (EnsDBusPlugin1) iface = NULL;

  (void) loader;
  path = object_path ("plugins", desc->id);
  object = ens_dbus_object_skeleton_new (path);
  iface = ens_dbus_plugin1_skeleton_new ();
  ens_dbus_plugin1_set_id (iface, desc->id);
  ens_dbus_plugin1_set_kind (iface, ens_plugin_kind_name (desc->kind));
  ens_dbus_plugin1_set_version (iface, desc->version ? desc->version : "");
  ens_dbus_plugin1_set_description (iface, desc->description ? desc->description : "");
  ens_dbus_plugin1_set_file (iface, ens_plugin_get_file (plugin));
  ens_dbus_object_skeleton_set_plugin1 (object, iface);
  g_dbus_object_manager_server_export (D->manager, G_DBUS_OBJECT_SKELETON (object));
  ens_dbus_daemon1_emit_plugin_loaded (D->daemon, desc->id);
  refresh_properties (D);
}

static void
on_plugin_stopped (EnsLoader *loader, EnsPlugin *plugin, gpointer data)
{
  EnsDBus *D = data;
  g_autofree char *path = object_path ("plugins", ens_plugin_get_id (plugin));

  (void) loader;
  /* Not exported when it was refused after its init. */
  if (g_dbus_object_manager_server_unexport (D->manager, path))
    refresh_properties (D);
}

static void
on_plugin_failed (EnsLoader *loader, const char *file, const char *reason, gpointer data)
{
  EnsDBus *D = data;

  (void) loader;
  ens_dbus_daemon1_emit_plugin_failed (D->daemon, file, reason);
}

static void
export_agent (EnsDBus *D, JsonObject *info)
{
  const char *name = json_object_get_string_member (info, "name");
  g_autofree char *path = object_path ("agents", name);
  g_autoptr (EnsDBusObjectSkeleton) object = ens_dbus_object_skeleton_new (path);
  g_autoptr (EnsDBusAgent1) iface = ens_dbus_agent1_skeleton_new ();
  JsonArray *actions = json_object_get_array_member (info, "actions");
  g_autoptr (GPtrArray) strv = g_ptr_array_new ();
  g_autoptr (GDateTime) since = g_date_time_new_from_iso8601 (
    json_object_get_string_member_with_default (info, "registered_at", ""), NULL);

  for (guint i = 0; actions && i < json_array_get_length (actions); i++)
    g_ptr_array_add (strv, (gpointer) json_array_get_string_element (actions, i));
  g_ptr_array_add (strv, NULL);
  ens_dbus_agent1_set_name (iface, name);
  ens_dbus_agent1_set_actions (iface, (const char *const *) strv->pdata);
  ens_dbus_agent1_set_description (iface, json_object_get_string_member_with_default (info, "description", ""));
  ens_dbus_agent1_set_kind (iface, json_object_get_string_member_with_default (info, "kind", ""));
  ens_dbus_agent1_set_connected (iface, json_object_get_boolean_member_with_default (info, "connected", TRUE));
  ens_dbus_agent1_set_connected_since (
    iface, since ? (guint64) g_date_time_to_unix (since) * G_USEC_PER_SEC + g_date_time_get_microsecond (since) : 0);
  ens_dbus_object_skeleton_set_agent1 (object, iface);
  g_dbus_object_manager_server_export (D->manager, G_DBUS_OBJECT_SKELETON (object));
}

static void
export_session (EnsDBus *D, JsonObject *data, const char *id, const char *status)
{
  g_autofree char *path = object_path ("sessions", id);
  GDBusObject *existing = g_dbus_object_manager_get_object (G_DBUS_OBJECT_MANAGER (D->manager), path);
  EnsDBusSession1 *iface;

  if (g_strcmp0 (status, "stopped") == 0)
    {
      if (existing)
        g_dbus_object_manager_server_unexport (D->manager, path);
      g_clear_object (&existing);
      return;
    }
  if (existing)
    {
      iface = ens_dbus_object_get_session1 (ENS_DBUS_OBJECT (existing));
      ens_dbus_session1_set_status (iface, status);
      if (data && json_object_has_member (data, "tasks_total"))
        ens_dbus_session1_set_tasks (iface, json_object_get_int_member (data, "tasks_total"));
      g_object_unref (iface);
      g_object_unref (existing);
      return;
    }
  {
    g_autoptr (EnsDBusObjectSkeleton) object = ens_dbus_object_skeleton_new (path);
    g_autoptr (EnsDBusSession1) skel = ens_dbus_session1_skeleton_new ();
    ens_dbus_session1_set_id (skel, id);
    ens_dbus_session1_set_status (skel, status);
    ens_dbus_session1_set_session_type (skel, data ? json_object_get_string_member_with_default (data, "session_type", "") : "");
    ens_dbus_session1_set_tasks (skel, data ? json_object_get_int_member_with_default (data, "tasks_total", 0) : 0);
    ens_dbus_object_skeleton_set_session1 (object, skel);
    g_dbus_object_manager_server_export (D->manager, G_DBUS_OBJECT_SKELETON (object));
  }
}

/* System events from the bus: agents, sessions, budget. */
static void
lifecycle_event (EnsMessage *event, gpointer data)
{
  EnsDBus *D = data;
  JsonNode *node = ens_message_get_data (event);
  JsonObject *obj = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  const char *topic = event->topic;

  if (obj == NULL)
    return;
  if (g_str_has_prefix (topic, "ensemble.agent."))
    refresh_properties (D);
  if (strcmp (topic, "ensemble.agent.registered") == 0)
    {
      export_agent (D, obj);
      ens_dbus_daemon1_emit_agent_registered (D->daemon, json_object_get_string_member (obj, "name"));
    }
  else if (strcmp (topic, "ensemble.agent.connected") == 0 || strcmp (topic, "ensemble.agent.disconnected") == 0)
    {
      g_autofree char *path = object_path ("agents", json_object_get_string_member (obj, "name"));
      GDBusObject *object = g_dbus_object_manager_get_object (G_DBUS_OBJECT_MANAGER (D->manager), path);
      if (object)
        {
          EnsDBusAgent1 *agent = ens_dbus_object_get_agent1 (ENS_DBUS_OBJECT (object));
          ens_dbus_agent1_set_connected (agent, json_object_get_boolean_member_with_default (obj, "connected", FALSE));
          g_object_unref (agent);
          g_object_unref (object);
        }
    }
  else if (strcmp (topic, "ensemble.agent.unregistered") == 0)
    {
      g_autofree char *path = object_path ("agents", json_object_get_string_member (obj, "name"));
      g_dbus_object_manager_server_unexport (D->manager, path);
      ens_dbus_daemon1_emit_agent_removed (D->daemon, json_object_get_string_member (obj, "name"));
    }
  else if (g_str_has_suffix (topic, ".session_status_update") || g_str_has_suffix (topic, ".session_spawned"))
    {
      const char *id = json_object_get_string_member_with_default (obj, "sessionId", NULL);
      const char *status = json_object_get_string_member_with_default (
        obj, "status", g_str_has_suffix (topic, ".session_spawned") ? "idle" : "unknown");
      if (id)
        {
          export_session (D, obj, id, status);
          ens_dbus_daemon1_emit_session_changed (D->daemon, id, status);
        }
    }
  else if (strcmp (topic, "ensemble.budget.exceeded") == 0)
    ens_dbus_daemon1_emit_budget_exceeded (D->daemon,
                                           json_object_get_string_member_with_default (obj, "request_id", ""),
                                           json_object_get_double_member_with_default (obj, "remaining", 0));
}

/* Properties: refreshed every two seconds and at every call that reads
 * health; PropertiesChanged goes out only for a value that did change
 * (the skeleton compares), so an idle daemon sends none.  UptimeSeconds is
 * not among them: it is worked out when read. */
static gboolean
refresh_properties (gpointer data)
{
  EnsDBus *D = data;
  EnsDaemon *d = D->d;
  g_autoptr (JsonNode) budget = ens_budget_describe (d->budget);
  g_autofree char *policy = NULL;
  JsonObject *b = json_node_get_object (budget);

  policy = ens_config_get_path (d->config, "router-policy");
  ens_dbus_daemon1_set_connections (D->daemon, ens_clients_count (d->clients));
  ens_dbus_daemon1_set_agents (D->daemon, ens_agents_count (d->agents));
  ens_dbus_daemon1_set_plugins (D->daemon, ens_loader_plugins (d->loader)->len);
  ens_dbus_daemon1_set_sessions (D->daemon, ens_sessions_count (d->sessions, FALSE));
  ens_dbus_daemon1_set_router_policy (D->daemon, policy ? policy : "");
  ens_dbus_daemon1_set_daily_budget (D->daemon, json_object_get_double_member (b, "daily_budget"));
  ens_dbus_daemon1_set_current_spend (D->daemon, json_object_get_double_member (b, "current_spend"));
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ lifecycle */

static void
name_lost (GDBusConnection *connection, const char *name, gpointer data)
{
  (void) data;
  if (connection == NULL)
    g_warning ("D-Bus: the bus went away; the daemon runs on without it");
  else
    g_warning ("D-Bus: cannot own %s (another daemon has it?); objects stay reachable by unique name", name);
}

static void
name_acquired (GDBusConnection *connection, const char *name, gpointer data)
{
  (void) connection;
  (void) data;
  g_message ("D-Bus: owns %s", name);
}

static void export_sessions (EnsDBus *D);

EnsDBus *
ens_dbus_start (EnsDaemon *d, GBusType bus_type)
{
  EnsDBus *D;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  const char *kind = bus_type == G_BUS_TYPE_SYSTEM ? "system" : "session";

  /* Do not autolaunch a bus where none runs (a server, CI). */
  if (bus_type == G_BUS_TYPE_SESSION && g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    {
      g_autofree char *socket = g_build_filename (g_get_user_runtime_dir (), "bus", NULL);
      if (!g_file_test (socket, G_FILE_TEST_EXISTS))
        {
          g_warning ("D-Bus: no session bus (DBUS_SESSION_BUS_ADDRESS unset); running without D-Bus");
          return NULL;
        }
    }
  connection = g_bus_get_sync (bus_type, NULL, &error);
  if (connection == NULL)
    {
      g_warning ("D-Bus: no %s bus reachable (%s); running without D-Bus", kind, error->message);
      return NULL;
    }
  g_dbus_connection_set_exit_on_close (connection, FALSE);

  D = g_new0 (EnsDBus, 1);
  D->d = d;
  D->connection = g_steal_pointer (&connection);
  D->invocations = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  D->completions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  D->early_results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) json_node_unref);
  D->watchers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watcher_free);
  D->client = ens_clients_add (d->clients, NULL, &dbus_sink, D, 0, "dbus");
  D->manager = g_dbus_object_manager_server_new (ENS_DBUS_PATH);

  D->daemon = g_object_new (ENS_TYPE_DAEMON_SKELETON, NULL);
  ENS_DAEMON_SKELETON (D->daemon)->started_us = d->started_us;
  ens_dbus_daemon1_set_version (D->daemon, ENS_VERSION);
  ens_dbus_daemon1_set_node_id (D->daemon, d->node_id);
  ens_dbus_daemon1_set_started_at (D->daemon, (guint64) d->started_real_us);
  g_signal_connect (D->daemon, "handle-health", G_CALLBACK (on_health), D);
  g_signal_connect (D->daemon, "handle-list-plugins", G_CALLBACK (on_list_plugins), D);
  g_signal_connect (D->daemon, "handle-list-agents", G_CALLBACK (on_list_agents), D);
  g_signal_connect (D->daemon, "handle-publish", G_CALLBACK (on_publish), D);
  g_signal_connect (D->daemon, "handle-request", G_CALLBACK (on_request), D);
  g_signal_connect (D->daemon, "handle-complete", G_CALLBACK (on_complete), D);
  g_signal_connect (D->daemon, "handle-complete-and-wait", G_CALLBACK (on_complete_and_wait), D);
  g_signal_connect (D->daemon, "handle-subscribe", G_CALLBACK (on_subscribe), D);
  g_signal_connect (D->daemon, "handle-unsubscribe", G_CALLBACK (on_unsubscribe), D);
  g_signal_connect (D->daemon, "handle-shutdown", G_CALLBACK (on_shutdown), D);
  /* The ObjectManager serves the objects below its path; Daemon1 sits at
   * that path itself, beside org.freedesktop.DBus.ObjectManager. */
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (D->daemon), D->connection, ENS_DBUS_PATH, &error))
    g_warning ("D-Bus: cannot export %s: %s", ENS_DBUS_PATH, error->message);
  g_dbus_object_manager_server_set_connection (D->manager, D->connection);

  D->lifecycle = ens_subscriber_new (lifecycle_event, D, NULL);
  ens_bus_subscribe (d->bus, D->lifecycle, "ensemble.agent.*");
  ens_bus_subscribe (d->bus, D->lifecycle, "ensemble.budget.*");
  ens_bus_subscribe (d->bus, D->lifecycle, "session.*");
  refresh_properties (D);
  D->refresh_id = g_timeout_add_seconds (2, refresh_properties, D);
  D->loader_handlers[0] = g_signal_connect (d->loader, "plugin-loaded", G_CALLBACK (on_plugin_loaded), D);
  D->loader_handlers[1] = g_signal_connect (d->loader, "plugin-stopped", G_CALLBACK (on_plugin_stopped), D);
  D->loader_handlers[2] = g_signal_connect (d->loader, "plugin-failed", G_CALLBACK (on_plugin_failed), D);
  export_sessions (D);

  D->name_id = g_bus_own_name_on_connection (D->connection, ENS_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                             name_acquired, name_lost, NULL, NULL);
  g_message ("D-Bus: on the %s bus as %s", kind, g_dbus_connection_get_unique_name (D->connection));
  return D;
}

/* Sessions already in the store when the daemon starts. */
static void
export_sessions (EnsDBus *D)
{
  g_autoptr (JsonNode) list = ens_sessions_list (D->d->sessions);
  JsonArray *array = json_object_get_array_member (json_node_get_object (list), "sessions");

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *s = json_array_get_object_element (array, i);
      export_session (D, s, json_object_get_string_member (s, "session_id"),
                      json_object_get_string_member_with_default (s, "status", "idle"));
    }
}

void
ens_dbus_stop (EnsDBus *D)
{
  if (D == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (D->loader_handlers); i++)
    g_signal_handler_disconnect (D->d->loader, D->loader_handlers[i]);
  if (D->name_id)
    g_bus_unown_name (D->name_id);
  g_source_remove (D->refresh_id);
  ens_subscriber_free (D->d->bus, D->lifecycle);
  g_hash_table_unref (D->watchers);
  g_hash_table_unref (D->invocations);
  {
    GHashTableIter iter;
    gpointer inv;

    g_hash_table_iter_init (&iter, D->completions);
    while (g_hash_table_iter_next (&iter, NULL, &inv))
      return_error (inv, "SHUTTING_DOWN", "the daemon is stopping");
  }
  g_hash_table_unref (D->completions);
  g_hash_table_unref (D->early_results);
  ens_client_close (D->client);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (D->daemon));
  g_dbus_object_manager_server_set_connection (D->manager, NULL);
  g_object_unref (D->manager);
  g_object_unref (D->daemon);
  g_dbus_connection_flush_sync (D->connection, NULL, NULL);
  g_object_unref (D->connection);
  g_free (D);
}
