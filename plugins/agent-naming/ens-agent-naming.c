/* ens-agent-naming — the naming agent ("naming"), sole authority over names.
 *
 * Names are dot-separated paths of segments:
 *   namespace   <project>.<environment>.ns<N>
 *   capability  <namespace>.<name>
 *   module      <capability>.<name>
 *   function    <module>.<name>
 * A segment is 1..64 of [a-z0-9_-] and starts with a letter; a full name is
 * at most 255 characters; a segment may not be a reserved word (setting
 * naming-reserved-words, compared case-insensitively).
 *
 * Actions:
 *   allocate_namespace {project, environment, class_type?}
 *   allocate_capability | allocate_module | allocate_function {parent, name}
 *   validate_name {name, kind?} -> {valid, name, kind?, reasons: [{rule, message, segment?}]}
 *     rule: "length" | "charset" | "case" | "start" | "reserved" | "structure" | "kind"
 *   list {project?, environment?, kind?, parent?} -> {names: [records sorted by name], count}
 *   release {name, recursive?} -> {released: true, name, released_names}
 *
 * Every name lives as one record in the state store (scope "names", key =
 * the full name): {name, cid, kind, parent?, project, environment,
 * class_type?, allocated_at}.  The store has no listing for plugins, so the
 * set of names is also kept as one index (scope "index", key "names"); the
 * index is written before a record appears and after it goes, so a crash
 * in between only leaves index entries without a record, which are dropped
 * on the next start.  Everything is mirrored in memory (a GTree sorted by
 * name) and read from the store once, at init.
 *
 * Numbers are never reused, even after a release or a restart: the N of a
 * namespace comes from the state-store sequence "ns:<project>.<environment>"
 * and the id of a CID ("cid:<project>:<environment>:<kind>:<id>", id
 * zero-padded so that lexical order is allocation order) from the sequence
 * "cid".  A released name allocated again is a new entity with a new CID.
 */
#include <ensemble/ensemble.h>

#include "ens-json-util.h"

#include <stdarg.h>
#include <string.h>

#define SEGMENT_MAX 64
#define NAME_MAX_LEN 255
#define CLASS_TYPE_MAX 64
#define MAX_REASONS 32
#define STATE_NAMES "names"
#define STATE_INDEX "index"
#define INDEX_KEY "names"
#define ERR_COLLISION "NAMESPACE_COLLISION"
#define ERR_HAS_CHILDREN "HAS_CHILDREN"

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GTree *names; /* char * name (owned) -> JsonObject * record (owned) */
} Naming;

/* The kinds of allocated names, from the top; depth = number of segments. */
static const struct {
  const char *kind;
  const char *parent_kind;
  guint depth;
} kinds[] = {
  { "namespace", NULL, 3 },
  { "capability", "namespace", 4 },
  { "module", "capability", 5 },
  { "function", "module", 6 },
};

static int
kind_index (const char *kind)
{
  for (guint i = 0; kind && i < G_N_ELEMENTS (kinds); i++)
    if (strcmp (kinds[i].kind, kind) == 0)
      return (int) i;
  return -1;
}

/* ---- small JSON helpers ---- */

/* The member as a string; NULL when absent or JSON null.  *@bad is set when
 * it is present but not a string. */
static const char *
member_string (JsonObject *params, const char *field, gboolean *bad)
{
  EnsInvalid unused;
  const char *s = NULL;

  *bad = !ens_param_string (params, field, ENS_PARAM_OPTIONAL, 0, &s, &unused);
  return s;
}

static char *
now_iso8601 (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format_iso8601 (now);
}

/* ---- name rules ---- */

static void add_reason (JsonArray *reasons, const char *rule, const char *segment, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);

static void
add_reason (JsonArray *reasons, const char *rule, const char *segment, const char *fmt, ...)
{
  JsonObject *r = json_object_new ();
  va_list ap;
  char *message;

  va_start (ap, fmt);
  message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  /* A name of thousands of bad segments gets a bounded answer. */
  if (json_array_get_length (reasons) >= MAX_REASONS)
    {
      json_object_unref (r);
      g_free (message);
      return;
    }
  /* The same reason twice (e.g. two empty segments) says nothing more. */
  for (guint i = 0; i < json_array_get_length (reasons); i++)
    {
      JsonObject *o = ens_array_object (reasons, i);
      if (strcmp (ens_member_string (o, "rule"), rule) == 0 &&
          strcmp (ens_member_string (o, "message"), message) == 0)
        {
          json_object_unref (r);
          g_free (message);
          return;
        }
    }
  json_object_set_string_member (r, "rule", rule);
  json_object_set_string_member (r, "message", message);
  if (segment)
    json_object_set_string_member (r, "segment", segment);
  json_array_add_object_element (reasons, r);
  g_free (message);
}

