/* ens-host.h — what the daemon offers a plugin: one sized, append-only table.
 *
 * Plugins never link against the daemon; every service reaches them through
 * the EnsHost handed to init().  All functions must be called on the main
 * loop thread unless stated otherwise.  A test can hand a plugin a fake table.
 *
 * Ownership is stated on every function: (transfer none) arguments are
 * borrowed for the call; (transfer full) results belong to the caller.
 */
#pragma once

#include <gio/gio.h>
#include <ensemble/ens-plugin.h>
#include <ensemble/ens-message.h>

G_BEGIN_DECLS

typedef struct _EnsClient EnsClient; /* opaque: one connection of a transport */

typedef enum {
  ENS_CLIENT_FLAG_NONE = 0,
  ENS_CLIENT_FLAG_ADMIN = 1 << 0, /* may call admin verbs such as shutdown */
  /* Since ABI 1.5: this client's messages may reach its sink with their
   * data still text, as for a transport with ENS_PLUGIN_FLAG_LAZY_DATA
   * (the transport reads it through message_data() or
   * message_data_text()), for a transport that has some clients read text
   * and others trees. */
  ENS_CLIENT_FLAG_LAZY_DATA = 1 << 1,
} EnsClientFlags;

/* How the host reaches a transport's connection (see ens-transport.h for
 * what comes through it, and when). */
typedef struct {
  guint32 struct_size;
  /* A reply, error or event for this connection; @msg is (transfer none). */
  void (*deliver) (gpointer sink_data, EnsMessage *msg);
  /* The host wants the connection closed: the daemon stops, or the
   * connection idled past idle-timeout-seconds holding nothing; @reason is
   * for the log or the peer.  The transport closes it, now or once what is
   * queued is written, and then calls host->client_close(). */
  void (*disconnect) (gpointer sink_data, const char *reason);
} EnsClientSink;

/* An event for a plugin subscription; @event is (transfer none). */
typedef void (*EnsEventFunc) (EnsMessage *event, gpointer user_data);
/* The answer to host->request(): kind REPLY or ERROR, (transfer none). */
typedef void (*EnsReplyFunc) (EnsMessage *reply, gpointer user_data);
/* A topic or pattern gained its first subscriber on this node (@wanted
 * TRUE) or lost its last (FALSE); @pattern is (transfer none). */
typedef void (*EnsInterestFunc) (const char *pattern, gboolean wanted, gpointer user_data);
/* One member of a JSON object read without a tree (json_scan_members):
 * its @name, its value's text (@value, @value_len bytes: a span of the text
 * being read) and, when the value is a string, that string unescaped (else
 * NULL).  All (transfer none), valid during the call only. */
typedef void (*EnsJsonScanFunc) (const char *name, const char *value, gsize value_len, const char *string,
                                 gpointer user_data);
/* Serves one request for an agent added with host->agent_add(); the same
 * contract as EnsAgentVTable.handle. */
typedef void (*EnsAgentHandleFunc) (gpointer handle_data, EnsMessage *request, EnsResponder *responder);

/* The answer of a budget ledger: whether @amount was reserved, and the
 * day's spend as the ledger knows it (settled, not counting reservations;
 * < 0 when unknown, e.g. the ledger is unreachable). */
typedef void (*EnsBudgetReplyFunc) (gboolean granted, double spent, gpointer user_data);

/* A daily budget kept outside this daemon, shared by several (see
 * host->budget_ledger_set).  Amounts are USD, @day is "YYYY-MM-DD" (UTC). */
typedef struct {
  guint32 struct_size;
  /* Reserves @amount for @day if what is spent and reserved stays within
   * @limit; calls @func exactly once, possibly from inside this call, at
   * the latest from the ledger plugin's stop(). */
  void (*reserve) (gpointer ledger_data, const char *day, double amount, double limit, EnsBudgetReplyFunc func,
                   gpointer user_data);
  /* Turns a reservation of @reserved into the actual cost @actual (0 when
   * the call failed or was cancelled). */
  void (*settle) (gpointer ledger_data, const char *day, double reserved, double actual);
} EnsBudgetLedger;

