/* ens-agent-mcp.c — Ensemble as an MCP client: every server of the
 * mcp-servers setting ({name: command line or http(s) URL}) is mounted as
 * the bus agent of that name, its tools the agent's actions
 * (ens-mcp-client.c), reachable from every transport and dialect and from
 * sessions' tool loops.  The plugin's own agent, "mcp", answers "servers":
 * the state of each. */
#include <ensemble/ensemble.h>

#include "ens-host-config.h"
#include "ens-json-util.h"
#include "ens-mcp-client.h"

#include <string.h>

typedef struct {
  const EnsHost *host;
  EnsPlugin *self;
  GPtrArray *clients; /* EnsMcpClient* */
} AgentMcp;

static gpointer
mcp_init (const EnsHost *host, EnsPlugin *self, GError **error)
{
  AgentMcp *a = g_new0 (AgentMcp, 1);
  g_autoptr (GVariant) servers = host->config_get (self, "mcp-servers");
  EnsMcpClientLimits limits = {
    .max_result_bytes = ens_host_config_uint (host, self, "mcp-max-result-bytes", 1048576),
    .init_timeout_ms = 30000,
    .backoff_ms = ens_host_config_uint (host, self, "mcp-restart-backoff-ms", 500),
  };
  GVariantIter iter;
  const char *name, *target;

  (void) error;
  a->host = host;
  a->self = self;
  a->clients = g_ptr_array_new_with_free_func ((GDestroyNotify) ens_mcp_client_free);
  if (servers && g_variant_is_of_type (servers, G_VARIANT_TYPE ("a{ss}")))
    {
      g_variant_iter_init (&iter, servers);
      while (g_variant_iter_next (&iter, "{&s&s}", &name, &target))
        {
          if (strcmp (name, "mcp") == 0 || !*target)
            {
              ENS_LOG (host, self, G_LOG_LEVEL_WARNING, "mcp-servers: %s skipped (%s)", name,
                       *target ? "the name \"mcp\" is this plugin's own agent" : "no command or URL");
              continue;
            }
          g_ptr_array_add (a->clients, ens_mcp_client_new (host, self, name, target, &limits));
        }
    }
  return a;
}

static void
mcp_stop (gpointer instance)
{
  AgentMcp *a = instance;

  g_ptr_array_unref (a->clients);
  g_free (a);
}

static JsonNode *
servers (AgentMcp *a)
{
  JsonObject *obj;
  JsonNode *node = ens_node_new_object (&obj);
  JsonArray *list = json_array_new ();

  for (guint i = 0; i < a->clients->len; i++)
    json_array_add_element (list, ens_mcp_client_describe (g_ptr_array_index (a->clients, i)));
  json_object_set_array_member (obj, "servers", list);
  return node;
}

static void
mcp_handle (gpointer instance, EnsMessage *request, EnsResponder *responder)
{
  AgentMcp *a = instance;

  if (g_strcmp0 (request->action, "servers") == 0)
    {
      g_autoptr (JsonNode) data = servers (a);
      a->host->respond (responder, data);
    }
  else
    a->host->respond_error (responder, ENS_ERR_UNKNOWN_ACTION, "agent mcp serves: servers", NULL);
}

static JsonNode *
mcp_describe (gpointer instance)
{
  return servers (instance);
}

static const char *const mcp_actions[] = { "servers", NULL };

static const EnsAgentVTable mcp_vtable = {
  .struct_size = sizeof (EnsAgentVTable),
  .name = "mcp",
  .actions = mcp_actions,
  .handle = mcp_handle,
  .tools = "[{\"name\":\"servers\",\"description\":\"The configured MCP servers: state, tools, restarts, last error\","
           "\"input_schema\":{\"type\":\"object\",\"additionalProperties\":false}}]",
};

ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_AGENT, "agent-mcp", "0.1.0",
                   "MCP servers (mcp-servers) mounted as bus agents, their tools as actions", ENS_PLUGIN_FLAG_NONE,
                   mcp_init, mcp_stop, mcp_describe, &mcp_vtable)