/* (transfer full) the reserved words, from the live setting. */
static char **
reserved_words (Naming *n)
{
  g_autoptr (GVariant) v = n->host->config_get (n->self, "naming-reserved-words");

  if (v && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING_ARRAY))
    return g_variant_dup_strv (v, NULL);
  return g_new0 (char *, 1);
}

/* Checks one segment (@len bytes at @seg, no '.') against every rule; one
 * reason per broken rule. */
static void
check_segment (const char *seg, gsize len, char **reserved, JsonArray *reasons)
{
  g_autofree char *s = g_strndup (seg, len);
  g_autoptr (GString) bad = g_string_new (NULL);
  gboolean upper = FALSE;
  guint nbad = 0;

  if (len == 0)
    {
      add_reason (reasons, "length", s, "a segment is empty (two dots in a row, or a dot at either end)");
      return;
    }
  if (len > SEGMENT_MAX)
    {
      /* Shortened on a character boundary: the message stays valid UTF-8. */
      g_autofree char *head = g_utf8_validate (s, -1, NULL) ? g_utf8_substring (s, 0, 20) : g_strdup ("");
      add_reason (reasons, "length", s, "segment \"%s...\" is %" G_GSIZE_FORMAT " characters long; at most %d allowed",
                  head, len, SEGMENT_MAX);
    }

  if (!g_utf8_validate (s, -1, NULL))
    add_reason (reasons, "charset", s, "segment is not valid UTF-8");
  else
    for (const char *p = s; *p; p = g_utf8_next_char (p))
      {
        gunichar c = g_utf8_get_char (p);

        if (c >= 'A' && c <= 'Z')
          upper = TRUE;
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
          {
            /* Each offending character once, a few at most. */
            g_autofree char *shown = c < 0x20 || c == 0x7f || c == '"' || c == '\\'
                                       ? g_strdup_printf ("U+%04X", c)
                                       : g_strndup (p, (gsize) (g_utf8_next_char (p) - p));
            g_autofree char *quoted = g_strdup_printf ("'%s'", shown);
            if (nbad < 8 && !strstr (bad->str, quoted))
              {
                g_string_append_printf (bad, "%s%s", bad->len ? ", " : "", quoted);
                nbad++;
              }
          }
      }
  if (bad->len)
    add_reason (reasons, "charset", s,
                "segment \"%s\" contains %s; only lowercase letters, digits, '_' and '-' are allowed", s, bad->str);
  if (upper)
    add_reason (reasons, "case", s, "segment \"%s\" contains uppercase letters; names are lowercase", s);
  if (!g_ascii_isalpha (s[0]))
    add_reason (reasons, "start", s, "segment \"%s\" must start with a letter", s);
  for (guint i = 0; reserved[i]; i++)
    if (g_ascii_strcasecmp (reserved[i], s) == 0)
      {
        add_reason (reasons, "reserved", s, "\"%s\" is a reserved word", s);
        break;
      }
}

/* Checks @name as a name of @kind (NULL: any number of segments; "segment",
 * "project", "environment": one segment; or a kind of allocated name).
 * Returns (transfer full) the reasons it is invalid, empty when valid. */