struct _EnsHost {
  guint32 struct_size;
  guint32 abi_major;
  guint32 abi_minor;

  /* ---- logging ---- */
  /* One line in the daemon log, prefixed with the plugin id. */
  void (*log) (EnsPlugin *self, GLogLevelFlags level, const char *message);

  /* ---- configuration ---- */
  /* (transfer full) the effective value of a daemon setting (see
   * data/org.ensemble.Daemon.gschema.xml), command-line overrides applied and
   * empty paths resolved; NULL for an unknown key. */
  GVariant *(*config_get) (EnsPlugin *self, const char *key);
  /* The plugin's instance name from the configuration, or its id. (transfer none) */
  const char *(*plugin_id) (EnsPlugin *self);

  /* ---- messages ---- */
  /* (transfer full) a new message; everything in @init is (transfer none). */
  EnsMessage *(*message_new) (const EnsMessageInit *init);
  EnsMessage *(*message_ref) (EnsMessage *msg);
  void (*message_unref) (EnsMessage *msg);
  /* (transfer none) @encode (@msg), computed once per message and encoder and
   * cached on the message; valid while @msg is. */
  GBytes *(*message_encode) (EnsMessage *msg, EnsEncodeFunc encode);
  /* The native encoder (an EnsEncodeFunc): one JSON line ending in '\n'. */
  EnsEncodeFunc encode_native;
  /* Parses one native-protocol JSON text (no trailing newline needed).
   * Returns (transfer full) the message to hand to client_submit(): a
   * REQUEST, an agent's answer ({"reply_to":...}), or for malformed input a
   * bounce (see message_is_bounce) that, once submitted, answers the client.
   * Never NULL. */
  EnsMessage *(*parse_native) (const char *text, gsize len);

  /* ---- connections ---- */
  /* Registers a connection.  @sink is (transfer none) and must outlive the
   * client; @sink_data is the transport's. Returns (transfer full) the
   * client, released only by client_close(). */
  EnsClient *(*client_new) (EnsPlugin *transport, const EnsClientSink *sink, gpointer sink_data,
                            guint32 flags, const char *peer);
  /* The connection is gone: drops its subscriptions, agents and pending
   * requests, and frees @client.  No deliver() follows. */
  void (*client_close) (EnsClient *client);
  /* (transfer none) the daemon-wide unique id of the connection. */
  const char *(*client_id) (EnsClient *client);
  /* Hands a message from the connection to the core, (transfer none): a
   * REQUEST, a bounce, or an agent's REPLY or ERROR.  What comes back, and
   * when, is the transport contract of ens-transport.h. */
  void (*client_submit) (EnsClient *client, EnsMessage *msg);

  /* ---- the bus, for plugins themselves ---- */
  /* Publishes an event from the plugin; @data (transfer none), @to may be NULL. */
  void (*publish) (EnsPlugin *self, const char *topic, JsonNode *data, const char *to);
  /* Subscribes to a topic or Redis-style glob pattern; returns an id > 0.
   * @notify frees @user_data on unsubscribe or stop. */
  guint (*subscribe) (EnsPlugin *self, const char *pattern, EnsEventFunc func, gpointer user_data,
                      GDestroyNotify notify);
  void (*unsubscribe) (EnsPlugin *self, guint subscription_id);
  /* Sends a request to @agent (NULL: a core verb such as "agents.list");
   * @data (transfer none).  @func is called exactly once, on the main loop,
   * never from inside this call. */
  void (*request) (EnsPlugin *self, const char *agent, const char *action, JsonNode *data,
                   guint32 timeout_ms, EnsReplyFunc func, gpointer user_data);
  /* Answers a request handed to an agent plugin; @data (transfer none) may
   * be NULL.  Frees @responder. */
  void (*respond) (EnsResponder *responder, JsonNode *data);
  void (*respond_error) (EnsResponder *responder, const char *code, const char *message,
                         JsonNode *details);

