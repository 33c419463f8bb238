/* ens-message.h — the one message model on the bus.
 *
 * A message is a ref-counted, immutable envelope created by the host
 * (host->message_new) and read by plugins through the fields below.  Fields
 * are only appended; check ENS_STRUCT_HAS before reading one newer than the
 * ABI minor a plugin was built against.  Strings are owned by the message and
 * live as long as it does.
 */
#pragma once

#include <ensemble/ens-plugin.h>

G_BEGIN_DECLS

typedef enum {
  ENS_MESSAGE_REQUEST = 1, /* id, action, agent?, data */
  ENS_MESSAGE_REPLY = 2,   /* id of the request answered, action, data */
  ENS_MESSAGE_EVENT = 3,   /* topic, data, from, to?, seq */
  ENS_MESSAGE_ERROR = 4,   /* id, action, error_code, error_message, error_details */
} EnsMessageKind;

struct _EnsMessage {
  guint32 struct_size;
  EnsMessageKind kind;
  const char *id;            /* request: as the client sent it, may be NULL; reply/error: the id answered */
  const char *action;        /* request: the verb; reply/error: the verb answered */
  const char *agent;         /* request: target agent, NULL for a core verb */
  const char *topic;         /* event */
  const char *from;          /* sender: a client id or a plugin id */
  const char *to;            /* event: the only client it is for; NULL = every subscriber */
  const char *tag;           /* opaque to the host, copied from a request to its reply */
  /* payload, may be NULL.  Since ABI 1.4 a message may carry its data as
   * the JSON text it came in (an event from another node) and parse it
   * only when someone reads it: read it with host->message_data(), which
   * parses on first use and fills this field.  A plugin without
   * ENS_PLUGIN_FLAG_LAZY_DATA is only ever handed messages whose data is
   * filled already, so reading the field stays right for it. */
  JsonNode *data;
  const char *error_code;    /* error: e.g. "INVALID_PARAMETERS" */
  const char *error_message; /* error: for a person */
  JsonNode *error_details;   /* error: may be NULL */
  guint64 seq;               /* event: the bus sequence number; 0 before publishing */
  gint64 timestamp_us;       /* g_get_real_time () at creation */
  gint64 received_us;        /* request: g_get_monotonic_time () when read; reply: of its request */
  guint32 timeout_ms;        /* request: deadline, 0 = the daemon's default */
};

/* What a plugin fills to create a message; strings and nodes are copied or
 * ref'd by host->message_new, so everything here is (transfer none). */
typedef struct {
  guint32 struct_size;
  EnsMessageKind kind;
  const char *id;
  const char *action;
  const char *agent;
  const char *topic;
  const char *from;
  const char *to;
  const char *tag;
  JsonNode *data;
  const char *error_code;
  const char *error_message;
  JsonNode *error_details;
  guint32 timeout_ms;
  gint64 received_us;
  /* Since ABI 1.4: the data as one JSON text of @data_text_len bytes (-1:
   * up to its NUL), used when @data is NULL.  The message keeps the text
   * and writes it out as it is (host->encode_native), parsing it only when
   * someone reads the data.  The host checks it: text that is not exactly
   * one JSON value (as host->json_parse() reads it) leaves the message
   * without data. */
  const char *data_text;
  gssize data_text_len;
} EnsMessageInit;

#define ENS_MESSAGE_INIT(kind_) ((EnsMessageInit){ .struct_size = sizeof (EnsMessageInit), .kind = (kind_) })

/* A dialect's encoder: (transfer full) the wire bytes of @msg.  The host
 * caches the result per message and encoder (host->message_encode), so an
 * event is encoded once for all subscribers that speak the same dialect. */
typedef GBytes *(*EnsEncodeFunc) (EnsMessage *msg);

/* Error codes of the core, shared by every dialect. */
#define ENS_ERR_INVALID_JSON "INVALID_JSON"
#define ENS_ERR_INVALID_REQUEST "INVALID_REQUEST"
#define ENS_ERR_INVALID_PARAMETERS "INVALID_PARAMETERS"
#define ENS_ERR_UNKNOWN_ACTION "UNKNOWN_ACTION"
#define ENS_ERR_LINE_TOO_LONG "LINE_TOO_LONG"
#define ENS_ERR_AGENT_NOT_FOUND "AGENT_NOT_FOUND"
#define ENS_ERR_AGENT_EXISTS "AGENT_EXISTS"
#define ENS_ERR_AGENT_GONE "AGENT_GONE"
#define ENS_ERR_AGENT_NOT_CONNECTED "AGENT_NOT_CONNECTED"
#define ENS_ERR_TIMEOUT "TIMEOUT"
#define ENS_ERR_NOT_FOUND "NOT_FOUND"
#define ENS_ERR_PERMISSION_DENIED "PERMISSION_DENIED"
#define ENS_ERR_UNKNOWN_REQUEST "UNKNOWN_REQUEST"
#define ENS_ERR_STATE "STATE_ERROR"
#define ENS_ERR_OVERLOADED "OVERLOADED"
#define ENS_ERR_NOT_AVAILABLE "NOT_AVAILABLE"
#define ENS_ERR_INTERNAL "INTERNAL_ERROR"

G_END_DECLS