static JsonArray *
check_name (Naming *n, const char *name, const char *kind)
{
  JsonArray *reasons = json_array_new ();
  g_auto (GStrv) reserved = reserved_words (n);
  gsize total = strlen (name);
  guint segments = 0;
  const char *start = name;
  int k = kind_index (kind);

  if (total == 0)
    {
      add_reason (reasons, "length", NULL, "the name is empty; a name has 1 to %d characters", NAME_MAX_LEN);
      return reasons;
    }
  if (total > NAME_MAX_LEN)
    add_reason (reasons, "length", NULL, "the name is %" G_GSIZE_FORMAT " characters long; at most %d allowed", total,
                NAME_MAX_LEN);
  for (;;)
    {
      const char *dot = strchr (start, '.');
      gsize len = dot ? (gsize) (dot - start) : strlen (start);

      if (json_array_get_length (reasons) < MAX_REASONS)
        check_segment (start, len, reserved, reasons);
      segments++;
      if (!dot)
        break;
      start = dot + 1;
    }

  if (kind == NULL)
    ;
  else if (strcmp (kind, "segment") == 0 || strcmp (kind, "project") == 0 || strcmp (kind, "environment") == 0)
    {
      if (segments != 1)
        add_reason (reasons, "structure", NULL, "a %s is a single segment; '.' separates segments and is not allowed",
                    kind);
    }
  else if (k >= 0)
    {
      if (segments != kinds[k].depth)
        add_reason (reasons, "structure", NULL, "a %s name has %u segments (%s), not %u", kind, kinds[k].depth,
                    kinds[k].depth == 3 ? "project.environment.nsN" : "a namespace and one segment per level below it",
                    segments);
      else
        {
          /* The third segment of every allocated name is ns<N>, N >= 1. */
          char **parts = g_strsplit (name, ".", 4);
          const char *ns = parts[2];
          gboolean ok = g_str_has_prefix (ns, "ns") && ns[2] >= '1' && ns[2] <= '9';
          for (const char *p = ns + (ok ? 3 : 0); ok && *p; p++)
            ok = g_ascii_isdigit (*p);
          if (!ok)
            add_reason (reasons, "structure", ns, "the third segment of a %s name must be ns<N> (N >= 1), not \"%s\"", kind,
                        ns);
          g_strfreev (parts);
        }
    }
  else
    add_reason (reasons, "kind", NULL,
                "unknown kind \"%s\"; expected segment, project, environment, namespace, capability, module or function",
                kind);
  return reasons;
}

/* ---- answers ---- */

/* INVALID_PARAMETERS naming @field; @reasons (transfer full) may be NULL. */
static void
invalid (Naming *n, EnsResponder *responder, const char *field, const char *expected, JsonArray *reasons)
{
  EnsInvalid what;
  g_autoptr (JsonNode) node = NULL;
  g_autoptr (GString) message = g_string_new (NULL);
  JsonObject *det;

  ens_invalid_set (&what, field, "%s", expected);
  node = ens_invalid_details (&what);
  det = json_node_get_object (node);
  g_string_printf (message, "%s must be %s", field, expected);
  if (reasons)
    {
      for (guint i = 0; i < json_array_get_length (reasons); i++)
        g_string_append_printf (message, "%s%s", i ? "; " : " (",
                                ens_member_string (ens_array_object (reasons, i), "message"));
      if (json_array_get_length (reasons))
        g_string_append (message, ")");
      json_object_set_array_member (det, "reasons", reasons);
    }
  n->host->respond_error (responder, ENS_ERR_INVALID_PARAMETERS, message->str, node);
}

static void
state_failed (Naming *n, EnsResponder *responder, GError *error)
{
  ENS_LOG (n->host, n->self, G_LOG_LEVEL_WARNING, "state store: %s", error ? error->message : "unknown error");
  n->host->respond_error (responder, ENS_ERR_STATE, error ? error->message : "state store failed", NULL);
}

/* A name parameter: present (when @required), a string, and valid for
 * @kind.  Answers INVALID_PARAMETERS and returns FALSE otherwise. */
static gboolean
name_param (Naming *n, EnsResponder *responder, JsonObject *params, const char *field, const char *kind,
            gboolean required, const char **out)
{
  gboolean bad;
  const char *value = member_string (params, field, &bad);
  JsonArray *reasons;

  *out = NULL;
  if (bad || (value == NULL && required))
    {
      invalid (n, responder, field, "a string", NULL);
      return FALSE;
    }
  if (value == NULL)
    return TRUE;
  reasons = check_name (n, value, kind);
  if (json_array_get_length (reasons) > 0)
    {
      g_autofree char *expected = g_strdup_printf ("a valid %s name", kind ? kind : "");
      invalid (n, responder, field, expected, reasons);
      return FALSE;
    }
  json_array_unref (reasons);
  *out = value;
  return TRUE;
}

/* ---- the store ---- */

static gboolean
collect_name (gpointer key, gpointer value, gpointer data)
{
  json_array_add_string_element (data, key);
  return FALSE;
}

