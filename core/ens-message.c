/* ens-message.c — the envelope: one allocation per message, ref-counted,
 * immutable once made; encodings cached per encoder so an event is
 * serialised once for all the subscribers that speak the same dialect.
 *
 * The data is a tree, or the JSON text it came as (an event from another
 * node): the text is checked when the message is made, written out as it
 * is, and parsed only when someone reads the data (ens_message_get_data).
 * Both the tree and the text are made at most once and published with a
 * compare-and-swap, so any thread holding a reference may read them. */
#include "ens-message-private.h"
#include "ens-json.h"

#include <string.h>

typedef struct _EncodeSlot EncodeSlot;
struct _EncodeSlot {
  EnsEncodeFunc func;
  GBytes *bytes;
  EncodeSlot *next;
};

/* The data as JSON text: compact enough for one line (no newline). */
typedef struct {
  gsize len;
  char text[]; /* NUL-terminated */
} DataText;

typedef struct {
  EnsMessage pub;
  gint ref_count;
  DataText *text;     /* NULL until known; atomic */
  gboolean text_owned; /* written from the tree (else inside this allocation) */
  guint id_is_number : 1;
  guint bounce : 1; /* parser error going back to its sender */
  guint remote : 1; /* came from another node: not tapped (never sent back) */
  char *from_owned; /* set by ens_message_set_from */
  EncodeSlot first;
  EncodeSlot *more;
  char strings[];
} EnsMessagePriv;

#define PRIV(m) ((EnsMessagePriv *) (m))

static gsize
slen (const char *s)
{
  return s ? strlen (s) + 1 : 0;
}

static const char *
scopy (char **cursor, const char *s)
{
  char *dst;
  gsize n;

  if (s == NULL)
    return NULL;
  n = strlen (s) + 1;
  dst = *cursor;
  memcpy (dst, s, n);
  *cursor += n;
  return dst;
}

static inline gboolean
is_json_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The data text of @init worth keeping, trimmed, into @text and @len; FALSE
 * when there is none.  Text with a line break in its white space is parsed
 * into @tree instead (the wire is one line per message); text that is not
 * one JSON value is dropped. */
static gboolean
init_data_text (const EnsMessageInit *init, gboolean checked, const char **text, gsize *len, JsonNode **tree)
{
  const char *t;
  gsize n;

  *tree = NULL;
  if (init->data != NULL || !ENS_STRUCT_HAS (init, EnsMessageInit, data_text_len) || init->data_text == NULL)
    return FALSE;
  t = init->data_text;
  n = init->data_text_len < 0 ? strlen (t) : (gsize) init->data_text_len;
  while (n && is_json_space (*t))
    t++, n--;
  while (n && is_json_space (t[n - 1]))
    n--;
  if (memchr (t, '\n', n) || memchr (t, '\r', n))
    {
      *tree = ens_json_parse (t, n, NULL);
      return FALSE;
    }
  if (!checked && !ens_json_check (t, n, NULL))
    return FALSE;
  *text = t;
  *len = n;
  return TRUE;
}

static EnsMessage *
message_new (const EnsMessageInit *init, gboolean text_checked)
{
  gsize strings = slen (init->id) + slen (init->action) + slen (init->agent) + slen (init->topic) +
                  slen (init->from) + slen (init->to) + slen (init->tag) + slen (init->error_code) +
                  slen (init->error_message);
  const char *text = NULL;
  gsize text_len = 0, text_at = 0;
  JsonNode *tree = NULL;
  gboolean has_text = init_data_text (init, text_checked, &text, &text_len, &tree);
  gsize size = sizeof (EnsMessagePriv) + strings;
  EnsMessagePriv *priv;
  EnsMessage *m;
  char *cursor;

  if (has_text)
    {
      text_at = (size + 7) & ~(gsize) 7;
      size = text_at + sizeof (DataText) + text_len + 1;
    }
  priv = g_malloc0 (size);
  m = &priv->pub;
  cursor = priv->strings;
  if (has_text)
    {
      DataText *dt = (DataText *) ((char *) priv + text_at);
      dt->len = text_len;
      memcpy (dt->text, text, text_len);
      dt->text[text_len] = '\0';
      priv->text = dt;
    }

  priv->ref_count = 1;
  m->struct_size = sizeof (EnsMessage);
  m->kind = init->kind;
  m->id = scopy (&cursor, init->id);
  m->action = scopy (&cursor, init->action);
  m->agent = scopy (&cursor, init->agent);
  m->topic = scopy (&cursor, init->topic);
  m->from = scopy (&cursor, init->from);
  m->to = scopy (&cursor, init->to);
  m->tag = scopy (&cursor, init->tag);
  m->error_code = scopy (&cursor, init->error_code);
  m->error_message = scopy (&cursor, init->error_message);
  m->data = init->data ? json_node_ref (init->data) : tree;
  m->error_details = init->error_details ? json_node_ref (init->error_details) : NULL;
  m->timeout_ms = init->timeout_ms;
  m->timestamp_us = g_get_real_time ();
  m->received_us = init->received_us ? init->received_us : g_get_monotonic_time ();
  return m;
}