  /* ---- durable state (SQLite, survives kill -9 once acknowledged) ---- */
  /* Values are JSON texts, scoped by plugin id then @scope. */
  gboolean (*state_set) (EnsPlugin *self, const char *scope, const char *key, const char *json_value,
                         GError **error);
  /* (transfer full) the value, or NULL without @error when absent. */
  char *(*state_get) (EnsPlugin *self, const char *scope, const char *key, GError **error);
  gboolean (*state_delete) (EnsPlugin *self, const char *scope, const char *key, GError **error);
  /* Next value of a named counter that never goes back, even across restarts. */
  gint64 (*state_next_sequence) (EnsPlugin *self, const char *name, GError **error);

  /* ---- settings of a plugin's own (per-instance child schemas) ---- */
  /* (transfer full) GSettings for @schema_id at @path (NULL: the schema's
   * own path), on the daemon's settings backend (dconf or --config FILE);
   * NULL if the schema is not installed. */
  GSettings *(*settings_new) (EnsPlugin *self, const char *schema_id, const char *path);

  /* ---- parsing untrusted input ---- */
  /* Parses one JSON text from a client: (transfer full) its root, or NULL
   * with @error set for malformed JSON, nesting deeper than 512 levels (a
   * recursive parser's stack would not survive it), or anything but
   * white space after the value. */
  JsonNode *(*json_parse) (const char *text, gsize len, GError **error);
  /* (transfer full) compact JSON text of @node, (transfer none); numbers
   * written as the core writes them (0.1 stays 0.1). */
  char *(*json_to_string) (JsonNode *node);

  /* ---- completions: what a provider reports (main loop only) ---- */
  /* A piece of the answer, as it arrives. */
  void (*completion_chunk) (EnsCompletion *completion, const char *text);
  /* Anything else worth streaming: "tool_call_start", "tool_call_result"
   * with @data (transfer none). */
  void (*completion_event) (EnsCompletion *completion, const char *type, JsonNode *data);
  /* The end: @result (transfer none) {response, model, usage:
   * {input_tokens, output_tokens}, finish_reason, tool_calls?}.
   * @completion is invalid afterwards. */
  void (*completion_finish) (EnsCompletion *completion, JsonNode *result);
  /* The end, failed: @code one of the ENS_COMPLETION_ERR_* reported by
   * providers (ens-plugin.h), @message for a person.  @completion is
   * invalid afterwards. */
  void (*completion_fail) (EnsCompletion *completion, const char *code, const char *message);

  /* ---- spanning machines (a bus bridge such as transport-redis) ---- */
  /* This daemon's node id (transfer none); part of every client id. */
  const char *(*node_id) (void);
  /* @func sees every event published on this node — targeted ones
   * included, which no subscription sees — after local delivery; never
   * the events that came in through publish_remote().  Returns an id for
   * untap(); @notify frees @user_data. */
  guint (*tap) (EnsPlugin *self, EnsEventFunc func, gpointer user_data, GDestroyNotify notify);
  void (*untap) (EnsPlugin *self, guint tap_id);
  /* Delivers an event that another node published (topic, data, from, to
   * as it came, (transfer none)) to this node's subscribers and, when
   * targeted, to the local target; taps do not see it, so it is never
   * forwarded back. */
  void (*publish_remote) (EnsPlugin *self, const EnsMessageInit *event);

  /* ---- agents a plugin serves besides its own (bridges, services) ---- */
  /* Registers agent @name, served by @handle with @handle_data (both
   * borrowed until agent_remove() or stop).  @actions (NULL-terminated, may
   * be NULL) and @info (an object of members shown in listings, e.g.
   * {"node": ...}) are (transfer none).  With @remote the agent stands for
   * one elsewhere: it is listed with kind "remote" and yields to any local
   * registration of the same name.  Returns FALSE, registering nothing,
   * when another agent holds the name; for an agent @self already serves
   * it updates actions and info and returns TRUE.  Since ABI 1.3, @info's
   * member "tools" declares actions as EnsAgentVTable.tools does (a list
   * of {name, description?, input_schema?}; requests are checked against
   * the schemas); a malformed list also returns FALSE.  Its member
   * "description" describes the agent. */
  gboolean (*agent_add) (EnsPlugin *self, const char *name, const char *const *actions, JsonNode *info,
                         gboolean remote, EnsAgentHandleFunc handle, gpointer handle_data);
  /* Unregisters an agent added by @self; requests it holds stay with @self
   * until answered. */
  void (*agent_remove) (EnsPlugin *self, const char *name);