static gboolean
write_index (Naming *n, GError **error)
{
  g_autoptr (JsonArray) all = json_array_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_ARRAY);
  g_autofree char *text = NULL;

  g_tree_foreach (n->names, collect_name, all);
  json_node_set_array (node, all);
  text = n->host->json_to_string (node);
  return n->host->state_set (n->self, STATE_INDEX, INDEX_KEY, text, error);
}

/* Reads the index and every record it names. */
static gboolean
load (Naming *n, GError **error)
{
  g_autofree char *text = n->host->state_get (n->self, STATE_INDEX, INDEX_KEY, error);
  g_autoptr (JsonNode) root = NULL;
  JsonArray *all;
  gboolean pruned = FALSE;

  if (text == NULL)
    return error == NULL || *error == NULL;
  root = n->host->json_parse (text, strlen (text), error);
  if (root == NULL)
    return FALSE;
  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_FAILED, "the name index is not a JSON array");
      return FALSE;
    }
  all = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (all); i++)
    {
      JsonNode *el = json_array_get_element (all, i);
      const char *name = JSON_NODE_HOLDS_VALUE (el) && json_node_get_value_type (el) == G_TYPE_STRING
                           ? json_node_get_string (el) : NULL;
      g_autofree char *rec_text = name ? n->host->state_get (n->self, STATE_NAMES, name, error) : NULL;
      g_autoptr (JsonNode) rec = NULL;

      if (error && *error)
        return FALSE;
      if (rec_text)
        rec = n->host->json_parse (rec_text, strlen (rec_text), NULL);
      if (rec && JSON_NODE_HOLDS_OBJECT (rec))
        g_tree_insert (n->names, g_strdup (name), json_object_ref (json_node_get_object (rec)));
      else
        pruned = TRUE; /* indexed, but the record never made it (or was released) */
    }
  return !pruned || write_index (n, error);
}

/* Stores a new record: index first, then the record (see the top). */
static gboolean
store_record (Naming *n, const char *name, JsonObject *record, GError **error)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;

  g_tree_insert (n->names, g_strdup (name), json_object_ref (record));
  json_node_set_object (node, record);
  text = n->host->json_to_string (node);
  if (write_index (n, error) && n->host->state_set (n->self, STATE_NAMES, name, text, error))
    return TRUE;
  g_tree_remove (n->names, name);
  write_index (n, NULL);
  return FALSE;
}

/* ---- allocation ---- */

/* Allocates @name of kind @k, unless it exists.  @parent, @class_type may be
 * NULL.  Answers @responder. */
static void
allocate (Naming *n, EnsResponder *responder, int k, const char *name, const char *parent, const char *project,
          const char *environment, const char *class_type)
{
  JsonObject *existing = g_tree_lookup (n->names, name);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) record = NULL;
  g_autofree char *cid = NULL;
  g_autofree char *at = NULL;
  JsonArray *reasons;
  JsonObject *answer;
  g_autoptr (JsonNode) node = NULL;
  gint64 id;

  if (existing)
    {
      JsonObject *det = json_object_new ();
      g_autofree char *message = g_strdup_printf ("\"%s\" is already allocated (%s)", name,
                                                  ens_member_string_or (existing, "cid", ""));
      json_object_set_string_member (det, "name", name);
      json_object_set_object_member (det, "existing", json_object_ref (existing));
      node = ens_node_take_object (det);
      n->host->respond_error (responder, ERR_COLLISION, message, node);
      return;
    }
  /* The parts are valid; the whole may still be too long. */
  reasons = check_name (n, name, kinds[k].kind);
  if (json_array_get_length (reasons) > 0)
    {
      invalid (n, responder, "name", "a name that keeps the full name valid", reasons);
      return;
    }
  json_array_unref (reasons);

  id = n->host->state_next_sequence (n->self, "cid", &error);
  if (id < 0)
    {
      state_failed (n, responder, error);
      return;
    }
  cid = g_strdup_printf ("cid:%s:%s:%s:%012" G_GINT64_FORMAT, project, environment, kinds[k].kind, id);
  at = now_iso8601 ();
  record = json_object_new ();
  json_object_set_string_member (record, "name", name);
  json_object_set_string_member (record, "cid", cid);
  json_object_set_string_member (record, "kind", kinds[k].kind);
  if (parent)
    json_object_set_string_member (record, "parent", parent);
  json_object_set_string_member (record, "project", project);
  json_object_set_string_member (record, "environment", environment);
  if (class_type)
    json_object_set_string_member (record, "class_type", class_type);
  json_object_set_string_member (record, "allocated_at", at);
  if (!store_record (n, name, record, &error))
    {
      state_failed (n, responder, error);
      return;
    }
  ENS_LOG (n->host, n->self, G_LOG_LEVEL_INFO, "allocated %s %s (%s)", kinds[k].kind, name, cid);

  /* The record, plus the name under its kind: {namespace: "...", ...}. */
  answer = json_object_new ();
  json_object_set_string_member (answer, kinds[k].kind, name);
  {
    g_autoptr (GList) members = json_object_get_members (record);
    for (GList *l = members; l; l = l->next)
      json_object_set_member (answer, l->data, json_node_copy (json_object_get_member (record, l->data)));
  }
  node = ens_node_take_object (answer);
  n->host->respond (responder, node);
}