EnsMessage *
ens_message_new (const EnsMessageInit *init)
{
  return message_new (init, FALSE);
}

EnsMessage *
ens_message_new_checked (const EnsMessageInit *init)
{
  return message_new (init, TRUE);
}

EnsMessage *
ens_message_ref (EnsMessage *msg)
{
  g_atomic_int_inc (&PRIV (msg)->ref_count);
  return msg;
}

void
ens_message_unref (EnsMessage *msg)
{
  EnsMessagePriv *priv = PRIV (msg);

  if (msg == NULL || !g_atomic_int_dec_and_test (&priv->ref_count))
    return;
  g_clear_pointer (&msg->data, json_node_unref);
  g_clear_pointer (&msg->error_details, json_node_unref);
  g_clear_pointer (&priv->first.bytes, g_bytes_unref);
  if (priv->text_owned)
    g_free (priv->text);
  g_free (priv->from_owned);
  while (priv->more)
    {
      EncodeSlot *slot = priv->more;
      priv->more = slot->next;
      g_bytes_unref (slot->bytes);
      g_free (slot);
    }
  g_free (priv);
}

GBytes *
ens_message_encode (EnsMessage *msg, EnsEncodeFunc encode)
{
  EnsMessagePriv *priv = PRIV (msg);
  EncodeSlot *slot;

  if (priv->first.func == encode)
    return priv->first.bytes;
  for (slot = priv->more; slot; slot = slot->next)
    if (slot->func == encode)
      return slot->bytes;

  if (priv->first.func == NULL)
    slot = &priv->first;
  else
    {
      slot = g_new0 (EncodeSlot, 1);
      slot->next = priv->more;
      priv->more = slot;
    }
  slot->func = encode;
  slot->bytes = encode (msg);
  return slot->bytes;
}

JsonNode *
ens_message_get_data (EnsMessage *msg)
{
  JsonNode *node = g_atomic_pointer_get (&msg->data);
  DataText *dt;

  if (node != NULL || (dt = g_atomic_pointer_get (&PRIV (msg)->text)) == NULL)
    return node;
  node = ens_json_parse (dt->text, dt->len, NULL); /* checked when made: never NULL */
  if (!g_atomic_pointer_compare_and_exchange (&msg->data, NULL, node))
    json_node_unref (node); /* another thread was first */
  return g_atomic_pointer_get (&msg->data);
}

const char *
ens_message_get_data_text (EnsMessage *msg, gsize *len)
{
  EnsMessagePriv *priv = PRIV (msg);
  DataText *dt = g_atomic_pointer_get (&priv->text);
  JsonNode *node;

  if (dt == NULL && (node = g_atomic_pointer_get (&msg->data)) != NULL)
    {
      GString *out = g_string_sized_new (sizeof (DataText) + 64);

      g_string_set_size (out, sizeof (DataText));
      ens_json_write (out, node);
      dt = (DataText *) g_string_free (out, FALSE); /* the length goes in below */
      dt->len = strlen (dt->text);
      if (g_atomic_pointer_compare_and_exchange (&priv->text, NULL, dt))
        priv->text_owned = TRUE;
      else
        {
          g_free (dt);
          dt = g_atomic_pointer_get (&priv->text);
        }
    }
  if (dt == NULL)
    {
      if (len)
        *len = 4;
      return "null";
    }
  if (len)
    *len = dt->len;
  return dt->text;
}

gboolean
ens_message_has_data_text (EnsMessage *msg)
{
  return g_atomic_pointer_get (&PRIV (msg)->text) != NULL;
}

void
ens_message_set_seq (EnsMessage *msg, guint64 seq)
{
  msg->seq = seq;
}

