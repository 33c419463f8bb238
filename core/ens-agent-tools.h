/* ens-agent-tools.h — what an agent says of its actions (ens-agent-tools.c):
 * a description and a JSON Schema for the input of each, declared when it
 * registers (agents.register, an agent plugin's vtable, host->agent_add),
 * listed with the agent, and checked against every request before the
 * agent sees it. */
#pragma once

#include <json-glib/json-glib.h>

#include "ens-schema.h"

G_BEGIN_DECLS

typedef struct {
  char *name;        /* the action */
  char *description; /* may be NULL */
  EnsSchema *schema; /* its input, may be NULL: anything goes */
} EnsAgentTool;

void ens_agent_tool_free (EnsAgentTool *tool);

/* The actions of one agent, in declaration order. */
typedef struct {
  GPtrArray *names; /* char*, NULL-terminated (a strv in ->pdata) */
  GPtrArray *tools; /* EnsAgentTool*, one per name */
} EnsAgentTools;

EnsAgentTools *ens_agent_tools_new (void);
void ens_agent_tools_free (EnsAgentTools *tools);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EnsAgentTools, ens_agent_tools_free)

/* Reads a list of actions, each a name or {name, description?,
 * input_schema?} (@list (transfer none); @member names it in messages,
 * e.g. "actions").  An action named twice is declared by its last entry.
 * Returns FALSE with *@field ("actions[1].input_schema") and *@expected
 * (both transfer full) when an entry is malformed: not a name of 1-256
 * bytes, a description that is no string, a schema that is not valid JSON
 * Schema or does not describe an object. */
gboolean ens_agent_tools_add_list (EnsAgentTools *tools, JsonNode *list, const char *member, char **field,
                                   char **expected);
/* Adds plain names (a NULL-terminated list, may be NULL) not yet declared. */
void ens_agent_tools_add_names (EnsAgentTools *tools, const char *const *names);

/* (transfer none) the declaration of @action, or NULL. */
EnsAgentTool *ens_agent_tools_find (EnsAgentTools *tools, const char *action);
/* (transfer none) the names, NULL-terminated. */
char **ens_agent_tools_names (EnsAgentTools *tools);
/* (transfer full) [{name, description?, input_schema?}] for listings. */
JsonNode *ens_agent_tools_describe (EnsAgentTools *tools);

/* Checks @data (transfer none; NULL counts as {}) against @action's input
 * schema: TRUE when it fits or @action declares none, else FALSE with
 * *@field and *@expected (transfer full). */
gboolean ens_agent_tools_check (EnsAgentTools *tools, const char *action, JsonNode *data, char **field,
                                char **expected);

G_END_DECLS