static void
allocate_namespace (Naming *n, EnsResponder *responder, JsonObject *params)
{
  const char *project, *environment, *class_type;
  gboolean bad;
  g_autofree char *seq_name = NULL;
  g_autoptr (GError) error = NULL;

  if (!name_param (n, responder, params, "project", "project", TRUE, &project) ||
      !name_param (n, responder, params, "environment", "environment", TRUE, &environment))
    return;
  class_type = member_string (params, "class_type", &bad);
  if (bad || (class_type && (class_type[0] == '\0' || strlen (class_type) > CLASS_TYPE_MAX)))
    {
      invalid (n, responder, "class_type", "a string of 1 to 64 characters", NULL);
      return;
    }

  /* N comes from a per project.environment counter that never goes back. */
  seq_name = g_strdup_printf ("ns:%s.%s", project, environment);
  for (;;)
    {
      gint64 seq = n->host->state_next_sequence (n->self, seq_name, &error);
      g_autofree char *name = NULL;

      if (seq < 0)
        {
          state_failed (n, responder, error);
          return;
        }
      name = g_strdup_printf ("%s.%s.ns%" G_GINT64_FORMAT, project, environment, seq);
      /* Only allocate_namespace makes ns<N> names, so this is taken only if
       * the store was edited by hand: skip the number rather than fail. */
      if (!g_tree_lookup (n->names, name))
        {
          allocate (n, responder, 0, name, NULL, project, environment, class_type);
          return;
        }
    }
}

/* allocate_capability, allocate_module, allocate_function: kind @k. */
static void
allocate_child (Naming *n, EnsResponder *responder, JsonObject *params, int k)
{
  const char *parent_kind = kinds[k].parent_kind;
  const char *parent, *name;
  gboolean bad;
  JsonObject *prec;
  g_autofree char *full = NULL;

  parent = member_string (params, "parent", &bad);
  if (bad || parent == NULL)
    {
      g_autofree char *expected = g_strdup_printf ("the name of a %s (a string)", parent_kind);
      invalid (n, responder, "parent", expected, NULL);
      return;
    }
  if (!name_param (n, responder, params, "name", "segment", TRUE, &name))
    return;
  prec = g_tree_lookup (n->names, parent);
  if (prec == NULL)
    {
      JsonObject *det = json_object_new ();
      g_autoptr (JsonNode) node = NULL;
      g_autofree char *message = g_strdup_printf ("parent %s \"%s\" is not allocated", parent_kind, parent);
      json_object_set_string_member (det, "field", "parent");
      json_object_set_string_member (det, "name", parent);
      json_object_set_string_member (det, "expected", parent_kind);
      node = ens_node_take_object (det);
      n->host->respond_error (responder, ENS_ERR_NOT_FOUND, message, node);
      return;
    }
  if (g_strcmp0 (ens_member_string_or (prec, "kind", ""), parent_kind) != 0)
    {
      g_autofree char *expected = g_strdup_printf ("a %s (\"%s\" is a %s)", parent_kind, parent,
                                                   ens_member_string_or (prec, "kind", "?"));
      invalid (n, responder, "parent", expected, NULL);
      return;
    }
  full = g_strconcat (parent, ".", name, NULL);
  allocate (n, responder, k, full, parent, ens_member_string (prec, "project"),
            ens_member_string (prec, "environment"), NULL);
}

