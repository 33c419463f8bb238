/* ens-session-record: a new record's shape, a task's begin and end (status,
 * counters, recent outcomes), the bounds on history, recent_tasks and the
 * text kept of an answer, and task_meta's checks. */
#include "ens-session-record.h"
#include "ens-json.h"

#include <string.h>

static EnsMessage *
request (void)
{
  EnsMessageInit init = ENS_MESSAGE_INIT (ENS_MESSAGE_REQUEST);

  init.id = "r1";
  init.action = "sessions.execute";
  return ens_message_new (&init);
}

static void
test_new (void)
{
  g_autoptr (JsonObject) r = ens_session_record_new ("s1", NULL, NULL, "m", NULL, "be brief", 1700000000000000);
  JsonObject *m = ens_session_record_metrics (r);

  g_assert_cmpstr (json_object_get_string_member (r, "id"), ==, "s1");
  g_assert_cmpstr (json_object_get_string_member (r, "orchestrator_id"), ==, "");
  g_assert_cmpstr (json_object_get_string_member (r, "session_type"), ==, "default");
  g_assert_cmpstr (json_object_get_string_member (r, "model"), ==, "m");
  g_assert_false (json_object_has_member (r, "provider"));
  g_assert_cmpstr (json_object_get_string_member (r, "status"), ==, "idle");
  g_assert_cmpstr (json_object_get_string_member (r, "created_at"), ==, "2023-11-14T22:13:20.000000Z");
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (r, "history")), ==, 1);
  g_assert_cmpint (json_object_get_size (m), ==, 5);
  g_assert_cmpint (json_object_get_int_member (m, "tasks_completed"), ==, 0);
  g_assert_null (ens_session_record_task (r));
  ens_session_record_set_ended (r, 1700000001000000);
  g_assert_cmpstr (json_object_get_string_member (r, "ended_at"), ==, "2023-11-14T22:13:21.000000Z");
  ens_session_record_set_ended (r, 0);
  g_assert_false (json_object_has_member (r, "ended_at"));
  ens_session_record_set_ended (r, 0); /* harmless twice */
}

static void
test_task (void)
{
  g_autoptr (JsonObject) r = ens_session_record_new ("s1", "o", "chat", NULL, NULL, NULL, g_get_real_time ());
  g_autoptr (JsonObject) meta = json_object_new ();
  JsonObject *task, *m, *recent;
  g_autofree char *long_text = g_strnfill (5000, 'x');

  json_object_set_string_member (meta, "priority", "critical");
  json_object_set_string_member (meta, "assigned_to", "bob");
  ens_session_record_task_begin (r, "task_1", "do it", meta);
  task = ens_session_record_task (r);
  g_assert_cmpstr (json_object_get_string_member (task, "type"), ==, "general");
  g_assert_cmpstr (json_object_get_string_member (task, "priority"), ==, "critical");
  g_assert_cmpstr (json_object_get_string_member (task, "status"), ==, "running");
  g_assert_cmpstr (json_object_get_string_member (task, "assigned_to"), ==, "bob");
  g_assert_false (json_object_has_member (task, "metadata"));

  ens_session_record_task_end (r, "completed", long_text, NULL, 30, 100);
  m = ens_session_record_metrics (r);
  g_assert_cmpint (json_object_get_int_member (m, "tasks_completed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m, "tokens_used"), ==, 30);
  g_assert_cmpint (json_object_get_int_member (m, "avg_response_ms"), ==, 100);
  g_assert_cmpstr (json_object_get_string_member (ens_session_record_task (r), "status"), ==, "completed");
  recent = json_array_get_object_element (json_object_get_array_member (r, "recent_tasks"), 0);
  g_assert_cmpint (strlen (json_object_get_string_member (recent, "response")), ==, 4096);
  g_assert_cmpstr (json_object_get_string_member (recent, "id"), ==, "task_1");

  ens_session_record_task_begin (r, "task_2", "again", NULL);
  ens_session_record_task_end (r, "failed", NULL, "broke", 0, 300);
  g_assert_cmpint (json_object_get_int_member (m, "tasks_failed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m, "avg_response_ms"), ==, 200);
  /* a cancelled task counts its tokens only */
  ens_session_record_task_begin (r, "task_3", "stop me", NULL);
  ens_session_record_task_end (r, "cancelled", NULL, "stopped", 5, 5000);
  g_assert_cmpint (json_object_get_int_member (m, "tasks_failed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m, "tasks_completed"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (m, "avg_response_ms"), ==, 200);
  g_assert_cmpint (json_object_get_int_member (m, "tokens_used"), ==, 35);

  for (int i = 0; i < 30; i++)
    {
      g_autofree char *id = g_strdup_printf ("t%d", i);
      ens_session_record_task_begin (r, id, "many", NULL);
      ens_session_record_task_end (r, "completed", "ok", NULL, 1, 1);
    }
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (r, "recent_tasks")), ==, 20);
  recent = json_array_get_object_element (json_object_get_array_member (r, "recent_tasks"), 19);
  g_assert_cmpstr (json_object_get_string_member (recent, "id"), ==, "t29");
  for (int i = 0; i < 250; i++)
    ens_session_record_history_add (r, "user", "hi");
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (r, "history")), ==, 200);
}

/* A record kept by a daemon before counters existed gets them. */
static void
test_old_record (void)
{
  g_autoptr (JsonNode) node = json_from_string ("{\"id\":\"s\",\"history\":[],\"status\":\"idle\"}", NULL);
  JsonObject *r = json_node_get_object (node);

  ens_session_record_task_set_status (r, "failed"); /* no task: nothing */
  g_assert_null (ens_session_record_task (r));
  ens_session_record_task_begin (r, "t", "d", NULL);
  ens_session_record_task_end (r, "completed", "x", NULL, 2, 2);
  g_assert_cmpint (json_object_get_int_member (ens_session_record_metrics (r), "tasks_completed"), ==, 1);
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (r, "recent_tasks")), ==, 1);
}

