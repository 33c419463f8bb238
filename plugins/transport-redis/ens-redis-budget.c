/* ens-redis-budget.c — one daily budget for every daemon on the same Redis.
 *
 * The day's ledger is the hash <prefix>budget:<day> with "spent" and one
 * "reserved:<node>" field per node.  A reservation is a Lua script, so it is
 * atomic across daemons: it adds up what is spent and reserved (forgetting
 * reservations of nodes whose heartbeat expired), refuses what would go over
 * the limit, else adds to this node's reservation.  Settling moves a
 * reservation into "spent".  Settlements go through the bridge's outbox, so
 * Redis being away delays them and loses none; reservations are refused while
 * it is away (free providers still serve).
 */
#include "ens-redis.h"

#define LEDGER_TTL_S "259200" /* a day's ledger is kept three days */

static const char reserve_script[] =
  "local h = redis.call('HGETALL', KEYS[1])\n"
  "local spent, reserved = 0, 0\n"
  "for i = 1, #h, 2 do\n"
  "  local f, v = h[i], tonumber(h[i + 1]) or 0\n"
  "  if f == 'spent' then spent = v\n"
  "  elseif string.sub(f, 1, 9) == 'reserved:' then\n"
  "    local node = string.sub(f, 10)\n"
  "    if node == ARGV[1] or redis.call('EXISTS', ARGV[4] .. node) == 1 then reserved = reserved + v\n"
  "    else redis.call('HDEL', KEYS[1], f) end\n"
  "  end\n"
  "end\n"
  "if spent + reserved + tonumber(ARGV[2]) > tonumber(ARGV[3]) + 1e-9 then return {0, tostring(spent)} end\n"
  "redis.call('HINCRBYFLOAT', KEYS[1], 'reserved:' .. ARGV[1], ARGV[2])\n"
  "redis.call('EXPIRE', KEYS[1], ARGV[5])\n"
  "return {1, tostring(spent)}\n";

static const char settle_script[] =
  "local r = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'reserved:' .. ARGV[1], -tonumber(ARGV[2])))\n"
  "if r <= 1e-9 then redis.call('HDEL', KEYS[1], 'reserved:' .. ARGV[1]) end\n"
  "local s = redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[3])\n"
  "redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
  "return s\n";

struct _RedisBudget {
  Bridge *b;
  EnsBudgetLedger ledger;
  gboolean cleared; /* this node's leftover reservation removed once */
  guint64 reserved, refused, unavailable, settled;
};

typedef struct {
  RedisBudget *g;
  EnsBudgetReplyFunc func;
  gpointer user_data;
} Reservation;

static char *
budget_key (Bridge *b, const char *day)
{
  g_autofree char *suffix = g_strconcat ("budget:", day, NULL);
  return ens_redis_key (b, suffix);
}

static void
on_reserve_reply (redisAsyncContext *ac, void *r, void *privdata)
{
  Reservation *rv = privdata;
  redisReply *reply = r;
  gboolean granted = FALSE;
  double spent = -1;

  (void) ac;
  if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[0]->type == REDIS_REPLY_INTEGER)
    {
      granted = reply->element[0]->integer == 1;
      if (reply->element[1]->str)
        spent = g_ascii_strtod (reply->element[1]->str, NULL);
      if (granted)
        rv->g->reserved++;
      else
        rv->g->refused++;
    }
  else
    {
      rv->g->unavailable++;
      if (reply && reply->type == REDIS_REPLY_ERROR && !rv->g->b->stopping)
        ENS_LOG (rv->g->b->host, rv->g->b->self, G_LOG_LEVEL_WARNING, "shared budget: Redis refused: %s",
                 reply->str);
    }
  rv->func (granted, spent, rv->user_data);
  g_free (rv);
}

