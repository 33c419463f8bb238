/* ens-verbs.c — the registry of core verbs, and the parameter readers they
 * share.  Looking a verb up is one hash lookup; the list of verbs (for
 * UNKNOWN_ACTION) keeps the order they were added in. */
#include "ens-verbs.h"
#include "ens-json.h"
#include "ens-message-private.h"

#include <string.h>

#define NAME_MAX_LEN 64

typedef struct {
  const char *action;
  EnsVerbFunc func;
  gpointer data;
  gboolean reads_text;
} Verb;

struct _EnsVerbs {
  GHashTable *by_action; /* action -> Verb* */
  GPtrArray *order;      /* Verb*, as added */
};

EnsVerbs *
ens_verbs_new (void)
{
  EnsVerbs *verbs = g_new0 (EnsVerbs, 1);

  verbs->by_action = g_hash_table_new (g_str_hash, g_str_equal);
  verbs->order = g_ptr_array_new_with_free_func (g_free);
  return verbs;
}

void
ens_verbs_free (EnsVerbs *verbs)
{
  if (verbs == NULL)
    return;
  g_hash_table_unref (verbs->by_action);
  g_ptr_array_unref (verbs->order);
  g_free (verbs);
}

static void
add (EnsVerbs *verbs, const char *action, EnsVerbFunc func, gpointer data, gboolean reads_text)
{
  Verb *verb;

  g_return_if_fail (!g_hash_table_contains (verbs->by_action, action));
  verb = g_new0 (Verb, 1);
  verb->action = action;
  verb->func = func;
  verb->data = data;
  verb->reads_text = reads_text;
  g_hash_table_insert (verbs->by_action, (gpointer) action, verb);
  g_ptr_array_add (verbs->order, verb);
}

void
ens_verbs_add (EnsVerbs *verbs, const char *action, EnsVerbFunc func, gpointer data)
{
  add (verbs, action, func, data, FALSE);
}

void
ens_verbs_add_text (EnsVerbs *verbs, const char *action, EnsVerbFunc func, gpointer data)
{
  add (verbs, action, func, data, TRUE);
}

EnsMessage *
ens_verbs_run (EnsVerbs *verbs, EnsCall *call)
{
  Verb *verb = g_hash_table_lookup (verbs->by_action, call->msg->action);
  JsonNode *data;

  call->params = NULL;
  call->params_text = NULL;
  call->params_text_len = 0;
  if (verb && verb->reads_text && g_atomic_pointer_get (&call->msg->data) == NULL
      && ens_message_has_data_text (call->msg))
    {
      const char *text = ens_message_get_data_text (call->msg, &call->params_text_len);

      if (text[0] == '{')
        {
          call->params_text = text;
          return verb->func (call, verb->data);
        }
      call->params_text_len = 0;
    }
  data = ens_message_get_data (call->msg);
  if (data && !JSON_NODE_HOLDS_OBJECT (data) && !JSON_NODE_HOLDS_NULL (data))
    return ens_call_invalid (call, "data", "an object");
  call->params = data && JSON_NODE_HOLDS_OBJECT (data) ? json_node_get_object (data) : NULL;
  if (verb)
    return verb->func (call, verb->data);

  {
    g_autofree char *text = g_strdup_printf ("unknown action \"%s\"; to ask an agent, name it in \"agent\"",
                                             call->msg->action);
    JsonObject *obj;
    g_autoptr (JsonNode) details = ens_json_object_node (&obj);
    JsonArray *known = json_array_new ();

    for (guint i = 0; i < verbs->order->len; i++)
      json_array_add_string_element (known, ((Verb *) g_ptr_array_index (verbs->order, i))->action);
    json_object_set_array_member (obj, "actions", known);
    return ens_message_new_error (call->msg, ENS_ERR_UNKNOWN_ACTION, text, details);
  }
}

/* ------------------------------------------------------------------ parameters */

gboolean
ens_name_valid (const char *name)
{
  gsize n = 0;

  if (name == NULL || name[0] == '\0' || name[0] == '.')
    return FALSE;
  for (const char *p = name; *p; p++, n++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_' && *p != '.')
      return FALSE;
  return n <= NAME_MAX_LEN;
}

EnsMessage *
ens_call_invalid (EnsCall *call, const char *field, const char *expected)
{
  return ens_message_new_invalid (call->msg, field, expected);
}

EnsMessage *
ens_call_error (EnsCall *call, const char *code, const char *message)
{
  return ens_message_new_error (call->msg, code, message, NULL);
}

gboolean
ens_call_is_admin (EnsCall *call)
{
  return call->client && (call->client->flags & ENS_CLIENT_FLAG_ADMIN);
}

gboolean
ens_call_string (EnsCall *call, const char *field, gboolean required, const char **out)
{
  JsonNode *node = call->params ? json_object_get_member (call->params, field) : NULL;

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return !required;
  *out = ens_json_get_string (call->params, field);
  return *out != NULL && (*out)[0] != '\0';
}

gboolean
ens_call_strv (EnsCall *call, const char *field, GPtrArray **out)
{
  JsonNode *node = call->params ? json_object_get_member (call->params, field) : NULL;
  GPtrArray *list;

  *out = NULL;
  if (node == NULL)
    return FALSE;
  list = g_ptr_array_new ();
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    g_ptr_array_add (list, (gpointer) json_node_get_string (node));
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *el = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_VALUE (el) || json_node_get_value_type (el) != G_TYPE_STRING ||
              json_node_get_string (el)[0] == '\0')
            {
              g_ptr_array_unref (list);
              return FALSE;
            }
          g_ptr_array_add (list, (gpointer) json_node_get_string (el));
        }
    }
  else
    {
      g_ptr_array_unref (list);
      return FALSE;
    }
  *out = list;
  return list->len > 0;
}
