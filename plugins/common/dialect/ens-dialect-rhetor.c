/* ens-dialect-rhetor.c — the Rhetor / aish dialect's data: the roster of AI
 * specialists a fresh daemon serves, and the names each is reached by.
 *
 * aish (ckoons/aish) knows eleven AIs by name — apollo athena rhetor sophia
 * hermes prometheus telos ergon engram numa noesis — and reaches each as
 * "<name>-ai" (its team-chat fallback reads responses["<name>-ai"]); older
 * aish and Rhetor's own tests use Rhetor's legacy ids (rhetor-orchestrator,
 * apollo-assistant, ...).  Each specialist is a core session whose id is
 * "<name>-ai" and whose orchestrator_id is "rhetor"; the setting
 * rhetor-specialists names the ones served.  Adding a specialist or an
 * alias is one line below. */
#include "ens-dialect.h"

#include <string.h>

/* The specialists this dialect knows (Tekton's roles for aish's eleven, and
 * Tekton's other seven); a configured name not listed here serves with the
 * role "general". */
static const EnsRhetorSpecialist specialists[] = {
  { "apollo", "Apollo", "code-analysis,code-generation" },
  { "athena", "Athena", "knowledge-synthesis,reasoning" },
  { "rhetor", "Rhetor", "orchestration,meta-coordination" },
  { "sophia", "Sophia", "learning,adaptation" },
  { "hermes", "Hermes", "messaging,communication" },
  { "prometheus", "Prometheus", "planning,strategic-thinking" },
  { "telos", "Telos", "goal-setting,requirements-analysis" },
  { "ergon", "Ergon", "agent-coordination,workflow-management" },
  { "engram", "Engram", "memory,context-management" },
  { "numa", "Numa", "specialist-management,resource-optimization" },
  { "noesis", "Noesis", "general" },
  { "metis", "Metis", "task-decomposition,analysis" },
  { "synthesis", "Synthesis", "integration,execution" },
  { "harmonia", "Harmonia", "workflow-orchestration,coordination" },
  { "tekton-core", "Tekton Core", "project-management,coordination" },
  { "penia", "Penia", "budget-management,cost-optimization" },
  { "hephaestus", "Hephaestus", "user-interface,visualization" },
  { "terma", "Terma", "terminal,command-execution" },
  { NULL },
};

/* Rhetor's legacy specialist ids → the component they name. */
static const struct {
  const char *alias, *name;
} aliases[] = {
  { "rhetor-orchestrator", "rhetor" },     { "apollo-coordinator", "apollo" },
  { "hermes-messenger", "hermes" },        { "engram-memory", "engram" },
  { "prometheus-strategist", "prometheus" }, { "athena-assistant", "athena" },
  { "apollo-assistant", "apollo" },        { "engram-assistant", "engram" },
  { "prometheus-assistant", "prometheus" }, { "budget-assistant", "penia" },
  { NULL, NULL },
};

const EnsRhetorSpecialist *
ens_dialect_rhetor_specialist (const char *name)
{
  for (guint i = 0; name && specialists[i].name; i++)
    if (strcmp (specialists[i].name, name) == 0)
      return &specialists[i];
  return NULL;
}

gboolean
ens_dialect_rhetor_name_valid (const char *name)
{
  if (name == NULL || name[0] == '\0' || strlen (name) > 48)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-' && *p != '_')
      return FALSE;
  return TRUE;
}

char *
ens_dialect_rhetor_id (const char *name)
{
  return g_strconcat (name, "-ai", NULL);
}

static gboolean
in_roster (const char *const *roster, const char *name)
{
  return roster && name && g_strv_contains (roster, name) && ens_dialect_rhetor_name_valid (name);
}

char *
ens_dialect_rhetor_resolve (const char *const *roster, const char *name)
{
  g_autofree char *lower = NULL;

  if (name == NULL)
    return NULL;
  lower = g_ascii_strdown (name, -1);
  /* "<name>-ai": the id itself */
  if (g_str_has_suffix (lower, "-ai"))
    {
      g_autofree char *component = g_strndup (lower, strlen (lower) - 3);
      if (in_roster (roster, component))
        return g_steal_pointer (&lower);
    }
  for (guint i = 0; aliases[i].alias; i++)
    if (strcmp (aliases[i].alias, lower) == 0)
      return in_roster (roster, aliases[i].name) ? ens_dialect_rhetor_id (aliases[i].name) : NULL;
  /* the bare component name ("apollo") */
  if (in_roster (roster, lower))
    return ens_dialect_rhetor_id (lower);
  return NULL;
}

const char *
ens_dialect_rhetor_component (const char *const *roster, const char *id)
{
  for (guint i = 0; roster && roster[i]; i++)
    if (g_str_has_prefix (id, roster[i]) && strcmp (id + strlen (roster[i]), "-ai") == 0 &&
        ens_dialect_rhetor_name_valid (roster[i]))
      return roster[i];
  return NULL;
}