static void
ledger_reserve (gpointer data, const char *day, double amount, double limit, EnsBudgetReplyFunc func,
                gpointer user_data)
{
  RedisBudget *g = data;
  Bridge *b = g->b;
  Reservation *rv;
  g_autofree char *key = NULL;
  g_autofree char *node_keys = NULL;
  char amount_s[G_ASCII_DTOSTR_BUF_SIZE], limit_s[G_ASCII_DTOSTR_BUF_SIZE];
  const char *argv[10];

  if (!ens_redis_ready (b))
    {
      /* Nobody can vouch for the others' spend: refuse rather than overspend. */
      g->unavailable++;
      func (FALSE, -1, user_data);
      return;
    }
  rv = g_new0 (Reservation, 1);
  rv->g = g;
  rv->func = func;
  rv->user_data = user_data;
  key = budget_key (b, day);
  node_keys = ens_redis_key (b, "node:");
  g_ascii_dtostr (amount_s, sizeof amount_s, amount);
  g_ascii_dtostr (limit_s, sizeof limit_s, limit);
  argv[0] = "EVAL";
  argv[1] = reserve_script;
  argv[2] = "1";
  argv[3] = key;
  argv[4] = b->host->node_id ();
  argv[5] = amount_s;
  argv[6] = limit_s;
  argv[7] = node_keys;
  argv[8] = LEDGER_TTL_S;
  if (!ens_redis_command_argv (b, on_reserve_reply, rv, 9, argv))
    {
      g_free (rv);
      g->unavailable++;
      func (FALSE, -1, user_data);
    }
}

static void
ledger_settle (gpointer data, const char *day, double reserved, double actual)
{
  RedisBudget *g = data;
  char **argv = g_new0 (char *, 9);
  char num[G_ASCII_DTOSTR_BUF_SIZE];

  argv[0] = g_strdup ("EVAL");
  argv[1] = g_strdup (settle_script);
  argv[2] = g_strdup ("1");
  argv[3] = budget_key (g->b, day);
  argv[4] = g_strdup (g->b->host->node_id ());
  argv[5] = g_strdup (g_ascii_dtostr (num, sizeof num, reserved));
  argv[6] = g_strdup (g_ascii_dtostr (num, sizeof num, actual));
  argv[7] = g_strdup (LEDGER_TTL_S);
  g->settled++;
  ens_redis_enqueue (g->b, argv);
}

RedisBudget *
ens_redis_budget_new (Bridge *b)
{
  RedisBudget *g = g_new0 (RedisBudget, 1);

  g->b = b;
  g->ledger.struct_size = sizeof (EnsBudgetLedger);
  g->ledger.reserve = ledger_reserve;
  g->ledger.settle = ledger_settle;
  b->host->budget_ledger_set (b->self, &g->ledger, g);
  return g;
}

void
ens_redis_budget_connected (RedisBudget *g)
{
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *day = NULL, *key = NULL, *field = NULL;

  if (g->cleared)
    return;
  /* A reservation this node id left behind when it last stopped. */
  g->cleared = TRUE;
  now = g_date_time_new_now_utc ();
  day = g_date_time_format (now, "%Y-%m-%d");
  key = budget_key (g->b, day);
  field = g_strconcat ("reserved:", g->b->host->node_id (), NULL);
  ens_redis_command (g->b, NULL, NULL, "HDEL %s %s", key, field);
}

void
ens_redis_budget_describe (RedisBudget *g, JsonObject *obj)
{
  JsonObject *o = json_object_new ();

  json_object_set_int_member (o, "reserved", (gint64) g->reserved);
  json_object_set_int_member (o, "refused", (gint64) g->refused);
  json_object_set_int_member (o, "unavailable", (gint64) g->unavailable);
  json_object_set_int_member (o, "settled", (gint64) g->settled);
  json_object_set_object_member (obj, "shared_budget", o);
}

void
ens_redis_budget_free (RedisBudget *g)
{
  g->b->host->budget_ledger_set (g->b->self, NULL, NULL);
  g_free (g);
}
