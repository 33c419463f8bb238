/* ens-budget.c — the daily budget.  Spend is settled per UTC day and kept
 * in the state store (scope "budget", key the day), so it survives
 * restarts; yesterday's stays there.  With a ledger, the spend and the
 * reservations that count are everyone's, kept by the ledger. */
#include "ens-budget.h"
#include "ens-json.h"

#include <string.h>

struct _EnsBudget {
  EnsConfig *config;
  EnsState *state;
  double spend;    /* today's settled spend of this daemon */
  double reserved; /* in flight on this daemon's own budget */
  char *day;       /* "YYYY-MM-DD" of spend */
  gint64 day_start_us, day_end_us; /* real time: @day is today inside [start, end) */
  /* A budget shared with other daemons (host->budget_ledger_set). */
  const EnsBudgetLedger *ledger;
  gpointer ledger_data;
  EnsPlugin *ledger_plugin;
  double ledger_spent; /* the day's shared spend, as last reported; < 0: unknown */
};

EnsBudget *
ens_budget_new (EnsConfig *config, EnsState *state)
{
  EnsBudget *budget = g_new0 (EnsBudget, 1);

  budget->config = config;
  budget->state = state;
  return budget;
}

void
ens_budget_free (EnsBudget *budget)
{
  if (budget == NULL)
    return;
  g_free (budget->day);
  g_free (budget);
}

/* Rolls over at the UTC day boundary: yesterday's spend stays in the store.
 * Within the day it costs a clock read (the date is made once a day). */
static void
refresh (EnsBudget *budget)
{
  gint64 now_us = g_get_real_time ();
  g_autoptr (GDateTime) now = NULL;
  g_autoptr (GDateTime) midnight = NULL;
  g_autofree char *day = NULL;
  g_autofree char *stored = NULL;

  if (budget->day && now_us >= budget->day_start_us && now_us < budget->day_end_us)
    return;
  now = g_date_time_new_from_unix_utc (now_us / G_USEC_PER_SEC);
  midnight = g_date_time_new_utc (g_date_time_get_year (now), g_date_time_get_month (now),
                                  g_date_time_get_day_of_month (now), 0, 0, 0);
  budget->day_start_us = g_date_time_to_unix (midnight) * G_USEC_PER_SEC;
  budget->day_end_us = budget->day_start_us + (gint64) 86400 * G_USEC_PER_SEC; /* UTC days have no DST */
  day = g_date_time_format (now, "%Y-%m-%d");
  if (budget->day && strcmp (budget->day, day) == 0)
    return;
  g_free (budget->day);
  budget->day = g_steal_pointer (&day);
  stored = ens_state_get (budget->state, "budget", budget->day, NULL);
  budget->spend = stored ? g_ascii_strtod (stored, NULL) : 0.0;
}

double
ens_budget_daily (EnsBudget *budget)
{
  g_autoptr (GVariant) v = ens_config_get (budget->config, "daily-budget");
  return v ? g_variant_get_double (v) : 0.0;
}

/* The spend that counts against the budget: the shared one when a ledger
 * keeps it, else this daemon's. */
static double
spent (EnsBudget *budget)
{
  return budget->ledger ? MAX (budget->ledger_spent, 0.0) : budget->spend;
}

double
ens_budget_remaining (EnsBudget *budget)
{
  refresh (budget);
  return ens_budget_daily (budget) - spent (budget) - budget->reserved;
}

JsonNode *
ens_budget_describe (EnsBudget *budget)
{
  JsonObject *obj;
  JsonNode *node = ens_json_object_node (&obj);
  double daily = ens_budget_daily (budget);

  refresh (budget);
  json_object_set_double_member (obj, "daily_budget", daily);
  json_object_set_double_member (obj, "current_spend", spent (budget));
  json_object_set_double_member (obj, "reserved", budget->reserved);
  json_object_set_double_member (obj, "remaining", MAX (0.0, daily - spent (budget) - budget->reserved));
  json_object_set_double_member (obj, "utilization_pct",
                                 daily > 0 ? MIN (100.0, 100.0 * spent (budget) / daily) : 0.0);
  json_object_set_string_member (obj, "day", budget->day);
  json_object_set_boolean_member (obj, "shared", budget->ledger != NULL);
  if (budget->ledger)
    {
      /* What this daemon spent itself; current_spend is everyone's. */
      json_object_set_double_member (obj, "node_spend", budget->spend);
      json_object_set_string_member (obj, "ledger", ens_plugin_get_id (budget->ledger_plugin));
    }
  return node;
}

gboolean
ens_budget_is_shared (EnsBudget *budget)
{
  return budget->ledger != NULL;
}

void
ens_budget_reserve_local (EnsBudget *budget, double amount)
{
  budget->reserved += amount;
}

void
ens_budget_reserve_shared (EnsBudget *budget, double amount, EnsBudgetReplyFunc func, gpointer user_data)
{
  refresh (budget);
  budget->ledger->reserve (budget->ledger_data, budget->day, amount, ens_budget_daily (budget), func, user_data);
}

void
ens_budget_note_shared_spend (EnsBudget *budget, double spent_now)
{
  if (spent_now >= 0)
    budget->ledger_spent = spent_now;
}

void
ens_budget_settle (EnsBudget *budget, double reserved, gboolean shared, double actual)
{
  g_autoptr (GError) error = NULL;
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  if (shared)
    {
      if (budget->ledger)
        budget->ledger->settle (budget->ledger_data, budget->day, reserved, MAX (actual, 0.0));
      if (actual > 0 && budget->ledger_spent >= 0)
        budget->ledger_spent += actual; /* until the ledger tells again */
    }
  else
    budget->reserved = MAX (0.0, budget->reserved - reserved);
  if (actual <= 0)
    return;
  refresh (budget);
  budget->spend += actual;
  g_ascii_dtostr (text, sizeof text, budget->spend);
  if (!ens_state_set (budget->state, "budget", budget->day, text, &error))
    g_warning ("budget: cannot record spend: %s", error->message);
}

void
ens_budget_set_ledger (EnsBudget *budget, EnsPlugin *plugin, const EnsBudgetLedger *ledger, gpointer ledger_data)
{
  budget->ledger = ledger;
  budget->ledger_data = ledger_data;
  budget->ledger_plugin = ledger ? plugin : NULL;
  budget->ledger_spent = -1;
}

void
ens_budget_forget_plugin (EnsBudget *budget, EnsPlugin *plugin)
{
  if (budget->ledger_plugin == plugin)
    ens_budget_set_ledger (budget, NULL, NULL, NULL);
}