static void
validate_name (Naming *n, EnsResponder *responder, JsonObject *params)
{
  gboolean bad;
  const char *name = member_string (params, "name", &bad);
  JsonNode *kind_node = params ? json_object_get_member (params, "kind") : NULL;
  const char *kind = NULL;
  JsonArray *reasons;
  JsonObject *answer;
  g_autoptr (JsonNode) node = NULL;

  if (bad || name == NULL)
    {
      invalid (n, responder, "name", "a string", NULL);
      return;
    }
  /* An odd kind is one more reason the name is not valid, not an error:
   * validate_name answers for anything it can read. */
  if (kind_node && !JSON_NODE_HOLDS_NULL (kind_node))
    kind = JSON_NODE_HOLDS_VALUE (kind_node) && json_node_get_value_type (kind_node) == G_TYPE_STRING
             ? json_node_get_string (kind_node) : "(not a string)";
  reasons = check_name (n, name, kind);
  answer = json_object_new ();
  json_object_set_boolean_member (answer, "valid", json_array_get_length (reasons) == 0);
  json_object_set_string_member (answer, "name", name);
  if (kind)
    json_object_set_string_member (answer, "kind", kind);
  json_object_set_array_member (answer, "reasons", reasons);
  node = ens_node_take_object (answer);
  n->host->respond (responder, node);
}

typedef struct {
  const char *project, *environment, *kind, *parent;
  JsonArray *out;
} ListFilter;

static gboolean
list_one (gpointer key, gpointer value, gpointer data)
{
  ListFilter *f = data;
  JsonObject *rec = value;

  if ((f->project && g_strcmp0 (ens_member_string (rec, "project"), f->project)) ||
      (f->environment &&
       g_strcmp0 (ens_member_string (rec, "environment"), f->environment)) ||
      (f->kind && g_strcmp0 (ens_member_string (rec, "kind"), f->kind)) ||
      (f->parent && g_strcmp0 (ens_member_string (rec, "parent"), f->parent)))
    return FALSE;
  json_array_add_object_element (f->out, json_object_ref (rec));
  return FALSE;
}

static void
list (Naming *n, EnsResponder *responder, JsonObject *params)
{
  static const char *const fields[] = { "project", "environment", "kind", "parent" };
  const char *values[G_N_ELEMENTS (fields)];
  ListFilter f;
  JsonObject *answer;
  g_autoptr (JsonNode) node = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      gboolean bad;
      values[i] = member_string (params, fields[i], &bad);
      if (bad)
        {
          invalid (n, responder, fields[i], "a string", NULL);
          return;
        }
    }
  if (values[2] && kind_index (values[2]) < 0)
    {
      invalid (n, responder, "kind", "namespace, capability, module or function", NULL);
      return;
    }
  f = (ListFilter){ values[0], values[1], values[2], values[3], json_array_new () };
  g_tree_foreach (n->names, list_one, &f); /* in name order */
  answer = json_object_new ();
  json_object_set_int_member (answer, "count", json_array_get_length (f.out));
  json_object_set_array_member (answer, "names", f.out);
  node = ens_node_take_object (answer);
  n->host->respond (responder, node);
}

typedef struct {
  const char *prefix; /* "<name>." */
  gsize len;
  GPtrArray *found;   /* char * (transfer none, keys of the tree) */
} Descendants;

static gboolean
find_descendant (gpointer key, gpointer value, gpointer data)
{
  Descendants *d = data;

  if (strncmp (key, d->prefix, d->len) == 0)
    g_ptr_array_add (d->found, key);
  return FALSE;
}

