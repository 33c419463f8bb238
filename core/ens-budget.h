/* ens-budget.h — the daily budget for completions (ens-budget.c): spend
 * recorded per UTC day in the state store, reservations while calls run,
 * or one budget shared by several daemons through a plugin's ledger
 * (host->budget_ledger_set). */
#pragma once

#include "ens-config.h"
#include "ens-plugin-private.h"
#include "ens-state.h"

G_BEGIN_DECLS

typedef struct _EnsBudget EnsBudget;

EnsBudget *ens_budget_new (EnsConfig *config, EnsState *state);
void ens_budget_free (EnsBudget *budget);

/* The daily-budget setting, USD. */
double ens_budget_daily (EnsBudget *budget);
/* What is left today: budget - spent - reserved (may be negative). */
double ens_budget_remaining (EnsBudget *budget);
/* (transfer full) {daily_budget, current_spend, reserved, remaining,
 * utilization_pct, day, shared, node_spend?, ledger?} */
JsonNode *ens_budget_describe (EnsBudget *budget);

/* TRUE when a ledger keeps the budget: reservations go through it. */
gboolean ens_budget_is_shared (EnsBudget *budget);
/* Reserves @amount on this daemon's own budget. */
void ens_budget_reserve_local (EnsBudget *budget, double amount);
/* Asks the ledger to reserve @amount; @func is called exactly once, maybe
 * from inside this call (see EnsBudgetLedger). */
void ens_budget_reserve_shared (EnsBudget *budget, double amount, EnsBudgetReplyFunc func, gpointer user_data);
/* The day's shared spend as the ledger last said (< 0: unknown). */
void ens_budget_note_shared_spend (EnsBudget *budget, double spent);
/* Turns a reservation of @reserved (@shared: held by the ledger) into the
 * actual cost @actual (0 when the call failed or was cancelled). */
void ens_budget_settle (EnsBudget *budget, double reserved, gboolean shared, double actual);

/* host->budget_ledger_set */
void ens_budget_set_ledger (EnsBudget *budget, EnsPlugin *plugin, const EnsBudgetLedger *ledger,
                            gpointer ledger_data);
/* A plugin stopped: its ledger no longer keeps the budget. */
void ens_budget_forget_plugin (EnsBudget *budget, EnsPlugin *plugin);

G_END_DECLS