void
ens_message_set_from (EnsMessage *msg, const char *from)
{
  EnsMessagePriv *priv = PRIV (msg);
  char *old = priv->from_owned;

  priv->from_owned = g_strdup (from);
  msg->from = priv->from_owned;
  g_free (old);
}

gboolean
ens_message_id_is_number (EnsMessage *msg)
{
  return PRIV (msg)->id_is_number;
}

void
ens_message_set_remote (EnsMessage *msg)
{
  PRIV (msg)->remote = TRUE;
}

gboolean
ens_message_is_remote (EnsMessage *msg)
{
  return PRIV (msg)->remote;
}

gboolean
ens_message_is_bounce (EnsMessage *msg)
{
  return PRIV (msg)->bounce;
}

static EnsMessage *
answer_new (EnsMessage *request, const EnsMessageInit *init)
{
  EnsMessage *m = ens_message_new (init);

  if (request)
    PRIV (m)->id_is_number = PRIV (request)->id_is_number;
  return m;
}

static void
reply_init (EnsMessageInit *init, EnsMessage *request)
{
  init->id = request->id;
  init->action = request->action;
  init->agent = request->agent;
  init->tag = request->tag;
  init->to = request->from;
  init->received_us = request->received_us;
}

EnsMessage *
ens_message_new_reply (EnsMessage *request, JsonNode *data)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REPLY);

  reply_init (&init, request);
  init.data = data;
  return answer_new (request, &init);
}

EnsMessage *
ens_message_new_reply_text (EnsMessage *request, const char *data_text, gsize len)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REPLY);
  EnsMessage *m;

  reply_init (&init, request);
  init.data_text = data_text;
  init.data_text_len = (gssize) len;
  m = ens_message_new_checked (&init);
  PRIV (m)->id_is_number = PRIV (request)->id_is_number;
  return m;
}

EnsMessage *
ens_message_new_error (EnsMessage *request, const char *code, const char *message, JsonNode *details)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);

  if (request)
    {
      init.id = request->id;
      init.action = request->action;
      init.agent = request->agent;
      init.tag = request->tag;
      init.to = request->from;
      init.received_us = request->received_us;
    }
  init.error_code = code;
  init.error_message = message;
  init.error_details = details;
  return answer_new (request, &init);
}

EnsMessage *
ens_message_new_invalid (EnsMessage *request, const char *field, const char *expected)
{
  JsonObject *obj;
  g_autoptr (JsonNode) details = ens_json_object_node (&obj);
  g_autofree char *text = g_strdup_printf ("%s must be %s", field, expected);

  json_object_set_string_member (obj, "field", field);
  json_object_set_string_member (obj, "expected", expected);
  return ens_message_new_error (request, ENS_ERR_INVALID_PARAMETERS, text, details);
}

/* ------------------------------------------------------------ native wire */

static void
append_id (GString *out, EnsMessage *msg)
{
  if (msg->id == NULL)
    g_string_append (out, "null");
  else if (PRIV (msg)->id_is_number)
    g_string_append (out, msg->id);
  else
    ens_json_write_string (out, msg->id);
}

/* A reply's or request's data: encoded once, so the tree is written
 * straight in unless the text is there already. */
static void
append_data (GString *out, EnsMessage *msg)
{
  if (ens_message_has_data_text (msg))
    {
      gsize len;
      const char *text = ens_message_get_data_text (msg, &len);
      g_string_append_len (out, text, len);
    }
  else
    ens_json_write (out, msg->data);
}

static void
append_processing_time (GString *out, EnsMessage *msg)
{
  g_string_append (out, ",\"processing_time_ms\":");
  ens_json_append_millis (out, g_get_monotonic_time () - msg->received_us);
}

