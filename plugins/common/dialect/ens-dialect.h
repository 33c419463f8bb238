/* ens-dialect.h — a seed system's protocol at the edge, as data (the static
 * library plugins/common/dialect).
 *
 * A dialect is a const table: each command, message type or route of the
 * system, the core verb it becomes, how its fields are renamed on the way in
 * (request parameters → the verb's data) and on the way out (the core's
 * answer → the dialect's result), how error codes are named, and flags
 * saying what the connection must do.  Beside the table, the few functions a
 * table cannot say: decode a frame, encode the core's replies, errors and
 * events.  One file per dialect (ens-dialect-ksi.c, ens-dialect-centerfire.c,
 * ...); adding a field is one line in that file's table.
 *
 * A transport asks for a dialect (ens_dialect_ksi, ...) and carries bytes:
 * it frames its input as dialect->framing says, hands each frame to
 * dialect->decode, acts on the EnsDialectFrame it gets back (bytes for the
 * peer at once, a message for the core, flags), and writes the core's
 * answers as host->message_encode (msg, dialect->encode) makes them.  The
 * library touches no socket; transports and the fuzz targets link it.
 *
 * Everything runs on the main loop.  Encoders are EnsEncodeFunc and have no
 * context argument: a plugin calls ens_dialect_init() once, before the first
 * decode or encode. */
#pragma once

#include <ensemble/ensemble.h>

#include "ens-json-util.h"

G_BEGIN_DECLS

/* ------------------------------------------------------------------ fields */

/* How one field is read and written.  On the way in (EnsDialectEntry.in)
 * the types check what they read; on the way out they only shape it. */
typedef enum {
  ENS_FIELD_ANY,     /* any JSON value, null included */
  ENS_FIELD_STRING,  /* a string (REQUIRED: a non-empty one) */
  ENS_FIELD_STRINGS, /* a list of strings (REQUIRED: a non-empty list of non-empty strings) */
  ENS_FIELD_WORDS,   /* a list of strings, or one string of comma-separated words (trimmed) */
  ENS_FIELD_OBJECT,  /* an object */
  ENS_FIELD_INT,     /* an integer in [min, max], written multiplied by scale (0: 1) */
  ENS_FIELD_NUMBER,  /* a number in [min, max] (ABOVE_MIN: more than min) */
  ENS_FIELD_BOOL,    /* true or false */
  ENS_FIELD_SET,     /* nothing read: the JSON text @value is written */
  ENS_FIELD_PRESENT, /* true when @from is there and not null (with ENS_FIELD_NOT: false) */
  ENS_FIELD_CHOOSE,  /* @value when @from is true, @other when it is anything else */
  ENS_FIELD_SPREAD,  /* an object whose members join the object at @to ("": the top) */
  ENS_FIELD_MAP,     /* an object, its members mapped by @each */
  ENS_FIELD_EACH,    /* a list of objects, each mapped by @each */
  ENS_FIELD_KEYED,   /* a list of objects → one object of them named by their member @key, each mapped by @each */
  ENS_FIELD_FUNC,    /* what @func makes of the value at @from (NULL: none) and the whole object read */
  ENS_FIELD_INCLUDE, /* the rows of @each, read and written here (rows several tables share) */
} EnsFieldType;

typedef enum {
  ENS_FIELD_OPTIONAL = 0,      /* missing or null: nothing written (or @fallback) */
  ENS_FIELD_REQUIRED = 1 << 0, /* missing or null: the request is refused (ANY: null is a value) */
  ENS_FIELD_NOT = 1 << 1,      /* PRESENT: true when absent */
  ENS_FIELD_NONEMPTY = 1 << 2, /* STRING, STRINGS: when given, not "" (nor a list with "") */
  ENS_FIELD_ABOVE_MIN = 1 << 3, /* NUMBER: min itself is refused */
} EnsFieldFlags;

typedef struct _EnsField EnsField;

/* A field a table cannot say: (transfer full) what is written for @value
 * (transfer none; the member at the row's @from, or NULL) read from @from
 * (transfer none, the whole object); NULL: nothing is written. */
typedef JsonNode *(*EnsFieldFunc) (JsonNode *value, JsonObject *from);