static void
check_meta (const char *json, const char *field)
{
  g_autoptr (JsonNode) p = json_from_string (json, NULL);
  g_autoptr (EnsMessage) req = request ();
  JsonObject *out = NULL;
  g_autoptr (EnsMessage) err = ens_session_read_task_meta (req, json_node_get_object (p), &out);

  if (field == NULL)
    {
      g_assert_null (err);
      g_clear_pointer (&out, json_object_unref);
      return;
    }
  g_assert_nonnull (err);
  g_assert_null (out);
  g_assert_cmpstr (err->error_code, ==, ENS_ERR_INVALID_PARAMETERS);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (err->error_details), "field"), ==, field);
}

static void
test_meta (void)
{
  g_autoptr (JsonNode) p = json_from_string ("{\"task_meta\":{\"type\":\"code\",\"metadata\":{\"a\":1},\"extra\":1,"
                                             "\"priority\":null}}", NULL);
  g_autoptr (EnsMessage) req = request ();
  g_autoptr (JsonObject) out = NULL;

  g_assert_null (ens_session_read_task_meta (req, json_node_get_object (p), &out));
  g_assert_cmpint (json_object_get_size (out), ==, 2); /* unknown and null members left out */
  g_assert_cmpstr (json_object_get_string_member (out, "type"), ==, "code");
  check_meta ("{}", NULL);
  check_meta ("{\"task_meta\":null}", NULL);
  check_meta ("{\"task_meta\":\"code\"}", "task_meta");
  check_meta ("{\"task_meta\":[]}", "task_meta");
  check_meta ("{\"task_meta\":{\"type\":1}}", "task_meta.type");
  check_meta ("{\"task_meta\":{\"priority\":\"\"}}", "task_meta.priority");
  check_meta ("{\"task_meta\":{\"assigned_to\":{}}}", "task_meta.assigned_to");
  check_meta ("{\"task_meta\":{\"metadata\":\"x\"}}", "task_meta.metadata");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/session-record/new", test_new);
  g_test_add_func ("/session-record/task", test_task);
  g_test_add_func ("/session-record/old-record", test_old_record);
  g_test_add_func ("/session-record/task-meta", test_meta);
  return g_test_run ();
}