GBytes *
ens_message_encode_native (EnsMessage *msg)
{
  GString *out = g_string_sized_new (160);

  switch (msg->kind)
    {
    case ENS_MESSAGE_EVENT:
      {
        gsize len;
        /* The text it came as, or written once for every encoder and
         * bridge that wants it. */
        const char *text = ens_message_get_data_text (msg, &len);

        g_string_append (out, "{\"event\":");
        ens_json_write_string (out, msg->topic ? msg->topic : "");
        g_string_append (out, ",\"data\":");
        g_string_append_len (out, text, len);
      }
      if (msg->from)
        {
          g_string_append (out, ",\"from\":");
          ens_json_write_string (out, msg->from);
        }
      if (msg->to)
        {
          g_string_append (out, ",\"to\":");
          ens_json_write_string (out, msg->to);
        }
      g_string_append (out, ",\"seq\":");
      ens_json_write_uint (out, msg->seq);
      g_string_append (out, ",\"timestamp\":");
      ens_json_append_timestamp (out, msg->timestamp_us);
      g_string_append_c (out, '}');
      break;

    case ENS_MESSAGE_REPLY:
      g_string_append (out, "{\"id\":");
      append_id (out, msg);
      g_string_append (out, ",\"status\":\"success\",\"data\":");
      append_data (out, msg);
      g_string_append (out, ",\"timestamp\":");
      ens_json_append_timestamp (out, msg->timestamp_us);
      append_processing_time (out, msg);
      g_string_append_c (out, '}');
      break;

    case ENS_MESSAGE_ERROR:
      g_string_append (out, "{\"id\":");
      append_id (out, msg);
      g_string_append (out, ",\"status\":\"error\",\"error\":{\"code\":");
      ens_json_write_string (out, msg->error_code ? msg->error_code : ENS_ERR_INTERNAL);
      g_string_append (out, ",\"message\":");
      ens_json_write_string (out, msg->error_message ? msg->error_message : "");
      g_string_append (out, ",\"details\":");
      if (msg->error_details)
        ens_json_write (out, msg->error_details);
      else
        g_string_append (out, "{}");
      g_string_append (out, "},\"timestamp\":");
      ens_json_append_timestamp (out, msg->timestamp_us);
      append_processing_time (out, msg);
      g_string_append_c (out, '}');
      break;

    case ENS_MESSAGE_REQUEST:
    default:
      /* A request pushed to an external agent; it answers with reply_to = id. */
      g_string_append (out, "{\"id\":");
      append_id (out, msg);
      g_string_append (out, ",\"action\":");
      ens_json_write_string (out, msg->action ? msg->action : "");
      if (msg->agent)
        {
          g_string_append (out, ",\"agent\":");
          ens_json_write_string (out, msg->agent);
        }
      if (msg->from)
        {
          g_string_append (out, ",\"from\":");
          ens_json_write_string (out, msg->from);
        }
      g_string_append (out, ",\"data\":");
      append_data (out, msg);
      g_string_append_printf (out, ",\"timeout_ms\":%u}", msg->timeout_ms);
      break;
    }
  g_string_append_c (out, '\n');
  return g_string_free_to_bytes (out);
}

/* ------------------------------------------------------------ native parse */

static EnsMessage *
bounce_field (const char *id, gboolean id_is_number, const char *code, const char *message, const char *field)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_ERROR);
  g_autoptr (JsonNode) details = NULL;
  EnsMessage *m;

  if (field)
    {
      JsonObject *obj;
      details = ens_json_object_node (&obj);
      json_object_set_string_member (obj, "field", field);
    }
  init.id = id;
  init.error_code = code;
  init.error_message = message;
  init.error_details = details;
  m = ens_message_new (&init);
  PRIV (m)->bounce = TRUE;
  PRIV (m)->id_is_number = id_is_number;
  return m;
}

static EnsMessage *
bounce (const char *id, gboolean id_is_number, const char *code, const char *message)
{
  return bounce_field (id, id_is_number, code, message, NULL);
}

/* Reads "id": a string or an integer, echoed back as it came. */
static gboolean
read_id (JsonObject *obj, const char *member, char **id, gboolean *is_number)
{
  JsonNode *node = json_object_get_member (obj, member);

  *id = NULL;
  *is_number = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    {
      *id = g_strdup (json_node_get_string (node));
      return TRUE;
    }
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    {
      *id = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
      *is_number = TRUE;
      return TRUE;
    }
  return FALSE;
}

static gboolean
member_is_string_or_absent (JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member (obj, member);
  return node == NULL || ens_json_get_string (obj, member) != NULL;
}

