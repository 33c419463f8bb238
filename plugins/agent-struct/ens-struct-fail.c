/* ens-struct-fail.c — agent-struct's error answers, built before they are sent. */
#include "ens-struct.h"

#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------- answers */

void
ens_struct_fail_free (Fail *fail)
{
  if (fail == NULL)
    return;
  g_free (fail->message);
  if (fail->details)
    json_node_unref (fail->details);
  g_free (fail);
}


/* Sets *@out (if still unset) to a new failure; takes @details. Returns FALSE. */
gboolean G_GNUC_PRINTF (4, 5)
ens_struct_fail_set (Fail **out, const char *code, JsonNode *details, const char *format, ...)
{
  va_list args;

  if (*out != NULL)
    {
      if (details)
        json_node_unref (details);
      return FALSE;
    }
  *out = g_new0 (Fail, 1);
  (*out)->code = code;
  va_start (args, format);
  (*out)->message = g_strdup_vprintf (format, args);
  va_end (args);
  (*out)->details = details;
  return FALSE;
}

/* (transfer full) {field, expected?, ...} */
JsonNode *
ens_struct_details_new (JsonObject **obj, const char *field, const char *expected)
{
  JsonNode *node = ens_node_new_object (obj);

  json_object_set_string_member (*obj, "field", field);
  if (expected)
    json_object_set_string_member (*obj, "expected", expected);
  return node;
}

gboolean
ens_struct_fail_params (Fail **out, const char *field, const char *expected, const char *why)
{
  EnsInvalid invalid;

  ens_invalid_set (&invalid, field, "%s", expected);
  return ens_struct_fail_set (out, ENS_ERR_INVALID_PARAMETERS, ens_invalid_details (&invalid), "%s: %s", field, why);
}

gboolean
ens_struct_fail_too_large (Fail **out, const char *field, guint64 limit, const char *what)
{
  JsonObject *obj;
  JsonNode *details = ens_struct_details_new (&obj, field, NULL);

  json_object_set_int_member (obj, "limit", (gint64) limit);
  return ens_struct_fail_set (out, "TOO_LARGE", details, "%s: more than %" G_GUINT64_FORMAT " %s", field, limit, what);
}

/* INVALID_NAME found here (not by the naming agent); field = the name.
 * The reason has the naming agent's shape: {rule, message}. */
gboolean
ens_struct_fail_name (Fail **out, const char *name, const char *where, const char *rule, const char *reason)
{
  JsonObject *obj, *r = json_object_new ();
  JsonNode *details = ens_struct_details_new (&obj, name, NULL);
  JsonArray *reasons = json_array_new ();

  json_object_set_string_member (obj, "name", name);
  json_object_set_string_member (obj, "path", where);
  json_object_set_string_member (r, "rule", rule);
  json_object_set_string_member (r, "message", reason);
  json_array_add_object_element (reasons, r);
  json_object_set_array_member (obj, "reasons", reasons);
  return ens_struct_fail_set (out, "INVALID_NAME", details, "invalid name \"%s\" at %s: %s", name, where, reason);
}

gboolean
ens_struct_fail_path (Fail **out, const char *code, const char *field, const char *path, const char *why)
{
  JsonObject *obj;
  JsonNode *details = ens_struct_details_new (&obj, field, NULL);

  json_object_set_string_member (obj, "path", path);
  return ens_struct_fail_set (out, code, details, "%s: %s", path[0] ? path : "(workspace root)", why);
}

gboolean
ens_struct_fail_errno (Fail **out, const char *field, const char *path, const char *what, int err)
{
  g_autofree char *why = g_strdup_printf ("%s: %s", what, g_strerror (err));

  return ens_struct_fail_path (out, err == EACCES || err == EPERM ? ENS_ERR_PERMISSION_DENIED : "IO_ERROR", field, path, why);
}

void
ens_struct_respond_fail (Struct *st, EnsResponder *responder, Fail *fail)
{
  st->host->respond_error (responder, fail->code, fail->message, fail->details);
}