  /* ---- one budget across daemons ---- */
  /* From now on the daily budget is reserved and settled through @ledger
   * (transfer none, with @ledger_data valid until replaced or @self stops);
   * NULL returns to this daemon's own state store. */
  void (*budget_ledger_set) (EnsPlugin *self, const EnsBudgetLedger *ledger, gpointer ledger_data);

  /* ---- what this node's subscribers want (a bridge subscribes upstream) ---- */
  /* @func is called at once for every topic and pattern subscribed now,
   * then on every change (see EnsInterestFunc), targeted-event observers
   * ("TOPIC:CLIENT") included.  Returns an id for unwatch_interest(). */
  guint (*watch_interest) (EnsPlugin *self, EnsInterestFunc func, gpointer user_data);
  void (*unwatch_interest) (EnsPlugin *self, guint watch_id);

  /* ---- since ABI 1.1 (check ENS_STRUCT_HAS (host, EnsHost, ...)) ---- */
  /* TRUE when @msg is a bounce: an ERROR parse_native() made of malformed
   * input, which client_submit() hands straight back to the connection as
   * its one answer.  An agent's ERROR answer ({"reply_to", "error"}) is not
   * a bounce.  (transfer none) */
  gboolean (*message_is_bounce) (EnsMessage *msg);

  /* ---- since ABI 1.2 ---- */
  /* parse_native() of a JSON text already parsed: @root (transfer none) is
   * its root, of any JSON type.  A dialect that must look into a text
   * before it knows the text is native (a KSI line that is an agent's
   * {"reply_to": ...}) parses it once.  (transfer full), never NULL. */
  EnsMessage *(*message_from_native) (JsonNode *root);

  /* ---- since ABI 1.4: data carried as text, parsed when read ---- */
  /* (transfer none) the data of @msg, NULL when it has none; data that
   * came as text (EnsMessageInit.data_text) is parsed on the first call
   * and kept (EnsMessage.data is filled).  The tree is sealed: never
   * modify it.  Safe from any thread that holds a reference to @msg. */
  JsonNode *(*message_data) (EnsMessage *msg);
  /* (transfer none) the data of @msg as compact JSON text ("null" when it
   * has none), @len (may be NULL) its length: the text it came as, or
   * written once from the tree and kept.  Valid while @msg is; no NUL
   * inside, NUL-terminated; never contains a newline.  Same threads as
   * message_data(). */
  const char *(*message_data_text) (EnsMessage *msg, gsize *len);
  /* Whether json_parse() would accept @text, without building a tree;
   * @error as json_parse() sets it. */
  gboolean (*json_check) (const char *text, gsize len, GError **error);

  /* ---- since ABI 1.5: JSON read without a tree ---- */
  /* Checks @text as json_parse() does and calls @func with @user_data for
   * each member of its top-level object, in order (a name that comes twice
   * is reported twice), building nothing.  FALSE with @error set (as
   * json_parse() sets it) when the text is refused or is not an object;
   * members before the fault may have been reported.  @text, @func and
   * @user_data (transfer none). */
  gboolean (*json_scan_members) (const char *text, gsize len, EnsJsonScanFunc func, gpointer user_data,
                                 GError **error);
  /* The same, for the text of an object json_scan_members() (or
   * json_check()) has accepted already, e.g. a member's value it reported:
   * values are skipped by their brackets and quotes, not checked again, and
   * reading stops at the object's closing brace (whatever follows it).
   * FALSE when @text turns out not to be an object.  Only for checked text:
   * on any other it reads without complaint (within @len). */
  gboolean (*json_scan_checked_members) (const char *text, gsize len, EnsJsonScanFunc func,
                                         gpointer user_data);
};

/* Logging helpers for plugins holding `host` and `self`. */
#define ENS_LOG(host, self, level, ...)                   \
  G_STMT_START                                            \
  {                                                       \
    g_autofree char *ens_log_line_ = g_strdup_printf (__VA_ARGS__); \
    (host)->log ((self), (level), ens_log_line_);         \
  }                                                       \
  G_STMT_END

G_END_DECLS