static EnsMessage *
parse_agent_answer (JsonObject *obj, gint64 received_us)
{
  g_autofree char *id = NULL;
  gboolean is_number;
  const char *status = ens_json_get_string (obj, "status");
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REPLY);
  EnsMessage *m;

  if (!read_id (obj, "reply_to", &id, &is_number) || id == NULL)
    return bounce_field (NULL, FALSE, ENS_ERR_INVALID_REQUEST, "reply_to must be a string or an integer", "reply_to");
  if (status != NULL && g_strcmp0 (status, "success") != 0 && g_strcmp0 (status, "error") != 0)
    return bounce_field (NULL, FALSE, ENS_ERR_INVALID_REQUEST, "status must be \"success\" or \"error\"", "status");

  init.id = id;
  init.received_us = received_us;
  init.data = json_object_get_member (obj, "data");
  if (g_strcmp0 (status, "error") == 0 || json_object_has_member (obj, "error"))
    {
      JsonNode *err = json_object_get_member (obj, "error");
      JsonObject *eo = err && JSON_NODE_HOLDS_OBJECT (err) ? json_node_get_object (err) : NULL;

      init.kind = ENS_MESSAGE_ERROR;
      init.data = NULL;
      init.error_code = eo && ens_json_get_string (eo, "code") ? ens_json_get_string (eo, "code") : "AGENT_ERROR";
      init.error_message = eo ? ens_json_get_string (eo, "message")
                              : (err && ens_json_get_string (obj, "error") ? ens_json_get_string (obj, "error") : NULL);
      init.error_details = eo ? json_object_get_member (eo, "details") : NULL;
      if (init.error_message == NULL)
        init.error_message = "the agent reported an error";
    }
  m = ens_message_new (&init);
  PRIV (m)->id_is_number = is_number;
  return m;
}

static EnsMessage *message_from_native (JsonNode *root, const char *data_text, gsize data_len);

/* A publish request (no agent named, not an answer) keeps its data as the
 * text it came as: the publish verb reads a few members of it and sends
 * the event's data on as it is. */
static gboolean
keep_publish_data (JsonObject *head, gpointer user_data)
{
  (void) user_data;
  return g_strcmp0 (ens_json_get_string (head, "action"), "publish") == 0 && !json_object_has_member (head, "agent")
         && !json_object_has_member (head, "reply_to");
}

/* The members a plain request is read from without a tree of the whole. */
typedef struct {
  const char *id_text; /* the id's value text */
  gsize id_len;
  char *id;            /* a string id, decoded */
  char *action;        /* a string action, decoded */
  gboolean other;      /* a member this path leaves to the tree */
  const char *data;    /* the data's text */
  gsize data_len;
} Plain;

static void
plain_member (const char *name, const char *value, gsize value_len, const char *string, gpointer user_data)
{
  Plain *pp = user_data;

  /* A name given twice: the last one counts, as in the tree. */
  if (strcmp (name, "id") == 0)
    {
      g_clear_pointer (&pp->id, g_free);
      pp->id = g_strdup (string);
      pp->id_text = value;
      pp->id_len = value_len;
    }
  else if (strcmp (name, "action") == 0)
    {
      g_clear_pointer (&pp->action, g_free);
      pp->action = g_strdup (string);
    }
  else if (strcmp (name, "data") == 0)
    {
      pp->data = value;
      pp->data_len = value_len;
    }
  else if (strcmp (name, "agent") == 0 || strcmp (name, "reply_to") == 0 || strcmp (name, "timeout_ms") == 0)
    pp->other = TRUE;
}

/* The id as read_id() reads it: a string, an integer (its digits), null or
 * absent; FALSE for anything else. */