static void
release (Naming *n, EnsResponder *responder, JsonObject *params)
{
  gboolean bad;
  const char *name = member_string (params, "name", &bad);
  JsonNode *rnode = params ? json_object_get_member (params, "recursive") : NULL;
  gboolean recursive = FALSE;
  g_autofree char *prefix = NULL;
  g_autoptr (GPtrArray) doomed = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonArray) released = json_array_new ();
  Descendants d;
  JsonObject *answer;
  g_autoptr (JsonNode) node = NULL;

  if (bad || name == NULL)
    {
      invalid (n, responder, "name", "a string", NULL);
      return;
    }
  if (rnode && !JSON_NODE_HOLDS_NULL (rnode))
    {
      if (!JSON_NODE_HOLDS_VALUE (rnode) || json_node_get_value_type (rnode) != G_TYPE_BOOLEAN)
        {
          invalid (n, responder, "recursive", "a boolean", NULL);
          return;
        }
      recursive = json_node_get_boolean (rnode);
    }
  if (!g_tree_lookup (n->names, name))
    {
      JsonObject *det = json_object_new ();
      g_autofree char *message = g_strdup_printf ("\"%s\" is not allocated", name);
      json_object_set_string_member (det, "field", "name");
      json_object_set_string_member (det, "name", name);
      node = ens_node_take_object (det);
      n->host->respond_error (responder, ENS_ERR_NOT_FOUND, message, node);
      return;
    }

  /* Every name below @name starts with "<name>." (a parent exists before
   * its children), and the tree is sorted, so they come in name order. */
  prefix = g_strconcat (name, ".", NULL);
  d = (Descendants){ prefix, strlen (prefix), g_ptr_array_new () };
  g_tree_foreach (n->names, find_descendant, &d);
  doomed = d.found;
  if (doomed->len > 0 && !recursive)
    {
      JsonObject *det = json_object_new ();
      JsonArray *children = json_array_new ();
      g_autofree char *message = g_strdup_printf ("\"%s\" has %u name%s below it; release them first or pass "
                                                  "recursive: true", name, doomed->len, doomed->len == 1 ? "" : "s");
      for (guint i = 0; i < doomed->len; i++)
        json_array_add_string_element (children, g_ptr_array_index (doomed, i));
      json_object_set_string_member (det, "name", name);
      json_object_set_array_member (det, "children", children);
      node = ens_node_take_object (det);
      n->host->respond_error (responder, ERR_HAS_CHILDREN, message, node);
      return;
    }

  /* Deepest first (in reverse name order children come before their
   * parent), the name itself last; records go before the index (see the
   * top).  The keys are copied: removing them from the tree frees them. */
  {
    g_autoptr (GPtrArray) victims = g_ptr_array_new_with_free_func (g_free);
    gboolean ok = TRUE;

    g_ptr_array_add (victims, g_strdup (name));
    for (guint i = 0; i < doomed->len; i++)
      g_ptr_array_add (victims, g_strdup (g_ptr_array_index (doomed, i)));
    g_ptr_array_set_size (doomed, 0);
    for (guint i = victims->len; ok && i-- > 0;)
      {
        const char *victim = g_ptr_array_index (victims, i);
        ok = n->host->state_delete (n->self, STATE_NAMES, victim, &error);
        if (ok)
          {
            g_tree_remove (n->names, victim);
            json_array_add_string_element (released, victim);
          }
      }
    if (!write_index (n, ok ? &error : NULL) || !ok)
      {
        state_failed (n, responder, error);
        return;
      }
  }
  ENS_LOG (n->host, n->self, G_LOG_LEVEL_INFO, "released %s (%u names)", name, json_array_get_length (released));
  answer = json_object_new ();
  json_object_set_boolean_member (answer, "released", TRUE);
  json_object_set_string_member (answer, "name", name);
  json_object_set_array_member (answer, "released_names", json_array_ref (released));
  node = ens_node_take_object (answer);
  n->host->respond (responder, node);
}

/* ---- the plugin ---- */

static void
naming_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  Naming *n = instance;
  const char *action = request->action ? request->action : "";
  JsonObject *params = NULL;
  int k;

  if (request->data && JSON_NODE_HOLDS_OBJECT (request->data))
    params = json_node_get_object (request->data);
  else if (request->data && !JSON_NODE_HOLDS_NULL (request->data))
    {
      invalid (n, responder, "data", "an object", NULL);
      return;
    }

  if (strcmp (action, "allocate_namespace") == 0)
    allocate_namespace (n, responder, params);
  else if (g_str_has_prefix (action, "allocate_") && (k = kind_index (action + strlen ("allocate_"))) > 0)
    allocate_child (n, responder, params, k);
  else if (strcmp (action, "validate_name") == 0)
    validate_name (n, responder, params);
  else if (strcmp (action, "list") == 0)
    list (n, responder, params);
  else if (strcmp (action, "release") == 0)
    release (n, responder, params);
  else
    {
      g_autofree char *text = g_strdup_printf ("naming has no action \"%s\"", action);
      n->host->respond_error (responder, ENS_ERR_UNKNOWN_ACTION, text, NULL);
    }
}

