/* The plugin ABI, pinned: a change to any of these numbers breaks every
 * plugin already built, so it must be a deliberate ABI bump, not an accident.
 * (LP64: the layout Debian's amd64/arm64 builds share.) */
#include <ensemble/ensemble.h>

#include "ens-host-private.h"

#include <string.h>

#if GLIB_SIZEOF_VOID_P == 8
#define OFF(T, f, n) G_STATIC_ASSERT (G_STRUCT_OFFSET (T, f) == (n))

G_STATIC_ASSERT (ENS_ABI_MAJOR == 1);
G_STATIC_ASSERT (ENS_ABI_MINOR == 5);

G_STATIC_ASSERT (sizeof (EnsPluginDesc) == 80);
OFF (EnsPluginDesc, abi_major, 0);
OFF (EnsPluginDesc, abi_minor, 4);
OFF (EnsPluginDesc, struct_size, 8);
OFF (EnsPluginDesc, kind, 12);
OFF (EnsPluginDesc, id, 16);
OFF (EnsPluginDesc, version, 24);
OFF (EnsPluginDesc, description, 32);
OFF (EnsPluginDesc, flags, 40);
OFF (EnsPluginDesc, init, 48);
OFF (EnsPluginDesc, stop, 56);
OFF (EnsPluginDesc, describe, 64);
OFF (EnsPluginDesc, vtable, 72);

G_STATIC_ASSERT (sizeof (EnsHost) == 384);
OFF (EnsHost, struct_size, 0);
OFF (EnsHost, abi_major, 4);
OFF (EnsHost, abi_minor, 8);
OFF (EnsHost, log, 16);
OFF (EnsHost, config_get, 24);
OFF (EnsHost, plugin_id, 32);
OFF (EnsHost, message_new, 40);
OFF (EnsHost, message_ref, 48);
OFF (EnsHost, message_unref, 56);
OFF (EnsHost, message_encode, 64);
OFF (EnsHost, encode_native, 72);
OFF (EnsHost, parse_native, 80);
OFF (EnsHost, client_new, 88);
OFF (EnsHost, client_close, 96);
OFF (EnsHost, client_id, 104);
OFF (EnsHost, client_submit, 112);
OFF (EnsHost, publish, 120);
OFF (EnsHost, subscribe, 128);
OFF (EnsHost, unsubscribe, 136);
OFF (EnsHost, request, 144);
OFF (EnsHost, respond, 152);
OFF (EnsHost, respond_error, 160);
OFF (EnsHost, state_set, 168);
OFF (EnsHost, state_get, 176);
OFF (EnsHost, state_delete, 184);
OFF (EnsHost, state_next_sequence, 192);
OFF (EnsHost, settings_new, 200);
OFF (EnsHost, json_parse, 208);
OFF (EnsHost, json_to_string, 216);
OFF (EnsHost, completion_chunk, 224);
OFF (EnsHost, completion_event, 232);
OFF (EnsHost, completion_finish, 240);
OFF (EnsHost, completion_fail, 248);
OFF (EnsHost, node_id, 256);
OFF (EnsHost, tap, 264);
OFF (EnsHost, untap, 272);
OFF (EnsHost, publish_remote, 280);
OFF (EnsHost, agent_add, 288);
OFF (EnsHost, agent_remove, 296);
OFF (EnsHost, budget_ledger_set, 304);
OFF (EnsHost, watch_interest, 312);
OFF (EnsHost, unwatch_interest, 320);
OFF (EnsHost, message_is_bounce, 328); /* 1.1 */
OFF (EnsHost, message_from_native, 336); /* 1.2 */
OFF (EnsHost, message_data, 344); /* 1.4 */
OFF (EnsHost, message_data_text, 352);
OFF (EnsHost, json_check, 360);
OFF (EnsHost, json_scan_members, 368); /* 1.5 */
OFF (EnsHost, json_scan_checked_members, 376);

G_STATIC_ASSERT (sizeof (EnsMessage) == 128);
OFF (EnsMessage, kind, 4);
OFF (EnsMessage, id, 8);
OFF (EnsMessage, action, 16);
OFF (EnsMessage, agent, 24);
OFF (EnsMessage, topic, 32);
OFF (EnsMessage, from, 40);
OFF (EnsMessage, to, 48);
OFF (EnsMessage, tag, 56);
OFF (EnsMessage, data, 64);
OFF (EnsMessage, error_code, 72);
OFF (EnsMessage, error_message, 80);
OFF (EnsMessage, error_details, 88);
OFF (EnsMessage, seq, 96);
OFF (EnsMessage, timestamp_us, 104);
OFF (EnsMessage, received_us, 112);
OFF (EnsMessage, timeout_ms, 120);

G_STATIC_ASSERT (sizeof (EnsMessageInit) == 128);
OFF (EnsMessageInit, data, 64);
OFF (EnsMessageInit, timeout_ms, 96);
OFF (EnsMessageInit, received_us, 104);
OFF (EnsMessageInit, data_text, 112); /* 1.4 */
OFF (EnsMessageInit, data_text_len, 120);