struct _EnsField {
  /* Member paths: "a.b" is member b of object a.  @from may name
   * alternatives, "task|config.task": the first one present is read (an
   * error names the one sent, else the first).  @to "" is the object itself (SPREAD); NULL:
   * @from is checked and not passed on.  A row with neither ends the table. */
  const char *from;
  const char *to;
  EnsFieldType type;
  guint flags;           /* EnsFieldFlags */
  const char *fallback;  /* JSON text written when @from is missing or null; NULL: nothing */
  const char *value;     /* SET: the JSON text written; CHOOSE: written for true; FUNC: what a refusal expects */
  const char *other;     /* CHOOSE: written for anything but true */
  const char *key;       /* KEYED: the member naming each element */
  const EnsField *each;  /* MAP, EACH, KEYED: how each object maps; NULL: as it is */
  gint64 min, max;       /* INT: accepted range */
  gint64 scale;          /* INT: factor (seconds → milliseconds: 1000); 0: 1 */
  EnsFieldFunc func;     /* FUNC */
};

/* The table's rows, one per line:
 *   ENS_MAP ("agent_id", "name", STRING, REQUIRED)   read, check, rename
 *   ENS_MAP_OR ("profile", "composition", ANY, "\"default\"")   with a fallback
 *   ENS_SET ("status", "\"healthy\"")                a constant
 *   ENS_INT ("timeout", "timeout_ms", OPTIONAL, 1, 600, 1000)
 *   ENS_CHOOSE ("connected", "status", "\"active\"", "\"registered\"", NULL)
 *   ENS_NESTED (EACH, "sessions", "sessions", each_session)
 *   ENS_KEYED ("agents", "agents", "name", each_agent)
 *   ENS_CHECK ("config", OBJECT)                     checked, not passed on
 *   ENS_FUNC ("created_at", "startedAt", OPTIONAL, js_date)   a small function's answer
 *   ENS_INCLUDE (result_out)                         another table's rows
 * and ENS_FIELDS_END. */
#define ENS_MAP(from_, to_, type_, flags_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_##type_, .flags = ENS_FIELD_##flags_ }
#define ENS_MAP_OR(from_, to_, type_, fallback_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_##type_, .fallback = (fallback_) }
#define ENS_SET(to_, json_) { .to = (to_), .type = ENS_FIELD_SET, .value = (json_) }
#define ENS_INT(from_, to_, flags_, min_, max_, scale_)                                                   \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_INT, .flags = ENS_FIELD_##flags_, .min = (min_), \
    .max = (max_), .scale = (scale_) }
#define ENS_PRESENT(from_, to_, flags_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_PRESENT, .flags = ENS_FIELD_##flags_ }
#define ENS_CHOOSE(from_, to_, if_true_, otherwise_, if_absent_)                                      \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_CHOOSE, .value = (if_true_), .other = (otherwise_), \
    .fallback = (if_absent_) }
#define ENS_NESTED(type_, from_, to_, each_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_##type_, .each = (each_) }
#define ENS_KEYED(from_, to_, key_, each_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_KEYED, .key = (key_), .each = (each_) }
#define ENS_CHECK(from_, type_) { .from = (from_), .to = NULL, .type = ENS_FIELD_##type_ }
#define ENS_MAP_FB(from_, to_, type_, flags_, fallback_)                                             \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_##type_, .flags = ENS_FIELD_##flags_, .fallback = (fallback_) }
#define ENS_NUMBER(from_, to_, flags_, min_, max_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_NUMBER, .flags = (flags_), .min = (min_), .max = (max_) }
/* REQUIRED FUNC whose NULL refuses the field: @expected says what was wanted. */
#define ENS_FUNC_CHECK(from_, func_, expected_) \
  { .from = (from_), .to = NULL, .type = ENS_FIELD_FUNC, .flags = ENS_FIELD_REQUIRED, .func = (func_), .value = (expected_) }