static int
compare_names (gconstpointer a, gconstpointer b, gpointer data)
{
  return strcmp (a, b); /* byte order: what clients get from a plain sort */
}

static gpointer
naming_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  Naming *n;

  if (host->struct_size < sizeof (EnsHost))
    {
      g_set_error (error, ENS_PLUGIN_ERROR, ENS_PLUGIN_ERROR_ABI, "host table too old");
      return NULL;
    }
  n = g_new0 (Naming, 1);
  n->host = host;
  n->self = self;
  n->names = g_tree_new_full (compare_names, NULL, g_free, (GDestroyNotify) json_object_unref);
  if (!load (n, error))
    {
      g_prefix_error (error, "loading the names: ");
      g_tree_unref (n->names);
      g_free (n);
      return NULL;
    }
  ENS_LOG (host, self, G_LOG_LEVEL_INFO, "%d names loaded", g_tree_nnodes (n->names));
  return n;
}

static void
naming_stop (gpointer instance)
{
  Naming *n = instance;

  g_tree_unref (n->names);
  g_free (n);
}

static JsonNode *
naming_describe (gpointer instance)
{
  Naming *n = instance;
  JsonObject *obj = json_object_new ();

  json_object_set_int_member (obj, "names", g_tree_nnodes (n->names));
  return ens_node_take_object (obj);
}

static const char *const naming_actions[] = {
  "allocate_namespace", "allocate_capability", "allocate_module", "allocate_function",
  "validate_name",      "list",                "release",         NULL,
};

/* What each action takes, for the host's checks and for MCP clients (the
 * name rules themselves stay the agent's: validate_name explains them). */
#define NAMING_STR "{\"type\":\"string\"}"
#define NAMING_OPT_STR "{\"type\":[\"string\",\"null\"]}"
#define NAMING_CHILD(kind, parent)                                                                              \
  "{\"name\":\"allocate_" kind "\",\"description\":\"Allocates a " kind " under a " parent ": <" parent ">.<name>\","   \
  "\"input_schema\":{\"type\":\"object\",\"required\":[\"parent\",\"name\"],\"properties\":{"                          \
  "\"parent\":{\"type\":\"string\",\"description\":\"the full name of the " parent "\"},"                                \
  "\"name\":{\"type\":\"string\",\"description\":\"one segment: [a-z][a-z0-9_-]{0,63}\"}}}}"

static const char naming_tools[] =
  "[{\"name\":\"allocate_namespace\",\"description\":\"Allocates <project>.<environment>.ns<N> with a CID\","
  "\"input_schema\":{\"type\":\"object\",\"required\":[\"project\",\"environment\"],\"properties\":{"
  "\"project\":" NAMING_STR ",\"environment\":" NAMING_STR ","
  "\"class_type\":{\"type\":[\"string\",\"null\"],\"maxLength\":64}}}},"
  NAMING_CHILD ("capability", "namespace") "," NAMING_CHILD ("module", "capability") ","
  NAMING_CHILD ("function", "module") ","
  "{\"name\":\"validate_name\",\"description\":\"Checks a name against the rules, with the reasons it fails\","
  "\"input_schema\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
  "\"name\":" NAMING_STR ",\"kind\":{\"description\":\"namespace, capability, module, function, segment, "
  "project or environment\"}}}},"
  "{\"name\":\"list\",\"description\":\"Allocated names, filtered\",\"input_schema\":{\"type\":\"object\","
  "\"properties\":{\"project\":" NAMING_OPT_STR ",\"environment\":" NAMING_OPT_STR ",\"kind\":" NAMING_OPT_STR ","
  "\"parent\":" NAMING_OPT_STR "}}},"
  "{\"name\":\"release\",\"description\":\"Releases a name (and, with recursive, the names under it)\","
  "\"input_schema\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":" NAMING_STR "}}}]";

static const EnsAgentVTable naming_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "naming",
  .actions = naming_actions,
  .handle = naming_handle,
  .tools = naming_tools,
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-naming", "1.0", "Naming agent: namespaces, capabilities, "
                   "modules and functions, with stable sortable CIDs", ENS_PLUGIN_FLAG_NONE, naming_init, naming_stop,
                   naming_describe, &naming_vtable)