G_STATIC_ASSERT (sizeof (EnsAgentVTable) == 40);
OFF (EnsAgentVTable, name, 8);
OFF (EnsAgentVTable, actions, 16);
OFF (EnsAgentVTable, handle, 24);
OFF (EnsAgentVTable, tools, 32); /* 1.3 */
G_STATIC_ASSERT (sizeof (EnsBudgetLedger) == 24);
OFF (EnsBudgetLedger, reserve, 8);
OFF (EnsBudgetLedger, settle, 16);
G_STATIC_ASSERT (sizeof (EnsRouterVTable) == 24);
OFF (EnsRouterVTable, name, 8);
OFF (EnsRouterVTable, choose, 16);
G_STATIC_ASSERT (sizeof (EnsProviderVTable) == 24);
OFF (EnsProviderVTable, backends, 8);
OFF (EnsProviderVTable, complete, 16);
G_STATIC_ASSERT (sizeof (EnsClientSink) == 24);
#endif

/* Enum values cross the boundary as integers. */
G_STATIC_ASSERT (ENS_PLUGIN_KIND_TRANSPORT == 1 && ENS_PLUGIN_KIND_AGENT == 2 && ENS_PLUGIN_KIND_ROUTER == 3 &&
                 ENS_PLUGIN_KIND_PROVIDER == 4);
G_STATIC_ASSERT (ENS_PLUGIN_FLAG_UNLOADABLE == 1 && ENS_PLUGIN_FLAG_LAZY_DATA == 2);
G_STATIC_ASSERT (ENS_CLIENT_FLAG_ADMIN == 1 && ENS_CLIENT_FLAG_LAZY_DATA == 2); /* 1.5 */
G_STATIC_ASSERT (ENS_MESSAGE_REQUEST == 1 && ENS_MESSAGE_REPLY == 2 && ENS_MESSAGE_EVENT == 3 &&
                 ENS_MESSAGE_ERROR == 4);

/* ENS_PLUGIN_DEFINE carries the flags it is given into the descriptor. */
static gpointer flags_init (const EnsHost *host, EnsPlugin *self, GError **error) { return (gpointer) host; }
static void flags_stop (gpointer instance) { (void) instance; }
ENS_PLUGIN_DEFINE (ENS_PLUGIN_KIND_TRANSPORT, "abi-flags", "1", "flags", ENS_PLUGIN_FLAG_UNLOADABLE, flags_init,
                   flags_stop, NULL, NULL)

static void
test_define_flags (void)
{
  const EnsPluginDesc *desc = ens_plugin_query ();

  g_assert_cmpuint (desc->flags, ==, ENS_PLUGIN_FLAG_UNLOADABLE);
  g_assert_cmpuint (desc->abi_major, ==, ENS_ABI_MAJOR);
  g_assert_cmpuint (desc->abi_minor, ==, ENS_ABI_MINOR);
  g_assert_cmpuint (desc->struct_size, ==, sizeof (EnsPluginDesc));
  g_assert_true (desc->init == flags_init && desc->stop == flags_stop);
}

static void
test_struct_has (void)
{
  EnsAgentVTable vt = { .struct_size = G_STRUCT_OFFSET (EnsAgentVTable, handle) };

  g_assert_true (ENS_STRUCT_HAS (&vt, EnsAgentVTable, actions));
  g_assert_false (ENS_STRUCT_HAS (&vt, EnsAgentVTable, handle));
  vt.struct_size = sizeof vt;
  g_assert_true (ENS_STRUCT_HAS (&vt, EnsAgentVTable, handle));
}

static void
collect_member (const char *name, const char *value, gsize len, const char *string, gpointer user_data)
{
  g_string_append_printf (user_data, "%s=%.*s(%s);", name, (int) len, value, string ? string : "-");
}

/* The core's table sets every entry up to its end: a plugin that checked
 * ENS_STRUCT_HAS never finds a NULL where the ABI promises a function. */
static void
test_host_table_complete (void)
{
  EnsHostServices services = { 0 };
  const EnsHost *host = ens_host_table (&services);
  g_autoptr (GString) seen = g_string_new (NULL);
  static const char text[] = "{\"a\":1,\"b\":\"x\\n\",\"c\":{\"d\":[true]}}";

  g_assert_cmpuint (host->struct_size, ==, sizeof (EnsHost));
  g_assert_cmpuint (host->abi_major, ==, ENS_ABI_MAJOR);
  g_assert_cmpuint (host->abi_minor, ==, ENS_ABI_MINOR);
  for (gsize off = G_STRUCT_OFFSET (EnsHost, log); off < sizeof (EnsHost); off += sizeof (gpointer))
    {
      gpointer entry;

      memcpy (&entry, (const char *) host + off, sizeof entry);
      if (entry == NULL)
        g_error ("EnsHost entry at offset %" G_GSIZE_FORMAT " is NULL", off);
    }

  /* 1.5: members read without a tree, nested objects from their text */
  g_assert_true (host->json_scan_members (text, strlen (text), collect_member, seen, NULL));
  g_assert_cmpstr (seen->str, ==, "a=1(-);b=\"x\\n\"(x\n);c={\"d\":[true]}(-);");
  g_string_truncate (seen, 0);
  g_assert_true (host->json_scan_checked_members (text + 21, strlen (text) - 22, collect_member, seen));
  g_assert_cmpstr (seen->str, ==, "d=[true](-);");
  g_assert_false (host->json_scan_members ("[1]", 3, collect_member, seen, NULL));
  g_assert_false (host->json_scan_members ("{\"a\":}", 6, collect_member, seen, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/abi/host-table-complete", test_host_table_complete);
  g_test_add_func ("/abi/struct-has", test_struct_has);
  g_test_add_func ("/abi/define-flags", test_define_flags);
  return g_test_run ();
}
