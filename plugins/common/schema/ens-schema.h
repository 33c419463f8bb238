/* ens-schema.h — a JSON Schema validator for tool inputs (the static
 * library plugins/common/schema, linked by the core, which checks every
 * request to an agent action that declares an input schema).
 *
 * The subset tools use, from drafts 4 to 2020-12: type (one or a list),
 * properties, required, additionalProperties (false or a schema),
 * patternProperties, minProperties/maxProperties, enum, const, items (a
 * schema, or a list as in draft 4-7), prefixItems, minItems/maxItems,
 * uniqueItems, minimum/maximum, exclusiveMinimum/exclusiveMaximum (numbers,
 * or draft 4's booleans), multipleOf, minLength/maxLength (in characters),
 * pattern (GRegex), anyOf/oneOf/allOf/not, and $ref to a place in the same
 * document ("#", "#/$defs/x", "#/definitions/x").  Annotations (title,
 * description, default, examples, format, $schema, $id...) are accepted and
 * not checked.  Boolean schemas (true, false) too.
 *
 * Nothing here talks to the host; a schema is checked once when it is made
 * (ens_schema_new), so validating never meets a malformed keyword. */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define ENS_SCHEMA_ERROR (ens_schema_error_quark ())
GQuark ens_schema_error_quark (void);

typedef enum {
  ENS_SCHEMA_ERROR_INVALID, /* the schema itself is malformed; the message says where */
} EnsSchemaError;

typedef struct _EnsSchema EnsSchema;

/* (transfer full) a compiled schema made of a copy of @schema
 * ((transfer none): an object or a boolean), or NULL with @error saying
 * which keyword, at which place of the schema, is malformed. */
EnsSchema *ens_schema_new (JsonNode *schema, GError **error);
/* The same from JSON text. */
EnsSchema *ens_schema_new_from_text (const char *text, GError **error);
EnsSchema *ens_schema_ref (EnsSchema *schema);
void ens_schema_unref (EnsSchema *schema);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsSchema, ens_schema_unref)

/* (transfer none) the schema as JSON, valid while @schema is. */
JsonNode *ens_schema_get_node (EnsSchema *schema);
/* TRUE when the schema's root says "type": "object" (tools take objects). */
gboolean ens_schema_is_object (EnsSchema *schema);

/* TRUE when @instance ((transfer none); NULL counts as JSON null) is valid.
 * Else FALSE with, when asked, the first failure found:
 *   *@field (transfer full) the place that fails, from @root: "@root" for
 *     the value itself, else "count", "items[2].name", "tags[\"a b\"]";
 *   *@expected (transfer full) what it must be, for a person: "an integer",
 *     "present (required)", "a number >= 1", "one of \"low\", \"high\"".
 * Both read as "FIELD must be EXPECTED". */
gboolean ens_schema_validate (EnsSchema *schema, JsonNode *instance, const char *root, char **field, char **expected);

G_END_DECLS