static char *
title_of (const char *name)
{
  const EnsRhetorSpecialist *s = ens_dialect_rhetor_specialist (name);
  char *t;

  if (s)
    return g_strdup (s->title);
  t = g_strdup (name);
  t[0] = g_ascii_toupper (t[0]);
  return t;
}

JsonNode *
ens_dialect_rhetor_ensure_data (const char *name)
{
  const EnsRhetorSpecialist *s = ens_dialect_rhetor_specialist (name);
  g_autofree char *id = ens_dialect_rhetor_id (name);
  g_autofree char *title = title_of (name);
  g_autofree char *system = g_strdup_printf ("You are %s, the %s specialist of the team (%s).", title, name,
                                             s ? s->roles : "general");
  JsonObject *d;
  JsonNode *node = ens_node_new_object (&d);

  json_object_set_string_member (d, "session_id", id);
  json_object_set_string_member (d, "orchestrator_id", ENS_RHETOR_ORCHESTRATOR);
  json_object_set_string_member (d, "session_type", name);
  json_object_set_string_member (d, "system", system);
  return node;
}

void
ens_dialect_rhetor_describe (JsonObject *out, const char *name)
{
  const EnsRhetorSpecialist *s = ens_dialect_rhetor_specialist (name);
  g_auto (GStrv) roles = g_strsplit (s ? s->roles : "general", ",", -1);
  g_autofree char *title = title_of (name);
  JsonArray *caps = json_array_new (), *rs = json_array_new ();
  JsonObject *personality = json_object_new ();

  for (guint i = 0; roles[i]; i++)
    {
      json_array_add_string_element (caps, roles[i]);
      json_array_add_string_element (rs, roles[i]);
    }
  json_object_set_string_member (out, "name", title);
  json_object_set_string_member (out, "type", roles[0]);
  json_object_set_string_member (out, "component_id", name);
  json_object_set_array_member (out, "capabilities", caps);
  json_object_set_array_member (out, "roles", rs);
  json_object_set_string_member (personality, "role", roles[0]);
  json_object_set_object_member (out, "personality", personality);
}

/* ------------------------------------------------------------------ the routes, as rows */

/* Rhetor's routes (transport-http runs them: the body through @in, the
 * core's answer through @out, @answer the HTTP status).  A Rhetor "AI
 * socket" is a core session whose session_type is the specialist's name. */

/* The default system prompt names the specialist asked for. */
static JsonNode *
default_system (JsonNode *v, JsonObject *from)
{
  const char *name = NULL;
  g_autofree char *text = NULL;

  (void) v;
  for (const char *const *f = (const char *const[]){ "name", "specialist", "ai_name", NULL }; *f && !name; f++)
    {
      const char *s = ens_member_string (from, *f);
      name = s && *s ? s : NULL;
    }
  text = g_strdup_printf ("You are %s, an AI specialist reached through Rhetor.", name ? name : "assistant");
  return json_node_init_string (json_node_alloc (), text);
}

static const EnsField create_in[] = {
  ENS_SET ("orchestrator_id", "\"" ENS_RHETOR_ORCHESTRATOR "\""),
  ENS_MAP_FB ("name|specialist|ai_name", "session_type", STRING, NONEMPTY, "\"assistant\""),
  ENS_FUNC (NULL, "system", OPTIONAL, default_system),
  ENS_MAP ("system|prompt", "system", STRING, NONEMPTY),
  ENS_MAP ("model", "model", STRING, OPTIONAL),
  ENS_MAP ("provider", "provider", STRING, OPTIONAL),
  ENS_CHECK ("context", OBJECT),
  ENS_FIELDS_END,
};

