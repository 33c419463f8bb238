/* ens-route.h — what the four router plugins share: reading the
 * request and the candidates of EnsRouterVTable.choose(), the eligibility
 * rules, and building the result.  Compiled into each router as a static
 * library; nothing here is exported from the modules. */
#pragma once

#include <ensemble/ensemble.h>

G_BEGIN_DECLS

/* The routing request, fields borrowed from the request node. */
typedef struct {
  gint64 token_count;
  const char *task_type;   /* NULL: any */
  const char *priority;    /* "high" | "medium" | "low", never NULL */
  double max_latency;      /* ms, 0 = none */
  const char *model;       /* NULL: any */
  double budget_remaining; /* USD, < 0 = unlimited */
} EnsRouteRequest;

/* One eligible candidate; strings borrowed from the candidates node. */
typedef struct {
  const char *name;
  guint index;           /* position in the candidates array, for stable ties */
  double quality;        /* clamped to [0,1] */
  double cost_per_1k;
  double latency_ms;
  double error_rate;     /* clamped to [0,1] */
  double context_window; /* 0 = unknown */
  double estimated_cost; /* token_count / 1000 * cost_per_1k */
  double score;          /* the policy's own measure, set by the router */
  char *note;            /* the policy's own explanation, (owned) may be NULL */
} EnsRouteCandidate;

void ens_route_request_parse (JsonNode *request, EnsRouteRequest *out);

/* (transfer full) the eligible candidates (element-type EnsRouteCandidate,
 * freed with the array), in input order; NULL with @error set, its message
 * saying why each candidate was left out, when none is eligible. */
GPtrArray *ens_route_eligible (const EnsRouteRequest *req, JsonNode *candidates, GError **error);

/* (transfer full) {provider, reasoning, estimated_cost, confidence, ranking}
 * from @ranked (best first, non-empty).  Adds "policy" and, when
 * @with_scores, "scores" {name: score}. */
JsonNode *ens_route_result (const char *policy, GPtrArray *ranked, const char *reasoning, double confidence,
                            gboolean with_scores);

/* A number member of @obj (ints and doubles), or @def. */
double ens_route_get_number (JsonObject *obj, const char *member, double def);

/* Writes @v with two decimals, whatever the locale, into @buf: what
 * printf's %.2f writes, rounding included. */
const char *ens_route_fmt (char *buf, gsize size, double v);

#define ENS_ROUTE_FMT_BUF 32

G_END_DECLS