static gboolean
plain_id (Plain *pp, gboolean *is_number)
{
  g_autoptr (JsonNode) node = NULL;

  if (pp->id_text == NULL || pp->id != NULL)
    return TRUE;
  node = ens_json_parse (pp->id_text, pp->id_len, NULL);
  if (node && JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (node && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64)
    {
      pp->id = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
      *is_number = TRUE;
      return TRUE;
    }
  return FALSE;
}

/* {"id": a string, an integer or absent, "action": a non-empty string,
 * "data"?, and members nobody reads}: the message made from the members
 * scanned, with no tree of the whole request built and freed.  A publish
 * keeps an object or array data as its text; any other verb gets its data
 * parsed on its own.  NULL for anything else (the general path reads it
 * then, with the same outcome). */
static EnsMessage *
parse_plain (const char *text, gsize len)
{
  Plain pp = { 0 };
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  EnsMessage *m = NULL;
  gboolean id_is_number = FALSE;

  /* (Those named anywhere go the general way at once: no scan for nothing.) */
  if (memmem (text, len, "\"agent\"", 7) == NULL && memmem (text, len, "\"reply_to\"", 10) == NULL &&
      memmem (text, len, "\"timeout_ms\"", 12) == NULL &&
      ens_json_scan_members (text, len, plain_member, &pp, NULL) && !pp.other && pp.action && pp.action[0] &&
      plain_id (&pp, &id_is_number))
    {
      gboolean publish = strcmp (pp.action, "publish") == 0;
      g_autoptr (JsonNode) data = NULL;

      init.id = pp.id;
      init.action = pp.action;
      init.received_us = g_get_monotonic_time ();
      if (publish && pp.data && (pp.data[0] == '{' || pp.data[0] == '['))
        {
          init.data_text = pp.data;
          init.data_text_len = (gssize) pp.data_len;
          m = ens_message_new_checked (&init);
        }
      else
        {
          /* Checked by the scan: it parses. */
          init.data = data = pp.data ? ens_json_parse (pp.data, pp.data_len, NULL) : NULL;
          m = ens_message_new (&init);
        }
      PRIV (m)->id_is_number = id_is_number;
    }
  g_free (pp.id);
  g_free (pp.action);
  return m;
}

EnsMessage *
ens_message_parse_native (const char *text, gsize len)
{
  EnsMessage *plain = parse_plain (text, len);
  g_autoptr (GError) error = NULL;
  const char *data_text;
  gsize data_len;
  g_autoptr (JsonNode) root = NULL;

  if (plain != NULL)
    return plain;
  root = ens_json_parse_keep_text (text, len, "data", keep_publish_data, NULL, &data_text, &data_len, &error);
  if (root == NULL)
    {
      g_autofree char *msg = g_strdup_printf ("malformed JSON: %s", error->message);
      return bounce (NULL, FALSE, ENS_ERR_INVALID_JSON, msg);
    }
  if (data_text != NULL && !keep_publish_data (json_node_get_object (root), NULL))
    {
      /* "agent" or "reply_to" came after the data: not for the verb */
      g_autoptr (JsonNode) whole = ens_json_parse (text, len, NULL);
      return ens_message_from_native (whole);
    }
  return message_from_native (root, data_text, data_len);
}

EnsMessage *
ens_message_from_native (JsonNode *root)
{
  return message_from_native (root, NULL, 0);
}

/* @data_text: the data, checked, when it was kept as text (not in @root). */
static EnsMessage *
message_from_native (JsonNode *root, const char *data_text, gsize data_len)
{
  g_autofree char *id = NULL;
  gboolean id_is_number = FALSE;
  gint64 received_us = g_get_monotonic_time ();
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);
  JsonObject *obj;
  JsonNode *timeout;
  EnsMessage *m;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return bounce (NULL, FALSE, ENS_ERR_INVALID_REQUEST, "a request is a JSON object");
  obj = json_node_get_object (root);

  if (json_object_has_member (obj, "reply_to"))
    return parse_agent_answer (obj, received_us);

  if (!read_id (obj, "id", &id, &id_is_number))
    return bounce_field (NULL, FALSE, ENS_ERR_INVALID_REQUEST, "id must be a string or an integer", "id");
  init.action = ens_json_get_string (obj, "action");
  if (init.action == NULL || init.action[0] == '\0')
    return bounce_field (id, id_is_number, ENS_ERR_INVALID_REQUEST,
                         json_object_has_member (obj, "action") ? "action must be a non-empty string"
                                                                : "missing field: action",
                         "action");
  if (!member_is_string_or_absent (obj, "agent"))
    return bounce_field (id, id_is_number, ENS_ERR_INVALID_REQUEST, "agent must be a string", "agent");
  timeout = json_object_get_member (obj, "timeout_ms");
  if (timeout != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (timeout) || json_node_get_value_type (timeout) != G_TYPE_INT64 ||
          json_node_get_int (timeout) < 1 || json_node_get_int (timeout) > 3600000)
        return bounce_field (id, id_is_number, ENS_ERR_INVALID_REQUEST,
                             "timeout_ms must be an integer from 1 to 3600000", "timeout_ms");
      init.timeout_ms = (guint32) json_node_get_int (timeout);
    }

  init.id = id;
  init.agent = ens_json_get_string (obj, "agent");
  init.data = json_object_get_member (obj, "data");
  init.data_text = data_text;
  init.data_text_len = (gssize) data_len;
  init.received_us = received_us;
  m = data_text ? ens_message_new_checked (&init) : ens_message_new (&init);
  PRIV (m)->id_is_number = id_is_number;
  return m;
}