#define ENS_INCLUDE(rows_) { .from = NULL, .to = "", .type = ENS_FIELD_INCLUDE, .each = (rows_) }
#define ENS_FUNC(from_, to_, flags_, func_) \
  { .from = (from_), .to = (to_), .type = ENS_FIELD_FUNC, .flags = ENS_FIELD_##flags_, .func = (func_) }
#define ENS_FIELDS_END { .from = NULL, .to = NULL }

/* ------------------------------------------------------------------ entries */

typedef enum {
  ENS_DIALECT_FLAG_NONE = 0,
  /* Entry: after it the connection stays open and receives what is pushed
   * to it (KSI AGENT_CONNECTION connect). */
  ENS_DIALECT_KEEP_OPEN = 1 << 0,
  /* Entry: HOLD_RESULTS_UNTIL_PEER_CLOSE.  The reply carries a request_id;
   * the events that carry it too (to whichever connection of the dialect)
   * wait until the peer has closed the connection that asked, or a
   * transport setting's time has passed (KSI's client registers its pending
   * request only after closing: ksi-result-hold-ms). */
  ENS_DIALECT_HOLD_RESULTS = 1 << 1,
  /* Entry: answered by the dialect itself, never by the core. */
  ENS_DIALECT_ANSWERED_HERE = 1 << 2,
  /* Entry (out) and event entries: members no field reads are kept as
   * they are. */
  ENS_DIALECT_KEEP_REST = 1 << 3,
  /* Dialect: one request per connection (then the reply, then the close),
   * unless an entry with KEEP_OPEN kept it open. */
  ENS_DIALECT_ONE_SHOT = 1 << 4,
} EnsDialectFlags;

typedef struct {
  /* The command, message type or route ("SET_AGENT_KV", "spawn_session",
   * "POST /api/team-chat"); an event entry: the topic. */
  const char *name;
  /* The core verb it becomes; NULL: decode decides (a Centerfire action
   * for the socket's agent, an entry answered here). */
  const char *verb;
  /* With @is: this row only when the frame's parameter @when is the string
   * @is (one command, two verbs: AGENT_CONNECTION connect/disconnect). */
  const char *when;
  const char *is;
  const EnsField *in;  /* parameters → the verb's data; NULL: as they are */
  const EnsField *out; /* the core's answer → the dialect's result; NULL: as it is */
  /* The dialect's name for the answer, where it has one (a {type, payload}
   * reply "session_spawned", an HTTP status as text "201"); NULL: none. */
  const char *answer;
  guint flags; /* EnsDialectFlags */
} EnsDialectEntry;

/* A core error code (ENS_ERR_*, ENS_COMPLETION_ERR_*) and the dialect's. */
typedef struct {
  const char *core;
  const char *dialect;
} EnsDialectCode;

typedef enum {
  ENS_DIALECT_FRAMING_MESSAGE, /* the transport frames (a WebSocket message, an HTTP body) */
  ENS_DIALECT_FRAMING_LINES,   /* one frame per '\n'-ended line */
  ENS_DIALECT_FRAMING_VALUE,   /* a complete JSON value (ens_dialect_scan_value) or a line, whichever ends first */
} EnsDialectFraming;

typedef struct _EnsDialect EnsDialect;

/* What one frame asks of its connection: the transport zeroes it, sets
 * @host (and @agent for a per-agent socket), calls dialect->decode, acts on
 * the result, then calls ens_dialect_frame_clear(). */
typedef struct {
  /* in */
  const EnsHost *host;
  const char *agent; /* (transfer none) the agent a per-agent socket serves, or NULL */
  /* out */
  EnsMessage *submit;            /* (transfer full) for host->client_submit, or NULL */
  GBytes *reply;                 /* (transfer full) bytes for the peer at once (an error, an answer given here), or NULL */
  const EnsDialectEntry *entry;  /* (transfer none) the row matched, or NULL */
  guint flags;                   /* the row's EnsDialectFlags (KEEP_OPEN, HOLD_RESULTS) */
} EnsDialectFrame;

struct _EnsDialect {
  const char *name;               /* "ksi" */
  const EnsDialectEntry *entries; /* ended by a row whose name is NULL */
  const EnsDialectEntry *events;  /* by topic, how events are reshaped; NULL-ended, may be NULL */
  const EnsDialectCode *codes;    /* core → dialect error codes; NULL-ended, may be NULL */
  guint flags;                    /* connection rules: ENS_DIALECT_ONE_SHOT */
  EnsDialectFraming framing;
  /* One frame (without its '\n') in; fills @frame: exactly one of
   * frame->reply and frame->submit.  NULL for a FRAMING_MESSAGE dialect
   * whose transport parses each message and looks the row up itself
   * (Neolith, the HTTP routes). */
  void (*decode) (EnsDialectFrame *frame, const char *bytes, gsize len);
  /* The core's REPLY, ERROR and EVENT as the dialect's bytes (requests
   * pushed to the dialect's agents go out native); NULL: none (HTTP routes
   * answer through their rows). */
  EnsEncodeFunc encode;
};

/* The dialects of this library. */
extern const EnsDialect ens_dialect_ksi;
extern const EnsDialect ens_dialect_centerfire;
extern const EnsDialect ens_dialect_neolith;
/* Route rows ("METHOD /path", @answer the HTTP status) that transport-http
 * runs: KSI's HTTP plan (ens-dialect-ksi.c); Neolith's REST and Rhetor's
 * routes are declared with their dialects below. */
extern const EnsDialect ens_dialect_ksi_http;

/* ------------------------------------------------------------------ Neolith (ens-dialect-neolith.c) */

/* wundr's orchestrator-daemon over WebSocket: the transport parses each
 * message, asks here what it is, and carries the frames these make.  The
 * encoder of ens_dialect_neolith makes a session event's frame (empty:
 * wundr has none for it).  Every JsonNode returned is (transfer full). */

/* The row for @message's type (transfer none), with @params (transfer none)
 * filled for its verb; NULL with *@error wundr's text ("Unknown message
 * type", "Invalid message format"). */
const EnsDialectEntry *ens_dialect_neolith_decode (JsonObject *message, JsonObject *params, const char **error);
/* The core's answer @data (transfer none) to @entry's verb as wundr's message. */
JsonNode *ens_dialect_neolith_answer (const EnsDialectEntry *entry, JsonNode *data);
/* A core session event (transfer none) as wundr's message, or NULL. */
JsonNode *ens_dialect_neolith_event (JsonObject *event);
/* {"type":"daemon_status_update","status":DaemonStatus} from the answers of
 * health, sessions.list and providers.list (each transfer none, may be NULL). */
JsonNode *ens_dialect_neolith_daemon_status (JsonObject *health, JsonObject *list, JsonObject *providers);
/* {"type"}; {"type":"health_check_response","healthy"}; {"type","sessionId","taskId","error"?}. */
JsonNode *ens_dialect_neolith_simple (const char *type);
JsonNode *ens_dialect_neolith_health (gboolean healthy);
JsonNode *ens_dialect_neolith_task (const char *type, const char *session_id, const char *task_id, const char *error);
/* (transfer full) wundr's text for a core error about @session_id
 * ("Session not found: <id>"), else @message. */
char *ens_dialect_neolith_error_text (const char *code, const char *message, const char *session_id);
/* Whether a session record is one of Rhetor's (not Neolith's). */
gboolean ens_dialect_neolith_is_rhetor (JsonObject *record);
/* (transfer full) now as JavaScript writes a date. */
char *ens_dialect_neolith_now (void);

/* Neolith's REST routes (/api/daemon...): rows named "METHOD /path", their
 * @answer the HTTP status; transport-http runs them. */
extern const EnsDialect ens_dialect_neolith_rest;
/* A session record, and the daemon's health, in those routes' names. */
JsonNode *ens_dialect_neolith_rest_session (JsonObject *record);
JsonNode *ens_dialect_neolith_rest_status (JsonObject *health);

/* ------------------------------------------------------------------ Rhetor / aish (ens-dialect-rhetor.c) */

/* Rhetor's AI specialists: each a core session whose id is "<name>-ai" and
 * whose orchestrator_id is ENS_RHETOR_ORCHESTRATOR; @roster below is the
 * setting rhetor-specialists (component names, "apollo"). */
#define ENS_RHETOR_ORCHESTRATOR "rhetor"

typedef struct {
  const char *name;  /* the component, "apollo" */
  const char *title; /* "Apollo" */
  const char *roles; /* comma-separated, the first is its type: "code-analysis,code-generation" */
} EnsRhetorSpecialist;

/* (transfer none) the table's row for component @name, or NULL (such a
 * name still serves, with the role "general"). */
const EnsRhetorSpecialist *ens_dialect_rhetor_specialist (const char *name);
/* Whether @name can be a component (a-z 0-9 - _, at most 48). */
gboolean ens_dialect_rhetor_name_valid (const char *name);
/* (transfer full) "<name>-ai". */
char *ens_dialect_rhetor_id (const char *name);
/* (transfer full) the id of the specialist of @roster that @name names
 * ("apollo-ai", "apollo", "apollo-assistant", any case), or NULL. */
char *ens_dialect_rhetor_resolve (const char *const *roster, const char *name);
/* (transfer none) the component of @roster whose id is @id, or NULL. */
const char *ens_dialect_rhetor_component (const char *const *roster, const char *id);
/* (transfer full) the sessions.ensure data of component @name. */
JsonNode *ens_dialect_rhetor_ensure_data (const char *name);
/* Adds the specialist's name, type, component_id, capabilities, roles and
 * personality to @out (transfer none). */
void ens_dialect_rhetor_describe (JsonObject *out, const char *name);

/* Rhetor's routes: rows named "METHOD /path" (their @answer the HTTP
 * status) that transport-http runs. */
extern const EnsDialect ens_dialect_rhetor;
/* Whether a session record is one of Rhetor's, and takes messages. */
gboolean ens_dialect_rhetor_is_socket (JsonObject *record);
gboolean ens_dialect_rhetor_active (JsonObject *record);
/* (transfer full) @from (transfer none: a record, or a task_completed
 * event) through the out fields of @route's row. */
JsonNode *ens_dialect_rhetor_out (const char *route, JsonObject *from);

/* ------------------------------------------------------------------ the engine (ens-dialect.c) */

/* Once per plugin, before the first decode or encode: the host the
 * encoders use. */
void ens_dialect_init (const EnsHost *host);
/* (transfer none) that host. */
const EnsHost *ens_dialect_host (void);

/* The row for @name: with a @when, the one whose @is matches @params' member
 * (transfer none, may be NULL).  NULL when none; *@known (may be NULL) then
 * says whether @name itself is in the table (only the @when did not match). */
const EnsDialectEntry *ens_dialect_find (const EnsDialect *dialect, const char *name, JsonObject *params,
                                         gboolean *known);
/* The row that asked for @answer (a REPLY or ERROR whose tag is the row's
 * name and whose action its verb), or NULL. */
const EnsDialectEntry *ens_dialect_find_answered (const EnsDialect *dialect, EnsMessage *answer);
/* The event row for @topic, or NULL. */
const EnsDialectEntry *ens_dialect_find_event (const EnsDialect *dialect, const char *topic);
/* Fills @expected (of @size bytes) with the values @name's @when takes:
 * "\"connect\" or \"disconnect\"". */
void ens_dialect_variants (const EnsDialect *dialect, const char *name, char *expected, gsize size);

/* Writes @fields of @from (transfer none, may be NULL) into @to (transfer
 * none).  FALSE with @invalid filled ({field as the dialect names it,
 * expected}) when a field fails its check; @to is then partly written. */
gboolean ens_dialect_map (const EnsField *fields, JsonObject *from, JsonObject *to, EnsInvalid *invalid);
/* (transfer full) @data (transfer none, may be NULL) through @fields
 * (NULL: a copy of @data, or {}), keeping the rest with KEEP_REST. */
JsonNode *ens_dialect_reshape (const EnsField *fields, guint flags, JsonNode *data);

/* (transfer full) the request for @entry: its verb, tag = its name, data =
 * @params through its @in; NULL with @invalid filled when a field fails.
 * @agent (may be NULL) is the agent asked. */
EnsMessage *ens_dialect_request (const EnsHost *host, const EnsDialectEntry *entry, const char *agent,
                                 JsonObject *params, EnsInvalid *invalid);
/* The dialect's name for a core error @code (never NULL). */
const char *ens_dialect_code (const EnsDialect *dialect, const char *code);
/* A core parameter error ({field, expected} details) about @entry's
 * request in the dialect's words: TRUE with @invalid naming the field as
 * @entry->in reads it (the first alternative), FALSE when @details
 * (transfer none, may be NULL) is not such an error or no field of @in
 * writes it. */
gboolean ens_dialect_core_invalid (const EnsDialectEntry *entry, JsonNode *details, EnsInvalid *invalid);

/* HOLD_RESULTS: the request_id an answer or event carries (transfer none),
 * or NULL. */
const char *ens_dialect_hold_key (EnsMessage *msg);

/* ENS_DIALECT_FRAMING_VALUE: the length of the first complete JSON value of
 * @buf after white space, the white space included, or 0 while it is
 * incomplete.  Objects, arrays and strings end with their closing byte
 * (strings and escapes inside are skipped); any other value ends at the
 * first white space or at @at_eof. */
gsize ens_dialect_scan_value (const char *buf, gsize len, gboolean at_eof);

/* Adds @bytes (transfer full) to what goes back at once. */
void ens_dialect_frame_reply (EnsDialectFrame *frame, GBytes *bytes);
void ens_dialect_frame_clear (EnsDialectFrame *frame);

/* ---- writing JSON by hand, for encoders ---- */

/* @node (may be NULL: null) as compact JSON, the way the core writes it. */
void ens_dialect_append_json (GString *out, JsonNode *node);
/* @s (NULL: "") as a JSON string. */
void ens_dialect_append_string (GString *out, const char *s);
/* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ", quoted. */
void ens_dialect_append_timestamp (GString *out, gint64 unix_us);

G_END_DECLS