static const EnsField create_out[] = {
  ENS_MAP ("session_id", "socket_id", ANY, OPTIONAL),
  ENS_MAP ("session_type", "name", ANY, OPTIONAL),
  ENS_MAP ("model", "model", ANY, OPTIONAL),
  ENS_MAP ("provider", "provider", ANY, OPTIONAL),
  ENS_MAP ("status", "status", ANY, OPTIONAL),
  ENS_MAP ("created_at", "created_at", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsField message_in[] = {
  ENS_MAP ("message", "task", STRING, REQUIRED),
  ENS_NUMBER ("temperature", "temperature", 0, 0, 2),
  ENS_FIELDS_END,
};

/* A task_completed event's outcome, as both answers say it. */
static const EnsField outcome_out[] = {
  ENS_MAP ("result.model", "model", ANY, OPTIONAL),
  ENS_MAP ("result.provider", "provider", ANY, OPTIONAL),
  ENS_MAP ("result.usage", "usage", ANY, OPTIONAL),
  ENS_MAP ("result.finish_reason", "finish_reason", ANY, OPTIONAL),
  ENS_MAP ("result.cost", "cost", ANY, OPTIONAL),
  ENS_MAP ("result.duration_ms", "duration_ms", ANY, OPTIONAL),
  ENS_MAP ("result.tool_calls", "tool_calls", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

/* A task_completed event → the /message answer. */
static const EnsField message_out[] = {
  ENS_SET ("success", "true"),
  ENS_MAP ("sessionId", "specialist_id", ANY, OPTIONAL),
  ENS_MAP_OR ("result.response", "response", ANY, "\"\""),
  ENS_MAP ("sessionId", "socket_id", ANY, OPTIONAL),
  ENS_MAP ("taskId", "task_id", ANY, OPTIONAL),
  ENS_INCLUDE (outcome_out),
  ENS_FIELDS_END,
};

static const EnsField team_chat_in[] = {
  ENS_MAP ("message", "task", STRING, REQUIRED),
  ENS_MAP_OR ("moderation_mode", "moderation_mode", STRING, "\"pass_through\""),
  ENS_MAP ("target_sockets", "targets", STRINGS, NONEMPTY),
  ENS_NUMBER ("timeout", "timeout", ENS_FIELD_ABOVE_MIN, 0, 3600),
  ENS_FIELDS_END,
};

/* A task_completed event → one member of team chat's responses. */
static const EnsField team_member_out[] = {
  ENS_MAP_OR ("result.response", "content", ANY, "\"\""),
  ENS_MAP ("sessionId", "specialist_id", ANY, OPTIONAL),
  ENS_MAP ("sessionId", "socket_id", ANY, OPTIONAL),
  ENS_INCLUDE (outcome_out),
  ENS_FIELDS_END,
};

/* A socket takes messages until it is stopped. */
static gboolean
active_record (JsonObject *rec)
{
  return g_strcmp0 (ens_member_string_or (rec, "status", ""), "stopped") != 0;
}

static JsonNode *
active (JsonNode *v, JsonObject *rec)
{
  (void) v;
  return json_node_init_boolean (json_node_alloc (), active_record (rec));
}

static JsonNode *
active_status (JsonNode *v, JsonObject *rec)
{
  (void) v;
  return json_node_init_string (json_node_alloc (), active_record (rec) ? "active" : "inactive");
}

/* A session record → one of GET /api/ai/specialists's specialists (the
 * roster's roles are added by ens_dialect_rhetor_describe). */
static const EnsField specialist_out[] = {
  ENS_MAP ("session_id", "id", ANY, OPTIONAL),
  ENS_MAP ("session_id", "socket_id", ANY, OPTIONAL),
  ENS_MAP ("session_type", "name", ANY, OPTIONAL),
  ENS_FUNC (NULL, "active", OPTIONAL, active),
  ENS_FUNC (NULL, "status", OPTIONAL, active_status),
  ENS_MAP_OR ("model", "model", ANY, "\"auto\""), /* none: the router decides per message */
  ENS_MAP ("provider", "provider", ANY, OPTIONAL),
  ENS_MAP ("created_at", "created_at", ANY, OPTIONAL),
  ENS_MAP ("messages", "messages", ANY, OPTIONAL),
  ENS_SET ("sessions", "1"),
  ENS_MAP ("tasks_total", "tasks_total", ANY, OPTIONAL),
  ENS_FIELDS_END,
};

static const EnsDialectEntry entries[] = {
  { "POST /api/ai/socket/create", "sessions.spawn", NULL, NULL, create_in, create_out, "200", 0 },
  { "GET /api/ai/specialists", "sessions.list", NULL, NULL, NULL, specialist_out, "200", 0 },
  { "POST /api/ai/specialists/{id}/message", "sessions.execute", NULL, NULL, message_in, message_out, "200", 0 },
  { "POST /api/team-chat", "sessions.execute", NULL, NULL, team_chat_in, team_member_out, "200", 0 },
  { NULL },
};

const EnsDialect ens_dialect_rhetor = {
  .name = "rhetor",
  .entries = entries,
  .framing = ENS_DIALECT_FRAMING_MESSAGE,
};

gboolean
ens_dialect_rhetor_is_socket (JsonObject *record)
{
  return g_strcmp0 (ens_member_string (record, "orchestrator_id"), ENS_RHETOR_ORCHESTRATOR) == 0;
}

gboolean
ens_dialect_rhetor_active (JsonObject *record)
{
  return active_record (record);
}

JsonNode *
ens_dialect_rhetor_out (const char *route, JsonObject *from)
{
  const EnsDialectEntry *entry = ens_dialect_find (&ens_dialect_rhetor, route, NULL, NULL);
  g_autoptr (JsonNode) in = from ? json_node_init_object (json_node_alloc (), from) : NULL;

  g_return_val_if_fail (entry != NULL, NULL);
  return ens_dialect_reshape (entry->out, 0, in);
}
